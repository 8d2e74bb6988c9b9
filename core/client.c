#include "core/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define HELLO_RETRY_US 250000ULL
#define MIN_DEAD_US 1000000ULL

static uint64_t dead_after_us(const struct mpt_client *c)
{
    uint64_t d = 5ULL * c->p.probe_interval_ms * 1000;
    return d > MIN_DEAD_US ? d : MIN_DEAD_US;
}

int mpt_client_init(struct mpt_client *c, const struct mpt_client_params *p)
{
    memset(c, 0, sizeof(*c));
    if (!p->secret || p->npaths < 1 || p->npaths > MPT_MAX_PATHS || p->max_flows < 1 ||
        p->probe_interval_ms < 1)
        return -EINVAL;
    c->p = *p;
    c->p.secret = NULL;
    if (mpt_psk_init(&c->psk, p->secret) != 0)
        return -EINVAL;
    c->hash_key = mpt_random64();
    c->next_flow_id = 1;
    c->flows = calloc(p->max_flows, sizeof(*c->flows));
    if (!c->flows || mpt_slots_init(&c->flow_slots, p->max_flows) != 0 ||
        mpt_index_init(&c->flow_by_app, p->max_flows, mpt_random64()) != 0 ||
        mpt_index_init(&c->flow_by_id, p->max_flows, mpt_random64()) != 0) {
        mpt_client_free(c);
        return -ENOMEM;
    }
    return 0;
}

void mpt_client_free(struct mpt_client *c)
{
    if (!c)
        return;
    free(c->flows);
    mpt_slots_free(&c->flow_slots);
    mpt_index_free(&c->flow_by_app);
    mpt_index_free(&c->flow_by_id);
    mpt_psk_wipe(&c->psk);
    mpt_keys_wipe(&c->keys);
    memset(c, 0, sizeof(*c));
}

/* Queues one buffer on every path (redundant mode). */
static void send_all_paths(struct mpt_client *c, const uint8_t *buf, size_t len, struct mpt_outq *q)
{
    for (unsigned i = 0; i < c->p.npaths; i++) {
        if (!mpt_outq_push(q, MPT_OUT_PATH, buf, len, i))
            break;
        c->paths[i].tx_dgrams++;
        c->paths[i].tx_bytes += len;
        c->ctr.tx_dgrams++;
        c->ctr.tx_bytes += len;
    }
}

static void start_handshake(struct mpt_client *c, uint64_t now)
{
    uint8_t *m = c->hs_msg;

    do
        c->hs_sid = mpt_random64();
    while (c->hs_sid == 0 || c->hs_sid == c->sid);
    mpt_random(c->hs_random, sizeof(c->hs_random));
    memset(m, 0, MPT_HELLO_LEN);
    m[0] = MPT_PROTO_VERSION;
    m[1] = MPT_TYPE_HELLO;
    mpt_put64(m + MPT_HELLO_OFF_SID, c->hs_sid);
    memcpy(m + MPT_HELLO_OFF_RANDOM, c->hs_random, MPT_RANDOM_LEN);
    mpt_put64(m + MPT_HELLO_OFF_PREV, c->state == MPT_CLIENT_ESTABLISHED ? c->sid : 0);
    m[MPT_HELLO_OFF_MODE] = c->p.mode;
    mpt_hello_mac(&c->psk, m, m + MPT_HELLO_OFF_MAC);
    c->hs_next_us = now;
    c->hs_started_us = now;
    c->hs_attempts = 0;
    if (c->state == MPT_CLIENT_IDLE)
        c->state = MPT_CLIENT_HANDSHAKE;
}

static void send_hello(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    uint8_t *buf = mpt_outq_alloc(q, MPT_HELLO_LEN);

    if (!buf)
        return;
    memcpy(buf, c->hs_msg, MPT_HELLO_LEN);
    send_all_paths(c, buf, MPT_HELLO_LEN, q);
    c->hs_attempts++;
    c->hs_next_us = now + HELLO_RETRY_US;
}

static void on_reply(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf)
{
    uint8_t mac[MPT_MAC_LEN], c2s[MPT_KEY_LEN], s2c[MPT_KEY_LEN];
    uint64_t sid = mpt_get64(buf + MPT_REPLY_OFF_SID);

    if (c->hs_sid == 0 || sid != c->hs_sid) {
        c->ctr.drops[sid == c->sid ? MPT_DROP_REPLAY : MPT_DROP_SESSION]++;
        return;
    }
    mpt_reply_mac(&c->psk, buf, c->hs_random, mac);
    if (!mpt_mac_equal(mac, buf + MPT_REPLY_OFF_MAC)) {
        c->ctr.drops[MPT_DROP_AUTH]++;
        return;
    }
    mpt_session_keys(&c->psk, sid, c->hs_random, buf + MPT_REPLY_OFF_RANDOM, c2s, s2c);
    mpt_keys_init(&c->keys, c2s, s2c);
    c->sid = sid;
    c->hs_sid = 0;
    c->state = MPT_CLIENT_ESTABLISHED;
    c->last_auth_us = now;
    c->established_us = now;
    c->paths[path].last_rx_us = now;
    c->sessions_established++;
    c->ctr.handshakes++;
    /* Probe every path at once, so the server learns them and we learn their RTT. */
    c->next_probe_us = now;
    MPT_INFO("session %016llx established (path %u answered in %llu ms, attempt %u)",
             (unsigned long long)sid, path, (unsigned long long)((now - c->hs_started_us) / 1000),
             c->hs_attempts);
}

static struct mpt_client_flow *flow_by_app(struct mpt_client *c, const struct mpt_addr *app,
                                           uint32_t *slot_out)
{
    uint64_t key = mpt_addr_hash(app, c->hash_key);

    for (uint32_t s = mpt_index_find(&c->flow_by_app, key); s != MPT_NIL;
         s = mpt_index_next(&c->flow_by_app, s)) {
        if (mpt_addr_equal(&c->flows[s].app, app)) {
            *slot_out = s;
            return &c->flows[s];
        }
    }
    return NULL;
}

static void flow_release(struct mpt_client *c, uint32_t slot)
{
    mpt_index_remove(&c->flow_by_app, slot);
    mpt_index_remove(&c->flow_by_id, slot);
    mpt_slots_release(&c->flow_slots, slot);
}

static void expire_flows(struct mpt_client *c, uint64_t now)
{
    uint64_t timeout = (uint64_t)c->p.flow_timeout_ms * 1000;
    uint32_t s;

    while ((s = mpt_slots_oldest(&c->flow_slots)) != MPT_NIL &&
           now - c->flows[s].last_us >= timeout)
        flow_release(c, s);
}

static struct mpt_client_flow *flow_open(struct mpt_client *c, uint64_t now,
                                         const struct mpt_addr *app, uint32_t *slot_out)
{
    uint32_t slot = mpt_slots_alloc(&c->flow_slots);
    struct mpt_client_flow *f;

    if (slot == MPT_NIL) {
        expire_flows(c, now);
        slot = mpt_slots_alloc(&c->flow_slots);
        if (slot == MPT_NIL)
            return NULL;
    }
    f = &c->flows[slot];
    f->app = *app;
    /* Flow ids are not reused while a flow holds one: skip ids still in the table. */
    do
        f->id = c->next_flow_id++;
    while (f->id == 0 || mpt_index_find(&c->flow_by_id, f->id) != MPT_NIL);
    f->last_us = now;
    mpt_index_insert(&c->flow_by_app, slot, mpt_addr_hash(app, c->hash_key));
    mpt_index_insert(&c->flow_by_id, slot, f->id);
    *slot_out = slot;
    return f;
}

void mpt_client_on_app(struct mpt_client *c, uint64_t now, const struct mpt_addr *app,
                       const uint8_t *buf, size_t len, struct mpt_outq *q)
{
    struct mpt_client_flow *f;
    uint32_t slot;
    uint8_t *out, *inner;
    size_t n;

    c->ctr.app_rx++;
    if (len > MPT_MAX_PAYLOAD) {
        c->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    f = flow_by_app(c, app, &slot);
    if (!f) {
        f = flow_open(c, now, app, &slot);
        if (!f) {
            c->ctr.drops[MPT_DROP_LIMIT]++;
            return;
        }
    }
    f->last_us = now;
    mpt_slots_touch(&c->flow_slots, slot);
    if (c->state != MPT_CLIENT_ESTABLISHED) {
        c->ctr.drops[MPT_DROP_NOSESSION]++;
        return;
    }
    out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_FLOW_HDR_LEN + len);
    if (!out) {
        c->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    inner = mpt_data_inner(out);
    inner[0] = MPT_INNER_FLOW;
    inner[1] = 0;
    mpt_put16(inner + 2, 0);
    mpt_put32(inner + 4, f->id);
    memcpy(inner + MPT_FLOW_HDR_LEN, buf, len);
    n = mpt_data_seal(&c->keys, c->sid, out, MPT_FLOW_HDR_LEN + len);
    c->ctr.sealed++;
    send_all_paths(c, out, n, q);
}

static void on_probe_ack(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *m,
                         size_t len)
{
    struct mpt_client_path *p = &c->paths[path];
    uint64_t sent, rtt;

    if (len < MPT_PROBE_LEN || m[1] != path) {
        c->ctr.drops[MPT_DROP_MALFORMED]++;
        return;
    }
    sent = mpt_get64(m + 8);
    if (sent > now)
        return;
    rtt = now - sent;
    p->acks_received++;
    p->peer_rx = mpt_get32(m + 16);
    p->last_rtt_us = rtt;
    if (p->srtt_us == 0) {
        p->srtt_us = rtt;
        p->rttvar_us = rtt / 2;
    } else {
        uint64_t d = rtt > p->srtt_us ? rtt - p->srtt_us : p->srtt_us - rtt;
        p->rttvar_us = (3 * p->rttvar_us + d) / 4;
        p->srtt_us = (7 * p->srtt_us + rtt) / 8;
    }
}

void mpt_client_on_path(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf,
                        size_t len, struct mpt_outq *q)
{
    struct mpt_client_flow *f;
    struct mpt_out *o;
    uint32_t slot;
    uint8_t *plain;
    size_t mark;
    int n;

    if (path >= c->p.npaths)
        return;
    switch (mpt_wire_classify(buf, len)) {
    case MPT_TYPE_REPLY:
        on_reply(c, now, path, buf);
        return;
    case MPT_TYPE_DATA:
        break;
    default:
        c->ctr.drops[MPT_DROP_MALFORMED]++;
        return;
    }
    if (c->state != MPT_CLIENT_ESTABLISHED || mpt_data_sid(buf) != c->sid) {
        c->ctr.drops[MPT_DROP_SESSION]++;
        return;
    }
    /* Decrypt straight into the output arena: a flow's payload is then sent from there. */
    mark = q->used;
    plain = mpt_outq_alloc(q, len - MPT_DATA_OVERHEAD);
    if (!plain) {
        c->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    c->ctr.opened++;
    n = mpt_data_open(&c->keys, buf, len, plain);
    if (n < 0) {
        q->used = mark;
        c->ctr.drops[-n]++;
        return;
    }
    c->last_auth_us = now;
    c->paths[path].last_rx_us = now;
    c->paths[path].rx_dgrams++;
    c->paths[path].rx_bytes += len;
    c->ctr.rx_dgrams++;
    c->ctr.rx_bytes += len;
    if (plain[0] == MPT_INNER_FLOW && n >= MPT_FLOW_HDR_LEN) {
        slot = mpt_index_find(&c->flow_by_id, mpt_get32(plain + 4));
        if (slot == MPT_NIL) {
            c->ctr.drops[MPT_DROP_SESSION]++;
            return;
        }
        f = &c->flows[slot];
        f->last_us = now;
        mpt_slots_touch(&c->flow_slots, slot);
        o = mpt_outq_push(q, MPT_OUT_APP, plain + MPT_FLOW_HDR_LEN, (size_t)n - MPT_FLOW_HDR_LEN,
                          slot);
        if (o) {
            o->addr = f->app;
            c->ctr.app_tx++;
        }
    } else if (plain[0] == MPT_INNER_PROBE_ACK) {
        q->used = mark;
        on_probe_ack(c, now, path, plain, (size_t)n);
    } else {
        q->used = mark;
        c->ctr.drops[MPT_DROP_MALFORMED]++;
    }
}

static void send_probes(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    for (unsigned i = 0; i < c->p.npaths; i++) {
        struct mpt_client_path *p = &c->paths[i];
        uint8_t *out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_PROBE_LEN);
        uint8_t *m;
        size_t n;

        if (!out)
            return;
        m = mpt_data_inner(out);
        m[0] = MPT_INNER_PROBE;
        m[1] = (uint8_t)i;
        m[2] = c->p.mode;
        m[3] = 0;
        mpt_put32(m + 4, ++p->probe_seq);
        mpt_put64(m + 8, now);
        mpt_put32(m + 16, (uint32_t)p->rx_dgrams);
        n = mpt_data_seal(&c->keys, c->sid, out, MPT_PROBE_LEN);
        c->ctr.sealed++;
        if (!mpt_outq_push(q, MPT_OUT_PATH, out, n, i))
            return;
        p->probes_sent++;
        p->tx_dgrams++;
        p->tx_bytes += n;
        c->ctr.tx_dgrams++;
        c->ctr.tx_bytes += n;
    }
}

static void update_path_states(struct mpt_client *c, uint64_t now)
{
    uint64_t down_after = 4ULL * c->p.probe_interval_ms * 1000 + 50000;

    for (unsigned i = 0; i < c->p.npaths; i++) {
        struct mpt_client_path *p = &c->paths[i];
        int up = p->last_rx_us && now - p->last_rx_us < down_after;
        if (up != p->up) {
            p->up = up;
            MPT_INFO("path %u %s", i, up ? "up" : "down");
        }
    }
}

uint64_t mpt_client_on_timer(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    uint64_t next = now + 1000000, probe_us = (uint64_t)c->p.probe_interval_ms * 1000;
    uint32_t oldest;

    if (c->state == MPT_CLIENT_IDLE)
        start_handshake(c, now);
    if (c->state == MPT_CLIENT_ESTABLISHED) {
        update_path_states(c, now);
        if (c->hs_sid == 0 && now - c->last_auth_us >= dead_after_us(c)) {
            MPT_WARN("session %016llx silent for %llu ms on every path: re-establishing",
                     (unsigned long long)c->sid,
                     (unsigned long long)((now - c->last_auth_us) / 1000));
            start_handshake(c, now);
        }
        if (now >= c->next_probe_us) {
            send_probes(c, now, q);
            c->next_probe_us = now + probe_us;
        }
        if (c->next_probe_us < next)
            next = c->next_probe_us;
        if (c->hs_sid == 0 && c->last_auth_us + dead_after_us(c) < next)
            next = c->last_auth_us + dead_after_us(c);
    }
    if (c->hs_sid) {
        if (now >= c->hs_next_us)
            send_hello(c, now, q);
        if (c->hs_next_us < next)
            next = c->hs_next_us;
    }
    expire_flows(c, now);
    oldest = mpt_slots_oldest(&c->flow_slots);
    if (oldest != MPT_NIL) {
        uint64_t exp = c->flows[oldest].last_us + (uint64_t)c->p.flow_timeout_ms * 1000;
        if (exp < next)
            next = exp;
    }
    return next > now ? next : now + 1;
}
