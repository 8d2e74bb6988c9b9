#!/usr/bin/env python3
"""The client's SOCKS5 front with a real SOCKS client, PySocks (Debian python3-socks): one UDP
association sends to two echo targets on different ports (IPv4 addresses) and to a name
(`localhost', resolved by the server), interleaved, over three paths that each lose 20% both
ways. Each reply must come back with the SOCKS header of the destination it was sent to, and
residual loss must stay near p^3 = 0.008 (limit 0.016 forward, 0.032 round trip). A fourth
destination outside the server's `allow' rules is refused (counted on both ends) and never
contacted: the test listens there. Closing the association's control connection closes its
flows: the client's status shows them gone."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

try:
    import socks  # PySocks, Debian's python3-socks: only /usr/bin/python3 sees it
except ImportError:
    if os.path.exists("/usr/bin/python3") and not os.environ.get("MPT_SOCKS_REEXEC"):
        os.environ["MPT_SOCKS_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: PySocks is missing (Debian: python3-socks)")
    sys.exit(mptlib.SKIP)

COUNT = 1500  # per destination
RATE = 300  # per destination, datagrams per second
FWD_LIMIT = 0.016
RT_LIMIT = 0.032


def status(t, cfg, role):
    out = subprocess.run([mptlib.MPTUNNEL, "status", "-c", cfg, "--" + role, "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return json.loads(out.stdout.decode()) if out.returncode == 0 else None


def wait_status(t, cfg, role, cond, timeout):
    end = time.monotonic() + timeout
    while True:
        st = status(t, cfg, role)
        if st is not None and cond(st):
            return st
        if time.monotonic() > end:
            return st
        time.sleep(0.1)


def body(t):
    secret = t.genkey()
    cport, sport, xport, mport = t.port(), t.port(), t.port(), t.port()
    bports = [t.port() for _ in range(3)]
    tags = [0x2001, 0x2002, 0x2003]
    targets = [mptlib.Target(tags={tags[i]}) for i in range(3)]
    twin = None  # `localhost' may resolve to ::1: a twin on the same port there
    if mptlib.has_ipv6_loopback():
        try:
            twin = mptlib.Target(host="::1", port=targets[2].port, tags={tags[2]})
        except OSError:
            twin = None
    outside = mptlib.Target(echo=False, tags=set())
    default = mptlib.Target(tags=set())
    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport,
        bridges=["127.0.0.1:%d" % p for p in bports], server_listen=sport, target=default.addr,
        extra_client=["socks = 127.0.0.1:%d" % xport, "control = " + t.path("c.sock"),
                      "metrics = 127.0.0.1:%d" % mport],
        extra_server=["allow = 127.0.0.1:%d" % targets[0].port,
                      "allow = 127.0.0.1:%d" % targets[1].port,
                      "allow = 127.0.0.1:%d" % targets[2].port,
                      "allow = [::1]:%d" % targets[2].port,
                      "control = " + t.path("s.sock")])
    server = t.server(cfg)
    for i, p in enumerate(bports):
        t.bridge("bridge%d" % i, "127.0.0.1:%d" % p, "127.0.0.1:%d" % sport, "--loss", "0.2",
                 "--seed", str(401 + i))
    client = t.client(cfg)
    t.wait_log(client, r"socks5 front on 127\.0\.0\.1:%d" % xport, timeout=5)
    t.wait_log(client, r"path \d+ up", count=3, timeout=10)

    s = socks.socksocket(socks.socket.AF_INET, socks.socket.SOCK_DGRAM)
    s.set_proxy(socks.SOCKS5, "127.0.0.1", xport)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    dests = [("127.0.0.1", targets[0].port), ("127.0.0.1", targets[1].port),
             ("localhost", targets[2].port)]
    got = {tag: set() for tag in tags}
    wrong = [0]
    stray = [0]
    done = threading.Event()

    def receive():
        while not done.is_set():
            try:
                data, src = s.recvfrom(65535)
            except (socks.socket.timeout, BlockingIOError):
                continue
            except OSError:
                if done.is_set():
                    return
                continue
            k = mptlib.parse_payload(data)
            if k is None or k[0] not in tags:
                stray[0] += 1
                continue
            host = src[0].decode() if isinstance(src[0], bytes) else src[0]  # a domain: bytes
            if (host, src[1]) != dests[tags.index(k[0])]:
                wrong[0] += 1
                continue
            got[k[0]].add(k[1])

    rx = threading.Thread(target=receive, daemon=True)
    rx.start()
    t0 = time.monotonic()
    for seq in range(COUNT):
        for i in range(3):
            s.sendto(mptlib.make_payload(tags[i], seq, 12 + (seq * 37 + i * 11) % 500), dests[i])
        delay = t0 + (seq + 1) / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    # The refused destination: a few datagrams, none may arrive there.
    for seq in range(20):
        s.sendto(mptlib.make_payload(0x2004, seq, 40), ("127.0.0.1", outside.port))
        time.sleep(0.02)
    time.sleep(1.5)  # the last echoes
    print("sent %d datagrams to each of 3 destinations in %.1f s through one association"
          % (COUNT, time.monotonic() - t0))
    for i in range(3):
        arrived = targets[i].unique(tags[i]) + (twin.unique(tags[i]) if twin and i == 2 else 0)
        print("%s:%d: target got %d, replies back %d" % (dests[i] + (arrived, len(got[tags[i]]))))
        t.check("%s:%d forward residual loss" % dests[i], 1 - arrived / COUNT, FWD_LIMIT)
        t.check("%s:%d round-trip residual loss" % dests[i], 1 - len(got[tags[i]]) / COUNT,
                RT_LIMIT)
        t.check("%s:%d datagrams of other destinations there" % dests[i],
                targets[i].foreign + (twin.foreign if twin and i == 2 else 0), 0, "==")
        t.check("%s:%d duplicates there" % dests[i], targets[i].duplicates(), 0, "==")
    t.check("replies with another destination's header", wrong[0], 0, "==")
    t.check("replies not of the test", stray[0], 0, "==")
    t.check("datagrams at the target outside allow", outside.total, 0, "==")
    t.check("datagrams at the default target", default.total, 0, "==")

    st = wait_status(t, cfg, "client", lambda x: x["refused"]["not_allowed"] >= 1, 5)
    if not t.expect(st is not None and st.get("socks") is not None, "client status with socks"):
        return
    print("client status socks: %s" % json.dumps(st["socks"]))
    t.check("refused not_allowed in the client's status", st["refused"]["not_allowed"], 1, ">=")
    t.check("associations open", st["socks"]["associations"]["open"], 1, "==")
    t.check("flows open for the association", st["flows"]["used"], 4, "==")
    t.check("datagrams dropped by the front", sum(st["socks"]["datagrams"]["dropped"].values()),
            0, "==")
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5).read().decode()

    def metric(name, labels=""):
        m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
        return float(m.group(1)) if m else -1

    t.check("metrics: mptunnel_socks_associations", metric("mptunnel_socks_associations"), 1, "==")
    t.check("metrics: SOCKS datagrams in", metric("mptunnel_socks_datagrams_total",
                                                  '{direction="in"}'), 3 * COUNT, ">=")
    t.check("metrics: client's refused flows (not_allowed)",
            metric("mptunnel_refused_flows_total", '{reason="not_allowed"}'), 1, ">=")
    t.check("metrics: SOCKS fragments dropped",
            metric("mptunnel_socks_dropped_total", '{reason="fragment"}'), 0, "==")
    human = subprocess.run([mptlib.MPTUNNEL, "status", "-c", cfg, "--client"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10).stdout.decode()
    print("\n".join(x for x in human.splitlines() if x.startswith(("socks", "refused"))))
    t.expect(re.search(r"^socks 127\.0\.0\.1:%d: 1/64 associations, 1 made, 0 refused; "
                       r"datagrams \d+ in, \d+ out" % xport, human, re.M) is not None,
             "the front's line in mptunnel status")
    t.expect(re.search(r"^refused by the server: \d+ not_allowed", human, re.M) is not None,
             "the refusals' line in mptunnel status")
    sst = status(t, cfg, "server")
    t.check("refused not_allowed in the server's status",
            sst["refused"]["not_allowed"] if sst else -1, 1, ">=")
    t.wait_log(client, r"the server refused flow \d+ to 127\.0\.0\.1:%d: not_allowed"
               % outside.port, timeout=5)

    # The control connection closes: the association and its flows go.
    done.set()
    s.close()
    rx.join(2)
    st = wait_status(t, cfg, "client", lambda x: x["socks"]["associations"]["open"] == 0 and
                     x["flows"]["used"] == 0, 3)
    t.check("associations open after the control connection closed",
            st["socks"]["associations"]["open"], 0, "==")
    t.check("flows open after the control connection closed", st["flows"]["used"], 0, "==")
    t.check("associations made", st["socks"]["associations"]["total"], 1, "==")
    for x in targets + [outside, default] + ([twin] if twin else []):
        x.close()


mptlib.run(body, budget=120)
