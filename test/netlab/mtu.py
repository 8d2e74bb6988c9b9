#!/usr/bin/env python3
"""Datagrams larger than the paths' MTU: three relay paths, two over IPv4 with veth pairs of MTU
1500 and one over IPv6 with MTU 1280, clean. Checks:
- 1,500-byte datagrams at 1,000/s (the size of a full Ethernet frame that OpenVPN or a game
  sends, 72 bytes over what a 1500 path carries whole): loss each way at most 0.2%, and not one
  refused by the kernel (before the sender learned route MTUs, every GSO batch of them was
  refused and dropped);
- datagrams of every size from 1 to 65,000 bytes: at most 0.2% lost each way, none corrupted or
  duplicated;
- what the paths cannot carry whole travels as the tunnel's pieces, both ways, not as IP
  fragments: the client's status counts the datagrams split and rebuilt, no host reassembles an
  IP datagram;
- the client's status: each path's route MTU (1500, 1500, 1280) and the largest datagram it
  carries whole (1428, 1428, 1188), no datagram refused by the kernel on any path;
- the bridges relayed every datagram (none refused by the kernel);
- the client did not warn about fragmented datagrams (there are none)."""
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402
import mptlib  # noqa: E402

LIMIT = 0.002
MTUS = (1500, 1500, 1280)
WHOLE = (1500 - 72, 1500 - 72, 1280 - 92)
BUF = 64 << 20


def unique_delivered(r, st):
    """Forward and reverse loss of run r (no tiny datagrams in it) against the echo's stats."""
    flows = {f["flow"] for f in r["flows"]}
    ef = [f for f in st["flows"] if f["flow"] in flows]
    delivered = sum(f["unique"] for f in ef)
    echoed = sum(f["received"] for f in ef)
    print("sent %d; target got %d unique, echoed %d; echoes back %d unique"
          % (r["sent"], delivered, echoed, r["received_unique"]), flush=True)
    return 1 - delivered / r["sent"], (1 - r["received_unique"] / echoed) if echoed else 1.0


def kernel_drops(lab, h):
    """Prints h's kernel counters that explain a loss: UDP receive buffer overflows and IP
    reassembly failures (a fragment lost, or reassembly memory full)."""
    rows = [ln.split() for ln in lab.sh(h, ["cat", "/proc/net/snmp"]).splitlines()]
    c = {}
    for names, vals in zip(rows[::2], rows[1::2]):
        c.update({names[0] + k: v for k, v in zip(names[1:], vals[1:])})
    print("%s: UDP receive buffer overflows %s, IP reassembly failures %s, reassembled %s"
          % (h.role, c.get("Udp:RcvbufErrors"), c.get("Ip:ReasmFails"), c.get("Ip:ReasmOKs")),
          flush=True)
    return int(c.get("Ip:ReasmOKs", 0)) + int(c.get("Ip:ReasmFails", 0))


def body(t, lab):
    client, server = lab.host("client"), lab.host("server")
    paths = lab.relay_paths(client, server, 3, mtu=1500, families=(4, 4, 6))
    for ln in paths[2][1:]:
        ln.set_mtu(1280)
    lab.describe()
    # Datagrams of up to 65,000 bytes fill socket buffers 30 times faster than small ones: room
    # for a few seconds of them, so that a loaded host's scheduling pauses lose nothing.
    tun = lab.tunnel(client, server, paths, bufsize=BUF)
    lab.warm_up(client, tun["listen"])

    gen = ["--bufsize", str(BUF)]
    r1500 = lab.udpgen_send(client, tun["listen"], 3000, 1000, size="1500", seed=11,
                            linger=1500, extra=gen)
    rall = lab.udpgen_send(client, tun["listen"], 1000, 200, size="1-65000", seed=12,
                           linger=2500, extra=gen)

    out = subprocess.run([mptlib.MPTUNNEL, "status", "-c", tun["cfg"], "--client", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    doc = json.loads(out.stdout.decode()) if out.returncode == 0 else {}
    text = subprocess.run([mptlib.MPTUNNEL, "status", "-c", tun["cfg"], "--client"],
                          stdout=subprocess.PIPE, timeout=10).stdout.decode()
    print(text, flush=True)

    st = lab.stop_echo(tun["echo"])
    frag = 0
    for h in [client, server] + [p[0] for p in paths]:
        frag += kernel_drops(lab, h)
    # IPv6 reassembly is counted in /proc/net/snmp6: the IPv4 hosts' figure is the one checked.
    t.check("IPv4 datagrams reassembled from IP fragments, all hosts", frag, 0, "==")
    fwd, rev = unique_delivered(r1500, st)
    t.check("1,500-byte datagrams at 1,000/s: forward loss", fwd, LIMIT)
    t.check("1,500-byte datagrams at 1,000/s: reverse loss", rev, LIMIT)
    f = t.figures(rall, st)
    t.check("1-65,000 bytes: forward loss", f["fwd_loss"], LIMIT)
    t.check("1-65,000 bytes: reverse loss", f["rev_loss"], LIMIT)
    t.check("duplicates", st["duplicates"] + r1500["duplicates"] + rall["duplicates"], 0, "==")
    t.check("corrupted", st["corrupt"] + r1500["corrupt"] + rall["corrupt"], 0, "==")

    ps = doc.get("paths", [])
    t.expect(len(ps) == 3, "status of the client's 3 paths")
    for i, p in enumerate(ps[:3]):
        t.check("path %d route MTU" % i, p.get("mtu") or 0, MTUS[i], "==")
        t.check("path %d largest datagram carried whole" % i, p.get("max_payload") or 0,
                WHOLE[i], "==")
        t.check("path %d datagrams refused by the kernel" % i,
                p.get("send_errors", {}).get("total", -1), 0, "==")
    se = doc.get("send_errors", {})
    t.check("datagrams the client's sockets could not send", se.get("total", -1), 0, "==")

    for i, b in enumerate(tun["bridges"]):
        c = lab.bridge_counts(b)
        for d in ("to", "back"):
            t.check("bridge %d (%s): datagrams the kernel refused to relay (too big: %d)"
                    % (i, d, c[d].get("too_big", -1)), c[d].get("send_errors", -1), 0, "==")

    # Datagrams too large for a path whole went as pieces that fit, both ways, rather than as
    # IP fragments: nothing to warn about.
    sp = doc.get("split", {})
    big = 3000  # the 1,500-byte ones, at least
    t.check("datagrams the client sent as pieces", sp.get("packets", 0), big, ">=")
    t.check("datagrams the client rebuilt from the server's pieces", sp.get("reassembled", 0),
            big, ">=")
    t.check("partial datagrams the client dropped",
            sum(sp.get("dropped", {"?": -1}).values()), 0, "==")
    log = tun["client"].log()
    warnings = [ln for ln in log.splitlines() if "exceed the path MTU" in ln]
    t.check("warnings about fragmented datagrams", len(warnings), 0, "==")


netlab.run(body, budget=120)
