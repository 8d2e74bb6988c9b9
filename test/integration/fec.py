#!/usr/bin/env python3
"""fec mode on real processes: three paths through bridges losing 20% each way, then one path of
10% alone. 1,000-byte datagrams to an echo target; the residual loss each way and the bytes the
client sent on its paths per payload byte (probes and headers included, from its status), against
the figures asked of the mode; no duplicate and no corrupted datagram delivered. The client's
status shows datagrams recovered by repair."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mptlib  # noqa: E402

COUNT = 18000
RATE = 6000
SIZE = 1000

CASES = [
    # name, loss per path, target_loss, residual limit, wire/payload limit
    ("3 paths at 20%", [0.2, 0.2, 0.2], 0.001, 0.008, 1.6),
    ("1 path at 10%", [0.1], 0.0002, 0.001, 1.4),
]




def run_case(t, n, name, losses, target, res_limit, wire_limit):
    secret = t.genkey()
    cport, sport, tport = t.port(), t.port(), t.port()
    bports = [t.port() for _ in losses]
    echo = t.echo("echo%d" % n, "127.0.0.1:%d" % tport)
    cfg = t.write_config("fec%d.ini" % n, secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % p for p in bports], server_listen=sport,
                         target="127.0.0.1:%d" % tport,
                         extra_client=["mode = fec", "target_loss = %g" % target])
    server = t.server(cfg)
    bridges = [t.bridge("bridge%d.%d" % (n, i), "127.0.0.1:%d" % p, "127.0.0.1:%d" % sport,
                        "--loss", str(loss), "--seed", str(101 + i))
               for i, (p, loss) in enumerate(zip(bports, losses))]
    client = t.client(cfg)
    t.warm_up("127.0.0.1:%d" % cport)
    t.wait_log(client, r"path \d+ up", count=len(losses), timeout=5)
    # A first run lets both ends measure each path's loss (the plan follows it).
    t.udpgen_send("127.0.0.1:%d" % cport, RATE * 2, RATE, size=str(SIZE), seed=3, linger=500)
    st0 = lifelib.status(cfg, "client")
    r = t.udpgen_send("127.0.0.1:%d" % cport, COUNT, RATE, size=str(SIZE), seed=7, linger=1500)
    st1 = lifelib.status(cfg, "client")
    es = t.stop_echo(echo)
    f = t.figures(r, es)
    ratio = (lifelib.tx_bytes(st1) - lifelib.tx_bytes(st0)) / float(r["sent"] * SIZE)
    print("%s: %d sent; residual loss %.5f forward, %.5f back; %.3f wire bytes per payload "
          "byte; client recovered %d replies, gave up %d" %
          (name, r["sent"], f["fwd_loss"], f["rev_loss"], ratio,
           st1["session"]["fec"]["recovered"], st1["session"]["fec"]["given_up"]))
    t.check("%s: forward residual loss" % name, f["fwd_loss"], res_limit)
    t.check("%s: reverse residual loss" % name, f["rev_loss"], res_limit)
    t.check("%s: wire bytes per payload byte" % name, ratio, wire_limit)
    t.check("%s: replies recovered" % name, st1["session"]["fec"]["recovered"], 1, ">=")
    t.check("%s: forward duplicates" % name, es["duplicates"], 0, "==")
    t.check("%s: round-trip duplicates" % name, r["duplicates"], 0, "==")
    t.check("%s: corrupted" % name, es["corrupt"] + r["corrupt"], 0, "==")
    for pr in [client] + bridges + [server]:
        t.stop(pr)


def body(t):
    for n, c in enumerate(CASES):
        run_case(t, n, *c)


mptlib.run(body, budget=150)
