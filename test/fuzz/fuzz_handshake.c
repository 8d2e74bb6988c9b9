/* core/: protocol 2 handshakes at both ends. The server gets INITs whose MAC1 is valid (computed
 * here with the known secret) but whose bytes are the input, and genuine INITs (made with
 * core/handshake.c) whose payload fields — previous session, mode, flags, time — come from the
 * input; the client gets RESPONSEs and COOKIEs for its pending handshake, MAC1 valid, bytes from
 * the input. Checks: never an answer larger than the INIT, at most one per INIT, none without a
 * valid MAC1, sessions within their limit, the client never established by a forged RESPONSE. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/handshake.h"
#include "core/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mpt_client c;
static struct mpt_server s;
static struct mpt_hs_keys keys;
static struct mpt_outq q;
static uint64_t now = 1000000000;
static uint8_t secret[32];

static void setup(void)
{
    struct mpt_client_params cp;
    struct mpt_server_params sp;

    memset(secret, 9, sizeof(secret));
    memset(&cp, 0, sizeof(cp));
    cp.secret = secret;
    cp.npaths = 2;
    cp.max_flows = 4;
    cp.flow_timeout_ms = 60000;
    cp.probe_interval_ms = 200;
    memset(&sp, 0, sizeof(sp));
    sp.secret = secret;
    sp.max_sessions = 3;
    sp.max_flows = 4;
    sp.flow_timeout_ms = 60000;
    sp.session_timeout_ms = 120000;
    sp.ntargets = 1;
    if (mpt_client_init(&c, &cp) || mpt_server_init(&s, &sp) || mpt_outq_init(&q, 256, 1u << 18) ||
        mpt_hs_keys_secret(&keys, secret))
        abort();
    mpt_client_on_timer(&c, now, &q); /* a handshake under way */
    mpt_outq_reset(&q);
}

static void mac1(uint8_t *m, size_t len)
{
    crypto_generichash(m + len - 2 * MPT_MAC_LEN, MPT_MAC_LEN, m, len - 2 * MPT_MAC_LEN,
                       keys.mac1_init, MPT_KEY_LEN);
}

static void check_answers(size_t init_len, int may_answer)
{
    unsigned answers = 0;

    for (unsigned i = 0; i < q.n; i++) {
        if (q.v[i].kind != MPT_OUT_PATH)
            continue;
        answers++;
        if (q.v[i].len > init_len)
            abort();
    }
    if (answers > 1 || (!may_answer && answers) || s.session_slots.used > s.p.max_sessions)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    uint8_t m[MPT_INIT_MAX_LEN];
    struct mpt_addr from;
    size_t n;

    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 2)
        return 0;
    memset(&from, 0, sizeof(from));
    from.u.in4.sin_family = AF_INET;
    from.u.in4.sin_port = htons((uint16_t)(5000 + (data[1] & 7)));
    now += (uint64_t)data[1] * 10000;
    mpt_server_set_wall(&s, now, now);
    mpt_outq_reset(&q);
    memset(m, 0, sizeof(m));
    switch (data[0] & 3) {
    case 0: {
        /* Bytes for the client: a RESPONSE or a COOKIE for its handshake, MAC1 valid. */
        uint64_t hs = c.hs_sid;
        size_t len = data[0] & 4 ? MPT_COOKIE_MSG_LEN : MPT_RESPONSE_LEN;
        m[0] = MPT_PROTO_VERSION;
        m[1] = data[0] & 4 ? MPT_TYPE_COOKIE : MPT_TYPE_RESPONSE;
        n = size - 2 < len - 4 ? size - 2 : len - 4;
        memcpy(m + 4, data + 2, n);
        if (data[0] & 8)
            mpt_put64(m + 4, hs);
        if (m[1] == MPT_TYPE_RESPONSE)
            crypto_generichash(m + MPT_RESPONSE_OFF_MAC1, MPT_MAC_LEN, m, MPT_RESPONSE_OFF_MAC1,
                               keys.mac1_resp, MPT_KEY_LEN);
        mpt_client_on_path(&c, now, data[0] >> 7, m, len, &q);
        if (c.state == MPT_CLIENT_ESTABLISHED)
            abort(); /* no one without the handshake's keys can end it */
        return 0;
    }
    case 1:
        /* An INIT of the input's bytes, MAC1 valid: Noise refuses it. */
        m[0] = MPT_PROTO_VERSION;
        m[1] = MPT_TYPE_INIT;
        n = size - 2 < MPT_INIT_NN_LEN - 4 ? size - 2 : MPT_INIT_NN_LEN - 4;
        memcpy(m + 4, data + 2, n);
        mac1(m, MPT_INIT_NN_LEN);
        mpt_server_on_path(&s, now, &from, m, MPT_INIT_NN_LEN, &q);
        check_answers(MPT_INIT_NN_LEN, 0);
        break;
    case 2: {
        /* A genuine INIT whose fields come from the input. */
        struct mpt_hs_client st;
        struct mpt_hs_init_params ip = {0};
        uint8_t f[24] = {0}, resume[32];
        memcpy(f, data + 2, size - 2 < sizeof(f) ? size - 2 : sizeof(f));
        ip.sid = mpt_get64(f);
        ip.prev = data[0] & 4
                      ? (s.session_slots.head != MPT_NIL ? s.sessions[s.session_slots.head].sid : 0)
                      : mpt_get64(f + 8);
        memset(resume, f[16], sizeof(resume));
        ip.prev_resume = resume;
        ip.mode = f[17];
        ip.flags = f[18];
        ip.unix_us = now + ((uint64_t)f[19] << 24) - (1ULL << 31);
        if (mpt_hs_client_init(&st, &keys, &ip) != 0)
            abort();
        mpt_server_on_path(&s, now, &from, st.msg, st.len, &q);
        check_answers(st.len, 1);
        if (data[0] & 8) {
            /* Again, later: a replay, never answered. */
            now += MPT_SERVER_INIT_COPY_US;
            mpt_outq_reset(&q);
            mpt_server_on_path(&s, now, &from, st.msg, st.len, &q);
            check_answers(st.len, 0);
        }
        mpt_hs_client_wipe(&st);
        break;
    }
    default:
        /* Anything at all, as a datagram. */
        n = size - 2 < sizeof(m) ? size - 2 : sizeof(m);
        memcpy(m, data + 2, n);
        mpt_server_on_path(&s, now, &from, m, n, &q);
        check_answers(n, 1);
        mpt_outq_reset(&q);
        mpt_client_on_path(&c, now, 0, m, n, &q);
        break;
    }
    s.nclosed = 0;
    if (data[0] & 16)
        mpt_server_on_timer(&s, now, &q);
    s.nclosed = 0;
    return 0;
}
