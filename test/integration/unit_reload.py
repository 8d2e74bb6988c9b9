#!/usr/bin/env python3
"""The client unit's reload, without systemd: its ExecStartPre makes the private copy of the file
(mode 0400, owned by the runtime directory's owner), ExecStart runs on it, and after an edit of
the file in /etc its ExecReload makes a new copy and sends SIGHUP, which the client applies (the
path's bridge moves). The unit's command lines are run as systemd would, their specifiers and
variables expanded, with /etc/mptunnel and /run/mptunnel moved into the test's directory."""
import os
import shlex
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

SRC = os.environ.get("MPT_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "..", ".."))
UNIT = os.path.join(SRC, "packaging", "systemd", "mptunnel-client@.service")
NAME = "tun"


def unit_lines(path):
    """{key: [values]} of the [Service] section."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def expand(t, cmd, mainpid=None):
    """A command line as systemd runs it: `+' dropped, specifiers then variables expanded."""
    cmd = cmd.lstrip("+")
    cmd = cmd.replace("%i", NAME).replace("%%", "%")
    if mainpid is not None:
        cmd = cmd.replace("$MAINPID", str(mainpid))
    cmd = cmd.replace("$$", "$")
    cmd = cmd.replace("/run/mptunnel", t.path("run")).replace("/etc/mptunnel", t.path("etc"))
    cmd = cmd.replace("/usr/bin/mptunnel", mptlib.MPTUNNEL)
    return shlex.split(cmd)


def body(t):
    svc = unit_lines(UNIT)
    for key in ("ExecStartPre", "ExecStart", "ExecReload"):
        t.expect(key in svc, "the unit has %s" % key)
    t.expect(svc.get("Type") == ["notify"], "Type=notify (%s)" % svc.get("Type"))
    t.expect("WatchdogSec" in svc, "WatchdogSec= set")
    os.mkdir(t.path("etc"))
    os.mkdir(t.path("run"))
    secret = t.genkey()
    cport, sport, aport, bport = t.port(), t.port(), t.port(), t.port()
    tgt = mptlib.Target("127.0.0.1", echo=True)

    def write(bridge_port):
        lines = ["[tunnel]", "secret = " + secret, "[client]", "listen = 127.0.0.1:%d" % cport,
                 "control = " + t.path("client.sock"), "[path wan]",
                 "bridge = 127.0.0.1:%d" % bridge_port,
                 "[server]", "listen = 127.0.0.1:%d" % sport, "target = " + tgt.addr,
                 "control = " + t.path("server.sock")]
        path = os.path.join(t.path("etc"), NAME + ".ini")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path + ".tmp", 0o600)
        os.rename(path + ".tmp", path)

    write(aport)
    server = t.server(os.path.join(t.path("etc"), NAME + ".ini"))
    t.bridge("relay-a", "127.0.0.1:%d" % aport, "127.0.0.1:%d" % sport)
    t.bridge("relay-b", "127.0.0.1:%d" % bport, "127.0.0.1:%d" % sport)

    for cmd in svc["ExecStartPre"]:
        r = subprocess.run(expand(t, cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        t.check("ExecStartPre: exit status", r.returncode, 0, "==")
    copy = os.path.join(t.path("run"), "client", NAME + ".ini")
    st = os.stat(copy)
    t.check("private copy: mode (0400 = 256)", stat.S_IMODE(st.st_mode), 0o400, "==")
    t.check("private copy: owner (that of the runtime directory)", st.st_uid,
            os.stat(t.path("run")).st_uid, "==")
    client = t.start("client", expand(t, svc["ExecStart"][0]), ready=r"client listening")
    snd = mptlib.Sender("127.0.0.1", cport, 100, seed=5).start()
    time.sleep(1.0)
    t.expect(snd.first_echo_after(0) is not None, "traffic through the tunnel")

    write(bport)
    n = len(client.log())
    for cmd in svc["ExecReload"]:
        r = subprocess.run(expand(t, cmd, mainpid=client.pid), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        t.check("ExecReload: exit status", r.returncode, 0, "==")
    t.wait_log(client, r"path 1 \(wan\) -> 127\.0\.0\.1:%d: moved from 127\.0\.0\.1:%d"
               % (bport, aport), timeout=5)
    t.expect("client reloaded" in client.log()[n:], "client reloaded")
    with open(copy) as f:
        t.expect("bridge = 127.0.0.1:%d" % bport in f.read(), "the copy is the edited file")
    t.check("private copy after the reload: mode (0400 = 256)",
            stat.S_IMODE(os.stat(copy).st_mode), 0o400, "==")
    t_re = time.monotonic()
    time.sleep(1.0)
    seqs = snd.sent_between(t_re, time.monotonic() - 0.3)
    t.check("datagrams lost after the reload", len(seqs) - snd.echoed(seqs), 2)
    t.expect(client.alive() and server.alive(), "client and server alive")
    snd.close()
    tgt.close()


mptlib.run(body, 60)
