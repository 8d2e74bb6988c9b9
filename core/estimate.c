#include "core/estimate.h"

#include <string.h>

#define LOSS_TOL 0.005     /* losses closer than this, and ... */
#define LOSS_TOL_REL 0.25  /* ... this fraction of the larger, are alike */
#define RTT_TOL_US 2000ULL /* RTTs closer than this and a tenth of the larger are alike */

#define QUEUE_MIN_US 20000ULL /* a queue shorter than this is none (RTTs vary that much) */
#define FULL_LOSS 0.01        /* a path losing more than this is full */
#define SHRINK 0.9            /* a full path's cap: this much of what it carried, so it drains */
#define GROW_US 1000000ULL    /* a cap not reached grows by a quarter in this long */
#define LOSS_WEIGHT 10.0      /* a path's weight falls by this times its loss (to a tenth) */

void mpt_est_reset(struct mpt_est *e)
{
    memset(e, 0, sizeof(*e));
}

/* The factor by which a figure fades over dt with time constant tau (about exp(-dt / tau)). */
static double fade(uint64_t dt, uint64_t tau)
{
    return (double)tau / (double)(tau + dt);
}

/* One direction's interval of dt: tx and rx (cumulative) as the sender and the receiver count;
 * q: the queueing delay seen, qmin: what counts as a queue; busier: this direction carries at
 * least as much as the other (a queue is put down to the busier direction). */
static void dir_sample(struct mpt_est_dir *d, uint64_t dt, uint64_t tx, uint64_t rx, uint64_t q,
                       uint64_t qmin)
{
    uint32_t n = (uint32_t)(tx - d->last_tx), got = (uint32_t)(rx - d->last_rx);
    double rate;

    d->last_tx = tx;
    d->last_rx = rx;
    if (n > 0x7fffffffu || got > 0x7fffffffu)
        return; /* counters started over */
    if (got > n)
        got = n;
    if (n) {
        double a = (1 - fade(dt, MPT_EST_LOSS_US)) * n / (n + 1.0);
        d->loss += a * ((double)(n - got) / n - d->loss);
    }
    rate = (double)got * 1e6 / (double)dt;
    d->rate = d->rate > 0 ? (d->rate + rate) / 2 : rate;
    /* Full: its queue stood out twice in a row (one RTT alone may be a stall), or it lost with a
     * queue (a path that loses without one is lossy, not full). */
    d->queued = n >= 20 && q > qmin ? d->queued + 1 : 0;
    d->full = n >= 20 && (d->queued >= 2 || ((double)(n - got) > FULL_LOSS * n && q > qmin / 2));
    if (d->full) {
        d->cap = SHRINK * d->rate;
    } else if (d->cap > 0) {
        d->cap *= 1 + 0.25 * (double)dt / (double)GROW_US;
        if (d->cap > 4 * d->rate + 1000)
            d->cap = 0; /* far above what it is offered: no limit */
    }
}

void mpt_est_sample(struct mpt_est *e, uint64_t sent_us, uint64_t rtt_us, uint64_t up_tx,
                    uint64_t up_rx, uint64_t down_tx, uint64_t down_rx)
{
    if (!e->have || sent_us - e->rtt_min_at_us >= MPT_EST_RTT_MIN_US || rtt_us < e->rtt_min_us) {
        e->rtt_min_us = rtt_us;
        e->rtt_min_at_us = sent_us;
    }
    e->rtt_us = rtt_us;
    if (!e->have) {
        e->have = 1;
        e->at_us = sent_us;
        e->up.last_tx = up_tx;
        e->up.last_rx = up_rx;
        e->down.last_tx = down_tx;
        e->down.last_rx = down_rx;
        return;
    }
    if (sent_us <= e->at_us)
        return; /* an older probe's ack, overtaken */
    if (sent_us - e->at_us > MPT_EST_GAP_US) {
        /* No ack for that long: the path was down, which says nothing of its loss now. */
        e->at_us = sent_us;
        e->up.last_tx = up_tx;
        e->up.last_rx = up_rx;
        e->down.last_tx = down_tx;
        e->down.last_rx = down_rx;
        return;
    }
    {
        uint64_t dt = sent_us - e->at_us, q = mpt_est_queue_us(e), qmin = QUEUE_MIN_US;
        uint32_t nup = (uint32_t)(up_rx - e->up.last_rx),
                 ndown = (uint32_t)(down_rx - e->down.last_rx);
        /* A queue is put down to the busier direction. */
        dir_sample(&e->up, dt, up_tx, up_rx, nup >= ndown ? q : 0, qmin);
        dir_sample(&e->down, dt, down_tx, down_rx, ndown > nup ? q : 0, qmin);
    }
    e->at_us = sent_us;
}

double mpt_est_loss(const struct mpt_est_dir *d)
{
    return d->loss;
}

uint64_t mpt_est_queue_us(const struct mpt_est *e)
{
    return e->have && e->rtt_us > e->rtt_min_us ? e->rtt_us - e->rtt_min_us : 0;
}

void mpt_est_shares(const struct mpt_est *est, const unsigned *weight, uint32_t mask, unsigned n,
                    int down, unsigned *share)
{
    double w[32], x[32], total = 0, left, wsum;
    uint32_t usable = 0, open;

    if (n > 32)
        n = 32;
    for (unsigned i = 0; i < n; i++) {
        const struct mpt_est_dir *d = down ? &est[i].down : &est[i].up;
        share[i] = 0;
        x[i] = 0;
        if (!(mask & (1u << i)))
            continue;
        /* Loss with a queue is the path being full (its cap says so), not a lossy path. */
        if (mpt_est_loss(d) <= MPT_EST_LOSSY || d->full)
            usable |= 1u << i;
        total += d->rate;
    }
    if (!usable)
        usable = mask; /* every path loses: spread over them all alike */
    for (unsigned i = 0; i < n; i++) {
        const struct mpt_est_dir *d = down ? &est[i].down : &est[i].up;
        double f = d->full ? 1 : 1 - LOSS_WEIGHT * mpt_est_loss(d);
        w[i] = (double)(weight[i] ? weight[i] : 1) * (f > 0.1 ? f : 0.1);
    }
    /* Water-filling: by weight, but none above its cap; what a capped path cannot take goes to
     * the others. Nothing carried yet (or every path capped below it): by weight alone. */
    left = total;
    open = usable;
    for (unsigned round = 0; round < n && open && left > 0; round++) {
        uint32_t capped = 0;
        wsum = 0;
        for (unsigned i = 0; i < n; i++)
            if (open & (1u << i))
                wsum += w[i];
        for (unsigned i = 0; i < n; i++) {
            const struct mpt_est_dir *d = down ? &est[i].down : &est[i].up;
            if ((open & (1u << i)) && d->cap > 0 && d->cap < left * w[i] / wsum) {
                x[i] = d->cap;
                capped |= 1u << i;
            }
        }
        if (!capped) {
            for (unsigned i = 0; i < n; i++)
                if (open & (1u << i))
                    x[i] = left * w[i] / wsum;
            left = 0;
            break;
        }
        for (unsigned i = 0; i < n; i++)
            if (capped & (1u << i))
                left -= x[i];
        open &= ~capped;
    }
    wsum = 0;
    for (unsigned i = 0; i < n; i++)
        if (usable & (1u << i))
            wsum += x[i];
    for (unsigned i = 0; i < n; i++) {
        if (!(usable & (1u << i)))
            continue;
        share[i] = wsum > 0 ? (unsigned)(1000 * x[i] / wsum + 0.5) : 0;
        if (wsum <= 0) {
            double ws = 0;
            for (unsigned j = 0; j < n; j++)
                if (usable & (1u << j))
                    ws += w[j];
            share[i] = (unsigned)(1000 * w[i] / ws + 0.5);
        }
        if (share[i] < 1)
            share[i] = 1;
    }
}

int mpt_est_better(const struct mpt_est *a, const struct mpt_est *b, int down)
{
    double la = a->have ? mpt_est_loss(down ? &a->down : &a->up) : 0.5;
    double lb = b->have ? mpt_est_loss(down ? &b->down : &b->up) : 0.5;
    double tol = LOSS_TOL + LOSS_TOL_REL * (la > lb ? la : lb);
    uint64_t ra = a->rtt_us ? (a->rtt_us + a->rtt_min_us) / 2 : UINT64_MAX;
    uint64_t rb = b->rtt_us ? (b->rtt_us + b->rtt_min_us) / 2 : UINT64_MAX;

    if (la + tol < lb)
        return 1;
    if (lb + tol < la)
        return 0;
    /* Losses alike: the one that delivers sooner, by a clear margin. */
    return ra < UINT64_MAX && ra + RTT_TOL_US + rb / 10 < rb;
}
