/* The demo: everything on one loop, wired on 127.0.0.1 with ephemeral ports. */
#include "net/demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/crypto.h"
#include "core/wire.h"
#include "net/bridge.h"
#include "net/driver.h"
#include "net/tunnel.h"
#include "net/udp.h"

#define DEMO_MAGIC 0x6d707464u /* "mptd" */
#define DEMO_HDR 20            /* magic, seq (u64), send time since start (µs, u64) */
#define SECONDS 128            /* ring of per-second counters */
#define SEEN_BITS (1u << 24)   /* ring of delivered flags, by seq */
#define HIST_BUCKETS 20000     /* 10 µs each: 0-200 ms */
#define TICK_MS 5

struct sec_counts {
    uint64_t sent, at_target, delivered;
};

struct mpt_demo {
    struct mpt_driver base; /* lifecycle: every handle below is counted there */
    struct mpt_loop *loop;
    struct mpt_demo_options o;
    mpt_demo_report_cb on_report;
    void *arg;

    struct mpt_udp echo, gen;
    int echo_open, gen_open;
    struct mpt_server_drv *server;
    struct mpt_client_drv *client;
    struct mpt_bridge *bridges[MPT_DEMO_MAX_PATHS];
    struct mpt_addr client_addr;
    uv_timer_t send_timer, report_timer;

    uint64_t start_us;
    uint64_t seq;
    double credit;
    uint64_t last_send_us;
    int sending_done;
    uint64_t done_us;
    int path_down;
    int running, final_done;
    uint64_t blackout_us;                    /* when the blackout began, elapsed */
    int seen_up[MPT_DEMO_MAX_PATHS];         /* the client had the path up once */
    int was_up[MPT_DEMO_MAX_PATHS];          /* at the last tick */
    uint64_t down_at_us[MPT_DEMO_MAX_PATHS]; /* elapsed */
    uint64_t prev_rx[MPT_DEMO_MAX_PATHS][2], prev_drop[MPT_DEMO_MAX_PATHS][2];

    uint64_t duplicates, corrupted, at_target, delivered;
    struct sec_counts secs[SECONDS];
    uint8_t *seen;
    uint64_t *hist;
    uint64_t hist_n;
    uint8_t *payload;
};

static uint64_t elapsed_us(struct mpt_demo *d)
{
    return mpt_loop_now_us(d->loop) - d->start_us;
}

static void on_echo(struct mpt_udp *u, const uint8_t *data, size_t len, const struct sockaddr *from)
{
    struct mpt_demo *d = u->owner;

    if (len >= DEMO_HDR && mpt_get32(data) == DEMO_MAGIC) {
        uint64_t sec = mpt_get64(data + 12) / 1000000;
        d->secs[sec % SECONDS].at_target++;
        d->at_target++;
    }
    mpt_udp_send(u, data, len, from);
}

static void fill(uint8_t *p, size_t len, uint64_t seq)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seq * 31 + i * 7);
}

static void on_gen(struct mpt_udp *u, const uint8_t *data, size_t len, const struct sockaddr *from)
{
    struct mpt_demo *d = u->owner;
    uint64_t seq, sent_at, now = elapsed_us(d), rtt;
    uint8_t expect[64];

    if (len != d->o.size || mpt_get32(data) != DEMO_MAGIC) {
        d->corrupted++;
        return;
    }
    seq = mpt_get64(data + 4);
    sent_at = mpt_get64(data + 12);
    if (seq >= d->seq || d->seq - seq >= SEEN_BITS || sent_at > now) {
        d->corrupted++;
        return;
    }
    /* Check a sample of the payload; the tunnel's AEAD would catch any change anyway. */
    {
        size_t n = len - DEMO_HDR < sizeof(expect) ? len - DEMO_HDR : sizeof(expect);
        fill(expect, n, seq);
        if (memcmp(expect, data + DEMO_HDR, n) != 0) {
            d->corrupted++;
            return;
        }
    }
    if (d->seen[(seq % SEEN_BITS) / 8] & (1u << (seq % 8))) {
        d->duplicates++;
        return;
    }
    d->seen[(seq % SEEN_BITS) / 8] |= (uint8_t)(1u << (seq % 8));
    d->delivered++;
    d->secs[(sent_at / 1000000) % SECONDS].delivered++;
    rtt = (now - sent_at) / 10;
    d->hist[rtt < HIST_BUCKETS ? rtt : HIST_BUCKETS - 1]++;
    d->hist_n++;
}

static void send_one(struct mpt_demo *d, uint64_t now)
{
    uint8_t *p = d->payload;
    uint64_t seq = d->seq++;

    d->seen[(seq % SEEN_BITS) / 8] &= (uint8_t) ~(1u << (seq % 8));
    mpt_put32(p, DEMO_MAGIC);
    mpt_put64(p + 4, seq);
    mpt_put64(p + 12, now);
    fill(p + DEMO_HDR, d->o.size - DEMO_HDR, seq);
    d->secs[(now / 1000000) % SECONDS].sent++;
    mpt_udp_send(&d->gen, p, d->o.size, &d->client_addr.u.sa);
}

static void on_send_timer(uv_timer_t *t)
{
    struct mpt_demo *d = mpt_container_of(t, struct mpt_demo, send_timer);
    uint64_t now = elapsed_us(d);

    if (d->o.duration_ms && now >= (uint64_t)d->o.duration_ms * 1000) {
        if (!d->sending_done) {
            d->sending_done = 1;
            d->done_us = now;
        }
        return;
    }
    d->credit += (double)(now - d->last_send_us) * d->o.rate / 1e6;
    d->last_send_us = now;
    if (d->credit > d->o.rate)
        d->credit = d->o.rate;
    while (d->credit >= 1.0) {
        send_one(d, now);
        d->credit -= 1.0;
    }
}

static double percentile(const struct mpt_demo *d, double q)
{
    uint64_t want = (uint64_t)(q * (double)d->hist_n), acc = 0;

    if (!d->hist_n)
        return 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        acc += d->hist[i];
        if (acc > want)
            return (i * 10 + 5) / 1000.0;
    }
    return HIST_BUCKETS * 10 / 1000.0;
}

static double ratio_lost(uint64_t sent, uint64_t got)
{
    return sent ? 1.0 - (double)(got < sent ? got : sent) / (double)sent : 0;
}

/* final: every second counts (the traffic is over); interrupted: only the settled ones. */
static void fill_report(struct mpt_demo *d, struct mpt_demo_report *r, int final, int interrupted)
{
    uint64_t now = elapsed_us(d);
    uint64_t complete = final && !interrupted ? UINT64_MAX : now / 1000000; /* seconds before
                                                                               this are settled */
    uint64_t sent = 0, at = 0, del = 0;
    const struct mpt_client *c = mpt_client_drv_core(d->client);

    memset(r, 0, sizeof(*r));
    r->elapsed_s = (double)now / 1e6;
    r->final = final;
    r->interrupted = interrupted;
    /* A second is settled one second after it ended: what has not come back by then is lost. */
    for (uint64_t s = 0; s + 1 < complete && s <= now / 1000000; s++) {
        const struct sec_counts *k = &d->secs[s % SECONDS];
        if (now / 1000000 - s >= SECONDS)
            continue;
        sent += k->sent;
        at += k->at_target;
        del += k->delivered;
        r->loss_fwd_1s = ratio_lost(k->sent, k->at_target);
        r->loss_rt_1s = ratio_lost(k->sent, k->delivered);
        r->have_1s = 1;
    }
    r->sent = d->seq;
    r->at_target = d->at_target;
    r->delivered = d->delivered;
    r->duplicates = d->duplicates;
    r->corrupted = d->corrupted;
    r->in_flight = d->seq - sent;
    r->loss_fwd = ratio_lost(sent, at);
    r->loss_rt = ratio_lost(sent, del);
    r->rtt_p50_ms = percentile(d, 0.50);
    r->rtt_p99_ms = percentile(d, 0.99);
    r->sessions = c->sessions_established;
    if (d->seq)
        r->wire_up = (double)c->ctr.tx_bytes / ((double)d->seq * d->o.size);
    r->fec_recovered = c->fec_recovered;
    r->fec_given_up = c->fec_rx.given_up;
    r->npaths = d->o.paths;
    for (unsigned i = 0; i < d->o.paths; i++) {
        struct mpt_bridge_stats st;
        struct mpt_demo_path *p = &r->paths[i];
        double l1[2];
        mpt_bridge_get_stats(d->bridges[i], &st);
        for (int dir = 0; dir < 2; dir++) {
            uint64_t rx = st.dir[dir].impair.received, drop = st.dir[dir].impair.dropped;
            uint64_t drx = rx - d->prev_rx[i][dir], ddrop = drop - d->prev_drop[i][dir];
            l1[dir] = drx ? (double)ddrop / (double)drx : 0;
            d->prev_rx[i][dir] = rx;
            d->prev_drop[i][dir] = drop;
        }
        snprintf(p->label, sizeof(p->label), "%s", c->p.path_name[i]);
        p->to_rx = st.dir[0].impair.received;
        p->back_rx = st.dir[1].impair.received;
        p->loss_to = p->to_rx ? (double)st.dir[0].impair.dropped / (double)p->to_rx : 0;
        p->loss_back = p->back_rx ? (double)st.dir[1].impair.dropped / (double)p->back_rx : 0;
        p->loss_to_1s = l1[0];
        p->loss_back_1s = l1[1];
        p->down = d->path_down && i == 0;
        p->up = c->paths[i].state != MPT_PATH_DOWN;
        p->rtt_ms = (double)c->paths[i].srtt_us / 1000.0;
    }
}

static void event(struct mpt_demo *d, enum mpt_demo_event_kind kind, unsigned path, uint64_t at_us,
                  double after_s)
{
    struct mpt_demo_event e;

    if (!d->o.on_event)
        return;
    e.kind = kind;
    e.path = path;
    e.label = mpt_client_drv_core(d->client)->p.path_name[path];
    e.at_s = (double)at_us / 1e6;
    e.after_s = after_s;
    d->o.on_event(&e, d->arg);
}

/* The client's view of each path against the last tick: a line when one goes down or comes back
 * (not for the first time it comes up). */
static void watch_paths(struct mpt_demo *d, uint64_t now)
{
    const struct mpt_client *c = mpt_client_drv_core(d->client);

    for (unsigned i = 0; i < d->o.paths; i++) {
        const struct mpt_client_path *p = &c->paths[i];
        int up = p->state != MPT_PATH_DOWN;
        uint64_t at = p->state_since_us > d->start_us ? p->state_since_us - d->start_us : now;

        if (up == d->was_up[i])
            continue;
        d->was_up[i] = up;
        if (!up && d->seen_up[i]) {
            d->down_at_us[i] = at;
            event(d, MPT_DEMO_PATH_DOWN, i, at,
                  d->path_down && i == 0 && at >= d->blackout_us
                      ? (double)(at - d->blackout_us) / 1e6
                      : -1);
        } else if (up && d->seen_up[i]) {
            event(d, MPT_DEMO_PATH_UP, i, at,
                  at >= d->down_at_us[i] ? (double)(at - d->down_at_us[i]) / 1e6 : -1);
        }
        if (up)
            d->seen_up[i] = 1;
    }
}

static void final_report(struct mpt_demo *d, int interrupted)
{
    struct mpt_demo_report r;

    if (d->final_done || !d->running)
        return;
    d->final_done = 1;
    fill_report(d, &r, 1, interrupted);
    d->on_report(&r, d->arg);
}

static void on_report_timer(uv_timer_t *t)
{
    struct mpt_demo *d = mpt_container_of(t, struct mpt_demo, report_timer);
    struct mpt_demo_report r;
    uint64_t now = elapsed_us(d);

    if (d->o.kill_path_ms && d->bridges[0]) {
        int down = now >= (uint64_t)d->o.kill_path_ms * 1000 &&
                   now < ((uint64_t)d->o.kill_path_ms + 3000) * 1000;
        if (down != d->path_down) {
            d->path_down = down;
            mpt_bridge_set_down(d->bridges[0], down);
            if (down)
                d->blackout_us = now;
            event(d, down ? MPT_DEMO_BLACKOUT : MPT_DEMO_RESTORED, 0, now,
                  down ? -1 : (double)(now - d->blackout_us) / 1e6);
        }
    }
    watch_paths(d, now);
    if (d->sending_done && now >= d->done_us + 1500000) {
        final_report(d, 0);
        mpt_loop_stop(d->loop);
        return;
    }
    if (now / 1000000 != (now - 100000) / 1000000 || now < 100000) {
        fill_report(d, &r, 0, 0);
        d->on_report(&r, d->arg);
    }
}

static void free_buffers(struct mpt_demo *d)
{
    free(d->seen);
    free(d->hist);
    free(d->payload);
}

/* The last reference is gone: stopped and every handle closed. */
static void demo_destroy(struct mpt_driver *base)
{
    struct mpt_demo *d = mpt_container_of(base, struct mpt_demo, base);

    free_buffers(d);
    free(d);
}

/* Closes every handle and the bridges (mpt_driver_stop calls this once); the client and server
 * stop with the loop, as the services they are. */
static void demo_stop(struct mpt_driver *base)
{
    struct mpt_demo *d = mpt_container_of(base, struct mpt_demo, base);

    /* Stopped from outside (SIGINT) before the end: the summary of what was settled so far. */
    final_report(d, 1);
    mpt_driver_close((uv_handle_t *)&d->send_timer);
    mpt_driver_close((uv_handle_t *)&d->report_timer);
    if (d->gen_open)
        mpt_udp_close(&d->gen, NULL);
    if (d->echo_open)
        mpt_udp_close(&d->echo, NULL);
    for (unsigned i = 0; i < d->o.paths; i++) {
        mpt_bridge_free(d->bridges[i]);
        d->bridges[i] = NULL;
    }
}

static const struct mpt_driver_ops demo_ops = {"demo", demo_stop, demo_destroy};

static void set_hostport(struct mpt_hostport *hp, const struct mpt_addr *a)
{
    memset(hp, 0, sizeof(*hp));
    snprintf(hp->host, sizeof(hp->host), "127.0.0.1");
    hp->port = mpt_addr_port(a);
}

static int open_udp(struct mpt_demo *d, struct mpt_udp *u, int *open, mpt_udp_recv_cb cb)
{
    struct sockaddr_in sin;
    int rc;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = mpt_driver_udp_open(&d->base, u, AF_INET, (struct sockaddr *)&sin, 4u << 20, 4u << 20, cb,
                             d);
    if (rc) /* a socket that is closing already needs nothing more */
        return rc;
    *open = 1;
    return 0;
}

static void local_of(struct mpt_udp *u, struct mpt_addr *a)
{
    struct sockaddr_storage ss;

    mpt_udp_local(u, &ss);
    mpt_addr_set(a, (struct sockaddr *)&ss);
}

int mpt_demo_start(struct mpt_loop *loop, const struct mpt_demo_options *o,
                   mpt_demo_report_cb on_report, void *arg, struct mpt_demo **out, char *err,
                   size_t errlen)
{
    struct mpt_config cfg;
    struct mpt_addr echo_addr, server_addr;
    struct mpt_demo *d;
    int rc;

    *out = NULL;
    if (o->paths < 1 || o->paths > MPT_DEMO_MAX_PATHS || o->size < DEMO_HDR ||
        o->size > MPT_MAX_PAYLOAD || o->rate < 1) {
        snprintf(err, errlen, "invalid demo options");
        return UV_EINVAL;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    d->loop = loop;
    d->o = *o;
    d->on_report = on_report;
    d->arg = arg;
    d->seen = calloc(SEEN_BITS / 8, 1);
    d->hist = calloc(HIST_BUCKETS, sizeof(*d->hist));
    d->payload = malloc(o->size);
    if (!d->seen || !d->hist || !d->payload) {
        free_buffers(d);
        free(d);
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    mpt_driver_init(&d->base, loop, &demo_ops, 1);
    uv_timer_init(mpt_loop_uv(loop), &d->send_timer);
    uv_timer_init(mpt_loop_uv(loop), &d->report_timer);
    mpt_driver_own(&d->base, (uv_handle_t *)&d->send_timer);
    mpt_driver_own(&d->base, (uv_handle_t *)&d->report_timer);

    rc = open_udp(d, &d->echo, &d->echo_open, on_echo);
    if (!rc)
        rc = open_udp(d, &d->gen, &d->gen_open, on_gen);
    if (rc) {
        snprintf(err, errlen, "cannot open a socket on 127.0.0.1: %s", mpt_strerror(rc));
        goto fail;
    }
    local_of(&d->echo, &echo_addr);

    mpt_config_defaults(&cfg);
    /* `mptunnel status --demo' finds the control sockets by this name. */
    snprintf(cfg.file, sizeof(cfg.file), "demo");
    cfg.client.present = cfg.server.present = 1;
    mpt_random(cfg.secret, sizeof(cfg.secret));
    cfg.have_secret = 1;
    cfg.sndbuf = cfg.rcvbuf = 4u << 20;
    snprintf(cfg.server.listen.host, sizeof(cfg.server.listen.host), "127.0.0.1");
    set_hostport(&cfg.server.target, &echo_addr);
    rc = mpt_server_drv_start(loop, &cfg, &d->server, err, errlen);
    if (rc)
        goto fail;
    mpt_server_drv_local(d->server, &server_addr);

    for (unsigned i = 0; i < o->paths; i++) {
        struct mpt_bridge_options bo;
        struct mpt_addr baddr;
        mpt_bridge_options_init(&bo);
        bo.listen.u.in4.sin_family = AF_INET;
        bo.listen.u.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bo.to = server_addr;
        for (int dir = 0; dir < 2; dir++) {
            bo.impair[dir].loss = o->loss;
            bo.impair[dir].delay_us = o->delay_ms * 1000;
            bo.impair[dir].jitter_us = o->jitter_ms * 1000;
        }
        bo.seed = o->seed * 1000 + i;
        bo.sndbuf = bo.rcvbuf = 4u << 20;
        rc = mpt_bridge_start(loop, &bo, &d->bridges[i]);
        if (rc) {
            d->bridges[i] = NULL;
            snprintf(err, errlen, "cannot start bridge %u: %s", i + 1, mpt_strerror(rc));
            goto fail;
        }
        mpt_bridge_local(d->bridges[i], &baddr);
        set_hostport(&cfg.client.paths[i].bridge, &baddr);
        cfg.client.paths[i].priority = 1;
        cfg.client.paths[i].weight = 1;
    }
    cfg.client.npaths = o->paths;
    cfg.client.mode = (enum mpt_sched_mode)o->mode;
    snprintf(cfg.client.listen.host, sizeof(cfg.client.listen.host), "127.0.0.1");
    rc = mpt_client_drv_start(loop, &cfg, &d->client, err, errlen);
    if (rc)
        goto fail;
    mpt_client_drv_local(d->client, &d->client_addr);

    d->start_us = mpt_loop_now_us(loop);
    d->running = 1;
    uv_timer_start(&d->send_timer, on_send_timer, TICK_MS, TICK_MS);
    uv_timer_start(&d->report_timer, on_report_timer, 100, 100);
    *out = d;
    return 0;
fail:
    mpt_driver_stop(&d->base);
    mpt_loop_stop(loop);
    return rc;
}
