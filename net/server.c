/* The server driver: the listening socket all paths arrive on, one socket per flow connected to
 * its target (so the target sees each flow as its own peer, as behind a NAT), and one timer. */
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/control.h"
#include "net/metrics.h"
#include "net/driver.h"
#include "net/resolve.h"
#include "net/status.h"
#include "net/tunnel.h"
#include "net/udp.h"

struct drv_flow {
    struct mpt_udp udp;
    struct mpt_server_drv *drv;
    uint32_t slot;
};

struct mpt_server_drv {
    struct mpt_driver base; /* lifecycle: every handle below is counted there */
    struct mpt_loop *loop;
    struct mpt_server core;
    struct mpt_outq q;
    struct mpt_udp listen;
    int listen_open;
    struct mpt_addr target;
    struct drv_flow **flows; /* by core flow slot; NULL when closed */
    struct mpt_addr *to;     /* by core flow slot: where a flow of MPT_TARGET_NAMED goes */
    unsigned max_flows;
    uint32_t sndbuf, rcvbuf;
    uv_timer_t timer;
    uv_check_t flusher;
    struct mpt_udp **dest; /* per queue entry: the socket it goes out on */
    struct mpt_udp_msg batch[MPT_UDP_BATCH];
    uint64_t flow_open_failures;
    /* The names of allow rules and peers' targets as resolved at start (a reload keeps them for
     * names it still has). */
    struct allow_name {
        char host[MPT_CONFIG_HOST_MAX];
        struct mpt_addr addr;
    } * names;
    unsigned nnames, names_max;
    struct mpt_control *control;         /* status socket; NULL if it could not be made */
    int reloading;                       /* a reload's lookup is under way */
    struct mpt_metrics *metrics;         /* metrics endpoint; NULL if none */
    struct mpt_udp_errors closed_tx_err; /* send errors of flow sockets since closed */
    int started;                         /* mpt_server_drv_start succeeded */
    uint64_t mtu_next_us;                /* when the paths' MTUs are next read again */
};

/* The last reference is gone: the driver has stopped and every handle has closed. */
static void drv_destroy(struct mpt_driver *base)
{
    struct mpt_server_drv *d = mpt_container_of(base, struct mpt_server_drv, base);

    mpt_server_free(&d->core);
    mpt_outq_free(&d->q);
    free(d->flows);
    free(d->to);
    free(d->dest);
    free(d->names);
    free(d);
}

/* A flow's socket has closed: its memory goes; the driver's reference goes after this. */
static void on_flow_closed(struct mpt_udp *u)
{
    free(u->owner);
}

static void flow_close(struct mpt_server_drv *d, uint32_t slot)
{
    struct drv_flow *f = d->flows[slot];

    if (!f)
        return;
    d->flows[slot] = NULL;
    mpt_udp_errors_add(&d->closed_tx_err, &f->udp.tx.err);
    mpt_udp_close(&f->udp, on_flow_closed);
}

static void on_target(struct mpt_udp *u, const uint8_t *data, size_t len,
                      const struct sockaddr *from);

static void flow_open(struct mpt_server_drv *d, uint32_t slot, const struct mpt_addr *to)
{
    struct drv_flow *f;
    char a[MPT_ADDR_STRLEN];
    int rc;

    flow_close(d, slot);
    f = calloc(1, sizeof(*f));
    if (!f) {
        d->flow_open_failures++;
        return;
    }
    f->drv = d;
    f->slot = slot;
    rc = mpt_driver_udp_open(&d->base, &f->udp, to->u.sa.sa_family, NULL, d->sndbuf, d->rcvbuf,
                             on_target, f);
    if (!rc)
        rc = mpt_udp_connect(&f->udp, &to->u.sa);
    if (rc) {
        /* Logged at 1, 2, 4, 8... failures: a flow retries with each datagram. */
        d->flow_open_failures++;
        if ((d->flow_open_failures & (d->flow_open_failures - 1)) == 0)
            MPT_WARN("cannot open a socket towards %s for a flow: %s (%llu failures so far)",
                     mpt_addr_str(to, a, sizeof(a)), mpt_strerror(rc),
                     (unsigned long long)d->flow_open_failures);
        if (mpt_udp_is_closing(&f->udp)) {
            mpt_udp_close(&f->udp, on_flow_closed);
        } else {
            free(f);
        }
        return;
    }
    d->flows[slot] = f;
}

/* A name a flow named, being resolved for core (MPT_OUT_RESOLVE). */
static void flush(struct mpt_server_drv *d);

struct lookup_job {
    struct mpt_server_drv *d;
    uint32_t slot, gen;
    char host[MPT_TARGET_HOST_MAX + 1];
};

static void after_call(struct mpt_server_drv *d, unsigned from);

static void on_lookup(void *arg, int status, const struct mpt_addr *addr)
{
    struct lookup_job *job = arg;
    struct mpt_server_drv *d = job->d;
    unsigned n;

    if (status)
        MPT_DEBUG("cannot resolve `%s' for a flow: %s", job->host, mpt_strerror(status));
    if (!mpt_driver_stopping(&d->base)) {
        if (mpt_outq_full(&d->q))
            flush(d);
        n = d->q.n;
        mpt_server_on_resolved(&d->core, mpt_loop_now_us(d->loop), job->slot, job->gen, status,
                               addr, &d->q);
        after_call(d, n);
    }
    free(job);
    mpt_driver_unref(&d->base);
}

/* Starts a lookup in the background; core's limit (max_lookups) bounds how many run at once. */
static void lookup_start(struct mpt_server_drv *d, const struct mpt_out *o)
{
    char host[MPT_TARGET_HOST_MAX + 1];
    struct lookup_job *job;
    int rc;

    if (o->len > MPT_TARGET_HOST_MAX)
        return;
    memcpy(host, o->data, o->len);
    host[o->len] = '\0';
    job = calloc(1, sizeof(*job));
    if (!job) {
        mpt_server_on_resolved(&d->core, mpt_loop_now_us(d->loop), o->index, o->gen, UV_ENOMEM,
                               NULL, &d->q);
        return;
    }
    job->d = d;
    job->slot = o->index;
    job->gen = o->gen;
    memcpy(job->host, host, o->len + 1);
    mpt_driver_ref(&d->base);
    rc = mpt_resolve_start(d->loop, host, mpt_addr_port(&o->addr), 0, on_lookup, job);
    if (rc)
        on_lookup(job, rc, NULL);
}

/* Carries out at once what the last core call asked of the sockets — closed flows first (their
 * slots may be opened again in the queue), then the queue's new entries in order — and notes the
 * socket each new datagram goes out on; the datagrams themselves wait for flush(). */
static unsigned path_max_dgram(void *arg, const struct mpt_addr *to);

static void after_call(struct mpt_server_drv *d, unsigned from)
{
    if (d->core.mtu_dirty)
        mpt_server_set_path_mtus(&d->core, 0, path_max_dgram, d);
    for (uint32_t i = 0; i < d->core.nclosed; i++)
        flow_close(d, d->core.closed[i]);
    d->core.nclosed = 0;
    for (unsigned i = from; i < d->q.n; i++) {
        const struct mpt_out *o = &d->q.v[i];
        d->dest[i] = NULL;
        switch (o->kind) {
        case MPT_OUT_PATH:
            d->dest[i] = d->listen_open ? &d->listen : NULL;
            break;
        case MPT_OUT_FLOW_OPEN:
            if (o->index < d->max_flows) {
                if (o->target == MPT_TARGET_NAMED)
                    d->to[o->index] = o->addr;
                flow_open(d, o->index, o->target == MPT_TARGET_NAMED ? &o->addr : &d->target);
            }
            break;
        case MPT_OUT_RESOLVE:
            lookup_start(d, o);
            break;
        case MPT_OUT_FLOW:
            if (o->index >= d->max_flows)
                break;
            /* A socket that could not be opened (descriptors or buffers short for a moment) is
             * tried again with the flow's next datagram, rather than the flow staying mute. */
            if (!d->flows[o->index]) {
                struct mpt_addr to;
                int r = mpt_server_flow_reopen(&d->core, o->index, &to);
                if (r >= 0)
                    flow_open(d, o->index, r == 2 ? &d->to[o->index] : r ? &to : &d->target);
            }
            if (d->flows[o->index])
                d->dest[i] = &d->flows[o->index]->udp;
            break;
        default:
            break;
        }
    }
}

/* Sends what is queued, runs of the same socket in one sendmmsg call, then empties the queue. A
 * flow closed since its datagram was queued has lost its descriptor: the datagram is dropped. */
static void flush(struct mpt_server_drv *d)
{
    unsigned i = 0;

    while (i < d->q.n) {
        struct mpt_udp *u = d->dest[i];
        unsigned n = 0;

        if (!u) {
            i++;
            continue;
        }
        do {
            const struct mpt_out *o = &d->q.v[i];
            d->batch[n].buf = o->data;
            d->batch[n].len = o->len;
            d->batch[n].to = o->kind == MPT_OUT_PATH ? &o->addr.u.sa : NULL;
            /* The address the path arrived at, so that a multi-homed server answers from it. */
            d->batch[n].from =
                o->kind == MPT_OUT_PATH && o->src.u.sa.sa_family ? &o->src.u.sa : NULL;
            n++;
            i++;
        } while (i < d->q.n && n < MPT_UDP_BATCH && d->dest[i] == u);
        mpt_udp_send_batch(u, d->batch, n);
    }
    mpt_outq_reset(&d->q);
}

static void on_flush(uv_check_t *h)
{
    struct mpt_server_drv *d = mpt_container_of(h, struct mpt_server_drv, flusher);

    if (d->q.n)
        flush(d);
}

/* What the path to `to` carries whole: its route MTU less IP and UDP headers (0: unknown). */
static unsigned path_max_dgram(void *arg, const struct mpt_addr *to)
{
    struct mpt_server_drv *d = arg;
    unsigned mtu = d->listen_open ? mpt_udp_mtu(&d->listen, &to->u.sa) : 0;
    unsigned hdr = mpt_udp_addr_headers(&to->u.sa);

    return mtu > hdr ? mtu - hdr : 0;
}

static void on_timer(uv_timer_t *t)
{
    struct mpt_server_drv *d = mpt_container_of(t, struct mpt_server_drv, timer);
    uint64_t now = mpt_loop_now_us(d->loop), next;
    unsigned from;

    /* The paths' MTUs, read again from the socket's cache, so that replies too large for them
     * go as pieces (PROTOCOL.md §5); new paths are read as they come (after_call). */
    if (now >= d->mtu_next_us) {
        d->mtu_next_us = now + (uint64_t)MPT_UDP_MTU_REFRESH_MS * 1000;
        mpt_server_set_path_mtus(&d->core, 1, path_max_dgram, d);
    }

    /* Handshake timestamps are judged by the wall clock, which may be set while we run. */
    mpt_server_set_wall(&d->core, now, mpt_loop_wall_us());
    if (d->q.n)
        flush(d);
    from = d->q.n;
    next = mpt_server_on_timer(&d->core, now, &d->q);
    after_call(d, from);
    /* Outside an I/O callback the check handle would wait for the next poll: send now. */
    flush(d);
    now = mpt_loop_now_us(d->loop);
    uv_timer_start(&d->timer, on_timer, next > now ? (next - now + 999) / 1000 : 0, 0);
}

static void on_path(struct mpt_udp *u, const uint8_t *data, size_t len, const struct sockaddr *from)
{
    struct mpt_server_drv *d = u->owner;
    const struct sockaddr *to = mpt_udp_rx_local(u);
    struct mpt_addr src, local;
    unsigned n;

    if (mpt_addr_set(&src, from) != 0)
        return;
    if (mpt_outq_full(&d->q))
        flush(d);
    n = d->q.n;
    mpt_server_on_path_local(&d->core, mpt_loop_now_us(d->loop), &src,
                             to && mpt_addr_set(&local, to) == 0 ? &local : NULL, data, len, &d->q);
    after_call(d, n);
    /* A datagram held for order wants the timer sooner than it was set (PROTOCOL.md §8.1). */
    if (d->core.wake) {
        d->core.wake = 0;
        uv_timer_start(&d->timer, on_timer, 0, 0);
    }
}

static void on_target(struct mpt_udp *u, const uint8_t *data, size_t len,
                      const struct sockaddr *from)
{
    struct drv_flow *f = u->owner;
    struct mpt_server_drv *d = f->drv;
    unsigned n;

    if (mpt_outq_full(&d->q))
        flush(d);
    n = d->q.n;
    mpt_server_on_target(&d->core, mpt_loop_now_us(d->loop), f->slot, data, len, &d->q);
    after_call(d, n);
}

/* A host name of an allow rule or a peer's target: a literal as it is, else as resolved at start.
 * At start (start = 1) a name not resolved yet is resolved, blocking, and remembered; a reload
 * must not wait for a name server, so it reuses those addresses and skips names new since the
 * start (they take effect at the next start). Returns 1 with *addr (port `port'), 0 for a name
 * skipped, or a negative code with err set (`key' names the line's key). */
static int name_addr(struct mpt_server_drv *d, const struct mpt_config *cfg, int start,
                     const char *host, uint16_t port, int line, const char *key,
                     struct mpt_addr *addr, char *err, size_t errlen)
{
    int rc;

    if (mpt_target_literal(host, port, addr) == 0)
        return 1;
    for (unsigned k = 0; k < d->nnames; k++)
        if (strcmp(d->names[k].host, host) == 0) {
            *addr = d->names[k].addr;
            if (addr->u.sa.sa_family == AF_INET)
                addr->u.in4.sin_port = htons(port);
            else
                addr->u.in6.sin6_port = htons(port);
            return 1;
        }
    if (!start)
        return 0;
    if (d->nnames >= d->names_max) {
        snprintf(err, errlen, "%.300s:%d: %s: too many host names", cfg->file, line, key);
        return UV_ENOMEM;
    }
    rc = mpt_resolve(d->loop, host, port, 0, addr);
    if (rc) {
        snprintf(err, errlen, "%.300s:%d: %s: cannot resolve `%.100s': %s", cfg->file, line, key,
                 host, mpt_strerror(rc));
        return rc;
    }
    snprintf(d->names[d->nnames].host, sizeof(d->names[0].host), "%s", host);
    d->names[d->nnames++].addr = *addr;
    return 1;
}

/* An allow line as core takes it: a block as written, a name as resolved (one address: a /32 or
 * a /128). Returns 1 with *r, 0 for a name skipped (name_addr), or a negative code. */
static int allow_rule(struct mpt_server_drv *d, const struct mpt_config *cfg, int start,
                      const struct mpt_allow *a, struct mpt_allow_rule *r, char *err, size_t errlen)
{
    struct mpt_addr addr;
    int rc;

    memset(r, 0, sizeof(*r));
    r->port_lo = a->port_lo;
    r->port_hi = a->port_hi;
    if (a->family) {
        r->family = (uint8_t)a->family;
        r->prefix = (uint8_t)a->prefix;
        memcpy(r->addr, a->addr, sizeof(r->addr));
        return 1;
    }
    rc = name_addr(d, cfg, start, a->host.host, a->port_lo, a->line, "allow", &addr, err, errlen);
    if (rc <= 0)
        return rc;
    if (addr.u.sa.sa_family == AF_INET) {
        r->family = AF_INET;
        r->prefix = 32;
        memcpy(r->addr, &addr.u.in4.sin_addr, 4);
    } else {
        r->family = AF_INET6;
        r->prefix = 128;
        memcpy(r->addr, &addr.u.in6.sin6_addr, 16);
    }
    return 1;
}

/* [server]'s allow rules for core, names resolved by name_addr. Returns the number of rules in
 * out[MPT_CONFIG_MAX_ALLOW], or a negative code with err set. */
static int allow_rules(struct mpt_server_drv *d, const struct mpt_config *cfg, int start,
                       struct mpt_allow_rule *out, char *err, size_t errlen)
{
    const struct mpt_server_config *sc = &cfg->server;
    unsigned n = 0, skipped = 0;

    for (unsigned i = 0; i < sc->nallow; i++) {
        int rc = allow_rule(d, cfg, start, &sc->allow[i], &out[n], err, errlen);
        if (rc < 0)
            return rc;
        if (rc)
            n++;
        else
            skipped++;
    }
    if (skipped)
        MPT_WARN(
            "%s: [server] allow: %u host name%s new since the start: resolved at the next start",
            cfg->file, skipped, skipped == 1 ? "" : "s");
    return (int)n;
}

/* The control socket and the metrics endpoint are drivers of their own: ours stays until they
 * have closed. */
static void on_control_closed(void *arg)
{
    struct mpt_server_drv *d = arg;
    mpt_driver_unref(&d->base);
}

static void log_summary(const struct mpt_server_drv *d)
{
    const struct mpt_counters *c = &d->core.ctr;

    MPT_INFO("server stopping: %llu sessions, %llu datagrams to the target, %llu back, "
             "%llu duplicate copies dropped, %llu rejected",
             (unsigned long long)c->handshakes, (unsigned long long)c->app_tx,
             (unsigned long long)c->app_rx, (unsigned long long)c->duplicates,
             (unsigned long long)mpt_counters_rejected(c));
}

/* Closes every handle (mpt_driver_stop calls this once). */
static void drv_stop(struct mpt_driver *base)
{
    struct mpt_server_drv *d = mpt_container_of(base, struct mpt_server_drv, base);

    if (d->started) /* a failed start has said why already */
        log_summary(d);
    if (d->q.n)
        flush(d);
    mpt_server_close_all(&d->core, &d->q);
    after_call(d, 0);
    mpt_outq_reset(&d->q);
    mpt_driver_close((uv_handle_t *)&d->flusher);
    mpt_driver_close((uv_handle_t *)&d->timer);
    if (d->control) {
        /* The control socket is a driver of its own: ours stays until it has closed. */
        mpt_driver_ref(&d->base);
        mpt_control_close(d->control, on_control_closed, d);
        d->control = NULL;
    }
    if (d->metrics) {
        mpt_driver_ref(&d->base);
        mpt_metrics_close(d->metrics, on_control_closed, d);
        d->metrics = NULL;
    }
    if (d->listen_open) {
        d->listen_open = 0;
        mpt_udp_close(&d->listen, NULL);
    }
}

static const struct mpt_driver_ops server_ops = {"server", drv_stop, drv_destroy};

static void send_errors(void *arg, struct mpt_udp_errors *e)
{
    struct mpt_server_drv *d = arg;

    mpt_udp_errors_add(e, &d->listen.tx.err);
    mpt_udp_errors_add(e, &d->closed_tx_err);
    for (unsigned i = 0; i < d->max_flows; i++)
        if (d->flows[i])
            mpt_udp_errors_add(e, &d->flows[i]->udp.tx.err);
}

static unsigned path_mtu(void *arg, unsigned path, const struct mpt_addr *to)
{
    struct mpt_server_drv *d = arg;

    return d->listen_open ? mpt_udp_mtu(&d->listen, &to->u.sa) : 0;
}

static void status_info(struct mpt_server_drv *d, const struct mpt_config *cfg,
                        struct mpt_status_server_info *info)
{
    memset(info, 0, sizeof(*info));
    info->core = &d->core;
    info->send_errors = send_errors;
    info->mtu = path_mtu;
    info->drv = d;
    info->cfg = cfg;
    info->target = d->target;
    mpt_server_drv_local(d, &info->listen);
}

/* The metrics endpoint, if configured. Returns 0, or a negative code with the reason in err. */
static int start_metrics(struct mpt_server_drv *d, const struct mpt_config *cfg, char *err,
                         size_t errlen)
{
    struct mpt_status_server_info info;

    status_info(d, cfg, &info);
    return mpt_status_server_metrics_start(d->loop, &info, cfg->file, &cfg->server.metrics,
                                           &d->metrics, err, errlen);
}

/* Key mode: the peers of the configuration as core takes them, into *out (in key memory: free
 * with mpt_secure_free, npeers entries), their own allow rules into
 * rules[MPT_CONFIG_MAX_PEER_ALLOW]
 * (*nrules) and their targets, names resolved by name_addr (a peer's target named by a name new
 * since the start is none until the next start). Returns 0, or a negative code with err set. */
static int server_peers(struct mpt_server_drv *d, const struct mpt_config *cfg, int start,
                        struct mpt_server_peer **out, struct mpt_allow_rule *rules,
                        unsigned *nrules, char *err, size_t errlen)
{
    const struct mpt_server_config *sc = &cfg->server;
    struct mpt_server_peer *v = mpt_secure_alloc(sc->npeers * sizeof(*v), NULL);
    unsigned n = 0, skipped = 0;
    int rc = 0;

    *out = NULL;
    *nrules = 0;
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    for (unsigned i = 0; i < sc->npeers && rc >= 0; i++) {
        const struct mpt_config_peer *cp = &sc->peers[i];
        snprintf(v[i].name, sizeof(v[i].name), "%s", cp->name);
        memcpy(v[i].public_key, cp->public_key, MPT_KEY_LEN);
        mpt_config_peer_psk(cfg, cp, v[i].psk);
        if (!cp->nallow && !cp->target.line)
            continue; /* [server]'s rules and target */
        v[i].own = 1;
        v[i].allow_first = n;
        for (unsigned k = 0; k < cp->nallow && rc >= 0; k++) {
            rc = allow_rule(d, cfg, start, &sc->peer_allow[cp->allow_first + k], &rules[n], err,
                            errlen);
            if (rc > 0)
                n++;
            else if (rc == 0)
                skipped++;
        }
        v[i].nallow = n - v[i].allow_first;
        if (cp->target.line && rc >= 0) {
            rc = name_addr(d, cfg, start, cp->target.host, cp->target.port, cp->target.line,
                           "target", &v[i].target, err, errlen);
            if (rc == 0)
                skipped++;
        }
    }
    if (rc < 0) {
        mpt_secure_free(v, sc->npeers * sizeof(*v));
        return rc;
    }
    if (skipped)
        MPT_WARN("%s: [peer] allow, target: %u host name%s new since the start: resolved at the "
                 "next start (a target so named is none until then)",
                 cfg->file, skipped, skipped == 1 ? "" : "s");
    *out = v;
    *nrules = n;
    return 0;
}

/* Key mode: how many peers have rules of their own, at info level. */
static void log_peer_rules(const struct mpt_config *cfg, unsigned nrules)
{
    const struct mpt_server_config *sc = &cfg->server;
    unsigned own = 0;

    for (unsigned i = 0; i < sc->npeers; i++)
        own += sc->peers[i].nallow || sc->peers[i].target.line;
    if (own)
        MPT_INFO("%u peer%s with allow rules or a target of their own (%u rules); the others "
                 "under [server]'s",
                 own, own == 1 ? "" : "s", nrules);
}

int mpt_server_drv_start(struct mpt_loop *loop, const struct mpt_config *cfg,
                         struct mpt_server_drv **out, char *err, size_t errlen)
{
    const struct mpt_server_config *sc = &cfg->server;
    struct mpt_server_params params;
    struct mpt_server_peer *peers = NULL;
    struct mpt_allow_rule *peer_rules = NULL;
    unsigned npeer_rules = 0;
    struct mpt_server_drv *d;
    struct mpt_status_server_info info;
    struct mpt_addr laddr;
    char a[MPT_ADDR_STRLEN], b[MPT_ADDR_STRLEN];
    int rc = 0;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    d->loop = loop;
    d->sndbuf = cfg->sndbuf;
    d->rcvbuf = cfg->rcvbuf;
    d->max_flows = sc->max_flows;
    memset(&params, 0, sizeof(params));
    params.rekey_after_ms = cfg->rekey_ms;
    /* Every name of an allow rule or a peer's target is resolved once, at start. */
    d->names_max = sc->nallow + sc->npeer_allow + sc->npeers;
    d->names = calloc(d->names_max ? d->names_max : 1, sizeof(*d->names));
    if (!d->names)
        rc = UV_ENOMEM;
    if (!rc && mpt_config_key_mode(cfg, MPT_ROLE_SERVER)) {
        peer_rules = calloc(MPT_CONFIG_MAX_PEER_ALLOW, sizeof(*peer_rules));
        rc = peer_rules ? server_peers(d, cfg, 1, &peers, peer_rules, &npeer_rules, err, errlen)
                        : UV_ENOMEM;
        if (rc && rc != UV_ENOMEM) {
            free(peer_rules);
            free(d->names);
            free(d);
            return rc;
        }
        params.private_key = sc->key.private_key;
        params.peers = peers;
        params.npeers = sc->npeers;
        params.peer_allow = peer_rules;
        params.npeer_allow = npeer_rules;
    } else if (!rc) {
        params.secret = cfg->secret;
    }
    params.max_sessions = sc->max_sessions;
    params.max_flows = sc->max_flows;
    params.flow_timeout_ms = sc->flow_timeout_ms;
    params.session_timeout_ms = sc->session_timeout_ms;
    params.reorder_cap_ms = sc->reorder_cap_ms;
    params.ntargets = sc->target.port ? 1 : 0; /* none: only what forwards name and allow covers */
    params.no_aes = cfg->no_aes;
    d->flows = calloc(sc->max_flows, sizeof(*d->flows));
    d->to = calloc(sc->max_flows, sizeof(*d->to));
    if (!rc)
        rc = d->flows && d->to && (peers || !params.private_key)
                 ? mpt_server_init(&d->core, &params)
                 : UV_ENOMEM;
    mpt_secure_free(peers, sc->npeers * sizeof(*peers));
    free(peer_rules);
    if (!rc)
        mpt_server_set_wall(&d->core, mpt_loop_now_us(loop), mpt_loop_wall_us());
    if (!rc)
        rc = mpt_outq_init(&d->q, 1024, 1u << 20);
    if (!rc && !(d->dest = calloc(d->q.max, sizeof(*d->dest))))
        rc = UV_ENOMEM;
    if (rc) {
        snprintf(err, errlen, "cannot set up the server: %s", mpt_strerror(rc));
        mpt_server_free(&d->core);
        mpt_outq_free(&d->q);
        free(d->flows);
        free(d->dest);
        free(d->names);
        free(d);
        return rc;
    }
    mpt_driver_init(&d->base, loop, &server_ops, 1);
    uv_timer_init(mpt_loop_uv(loop), &d->timer);
    uv_check_init(mpt_loop_uv(loop), &d->flusher);
    mpt_driver_own(&d->base, (uv_handle_t *)&d->timer);
    mpt_driver_own(&d->base, (uv_handle_t *)&d->flusher);
    uv_check_start(&d->flusher, on_flush);

    rc = sc->target.port ? mpt_resolve(loop, sc->target.host, sc->target.port, 0, &d->target) : 0;
    if (rc) {
        snprintf(err, errlen, "%s:%d: target: cannot resolve `%s': %s", cfg->file, sc->target.line,
                 sc->target.host, mpt_strerror(rc));
        goto fail;
    }
    {
        struct mpt_allow_rule *rules = calloc(MPT_CONFIG_MAX_ALLOW, sizeof(*rules));

        rc = rules ? allow_rules(d, cfg, 1, rules, err, errlen) : UV_ENOMEM;
        if (rc == UV_ENOMEM)
            snprintf(err, errlen, "out of memory");
        if (rc >= 0)
            mpt_server_set_allow(&d->core, rules, (unsigned)rc);
        free(rules);
        if (rc < 0)
            goto fail;
        if (rc)
            MPT_INFO("%u allow rule%s", (unsigned)rc, rc == 1 ? "" : "s");
        log_peer_rules(cfg, npeer_rules);
    }
    rc = mpt_resolve(loop, sc->listen.host, sc->listen.port, 1, &laddr);
    if (rc) {
        snprintf(err, errlen, "%s:%d: listen: cannot resolve `%s': %s", cfg->file, sc->listen.line,
                 sc->listen.host, mpt_strerror(rc));
        goto fail;
    }
    rc = mpt_driver_udp_open(&d->base, &d->listen, 0, &laddr.u.sa, cfg->sndbuf, cfg->rcvbuf,
                             on_path, d);
    if (rc) {
        snprintf(err, errlen, "%s:%d: listen: cannot listen on %s: %s", cfg->file, sc->listen.line,
                 mpt_addr_str(&laddr, a, sizeof(a)), mpt_strerror(rc));
        goto fail;
    }
    d->listen_open = 1;
    /* Each datagram's local address: replies leave from the address the path arrived at. */
    rc = mpt_udp_want_local(&d->listen);
    if (rc)
        MPT_WARN("cannot learn the local address of datagrams (%s): on a host with several "
                 "addresses, replies may leave from another than the client wrote to",
                 mpt_strerror(rc));
    rc = start_metrics(d, cfg, err, errlen);
    if (rc)
        goto fail;
    MPT_INFO("server listening on %s, target %s", mpt_addr_str(&laddr, a, sizeof(a)),
             sc->target.port ? mpt_addr_str(&d->target, b, sizeof(b)) : "none");
    uv_timer_start(&d->timer, on_timer, 1000, 0);
    status_info(d, cfg, &info);
    mpt_status_server_start(loop, &info, &d->control);
    d->started = 1;
    *out = d;
    return 0;
fail:
    /* Whatever was opened closes with the rest; d goes with the last close callback. */
    mpt_driver_stop(&d->base);
    return rc;
}

const struct mpt_server *mpt_server_drv_core(const struct mpt_server_drv *d)
{
    return &d->core;
}

void mpt_server_drv_local(struct mpt_server_drv *d, struct mpt_addr *out)
{
    struct sockaddr_storage ss;

    memset(out, 0, sizeof(*out));
    if (mpt_udp_local(&d->listen, &ss) == 0)
        mpt_addr_set(out, (struct sockaddr *)&ss);
}

struct reload_job;

/* A host name of the new configuration that the cache lacks, being resolved for a reload. */
struct reload_name {
    struct reload_job *job;
    const char *host; /* in job->cfg */
    const char *key;
    int line;
    int ok; /* resolved: addr */
    struct mpt_addr addr;
};

/* A reload under way: the target, and the host names of allow rules and peers' targets that were
 * not resolved before, being resolved in the background. The reload is applied when the last
 * answer is in, or fails (changing nothing) with the first that did not resolve. */
struct reload_job {
    struct mpt_server_drv *d;
    const struct mpt_config *cfg;
    mpt_drv_reload_cb cb;
    void *arg;
    unsigned pending; /* answers to come, + 1 while the lookups are being started */
    int status;       /* the first failure, 0 if none */
    char err[MPT_CONFIG_ERR_MAX];
    struct mpt_addr target;
    struct reload_name *names;
    unsigned nnames, names_max;
};

typedef void (*config_name_fn)(void *arg, const char *host, int line, const char *key);

/* Calls fn for every host name (not an address literal) of cfg's allow rules and peers' targets,
 * repeats included. */
static void config_names(const struct mpt_config *cfg, config_name_fn fn, void *arg)
{
    const struct mpt_server_config *sc = &cfg->server;
    struct mpt_addr a;

    for (unsigned i = 0; i < sc->nallow; i++)
        if (!sc->allow[i].family)
            fn(arg, sc->allow[i].host.host, sc->allow[i].line, "allow");
    for (unsigned i = 0; i < sc->npeers; i++) {
        const struct mpt_config_peer *cp = &sc->peers[i];
        for (unsigned k = 0; k < cp->nallow; k++) {
            const struct mpt_allow *r = &sc->peer_allow[cp->allow_first + k];
            if (!r->family)
                fn(arg, r->host.host, r->line, "allow");
        }
        if (cp->target.line && mpt_target_literal(cp->target.host, 1, &a) != 0)
            fn(arg, cp->target.host, cp->target.line, "target");
    }
}

static unsigned config_names_max(const struct mpt_config *cfg)
{
    const struct mpt_server_config *sc = &cfg->server;

    return sc->nallow + sc->npeer_allow + sc->npeers;
}

static const struct allow_name *cached(const struct mpt_server_drv *d, const char *host)
{
    for (unsigned k = 0; k < d->nnames; k++)
        if (strcmp(d->names[k].host, host) == 0)
            return &d->names[k];
    return NULL;
}

/* A name the cache lacks, once, for a lookup. */
static void reload_collect(void *arg, const char *host, int line, const char *key)
{
    struct reload_job *job = arg;

    if (cached(job->d, host) || job->nnames >= job->names_max)
        return;
    for (unsigned i = 0; i < job->nnames; i++)
        if (strcmp(job->names[i].host, host) == 0)
            return;
    job->names[job->nnames].job = job;
    job->names[job->nnames].host = host;
    job->names[job->nnames].line = line;
    job->names[job->nnames++].key = key;
}

/* The new cache: the names the new configuration uses, from the old one or the lookups. */
struct cache_build {
    struct mpt_server_drv *d;
    struct reload_job *job;
    struct allow_name *v;
    unsigned n, max;
};

static void cache_add(void *arg, const char *host, int line, const char *key)
{
    struct cache_build *b = arg;
    const struct allow_name *old = cached(b->d, host);

    for (unsigned i = 0; i < b->n; i++)
        if (strcmp(b->v[i].host, host) == 0)
            return;
    if (b->n >= b->max)
        return;
    if (old) {
        b->v[b->n++] = *old;
        return;
    }
    for (unsigned i = 0; i < b->job->nnames; i++)
        if (b->job->names[i].ok && strcmp(b->job->names[i].host, host) == 0) {
            snprintf(b->v[b->n].host, sizeof(b->v[0].host), "%s", host);
            b->v[b->n++].addr = b->job->names[i].addr;
            return;
        }
}

static int cache_rebuild(struct mpt_server_drv *d, struct reload_job *job)
{
    struct cache_build b = {d, job, NULL, 0, config_names_max(job->cfg)};

    b.v = calloc(b.max ? b.max : 1, sizeof(*b.v));
    if (!b.v)
        return UV_ENOMEM;
    config_names(job->cfg, cache_add, &b);
    free(d->names);
    d->names = b.v;
    d->nnames = b.n;
    d->names_max = b.max;
    return 0;
}

static int reload_apply(struct mpt_server_drv *d, const struct mpt_config *cfg,
                        const struct mpt_addr *target, char *err, size_t errlen);

/* One answer in: the last one applies the reload, or reports its first failure. */
static void reload_step(struct reload_job *job)
{
    struct mpt_server_drv *d = job->d;
    int status = job->status;

    if (--job->pending)
        return;
    if (!status && mpt_driver_stopping(&d->base)) {
        snprintf(job->err, sizeof(job->err), "the server is stopping");
        status = UV_ECANCELED;
    }
    if (!status && (status = cache_rebuild(d, job)) != 0)
        snprintf(job->err, sizeof(job->err), "out of memory");
    if (!status)
        status = reload_apply(d, job->cfg, &job->target, job->err, sizeof(job->err));
    job->cb(job->arg, status, status ? job->err : "");
    d->reloading = 0;
    free(job->names);
    free(job);
    mpt_driver_unref(&d->base);
}

static void on_name_resolved(void *arg, int status, const struct mpt_addr *addr)
{
    struct reload_name *n = arg;
    struct reload_job *job = n->job;

    if (status == 0 && addr) {
        n->ok = 1;
        n->addr = *addr;
    } else if (!job->status) {
        job->status = status ? status : UV_EAI_NONAME;
        snprintf(job->err, sizeof(job->err), "%.300s:%d: %s: cannot resolve `%.100s': %s",
                 job->cfg->file, n->line, n->key, n->host, mpt_strerror(job->status));
    }
    reload_step(job);
}

static int reload_apply(struct mpt_server_drv *d, const struct mpt_config *cfg,
                        const struct mpt_addr *target, char *err, size_t errlen)
{
    const struct mpt_server_config *sc = &cfg->server;
    char a[MPT_ADDR_STRLEN];
    int rc;

    if (mpt_driver_stopping(&d->base)) {
        snprintf(err, errlen, "the server is stopping");
        return UV_ECANCELED;
    }
    if (mpt_config_key_mode(cfg, MPT_ROLE_SERVER) != d->core.sec->keys.keymode) {
        snprintf(err, errlen,
                 "%.300s: [server] private_key: a change between shared-secret mode and key "
                 "mode takes a restart",
                 cfg->file);
        return UV_EINVAL;
    }
    if (d->core.sec->keys.keymode) {
        struct mpt_server_peer *peers = NULL;
        struct mpt_allow_rule *rules = calloc(MPT_CONFIG_MAX_PEER_ALLOW, sizeof(*rules));
        unsigned from = d->q.n, nrules = 0;

        rc = rules ? server_peers(d, cfg, 0, &peers, rules, &nrules, err, errlen) : UV_ENOMEM;
        if (!rc)
            rc = mpt_server_set_peers(&d->core, sc->key.private_key, peers, sc->npeers, rules,
                                      nrules, &d->q);
        mpt_secure_free(peers, sc->npeers * sizeof(*peers));
        free(rules);
        if (rc < 0) {
            snprintf(err, errlen, "%.300s: [peer]: cannot take the new keys", cfg->file);
            return rc == -ENOMEM ? UV_ENOMEM : UV_EINVAL;
        }
        after_call(d, from);
        flush(d);
        MPT_INFO("peers: %u listed; %d session%s of peers no longer listed closed", sc->npeers, rc,
                 rc == 1 ? "" : "s");
        log_peer_rules(cfg, nrules);
    } else {
        rc = mpt_server_set_secret(&d->core, cfg->secret);
        if (rc < 0) {
            snprintf(err, errlen, "%.300s: [tunnel]: cannot derive keys from the secret",
                     cfg->file);
            return UV_EINVAL;
        }
        /* Sessions keep the keys they were opened with; new handshakes need the new secret. */
        if (rc > 0)
            MPT_INFO("new secret: new sessions need it; open ones go on under their keys");
    }
    if (!mpt_addr_equal(target, &d->target))
        MPT_INFO("target is now %s (new flows; open ones keep theirs)",
                 target->u.sa.sa_family ? mpt_addr_str(target, a, sizeof(a)) : "none");
    d->target = *target;
    d->core.p.ntargets = target->u.sa.sa_family ? 1 : 0;
    d->core.p.flow_timeout_ms = sc->flow_timeout_ms;
    d->core.p.session_timeout_ms = sc->session_timeout_ms;
    d->core.p.reorder_cap_ms = sc->reorder_cap_ms;
    {
        struct mpt_allow_rule *rules = calloc(MPT_CONFIG_MAX_ALLOW, sizeof(*rules));
        int n = rules ? allow_rules(d, cfg, 0, rules, err, errlen) : UV_ENOMEM;

        if (n >= 0)
            mpt_server_set_allow(&d->core, rules, (unsigned)n);
        else
            MPT_WARN("allow rules unchanged: out of memory");
        free(rules);
    }
    if (sc->max_flows != d->core.p.max_flows || sc->max_sessions != d->core.p.max_sessions)
        MPT_WARN("%s: [server] max_flows, max_sessions: take effect at the next start", cfg->file);
    MPT_INFO("server reloaded");
    return 0;
}

static void on_target_resolved(void *arg, int status, const struct mpt_addr *addr)
{
    struct reload_job *job = arg;
    const struct mpt_server_config *sc = &job->cfg->server;

    if (status == 0 && addr) {
        job->target = *addr;
    } else if (!job->status) {
        job->status = status ? status : UV_EAI_NONAME;
        snprintf(job->err, sizeof(job->err), "%.300s:%d: target: cannot resolve `%.100s': %s",
                 job->cfg->file, sc->target.line, sc->target.host, mpt_strerror(job->status));
    }
    reload_step(job);
}

void mpt_server_drv_reload(struct mpt_server_drv *d, const struct mpt_config *cfg,
                           mpt_drv_reload_cb cb, void *arg)
{
    const struct mpt_server_config *sc = &cfg->server;
    struct reload_job *job;
    int rc;

    if (mpt_driver_stopping(&d->base) || d->reloading) {
        cb(arg, UV_EBUSY,
           d->reloading ? "a reload is under way already" : "the server is stopping");
        return;
    }
    job = calloc(1, sizeof(*job));
    if (job) {
        job->names_max = config_names_max(cfg);
        job->names = calloc(job->names_max ? job->names_max : 1, sizeof(*job->names));
    }
    if (!job || !job->names) {
        free(job);
        cb(arg, UV_ENOMEM, "out of memory");
        return;
    }
    job->d = d;
    job->cfg = cfg;
    job->cb = cb;
    job->arg = arg;
    d->reloading = 1;
    mpt_driver_ref(&d->base); /* until the lookups are done */
    job->pending = 1;
    /* Names resolved before keep their addresses; new ones are looked up now, all at once. */
    config_names(cfg, reload_collect, job);
    if (job->nnames)
        MPT_INFO("reload: resolving %u host name%s new to the file", job->nnames,
                 job->nnames == 1 ? "" : "s");
    for (unsigned i = 0; i < job->nnames; i++) {
        job->pending++;
        rc = mpt_resolve_start(d->loop, job->names[i].host, 1, 0, on_name_resolved, &job->names[i]);
        if (rc)
            on_name_resolved(&job->names[i], rc, NULL);
    }
    if (sc->target.port) {
        job->pending++;
        rc = mpt_resolve_start(d->loop, sc->target.host, sc->target.port, 0, on_target_resolved,
                               job);
        if (rc)
            on_target_resolved(job, rc, NULL);
    }
    reload_step(job);
}
