#!/usr/bin/env python3
"""core/noise against an independent implementation of the Noise framework: Debian's
python3-dissononce completes Noise_NNpsk0 and Noise_IKpsk2 (25519, ChaChaPoly, BLAKE2b) handshakes
with our C code (test/unit/core/noise_peer.c, a process reading commands on stdin), both ways,
then transport messages both ways.

  noise_interop.py CASE      CASE: c_initiator_nnpsk0 c_responder_nnpsk0 c_initiator_ikpsk2
                                   c_responder_ikpsk2 refusals

Each handshake case runs once with fixed keys and ephemerals, where every message must equal the
transcript dissononce produces with itself (deterministic), then RUNS times with random keys,
prologues and payloads (up to the largest message the framework allows). `refusals': a wrong
psk, a wrong prologue, an altered message and an altered transport message from dissononce are
all refused by the C side, and the reverse.

dissononce is a Debian package, which the python3 on PATH may not see: the test runs itself again
under /usr/bin/python3. Environment: NOISE_PEER, the driver's path. Exit 0 pass, 1 fail, 77 skip.
"""
import os
import subprocess
import sys

try:
    from dissononce.cipher.chachapoly import ChaChaPolyCipher
    from dissononce.dh.x25519.private import PrivateKey
    from dissononce.dh.x25519.public import PublicKey
    from dissononce.dh.x25519.x25519 import X25519DH
    from dissononce.exceptions.decrypt import DecryptFailedException
    from dissononce.extras.dh.dangerous.dh_nogen import NoGenDH
    from dissononce.hash.blake2b import Blake2bHash
    from dissononce.processing.handshakepatterns.interactive.IK import IKHandshakePattern
    from dissononce.processing.handshakepatterns.interactive.NN import NNHandshakePattern
    from dissononce.processing.impl.cipherstate import CipherState
    from dissononce.processing.impl.handshakestate import HandshakeState
    from dissononce.processing.impl.symmetricstate import SymmetricState
    from dissononce.processing.modifiers.psk import PSKPatternModifier
except ImportError:
    if os.path.exists("/usr/bin/python3") and not os.environ.get("MPT_NOISE_REEXEC"):
        os.environ["MPT_NOISE_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIP: dissononce is missing (Debian: python3-dissononce)")
    sys.exit(77)

NAMES = {"nnpsk0": "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b",
         "ikpsk2": "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b"}
RUNS = 20
MAX_MSG = 65535
TIMEOUT_S = 20

# The keys of the framework's published vectors (any fixed keys would do).
FIXED = {
    "si": bytes(range(0, 32)),
    "sr": bytes(range(1, 33)),
    "ei": bytes(range(0x20, 0x40)),
    "er": bytes(range(0x41, 0x61)),
    "psk": b"!verysecretverysecretverysecret!",
    "prologue": b"notsecret",
}


# The initiator's first transport message ("yellowsubmarine") with those keys, in the vectors.
VECTOR_MSG2 = {
    "nnpsk0": bytes.fromhex("7811d68572ef1cef95b8a84abaa2c04c52c65b6bc7717b20d7d0937fbdd792"),
    "ikpsk2": bytes.fromhex("f4c177d26066f6951689eeb7dba6199b0a71514482d9fd58cab9c9da5ebe95"),
}


class Peer:
    """The C side: one noise_peer process."""

    def __init__(self, pattern, role, **keys):
        args = [os.environ["NOISE_PEER"], pattern, role]
        args += ["%s=%s" % (k, v.hex()) for k, v in keys.items() if v is not None]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def cmd(self, name, data=b""):
        self.proc.stdin.write("%s %s\n" % (name, data.hex() or "-"))
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        if not reply:
            raise RuntimeError("noise_peer ended")
        if reply[0] == "err":
            return int(reply[1])
        return bytes.fromhex(reply[1]) if len(reply) > 1 else b""

    def close(self):
        self.proc.stdin.close()
        try:
            rc = self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        if rc != 0:
            raise RuntimeError("noise_peer exited with %d" % rc)


def keypair(priv):
    return X25519DH().generate_keypair(PrivateKey(priv))


def py_side(pattern, initiator, prologue, e, s=None, rs=None, psk=None):
    """The dissononce side, its ephemeral fixed to e."""
    base = NNHandshakePattern() if pattern == "nnpsk0" else IKHandshakePattern()
    pat = PSKPatternModifier(0 if pattern == "nnpsk0" else 2).modify(base)
    hs = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), Blake2bHash()),
                        NoGenDH(X25519DH(), PrivateKey(e)))
    hs.initialize(pat, initiator, prologue, s=keypair(s) if s else None,
                  rs=PublicKey(rs) if rs else None, psks=(psk,))
    assert hs.protocol_name == NAMES[pattern], hs.protocol_name
    return hs


def py_write(hs, payload):
    buf = bytearray()
    cs = hs.write_message(payload, buf)
    return bytes(buf), cs


def py_read(hs, msg):
    buf = bytearray()
    cs = hs.read_message(msg, buf)
    return bytes(buf), cs


def keyset(fixed, rnd):
    if fixed:
        k = dict(FIXED)
    else:
        k = {n: os.urandom(32) for n in ("si", "sr", "ei", "er", "psk")}
        k["prologue"] = os.urandom(rnd % 40)
    k["sr_pub"] = keypair(k["sr"]).public.data
    k["si_pub"] = keypair(k["si"]).public.data
    return k


def payloads(fixed, rnd, pattern):
    """Payloads of the two handshake messages and of the transport messages."""
    if fixed:
        return [b"test_msg_0", b"test_msg_1"], [b"yellowsubmarine", b"submarineyellow", b""]
    over1 = 96 if pattern == "ikpsk2" else 48
    big = rnd % 4 == 0
    hsp = [os.urandom(MAX_MSG - over1 if big else rnd * 13 % 300),
           os.urandom(MAX_MSG - 48 if big else rnd * 7 % 200)]
    return hsp, [os.urandom(n) for n in (0, 1, rnd * 37 % 1500, MAX_MSG - 16)]


def reference(pattern, k, hsp):
    """dissononce with itself: the transcript for the fixed keys."""
    s_i = k["si"] if pattern == "ikpsk2" else None
    s_r = k["sr"] if pattern == "ikpsk2" else None
    rs_i = k["sr_pub"] if pattern == "ikpsk2" else None
    a = py_side(pattern, True, k["prologue"], k["ei"], s=s_i, rs=rs_i, psk=k["psk"])
    b = py_side(pattern, False, k["prologue"], k["er"], s=s_r, psk=k["psk"])
    m1, _ = py_write(a, hsp[0])
    py_read(b, m1)
    m2, _ = py_write(b, hsp[1])
    py_read(a, m2)
    return [m1, m2]


def handshake(pattern, c_role, fixed, rnd):
    """One handshake and transport both ways, C in c_role against dissononce. Returns the
    number of messages exchanged."""
    k = keyset(fixed, rnd)
    hsp, tp = payloads(fixed, rnd, pattern)
    ik = pattern == "ikpsk2"
    c_init = c_role == "initiator"
    if c_init:
        c = Peer(pattern, "initiator", s=k["si"] if ik else None, rs=k["sr_pub"] if ik else None,
                 psk=k["psk"], e=k["ei"], prologue=k["prologue"])
        py = py_side(pattern, False, k["prologue"], k["er"], s=k["sr"] if ik else None,
                     psk=k["psk"])
    else:
        # The C responder learns the psk only after the first message, as a server would.
        c = Peer(pattern, "responder", s=k["sr"] if ik else None,
                 psk=None if ik else k["psk"], e=k["er"], prologue=k["prologue"])
        py = py_side(pattern, True, k["prologue"], k["ei"], s=k["si"] if ik else None,
                     rs=k["sr_pub"] if ik else None, psk=k["psk"])
    ref = reference(pattern, k, hsp) if fixed else None
    try:
        if c_init:
            m1 = c.cmd("write", hsp[0])
            assert isinstance(m1, bytes), "C write 1: %r" % m1
            got, _ = py_read(py, m1)
            assert got == hsp[0]
            m2, cs = py_write(py, hsp[1])
            got = c.cmd("read", m2)
            assert got == hsp[1], "C read 2: %r" % (got if isinstance(got, int) else len(got))
            py_send, py_recv = cs[1], cs[0]
        else:
            m1, _ = py_write(py, hsp[0])
            got = c.cmd("read", m1)
            assert got == hsp[0], "C read 1: %r" % (got if isinstance(got, int) else len(got))
            if ik:
                assert c.cmd("rs") == k["si_pub"], "remote static"
                assert c.cmd("psk", k["psk"]) == b""
            m2 = c.cmd("write", hsp[1])
            assert isinstance(m2, bytes), "C write 2: %r" % m2
            got, cs = py_read(py, m2)
            assert got == hsp[1]
            py_send, py_recv = cs[0], cs[1]
        if ref is not None:
            assert [m1, m2] == ref, "transcript differs from dissononce's own"
        assert c.cmd("hash") == py.symmetricstate.get_handshake_hash(), "handshake hash"
        assert c.cmd("split") == b""
        n = 2
        for i, p in enumerate(tp):
            ct = c.cmd("send", p)
            assert isinstance(ct, bytes) and len(ct) == len(p) + 16, "C send %d" % i
            if fixed and c_init and i == 0:
                assert ct == VECTOR_MSG2[pattern], "first transport message differs from the vector"
            assert py_recv.decrypt_with_ad(b"", ct) == p
            ct = py_send.encrypt_with_ad(b"", p[::-1])
            assert c.cmd("recv", ct) == p[::-1], "C recv %d" % i
            n += 2
    finally:
        c.close()
    return n


def case_handshakes(pattern, c_role):
    total = handshake(pattern, c_role, True, 0)
    for rnd in range(1, RUNS + 1):
        total += handshake(pattern, c_role, False, rnd)
    print("%s: C %s against dissononce: %d handshakes (1 fixed, %d random), "
          "%d messages, all equal both ways" % (NAMES[pattern], c_role, RUNS + 1, RUNS, total))


def expect_err(got, what):
    assert isinstance(got, int) and got < 0, "%s: accepted (%r)" % (what, got)


def expect_py_refuses(fn, what):
    try:
        fn()
    except DecryptFailedException:
        return
    raise AssertionError("%s: dissononce accepted it" % what)


def case_refusals():
    count = 0
    for pattern in ("nnpsk0", "ikpsk2"):
        ik = pattern == "ikpsk2"
        k = keyset(False, 5)
        wrong = bytes([k["psk"][0] ^ 1]) + k["psk"][1:]
        for what in ("psk", "prologue", "bit"):
            # dissononce initiator, C responder.
            py = py_side(pattern, True, k["prologue"] + (b"x" if what == "prologue" else b""),
                         k["ei"], s=k["si"] if ik else None, rs=k["sr_pub"] if ik else None,
                         psk=wrong if what == "psk" else k["psk"])
            c = Peer(pattern, "responder", s=k["sr"] if ik else None, psk=k["psk"],
                     prologue=k["prologue"])
            try:
                m1, _ = py_write(py, b"hello")
                if what == "bit":
                    m1 = bytes([m1[0]]) + m1[1:-1] + bytes([m1[-1] ^ 0x80])
                got = c.cmd("read", m1)
                if ik and what == "psk":
                    # The psk enters at the second message: dissononce refuses it.
                    m2 = c.cmd("write", b"")
                    expect_py_refuses(lambda: py_read(py, m2), "IKpsk2 wrong psk")
                else:
                    expect_err(got, "%s %s to C" % (pattern, what))
                    # A failed handshake accepts nothing more.
                    expect_err(c.cmd("write", b""), "after failure")
            finally:
                c.close()
            count += 1
            # C initiator, dissononce responder.
            c = Peer(pattern, "initiator", s=k["si"] if ik else None,
                     rs=k["sr_pub"] if ik else None, psk=k["psk"], prologue=k["prologue"])
            py = py_side(pattern, False, k["prologue"] + (b"x" if what == "prologue" else b""),
                         k["er"], s=k["sr"] if ik else None,
                         psk=wrong if what == "psk" else k["psk"])
            try:
                m1 = c.cmd("write", b"hello")
                if what == "bit":
                    m1 = m1[:40] + bytes([m1[40] ^ 1]) + m1[41:]
                if ik and what == "psk":
                    py_read(py, m1)
                    m2, _ = py_write(py, b"")
                    expect_err(c.cmd("read", m2), "IKpsk2 wrong psk to C")
                else:
                    expect_py_refuses(lambda: py_read(py, m1), "%s %s" % (pattern, what))
            finally:
                c.close()
            count += 1
        # An altered transport message: refused, and the next genuine one still opens.
        c = Peer(pattern, "initiator", s=k["si"] if ik else None, rs=k["sr_pub"] if ik else None,
                 psk=k["psk"], prologue=k["prologue"])
        py = py_side(pattern, False, k["prologue"], k["er"], s=k["sr"] if ik else None,
                     psk=k["psk"])
        try:
            py_read(py, c.cmd("write", b""))
            m2, cs = py_write(py, b"")
            assert c.cmd("read", m2) == b""
            assert c.cmd("split") == b""
            ct = cs[1].encrypt_with_ad(b"", b"transport")
            expect_err(c.cmd("recv", ct[:5] + bytes([ct[5] ^ 4]) + ct[6:]), "altered transport")
            assert c.cmd("recv", ct) == b"transport"
            ct = c.cmd("send", b"back")
            expect_py_refuses(lambda: cs[0].decrypt_with_ad(b"", ct[:-1] + bytes([ct[-1] ^ 1])),
                              "altered transport from C")
            assert cs[0].decrypt_with_ad(b"", ct) == b"back"
        finally:
            c.close()
        count += 2
    print("refusals: %d wrong or altered messages, each refused by its reader" % count)


CASES = {
    "c_initiator_nnpsk0": lambda: case_handshakes("nnpsk0", "initiator"),
    "c_responder_nnpsk0": lambda: case_handshakes("nnpsk0", "responder"),
    "c_initiator_ikpsk2": lambda: case_handshakes("ikpsk2", "initiator"),
    "c_responder_ikpsk2": lambda: case_handshakes("ikpsk2", "responder"),
    "refusals": case_refusals,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in CASES:
        print("usage: noise_interop.py %s" % "|".join(CASES), file=sys.stderr)
        return 2
    if not os.environ.get("NOISE_PEER"):
        print("SKIP: NOISE_PEER (the driver's path) is not set")
        return 77
    try:
        CASES[sys.argv[1]]()
    except (AssertionError, DecryptFailedException) as e:
        print("FAIL: %r" % e)
        return 1
    print("ok %s" % sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
