#!/usr/bin/env python3
"""Key mode end to end: each client has its own X25519 key pair (mptunnel genkey | pubkey), the
server lists its clients in [peer NAME] sections.

 1. two peers (one with its own pre-shared key, one under [tunnel] secret's) connect through two
    lossy bridges each and get exactly their own echoes; status names each session's peer;
 2. a client whose key no [peer] lists, and one that names a wrong server key, get no answer at
    all (the server logs the first);
 3. a reload that drops a peer closes that peer's session; the other goes on.
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mptlib  # noqa: E402


def pubkey(priv):
    out = subprocess.run([mptlib.MPTUNNEL, "pubkey"], input=priv.encode(), stdout=subprocess.PIPE,
                         check=True, timeout=10)
    return out.stdout.decode().strip()


def body(t):
    spriv = t.genkey()
    spub = pubkey(spriv)
    names = ["laptop", "phone", "stranger", "confused"]
    priv = {n: t.genkey() for n in names}
    pub = {n: pubkey(priv[n]) for n in names}
    tunnel_psk, laptop_psk = t.genkey(), t.genkey()
    sport = t.port()
    tgt = mptlib.Target("127.0.0.1", echo=True)
    scfg = t.path("server.ini")

    def write_server(peers):
        lines = ["[tunnel]", "secret = " + tunnel_psk, "", "[server]", "listen = 127.0.0.1:%d" % sport,
                 "target = " + tgt.addr, "private_key = " + spriv,
                 "control = " + t.path("server.sock"), "flow_timeout = 30s"]
        for n in peers:
            lines += ["", "[peer %s]" % n, "public_key = " + pub[n]]
            if n == "laptop":
                lines.append("secret = " + laptop_psk)
        with open(scfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(scfg, 0o600)

    def write_client(n, server_pub, psk):
        cport = t.port()
        bports = [t.port(), t.port()]
        p = t.path(n + ".ini")
        lines = ["[tunnel]", "secret = " + psk, "", "[client]", "listen = 127.0.0.1:%d" % cport,
                 "private_key = " + priv[n], "server_public_key = " + server_pub,
                 "control = " + t.path(n + ".sock")]
        lines += ["bridge = 127.0.0.1:%d" % b for b in bports]
        with open(p, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(p, 0o600)
        for i, b in enumerate(bports):
            t.bridge("%s-bridge%d" % (n, i), "127.0.0.1:%d" % b, "127.0.0.1:%d" % sport,
                     "--loss", "5%")
        return p, cport

    groups = []
    try:
        write_server(["laptop", "phone"])
        server = t.server(scfg)
        clients = {}
        for i, (n, psk) in enumerate([("laptop", laptop_psk), ("phone", tunnel_psk)]):
            cfg, cport = write_client(n, spub, psk)
            clients[n] = (t.client(cfg, name=n), cfg, cport)

        # 1. Each peer its own echoes.
        apps = {}
        for i, n in enumerate(["laptop", "phone"]):
            apps[n] = lifelib.Apps(3, clients[n][2], 0x6b000000 + (i << 20))
            groups.append(apps[n])
        for n in apps:
            t0 = time.monotonic()
            while len({k[0] for k in apps[n].echoes}) < 3 and time.monotonic() - t0 < 10:
                apps[n].send(1)
                apps[n].poll(0.2)
            t.check("%s: applications answered within 10 s" % n,
                    len({k[0] for k in apps[n].echoes}), 3, "==")
        for n in apps:
            batch = apps[n].send(100)
            got = apps[n].wait_echoes(batch, 10)
            t.check("%s: echoed of %d (two paths at 5%% loss each way)" % (n, len(batch)),
                    got / len(batch), 0.97, ">=")
            t.check("%s: foreign echoes" % n, apps[n].foreign, 0, "==")
        doc = lifelib.status(scfg, "server")
        peers = sorted(s.get("peer") or "" for s in doc["sessions"]["list"])
        t.expect(peers == ["laptop", "phone"], "server sessions name their peers: %s" % peers)
        t.check("server: failed authentication so far", doc["rejected"]["auth_failed"], 0, "==")

        # 2. Strangers: a key no [peer] lists; a wrong server key.
        before = lifelib.status(scfg, "server")["counters"]["handshakes"]
        for n, server_pub in (("stranger", spub), ("confused", pub["phone"])):
            cfg, cport = write_client(n, server_pub, tunnel_psk)
            clients[n] = (t.client(cfg, name=n), cfg, cport)
            apps[n] = lifelib.Apps(1, cport, 0x6c000000 + len(groups))
            groups.append(apps[n])
        time.sleep(0.3)
        for n in ("stranger", "confused"):
            apps[n].send(20)
        time.sleep(2.0)
        for n in ("stranger", "confused"):
            apps[n].poll(0.1)
            t.check("%s: echoes" % n, len(apps[n].echoes) + apps[n].foreign, 0, "==")
            doc = lifelib.status(clients[n][1], "client")
            t.expect(doc["session"]["state"] != "established", "%s: no session (%s)"
                     % (n, doc["session"]["state"]))
        doc = lifelib.status(scfg, "server")
        t.check("server: sessions opened for strangers", doc["counters"]["handshakes"] - before,
                0, "==")
        t.expect(re.search(r"with a key no \[peer\] has", server.log()) is not None,
                 "server log names the unknown key")
        for n in ("stranger", "confused"):
            t.stop(clients[n][0])

        # 3. Reload without the phone: its session closes, the laptop's goes on.
        write_server(["laptop"])
        server.signal(signal.SIGHUP)
        t.wait_log(server, r"peers: 1 listed; 1 session of peers no longer listed closed",
                   timeout=5)
        batch = apps["laptop"].send(50)
        got = apps["laptop"].wait_echoes(batch, 10)
        t.check("laptop after the reload: echoed", got / len(batch), 0.97, ">=")
        batch = apps["phone"].send(20)
        time.sleep(2.0)
        t.check("phone after the reload: echoed", apps["phone"].echoed(batch), 0, "==")
        doc = lifelib.status(scfg, "server")
        t.expect([s.get("peer") for s in doc["sessions"]["list"]] == ["laptop"],
                 "only the laptop's session is left")
        t.check("datagrams delivered twice to the target", tgt.duplicates(), 0, "==")
    finally:
        for a in groups:
            a.close()
        tgt.close()


mptlib.run(body, budget=80)
