#!/usr/bin/env python3
"""Key mode, what each peer may reach: [peer NAME] `allow' and `target'.

The server's [server] has a default target S and allows Y; peer `laptop' has its own target A and
allows L; peer `phone' its own target B and allows X; peer `tablet' has neither and so gets
[server]'s. Every client has forwards to L, X and Y besides its default flow.

 1. each peer's default flow reaches its own default target only (A, B, S);
 2. each forward its peer's rules cover is echoed; every other one is refused and never
    contacted: the listener there counts 0 datagrams of that client, though another peer's reach
    it; refusals are counted by reason in the server's status (in all, and per peer) and in each
    client's;
 3. after a reload that gives the laptop X too (by a host name new to the file, which the reload
    resolves), a new flow of its forward to X is echoed, and the phone's flows there go on;
 4. a reload naming a host that does not resolve fails, and the rules stay as they were.
"""
import os
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mptlib  # noqa: E402

PEERS = ["laptop", "phone", "tablet"]
TAG = {"laptop": 0x100, "phone": 0x200, "tablet": 0x300}  # + 0 default, 1 L, 2 X, 3 Y
FWD = ["l", "x", "y"]


def pubkey(priv):
    out = subprocess.run([mptlib.MPTUNNEL, "pubkey"], input=priv.encode(), stdout=subprocess.PIPE,
                         check=True, timeout=10)
    return out.stdout.decode().strip()


def body(t):
    spriv = t.genkey()
    spub = pubkey(spriv)
    priv = {n: t.genkey() for n in PEERS}
    sport = t.port()
    tg = {k: mptlib.Target("127.0.0.1", echo=True) for k in ("S", "A", "B", "L", "X", "Y")}
    scfg = t.path("server.ini")

    def write_server(laptop_allow):
        lines = ["[server]", "listen = 127.0.0.1:%d" % sport, "target = " + tg["S"].addr,
                 "allow = " + tg["Y"].addr, "private_key = " + spriv,
                 "control = " + t.path("server.sock"), "flow_timeout = 30s",
                 "", "[peer laptop]", "public_key = " + pubkey(priv["laptop"]),
                 "target = " + tg["A"].addr]
        lines += ["allow = " + (tg[k].addr if k in tg else k) for k in laptop_allow]
        lines += ["", "[peer phone]", "public_key = " + pubkey(priv["phone"]),
                  "target = " + tg["B"].addr, "allow = " + tg["X"].addr,
                  "", "[peer tablet]", "public_key = " + pubkey(priv["tablet"])]
        with open(scfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(scfg, 0o600)

    senders = []
    clients = {}
    try:
        write_server(["L"])
        server = t.server(scfg)
        t.expect("2 peers with allow rules or a target of their own" in server.log(),
                 "the server counts the peers with rules of their own")
        for n in PEERS:
            cport = t.port()
            fports = {k: t.port() for k in FWD}
            p = t.path(n + ".ini")
            lines = ["[client]", "listen = 127.0.0.1:%d" % cport, "bridge = 127.0.0.1:%d" % sport,
                     "private_key = " + priv[n], "server_public_key = " + spub,
                     "control = " + t.path(n + ".sock")]
            for k in FWD:
                lines += ["", "[forward %s]" % k, "listen = 127.0.0.1:%d" % fports[k],
                          "target = " + tg[k.upper()].addr]
            with open(p, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.chmod(p, 0o600)
            clients[n] = (t.client(p, name=n), p, cport, fports)

        # Each client: its default flow and three forwards, 40 datagrams each.
        snd = {}
        for n in PEERS:
            _, _, cport, fports = clients[n]
            ports = [cport] + [fports[k] for k in FWD]
            for i, port in enumerate(ports):
                s = mptlib.Sender("127.0.0.1", port, 50, tag=TAG[n] + i, size=(12, 200))
                senders.append(s)
                snd[n, i] = s
                s.start(40)
        for s in senders:
            s.wait_done(10)
        time.sleep(1.0)

        # What each peer may reach: (its default target, the forwards its rules cover).
        reach = {"laptop": ("A", {"l"}), "phone": ("B", {"x"}), "tablet": ("S", {"y"})}
        for n in PEERS:
            default, fwds = reach[n]
            t.check("%s: default flow echoed (to %s)" % (n, default), len(snd[n, 0].echoes), 36,
                    ">=")
            for k in ("S", "A", "B"):
                if k != default:
                    t.check("%s: datagrams of its default flow at %s" % (n, k),
                            tg[k].unique(TAG[n]), 0, "==")
            for i, k in enumerate(FWD, 1):
                got = len(snd[n, i].echoes)
                if k in fwds:
                    t.check("%s: forward to %s echoed" % (n, k.upper()), got, 36, ">=")
                else:
                    t.check("%s: echoes of its forward to %s (refused)" % (n, k.upper()), got, 0,
                            "==")
                    t.check("%s: datagrams at %s (another peer's, or [server]'s)"
                            % (n, k.upper()), tg[k.upper()].unique(TAG[n] + i), 0, "==")
            doc = lifelib.status(clients[n][1], "client")
            t.check("%s: flows refused not_allowed (client status)" % n,
                    doc["refused"]["not_allowed"], 2, ">=")
        for k in ("L", "X", "Y"):
            t.check("datagrams at %s not of a flow allowed there" % k, tg[k].foreign, 0, "==")
        doc = lifelib.status(scfg, "server")
        t.check("server: flows refused not_allowed", doc["refused"]["not_allowed"], 6, ">=")
        t.check("server: other refusals",
                sum(v for r, v in doc["refused"].items() if r != "not_allowed"), 0, "==")
        peers = {p["name"]: p for p in doc.get("peers", [])}
        t.expect(sorted(peers) == PEERS, "server status lists the peers: %s" % sorted(peers))
        for n in PEERS:
            if n not in peers:
                continue
            want = "server" if n == "tablet" else "own"
            t.expect(peers[n]["rules"] == want, "%s: rules %s (%s)" % (n, peers[n]["rules"], want))
            t.check("%s: flows refused not_allowed (server status)" % n,
                    peers[n]["refused"]["not_allowed"], 2, ">=")

        # 3. The laptop may reach X too after a reload: a new flow of its forward opens. The rule
        # names X by a host name new to the file (resolved by the reload) where one resolves to
        # 127.0.0.1 first, as `localhost' mostly does.
        first = socket.getaddrinfo("localhost", None, 0, socket.SOCK_DGRAM)[0][4][0]
        if first == "127.0.0.1":
            write_server(["L", "localhost:%d" % tg["X"].port])
        else:
            print("localhost resolves to %s first: X named by its address" % first)
            write_server(["L", "X"])
        server.signal(signal.SIGHUP)
        t.wait_log(server, r"server reloaded", timeout=5)
        if first == "127.0.0.1":
            t.expect("resolving 1 host name new to the file" in server.log(),
                     "the reload resolves the name new to the file")
        late = {}
        for n in ("laptop", "phone"):
            late[n] = mptlib.Sender("127.0.0.1", clients[n][3]["x"], 20, tag=TAG[n] + 0x12,
                                    size=(12, 200))
            senders.append(late[n])
            late[n].start(160)
        t0 = time.monotonic()
        while not late["laptop"].echoes and time.monotonic() - t0 < 10:
            time.sleep(0.1)
        t.check("laptop: seconds until its forward to X opened after the reload",
                time.monotonic() - t0, 7.0, "<=")
        late["laptop"].wait_done(10)
        late["phone"].wait_done(10)
        time.sleep(0.5)
        t.check("laptop: datagrams at X after the reload", tg["X"].unique(TAG["laptop"] + 0x12), 150,
                ">=")
        t.check("phone: forward to X echoed after the reload", len(late["phone"].echoes), 150,
                ">=")
        t.check("tablet: datagrams at X", tg["X"].unique(TAG["tablet"] + 2), 0, "==")
        # 4. A reload naming a host that does not resolve fails and changes nothing: the laptop
        # keeps L, which the new file would take away.
        write_server(["nosuch-host.invalid:1"])
        server.signal(signal.SIGHUP)
        t.wait_log(server, r"cannot resolve `nosuch-host\.invalid'.*the running configuration stays",
                   timeout=30)
        again = mptlib.Sender("127.0.0.1", clients["laptop"][3]["l"], 50, tag=TAG["laptop"] + 0x21,
                              size=(12, 200))
        senders.append(again)
        again.start(40)
        again.wait_done(10)
        time.sleep(0.5)
        t.check("laptop: new flow to L echoed after a failed reload", len(again.echoes), 36, ">=")
        t.check("datagrams delivered twice", sum(x.duplicates() for x in tg.values()), 0, "==")
    finally:
        for s in senders:
            s.close()
        for x in tg.values():
            x.close()


mptlib.run(body, budget=60)
