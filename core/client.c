#include "core/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/sched.h"

#define HELLO_RETRY_US 250000ULL
#define MIN_DEAD_US 1000000ULL

const char *mpt_path_state_name(enum mpt_path_state st)
{
    switch (st) {
    case MPT_PATH_UP:
        return "up";
    case MPT_PATH_LOSSY:
        return "lossy";
    default:
        return "down";
    }
}

static uint64_t down_after_us(const struct mpt_client *c)
{
    /* Three probes lost in a row, and some room for their round trip: a silent path is down
     * well within a second at the default interval, while a lossy idle one rarely flaps. */
    return 3ULL * c->p.probe_interval_ms * 1000 + 100000;
}

static uint64_t dead_after_us(const struct mpt_client *c)
{
    uint64_t d = 5ULL * c->p.probe_interval_ms * 1000;
    return d > MIN_DEAD_US ? d : MIN_DEAD_US;
}

int mpt_client_init(struct mpt_client *c, const struct mpt_client_params *p)
{
    memset(c, 0, sizeof(*c));
    if (!p->secret || p->npaths < 1 || p->npaths > MPT_MAX_PATHS || p->max_flows < 1 ||
        p->probe_interval_ms < 1 || p->mode > MPT_CLIENT_BALANCE)
        return -EINVAL;
    c->p = *p;
    c->p.secret = NULL;
    if (!(c->p.target_loss > 0 && c->p.target_loss < 1))
        c->p.target_loss = 0.001;
    for (unsigned i = 0; i < MPT_MAX_PATHS; i++)
        if (c->p.weight[i] == 0)
            c->p.weight[i] = 1;
    c->sched_dirty = 1;
    if (mpt_psk_init(&c->psk, p->secret) != 0)
        return -EINVAL;
    c->hash_key = mpt_random64();
    c->next_flow_id = 1;
    c->flows = calloc(p->max_flows, sizeof(*c->flows));
    c->held_buf = malloc(MPT_CLIENT_HELD_BYTES);
    if (!c->flows || !c->held_buf || mpt_slots_init(&c->flow_slots, p->max_flows) != 0 ||
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
    free(c->held_buf);
    mpt_slots_free(&c->flow_slots);
    mpt_index_free(&c->flow_by_app);
    mpt_index_free(&c->flow_by_id);
    mpt_psk_wipe(&c->psk);
    mpt_keys_wipe(&c->keys);
    mpt_keys_wipe(&c->prev_keys);
    memset(c, 0, sizeof(*c));
}

/* Queues one buffer on the paths of `mask`; returns the number of copies. `data`: the buffer
 * is a flow's datagram, counted per path in data_tx. */
static unsigned send_paths(struct mpt_client *c, const uint8_t *buf, size_t len, uint32_t mask,
                           int data, struct mpt_outq *q)
{
    unsigned copies = 0;

    for (unsigned i = 0; i < c->p.npaths; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (!mpt_outq_push(q, MPT_OUT_PATH, buf, len, i))
            break;
        copies++;
        c->paths[i].data_tx += data != 0;
        c->paths[i].tx_dgrams++;
        c->paths[i].tx_bytes += len;
        c->ctr.tx_dgrams++;
        c->ctr.tx_bytes += len;
    }
    return copies;
}

static uint32_t all_paths(const struct mpt_client *c)
{
    return c->p.npaths >= 32 ? UINT32_MAX : (1u << c->p.npaths) - 1;
}

/* Adaptive mode: the fewest paths, least lossy first, whose joint loss stays under the target.
 * A path not measured yet counts as losing half its datagrams. */
static uint32_t adaptive_pick(const struct mpt_client *c, uint32_t live, int down_dir)
{
    unsigned order[MPT_MAX_PATHS], n = 0;
    double residual = 1.0;
    uint32_t mask = 0;

    for (unsigned i = 0; i < c->p.npaths; i++)
        if (live & (1u << i))
            order[n++] = i;
    for (unsigned i = 1; i < n; i++) {
        for (unsigned j = i; j > 0; j--) {
            const struct mpt_client_path *a = &c->paths[order[j - 1]], *b = &c->paths[order[j]];
            double la = a->loss_known ? (down_dir ? a->loss_down : a->loss_up) : 0.5;
            double lb = b->loss_known ? (down_dir ? b->loss_down : b->loss_up) : 0.5;
            if (la < lb || (la == lb && a->srtt_us <= b->srtt_us))
                break;
            unsigned t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    for (unsigned k = 0; k < n; k++) {
        const struct mpt_client_path *p = &c->paths[order[k]];
        mask |= 1u << order[k];
        residual *= p->loss_known ? (down_dir ? p->loss_down : p->loss_up) : 0.5;
        if (residual <= c->p.target_loss)
            break;
    }
    return mask;
}

/* Recomputes which paths carry datagrams each way (PROTOCOL.md §8). */
static void schedule(struct mpt_client *c)
{
    uint32_t live = 0, send = 0, back = 0;
    unsigned best = UINT32_MAX;

    for (unsigned i = 0; i < c->p.npaths; i++)
        if (c->paths[i].state != MPT_PATH_DOWN)
            live |= 1u << i;
    if (!live)
        live = all_paths(c); /* nothing known alive: try them all */
    switch (c->p.mode) {
    case MPT_CLIENT_BACKUP:
        for (unsigned i = 0; i < c->p.npaths; i++)
            if ((live & (1u << i)) && c->p.priority[i] < best)
                best = c->p.priority[i];
        for (unsigned i = 0; i < c->p.npaths; i++)
            if ((live & (1u << i)) && c->p.priority[i] == best)
                send |= 1u << i;
        back = send;
        break;
    case MPT_CLIENT_ADAPTIVE:
        send = adaptive_pick(c, live, 0);
        back = adaptive_pick(c, live, 1);
        break;
    case MPT_CLIENT_BALANCE: /* one of them per datagram */
        send = back = live;
        break;
    default:
        /* Redundant: every path, live or not. A copy on a dead path costs little, and a path
         * that comes back carries traffic from its first moment, before any probe says so. */
        send = back = all_paths(c);
        break;
    }
    memset(c->use, 0, sizeof(c->use));
    for (unsigned i = 0; i < c->p.npaths; i++) {
        if (!(back & (1u << i)))
            continue;
        if (c->p.mode == MPT_CLIENT_BALANCE)
            c->use[i] = (uint8_t)(c->p.weight[i] > 255 ? 255 : c->p.weight[i]);
        else
            c->use[i] = 1;
    }
    c->send_mask = send;
    c->sched_dirty = 0;
}

static void path_set_state(struct mpt_client *c, unsigned i, enum mpt_path_state st, uint64_t now)
{
    struct mpt_client_path *p = &c->paths[i];

    if (p->state == st)
        return;
    MPT_INFO("path %u %s (was %s; loss %.1f%% -> / %.1f%% <-, rtt %.1f ms)", i,
             mpt_path_state_name(st), mpt_path_state_name(p->state), 100 * p->loss_up,
             100 * p->loss_down, (double)p->srtt_us / 1000);
    p->state = st;
    p->state_since_us = now;
    c->sched_dirty = 1;
    /* Tell the server at once which paths to answer on. */
    c->next_probe_us = now;
    c->wake = 1;
}

static enum mpt_path_state path_eval(const struct mpt_client *c, const struct mpt_client_path *p,
                                     uint64_t now)
{
    if (!p->last_rx_us || now - p->last_rx_us >= down_after_us(c))
        return MPT_PATH_DOWN;
    if (p->loss_known && (p->loss_up > MPT_LOSSY_THRESHOLD || p->loss_down > MPT_LOSSY_THRESHOLD))
        return MPT_PATH_LOSSY;
    return MPT_PATH_UP;
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
    if (!c->p.no_aes && mpt_cipher_aes_available())
        m[MPT_HELLO_OFF_FLAGS] |= MPT_HELLO_FLAG_AES;
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
    send_paths(c, buf, MPT_HELLO_LEN, all_paths(c), 0, q);
    c->hs_attempts++;
    c->hs_next_us = now + HELLO_RETRY_US;
}

static void on_reply(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf)
{
    uint8_t mac[MPT_MAC_LEN], c2s[MPT_KEY_LEN], s2c[MPT_KEY_LEN];
    uint64_t sid = mpt_get64(buf + MPT_REPLY_OFF_SID);
    int cipher;

    if (c->hs_sid == 0 || sid != c->hs_sid) {
        c->ctr.drops[sid == c->sid ? MPT_DROP_REPLAY : MPT_DROP_SESSION]++;
        return;
    }
    mpt_reply_mac(&c->psk, buf, c->hs_random, mac);
    if (!mpt_mac_equal(mac, buf + MPT_REPLY_OFF_MAC)) {
        c->ctr.drops[MPT_DROP_AUTH]++;
        return;
    }
    cipher = buf[MPT_REPLY_OFF_CIPHER];
    if (cipher > MPT_CIPHER_AES256GCM || (cipher == MPT_CIPHER_AES256GCM &&
                                          !(c->hs_msg[MPT_HELLO_OFF_FLAGS] & MPT_HELLO_FLAG_AES))) {
        c->ctr.drops[MPT_DROP_MALFORMED]++;
        return;
    }
    mpt_session_keys(&c->psk, sid, c->hs_random, buf + MPT_REPLY_OFF_RANDOM, c2s, s2c);
    /* The server answers under the old keys until it sees one of our datagrams under the new:
     * keep reading them a little while. */
    if (c->state == MPT_CLIENT_ESTABLISHED) {
        c->prev_sid = c->sid;
        c->prev_keys = c->keys;
        c->prev_until_us = now + MPT_CLIENT_PREV_US;
    }
    mpt_keys_init(&c->keys, c2s, s2c, cipher);
    c->sid = sid;
    c->hs_sid = 0;
    c->state = MPT_CLIENT_ESTABLISHED;
    c->last_auth_us = now;
    c->established_us = now;
    c->paths[path].last_rx_us = now;
    /* The new server-side session counts from zero: loss samples start over on every path. */
    for (unsigned i = 0; i < c->p.npaths; i++)
        c->paths[i].ack_seq = 0;
    c->sessions_established++;
    c->ctr.handshakes++;
    /* Probe every path at once, so the server learns them and we learn their RTT. */
    c->next_probe_us = now;
    c->wake = 1;
    MPT_INFO("session %016llx established, %s (path %u answered in %llu ms, attempt %u)",
             (unsigned long long)sid, mpt_cipher_name(cipher), path,
             (unsigned long long)((now - c->hs_started_us) / 1000), c->hs_attempts);
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

/* Encrypts one datagram of flow `id` once and queues it on the scheduled paths. */
static void send_flow(struct mpt_client *c, uint32_t id, const uint8_t *buf, size_t len,
                      struct mpt_outq *q)
{
    uint8_t *out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_FLOW_HDR_LEN + len), *inner;
    uint32_t mask;
    size_t n;

    if (!out) {
        c->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    inner = mpt_data_inner(out);
    inner[0] = MPT_INNER_FLOW;
    inner[1] = 0;
    mpt_put16(inner + 2, 0);
    mpt_put32(inner + 4, id);
    memcpy(inner + MPT_FLOW_HDR_LEN, buf, len);
    n = mpt_data_seal(&c->keys, c->sid, out, MPT_FLOW_HDR_LEN + len);
    c->ctr.sealed++;
    if (c->sched_dirty)
        schedule(c);
    mask = c->send_mask;
    if (c->p.mode == MPT_CLIENT_BALANCE)
        mask = 1u << mpt_wrr_pick(c->wrr, c->p.weight, mask, c->p.npaths);
    c->data_dgrams++;
    c->data_copies += send_paths(c, out, n, mask, 1, q);
}

/* Before the first session: keep a few datagrams (a DNS query, a VPN's first packet) to send
 * the moment it is up, rather than losing them to the handshake's round trip. */
static void hold(struct mpt_client *c, uint64_t now, uint32_t id, const uint8_t *buf, size_t len)
{
    struct mpt_client_held *h;

    if (c->nheld == MPT_CLIENT_HELD_MAX || MPT_CLIENT_HELD_BYTES - c->held_used < len) {
        c->ctr.drops[MPT_DROP_NOSESSION]++;
        return;
    }
    h = &c->held[c->nheld++];
    h->flow = id;
    h->off = (uint32_t)c->held_used;
    h->len = (uint32_t)len;
    h->at_us = now;
    memcpy(c->held_buf + c->held_used, buf, len);
    c->held_used += len;
}

/* Sends what was held, if still fresh and its flow still open. */
static void release_held(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    for (unsigned i = 0; i < c->nheld; i++) {
        const struct mpt_client_held *h = &c->held[i];
        if (now - h->at_us > MPT_CLIENT_HELD_US ||
            mpt_index_find(&c->flow_by_id, h->flow) == MPT_NIL) {
            c->ctr.drops[MPT_DROP_NOSESSION]++;
            continue;
        }
        send_flow(c, h->flow, c->held_buf + h->off, h->len, q);
    }
    c->nheld = 0;
    c->held_used = 0;
}

void mpt_client_on_app(struct mpt_client *c, uint64_t now, const struct mpt_addr *app,
                       const uint8_t *buf, size_t len, struct mpt_outq *q)
{
    struct mpt_client_flow *f;
    uint32_t slot;

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
        hold(c, now, f->id, buf, len);
        return;
    }
    send_flow(c, f->id, buf, len, q);
}

static double loss_ewma(double cur, int known, double sample, uint64_t count)
{
    /* Weighted by how many datagrams the sample covers: a busy interval moves the estimate
     * more than a single probe does. */
    double w = (double)count / ((double)count + 100.0);
    return known ? cur + w * (sample - cur) : sample;
}

static void on_probe_ack(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *m,
                         size_t len)
{
    struct mpt_client_path *p = &c->paths[path];
    uint32_t seq, peer_rx, peer_tx;
    uint64_t sent, rtt;

    if (len < MPT_PROBE_ACK_LEN || m[1] != path) {
        c->ctr.drops[MPT_DROP_MALFORMED]++;
        return;
    }
    seq = mpt_get32(m + MPT_PROBE_OFF_SEQ);
    sent = mpt_get64(m + MPT_PROBE_OFF_TIME);
    peer_rx = mpt_get32(m + MPT_PROBE_OFF_RX);
    peer_tx = mpt_get32(m + MPT_PROBE_OFF_TX);
    if (sent > now || seq == 0 || seq > p->probe_seq)
        return;
    p->acks_received++;
    rtt = now - sent;
    p->last_rtt_us = rtt;
    if (p->srtt_us == 0) {
        p->srtt_us = rtt;
        p->rttvar_us = rtt / 2;
    } else {
        uint64_t d = rtt > p->srtt_us ? rtt - p->srtt_us : p->srtt_us - rtt;
        p->rttvar_us = (3 * p->rttvar_us + d) / 4;
        p->srtt_us = (7 * p->srtt_us + rtt) / 8;
    }
    /* Loss each way over the interval since the last acknowledged probe: what we sent against
     * what the server counted, and what the server sent against what we counted. Acks that
     * arrive out of order, or for probes too old to remember, give no sample. */
    if (seq <= p->ack_seq || p->probe_seq - seq >= 16)
        return;
    {
        uint64_t tx_at = p->probe_tx[seq % 16];
        if (p->ack_seq != 0) {
            uint64_t dtx = tx_at - p->ack_tx, drx = (uint32_t)(peer_rx - p->ack_peer_rx);
            uint64_t dptx = (uint32_t)(peer_tx - p->ack_peer_tx), dmy = p->rx_dgrams - p->ack_rx;
            if (dtx > 0 && dptx > 0) {
                double up = 1.0 - (double)(drx < dtx ? drx : dtx) / (double)dtx;
                double down = 1.0 - (double)(dmy < dptx ? dmy : dptx) / (double)dptx;
                p->loss_up = loss_ewma(p->loss_up, p->loss_known, up, dtx);
                p->loss_down = loss_ewma(p->loss_down, p->loss_known, down, dptx);
                p->loss_known = 1;
                if (c->p.mode == MPT_CLIENT_ADAPTIVE)
                    c->sched_dirty = 1;
            }
        }
        p->ack_seq = seq;
        p->ack_tx = tx_at;
        p->ack_peer_rx = peer_rx;
        p->ack_peer_tx = peer_tx;
        p->ack_rx = p->rx_dgrams;
    }
    path_set_state(c, path, path_eval(c, p, now), now);
}

void mpt_client_on_path(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf,
                        size_t len, struct mpt_outq *q)
{
    struct mpt_keys *k;
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
    if (c->state != MPT_CLIENT_ESTABLISHED) {
        c->ctr.drops[MPT_DROP_SESSION]++;
        return;
    }
    if (mpt_data_sid(buf) == c->sid) {
        k = &c->keys;
    } else if (c->prev_sid && mpt_data_sid(buf) == c->prev_sid && now < c->prev_until_us) {
        k = &c->prev_keys;
    } else {
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
    n = mpt_data_open(k, buf, len, plain);
    if (n < 0) {
        q->used = mark;
        c->ctr.drops[-n]++;
        /* A copy another path delivered first still arrived on this one: count it for the
         * path's loss figures (it cannot refresh the path's liveness, being unauthenticated). */
        if (n == -MPT_DROP_REPLAY) {
            c->paths[path].rx_dgrams++;
            c->paths[path].rx_bytes += len;
        }
        return;
    }
    c->last_auth_us = now;
    c->paths[path].last_rx_us = now;
    c->paths[path].rx_dgrams++;
    c->paths[path].rx_bytes += len;
    if (c->paths[path].state == MPT_PATH_DOWN)
        path_set_state(c, path, path_eval(c, &c->paths[path], now), now);
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

static uint16_t loss_q(double l)
{
    return (uint16_t)(l <= 0 ? 0 : l >= 1 ? 65535 : l * 65535 + 0.5);
}

static void send_probes(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    if (c->sched_dirty)
        schedule(c);
    for (unsigned i = 0; i < c->p.npaths; i++) {
        struct mpt_client_path *p = &c->paths[i];
        uint8_t *out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_PROBE_LEN);
        uint8_t *m;
        size_t n;

        if (!out)
            return;
        m = mpt_data_inner(out);
        memset(m, 0, MPT_PROBE_LEN);
        m[0] = MPT_INNER_PROBE;
        m[1] = (uint8_t)i;
        m[2] = c->p.mode;
        m[3] = (uint8_t)p->state;
        p->probe_seq++;
        mpt_put32(m + MPT_PROBE_OFF_SEQ, p->probe_seq);
        mpt_put64(m + MPT_PROBE_OFF_TIME, now);
        mpt_put32(m + MPT_PROBE_OFF_RX, (uint32_t)p->rx_dgrams);
        mpt_put16(m + MPT_PROBE_OFF_LOSS_UP, loss_q(p->loss_up));
        mpt_put16(m + MPT_PROBE_OFF_LOSS_DOWN, loss_q(p->loss_down));
        mpt_put32(m + MPT_PROBE_OFF_SRTT,
                  (uint32_t)(p->srtt_us > UINT32_MAX ? UINT32_MAX : p->srtt_us));
        m[MPT_PROBE_OFF_NPATHS] = (uint8_t)c->p.npaths;
        memcpy(m + MPT_PROBE_OFF_USE, c->use, MPT_MAX_PATHS);
        n = mpt_data_seal(&c->keys, c->sid, out, MPT_PROBE_LEN);
        c->ctr.sealed++;
        if (!mpt_outq_push(q, MPT_OUT_PATH, out, n, i))
            return;
        p->probes_sent++;
        p->tx_dgrams++;
        p->tx_bytes += n;
        p->probe_tx[p->probe_seq % 16] = p->tx_dgrams;
        c->ctr.tx_dgrams++;
        c->ctr.tx_bytes += n;
    }
}

static void update_path_states(struct mpt_client *c, uint64_t now)
{
    for (unsigned i = 0; i < c->p.npaths; i++)
        path_set_state(c, i, path_eval(c, &c->paths[i], now), now);
}

uint64_t mpt_client_on_timer(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    uint64_t next = now + 1000000, probe_us = (uint64_t)c->p.probe_interval_ms * 1000;
    uint32_t oldest;

    if (c->state == MPT_CLIENT_IDLE)
        start_handshake(c, now);
    if (c->state == MPT_CLIENT_ESTABLISHED) {
        if (c->nheld)
            release_held(c, now, q);
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
        /* Wake up exactly when a live path would go down, so that it is noticed in time. */
        for (unsigned i = 0; i < c->p.npaths; i++) {
            const struct mpt_client_path *p = &c->paths[i];
            if (p->state != MPT_PATH_DOWN && p->last_rx_us + down_after_us(c) < next)
                next = p->last_rx_us + down_after_us(c);
        }
    }
    c->wake = 0;
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
