#!/usr/bin/env python3
"""Independent paths: a full send queue on one path must never cost another path its copies.

Three relay paths of MTU 1500; the client's link to relay0 is shaped to 2 Mbit/s with a queue
far longer than the client's socket buffer, as a slow uplink with a deep buffer is. In redundant
mode the client sends 1,000-byte datagrams at 3,000/s (24 Mbit/s) for 4 s: path 0's socket buffer
fills within seconds and the kernel refuses its copies (EAGAIN). Paths 1 and 2 are clean, so the
application must lose nothing. When all paths shared one socket, its full buffer refused the
copies of every path at once and two thirds of the datagrams were lost end to end."""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402

COUNT = 12000
RATE = 3000
SIZE = "1000"
LIMIT = 0.002  # clean paths 1 and 2: a few datagrams at most, lost to a loaded host


def body(t, lab):
    client = lab.host("client")
    server = lab.host("server")
    paths = lab.relay_paths(client, server, 3, mtu=1500)
    tun = lab.tunnel(client, server, paths)
    lab.warm_up(client, tun["listen"])
    slow = paths[0][1].ifname(client)
    lab.sh(client, ["tc", "qdisc", "replace", "dev", slow, "root", "tbf", "rate", "2mbit",
                    "burst", "16kb", "limit", "64mb"])
    r = lab.udpgen_send(client, tun["listen"], COUNT, RATE, size=SIZE, seed=5, linger=1500)
    st = lab.stop_echo(tun["echo"])
    f = t.figures(r, st)
    # What the tunnel lost, of what the client took in: a host too loaded to run the client in
    # time loses datagrams at its listening socket before any path is involved.
    rc, _ = t.stop(tun["client"], timeout=3)
    m = re.search(r"client stopping: (\d+) datagrams from applications", tun["client"].log())
    if rc != 0 or not m:
        raise netlab.Failed("client exited with %s: %s" % (rc, tun["client"].log()[-500:]))
    taken = min(int(m.group(1)), r["sent"])  # its count includes the warm-up's few
    print("client took in %d of %d datagrams; forward loss end to end %.5f" % (
        taken, r["sent"], f["fwd_loss"]), flush=True)
    t.check("forward loss in the tunnel with path 0 congested",
            round(1 - f["fwd_delivered"] / max(taken, 1), 5), LIMIT)
    t.check("reverse loss", f["rev_loss"], LIMIT)
    t.check("duplicates", st["duplicates"] + r["duplicates"], 0, "==")
    qlen = lab.sh(client, ["tc", "-s", "qdisc", "show", "dev", slow])
    print("path 0 qdisc: " + " ".join(qlen.split()), flush=True)


netlab.run(body, budget=90)
