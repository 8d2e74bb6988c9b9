#!/usr/bin/env python3
"""The whole life of every table, on real processes with short timeouts: flow_timeout = 1s on
both sides, session_timeout = 2s, bridges with --idle-timeout 1. Two paths, each a bridge.

 1. held datagrams: the client holds what applications send before its first session; the server
    is stopped (SIGSTOP) while the client starts. Datagrams held longer than 2 s are dropped when
    the session comes, fresher ones are delivered, each once;
 2. flows: 20 applications open flows on both sides; idle, both flow tables empty within the
    timeout and a margin (and not before it); the same applications are answered again;
 3. sessions and bridge peers: the client is stopped (SIGSTOP): the server forgets its session,
    the bridges forget their peers; resumed, the client makes a new session through new peers
    and its applications are answered again;
 4. half-open handshakes: a replay of the first session's INIT gets no answer and opens nothing;
    the INITs of a second client whose path leads nowhere (recorded on the way), each sent once
    from a socket of the test's own, open sessions that never confirm; each expires at the session
    timeout (the slot reused), the genuine one stays.
Every process must stay alive throughout (the server once freed itself when an idle flow's
socket closed), nothing may arrive twice, and traffic must flow after every expiry."""
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mptlib  # noqa: E402

FLOW_TIMEOUT = 1.0
SESSION_TIMEOUT = 2.0
BRIDGE_IDLE = 1.0
HELD_US = 2.0  # core/client.h MPT_CLIENT_HELD_US
SLACK = 3.0  # the server timer's 1 s period, status latency on a loaded machine, sanitizers
NAPPS = 20
INIT = mptlib.INIT


def body(t):
    secret = t.genkey()
    cport, sport = t.port(), t.port()
    bports = [t.port() for _ in range(2)]
    rec = t.path("capture.bin")
    tgt = mptlib.Target("127.0.0.1", echo=True)
    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport,
        bridges=["127.0.0.1:%d" % p for p in bports], server_listen="127.0.0.1:%d" % sport,
        target=tgt.addr,
        extra_client=["flow_timeout = 1s", "control = " + t.path("client.sock")],
        extra_server=["flow_timeout = 1s", "session_timeout = 2s", "max_sessions = 4",
                      "control = " + t.path("server.sock")])
    procs = []
    apps = held1 = held2 = None

    def alive(when):
        dead = [p.name for p in procs if not p.alive()]
        t.expect(not dead, "every process alive %s%s" % (when, " (dead: %s)" % dead
                                                          if dead else ""))
        if dead:
            raise mptlib.Failed("%s died %s" % (", ".join(dead), when))

    try:
        server = t.server(cfg)
        server.signal(signal.SIGSTOP)
        bridges = [t.bridge("bridge0", "127.0.0.1:%d" % bports[0], "127.0.0.1:%d" % sport,
                            "--idle-timeout", "%g" % BRIDGE_IDLE, "--record", rec, "-v"),
                   t.bridge("bridge1", "127.0.0.1:%d" % bports[1], "127.0.0.1:%d" % sport,
                            "--idle-timeout", "%g" % BRIDGE_IDLE, "-v")]
        client = t.client(cfg)
        procs = [server, client] + bridges

        # 1. Held datagrams.
        held1 = lifelib.Apps(1, cport, 0x68000000)
        held2 = lifelib.Apps(1, cport, 0x68100000)
        stale = held1.send(5)
        time.sleep(HELD_US + 0.5)
        fresh = held2.send(5)
        server.signal(signal.SIGCONT)
        n = held2.wait_echoes(fresh, 10)
        held1.poll(0.5)
        t.check("held datagrams sent 0.0 s before the session: echoed", n, len(fresh), "==")
        t.check("held datagrams sent %.1f s before the session (limit of holding %.1f s): "
                "delivered" % (HELD_US + 0.5, HELD_US),
                sum(1 for k in stale if tgt.has(*k)), 0, "==")
        doc = lifelib.status(cfg, "client")
        t.check("client: datagrams dropped for want of a session", doc["rejected"]["no_session"],
                len(stale), ">=")
        # The held slots are free again: the stale application is answered now.
        again = held1.send(3)
        t.check("the stale application afterwards: echoed", held1.wait_echoes(again, 5),
                len(again), "==")
        alive("after the first session")

        # 2. Flows.
        apps = lifelib.Apps(NAPPS, cport, 0x66000000)
        sent = time.monotonic()  # no flow can expire before sent + FLOW_TIMEOUT
        batch = apps.send(3)
        t.check("flows opened: echoed", apps.wait_echoes(batch, 10), len(batch), "==")
        last = time.monotonic()
        time.sleep(max(0, sent + FLOW_TIMEOUT / 2 - time.monotonic()))
        cf, sf = lifelib.used(cfg, "client", "flows"), lifelib.used(cfg, "server", "flows")
        # The status calls are slow on a loaded machine: what they say is checked only if they
        # answered before any flow could expire (0.1 s for the processes' cached loop time).
        if time.monotonic() < sent + FLOW_TIMEOUT - 0.1:
            t.check("client flows in use before their timeout", cf, NAPPS, ">=")
            t.check("server flows in use before their timeout", sf, NAPPS, ">=")
        else:
            print("flows in use before their timeout: not checked (status answered too late)")
        v, _ = lifelib.wait_until(lambda: lifelib.used(cfg, "client", "flows") == 0 and
                                  lifelib.used(cfg, "server", "flows") == 0,
                                  FLOW_TIMEOUT + SLACK + 2)
        t.check("both flow tables empty after the last datagram (s; timeout %.0f s)"
                % FLOW_TIMEOUT, time.monotonic() - last if v else float("inf"),
                FLOW_TIMEOUT + SLACK, fmt="%.2f")
        alive("after the flows expired")
        time.sleep(0.5)
        alive("0.5 s later")
        sent = time.monotonic()
        batch = apps.send(3)
        t.check("the same applications after their flows expired: echoed",
                apps.wait_echoes(batch, 10), len(batch), "==")
        sf = lifelib.used(cfg, "server", "flows")
        if time.monotonic() < sent + FLOW_TIMEOUT - 0.1:
            t.check("server flows in use again", sf, NAPPS, ">=")

        # 3. Sessions and bridge peers: the client falls silent.
        before = [len(re.findall(r"idle, forgotten", b.log())) for b in bridges]
        handshakes = lifelib.status(cfg, "server")["counters"]["handshakes"]
        client.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        v, secs = lifelib.wait_until(lambda: lifelib.used(cfg, "server", "sessions") == 0,
                                     SESSION_TIMEOUT + SLACK + 2)
        t.check("server: time to forget the silent client's session (s; timeout %.0f s)"
                % SESSION_TIMEOUT, secs if v else float("inf"), SESSION_TIMEOUT + SLACK,
                fmt="%.2f")
        t.check("server flows in use with no session", lifelib.used(cfg, "server", "flows"),
                0, "==")
        for b, n0 in zip(bridges, before):
            t.wait_log(b, r"idle, forgotten", count=n0 + 1, timeout=BRIDGE_IDLE + SLACK + 2)
            print("%s: the silent client's peer forgotten" % b.name)
        alive("while the client is silent")
        print("client stopped for %.1f s" % (time.monotonic() - stopped))
        client.signal(signal.SIGCONT)
        resumed = time.monotonic()
        # Until its new session is up the client's datagrams go under the old one and are lost:
        # send one a tenth of a second until one is answered.
        first = None
        while first is None and time.monotonic() - resumed < 10:
            k = apps.send(1, which=[0])
            apps.poll(0.1)
            if apps.echoed(k):
                first = time.monotonic() - resumed
        t.check("client resumed: time to its first echo (s)", first if first else float("inf"),
                3.0, fmt="%.2f")
        batch = apps.send(3)
        t.check("every application after the new session: echoed",
                apps.wait_echoes(batch, 10), len(batch), "==")
        doc = lifelib.status(cfg, "server")
        t.check("server: sessions made (one new)", doc["counters"]["handshakes"],
                handshakes + 1, ">=")
        t.check("server sessions in use", doc["sessions"]["used"], 1, "==")
        for b in bridges:
            t.check("%s: peers made (one new after the silence)" % b.name,
                    len(re.findall(r"new peer", b.log())), 2, ">=")
        alive("after the new session")

        # 4. Half-open handshakes. The first session's INIT, replayed: nothing.
        recs = mptlib.read_records(rec)
        inits = [d for d in recs if mptlib.wire_type(d) == INIT]
        if not inits:
            raise mptlib.Failed("no INIT in the capture")
        ans = lifelib.replay_one(inits[0], ("127.0.0.1", sport))
        t.check("answers to the first session's INIT, replayed", len(ans), 0, "==")
        t.check("server sessions in use after the replay", lifelib.used(cfg, "server", "sessions"),
                1, "==")
        # INITs that never reached the server: a second client whose one path ends at a
        # recording bridge with nothing behind it.
        rec2, dead_port, b2port = t.path("capture2.bin"), t.port(), t.port()
        cfg2 = t.write_config(
            "t2.ini", secret, client_listen="127.0.0.1:%d" % t.port(),
            bridges=["127.0.0.1:%d" % b2port], server_listen="127.0.0.1:%d" % sport,
            target=tgt.addr, extra_client=["control = " + t.path("client2.sock")])
        hole = t.bridge("hole", "127.0.0.1:%d" % b2port, "127.0.0.1:%d" % dead_port,
                        "--record", rec2)
        client2 = t.client(cfg2, name="client2")
        time.sleep(2.5)
        t.stop(client2)
        t.stop(hole)
        fresh_inits = {}
        for d in mptlib.read_records(rec2):
            if mptlib.wire_type(d) == INIT:
                fresh_inits.setdefault(d[4:12], d)
        fresh_inits = list(fresh_inits.values())
        t.check("INITs of the second client recorded (distinct sessions)", len(fresh_inits), 2,
                ">=")
        for round_ in (1, 2):
            opened = time.monotonic()
            init = fresh_inits[round_ - 1]
            ans = lifelib.replay_one(init, ("127.0.0.1", sport))
            t.check("half-open %d: answers to an INIT the server never saw" % round_, len(ans), 1,
                    "==")
            t.check("half-open %d: largest answer (bytes; request %d)" % (round_, len(init)),
                    max(ans or [0]), len(init), "<=")
            doc = lifelib.status(cfg, "server")
            if time.monotonic() < opened + SESSION_TIMEOUT - 0.1:  # else it may be gone already
                t.check("half-open %d: sessions in use" % round_, doc["sessions"]["used"], 2,
                        "==")
                t.check("half-open %d: unconfirmed sessions" % round_,
                        sum(1 for s in doc["sessions"]["list"] if not s["confirmed"]), 1, "==")
            v, secs = lifelib.wait_until(lambda: lifelib.used(cfg, "server", "sessions") == 1,
                                         SESSION_TIMEOUT + SLACK + 2)
            t.check("half-open %d: time to expire (s; timeout %.0f s)" % (round_, SESSION_TIMEOUT),
                    time.monotonic() - opened if v else float("inf"), SESSION_TIMEOUT + SLACK,
                    fmt="%.2f")
            doc = lifelib.status(cfg, "server")
            t.check("half-open %d: the genuine session kept" % round_,
                    sum(1 for s in doc["sessions"]["list"] if s["confirmed"]), 1, "==")
            batch = apps.send(2)
            t.check("half-open %d: every application afterwards: echoed" % round_,
                    apps.wait_echoes(batch, 10), len(batch), "==")
            alive("after half-open %d" % round_)

        t.check("datagrams delivered twice to the target", tgt.duplicates(), 0, "==")
        t.check("echoes delivered twice to an application",
                apps.duplicates() + held1.duplicates() + held2.duplicates(), 0, "==")
        t.check("foreign datagrams at the target or applications",
                tgt.foreign + apps.foreign + held1.foreign + held2.foreign, 0, "==")
        for b in bridges:
            rc, _ = t.stop(b, timeout=5)
            m = re.search(r"peers: (\d+) created, (\d+) forgotten idle", b.log())
            t.expect(rc == 0 and m is not None, "%s stopped cleanly with its summary" % b.name)
            if m:
                print("%s: %s peers created, %s forgotten idle" % (b.name, m.group(1),
                                                                   m.group(2)))
                t.check("%s: peers forgotten idle" % b.name, int(m.group(2)), 1, ">=")
    finally:
        for a in (apps, held1, held2):
            if a:
                a.close()
        tgt.close()


mptlib.run(body, budget=150)
