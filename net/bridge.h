/* The bridge: a UDP relay from a listen address to one destination (`to`) that knows nothing of
 * what it carries, with optional seeded impairments per direction (core/impair.h).
 *
 * Every source address seen on the listen socket is a peer. Each peer gets a socket of its own,
 * connected to `to`, so the destination sees one address per peer and its replies come back on
 * that socket; the bridge sends them to the peer from the listen socket. A peer that sends and
 * receives nothing for the idle timeout is forgotten and its socket closed.
 *
 * The peer table is capped: a datagram from a new address while the table is full is dropped
 * and counted (after first forgetting the longest-idle peer if it has timed out, or else one that
 * `to' never answered and that has been quiet for 2 s: most likely a spoofed source). Active
 * peers are never evicted: that would cut a live flow to make room for a newcomer, which is
 * exactly what a flood of spoofed sources would want.
 *
 * Without impairment a datagram is sent on as it arrives, from the receive buffer: no copy, no
 * queue. Delayed copies wait in one time-ordered queue (a min-heap by send time, FIFO among equal
 * times) served by one timer; the queue is bounded in datagrams and bytes, and what does not fit
 * is dropped and counted. SIGUSR1 takes the bridge down (everything is dropped, both ways),
 * SIGUSR2 brings it back up. SIGINT/SIGTERM (through the loop's services) close every handle.
 */
#ifndef MPT_NET_BRIDGE_H
#define MPT_NET_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/impair.h"
#include "net/loop.h"
#include "net/udp_tx.h"

#define MPT_BRIDGE_IDLE_MS 60000u
#define MPT_BRIDGE_MAX_PEERS 1024u
#define MPT_BRIDGE_QUEUE_BYTES (64u << 20)
#define MPT_BRIDGE_QUEUE_DATAGRAMS 65536u
#define MPT_BRIDGE_RECORD_MAX (64u << 20)

struct mpt_bridge;

enum {
    MPT_BRIDGE_TO = 0,   /* from the peers towards `to` */
    MPT_BRIDGE_BACK = 1, /* from `to` back to the peers */
};

struct mpt_bridge_options {
    struct mpt_addr listen; /* [::]:PORT listens on all addresses, dual stack */
    struct mpt_addr to;
    struct mpt_impair_params impair[2]; /* by direction, MPT_BRIDGE_TO / MPT_BRIDGE_BACK */
    uint64_t seed;                      /* seeds both directions (as two streams) */
    uint32_t idle_timeout_ms;           /* default MPT_BRIDGE_IDLE_MS */
    unsigned max_peers;                 /* default MPT_BRIDGE_MAX_PEERS */
    size_t max_queue_bytes;             /* default MPT_BRIDGE_QUEUE_BYTES */
    unsigned max_queue_datagrams;       /* default MPT_BRIDGE_QUEUE_DATAGRAMS */
    uint32_t sndbuf, rcvbuf;            /* every socket; 0 = system default */
    int record_fd;                      /* -1 = none; see mpt_bridge_start */
    uint64_t record_max_bytes;          /* default MPT_BRIDGE_RECORD_MAX */
};

struct mpt_bridge_dir_stats {
    struct mpt_impair_stats impair;   /* what the impairment model decided */
    uint64_t queue_drops;             /* copies dropped because the delay queue was full */
    uint64_t send_errors;             /* copies the kernel refused (buffer full, unreachable) */
    struct mpt_udp_errors send_kinds; /* the same by kind (too_big also: beyond the queue) */
};

struct mpt_bridge_stats {
    struct mpt_bridge_dir_stats dir[2];
    uint64_t peers_active;
    uint64_t peers_created;
    uint64_t peers_expired;
    uint64_t peer_drops;   /* datagrams from new addresses refused: table full, socket failure */
    uint64_t queued;       /* copies waiting in the delay queue now */
    uint64_t recorded;     /* datagrams written to the record file */
    uint64_t record_bytes; /* bytes written to it, headers included */
};

/* Fills *o with the defaults: no impairment, record_fd -1. */
void mpt_bridge_options_init(struct mpt_bridge_options *o);

/* Opens the listen socket and starts relaying; the bridge stops with the loop's services.
 * The options are copied. The bridge owns options->record_fd from this call on, even on failure:
 * it appends [u32 big-endian length][bytes] per datagram sent towards `to`, stopping before the
 * file would pass record_max_bytes (counted from the file's size at start).
 * Returns 0 with *out set, or a negative UV_E* code (then the bridge is released by itself as
 * the loop runs; mpt_loop_free does that). */
int mpt_bridge_start(struct mpt_loop *loop, const struct mpt_bridge_options *options,
                     struct mpt_bridge **out);

/* The bound listen address. */
void mpt_bridge_local(const struct mpt_bridge *b, struct mpt_addr *out);

/* Takes both directions down (drop everything) or back up, as SIGUSR1/SIGUSR2 do. */
void mpt_bridge_set_down(struct mpt_bridge *b, int down);

/* Copies the counters. */
void mpt_bridge_get_stats(const struct mpt_bridge *b, struct mpt_bridge_stats *st);

/* Starts closing every handle and drops the queued copies. Safe to call more than once. */
void mpt_bridge_stop(struct mpt_bridge *b);

/* Releases the bridge (NULL is fine): at once if its handles are closed (after mpt_loop_run
 * returned), else it stops and is released from the last close callback. */
void mpt_bridge_free(struct mpt_bridge *b);

#endif
