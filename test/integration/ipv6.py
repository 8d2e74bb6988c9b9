#!/usr/bin/env python3
"""IPv4 and IPv6 mixed: the server listens on a port alone (all addresses); one path goes straight
to [::1], one through a relay listening on [::1] that forwards to 127.0.0.1, one through a relay
on 127.0.0.1 that forwards to [::1]; the application talks to the client over ::1. Every path
must come up, and traffic must flow (at most 1% loss, on clean paths). Skipped (77) where ::1
is not available."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

COUNT = 2000
RATE = 1000
LIMIT = 0.01  # clean paths: any loss at all would be the host's, not the tunnel's


def body(t):
    secret = t.genkey()
    cport, sport, tport = t.port(), t.port(), t.port()
    b6, b4 = t.port(), t.port()
    echo = t.echo("echo", "127.0.0.1:%d" % tport)
    cfg = t.write_config("t.ini", secret, client_listen="[::1]:%d" % cport,
                         bridges=["[::1]:%d" % sport, "[::1]:%d" % b6, "127.0.0.1:%d" % b4],
                         server_listen=str(sport), target="127.0.0.1:%d" % tport)
    t.server(cfg)
    t.bridge("bridge6to4", "[::1]:%d" % b6, "127.0.0.1:%d" % sport)
    t.bridge("bridge4to6", "127.0.0.1:%d" % b4, "[::1]:%d" % sport)
    client = t.client(cfg)
    t.warm_up("[::1]:%d" % cport)
    text = t.wait_log(client, r"path \d+ up", count=3, timeout=5)
    up = sorted(set(int(x) for x in re.findall(r"path (\d+) up", text)))
    t.check("paths up (direct [::1], [::1]->127.0.0.1, 127.0.0.1->[::1])", len(up), 3, "==")
    r = t.udpgen_send("[::1]:%d" % cport, COUNT, RATE, size="14-1200", seed=6, linger=800)
    st = t.stop_echo(echo)
    f = t.figures(r, st)
    t.check("forward loss", f["fwd_loss"], LIMIT)
    t.check("reverse loss", f["rev_loss"], LIMIT)
    t.check("duplicates", st["duplicates"] + r["duplicates"], 0, "==")
    t.check("corrupted", st["corrupt"] + r["corrupt"], 0, "==")


mptlib.run(body, budget=60, needs_ipv6=True)
