#!/usr/bin/env python3
"""The lab's smoke test: client, three relay hosts running `mptunnel bridge`, a server host, all
joined by veth pairs of MTU 1500 with IPv4 only. 3,000 datagrams of 1-1,400 bytes through the
tunnel to an echo in the server host: every path up, nothing lost, duplicated or corrupted either
way, and every datagram relayed by each of the three bridges (redundant mode: a copy per path),
which proves that the traffic crossed the relay hosts."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402

COUNT = 3000
RATE = 1000
LIMIT = 0.002  # clean paths: a few datagrams at most, lost to a loaded host's buffers


def body(t, lab):
    client = lab.host("client")
    server = lab.host("server")
    paths = lab.relay_paths(client, server, 3, mtu=1500)
    lab.describe()
    for h in [client, server] + [p[0] for p in paths]:
        for ln in h.links:
            mtu = int(lab.sh(h, ["cat", "/sys/class/net/%s/mtu" % ln.ifname(h)]))
            t.check("MTU of %s %s" % (h.role, ln.ifname(h)), mtu, 1500, "==")
    tun = lab.tunnel(client, server, paths)
    lab.warm_up(client, tun["listen"])
    r = lab.udpgen_send(client, tun["listen"], COUNT, RATE, size="1-1400", seed=3, linger=1000)
    st = lab.stop_echo(tun["echo"])
    f = t.figures(r, st)
    t.check("forward loss", f["fwd_loss"], LIMIT)
    t.check("reverse loss", f["rev_loss"], LIMIT)
    t.check("duplicates", st["duplicates"] + r["duplicates"], 0, "==")
    t.check("corrupted", st["corrupt"] + r["corrupt"], 0, "==")
    for i, b in enumerate(tun["bridges"]):
        c = lab.bridge_counts(b)
        t.check("relay%d forwarded towards the server" % i, c["to"]["forwarded"], COUNT, ">=")
        t.check("relay%d forwarded back to the client" % i, c["back"]["forwarded"], COUNT, ">=")


netlab.run(body, budget=60)
