/* Scheduling helpers shared by both ends (PROTOCOL.md §8). */
#ifndef MPT_SCHED_H
#define MPT_SCHED_H

#include <stdint.h>

/* Smooth weighted round robin (as nginx does): picks one index of `mask` (bits below n), each in
 * proportion to weight[i] and evenly spread; cur[] carries the state between calls. mask must
 * not be empty. */
unsigned mpt_wrr_pick(int32_t *cur, const unsigned *weight, uint32_t mask, unsigned n);

/* A rate cap as a bucket (PROTOCOL.md §8.2): `rate` datagrams a second, holding at most 5 ms of
 * them (and 2), so that a path found full is offered what it carries, not a fraction of what the
 * applications send. */
struct mpt_bucket {
    double tokens;  /* datagrams it may take now */
    uint64_t at_us; /* when they were last counted */
};

/* 1 if a bucket of `rate` datagrams a second (0: no cap) has room for a datagram at now. */
int mpt_bucket_room(struct mpt_bucket *b, double rate, uint64_t now);

/* A datagram sent through it (nothing with no cap). One sent with no room (every path full: by
 * share alone) empties it, and leaves no debt: a bucket charged so for 2 s at 1,000/s over its
 * 300/s would otherwise have had no room for the next 4.7 s. */
static inline void mpt_bucket_take(struct mpt_bucket *b, double rate)
{
    if (rate > 0)
        b->tokens = b->tokens >= 1 ? b->tokens - 1 : 0;
}

/* A cap of datagrams a second on the wire (PROBE bytes 50-81, PROTOCOL.md §5): 12 bits of
 * mantissa, 4 of exponent, rounded up; 0 is no cap. */
uint16_t mpt_cap_encode(double rate);
double mpt_cap_decode(uint16_t v);

#endif
