/* The impairment model of one direction of a relay: loss, delay with jitter, duplication,
 * reordering, bit corruption and blackouts, driven by a seeded PRNG. Sans-I/O: the caller passes
 * the time and the datagram's length; the model answers when to send which copies and which bits
 * to flip. It never touches the datagram itself.
 *
 * The model, per datagram (every probability is drawn independently):
 *  - down (blackout): dropped, no draws made.
 *  - loss P: dropped.
 *  - delay D, jitter J: sent at now + D + j, j uniform in [-J, +J] (a bounded, flat spread whose
 *    limits tests can check), never before now. Jitter keeps order, as a link's queue does: a
 *    datagram is never scheduled before the one received just before it (so with a large J and
 *    close datagrams the mean delay grows). Only `reorder` reorders.
 *  - reorder P: held back by reorder_extra_us more (default MPT_IMPAIR_REORDER_US) so that the
 *    datagrams after it overtake it; it does not hold up those later datagrams.
 *  - duplicate P: a second copy, sent right after the first (same send time).
 *  - corrupt P, for each copy on its own: 1 to 3 distinct random bits flipped.
 *
 * Each datagram that is not dropped by `down` consumes the same number of PRNG draws whatever the
 * parameters, so for one seed the loss pattern does not change when, say, the delay does.
 */
#ifndef MPT_IMPAIR_H
#define MPT_IMPAIR_H

#include <stddef.h>
#include <stdint.h>

#define MPT_IMPAIR_MAX_COPIES 2
#define MPT_IMPAIR_MAX_FLIPS 3
#define MPT_IMPAIR_REORDER_US 10000u /* default extra hold of a reordered datagram: 10 ms */

/* xoshiro256**, seeded through splitmix64. */
struct mpt_rng {
    uint64_t s[4];
};

/* Seeds the generator: the same (seed, stream) gives the same sequence; different streams give
 * unrelated sequences. */
void mpt_rng_seed(struct mpt_rng *r, uint64_t seed, uint64_t stream);

/* The next 64 random bits. */
uint64_t mpt_rng_next(struct mpt_rng *r);

/* A uniform double in [0, 1). */
double mpt_rng_unit(struct mpt_rng *r);

struct mpt_impair_params {
    double loss; /* probabilities, each in [0, 1] */
    double duplicate;
    double reorder;
    double corrupt;
    uint32_t delay_us;
    uint32_t jitter_us;
    uint32_t reorder_extra_us; /* 0 = MPT_IMPAIR_REORDER_US */
};

struct mpt_impair_stats {
    uint64_t received;   /* datagrams given to mpt_impair_decide */
    uint64_t dropped;    /* lost, or received while down */
    uint64_t duplicated; /* datagrams that got a second copy */
    uint64_t reordered;  /* datagrams held back */
    uint64_t corrupted;  /* copies with flipped bits */
    uint64_t forwarded;  /* copies returned for sending */
};

struct mpt_impair {
    struct mpt_impair_params p;
    struct mpt_rng rng;
    struct mpt_impair_stats stats;
    uint64_t last_at_us; /* send time of the last in-order datagram, for the order of jitter */
    int down;
    int passthrough; /* no impairment configured: every datagram goes out at once as is */
};

/* One copy to send: when, and which bits (indices into the datagram, bit 0 = the lowest bit of
 * byte 0) to flip first. */
struct mpt_impair_copy {
    uint64_t send_at_us;
    unsigned nflips;
    uint32_t flip[MPT_IMPAIR_MAX_FLIPS];
};

struct mpt_impair_verdict {
    unsigned ncopies; /* 0 = dropped */
    struct mpt_impair_copy copy[MPT_IMPAIR_MAX_COPIES];
};

/* Checks that every probability is in [0, 1] (NaN is not). Returns 0 or -EINVAL. */
int mpt_impair_params_check(const struct mpt_impair_params *p);

/* 1 if the parameters impair nothing. */
int mpt_impair_params_none(const struct mpt_impair_params *p);

/* Sets up a model with copied parameters (checked: -EINVAL if out of range), zero counters, up.
 * Returns 0 or -EINVAL. */
int mpt_impair_init(struct mpt_impair *im, const struct mpt_impair_params *p, uint64_t seed,
                    uint64_t stream);

/* Takes the direction down (drops everything) or back up. */
void mpt_impair_set_down(struct mpt_impair *im, int down);

/* Decides the fate of one datagram of `len` bytes received at now_us (non-decreasing from call to
 * call). Fills *v (copies in the order they should be sent) and updates the counters. Without
 * impairment: one copy at now_us, no flips, no draws. */
void mpt_impair_decide(struct mpt_impair *im, uint64_t now_us, size_t len,
                       struct mpt_impair_verdict *v);

/* Flips the copy's bits in buf (len bytes, the same length given to mpt_impair_decide). */
void mpt_impair_apply(const struct mpt_impair_copy *c, uint8_t *buf, size_t len);

#endif
