#!/usr/bin/env python3
"""Hostile and odd SOCKS5 clients against the client's SOCKS front, with raw sockets: garbage,
handshakes cut short or sent a byte at a time, a request that never comes (closed at the
handshake timeout), CONNECT and BIND (reply 7), an unknown address type (reply 8), no acceptable
method (0xff); datagrams with FRAG != 0, a malformed header, from a source other than the one
announced: dropped and counted, never sent; the limits of destinations per association (32),
associations (64, then reply 1) and connections (80, then closed at once). Every case shows in
the client's status, and afterwards an ordinary association still works and the client exits
cleanly."""
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

MAX_ASSOC = 64
MAX_DESTS = 32
MAX_CONNS = 80
HANDSHAKE_S = 5.0
IDLE_S = 2  # the client's flow_timeout here


def status(cfg):
    out = subprocess.run([mptlib.MPTUNNEL, "status", "-c", cfg, "--client", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return json.loads(out.stdout.decode()) if out.returncode == 0 else None


def wait_status(cfg, cond, timeout):
    end = time.monotonic() + timeout
    while True:
        st = status(cfg)
        if st is not None and cond(st["socks"]):
            return st["socks"]
        if time.monotonic() > end:
            return st["socks"] if st else None
        time.sleep(0.1)


def tcp(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def recv_exact(c, n, timeout=3.0):
    c.settimeout(timeout)
    b = b""
    while len(b) < n:
        try:
            part = c.recv(n - len(b))
        except (socket.timeout, ConnectionResetError):
            break
        if not part:
            break
        b += part
    return b


def closed_within(c, timeout):
    """True if the peer ends the connection (EOF or reset) within timeout, reading what comes."""
    c.settimeout(timeout)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if not c.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return False


def addr4(host, port):
    return b"\x01" + socket.inet_aton(host) + struct.pack(">H", port)


def associate(port, announce=("0.0.0.0", 0), raw=False):
    """A control connection with an association: (connection, relay port) or (connection, rep)."""
    c = tcp(port)
    c.sendall(b"\x05\x01\x00")
    if recv_exact(c, 2) != b"\x05\x00":
        return c, None
    c.sendall(b"\x05\x03\x00" + addr4(*announce))
    r = recv_exact(c, 10)
    if len(r) < 10 or r[1] != 0:
        return c, (r[1] if len(r) > 1 else None) if raw else None
    return c, struct.unpack(">H", r[8:10])[0]


def udp_hdr(host, port, frag=0):
    return b"\x00\x00" + bytes([frag]) + addr4(host, port)


def body(t):
    secret = t.genkey()
    cport, sport, xport = t.port(), t.port(), t.port()
    echo = mptlib.Target(tags={0x3001})
    echo2 = mptlib.Target(tags={0x3002})
    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport, bridges=["127.0.0.1:%d" % sport],
        server_listen=sport, target=echo.addr,
        extra_client=["socks = 127.0.0.1:%d" % xport, "control = " + t.path("c.sock"),
                      "flow_timeout = %ds" % IDLE_S],
        extra_server=["allow = 127.0.0.1:%d" % echo.port, "allow = 127.0.0.1:%d" % echo2.port])
    t.server(cfg)
    client = t.client(cfg)
    t.wait_log(client, r"socks5 front on", timeout=5)
    t.wait_log(client, r"path \d+ up", timeout=10)

    # Garbage instead of a greeting: the connection is ended.
    c = tcp(xport)
    c.sendall(bytes(range(256)) * 2)
    t.expect(closed_within(c, 3), "garbage: connection closed")
    c.close()
    # A greeting cut short, then the peer leaves; a greeting without a method.
    for msg in (b"\x05", b"\x05\x03\x00", b"\x05\x00", b"\x04\x01\x00"):
        c = tcp(xport)
        c.sendall(msg)
        if msg in (b"\x05\x00", b"\x04\x01\x00"):
            t.expect(closed_within(c, 3), "greeting %r: connection closed" % msg)
        c.close()
    # Only username/password offered, none configured: no acceptable method.
    c = tcp(xport)
    c.sendall(b"\x05\x01\x02")
    t.expect(recv_exact(c, 2) == b"\x05\xff", "no acceptable method: 0xff")
    t.expect(closed_within(c, 3), "no acceptable method: connection closed")
    c.close()
    # CONNECT, BIND and an unknown command: 7; an unknown address type: 8.
    for cmd, atyp_rest, want in ((1, addr4("127.0.0.1", echo.port), 7),
                                 (2, addr4("127.0.0.1", echo.port), 7),
                                 (9, addr4("127.0.0.1", echo.port), 7),
                                 (3, b"\x05" + b"\x00" * 6, 8)):
        c = tcp(xport)
        c.sendall(b"\x05\x01\x00")
        recv_exact(c, 2)
        c.sendall(b"\x05" + bytes([cmd]) + b"\x00" + atyp_rest)
        r = recv_exact(c, 10)
        t.check("command %d: reply code" % cmd, r[1] if len(r) > 1 else -1, want, "==")
        t.expect(closed_within(c, 3), "command %d: connection closed" % cmd)
        c.close()
    # A handshake and request a byte at a time, slowly: served.
    c = tcp(xport)
    for b in b"\x05\x01\x00":
        c.send(bytes([b]))
        time.sleep(0.03)
    ok = recv_exact(c, 2) == b"\x05\x00"
    for b in b"\x05\x03\x00" + addr4("0.0.0.0", 0):
        c.send(bytes([b]))
        time.sleep(0.03)
    r = recv_exact(c, 10)
    t.expect(ok and len(r) == 10 and r[1] == 0, "byte-by-byte handshake: associated")
    c.close()

    # Datagrams: announced source, FRAG, malformed, foreign source.
    app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    app.bind(("127.0.0.1", 0))
    app.settimeout(2)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    ctl, relay = associate(xport, app.getsockname())
    if not t.expect(relay is not None, "association announcing its source"):
        return
    to = ("127.0.0.1", relay)
    for seq in range(5):
        other.sendto(udp_hdr("127.0.0.1", echo.port) + mptlib.make_payload(0x3001, seq, 40), to)
        app.sendto(udp_hdr("127.0.0.1", echo.port, frag=1) +
                   mptlib.make_payload(0x3001, 100 + seq, 40), to)
    for junk in (b"", b"\x00", b"\x00\x00\x00", b"\x01\x00\x00\x01" + b"\x00" * 8,
                 b"\x00\x00\x00\x07" + b"\x00" * 8, b"\x00\x00\x00\x03\x05a b c\x00\x35",
                 udp_hdr("127.0.0.1", 0), b"\x00\x00\x00\x04" + b"\x00" * 10):
        app.sendto(junk, to)
    app.sendto(udp_hdr("127.0.0.1", echo.port) + mptlib.make_payload(0x3001, 200, 40), to)
    try:
        data, _ = app.recvfrom(2048)
    except socket.timeout:
        data = b""
    t.expect(data[:10] == udp_hdr("127.0.0.1", echo.port) and
             mptlib.parse_payload(data[10:]) == (0x3001, 200), "the announced source: echoed")
    time.sleep(0.5)
    t.check("fragments at the target", echo.unique() - 1, 0, "==")
    st = wait_status(cfg, lambda s: s["datagrams"]["dropped"]["malformed"] >= 8, 3)
    drops = st["datagrams"]["dropped"]
    t.check("dropped as fragments", drops["fragment"], 5, "==")
    t.check("dropped as from another source", drops["source"], 5, "==")
    t.check("dropped as malformed", drops["malformed"], 8, "==")
    # Destinations: 32 at once, the 33rd dropped and counted.
    for i in range(MAX_DESTS + 2):
        port = echo.port if i == 0 else 20000 + i
        app.sendto(udp_hdr("127.0.0.1", port) + mptlib.make_payload(0x3001, 300 + i, 40), to)
    st = wait_status(cfg, lambda s: s["datagrams"]["dropped"]["destinations"] >= 2, 3)
    t.check("dropped over %d destinations" % MAX_DESTS, st["datagrams"]["dropped"]["destinations"],
            2, "==")
    # Idle for flow_timeout, a destination gives its place to a new one.
    time.sleep(IDLE_S + 0.5)
    app.sendto(udp_hdr("127.0.0.1", echo2.port) + mptlib.make_payload(0x3002, 1, 40), to)
    ok = False
    end = time.monotonic() + 2
    while not ok and time.monotonic() < end:  # the echo of the first destination came before
        try:
            data, _ = app.recvfrom(2048)
        except socket.timeout:
            break
        ok = (data[:10] == udp_hdr("127.0.0.1", echo2.port) and
              mptlib.parse_payload(data[10:]) == (0x3002, 1))
    t.expect(ok, "a new destination in the place of an idle one: echoed")
    ctl.close()
    app.close()
    other.close()

    # Associations: 64 at once, the 65th refused with reply 1.
    st = wait_status(cfg, lambda s: s["associations"]["open"] == 0, 3)
    ctls, made = [], 0
    for _ in range(MAX_ASSOC):
        c, relay = associate(xport)
        ctls.append(c)
        if relay is None:
            break
        made += 1
    t.check("associations made at once", made, MAX_ASSOC, "==")
    c, rep = associate(xport, raw=True)
    t.check("association over the limit: reply code", rep if rep is not None else -1, 1, "==")
    c.close()
    st = wait_status(cfg, lambda s: s["associations"]["refused"] >= 1, 3)
    t.check("associations open at the limit", st["associations"]["open"], MAX_ASSOC, "==")
    t.check("associations refused", st["associations"]["refused"], 1, "==")
    for c in ctls:
        c.close()
    st = wait_status(cfg, lambda s: s["associations"]["open"] == 0, 3)
    t.check("associations open once their connections closed", st["associations"]["open"], 0,
            "==")

    # Connections: 80 that say nothing, the 81st closed at once; the 80 at the timeout.
    idle = [tcp(xport) for _ in range(MAX_CONNS)]
    time.sleep(0.2)
    c = tcp(xport)
    t.expect(closed_within(c, 2), "connection over the limit: closed at once")
    c.close()
    t0 = time.monotonic()
    ends = [closed_within(x, HANDSHAKE_S + 3) for x in idle]
    t.check("idle connections closed by the handshake timeout", sum(ends), MAX_CONNS, "==")
    t.check("seconds until the last closed", time.monotonic() - t0, HANDSHAKE_S + 2.0, "<=",
            "%.2f")
    for x in idle:
        x.close()
    st = wait_status(cfg, lambda s: s["connections"]["handshake_timeouts"] >= MAX_CONNS, 3)
    print("socks status: %s" % json.dumps(st))
    t.check("connections refused", st["connections"]["refused"], 1, "==")
    t.check("handshake timeouts", st["connections"]["handshake_timeouts"], MAX_CONNS, ">=")
    t.check("unsupported commands", st["connections"]["unsupported_command"], 3, "==")
    t.check("failed handshakes", st["connections"]["handshake_failed"], 4, ">=")

    # Random bytes, seeded: 100 connections with valid openings and random rest in random
    # pieces, 2000 random datagrams (half with a valid header start) at an association.
    rng = t.rng
    rng.seed(77)
    for i in range(100):
        c = tcp(xport)
        msg = [b"", b"\x05\x01\x00", b"\x05\x01\x00\x05\x03\x00", b"\x05\x02\x00\x02"][i % 4]
        msg += bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 600)))
        try:
            while msg:
                k = rng.randrange(1, 64)
                c.send(msg[:k])
                msg = msg[k:]
        except OSError:
            pass
        c.close()
    app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    app.bind(("127.0.0.1", 0))
    ctl, relay = associate(xport)
    for i in range(2000):
        d = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
        if i % 2:
            d = b"\x00\x00\x00" + bytes([rng.choice((1, 3, 4))]) + d
        app.sendto(d, ("127.0.0.1", relay))
    ctl.close()
    app.close()
    t.expect(client.alive(), "the client survives random bytes")

    # After all that: an ordinary association still works.
    app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    app.bind(("127.0.0.1", 0))
    app.settimeout(2)
    ctl, relay = associate(xport)
    got = b""
    if relay:
        app.sendto(udp_hdr("127.0.0.1", echo.port) + mptlib.make_payload(0x3001, 999, 64),
                   ("127.0.0.1", relay))
        try:
            got, _ = app.recvfrom(2048)
        except socket.timeout:
            pass
    t.expect(mptlib.parse_payload(got[10:]) == (0x3001, 999), "an ordinary association works")
    ctl.close()
    app.close()
    echo.close()
    echo2.close()


mptlib.run(body, budget=90)
