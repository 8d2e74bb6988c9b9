"""Helpers of the lifetime tests (lifetime.py, evict.py, soak.py): status documents, groups of
local applications that exchange numbered datagrams through the tunnel, and a process's resident
memory and open descriptors from /proc."""
import json
import os
import select
import socket
import subprocess
import time

import mptlib


def status(cfg, role, timeout=10, must=True):
    """The status document of the `role` ("client" or "server") running with cfg. If it does not
    answer: raises mptlib.Failed, or returns None if not `must`."""
    doc = None
    try:
        out = subprocess.run([mptlib.MPTUNNEL, "status", "-c", cfg, "--json", "--" + role],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if out.returncode == 0:
            doc = json.loads(out.stdout.decode())
    except (subprocess.TimeoutExpired, ValueError):
        pass
    if doc is None and must:
        raise mptlib.Failed("the %s gave no status" % role)
    return doc


def tx_bytes(doc):
    """Bytes sent on the paths: by the client (its status document), or by the server's sessions
    (the server's)."""
    if "session" in doc:
        return sum(p["tx"]["bytes"] for p in doc["paths"])
    return sum(p["tx"]["bytes"] for s in doc["sessions"]["list"] for p in s["paths"])


def fec_of(doc):
    """fec mode's figures: the client's session's, or the server's first session's."""
    if "session" in doc:
        return doc["session"]["fec"]
    return doc["sessions"]["list"][0]["fec"]


def used(cfg, role, table):
    """`used` of a table ("flows" or "sessions") in the status of `role`; -1 if no answer."""
    doc = status(cfg, role, must=False)
    return doc[table]["used"] if doc else -1


def wait_until(fn, timeout, step=0.1):
    """Calls fn until it returns a true value or timeout seconds pass; returns (value, seconds)."""
    t0 = time.monotonic()
    while True:
        v = fn()
        if v or time.monotonic() - t0 > timeout:
            return v, time.monotonic() - t0
        time.sleep(step)


def proc_figures(pid):
    """(resident KiB, open descriptors) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, StopIteration, ValueError):
        return None


class Apps:
    """n local applications, each a UDP socket of its own (so a flow of its own), tag base+i.
    send() sends numbered datagrams; echoes are counted per (tag, seq); anything else is foreign."""

    def __init__(self, n, to_port, base, to_host="127.0.0.1"):
        self.to = (to_host, to_port)
        self.base = base
        self.socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.socks.append(s)
        self.echoes = {}
        self.foreign = 0
        self.next_seq = [0] * n

    def tag(self, i):
        return self.base + i

    def send(self, k=1, size=100, which=None):
        """Sends k datagrams from each application (or those in `which`); returns the
        (tag, seq) sent."""
        sent = []
        for i in (range(len(self.socks)) if which is None else which):
            for _ in range(k):
                seq = self.next_seq[i]
                self.next_seq[i] += 1
                try:
                    self.socks[i].sendto(mptlib.make_payload(self.tag(i), seq, size), self.to)
                except OSError:
                    pass
                sent.append((self.tag(i), seq))
        return sent

    def poll(self, wait):
        """Reads echoes for up to `wait` seconds."""
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            r, _, _ = select.select(self.socks, [], [], max(0, left))
            for s in r:
                while True:
                    try:
                        data = s.recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    k = mptlib.parse_payload(data)
                    if k is None or not 0 <= k[0] - self.base < len(self.socks):
                        self.foreign += 1
                    else:
                        self.echoes[k] = self.echoes.get(k, 0) + 1
            if left <= 0:
                return

    def echoed(self, keys):
        return sum(1 for k in keys if k in self.echoes)

    def wait_echoes(self, keys, timeout):
        """Polls until every key in `keys` is echoed or timeout; returns the number echoed."""
        end = time.monotonic() + timeout
        while self.echoed(keys) < len(keys) and time.monotonic() < end:
            self.poll(0.05)
        return self.echoed(keys)

    def duplicates(self):
        return sum(c - 1 for c in self.echoes.values())

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


def replay_one(datagram, to, wait=0.5):
    """Sends one datagram to `to` from a fresh socket; returns the answers' sizes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.sendto(datagram, to)
    sizes = []
    end = time.monotonic() + wait
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            sizes.append(len(s.recvfrom(65535)[0]))
        except socket.timeout:
            break
    s.close()
    return sizes
