#!/usr/bin/env python3
"""Scheduling modes on real processes. Each of three paths is client -> counting relay (in this
test) -> mptunnel bridge -> server; the relay tells data copies (DATA datagrams longer than a
probe) from probes, per path and direction, with the time of each.

backup: priorities 1, 2, 2 and 1000 datagrams/s of a numbered stream to an echo target. Only path
0 carries data; SIGUSR1 blacks out its bridge: the echoes must resume within 1 s (via paths 1-2);
SIGUSR2 brings it back: data must be on path 0 again within 1 s each way, and paths 1-2 carry no
data from 1 s after that on.

balance: weights 3, 2, 1: each path's share of data copies within 10% (relative) of its share of
weight, both ways, with one copy per datagram."""
import os
import select
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

RATE = 1000
SIZE = (100, 400)  # data copies are then 144 bytes or more; a probe is 84, its ack 60
DATA_MIN = 144
LIMIT_S = 1.0
SHARE_TOL = 0.10


class CountingRelay:
    """Relays UDP from a listening socket to `to` and the replies back, one peer (the client's
    path socket), recording the arrival time of every data copy per direction."""

    def __init__(self, to_port):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.usock.bind(("127.0.0.1", 0))
        self.usock.connect(("127.0.0.1", to_port))
        for s in (self.lsock, self.usock):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.port = self.lsock.getsockname()[1]
        self.peer = None
        self.data = ([], [])  # arrival times of data copies: [0] client -> server, [1] back
        self.other = [0, 0]  # everything else (probes, handshakes)
        self.stopped = False
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def _note(self, d, data):
        if len(data) >= DATA_MIN and mptlib.wire_type(data) == 3:
            self.data[d].append(time.monotonic())
        else:
            self.other[d] += 1

    def _loop(self):
        while not self.stopped:
            r, _, _ = select.select([self.lsock, self.usock], [], [], 0.1)
            for s in r:
                try:
                    data, src = s.recvfrom(65535)
                except OSError:
                    continue
                try:
                    if s is self.lsock:
                        self.peer = src
                        self._note(0, data)
                        self.usock.send(data)
                    elif self.peer is not None:
                        self._note(1, data)
                        self.lsock.sendto(data, self.peer)
                except OSError:
                    pass

    def count(self, d, t0, t1):
        return sum(1 for t in list(self.data[d]) if t0 <= t < t1)

    def first(self, d, t0):
        for t in list(self.data[d]):
            if t >= t0:
                return t
        return None

    def close(self):
        self.stopped = True
        self.th.join(2)
        self.lsock.close()
        self.usock.close()


def tunnel(t, mode, paths):
    """Starts target, server, relays, bridges and client; paths: [(priority, weight)]. Returns
    (client port, target, relays, bridges, client)."""
    secret = t.genkey()
    cport, sport = t.port(), t.port()
    target = mptlib.Target(echo=True)
    bports = [t.port() for _ in paths]
    relays = [CountingRelay(p) for p in bports]
    t.relays += relays
    t.targets.append(target)
    lines = ["[tunnel]", "secret = " + secret, "", "[client]", "listen = 127.0.0.1:%d" % cport,
             "mode = " + mode]
    for i, (prio, weight) in enumerate(paths):
        lines += ["", "[path p%d]" % i, "bridge = 127.0.0.1:%d" % relays[i].port,
                  "priority = %d" % prio, "weight = %d" % weight]
    lines += ["", "[server]", "listen = %d" % sport, "target = " + target.addr]
    cfg = t.path("%s.ini" % mode)
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    t.server(cfg, name="server-" + mode)
    bridges = [t.bridge("bridge-%s%d" % (mode, i), "127.0.0.1:%d" % p, "127.0.0.1:%d" % sport)
               for i, p in enumerate(bports)]
    client = t.client(cfg, name="client-" + mode)
    t.wait_log(client, r"path \d+ up", count=len(paths), timeout=5)
    return cport, target, relays, bridges, client


def start_stream(t, cport, tag):
    snd = mptlib.Sender("127.0.0.1", cport, RATE, tag=tag, size=SIZE, seed=tag)
    t.senders.append(snd)
    snd.start()
    end = time.monotonic() + 5
    while snd.first_echo_after(0) is None:
        if time.monotonic() > end:
            raise mptlib.Failed("no echo through the tunnel within 5 s")
        time.sleep(0.02)
    return snd


def backup(t):
    cport, target, relays, bridges, client = tunnel(t, "backup", [(1, 1), (2, 1), (2, 1)])
    snd = start_stream(t, cport, 1)
    t0 = time.monotonic()
    time.sleep(2.0)

    kill = time.monotonic()
    bridges[0].signal(signal.SIGUSR1)
    time.sleep(3.0)
    revive = time.monotonic()
    bridges[0].signal(signal.SIGUSR2)
    time.sleep(3.0)
    end = time.monotonic()
    snd.paused = True
    time.sleep(0.5)
    print("backup, priorities 1, 2, 2, %d datagrams/s; path 0 blacked out for 3 s" % RATE)
    # Against what was sent meanwhile, not the nominal rate: on a loaded host the sender itself
    # falls behind. All of it on path 0 (a few in flight at the window's edges aside).
    before = len(snd.sent_between(t0, kill))
    for d, way in enumerate(("up", "down")):
        t.check("data copies on path 0 %s before the blackout (of %d sent)" % (way, before),
                relays[0].count(d, t0, kill), max(1, int(before * 0.9)), ">=")
        t.check("data copies on paths 1-2 %s before the blackout" % way,
                relays[1].count(d, 0, kill) + relays[2].count(d, 0, kill), 0, "==")

    # Failover: the first echo of a datagram sent after the blackout began.
    sent_after = snd.sent_between(kill, revive)
    with snd.lock:
        echo_t = [(tm, s) for (tm, s) in snd.echo_times if s >= sent_after[0]]
    resumed = min(tm for tm, _ in echo_t) if echo_t else None
    if resumed is None:
        raise mptlib.Failed("no echo after the blackout of path 0")
    first_backup = [min([x for x in (r.first(d, kill) for r in relays[1:]) if x] or [float("inf")])
                    for d in (0, 1)]
    lost = [s for s in snd.sent_between(kill, resumed) if s not in snd.echoes]
    print("first data copy on a backup path %.3f s up, %.3f s down after the blackout"
          % (first_backup[0] - kill, first_backup[1] - kill))
    t.check("failover time (blackout to echoes resuming) s", resumed - kill, LIMIT_S)
    print("lost during failover: %d datagrams of %d sent until the echoes resumed"
          % (len(lost), len(snd.sent_between(kill, resumed))))
    for d, way in enumerate(("up", "down")):
        t.check("data copies on paths 1-2 %s during the blackout" % way,
                relays[1].count(d, kill + LIMIT_S, revive) +
                relays[2].count(d, kill + LIMIT_S, revive), 500, ">=")

    # Handback: data on path 0 again, each way; then paths 1-2 carry none.
    for d, way in enumerate(("up", "down")):
        f = relays[0].first(d, revive)
        t.check("handback time %s s" % way, (f - revive) if f else 99.0, LIMIT_S)
        t.check("data copies on paths 1-2 %s from 1 s after the handback" % way,
                relays[1].count(d, revive + LIMIT_S, end + 1) +
                relays[2].count(d, revive + LIMIT_S, end + 1), 0, "==")
    steady = snd.sent_between(revive + LIMIT_S, end - 0.2)
    t.check("round-trip loss after the handback", 1 - snd.echoed(steady) / len(steady), 0.01)
    t.check("round-trip duplicates", snd.duplicates(), 0, "==")
    t.check("target duplicates", target.duplicates(), 0, "==")
    for pr in [client] + bridges:
        t.stop(pr)


def balance(t):
    weights = (3, 2, 1)
    cport, target, relays, bridges, client = tunnel(t, "balance", [(1, w) for w in weights])
    snd = start_stream(t, cport, 2)
    time.sleep(0.5)
    t0 = time.monotonic()
    time.sleep(5.0)
    t1 = time.monotonic()
    snd.paused = True
    time.sleep(0.5)

    print("balance, weights %s, %d datagrams/s, window of %.1f s" % (weights, RATE, t1 - t0))
    for d, way in enumerate(("up", "down")):
        counts = [r.count(d, t0, t1) for r in relays]
        total = sum(counts)
        shares = [c / total for c in counts]
        print("%s: data copies %s, shares %s" % (way, counts,
                                                 " ".join("%.3f" % s for s in shares)))
        for i, w in enumerate(weights):
            dev = shares[i] / (w / sum(weights)) - 1
            t.check("path %d share %s, deviation from weight (relative)" % (i, way), abs(dev),
                    SHARE_TOL)
    # One copy per datagram: every data copy seen by the relays against what was sent/echoed.
    copies_up = sum(len(r.data[0]) for r in relays)
    copies_down = sum(len(r.data[1]) for r in relays)
    t.check("copies per datagram up", copies_up / snd.nsent(), 1.0, "<=", "%.4f")
    t.check("copies per datagram down", copies_down / max(target.total, 1), 1.0, "<=", "%.4f")
    t.check("round-trip duplicates", snd.duplicates(), 0, "==")


def body(t):
    t.relays, t.targets, t.senders = [], [], []
    try:
        backup(t)
        balance(t)
    finally:
        for x in t.senders + t.relays + t.targets:
            x.close()


mptlib.run(body, budget=80)
