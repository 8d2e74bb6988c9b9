"""An independent peer of the mptunnel wire protocol, for the tests that attack it: version 2's
handshake (Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b through Debian's python3-dissononce, with the
prologue, payload, mac1, mac2 and cookie of core/PROTOCOL.md) and its DATA datagrams, and the
same for version 1 (HELLO, REPLY, the key derivation and DATA of PROTOCOL.md version 1), which a
holder of the secret can compute from what it sees in clear.

Debian's python3-* packages are not seen by every python3: a test calls need_crypto() first,
which runs the test again under /usr/bin/python3 when the modules are missing (or skips, 77).

    init = mpt2.Initiator(secret, prev_sid=..., prev_resume=...)   # an INIT datagram: init.dgram
    sess = init.read_response(dgram)      # a Session, or None if the datagram is not the answer
    d = sess.seal(mpt2.flow(1, b"payload")); inner = sess.open(answer)
"""
import hashlib
import math
import os
import socket
import struct
import sys
import time

V1, V2 = 1, 2
# Types. Version 1: HELLO 1, REPLY 2, DATA 3. Version 2: INIT 1, RESPONSE 2, DATA 3, COOKIE 4.
HELLO, REPLY, DATA = 1, 2, 3
INIT, RESPONSE, COOKIE = 1, 2, 4

HELLO_LEN, REPLY_LEN = 128, 80
INIT_LEN, INIT_KEY_LEN, RESPONSE_LEN, COOKIE_LEN = 132, 180, 84, 68
NOISE1_LEN, NOISE2_LEN = 88, 56
DATA_HDR = 20
TAG = 16

CHACHA, AESGCM = 0, 1
NNPSK0 = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b"
IKPSK2 = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b"
NOISE1_KEY_LEN = 136

# Inner messages (PROTOCOL.md §5).
K_FLOW, K_PROBE, K_PROBE_ACK, K_FLOW_STATUS, K_PIECE = 1, 2, 3, 4, 5
K_PATH_CHALLENGE, K_PATH_RESPONSE = 6, 7

_mods = None


def need_crypto():
    """Imports dissononce and cryptography, or runs this script again under /usr/bin/python3
    (where Debian installs them), or exits 77 with a message."""
    global _mods
    if _mods is not None:
        return
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _AESGCM
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
        from cryptography.exceptions import InvalidTag
        from dissononce.cipher.chachapoly import ChaChaPolyCipher
        from dissononce.dh.x25519.private import PrivateKey
        from dissononce.dh.x25519.x25519 import X25519DH
        from dissononce.hash.blake2b import Blake2bHash
        from dissononce.dh.x25519.public import PublicKey
        from dissononce.processing.handshakepatterns.interactive.IK import IKHandshakePattern
        from dissononce.processing.handshakepatterns.interactive.NN import NNHandshakePattern
        from dissononce.processing.impl.cipherstate import CipherState
        from dissononce.processing.impl.handshakestate import HandshakeState
        from dissononce.processing.impl.symmetricstate import SymmetricState
        from dissononce.processing.modifiers.psk import PSKPatternModifier
    except ImportError:
        if os.path.exists("/usr/bin/python3") and not os.environ.get("MPT2_REEXEC"):
            os.environ["MPT2_REEXEC"] = "1"
            sys.stdout.flush()
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        print("SKIP: python3-dissononce and python3-cryptography are needed (Debian packages)")
        sys.exit(77)
    _mods = dict(AESGCM=_AESGCM, ChaCha20Poly1305=ChaCha20Poly1305, InvalidTag=InvalidTag,
                 ChaChaPolyCipher=ChaChaPolyCipher, X25519DH=X25519DH, PrivateKey=PrivateKey,
                 PublicKey=PublicKey, Blake2bHash=Blake2bHash, NN=NNHandshakePattern,
                 IK=IKHandshakePattern, CipherState=CipherState, HandshakeState=HandshakeState,
                 SymmetricState=SymmetricState, PSK=PSKPatternModifier)


def b2b(data, key=b"", size=32):
    """BLAKE2b of `size` bytes, keyed (libsodium's crypto_generichash)."""
    return hashlib.blake2b(data, digest_size=size, key=key).digest()


def header(version, kind):
    return bytes([version, kind, 0, 0])


def classify(d):
    """(version, type) of a datagram whose header is well formed, else None."""
    if len(d) < 4 or d[2] or d[3] or d[0] not in (V1, V2):
        return None
    return d[0], d[1]


def sid_of(d):
    return struct.unpack(">Q", d[4:12])[0] if len(d) >= 12 else None


def tai64n(t=None):
    """TAI64N label of a Unix time: seconds + 2^62 (8 bytes), nanoseconds (4), big-endian."""
    t = time.time() if t is None else t
    sec = int(t)
    return struct.pack(">QI", (1 << 62) + sec, int((t - sec) * 1e9))


def tai64n_time(b):
    sec, ns = struct.unpack(">QI", b[:12])
    return sec - (1 << 62) + ns / 1e9


# ---- AEAD of DATA (both versions): nonce 4 zero bytes || counter big-endian, header as AD ----

def aead_seal(cipher, key, counter, ad, plain):
    need_crypto()
    nonce = b"\0\0\0\0" + struct.pack(">Q", counter)
    c = _mods["AESGCM"](key) if cipher == AESGCM else _mods["ChaCha20Poly1305"](key)
    return c.encrypt(nonce, plain, ad)


def aead_open(cipher, key, counter, ad, ct):
    """The plaintext, or None if it does not authenticate."""
    need_crypto()
    nonce = b"\0\0\0\0" + struct.pack(">Q", counter)
    c = _mods["AESGCM"](key) if cipher == AESGCM else _mods["ChaCha20Poly1305"](key)
    try:
        return c.decrypt(nonce, ct, ad)
    except _mods["InvalidTag"]:
        return None


def open_data(d, key, ciphers=(CHACHA, AESGCM)):
    """The inner message of DATA datagram d under `key` (trying each cipher), or None."""
    if len(d) < DATA_HDR + TAG + 1:
        return None
    ctr = struct.unpack(">Q", d[12:20])[0]
    for c in ciphers:
        p = aead_open(c, key, ctr, d[:DATA_HDR], d[DATA_HDR:])
        if p is not None:
            return p
    return None


class Session:
    """Keys of one session as its client holds them: seal() makes DATA, open() reads it."""

    def __init__(self, version, sid, tx_key, rx_key, cipher, h=None):
        self.version = version
        self.sid = sid
        self.tx_key, self.rx_key = tx_key, rx_key
        self.cipher = cipher
        self.h = h  # version 2: the Noise handshake hash
        self.counter = 0

    def seal(self, inner):
        self.counter += 1
        hdr = header(self.version, DATA) + struct.pack(">QQ", self.sid, self.counter)
        return hdr + aead_seal(self.cipher, self.tx_key, self.counter, hdr, inner)

    def open(self, d):
        """The inner message of a DATA datagram of this session from the server, or None."""
        if classify(d) != (self.version, DATA) or sid_of(d) != self.sid:
            return None
        return open_data(d, self.rx_key, (self.cipher,))

    def resume_key(self):
        """This session's resume key, from its transport keys (the client's view: tx is
        client -> server)."""
        return resume_key(self.tx_key, self.rx_key)

    def answer(self, inner):
        """The DATA datagram that answers inner message `inner` if it is a PATH_CHALLENGE (the
        PATH_RESPONSE, to send back from the address it came to), else None."""
        if inner is None or len(inner) != 24 or inner[0] != K_PATH_CHALLENGE:
            return None
        return self.seal(bytes([K_PATH_RESPONSE]) + bytes(7) + inner[8:24])


# ---- inner messages ----

def flow(flow_id, payload, target=0):
    """A FLOW message of a flow to the server's target `target` (no target block)."""
    return struct.pack(">BBHI", K_FLOW, 0, target, flow_id) + payload


def parse_flow(inner):
    """(flow id, payload) of a FLOW message, else None."""
    if inner is None or len(inner) < 8 or inner[0] != K_FLOW:
        return None
    return struct.unpack(">I", inner[4:8])[0], inner[8:]


CAP_MAX = 4095 << 15  # the largest cap 16 bits say (0xffff)


def cap_encode(rate):
    """A cap of replies as PROBE bytes 50-81 carry it (PROTOCOL.md §5, §8.2): `rate` datagrams
    per second as m * 2^e, m the low 12 bits and e the high 4, the smallest e that holds it, m
    rounded up (never below the rate); 0 (or less) is no cap; beyond 16 bits, the most they say."""
    if not rate > 0:
        return 0
    if rate > CAP_MAX:
        return 0xffff
    e = 0
    while rate / (1 << e) > 4095:
        e += 1
    return e << 12 | math.ceil(rate / (1 << e))


def cap_decode(v):
    """Datagrams per second of a cap's 16 bits (0: no cap)."""
    return (v & 0xfff) << (v >> 12)


def probe(path, seq, npaths=1, use=None, mode=0, now_us=None, flags=0, target=0, fec=(0, 0),
          caps=None):
    """A PROBE on client path `path`, 50 bytes; `use`: the 16-byte table of return paths
    (default: this path only); `flags` (bit 0: loss measured), `target` (target_loss in
    millionths) and `fec` (fixed K, M) for fec mode. With `caps` (balance mode: up to 16 rates,
    datagrams per second, by client path index; 0 none), 82 bytes: the caps of replies, encoded
    by cap_encode."""
    if use is None:
        use = bytes([1 if i == path else 0 for i in range(16)])
    now_us = int(time.monotonic() * 1e6) if now_us is None else now_us
    p = (struct.pack(">BBBBIQIHHIBBH", K_PROBE, path, mode, 1, seq, now_us, 0, 0, 0, 0,
                     npaths, flags, target) + bytes(use) + bytes(fec))
    if caps is not None:
        if len(caps) > 16:
            raise ValueError("at most 16 caps")
        p += struct.pack(">16H", *([cap_encode(c) for c in caps] + [0] * (16 - len(caps))))
    return p


# ---- version 1 (PROTOCOL.md version 1, §3): everything follows from the secret and the clear
# values sid, Rc and Rs ----

def v1_keys(secret):
    return (b2b(b"mptunnel v1 hello mac", secret), b2b(b"mptunnel v1 reply mac", secret),
            b2b(b"mptunnel v1 session keys", secret))


def v1_hello(secret, sid=None, rc=None, prev_sid=0, mode=0, flags=0):
    """(HELLO datagram, sid, Rc)."""
    k_hello, _, _ = v1_keys(secret)
    sid = sid or (int.from_bytes(os.urandom(8), "big") or 1)
    rc = rc or os.urandom(32)
    body = (header(V1, HELLO) + struct.pack(">Q", sid) + rc + struct.pack(">QBB", prev_sid, mode,
                                                                        flags) + bytes(58))
    return body + b2b(body, k_hello, 16), sid, rc


def v1_reply_ok(secret, reply, rc):
    _, k_reply, _ = v1_keys(secret)
    return len(reply) == REPLY_LEN and b2b(reply[:64] + rc, k_reply, 16) == reply[64:80]


def v1_session_keys(secret, sid, rc, rs):
    """(K_c2s, K_s2c) = BLAKE2b-512(key=K_kdf, sid || Rc || Rs)."""
    _, _, k_kdf = v1_keys(secret)
    out = b2b(struct.pack(">Q", sid) + rc + rs, k_kdf, 64)
    return out[:32], out[32:]


def v1_session(secret, sid, rc, reply):
    """The client's Session from its HELLO's values and the server's REPLY."""
    c2s, s2c = v1_session_keys(secret, sid, rc, reply[12:44])
    return Session(V1, sid, c2s, s2c, reply[44])


# ---- version 2 ----

def k_mac1(secret):
    return b2b(b"mptunnel v2 mac1", secret)


def k_cookie(secret):
    return b2b(b"mptunnel v2 cookie", secret)


def resume_key(c2s, s2c):
    """Resume key of a session: BLAKE2b-256(key = its transport keys, client -> server first,
    "mptunnel v2 resume")."""
    return b2b(b"mptunnel v2 resume", c2s + s2c)


def hash_resume_key(h):
    """What the resume key would be if it came from the handshake hash h, as it once did: a
    holder of the shared secret who recorded the handshake can compute this one."""
    return b2b(b"mptunnel v2 resume", h)


def proof(resume, new_sid, e_pub):
    return b2b(struct.pack(">Q", new_sid) + e_pub, resume, 16)


class _FixedDH:
    """A DH whose next key pair is one made beforehand (the proof in the payload covers it)."""

    def __init__(self, dh, kp):
        self._inner, self._kp = dh, kp

    def generate_keypair(self, privatekey=None):
        return self._kp

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _handshake(secret, initiator, prologue, e_kp=None, static=None, server_pub=None):
    """NNpsk0 with psk `secret`; with `static` (own private key) and server_pub: IKpsk2. e_kp:
    the ephemeral key pair to use (default: a new one)."""
    need_crypto()
    m = _mods
    if static is None:
        pat = m["PSK"](0).modify(m["NN"]())
    else:
        pat = m["PSK"](2).modify(m["IK"]())
    dh = m["X25519DH"]() if e_kp is None else _FixedDH(m["X25519DH"](), e_kp)
    hs = m["HandshakeState"](m["SymmetricState"](m["CipherState"](m["ChaChaPolyCipher"]()),
                                                 m["Blake2bHash"]()), dh)
    if static is None:
        hs.initialize(pat, initiator, prologue, psks=(secret,))
        assert hs.protocol_name == NNPSK0, hs.protocol_name
    else:
        kp = m["X25519DH"]().generate_keypair(m["PrivateKey"](static))
        hs.initialize(pat, initiator, prologue, s=kp, rs=m["PublicKey"](server_pub),
                      psks=(secret or bytes(32),))
        assert hs.protocol_name == IKPSK2, hs.protocol_name
    return hs


def public_key(priv):
    """The X25519 public key of a private key (32 bytes each)."""
    need_crypto()
    return _mods["X25519DH"]().generate_keypair(_mods["PrivateKey"](priv)).public.data


def key_mac1(pub):
    """Key mode's MAC1 key of messages to the holder of `pub`."""
    return b2b(b"mac1----" + pub)


def key_cookie(server_pub):
    return b2b(b"cookie--" + server_pub)


def init_payload(prev_sid=0, prev_proof=None, mode=0, flags=0, t=None):
    return (tai64n(t) + struct.pack(">Q", prev_sid) + (prev_proof or bytes(16)) +
            bytes([mode, flags, 0, 0]))


def parse_init_payload(p):
    return {"time": tai64n_time(p[:12]), "prev_sid": struct.unpack(">Q", p[12:20])[0],
            "proof": p[20:36], "mode": p[36], "flags": p[37]}


class Initiator:
    """One handshake of a client: `dgram` is its INIT, 132 bytes in shared-secret mode (psk =
    secret), 180 in key mode (`static`: the client's private key, `server_pub`: the server's
    public key; psk = secret, None for none). prev_sid with prev_resume (the previous session's
    resume key) adds the proof; `proof_bytes` forces another (a forger's) value. `t`: the
    timestamp (Unix time, default now)."""

    def __init__(self, secret, sid=None, prev_sid=0, prev_resume=None, proof_bytes=None, mode=0,
                 flags=0, t=None, cookie=None, static=None, server_pub=None):
        self.secret = secret
        self.keymode = static is not None
        if self.keymode:
            self.k_mac1, self.k_cookie = key_mac1(server_pub), key_cookie(server_pub)
            self.k_mac1_resp = key_mac1(public_key(static))
        else:
            self.k_mac1 = self.k_mac1_resp = k_mac1(secret)
            self.k_cookie = k_cookie(secret)
        self.sid = sid or (int.from_bytes(os.urandom(8), "big") or 1)
        self.prologue = header(V2, INIT) + struct.pack(">Q", self.sid)
        # The proof covers the ephemeral key, which write_message makes: made here first.
        need_crypto()
        e = _mods["X25519DH"]().generate_keypair()
        e_pub = e.public.data
        self.hs = _handshake(secret, True, self.prologue, e, static, server_pub)
        if proof_bytes is None and prev_sid and prev_resume is not None:
            proof_bytes = proof(prev_resume, self.sid, e_pub)
        self.payload = init_payload(prev_sid, proof_bytes, mode, flags, t)
        buf = bytearray()
        self.hs.write_message(self.payload, buf)
        self.noise1 = bytes(buf)
        assert (len(self.noise1) == (NOISE1_KEY_LEN if self.keymode else NOISE1_LEN) and
                self.noise1[:32] == e_pub)
        self.body = self.prologue + self.noise1
        self.mac1 = b2b(self.body, self.k_mac1, 16)
        self.cookie = cookie
        self.dgram = self.with_cookie(cookie)

    def with_cookie(self, cookie):
        """The INIT again, with mac2 under `cookie` (None: 16 zero bytes)."""
        self.cookie = cookie
        mac2 = b2b(self.body + self.mac1, cookie, 16) if cookie else bytes(16)
        self.dgram = self.body + self.mac1 + mac2
        return self.dgram

    def read_cookie(self, d):
        """The cookie of a COOKIE datagram answering this INIT, or None."""
        if len(d) != COOKIE_LEN or classify(d) != (V2, COOKIE) or sid_of(d) != self.sid:
            return None
        return xchacha_open(self.k_cookie, d[12:36], d[36:68], self.mac1)

    def read_response(self, d):
        """The client's Session if d is the RESPONSE to this INIT, else None."""
        if len(d) != RESPONSE_LEN or classify(d) != (V2, RESPONSE) or sid_of(d) != self.sid:
            return None
        if b2b(d[:68], self.k_mac1_resp, 16) != d[68:84]:
            return None
        buf = bytearray()
        try:
            cs = self.hs.read_message(d[12:68], buf)
        except Exception:  # noqa: B902 - dissononce raises its own exceptions on refusal
            return None
        if cs is None or len(buf) != 8:
            return None
        h = self.hs.symmetricstate.get_handshake_hash()
        return Session(V2, self.sid, cs[0]._key, cs[1]._key, buf[0], h)


def read_init(secret, init):
    """What a holder of the secret reads from an INIT it recorded (shared-secret mode; its mac1
    checked): the payload as a dict, and the responder's state after message 1 (its
    `symmetricstate` holds ck, h and k), or (None, None) if the INIT does not open with this
    secret."""
    if len(init) != INIT_LEN or classify(init) != (V2, INIT):
        return None, None
    if b2b(init[:12 + NOISE1_LEN], k_mac1(secret), 16) != init[100:116]:
        return None, None
    hs = _handshake(secret, False, init[:12])
    buf = bytearray()
    try:
        hs.read_message(init[12:12 + NOISE1_LEN], buf)
    except Exception:  # noqa: B902
        return None, None
    return parse_init_payload(bytes(buf)), hs


def transcript_hash(secret, init, response):
    """The handshake hash h at the end of the shared-secret handshake of a recorded INIT and its
    RESPONSE, as a holder of the secret computes it from them alone: h mixes the psk, the
    ephemeral keys and the ciphertexts, never a Diffie-Hellman result. None if the INIT does
    not open with the secret."""
    _, hs = read_init(secret, init)
    if hs is None or len(response) != RESPONSE_LEN:
        return None
    h = hs.symmetricstate.get_handshake_hash()
    return b2b(b2b(h + response[12:44], size=64) + response[44:68], size=64)


def connect(sock, server, secret, version=V2, prev_sid=0, prev_resume=None, proof_bytes=None,
            timeout=1.0, retry=0.25, mode=0, static=None, server_pub=None):
    """A client's handshake from `sock` (bound, blocking) to `server`, sent again every `retry`
    s: version 2 INIT (a COOKIE is answered at once with mac2), or version 1 HELLO. Returns
    (Session or None within `timeout`, {"sent": INITs or HELLOs sent, "cookies": n})."""
    st = {"sent": 0, "cookies": 0}
    end = time.monotonic() + timeout
    if version == V2:
        ini = Initiator(secret, prev_sid=prev_sid, prev_resume=prev_resume,
                        proof_bytes=proof_bytes, mode=mode, static=static, server_pub=server_pub)
        dgram, answer = ini.dgram, ini.read_response
    else:
        dgram, sid, rc = v1_hello(secret, prev_sid=prev_sid, mode=mode)

        def answer(d):
            if (classify(d) == (V1, REPLY) and sid_of(d) == sid and
                    v1_reply_ok(secret, d, rc)):
                return v1_session(secret, sid, rc, d)
            return None
    next_tx = 0.0
    while True:
        now = time.monotonic()
        if now >= end:
            return None, st
        if now >= next_tx:
            try:
                sock.sendto(dgram, server)
                st["sent"] += 1
            except OSError:
                pass
            next_tx = now + retry
        sock.settimeout(max(0.001, min(end, next_tx) - now))
        try:
            d, _ = sock.recvfrom(65535)
        except (socket.timeout, BlockingIOError):
            continue
        except OSError:
            continue
        if version == V2:
            c = ini.read_cookie(d)
            if c is not None:
                st["cookies"] += 1
                dgram = ini.with_cookie(c)
                next_tx = 0.0
                continue
        sess = answer(d)
        if sess is not None:
            return sess, st


def server_version(server, secret, host="127.0.0.5", timeout=0.5):
    """The protocol version a server speaks (2 or 1, tried in that order with a handshake of
    each from `host`), or None if neither is answered."""
    for v in (V2, V1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((host, 0))
            sess, _ = connect(s, server, secret, v, timeout=timeout, retry=0.1)
        finally:
            s.close()
        if sess is not None:
            return v
    return None


# ---- XChaCha20-Poly1305-IETF (libsodium's), for COOKIE: HChaCha20 subkey, then the IETF AEAD ----

def _rotl(v, c):
    return ((v << c) & 0xffffffff) | (v >> (32 - c))


def _qr(x, a, b, c, d):
    x[a] = (x[a] + x[b]) & 0xffffffff
    x[d] = _rotl(x[d] ^ x[a], 16)
    x[c] = (x[c] + x[d]) & 0xffffffff
    x[b] = _rotl(x[b] ^ x[c], 12)
    x[a] = (x[a] + x[b]) & 0xffffffff
    x[d] = _rotl(x[d] ^ x[a], 8)
    x[c] = (x[c] + x[d]) & 0xffffffff
    x[b] = _rotl(x[b] ^ x[c], 7)


def hchacha20(key, nonce16):
    x = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]
    x += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        _qr(x, 0, 4, 8, 12)
        _qr(x, 1, 5, 9, 13)
        _qr(x, 2, 6, 10, 14)
        _qr(x, 3, 7, 11, 15)
        _qr(x, 0, 5, 10, 15)
        _qr(x, 1, 6, 11, 12)
        _qr(x, 2, 7, 8, 13)
        _qr(x, 3, 4, 9, 14)
    return struct.pack("<8I", *(x[0:4] + x[12:16]))


def xchacha_seal(key, nonce24, plain, ad):
    need_crypto()
    sub = hchacha20(key, nonce24[:16])
    return _mods["ChaCha20Poly1305"](sub).encrypt(b"\0\0\0\0" + nonce24[16:], plain, ad)


def xchacha_open(key, nonce24, ct, ad):
    need_crypto()
    sub = hchacha20(key, nonce24[:16])
    try:
        return _mods["ChaCha20Poly1305"](sub).decrypt(b"\0\0\0\0" + nonce24[16:], ct, ad)
    except _mods["InvalidTag"]:
        return None


def self_check():
    """Checks of this module against published values and dissononce itself; raises
    AssertionError. HChaCha20: draft-irtf-cfrg-xchacha-03 §2.2.1."""
    k = bytes(range(32))
    n = bytes.fromhex("000000090000004a0000000031415927")
    assert hchacha20(k, n).hex() == ("82413b4227b27bfed30e42508a877d73"
                                     "a0f9e4d58a74a853c12ec41326d3ecdc"), "HChaCha20 vector"
    assert [cap_encode(r) for r in (0, -1, 0.3, 200, 4095, 4096, 4097, CAP_MAX, 1e12)] == [
        0, 0, 1, 200, 4095, 0x1000 | 2048, 0x1000 | 2049, 0xffff, 0xffff], "caps on the wire"
    assert cap_decode(0x3000 | 25) == 200 and cap_decode(0xf000) == 0
    assert len(probe(0, 1)) == 50 and len(probe(0, 1, caps=[200])) == 82
    secret = os.urandom(32)
    ini = Initiator(secret, prev_sid=5, prev_resume=os.urandom(32), mode=1)
    assert len(ini.dgram) == INIT_LEN
    got, rs = read_init(secret, ini.dgram)
    assert got is not None and got["prev_sid"] == 5 and got["mode"] == 1
    assert abs(got["time"] - time.time()) < 5
    buf = bytearray()
    cs = rs.write_message(bytes(8), buf)
    body = header(V2, RESPONSE) + struct.pack(">Q", ini.sid) + bytes(buf)
    resp = body + b2b(body, k_mac1(secret), 16)
    sess = ini.read_response(resp)
    assert sess is not None and sess.h == rs.symmetricstate.get_handshake_hash()
    assert transcript_hash(secret, ini.dgram, resp) == sess.h, "h from the transcript"
    d = sess.seal(flow(7, b"x"))
    assert open_data(d, cs[0]._key) == flow(7, b"x")
    assert read_init(os.urandom(32), ini.dgram) == (None, None)
    # Key mode: the initiator against dissononce's IKpsk2 responder.
    cpriv, spriv = os.urandom(32), os.urandom(32)
    ini = Initiator(secret, static=cpriv, server_pub=public_key(spriv))
    assert len(ini.dgram) == INIT_KEY_LEN
    assert ini.mac1 == b2b(ini.dgram[:148], key_mac1(public_key(spriv)), 16)
    m = _mods
    rs = m["HandshakeState"](m["SymmetricState"](m["CipherState"](m["ChaChaPolyCipher"]()),
                                                 m["Blake2bHash"]()), m["X25519DH"]())
    rs.initialize(m["PSK"](2).modify(m["IK"]()), False, ini.dgram[:12],
                  s=m["X25519DH"]().generate_keypair(m["PrivateKey"](spriv)), psks=(secret,))
    buf = bytearray()
    rs.read_message(ini.dgram[12:148], buf)
    assert parse_init_payload(bytes(buf))["prev_sid"] == 0 and rs.rs.data == public_key(cpriv)
    buf = bytearray()
    cs = rs.write_message(bytes(8), buf)
    body = header(V2, RESPONSE) + struct.pack(">Q", ini.sid) + bytes(buf)
    sess = ini.read_response(body + b2b(body, key_mac1(public_key(cpriv)), 16))
    assert sess is not None and open_data(sess.seal(b"\x01" * 9), cs[0]._key) == b"\x01" * 9
