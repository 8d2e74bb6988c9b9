#include "core/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "core/log.h"
#include "core/sched.h"

#define PREV_KEEP_US 10000000ULL   /* a re-keyed session's old id is honoured this long */
#define HALF_OPEN_US 10000000ULL   /* an unconfirmed session lives this long */
#define SESSION_DEAD_US 3000000ULL /* a session this silent may give way to a new one */
#define PATH_ACTIVE_US 3000000ULL  /* paths heard this recently carry replies */
#define PATH_FORGET_US 60000000ULL /* paths silent this long are forgotten */
#define HS_PER_SOURCE_RATE 20
#define HS_PER_SOURCE_BURST 40
#define HS_GLOBAL_RATE 2000
#define HS_GLOBAL_BURST 4000
#define CHALLENGE_RETRY_US 200000ULL /* a challenge not echoed is sent again after this */
#define ALLOC_RETRY_US 1000000ULL    /* a table allocated on first use that could not be: again */

static size_t sessions_bytes(unsigned n)
{
    return (size_t)n * sizeof(struct mpt_server_session);
}

#define LOAD_RATE 500 /* INITs a second given Noise work without a cookie, server-wide */
#define LOAD_BURST 1000
#define COOKIE_PER_SOURCE_RATE 5 /* COOKIE answers a second to one source */
#define COOKIE_PER_SOURCE_BURST 10

static size_t peers_bytes(unsigned n)
{
    return (size_t)n * sizeof(struct mpt_server_peer_state);
}

/* 0 if every peer with rules of its own has them within the n rules of the peers, else -EINVAL. */
static int peers_check(const struct mpt_server_peer *peers, unsigned npeers, unsigned n)
{
    for (unsigned i = 0; i < npeers; i++)
        if (peers[i].own &&
            (peers[i].allow_first > n || peers[i].nallow > n - peers[i].allow_first))
            return -EINVAL;
    return 0;
}

/* A peer as the server keeps it: its name terminated, no rules unless its own. */
static void peer_take(struct mpt_server_peer_state *ps, const struct mpt_server_peer *p)
{
    ps->peer = *p;
    ps->peer.name[MPT_PEER_NAME_MAX - 1] = 0;
    if (!ps->peer.own) {
        ps->peer.allow_first = ps->peer.nallow = 0;
        memset(&ps->peer.target, 0, sizeof(ps->peer.target));
    }
    mpt_hs_mac1_resp_key(ps->mac1_resp, p->public_key);
}

/* The server's keys from its parameters: shared-secret mode, or key mode with its peers. */
static int server_keys(struct mpt_server *s, const struct mpt_server_params *p)
{
    if (!p->private_key)
        return mpt_hs_keys_secret(&s->sec->keys, p->secret);
    if (mpt_hs_keys_pair(&s->sec->keys, p->private_key, NULL, NULL) != 0)
        return -EINVAL;
    for (unsigned i = 0; i < p->npeers; i++)
        peer_take(&s->peers[i], &p->peers[i]);
    return 0;
}

static void fec_encoder_free(struct mpt_server *s, uint32_t slot);

/* The decoder gave up n datagrams of session sid (§11). */
static void fec_given_up(void *arg, uint64_t sid, unsigned n)
{
    struct mpt_server *s = arg;
    uint32_t slot = mpt_index_find(&s->session_by_sid, sid);

    if (slot != MPT_NIL)
        s->sessions[slot].fec_given_up += n;
}

/* fec mode's decoder, allocated for the first session in fec mode (§11): 1 if it is there. A
 * server that cannot have it takes coded datagrams as they come (repairs dropped, counted). */
static int fec_rx_ready(struct mpt_server *s, uint64_t now)
{
    if (s->fec_rx.nsrc)
        return 1;
    if (now < s->fec_rx_retry_us ||
        mpt_fec_rx_init(&s->fec_rx, MPT_SERVER_FEC_SOURCES, MPT_SERVER_FEC_BLOCKS) != 0) {
        s->fec_rx_retry_us = now < s->fec_rx_retry_us ? s->fec_rx_retry_us : now + ALLOC_RETRY_US;
        s->fec_no_decoder++;
        return 0;
    }
    s->fec_rx.on_give_up = fec_given_up;
    s->fec_rx.arg = s;
    s->fec_rx.hold_us = MPT_FEC_HOLD_US;
    return 1;
}

int mpt_server_init(struct mpt_server *s, const struct mpt_server_params *p)
{
    int locked, table_locked = 0, peers_locked = 1;

    memset(s, 0, sizeof(*s));
    if ((!p->secret && !p->private_key) || (p->private_key && (!p->npeers || !p->peers)) ||
        p->npeers > MPT_SERVER_MAX_PEERS || p->max_sessions < 1 || p->max_flows < 1 ||
        p->ntargets > 65535 || (p->nallow && !p->allow) ||
        (p->private_key &&
         ((p->npeer_allow && !p->peer_allow) || p->npeer_allow > MPT_SERVER_MAX_ALLOW ||
          peers_check(p->peers, p->npeers, p->npeer_allow) != 0)))
        return -EINVAL;
    s->p = *p;
    s->clock_id = mpt_random64() | 1;
    s->p.secret = NULL;
    s->p.private_key = NULL;
    s->p.peers = NULL;
    s->p.allow = NULL;
    s->p.nallow = 0;
    s->p.peer_allow = NULL;
    s->p.npeer_allow = 0;
    if (!p->private_key)
        s->p.npeers = 0;
    if (!s->p.max_lookups)
        s->p.max_lookups = 16;
    if (s->p.max_lookups > MPT_NAMES_SIZE)
        s->p.max_lookups = MPT_NAMES_SIZE; /* each lookup holds an entry of the cache */
    if (!s->p.rekey_after_ms)
        s->p.rekey_after_ms = MPT_REKEY_AFTER_MS;
    s->sec = mpt_secure_alloc(sizeof(*s->sec), &locked);
    if (!s->sec)
        return -ENOMEM;
    if (s->p.npeers) {
        s->peers = mpt_secure_alloc(peers_bytes(s->p.npeers), &peers_locked);
        s->peer_allow = calloc(MPT_SERVER_MAX_ALLOW, sizeof(*s->peer_allow));
        if (!s->peers || !s->peer_allow) {
            mpt_server_free(s);
            return -ENOMEM;
        }
        if (p->npeer_allow)
            memcpy(s->peer_allow, p->peer_allow, p->npeer_allow * sizeof(*s->peer_allow));
        s->npeer_allow = p->npeer_allow;
    } else {
        s->recent = calloc(1, sizeof(*s->recent));
        if (!s->recent) {
            mpt_server_free(s);
            return -ENOMEM;
        }
    }
    if (server_keys(s, p) != 0) {
        mpt_server_free(s);
        return -EINVAL;
    }
    /* The sessions hold their keys: the whole table lives in key memory (zeroed). */
    if (sessions_bytes(p->max_sessions) / sizeof(*s->sessions) == p->max_sessions)
        s->sessions = mpt_secure_alloc(sessions_bytes(p->max_sessions), &table_locked);
    if (s->sessions && (!locked || !table_locked || !peers_locked))
        MPT_WARN("session keys not locked in memory (%s): they may be swapped out; they are still "
                 "left out of core dumps",
                 sessions_bytes(p->max_sessions) > MPT_SECURE_LOCK_MAX
                     ? "max_sessions makes the table larger than 16 MiB"
                     : "RLIMIT_MEMLOCK: raise LimitMEMLOCK=");
    s->flows = calloc(p->max_flows, sizeof(*s->flows));
    s->copies = calloc(2 * (size_t)p->max_sessions, sizeof(*s->copies));
    s->closed = calloc(p->max_flows, sizeof(*s->closed));
    s->allow = calloc(MPT_SERVER_MAX_ALLOW, sizeof(*s->allow));
    s->held_buf = malloc((size_t)MPT_SERVER_HELD * MPT_SERVER_HELD_MAX);
    for (unsigned i = 0; i < MPT_SERVER_HELD; i++) {
        s->held[i].flow = MPT_NIL;
        s->held[i].data = s->held_buf ? s->held_buf + (size_t)i * MPT_SERVER_HELD_MAX : NULL;
    }
    if (!s->sessions || !s->flows || !s->copies || !s->closed || !s->allow || !s->held_buf ||
        mpt_slots_init(&s->session_slots, p->max_sessions) != 0 ||
        mpt_index_init(&s->session_by_sid, p->max_sessions, mpt_random64()) != 0 ||
        mpt_index_init(&s->session_by_prev, p->max_sessions, mpt_random64()) != 0 ||
        mpt_slots_init(&s->flow_slots, p->max_flows) != 0 ||
        mpt_index_init(&s->flow_by_key, p->max_flows, mpt_random64()) != 0 ||
        mpt_split_init(&s->split) != 0 ||
        mpt_names_init(&s->names, (uint64_t)p->name_ttl_ms * 1000) != 0 ||
        !(s->fec_tx = calloc(p->max_sessions, sizeof(*s->fec_tx)))) {
        mpt_server_free(s);
        return -ENOMEM;
    }
    /* The reorder buffer (6 MiB) and fec mode's decoder (4.5 MiB) are allocated when a session
     * first needs them (reorder_ready, fec_rx_ready). */
    for (unsigned i = 0; i < p->max_flows; i++)
        s->flows[i].session = MPT_NIL;
    mpt_server_set_allow(s, p->allow, p->nallow);
    s->aes = !p->no_aes && mpt_cipher_aes_available();
    mpt_ratelimit_init(&s->ratelimit, HS_PER_SOURCE_RATE, HS_PER_SOURCE_BURST, HS_GLOBAL_RATE,
                       HS_GLOBAL_BURST);
    mpt_ratelimit_init(&s->load, COOKIE_PER_SOURCE_RATE, COOKIE_PER_SOURCE_BURST, LOAD_RATE,
                       LOAD_BURST);
    s->authlog_tokens = MPT_SERVER_AUTHLOG_BURST;
    s->rx_slot = MPT_NIL;
    s->timer_at_us = UINT64_MAX;
    return 0;
}

int mpt_server_set_secret(struct mpt_server *s, const uint8_t secret[MPT_KEY_LEN])
{
    struct mpt_hs_keys *k;
    int locked, changed;

    if (s->sec->keys.keymode || !secret)
        return -EINVAL;
    k = mpt_secure_alloc(sizeof(*k), &locked);
    if (!k)
        return -EINVAL;
    if (mpt_hs_keys_secret(k, secret) != 0) {
        mpt_secure_free(k, sizeof(*k));
        return -EINVAL;
    }
    changed = sodium_memcmp(k, &s->sec->keys, sizeof(*k)) != 0;
    s->sec->keys = *k;
    mpt_secure_free(k, sizeof(*k));
    return changed;
}

static void session_release(struct mpt_server *s, uint32_t slot, struct mpt_outq *q);

int mpt_server_set_peers(struct mpt_server *s, const uint8_t private_key[MPT_KEY_LEN],
                         const struct mpt_server_peer *peers, unsigned npeers,
                         const struct mpt_allow_rule *peer_allow, unsigned npeer_allow,
                         struct mpt_outq *q)
{
    struct mpt_server_peer_state *np;
    struct mpt_hs_keys *k;
    uint32_t *map;
    int locked, closed = 0;

    if (!s->sec->keys.keymode || !npeers || npeers > MPT_SERVER_MAX_PEERS || !peers ||
        npeer_allow > MPT_SERVER_MAX_ALLOW || (npeer_allow && !peer_allow) ||
        peers_check(peers, npeers, npeer_allow) != 0)
        return -EINVAL;
    np = mpt_secure_alloc(peers_bytes(npeers), &locked);
    k = mpt_secure_alloc(sizeof(*k), &locked);
    map = calloc(s->p.npeers, sizeof(*map));
    if (!np || !k || !map) {
        mpt_secure_free(np, peers_bytes(npeers));
        mpt_secure_free(k, sizeof(*k));
        free(map);
        return -ENOMEM;
    }
    if (mpt_hs_keys_pair(k, private_key, NULL, NULL) != 0) {
        mpt_secure_free(np, peers_bytes(npeers));
        mpt_secure_free(k, sizeof(*k));
        free(map);
        return -EINVAL;
    }
    for (unsigned i = 0; i < npeers; i++)
        peer_take(&np[i], &peers[i]);
    /* Where each old peer went (by public key), with what the server knew of it. */
    for (unsigned i = 0; i < s->p.npeers; i++) {
        map[i] = MPT_NIL;
        for (unsigned j = 0; j < npeers; j++)
            if (sodium_memcmp(s->peers[i].peer.public_key, np[j].peer.public_key, MPT_KEY_LEN) ==
                0) {
                map[i] = j;
                np[j].greatest_tai_us = s->peers[i].greatest_tai_us;
                np[j].handshakes = s->peers[i].handshakes;
                memcpy(np[j].refused, s->peers[i].refused, sizeof(np[j].refused));
                break;
            }
    }
    for (uint32_t i = 0; i < s->p.max_sessions; i++) {
        struct mpt_server_session *ss = &s->sessions[i];
        if (!ss->sid || ss->peer >= s->p.npeers)
            continue;
        if (map[ss->peer] == MPT_NIL) {
            MPT_INFO("session %016llx of peer %s closed: the peer is no longer listed",
                     (unsigned long long)ss->sid, s->peers[ss->peer].peer.name);
            session_release(s, i, q);
            closed++;
        } else {
            ss->peer = map[ss->peer];
        }
    }
    free(map);
    s->sec->keys = *k;
    mpt_secure_free(k, sizeof(*k));
    mpt_secure_free(s->peers, peers_bytes(s->p.npeers));
    s->peers = np;
    s->p.npeers = npeers;
    if (npeer_allow)
        memcpy(s->peer_allow, peer_allow, npeer_allow * sizeof(*s->peer_allow));
    s->npeer_allow = npeer_allow;
    return closed;
}

void mpt_server_set_wall(struct mpt_server *s, uint64_t now, uint64_t unix_us)
{
    s->wall_off_us = (int64_t)(unix_us - now);
    if (!s->start_wall_us)
        s->start_wall_us = unix_us ? unix_us : 1;
}

static uint64_t wall_us(const struct mpt_server *s, uint64_t now)
{
    return now + (uint64_t)s->wall_off_us;
}

void mpt_server_free(struct mpt_server *s)
{
    if (!s)
        return;
    if (s->sessions) {
        /* A table too large to be locked is not wiped whole by mpt_secure_free. */
        for (unsigned i = 0; i < s->p.max_sessions; i++)
            if (s->sessions[i].sid) {
                mpt_keys_wipe(&s->sessions[i].keys);
                mpt_keys_wipe(&s->sessions[i].prev_keys);
                mpt_wipe(s->sessions[i].resume, sizeof(s->sessions[i].resume));
                mpt_wipe(s->sessions[i].prev_resume, sizeof(s->sessions[i].prev_resume));
            }
        mpt_secure_free(s->sessions, sessions_bytes(s->p.max_sessions));
    }
    free(s->flows);
    free(s->copies);
    free(s->closed);
    free(s->held_buf);
    mpt_split_free(&s->split);
    mpt_names_free(&s->names);
    mpt_reorder_free(&s->reorder);
    mpt_fec_rx_free(&s->fec_rx);
    if (s->fec_tx)
        for (unsigned i = 0; i < s->p.max_sessions; i++)
            fec_encoder_free(s, i);
    free(s->fec_tx);
    free(s->allow);
    free(s->peer_allow);
    free(s->recent);
    mpt_slots_free(&s->session_slots);
    mpt_index_free(&s->session_by_sid);
    mpt_index_free(&s->session_by_prev);
    mpt_slots_free(&s->flow_slots);
    mpt_index_free(&s->flow_by_key);
    mpt_secure_free(s->peers, peers_bytes(s->p.npeers));
    mpt_secure_free(s->sec, sizeof(*s->sec));
    memset(s, 0, sizeof(*s));
}

/* Same address, whatever the port. */
static int same_host(const struct mpt_addr *a, const struct mpt_addr *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return 0;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr;
    return a->u.sa.sa_family == AF_INET6 &&
           memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* One line about a source's failures, if the global budget allows: returns 1 if logged. */
static int authlog_line(struct mpt_server *s, uint64_t now, struct mpt_server_authfail *e,
                        const char *what)
{
    char a[MPT_ADDR_STRLEN];
    uint64_t refill = (now - s->authlog_stamp_us) / 1000000;

    if (refill) {
        s->authlog_tokens = s->authlog_tokens + refill > MPT_SERVER_AUTHLOG_BURST
                                ? MPT_SERVER_AUTHLOG_BURST
                                : s->authlog_tokens + (unsigned)refill;
        s->authlog_stamp_us = now;
    }
    if (!s->authlog_tokens)
        return 0;
    s->authlog_tokens--;
    mpt_addr_str(&e->src, a, sizeof(a));
    if (!e->logged_us)
        MPT_WARN("%s from %s failed authentication: a client with a different secret, or not an "
                 "mptunnel client (more from this address are summed up every %llu s)",
                 what, a, MPT_SERVER_AUTHLOG_US / 1000000);
    else
        MPT_WARN("%llu more datagram%s from %s (last port) failed authentication in %.0f s, "
                 "%llu in all: a client with a different secret?",
                 (unsigned long long)e->pending, e->pending == 1 ? "" : "s", a,
                 (double)(now - e->logged_us) / 1e6, (unsigned long long)e->total);
    e->pending = 0;
    e->logged_us = now;
    return 1;
}

/* A datagram from `from` failed authentication: counted by source, logged within limits. */
static void auth_failed(struct mpt_server *s, uint64_t now, const struct mpt_addr *from,
                        const char *what)
{
    struct mpt_server_authfail *e = NULL, *oldest = &s->authfail[0];

    s->ctr.drops[MPT_DROP_AUTH]++;
    for (unsigned i = 0; i < MPT_SERVER_AUTHLOG_SLOTS; i++) {
        struct mpt_server_authfail *x = &s->authfail[i];
        if (x->last_us && same_host(&x->src, from)) {
            e = x;
            break;
        }
        if (x->last_us < oldest->last_us)
            oldest = x;
    }
    if (!e) {
        e = oldest;
        memset(e, 0, sizeof(*e));
    }
    e->src = *from;
    e->pending++;
    e->total++;
    e->last_us = now ? now : 1;
    if (!e->logged_us || now - e->logged_us >= MPT_SERVER_AUTHLOG_US)
        authlog_line(s, now, e, what);
}

/* Sums up what is still pending once its period is over. */
static void authlog_flush(struct mpt_server *s, uint64_t now)
{
    for (unsigned i = 0; i < MPT_SERVER_AUTHLOG_SLOTS; i++) {
        struct mpt_server_authfail *e = &s->authfail[i];
        if (e->pending && e->logged_us && now - e->logged_us >= MPT_SERVER_AUTHLOG_US)
            authlog_line(s, now, e, "datagrams");
    }
}

static uint64_t flow_key(uint32_t session, uint32_t id)
{
    return (uint64_t)session << 32 | id;
}

/* The datagram flow `slot` holds while its name resolves, or NULL. */
static struct mpt_server_held *held_of(struct mpt_server *s, uint32_t slot)
{
    for (unsigned i = 0; s->nheld && i < MPT_SERVER_HELD; i++)
        if (s->held[i].flow == slot)
            return &s->held[i];
    return NULL;
}

static void held_release(struct mpt_server *s, struct mpt_server_held *h)
{
    h->flow = MPT_NIL;
    s->nheld--;
}

static void flow_close(struct mpt_server *s, uint32_t slot, struct mpt_outq *q)
{
    struct mpt_server_flow *f = &s->flows[slot];
    struct mpt_server_held *h = held_of(s, slot);

    /* Each flow closes once before it can open again, and the driver empties the list after every
     * call: it cannot overflow. */
    if (s->nclosed < s->p.max_flows)
        s->closed[s->nclosed++] = slot;
    mpt_index_remove(&s->flow_by_key, slot);
    mpt_slots_release(&s->flow_slots, slot);
    s->sessions[f->session].nflows--;
    s->flows_closed++;
    f->pending = 0; /* a lookup it waited for goes on: its answer is kept for others */
    if (h)
        held_release(s, h); /* never to be delivered */
    MPT_DEBUG("flow %u of session %016llx closed (%u flows in use)", f->id,
              (unsigned long long)s->sessions[f->session].sid, s->flow_slots.used);
    f->session = MPT_NIL;
}

/* Closes every flow of a session (walking the flows in use, newest first). */
static void session_flows_close(struct mpt_server *s, uint32_t session, struct mpt_outq *q)
{
    uint32_t f = s->flow_slots.head;

    while (f != MPT_NIL && s->sessions[session].nflows > 0) {
        uint32_t next = s->flow_slots.next[f];
        if (s->flows[f].session == session)
            flow_close(s, f, q);
        f = next;
    }
}

/* Forgets the id a session had before its last re-key. */
static void prev_forget(struct mpt_server *s, uint32_t slot)
{
    struct mpt_server_session *ss = &s->sessions[slot];

    if (!ss->prev_sid)
        return;
    mpt_index_remove(&s->session_by_prev, slot);
    mpt_keys_wipe(&ss->prev_keys);
    mpt_wipe(ss->prev_resume, sizeof(ss->prev_resume));
    ss->prev_sid = 0;
}

static void session_release(struct mpt_server *s, uint32_t slot, struct mpt_outq *q)
{
    struct mpt_server_session *ss = &s->sessions[slot];

    session_flows_close(s, slot, q);
    mpt_reorder_reset(&s->reorder, slot, 0);
    fec_encoder_free(s, slot);
    prev_forget(s, slot);
    mpt_index_remove(&s->session_by_sid, slot);
    mpt_slots_release(&s->session_slots, slot);
    mpt_keys_wipe(&ss->keys);
    mpt_wipe(ss, sizeof(*ss));
}

static uint32_t session_find(const struct mpt_server *s, uint64_t sid)
{
    return mpt_index_find(&s->session_by_sid, sid);
}

/* A slot for a new session: a free one, else the oldest unconfirmed one, else one whose client
 * has been silent long enough to be presumed gone. */
static uint32_t session_make_room(struct mpt_server *s, uint64_t now, struct mpt_outq *q)
{
    uint32_t slot = mpt_slots_alloc(&s->session_slots), victim = MPT_NIL;

    if (slot != MPT_NIL)
        return slot;
    for (uint32_t i = mpt_slots_oldest(&s->session_slots); i != MPT_NIL;
         i = s->session_slots.prev[i]) {
        if (!s->sessions[i].confirmed) {
            victim = i;
            break;
        }
    }
    if (victim == MPT_NIL) {
        uint32_t old = mpt_slots_oldest(&s->session_slots);
        if (old != MPT_NIL && now - s->sessions[old].last_rx_us >= SESSION_DEAD_US)
            victim = old;
    }
    if (victim == MPT_NIL)
        return MPT_NIL;
    session_release(s, victim, q);
    return mpt_slots_alloc(&s->session_slots);
}

static void send_hs(struct mpt_server *s, const uint8_t *msg, size_t len, const struct mpt_addr *to,
                    struct mpt_outq *q)
{
    uint8_t *m = mpt_outq_alloc(q, len);
    struct mpt_out *o;

    if (!m)
        return;
    memcpy(m, msg, len);
    o = mpt_outq_push(q, MPT_OUT_PATH, m, len, 0);
    if (o) {
        o->addr = *to;
        o->src = s->rx_local;
        s->ctr.tx_dgrams++;
        s->ctr.tx_bytes += len;
    }
}

/* A line about initiations refused for their timestamp (a clock off, or replays), at most once a
 * minute. */
static void warn_stale(struct mpt_server *s, uint64_t now, const struct mpt_addr *from,
                       const struct mpt_hs_server *st, const char *who)
{
    char a[MPT_ADDR_STRLEN];
    uint64_t ts = 0, wall = wall_us(s, now);
    double off = mpt_tai64n_parse(st->tai, &ts) == 0 ? ((double)ts - (double)wall) / 1e6 : 0;

    if (!MPT_LOG_ON(MPT_LOGL_WARN) || !mpt_log_due(&s->warn_stale_us, now, 60000000))
        return;
    if (s->p.npeers)
        MPT_WARN("a handshake from %s (peer %s) refused: its timestamp is not newer than the "
                 "last one taken from that peer (a replay, or its clock went back) (this warning "
                 "at most once a minute)",
                 mpt_addr_str(from, a, sizeof(a)), who);
    else if (off > MPT_HS_WINDOW_US / 1e6 || off < -(MPT_HS_WINDOW_US / 1e6))
        MPT_WARN("a handshake from %s refused: its clock is %+.0f s from ours (limit %.0f s in "
                 "shared-secret mode): set both clocks right (NTP), or use key mode (this "
                 "warning at most once a minute)",
                 mpt_addr_str(from, a, sizeof(a)), off, MPT_HS_WINDOW_US / 1e6);
    else
        MPT_WARN("a handshake from %s refused: a replay of one already taken (this warning at "
                 "most once a minute)",
                 mpt_addr_str(from, a, sizeof(a)));
}

static uint32_t peer_find(const struct mpt_server *s, const uint8_t pub[MPT_KEY_LEN])
{
    for (unsigned i = 0; i < s->p.npeers; i++)
        if (sodium_memcmp(s->peers[i].peer.public_key, pub, MPT_KEY_LEN) == 0)
            return i;
    return MPT_NIL;
}

static const char *peer_name(const struct mpt_server *s, uint32_t peer)
{
    return peer == MPT_NIL || peer >= s->p.npeers ? "" : s->peers[peer].peer.name;
}

/* The session an INIT names as previous, with the resume key that must prove it: the session of
 * that id, or one re-keyed from it whose client may not have the RESPONSE yet. */
static uint32_t prev_find(struct mpt_server *s, uint64_t now, uint64_t prev, const uint8_t **resume)
{
    uint32_t slot = session_find(s, prev);

    if (slot != MPT_NIL) {
        *resume = s->sessions[slot].resume;
        return slot;
    }
    slot = mpt_index_find(&s->session_by_prev, prev);
    if (slot != MPT_NIL && now < s->sessions[slot].prev_until_us) {
        *resume = s->sessions[slot].prev_resume;
        return slot;
    }
    return MPT_NIL;
}

/* Reads an INIT (MAC1 checked) into st and checks that it is fresh: authenticated, from a known
 * peer (key mode), and no replay. Returns 1, or 0 (counted, st wiped). */
static int read_fresh(struct mpt_server *s, uint64_t now, const struct mpt_addr *from,
                      const uint8_t *buf, size_t len, struct mpt_hs_server *st, uint32_t *peer,
                      uint64_t *ts)
{
    const struct mpt_hs_keys *k = &s->sec->keys;
    uint32_t pr = MPT_NIL;
    int fresh;

    if (mpt_hs_server_read(st, k, buf, len) != 0) {
        auth_failed(s, now, from, "a handshake");
        return 0;
    }
    if (k->keymode) {
        pr = peer_find(s, st->remote);
        if (pr == MPT_NIL) {
            auth_failed(s, now, from, "a handshake with a key no [peer] has");
            mpt_hs_server_wipe(st);
            return 0;
        }
        *peer = pr;
    }
    /* A replayed INIT never opens or disturbs a session, and gets no answer. What was taken
     * before this server started is forgotten: nothing stamped before then is fresh. */
    *ts = 0;
    if (mpt_tai64n_parse(st->tai, ts) != 0 || (s->start_wall_us && *ts <= s->start_wall_us))
        fresh = MPT_HS_STALE;
    else if (k->keymode)
        fresh = mpt_tai64n_parse(st->tai, ts) == 0 && *ts + 1 > s->peers[pr].greatest_tai_us
                    ? MPT_HS_FRESH
                    : MPT_HS_REPLAY;
    else
        fresh = mpt_hs_recent_check(s->recent, wall_us(s, now), st, 0);
    if (fresh != MPT_HS_FRESH) {
        s->ctr.drops[MPT_DROP_EXPIRED]++;
        warn_stale(s, now, from, st, peer_name(s, pr));
        mpt_hs_server_wipe(st);
        return 0;
    }
    return 1;
}

static void on_init(struct mpt_server *s, uint64_t now, const struct mpt_addr *from,
                    const uint8_t *buf, size_t len, struct mpt_outq *q)
{
    struct mpt_hs_keys *k = &s->sec->keys;
    struct mpt_server_session *ss;
    struct mpt_hs_server st;
    struct mpt_hs_result res;
    const uint8_t *resume = NULL;
    uint32_t slot, pslot = MPT_NIL, peer = MPT_NIL;
    uint64_t sid, ts = 0;
    int cipher;

    if (len != mpt_hs_init_len(k->keymode)) {
        /* The other mode's INIT: a client configured for key mode, or for a shared secret. */
        s->ctr.drops[MPT_DROP_MALFORMED]++;
        if (MPT_LOG_ON(MPT_LOGL_WARN) && mpt_log_due(&s->warn_mode_us, now, 60000000)) {
            char a[MPT_ADDR_STRLEN];
            MPT_WARN("a handshake from %s is for %s mode, and this server is in %s mode: "
                     "configure both ends alike (this warning at most once a minute)",
                     mpt_addr_str(from, a, sizeof(a)), k->keymode ? "shared-secret" : "key",
                     k->keymode ? "key" : "shared-secret");
        }
        return;
    }
    sid = mpt_get64(buf + MPT_INIT_OFF_SID);
    if (sid == 0) {
        s->ctr.drops[MPT_DROP_MALFORMED]++;
        return;
    }
    /* MAC1 first: junk, at any rate and from any source, costs one keyed hash and spends no
     * rate limit or state. */
    if (!mpt_hs_check_mac1(k, buf, len)) {
        auth_failed(s, now, from, "a handshake");
        return;
    }
    slot = session_find(s, sid);
    if (slot != MPT_NIL) {
        ss = &s->sessions[slot];
        /* A copy of the INIT we answered (another path, or sent again): the same RESPONSE, for
         * a short while and a few times; after that it can only be a replay. */
        if (mpt_mac_equal(ss->init_mac1, buf + len - 2 * MPT_MAC_LEN) &&
            now - ss->init_us < MPT_SERVER_INIT_COPY_US &&
            ss->response_copies < MPT_SERVER_INIT_COPIES) {
            ss->response_copies++;
            send_hs(s, ss->response, MPT_RESPONSE_LEN, from, q);
        } else {
            s->ctr.drops[MPT_DROP_EXPIRED]++;
        }
        return;
    }
    /* Shared-secret mode reads the INIT at once: Noise_NNpsk0's first message costs no
     * Diffie-Hellman, so a replay is refused before anything else, and never answered, even
     * with a cookie. Key mode's costs one: under load, a cookie comes first. */
    if (!k->keymode && !read_fresh(s, now, from, buf, len, &st, NULL, &ts))
        return;
    /* Under load, the rest only for sources that prove their address with a cookie. */
    if (!mpt_ratelimit_allow_global(&s->load, now) &&
        !mpt_hs_check_mac2(&s->sec->cookies, now, from, buf, len)) {
        if (mpt_ratelimit_allow(&s->load, from, now)) {
            uint8_t m[MPT_COOKIE_MSG_LEN];
            mpt_hs_cookie_msg(&s->sec->cookies, k, now, from, buf, len, m);
            send_hs(s, m, sizeof(m), from, q);
            s->cookies_sent++;
        }
        s->ctr.drops[MPT_DROP_LIMIT]++;
        if (!k->keymode)
            mpt_hs_server_wipe(&st);
        return;
    }
    if (k->keymode && !read_fresh(s, now, from, buf, len, &st, &peer, &ts))
        return;
    /* Only fresh, authenticated initiations spend the source's and the server's budgets. */
    if (!mpt_ratelimit_allow(&s->ratelimit, from, now) ||
        !mpt_ratelimit_allow_global(&s->ratelimit, now)) {
        s->ctr.drops[MPT_DROP_LIMIT]++;
        mpt_hs_server_wipe(&st);
        return;
    }
    if (st.prev) {
        pslot = prev_find(s, now, st.prev, &resume);
        if (pslot != MPT_NIL &&
            (!mpt_hs_server_proof_ok(&st, resume) || s->sessions[pslot].peer != peer)) {
            char a[MPT_ADDR_STRLEN];
            MPT_WARN("a handshake from %s%s%s naming session %016llx as its previous one, "
                     "without proof under that session's key: refused",
                     mpt_addr_str(from, a, sizeof(a)), k->keymode ? " by peer " : "",
                     peer_name(s, peer), (unsigned long long)st.prev);
            auth_failed(s, now, from, "a handshake");
            mpt_hs_server_wipe(&st);
            return;
        }
    }
    if (pslot != MPT_NIL) {
        /* The client continues its session: rekey that slot in place, so that its flows (keyed
         * by slot) and paths stay, and a full table cannot refuse the client its own session. */
        slot = pslot;
        ss = &s->sessions[slot];
        mpt_index_remove(&s->session_by_sid, slot);
        if (ss->prev_sid != st.prev) {
            prev_forget(s, slot);
            ss->prev_sid = st.prev;
            ss->prev_keys = ss->keys;
            memcpy(ss->prev_resume, ss->resume, MPT_KEY_LEN);
            ss->prev_until_us = now + PREV_KEEP_US;
            mpt_index_insert(&s->session_by_prev, slot, st.prev);
        }
        /* else: the keys of a re-key the client never heard of give way; the previous stay. */
        mpt_keys_wipe(&ss->keys);
        MPT_INFO("session %016llx%s%s re-keyed as %016llx, flows kept", (unsigned long long)st.prev,
                 k->keymode ? " of peer " : "", peer_name(s, peer), (unsigned long long)sid);
    } else {
        slot = session_make_room(s, now, q);
        if (slot == MPT_NIL) {
            s->ctr.drops[MPT_DROP_LIMIT]++;
            if (MPT_LOG_ON(MPT_LOGL_WARN) && mpt_log_due(&s->warn_sessions_us, now, 60000000)) {
                char a[MPT_ADDR_STRLEN];
                MPT_WARN("session table full (max_sessions = %u, every one in use): a handshake "
                         "from %s refused (this warning at most once a minute)",
                         s->p.max_sessions, mpt_addr_str(from, a, sizeof(a)));
            }
            mpt_hs_server_wipe(&st);
            return;
        }
        ss = &s->sessions[slot];
        memset(ss, 0, sizeof(*ss));
        ss->created_us = now;
        char a[MPT_ADDR_STRLEN];
        MPT_INFO("session %016llx opened via %s%s%s (%u sessions in use)", (unsigned long long)sid,
                 mpt_addr_str(from, a, sizeof(a)), k->keymode ? " by peer " : "",
                 peer_name(s, peer), s->session_slots.used);
    }
    /* Taken: the same INIT can never be taken again. */
    if (k->keymode)
        s->peers[peer].greatest_tai_us = ts + 1;
    else
        mpt_hs_recent_check(s->recent, wall_us(s, now), &st, 1);
    ss->sid = sid;
    ss->peer = peer;
    /* AES-256-GCM when both ends run it in hardware; the choice is in the RESPONSE, under the
     * handshake's keys. */
    cipher = (st.flags & MPT_INIT_FLAG_AES) && s->aes ? MPT_CIPHER_AES256GCM : MPT_CIPHER_CHACHA20;
    ss->mode = st.mode;
    memcpy(ss->init_mac1, st.init_mac1, MPT_MAC_LEN);
    if (mpt_hs_server_response(&st, k, k->keymode ? s->peers[peer].peer.psk : NULL,
                               k->keymode ? s->peers[peer].mac1_resp : k->mac1_resp, cipher,
                               ss->response, &res) != 0) {
        /* A low-order ephemeral key: the Diffie-Hellman result is zero. */
        auth_failed(s, now, from, "a handshake");
        session_release(s, slot, q);
        return;
    }
    mpt_keys_init(&ss->keys, res.tx, res.rx, res.cipher,
                  now + MPT_REJECT_AFTER_US(s->p.rekey_after_ms));
    memcpy(ss->resume, res.resume, MPT_KEY_LEN);
    mpt_wipe(&res, sizeof(res));
    MPT_DEBUG("session %016llx: %s, client mode %u", (unsigned long long)sid,
              mpt_cipher_name(cipher), st.mode);
    ss->init_us = now;
    ss->response_copies = 0;
    ss->last_rx_us = now;
    mpt_index_insert(&s->session_by_sid, slot, sid);
    mpt_slots_touch(&s->session_slots, slot);
    s->ctr.handshakes++;
    if (k->keymode)
        s->peers[peer].handshakes++;
    send_hs(s, ss->response, MPT_RESPONSE_LEN, from, q);
}

static struct mpt_server_path *path_find(struct mpt_server_session *ss, const struct mpt_addr *from)
{
    for (unsigned i = 0; i < ss->npaths; i++)
        if (mpt_addr_equal(&ss->paths[i].addr, from))
            return &ss->paths[i];
    return NULL;
}

/* A slot for a new path: a free one, else the least recently heard of those not validated (so
 * that addresses nobody vouched for never push out those that answered), else of all. */
static struct mpt_server_path *path_slot(struct mpt_server_session *ss)
{
    struct mpt_server_path *p = NULL;

    if (ss->npaths < MPT_MAX_PATHS)
        return &ss->paths[ss->npaths++];
    for (unsigned i = 0; i < ss->npaths; i++) {
        struct mpt_server_path *x = &ss->paths[i];
        if (!p || (!x->validated && p->validated) ||
            (x->validated == p->validated && x->last_rx_us < p->last_rx_us))
            p = x;
    }
    return p;
}

/* A return address not validated yet: a fresh challenge value and an empty budget. */
static void path_unvalidated(struct mpt_server *s, struct mpt_server_path *p)
{
    p->validated = 0;
    mpt_random(p->challenge, MPT_CHALLENGE_LEN);
    p->challenge_us = 0;
    p->amp_rx = p->amp_tx = 0;
    p->max_dgram = 0;
    s->mtu_dirty = 1;
}

/* The path of a session that `from` belongs to, learning it if new. `id` is the client's path
 * index when known (probes carry it), which lets a path's address change (NAT rebinding). A new
 * address is never trusted for the return direction before it is validated (§7): while it is not,
 * the path keeps its validated address, if it has one, beside it. */
static struct mpt_server_path *path_update(struct mpt_server *s, struct mpt_server_session *ss,
                                           uint64_t now, const struct mpt_addr *from, unsigned id)
{
    struct mpt_server_path *p = NULL;
    unsigned i;

    for (i = 0; i < ss->npaths; i++)
        if (mpt_addr_equal(&ss->paths[i].addr, from)) {
            p = &ss->paths[i];
            break;
        }
    if (id != MPT_PATH_ID_UNKNOWN) {
        for (i = 0; i < ss->npaths; i++) {
            struct mpt_server_path *o = &ss->paths[i];
            if (o->id != id || o == p)
                continue;
            if (p) {
                /* The id moved to another address: once that one is validated, the older entry
                 * is stale. */
                if (p->validated)
                    o->id = MPT_PATH_ID_UNKNOWN;
            } else {
                if (MPT_LOG_ON(MPT_LOGL_INFO)) {
                    char a[MPT_ADDR_STRLEN], b[MPT_ADDR_STRLEN];
                    MPT_INFO("session %016llx: client path %u now arrives from %s (was %s): NAT "
                             "rebinding or roaming",
                             (unsigned long long)ss->sid, id + 1, mpt_addr_str(from, a, sizeof(a)),
                             mpt_addr_str(&o->addr, b, sizeof(b)));
                }
                if (!o->validated) {
                    /* Nothing was sent there but challenges: move it. */
                    o->addr = *from;
                    path_unvalidated(s, o);
                    p = o;
                }
            }
            break;
        }
    }
    if (!p) {
        p = path_slot(ss);
        memset(p, 0, sizeof(*p));
        p->addr = *from;
        p->id = MPT_PATH_ID_UNKNOWN;
        path_unvalidated(s, p);
        if (MPT_LOG_ON(MPT_LOGL_DEBUG)) {
            char a[MPT_ADDR_STRLEN];
            MPT_DEBUG("session %016llx: a path from %s (%u known), to be validated",
                      (unsigned long long)ss->sid, mpt_addr_str(from, a, sizeof(a)), ss->npaths);
        }
    }
    if (id != MPT_PATH_ID_UNKNOWN)
        p->id = (uint8_t)id;
    p->last_rx_us = now;
    return p;
}

/* The client echoed the challenge of `p`, from its address: the address is validated (§7). */
static void on_path_response(struct mpt_server *s, struct mpt_server_session *ss,
                             struct mpt_server_path *p, const uint8_t *m)
{
    /* An answer to a challenge sent again, or to another address's (a relay re-sending it from
     * elsewhere): authenticated, so no failure, but it proves nothing about this address. */
    if (p->validated || !p->challenge_us ||
        sodium_memcmp(m + MPT_CHALLENGE_OFF, p->challenge, MPT_CHALLENGE_LEN) != 0)
        return;
    p->validated = 1;
    s->validations++;
    if (p->id != MPT_PATH_ID_UNKNOWN)
        for (unsigned i = 0; i < ss->npaths; i++)
            if (&ss->paths[i] != p && ss->paths[i].id == p->id)
                ss->paths[i].id = MPT_PATH_ID_UNKNOWN;
    if (MPT_LOG_ON(MPT_LOGL_DEBUG)) {
        char a[MPT_ADDR_STRLEN];
        MPT_DEBUG("session %016llx: path from %s validated", (unsigned long long)ss->sid,
                  mpt_addr_str(&p->addr, a, sizeof(a)));
    }
}

/* The ring of copies for the keys of session id `sid` in session slot `slot`; with `claim`, the
 * ring of keys no longer in use is given to them if they have none. NULL if none. */
static struct mpt_copies *copies_for(struct mpt_server *s, uint32_t slot, uint64_t sid, int claim)
{
    struct mpt_copies *r = &s->copies[2 * (size_t)slot];
    const struct mpt_server_session *ss = &s->sessions[slot];

    if (r[0].sid == sid)
        return &r[0];
    if (r[1].sid == sid)
        return &r[1];
    if (!claim)
        return NULL;
    r += r[0].sid == ss->sid || (r[0].sid && r[0].sid == ss->prev_sid);
    mpt_copies_reset(r, sid);
    return r;
}

static double loss_dq(uint16_t v)
{
    return (double)v / 65535.0;
}

/* What a probe says: the client's view of this path and which paths to answer on (§5, §8). */
static void on_probe(struct mpt_server_session *ss, struct mpt_server_path *p, const uint8_t *m,
                     size_t len, uint64_t now)
{
    uint64_t sent = mpt_get64(m + MPT_PROBE_OFF_TIME);

    ss->mode = m[2];
    ss->fec_target =
        mpt_get16(m + MPT_PROBE_OFF_TARGET) ? mpt_get16(m + MPT_PROBE_OFF_TARGET) / 1e6 : 0;
    /* The client's fixed fec = K:M, from a probe long enough to say it; out of range: planned. */
    ss->fec_k = ss->fec_m = 0;
    if (len >= MPT_PROBE_OFF_FEC_M + 1 && m[MPT_PROBE_OFF_FEC_K] >= 1 &&
        m[MPT_PROBE_OFF_FEC_K] <= MPT_FEC_K_MAX && m[MPT_PROBE_OFF_FEC_M] >= 1 &&
        m[MPT_PROBE_OFF_FEC_M] <= MPT_FEC_M_MAX) {
        ss->fec_k = m[MPT_PROBE_OFF_FEC_K];
        ss->fec_m = m[MPT_PROBE_OFF_FEC_M];
    }
    ss->fec_wait_ms = len >= MPT_PROBE_OFF_FEC_WAIT + 2 ? mpt_get16(m + MPT_PROBE_OFF_FEC_WAIT) : 0;
    p->state = m[3];
    p->loss_up = loss_dq(mpt_get16(m + MPT_PROBE_OFF_LOSS_UP));
    p->loss_down = loss_dq(mpt_get16(m + MPT_PROBE_OFF_LOSS_DOWN));
    p->loss_measured = m[MPT_PROBE_OFF_FLAGS] & MPT_PROBE_F_MEASURED;
    p->srtt_us = mpt_get32(m + MPT_PROBE_OFF_SRTT);
    mpt_owd_add(&p->owd, now, sent);
    /* Probes overtake each other on paths of unequal delay: only the newest choice counts. */
    if (!ss->have_hints || sent >= ss->hints_time) {
        memcpy(ss->use, m + MPT_PROBE_OFF_USE, MPT_MAX_PATHS);
        for (unsigned i = 0; i < MPT_MAX_PATHS; i++)
            ss->cap[i] = len >= MPT_PROBE_OFF_CAPS + 2 * MPT_MAX_PATHS && ss->use[i]
                             ? mpt_cap_decode(mpt_get16(m + MPT_PROBE_OFF_CAPS + 2 * i))
                             : 0;
        ss->hints_time = sent;
        ss->have_hints = 1;
    }
}

/* Answers a probe, under the keys (and session id) it came with. */
static void send_probe_ack(struct mpt_server *s, struct mpt_server_session *ss,
                           struct mpt_server_path *p, const uint8_t *probe, struct mpt_outq *q,
                           uint64_t sid, struct mpt_keys *k, uint64_t now)
{
    uint8_t *out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_PROBE_ACK_LEN), *m;
    struct mpt_out *o;
    size_t n;

    if (!out)
        return;
    /* The ack counts itself among the copies sent, as the client counts it among those
     * received: the loss of the return direction compares the two. */
    p->tx_dgrams++;
    m = mpt_data_inner(out);
    memset(m, 0, MPT_PROBE_ACK_LEN);
    m[0] = MPT_INNER_PROBE_ACK;
    m[1] = probe[1];
    memcpy(m + MPT_PROBE_OFF_SEQ, probe + MPT_PROBE_OFF_SEQ, 12); /* seq and time, echoed */
    mpt_put32(m + MPT_PROBE_OFF_RX, (uint32_t)p->rx_dgrams);
    mpt_put32(m + MPT_PROBE_OFF_TX, (uint32_t)p->tx_dgrams);
    mpt_put64(m + MPT_PROBE_OFF_STIME, now);
    mpt_put64(m + MPT_PROBE_OFF_CLOCK, s->clock_id);
    n = mpt_data_seal(k, sid, out, MPT_PROBE_ACK_LEN);
    s->ctr.sealed++;
    o = mpt_outq_push(q, MPT_OUT_PATH, out, n, 0);
    if (o) {
        o->addr = p->addr;
        o->src = p->local;
        p->tx_bytes += n;
        s->ctr.tx_dgrams++;
        s->ctr.tx_bytes += n;
    } else {
        p->tx_dgrams--;
    }
}

void mpt_server_set_allow(struct mpt_server *s, const struct mpt_allow_rule *allow, unsigned nallow)
{
    if (nallow > MPT_SERVER_MAX_ALLOW)
        nallow = MPT_SERVER_MAX_ALLOW;
    if (nallow)
        memcpy(s->allow, allow, nallow * sizeof(*allow));
    s->nallow = nallow;
}

static uint32_t return_paths(const struct mpt_server_session *ss, uint64_t now, int *best);

/* Seals an inner message of `len` bytes written at mpt_data_inner(out); returns the datagram's
 * length. */
static size_t seal(struct mpt_server *s, struct mpt_server_session *ss, uint64_t now, uint8_t *out,
                   size_t len)
{
    s->ctr.sealed++;
    /* Until the client shows it has the new keys, it can only read the old ones. */
    if (ss->prev_sid && now < ss->prev_until_us)
        return mpt_data_seal(&ss->prev_keys, ss->prev_sid, out, len);
    return mpt_data_seal(&ss->keys, ss->sid, out, len);
}

/* Queues one sealed datagram on the session's paths of mask; one not validated only within its
 * budget (§7). */
static void push_paths(struct mpt_server *s, struct mpt_server_session *ss, const uint8_t *out,
                       size_t n, uint32_t mask, struct mpt_outq *q)
{
    for (unsigned i = 0; i < ss->npaths; i++) {
        struct mpt_server_path *p = &ss->paths[i];
        struct mpt_out *o;
        if (!(mask & (1u << i)))
            continue;
        if (!p->validated && p->amp_tx + n > MPT_SERVER_AMP_FACTOR * p->amp_rx) {
            s->amp_refused++;
            continue;
        }
        o = mpt_outq_push(q, MPT_OUT_PATH, out, n, 0);
        if (!o)
            break;
        if (!p->validated)
            p->amp_tx += n;
        o->addr = p->addr;
        o->src = p->local;
        p->tx_dgrams++;
        p->tx_bytes += n;
        s->ctr.tx_dgrams++;
        s->ctr.tx_bytes += n;
    }
}

/* fec mode (§11), replies: the encoder of session ss, allocated on its first coded reply (once:
 * it lives until the session ends or idles for MPT_SERVER_FEC_IDLE_US); NULL, counted, if memory
 * for it cannot be had (the reply then goes uncoded; tried again ALLOC_RETRY_US later at the
 * earliest, not for every reply). */
static struct mpt_server_fec *fec_encoder(struct mpt_server *s, struct mpt_server_session *ss,
                                          uint64_t now)
{
    uint32_t slot = (uint32_t)(ss - s->sessions);
    struct mpt_server_fec *f = s->fec_tx[slot];

    if (f)
        return f;
    if (now < s->fec_tx_retry_us) {
        s->fec_no_encoder++;
        return NULL;
    }
    f = calloc(1, sizeof(*f));
    if (!f || mpt_fec_tx_init(&f->tx) != 0) {
        free(f);
        s->fec_tx_retry_us = now + ALLOC_RETRY_US;
        s->fec_no_encoder++;
        return NULL;
    }
    memset(f->plan.m_for, 0xff, sizeof(f->plan.m_for));
    s->fec_tx[slot] = f;
    s->fec_encoders++;
    return f;
}

static void fec_encoder_free(struct mpt_server *s, uint32_t slot)
{
    if (!s->fec_tx || !s->fec_tx[slot])
        return;
    mpt_fec_tx_free(&s->fec_tx[slot]->tx);
    free(s->fec_tx[slot]);
    s->fec_tx[slot] = NULL;
    s->fec_encoders--;
}

/* The plan for the replies of session ss over the return paths of mask: the client's fixed
 * K:M, or repairs for each return path's loss towards the client (the client measures it and
 * says so in its probes; a path not measured yet counts as MPT_FECPLAN_PRIOR_LOSS) and its
 * target_loss. */
static void fec_plan(struct mpt_server_session *ss, struct mpt_server_fec *f, uint32_t mask)
{
    double loss[MPT_MAX_PATHS];
    unsigned w[MPT_MAX_PATHS];

    for (unsigned i = 0; i < ss->npaths; i++) {
        loss[i] = mpt_fecplan_loss(ss->paths[i].loss_down, ss->paths[i].loss_measured);
        w[i] = ss->paths[i].id < MPT_MAX_PATHS && ss->use[ss->paths[i].id]
                   ? ss->use[ss->paths[i].id]
                   : 1;
    }
    mpt_fecplan_set(&f->plan, loss, w, mask, ss->npaths,
                    ss->fec_target > 0 ? ss->fec_target : MPT_SERVER_FEC_TARGET, ss->fec_k,
                    ss->fec_m);
    /* The client's wait for the replies' repairs (its fec_wait), 50 ms when its probes say none. */
    mpt_fecplan_wait(&f->plan, ss->fec_wait_ms ? ss->fec_wait_ms * 1000ULL : MPT_FEC_WAIT_US);
}

/* Closes f's open block and queues its repairs, one path each in turn over the plan's paths. */
static void fec_flush(struct mpt_server *s, struct mpt_server_session *ss, struct mpt_server_fec *f,
                      uint64_t now, struct mpt_outq *q)
{
    unsigned n = f->tx.n, m;
    uint32_t mask = f->plan.mask;
    uint64_t sid = ss->prev_sid && now < ss->prev_until_us ? ss->prev_sid : ss->sid;

    if (!n)
        return;
    if (!mask || f->sid != sid || !(m = mpt_fecplan_m(&f->plan, n))) {
        mpt_fec_tx_reset(&f->tx);
        return;
    }
    m = mpt_fec_tx_close(&f->tx, m);
    for (unsigned j = 0; j < m; j++) {
        unsigned path = f->next_path % MPT_MAX_PATHS;
        uint8_t *out;

        for (unsigned t = 0; t < ss->npaths; t++) {
            path = (f->next_path + t) % ss->npaths;
            if (mask & (1u << path))
                break;
        }
        f->next_path = (path + 1) % (ss->npaths ? ss->npaths : 1);
        if (q->max - q->n < 4 || q->cap - q->used < MPT_DATA_OVERHEAD + MPT_REPAIR_MAX_LEN + 64 ||
            !(out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_REPAIR_MAX_LEN)))
            return;
        push_paths(s, ss, out,
                   seal(s, ss, now, out, mpt_fec_tx_repair(&f->tx, j, mpt_data_inner(out))),
                   1u << path, q);
        ss->fec_repairs++;
        s->fec_repairs_tx++;
    }
}

/* A reply (or a piece of one) about to be sealed with the next counter of its keys, to go on one
 * of the return paths `all`: a source of the session's open block (the block before closed first
 * if it cannot join). Returns the encoder, or NULL (not coded). */
static struct mpt_server_fec *fec_source(struct mpt_server *s, struct mpt_server_session *ss,
                                         uint64_t now, const uint8_t *inner, size_t len,
                                         uint32_t all, struct mpt_outq *q)
{
    int prev = ss->prev_sid && now < ss->prev_until_us;
    uint64_t sid = prev ? ss->prev_sid : ss->sid;
    uint64_t ctr = (prev ? ss->prev_keys.tx_counter : ss->keys.tx_counter) + 1;
    struct mpt_server_fec *f;

    if (ss->mode != MPT_CLIENT_FEC || !mpt_fec_protects(inner, len) || !all ||
        !(f = fec_encoder(s, ss, now)))
        return NULL;
    if (f->tx.n && (f->sid != sid || !mpt_fec_tx_fits(&f->tx, ctr, mpt_fecplan_k(&f->plan))))
        fec_flush(s, ss, f, now, q);
    if (!f->tx.n)
        fec_plan(ss, f, all); /* a block goes on the paths of its time */
    f->last_us = now;
    if (!f->tx.n && mpt_fecplan_none(&f->plan))
        return NULL; /* no repair would be sent: not coded at all */
    f->sid = sid;
    if (mpt_fec_tx_add(&f->tx, ctr, inner, len, now) == 1) {
        f->close_us = mpt_fecplan_first(&f->plan, now);
        if (f->close_us < s->timer_at_us)
            s->wake = 1;
    }
    ss->fec_sources++;
    s->fec_sources_tx++;
    return f;
}

/* After a source is sealed: a full block is closed at once. */
static void fec_full(struct mpt_server *s, struct mpt_server_session *ss, struct mpt_server_fec *f,
                     uint64_t now, struct mpt_outq *q)
{
    if (f->tx.n >= mpt_fecplan_k(&f->plan))
        fec_flush(s, ss, f, now, q);
}

/* Blocks whose time is up are closed (or given longer, at low rates: mpt_fecplan_next); the
 * encoders of sessions idle for MPT_SERVER_FEC_IDLE_US, or no longer in fec mode, are freed.
 * Returns the earliest deadline left. */
static uint64_t fec_timer(struct mpt_server *s, uint64_t now, struct mpt_outq *q)
{
    uint64_t next = UINT64_MAX;

    if (!s->fec_encoders)
        return next;
    for (uint32_t i = mpt_slots_oldest(&s->session_slots); i != MPT_NIL;
         i = s->session_slots.prev[i]) {
        struct mpt_server_fec *f = s->fec_tx[i];
        if (!f)
            continue;
        if (f->tx.n && f->close_us <= now) {
            uint64_t later = mpt_fecplan_next(&f->plan, f->tx.n, f->tx.opened_us, now);
            if (later) {
                f->close_us = later;
                s->fec_longer++;
            } else
                fec_flush(s, &s->sessions[i], f, now, q);
        }
        if (!f->tx.n &&
            (now - f->last_us >= MPT_SERVER_FEC_IDLE_US || s->sessions[i].mode != MPT_CLIENT_FEC)) {
            fec_encoder_free(s, i);
            continue;
        }
        if (f->tx.n && f->close_us < next)
            next = f->close_us;
    }
    return next;
}

/* A FLOW message of `len` bytes at mpt_data_inner(out), the last allocation in q, that the paths
 * of mask do not carry whole: sent instead as pieces that fit, each sealed once and queued on
 * those paths (PROTOCOL.md §5 PIECE), if the queue has room for all of them. Returns 0 if the
 * message is to go whole (it fits, a path's size is unknown, or no room). */
static int send_pieces(struct mpt_server *s, struct mpt_server_session *ss, uint64_t now,
                       uint8_t *out, size_t len, uint32_t mask, uint32_t all, struct mpt_outq *q)
{
    size_t base = (size_t)(out - q->arena);
    unsigned max = 0, copies = 0, k;
    uint32_t msg;

    for (unsigned i = 0; i < ss->npaths; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (!ss->paths[i].max_dgram)
            return 0;
        if (!max || ss->paths[i].max_dgram < max)
            max = ss->paths[i].max_dgram;
        copies++;
    }
    k = mpt_split_count(len, max);
    if (!k || q->max - q->n < k * copies || q->cap - base < len + k * (MPT_PIECE_OVERHEAD + 16))
        return 0;
    /* The pieces take the message's place in the queue's arena. */
    memcpy(s->split.scratch, mpt_data_inner(out), len);
    q->used = base;
    msg = mpt_split_next_msg(&s->split);
    for (unsigned i = 0; i < k; i++) {
        uint8_t *p = mpt_outq_alloc(q, MPT_PIECE_OVERHEAD + mpt_split_piece_len(len, k, i));
        struct mpt_server_fec *f;
        size_t n;

        if (!p) { /* the repairs of a block closed on the way took the room */
            s->ctr.drops[MPT_DROP_LIMIT]++;
            break;
        }
        n = mpt_split_write(mpt_data_inner(p), mpt_get32(s->split.scratch + 4), msg, i, k,
                            s->split.scratch, len);
        /* Each piece a source of the code, as a whole reply is (§11). */
        f = fec_source(s, ss, now, mpt_data_inner(p), n, all, q);
        push_paths(s, ss, p, seal(s, ss, now, p, n), mask, q);
        if (f)
            fec_full(s, ss, f, now, q);
    }
    s->split.st.split++;
    s->split.st.pieces_tx += k;
    return 1;
}

void mpt_server_set_path_mtus(struct mpt_server *s, int all,
                              unsigned (*mtu)(void *arg, const struct mpt_addr *to), void *arg)
{
    s->mtu_dirty = 0;
    for (unsigned i = 0; i < s->p.max_sessions; i++) {
        struct mpt_server_session *ss = &s->sessions[i];
        if (!ss->sid)
            continue;
        for (unsigned j = 0; j < ss->npaths; j++)
            if (all || !ss->paths[j].max_dgram)
                ss->paths[j].max_dgram = mtu(arg, &ss->paths[j].addr);
    }
}

/* Balance mode: the client's cap of replies on session path i, datagrams/s (0: none). */
static double path_cap(const struct mpt_server_session *ss, unsigned i)
{
    return ss->paths[i].id < MPT_MAX_PATHS ? ss->cap[ss->paths[i].id] : 0;
}

/* Seals an inner message of `len` bytes, written at mpt_data_inner(out), and queues it on the
 * session's return paths (§8), as pieces if it is a FLOW message they do not carry whole. */
static void send_inner(struct mpt_server *s, struct mpt_server_session *ss, uint64_t now,
                       uint8_t *out, size_t len, struct mpt_outq *q)
{
    struct mpt_server_fec *f;
    uint32_t mask, all;
    int best;
    size_t n;

    /* Keys past their lifetime send nothing (the client re-keys well before). */
    if (!mpt_keys_live(ss->prev_sid && now < ss->prev_until_us ? &ss->prev_keys : &ss->keys, now))
        return;
    mask = return_paths(ss, now, &best);
    if (!mask && best >= 0)
        mask = 1u << best; /* every path silent for a while: still try the one heard last */
    if (!mask) {
        /* No address validated yet (the session's first round trip): as a QUIC server does,
         * those heard lately get what their budget allows, so a first reply need not wait. */
        for (unsigned i = 0; i < ss->npaths; i++)
            if (now - ss->paths[i].last_rx_us < PATH_ACTIVE_US)
                mask |= 1u << i;
    }
    all = mask;
    if ((ss->mode == MPT_CLIENT_BALANCE || ss->mode == MPT_CLIENT_FEC) && mask) {
        unsigned w[MPT_MAX_PATHS];
        for (unsigned i = 0; i < ss->npaths; i++)
            w[i] = ss->paths[i].id < MPT_MAX_PATHS && ss->use[ss->paths[i].id]
                       ? ss->use[ss->paths[i].id]
                       : 1;
        if (ss->mode == MPT_CLIENT_BALANCE) {
            /* Among the paths within the client's caps of them, if any is (§8.2). */
            uint32_t room = 0;
            unsigned pick;
            for (unsigned i = 0; i < ss->npaths; i++)
                if ((mask & (1u << i)) && mpt_bucket_room(&ss->paths[i].cap, path_cap(ss, i), now))
                    room |= 1u << i;
            pick = mpt_wrr_pick(ss->wrr, w, room ? room : mask, ss->npaths);
            mpt_bucket_take(&ss->paths[pick].cap, path_cap(ss, pick));
            mask = 1u << pick;
        } else {
            mask = 1u << mpt_wrr_pick(ss->wrr, w, mask, ss->npaths);
        }
    }
    if (mpt_data_inner(out)[0] == MPT_INNER_FLOW && send_pieces(s, ss, now, out, len, mask, all, q))
        return;
    f = fec_source(s, ss, now, mpt_data_inner(out), len, all, q);
    n = seal(s, ss, now, out, len);
    push_paths(s, ss, out, n, mask, q);
    if (f)
        fec_full(s, ss, f, now, q);
}

/* FLOW_STATUS (§5) for flow `id`: open, or why not. */
static void send_status(struct mpt_server *s, struct mpt_server_session *ss, uint64_t now,
                        uint32_t id, enum mpt_flow_status status, struct mpt_outq *q)
{
    uint8_t *out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_FLOW_STATUS_LEN), *inner;

    if (!out || ss->npaths == 0)
        return;
    inner = mpt_data_inner(out);
    memset(inner, 0, MPT_FLOW_STATUS_LEN);
    inner[0] = MPT_INNER_FLOW_STATUS;
    inner[1] = (uint8_t)status;
    mpt_put32(inner + 4, id);
    send_inner(s, ss, now, out, MPT_FLOW_STATUS_LEN, q);
}

/* A flow refused: counted by reason, logged at most once per MPT_SERVER_REFUSELOG_US, told to
 * the client. Nothing is ever sent towards the target. */
static void refuse(struct mpt_server *s, uint32_t sslot, uint64_t now, uint32_t id,
                   const char *host, uint16_t port, enum mpt_flow_status why, struct mpt_outq *q)
{
    struct mpt_server_session *ss = &s->sessions[sslot];
    uint64_t total = 0;

    s->refused[why]++;
    if (ss->peer < s->p.npeers)
        s->peers[ss->peer].refused[why]++;
    for (int i = 1; i < MPT_FLOW_STATUS_COUNT; i++)
        total += s->refused[i];
    if (MPT_LOG_ON(MPT_LOGL_WARN) && mpt_log_due(&s->refuselog_us, now, MPT_SERVER_REFUSELOG_US)) {
        MPT_WARN("flow %u of session %016llx%s%s refused: target %s%s%s:%u %s (%llu refused since "
                 "the last line; at most one line per %u s)",
                 id, (unsigned long long)ss->sid, ss->peer < s->p.npeers ? " of peer " : "",
                 peer_name(s, ss->peer), strchr(host, ':') ? "[" : "", host,
                 strchr(host, ':') ? "]" : "", (unsigned)port, mpt_flow_status_names[why],
                 (unsigned long long)(total - s->refused_logged),
                 (unsigned)(MPT_SERVER_REFUSELOG_US / 1000000));
        s->refused_logged = total;
    }
    send_status(s, ss, now, id, why, q);
}

/* A slot for a new flow, or MPT_NIL (counted, warned) when the table is full. */
static uint32_t flow_alloc(struct mpt_server *s, uint64_t now, uint32_t sslot, struct mpt_outq *q)
{
    uint32_t slot = mpt_slots_alloc(&s->flow_slots);

    if (slot == MPT_NIL) {
        uint32_t old = mpt_slots_oldest(&s->flow_slots);
        if (old != MPT_NIL &&
            now - s->flows[old].last_us >= (uint64_t)s->p.flow_timeout_ms * 1000) {
            flow_close(s, old, q);
            slot = mpt_slots_alloc(&s->flow_slots);
        }
    }
    if (slot == MPT_NIL) {
        s->ctr.drops[MPT_DROP_LIMIT]++;
        if (MPT_LOG_ON(MPT_LOGL_WARN) && mpt_log_due(&s->warn_flows_us, now, 60000000))
            MPT_WARN("flow table full (max_flows = %u, none idle for flow_timeout): a new flow "
                     "of session %016llx refused (this warning at most once a minute)",
                     s->p.max_flows, (unsigned long long)s->sessions[sslot].sid);
    }
    return slot;
}

static void flow_insert(struct mpt_server *s, uint32_t slot, uint32_t sslot, uint32_t id,
                        uint16_t target, uint64_t now)
{
    struct mpt_server_flow *f = &s->flows[slot];

    f->session = sslot;
    f->id = id;
    f->target = target;
    f->pending = 0;
    f->own = 0;
    f->last_us = now;
    mpt_index_insert(&s->flow_by_key, slot, flow_key(sslot, id));
    s->sessions[sslot].nflows++;
    s->flows_opened++;
}

/* The peer whose own rules and default target a session's flows are held to (§5), or NULL:
 * [server]'s apply (shared-secret mode, or a peer without its own). */
static const struct mpt_server_peer *own_peer(const struct mpt_server *s, uint32_t sslot)
{
    uint32_t peer = s->sessions[sslot].peer;

    return peer < s->p.npeers && s->peers[peer].peer.own ? &s->peers[peer].peer : NULL;
}

/* The allow rules of a session's flows: *n of them. */
static const struct mpt_allow_rule *session_rules(const struct mpt_server *s, uint32_t sslot,
                                                  unsigned *n)
{
    const struct mpt_server_peer *pr = own_peer(s, sslot);

    *n = pr ? pr->nallow : s->nallow;
    return pr ? s->peer_allow + pr->allow_first : s->allow;
}

/* 1 if the rules of session sslot's flows cover `a`. */
static int session_allows(const struct mpt_server *s, uint32_t sslot, const struct mpt_addr *a)
{
    unsigned n;
    const struct mpt_allow_rule *r = session_rules(s, sslot, &n);

    return mpt_allow_match(r, n, a);
}

/* Opens flow `id` of session sslot towards `addr` (a literal, or a name's address with the port
 * set) if the session's rules cover it: 0 and *slot_out, or -1 (refused, told to the client). */
static int open_addr(struct mpt_server *s, uint64_t now, uint32_t sslot, uint32_t id,
                     const char *host, uint16_t port, const struct mpt_addr *addr,
                     uint32_t *slot_out, struct mpt_outq *q)
{
    struct mpt_out *o;
    uint32_t slot;

    if (!session_allows(s, sslot, addr)) {
        refuse(s, sslot, now, id, host, port, MPT_FLOW_NOT_ALLOWED, q);
        return -1;
    }
    slot = flow_alloc(s, now, sslot, q);
    if (slot == MPT_NIL) {
        refuse(s, sslot, now, id, host, port, MPT_FLOW_BUSY, q);
        return -1;
    }
    flow_insert(s, slot, sslot, id, MPT_TARGET_NAMED, now);
    o = mpt_outq_push(q, MPT_OUT_FLOW_OPEN, NULL, 0, slot);
    if (o) {
        o->target = MPT_TARGET_NAMED;
        o->addr = *addr;
    }
    MPT_DEBUG("flow %u of session %016llx opened towards %s:%u", id,
              (unsigned long long)s->sessions[sslot].sid, host, (unsigned)port);
    send_status(s, &s->sessions[sslot], now, id, MPT_FLOW_OPEN, q);
    *slot_out = slot;
    return 0;
}

static void addr_set_port(struct mpt_addr *a, uint16_t port)
{
    if (a->u.sa.sa_family == AF_INET)
        a->u.in4.sin_port = htons(port);
    else if (a->u.sa.sa_family == AF_INET6)
        a->u.in6.sin6_port = htons(port);
}

/* A FLOW message that names its target (§5) and whose flow is not open: checked against the
 * allow rules of its session (its peer's own, or [server]'s), resolved first if it is a name —
 * from the cache of recent answers, or joined to a lookup of that name under way, or by a new
 * lookup through the driver. 0 if the flow is open now (its datagram goes on), -1 if not
 * (refused, or waiting for the lookup: the datagram is dropped, the client repeats the target
 * until the flow is open). */
static int open_named(struct mpt_server *s, uint64_t now, uint32_t sslot, uint32_t id,
                      const char *host, uint16_t port, uint32_t *slot_out, struct mpt_outq *q)
{
    struct mpt_addr addr;
    struct mpt_name *e;
    struct mpt_out *o;
    uint8_t *name;
    uint32_t slot;
    size_t hlen = strlen(host);
    unsigned nrules;

    session_rules(s, sslot, &nrules);
    if (mpt_target_literal(host, port, &addr) == 0)
        return open_addr(s, now, sslot, id, host, port, &addr, slot_out, q);
    if (!nrules) {
        refuse(s, sslot, now, id, host, port, MPT_FLOW_NOT_ALLOWED, q);
        return -1;
    }
    e = mpt_names_find(&s->names, host, now);
    s->lookups = s->names.pending;
    if (e) {
        s->names.hits++;
        if (e->state == MPT_NAME_NOTFOUND) {
            refuse(s, sslot, now, id, host, port, MPT_FLOW_UNRESOLVED, q);
            return -1;
        }
        if (e->state == MPT_NAME_FOUND) {
            /* The rules are those of this session, whoever asked first. */
            addr = e->addr;
            addr_set_port(&addr, port);
            return open_addr(s, now, sslot, id, host, port, &addr, slot_out, q);
        }
        /* Pending: the flow waits for the same answer. */
        slot = flow_alloc(s, now, sslot, q);
        if (slot == MPT_NIL) {
            refuse(s, sslot, now, id, host, port, MPT_FLOW_BUSY, q);
            return -1;
        }
        flow_insert(s, slot, sslot, id, MPT_TARGET_NAMED, now);
        s->flows[slot].pending = 1;
        s->flows[slot].port = port;
        s->flows[slot].gen = e->gen;
        return -1;
    }
    if (s->names.pending >= s->p.max_lookups && !mpt_names_expire(&s->names, now)) {
        refuse(s, sslot, now, id, host, port, MPT_FLOW_BUSY, q);
        return -1;
    }
    slot = flow_alloc(s, now, sslot, q);
    if (slot == MPT_NIL) {
        refuse(s, sslot, now, id, host, port, MPT_FLOW_BUSY, q);
        return -1;
    }
    e = mpt_names_start(&s->names, host, ++s->lookup_gen, now);
    /* The name travels in the queue's arena: the caller's buffer does not outlive this call. */
    name = e ? mpt_outq_alloc(q, hlen) : NULL;
    if (name)
        memcpy(name, host, hlen);
    o = name ? mpt_outq_push(q, MPT_OUT_RESOLVE, name, hlen, slot) : NULL;
    if (!o) {
        if (e)
            mpt_names_drop(&s->names, e);
        mpt_slots_release(&s->flow_slots, slot);
        s->ctr.drops[MPT_DROP_LIMIT]++;
        return -1;
    }
    s->names.misses++;
    s->lookups = s->names.pending;
    flow_insert(s, slot, sslot, id, MPT_TARGET_NAMED, now);
    s->flows[slot].pending = 1;
    s->flows[slot].port = port;
    s->flows[slot].gen = e->gen;
    o->gen = e->gen;
    mpt_target_literal("0.0.0.0", port, &o->addr);
    return -1;
}

/* Flow `slot`, waiting for name entry e, now that its answer is in. */
static void resolved_flow(struct mpt_server *s, uint64_t now, uint32_t slot,
                          const struct mpt_name *e, struct mpt_outq *q)
{
    struct mpt_server_flow *f = &s->flows[slot];
    struct mpt_server_held *h;
    struct mpt_addr a;
    struct mpt_out *o;
    char host[MPT_ADDR_STRLEN];

    f->pending = 0;
    if (e->state != MPT_NAME_FOUND) {
        refuse(s, f->session, now, f->id, e->host, f->port, MPT_FLOW_UNRESOLVED, q);
        flow_close(s, slot, q);
        return;
    }
    a = e->addr;
    addr_set_port(&a, f->port);
    if (!session_allows(s, f->session, &a)) {
        mpt_addr_str(&a, host, sizeof(host));
        *strrchr(host, ':') = '\0';
        if (host[0] == '[') {
            memmove(host, host + 1, strlen(host));
            host[strlen(host) - 1] = '\0';
        }
        refuse(s, f->session, now, f->id, host, f->port, MPT_FLOW_NOT_ALLOWED, q);
        flow_close(s, slot, q);
        return;
    }
    o = mpt_outq_push(q, MPT_OUT_FLOW_OPEN, NULL, 0, slot);
    if (o) {
        o->target = MPT_TARGET_NAMED;
        o->addr = a;
    }
    send_status(s, &s->sessions[f->session], now, f->id, MPT_FLOW_OPEN, q);
    h = held_of(s, slot);
    if (h) {
        /* Its first datagram, after the open (the queue keeps its order). */
        uint8_t *d = o && h->len ? mpt_outq_alloc(q, h->len) : NULL;
        if (o && (d || !h->len)) {
            if (d)
                memcpy(d, h->data, h->len);
            if (mpt_outq_push(q, MPT_OUT_FLOW, d, h->len, slot)) {
                s->ctr.app_tx++;
                s->held_delivered++;
            }
        }
        held_release(s, h);
    }
}

/* Holds the datagram of flow `slot`, whose name is being resolved, if it is the flow's first to
 * come and there is room: it goes to the target when the flow opens. Else it is dropped. */
static void hold(struct mpt_server *s, uint32_t slot, const uint8_t *data, size_t len)
{
    if (len <= MPT_SERVER_HELD_MAX && s->nheld < MPT_SERVER_HELD && !held_of(s, slot)) {
        for (unsigned i = 0; i < MPT_SERVER_HELD; i++) {
            struct mpt_server_held *h = &s->held[i];
            if (h->flow != MPT_NIL)
                continue;
            h->flow = slot;
            h->len = (uint32_t)len;
            memcpy(h->data, data, len);
            s->nheld++;
            s->held_total++;
            return;
        }
    }
    s->ctr.drops[MPT_DROP_NOSESSION]++; /* its name is being resolved */
}

void mpt_server_on_resolved(struct mpt_server *s, uint64_t now, uint32_t flow, uint32_t gen,
                            int status, const struct mpt_addr *addr, struct mpt_outq *q)
{
    const struct mpt_name *e;
    uint32_t f;

    (void)flow; /* the answer belongs to the lookup, whichever flows wait for it now */
    e = mpt_names_answer(&s->names, gen, status, addr, now);
    s->lookups = s->names.pending;
    if (!e)
        return;
    f = s->flow_slots.head;
    while (f != MPT_NIL) {
        uint32_t next = s->flow_slots.next[f];
        if (s->flows[f].session != MPT_NIL && s->flows[f].pending && s->flows[f].gen == gen)
            resolved_flow(s, now, f, e, q);
        f = next;
    }
}

/* The reorder buffer (§8.1) holds a session's datagrams for order in balance mode. */
static int reorder_on(const struct mpt_server *s, const struct mpt_server_session *ss)
{
    return s->p.reorder_cap_ms && ss->mode == MPT_CLIENT_BALANCE;
}

/* How long the datagrams missing before one that came over path slot `path` are waited for: the
 * delay difference between it and the slowest path heard lately, and a margin; and (*hold) how
 * long it is held in any case, to take as long as over the slowest path (§8.1). */
static uint64_t reorder_wait(const struct mpt_server *s, uint32_t sslot, unsigned path,
                             uint64_t now, uint64_t *hold)
{
    const struct mpt_server_session *ss = &s->sessions[sslot];
    const struct mpt_owd *owd[MPT_MAX_PATHS];
    uint64_t srtt[MPT_MAX_PATHS];
    uint32_t mask = 0;

    for (unsigned i = 0; i < ss->npaths; i++) {
        srtt[i] = ss->paths[i].srtt_us;
        owd[i] = &ss->paths[i].owd;
        if (now - ss->paths[i].last_rx_us < PATH_ACTIVE_US)
            mask |= 1u << i;
    }
    return mpt_reorder_times(owd, srtt, mask, ss->npaths, path, s->reorder.q[sslot].extra_us,
                             (uint64_t)s->p.reorder_cap_ms * 1000, hold);
}

/* Hands session sslot's datagrams whose turn has come (all of them with flush) to their flows'
 * sockets, as far as the output queue has room; the rest wait (the driver is woken). */
static void reorder_release(struct mpt_server *s, uint64_t now, uint32_t sslot, int flush,
                            struct mpt_outq *q)
{
    while (s->reorder.q[sslot].n) {
        const struct mpt_reorder_ent *e;
        uint8_t *data;

        if (q->max - q->n < 2 || q->cap - q->used < MPT_REORDER_CHUNK + 64) {
            s->wake = 1;
            return;
        }
        e = mpt_reorder_pop(&s->reorder, sslot, &s->sessions[sslot].keys.rx_window, now, flush);
        if (!e)
            return;
        /* Its flow may have closed meanwhile (and its slot gone to another). */
        if (s->flows[e->tag].session != sslot || s->flows[e->tag].id != e->tag2) {
            s->ctr.drops[MPT_DROP_SESSION]++;
            continue;
        }
        data = mpt_outq_alloc(q, e->len);
        memcpy(data, e->data, e->len);
        if (mpt_outq_push(q, MPT_OUT_FLOW, data, e->len, e->tag))
            s->ctr.app_tx++;
    }
}

/* Held datagrams of a session re-keyed since (its counters start again), or held while the mode
 * changed to one without ordering, go now, in order. */
static void reorder_sync(struct mpt_server *s, uint64_t now, uint32_t sslot, struct mpt_outq *q)
{
    const struct mpt_server_session *ss = &s->sessions[sslot];
    struct mpt_reorder_q *rq;

    if (!s->reorder.q) {
        /* Allocated for the first session that orders (§8.1). */
        if (!reorder_on(s, ss) || now < s->reorder_retry_us)
            return;
        if (mpt_reorder_init(&s->reorder, s->p.max_sessions, MPT_SERVER_REORDER_ENTRIES) != 0) {
            s->reorder_retry_us = now + ALLOC_RETRY_US;
            return;
        }
    }
    rq = &s->reorder.q[sslot];
    if (rq->sid == ss->sid && (reorder_on(s, ss) || !rq->n))
        return;
    if (rq->n)
        reorder_release(s, now, sslot, 1, q);
    if (!rq->n)
        mpt_reorder_reset(&s->reorder, sslot, ss->sid);
}

/* A datagram of flow `slot` to send to its target: 0 to send it at once, 1 if the reorder buffer
 * holds it (copied) until the datagrams before it have come. */
static int reorder_hold(struct mpt_server *s, uint64_t now, uint32_t sslot, uint32_t slot,
                        const uint8_t *data, size_t len)
{
    const struct mpt_server_session *ss = &s->sessions[sslot];
    uint64_t wait, hold;

    if (reorder_on(s, ss) && !s->reorder.q)
        s->reorder_nomem++;
    if (!s->reorder.q || !s->rx_fresh || s->rx_slot != sslot || !reorder_on(s, ss) ||
        s->reorder.q[sslot].sid != ss->sid)
        return 0;
    wait = reorder_wait(s, sslot, s->rx_path, now, &hold);
    if (mpt_reorder_arrive(&s->reorder, sslot, &ss->keys.rx_window, s->rx_ctr, now, wait, hold,
                           data, len, slot, s->flows[slot].id) == MPT_REORDER_NOW)
        return 0;
    if (mpt_reorder_deadline(&s->reorder, sslot) < s->timer_at_us)
        s->wake = 1; /* the driver's timer must wake earlier, when its gap is given up */
    return 1;
}

static void on_flow_data(struct mpt_server *s, uint64_t now, uint32_t sslot, const uint8_t *m,
                         size_t n, struct mpt_outq *q)
{
    struct mpt_server_session *ss = &s->sessions[sslot];
    uint8_t flags = m[1];
    uint16_t target = mpt_get16(m + 2), port = 0;
    uint32_t id = mpt_get32(m + 4), slot;
    size_t hdr = MPT_FLOW_HDR_LEN;
    char host[MPT_TARGET_HOST_MAX + 1];
    struct mpt_server_flow *f;
    struct mpt_out *o;

    if ((flags & ~(MPT_FLOW_F_TARGET | MPT_FLOW_F_NAMED)) ||
        ((flags & MPT_FLOW_F_TARGET) && !(flags & MPT_FLOW_F_NAMED)) ||
        ((flags & MPT_FLOW_F_NAMED) && target != 0)) {
        s->ctr.drops[MPT_DROP_MALFORMED]++;
        return;
    }
    if (flags & MPT_FLOW_F_TARGET) {
        int r = mpt_target_decode(m + hdr, n - hdr, host, &port);
        if (r < 0) {
            s->ctr.drops[MPT_DROP_MALFORMED]++;
            snprintf(host, sizeof(host), "(malformed)");
            refuse(s, sslot, now, id, host, 0, MPT_FLOW_BAD_TARGET, q);
            return;
        }
        hdr += (size_t)r;
    }
    slot = mpt_index_find(&s->flow_by_key, flow_key(sslot, id));
    if (slot == MPT_NIL && (flags & MPT_FLOW_F_NAMED)) {
        if (!(flags & MPT_FLOW_F_TARGET)) {
            /* Forgotten here (expired, or a new session): the client sends the target again. */
            s->ctr.drops[MPT_DROP_SESSION]++;
            send_status(s, ss, now, id, MPT_FLOW_UNKNOWN, q);
            return;
        }
        if (open_named(s, now, sslot, id, host, port, &slot, q) != 0) {
            slot = mpt_index_find(&s->flow_by_key, flow_key(sslot, id));
            if (slot != MPT_NIL && s->flows[slot].pending)
                hold(s, slot, m + hdr, n - hdr);
            return;
        }
    } else if (slot == MPT_NIL) {
        /* The default target: [server]'s (index 0), or that of a peer with its own, which the
         * driver is given as an address, as if the flow had named it. */
        const struct mpt_server_peer *pr = own_peer(s, sslot);
        if (target >= (pr ? 1u : s->p.ntargets)) {
            s->ctr.drops[MPT_DROP_MALFORMED]++;
            if (!pr && s->p.ntargets == 0) {
                snprintf(host, sizeof(host), "(the default)");
                refuse(s, sslot, now, id, host, 0, MPT_FLOW_NOT_ALLOWED, q);
            }
            return;
        }
        if (pr && !pr->target.u.sa.sa_family) {
            snprintf(host, sizeof(host), "(the default)");
            refuse(s, sslot, now, id, host, 0, MPT_FLOW_NOT_ALLOWED, q);
            return;
        }
        slot = flow_alloc(s, now, sslot, q);
        if (slot == MPT_NIL)
            return;
        flow_insert(s, slot, sslot, id, pr ? MPT_TARGET_NAMED : target, now);
        s->flows[slot].own = pr != NULL;
        MPT_DEBUG("flow %u of session %016llx opened towards %s target (%u flows in use)", id,
                  (unsigned long long)ss->sid, pr ? "its peer's" : "the default",
                  s->flow_slots.used);
        o = mpt_outq_push(q, MPT_OUT_FLOW_OPEN, NULL, 0, slot);
        if (o && pr) {
            o->target = MPT_TARGET_NAMED;
            o->addr = pr->target;
        } else if (o) {
            o->target = target;
        }
    } else if (s->flows[slot].pending) {
        hold(s, slot, m + hdr, n - hdr);
        return;
    } else if (flags & MPT_FLOW_F_TARGET) {
        send_status(s, ss, now, id, MPT_FLOW_OPEN, q); /* the client has not heard yet */
    }
    f = &s->flows[slot];
    f->last_us = now;
    mpt_slots_touch(&s->flow_slots, slot);
    if (reorder_hold(s, now, sslot, slot, m + hdr, n - hdr))
        return;
    if (mpt_outq_push(q, MPT_OUT_FLOW, m + hdr, n - hdr, slot))
        s->ctr.app_tx++;
}

int mpt_server_flow_reopen(const struct mpt_server *s, uint32_t slot, struct mpt_addr *to)
{
    const struct mpt_server_flow *f;
    const struct mpt_server_peer *pr;

    if (slot >= s->p.max_flows || s->flows[slot].session == MPT_NIL || s->flows[slot].pending)
        return -1;
    f = &s->flows[slot];
    if (f->target != MPT_TARGET_NAMED)
        return 0;
    if (!f->own)
        return 2;
    /* A reload may have changed the peer's rules: its default target as they say now. */
    pr = own_peer(s, f->session);
    if (!pr)
        return 0;
    if (!pr->target.u.sa.sa_family)
        return -1;
    *to = pr->target;
    return 1;
}

void mpt_server_on_path_local(struct mpt_server *s, uint64_t now, const struct mpt_addr *from,
                              const struct mpt_addr *local, const uint8_t *buf, size_t len,
                              struct mpt_outq *q)
{
    if (local)
        s->rx_local = *local;
    else
        memset(&s->rx_local, 0, sizeof(s->rx_local));
    mpt_server_on_path(s, now, from, buf, len, q);
    memset(&s->rx_local, 0, sizeof(s->rx_local));
}

/* Sends `p` (not validated) its challenge, within its budget, unless one went out lately. */
static void send_challenge(struct mpt_server *s, struct mpt_server_session *ss,
                           struct mpt_server_path *p, uint64_t now, struct mpt_outq *q)
{
    const size_t need = MPT_DATA_OVERHEAD + MPT_PATH_CHALLENGE_LEN;
    uint8_t *out, *m;
    struct mpt_out *o;
    size_t n;

    if (p->challenge_us && now - p->challenge_us < CHALLENGE_RETRY_US)
        return;
    if (p->amp_tx + need > MPT_SERVER_AMP_FACTOR * p->amp_rx) {
        s->amp_refused++;
        return;
    }
    out = mpt_outq_alloc(q, need);
    if (!out)
        return;
    m = mpt_data_inner(out);
    memset(m, 0, MPT_PATH_CHALLENGE_LEN);
    m[0] = MPT_INNER_PATH_CHALLENGE;
    memcpy(m + MPT_CHALLENGE_OFF, p->challenge, MPT_CHALLENGE_LEN);
    n = seal(s, ss, now, out, MPT_PATH_CHALLENGE_LEN);
    o = mpt_outq_push(q, MPT_OUT_PATH, out, n, 0);
    if (!o)
        return;
    o->addr = p->addr;
    o->src = p->local;
    p->challenge_us = now ? now : 1;
    p->amp_tx += n;
    p->tx_dgrams++;
    p->tx_bytes += n;
    s->challenges++;
    s->ctr.tx_dgrams++;
    s->ctr.tx_bytes += n;
}

/* FLOW_CLOSE (§5): the client has forgotten these flows of session sslot; they close here at once
 * (ids not open, or closed already by an earlier copy, are ignored). */
static void on_flow_close(struct mpt_server *s, uint32_t sslot, const uint8_t *m, size_t n,
                          struct mpt_outq *q)
{
    unsigned count = n >= MPT_FLOW_CLOSE_HDR_LEN ? mpt_get16(m + 2) : 0;

    if (!count || count > MPT_FLOW_CLOSE_MAX_IDS || m[1] != 0 ||
        n != MPT_FLOW_CLOSE_HDR_LEN + 4 * (size_t)count) {
        s->ctr.drops[MPT_DROP_MALFORMED]++;
        return;
    }
    for (unsigned i = 0; i < count; i++) {
        uint32_t id = mpt_get32(m + MPT_FLOW_CLOSE_HDR_LEN + 4 * i);
        uint32_t slot = mpt_index_find(&s->flow_by_key, flow_key(sslot, id));
        if (slot == MPT_NIL)
            continue;
        flow_close(s, slot, q);
        s->flows_closed_by_client++;
    }
}

/* An authenticated, fresh DATA datagram of session slot `slot` under keys k: its path learned,
 * its copy counted (§5), its inner message handled. Returns the path if it is to be challenged
 * (after everything else this input queues: the arena below it may be reused until then). */
/* fec mode (§11): a block missing sources waits for repairs MPT_SERVER_FEC_WAIT_US. Waiting holds
 * back nothing else (no datagram waits for order in this mode), so a slow or stalled path's late
 * sources get the whole wait to complete their block. */
static uint64_t fec_wait(const struct mpt_server_session *ss, uint64_t now)
{
    (void)ss;
    (void)now;
    return MPT_SERVER_FEC_WAIT_US;
}

/* A block the decoder holds for its missing sources (MPT_FEC_HOLD_US) is decoded by the timer
 * if they do not come: the driver's timer must wake by then. */
static void fec_held(struct mpt_server *s)
{
    if (s->fec_rx.ready_us < s->timer_at_us)
        s->wake = 1;
}

/* Datagrams the decoder rebuilt: each goes on as if its DATA datagram had come, if the window
 * says its counter never did (and records it): a repair resurrects nothing (§11). */
static void fec_deliver(struct mpt_server *s, uint64_t now, uint32_t slot, struct mpt_keys *k,
                        struct mpt_outq *q)
{
    struct mpt_server_session *ss = &s->sessions[slot];
    const struct mpt_fec_out *o;

    while ((o = mpt_fec_rx_take(&s->fec_rx))) {
        const uint8_t *m = o->data;
        size_t n = o->len;
        uint8_t *plain;

        if (o->sid != ss->sid || mpt_window_check(&k->rx_window, o->ctr) != 0)
            continue;
        mpt_window_update(&k->rx_window, o->ctr);
        ss->fec_recovered++;
        s->fec_recovered++;
        if (m[0] == MPT_INNER_PIECE && !(n = mpt_split_add(&s->split, now, o->sid, m, n, &m)))
            continue;
        if (m[0] != MPT_INNER_FLOW || n < MPT_FLOW_HDR_LEN || !(plain = mpt_outq_alloc(q, n))) {
            s->ctr.drops[MPT_DROP_MALFORMED]++;
            continue;
        }
        memcpy(plain, m, n);
        on_flow_data(s, now, slot, plain, n, q);
    }
}

static struct mpt_server_path *on_data(struct mpt_server *s, uint64_t now, uint32_t slot,
                                       struct mpt_keys *k, const struct mpt_addr *from,
                                       const uint8_t *buf, size_t len, uint8_t *plain, int n,
                                       size_t mark, struct mpt_outq *q)
{
    struct mpt_server_session *ss = &s->sessions[slot];
    uint64_t sid = mpt_data_sid(buf);
    int probe = plain[0] == MPT_INNER_PROBE && n >= MPT_PROBE_MIN_LEN && plain[1] < MPT_MAX_PATHS;
    struct mpt_server_path *p, *challenge;
    struct mpt_copies *r;

    p = path_update(s, ss, now, from, probe ? plain[1] : MPT_PATH_ID_UNKNOWN);
    s->rx_path = (unsigned)(p - ss->paths);
    p->local = s->rx_local;
    p->rx_dgrams++;
    p->rx_bytes += len;
    r = copies_for(s, slot, sid, 1);
    mpt_copies_accept(r, &k->rx_window, mpt_get64(buf + MPT_DATA_OFF_CTR), buf + len - MPT_TAG_LEN,
                      (unsigned)(p - ss->paths));
    if (!p->validated)
        p->amp_rx += len;
    challenge = p->validated ? NULL : p;
    if (plain[0] == MPT_INNER_PATH_RESPONSE) {
        q->used = mark;
        if (n >= MPT_PATH_CHALLENGE_LEN)
            on_path_response(s, ss, p, plain);
        else
            s->ctr.drops[MPT_DROP_MALFORMED]++;
        return p->validated ? NULL : challenge;
    }
    if (probe) {
        on_probe(ss, p, plain, (size_t)n, now);
        if (ss->mode == MPT_CLIENT_FEC)
            fec_rx_ready(s, now);
        /* An address not validated gets nothing but its challenge. */
        if (p->validated)
            send_probe_ack(s, ss, p, plain, q, k == &ss->keys ? ss->sid : ss->prev_sid, k, now);
        return challenge;
    }
    if (plain[0] == MPT_INNER_REPAIR) {
        q->used = mark;
        if (k == &ss->keys && fec_rx_ready(s, now)) {
            mpt_fec_rx_repair(&s->fec_rx, sid, mpt_get64(buf + MPT_DATA_OFF_CTR), plain, (size_t)n,
                              now, fec_wait(ss, now));
            fec_held(s);
        }
        return challenge;
    }
    if (ss->mode == MPT_CLIENT_FEC && k == &ss->keys && s->fec_rx.nsrc) {
        mpt_fec_rx_source(&s->fec_rx, sid, mpt_get64(buf + MPT_DATA_OFF_CTR), plain, (size_t)n,
                          now);
        fec_held(s);
    }
    if (plain[0] == MPT_INNER_PIECE) {
        /* The last piece of a FLOW message: handled as the message would be, had it come whole. */
        const uint8_t *m;
        q->used = mark;
        n = (int)mpt_split_add(&s->split, now, sid, plain, (size_t)n, &m);
        if (!n)
            return challenge;
        plain = mpt_outq_alloc(q, (size_t)n);
        if (!plain) {
            s->ctr.drops[MPT_DROP_LIMIT]++;
            return challenge;
        }
        memcpy(plain, m, (size_t)n);
    }
    if (plain[0] == MPT_INNER_FLOW && n >= MPT_FLOW_HDR_LEN) {
        on_flow_data(s, now, slot, plain, (size_t)n, q);
        return challenge;
    }
    if (plain[0] == MPT_INNER_FLOW_CLOSE) {
        q->used = mark;
        on_flow_close(s, slot, plain, (size_t)n, q);
        return challenge;
    }
    q->used = mark;
    s->ctr.drops[MPT_DROP_MALFORMED]++;
    return challenge;
}

static void path_input(struct mpt_server *s, uint64_t now, const struct mpt_addr *from,
                       const uint8_t *buf, size_t len, struct mpt_outq *q)
{
    struct mpt_server_session *ss;
    struct mpt_server_path *p;
    struct mpt_keys *k;
    uint8_t *plain;
    uint32_t slot;
    uint64_t sid;
    size_t mark;
    int n;

    switch (mpt_wire_classify(buf, len)) {
    case MPT_TYPE_INIT:
        on_init(s, now, from, buf, len, q);
        return;
    case MPT_TYPE_DATA:
        break;
    default:
        s->ctr.drops[MPT_DROP_MALFORMED]++;
        if (len == MPT_V1_HELLO_LEN && buf[0] == MPT_PROTO_VERSION_1 && buf[1] == 1 &&
            MPT_LOG_ON(MPT_LOGL_WARN) && mpt_log_due(&s->warn_v1_us, now, 60000000)) {
            char a[MPT_ADDR_STRLEN];
            MPT_WARN("a handshake of protocol version 1 from %s: that client runs an older "
                     "mptunnel, whose protocol this server no longer speaks; upgrade it (this "
                     "warning at most once a minute)",
                     mpt_addr_str(from, a, sizeof(a)));
        }
        return;
    }
    sid = mpt_data_sid(buf);
    slot = session_find(s, sid);
    if (slot == MPT_NIL) {
        /* The id before a re-key, while the client may not have its REPLY yet. */
        slot = mpt_index_find(&s->session_by_prev, sid);
        if (slot == MPT_NIL || now >= s->sessions[slot].prev_until_us) {
            s->ctr.drops[MPT_DROP_SESSION]++;
            return;
        }
        k = &s->sessions[slot].prev_keys;
    } else {
        k = &s->sessions[slot].keys;
    }
    ss = &s->sessions[slot];
    if (!mpt_keys_live(k, now)) {
        s->ctr.drops[MPT_DROP_EXPIRED]++;
        return;
    }
    mark = q->used;
    plain = mpt_outq_alloc(q, len - MPT_DATA_OVERHEAD);
    if (!plain) {
        s->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    s->ctr.opened++;
    n = mpt_data_open(k, buf, len, plain);
    if (n < 0) {
        q->used = mark;
        if (n == MPT_OPEN_DUPLICATE) {
            /* A copy another path delivered first: it counts on its own path for the loss
             * figures only if it is the accepted datagram's copy and that path's first (§5). */
            struct mpt_copies *r = copies_for(s, slot, sid, 0);
            s->ctr.duplicates++;
            p = path_find(ss, from);
            if (p && r &&
                (mpt_copies_dup(r, &k->rx_window, mpt_get64(buf + MPT_DATA_OFF_CTR),
                                buf + len - MPT_TAG_LEN, (unsigned)(p - ss->paths)) ||
                 (ss->mode == MPT_CLIENT_FEC && s->fec_rx.nsrc &&
                  mpt_fec_rx_late(&s->fec_rx, sid, mpt_get64(buf + MPT_DATA_OFF_CTR))))) {
                p->rx_dgrams++;
                p->rx_bytes += len;
            }
        } else if (n == -MPT_DROP_AUTH) {
            auth_failed(s, now, from, "a datagram of a known session");
        } else {
            s->ctr.drops[-n]++;
        }
        return;
    }
    /* The client's first datagram under the new id: it has the REPLY, the old id is done. */
    if (k == &ss->keys && ss->prev_sid)
        prev_forget(s, slot);
    ss->confirmed = 1;
    ss->last_rx_us = now;
    mpt_slots_touch(&s->session_slots, slot);
    s->rx_ctr = mpt_get64(buf + MPT_DATA_OFF_CTR);
    s->rx_slot = slot;
    s->rx_fresh = k == &ss->keys;
    reorder_sync(s, now, slot, q);
    s->ctr.rx_dgrams++;
    s->ctr.rx_bytes += len;
    p = on_data(s, now, slot, k, from, buf, len, plain, n, mark, q);
    fec_deliver(s, now, slot, k, q);
    if (p)
        send_challenge(s, ss, p, now, q);
}

void mpt_server_on_path(struct mpt_server *s, uint64_t now, const struct mpt_addr *from,
                        const uint8_t *buf, size_t len, struct mpt_outq *q)
{
    s->rx_slot = MPT_NIL;
    path_input(s, now, from, buf, len, q);
    if (s->rx_slot != MPT_NIL && s->reorder.q && s->reorder.q[s->rx_slot].n)
        reorder_release(s, now, s->rx_slot, 0, q);
    s->rx_slot = MPT_NIL;
}

/* The paths that carry a reply, by slot: those validated (§7) that the client's probes ask for
 * (§8) and that were heard lately; before any probe, every validated path heard lately. *best is
 * the validated path heard last, or -1. */
static uint32_t return_paths(const struct mpt_server_session *ss, uint64_t now, int *best)
{
    uint32_t mask = 0;

    *best = -1;
    for (unsigned i = 0; i < ss->npaths; i++) {
        const struct mpt_server_path *p = &ss->paths[i];
        if (!p->validated)
            continue;
        if (*best < 0 || p->last_rx_us > ss->paths[*best].last_rx_us)
            *best = (int)i;
        if (now - p->last_rx_us >= PATH_ACTIVE_US)
            continue;
        /* A path not yet named by a probe is new, and the client sends on it: use it. */
        if (ss->have_hints && p->id < MPT_MAX_PATHS && !ss->use[p->id])
            continue;
        mask |= 1u << i;
    }
    return mask;
}

void mpt_server_on_target(struct mpt_server *s, uint64_t now, uint32_t flow, const uint8_t *buf,
                          size_t len, struct mpt_outq *q)
{
    struct mpt_server_flow *f;
    struct mpt_server_session *ss;
    uint8_t *out, *inner;

    if (flow >= s->p.max_flows || s->flows[flow].session == MPT_NIL)
        return;
    f = &s->flows[flow];
    ss = &s->sessions[f->session];
    s->ctr.app_rx++;
    if (len > MPT_MAX_PAYLOAD || ss->npaths == 0) {
        s->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    f->last_us = now;
    mpt_slots_touch(&s->flow_slots, flow);
    out = mpt_outq_alloc(q, MPT_DATA_OVERHEAD + MPT_FLOW_HDR_LEN + len);
    if (!out) {
        s->ctr.drops[MPT_DROP_LIMIT]++;
        return;
    }
    inner = mpt_data_inner(out);
    inner[0] = MPT_INNER_FLOW;
    inner[1] = 0;
    mpt_put16(inner + 2, f->target == MPT_TARGET_NAMED ? 0 : f->target);
    mpt_put32(inner + 4, f->id);
    memcpy(inner + MPT_FLOW_HDR_LEN, buf, len);
    send_inner(s, ss, now, out, MPT_FLOW_HDR_LEN + len, q);
}

static void forget_paths(struct mpt_server_session *ss, uint64_t now)
{
    for (unsigned i = 0; i < ss->npaths;) {
        if (now - ss->paths[i].last_rx_us >= PATH_FORGET_US)
            ss->paths[i] = ss->paths[--ss->npaths];
        else
            i++;
    }
}

/* Counters of the last period, at debug level. */
static void log_stats(struct mpt_server *s, uint64_t now)
{
    const struct mpt_counters *k = &s->ctr, *o = &s->stats_ctr;

    if (!s->stats_next_us) {
        s->stats_next_us = now + MPT_CLIENT_STATS_US;
        return;
    }
    if (now < s->stats_next_us)
        return;
    s->stats_next_us = now + MPT_CLIENT_STATS_US;
    MPT_DEBUG("last %llu s: %llu datagrams to the target, %llu back; %llu received on paths, "
              "%llu sent, %llu duplicates dropped, %llu rejected, %llu handshakes; sessions %u in "
              "use; flows %u in use, %llu opened, %llu closed",
              MPT_CLIENT_STATS_US / 1000000, (unsigned long long)(k->app_tx - o->app_tx),
              (unsigned long long)(k->app_rx - o->app_rx),
              (unsigned long long)(k->rx_dgrams - o->rx_dgrams),
              (unsigned long long)(k->tx_dgrams - o->tx_dgrams),
              (unsigned long long)(k->duplicates - o->duplicates),
              (unsigned long long)(mpt_counters_rejected(k) - mpt_counters_rejected(o)),
              (unsigned long long)(k->handshakes - o->handshakes), s->session_slots.used,
              s->flow_slots.used, (unsigned long long)(s->flows_opened - s->stats_flows_opened),
              (unsigned long long)(s->flows_closed - s->stats_flows_closed));
    s->stats_ctr = s->ctr;
    s->stats_flows_opened = s->flows_opened;
    s->stats_flows_closed = s->flows_closed;
}

uint64_t mpt_server_on_timer(struct mpt_server *s, uint64_t now, struct mpt_outq *q)
{
    uint64_t flow_to = (uint64_t)s->p.flow_timeout_ms * 1000;
    uint64_t sess_to = (uint64_t)s->p.session_timeout_ms * 1000;
    uint64_t next = now + 1000000;
    uint32_t i;

    while ((i = mpt_slots_oldest(&s->flow_slots)) != MPT_NIL &&
           now - s->flows[i].last_us >= flow_to)
        flow_close(s, i, q);
    i = mpt_slots_oldest(&s->flow_slots);
    if (i != MPT_NIL && s->flows[i].last_us + flow_to < next)
        next = s->flows[i].last_us + flow_to;

    for (i = mpt_slots_oldest(&s->session_slots); i != MPT_NIL;) {
        struct mpt_server_session *ss = &s->sessions[i];
        uint32_t newer = s->session_slots.prev[i];
        uint64_t idle = now - ss->last_rx_us;
        if (idle >= sess_to || (!ss->confirmed && now - ss->created_us >= HALF_OPEN_US)) {
            MPT_INFO("session %016llx closed after %llu s idle", (unsigned long long)ss->sid,
                     (unsigned long long)(idle / 1000000));
            session_release(s, i, q);
        } else {
            forget_paths(ss, now);
            if (ss->prev_sid && now >= ss->prev_until_us)
                prev_forget(s, i);
            /* Keys past their lifetime are wiped: the session waits for the client's re-key
             * (its resume key still proves it), and nothing is sealed or opened meanwhile. */
            if (ss->keys.expires_us && !mpt_keys_live(&ss->keys, now))
                mpt_keys_wipe(&ss->keys);
            reorder_sync(s, now, i, q);
            if (s->reorder.q && s->reorder.q[i].n) {
                uint64_t d;
                reorder_release(s, now, i, 0, q);
                d = mpt_reorder_deadline(&s->reorder, i);
                if (d < next)
                    next = d;
            }
        }
        i = newer;
    }
    authlog_flush(s, now);
    log_stats(s, now);
    {
        uint64_t sid, f, t;
        /* Blocks held for their missing sources that did not come: decoded now. */
        while (mpt_fec_rx_due(&s->fec_rx, now, &sid)) {
            uint32_t slot = mpt_index_find(&s->session_by_sid, sid);
            if (slot != MPT_NIL)
                fec_deliver(s, now, slot, &s->sessions[slot].keys, q);
        }
        f = mpt_fec_rx_expire(&s->fec_rx, now);
        t = fec_timer(s, now, q);
        if (f < next)
            next = f;
        if (t < next)
            next = t;
    }
    if (s->wake)
        next = now;
    s->wake = 0;
    s->timer_at_us = next > now ? next : now + 1;
    return s->timer_at_us;
}

void mpt_server_close_all(struct mpt_server *s, struct mpt_outq *q)
{
    uint32_t i;

    while ((i = mpt_slots_oldest(&s->session_slots)) != MPT_NIL)
        session_release(s, i, q);
}
