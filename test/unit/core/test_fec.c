/* core/fec: the block code over ISA-L, its REPAIR messages, the decoder's bounds, and the plan. */
#include <errno.h>
#include <math.h>
#include <time.h>

#include "core/fec.h"
#include "core/wire.h"
#include "test/task.h"

static uint64_t rng = 0x12345678;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static double unif(void)
{
    return (rnd() & 0xffffff) / (double)0x1000000;
}

#define SID 77

struct block {
    unsigned k, m;
    uint64_t ctr[MPT_FEC_K_MAX];
    size_t len[MPT_FEC_K_MAX];
    uint8_t msg[MPT_FEC_K_MAX][MPT_FEC_SRC_MAX];
    size_t rlen[MPT_FEC_M_MAX];
    uint8_t rep[MPT_FEC_M_MAX][MPT_REPAIR_MAX_LEN];
    uint64_t rctr[MPT_FEC_M_MAX];
};

/* Makes a block of k random FLOW messages from counter `ctr` on (skipping a few counters, as
 * probes do) and its m repairs. */
static void make_block(struct mpt_fec_tx *t, struct block *b, unsigned k, unsigned m, uint64_t *ctr,
                       size_t maxlen)
{
    b->k = k;
    b->m = m;
    for (unsigned i = 0; i < k; i++) {
        if (rnd() % 8 == 0)
            (*ctr)++; /* a counter that is no source (a probe) */
        b->ctr[i] = (*ctr)++;
        b->len[i] = MPT_FLOW_HDR_LEN + rnd() % (maxlen - MPT_FLOW_HDR_LEN + 1);
        b->msg[i][0] = MPT_INNER_FLOW;
        for (size_t j = 1; j < b->len[i]; j++)
            b->msg[i][j] = (uint8_t)rnd();
        ASSERT(mpt_fec_tx_fits(t, b->ctr[i], k));
        ASSERT_EQ(mpt_fec_tx_add(t, b->ctr[i], b->msg[i], b->len[i], 1000), i + 1);
    }
    ASSERT_EQ(mpt_fec_tx_close(t, m), m);
    for (unsigned j = 0; j < m; j++) {
        b->rlen[j] = mpt_fec_tx_repair(t, j, b->rep[j]);
        b->rctr[j] = (*ctr)++;
    }
}

/* Delivers the block's symbols not in `lost` (bit i < k: source i; k + j: repair j) in the
 * order given; returns the number of sources recovered (each checked byte for byte). */
static unsigned deliver(struct mpt_fec_rx *r, const struct block *b, const uint8_t *lost,
                        const unsigned *order)
{
    unsigned got = 0, n = b->k + b->m;
    uint8_t seen[MPT_FEC_K_MAX] = {0};

    for (unsigned x = 0; x < n; x++) {
        unsigned i = order ? order[x] : x;
        const struct mpt_fec_out *o;
        if (lost[i])
            continue;
        if (i < b->k)
            mpt_fec_rx_source(r, SID, b->ctr[i], b->msg[i], b->len[i], 2000);
        else
            ASSERT_EQ(mpt_fec_rx_repair(r, SID, b->rctr[i - b->k], b->rep[i - b->k],
                                        b->rlen[i - b->k], 2000, 50000),
                      0);
        while ((o = mpt_fec_rx_take(r))) {
            unsigned s;
            for (s = 0; s < b->k && b->ctr[s] != o->ctr; s++)
                ;
            ASSERT(s < b->k);
            ASSERT(!seen[s]);
            ASSERT_EQ(o->sid, SID);
            ASSERT_EQ(o->len, b->len[s]);
            ASSERT_MEM_EQ(o->data, b->msg[s], b->len[s]);
            seen[s] = 1;
            got += lost[s]; /* or still on its way: rebuilt before it came */
        }
    }
    return got;
}

/* Any m of the k + m symbols lost: every lost source comes back, exactly. */
static void round_trip(void)
{
    static struct block b;
    struct mpt_fec_tx t;
    struct mpt_fec_rx r;
    uint64_t ctr = 1;
    static const unsigned km[][2] = {{1, 1}, {2, 1}, {4, 2}, {10, 6}, {32, 16}, {64, 32}, {64, 1}};

    ASSERT_EQ(mpt_fec_tx_init(&t), 0);
    ASSERT_EQ(mpt_fec_rx_init(&r, 1024, 8), 0);
    for (unsigned c = 0; c < sizeof(km) / sizeof(km[0]); c++) {
        for (unsigned trial = 0; trial < 20; trial++) {
            uint8_t lost[MPT_FEC_K_MAX + MPT_FEC_M_MAX] = {0};
            unsigned k = km[c][0], m = km[c][1], nlost = 0, lost_src = 0;
            make_block(&t, &b, k, m, &ctr, trial % 2 ? 1472 : 200);
            while (nlost < m) {
                unsigned i = rnd() % (k + m);
                if (!lost[i]) {
                    lost[i] = 1;
                    nlost++;
                    lost_src += i < k;
                }
            }
            ASSERT_EQ(deliver(&r, &b, lost, NULL), lost_src);
        }
    }
    printf("recovered %" PRIu64 ", given up %" PRIu64 "\n", r.recovered, r.given_up);
    ASSERT_EQ(mpt_fec_rx_expire(&r, 1000000), UINT64_MAX);
    ASSERT_EQ(r.given_up, 0);
    mpt_fec_tx_free(&t);
    mpt_fec_rx_free(&r);
}

/* Every erasure pattern of a (6, 3) block, symbols in every arrival order of a few shuffles:
 * recoverable ones come back at once, the rest wait and are given up, counted, at their time. */
static void every_pattern(void)
{
    static struct block b;
    struct mpt_fec_tx t;
    struct mpt_fec_rx r;
    uint64_t ctr = 100, given = 0;

    ASSERT_EQ(mpt_fec_tx_init(&t), 0);
    ASSERT_EQ(mpt_fec_rx_init(&r, 256, 4), 0);
    for (unsigned pat = 0; pat < 1u << 9; pat++) {
        uint8_t lost[9];
        unsigned order[9], nl = 0, ls = 0;
        for (unsigned i = 0; i < 9; i++) {
            lost[i] = pat >> i & 1;
            nl += lost[i];
            ls += lost[i] && i < 6;
            order[i] = i;
        }
        for (unsigned i = 8; i > 0; i--) {
            unsigned j = rnd() % (i + 1), x = order[i];
            order[i] = order[j];
            order[j] = x;
        }
        make_block(&t, &b, 6, 3, &ctr, 300);
        unsigned got = deliver(&r, &b, lost, order);
        if (nl <= 3) {
            ASSERT_EQ(got, ls);
        } else {
            ASSERT_EQ(got, 0);
            /* Waiting only if a repair came and sources are missing. */
            unsigned reps = 0;
            for (unsigned i = 6; i < 9; i++)
                reps += !lost[i];
            if (reps && ls)
                given += ls;
        }
        mpt_fec_rx_expire(&r, 2000 + 2 * 50000); /* nothing came since: the wait twice */
    }
    printf("given up %" PRIu64 " (expected %" PRIu64 ")\n", r.given_up, given);
    ASSERT_EQ(r.given_up, given);
    mpt_fec_tx_free(&t);
    mpt_fec_rx_free(&r);
}

/* A repair before its sources, sources after the decode (duplicates of what was rebuilt are the
 * caller's window's business), and a wait that ends. */
static void waits(void)
{
    static struct block b;
    struct mpt_fec_tx t;
    struct mpt_fec_rx r;
    uint64_t ctr = 1;
    uint8_t src[MPT_FEC_K_MAX] = {0};

    ASSERT_EQ(mpt_fec_tx_init(&t), 0);
    ASSERT_EQ(mpt_fec_rx_init(&r, 256, 2), 0);
    make_block(&t, &b, 4, 2, &ctr, 100);
    /* Repairs 0 and 1 first: two sources missing with 2 + 2 symbols: rebuilt at once. */
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 10, 1000), 0);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(mpt_fec_rx_expire(&r, 10), 1010);
    mpt_fec_rx_source(&r, SID, b.ctr[0], b.msg[0], b.len[0], 11);
    ASSERT(!mpt_fec_rx_take(&r));
    mpt_fec_rx_source(&r, SID, b.ctr[1], b.msg[1], b.len[1], 12);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[1], b.rep[1], b.rlen[1], 13, 1000), 0);
    for (unsigned i = 0; i < 2; i++) {
        const struct mpt_fec_out *o = mpt_fec_rx_take(&r);
        ASSERT(o);
        ASSERT_EQ(o->ctr, b.ctr[2 + i]);
        ASSERT_MEM_EQ(o->data, b.msg[2 + i], b.len[2 + i]);
    }
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(mpt_fec_rx_expire(&r, 14), UINT64_MAX);
    /* Only one symbol of three missing comes: given up at the deadline once a datagram came
     * since (until then the receiver may have been stalled with the rest queued: 1 ms more each
     * time), 2 counted. */
    make_block(&t, &b, 4, 2, &ctr, 100);
    mpt_fec_rx_source(&r, SID, b.ctr[0], b.msg[0], b.len[0], 20);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 21, 1000), 0);
    mpt_fec_rx_source(&r, SID, b.ctr[3], b.msg[3], b.len[3], 22);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(mpt_fec_rx_expire(&r, 1020), 1021);
    ASSERT_EQ(mpt_fec_rx_expire(&r, 1021), 2021);
    ASSERT_EQ(r.given_up, 0);
    mpt_fec_rx_source(&r, SID, b.ctr[0], b.msg[0], b.len[0], 1030);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(mpt_fec_rx_expire(&r, 1031), UINT64_MAX);
    ASSERT_EQ(r.given_up, 2);
    /* Nothing comes at all: given up when the wait is over twice. */
    make_block(&t, &b, 4, 2, &ctr, 100);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 2000, 1000), 0);
    ASSERT_EQ(mpt_fec_rx_expire(&r, 3500), 4500);
    ASSERT_EQ(mpt_fec_rx_expire(&r, 4000), UINT64_MAX);
    ASSERT_EQ(r.given_up, 2 + 4);
    /* A full pending table: the oldest gives way (and counts what it missed). */
    for (unsigned n = 0; n < 3; n++) {
        make_block(&t, &b, 4, 2, &ctr, 100);
        ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 30 + n, 1000), 0);
    }
    ASSERT_EQ(r.given_up, 2 + 4 + 4);
    (void)src;
    mpt_fec_tx_free(&t);
    mpt_fec_rx_free(&r);
}

/* Every field of a REPAIR out of range, or a repair disagreeing with its block's first, is
 * refused and changes nothing; truncations of a genuine one too. */
static void hostile(void)
{
    static struct block b;
    struct mpt_fec_tx t;
    struct mpt_fec_rx r;
    uint64_t ctr = 1;
    uint8_t x[MPT_REPAIR_MAX_LEN];

    ASSERT_EQ(mpt_fec_tx_init(&t), 0);
    ASSERT_EQ(mpt_fec_rx_init(&r, 256, 2), 0);
    make_block(&t, &b, 8, 4, &ctr, 500);
    for (size_t len = 0; len < b.rlen[0]; len++)
        ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], len, 1, 100), -EINVAL);
#define BAD(stmt)                                                                                  \
    do {                                                                                           \
        memcpy(x, b.rep[1], b.rlen[1]);                                                            \
        stmt;                                                                                      \
        ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[1], x, b.rlen[1], 1, 100), -EINVAL);           \
    } while (0)
    BAD(x[0] = MPT_INNER_FLOW);
    BAD(x[1] = 4);            /* j >= m */
    BAD(x[2] = 0);            /* k */
    BAD(x[2] = 65);           /* k */
    BAD(x[2] = 7);            /* k against the mask */
    BAD(x[3] = 0);            /* m */
    BAD(x[3] = 33);           /* m */
    BAD(mpt_put64(x + 4, 0)); /* first */
    BAD(mpt_put64(x + 4, b.rctr[1]));
    BAD(x[12] &= 0xfe);        /* the first counter is no source */
    BAD(x[27] |= 0x80);        /* a source at or after the repair */
    BAD(mpt_put16(x + 28, 2)); /* symbol length */
    BAD(mpt_put16(x + 28, 1475));
    BAD(x[30] = 1);
    ASSERT_EQ(r.repairs, 0);
    ASSERT_EQ(mpt_fec_rx_expire(&r, 0), UINT64_MAX);
    /* A block's first repair fixes it: a second one that disagrees is refused. */
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 1, 100), 0);
    memcpy(x, b.rep[1], b.rlen[1]);
    x[3] = 5;
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[1], x, b.rlen[1], 1, 100), -EINVAL);
    /* Another session's repair is another block. */
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID + 1, b.rctr[1], b.rep[1], b.rlen[1], 1, 100), 0);
    mpt_fec_rx_drop(&r, SID + 1);
    mpt_fec_rx_drop(&r, SID);
    ASSERT_EQ(mpt_fec_rx_expire(&r, 1000), UINT64_MAX);
    ASSERT_EQ(r.given_up, 0);
    mpt_fec_tx_free(&t);
    mpt_fec_rx_free(&r);
}

/* The encoder's limits: span, size, and a partial block closed with fewer sources. */
static void limits(void)
{
    struct mpt_fec_tx t;
    uint8_t m[8] = {MPT_INNER_FLOW};

    ASSERT_EQ(mpt_fec_tx_init(&t), 0);
    ASSERT_EQ(mpt_fec_tx_deadline(&t), UINT64_MAX);
    ASSERT(mpt_fec_tx_fits(&t, 5, 4));
    mpt_fec_tx_add(&t, 5, m, sizeof(m), 100);
    ASSERT_EQ(mpt_fec_tx_deadline(&t), 100 + MPT_FEC_BLOCK_US);
    ASSERT(mpt_fec_tx_fits(&t, 5 + MPT_FEC_SPAN - 1, 4));
    ASSERT(!mpt_fec_tx_fits(&t, 5 + MPT_FEC_SPAN, 4));
    ASSERT(!mpt_fec_tx_fits(&t, 5, 4));
    mpt_fec_tx_add(&t, 6, m, sizeof(m), 100);
    ASSERT(!mpt_fec_tx_fits(&t, 7, 2));
    ASSERT_EQ(mpt_fec_tx_close(&t, 1), 1);
    ASSERT_EQ(mpt_fec_tx_deadline(&t), UINT64_MAX);
    ASSERT_EQ(mpt_fec_tx_close(&t, 1), 0);
    ASSERT(!mpt_fec_protects(m, 0));
    ASSERT(mpt_fec_protects(m, MPT_FEC_SRC_MAX));
    ASSERT(!mpt_fec_protects(m, MPT_FEC_SRC_MAX + 1));
    m[0] = MPT_INNER_PROBE;
    ASSERT(!mpt_fec_protects(m, sizeof(m)));
    m[0] = MPT_INNER_REPAIR;
    ASSERT(!mpt_fec_protects(m, sizeof(m)));
    mpt_fec_tx_free(&t);
}

/* The model against exact binomial sums, and the plan's choices. */
static void plan(void)
{
    unsigned src[3] = {4, 0, 0}, rep[3] = {0, 0, 0}, share[MPT_FEC_PATHS], w[3] = {1, 1, 1};
    double loss[3] = {0.1, 0.1, 0.1};

    /* No repair: each source lost with p. */
    ASSERT(fabs(mpt_fec_residual(src, rep, loss, 3) - 0.1) < 1e-9);
    /* k = 1, m = 1 on one path: both lost, p^2. */
    src[0] = 1;
    rep[0] = 1;
    ASSERT(fabs(mpt_fec_residual(src, rep, loss, 3) - 0.01) < 1e-9);
    /* k = 2, m = 1: a source lost with another symbol: p * (1 - (1-p)^2). */
    src[0] = 2;
    ASSERT(fabs(mpt_fec_residual(src, rep, loss, 3) - 0.1 * (1 - 0.81)) < 1e-9);
    /* The plan: no loss, no repair; more loss, more repair; a dead path is survived only with
     * repairs on the others. */
    loss[0] = loss[1] = loss[2] = 0;
    ASSERT_EQ(mpt_fec_plan(64, loss, w, 7, 3, 0.001, share), 0);
    unsigned last = 0;
    for (double p = 0.01; p < 0.3; p += 0.05) {
        loss[0] = loss[1] = loss[2] = p;
        unsigned m = mpt_fec_plan(64, loss, w, 7, 3, 0.001, share);
        unsigned s3[3] = {22, 21, 21};
        printf("3 paths at %.2f: k 64 m %u (%u/%u/%u), residual %.6f (limit 0.001)\n", p, m,
               share[0], share[1], share[2], mpt_fec_residual(s3, share, loss, 3));
        if (m < MPT_FEC_M_MAX)
            ASSERT_DBL_LE(mpt_fec_residual(s3, share, loss, 3), 0.001);
        ASSERT_GE(m, last);
        ASSERT_EQ(share[0] + share[1] + share[2], m);
        last = m;
    }
    loss[0] = loss[1] = loss[2] = 0.2;
    ASSERT_LE(mpt_fec_plan(64, loss, w, 7, 3, 0.001, share), 32);
    loss[0] = 0.1;
    ASSERT_LE(mpt_fec_plan(64, loss, w, 1, 1, 0.001, share), 20);
}

/* The real coder over many blocks of random loss against the model: over 3 paths at 20%, each
 * block planned for target 0.001, the residual loss measured is under the target's bound and the
 * repair ratio is what the plan said. */
static void measured(void)
{
    static struct block b;
    struct mpt_fec_tx t;
    struct mpt_fec_rx r;
    static const double cases[][4] = {
        /* paths, loss each, k, max residual */
        {3, 0.20, 64, 0.002},
        {3, 0.05, 64, 0.002},
        {1, 0.10, 64, 0.002},
    };
    uint64_t ctr = 1;

    ASSERT_EQ(mpt_fec_tx_init(&t), 0);
    ASSERT_EQ(mpt_fec_rx_init(&r, 2048, 16), 0);
    for (unsigned c = 0; c < 3; c++) {
        unsigned np = (unsigned)cases[c][0], k = (unsigned)cases[c][2], share[MPT_FEC_PATHS];
        unsigned w[MPT_FEC_PATHS] = {1, 1, 1}, src[3] = {0}, m;
        double loss[3] = {cases[c][1], cases[c][1], cases[c][1]}, model;
        uint64_t sent = 0, lost = 0, rec0 = r.recovered;

        m = mpt_fec_plan(k, loss, w, (1u << np) - 1, np, 0.001, share);
        for (unsigned i = 0; i < k; i++)
            src[i % np]++;
        model = mpt_fec_residual(src, share, loss, np);
        for (unsigned blk = 0; blk < 3000; blk++) {
            uint8_t l[MPT_FEC_K_MAX + MPT_FEC_M_MAX] = {0};
            unsigned nl = 0;
            make_block(&t, &b, k, m, &ctr, 64);
            for (unsigned i = 0; i < k; i++)
                nl += l[i] = unif() < loss[i % np];
            for (unsigned j = 0; j < m; j++)
                l[k + j] = unif() < loss[j % np];
            unsigned got = deliver(&r, &b, l, NULL);
            sent += k;
            lost += nl - got;
            mpt_fec_rx_expire(&r, UINT64_MAX - 1);
        }
        double res = (double)lost / (double)sent;
        printf("%u path(s) at %.2f: k %u m %u (ratio %.3f): residual %.5f (model %.5f, limit "
               "%.5f), recovered %" PRIu64 "\n",
               np, cases[c][1], k, m, (double)(k + m) / k, res, model, cases[c][3],
               r.recovered - rec0);
        ASSERT_DBL_LE(model, 0.001);
        ASSERT_DBL_LE(res, cases[c][3]);
    }
    mpt_fec_tx_free(&t);
    mpt_fec_rx_free(&r);
}

/* A block that can be decoded is held hold_us for its missing sources: one that comes meanwhile
 * costs no decoding; one that does not is rebuilt by mpt_fec_rx_due once the hold is over. */
static void hold(void)
{
    static struct block b;
    struct mpt_fec_tx t;
    struct mpt_fec_rx r;
    const struct mpt_fec_out *o;
    uint64_t ctr = 1, sid = 0;

    ASSERT_EQ(mpt_fec_tx_init(&t), 0);
    ASSERT_EQ(mpt_fec_rx_init(&r, 1024, 8), 0);
    r.hold_us = 2000;
    /* Source 3 comes after the repairs. */
    make_block(&t, &b, 10, 4, &ctr, 500);
    for (unsigned i = 0; i < 10; i++)
        if (i != 3)
            mpt_fec_rx_source(&r, SID, b.ctr[i], b.msg[i], b.len[i], 2000);
    for (unsigned j = 0; j < 4; j++) {
        ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[j], b.rep[j], b.rlen[j], 2000, 50000), 0);
        ASSERT(!mpt_fec_rx_take(&r));
    }
    ASSERT_EQ(r.ready_us, 4000);
    ASSERT_EQ(mpt_fec_rx_expire(&r, 2000), 4000);
    ASSERT_EQ(mpt_fec_rx_due(&r, 3999, &sid), 0);
    mpt_fec_rx_source(&r, SID, b.ctr[3], b.msg[3], b.len[3], 3000);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(mpt_fec_rx_due(&r, 5000, &sid), 0);
    ASSERT_EQ(r.busy, 0);
    ASSERT_EQ(r.recovered, 0);
    /* Source 5 of the next block is lost: rebuilt at the hold's end, not before. */
    make_block(&t, &b, 10, 4, &ctr, 500);
    for (unsigned i = 0; i < 10; i++)
        if (i != 5)
            mpt_fec_rx_source(&r, SID, b.ctr[i], b.msg[i], b.len[i], 10000);
    for (unsigned j = 0; j < 4; j++)
        ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[j], b.rep[j], b.rlen[j], 10000, 50000), 0);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(mpt_fec_rx_expire(&r, 11000), 12000);
    ASSERT_EQ(mpt_fec_rx_due(&r, 11999, &sid), 0);
    ASSERT_EQ(mpt_fec_rx_due(&r, 12000, &sid), 1);
    ASSERT_EQ(sid, SID);
    o = mpt_fec_rx_take(&r);
    ASSERT(o);
    ASSERT_EQ(o->ctr, b.ctr[5]);
    ASSERT_EQ(o->len, b.len[5]);
    ASSERT_MEM_EQ(o->data, b.msg[5], b.len[5]);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(mpt_fec_rx_due(&r, 12000, &sid), 0);
    ASSERT_EQ(r.busy, 0);
    ASSERT_EQ(r.recovered, 1);
    printf("held block: its late source cost no decoding; a lost one rebuilt at the hold's end\n");
    mpt_fec_tx_free(&t);
    mpt_fec_rx_free(&r);
}

/* Each missing source's deadline runs from the first evidence that it is missing or late: the
 * arrival of a later source of its block, or of the block's first repair. One rebuilt after its
 * deadline is not delivered but given up and counted, so that no rebuilt message is later than
 * the wait after it was first missed; the block waits until its last missing source's deadline,
 * and a hold ends at the first deadline still ahead. */
static void deadlines(void)
{
    static struct block b;
    struct mpt_fec_tx t;
    struct mpt_fec_rx r;
    const struct mpt_fec_out *o;
    uint64_t ctr = 1, sid = 0, w = 50000;
    const uint8_t probe[1] = {MPT_INNER_PROBE}; /* a datagram that is no source */

    ASSERT_EQ(mpt_fec_tx_init(&t), 0);
    ASSERT_EQ(mpt_fec_rx_init(&r, 1024, 8), 0);
    /* Source 0 lost, source 1 came at 1000: source 0 was missed then. A repair at 1000 + w + 1
     * (another datagram came at the deadline) rebuilds it past its deadline: not delivered,
     * given up. */
    make_block(&t, &b, 4, 2, &ctr, 300);
    for (unsigned i = 1; i < 4; i++)
        mpt_fec_rx_source(&r, SID, b.ctr[i], b.msg[i], b.len[i], 1000);
    mpt_fec_rx_source(&r, SID, 999999, probe, sizeof(probe), 1000 + w);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 1000 + w + 1, w), 0);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(r.recovered, 0);
    ASSERT_EQ(r.given_up, 1);
    ASSERT_EQ(r.busy, 0);
    /* Its own copy, late, is still a source like any other (the window delivers it). */
    mpt_fec_rx_source(&r, SID, b.ctr[0], b.msg[0], b.len[0], 1000 + w + 2);
    ASSERT(!mpt_fec_rx_late(&r, SID, b.ctr[0]));
    /* At its deadline exactly: delivered. */
    make_block(&t, &b, 4, 2, &ctr, 300);
    for (unsigned i = 1; i < 4; i++)
        mpt_fec_rx_source(&r, SID, b.ctr[i], b.msg[i], b.len[i], 100000);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 100000 + w, w), 0);
    o = mpt_fec_rx_take(&r);
    ASSERT(o);
    ASSERT_EQ(o->ctr, b.ctr[0]);
    ASSERT_MEM_EQ(o->data, b.msg[0], b.len[0]);
    ASSERT_EQ(r.recovered, 1);
    ASSERT_EQ(r.given_up, 1);
    /* Sources 0 and 2 lost, 1 came at 200000 and 3 at 230000: source 0 is due at 200000 + w,
     * source 2 at 230000 + w. Repairs at 255000: source 2 delivered, source 0 given up. */
    make_block(&t, &b, 4, 2, &ctr, 300);
    mpt_fec_rx_source(&r, SID, b.ctr[1], b.msg[1], b.len[1], 200000);
    mpt_fec_rx_source(&r, SID, b.ctr[3], b.msg[3], b.len[3], 230000);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 240000, w), 0);
    ASSERT(!mpt_fec_rx_take(&r));
    /* The block waits until its last missing source's deadline, not its repair's + w. */
    ASSERT_EQ(mpt_fec_rx_expire(&r, 240000), 230000 + w);
    mpt_fec_rx_source(&r, SID, 999999, probe, sizeof(probe), 254000);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[1], b.rep[1], b.rlen[1], 255000, w), 0);
    o = mpt_fec_rx_take(&r);
    ASSERT(o);
    ASSERT_EQ(o->ctr, b.ctr[2]);
    ASSERT_MEM_EQ(o->data, b.msg[2], b.len[2]);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(r.recovered, 2);
    ASSERT_EQ(r.given_up, 2);
    /* The last source lost: only the repair says so; its deadline runs from the repair. */
    make_block(&t, &b, 4, 2, &ctr, 300);
    for (unsigned i = 0; i < 3; i++)
        mpt_fec_rx_source(&r, SID, b.ctr[i], b.msg[i], b.len[i], 300000);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[1], b.rep[1], b.rlen[1], 300000 + w - 10, w), 0);
    ASSERT(mpt_fec_rx_take(&r));
    ASSERT_EQ(r.recovered, 3);
    /* Nothing decodable: given up at the last deadline (once a datagram came since). */
    make_block(&t, &b, 4, 2, &ctr, 300);
    mpt_fec_rx_source(&r, SID, b.ctr[2], b.msg[2], b.len[2], 400000);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 420000, w), 0);
    ASSERT_EQ(mpt_fec_rx_expire(&r, 420000), 420000 + w); /* source 3: only the repair */
    mpt_fec_rx_source(&r, SID, b.ctr[2], b.msg[2], b.len[2], 420000 + w);
    ASSERT_EQ(mpt_fec_rx_expire(&r, 420000 + w), UINT64_MAX);
    ASSERT_EQ(r.given_up, 2 + 3);
    /* With a hold: it ends at the first deadline still ahead, where the source is delivered. */
    r.hold_us = 2000;
    make_block(&t, &b, 4, 2, &ctr, 300);
    for (unsigned i = 1; i < 4; i++)
        mpt_fec_rx_source(&r, SID, b.ctr[i], b.msg[i], b.len[i], 500000);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 500000 + w - 500, w), 0);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(r.ready_us, 500000 + w);
    ASSERT_EQ(mpt_fec_rx_due(&r, 500000 + w - 1, &sid), 0);
    ASSERT_EQ(mpt_fec_rx_due(&r, 500000 + w, &sid), 1);
    o = mpt_fec_rx_take(&r);
    ASSERT(o);
    ASSERT_EQ(o->ctr, b.ctr[0]);
    ASSERT_EQ(r.recovered, 4);
    ASSERT_EQ(r.given_up, 5);
    /* A timer late past the deadline with nothing read since (the receiver held off the CPU: the
     * datagrams queued meanwhile are not read yet): delivered, late, rather than given up for the
     * receiver's own stall; past the deadline with a datagram read since: given up. */
    make_block(&t, &b, 4, 2, &ctr, 300);
    for (unsigned i = 1; i < 4; i++)
        mpt_fec_rx_source(&r, SID, b.ctr[i], b.msg[i], b.len[i], 600000);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 600000 + w - 500, w), 0);
    ASSERT_EQ(mpt_fec_rx_due(&r, 600000 + w + 3000, &sid), 1);
    ASSERT(mpt_fec_rx_take(&r));
    ASSERT_EQ(r.recovered, 5);
    make_block(&t, &b, 4, 2, &ctr, 300);
    for (unsigned i = 1; i < 4; i++)
        mpt_fec_rx_source(&r, SID, b.ctr[i], b.msg[i], b.len[i], 700000);
    ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 700000 + w - 500, w), 0);
    mpt_fec_rx_source(&r, SID, 999999, probe, sizeof(probe), 700000 + w + 1000);
    ASSERT_EQ(mpt_fec_rx_due(&r, 700000 + w + 3000, &sid), 1);
    ASSERT(!mpt_fec_rx_take(&r));
    ASSERT_EQ(r.recovered, 5);
    ASSERT_EQ(r.given_up, 6);
    ASSERT_EQ(r.busy, 0);
    printf("rebuilt within the wait after first missed: delivered; after it: given up (%" PRIu64
           " recovered, %" PRIu64 " given up)\n",
           r.recovered, r.given_up);
    mpt_fec_tx_free(&t);
    mpt_fec_rx_free(&r);
}

/* Rebuilding one lost source of a block of 64 costs a pass of the code and the copies, not the
 * inversion of a 64 x 64 matrix (over a millisecond): CPU time per block, bounded loosely enough
 * for a loaded or sanitized build. */
static void decode_cost(void)
{
    static struct block b;
    struct mpt_fec_tx t;
    struct mpt_fec_rx r;
    struct timespec t0, t1;
    uint64_t ctr = 1;
    double us = 0;
    enum { BLOCKS = 200 };

    ASSERT_EQ(mpt_fec_tx_init(&t), 0);
    ASSERT_EQ(mpt_fec_rx_init(&r, 1024, 8), 0);
    for (unsigned n = 0; n < BLOCKS; n++) {
        uint8_t lost[MPT_FEC_K_MAX + MPT_FEC_M_MAX] = {0};
        make_block(&t, &b, 64, 9, &ctr, 1008);
        lost[rnd() % 64] = 1;
        for (unsigned i = 0; i < 64; i++)
            if (!lost[i])
                mpt_fec_rx_source(&r, SID, b.ctr[i], b.msg[i], b.len[i], 2000);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[0], b.rep[0], b.rlen[0], 2000, 50000), 0);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
        us += (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
        ASSERT(mpt_fec_rx_take(&r));
        for (unsigned j = 1; j < 9; j++) /* the block is done: dropped without work */
            ASSERT_EQ(mpt_fec_rx_repair(&r, SID, b.rctr[j], b.rep[j], b.rlen[j], 2000, 50000), 0);
    }
    printf("a block of 64 that lost 1 source: rebuilt in %.1f us of CPU (limit 300)\n",
           us / BLOCKS);
    ASSERT_EQ(r.recovered, BLOCKS);
    ASSERT_DBL_LE(us / BLOCKS, 300);
    mpt_fec_tx_free(&t);
    mpt_fec_rx_free(&r);
}

static const struct task_case cases[] = {
    {"round_trip", round_trip},
    {"every_pattern", every_pattern},
    {"waits", waits},
    {"hostile", hostile},
    {"limits", limits},
    {"plan", plan},
    {"measured", measured},
    {"hold", hold},
    {"deadlines", deadlines},
    {"decode_cost", decode_cost},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
