/* Path health and scheduling in the simulated world (PROTOCOL.md §7, §8): how fast a silent path
 * is marked down and back up, what adaptive mode saves against redundant mode at the same
 * residual loss, backup failover and handback, balance shares, and what probes cost. Each case
 * prints its figures and asserts them. */
#include <math.h>

#include "sim.h"

static struct sim w;

static const char *const mode_names[] = {"redundant", "adaptive", "backup", "balance"};

/* What the counters said at one moment, to take figures over a window. */
struct snap {
    uint64_t at, dgrams, copies, echoes, down_copies;
    uint64_t data[2][SIM_MAX_PATHS], bytes[2][SIM_MAX_PATHS], dgram[2][SIM_MAX_PATHS];
};

#define MAX_SNAPS 8

/* Controls: codes from SNAP_CODE take snapshot code - SNAP_CODE; cases use codes below. */
#define SNAP_CODE 100

static struct snap snaps[MAX_SNAPS];

static void snap_take(const struct sim *s, struct snap *o)
{
    memset(o, 0, sizeof(*o));
    o->at = s->now;
    o->dgrams = s->c.data_dgrams;
    o->copies = s->c.data_copies;
    o->echoes = s->echo_sent;
    for (unsigned d = 0; d < 2; d++)
        for (unsigned p = 0; p < s->cfg.npaths; p++) {
            o->data[d][p] = s->path_data[d][p];
            o->bytes[d][p] = s->path_bytes[d][p];
            o->dgram[d][p] = s->path_dgrams[d][p];
        }
    for (unsigned p = 0; p < s->cfg.npaths; p++)
        o->down_copies += s->path_data[1][p];
}

/* Copies per datagram between two snapshots: the client's for its datagrams, the server's for
 * the replies. */
static double copies_up(const struct snap *a, const struct snap *b)
{
    return (double)(b->copies - a->copies) / (double)(b->dgrams - a->dgrams);
}

static double copies_down(const struct snap *a, const struct snap *b)
{
    return (double)(b->down_copies - a->down_copies) / (double)(b->echoes - a->echoes);
}

/* Loss of the datagrams the application sent in [t0, t1): those that never reached the target,
 * and among those that did, those whose echo never came back. */
static void window_loss(const struct sim *s, uint64_t t0, uint64_t t1, double *up, double *down)
{
    uint64_t sent = 0, arrived = 0, back = 0;

    for (unsigned a = 0; a < s->cfg.napps; a++) {
        const struct app *ap = &s->apps[a];
        for (uint32_t i = 0; i < ap->sent; i++) {
            if (ap->sent_at[i] < t0 || ap->sent_at[i] >= t1)
                continue;
            sent++;
            arrived += ap->up_seen[i];
            back += ap->up_seen[i] && ap->down_seen[i];
        }
    }
    ASSERT_GT(sent, 0);
    *up = 1.0 - (double)arrived / (double)sent;
    *down = arrived ? 1.0 - (double)back / (double)arrived : 1.0;
}

/* The client's own count of data copies per path agrees with what the network saw. */
static void check_data_tx(const struct sim *s)
{
    for (unsigned p = 0; p < s->cfg.npaths; p++)
        ASSERT_EQ(s->c.paths[p].data_tx, s->path_data[0][p]);
}

static void set_path_down(struct sim *s, unsigned p, int down)
{
    mpt_impair_set_down(&s->up[p], down);
    mpt_impair_set_down(&s->down[p], down);
}

/* ---- a path silenced and back: down and up within 1 s ---- */

struct down_obs {
    unsigned path;
    uint64_t silenced_at, back_at, down_at, up_at;
};

static struct down_obs dn;

static void down_control(struct sim *s, int code)
{
    set_path_down(s, dn.path, code);
    if (code)
        dn.silenced_at = s->now;
    else
        dn.back_at = s->now;
}

static void down_step(struct sim *s)
{
    const struct mpt_client_path *p = &s->c.paths[dn.path];

    if (dn.silenced_at && !dn.back_at && !dn.down_at && p->state == MPT_PATH_DOWN)
        dn.down_at = s->now;
    if (dn.back_at && !dn.up_at && p->state != MPT_PATH_DOWN)
        dn.up_at = s->now;
    /* Nothing else is ever taken for dead once the paths are up. */
    if (s->now > 2 * SEC)
        for (unsigned i = 0; i < s->cfg.npaths; i++)
            if (i != dn.path || !dn.silenced_at || (dn.up_at && i == dn.path))
                ASSERT_NE(s->c.paths[i].state, MPT_PATH_DOWN);
}

/* Silences one path for 3 s, at a time not aligned with the probes, per seed and mode; `busy`
 * sends 1000 datagrams/s throughout. */
static void down_case(int busy)
{
    const unsigned nmodes = busy ? 4 : 1, seeds = busy ? 5 : 10;
    uint64_t worst_down = 0, worst_up = 0, sum_down = 0, sum_up = 0, runs = 0;
    struct sim_cfg cfg;

    for (unsigned mode = 0; mode < nmodes; mode++) {
        uint64_t mode_down = 0, mode_up = 0;
        for (uint64_t seed = 1; seed <= seeds; seed++) {
            cfg_defaults(&cfg, seed);
            cfg.cp.mode = (uint8_t)mode;
            cfg.cp.priority[0] = 1;
            cfg.cp.priority[1] = cfg.cp.priority[2] = 2;
            cfg.cp.weight[0] = 3;
            cfg.cp.weight[1] = 2;
            cfg.cp.weight[2] = 1;
            cfg.count = busy ? 12000 : 0;
            cfg.end_us = 12 * SEC;
            memset(&dn, 0, sizeof(dn));
            dn.path = (unsigned)(seed % cfg.npaths);
            sim_init(&w, &cfg);
            w.control = down_control;
            w.step = down_step;
            sim_schedule_control(&w, 5 * SEC + seed * 37 * MS, 1);
            sim_schedule_control(&w, 8 * SEC + seed * 41 * MS, 0);
            sim_run(&w);
            check_integrity(&w);
            ASSERT_EQ(w.c.sessions_established, 1);
            ASSERT(dn.down_at && dn.up_at);
            uint64_t d = dn.down_at - dn.silenced_at, u = dn.up_at - dn.back_at;
            mode_down = d > mode_down ? d : mode_down;
            mode_up = u > mode_up ? u : mode_up;
            sum_down += d;
            sum_up += u;
            runs++;
            if (busy && mode == MPT_CLIENT_REDUNDANT) {
                double lu, ld;
                window_loss(&w, 1 * SEC, 11 * SEC, &lu, &ld);
                ASSERT_DBL_LE(lu, 0.0);
                ASSERT_DBL_LE(ld, 0.0);
            }
            sim_free(&w);
        }
        if (busy)
            printf("%-9s busy: path down after at most %.3f s, up after at most %.3f s\n",
                   mode_names[mode], (double)mode_down / SEC, (double)mode_up / SEC);
        worst_down = mode_down > worst_down ? mode_down : worst_down;
        worst_up = mode_up > worst_up ? mode_up : worst_up;
    }
    printf("path silenced for 3 s while %s (%llu runs: %u mode%s x %u seeds): marked down after "
           "mean %.3f s, worst %.3f s (limit 1 s); up again after mean %.3f s, worst %.3f s "
           "(limit 1 s)\n",
           busy ? "busy, 1000 datagrams/s" : "idle", (unsigned long long)runs, nmodes,
           nmodes > 1 ? "s" : "", seeds, (double)sum_down / (double)runs / SEC,
           (double)worst_down / SEC, (double)sum_up / (double)runs / SEC, (double)worst_up / SEC);
    if (busy)
        printf("redundant mode lost nothing either way meanwhile\n");
    ASSERT_LE(worst_down, 1 * SEC);
    ASSERT_LE(worst_up, 1 * SEC);
}

static void down_idle(void)
{
    down_case(0);
}

static void down_busy(void)
{
    down_case(1);
}

/* ---- adaptive against redundant ---- */

static const double adaptive_loss[3] = {0.01, 0.05, 0.20};

/* Code 0: path 0 degrades to 30% loss each way. */
static void adaptive_control(struct sim *s, int code)
{
    if (code >= SNAP_CODE) {
        snap_take(s, &snaps[code - SNAP_CODE]);
        return;
    }
    s->up[0].p.loss = s->down[0].p.loss = 0.30;
}

static void adaptive_world(struct sim_cfg *cfg, uint64_t seed, uint8_t mode, double target)
{
    cfg_defaults(cfg, seed);
    for (unsigned p = 0; p < 3; p++) {
        cfg->up[p].loss = cfg->down[p].loss = adaptive_loss[p];
        cfg->up[p].delay_us = cfg->down[p].delay_us = (uint32_t)(20 * MS + p * 5 * MS);
    }
    cfg->cp.mode = mode;
    cfg->cp.target_loss = target;
    cfg->count = 60000; /* 1000 per second for 60 s */
    cfg->interval_us = 1 * MS;
    cfg->end_us = 62 * SEC;
}

struct window_figs {
    double loss_up, loss_down, copies_up, copies_down;
};

static void window_figs(const struct snap *a, const struct snap *b, struct window_figs *f)
{
    window_loss(&w, a->at, b->at, &f->loss_up, &f->loss_down);
    f->copies_up = copies_up(a, b);
    f->copies_down = copies_down(a, b);
}

static void adaptive(void)
{
    enum { SEEDS = 5 };
    const double target = 0.001;
    struct window_figs r[SEEDS], a[SEEDS], sum_r = {0}, sum_a = {0};
    double worst_up = 0, worst_down = 0;
    struct sim_cfg cfg;

    /* The same worlds (seeds) in both modes; figures over the datagrams sent in [5 s, 60 s). */
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        for (int k = 0; k < 2; k++) {
            struct window_figs *f = k ? &a[seed - 1] : &r[seed - 1];
            adaptive_world(&cfg, seed, k ? MPT_CLIENT_ADAPTIVE : MPT_CLIENT_REDUNDANT, target);
            sim_init(&w, &cfg);
            w.control = adaptive_control;
            sim_schedule_control(&w, 5 * SEC, SNAP_CODE);
            sim_schedule_control(&w, 60 * SEC, SNAP_CODE + 1);
            sim_run(&w);
            check_integrity(&w);
            check_data_tx(&w);
            ASSERT_EQ(w.c.sessions_established, 1);
            window_figs(&snaps[0], &snaps[1], f);
            printf("seed %llu %-9s: copies/datagram %.3f up, %.3f down; residual loss %.5f up, "
                   "%.5f down\n",
                   (unsigned long long)seed, k ? "adaptive" : "redundant", f->copies_up,
                   f->copies_down, f->loss_up, f->loss_down);
            sim_free(&w);
        }
        sum_r.copies_up += r[seed - 1].copies_up / SEEDS;
        sum_r.copies_down += r[seed - 1].copies_down / SEEDS;
        sum_r.loss_up += r[seed - 1].loss_up / SEEDS;
        sum_r.loss_down += r[seed - 1].loss_down / SEEDS;
        sum_a.copies_up += a[seed - 1].copies_up / SEEDS;
        sum_a.copies_down += a[seed - 1].copies_down / SEEDS;
        sum_a.loss_up += a[seed - 1].loss_up / SEEDS;
        sum_a.loss_down += a[seed - 1].loss_down / SEEDS;
        worst_up = fmax(worst_up, a[seed - 1].loss_up);
        worst_down = fmax(worst_down, a[seed - 1].loss_down);
    }
    printf("3 paths losing 1%%, 5%%, 20%% each way, 1000 datagrams/s for 60 s, %d seeds; window: "
           "datagrams sent from 5 s to 60 s\n",
           SEEDS);
    printf("redundant: copies/datagram %.3f up, %.3f down (server, per reply); residual loss "
           "%.5f up, %.5f down\n",
           sum_r.copies_up, sum_r.copies_down, sum_r.loss_up, sum_r.loss_down);
    printf("adaptive:  copies/datagram %.3f up, %.3f down (server, per reply); residual loss "
           "%.5f up, %.5f down\n",
           sum_a.copies_up, sum_a.copies_down, sum_a.loss_up, sum_a.loss_down);
    printf("adaptive residual loss up %.5f, down %.5f (worst seed; limit %.3f)\n", worst_up,
           worst_down, target);
    ASSERT_DBL_LE(worst_up, target);
    ASSERT_DBL_LE(worst_down, target);
    for (unsigned i = 0; i < SEEDS; i++) {
        ASSERT_DBL_LE(a[i].copies_up, r[i].copies_up - 0.5);
        ASSERT_DBL_LE(a[i].copies_down, r[i].copies_down - 0.5);
    }
}

/* Path 0 degrades from 1% to 30% at 30 s: copies rise and the target still holds once the
 * estimates caught up. With target 0.001 the target cannot be met any more (the best is all
 * three paths, 0.30 x 0.05 x 0.20 = 0.003): adaptive then sends what redundant sends. */
static void adaptive_degrade_run(double target, int seeds, struct window_figs *before,
                                 struct window_figs *after)
{
    struct sim_cfg cfg;

    memset(before, 0, sizeof(*before));
    memset(after, 0, sizeof(*after));
    for (uint64_t seed = 1; seed <= (uint64_t)seeds; seed++) {
        struct window_figs b, f;
        adaptive_world(&cfg, seed, MPT_CLIENT_ADAPTIVE, target);
        sim_init(&w, &cfg);
        w.control = adaptive_control;
        sim_schedule_control(&w, 5 * SEC, SNAP_CODE);
        sim_schedule_control(&w, 30 * SEC, 0);
        sim_schedule_control(&w, 30 * SEC, SNAP_CODE + 1);
        sim_schedule_control(&w, 35 * SEC, SNAP_CODE + 2);
        sim_schedule_control(&w, 60 * SEC, SNAP_CODE + 3);
        sim_run(&w);
        check_integrity(&w);
        window_figs(&snaps[0], &snaps[1], &b);
        window_figs(&snaps[2], &snaps[3], &f);
        printf("target %.3f seed %llu: before copies %.3f up %.3f down, loss %.5f up %.5f down; "
               "after copies %.3f up %.3f down, loss %.5f up %.5f down\n",
               target, (unsigned long long)seed, b.copies_up, b.copies_down, b.loss_up, b.loss_down,
               f.copies_up, f.copies_down, f.loss_up, f.loss_down);
        ASSERT_DBL_GE(f.copies_up, b.copies_up + 0.3);
        ASSERT_DBL_GE(f.copies_down, b.copies_down + 0.3);
        before->copies_up += b.copies_up / seeds;
        before->copies_down += b.copies_down / seeds;
        after->copies_up += f.copies_up / seeds;
        after->copies_down += f.copies_down / seeds;
        before->loss_up = fmax(before->loss_up, b.loss_up);
        before->loss_down = fmax(before->loss_down, b.loss_down);
        after->loss_up = fmax(after->loss_up, f.loss_up);
        after->loss_down = fmax(after->loss_down, f.loss_down);
        sim_free(&w);
    }
}

static void adaptive_degrade(void)
{
    enum { SEEDS = 2 };
    struct window_figs b, f;

    adaptive_degrade_run(0.005, SEEDS, &b, &f);
    printf("path 0 degrades from 1%% to 30%% loss at 30 s (paths 1-2: 5%%, 20%%), %d seeds; "
           "windows: sent 5-30 s and 35-60 s\n",
           SEEDS);
    printf("target 0.005: copies/datagram %.3f -> %.3f up, %.3f -> %.3f down; residual loss "
           "after %.5f up, %.5f down (worst seed; limit 0.005)\n",
           b.copies_up, f.copies_up, b.copies_down, f.copies_down, f.loss_up, f.loss_down);
    ASSERT_DBL_LE(b.loss_up, 0.005);
    ASSERT_DBL_LE(b.loss_down, 0.005);
    ASSERT_DBL_LE(f.loss_up, 0.005);
    ASSERT_DBL_LE(f.loss_down, 0.005);

    adaptive_degrade_run(0.001, SEEDS, &b, &f);
    printf("target 0.001: copies/datagram %.3f -> %.3f up, %.3f -> %.3f down; residual loss "
           "after %.5f up, %.5f down (worst seed; the floor with every path is 0.003, limit "
           "0.0045)\n",
           b.copies_up, f.copies_up, b.copies_down, f.copies_down, f.loss_up, f.loss_down);
    ASSERT_DBL_GE(f.copies_up, 2.95);
    ASSERT_DBL_GE(f.copies_down, 2.95);
    ASSERT_DBL_LE(f.loss_up, 0.0045);
    ASSERT_DBL_LE(f.loss_down, 0.0045);
}

/* ---- backup: failover and handback ---- */

struct backup_obs {
    uint64_t kill_at, revive_at;
    uint64_t fail_at[2], back_at[2]; /* first delivery via paths 1-2 after the kill, via path 0
                                        after the revival, per direction */
};

static struct backup_obs bk;

/* Codes: 1 kills path 0, 0 revives it. */
static void backup_control(struct sim *s, int code)
{
    if (code >= SNAP_CODE) {
        snap_take(s, &snaps[code - SNAP_CODE]);
        return;
    }
    set_path_down(s, 0, code);
    if (code)
        bk.kill_at = s->now;
    else
        bk.revive_at = s->now;
}

static void backup_deliver(struct sim *s, int down, unsigned path, uint32_t app, uint32_t seq)
{
    (void)s;
    (void)app;
    (void)seq;
    if (bk.kill_at && !bk.revive_at && path != 0 && !bk.fail_at[down])
        bk.fail_at[down] = s->now;
    if (bk.revive_at && path == 0 && !bk.back_at[down])
        bk.back_at[down] = s->now;
}

static void backup(void)
{
    enum { SEEDS = 10 };
    uint64_t worst_fail[2] = {0, 0}, worst_back[2] = {0, 0}, lost_fail[2] = {0, 0};
    uint64_t lost_back = 0, sent_fail = 0;
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        cfg_defaults(&cfg, seed);
        cfg.cp.mode = MPT_CLIENT_BACKUP;
        cfg.cp.priority[0] = 1;
        cfg.cp.priority[1] = cfg.cp.priority[2] = 2;
        cfg.count = 12000;
        cfg.end_us = 13 * SEC;
        memset(&bk, 0, sizeof(bk));
        sim_init(&w, &cfg);
        w.control = backup_control;
        w.deliver = backup_deliver;
        sim_schedule_control(&w, 4 * SEC + seed * 13 * MS, SNAP_CODE);
        sim_schedule_control(&w, 4 * SEC + seed * 13 * MS, 1);
        sim_schedule_control(&w, 8 * SEC + seed * 17 * MS, 0);
        sim_schedule_control(&w, 9 * SEC + seed * 17 * MS, SNAP_CODE + 1);
        sim_run(&w);
        check_integrity(&w);
        check_data_tx(&w);
        ASSERT_EQ(w.c.sessions_established, 1);
        snap_take(&w, &snaps[2]);
        /* Before the kill, and from 1 s after the revival, only path 0 carries data. */
        for (unsigned d = 0; d < 2; d++) {
            ASSERT_GT(snaps[0].data[d][0], 3000);
            for (unsigned p = 1; p < 3; p++) {
                ASSERT_EQ(snaps[0].data[d][p], 0);
                ASSERT_EQ(snaps[2].data[d][p] - snaps[1].data[d][p], 0);
                /* The backups stay probed meanwhile. */
                ASSERT_GT(snaps[0].dgram[d][p], 15);
            }
            ASSERT_GT(snaps[2].data[d][0] - snaps[1].data[d][0], 2500);
            ASSERT(bk.fail_at[d] && bk.back_at[d]);
            uint64_t f = bk.fail_at[d] - bk.kill_at, b = bk.back_at[d] - bk.revive_at;
            worst_fail[d] = f > worst_fail[d] ? f : worst_fail[d];
            worst_back[d] = b > worst_back[d] ? b : worst_back[d];
        }
        {
            double lu, ld;
            uint64_t n = 0;
            for (uint32_t i = 0; i < w.apps[0].sent; i++) {
                uint64_t t = w.apps[0].sent_at[i];
                if (t >= bk.kill_at - 100 * MS && t < bk.revive_at) {
                    n++;
                    lost_fail[0] += !w.apps[0].up_seen[i];
                    lost_fail[1] += w.apps[0].up_seen[i] && !w.apps[0].down_seen[i];
                }
                if (t >= bk.revive_at && t < bk.revive_at + 2 * SEC)
                    lost_back += !w.apps[0].down_seen[i];
            }
            sent_fail += n;
            window_loss(&w, bk.revive_at + 1 * SEC, 12 * SEC, &lu, &ld);
            ASSERT_DBL_LE(lu, 0.0);
            ASSERT_DBL_LE(ld, 0.0);
        }
        printf("seed %llu: failover %.3f s up, %.3f s down; handback %.3f s up, %.3f s down\n",
               (unsigned long long)seed, (double)(bk.fail_at[0] - bk.kill_at) / SEC,
               (double)(bk.fail_at[1] - bk.kill_at) / SEC,
               (double)(bk.back_at[0] - bk.revive_at) / SEC,
               (double)(bk.back_at[1] - bk.revive_at) / SEC);
        sim_free(&w);
    }
    printf("backup, priorities 1, 2, 2, 1000 datagrams/s, path 0 killed for 4 s, %d seeds\n",
           SEEDS);
    printf("before the kill and from 1 s after the revival, data copies on paths 1-2: 0 both "
           "ways\n");
    printf("failover (kill to first datagram delivered via path 1 or 2): worst %.3f s up, "
           "%.3f s down (limit 1 s)\n",
           (double)worst_fail[0] / SEC, (double)worst_fail[1] / SEC);
    printf("lost during failover: %.1f datagrams up, %.1f down per seed (of %.0f sent from "
           "0.1 s before the kill to the revival)\n",
           (double)lost_fail[0] / SEEDS, (double)lost_fail[1] / SEEDS, (double)sent_fail / SEEDS);
    printf("handback (revival to first datagram delivered via path 0): worst %.3f s up, %.3f s "
           "down (limit 1 s); lost during handback %llu\n",
           (double)worst_back[0] / SEC, (double)worst_back[1] / SEC, (unsigned long long)lost_back);
    for (unsigned d = 0; d < 2; d++) {
        ASSERT_LE(worst_fail[d], 1 * SEC);
        ASSERT_LE(worst_back[d], 1 * SEC);
    }
    ASSERT_EQ(lost_back, 0);
}

/* ---- balance: shares by weight ---- */

/* Code 1 kills path 0. */
static void balance_control(struct sim *s, int code)
{
    if (code >= SNAP_CODE) {
        snap_take(s, &snaps[code - SNAP_CODE]);
        return;
    }
    set_path_down(s, 0, 1);
}

/* The worst relative deviation of the paths' shares of data copies in [a, b) from their shares
 * of weight, among the paths of `mask`. */
static double share_dev(const struct snap *a, const struct snap *b, unsigned d,
                        const unsigned *weight, uint32_t mask, double share[SIM_MAX_PATHS])
{
    uint64_t total = 0;
    unsigned wsum = 0;
    double worst = 0;

    for (unsigned p = 0; p < 3; p++) {
        share[p] = 0;
        if (mask & (1u << p)) {
            total += b->data[d][p] - a->data[d][p];
            wsum += weight[p];
        }
    }
    for (unsigned p = 0; p < 3; p++) {
        if (!(mask & (1u << p)))
            continue;
        share[p] = (double)(b->data[d][p] - a->data[d][p]) / (double)total;
        worst = fmax(worst, fabs(share[p] / ((double)weight[p] / wsum) - 1));
    }
    return worst;
}

static void balance_run(const unsigned *weight)
{
    enum { SEEDS = 5 };
    double worst_dev = 0, worst_after = 0, sh[2][SIM_MAX_PATHS], sh_after[2][SIM_MAX_PATHS];
    uint64_t worst_move[2] = {0, 0}, lost = 0, sent = 0;
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        const uint64_t kill = 6 * SEC + seed * 29 * MS;
        cfg_defaults(&cfg, seed);
        cfg.cp.mode = MPT_CLIENT_BALANCE;
        for (unsigned p = 0; p < 3; p++)
            cfg.cp.weight[p] = weight[p];
        cfg.count = 10000;
        cfg.end_us = 11 * SEC;
        sim_init(&w, &cfg);
        w.control = balance_control;
        sim_schedule_control(&w, 1 * SEC, SNAP_CODE);
        sim_schedule_control(&w, kill, SNAP_CODE + 1);
        sim_schedule_control(&w, kill, 1);
        sim_schedule_control(&w, kill + 1 * SEC, SNAP_CODE + 2);
        sim_schedule_control(&w, 10 * SEC, SNAP_CODE + 3);
        sim_run(&w);
        check_integrity(&w);
        check_data_tx(&w);
        /* One copy per datagram, both ways. */
        ASSERT_EQ(w.c.data_copies, w.c.data_dgrams);
        ASSERT_EQ(w.c.data_dgrams, w.sent_up);
        snap_take(&w, &snaps[4]);
        ASSERT_EQ(snaps[4].down_copies, w.echo_sent);
        for (unsigned d = 0; d < 2; d++) {
            worst_dev = fmax(worst_dev, share_dev(&snaps[0], &snaps[1], d, weight, 7, sh[d]));
            worst_after =
                fmax(worst_after, share_dev(&snaps[2], &snaps[3], d, weight, 6, sh_after[d]));
            /* Path 0's share has moved: it gets no data copy from 1 s after its death on. */
            ASSERT_EQ(snaps[3].data[d][0] - snaps[2].data[d][0], 0);
            uint64_t m = w.path_data_last_us[d][0] - kill;
            worst_move[d] = m > worst_move[d] ? m : worst_move[d];
        }
        for (uint32_t i = 0; i < w.apps[0].sent; i++) {
            uint64_t t = w.apps[0].sent_at[i];
            if (t >= kill && t < kill + 1 * SEC) {
                sent++;
                lost += !w.apps[0].down_seen[i];
            }
        }
        {
            double lu, ld;
            window_loss(&w, kill + 1 * SEC, 10 * SEC, &lu, &ld);
            ASSERT_DBL_LE(lu, 0.0);
            ASSERT_DBL_LE(ld, 0.0);
        }
        sim_free(&w);
    }
    printf("balance, weights %u, %u, %u, no loss, 1000 datagrams/s, %d seeds: copies/datagram "
           "1.000 both ways\n",
           weight[0], weight[1], weight[2], SEEDS);
    printf("shares (last seed) up %.3f %.3f %.3f, down %.3f %.3f %.3f; worst deviation from the "
           "weights %.1f%% (limit 10%%)\n",
           sh[0][0], sh[0][1], sh[0][2], sh[1][0], sh[1][1], sh[1][2], 100 * worst_dev);
    printf("path 0 killed: last copy on it %.3f s up, %.3f s down after the kill (limit 1 s); "
           "then paths 1-2 share up %.3f %.3f, down %.3f %.3f, worst deviation %.1f%% (limit "
           "10%%); round-trip loss in the first second %.3f\n",
           (double)worst_move[0] / SEC, (double)worst_move[1] / SEC, sh_after[0][1], sh_after[0][2],
           sh_after[1][1], sh_after[1][2], 100 * worst_after, (double)lost / (double)sent);
    ASSERT_DBL_LE(worst_dev, 0.10);
    ASSERT_DBL_LE(worst_after, 0.10);
    ASSERT_LE(worst_move[0], 1 * SEC);
    ASSERT_LE(worst_move[1], 1 * SEC);
}

static void balance(void)
{
    static const unsigned w321[3] = {3, 2, 1}, w111[3] = {1, 1, 1};

    balance_run(w321);
    balance_run(w111);
}

/* ---- what probes cost on an idle tunnel ---- */

static void probe_overhead_control(struct sim *s, int code)
{
    snap_take(s, &snaps[code - SNAP_CODE]);
}

static void probe_overhead(void)
{
    const double secs = 20;
    double worst = 0;
    struct sim_cfg cfg;

    for (unsigned mode = 0; mode < 4; mode++) {
        cfg_defaults(&cfg, 3);
        cfg.cp.mode = (uint8_t)mode;
        cfg.count = 0;
        cfg.end_us = 26 * SEC;
        sim_init(&w, &cfg);
        w.control = probe_overhead_control;
        sim_schedule_control(&w, 5 * SEC, SNAP_CODE);
        sim_schedule_control(&w, 25 * SEC, SNAP_CODE + 1);
        sim_run(&w);
        printf("%-9s idle, probe interval 200 ms:", mode_names[mode]);
        for (unsigned p = 0; p < cfg.npaths; p++) {
            double b[2], n[2];
            for (unsigned d = 0; d < 2; d++) {
                n[d] = (double)(snaps[1].dgram[d][p] - snaps[0].dgram[d][p]) / secs;
                b[d] = (double)(snaps[1].bytes[d][p] - snaps[0].bytes[d][p]) / secs;
                /* With the IPv4 and UDP headers: what the link carries. */
                worst = fmax(worst, b[d] + 28 * n[d]);
                ASSERT_GT(n[d], 4.5);
            }
            printf(" path %u %.0f B/s up (%.1f/s), %.0f B/s down (%.1f/s);", p, b[0], n[0], b[1],
                   n[1]);
        }
        printf("\n");
        sim_free(&w);
    }
    printf("probe overhead per path and direction, IPv4 and UDP headers included: at most %.0f "
           "B/s (limit 1000 B/s)\n",
           worst);
    ASSERT_DBL_LE(worst, 1000);
}

/* ---- balance over paths of unequal delay ---- */

/* Balance mode sends each datagram on one path, so a slow path's datagrams arrive long after
 * their neighbours' counters on a fast one: 50,000 datagrams/s over paths of 20 ms and 300 ms
 * put 14,000 counters between them, past the old 8,192-wide window, which dropped the slow
 * path's datagrams as replays. Nothing may be lost or refused now. */
static void balance_skew(void)
{
    struct sim_cfg cfg;
    uint64_t refused;

    cfg_defaults(&cfg, 7);
    cfg.cp.mode = MPT_CLIENT_BALANCE;
    cfg.npaths = 2;
    for (unsigned p = 0; p < 2; p++) {
        cfg.cp.weight[p] = 1;
        cfg.up[p].jitter_us = cfg.down[p].jitter_us = 0;
    }
    cfg.up[1].delay_us = cfg.down[1].delay_us = 300 * MS;
    cfg.count = 75000;
    cfg.interval_us = 20; /* 50,000 datagrams/s for 1.5 s */
    cfg.min_len = cfg.max_len = 100;
    cfg.end_us = 6 * SEC;
    sim_init(&w, &cfg);
    sim_run(&w);
    check_integrity(&w);
    refused = w.s.ctr.drops[MPT_DROP_REPLAY] + w.c.ctr.drops[MPT_DROP_REPLAY];
    printf("balance, 20 ms and 300 ms paths, 50000 datagrams/s: loss up %.5f down %.5f (limit 0), "
           "refused as replays %llu (limit 1: the handshake's reply on the second path), slow path "
           "carried %llu (limit > %u)\n",
           loss_up(&w), loss_down(&w), (unsigned long long)refused,
           (unsigned long long)w.path_data[0][1], cfg.count / 4);
    ASSERT_GT(w.path_data[0][1], cfg.count / 4);
    ASSERT_LE(refused, 1);
    ASSERT_DBL_LE(loss_up(&w), 0);
    ASSERT_DBL_LE(loss_down(&w), 0);
    sim_free(&w);
}

/* ---- a selective relay on path 0 (PROTOCOL.md §5 "copies received", §8) ---- */

/* With datagrams of 100 bytes or more, DATA datagrams this long are data; shorter ones are probes,
 * acks, challenges and their echoes, and handshakes, which the relay forwards. */
#define RELAY_DATA_MIN 144
#define RELAY_POOL 100

static struct relay {
    int stale; /* 0: drop the data; 1: send a stale copy of one forwarded before in its place */
    uint8_t pool[2][RELAY_POOL][512];
    size_t len[2][RELAY_POOL];
    unsigned n[2], turn[2];
    uint64_t dropped[2];
    uint64_t first_echo;
} rl;

static int relay_filter(struct sim *s, int to_server, unsigned path, const uint8_t **data,
                        size_t *len)
{
    unsigned d = !to_server, i;

    (void)s;
    if (path != 0 || *len < RELAY_DATA_MIN || (*data)[1] != MPT_TYPE_DATA)
        return 1;
    if (!rl.stale) {
        rl.dropped[d]++;
        return 0;
    }
    if (rl.n[d] < RELAY_POOL) {
        ASSERT_LE(*len, sizeof(rl.pool[0][0]));
        memcpy(rl.pool[d][rl.n[d]], *data, *len);
        rl.len[d][rl.n[d]++] = *len;
        return 1;
    }
    rl.dropped[d]++;
    i = rl.turn[d]++ % RELAY_POOL;
    *data = rl.pool[d][i];
    *len = rl.len[d][i];
    return 1;
}

static void relay_deliver(struct sim *s, int down, unsigned path, uint32_t app, uint32_t seq)
{
    (void)path;
    (void)app;
    (void)seq;
    if (down && !rl.first_echo)
        rl.first_echo = s->now;
}

/* Two paths, the relay on path 0; returns the round-trip loss of what was sent from 1 s after the
 * application's start on, and the time from its start to the first echo. */
static void relay_run(uint64_t seed, uint8_t mode, int stale, double *loss, uint64_t *first)
{
    struct sim_cfg cfg;
    uint64_t start;
    double up, down;

    cfg_defaults(&cfg, seed);
    cfg.npaths = 2;
    cfg.cp.mode = mode;
    cfg.cp.priority[0] = 1;
    cfg.cp.priority[1] = 2;
    cfg.min_len = 100;
    cfg.max_len = 400;
    cfg.count = 4000;
    cfg.start_us = 1 * SEC;
    cfg.end_us = 7 * SEC;
    if (stale) /* the healthy path is the slower one: the relay's lies would make it lose */
        cfg.up[1].delay_us = cfg.down[1].delay_us = 35 * MS;
    memset(&rl, 0, sizeof(rl));
    rl.stale = stale;
    sim_init(&w, &cfg);
    w.filter = relay_filter;
    w.deliver = relay_deliver;
    sim_run(&w);
    check_integrity(&w);
    start = w.apps[0].sent_at[0];
    ASSERT(rl.first_echo);
    *first = rl.first_echo - start;
    window_loss(&w, start + 1 * SEC, start + 4 * SEC, &up, &down);
    *loss = 1.0 - (1.0 - up) * (1.0 - down);
    printf("seed %llu: round-trip loss %.4f, first echo %.3f s; relay dropped %llu up, %llu "
           "down; path 0 loss %.3f -> / %.3f <-, unusable %d / %d\n",
           (unsigned long long)seed, *loss, (double)*first / SEC, (unsigned long long)rl.dropped[0],
           (unsigned long long)rl.dropped[1], w.c.paths[0].loss_up, w.c.paths[0].loss_down,
           w.c.paths[0].unusable[0], w.c.paths[0].unusable[1]);
    /* Path 0 never passes for a healthy path; in backup mode, where it would carry everything,
     * it is unusable both ways. */
    ASSERT_DBL_GE(w.c.paths[0].loss_up, 0.25);
    ASSERT_DBL_GE(w.c.paths[0].loss_down, 0.25);
    if (mode == MPT_CLIENT_BACKUP)
        ASSERT(w.c.paths[0].unusable[0] && w.c.paths[0].unusable[1]);
    ASSERT(!w.c.paths[1].unusable[0] && !w.c.paths[1].unusable[1]);
    /* (fec mode sends each datagram once, each way: path 0 carries a share of them, not all.) */
    ASSERT_GT(rl.dropped[0], mode == MPT_CLIENT_FEC ? 50 : 100);
    ASSERT_GT(rl.dropped[1], mode == MPT_CLIENT_FEC ? 50 : 100);
    sim_free(&w);
}

/* Backup mode, the relay forwarding only what is not data: the path looks alive (its probes are
 * answered) but loses every datagram, and must be given up within 1 s. */
static void relay_backup(void)
{
    enum { SEEDS = 5 };
    uint64_t worst_first = 0, first;
    double worst = 0, loss;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        relay_run(seed, MPT_CLIENT_BACKUP, 0, &loss, &first);
        worst = fmax(worst, loss);
        worst_first = first > worst_first ? first : worst_first;
    }
    printf("backup, path 0 (priority 1) carries probes but no data, 1000 datagrams/s, %d seeds\n",
           SEEDS);
    printf("first echo after %.3f s (worst; limit 1 s); round-trip loss from 1 s on %.4f "
           "(limit 0.01)\n",
           (double)worst_first / SEC, worst);
    ASSERT_LE(worst_first, 1 * SEC);
    ASSERT_DBL_LE(worst, 0.01);
}

/* Adaptive mode, the relay dropping the data and re-sending stale copies of data it forwarded
 * before, both ways: it must not pass for a loss-free path. */
static void relay_stale(void)
{
    enum { SEEDS = 5 };
    uint64_t first;
    double worst = 0, loss;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        relay_run(seed, MPT_CLIENT_ADAPTIVE, 1, &loss, &first);
        worst = fmax(worst, loss);
    }
    printf("adaptive, path 0 re-sends stale copies instead of data, path 1 30 ms slower, %d "
           "seeds\n",
           SEEDS);
    printf("round-trip loss from 1 s on %.4f (worst; limit 0.01)\n", worst);
    ASSERT_DBL_LE(worst, 0.01);
}

/* fec mode, the same relay re-sending stale copies of data (and of repairs) both ways: the stale
 * copies are refused by the window, rebuild nothing, and do not pass the path for a loss-free one;
 * no datagram is delivered twice (check_integrity). */
static void relay_fec(void)
{
    enum { SEEDS = 3 };
    uint64_t first;
    double worst = 0, loss;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        relay_run(seed, MPT_CLIENT_FEC, 1, &loss, &first);
        worst = fmax(worst, loss);
    }
    printf("fec, path 0 re-sends stale copies instead of data, path 1 30 ms slower, %d seeds\n",
           SEEDS);
    printf("round-trip loss from 1 s on %.4f (worst; limit 0.01)\n", worst);
    ASSERT_DBL_LE(worst, 0.01);
}

/* ---- a path never heard before takes over alone (PROTOCOL.md §7 path validation) ---- */

static uint64_t np_switch, np_first[2];

/* Code 0: path 1 dead, path 0 alive; 1: the reverse (the client moved to a new network). */
static void new_path_control(struct sim *s, int code)
{
    set_path_down(s, 0, code);
    set_path_down(s, 1, !code);
    if (code)
        np_switch = s->now;
}

static void new_path_deliver(struct sim *s, int down, unsigned path, uint32_t app, uint32_t seq)
{
    (void)app;
    (void)seq;
    if (np_switch && path == 1 && !np_first[down])
        np_first[down] = s->now;
}

static void new_path(void)
{
    enum { SEEDS = 5 };
    uint64_t worst[2] = {0, 0};
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        cfg_defaults(&cfg, seed);
        cfg.npaths = 2;
        cfg.count = 4000;
        cfg.end_us = 6 * SEC;
        np_switch = np_first[0] = np_first[1] = 0;
        sim_init(&w, &cfg);
        w.control = new_path_control;
        w.deliver = new_path_deliver;
        sim_schedule_control(&w, 0, 0);
        sim_schedule_control(&w, 2 * SEC + seed * 7 * MS, 1);
        sim_run(&w);
        check_integrity(&w);
        ASSERT(np_first[0] && np_first[1]);
        for (unsigned d = 0; d < 2; d++)
            if (np_first[d] - np_switch > worst[d])
                worst[d] = np_first[d] - np_switch;
        ASSERT_EQ(w.s.sessions[w.s.session_slots.head].npaths, 2);
        for (unsigned p = 0; p < 2; p++)
            ASSERT(w.s.sessions[w.s.session_slots.head].paths[p].validated);
        sim_free(&w);
    }
    printf("path 1, never heard before, alone from 2 s on (20 ms each way), %d seeds: first "
           "datagram through it %.3f s up, %.3f s down after the switch (worst; limit 0.1 s: "
           "its return address is validated in one round trip)\n",
           SEEDS, (double)worst[0] / SEC, (double)worst[1] / SEC);
    ASSERT_LE(worst[0], 100 * MS);
    ASSERT_LE(worst[1], 100 * MS);
}

const struct task_case sim_mode_cases[] = {
    {"new_path", new_path},
    {"relay_backup", relay_backup},
    {"relay_stale", relay_stale},
    {"relay_fec", relay_fec},
    {"down_idle", down_idle},
    {"down_busy", down_busy},
    {"adaptive", adaptive},
    {"adaptive_degrade", adaptive_degrade},
    {"backup", backup},
    {"balance", balance},
    {"balance_skew", balance_skew},
    {"probe_overhead", probe_overhead},
    {NULL, NULL},
};
