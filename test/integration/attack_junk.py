#!/usr/bin/env python3
"""Junk handshakes must not lock a client out. Junk: datagrams of a handshake's size with a valid
header and random bytes after it (128 bytes as a version-1 HELLO; for version 2 also 132 bytes as
an INIT). The server is killed (SIGKILL) and started again while an application sends through
the client (100/s); the figure is the time from the new server's start to the first echo:
 - baseline: no junk, the client's path through a bridge, and its path direct from 127.0.0.9;
 - junk at 50/s into the client's own bridge (the server sees it from the bridge's address, as
   it sees the client's handshakes);
 - junk at 5,000/s from the client's own source address (127.0.0.9, another port: the server's
   per-source limit is keyed by the address), at the server.
Limit: each reconnect within 1 s of the baseline measured in the same run."""
import base64
import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mpt2  # noqa: E402
import mptlib  # noqa: E402

mpt2.need_crypto()

OWN = "127.0.0.9"
MARGIN = 1.0
GIVE_UP = 20.0


class Junk(threading.Thread):
    """Sends junk handshakes of `sizes` (one of each in turn) at `rate` from (host, 0) to `to`."""

    def __init__(self, host, to, rate, version):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.to, self.rate = to, rate
        self.kinds = [(mpt2.V1, mpt2.HELLO_LEN)]
        if version == mpt2.V2:
            self.kinds.append((mpt2.V2, mpt2.INIT_LEN))
        self.pool = [mpt2.header(v, 1) + os.urandom(n - 4) for v, n in self.kinds * 64]
        self.sent = 0
        self.stopped = False

    def run(self):
        t0 = time.monotonic()
        while not self.stopped:
            due = int((time.monotonic() - t0) * self.rate)
            while self.sent < due:
                try:
                    self.sock.sendto(self.pool[self.sent % len(self.pool)], self.to)
                except OSError:
                    pass
                self.sent += 1
            time.sleep(0.002)

    def stop(self):
        self.stopped = True
        self.join(3)
        self.sock.close()


def reconnect(t, state, cfg, junk):
    """Kills the server, starts it again with junk (or None) flowing since 1 s before; returns
    the seconds from the new server's start to the first echo after it."""
    snd = state["sender"]
    if junk is not None:
        junk.start()
        time.sleep(1.0)
    t.stop(state["server"], signal.SIGKILL)
    state["server"] = t.server(cfg, name="server%d" % state["n"])
    state["n"] += 1
    t_up = state["server"].started
    first = None
    while first is None and time.monotonic() < t_up + GIVE_UP:
        time.sleep(0.01)
        first = snd.first_echo_after(t_up)
    if junk is not None:
        junk.stop()
        print("junk sent: %d (%.0f/s)" % (junk.sent, junk.sent / (time.monotonic() - t_up + 1)))
    delay = (first - t_up) if first else GIVE_UP
    # Traffic flows again before the next measurement.
    t.ensure_time(GIVE_UP + 5, "the next reconnect")
    end = time.monotonic() + GIVE_UP
    while snd.first_echo_after(time.monotonic() - 0.2) is None and time.monotonic() < end:
        time.sleep(0.05)
    return delay, first is None


def body(t):
    secret_b64 = t.genkey()
    secret = base64.b64decode(secret_b64)
    sp, bp, cp, ep = t.port(), t.port(), t.port(), t.port()
    t.echo("echo", "127.0.0.1:%d" % ep)
    ctl = lambda n: ["control = " + t.path(n + ".sock")]  # noqa: E731
    scfg = t.write_config("junk.ini", secret_b64, server_listen="127.0.0.1:%d" % sp,
                          target="127.0.0.1:%d" % ep, extra_server=ctl("s"))
    via_bridge = t.write_config("junkb.ini", secret_b64, client_listen="127.0.0.1:%d" % cp,
                                bridges=["127.0.0.1:%d" % bp], extra_client=ctl("cb"))
    direct = t.write_config("junkd.ini", secret_b64, client_listen="127.0.0.1:%d" % cp,
                            extra_client=ctl("cd") + ["", "[path own]",
                                                      "bridge = 127.0.0.1:%d" % sp,
                                                      "bind = " + OWN])
    state = {"server": t.server(scfg), "n": 1}
    version = mpt2.server_version(("127.0.0.1", sp), secret)
    print("protocol version %s" % version)
    if version is None:
        raise mptlib.Failed("the server answers no handshake")
    t.bridge("bridge", "127.0.0.1:%d" % bp, "127.0.0.1:%d" % sp)
    figures = {}
    for name, cfg, junk in (
            ("bridge", via_bridge, lambda: Junk("127.0.0.1", ("127.0.0.1", bp), 50, version)),
            ("own address", direct, lambda: Junk(OWN, ("127.0.0.1", sp), 5000, version))):
        client = t.client(cfg, name="client " + name)
        state["sender"] = snd = mptlib.Sender("127.0.0.1", cp, 100, size=(12, 200)).start()
        try:
            t.ensure_time(3 * (GIVE_UP + 5), "path %s" % name)
            end = time.monotonic() + 5
            while snd.first_echo_after(0) is None and time.monotonic() < end:
                time.sleep(0.05)
            base, _ = reconnect(t, state, scfg, None)
            delay, gave_up = reconnect(t, state, scfg, junk())
            figures[name] = (base, delay, gave_up)
        finally:
            snd.close()
            t.stop(client)
    for name, (base, delay, gave_up) in figures.items():
        print("path %s: reconnect after a server restart %.2f s without junk" % (name, base))
        t.check("reconnect with junk %s, s%s" % ({"bridge": "at 50/s into the client's bridge",
                                                  "own address": "at 5,000/s from the client's "
                                                  "address"}[name],
                                                 " (gave up)" if gave_up else ""),
                delay, base + MARGIN)


mptlib.run(body, budget=150)
