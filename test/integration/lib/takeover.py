"""Session takeover by a second holder of the shared secret (attack_takeover.py, and in key mode
attack_takeover_peer.py). A victim client exchanges numbered datagrams with the target (100/s) over
one path; a relay on that path shows the attacker the victim's session id, which every DATA header
carries. For 8 s the attacker (its own address, 127.0.0.7) makes a handshake with the secret naming
the victim's current session as previous, then probes from its address as the victim's path 0 and
reads what the server sends it; it does so again each time the victim's session id changes. The
target echoes the victim's datagrams and also sends it datagrams of its own, 50/s.
 - version 1: the server re-keys the victim's session for the attacker, who then reads the
   target's datagrams to the victim, and the victim's delivery falls;
 - version 2: continuing a session needs a proof under that session's key. The attacker who
   knows only the session id sends zeros or random bytes; the attacker who also recorded the
   victim's handshake on the path (`recorded`) computes the proof from all that a holder of the
   secret can derive from that recording. Neither may continue the victim's session.
 - key mode (`keymode`, version 2 only): the attacker is another peer of the server, with a key
   pair of its own; it may never touch the victim's session.
Figures: the victim's delivery during the attack (at least 0.99) and the victim's datagrams the
attacker read (its echoes and the target's own datagrams: 0)."""
import base64
import os
import socket
import threading
import time

import mpt2
import mptlib
from taprelay import DOWN, UP, TapRelay

RATE = 100
WARM = 2.0
ATTACK = 8.0
ATTACKER = "127.0.0.7"
PUSH_RATE = 50
PUSH_TAG = 0x50555348


class PushTarget:
    """A target that echoes what it receives and also sends datagrams of its own (tag PUSH_TAG,
    PUSH_RATE a second) to every source it heard from in the last 5 s: what a server application
    sends its client unasked, which an attacker in the session would read."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(1.0 / PUSH_RATE)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sources = {}
        self.pushed = 0
        self.stopped = False
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def _loop(self):
        next_push = time.monotonic()
        while not self.stopped:
            try:
                data, src = self.sock.recvfrom(65535)
                self.sources[src] = time.monotonic()
                self.sock.sendto(data, src)
            except (socket.timeout, OSError):
                pass
            now = time.monotonic()
            if now < next_push:
                continue
            next_push = now + 1.0 / PUSH_RATE
            for src, seen in list(self.sources.items()):
                if now - seen < 5:
                    self.pushed += 1
                    try:
                        self.sock.sendto(mptlib.make_payload(PUSH_TAG, self.pushed, 64), src)
                    except OSError:
                        pass

    def close(self):
        self.stopped = True
        self.th.join(2)
        self.sock.close()


class Attacker(threading.Thread):
    def __init__(self, secret, version, relay, server, victim_tag, recorded, keys=None):
        super().__init__(daemon=True)
        self.keys = keys or {}  # key mode: its own static key and the server's public key
        self.recorded = recorded
        self.forged = 0  # proofs computed from a recorded handshake
        self.secret, self.version, self.relay, self.server = secret, version, relay, server
        self.tag = victim_tag
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ATTACKER, 0))
        self.sessions = {}
        self.attacked = set()
        self.handshakes = self.answered = 0
        self.read = 0  # victim payloads read
        self.datagrams = 0  # DATA of its own sessions that opened
        self.stopped = False
        self.seq = 0

    def victim_sid(self):
        for _, _, d in reversed(self.relay.recorded(UP)[-50:]):
            if mpt2.classify(d) == (self.version, mpt2.DATA):
                return mpt2.sid_of(d)
        return None

    def probe_all(self):
        for s in list(self.sessions.values()):
            self.seq += 1
            # Path 0 of the victim, answered there only, and newer than any of its probes.
            p = mpt2.probe(0, self.seq, now_us=(1 << 62) + self.seq)
            try:
                self.sock.sendto(s.seal(p), self.server)
            except OSError:
                pass

    def resume_of(self, sid):
        """The resume key of the victim's session `sid` as the recording gives it, or None."""
        init = resp = None
        for _, way, d in self.relay.recorded():
            if mpt2.sid_of(d) != sid:
                continue
            if way == UP and mpt2.classify(d) == (mpt2.V2, mpt2.INIT):
                init = d
            elif way == DOWN and mpt2.classify(d) == (mpt2.V2, mpt2.RESPONSE):
                resp = d
        h = mpt2.transcript_hash(self.secret, init, resp) if init and resp else None
        return mpt2.hash_resume_key(h) if h else None

    def take(self, sid):
        self.handshakes += 1
        resume = self.resume_of(sid) if self.recorded and self.version == mpt2.V2 else None
        if resume is not None:
            self.forged += 1
            proof = None
        else:
            proof = bytes(16) if self.handshakes % 2 else os.urandom(16)
        sess, _ = mpt2.connect(self.sock, self.server, self.secret, self.version, prev_sid=sid,
                               prev_resume=resume, proof_bytes=proof, timeout=0.6, **self.keys)
        if sess is not None:
            self.answered += 1
            self.sessions[sess.sid] = sess
            self.probe_all()

    def drain(self, until):
        while time.monotonic() < until:
            self.sock.settimeout(max(0.001, until - time.monotonic()))
            try:
                d, _ = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                return
            s = self.sessions.get(mpt2.sid_of(d))
            p = s.open(d) if s else None
            if p is None:
                continue
            a = s.answer(p)
            if a is not None:
                # A path challenge: answered, as the client would (the attacker's address is
                # its own, and receives what it is sent).
                self.sock.sendto(a, self.server)
                continue
            self.datagrams += 1
            f = mpt2.parse_flow(p)
            k = mptlib.parse_payload(f[1]) if f else None
            if k and k[0] in (self.tag, PUSH_TAG):
                self.read += 1

    def run(self):
        next_probe = 0
        while not self.stopped:
            sid = self.victim_sid()
            if sid and sid not in self.attacked and sid not in self.sessions:
                self.attacked.add(sid)
                self.take(sid)
            if time.monotonic() >= next_probe:
                self.probe_all()
                next_probe = time.monotonic() + 0.2
            self.drain(time.monotonic() + 0.05)

    def stop(self):
        self.stopped = True
        self.join(3)
        self.sock.close()


def b64(b):
    return base64.b64encode(b).decode()


def body(t, recorded, keymode):
    secret_b64 = t.genkey()
    secret = base64.b64decode(secret_b64)
    ckeys = skeys = []
    akeys = None
    if keymode:
        # The victim's key pair, the server's, and the attacker's: another peer of the server.
        vpriv, spriv, apriv = (os.urandom(32) for _ in range(3))
        ckeys = ["private_key = " + b64(vpriv),
                 "server_public_key = " + b64(mpt2.public_key(spriv))]
        skeys = ["private_key = " + b64(spriv), "", "[peer victim]",
                 "public_key = " + b64(mpt2.public_key(vpriv)), "", "[peer mallory]",
                 "public_key = " + b64(mpt2.public_key(apriv))]
        akeys = {"static": apriv, "server_pub": mpt2.public_key(spriv)}
    sp, rp, cp = t.port(), t.port(), t.port()
    tgt = PushTarget()
    relay = TapRelay(rp, ("127.0.0.1", sp))
    att = snd = None
    try:
        cfg = t.write_config("takeover.ini", secret_b64, client_listen="127.0.0.1:%d" % cp,
                             bridges=["127.0.0.1:%d" % rp], server_listen="127.0.0.1:%d" % sp,
                             target=tgt.addr,
                             extra_client=["control = " + t.path("c.sock")] + ckeys,
                             extra_server=["control = " + t.path("s.sock")] + skeys)
        t.server(cfg)
        t.client(cfg)
        snd = mptlib.Sender("127.0.0.1", cp, RATE, size=(12, 200)).start()
        time.sleep(WARM)
        versions = {mpt2.classify(d)[0] for _, _, d in relay.recorded() if mpt2.classify(d)}
        if len(versions) != 1:
            raise mptlib.Failed("the path carries versions %s" % sorted(versions))
        version = versions.pop()
        warm = snd.sent_between(0, time.monotonic() - 0.5)
        t.check("victim's delivery before the attack", snd.echoed(warm) / max(1, len(warm)),
                0.99, ">=")
        att = Attacker(secret, version, relay, ("127.0.0.1", sp), snd.tag, recorded,
                       akeys)
        t0 = time.monotonic()
        att.start()
        time.sleep(ATTACK)
        t1 = time.monotonic()
        time.sleep(1.0)
        att.stop()
        during = snd.sent_between(t0, t1)
        delivery = snd.echoed(during) / max(1, len(during))
        print("protocol version %d: %d takeover handshakes naming the victim's session (%d with "
              "a proof computed from the recorded handshake), %d answered; %d DATA opened on the "
              "attacker's sessions"
              % (version, att.handshakes, att.forged, att.answered, att.datagrams))
        t.check("takeover attempts", att.handshakes, 1, ">=")
        t.check("victim's delivery during the attack", delivery, 0.99, ">=")
        t.check("victim's datagrams read by the attacker", att.read, 0, "==")
    finally:
        if att is not None and not att.stopped:
            att.stop()
        if snd is not None:
            snd.close()
        relay.close()
        tgt.close()


def main(recorded=False, keymode=False):
    mpt2.need_crypto()
    mptlib.run(lambda t: body(t, recorded, keymode), budget=60)
