#!/usr/bin/env python3
"""Dante's socksify (Debian dante-client) carrying DNS through the client's SOCKS5 front: a
resolver behind the server (dnsmasq where it is installed, else a small DNS responder here),
queried by drill (Debian ldnsutils) under socksify, five names, each answered through one UDP
association of its own that ends with the program; the resolver sees every query, from the
server's side of the tunnel.

dig is tried too, and here it cannot work: dig 9.18 sends its queries with sendmmsg(2) (BIND's
network manager is built on libuv), which Dante 1.4's libdsocks does not intercept (it wraps
send, sendto, sendmsg, write and writev). The query then reaches the relay socket without its
SOCKS header, and the front drops it as malformed: the test checks that it is counted so, and
says which of the two it saw. Dante adds direct routes for the host's own networks, loopback
included; SOCKS_AUTOADD_LANROUTES=no keeps it from bypassing the proxy for 127.0.0.1."""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

NAMES = ["a%d.test.example" % i for i in range(5)]
ANSWER = "10.1.2.3"


def status(cfg):
    out = subprocess.run([mptlib.MPTUNNEL, "status", "-c", cfg, "--client", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return json.loads(out.stdout.decode())["socks"] if out.returncode == 0 else None


class Responder:
    """Answers every A query with ANSWER (a DNS server where dnsmasq is missing)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stopped = False
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def _loop(self):
        self.sock.settimeout(0.1)
        while not self.stopped:
            try:
                q, src = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            if len(q) < 17:
                continue
            end = q.find(b"\x00", 12)
            if end < 0 or len(q) < end + 5:
                continue
            self.queries += 1
            question = q[12:end + 5]
            hdr = q[:2] + b"\x84\x00" + struct.pack(">HHHH", 1, 1, 0, 0)
            rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 0, 4) + socket.inet_aton(ANSWER)
            self.sock.sendto(hdr + question + rr, src)

    def close(self):
        self.stopped = True
        self.th.join(2)
        self.sock.close()


def body(t):
    socksify = shutil.which("socksify")
    if not socksify:
        raise mptlib.Skip("socksify is missing (Debian: dante-client)")
    drill, dig = shutil.which("drill"), shutil.which("dig")
    if not drill and not dig:
        raise mptlib.Skip("neither drill (ldnsutils) nor dig (dnsutils) is installed")
    secret = t.genkey()
    cport, sport, xport, dport = t.port(), t.port(), t.port(), t.port()
    # dnsmasq as root only (it would otherwise fail to drop its privileges).
    dnsmasq = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq"
                                          if os.access("/usr/sbin/dnsmasq", os.X_OK) else None)
    if os.getuid() != 0:
        dnsmasq = None
    responder = None
    if dnsmasq:
        dlog = t.path("dnsmasq.log")
        t.start("dnsmasq", [dnsmasq, "-k", "--port=%d" % dport, "--listen-address=127.0.0.1",
                            "--bind-interfaces", "--no-resolv", "--no-hosts",
                            "--address=/test.example/" + ANSWER, "--log-queries",
                            "--log-facility=" + dlog, "--pid-file=" + t.path("dnsmasq.pid")]
                + ["--user=root"])
        end = time.monotonic() + 5
        while not (os.path.exists(dlog) and "started" in open(dlog).read()):
            if time.monotonic() > end:
                raise mptlib.Failed("dnsmasq did not start")
            time.sleep(0.05)
        print("resolver: dnsmasq on 127.0.0.1:%d" % dport)
    else:
        responder = Responder()
        dport = responder.port
        print("resolver: a DNS responder on 127.0.0.1:%d (no dnsmasq, or not root)" % dport)

    def queries():
        if responder:
            return responder.queries
        return len(re.findall(r"query\[A\]", open(dlog).read()))

    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport, bridges=["127.0.0.1:%d" % sport],
        server_listen=sport, target="127.0.0.1:%d" % t.port(),
        extra_client=["socks = 127.0.0.1:%d" % xport, "control = " + t.path("c.sock")],
        extra_server=["allow = 127.0.0.1:%d" % dport])
    t.server(cfg)
    client = t.client(cfg)
    t.wait_log(client, r"path \d+ up", timeout=10)
    conf = t.path("dante.conf")
    with open(conf, "w") as f:
        f.write("route {\n  from: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = %d\n"
                "  proxyprotocol: socks_v5\n  protocol: udp\n  method: none\n}\n" % xport)
    env = dict(os.environ, SOCKS_CONF=conf, SOCKS_AUTOADD_LANROUTES="no")

    def run(argv):
        out = subprocess.run([socksify] + argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env=env, timeout=20, preexec_fn=mptlib._child_setup)
        return out.stdout.decode(errors="replace")

    def answered(text, name):
        return re.search(r"^%s\.\s+\d+\s+IN\s+A\s+%s\s*$" % (re.escape(name), re.escape(ANSWER)),
                         text, re.M) is not None

    if dig:
        before = status(cfg)
        text = run([dig, "@127.0.0.1", "-p", str(dport), "dig.test.example", "+notcp",
                    "+tries=1", "+timeout=2"])
        after = status(cfg)
        if answered(text, "dig.test.example"):
            print("dig under socksify: answered through the front")
        else:
            dropped = (after["datagrams"]["dropped"]["malformed"] -
                       before["datagrams"]["dropped"]["malformed"])
            print("dig under socksify: no answer; its query reached the relay without a SOCKS "
                  "header (sendmmsg, which Dante does not intercept) and was dropped as malformed")
            t.check("dig's headerless datagrams counted as malformed", dropped, 1, ">=")
    if not drill:
        raise mptlib.Skip("drill (Debian ldnsutils) is missing; dig cannot be carried by "
                          "socksify here (sendmmsg)")
    q0 = queries()
    st0 = status(cfg)
    ok = 0
    for name in NAMES:
        text = run([drill, "-p", str(dport), name, "@127.0.0.1"])
        if answered(text, name):
            ok += 1
        else:
            print("drill %s: %s" % (name, text.strip()[-400:]))
    t.check("names answered through socksify and the tunnel", ok, len(NAMES), "==")
    time.sleep(0.3)
    t.check("queries at the resolver", queries() - q0, len(NAMES), ">=")
    st = status(cfg)
    print("socks status: %s" % json.dumps(st))
    t.check("associations made by drill", st["associations"]["total"] - st0["associations"]["total"],
            len(NAMES), "==")
    t.check("replies through the front", st["datagrams"]["out"] - st0["datagrams"]["out"],
            len(NAMES), ">=")
    end = time.monotonic() + 3
    while st["associations"]["open"] and time.monotonic() < end:
        time.sleep(0.1)
        st = status(cfg)
    t.check("associations open once drill exited", st["associations"]["open"], 0, "==")
    if responder:
        responder.close()


mptlib.run(body, budget=90)
