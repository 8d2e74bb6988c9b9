#!/usr/bin/env python3
"""Balance mode's caps of replies, on the wire (PROTOCOL.md §5 PROBE bytes 50-81, §8.2), against
the real server from the independent protocol-2 peer (lib/mpt2.py): one session, two client paths
(two sockets, from 127.0.0.1 and 127.0.0.2), each answering the server's path challenges and
probed every PROBE_EVERY s in balance mode with `use` weight 1 on both. A flow of RATE
datagrams/s for SECS s goes to the server's target, an echo, and the echoes are counted on each
socket:
 1. caps 200/s and none: path 0 gets at most its cap over the window and the 5 ms burst (within
    MARGIN), and at least LOW of it; path 1 the rest; nothing lost;
 2. 50-byte probes (no caps): the paths share by weight (each SHARE_LO-SHARE_HI);
 3. caps 300/s and 600/s, below what is sent: every reply still arrives (by weight when no path
    has room), about by weight;
 4. right after 3, a cap of 200/s written as 25 x 2^3: as in 1 (the exponent is read, and the
    overload of 3 left no debt in the buckets: path 0 has room again at once);
 5. hostile values: caps 0xffff (and 1/s on the 14 paths that do not exist, use 0); a cap on a
    path whose use is 0 (it gets nothing, the other everything); a probe of 81 bytes carrying
    caps (caps nothing: by weight). The server stays up and answers `mptunnel status`."""
import base64
import os
import select
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mpt2  # noqa: E402
import mptlib  # noqa: E402

mpt2.need_crypto()

RATE = 2000          # FLOW datagrams/s sent, alternately from the two paths' sockets
SECS = 2.0           # of traffic per step
PROBE_EVERY = 0.15   # s between probes on each path
SETTLE = 0.3         # s of probes alone before a step's traffic: its caps are in force
DRAIN = 0.4          # s after a step's traffic for the last echoes
MARGIN = 1.15        # a capped path gets at most this times its cap over the window (and its burst)
LOW = 0.6            # and at least this times it (the cap as written, not half of it): the host's
                     # stalls cost a capped path its share of them beyond its 5 ms burst
CATCH_UP = 0.005     # s of datagrams sent at once at most when the sender is late
SHARE_LO, SHARE_HI = 0.40, 0.60
PAYLOAD = 64
HOSTS = ("127.0.0.1", "127.0.0.2")


def burst(cap):
    """What a bucket of `cap` datagrams/s holds: 5 ms of them, at least 2 (core/sched.c)."""
    return max(2.0, cap * 0.005)


class Peer:
    """A client of one session over two paths, in one thread: sends the flow and the probes, reads
    the echoes, acks and challenges of both sockets."""

    def __init__(self, server, secret):
        self.server = server
        self.socks = []
        for h in HOSTS:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, mptlib.BUFSIZE_BYTES)
            s.bind((h, 0))
            self.socks.append(s)
        self.sess, _ = mpt2.connect(self.socks[0], server, secret, mode=3, timeout=3.0)
        if self.sess is None:
            raise mptlib.Failed("no handshake with the server within 3 s")
        for s in self.socks:
            s.setblocking(False)
        self.seq = [0, 0]
        self.next_probe = [0.0, 0.0]
        self.acks = [0, 0]
        self.challenges = [0, 0]
        self.echoes = {}  # tag -> per path: {seq: copies}
        self.times = {}   # tag -> arrival times of its echoes (both paths)
        self.hints(use=[1, 1])

    def close(self):
        for s in self.socks:
            s.close()

    def hints(self, use, caps=None, words=None, length=None):
        """What the probes say from now on: `use` weights, `caps` as rates (mpt2.probe), or the
        caps' 16 raw words; `length`: the probes cut to it."""
        self.use = bytes(use + [0] * (16 - len(use)))
        self.caps, self.words, self.length = caps, words, length
        self.next_probe = [0.0, 0.0]  # at once on both paths

    def probe(self, i):
        self.seq[i] += 1
        p = mpt2.probe(i, self.seq[i], npaths=2, use=self.use, mode=3, caps=self.caps)
        if self.words is not None:
            p = p[:50] + struct.pack(">16H", *self.words)
        if self.length is not None:
            p = p[:self.length]
        self.socks[i].sendto(self.sess.seal(p), self.server)

    def read(self, i, tag):
        s = self.socks[i]
        while True:
            try:
                d = s.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            now = time.monotonic()
            inner = self.sess.open(d)
            if inner is None:
                continue
            a = self.sess.answer(inner)
            if a is not None:
                self.challenges[i] += 1
                s.sendto(a, self.server)
                continue
            if inner[0] == mpt2.K_PROBE_ACK:
                self.acks[i] += 1
                continue
            f = mpt2.parse_flow(inner)
            k = mptlib.parse_payload(f[1]) if f else None
            if k is None or k[0] not in self.echoes:
                continue
            per = self.echoes[k[0]][i]
            per[k[1]] = per.get(k[1], 0) + 1
            self.times[k[0]].append(now)

    def pump(self, secs, rate=0, tag=None):
        """secs of probes and reading; with `rate`, the flow's datagrams of `tag` too, numbered
        from 0. Returns how many were sent."""
        t0 = time.monotonic()
        end = t0 + secs
        sent = 0
        if tag is not None:
            self.echoes.setdefault(tag, ({}, {}))
            self.times.setdefault(tag, [])
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if rate:
                due = min(int((now - t0) * rate), int(secs * rate))
                if due - sent > max(1, int(CATCH_UP * rate)):
                    # Late (the host is busy): what is owed is not sent in one burst, which the
                    # server would answer faster than any cap's 5 ms burst lets a path take.
                    # The schedule moves on by the delay (the step lasts longer).
                    skip = due - sent - max(1, int(CATCH_UP * rate))
                    t0 += skip / rate
                    end = t0 + secs
                    due -= skip
                while sent < due:
                    d = self.sess.seal(mpt2.flow(1, mptlib.make_payload(tag, sent, PAYLOAD)))
                    try:
                        self.socks[sent % 2].sendto(d, self.server)
                    except OSError:
                        pass  # counted as lost
                    sent += 1
            for i in (0, 1):
                if now >= self.next_probe[i]:
                    self.probe(i)
                    self.next_probe[i] = now + PROBE_EVERY
            wake = min(self.next_probe + [end])
            if rate:
                wake = min(wake, t0 + (sent + 1) / rate)
            r, _, _ = select.select(self.socks, [], [], max(0.0, min(wake - time.monotonic(),
                                                                     0.01)))
            for s in r:
                self.read(self.socks.index(s), tag)
        return sent


def step(t, peer, tag, label, **hints):
    """One step: the hints, SETTLE s, RATE/s for SECS s, DRAIN s. Returns the figures."""
    t.ensure_time(SETTLE + SECS + DRAIN + 2, label)
    peer.hints(**hints)
    peer.pump(SETTLE)
    sent = peer.pump(SECS, RATE, tag)
    peer.pump(DRAIN, tag=tag)
    per = peer.echoes[tag]
    times = peer.times[tag]
    n = [len(per[0]), len(per[1])]
    both = len(set(per[0]) | set(per[1]))
    dup = sum(c - 1 for p in per for c in p.values()) + n[0] + n[1] - both
    window = times[-1] - times[0] if len(times) > 1 else 0.0
    print("%s: sent %d, echoes on path 0 %d, path 1 %d (%d distinct, %d duplicates) over %.3f s"
          % (label, sent, n[0], n[1], both, dup, window), flush=True)
    t.check("%s: echoes lost" % label, sent - both, 0)
    t.check("%s: duplicate echoes" % label, dup, 0)
    return {"sent": sent, "n": n, "window": window, "total": max(both, 1)}


def check_cap(t, label, fig, i, cap):
    """Path i's echoes within its cap of `cap`/s over the step's window, its burst besides."""
    w = fig["window"]
    print("%s: path %d carried %.1f/s (cap %d/s)" % (label, i, fig["n"][i] / max(w, 1e-3), cap))
    t.check("%s: path %d's echoes" % (label, i), fig["n"][i], MARGIN * cap * w + burst(cap),
            fmt="%.0f")
    t.check("%s: path %d's echoes" % (label, i), fig["n"][i], LOW * cap * w, ">=", fmt="%.0f")


def check_shares(t, label, fig):
    share = fig["n"][0] / fig["total"]
    t.check("%s: path 0's share" % label, share, SHARE_LO, ">=", fmt="%.3f")
    t.check("%s: path 0's share" % label, share, SHARE_HI, "<=", fmt="%.3f")


def body(t):
    mpt2.self_check()
    secret_b64 = t.genkey()
    secret = base64.b64decode(secret_b64)
    sp, ep = t.port(), t.port()
    echo = t.echo("echo", "127.0.0.1:%d" % ep)
    cfg = t.write_config("caps.ini", secret_b64, server_listen="127.0.0.1:%d" % sp,
                         target="127.0.0.1:%d" % ep)
    server = t.server(cfg)
    peer = Peer(("127.0.0.1", sp), secret)
    try:
        # Both paths validated (their probes acked), the flow open (its first echo back).
        end = time.monotonic() + 5
        while time.monotonic() < end and not (peer.acks[0] and peer.acks[1]):
            peer.pump(0.1)
        print("path challenges answered %s, probe acks %s" % (peer.challenges, peer.acks))
        if not t.expect(peer.acks[0] > 0 and peer.acks[1] > 0, "both paths validated and acked"):
            return
        end = time.monotonic() + 5
        while time.monotonic() < end and not (peer.echoes.get(0) and
                                              (peer.echoes[0][0] or peer.echoes[0][1])):
            peer.pump(0.2, rate=10, tag=0)
        if not t.expect(bool(peer.echoes[0][0] or peer.echoes[0][1]), "the flow echoed"):
            return

        f = step(t, peer, 1, "caps 200/s, none", use=[1, 1], caps=[200, 0])
        check_cap(t, "caps 200/s, none", f, 0, 200)
        t.check("caps 200/s, none: path 1's echoes", f["n"][1], f["sent"] - f["n"][0], ">=")

        f = step(t, peer, 2, "no caps (50-byte probes)", use=[1, 1])
        check_shares(t, "no caps (50-byte probes)", f)

        f = step(t, peer, 3, "caps 300/s, 600/s", use=[1, 1], caps=[300, 600])
        check_shares(t, "caps 300/s, 600/s", f)

        words = [0x3000 | 25, 0] + [0] * 14
        f = step(t, peer, 4, "cap 25 x 2^3, none", use=[1, 1], words=words)
        check_cap(t, "cap 25 x 2^3, none", f, 0, 200)

        words = [0xffff, 0xffff] + [0x0001] * 14
        f = step(t, peer, 5, "caps 0xffff", use=[1, 1], words=words)
        check_shares(t, "caps 0xffff", f)

        f = step(t, peer, 6, "use 0 with a cap, none", use=[0, 1], caps=[200, 0] + [1] * 14)
        t.check("use 0 with a cap, none: path 0's echoes", f["n"][0], 0, "==")

        f = step(t, peer, 7, "81-byte probes with caps", use=[1, 1], caps=[200, 0], length=81)
        check_shares(t, "81-byte probes with caps", f)

        t.expect(server.alive(), "the server still running")
        doc = lifelib.status(cfg, "server")
        t.check("sessions at the server", doc["sessions"]["used"], 1, "==")
    finally:
        peer.close()
    st = t.stop_echo(echo)
    print("the echo: %d datagrams" % st.get("received", 0))


mptlib.run(body, budget=60)
