/* core/impair: the seeded impairment model of the bridge. Rates are measured over 100k draws
 * with tolerances of about 4 standard deviations. */
#include <errno.h>
#include <math.h>

#include "core/impair.h"
#include "task.h"

#define N 100000

static struct mpt_impair_params none(void)
{
    struct mpt_impair_params p;

    memset(&p, 0, sizeof(p));
    return p;
}

/* Feeds n datagrams of len bytes, `step_us` apart, and counts verdicts. */
struct tally {
    uint64_t dropped, dup, copies, flipped_copies;
};

static struct tally run(struct mpt_impair *im, int n, size_t len, uint64_t step_us)
{
    struct tally t = {0, 0, 0, 0};
    struct mpt_impair_verdict v;
    uint64_t now = 1000000;

    for (int i = 0; i < n; i++, now += step_us) {
        mpt_impair_decide(im, now, len, &v);
        if (v.ncopies == 0)
            t.dropped++;
        if (v.ncopies == 2)
            t.dup++;
        t.copies += v.ncopies;
        for (unsigned c = 0; c < v.ncopies; c++)
            if (v.copy[c].nflips)
                t.flipped_copies++;
    }
    return t;
}

static void assert_near(double measured, double expected, double tol)
{
    if (fabs(measured - expected) > tol) {
        fprintf(stderr, "measured %.5f, expected %.5f +- %.5f\n", measured, expected, tol);
        abort();
    }
}

static void rng_determinism(void)
{
    struct mpt_rng a, b, c, d;
    int same_c = 0, same_d = 0;

    mpt_rng_seed(&a, 42, 0);
    mpt_rng_seed(&b, 42, 0);
    mpt_rng_seed(&c, 43, 0);
    mpt_rng_seed(&d, 42, 1);
    for (int i = 0; i < 1000; i++) {
        uint64_t x = mpt_rng_next(&a);
        ASSERT(x == mpt_rng_next(&b));
        same_c += x == mpt_rng_next(&c);
        same_d += x == mpt_rng_next(&d);
    }
    ASSERT_EQ(same_c, 0);
    ASSERT_EQ(same_d, 0);
    for (int i = 0; i < N; i++) {
        double u = mpt_rng_unit(&a);
        ASSERT(u >= 0.0 && u < 1.0);
    }
}

static void seed_determinism(void)
{
    struct mpt_impair_params p = none(), p2;
    struct mpt_impair a, b, c, d;
    struct mpt_impair_verdict va, vb, vc, vd;
    int differ = 0;

    p.loss = 0.2;
    p.duplicate = 0.1;
    p.reorder = 0.05;
    p.corrupt = 0.05;
    p.delay_us = 20000;
    p.jitter_us = 5000;
    p2 = p;
    p2.delay_us = 70000;
    ASSERT_EQ(mpt_impair_init(&a, &p, 7, 0), 0);
    ASSERT_EQ(mpt_impair_init(&b, &p, 7, 0), 0);
    ASSERT_EQ(mpt_impair_init(&c, &p, 8, 0), 0);
    ASSERT_EQ(mpt_impair_init(&d, &p2, 7, 0), 0);
    for (int i = 0; i < 10000; i++) {
        uint64_t now = 1000 + (uint64_t)i * 300;
        mpt_impair_decide(&a, now, 1200, &va);
        mpt_impair_decide(&b, now, 1200, &vb);
        mpt_impair_decide(&c, now, 1200, &vc);
        mpt_impair_decide(&d, now, 1200, &vd);
        ASSERT_MEM_EQ(&va, &vb, sizeof(va));
        differ += va.ncopies != vc.ncopies;
        /* Another delay leaves the loss and duplication pattern of a seed alone. */
        ASSERT_EQ(va.ncopies, vd.ncopies);
    }
    ASSERT_MEM_EQ(&a.stats, &b.stats, sizeof(a.stats));
    ASSERT_GT(differ, 100);
}

static void passthrough(void)
{
    struct mpt_impair_params p = none();
    struct mpt_impair im;
    struct mpt_impair_verdict v;

    ASSERT_EQ(mpt_impair_params_none(&p), 1);
    ASSERT_EQ(mpt_impair_init(&im, &p, 1, 0), 0);
    for (uint64_t now = 5; now < 1000; now += 7) {
        mpt_impair_decide(&im, now, 100, &v);
        ASSERT_EQ(v.ncopies, 1);
        ASSERT_EQ(v.copy[0].send_at_us, now);
        ASSERT_EQ(v.copy[0].nflips, 0);
    }
    ASSERT_EQ(im.stats.received, im.stats.forwarded);
    ASSERT_EQ(im.stats.dropped, 0);
    p.jitter_us = 1;
    ASSERT_EQ(mpt_impair_params_none(&p), 0);
}

static void down(void)
{
    struct mpt_impair_params p = none();
    struct mpt_impair im;
    struct tally t;

    ASSERT_EQ(mpt_impair_init(&im, &p, 1, 0), 0);
    mpt_impair_set_down(&im, 1);
    t = run(&im, 1000, 10, 100);
    ASSERT_EQ(t.dropped, 1000);
    ASSERT_EQ(im.stats.dropped, 1000);
    mpt_impair_set_down(&im, 0);
    t = run(&im, 1000, 10, 100);
    ASSERT_EQ(t.dropped, 0);
    ASSERT_EQ(im.stats.received, 2000);
    ASSERT_EQ(im.stats.forwarded, 1000);
}

static void loss_rate(void)
{
    static const double ps[] = {0.0, 0.01, 0.2, 0.5, 1.0};
    struct mpt_impair im;
    struct tally t;

    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        struct mpt_impair_params p = none();
        double sd = sqrt(ps[i] * (1 - ps[i]) / N);

        p.loss = ps[i];
        ASSERT_EQ(mpt_impair_init(&im, &p, 1000 + i, 0), 0);
        t = run(&im, N, 100, 10);
        printf("loss %.2f: measured %.5f\n", ps[i], (double)t.dropped / N);
        assert_near((double)t.dropped / N, ps[i], 4 * sd + 1e-9);
        ASSERT_EQ(im.stats.dropped, t.dropped);
        ASSERT_EQ(im.stats.forwarded, N - t.dropped);
    }
}

static void duplicate_rate(void)
{
    struct mpt_impair_params p = none();
    struct mpt_impair im;
    struct tally t;

    p.duplicate = 0.1;
    ASSERT_EQ(mpt_impair_init(&im, &p, 3, 0), 0);
    t = run(&im, N, 100, 10);
    printf("duplicate 0.10: measured %.5f\n", (double)t.dup / N);
    assert_near((double)t.dup / N, 0.1, 4 * sqrt(0.09 / N));
    ASSERT_EQ(t.copies, N + t.dup);
    ASSERT_EQ(im.stats.duplicated, t.dup);
    ASSERT_EQ(im.stats.forwarded, t.copies);
}

static void reorder_rate(void)
{
    struct mpt_impair_params p = none();
    struct mpt_impair im;

    p.reorder = 0.05;
    ASSERT_EQ(mpt_impair_init(&im, &p, 4, 0), 0);
    run(&im, N, 100, 10);
    printf("reorder 0.05: measured %.5f\n", (double)im.stats.reordered / N);
    assert_near((double)im.stats.reordered / N, 0.05, 4 * sqrt(0.05 * 0.95 / N));
}

static int popcount8(uint8_t x)
{
    int n = 0;
    for (; x; x &= (uint8_t)(x - 1))
        n++;
    return n;
}

static void corrupt_rate(void)
{
    struct mpt_impair_params p = none();
    struct mpt_impair im;
    struct mpt_impair_verdict v;
    struct tally t;
    uint8_t buf[64], orig[64];

    p.corrupt = 0.1;
    ASSERT_EQ(mpt_impair_init(&im, &p, 5, 0), 0);
    t = run(&im, N, 100, 10);
    printf("corrupt 0.10: measured %.5f\n", (double)t.flipped_copies / N);
    assert_near((double)t.flipped_copies / N, 0.1, 4 * sqrt(0.09 / N));
    ASSERT_EQ(im.stats.corrupted, t.flipped_copies);

    /* Every corrupted copy differs in exactly nflips bits, 1 to 3, even in a 1-byte datagram. */
    p.corrupt = 1.0;
    for (size_t len = 1; len <= sizeof(buf); len += 9) {
        ASSERT_EQ(mpt_impair_init(&im, &p, len, 0), 0);
        for (int i = 0; i < 2000; i++) {
            int bits = 0;

            for (size_t k = 0; k < len; k++)
                orig[k] = buf[k] = (uint8_t)(i * 31 + k);
            mpt_impair_decide(&im, (uint64_t)i, len, &v);
            ASSERT_EQ(v.ncopies, 1);
            ASSERT_GE(v.copy[0].nflips, 1);
            ASSERT_LE(v.copy[0].nflips, 3);
            mpt_impair_apply(&v.copy[0], buf, len);
            for (size_t k = 0; k < len; k++)
                bits += popcount8((uint8_t)(buf[k] ^ orig[k]));
            ASSERT_EQ(bits, v.copy[0].nflips);
        }
    }
    /* Nothing to flip in an empty datagram. */
    mpt_impair_decide(&im, 5000, 0, &v);
    ASSERT_EQ(v.ncopies, 1);
    ASSERT_EQ(v.copy[0].nflips, 0);
}

static void delay_bounds(void)
{
    struct mpt_impair_params p = none();
    struct mpt_impair im;
    struct mpt_impair_verdict v;
    uint64_t now = 1000000, lo = UINT64_MAX, hi = 0;
    double sum = 0;

    p.delay_us = 50000;
    p.jitter_us = 10000;
    ASSERT_EQ(mpt_impair_init(&im, &p, 6, 0), 0);
    /* Datagrams far apart: jitter never has to keep order, so the spread is the raw one. */
    for (int i = 0; i < N; i++, now += 100000) {
        uint64_t d;

        mpt_impair_decide(&im, now, 100, &v);
        ASSERT_EQ(v.ncopies, 1);
        d = v.copy[0].send_at_us - now;
        ASSERT_GE(d, 40000);
        ASSERT_LE(d, 60000);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += (double)d;
    }
    printf("delay 50ms jitter 10ms: min %" PRIu64 " max %" PRIu64 " mean %.1f us\n", lo, hi,
           sum / N);
    ASSERT_LE(lo, 40100);
    ASSERT_GE(hi, 59900);
    assert_near(sum / N, 50000, 100);

    /* Datagrams close together: bounds still hold, never before now. */
    p.delay_us = 2000;
    p.jitter_us = 5000;
    ASSERT_EQ(mpt_impair_init(&im, &p, 6, 0), 0);
    for (int i = 0; i < N; i++, now += 50) {
        mpt_impair_decide(&im, now, 100, &v);
        ASSERT_GE(v.copy[0].send_at_us, now);
        ASSERT_LE(v.copy[0].send_at_us, now + 7000);
    }

    /* Reordered datagrams: held reorder_extra_us longer, within the bound. */
    p.delay_us = 10000;
    p.jitter_us = 0;
    p.reorder = 0.5;
    p.reorder_extra_us = 3000;
    ASSERT_EQ(mpt_impair_init(&im, &p, 6, 0), 0);
    for (int i = 0; i < 1000; i++, now += 1000) {
        uint64_t d;

        mpt_impair_decide(&im, now, 100, &v);
        d = v.copy[0].send_at_us - now;
        ASSERT(d == 10000 || d == 13000);
    }
}

static void jitter_keeps_order(void)
{
    struct mpt_impair_params p = none();
    struct mpt_impair im;
    struct mpt_impair_verdict v;
    uint64_t now = 1000, last = 0;

    p.delay_us = 10000;
    p.jitter_us = 20000;
    p.duplicate = 0.2;
    ASSERT_EQ(mpt_impair_init(&im, &p, 9, 0), 0);
    for (int i = 0; i < N; i++, now += 1000) {
        mpt_impair_decide(&im, now, 100, &v);
        for (unsigned c = 0; c < v.ncopies; c++) {
            ASSERT_GE(v.copy[c].send_at_us, last);
            last = v.copy[c].send_at_us;
        }
    }
}

static void reorder_overtakes(void)
{
    struct mpt_impair_params p = none();
    struct mpt_impair im;
    struct mpt_impair_verdict v;
    uint64_t at[1000];
    int held[1000];
    int overtaken = 0, nheld = 0;

    p.delay_us = 5000;
    p.reorder = 0.1;
    ASSERT_EQ(mpt_impair_init(&im, &p, 10, 0), 0);
    for (int i = 0; i < 1000; i++) {
        uint64_t before = im.stats.reordered;
        mpt_impair_decide(&im, 1000 + (uint64_t)i * 1000, 100, &v);
        at[i] = v.copy[0].send_at_us;
        held[i] = im.stats.reordered != before;
        nheld += held[i];
    }
    for (int i = 0; i < 990; i++) {
        if (!held[i])
            continue;
        for (int j = i + 1; j < 1000; j++)
            if (!held[j] && at[j] < at[i]) {
                overtaken++;
                break;
            }
    }
    ASSERT_GT(nheld, 50);
    ASSERT_GE(overtaken, nheld - 10);
}

static void params_check(void)
{
    struct mpt_impair_params p = none();
    struct mpt_impair im;

    ASSERT_EQ(mpt_impair_params_check(&p), 0);
    p.loss = 1.0;
    ASSERT_EQ(mpt_impair_params_check(&p), 0);
    p.loss = 1.0001;
    ASSERT_EQ(mpt_impair_params_check(&p), -EINVAL);
    ASSERT_EQ(mpt_impair_init(&im, &p, 1, 0), -EINVAL);
    p.loss = 0;
    p.corrupt = -0.1;
    ASSERT_EQ(mpt_impair_params_check(&p), -EINVAL);
    p.corrupt = 0;
    p.duplicate = NAN;
    ASSERT_EQ(mpt_impair_params_check(&p), -EINVAL);
}

static const struct task_case cases[] = {
    {"rng_determinism", rng_determinism},
    {"seed_determinism", seed_determinism},
    {"passthrough", passthrough},
    {"down", down},
    {"loss_rate", loss_rate},
    {"duplicate_rate", duplicate_rate},
    {"reorder_rate", reorder_rate},
    {"corrupt_rate", corrupt_rate},
    {"delay_bounds", delay_bounds},
    {"jitter_keeps_order", jitter_keeps_order},
    {"reorder_overtakes", reorder_overtakes},
    {"params_check", params_check},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
