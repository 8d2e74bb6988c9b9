#!/usr/bin/env python3
"""Key lifetimes. A relay on the tunnel's only path holds back the client's DATA datagrams sent
around one application datagram (a tagged one, so the target can tell it); the tunnel goes on
carrying traffic (10/s). The test watches the client's session in `mptunnel status --json`:
 1. keys change every rekey interval (2 minutes by default): the session id must change within
    the interval and a margin, without a gap in traffic (99% echoed);
 2. the held datagrams re-injected after the session has re-keyed (5 s after the first new id),
    and again once the keys they were sealed with are older than 1.5 intervals (3 minutes by
    default), must deliver nothing (version 1 never re-keys and delivered one held 61 s).
With the default interval this takes over 3 minutes: it runs so with MPT_SOAK=1 (the soak
option); the default suite runs it with `[tunnel] rekey_interval = 5s` (skipped where the
configuration has no such key)."""
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import lifelib  # noqa: E402
import mpt2  # noqa: E402
import mptlib  # noqa: E402
from taprelay import UP, TapRelay  # noqa: E402

REKEY_KEY = "rekey_interval"
REKEY_SHORT = 5.0
REKEY_DEFAULT = 120.0
HOLD_TAG = 0x484f4c44
MARGIN = 5.0  # at most; a short interval gets half of itself


def short_rekey(t, secret_b64):
    """The [tunnel] line that asks for REKEY_SHORT s between re-keys, if `mptunnel check`
    accepts it, else None."""
    line = "%s = %gs" % (REKEY_KEY, REKEY_SHORT)
    cfg = t.write_config("probe.ini", secret_b64, server_listen="127.0.0.1:1",
                         target="127.0.0.1:2", extra_tunnel=[line])
    r = subprocess.run([mptlib.MPTUNNEL, "check", "-c", cfg], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return line if r.returncode == 0 else None


def body(t):
    secret_b64 = t.genkey()
    soak = os.environ.get("MPT_SOAK") == "1"
    # The soak measures the default interval; the default suite a short one, where offered.
    knob = None if soak else short_rekey(t, secret_b64)
    if knob is None and not soak:
        raise mptlib.Skip("with the default rekey interval this takes over 3 minutes: run with "
                          "MPT_SOAK=1 (no `%s' in this build)" % REKEY_KEY)
    rekey = REKEY_SHORT if knob else REKEY_DEFAULT
    margin = min(MARGIN, rekey / 2)
    t.ensure_time(1.5 * rekey + 6 * margin + 10, "the whole run")
    sp, rp, cp = t.port(), t.port(), t.port()
    tgt = mptlib.Target()
    relay = TapRelay(rp, ("127.0.0.1", sp))
    snd = None
    try:
        cfg = t.write_config("lifetime2.ini", secret_b64, client_listen="127.0.0.1:%d" % cp,
                             bridges=["127.0.0.1:%d" % rp], server_listen="127.0.0.1:%d" % sp,
                             target=tgt.addr, extra_tunnel=[knob] if knob else [],
                             extra_client=["control = " + t.path("c.sock")],
                             extra_server=["control = " + t.path("s.sock")])
        t.server(cfg)
        t.client(cfg)
        snd = mptlib.Sender("127.0.0.1", cp, 10, size=(12, 100)).start()
        end = time.monotonic() + 5
        while snd.first_echo_after(0) is None and time.monotonic() < end:
            time.sleep(0.05)
        doc = lifelib.status(cfg, "client")
        sid0, age0 = doc["session"]["id"], doc["session"]["age_ms"] / 1000.0
        t_est = time.monotonic() - age0
        print("session %s, %.1f s old; rekey interval %g s%s"
              % (sid0, age0, rekey, " (" + knob + ")" if knob else " (default)"))
        # Hold back every DATA datagram to the server for 100 ms around one tagged datagram.
        relay.decide = lambda way, d: ("hold" if way == UP and
                                       mpt2.classify(d) in ((1, mpt2.DATA), (2, mpt2.DATA))
                                       else None)
        hold_snd = mptlib.Sender("127.0.0.1", cp, 1, tag=HOLD_TAG)
        time.sleep(0.05)
        hold_snd.sock.sendto(mptlib.make_payload(HOLD_TAG, 0, 40), ("127.0.0.1", cp))
        time.sleep(0.05)
        relay.decide = None
        held = [d for _, _, d in relay.held]
        t_held = time.monotonic()
        print("held back %d DATA datagrams of session %s" % (len(held), sid0))
        ids = [(time.monotonic(), sid0)]
        injected = []
        deadline = t_est + 1.5 * rekey + margin
        while time.monotonic() < deadline:
            time.sleep(min(1.0, rekey / 10))
            d = lifelib.status(cfg, "client", must=False)
            sid = d and d["session"]["id"]
            if sid and sid != ids[-1][1]:
                ids.append((time.monotonic(), sid))
                print("session id %s at %.1f s" % (sid, time.monotonic() - t_est))
            if len(ids) >= 2 and not injected and time.monotonic() >= ids[1][0] + margin:
                injected.append(time.monotonic())
                for h in held:
                    relay.inject(UP, h)
        if not injected:
            injected.append(time.monotonic())
            for h in held:
                relay.inject(UP, h)
        time.sleep(0.5)
        after_rekey = tgt.unique(HOLD_TAG)
        for h in held:
            relay.inject(UP, h)
        print("re-injected %.1f s and %.1f s after they were held (keys %.1f s and %.1f s old)"
              % (injected[0] - t_held, time.monotonic() - t_held, injected[0] - t_est,
                 time.monotonic() - t_est))
        time.sleep(0.5)
        late = tgt.unique(HOLD_TAG)
        first_change = ids[1][0] - t_est if len(ids) > 1 else float("inf")
        t.check("held datagrams", len(held), 1, ">=")
        t.check("first re-key (new session id) after the session opened, s", first_change,
                rekey + margin, fmt="%.1f")
        t.check("session ids within %.0f s" % (1.5 * rekey + margin), len(ids), 2, ">=")
        t.check("held datagram delivered when re-injected %s" % (
            "after the re-key" if len(ids) >= 2 else "(no re-key seen) %.0f s later"
            % (injected[0] - t_held)), after_rekey, 0, "==")
        t.check("held datagram delivered when re-injected under keys %.0f s old"
                % (time.monotonic() - t_est), late, 0, "==")
        after = snd.sent_between(t_held + 0.5, time.monotonic() - 1.0)
        t.check("application datagrams echoed through the re-keys",
                snd.echoed(after) / max(1, len(after)), 0.99, ">=")
        hold_snd.close()
    finally:
        if snd is not None:
            snd.close()
        relay.close()
        tgt.close()


mptlib.run(body, budget=float(os.environ.get("MPT_ATTACK_LIFETIME_BUDGET", "280")))
