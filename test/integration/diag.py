#!/usr/bin/env python3
"""What an operator sees when the tunnel does not come up, and what -v and systemd get.

1. A client whose secret differs from the server's: within 5 s it warns that nothing answers,
   naming the handshakes sent, each path and its address, and the likely causes; the server logs
   the failed handshakes by source, once (then summed up every minute), so a wrong secret shows on
   both ends.
2. A client whose only path points at a port where nothing listens, started as systemd would
   (JOURNAL_STREAM naming its stderr): its warning comes within 5 s, the next ones at doubling
   intervals (2 in the first 11 s); every line has an sd-daemon `<N>' priority prefix and
   no timestamp of its own. `mptunnel status' says "no answer for N s", and its report fits 100
   columns. A JOURNAL_STREAM that names another file changes nothing (timestamps stay); a
   configuration error under the journal has priority 3.
3. A working tunnel at -v: handshakes, paths up (named by [path NAME], numbered from 1), flows
   opened and closed (flow_timeout = 1s) on both ends; no timestamp is missing. Its second path
   points at a dead port: a warning about that path alone after 5 s.
"""
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

FIRST_LIMIT = 5.0
WIDTH = 100
TS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (error|warn|info|debug): ")
PRIO = re.compile(r"^<[3467]>")


def first_time(t, pr, regex, limit):
    """Seconds from the process's start to the first log line matching regex (waits limit+1)."""
    rx = re.compile(regex)
    end = pr.started + limit + 1.0
    while time.monotonic() < end:
        if rx.search(pr.log()):
            return time.monotonic() - pr.started
        time.sleep(0.05)
    return float("inf")


def start_journal(t, name, argv, journal_file=None):
    """Starts argv with JOURNAL_STREAM set to the device:inode of its own stderr file (or of
    journal_file, to check that a stream naming another file is ignored)."""
    err = t.path(name + ".err")
    open(err, "ab").close()
    st = os.stat(journal_file or err)
    old = os.environ.get("JOURNAL_STREAM")
    os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    try:
        return t.start(name, argv)
    finally:
        if old is None:
            del os.environ["JOURNAL_STREAM"]
        else:
            os.environ["JOURNAL_STREAM"] = old


def body(t):
    M = mptlib.MPTUNNEL
    sport, dead = t.port(), t.port()
    secret, other = t.genkey(), t.genkey()
    echo_port = t.port()
    echo = t.echo("echo", "127.0.0.1:%d" % echo_port)
    scfg = t.write_config("server.ini", secret, server_listen="127.0.0.1:%d" % sport,
                          target="127.0.0.1:%d" % echo_port,
                          extra_server=["flow_timeout = 1s",
                                        "control = " + t.path("server.sock")])
    server = t.start("server", [M, "server", "-c", scfg, "-v"], ready=r"server listening")

    # 1. A different secret.
    wcfg = t.write_config("wrong-secret.ini", other, client_listen="127.0.0.1:%d" % t.port(),
                          bridges=["127.0.0.1:%d" % sport],
                          extra_client=["control = " + t.path("wrong-secret.sock")])
    wrong = t.start("wrong-secret", [M, "client", "-c", wcfg])
    # 2. Nothing listens at the path's port; started as by systemd.
    dcfg = t.write_config("dead-port.ini", secret, client_listen="127.0.0.1:%d" % t.port(),
                          bridges=["127.0.0.1:%d" % dead],
                          extra_client=["control = " + t.path("dead-port.sock")])
    dead_client = start_journal(t, "dead-port", [M, "client", "-c", dcfg, "-v"])
    # The same, but JOURNAL_STREAM names another file: not the journal.
    ocfg = t.write_config("other-stream.ini", secret, client_listen="127.0.0.1:%d" % t.port(),
                          bridges=["127.0.0.1:%d" % dead],
                          extra_client=["control = " + t.path("other-stream.sock")])
    other_stream = start_journal(t, "other-stream", [M, "client", "-c", ocfg],
                                 journal_file=scfg)

    tw = first_time(t, wrong, r"no answer from the server", FIRST_LIMIT)
    t.check("wrong secret: client's first warning after (s)", tw, FIRST_LIMIT, fmt="%.2f")
    ts = first_time(t, server, r"failed authentication", FIRST_LIMIT)
    t.check("wrong secret: server's auth-failure line after the client started (s)",
            ts + server.started - wrong.started, FIRST_LIMIT, fmt="%.2f")
    td = first_time(t, dead_client, r"no answer from the server", FIRST_LIMIT)
    t.check("dead port: client's first warning after (s)", td, FIRST_LIMIT, fmt="%.2f")

    wlog = wrong.log()
    m = re.search(r"warn: (no answer from the server.*)", wlog)
    line = m.group(1) if m else ""
    print("client says: %s" % line)
    t.expect(re.search(r"\d+ handshakes sent on 1 path", line) is not None,
             "the warning counts the handshakes sent and the paths")
    t.expect("(path 1 (127.0.0.1:%d))" % sport in line,
             "the warning names path 1 by its address")
    for cause in ("not running", "wrong address or port", "different secret", "firewall"):
        t.expect(cause in line, "the warning lists the likely cause `%s'" % cause)
    slog = server.log()
    m = re.search(r"warn: (.*failed authentication.*)", slog)
    print("server says: %s" % (m.group(1) if m else ""))
    t.expect(m is not None and "127.0.0.1" in m.group(1) and "different secret" in m.group(1),
             "the server's line names the source and a different secret")

    # The server's status names the source whose handshakes fail.
    out = subprocess.run([M, "status", "-c", scfg], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=10).stdout.decode()
    print(out, end="")
    t.expect(re.search(r"^failed authentication: \d+ from 127\.0\.0\.1:\d+, last ", out, re.M)
             is not None, "server status: the source failing authentication")
    t.check("server status width, but for the configuration's path (columns)",
            max(len(x) for x in out.splitlines() if scfg not in x), WIDTH)

    # Status of the client that gets no answer; its report fits 100 columns.
    time.sleep(max(0, dead_client.started + 6.0 - time.monotonic()))
    out = subprocess.run([M, "status", "-c", dcfg], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=10).stdout.decode()
    print(out, end="")
    m = re.search(r"no answer for (\d+(\.\d)?) s", out)
    t.expect(m is not None and float(m.group(1)) >= 5, "status says `no answer for N s' (N >= 5)")
    t.expect("never ago" not in out, "status never says `never ago'")
    widest = max(len(x) for x in out.splitlines() if dcfg not in x)
    t.check("status report width, but for the configuration's path (columns)", widest, WIDTH)

    # Calm rate: by 11 s, the reports at 3 s and 9 s only (the next at 21 s).
    time.sleep(max(0, dead_client.started + 11.0 - time.monotonic()))
    n = len(re.findall(r"no answer from the server", dead_client.log()))
    t.check("dead port: warnings in the first 11 s (at 3 s and 9 s)", n, 3)
    t.check("dead port: warnings in the first 11 s (at 3 s and 9 s)", n, 2, ">=")
    n = len(re.findall(r"failed authentication", server.log()))
    t.check("server: auth-failure lines for one source within 10 s", n, 1)
    t.check("wrong secret: server counts the failed handshakes (lines logged)", n, 1, ">=")

    jlog = dead_client.log().splitlines()
    bad = [x for x in jlog if not PRIO.match(x)]
    t.check("journal: lines without a <N> prefix", len(bad), 0)
    t.check("journal: lines with a timestamp", sum(1 for x in jlog if re.search(
        r"\d\d:\d\d:\d\d\.\d{3}", x)), 0)
    t.expect(any(x.startswith("<4>no answer from the server") for x in jlog),
             "journal: the warning has priority 4")
    t.expect(any(x.startswith("<6>client listening") for x in jlog),
             "journal: info lines have priority 6")
    t.expect(any(x.startswith("<7>handshake") for x in jlog), "journal: -v debug lines have 7")
    # A configuration error under systemd is an error in the journal too.
    bad = t.path("bad.ini")
    with open(bad, "w") as f:
        f.write("[tunnel]\nsecret = %s\n[client]\nlisten = 127.0.0.1:1\nbridge = nowhere\n" % secret)
    os.chmod(bad, 0o600)
    with open(t.path("bad.err"), "wb") as errf:
        st = os.fstat(errf.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        rc = subprocess.run([M, "client", "-c", bad], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=errf, env=env, timeout=10).returncode
    with open(t.path("bad.err")) as f:
        first = f.readline().rstrip("\n")
    print("configuration error under the journal: %s (exit %d)" % (first, rc))
    t.expect(rc == 2 and first.startswith("<3>mptunnel client: ") and "bad.ini:5: bridge" in first,
             "journal: a configuration error has priority 3 and names file:line")
    olog = other_stream.log().splitlines()
    t.expect(len(olog) > 0 and all(TS.match(x) for x in olog),
             "JOURNAL_STREAM naming another file: timestamps kept")
    for pr in (wrong, dead_client, other_stream):
        t.stop(pr)

    # 3. A working tunnel at -v.
    cport = t.port()
    ccfg = t.path("good.ini")
    with open(ccfg, "w") as f:
        f.write("[tunnel]\nsecret = %s\nsndbuf = %s\nrcvbuf = %s\n\n[client]\nlisten = 127.0.0.1:%d\n"
                "flow_timeout = 1s\ncontrol = %s\n\n[path direct]\nbridge = 127.0.0.1:%d\n\n"
                "[path spare]\nbridge = 127.0.0.1:%d\n"
                % (secret, mptlib.BUFSIZE, mptlib.BUFSIZE, cport, t.path("good.sock"), sport, dead))
    client = t.start("good", [M, "client", "-c", ccfg, "-v"], ready=r"client listening")
    t.warm_up("127.0.0.1:%d" % cport)
    t.wait_log(client, r"path 1 up \(direct\)", timeout=5)
    t.wait_log(client, r"debug: flow \d+ opened for 127\.0\.0\.1:\d+", timeout=5)
    t.wait_log(server, r"debug: flow \d+ of session [0-9a-f]{16} opened", timeout=5)
    t.wait_log(client, r"debug: flow \d+ of 127\.0\.0\.1:\d+ closed after", timeout=5)
    t.wait_log(server, r"debug: flow \d+ of session [0-9a-f]{16} closed", timeout=5)
    clog = client.log()
    t.expect(re.search(r"session [0-9a-f]{16} established, .* \(path 1 \(direct\) answered",
                       clog) is not None, "-v: the handshake names the path that answered")
    t.expect(all(TS.match(x) for x in clog.splitlines()), "-v: every line has a timestamp")
    out = subprocess.run([M, "status", "-c", ccfg], stdout=subprocess.PIPE, timeout=10)
    text = out.stdout.decode()
    print(text, end="")
    t.expect(re.search(r"^1 direct +up ", text, re.M) is not None,
             "status names the path `1 direct'")
    # The spare path never answers while the direct one does: a warning after 5 s.
    t.wait_log(client, r"warn: path 2 \(spare\) -> 127\.0\.0\.1:%d: no answer for 5 s while "
               r"other paths answer" % dead, timeout=8)
    t.check("one path silent: warnings about it", len(re.findall(r"while other paths answer",
                                                                 client.log())), 1)
    t.stop(client)
    t.stop_echo(echo)


mptlib.run(body, 80)
