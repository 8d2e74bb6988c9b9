/* Fixed-capacity tables for sessions and flows: a slot allocator that keeps used slots in
 * least-recently-used order, and a hash index from 64-bit keys to slots. Both are allocated
 * once at their full size; nothing grows with traffic. */
#ifndef MPT_TABLE_H
#define MPT_TABLE_H

#include <stdint.h>

#define MPT_NIL UINT32_MAX

struct mpt_slots {
    uint32_t cap, used;
    uint32_t *prev, *next; /* LRU links of used slots; the free list reuses next */
    uint32_t head, tail;   /* most and least recently used */
    uint32_t free_head;
};

/* Returns 0 or -ENOMEM. */
int mpt_slots_init(struct mpt_slots *s, uint32_t cap);
void mpt_slots_free(struct mpt_slots *s);

/* Takes a free slot and makes it the most recent, or returns MPT_NIL if all are used. */
uint32_t mpt_slots_alloc(struct mpt_slots *s);

/* Returns a used slot to the free list. */
void mpt_slots_release(struct mpt_slots *s, uint32_t slot);

/* Makes a used slot the most recent. */
void mpt_slots_touch(struct mpt_slots *s, uint32_t slot);

/* The least recently used slot, or MPT_NIL; then walk with `prev` towards newer ones. */
static inline uint32_t mpt_slots_oldest(const struct mpt_slots *s)
{
    return s->tail;
}

struct mpt_index {
    uint32_t *heads; /* buckets, MPT_NIL terminated chains */
    uint32_t *next;  /* per slot */
    uint64_t *keys;  /* per slot */
    uint32_t mask;
    uint64_t seed;
};

/* An index for slots [0, cap). seed keys the bucket hash. Returns 0 or -ENOMEM. */
int mpt_index_init(struct mpt_index *ix, uint32_t cap, uint64_t seed);
void mpt_index_free(struct mpt_index *ix);

void mpt_index_insert(struct mpt_index *ix, uint32_t slot, uint64_t key);
void mpt_index_remove(struct mpt_index *ix, uint32_t slot);

/* First slot whose key equals key, or MPT_NIL; mpt_index_next continues the search. */
uint32_t mpt_index_find(const struct mpt_index *ix, uint64_t key);
uint32_t mpt_index_next(const struct mpt_index *ix, uint32_t slot);

#endif
