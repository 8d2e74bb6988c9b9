/* Batched UDP sending: sendmmsg, GSO runs that fit the route, a per-destination MTU cache, errors
 * by kind (udp_tx.h).
 *
 * Why IP_MTU_DISCOVER is "don't" (IP_PMTUDISC_DONT, IPV6_PMTUDISC_DONT): the tunnel carries
 * whatever the applications send, up to 65,000 bytes, and cannot tell them to send less, so a
 * datagram larger than a path's MTU must be fragmented, never refused. With the kernel's default
 * ("want") an IPv4 datagram that fits the first hop leaves with DF set: a smaller MTU further on
 * drops it and, where ICMP is filtered, every later one of that size too (a black hole); where the
 * ICMP does arrive, it also fails the next send on a connected socket with EMSGSIZE. With "don't",
 * no IPv4 datagram carries DF, so a router with a smaller MTU fragments it; IPv6 routers never
 * fragment, but the kernel still learns the path MTU from ICMPv6 "packet too big" and fragments
 * at the source, without failing the next send. The cost, documented for operators: a fragmented
 * datagram is lost if any fragment is, and fragments cost CPU, hence the client's warning when
 * applications send more than a path carries whole (README, MTU). */
#include "net/udp_tx.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define GSO_SKIP 128 /* datagrams to other destinations looked past while gathering a run */
#define MTU_WAYS 4   /* the cache: MPT_UDP_MTU_CACHE / MTU_WAYS sets of MTU_WAYS entries */
#define MTU_SETS (MPT_UDP_MTU_CACHE / MTU_WAYS)
#define MTU_RETRY_MS 1000 /* an MTU that could not be read is tried again after this */

_Static_assert(MPT_UDP_MTU_CACHE % MTU_WAYS == 0, "whole sets");

/* A destination as far as routing is concerned: the address, not the port. */
struct dest_key {
    uint8_t addr[16];
    uint32_t scope;
    uint8_t v4;
};

struct mtu_entry {
    struct dest_key key;
    uint64_t at_ms; /* when learned; 0: empty */
    uint32_t mtu;   /* 0: unknown (no route), no GSO */
    uint8_t no_gso; /* the route refused GSO itself (EIO, EOPNOTSUPP) */
};

struct mpt_udp_mtu_cache {
    struct mtu_entry e[MPT_UDP_MTU_CACHE];
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1;
}

static socklen_t addr_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int dest_key_of(const struct sockaddr *sa, struct dest_key *k)
{
    memset(k, 0, sizeof(*k));
    if (sa->sa_family == AF_INET) {
        memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        k->v4 = 1;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            memcpy(k->addr, s6->sin6_addr.s6_addr + 12, 4);
            k->v4 = 1;
            return 0;
        }
        memcpy(k->addr, &s6->sin6_addr, 16);
        k->scope = s6->sin6_scope_id;
        return 0;
    }
    return -EAFNOSUPPORT;
}

/* ---- errors ---- */

void mpt_udp_errors_count(struct mpt_udp_errors *e, int err, uint64_t n)
{
    switch (-err) {
    case 0:
        return;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ENOBUFS:
    case ENOMEM:
        e->congestion += n;
        return;
    case EMSGSIZE:
        e->too_big += n;
        return;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ECONNREFUSED:
    case EHOSTDOWN:
    case ENETDOWN:
    case EADDRNOTAVAIL:
    case ENONET:
        e->unreachable += n;
        return;
    default:
        e->other += n;
        return;
    }
}

uint64_t mpt_udp_errors_total(const struct mpt_udp_errors *e)
{
    return e->congestion + e->too_big + e->unreachable + e->other;
}

void mpt_udp_errors_add(struct mpt_udp_errors *a, const struct mpt_udp_errors *b)
{
    a->congestion += b->congestion;
    a->too_big += b->too_big;
    a->unreachable += b->unreachable;
    a->other += b->other;
    a->gso_resent += b->gso_resent;
}

/* ---- learning MTUs ---- */

void mpt_udp_tx_setup(int fd, int family)
{
    int dont = IP_PMTUDISC_DONT, dont6 = IPV6_PMTUDISC_DONT;

    /* An AF_INET6 socket sends IPv4 too (mapped addresses): both settings apply. */
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof(dont));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &dont6, sizeof(dont6));
}

/* The route MTU of a connected descriptor, or 0. */
static unsigned read_mtu(int fd, int v4)
{
    int v = 0;
    socklen_t len = sizeof(v);

    if (v4 && getsockopt(fd, IPPROTO_IP, IP_MTU, &v, &len) == 0 && v > 0)
        return (unsigned)v;
    len = sizeof(v);
    if (getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &v, &len) == 0 && v > 0)
        return (unsigned)v;
    len = sizeof(v);
    if (!v4 && getsockopt(fd, IPPROTO_IP, IP_MTU, &v, &len) == 0 && v > 0)
        return (unsigned)v;
    return 0;
}

/* Asks the kernel for the route MTU towards k, as fd would be routed there: a socket of the
 * destination's family, on fd's device and local address when it has them, connected (which sends
 * nothing) and read. Returns the MTU or 0. */
static unsigned query_mtu(int fd, const struct dest_key *k)
{
    struct sockaddr_storage local, dst;
    socklen_t llen = sizeof(local);
    char dev[IFNAMSIZ + 1];
    socklen_t dlen = IFNAMSIZ;
    unsigned mtu = 0;
    int q, mark = 0;
    socklen_t mlen = sizeof(mark);

    q = socket(k->v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (q < 0)
        return 0;
    memset(dev, 0, sizeof(dev));
    if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dlen) == 0 && dev[0])
        setsockopt(q, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)strlen(dev));
    if (getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &mlen) == 0 && mark)
        setsockopt(q, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
    if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0) {
        struct dest_key lk;
        /* A specific local address chooses the route too (source routing rules). */
        if (dest_key_of((struct sockaddr *)&local, &lk) == 0 && lk.v4 == k->v4) {
            static const uint8_t zero[16];
            if (memcmp(lk.addr, zero, lk.v4 ? 4 : 16) != 0) {
                struct sockaddr_storage b;
                memset(&b, 0, sizeof(b));
                if (lk.v4) {
                    struct sockaddr_in *s = (struct sockaddr_in *)&b;
                    s->sin_family = AF_INET;
                    memcpy(&s->sin_addr, lk.addr, 4);
                } else {
                    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&b;
                    s->sin6_family = AF_INET6;
                    memcpy(&s->sin6_addr, lk.addr, 16);
                    s->sin6_scope_id = lk.scope;
                }
                if (bind(q, (struct sockaddr *)&b, addr_len((struct sockaddr *)&b)) != 0)
                    goto out;
            }
        }
    }
    memset(&dst, 0, sizeof(dst));
    if (k->v4) {
        struct sockaddr_in *s = (struct sockaddr_in *)&dst;
        s->sin_family = AF_INET;
        s->sin_port = htons(9);
        memcpy(&s->sin_addr, k->addr, 4);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&dst;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(9);
        memcpy(&s->sin6_addr, k->addr, 16);
        s->sin6_scope_id = k->scope;
    }
    if (connect(q, (struct sockaddr *)&dst, addr_len((struct sockaddr *)&dst)) == 0)
        mtu = read_mtu(q, k->v4);
out:
    close(q);
    return mtu;
}

static unsigned key_hash(const struct dest_key *k)
{
    uint32_t h = 2166136261u;

    for (int i = 0; i < (k->v4 ? 4 : 16); i++)
        h = (h ^ k->addr[i]) * 16777619u;
    h = (h ^ k->scope) * 16777619u;
    return (unsigned)(h % MTU_SETS);
}

/* The entry for k, learned now if missing or stale; NULL only when out of memory. */
static struct mtu_entry *mtu_entry(struct mpt_udp_tx *t, int fd, const struct dest_key *k,
                                   uint64_t now)
{
    struct mtu_entry *set, *e = NULL;

    if (!t->cache && !(t->cache = calloc(1, sizeof(*t->cache))))
        return NULL;
    set = &t->cache->e[key_hash(k) * MTU_WAYS];
    for (int i = 0; i < MTU_WAYS; i++) {
        if (set[i].at_ms && memcmp(&set[i].key, k, sizeof(*k)) == 0) {
            e = &set[i];
            break;
        }
    }
    if (e) {
        uint64_t ttl = e->mtu ? MPT_UDP_MTU_REFRESH_MS : MTU_RETRY_MS;
        if (now - e->at_ms < ttl)
            return e;
    } else {
        /* An empty way, else the one learned longest ago. */
        e = &set[0];
        for (int i = 1; i < MTU_WAYS && e->at_ms; i++)
            if (set[i].at_ms < e->at_ms)
                e = &set[i];
        e->key = *k;
    }
    e->mtu = query_mtu(fd, k);
    e->no_gso = 0;
    e->at_ms = now;
    return e;
}

static void conn_refresh(struct mpt_udp_tx *t, int fd, uint64_t now)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    struct dest_key k;

    if (t->conn_mtu_at &&
        now - t->conn_mtu_at < (t->conn_mtu ? MPT_UDP_MTU_REFRESH_MS : MTU_RETRY_MS))
        return;
    t->conn_mtu = 0;
    t->conn_no_gso = 0;
    t->conn_hdr = MPT_UDP_HDR_V6;
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0 &&
        dest_key_of((struct sockaddr *)&peer, &k) == 0) {
        t->conn_hdr = k.v4 ? MPT_UDP_HDR_V4 : MPT_UDP_HDR_V6;
        t->conn_mtu = read_mtu(fd, k.v4);
    }
    t->conn_mtu_at = now;
}

unsigned mpt_udp_tx_mtu(struct mpt_udp_tx *t, int fd, const struct sockaddr *to)
{
    struct dest_key k;
    struct mtu_entry *e;

    if (!to) {
        conn_refresh(t, fd, now_ms());
        return t->conn_mtu;
    }
    if (dest_key_of(to, &k) != 0)
        return 0;
    e = mtu_entry(t, fd, &k, now_ms());
    return e ? e->mtu : 0;
}

unsigned mpt_udp_addr_headers(const struct sockaddr *to)
{
    struct dest_key k;

    if (dest_key_of(to, &k) != 0)
        return MPT_UDP_HDR_V6;
    return k.v4 ? MPT_UDP_HDR_V4 : MPT_UDP_HDR_V6;
}

unsigned mpt_udp_tx_headers(struct mpt_udp_tx *t, int fd, const struct sockaddr *to)
{
    if (!to) {
        conn_refresh(t, fd, now_ms());
        return t->conn_hdr;
    }
    return mpt_udp_addr_headers(to);
}

void mpt_udp_tx_free(struct mpt_udp_tx *t)
{
    free(t->cache);
    t->cache = NULL;
}

/* Whether a run of seg-byte datagrams to `to` may go as one GSO send. */
static int gso_fits(struct mpt_udp_tx *t, int fd, const struct sockaddr *to, size_t seg,
                    uint64_t now)
{
    struct dest_key k;
    struct mtu_entry *e;

    if (!to) {
        conn_refresh(t, fd, now);
        return !t->conn_no_gso && seg + t->conn_hdr <= t->conn_mtu;
    }
    if (dest_key_of(to, &k) != 0 || !(e = mtu_entry(t, fd, &k, now)))
        return 0;
    return !e->no_gso && seg + (k.v4 ? MPT_UDP_HDR_V4 : MPT_UDP_HDR_V6) <= e->mtu;
}

/* The kernel refused a run of seg-byte datagrams to `to` (err): remember it for this destination
 * only. Too large: the route MTU is read again, and kept below what was refused. */
static void gso_refused(struct mpt_udp_tx *t, int fd, const struct sockaddr *to, size_t seg,
                        int err, uint64_t now)
{
    int too_big = err == EMSGSIZE || err == EINVAL;
    struct dest_key k;
    struct mtu_entry *e;
    unsigned limit;

    if (!to) {
        t->conn_mtu_at = 0;
        conn_refresh(t, fd, now);
        limit = (unsigned)seg + t->conn_hdr - 1;
        if (!too_big)
            t->conn_no_gso = 1;
        else if (t->conn_mtu > limit)
            t->conn_mtu = limit;
        return;
    }
    if (dest_key_of(to, &k) != 0 || !(e = mtu_entry(t, fd, &k, now)))
        return;
    if (!too_big) {
        e->no_gso = 1;
        return;
    }
    e->mtu = query_mtu(fd, &k);
    e->at_ms = now;
    limit = (unsigned)seg + (k.v4 ? MPT_UDP_HDR_V4 : MPT_UDP_HDR_V6) - 1;
    if (e->mtu > limit)
        e->mtu = limit;
}

/* ---- sending ---- */

/* One sendmmsg entry: a datagram, or a run of equal-sized datagrams to one destination sent as a
 * single UDP_SEGMENT (GSO) super-datagram that the kernel cuts up: one trip down the stack for
 * the run instead of one per datagram. */
struct unit {
    unsigned first_iov, niov;
    unsigned first, count; /* into the plan's order[] */
    uint16_t seg;
    uint8_t singly; /* a run the route was found not to take whole: send it one by one */
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr align;
    } ctl;
};

/* Room for a datagram's control messages: a GSO segment size and a source address. */
union tx_ctl {
    char buf[CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
    struct cmsghdr align;
};

struct plan {
    struct unit units[MPT_UDP_TX_MAX];
    struct mmsghdr hdr[MPT_UDP_TX_MAX];
    struct iovec iov[MPT_UDP_TX_MAX * 2];
    uint16_t order[MPT_UDP_TX_MAX]; /* datagram indexes, unit by unit */
    uint8_t taken[MPT_UDP_TX_MAX];
};

static int same_dest(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a == b)
        return 1;
    if (!a || !b || a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

/* The same destination, sent from the same local address: datagrams that may share a GSO run. */
static int same_route(const struct mpt_udp_msg *a, const struct mpt_udp_msg *b)
{
    return same_dest(a->to, b->to) && same_dest(a->from, b->from);
}

/* Writes the control messages of a send into ctl (cap bytes): UDP_SEGMENT if seg, and the
 * source address if from is set. Sets m->msg_control and msg_controllen (none: NULL, 0). */
static void ctl_fill(struct msghdr *m, char *ctl, size_t cap, uint16_t seg,
                     const struct sockaddr *from)
{
    struct cmsghdr *c;
    size_t used = 0;

    m->msg_control = NULL;
    m->msg_controllen = 0;
    if (!seg && !from)
        return;
    memset(ctl, 0, cap);
    m->msg_control = ctl;
    m->msg_controllen = cap;
    c = CMSG_FIRSTHDR(m);
    if (seg) {
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(c), &seg, sizeof(uint16_t));
        used += CMSG_SPACE(sizeof(uint16_t));
        c = CMSG_NXTHDR(m, c);
    }
    if (from && from->sa_family == AF_INET) {
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        pi.ipi_spec_dst = ((const struct sockaddr_in *)from)->sin_addr;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        used += CMSG_SPACE(sizeof(pi));
    } else if (from && from->sa_family == AF_INET6) {
        struct in6_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        pi.ipi6_addr = ((const struct sockaddr_in6 *)from)->sin6_addr;
        pi.ipi6_ifindex = ((const struct sockaddr_in6 *)from)->sin6_scope_id;
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        used += CMSG_SPACE(sizeof(pi));
    }
    m->msg_controllen = used;
    if (!used)
        m->msg_control = NULL;
}

static size_t msg_len(const struct mpt_udp_msg *m)
{
    return m->pre_len + m->len;
}

static void iov_add(struct plan *p, unsigned *niov, const struct mpt_udp_msg *m)
{
    if (m->pre && m->pre_len) {
        p->iov[*niov].iov_base = (void *)m->pre;
        p->iov[(*niov)++].iov_len = m->pre_len;
    }
    p->iov[*niov].iov_base = (void *)m->buf;
    p->iov[(*niov)++].iov_len = m->len;
}

static void msghdr_fill(struct msghdr *m, const struct mpt_udp_msg *d, struct iovec *iov,
                        size_t niov)
{
    memset(m, 0, sizeof(*m));
    m->msg_iov = iov;
    m->msg_iovlen = niov;
    if (d->to) {
        m->msg_name = (void *)d->to;
        m->msg_namelen = addr_len(d->to);
    }
}

/* Sends one datagram; a pending error from an earlier ICMP message (ECONNREFUSED, which a send
 * itself never causes) is consumed and the send tried again. Returns 0 or a negative errno. */
static int send_one(int fd, const struct mpt_udp_msg *d)
{
    struct iovec iov[2];
    struct msghdr m;
    union tx_ctl ctl;
    unsigned niov = 0;
    ssize_t r;
    int tries = 0;

    if (d->pre && d->pre_len) {
        iov[niov].iov_base = (void *)d->pre;
        iov[niov++].iov_len = d->pre_len;
    }
    iov[niov].iov_base = (void *)d->buf;
    iov[niov++].iov_len = d->len;
    msghdr_fill(&m, d, iov, niov);
    ctl_fill(&m, ctl.buf, sizeof(ctl.buf), 0, d->from);
    for (;;) {
        r = sendmsg(fd, &m, MSG_DONTWAIT);
        if (r >= 0)
            return 0;
        if (errno == EINTR || (errno == ECONNREFUSED && tries++ == 0))
            continue;
        return -errno;
    }
}

/* Sends the datagrams of a unit one at a time; returns how many went. */
static unsigned send_singly(struct mpt_udp_tx *t, int fd, struct mpt_udp_msg *msgs,
                            const struct plan *p, const struct unit *un)
{
    unsigned sent = 0;

    for (unsigned j = 0; j < un->count; j++) {
        struct mpt_udp_msg *d = &msgs[p->order[un->first + j]];
        d->err = send_one(fd, d);
        if (d->err)
            mpt_udp_errors_count(&t->err, d->err, 1);
        else
            sent++;
    }
    return sent;
}

/* Groups msgs[0..n) (n <= MPT_UDP_TX_MAX) into units: runs to one destination while the
 * datagrams have the same size (the last may be shorter) and fit its route; a run stops at the
 * first datagram to its destination that does not fit, so each destination receives in order. */
static unsigned plan_units(struct mpt_udp_tx *t, int fd, struct plan *p,
                           const struct mpt_udp_msg *msgs, unsigned n, uint64_t now)
{
    unsigned nunits = 0, niov = 0, no = 0;

    memset(p->taken, 0, n);
    for (unsigned i = 0; i < n; i++) {
        struct unit *un;
        size_t seg = msg_len(&msgs[i]), total = seg;
        unsigned skipped = 0, first_iov = niov;

        if (p->taken[i])
            continue;
        un = &p->units[nunits++];
        un->first_iov = niov;
        un->first = no;
        un->count = 1;
        un->seg = 0;
        un->singly = 0;
        p->order[no++] = (uint16_t)i;
        iov_add(p, &niov, &msgs[i]);
        p->taken[i] = 1;
        if (seg == 0 || seg > MPT_UDP_GSO_BYTES / 2)
            goto done;
        for (unsigned j = i + 1; j < n && un->count < MPT_UDP_GSO_SEGMENTS; j++) {
            size_t len = msg_len(&msgs[j]);
            if (p->taken[j])
                continue;
            if (!same_route(&msgs[j], &msgs[i])) {
                if (++skipped > GSO_SKIP)
                    break;
                continue;
            }
            if (len > seg || len == 0 || total + len > MPT_UDP_GSO_BYTES)
                break;
            p->order[no++] = (uint16_t)j;
            iov_add(p, &niov, &msgs[j]);
            p->taken[j] = 1;
            total += len;
            un->count++;
            if (len < seg)
                break;
        }
        if (un->count > 1 && !gso_fits(t, fd, msgs[i].to, seg, now)) {
            /* Too large for this route in one piece: the others become units of their own. */
            for (unsigned j = 1; j < un->count; j++)
                p->taken[p->order[un->first + j]] = 0;
            no = un->first + 1;
            niov = first_iov;
            iov_add(p, &niov, &msgs[i]);
            un->count = 1;
        }
        if (un->count > 1)
            un->seg = (uint16_t)seg;
    done:
        un->niov = niov - un->first_iov;
    }
    for (unsigned u = 0; u < nunits; u++) {
        struct unit *un = &p->units[u];
        struct msghdr *m = &p->hdr[u].msg_hdr;

        msghdr_fill(m, &msgs[p->order[un->first]], &p->iov[un->first_iov], un->niov);
        ctl_fill(m, un->ctl.buf, sizeof(un->ctl.buf), un->seg, msgs[p->order[un->first]].from);
    }
    return nunits;
}

static unsigned send_plan(struct mpt_udp_tx *t, int fd, struct plan *p, struct mpt_udp_msg *msgs,
                          unsigned nunits, uint64_t now)
{
    unsigned done = 0, sent = 0;
    int retried = -1;

    while (done < nunits) {
        struct unit *un = &p->units[done];
        unsigned end = done;
        int rc, err;

        if (un->singly) {
            sent += send_singly(t, fd, msgs, p, un);
            done++;
            continue;
        }
        while (end < nunits && !p->units[end].singly)
            end++;
        rc = sendmmsg(fd, p->hdr + done, end - done, MSG_DONTWAIT);
        if (rc > 0) {
            for (int i = 0; i < rc; i++)
                sent += p->units[done + (unsigned)i].count;
            done += (unsigned)rc;
            continue;
        }
        err = rc < 0 ? errno : EIO;
        if (err == EINTR)
            continue;
        if (err == ECONNREFUSED && retried != (int)done) {
            /* A pending error from an earlier ICMP message, not this datagram's. */
            retried = (int)done;
            continue;
        }
        if (un->seg && (err == EMSGSIZE || err == EINVAL || err == EIO || err == EOPNOTSUPP ||
                        err == ENOPROTOOPT)) {
            /* Not as one run on this route: learn it, and send these one by one, where the IP
             * layer fragments what is larger than the MTU; so do the later runs of this plan
             * that the route does not take either. */
            const struct sockaddr *to = msgs[p->order[un->first]].to;
            gso_refused(t, fd, to, un->seg, err, now);
            t->err.gso_resent++;
            un->singly = 1;
            for (unsigned u = done + 1; u < nunits; u++) {
                struct unit *x = &p->units[u];
                if (x->seg && same_dest(msgs[p->order[x->first]].to, to) &&
                    !gso_fits(t, fd, to, x->seg, now))
                    x->singly = 1;
            }
            continue;
        }
        /* Refused (full queue, no route): dropped, as a congested link would. A full send
         * buffer refuses the rest of the plan too: no call for each. */
        for (unsigned last = err == EAGAIN || err == EWOULDBLOCK ? nunits : done + 1; done < last;
             done++) {
            un = &p->units[done];
            for (unsigned j = 0; j < un->count; j++)
                msgs[p->order[un->first + j]].err = -err;
            mpt_udp_errors_count(&t->err, -err, un->count);
        }
    }
    return sent;
}

unsigned mpt_udp_tx_send(struct mpt_udp_tx *t, int fd, struct mpt_udp_msg *msgs, unsigned n)
{
    struct plan p;
    unsigned sent = 0;
    uint64_t now = now_ms();

    while (n > 0) {
        unsigned k = n < MPT_UDP_TX_MAX ? n : MPT_UDP_TX_MAX, nunits;

        for (unsigned i = 0; i < k; i++)
            msgs[i].err = 0;
        nunits = plan_units(t, fd, &p, msgs, k, now);
        sent += send_plan(t, fd, &p, msgs, nunits, now);
        msgs += k;
        n -= k;
    }
    return sent;
}
