#include "net/bridge.h"

#include "net/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "net/udp.h"

/* A full table lets a never-answered peer this quiet give way to a new one. */
#define UNANSWERED_MS 2000u

/* Queue entries up to this payload are kept on a free list for reuse instead of being freed. */
#define POOL_PAYLOAD 2048u
#define POOL_MAX 4096u

struct peer {
    struct mpt_udp up; /* connected to `to` */
    struct mpt_bridge *b;
    struct mpt_addr addr;
    struct peer *hnext;       /* hash chain */
    struct peer *prev, *next; /* idle list, longest idle first */
    uint64_t last_ms;
    unsigned queued; /* copies in the delay queue that name this peer: it stays until they go */
    int answered;    /* `to' has replied to this peer at least once */
};

struct pkt {
    uint64_t at_us;
    uint64_t seq; /* FIFO among equal send times */
    struct peer *peer;
    struct pkt *next_free;
    uint32_t len;
    uint32_t cap;
    int dir;
    uint8_t data[];
};

/* A datagram waiting for the end of the loop round, when runs of one socket leave in one sendmmsg
 * call. Its bytes are copied: the receive buffer is shared by every socket of the loop. */
#define SENDQ_MAX 256
#define SENDQ_BYTES (512u * 1024)

struct sendq_entry {
    struct peer *peer;
    int dir;
    uint32_t off, len;
};

struct mpt_bridge {
    struct mpt_driver base; /* lifecycle: every handle below is counted there */
    struct mpt_loop *loop;
    struct mpt_udp listen;
    uv_timer_t queue_timer;
    uv_timer_t idle_timer;
    uv_signal_t sig_down;
    uv_signal_t sig_up;
    struct mpt_bridge_options o;
    struct mpt_impair imp[2];
    struct mpt_bridge_stats st;

    struct peer **buckets;
    uint32_t mask;
    uint64_t hash_key;
    struct peer *idle_head, *idle_tail;
    unsigned npeers;
    int warned_full;

    struct pkt **heap;
    unsigned heap_len, heap_cap;
    unsigned dir_queued[2];
    size_t queued_bytes;
    uint64_t seq;
    uint64_t timer_at_us; /* send time the queue timer is armed for; 0 = not armed */
    struct pkt *pool;
    unsigned pool_len;

    uint64_t record_size; /* file size, ours included */
    int listen_open;      /* the listen socket exists (open, or closing after a failed bind) */
    int warned_socket;
    uint8_t scratch[65536]; /* a corrupted copy sent at once */
    uv_check_t flusher;
    struct sendq_entry sq[SENDQ_MAX];
    unsigned sq_n;
    size_t sq_used;
    struct mpt_udp_msg batch[MPT_UDP_BATCH];
    uint8_t sq_buf[SENDQ_BYTES];
};

static const char *const dir_name[2] = {"to", "back"};

void mpt_bridge_options_init(struct mpt_bridge_options *o)
{
    memset(o, 0, sizeof(*o));
    o->idle_timeout_ms = MPT_BRIDGE_IDLE_MS;
    o->max_peers = MPT_BRIDGE_MAX_PEERS;
    o->max_queue_bytes = MPT_BRIDGE_QUEUE_BYTES;
    o->max_queue_datagrams = MPT_BRIDGE_QUEUE_DATAGRAMS;
    o->record_fd = -1;
    o->record_max_bytes = MPT_BRIDGE_RECORD_MAX;
}

/* The last reference is gone: stopped, every handle closed, and the owner let go. */
static void destroy(struct mpt_driver *base)
{
    struct mpt_bridge *b = mpt_container_of(base, struct mpt_bridge, base);
    struct pkt *k;

    while ((k = b->pool)) {
        b->pool = k->next_free;
        free(k);
    }
    if (b->o.record_fd >= 0)
        close(b->o.record_fd);
    free(b->heap);
    free(b->buckets);
    free(b);
}

/* ---- recording ---- */

static void record(struct mpt_bridge *b, const uint8_t *data, size_t len)
{
    uint8_t hdr[4];
    struct iovec iov[2];
    ssize_t n;

    if (b->o.record_fd < 0)
        return;
    if (b->record_size + 4 + len > b->o.record_max_bytes) {
        MPT_WARN("bridge: record file reached %llu bytes: recording stopped",
                 (unsigned long long)b->o.record_max_bytes);
        goto stop;
    }
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    iov[0].iov_base = hdr;
    iov[0].iov_len = 4;
    iov[1].iov_base = (void *)data;
    iov[1].iov_len = len;
    /* One write per record on an O_APPEND file: a reader sees whole records while we run. */
    n = writev(b->o.record_fd, iov, 2);
    if (n != (ssize_t)(4 + len)) {
        MPT_WARN("bridge: record file: %s: recording stopped",
                 n < 0 ? strerror(errno) : "short write");
        goto stop;
    }
    b->record_size += 4 + len;
    b->st.recorded++;
    b->st.record_bytes += 4 + len;
    return;
stop:
    close(b->o.record_fd);
    b->o.record_fd = -1;
}

/* ---- sending ---- */

static struct mpt_udp *sq_socket(struct mpt_bridge *b, const struct sendq_entry *e,
                                 const struct sockaddr **to)
{
    if (e->dir == MPT_BRIDGE_TO) {
        *to = NULL;
        return &e->peer->up;
    }
    *to = &e->peer->addr.u.sa;
    return &b->listen;
}

/* Sends the queued datagrams, runs of one socket in one sendmmsg call. */
static void flush(struct mpt_bridge *b)
{
    unsigned i = 0;

    while (i < b->sq_n) {
        const struct sockaddr *to;
        struct mpt_udp *u = sq_socket(b, &b->sq[i], &to);
        int dir = b->sq[i].dir;
        unsigned n = 0, sent;

        do {
            b->batch[n].buf = b->sq_buf + b->sq[i].off;
            b->batch[n].len = b->sq[i].len;
            b->batch[n].to = to;
            n++;
            i++;
        } while (i < b->sq_n && n < MPT_UDP_BATCH && b->sq[i].dir == dir &&
                 sq_socket(b, &b->sq[i], &to) == u);
        sent = mpt_udp_send_batch(u, b->batch, n);
        if (sent < n) {
            b->st.dir[dir].send_errors += n - sent;
            for (unsigned k = 0; k < n; k++)
                mpt_udp_errors_count(&b->st.dir[dir].send_kinds, b->batch[k].err, 1);
            MPT_DEBUG("bridge: send %s: %u datagrams refused", dir_name[dir], n - sent);
        }
    }
    b->sq_n = 0;
    b->sq_used = 0;
}

static void on_flush(uv_check_t *h)
{
    struct mpt_bridge *b = mpt_container_of(h, struct mpt_bridge, flusher);

    if (b->sq_n)
        flush(b);
}

static void send_now(struct mpt_bridge *b, struct peer *p, int dir, const uint8_t *data, size_t len)
{
    size_t room = (len + 15) & ~(size_t)15;
    struct sendq_entry *e;

    if (b->sq_n == SENDQ_MAX || SENDQ_BYTES - b->sq_used < room)
        flush(b);
    if (room > SENDQ_BYTES) {
        b->st.dir[dir].send_errors++;
        b->st.dir[dir].send_kinds.too_big++;
        return;
    }
    e = &b->sq[b->sq_n++];
    e->peer = p;
    e->dir = dir;
    e->off = (uint32_t)b->sq_used;
    e->len = (uint32_t)len;
    memcpy(b->sq_buf + b->sq_used, data, len);
    b->sq_used += room;
    if (dir == MPT_BRIDGE_TO)
        record(b, data, len);
}

/* ---- delay queue: a binary min-heap on (at_us, seq) ---- */

static int pkt_before(const struct pkt *x, const struct pkt *y)
{
    return x->at_us < y->at_us || (x->at_us == y->at_us && x->seq < y->seq);
}

static void heap_up(struct mpt_bridge *b, unsigned i)
{
    struct pkt *k = b->heap[i];

    while (i > 0) {
        unsigned parent = (i - 1) / 2;
        if (!pkt_before(k, b->heap[parent]))
            break;
        b->heap[i] = b->heap[parent];
        i = parent;
    }
    b->heap[i] = k;
}

static void heap_down(struct mpt_bridge *b, unsigned i)
{
    struct pkt *k = b->heap[i];

    for (;;) {
        unsigned c = 2 * i + 1;
        if (c >= b->heap_len)
            break;
        if (c + 1 < b->heap_len && pkt_before(b->heap[c + 1], b->heap[c]))
            c++;
        if (!pkt_before(b->heap[c], k))
            break;
        b->heap[i] = b->heap[c];
        i = c;
    }
    b->heap[i] = k;
}

static struct pkt *pkt_alloc(struct mpt_bridge *b, size_t len)
{
    struct pkt *k;

    if (len <= POOL_PAYLOAD && b->pool) {
        k = b->pool;
        b->pool = k->next_free;
        b->pool_len--;
        return k;
    }
    if (len < POOL_PAYLOAD)
        len = POOL_PAYLOAD;
    k = malloc(sizeof(*k) + len);
    if (k)
        k->cap = (uint32_t)len;
    return k;
}

static void pkt_release(struct mpt_bridge *b, struct pkt *k)
{
    b->queued_bytes -= k->len;
    b->dir_queued[k->dir]--;
    k->peer->queued--;
    if (k->cap == POOL_PAYLOAD && b->pool_len < POOL_MAX) {
        k->next_free = b->pool;
        b->pool = k;
        b->pool_len++;
        return;
    }
    free(k);
}

static void on_queue_timer(uv_timer_t *t);

static void arm_timer(struct mpt_bridge *b)
{
    uint64_t at, now, ms;

    if (mpt_driver_stopping(&b->base))
        return;
    if (b->heap_len == 0) {
        if (b->timer_at_us) {
            uv_timer_stop(&b->queue_timer);
            b->timer_at_us = 0;
        }
        return;
    }
    at = b->heap[0]->at_us;
    if (b->timer_at_us == at)
        return;
    now = mpt_loop_now_us(b->loop);
    /* Round up: libuv timers have millisecond resolution and a copy must never leave early.
     * The loop's cached time may lag; refresh it so the timer is not due too soon. */
    ms = at > now ? (at - now + 999) / 1000 : 0;
    uv_update_time(mpt_loop_uv(b->loop));
    uv_timer_start(&b->queue_timer, on_queue_timer, ms, 0);
    b->timer_at_us = at;
}

static void on_queue_timer(uv_timer_t *t)
{
    struct mpt_bridge *b = mpt_container_of(t, struct mpt_bridge, queue_timer);
    uint64_t now = mpt_loop_now_us(b->loop);

    b->timer_at_us = 0;
    while (b->heap_len && b->heap[0]->at_us <= now) {
        struct pkt *k = b->heap[0];

        b->heap[0] = b->heap[--b->heap_len];
        if (b->heap_len)
            heap_down(b, 0);
        send_now(b, k->peer, k->dir, k->data, k->len);
        pkt_release(b, k);
    }
    /* The check handle runs only after the next poll, which may block: send now. */
    if (b->sq_n)
        flush(b);
    arm_timer(b);
}

static void enqueue(struct mpt_bridge *b, struct peer *p, int dir, const uint8_t *data, size_t len,
                    const struct mpt_impair_copy *c)
{
    struct pkt *k;

    if (b->heap_len >= b->o.max_queue_datagrams || b->queued_bytes + len > b->o.max_queue_bytes)
        goto drop;
    if (b->heap_len == b->heap_cap) {
        unsigned cap = b->heap_cap ? 2 * b->heap_cap : 256;
        struct pkt **h = realloc(b->heap, cap * sizeof(*h));
        if (!h)
            goto drop;
        b->heap = h;
        b->heap_cap = cap;
    }
    k = pkt_alloc(b, len);
    if (!k)
        goto drop;
    k->at_us = c->send_at_us;
    k->seq = b->seq++;
    k->peer = p;
    k->dir = dir;
    k->len = (uint32_t)len;
    memcpy(k->data, data, len);
    mpt_impair_apply(c, k->data, len);
    p->queued++;
    b->dir_queued[dir]++;
    b->queued_bytes += len;
    b->heap[b->heap_len++] = k;
    heap_up(b, b->heap_len - 1);
    if (b->heap[0] == k)
        arm_timer(b);
    return;
drop:
    b->st.dir[dir].queue_drops++;
}

/* One datagram of one direction through the impairment model and on. */
static void relay(struct mpt_bridge *b, struct peer *p, int dir, const uint8_t *data, size_t len)
{
    struct mpt_impair *im = &b->imp[dir];
    struct mpt_impair_verdict v;
    uint64_t now = im->passthrough ? 0 : mpt_loop_now_us(b->loop);

    mpt_impair_decide(im, now, len, &v);
    for (unsigned i = 0; i < v.ncopies; i++) {
        const struct mpt_impair_copy *c = &v.copy[i];

        /* Copies already queued in this direction go first, whatever their time. */
        if (c->send_at_us > now || b->dir_queued[dir]) {
            enqueue(b, p, dir, data, len, c);
        } else if (c->nflips) {
            memcpy(b->scratch, data, len);
            mpt_impair_apply(c, b->scratch, len);
            send_now(b, p, dir, b->scratch, len);
        } else {
            send_now(b, p, dir, data, len);
        }
    }
}

/* ---- peers ---- */

static void idle_unlink(struct mpt_bridge *b, struct peer *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        b->idle_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        b->idle_tail = p->prev;
    p->prev = p->next = NULL;
}

static void idle_append(struct mpt_bridge *b, struct peer *p)
{
    p->prev = b->idle_tail;
    p->next = NULL;
    if (b->idle_tail)
        b->idle_tail->next = p;
    else
        b->idle_head = p;
    b->idle_tail = p;
}

static void touch(struct mpt_bridge *b, struct peer *p)
{
    p->last_ms = uv_now(mpt_loop_uv(b->loop));
    if (b->idle_tail != p) {
        idle_unlink(b, p);
        idle_append(b, p);
    }
}

static struct peer **bucket(struct mpt_bridge *b, const struct mpt_addr *a)
{
    return &b->buckets[mpt_addr_hash(a, b->hash_key) & b->mask];
}

static struct peer *peer_find(struct mpt_bridge *b, const struct mpt_addr *a)
{
    struct peer *p;

    for (p = *bucket(b, a); p; p = p->hnext)
        if (mpt_addr_equal(&p->addr, a))
            return p;
    return NULL;
}

static void on_peer_closed(struct mpt_udp *u)
{
    free(mpt_container_of(u, struct peer, up));
}

/* Forgets a peer: out of the table at once, memory freed when its socket is closed. */
static void peer_close(struct mpt_bridge *b, struct peer *p)
{
    struct peer **pp;

    for (pp = bucket(b, &p->addr); *pp != p; pp = &(*pp)->hnext)
        ;
    *pp = p->hnext;
    idle_unlink(b, p);
    b->npeers--;
    mpt_udp_close(&p->up, on_peer_closed);
}

static void expire_one(struct mpt_bridge *b, struct peer *p)
{
    char s[MPT_ADDR_STRLEN];

    MPT_DEBUG("bridge: peer %s idle, forgotten", mpt_addr_str(&p->addr, s, sizeof(s)));
    b->st.peers_expired++;
    peer_close(b, p);
}

static void on_upstream_recv(struct mpt_udp *u, const uint8_t *data, size_t len,
                             const struct sockaddr *from)
{
    struct peer *p = mpt_container_of(u, struct peer, up);
    struct mpt_bridge *b = p->b;

    touch(b, p);
    p->answered = 1;
    relay(b, p, MPT_BRIDGE_BACK, data, len);
}

static struct peer *peer_new(struct mpt_bridge *b, const struct mpt_addr *a)
{
    uint64_t now_ms = uv_now(mpt_loop_uv(b->loop));
    char s[MPT_ADDR_STRLEN];
    struct peer *p, **head;
    int err;

    if (b->npeers >= b->o.max_peers && b->idle_head && !b->idle_head->queued &&
        now_ms - b->idle_head->last_ms >= b->o.idle_timeout_ms)
        expire_one(b, b->idle_head);
    /* Still full: a peer that `to' never answered and that has been quiet a while is most likely
     * a spoofed source; it gives way, so that such sources cannot keep a real peer out. Only the
     * longest-idle few are looked at. */
    if (b->npeers >= b->o.max_peers) {
        unsigned looked = 0;
        for (p = b->idle_head; p && looked < 64; p = p->next, looked++) {
            if (now_ms - p->last_ms < UNANSWERED_MS)
                break;
            if (!p->answered && !p->queued) {
                expire_one(b, p);
                break;
            }
        }
    }
    if (b->npeers >= b->o.max_peers) {
        if (!b->warned_full) {
            MPT_WARN("bridge: %u peers, the maximum: datagrams from new addresses are dropped",
                     b->o.max_peers);
            b->warned_full = 1;
        }
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        err = UV_ENOMEM;
        goto fail;
    }
    err = mpt_driver_udp_open(&b->base, &p->up, b->o.to.u.sa.sa_family, NULL, b->o.sndbuf,
                              b->o.rcvbuf, on_upstream_recv, p);
    if (err) {
        if (!mpt_udp_is_closing(&p->up)) {
            free(p);
            goto fail;
        }
        mpt_udp_close(&p->up, on_peer_closed);
        goto fail;
    }
    p->b = b;
    err = mpt_udp_connect(&p->up, &b->o.to.u.sa);
    if (err) {
        mpt_udp_close(&p->up, on_peer_closed);
        goto fail;
    }
    p->addr = *a;
    head = bucket(b, a);
    p->hnext = *head;
    *head = p;
    p->last_ms = now_ms;
    idle_append(b, p);
    b->npeers++;
    b->st.peers_created++;
    b->warned_full = 0;
    b->warned_socket = 0;
    MPT_DEBUG("bridge: new peer %s", mpt_addr_str(a, s, sizeof(s)));
    return p;
fail:
    /* Once per run of failures: a full file table would otherwise log every datagram. */
    if (!b->warned_socket)
        MPT_WARN("bridge: no socket for peer %s: %s", mpt_addr_str(a, s, sizeof(s)),
                 mpt_strerror(err));
    b->warned_socket = 1;
    return NULL;
}

static void on_listen_recv(struct mpt_udp *u, const uint8_t *data, size_t len,
                           const struct sockaddr *from)
{
    struct mpt_bridge *b = mpt_container_of(u, struct mpt_bridge, listen);
    struct mpt_addr a;
    struct peer *p;

    if (mpt_addr_set(&a, from) != 0)
        return;
    p = peer_find(b, &a);
    if (!p) {
        p = peer_new(b, &a);
        if (!p) {
            b->st.peer_drops++;
            return;
        }
    }
    touch(b, p);
    relay(b, p, MPT_BRIDGE_TO, data, len);
}

static void on_idle_timer(uv_timer_t *t)
{
    struct mpt_bridge *b = mpt_container_of(t, struct mpt_bridge, idle_timer);
    uint64_t now_ms = uv_now(mpt_loop_uv(b->loop));
    struct peer *p, *next;

    for (p = b->idle_head; p && now_ms - p->last_ms >= b->o.idle_timeout_ms; p = next) {
        next = p->next;
        if (!p->queued)
            expire_one(b, p);
    }
}

/* ---- blackout signals ---- */

static void on_sig_down(uv_signal_t *h, int signum)
{
    struct mpt_bridge *b = mpt_container_of(h, struct mpt_bridge, sig_down);

    MPT_INFO("bridge: down (SIGUSR1): dropping everything both ways");
    mpt_bridge_set_down(b, 1);
}

static void on_sig_up(uv_signal_t *h, int signum)
{
    struct mpt_bridge *b = mpt_container_of(h, struct mpt_bridge, sig_up);

    MPT_INFO("bridge: up (SIGUSR2)");
    mpt_bridge_set_down(b, 0);
}

/* ---- start and stop ---- */

/* Closes every handle and drops the queued copies (mpt_driver_stop calls this once). */
static void bridge_stop(struct mpt_driver *base)
{
    struct mpt_bridge *b = mpt_container_of(base, struct mpt_bridge, base);

    if (b->sq_n)
        flush(b);
    while (b->heap_len)
        pkt_release(b, b->heap[--b->heap_len]);
    while (b->idle_head)
        peer_close(b, b->idle_head);
    if (b->listen_open)
        mpt_udp_close(&b->listen, NULL);
    mpt_driver_close((uv_handle_t *)&b->queue_timer);
    mpt_driver_close((uv_handle_t *)&b->idle_timer);
    mpt_driver_close((uv_handle_t *)&b->sig_down);
    mpt_driver_close((uv_handle_t *)&b->sig_up);
    mpt_driver_close((uv_handle_t *)&b->flusher);
}

static const struct mpt_driver_ops bridge_ops = {"bridge", bridge_stop, destroy};

void mpt_bridge_stop(struct mpt_bridge *b)
{
    mpt_driver_stop(&b->base);
}

static void describe(char *buf, size_t len, const struct mpt_impair_params *p)
{
    if (mpt_impair_params_none(p)) {
        snprintf(buf, len, "none");
        return;
    }
    snprintf(
        buf, len, "loss %g, delay %.3g ms, jitter %.3g ms, duplicate %g, reorder %g, corrupt %g",
        p->loss, p->delay_us / 1000.0, p->jitter_us / 1000.0, p->duplicate, p->reorder, p->corrupt);
}

static int open_listen(struct mpt_bridge *b)
{
    const struct mpt_addr *la = &b->o.listen;
    struct sockaddr_in any4;
    int err;

    err = mpt_driver_udp_open(&b->base, &b->listen, la->u.sa.sa_family, &la->u.sa, b->o.sndbuf,
                              b->o.rcvbuf, on_listen_recv, b);
    /* "All addresses" on a host without IPv6: IPv4 only then. */
    if (err == UV_EAFNOSUPPORT && !mpt_udp_is_closing(&b->listen) &&
        la->u.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&la->u.in6.sin6_addr)) {
        memset(&any4, 0, sizeof(any4));
        any4.sin_family = AF_INET;
        any4.sin_port = la->u.in6.sin6_port;
        err = mpt_driver_udp_open(&b->base, &b->listen, AF_INET, (const struct sockaddr *)&any4,
                                  b->o.sndbuf, b->o.rcvbuf, on_listen_recv, b);
    }
    if (!err || mpt_udp_is_closing(&b->listen))
        b->listen_open = 1;
    return err;
}

int mpt_bridge_start(struct mpt_loop *loop, const struct mpt_bridge_options *options,
                     struct mpt_bridge **out)
{
    uv_loop_t *uv = mpt_loop_uv(loop);
    struct mpt_bridge *b;
    struct mpt_addr local;
    char ls[MPT_ADDR_STRLEN], ts[MPT_ADDR_STRLEN], d0[160], d1[160];
    struct stat sb;
    uint32_t nb;
    uint64_t sweep_ms;
    int err;

    *out = NULL;
    b = calloc(1, sizeof(*b));
    if (!b) {
        if (options->record_fd >= 0)
            close(options->record_fd);
        return UV_ENOMEM;
    }
    b->loop = loop;
    b->o = *options;
    if (!b->o.idle_timeout_ms)
        b->o.idle_timeout_ms = MPT_BRIDGE_IDLE_MS;
    if (!b->o.max_peers)
        b->o.max_peers = MPT_BRIDGE_MAX_PEERS;
    if (!b->o.max_queue_bytes)
        b->o.max_queue_bytes = MPT_BRIDGE_QUEUE_BYTES;
    if (!b->o.max_queue_datagrams)
        b->o.max_queue_datagrams = MPT_BRIDGE_QUEUE_DATAGRAMS;
    if (!b->o.record_max_bytes)
        b->o.record_max_bytes = MPT_BRIDGE_RECORD_MAX;
    if (b->o.record_fd >= 0 && fstat(b->o.record_fd, &sb) == 0)
        b->record_size = (uint64_t)sb.st_size;
    /* Running, stopped with the loop, and held by the caller until mpt_bridge_free. */
    mpt_driver_init(&b->base, loop, &bridge_ops, 1);
    mpt_driver_ref(&b->base);

    /* Handles first (none of these can fail on a working loop), so that one stop path closes
     * whatever exists. */
    uv_timer_init(uv, &b->queue_timer);
    uv_timer_init(uv, &b->idle_timer);
    uv_signal_init(uv, &b->sig_down);
    uv_signal_init(uv, &b->sig_up);
    uv_check_init(uv, &b->flusher);
    mpt_driver_own(&b->base, (uv_handle_t *)&b->queue_timer);
    mpt_driver_own(&b->base, (uv_handle_t *)&b->idle_timer);
    mpt_driver_own(&b->base, (uv_handle_t *)&b->sig_down);
    mpt_driver_own(&b->base, (uv_handle_t *)&b->sig_up);
    mpt_driver_own(&b->base, (uv_handle_t *)&b->flusher);
    uv_check_start(&b->flusher, on_flush);

    if ((err = mpt_impair_init(&b->imp[MPT_BRIDGE_TO], &b->o.impair[MPT_BRIDGE_TO], b->o.seed,
                               MPT_BRIDGE_TO)) != 0 ||
        (err = mpt_impair_init(&b->imp[MPT_BRIDGE_BACK], &b->o.impair[MPT_BRIDGE_BACK], b->o.seed,
                               MPT_BRIDGE_BACK)) != 0) {
        err = UV_EINVAL;
        goto fail;
    }
    for (nb = 16; nb < b->o.max_peers && nb < (1u << 20); nb *= 2)
        ;
    b->buckets = calloc(nb, sizeof(*b->buckets));
    if (!b->buckets) {
        err = UV_ENOMEM;
        goto fail;
    }
    b->mask = nb - 1;
    err = uv_random(NULL, NULL, &b->hash_key, sizeof(b->hash_key), 0, NULL);
    if (err)
        goto fail;

    err = open_listen(b);
    if (err)
        goto fail;
    uv_signal_start(&b->sig_down, on_sig_down, SIGUSR1);
    uv_signal_start(&b->sig_up, on_sig_up, SIGUSR2);
    /* The blackout signals must not keep the loop alive on their own. */
    uv_unref((uv_handle_t *)&b->sig_down);
    uv_unref((uv_handle_t *)&b->sig_up);
    sweep_ms = b->o.idle_timeout_ms / 4;
    sweep_ms = sweep_ms > 1000 ? 1000 : sweep_ms < 10 ? 10 : sweep_ms;
    uv_timer_start(&b->idle_timer, on_idle_timer, sweep_ms, sweep_ms);

    mpt_bridge_local(b, &local);
    describe(d0, sizeof(d0), &b->o.impair[MPT_BRIDGE_TO]);
    describe(d1, sizeof(d1), &b->o.impair[MPT_BRIDGE_BACK]);
    MPT_INFO("bridge: listening on %s, forwarding to %s (idle timeout %u ms, at most %u peers%s)",
             mpt_addr_str(&local, ls, sizeof(ls)), mpt_addr_str(&b->o.to, ts, sizeof(ts)),
             b->o.idle_timeout_ms, b->o.max_peers, b->o.record_fd >= 0 ? ", recording" : "");
    if (!b->imp[0].passthrough || !b->imp[1].passthrough)
        MPT_INFO("bridge: seed %llu; impairment to: %s; back: %s", (unsigned long long)b->o.seed,
                 d0, d1);
    *out = b;
    return 0;
fail:
    /* Released by itself: the caller gets no bridge to free. */
    mpt_driver_stop(&b->base);
    mpt_driver_unref(&b->base);
    return err;
}

void mpt_bridge_local(const struct mpt_bridge *b, struct mpt_addr *out)
{
    struct sockaddr_storage ss;

    if (mpt_udp_local((struct mpt_udp *)&b->listen, &ss) != 0 ||
        mpt_addr_set(out, (const struct sockaddr *)&ss) != 0)
        *out = b->o.listen;
}

void mpt_bridge_set_down(struct mpt_bridge *b, int down)
{
    mpt_impair_set_down(&b->imp[MPT_BRIDGE_TO], down);
    mpt_impair_set_down(&b->imp[MPT_BRIDGE_BACK], down);
}

void mpt_bridge_get_stats(const struct mpt_bridge *b, struct mpt_bridge_stats *st)
{
    *st = b->st;
    st->dir[MPT_BRIDGE_TO].impair = b->imp[MPT_BRIDGE_TO].stats;
    st->dir[MPT_BRIDGE_BACK].impair = b->imp[MPT_BRIDGE_BACK].stats;
    st->peers_active = b->npeers;
    st->queued = b->heap_len;
}

void mpt_bridge_free(struct mpt_bridge *b)
{
    if (!b)
        return;
    mpt_driver_stop(&b->base);
    mpt_driver_unref(&b->base);
}
