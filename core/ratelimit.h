/* Token buckets for handshakes: per source (an IPv4 address or an IPv6 /64, whatever the port:
 * rotating ports buys nothing), in a fixed table with no allocation per source, checked before
 * any MAC work; and a global one for what authenticates and opens a session, which caps the work
 * of key derivation and session set-up however many sources take part. */
#ifndef MPT_RATELIMIT_H
#define MPT_RATELIMIT_H

#include <stdint.h>

#include "core/addr.h"

#define MPT_RATELIMIT_SLOTS 1024

struct mpt_ratelimit_entry {
    struct mpt_addr src;
    uint64_t stamp_us;
    uint32_t tokens_milli; /* tokens * 1000 */
};

struct mpt_ratelimit {
    uint32_t per_source_rate, per_source_burst; /* handshakes per second, bucket size */
    uint32_t global_rate, global_burst;
    uint64_t key;
    uint64_t global_stamp_us;
    uint64_t global_tokens_milli;
    struct mpt_ratelimit_entry slots[MPT_RATELIMIT_SLOTS];
};

void mpt_ratelimit_init(struct mpt_ratelimit *rl, uint32_t per_source_rate,
                        uint32_t per_source_burst, uint32_t global_rate, uint32_t global_burst);

/* 1 if a handshake from src may be looked at now (and takes a token of its source), else 0. */
int mpt_ratelimit_allow(struct mpt_ratelimit *rl, const struct mpt_addr *src, uint64_t now);

/* 1 if an authenticated handshake may open a session now (and takes a global token), else 0. */
int mpt_ratelimit_allow_global(struct mpt_ratelimit *rl, uint64_t now);

#endif
