/* Scheduling helpers shared by both ends (PROTOCOL.md §8). */
#ifndef MPT_SCHED_H
#define MPT_SCHED_H

#include <stdint.h>

/* Smooth weighted round robin (as nginx does): picks one index of `mask` (bits below n), each in
 * proportion to weight[i] and evenly spread; cur[] carries the state between calls. mask must
 * not be empty. */
unsigned mpt_wrr_pick(int32_t *cur, const unsigned *weight, uint32_t mask, unsigned n);

#endif
