"""mptunnel demo runs the whole tunnel on loopback: it finishes with exit 0, its summary shows
end-to-end loss far below one path's, no duplicate or corrupted datagram, and `mptunnel status
--demo` reads the paths' live state while it runs."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

MPT = os.environ["MPTUNNEL"]


def main():
    t0 = time.monotonic()
    # Control sockets of our own: another demo on this machine must not answer our status query.
    rundir = tempfile.mkdtemp(prefix="mpt-demo-test-")
    env = dict(os.environ, RUNTIME_DIRECTORY=rundir)
    demo = subprocess.Popen([MPT, "demo", "--duration", "6", "--rate", "1000", "--loss", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        time.sleep(3)
        st = subprocess.run([MPT, "status", "--demo", "--client", "--json"], capture_output=True,
                            text=True, timeout=10, env=env)
        assert st.returncode == 0, st.stderr
        doc = json.loads(st.stdout)
        states = [p["state"] for p in doc["paths"]]
        losses = [p["loss"]["up"] for p in doc["paths"]]
        print("status --demo: %d paths, states %s, loss -> %s" %
              (len(states), states, ["%.3f" % x for x in losses]))
        assert len(states) == 3 and all(s in ("up", "lossy") for s in states)
        # Each path loses 20% each way: the client's own estimate says so.
        assert all(0.10 <= x <= 0.30 for x in losses), losses
        out, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        shutil.rmtree(rundir, ignore_errors=True)
    print(out)
    assert demo.returncode == 0, "demo exit status %d" % demo.returncode
    m = re.search(r"one way ([0-9.]+)%, round trip ([0-9.]+)%", out)
    assert m, "no summary"
    one_way, rtt = float(m.group(1)) / 100, float(m.group(2)) / 100
    m = re.search(r"duplicates delivered: (\d+), corrupted: (\d+)", out)
    dups, corrupt = int(m.group(1)), int(m.group(2))
    # 3 paths at p = 0.2: p^3 = 0.008 one way; 6000 datagrams leave room for chance.
    print("end-to-end loss one way %.4f (limit 0.02), round trip %.4f (limit 0.04), "
          "duplicates %d, corrupted %d, %.1f s" % (one_way, rtt, dups, corrupt,
                                                   time.monotonic() - t0))
    assert one_way <= 0.02 and rtt <= 0.04 and dups == 0 and corrupt == 0


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
