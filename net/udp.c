/* UDP sockets on our own descriptors, watched by a uv_poll handle: receiving with recvmmsg lets us
 * read UDP_GRO's control messages (libuv's UDP handle does not), so a run of datagrams that a
 * peer sent as one GSO batch arrives as one buffer and is split here. */
#include "net/udp.h"

#include "net/driver.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define RX_SLOT (64 * 1024) /* one datagram, or one GRO batch of them */
#define RX_ROUNDS 16        /* recvmmsg calls per readiness event at most, ... */
#define RX_BUDGET 128       /* ... and datagrams (GRO segments counted), for fairness */

char *mpt_loop_rxbuf(struct mpt_loop *loop, size_t *len);

static void set_buffer(int fd, int opt, int force_opt, uint32_t size)
{
    int v = (int)size;

    /* The FORCE variant passes net.core.[rw]mem_max when we are root. */
    if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof(v)) != 0)
        setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

/* Reads a received datagram's control messages: the GRO segment size (0 if none), and the local
 * address it was sent to (IP_PKTINFO / IPV6_PKTINFO) into u->rx_local when it asked for them. */
static uint16_t read_cmsgs(struct mpt_udp *u, struct msghdr *m)
{
    uint16_t seg = 0;

    u->rx_local_valid = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof(v));
            seg = v > 0 && v < 65536 ? (uint16_t)v : 0;
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
                   c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo pi;
            struct sockaddr_in *sin = (struct sockaddr_in *)&u->rx_local;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            memset(sin, 0, sizeof(*sin));
            sin->sin_family = AF_INET;
            sin->sin_addr = pi.ipi_addr;
            u->rx_local_valid = 1;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            struct in6_pktinfo pi;
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&u->rx_local;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            memset(s6, 0, sizeof(*s6));
            s6->sin6_family = AF_INET6;
            s6->sin6_addr = pi.ipi6_addr;
            /* A link-local address means nothing without its interface. */
            if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
                s6->sin6_scope_id = pi.ipi6_ifindex;
            u->rx_local_valid = 1;
        }
    }
    return seg;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct mpt_udp *u = mpt_container_of(h, struct mpt_udp, poll);
    struct mmsghdr hdr[16];
    struct iovec iov[16];
    struct sockaddr_storage from[16];
    union {
        char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
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
    /* A socket's backlog is read in turns with the others' (the poll is level-triggered: the
     * loop comes back to it): the peer sends each path's datagrams in runs, and a receiver that
     * drained one socket of thousands before the next took one path's fec repairs and later
     * sources before the sources another path carried earlier, and gave up blocks whose
     * sources were only queued. */
    for (int round = 0, got = 0; round < RX_ROUNDS && got < RX_BUDGET && !u->closing; round++) {
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
            size_t len = hdr[i].msg_len, seg = read_cmsgs(u, &hdr[i].msg_hdr);
            const struct sockaddr *sa = (const struct sockaddr *)&from[i];

            if (hdr[i].msg_hdr.msg_flags & MSG_TRUNC)
                continue;
            if (!seg || seg >= len) {
                u->on_recv(u, d, len, sa);
                got++;
                continue;
            }
            /* A GRO batch: datagrams of `seg` bytes, the last perhaps shorter. */
            for (size_t off = 0; off < len && !u->closing; off += seg, got++)
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
    /* Large datagrams are fragmented, never refused (why: net/udp_tx.c). */
    mpt_udp_tx_setup(fd, family);
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
    struct mpt_udp_msg m = {.buf = buf, .len = len, .to = to};

    mpt_udp_send_batch(u, &m, 1);
    return m.err;
}

int mpt_udp_local(struct mpt_udp *u, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof(*ss);

    return getsockname(u->fd, (struct sockaddr *)ss, &len) == 0 ? 0 : uv_translate_sys_error(errno);
}

int mpt_udp_want_local(struct mpt_udp *u)
{
    int one = 1, rc;

    if (u->family == AF_INET6) {
        /* IPv4 datagrams on a dual-stack socket come with IPV6_PKTINFO too, the address mapped
         * (::ffff:a.b.c.d); sent back as IPV6_PKTINFO, the kernel takes it as IPv4's source. */
        rc = setsockopt(u->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
    } else {
        rc = setsockopt(u->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    }
    return rc == 0 ? 0 : uv_translate_sys_error(errno);
}

const struct sockaddr *mpt_udp_rx_local(const struct mpt_udp *u)
{
    return u->rx_local_valid ? (const struct sockaddr *)&u->rx_local : NULL;
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
    mpt_udp_tx_free(&u->tx);
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

unsigned mpt_udp_send_batch(struct mpt_udp *u, struct mpt_udp_msg *msgs, unsigned n)
{
    if (u->fd < 0 || u->closing) {
        for (unsigned i = 0; i < n; i++)
            msgs[i].err = UV_EBADF;
        u->tx.err.other += n;
        return 0;
    }
    return mpt_udp_tx_send(&u->tx, u->fd, msgs, n);
}

unsigned mpt_udp_mtu(struct mpt_udp *u, const struct sockaddr *to)
{
    return u->fd >= 0 ? mpt_udp_tx_mtu(&u->tx, u->fd, to) : 0;
}
