#include "core/client.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/sched.h"

#define MIN_DEAD_US 1000000ULL

const char *mpt_path_state_name(enum mpt_path_state st)
{
    switch (st) {
    case MPT_PATH_UP:
        return "up";
    case MPT_PATH_LOSSY:
        return "lossy";
    case MPT_PATH_DISABLED:
        return "disabled";
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

/* "path 2 (wan1)": how every message names a path (numbered from 1, as in status). */
static const char *path_label(const struct mpt_client *c, unsigned i, char *buf, size_t len)
{
    if (c->p.path_name[i][0])
        snprintf(buf, len, "path %u (%s)", i + 1, c->p.path_name[i]);
    else
        snprintf(buf, len, "path %u", i + 1);
    return buf;
}

#define LABEL_MAX (MPT_PATH_NAME_MAX + 16)

static uint64_t dead_after_us(const struct mpt_client *c)
{
    uint64_t d = 5ULL * c->p.probe_interval_ms * 1000;
    return d > MIN_DEAD_US ? d : MIN_DEAD_US;
}

/* The long-term keys of a client's parameters: key mode with a private key, else the secret. */
static int client_keys(struct mpt_hs_keys *k, const struct mpt_client_params *p)
{
    if (p->private_key)
        return p->server_public_key
                   ? mpt_hs_keys_pair(k, p->private_key, p->server_public_key, p->secret)
                   : -EINVAL;
    return p->secret ? mpt_hs_keys_secret(k, p->secret) : -EINVAL;
}

void mpt_client_set_wall(struct mpt_client *c, uint64_t now, uint64_t unix_us)
{
    c->wall_off_us = (int64_t)(unix_us - now);
}

/* The tables of the mode: the reorder buffer in balance mode with reorder_cap_ms (3 MiB), fec
 * mode's encoder and decoder (2.4 MiB); each allocated when a mode first needs it, then kept.
 * Returns 0 or -ENOMEM. */
static int mode_tables(struct mpt_client *c, uint8_t mode, uint32_t reorder_cap_ms)
{
    if (mode == MPT_CLIENT_BALANCE && reorder_cap_ms && !c->reorder.q &&
        mpt_reorder_init(&c->reorder, 1, MPT_CLIENT_REORDER_ENTRIES) != 0)
        return -ENOMEM;
    if (mode == MPT_CLIENT_FEC && !c->fec_tx.sym) {
        if (mpt_fec_tx_init(&c->fec_tx) != 0)
            return -ENOMEM;
        if (mpt_fec_rx_init(&c->fec_rx, MPT_CLIENT_FEC_SOURCES, MPT_CLIENT_FEC_BLOCKS) != 0) {
            mpt_fec_tx_free(&c->fec_tx);
            return -ENOMEM;
        }
        memset(c->fec_plan.m_for, 0xff, sizeof(c->fec_plan.m_for));
        c->fec_rx.hold_us = MPT_FEC_HOLD_US;
    }
    return 0;
}

int mpt_client_init(struct mpt_client *c, const struct mpt_client_params *p)
{
    int locked;

    memset(c, 0, sizeof(*c));
    if (!p->secret || p->npaths < 1 || p->npaths > MPT_MAX_PATHS || p->max_flows < 1 ||
        p->probe_interval_ms < 1 || p->mode > MPT_CLIENT_FEC)
        return -EINVAL;
    c->p = *p;
    c->p.secret = NULL;
    c->p.private_key = NULL;
    c->p.server_public_key = NULL;
    if (!c->p.rekey_after_ms)
        c->p.rekey_after_ms = MPT_REKEY_AFTER_MS;
    for (unsigned i = 0; i < MPT_MAX_PATHS; i++)
        c->p.path_name[i][MPT_PATH_NAME_MAX - 1] = '\0';
    if (!(c->p.target_loss > 0 && c->p.target_loss < 1))
        c->p.target_loss = 0.001;
    for (unsigned i = 0; i < MPT_MAX_PATHS; i++)
        if (c->p.weight[i] == 0)
            c->p.weight[i] = 1;
    c->sched_dirty = 1;
    c->sec = mpt_secure_alloc(sizeof(*c->sec), &locked);
    if (!c->sec)
        return -ENOMEM;
    if (!locked)
        MPT_WARN("keys not locked in memory (RLIMIT_MEMLOCK: raise LimitMEMLOCK=): they may be "
                 "swapped out; they are still left out of core dumps");
    if (client_keys(&c->sec->hsk, p) != 0) {
        mpt_client_free(c);
        return -EINVAL;
    }
    c->timer_at_us = UINT64_MAX;
    c->hash_key = mpt_random64();
    c->next_flow_id = 1;
    c->flows = calloc(p->max_flows, sizeof(*c->flows));
    c->held_buf = malloc(MPT_CLIENT_HELD_BYTES);
    c->copies = calloc(2, sizeof(*c->copies));
    if (!c->flows || !c->held_buf || !c->copies ||
        mpt_slots_init(&c->flow_slots, p->max_flows) != 0 ||
        mpt_index_init(&c->flow_by_app, p->max_flows, mpt_random64()) != 0 ||
        mpt_index_init(&c->flow_by_id, p->max_flows, mpt_random64()) != 0 ||
        mpt_split_init(&c->split) != 0 || mode_tables(c, p->mode, p->reorder_cap_ms) != 0) {
        mpt_client_free(c);
        return -ENOMEM;
    }
    return 0;
}

void mpt_client_free(struct mpt_client *c)
{
    if (!c)
        return;
    mpt_fec_tx_free(&c->fec_tx);
    mpt_fec_rx_free(&c->fec_rx);
    free(c->flows);
    free(c->held_buf);
    free(c->copies);
    mpt_split_free(&c->split);
    mpt_reorder_free(&c->reorder);
    mpt_slots_free(&c->flow_slots);
    mpt_index_free(&c->flow_by_app);
    mpt_index_free(&c->flow_by_id);
    mpt_secure_free(c->sec, sizeof(*c->sec)); /* wiped */
    memset(c, 0, sizeof(*c));
}

/* Queues one buffer on the paths of `mask`; returns the number of copies. `data`: the buffer
 * is a flow's datagram, counted per path in data_tx. */
static unsigned send_paths(struct mpt_client *c, const uint8_t *buf, size_t len, uint32_t mask,
                           int data, struct mpt_outq *q)
{
    unsigned copies = 0;

    mask &= ~c->disabled;
    for (unsigned i = 0; i < c->p.npaths; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (!mpt_outq_push(q, MPT_OUT_PATH, buf, len, i)) {
            c->ctr.queue_full++;
            continue;
        }
        copies++;
        c->paths[i].data_tx += data != 0;
        c->paths[i].tx_dgrams++;
        c->paths[i].tx_bytes += len;
        c->ctr.tx_dgrams++;
        c->ctr.tx_bytes += len;
    }
    return copies;
}

/* Every path in service. */
static uint32_t all_paths(const struct mpt_client *c)
{
    return (c->p.npaths >= 32 ? UINT32_MAX : (1u << c->p.npaths) - 1) & ~c->disabled;
}

static int path_live(const struct mpt_client_path *p)
{
    return p->state == MPT_PATH_UP || p->state == MPT_PATH_LOSSY;
}

/* The reorder buffer (§8.1) holds replies for order in balance mode. */
static int reorder_on(const struct mpt_client *c)
{
    return c->p.reorder_cap_ms && c->p.mode == MPT_CLIENT_BALANCE;
}

/* How long the replies missing before one that came over `path` are waited for: the delay
 * difference between it and the slowest path the server answers on, and a margin; and (*hold)
 * how long it is held in any case, to take as long as over the slowest path (§8.1). */
static uint64_t reorder_wait(const struct mpt_client *c, unsigned path, uint64_t *hold)
{
    const struct mpt_owd *owd[MPT_MAX_PATHS];
    uint64_t srtt[MPT_MAX_PATHS];
    uint32_t mask = 0;

    for (unsigned i = 0; i < c->p.npaths; i++) {
        srtt[i] = c->paths[i].srtt_us;
        owd[i] = &c->paths[i].owd;
        if (c->use[i] && path_live(&c->paths[i]))
            mask |= 1u << i;
    }
    return mpt_reorder_times(owd, srtt, mask, c->p.npaths, path, c->reorder.q[0].extra_us,
                             (uint64_t)c->p.reorder_cap_ms * 1000, hold);
}

/* Hands the replies whose turn has come (all of them with flush) to their applications, as far
 * as the output queue has room; the rest wait for the next call (the driver is woken). */
static void reorder_release(struct mpt_client *c, uint64_t now, int flush, struct mpt_outq *q)
{
    while (c->reorder.q[0].n) {
        const struct mpt_reorder_ent *e;
        struct mpt_out *o;
        uint8_t *data;

        if (q->max - q->n < 2 || q->cap - q->used < MPT_REORDER_CHUNK + 64) {
            c->wake = 1;
            return;
        }
        e = mpt_reorder_pop(&c->reorder, 0, &c->sec->keys.rx_window, now, flush);
        if (!e)
            return;
        /* Its flow may have closed meanwhile (and its slot gone to another). */
        if (c->flows[e->tag].id != e->tag2 || mpt_index_find(&c->flow_by_id, e->tag2) != e->tag) {
            c->ctr.drops[MPT_DROP_SESSION]++;
            continue;
        }
        data = mpt_outq_alloc(q, e->len);
        memcpy(data, e->data, e->len);
        o = mpt_outq_push(q, MPT_OUT_APP, data, e->len, e->tag);
        if (o) {
            o->addr = c->flows[e->tag].app;
            o->target = c->flows[e->tag].front;
            c->ctr.app_tx++;
        }
    }
}

/* Held replies of a session that is no longer the current one, or held while the mode changed to
 * one without ordering, go now, in order. */
static void reorder_sync(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    struct mpt_reorder_q *rq = c->reorder.q;

    if (!rq || (rq->sid == c->sid && (reorder_on(c) || !rq->n)))
        return;
    if (rq->n)
        reorder_release(c, now, 1, q);
    if (!rq->n)
        mpt_reorder_reset(&c->reorder, 0, c->sid);
}

/* Adaptive mode: the fewest paths, best first, whose joint loss stays under the target. Paths are
 * ordered by loss and then delay as the estimates of §8.2 see them (which return to the truth
 * within seconds, and take no sample over a blackout), each compared with a margin
 * (mpt_est_better), starting from the order chosen last, so that a path that heals is first again
 * within seconds and paths alike do not trade places on every sample. A path not measured yet
 * counts as losing half. */
static uint32_t adaptive_pick(struct mpt_client *c, uint32_t live, int down_dir)
{
    unsigned order[MPT_MAX_PATHS], n = 0;
    double residual = 1.0;
    uint32_t mask = 0, placed = 0;

    /* The order of last time (a path once), then the paths new to it. */
    for (unsigned k = 0; k < c->p.npaths; k++) {
        unsigned i = c->adapt_order[down_dir][k];
        if (i < c->p.npaths && (live & ~placed & (1u << i))) {
            order[n++] = i;
            placed |= 1u << i;
        }
    }
    for (unsigned i = 0; i < c->p.npaths; i++)
        if (live & ~placed & (1u << i))
            order[n++] = i;
    /* Insertion sort: a path moves ahead only past those it is clearly better than. */
    for (unsigned i = 1; i < n; i++) {
        for (unsigned j = i; j > 0; j--) {
            if (!mpt_est_better(&c->paths[order[j]].est, &c->paths[order[j - 1]].est, down_dir))
                break;
            unsigned t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    for (unsigned k = 0; k < n; k++)
        c->adapt_order[down_dir][k] = (uint8_t)order[k];
    for (unsigned k = n; k < MPT_MAX_PATHS; k++)
        c->adapt_order[down_dir][k] = 0xff;
    /* How many: from the loss figures of §5, steadier than those that order them. */
    for (unsigned k = 0; k < n; k++) {
        const struct mpt_client_path *p = &c->paths[order[k]];
        mask |= 1u << order[k];
        residual *= p->loss_known ? (down_dir ? p->loss_down : p->loss_up) : 0.5;
        if (residual <= c->p.target_loss)
            break;
    }
    return mask;
}

/* Backup mode, one direction: the usable paths of the best priority; and, so that their
 * recovery is measured on data rather than on probes alone, a copy on the live paths of a better
 * priority that are unusable now. */
static uint32_t backup_pick(const struct mpt_client *c, uint32_t live, uint32_t usable)
{
    unsigned best = UINT32_MAX;
    uint32_t mask = 0;

    for (unsigned i = 0; i < c->p.npaths; i++)
        if ((usable & (1u << i)) && c->p.priority[i] < best)
            best = c->p.priority[i];
    for (unsigned i = 0; i < c->p.npaths; i++)
        if ((usable & (1u << i)) ? c->p.priority[i] == best
                                 : (live & (1u << i)) && c->p.priority[i] < best)
            mask |= 1u << i;
    return mask;
}

/* Balance mode: each path's share each way from what it carries now (§8.2); the server is told
 * those of its direction in `use'. */
static void balance_shares(struct mpt_client *c, uint32_t send, uint32_t back)
{
    struct mpt_est est[MPT_MAX_PATHS];

    for (unsigned i = 0; i < c->p.npaths; i++)
        est[i] = c->paths[i].est;
    mpt_est_shares(est, c->p.weight, send, c->p.npaths, 0, c->share);
    mpt_est_shares(est, c->p.weight, back, c->p.npaths, 1, c->share_down);
}

/* Recomputes which paths carry datagrams each way (PROTOCOL.md §8). */
static void schedule(struct mpt_client *c)
{
    uint32_t live = 0, send = 0, back = 0, usable[2] = {0, 0};

    for (unsigned i = 0; i < c->p.npaths; i++)
        if (path_live(&c->paths[i]))
            live |= 1u << i;
    if (!live)
        live = all_paths(c); /* nothing known alive: try them all */
    for (unsigned d = 0; d < 2; d++) {
        for (unsigned i = 0; i < c->p.npaths; i++)
            if ((live & (1u << i)) && !c->paths[i].unusable[d])
                usable[d] |= 1u << i;
        if (!usable[d])
            usable[d] = live; /* every one unusable: the least bad is still some chance */
    }
    switch (c->p.mode) {
    case MPT_CLIENT_BACKUP:
        send = backup_pick(c, live, usable[0]);
        back = backup_pick(c, live, usable[1]);
        break;
    case MPT_CLIENT_ADAPTIVE:
        send = adaptive_pick(c, usable[0], 0);
        back = adaptive_pick(c, usable[1], 1);
        break;
    case MPT_CLIENT_BALANCE: /* one of them per datagram, by shares (§8.2) */
        send = usable[0];
        back = usable[1];
        balance_shares(c, send, back);
        break;
    case MPT_CLIENT_FEC: /* one of them per datagram by weight, and repairs over them (§11) */
        send = usable[0];
        back = usable[1];
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
            c->use[i] = (uint8_t)(c->share_down[i] * 255 / 1000 ? c->share_down[i] * 255 / 1000
                                                                : c->share_down[i] != 0);
        else if (c->p.mode == MPT_CLIENT_FEC)
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

    if (p->state == st || (c->disabled & (1u << i)))
        return;
    if (MPT_LOG_ON(MPT_LOGL_INFO)) {
        /* "path 2 down (wan1): ...": the state right after the number, for grep. */
        char n[LABEL_MAX + 4], fig[96];
        const char *sn = mpt_path_state_name(st);
        snprintf(fig, sizeof(fig), "rtt %.1f ms, loss %.1f%% -> / %.1f%% <-",
                 (double)p->srtt_us / 1000, 100 * p->loss_up, 100 * p->loss_down);
        if (c->p.path_name[i][0])
            snprintf(n, sizeof(n), " (%s)", c->p.path_name[i]);
        else
            n[0] = '\0';
        if (st == MPT_PATH_DOWN)
            MPT_INFO("path %u %s%s: nothing heard for %.1f s (was %s; %s)", i + 1, sn, n,
                     (double)(now - p->last_rx_us) / 1e6, mpt_path_state_name(p->state), fig);
        else if (st == MPT_PATH_LOSSY)
            MPT_INFO("path %u %s%s: loss over %.0f%% (%s)", i + 1, sn, n, 100 * MPT_LOSSY_THRESHOLD,
                     fig);
        else if (p->state == MPT_PATH_LOSSY)
            MPT_INFO("path %u %s%s: loss back under %.0f%% (%s)", i + 1, sn, n,
                     100 * MPT_LOSSY_THRESHOLD, fig);
        else if (p->state_since_us)
            MPT_INFO("path %u %s%s again after %.1f s down (%s)", i + 1, sn, n,
                     (double)(now - p->state_since_us) / 1e6, fig);
        else
            MPT_INFO("path %u %s%s", i + 1, sn, n);
    }
    /* Back from silence: the next loss sample starts now, not across the outage. */
    if (p->state == MPT_PATH_DOWN)
        p->ack_seq = 0;
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

/* Builds a new INIT in the free handshake slot and makes it the current one. */
static int build_init(struct mpt_client *c, uint64_t now)
{
    struct mpt_hs_init_params ip = {0};
    unsigned slot = c->hs_cur ^ 1;
    uint64_t sid;

    do
        sid = mpt_random64();
    while (sid == 0 || sid == c->sid || sid == c->sec->hs[c->hs_cur].sid);
    ip.sid = sid;
    ip.unix_us = now + (uint64_t)c->wall_off_us;
    ip.prev = c->sid;
    ip.prev_resume = c->sec->resume;
    ip.mode = c->p.mode;
    ip.flags = !c->p.no_aes && mpt_cipher_aes_available() ? MPT_INIT_FLAG_AES : 0;
    mpt_hs_client_wipe(&c->sec->hs[slot]);
    if (mpt_hs_client_init(&c->sec->hs[slot], &c->sec->hsk, &ip) != 0)
        return -EINVAL;
    c->hs_cur = slot;
    c->hs_sid = sid;
    c->hs_built_us = now;
    return 0;
}

static void start_handshake(struct mpt_client *c, uint64_t now)
{
    if (build_init(c, now) != 0) {
        MPT_ERROR("cannot make a handshake message (libsodium refused the keys)");
        return;
    }
    c->hs_next_us = now;
    c->hs_started_us = now;
    c->hs_attempts = 0;
    for (unsigned i = 0; i < c->p.npaths; i++) {
        c->paths[i].hs_malformed = c->paths[i].rx_malformed;
        c->paths[i].hs_unauth = c->paths[i].rx_unauth;
    }
    if (!c->first_try_us)
        c->first_try_us = now;
    MPT_DEBUG("handshake %016llx: INIT on every path every %llu ms until one answers%s",
              (unsigned long long)c->hs_sid, MPT_CLIENT_INIT_RETRY_US / 1000,
              c->state != MPT_CLIENT_ESTABLISHED          ? ""
              : now - c->last_auth_us >= dead_after_us(c) ? " (the session is silent)"
                                                          : " (re-keying the session)");
    if (c->state == MPT_CLIENT_IDLE)
        c->state = MPT_CLIENT_HANDSHAKE;
}

static int cookie_valid(const struct mpt_client *c, unsigned path, uint64_t now)
{
    return c->cookie_us[path] && now - c->cookie_us[path] < MPT_CLIENT_COOKIE_US;
}

/* Sends the current INIT on the paths of mask, with MAC2 where a path has a cookie. */
static void send_init_on(struct mpt_client *c, uint64_t now, uint32_t mask, struct mpt_outq *q)
{
    struct mpt_hs_client *hs = &c->sec->hs[c->hs_cur];
    uint32_t plain = 0;
    uint8_t *buf;

    for (unsigned i = 0; i < c->p.npaths; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (!cookie_valid(c, i, now)) {
            plain |= 1u << i;
            continue;
        }
        buf = mpt_outq_alloc(q, hs->len);
        if (!buf)
            return;
        mpt_hs_client_set_cookie(hs, c->sec->cookie[i]);
        memcpy(buf, hs->msg, hs->len);
        send_paths(c, buf, hs->len, 1u << i, 0, q);
    }
    memset(hs->msg + hs->len - MPT_MAC_LEN, 0, MPT_MAC_LEN);
    if (!plain)
        return;
    buf = mpt_outq_alloc(q, hs->len);
    if (!buf)
        return;
    memcpy(buf, hs->msg, hs->len);
    send_paths(c, buf, hs->len, plain, 0, q);
}

static void send_init(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    /* A new INIT every half second: the server answers copies of one only for a second, and one
     * stamped before a restarted server came up is stale there. */
    if (now - c->hs_built_us >= MPT_CLIENT_INIT_RENEW_US && build_init(c, now) != 0)
        return;
    send_init_on(c, now, all_paths(c), q);
    c->hs_attempts++;
    c->hs_next_us = now + MPT_CLIENT_INIT_RETRY_US;
}

/* The handshake (current or the one before) whose INIT had session id sid, or NULL. */
static struct mpt_hs_client *hs_find(struct mpt_client *c, uint64_t sid)
{
    if (!c->hs_sid || !sid)
        return NULL;
    for (unsigned i = 0; i < 2; i++)
        if (c->sec->hs[i].sid == sid)
            return &c->sec->hs[i];
    return NULL;
}

static void on_cookie(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf,
                      size_t len, struct mpt_outq *q)
{
    struct mpt_hs_client *hs = hs_find(c, mpt_get64(buf + MPT_COOKIE_OFF_SID));

    if (!hs) {
        c->ctr.drops[MPT_DROP_SESSION]++;
        return;
    }
    if (mpt_hs_client_cookie(hs, &c->sec->hsk, buf, len, c->sec->cookie[path]) != 0) {
        c->ctr.drops[MPT_DROP_AUTH]++;
        c->paths[path].rx_unauth++;
        return;
    }
    /* The server is under load and wants proof of our address on this path: at once. */
    c->cookie_us[path] = now ? now : 1;
    c->cookies++;
    MPT_DEBUG("handshake %016llx: the server is under load; INIT again with its cookie on path %u",
              (unsigned long long)c->hs_sid, path + 1);
    send_init_on(c, now, 1u << path, q);
}

/* The server's clock may be another: the one-way delays measured by it start over. */
static void new_server_clock(struct mpt_client *c)
{
    for (unsigned i = 0; i < c->p.npaths; i++) {
        mpt_owd_reset(&c->paths[i].owd);
        mpt_est_new_clock(&c->paths[i].est);
    }
}

static void on_response(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf,
                        size_t len)
{
    uint64_t sid = mpt_get64(buf + MPT_RESPONSE_OFF_SID);
    struct mpt_hs_client *hs = hs_find(c, sid);
    struct mpt_hs_result res;
    int rc, follows;

    if (!hs) {
        /* Another path's copy of the RESPONSE we took is a duplicate, not a rejection. */
        if (sid == c->sid)
            c->ctr.duplicates++;
        else
            c->ctr.drops[MPT_DROP_SESSION]++;
        return;
    }
    rc = mpt_hs_client_response(hs, &c->sec->hsk, buf, len, &res);
    if (rc != 0) {
        c->ctr.drops[rc == -EPROTO ? MPT_DROP_MALFORMED : MPT_DROP_AUTH]++;
        if (rc != -EPROTO)
            c->paths[path].rx_unauth++;
        return;
    }
    /* The server answers under the old keys until it sees one of our datagrams under the new:
     * keep reading them a little while. */
    follows = c->state == MPT_CLIENT_ESTABLISHED;
    if (follows) {
        c->prev_sid = c->sid;
        c->sec->prev_keys = c->sec->keys;
        c->prev_until_us = now + MPT_CLIENT_PREV_US;
    }
    mpt_keys_init(&c->sec->keys, res.tx, res.rx, res.cipher,
                  now + MPT_REJECT_AFTER_US(c->p.rekey_after_ms));
    memcpy(c->sec->resume, res.resume, MPT_KEY_LEN);
    mpt_wipe(&res, sizeof(res));
    for (unsigned i = 0; i < 2; i++)
        mpt_hs_client_wipe(&c->sec->hs[i]);
    c->sid = sid;
    c->hs_sid = 0;
    c->state = MPT_CLIENT_ESTABLISHED;
    mpt_fec_tx_reset(&c->fec_tx); /* its sources' counters were the session before's */
    c->last_auth_us = now;
    c->established_us = now;
    c->paths[path].last_rx_us = now;
    /* The new server-side session counts from zero: loss samples start over on every path. A
     * session that does not follow ours may be another server process's, with another clock. */
    for (unsigned i = 0; i < c->p.npaths; i++)
        c->paths[i].ack_seq = 0;
    if (!follows)
        new_server_clock(c);
    c->sessions_established++;
    c->ctr.handshakes++;
    /* A new session on the server may know none of the flows: targets travel again. */
    for (unsigned i = 0; i < c->p.max_flows; i++)
        c->flows[i].acked = 0;
    /* Probe every path at once, so the server learns them and we learn their RTT. */
    c->next_probe_us = now;
    c->wake = 1;
    if (MPT_LOG_ON(MPT_LOGL_INFO)) {
        char l[LABEL_MAX];
        MPT_INFO("session %016llx established, %s (%s answered in %llu ms, attempt %u)",
                 (unsigned long long)sid, mpt_cipher_name(c->sec->keys.cipher),
                 path_label(c, path, l, sizeof(l)),
                 (unsigned long long)((now - c->hs_started_us) / 1000), c->hs_attempts);
    }
}

/* The key of a flow in flow_by_app: application, front and target. */
static uint64_t flow_app_key(const struct mpt_client *c, const struct mpt_addr *app, uint16_t front,
                             const char *host, uint16_t port)
{
    uint64_t h = 1469598103934665603ULL ^ ((uint64_t)front << 16 | port);

    for (const char *p = host; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return mpt_addr_hash(app, c->hash_key ^ h);
}

static struct mpt_client_flow *flow_by_app(struct mpt_client *c, const struct mpt_addr *app,
                                           uint16_t front, const char *host, uint16_t port,
                                           uint32_t *slot_out)
{
    uint64_t key = flow_app_key(c, app, front, host, port);

    for (uint32_t s = mpt_index_find(&c->flow_by_app, key); s != MPT_NIL;
         s = mpt_index_next(&c->flow_by_app, s)) {
        const struct mpt_client_flow *f = &c->flows[s];
        if (mpt_addr_equal(&f->app, app) && f->front == front && f->port == port &&
            strcmp(f->host, host) == 0) {
            *slot_out = s;
            return &c->flows[s];
        }
    }
    return NULL;
}

/* Flow `id` is forgotten here: the server is to be told (FLOW_CLOSE). */
static void close_note(struct mpt_client *c, uint32_t id)
{
    if (c->state != MPT_CLIENT_ESTABLISHED)
        return; /* no session: the server has none of its flows, or forgets them with it */
    if (c->nclose == MPT_CLIENT_CLOSE_MAX) {
        memmove(c->close_ids, c->close_ids + 1, (c->nclose - 1) * sizeof(c->close_ids[0]));
        memmove(c->close_left, c->close_left + 1, c->nclose - 1);
        c->nclose--;
        c->closes_lost++;
    }
    c->close_ids[c->nclose] = id;
    c->close_left[c->nclose++] = MPT_CLIENT_CLOSE_SENDS;
    c->close_new = 1;
    c->wake = 1;
}

/* Sends every id waiting in FLOW_CLOSE messages (§5) on the paths data goes on, once more each,
 * and forgets those sent their last time. */
static void send_closes(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    unsigned kept = 0;

    if (c->sched_dirty)
        schedule(c);
    for (unsigned i = 0; i < c->nclose; i += MPT_FLOW_CLOSE_MAX_IDS) {
        unsigned k =
            c->nclose - i < MPT_FLOW_CLOSE_MAX_IDS ? c->nclose - i : MPT_FLOW_CLOSE_MAX_IDS;
        size_t len = MPT_FLOW_CLOSE_HDR_LEN + 4 * (size_t)k;
        uint8_t *out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + len), *m;
        if (!out) {
            c->ctr.queue_full++;
            break;
        }
        m = mpt_data_inner(out);
        m[0] = MPT_INNER_FLOW_CLOSE;
        m[1] = 0;
        mpt_put16(m + 2, (uint16_t)k);
        for (unsigned j = 0; j < k; j++)
            mpt_put32(m + MPT_FLOW_CLOSE_HDR_LEN + 4 * j, c->close_ids[i + j]);
        len = mpt_data_seal(&c->sec->keys, c->sid, out, len);
        c->ctr.sealed++;
        c->closes_sent++;
        send_paths(c, out, len, c->send_mask, 0, q);
    }
    for (unsigned i = 0; i < c->nclose; i++) {
        if (--c->close_left[i] == 0)
            continue;
        c->close_ids[kept] = c->close_ids[i];
        c->close_left[kept++] = c->close_left[i];
    }
    c->nclose = kept;
    c->close_new = 0;
    c->close_next_us = now + MPT_CLIENT_CLOSE_GAP_US;
}

static void flow_release(struct mpt_client *c, uint32_t slot, uint64_t now)
{
    if (MPT_LOG_ON(MPT_LOGL_DEBUG)) {
        char a[MPT_ADDR_STRLEN];
        MPT_DEBUG("flow %u of %s closed after %.1f s idle", c->flows[slot].id,
                  mpt_addr_str(&c->flows[slot].app, a, sizeof(a)),
                  (double)(now - c->flows[slot].last_us) / 1e6);
    }
    c->flows_closed++;
    close_note(c, c->flows[slot].id);
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
        flow_release(c, s, now);
}

void mpt_client_close_front(struct mpt_client *c, uint16_t front, uint64_t now)
{
    uint32_t s = mpt_slots_oldest(&c->flow_slots);

    while (s != MPT_NIL) {
        uint32_t newer = c->flow_slots.prev[s];
        if (c->flows[s].front == front)
            flow_release(c, s, now);
        s = newer;
    }
}

static struct mpt_client_flow *flow_open(struct mpt_client *c, uint64_t now,
                                         const struct mpt_addr *app, uint16_t front,
                                         const char *host, uint16_t port, uint32_t *slot_out)
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
    f->front = front;
    f->port = port;
    f->acked = 0;
    f->refused = 0;
    snprintf(f->host, sizeof(f->host), "%s", host);
    mpt_index_insert(&c->flow_by_app, slot, flow_app_key(c, app, front, host, port));
    mpt_index_insert(&c->flow_by_id, slot, f->id);
    c->flows_opened++;
    if (MPT_LOG_ON(MPT_LOGL_DEBUG)) {
        char a[MPT_ADDR_STRLEN];
        MPT_DEBUG("flow %u opened for %s (%u in use)", f->id, mpt_addr_str(app, a, sizeof(a)),
                  c->flow_slots.used);
    }
    *slot_out = slot;
    return f;
}

/* fec mode (§11): the plan for a block opened now: the fixed K:M, or repairs for each path's
 * loss to the server (a path measured over fewer than MPT_FECPLAN_PRIOR_DGRAMS datagrams counts as
 * MPT_FECPLAN_PRIOR_LOSS, or more) and target_loss, over the paths data goes on. */
static void fec_plan(struct mpt_client *c)
{
    double loss[MPT_MAX_PATHS];

    if (c->sched_dirty)
        schedule(c);
    for (unsigned i = 0; i < c->p.npaths; i++)
        loss[i] = mpt_fecplan_loss(c->paths[i].loss_known ? c->paths[i].loss_up : 0,
                                   c->paths[i].loss_n[0] >= MPT_FECPLAN_PRIOR_DGRAMS);
    mpt_fecplan_set(&c->fec_plan, loss, c->p.weight, c->send_mask, c->p.npaths, c->p.target_loss,
                    c->p.fec_k, c->p.fec_m);
    mpt_fecplan_wait(&c->fec_plan, MPT_FEC_WAIT_US); /* the server's wait (§11) */
}

/* Closes the open block and queues its repairs, each sealed once, spread over the paths that
 * carry the sources (one each, turning), if the queue has room. */
static void fec_flush(struct mpt_client *c, struct mpt_outq *q)
{
    unsigned n = c->fec_tx.n, m;
    uint32_t mask;

    if (!n)
        return;
    if (c->sched_dirty)
        schedule(c);
    m = mpt_fecplan_m(&c->fec_plan, n);
    if (!m) {
        mpt_fec_tx_reset(&c->fec_tx);
        return;
    }
    m = mpt_fec_tx_close(&c->fec_tx, m);
    mask = c->send_mask & ~c->disabled;
    if (!mask)
        mask = all_paths(c);
    for (unsigned j = 0; j < m; j++) {
        unsigned path = c->fec_next_path;
        uint8_t *out;
        size_t len;

        for (unsigned t = 0; t < c->p.npaths; t++) {
            path = (c->fec_next_path + t) % c->p.npaths;
            if (mask & (1u << path))
                break;
        }
        c->fec_next_path = (path + 1) % c->p.npaths;
        if (q->max - q->n < 4 || q->cap - q->used < MPT_DATA_OVERHEAD + MPT_REPAIR_MAX_LEN + 64 ||
            !(out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_REPAIR_MAX_LEN))) {
            c->fec_repair_drops += m - j;
            return;
        }
        len = mpt_fec_tx_repair(&c->fec_tx, j, mpt_data_inner(out));
        len = mpt_data_seal(&c->sec->keys, c->sid, out, len);
        c->ctr.sealed++;
        c->fec_repairs_tx++;
        send_paths(c, out, len, 1u << path, 0, q);
    }
}

/* A datagram about to be sealed with the next counter: a source of the open block (after the
 * block before is closed, if it cannot join it). The driver's timer must wake for a new block. */
static void fec_source(struct mpt_client *c, const uint8_t *inner, size_t len, struct mpt_outq *q)
{
    uint64_t ctr;

    if (c->p.mode != MPT_CLIENT_FEC || !c->fec_tx.sym || !mpt_fec_protects(inner, len))
        return;
    if (!mpt_fec_tx_fits(&c->fec_tx, c->sec->keys.tx_counter + 1, mpt_fecplan_k(&c->fec_plan)))
        fec_flush(c, q);
    if (!c->fec_tx.n) {
        fec_plan(c);
        if (mpt_fecplan_none(&c->fec_plan))
            return; /* no repair would be sent: not coded at all */
    }
    ctr = c->sec->keys.tx_counter + 1;
    if (mpt_fec_tx_add(&c->fec_tx, ctr, inner, len, c->fec_now_us) == 1) {
        c->fec_close_us = mpt_fecplan_first(&c->fec_plan, c->fec_now_us);
        if (c->fec_close_us < c->timer_at_us)
            c->wake = 1;
    }
    c->fec_sources++;
}

/* After a source is sealed: a full block is closed at once. */
static void fec_full(struct mpt_client *c, struct mpt_outq *q)
{
    if (c->p.mode == MPT_CLIENT_FEC && c->fec_tx.n && c->fec_tx.n >= mpt_fecplan_k(&c->fec_plan))
        fec_flush(c, q);
}

/* A FLOW message of `len` bytes at mpt_data_inner(out), the last allocation in q, that the paths
 * of mask do not carry whole: sent instead as pieces that fit, each sealed once and queued on
 * those paths (PROTOCOL.md §5 PIECE), if the queue has room for all of them. Returns 0 if the
 * message is to go whole (it fits, a path's size is unknown, or no room). */
static int send_pieces(struct mpt_client *c, uint8_t *out, size_t len, uint32_t mask,
                       struct mpt_outq *q)
{
    const uint8_t *inner = mpt_data_inner(out);
    size_t base = (size_t)(out - q->arena);
    unsigned max = 0, copies = 0, k;
    uint32_t msg;

    mask &= ~c->disabled;
    for (unsigned i = 0; i < c->p.npaths; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (!c->paths[i].max_dgram)
            return 0;
        if (!max || c->paths[i].max_dgram < max)
            max = c->paths[i].max_dgram;
        copies++;
    }
    k = mpt_split_count(len, max);
    if (!k || q->max - q->n < k * copies || q->cap - base < len + k * (MPT_PIECE_OVERHEAD + 16))
        return 0;
    /* The pieces take the message's place in the queue's arena. */
    memcpy(c->split.scratch, inner, len);
    q->used = base;
    msg = mpt_split_next_msg(&c->split);
    for (unsigned i = 0; i < k; i++) {
        uint8_t *p = mpt_outq_alloc(q, MPT_PIECE_OVERHEAD + mpt_split_piece_len(len, k, i));
        size_t n;

        if (!p) { /* the repairs of a block closed on the way took the room */
            c->ctr.drops[MPT_DROP_LIMIT]++;
            break;
        }
        n = mpt_split_write(mpt_data_inner(p), mpt_get32(c->split.scratch + 4), msg, i, k,
                            c->split.scratch, len);
        fec_source(c, mpt_data_inner(p), n, q);
        n = mpt_data_seal(&c->sec->keys, c->sid, p, n);
        c->ctr.sealed++;
        copies = send_paths(c, p, n, mask, 1, q);
        fec_full(c, q);
    }
    c->split.st.split++;
    c->split.st.pieces_tx += k;
    c->data_dgrams++;
    c->data_copies += copies;
    return 1;
}

/* Balance mode: the paths of mask whose cap (§8.2: what a path found full carried) leaves room
 * for a datagram now. A cap is a rate, where a share is a fraction of what the applications
 * send: while they send more and more (TCP's slow start), a full path's share alone would give
 * it more than it carries, and its queue would stand. */
static uint32_t within_caps(struct mpt_client *c, uint64_t now, uint32_t mask)
{
    uint32_t ok = 0;

    for (unsigned i = 0; i < c->p.npaths; i++)
        if ((mask & (1u << i)) && mpt_bucket_room(&c->paths[i].cap, c->paths[i].est.up.cap, now))
            ok |= 1u << i;
    return ok;
}

/* Encrypts one datagram of flow f once and queues it on the scheduled paths. A flow that names
 * its target carries it until the server says the flow is open (§5). */
static void send_flow(struct mpt_client *c, uint64_t now, const struct mpt_client_flow *f,
                      const uint8_t *buf, size_t len, struct mpt_outq *q)
{
    size_t tlen = f->port && !f->acked ? 1 + strlen(f->host) + 2 : 0;
    uint8_t *out, *inner;
    uint32_t mask;
    size_t n;

    if (len + tlen > MPT_MAX_PAYLOAD) {
        c->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_FLOW_HDR_LEN + tlen + len);
    if (!out) {
        c->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    inner = mpt_data_inner(out);
    inner[0] = MPT_INNER_FLOW;
    inner[1] = f->port ? MPT_FLOW_F_NAMED | (tlen ? MPT_FLOW_F_TARGET : 0) : 0;
    mpt_put16(inner + 2, 0);
    mpt_put32(inner + 4, f->id);
    if (tlen)
        mpt_target_encode(inner + MPT_FLOW_HDR_LEN, tlen, f->host, f->port);
    memcpy(inner + MPT_FLOW_HDR_LEN + tlen, buf, len);
    if (c->sched_dirty)
        schedule(c);
    mask = c->send_mask;
    if (c->p.mode == MPT_CLIENT_BALANCE) {
        uint32_t some = 0, room;
        unsigned pick;
        for (unsigned i = 0; i < c->p.npaths; i++)
            if (c->share[i])
                some |= 1u << i;
        if (some & mask) {
            /* By share among the paths within their caps; if none is, every path is full:
             * by share alone. */
            room = within_caps(c, now, some & mask);
            pick = mpt_wrr_pick(c->wrr, c->share, room ? room : some & mask, c->p.npaths);
            mpt_bucket_take(&c->paths[pick].cap, c->paths[pick].est.up.cap);
        } else {
            pick = mpt_wrr_pick(c->wrr, c->p.weight, mask, c->p.npaths);
        }
        mask = 1u << pick;
    } else if (c->p.mode == MPT_CLIENT_FEC) {
        mask = 1u << mpt_wrr_pick(c->wrr, c->p.weight, mask, c->p.npaths);
    }
    if (send_pieces(c, out, MPT_FLOW_HDR_LEN + tlen + len, mask, q))
        return;
    fec_source(c, inner, MPT_FLOW_HDR_LEN + tlen + len, q);
    n = mpt_data_seal(&c->sec->keys, c->sid, out, MPT_FLOW_HDR_LEN + tlen + len);
    c->ctr.sealed++;
    c->data_dgrams++;
    c->data_copies += send_paths(c, out, n, mask, 1, q);
    fec_full(c, q);
}

/* Before the first session: keep a few datagrams (a DNS query, a VPN's first packet) to send
 * the moment it is up, rather than losing them to the handshake's round trip. */
static void hold(struct mpt_client *c, uint64_t now, uint32_t id, const uint8_t *buf, size_t len)
{
    struct mpt_client_held *h;
    unsigned released = c->held_next, stale = released;

    /* Held in the order they came: those released already (a release cut short, then the
     * session lost) and the stale ones (which the session would drop) are the first few, and
     * give their room to the newcomer. */
    c->held_next = 0;
    while (stale < c->nheld && now - c->held[stale].at_us > MPT_CLIENT_HELD_US)
        stale++;
    if (stale) {
        uint32_t off = stale < c->nheld ? c->held[stale].off : (uint32_t)c->held_used;
        memmove(c->held_buf, c->held_buf + off, c->held_used - off);
        c->held_used -= off;
        for (unsigned i = stale; i < c->nheld; i++) {
            c->held[i - stale] = c->held[i];
            c->held[i - stale].off -= off;
        }
        c->nheld -= stale;
        c->ctr.drops[MPT_DROP_NOSESSION] += stale - released;
    }
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

/* Sends what was held, if still fresh and its flow still open, as far as the output queue has
 * room for it besides what the same timer call must send after it (a probe per path, a HELLO):
 * the rest waits for the next call, once the driver has sent the queue. Returns 1 if some is
 * still held. */
static int release_held(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    const unsigned reserve = 2 * c->p.npaths + 4;

    for (; c->held_next < c->nheld; c->held_next++) {
        const struct mpt_client_held *h = &c->held[c->held_next];
        uint32_t slot = mpt_index_find(&c->flow_by_id, h->flow);
        if (now - h->at_us > MPT_CLIENT_HELD_US || slot == MPT_NIL) {
            c->ctr.drops[MPT_DROP_NOSESSION]++;
            continue;
        }
        if (q->max - q->n < c->p.npaths + reserve ||
            q->cap - q->used < h->len + MPT_DATA_OVERHEAD + 64 + MPT_OUTQ_INPUT_BYTES)
            return 1;
        send_flow(c, now, &c->flows[slot], c->held_buf + h->off, h->len, q);
    }
    c->nheld = 0;
    c->held_next = 0;
    c->held_used = 0;
    return 0;
}

void mpt_client_on_app(struct mpt_client *c, uint64_t now, const struct mpt_addr *app,
                       const uint8_t *buf, size_t len, struct mpt_outq *q)
{
    mpt_client_on_app_to(c, now, app, 0, NULL, 0, buf, len, q);
}

void mpt_client_on_app_to(struct mpt_client *c, uint64_t now, const struct mpt_addr *app,
                          uint16_t front, const char *host, uint16_t port, const uint8_t *buf,
                          size_t len, struct mpt_outq *q)
{
    c->fec_now_us = now;
    struct mpt_client_flow *f;
    uint32_t slot;

    c->ctr.app_rx++;
    if (!host || !port) {
        host = "";
        port = 0;
    }
    if (len > MPT_MAX_PAYLOAD || (port && !mpt_target_host_valid(host, strlen(host)))) {
        c->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    f = flow_by_app(c, app, front, host, port, &slot);
    if (!f) {
        f = flow_open(c, now, app, front, host, port, &slot);
        if (!f) {
            c->ctr.drops[MPT_DROP_LIMIT]++;
            if (MPT_LOG_ON(MPT_LOGL_WARN) && mpt_log_due(&c->warn_full_us, now, 60000000)) {
                char a[MPT_ADDR_STRLEN];
                MPT_WARN("flow table full (max_flows = %u, none idle for flow_timeout): datagrams "
                         "from %s dropped (this warning at most once a minute)",
                         c->p.max_flows, mpt_addr_str(app, a, sizeof(a)));
            }
            return;
        }
    }
    f->last_us = now;
    mpt_slots_touch(&c->flow_slots, slot);
    if (f->refused) {
        if (now - f->refused_us < MPT_CLIENT_REFUSED_US) {
            c->refused_drops++;
            return;
        }
        f->refused = 0; /* ask again: the server's allow list may have changed */
        f->acked = 0;
    }
    if (c->state != MPT_CLIENT_ESTABLISHED) {
        hold(c, now, f->id, buf, len);
        return;
    }
    send_flow(c, now, f, buf, len, q);
}

/* FLOW_STATUS (§5): the server opened a flow that names its target, refused it, or lost it. */
static void on_flow_status(struct mpt_client *c, uint64_t now, const uint8_t *m)
{
    uint32_t slot = mpt_index_find(&c->flow_by_id, mpt_get32(m + 4));
    struct mpt_client_flow *f;
    uint8_t status = m[1];
    uint64_t total = 0;

    if (slot == MPT_NIL || status >= MPT_FLOW_STATUS_COUNT) {
        c->ctr.drops[MPT_DROP_MALFORMED]++;
        return;
    }
    f = &c->flows[slot];
    if (status == MPT_FLOW_OPEN) {
        f->acked = 1;
        return;
    }
    f->acked = 0;
    if (status == MPT_FLOW_UNKNOWN)
        return; /* the next datagram carries the target again */
    f->refused = status;
    f->refused_us = now;
    c->refused[status]++;
    for (int i = 1; i < MPT_FLOW_STATUS_COUNT; i++)
        total += c->refused[i];
    if (MPT_LOG_ON(MPT_LOGL_WARN) && mpt_log_due(&c->refuselog_us, now, MPT_CLIENT_REFUSELOG_US)) {
        MPT_WARN("the server refused flow %u to %s%s%s:%u: %s (%llu refusals since the last line; "
                 "at most one line per %u s)",
                 f->id, strchr(f->host, ':') ? "[" : "", f->port ? f->host : "its default target",
                 strchr(f->host, ':') ? "]" : "", (unsigned)f->port, mpt_flow_status_names[status],
                 (unsigned long long)(total - c->refused_logged),
                 (unsigned)(MPT_CLIENT_REFUSELOG_US / 1000000));
        c->refused_logged = total;
    }
}

static double loss_ewma(double cur, int known, double sample, uint64_t count)
{
    /* Weighted by how many datagrams the sample covers: a busy interval moves the estimate
     * more than a single probe does. */
    double w = (double)count / ((double)count + 100.0);
    return known ? cur + w * (sample - cur) : sample;
}

/* One loss sample of path `path` in direction d (0 up, 1 down): `sent` datagrams, `got` of them
 * received. Makes the direction unusable, or usable again (PROTOCOL.md §8). */
static void judge(struct mpt_client *c, uint64_t now, unsigned path, unsigned d, uint64_t sent,
                  uint64_t got)
{
    struct mpt_client_path *p = &c->paths[path];
    double loss = 1.0 - (double)got / (double)sent;
    const char *way = d ? "<-" : "->";
    char l[LABEL_MAX];

    if (loss > MPT_UNUSABLE_LOSS) {
        p->since_sent[d] = p->since_got[d] = 0;
        if (p->unusable[d] || sent < MPT_UNUSABLE_MIN)
            return;
        p->unusable[d] = 1;
        MPT_INFO("%s unusable %s: %.0f%% of %llu datagrams lost (over %.0f%%)",
                 path_label(c, path, l, sizeof(l)), way, 100 * loss, (unsigned long long)sent,
                 100 * MPT_UNUSABLE_LOSS);
    } else {
        if (!p->unusable[d])
            return;
        p->since_sent[d] += sent;
        p->since_got[d] += got;
        if (p->since_sent[d] < MPT_USABLE_MIN ||
            1.0 - (double)p->since_got[d] / (double)p->since_sent[d] > MPT_USABLE_LOSS)
            return;
        p->unusable[d] = 0;
        MPT_INFO("%s usable %s again: %.0f%% of %llu datagrams lost",
                 path_label(c, path, l, sizeof(l)), way,
                 100 * (1.0 - (double)p->since_got[d] / (double)p->since_sent[d]),
                 (unsigned long long)p->since_sent[d]);
    }
    c->sched_dirty = 1;
    /* The server learns at once which paths to answer on. */
    c->next_probe_us = now;
    c->wake = 1;
}

static void on_probe_ack(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *m,
                         size_t len)
{
    struct mpt_client_path *p = &c->paths[path];
    uint32_t seq, peer_rx, peer_tx;
    uint64_t sent, rtt;

    if (len < MPT_PROBE_ACK_MIN_LEN || m[1] != path) {
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
    /* Another server process answers (restarted, or another host's behind the same address),
     * whether or not its session took ours up: its clock is another. */
    if (len >= MPT_PROBE_ACK_LEN) {
        uint64_t id = mpt_get64(m + MPT_PROBE_OFF_CLOCK);
        if (c->server_clock && id != c->server_clock) {
            MPT_DEBUG("the server's clock changed (another server process): one-way delays "
                      "start over");
            new_server_clock(c);
        }
        c->server_clock = id;
    }
    mpt_owd_add(&p->owd, now, mpt_get64(m + MPT_PROBE_OFF_STIME));
    /* What the path carries now, each way (§8.2), for the balance shares. */
    if (p->probe_seq - seq < 16) {
        mpt_est_sample(&p->est, sent, rtt, mpt_get64(m + MPT_PROBE_OFF_STIME),
                       p->probe_tx[seq % 16], peer_rx, peer_tx, p->rx_dgrams);
        MPT_LOG(MPT_LOGL_DEBUG,
                "path %u: rtt %.1f ms; up: queue %.1f ms, %.0f/s delivered, cap %.0f/s%s; down: "
                "queue %.1f ms, %.0f/s delivered, cap %.0f/s%s",
                path + 1, (double)rtt / 1000, (double)mpt_est_queue_us(&p->est, 0) / 1000,
                p->est.up.rate, p->est.up.cap, p->est.up.full ? ", full" : "",
                (double)mpt_est_queue_us(&p->est, 1) / 1000, p->est.down.rate, p->est.down.cap,
                p->est.down.full ? ", full" : "");
        if (c->p.mode == MPT_CLIENT_BALANCE || c->p.mode == MPT_CLIENT_ADAPTIVE)
            c->sched_dirty = 1;
    }
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
                if (p->loss_n[0] < MPT_FECPLAN_PRIOR_DGRAMS)
                    p->loss_n[0] += dtx;
                if (p->loss_n[1] < MPT_FECPLAN_PRIOR_DGRAMS)
                    p->loss_n[1] += dptx;
                if (c->p.mode == MPT_CLIENT_ADAPTIVE)
                    c->sched_dirty = 1;
                judge(c, now, path, 0, dtx, drx < dtx ? drx : dtx);
                judge(c, now, path, 1, dptx, dmy < dptx ? dmy : dptx);
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

/* The ring of copies for the keys of session id `sid`; with `claim`, the ring of keys no longer
 * in use is given to them if they have none. NULL if none. */
static struct mpt_copies *copies_for(struct mpt_client *c, uint64_t sid, int claim)
{
    struct mpt_copies *r = c->copies;

    if (r[0].sid == sid)
        return &r[0];
    if (r[1].sid == sid)
        return &r[1];
    if (!claim)
        return NULL;
    r += r[0].sid == c->sid || (r[0].sid && r[0].sid == c->prev_sid);
    mpt_copies_reset(r, sid);
    return r;
}

/* PATH_CHALLENGE (§5): the server asks whether we are at the address it received path `path`'s
 * datagrams from. The echo goes back on that path, under the session's keys. */
static void on_challenge(struct mpt_client *c, unsigned path, const uint8_t *m, size_t mark,
                         struct mpt_outq *q)
{
    uint8_t chal[MPT_CHALLENGE_LEN], *out, *r;
    struct mpt_client_path *p = &c->paths[path];
    size_t n;

    memcpy(chal, m + MPT_CHALLENGE_OFF, MPT_CHALLENGE_LEN);
    q->used = mark;
    if (c->disabled & (1u << path))
        return;
    out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_PATH_CHALLENGE_LEN);
    if (!out)
        return;
    r = mpt_data_inner(out);
    memset(r, 0, MPT_PATH_CHALLENGE_LEN);
    r[0] = MPT_INNER_PATH_RESPONSE;
    memcpy(r + MPT_CHALLENGE_OFF, chal, MPT_CHALLENGE_LEN);
    n = mpt_data_seal(&c->sec->keys, c->sid, out, MPT_PATH_CHALLENGE_LEN);
    c->ctr.sealed++;
    if (!mpt_outq_push(q, MPT_OUT_PATH, out, n, path)) {
        c->ctr.queue_full++;
        return;
    }
    c->challenges++;
    p->tx_dgrams++;
    p->tx_bytes += n;
    c->ctr.tx_dgrams++;
    c->ctr.tx_bytes += n;
}

void mpt_client_set_path_mtu(struct mpt_client *c, unsigned path, unsigned max_dgram)
{
    if (path < c->p.npaths)
        c->paths[path].max_dgram = max_dgram;
}

/* A reply of flow `slot` to hand to its application: queued at once, or held by the reorder
 * buffer (§8.1) until the datagrams before it have come (returns 1: copied, its room in q may be
 * given back). */
static int reorder_hold(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *dgram,
                        const struct mpt_keys *k, uint32_t slot, const uint8_t *data, size_t len)
{
    uint64_t wait, hold;

    if (!reorder_on(c) || k != &c->sec->keys || !c->reorder.q)
        return 0;
    wait = reorder_wait(c, path, &hold);
    if (mpt_reorder_arrive(&c->reorder, 0, &k->rx_window, mpt_get64(dgram + MPT_DATA_OFF_CTR), now,
                           wait, hold, data, len, slot, c->flows[slot].id) == MPT_REORDER_NOW)
        return 0;
    if (mpt_reorder_deadline(&c->reorder, 0) < c->timer_at_us)
        c->wake = 1; /* the driver's timer must wake earlier, when its gap is given up */
    return 1;
}

/* fec mode (§11): a block of replies missing some waits for repairs fec_wait. Waiting holds back
 * nothing else (no datagram waits for order in this mode), so a slow or stalled path's late
 * sources get the whole wait to complete their block. */
static uint64_t fec_wait(const struct mpt_client *c)
{
    return c->p.fec_wait_ms ? (uint64_t)c->p.fec_wait_ms * 1000 : MPT_FEC_WAIT_US;
}

/* A block the decoder holds for its missing sources (MPT_FEC_HOLD_US) is decoded by the timer
 * if they do not come: the driver's timer must wake by then. */
static void fec_held(struct mpt_client *c)
{
    if (c->fec_rx.ready_us < c->timer_at_us)
        c->wake = 1;
}

/* Replies the decoder rebuilt: each goes to its application as if its DATA datagram had come, if
 * the window says its counter never did (and records it): a repair resurrects nothing (§11). */
static void fec_deliver(struct mpt_client *c, uint64_t now, struct mpt_outq *q)
{
    struct mpt_keys *k = &c->sec->keys;
    const struct mpt_fec_out *o;

    while ((o = mpt_fec_rx_take(&c->fec_rx))) {
        const uint8_t *m = o->data;
        size_t n = o->len;
        struct mpt_client_flow *f;
        struct mpt_out *out;
        uint32_t slot;
        uint8_t *data;

        if (c->state != MPT_CLIENT_ESTABLISHED || o->sid != c->sid ||
            mpt_window_check(&k->rx_window, o->ctr) != 0)
            continue;
        mpt_window_update(&k->rx_window, o->ctr);
        c->fec_recovered++;
        if (m[0] == MPT_INNER_PIECE && !(n = mpt_split_add(&c->split, now, o->sid, m, n, &m)))
            continue;
        if (m[0] != MPT_INNER_FLOW || n < MPT_FLOW_HDR_LEN) {
            c->ctr.drops[MPT_DROP_MALFORMED]++;
            continue;
        }
        slot = mpt_index_find(&c->flow_by_id, mpt_get32(m + 4));
        if (slot == MPT_NIL) {
            c->ctr.drops[MPT_DROP_SESSION]++;
            continue;
        }
        f = &c->flows[slot];
        f->last_us = now;
        f->acked = 1;
        mpt_slots_touch(&c->flow_slots, slot);
        if (q->max - q->n < 2 || !(data = mpt_outq_alloc(q, n - MPT_FLOW_HDR_LEN))) {
            c->ctr.drops[MPT_DROP_LIMIT]++;
            continue;
        }
        memcpy(data, m + MPT_FLOW_HDR_LEN, n - MPT_FLOW_HDR_LEN);
        out = mpt_outq_push(q, MPT_OUT_APP, data, n - MPT_FLOW_HDR_LEN, slot);
        if (out) {
            out->addr = f->app;
            out->target = f->front;
            out->gen = f->id;
            c->ctr.app_tx++;
        }
    }
}

static void path_input(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf,
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
    case MPT_TYPE_RESPONSE:
        on_response(c, now, path, buf, len);
        return;
    case MPT_TYPE_COOKIE:
        on_cookie(c, now, path, buf, len, q);
        return;
    case MPT_TYPE_DATA:
        break;
    default:
        c->ctr.drops[MPT_DROP_MALFORMED]++;
        c->paths[path].rx_malformed++;
        return;
    }
    if (c->state != MPT_CLIENT_ESTABLISHED) {
        c->ctr.drops[MPT_DROP_SESSION]++;
        return;
    }
    if (mpt_data_sid(buf) == c->sid) {
        k = &c->sec->keys;
    } else if (c->prev_sid && mpt_data_sid(buf) == c->prev_sid && now < c->prev_until_us) {
        k = &c->sec->prev_keys;
    } else {
        c->ctr.drops[MPT_DROP_SESSION]++;
        return;
    }
    if (!mpt_keys_live(k, now)) {
        c->ctr.drops[MPT_DROP_EXPIRED]++;
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
        if (n == MPT_OPEN_DUPLICATE) {
            /* A copy another path delivered first still arrived on this one: it counts for the
             * path's loss figures if it is the accepted datagram's copy and the path's first
             * (§5); it cannot refresh the path's liveness, being unauthenticated. */
            struct mpt_copies *r = copies_for(c, mpt_data_sid(buf), 0);
            c->ctr.duplicates++;
            if (r && (mpt_copies_dup(r, &k->rx_window, mpt_get64(buf + MPT_DATA_OFF_CTR),
                                     buf + len - MPT_TAG_LEN, path) ||
                      (c->p.mode == MPT_CLIENT_FEC && c->fec_rx.nsrc &&
                       mpt_fec_rx_late(&c->fec_rx, mpt_data_sid(buf),
                                       mpt_get64(buf + MPT_DATA_OFF_CTR))))) {
                c->paths[path].rx_dgrams++;
                c->paths[path].rx_bytes += len;
            }
        } else {
            c->ctr.drops[-n]++;
        }
        return;
    }
    mpt_copies_accept(copies_for(c, mpt_data_sid(buf), 1), &k->rx_window,
                      mpt_get64(buf + MPT_DATA_OFF_CTR), buf + len - MPT_TAG_LEN, path);
    c->last_auth_us = now;
    c->paths[path].last_rx_us = now;
    c->paths[path].rx_dgrams++;
    c->paths[path].rx_bytes += len;
    if (c->paths[path].state == MPT_PATH_DOWN)
        path_set_state(c, path, path_eval(c, &c->paths[path], now), now);
    c->ctr.rx_dgrams++;
    c->ctr.rx_bytes += len;
    if (plain[0] == MPT_INNER_REPAIR) {
        q->used = mark;
        if (k == &c->sec->keys && c->fec_rx.nsrc) {
            mpt_fec_rx_repair(&c->fec_rx, c->sid, mpt_get64(buf + MPT_DATA_OFF_CTR), plain,
                              (size_t)n, now, fec_wait(c));
            fec_held(c);
        }
        return;
    }
    if (c->p.mode == MPT_CLIENT_FEC && k == &c->sec->keys && c->fec_rx.nsrc) {
        mpt_fec_rx_source(&c->fec_rx, c->sid, mpt_get64(buf + MPT_DATA_OFF_CTR), plain, (size_t)n,
                          now);
        fec_held(c);
    }
    if (plain[0] == MPT_INNER_PIECE) {
        /* The last piece of a FLOW message: handled as the message would be, had it come whole. */
        const uint8_t *m;
        q->used = mark;
        n = (int)mpt_split_add(&c->split, now, mpt_data_sid(buf), plain, (size_t)n, &m);
        if (!n)
            return;
        plain = mpt_outq_alloc(q, (size_t)n);
        if (!plain) {
            c->ctr.drops[MPT_DROP_LIMIT]++;
            return;
        }
        memcpy(plain, m, (size_t)n);
    }
    if (plain[0] == MPT_INNER_FLOW && n >= MPT_FLOW_HDR_LEN) {
        slot = mpt_index_find(&c->flow_by_id, mpt_get32(plain + 4));
        if (slot == MPT_NIL) {
            c->ctr.drops[MPT_DROP_SESSION]++;
            return;
        }
        f = &c->flows[slot];
        f->last_us = now;
        f->acked = 1; /* a reply: the server has the flow open */
        mpt_slots_touch(&c->flow_slots, slot);
        if (reorder_hold(c, now, path, buf, k, slot, plain + MPT_FLOW_HDR_LEN,
                         (size_t)n - MPT_FLOW_HDR_LEN)) {
            q->used = mark;
            return;
        }
        o = mpt_outq_push(q, MPT_OUT_APP, plain + MPT_FLOW_HDR_LEN, (size_t)n - MPT_FLOW_HDR_LEN,
                          slot);
        if (o) {
            o->addr = f->app;
            o->target = f->front;
            o->gen = f->id; /* the slot may hold another flow by the time this is sent */
            c->ctr.app_tx++;
        }
    } else if (plain[0] == MPT_INNER_FLOW_STATUS && n >= MPT_FLOW_STATUS_LEN) {
        q->used = mark;
        on_flow_status(c, now, plain);
    } else if (plain[0] == MPT_INNER_PROBE_ACK) {
        q->used = mark;
        on_probe_ack(c, now, path, plain, (size_t)n);
    } else if (plain[0] == MPT_INNER_PATH_CHALLENGE && n >= MPT_PATH_CHALLENGE_LEN) {
        on_challenge(c, path, plain, mark, q);
    } else {
        q->used = mark;
        c->ctr.drops[MPT_DROP_MALFORMED]++;
    }
}

void mpt_client_on_path(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf,
                        size_t len, struct mpt_outq *q)
{
    c->fec_now_us = now;
    reorder_sync(c, now, q);
    path_input(c, now, path, buf, len, q);
    fec_deliver(c, now, q);
    if (c->reorder.q && c->reorder.q[0].n)
        reorder_release(c, now, 0, q);
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
        uint8_t *out, *m;
        size_t n;

        if (c->disabled & (1u << i))
            continue;
        out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_PROBE_LEN);
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
        mpt_put16(m + MPT_PROBE_OFF_TARGET,
                  (uint16_t)(c->p.target_loss >= 0.065535 ? 65535 : c->p.target_loss * 1e6 + 0.5));
        memcpy(m + MPT_PROBE_OFF_USE, c->use, MPT_MAX_PATHS);
        /* Balance mode: the caps of the server's direction, as rates (§8.2). */
        if (c->p.mode == MPT_CLIENT_BALANCE)
            for (unsigned j = 0; j < c->p.npaths; j++)
                if (c->use[j])
                    mpt_put16(m + MPT_PROBE_OFF_CAPS + 2 * j,
                              mpt_cap_encode(c->paths[j].est.down.cap));
        /* fec mode (§11): whether the server may plan with the loss towards us, and the fixed
         * K:M its direction follows. */
        if (p->loss_n[1] >= MPT_FECPLAN_PRIOR_DGRAMS)
            m[MPT_PROBE_OFF_FLAGS] |= MPT_PROBE_F_MEASURED;
        if (c->p.fec_k && c->p.fec_m) {
            m[MPT_PROBE_OFF_FEC_K] = (uint8_t)c->p.fec_k;
            m[MPT_PROBE_OFF_FEC_M] = (uint8_t)c->p.fec_m;
        }
        /* The wait for its replies' repairs, which bounds how long the server's blocks stay open.
         */
        if (c->p.mode == MPT_CLIENT_FEC)
            mpt_put16(m + MPT_PROBE_OFF_FEC_WAIT, (uint16_t)(fec_wait(c) / 1000));
        n = mpt_data_seal(&c->sec->keys, c->sid, out, MPT_PROBE_LEN);
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

int mpt_client_set_enabled(struct mpt_client *c, unsigned path, int enabled, uint64_t now)
{
    struct mpt_client_path *p;
    uint32_t bit = 1u << path;

    if (path >= c->p.npaths)
        return -EINVAL;
    p = &c->paths[path];
    if (!enabled == !!(c->disabled & bit))
        return 0;
    if (enabled) {
        c->disabled &= ~bit;
        MPT_INFO("path %u enabled%s%s%s: back in service", path + 1,
                 c->p.path_name[path][0] ? " (" : "", c->p.path_name[path],
                 c->p.path_name[path][0] ? ")" : "");
        /* Down until it answers; the loss figures of before say nothing of it now. */
        p->state = MPT_PATH_DOWN;
        p->last_rx_us = 0;
        p->loss_known = 0;
        p->loss_n[0] = p->loss_n[1] = 0;
        p->ack_seq = 0;
        mpt_est_reset(&p->est);
        memset(p->unusable, 0, sizeof(p->unusable));
    } else {
        c->disabled |= bit;
        MPT_INFO("path %u disabled%s%s%s: out of service until enabled", path + 1,
                 c->p.path_name[path][0] ? " (" : "", c->p.path_name[path],
                 c->p.path_name[path][0] ? ")" : "");
        p->state = MPT_PATH_DISABLED;
    }
    p->state_since_us = now;
    c->sched_dirty = 1;
    /* The server learns at once, from the other paths' probes, which paths to answer on. */
    c->next_probe_us = now;
    c->wake = 1;
    return 0;
}

int mpt_client_reconfigure(struct mpt_client *c, const struct mpt_client_params *p,
                           const int from[MPT_MAX_PATHS], uint64_t now)
{
    struct mpt_client_path old[MPT_MAX_PATHS];
    uint32_t old_disabled = c->disabled;
    struct mpt_hs_keys *hsk;
    int locked, rekey;

    if ((!p->secret && !p->private_key) || p->npaths < 1 || p->npaths > MPT_MAX_PATHS ||
        p->probe_interval_ms < 1 || p->mode > MPT_CLIENT_FEC)
        return -EINVAL;
    for (unsigned i = 0; i < p->npaths; i++)
        if (from[i] >= (int)c->p.npaths)
            return -EINVAL;
    if (mode_tables(c, p->mode, p->reorder_cap_ms) != 0)
        return -ENOMEM;
    hsk = mpt_secure_alloc(sizeof(*hsk), &locked);
    if (!hsk)
        return -ENOMEM;
    if (client_keys(hsk, p) != 0) {
        mpt_secure_free(hsk, sizeof(*hsk));
        return -EINVAL;
    }
    rekey = sodium_memcmp(hsk, &c->sec->hsk, sizeof(*hsk)) != 0;
    if (rekey)
        c->sec->hsk = *hsk;
    mpt_secure_free(hsk, sizeof(*hsk));
    memcpy(old, c->paths, sizeof(old));
    memset(c->paths, 0, sizeof(c->paths));
    c->disabled = 0;
    for (unsigned i = 0; i < p->npaths; i++) {
        if (from[i] >= 0) {
            c->paths[i] = old[from[i]];
            if (old_disabled & (1u << from[i]))
                c->disabled |= 1u << i;
        } else {
            c->paths[i].state = MPT_PATH_DOWN; /* never up: state_since_us stays 0 */
        }
    }
    {
        unsigned max_flows = c->p.max_flows;
        c->p = *p;
        c->p.secret = NULL;
        c->p.private_key = NULL;
        c->p.server_public_key = NULL;
        c->p.max_flows = max_flows;
        if (!c->p.rekey_after_ms)
            c->p.rekey_after_ms = MPT_REKEY_AFTER_MS;
    }
    for (unsigned i = 0; i < MPT_MAX_PATHS; i++) {
        c->p.path_name[i][MPT_PATH_NAME_MAX - 1] = '\0';
        if (c->p.weight[i] == 0)
            c->p.weight[i] = 1;
    }
    if (!(c->p.target_loss > 0 && c->p.target_loss < 1))
        c->p.target_loss = 0.001;
    memset(c->wrr, 0, sizeof(c->wrr));
    c->sched_dirty = 1;
    c->next_probe_us = now;
    c->wake = 1;
    if (rekey && c->state != MPT_CLIENT_IDLE) {
        MPT_INFO("%s: opening a new session under %s",
                 c->sec->hsk.keymode ? "new keys" : "new secret",
                 c->sec->hsk.keymode ? "them" : "it");
        start_handshake(c, now);
    }
    return 0;
}

void mpt_client_set_remote(struct mpt_client *c, unsigned path, const struct mpt_addr *remote)
{
    if (path < MPT_MAX_PATHS)
        c->paths[path].remote = *remote;
}

/* When the present silence began: the last authenticated datagram, or the first handshake. */
static uint64_t quiet_start(const struct mpt_client *c)
{
    return c->last_auth_us > c->first_try_us ? c->last_auth_us : c->first_try_us;
}

uint64_t mpt_client_silence_us(const struct mpt_client *c, uint64_t now)
{
    uint64_t since = quiet_start(c);

    if (!c->hs_sid || !since || now <= since)
        return 0;
    return now - since;
}

/* One warning when no path has answered for a while: what was tried, what came back, and what
 * usually causes it. Datagrams that came back but were refused point at the likely cause. */
static void report_silence(struct mpt_client *c, uint64_t now)
{
    char tried[MPT_MAX_PATHS * (LABEL_MAX + MPT_ADDR_STRLEN + 8)], got[320], l[LABEL_MAX];
    char a[MPT_ADDR_STRLEN], ago[64];
    uint64_t malformed = 0, unauth = 0;
    size_t n = 0, m = 0;

    tried[0] = got[0] = '\0';
    for (unsigned i = 0; i < c->p.npaths; i++) {
        const struct mpt_client_path *p = &c->paths[i];
        uint64_t dm = p->rx_malformed - p->hs_malformed, du = p->rx_unauth - p->hs_unauth;
        path_label(c, i, l, sizeof(l));
        if (p->remote.u.sa.sa_family)
            mpt_addr_str(&p->remote, a, sizeof(a));
        else
            snprintf(a, sizeof(a), "?");
        /* The address only where the name does not already say it. */
        if (n < sizeof(tried))
            n += (size_t)snprintf(tried + n, sizeof(tried) - n, "%s%s%s%s", i ? ", " : "", l,
                                  strcmp(c->p.path_name[i], a) ? " -> " : "",
                                  strcmp(c->p.path_name[i], a) ? a : "");
        if (du && m < sizeof(got))
            m += (size_t)snprintf(got + m, sizeof(got) - m,
                                  "; %s got %llu repl%s that failed authentication", l,
                                  (unsigned long long)du, du == 1 ? "y" : "ies");
        if (dm && m < sizeof(got))
            m += (size_t)snprintf(got + m, sizeof(got) - m,
                                  "; %s got %llu datagram%s that are not mptunnel's", l,
                                  (unsigned long long)dm, dm == 1 ? "" : "s");
        malformed += dm;
        unauth += du;
    }
    if (c->state == MPT_CLIENT_ESTABLISHED)
        snprintf(ago, sizeof(ago), "; session %016llx silent", (unsigned long long)c->sid);
    else
        ago[0] = '\0';
    MPT_WARN("no answer from the server for %.0f s%s: %u handshake%s sent on %u path%s (%s)%s. "
             "Likely causes: %s",
             (double)(now - quiet_start(c)) / 1e6, ago, c->hs_attempts,
             c->hs_attempts == 1 ? "" : "s", c->p.npaths, c->p.npaths == 1 ? "" : "s", tried,
             got[0] ? got : "; nothing came back",
             unauth ? (c->sec->hsk.keymode ? "the server has other keys than server_public_key "
                                             "says, or lists another public key for this client"
                                           : "the server has a different secret")
             : malformed ? "something other than an mptunnel server or bridge answers at that "
                           "address (wrong port?)"
             : c->sec->hsk.keymode
                 ? "the server is not running, a wrong address or port in `bridge =', "
                   "server_public_key not the server's, this client's public key in no [peer] of "
                   "the server (it then logs the failures), a server in shared-secret mode, one "
                   "older than protocol 2, or a firewall dropping UDP"
                 : "the server is not running, a wrong address or port in `bridge =', a "
                   "different secret (the server then logs the failures), a server in key mode "
                   "or older than protocol 2, its clock more than 2 min from ours, or a firewall "
                   "dropping UDP");
}

/* Reports a silence within MPT_CLIENT_QUIET_FIRST_US, then ever more calmly; says when it ends.
 * Returns the next time it wants to run. */
static uint64_t watch_silence(struct mpt_client *c, uint64_t now)
{
    uint64_t since = quiet_start(c);

    if (c->quiet_reports && since != c->quiet_since_us) {
        MPT_INFO("the server answers again, after %.1f s without an answer",
                 (double)(since - c->quiet_since_us) / 1e6);
        c->quiet_reports = 0;
    }
    if (!c->hs_sid || !since)
        return UINT64_MAX;
    if (since != c->quiet_since_us) {
        c->quiet_since_us = since;
        c->quiet_reports = 0;
        c->quiet_step_us = MPT_CLIENT_QUIET_FIRST_US;
        c->quiet_next_us = since + MPT_CLIENT_QUIET_FIRST_US;
    }
    if (now >= c->quiet_next_us) {
        report_silence(c, now);
        c->quiet_reports++;
        c->quiet_step_us *= 2;
        if (c->quiet_step_us > MPT_CLIENT_QUIET_MAX_US)
            c->quiet_step_us = MPT_CLIENT_QUIET_MAX_US;
        c->quiet_next_us = now + c->quiet_step_us;
    }
    return c->quiet_next_us;
}

/* Counters of the last period, at debug level. */
static void log_stats(struct mpt_client *c, uint64_t now)
{
    const struct mpt_counters *k = &c->ctr, *o = &c->stats_ctr;
    char paths[MPT_MAX_PATHS * (LABEL_MAX + 96)], l[LABEL_MAX];
    size_t n = 0;

    if (!c->stats_next_us) {
        c->stats_next_us = now + MPT_CLIENT_STATS_US;
        return;
    }
    if (now < c->stats_next_us)
        return;
    c->stats_next_us = now + MPT_CLIENT_STATS_US;
    if (MPT_LOG_ON(MPT_LOGL_DEBUG)) {
        paths[0] = '\0';
        for (unsigned i = 0; i < c->p.npaths && n < sizeof(paths); i++) {
            const struct mpt_client_path *p = &c->paths[i];
            n += (size_t)snprintf(paths + n, sizeof(paths) - n,
                                  "; %s %s rtt %.1f ms loss %.1f%%/%.1f%% tx %llu rx %llu",
                                  path_label(c, i, l, sizeof(l)), mpt_path_state_name(p->state),
                                  (double)p->srtt_us / 1000, 100 * p->loss_up, 100 * p->loss_down,
                                  (unsigned long long)p->tx_bytes, (unsigned long long)p->rx_bytes);
        }
        MPT_DEBUG("last %llu s: %llu datagrams from applications, %llu back; %llu sent on paths, "
                  "%llu received, %llu duplicates dropped, %llu rejected; flows %u in use, %llu "
                  "opened, %llu closed; sessions %u%s",
                  MPT_CLIENT_STATS_US / 1000000, (unsigned long long)(k->app_rx - o->app_rx),
                  (unsigned long long)(k->app_tx - o->app_tx),
                  (unsigned long long)(k->tx_dgrams - o->tx_dgrams),
                  (unsigned long long)(k->rx_dgrams - o->rx_dgrams),
                  (unsigned long long)(k->duplicates - o->duplicates),
                  (unsigned long long)(mpt_counters_rejected(k) - mpt_counters_rejected(o)),
                  c->flow_slots.used, (unsigned long long)(c->flows_opened - c->stats_flows_opened),
                  (unsigned long long)(c->flows_closed - c->stats_flows_closed),
                  c->sessions_established, paths);
    }
    c->stats_ctr = c->ctr;
    c->stats_flows_opened = c->flows_opened;
    c->stats_flows_closed = c->flows_closed;
}

/* One path down while others answer: a warning after MPT_CLIENT_PATH_QUIET_US, then at doubling
 * intervals (when every path is silent, watch_silence speaks instead). Returns the next time. */
static uint64_t watch_paths(struct mpt_client *c, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    int any_up = 0;

    for (unsigned i = 0; i < c->p.npaths; i++)
        any_up |= c->paths[i].state != MPT_PATH_DOWN;
    for (unsigned i = 0; i < c->p.npaths; i++) {
        struct mpt_client_path *p = &c->paths[i];
        uint64_t ref = p->last_rx_us > c->established_us ? p->last_rx_us : c->established_us;

        if (p->state != MPT_PATH_DOWN || !any_up || c->state != MPT_CLIENT_ESTABLISHED) {
            p->quiet_ref_us = 0;
            continue;
        }
        if (ref != p->quiet_ref_us) {
            p->quiet_ref_us = ref;
            p->quiet_step_us = MPT_CLIENT_PATH_QUIET_US;
            p->quiet_next_us = ref + MPT_CLIENT_PATH_QUIET_US;
            p->quiet_probes = p->probes_sent;
        }
        if (now >= p->quiet_next_us) {
            char l[LABEL_MAX], a[MPT_ADDR_STRLEN], since[48];
            if (p->remote.u.sa.sa_family)
                mpt_addr_str(&p->remote, a, sizeof(a));
            else
                snprintf(a, sizeof(a), "?");
            if (p->last_rx_us)
                snprintf(since, sizeof(since), "last heard %.0f s ago",
                         (double)(now - p->last_rx_us) / 1e6);
            else
                snprintf(since, sizeof(since), "never heard");
            MPT_WARN("%s%s%s: no answer for %.0f s while other paths answer (%u probes sent, %s). "
                     "Likely causes: its bridge is not running, a wrong address or port in its "
                     "`bridge =', or a firewall on that path",
                     path_label(c, i, l, sizeof(l)), strcmp(c->p.path_name[i], a) ? " -> " : "",
                     strcmp(c->p.path_name[i], a) ? a : "", (double)(now - ref) / 1e6,
                     p->probes_sent - p->quiet_probes, since);
            p->quiet_step_us *= 2;
            if (p->quiet_step_us > MPT_CLIENT_QUIET_MAX_US)
                p->quiet_step_us = MPT_CLIENT_QUIET_MAX_US;
            p->quiet_next_us = now + p->quiet_step_us;
        }
        if (p->quiet_next_us < next)
            next = p->quiet_next_us;
    }
    return next;
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
    int more_held = 0;

    if (c->state == MPT_CLIENT_IDLE)
        start_handshake(c, now);
    if (c->state == MPT_CLIENT_ESTABLISHED && !mpt_keys_live(&c->sec->keys, now)) {
        /* No re-key went through in time: the keys are done. Applications' datagrams wait for
         * the next session as before the first. */
        MPT_WARN("session %016llx: its keys are %llu s old, past their lifetime, and no re-key "
                 "succeeded: wiped; waiting for a new session",
                 (unsigned long long)c->sid,
                 (unsigned long long)((now - c->established_us) / 1000000));
        mpt_keys_wipe(&c->sec->keys);
        mpt_keys_wipe(&c->sec->prev_keys);
        c->prev_sid = 0;
        c->state = MPT_CLIENT_HANDSHAKE;
        if (c->hs_sid == 0)
            start_handshake(c, now);
    }
    c->fec_now_us = now;
    if (c->state == MPT_CLIENT_ESTABLISHED) {
        if (c->nheld)
            more_held = release_held(c, now, q);
        update_path_states(c, now);
        if (c->fec_tx.n && c->fec_close_us <= now) {
            /* At low rates a block may be given longer to gather sources (§11). */
            uint64_t later = mpt_fecplan_next(&c->fec_plan, c->fec_tx.n, c->fec_tx.opened_us, now);
            if (later) {
                c->fec_close_us = later;
                c->fec_longer++;
            } else
                fec_flush(c, q);
        }
        {
            uint64_t sid;
            while (mpt_fec_rx_due(&c->fec_rx, now, &sid))
                fec_deliver(c, now, q);
        }
        mpt_fec_rx_expire(&c->fec_rx, now);
        if (c->fec_tx.n && c->fec_close_us < next)
            next = c->fec_close_us;
        if (c->fec_rx.ready_us < next)
            next = c->fec_rx.ready_us;
        if (c->hs_sid == 0 && now - c->last_auth_us >= dead_after_us(c)) {
            MPT_WARN("session %016llx silent for %llu ms on every path: re-establishing",
                     (unsigned long long)c->sid,
                     (unsigned long long)((now - c->last_auth_us) / 1000));
            start_handshake(c, now);
        }
        /* New keys every rekey_after_ms (or 2^60 datagrams), the old ones still in use until the
         * RESPONSE: no gap in traffic. */
        if (c->hs_sid == 0 && (now - c->established_us >= (uint64_t)c->p.rekey_after_ms * 1000 ||
                               c->sec->keys.tx_counter >= MPT_REKEY_AFTER_MESSAGES))
            start_handshake(c, now);
        if (c->hs_sid == 0 && c->established_us + (uint64_t)c->p.rekey_after_ms * 1000 < next)
            next = c->established_us + (uint64_t)c->p.rekey_after_ms * 1000;
        if (c->sec->keys.expires_us < next)
            next = c->sec->keys.expires_us;
        if (c->prev_sid && now >= c->prev_until_us) {
            mpt_keys_wipe(&c->sec->prev_keys);
            c->prev_sid = 0;
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
            if (path_live(p) && p->last_rx_us + down_after_us(c) < next)
                next = p->last_rx_us + down_after_us(c);
        }
    }
    c->wake = 0;
    if (c->hs_sid) {
        if (now >= c->hs_next_us)
            send_init(c, now, q);
        if (c->hs_next_us < next)
            next = c->hs_next_us;
    }
    {
        uint64_t w = watch_silence(c, now), wp = watch_paths(c, now);
        if (w < next)
            next = w;
        if (wp < next)
            next = wp;
    }
    log_stats(c, now);
    if (c->state == MPT_CLIENT_ESTABLISHED) {
        reorder_sync(c, now, q);
        if (c->reorder.q && c->reorder.q[0].n) {
            reorder_release(c, now, 0, q);
            if (mpt_reorder_deadline(&c->reorder, 0) < next)
                next = mpt_reorder_deadline(&c->reorder, 0);
        }
    }
    expire_flows(c, now);
    if (c->state != MPT_CLIENT_ESTABLISHED) {
        c->nclose = 0;
    } else if (c->nclose) {
        if (c->close_new || now >= c->close_next_us)
            send_closes(c, now, q);
        if (c->nclose && c->close_next_us < next)
            next = c->close_next_us;
    }
    oldest = mpt_slots_oldest(&c->flow_slots);
    if (oldest != MPT_NIL) {
        uint64_t exp = c->flows[oldest].last_us + (uint64_t)c->p.flow_timeout_ms * 1000;
        if (exp < next)
            next = exp;
    }
    /* Called again as soon as the driver has sent this call's queue. */
    if (more_held || c->wake)
        next = now;
    c->wake = 0;
    c->timer_at_us = next > now ? next : now + 1;
    return c->timer_at_us;
}
