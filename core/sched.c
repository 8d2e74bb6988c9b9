#include "core/sched.h"

unsigned mpt_wrr_pick(int32_t *cur, const unsigned *weight, uint32_t mask, unsigned n)
{
    int32_t total = 0;
    int best = -1;

    for (unsigned i = 0; i < n; i++) {
        if (!(mask & (1u << i)))
            continue;
        cur[i] += (int32_t)weight[i];
        total += (int32_t)weight[i];
        if (best < 0 || cur[i] > cur[best])
            best = (int)i;
    }
    if (best < 0)
        return 0;
    cur[best] -= total;
    return (unsigned)best;
}

int mpt_bucket_room(struct mpt_bucket *b, double rate, uint64_t now)
{
    double burst;

    if (rate <= 0)
        return 1;
    burst = rate * 0.005 > 2 ? rate * 0.005 : 2;
    if (now > b->at_us)
        b->tokens += rate * (double)(now - b->at_us) / 1e6;
    b->at_us = now;
    if (b->tokens > burst)
        b->tokens = burst;
    return b->tokens >= 1;
}

uint16_t mpt_cap_encode(double rate)
{
    unsigned e = 0;
    double m;

    if (!(rate > 0))
        return 0;
    if (rate > 4095.0 * (1u << 15))
        return 0xffff;
    m = rate;
    while (m > 4095)
        m /= 2, e++;
    m = (double)(unsigned)(m + 0.999999);
    if (m > 4095) /* rounding carried over */
        m = 2048, e++;
    return (uint16_t)(e << 12 | (unsigned)m);
}

double mpt_cap_decode(uint16_t v)
{
    return (double)((unsigned)(v & 0xfff) << (v >> 12));
}
