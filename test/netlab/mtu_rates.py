#!/usr/bin/env python3
"""Large datagrams at high rates across MTU-1500 links: three relay paths (bridges on relay hosts,
veth pairs of MTU 1500, IPv4), an echo in the server host. 1,500-byte datagrams at 20,000/s, then
9,000-byte ones at 5,000/s (both larger than a link's MTU once tunnelled: the tunnel sends them as
pieces that fit, 2 and 7 of them, each way), 2 s each. One-way loss at most 0.1% each way, no
duplicate, no corrupted datagram, and every datagram split by the tunnel (as IP fragments, 40-80%
of them were lost here: the relays could not keep up). A tunnel that sends batches with UDP GSO
whose segments exceed the route's MTU loses whole batches here.

For the reader of a failure, each run also prints the datagrams dropped by full receive buffers
in each host (the kernel's UDP RcvbufErrors), and the same rates of plain UDP over one of the
same links without the tunnel (the machine's floor)."""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402

LIMIT = 0.001
RUNS = [  # (size, rate, seconds)
    (1500, 20000, 2.0),
    (9000, 5000, 2.0),
]
BUF = 64 << 20
# A sanitized build spends several times the CPU per datagram, and a host loaded by others has
# less of it to give: there the same checks run at a quarter of the rates, for as long, so that
# the loss figures still say whether pieces are lost rather than whether the CPU kept up.
SLOW_FACTOR = 0.25


def rate_factor(lab):
    ci = os.environ.get("CI") == "true"
    loaded = lab.load_at_start > netlab.LOADED_PER_CPU * (os.cpu_count() or 1)
    if "ASAN_OPTIONS" in os.environ or (loaded and not ci):
        print("rates at %g of the nominal ones (%s)" % (
            SLOW_FACTOR, "sanitized build" if "ASAN_OPTIONS" in os.environ
            else "host load average %.1f at the start" % lab.load_at_start))
        return SLOW_FACTOR
    return 1.0


def body(t, lab):
    client = lab.host("client")
    server = lab.host("server")
    paths = lab.relay_paths(client, server, 3, mtu=1500)
    relay0, li0, _ = paths[0]
    floor = lab.echo(relay0, "floor-echo", "%s:7001" % li0.addr(relay0), bufsize=BUF)
    tun = lab.tunnel(client, server, paths, bufsize=BUF)
    lab.warm_up(client, tun["listen"])
    hosts = [client, server] + [p[0] for p in paths]
    seed = 11
    split = (0, 0)
    factor = rate_factor(lab)
    for size, rate, secs in RUNS:
        rate = int(rate * factor)
        count = int(rate * secs)
        what = "%d-byte datagrams at %d/s" % (size, rate)
        seed += 1
        fr = lab.udpgen_send(client, "%s:7001" % li0.addr(relay0), count, rate, size=str(size),
                             seed=seed + 100, linger=1000, bufsize=BUF)
        print("%s, plain UDP over one link without the tunnel: %d sent, %d echoed"
              % (what, fr["sent"], fr["received_unique"]))
        before = {h.role: lab.snmp(h)["Udp"]["RcvbufErrors"] for h in hosts}
        r = lab.udpgen_send(client, tun["listen"], count, rate, size=str(size), seed=seed,
                            linger=1500, bufsize=BUF)
        st = lab.stop_echo(tun["echo"])
        for h in hosts:
            d = lab.snmp(h)["Udp"]["RcvbufErrors"] - before[h.role]
            if d:
                print("%s: %s: %d datagrams dropped by full receive buffers" % (what, h.role, d))
        f = t.figures(r, st)
        if f["fwd_loss"] > LIMIT or f["rev_loss"] > LIMIT:
            for role in ("client", "server"):
                print(lab.sh(client, [netlab.mptlib.MPTUNNEL, "status", "-c", tun["cfg"],
                                      "--" + role], check=False))
        t.check(what + ": forward loss", f["fwd_loss"], LIMIT)
        t.check(what + ": reverse loss", f["rev_loss"], LIMIT)
        t.check(what + ": duplicates", st["duplicates"] + r["duplicates"], 0, "==")
        t.check(what + ": corrupted", st["corrupt"] + r["corrupt"], 0, "==")
        doc = json.loads(lab.sh(client, [netlab.mptlib.MPTUNNEL, "status", "-c", tun["cfg"],
                                         "--client", "--json"]))
        # Every one of them was sent as pieces both ways (the loss limit aside).
        sp = doc.get("split", {})
        t.check(what + ": datagrams the client sent as pieces", sp.get("packets", 0) - split[0],
                count * (1 - LIMIT), ">=", "%.0f")
        t.check(what + ": datagrams the client rebuilt from the server's pieces",
                sp.get("reassembled", 0) - split[1], count * (1 - 2 * LIMIT), ">=", "%.0f")
        split = (sp.get("packets", 0), sp.get("reassembled", 0))
        # A fresh echo on the same address for the next run: the figures are per run.
        tun["echo"] = lab.echo(server, "echo-after-%d" % size, "127.0.0.1:7000", bufsize=BUF)
    lab.stop_echo(floor)


netlab.run(body, budget=90)
