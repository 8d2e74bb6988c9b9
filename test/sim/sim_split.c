/* Datagrams larger than the paths carry whole, sent as pieces (PROTOCOL.md §5 PIECE) over lossy
 * paths: each piece is de-duplicated on its own and may arrive over any path, so a datagram of k
 * pieces is lost only when some piece is lost on every path (about k p^3), where IP fragments,
 * which must all arrive over one path, lose it with (1 - (1 - p)^k)^3. */
#include <math.h>

#include "sim.h"

#define PIECE_MAX_DGRAM                                                                            \
    752 /* what each simulated path carries whole: a 2,000-byte datagram in 3                      \
         */

static unsigned sim_path_max(void *arg, const struct mpt_addr *to)
{
    (void)arg;
    (void)to;
    return PIECE_MAX_DGRAM;
}

/* The server learns its paths as datagrams arrive: tell it their size when it asks, as its
 * driver does after each call. */
static void set_mtus(struct sim *w)
{
    if (w->s.mtu_dirty)
        mpt_server_set_path_mtus(&w->s, 0, sim_path_max, NULL);
}

static void split_loss(void)
{
    enum { SEEDS = 10 };
    const double p = 0.20;
    const unsigned k = 3;
    double sum_up = 0, sum_down = 0;
    uint64_t split_c = 0, split_s = 0, rebuilt_c = 0, rebuilt_s = 0, expired = 0;
    struct sim w;
    struct sim_cfg cfg;

    ASSERT_EQ(mpt_split_count(MPT_FLOW_HDR_LEN + 2000, PIECE_MAX_DGRAM), k);
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        cfg_defaults(&cfg, seed);
        set_all(&cfg, p, 0, 0);
        cfg.count = 5000;
        cfg.min_len = cfg.max_len = 2000;
        cfg.end_us = 8 * SEC;
        sim_init(&w, &cfg);
        for (unsigned i = 0; i < cfg.npaths; i++)
            mpt_client_set_path_mtu(&w.c, i, PIECE_MAX_DGRAM);
        w.step = set_mtus;
        sim_run(&w);
        ASSERT_EQ(w.sent_up, 5000);
        check_integrity(&w);
        sum_up += loss_up(&w);
        sum_down += loss_down(&w);
        split_c += w.c.split.st.split;
        split_s += w.s.split.st.split;
        rebuilt_c += w.c.split.st.reassembled;
        rebuilt_s += w.s.split.st.reassembled;
        expired +=
            w.c.split.st.drops[MPT_SPLIT_DROP_EXPIRED] + w.s.split.st.drops[MPT_SPLIT_DROP_EXPIRED];
        ASSERT_EQ(w.c.split.st.drops[MPT_SPLIT_DROP_BAD] + w.s.split.st.drops[MPT_SPLIT_DROP_BAD],
                  0);
        sim_free(&w);
    }
    {
        double piece = pow(p, 3), expect = 1 - pow(1 - piece, k);
        double frag = pow(1 - pow(1 - p, k), 3);
        printf("3 paths, %.0f%% loss each way, 2,000-byte datagrams in %u pieces, %d seeds\n",
               p * 100, k, SEEDS);
        printf("split: client %llu, server %llu; rebuilt: server %llu, client %llu; partial "
               "datagrams expired %llu\n",
               (unsigned long long)split_c, (unsigned long long)split_s,
               (unsigned long long)rebuilt_s, (unsigned long long)rebuilt_c,
               (unsigned long long)expired);
        printf("residual loss up %.4f, down %.4f (expected 1-(1-p^3)^3 = %.4f; limit %.4f; IP "
               "fragments on each path would lose %.4f)\n",
               sum_up / SEEDS, sum_down / SEEDS, expect, 1.5 * expect, frag);
        ASSERT_DBL_LE(sum_up / SEEDS, 1.5 * expect);
        ASSERT_DBL_LE(sum_down / SEEDS, 1.5 * expect);
        ASSERT_DBL_GE(sum_up / SEEDS, 0.5 * expect); /* the pieces did meet the loss */
        ASSERT_GT(split_c, SEEDS * 4000);
        ASSERT_GT(split_s, SEEDS * 3000);
    }
}

const struct task_case sim_split_cases[] = {
    {"split_loss", split_loss},
    {NULL, NULL},
};
