#!/usr/bin/env python3
"""Fifty local applications (fifty sockets) through one client, over clean paths (one direct, one
through a relay without impairment): each sends numbered datagrams to an echo target and must get
exactly its own replies back: 0 misdelivered, 0 lost, 0 duplicated, and the target sees fifty
separate flows."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

FLOWS = 50
PER_FLOW = 200
RATE = 2000


def body(t):
    secret = t.genkey()
    cport, sport, tport, bport = t.port(), t.port(), t.port(), t.port()
    echo = t.echo("echo", "127.0.0.1:%d" % tport)
    cfg = t.write_config("t.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % sport, "127.0.0.1:%d" % bport],
                         server_listen=sport, target="127.0.0.1:%d" % tport)
    t.server(cfg)
    t.bridge("bridge", "127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport)
    client = t.client(cfg)
    t.warm_up("127.0.0.1:%d" % cport)
    t.wait_log(client, r"path \d+ up", count=2, timeout=5)
    # 14 bytes and more: every datagram carries its flow id and number in full, so a misdelivery
    # is always recognised.
    r = t.udpgen_send("127.0.0.1:%d" % cport, FLOWS * PER_FLOW, RATE, size="14-1200",
                      flows=FLOWS, seed=3, linger=1000)
    st = t.stop_echo(echo)
    f = t.figures(r, st)
    per = [(x["sent"], x["received_unique"], x["misdelivered"]) for x in r["flows"]]
    print("%d flows; per flow sent %d..%d, got back %d..%d" % (
        len(per), min(p[0] for p in per), max(p[0] for p in per), min(p[1] for p in per),
        max(p[1] for p in per)))
    t.check("applications", len(r["flows"]), FLOWS, "==")
    t.check("flows seen by the target", f["target_flows"], FLOWS, "==")
    t.check("misdelivered replies", r["misdelivered"], 0, "==")
    t.check("stray replies", r["stray"], 0, "==")
    t.check("flows that lost a datagram", sum(1 for p in per if p[1] != p[0]), 0, "==")
    t.check("forward loss", f["fwd_loss"], 0.0, "<=")
    t.check("reverse loss", f["rev_loss"], 0.0, "<=")
    t.check("duplicates", st["duplicates"] + r["duplicates"], 0, "==")
    t.check("corrupted", st["corrupt"] + r["corrupt"], 0, "==")


mptlib.run(body, budget=60)
