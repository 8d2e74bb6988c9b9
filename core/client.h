/* The client endpoint, sans-I/O (PROTOCOL.md §3-§7). Local applications' datagrams become flows;
 * each datagram is encrypted once and sent on every path; replies are de-duplicated and handed
 * back to the application that owns the flow. The driver feeds datagrams and timer expiries with
 * an explicit `now` (microseconds, monotonic) and carries out what the output queue lists. */
#ifndef MPT_CLIENT_H
#define MPT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/outq.h"
#include "core/session.h"
#include "core/table.h"

#define MPT_MAX_PATHS 16

struct mpt_client_params {
    const uint8_t *secret;      /* 32 bytes */
    unsigned npaths;            /* 1..MPT_MAX_PATHS */
    unsigned max_flows;         /* > 0 */
    uint32_t flow_timeout_ms;   /* idle flows are forgotten after this */
    uint32_t probe_interval_ms; /* per-path probes; a session silent for max(1 s, 5 probes) is
                                   re-established */
    uint8_t mode;               /* enum mpt_sched_mode, announced to the server */
};

struct mpt_client_path {
    uint64_t last_rx_us; /* last authenticated datagram on this path; 0 = never */
    uint64_t rx_dgrams, rx_bytes;
    uint64_t tx_dgrams, tx_bytes;
    uint32_t probe_seq;
    uint32_t probes_sent, acks_received;
    uint32_t peer_rx; /* the server's count of our datagrams on this path (from acks) */
    uint64_t srtt_us, rttvar_us, last_rtt_us;
    int up;
};

struct mpt_client_flow {
    struct mpt_addr app;
    uint32_t id;
    uint64_t last_us;
};

enum mpt_client_state {
    MPT_CLIENT_IDLE = 0,    /* no session, no handshake under way */
    MPT_CLIENT_HANDSHAKE,   /* first handshake under way */
    MPT_CLIENT_ESTABLISHED, /* a session (perhaps with a new handshake under way) */
};

struct mpt_client {
    struct mpt_client_params p;
    struct mpt_psk psk;
    enum mpt_client_state state;

    /* The current session. */
    uint64_t sid;
    struct mpt_keys keys;
    uint64_t last_auth_us; /* last authenticated datagram on any path */
    uint64_t established_us;

    /* A handshake under way (hs_sid != 0). */
    uint64_t hs_sid;
    uint8_t hs_random[MPT_RANDOM_LEN];
    uint8_t hs_msg[MPT_HELLO_LEN];
    uint64_t hs_next_us, hs_started_us;
    unsigned hs_attempts;

    struct mpt_client_path paths[MPT_MAX_PATHS];
    uint64_t next_probe_us;

    struct mpt_client_flow *flows;
    struct mpt_slots flow_slots;
    struct mpt_index flow_by_app; /* key: keyed hash of the address */
    struct mpt_index flow_by_id;  /* key: flow id */
    uint64_t hash_key;
    uint32_t next_flow_id;

    struct mpt_counters ctr;
    unsigned sessions_established;
};

/* Allocates every table at its full size. Returns 0, -EINVAL or -ENOMEM. */
int mpt_client_init(struct mpt_client *c, const struct mpt_client_params *p);
void mpt_client_free(struct mpt_client *c);

/* A datagram from the local application at `app`. */
void mpt_client_on_app(struct mpt_client *c, uint64_t now, const struct mpt_addr *app,
                       const uint8_t *buf, size_t len, struct mpt_outq *q);

/* A datagram received on path `path`. */
void mpt_client_on_path(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf,
                        size_t len, struct mpt_outq *q);

/* Timers: handshakes, probes, expiry. Call at or after the returned deadline (absolute, µs). */
uint64_t mpt_client_on_timer(struct mpt_client *c, uint64_t now, struct mpt_outq *q);

/* Number of flows in use. */
static inline unsigned mpt_client_flows(const struct mpt_client *c)
{
    return c->flow_slots.used;
}

#endif
