/* core/table: the LRU slot allocator and the hash index from keys to slots. */
#include "core/impair.h"
#include "core/table.h"
#include "task.h"

/* Walks the used slots from the least recently used; returns how many, writes them to out. */
static uint32_t lru_order(const struct mpt_slots *s, uint32_t *out)
{
    uint32_t n = 0;

    for (uint32_t i = mpt_slots_oldest(s); i != MPT_NIL; i = s->prev[i])
        out[n++] = i;
    return n;
}

static void slots_alloc_release(void)
{
    struct mpt_slots s;
    uint32_t got[8], order[8];
    uint8_t seen[8] = {0};

    ASSERT_EQ(mpt_slots_init(&s, 8), 0);
    ASSERT(mpt_slots_oldest(&s) == MPT_NIL);
    for (int i = 0; i < 8; i++) {
        got[i] = mpt_slots_alloc(&s);
        ASSERT_LT(got[i], 8);
        ASSERT_EQ(seen[got[i]], 0);
        seen[got[i]] = 1;
        ASSERT_EQ(s.used, (uint32_t)i + 1);
    }
    ASSERT(mpt_slots_alloc(&s) == MPT_NIL);
    ASSERT_EQ(s.used, 8);
    /* Oldest first: allocation order. */
    ASSERT_EQ(lru_order(&s, order), 8);
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(order[i], got[i]);
    mpt_slots_release(&s, got[3]);
    mpt_slots_release(&s, got[0]);
    mpt_slots_release(&s, got[7]);
    ASSERT_EQ(s.used, 5);
    ASSERT_EQ(lru_order(&s, order), 5);
    ASSERT_EQ(order[0], got[1]);
    ASSERT_EQ(order[4], got[6]);
    /* Released slots come back, and only those. */
    uint32_t a = mpt_slots_alloc(&s), b = mpt_slots_alloc(&s), c = mpt_slots_alloc(&s);
    ASSERT(mpt_slots_alloc(&s) == MPT_NIL);
    ASSERT((1u << a | 1u << b | 1u << c) == (1u << got[3] | 1u << got[0] | 1u << got[7]));
    ASSERT_EQ(lru_order(&s, order), 8);
    ASSERT_EQ(order[7], c);
    /* Release everything, in a scrambled order, then all slots are free again. */
    for (int i = 0; i < 8; i++)
        mpt_slots_release(&s, (uint32_t)(i * 5 % 8));
    ASSERT_EQ(s.used, 0);
    ASSERT(mpt_slots_oldest(&s) == MPT_NIL);
    ASSERT(s.head == MPT_NIL);
    for (int i = 0; i < 8; i++)
        ASSERT(mpt_slots_alloc(&s) != MPT_NIL);
    ASSERT(mpt_slots_alloc(&s) == MPT_NIL);
    mpt_slots_free(&s);
}

static void slots_lru(void)
{
    struct mpt_slots s;
    uint32_t v[5], order[5];

    ASSERT_EQ(mpt_slots_init(&s, 5), 0);
    for (int i = 0; i < 5; i++)
        v[i] = mpt_slots_alloc(&s);
    mpt_slots_touch(&s, v[0]); /* 1 2 3 4 0 */
    mpt_slots_touch(&s, v[2]); /* 1 3 4 0 2 */
    mpt_slots_touch(&s, v[2]); /* the newest touched again: no change */
    mpt_slots_touch(&s, v[4]); /* 1 3 0 2 4 */
    ASSERT_EQ(lru_order(&s, order), 5);
    ASSERT_EQ(order[0], v[1]);
    ASSERT_EQ(order[1], v[3]);
    ASSERT_EQ(order[2], v[0]);
    ASSERT_EQ(order[3], v[2]);
    ASSERT_EQ(order[4], v[4]);
    ASSERT_EQ(s.head, v[4]);
    ASSERT_EQ(s.tail, v[1]);
    mpt_slots_release(&s, v[1]); /* the oldest */
    mpt_slots_release(&s, v[4]); /* the newest */
    ASSERT_EQ(lru_order(&s, order), 3);
    ASSERT_EQ(order[0], v[3]);
    ASSERT_EQ(order[2], v[2]);
    ASSERT_EQ(s.head, v[2]);
    uint32_t n = mpt_slots_alloc(&s);
    ASSERT_EQ(s.head, n);
    mpt_slots_release(&s, v[3]);
    mpt_slots_release(&s, v[0]);
    mpt_slots_release(&s, v[2]);
    mpt_slots_release(&s, n);
    ASSERT(s.head == MPT_NIL && s.tail == MPT_NIL);
    mpt_slots_free(&s);

    /* A table of one slot. */
    ASSERT_EQ(mpt_slots_init(&s, 1), 0);
    ASSERT_EQ(mpt_slots_alloc(&s), 0);
    ASSERT(mpt_slots_alloc(&s) == MPT_NIL);
    mpt_slots_touch(&s, 0);
    mpt_slots_release(&s, 0);
    ASSERT_EQ(mpt_slots_alloc(&s), 0);
    mpt_slots_free(&s);
}

/* A random sequence of alloc/touch/release against a reference list. */
static void slots_random(void)
{
    enum { CAP = 64 };
    struct mpt_slots s;
    struct mpt_rng r;
    uint32_t ref[CAP], nref = 0, order[CAP]; /* ref: oldest first */

    ASSERT_EQ(mpt_slots_init(&s, CAP), 0);
    mpt_rng_seed(&r, 3, 0);
    for (int step = 0; step < 200000; step++) {
        unsigned op = (unsigned)(mpt_rng_next(&r) % 3);
        if (op == 0) {
            uint32_t x = mpt_slots_alloc(&s);
            if (nref == CAP) {
                ASSERT(x == MPT_NIL);
                continue;
            }
            ASSERT_LT(x, CAP);
            for (uint32_t i = 0; i < nref; i++)
                ASSERT_NE(ref[i], x);
            ref[nref++] = x;
        } else if (nref) {
            uint32_t i = (uint32_t)(mpt_rng_next(&r) % nref), x = ref[i];
            memmove(ref + i, ref + i + 1, (nref - i - 1) * sizeof(ref[0]));
            if (op == 1) {
                mpt_slots_touch(&s, x);
                ref[nref - 1] = x;
            } else {
                mpt_slots_release(&s, x);
                nref--;
            }
        }
        ASSERT_EQ(s.used, nref);
        if (step % 97 == 0) {
            ASSERT_EQ(lru_order(&s, order), nref);
            ASSERT_MEM_EQ(order, ref, nref * sizeof(ref[0]));
        }
    }
    mpt_slots_free(&s);
}

static void index_basic(void)
{
    struct mpt_index ix;

    ASSERT_EQ(mpt_index_init(&ix, 100, 1234), 0);
    ASSERT(mpt_index_find(&ix, 42) == MPT_NIL);
    for (uint32_t i = 0; i < 100; i++)
        mpt_index_insert(&ix, i, 1000 + (uint64_t)i * 7919);
    for (uint32_t i = 0; i < 100; i++) {
        ASSERT_EQ(mpt_index_find(&ix, 1000 + (uint64_t)i * 7919), i);
        ASSERT(mpt_index_next(&ix, i) == MPT_NIL);
    }
    ASSERT(mpt_index_find(&ix, 999) == MPT_NIL);
    for (uint32_t i = 0; i < 100; i += 2)
        mpt_index_remove(&ix, i);
    for (uint32_t i = 0; i < 100; i++)
        ASSERT(mpt_index_find(&ix, 1000 + (uint64_t)i * 7919) == (i % 2 ? i : MPT_NIL));
    /* A removed slot can be inserted again under another key. */
    mpt_index_insert(&ix, 0, UINT64_MAX);
    ASSERT_EQ(mpt_index_find(&ix, UINT64_MAX), 0);
    ASSERT(mpt_index_find(&ix, 1000) == MPT_NIL);
    mpt_index_free(&ix);
}

/* Equal keys (several slots under one key, as the client's address hashes may collide) and
 * different keys in one bucket (a table with fewer buckets than keys). */
static void index_collisions(void)
{
    struct mpt_index ix;
    uint32_t n, s;
    uint8_t found[40];

    ASSERT_EQ(mpt_index_init(&ix, 40, 99), 0);
    for (uint32_t i = 0; i < 40; i++)
        mpt_index_insert(&ix, i, i % 4 == 0 ? 77 : 1000 + i);
    memset(found, 0, sizeof(found));
    n = 0;
    for (s = mpt_index_find(&ix, 77); s != MPT_NIL; s = mpt_index_next(&ix, s)) {
        ASSERT_EQ(s % 4, 0);
        ASSERT_EQ(found[s], 0);
        found[s] = 1;
        n++;
    }
    ASSERT_EQ(n, 10);
    /* Remove from the middle, the head and the tail of the equal-key chain. */
    mpt_index_remove(&ix, 20);
    mpt_index_remove(&ix, mpt_index_find(&ix, 77));
    n = 0;
    for (s = mpt_index_find(&ix, 77); s != MPT_NIL; s = mpt_index_next(&ix, s)) {
        ASSERT(s != 20);
        n++;
    }
    ASSERT_EQ(n, 8);
    for (uint32_t i = 0; i < 40; i++)
        if (i % 4)
            ASSERT_EQ(mpt_index_find(&ix, 1000 + i), i);
    /* With 64 buckets for 40 keys, chains hold several keys: every key still finds its slot. */
    for (uint32_t i = 0; i < 40; i++)
        if (i % 4) {
            mpt_index_remove(&ix, i);
            ASSERT(mpt_index_find(&ix, 1000 + i) == MPT_NIL);
            for (uint32_t j = i + 1; j < 40; j++)
                if (j % 4)
                    ASSERT_EQ(mpt_index_find(&ix, 1000 + j), j);
        }
    mpt_index_free(&ix);

    /* Many keys forced into very few buckets. */
    ASSERT_EQ(mpt_index_init(&ix, 1000, 5), 0);
    ix.mask = 1; /* two buckets */
    for (uint32_t i = 0; i < 1000; i++)
        mpt_index_insert(&ix, i, (uint64_t)i << 40);
    for (uint32_t i = 0; i < 1000; i += 3)
        mpt_index_remove(&ix, i);
    for (uint32_t i = 0; i < 1000; i++)
        ASSERT(mpt_index_find(&ix, (uint64_t)i << 40) == (i % 3 ? i : MPT_NIL));
    mpt_index_free(&ix);
}

static void index_seeded(void)
{
    struct mpt_index a, b;
    int differ = 0;

    /* The seed keys the bucket choice, so remote peers cannot aim at one chain. */
    ASSERT_EQ(mpt_index_init(&a, 1024, 1), 0);
    ASSERT_EQ(mpt_index_init(&b, 1024, 2), 0);
    for (uint32_t i = 0; i < 64; i++) {
        mpt_index_insert(&a, i, i);
        mpt_index_insert(&b, i, i);
    }
    for (uint32_t bk = 0; bk <= a.mask; bk++)
        differ += a.heads[bk] != b.heads[bk];
    ASSERT_GT(differ, 0);
    mpt_index_free(&a);
    mpt_index_free(&b);
}

static const struct task_case cases[] = {
    {"slots_alloc_release", slots_alloc_release},
    {"slots_lru", slots_lru},
    {"slots_random", slots_random},
    {"index_basic", index_basic},
    {"index_collisions", index_collisions},
    {"index_seeded", index_seeded},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
