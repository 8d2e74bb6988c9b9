/* core/: handshakes that pass the MAC (signed here with the known secret) but carry arbitrary
 * fields — session ids, previous sessions, modes, randoms — at the server, and REPLYs for the
 * client's pending handshake. Checks: at most one reply per HELLO and never larger than it,
 * sessions within their limit, the client never established by a reply for another handshake. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/crypto.h"
#include "core/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mpt_client c;
static struct mpt_server s;
static struct mpt_psk psk;
static struct mpt_outq q;
static uint64_t now = 1000000;

static void setup(void)
{
    struct mpt_client_params cp;
    struct mpt_server_params sp;
    uint8_t secret[32];

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
        mpt_psk_init(&psk, secret))
        abort();
    mpt_client_on_timer(&c, now, &q); /* a handshake under way: c.hs_random is set */
    mpt_outq_reset(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    uint8_t m[MPT_HELLO_LEN];
    struct mpt_addr from;

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
    mpt_outq_reset(&q);
    memset(m, 0, sizeof(m));
    m[0] = MPT_PROTO_VERSION;
    if (data[0] & 1) {
        /* A REPLY for the client's handshake, fields from the input, MAC valid. */
        uint64_t hs = c.hs_sid;
        m[1] = MPT_TYPE_REPLY;
        memcpy(m + 4, data + 2,
               size - 2 < MPT_REPLY_OFF_MAC - 4 ? size - 2 : MPT_REPLY_OFF_MAC - 4);
        if (data[0] & 2)
            mpt_put64(m + MPT_REPLY_OFF_SID, hs);
        if (hs)
            mpt_reply_mac(&psk, m, c.hs_random, m + MPT_REPLY_OFF_MAC);
        mpt_client_on_path(&c, now, data[0] >> 7, m, MPT_REPLY_LEN, &q);
        if (c.state == MPT_CLIENT_ESTABLISHED && c.sid != hs)
            abort();
        if (c.state == MPT_CLIENT_ESTABLISHED) {
            /* Start over so that later inputs meet a handshake again. */
            mpt_client_free(&c);
            ready = 0;
            mpt_server_free(&s);
            mpt_outq_free(&q);
        }
        return 0;
    }
    m[1] = MPT_TYPE_HELLO;
    memcpy(m + 4, data + 2, size - 2 < MPT_HELLO_OFF_MAC - 4 ? size - 2 : MPT_HELLO_OFF_MAC - 4);
    if (data[0] & 2)
        mpt_hello_mac(&psk, m, m + MPT_HELLO_OFF_MAC);
    mpt_server_on_path(&s, now, &from, m, MPT_HELLO_LEN, &q);
    if (q.n > 1 + s.p.max_flows || s.session_slots.used > s.p.max_sessions)
        abort();
    for (unsigned i = 0; i < q.n; i++)
        if (q.v[i].kind == MPT_OUT_PATH && q.v[i].len > MPT_HELLO_LEN)
            abort();
    if (!(data[0] & 2) && q.n)
        abort(); /* no valid MAC, no answer */
    s.nclosed = 0;
    if (data[0] & 4)
        mpt_server_on_timer(&s, now, &q);
    s.nclosed = 0;
    return 0;
}
