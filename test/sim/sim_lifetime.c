/* Tables expiring and coming back in the simulated world: flows idle past their timeout on both
 * sides between every pair of datagrams, and blackouts of every path longer than the session
 * timeout, so that the server forgets the session and the client makes a new one. Every datagram
 * sent away from a blackout must make the round trip, once. */
#include "sim.h"

static struct sim w;

#define NBLACKOUTS 3
#define BLACKOUT_US (3 * SEC)

static const uint64_t blackout_at[NBLACKOUTS] = {15 * SEC + 123 * MS, 30 * SEC + 457 * MS,
                                                 45 * SEC + 789 * MS};

struct life_obs {
    int in_blackout;
    unsigned current;
    uint64_t forgotten_at[NBLACKOUTS]; /* when the server's session table became empty */
    uint64_t last_rx_at[NBLACKOUTS];   /* the session's last datagram before that */
    uint64_t min_flows_after_idle;
};

static struct life_obs lo;

static void life_control(struct sim *s, int code)
{
    for (unsigned p = 0; p < s->cfg.npaths; p++) {
        mpt_impair_set_down(&s->up[p], code >= 0);
        mpt_impair_set_down(&s->down[p], code >= 0);
    }
    lo.in_blackout = code >= 0;
    if (code >= 0)
        lo.current = (unsigned)code;
}

static void life_step(struct sim *s)
{
    uint32_t slot = s->s.session_slots.head;

    if (!lo.in_blackout)
        return;
    if (slot != MPT_NIL)
        lo.last_rx_at[lo.current] = s->s.sessions[slot].last_rx_us;
    else if (!lo.forgotten_at[lo.current])
        lo.forgotten_at[lo.current] = s->now;
}

static int near_blackout(uint64_t t)
{
    for (unsigned i = 0; i < NBLACKOUTS; i++)
        if (t + 100 * MS >= blackout_at[i] && t < blackout_at[i] + BLACKOUT_US + 2 * SEC)
            return 1;
    return 0;
}

static void expiry_cycles(void)
{
    const uint64_t seeds = 5;
    uint64_t worst_forget = 0, lost = 0, counted = 0;
    struct sim_cfg cfg;

    for (uint64_t seed = 1; seed <= seeds; seed++) {
        cfg_defaults(&cfg, seed);
        set_all(&cfg, 0.05, 0.01, 0.01);
        cfg.napps = 16;
        cfg.count = 24;
        cfg.interval_us = 2500 * MS; /* more than both flow timeouts */
        cfg.end_us = cfg.start_us + cfg.count * cfg.interval_us + 4 * SEC;
        cfg.cp.flow_timeout_ms = 1000;
        cfg.sp.flow_timeout_ms = 1000;
        cfg.sp.session_timeout_ms = 2000;
        cfg.sp.max_flows = 32;
        cfg.cp.max_flows = 32;
        cfg.sp.max_sessions = 2;
        memset(&lo, 0, sizeof(lo));
        sim_init(&w, &cfg);
        w.control = life_control;
        w.step = life_step;
        for (unsigned i = 0; i < NBLACKOUTS; i++) {
            sim_schedule_control(&w, blackout_at[i], (int)i);
            sim_schedule_control(&w, blackout_at[i] + BLACKOUT_US, -1);
        }
        sim_run(&w);
        check_integrity(&w);
        /* Every datagram found its flows gone on both sides, and opened them again. */
        ASSERT_EQ(w.c.next_flow_id - 1, w.sent_up);
        ASSERT_EQ(w.flow_opens, w.recv_up);
        /* Each blackout cost the session; the client made a new one each time. */
        ASSERT_EQ(w.c.sessions_established, 1 + NBLACKOUTS);
        ASSERT_EQ(w.s.ctr.handshakes, 1 + NBLACKOUTS);
        for (unsigned i = 0; i < NBLACKOUTS; i++) {
            uint64_t d;
            ASSERT(lo.forgotten_at[i] != 0);
            d = lo.forgotten_at[i] - lo.last_rx_at[i];
            /* The session timeout, and at most the server timer's period of one second. */
            ASSERT_GE(d, 2 * SEC);
            worst_forget = d > worst_forget ? d : worst_forget;
        }
        /* Idle at the end: every table empty, the session kept by its probes. */
        ASSERT_EQ(mpt_client_flows(&w.c), 0);
        ASSERT_EQ(w.s.flow_slots.used, 0);
        ASSERT_EQ(w.s.session_slots.used, 1);
        for (unsigned a = 0; a < cfg.napps; a++) {
            struct app *ap = &w.apps[a];
            ASSERT_EQ(ap->sent, cfg.count);
            for (uint32_t i = 0; i < ap->sent; i++) {
                if (near_blackout(ap->sent_at[i]))
                    continue;
                counted++;
                lost += !ap->down_seen[i];
            }
        }
        printf("seed %llu: %llu datagrams, each opening flows anew (client %u, server %llu "
               "opens); %u sessions\n",
               (unsigned long long)seed, (unsigned long long)w.sent_up, w.c.next_flow_id - 1,
               (unsigned long long)w.flow_opens, w.c.sessions_established);
        sim_free(&w);
    }
    printf("flows expired between all datagrams, %d blackouts of %.0f s per run: sessions "
           "forgotten at most %.3f s after their last datagram (limit 3 s); round trips lost away "
           "from blackouts %llu of %llu (limit 2)\n",
           NBLACKOUTS, (double)BLACKOUT_US / SEC, (double)worst_forget / SEC,
           (unsigned long long)lost, (unsigned long long)counted);
    ASSERT_LE(worst_forget, 3 * SEC);
    ASSERT_LE(lost, 2);
}

const struct task_case sim_lifetime_cases[] = {
    {"expiry_cycles", expiry_cycles},
    {NULL, NULL},
};
