#!/usr/bin/env python3
"""A server without a default target: flows from the client's `listen' are refused (counted in
the status report, nothing sent anywhere), a forward to a target its `allow' rules cover works, and
a reload keeps it so."""
import json
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402


def status(t, cfg, role):
    out = subprocess.run([mptlib.MPTUNNEL, "status", "-c", cfg, "--" + role, "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return json.loads(out.stdout.decode()) if out.returncode == 0 else None


def body(t):
    secret = t.genkey()
    cport, sport, fport = t.port(), t.port(), t.port()
    target = mptlib.Target(tags={7})
    cfg = t.path("t.ini")
    with open(cfg, "w") as f:
        f.write("[tunnel]\nsecret = %s\n\n[client]\nlisten = 127.0.0.1:%d\nbridge = 127.0.0.1:%d\n"
                "control = %s\n\n[forward f]\nlisten = 127.0.0.1:%d\ntarget = 127.0.0.1:%d\n\n"
                "[server]\nlisten = 127.0.0.1:%d\nallow = 127.0.0.1:%d\ncontrol = %s\n"
                % (secret, cport, sport, t.path("c.sock"), fport, target.port, sport,
                   target.port, t.path("s.sock")))
    server = t.server(cfg)
    t.expect("target none" in t.wait_log(server, r"server listening"), "server without a target")
    t.client(cfg)
    plain = mptlib.Sender("127.0.0.1", cport, 50, tag=8, size=(12, 64))
    plain.start(20)
    fwd = mptlib.Sender("127.0.0.1", fport, 100, tag=7, size=(12, 200))
    fwd.start(200)
    fwd.wait_done(10)
    plain.wait_done(10)
    time.sleep(1.0)
    t.check("forward datagrams echoed", len(fwd.echoes), 190, ">=")
    t.check("echoes to the client's listen (no default target)", len(plain.echoes), 0, "==")
    t.check("datagrams at the target not of the forward", target.foreign, 0, "==")
    st = status(t, cfg, "server")
    if st is None:
        t.expect(False, "server status")
    else:
        t.check("refused not_allowed in the status", st["refused"]["not_allowed"], 1, ">=")
    server.signal(signal.SIGHUP)
    t.wait_log(server, r"server reloaded", timeout=5)
    fwd2 = mptlib.Sender("127.0.0.1", fport, 100, tag=7, size=(12, 200))
    fwd2.start(50)
    fwd2.wait_done(10)
    time.sleep(1.0)
    t.check("forward datagrams echoed after a reload", len(fwd2.echoes), 45, ">=")
    for x in (plain, fwd, fwd2, target):
        x.close()


mptlib.run(body, budget=60)
