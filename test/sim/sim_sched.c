/* Scheduling that follows the paths (PROTOCOL.md §8): the reorder buffer over paths of unequal
 * delay, with and without loss. */
#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>

#include "sim.h"

static struct sim w;

/* Order and delay as the application and the target see them. */
struct order_figs {
    uint32_t last[2];
    uint64_t n[2], out_of_order[2];
    uint64_t *lat[2]; /* one-way delay to the target (0), round trip to the application (1) */
};

static struct order_figs of;

static void order_deliver(struct sim *s, int down, unsigned path, uint32_t app, uint32_t seq)
{
    uint64_t sent = s->apps[app].sent_at[seq];

    (void)path;
    if (of.n[down] && seq < of.last[down])
        of.out_of_order[down]++;
    else
        of.last[down] = seq;
    of.lat[down][of.n[down]++] = s->now - sent;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(unsigned d, double p)
{
    if (!of.n[d])
        return 0;
    qsort(of.lat[d], of.n[d], sizeof(uint64_t), cmp_u64);
    return (double)of.lat[d][(size_t)(p * (double)(of.n[d] - 1))] / MS;
}

/* 3 paths of one-way delay 2, 15 and 40 ms (jitter 0.2 ms), balance mode, 2,000 datagrams/s;
 * path 0 losing `loss` each way; reorder_cap `cap` ms. */
static void order_run(uint32_t cap, double loss, uint64_t seed, double fig[6])
{
    static const uint64_t delay[3] = {2 * MS, 15 * MS, 40 * MS};
    struct sim_cfg cfg;

    cfg_defaults(&cfg, seed);
    cfg.cp.mode = MPT_CLIENT_BALANCE;
    cfg.cp.reorder_cap_ms = cfg.sp.reorder_cap_ms = cap;
    for (unsigned p = 0; p < 3; p++) {
        cfg.up[p].delay_us = cfg.down[p].delay_us = (uint32_t)delay[p];
        cfg.up[p].jitter_us = cfg.down[p].jitter_us = 200;
    }
    cfg.up[0].loss = cfg.down[0].loss = loss;
    cfg.count = 10000;
    cfg.interval_us = 500;
    cfg.start_us = 1 * SEC; /* RTTs measured first */
    cfg.target_delay_us = 0;
    cfg.end_us = 8 * SEC;
    memset(&of, 0, sizeof(of));
    for (unsigned d = 0; d < 2; d++)
        of.lat[d] = calloc(cfg.count, sizeof(uint64_t));
    sim_init(&w, &cfg);
    w.deliver = order_deliver;
    sim_run(&w);
    check_integrity(&w);
    for (unsigned d = 0; d < 2; d++) {
        fig[d] = 1 - (double)of.out_of_order[d] / (double)(of.n[d] ? of.n[d] : 1);
        fig[2 + d] = pct_ms(d, 0.5);
        fig[4 + d] = pct_ms(d, 0.99);
        free(of.lat[d]);
    }
    printf("cap %3u ms, path 0 loss %.2f: in order %.4f up, %.4f down; one way p50 %.1f p99 %.1f "
           "ms, round trip p50 %.1f p99 %.1f ms; loss %.4f up %.4f down; client held %llu, gaps "
           "%llu, late %llu; server held %llu, gaps %llu, late %llu\n",
           cap, loss, fig[0], fig[1], fig[2], fig[4], fig[3], fig[5], loss_up(&w), loss_down(&w),
           (unsigned long long)w.c.reorder.st.held, (unsigned long long)w.c.reorder.st.gaps,
           (unsigned long long)w.c.reorder.st.late, (unsigned long long)w.s.reorder.st.held,
           (unsigned long long)w.s.reorder.st.gaps, (unsigned long long)w.s.reorder.st.late);
    /* The buffers are allocated only where a cap asks for them. */
    ASSERT_EQ(!w.c.reorder.q, !cap);
    ASSERT_EQ(!w.s.reorder.q, !cap);
    ASSERT(!w.c.reorder.q || w.c.reorder.q[0].n == 0);
    ASSERT_LE(w.s.reorder.used, 1); /* the last one handed out */
    sim_free(&w);
}

/* Without the buffer most datagrams arrive out of order; with it, at least 99.9% in order, and no
 * datagram waits longer than the delay difference (38 ms) and the margin (5 ms) each way. */
static void reorder_delays(void)
{
    double off[6], on[6];

    order_run(0, 0, 1, off);
    order_run(100, 0, 1, on);
    printf("in order: %.4f up, %.4f down without the buffer; %.4f, %.4f with it (limit 0.999)\n",
           off[0], off[1], on[0], on[1]);
    printf("one way p99 %.1f ms (limit 40 + 5 + 1), round trip p99 %.1f ms (limit 2 x 46)\n", on[4],
           on[5]);
    ASSERT_DBL_LE(off[0], 0.9);
    ASSERT_DBL_GE(on[0], 0.999);
    ASSERT_DBL_GE(on[1], 0.999);
    ASSERT_DBL_LE(on[4], 46);
    ASSERT_DBL_LE(on[5], 92);
}

/* One path losing 20%: what is lost is waited for at most the gap timeout (the delay difference
 * and the margin), never the cap. */
static void reorder_loss(void)
{
    double on[6];

    order_run(100, 0.2, 2, on);
    printf("path 0 losing 20%%: one way p99 %.1f ms (limit 40 + 5 + 1), in order %.4f (limit "
           "0.999)\n",
           on[4], on[0]);
    ASSERT_DBL_GE(on[0], 0.999);
    ASSERT_DBL_LE(on[4], 46);
}

/* ---- adaptive mode comes back to the fast path ---- */

struct back_figs {
    uint64_t restored_us, first_back_us[2];
    uint64_t *rtt_before, *rtt_after;
    size_t nbefore, nafter;
};

static struct back_figs bk;

static void back_control(struct sim *s, int code)
{
    mpt_impair_set_down(&s->up[0], code);
    mpt_impair_set_down(&s->down[0], code);
    if (!code)
        bk.restored_us = s->now;
}

static void back_deliver(struct sim *s, int down, unsigned path, uint32_t app, uint32_t seq)
{
    uint64_t sent = s->apps[app].sent_at[seq];

    if (bk.restored_us && path == 0 && !bk.first_back_us[down])
        bk.first_back_us[down] = s->now;
    if (!down)
        return;
    if (sent >= 2 * SEC && sent < 5 * SEC)
        bk.rtt_before[bk.nbefore++] = s->now - sent;
    if (sent >= 11 * SEC && sent < 15 * SEC)
        bk.rtt_after[bk.nafter++] = s->now - sent;
}

static uint64_t median(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    return n ? v[n / 2] : 0;
}

/* Two paths of 10 and 150 ms each way, no loss; the fast one blacked out for 3 s (5 s to 8 s): the
 * fast path carries traffic again within 2 s of coming back, and the round trip is what it was. */
static void adaptive_back(void)
{
    struct sim_cfg cfg;
    uint64_t worst = 0;
    double worst_ratio = 0;

    for (uint64_t seed = 1; seed <= 3; seed++) {
        uint64_t before, after;
        cfg_defaults(&cfg, seed);
        cfg.npaths = 2;
        cfg.cp.mode = MPT_CLIENT_ADAPTIVE;
        cfg.cp.reorder_cap_ms = cfg.sp.reorder_cap_ms = 100;
        cfg.up[0].delay_us = cfg.down[0].delay_us = 10 * MS;
        cfg.up[1].delay_us = cfg.down[1].delay_us = 150 * MS;
        for (unsigned p = 0; p < 2; p++)
            cfg.up[p].jitter_us = cfg.down[p].jitter_us = 500;
        cfg.count = 15000;
        cfg.interval_us = 1 * MS;
        cfg.start_us = 0;
        cfg.target_delay_us = 0;
        cfg.end_us = 17 * SEC;
        memset(&bk, 0, sizeof(bk));
        bk.rtt_before = calloc(cfg.count, sizeof(uint64_t));
        bk.rtt_after = calloc(cfg.count, sizeof(uint64_t));
        sim_init(&w, &cfg);
        w.deliver = back_deliver;
        w.control = back_control;
        sim_schedule_control(&w, 5 * SEC, 1);
        sim_schedule_control(&w, 8 * SEC, 0);
        sim_run(&w);
        check_integrity(&w);
        before = median(bk.rtt_before, bk.nbefore);
        after = median(bk.rtt_after, bk.nafter);
        for (unsigned d = 0; d < 2; d++) {
            uint64_t t = bk.first_back_us[d] ? bk.first_back_us[d] - bk.restored_us : UINT64_MAX;
            worst = t > worst ? t : worst;
        }
        worst_ratio = fmax(worst_ratio, fabs((double)after / (double)before - 1));
        printf("seed %llu: fast path back after %.3f s up, %.3f s down; RTT p50 %.1f ms before, "
               "%.1f ms after\n",
               (unsigned long long)seed,
               bk.first_back_us[0] ? (double)(bk.first_back_us[0] - bk.restored_us) / SEC : -1,
               bk.first_back_us[1] ? (double)(bk.first_back_us[1] - bk.restored_us) / SEC : -1,
               (double)before / MS, (double)after / MS);
        free(bk.rtt_before);
        free(bk.rtt_after);
        sim_free(&w);
    }
    printf("adaptive, 10 and 150 ms paths, the fast one blacked out 3 s: back on it within %.3f s "
           "(limit 2 s); RTT p50 after within %.1f%% of before (limit 10%%)\n",
           (double)worst / SEC, 100 * worst_ratio);
    ASSERT_LE(worst, 2 * SEC);
    ASSERT_DBL_LE(worst_ratio, 0.10);
}

/* ---- NAT rebinding in balance mode ---- */

static void rebind_control(struct sim *s, int code)
{
    (void)code;
    s->paddr[0].u.in4.sin_port = htons(41000); /* path 0's NAT gives it another public port */
}

/* Balance over 3 paths, 1,000 datagrams/s; at 3 s path 0's return address changes (NAT
 * rebinding): the echoes lost to the dead address are those of at most one probe interval
 * (200 ms) of path 0's share, and a round trip of validation. */
static void rebind_balance(void)
{
    struct sim_cfg cfg;
    uint64_t lost = 0, sent = 0, worst = 0;

    for (uint64_t seed = 1; seed <= 3; seed++) {
        cfg_defaults(&cfg, seed);
        cfg.cp.mode = MPT_CLIENT_BALANCE;
        cfg.count = 8000;
        cfg.end_us = 10 * SEC;
        sim_init(&w, &cfg);
        w.control = rebind_control;
        sim_schedule_control(&w, 3 * SEC, 0);
        sim_run(&w);
        lost = sent = 0;
        for (uint32_t i = 0; i < w.apps[0].sent; i++) {
            uint64_t t = w.apps[0].sent_at[i];
            if (t >= 3 * SEC && t < 6 * SEC) {
                sent++;
                lost += w.apps[0].up_seen[i] && !w.apps[0].down_seen[i];
            }
        }
        worst = lost > worst ? lost : worst;
        printf("seed %llu: rebinding at 3 s: %llu of %llu echoes lost in the next 3 s; %llu "
               "datagrams sent to the dead address\n",
               (unsigned long long)seed, (unsigned long long)lost, (unsigned long long)sent,
               (unsigned long long)w.dead_sent);
        sim_free(&w);
    }
    /* Path 0's third of 1,000 replies/s for 200 ms and a round trip (40 ms) of validation. */
    printf("balance, NAT rebinding of one path of three: at most %llu echoes lost (limit 80: a "
           "probe interval and a round trip of its share)\n",
           (unsigned long long)worst);
    ASSERT_LE(worst, 80);
}

const struct task_case sim_sched_cases[] = {
    {"rebind_balance", rebind_balance},
    {"adaptive_back", adaptive_back},
    {"reorder_delays", reorder_delays},
    {"reorder_loss", reorder_loss},
    {NULL, NULL},
};
