/* The Noise Protocol Framework (revision 34) over libsodium: Noise_NNpsk0 and Noise_IKpsk2 with
 * 25519, ChaChaPoly and BLAKE2b. Sans-I/O: bytes in, bytes out, no clock, no allocation. See
 * core/NOISE.md. */
#ifndef MPT_NOISE_H
#define MPT_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define MPT_NOISE_KEY_LEN 32    /* X25519 keys, ChaChaPoly keys, the pre-shared key */
#define MPT_NOISE_HASH_LEN 64   /* BLAKE2b */
#define MPT_NOISE_TAG_LEN 16    /* Poly1305 */
#define MPT_NOISE_MAX_MSG 65535 /* the framework's limit on any message */

/* The handshake patterns. */
enum mpt_noise_pattern {
    MPT_NOISE_NNPSK0 = 0, /* -> psk, e   <- e, ee: shared-secret mode */
    MPT_NOISE_IKPSK2 = 1, /* <- s ... -> e, es, s, ss   <- e, ee, se, psk: key mode */
};

/* Noise's CipherState: a key (or none) and the nonce n of the next message. */
struct mpt_noise_cipher {
    uint8_t k[MPT_NOISE_KEY_LEN];
    uint64_t n;
    int has_key;
};

/* Noise's SymmetricState. */
struct mpt_noise_symmetric {
    struct mpt_noise_cipher cs;
    uint8_t ck[MPT_NOISE_HASH_LEN];
    uint8_t h[MPT_NOISE_HASH_LEN];
};

/* Noise's HandshakeState, with its turn and outcome. */
struct mpt_noise_handshake {
    struct mpt_noise_symmetric ss;
    int pattern;   /* enum mpt_noise_pattern */
    int initiator; /* 1 initiator, 0 responder */
    int msg;       /* index of the next message of the pattern */
    int state;     /* MPT_NOISE_HS_* */
    uint8_t s[MPT_NOISE_KEY_LEN], s_pub[MPT_NOISE_KEY_LEN];
    uint8_t e[MPT_NOISE_KEY_LEN], e_pub[MPT_NOISE_KEY_LEN];
    uint8_t rs[MPT_NOISE_KEY_LEN], re[MPT_NOISE_KEY_LEN];
    uint8_t psk[MPT_NOISE_KEY_LEN];
    uint8_t fixed_e[MPT_NOISE_KEY_LEN];
    unsigned has_s : 1, has_e : 1, has_rs : 1, has_re : 1, has_psk : 1, has_fixed_e : 1;
};

enum {
    MPT_NOISE_HS_EMPTY = 0, /* never initialised, wiped, or split */
    MPT_NOISE_HS_RUNNING,
    MPT_NOISE_HS_DONE,   /* every message processed: call mpt_noise_handshake_split */
    MPT_NOISE_HS_FAILED, /* an error: keys wiped, nothing more is accepted */
};

/* What a handshake starts from. Keys are copied; NULL where the pattern needs none. */
struct mpt_noise_params {
    int pattern;             /* enum mpt_noise_pattern */
    int initiator;           /* 1 initiator, 0 responder */
    const uint8_t *prologue; /* bytes both sides must agree on, may be NULL */
    size_t prologue_len;
    const uint8_t *s;   /* own static private key: IKpsk2 (both sides) */
    const uint8_t *rs;  /* responder's static public key: IKpsk2 initiator */
    const uint8_t *psk; /* 32 bytes; may be NULL and set later (mpt_noise_handshake_set_psk) */
};

/* The protocol name of a pattern ("Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b"), or NULL. */
const char *mpt_noise_protocol_name(int pattern);

/* X25519: pub = the public key of private key priv (clamped as X25519 does). Returns 0, or
 * -EINVAL if libsodium cannot be initialised. */
int mpt_noise_pubkey(uint8_t pub[MPT_NOISE_KEY_LEN], const uint8_t priv[MPT_NOISE_KEY_LEN]);

/* Starts a handshake (Noise §5.3 Initialize: protocol name, MixHash(prologue), pre-messages).
 * Returns 0, or -EINVAL if a key the pattern needs is missing, one it does not use is given, or
 * libsodium fails (hs is then wiped). */
int mpt_noise_handshake_init(struct mpt_noise_handshake *hs, const struct mpt_noise_params *p);

/* Sets the pre-shared key before the message with the psk token is written or read: the IKpsk2
 * responder learns from the first message (mpt_noise_handshake_remote_static) whose key to use.
 * Returns 0, or -EINVAL if the handshake is not running. */
int mpt_noise_handshake_set_psk(struct mpt_noise_handshake *hs,
                                const uint8_t psk[MPT_NOISE_KEY_LEN]);

/* The ephemeral private key that this side's `e` token uses instead of fresh random bytes: for a
 * caller that needs the public key before the message is written (PROTOCOL.md §3's proof binds
 * it; the key must then be fresh random bytes), and for tests, so that a transcript is
 * deterministic. Returns 0, or -EINVAL if not running. */
int mpt_noise_handshake_fix_ephemeral(struct mpt_noise_handshake *hs,
                                      const uint8_t e[MPT_NOISE_KEY_LEN]);

/* 1 if it is this side's turn to write, 0 if to read (or the handshake is not running). */
int mpt_noise_handshake_writing(const struct mpt_noise_handshake *hs);

/* Length of the next message this side writes with a payload of `payload_len` bytes. */
size_t mpt_noise_handshake_msg_len(const struct mpt_noise_handshake *hs, size_t payload_len);

/* Writes the next handshake message with `payload` into out (cap bytes; must not overlap the
 * payload). Returns its length, -EINVAL if not this side's turn or the message needs a psk not
 * yet given (both without changing hs), -EMSGSIZE if it would not fit in
 * cap or in MPT_NOISE_MAX_MSG (both without changing hs), or -EPROTO if a Diffie-Hellman result is
 * all zero (the peer's key has low order): the handshake has then failed and is wiped. */
int mpt_noise_handshake_write(struct mpt_noise_handshake *hs, const uint8_t *payload,
                              size_t payload_len, uint8_t *out, size_t cap);

/* Reads the peer's next handshake message (len bytes, hostile) and writes its payload into out
 * (cap bytes; must not overlap msg). Returns the payload's length, -EINVAL if not this side's
 * turn or the message needs a psk not yet given (hs unchanged), or — the handshake has then failed
 * and is wiped — -EMSGSIZE if msg is longer than MPT_NOISE_MAX_MSG or the payload longer than cap,
 * -EBADMSG if msg is too short or does not authenticate (wrong key, wrong prologue, altered bytes),
 * -EPROTO for an all-zero Diffie-Hellman result. */
int mpt_noise_handshake_read(struct mpt_noise_handshake *hs, const uint8_t *msg, size_t len,
                             uint8_t *out, size_t cap);

/* The remote static public key (the IKpsk2 responder knows it after the first message), or NULL. */
const uint8_t *mpt_noise_handshake_remote_static(const struct mpt_noise_handshake *hs);

/* The handshake hash h (64 bytes), for channel binding, once the handshake is done; or NULL. */
const uint8_t *mpt_noise_handshake_hash(const struct mpt_noise_handshake *hs);

/* Split() once the handshake is done: this side's sending and receiving CipherStates (initiator:
 * send = c1, recv = c2; responder the reverse). hs is wiped. Returns 0, or -EINVAL if not done. */
int mpt_noise_handshake_split(struct mpt_noise_handshake *hs, struct mpt_noise_cipher *send,
                              struct mpt_noise_cipher *recv);

/* Wipes every key of the handshake (sodium_memzero); hs may be NULL. */
void mpt_noise_handshake_wipe(struct mpt_noise_handshake *hs);

/* EncryptWithAd: seals pt (ptlen bytes) with the next nonce into out (cap bytes, at least
 * ptlen + 16; out == pt allowed) and increments n. Returns ptlen + 16, -EINVAL without a key,
 * -EMSGSIZE if it does not fit (in cap or in a Noise message), -EOVERFLOW once n reached
 * 2^64 - 1. */
int mpt_noise_cipher_encrypt(struct mpt_noise_cipher *cs, const uint8_t *ad, size_t adlen,
                             const uint8_t *pt, size_t ptlen, uint8_t *out, size_t cap);

/* DecryptWithAd: opens ct (ctlen bytes, hostile) with nonce n into out (cap bytes, at least
 * ctlen - 16; out == ct allowed) and increments n. Returns the plaintext's length, -EBADMSG if
 * it is shorter than a tag or does not authenticate (n and the key then stay as they were, so
 * one altered datagram never disturbs the ones after it), -EMSGSIZE if too long, -EINVAL without
 * a key, -EOVERFLOW once n reached 2^64 - 1. */
int mpt_noise_cipher_decrypt(struct mpt_noise_cipher *cs, const uint8_t *ad, size_t adlen,
                             const uint8_t *ct, size_t ctlen, uint8_t *out, size_t cap);

/* SetNonce: the nonce of the next message (transport with explicit counters, out of order). */
void mpt_noise_cipher_set_nonce(struct mpt_noise_cipher *cs, uint64_t n);

/* Rekey: k = the first 32 bytes of ENCRYPT(k, 2^64 - 1, empty, 32 zero bytes); n unchanged.
 * Returns 0, or -EINVAL without a key. */
int mpt_noise_cipher_rekey(struct mpt_noise_cipher *cs);

/* Wipes the key; cs may be NULL. */
void mpt_noise_cipher_wipe(struct mpt_noise_cipher *cs);

#endif
