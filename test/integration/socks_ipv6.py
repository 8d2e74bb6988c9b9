#!/usr/bin/env python3
"""The SOCKS5 front over IPv6 and dual-stack: a front on `socks = PORT' (every address, IPv4 and
IPv6) reached over ::1 and over 127.0.0.1; each association's relay socket is of the family and
address its control connection came in on (IPv4 for an IPv4 client, not an IPv4-mapped IPv6
address), and its reply names it so. Datagrams to an IPv6 destination ([::1]) and an IPv4 one
come back each with the header of its own destination, over either family."""
import os
import socket
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402


def recv_exact(c, n, timeout=3.0):
    c.settimeout(timeout)
    b = b""
    while len(b) < n:
        part = c.recv(n - len(b))
        if not part:
            break
        b += part
    return b


def associate(host, port):
    """(control connection, reply ATYP, relay address as a (host, port) pair) or None."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect((host, port))
    c.sendall(b"\x05\x01\x00")
    if recv_exact(c, 2) != b"\x05\x00":
        return None
    c.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
    head = recv_exact(c, 4)
    if len(head) < 4 or head[1] != 0:
        return None
    if head[3] == 4:
        rest = recv_exact(c, 18)
        addr = (socket.inet_ntop(socket.AF_INET6, rest[:16]), struct.unpack(">H", rest[16:])[0])
    else:
        rest = recv_exact(c, 6)
        addr = (socket.inet_ntoa(rest[:4]), struct.unpack(">H", rest[4:])[0])
    return c, head[3], addr


def header(host, port):
    if ":" in host:
        a = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
    elif host.replace(".", "").isdigit():
        a = b"\x01" + socket.inet_aton(host)
    else:
        a = b"\x03" + bytes([len(host)]) + host.encode()
    return b"\x00\x00\x00" + a + struct.pack(">H", port)


def body(t):
    secret = t.genkey()
    cport, sport, xport = t.port(), t.port(), t.port()
    e6 = mptlib.Target(host="::1", tags={0x6006})
    e4 = mptlib.Target(tags={0x6004})
    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport, bridges=["[::1]:%d" % sport],
        server_listen=sport, target=e4.addr, extra_client=["socks = %d" % xport],
        extra_server=["allow = [::1]:%d" % e6.port, "allow = 127.0.0.1:%d" % e4.port])
    t.server(cfg)
    client = t.client(cfg)
    t.wait_log(client, r"socks5 front on \[::\]:%d" % xport, timeout=5)
    t.wait_log(client, r"path \d+ up", timeout=10)

    for via, fam, want_atyp in (("::1", socket.AF_INET6, 4), ("127.0.0.1", socket.AF_INET, 1)):
        r = associate(via, xport)
        if not t.expect(r is not None, "association over %s" % via):
            continue
        ctl, atyp, relay = r
        t.check("relay address type of an association over %s" % via, atyp, want_atyp, "==")
        t.expect(relay[0] == via, "relay on %s (%s)" % (via, relay[0]))
        app = socket.socket(fam, socket.SOCK_DGRAM)
        app.bind((via, 0))
        app.settimeout(2)
        dests = [("::1", e6.port, 0x6006), ("127.0.0.1", e4.port, 0x6004)]
        for seq, (host, port, tag) in enumerate(dests):
            app.sendto(header(host, port) + mptlib.make_payload(tag, seq, 64), relay)
            try:
                data, _ = app.recvfrom(2048)
            except socket.timeout:
                data = b""
            h = header(host, port)
            ok = data[:len(h)] == h and mptlib.parse_payload(data[len(h):]) == (tag, seq)
            t.expect(ok, "over %s: %s:%d answered with its own header" % (via, host, port))
        app.close()
        ctl.close()
    e6.close()
    e4.close()


mptlib.run(body, budget=60, needs_ipv6=True)
