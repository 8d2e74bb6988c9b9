/* core/estimate: delivery rates, queues and fading loss from acknowledged probes, and the balance
 * shares they give: capacities found where paths fill, weights elsewhere, lossy paths left out. */
#include <math.h>

#include "core/estimate.h"
#include "core/sched.h"
#include "task.h"

#define MS 1000ULL

/* The peer's clock: far from ours, as another host's is. */
#define PEER_CLOCK 0xfffffff000000000ULL

/* Feeds path e `secs` seconds of probes every 200 ms: `sent` datagrams a second up, `lost` of
 * them lost, RTT `rtt`, of which 5 ms down and the rest up; nothing down but the acks. Returns
 * the time reached. */
static uint64_t feed(struct mpt_est *e, uint64_t t, double secs, unsigned sent, unsigned lost,
                     uint64_t rtt, uint64_t *tx, uint64_t *rx)
{
    for (unsigned k = 0; k < (unsigned)(secs * 5); k++) {
        t += 200 * MS;
        *tx += sent / 5;
        *rx += (sent - lost) / 5;
        mpt_est_sample(e, t, rtt, PEER_CLOCK + t + rtt - 5 * MS, *tx, *rx, t / (200 * MS),
                       t / (200 * MS));
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
    /* A queue under 10 ms is none; one that creeps up is full when it stood over 10 ms twice. */
    t = feed(&e, t, 0.2, 800, 0, 18 * MS, &tx, &rx);
    ASSERT_EQ(e.up.full, 0);
    t = feed(&e, t, 0.2, 800, 0, 23 * MS, &tx, &rx);
    ASSERT_EQ(e.up.full, 0);
    t = feed(&e, t, 0.2, 800, 0, 25 * MS, &tx, &rx);
    ASSERT_EQ(e.up.full, 1);
    ASSERT_DBL_GE(e.up.cap, 0.85 * 800);
    ASSERT_DBL_LE(e.up.cap, 0.95 * 800);
    ASSERT_DBL_GE(e.up.full_rate, 790);
    /* Drained: the cap is back at what the path carried within half a second... */
    cap = e.up.cap;
    t = feed(&e, t, 0.4, 700, 0, 10 * MS, &tx, &rx);
    printf("full at 800/s: cap %.0f, 0.4 s later %.0f\n", cap, e.up.cap);
    ASSERT_EQ(e.up.full, 0);
    ASSERT_DBL_GE(e.up.cap, 0.98 * 800);
    /* ...then grows slowly, by a twentieth a second, to a tenth over it... */
    t = feed(&e, t, 1, 700, 0, 10 * MS, &tx, &rx);
    printf("1 s later: cap %.0f (limit 880)\n", e.up.cap);
    ASSERT_DBL_LE(e.up.cap, 1.1 * 800);
    ASSERT_DBL_GE(e.up.cap, 1.02 * 800);
    /* ...and by a quarter a second beyond, until it is no limit. */
    feed(&e, t, 10, 100, 0, 10 * MS, &tx, &rx);
    ASSERT_EQ(e.up.cap, 0);
    /* A queue that appears at once, over 10 ms by more than 5 ms, is full at once. */
    mpt_est_reset(&e);
    t = feed(&e, 0, 2, 800, 0, 10 * MS, &tx, &rx);
    t = feed(&e, t, 0.2, 800, 0, 26 * MS, &tx, &rx);
    ASSERT_EQ(e.up.full, 1);
}

/* A queue is its direction's: the one-way delays say which, whatever each direction carries
 * (the replies of a download may outnumber what goes up a path whose way up is full). */
static void queue_direction(void)
{
    struct mpt_est e;
    uint64_t t = 0, tx = 0, rx = 0, dtx = 0;

    mpt_est_reset(&e);
    for (unsigned k = 0; k < 20; k++) {
        /* 800/s up and 1,000/s down; after 2 s the way up queues 50 ms. */
        uint64_t q = k >= 10 ? 50 * MS : 0;
        t += 200 * MS;
        tx += 160;
        rx += 160;
        dtx += 200;
        mpt_est_sample(&e, t, 10 * MS + q, PEER_CLOCK + t + 5 * MS + q, tx, rx, dtx, dtx);
    }
    printf("queue up %llu ms, down %llu ms\n", (unsigned long long)mpt_est_queue_us(&e, 0) / MS,
           (unsigned long long)mpt_est_queue_us(&e, 1) / MS);
    ASSERT_EQ(mpt_est_queue_us(&e, 0), 50 * MS);
    ASSERT_EQ(mpt_est_queue_us(&e, 1), 0);
    ASSERT_EQ(e.up.full, 1);
    ASSERT_EQ(e.down.full, 0);
    /* The same queue down: the way up is not full. */
    for (unsigned k = 0; k < 10; k++) {
        t += 200 * MS;
        tx += 160;
        rx += 160;
        dtx += 200;
        mpt_est_sample(&e, t, 60 * MS, PEER_CLOCK + t + 5 * MS, tx, rx, dtx, dtx);
    }
    ASSERT_EQ(mpt_est_queue_us(&e, 0), 0);
    ASSERT_EQ(mpt_est_queue_us(&e, 1), 50 * MS);
    ASSERT_EQ(e.up.full, 0);
    ASSERT_EQ(e.down.full, 1);
    /* Another peer clock (another server process): the delays start over, no queue from it. */
    mpt_est_new_clock(&e);
    t += 200 * MS;
    mpt_est_sample(&e, t, 10 * MS, t + 5 * MS, tx, rx, dtx, dtx);
    ASSERT_EQ(mpt_est_queue_us(&e, 0), 0);
    ASSERT_EQ(mpt_est_queue_us(&e, 1), 0);
}

/* The lowest one-way delay is that of the last 5-10 s: a path without a queue now and then is
 * measured against its lowest of then (never against a single sample taken in a queue, as a
 * minimum started over every 10 s would be), and a delay that stands 10 s is the path's own. */
static void queue_window(void)
{
    struct mpt_est e;
    uint64_t t = 0, tx = 0, rx = 0, worst = UINT64_MAX;

    mpt_est_reset(&e);
    t = feed(&e, t, 1, 100, 0, 10 * MS, &tx, &rx);
    for (unsigned k = 0; k < 64; k++) {
        /* A 30 ms queue for 13 s, drained for one sample at 9 s. */
        t = feed(&e, t, 0.2, 100, 0, k == 40 ? 10 * MS : 40 * MS, &tx, &rx);
        if (k != 40 && mpt_est_queue_us(&e, 0) < worst)
            worst = mpt_est_queue_us(&e, 0);
    }
    printf("a 30 ms queue for 13 s, drained at 9 s: seen as at least %llu ms\n",
           (unsigned long long)worst / MS);
    ASSERT_EQ(worst, 30 * MS);
    t = feed(&e, t, 10, 100, 0, 40 * MS, &tx, &rx);
    ASSERT_EQ(mpt_est_queue_us(&e, 0), 0);
}

/* Caps on the wire (PROBE bytes 50-81): never below the cap, within 1/2048 over it, 0 none. */
static void cap_wire(void)
{
    static const double rates[] = {1, 7.5, 880, 4095, 4096, 4097, 6160.4, 65535, 1e6, 1.3e8};

    ASSERT_EQ(mpt_cap_encode(0), 0);
    ASSERT_EQ(mpt_cap_encode(-3), 0);
    ASSERT_EQ(mpt_cap_decode(0), 0);
    for (unsigned i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        double r = rates[i], back = mpt_cap_decode(mpt_cap_encode(r));
        ASSERT_DBL_GE(back, r);
        ASSERT_DBL_LE(back, r * (1 + 1.0 / 2048) + 1);
    }
    /* Beyond what 16 bits say: the most they do, never "no cap". */
    ASSERT_EQ(mpt_cap_encode(1e12), 0xffff);
    ASSERT_DBL_GE(mpt_cap_decode(0xffff), 1.3e8);
}

/* A cap as a bucket: about `rate` datagrams a second, bursts of 5 ms; no cap, no limit. */
static void bucket(void)
{
    struct mpt_bucket b = {0, 0};
    unsigned sent = 0, burst = 0;

    for (uint64_t t = 0; t < 1000 * MS; t += 100) {
        while (mpt_bucket_room(&b, 1000, t)) {
            mpt_bucket_take(&b, 1000);
            sent++;
        }
    }
    printf("1,000/s for 1 s, offered every 0.1 ms: %u sent\n", sent);
    ASSERT_GE(sent, 995);
    ASSERT_LE(sent, 1005);
    /* Idle 1 s: at most 5 ms of datagrams at once. */
    while (mpt_bucket_room(&b, 1000, 2000 * MS)) {
        mpt_bucket_take(&b, 1000);
        burst++;
    }
    ASSERT_EQ(burst, 5);
    ASSERT_EQ(mpt_bucket_room(&b, 0, 2000 * MS), 1);
}

/* Datagrams sent through a bucket with no room (every path full, PROTOCOL.md §8.2) leave it
 * empty, not in debt: 2 s charged at 1,000/s over its 300/s, then it has room again within
 * 1/300 s, and 300 a second after. */
static void bucket_no_debt(void)
{
    struct mpt_bucket b = {0, 0};
    uint64_t t = 0, first = 0;
    unsigned sent = 0;

    for (; t < 2000 * MS; t += MS) {
        mpt_bucket_room(&b, 300, t);
        mpt_bucket_take(&b, 300);
    }
    for (; t < 3000 * MS; t += 100) {
        while (mpt_bucket_room(&b, 300, t)) {
            mpt_bucket_take(&b, 300);
            if (!sent++)
                first = t;
        }
    }
    printf("300/s after 2 s charged at 1,000/s: %u sent in 1 s, the first after %.1f ms\n", sent,
           sent ? (double)(first - 2000 * MS) / MS : 1000.0);
    ASSERT_GE(sent, 297);
    ASSERT_LE(first, 2000 * MS + 4 * MS);
    ASSERT_LE(sent, 302);
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
    /* Full by a queue seen once (a stall?): still lossy. Full by a standing queue: its loss is
     * what it could not carry, and its cap rules. */
    e[0].up.full = 1;
    e[0].up.queued = 1;
    mpt_est_shares(e, w, 7, 3, 0, s);
    ASSERT_EQ(s[0], 0);
    e[0].up.queued = 2;
    mpt_est_shares(e, w, 7, 3, 0, s);
    ASSERT_GT(s[0], 0);
    e[0].up.full = 0;
    e[0].up.queued = 0;
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
        {"queue_direction", queue_direction},
        {"queue_window", queue_window},
        {"cap_wire", cap_wire},
        {"bucket", bucket},
        {"bucket_no_debt", bucket_no_debt},
        {"shares", shares},
        {NULL, NULL},
    };
    return task_run(cases, argc, argv);
}
