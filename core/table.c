#include "core/table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int mpt_slots_init(struct mpt_slots *s, uint32_t cap)
{
    memset(s, 0, sizeof(*s));
    s->prev = malloc(sizeof(uint32_t) * (cap ? cap : 1));
    s->next = malloc(sizeof(uint32_t) * (cap ? cap : 1));
    if (!s->prev || !s->next) {
        mpt_slots_free(s);
        return -ENOMEM;
    }
    s->cap = cap;
    s->head = s->tail = MPT_NIL;
    s->free_head = cap ? 0 : MPT_NIL;
    for (uint32_t i = 0; i < cap; i++)
        s->next[i] = i + 1 < cap ? i + 1 : MPT_NIL;
    return 0;
}

void mpt_slots_free(struct mpt_slots *s)
{
    free(s->prev);
    free(s->next);
    memset(s, 0, sizeof(*s));
}

static void unlink_slot(struct mpt_slots *s, uint32_t slot)
{
    uint32_t p = s->prev[slot], n = s->next[slot];

    if (p != MPT_NIL)
        s->next[p] = n;
    else
        s->head = n;
    if (n != MPT_NIL)
        s->prev[n] = p;
    else
        s->tail = p;
}

static void link_head(struct mpt_slots *s, uint32_t slot)
{
    s->prev[slot] = MPT_NIL;
    s->next[slot] = s->head;
    if (s->head != MPT_NIL)
        s->prev[s->head] = slot;
    s->head = slot;
    if (s->tail == MPT_NIL)
        s->tail = slot;
}

uint32_t mpt_slots_alloc(struct mpt_slots *s)
{
    uint32_t slot = s->free_head;

    if (slot == MPT_NIL)
        return MPT_NIL;
    s->free_head = s->next[slot];
    link_head(s, slot);
    s->used++;
    return slot;
}

void mpt_slots_release(struct mpt_slots *s, uint32_t slot)
{
    unlink_slot(s, slot);
    s->next[slot] = s->free_head;
    s->prev[slot] = MPT_NIL;
    s->free_head = slot;
    s->used--;
}

void mpt_slots_touch(struct mpt_slots *s, uint32_t slot)
{
    if (s->head == slot)
        return;
    unlink_slot(s, slot);
    link_head(s, slot);
}

static uint32_t bucket(const struct mpt_index *ix, uint64_t key)
{
    uint64_t x = key ^ ix->seed;

    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (uint32_t)x & ix->mask;
}

int mpt_index_init(struct mpt_index *ix, uint32_t cap, uint64_t seed)
{
    uint32_t nb = 16;

    memset(ix, 0, sizeof(*ix));
    while (nb < cap && nb < (1u << 30))
        nb <<= 1;
    ix->heads = malloc(sizeof(uint32_t) * nb);
    ix->next = malloc(sizeof(uint32_t) * (cap ? cap : 1));
    ix->keys = malloc(sizeof(uint64_t) * (cap ? cap : 1));
    if (!ix->heads || !ix->next || !ix->keys) {
        mpt_index_free(ix);
        return -ENOMEM;
    }
    memset(ix->heads, 0xff, sizeof(uint32_t) * nb);
    ix->mask = nb - 1;
    ix->seed = seed;
    return 0;
}

void mpt_index_free(struct mpt_index *ix)
{
    free(ix->heads);
    free(ix->next);
    free(ix->keys);
    memset(ix, 0, sizeof(*ix));
}

void mpt_index_insert(struct mpt_index *ix, uint32_t slot, uint64_t key)
{
    uint32_t b = bucket(ix, key);

    ix->keys[slot] = key;
    ix->next[slot] = ix->heads[b];
    ix->heads[b] = slot;
}

void mpt_index_remove(struct mpt_index *ix, uint32_t slot)
{
    uint32_t *p = &ix->heads[bucket(ix, ix->keys[slot])];

    while (*p != MPT_NIL) {
        if (*p == slot) {
            *p = ix->next[slot];
            return;
        }
        p = &ix->next[*p];
    }
}

uint32_t mpt_index_find(const struct mpt_index *ix, uint64_t key)
{
    uint32_t s = ix->heads[bucket(ix, key)];

    while (s != MPT_NIL && ix->keys[s] != key)
        s = ix->next[s];
    return s;
}

uint32_t mpt_index_next(const struct mpt_index *ix, uint32_t slot)
{
    uint64_t key = ix->keys[slot];
    uint32_t s = ix->next[slot];

    while (s != MPT_NIL && ix->keys[s] != key)
        s = ix->next[s];
    return s;
}
