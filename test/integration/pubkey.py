#!/usr/bin/env python3
"""mptunnel pubkey: the public key of a private key on standard input.

Checked against RFC 7748 section 6.1 (Alice's and Bob's keys) and, for keys from `mptunnel genkey',
against X25519 computed here in Python (RFC 7748 section 5, the Montgomery ladder), so that the
binary and an independent implementation agree. Input that is not a private key exits 2 with a
message that never repeats the input, and prints nothing on standard output.
"""
import base64
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import mptlib  # noqa: E402

RFC7748 = [  # (private, public), section 6.1
    ("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
     "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
    ("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
     "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
]
P = 2 ** 255 - 19


def x25519_base(k):
    """RFC 7748 section 5: X25519(k, 9)."""
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    n = int.from_bytes(k, "little")
    x1, x2, z2, x3, z3, swap = 9, 1, 0, 9, 1, 0
    for t in reversed(range(255)):
        bit = (n >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = x2 + z2, x2 - z2
        aa, bb = a * a, b * b
        e = aa - bb
        c, d = x3 + z3, x3 - z3
        da, cb = d * a, c * b
        x3, z3 = (da + cb) ** 2 % P, x1 * (da - cb) ** 2 % P
        x2, z2 = aa * bb % P, e * (aa + 121665 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def pubkey(stdin, *args):
    r = subprocess.run([mptlib.MPTUNNEL, "pubkey"] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def body(t):
    b64 = lambda h: base64.b64encode(bytes.fromhex(h)).decode()  # noqa: E731

    # The published vectors, and the ladder here agreeing with them.
    good = 0
    for priv, pub in RFC7748:
        if x25519_base(bytes.fromhex(priv)).hex() != pub:
            raise mptlib.Failed("the test's own X25519 disagrees with RFC 7748")
        rc, out, err = pubkey((b64(priv) + "\n").encode())
        if rc == 0 and out == b64(pub) + "\n" and err == "":
            good += 1
        else:
            print("RFC 7748 key %s...: exit %d, out %r, err %r" % (priv[:8], rc, out, err))
    t.check("RFC 7748 section 6.1 public keys right", good, len(RFC7748), op="==")

    # genkey | pubkey, against the ladder here.
    rounds, good = 20, 0
    for _ in range(rounds):
        priv = t.genkey()
        rc, out, _ = pubkey((priv + "\n").encode())
        want = base64.b64encode(x25519_base(base64.b64decode(priv))).decode()
        good += rc == 0 and out.strip() == want and len(out) == 45
    t.check("genkey | pubkey equal to X25519 here", good, rounds, op="==")

    # Whitespace around the key is no part of it; unpadded base64 is the same key.
    alice, alice_pub = b64(RFC7748[0][0]), b64(RFC7748[0][1])
    forms = [alice, alice + "\r\n", "  \t" + alice + "  \n\n", "\n" + alice, alice.rstrip("=")]
    good = sum(pubkey(f.encode())[:2] == (0, alice_pub + "\n") for f in forms)
    t.check("key forms read alike (whitespace, CRLF, no padding)", good, len(forms), op="==")

    # Not a private key: exit 2, a reason, nothing on stdout, the input never repeated.
    zero = base64.b64encode(bytes(32)).decode()
    bad = [
        ("empty input", b"", "empty private key"),
        ("whitespace only", b" \n\t\n", "empty private key"),
        ("not base64", b"this is not a key at all!\n", "private key is not valid base64"),
        ("space inside", (alice[:20] + " " + alice[20:]).encode(), "not valid base64"),
        ("two keys", (alice + "\n" + alice + "\n").encode(), "not valid base64"),
        ("16 bytes", base64.b64encode(bytes(range(1, 17))) + b"\n",
         "private key decodes to 16 bytes, expected 32"),
        ("64 bytes", base64.b64encode(bytes(range(1, 65))) + b"\n",
         "private key decodes to 64 bytes, expected 32"),
        ("all zero", (zero + "\n").encode(), "private key is all zero bytes"),
        ("NUL byte", alice.encode() + b"\0\n", "private key is not valid base64"),
        ("a config line", ("private_key = " + alice + "\n").encode(), "not valid base64"),
        ("too long", b"A" * 4096, "input too long (max 1024 bytes"),
    ]
    good = 0
    for name, data, want in bad:
        rc, out, err = pubkey(data)
        leaked = [w for w in (alice[:12], alice[20:32], "this is not", "ECAwQFBgcI")
                  if w in err]
        if rc == 2 and out == "" and err.startswith("mptunnel pubkey: ") and want in err \
                and not leaked:
            good += 1
            print("ok: %s -> %s" % (name, err.strip()))
        else:
            print("FAIL: %s: exit %d, out %r, err %r" % (name, rc, out, err))
    t.check("bad inputs refused (exit 2, input not shown)", good, len(bad), op="==")

    # No standard input at all (as under CI), an argument, and the help.
    r = subprocess.run([mptlib.MPTUNNEL, "pubkey"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    t.check("exit status without standard input", r.returncode, 2, op="==")
    rc, out, err = pubkey(alice.encode(), alice)
    t.check("exit status with an argument", rc, 2, op="==")
    t.check("the argument not shown", int(alice[:12] in err), 0, op="==")
    rc, out, _ = pubkey(b"", "--help")
    t.check("pubkey --help exit status", rc, 0, op="==")
    t.check("pubkey --help shows the usage", int("Usage: mptunnel pubkey" in out), 1, op="==")
    r = subprocess.run([mptlib.MPTUNNEL, "--help"], stdout=subprocess.PIPE, timeout=10)
    t.check("pubkey listed by mptunnel --help",
            int(b"\n  pubkey " in r.stdout), 1, op="==")
    r = subprocess.run([mptlib.MPTUNNEL, "genkey", "--help"], stdout=subprocess.PIPE, timeout=10)
    t.check("genkey --help names private keys", int(b"private key" in r.stdout), 1, op="==")


mptlib.run(body, budget=60)
