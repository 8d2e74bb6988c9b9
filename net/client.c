/* The client driver: one socket where local applications send, one socket per path, one timer;
 * core decides everything else. Each path has a socket of its own, so that a full send buffer or
 * an error on one path never drops another path's copy (the copies' losses must stay
 * independent), and each path's send errors are counted apart. A received datagram belongs to
 * the path of its socket, if it comes from that path's bridge. What core queues during a round
 * of the loop is sent at its end (a check handle), in batches per socket. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/control.h"
#include "net/metrics.h"
#include "net/driver.h"
#include "net/resolve.h"
#include "net/socks.h"
#include "net/status.h"
#include "net/tunnel.h"
#include "net/udp.h"

_Static_assert((int)MPT_MODE_REDUNDANT == (int)MPT_CLIENT_REDUNDANT &&
                   (int)MPT_MODE_ADAPTIVE == (int)MPT_CLIENT_ADAPTIVE &&
                   (int)MPT_MODE_BACKUP == (int)MPT_CLIENT_BACKUP &&
                   (int)MPT_MODE_BALANCE == (int)MPT_CLIENT_BALANCE &&
                   (int)MPT_MODE_FEC == (int)MPT_CLIENT_FEC,
               "configuration and core agree on the scheduling modes");

struct drv_sock {
    struct mpt_udp udp;
    struct mpt_client_drv *drv;
    int open;
    int closing; /* closed by a reload, its close not yet complete: the slot is busy */
    int family;
    char bind[MPT_CONFIG_HOST_MAX]; /* what it was opened for */
    char device[MPT_CONFIG_NAME_MAX];
};

/* Sockets: one per path, and as many again closing after a reload. */
#define DRV_SOCKS (2 * MPT_MAX_PATHS)

struct drv_path {
    struct mpt_client_drv *drv;
    unsigned index;
    struct mpt_addr remote;
    unsigned sock;                /* index into socks */
    struct mpt_udp_errors tx_err; /* datagrams to this path that the kernel refused */
    char name[MPT_CONFIG_NAME_MAX];
    unsigned mtu; /* route MTU as last read for the fragmentation warning; 0 unknown */
};

/* A [forward NAME]: its own local socket, whose flows name the forward's target. */
struct drv_forward {
    struct mpt_udp udp;
    struct mpt_client_drv *drv;
    uint16_t front; /* 1 + its index: MPT_OUT_APP's target */
    int open;
    char host[MPT_CONFIG_HOST_MAX];
    uint16_t port;
};

struct mpt_client_drv {
    struct mpt_driver base; /* lifecycle: every handle below is counted there */
    struct mpt_loop *loop;
    struct mpt_client core;
    struct mpt_outq q;
    struct mpt_udp listen;
    int listen_open;
    struct drv_path paths[MPT_MAX_PATHS];
    unsigned npaths;
    struct mpt_path_config pcfg[MPT_MAX_PATHS]; /* each path as configured */
    struct drv_sock socks[DRV_SOCKS];
    struct mpt_udp_msg batch[MPT_UDP_BATCH];
    uv_timer_t timer;
    uv_check_t flusher;
    struct mpt_control *control; /* status socket; NULL if it could not be made */
    struct mpt_metrics *metrics; /* metrics endpoint; NULL if none */
    int started;                 /* mpt_client_drv_start succeeded */
    size_t frag_limit;           /* application datagrams up to this size fit every path */
    uint64_t frag_check_us;      /* when frag_limit is next read again from the MTUs */
    int frag_warned;
    uint64_t split_mtu_us; /* when the core is next told the paths' MTUs (splitting, §5) */
    struct mpt_hostport listen_cfg;   /* listen as configured at start */
    int reloading;                    /* a reload's lookups are under way */
    struct mpt_udp_errors closed_err; /* send errors of path sockets a reload closed */
    struct mpt_hostport metrics_cfg;  /* metrics as configured at start */
    char control_cfg[256];            /* control as configured at start */
    struct drv_forward *forwards;     /* [forward NAME] sections, as at start */
    unsigned nforwards;
    struct mpt_socks *front;       /* the SOCKS5 front ([client] socks), NULL if none */
    struct mpt_hostport socks_cfg; /* socks as configured at start */
};

static struct mpt_udp *out_socket(struct mpt_client_drv *d, const struct mpt_out *o,
                                  const struct sockaddr **to)
{
    if (o->kind == MPT_OUT_APP && mpt_socks_owns(d->front, o->target))
        return NULL; /* sent by the SOCKS front, with its header */
    if (o->kind == MPT_OUT_APP && o->target) {
        *to = &o->addr.u.sa;
        if (o->target > d->nforwards || !d->forwards[o->target - 1].open)
            return NULL;
        return &d->forwards[o->target - 1].udp;
    }
    if (o->kind == MPT_OUT_APP) {
        *to = &o->addr.u.sa;
        return d->listen_open ? &d->listen : NULL;
    }
    if (o->kind != MPT_OUT_PATH || o->index >= d->npaths)
        return NULL;
    *to = &d->paths[o->index].remote.u.sa;
    return d->socks[d->paths[o->index].sock].open ? &d->socks[d->paths[o->index].sock].udp : NULL;
}

/* Sends entries idx[0..n) of the queue on u, and counts what each path lost. */
static void send_entries(struct mpt_client_drv *d, struct mpt_udp *u, const unsigned *idx,
                         unsigned n)
{
    if (mpt_udp_send_batch(u, d->batch, n) == n)
        return;
    for (unsigned k = 0; k < n; k++) {
        const struct mpt_out *o = &d->q.v[idx[k]];
        if (d->batch[k].err && o->kind == MPT_OUT_PATH)
            mpt_udp_errors_count(&d->paths[o->index].tx_err, d->batch[k].err, 1);
    }
}

/* Sends what core queued, then empties the queue: socket by socket, each one's entries in their
 * order in as few sendmmsg calls as it takes. Core queues a datagram's copies path after path;
 * gathered per socket, each path's datagrams leave as GSO runs. */
static void flush(struct mpt_client_drv *d)
{
    struct mpt_udp *socks[DRV_SOCKS + 1];
    unsigned nsocks = 0, idx[MPT_UDP_BATCH];

    for (unsigned i = 0; i < d->q.n; i++) {
        const struct mpt_out *o = &d->q.v[i];
        const struct sockaddr *to;
        struct mpt_udp *u;
        unsigned s = 0;

        if (o->kind == MPT_OUT_APP && mpt_socks_owns(d->front, o->target)) {
            const struct mpt_client_flow *f = mpt_client_flow_at(&d->core, o->index);
            /* The header names the flow's destination: only while the slot is still its. */
            if (f->id == o->gen && f->front == o->target)
                mpt_socks_send(d->front, o->target, f->host, f->port, o->data, o->len);
            continue;
        }
        u = out_socket(d, o, &to);

        while (s < nsocks && socks[s] != u)
            s++;
        if (u && s == nsocks && nsocks < DRV_SOCKS + 1)
            socks[nsocks++] = u;
    }
    for (unsigned s = 0; s < nsocks; s++) {
        unsigned n = 0;

        for (unsigned i = 0; i < d->q.n; i++) {
            const struct sockaddr *to = NULL;
            if (out_socket(d, &d->q.v[i], &to) != socks[s])
                continue;
            d->batch[n].buf = d->q.v[i].data;
            d->batch[n].len = d->q.v[i].len;
            d->batch[n].to = to;
            idx[n++] = i;
            if (n == MPT_UDP_BATCH) {
                send_entries(d, socks[s], idx, n);
                n = 0;
            }
        }
        if (n)
            send_entries(d, socks[s], idx, n);
    }
    mpt_outq_reset(&d->q);
}

static void on_flush(uv_check_t *h)
{
    struct mpt_client_drv *d = mpt_container_of(h, struct mpt_client_drv, flusher);

    if (d->q.n)
        flush(d);
}

static void on_timer(uv_timer_t *t);

/* Tells the core what each path carries whole, every second: datagrams larger go as pieces. */
static void refresh_path_mtus(struct mpt_client_drv *d, uint64_t now)
{
    if (now < d->split_mtu_us)
        return;
    d->split_mtu_us = now + 1000000;
    for (unsigned i = 0; i < d->npaths; i++) {
        struct drv_path *p = &d->paths[i];
        unsigned mtu = mpt_udp_mtu(&d->socks[p->sock].udp, &p->remote.u.sa);
        unsigned hdr = mpt_udp_addr_headers(&p->remote.u.sa);
        mpt_client_set_path_mtu(&d->core, i, mtu > hdr ? mtu - hdr : 0);
    }
}

static void run_timer(struct mpt_client_drv *d)
{
    uint64_t next;

    refresh_path_mtus(d, mpt_loop_now_us(d->loop));
    /* Handshakes carry the wall clock, which may be set while we run (NTP after boot). */
    mpt_client_set_wall(&d->core, mpt_loop_now_us(d->loop), mpt_loop_wall_us());

    /* Timers may queue a lot at once (probes, handshakes, held datagrams): start empty. */
    if (d->q.n)
        flush(d);
    next = mpt_client_on_timer(&d->core, mpt_loop_now_us(d->loop), &d->q);
    /* Outside an I/O callback the check handle would wait for the next poll: send now. */
    flush(d);
    {
        uint64_t now = mpt_loop_now_us(d->loop);
        uint64_t ms = next > now ? (next - now + 999) / 1000 : 0;
        uv_timer_start(&d->timer, on_timer, ms, 0);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct mpt_client_drv *d = mpt_container_of(t, struct mpt_client_drv, timer);
    run_timer(d);
}

/* Applications send datagrams of len bytes, more than frag_limit: unless every path carries them
 * whole, say once which path fragments them, with the figures and how to avoid it. The paths'
 * MTUs are read again every MPT_UDP_MTU_REFRESH_MS. */
static void check_fragmenting(struct mpt_client_drv *d, size_t len)
{
    uint64_t now = mpt_loop_now_us(d->loop);
    char a[MPT_ADDR_STRLEN];

    if (now >= d->frag_check_us) {
        d->frag_check_us = now + (uint64_t)MPT_UDP_MTU_REFRESH_MS * 1000;
        d->frag_limit = (size_t)-1;
        for (unsigned i = 0; i < d->npaths; i++) {
            struct drv_path *p = &d->paths[i];
            unsigned over = mpt_status_overhead(&p->remote);
            size_t max;
            p->mtu = mpt_udp_mtu(&d->socks[p->sock].udp, &p->remote.u.sa);
            max = p->mtu > over ? p->mtu - over : 0;
            /* An unknown MTU (no route yet) is read again at the next check. */
            if (max < d->frag_limit)
                d->frag_limit = max;
        }
    }
    for (unsigned i = 0; i < d->npaths && len > d->frag_limit; i++) {
        const struct drv_path *p = &d->paths[i];
        unsigned over = mpt_status_overhead(&p->remote);
        size_t max = p->mtu > over ? p->mtu - over : 0;

        /* Larger ones are sent as pieces that fit (up to MPT_SPLIT_MAX_PIECES of them). */
        if (!p->mtu || len <= max ||
            mpt_split_count(MPT_FLOW_HDR_LEN + len,
                            p->mtu - (over - MPT_DATA_OVERHEAD - MPT_FLOW_HDR_LEN)))
            continue;
        d->frag_warned = 1;
        MPT_WARN("path %u%s%s%s to %s: applications send datagrams of %zu bytes, which with the "
                 "tunnel's %u bytes of headers exceed the path MTU of %u: they leave as IP "
                 "fragments (more work, and one lost fragment loses the datagram). Keep them "
                 "within %zu bytes, e.g. OpenVPN `mssfix %zu' (and a lower `tun-mtu' for other "
                 "than TCP), WireGuard `MTU = %zu'. Said once.",
                 i, p->name[0] ? " [" : "", p->name, p->name[0] ? "]" : "",
                 mpt_addr_str(&p->remote, a, sizeof(a)), len, over, p->mtu, max, max,
                 max > 32 ? max - 32 : 0);
        return;
    }
}

static void on_app(struct mpt_udp *u, const uint8_t *data, size_t len, const struct sockaddr *from)
{
    struct mpt_client_drv *d = u->owner;
    struct mpt_addr app;

    if (len > d->frag_limit && !d->frag_warned)
        check_fragmenting(d, len);
    if (mpt_addr_set(&app, from) != 0)
        return;
    if (mpt_outq_full(&d->q))
        flush(d);
    mpt_client_on_app(&d->core, mpt_loop_now_us(d->loop), &app, data, len, &d->q);
}

static void on_forward(struct mpt_udp *u, const uint8_t *data, size_t len,
                       const struct sockaddr *from)
{
    struct drv_forward *fw = u->owner;
    struct mpt_client_drv *d = fw->drv;
    struct mpt_addr app;

    if (len > d->frag_limit && !d->frag_warned)
        check_fragmenting(d, len);
    if (mpt_addr_set(&app, from) != 0)
        return;
    if (mpt_outq_full(&d->q))
        flush(d);
    mpt_client_on_app_to(&d->core, mpt_loop_now_us(d->loop), &app, fw->front, fw->host, fw->port,
                         data, len, &d->q);
}

static void on_socks_dgram(void *arg, const struct mpt_addr *app, uint16_t front, const char *host,
                           uint16_t port, const uint8_t *data, size_t len)
{
    struct mpt_client_drv *d = arg;

    if (len > d->frag_limit && !d->frag_warned)
        check_fragmenting(d, len);
    if (mpt_outq_full(&d->q))
        flush(d);
    mpt_client_on_app_to(&d->core, mpt_loop_now_us(d->loop), app, front, host, port, data, len,
                         &d->q);
}

/* A SOCKS association has ended: its flows go with it. */
static void on_socks_closed(void *arg, uint16_t front)
{
    struct mpt_client_drv *d = arg;

    /* What core queued may name the flows' slots. */
    if (d->q.n)
        flush(d);
    mpt_client_close_front(&d->core, front, mpt_loop_now_us(d->loop));
    /* The server is told at once (FLOW_CLOSE), so that it frees their places. */
    if (d->core.wake)
        run_timer(d);
}

/* The SOCKS5 front, if configured. Returns 0 or a negative code with err set. */
static int start_socks(struct mpt_client_drv *d, const struct mpt_config *cfg, char *err,
                       size_t errlen)
{
    const struct mpt_client_config *cc = &cfg->client;
    struct mpt_socks_params sp;
    struct mpt_addr laddr;
    char a[MPT_ADDR_STRLEN];
    int rc;

    if (!cc->socks.line)
        return 0;
    rc = mpt_resolve(d->loop, cc->socks.host, cc->socks.port, 1, &laddr);
    if (rc) {
        snprintf(err, errlen, "%s:%d: socks: cannot resolve `%s': %s", cfg->file, cc->socks.line,
                 cc->socks.host, mpt_strerror(rc));
        return rc;
    }
    memset(&sp, 0, sizeof(sp));
    sp.listen = &laddr;
    sp.front_base = (uint16_t)(d->nforwards + 1);
    sp.dest_idle_ms = cc->flow_timeout_ms;
    if (cc->socks_user[0]) {
        sp.user = cc->socks_user;
        sp.pass = cc->socks_password;
    }
    sp.on_dgram = on_socks_dgram;
    sp.on_closed = on_socks_closed;
    sp.arg = d;
    rc = mpt_socks_start(&d->base, &sp, &d->front);
    if (rc) {
        snprintf(err, errlen, "%s:%d: socks: cannot listen on %s: %s", cfg->file, cc->socks.line,
                 mpt_addr_str(&laddr, a, sizeof(a)), mpt_strerror(rc));
        return rc;
    }
    MPT_INFO("socks5 front on %s (UDP ASSOCIATE, %s)", mpt_socks_stats(d->front)->listen,
             cc->socks_user[0] ? "username/password" : "no authentication");
    return 0;
}

/* Opens a socket per [forward NAME]. Returns 0 or a negative code with err set. */
static int start_forwards(struct mpt_client_drv *d, const struct mpt_config *cfg, char *err,
                          size_t errlen)
{
    const struct mpt_client_config *cc = &cfg->client;
    char a[MPT_ADDR_STRLEN], t[MPT_CONFIG_HOST_MAX + 16];
    struct mpt_addr laddr;
    int rc;

    if (!cc->nforwards)
        return 0;
    d->forwards = calloc(cc->nforwards, sizeof(*d->forwards));
    if (!d->forwards) {
        snprintf(err, errlen, "out of memory");
        return UV_ENOMEM;
    }
    d->nforwards = cc->nforwards;
    for (unsigned i = 0; i < cc->nforwards; i++) {
        const struct mpt_forward_config *fc = &cc->forwards[i];
        struct drv_forward *fw = &d->forwards[i];

        fw->drv = d;
        fw->front = (uint16_t)(i + 1);
        snprintf(fw->host, sizeof(fw->host), "%s", fc->target.host);
        fw->port = fc->target.port;
        rc = mpt_resolve(d->loop, fc->listen.host, fc->listen.port, 1, &laddr);
        if (rc) {
            snprintf(err, errlen, "%s:%d: listen: cannot resolve `%s': %s", cfg->file,
                     fc->listen.line, fc->listen.host, mpt_strerror(rc));
            return rc;
        }
        rc = mpt_driver_udp_open(&d->base, &fw->udp, 0, &laddr.u.sa, cfg->sndbuf, cfg->rcvbuf,
                                 on_forward, fw);
        if (rc) {
            snprintf(err, errlen, "%s:%d: listen: cannot listen on %s: %s", cfg->file,
                     fc->listen.line, mpt_addr_str(&laddr, a, sizeof(a)), mpt_strerror(rc));
            return rc;
        }
        fw->open = 1;
        MPT_INFO("forward %s: %s -> %s", fc->name, mpt_addr_str(&laddr, a, sizeof(a)),
                 mpt_hostport_format(&fc->target, t, sizeof(t)));
    }
    return 0;
}

static void on_path(struct mpt_udp *u, const uint8_t *data, size_t len, const struct sockaddr *from)
{
    struct drv_sock *sk = u->owner;
    struct mpt_client_drv *d = sk->drv;
    unsigned si = (unsigned)(sk - d->socks), i;
    struct mpt_addr src;

    /* The path of this socket, if its bridge sent it. Anything else is dropped. */
    if (mpt_addr_set(&src, from) != 0)
        return;
    for (i = 0; i < d->npaths; i++)
        if (d->paths[i].sock == si)
            break;
    if (i == d->npaths || !mpt_addr_equal(&d->paths[i].remote, &src))
        return;
    if (mpt_outq_full(&d->q))
        flush(d);
    mpt_client_on_path(&d->core, mpt_loop_now_us(d->loop), i, data, len, &d->q);
    /* A new session or a path changing state wants probes now, not at the next deadline. */
    if (d->core.wake)
        run_timer(d);
}

/* The last reference is gone: the driver has stopped and every handle has closed. */
static void drv_destroy(struct mpt_driver *base)
{
    struct mpt_client_drv *d = mpt_container_of(base, struct mpt_client_drv, base);

    mpt_client_free(&d->core);
    mpt_outq_free(&d->q);
    free(d->forwards);
    mpt_socks_free(d->front);
    free(d);
}

/* The control socket and the metrics endpoint are drivers of their own: ours stays until they
 * have closed. */
static void on_control_closed(void *arg)
{
    struct mpt_client_drv *d = arg;
    mpt_driver_unref(&d->base);
}

/* Closes every handle (mpt_driver_stop calls this once). */
static void drv_stop(struct mpt_driver *base)
{
    struct mpt_client_drv *d = mpt_container_of(base, struct mpt_client_drv, base);
    const struct mpt_counters *c = &d->core.ctr;

    if (d->started) /* a failed start has said why already */
        MPT_INFO("client stopping: %llu datagrams from applications, %llu delivered back, "
                 "%llu sessions",
                 (unsigned long long)c->app_rx, (unsigned long long)c->app_tx,
                 (unsigned long long)c->handshakes);
    if (d->q.n)
        flush(d);
    mpt_driver_close((uv_handle_t *)&d->timer);
    mpt_driver_close((uv_handle_t *)&d->flusher);
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
    for (unsigned i = 0; i < d->nforwards; i++) {
        if (d->forwards[i].open) {
            d->forwards[i].open = 0;
            mpt_udp_close(&d->forwards[i].udp, NULL);
        }
    }
    mpt_socks_stop(d->front);
    for (unsigned i = 0; i < DRV_SOCKS; i++) {
        if (d->socks[i].open) {
            d->socks[i].open = 0;
            mpt_udp_close(&d->socks[i].udp, NULL);
        }
    }
}

static const struct mpt_driver_ops client_ops = {"client", drv_stop, drv_destroy};

static void send_errors(void *arg, struct mpt_udp_errors *e)
{
    struct mpt_client_drv *d = arg;

    mpt_udp_errors_add(e, &d->listen.tx.err);
    mpt_udp_errors_add(e, &d->closed_err);
    mpt_socks_send_errors(d->front, e);
    for (unsigned i = 0; i < d->nforwards; i++)
        if (d->forwards[i].open)
            mpt_udp_errors_add(e, &d->forwards[i].udp.tx.err);
    for (unsigned i = 0; i < DRV_SOCKS; i++)
        if (d->socks[i].open)
            mpt_udp_errors_add(e, &d->socks[i].udp.tx.err);
}

static unsigned path_mtu(void *arg, unsigned path, const struct mpt_addr *to)
{
    struct mpt_client_drv *d = arg;
    struct drv_path *p = &d->paths[path];

    if (path >= d->npaths || !d->socks[p->sock].open)
        return 0;
    return mpt_udp_mtu(&d->socks[p->sock].udp, &p->remote.u.sa);
}

static void path_errors(void *arg, unsigned path, struct mpt_udp_errors *e)
{
    struct mpt_client_drv *d = arg;

    if (path < d->npaths)
        *e = d->paths[path].tx_err;
}

static void on_command(void *arg, const char *line);

static void status_info(struct mpt_client_drv *d, const struct mpt_config *cfg,
                        struct mpt_status_client_info *info)
{
    memset(info, 0, sizeof(*info));
    info->core = &d->core;
    info->send_errors = send_errors;
    info->mtu = path_mtu;
    info->path_errors = path_errors;
    info->drv = d;
    info->cfg = cfg;
    info->npaths = d->npaths;
    for (unsigned i = 0; i < d->npaths; i++)
        info->remote[i] = d->paths[i].remote;
    mpt_client_drv_local(d, &info->listen);
    info->command = on_command;
    info->command_arg = d;
    info->socks = mpt_socks_stats(d->front);
}

/* The status socket; failing to make it is only a warning. */
static void start_control(struct mpt_client_drv *d, const struct mpt_config *cfg)
{
    struct mpt_status_client_info info;

    status_info(d, cfg, &info);
    mpt_status_client_start(d->loop, &info, &d->control);
}

/* The metrics endpoint, if configured. Returns 0, or a negative code with the reason in err. */
static int start_metrics(struct mpt_client_drv *d, const struct mpt_config *cfg, char *err,
                         size_t errlen)
{
    struct mpt_status_client_info info;

    status_info(d, cfg, &info);
    return mpt_status_client_metrics_start(d->loop, &info, cfg->file, &cfg->client.metrics,
                                           &d->metrics, err, errlen);
}

static int bind_device(struct mpt_udp *u, const char *dev)
{
    int fd = mpt_udp_fd(u);

    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)strlen(dev)) != 0)
        return uv_translate_sys_error(errno);
    return 0;
}

static void on_sock_closed(struct mpt_udp *u)
{
    struct drv_sock *sk = u->owner;

    sk->closing = 0;
}

/* Opens a path's own socket in a free slot, bound to pc's bind address or device if it has one,
 * towards `family`. Returns its index, or a negative code. */
static int open_socket(struct mpt_client_drv *d, const struct mpt_path_config *pc, int family,
                       const struct mpt_config *cfg)
{
    struct mpt_addr local;
    int rc;
    struct drv_sock *sk = NULL;
    unsigned s;

    for (s = 0; s < DRV_SOCKS; s++) {
        if (!d->socks[s].open && !d->socks[s].closing) {
            sk = &d->socks[s];
            break;
        }
    }
    if (!sk)
        return UV_EBUSY;
    memset(sk, 0, sizeof(*sk));
    sk->drv = d;
    if (pc->bind[0]) {
        rc = mpt_resolve(d->loop, pc->bind, 0, 1, &local);
        if (rc)
            return rc;
        rc = mpt_driver_udp_open(&d->base, &sk->udp, 0, &local.u.sa, cfg->sndbuf, cfg->rcvbuf,
                                 on_path, sk);
    } else {
        rc = mpt_driver_udp_open(&d->base, &sk->udp, family, NULL, cfg->sndbuf, cfg->rcvbuf,
                                 on_path, sk);
    }
    if (rc) { /* a socket that is closing already needs nothing more but its slot */
        if (mpt_udp_is_closing(&sk->udp)) {
            sk->closing = 1;
            mpt_udp_close(&sk->udp, on_sock_closed);
        }
        return rc;
    }
    sk->open = 1;
    if (pc->device[0]) {
        rc = bind_device(&sk->udp, pc->device);
        if (rc) {
            sk->open = 0;
            sk->closing = 1;
            mpt_udp_close(&sk->udp, on_sock_closed);
            return rc;
        }
    }
    sk->family = pc->bind[0] ? local.u.sa.sa_family : family;
    snprintf(sk->bind, sizeof(sk->bind), "%s", pc->bind);
    snprintf(sk->device, sizeof(sk->device), "%s", pc->device);
    return (int)s;
}

/* Whether a path configured as pc, sending to remote, may go on with socket s: one opened for
 * the same bind address and device, of the remote's family, that no other path took. */
static int socket_fits(const struct mpt_client_drv *d, unsigned s, const struct mpt_path_config *pc,
                       const struct mpt_addr *remote, const int *used)
{
    const struct drv_sock *sk = &d->socks[s];

    return sk->open && !used[s] && sk->family == remote->u.sa.sa_family &&
           strcmp(sk->bind, pc->bind) == 0 && strcmp(sk->device, pc->device) == 0;
}

/* The old path a new one continues: the same [path NAME], or for a `bridge =' line the same
 * HOST:PORT as written. -1 if none. */
static int old_path(const struct mpt_client_drv *d, const struct mpt_path_config *pc,
                    const int *taken)
{
    for (unsigned j = 0; j < d->npaths; j++) {
        const struct mpt_path_config *o = &d->pcfg[j];
        if (taken[j] || strcmp(o->name, pc->name) != 0)
            continue;
        if (pc->name[0] ||
            (strcmp(o->bridge.host, pc->bridge.host) == 0 && o->bridge.port == pc->bridge.port))
            return (int)j;
    }
    return -1;
}

/* The core's parameters from the configuration; in key mode the pre-shared key is written to
 * psk, which must outlive params. */
static void client_params(struct mpt_client_params *params, const struct mpt_config *cfg,
                          uint8_t psk[MPT_KEY_LEN])
{
    const struct mpt_client_config *cc = &cfg->client;

    memset(params, 0, sizeof(*params));
    if (mpt_config_key_mode(cfg, MPT_ROLE_CLIENT)) {
        mpt_config_peer_psk(cfg, NULL, psk);
        params->secret = psk;
        params->private_key = cc->key.private_key;
        params->server_public_key = cc->server_public_key;
    } else {
        params->secret = cfg->secret;
    }
    params->rekey_after_ms = cfg->rekey_ms;
    params->npaths = cc->npaths;
    params->max_flows = cc->max_flows;
    params->flow_timeout_ms = cc->flow_timeout_ms;
    params->probe_interval_ms = cc->probe_interval_ms;
    params->reorder_cap_ms = cc->reorder_cap_ms;
    params->mode = (uint8_t)cc->mode;
    params->target_loss = cc->target_loss;
    params->fec_k = cc->fec_k;
    params->fec_m = cc->fec_m;
    params->fec_wait_ms = cc->fec_wait_ms;
    params->no_aes = cfg->no_aes;
    for (unsigned i = 0; i < cc->npaths && i < MPT_MAX_PATHS; i++) {
        params->priority[i] = cc->paths[i].priority;
        params->weight[i] = cc->paths[i].weight;
        mpt_path_label(&cc->paths[i], params->path_name[i], sizeof(params->path_name[i]));
    }
}

/* Makes the paths those of cfg, their bridges resolved to remote[]: keeps the sockets that still
 * fit, opens the missing ones, hands core the new set (each path that continues keeps its state),
 * and closes the sockets no longer used. On failure nothing has changed: returns a negative code
 * with err saying file:line and why. */
static int set_paths(struct mpt_client_drv *d, const struct mpt_config *cfg,
                     const struct mpt_addr *remote, char *err, size_t errlen)
{
    const struct mpt_client_config *cc = &cfg->client;
    struct mpt_client_params params;
    uint8_t psk[MPT_KEY_LEN];
    unsigned sock[MPT_MAX_PATHS], n = cc->npaths;
    int from[MPT_MAX_PATHS], taken[MPT_MAX_PATHS] = {0}, used[DRV_SOCKS] = {0};
    int opened[DRV_SOCKS] = {0};
    char a[MPT_ADDR_STRLEN], b[MPT_ADDR_STRLEN];
    int rc = 0;

    if (n < 1 || n > MPT_MAX_PATHS) {
        snprintf(err, errlen, "%s: [client]: %u paths (1-%d)", cfg->file, n, MPT_MAX_PATHS);
        return UV_EINVAL;
    }
    for (unsigned i = 0; i < n; i++) {
        const struct mpt_path_config *pc = &cc->paths[i];

        from[i] = old_path(d, pc, taken);
        if (from[i] >= 0)
            taken[from[i]] = 1;
    }
    for (unsigned i = 0; i < n; i++) {
        const struct mpt_path_config *pc = &cc->paths[i];
        int s = -1;

        /* A path that continues keeps its socket if it still fits: nothing in flight is lost. */
        if (from[i] >= 0 && socket_fits(d, d->paths[from[i]].sock, pc, &remote[i], used))
            s = (int)d->paths[from[i]].sock;
        if (s < 0) {
            s = open_socket(d, pc, remote[i].u.sa.sa_family, cfg);
            if (s < 0) {
                rc = s;
                snprintf(err, errlen, "%s:%d: bridge: cannot open a socket to %s%s%s%s%s: %s",
                         cfg->file, pc->bridge.line, mpt_addr_str(&remote[i], a, sizeof(a)),
                         pc->bind[0] ? " from " : "", pc->bind, pc->device[0] ? " on device " : "",
                         pc->device, mpt_strerror(rc));
                goto undo;
            }
            opened[s] = 1;
        }
        sock[i] = (unsigned)s;
        used[s] = 1;
    }
    client_params(&params, cfg, psk);
    rc = mpt_client_reconfigure(&d->core, &params, from, mpt_loop_now_us(d->loop));
    mpt_wipe(psk, sizeof(psk));
    if (rc) {
        snprintf(err, errlen, "%s: [client]: cannot apply the paths: %s", cfg->file,
                 mpt_strerror(rc));
        goto undo;
    }
    for (unsigned i = 0; i < n; i++) {
        mpt_addr_str(&remote[i], a, sizeof(a));
        if (!d->started && strcmp(a, params.path_name[i]) == 0)
            MPT_INFO("path %u (%s)", i + 1, a);
        else if (!d->started)
            MPT_INFO("path %u (%s) -> %s", i + 1, params.path_name[i], a);
        else if (from[i] < 0)
            MPT_INFO("path %u (%s) -> %s: new", i + 1, params.path_name[i], a);
        else if (!mpt_addr_equal(&d->paths[from[i]].remote, &remote[i]))
            MPT_INFO("path %u (%s) -> %s: moved from %s", i + 1, params.path_name[i], a,
                     mpt_addr_str(&d->paths[from[i]].remote, b, sizeof(b)));
        else if ((unsigned)from[i] != i)
            MPT_INFO("path %u (%s) -> %s: was path %d", i + 1, params.path_name[i], a, from[i] + 1);
    }
    for (unsigned j = 0; j < d->npaths; j++) {
        char l[MPT_PATH_NAME_MAX];
        if (!taken[j])
            MPT_INFO("path %u (%s) -> %s: removed", j + 1,
                     mpt_path_label(&d->pcfg[j], l, sizeof(l)),
                     mpt_addr_str(&d->paths[j].remote, a, sizeof(a)));
    }
    {
        struct drv_path old[MPT_MAX_PATHS];

        memcpy(old, d->paths, sizeof(old));
        for (unsigned i = 0; i < n; i++) {
            memset(&d->paths[i], 0, sizeof(d->paths[i]));
            if (from[i] >= 0) {
                d->paths[i].tx_err = old[from[i]].tx_err;
                d->paths[i].mtu = old[from[i]].mtu;
            }
        }
    }
    d->frag_check_us = 0; /* the MTUs of new sockets and routes, at the next datagram */
    for (unsigned i = 0; i < n; i++) {
        snprintf(d->paths[i].name, sizeof(d->paths[i].name), "%s", cc->paths[i].name);
        d->paths[i].drv = d;
        d->paths[i].index = i;
        d->paths[i].remote = remote[i];
        d->paths[i].sock = sock[i];
        d->pcfg[i] = cc->paths[i];
        mpt_client_set_remote(&d->core, i, &remote[i]);
    }
    d->npaths = n;
    /* Sockets no paths use any more: late replies on them no longer belong to a path. */
    for (unsigned s = 0; s < DRV_SOCKS; s++) {
        if (d->socks[s].open && !used[s]) {
            /* Its send errors stay counted: totals never go back. */
            mpt_udp_errors_add(&d->closed_err, &d->socks[s].udp.tx.err);
            d->socks[s].open = 0;
            d->socks[s].closing = 1;
            mpt_udp_close(&d->socks[s].udp, on_sock_closed);
        }
    }
    return 0;
undo:
    for (unsigned s = 0; s < DRV_SOCKS; s++) {
        if (opened[s] && d->socks[s].open) {
            d->socks[s].open = 0;
            d->socks[s].closing = 1;
            mpt_udp_close(&d->socks[s].udp, on_sock_closed);
        }
    }
    return rc;
}

int mpt_client_drv_start(struct mpt_loop *loop, const struct mpt_config *cfg,
                         struct mpt_client_drv **out, char *err, size_t errlen)
{
    const struct mpt_client_config *cc = &cfg->client;
    struct mpt_client_params params;
    uint8_t psk[MPT_KEY_LEN];
    struct mpt_client_drv *d;
    struct mpt_addr laddr;
    char a[MPT_ADDR_STRLEN];
    int rc;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -12;
    }
    d->loop = loop;
    client_params(&params, cfg, psk);
    rc = mpt_client_init(&d->core, &params);
    mpt_wipe(psk, sizeof(psk));
    if (!rc)
        mpt_client_set_wall(&d->core, mpt_loop_now_us(loop), mpt_loop_wall_us());
    if (!rc)
        rc = mpt_outq_init(&d->q, 1024, 1u << 20);
    if (rc) {
        snprintf(err, errlen, "cannot set up the client: %s", mpt_strerror(rc));
        mpt_client_free(&d->core);
        mpt_outq_free(&d->q);
        free(d);
        return rc;
    }
    mpt_driver_init(&d->base, loop, &client_ops, 1);
    uv_timer_init(mpt_loop_uv(loop), &d->timer);
    uv_check_init(mpt_loop_uv(loop), &d->flusher);
    mpt_driver_own(&d->base, (uv_handle_t *)&d->timer);
    mpt_driver_own(&d->base, (uv_handle_t *)&d->flusher);
    uv_check_start(&d->flusher, on_flush);

    rc = mpt_resolve(loop, cc->listen.host, cc->listen.port, 1, &laddr);
    if (rc) {
        snprintf(err, errlen, "%s:%d: listen: cannot resolve `%s': %s", cfg->file, cc->listen.line,
                 cc->listen.host, mpt_strerror(rc));
        goto fail;
    }
    rc = mpt_driver_udp_open(&d->base, &d->listen, 0, &laddr.u.sa, cfg->sndbuf, cfg->rcvbuf, on_app,
                             d);
    if (rc) {
        snprintf(err, errlen, "%s:%d: listen: cannot listen on %s: %s", cfg->file, cc->listen.line,
                 mpt_addr_str(&laddr, a, sizeof(a)), mpt_strerror(rc));
        goto fail;
    }
    d->listen_open = 1;
    d->listen_cfg = cc->listen;
    d->socks_cfg = cc->socks;
    rc = start_forwards(d, cfg, err, errlen);
    if (!rc)
        rc = start_socks(d, cfg, err, errlen);
    if (rc)
        goto fail;
    {
        struct mpt_addr remote[MPT_MAX_PATHS];

        for (unsigned i = 0; i < cc->npaths && i < MPT_MAX_PATHS; i++) {
            const struct mpt_path_config *pc = &cc->paths[i];

            rc = mpt_resolve(loop, pc->bridge.host, pc->bridge.port, 0, &remote[i]);
            if (rc) {
                snprintf(err, errlen, "%s:%d: bridge: cannot resolve `%s': %s", cfg->file,
                         pc->bridge.line, pc->bridge.host, mpt_strerror(rc));
                goto fail;
            }
        }
        rc = set_paths(d, cfg, remote, err, errlen);
    }
    d->metrics_cfg = cc->metrics;
    snprintf(d->control_cfg, sizeof(d->control_cfg), "%s", cc->control);
    if (rc)
        goto fail;
    rc = start_metrics(d, cfg, err, errlen);
    if (rc)
        goto fail;
    MPT_INFO("client listening on %s, %u path%s, mode %s", mpt_addr_str(&laddr, a, sizeof(a)),
             d->npaths, d->npaths == 1 ? "" : "s", mpt_mode_name(cc->mode));
    run_timer(d);
    start_control(d, cfg);
    d->started = 1;
    *out = d;
    return 0;
fail:
    /* Sockets opened so far are closed with the rest; d is freed in the last close callback. */
    mpt_driver_stop(&d->base);
    return rc;
}

/* "path disable N [LABEL]" / "path enable N [LABEL]" from the control socket (N from 1). With
 * LABEL, path N must be named so ([path NAME], else its bridge as written): a file edited since
 * the last reload may number its paths otherwise. */
static void on_command(void *arg, const char *line)
{
    struct mpt_client_drv *d = arg;
    char label[MPT_CONFIG_HOST_MAX + 16];
    const char *what;
    unsigned long n;
    char *end;
    int enable;

    if (strncmp(line, "path disable ", 13) == 0)
        enable = 0;
    else if (strncmp(line, "path enable ", 12) == 0)
        enable = 1;
    else {
        MPT_WARN("control: unknown command `%.40s'", line);
        return;
    }
    what = line + (enable ? 12 : 13);
    n = strtoul(what, &end, 10);
    if (end == what || (*end && *end != ' ') || n < 1 || n > d->npaths) {
        MPT_WARN("control: path %s: no path `%.40s' (1-%u)", enable ? "enable" : "disable", what,
                 d->npaths);
        return;
    }
    if (*end == ' ' &&
        strcmp(end + 1, mpt_path_label(&d->pcfg[n - 1], label, sizeof(label))) != 0) {
        MPT_WARN("control: path %s %lu: path %lu is `%s' here, not `%.40s' (reload the file?)",
                 enable ? "enable" : "disable", n, n, label, end + 1);
        return;
    }
    mpt_client_set_enabled(&d->core, (unsigned)n - 1, enable, mpt_loop_now_us(d->loop));
    if (d->core.wake)
        run_timer(d);
}

/* A reload under way: the bridges being resolved in the background. */
struct reload_job {
    struct mpt_client_drv *d;
    const struct mpt_config *cfg;
    mpt_drv_reload_cb cb;
    void *arg;
    struct mpt_addr remote[MPT_MAX_PATHS];
    struct reload_slot {
        struct reload_job *job;
        unsigned i;
    } slot[MPT_MAX_PATHS];
    unsigned pending;
    int rc;
    char err[MPT_CONFIG_ERR_MAX];
};

/* Every name resolved: apply, tell the caller, let the driver go. */
static void reload_apply(struct reload_job *job)
{
    struct mpt_client_drv *d = job->d;
    const struct mpt_config *cfg = job->cfg;
    const struct mpt_client_config *cc = &cfg->client;
    char a[MPT_ADDR_STRLEN];

    if (!job->rc && mpt_driver_stopping(&d->base)) {
        job->rc = UV_ECANCELED;
        snprintf(job->err, sizeof(job->err), "the client is stopping");
    }
    if (job->rc)
        goto out;
    /* What core queued names paths by their present numbers. */
    if (d->q.n)
        flush(d);
    job->rc = set_paths(d, cfg, job->remote, job->err, sizeof(job->err));
    if (job->rc)
        goto out;
    if (strcmp(cc->listen.host, d->listen_cfg.host) != 0 || cc->listen.port != d->listen_cfg.port)
        MPT_WARN("%s:%d: listen: a new address takes effect at the next start (still on %s)",
                 cfg->file, cc->listen.line, mpt_hostport_format(&d->listen_cfg, a, sizeof(a)));
    if (cc->max_flows != d->core.p.max_flows)
        MPT_WARN("%s: [client] max_flows: takes effect at the next start (still %u)", cfg->file,
                 d->core.p.max_flows);
    if ((cc->metrics.line != 0) != (d->metrics_cfg.line != 0) ||
        strcmp(cc->metrics.host, d->metrics_cfg.host) != 0 ||
        cc->metrics.port != d->metrics_cfg.port)
        MPT_WARN("%s: [client] metrics: takes effect at the next start", cfg->file);
    if ((cc->socks.line != 0) != (d->socks_cfg.line != 0) ||
        strcmp(cc->socks.host, d->socks_cfg.host) != 0 || cc->socks.port != d->socks_cfg.port ||
        mpt_socks_credentials_differ(d->front, cc->socks_user[0] ? cc->socks_user : NULL,
                                     cc->socks_password))
        MPT_WARN("%s: [client] socks: takes effect at the next start", cfg->file);
    if (strcmp(cc->control, d->control_cfg) != 0)
        MPT_WARN("%s: [client] control: takes effect at the next start", cfg->file);
    if (d->control) {
        struct mpt_status_client_info info;
        status_info(d, cfg, &info);
        mpt_status_client_update(mpt_control_arg(d->control), &info, mpt_loop_now_us(d->loop));
    }
    if (d->metrics) {
        struct mpt_status_client_info info;
        status_info(d, cfg, &info);
        mpt_status_client_update(mpt_metrics_arg(d->metrics), &info, mpt_loop_now_us(d->loop));
    }
    MPT_INFO("client reloaded: %u path%s, mode %s", d->npaths, d->npaths == 1 ? "" : "s",
             mpt_mode_name(cc->mode));
    run_timer(d);
out:
    job->cb(job->arg, job->rc, job->err);
    d->reloading = 0;
    free(job);
    mpt_driver_unref(&d->base);
}

static void on_bridge_resolved(void *arg, int status, const struct mpt_addr *addr)
{
    struct reload_slot *sl = arg;
    struct reload_job *job = sl->job;
    const struct mpt_path_config *pc = &job->cfg->client.paths[sl->i];

    if (status == 0) {
        job->remote[sl->i] = *addr;
    } else if (!job->rc) {
        job->rc = status;
        snprintf(job->err, sizeof(job->err), "%.300s:%d: bridge: cannot resolve `%.100s': %s",
                 job->cfg->file, pc->bridge.line, pc->bridge.host, mpt_strerror(status));
    }
    if (--job->pending == 0)
        reload_apply(job);
}

void mpt_client_drv_reload(struct mpt_client_drv *d, const struct mpt_config *cfg,
                           mpt_drv_reload_cb cb, void *arg)
{
    struct reload_job *job;
    unsigned n = cfg->client.npaths;

    if (mpt_driver_stopping(&d->base) || d->reloading) {
        cb(arg, UV_EBUSY,
           d->reloading ? "a reload is under way already" : "the client is stopping");
        return;
    }
    job = calloc(1, sizeof(*job));
    if (!job) {
        cb(arg, UV_ENOMEM, "out of memory");
        return;
    }
    job->d = d;
    job->cfg = cfg;
    job->cb = cb;
    job->arg = arg;
    d->reloading = 1;
    mpt_driver_ref(&d->base); /* until the job is done */
    /* One more than the lookups, dropped below: the job ends once, after every one. */
    job->pending = 1;
    for (unsigned i = 0; i < n && i < MPT_MAX_PATHS; i++) {
        const struct mpt_path_config *pc = &cfg->client.paths[i];
        int rc;

        job->slot[i].job = job;
        job->slot[i].i = i;
        job->pending++;
        rc = mpt_resolve_start(d->loop, pc->bridge.host, pc->bridge.port, 0, on_bridge_resolved,
                               &job->slot[i]);
        if (rc)
            on_bridge_resolved(&job->slot[i], rc, NULL);
    }
    if (--job->pending == 0)
        reload_apply(job);
}

const struct mpt_client *mpt_client_drv_core(const struct mpt_client_drv *d)
{
    return &d->core;
}

void mpt_client_drv_local(struct mpt_client_drv *d, struct mpt_addr *out)
{
    struct sockaddr_storage ss;

    memset(out, 0, sizeof(*out));
    if (mpt_udp_local(&d->listen, &ss) == 0)
        mpt_addr_set(out, (struct sockaddr *)&ss);
}
