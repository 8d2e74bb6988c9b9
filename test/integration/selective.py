#!/usr/bin/env python3
"""A selective relay fools path health. Path 1 of two goes through a relay that an attacker runs;
it forwards probes, acks, challenges and handshakes (every datagram under 144 bytes) but not the
data (test payloads of 100 bytes or more), both ways.

adaptive: path 2 is 15 ms slower each way. The relay forwards the first 100 data datagrams each
way, then drops every data datagram and sends in its place a stale copy of one it forwarded. Were
duplicates counted before authentication, or stale copies counted at all, path 1 would show 0%
loss and the lower RTT and take all the traffic while delivering none. Figure: round-trip
delivery of what is sent from 1 s on (at least 99%, path 2 being healthy).

backup: path 1 has priority 1, path 2 (direct) priority 2; the relay forwards only what is not
data. Figures: the time from the first datagram to the first echo (failover, limit 1 s), the
round-trip delivery of what is sent from 1 s on (at least 99%), and how many of 1,000 come back."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import evilrelay  # noqa: E402
import mptlib  # noqa: E402

RATE = 250
COUNT = 1000
SIZE = (100, 800)
LIMIT_S = 1.0


class StaleRelay(evilrelay.EvilRelay):
    """Forwards all but data; the first CAPTURE data datagrams each way are forwarded and kept,
    every later one is dropped and a kept one sent instead."""
    CAPTURE = 100

    def __init__(self, to_port, stale):
        super().__init__(to_port)
        self.stale = stale
        self.pool = ([], [])
        self.turn = [0, 0]
        self.dropped = [0, 0]

    def _pass(self, d, data, send):
        if not evilrelay.is_data(data):
            return True
        if not self.stale:
            self.dropped[d] += 1
            return False
        if len(self.pool[d]) < self.CAPTURE:
            self.pool[d].append(data)
            return True
        self.dropped[d] += 1
        send(self.pool[d][self.turn[d] % len(self.pool[d])])
        self.turn[d] += 1
        return False

    def up(self, data):
        return self._pass(0, data, self.send_up)

    def down(self, data):
        return self._pass(1, data, self.send_down)


def tunnel(t, mode, stale, second):
    """Target, server, the relay (path 1), path 2 (`second`: a bridge delay in ms, or None for
    direct) and the client; returns (client port, target, relay)."""
    secret = t.genkey()
    cport, sport, bport = t.port(), t.port(), t.port()
    tgt = mptlib.Target("127.0.0.1", echo=True)
    relay = StaleRelay(sport, stale).start()
    t.closers += [tgt, relay]
    p2 = "127.0.0.1:%d" % (bport if second is not None else sport)
    lines = ["[tunnel]", "secret = " + secret, "", "[client]", "listen = 127.0.0.1:%d" % cport,
             "mode = " + mode, "", "[path evil]", "bridge = 127.0.0.1:%d" % relay.port,
             "priority = 1", "", "[path good]", "bridge = " + p2, "priority = 2", "",
             "[server]", "listen = 127.0.0.1:%d" % sport, "target = " + tgt.addr]
    cfg = t.path("%s.ini" % mode)
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    t.server(cfg, name="server-" + mode)
    if second is not None:
        t.bridge("bridge-" + mode, "127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport, "--delay",
                 str(second))
    client = t.client(cfg, name="client-" + mode)
    t.wait_log(client, r"path \d+ up", count=2, timeout=5)
    time.sleep(0.6)  # a few probes each way: the paths' figures are known
    return cport, tgt, relay, client


def run_stream(t, cport, tag):
    snd = mptlib.Sender("127.0.0.1", cport, RATE, tag=tag, size=SIZE, seed=tag)
    snd.start(COUNT)
    t0 = time.monotonic()
    snd.wait_done(COUNT / RATE + 10)
    time.sleep(0.5)
    snd.close()
    return snd, t0


def adaptive(t):
    cport, tgt, relay, client = tunnel(t, "adaptive", True, 15)
    snd, t0 = run_stream(t, cport, 0x5e1)
    late = snd.sent_between(t0 + LIMIT_S, float("inf"))
    print("adaptive: relay dropped %d data datagrams up, %d down, sending stale copies instead"
          % tuple(relay.dropped))
    print("adaptive: %d of %d sent came back" % (snd.echoed(range(snd.nsent())), snd.nsent()))
    t.check("adaptive: round-trip delivery from 1 s on, stale re-sends on path 1",
            snd.echoed(late) / max(len(late), 1), 0.99, ">=")
    t.stop(client)


def backup(t):
    cport, tgt, relay, client = tunnel(t, "backup", False, None)
    snd, t0 = run_stream(t, cport, 0xbac)
    late = snd.sent_between(t0 + LIMIT_S, float("inf"))
    first = snd.first_echo_after(0)
    print("backup: relay dropped %d data datagrams up, %d down" % tuple(relay.dropped))
    print("backup: %d of %d sent came back" % (snd.echoed(range(snd.nsent())), snd.nsent()))
    t.check("backup: failover time, first datagram to first echo (s)",
            (first - t0) if first else 99.0, LIMIT_S, "<=", "%.3f")
    t.check("backup: round-trip delivery from 1 s on, probes only on path 1",
            snd.echoed(late) / max(len(late), 1), 0.99, ">=")
    t.stop(client)


def body(t):
    t.closers = []
    try:
        adaptive(t)
        backup(t)
    finally:
        for x in t.closers:
            x.close()


mptlib.run(body, budget=60)
