/* A deterministic network simulation: one mpt_client with N paths and one mpt_server wired
 * through a discrete-event network in virtual time, with applications on the client side and an
 * echo target behind the server. Each path has its own seeded impairments per direction (the
 * bridge's model, core/impair.h); libsodium's generator is replaced by a seeded one, so a seed
 * reproduces a run exactly. Each case prints its figures and asserts them. */
#include <arpa/inet.h>
#include <math.h>
#include <sodium.h>

#include "sim.h"

#define PAYLOAD_HDR 24

/* ---- deterministic randomness for libsodium ---- */

static struct mpt_rng sodium_rng;

static const char *det_name(void)
{
    return "mptunnel-sim";
}

static uint32_t det_random(void)
{
    return (uint32_t)mpt_rng_next(&sodium_rng);
}

static void det_buf(void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n) {
        uint64_t r = mpt_rng_next(&sodium_rng);
        size_t k = n < 8 ? n : 8;
        memcpy(p, &r, k);
        p += k;
        n -= k;
    }
}

static struct randombytes_implementation det_impl = {
    .implementation_name = det_name,
    .random = det_random,
    .buf = det_buf,
};

/* ---- the simulated world ---- */

enum ev_kind {
    EV_TO_SERVER,   /* a datagram arriving at the server from path `path` */
    EV_TO_CLIENT,   /* a datagram arriving at the client on path `path` */
    EV_TARGET_ECHO, /* the target's answer reaching flow socket `flow` (generation `gen`) */
    EV_APP_SEND,    /* application `app` sends its next datagram */
    EV_CONTROL,     /* a scenario's action, `code` */
};

struct ev {
    uint64_t at, seq;
    uint8_t kind, path;
    uint32_t flow, gen, len, app;
    int code;
    uint8_t *data;
};

static struct mpt_addr addr4(uint32_t ip, uint16_t port)
{
    struct mpt_addr a;

    memset(&a, 0, sizeof(a));
    a.u.in4.sin_family = AF_INET;
    a.u.in4.sin_addr.s_addr = htonl(ip);
    a.u.in4.sin_port = htons(port);
    return a;
}

static int ev_before(const struct ev *a, const struct ev *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void push(struct sim *w, struct ev e)
{
    size_t i;

    if (w->nheap == w->capheap) {
        w->capheap = w->capheap ? 2 * w->capheap : 1024;
        w->heap = realloc(w->heap, w->capheap * sizeof(*w->heap));
        ASSERT(w->heap);
    }
    e.seq = w->seq++;
    i = w->nheap++;
    while (i > 0 && ev_before(&e, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = e;
}

static struct ev pop(struct sim *w)
{
    struct ev top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0;

    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < w->nheap && ev_before(&w->heap[l], &last))
            m = l;
        if (l + 1 < w->nheap && ev_before(&w->heap[l + 1], m == i ? &last : &w->heap[m]))
            m = l + 1;
        if (m == i)
            break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (w->nheap)
        w->heap[i] = last;
    return top;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);

    ASSERT(d);
    memcpy(d, p, n);
    return d;
}

/* Sends a datagram into one direction of a path: the impairment model decides its copies. */
static void path_send(struct sim *w, int to_server, unsigned path, const uint8_t *data, size_t len)
{
    struct mpt_impair *im = to_server ? &w->up[path] : &w->down[path];
    struct mpt_impair_verdict v;

    w->path_dgrams[!to_server][path]++;
    w->path_bytes[!to_server][path] += len;
    if (w->filter && !w->filter(w, to_server, path, &data, &len))
        return;
    mpt_impair_decide(im, w->now, len, &v);
    for (unsigned i = 0; i < v.ncopies; i++) {
        struct ev e = {.at = v.copy[i].send_at_us,
                       .kind = to_server ? EV_TO_SERVER : EV_TO_CLIENT,
                       .path = (uint8_t)path,
                       .len = (uint32_t)len};
        e.data = dup_bytes(data, len);
        mpt_impair_apply(&v.copy[i], e.data, len);
        push(w, e);
    }
}

/* ---- payloads: who sent it, its number, when, which way; the rest derived from those ---- */

static uint8_t filler(uint32_t app, uint32_t seq, size_t i)
{
    uint64_t x = ((uint64_t)app << 32 | seq) * 0x9e3779b97f4a7c15ULL + i * 0xbf58476d1ce4e5b9ULL;

    x ^= x >> 29;
    return (uint8_t)(x * 0x94d049bb133111ebULL >> 56);
}

static size_t payload_make(uint8_t *buf, uint32_t app, uint32_t seq, uint64_t at, size_t len)
{
    mpt_put32(buf, app);
    mpt_put32(buf + 4, seq);
    mpt_put64(buf + 8, at);
    mpt_put32(buf + 16, 0); /* 0: towards the target; 1: an echo */
    mpt_put32(buf + 20, (uint32_t)len);
    for (size_t i = PAYLOAD_HDR; i < len; i++)
        buf[i] = filler(app, seq, i);
    return len;
}

/* 1 if the payload is intact and travels in direction `dir`. */
static int payload_ok(const struct sim *w, const uint8_t *buf, size_t len, uint32_t dir)
{
    uint32_t app, seq;

    if (len < PAYLOAD_HDR || mpt_get32(buf + 20) != len || mpt_get32(buf + 16) != dir)
        return 0;
    app = mpt_get32(buf);
    seq = mpt_get32(buf + 4);
    if (app >= w->cfg.napps || seq >= w->cfg.count)
        return 0;
    for (size_t i = PAYLOAD_HDR; i < len; i++)
        if (buf[i] != filler(app, seq, i))
            return 0;
    return 1;
}

/* ---- carrying out what core asks ---- */

static void note_limits(struct sim *w)
{
    if (w->s.session_slots.used > w->max_sessions_used)
        w->max_sessions_used = w->s.session_slots.used;
    if (w->s.flow_slots.used > w->max_flows_used)
        w->max_flows_used = w->s.flow_slots.used;
    if (mpt_client_flows(&w->c) > w->max_client_flows)
        w->max_client_flows = mpt_client_flows(&w->c);
    ASSERT_LE(w->s.session_slots.used, w->cfg.sp.max_sessions);
    ASSERT_LE(w->s.flow_slots.used, w->cfg.sp.max_flows);
    ASSERT_LE(mpt_client_flows(&w->c), w->cfg.cp.max_flows);
}

static void on_app_rx(struct sim *w, const struct mpt_addr *to, const uint8_t *buf, size_t len)
{
    uint32_t app, seq;
    int a = -1;

    for (unsigned i = 0; i < w->cfg.napps; i++)
        if (mpt_addr_equal(&w->apps[i].addr, to))
            a = (int)i;
    ASSERT(a >= 0);
    if (!payload_ok(w, buf, len, 1)) {
        w->corrupt_down++;
        return;
    }
    app = mpt_get32(buf);
    seq = mpt_get32(buf + 4);
    if (app != (uint32_t)a) {
        w->misdelivered++;
        return;
    }
    if (w->apps[a].down_seen[seq]) {
        w->dup_down++;
        return;
    }
    w->apps[a].down_seen[seq] = 1;
    w->apps[a].replies++;
    w->recv_down++;
    w->path_first[1][w->rx_path]++;
    if (w->deliver)
        w->deliver(w, 1, (unsigned)w->rx_path, app, seq);
}

static void client_drain(struct sim *w)
{
    for (unsigned i = 0; i < w->q.n; i++) {
        const struct mpt_out *o = &w->q.v[i];
        if (o->kind == MPT_OUT_PATH) {
            ASSERT_LT(o->index, w->cfg.npaths);
            path_send(w, 1, o->index, o->data, o->len);
        } else if (o->kind == MPT_OUT_APP) {
            on_app_rx(w, &o->addr, o->data, o->len);
        } else {
            ASSERT(0);
        }
    }
    mpt_outq_reset(&w->q);
    note_limits(w);
}

/* The target: checks what a flow socket delivers, and echoes it back after a while. */
static void on_target_rx(struct sim *w, uint32_t flow, const uint8_t *buf, size_t len)
{
    uint32_t app, seq;
    struct ev e = {.kind = EV_TARGET_ECHO, .flow = flow, .gen = w->flow_gen[flow]};

    if (!payload_ok(w, buf, len, 0)) {
        w->corrupt_up++;
        return;
    }
    app = mpt_get32(buf);
    seq = mpt_get32(buf + 4);
    /* One flow socket, one application. */
    if (w->flow_app[flow] < 0)
        w->flow_app[flow] = (int32_t)app;
    else if (w->flow_app[flow] != (int32_t)app)
        w->crossed_flows++;
    if (w->cfg.named && (w->flow_to[flow].u.in4.sin_addr.s_addr != htonl(0x0a000100 + app) ||
                         mpt_addr_port(&w->flow_to[flow]) != 53))
        w->misrouted++;
    if (w->apps[app].up_seen[seq]) {
        w->dup_up++;
        return;
    }
    w->apps[app].up_seen[seq] = 1;
    w->recv_up++;
    w->path_first[0][w->rx_path]++;
    if (w->deliver)
        w->deliver(w, 0, (unsigned)w->rx_path, app, seq);
    e.at = w->now + w->cfg.target_delay_us;
    e.len = (uint32_t)len;
    e.data = dup_bytes(buf, len);
    mpt_put32(e.data + 16, 1);
    push(w, e);
}

static void server_drain(struct sim *w)
{
    /* Closed sockets first: a slot may be opened again further down the queue. */
    for (uint32_t i = 0; i < w->s.nclosed; i++) {
        w->flow_gen[w->s.closed[i]]++;
        w->flow_app[w->s.closed[i]] = -1;
    }
    w->s.nclosed = 0;
    for (unsigned i = 0; i < w->q.n; i++) {
        const struct mpt_out *o = &w->q.v[i];
        int path = -1;
        switch (o->kind) {
        case MPT_OUT_PATH:
            for (unsigned p = 0; p < w->cfg.npaths; p++)
                if (mpt_addr_equal(&o->addr, &w->paddr[p]))
                    path = (int)p;
            if (path < 0) {
                w->dead_sent++; /* an address no path has (any more): lost */
                break;
            }
            path_send(w, 0, (unsigned)path, o->data, o->len);
            break;
        case MPT_OUT_FLOW_OPEN:
            ASSERT_LT(o->index, w->cfg.sp.max_flows);
            w->flow_opens++;
            w->flow_gen[o->index]++;
            w->flow_app[o->index] = -1;
            memset(&w->flow_to[o->index], 0, sizeof(w->flow_to[0]));
            if (o->target == MPT_TARGET_NAMED)
                w->flow_to[o->index] = o->addr;
            break;
        case MPT_OUT_FLOW:
            on_target_rx(w, o->index, o->data, o->len);
            break;
        default:
            ASSERT(0);
        }
    }
    mpt_outq_reset(&w->q);
    note_limits(w);
}

static void client_start(struct sim *w)
{
    struct mpt_client_params cp = w->cfg.cp;

    ASSERT_EQ(mpt_client_init(&w->c, &cp), 0);
    w->cdeadline = w->now;
}

static void server_start(struct sim *w)
{
    struct mpt_server_params sp = w->cfg.sp;

    ASSERT_EQ(mpt_server_init(&w->s, &sp), 0);
    w->sdeadline = w->now + SEC;
    /* A new process: every flow socket of the old one is gone. */
    for (uint32_t i = 0; i < sp.max_flows; i++) {
        w->flow_gen[i]++;
        w->flow_app[i] = -1;
    }
}

/* Replaces the client (or server) object, as a restart with kill -9 would. */
void sim_restart_client(struct sim *w)
{
    mpt_client_free(&w->c);
    client_start(w);
}

void sim_restart_server(struct sim *w)
{
    mpt_server_free(&w->s);
    server_start(w);
}

static const uint8_t secret[32] = {0x51, 0x4d, 0x5e, 0xc2, 7, 7, 7};

void cfg_defaults(struct sim_cfg *c, uint64_t seed)
{
    memset(c, 0, sizeof(*c));
    c->seed = seed;
    c->npaths = 3;
    c->napps = 1;
    c->count = 1000;
    c->interval_us = 1 * MS;
    c->min_len = 32;
    c->max_len = 200;
    c->target_delay_us = 1 * MS;
    c->start_us = 100 * MS;
    c->end_us = 20 * SEC;
    for (unsigned p = 0; p < SIM_MAX_PATHS; p++) {
        c->up[p].delay_us = c->down[p].delay_us = 20 * MS;
        c->up[p].jitter_us = c->down[p].jitter_us = 2 * MS;
    }
    c->cp.secret = secret;
    c->cp.max_flows = 1024;
    c->cp.flow_timeout_ms = 60000;
    c->cp.probe_interval_ms = 200;
    c->sp.secret = secret;
    c->sp.max_sessions = 64;
    c->sp.max_flows = 4096;
    c->sp.flow_timeout_ms = 60000;
    c->sp.session_timeout_ms = 120000;
    c->sp.ntargets = 1;
}

void sim_init(struct sim *w, const struct sim_cfg *cfg)
{
    memset(w, 0, sizeof(*w));
    w->cfg = *cfg;
    w->cfg.cp.npaths = cfg->npaths;
    mpt_rng_seed(&sodium_rng, cfg->seed, 1000);
    ASSERT_EQ(mpt_outq_init(&w->q, 4096, 4 << 20), 0);
    w->flow_gen = calloc(cfg->sp.max_flows, sizeof(*w->flow_gen));
    w->flow_app = calloc(cfg->sp.max_flows, sizeof(*w->flow_app));
    w->flow_to = calloc(cfg->sp.max_flows, sizeof(*w->flow_to));
    ASSERT(w->flow_gen && w->flow_app);
    for (unsigned p = 0; p < cfg->npaths; p++) {
        ASSERT_EQ(mpt_impair_init(&w->up[p], &cfg->up[p], cfg->seed, 2 * p), 0);
        ASSERT_EQ(mpt_impair_init(&w->down[p], &cfg->down[p], cfg->seed, 2 * p + 1), 0);
        w->paddr[p] = addr4(0xc6336400 + p, (uint16_t)(40000 + p)); /* the bridges */
    }
    for (unsigned a = 0; a < cfg->napps; a++) {
        struct app *ap = &w->apps[a];
        ap->addr = addr4(0x7f000001, (uint16_t)(10000 + a));
        ap->up_seen = calloc(cfg->count, 1);
        ap->down_seen = calloc(cfg->count, 1);
        ap->sent_at = calloc(cfg->count, sizeof(uint64_t));
        ASSERT(ap->up_seen && ap->down_seen && ap->sent_at);
    }
    client_start(w);
    server_start(w);
}

void sim_free(struct sim *w)
{
    while (w->nheap)
        free(pop(w).data);
    free(w->heap);
    for (unsigned a = 0; a < w->cfg.napps; a++) {
        free(w->apps[a].up_seen);
        free(w->apps[a].down_seen);
        free(w->apps[a].sent_at);
    }
    free(w->flow_gen);
    free(w->flow_app);
    free(w->flow_to);
    mpt_client_free(&w->c);
    mpt_server_free(&w->s);
    mpt_outq_free(&w->q);
}

/* Counts the copies of one flow datagram that an endpoint just queued, per path. */
static void count_data(struct sim *w, int down)
{
    for (unsigned i = 0; i < w->q.n; i++) {
        const struct mpt_out *o = &w->q.v[i];
        unsigned path = o->index;
        if (o->kind != MPT_OUT_PATH)
            continue;
        if (down)
            for (path = 0; path < w->cfg.npaths; path++)
                if (mpt_addr_equal(&o->addr, &w->paddr[path]))
                    break;
        if (down && path == w->cfg.npaths)
            continue; /* to a dead address */
        ASSERT_LT(path, w->cfg.npaths);
        w->path_data[down][path]++;
        w->path_data_last_us[down][path] = w->now;
    }
}

static void app_send(struct sim *w, uint32_t a)
{
    static uint8_t buf[2048];
    struct app *ap = &w->apps[a];
    uint32_t span = w->cfg.max_len - w->cfg.min_len + 1;
    size_t len = w->cfg.min_len + (size_t)((uint64_t)ap->sent * 2654435761u % span);

    payload_make(buf, a, ap->sent, w->now, len);
    ap->sent_at[ap->sent] = w->now;
    ap->sent++;
    w->sent_up++;
    if (w->cfg.named) {
        char host[16];
        snprintf(host, sizeof(host), "10.0.1.%u", (unsigned)a);
        mpt_client_on_app_to(&w->c, w->now, &ap->addr, 1, host, 53, buf, len, &w->q);
    } else {
        mpt_client_on_app(&w->c, w->now, &ap->addr, buf, len, &w->q);
    }
    count_data(w, 0);
    client_drain(w);
    if (ap->sent < w->cfg.count) {
        struct ev e = {.at = w->now + w->cfg.interval_us, .kind = EV_APP_SEND, .app = a};
        push(w, e);
    }
}

void sim_schedule_control(struct sim *w, uint64_t at, int code)
{
    struct ev e = {.at = at, .kind = EV_CONTROL, .code = code};

    push(w, e);
}

static void handle(struct sim *w, struct ev *e)
{
    unsigned before;

    switch (e->kind) {
    case EV_TO_SERVER:
        w->rx_path = e->path;
        mpt_server_on_path(&w->s, w->now, &w->paddr[e->path], e->data, e->len, &w->q);
        server_drain(w);
        /* As the driver does: a datagram held for order wants the timer sooner. */
        if (w->s.wake) {
            w->s.wake = 0;
            w->sdeadline = w->now;
        }
        break;
    case EV_TO_CLIENT:
        before = w->c.sessions_established;
        w->rx_path = e->path;
        mpt_client_on_path(&w->c, w->now, e->path, e->data, e->len, &w->q);
        client_drain(w);
        /* As the driver does: a new session, or a path changing state, wants probes now. */
        if (w->c.sessions_established != before || w->c.wake)
            w->cdeadline = w->now;
        break;
    case EV_TARGET_ECHO:
        if (w->flow_gen[e->flow] != e->gen)
            break; /* the socket was closed meanwhile */
        w->echo_sent++;
        w->apps[mpt_get32(e->data)].echoes++;
        mpt_server_on_target(&w->s, w->now, e->flow, e->data, e->len, &w->q);
        count_data(w, 1);
        server_drain(w);
        break;
    case EV_APP_SEND:
        app_send(w, e->app);
        break;
    case EV_CONTROL:
        w->control(w, e->code);
        break;
    }
}

/* Runs until cfg.end_us: the earliest of the next event and the two timers, one at a time. */
void sim_run(struct sim *w)
{
    while (w->now < w->cfg.end_us) {
        uint64_t t = w->cdeadline < w->sdeadline ? w->cdeadline : w->sdeadline;
        int which = w->cdeadline <= w->sdeadline ? 0 : 1;

        if (w->nheap && w->heap[0].at < t) {
            t = w->heap[0].at;
            which = 2;
        }
        if (t > w->cfg.end_us)
            break;
        ASSERT_GE(t, w->now);
        w->now = t;
        w->events++;
        if (which == 0) {
            w->cdeadline = mpt_client_on_timer(&w->c, w->now, &w->q);
            ASSERT_GT(w->cdeadline, w->now);
            client_drain(w);
        } else if (which == 1) {
            w->sdeadline = mpt_server_on_timer(&w->s, w->now, &w->q);
            ASSERT_GT(w->sdeadline, w->now);
            server_drain(w);
        } else {
            struct ev e = pop(w);
            handle(w, &e);
            free(e.data);
        }
        if (!w->started && w->c.state == MPT_CLIENT_ESTABLISHED) {
            w->started = 1;
            for (uint32_t a = 0; a < w->cfg.napps && w->cfg.count; a++) {
                /* Stagger the applications over one interval. */
                struct ev e = {.at = w->now + w->cfg.start_us +
                                     w->cfg.interval_us * a / (w->cfg.napps ? w->cfg.napps : 1),
                               .kind = EV_APP_SEND,
                               .app = a};
                push(w, e);
            }
        }
        if (w->step)
            w->step(w);
    }
}

double loss_up(const struct sim *w)
{
    return w->sent_up ? 1.0 - (double)w->recv_up / (double)w->sent_up : 0;
}

double loss_down(const struct sim *w)
{
    return w->echo_sent ? 1.0 - (double)w->recv_down / (double)w->echo_sent : 0;
}

/* Invariants of every run: nothing delivered twice, nothing corrupted, nothing to the wrong
 * application or flow. */
void check_integrity(const struct sim *w)
{
    ASSERT_EQ(w->dup_up, 0);
    ASSERT_EQ(w->dup_down, 0);
    ASSERT_EQ(w->corrupt_up, 0);
    ASSERT_EQ(w->corrupt_down, 0);
    ASSERT_EQ(w->misdelivered, 0);
    ASSERT_EQ(w->crossed_flows, 0);
}

void set_all(struct sim_cfg *c, double loss, double dup, double reorder)
{
    for (unsigned p = 0; p < SIM_MAX_PATHS; p++) {
        c->up[p].loss = c->down[p].loss = loss;
        c->up[p].duplicate = c->down[p].duplicate = dup;
        c->up[p].reorder = c->down[p].reorder = reorder;
    }
}

/* ---- cases ---- */

static struct sim w;

static void redundant_loss(void)
{
    enum { SEEDS = 50 };
    double sum_up = 0, sum_down = 0, max_up = 0, max_down = 0;
    uint64_t dups = 0, corrupt = 0, sent = 0, events = 0;
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        cfg_defaults(&cfg, seed);
        set_all(&cfg, 0.20, 0, 0);
        cfg.count = 10000;
        cfg.end_us = 13 * SEC;
        sim_init(&w, &cfg);
        sim_run(&w);
        ASSERT_EQ(w.sent_up, 10000);
        check_integrity(&w);
        sum_up += loss_up(&w);
        sum_down += loss_down(&w);
        max_up = fmax(max_up, loss_up(&w));
        max_down = fmax(max_down, loss_down(&w));
        dups += w.dup_up + w.dup_down;
        corrupt += w.corrupt_up + w.corrupt_down;
        sent += w.sent_up + w.echo_sent;
        events += w.events;
        sim_free(&w);
    }
    printf("3 paths, 20%% loss each way, %d seeds, %llu datagrams, %llu events\n", SEEDS,
           (unsigned long long)sent, (unsigned long long)events);
    printf("residual loss up %.4f (max %.4f), down %.4f (max %.4f); limit 0.016 (p^3 = 0.008)\n",
           sum_up / SEEDS, max_up, sum_down / SEEDS, max_down);
    printf("duplicates delivered %llu, corrupted %llu\n", (unsigned long long)dups,
           (unsigned long long)corrupt);
    ASSERT_DBL_LE(sum_up / SEEDS, 0.016);
    ASSERT_DBL_LE(sum_down / SEEDS, 0.016);
}

static void reorder_dup(void)
{
    enum { SEEDS = 10 };
    uint64_t delivered = 0, sent = 0, dups_net = 0, reord = 0;
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        cfg_defaults(&cfg, seed);
        set_all(&cfg, 0, 0.4, 0.4);
        for (unsigned p = 0; p < SIM_MAX_PATHS; p++) {
            cfg.up[p].jitter_us = cfg.down[p].jitter_us = 15 * MS;
            cfg.up[p].delay_us = 10 * MS + p * 25 * MS;
            cfg.down[p].delay_us = 60 * MS - p * 25 * MS;
            cfg.up[p].reorder_extra_us = cfg.down[p].reorder_extra_us = 40 * MS;
        }
        cfg.count = 5000;
        cfg.end_us = 8 * SEC;
        sim_init(&w, &cfg);
        sim_run(&w);
        check_integrity(&w);
        ASSERT_EQ(w.recv_up, w.sent_up);
        ASSERT_EQ(w.recv_down, w.echo_sent);
        ASSERT_EQ(w.echo_sent, w.sent_up);
        for (unsigned p = 0; p < cfg.npaths; p++) {
            dups_net += w.up[p].stats.duplicated + w.down[p].stats.duplicated;
            reord += w.up[p].stats.reordered + w.down[p].stats.reordered;
        }
        delivered += w.recv_up + w.recv_down;
        sent += w.sent_up + w.echo_sent;
        sim_free(&w);
    }
    printf("40%% duplication, 40%% reordering (+40 ms), paths 10/35/60 ms: %d seeds\n", SEEDS);
    printf("datagrams %llu, delivered %llu, network duplicates %llu, reordered %llu, "
           "duplicates delivered 0\n",
           (unsigned long long)sent, (unsigned long long)delivered, (unsigned long long)dups_net,
           (unsigned long long)reord);
}

/* One path alive at a time, the next one every 500 ms. */
static void failover_control(struct sim *s, int code)
{
    for (unsigned p = 0; p < s->cfg.npaths; p++) {
        mpt_impair_set_down(&s->up[p], (int)p != code);
        mpt_impair_set_down(&s->down[p], (int)p != code);
    }
    if (s->now + 500 * MS < s->cfg.end_us)
        sim_schedule_control(s, s->now + 500 * MS, (code + 1) % (int)s->cfg.npaths);
}

static void path_failover(void)
{
    enum { SEEDS = 5 };
    double worst_up = 0, worst_down = 0;
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        cfg_defaults(&cfg, seed);
        cfg.count = 10000;
        cfg.end_us = 13 * SEC;
        sim_init(&w, &cfg);
        w.control = failover_control;
        /* Every path is known (and its return address validated, §7) before the rotation
         * begins: a path never heard before carries replies one round trip after its first
         * datagram, which sim_modes' new_path case measures. */
        sim_schedule_control(&w, 1 * SEC, 0);
        sim_run(&w);
        check_integrity(&w);
        worst_up = fmax(worst_up, loss_up(&w));
        worst_down = fmax(worst_down, loss_down(&w));
        ASSERT_EQ(w.c.sessions_established, 1);
        sim_free(&w);
    }
    printf("3 paths, one alive at a time, rotating every 500 ms, %d seeds of 10000 datagrams\n",
           SEEDS);
    printf("loss up %.4f, down %.4f (worst seed); limit 0.01\n", worst_up, worst_down);
    ASSERT_DBL_LE(worst_up, 0.01);
    ASSERT_DBL_LE(worst_down, 0.01);
}

/* Restarts: the time from the restart to the first datagram sent after it that made the round
 * trip, and the loss of what was sent from then on. */
static void restart_control(struct sim *s, int code)
{
    if (code == 0)
        sim_restart_client(s);
    else
        sim_restart_server(s);
}

static void restart_case(int which)
{
    enum { SEEDS = 10 };
    const uint64_t at = 5 * SEC;
    uint64_t worst = 0, sum = 0;
    uint64_t lost_after = 0, sent_after = 0;
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        cfg_defaults(&cfg, seed);
        set_all(&cfg, 0.05, 0.01, 0.01);
        cfg.count = 2000; /* 200 per second for 10 s */
        cfg.interval_us = 5 * MS;
        cfg.end_us = 12 * SEC;
        sim_init(&w, &cfg);
        w.control = restart_control;
        sim_schedule_control(&w, at, which);
        sim_run(&w);
        check_integrity(&w);
        struct app *ap = &w.apps[0];
        uint64_t healed = UINT64_MAX;
        uint32_t first = 0;
        for (uint32_t i = 0; i < ap->sent; i++) {
            if (ap->sent_at[i] < at)
                continue;
            if (!first)
                first = i;
            if (ap->down_seen[i]) {
                healed = ap->sent_at[i] - at;
                first = i;
                break;
            }
        }
        ASSERT(healed != UINT64_MAX);
        /* From the healing on, the tunnel carries traffic as before. */
        for (uint32_t i = first; i < ap->sent; i++) {
            sent_after++;
            lost_after += !ap->down_seen[i];
        }
        worst = healed > worst ? healed : worst;
        sum += healed;
        printf("seed %llu: healed %.3f s after the %s restart\n", (unsigned long long)seed,
               (double)healed / SEC, which ? "server" : "client");
        sim_free(&w);
    }
    printf("%s restart under 200 datagrams/s, 5%% loss per path: healing mean %.3f s, worst "
           "%.3f s (limit 2 s); round-trip loss after healing %.4f\n",
           which ? "server" : "client", (double)sum / SEEDS / SEC, (double)worst / SEC,
           (double)lost_after / (double)sent_after);
    ASSERT_LE(worst, 2 * SEC);
    ASSERT_DBL_LE((double)lost_after / (double)sent_after, 0.005);
}

static void server_restart(void)
{
    restart_case(1);
}

static void client_restart(void)
{
    restart_case(0);
}

/* Idle for 60 s, then path 1 silenced for 5 s and back. */
struct keepalive_obs {
    uint64_t silenced_at, back_at, down_seen_at, up_seen_at;
};

static struct keepalive_obs ka;

static void keepalive_control(struct sim *s, int code)
{
    mpt_impair_set_down(&s->up[1], code);
    mpt_impair_set_down(&s->down[1], code);
    if (code)
        ka.silenced_at = s->now;
    else
        ka.back_at = s->now;
}

static void keepalive_step(struct sim *s)
{
    if (ka.silenced_at && !ka.down_seen_at && s->c.paths[1].state == MPT_PATH_DOWN)
        ka.down_seen_at = s->now;
    if (ka.back_at && !ka.up_seen_at && s->c.paths[1].state != MPT_PATH_DOWN)
        ka.up_seen_at = s->now;
    if (!ka.silenced_at && s->now > 2 * SEC)
        for (unsigned p = 0; p < s->cfg.npaths; p++)
            ASSERT_NE(s->c.paths[p].state, MPT_PATH_DOWN);
}

static void idle_keepalive(void)
{
    enum { SEEDS = 5 };
    uint64_t worst_down = 0, worst_up = 0;
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        cfg_defaults(&cfg, seed);
        cfg.count = 0;
        cfg.end_us = 70 * SEC;
        memset(&ka, 0, sizeof(ka));
        sim_init(&w, &cfg);
        w.control = keepalive_control;
        w.step = keepalive_step;
        /* Not aligned with the probes: 60.123 s. */
        sim_schedule_control(&w, 60 * SEC + 123 * MS + seed * 37 * MS, 1);
        sim_schedule_control(&w, 65 * SEC + 123 * MS + seed * 41 * MS, 0);
        sim_run(&w);
        ASSERT_EQ(w.c.sessions_established, 1);
        ASSERT_EQ(w.s.ctr.handshakes, 1);
        ASSERT_EQ(w.c.state, MPT_CLIENT_ESTABLISHED);
        ASSERT(ka.down_seen_at && ka.up_seen_at);
        uint64_t d = ka.down_seen_at - ka.silenced_at, u = ka.up_seen_at - ka.back_at;
        worst_down = d > worst_down ? d : worst_down;
        worst_up = u > worst_up ? u : worst_up;
        printf("seed %llu: %llu probes per path in 70 s, path 1 down after %.3f s, up again "
               "after %.3f s\n",
               (unsigned long long)seed, (unsigned long long)w.c.paths[0].probes_sent,
               (double)d / SEC, (double)u / SEC);
        sim_free(&w);
    }
    printf("idle 60 s: one session throughout; path silenced: down within %.3f s, back up "
           "within %.3f s (limit 1 s each)\n",
           (double)worst_down / SEC, (double)worst_up / SEC);
    ASSERT_LE(worst_down, 1 * SEC);
    ASSERT_LE(worst_up, 1 * SEC);
}

static void many_flows(void)
{
    struct sim_cfg cfg;
    uint32_t min_replies = UINT32_MAX;

    cfg_defaults(&cfg, 7);
    set_all(&cfg, 0.10, 0.02, 0.05);
    cfg.napps = 50;
    cfg.count = 200;
    cfg.interval_us = 20 * MS;
    cfg.end_us = 8 * SEC;
    sim_init(&w, &cfg);
    sim_run(&w);
    check_integrity(&w);
    for (unsigned a = 0; a < cfg.napps; a++) {
        ASSERT_EQ(w.apps[a].sent, 200);
        if (w.apps[a].replies < min_replies)
            min_replies = w.apps[a].replies;
        ASSERT_GE(w.apps[a].replies, 190);
    }
    ASSERT_EQ(mpt_client_flows(&w.c), 50);
    ASSERT_EQ(w.s.flow_slots.used, 50);
    printf("50 applications x 200 datagrams, 10%% loss per path: %llu replies, fewest for one "
           "application %u, misdelivered %llu, flows crossed %llu, server flows %u\n",
           (unsigned long long)w.recv_down, min_replies, (unsigned long long)w.misdelivered,
           (unsigned long long)w.crossed_flows, w.s.flow_slots.used);
    sim_free(&w);
}

/* 20 applications each naming its own target over three paths losing 20%: every flow opens towards
 * what it named, whichever datagram arrived first; none reaches another target. */
static void named_targets(void)
{
    struct sim_cfg cfg;
    struct mpt_allow_rule rule = {.family = AF_INET, .prefix = 24, .port_lo = 53, .port_hi = 53};
    uint32_t min_replies = UINT32_MAX;

    rule.addr[0] = 10;
    rule.addr[2] = 1;
    cfg_defaults(&cfg, 11);
    set_all(&cfg, 0.20, 0.02, 0.05);
    cfg.napps = 20;
    cfg.count = 200;
    cfg.interval_us = 20 * MS;
    cfg.end_us = 8 * SEC;
    cfg.named = 1;
    cfg.sp.allow = &rule;
    cfg.sp.nallow = 1;
    sim_init(&w, &cfg);
    sim_run(&w);
    check_integrity(&w);
    for (unsigned a = 0; a < cfg.napps; a++) {
        if (w.apps[a].replies < min_replies)
            min_replies = w.apps[a].replies;
        ASSERT_GE(w.apps[a].replies, 185);
    }
    printf("20 applications naming 20 targets, 20%% loss per path: %llu flows opened, fewest "
           "replies %u (limit 185), misrouted %llu (must be 0), refused %llu (must be 0)\n",
           (unsigned long long)w.flow_opens, min_replies, (unsigned long long)w.misrouted,
           (unsigned long long)w.s.refused[MPT_FLOW_NOT_ALLOWED]);
    ASSERT_EQ(w.misrouted, 0);
    ASSERT_EQ(w.flow_opens, 20);
    ASSERT_EQ(w.s.refused[MPT_FLOW_NOT_ALLOWED], 0);
    sim_free(&w);
}

/* Random worlds: impairments, blackouts and restarts at random; the invariants must hold. */
static struct mpt_rng soak_rng;

static void soak_control(struct sim *s, int code)
{
    uint64_t r = mpt_rng_next(&soak_rng);
    unsigned p = (unsigned)(r % s->cfg.npaths);

    switch (code) {
    case 0:
        mpt_impair_set_down(&s->up[p], (r >> 8) & 1);
        mpt_impair_set_down(&s->down[p], (r >> 9) & 1);
        break;
    case 1:
        sim_restart_client(s);
        break;
    case 2:
        sim_restart_server(s);
        break;
    }
}

static double unit(void)
{
    return mpt_rng_unit(&soak_rng);
}

static void seeds(void)
{
    enum { SEEDS = 200 };
    uint64_t sent = 0, recv = 0, restarts = 0, events = 0, max_heap = 0;
    uint64_t max_sessions = 0, max_flows = 0;
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        mpt_rng_seed(&soak_rng, seed, 77);
        cfg_defaults(&cfg, seed);
        cfg.npaths = 1 + (unsigned)(mpt_rng_next(&soak_rng) % SIM_MAX_PATHS);
        for (unsigned p = 0; p < cfg.npaths; p++) {
            struct mpt_impair_params *d[2] = {&cfg.up[p], &cfg.down[p]};
            for (int k = 0; k < 2; k++) {
                d[k]->loss = unit() * 0.5;
                d[k]->duplicate = unit() * 0.3;
                d[k]->reorder = unit() * 0.3;
                d[k]->corrupt = unit() * 0.05;
                d[k]->delay_us = (uint32_t)(1 * MS + unit() * 100 * MS);
                d[k]->jitter_us = (uint32_t)(unit() * 20 * MS);
                d[k]->reorder_extra_us = (uint32_t)(unit() * 50 * MS);
            }
        }
        cfg.napps = 1 + (unsigned)(mpt_rng_next(&soak_rng) % 8);
        cfg.count = 300;
        cfg.interval_us = 2 * MS + (uint64_t)(unit() * 20 * MS);
        cfg.max_len = 32 + (uint32_t)(unit() * 1400);
        cfg.sp.max_sessions = 1 + (unsigned)(mpt_rng_next(&soak_rng) % 3);
        cfg.sp.max_flows = 1 + (unsigned)(mpt_rng_next(&soak_rng) % 10);
        cfg.cp.max_flows = 1 + (unsigned)(mpt_rng_next(&soak_rng) % 10);
        cfg.sp.flow_timeout_ms = 1000 + (uint32_t)(unit() * 3000);
        cfg.cp.flow_timeout_ms = 1000 + (uint32_t)(unit() * 3000);
        cfg.sp.session_timeout_ms = 2000 + (uint32_t)(unit() * 5000);
        cfg.cp.probe_interval_ms = 20 + (uint32_t)(unit() * 500);
        cfg.end_us = 8 * SEC;
        sim_init(&w, &cfg);
        w.control = soak_control;
        for (int k = 0; k < 6; k++)
            sim_schedule_control(&w, (uint64_t)(unit() * 7 * SEC), 0);
        if (unit() < 0.3) {
            sim_schedule_control(&w, (uint64_t)(unit() * 7 * SEC), 1);
            restarts++;
        }
        if (unit() < 0.3) {
            sim_schedule_control(&w, (uint64_t)(unit() * 7 * SEC), 2);
            restarts++;
        }
        sim_run(&w);
        check_integrity(&w);
        max_heap = w.capheap > max_heap ? w.capheap : max_heap;
        max_sessions = w.max_sessions_used > max_sessions ? w.max_sessions_used : max_sessions;
        max_flows = w.max_flows_used > max_flows ? w.max_flows_used : max_flows;
        sent += w.sent_up + w.echo_sent;
        recv += w.recv_up + w.recv_down;
        events += w.events;
        sim_free(&w);
    }
    printf("%d random worlds (1-4 paths, loss <= 50%%, duplication, reordering, corruption, "
           "blackouts, %llu restarts, limits of 1-3 sessions and 1-10 flows): %llu events\n",
           SEEDS, (unsigned long long)restarts, (unsigned long long)events);
    printf("datagrams %llu, delivered %llu; duplicates 0, corrupted 0, misdelivered 0; most "
           "sessions %llu, most server flows %llu\n",
           (unsigned long long)sent, (unsigned long long)recv, (unsigned long long)max_sessions,
           (unsigned long long)max_flows);
}

/* The same seed twice gives the same run, event for event. */
static void determinism(void)
{
    struct sim_cfg cfg;
    uint64_t a[6], b[6];

    for (int k = 0; k < 2; k++) {
        uint64_t *o = k ? b : a;
        cfg_defaults(&cfg, 12345);
        set_all(&cfg, 0.3, 0.1, 0.1);
        cfg.count = 2000;
        cfg.end_us = 5 * SEC;
        sim_init(&w, &cfg);
        sim_run(&w);
        o[0] = w.events;
        o[1] = w.recv_up;
        o[2] = w.recv_down;
        o[3] = w.c.sid;
        o[4] = w.s.ctr.duplicates;
        o[5] = w.c.ctr.rx_bytes;
        sim_free(&w);
    }
    printf("seed 12345 twice: %llu events, delivered %llu/%llu, session %016llx both times\n",
           (unsigned long long)a[0], (unsigned long long)a[1], (unsigned long long)a[2],
           (unsigned long long)a[3]);
    ASSERT_MEM_EQ(a, b, sizeof(a));
}

static const struct task_case cases[] = {
    {"redundant_loss", redundant_loss},
    {"reorder_dup", reorder_dup},
    {"path_failover", path_failover},
    {"server_restart", server_restart},
    {"client_restart", client_restart},
    {"idle_keepalive", idle_keepalive},
    {"many_flows", many_flows},
    {"seeds", seeds},
    {"determinism", determinism},
    {"named_targets", named_targets},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static struct task_case all[sizeof(cases) / sizeof(cases[0]) + 64];
    size_t n;

    /* Before sodium_init (which core calls): every random byte comes from the seeded generator. */
    if (randombytes_set_implementation(&det_impl) != 0 || sodium_init() < 0)
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    n = 0;
    for (const struct task_case *c = cases; c->name; c++)
        all[n++] = *c;
    for (const struct task_case *c = sim_mode_cases; c->name; c++)
        all[n++] = *c;
    for (const struct task_case *c = sim_lifetime_cases; c->name; c++)
        all[n++] = *c;
    for (const struct task_case *c = sim_split_cases; c->name; c++)
        all[n++] = *c;
    for (const struct task_case *c = sim_sched_cases; c->name; c++)
        all[n++] = *c;
    for (const struct task_case *c = sim_fec_cases; c->name; c++)
        all[n++] = *c;
    for (const struct task_case *c = sim_fec_ends_cases; c->name; c++)
        all[n++] = *c;
    all[n] = (struct task_case){NULL, NULL};
    return task_run(all, argc, argv);
}
