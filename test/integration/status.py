#!/usr/bin/env python3
"""Integration test of the control socket and `mptunnel status`, real processes on 127.0.0.1.

app (this test) -> client -> bridge 1 -> server -> echo (this test)
                          -> bridge 2 ->

Checks: `status --json --client` validates against packaging/status-schema.json (with a small
validator written here: type, required, properties, items, enum, const, $ref, oneOf, allOf,
minimum) and says 2 paths up, RTT > 0, packets counted, session established; the same for the
server and for both sides at once; the socket file's mode is 0600; the human report has one row
per path with its state; a socket nobody answers on gives exit status 1 naming the path. Then a
blackout of bridge 1 (SIGUSR1) must show path 0 down within 1.3 s, and its end (SIGUSR2) up again
within 1.2 s; the measured times are printed. Every process started is killed at the end.

Environment: MPTUNNEL = the mptunnel binary, MPT_SRC = the source tree (for the schema).
Exit 0 pass, 1 fail, 77 skip.
"""
import json
import re
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

MPTUNNEL = os.environ.get("MPTUNNEL")
SRC = os.environ.get("MPT_SRC") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                "..", "..")
DEADLINE = time.monotonic() + 120
PROCS = []
# The configurations hold secrets, which mptunnel refuses in a file that others can read.
os.umask(0o077)
TMP = tempfile.mkdtemp(prefix="mpt-status-test-")
FAILURES = []


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    end = time.monotonic() + 3
    for p in PROCS:
        try:
            p.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what))
    if not cond:
        FAILURES.append(what)
    return cond


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(name, argv):
    err = open(os.path.join(TMP, name + ".err"), "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    p.name = name
    PROCS.append(p)
    return p


def log(name):
    with open(os.path.join(TMP, name + ".err"), "rb") as f:
        return f.read().decode("utf-8", "replace")


def status(cfg, *args, timeout=5):
    r = subprocess.run([MPTUNNEL, "status", "-c", cfg] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


# ---- a minimal JSON Schema validator (the keywords our schema uses) ----

def validate(doc, schema, root=None, where="$"):
    """Returns a list of errors."""
    root = root if root is not None else schema
    errs = []
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        errs += validate(doc, target, root, where)
    for sub in schema.get("allOf", []):
        errs += validate(doc, sub, root, where)
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not validate(doc, s, root, where)]
        if len(ok) != 1:
            errs.append("%s: matches %d of oneOf" % (where, len(ok)))
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        def is_type(t):
            return {
                "object": isinstance(doc, dict),
                "array": isinstance(doc, list),
                "string": isinstance(doc, str),
                "boolean": isinstance(doc, bool),
                "null": doc is None,
                "integer": isinstance(doc, int) and not isinstance(doc, bool),
                "number": isinstance(doc, (int, float)) and not isinstance(doc, bool),
            }[t]
        if not any(is_type(t) for t in types):
            errs.append("%s: %r is not %s" % (where, doc, "/".join(types)))
            return errs
    if "const" in schema and doc != schema["const"]:
        errs.append("%s: %r != %r" % (where, doc, schema["const"]))
    if "enum" in schema and doc not in schema["enum"]:
        errs.append("%s: %r not in %r" % (where, doc, schema["enum"]))
    if "minimum" in schema and isinstance(doc, (int, float)) and not isinstance(doc, bool):
        if doc < schema["minimum"]:
            errs.append("%s: %r < %r" % (where, doc, schema["minimum"]))
    if isinstance(doc, dict):
        for k in schema.get("required", []):
            if k not in doc:
                errs.append("%s: missing %s" % (where, k))
        for k, sub in schema.get("properties", {}).items():
            if k in doc:
                errs += validate(doc[k], sub, root, where + "." + k)
    if isinstance(doc, list) and "items" in schema:
        for i, v in enumerate(doc):
            errs += validate(v, schema["items"], root, "%s[%d]" % (where, i))
    return errs


def echo_server(sock, stop):
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        except OSError:
            return
        sock.sendto(data, addr)


def wait_for(what, fn, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def client_doc(cfg):
    rc, out, err = status(cfg, "--json", "--client")
    if rc != 0:
        return None
    return json.loads(out)


def main():
    if not MPTUNNEL or not os.access(MPTUNNEL, os.X_OK):
        print("skip: MPTUNNEL not set")
        return 77
    with open(os.path.join(SRC, "packaging", "status-schema.json")) as f:
        schema = json.load(f)
    secret = subprocess.run([MPTUNNEL, "genkey"], stdout=subprocess.PIPE, check=True,
                            timeout=10).stdout.decode().strip()

    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    target = echo.getsockname()[1]
    stop = threading.Event()
    threading.Thread(target=echo_server, args=(echo, stop), daemon=True).start()

    sport, b1, b2, cport = free_port(), free_port(), free_port(), free_port()
    csock, ssock = os.path.join(TMP, "c.sock"), os.path.join(TMP, "run", "s.sock")
    cfg = os.path.join(TMP, "tunnel.ini")
    with open(cfg, "w") as f:
        f.write("[tunnel]\nsecret = %s\n\n[client]\nlisten = 127.0.0.1:%d\n"
                "bridge = 127.0.0.1:%d\nbridge = 127.0.0.1:%d\ncontrol = %s\n\n"
                "[server]\nlisten = 127.0.0.1:%d\ntarget = 127.0.0.1:%d\ncontrol = %s\n"
                % (secret, cport, b1, b2, csock, sport, target, ssock))

    start("server", [MPTUNNEL, "server", "-c", cfg])
    bridge1 = start("bridge1", [MPTUNNEL, "bridge", "--listen", "127.0.0.1:%d" % b1, "--to",
                                "127.0.0.1:%d" % sport])
    start("bridge2", [MPTUNNEL, "bridge", "--listen", "127.0.0.1:%d" % b2, "--to",
                      "127.0.0.1:%d" % sport])
    wait_for("bridges", lambda: "listening" in log("bridge1") and "listening" in log("bridge2"),
             5)
    start("client", [MPTUNNEL, "client", "-c", cfg])
    wait_for("control sockets", lambda: os.path.exists(csock) and os.path.exists(ssock), 5)

    # Traffic through the tunnel, echoed back.
    app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    app.settimeout(0.5)
    received = 0
    for i in range(50):
        app.sendto(b"%04d" % i + b"x" * 200, ("127.0.0.1", cport))
        try:
            while True:
                app.recvfrom(65535)
                received += 1
                app.settimeout(0.001)
        except socket.timeout:
            app.settimeout(0.5)
        time.sleep(0.01)
    app.settimeout(1.0)
    try:
        while received < 50:
            app.recvfrom(65535)
            received += 1
    except socket.timeout:
        pass
    check(received >= 45, "echoed through the tunnel: %d of 50" % received)

    def ready():
        d = client_doc(cfg)
        if d and all(p["state"] == "up" and p["rtt_ms"] for p in d["paths"]) and \
                d["paths"][0]["tx"]["bps"] > 0:
            return d
        return None
    doc = wait_for("both paths up with an RTT and a rate", ready, 5)

    # The client's document.
    errs = validate(doc, schema)
    check(not errs, "client document valid against the schema %s" % errs[:3])
    check(doc["schema"] == "mptunnel-status/2" and doc["role"] == "client", "schema and role")
    check(len(doc["paths"]) == 2, "2 paths: %d" % len(doc["paths"]))
    check(all(p["state"] == "up" for p in doc["paths"]),
          "both up: %s" % [p["state"] for p in doc["paths"]])
    check(all(p["rtt_ms"] > 0 for p in doc["paths"]),
          "RTT > 0: %s ms" % [p["rtt_ms"] for p in doc["paths"]])
    check(all(p["tx"]["packets"] >= 50 and p["rx"]["packets"] > 0 for p in doc["paths"]),
          "packets counted per path: tx %s, rx %s" % ([p["tx"]["packets"] for p in doc["paths"]],
                                                      [p["rx"]["packets"] for p in doc["paths"]]))
    check(doc["session"]["state"] == "established" and len(doc["session"]["id"]) == 16,
          "session established: %s" % doc["session"])
    check(doc["flows"]["used"] == 1, "1 flow: %s" % doc["flows"])
    check(doc["counters"]["app_rx"] == 50, "50 datagrams from the application: %d"
          % doc["counters"]["app_rx"])
    check(doc["counters"]["copies_per_packet"] is not None and
          1.0 <= doc["counters"]["copies_per_packet"] <= 2.0,
          "copies per packet %s" % doc["counters"]["copies_per_packet"])
    check(doc["rejected"]["auth_failed"] == 0 and doc["rejected"]["malformed"] == 0,
          "nothing rejected as malformed or forged: %s" % doc["rejected"])
    # Loopback's route MTU (the kernel says 65,535) for each path; nothing failed to send.
    check(all(p.get("mtu") == 65535 and p.get("max_payload") == 65535 - 72 for p in doc["paths"]),
          "path MTU and largest whole datagram: %s"
          % [(p.get("mtu"), p.get("max_payload")) for p in doc["paths"]])
    check(all(p.get("send_errors", {}).get("total") == 0 for p in doc["paths"]) and
          doc.get("send_errors", {}).get("total") == 0,
          "no send errors: %s" % doc.get("send_errors"))
    mode = stat.S_IMODE(os.lstat(csock).st_mode)
    check(mode == 0o600, "client socket mode %o" % mode)
    mode = stat.S_IMODE(os.lstat(ssock).st_mode)
    check(mode == 0o600, "server socket mode %o" % mode)
    mode = stat.S_IMODE(os.lstat(os.path.dirname(ssock)).st_mode)
    check(mode == 0o700, "directory made for the server socket: mode %o" % mode)

    # The server's, and both at once.
    rc, out, err = status(cfg, "--json", "--server")
    sdoc = json.loads(out) if rc == 0 else {}
    check(rc == 0 and not validate(sdoc, schema), "server document valid: %s"
          % validate(sdoc, schema)[:3])
    sess = sdoc.get("sessions", {}).get("list", [])
    check(len(sess) == 1 and len(sess[0]["paths"]) == 2 and sess[0]["flows"] == 1 and
          sess[0]["id"] == doc["session"]["id"],
          "server: 1 session, the client's, 2 paths, 1 flow")
    check(all(p["rx"]["packets"] > 0 and p["client_path"] in (0, 1) for p in sess[0]["paths"]),
          "server: packets per path, client path indexes known")
    check(sdoc.get("send_errors", {}).get("total") == 0, "server: no send errors: %s"
          % sdoc.get("send_errors"))
    check(all(p.get("mtu") == 65535 for p in sess[0]["paths"]) if sess else False,
          "server: each path's route MTU")
    rc, out, err = status(cfg, "--json")
    both = json.loads(out) if rc == 0 else {}
    check(rc == 0 and set(both) == {"client", "server"} and
          not validate(both["client"], schema) and not validate(both["server"], schema),
          "both sides: {client, server}")

    # The readable report.
    rc, out, err = status(cfg, "--client")
    rows = [l.split() for l in out.splitlines() if re.match(r"\d+ ", l)]
    check(rc == 0 and len(rows) == 2, "report: 2 path rows\n" + out)
    check([r[:2] for r in rows] == [["1", "127.0.0.1:%d" % b1], ["2", "127.0.0.1:%d" % b2]] and
          [r[2] for r in rows] == ["up", "up"], "report rows: %s" % [r[:3] for r in rows])
    check(max(len(l) for l in out.splitlines() if "tunnel.ini" not in l) <= 100,
          "report: every line but the file's within 100 columns")
    check("session established" in out and "rejected:" in out, "report: session and rejected")
    check("MTU (whole datagrams up to): 1 65535 (65463), 2 65535 (65463)" in out,
          "report: each path's MTU and largest whole datagram")
    check("send errors: none" in out, "report: send errors")

    # Nobody answering: exit 1, naming the path.
    bad = os.path.join(TMP, "bad.ini")
    with open(bad, "w") as f:
        f.write("[tunnel]\nsecret = %s\n[client]\nlisten = 127.0.0.1:1\nbridge = 127.0.0.1:2\n"
                "control = %s/none.sock\n" % (secret, TMP))
    rc, out, err = status(bad)
    check(rc == 1 and "none.sock" in err, "no answer: status %d, %s" % (rc, err.strip()))
    rc, out, err = status(bad, "--server")
    check(rc == 2, "--server without a [server] section: status %d" % rc)

    # Blackout of bridge 1, then its end.
    # The change is timed by the document itself (how long the path has been in its state), so
    # that the latency of polling `mptunnel status' on a loaded host does not count.
    seen = {}

    def path0(state):
        d = client_doc(cfg)
        if d is None or d["paths"][0]["state"] != state:
            return False
        seen["at"] = time.monotonic() - (d["paths"][0].get("state_ms") or 0) / 1000.0
        return True
    t0 = time.monotonic()
    bridge1.send_signal(signal.SIGUSR1)
    try:
        wait_for("path 0 down", lambda: path0("down"), 3)
        t_down = seen["at"] - t0
    except RuntimeError:
        t_down = float("inf")
    d = client_doc(cfg)
    check(t_down <= 1.3, "path 0 down %.3f s after the blackout (limit 1.3 s)" % t_down)
    check(d is not None and d["paths"][1]["state"] == "up", "path 1 still up")
    t0 = time.monotonic()
    bridge1.send_signal(signal.SIGUSR2)
    try:
        wait_for("path 0 up", lambda: path0("up") or path0("lossy"), 3)
        t_up = seen["at"] - t0
    except RuntimeError:
        t_up = float("inf")
    check(t_up <= 1.2, "path 0 up again %.3f s after the blackout ended (limit 1.2 s)" % t_up)

    # Stopping removes the socket files.
    for p in PROCS:
        if p.name in ("client", "server"):
            p.send_signal(signal.SIGTERM)
    for p in PROCS:
        if p.name in ("client", "server"):
            try:
                rc = p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc == 0, "%s exits 0 on SIGTERM: %s" % (p.name, rc))
    check(not os.path.exists(csock) and not os.path.exists(ssock), "socket files removed")
    stop.set()
    return 1 if FAILURES else 0


if __name__ == "__main__":
    try:
        status_code = main()
    except Exception as e:  # a crash is a failure, with its reason
        import traceback
        traceback.print_exc()
        for p in PROCS:
            sys.stderr.write("--- %s ---\n%s\n" % (p.name, log(p.name)[-1500:]))
        status_code = 1
    finally:
        cleanup()
    if FAILURES:
        print("FAILED: %d check(s)" % len(FAILURES))
    sys.exit(status_code)
