#!/usr/bin/env python3
"""Per-path sockets: a [path] with `bind = 127.0.0.2` sends from that address (a relay in the test
sees it as the source), a [path] with `device = lo` (SO_BINDTODEVICE) carries traffic, and a plain
`bridge =` line shares the default socket. Every path comes up and traffic flows without loss."""
import os
import re
import socket
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402


class Relay(threading.Thread):
    """A UDP relay that records the source addresses of what it forwards towards `to`."""

    def __init__(self, listen_port, to):
        super().__init__(daemon=True)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", listen_port))
        self.s.settimeout(0.1)
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.connect(to)
        self.up.settimeout(0.0)
        self.to = to
        self.sources = set()
        self.peer = None
        self.stopped = False

    def run(self):
        while not self.stopped:
            try:
                d, a = self.s.recvfrom(65536)
                self.sources.add(a[0])
                self.peer = a
                self.up.send(d)
            except socket.timeout:
                pass
            except OSError:
                pass
            try:
                while True:
                    d = self.up.recv(65536)
                    if self.peer:
                        self.s.sendto(d, self.peer)
            except (BlockingIOError, OSError):
                pass


def body(t):
    secret = t.genkey()
    cport, sport, tport, rport = t.port(), t.port(), t.port(), t.port()
    echo = t.echo("echo", "127.0.0.1:%d" % tport)
    relay = Relay(rport, ("127.0.0.1", sport))
    relay.start()
    extra = ["", "[path bound]", "bridge = 127.0.0.1:%d" % rport, "bind = 127.0.0.2",
             "", "[path lo]", "bridge = 127.0.0.1:%d" % sport, "device = lo"]
    cfg = t.write_config("t.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % sport], server_listen="127.0.0.1:%d" % sport,
                         target="127.0.0.1:%d" % tport)
    with open(cfg, "a") as f:
        f.write("\n".join(extra) + "\n")
    t.server(cfg)
    client = t.start("client", [mptlib.MPTUNNEL, "client", "-c", cfg],
                     ready=r"client listening|cannot")
    if "Operation not permitted" in client.log() or "not permitted" in client.log():
        raise mptlib.Skip("SO_BINDTODEVICE needs CAP_NET_RAW here")
    t.warm_up("127.0.0.1:%d" % cport)
    text = t.wait_log(client, r"path \d+ up", count=3, timeout=5)
    up = sorted(set(int(x) for x in re.findall(r"path (\d+) up", text)))
    t.check("paths up (plain, bind 127.0.0.2, device lo)", len(up), 3, "==")
    r = t.udpgen_send("127.0.0.1:%d" % cport, 1000, 500, size="14-1200", seed=3, linger=800)
    st = t.stop_echo(echo)
    relay.stopped = True
    f = t.figures(r, st)
    print("sources seen by the relay of the bound path: %s" % sorted(relay.sources))
    t.expect(relay.sources == {"127.0.0.2"}, "the bound path sends from 127.0.0.2 only")
    t.check("forward loss", f["fwd_loss"], 0.01)
    t.check("reverse loss", f["rev_loss"], 0.01)


mptlib.run(body, budget=60)
