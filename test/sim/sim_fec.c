/* fec mode (PROTOCOL.md §11) in the simulated world: residual loss of the client's datagrams and
 * the bytes spent for them on the wire, against the figures asked of the mode, over several seeds;
 * target_loss is set below the residual asked (the loss estimates are estimates).
 * The server's direction is carried by copies (redundant) in this mode for now. */
#include <math.h>

#include "sim.h"

static struct sim w;

struct fec_snap {
    uint64_t at, bytes;
};

static struct fec_snap fsnap[2];

static void fec_control(struct sim *s, int code)
{
    fsnap[code].at = s->now;
    fsnap[code].bytes = 0;
    for (unsigned p = 0; p < s->cfg.npaths; p++)
        fsnap[code].bytes += s->path_bytes[0][p];
}

/* Loss of the datagrams sent in [t0, t1) on their way to the target, and their payload bytes. */
static double up_loss(const struct sim *s, uint64_t t0, uint64_t t1, uint64_t *n)
{
    uint64_t sent = 0, arrived = 0;
    const struct app *ap = &s->apps[0];

    for (uint32_t i = 0; i < ap->sent; i++) {
        if (ap->sent_at[i] < t0 || ap->sent_at[i] >= t1)
            continue;
        sent++;
        arrived += ap->up_seen[i];
    }
    ASSERT_GT(sent, 0);
    *n = sent;
    return 1.0 - (double)arrived / (double)sent;
}

/* One world: `npaths` paths losing loss[p] up, 1,000-byte datagrams at `rate` a second for 6 s;
 * figures over the datagrams sent from 2 s to 5 s (the loss estimates settled). */
static void fec_run(uint64_t seed, unsigned npaths, const double *loss, uint8_t mode, double target,
                    double *res, double *ratio)
{
    struct sim_cfg cfg;
    uint64_t n;

    cfg_defaults(&cfg, seed);
    cfg.npaths = npaths;
    for (unsigned p = 0; p < npaths; p++) {
        cfg.up[p].loss = loss[p];
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
    *res = up_loss(&w, fsnap[0].at, fsnap[1].at, &n);
    *ratio = (double)(fsnap[1].bytes - fsnap[0].bytes) / (double)(n * 1000);
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
        {"3 paths at 5%", 3, {0.05, 0.05, 0.05}, 0.001, 1.25, 0.0005},
        {"3 paths at 1%", 3, {0.01, 0.01, 0.01}, 0.002, 1.1, 0.001},
        {"1 path dead, 2 at 5%", 3, {1.0, 0.05, 0.05}, 0.005, 2.0, 0.0025},
        {"1 path at 10%", 1, {0.10}, 0.001, 1.4, 0.0002},
    };
    enum { SEEDS = 3 };

    for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        double worst = 0, ratio_max = 0, res_sum = 0, rr, rratio;
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            double r, ratio;
            fec_run(seed, cases[c].npaths, cases[c].loss, MPT_CLIENT_FEC, cases[c].target, &r,
                    &ratio);
            worst = fmax(worst, r);
            ratio_max = fmax(ratio_max, ratio);
            res_sum += r / SEEDS;
        }
        fec_run(1, cases[c].npaths, cases[c].loss, MPT_CLIENT_REDUNDANT, 0.001, &rr, &rratio);
        printf("%-22s fec: residual %.5f mean, %.5f worst (limit %.4f); wire/payload %.3f worst "
               "(limit %.2f); redundant: residual %.5f at %.3f\n",
               cases[c].name, res_sum, worst, cases[c].max_res, ratio_max, cases[c].max_ratio, rr,
               rratio);
        ASSERT_DBL_LE(worst, cases[c].max_res);
        ASSERT_DBL_LE(ratio_max, cases[c].max_ratio);
    }
}

const struct task_case sim_fec_cases[] = {
    {"fec_figures", fec_figures},
    {NULL, NULL},
};
