#!/usr/bin/env python3
"""Reflection by a relay on one path. The client has two paths: path 1 through a relay that an
attacker runs, path 2 through a bridge 20 ms slower. The relay sees the client's datagrams first:
every 200 ms it sends one of them, fresh, from one of 14 victim addresses (sockets bound to
127.0.2.1-14, which count what reaches them) before it forwards the original. A server that took
any fresh authenticated source as a return path would send the victims every reply of the
session; a new return address must instead get nothing but a challenge it cannot answer, and at
most 3x the bytes that came from it. Figures: bytes to the victims against the bytes the attacker
sent from them (limit 3), and the session's own round-trip delivery meanwhile (at least 99%)."""
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import evilrelay  # noqa: E402
import mptlib  # noqa: E402

VICTIMS = 14
RATE = 500
SECS = 6.0
RESEND_S = 0.2


class Reflector(evilrelay.EvilRelay):
    def __init__(self, to_port):
        super().__init__(to_port)
        self.victims = []
        for i in range(VICTIMS):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.2.%d" % (i + 1), 0))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.victims.append(s)
        self.extra = list(self.victims)
        self.attacking = False
        self.next_at = 0.0
        self.turn = 0
        self.sent_bytes = 0
        self.sent_dgrams = 0
        self.got_bytes = 0
        self.got_dgrams = 0

    def up(self, data):
        now = time.monotonic()
        if self.attacking and evilrelay.is_data(data) and now >= self.next_at:
            v = self.victims[self.turn % VICTIMS]
            self.turn += 1
            self.next_at = now + RESEND_S
            self.send_up(data, sock=v)
            self.sent_bytes += len(data)
            self.sent_dgrams += 1
        return True

    def on_extra(self, sock, data, src):
        self.got_bytes += len(data)
        self.got_dgrams += 1


def body(t):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.2.1", 0))
        s.close()
    except OSError:
        raise mptlib.Skip("cannot bind 127.0.2.1")
    secret = t.genkey()
    cport, sport, bport = t.port(), t.port(), t.port()
    tgt = mptlib.Target("127.0.0.1", echo=True)
    relay = Reflector(sport).start()
    try:
        cfg = t.write_config("t.ini", secret, client_listen="127.0.0.1:%d" % cport,
                             bridges=["127.0.0.1:%d" % relay.port, "127.0.0.1:%d" % bport],
                             server_listen="127.0.0.1:%d" % sport, target=tgt.addr)
        t.server(cfg)
        t.bridge("bridge", "127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport, "--delay", "20")
        client = t.client(cfg)
        t.wait_log(client, r"path \d+ up", count=2, timeout=5)
        time.sleep(0.5)
        relay.attacking = True
        snd = mptlib.Sender("127.0.0.1", cport, RATE, size=(100, 1000), seed=7)
        snd.start(int(RATE * SECS))
        snd.wait_done(SECS + 10)
        time.sleep(0.5)
        relay.attacking = False
        time.sleep(0.3)
        n = snd.nsent()
        back = snd.echoed(range(n))
        snd.close()
        with relay.lock:
            sent, got = relay.sent_bytes, relay.got_bytes
            print("attacker: %d datagrams (%d bytes) re-sent from %d victim addresses; victims "
                  "received %d datagrams (%d bytes)"
                  % (relay.sent_dgrams, sent, VICTIMS, relay.got_dgrams, got))
        if sent == 0:
            raise mptlib.Failed("the attacker had nothing to re-send")
        t.check("bytes to the victims / bytes the attacker sent", got / sent, 3.0, "<=", "%.2f")
        print("session: sent %d, echoed back %d" % (n, back))
        t.check("round-trip delivery of the session under attack", back / max(n, 1), 0.99, ">=")
        t.check("duplicates delivered", tgt.duplicates(), 0, "==")
    finally:
        relay.close()
        tgt.close()


mptlib.run(body, budget=60)
