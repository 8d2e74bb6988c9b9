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

/* The source a bucket belongs to: the IPv4 address, or the /64 of an IPv6 one; no port. An
 * IPv4 client seen through a dual-stack socket (::ffff:a.b.c.d) is keyed by its IPv4 address:
 * the /64 of every such address is ::/64, which would put all IPv4 clients in one bucket. */
static void source_of(struct mpt_addr *out, const struct mpt_addr *src)
{
    memset(out, 0, sizeof(*out));
    out->u.sa.sa_family = src->u.sa.sa_family;
    if (src->u.sa.sa_family == AF_INET) {
        out->u.in4.sin_addr = src->u.in4.sin_addr;
    } else if (src->u.sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&src->u.in6.sin6_addr)) {
        out->u.sa.sa_family = AF_INET;
        memcpy(&out->u.in4.sin_addr, src->u.in6.sin6_addr.s6_addr + 12, 4);
    } else if (src->u.sa.sa_family == AF_INET6) {
        memcpy(&out->u.in6.sin6_addr, &src->u.in6.sin6_addr, 8);
    }
}

int mpt_ratelimit_allow(struct mpt_ratelimit *rl, const struct mpt_addr *src, uint64_t now)
{
    struct mpt_addr key;
    struct mpt_ratelimit_entry *e;
    uint64_t t;

    source_of(&key, src);
    e = &rl->slots[mpt_addr_hash(&key, rl->key) % MPT_RATELIMIT_SLOTS];
    if (!mpt_addr_equal(&e->src, &key) || e->stamp_us == 0) {
        e->src = key;
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
    return 1;
}

int mpt_ratelimit_allow_global(struct mpt_ratelimit *rl, uint64_t now)
{
    rl->global_tokens_milli = refill(rl->global_tokens_milli, &rl->global_stamp_us, now,
                                     rl->global_rate, rl->global_burst);
    if (rl->global_tokens_milli < 1000)
        return 0;
    rl->global_tokens_milli -= 1000;
    return 1;
}
