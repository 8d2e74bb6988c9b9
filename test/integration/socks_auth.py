#!/usr/bin/env python3
"""The SOCKS5 front with RFC 1929 username/password (`socks_user', `socks_password_file'):
PySocks with the right name and password gets its association and its echoes; a wrong password,
a wrong name, and a client that offers no authentication are refused (and counted), as are a
malformed username/password request and one cut short."""
import json
import os
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

try:
    import socks  # PySocks, Debian's python3-socks: only /usr/bin/python3 sees it
except ImportError:
    if os.path.exists("/usr/bin/python3") and not os.environ.get("MPT_SOCKS_REEXEC"):
        os.environ["MPT_SOCKS_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: PySocks is missing (Debian: python3-socks)")
    sys.exit(mptlib.SKIP)

USER, PASSWORD = "alice", "correct horse battery staple"


def status(cfg):
    out = subprocess.run([mptlib.MPTUNNEL, "status", "-c", cfg, "--client", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return json.loads(out.stdout.decode())["socks"] if out.returncode == 0 else None


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
    c.settimeout(timeout)
    try:
        while True:
            if not c.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def pysocks(xport, user, password):
    s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
    s.set_proxy(socks.SOCKS5, "127.0.0.1", xport, username=user, password=password)
    s.settimeout(2)
    s.bind(("127.0.0.1", 0))
    return s


def body(t):
    secret = t.genkey()
    cport, sport, xport = t.port(), t.port(), t.port()
    echo = mptlib.Target(tags={0x4001})
    pwfile = t.path("socks.password")
    with open(pwfile, "w") as f:
        f.write(PASSWORD + "\n")
    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport, bridges=["127.0.0.1:%d" % sport],
        server_listen=sport, target=echo.addr,
        extra_client=["socks = 127.0.0.1:%d" % xport, "socks_user = " + USER,
                      "socks_password_file = " + pwfile, "control = " + t.path("c.sock")],
        extra_server=["allow = 127.0.0.1:%d" % echo.port])
    t.server(cfg)
    client = t.client(cfg)
    t.wait_log(client, r"socks5 front on 127\.0\.0\.1:%d \(UDP ASSOCIATE, username/password\)"
               % xport, timeout=5)
    t.wait_log(client, r"path \d+ up", timeout=10)

    s = pysocks(xport, USER, PASSWORD)
    got = 0
    for seq in range(20):
        s.sendto(mptlib.make_payload(0x4001, seq, 100), ("127.0.0.1", echo.port))
        try:
            data, src = s.recvfrom(4096)
        except socket.timeout:
            continue
        if mptlib.parse_payload(data) == (0x4001, seq) and src == ("127.0.0.1", echo.port):
            got += 1
    t.check("echoes through an authenticated association", got, 19, ">=")
    s.close()

    refused = 0
    for user, password in ((USER, "wrong"), ("mallory", PASSWORD), (USER, PASSWORD[:-1])):
        try:
            pysocks(xport, user, password).close()
        except (socks.ProxyError, OSError) as e:
            print("PySocks as %s with a wrong password or name: %s" % (user, e))
            refused += 1
    t.check("wrong names and passwords refused", refused, 3, "==")

    # No authentication offered: no acceptable method.
    c = socket.create_connection(("127.0.0.1", xport), timeout=5)
    c.sendall(b"\x05\x01\x00")
    t.expect(recv_exact(c, 2) == b"\x05\xff", "no authentication offered: 0xff")
    c.close()
    # A request of another version, and one that stops in the middle.
    c = socket.create_connection(("127.0.0.1", xport), timeout=5)
    c.sendall(b"\x05\x02\x00\x02")
    t.expect(recv_exact(c, 2) == b"\x05\x02", "username/password chosen when offered")
    c.sendall(b"\x02\x05alice\x01x")
    t.expect(closed_within(c, 3), "username/password request of version 2: closed")
    c.close()
    c = socket.create_connection(("127.0.0.1", xport), timeout=5)
    c.sendall(b"\x05\x01\x02")
    recv_exact(c, 2)
    c.sendall(b"\x01\x05ali")
    c.close()
    time.sleep(0.3)
    st = status(cfg)
    print("socks status: %s" % json.dumps(st))
    t.check("failed handshakes counted", st["connections"]["handshake_failed"], 5, "==")
    t.check("associations made", st["associations"]["total"], 1, "==")
    echo.close()


mptlib.run(body, budget=60)
