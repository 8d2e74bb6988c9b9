#include "net/udp.h"

#include <errno.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/socket.h>

char *mpt_loop_rxbuf(struct mpt_loop *loop, size_t *len);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct mpt_udp *u = mpt_container_of(h, struct mpt_udp, handle);
    size_t len;
    char *p = mpt_loop_rxbuf(u->loop, &len);

    *buf = uv_buf_init(p, (unsigned)len);
}

static void on_uv_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                       unsigned flags)
{
    struct mpt_udp *u = mpt_container_of(h, struct mpt_udp, handle);

    /* Three cases: an error, nothing more to read (addr NULL), or a datagram (maybe empty). */
    if (nread < 0 || addr == NULL || (flags & UV_UDP_MMSG_FREE))
        return;
    if (u->on_recv)
        u->on_recv(u, (const uint8_t *)buf->base, (size_t)nread, addr);
}

static void on_uv_close(uv_handle_t *h);

static void set_buffer(uv_udp_t *h, int opt, int force_opt, uint32_t size)
{
    uv_os_fd_t fd;
    int v = (int)size;

    if (!size || uv_fileno((uv_handle_t *)h, &fd) != 0)
        return;
    /* The FORCE variant passes net.core.[rw]mem_max when we are root. */
    if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof(v)) != 0)
        setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

int mpt_udp_open(struct mpt_udp *u, struct mpt_loop *loop, int family,
                 const struct sockaddr *bind_addr, uint32_t sndbuf, uint32_t rcvbuf,
                 mpt_udp_recv_cb on_recv, void *owner)
{
    struct sockaddr_storage any;
    unsigned bind_flags = 0;
    int err;

    memset(u, 0, sizeof(*u));
    u->loop = loop;
    u->on_recv = on_recv;
    u->owner = owner;
    if (bind_addr)
        family = bind_addr->sa_family;
    u->family = family;
    err = uv_udp_init_ex(mpt_loop_uv(loop), &u->handle, (unsigned)family | UV_UDP_RECVMMSG);
    if (err)
        return err;
    if (!bind_addr) {
        memset(&any, 0, sizeof(any));
        any.ss_family = (sa_family_t)family;
        bind_addr = (const struct sockaddr *)&any;
    }
    if (family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)bind_addr;
        if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
            bind_flags |= UV_UDP_IPV6ONLY;
    }
    err = uv_udp_bind(&u->handle, bind_addr, bind_flags);
    if (err)
        goto fail;
    /* The kernel's default (about 212 KB) overflows in bursts long before the CPU is busy. */
    if (!sndbuf)
        sndbuf = MPT_UDP_DEFAULT_BUF;
    if (!rcvbuf)
        rcvbuf = MPT_UDP_DEFAULT_BUF;
    set_buffer(&u->handle, SO_SNDBUF, SO_SNDBUFFORCE, sndbuf);
    set_buffer(&u->handle, SO_RCVBUF, SO_RCVBUFFORCE, rcvbuf);
    if (on_recv) {
        err = uv_udp_recv_start(&u->handle, on_alloc, on_uv_recv);
        if (err)
            goto fail;
    }
    return 0;
fail:
    /* u->on_close is NULL unless the caller arms it with mpt_udp_close (see udp.h). */
    uv_close((uv_handle_t *)&u->handle, on_uv_close);
    return err;
}

int mpt_udp_send(struct mpt_udp *u, const void *buf, size_t len, const struct sockaddr *to)
{
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    int n = uv_udp_try_send(&u->handle, &b, 1, to);

    if (n < 0) {
        u->tx_drops++;
        return n;
    }
    return 0;
}

int mpt_udp_local(struct mpt_udp *u, struct sockaddr_storage *ss)
{
    int len = sizeof(*ss);
    return uv_udp_getsockname(&u->handle, (struct sockaddr *)ss, &len);
}

static void on_uv_close(uv_handle_t *h)
{
    struct mpt_udp *u = mpt_container_of(h, struct mpt_udp, handle);
    if (u->on_close)
        u->on_close(u);
}

int mpt_udp_connect(struct mpt_udp *u, const struct sockaddr *to)
{
    return uv_udp_connect(&u->handle, to);
}

int mpt_udp_is_closing(const struct mpt_udp *u)
{
    return uv_is_closing((const uv_handle_t *)&u->handle);
}

void mpt_udp_close(struct mpt_udp *u, mpt_udp_close_cb on_close)
{
    u->on_close = on_close;
    if (!uv_is_closing((uv_handle_t *)&u->handle))
        uv_close((uv_handle_t *)&u->handle, on_uv_close);
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

static unsigned send_units(struct mpt_udp *u, uv_os_fd_t fd, struct unit *units, unsigned nunits,
                           struct iovec *iov);

unsigned mpt_udp_send_batch(struct mpt_udp *u, const struct mpt_udp_msg *msgs, unsigned n)
{
    struct unit units[MPT_UDP_BATCH];
    struct iovec iov[MPT_UDP_BATCH];
    uint8_t taken[MPT_UDP_BATCH];
    unsigned sent = 0;
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&u->handle, &fd) != 0) {
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

static unsigned send_units(struct mpt_udp *u, uv_os_fd_t fd, struct unit *units, unsigned nunits,
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
