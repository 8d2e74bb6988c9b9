#!/usr/bin/env python3
"""Three paths, only one alive at a time: the test blacks out the live bridge (SIGUSR1) and brings
the next one back (SIGUSR2) every 0.5 s while traffic flows steadily. The tunnel must follow the
live path: end-to-end loss at most 1% in each direction, no duplicate, nothing corrupted."""
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

RATE = 1000
SECONDS = 10
PERIOD = 0.5
LIMIT = 0.01


def body(t):
    secret = t.genkey()
    cport, sport, tport = t.port(), t.port(), t.port()
    bports = [t.port() for _ in range(3)]
    echo = t.echo("echo", "127.0.0.1:%d" % tport)
    cfg = t.write_config("t.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % p for p in bports], server_listen=sport,
                         target="127.0.0.1:%d" % tport)
    t.server(cfg)
    bridges = [t.bridge("bridge%d" % i, "127.0.0.1:%d" % p, "127.0.0.1:%d" % sport)
               for i, p in enumerate(bports)]
    client = t.client(cfg)
    t.warm_up("127.0.0.1:%d" % cport)
    t.wait_log(client, r"path \d+ up", count=3, timeout=5)
    for b in bridges[1:]:
        b.signal(signal.SIGUSR1)

    stop = threading.Event()
    rotations = [0]

    def rotate():
        live = 0
        next_t = time.monotonic() + PERIOD
        while not stop.wait(max(0, next_t - time.monotonic())):
            nxt = (live + 1) % 3
            bridges[live].signal(signal.SIGUSR1)
            bridges[nxt].signal(signal.SIGUSR2)
            live = nxt
            rotations[0] += 1
            next_t += PERIOD
        for b in bridges:
            b.signal(signal.SIGUSR2)

    th = threading.Thread(target=rotate, daemon=True)
    th.start()
    try:
        r = t.udpgen_send("127.0.0.1:%d" % cport, RATE * SECONDS, RATE, size="1-1200", seed=11,
                          linger=1000)
    finally:
        stop.set()
        th.join(2)
    st = t.stop_echo(echo)
    print("%d rotations, one live path every %.1f s, %d datagrams/s" % (rotations[0], PERIOD,
                                                                         RATE))
    f = t.figures(r, st)
    t.check("forward end-to-end loss", f["fwd_loss"], LIMIT)
    t.check("reverse end-to-end loss", f["rev_loss"], LIMIT)
    t.check("forward duplicates", st["duplicates"], 0, "==")
    t.check("round-trip duplicates", r["duplicates"], 0, "==")
    t.check("corrupted", st["corrupt"] + r["corrupt"], 0, "==")


mptlib.run(body, budget=100)
