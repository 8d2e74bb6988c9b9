/* fec mode's planning (PROTOCOL.md §11), shared by both ends: how many repairs a block of n
 * sources needs for the loss of the paths it goes on, with a prudent prior for paths not yet
 * measured, and when an open block is closed — at once when it is full, 10 ms after its first
 * source when its repairs then cost little more than a full block's, else later, up to
 * MPT_FECPLAN_BLOCK_MAX_US, so that at low rates a block gathers enough sources for its repair to
 * be efficient — but never longer than half the receiver's wait, so that its repairs can arrive
 * within the receiver's cap on a rebuilt datagram's lateness.
 *
 * Pure: no clock (time is an argument), no allocation. */
#ifndef MPT_FECPLAN_H
#define MPT_FECPLAN_H

#include <stdint.h>

#include "core/fec.h"

/* A path whose loss is not measured yet (its samples cover fewer than MPT_FECPLAN_PRIOR_DGRAMS
 * datagrams) is planned for as losing MPT_FECPLAN_PRIOR_LOSS, or its estimate if higher. */
#define MPT_FECPLAN_PRIOR_LOSS 0.2
#define MPT_FECPLAN_PRIOR_DGRAMS 300
/* A block is closed 10 ms (MPT_FEC_BLOCK_US) after its first source if m(n)/n is within this of
 * a full block's m(K)/K; else looked at again every 10 ms, and closed at the latest this long
 * after its first source. */
#define MPT_FECPLAN_SLACK 0.06
#define MPT_FECPLAN_BLOCK_MAX_US 50000ULL

struct mpt_fecplan {
    uint8_t m_for[MPT_FEC_K_MAX + 1]; /* repairs for n sources; 0xff = not planned yet */
    double loss[MPT_FEC_PATHS];
    unsigned weight[MPT_FEC_PATHS];
    uint32_t mask;
    unsigned npaths;
    double target;
    unsigned fixed_k, fixed_m; /* fec = K:M: m in proportion for a block closed early */
    uint64_t open_max_us;      /* a block is closed this long after its first source at the
                                * latest (0: MPT_FECPLAN_BLOCK_MAX_US); mpt_fecplan_wait */
};

/* The loss to plan with for a path: its estimate once measured, else the prior. */
double mpt_fecplan_loss(double estimate, int measured);

/* Sets what the plan depends on (`loss` and `weight` of npaths <= MPT_FEC_PATHS paths, the paths
 * of `mask` carrying the block, the residual loss aimed for; fixed_k and fixed_m nonzero for
 * fec = K:M); the repairs planned are forgotten only if one of them changed. */
void mpt_fecplan_set(struct mpt_fecplan *p, const double *loss, const unsigned *weight,
                     uint32_t mask, unsigned npaths, double target, unsigned fixed_k,
                     unsigned fixed_m);

/* Bounds the time a block stays open by the receiver's wait for a lost source's repairs (the
 * rebuilt source is given up wait_us after it was first missed, PROTOCOL.md §11): at most half of
 * it (at least 1 ms), and MPT_FECPLAN_BLOCK_MAX_US. */
void mpt_fecplan_wait(struct mpt_fecplan *p, uint64_t wait_us);

/* When a block opened at opened_us is first looked at: MPT_FEC_BLOCK_US later, or the latest it
 * may stay open if that is sooner. */
uint64_t mpt_fecplan_first(const struct mpt_fecplan *p, uint64_t opened_us);

/* The sources a block holds at most: fixed_k, else MPT_FEC_K_MAX. */
unsigned mpt_fecplan_k(const struct mpt_fecplan *p);

/* 1 if no block gets a repair under this plan (none fixed, and every path of the mask loses at
 * most the target): its sources need not be coded at all. */
int mpt_fecplan_none(const struct mpt_fecplan *p);

/* The repairs for a block of n sources (1..MPT_FEC_K_MAX): fixed in proportion, or the fewest
 * that keep its expected residual loss at or under the target (mpt_fec_plan), at most
 * MPT_FEC_M_MAX. */
unsigned mpt_fecplan_m(struct mpt_fecplan *p, unsigned n);

/* For an open block of n sources opened at opened_us, at now (its deadline reached): 0 if it is
 * to be closed now, else the time to look at it again (every MPT_FEC_BLOCK_US, and no later than
 * the latest it may stay open). */
uint64_t mpt_fecplan_next(struct mpt_fecplan *p, unsigned n, uint64_t opened_us, uint64_t now);

#endif
