/* UDP sockets on our own descriptors, watched by a uv_poll handle: receiving with recvmmsg lets us
 * read UDP_GRO's control messages (libuv's UDP handle does not), so a run of datagrams that a
 * peer sent as one GSO batch arrives as one buffer and is split here. */
#include "net/udp.h"

#include "net/driver.h"

#include <errno.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define RX_SLOT (64 * 1024) /* one datagram, or one GRO batch of them */
#define RX_ROUNDS 16        /* recvmmsg calls per readiness event, for fairness */

char *mpt_loop_rxbuf(struct mpt_loop *loop, size_t *len);

static void set_buffer(int fd, int opt, int force_opt, uint32_t size)
{
    int v = (int)size;

    /* The FORCE variant passes net.core.[rw]mem_max when we are root. */
    if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof(v)) != 0)
        setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

static uint16_t gro_size(struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof(v));
            return v > 0 && v < 65536 ? (uint16_t)v : 0;
        }
    }
    return 0;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct mpt_udp *u = mpt_container_of(h, struct mpt_udp, poll);
    struct mmsghdr hdr[16];
    struct iovec iov[16];
    struct sockaddr_storage from[16];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl[16];
    size_t buflen;
    char *buf = mpt_loop_rxbuf(u->loop, &buflen);
    unsigned slots = (unsigned)(buflen / RX_SLOT);

    if (slots > 16)
        slots = 16;
    if (status < 0) {
        /* A pending socket error (an ICMP port unreachable after a peer died) makes libuv stop
         * the handle: clear the error and watch again, as UDP goes on regardless. */
        int e;
        socklen_t el = sizeof(e);
        getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &e, &el);
        if (!u->closing)
            uv_poll_start(&u->poll, UV_READABLE, on_poll);
    }
    for (int round = 0; round < RX_ROUNDS && !u->closing; round++) {
        int n;

        for (unsigned i = 0; i < slots; i++) {
            iov[i].iov_base = buf + (size_t)i * RX_SLOT;
            iov[i].iov_len = RX_SLOT;
            memset(&hdr[i], 0, sizeof(hdr[i]));
            hdr[i].msg_hdr.msg_name = &from[i];
            hdr[i].msg_hdr.msg_namelen = sizeof(from[i]);
            hdr[i].msg_hdr.msg_iov = &iov[i];
            hdr[i].msg_hdr.msg_iovlen = 1;
            hdr[i].msg_hdr.msg_control = ctl[i].buf;
            hdr[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
        }
        n = recvmmsg(u->fd, hdr, slots, MSG_DONTWAIT, NULL);
        if (n < 0) {
            /* ICMP errors (a peer's port closed) surface here on connected sockets: go on. */
            if (errno == EINTR || errno == ECONNREFUSED || errno == EHOSTUNREACH ||
                errno == ENETUNREACH)
                continue;
            return; /* EAGAIN: drained */
        }
        for (int i = 0; i < n && !u->closing; i++) {
            const uint8_t *d = (const uint8_t *)iov[i].iov_base;
            size_t len = hdr[i].msg_len, seg = gro_size(&hdr[i].msg_hdr);
            const struct sockaddr *sa = (const struct sockaddr *)&from[i];

            if (hdr[i].msg_hdr.msg_flags & MSG_TRUNC)
                continue;
            if (!seg || seg >= len) {
                u->on_recv(u, d, len, sa);
                continue;
            }
            /* A GRO batch: datagrams of `seg` bytes, the last perhaps shorter. */
            for (size_t off = 0; off < len && !u->closing; off += seg)
                u->on_recv(u, d + off, len - off < seg ? len - off : seg, sa);
        }
        if ((unsigned)n < slots)
            return;
    }
}

int mpt_udp_open(struct mpt_udp *u, struct mpt_loop *loop, int family,
                 const struct sockaddr *bind_addr, uint32_t sndbuf, uint32_t rcvbuf,
                 mpt_udp_recv_cb on_recv, void *owner)
{
    struct sockaddr_storage any;
    socklen_t alen;
    int err, fd, one = 1;

    memset(u, 0, sizeof(*u));
    u->fd = -1;
    u->loop = loop;
    u->on_recv = on_recv;
    u->owner = owner;
    if (bind_addr)
        family = bind_addr->sa_family;
    u->family = family;
    if (family != AF_INET && family != AF_INET6)
        return UV_EAFNOSUPPORT;
    if (!bind_addr) {
        memset(&any, 0, sizeof(any));
        any.ss_family = (sa_family_t)family;
        bind_addr = (const struct sockaddr *)&any;
    }
    alen = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    if (family == AF_INET6) {
        /* [::] serves IPv4 too; a specific IPv6 address only IPv6. */
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)bind_addr;
        int only = !IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof(only));
    }
    if (bind(fd, bind_addr, alen) != 0) {
        err = uv_translate_sys_error(errno);
        close(fd);
        return err;
    }
    /* The kernel's default (about 212 KB) overflows in bursts long before the CPU is busy. */
    set_buffer(fd, SO_SNDBUF, SO_SNDBUFFORCE, sndbuf ? sndbuf : MPT_UDP_DEFAULT_BUF);
    set_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE, rcvbuf ? rcvbuf : MPT_UDP_DEFAULT_BUF);
    /* Batches sent with UDP_SEGMENT arrive whole; kernels without UDP_GRO just say no. */
    setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
    err = uv_poll_init_socket(mpt_loop_uv(loop), &u->poll, fd);
    if (err) {
        close(fd);
        return err;
    }
    u->fd = fd;
    if (on_recv) {
        err = uv_poll_start(&u->poll, UV_READABLE, on_poll);
        if (err) {
            /* The handle exists: it must be closed like any other (see udp.h). */
            mpt_udp_close(u, NULL);
            return err;
        }
    }
    return 0;
}

int mpt_udp_send(struct mpt_udp *u, const void *buf, size_t len, const struct sockaddr *to)
{
    socklen_t tolen = 0;
    ssize_t n;

    if (to)
        tolen =
            to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    do
        n = sendto(u->fd, buf, len, MSG_DONTWAIT, to, tolen);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        u->tx_drops++;
        return uv_translate_sys_error(errno);
    }
    return 0;
}

int mpt_udp_local(struct mpt_udp *u, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof(*ss);

    return getsockname(u->fd, (struct sockaddr *)ss, &len) == 0 ? 0 : uv_translate_sys_error(errno);
}

int mpt_udp_fd(const struct mpt_udp *u)
{
    return u->fd;
}

static void on_uv_close(uv_handle_t *h)
{
    struct mpt_udp *u = mpt_container_of(h, struct mpt_udp, poll);
    struct mpt_driver *drv = u->drv; /* u may be freed by on_close */

    /* The descriptor is ours, not libuv's: closed once the poll handle is gone. */
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->on_close)
        u->on_close(u);
    if (drv)
        mpt_driver_udp_closed(drv);
}

int mpt_udp_connect(struct mpt_udp *u, const struct sockaddr *to)
{
    socklen_t tolen =
        to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

    return connect(u->fd, to, tolen) == 0 ? 0 : uv_translate_sys_error(errno);
}

int mpt_udp_is_closing(const struct mpt_udp *u)
{
    return u->closing;
}

void mpt_udp_close(struct mpt_udp *u, mpt_udp_close_cb on_close)
{
    u->on_close = on_close;
    if (u->closing)
        return;
    u->closing = 1;
    uv_close((uv_handle_t *)&u->poll, on_uv_close);
}

static int same_dest(const struct sockaddr *a, const struct sockaddr *b)
{
    if (!a || !b)
        return a == b;
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 65000

/* One sendmmsg entry: a datagram, or a run of equal-sized datagrams to one destination sent as a
 * single UDP_SEGMENT (GSO) super-datagram that the kernel cuts up: one trip down the stack for
 * the run instead of one per datagram. */
struct unit {
    unsigned first_iov, count;
    uint16_t seg;
    const struct sockaddr *to;
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl;
};

static unsigned send_units(struct mpt_udp *u, int fd, struct unit *units, unsigned nunits,
                           struct iovec *iov);

unsigned mpt_udp_send_batch(struct mpt_udp *u, const struct mpt_udp_msg *msgs, unsigned n)
{
    struct unit units[MPT_UDP_BATCH];
    struct iovec iov[MPT_UDP_BATCH];
    uint8_t taken[MPT_UDP_BATCH];
    unsigned sent = 0;
    int fd = u->fd;

    if (fd < 0 || u->closing) {
        u->tx_drops += n;
        return 0;
    }
    while (n > 0) {
        unsigned k = n < MPT_UDP_BATCH ? n : MPT_UDP_BATCH, nunits = 0, niov = 0;

        memset(taken, 0, k);
        for (unsigned i = 0; i < k; i++) {
            struct unit *un;
            size_t seg = msgs[i].len, total = seg;

            if (taken[i])
                continue;
            un = &units[nunits++];
            un->first_iov = niov;
            un->count = 1;
            un->seg = 0;
            un->to = msgs[i].to;
            iov[niov].iov_base = (void *)msgs[i].buf;
            iov[niov++].iov_len = seg;
            taken[i] = 1;
            if (u->no_gso || seg == 0 || seg > GSO_MAX_BYTES / 2)
                continue;
            /* Gather the datagrams to the same destination that follow, while they have the same
             * size (the last may be shorter); stop at the first that does not fit, so that each
             * destination still receives in order. */
            for (unsigned j = i + 1; j < k && un->count < GSO_MAX_SEGMENTS; j++) {
                if (taken[j] || !same_dest(msgs[j].to, msgs[i].to))
                    continue;
                if (msgs[j].len > seg || msgs[j].len == 0 || total + msgs[j].len > GSO_MAX_BYTES)
                    break;
                iov[niov].iov_base = (void *)msgs[j].buf;
                iov[niov++].iov_len = msgs[j].len;
                taken[j] = 1;
                total += msgs[j].len;
                un->count++;
                if (msgs[j].len < seg)
                    break;
            }
            if (un->count > 1)
                un->seg = (uint16_t)seg;
        }
        sent += send_units(u, fd, units, nunits, iov);
        msgs += k;
        n -= k;
    }
    return sent;
}

static unsigned send_units(struct mpt_udp *u, int fd, struct unit *units, unsigned nunits,
                           struct iovec *iov)
{
    struct mmsghdr hdr[MPT_UDP_BATCH];
    unsigned done = 0, sent = 0;

    for (unsigned i = 0; i < nunits; i++) {
        struct unit *un = &units[i];
        struct msghdr *m = &hdr[i].msg_hdr;

        memset(&hdr[i], 0, sizeof(hdr[i]));
        m->msg_iov = &iov[un->first_iov];
        m->msg_iovlen = un->count;
        if (un->to) {
            m->msg_name = (void *)un->to;
            m->msg_namelen = un->to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in);
        }
        if (un->seg) {
            struct cmsghdr *c;
            memset(&un->ctl, 0, sizeof(un->ctl));
            m->msg_control = un->ctl.buf;
            m->msg_controllen = sizeof(un->ctl.buf);
            c = CMSG_FIRSTHDR(m);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            memcpy(CMSG_DATA(c), &un->seg, sizeof(uint16_t));
        }
    }
    while (done < nunits) {
        int rc;

        do
            rc = sendmmsg(fd, hdr + done, nunits - done, MSG_DONTWAIT);
        while (rc < 0 && errno == EINTR);
        if (rc > 0) {
            for (int i = 0; i < rc; i++)
                sent += units[done + i].count;
            done += (unsigned)rc;
            continue;
        }
        if (units[done].seg && !u->no_gso &&
            (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOPROTOOPT)) {
            /* No GSO for this socket or route: send that run one datagram at a time, and no more
             * runs from now on. */
            struct mpt_udp_msg single[GSO_MAX_SEGMENTS];
            struct unit *un = &units[done];
            u->no_gso = 1;
            for (unsigned j = 0; j < un->count; j++) {
                single[j].buf = iov[un->first_iov + j].iov_base;
                single[j].len = iov[un->first_iov + j].iov_len;
                single[j].to = un->to;
            }
            sent += mpt_udp_send_batch(u, single, un->count);
            done++;
            continue;
        }
        /* Refused (full queue, ICMP error pending): drop it and go on, as a congested link
         * would. */
        u->tx_drops += units[done].count;
        done++;
    }
    return sent;
}
