#!/usr/bin/env python3
"""Balance mode over links of given capacity (tc tbf) and delay (`mptunnel bridge --delay`): TCP
through OpenVPN (static key, tun-mtu 1340 so that no datagram is fragmented) with iperf3, and UDP
with udpgen, against figures measured in the same run.

Hosts: client, server, three relay hosts running `mptunnel bridge`, the link from the client to
each relay shaped both ways, and a fourth relay for the baseline: OpenVPN over one path alone
(20 Mbit/s, 2 ms), `alone`. Links of capacities C1..C3 should carry alone * (C1 + C2 + C3) / 20;
the checks are fractions of that (each TCP figure the best of two 6-second runs, the first 3 s
of each left out: TCP's start, and the shares finding the capacities):
- 3 x 20 Mbit/s, 5 ms each way: at least 90% (94-97% measured in 7 runs alone);
- 3 x 20 Mbit/s, one-way delays 2/15/40 ms: at least 85% (92-97% in 7 runs alone; 91-96% on a
  host loaded by other work, with one run of four at 51% there; without ordering the tunnel got
  6%, and with half the RTTs as the paths' delays 84-89%);
- 10/20/40 Mbit/s (equal weights), 5 ms: at least 85% each way (uploads 0.92-0.97 in runs
  alone; by weight alone, 42%; with caps as shares only, 58-93%; with a queue taken from the
  round trip, 87-96%), the way back once the server keeps the caps the client measures for it;
- 2/15/40 ms, UDP at 2,000 datagrams/s (after 2 s of the same): at least 99.9% in order, and the
  p99 round trip no more than the fast path's (redundant mode: the first copy comes over it) plus
  twice the delay difference and 5 ms;
- one path of three losing 50% (after 2 s of traffic to find it out): UDP loss at most 1% each
  way.
Throughput ratios, order and delay are asserted as netlab.check_throughput says (in CI, or on an
unloaded host: a busy host stalls the bridges' delays by tens of milliseconds); loss always.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402

TCP_SECS, TCP_OMIT, TCP_ROUNDS = 6, 3, 2
UDP_COUNT, UDP_RATE = 10000, 2000
# name, rates (Mbit/s), one-way delays (ms), least fraction of the links' sum, and of a
# download from the server (None: not measured)
TCP_CASES = [
    ("equal", (20, 20, 20), (5, 5, 5), 0.90, None),
    ("delays", (20, 20, 20), (2, 15, 40), 0.85, None),
    ("capacities", (10, 20, 40), (5, 5, 5), 0.85, 0.85),
]


def stop_tunnel(t, tun):
    for pr in tun["bridges"] + [tun["client"], tun["server"]]:
        t.stop(pr, timeout=3)


def body(t, lab):
    lab.need("openvpn", "iperf3", "tc")
    if not os.path.exists("/dev/net/tun"):
        raise netlab.Skip("/dev/net/tun is missing")
    client = lab.host("client")
    server = lab.host("server")
    paths = lab.shaped_paths(client, server, ["20mbit"] * 3)
    key = t.path("static.key")
    lab.sh(client, ["openvpn", "--genkey", "secret", key])
    alone, lb = lab.alone_vpn(client, server, key)
    port = 5201
    best_alone = 0.0
    for k, (name, rates, delays, least, back_least) in enumerate(TCP_CASES):
        for (_, li, _), rate in zip(paths, rates):
            lab.set_rate(li, "%dmbit" % rate)
        tun = lab.tunnel(client, server, paths, bridge_opts=netlab.path_opts(delays),
                         target="127.0.0.1:%d" % (1200 + k), client_port=3000 + k,
                         server_port=2000 + k, bridge_port=4000 + k, name=name, mode="balance")
        mpt = netlab.OpenVpn(lab, name, client, server, tun["listen"], 1200 + k, key, 1340)
        mpt.ready()
        # The baseline alternates with the first case; later cases run the tunnel alone.
        vpns = [alone, mpt] if k == 0 else [mpt]
        got = lab.tcp_best(client, server, vpns, TCP_SECS, TCP_ROUNDS, port, omit=TCP_OMIT)
        port += TCP_ROUNDS * len(vpns)
        if k == 0:
            best_alone = got[0]
        m = got[-1]
        expect = best_alone * sum(rates) / 20.0
        print("%s: links %s Mbit/s, delays %s ms: OpenVPN alone on one 20 Mbit/s path %.1f "
              "Mbit/s, through the tunnel %.1f Mbit/s (the links' sum at that rate: %.1f); %d "
              "packets dropped as replays" % (name, rates, delays, best_alone / 1e6, m / 1e6,
                                              expect / 1e6, mpt.replays()), flush=True)
        lab.check_throughput("%s: TCP through the tunnel / the links' sum" % name,
                             m / expect if expect else 0.0, least)
        if back_least:
            # The server's direction: the caps the client measured for it.
            b = lab.tcp_best(client, server, [mpt], TCP_SECS, TCP_ROUNDS, port, omit=TCP_OMIT,
                             reverse=True)[0]
            port += TCP_ROUNDS
            lab.check_throughput("%s: TCP from the server through the tunnel / the links' sum"
                                 % name, b / expect if expect else 0.0, back_least)
        mpt.stop(t)
        stop_tunnel(t, tun)
    alone.stop(t)
    lab.bridge_counts(lb)
    for (_, li, _) in paths:
        lab.set_rate(li, "20mbit")

    def udp(name, mode, delays, losses, k, warm=0):
        tun = lab.tunnel(client, server, paths, bridge_opts=netlab.path_opts(delays, losses),
                         client_port=3100 + k, server_port=2100 + k, bridge_port=4100 + k,
                         name=name, mode=mode, echo_addr="127.0.0.1:%d" % (7100 + k))
        lab.warm_up(client, tun["listen"])
        if warm:
            lab.udpgen_send(client, tun["listen"], warm * UDP_RATE, UDP_RATE, size="16-1200",
                            seed=99, linger=200)
        r = lab.udpgen_send(client, tun["listen"], UDP_COUNT, UDP_RATE, size="1-1200")
        st = lab.stop_echo(tun["echo"])
        stop_tunnel(t, tun)
        return r, t.figures(r, st)

    # Order and delay over 2/15/40 ms.
    ref, _ = udp("udp-fast", "redundant", (2, 15, 40), None, 0)
    r, _ = udp("udp-delays", "balance", (2, 15, 40), None, 1, warm=2)
    in_order = 1 - r["reordered"] / max(r["received_unique"], 1)
    print("udp over 2/15/40 ms: %d of %d echoed, %d out of order; RTT p50 %.1f p99 %.1f ms (fast "
          "path: p50 %.1f p99 %.1f ms)" % (r["received_unique"], r["sent"], r["reordered"],
                                           r["rtt_us"]["p50"] / 1e3, r["rtt_us"]["p99"] / 1e3,
                                           ref["rtt_us"]["p50"] / 1e3, ref["rtt_us"]["p99"] / 1e3))
    # Timing figures: a host busy with other work stalls the bridges' delays by tens of
    # milliseconds, past any margin, so these are asserted as the throughput ratios are.
    lab.check_throughput("udp over 2/15/40 ms: datagrams in order", in_order, 0.999, fmt="%.4f")
    lab.check_throughput("udp over 2/15/40 ms: RTT p99 over the fast path's (ms)",
                         (r["rtt_us"]["p99"] - ref["rtt_us"]["p99"]) / 1e3, 2 * (40 - 2 + 5),
                         op="<=", fmt="%.1f")
    # One path of three losing 50% each way.
    r, f = udp("udp-loss", "balance", (5, 5, 5), (0.5, 0, 0), 2, warm=2)
    t.check("one path losing 50%: loss to the target", f["fwd_loss"], 0.01, fmt="%.4f")
    t.check("one path losing 50%: loss of the echoes", f["rev_loss"], 0.01, fmt="%.4f")


netlab.run(body, budget=200)
