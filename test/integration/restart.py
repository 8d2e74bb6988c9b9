#!/usr/bin/env python3
"""Healing after kill -9: traffic at 200 datagrams/s through two paths; the server is killed with
SIGKILL and started again about 1 s later, then the same for the client. From each restart, the
first datagram must reach the target within 2 s (and its echo the application), and the traffic
must keep flowing afterwards (at least 99% of what is sent is delivered both ways)."""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

RATE = 200
DOWN = 1.0
HEAL_LIMIT = 2.0
FLOW_MIN = 0.99


def flowing(t, snd, tgt, t0, t1, label):
    """Checks that what was sent in [t0, t1) reached the target and came back."""
    seqs = snd.sent_between(t0, t1)
    fwd = sum(1 for s in seqs if tgt.has(snd.tag, s)) / max(len(seqs), 1)
    back = snd.echoed(seqs) / max(len(seqs), 1)
    t.check("%s: delivered afterwards (%d sent)" % (label, len(seqs)), fwd, FLOW_MIN, ">=")
    t.check("%s: echoed back afterwards" % label, back, FLOW_MIN, ">=")


def kill_and_restart(t, snd, tgt, which, start_fn, proc):
    label = "%s restart" % which
    t.ensure_time(HEAL_LIMIT + DOWN + 8, label)
    proc.signal(signal.SIGKILL)
    proc.p.wait(5)
    killed = time.monotonic()
    time.sleep(DOWN)
    restarted = time.monotonic()
    newproc = start_fn()
    # Wait for the first datagram after the restart, for at most twice the limit.
    end = restarted + 2 * HEAL_LIMIT + 1
    while time.monotonic() < end and (tgt.first_after(restarted, snd.tag) is None or
                                      snd.first_echo_after(restarted) is None):
        time.sleep(0.02)
    first = tgt.first_after(restarted, snd.tag)
    echo = snd.first_echo_after(restarted)
    inf = float("inf")
    heal = first - restarted if first else inf
    heal_echo = echo - restarted if echo else inf
    print("%s: killed, down %.2f s, restarted" % (which, restarted - killed))
    t.check("%s: time from restart to first datagram delivered (s)" % label, heal, HEAL_LIMIT,
            fmt="%.3f")
    t.check("%s: time from restart to first echo back (s)" % label, heal_echo, HEAL_LIMIT,
            fmt="%.3f")
    if first:
        settle = max(first, echo or first) + 0.2
        t0 = time.monotonic()
        time.sleep(max(0, settle + 2.0 - t0) + 0.5)
        flowing(t, snd, tgt, settle, settle + 2.0, label)
    return newproc


def body(t):
    secret = t.genkey()
    cport, sport = t.port(), t.port()
    bports = [t.port() for _ in range(2)]
    tgt = mptlib.Target("127.0.0.1", echo=True)
    cfg = t.write_config("t.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % p for p in bports], server_listen=sport,
                         target=tgt.addr)
    server = t.server(cfg)
    for i, p in enumerate(bports):
        t.bridge("bridge%d" % i, "127.0.0.1:%d" % p, "127.0.0.1:%d" % sport)
    client = t.client(cfg)
    snd = mptlib.Sender("127.0.0.1", cport, RATE, size=(12, 1200), seed=5).start()
    try:
        end = time.monotonic() + 5
        while tgt.unique(snd.tag) == 0 or not snd.echoes:
            if time.monotonic() > end:
                raise mptlib.Failed("no traffic through the tunnel within 5 s")
            time.sleep(0.02)
        t0 = time.monotonic()
        time.sleep(2.5)
        flowing(t, snd, tgt, t0, t0 + 2.0, "before any restart")

        kill_and_restart(t, snd, tgt, "server", lambda: t.server(cfg, name="server2"), server)
        kill_and_restart(t, snd, tgt, "client", lambda: t.client(cfg, name="client2"), client)
        t.check("duplicates delivered", tgt.duplicates() + snd.duplicates(), 0, "==")
        t.check("foreign datagrams at target or application", tgt.foreign + snd.foreign, 0, "==")
    finally:
        snd.close()
        tgt.close()


mptlib.run(body, budget=60)
