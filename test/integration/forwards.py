#!/usr/bin/env python3
"""Three forwards through one tunnel, to three targets at once, over three paths that each lose
20% both ways: residual loss near p^3 = 0.008 per target and direction (limit 0.016 forward,
0.032 round trip), and each target sees only its own forward's datagrams, no duplicate. A fourth
forward names a target outside the server's `allow` rules: the server refuses it (counted and
logged) and that target receives nothing. The third forward names its target by host name
(`localhost'), resolved by the server at request time."""
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mptlib  # noqa: E402

COUNT = 3000
RATE = 500
FWD_LIMIT = 0.016
RT_LIMIT = 0.032


def body(t):
    secret = t.genkey()
    cport, sport = t.port(), t.port()
    bports = [t.port() for _ in range(3)]
    fports = [t.port() for _ in range(4)]
    tags = [0x1001, 0x1002, 0x1003]
    targets = [mptlib.Target(tags={tags[i]}) for i in range(3)]
    # `localhost' may resolve to ::1 as well: a twin on the same port there, the same tag.
    twin = None
    if mptlib.has_ipv6_loopback():
        try:
            twin = mptlib.Target(host="::1", port=targets[2].port, tags={tags[2]})
        except OSError:
            twin = None
    default = mptlib.Target(tags=set())  # the default target: no forward may reach it
    outside = mptlib.Target(echo=False, tags=set())
    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport,
        bridges=["127.0.0.1:%d" % p for p in bports], server_listen=sport, target=default.addr,
        extra_server=["allow = 127.0.0.1:%d" % targets[0].port,
                      "allow = 127.0.0.0/8:%d-%d" % (targets[1].port, targets[1].port),
                      "allow = 127.0.0.1:%d" % targets[2].port,
                      "allow = [::1]:%d" % targets[2].port])
    with open(cfg, "a") as f:
        for i in range(4):
            host = "localhost" if i == 2 else "127.0.0.1"
            port = outside.port if i == 3 else targets[i].port
            f.write("\n[forward f%d]\nlisten = 127.0.0.1:%d\ntarget = %s:%d\n"
                    % (i, fports[i], host, port))
    server = t.server(cfg)
    for i, p in enumerate(bports):
        t.bridge("bridge%d" % i, "127.0.0.1:%d" % p, "127.0.0.1:%d" % sport, "--loss", "0.2",
                 "--seed", str(301 + i))
    client = t.client(cfg)
    t.wait_log(client, r"forward f3:", timeout=5)
    t.wait_log(client, r"path \d+ up", count=3, timeout=10)
    # The figures are those of the steady state: the server answers on a path only once it has
    # validated its address (core/PROTOCOL.md §7), which at 20% loss each way can take several
    # of its challenges; wait for all three before measuring.
    end = time.monotonic() + 10
    while time.monotonic() < end:
        doc = lifelib.status(cfg, "server", must=False)
        paths = doc["sessions"]["list"][0]["paths"] if doc and doc["sessions"]["list"] else []
        if sum(1 for p in paths if p.get("validated")) >= 3:
            break
        time.sleep(0.1)
    print("server paths validated before the measurement: %d"
          % sum(1 for p in paths if p.get("validated")))

    senders = [mptlib.Sender("127.0.0.1", fports[i], RATE, tag=tags[i], seed=11 + i)
               for i in range(3)]
    for s in senders:
        s.start(COUNT)
    probe = mptlib.Sender("127.0.0.1", fports[3], 50, tag=0x1004, size=(12, 64))
    probe.start(100)
    for s in senders:
        s.wait_done(COUNT / RATE + 20)
    probe.wait_done(10)
    time.sleep(1.5)  # the last echoes
    for i, s in enumerate(senders):
        got = targets[i].unique(tags[i]) + (twin.unique(tags[i]) if twin and i == 2 else 0)
        echoed = s.echoed(range(s.nsent()))
        fwd = 1 - got / s.nsent()
        rt = 1 - echoed / s.nsent()
        print("forward f%d: sent %d, target got %d, echoes back %d" % (i, s.nsent(), got, echoed))
        t.check("f%d forward residual loss" % i, fwd, FWD_LIMIT)
        t.check("f%d round-trip residual loss" % i, rt, RT_LIMIT)
        t.check("f%d datagrams at its target from other forwards" % i,
                targets[i].foreign + (twin.foreign if twin and i == 2 else 0), 0, "==")
        t.check("f%d duplicates at its target" % i, targets[i].duplicates(), 0, "==")
        t.check("f%d echoes not its own" % i, s.foreign, 0, "==")
    t.check("datagrams at the default target", default.total, 0, "==")
    t.check("datagrams at the target outside allow", outside.total, 0, "==")
    t.check("echoes to the refused forward", len(probe.echoes), 0, "==")
    t.wait_log(server, r"refused: target 127\.0\.0\.1:%d not_allowed" % outside.port, timeout=5)
    t.wait_log(client, r"the server refused flow \d+ to 127\.0\.0\.1:%d: not_allowed"
               % outside.port, timeout=5)
    print("refusal logged by the server and the client: ok")
    for x in senders + [probe]:
        x.close()
    for x in targets + [default, outside] + ([twin] if twin else []):
        x.close()


mptlib.run(body, budget=120)
