#!/usr/bin/env python3
"""CPU per datagram of fec mode against redundant mode on real processes: a client and a server
(mptunnel client, mptunnel server) over 3 paths on loopback (each path its own socket, bound to
127.0.0.2, .3 and .4, straight to the server: no bridge, nothing lost), a udpgen source sending
1,000-byte datagrams at RATE (50,000 a second unless the machine cannot carry it loss-free; the
rate used is printed) to an echo, so that both directions are coded. Three tunnels run side by
side, idle but for the one measured: redundant, fec = 64:30 (the repairs 3 paths at 20% need) and
fec = 64:9 (3 paths at 5%); the server follows the client's ratio for its replies.

The figure is the CPU seconds (utime + stime, /proc/PID/stat) of the client and the server per
datagram delivered (each round trip delivers two), over one trial of TRIAL_S seconds. Trials
alternate, fec then redundant, and each pair's ratio is taken: a machine whose speed drifts moves
both trials of a pair alike; the median of PAIRS pairs counts. Unlike mpt-coreloop (both cores in
one process, no sockets), this counts what the tunnel costs where it runs: redundant's three sends
and three receptions per datagram are system calls, and the kernel's work for them is the
processes' system time. Fails if fec costs more than LIMIT times redundant's CPU per datagram.

Usage: fec_procs.py [--quick] [--tsv FILE]  (--quick: 1 pair of 1 s trials, figures not judged;
--tsv: the figures as `key<TAB>value' lines, for run-bench.sh's report)."""
import os
import socket
import statistics
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration",
                                "lib"))
import mptlib  # noqa: E402

QUICK = "--quick" in sys.argv
TSV = sys.argv[sys.argv.index("--tsv") + 1] if "--tsv" in sys.argv else None
RATES = [50000, 35000, 25000]  # the first the machine carries loss-free is used
SIZE = 1000
TRIAL_S = 1.0 if QUICK else 1.5
PAIRS = 1 if QUICK else 5
LIMIT = 1.5
MAX_LOSS = 0.01  # a trial losing more is run again (once), then left out
BIND = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
MODES = [("fec 64:30", ["mode = fec", "fec = 64:30"]), ("fec 64:9", ["mode = fec", "fec = 64:9"])]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(TICKS)


def can_bind(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((ip, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def tunnel(t, name, secret, tport, mode_lines):
    """A client and a server in the given mode, 3 paths bound to BIND; returns its entry and
    the two processes' pids."""
    cport, sport = t.port(), t.port()
    extra = mode_lines + ["control = " + t.path(name + "-client.sock")]
    for i, ip in enumerate(BIND):
        extra += ["", "[path p%d]" % i, "bridge = 127.0.0.1:%d" % sport, "bind = " + ip]
    cfg = t.write_config(name + ".ini", secret, client_listen="127.0.0.1:%d" % cport,
                         server_listen="127.0.0.1:%d" % sport, target="127.0.0.1:%d" % tport,
                         extra_client=extra)
    server = t.server(cfg, name=name + "-server")
    client = t.client(cfg, name=name + "-client")
    entry = "127.0.0.1:%d" % cport
    t.warm_up(entry)
    t.wait_log(client, r"path \d+ up", count=len(BIND), timeout=5)
    return {"name": name, "entry": entry, "pids": (client.pid, server.pid)}


def trial(t, tun, rate, seed):
    """One run of udpgen through tun at rate: CPU microseconds per delivered datagram, loss."""
    before = [cpu_s(p) for p in tun["pids"]]
    r = t.udpgen_send(tun["entry"], int(rate * TRIAL_S), rate, size=str(SIZE), seed=seed,
                      linger=300)
    cpu = sum(cpu_s(p) - b for p, b in zip(tun["pids"], before))
    delivered = 2 * r["received_unique"]
    return {"us": cpu / max(delivered, 1) * 1e6, "loss": r["loss_ratio"], "pps": r["rate_pps"]}


def good(x, rate):
    return x["loss"] <= MAX_LOSS and x["pps"] >= 0.9 * rate


def measured(t, tun, rate, seed, tries=2):
    """A trial, run again if it lost too much (one burst of other work on a small machine fills
    a socket's buffer), up to `tries` in all; None if every one lost too much."""
    for k in range(tries):
        x = trial(t, tun, rate, seed + k)
        if good(x, rate):
            return x
        print("  %s at %d/s: loss %.4f, %.0f/s achieved%s" %
              (tun["name"], rate, x["loss"], x["pps"], "; once more" if k + 1 < tries else ""),
              flush=True)
    return None


def body(t):
    for ip in BIND:
        if not can_bind(ip):
            raise mptlib.Skip("cannot bind %s (the paths' source addresses)" % ip)
    secret = t.genkey()
    tport = t.port()
    t.echo("echo", "127.0.0.1:%d" % tport)
    red = tunnel(t, "redundant", secret, tport, ["mode = redundant"])
    fecs = [(label, tunnel(t, label.replace(" ", "").replace(":", "-"), secret, tport, lines))
            for label, lines in MODES]
    # The rate: the highest of RATES that every tunnel carries loss-free now.
    rate = None
    for r in RATES:
        if all(measured(t, tun, r, 11, tries=3) for tun in [red] + [f for _, f in fecs]):
            rate = r
            break
    if rate is None:
        raise mptlib.Skip("the machine does not carry %d datagrams/s loss-free through the "
                          "tunnels now (too loaded)" % RATES[-1])
    print("rate %d datagrams/s of %d bytes each way (asked: %d or more)%s" %
          (rate, SIZE, RATES[0], "" if rate >= RATES[0] else "  <-- the most this machine "
           "carries loss-free now"), flush=True)
    ratios = {label: [] for label, _ in MODES}
    figs = {label: [] for label, _ in MODES}
    reds = []
    for i in range(PAIRS):
        for label, tun in fecs:
            f = measured(t, tun, rate, 100 + 10 * i)
            r = measured(t, red, rate, 200 + 10 * i)
            if not f or not r:
                print("  pair %d of %s left out (loss)" % (i + 1, label), flush=True)
                continue
            ratios[label].append(f["us"] / r["us"])
            figs[label].append(f["us"])
            reds.append(r["us"])
            print("  pair %d: %s %.2f us, redundant %.2f us per datagram: %.3f" %
                  (i + 1, label, f["us"], r["us"], f["us"] / r["us"]), flush=True)
    rows = ["rate\t%d" % rate, "pairs\t%d" % PAIRS,
            "redundant.us\t%.3f" % statistics.median(reds)]
    for label, _ in MODES:
        if len(ratios[label]) < (1 if QUICK else 3):
            raise mptlib.Skip("%s: %d pairs without loss of %d (machine too loaded)" %
                              (label, len(ratios[label]), PAIRS))
        med = statistics.median(ratios[label])
        key = label.replace(" ", ".")
        rows += ["%s.us\t%.3f" % (key, statistics.median(figs[label])), "%s.ratio\t%.3f" %
                 (key, med)]
        what = ("%s: CPU per datagram %.2f us against redundant's %.2f us; fec/redundant, "
                "median of %d pairs" % (label, statistics.median(figs[label]),
                                        statistics.median(reds), len(ratios[label])))
        if QUICK:
            print("%s %.3f (not judged: --quick)" % (what, med))
        else:
            t.check(what, med, LIMIT, fmt="%.3f")
    print("redundant: CPU per datagram %.2f us (client and server, median)" %
          statistics.median(reds))
    if TSV:
        with open(TSV, "w") as f:
            f.write("\n".join(rows) + "\n")


mptlib.run(body, budget=100 if QUICK else 240)
