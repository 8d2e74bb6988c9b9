#!/usr/bin/env python3
"""Short SOCKS5 associations against a server with room for few flows, with raw sockets: 100
associations in a row, each sending to an IPv4 address and to the name `localhost' and waiting
for both replies, then closing its control connection, all succeed with the server's
`max_flows = 8` (its flow_timeout is 60 s): the client tells the server at once of the flows it
forgot (FLOW_CLOSE), which frees their places. The 100 flows naming `localhost' cost the server
one lookup: the others are answered by its name cache (figures from its status). Then a flow
whose socket the server could not open (its descriptors exhausted for a moment, with prlimit) is
opened with its next datagram once they are back, rather than staying mute."""
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

ASSOCIATIONS = 100
MAX_FLOWS = 8


def status(cfg, role):
    out = subprocess.run([mptlib.MPTUNNEL, "status", "-c", cfg, "--" + role, "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return json.loads(out.stdout.decode()) if out.returncode == 0 else None


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


def associate(port):
    """A control connection with an association: (connection, relay port or None)."""
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(b"\x05\x01\x00")
    if recv_exact(c, 2) != b"\x05\x00":
        return c, None
    c.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("0.0.0.0") + struct.pack(">H", 0))
    r = recv_exact(c, 10)
    if len(r) < 10 or r[1] != 0:
        return c, None
    return c, struct.unpack(">H", r[8:10])[0]


def hdr(host, port):
    try:
        a = b"\x01" + socket.inet_aton(host)
    except OSError:
        a = b"\x03" + bytes([len(host)]) + host.encode()
    return b"\x00\x00\x00" + a + struct.pack(">H", port)


def exchange(u, relay, dests, tag, seq, timeout):
    """Sends one datagram to each destination (again every 0.3 s) until each has answered or
    timeout passes; returns the set of destinations indexes answered."""
    got = set()
    end = time.monotonic() + timeout
    next_send = 0.0
    while len(got) < len(dests) and time.monotonic() < end:
        if time.monotonic() >= next_send:
            for i, (h, p) in enumerate(dests):
                if i not in got:
                    u.sendto(hdr(h, p) + mptlib.make_payload(tag + i, seq, 40),
                             ("127.0.0.1", relay))
            next_send = time.monotonic() + 0.3
        u.settimeout(0.05)
        try:
            data, _ = u.recvfrom(65535)
        except socket.timeout:
            continue
        if len(data) < 10 or data[3] not in (1, 3, 4):
            continue
        off = {1: 10, 4: 22}.get(data[3], 7 + data[4] if len(data) > 4 else 0)
        k = mptlib.parse_payload(data[off:])
        if k and k[1] == seq and tag <= k[0] < tag + len(dests):
            got.add(k[0] - tag)
    return got


def body(t):
    secret = t.genkey()
    cport, sport, xport = t.port(), t.port(), t.port()
    lit = mptlib.Target()
    named = mptlib.Target()
    twin = None  # `localhost' may resolve to ::1: a twin on the same port there
    if mptlib.has_ipv6_loopback():
        try:
            twin = mptlib.Target(host="::1", port=named.port)
        except OSError:
            twin = None
    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport, bridges=["127.0.0.1:%d" % sport],
        server_listen=sport, target=lit.addr,
        extra_client=["socks = 127.0.0.1:%d" % xport, "control = " + t.path("c.sock")],
        extra_server=["allow = 127.0.0.1:%d" % lit.port, "allow = 127.0.0.1:%d" % named.port,
                      "allow = [::1]:%d" % named.port, "max_flows = %d" % MAX_FLOWS,
                      "flow_timeout = 60s", "control = " + t.path("s.sock")])
    server = t.server(cfg)
    client = t.client(cfg)
    t.wait_log(client, r"socks5 front on", timeout=5)
    t.wait_log(client, r"path \d+ up", timeout=10)

    dests = [("127.0.0.1", lit.port), ("localhost", named.port)]
    ok = 0
    t0 = time.monotonic()
    for n in range(ASSOCIATIONS):
        c, relay = associate(xport)
        if relay is None:
            c.close()
            continue
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        got = exchange(u, relay, dests, 0x5000, n, 3.0)
        ok += len(got) == len(dests)
        u.close()
        c.close()
    took = time.monotonic() - t0
    print("%d associations in %.1f s" % (ASSOCIATIONS, took))
    t.check("associations answered by both destinations", ok, ASSOCIATIONS, "==")
    time.sleep(0.5)
    sst = status(cfg, "server")
    t.expect(sst is not None, "server status")
    if sst:
        t.check("server flows closed by their client",
                sst["flows"]["closed_by_client"], 2 * ASSOCIATIONS - MAX_FLOWS, ">=")
        t.check("server flows still open", sst["flows"]["used"], MAX_FLOWS, "<=")
        t.check("lookups of `localhost' for %d flows naming it" % ASSOCIATIONS,
                sst["names"]["misses"], 1, "==")
        t.check("flows answered by the name cache", sst["names"]["hits"], ASSOCIATIONS - 1, "==")
        t.check("flows refused busy", sst["refused"]["busy"], 0, "==")

    # The server's descriptors exhausted while a new flow opens: its socket cannot be made. With
    # descriptors back, the flow's next datagram opens it.
    c, relay = associate(xport)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    nfd = len(os.listdir("/proc/%d/fd" % server.pid))
    old = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (nfd, old[1]))
    try:
        got = exchange(u, relay, dests[:1], 0x6000, 1, 1.5)
        t.check("replies while the server has no descriptor to spare", len(got), 0, "==")
        t.wait_log(server, r"cannot open a socket towards 127\.0\.0\.1:%d" % lit.port, timeout=3)
    finally:
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, old)
    got = exchange(u, relay, dests[:1], 0x6000, 2, 5.0)
    t.check("replies once descriptors are back (the socket opened again)", len(got), 1, "==")
    u.close()
    c.close()
    for x in [lit, named] + ([twin] if twin else []):
        x.close()


mptlib.run(body, budget=120)
