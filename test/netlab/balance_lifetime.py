#!/usr/bin/env python3
"""Balance mode's estimates over their lifetime: made, expired, and made again after the server
came back with another clock, each way over links of 10/20/40 Mbit/s (5 ms each way, as
netlab.balance's `capacities`), through OpenVPN with iperf3, flows expiring after 2 s idle on
both ends, the client logging its estimates (log_level = debug: a line per acknowledged probe).

1. TCP up, then down, FILL_SECS s each: the paths that fill get a cap, each way.
2. Idle: OpenVPN stopped. The flows expire on both ends (status: 0 flows), and every cap of the
   client's is dropped (far above what its path is offered) within CAPS_GONE s.
3. The server restarted in a time namespace of its own whose monotonic clock is CLOCK_AHEAD s
   ahead, as a server moved to another host would be: the new session does not follow the last,
   so the client's one-way delays must start over on the new clock (kept, every path's queue
   up would read CLOCK_AHEAD s and each path would be capped to a trickle), and the server's
   per-path caps come again with the probes.
4. TCP up and down again (best of two 6-second runs each, the first 3 s left out): at least 85%
   of the links' sum each way, as netlab.balance asserts for a fresh tunnel (the baseline is
   OpenVPN alone over one 20 Mbit/s path, as there, in runs alternating with those up); caps
   found again each way; and the queues the client estimates in
   the first QUEUE_SECS s of the new session within what the links hold (90th percentile at most
   QUEUE_LIMIT_MS; tbf holds 50 ms).
Throughput ratios are asserted as netlab.check_throughput says; everything else always."""
import os
import re
import sys
import time
from datetime import datetime

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402
import lifelib  # noqa: E402 - test/integration/lib, on the path netlab set

RATES = (10, 20, 40)
DELAYS = (5, 5, 5)
LEAST = 0.85
TCP_SECS, TCP_OMIT = 6, 3
FILL_SECS = 4
FLOW_TIMEOUT = 2
CAPS_GONE = 15.0
CLOCK_AHEAD = 1000
QUEUE_SECS, QUEUE_LIMIT_MS = 10.0, 500.0

# A debug line of the client's per acknowledged probe (core/client.c); whole lines only (the
# stamp in full), since the log is read from an offset that may fall inside a line.
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
EST_LINE = re.compile(
    r"^(" + STAMP + r") debug: path (\d+): rtt [\d.]+ ms; up: queue ([\d.]+) ms, \d+/s delivered, "
    r"cap (\d+)/s(?:, full)?; down: queue ([\d.]+) ms, \d+/s delivered, cap (\d+)/s", re.M)
ESTABLISHED = re.compile(r"^(" + STAMP + r") info: session [0-9a-f]+ established", re.M)


def stamp(s):
    return datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def estimates(text):
    """[(time, path, queue up ms, cap up, queue down ms, cap down)] from a client's log."""
    return [(stamp(m.group(1)), int(m.group(2)), float(m.group(3)), int(m.group(4)),
             float(m.group(5)), int(m.group(6))) for m in EST_LINE.finditer(text)]


def capped(est, down):
    """The paths with a cap in some of est, one way."""
    return sorted({e[1] for e in est if e[5 if down else 3] > 0})


def latest_caps(text):
    """{path: (cap up, cap down)} at each path's last estimate in text."""
    return {e[1]: (e[3], e[5]) for e in estimates(text)}


def p90(vals):
    vals = sorted(vals)
    return vals[min(len(vals) - 1, int(0.9 * len(vals)))] if vals else 0.0


def body(t, lab):
    lab.need("openvpn", "iperf3", "tc", "unshare")
    if not os.path.exists("/dev/net/tun"):
        raise netlab.Skip("/dev/net/tun is missing")
    client = lab.host("client")
    server = lab.host("server")
    paths = lab.shaped_paths(client, server, ["%dmbit" % r for r in RATES])
    key = t.path("static.key")
    lab.sh(client, ["openvpn", "--genkey", "secret", key])
    alone, lb = lab.alone_vpn(client, server, key)
    timeouts = ["flow_timeout = %ds" % FLOW_TIMEOUT]
    tun = lab.tunnel(client, server, paths, bridge_opts=netlab.path_opts(DELAYS),
                     target="127.0.0.1:1200", mode="balance", name="life",
                     extra_client=timeouts, extra_server=timeouts,
                     extra_tunnel=["log_level = debug"])
    cfg, cl = tun["cfg"], tun["client"]
    expect_sum = sum(RATES) / 20.0
    port = [5201]

    def tcp(vpns, rounds, reverse=False, secs=TCP_SECS, omit=TCP_OMIT):
        got = lab.tcp_best(client, server, vpns, secs, rounds, port[0], omit=omit,
                           reverse=reverse)
        port[0] += rounds * len(vpns)
        return got

    # ---- 1. the estimates made ----
    mpt = netlab.OpenVpn(lab, "life", client, server, tun["listen"], 1200, key, 1340)
    mpt.ready()
    mark = len(cl.log())
    up0, = tcp([mpt], 1, secs=FILL_SECS, omit=0)
    up_caps0 = capped(estimates(cl.log()[mark:]), 0)
    mark = len(cl.log())
    down0, = tcp([mpt], 1, reverse=True, secs=FILL_SECS, omit=0)
    down_caps0 = capped(estimates(cl.log()[mark:]), 1)
    print("fresh: up %.1f Mbit/s (caps on paths %s), down %.1f Mbit/s (caps on paths %s), over "
          "%d s from the start" % (up0 / 1e6, up_caps0, down0 / 1e6, down_caps0, FILL_SECS),
          flush=True)
    t.expect(up_caps0 and down_caps0, "caps formed each way while TCP filled the paths")

    # ---- 2. idle: the flows and the caps expire ----
    mpt.stop(t)
    idle = time.monotonic()
    n, secs = lifelib.wait_until(lambda: (lifelib.used(cfg, "client", "flows"),
                                          lifelib.used(cfg, "server", "flows")) == (0, 0),
                                 FLOW_TIMEOUT + 10)
    t.expect(n, "the flows expired on both ends (client, server: 0 flows)")
    print("flows expired on both ends %.1f s after the traffic stopped" % secs, flush=True)
    gone, _ = lifelib.wait_until(
        lambda: (lambda c: len(c) == len(RATES) and all(v == (0, 0) for v in c.values()))(
            latest_caps(cl.log()[-20000:])), CAPS_GONE - (time.monotonic() - idle), step=0.2)
    left = time.monotonic() - idle
    t.check("every cap dropped after the traffic stopped (s)", left if gone else float("inf"),
            CAPS_GONE, fmt="%.1f")

    # ---- 3. the server back with another clock ----
    t.stop(tun["server"], timeout=3)
    mark = len(cl.log())
    restarted = time.monotonic()
    srv = lab.start(server, "server-ahead",
                    ["unshare", "--time", "--monotonic", str(CLOCK_AHEAD), netlab.mptlib.MPTUNNEL,
                     "server", "-c", cfg], ready=r"server listening")
    tun["server"] = srv
    _, secs = lifelib.wait_until(lambda: ESTABLISHED.search(cl.log()[mark:]), 10)
    new = ESTABLISHED.search(cl.log()[mark:])
    t.expect(new, "the client opened a session with the restarted server")
    print("new session %.1f s after the server restarted" % secs, flush=True)
    since = stamp(new.group(1))

    # ---- 4. the estimates made again ----
    mpt = netlab.OpenVpn(lab, "life2", client, server, tun["listen"], 1200, key, 1340)
    mpt.ready()
    m1 = len(cl.log())
    best_alone, up1 = tcp([alone, mpt], 2)
    up_est = estimates(cl.log()[m1:])
    m2 = len(cl.log())
    down1, = tcp([mpt], 2, reverse=True)
    down_est = estimates(cl.log()[m2:])
    expect = best_alone * expect_sum
    print("after the idle and the restart: up %.1f Mbit/s (caps on paths %s), down %.1f Mbit/s "
          "(caps on paths %s); OpenVPN alone %.1f Mbit/s, the links' sum at that rate %.1f "
          "Mbit/s" % (up1 / 1e6, capped(up_est, 0), down1 / 1e6, capped(down_est, 1),
                      best_alone / 1e6, expect / 1e6), flush=True)
    lab.check_throughput("after: TCP up through the tunnel / the links' sum", up1 / expect, LEAST)
    lab.check_throughput("after: TCP down through the tunnel / the links' sum", down1 / expect,
                         LEAST)
    t.expect(capped(up_est, 0) and capped(down_est, 1),
             "caps formed again each way after the restart")
    first = [e for e in estimates(cl.log()[mark:]) if since <= e[0] < since + QUEUE_SECS]
    print("%d estimates in the first %.0f s of the new session (%.1f s after the restart)"
          % (len(first), QUEUE_SECS, time.monotonic() - restarted), flush=True)
    t.check("estimates in the new session's first %.0f s" % QUEUE_SECS, len(first),
            QUEUE_SECS * 2 * len(RATES), ">=", fmt="%d")
    t.check("queue up the client estimated in the new session's first %.0f s, p90 (ms)"
            % QUEUE_SECS, p90([e[2] for e in first]), QUEUE_LIMIT_MS, fmt="%.1f")
    t.check("queue down the client estimated in the new session's first %.0f s, p90 (ms)"
            % QUEUE_SECS, p90([e[4] for e in first]), QUEUE_LIMIT_MS, fmt="%.1f")
    mpt.stop(t)
    alone.stop(t)
    lab.bridge_counts(lb)
    for pr in tun["bridges"] + [cl, srv]:
        t.stop(pr, timeout=3)


netlab.run(body, budget=170)
