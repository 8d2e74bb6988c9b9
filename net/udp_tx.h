/* Batched UDP sending on a plain descriptor, with no event loop: sendmmsg, runs of datagrams to
 * one destination as one UDP_SEGMENT (GSO) send where their segment fits that destination's route
 * MTU, send errors counted by kind. Shared by net/udp.c and the benchmarks' floor relay. No uv.h.
 *
 * MTU: the kernel refuses a GSO send whose segment plus IP and UDP headers exceeds the route MTU
 * (EMSGSIZE, or EINVAL before Linux 6.14), while a plain datagram of any size is fragmented by the
 * IP layer. So each destination's route MTU is learned (IP_MTU / IPV6_MTU of the socket when it is
 * connected, else of a short-lived socket connected to that destination, which reads the kernel's
 * route and its cached path MTU; lowered by a refusal) and kept in a small per-socket cache,
 * refreshed every MPT_UDP_MTU_REFRESH_MS. A run refused anyway is sent again datagram by datagram:
 * never dropped, and GSO goes on for every other destination and size. */
#ifndef MPT_NET_UDP_TX_H
#define MPT_NET_UDP_TX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Datagrams a send could not hand to the kernel, by kind of error. */
struct mpt_udp_errors {
    uint64_t congestion;  /* EAGAIN, EWOULDBLOCK, ENOBUFS, ENOMEM: the queue was full */
    uint64_t too_big;     /* EMSGSIZE: larger than any IP datagram (or a GSO run, see below) */
    uint64_t unreachable; /* EHOSTUNREACH, ENETUNREACH, ECONNREFUSED, ENETDOWN, ... */
    uint64_t other;
    uint64_t gso_resent; /* runs the kernel refused as too large, re-sent one by one (not lost) */
};

/* The kind counter for a negative errno/UV_E* code (0 counts nothing). */
void mpt_udp_errors_count(struct mpt_udp_errors *e, int err, uint64_t n);

/* Datagrams lost: every kind but gso_resent. */
uint64_t mpt_udp_errors_total(const struct mpt_udp_errors *e);

/* Adds b's counters to a's. */
void mpt_udp_errors_add(struct mpt_udp_errors *a, const struct mpt_udp_errors *b);

/* One datagram of a batch: pre (pre_len bytes, may be NULL) then buf. to NULL sends to the
 * connected address. from, if set, is the local address to send from (IP_PKTINFO /
 * IPV6_PKTINFO; its port is ignored); NULL lets the kernel choose. err is set by the send: 0, or
 * the negative errno that lost it. */
struct mpt_udp_msg {
    const void *buf;
    size_t len;
    const struct sockaddr *to;
    const struct sockaddr *from;
    const void *pre;
    uint32_t pre_len;
    int err;
};

#define MPT_UDP_TX_MAX 256           /* datagrams one mpt_udp_tx_send call plans at once */
#define MPT_UDP_GSO_SEGMENTS 64      /* datagrams per GSO run */
#define MPT_UDP_GSO_BYTES 65000      /* bytes per GSO run */
#define MPT_UDP_MTU_CACHE 64         /* destinations whose MTU one socket remembers */
#define MPT_UDP_MTU_REFRESH_MS 10000 /* how long a learned MTU is trusted */
#define MPT_UDP_HDR_V4 28            /* IPv4 + UDP headers */
#define MPT_UDP_HDR_V6 48            /* IPv6 + UDP headers */

struct mpt_udp_mtu_cache;

/* The sending state of one socket; zero-initialised is ready. */
struct mpt_udp_tx {
    struct mpt_udp_errors err;       /* this socket's losses */
    struct mpt_udp_mtu_cache *cache; /* allocated at the first GSO run to an address */
    uint64_t conn_mtu_at;            /* connected socket: when conn_mtu was read (ms), 0 never */
    uint32_t conn_mtu;
    uint8_t conn_hdr;    /* connected socket: header bytes towards the peer */
    uint8_t conn_no_gso; /* connected socket: the peer's route takes no GSO (EIO) */
};

/* Sets what every tunnel socket needs before use: IP_MTU_DISCOVER (and IPV6_MTU_DISCOVER) to
 * "don't" (see udp_tx.c for why). family is the socket's. Failures are ignored. */
void mpt_udp_tx_setup(int fd, int family);

/* Sends n datagrams on fd (non-blocking) with as few sendmmsg calls as it takes; each destination
 * receives in the order given. Sets every msgs[i].err; datagrams the kernel refuses are counted in
 * t->err by kind and dropped, as a congested link would. Returns the number sent. */
unsigned mpt_udp_tx_send(struct mpt_udp_tx *t, int fd, struct mpt_udp_msg *msgs, unsigned n);

/* The route MTU known for `to` (NULL: the connected address), learning it if need be; 0 if it
 * cannot be known (no route). */
unsigned mpt_udp_tx_mtu(struct mpt_udp_tx *t, int fd, const struct sockaddr *to);

/* IP and UDP header bytes in front of each datagram to `to` (NULL: the connected address; an
 * IPv4-mapped address counts as IPv4). */
unsigned mpt_udp_tx_headers(struct mpt_udp_tx *t, int fd, const struct sockaddr *to);

/* The same for a given address (not NULL). */
unsigned mpt_udp_addr_headers(const struct sockaddr *to);

/* Frees the cache; t may be used again afterwards (it starts empty). */
void mpt_udp_tx_free(struct mpt_udp_tx *t);

#endif
