/* core/: any bytes as a datagram at the server (from one of a few addresses) or at the client (on
 * one of its paths), against live sessions; with a selector byte, the bytes are instead the inner
 * message of a DATA datagram sealed with a live session's keys, so the parsers behind the AEAD are
 * reached too (PIECE messages among them, against reassembly tables in use). Checks the limits and
 * that nothing answers what failed authentication. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPATHS 3

static struct mpt_client c;
static struct mpt_server s;
static struct mpt_outq q;
static struct mpt_addr paths[NPATHS], app;
static uint64_t now = 1000000;
static uint8_t buf[MPT_MAX_DGRAM];

static void addr4(struct mpt_addr *a, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->u.in4.sin_family = AF_INET;
    a->u.in4.sin_addr.s_addr = htonl(0x7f000001);
    a->u.in4.sin_port = htons(port);
}

/* Delivers everything queued between the two ends, a few rounds, and drops what goes to
 * applications; the target echoes. */
static void pump(void)
{
    static struct mpt_outq q2;

    if (!q2.v && mpt_outq_init(&q2, 1024, 1u << 20))
        abort();
    for (int round = 0; round < 4 && q.n; round++) {
        struct mpt_outq t = q;
        q = q2;
        q2 = t;
        mpt_outq_reset(&q);
        s.nclosed = 0;
        for (unsigned i = 0; i < q2.n; i++) {
            const struct mpt_out *o = &q2.v[i];
            if (o->kind == MPT_OUT_PATH && mpt_addr_len(&o->addr) == 0) {
                mpt_server_on_path(&s, now, &paths[o->index % NPATHS], o->data, o->len, &q);
            } else if (o->kind == MPT_OUT_PATH) {
                for (unsigned p = 0; p < NPATHS; p++)
                    if (mpt_addr_equal(&o->addr, &paths[p]))
                        mpt_client_on_path(&c, now, p, o->data, o->len, &q);
            } else if (o->kind == MPT_OUT_FLOW) {
                mpt_server_on_target(&s, now, o->index, o->data, o->len, &q);
            }
            if (mpt_outq_full(&q))
                break;
        }
    }
    mpt_outq_reset(&q);
    s.nclosed = 0;
}

static unsigned path_max(void *arg, const struct mpt_addr *to)
{
    (void)arg;
    (void)to;
    return 1500 - 28;
}

static void setup(void)
{
    static uint8_t big[5000];
    struct mpt_client_params cp;
    struct mpt_server_params sp;
    uint8_t secret[32];

    memset(secret, 7, sizeof(secret));
    memset(&cp, 0, sizeof(cp));
    cp.secret = secret;
    cp.npaths = NPATHS;
    cp.max_flows = 8;
    cp.flow_timeout_ms = 60000;
    cp.probe_interval_ms = 200;
    memset(&sp, 0, sizeof(sp));
    sp.secret = secret;
    sp.max_sessions = 4;
    sp.max_flows = 8;
    sp.flow_timeout_ms = 60000;
    sp.session_timeout_ms = 120000;
    sp.ntargets = 1;
    if (mpt_client_init(&c, &cp) || mpt_server_init(&s, &sp) || mpt_outq_init(&q, 1024, 1u << 20))
        abort();
    for (unsigned i = 0; i < NPATHS; i++)
        addr4(&paths[i], (uint16_t)(4000 + i));
    addr4(&app, 3000);
    mpt_client_on_timer(&c, now, &q);
    pump();
    mpt_client_on_app(&c, now, &app, (const uint8_t *)"hello", 5, &q);
    pump();
    if (c.state != MPT_CLIENT_ESTABLISHED || s.session_slots.used != 1)
        abort();
    /* Paths of MTU 1500: a datagram too large for them goes as PIECE messages both ways (the
     * target echoes), so that the fuzzed pieces meet a reassembly table in use. */
    for (unsigned i = 0; i < NPATHS; i++)
        mpt_client_set_path_mtu(&c, i, 1500 - 28);
    mpt_server_set_path_mtus(&s, 1, path_max, NULL);
    memset(big, 0xa5, sizeof(big));
    mpt_client_on_app(&c, now, &app, big, sizeof(big), &q);
    pump();
    if (s.split.st.reassembled != 1 || c.split.st.reassembled != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    uint64_t auth_before;
    uint8_t sel;

    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1 || size > MPT_MAX_DGRAM)
        return 0;
    sel = data[0];
    data++;
    size--;
    now += 1000;
    mpt_outq_reset(&q);
    s.nclosed = 0;
    switch (sel & 3) {
    case 0: /* raw bytes at the server */
        auth_before = s.ctr.drops[MPT_DROP_AUTH];
        mpt_server_on_path(&s, now, &paths[(sel >> 2) % NPATHS], data, size, &q);
        /* Silence towards the unauthenticated: a datagram that failed a check gets nothing. */
        if (s.ctr.drops[MPT_DROP_AUTH] != auth_before && q.n != 0)
            abort();
        break;
    case 1: /* raw bytes at the client */
        mpt_client_on_path(&c, now, (sel >> 2) % NPATHS, data, size, &q);
        break;
    case 2: /* an inner message, sealed for the server */
        if (size + MPT_DATA_OVERHEAD > sizeof(buf) || !s.session_slots.used)
            break;
        {
            size_t n;
            if (mpt_index_find(&s.session_by_sid, c.sid) == MPT_NIL)
                break;
            /* Sealed with the client's keys, as the client would. */
            memcpy(mpt_data_inner(buf), data, size);
            n = mpt_data_seal(&c.sec->keys, c.sid, buf, size);
            mpt_server_on_path(&s, now, &paths[(sel >> 2) % NPATHS], buf, n, &q);
        }
        break;
    default: /* an inner message, sealed for the client */
        if (size + MPT_DATA_OVERHEAD > sizeof(buf))
            break;
        {
            uint32_t slot = mpt_index_find(&s.session_by_sid, c.sid);
            size_t n;
            if (slot == MPT_NIL)
                break;
            memcpy(mpt_data_inner(buf), data, size);
            n = mpt_data_seal(&s.sessions[slot].keys, c.sid, buf, size);
            mpt_client_on_path(&c, now, (sel >> 2) % NPATHS, buf, n, &q);
        }
        break;
    }
    if (s.session_slots.used > s.p.max_sessions || s.flow_slots.used > s.p.max_flows ||
        c.flow_slots.used > c.p.max_flows || q.n > q.max || q.used > q.cap)
        abort();
    for (unsigned i = 0; i < q.n; i++)
        if (q.v[i].len > MPT_MAX_DGRAM)
            abort();
    /* A rebuilt datagram is never larger than the largest a flow carries. */
    for (unsigned i = 0; i < q.n; i++)
        if ((q.v[i].kind == MPT_OUT_FLOW || q.v[i].kind == MPT_OUT_APP) &&
            q.v[i].len > MPT_MAX_PAYLOAD)
            abort();
    mpt_outq_reset(&q);
    s.nclosed = 0;
    /* Now and then let time pass, so that expiry and probes run on whatever state we reached. */
    if ((sel & 0xf0) == 0xf0) {
        now += 500000;
        mpt_client_on_timer(&c, now, &q);
        mpt_server_on_timer(&s, now, &q);
        pump();
    }
    return 0;
}
