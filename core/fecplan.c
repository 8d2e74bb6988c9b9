#include "core/fecplan.h"

#include <string.h>

double mpt_fecplan_loss(double estimate, int measured)
{
    if (measured)
        return estimate;
    return estimate > MPT_FECPLAN_PRIOR_LOSS ? estimate : MPT_FECPLAN_PRIOR_LOSS;
}

void mpt_fecplan_set(struct mpt_fecplan *p, const double *loss, const unsigned *weight,
                     uint32_t mask, unsigned npaths, double target, unsigned fixed_k,
                     unsigned fixed_m)
{
    int same;

    if (npaths > MPT_FEC_PATHS)
        npaths = MPT_FEC_PATHS;
    if (fixed_k > MPT_FEC_K_MAX || !fixed_m)
        fixed_k = 0;
    if (!fixed_k)
        fixed_m = 0;
    same = p->mask == mask && p->npaths == npaths && p->target == target && p->fixed_k == fixed_k &&
           p->fixed_m == fixed_m;
    for (unsigned i = 0; i < npaths; i++) {
        if (p->loss[i] != loss[i] || p->weight[i] != weight[i])
            same = 0;
        p->loss[i] = loss[i];
        p->weight[i] = weight[i];
    }
    if (same)
        return;
    memset(p->m_for, 0xff, sizeof(p->m_for));
    p->mask = mask;
    p->npaths = npaths;
    p->target = target;
    p->fixed_k = fixed_k;
    p->fixed_m = fixed_m;
}

void mpt_fecplan_wait(struct mpt_fecplan *p, uint64_t wait_us)
{
    uint64_t half = wait_us / 2;

    p->open_max_us = half < 1000                       ? 1000
                     : half > MPT_FECPLAN_BLOCK_MAX_US ? MPT_FECPLAN_BLOCK_MAX_US
                                                       : half;
}

static uint64_t open_max(const struct mpt_fecplan *p)
{
    return p->open_max_us ? p->open_max_us : MPT_FECPLAN_BLOCK_MAX_US;
}

uint64_t mpt_fecplan_first(const struct mpt_fecplan *p, uint64_t opened_us)
{
    uint64_t max = open_max(p);

    return opened_us + (max < MPT_FEC_BLOCK_US ? max : MPT_FEC_BLOCK_US);
}

unsigned mpt_fecplan_k(const struct mpt_fecplan *p)
{
    return p->fixed_k ? p->fixed_k : MPT_FEC_K_MAX;
}

int mpt_fecplan_none(const struct mpt_fecplan *p)
{
    if (p->fixed_k)
        return 0;
    for (unsigned i = 0; i < p->npaths; i++)
        if ((p->mask & (1u << i)) && !(p->loss[i] <= p->target))
            return 0;
    return 1;
}

unsigned mpt_fecplan_m(struct mpt_fecplan *p, unsigned n)
{
    unsigned share[MPT_FEC_PATHS];

    /* The residual is the paths' mean loss weighted by the sources they carry: at most the
     * target without repairs (said so here rather than by a sum that may round above it). */
    if (!n || mpt_fecplan_none(p))
        return 0;
    if (n > MPT_FEC_K_MAX)
        n = MPT_FEC_K_MAX;
    if (p->m_for[n] != 0xff)
        return p->m_for[n];
    if (p->fixed_k) {
        unsigned m = (p->fixed_m * n + p->fixed_k - 1) / p->fixed_k;
        p->m_for[n] = (uint8_t)(m > MPT_FEC_M_MAX ? MPT_FEC_M_MAX : m);
    } else {
        p->m_for[n] =
            (uint8_t)mpt_fec_plan(n, p->loss, p->weight, p->mask, p->npaths, p->target, share);
    }
    return p->m_for[n];
}

uint64_t mpt_fecplan_next(struct mpt_fecplan *p, unsigned n, uint64_t opened_us, uint64_t now)
{
    unsigned k = mpt_fecplan_k(p);
    uint64_t age = now - opened_us, max = open_max(p), next;

    if (!n || n >= k || p->fixed_k || age >= max)
        return 0;
    /* Worth waiting for more sources only if this block's repairs cost noticeably more per
     * source than a full block's: each 10 ms, until the latest. */
    if ((double)mpt_fecplan_m(p, n) / n <= (double)mpt_fecplan_m(p, k) / k + MPT_FECPLAN_SLACK)
        return 0;
    next = (age / MPT_FEC_BLOCK_US + 1) * MPT_FEC_BLOCK_US;
    return opened_us + (next < max ? next : max);
}
