#include "core/estimate.h"

#include <string.h>

#define LOSS_TOL 0.005     /* losses closer than this, and ... */
#define LOSS_TOL_REL 0.25  /* ... this fraction of the larger, are alike */
#define RTT_TOL_US 2000ULL /* RTTs closer than this and a tenth of the larger are alike */

#define QUEUE_MIN_US 10000ULL /* a queue shorter than this is none (delays vary that much) */
#define FULL_LOSS 0.01        /* a path losing more than this is full */
#define SHRINK 0.9            /* a full path's cap: this much of what it carried, so it drains */
#define GROW_US 1000000ULL    /* a cap not reached grows by a quarter in this long, ... */
#define REGAIN 0.5            /* ... by half up to what the path carried when it was full, ... */
#define NEAR 0.05             /* ... by this much within a tenth over it */
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
 * q: the direction's queueing delay, qmin: what counts as a queue. */
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
    /* Full: its queue stood out twice in a row, or rose above qmin by more than half of it at
     * once (that may be a stall of the receiver, but a cap lowered for an interval costs little,
     * and a queue found an interval late has grown by a fifth of what the path carries in that
     * time), or it lost with a queue (a path that loses without one is lossy, not full). */
    d->queued = n >= 20 && q > qmin ? d->queued + 1 : 0;
    d->full = n >= 20 && (d->queued >= 2 || (q > qmin && q > d->q_us + qmin / 2) ||
                          ((double)(n - got) > FULL_LOSS * n && q > qmin));
    d->q_us = q;
    if (d->full) {
        /* A queue all the interval: it delivered its capacity. */
        d->full_rate = rate > d->rate ? rate : d->rate;
        d->cap = SHRINK * d->rate;
    } else if (d->cap > 0) {
        /* Back to what it carried at once, slowly over it (its capacity is there, most likely),
         * and faster beyond (it is more now). */
        double g = d->cap < d->full_rate ? REGAIN : d->cap < 1.1 * d->full_rate ? NEAR : 0.25;
        double was = d->cap;
        d->cap *= 1 + g * (double)dt / (double)GROW_US;
        if (was < d->full_rate && d->cap > d->full_rate)
            d->cap = d->full_rate;
        if (d->cap > 4 * d->rate + 1000)
            d->cap = 0; /* far above what it is offered: no limit */
    }
}

void mpt_est_new_clock(struct mpt_est *e)
{
    e->owd_have = 0;
}

/* A one-way delay d (modulo 2^64) taken at now. */
static void owd_sample(struct mpt_est_owd *o, int fresh, uint64_t now, uint64_t d)
{
    if (fresh) {
        o->min[0] = o->min[1] = d;
        o->start_us = now;
    } else if (now - o->start_us >= MPT_EST_RTT_MIN_US / 2) {
        /* A new window; over a whole one without a sample the one before is as old. */
        o->min[1] = now - o->start_us >= MPT_EST_RTT_MIN_US ? d : o->min[0];
        o->min[0] = d;
        o->start_us = now;
    } else if ((int64_t)(d - o->min[0]) < 0) {
        o->min[0] = d;
    }
    o->last = d;
}

void mpt_est_sample(struct mpt_est *e, uint64_t sent_us, uint64_t rtt_us, uint64_t peer_us,
                    uint64_t up_tx, uint64_t up_rx, uint64_t down_tx, uint64_t down_rx)
{
    if (!e->have || sent_us - e->rtt_min_at_us >= MPT_EST_RTT_MIN_US || rtt_us < e->rtt_min_us) {
        e->rtt_min_us = rtt_us;
        e->rtt_min_at_us = sent_us;
    }
    e->rtt_us = rtt_us;
    owd_sample(&e->owd_up, !e->owd_have, sent_us, peer_us - sent_us);
    owd_sample(&e->owd_down, !e->owd_have, sent_us, sent_us + rtt_us - peer_us);
    e->owd_have = 1;
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
        uint64_t dt = sent_us - e->at_us;
        dir_sample(&e->up, dt, up_tx, up_rx, mpt_est_queue_us(e, 0), QUEUE_MIN_US);
        dir_sample(&e->down, dt, down_tx, down_rx, mpt_est_queue_us(e, 1), QUEUE_MIN_US);
    }
    e->at_us = sent_us;
}

double mpt_est_loss(const struct mpt_est_dir *d)
{
    return d->loss;
}

uint64_t mpt_est_queue_us(const struct mpt_est *e, int down)
{
    const struct mpt_est_owd *o = down ? &e->owd_down : &e->owd_up;
    uint64_t lowest = (int64_t)(o->min[1] - o->min[0]) < 0 ? o->min[1] : o->min[0];
    int64_t q = (int64_t)(o->last - lowest);

    return e->owd_have && q > 0 ? (uint64_t)q : 0;
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
        /* Loss with a standing queue (two samples in a row: the path is full then) is the path
         * being full (its cap says so), not a lossy path; a queue seen once may be a stall (on
         * a busy host, of the relay or the peer), which would put a path losing half of
         * everything back in use. */
        if (mpt_est_loss(d) <= MPT_EST_LOSSY || d->queued >= 2)
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
