#!/usr/bin/env python3
"""NAT rebinding and roaming: the client's public address changes mid-flow.

client --- nat (nftables masquerade, random ports) --- server; one path, through the NAT. A
prober in the client host sends a numbered datagram every 5 ms through the tunnel to an echo in
the server host and notes when each echo comes back. Twice during the run the NAT forgets its
mappings (conntrack flushed): the client's next datagrams leave from a new public port, and the
server must follow them (a path's return address moves only with authenticated, fresh datagrams).
Then the client's own address on its link changes (old address removed, a new one added). The
longest silence of the echoes after each event is the healing time: at most 1 s after a NAT
rebinding and 2 s after a change of address, and no datagram may come back twice."""
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402

PROBER = r"""
import json, socket, struct, sys, time
to, port, secs, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
t0 = time.monotonic()
seq, got, dups, nxt = 0, {}, 0, t0
while True:
    now = time.monotonic()
    if now - t0 >= secs + 1.0:
        break
    if now >= nxt and now - t0 < secs:
        s.sendto(struct.pack("!Id", seq, now - t0) + b"x" * 56, (to, port))
        seq += 1
        nxt += 0.005
    try:
        while True:
            d = s.recv(2048)
            if len(d) >= 12:
                k = struct.unpack("!I", d[:4])[0]
                if k in got:
                    dups += 1
                else:
                    got[k] = time.monotonic() - t0
    except BlockingIOError:
        pass
    time.sleep(0.0005)
json.dump({"sent": seq, "dups": dups, "got": sorted(got.values())}, open(out, "w"))
"""

SECS = 9.0
EVENTS = [(2.0, "nat"), (4.5, "nat"), (7.0, "address")]


def longest_gap(times, start, end):
    """The longest time without an echo within [start, end)."""
    pts = [start] + [x for x in times if start <= x < end] + [end]
    return max(b - a for a, b in zip(pts, pts[1:]))


def public_ports(lab, nat, inside_addr):
    """The NAT's public ports for the client's flows out of `inside_addr` (the reply tuple's
    destination port of each outbound mapping)."""
    ports = set()
    for line in lab.conntrack(nat).splitlines():
        m = re.search(r"src=%s dst=\S+ sport=\d+ dport=2000 .*?src=\S+ dst=\S+ sport=2000 "
                      r"dport=(\d+)" % re.escape(inside_addr), line)
        if m:
            ports.add(int(m.group(1)))
    return ports


def body(t, lab):
    lab.need("nft", "conntrack")
    client = lab.host("client")
    nat = lab.host("nat")
    server = lab.host("server")
    inside = lab.link(client, nat, mtu=1500, v6=False)
    outside = lab.link(nat, server, mtu=1500, v6=False)
    direct = lab.link(client, server, mtu=1500, v6=False)
    srv_nat, srv_direct = outside.addr(server, 4), direct.addr(server, 4)
    lab.route(client, srv_nat + "/32", inside.addr(nat, 4))
    lab.nat(nat, outside)
    lab.describe()
    secret = t.genkey()
    echo = lab.echo(server, "echo", "127.0.0.1:7000")
    # Two tunnels from the client host: A through the NAT, B on the direct link.
    clients = []
    for name, addr, port in (("A", srv_nat, 3000), ("B", srv_direct, 3001)):
        cfg = lab.mptunnel_config("rb" + name, secret, client_listen="127.0.0.1:%d" % port,
                                  bridges=["%s:2000" % addr], server_listen=2000,
                                  target="127.0.0.1:7000")
        if name == "A":
            lab.server(server, cfg)
        cl = lab.client(client, cfg, name="client" + name)
        t.wait_log(cl, r"path \d+ up", timeout=10)
        lab.warm_up(client, "127.0.0.1:%d" % port)
        clients.append(port)
    script = t.path("prober.py")
    with open(script, "w") as f:
        f.write(PROBER)
    probers = []
    for port in clients:
        out = t.path("prober%d.json" % port)
        probers.append((lab.start(client, "prober%d" % port, ["/usr/bin/python3", script,
                                                              "127.0.0.1", str(port),
                                                              str(SECS), out]), out))
    t0 = time.monotonic()
    ports = [public_ports(lab, nat, inside.addr(client, 4))]
    for at, what in EVENTS:
        time.sleep(max(0.0, at - (time.monotonic() - t0)))
        if what == "nat":
            lab.flush_conntrack(nat)
            msg = "NAT mappings flushed (tunnel A)"
        else:
            old = direct.addr(client, 4)
            # The new address must survive the old one's removal (secondaries go with it).
            lab.sh(client, ["sysctl", "-q", "-w",
                            "net.ipv4.conf.%s.promote_secondaries=1" % direct.ifname(client)])
            new_addr = lab.add_address(client, direct, 4)
            lab.sh(client, ["ip", "addr", "del", old + "/28", "dev", direct.ifname(client)])
            msg = "client address on the direct link %s -> %s (tunnel B)" % (old, new_addr)
        print("%.2f s: %s" % (time.monotonic() - t0, msg), flush=True)
        if what == "nat":
            time.sleep(0.3)
            ports.append(public_ports(lab, nat, inside.addr(client, 4)))
    for pr, _ in probers:
        end = time.monotonic() + SECS + 10
        while pr.alive() and time.monotonic() < end:
            time.sleep(0.1)
    print("NAT public ports of tunnel A: %s" % " -> ".join(
        ",".join(str(p) for p in sorted(x)) or "?" for x in ports), flush=True)
    t.check("NAT public port changed at each flush",
            sum(1 for a, b in zip(ports, ports[1:]) if b and not (a & b)), 2, ">=")
    results = [json.load(open(out)) for _, out in probers]
    for name, r in zip("AB", results):
        print("tunnel %s prober: %d sent, %d echoes back, %d twice" % (
            name, r["sent"], len(r["got"]), r["dups"]), flush=True)
        t.check("tunnel %s: echoes delivered twice" % name, r["dups"], 0, "==")
    for i, (at, what) in enumerate(EVENTS):
        nxt = EVENTS[i + 1][0] if i + 1 < len(EVENTS) else SECS
        r = results[0] if what == "nat" else results[1]
        gap = longest_gap(r["got"], at - 0.2, nxt - 0.2)
        t.check("silence after %s at %.1f s (s)" % (
            "the NAT rebinding" if what == "nat" else "the client's change of address", at),
            round(gap, 3), 1.0 if what == "nat" else 2.0)
    st = lab.stop_echo(echo)
    t.check("duplicates at the target", st["duplicates"], 0, "==")


netlab.run(body, budget=90)
