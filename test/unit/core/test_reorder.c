/* core/reorder: flow datagrams put back into counter order, counters without flow data passed
 * over, gaps given up after the timeout and late comers delivered at once, bounded entries, and
 * the gap timeout from the paths' delays. */
#include "core/reorder.h"
#include "task.h"

#define MAXN 20000

static struct mpt_reorder r;
static struct mpt_window w;
static uint64_t out[MAXN];
static unsigned nout;
static uint8_t buf[2048];

static uint64_t rng = 88172645463325252ULL;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static void setup(unsigned nent)
{
    ASSERT_EQ(mpt_reorder_init(&r, 2, nent), 0);
    mpt_reorder_reset(&r, 0, 7);
    mpt_window_init(&w);
    nout = 0;
}

static void drain(uint64_t now, int flush)
{
    const struct mpt_reorder_ent *e;

    while ((e = mpt_reorder_pop(&r, 0, &w, now, flush))) {
        ASSERT_EQ(e->tag, e->ctr);
        ASSERT_EQ(e->data[0], (uint8_t)e->ctr);
        out[nout++] = e->ctr;
    }
}

/* A datagram with counter ctr authenticates at now: flow data (delivered, or held waiting at most
 * `wait` for those before it) or not. */
static void in(uint64_t ctr, uint64_t now, int flow, uint64_t wait)
{
    mpt_window_update(&w, ctr);
    if (flow) {
        memset(buf, (int)ctr, 64);
        if (mpt_reorder_arrive(&r, 0, &w, ctr, now, wait, 0, buf, 64, (uint32_t)ctr, 0) ==
            MPT_REORDER_NOW)
            out[nout++] = ctr;
    }
    drain(now, 0);
}

static void in_order(void)
{
    setup(16);
    for (uint64_t c = 1; c <= 1000; c++)
        in(c, c, 1, 10000);
    ASSERT_EQ(nout, 1000);
    for (unsigned i = 0; i < nout; i++)
        ASSERT_EQ(out[i], i + 1);
    ASSERT_EQ(r.st.held, 0);
    ASSERT_EQ(r.used, 0);
    mpt_reorder_free(&r);
}

static void swap(void)
{
    setup(16);
    in(2, 10, 1, 10000);
    ASSERT_EQ(nout, 0);
    ASSERT_EQ(r.used, 1);
    in(1, 20, 1, 10000);
    ASSERT_EQ(nout, 2);
    ASSERT_EQ(out[0], 1);
    ASSERT_EQ(out[1], 2);
    ASSERT_EQ(r.st.held, 1);
    drain(30, 0);
    ASSERT_EQ(r.used, 0);
    mpt_reorder_free(&r);
}

/* Probes, acks and pieces consume counters too: they are passed over, waited for only when they
 * have not arrived. */
static void other_counters(void)
{
    setup(16);
    in(1, 1, 0, 10000); /* a probe ack */
    in(2, 2, 1, 10000); /* its turn: 1 arrived */
    ASSERT_EQ(nout, 1);
    in(4, 3, 1, 10000); /* 3 missing */
    ASSERT_EQ(nout, 1);
    in(3, 4, 0, 10000); /* 3 comes, no flow data: 4 may go */
    ASSERT_EQ(nout, 2);
    ASSERT_EQ(out[1], 4);
    in(6, 5, 0, 10000); /* a probe before its time */
    in(5, 6, 1, 10000);
    in(7, 7, 1, 10000);
    ASSERT_EQ(nout, 4);
    ASSERT_EQ(out[2], 5);
    ASSERT_EQ(out[3], 7);
    ASSERT_EQ(r.st.held, 1);
    mpt_reorder_free(&r);
}

static void gap_timeout(void)
{
    setup(16);
    in(2, 1000, 1, 5000); /* 1 lost */
    in(3, 1100, 1, 5000);
    ASSERT_EQ(nout, 0);
    ASSERT_EQ(mpt_reorder_deadline(&r, 0), 6000);
    drain(5999, 0);
    ASSERT_EQ(nout, 0);
    drain(6000, 0);
    ASSERT_EQ(nout, 2);
    ASSERT_EQ(out[0], 2);
    ASSERT_EQ(out[1], 3);
    ASSERT_EQ(r.st.gaps, 1);
    ASSERT_EQ(mpt_reorder_deadline(&r, 0), UINT64_MAX);
    ASSERT_EQ(r.q[0].extra_us, 0);
    in(1, 7000, 1, 5000); /* later than its gap: at once, and later waits are longer */
    ASSERT_EQ(nout, 3);
    ASSERT_EQ(out[2], 1);
    ASSERT_EQ(r.st.late, 1);
    ASSERT_EQ(r.q[0].extra_us, 2250 /* 1 ms late: a quarter more, and 1 ms */);
    in(9, 7050, 1, 5000);
    ASSERT_EQ(r.q[0].extra_us, 2250);
    in(10, 4100000, 1, 5000); /* 4 s later, nothing late since: halved */
    ASSERT_EQ(r.q[0].extra_us, 1125);
    for (uint64_t c = 4; c <= 8; c++)
        in(c, 4100000, 1, 5000);
    ASSERT_EQ(nout, 10);
    mpt_reorder_free(&r);
}

/* Three paths of unequal delay, no loss: everything comes out in order, exactly once, each
 * datagram waiting for those before it the slowest path's delay less its own, and a margin. */
static void three_paths(void)
{
    static const uint64_t delay[3] = {2000, 15000, 40000};
    static uint64_t at[MAXN];
    unsigned n = 6000, next_in = 0;
    uint64_t late_max = 0;
    uint64_t now;

    setup(4096);
    for (unsigned i = 0; i < n; i++)
        at[i] = (uint64_t)i * 500 + delay[i % 3] + rnd() % 300;
    for (now = 0; nout < n && now < 10000000; now += 100) {
        for (unsigned i = next_in; i < n; i++)
            if (at[i] >= now && at[i] < now + 100) {
                unsigned before = nout;
                in(i + 1, now, 1, 40000 - delay[i % 3] + MPT_REORDER_MARGIN_US);
                for (unsigned k = before; k < nout; k++) {
                    uint64_t d = now - ((out[k] - 1) * 500 + delay[(out[k] - 1) % 3]);
                    late_max = d > late_max ? d : late_max;
                }
            }
        while (next_in < n && at[next_in] < now)
            next_in++;
        drain(now, 0);
    }
    ASSERT_EQ(nout, n);
    for (unsigned i = 0; i < n; i++)
        ASSERT_EQ(out[i], i + 1);
    ASSERT_EQ(r.st.gaps, 0);
    ASSERT_EQ(r.st.late, 0);
    printf("three paths, 2/15/40 ms: %u delivered in order, %llu held, the longest wait %.1f ms "
           "(limit: the delay difference 38 ms and jitter)\n",
           nout, (unsigned long long)r.st.held, (double)late_max / 1000);
    ASSERT_LT(late_max, 38300);
    mpt_reorder_free(&r);
}

/* Random order within a distance, random loss, datagrams without flow data among them: every
 * flow datagram delivered once, in order but for the late ones. */
static void shuffled_lossy(void)
{
    static uint64_t order[MAXN];
    static uint8_t seen[MAXN + 1];
    unsigned n = 10000, delivered_late = 0, expected = 0;
    uint64_t now = 0, last = 0;

    setup(256);
    for (unsigned i = 0; i < n; i++)
        order[i] = i + 1;
    for (unsigned i = 0; i < n; i++) {
        unsigned j = i + rnd() % 20;
        if (j < n) {
            uint64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        now += 100;
        if (rnd() % 100 < 3)
            continue;
        expected += order[i] % 7 != 0;
        unsigned before = nout;
        in(order[i], now, order[i] % 7 != 0, 1000);
        for (unsigned k = before; k < nout; k++) {
            ASSERT_EQ(seen[out[k]], 0);
            seen[out[k]] = 1;
            if (out[k] < last)
                delivered_late++;
            else
                last = out[k];
        }
    }
    now += 1000000;
    {
        unsigned before = nout;
        drain(now, 0);
        for (unsigned k = before; k < nout; k++) {
            ASSERT_EQ(seen[out[k]], 0);
            seen[out[k]] = 1;
        }
    }
    for (unsigned i = 1; i <= n; i++)
        if (i % 7 == 0)
            ASSERT_EQ(seen[i], 0);
    ASSERT_EQ(r.used, 0);
    ASSERT_EQ(delivered_late, r.st.late);
    printf("shuffled within 20, 3%% lost: %u delivered, %llu held, %llu gaps given up, %llu "
           "late\n",
           nout, (unsigned long long)r.st.held, (unsigned long long)r.st.gaps,
           (unsigned long long)r.st.late);
    ASSERT_EQ(nout, expected);
    mpt_reorder_free(&r);
}

static void bounded(void)
{
    setup(4);
    for (uint64_t c = 2; c <= 5; c++)
        in(c, c, 1, 1000000);
    ASSERT_EQ(nout, 0);
    ASSERT_EQ(r.used, 4);
    in(6, 6, 1, 1000000); /* no entry left: at once */
    ASSERT_EQ(nout, 1);
    ASSERT_EQ(r.st.overflow, 1);
    mpt_window_update(&w, 7);
    ASSERT_EQ(mpt_reorder_arrive(&r, 0, &w, 7, 7, 1000000, 0, buf, MPT_REORDER_CHUNK + 1, 7, 0),
              MPT_REORDER_NOW);
    ASSERT_EQ(r.st.overflow, 2);
    /* Flushed (the session re-keyed): in order, whatever is missing. */
    drain(8, 1);
    ASSERT_EQ(nout, 5);
    for (unsigned i = 1; i < 5; i++)
        ASSERT_EQ(out[i], i + 1);
    ASSERT_EQ(r.used, 0);
    /* Reset drops what is held and frees its entries. */
    in(10, 9, 1, 1000000);
    ASSERT_EQ(r.used, 1);
    mpt_reorder_reset(&r, 0, 8);
    ASSERT_EQ(r.used, 0);
    ASSERT_EQ(r.q[0].sid, 8);
    ASSERT_EQ(r.q[0].next, 1);
    mpt_reorder_free(&r);
}

/* The wait from round-trip times alone (no one-way samples). */
static uint64_t srtt_wait(const uint64_t *srtt, uint32_t mask, unsigned n, unsigned path,
                          uint64_t extra, uint64_t cap)
{
    const struct mpt_owd *owd[4] = {NULL, NULL, NULL, NULL};
    int64_t hi[4], lo[4], base[4];
    uint32_t known = mpt_reorder_delays(owd, srtt, mask, n, hi, lo, base);

    return mpt_reorder_wait(hi, lo, known, n, path, extra, cap);
}

static void wait(void)
{
    uint64_t srtt[4] = {4000, 30000, 80000, 0};
    const uint64_t m = MPT_REORDER_MARGIN_US;

    /* The slowest path's one-way delay less this one's (half the RTTs), plus the margin. */
    ASSERT_EQ(srtt_wait(srtt, 0x7, 3, 0, 0, 100000), 38000 + m);
    ASSERT_EQ(srtt_wait(srtt, 0x7, 3, 1, 0, 100000), 25000 + m);
    ASSERT_EQ(srtt_wait(srtt, 0x7, 3, 2, 0, 100000), m);
    ASSERT_EQ(srtt_wait(srtt, 0x3, 3, 0, 0, 100000), 13000 + m);
    /* Not measured, or not among the paths: as the fastest. */
    ASSERT_EQ(srtt_wait(srtt, 0xf, 4, 3, 0, 100000), 38000 + m);
    ASSERT_EQ(srtt_wait(srtt, 0x6, 3, 0, 0, 100000), 25000 + m);
    ASSERT_EQ(srtt_wait(srtt, 0x7, 3, 0, 0, 20000), 20000);
    ASSERT_EQ(srtt_wait(srtt, 0x1, 3, 0, 0, 100000), m);
    ASSERT_EQ(srtt_wait(srtt, 0x7, 3, 0, 7000, 100000), 45000 + m);
    ASSERT_EQ(srtt_wait(srtt, 0, 3, 0, 0, 100000), m);
}

/* One-way delays measured at the receiver: a queue on one direction of the slow path counts
 * whole (half the RTT would count half of it), the clocks' offset cancels, whatever its sign,
 * and the wait spans the range of the recent samples. */
static void wait_one_way(void)
{
    /* The RTTs say 4, 30 and 80 ms; the slow path's queue this way has grown to 25 ms. */
    uint64_t srtt[3] = {4000, 30000, 80000};
    const uint64_t m = MPT_REORDER_MARGIN_US;
    static const uint64_t offsets[] = {0, 123456789012ULL, (uint64_t)-987654321098LL};

    for (unsigned k = 0; k < sizeof(offsets) / sizeof(offsets[0]); k++) {
        struct mpt_owd o[3];
        const struct mpt_owd *owd[3] = {&o[0], &o[1], &o[2]};
        int64_t hi[3], lo[3], base[3];
        uint64_t now = 5000000, off = offsets[k];
        uint32_t known;

        for (unsigned i = 0; i < 3; i++)
            mpt_owd_reset(&o[i]);
        /* sent by the sender's clock (ours + off), arrived after the path's delay */
        mpt_owd_add(&o[0], now + 2000, now + off);
        mpt_owd_add(&o[1], now + 15000, now + off);
        mpt_owd_add(&o[2], now + 40000, now + off);
        mpt_owd_add(&o[2], now + 200000 + 65000, now + 200000 + off);
        known = mpt_reorder_delays(owd, srtt, 0x7, 3, hi, lo, base);
        ASSERT_EQ(known, 0x7);
        /* 65 ms (the slow path's longest) less 2 ms */
        ASSERT_EQ(mpt_reorder_wait(hi, lo, known, 3, 0, 0, 100000), 63000 + m);
        ASSERT_EQ(mpt_reorder_wait(hi, lo, known, 3, 1, 0, 100000), 50000 + m);
        /* the slow path's own shortest sample: another datagram of it may be 25 ms ahead */
        ASSERT_EQ(mpt_reorder_wait(hi, lo, known, 3, 2, 0, 100000), 25000 + m);
        ASSERT_EQ(mpt_reorder_wait(hi, lo, known, 3, 0, 0, 50000), 50000);
        /* The hold: the slow path's lowest sample (40 ms) less this path's (2 ms); both at once
         * from mpt_reorder_times, as the ends ask for them. */
        ASSERT_EQ(mpt_reorder_hold(base, known, 3, 0, 100000), 38000);
        ASSERT_EQ(mpt_reorder_hold(base, known, 3, 2, 100000), 0);
        {
            uint64_t hold = 1;
            ASSERT_EQ(mpt_reorder_times(owd, srtt, 0x7, 3, 0, 0, 100000, &hold), 63000 + m);
            ASSERT_EQ(hold, 38000);
        }
        /* Old samples go: after four more of 45 ms the slow path's range is 45 ms alone. */
        for (unsigned j = 0; j < MPT_OWD_SAMPLES; j++)
            mpt_owd_add(&o[2], now + 400000 + 45000, now + 400000 + off);
        known = mpt_reorder_delays(owd, srtt, 0x7, 3, hi, lo, base);
        ASSERT_EQ(mpt_reorder_wait(hi, lo, known, 3, 0, 0, 100000), 43000 + m);
        ASSERT_EQ(mpt_reorder_wait(hi, lo, known, 3, 2, 0, 100000), m);
        /* A path of the mask with no sample yet: half the RTTs for all, as before. */
        mpt_owd_reset(&o[1]);
        known = mpt_reorder_delays(owd, srtt, 0x7, 3, hi, lo, base);
        ASSERT_EQ(mpt_reorder_wait(hi, lo, known, 3, 0, 0, 100000), 38000 + m);
        /* ... unless it is not among the paths in use. */
        known = mpt_reorder_delays(owd, srtt, 0x5, 3, hi, lo, base);
        ASSERT_EQ(known, 0x5);
        ASSERT_EQ(mpt_reorder_wait(hi, lo, known, 3, 0, 0, 100000), 43000 + m);
        /* The lowest sample lasts MPT_OWD_MIN_US: 10 s on, a sample of 55 ms (a standing queue)
         * is the slow path's delay without a queue until a lower one comes. */
        ASSERT_EQ(mpt_reorder_hold(base, known, 3, 0, 100000), 38000);
        mpt_owd_add(&o[2], now + MPT_OWD_MIN_US + 55000, now + MPT_OWD_MIN_US + off);
        known = mpt_reorder_delays(owd, srtt, 0x5, 3, hi, lo, base);
        ASSERT_EQ(mpt_reorder_hold(base, known, 3, 0, 100000), 43000); /* 45 ms still in the ring */
        for (unsigned j = 0; j < MPT_OWD_SAMPLES; j++)
            mpt_owd_add(&o[2], now + MPT_OWD_MIN_US + 55000, now + MPT_OWD_MIN_US + off);
        known = mpt_reorder_delays(owd, srtt, 0x5, 3, hi, lo, base);
        ASSERT_EQ(mpt_reorder_hold(base, known, 3, 0, 100000), 53000);
    }
}

int main(int argc, char **argv)
{
    static const struct task_case cases[] = {
        {"in_order", in_order},
        {"swap", swap},
        {"other_counters", other_counters},
        {"gap_timeout", gap_timeout},
        {"three_paths", three_paths},
        {"shuffled_lossy", shuffled_lossy},
        {"bounded", bounded},
        {"wait", wait},
        {"wait_one_way", wait_one_way},
        {NULL, NULL},
    };
    return task_run(cases, argc, argv);
}
