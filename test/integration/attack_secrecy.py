#!/usr/bin/env python3
"""Forward secrecy: a relay on the tunnel's only path records every datagram of a session (both
ways) while an application exchanges numbered datagrams with the target; the client then stops.
The test, which knows the secret, plays an attacker who recorded the traffic and learned the
secret later, and tries to decrypt the recorded DATA datagrams with all that follows from the
secret and what was sent in clear:
 - version 1: the session keys follow from the secret, sid, Rc and Rs (PROTOCOL.md v1 §3);
 - version 2: the handshake is an ephemeral Diffie-Hellman (Noise NNpsk0). The secret opens the
   first handshake message (positive control: its TAI64N timestamp must read as the time of the
   recording, so recording and secret are right), but every key the attacker can derive (the
   handshake's chaining key, cipher key and hash after message 1, a split of them, the mac1 and
   cookie keys, the resume key) must open none of the DATA.
Figure: DATA datagrams decrypted with the secret, of those recorded (limit 0)."""
import base64
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mpt2  # noqa: E402
import mptlib  # noqa: E402
from taprelay import DOWN, UP, TapRelay  # noqa: E402

mpt2.need_crypto()

COUNT = 200
RATE = 100


def v1_attack(secret, recs):
    """Decrypts recorded version-1 DATA from the secret and the clear handshake values."""
    hellos = {}
    keys = {}
    for _, way, d in recs:
        c = mpt2.classify(d)
        if way == UP and c == (mpt2.V1, mpt2.HELLO) and len(d) == mpt2.HELLO_LEN:
            hellos[mpt2.sid_of(d)] = d[12:44]
    for _, way, d in recs:
        if way == DOWN and mpt2.classify(d) == (mpt2.V1, mpt2.REPLY):
            sid = mpt2.sid_of(d)
            if sid in hellos and mpt2.v1_reply_ok(secret, d, hellos[sid]):
                c2s, s2c = mpt2.v1_session_keys(secret, sid, hellos[sid], d[12:44])
                keys[sid] = (c2s, s2c, d[44])
    print("version 1: %d HELLO(s), %d session key set(s) derived from the secret and the clear "
          "values" % (len(hellos), len(keys)))
    return lambda way, d: (mpt2.open_data(d, keys[mpt2.sid_of(d)][0 if way == UP else 1],
                                          (keys[mpt2.sid_of(d)][2],))
                           if mpt2.sid_of(d) in keys else None)


def hkdf(ck, ikm, n):
    import hmac
    import hashlib

    def h(k, m):
        return hmac.new(k, m, hashlib.blake2b).digest()
    prk = h(ck, ikm)
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = h(prk, prev + bytes([i]))
        out.append(prev)
    return out


def v2_attack(t, secret, recs, t_first):
    """Reads each INIT with the secret (positive control), then gathers every key that follows
    from the secret and the clear values."""
    cands = [mpt2.k_mac1(secret), mpt2.k_cookie(secret), secret]
    inits = 0
    skew = []
    resp = {}
    for _, way, d in recs:
        if way == DOWN and mpt2.classify(d) == (mpt2.V2, mpt2.RESPONSE):
            resp[mpt2.sid_of(d)] = d
    for tr, way, d in recs:
        if way != UP or mpt2.classify(d) != (mpt2.V2, mpt2.INIT):
            continue
        pl, hs = mpt2.read_init(secret, d)
        if pl is None:
            continue
        inits += 1
        # The recording's wall clock time: monotonic arrival mapped through the start.
        skew.append(abs(pl["time"] - (t_first[1] + (tr - t_first[0]))))
        ss = hs.symmetricstate
        ck, h, k = ss._ck, ss._h, ss._cipherstate._key
        cands += [ck[:32], ck[32:], h[:32], h[32:], k]
        cands += [x[:32] for x in hkdf(ck, b"", 2)]
        r = resp.get(mpt2.sid_of(d))
        if r is not None:
            # The handshake hash at the end follows from the secret and the transcript; so do the
            # resume key and a split that left out the Diffie-Hellman result.
            h2 = mpt2.transcript_hash(secret, d, r)
            cands += [h2[:32], h2[32:], mpt2.hash_resume_key(h2)]
            ck2 = hkdf(ck, r[12:44], 2)[0]
            cands += [x[:32] for x in hkdf(ck2, b"", 2)] + [x[:32] for x in hkdf(ck, b"", 3)]
    t.check("INITs read with the secret (positive control)", inits, 1, ">=")
    if skew:
        t.check("their TAI64N timestamp against the recording's time, s", max(skew), 5.0)
    print("version 2: %d candidate keys from the secret and the clear values" % len(cands))
    return lambda way, d: next((p for p in (mpt2.open_data(d, k) for k in cands)
                                if p is not None), None)


def body(t):
    secret_b64 = t.genkey()
    secret = base64.b64decode(secret_b64)
    sp, rp, cp = t.port(), t.port(), t.port()
    tgt = mptlib.Target()
    relay = TapRelay(rp, ("127.0.0.1", sp))
    t_first = (time.monotonic(), time.time())
    try:
        cfg = t.write_config("t.ini", secret_b64, client_listen="127.0.0.1:%d" % cp,
                             bridges=["127.0.0.1:%d" % rp], server_listen="127.0.0.1:%d" % sp,
                             target=tgt.addr)
        t.server(cfg)
        client = t.client(cfg)
        snd = mptlib.Sender("127.0.0.1", cp, RATE, size=(12, 600)).start(COUNT)
        snd.wait_done(COUNT / RATE + 10)
        time.sleep(0.5)
        echoed = snd.echoed(range(COUNT))
        snd.close()
        t.stop(client)
        time.sleep(0.2)
        relay.recording = False
        recs = relay.recorded()
    finally:
        relay.close()
        tgt.close()
    t.check("datagrams echoed through the tunnel (the recording holds a session)", echoed,
            COUNT * 9 // 10, ">=")
    versions = {mpt2.classify(d)[0] for _, _, d in recs if mpt2.classify(d)}
    if versions != {mpt2.V1} and versions != {mpt2.V2}:
        raise mptlib.Failed("recording holds versions %s" % sorted(versions))
    version = versions.pop()
    data = [(w, d) for _, w, d in recs if mpt2.classify(d) == (version, mpt2.DATA)]
    print("recorded %d datagrams, %d DATA (%d up, %d down), protocol version %d"
          % (len(recs), len(data), sum(w == UP for w, _ in data), sum(w == DOWN for w, _ in data),
             version))
    if version == mpt2.V1:
        opener = v1_attack(secret, recs)
    else:
        opener = v2_attack(t, secret, recs, t_first)
    opened = payloads = 0
    for w, d in data:
        p = opener(w, d)
        if p is not None:
            opened += 1
            f = mpt2.parse_flow(p)
            if f and mptlib.parse_payload(f[1]):
                payloads += 1
    print("application payloads read from the recording: %d" % payloads)
    t.check("DATA recorded", len(data), COUNT, ">=")
    t.check("DATA datagrams decrypted with the leaked secret", opened, 0, "==")


mptlib.run(body, budget=60)
