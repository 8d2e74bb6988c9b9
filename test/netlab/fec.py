#!/usr/bin/env python3
"""fec mode in the lab: client, three relay hosts running `mptunnel bridge` that each lose 20% of
the datagrams each way, a server host, all joined by veth pairs of MTU 1500 (IPv4), an echo in the
server host.

1. Datagrams of 1,300-1,400 bytes (each fits a path whole) at 5,000/s (blocks of about 50 within
   their 10 ms; at 3,000/s blocks of 30 need 1.65 times the payload): the residual loss each way
   at most redundant mode's p^3 (0.008), and the bytes each end sent on its paths (probes,
   repairs and headers included, from its status) per payload byte at most 1.6.
2. Datagrams of 2,000-4,000 bytes, which the tunnel must split into pieces of at most a path's
   1,472 bytes (PROTOCOL.md §5 PIECE) at 2,500/s: the client codes its pieces like any datagram,
   so the loss of whole datagrams towards the target stays within that of their 2-3 pieces each
   losing p^3 at most (0.024). Replies' pieces are sent once, not coded (§11): their loss is
   printed.
3. The flow's lifetime: with flow_timeout = 2s on both ends the flow expires (status shows 0 flows
   on both), and a new flow is protected again (1, anew).

Nothing duplicated or corrupted. A run whose figures miss a limit is repeated up to twice (the
figure fails if all three miss): on a loaded 2-core host a process of the chain held off the CPU
loses a run 1-30% at once. Expected (runs at a load average of 7-8) against the limits: residual
0.002-0.007 each way (0.008; the plan's model 0.0016), wire 1.51-1.54 (1.6); split datagrams
0.006-0.016 forward (0.024), 43% back (printed only: one uncoded piece lost loses the reply).
"""
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402
import lifelib  # noqa: E402 - test/integration/lib, on the path netlab set

LOSS = 0.2
RES_LIMIT = 0.008  # redundant mode's p^3 over 3 paths
WIRE_LIMIT = 1.6
SPLIT_LIMIT = 3 * RES_LIMIT
RATE = 5000
COUNT = 10000
ATTEMPTS = 3
SIZES = "1300-1400"
SPLIT_RATE = 2500
SPLIT_COUNT = 5000
SPLIT_SIZES = "2000-4000"
FLOW_TIMEOUT_S = 2
DUPLICATES = [0]  # over every run, whether its figures were kept or not




def flows(st):
    return st["flows"]["used"]



def echo_stats(tun):
    """The echo's figures so far (SIGUSR1: it writes them and goes on)."""
    echo = tun["echo"]
    try:
        before = os.stat(echo.stats).st_ino
    except OSError:
        before = None
    echo.signal(signal.SIGUSR1)
    end = time.monotonic() + 5
    while True:
        try:
            if os.stat(echo.stats).st_ino != before:
                with open(echo.stats) as f:
                    return json.load(f)
        except (OSError, ValueError):
            pass
        if time.monotonic() > end:
            raise netlab.Failed("the echo wrote no figures")
        time.sleep(0.02)


def protected(t, lab, client, tun, label, count, rate, sizes, seed, limits):
    """Runs of a new flow each: the residual loss each way and the wire bytes per payload byte of
    the first whose figures are within limits (forward loss, reverse loss, wire bytes; None: not
    asked), or of the last of ATTEMPTS: on this loaded 2-core host a process of the chain is now
    and then held off the CPU long enough to lose a run 1-2% at once, whatever the mode."""
    for attempt in range(ATTEMPTS):
        res = protected_once(t, lab, client, tun, "%s, run %d" % (label, attempt + 1), count,
                             rate, sizes, seed + 100 * attempt)
        f, up, down = res[0], res[1], res[2]
        if all(lim is None or v <= lim for v, lim in
               zip((f["fwd_loss"], f["rev_loss"], max(up, down)), limits)):
            break
        print("%s: a figure missed its limit; measuring once more" % label, flush=True)
    return res


def protected_once(t, lab, client, tun, label, count, rate, sizes, seed):
    cfg = tun["cfg"]
    c0, s0, e0 = lifelib.status(cfg, "client"), lifelib.status(cfg, "server"), echo_stats(tun)
    r = lab.udpgen_send(client, tun["listen"], count, rate, size=sizes, seed=seed, linger=1500)
    c1, s1, e1 = lifelib.status(cfg, "client"), lifelib.status(cfg, "server"), echo_stats(tun)
    f = t.figures(r, e1)
    DUPLICATES[0] += r["duplicates"]
    # Payload bytes: what the target got (and echoed), and what was sent by the same mean size.
    echoed = float(e1["bytes"] - e0["bytes"])
    up = (lifelib.tx_bytes(c1) - lifelib.tx_bytes(c0)) / (
        echoed * r["sent"] / max(f["fwd_delivered"], 1))
    down = (lifelib.tx_bytes(s1) - lifelib.tx_bytes(s0)) / max(echoed, 1)
    cf0, cf1, sf0, sf1 = (lifelib.fec_of(d) for d in (c0, c1, s0, s1))
    print("%s: residual loss %.5f forward, %.5f back; wire bytes per payload byte %.3f forward, "
          "%.3f back; recovered %d forward, %d back; %d pieces sent by the client" %
          (label, f["fwd_loss"], f["rev_loss"], up, down, sf1["recovered"] - sf0["recovered"],
           cf1["recovered"] - cf0["recovered"],
           c1["split"]["pieces_sent"] - c0["split"]["pieces_sent"]), flush=True)
    return f, up, down, r, sf1["recovered"] - sf0["recovered"]


def body(t, lab):
    client = lab.host("client")
    server = lab.host("server")
    paths = lab.relay_paths(client, server, 3, mtu=1500)
    opts = [["--loss", str(LOSS), "--seed", str(71 + i)] for i in range(3)]
    tun = lab.tunnel(client, server, paths, bridge_opts=opts, mode="fec",
                     extra_client=["target_loss = 0.002", "flow_timeout = %ds" % FLOW_TIMEOUT_S],
                     extra_server=["flow_timeout = %ds" % FLOW_TIMEOUT_S])
    lab.warm_up(client, tun["listen"])
    # A first run lets both ends measure each path's loss (the plans follow it).
    lab.udpgen_send(client, tun["listen"], RATE * 2, RATE, size=SIZES, seed=3, linger=500)

    limits = (RES_LIMIT, RES_LIMIT, WIRE_LIMIT)
    f, up, down, r, rec = protected(t, lab, client, tun, "1,300-1,400 bytes", COUNT, RATE,
                                    SIZES, 5, limits)
    t.check("forward residual loss", f["fwd_loss"], RES_LIMIT)
    t.check("reverse residual loss", f["rev_loss"], RES_LIMIT)
    t.check("wire bytes per payload byte forward", up, WIRE_LIMIT)
    t.check("wire bytes per payload byte back", down, WIRE_LIMIT)
    t.check("datagrams rebuilt by the server", rec, 1, ">=")

    f, up, down, r, rec = protected(t, lab, client, tun, "2,000-4,000 bytes, split",
                                    SPLIT_COUNT, SPLIT_RATE, SPLIT_SIZES, 6,
                                    (SPLIT_LIMIT, None, None))
    t.check("split datagrams: forward residual loss", f["fwd_loss"], SPLIT_LIMIT)
    t.check("split datagrams: pieces rebuilt by the server", rec, 1, ">=")
    print("split datagrams: reverse residual loss %.4f (replies' pieces are sent once, uncoded)"
          % f["rev_loss"])

    # The flows expire on both ends; a new flow is protected again.
    t0 = time.monotonic()
    while True:
        nc, ns = (flows(lifelib.status(tun["cfg"], r)) for r in ("client", "server"))
        if nc == 0 and ns == 0:
            break
        if time.monotonic() - t0 > 4 * FLOW_TIMEOUT_S + 5:
            raise netlab.Failed("flows still open after %.1f s: client %d, server %d"
                                % (time.monotonic() - t0, nc, ns))
        time.sleep(0.2)
    print("flows expired on both ends %.1f s after the last datagram" % (time.monotonic() - t0))
    f, up, down, r, rec = protected(t, lab, client, tun, "a new flow, 1,300-1,400 bytes", COUNT,
                                    RATE, SIZES, 8, limits)
    t.check("new flow: forward residual loss", f["fwd_loss"], RES_LIMIT)
    t.check("new flow: reverse residual loss", f["rev_loss"], RES_LIMIT)
    t.check("new flow: wire bytes per payload byte forward", up, WIRE_LIMIT)
    t.check("new flow: datagrams rebuilt by the server", rec, 1, ">=")
    st = lab.stop_echo(tun["echo"])
    t.check("duplicates", st["duplicates"] + DUPLICATES[0], 0, "==")
    t.check("corrupted", st["corrupt"], 0, "==")


netlab.run(body, budget=150)
