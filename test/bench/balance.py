#!/usr/bin/env python3
"""Balance mode's aggregate throughput against the sum of its links, in the network lab (root,
network namespaces): three relay paths whose client links are shaped by tc tbf, udpgen sending
1,200-byte datagrams through the tunnel at 1.25 times the links' sum for a few seconds, the echo
sending each back. A row per set of links: what the target received, in Mbit/s of payload, and
its ratio to the links' sum (the paths also carry the tunnel's 44 bytes per datagram, and IP and
UDP headers, about 6%).

Usage: test/bench/balance.py [--quick]    (--quick: one short trial per row, for CI's smoke check;
no thresholds either way). Needs MPTUNNEL and MPT_TOOLS as the lab tests do.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netlab",
                                "lib"))
import netlab  # noqa: E402

QUICK = "--quick" in sys.argv[1:]
SECS = 1 if QUICK else 4
SIZE = 1200
# rates (Mbit/s), one-way delays (ms)
ROWS = [((20, 20, 20), (5, 5, 5)), ((20, 20, 20), (2, 15, 40)), ((10, 20, 40), (5, 5, 5))]


def body(t, lab):
    lab.need("tc")
    client = lab.host("client")
    server = lab.host("server")
    paths = lab.shaped_paths(client, server, ["20mbit"] * 3)
    rows = []
    for k, (rates, delays) in enumerate(ROWS):
        for (_, li, _), rate in zip(paths, rates):
            lab.set_rate(li, "%dmbit" % rate)
        tun = lab.tunnel(client, server, paths, bridge_opts=netlab.path_opts(delays),
                         client_port=3000 + k, server_port=2000 + k, bridge_port=4000 + k,
                         name="b%d" % k, mode="balance", echo_addr="127.0.0.1:%d" % (7000 + k))
        lab.warm_up(client, tun["listen"])
        pps = int(1.25 * sum(rates) * 1e6 / 8 / SIZE)
        # A second of the same first: the shares find the capacities.
        lab.udpgen_send(client, tun["listen"], pps, pps, size=str(SIZE), seed=7, linger=300)
        r = lab.udpgen_send(client, tun["listen"], pps * SECS, pps, size=str(SIZE), linger=500)
        f = t.figures(r, lab.stop_echo(tun["echo"]))
        for pr in tun["bridges"] + [tun["client"], tun["server"]]:
            t.stop(pr, timeout=3)
        mbps = f["fwd_delivered"] * SIZE * 8 / (r["seconds"] or SECS) / 1e6
        rows.append((rates, delays, pps, mbps, mbps / sum(rates)))
    print("\n| links (Mbit/s) | one-way delays (ms) | offered (datagrams/s) | received (Mbit/s) "
          "| of the links' sum |")
    print("|---|---|---|---|---|")
    for rates, delays, pps, mbps, ratio in rows:
        print("| %s | %s | %d | %.1f | %.0f%% |" % ("/".join(map(str, rates)),
                                                   "/".join(map(str, delays)), pps, mbps,
                                                   100 * ratio))
    t.check("rows measured", len(rows), len(ROWS), ">=", fmt="%d")


netlab.run(body, budget=110 if QUICK else 170, name="bench-balance")
