#!/usr/bin/env python3
"""Many targets through one tunnel across real links, in key mode: two clients, `alice' and
`bob', each a [peer] of the server with its own key pair, its own `allow' rules and its own
default `target'; a target host behind the server with udpgen echoes on several ports and a
udpgen sink on a port no peer may reach (only [server]'s rules name it). Every link has MTU 1500
but one of bob's paths, 1280. Sessions re-key every 3 s and flows expire after 3 s idle on both
ends, so both happen while the test runs.

alice: three relay paths whose bridges each lose 20% each way; three [forward]s to three echoes
at once (by address, by address in a CIDR range, by a host name the server resolves), 1,400 bytes
at most, and her SOCKS5 front, through which a PySocks association (Debian python3-socks) sends
to an echo by address, to an echo by a host name resolved at the server (alice's host cannot
resolve it), and to the sink: residual loss near p^3 = 0.008 per target (limit 0.016 forward,
0.032 round trip), every reply with its own destination's SOCKS header.
bob: two clean relay paths (MTU 1500 and 1280); datagrams of 1 to 8,000 bytes (split into the
tunnel's pieces) through his forward and his default flow, all delivered intact, and through his
SOCKS5 front to a name new to the server: its first datagram, which arrives while the server
resolves the name, is held and delivered, not lost to the lookup.

Refusals: bob's forward to alice's echo and to the sink, alice's forward to bob's echo and her
SOCKS datagrams to the sink: no reply, nothing arrives there (the sink listens; the echoes count
per flow), counted not_allowed in each client's status and per peer in the server's. Each
peer's default flow reaches its own default target only; [server]'s target gets nothing.

Lifetime: after the first round, the flows expire on both ends (status: 0 flows), then a forward
of each client and a new SOCKS association (by name) are delivered again within the same limits.
The server re-keyed both sessions several times meanwhile, while traffic flowed, and their keys
are younger than the interval. Route MTUs in the clients' status are 1500 and 1280."""
import json
import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import netlab  # noqa: E402
import mptlib  # noqa: E402

SOCKS_HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "socks_send.py")
FWD_LIMIT = 0.016
RT_LIMIT = 0.032
CLEAN_LIMIT = 0.003  # bob's clean paths: a loaded host's buffers, at most
REKEY_S = 3
FLOW_TIMEOUT_S = 3
COUNT = 2000  # per lossy target
RATE = 250  # per lossy target, datagrams per second
BIG = "1-8000"
BIG_COUNT, BIG_RATE = 800, 150
# Socket buffers of every process (tunnel, bridges, echoes, senders): the server takes some
# 5 MB/s from one socket, and on a host loaded by other work it may not run for a second.
BUF, BUF_TEXT = 16 << 20, "16M"
SPORT, BPORT, CPORT, XPORT = 2000, 4000, 3000, 1080
# Ports on the target host.
E1, E2, E3, E4, E5, SINK = 7001, 7002, 7003, 7004, 7005, 7009
DA, DB, DS = 7010, 7020, 7030  # default targets: alice's, bob's, [server]'s
NAMES = ("echo3.lab", "echo4.lab", "echo5.lab")


def pubkey(priv):
    out = subprocess.run([mptlib.MPTUNNEL, "pubkey"], input=priv.encode(), stdout=subprocess.PIPE,
                         check=True, timeout=10)
    return out.stdout.decode().strip()


def write(t, name, lines):
    p = t.path(name)
    with open(p, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(p, 0o600)
    return p


def status(cfg, role):
    out = subprocess.run([mptlib.MPTUNNEL, "status", "-c", cfg, "--" + role, "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    if out.returncode != 0:
        raise netlab.Failed("no status from the %s: %s" % (role, out.stderr.decode()[-300:]))
    return json.loads(out.stdout.decode())


def wait_for(fn, timeout, step=0.2):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


class Parallel:
    """Runs callables in threads; join() returns their results in order, raising the first
    exception one of them raised."""

    def __init__(self):
        self.jobs = []

    def add(self, fn, *args, **kw):
        box = {}

        def run():
            try:
                box["v"] = fn(*args, **kw)
            except BaseException as e:  # noqa: B902 - handed to join()
                box["e"] = e
        th = threading.Thread(target=run, daemon=True)
        th.start()
        self.jobs.append((th, box))
        return len(self.jobs) - 1

    def join(self, timeout):
        end = time.monotonic() + timeout
        out = []
        for th, box in self.jobs:
            th.join(max(0.1, end - time.monotonic()))
            if th.is_alive():
                raise netlab.Failed("a sender did not finish within %.0f s" % timeout)
            if "e" in box:
                raise box["e"]
            out.append(box["v"])
        return out


def body(t, lab):
    if subprocess.run(["/usr/bin/python3", "-c", "import socks"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        raise netlab.Skip("PySocks is missing for /usr/bin/python3 (Debian: python3-socks)")
    alice, bob = lab.host("alice"), lab.host("bob")
    server, target = lab.host("server"), lab.host("target")
    apaths = lab.relay_paths(alice, server, 3, mtu=1500, families=(4, 4, 4))
    bpaths = lab.relay_paths(bob, server, 2, mtu=1500, families=(4, 4), name="brelay")
    for ln in bpaths[1][1:]:
        ln.set_mtu(1280)
    tl = lab.link(server, target, mtu=1500, v6=False)
    taddr = tl.addr(target)
    tnet = "%s/%d" % (tl.v4net.network_address, tl.v4net.prefixlen)
    lab.etc_hosts(server, {n: taddr for n in NAMES})
    lab.describe()

    def at(port):
        return "%s:%d" % (taddr, port)
    echoes = {p: lab.echo(target, "echo%d" % p, at(p), bufsize=BUF)
              for p in (E1, E2, E3, E4, E5, DA, DB, DS)}
    sink = lab.sink(target, "sink", at(SINK), bufsize=BUF)

    spriv = t.genkey()
    spub = pubkey(spriv)
    apriv, bpriv = t.genkey(), t.genkey()
    tunnel = ["[tunnel]", "rekey_interval = %ds" % REKEY_S, "sndbuf = " + BUF_TEXT,
              "rcvbuf = " + BUF_TEXT]
    scfg = write(t, "server.ini", tunnel + [
        "", "[server]", "listen = %d" % SPORT, "private_key = " + spriv,
        "target = " + at(DS),          # [server]'s: neither peer's
        "allow = " + at(SINK),         # [server]'s rules only: no peer may reach the sink
        "flow_timeout = %ds" % FLOW_TIMEOUT_S, "control = " + t.path("server.sock"),
        "", "[peer alice]", "public_key = " + pubkey(apriv), "target = " + at(DA),
        "allow = " + at(E1),                               # HOST:PORT
        "allow = %s:%d-%d" % (tnet, E2, E3),               # CIDR:LOW-HIGH
        "allow = %s:%d" % (NAMES[1], E4),                  # a host name, resolved at start
        "", "[peer bob]", "public_key = " + pubkey(bpriv), "target = " + at(DB),
        "allow = %s:%d" % (NAMES[2], E5)])

    def client_cfg(name, priv, paths, forwards, extra=()):
        lines = tunnel + ["", "[client]", "listen = 127.0.0.1:%d" % CPORT]
        lines += ["bridge = %s:%d" % (li.addr(r), BPORT) for r, li, _ in paths]
        lines += ["private_key = " + priv, "server_public_key = " + spub,
                  "flow_timeout = %ds" % FLOW_TIMEOUT_S,
                  "control = " + t.path(name + ".sock")] + list(extra)
        for i, (fname, dest) in enumerate(forwards):
            lines += ["", "[forward %s]" % fname, "listen = 127.0.0.1:%d" % (CPORT + 1 + i),
                      "target = " + dest]
        return write(t, name + ".ini", lines)

    afwd = [("e1", at(E1)), ("e2", at(E2)), ("e3", "%s:%d" % (NAMES[0], E3)),
            ("bobs", at(E5)), ("w4", "%s:%d" % (NAMES[1], E4))]
    bfwd = [("e5", at(E5)), ("alices", at(E1)), ("sink", at(SINK))]
    acfg = client_cfg("alice", apriv, apaths, afwd, ["socks = 127.0.0.1:%d" % XPORT])
    bcfg = client_cfg("bob", bpriv, bpaths, bfwd, ["socks = 127.0.0.1:%d" % XPORT])

    def fport(fwds, name):
        return "127.0.0.1:%d" % (CPORT + 1 + [f[0] for f in fwds].index(name))

    srv = lab.server(server, scfg)
    for i, (r, li, lo) in enumerate(apaths):
        lab.bridge(r, "abridge%d" % i, "%s:%d" % (li.addr(r), BPORT),
                   "%s:%d" % (lo.addr(server), SPORT), "--loss", "0.2", "--seed", str(71 + i),
                   bufsize=BUF_TEXT)
    for i, (r, li, lo) in enumerate(bpaths):
        lab.bridge(r, "bbridge%d" % i, "%s:%d" % (li.addr(r), BPORT),
                   "%s:%d" % (lo.addr(server), SPORT), bufsize=BUF_TEXT)
    acl = lab.client(alice, acfg, name="alice")
    bcl = lab.client(bob, bcfg, name="bob")
    t.wait_log(acl, r"path \d+ up", count=3, timeout=10)
    t.wait_log(bcl, r"path \d+ up", count=2, timeout=10)
    for cl in (acl, bcl):
        t.wait_log(cl, r"socks5 front on 127\.0\.0\.1:%d" % XPORT, timeout=5)

    # The figures are those of the steady state: the server answers on a path once it has
    # validated it, which at 20% loss each way can take several challenges.
    def validated():
        doc = status(scfg, "server")
        v = {s.get("peer"): sum(1 for p in s["paths"] if p.get("validated"))
             for s in doc["sessions"]["list"]}
        return v if v.get("alice", 0) >= 3 and v.get("bob", 0) >= 2 else None
    v = wait_for(validated, 10)
    t.expect(v is not None, "every path of both sessions validated by the server")

    def socks_run(dests, count, rate, seed, size=(32, 1400), h=alice, pause=0):
        spec = {"proxy": ["127.0.0.1", XPORT], "count": count, "rate": rate, "size": list(size),
                "linger": 1.5, "seed": seed, "dests": dests, "pause_after_first": pause}
        out = lab.sh(h, ["/usr/bin/python3", SOCKS_HELPER, json.dumps(spec)],
                     timeout=count / rate + 30)
        return json.loads(out.strip().splitlines()[-1])

    def send(h, to, count, rate, size, seed):
        return lab.udpgen_send(h, to, count, rate, size=size, seed=seed, linger=1500,
                               bufsize=BUF)

    # The steady state: the names of alice's measured flows resolved (and kept) by the server
    # first, as they are once a flow has named them; datagrams that come while a name resolves
    # are dropped but the first (core/PROTOCOL.md section 5), and on a loaded host a lookup may
    # take tens of milliseconds. Bob's new name is the case of the first datagram.
    for fw in ("e3", "w4"):
        lab.warm_up(alice, fport(afwd, fw))
    hosts = [alice, bob, server, target] + [p[0] for p in apaths + bpaths]
    before = {h.role: lab.snmp(h) for h in hosts}
    rekeys0 = {n: srv.log().count("of peer %s re-keyed" % n) for n in ("alice", "bob")}
    # ---- round 1: everything at once ----
    t0 = time.monotonic()
    par = Parallel()
    jobs = {
        "a_e1": par.add(send, alice, fport(afwd, "e1"), COUNT, RATE, "16-1400", 11),
        "a_e2": par.add(send, alice, fport(afwd, "e2"), COUNT, RATE, "16-1400", 12),
        "a_e3": par.add(send, alice, fport(afwd, "e3"), COUNT, RATE, "16-1400", 13),
        "a_bobs": par.add(send, alice, fport(afwd, "bobs"), 100, 50, "16-200", 14),
        "a_def": par.add(send, alice, "127.0.0.1:%d" % CPORT, 500, 100, "16-1400", 15),
        "socks": par.add(socks_run, [[taddr, E1, 0xFFF00001], [NAMES[1], E4, 0xFFF00002],
                                     [taddr, SINK, 0xFFF00003]], COUNT, RATE, 21),
        "b_e5": par.add(send, bob, fport(bfwd, "e5"), BIG_COUNT, BIG_RATE, BIG, 31),
        "b_def": par.add(send, bob, "127.0.0.1:%d" % CPORT, BIG_COUNT, BIG_RATE, BIG, 32),
        "b_alices": par.add(send, bob, fport(bfwd, "alices"), 100, 50, "16-200", 33),
        "b_sink": par.add(send, bob, fport(bfwd, "sink"), 100, 50, "16-200", 34),
        "b_socks": par.add(socks_run, [[NAMES[2], E5, 0xFFF00021], [taddr, E1, 0xFFF00022]],
                           BIG_COUNT // 2, BIG_RATE // 2, 35, size=(32, 8000), h=bob,
                           pause=0.5),
    }
    res = par.join(COUNT / RATE + 40)
    r1 = {k: res[i] for k, i in jobs.items()}
    print("round 1: %.1f s" % (time.monotonic() - t0), flush=True)
    lab.rcvbuf_drops(hosts, before, "the first round")
    rekeys1 = {n: srv.log().count("of peer %s re-keyed" % n) - rekeys0[n]
               for n in ("alice", "bob")}

    ast, bst, sst = status(acfg, "client"), status(bcfg, "client"), status(scfg, "server")
    for name, doc, mtus in (("alice", ast, (1500,) * 3), ("bob", bst, (1500, 1280))):
        ps = doc.get("paths", [])
        for i, mtu in enumerate(mtus):
            t.check("%s path %d route MTU" % (name, i), ps[i].get("mtu") or 0 if i < len(ps)
                    else 0, mtu, "==")
        t.check("%s: flows refused not_allowed (client status)" % name,
                doc["refused"]["not_allowed"], 2 if name == "alice" else 3, ">=")
    peers = {p["name"]: p for p in sst.get("peers", [])}
    for n, least in (("alice", 2), ("bob", 3)):
        t.check("%s: flows refused not_allowed (server status, per peer)" % n,
                peers.get(n, {}).get("refused", {}).get("not_allowed", -1), least, ">=")
        t.expect(peers.get(n, {}).get("rules") == "own", "%s: rules of its own" % n)
    t.check("server: flows refused not_allowed", sst["refused"]["not_allowed"], 5, ">=")
    t.check("server: names resolved for flows (echo3, echo4, echo5.lab)",
            sst["names"]["misses"], len(NAMES), ">=")
    t.check("server: other refusals",
            sum(v for k, v in sst["refused"].items() if k != "not_allowed"), 0, "==")
    t.check("bob: datagrams split into pieces", bst.get("split", {}).get("packets", 0), 100, ">=")
    t.check("bob: datagrams rebuilt from the server's pieces",
            bst.get("split", {}).get("reassembled", 0), 100, ">=")

    # ---- lifetime: every flow expires on both ends ----
    # (bob's last datagrams left seconds before alice's: his flows may have expired already)
    print("bob: flows open at the end of the first round: %d" % bst["flows"]["used"])
    for name, doc in (("alice", ast), ("server", sst)):
        t.check("%s: flows open at the end of the first round" % name, doc["flows"]["used"], 1,
                ">=")
    def idle():
        u = (status(acfg, "client")["flows"]["used"], status(bcfg, "client")["flows"]["used"],
             status(scfg, "server")["flows"]["used"])
        return u if u == (0, 0, 0) else None
    t1 = time.monotonic()
    u = wait_for(idle, FLOW_TIMEOUT_S * 4)
    t.expect(u is not None, "the flows expired on both ends (alice, bob, server: 0 flows)")
    print("flows expired on both ends %.1f s after the first round" % (time.monotonic() - t1),
          flush=True)

    # ---- round 2: new flows after the old ones expired ----
    par = Parallel()
    jobs2 = {
        "a_e2": par.add(send, alice, fport(afwd, "e2"), COUNT, RATE, "16-1400", 41),
        "socks": par.add(socks_run, [[NAMES[1], E4, 0xFFF00012]], COUNT, RATE, 42),
        "b_e5": par.add(send, bob, fport(bfwd, "e5"), BIG_COUNT // 2, BIG_RATE, "14-8000", 43),
    }
    res = par.join(COUNT / RATE + 40)
    r2 = {k: res[i] for k, i in jobs2.items()}
    lab.rcvbuf_drops(hosts, before, "both rounds")
    sst2 = status(scfg, "server")
    rekeys = {n: srv.log().count("of peer %s re-keyed" % n) - rekeys0[n] for n in ("alice", "bob")}

    st = {p: lab.stop_echo(pr) for p, pr in echoes.items()}
    sk = lab.stop_echo(sink)

    def flows_of(r):
        return {f["flow"] for f in r["flows"]}

    def figures(r, st, tiny):
        """As t.figures, with the echo's datagrams too short to name their flow (1-4 bytes)
        counted only for the one run (`tiny`) that sent such."""
        ef = [f for f in st["flows"] if f["flow"] in flows_of(r)]
        extra = st["tiny_unattributed"] if tiny else 0
        delivered = sum(f["unique"] + f["tiny"] for f in ef) + extra
        echoed = sum(f["received"] for f in ef) + extra
        print("sent %d; target got %d unique, echoed %d; echoes back %d unique"
              % (r["sent"], delivered, echoed, r["received_unique"]), flush=True)
        return {"fwd_loss": 1 - delivered / r["sent"],
                "rev_loss": 1 - r["received_unique"] / echoed if echoed else 1.0}

    def lossy(label, r, port):
        f = figures(r, st[port], False)
        t.check("%s: forward residual loss" % label, f["fwd_loss"], FWD_LIMIT)
        t.check("%s: round-trip residual loss" % label, 1 - r["received_unique"] / r["sent"],
                RT_LIMIT)
        t.check("%s: corrupted" % label, r["corrupt"] + r["misdelivered"], 0, "==")

    def clean(label, r, port, tiny=False):
        f = figures(r, st[port], tiny)
        t.check("%s: forward loss" % label, f["fwd_loss"], CLEAN_LIMIT)
        t.check("%s: reverse loss" % label, f["rev_loss"], CLEAN_LIMIT)
        t.check("%s: corrupted or misdelivered" % label, r["corrupt"] + r["misdelivered"], 0, "==")

    def socks_fig(label, out, k, port, limits=(FWD_LIMIT, RT_LIMIT), new_name=False):
        """Figures of destination k of a SOCKS run. new_name: a name the server had not resolved
        for a flow before, whose first datagram it holds while it resolves the name."""
        d = out["dests"][k]
        ef = [f for f in st[port]["flows"] if f["flow"] == d["flow"]]
        arrived = ef[0]["unique"] if ef else 0
        print("%s: sent %d, target got %d, replies %d%s"
              % (label, d["sent"], arrived, d["replies"],
                 "; not echoed: %s" % d["missing"] if d["missing"] else ""), flush=True)
        if new_name:
            t.check("%s: first datagram (sent while the server resolved the name) lost" % label,
                    int(0 in d["missing"]), 0, "==")
        t.check("%s: forward loss" % label, 1 - arrived / d["sent"], limits[0])
        t.check("%s: round-trip loss" % label, 1 - d["replies"] / d["sent"], limits[1])
        t.check("%s: duplicate replies" % label, d["duplicates"], 0, "==")

    print("-- round 1 --", flush=True)
    lossy("alice forward e1 (by address)", r1["a_e1"], E1)
    lossy("alice forward e2 (CIDR range)", r1["a_e2"], E2)
    lossy("alice forward e3 (target by name)", r1["a_e3"], E3)
    socks_fig("alice SOCKS to %s:%d" % (taddr, E1), r1["socks"], 0, E1)
    socks_fig("alice SOCKS to %s:%d" % (NAMES[1], E4), r1["socks"], 1, E4)
    for k in ("wrong_header", "corrupt", "stray"):
        t.check("alice SOCKS replies: %s" % k, r1["socks"][k], 0, "==")
    t.check("alice SOCKS replies from the sink", r1["socks"]["dests"][2]["replies"], 0, "==")
    fa = figures(r1["a_def"], st[DA], False)
    t.check("alice default flow: delivered to her target", 1 - fa["fwd_loss"], 0.95, ">=")
    clean("bob forward e5, 1-8000 bytes", r1["b_e5"], E5, tiny=True)
    clean("bob default flow, 1-8000 bytes", r1["b_def"], DB, tiny=True)
    socks_fig("bob SOCKS to %s:%d, 32-8000 bytes" % (NAMES[2], E5), r1["b_socks"], 0, E5,
              (CLEAN_LIMIT, 2 * CLEAN_LIMIT), new_name=True)
    for k in ("wrong_header", "corrupt", "stray"):
        t.check("bob SOCKS replies: %s" % k, r1["b_socks"][k], 0, "==")
    t.check("bob SOCKS replies from alice's echo (refused)",
            r1["b_socks"]["dests"][1]["replies"], 0, "==")
    for label, r in (("bob forward to alice's echo", r1["b_alices"]),
                     ("bob forward to the sink", r1["b_sink"]),
                     ("alice forward to bob's echo", r1["a_bobs"])):
        t.check("%s: replies (refused)" % label, r["received_unique"], 0, "==")
    # Nothing arrives where a peer may not reach: by flow, at each echo; at all at the sink and
    # at [server]'s target.
    afl = set().union(*(flows_of(r1[k]) for k in ("a_e1", "a_e2", "a_e3", "a_bobs", "a_def")))
    afl |= {0xFFF00001, 0xFFF00002, 0xFFF00003}
    bfl = set().union(*(flows_of(r1[k]) for k in ("b_e5", "b_def", "b_alices", "b_sink")))
    bfl |= {0xFFF00021, 0xFFF00022}
    for port, owner, others in ((E1, "alice", bfl), (E2, "alice", bfl), (E3, "alice", bfl),
                                (E4, "alice", bfl), (DA, "alice", bfl), (E5, "bob", afl),
                                (DB, "bob", afl)):
        n = sum(f["received"] for f in st[port]["flows"] if f["flow"] in others)
        t.check("%s's echo on port %d: datagrams of the other peer" % (owner, port), n, 0, "==")
    t.check("datagrams at the sink (no peer may reach it)", sk["received"], 0, "==")
    t.check("datagrams at [server]'s default target", st[DS]["received"], 0, "==")

    print("-- round 2, after the flows expired --", flush=True)
    lossy("alice forward e2 again", r2["a_e2"], E2)
    socks_fig("alice new SOCKS association to %s:%d" % (NAMES[1], E4), r2["socks"], 0, E4)
    for k in ("wrong_header", "corrupt", "stray"):
        t.check("alice new SOCKS association replies: %s" % k, r2["socks"][k], 0, "==")
    clean("bob forward e5 again", r2["b_e5"], E5)

    print("-- keys --", flush=True)
    for n in ("alice", "bob"):
        t.check("%s: re-keys during the first round" % n, rekeys1[n], 1, ">=")
        t.check("%s: re-keys in all" % n, rekeys[n], 4, ">=")
    for s in sst2["sessions"]["list"]:
        label = s.get("peer")
        print("%s: session age %d ms, keys age %d ms" % (label, s["age_ms"], s["keys_age_ms"]))
        t.check("%s: keys age (ms)" % label, s["keys_age_ms"], REKEY_S * 1500, "<=", fmt="%d")
        t.check("%s: age of the session they key (ms)" % label, s["age_ms"], REKEY_S * 3000,
                ">=", fmt="%d")
    dup = sum(x["duplicates"] for x in st.values())
    t.check("duplicates at the targets", dup, 0, "==")
    t.check("corrupted datagrams at the targets", sum(x["corrupt"] for x in st.values()), 0, "==")


netlab.run(body, budget=60)
