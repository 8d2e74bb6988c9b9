/* core/estimate: delivery rates, queues and fading loss from acknowledged probes, and the balance
 * shares they give: capacities found where paths fill, weights elsewhere, lossy paths left out. */
#include <math.h>

#include "core/estimate.h"
#include "task.h"

#define MS 1000ULL

/* Feeds path e `secs` seconds of probes every 200 ms: `sent` datagrams a second up, `lost` of
 * them lost, RTT rtt_min + queue; nothing down but the acks. Returns the time reached. */
static uint64_t feed(struct mpt_est *e, uint64_t t, double secs, unsigned sent, unsigned lost,
                     uint64_t rtt, uint64_t *tx, uint64_t *rx)
{
    for (unsigned k = 0; k < (unsigned)(secs * 5); k++) {
        t += 200 * MS;
        *tx += sent / 5;
        *rx += (sent - lost) / 5;
        mpt_est_sample(e, t, rtt, *tx, *rx, t / (200 * MS), t / (200 * MS));
    }
    return t;
}

static void rates_and_loss(void)
{
    struct mpt_est e;
    uint64_t tx = 0, rx = 0, t;

    mpt_est_reset(&e);
    t = feed(&e, 0, 3, 1000, 0, 10 * MS, &tx, &rx);
    ASSERT_DBL_GE(e.up.rate, 990);
    ASSERT_DBL_LE(e.up.rate, 1010);
    ASSERT_DBL_LE(mpt_est_loss(&e.up), 0);
    ASSERT_EQ(e.up.full, 0);
    ASSERT_EQ(e.rtt_min_us, 10 * MS);
    /* 10% lost: the estimate gets there within seconds... */
    t = feed(&e, t, 5, 1000, 100, 10 * MS, &tx, &rx);
    printf("10%% lost for 5 s: loss %.4f\n", mpt_est_loss(&e.up));
    ASSERT_DBL_GE(mpt_est_loss(&e.up), 0.09);
    ASSERT_DBL_LE(mpt_est_loss(&e.up), 0.11);
    /* ...and back to the truth within seconds once it heals, whatever the traffic (probes alone:
     * 5 a second). */
    t = feed(&e, t, 6, 5, 0, 10 * MS, &tx, &rx);
    printf("healed, probes only, 6 s later: loss %.4f (limit 0.02)\n", mpt_est_loss(&e.up));
    ASSERT_DBL_LE(mpt_est_loss(&e.up), 0.02);
    /* Loss without a queue is not the path being full. */
    t = feed(&e, t, 2, 1000, 300, 10 * MS, &tx, &rx);
    ASSERT_EQ(e.up.full, 0);
    ASSERT_DBL_GE(mpt_est_loss(&e.up), MPT_EST_LOSSY);
    /* Counters that go backwards (a new session) start over without a sample. */
    tx = rx = 0;
    feed(&e, t, 1, 1000, 0, 10 * MS, &tx, &rx);
    ASSERT_DBL_GE(e.up.rate, 900);
}

static void full_and_cap(void)
{
    struct mpt_est e;
    uint64_t tx = 0, rx = 0, t;
    double cap;

    mpt_est_reset(&e);
    t = feed(&e, 0, 2, 800, 0, 10 * MS, &tx, &rx);
    ASSERT_EQ(e.up.cap, 0);
    /* One RTT with a queue may be a stall: not full yet. */
    t = feed(&e, t, 0.2, 800, 0, 60 * MS, &tx, &rx);
    ASSERT_EQ(e.up.full, 0);
    t = feed(&e, t, 0.2, 800, 0, 60 * MS, &tx, &rx);
    ASSERT_EQ(e.up.full, 1);
    ASSERT_DBL_GE(e.up.cap, 0.85 * 800);
    ASSERT_DBL_LE(e.up.cap, 0.95 * 800);
    /* The queue drains: the cap grows again, by a quarter a second, until it is no limit. */
    cap = e.up.cap;
    t = feed(&e, t, 1, 700, 0, 10 * MS, &tx, &rx);
    ASSERT_EQ(e.up.full, 0);
    ASSERT_DBL_GE(e.up.cap, 1.2 * cap);
    ASSERT_DBL_LE(e.up.cap, 1.35 * cap);
    feed(&e, t, 10, 100, 0, 10 * MS, &tx, &rx);
    ASSERT_EQ(e.up.cap, 0);
}

static unsigned sum3(const unsigned *s)
{
    return s[0] + s[1] + s[2];
}

static void shares(void)
{
    struct mpt_est e[3];
    unsigned w[3] = {1, 1, 1}, s[3];

    memset(e, 0, sizeof(e));
    /* Nothing measured: by weight. */
    mpt_est_shares(e, w, 7, 3, 0, s);
    ASSERT_EQ(s[0], 333);
    w[0] = 2;
    mpt_est_shares(e, w, 7, 3, 0, s);
    ASSERT_EQ(s[0], 500);
    ASSERT_EQ(s[1], 250);
    w[0] = 1;
    /* 10/20/40 Mbit/s links found full in turn: 60 carried in all, path 0 capped at 9, path 1
     * at 18, path 2 takes the rest. */
    for (unsigned i = 0; i < 3; i++) {
        e[i].have = 1;
        e[i].up.rate = 20;
    }
    e[0].up.cap = 9;
    e[1].up.cap = 18;
    mpt_est_shares(e, w, 7, 3, 0, s);
    printf("capped at 9 and 18 of 60: shares %u %u %u\n", s[0], s[1], s[2]);
    ASSERT_EQ(s[0], 150);
    ASSERT_EQ(s[1], 300);
    ASSERT_EQ(s[2], 550);
    /* A cap above its fair share binds nothing. */
    e[1].up.cap = 30;
    mpt_est_shares(e, w, 7, 3, 0, s);
    ASSERT_EQ(s[0], 150);
    ASSERT_EQ(s[1], 425);
    /* Every path capped below what is carried: by cap. */
    e[1].up.cap = 18;
    e[2].up.cap = 3;
    mpt_est_shares(e, w, 7, 3, 0, s);
    ASSERT_EQ(s[0], 300);
    ASSERT_EQ(s[1], 600);
    ASSERT_EQ(s[2], 100);
    /* A path losing 30% without a queue gets nothing; one losing 3% a lower share. */
    memset(e, 0, sizeof(e));
    for (unsigned i = 0; i < 3; i++) {
        e[i].have = 1;
        e[i].up.rate = 20;
    }
    e[0].up.loss = 0.3;
    e[1].up.loss = 0.03;
    mpt_est_shares(e, w, 7, 3, 0, s);
    printf("losing 30%%, 3%%, 0: shares %u %u %u\n", s[0], s[1], s[2]);
    ASSERT_EQ(s[0], 0);
    ASSERT_LT(s[1], s[2]);
    ASSERT_GT(s[1], 300);
    /* The other direction is its own. */
    mpt_est_shares(e, w, 7, 3, 1, s);
    ASSERT_EQ(s[0], 333);
    /* All of them losing: still spread. */
    e[1].up.loss = e[2].up.loss = 0.3;
    mpt_est_shares(e, w, 7, 3, 0, s);
    ASSERT_EQ(s[0], 333);
    /* Outside the mask: nothing. */
    mpt_est_shares(e, w, 5, 3, 0, s);
    ASSERT_EQ(s[1], 0);
    ASSERT_EQ(s[0], 500);
    ASSERT_GE(sum3(s), 999);
    ASSERT_LE(sum3(s), 1001);
}

int main(int argc, char **argv)
{
    static const struct task_case cases[] = {
        {"rates_and_loss", rates_and_loss},
        {"full_and_cap", full_and_cap},
        {"shares", shares},
        {NULL, NULL},
    };
    return task_run(cases, argc, argv);
}
