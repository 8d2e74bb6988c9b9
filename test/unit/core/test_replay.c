/* core/replay: the sliding window of PROTOCOL.md §6, both as anti-replay and as de-duplication
 * of multipath copies. */
#include "core/impair.h"
#include "core/replay.h"
#include "task.h"

/* Check, then record if fresh: what mpt_data_open does around the AEAD. Returns 1 if accepted. */
static int accept(struct mpt_window *w, uint64_t ctr)
{
    if (mpt_window_check(w, ctr) != 0)
        return 0;
    mpt_window_update(w, ctr);
    return 1;
}

static void in_order(void)
{
    struct mpt_window w;

    mpt_window_init(&w);
    for (uint64_t i = 1; i <= 100000; i++) {
        ASSERT_EQ(accept(&w, i), 1);
        ASSERT_EQ(w.top, i);
    }
    for (uint64_t i = 100000 - MPT_WINDOW_BITS + 1; i <= 100000; i++)
        ASSERT_EQ(mpt_window_check(&w, i), -1);
}

static void out_of_order(void)
{
    struct mpt_window w;

    mpt_window_init(&w);
    ASSERT_EQ(accept(&w, 100000), 1);
    /* Everything within the window behind the top, in descending order, is new once. */
    for (uint64_t i = 99999; i > 100000 - MPT_WINDOW_BITS; i--)
        ASSERT_EQ(accept(&w, i), 1);
    for (uint64_t i = 100000 - MPT_WINDOW_BITS + 1; i <= 100000; i++)
        ASSERT_EQ(accept(&w, i), 0);
    ASSERT_EQ(w.top, 100000);
    /* Interleaved: even counters first, odd ones afterwards. */
    mpt_window_init(&w);
    for (uint64_t i = 2; i <= 8000; i += 2)
        ASSERT_EQ(accept(&w, i), 1);
    for (uint64_t i = 1; i <= 8000; i += 2)
        ASSERT_EQ(accept(&w, i), 1);
    for (uint64_t i = 1; i <= 8000; i++)
        ASSERT_EQ(accept(&w, i), 0);
}

static void edge(void)
{
    struct mpt_window w;
    uint64_t top = 100000;

    mpt_window_init(&w);
    ASSERT_EQ(accept(&w, top), 1);
    ASSERT_EQ(mpt_window_check(&w, top - MPT_WINDOW_BITS), -1);
    ASSERT_EQ(accept(&w, top - MPT_WINDOW_BITS), 0);
    ASSERT_EQ(accept(&w, top - (MPT_WINDOW_BITS - 1)), 1);
    ASSERT_EQ(accept(&w, top - (MPT_WINDOW_BITS - 1)), 0);
    /* The window is exactly MPT_WINDOW_BITS wide at every bit position of the top. */
    for (uint64_t t = 90000; t < 90000 + 130; t++) {
        mpt_window_init(&w);
        ASSERT_EQ(accept(&w, t), 1);
        ASSERT_EQ(accept(&w, t - MPT_WINDOW_BITS), 0);
        ASSERT_EQ(accept(&w, t - MPT_WINDOW_BITS + 1), 1);
        ASSERT_EQ(accept(&w, t - 1), 1);
    }
}

static void duplicates(void)
{
    struct mpt_window w;

    mpt_window_init(&w);
    for (uint64_t i = 1; i <= 1000; i++) {
        ASSERT_EQ(accept(&w, i), 1);
        ASSERT_EQ(accept(&w, i), 0);
        ASSERT_EQ(accept(&w, i), 0);
    }
    /* Old duplicates stay rejected while the top advances by less than the window. */
    for (uint64_t i = 1001; i <= 1000 + MPT_WINDOW_BITS - 1000; i++)
        ASSERT_EQ(accept(&w, i), 1);
    for (uint64_t i = 1; i <= 1000; i++)
        ASSERT_EQ(accept(&w, i), 0);
}

static void huge_jump(void)
{
    struct mpt_window w;

    mpt_window_init(&w);
    for (uint64_t i = 1; i <= 300; i++)
        ASSERT_EQ(accept(&w, i), 1);
    /* A jump far beyond the window clears it: the old bits must not reappear as seen. */
    ASSERT_EQ(accept(&w, 1000000), 1);
    for (uint64_t i = 1000000 - MPT_WINDOW_BITS + 1; i < 1000000; i++)
        ASSERT_EQ(mpt_window_check(&w, i), 0);
    ASSERT_EQ(mpt_window_check(&w, 300), -1);
    /* Jumps of exactly one ring length and near the top of the counter space. */
    ASSERT_EQ(accept(&w, 1000000 + 64 * MPT_WINDOW_WORDS), 1);
    ASSERT_EQ(mpt_window_check(&w, 1000000 + 64 * MPT_WINDOW_WORDS - 1), 0);
    ASSERT_EQ(accept(&w, UINT64_MAX - 5), 1);
    ASSERT_EQ(accept(&w, UINT64_MAX - 5), 0);
    ASSERT_EQ(accept(&w, UINT64_MAX - 6), 1);
    ASSERT_EQ(accept(&w, UINT64_MAX), 1);
    ASSERT_EQ(accept(&w, UINT64_MAX), 0);
    ASSERT_EQ(accept(&w, UINT64_MAX - 6), 0);
    ASSERT_EQ(accept(&w, UINT64_MAX - MPT_WINDOW_BITS), 0);
}

static void zero_rejected(void)
{
    struct mpt_window w;

    mpt_window_init(&w);
    ASSERT_EQ(mpt_window_check(&w, 0), -1);
    ASSERT_EQ(accept(&w, 5), 1);
    ASSERT_EQ(mpt_window_check(&w, 0), -1);
}

static void check_read_only(void)
{
    struct mpt_window w;

    mpt_window_init(&w);
    ASSERT_EQ(mpt_window_check(&w, 7), 0);
    ASSERT_EQ(mpt_window_check(&w, 7), 0);
    ASSERT_EQ(w.top, 0);
    ASSERT_EQ(accept(&w, 7), 1);
    ASSERT_EQ(mpt_window_check(&w, 9000), 0);
    ASSERT_EQ(mpt_window_check(&w, 9000), 0);
    ASSERT_EQ(mpt_window_check(&w, 6), 0);
    ASSERT_EQ(mpt_window_check(&w, 6), 0);
    ASSERT_EQ(w.top, 7);
}

struct keyed {
    uint64_t key, ctr;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;

    return x->key < y->key ? -1 : x->key > y->key;
}

/* 100k counters, each sent 1 to 3 times, then shuffled: every counter is accepted at most once,
 * and exactly when a reference model (a set of every counter seen, plus the top) says so. With a
 * bounded shuffle, as multipath delivery produces, every counter is accepted exactly once. */
static void permutation_run(uint64_t spread)
{
    enum { N = 100000 };
    static struct keyed seq[3 * N];
    static uint8_t seen[N + 1];
    struct mpt_window w;
    struct mpt_rng r;
    size_t n = 0;
    uint64_t accepted = 0, top = 0;

    mpt_rng_seed(&r, 7, spread);
    for (uint64_t i = 1; i <= N; i++) {
        unsigned copies = 1 + (unsigned)(mpt_rng_next(&r) % 3);
        for (unsigned c = 0; c < copies; c++, n++) {
            seq[n].ctr = i;
            seq[n].key = n + mpt_rng_next(&r) % spread;
        }
    }
    qsort(seq, n, sizeof(seq[0]), keyed_cmp);
    memset(seen, 0, sizeof(seen));
    mpt_window_init(&w);
    for (size_t i = 0; i < n; i++) {
        uint64_t c = seq[i].ctr;
        int expect = !seen[c] && (c > top || top - c < MPT_WINDOW_BITS);
        ASSERT_EQ(accept(&w, c), expect);
        if (expect) {
            seen[c] = 1;
            accepted++;
            if (c > top)
                top = c;
        }
    }
    if (spread <= MPT_WINDOW_BITS)
        ASSERT_EQ(accepted, N);
    printf("spread %llu: %llu of %d counters accepted from %zu copies\n",
           (unsigned long long)spread, (unsigned long long)accepted, N, n);
}

static void permutation(void)
{
    permutation_run(8000);       /* about 4000 counters of displacement: all inside the window */
    permutation_run(3 * 100000); /* a full shuffle: many too old, none twice */
}

/* The ring of copies (PROTOCOL.md §5 "copies received"): each accepted counter counts once per
 * path, on the first copy of each path that carries the accepted copy's tag bits. */
static struct mpt_window cw;
static struct mpt_copies cr;

static void copy_accept(uint64_t ctr, const uint8_t *tag, unsigned path)
{
    ASSERT_EQ(mpt_window_check(&cw, ctr), 0);
    mpt_window_update(&cw, ctr);
    mpt_copies_accept(&cr, &cw, ctr, tag, path);
}

static void copies_once_per_path(void)
{
    const uint8_t tag[2] = {0xa5, 0x3c}, other[2] = {0xa5, 0x3d};

    mpt_window_init(&cw);
    mpt_copies_reset(&cr, 7);
    ASSERT_EQ(cr.sid, 7);
    copy_accept(1, tag, 0);
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, 1, tag, 0), 0);   /* path 0 delivered it */
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, 1, tag, 1), 1);   /* path 1's first copy */
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, 1, tag, 1), 0);   /* its second */
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, 1, other, 2), 0); /* not the accepted copy */
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, 1, tag, 2), 1);   /* the forgery took nothing */
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, 1, tag, 16), 0);  /* no such path */
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, 2, tag, 1), 0);   /* never accepted */
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, 0, tag, 1), 0);
    for (unsigned p = 3; p < MPT_COPIES_MAX_PATHS; p++)
        ASSERT_EQ(mpt_copies_dup(&cr, &cw, 1, tag, p), 1);
}

/* Stale copies count nothing: those older than the ring, and those of a counter whose slot a
 * newer one took; late ones accepted far behind the top are not recorded either. */
static void copies_stale(void)
{
    uint8_t tag[2];

    mpt_window_init(&cw);
    mpt_copies_reset(&cr, 1);
    for (uint64_t c = 1; c <= 3 * MPT_COPIES_SLOTS; c++) {
        tag[0] = (uint8_t)c;
        tag[1] = (uint8_t)(c >> 8);
        copy_accept(c, tag, 0);
    }
    for (uint64_t c = 1; c <= 3 * MPT_COPIES_SLOTS; c++) {
        tag[0] = (uint8_t)c;
        tag[1] = (uint8_t)(c >> 8);
        ASSERT_EQ(mpt_copies_dup(&cr, &cw, c, tag, 1), c > 2 * MPT_COPIES_SLOTS);
    }
    /* A counter accepted out of order beyond the ring's reach: its slot is not touched. */
    mpt_window_init(&cw);
    mpt_copies_reset(&cr, 2);
    tag[0] = 1;
    tag[1] = 2;
    copy_accept(MPT_COPIES_SLOTS + 5, tag, 0);
    copy_accept(5, tag, 0);
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, 5, tag, 1), 0);
    ASSERT_EQ(mpt_copies_dup(&cr, &cw, MPT_COPIES_SLOTS + 5, tag, 1), 1);
    printf("ring of %u counters, %zu bytes\n", MPT_COPIES_SLOTS, sizeof(struct mpt_copies));
}

static const struct task_case cases[] = {
    {"copies_once_per_path", copies_once_per_path},
    {"copies_stale", copies_stale},
    {"in_order", in_order},
    {"out_of_order", out_of_order},
    {"edge", edge},
    {"duplicates", duplicates},
    {"huge_jump", huge_jump},
    {"zero_rejected", zero_rejected},
    {"check_read_only", check_read_only},
    {"permutation", permutation},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
