#include "net/udp.h"

#include <errno.h>
#include <string.h>
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

unsigned mpt_udp_send_batch(struct mpt_udp *u, const struct mpt_udp_msg *msgs, unsigned n)
{
    struct mmsghdr hdr[MPT_UDP_BATCH];
    struct iovec iov[MPT_UDP_BATCH];
    unsigned done = 0, dropped = 0;
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&u->handle, &fd) != 0) {
        u->tx_drops += n;
        return 0;
    }
    while (done < n) {
        unsigned k = n - done < MPT_UDP_BATCH ? n - done : MPT_UDP_BATCH;
        int sent;

        for (unsigned i = 0; i < k; i++) {
            const struct mpt_udp_msg *m = &msgs[done + i];
            iov[i].iov_base = (void *)m->buf;
            iov[i].iov_len = m->len;
            memset(&hdr[i], 0, sizeof(hdr[i]));
            hdr[i].msg_hdr.msg_iov = &iov[i];
            hdr[i].msg_hdr.msg_iovlen = 1;
            if (m->to) {
                hdr[i].msg_hdr.msg_name = (void *)m->to;
                hdr[i].msg_hdr.msg_namelen = m->to->sa_family == AF_INET6
                                                 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in);
            }
        }
        do
            sent = sendmmsg(fd, hdr, k, MSG_DONTWAIT);
        while (sent < 0 && errno == EINTR);
        if (sent <= 0) {
            /* The first datagram was refused (full queue, ICMP error pending): drop it and go
             * on with the rest, as a congested link would. */
            u->tx_drops++;
            dropped++;
            done++;
            continue;
        }
        done += (unsigned)sent;
    }
    return n - dropped;
}
