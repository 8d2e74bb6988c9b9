#!/usr/bin/env python3
"""DNS through the tunnel: dnsmasq on a target host behind the server host answers every name
under lab.test; `dig` in the client host asks 1,000 distinct names through three relay paths that
each lose 20% of the datagrams each way (bridges on relay hosts, MTU-1500 veth pairs, IPv4).
dig runs as a resolver would, 10 in parallel, each query tried twice with a 1 s timeout; at least
99% must be answered, each with the right address. The first-try misses are printed against
their expectation: a query and its answer each lost with probability 0.2^3, 1.6% together."""
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402

QUERIES = 1000
PARALLEL = 10
LIMIT = 0.99
ANSWER = "198.51.100.200"


def body(t, lab):
    lab.need("dnsmasq", "dig")
    client = lab.host("client")
    server = lab.host("server")
    target = lab.host("target")
    paths = lab.relay_paths(client, server, 3, mtu=1500)
    tl = lab.link(server, target, mtu=1500)
    taddr = tl.addr(target)
    dns = lab.start(target, "dnsmasq", [
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        "--user=root", "--pid-file=", "--bind-interfaces", "--listen-address=" + taddr,
        "--port=53", "--address=/lab.test/" + ANSWER, "--log-facility=-"])
    lab.wait_listening(target, 53, proc=dns)
    opts = [["--loss", "0.2", "--seed", str(31 + i)] for i in range(3)]
    tun = lab.tunnel(client, server, paths, bridge_opts=opts, target=taddr + ":53")
    port = int(tun["listen"].rsplit(":", 1)[1])
    # One answer through the tunnel before measuring (a path may still be coming up).
    end = time.monotonic() + 10
    while ANSWER not in lab.sh(client, ["dig", "@127.0.0.1", "-p", port, "+short", "+tries=1",
                                        "+timeout=1", "warm.lab.test"], check=False):
        if time.monotonic() > end:
            raise netlab.Failed("no DNS answer through the tunnel within 10 s")

    procs = []
    per = QUERIES // PARALLEL
    for k in range(PARALLEL):
        batch = t.path("batch%d" % k)
        with open(batch, "w") as f:
            for i in range(k * per, (k + 1) * per):
                f.write("q%04d.lab.test A\n" % i)
        procs.append(subprocess.Popen(
            client.cmd(["dig", "@127.0.0.1", "-p", port, "+tries=2", "+timeout=1", "+noall",
                        "+answer", "+comments", "-f", batch]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=netlab.mptlib._child_setup))
    t0 = time.monotonic()
    answered = set()
    wrong = 0
    first_try_miss = 0
    try:
        for p in procs:
            out, _ = p.communicate(timeout=max(5, t.left() - 10))
            text = out.decode("utf-8", "replace")
            for m in re.finditer(r"^(q\d{4})\.lab\.test\.\s+\d+\s+IN\s+A\s+(\S+)", text, re.M):
                if m.group(2) == ANSWER:
                    answered.add(m.group(1))
                else:
                    wrong += 1
            first_try_miss += len(re.findall(r"timed out", text))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    secs = time.monotonic() - t0
    print("%d queries in %.1f s (%d dig processes in parallel, 2 tries each)"
          % (QUERIES, secs, PARALLEL))
    print("queries whose first try timed out: %d (expected about %.0f)"
          % (first_try_miss, QUERIES * (1 - (1 - 0.008) ** 2)))
    print("answered %d of %d" % (len(answered), QUERIES))
    t.check("answered fraction", len(answered) / QUERIES, LIMIT, ">=", fmt="%.3f")
    t.check("wrong answers", wrong, 0, "==")


netlab.run(body, budget=90)
