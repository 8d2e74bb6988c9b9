#include "core/handshake.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

/* BLAKE2b-256 keyed with the 32-byte secret, over a label (§3). */
static void derive_keyed(uint8_t out[MPT_KEY_LEN], const uint8_t key[MPT_KEY_LEN],
                         const char *label)
{
    crypto_generichash(out, MPT_KEY_LEN, (const uint8_t *)label, strlen(label), key, MPT_KEY_LEN);
}

/* BLAKE2b-256(label || public key), unkeyed, as WireGuard derives its MAC1 and cookie keys. */
static void derive_pub(uint8_t out[MPT_KEY_LEN], const char *label, const uint8_t pub[MPT_KEY_LEN])
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, MPT_KEY_LEN);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
    crypto_generichash_update(&st, pub, MPT_KEY_LEN);
    crypto_generichash_final(&st, out, MPT_KEY_LEN);
}

static void mac16(uint8_t out[MPT_MAC_LEN], const uint8_t *key, size_t keylen, const uint8_t *msg,
                  size_t len)
{
    crypto_generichash(out, MPT_MAC_LEN, msg, len, key, keylen);
}

int mpt_hs_keys_secret(struct mpt_hs_keys *k, const uint8_t secret[MPT_KEY_LEN])
{
    if (sodium_init() < 0)
        return -EINVAL;
    memset(k, 0, sizeof(*k));
    memcpy(k->psk, secret, MPT_KEY_LEN);
    derive_keyed(k->mac1_init, secret, "mptunnel v2 mac1");
    memcpy(k->mac1_resp, k->mac1_init, MPT_KEY_LEN);
    derive_keyed(k->cookie, secret, "mptunnel v2 cookie");
    return 0;
}

void mpt_hs_mac1_resp_key(uint8_t out[MPT_KEY_LEN], const uint8_t pub[MPT_KEY_LEN])
{
    derive_pub(out, "mac1----", pub);
}

int mpt_hs_keys_pair(struct mpt_hs_keys *k, const uint8_t priv[MPT_KEY_LEN],
                     const uint8_t *server_pub, const uint8_t *psk)
{
    const uint8_t *spub;

    if (sodium_init() < 0)
        return -EINVAL;
    memset(k, 0, sizeof(*k));
    k->keymode = 1;
    memcpy(k->priv, priv, MPT_KEY_LEN);
    if (crypto_scalarmult_base(k->pub, k->priv) != 0) {
        mpt_hs_keys_wipe(k);
        return -EINVAL;
    }
    if (psk)
        memcpy(k->psk, psk, MPT_KEY_LEN);
    if (server_pub)
        memcpy(k->remote, server_pub, MPT_KEY_LEN);
    /* INITs go to the server: their MAC1 and the COOKIE key follow from its public key. */
    spub = server_pub ? server_pub : k->pub;
    derive_pub(k->mac1_init, "mac1----", spub);
    derive_pub(k->cookie, "cookie--", spub);
    /* RESPONSEs come to the client: keyed by its own public key (the server derives it per peer).
     */
    derive_pub(k->mac1_resp, "mac1----", k->pub);
    return 0;
}

void mpt_hs_keys_wipe(struct mpt_hs_keys *k)
{
    sodium_memzero(k, sizeof(*k));
}

size_t mpt_hs_init_len(int keymode)
{
    return keymode ? MPT_INIT_IK_LEN : MPT_INIT_NN_LEN;
}

void mpt_tai64n(uint8_t out[MPT_TAI64N_LEN], uint64_t unix_us)
{
    mpt_put64(out, (1ULL << 62) + unix_us / 1000000);
    mpt_put32(out + 8, (uint32_t)(unix_us % 1000000) * 1000);
}

int mpt_tai64n_parse(const uint8_t tai[MPT_TAI64N_LEN], uint64_t *us)
{
    uint64_t s = mpt_get64(tai);
    uint32_t ns = mpt_get32(tai + 8);

    if (s < (1ULL << 62) || s - (1ULL << 62) > (1ULL << 43) || ns >= 1000000000u)
        return -EINVAL;
    *us = (s - (1ULL << 62)) * 1000000 + ns / 1000;
    return 0;
}

void mpt_hs_resume_key(uint8_t out[MPT_KEY_LEN], const uint8_t c2s[MPT_KEY_LEN],
                       const uint8_t s2c[MPT_KEY_LEN])
{
    static const char label[] = "mptunnel v2 resume";
    uint8_t key[2 * MPT_KEY_LEN];

    memcpy(key, c2s, MPT_KEY_LEN);
    memcpy(key + MPT_KEY_LEN, s2c, MPT_KEY_LEN);
    crypto_generichash(out, MPT_KEY_LEN, (const uint8_t *)label, sizeof(label) - 1, key,
                       sizeof(key));
    sodium_memzero(key, sizeof(key));
}

void mpt_hs_proof(uint8_t out[MPT_PROOF_LEN], const uint8_t resume[MPT_KEY_LEN], uint64_t sid,
                  const uint8_t e_pub[MPT_KEY_LEN])
{
    uint8_t m[8 + MPT_KEY_LEN];

    mpt_put64(m, sid);
    memcpy(m + 8, e_pub, MPT_KEY_LEN);
    mac16(out, resume, MPT_KEY_LEN, m, sizeof(m));
}

static void put_header(uint8_t *m, int type, uint64_t sid)
{
    m[0] = MPT_PROTO_VERSION;
    m[1] = (uint8_t)type;
    m[2] = m[3] = 0;
    mpt_put64(m + 4, sid);
}

/* ---- Client ---- */

int mpt_hs_client_init(struct mpt_hs_client *st, const struct mpt_hs_keys *k,
                       const struct mpt_hs_init_params *ip)
{
    struct mpt_noise_params np = {0};
    uint8_t payload[MPT_INIT_PAYLOAD_LEN] = {0}, e[MPT_KEY_LEN], e_pub[MPT_KEY_LEN];
    size_t noise_len;
    int n;

    memset(st, 0, sizeof(*st));
    st->sid = ip->sid;
    st->flags = ip->flags;
    put_header(st->msg, MPT_TYPE_INIT, ip->sid);
    np.pattern = k->keymode ? MPT_NOISE_IKPSK2 : MPT_NOISE_NNPSK0;
    np.initiator = 1;
    np.prologue = st->msg;
    np.prologue_len = MPT_INIT_OFF_NOISE;
    np.psk = k->psk;
    if (k->keymode) {
        np.s = k->priv;
        np.rs = k->remote;
    }
    if (mpt_noise_handshake_init(&st->hs, &np) != 0)
        return -EINVAL;
    /* The ephemeral key is made here rather than by the `e` token: the proof binds it. */
    mpt_random(e, sizeof(e));
    if (crypto_scalarmult_base(e_pub, e) != 0 ||
        mpt_noise_handshake_fix_ephemeral(&st->hs, e) != 0) {
        mpt_wipe(e, sizeof(e));
        mpt_hs_client_wipe(st);
        return -EINVAL;
    }
    mpt_wipe(e, sizeof(e));
    mpt_tai64n(payload + MPT_INIT_P_TAI, ip->unix_us);
    mpt_put64(payload + MPT_INIT_P_PREV, ip->prev);
    if (ip->prev && ip->prev_resume)
        mpt_hs_proof(payload + MPT_INIT_P_PROOF, ip->prev_resume, ip->sid, e_pub);
    payload[MPT_INIT_P_MODE] = ip->mode;
    payload[MPT_INIT_P_FLAGS] = ip->flags;
    noise_len = mpt_noise_handshake_msg_len(&st->hs, sizeof(payload));
    n = mpt_noise_handshake_write(&st->hs, payload, sizeof(payload), st->msg + MPT_INIT_OFF_NOISE,
                                  sizeof(st->msg) - MPT_INIT_OFF_NOISE);
    mpt_wipe(payload, sizeof(payload));
    if (n < 0 || (size_t)n != noise_len ||
        MPT_INIT_OFF_NOISE + noise_len + 2 * MPT_MAC_LEN != mpt_hs_init_len(k->keymode)) {
        mpt_hs_client_wipe(st);
        return -EINVAL;
    }
    st->len = mpt_hs_init_len(k->keymode);
    mac16(st->msg + st->len - 2 * MPT_MAC_LEN, k->mac1_init, MPT_KEY_LEN, st->msg,
          st->len - 2 * MPT_MAC_LEN);
    if (ip->cookie)
        mpt_hs_client_set_cookie(st, ip->cookie);
    return 0;
}

void mpt_hs_client_set_cookie(struct mpt_hs_client *st, const uint8_t cookie[MPT_COOKIE_LEN])
{
    mac16(st->msg + st->len - MPT_MAC_LEN, cookie, MPT_COOKIE_LEN, st->msg, st->len - MPT_MAC_LEN);
}

int mpt_hs_client_response(struct mpt_hs_client *st, const struct mpt_hs_keys *k,
                           const uint8_t *buf, size_t len, struct mpt_hs_result *out)
{
    struct mpt_noise_handshake hs;
    struct mpt_noise_cipher tx, rx;
    uint8_t mac[MPT_MAC_LEN], payload[MPT_RESPONSE_PAYLOAD_LEN];
    int n, rc = 0;

    if (len != MPT_RESPONSE_LEN || mpt_get64(buf + MPT_RESPONSE_OFF_SID) != st->sid || !st->sid)
        return -EBADMSG;
    mac16(mac, k->mac1_resp, MPT_KEY_LEN, buf, MPT_RESPONSE_OFF_MAC1);
    if (!mpt_mac_equal(mac, buf + MPT_RESPONSE_OFF_MAC1))
        return -EBADMSG;
    /* On a copy: a RESPONSE that fails leaves the handshake as it was, for the genuine one. */
    hs = st->hs;
    n = mpt_noise_handshake_read(&hs, buf + MPT_RESPONSE_OFF_NOISE, MPT_RESPONSE_NOISE_LEN, payload,
                                 sizeof(payload));
    if (n != MPT_RESPONSE_PAYLOAD_LEN) {
        mpt_noise_handshake_wipe(&hs);
        return -EBADMSG;
    }
    for (int i = 1; i < MPT_RESPONSE_PAYLOAD_LEN; i++)
        if (payload[i])
            rc = -EPROTO;
    out->cipher = payload[MPT_RESPONSE_P_CIPHER];
    if (out->cipher != MPT_CIPHER_CHACHA20 &&
        !(out->cipher == MPT_CIPHER_AES256GCM && (st->flags & MPT_INIT_FLAG_AES)))
        rc = -EPROTO;
    if (rc != 0) {
        mpt_noise_handshake_wipe(&hs);
        return rc;
    }
    if (mpt_noise_handshake_split(&hs, &tx, &rx) != 0) {
        mpt_noise_handshake_wipe(&hs);
        return -EPROTO;
    }
    memcpy(out->tx, tx.k, MPT_KEY_LEN);
    memcpy(out->rx, rx.k, MPT_KEY_LEN);
    mpt_hs_resume_key(out->resume, out->tx, out->rx);
    mpt_noise_cipher_wipe(&tx);
    mpt_noise_cipher_wipe(&rx);
    mpt_hs_client_wipe(st);
    return 0;
}

int mpt_hs_client_cookie(const struct mpt_hs_client *st, const struct mpt_hs_keys *k,
                         const uint8_t *buf, size_t len, uint8_t cookie[MPT_COOKIE_LEN])
{
    unsigned long long clen;

    if (len != MPT_COOKIE_MSG_LEN || !st->sid || mpt_get64(buf + MPT_COOKIE_OFF_SID) != st->sid)
        return -EBADMSG;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, &clen, NULL, buf + MPT_COOKIE_OFF_BOX,
                                                   MPT_COOKIE_LEN + MPT_TAG_LEN,
                                                   st->msg + st->len - 2 * MPT_MAC_LEN, MPT_MAC_LEN,
                                                   buf + MPT_COOKIE_OFF_NONCE, k->cookie) != 0 ||
        clen != MPT_COOKIE_LEN)
        return -EBADMSG;
    return 0;
}

void mpt_hs_client_wipe(struct mpt_hs_client *st)
{
    mpt_noise_handshake_wipe(&st->hs);
    sodium_memzero(st, sizeof(*st));
}

/* ---- Server ---- */

int mpt_hs_check_mac1(const struct mpt_hs_keys *k, const uint8_t *buf, size_t len)
{
    uint8_t mac[MPT_MAC_LEN];

    if (len != mpt_hs_init_len(k->keymode))
        return 0;
    mac16(mac, k->mac1_init, MPT_KEY_LEN, buf, len - 2 * MPT_MAC_LEN);
    return mpt_mac_equal(mac, buf + len - 2 * MPT_MAC_LEN);
}

static void cookie_rotate(struct mpt_hs_cookies *c, uint64_t now)
{
    if (c->changed_us && now - c->changed_us < MPT_HS_COOKIE_US)
        return;
    if (c->changed_us && now - c->changed_us < 2 * MPT_HS_COOKIE_US)
        memcpy(c->prev, c->secret, MPT_KEY_LEN);
    else
        mpt_random(c->prev, MPT_KEY_LEN);
    mpt_random(c->secret, MPT_KEY_LEN);
    c->changed_us = now ? now : 1;
}

static void cookie_of(uint8_t out[MPT_COOKIE_LEN], const uint8_t secret[MPT_KEY_LEN],
                      const struct mpt_addr *from)
{
    uint8_t m[18];
    size_t n;

    if (from->u.sa.sa_family == AF_INET6) {
        memcpy(m, &from->u.in6.sin6_addr, 16);
        n = 16;
    } else {
        memcpy(m, &from->u.in4.sin_addr, 4);
        n = 4;
    }
    mpt_put16(m + n, mpt_addr_port(from));
    mac16(out, secret, MPT_KEY_LEN, m, n + 2);
}

int mpt_hs_check_mac2(struct mpt_hs_cookies *c, uint64_t now, const struct mpt_addr *from,
                      const uint8_t *buf, size_t len)
{
    uint8_t cookie[MPT_COOKIE_LEN], mac[MPT_MAC_LEN];
    int ok = 0;

    cookie_rotate(c, now);
    for (int i = 0; i < 2 && !ok; i++) {
        cookie_of(cookie, i ? c->prev : c->secret, from);
        mac16(mac, cookie, MPT_COOKIE_LEN, buf, len - MPT_MAC_LEN);
        ok = mpt_mac_equal(mac, buf + len - MPT_MAC_LEN);
    }
    return ok;
}

void mpt_hs_cookie_msg(struct mpt_hs_cookies *c, const struct mpt_hs_keys *k, uint64_t now,
                       const struct mpt_addr *from, const uint8_t *init, size_t init_len,
                       uint8_t out[MPT_COOKIE_MSG_LEN])
{
    uint8_t cookie[MPT_COOKIE_LEN];

    cookie_rotate(c, now);
    cookie_of(cookie, c->secret, from);
    put_header(out, MPT_TYPE_COOKIE, mpt_get64(init + MPT_INIT_OFF_SID));
    mpt_random(out + MPT_COOKIE_OFF_NONCE, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + MPT_COOKIE_OFF_BOX, NULL, cookie, sizeof(cookie), init + init_len - 2 * MPT_MAC_LEN,
        MPT_MAC_LEN, NULL, out + MPT_COOKIE_OFF_NONCE, k->cookie);
}

int mpt_hs_server_read(struct mpt_hs_server *st, const struct mpt_hs_keys *k, const uint8_t *buf,
                       size_t len)
{
    struct mpt_noise_params np = {0};
    uint8_t payload[MPT_INIT_PAYLOAD_LEN];
    const uint8_t *rs;
    int n;

    memset(st, 0, sizeof(*st));
    if (len != mpt_hs_init_len(k->keymode))
        return -EBADMSG;
    np.pattern = k->keymode ? MPT_NOISE_IKPSK2 : MPT_NOISE_NNPSK0;
    np.initiator = 0;
    np.prologue = buf;
    np.prologue_len = MPT_INIT_OFF_NOISE;
    if (k->keymode)
        np.s = k->priv;
    else
        np.psk = k->psk;
    if (mpt_noise_handshake_init(&st->hs, &np) != 0)
        return -EBADMSG;
    n = mpt_noise_handshake_read(&st->hs, buf + MPT_INIT_OFF_NOISE,
                                 len - MPT_INIT_OFF_NOISE - 2 * MPT_MAC_LEN, payload,
                                 sizeof(payload));
    if (n != MPT_INIT_PAYLOAD_LEN || (payload[MPT_INIT_P_FLAGS] & ~MPT_INIT_FLAG_AES) ||
        payload[38] || payload[39]) {
        mpt_wipe(payload, sizeof(payload));
        mpt_hs_server_wipe(st);
        return -EBADMSG;
    }
    st->sid = mpt_get64(buf + MPT_INIT_OFF_SID);
    memcpy(st->tai, payload + MPT_INIT_P_TAI, MPT_TAI64N_LEN);
    st->prev = mpt_get64(payload + MPT_INIT_P_PREV);
    memcpy(st->proof, payload + MPT_INIT_P_PROOF, MPT_PROOF_LEN);
    st->mode = payload[MPT_INIT_P_MODE];
    st->flags = payload[MPT_INIT_P_FLAGS];
    memcpy(st->e_pub, buf + MPT_INIT_OFF_NOISE, MPT_KEY_LEN);
    rs = mpt_noise_handshake_remote_static(&st->hs);
    if (k->keymode && rs)
        memcpy(st->remote, rs, MPT_KEY_LEN);
    memcpy(st->init_mac1, buf + len - 2 * MPT_MAC_LEN, MPT_MAC_LEN);
    mpt_wipe(payload, sizeof(payload));
    return 0;
}

int mpt_hs_server_proof_ok(const struct mpt_hs_server *st, const uint8_t resume[MPT_KEY_LEN])
{
    uint8_t want[MPT_PROOF_LEN];
    int ok;

    mpt_hs_proof(want, resume, st->sid, st->e_pub);
    ok = mpt_mac_equal(want, st->proof);
    mpt_wipe(want, sizeof(want));
    return ok;
}

int mpt_hs_server_response(struct mpt_hs_server *st, const struct mpt_hs_keys *k,
                           const uint8_t *psk, const uint8_t mac1_resp[MPT_KEY_LEN], int cipher,
                           uint8_t out[MPT_RESPONSE_LEN], struct mpt_hs_result *res)
{
    struct mpt_noise_cipher tx, rx;
    uint8_t payload[MPT_RESPONSE_PAYLOAD_LEN] = {0};
    int n;

    if (k->keymode && mpt_noise_handshake_set_psk(&st->hs, psk ? psk : k->psk) != 0) {
        mpt_hs_server_wipe(st);
        return -EINVAL;
    }
    put_header(out, MPT_TYPE_RESPONSE, st->sid);
    payload[MPT_RESPONSE_P_CIPHER] = (uint8_t)cipher;
    n = mpt_noise_handshake_write(&st->hs, payload, sizeof(payload), out + MPT_RESPONSE_OFF_NOISE,
                                  MPT_RESPONSE_NOISE_LEN);
    if (n != MPT_RESPONSE_NOISE_LEN) {
        mpt_hs_server_wipe(st);
        return n < 0 ? n : -EPROTO;
    }
    mac16(out + MPT_RESPONSE_OFF_MAC1, mac1_resp, MPT_KEY_LEN, out, MPT_RESPONSE_OFF_MAC1);
    if (mpt_noise_handshake_split(&st->hs, &tx, &rx) != 0) {
        mpt_hs_server_wipe(st);
        return -EPROTO;
    }
    memcpy(res->tx, tx.k, MPT_KEY_LEN);
    memcpy(res->rx, rx.k, MPT_KEY_LEN);
    mpt_hs_resume_key(res->resume, res->rx, res->tx); /* the server's rx is client -> server */
    res->cipher = cipher;
    mpt_noise_cipher_wipe(&tx);
    mpt_noise_cipher_wipe(&rx);
    mpt_hs_server_wipe(st);
    return 0;
}

void mpt_hs_server_wipe(struct mpt_hs_server *st)
{
    mpt_noise_handshake_wipe(&st->hs);
    sodium_memzero(st, sizeof(*st));
}

/* ---- The record of recent initiations ---- */

#define RECENT_PROBE 16 /* slots an ephemeral key may live in, from its hash onwards */

int mpt_hs_recent_check(struct mpt_hs_recent *r, uint64_t unix_us, const struct mpt_hs_server *st,
                        int record)
{
    uint64_t key = mpt_get64(st->e_pub) | 1, ts, oldest_ts = UINT64_MAX;
    unsigned base = (unsigned)(key >> 17) % MPT_HS_RECENT, free_at = MPT_HS_RECENT,
             oldest_at = base;

    if (mpt_tai64n_parse(st->tai, &ts) != 0 || (r->floored && ts <= r->floor_us) ||
        ts + MPT_HS_WINDOW_US < unix_us || ts > unix_us + MPT_HS_WINDOW_US)
        return MPT_HS_STALE;
    for (unsigned i = 0; i < RECENT_PROBE; i++) {
        unsigned at = (base + i) % MPT_HS_RECENT;
        struct mpt_hs_recent_entry *e = &r->e[at];
        int expired = !e->key || (r->floored && e->tai_us <= r->floor_us) ||
                      e->tai_us + MPT_HS_WINDOW_US < unix_us;

        if (!expired && e->key == key)
            return MPT_HS_REPLAY;
        if (expired && free_at == MPT_HS_RECENT)
            free_at = at;
        if (!expired && e->tai_us < oldest_ts) {
            oldest_ts = e->tai_us;
            oldest_at = at;
        }
    }
    if (!record)
        return MPT_HS_FRESH;
    if (free_at == MPT_HS_RECENT) {
        /* Every slot holds a live initiation: the oldest gives way, and nothing stamped at or
         * before it can be fresh any more (a replay of it would otherwise pass). */
        free_at = oldest_at;
        if (!r->floored || oldest_ts > r->floor_us)
            r->floor_us = oldest_ts;
        r->floored = 1;
        if (ts <= r->floor_us)
            return MPT_HS_STALE;
    } else if (!r->e[free_at].key) {
        r->used++;
    }
    r->e[free_at].key = key;
    r->e[free_at].tai_us = ts;
    return MPT_HS_FRESH;
}
