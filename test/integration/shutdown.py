#!/usr/bin/env python3
"""Clean shutdown: with traffic flowing through a relay, SIGTERM to the server, then to the relay,
then to the client (by then retrying its handshake): each must exit with status 0 within 2 s.
The same for each of them while idle."""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

LIMIT = 2.0


def setup(t, label):
    secret = t.genkey()
    cport, sport, bport = t.port(), t.port(), t.port()
    tgt = mptlib.Target("127.0.0.1", echo=True)
    cfg = t.write_config(label + ".ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % bport], server_listen=sport, target=tgt.addr)
    server = t.server(cfg, name=label + "-server")
    # A delay keeps datagrams queued in the relay when it is told to stop.
    bridge = t.bridge(label + "-bridge", "127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport,
                      "--delay", "20")
    client = t.client(cfg, name=label + "-client")
    return tgt, cport, server, bridge, client


def term(t, pr, label):
    rc, secs = t.stop(pr, signal.SIGTERM, timeout=LIMIT + 3)
    t.check("%s: exit status after SIGTERM" % label, rc if rc is not None else -1, 0, "==")
    t.check("%s: time to exit (s)" % label, secs, LIMIT, fmt="%.3f")


def body(t):
    tgt, cport, server, bridge, client = setup(t, "busy")
    snd = mptlib.Sender("127.0.0.1", cport, 500, seed=4).start()
    try:
        end = time.monotonic() + 5
        while not snd.echoes:
            if time.monotonic() > end:
                raise mptlib.Failed("no traffic through the tunnel within 5 s")
            time.sleep(0.02)
        time.sleep(1.0)
        term(t, server, "server with traffic")
        time.sleep(0.3)
        term(t, bridge, "bridge with traffic")
        time.sleep(1.5)  # the client notices the silence and retries its handshake
        term(t, client, "client with traffic, retrying its handshake")
    finally:
        snd.close()
        tgt.close()

    tgt, cport, server, bridge, client = setup(t, "idle")
    try:
        time.sleep(0.5)
        for pr, name in ((client, "client"), (bridge, "bridge"), (server, "server")):
            term(t, pr, "%s idle" % name)
    finally:
        tgt.close()


mptlib.run(body, budget=60)
