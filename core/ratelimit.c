#include "core/ratelimit.h"

#include <string.h>

#include "core/crypto.h"

void mpt_ratelimit_init(struct mpt_ratelimit *rl, uint32_t per_source_rate,
                        uint32_t per_source_burst, uint32_t global_rate, uint32_t global_burst)
{
    memset(rl, 0, sizeof(*rl));
    rl->per_source_rate = per_source_rate;
    rl->per_source_burst = per_source_burst;
    rl->global_rate = global_rate;
    rl->global_burst = global_burst;
    rl->global_tokens_milli = (uint64_t)global_burst * 1000;
    rl->key = mpt_random64();
}

static uint64_t refill(uint64_t tokens, uint64_t *stamp, uint64_t now, uint32_t rate,
                       uint32_t burst)
{
    uint64_t add;

    if (now <= *stamp || rate == 0)
        return tokens;
    add = (now - *stamp) * rate / 1000; /* µs * (1/s) -> milli-tokens */
    /* Advance the stamp only by the time turned into tokens, so that frequent calls do not lose
     * the fractions to rounding. */
    *stamp += add * 1000 / rate;
    tokens += add;
    if (tokens >= (uint64_t)burst * 1000) {
        tokens = (uint64_t)burst * 1000;
        *stamp = now;
    }
    return tokens;
}

int mpt_ratelimit_allow(struct mpt_ratelimit *rl, const struct mpt_addr *src, uint64_t now)
{
    struct mpt_ratelimit_entry *e = &rl->slots[mpt_addr_hash(src, rl->key) % MPT_RATELIMIT_SLOTS];
    uint64_t t;

    rl->global_tokens_milli = refill(rl->global_tokens_milli, &rl->global_stamp_us, now,
                                     rl->global_rate, rl->global_burst);
    if (rl->global_tokens_milli < 1000)
        return 0;
    if (!mpt_addr_equal(&e->src, src) || e->stamp_us == 0) {
        e->src = *src;
        e->stamp_us = now ? now : 1;
        e->tokens_milli = rl->per_source_burst * 1000;
    }
    t = refill(e->tokens_milli, &e->stamp_us, now ? now : 1, rl->per_source_rate,
               rl->per_source_burst);
    if (t < 1000) {
        e->tokens_milli = (uint32_t)t;
        return 0;
    }
    e->tokens_milli = (uint32_t)(t - 1000);
    rl->global_tokens_milli -= 1000;
    return 1;
}
