#!/usr/bin/env python3
"""Hostile datagrams at the server while a genuine flow runs.

A bridge records the client->server traffic of two sessions (the client is restarted in between).
Then, with the genuine flow still running:
 1. every recorded handshake is replayed verbatim from a socket of the test's own: an answer may
    only be a handshake reply no larger than the request, and the session it names must not be
    usable (datagrams in its name, and the recorded data, deliver nothing and get no answer);
 2. 100,000 junk datagrams (udpgen junk: random, oversized, and verbatim, truncated, bit-flipped
    and byte-swapped replays of the recording).
The target must see only the genuine flow's payloads, each once; nothing but handshake replies may
come back; the server must survive, and the genuine flow must lose at most 1% afterwards."""
import json
import os
import random
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

RATE = 200
JUNK = 100000
JUNK_RATE = 20000
AFTER_LIMIT = 0.01
HELLO, REPLY, DATA = 1, 2, 3


def drain(sock, wait):
    """Everything that arrives on sock within `wait` seconds."""
    got = []
    end = time.monotonic() + wait
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return got
        sock.settimeout(left)
        try:
            got.append(sock.recvfrom(65535)[0])
        except socket.timeout:
            return got


def body(t):
    secret = t.genkey()
    cport, sport = t.port(), t.port()
    bports = [t.port() for _ in range(2)]
    rec = t.path("capture.bin")
    tag = 0x6a756e6b
    tgt = mptlib.Target("127.0.0.1", echo=True, tags={tag})
    cfg = t.write_config("t.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % p for p in bports], server_listen=sport,
                         target=tgt.addr)
    server = t.server(cfg)
    t.bridge("bridge0", "127.0.0.1:%d" % bports[0], "127.0.0.1:%d" % sport, "--record", rec)
    t.bridge("bridge1", "127.0.0.1:%d" % bports[1], "127.0.0.1:%d" % sport)
    client = t.client(cfg)
    snd = mptlib.Sender("127.0.0.1", cport, RATE, tag=tag, size=(12, 1200), seed=9).start()
    sock = None
    try:
        end = time.monotonic() + 5
        while tgt.unique(tag) == 0:
            if time.monotonic() > end:
                raise mptlib.Failed("no traffic through the tunnel within 5 s")
            time.sleep(0.02)
        # Two sessions in the capture: restart the client once.
        time.sleep(1.0)
        t.stop(client)
        client = t.client(cfg, name="client2")
        time.sleep(1.5)
        recs = mptlib.read_records(rec)
        kinds = [mptlib.wire_type(d) for d in recs]
        hellos = [d for d, k in zip(recs, kinds) if k == HELLO]
        datas = [d for d, k in zip(recs, kinds) if k == DATA]
        print("capture: %d datagrams, %d handshakes, %d data" % (len(recs), len(hellos),
                                                                  len(datas)))
        if not hellos or not datas:
            raise mptlib.Failed("the capture holds no handshake or no data")

        # 1. Replayed handshakes, answered at most by a reply no larger than the request; altered
        # copies (bit flips, truncations, reversed fields) get no answer at all. Each socket sends
        # fewer handshakes than the per-source burst, and its verbatim copy last, so an answer
        # to that copy shows that the rate limit did not hide anything.
        rng = random.Random(23)
        bad_replies = 0
        altered_answered = 0
        altered = 0
        replies = []
        for h in hellos:
            variants = []
            for _ in range(40):
                v = bytearray(h)
                b = rng.randrange(len(h) * 8)
                v[b // 8] ^= 1 << (b % 8)
                variants.append(bytes(v))
            for _ in range(10):
                variants.append(h[:rng.randrange(len(h))])
            while len(variants) < 60:
                w = rng.choice((2, 4, 8))
                o = rng.randrange(64 // w) * w
                v = h[:o] + h[o:o + w][::-1] + h[o + w:]
                if v != h:
                    variants.append(v)
            for chunk in (variants[:30], variants[30:]):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", 0))
                for v in chunk:
                    s.sendto(v, ("127.0.0.1", sport))
                    altered += 1
                got = drain(s, 0.2)
                altered_answered += len(got)
                s.sendto(h, ("127.0.0.1", sport))
                for r in drain(s, 0.3):
                    if mptlib.wire_type(r) != REPLY or len(r) > len(h):
                        bad_replies += 1
                    else:
                        replies.append(r)
                s.close()
        print("replayed %d handshakes %d times verbatim and %d times altered: %d replies"
              % (len(hellos), 2 * len(hellos), altered, len(replies)))
        t.check("answers to altered handshakes", altered_answered, 0, "==")
        t.check("answers to replayed handshakes that are not a reply or larger than the request",
                bad_replies, 0, "==")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        if replies:
            sock.sendto(hellos[-1], ("127.0.0.1", sport))
            drain(sock, 0.3)
        # The sessions named by those replies are not usable: data in their name, and the
        # recorded data, sent from the same socket, deliver nothing and get no answer.
        forged = 0
        for r in replies:
            sid = r[4:12]
            for ctr in range(1, 51):
                d = bytes([1, DATA, 0, 0]) + sid + struct.pack(">Q", ctr) + os.urandom(64)
                sock.sendto(d, ("127.0.0.1", sport))
                forged += 1
        for d in datas:
            sock.sendto(d, ("127.0.0.1", sport))
        answers = drain(sock, 0.5)
        print("sent %d forged data datagrams in the replied sessions' names and %d recorded data"
              % (forged, len(datas)))
        t.check("answers to forged or replayed data", len(answers), 0, "==")

        # 2. The junk flood, with the capture for replays.
        t.ensure_time(JUNK / JUNK_RATE + 15, "the junk flood")
        flood_start = time.monotonic()
        junk = t.start("junk", [mptlib.UDPGEN, "junk", "--to", "127.0.0.1:%d" % sport,
                               "--count", str(JUNK), "--rate", str(JUNK_RATE), "--seed", "17",
                               "--replay", rec, "--linger", "500", "--json"])
        rc = junk.p.wait(JUNK / JUNK_RATE + 30)
        flood_end = time.monotonic()
        if rc != 0:
            raise mptlib.Failed("udpgen junk exited %s: %s" % (rc, junk.log()))
        j = json.loads(junk.stdout().strip().splitlines()[-1])
        print("junk sent: %s" % j["sent"])
        print("junk answered: %s" % j["received"])
        t.check("junk datagrams sent", j["sent"]["total"], JUNK, "==")
        got = j["received"]["by_kind"]
        # A byte-swapped replay is the original again when the reversed fields read the same both
        # ways (the zero padding of a handshake); every other kind must go unanswered.
        t.check("answers to random, oversized, truncated or bit-flipped junk",
                sum(v for k, v in got.items() if k not in ("replay", "swapped")), 0, "==")
        t.check("largest answer to junk (bytes)", j["received"]["max_size"],
                max(len(h) for h in hellos), "<=")
        t.expect(server.alive(), "server alive after the flood")

        # The genuine flow afterwards.
        time.sleep(0.5)
        t0 = time.monotonic()
        time.sleep(3.0)
        seqs = snd.sent_between(t0, t0 + 2.5)
        time.sleep(0.5)
        fwd = 1 - sum(1 for s in seqs if tgt.has(tag, s)) / len(seqs)
        back = 1 - snd.echoed(seqs) / len(seqs)
        during = snd.sent_between(flood_start, flood_end)
        dloss = 1 - sum(1 for s in during if tgt.has(tag, s)) / max(len(during), 1)
        print("genuine flow during the flood: loss %.4f of %d (not checked)" % (dloss,
                                                                               len(during)))
        t.check("genuine flow loss afterwards, forward (%d sent)" % len(seqs), fwd, AFTER_LIMIT)
        t.check("genuine flow loss afterwards, round trip", back, AFTER_LIMIT)
        t.check("junk datagrams that reached the target", tgt.foreign, 0, "==")
        t.check("genuine datagrams delivered twice", tgt.duplicates(), 0, "==")
        if tgt.foreign:
            print("foreign samples: %s" % tgt.foreign_samples)
    finally:
        if sock:
            sock.close()
        snd.close()
        tgt.close()


mptlib.run(body, budget=90)
