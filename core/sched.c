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
