/* The Noise Protocol Framework, revision 34 (noiseprotocol.org/noise.html), for the two patterns
 * of core/noise.h. Section numbers below are the specification's. */
#include "core/noise.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#define BLOCK_LEN 128 /* BLAKE2b's block, for HMAC (§4.3) */
#define DH_LEN 32

enum token { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS, T_PSK };

struct pattern {
    const char *name;
    int resp_static_pre; /* pre-message `<- s` */
    int nmsgs;
    enum token msgs[2][6];
};

/* §7.4 and §9: both patterns carry a psk token, so every `e` token also does MixKey. */
static const struct pattern patterns[] = {
    [MPT_NOISE_NNPSK0] = {"Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b",
                          0,
                          2,
                          {{T_PSK, T_E, T_END}, {T_E, T_EE, T_END}}},
    [MPT_NOISE_IKPSK2] = {"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b",
                          1,
                          2,
                          {{T_E, T_ES, T_S, T_SS, T_END}, {T_E, T_EE, T_SE, T_PSK, T_END}}},
};
#define NPATTERNS (int)(sizeof(patterns) / sizeof(patterns[0]))

const char *mpt_noise_protocol_name(int pattern)
{
    return pattern >= 0 && pattern < NPATTERNS ? patterns[pattern].name : NULL;
}

/* ---- Hash functions (§4.3): HASH, HMAC-HASH, HKDF ---- */

static void hash2(uint8_t out[MPT_NOISE_HASH_LEN], const uint8_t *a, size_t alen, const uint8_t *b,
                  size_t blen)
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, MPT_NOISE_HASH_LEN);
    crypto_generichash_update(&st, a, alen);
    crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, out, MPT_NOISE_HASH_LEN);
    sodium_memzero(&st, sizeof(st));
}

/* HMAC (RFC 2104) over BLAKE2b with its 128-byte block; keys here are at most HASHLEN bytes. The
 * data is a ‖ b. */
static void hmac(uint8_t out[MPT_NOISE_HASH_LEN], const uint8_t *key, size_t keylen,
                 const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    crypto_generichash_state st;
    uint8_t pad[BLOCK_LEN], inner[MPT_NOISE_HASH_LEN];

    memset(pad, 0, sizeof(pad));
    memcpy(pad, key, keylen);
    for (size_t i = 0; i < BLOCK_LEN; i++)
        pad[i] ^= 0x36;
    crypto_generichash_init(&st, NULL, 0, MPT_NOISE_HASH_LEN);
    crypto_generichash_update(&st, pad, BLOCK_LEN);
    crypto_generichash_update(&st, a, alen);
    crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, inner, sizeof(inner));
    for (size_t i = 0; i < BLOCK_LEN; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    crypto_generichash_init(&st, NULL, 0, MPT_NOISE_HASH_LEN);
    crypto_generichash_update(&st, pad, BLOCK_LEN);
    crypto_generichash_update(&st, inner, sizeof(inner));
    crypto_generichash_final(&st, out, MPT_NOISE_HASH_LEN);
    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
    sodium_memzero(&st, sizeof(st));
}

/* HKDF(ck, ikm, 2 or 3): o3 may be NULL. */
static void hkdf(const uint8_t ck[MPT_NOISE_HASH_LEN], const uint8_t *ikm, size_t ikmlen,
                 uint8_t o1[MPT_NOISE_HASH_LEN], uint8_t o2[MPT_NOISE_HASH_LEN],
                 uint8_t o3[MPT_NOISE_HASH_LEN])
{
    static const uint8_t one = 1, two = 2, three = 3;
    uint8_t temp[MPT_NOISE_HASH_LEN];

    hmac(temp, ck, MPT_NOISE_HASH_LEN, ikm, ikmlen, NULL, 0);
    hmac(o1, temp, sizeof(temp), &one, 1, NULL, 0);
    hmac(o2, temp, sizeof(temp), o1, MPT_NOISE_HASH_LEN, &two, 1);
    if (o3)
        hmac(o3, temp, sizeof(temp), o2, MPT_NOISE_HASH_LEN, &three, 1);
    sodium_memzero(temp, sizeof(temp));
}

/* ---- CipherState (§5.1) with ChaChaPoly (§12.3) ---- */

/* 32 bits of zeros followed by the little-endian 64-bit counter. */
static void nonce_of(uint8_t npub[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t n)
{
    memset(npub, 0, 4);
    for (int i = 0; i < 8; i++)
        npub[4 + i] = (uint8_t)(n >> (8 * i));
}

static void seal(const uint8_t k[MPT_NOISE_KEY_LEN], uint64_t n, const uint8_t *ad, size_t adlen,
                 const uint8_t *pt, size_t ptlen, uint8_t *out)
{
    uint8_t npub[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

    nonce_of(npub, n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, ptlen, ad, adlen, NULL, npub, k);
}

static int open_(const uint8_t k[MPT_NOISE_KEY_LEN], uint64_t n, const uint8_t *ad, size_t adlen,
                 const uint8_t *ct, size_t ctlen, uint8_t *out)
{
    uint8_t npub[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

    nonce_of(npub, n);
    return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, ctlen, ad, adlen, npub,
                                                     k);
}

static void cipher_init_key(struct mpt_noise_cipher *cs, const uint8_t *k)
{
    memcpy(cs->k, k, MPT_NOISE_KEY_LEN);
    cs->n = 0;
    cs->has_key = 1;
}

int mpt_noise_cipher_encrypt(struct mpt_noise_cipher *cs, const uint8_t *ad, size_t adlen,
                             const uint8_t *pt, size_t ptlen, uint8_t *out, size_t cap)
{
    if (!cs->has_key)
        return -EINVAL;
    if (ptlen > MPT_NOISE_MAX_MSG - MPT_NOISE_TAG_LEN || cap < ptlen + MPT_NOISE_TAG_LEN)
        return -EMSGSIZE;
    if (cs->n == UINT64_MAX)
        return -EOVERFLOW;
    seal(cs->k, cs->n, ad, adlen, pt, ptlen, out);
    cs->n++;
    return (int)(ptlen + MPT_NOISE_TAG_LEN);
}

int mpt_noise_cipher_decrypt(struct mpt_noise_cipher *cs, const uint8_t *ad, size_t adlen,
                             const uint8_t *ct, size_t ctlen, uint8_t *out, size_t cap)
{
    if (!cs->has_key)
        return -EINVAL;
    if (ctlen > MPT_NOISE_MAX_MSG)
        return -EMSGSIZE;
    if (ctlen < MPT_NOISE_TAG_LEN)
        return -EBADMSG;
    if (cap < ctlen - MPT_NOISE_TAG_LEN)
        return -EMSGSIZE;
    if (cs->n == UINT64_MAX)
        return -EOVERFLOW;
    if (open_(cs->k, cs->n, ad, adlen, ct, ctlen, out) != 0)
        return -EBADMSG;
    cs->n++;
    return (int)(ctlen - MPT_NOISE_TAG_LEN);
}

void mpt_noise_cipher_set_nonce(struct mpt_noise_cipher *cs, uint64_t n)
{
    cs->n = n;
}

int mpt_noise_cipher_rekey(struct mpt_noise_cipher *cs)
{
    uint8_t zeros[MPT_NOISE_KEY_LEN + MPT_NOISE_TAG_LEN];

    if (!cs->has_key)
        return -EINVAL;
    memset(zeros, 0, sizeof(zeros));
    seal(cs->k, UINT64_MAX, NULL, 0, zeros, MPT_NOISE_KEY_LEN, zeros);
    memcpy(cs->k, zeros, MPT_NOISE_KEY_LEN);
    sodium_memzero(zeros, sizeof(zeros));
    return 0;
}

void mpt_noise_cipher_wipe(struct mpt_noise_cipher *cs)
{
    if (cs)
        sodium_memzero(cs, sizeof(*cs));
}

/* ---- SymmetricState (§5.2) ---- */

static void mix_hash(struct mpt_noise_symmetric *ss, const uint8_t *data, size_t len)
{
    hash2(ss->h, ss->h, MPT_NOISE_HASH_LEN, data, len);
}

static void mix_key(struct mpt_noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
    uint8_t tk[MPT_NOISE_HASH_LEN];

    hkdf(ss->ck, ikm, len, ss->ck, tk, NULL);
    cipher_init_key(&ss->cs, tk); /* truncated to 32 bytes (HASHLEN 64) */
    sodium_memzero(tk, sizeof(tk));
}

static void mix_key_and_hash(struct mpt_noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
    uint8_t th[MPT_NOISE_HASH_LEN], tk[MPT_NOISE_HASH_LEN];

    hkdf(ss->ck, ikm, len, ss->ck, th, tk);
    mix_hash(ss, th, sizeof(th));
    cipher_init_key(&ss->cs, tk);
    sodium_memzero(th, sizeof(th));
    sodium_memzero(tk, sizeof(tk));
}

/* Writes len + 16 bytes (len without a key) at out. */
static void encrypt_and_hash(struct mpt_noise_symmetric *ss, const uint8_t *pt, size_t len,
                             uint8_t *out)
{
    if (ss->cs.has_key) {
        seal(ss->cs.k, ss->cs.n, ss->h, MPT_NOISE_HASH_LEN, pt, len, out);
        ss->cs.n++;
        len += MPT_NOISE_TAG_LEN;
    } else if (len) {
        memmove(out, pt, len);
    }
    mix_hash(ss, out, len);
}

/* Reads ctlen bytes (at least a tag's with a key) into out. Returns 0 or -EBADMSG. */
static int decrypt_and_hash(struct mpt_noise_symmetric *ss, const uint8_t *ct, size_t ctlen,
                            uint8_t *out)
{
    uint8_t next_h[MPT_NOISE_HASH_LEN];

    hash2(next_h, ss->h, MPT_NOISE_HASH_LEN, ct, ctlen);
    if (ss->cs.has_key) {
        if (open_(ss->cs.k, ss->cs.n, ss->h, MPT_NOISE_HASH_LEN, ct, ctlen, out) != 0)
            return -EBADMSG;
        ss->cs.n++;
    } else if (ctlen) {
        memmove(out, ct, ctlen);
    }
    memcpy(ss->h, next_h, sizeof(next_h));
    return 0;
}

/* ---- HandshakeState (§5.3) ---- */

static int dh(uint8_t out[DH_LEN], const uint8_t priv[MPT_NOISE_KEY_LEN],
              const uint8_t pub[MPT_NOISE_KEY_LEN])
{
    /* libsodium refuses an all-zero result too; the check here does not depend on it. */
    if (crypto_scalarmult(out, priv, pub) != 0 || sodium_is_zero(out, DH_LEN))
        return -EPROTO;
    return 0;
}

int mpt_noise_pubkey(uint8_t pub[MPT_NOISE_KEY_LEN], const uint8_t priv[MPT_NOISE_KEY_LEN])
{
    if (sodium_init() < 0 || crypto_scalarmult_base(pub, priv) != 0)
        return -EINVAL;
    return 0;
}

void mpt_noise_handshake_wipe(struct mpt_noise_handshake *hs)
{
    if (hs)
        sodium_memzero(hs, sizeof(*hs));
}

static int fail(struct mpt_noise_handshake *hs, int err)
{
    mpt_noise_handshake_wipe(hs);
    hs->state = MPT_NOISE_HS_FAILED;
    return err;
}

int mpt_noise_handshake_init(struct mpt_noise_handshake *hs, const struct mpt_noise_params *p)
{
    const struct pattern *pat;
    size_t namelen;

    memset(hs, 0, sizeof(*hs));
    if (sodium_init() < 0 || p->pattern < 0 || p->pattern >= NPATTERNS ||
        (p->prologue_len && !p->prologue))
        return fail(hs, -EINVAL);
    pat = &patterns[p->pattern];
    if (p->pattern == MPT_NOISE_NNPSK0 ? (p->s || p->rs)
                                       : (!p->s || (p->initiator ? !p->rs : p->rs != NULL)))
        return fail(hs, -EINVAL);
    hs->pattern = p->pattern;
    hs->initiator = p->initiator ? 1 : 0;
    if (p->s) {
        memcpy(hs->s, p->s, MPT_NOISE_KEY_LEN);
        if (mpt_noise_pubkey(hs->s_pub, hs->s) != 0)
            return fail(hs, -EINVAL);
        hs->has_s = 1;
    }
    if (p->rs) {
        memcpy(hs->rs, p->rs, MPT_NOISE_KEY_LEN);
        hs->has_rs = 1;
    }
    if (p->psk) {
        memcpy(hs->psk, p->psk, MPT_NOISE_KEY_LEN);
        hs->has_psk = 1;
    }
    /* InitializeSymmetric: a name of at most HASHLEN bytes is h itself, zero-padded. */
    namelen = strlen(pat->name);
    memcpy(hs->ss.h, pat->name, namelen);
    memcpy(hs->ss.ck, hs->ss.h, MPT_NOISE_HASH_LEN);
    mix_hash(&hs->ss, p->prologue, p->prologue_len);
    if (pat->resp_static_pre)
        mix_hash(&hs->ss, hs->initiator ? hs->rs : hs->s_pub, MPT_NOISE_KEY_LEN);
    hs->state = MPT_NOISE_HS_RUNNING;
    return 0;
}

int mpt_noise_handshake_set_psk(struct mpt_noise_handshake *hs,
                                const uint8_t psk[MPT_NOISE_KEY_LEN])
{
    if (hs->state != MPT_NOISE_HS_RUNNING)
        return -EINVAL;
    memcpy(hs->psk, psk, MPT_NOISE_KEY_LEN);
    hs->has_psk = 1;
    return 0;
}

int mpt_noise_handshake_fix_ephemeral(struct mpt_noise_handshake *hs,
                                      const uint8_t e[MPT_NOISE_KEY_LEN])
{
    if (hs->state != MPT_NOISE_HS_RUNNING)
        return -EINVAL;
    memcpy(hs->fixed_e, e, MPT_NOISE_KEY_LEN);
    hs->has_fixed_e = 1;
    return 0;
}

int mpt_noise_handshake_writing(const struct mpt_noise_handshake *hs)
{
    /* The initiator writes the even messages. */
    return hs->state == MPT_NOISE_HS_RUNNING && (hs->msg % 2 == 0) == (hs->initiator == 1);
}

size_t mpt_noise_handshake_msg_len(const struct mpt_noise_handshake *hs, size_t payload_len)
{
    const enum token *t;
    int has_key = hs->ss.cs.has_key;
    size_t len = 0;

    if (hs->state != MPT_NOISE_HS_RUNNING)
        return 0;
    for (t = patterns[hs->pattern].msgs[hs->msg]; *t != T_END; t++) {
        if (*t == T_E)
            len += DH_LEN;
        else if (*t == T_S)
            len += DH_LEN + (has_key ? MPT_NOISE_TAG_LEN : 0);
        if (*t != T_S)
            has_key = 1; /* every other token of a psk pattern does MixKey */
    }
    return len + payload_len + (has_key ? MPT_NOISE_TAG_LEN : 0);
}

/* The DH of a token: ee, es, se or ss, from this side's point of view. */
static int dh_token(struct mpt_noise_handshake *hs, enum token t)
{
    uint8_t out[DH_LEN];
    const uint8_t *priv, *pub;
    int rc;

    switch (t) {
    case T_EE:
        priv = hs->e, pub = hs->re;
        break;
    case T_ES:
        priv = hs->initiator ? hs->e : hs->s, pub = hs->initiator ? hs->rs : hs->re;
        break;
    case T_SE:
        priv = hs->initiator ? hs->s : hs->e, pub = hs->initiator ? hs->re : hs->rs;
        break;
    default:
        priv = hs->s, pub = hs->rs;
        break;
    }
    rc = dh(out, priv, pub);
    if (rc == 0)
        mix_key(&hs->ss, out, DH_LEN);
    sodium_memzero(out, sizeof(out));
    return rc;
}

/* 1 if the next message has a psk token but no psk was given. */
static int psk_missing(const struct mpt_noise_handshake *hs)
{
    for (const enum token *t = patterns[hs->pattern].msgs[hs->msg]; *t != T_END; t++)
        if (*t == T_PSK && !hs->has_psk)
            return 1;
    return 0;
}

static void finish_message(struct mpt_noise_handshake *hs)
{
    hs->msg++;
    if (hs->msg == patterns[hs->pattern].nmsgs)
        hs->state = MPT_NOISE_HS_DONE;
}

int mpt_noise_handshake_write(struct mpt_noise_handshake *hs, const uint8_t *payload,
                              size_t payload_len, uint8_t *out, size_t cap)
{
    const enum token *t;
    size_t need, off = 0;
    int rc;

    if (!mpt_noise_handshake_writing(hs) || (payload_len && !payload) || psk_missing(hs))
        return -EINVAL;
    if (payload_len > MPT_NOISE_MAX_MSG)
        return -EMSGSIZE;
    need = mpt_noise_handshake_msg_len(hs, payload_len);
    if (need > MPT_NOISE_MAX_MSG || need > cap)
        return -EMSGSIZE;
    for (t = patterns[hs->pattern].msgs[hs->msg]; *t != T_END; t++) {
        if (*t == T_E && hs->has_e)
            return fail(hs, -EINVAL);
        switch (*t) {
        case T_E:
            if (hs->has_fixed_e)
                memcpy(hs->e, hs->fixed_e, MPT_NOISE_KEY_LEN);
            else
                randombytes_buf(hs->e, MPT_NOISE_KEY_LEN);
            if (mpt_noise_pubkey(hs->e_pub, hs->e) != 0)
                return fail(hs, -EINVAL);
            hs->has_e = 1;
            memcpy(out + off, hs->e_pub, DH_LEN);
            off += DH_LEN;
            mix_hash(&hs->ss, hs->e_pub, DH_LEN);
            mix_key(&hs->ss, hs->e_pub, DH_LEN); /* psk patterns (§9.2) */
            break;
        case T_S:
            encrypt_and_hash(&hs->ss, hs->s_pub, DH_LEN, out + off);
            off += DH_LEN + (hs->ss.cs.has_key ? MPT_NOISE_TAG_LEN : 0);
            break;
        case T_PSK:
            mix_key_and_hash(&hs->ss, hs->psk, MPT_NOISE_KEY_LEN);
            break;
        default:
            if ((rc = dh_token(hs, *t)) != 0)
                return fail(hs, rc);
            break;
        }
    }
    encrypt_and_hash(&hs->ss, payload, payload_len, out + off);
    off += payload_len + (hs->ss.cs.has_key ? MPT_NOISE_TAG_LEN : 0);
    finish_message(hs);
    return (int)off;
}

int mpt_noise_handshake_read(struct mpt_noise_handshake *hs, const uint8_t *msg, size_t len,
                             uint8_t *out, size_t cap)
{
    const enum token *t;
    size_t min, off = 0, slen;
    int rc;

    if (hs->state != MPT_NOISE_HS_RUNNING || mpt_noise_handshake_writing(hs) || (len && !msg) ||
        psk_missing(hs))
        return -EINVAL;
    if (len > MPT_NOISE_MAX_MSG)
        return fail(hs, -EMSGSIZE);
    min = mpt_noise_handshake_msg_len(hs, 0);
    if (len < min)
        return fail(hs, -EBADMSG);
    if (len - min > cap)
        return fail(hs, -EMSGSIZE);
    for (t = patterns[hs->pattern].msgs[hs->msg]; *t != T_END; t++) {
        if ((*t == T_PSK && !hs->has_psk) || (*t == T_E && hs->has_re) || (*t == T_S && hs->has_rs))
            return fail(hs, -EINVAL);
        switch (*t) {
        case T_E:
            memcpy(hs->re, msg + off, DH_LEN);
            hs->has_re = 1;
            off += DH_LEN;
            mix_hash(&hs->ss, hs->re, DH_LEN);
            mix_key(&hs->ss, hs->re, DH_LEN);
            break;
        case T_S:
            slen = DH_LEN + (hs->ss.cs.has_key ? MPT_NOISE_TAG_LEN : 0);
            if (decrypt_and_hash(&hs->ss, msg + off, slen, hs->rs) != 0)
                return fail(hs, -EBADMSG);
            hs->has_rs = 1;
            off += slen;
            break;
        case T_PSK:
            mix_key_and_hash(&hs->ss, hs->psk, MPT_NOISE_KEY_LEN);
            break;
        default:
            if ((rc = dh_token(hs, *t)) != 0)
                return fail(hs, rc);
            break;
        }
    }
    if (decrypt_and_hash(&hs->ss, msg + off, len - off, out) != 0)
        return fail(hs, -EBADMSG);
    finish_message(hs);
    return (int)(len - off - (hs->ss.cs.has_key ? MPT_NOISE_TAG_LEN : 0));
}

const uint8_t *mpt_noise_handshake_remote_static(const struct mpt_noise_handshake *hs)
{
    return (hs->state == MPT_NOISE_HS_RUNNING || hs->state == MPT_NOISE_HS_DONE) && hs->has_rs
               ? hs->rs
               : NULL;
}

const uint8_t *mpt_noise_handshake_hash(const struct mpt_noise_handshake *hs)
{
    return hs->state == MPT_NOISE_HS_DONE ? hs->ss.h : NULL;
}

int mpt_noise_handshake_split(struct mpt_noise_handshake *hs, struct mpt_noise_cipher *send,
                              struct mpt_noise_cipher *recv)
{
    uint8_t k1[MPT_NOISE_HASH_LEN], k2[MPT_NOISE_HASH_LEN];

    if (hs->state != MPT_NOISE_HS_DONE)
        return -EINVAL;
    hkdf(hs->ss.ck, NULL, 0, k1, k2, NULL);
    cipher_init_key(send, hs->initiator ? k1 : k2);
    cipher_init_key(recv, hs->initiator ? k2 : k1);
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
    mpt_noise_handshake_wipe(hs);
    return 0;
}
