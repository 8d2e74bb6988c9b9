#!/usr/bin/env python3
"""Replay of a captured session. A bridge records the client->server traffic of a session (its
handshake and data); the capture is then sent again, as it was, at the server:
 1. while the server that saw it still runs: 0 new deliveries (every copy is a duplicate), and
    the recorded session, still live over its second (direct) path, keeps working both ways
    (no replayed copy took over its return path);
 2. at a new server process on the same port (after a restart): 0 deliveries, since the session's
    keys came from randomness of both sides and the new server's is fresh."""
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

RATE = 200
COUNT = 400
REPLAY_RATE = 2000


def replay(recs, to, wait=1.0):
    """Sends recs to `to` from a fresh socket at REPLAY_RATE; returns the answers' sizes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    t0 = time.monotonic()
    for i, d in enumerate(recs):
        delay = t0 + i / REPLAY_RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        s.sendto(d, to)
    answers = []
    end = time.monotonic() + wait
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            answers.append(len(s.recvfrom(65535)[0]))
        except socket.timeout:
            break
    s.close()
    return answers


def send_batch(t, cport, tgt, tag, seed, label):
    snd = mptlib.Sender("127.0.0.1", cport, RATE, tag=tag, size=(12, 1200), seed=seed)
    snd.start(COUNT)
    snd.wait_done(COUNT / RATE + 10)
    time.sleep(0.5)
    n = snd.nsent()
    fwd = sum(1 for s in range(n) if tgt.has(tag, s))
    back = snd.echoed(range(n))
    snd.close()
    print("%s: sent %d, delivered %d, echoed back %d" % (label, n, fwd, back))
    return n, fwd, back


def body(t):
    secret = t.genkey()
    cport, sport, bport = t.port(), t.port(), t.port()
    rec = t.path("capture.bin")
    tags = {0x72650001, 0x72650002}
    tgt = mptlib.Target("127.0.0.1", echo=True, tags=tags)
    cfg = t.write_config("t.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport],
                         server_listen=sport, target=tgt.addr)
    server = t.server(cfg)
    bridge = t.bridge("bridge", "127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport, "--record", rec)
    client = t.client(cfg)
    try:
        _, fwd, _ = send_batch(t, cport, tgt, 0x72650001, 1, "recorded session")
        if fwd == 0:
            raise mptlib.Failed("nothing went through the tunnel")
        t.stop(bridge)  # the capture is complete; the session goes on over the direct path
        recs = mptlib.read_records(rec)
        kinds = [mptlib.wire_type(d) for d in recs]
        print("capture: %d datagrams (%d handshakes, %d data)"
              % (len(recs), kinds.count(1), kinds.count(3)))
        if kinds.count(1) == 0 or kinds.count(3) < fwd:
            raise mptlib.Failed("the capture lacks the handshake or the data")

        # 1. At the server that saw the session.
        before = tgt.total
        ans = replay(recs, ("127.0.0.1", sport))
        time.sleep(0.3)
        t.check("deliveries from the replay at the running server", tgt.total - before, 0, "==")
        print("answers to the replay: %d (sizes %s)" % (len(ans), sorted(set(ans))))
        t.check("largest answer to the replay (bytes)", max(ans or [0]), 128, "<=")
        # The recorded session itself is still live (over its direct path) and undisturbed: a
        # new batch goes through both ways, so no replayed copy took over its return path.
        n2, _, back2 = send_batch(t, cport, tgt, 0x72650002, 2,
                                  "recorded session after the replays")
        t.check("recorded session: round-trip loss after the replays", 1 - back2 / max(n2, 1), 0.01)

        # 2. At a new server process.
        t.stop(client)
        t.stop(server)
        t.server(cfg, name="server2")
        before = tgt.total
        ans = replay(recs, ("127.0.0.1", sport))
        time.sleep(0.5)
        print("answers from the new server: %d (sizes %s)" % (len(ans), sorted(set(ans))))
        t.check("deliveries from the replay at a restarted server", tgt.total - before, 0, "==")
        t.check("largest answer from the new server (bytes)", max(ans or [0]), 128, "<=")
        t.check("duplicates delivered overall", tgt.duplicates(), 0, "==")
        t.check("foreign datagrams at the target", tgt.foreign, 0, "==")
    finally:
        tgt.close()


mptlib.run(body, budget=60)
