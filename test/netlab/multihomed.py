#!/usr/bin/env python3
"""A server with several addresses, bound to all of them (`listen = PORT`, dual-stack): one path
to each of two IPv4 and two IPv6 addresses on the same link. Every path must come up, and traffic
must flow over each path alone (the others blocked both ways at the server with nftables), as the
server answers each path from the address it arrived at (IP_PKTINFO / IPV6_PKTINFO). Answered
from the host's first address instead, the client drops the replies of every path to a second
address (they come from an address it did not write to), and those paths never come up."""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402
import mptlib  # noqa: E402  (on the path once netlab is imported)

PORT = 2000
COUNT = 500
RATE = 500
LIMIT = 0.01


def block_all_but(lab, server, addrs, keep):
    """Only the path to addrs[keep] passes, both ways: datagrams to the other addresses and
    datagrams from them are dropped in the server host."""
    rules = "flush ruleset\ntable inet mptblk {\n"
    for chain, hook, field, port in (("in", "input", "daddr", "dport"),
                                     ("out", "output", "saddr", "sport")):
        rules += " chain %s {\n  type filter hook %s priority 0;\n" % (chain, hook)
        for i, a in enumerate(addrs):
            if i != keep:
                fam = "ip6" if ":" in a else "ip"
                rules += "  %s %s %s udp %s %d drop\n" % (fam, field, a, port, PORT)
        rules += " }\n"
    rules += "}\n"
    path = lab.t.path("block%d.nft" % keep)
    with open(path, "w") as f:
        f.write(rules)
    lab.sh(server, ["nft", "-f", path])


def body(t, lab):
    lab.need("nft")
    client = lab.host("client")
    server = lab.host("server")
    ln = lab.link(client, server, mtu=1500)
    addrs = [ln.addr(server, 4), lab.add_address(server, ln, 4),
             ln.addr(server, 6), lab.add_address(server, ln, 6)]
    lab.describe()
    secret = t.genkey()
    echo = lab.echo(server, "echo", "127.0.0.1:7000")
    listen = "127.0.0.1:3000"
    cfg = lab.mptunnel_config("mh", secret, client_listen=listen,
                              bridges=[mptlib.fmt_addr(a, PORT) for a in addrs],
                              server_listen=PORT, target="127.0.0.1:7000",
                              extra_client=["mode = redundant"])
    lab.server(server, cfg)
    cl = lab.client(client, cfg)
    deadline = time.monotonic() + 10
    up = set()
    while time.monotonic() < deadline and len(up) < len(addrs):
        up = set(re.findall(r"path (\d+) up", cl.log()))
        time.sleep(0.1)
    t.check("paths up (one per server address)", len(up), len(addrs), ">=")
    lab.warm_up(client, listen)
    for keep, a in enumerate(addrs):
        block_all_but(lab, server, addrs, keep)
        time.sleep(0.3)
        r = lab.udpgen_send(client, listen, COUNT, RATE, size="1-1200", seed=10 + keep,
                            linger=800)
        print("only the path to %s open: sent %d, echoes back %d" % (a, r["sent"],
                                                                       r["received_unique"]),
              flush=True)
        t.check("round-trip loss through %s alone" % a, 1 - r["received_unique"] / r["sent"],
                LIMIT)
    lab.sh(server, ["nft", "flush", "ruleset"])
    st = lab.stop_echo(echo)
    t.check("duplicates at the target", st["duplicates"], 0, "==")


netlab.run(body, budget=90)
