#!/usr/bin/env python3
"""A full session table gives way to a new client, and never to a replayed handshake:
max_sessions = 1, flows and sessions kept long (30 s), so that an evicted session still has
flows whose sockets must be closed.

 1. client 1 runs five flows, then stops; client 2 starts at once: its INITs are refused until
    client 1's session has been silent 3 s, then that session (with its five flows) gives way;
 2. client 2 runs five flows, then falls silent (SIGSTOP) for more than 3 s; client 1's INIT,
    captured by a bridge --record, is replayed from a socket of the test's own: no answer, and
    client 2's session and flows stay;
 3. client 3 starts: client 2's silent session, flows and all, gives way to it. The server must
    survive this (it once freed itself within 0.5 s of an eviction with flows);
 4. client 3 stops, client 2 resumes: once client 3's session has been silent 3 s, client 2's new
    INIT takes its place and its applications are answered again.
Nothing may arrive twice; the replay itself delivers nothing."""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mptlib  # noqa: E402

NAPPS = 5
SESSION_DEAD = 3.0  # core/server.c SESSION_DEAD_US: a session this silent may give way
SLACK = 3.0
INIT = mptlib.INIT


def body(t):
    secret = t.genkey()
    cport, sport, bport = t.port(), t.port(), t.port()
    rec = t.path("capture.bin")
    tgt = mptlib.Target("127.0.0.1", echo=True)
    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport,
        bridges=["127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport],
        server_listen="127.0.0.1:%d" % sport, target=tgt.addr,
        extra_client=["flow_timeout = 30s", "control = " + t.path("client.sock")],
        extra_server=["max_sessions = 1", "flow_timeout = 30s", "session_timeout = 30s",
                      "control = " + t.path("server.sock")])
    cport3 = t.port()
    cfg3 = t.write_config(
        "t3.ini", secret, client_listen="127.0.0.1:%d" % cport3,
        bridges=["127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport],
        server_listen="127.0.0.1:%d" % sport, target=tgt.addr,
        extra_client=["flow_timeout = 30s", "control = " + t.path("client3.sock")],
        extra_server=["max_sessions = 1"])
    groups = []

    def round_trip(label, base, port=None):
        apps = lifelib.Apps(NAPPS, port or cport, base)
        groups.append(apps)
        t0 = time.monotonic()
        first = None
        while first is None and time.monotonic() - t0 < 10 + SESSION_DEAD:
            k = apps.send(1, which=[0])
            apps.poll(0.1)
            if apps.echoed(k):
                first = time.monotonic() - t0
        batch = apps.send(3)
        n = apps.wait_echoes(batch, 10)
        t.check("%s: echoed" % label, n, len(batch), "==")
        return apps, first

    try:
        server = t.server(cfg)
        bridge = t.bridge("bridge", "127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport,
                          "--record", rec)
        client = t.client(cfg)
        round_trip("client 1, five flows", 0x65000000)
        doc = lifelib.status(cfg, "server")
        t.check("server flows of client 1's session", doc["flows"]["used"], NAPPS, ">=")

        # 1. A new client while the table is full.
        t.stop(client)
        client = t.client(cfg, name="client2")
        _, first = round_trip("client 2, five flows", 0x65100000)
        t.check("client 2: time to its first echo, client 1's session giving way (s)",
                first if first else float("inf"), SESSION_DEAD + SLACK, fmt="%.2f")
        t.expect(server.alive(), "server alive after client 1's session gave way")
        doc = lifelib.status(cfg, "server")
        t.check("sessions in use", doc["sessions"]["used"], 1, "==")
        t.check("flows of the one session (client 1's are closed)",
                doc["sessions"]["list"][0]["flows"], NAPPS, "==")
        t.check("server flows in use", doc["flows"]["used"], NAPPS, "==")

        # 2. Client 2 silent; client 1's INIT replayed.
        inits = [d for d in mptlib.read_records(rec) if mptlib.wire_type(d) == INIT]
        if not inits:
            raise mptlib.Failed("no INIT in the capture")
        client.signal(signal.SIGSTOP)
        time.sleep(SESSION_DEAD + 0.5)
        before = tgt.total
        ans = lifelib.replay_one(inits[0], ("127.0.0.1", sport))
        t.check("answers to the replayed INIT", len(ans), 0, "==")
        time.sleep(0.5)
        doc = lifelib.status(cfg, "server")
        t.check("sessions in use: client 2's", doc["sessions"]["used"], 1, "==")
        t.check("server flows in use: client 2's", doc["flows"]["used"], NAPPS, "==")
        t.check("deliveries caused by the replay", tgt.total - before, 0, "==")

        # 3. Client 3 takes the silent session's place.
        client3 = t.client(cfg3, name="client3")
        _, first = round_trip("client 3, five flows", 0x65300000, cport3)
        t.check("client 3: time to its first echo (s)", first if first else float("inf"),
                3.0, fmt="%.2f")
        time.sleep(1.0)
        t.expect(server.alive(), "server alive 1 s after client 3 evicted a session with flows")
        if not server.alive():
            raise mptlib.Failed("the server died")
        doc = lifelib.status(cfg, "server")
        t.check("sessions in use: client 3's", doc["sessions"]["used"], 1, "==")
        t.check("server flows in use: client 3's", doc["flows"]["used"], NAPPS, "==")

        # 4. Client 3 goes, client 2 resumes.
        t.stop(client3)
        client.signal(signal.SIGCONT)
        _, first = round_trip("client 2 resumed", 0x65200000)
        t.check("client 2 resumed: time to its first echo (s)", first if first else float("inf"),
                SESSION_DEAD + SLACK, fmt="%.2f")
        doc = lifelib.status(cfg, "server")
        t.check("confirmed sessions", sum(1 for s in doc["sessions"]["list"] if s["confirmed"]),
                1, "==")
        t.expect(server.alive() and client.alive() and bridge.alive(), "every process alive")
        t.check("datagrams delivered twice to the target", tgt.duplicates(), 0, "==")
        t.check("echoes delivered twice to an application",
                sum(a.duplicates() for a in groups), 0, "==")
        t.check("foreign datagrams at the target or applications",
                tgt.foreign + sum(a.foreign for a in groups), 0, "==")
    finally:
        for a in groups:
            a.close()
        tgt.close()


mptlib.run(body, budget=90)
