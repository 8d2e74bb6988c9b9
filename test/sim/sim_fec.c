/* fec mode (PROTOCOL.md §11) in the simulated world: residual loss of the client's datagrams and
 * the bytes spent for them on the wire, against the figures asked of the mode, over several seeds;
 * target_loss is set below the residual asked (the loss estimates are estimates).
 * The server's direction is carried by copies (redundant) in this mode for now. */
#include <math.h>
#include <stdlib.h>

#include "sim.h"

static struct sim w;

struct fec_snap {
    uint64_t at, bytes, down_bytes;
};

static struct fec_snap fsnap[2];

static void fec_control(struct sim *s, int code)
{
    fsnap[code].at = s->now;
    fsnap[code].bytes = fsnap[code].down_bytes = 0;
    for (unsigned p = 0; p < s->cfg.npaths; p++) {
        fsnap[code].bytes += s->path_bytes[0][p];
        fsnap[code].down_bytes += s->path_bytes[1][p];
    }
}

/* Loss of the datagrams sent in [t0, t1) on their way to the target, and of their echoes on the
 * way back (among those that arrived); their numbers. */
static void loss_both(const struct sim *s, uint64_t t0, uint64_t t1, double *up, double *down,
                      uint64_t *n, uint64_t *echoed)
{
    uint64_t sent = 0, arrived = 0, back = 0;
    const struct app *ap = &s->apps[0];

    for (uint32_t i = 0; i < ap->sent; i++) {
        if (ap->sent_at[i] < t0 || ap->sent_at[i] >= t1)
            continue;
        sent++;
        arrived += ap->up_seen[i];
        back += ap->up_seen[i] && ap->down_seen[i];
    }
    ASSERT_GT(sent, 0);
    *n = sent;
    *echoed = arrived;
    *up = 1.0 - (double)arrived / (double)sent;
    *down = arrived ? 1.0 - (double)back / (double)arrived : 1.0;
}

/* One world: `npaths` paths losing loss[p] up, 1,000-byte datagrams at `rate` a second for 6 s;
 * figures over the datagrams sent from 2 s to 5 s (the loss estimates settled). */
static void fec_run(uint64_t seed, unsigned npaths, const double *loss, uint8_t mode, double target,
                    double *res, double *ratio, double *res_down, double *ratio_down)
{
    struct sim_cfg cfg;
    uint64_t n, e;

    cfg_defaults(&cfg, seed);
    cfg.npaths = npaths;
    for (unsigned p = 0; p < npaths; p++) {
        cfg.up[p].loss = cfg.down[p].loss = loss[p];
        cfg.up[p].delay_us = cfg.down[p].delay_us = (uint32_t)(10 * MS + p * 5 * MS);
        cfg.up[p].jitter_us = cfg.down[p].jitter_us = 500;
    }
    cfg.cp.mode = mode;
    cfg.cp.target_loss = target;
    cfg.min_len = cfg.max_len = 1000;
    cfg.interval_us = 150; /* 6,667 datagrams/s: blocks of 64 fill within their 10 ms */
    cfg.count = 40000;
    cfg.end_us = 7 * SEC;
    sim_init(&w, &cfg);
    w.control = fec_control;
    sim_schedule_control(&w, 2 * SEC, 0);
    sim_schedule_control(&w, 5 * SEC, 1);
    sim_run(&w);
    check_integrity(&w);
    loss_both(&w, fsnap[0].at, fsnap[1].at, res, res_down, &n, &e);
    *ratio = (double)(fsnap[1].bytes - fsnap[0].bytes) / (double)(n * 1000);
    *ratio_down = (double)(fsnap[1].down_bytes - fsnap[0].down_bytes) / (double)(e * 1000);
    sim_free(&w);
}

struct fec_case {
    const char *name;
    unsigned npaths;
    double loss[3];
    double max_res, max_ratio, target; /* target_loss configured */
};

static void fec_figures(void)
{
    static const struct fec_case cases[] = {
        {"3 paths at 20%", 3, {0.20, 0.20, 0.20}, 0.008, 1.6, 0.004},
        {"3 paths at 5%", 3, {0.05, 0.05, 0.05}, 0.001, 1.25, 0.0003},
        {"3 paths at 1%", 3, {0.01, 0.01, 0.01}, 0.002, 1.1, 0.001},
        {"1 path dead, 2 at 5%", 3, {1.0, 0.05, 0.05}, 0.005, 2.0, 0.002},
        {"1 path at 10%", 1, {0.10}, 0.001, 1.4, 0.0002},
    };
    enum { SEEDS = 3 };

    for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        double worst[2] = {0, 0}, ratio_max[2] = {0, 0}, res_sum[2] = {0, 0}, rr[2], rratio[2];
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            double r[2], ratio[2];
            fec_run(seed, cases[c].npaths, cases[c].loss, MPT_CLIENT_FEC, cases[c].target, &r[0],
                    &ratio[0], &r[1], &ratio[1]);
            for (unsigned d = 0; d < 2; d++) {
                worst[d] = fmax(worst[d], r[d]);
                ratio_max[d] = fmax(ratio_max[d], ratio[d]);
                res_sum[d] += r[d] / SEEDS;
            }
        }
        fec_run(1, cases[c].npaths, cases[c].loss, MPT_CLIENT_REDUNDANT, 0.001, &rr[0], &rratio[0],
                &rr[1], &rratio[1]);
        for (unsigned d = 0; d < 2; d++) {
            printf("%-22s %-4s fec: residual %.5f mean, %.5f worst (limit %.4f); wire/payload "
                   "%.3f worst (limit %.2f); redundant: residual %.5f at %.3f\n",
                   cases[c].name, d ? "down" : "up", res_sum[d], worst[d], cases[c].max_res,
                   ratio_max[d], cases[c].max_ratio, rr[d], rratio[d]);
            ASSERT_DBL_LE(worst[d], cases[c].max_res);
            ASSERT_DBL_LE(ratio_max[d], cases[c].max_ratio);
        }
    }
}

/* Round trips as the application sees them (echoes delivered), for percentiles. */
static uint64_t *lat;
static size_t nlat;

static void lat_deliver(struct sim *s, int down, unsigned path, uint32_t app, uint32_t seq)
{
    (void)path;
    if (down && s->apps[app].sent_at[seq] >= 2 * SEC)
        lat[nlat++] = s->now - s->apps[app].sent_at[seq];
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* At 1,000 datagrams/s over paths of 10, 15 and 20 ms losing 5% each way, the median round trip
 * of fec mode is balance mode's within 5% (every datagram that arrives goes on at once), and a
 * datagram rebuilt from repairs is late by at most its block's 10 ms, the paths' delay difference
 * and fec_wait's margin: the 99th percentile stays under the slowest path's round trip + 30 ms. */
static void fec_latency(void)
{
    static const uint8_t modes[2] = {MPT_CLIENT_BALANCE, MPT_CLIENT_FEC};
    double p50[2], p99[2];
    struct sim_cfg cfg;

    lat = calloc(20000, sizeof(*lat));
    ASSERT(lat);
    for (unsigned m = 0; m < 2; m++) {
        cfg_defaults(&cfg, 5);
        for (unsigned p = 0; p < 3; p++) {
            cfg.up[p].loss = cfg.down[p].loss = 0.05;
            cfg.up[p].delay_us = cfg.down[p].delay_us = (uint32_t)(10 * MS + p * 5 * MS);
            cfg.up[p].jitter_us = cfg.down[p].jitter_us = 500;
        }
        cfg.cp.mode = modes[m];
        cfg.min_len = cfg.max_len = 500;
        cfg.count = 8000;
        cfg.interval_us = 1 * MS;
        cfg.end_us = 10 * SEC;
        nlat = 0;
        sim_init(&w, &cfg);
        w.deliver = lat_deliver;
        sim_run(&w);
        check_integrity(&w);
        sim_free(&w);
        ASSERT_GT(nlat, 1000);
        qsort(lat, nlat, sizeof(*lat), cmp_u64);
        p50[m] = (double)lat[nlat / 2] / MS;
        p99[m] = (double)lat[nlat * 99 / 100] / MS;
        printf("%-8s round trip p50 %.2f ms, p99 %.2f ms (%zu echoes)\n", m ? "fec" : "balance",
               p50[m], p99[m], nlat);
    }
    free(lat);
    printf("fec p50 %.2f ms against balance's %.2f ms (limit %.2f)\n", p50[1], p50[0],
           p50[0] * 1.05);
    ASSERT_DBL_LE(p50[1], p50[0] * 1.05);
    printf("fec p99 %.2f ms (limit %.2f)\n", p99[1], 2 * 20.0 + 30);
    ASSERT_DBL_LE(p99[1], 2 * 20.0 + 30);
}

const struct task_case sim_fec_cases[] = {
    {"fec_figures", fec_figures},
    {"fec_latency", fec_latency},
    {NULL, NULL},
};
