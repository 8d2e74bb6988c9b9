/* What a path carries now, measured from acknowledged probes (PROTOCOL.md §8.2): its delivery
 * rate each way, its lowest and latest round-trip time, and its loss each way averaged over time
 * (so that an estimate returns to the truth within seconds, even with probes alone),
 * and the balance shares computed from them. Pure functions of the figures the caller feeds. */
#ifndef MPT_ESTIMATE_H
#define MPT_ESTIMATE_H

#include <stdint.h>

#define MPT_EST_LOSS_US 1000000ULL     /* loss samples are averaged over about this long */
#define MPT_EST_RTT_MIN_US 10000000ULL /* the lowest RTT is forgotten after this long */
#define MPT_EST_GAP_US 1000000ULL      /* acks this far apart: the path was down, no loss sample */
#define MPT_EST_LOSSY 0.2              /* losing more (with no queue): no balance share */

/* One direction of a path. */
struct mpt_est_dir {
    double loss;      /* lost / sent, averaged over time: each interval's sample weighs
                         (dt / (MPT_EST_LOSS_US + dt)) * n / (n + 1) for its n datagrams */
    double rate;      /* datagrams per second delivered over the last interval, smoothed */
    double cap;       /* what it may be offered, datagrams per second; 0 = no limit known */
    double full_rate; /* what it delivered when last found full (0: never) */
    int full;         /* at the last sample: its queue grew or it lost (PROTOCOL.md §8.2) */
    int queued;       /* samples in a row with a queue */
    uint64_t q_us;    /* its queue at the last sample */
    uint64_t last_tx, last_rx; /* cumulative counts at the last sample */
};

/* One-way delays of one direction, as the receiver's clock less the sender's: their offset is
 * unknown but constant, so the latest less the lowest is the direction's queue. The lowest is
 * that of two windows of half MPT_EST_RTT_MIN_US each, the present one and the one before, so
 * that it is never a single sample taken in a queue. */
struct mpt_est_owd {
    uint64_t last, min[2], start_us; /* delays compared modulo 2^64; start of window min[0] */
};

struct mpt_est {
    int have;       /* a sample came */
    int owd_have;   /* the one-way delays are of the peer's present clock */
    uint64_t at_us; /* the last sample (the probe's send time, the client's clock) */
    uint64_t rtt_us, rtt_min_us, rtt_min_at_us;
    struct mpt_est_owd owd_up, owd_down;
    struct mpt_est_dir up, down;
};

/* Starts over (the path is new, or its counters restarted). */
void mpt_est_reset(struct mpt_est *e);

/* An acknowledged probe: sent at sent_us, answered after rtt_us at peer_us by the peer's clock;
 * up_tx datagrams sent on the path before it and up_rx of them counted by the peer (cumulative,
 * up to the probe); down_tx the peer sent and down_rx received here (cumulative). Counters that
 * went backwards (a new session) start the figures over. */
void mpt_est_sample(struct mpt_est *e, uint64_t sent_us, uint64_t rtt_us, uint64_t peer_us,
                    uint64_t up_tx, uint64_t up_rx, uint64_t down_tx, uint64_t down_rx);

/* The peer may have another clock (a session that does not follow the last): one-way delays
 * start over. */
void mpt_est_new_clock(struct mpt_est *e);

/* The loss of a direction (0 before any sample). */
double mpt_est_loss(const struct mpt_est_dir *d);

/* Queueing delay seen lately in one direction (down: 0 up, 1 down): its latest one-way delay
 * over the lowest of the last 5-10 s (0 before any sample). */
uint64_t mpt_est_queue_us(const struct mpt_est *e, int down);

/* Balance shares of one direction (down: 0 up, 1 down) over the paths of mask: what the paths
 * carry now, in all, spread by weight[] (lowered by loss), but no path given more than its cap
 * (what it carried when it was last found full, growing again while it is not), the rest going
 * to the others by weight; a path losing more than MPT_EST_LOSSY gets none while another does
 * not, unless it is full with a standing queue (its loss is what it could not carry). share[] (1 to
 * 1000, 0 for paths outside mask or given none) sums to about 1000. */
void mpt_est_shares(const struct mpt_est *est, const unsigned *weight, uint32_t mask, unsigned n,
                    int down, unsigned *share);

/* Adaptive mode's order (PROTOCOL.md §8): 1 if path a should come before path b in direction
 * down (0 up, 1 down) by a clear margin: a lower loss (by more than 0.5 points and a quarter of
 * the larger; a path not measured counts as losing half), or, losses alike, a lower RTT (the mean
 * of the latest and the lowest; by more than 2 ms and a tenth). 0 when alike: the caller keeps
 * its order, so that choices neither flap nor stick. */
int mpt_est_better(const struct mpt_est *a, const struct mpt_est *b, int down);

#endif
