/*
 * mpt-floor: the performance floor for mptunnel's benchmarks. It does the tunnel's socket work
 * with no protocol, so that "CPU per delivered datagram" of the tunnel can be set against the
 * cheapest program that moves the same datagrams along the same route:
 *
 *   app -> client ==> relay 1..N ==> server -> target, and the replies back the same way.
 *
 *   mpt-floor client --listen A --to B1 [--to B2 ...]
 *       Every datagram from an application (a flow, by source address) gets a 12-byte prefix
 *       [u64 counter][u32 flow] and is sent to every B from one upstream socket, in sendmmsg
 *       batches. Replies from any B are de-duplicated by counter (8192-wide window),
 *       stripped and returned to the flow's application from the listening socket.
 *   mpt-floor relay --listen A --to B
 *       A plain relay shaped like `mptunnel bridge`: one upstream socket per peer (connected to
 *       B), replies go back to the peer. At most 256 peers; further peers are dropped.
 *   mpt-floor server --listen A --to T
 *       De-duplicates the copies by counter, strips the prefix and forwards each flow to T from a
 *       socket of its own (like a NAT). Replies get [u64 counter][u32 flow] and are sent to every
 *       relay address heard from (at most 16), like the tunnel's replies over all paths.
 *
 * What it does per datagram, like the tunnel: batched recvmmsg with UDP_GRO on every socket (a run
 * that a peer sent with GSO arrives as one buffer, split here by the segment size), a hash lookup
 * of the flow, a window check, a small header, one sendmmsg per batch and destination socket in
 * which each run of equal-sized datagrams to one destination is one UDP_SEGMENT (GSO) entry
 * where it fits the route's MTU, every destination still receiving in order (the tunnel's own
 * sender, net/udp_tx.c, shared), no malloc per datagram.
 * What it does not: encryption (one AEAD seal or open per datagram in the tunnel, ~1 us),
 * handshakes, keepalives, path statistics or scheduling, timers, idle expiry, restart
 * handling (a restarted client's counters fall behind the server's window and are dropped).
 * It assumes a single client per server, since flow numbers are the client's.
 *
 * Options common to all roles: --bufsize BYTES (SO_RCVBUF/SO_SNDBUF of every socket, default
 * 4 MiB, the FORCE variants when allowed), --ready FILE (the bound listen address, once bound).
 * SIGTERM or SIGINT: print counters on stderr, exit 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/wire.h"
#include "net/udp_tx.h"
#include "test/tools/toolnet.h"

#define FL_BATCH 64
#define FL_SLOT 65536
#define FL_HDR 12
#define FL_WINDOW 8192
#define FL_MAX_TO 16
#define FL_MAX_PEERS 256
#define FL_MAX_FLOWS 1024
#define FL_MAX_RELAYS 16
#define FL_HASH 4096
#define FL_DEFAULT_BUF (4 << 20)
#define FL_GRO_SEGS 64                     /* the kernel merges at most 64 datagrams */
#define FL_DGRAMS (FL_BATCH * FL_GRO_SEGS) /* datagrams of one received batch, split */
#define FL_TXQ MPT_UDP_TX_MAX              /* datagrams queued per send */

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

enum role { ROLE_CLIENT, ROLE_RELAY, ROLE_SERVER };

/* epoll tags: the listening socket, the client's upstream socket, or one of the per-peer / per-flow
 * sockets by index. */
enum { TAG_LISTEN = -1, TAG_UP = -2 };

struct window {
    uint64_t top;
    uint64_t bits[FL_WINDOW / 64];
};

/* A remote endpoint with its own socket: a relay's peer or a server's flow. Clients use only addr.
 */
struct peer {
    struct tool_addr addr;
    uint32_t flow;
    int fd;
    struct mpt_udp_tx tx; /* fd's sending state */
};

/* One received datagram: a recvmmsg entry, or a segment of one that GRO merged. */
struct dgram {
    uint8_t *p;
    uint32_t len;
    uint32_t from; /* index into rxfrom / rx */
};

struct floor_ctx {
    enum role role;
    int bufsize;
    struct tool_addr listen;
    struct tool_addr to[FL_MAX_TO];
    int nto;
    int lfd, ufd, ep;

    struct peer *peers;
    int npeers, max_peers;
    int16_t hash[FL_HASH]; /* index into peers, -1 empty; keyed by address or by flow */

    struct tool_addr relays[FL_MAX_RELAYS];
    int nrelays, next_relay;

    struct window win;
    uint64_t counter;

    uint64_t in, out, dups, dropped, send_errors;
    struct mpt_udp_tx ltx, utx; /* sending state of lfd and ufd */

    /* receive batch */
    uint8_t *rxbuf;
    int nrx;
    struct mmsghdr rx[FL_BATCH];
    struct iovec rxiov[FL_BATCH];
    struct sockaddr_storage rxfrom[FL_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } rxctl[FL_BATCH];
    struct dgram d[FL_DGRAMS];
    uint8_t hdr[FL_DGRAMS][FL_HDR];

    /* send queue of one socket: sent by net/udp_tx.c as the tunnel sends (GSO runs that fit
     * the route, the rest datagram by datagram) */
    int txfd, ntx;
    struct mpt_udp_tx *tx;
    struct mpt_udp_msg txq[FL_TXQ];
};

static volatile sig_atomic_t got_signal;

static void put_hdr(uint8_t *p, uint64_t counter, uint32_t flow)
{
    mpt_put32(p, (uint32_t)(counter >> 32));
    mpt_put32(p + 4, (uint32_t)counter);
    mpt_put32(p + 8, flow);
}

/* Accepts each counter once within the last FL_WINDOW; returns false for duplicates and stale. */
static bool window_accept(struct window *w, uint64_t c)
{
    if (c == 0)
        return false;
    if (c > w->top) {
        if (c - w->top >= FL_WINDOW)
            memset(w->bits, 0, sizeof(w->bits));
        else
            for (uint64_t x = w->top + 1; x <= c; x++)
                w->bits[(x / 64) % (FL_WINDOW / 64)] &= ~(1ull << (x % 64));
        w->top = c;
    } else if (w->top - c >= FL_WINDOW) {
        return false;
    }
    uint64_t *word = &w->bits[(c / 64) % (FL_WINDOW / 64)];
    uint64_t m = 1ull << (c % 64);
    if (*word & m)
        return false;
    *word |= m;
    return true;
}

static int epoll_add(struct floor_ctx *f, int fd, int tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(int64_t)tag};
    return epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

/* A socket as tool_udp_socket makes it, with UDP_GRO on: a GSO batch from a peer arrives as one
 * buffer (kernels without UDP_GRO just say no, and deliver the datagrams one by one). */
static int floor_socket(struct floor_ctx *f, int family, const struct tool_addr *bind_to)
{
    int one = 1, fd = tool_udp_socket(family, f->bufsize, bind_to);

    if (fd >= 0) {
        (void)setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
        mpt_udp_tx_setup(fd, family);
    }
    return fd;
}

/* Finds the peer for an address (client, relay) or a flow id (server); creates it when `create`.
 * Returns its index or -1 (unknown, or the table is full). */
static int peer_find(struct floor_ctx *f, const struct sockaddr *sa, uint32_t flow, bool create)
{
    uint64_t h = sa ? tool_addr_hash(sa) : flow * 0x9e3779b97f4a7c15ull;

    for (uint32_t i = 0; i < FL_HASH; i++) {
        int16_t *slot = &f->hash[(h + i) % FL_HASH];
        if (*slot < 0) {
            if (!create || f->npeers >= f->max_peers)
                return -1;
            break;
        }
        struct peer *p = &f->peers[*slot];
        if (sa ? tool_addr_equal(sa, (const struct sockaddr *)&p->addr.ss) : p->flow == flow)
            return *slot;
    }
    struct peer *p = &f->peers[f->npeers];
    memset(p, 0, sizeof(*p));
    p->fd = -1;
    p->flow = flow;
    if (sa) {
        p->addr.len =
            sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        memcpy(&p->addr.ss, sa, p->addr.len);
    }
    if (f->role != ROLE_CLIENT) {
        /* Relay peers and server flows get a socket of their own, connected to the one
         * destination, as the bridge and the tunnel server do. */
        int fd = floor_socket(f, f->to[0].ss.ss_family, NULL);
        if (fd < 0)
            return -1;
        if (connect(fd, (const struct sockaddr *)&f->to[0].ss, f->to[0].len) != 0 ||
            epoll_add(f, fd, f->npeers) != 0) {
            close(fd);
            return -1;
        }
        p->fd = fd;
    }
    for (uint32_t i = 0; i < FL_HASH; i++) {
        int16_t *slot = &f->hash[(h + i) % FL_HASH];
        if (*slot < 0) {
            *slot = (int16_t)f->npeers;
            break;
        }
    }
    return f->npeers++;
}

static void note_relay(struct floor_ctx *f, const struct sockaddr *sa, socklen_t len)
{
    for (int i = 0; i < f->nrelays; i++)
        if (tool_addr_equal(sa, (const struct sockaddr *)&f->relays[i].ss))
            return;
    int i = f->nrelays < FL_MAX_RELAYS ? f->nrelays++ : f->next_relay++ % FL_MAX_RELAYS;
    memcpy(&f->relays[i].ss, sa, len);
    f->relays[i].len = len;
}

static uint32_t gro_size(struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof(v));
            return v > 0 && v < 65536 ? (uint32_t)v : 0;
        }
    }
    return 0;
}

/* Receives one batch into f->d, GRO batches split; returns the datagrams (f->nrx: the entries). */
static int recv_batch(struct floor_ctx *f, int fd)
{
    int nd = 0;

    for (int i = 0; i < FL_BATCH; i++) {
        f->rxiov[i].iov_base = f->rxbuf + (size_t)i * FL_SLOT;
        f->rxiov[i].iov_len = FL_SLOT;
        memset(&f->rx[i].msg_hdr, 0, sizeof(f->rx[i].msg_hdr));
        f->rx[i].msg_hdr.msg_iov = &f->rxiov[i];
        f->rx[i].msg_hdr.msg_iovlen = 1;
        f->rx[i].msg_hdr.msg_name = &f->rxfrom[i];
        f->rx[i].msg_hdr.msg_namelen = sizeof(f->rxfrom[i]);
        f->rx[i].msg_hdr.msg_control = f->rxctl[i].buf;
        f->rx[i].msg_hdr.msg_controllen = sizeof(f->rxctl[i].buf);
    }
    f->nrx = recvmmsg(fd, f->rx, FL_BATCH, MSG_DONTWAIT, NULL);
    for (int i = 0; i < f->nrx; i++) {
        uint8_t *p = f->rxiov[i].iov_base;
        uint32_t len = f->rx[i].msg_len, seg = gro_size(&f->rx[i].msg_hdr);

        if (f->rx[i].msg_hdr.msg_flags & MSG_TRUNC) {
            f->dropped++;
            continue;
        }
        if (!seg || seg >= len)
            seg = len ? len : 1;
        /* A GRO batch: datagrams of `seg` bytes, the last perhaps shorter. */
        for (uint32_t off = 0; off == 0 || off < len; off += seg) {
            if (nd == FL_DGRAMS) {
                f->dropped++;
                continue;
            }
            f->d[nd].p = p + off;
            f->d[nd].len = len - off < seg ? len - off : seg;
            f->d[nd++].from = (uint32_t)i;
        }
    }
    f->in += (uint64_t)nd;
    return nd;
}

/* Sends the queue as the tunnel does (net/udp_tx.c). */
static void tx_flush(struct floor_ctx *f)
{
    unsigned n = (unsigned)f->ntx, sent;

    f->ntx = 0;
    if (!n)
        return;
    sent = mpt_udp_tx_send(f->tx, f->txfd, f->txq, n);
    f->out += sent;
    f->send_errors += n - sent;
}

/* Queues (hdr, payload) for dst (NULL: connected socket) on socket fd, whose sending state is
 * tx; a queue for another socket, or a full one, is sent first. */
static void tx_add(struct floor_ctx *f, int fd, struct mpt_udp_tx *tx, const uint8_t *hdr,
                   const void *payload, size_t len, const struct tool_addr *dst)
{
    struct mpt_udp_msg *m;

    if (f->ntx && (fd != f->txfd || f->ntx == FL_TXQ))
        tx_flush(f);
    f->txfd = fd;
    f->tx = tx;
    m = &f->txq[f->ntx++];
    m->pre = hdr;
    m->pre_len = hdr ? FL_HDR : 0;
    m->buf = payload;
    m->len = len;
    m->to = dst ? (const struct sockaddr *)&dst->ss : NULL;
    m->from = NULL;
}

static void client_from_apps(struct floor_ctx *f, int n)
{
    for (int i = 0; i < n; i++) {
        const struct dgram *d = &f->d[i];
        int flow = peer_find(f, (struct sockaddr *)&f->rxfrom[d->from], 0, true);
        if (flow < 0) {
            f->dropped++;
            continue;
        }
        put_hdr(f->hdr[i], ++f->counter, (uint32_t)flow);
        for (int j = 0; j < f->nto; j++)
            tx_add(f, f->ufd, &f->utx, f->hdr[i], d->p, d->len, &f->to[j]);
    }
    tx_flush(f);
}

static void client_from_paths(struct floor_ctx *f, int n)
{
    for (int i = 0; i < n; i++) {
        const uint8_t *p = f->d[i].p;
        uint32_t len = f->d[i].len;
        if (len < FL_HDR) {
            f->dropped++;
            continue;
        }
        uint64_t c = (uint64_t)mpt_get32(p) << 32 | mpt_get32(p + 4);
        uint32_t flow = mpt_get32(p + 8);
        if (flow >= (uint32_t)f->npeers) {
            f->dropped++;
            continue;
        }
        if (!window_accept(&f->win, c)) {
            f->dups++;
            continue;
        }
        tx_add(f, f->lfd, &f->ltx, NULL, p + FL_HDR, len - FL_HDR, &f->peers[flow].addr);
    }
    tx_flush(f);
}

static void relay_from_peers(struct floor_ctx *f, int n)
{
    for (int i = 0; i < n; i++) {
        const struct dgram *d = &f->d[i];
        int k = peer_find(f, (struct sockaddr *)&f->rxfrom[d->from], 0, true);
        if (k < 0) {
            f->dropped++;
            continue;
        }
        tx_add(f, f->peers[k].fd, &f->peers[k].tx, NULL, d->p, d->len, NULL);
    }
    tx_flush(f);
}

static void server_from_relays(struct floor_ctx *f, int n)
{
    for (int i = 0; i < n; i++) {
        const uint8_t *p = f->d[i].p;
        uint32_t len = f->d[i].len, from = f->d[i].from;
        if (len < FL_HDR) {
            f->dropped++;
            continue;
        }
        note_relay(f, (struct sockaddr *)&f->rxfrom[from], f->rx[from].msg_hdr.msg_namelen);
        uint64_t c = (uint64_t)mpt_get32(p) << 32 | mpt_get32(p + 4);
        if (!window_accept(&f->win, c)) {
            f->dups++;
            continue;
        }
        int k = peer_find(f, NULL, mpt_get32(p + 8), true);
        if (k < 0) {
            f->dropped++;
            continue;
        }
        tx_add(f, f->peers[k].fd, &f->peers[k].tx, NULL, p + FL_HDR, len - FL_HDR, NULL);
    }
    tx_flush(f);
}

/* Replies arriving on a peer's (relay) or flow's (server) own socket. */
static void from_upstream(struct floor_ctx *f, int k, int n)
{
    struct peer *p = &f->peers[k];

    for (int i = 0; i < n; i++) {
        const struct dgram *d = &f->d[i];
        if (f->role == ROLE_RELAY) {
            tx_add(f, f->lfd, &f->ltx, NULL, d->p, d->len, &p->addr);
            continue;
        }
        put_hdr(f->hdr[i], ++f->counter, p->flow);
        for (int j = 0; j < f->nrelays; j++)
            tx_add(f, f->lfd, &f->ltx, f->hdr[i], d->p, d->len, &f->relays[j]);
    }
    tx_flush(f);
}

static void on_readable(struct floor_ctx *f, int tag)
{
    int fd = tag == TAG_LISTEN ? f->lfd : tag == TAG_UP ? f->ufd : f->peers[tag].fd;

    for (int round = 0; round < 4; round++) {
        int n = recv_batch(f, fd);
        if (f->nrx <= 0)
            return;
        if (tag == TAG_LISTEN && f->role == ROLE_CLIENT)
            client_from_apps(f, n);
        else if (tag == TAG_LISTEN && f->role == ROLE_RELAY)
            relay_from_peers(f, n);
        else if (tag == TAG_LISTEN)
            server_from_relays(f, n);
        else if (tag == TAG_UP)
            client_from_paths(f, n);
        else
            from_upstream(f, tag, n);
        if (f->nrx < FL_BATCH)
            return;
    }
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: mpt-floor client --listen ADDR:PORT --to ADDR:PORT [--to ...]\n"
                 "       mpt-floor relay  --listen ADDR:PORT --to ADDR:PORT\n"
                 "       mpt-floor server --listen ADDR:PORT --to ADDR:PORT\n"
                 "Options: --bufsize BYTES (default 4194304), --ready FILE (bound address)\n"
                 "A relay doing mptunnel's socket work without its protocol (see floor.c).\n");
}

static int parse_args(struct floor_ctx *f, int argc, char **argv, const char **ready)
{
    bool have_listen = false;

    if (argc < 2)
        return -1;
    if (!strcmp(argv[1], "client"))
        f->role = ROLE_CLIENT;
    else if (!strcmp(argv[1], "relay"))
        f->role = ROLE_RELAY;
    else if (!strcmp(argv[1], "server"))
        f->role = ROLE_SERVER;
    else
        return -1;
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--help"))
            return 1;
        if (!v) {
            fprintf(stderr, "mpt-floor: `%s' needs a value\n", argv[i]);
            return -1;
        }
        if (!strcmp(argv[i], "--listen")) {
            if (tool_addr_parse(v, &f->listen) != 0)
                goto bad;
            have_listen = true;
        } else if (!strcmp(argv[i], "--to")) {
            if (f->nto == FL_MAX_TO || tool_addr_parse(v, &f->to[f->nto]) != 0)
                goto bad;
            f->nto++;
        } else if (!strcmp(argv[i], "--bufsize")) {
            char *end;
            long b = strtol(v, &end, 10);
            if (*end || b < 0 || b > (1 << 30))
                goto bad;
            f->bufsize = (int)b;
        } else if (!strcmp(argv[i], "--ready")) {
            *ready = v;
        } else {
            fprintf(stderr, "mpt-floor: unknown option `%s'\n", argv[i]);
            return -1;
        }
        i++;
        continue;
    bad:
        fprintf(stderr, "mpt-floor: invalid value for %s `%s'\n", argv[i], v);
        return -1;
    }
    if (!have_listen || f->nto < 1 || (f->role != ROLE_CLIENT && f->nto != 1)) {
        fprintf(stderr, "mpt-floor: needs --listen and %s\n",
                f->role == ROLE_CLIENT ? "at least one --to" : "exactly one --to");
        return -1;
    }
    for (int i = 1; i < f->nto; i++) {
        if (f->to[i].ss.ss_family != f->to[0].ss.ss_family) {
            fprintf(stderr, "mpt-floor: all --to addresses must be of one family\n");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const roles[] = {"client", "relay", "server"};
    struct floor_ctx *f = calloc(1, sizeof(*f));
    const char *ready = NULL;
    sigset_t unblocked;
    char addr[TOOL_ADDRSTRLEN];
    int rc = 1, err;

    if (!f) {
        fprintf(stderr, "mpt-floor: out of memory\n");
        return 1;
    }
    f->lfd = f->ufd = f->ep = -1;
    f->bufsize = FL_DEFAULT_BUF;
    err = parse_args(f, argc, argv, &ready);
    if (err) {
        usage(err > 0 ? stdout : stderr);
        rc = err > 0 ? 0 : 2;
        goto out;
    }
    f->max_peers = f->role == ROLE_RELAY ? FL_MAX_PEERS : FL_MAX_FLOWS;
    f->peers = calloc((size_t)f->max_peers, sizeof(*f->peers));
    f->rxbuf = malloc((size_t)FL_BATCH * FL_SLOT);
    if (!f->peers || !f->rxbuf) {
        fprintf(stderr, "mpt-floor: out of memory\n");
        goto out;
    }
    memset(f->hash, 0xff, sizeof(f->hash));
    tool_signals_init(&got_signal, &unblocked);
    f->ep = epoll_create1(EPOLL_CLOEXEC);
    f->lfd = floor_socket(f, f->listen.ss.ss_family, &f->listen);
    if (f->ep < 0 || f->lfd < 0) {
        fprintf(stderr, "mpt-floor: listen %s: %s\n",
                tool_addr_format((struct sockaddr *)&f->listen.ss, addr, sizeof(addr)),
                strerror(f->lfd < 0 ? -f->lfd : errno));
        goto out;
    }
    if (epoll_add(f, f->lfd, TAG_LISTEN) != 0)
        goto out;
    if (f->role == ROLE_CLIENT) {
        f->ufd = floor_socket(f, f->to[0].ss.ss_family, NULL);
        if (f->ufd < 0 || epoll_add(f, f->ufd, TAG_UP) != 0) {
            fprintf(stderr, "mpt-floor: upstream socket: %s\n", strerror(errno));
            goto out;
        }
    }
    if (ready && (err = tool_write_ready(ready, f->lfd)) != 0) {
        fprintf(stderr, "mpt-floor: %s: %s\n", ready, strerror(-err));
        goto out;
    }

    while (!got_signal || got_signal == SIGUSR1) {
        struct epoll_event evs[64];
        got_signal = 0;
        int n = epoll_pwait(f->ep, evs, 64, -1, &unblocked);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "mpt-floor: epoll: %s\n", strerror(errno));
            goto out;
        }
        for (int i = 0; i < n; i++)
            on_readable(f, (int)(int64_t)evs[i].data.u64);
    }
    fprintf(stderr,
            "mpt-floor %s: in %" PRIu64 ", out %" PRIu64 ", duplicates dropped %" PRIu64
            ", dropped %" PRIu64 ", send errors %" PRIu64 ", %s %d\n",
            roles[f->role], f->in, f->out, f->dups, f->dropped, f->send_errors,
            f->role == ROLE_RELAY ? "peers" : "flows", f->npeers);
    rc = 0;
out:
    if (f->peers)
        for (int i = 0; i < f->npeers; i++) {
            if (f->peers[i].fd >= 0)
                close(f->peers[i].fd);
            mpt_udp_tx_free(&f->peers[i].tx);
        }
    mpt_udp_tx_free(&f->ltx);
    mpt_udp_tx_free(&f->utx);
    if (f->lfd >= 0)
        close(f->lfd);
    if (f->ufd >= 0)
        close(f->ufd);
    if (f->ep >= 0)
        close(f->ep);
    free(f->peers);
    free(f->rxbuf);
    free(f);
    return rc;
}
