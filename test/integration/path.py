#!/usr/bin/env python3
"""mptunnel path -c FILE disable|enable NAME on a running client with two paths and a flow: a
disabled path carries nothing either way (its relay sees no datagram, probes included) and shows
as disabled in status, while the flow goes on over the other path without loss; enabled, it
carries traffic again. NAME as [path NAME], as bridge HOST:PORT, and as a number; an unknown
NAME exits 2; a file whose numbering differs from the running client's is refused (exit 1)."""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402
from countrelay import CountRelay  # noqa: E402

RATE = 200


def run(*args):
    r = subprocess.run([mptlib.MPTUNNEL] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=15)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def states(cfg):
    rc, out, err = run("status", "-c", cfg, "--client", "--json")
    if rc != 0:
        raise mptlib.Failed("status: exit %d: %s" % (rc, err))
    return [p["state"] for p in json.loads(out)["paths"]]


def path_cmd(t, cfg, action, name, want):
    rc, out, err = run("path", "-c", cfg, action, name)
    t.check("`path %s %s': exit status" % (action, name), rc, 0, "==")
    t.expect(out.strip() == want, "`path %s %s' says %r (%r)" % (action, name, want, out.strip()))
    if err:
        print("stderr: " + err.strip())
    return time.monotonic()


def body(t):
    secret = t.genkey()
    cport, sport, aport, bport = t.port(), t.port(), t.port(), t.port()
    tgt = mptlib.Target("127.0.0.1", echo=True)
    cfg = t.write_config("tunnel.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % aport], server_listen="127.0.0.1:%d" % sport,
                         target=tgt.addr,
                         extra_client=["control = " + t.path("client.sock"), "",
                                       "[path lte]", "bridge = 127.0.0.1:%d" % bport])
    t.server(cfg)
    relay_a = CountRelay(aport, "127.0.0.1", sport)
    relay_b = CountRelay(bport, "127.0.0.1", sport)
    client = t.client(cfg)
    snd = mptlib.Sender("127.0.0.1", cport, RATE, seed=3).start()
    time.sleep(1.0)
    t.expect(states(cfg) == ["up", "up"], "both paths up (%s)" % states(cfg))

    t_dis = path_cmd(t, cfg, "disable", "lte", "path 2 (lte): disabled")
    t.expect(states(cfg) == ["up", "disabled"], "status: path 2 disabled (%s)" % states(cfg))
    time.sleep(1.5)
    t_en = time.monotonic()
    # The moment: what was in flight when the command came.
    t.check("relay of path 2: datagrams to the server while disabled",
            relay_b.count("to", t_dis + 0.1, t_en), 0, "==")
    t.check("relay of path 2: datagrams back to the client while disabled",
            relay_b.count("back", t_dis + 0.3, t_en), 0, "==")
    t.check("relay of path 1: datagrams to the server meanwhile",
            relay_a.count("to", t_dis + 0.1, t_en), RATE, ">=")
    t.expect(states(cfg) == ["up", "disabled"], "still disabled 1.5 s later (%s)" % states(cfg))
    path_cmd(t, cfg, "enable", "2", "path 2 (lte): enabled")
    time.sleep(1.0)
    t.expect(states(cfg) == ["up", "up"], "path 2 up again once enabled (%s)" % states(cfg))
    t.check("relay of path 2: datagrams to the server once enabled",
            relay_b.count("to", t_en), RATE // 2, ">=")
    t.check("relay of path 2: datagrams back once enabled", relay_b.count("back", t_en),
            RATE // 2, ">=")

    # By the bridge as written; the flow goes on over path 2.
    t_dis = path_cmd(t, cfg, "disable", "127.0.0.1:%d" % aport,
                     "path 1 (127.0.0.1:%d): disabled" % aport)
    time.sleep(1.0)
    t.check("relay of path 1: datagrams either way while disabled",
            relay_a.count("to", t_dis + 0.1) + relay_a.count("back", t_dis + 0.3), 0, "==")
    path_cmd(t, cfg, "enable", "127.0.0.1:%d" % aport, "path 1 (127.0.0.1:%d): enabled" % aport)

    rc, out, err = run("path", "-c", cfg, "disable", "nosuch")
    t.check("`path disable nosuch': exit status", rc, 2, "==")
    t.expect("no path `nosuch'" in err, "it says so: %s" % err.strip())
    rc, out, err = run("path", "-c", cfg, "disable", "3")
    t.check("`path disable 3' (two paths): exit status", rc, 2, "==")

    # A file edited since the client started numbers lte 1: the client refuses, nothing changes.
    edited = t.write_config("edited.ini", secret, client_listen="127.0.0.1:%d" % cport,
                            server_listen="127.0.0.1:%d" % sport, target=tgt.addr,
                            extra_client=["control = " + t.path("client.sock"), "",
                                          "[path lte]", "bridge = 127.0.0.1:%d" % bport])
    rc, out, err = run("path", "-c", edited, "disable", "lte")
    t.check("`path disable lte' against an older running file: exit status", rc, 1, "==")
    t.expect("did not disable path 1 (lte)" in err, "it says so: %s" % err.strip())
    t.expect(states(cfg) == ["up", "up"], "no path disabled (%s)" % states(cfg))

    time.sleep(0.5)
    seqs = snd.sent_between(0, time.monotonic() - 0.3)
    lost = len(seqs) - snd.echoed(seqs)
    print("datagrams sent %d, echoed %d" % (len(seqs), len(seqs) - lost))
    t.check("datagrams lost while paths were disabled and enabled", lost, 2)
    t.check("duplicates delivered", tgt.duplicates() + snd.duplicates(), 0, "==")
    t.expect(client.alive(), "client alive")
    snd.close()
    relay_a.close()
    relay_b.close()
    tgt.close()


mptlib.run(body, 60)
