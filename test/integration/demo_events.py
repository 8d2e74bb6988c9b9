#!/usr/bin/env python3
"""mptunnel demo as a person watches it: `--loss 20%' is taken like the bridge's; each second's
row shows the loss over the last second beside the total; blacking out path 1 (--kill-path) prints
a line when the client takes it for down (within 1.3 s of the blackout) and when it is up again;
Ctrl-C (SIGINT) during an endless run prints the summary, marked interrupted, and exits 0 within
3 s. A percentage over 100 is a usage error (exit 2)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MPT = os.environ.get("MPTUNNEL")
DEADLINE = time.monotonic() + 60
FAILURES = []


def check(cond, what):
    print("%s: %s" % (what, "ok" if cond else "FAIL"), flush=True)
    if not cond:
        FAILURES.append(what)


def main():
    if not MPT or not os.access(MPT, os.X_OK):
        print("SKIP: MPTUNNEL not set")
        return 77
    bad = subprocess.run([MPT, "demo", "--loss", "120%"], capture_output=True, text=True,
                         timeout=10)
    check(bad.returncode == 2 and "--loss" in bad.stderr,
          "--loss 120%% refused with exit 2 (%d: %s)" % (bad.returncode, bad.stderr.strip()))

    out = tempfile.NamedTemporaryFile(prefix="mpt-demo-events-", suffix=".out", delete=False)
    # Control sockets of our own, away from any other demo on this machine.
    rundir = tempfile.mkdtemp(prefix="mpt-demo-events-")
    env = dict(os.environ, RUNTIME_DIRECTORY=rundir)
    demo = subprocess.Popen([MPT, "demo", "--duration", "0", "--paths", "2", "--loss", "20%",
                             "--rate", "500", "--kill-path", "1.5"],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env)
    try:
        def text():
            with open(out.name) as f:
                return f.read()
        while time.monotonic() < DEADLINE - 20:
            if re.search(r"path 1 \(127\.0\.0\.1:\d+\) up again after", text()) and \
                    len(re.findall(r"^ +\d+s ", text(), re.M)) >= 6:
                break
            if demo.poll() is not None:
                break
            time.sleep(0.1)
        check(demo.poll() is None, "the demo with --duration 0 still runs")
        demo.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        try:
            rc = demo.wait(timeout=3)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        shutil.rmtree(rundir, ignore_errors=True)
    s = text()
    print(s)
    check(rc == 0, "exit status after SIGINT %s within %.2f s (must be 0 within 3 s)" % (rc, took))
    check("each losing 20.0% each way" in s, "--loss 20% means 0.2")
    check(re.search(r"Summary after [0-9.]+ s \(interrupted\): \d+ datagrams sent", s) is not None,
          "summary printed on SIGINT")
    check(re.search(r"end-to-end loss: one way [0-9.]+%, round trip [0-9.]+%", s) is not None,
          "summary has the end-to-end loss")
    check(re.search(r"last s +total +last s +total", s) is not None,
          "header: loss over the last second beside the total")
    rows = re.findall(r"^ +\d+s +\d+ +([0-9.]+)% +([0-9.]+)% +([0-9.]+)% +([0-9.]+)%", s, re.M)
    check(len(rows) >= 3, "rows with per-second and total loss: %d (at least 3)" % len(rows))
    m = re.search(r"path 1 \(127\.0\.0\.1:\d+\) down: the client noticed ([0-9.]+) s into the "
                  r"blackout", s)
    check(m is not None and float(m.group(1)) <= 1.3,
          "a line when path 1 goes down, noticed %s s into the blackout (limit 1.3)"
          % (m.group(1) if m else "never"))
    check(re.search(r"path 1 \(127\.0\.0\.1:\d+\) up again after [0-9.]+ s down", s) is not None,
          "a line when path 1 comes back")
    check(re.search(r"path 1 \(127\.0\.0\.1:\d+\) blacked out by the demo", s) is not None,
          "a line when the demo blacks path 1 out")
    os.unlink(out.name)
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
