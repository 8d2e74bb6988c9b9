#!/usr/bin/env python3
"""Integration test of `metrics = HOST:PORT': the Prometheus endpoints of a client and a server,
real processes on 127.0.0.1, read by Prometheus's own text parser (python3-prometheus-client).

app (this test) -> client -> path a -> server -> echo (this test)
                          -> path b ->

After N numbered datagrams sent and echoed, both /metrics answers must parse, hold every metric
family, and their figures must match the traffic: datagrams from and to the application and the
target, copies per path, duplicates dropped by the server, bytes at least the payload plus the
tunnel's overhead, both paths up with an RTT, one session, one handshake, one flow, nothing rejected.
Then hostile requests, each answered or closed as it should be: garbage (400), a huge header (431),
wrong path (404), wrong method (405), HEAD (no body), a request sent a byte at a time (closed by
the timeout, within 5 s +- 1.5 s), more connections than allowed (the extra ones closed at once),
and after all that the endpoint still answers and both processes still run, and stop at once
with a connection open. A server whose
metrics address is taken, or does not resolve, does not start and says why (file:line).

The parser is a Debian package, which the python3 on PATH may not see: the test runs itself again
under /usr/bin/python3. Exit 0 pass, 1 fail, 77 skip.
"""
import os
import socket
import subprocess
import sys
import time

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    if os.path.exists("/usr/bin/python3") and not os.environ.get("MPT_METRICS_REEXEC"):
        os.environ["MPT_METRICS_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: the Prometheus client library is missing (Debian: python3-prometheus-client)")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

N = 2000
RATE = 1000
SIZE = 200
OVERHEAD = 44  # bytes a datagram grows by in the tunnel (README)
TIMEOUT_S = 5.0  # MPT_METRICS_TIMEOUT_MS
MAX_CONNS = 16  # MPT_METRICS_MAX_CONNS

CLIENT_FAMILIES = {
    "mptunnel_info": "gauge", "mptunnel_uptime_seconds": "gauge",
    "mptunnel_session_established": "gauge", "mptunnel_flows": "gauge",
    "mptunnel_flows_max": "gauge", "mptunnel_path_state": "gauge",
    "mptunnel_path_rtt_seconds": "gauge", "mptunnel_path_rtt_variation_seconds": "gauge",
    "mptunnel_path_loss_ratio": "gauge", "mptunnel_path_sent_packets": "counter",
    "mptunnel_path_sent_bytes": "counter", "mptunnel_path_received_packets": "counter",
    "mptunnel_path_received_bytes": "counter", "mptunnel_path_probes_sent": "counter",
    "mptunnel_path_probes_acked": "counter", "mptunnel_data_packets": "counter",
    "mptunnel_data_copies": "counter", "mptunnel_handshakes": "counter",
    "mptunnel_received_packets": "counter", "mptunnel_received_bytes": "counter",
    "mptunnel_sent_packets": "counter", "mptunnel_sent_bytes": "counter",
    "mptunnel_app_received_packets": "counter", "mptunnel_app_sent_packets": "counter",
    "mptunnel_rejected_packets": "counter", "mptunnel_duplicate_packets": "counter",
    "mptunnel_send_errors": "counter", "mptunnel_gso_resent": "counter",
    "mptunnel_queue_full": "counter",
    "mptunnel_path_mtu_bytes": "gauge", "mptunnel_scrape_truncated": "gauge",
}
SERVER_FAMILIES = {k: v for k, v in CLIENT_FAMILIES.items()
                   if k not in ("mptunnel_session_established", "mptunnel_path_rtt_variation_seconds",
                                "mptunnel_path_probes_sent", "mptunnel_path_probes_acked",
                                "mptunnel_data_packets", "mptunnel_data_copies")}
SERVER_FAMILIES.update({"mptunnel_sessions": "gauge", "mptunnel_sessions_max": "gauge"})
REASONS = {"malformed", "unknown_session", "auth_failed", "replay", "over_limit", "no_session",
           "expired"}
KINDS = {"congestion", "too_big", "unreachable", "other"}


def tcp_port(t):
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in t.ports:
            t.ports.add(p)
            return p
    raise mptlib.Failed("no free TCP port")


def exchange(port, data, timeout=3.0, half_close=True):
    """Sends data, then reads until the server closes. Returns (bytes read, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before taking it all
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
    finally:
        s.close()
    return out, time.monotonic() - t0


def get(port, path="/metrics", method="GET"):
    """(status, headers dict, body text) of one request."""
    raw, _ = exchange(port, ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/plain\r\n\r\n"
                             % (method, path, port)).encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        raise mptlib.Failed("not an HTTP answer: %r" % raw[:200])
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body.decode("utf-8")


def scrape(t, port, who):
    status, headers, body = get(port)
    t.check("%s: status" % who, status, 200, "==")
    t.expect(headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
             "%s: Content-Type %s" % (who, headers.get("content-type")))
    t.check("%s: Content-Length" % who, int(headers.get("content-length", -1)),
            len(body.encode()), "==")
    fams = {}
    for f in text_string_to_metric_families(body):
        fams[f.name] = f
    return fams


def samples(fams, name, sample_name=None, **match):
    f = fams.get(name)
    if f is None:
        return []
    return [s for s in f.samples if (sample_name is None or s.name == sample_name) and
            all(s.labels.get(k) == v for k, v in match.items())]


def value(fams, name, sample_name=None, **match):
    ss = samples(fams, name, sample_name, **match)
    if len(ss) != 1:
        raise mptlib.Failed("%s%s: %d samples, expected 1" % (name, match, len(ss)))
    return ss[0].value


def check_families(t, fams, want, who):
    missing = [n for n in want if n not in fams]
    wrong = ["%s is %s" % (n, fams[n].type) for n, ty in want.items()
             if n in fams and fams[n].type != ty]
    t.expect(not missing and not wrong, "%s: %d families with their types%s" % (
        who, len(want), "" if not missing and not wrong else
        " (missing %s; %s)" % (missing, wrong)))
    t.check("%s: mptunnel_scrape_truncated" % who,
            int(value(fams, "mptunnel_scrape_truncated")), 0, "==")


def body(t):
    secret = t.genkey()
    target = mptlib.Target(echo=True)
    try:
        run(t, secret, target)
    finally:
        target.close()


def run(t, secret, target):
    sport, cport = t.port(), t.port()
    cmet, smet = tcp_port(t), tcp_port(t)
    srv = "127.0.0.1:%d" % sport
    cfg = t.write_config(
        "t.ini", secret, client_listen="127.0.0.1:%d" % cport, server_listen=srv,
        target=target.addr,
        extra_client=["metrics = 127.0.0.1:%d" % cmet, "control = " + t.path("c.sock"),
                      "[path a]", "bridge = " + srv, "[path b]", "bridge = " + srv],
        extra_server=["metrics = 127.0.0.1:%d" % smet, "control = " + t.path("s.sock")])
    server = t.server(cfg)
    client = t.client(cfg)
    t.wait_log(client, r"session \S+ established")

    sender = mptlib.Sender("127.0.0.1", cport, RATE, size=(SIZE, SIZE)).start(N)
    sender.wait_done(N / RATE + 10)
    time.sleep(0.5)  # the last echoes
    echoed = len(sender.echoes)
    sender.close()
    print("sent %d datagrams of %d bytes; target got %d unique; %d echoes back"
          % (N, SIZE, target.unique(), echoed), flush=True)

    c = scrape(t, cmet, "client")
    s = scrape(t, smet, "server")
    check_families(t, c, CLIENT_FAMILIES, "client")
    check_families(t, s, SERVER_FAMILIES, "server")

    # ---- client figures ----
    t.check("client: app received", value(c, "mptunnel_app_received_packets"), N, "==")
    t.check("client: app sent (echoes delivered)", value(c, "mptunnel_app_sent_packets"),
            echoed, "==")
    t.check("client: echoes back", echoed, int(N * 0.98), ">=")
    t.check("client: data packets", value(c, "mptunnel_data_packets"), N, "==")
    t.check("client: data copies", value(c, "mptunnel_data_copies"), 2 * N, "==")
    t.check("client: session established", value(c, "mptunnel_session_established"), 1, "==")
    t.check("client: handshakes", value(c, "mptunnel_handshakes"), 1, "==")
    t.check("client: flows", value(c, "mptunnel_flows"), 1, "==")
    for reason in REASONS:
        t.check("client: rejected %s" % reason,
                value(c, "mptunnel_rejected_packets", reason=reason), 0, "==")
    t.expect({s.labels["reason"] for s in samples(c, "mptunnel_rejected_packets")} == REASONS,
             "client: rejected reasons %s" % sorted(REASONS))
    for who, f in (("client", c), ("server", s)):
        kinds = {x.labels["kind"]: x.value for x in samples(f, "mptunnel_send_errors")}
        t.expect(set(kinds) == KINDS, "%s: send errors by kind %s" % (who, kinds))
        # Loopback with 4 MiB buffers at 1,000 datagrams/s: nothing refused.
        t.check("%s: send errors" % who, sum(kinds.values()), 0, "==")
        t.check("%s: queue full" % who, value(f, "mptunnel_queue_full"), 0, "==")
    names = {(s.labels["index"], s.labels["path"]) for s in samples(c, "mptunnel_path_sent_packets")}
    t.expect(names == {("1", "a"), ("2", "b")}, "client: paths labelled %s" % sorted(names))
    for idx in ("1", "2"):
        up = value(c, "mptunnel_path_state", index=idx, state="up")
        down = value(c, "mptunnel_path_state", index=idx, state="down")
        t.expect(up == 1 and down == 0, "client: path %s up (up=%g down=%g)" % (idx, up, down))
        rtt = value(c, "mptunnel_path_rtt_seconds", index=idx)
        t.expect(0 < rtt < 0.5, "client: path %s rtt %.6f s (0 < rtt < 0.5)" % (idx, rtt))
        for d in ("up", "down"):
            t.check("client: path %s loss %s" % (idx, d),
                    value(c, "mptunnel_path_loss_ratio", index=idx, direction=d), 0.05)
        # Loopback's route MTU.
        t.check("client: path %s MTU" % idx, value(c, "mptunnel_path_mtu_bytes", index=idx),
                1280, ">=")
        sent = value(c, "mptunnel_path_sent_packets", "mptunnel_path_sent_packets_total",
                     index=idx)
        probes = value(c, "mptunnel_path_probes_sent", index=idx)
        # A copy of every datagram, the probes, and a handshake or two.
        t.check("client: path %s sent packets" % idx, sent, N + probes, ">=")
        t.check("client: path %s sent packets" % idx, sent, N + probes + 4, "<=")
        t.check("client: path %s sent bytes" % idx,
                value(c, "mptunnel_path_sent_bytes", index=idx), N * (SIZE + OVERHEAD), ">=")
        rx = value(c, "mptunnel_path_received_packets", index=idx)
        t.check("client: path %s received packets" % idx, rx, echoed, ">=")
        t.check("client: path %s received bytes" % idx,
                value(c, "mptunnel_path_received_bytes", index=idx), echoed * (SIZE + OVERHEAD),
                ">=")
    t.check("client: duplicates dropped", value(c, "mptunnel_duplicate_packets"),
            int(echoed * 0.95), ">=")

    # ---- server figures ----
    t.check("server: sessions", value(s, "mptunnel_sessions"), 1, "==")
    # A session in redundant mode: the server holds neither fec mode's tables nor the reorder
    # buffer (each allocated when a session first needs it).
    for name in ("mptunnel_fec_decoder_bytes", "mptunnel_reorder_buffer_bytes",
                 "mptunnel_fec_encoders"):
        t.check("server: %s (redundant mode)" % name, value(s, name), 0, "==")
    t.check("server: handshakes", value(s, "mptunnel_handshakes"), 1, "==")
    t.check("server: flows", value(s, "mptunnel_flows"), 1, "==")
    t.check("server: to the target", value(s, "mptunnel_app_sent_packets"), target.unique(), "==")
    t.check("server: to the target", value(s, "mptunnel_app_sent_packets"), int(N * 0.98), ">=")
    t.check("server: from the target", value(s, "mptunnel_app_received_packets"), echoed, ">=")
    t.check("server: duplicates dropped", value(s, "mptunnel_duplicate_packets"), int(N * 0.95),
            ">=")
    for reason in REASONS:
        t.check("server: rejected %s" % reason,
                value(s, "mptunnel_rejected_packets", reason=reason), 0, "==")
    paths = samples(s, "mptunnel_path_received_packets", "mptunnel_path_received_packets_total")
    t.check("server: paths", len(paths), 2, "==")
    t.expect({p.labels["path"] for p in paths} == {"1", "2"} and
             all(p.labels["remote"].startswith("127.0.0.1:") and len(p.labels["session"]) == 16
                 for p in paths), "server: path labels %s" % [p.labels for p in paths])
    for p in paths:
        t.check("server: path %s received packets" % p.labels["path"], p.value, N, ">=")
        t.check("server: path %s sent packets" % p.labels["path"],
                value(s, "mptunnel_path_sent_packets", path=p.labels["path"]), echoed, ">=")
        t.check("server: path %s MTU" % p.labels["path"],
                value(s, "mptunnel_path_mtu_bytes", path=p.labels["path"]), 1280, ">=")
        t.check("server: path %s state up" % p.labels["path"],
                value(s, "mptunnel_path_state", path=p.labels["path"], state="up"), 1, "==")

    # ---- hostile requests ----
    raw, _ = exchange(cmet, b"\x00\xff\x16\x03\x01garbage\r\n\r\n")
    t.expect(raw.startswith(b"HTTP/1.1 400 "), "garbage: %r" % raw[:40])
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n"
    raw, _ = exchange(cmet, big)
    t.expect(raw.startswith(b"HTTP/1.1 431 "), "huge header: %r" % raw[:40])
    raw, _ = exchange(cmet, b"GET /" + b"m" * 5000 + b" HTTP/1.1\r\n\r\n")
    t.expect(raw.startswith(b"HTTP/1.1 414 "), "long URL: %r" % raw[:40])
    st, _, _ = get(cmet, "/nope")
    t.check("wrong path: status", st, 404, "==")
    st, _, _ = get(cmet, "/metricsx")
    t.check("near path: status", st, 404, "==")
    st, hd, _ = get(smet, "/metrics", "POST")
    t.check("POST: status", st, 405, "==")
    t.expect(hd.get("allow") == "GET, HEAD", "POST: Allow %s" % hd.get("allow"))
    st, hd, b = get(smet, "/metrics?x=1", "HEAD")
    t.expect(st == 200 and b == "" and int(hd.get("content-length", 0)) > 1000,
             "HEAD: status %d, no body, Content-Length %s" % (st, hd.get("content-length")))
    raw, _ = exchange(cmet, b"GET /metrics HTTP/2.0\r\n\r\n")
    t.expect(raw.startswith(b"HTTP/1.1 505 "), "HTTP/2.0: %r" % raw[:40])

    # A request a byte at a time, and a connection that never sends: closed by the timeout.
    slow = socket.create_connection(("127.0.0.1", cmet), timeout=10)
    idle = socket.create_connection(("127.0.0.1", smet), timeout=10)
    t0 = time.monotonic()
    slow.settimeout(0.4)
    req = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 100
    closed = None
    for i in range(len(req)):
        try:
            slow.send(req[i:i + 1])
            if slow.recv(1024) == b"":
                closed = time.monotonic() - t0
                break
        except socket.timeout:
            continue
        except OSError:
            closed = time.monotonic() - t0
            break
    slow.close()
    idle.settimeout(max(0.1, TIMEOUT_S + 3 - (time.monotonic() - t0)))
    try:
        idle_closed = time.monotonic() - t0 if idle.recv(1024) == b"" else None
    except OSError:
        idle_closed = time.monotonic() - t0
    idle.close()
    t.expect(closed is not None and TIMEOUT_S - 1.5 <= closed <= TIMEOUT_S + 1.5,
             "slow request closed after %s s (limit %.1f +- 1.5)" % (
                 "%.2f" % closed if closed else "never", TIMEOUT_S))
    t.expect(idle_closed is not None and TIMEOUT_S - 1.5 <= idle_closed <= TIMEOUT_S + 1.5,
             "idle connection closed after %s s (limit %.1f +- 1.5)" % (
                 "%.2f" % idle_closed if idle_closed else "never", TIMEOUT_S))

    # More connections than allowed: the extra ones are closed at once, without an answer.
    conns = [socket.create_connection(("127.0.0.1", smet), timeout=3) for _ in range(MAX_CONNS + 8)]
    time.sleep(0.3)
    shut = 0
    for sk in conns[MAX_CONNS:]:
        sk.settimeout(2)
        try:
            if sk.recv(1) == b"":
                shut += 1
        except OSError:
            shut += 1
    t.check("connections over the limit closed", shut, 8, "==")
    for sk in conns:
        sk.close()
    time.sleep(0.2)

    # An address that cannot be bound (the running server's) or resolved: no start, and why.
    for name, addr, want in (("busy", "127.0.0.1:%d" % smet, "cannot listen on 127.0.0.1:%d: "
                              % smet),
                             ("unresolved", "nosuch.invalid:9100",
                              "cannot resolve `nosuch.invalid'")):
        bad = t.write_config(name + ".ini", secret, server_listen="127.0.0.1:%d" % t.port(),
                             target=target.addr,
                             extra_server=["metrics = " + addr,
                                           "control = " + t.path(name + ".sock")])
        r = subprocess.run([mptlib.MPTUNNEL, "server", "-c", bad], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20,
                           preexec_fn=mptlib._child_setup)
        err = r.stderr.decode("utf-8", "replace")
        with open(bad) as f:
            lineno = [i + 1 for i, ln in enumerate(f) if ln.startswith("metrics =")][0]
        line = "%s:%d: metrics: %s" % (bad, lineno, want)
        t.expect(r.returncode == 1 and line in err and "Sanitizer" not in err,
                 "metrics %s: exit %d, `%s'" % (name, r.returncode, err.strip().splitlines()[-1]
                                                if err.strip() else ""))

    # Still serving, still running.
    c2 = scrape(t, cmet, "client after")
    s2 = scrape(t, smet, "server after")
    t.check("client after: app received", value(c2, "mptunnel_app_received_packets"), N, "==")
    t.check("server after: sessions", value(s2, "mptunnel_sessions"), 1, "==")
    t.expect(client.alive() and server.alive(), "client and server still running")
    # Connections still open when the processes are stopped (at the end, by SIGTERM) do not hold
    # them up: both must exit 0 within 3 s.
    t.open_conns = [socket.create_connection(("127.0.0.1", port), timeout=3)
                    for port in (cmet, smet)]
    t.open_conns[0].sendall(b"GET /metr")


mptlib.run(body, 90)
