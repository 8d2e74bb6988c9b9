#!/usr/bin/env python3
"""SIGHUP reloads a running client's file: with a flow running, the path's bridge address is
changed in the file and the client told; traffic moves to the new relay at once (the old one sees
nothing after the moment), no datagram is lost beyond that moment, the session and the process
are the same, the control socket is still there. Then a bad file: the reload is refused with
file:line in the log, and the old configuration runs on. The server survives SIGHUP too. Paths
are added and removed. Last, a new secret in a secret_file, reloaded by both ends: a new session
under it, and the flow goes on."""
import json
import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402
from countrelay import CountRelay  # noqa: E402

RATE = 200  # datagrams per second
LOST_MAX = 10  # lost around the reload: 50 ms of traffic


def status(t, ctl):
    """The client's status document, read from its control socket (the file may be bad)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(ctl)
        s.sendall(b"json\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return json.loads(data)


def config(t, secret, cport, sport, bport, tgt, paths=None):
    """The file with [path NAME] sections: {"wan": bport} unless `paths` says otherwise."""
    ctl = t.path("client.sock")
    lines = ["control = " + ctl]
    for name, port in (paths or [("wan", bport)]):
        lines += ["", "[path %s]" % name, "bridge = 127.0.0.1:%d" % port]
    return t.write_config("tunnel.ini", secret, client_listen="127.0.0.1:%d" % cport,
                          server_listen="127.0.0.1:%d" % sport, target=tgt.addr,
                          extra_client=lines), ctl


def reload(t, client, secret, cport, sport, tgt, paths):
    config(t, secret, cport, sport, None, tgt, paths)
    return reload_signal(t, client)


def reload_signal(t, client):
    n = len(client.log())
    client.signal(signal.SIGHUP)
    end = time.monotonic() + 3
    while "client reloaded" not in client.log()[n:]:
        if time.monotonic() > end:
            raise mptlib.Failed("client: no reload within 3 s: %s" % client.log()[n:])
        time.sleep(0.02)
    return time.monotonic()


def body(t):
    secret = t.genkey()
    cport, sport, aport, bport = t.port(), t.port(), t.port(), t.port()
    tgt = mptlib.Target("127.0.0.1", echo=True)
    cfg, ctl = config(t, secret, cport, sport, aport, tgt)
    server = t.server(cfg)
    relay_a = CountRelay(aport, "127.0.0.1", sport)
    relay_b = CountRelay(bport, "127.0.0.1", sport)
    client = t.client(cfg)
    snd = mptlib.Sender("127.0.0.1", cport, RATE, seed=7).start()
    if snd.first_echo_after(0) is None:
        time.sleep(1.0)
    t.expect(snd.first_echo_after(0) is not None, "traffic through the tunnel")
    time.sleep(0.5)
    doc = status(t, ctl)
    sid, established = doc["session"]["id"], doc["session"]["established"]
    t_start = time.monotonic()
    config(t, secret, cport, sport, bport, tgt)
    t_hup = time.monotonic()
    client.signal(signal.SIGHUP)
    t.wait_log(client, r"client reloaded", timeout=3)
    time.sleep(1.5)
    t_check = time.monotonic()
    t.expect(client.alive(), "client alive after SIGHUP")
    t.expect(os.path.exists(ctl), "control socket still there after SIGHUP")
    doc = status(t, ctl)
    t.expect(doc["session"]["id"] == sid, "same session after the reload (%s, was %s)"
             % (doc["session"]["id"], sid))
    t.check("sessions established after the reload", doc["session"]["established"], established,
            "==")
    t.expect(doc["paths"][0]["remote"] == "127.0.0.1:%d" % bport,
             "path 1 now sends to the new relay (%s)" % doc["paths"][0]["remote"])
    t.check("old relay: datagrams towards the server 0.3 s after the reload",
            relay_a.count("to", t_hup + 0.3), 0, "==")
    t.check("new relay: datagrams towards the server after the reload",
            relay_b.count("to", t_hup), RATE, ">=")
    t.check("new relay: datagrams back to the client after the reload",
            relay_b.count("back", t_hup), RATE, ">=")
    seqs = snd.sent_between(t_start, t_check - 0.3)
    lost = len(seqs) - snd.echoed(seqs)
    print("datagrams sent before %.1f s after the reload: %d, echoed %d"
          % (t_check - 0.3 - t_hup, len(seqs), len(seqs) - lost))
    t.check("datagrams lost around the reload", lost, LOST_MAX)
    t.check("duplicates delivered", tgt.duplicates() + snd.duplicates(), 0, "==")

    # A bad file: refused, logged with file:line, the running configuration kept.
    with open(cfg, "a") as f:
        f.write("colour = blue\n")
    n = len(open(cfg).read().splitlines())
    t_bad = time.monotonic()
    client.signal(signal.SIGHUP)
    t.wait_log(client, r"reload: .*tunnel\.ini:%d: colour: unknown key in \[server\]; "
               r"the running configuration stays" % n, timeout=3)
    time.sleep(1.0)
    t.expect(client.alive(), "client alive after a bad reload")
    t.expect(os.path.exists(ctl), "control socket still there after a bad reload")
    doc = status(t, ctl)
    t.expect(doc["session"]["id"] == sid, "same session after a bad reload")
    t.expect(doc["paths"][0]["remote"] == "127.0.0.1:%d" % bport, "path 1 unchanged")
    seqs = snd.sent_between(t_bad, time.monotonic() - 0.3)
    t.check("datagrams lost after a bad reload", len(seqs) - snd.echoed(seqs), 2)

    server.signal(signal.SIGHUP)
    t.wait_log(server, r"reload: .*colour: unknown key in \[server\]; the running configuration "
               r"stays", timeout=3)
    config(t, secret, cport, sport, bport, tgt)
    server.signal(signal.SIGHUP)
    t.wait_log(server, r"server reloaded", timeout=3)
    time.sleep(0.5)
    t.expect(server.alive(), "server alive after SIGHUP")
    # Paths added and removed: path lte (relay A) joins, then wan (relay B) leaves.
    t_add = reload(t, client, secret, cport, sport, tgt, [("wan", bport), ("lte", aport)])
    time.sleep(1.0)
    doc = status(t, ctl)
    t.check("paths after adding one", len(doc["paths"]), 2, "==")
    t.expect(doc["paths"][1]["name"] == "lte" and doc["paths"][1]["state"] == "up",
             "path 2 (lte) up after it was added (%s)" % doc["paths"][1]["state"])
    t.check("relay A: datagrams towards the server once path lte is added",
            relay_a.count("to", t_add), RATE // 2, ">=")
    t_rm = reload(t, client, secret, cport, sport, tgt, [("lte", aport)])
    time.sleep(1.0)
    doc = status(t, ctl)
    t.check("paths after removing one", len(doc["paths"]), 1, "==")
    t.expect(doc["paths"][0]["name"] == "lte", "path 1 is lte after wan was removed")
    t.check("relay B: datagrams towards the server 0.3 s after path wan was removed",
            relay_b.count("to", t_rm + 0.3), 0, "==")
    t.expect(doc["session"]["id"] == sid, "same session after paths came and went")
    seqs = snd.sent_between(t_start, time.monotonic() - 0.3)
    t.check("datagrams lost in all", len(seqs) - snd.echoed(seqs), LOST_MAX + 2)

    # A new secret, in a secret_file both ends read: the server first, then the client, which
    # opens a new session under it; its flow goes on.
    secret2 = t.genkey()
    with open(t.path("secret.key"), "w") as f:
        f.write(secret2 + "\n")
    os.chmod(t.path("secret.key"), 0o600)
    cfg, _ = config(t, secret, cport, sport, None, tgt, [("lte", aport)])
    text = open(cfg).read().replace("secret = " + secret, "secret_file = secret.key")
    with open(cfg, "w") as f:
        f.write(text)
    n = len(server.log())
    server.signal(signal.SIGHUP)
    t.wait_log(server, r"new secret", timeout=3)
    t_key = reload_signal(t, client)
    t.wait_log(client, r"new secret: opening a new session", timeout=3)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        doc = status(t, ctl)
        if doc["session"]["id"] != sid and doc["session"]["state"] == "established":
            break
        time.sleep(0.1)
    t.expect(doc["session"]["id"] != sid, "a new session under the new secret (%s, was %s)"
             % (doc["session"]["id"], sid))
    t.check("sessions established after the new secret", doc["session"]["established"],
            established + 1, "==")
    time.sleep(1.0)
    seqs = snd.sent_between(t_key + 0.5, time.monotonic() - 0.3)
    t.check("datagrams lost from 0.5 s after the new secret", len(seqs) - snd.echoed(seqs), 2)
    t.expect(server.log()[n:].count("failed authentication") == 0,
             "the server saw no datagram fail authentication")
    snd.close()
    relay_a.close()
    relay_b.close()
    tgt.close()


mptlib.run(body, 60)
