#!/usr/bin/env python3
"""Three paths, each losing 20% both ways: 10,000 datagrams (1-1200 bytes) each way through the
tunnel to an echo target. Residual one-way loss must stay near p^3 = 0.008 (limit 0.016), with no
duplicate and no corrupted datagram delivered in either direction."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

COUNT = 10000
RATE = 2000
LIMIT = 0.016


def body(t):
    secret = t.genkey()
    cport, sport, tport = t.port(), t.port(), t.port()
    bports = [t.port() for _ in range(3)]
    echo = t.echo("echo", "127.0.0.1:%d" % tport)
    cfg = t.write_config("t.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % p for p in bports], server_listen=sport,
                         target="127.0.0.1:%d" % tport)
    t.server(cfg)
    for i, p in enumerate(bports):
        t.bridge("bridge%d" % i, "127.0.0.1:%d" % p, "127.0.0.1:%d" % sport, "--loss", "0.2",
                 "--seed", str(101 + i))
    client = t.client(cfg)
    t.warm_up("127.0.0.1:%d" % cport)
    # Every path known to both ends before measuring.
    t.wait_log(client, r"path \d+ up", count=3, timeout=5)

    r = t.udpgen_send("127.0.0.1:%d" % cport, COUNT, RATE, size="1-1200", seed=7, linger=1500)
    st = t.stop_echo(echo)
    f = t.figures(r, st)
    t.check("forward residual loss", f["fwd_loss"], LIMIT)
    t.check("reverse residual loss", f["rev_loss"], LIMIT)
    t.check("forward duplicates", st["duplicates"], 0, "==")
    t.check("round-trip duplicates", r["duplicates"], 0, "==")
    t.check("forward corrupted", st["corrupt"], 0, "==")
    t.check("round-trip corrupted", r["corrupt"], 0, "==")
    t.check("misdelivered", r["misdelivered"], 0, "==")


mptlib.run(body, budget=100)
