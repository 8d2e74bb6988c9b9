"""Formats the figures of run-bench.sh: a report on stdout and, optionally, a markdown section.

Usage: python3 bench_report.py RESULTS.tsv META.tsv [MARKDOWN-FILE]
RESULTS.tsv holds lines `kind paths size key value` (kind: tunnel, floor, direct, flows, modes,
fecprocs);
META.tsv lines `key value`. Exits 1 if a configuration lacks figures or carried no traffic.
"""
import collections
import sys
import textwrap


def load(path):
    res = collections.defaultdict(dict)
    with open(path) as f:
        for line in f:
            kind, paths, size, key, value = line.rstrip("\n").split("\t")
            res[(kind, int(paths), int(size))][key] = float(value)
    return res


def num(x):
    return "%s" % format(int(round(x)), ",")


def fx(x, digits=2):
    return "%.*f" % (digits, x)


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return "—"
    return "%.2f" % (a / b)


def table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if i else "---" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def roles(d, prefix):
    return sorted(k[len(prefix):] for k in d if k.startswith(prefix))


def split_roles(d, prefix):
    """(client, sum or max over bridges/relays, server) keys of one configuration."""
    names = roles(d, prefix)
    hops = [n for n in names if n.startswith("bridge") or n.startswith("relay")]
    return names, hops


def main():
    res = load(sys.argv[1])
    meta = {}
    with open(sys.argv[2]) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    md_path = sys.argv[3] if len(sys.argv) > 3 else None

    configs = sorted({(p, s) for (k, p, s) in res if k == "tunnel"}, key=lambda c: (c[1], c[0]))
    problems = []
    for p, s in configs:
        for kind in ("tunnel", "floor"):
            d = res.get((kind, p, s), {})
            if d.get("cpu_delivered", 0) <= 0 or "lat.p50" not in d:
                problems.append("%s, %d path(s), %d bytes: no traffic came through" % (kind, p, s))
    if not configs:
        problems.append("no configuration was measured")

    quick = meta.get("quick") == "1"
    bufmib = int(meta.get("bufsize", "0")) / 1048576
    parts = []
    parts.append(
        "Method. Everything runs on 127.0.0.1: `udpgen send` → `mptunnel client` → N × "
        "`mptunnel bridge` → `mptunnel server` → `udpgen echo`, which sends every datagram back "
        "the same way, so both directions are measured; the client sends every datagram over "
        "every path (redundant mode) and the server drops the duplicates. The floor is the same "
        "route through `mpt-floor` (test/bench/floor.c), which does the same socket work — "
        "batched recvmmsg/sendmmsg with UDP GSO and GRO as mptunnel uses them, a socket per "
        "flow and per relay peer, a de-duplication window — without encryption, handshakes or "
        "timers. Every socket of both has "
        "%g MiB SO_SNDBUF/SO_RCVBUF. The loss-free rate is the highest sending rate whose round "
        "trip loses under 0.1%% of the datagrams: doubling from 10,000/s until a trial loses more, "
        "then three bisection steps, each trial %s s (a trial over the limit is run up to twice "
        "more, since a burst of other work can cost one its datagrams). CPU is utime+stime from /proc/PID/stat over "
        "one trial at the lower of the two loss-free rates, through the tunnel and the floor "
        "alike; "
        "a round trip counts as two delivered datagrams. Memory is the peak RSS (VmHWM) of each "
        "process over the whole search. Latency is the round trip at 1,000 datagrams/s (%s s) minus "
        "that of udpgen → echo directly, measured right after with the same processes running. The machine runs the generator, the echo and "
        "every relay process at once, so the figures are of the whole pipeline on these cores."
        % (bufmib, meta.get("duration", "?"),
           "0.2" if quick else str(max(5, int(meta.get("duration", "5"))))))
    if quick:
        parts.append("**Smoke run (`--quick`): one small trial per configuration; the figures "
                     "show that the pipeline works, they measure nothing.**")
    parts.append("Command: `%s` (%s s in all).\n\nMachine: %s × %s, %s, %s; mptunnel %s "
                 "(commit %s); net.core.rmem_max %s, run as %s; load average at the start %s."
                 % (meta.get("command", "?"), meta.get("elapsed", "?"), meta.get("nproc", "?"),
                    meta.get("cpu", "?"), meta.get("kernel", "?"), meta.get("date", "?"),
                    meta.get("version", "?").replace("mptunnel ", ""), meta.get("commit", "?"),
                    meta.get("rmem_max", "?"),
                    "root" if meta.get("uid") == "0" else "uid " + meta.get("uid", "?"),
                    meta.get("load", "?")))

    # Loss-free rates.
    rows = []
    for p, s in configs:
        t, f = res.get(("tunnel", p, s), {}), res.get(("floor", p, s), {})
        tr, fr = t.get("rate_pps"), f.get("rate_pps")
        lim = lambda d: "≥ " if d.get("sender_limited") else ""
        rows.append([p, s,
                     lim(t) + num(tr or 0), fx((tr or 0) * s * 8 / 1e6, 1),
                     lim(f) + num(fr or 0), fx((fr or 0) * s * 8 / 1e6, 1),
                     ratio(tr, fr)])
    parts.append("#### Highest rate with < 0.1% round-trip loss\n\n" + table(
        ["paths", "payload (B)", "mptunnel datagrams/s", "mptunnel Mbit/s",
         "floor datagrams/s", "floor Mbit/s", "mptunnel / floor"], rows) +
        "\n\nDatagrams/s each way (every datagram also comes back); Mbit/s of payload each way. "
        "≥: the generator, not the relay, reached its limit.")

    # CPU per million delivered datagrams.
    rows = []
    for p, s in configs:
        t, f = res.get(("tunnel", p, s), {}), res.get(("floor", p, s), {})

        def per_m(d, names):
            if d.get("cpu_delivered", 0) <= 0:
                return None
            return sum(d.get("cpu." + n, 0) for n in names) / d["cpu_delivered"] * 1e6

        vals = {}
        for kind, d in (("mptunnel", t), ("floor", f)):
            names, hops = split_roles(d, "cpu.")
            vals[kind] = [per_m(d, ["client"]), per_m(d, hops), per_m(d, ["server"]),
                          per_m(d, ["client", "server"] + hops), per_m(d, ["echo"])]
        rate = num(t.get("cpu_rate", 0))
        for kind in ("mptunnel", "floor"):
            d = t if kind == "mptunnel" else f
            rows.append([p, s, rate, kind] + ["—" if v is None else fx(v) for v in vals[kind]] +
                        [fx(d.get("cpu_busy", 0), 2), "%.2f%%" % (100 * d.get("cpu_loss", 0))])
        rows.append([p, s, rate, "**ratio**"] +
                    ["**%s**" % ratio(a, b) for a, b in zip(vals["mptunnel"], vals["floor"])] +
                    ["", ""])
    parts.append("#### CPU seconds per million delivered datagrams\n\n" + table(
        ["paths", "payload (B)", "at datagrams/s", "", "client", "bridges / relays", "server",
         "total", "(echo)", "CPUs busy", "loss"], rows) +
        "\n\nMeasured over one trial at the lower of the two loss-free rates (achieved rate "
        "shown), the same for both; bridges/relays: all N together; total: client + bridges + "
        "server. The echo is the target application, shown for scale only. CPUs busy: the "
        "machine's average number of busy CPUs during the trial, whoever used them (out of %s). "
        "Resolution: one clock tick (%s ms) per process."
        % (meta.get("nproc", "?"), fx(1000 / float(meta.get("ticks", "100")), 0)))

    # Peak RSS.
    rows = []
    for p, s in configs:
        vals = {}
        for kind, key in (("mptunnel", "tunnel"), ("floor", "floor")):
            d = res.get((key, p, s), {})
            names, hops = split_roles(d, "rss.")
            mib = lambda n: d.get("rss." + n, 0) / 1024
            hop = max((mib(n) for n in hops), default=0)
            vals[kind] = [mib("client"), hop, mib("server"),
                          mib("client") + mib("server") + sum(mib(n) for n in hops)]
        for kind in ("mptunnel", "floor"):
            rows.append([p, s, kind] + [fx(v, 1) for v in vals[kind]])
        rows.append([p, s, "**ratio**"] +
                    ["**%s**" % ratio(a, b) for a, b in zip(vals["mptunnel"], vals["floor"])])
    parts.append("#### Peak resident memory (VmHWM, MiB)\n\n" + table(
        ["paths", "payload (B)", "", "client", "bridge / relay (largest)", "server", "total"],
        rows) +
        "\n\nPeak over the whole search, including the overloaded trials; the socket buffers "
        "themselves are kernel memory and not counted.")

    # Latency.
    rows = []
    for p, s in configs:
        added, direct = {}, {}
        for kind, key in (("mptunnel", "tunnel"), ("floor", "floor")):
            d = res.get((key, p, s), {})
            added[kind] = [d.get("lat." + q, 0) - d.get("direct." + q, 0)
                           for q in ("p50", "p99", "p999")]
            direct[kind] = " / ".join(fx(d.get("direct." + q, 0), 1)
                                      for q in ("p50", "p99", "p999"))
        rows.append([p, s, "%s; %s" % (direct["mptunnel"], direct["floor"]),
                     " / ".join(fx(v, 1) for v in added["mptunnel"]),
                     " / ".join(fx(v, 1) for v in added["floor"]),
                     " / ".join(ratio(a, b) for a, b in zip(added["mptunnel"], added["floor"]))])
    parts.append("#### Added round-trip latency at 1,000 datagrams/s (µs)\n\n" + table(
        ["paths", "payload (B)", "direct p50 / p99 / p999 (with each)", "mptunnel adds p50 / p99 / p999",
         "floor adds p50 / p99 / p999", "mptunnel / floor"], rows) +
        "\n\nThe round trip crosses every relay process twice; added = through the relays "
        "minus straight to the same echo right after (both shown: the tunnel's run; the "
        "floor's). Percentiles of %s round trips: p999 rests on a few of them."
        % num(1000 * (0.2 if quick else max(5, int(meta.get("duration", "5"))))))

    # fec against redundant over lossy paths.
    for (kind, n, size), d in sorted(res.items()):
        if kind != "modes":
            continue
        tags = sorted({k.split(".")[1] for k in d}, key=int)
        rows = []
        for tag in tags:
            for mode in ("redundant", "fec"):
                g = lambda key: d.get("%s.%s.%s" % (mode, tag, key))
                if g("delivered") is None:
                    continue
                rows.append(["%d × %g%%" % (n, int(tag) / 10.0), mode, num(g("rate") or 0),
                             "%.4f%%" % (100 * g("loss")), fx(g("wire")), fx(g("cpu")),
                             fx(g("cpu_bridges")), fx(g("p50") / 1000.0, 2),
                             fx(g("p99") / 1000.0, 2)])
                if g("delivered") <= 0:
                    problems.append("%s over %d paths at %s: nothing came back" % (mode, n, tag))
            red = lambda key: d.get("redundant.%s.%s" % (tag, key))
            fec = lambda key: d.get("fec.%s.%s" % (tag, key))
            if red("delivered") and fec("delivered"):
                rows.append(["", "**fec / redundant**", "", "", "**%s**" % ratio(fec("wire"),
                                                                               red("wire")),
                             "**%s**" % ratio(fec("cpu"), red("cpu")), "",
                             "**%s**" % ratio(fec("p50"), red("p50")), ""])
        parts.append(
            "#### fec against redundant over lossy paths\n\n" + table(
                ["paths × loss each way", "mode", "at datagrams/s", "round-trip loss",
                 "wire / payload", "CPU client + server", "(bridges)", "p50 (ms)", "p99 (ms)"],
                rows) +
            "\n\n%s-byte datagrams through %d bridges that drop each datagram with the loss shown "
            "in each direction (`mptunnel bridge --loss`), fec with the default target_loss "
            "(0.001). Round-trip loss: of the datagrams sent, those whose echo did not come "
            "back. Wire / payload: every UDP payload the client and the server sent on their "
            "paths (datagrams, repairs, probes, headers) over the payload both ways. CPU: "
            "seconds of the client and the server per million delivered datagrams (both ways) "
            "at the rate shown; the bridges' apart. p50, p99: the round trip at 1,000 "
            "datagrams/s, each direction through the bridges' loss." % (num(size), n))

    # fec's CPU against redundant's at a high rate over loss-free paths (fec_procs.py).
    for (kind, n, size), d in sorted(res.items()):
        if kind != "fecprocs" or "rate" not in d:
            continue
        red = d.get("redundant.us")
        rows = [["redundant", fx(red), "1"]]
        for m in ("64:30", "64:9"):
            us, r = d.get("fec.%s.us" % m), d.get("fec.%s.ratio" % m)
            if us is None or r is None:
                problems.append("fec = %s at %s/s: no CPU figure" % (m, num(d["rate"])))
                continue
            rows.append(["fec = %s" % m, fx(us), "**%s** (limit 1.50)" % fx(r)])
            if r > 1.5 and not quick:
                problems.append("fec = %s costs %.2f times redundant's CPU per datagram (limit "
                                "1.50)" % (m, r))
        parts.append(
            "#### fec's CPU against redundant's at %s datagrams/s\n\n" % num(d["rate"]) + table(
                ["mode", "CPU client + server (us per datagram)", "against redundant"], rows) +
            "\n\n`test/bench/fec_procs.py`: a client and a server over %d paths on loopback, each "
            "its own socket straight to the server (nothing lost, no bridge), %s-byte datagrams "
            "from udpgen at %s a second to an echo, so both directions are coded (64:30: the "
            "repairs 3 paths at 20%% need; 64:9: 3 paths at 5%%). CPU: user and system seconds "
            "of the client and the server per delivered datagram (each round trip delivers "
            "two); fec against redundant is the median of %s pair(s) of trials run in turn, each "
            "pair's ratio taken. Here redundant's three sends and receptions per datagram are "
            "system calls; in mpt-coreloop (both cores in one process, no sockets: "
            "`bench.fec_cpu`) fec = 64:30 runs 2.0 times redundant's instructions, the coding "
            "and the repairs' AEAD." % (n, num(size), num(d["rate"]), num(d.get("pairs", 5))))

    # Flows.
    fl = [(k, d) for k, d in res.items() if k[0] == "flows"]
    for (kind, n, _), d in fl:
        mib = lambda key: d.get(key, 0) / 1024
        rows = [["client", fx(mib("rss0.client"), 1), fx(mib("rss.client"), 1),
                 fx(mib("hwm.client"), 1)],
                ["server", fx(mib("rss0.server"), 1), fx(mib("rss.server"), 1),
                 fx(mib("hwm.server"), 1)]]
        parts.append(
            "#### Memory with %s flows\n\n" % num(n) +
            "One datagram from each of %s flows (source ports) through client → server, "
            "max_flows above that on both; %s of %s came back. Target: under 20 MB each.\n\n"
            % (num(n), num(d.get("echoed", 0)), num(d.get("sent", 0))) +
            table(["process", "RSS before (MiB)", "RSS after (MiB)", "peak (MiB)"], rows))
        if d.get("echoed", 0) <= 0:
            problems.append("%d flows: nothing came back" % n)

    # Prose wrapped at 100 columns like the rest of the README; headings and tables as they are.
    blocks = "\n\n".join(parts).split("\n\n")
    text = "\n\n".join(b if b.startswith(("|", "#")) else
                         textwrap.fill(b, 100, break_on_hyphens=False, break_long_words=False)
                         for b in blocks) + "\n"
    sys.stdout.write("\n" + text)
    if md_path:
        with open(md_path, "w") as f:
            f.write(text)
    for p in problems:
        sys.stderr.write("run-bench.sh: FAIL: %s\n" % p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
