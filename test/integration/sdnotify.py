#!/usr/bin/env python3
"""systemd notifications through a fake NOTIFY_SOCKET (a unixgram socket per process): the
server, the client and a bridge each say READY=1 with a STATUS= line once their port is bound;
with WATCHDOG_USEC set, WATCHDOG=1 comes every half interval (none without it); SIGHUP brings
RELOADING=1 then READY=1 (the bridge, with no file, just survives it); SIGTERM brings STOPPING=1
and exit status 0; every few seconds STATUS= tells the session, paths up and flows."""
import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

WATCHDOG_USEC = 200000  # keep-alive every 100 ms


class Notify:
    """A fake service manager's socket: every message with its arrival time."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []
        self.lock = threading.Lock()
        self.done = False
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def loop(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append((time.monotonic(), data.decode("utf-8", "replace")))

    def fields(self, since=0.0):
        """[(time, key, value)] of every line of every message since `since`."""
        out = []
        with self.lock:
            for ts, m in self.msgs:
                if ts < since:
                    continue
                for line in m.split("\n"):
                    k, _, v = line.partition("=")
                    out.append((ts, k, v))
        return out

    def wait(self, key, value=None, timeout=5.0, since=0.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for ts, k, v in self.fields(since):
                if k == key and (value is None or v == value):
                    return ts, v
            time.sleep(0.02)
        return None, None

    def count(self, key, since, until):
        return sum(1 for ts, k, _ in self.fields(since) if k == key and ts <= until)

    def close(self):
        self.done = True
        self.th.join(1)
        self.sock.close()


def start_notified(t, name, argv, watchdog):
    n = Notify(t.path(name + ".notify"))
    env = dict(os.environ)
    os.environ["NOTIFY_SOCKET"] = n.path
    if watchdog:
        os.environ["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    else:
        os.environ.pop("WATCHDOG_USEC", None)
    try:
        pr = t.start(name, argv)
    finally:
        os.environ.clear()
        os.environ.update(env)
    return pr, n


def port_bound(port, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def expect_ready(t, label, pr, n, port, status_prefix):
    ts, _ = n.wait("READY", "1", timeout=5.0)
    t.expect(ts is not None, "%s: READY=1 within 5 s" % label)
    if ts is None:
        return
    t.expect(port_bound(port), "%s: port %d bound when READY=1 came" % (label, port))
    _, status = n.wait("STATUS", timeout=1.0)
    t.expect(status is not None and status.startswith(status_prefix),
             "%s: STATUS= starts with `%s' (got %r)" % (label, status_prefix, status))
    print("%s: READY=1, STATUS=%s" % (label, status))


def expect_stopping(t, label, pr, n):
    t0 = time.monotonic()
    rc, secs = t.stop(pr, signal.SIGTERM, timeout=5)
    ts, _ = n.wait("STOPPING", "1", timeout=1.0, since=t0)
    t.expect(ts is not None, "%s: STOPPING=1 after SIGTERM" % label)
    t.check("%s: exit status after SIGTERM" % label, rc if rc is not None else -1, 0, "==")


def body(t):
    secret = t.genkey()
    cport, sport, bport = t.port(), t.port(), t.port()
    tgt = mptlib.Target("127.0.0.1", echo=True)
    cfg = t.write_config("tunnel.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % bport], server_listen="127.0.0.1:%d" % sport,
                         target=tgt.addr)
    server, ns = start_notified(t, "server", [mptlib.MPTUNNEL, "server", "-c", cfg], True)
    expect_ready(t, "server", server, ns, sport, "server: listening on 127.0.0.1:%d" % sport)
    t0 = time.monotonic()
    time.sleep(1.0)
    beats = ns.count("WATCHDOG", t0, t0 + 1.0)
    # Every 100 ms: 10 in a second; a loaded 2-core host may delay a few.
    t.check("server: WATCHDOG=1 in 1 s (WATCHDOG_USEC=%d)" % WATCHDOG_USEC, beats, 6, ">=")
    t.check("server: WATCHDOG=1 in 1 s, at most", beats, 13, "<=")

    client, nc = start_notified(t, "client", [mptlib.MPTUNNEL, "client", "-c", cfg], False)
    expect_ready(t, "client", client, nc, cport,
                 "client: listening on 127.0.0.1:%d, 1 path" % cport)
    bridge, nb = start_notified(t, "bridge", [mptlib.MPTUNNEL, "bridge", "--listen",
                                              "127.0.0.1:%d" % bport, "--to",
                                              "127.0.0.1:%d" % sport], True)
    expect_ready(t, "bridge", bridge, nb, bport, "bridge: 127.0.0.1:%d -> " % bport)
    t0 = time.monotonic()
    time.sleep(0.5)
    t.check("client: WATCHDOG=1 without WATCHDOG_USEC", nc.count("WATCHDOG", 0, t0 + 0.5), 0,
            "==")
    t.check("bridge: WATCHDOG=1 in 0.5 s", nb.count("WATCHDOG", t0, t0 + 0.5), 3, ">=")

    # Every 5 s the status line says how things are, when that changed.
    t0 = time.monotonic()
    for label, n, want in (("client", nc, "client: session up, 1 of 1 paths up, 0 flows"),
                           ("server", ns, "server: 1 session, 0 flows")):
        ts, st = n.wait("STATUS", want, timeout=8.0, since=t0)
        t.expect(ts is not None, "%s: STATUS=%s within 8 s (last: %r)"
                 % (label, want, [v for _, k, v in n.fields(t0) if k == "STATUS"][-1:]))

    # SIGHUP: RELOADING=1, then READY=1 once the file is applied; the bridge only survives it.
    for label, pr, n in (("server", server, ns), ("client", client, nc)):
        t0 = time.monotonic()
        pr.signal(signal.SIGHUP)
        ts, _ = n.wait("RELOADING", "1", timeout=5.0, since=t0)
        t.expect(ts is not None, "%s: RELOADING=1 after SIGHUP" % label)
        ts2, _ = n.wait("READY", "1", timeout=5.0, since=ts or t0)
        t.expect(ts2 is not None, "%s: READY=1 after the reload (%.3f s after SIGHUP)"
                 % (label, (ts2 or t0) - t0))
        _, st = n.wait("STATUS", timeout=1.0, since=ts or t0)
        t.expect(st is not None and "reloaded" in st, "%s: STATUS=%s" % (label, st))
        t.expect(pr.alive(), "%s alive after SIGHUP" % label)
    t0 = time.monotonic()
    bridge.signal(signal.SIGHUP)
    time.sleep(0.3)
    t.expect(bridge.alive(), "bridge alive after SIGHUP")
    t.check("bridge: RELOADING=1 after SIGHUP (it has no file)", nb.count("RELOADING", t0,
                                                                           time.monotonic()), 0,
            "==")

    expect_stopping(t, "client", client, nc)
    expect_stopping(t, "bridge", bridge, nb)
    expect_stopping(t, "server", server, ns)
    for n in (ns, nc, nb):
        n.close()
    tgt.close()


mptlib.run(body, 60)
