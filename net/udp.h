/* UDP sockets for the drivers: batched receive (recvmmsg, with UDP GRO batches split) into one
 * buffer shared by the loop, batched sends (sendmmsg, UDP GSO where the route's MTU allows, see
 * net/udp_tx.h) that drop when the kernel queue is full (as a congested link would) and count
 * what they drop by kind, socket buffer sizing. Internal to net/. */
#ifndef MPT_NET_UDP_H
#define MPT_NET_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/loop.h"
#include "net/udp_tx.h"

struct mpt_udp;
struct mpt_driver;

/* One received datagram. data and from are valid only during the call. */
typedef void (*mpt_udp_recv_cb)(struct mpt_udp *u, const uint8_t *data, size_t len,
                                const struct sockaddr *from);
typedef void (*mpt_udp_close_cb)(struct mpt_udp *u);

struct mpt_udp {
    uv_poll_t poll; /* watches fd; poll.data is unused: recover with container_of */
    int fd;         /* our own descriptor, closed after the poll handle */
    int closing;
    struct mpt_loop *loop;
    mpt_udp_recv_cb on_recv;
    mpt_udp_close_cb on_close;
    void *owner;
    struct mpt_driver *drv; /* counts this socket among its handles; NULL if none */
    int family;
    int rx_local_valid;               /* rx_local holds the current datagram's local address */
    struct sockaddr_storage rx_local; /* see mpt_udp_want_local */
    struct mpt_udp_tx tx; /* sending state: tx.err counts the datagrams the kernel refused */
};

#define MPT_UDP_REUSEADDR 1u           /* SO_REUSEADDR for listeners */
#define MPT_UDP_DEFAULT_BUF (4u << 20) /* socket buffers when none is configured */

/* Opens a socket on the loop. bind_addr NULL binds an ephemeral port of `family` on any address.
 * An AF_INET6 any-address bind is dual-stack (IPv4 too). sndbuf/rcvbuf 0 mean
 * MPT_UDP_DEFAULT_BUF (as root beyond net.core.[rw]mem_max, else capped by it).
 * Starts receiving if on_recv is set. Returns 0 or a negative UV_E* code. On failure, if
 * mpt_udp_is_closing(u), a socket had been created and is closing: u must stay allocated until
 * then, and mpt_udp_close(u, cb) sets the callback that says so; otherwise nothing is open. */
int mpt_udp_open(struct mpt_udp *u, struct mpt_loop *loop, int family,
                 const struct sockaddr *bind_addr, uint32_t sndbuf, uint32_t rcvbuf,
                 mpt_udp_recv_cb on_recv, void *owner);

/* Sends one datagram now (to NULL: to the connected address); returns 0 or a negative code
 * (UV_EAGAIN when the queue is full; the datagram is then dropped and counted in tx.err). */
int mpt_udp_send(struct mpt_udp *u, const void *buf, size_t len, const struct sockaddr *to);

#define MPT_UDP_BATCH 64 /* datagrams the drivers gather per mpt_udp_send_batch call */

/* Sends n datagrams (struct mpt_udp_msg, net/udp_tx.h) with as few sendmmsg calls as it takes.
 * Runs of equal-sized datagrams to one destination go as one UDP_SEGMENT (GSO) send where their
 * segment fits the destination's route MTU; a run the kernel refuses for its size is sent again
 * datagram by datagram, and datagrams larger than the MTU are fragmented by the IP layer. Each
 * destination receives in the order given. Datagrams the kernel refuses (queue full,
 * unreachable) are dropped, counted in tx.err by kind and marked in their msgs[i].err. Returns
 * the number sent. */
unsigned mpt_udp_send_batch(struct mpt_udp *u, struct mpt_udp_msg *msgs, unsigned n);

/* The route MTU towards `to` (NULL: the connected address) as the kernel knows it, learned and
 * cached by the socket; 0 if unknown (no route). */
unsigned mpt_udp_mtu(struct mpt_udp *u, const struct sockaddr *to);

/* Asks the kernel for each received datagram's local (destination) address, IP_PKTINFO and
 * IPV6_PKTINFO: for a socket bound to a wildcard address on a host with several, to answer each
 * peer from the address it wrote to. Returns 0 or a negative code. */
int mpt_udp_want_local(struct mpt_udp *u);

/* During a receive callback: the local address the datagram was sent to (its port is not set),
 * or NULL if unknown (mpt_udp_want_local not called, or the kernel did not say). */
const struct sockaddr *mpt_udp_rx_local(const struct mpt_udp *u);

/* The socket's descriptor (for socket options). */
int mpt_udp_fd(const struct mpt_udp *u);

/* Local address after bind. Returns 0 or a negative code. */
int mpt_udp_local(struct mpt_udp *u, struct sockaddr_storage *ss);

/* Connects the socket to `to`: the kernel then takes datagrams from `to` only, and
 * mpt_udp_send(u, ..., NULL) sends there. Returns 0 or a negative UV_E* code. */
int mpt_udp_connect(struct mpt_udp *u, const struct sockaddr *to);

/* 1 once the socket is closing (mpt_udp_close, or a failed mpt_udp_open), else 0. */
int mpt_udp_is_closing(const struct mpt_udp *u);

/* Closes; on_close (may be NULL) runs from the close callback, where the owner may free u. */
void mpt_udp_close(struct mpt_udp *u, mpt_udp_close_cb on_close);

/* The uv loop behind an mpt_loop (net/ only). */
uv_loop_t *mpt_loop_uv(struct mpt_loop *loop);

#define mpt_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
