#!/usr/bin/env python3
"""IPv6 across namespaces, in two tunnels side by side in one lab (MTU-1500 veth pairs, bridges
on relay hosts):
- IPv6 only: three relay paths whose links have no IPv4 address at all; the application and
  the target speak IPv6 too (::1 in the client and server hosts);
- mixed: one path over IPv4 only, one over IPv6 only, one whose bridge takes IPv4 from the
  client and forwards over IPv6 to the server.
In each, every path must come up, carry every datagram (the bridges' counters), and the tunnel
must deliver 2,000 datagrams of 1-1,400 bytes each way with at most 0.2% loss, no duplicate and
no corrupted datagram."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402

COUNT = 2000
RATE = 1000
LIMIT = 0.002


def measure(t, lab, what, client, tun):
    lab.warm_up(client, tun["listen"])
    for i, (relay, a, sa) in enumerate(tun["bridge_addrs"]):
        print("%s path %d: client -> [%s] %s -> server %s" % (what, i, relay.role, a, sa))
    r = lab.udpgen_send(client, tun["listen"], COUNT, RATE, size="1-1400", seed=5, linger=1000)
    st = lab.stop_echo(tun["echo"])
    f = t.figures(r, st)
    t.check(what + ": forward loss", f["fwd_loss"], LIMIT)
    t.check(what + ": reverse loss", f["rev_loss"], LIMIT)
    t.check(what + ": duplicates", st["duplicates"] + r["duplicates"], 0, "==")
    t.check(what + ": corrupted", st["corrupt"] + r["corrupt"], 0, "==")
    for i, b in enumerate(tun["bridges"]):
        c = lab.bridge_counts(b)
        t.check("%s: path %d relayed towards the server" % (what, i), c["to"]["forwarded"],
                COUNT, ">=")
        t.check("%s: path %d relayed back" % (what, i), c["back"]["forwarded"], COUNT, ">=")


def body(t, lab):
    # IPv6 only.
    c6, s6 = lab.host("client6"), lab.host("server6")
    paths6 = lab.relay_paths(c6, s6, 3, families=(6, 6, 6), name="relay6")
    for h in [c6, s6]:
        text = lab.sh(h, ["ip", "-4", "addr", "show", "scope", "global"])
        t.expect(text.strip() == "", "%s has no IPv4 address" % h.role)
    tun6 = lab.tunnel(c6, s6, paths6, family=6, echo_addr="[::1]:7000", name="v6")
    measure(t, lab, "IPv6 only", c6, tun6)

    # Mixed: IPv4, IPv6, IPv4 in and IPv6 out.
    cm, sm = lab.host("clientm"), lab.host("serverm")
    pathsm = lab.relay_paths(cm, sm, 3, families=(4, 6, 46), name="relaym")
    tunm = lab.tunnel(cm, sm, pathsm, path_families=[4, 6, (4, 6)], name="mixed")
    measure(t, lab, "mixed", cm, tunm)


netlab.run(body, budget=90)
