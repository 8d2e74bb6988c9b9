#!/usr/bin/env python3
"""Replayed handshakes at a restarted server. A relay records a client's handshakes (two sessions:
the client starts twice), the client stops, and the server is killed (SIGKILL) and started again,
so that it has no memory of what it answered. Each recorded handshake, more than 1 s old, is then
sent again three times from each of 10 addresses (127.0.2.1 to 127.0.2.10). Figures: the answers
to these replays (limit 0), and the sessions they opened at the server (limit 0): a captured
initiation never opens a session, even at a server that did not see it first."""
import os
import select
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mpt2  # noqa: E402
import mptlib  # noqa: E402
from taprelay import UP, TapRelay  # noqa: E402

SOURCES = 10
COPIES = 3


def body(t):
    secret_b64 = t.genkey()
    sp, rp, cp, ep = t.port(), t.port(), t.port(), t.port()
    t.echo("echo", "127.0.0.1:%d" % ep)
    relay = TapRelay(rp, ("127.0.0.1", sp))
    socks = []
    try:
        cfg = t.write_config("replayrs.ini", secret_b64, client_listen="127.0.0.1:%d" % cp,
                             bridges=["127.0.0.1:%d" % rp], server_listen="127.0.0.1:%d" % sp,
                             target="127.0.0.1:%d" % ep,
                             extra_client=["control = " + t.path("c.sock")],
                             extra_server=["control = " + t.path("s.sock")])
        srv = t.server(cfg)
        for i in range(2):
            c = t.client(cfg, name="client%d" % i)
            t.warm_up("127.0.0.1:%d" % cp)
            t.stop(c)
        relay.recording = False
        hs = [(tr, d) for tr, _, d in relay.recorded(UP)
              if mpt2.classify(d) in ((mpt2.V1, mpt2.HELLO), (mpt2.V2, mpt2.INIT))]
        if not hs:
            raise mptlib.Failed("no handshake recorded")
        print("captured %d handshake datagrams (protocol version %d)"
              % (len(hs), mpt2.classify(hs[0][1])[0]))
        t.stop(srv, signal.SIGKILL)
        t.server(cfg, name="server2")
        time.sleep(max(0.0, max(tr for tr, _ in hs) + 1.5 - time.monotonic()))
        for i in range(SOURCES):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.2.%d" % (i + 1), 0))
            socks.append(s)
        for _ in range(COPIES):
            for s in socks:
                for _, d in hs:
                    s.sendto(d, ("127.0.0.1", sp))
            time.sleep(0.05)
        answers = 0
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            r, _, _ = select.select(socks, [], [], max(0.0, end - time.monotonic()))
            for s in r:
                s.recvfrom(65535)
                answers += 1
        doc = lifelib.status(cfg, "server")
        t.check("answers to %d replays at the restarted server" % (COPIES * SOURCES * len(hs)),
                answers, 0, "==")
        t.check("sessions the replays opened", doc["sessions"]["used"], 0, "==")
    finally:
        for s in socks:
            s.close()
        relay.close()


mptlib.run(body, budget=40)
