"""Shared helpers of mptunnel's integration tests (python3, standard library only).

A test calls run(body, budget): body(t) gets a Test that allocates free ports, writes configs,
starts processes (every pid is recorded and killed at the end, whatever happens), waits for their
readiness, and checks measured figures. Each check prints one line such as
`residual loss 0.0072 (limit 0.016)`; the test exits 0 if all hold, 1 if one fails, 77 to skip.
Children get PR_SET_PDEATHSIG, so not even a SIGKILL of the test leaves them behind.

This file lives below lib/ so that the CMake glob of test/integration/*.py does not make it a test.
"""
import atexit
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77

# Configurations hold secrets, and mptunnel refuses a secret that others can read: every file the
# tests write (and the processes they start) is private to the user.
os.umask(0o077)

# Socket buffers of every process: net.core.rmem_max allows 4 MiB here, and the default 212 KB
# overflows within tens of milliseconds at the test rates when other builds load the host.
BUFSIZE = "4M"
BUFSIZE_BYTES = 4 << 20

MPTUNNEL = os.environ.get("MPTUNNEL", "")
MPT_TOOLS = os.environ.get("MPT_TOOLS", "")
UDPGEN = os.path.join(MPT_TOOLS, "udpgen") if MPT_TOOLS else ""

_libc = None
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    pass


def _child_setup():
    # Die with the test, even if the test itself is killed (PR_SET_PDEATHSIG = 1).
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


class Skip(Exception):
    pass


class PortBusy(Exception):
    """A process could not bind a port handed out as free: another process took it meanwhile."""


class Failed(Exception):
    pass


def has_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def fmt_addr(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


class Proc:
    """A started process: name, argv, pid, and its stdout/stderr files."""

    def __init__(self, t, name, argv):
        self.name = name
        self.argv = argv
        self.out_path = os.path.join(t.dir, name + ".out")
        self.err_path = os.path.join(t.dir, name + ".err")
        self.out = open(self.out_path, "ab")
        self.err = open(self.err_path, "ab")
        self.err_start = self.err.tell()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                  stderr=self.err, preexec_fn=_child_setup, close_fds=True)
        self.pid = self.p.pid
        self.started = time.monotonic()

    def alive(self):
        return self.p.poll() is None

    def log(self):
        """stderr written by this process (this run of it only)."""
        try:
            with open(self.err_path, "rb") as f:
                f.seek(self.err_start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def close_files(self):
        for f in (self.out, self.err):
            try:
                f.close()
            except OSError:
                pass


class Test:
    def __init__(self, name, budget):
        self.name = name
        self.budget = budget
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget
        self.dir = tempfile.mkdtemp(prefix="mpt-%s-" % name)
        self.procs = []
        self.failures = []
        self.ports = set()
        self.rng = random.Random()

    # ---- time ----
    def left(self):
        return self.deadline - time.monotonic()

    def ensure_time(self, needed, what):
        if self.left() < needed:
            raise Failed("out of time budget before %s (%.1f s left, %.1f s needed)"
                         % (what, self.left(), needed))

    # ---- ports and files ----
    def port(self):
        """A UDP port free on every address (IPv4 and IPv6), found by binding port 0."""
        for _ in range(100):
            try:
                s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                s.bind(("::", 0))
            except OSError:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("0.0.0.0", 0))
            p = s.getsockname()[1]
            s.close()
            if p not in self.ports:
                self.ports.add(p)
                return p
        raise Failed("no free port")

    def path(self, name):
        return os.path.join(self.dir, name)

    def genkey(self):
        out = subprocess.run([MPTUNNEL, "genkey"], stdout=subprocess.PIPE, check=True, timeout=10)
        return out.stdout.decode().strip()

    def write_config(self, name, secret, client_listen=None, bridges=(), server_listen=None,
                     target=None, extra_client=(), extra_server=(), extra_tunnel=(),
                     bufsize=BUFSIZE):
        """Writes an INI file; socket buffers are set to `bufsize` (None: the system's) so that
        loopback bursts under a loaded host do not overflow the default 212 KB."""
        lines = ["[tunnel]", "secret = " + secret] + list(extra_tunnel)
        if bufsize:
            lines += ["sndbuf = " + bufsize, "rcvbuf = " + bufsize]
        # Control sockets in the test's own directory unless the test names them: the default
        # (/run/mptunnel/ROLE-NAME.sock) would be shared by tests that run at once with the same
        # file name, and `mptunnel status` could then ask another test's process.
        stem = os.path.splitext(name)[0]

        def control(role, extra):
            if any(re.match(r"\s*control\s*=", e) for e in extra):
                return []
            return ["control = " + self.path("%s-%s.sock" % (stem, role))]
        if client_listen is not None:
            lines += ["", "[client]", "listen = " + client_listen]
            lines += ["bridge = " + b for b in bridges] + list(extra_client)
            lines += control("client", extra_client)
        if server_listen is not None:
            lines += ["", "[server]", "listen = " + str(server_listen), "target = " + target]
            lines += list(extra_server) + control("server", extra_server)
        p = self.path(name)
        with open(p, "w") as f:
            f.write("\n".join(lines) + "\n")
        return p

    # ---- processes ----
    def start(self, name, argv, ready=None, timeout=5.0):
        """Starts argv; if `ready` (a regex) is given, waits until the process's stderr shows it.
        Raises PortBusy if the process died complaining of an address in use."""
        pr = Proc(self, name, argv)
        self.procs.append(pr)
        if ready is not None:
            self.wait_log(pr, ready, timeout=timeout)
        return pr

    def wait_log(self, pr, regex, count=1, timeout=5.0):
        rx = re.compile(regex)
        end = time.monotonic() + timeout
        while True:
            text = pr.log()
            if len(rx.findall(text)) >= count:
                return text
            if not pr.alive():
                if re.search(r"in use|EADDRINUSE", text, re.I):
                    raise PortBusy("%s: %s" % (pr.name, text.strip()[-300:]))
                raise Failed("%s exited (status %s) before `%s'; log:\n%s"
                             % (pr.name, pr.p.returncode, regex, text[-2000:]))
            if time.monotonic() > end:
                raise Failed("%s: no `%s' within %.1f s; log:\n%s"
                             % (pr.name, regex, timeout, text[-2000:]))
            time.sleep(0.02)

    def server(self, cfg, name="server", **kw):
        return self.start(name, [MPTUNNEL, "server", "-c", cfg], ready=r"server listening", **kw)

    def client(self, cfg, name="client", **kw):
        return self.start(name, [MPTUNNEL, "client", "-c", cfg], ready=r"client listening", **kw)

    def bridge(self, name, listen, to, *opts, bufsize=BUFSIZE):
        bufs = ["--sndbuf", bufsize, "--rcvbuf", bufsize] if bufsize else []
        return self.start(name, [MPTUNNEL, "bridge", "--listen", listen, "--to", to] + bufs +
                          list(opts), ready=r"listening on")

    def echo(self, name, listen):
        """udpgen echo on `listen`; its stats are read by stop_echo()."""
        stats = self.path(name + ".json")
        pr = self.start(name, [UDPGEN, "echo", "--listen", listen, "--stats", stats,
                               "--ready", self.path(name + ".ready"), "--bufsize",
                               str(BUFSIZE_BYTES)])
        end = time.monotonic() + 5
        while not os.path.exists(self.path(name + ".ready")) or \
                not open(self.path(name + ".ready")).read().strip():
            if not pr.alive():
                text = pr.log()
                if re.search(r"in use", text, re.I):
                    raise PortBusy(text)
                raise Failed("%s exited: %s" % (name, text))
            if time.monotonic() > end:
                raise Failed("%s not ready" % name)
            time.sleep(0.02)
        pr.stats = stats
        return pr

    def stop(self, pr, sig=signal.SIGTERM, timeout=2.0):
        """Sends sig and waits up to timeout; returns (exit status or None, seconds taken)."""
        t0 = time.monotonic()
        pr.signal(sig)
        try:
            rc = pr.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        return rc, time.monotonic() - t0

    def stop_echo(self, pr):
        rc, _ = self.stop(pr, timeout=5)
        if rc != 0:
            raise Failed("%s exited with %s: %s" % (pr.name, rc, pr.log()))
        with open(pr.stats) as f:
            return json.load(f)

    def udpgen_send(self, to, count, rate, size="1-1200", flows=1, seed=1, linger=1000,
                    extra=()):
        argv = [UDPGEN, "send", "--to", to, "--count", str(count), "--rate", str(rate),
                "--size", size, "--flows", str(flows), "--seed", str(seed), "--linger",
                str(linger), "--bufsize", str(BUFSIZE_BYTES), "--json"] + list(extra)
        tmo = count / max(rate, 1) + linger / 1000.0 + 30
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=tmo,
                             preexec_fn=_child_setup)
        if out.returncode != 0:
            raise Failed("udpgen send exited %d: %s" % (out.returncode, out.stderr.decode()))
        return json.loads(out.stdout.decode().strip().splitlines()[-1])

    def warm_up(self, to, timeout=10.0):
        """Sends small udpgen runs through the tunnel until one is echoed; returns seconds."""
        t0 = time.monotonic()
        seed = 1000
        while time.monotonic() - t0 < timeout:
            seed += 1
            r = self.udpgen_send(to, 5, 50, size="64", seed=seed, linger=300)
            if r["received_unique"] > 0:
                return time.monotonic() - t0
        raise Failed("no echo through the tunnel within %.1f s" % timeout)

    def figures(self, r, st):
        """One-way figures of a udpgen send run `r` against the echo stats `st`: a dict with
        sent, fwd_delivered, echoed, back, fwd_loss, rev_loss. Datagrams under 5 bytes carry too
        little of the flow id to be attributed to a flow; warm_up() sends only 64-byte ones, so the
        unattributed ones belong to the measured run."""
        flows = {f["flow"] for f in r["flows"]}
        ef = [f for f in st["flows"] if f["flow"] in flows]
        if not ef:
            raise Failed("the target never saw the measured flows: %s" % st)
        delivered = sum(f["unique"] + f["tiny"] for f in ef) + st["tiny_unattributed"]
        echoed = sum(f["received"] for f in ef) + st["tiny_unattributed"]
        fig = {"sent": r["sent"], "fwd_delivered": delivered, "echoed": echoed,
               "back": r["received_unique"], "target_flows": len(ef)}
        fig["fwd_loss"] = 1 - delivered / r["sent"]
        fig["rev_loss"] = 1 - r["received_unique"] / echoed if echoed else 1.0
        print("sent %d; target got %d unique, echoed %d; echoes back %d unique"
              % (r["sent"], delivered, echoed, r["received_unique"]), flush=True)
        return fig

    def finish(self):
        """After a test body: stops every process still running with SIGTERM (newest first),
        which must exit 0 within 3 s, and fails the test on any sanitizer report in a log."""
        for pr in reversed(self.procs):
            if pr.alive():
                rc, secs = self.stop(pr, signal.SIGTERM, timeout=3.0)
                if rc != 0:
                    print("%s (pid %d): exit status %s after SIGTERM at the end (%.1f s)"
                          % (pr.name, pr.pid, rc, secs))
                    self.failures.append("%s exit status" % pr.name)
        for pr in self.procs:
            text = pr.log()
            m = re.search(r"(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"runtime error:)", text)
            if m:
                print("%s (pid %d): sanitizer report in its log" % (pr.name, pr.pid))
                self.failures.append("%s sanitizer report" % pr.name)

    def cleanup(self):
        for pr in self.procs:
            if pr.alive():
                try:
                    os.kill(pr.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                pr.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            pr.close_files()
        self.procs = []

    # ---- checks ----
    def check(self, label, value, limit, op="<=", fmt="%.4g"):
        ok = {"<=": value <= limit, ">=": value >= limit, "==": value == limit,
              "<": value < limit}[op]
        lim = ("limit " if op in ("<=", "<") else "must be " if op == "==" else "at least ")
        print("%s %s (%s%s)%s" % (label, fmt % value if not isinstance(value, int) else value,
                                  lim, fmt % limit if not isinstance(limit, int) else limit,
                                  "" if ok else "  <-- FAIL"), flush=True)
        if not ok:
            self.failures.append(label)
        return ok

    def expect(self, cond, what):
        print("%s: %s" % (what, "ok" if cond else "FAIL"), flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    def dump_logs(self):
        for pr in self.procs:
            text = pr.log()
            if text:
                print("---- %s (pid %d) ----\n%s" % (pr.name, pr.pid, text[-3000:]))


_current = None


def _on_exit():
    if _current is not None:
        _current.cleanup()


def _on_signal(signum, frame):
    raise Failed("signal %d" % signum)


def _on_alarm(signum, frame):
    raise Failed("time budget exceeded")


def run(body, budget, name=None, needs_ipv6=False, attempts=2):
    """Runs body(t) with a fresh Test; retries once if a port was taken by someone else."""
    global _current
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    if not MPTUNNEL or not os.access(MPTUNNEL, os.X_OK):
        print("SKIP: MPTUNNEL not set or not executable")
        sys.exit(SKIP)
    if not UDPGEN or not os.access(UDPGEN, os.X_OK):
        print("SKIP: MPT_TOOLS/udpgen not found")
        sys.exit(SKIP)
    if needs_ipv6 and not has_ipv6_loopback():
        print("SKIP: ::1 is not available")
        sys.exit(SKIP)
    atexit.register(_on_exit)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)
    status = 1
    for attempt in range(attempts):
        t = _current = Test(name, budget)
        signal.alarm(int(budget) + 2)
        try:
            body(t)
            t.finish()
            status = 1 if t.failures else 0
            if t.failures:
                print("FAILED: " + ", ".join(t.failures))
                t.dump_logs()
        except PortBusy as e:
            print("port taken meanwhile, %s: %s" % ("retrying" if attempt + 1 < attempts
                                                    else "giving up", e))
            t.cleanup()
            shutil.rmtree(t.dir, ignore_errors=True)
            continue
        except Skip as e:
            print("SKIP: %s" % e)
            status = SKIP
        except BaseException as e:  # noqa: B902 - any error fails the test after cleanup
            signal.alarm(0)
            print("ERROR: %s: %s" % (type(e).__name__, e))
            t.dump_logs()
            status = 1
        finally:
            signal.alarm(0)
            t.cleanup()
        print("%s: %.1f s, %s" % (name, time.monotonic() - t.t0,
                                  "ok" if status == 0 else "skipped" if status == SKIP
                                  else "FAILED (files kept in %s)" % t.dir), flush=True)
        if status == 0:
            shutil.rmtree(t.dir, ignore_errors=True)
        break
    _current = None
    sys.exit(status)


# ---- Python traffic: numbered, checkable datagrams ----

MAGIC = b"MPTI"


def make_payload(tag, seq, size):
    """MAGIC, tag u32, seq u32, then a pattern derived from (tag, seq); size >= 12."""
    head = MAGIC + struct.pack(">II", tag, seq)
    n = max(size, len(head)) - len(head)
    r = random.Random(tag * 1000003 + seq)
    return head + r.getrandbits(8 * n).to_bytes(n, "little") if n else head


def parse_payload(data):
    """(tag, seq) if data is a well-formed payload of make_payload, else None."""
    if len(data) < 12 or data[:4] != MAGIC:
        return None
    tag, seq = struct.unpack(">II", data[4:12])
    if make_payload(tag, seq, len(data)) != data:
        return None
    return tag, seq


class Target:
    """A UDP target in a thread: records every datagram (arrival time, payload check), and echoes
    it back if echo=True. Anything that is not a payload of an expected tag is `foreign`."""

    def __init__(self, host="127.0.0.1", port=0, echo=True, tags=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.addr = fmt_addr(host, self.port)
        self.echo = echo
        self.tags = tags  # None: any tag of make_payload is genuine
        self.lock = threading.Lock()
        self.seen = {}  # (tag, seq) -> count
        self.arrivals = []  # (monotonic time, tag, seq)
        self.foreign = 0
        self.foreign_samples = []
        self.total = 0
        self.stopped = False
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def _loop(self):
        self.sock.settimeout(0.1)
        while not self.stopped:
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                if self.stopped:
                    return
                continue
            now = time.monotonic()
            k = parse_payload(data)
            with self.lock:
                self.total += 1
                if k is None or (self.tags is not None and k[0] not in self.tags):
                    self.foreign += 1
                    if len(self.foreign_samples) < 5:
                        self.foreign_samples.append(data[:32].hex())
                    continue
                self.seen[k] = self.seen.get(k, 0) + 1
                self.arrivals.append((now, k[0], k[1]))
            if self.echo:
                try:
                    self.sock.sendto(data, src)
                except OSError:
                    pass

    def unique(self, tag=None):
        with self.lock:
            return sum(1 for k in self.seen if tag is None or k[0] == tag)

    def duplicates(self):
        with self.lock:
            return sum(c - 1 for c in self.seen.values())

    def has(self, tag, seq):
        with self.lock:
            return (tag, seq) in self.seen

    def first_after(self, t0, tag=None):
        with self.lock:
            for (t, tg, _) in self.arrivals:
                if t >= t0 and (tag is None or tg == tag):
                    return t
        return None

    def count_between(self, t0, t1, tag=None):
        with self.lock:
            return sum(1 for (t, tg, _) in self.arrivals
                       if t0 <= t < t1 and (tag is None or tg == tag))

    def close(self):
        self.stopped = True
        self.th.join(2)
        self.sock.close()


class Sender:
    """A local application in a thread: sends numbered datagrams (tag, seq) at `rate` per second to
    `to` from its own socket, and records the echoes that come back."""

    def __init__(self, to_host, to_port, rate, tag=None, size=(12, 1200), seed=1, src_host=None):
        fam = socket.AF_INET6 if ":" in to_host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((src_host or ("::1" if fam == socket.AF_INET6 else "127.0.0.1"), 0))
        self.to = (to_host, to_port)
        self.rate = rate
        self.tag = tag if tag is not None else random.getrandbits(32)
        self.rng = random.Random(seed)
        self.size = size
        self.lock = threading.Lock()
        self.sent = []  # monotonic send time per seq
        self.echoes = {}  # seq -> count
        self.echo_times = []  # (monotonic, seq)
        self.foreign = 0
        self.stopped = False
        self.paused = False
        self.tx = threading.Thread(target=self._send_loop, daemon=True)
        self.rx = threading.Thread(target=self._recv_loop, daemon=True)
        self.rx.start()

    def start(self, count=None):
        self.count = count
        self.tx.start()
        return self

    def _send_loop(self):
        t0 = time.monotonic()
        n = 0
        while not self.stopped and (self.count is None or n < self.count):
            due = t0 + n / self.rate
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            if self.paused:
                t0 = time.monotonic() - n / self.rate
                time.sleep(0.005)
                continue
            data = make_payload(self.tag, n, self.rng.randint(*self.size))
            # Recorded before sending: the echo may come back before sendto returns.
            with self.lock:
                self.sent.append(time.monotonic())
            try:
                self.sock.sendto(data, self.to)
            except OSError:
                pass  # the client may be down: the datagram is lost, which is measured
            n += 1

    def _recv_loop(self):
        self.sock.settimeout(0.1)
        while not self.stopped:
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                if self.stopped:
                    return
                continue
            now = time.monotonic()
            k = parse_payload(data)
            with self.lock:
                if k is None or k[0] != self.tag or k[1] >= len(self.sent):
                    self.foreign += 1
                    continue
                self.echoes[k[1]] = self.echoes.get(k[1], 0) + 1
                self.echo_times.append((now, k[1]))

    def nsent(self):
        with self.lock:
            return len(self.sent)

    def sent_between(self, t0, t1):
        with self.lock:
            return [i for i, t in enumerate(self.sent) if t0 <= t < t1]

    def first_echo_after(self, t0):
        with self.lock:
            for (t, _) in self.echo_times:
                if t >= t0:
                    return t
        return None

    def echoed(self, seqs):
        with self.lock:
            return sum(1 for s in seqs if s in self.echoes)

    def duplicates(self):
        with self.lock:
            return sum(c - 1 for c in self.echoes.values())

    def wait_done(self, timeout):
        self.tx.join(timeout)

    def close(self):
        self.stopped = True
        self.count = 0
        if self.tx.is_alive():
            self.tx.join(2)
        self.rx.join(2)
        self.sock.close()


def read_records(path):
    """The records of a bridge --record file: a list of datagrams."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i + 4 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        if i + 4 + n > len(data):
            break
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


WIRE_VERSION = 2
INIT, RESPONSE, DATA, COOKIE = 1, 2, 3, 4


def wire_type(d):
    """The outer type byte of a tunnel datagram (protocol 2): 1 INIT, 2 RESPONSE, 3 DATA,
    4 COOKIE; None for anything else."""
    return d[1] if len(d) >= 4 and d[0] == WIRE_VERSION else None
