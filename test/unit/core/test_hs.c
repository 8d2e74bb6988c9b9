/* core/handshake: protocol 2's messages on their own (PROTOCOL.md §3): both modes end with the
 * same keys on both sides, every altered byte is refused, cookies prove a source address, the
 * proof binds a continuation to its session, timestamps and the record of recent initiations
 * refuse replays however many come. */
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>

#include "core/handshake.h"
#include "task.h"

static const uint8_t secret[32] = {0x5e, 0xc7, 0xe7, 2};

static struct mpt_addr addr4(uint32_t ip, uint16_t port)
{
    struct mpt_addr a;

    memset(&a, 0, sizeof(a));
    a.u.in4.sin_family = AF_INET;
    a.u.in4.sin_addr.s_addr = htonl(ip);
    a.u.in4.sin_port = htons(port);
    return a;
}

static void key_pair(uint8_t priv[32], uint8_t pub[32], uint8_t seed)
{
    memset(priv, seed, 32);
    ASSERT_EQ(crypto_scalarmult_base(pub, priv), 0);
}

/* One handshake from INIT to both results; returns the server's read status. */
static int run(const struct mpt_hs_keys *ck, const struct mpt_hs_keys *sk, const uint8_t *peer_psk,
               const uint8_t *mac1_resp, struct mpt_hs_result *cr, struct mpt_hs_result *sr,
               uint8_t flags, int cipher)
{
    struct mpt_hs_client c;
    struct mpt_hs_server s;
    struct mpt_hs_init_params ip = {0};
    uint8_t resp[MPT_RESPONSE_LEN];
    int rc;

    ip.sid = 0x1122334455667788ULL;
    ip.unix_us = 1764547200000000ULL;
    ip.mode = 3;
    ip.flags = flags;
    ASSERT_EQ(mpt_hs_client_init(&c, ck, &ip), 0);
    ASSERT_EQ(c.len, mpt_hs_init_len(ck->keymode));
    ASSERT_EQ(mpt_wire_classify(c.msg, c.len), MPT_TYPE_INIT);
    ASSERT(mpt_hs_check_mac1(sk, c.msg, c.len));
    rc = mpt_hs_server_read(&s, sk, c.msg, c.len);
    if (rc != 0) {
        mpt_hs_client_wipe(&c);
        return rc;
    }
    ASSERT(s.sid == ip.sid);
    ASSERT_EQ(s.mode, 3);
    ASSERT_EQ(s.flags, flags);
    ASSERT(s.prev == 0);
    ASSERT_EQ(mpt_hs_server_response(&s, sk, peer_psk, mac1_resp, cipher, resp, sr), 0);
    ASSERT_EQ(mpt_wire_classify(resp, sizeof(resp)), MPT_TYPE_RESPONSE);
    rc = mpt_hs_client_response(&c, ck, resp, sizeof(resp), cr);
    mpt_hs_client_wipe(&c);
    return rc;
}

static void shared_secret(void)
{
    static struct mpt_hs_keys ck, sk;
    struct mpt_hs_result cr, sr;

    ASSERT_EQ(mpt_hs_keys_secret(&ck, secret), 0);
    ASSERT_EQ(mpt_hs_keys_secret(&sk, secret), 0);
    ASSERT_EQ(run(&ck, &sk, NULL, sk.mac1_resp, &cr, &sr, MPT_INIT_FLAG_AES, 1), 0);
    ASSERT_MEM_EQ(cr.tx, sr.rx, 32);
    ASSERT_MEM_EQ(cr.rx, sr.tx, 32);
    ASSERT_MEM_EQ(cr.resume, sr.resume, 32);
    ASSERT(memcmp(cr.tx, cr.rx, 32) != 0);
    ASSERT_EQ(cr.cipher, 1);
    /* Each handshake gets keys of its own (fresh ephemerals on both sides). */
    {
        struct mpt_hs_result cr2, sr2;
        ASSERT_EQ(run(&ck, &sk, NULL, sk.mac1_resp, &cr2, &sr2, 0, 0), 0);
        ASSERT(memcmp(cr.tx, cr2.tx, 32) != 0);
        ASSERT(memcmp(cr.resume, cr2.resume, 32) != 0);
    }
    /* A server with another secret: MAC1 already fails. */
    {
        static struct mpt_hs_keys other;
        struct mpt_hs_client c;
        struct mpt_hs_init_params ip = {.sid = 7, .unix_us = 1};
        uint8_t s2[32];
        memcpy(s2, secret, 32);
        s2[31] ^= 1;
        ASSERT_EQ(mpt_hs_keys_secret(&other, s2), 0);
        ASSERT_EQ(mpt_hs_client_init(&c, &ck, &ip), 0);
        ASSERT(!mpt_hs_check_mac1(&other, c.msg, c.len));
        mpt_hs_client_wipe(&c);
    }
}

static void key_mode(void)
{
    static struct mpt_hs_keys ck, sk, wrong;
    uint8_t cpriv[32], cpub[32], spriv[32], spub[32], psk[32], mac1[32];
    struct mpt_hs_result cr, sr;
    struct mpt_hs_client c;
    struct mpt_hs_server s;
    struct mpt_hs_init_params ip = {.sid = 9, .unix_us = 5};

    key_pair(cpriv, cpub, 0x11);
    key_pair(spriv, spub, 0x22);
    memset(psk, 0x33, sizeof(psk));
    ASSERT_EQ(mpt_hs_keys_pair(&ck, cpriv, spub, psk), 0);
    ASSERT_EQ(mpt_hs_keys_pair(&sk, spriv, NULL, NULL), 0);
    mpt_hs_mac1_resp_key(mac1, cpub);
    ASSERT_MEM_EQ(mac1, ck.mac1_resp, 32);
    ASSERT_EQ(run(&ck, &sk, psk, mac1, &cr, &sr, 0, 0), 0);
    ASSERT_MEM_EQ(cr.tx, sr.rx, 32);
    ASSERT_MEM_EQ(cr.rx, sr.tx, 32);
    /* The server learns who the client is from the first message. */
    ASSERT_EQ(mpt_hs_client_init(&c, &ck, &ip), 0);
    ASSERT_EQ(mpt_hs_server_read(&s, &sk, c.msg, c.len), 0);
    ASSERT_MEM_EQ(s.remote, cpub, 32);
    mpt_hs_server_wipe(&s);
    mpt_hs_client_wipe(&c);
    /* The peer's pre-shared key wrong at the server: the client refuses the RESPONSE. */
    {
        uint8_t bad[32];
        memcpy(bad, psk, 32);
        bad[0] ^= 1;
        ASSERT_EQ(run(&ck, &sk, bad, mac1, &cr, &sr, 0, 0), -EBADMSG);
    }
    /* A client naming another server key: MAC1 fails at this server; with MAC1 forced right,
     * Noise refuses it. */
    {
        uint8_t opriv[32], opub[32];
        key_pair(opriv, opub, 0x44);
        ASSERT_EQ(mpt_hs_keys_pair(&wrong, cpriv, opub, psk), 0);
        ASSERT_EQ(mpt_hs_client_init(&c, &wrong, &ip), 0);
        ASSERT(!mpt_hs_check_mac1(&sk, c.msg, c.len));
        ASSERT_EQ(mpt_hs_server_read(&s, &sk, c.msg, c.len), -EBADMSG);
        mpt_hs_client_wipe(&c);
    }
    /* Key mode and shared-secret mode never mix: sizes differ. */
    ASSERT_EQ(mpt_hs_init_len(0), MPT_INIT_NN_LEN);
    ASSERT_EQ(mpt_hs_init_len(1), MPT_INIT_IK_LEN);
}

/* Every bit of an INIT and of a RESPONSE flipped in turn: refused (MAC2 aside, which only load
 * asks for), and a refused RESPONSE leaves the handshake able to take the genuine one. */
static void bit_flips(void)
{
    static struct mpt_hs_keys ck, sk;
    struct mpt_hs_client c;
    struct mpt_hs_server s;
    struct mpt_hs_result cr, sr;
    struct mpt_hs_init_params ip = {.sid = 0xabc, .unix_us = 77};
    uint8_t bad[MPT_INIT_MAX_LEN], resp[MPT_RESPONSE_LEN];
    unsigned refused = 0;

    ASSERT_EQ(mpt_hs_keys_secret(&ck, secret), 0);
    ASSERT_EQ(mpt_hs_keys_secret(&sk, secret), 0);
    ASSERT_EQ(mpt_hs_client_init(&c, &ck, &ip), 0);
    for (unsigned bit = 0; bit < (c.len - MPT_MAC_LEN) * 8; bit++) {
        memcpy(bad, c.msg, c.len);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (!mpt_hs_check_mac1(&sk, bad, c.len) || mpt_hs_server_read(&s, &sk, bad, c.len) != 0)
            refused++;
        else
            mpt_hs_server_wipe(&s);
    }
    ASSERT_EQ(refused, (c.len - MPT_MAC_LEN) * 8);
    /* With MAC1 recomputed (a holder of MAC1's key, but not of the secret, in key mode): Noise
     * refuses every flip in its message. */
    for (unsigned bit = MPT_INIT_OFF_NOISE * 8; bit < (c.len - 2 * MPT_MAC_LEN) * 8; bit++) {
        memcpy(bad, c.msg, c.len);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ASSERT_EQ(mpt_hs_server_read(&s, &sk, bad, c.len), -EBADMSG);
    }
    ASSERT_EQ(mpt_hs_server_read(&s, &sk, c.msg, c.len), 0);
    ASSERT_EQ(mpt_hs_server_response(&s, &sk, NULL, sk.mac1_resp, 0, resp, &sr), 0);
    for (unsigned bit = 0; bit < sizeof(resp) * 8; bit++) {
        memcpy(bad, resp, sizeof(resp));
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ASSERT_NE(mpt_hs_client_response(&c, &ck, bad, sizeof(resp), &cr), 0);
    }
    ASSERT_EQ(mpt_hs_client_response(&c, &ck, resp, sizeof(resp), &cr), 0);
    ASSERT_MEM_EQ(cr.tx, sr.rx, 32);
}

/* AES-256-GCM only when offered: a RESPONSE choosing it otherwise is refused. */
static void cipher_offer(void)
{
    static struct mpt_hs_keys ck, sk;
    struct mpt_hs_result cr, sr;

    ASSERT_EQ(mpt_hs_keys_secret(&ck, secret), 0);
    ASSERT_EQ(mpt_hs_keys_secret(&sk, secret), 0);
    ASSERT_EQ(run(&ck, &sk, NULL, sk.mac1_resp, &cr, &sr, 0, 1), -EPROTO);
    ASSERT_EQ(run(&ck, &sk, NULL, sk.mac1_resp, &cr, &sr, 0, 2), -EPROTO);
    ASSERT_EQ(run(&ck, &sk, NULL, sk.mac1_resp, &cr, &sr, MPT_INIT_FLAG_AES, 0), 0);
    ASSERT_EQ(cr.cipher, 0);
}

static void cookies(void)
{
    static struct mpt_hs_keys ck, sk;
    static struct mpt_hs_cookies jar;
    struct mpt_hs_client c;
    struct mpt_hs_init_params ip = {.sid = 5, .unix_us = 1};
    struct mpt_addr a = addr4(0x0a000001, 1000), b = addr4(0x0a000001, 1001);
    uint8_t msg[MPT_COOKIE_MSG_LEN], cookie[MPT_COOKIE_LEN];
    uint64_t now = 1000;

    ASSERT_EQ(mpt_hs_keys_secret(&ck, secret), 0);
    ASSERT_EQ(mpt_hs_keys_secret(&sk, secret), 0);
    ASSERT_EQ(mpt_hs_client_init(&c, &ck, &ip), 0);
    ASSERT(!mpt_hs_check_mac2(&jar, now, &a, c.msg, c.len));
    mpt_hs_cookie_msg(&jar, &sk, now, &a, c.msg, c.len, msg);
    ASSERT_EQ(mpt_wire_classify(msg, sizeof(msg)), MPT_TYPE_COOKIE);
    ASSERT_LE(sizeof(msg), c.len);
    ASSERT_EQ(mpt_hs_client_cookie(&c, &ck, msg, sizeof(msg), cookie), 0);
    mpt_hs_client_set_cookie(&c, cookie);
    ASSERT(mpt_hs_check_mac2(&jar, now, &a, c.msg, c.len));
    /* It proves this address and port only. */
    ASSERT(!mpt_hs_check_mac2(&jar, now, &b, c.msg, c.len));
    /* Still good after one change of the server's secret, not after two. */
    now += MPT_HS_COOKIE_US;
    ASSERT(mpt_hs_check_mac2(&jar, now, &a, c.msg, c.len));
    now += MPT_HS_COOKIE_US;
    ASSERT(!mpt_hs_check_mac2(&jar, now, &a, c.msg, c.len));
    /* A COOKIE altered, or for another INIT, is refused. */
    for (unsigned i = 4; i < sizeof(msg); i++) {
        msg[i] ^= 0x20;
        ASSERT_EQ(mpt_hs_client_cookie(&c, &ck, msg, sizeof(msg), cookie), -EBADMSG);
        msg[i] ^= 0x20;
    }
    mpt_hs_client_wipe(&c);
}

/* A continuation is proved under the previous session's resume key, bound to the new INIT's
 * session id and ephemeral key: a proof cannot be made without the key nor moved to another INIT.
 */
static void proofs(void)
{
    static struct mpt_hs_keys k;
    struct mpt_hs_client c, other;
    struct mpt_hs_server s;
    uint8_t resume[32], wrong[32];
    struct mpt_hs_init_params ip = {.sid = 0x42, .unix_us = 1, .prev = 0x41};

    memset(resume, 0x61, sizeof(resume));
    memset(wrong, 0x62, sizeof(wrong));
    ASSERT_EQ(mpt_hs_keys_secret(&k, secret), 0);
    ip.prev_resume = resume;
    ASSERT_EQ(mpt_hs_client_init(&c, &k, &ip), 0);
    ASSERT_EQ(mpt_hs_server_read(&s, &k, c.msg, c.len), 0);
    ASSERT(s.prev == 0x41);
    ASSERT(mpt_hs_server_proof_ok(&s, resume));
    ASSERT(!mpt_hs_server_proof_ok(&s, wrong));
    mpt_hs_server_wipe(&s);
    /* Another holder of the secret, without the resume key, names the same session. */
    ip.prev_resume = wrong;
    ip.sid = 0x43;
    ASSERT_EQ(mpt_hs_client_init(&other, &k, &ip), 0);
    ASSERT_EQ(mpt_hs_server_read(&s, &k, other.msg, other.len), 0);
    ASSERT(!mpt_hs_server_proof_ok(&s, resume));
    mpt_hs_server_wipe(&s);
    mpt_hs_client_wipe(&c);
    mpt_hs_client_wipe(&other);
}

static void tai64n(void)
{
    uint8_t t[12];
    uint64_t us;

    mpt_tai64n(t, 0);
    ASSERT_EQ(t[0], 0x40);
    ASSERT_EQ(mpt_tai64n_parse(t, &us), 0);
    ASSERT(us == 0);
    mpt_tai64n(t, 1764547200123456ULL);
    ASSERT_EQ(mpt_tai64n_parse(t, &us), 0);
    ASSERT(us == 1764547200123456ULL);
    ASSERT_EQ(mpt_get32(t + 8), 123456000u);
    t[0] = 0x3f; /* before 1970 */
    ASSERT_EQ(mpt_tai64n_parse(t, &us), -EINVAL);
    mpt_tai64n(t, 5);
    mpt_put32(t + 8, 1000000000u);
    ASSERT_EQ(mpt_tai64n_parse(t, &us), -EINVAL);
}

static void st_with(struct mpt_hs_server *st, uint64_t key, uint64_t ts_us)
{
    memset(st, 0, sizeof(*st));
    mpt_put64(st->e_pub, key);
    mpt_tai64n(st->tai, ts_us);
}

/* The record of recent initiations: fresh ones pass once, replays never, stale ones never; and
 * filled far beyond its size, a replay of anything it let go is still refused (the floor). */
static void recent_record(void)
{
    static struct mpt_hs_recent r;
    struct mpt_hs_server st;
    const uint64_t now = 10000ULL * 1000000;
    unsigned refused_replays = 0, fresh_refused = 0;

    st_with(&st, 1, now);
    ASSERT_EQ(mpt_hs_recent_check(&r, now, &st, 0), MPT_HS_FRESH);
    ASSERT_EQ(mpt_hs_recent_check(&r, now, &st, 1), MPT_HS_FRESH);
    ASSERT_EQ(mpt_hs_recent_check(&r, now, &st, 1), MPT_HS_REPLAY);
    st_with(&st, 2, now - MPT_HS_WINDOW_US - 1);
    ASSERT_EQ(mpt_hs_recent_check(&r, now, &st, 1), MPT_HS_STALE);
    st_with(&st, 3, now + MPT_HS_WINDOW_US + 1);
    ASSERT_EQ(mpt_hs_recent_check(&r, now, &st, 1), MPT_HS_STALE);
    st_with(&st, 4, now + MPT_HS_WINDOW_US);
    ASSERT_EQ(mpt_hs_recent_check(&r, now, &st, 1), MPT_HS_FRESH);
    /* Four times its size, each a microsecond apart, then every one of them again. */
    for (uint64_t i = 0; i < 4 * MPT_HS_RECENT; i++) {
        st_with(&st, 0x1000 + i * 0x9e3779b97f4a7c15ULL, now + i);
        fresh_refused += mpt_hs_recent_check(&r, now, &st, 1) != MPT_HS_FRESH;
    }
    for (uint64_t i = 0; i < 4 * MPT_HS_RECENT; i++) {
        st_with(&st, 0x1000 + i * 0x9e3779b97f4a7c15ULL, now + i);
        refused_replays += mpt_hs_recent_check(&r, now, &st, 1) != MPT_HS_FRESH;
    }
    printf("record of %u: %u of %u fresh initiations refused while it overflowed, %u of %u "
           "replays refused (must be all)\n",
           MPT_HS_RECENT, fresh_refused, 4 * MPT_HS_RECENT, refused_replays, 4 * MPT_HS_RECENT);
    ASSERT_EQ(refused_replays, 4 * MPT_HS_RECENT);
    ASSERT_LE(fresh_refused, MPT_HS_RECENT / 4);
    st_with(&st, 1, now);
    ASSERT_NE(mpt_hs_recent_check(&r, now, &st, 1), MPT_HS_FRESH);
    /* Newer than everything: fresh. */
    st_with(&st, 0x777, now + 4 * MPT_HS_RECENT + 10);
    ASSERT_EQ(mpt_hs_recent_check(&r, now, &st, 1), MPT_HS_FRESH);
}

static const struct task_case cases[] = {
    {"shared_secret", shared_secret},
    {"key_mode", key_mode},
    {"bit_flips", bit_flips},
    {"cipher_offer", cipher_offer},
    {"cookies", cookies},
    {"proofs", proofs},
    {"tai64n", tai64n},
    {"recent_record", recent_record},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
