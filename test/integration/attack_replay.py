#!/usr/bin/env python3
"""Replayed handshakes. A relay records the handshake datagrams of a client (three sessions: it is
started three times), which then stops. Once the newest is more than 1 s old, they are replayed,
as they were, at 1,000/s from 150 source addresses (127.0.1.1 to 127.0.1.150), and while that
goes on a new client starts. Figures: the new client's time from its start to the first echo
through it (limit 1 s), and the answers the server sends to the replays (limit 0: a handshake
older than 1 s gets no reply; version 1 answers each with a REPLY)."""
import os
import select
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mpt2  # noqa: E402
import mptlib  # noqa: E402
from taprelay import UP, TapRelay  # noqa: E402

SOURCES = 150
REPLAY_RATE = 1000
CONNECT_LIMIT = 1.0
CONNECT_GIVE_UP = 35.0


class Flood(threading.Thread):
    """Sends `dgrams` round robin from SOURCES sockets at REPLAY_RATE, counting the answers."""

    def __init__(self, dgrams, to):
        super().__init__(daemon=True)
        self.dgrams, self.to = dgrams, to
        self.socks = []
        for i in range(SOURCES):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.1.%d" % (i + 1), 0))
            s.setblocking(False)
            self.socks.append(s)
        self.sent = 0
        self.answers = {}  # type byte -> count
        self.answer_bytes = 0
        self.stopped = False

    def run(self):
        t0 = time.monotonic()
        while not self.stopped:
            due = int((time.monotonic() - t0) * REPLAY_RATE)
            while self.sent < due:
                s = self.socks[self.sent % SOURCES]
                try:
                    s.sendto(self.dgrams[self.sent % len(self.dgrams)], self.to)
                except OSError:
                    pass
                self.sent += 1
            r, _, _ = select.select(self.socks, [], [], 0.005)
            for s in r:
                try:
                    d, _ = s.recvfrom(65535)
                except OSError:
                    continue
                k = d[1] if len(d) > 1 else -1
                self.answers[k] = self.answers.get(k, 0) + 1
                self.answer_bytes += len(d)

    def stop(self):
        self.stopped = True
        self.join(3)
        for s in self.socks:
            s.close()


def body(t):
    secret_b64 = t.genkey()
    sp, rp, cp, cp2, ep = t.port(), t.port(), t.port(), t.port(), t.port()
    t.echo("echo", "127.0.0.1:%d" % ep)
    relay = TapRelay(rp, ("127.0.0.1", sp))
    flood = snd = None
    try:
        ctl = lambda n: ["control = " + t.path(n + ".sock")]  # noqa: E731
        cfg = t.write_config("replay.ini", secret_b64, client_listen="127.0.0.1:%d" % cp,
                             bridges=["127.0.0.1:%d" % rp], server_listen="127.0.0.1:%d" % sp,
                             target="127.0.0.1:%d" % ep, extra_client=ctl("c"),
                             extra_server=ctl("s"))
        cfg2 = t.write_config("replay2.ini", secret_b64, client_listen="127.0.0.1:%d" % cp2,
                              bridges=["127.0.0.1:%d" % sp], extra_client=ctl("c2"))
        t.server(cfg)
        for i in range(3):
            c = t.client(cfg, name="client%d" % i)
            t.warm_up("127.0.0.1:%d" % cp)
            t.stop(c)
        relay.recording = False
        hs = [d for _, _, d in relay.recorded(UP)
              if mpt2.classify(d) in ((mpt2.V1, mpt2.HELLO), (mpt2.V2, mpt2.INIT))]
        newest = max(tr for tr, w, d in relay.recorded(UP) if d in hs) if hs else 0
        version = mpt2.classify(hs[0])[0] if hs else None
        print("captured %d handshake datagrams (protocol version %s) of %d sessions"
              % (len(hs), version, len({mpt2.sid_of(d) for d in hs})))
        if not hs:
            raise mptlib.Failed("no handshake recorded")
        time.sleep(max(0.0, newest + 1.5 - time.monotonic()))
        flood = Flood(hs, ("127.0.0.1", sp))
        flood.start()
        time.sleep(1.0)
        c2 = t.client(cfg2, name="newclient")
        snd = mptlib.Sender("127.0.0.1", cp2, 100, size=(12, 200)).start()
        first = None
        end = c2.started + CONNECT_GIVE_UP
        while first is None and time.monotonic() < end:
            time.sleep(0.02)
            first = snd.first_echo_after(0)
        connect = (first - c2.started) if first else CONNECT_GIVE_UP
        time.sleep(1.0)
        flood.stop()
        rate = flood.sent / max(1e-9, time.monotonic() - c2.started + 1.0)
        print("replays sent: %d (%.0f/s) from %d addresses; answers by type: %s (%d bytes)"
              % (flood.sent, rate, SOURCES, flood.answers, flood.answer_bytes))
        t.check("replays sent", flood.sent, 2 * REPLAY_RATE, ">=")
        t.check("new client's time to connect under the replays, s%s"
                % (" (gave up)" if first is None else ""), connect, CONNECT_LIMIT)
        t.check("answers to replayed handshakes older than 1 s", sum(flood.answers.values()), 0,
                "==")
    finally:
        if flood is not None and not flood.stopped:
            flood.stop()
        if snd is not None:
            snd.close()
        relay.close()


mptlib.run(body, budget=90)
