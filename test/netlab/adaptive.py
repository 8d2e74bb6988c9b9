#!/usr/bin/env python3
"""Adaptive mode comes back to the fast path: two relay paths over MTU-1500 links, one-way delays
10 ms and 150 ms (`mptunnel bridge --delay`), datagrams every 5 ms through the tunnel for 14 s,
each one's round trip recorded (lib/rttlog.py in the client host). From 4 s to 7 s the fast
path's relay drops every UDP datagram (nftables), then forwards them again. Checks:
- during the blackout the echoes go on over the slow path (the round trip of the slow path);
- after it the fast path carries the traffic again within 2 s: the first datagram from which on
  the median round trip of half a second is back within 10 ms of the median before the blackout,
  counted from the moment it ended (limit 2 s);
- the round trip's median from 3 s after the blackout to the end is within 10% of the median
  before it (1 s to 4 s)."""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402

SECS, INTERVAL_MS = 14.0, 5
BLACK_FROM, BLACK_TO = 4.0, 7.0
BACK_LIMIT_S = 2.0
P50_LIMIT = 0.10
RTTLOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "rttlog.py")


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else float("nan")


def body(t, lab):
    lab.need("nft")
    client = lab.host("client")
    server = lab.host("server")
    paths = lab.relay_paths(client, server, 2, mtu=1500)
    tun = lab.tunnel(client, server, paths, bridge_opts=netlab.path_opts((10, 150)),
                     mode="adaptive")
    lab.warm_up(client, tun["listen"])
    relay0 = paths[0][0]
    log = lab.start(client, "rttlog", [sys.executable, RTTLOG, tun["listen"], SECS, INTERVAL_MS])
    t0 = netlab.time.monotonic()

    def at(s):
        d = t0 + s - netlab.time.monotonic()
        if d > 0:
            netlab.time.sleep(d)

    at(BLACK_FROM)
    lab.sh(relay0, ["nft", "-f", "-"], input="table inet mptblack {\n chain in {\n"
           "  type filter hook input priority 0; meta l4proto udp drop\n }\n}\n".encode())
    black_at = netlab.time.monotonic() - t0
    at(BLACK_TO)
    lab.sh(relay0, ["nft", "delete", "table", "inet", "mptblack"])
    back_at = netlab.time.monotonic() - t0
    end = netlab.time.monotonic() + SECS + 10
    while log.alive() and netlab.time.monotonic() < end:
        netlab.time.sleep(0.1)
    doc = json.loads(log.stdout().strip().splitlines()[-1])
    step = doc["interval_ms"] / 1000.0
    rtt = doc["rtt_ms"]
    print("blackout of the fast path from %.2f s to %.2f s (planned %.1f-%.1f)"
          % (black_at, back_at, BLACK_FROM, BLACK_TO))

    def window(a, b):
        return [r for i, r in enumerate(rtt) if r is not None and a <= i * step < b]

    before = median(window(1.0, BLACK_FROM))
    during = median(window(black_at + 1.0, back_at))
    after = median(window(back_at + 3.0, SECS))
    print("round trip p50: %.1f ms before, %.1f ms during the blackout, %.1f ms after"
          % (before, during, after))
    t.check("echoes during the blackout (of %d sent)" % int((back_at - black_at - 1) / step),
            len(window(black_at + 1.0, back_at)), 0.9 * (back_at - black_at - 1) / step, ">=",
            fmt="%d")
    t.check("round trip p50 during the blackout (ms): the slow path's", during, 2 * 150, ">=",
            fmt="%.1f")
    # Back: the first datagram sent after the blackout whose round trip, and the median of the
    # next half second's, are within 10 ms of the median before (a stall of this host may delay
    # a few of them more).
    back = float("inf")
    span = int(0.5 / step)
    for i in range(int(back_at / step) + 1, len(rtt) - span):
        w = [r for r in rtt[i:i + span] if r is not None]
        if (rtt[i] is not None and rtt[i] <= before + 10 and len(w) > span // 2 and
                median(w) <= before + 10):
            back = i * step - back_at
            break
    t.check("seconds from the end of the blackout until the fast path carries the traffic",
            back, BACK_LIMIT_S, fmt="%.3f")
    t.check("round trip p50 after, relative to before", abs(after / before - 1), P50_LIMIT,
            fmt="%.3f")


netlab.run(body, budget=60)
