#!/usr/bin/env python3
"""Local hardening, on the real binary: a secret that others can read is refused (exit 2, a
message naming the file and `chmod 600'), unless `insecure_permissions = yes'; a bad secret is
never echoed; a control directory that others may write to is not used; and the keys of a running
client and server sit in locked memory that core dumps leave out (the kernel's VmLck and the
VmFlags `lo' and `dd' of its mappings, read from /proc/PID)."""
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

# Looks like a key, is not one (48 bytes): what a user may paste where a secret goes.
KEY48 = "q3Jv7TzW9pL2xK8mN4bV6cR1sY5uH0gE3fD7aQ9wZ2iO6kP8jM4nB1vC5xL7tS3r"


def run_cmd(t, role, cfg):
    p = subprocess.run([mptlib.MPTUNNEL, role, "-c", cfg], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return p.returncode, p.stderr.decode(errors="replace")


def write(path, text, mode):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def server_ini(t, secret_line, extra=""):
    return ("[tunnel]\n%s\n%s[server]\nlisten = 127.0.0.1:%d\ntarget = 127.0.0.1:%d\n"
            "control = %s\n" % (secret_line, extra, t.port(), t.port(),
                                t.path("s%d.sock" % t.port())))


def refused_secrets(t):
    secret = t.genkey()
    sec = t.path("secret")
    cfg = t.path("tunnel.ini")
    write(sec, secret + "\n", 0o644)
    write(cfg, server_ini(t, "secret_file = secret"), 0o644)
    rc, err = run_cmd(t, "server", cfg)
    t.check("world-readable secret_file: exit status", rc, 2, "==")
    t.expect("tunnel.ini:2: secret_file: `%s' can be read by others (mode 0644): run `chmod 600 %s'"
             % (sec, sec) in err, "message names the secret file and `chmod 600': " + err.strip())

    write(cfg, server_ini(t, "secret = " + secret), 0o640)
    rc, err = run_cmd(t, "server", cfg)
    t.check("group-readable config with a secret: exit status", rc, 2, "==")
    t.expect("tunnel.ini:2: secret: this file holds a secret and can be read by its group "
             "(mode 0640): run `chmod 600 %s'" % cfg in err,
             "message names the configuration and `chmod 600': " + err.strip())
    t.expect(secret[:12] not in err, "the secret is not in the message")

    # The override: the server runs.
    write(cfg, server_ini(t, "secret_file = secret", "insecure_permissions = yes\n"), 0o644)
    t.server(cfg, name="insecure-ok")
    t.expect(True, "insecure_permissions = yes: the server starts with a readable secret")

    write(sec, secret + "\n", 0o600)
    write(cfg, server_ini(t, "secret_file = secret"), 0o644)
    t.server(cfg, name="private-ok")
    t.expect(True, "secret_file 0600 (config 0644, holding no secret): the server starts")

    for line in ("secret = " + KEY48, "secret = " + KEY48 + "!", "secret_file = " + KEY48,
                 "secret " + KEY48, KEY48 + "=="):
        write(cfg, server_ini(t, line), 0o600)
        rc, err = run_cmd(t, "server", cfg)
        leaked = [KEY48[i:i + 12] for i in range(len(KEY48) - 11) if KEY48[i:i + 12] in err]
        t.check("bad secret `%s...': exit status" % line[:20], rc, 2, "==")
        t.expect(not leaked and "tunnel.ini:2:" in err,
                 "bad secret `%s...': message quotes none of it: %s" % (line[:20], err.strip()))


def locked_keys(t, pid, label):
    with open("/proc/%d/status" % pid) as f:
        lck = int(re.search(r"^VmLck:\s+(\d+) kB", f.read(), re.M).group(1))
    with open("/proc/%d/maps" % pid) as f:
        asan = "libasan" in f.read()
    flags = []
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if line.startswith("VmFlags:"):
                flags.append(line.split()[1:])
    if asan:
        # AddressSanitizer makes mlock() a no-op (and maps shadow memory with `dd' itself).
        print("%s: built with AddressSanitizer, which ignores mlock: only `dd' is checked" % label)
        t.check("%s: mappings left out of core dumps (dd)" % label,
                sum(1 for fl in flags if "dd" in fl), 1, ">=")
        return
    both = sum(1 for fl in flags if "dd" in fl and "lo" in fl)
    t.check("%s: VmLck (kB)" % label, lck, 4, ">=")
    t.check("%s: mappings locked and left out of core dumps (lo, dd)" % label, both, 1, ">=")


def control_dir(t, secret):
    target = mptlib.Target("127.0.0.1", echo=True)
    sport, cport = t.port(), t.port()
    open_dir = t.path("open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    sock = os.path.join(open_dir, "server.sock")
    cfg = t.write_config("ctl.ini", secret, client_listen="127.0.0.1:%d" % cport,
                         bridges=["127.0.0.1:%d" % sport], server_listen=sport,
                         target=target.addr, extra_server=["control = " + sock],
                         extra_client=["control = " + t.path("client.sock")])
    server = t.server(cfg, name="ctl-server")
    text = t.wait_log(server, r"control directory .* writable by others")
    t.expect("control directory `%s' is writable by others (mode 0777): not using it" % open_dir
             in text, "control directory 0777 refused, with the reason logged")
    t.expect(not os.path.exists(sock), "no socket made in that directory")
    t.expect(server.alive(), "the server runs on without a control socket")
    client = t.client(cfg, name="ctl-client")
    t.wait_log(client, r"control socket ")
    return target, server, client


def unlockable(t, secret):
    """With RLIMIT_MEMLOCK 0 (and, as root, without CAP_IPC_LOCK) the lock is refused: the server
    says so, and its keys are still left out of core dumps."""
    if not shutil.which("prlimit") or not shutil.which("setpriv"):
        print("skipped: no prlimit/setpriv to start a server that may not lock memory")
        return
    cfg = t.path("nolock.ini")
    write(cfg, server_ini(t, "secret = " + secret), 0o600)
    pr = t.start("nolock-server", ["prlimit", "--memlock=0:0", "setpriv", "--bounding-set=-ipc_lock",
                                   "--inh-caps=-ipc_lock", "--", mptlib.MPTUNNEL, "server", "-c",
                                   cfg], ready=r"server listening")
    text = pr.log()
    with open("/proc/%d/maps" % pr.pid) as f:
        asan = "libasan" in f.read()
    if asan:
        print("nolock: built with AddressSanitizer, which ignores mlock: not checked")
        return
    t.expect("keys not locked in memory" in text,
             "memory lock refused: the server warns that its keys may be swapped out")
    with open("/proc/%d/status" % pr.pid) as f:
        lck = int(re.search(r"^VmLck:\s+(\d+) kB", f.read(), re.M).group(1))
    t.check("memory lock refused: VmLck (kB)", lck, 0, "==")


def body(t):
    refused_secrets(t)
    secret = t.genkey()
    target, server, client = control_dir(t, secret)
    try:
        locked_keys(t, server.pid, "server")
        locked_keys(t, client.pid, "client")
    finally:
        target.close()
    unlockable(t, secret)


mptlib.run(body, 60)
