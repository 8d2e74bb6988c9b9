#!/usr/bin/env python3
"""Soak: flows come and go for 2 minutes (an hour with MPT_SOAK=1) through a server, three client
processes and two lossy bridges (--loss 0.05 each way), with every timeout short: flow_timeout 1 s
at the server and 1 or 2 s at the clients, session_timeout 2 s, bridge --idle-timeout 2.

Each client's applications are flows of their own (a socket each): short ones (5 datagrams, then
gone) and returning ones (bursts of 3, 3.5 s apart, long enough for every flow table to forget
them, four times). Every payload carries (flow tag, sequence number). The server is killed (-9)
and restarted a third of the way in, a client two thirds of the way in (every 10 minutes, in
turn, in the long run).

Asserts: every process alive at every report (but the killed ones, restarted); nothing
delivered twice either way; round-trip loss within a limit; every burst of a returning flow, after
its flows expired, answered; and resident memory and open descriptors flat: per process, memory at
the end against the first report taken 15 s or more after it started, and descriptors once the
churn stops and every flow has expired equal to what they were before it began. Figures are
printed every 20 s (every minute in the long run).

Loss and bursts are not counted around the restarts, nor around a stall of the machine (this test
not running for 0.5 s, or a client hearing nothing on any path for a second): what a stalled
2-core machine shared with other work does is not the tunnel's doing. At least 60% of what is
sent must be counted."""
import heapq
import os
import random
import re
import select
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mptlib  # noqa: E402

# MPT_SOAK_SECONDS sets another length (for trying the test itself).
DURATION = int(os.environ.get("MPT_SOAK_SECONDS") or
               (3600 if os.environ.get("MPT_SOAK") == "1" else 120))
REPORT = 60 if DURATION >= 600 else 20
NCLIENTS = 3
SHORT_PER_S = 2.0  # new short flows per second and client
RETURNING_PER_S = 0.5
SHORT_COUNT = 5
BURSTS, BURST, GAP = 4, 3, 3.5
SPACING = 0.05  # between one flow's datagrams
LINGER = 1.5  # a flow waits this long for its last echoes
KILL_DOWN = 1.0
KILL_WINDOW = (0.2, 4.0)  # datagrams sent this long before a kill and after a restart not counted
STALL = 0.5  # this loop not run this long: the machine stalled
LOSS_LIMIT = 0.03  # round trip; two paths at 5% each way give about 0.005
WARM = 15.0
# In a sanitizer build the allocator holds freed blocks back (its quarantine, default 256 MiB) and
# resident memory grows with the blocks freed, not with what the program keeps: the quarantine is
# set to QUARANTINE_MIB there, and the memory limit allows for it. Plain builds measure leaks.
QUARANTINE_MIB = 16
RSS_LIMIT_KIB = 1024  # growth from the first warm report to the last, plus 5% of the first
FD_SLACK = 0


class Target:
    """Echo target in a thread. Per flow tag a bit mask of the sequence numbers seen, so that a
    second copy of any is counted as a duplicate."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.seen = {}
        self.dups = self.foreign = self.total = 0
        self.stopped = False
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def _loop(self):
        self.sock.settimeout(0.1)
        while not self.stopped:
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                continue
            k = mptlib.parse_payload(data)
            with self.lock:
                self.total += 1
                if k is None:
                    self.foreign += 1
                    continue
                bit = 1 << k[1]
                m = self.seen.get(k[0], 0)
                if m & bit:
                    self.dups += 1
                self.seen[k[0]] = m | bit
            try:
                self.sock.sendto(data, src)
            except OSError:
                pass

    def has(self, tag, seq):
        with self.lock:
            return bool(self.seen.get(tag, 0) >> seq & 1)

    def forget(self, tag):
        with self.lock:
            self.seen.pop(tag, None)

    def close(self):
        self.stopped = True
        self.th.join(2)
        self.sock.close()


class Flow:
    def __init__(self, tag, client, times, burst_starts):
        self.tag = tag
        self.client = client
        self.times = times  # send time per seq
        self.bursts = burst_starts  # first seq of each burst after the first
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.echoed = 0  # bit mask
        self.dups = 0
        self.sent_at = {}
        self.end = times[-1] + LINGER  # moved on if the last datagram goes out late


class Soak:
    def __init__(self, t, cports, tgt):
        self.t = t
        self.cports = cports
        self.tgt = tgt
        self.rng = random.Random(1234)
        self.tag = self.rng.getrandbits(31) << 1
        self.flows = {}  # socket -> Flow
        self.heap = []  # (time, n, flow, seq)
        self.n = 0
        self.flows_opened = self.sent = self.foreign = 0
        # The kernel hands out ports again: a flow on a port that an earlier one used within the
        # flow timeout is, to the tunnel as to any NAT, the same flow, and may get that one's late
        # echoes. Those are counted apart; anything else is foreign.
        self.port_tags = {}  # port -> tags of the flows that used it
        self.reused = 0
        self.done = []  # per finished flow: (sent_at, echoed, forwarded, bursts, duplicates)
        self.reported = 0  # records of self.done already reported
        self.t0 = time.monotonic()
        # (from, to, why): datagrams sent in there are not counted.
        self.windows = []
        self.stalls = []  # (from, to) where this loop did not run
        self.last_step = None
        self.next_spawn = [[time.monotonic() + self.rng.random() / SHORT_PER_S,
                            time.monotonic() + self.rng.random() / RETURNING_PER_S]
                           for _ in cports]

    def spawn(self, client, returning, now):
        self.tag += 1
        if returning:
            times, bursts = [], []
            for b in range(BURSTS):
                if b:
                    bursts.append(len(times))
                times += [now + b * GAP + j * SPACING for j in range(BURST)]
        else:
            times, bursts = [now + j * SPACING for j in range(SHORT_COUNT)], []
        f = Flow(self.tag, client, times, bursts)
        self.flows[f.sock] = f
        self.port_tags.setdefault(f.port, set()).add(f.tag)
        for seq, at in enumerate(times):
            self.n += 1
            heapq.heappush(self.heap, (at, self.n, f, seq))
        self.flows_opened += 1

    def excluded(self, at):
        return any(a <= at < b for a, b, _ in self.windows)

    def finish(self, f):
        fwd = sum(1 << q for q in range(len(f.times)) if self.tgt.has(f.tag, q))
        self.done.append((f.sent_at, f.echoed, fwd, f.bursts, f.dups, f.tag, f.client))
        self.tgt.forget(f.tag)
        del self.flows[f.sock]
        f.sock.close()

    def account(self, records, show=0):
        """Figures of finished flows, away from the excluded windows known now."""
        a = {"counted": 0, "lost": 0, "fwd_lost": 0, "bursts": 0, "bursts_failed": 0,
             "dups": 0}
        for sent_at, echoed, fwd, bursts, dups, tag, client in records:
            a["dups"] += dups
            for seq, at in sent_at.items():
                if self.excluded(at):
                    continue
                a["counted"] += 1
                a["lost"] += not (echoed >> seq & 1)
                a["fwd_lost"] += not (fwd >> seq & 1)
            for first in bursts:
                at = sent_at.get(first)
                if at is None or self.excluded(at):
                    continue
                a["bursts"] += 1
                if not any(echoed >> q & 1 for q in range(first, first + BURST)):
                    a["bursts_failed"] += 1
                    if a["bursts_failed"] <= show:
                        print("flow %08x of client%d: the burst from seq %d, sent at t=%.3f s, "
                              "had no echo; the target saw %s of it"
                              % (tag, client, first, at - self.t0,
                                 [q for q in range(first, first + BURST) if fwd >> q & 1]))
        return a

    def interval(self):
        a = self.account(self.done[self.reported:])
        self.reported = len(self.done)
        return a

    def step(self, until, churn=True):
        """Runs the traffic until `until` (monotonic)."""
        while True:
            now = time.monotonic()
            # The machine (2 cores, shared) may stop this process for a while: such a stall is
            # excluded, as it stops the tunnel's processes too.
            if self.last_step is not None and now - self.last_step > STALL:
                self.stalls.append((self.last_step, now))
                self.windows.append((self.last_step - KILL_WINDOW[0], now + KILL_WINDOW[1],
                                     "stall"))
            self.last_step = now
            if now >= until:
                return
            if churn:
                for c in range(len(self.cports)):
                    ns = self.next_spawn[c]
                    while ns[0] <= now:
                        self.spawn(c, False, now)
                        ns[0] += self.rng.expovariate(SHORT_PER_S)
                    while ns[1] <= now:
                        self.spawn(c, True, now)
                        ns[1] += self.rng.expovariate(RETURNING_PER_S)
            while self.heap and self.heap[0][0] <= now:
                _, _, f, seq = heapq.heappop(self.heap)
                data = mptlib.make_payload(f.tag, seq, self.rng.randint(12, 1200))
                f.sent_at[seq] = time.monotonic()
                f.end = max(f.end, f.sent_at[seq] + LINGER)
                self.sent += 1
                try:
                    f.sock.sendto(data, ("127.0.0.1", self.cports[f.client]))
                except OSError:
                    pass  # the client is being restarted
            for f in [f for f in self.flows.values() if f.end <= now]:
                self.finish(f)
            wait = 0.02
            if self.heap:
                wait = max(0.0, min(wait, self.heap[0][0] - time.monotonic()))
            if not self.flows:
                time.sleep(wait)
                continue
            r, _, _ = select.select(list(self.flows), [], [], wait)
            for s in r:
                f = self.flows[s]
                while True:
                    try:
                        data = s.recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    k = mptlib.parse_payload(data)
                    if k is not None and k[0] != f.tag and k[0] in self.port_tags[f.port]:
                        self.reused += 1
                        continue
                    if k is None or k[0] != f.tag or k[1] >= len(f.times):
                        self.foreign += 1
                        continue
                    if f.echoed >> k[1] & 1:
                        f.dups += 1
                    f.echoed |= 1 << k[1]

    def drain(self):
        for f in list(self.flows.values()):
            self.finish(f)


REHANDSHAKE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3}) \w+: session \w+ silent "
                         r"for (\d+) ms on every path: re-establishing", re.M)


def rehandshakes(text, wall_to_mono):
    """(monotonic time, silence in s) of each re-handshake a client log shows."""
    out = []
    for m in REHANDSHAKE.finditer(text):
        wall = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1e3
        out.append((wall - wall_to_mono, int(m.group(3)) / 1e3))
    return out


def body(t):
    ctest_timeout = int(os.environ.get("MPT_CTEST_TIMEOUT", "0") or 0)
    if ctest_timeout and ctest_timeout < DURATION + 120:
        raise mptlib.Failed("a run of %d s does not fit ctest's TIMEOUT of %d s: configure the "
                            "build with MPT_SOAK=1 in the environment too"
                            % (DURATION, ctest_timeout))
    os.environ["ASAN_OPTIONS"] = ":".join(
        o for o in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=%d" % QUARANTINE_MIB) if o)
    secret = t.genkey()
    sport = t.port()
    bports = [t.port() for _ in range(2)]
    cports = [t.port() for _ in range(NCLIENTS)]
    tgt = Target()
    scfg = t.write_config("server.ini", secret, server_listen="127.0.0.1:%d" % sport,
                          target=tgt.addr,
                          extra_server=["flow_timeout = 1s", "session_timeout = 2s",
                                        "max_sessions = 16",
                                        "control = " + t.path("server.sock")])
    ccfgs = [t.write_config("client%d.ini" % i, secret, client_listen="127.0.0.1:%d" % p,
                            bridges=["127.0.0.1:%d" % b for b in bports],
                            extra_client=["flow_timeout = %ds" % (1 + i % 2),
                                          "control = " + t.path("client%d.sock" % i)])
             for i, p in enumerate(cports)]
    procs = {}
    started = {}

    def start(name):
        if name == "server":
            p = t.server(scfg, name="server")
        elif name.startswith("client"):
            p = t.client(ccfgs[int(name[6:])], name=name)
        else:
            i = int(name[6:])
            p = t.bridge(name, "127.0.0.1:%d" % bports[i], "127.0.0.1:%d" % sport,
                         "--loss", "0.05", "--seed", str(11 + i), "--idle-timeout", "2")
        procs[name] = p
        started[name] = time.monotonic()
        return p

    soak = None
    try:
        for name in ["server", "bridge0", "bridge1"] + ["client%d" % i for i in range(NCLIENTS)]:
            start(name)
        for cfg in ccfgs:
            doc, _ = lifelib.wait_until(
                lambda: (lifelib.status(cfg, "client", must=False) or {}).get(
                    "session", {}).get("state") == "established", 10)
            if not doc:
                raise mptlib.Failed("a client has no session after 10 s")
        time.sleep(1.0)
        with open("/proc/%d/maps" % procs["server"].pid) as f:
            sanitized = "libasan" in f.read()
        rss_limit = RSS_LIMIT_KIB + (QUARANTINE_MIB << 10 if sanitized else 0)
        if sanitized:
            print("sanitizer build: its allocator keeps up to %d MiB of freed blocks, which the "
                  "memory limit allows for" % QUARANTINE_MIB)
        fds0 = {n: lifelib.proc_figures(p.pid)[1] for n, p in procs.items()}
        print("descriptors before the churn: %s" % ", ".join("%s %d" % kv
                                                              for kv in sorted(fds0.items())))
        soak = Soak(t, cports, tgt)
        t0 = soak.t0
        wall_to_mono = time.time() - time.monotonic()
        seen_rehandshakes = set()

        def note_rehandshakes():
            """A client that re-handshakes with no restart going on found every path silent for
            a second or more: the machine stalled it, or the server, or both bridges. What was
            sent around that time is not counted (and the number is reported)."""
            for p in t.procs:
                if not p.name.startswith("client"):
                    continue
                for at, silent in rehandshakes(p.log(), wall_to_mono):
                    if (p.pid, at) in seen_rehandshakes:
                        continue
                    seen_rehandshakes.add((p.pid, at))
                    if not soak.excluded(at):
                        soak.windows.append((at - silent - KILL_WINDOW[0],
                                             at + KILL_WINDOW[1], "silence"))
        if DURATION >= 1200:  # every 10 minutes, in turn
            kills = [(k * 600.0, "server" if k % 2 else "client0")
                     for k in range(1, (DURATION - 1) // 600 + 1)]
        else:
            kills = [(DURATION / 3, "server"), (2 * DURATION / 3, "client0")]
        warm = {}  # process name -> (rss, fds) at its first warm report
        reports = opened = sent = 0
        next_report = t0 + REPORT
        while time.monotonic() - t0 < DURATION:
            upto = min(next_report, t0 + DURATION)
            if kills and t0 + kills[0][0] < upto:
                soak.step(t0 + kills[0][0])
                name = kills.pop(0)[1]
                killed = time.monotonic()
                procs[name].signal(signal.SIGKILL)
                procs[name].p.wait(5)
                soak.step(killed + KILL_DOWN)
                start(name)
                soak.windows.append((killed - KILL_WINDOW[0],
                                     time.monotonic() + KILL_WINDOW[1], "restart"))
                print("t=%.0f s: %s killed (-9) and restarted after %.1f s"
                      % (killed - t0, name, time.monotonic() - killed), flush=True)
                continue
            soak.step(upto)
            if time.monotonic() < next_report:
                continue
            next_report += REPORT
            reports += 1
            note_rehandshakes()
            d = soak.interval()
            now = time.monotonic()
            figs = []
            for name, p in sorted(procs.items()):
                if not p.alive():
                    raise mptlib.Failed("%s (pid %d) died; log:\n%s" % (name, p.pid,
                                                                       p.log()[-3000:]))
                f = lifelib.proc_figures(p.pid)
                if now - started[name] >= WARM and (name not in warm or warm[name][1] != p.pid):
                    warm[name] = (f, p.pid)
                figs.append("%s %.1f MiB %d fds" % (name, f[0] / 1024.0, f[1]))
            print("t=%.0f s: %d flows opened (%d open), %d datagrams sent, %d counted, round-trip "
                  "loss %.4f, duplicates %d; %s"
                  % (now - t0, soak.flows_opened - opened, len(soak.flows), soak.sent - sent,
                     d["counted"], d["lost"] / max(d["counted"], 1), d["dups"],
                     "; ".join(figs)), flush=True)
            opened, sent = soak.flows_opened, soak.sent
        # The churn stops; every flow expires.
        soak.step(time.monotonic() + LINGER + 0.5, churn=False)
        soak.drain()
        quiet = time.monotonic()

        def settled():
            return all(lifelib.proc_figures(procs[n].pid)[1] <= fds0[n] + FD_SLACK
                       for n in procs)
        lifelib.wait_until(settled, 6.0, step=0.25)
        print("%.1f s after the churn stopped:" % (time.monotonic() - quiet))
        for name, p in sorted(procs.items()):
            t.expect(p.alive(), "%s alive at the end" % name)
            f = lifelib.proc_figures(p.pid)
            t.check("%s: open descriptors once idle (%d before the churn)" % (name, fds0[name]),
                    f[1], fds0[name] + FD_SLACK)
            if name in warm and warm[name][1] == p.pid:
                w = warm[name][0][0]
                t.check("%s: resident memory growth since its first warm report (KiB; %d then)"
                        % (name, w), f[0] - w, rss_limit + w // 20)
        for name in ("server", "client0"):
            t.check("%s restarted: flat figures measured on its new run too" % name,
                    1 if name in warm and warm[name][1] == procs[name].pid else 0, 1, "==")
        note_rehandshakes()
        s = soak.account(soak.done, show=5)
        kinds = [w[2] for w in soak.windows]
        print("not counted: what was sent around %d restarts, %d stalls of this test (longest "
              "%.1f s) and %d other re-handshakes (a client hearing nothing for 1 s)"
              % (kinds.count("restart"), len(soak.stalls),
                 max([b - a for a, b in soak.stalls] or [0]), kinds.count("silence")))
        print("%d flows, %d datagrams sent; %d counted, %d lost round trip, %d forward; %d bursts "
              "after an expiry" % (soak.flows_opened, soak.sent, s["counted"], s["lost"],
                                   s["fwd_lost"], s["bursts"]))
        t.check("reports", reports, DURATION // REPORT, ">=")
        t.check("flows opened", soak.flows_opened, int(DURATION * NCLIENTS * SHORT_PER_S / 2),
                ">=")
        t.check("share of the datagrams counted", s["counted"] / max(soak.sent, 1), 0.6, ">=")
        t.check("round-trip loss away from the restarts", s["lost"] / max(s["counted"], 1),
                LOSS_LIMIT)
        t.check("bursts of returning flows, after their flows expired, not answered at all",
                s["bursts_failed"], 0, "==")
        t.check("bursts after an expiry", s["bursts"], int(DURATION * NCLIENTS * RETURNING_PER_S),
                ">=")
        t.check("datagrams delivered twice to the target", tgt.dups, 0, "==")
        t.check("echoes delivered twice to an application", s["dups"], 0, "==")
        print("late echoes of an earlier flow on the same port (the kernel gave it out again): %d"
              % soak.reused)
        t.check("foreign datagrams at the target or applications", tgt.foreign + soak.foreign,
                0, "==")
        for name, p in sorted(procs.items()):
            t.expect(p.alive(), "%s (pid %d) alive" % (name, p.pid))
    finally:
        if soak:
            for f in list(soak.flows.values()):
                f.sock.close()
        tgt.close()


mptlib.run(body, budget=DURATION + 90, attempts=1)
