/* The SOCKS5 front (see socks.h). A fixed table of connection slots, made at start: a slot holds
 * a control connection and, once it has asked for UDP ASSOCIATE, the association's relay socket
 * and destinations. A slot is free again when both of its handles have closed. One timer checks
 * the deadlines of connections still in their handshake or lingering after a refusal. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/socks.h"
#include "net/driver.h"
#include "net/socks.h"
#include "net/udp.h"

const char *const mpt_socks_drop_names[MPT_SOCKS_DROP_COUNT] = {"fragment", "malformed", "source",
                                                                "destinations"};

#define NSLOTS (MPT_SOCKS_MAX_ASSOC + MPT_SOCKS_MAX_HANDSHAKES)
#define SWEEP_MS 250
#define RELAY_BUF (512u << 10) /* relay sockets' buffers unless configured */

enum conn_state {
    CONN_FREE = 0,
    CONN_GREETING, /* waiting for VER NMETHODS METHODS */
    CONN_AUTH,     /* waiting for RFC 1929's request */
    CONN_REQUEST,  /* waiting for VER CMD RSV ATYP ... */
    CONN_ASSOC,    /* associated: the relay socket is open */
    CONN_LINGER,   /* refused: our answer and FIN sent, waiting for the peer's EOF */
    CONN_CLOSING,  /* handles closing */
};

struct dest {
    char host[MPT_TARGET_HOST_MAX + 1];
    uint16_t port;
    uint64_t last_us;
};

struct conn {
    struct mpt_socks *s;
    enum conn_state state;
    int tcp_live; /* the TCP handle is initialised and its close has not completed */
    int udp_live; /* the same for the relay socket */
    int assoc;    /* counted in assoc_open */
    uv_tcp_t tcp;
    uv_shutdown_t sreq;
    struct mpt_udp udp;
    uint64_t deadline_us; /* handshake or linger; 0 = none */
    uint8_t buf[MPT_SOCKS_MSG_MAX];
    size_t have;
    struct mpt_addr peer;   /* the control connection's peer */
    struct mpt_addr expect; /* where datagrams must come from (port 0: any port) */
    struct mpt_addr client; /* where they came from first: replies go there */
    int client_known;
    struct dest dests[MPT_SOCKS_MAX_DESTS];
    unsigned ndests;
};

struct mpt_socks {
    struct mpt_driver *drv;
    struct mpt_loop *loop;
    struct mpt_socks_params p;
    char user[256], pass[256];
    int want_auth;
    uv_tcp_t listen;
    uv_timer_t timer;
    int stopped;
    struct mpt_socks_stats st;
    struct mpt_udp_errors closed_err; /* send errors of relay sockets closed since */
    struct conn conns[NSLOTS];
    uint8_t scratch[MPT_SOCKS_UDP_HDR_MAX + 65536];
};

static uint64_t now_us(const struct mpt_socks *s)
{
    return mpt_loop_now_us(s->loop);
}

/* IPv4-mapped IPv6 as IPv4: a dual-stack listener sees IPv4 peers so, a relay socket plainly. */
static void unmap(struct mpt_addr *a)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct sockaddr_in in4;

    if (a->u.sa.sa_family != AF_INET6 || memcmp(&a->u.in6.sin6_addr, prefix, 12) != 0)
        return;
    memset(&in4, 0, sizeof(in4));
    in4.sin_family = AF_INET;
    in4.sin_port = a->u.in6.sin6_port;
    memcpy(&in4.sin_addr, (const uint8_t *)&a->u.in6.sin6_addr + 12, 4);
    mpt_addr_set(a, (const struct sockaddr *)&in4);
}

static int same_ip(const struct mpt_addr *a, const struct mpt_addr *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return 0;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr;
    return memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16) == 0;
}

static int zero_ip(const struct mpt_addr *a)
{
    static const uint8_t zero[16];

    if (a->u.sa.sa_family == AF_INET)
        return a->u.in4.sin_addr.s_addr == 0;
    return memcmp(&a->u.in6.sin6_addr, zero, 16) == 0;
}

/* ---- closing ---- */

static void slot_release(struct conn *c)
{
    if (c->tcp_live || c->udp_live)
        return;
    c->state = CONN_FREE;
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct conn *c = mpt_container_of(h, struct conn, tcp);

    c->tcp_live = 0;
    slot_release(c);
    mpt_driver_closed(h);
}

static void on_udp_closed(struct mpt_udp *u)
{
    struct conn *c = u->owner;

    mpt_udp_errors_add(&c->s->closed_err, &u->tx.err);
    c->udp_live = 0;
    slot_release(c);
}

/* Closes the connection and its association; `notify': tell the owner its flows can go. */
static void conn_close(struct conn *c, int notify)
{
    struct mpt_socks *s = c->s;

    if (c->state == CONN_CLOSING || c->state == CONN_FREE)
        return;
    c->state = CONN_CLOSING;
    c->deadline_us = 0;
    if (c->assoc) {
        c->assoc = 0;
        s->st.assoc_open--;
        if (notify && s->p.on_closed)
            s->p.on_closed(s->p.arg, (uint16_t)(s->p.front_base + (c - s->conns)));
        MPT_DEBUG("socks: association %u closed", (unsigned)(c - s->conns));
    }
    if (c->udp_live)
        mpt_udp_close(&c->udp, on_udp_closed);
    if (c->tcp_live && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = mpt_container_of(req, struct conn, sreq);

    if (status < 0 && c->state == CONN_LINGER)
        conn_close(c, 1);
}

/* Writes a small answer now, all of it or nothing (a peer that cannot take 22 bytes is not one
 * to wait for). Returns 0 or a negative code. */
static int conn_write(struct conn *c, const uint8_t *msg, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

    return n == (int)len ? 0 : n < 0 ? n : UV_EAGAIN;
}

/* Answers and ends the connection: our FIN after the answer, then the peer's EOF (or the linger
 * deadline) closes it, so that the answer is not lost to a reset of unread bytes. */
static void conn_refuse(struct conn *c, const uint8_t *msg, size_t len)
{
    if (msg && conn_write(c, msg, len) != 0) {
        conn_close(c, 1);
        return;
    }
    c->state = CONN_LINGER;
    c->have = 0;
    c->deadline_us = now_us(c->s) + (uint64_t)MPT_SOCKS_LINGER_MS * 1000;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c, 1);
}

static void refuse_reply(struct conn *c, uint8_t rep)
{
    uint8_t out[MPT_SOCKS_REPLY_MAX];

    conn_refuse(c, out, mpt_socks_reply(out, rep, NULL));
}

/* ---- the association ---- */

static struct dest *dest_find(struct conn *c, const struct mpt_socks_dest *d, uint64_t now)
{
    struct mpt_socks *s = c->s;
    uint64_t idle = (uint64_t)s->p.dest_idle_ms * 1000;
    struct dest *e = NULL;

    for (unsigned i = 0; i < c->ndests; i++)
        if (c->dests[i].port == d->port && strcmp(c->dests[i].host, d->host) == 0)
            return &c->dests[i];
    if (c->ndests < MPT_SOCKS_MAX_DESTS) {
        e = &c->dests[c->ndests++];
    } else {
        /* A destination idle for the flow timeout has lost its flow: its place is free. */
        for (unsigned i = 0; i < c->ndests && !e; i++)
            if (now - c->dests[i].last_us >= idle)
                e = &c->dests[i];
        if (!e)
            return NULL;
    }
    snprintf(e->host, sizeof(e->host), "%s", d->host);
    e->port = d->port;
    return e;
}

/* 1 if a datagram from `from' belongs to the association: from the address it announced (its
 * non-zero parts) or, if it announced none, from its control connection's host; and once one
 * came, from that same address and port only. */
static int source_ok(struct conn *c, const struct mpt_addr *from)
{
    if (c->client_known)
        return mpt_addr_equal(&c->client, from);
    if (!same_ip(&c->expect, from))
        return 0;
    if (mpt_addr_port(&c->expect) && mpt_addr_port(&c->expect) != mpt_addr_port(from))
        return 0;
    c->client = *from;
    c->client_known = 1;
    return 1;
}

static void on_relay(struct mpt_udp *u, const uint8_t *data, size_t len,
                     const struct sockaddr *from)
{
    struct conn *c = u->owner;
    struct mpt_socks *s = c->s;
    struct mpt_socks_dest d;
    struct mpt_addr src;
    struct dest *e;
    uint64_t now = now_us(s);
    int hlen;

    if (c->state != CONN_ASSOC || mpt_addr_set(&src, from) != 0)
        return;
    s->st.dgrams_in++;
    unmap(&src);
    if (!source_ok(c, &src)) {
        s->st.drops[MPT_SOCKS_DROP_SOURCE]++;
        return;
    }
    hlen = mpt_socks_udp_parse(data, len, &d);
    if (hlen < 0) {
        s->st.drops[hlen == -EMSGSIZE ? MPT_SOCKS_DROP_FRAGMENT : MPT_SOCKS_DROP_MALFORMED]++;
        return;
    }
    e = dest_find(c, &d, now);
    if (!e) {
        s->st.drops[MPT_SOCKS_DROP_DESTINATIONS]++;
        return;
    }
    e->last_us = now;
    s->p.on_dgram(s->p.arg, &c->client, (uint16_t)(s->p.front_base + (c - s->conns)), d.host,
                  d.port, data + hlen, len - (size_t)hlen);
}

/* UDP ASSOCIATE: a relay socket on the address the client reached us at. */
static void associate(struct conn *c, const struct mpt_socks_dest *d)
{
    struct mpt_socks *s = c->s;
    uint8_t out[MPT_SOCKS_REPLY_MAX];
    struct sockaddr_storage ss;
    struct mpt_addr local, bound;
    int len = sizeof(ss), rc;

    if (s->st.assoc_open >= MPT_SOCKS_MAX_ASSOC) {
        s->st.assoc_refused++;
        if (MPT_LOG_ON(MPT_LOGL_DEBUG))
            MPT_DEBUG("socks: UDP ASSOCIATE refused: %u associations already", s->st.assoc_open);
        refuse_reply(c, MPT_SOCKS_REP_FAILURE);
        return;
    }
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        mpt_addr_set(&local, (struct sockaddr *)&ss) != 0) {
        refuse_reply(c, MPT_SOCKS_REP_FAILURE);
        return;
    }
    unmap(&local);
    if (local.u.sa.sa_family == AF_INET)
        local.u.in4.sin_port = 0;
    else
        local.u.in6.sin6_port = 0;
    /* Where datagrams must come from: what the request announced, else the control host. */
    c->expect = c->peer;
    if (d->atyp != MPT_SOCKS_ATYP_DOMAIN) {
        struct mpt_addr a;
        if (mpt_target_literal(d->host, d->port, &a) == 0) {
            unmap(&a);
            if (!zero_ip(&a))
                c->expect = a;
        }
    }
    if (c->expect.u.sa.sa_family == AF_INET)
        c->expect.u.in4.sin_port = htons(d->port);
    else
        c->expect.u.in6.sin6_port = htons(d->port);
    rc = mpt_driver_udp_open(s->drv, &c->udp, 0, &local.u.sa, s->p.sndbuf ? s->p.sndbuf : RELAY_BUF,
                             s->p.rcvbuf ? s->p.rcvbuf : RELAY_BUF, on_relay, c);
    if (rc == 0 || mpt_udp_is_closing(&c->udp))
        c->udp_live = 1;
    if (rc == 0) {
        rc = mpt_udp_local(&c->udp, &ss);
        if (rc == 0)
            rc = mpt_addr_set(&bound, (struct sockaddr *)&ss);
    }
    if (rc) {
        char a[MPT_ADDR_STRLEN];
        MPT_WARN("socks: no relay socket on %s: %s", mpt_addr_str(&local, a, sizeof(a)),
                 uv_strerror(rc));
        if (c->udp_live)
            mpt_udp_close(&c->udp, on_udp_closed);
        refuse_reply(c, MPT_SOCKS_REP_FAILURE);
        return;
    }
    if (conn_write(c, out, mpt_socks_reply(out, MPT_SOCKS_REP_OK, &bound)) != 0) {
        conn_close(c, 0);
        return;
    }
    c->state = CONN_ASSOC;
    c->deadline_us = 0;
    c->assoc = 1;
    c->ndests = 0;
    c->client_known = 0;
    s->st.assoc_open++;
    s->st.assoc_total++;
    if (MPT_LOG_ON(MPT_LOGL_DEBUG)) {
        char a[MPT_ADDR_STRLEN], b[MPT_ADDR_STRLEN];
        MPT_DEBUG("socks: association %u for %s, relay %s", (unsigned)(c - s->conns),
                  mpt_addr_str(&c->peer, a, sizeof(a)), mpt_addr_str(&bound, b, sizeof(b)));
    }
}

/* ---- the control connection ---- */

static int equal_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);

    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* Takes what the buffer holds, message by message. */
static void conn_parse(struct conn *c)
{
    struct mpt_socks *s = c->s;

    while (c->have &&
           (c->state == CONN_GREETING || c->state == CONN_AUTH || c->state == CONN_REQUEST)) {
        struct mpt_socks_dest d;
        uint8_t method, cmd, out[MPT_SOCKS_REPLY_MAX];
        char user[256], pass[256];
        int r;

        if (c->state == CONN_GREETING) {
            r = mpt_socks_greeting(c->buf, c->have, s->want_auth, &method);
            if (r > 0) {
                out[0] = MPT_SOCKS_VERSION;
                out[1] = method;
                if (method == MPT_SOCKS_AUTH_REFUSED) {
                    s->st.handshake_failed++;
                    conn_refuse(c, out, 2);
                    return;
                }
                if (conn_write(c, out, 2) != 0) {
                    conn_close(c, 1);
                    return;
                }
                c->state = method == MPT_SOCKS_AUTH_USERPASS ? CONN_AUTH : CONN_REQUEST;
            }
        } else if (c->state == CONN_AUTH) {
            r = mpt_socks_userpass(c->buf, c->have, user, pass);
            if (r > 0) {
                int ok = equal_secret(user, s->user) & equal_secret(pass, s->pass);
                out[0] = 1;
                out[1] = ok ? 0 : 1;
                memset(pass, 0, sizeof(pass));
                if (!ok) {
                    s->st.handshake_failed++;
                    conn_refuse(c, out, 2);
                    return;
                }
                if (conn_write(c, out, 2) != 0) {
                    conn_close(c, 1);
                    return;
                }
                c->state = CONN_REQUEST;
            }
        } else {
            r = mpt_socks_request(c->buf, c->have, &cmd, &d);
            if (r == -EAFNOSUPPORT) {
                s->st.handshake_failed++;
                refuse_reply(c, MPT_SOCKS_REP_ATYP_UNSUPPORTED);
                return;
            }
            if (r > 0 && cmd != MPT_SOCKS_CMD_UDP) {
                s->st.unsupported++;
                refuse_reply(c, MPT_SOCKS_REP_CMD_UNSUPPORTED);
                return;
            }
            if (r > 0) {
                associate(c, &d);
                return; /* anything after the request is ignored */
            }
        }
        if (r < 0) {
            s->st.handshake_failed++;
            if (c->state == CONN_REQUEST)
                refuse_reply(c, MPT_SOCKS_REP_FAILURE);
            else
                conn_refuse(c, NULL, 0);
            return;
        }
        if (r == 0) {
            /* Every message fits the buffer: a full one that is still short is no message. */
            if (c->have == sizeof(c->buf)) {
                s->st.handshake_failed++;
                conn_close(c, 1);
            }
            return;
        }
        memmove(c->buf, c->buf + r, c->have - (size_t)r);
        c->have -= (size_t)r;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = mpt_container_of(h, struct conn, tcp);

    (void)suggested;
    /* Past the handshake, what the peer sends is read and dropped. */
    if (c->state != CONN_GREETING && c->state != CONN_AUTH && c->state != CONN_REQUEST)
        c->have = 0;
    *buf = uv_buf_init((char *)c->buf + c->have, (unsigned)(sizeof(c->buf) - c->have));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = mpt_container_of(st, struct conn, tcp);

    (void)buf;
    if (nread < 0) {
        conn_close(c, 1);
        return;
    }
    if (nread == 0 || c->state == CONN_CLOSING)
        return;
    if (c->state == CONN_GREETING || c->state == CONN_AUTH || c->state == CONN_REQUEST) {
        c->have += (size_t)nread;
        conn_parse(c);
    }
}

/* Over the limit of connections: accepted only to be closed at once. */
struct refused {
    uv_tcp_t tcp;
};

static void on_refused_closed(uv_handle_t *h)
{
    struct refused *r = mpt_container_of(h, struct refused, tcp);

    mpt_driver_closed(h);
    free(r);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mpt_socks *s = mpt_container_of(server, struct mpt_socks, listen);
    uv_loop_t *uv = mpt_loop_uv(s->loop);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    struct conn *c = NULL;

    if (status < 0 || s->stopped)
        return;
    for (unsigned i = 0; i < NSLOTS && !c; i++)
        if (s->conns[i].state == CONN_FREE)
            c = &s->conns[i];
    if (!c) {
        struct refused *r = malloc(sizeof(*r));
        if (!r)
            return;
        uv_tcp_init(uv, &r->tcp);
        mpt_driver_own(s->drv, (uv_handle_t *)&r->tcp);
        uv_accept(server, (uv_stream_t *)&r->tcp);
        uv_close((uv_handle_t *)&r->tcp, on_refused_closed);
        s->st.connections_refused++;
        return;
    }
    memset(c, 0, offsetof(struct conn, dests));
    c->s = s;
    c->state = CONN_GREETING;
    uv_tcp_init(uv, &c->tcp);
    mpt_driver_own(s->drv, (uv_handle_t *)&c->tcp);
    c->tcp_live = 1;
    s->st.connections++;
    c->deadline_us = now_us(s) + (uint64_t)MPT_SOCKS_HANDSHAKE_MS * 1000;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        mpt_addr_set(&c->peer, (struct sockaddr *)&ss) != 0) {
        conn_close(c, 0);
        return;
    }
    unmap(&c->peer);
    uv_tcp_nodelay(&c->tcp, 1);
    /* An association lives as long as its control connection: a peer that vanished without a
     * word (a crash behind a NAT) must not hold its place for ever. */
    uv_tcp_keepalive(&c->tcp, 1, MPT_SOCKS_KEEPALIVE_S);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c, 0);
}

static void on_sweep(uv_timer_t *t)
{
    struct mpt_socks *s = mpt_container_of(t, struct mpt_socks, timer);
    uint64_t now = now_us(s);

    for (unsigned i = 0; i < NSLOTS; i++) {
        struct conn *c = &s->conns[i];

        if (!c->deadline_us || now < c->deadline_us)
            continue;
        if (c->state == CONN_GREETING || c->state == CONN_AUTH || c->state == CONN_REQUEST)
            s->st.handshake_timeouts++;
        conn_close(c, 1);
    }
}

/* ---- the front ---- */

int mpt_socks_start(struct mpt_driver *d, const struct mpt_socks_params *p, struct mpt_socks **out)
{
    uv_loop_t *uv = mpt_loop_uv(d->loop);
    struct mpt_socks *s;
    int rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return UV_ENOMEM;
    /* A peer that leaves before reading its answer must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    s->drv = d;
    s->loop = d->loop;
    s->p = *p;
    if (p->user) {
        snprintf(s->user, sizeof(s->user), "%s", p->user);
        snprintf(s->pass, sizeof(s->pass), "%s", p->pass ? p->pass : "");
        s->want_auth = 1;
    }
    s->p.user = s->p.pass = NULL;
    s->st.max_assoc = MPT_SOCKS_MAX_ASSOC;
    s->st.max_dests = MPT_SOCKS_MAX_DESTS;
    mpt_addr_str(p->listen, s->st.listen, sizeof(s->st.listen));
    for (unsigned i = 0; i < NSLOTS; i++)
        s->conns[i].s = s;
    rc = uv_tcp_init_ex(uv, &s->listen, p->listen->u.sa.sa_family);
    if (rc) {
        free(s);
        return rc;
    }
    mpt_driver_own(d, (uv_handle_t *)&s->listen);
    uv_timer_init(uv, &s->timer);
    mpt_driver_own(d, (uv_handle_t *)&s->timer);
    *out = s;
    rc = uv_tcp_bind(&s->listen, &p->listen->u.sa, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&s->listen, 64, on_connection);
    if (!rc) {
        struct sockaddr_storage ss;
        struct mpt_addr a;
        int len = sizeof(ss);
        if (uv_tcp_getsockname(&s->listen, (struct sockaddr *)&ss, &len) == 0 &&
            mpt_addr_set(&a, (struct sockaddr *)&ss) == 0)
            mpt_addr_str(&a, s->st.listen, sizeof(s->st.listen));
        uv_timer_start(&s->timer, on_sweep, SWEEP_MS, SWEEP_MS);
    }
    return rc;
}

void mpt_socks_stop(struct mpt_socks *s)
{
    if (!s || s->stopped)
        return;
    s->stopped = 1;
    for (unsigned i = 0; i < NSLOTS; i++)
        conn_close(&s->conns[i], 0);
    mpt_driver_close((uv_handle_t *)&s->timer);
    mpt_driver_close((uv_handle_t *)&s->listen);
}

void mpt_socks_free(struct mpt_socks *s)
{
    if (!s)
        return;
    memset(s->pass, 0, sizeof(s->pass));
    free(s);
}

int mpt_socks_owns(const struct mpt_socks *s, uint16_t front)
{
    return s && front >= s->p.front_base && front < s->p.front_base + NSLOTS;
}

int mpt_socks_send(struct mpt_socks *s, uint16_t front, const char *host, uint16_t port,
                   const uint8_t *data, size_t len)
{
    struct mpt_socks_dest d;
    struct conn *c;
    int hlen;

    if (!mpt_socks_owns(s, front))
        return UV_EINVAL;
    c = &s->conns[front - s->p.front_base];
    if (c->state != CONN_ASSOC || !c->client_known ||
        len > sizeof(s->scratch) - MPT_SOCKS_UDP_HDR_MAX)
        return UV_ENOTCONN;
    memset(&d, 0, sizeof(d));
    snprintf(d.host, sizeof(d.host), "%s", host);
    d.port = port;
    hlen = mpt_socks_udp_header(s->scratch, &d);
    if (hlen < 0)
        return UV_EINVAL;
    memcpy(s->scratch + hlen, data, len);
    s->st.dgrams_out++;
    return mpt_udp_send(&c->udp, s->scratch, (size_t)hlen + len, &c->client.u.sa);
}

const struct mpt_socks_stats *mpt_socks_stats(const struct mpt_socks *s)
{
    return s ? &s->st : NULL;
}

void mpt_socks_send_errors(const struct mpt_socks *s, struct mpt_udp_errors *e)
{
    if (!s)
        return;
    mpt_udp_errors_add(e, &s->closed_err);
    for (unsigned i = 0; i < NSLOTS; i++)
        if (s->conns[i].udp_live)
            mpt_udp_errors_add(e, &s->conns[i].udp.tx.err);
}

int mpt_socks_credentials_differ(const struct mpt_socks *s, const char *user, const char *pass)
{
    if (!s)
        return user != NULL;
    if (!user)
        return s->want_auth;
    return !s->want_auth || strcmp(s->user, user) != 0 || !equal_secret(s->pass, pass ? pass : "");
}
