/* fec mode at both ends (PROTOCOL.md §11): the planning they share (core/fecplan: the prior for
 * paths not measured, when a block is closed), the server's encoders (one per session in fec
 * mode, allocated on its first coded reply, never replies uncoded for want of one), and the
 * tables each end allocates only when a mode needs them (the decoder, the reorder buffer). */
#include <arpa/inet.h>
#include <math.h>

#include "core/client.h"
#include "core/fecplan.h"
#include "core/server.h"
#include "task.h"

#define SEC 1000000ULL
#define MS 1000ULL
#define NCLIENTS 12

static const uint8_t secret[32] = {0x5e, 0xc7, 0xfe, 0xc0};

/* The plan: a path not measured counts as 20% (or more); at 20% a block of 10 is given longer
 * (its repairs cost far more per source than a full block's), at 1% one of 20 is closed at 10 ms;
 * no block is held past 50 ms, nor past half the receiver's wait, nor one of fixed K:M past 10 ms.
 */
static void plan(void)
{
    struct mpt_fecplan p;
    double l20[3] = {0.2, 0.2, 0.2}, l1[3] = {0.01, 0.01, 0.01};
    unsigned w[3] = {1, 1, 1};
    uint64_t t0 = 1000 * MS;

    ASSERT_DBL_GE(mpt_fecplan_loss(0, 0), MPT_FECPLAN_PRIOR_LOSS);
    ASSERT_DBL_GE(mpt_fecplan_loss(0.5, 0), 0.5);
    ASSERT_DBL_LE(mpt_fecplan_loss(0.01, 1), 0.01);
    memset(&p, 0, sizeof(p));
    mpt_fecplan_set(&p, l20, w, 7, 3, 0.004, 0, 0);
    ASSERT_EQ(mpt_fecplan_k(&p), MPT_FEC_K_MAX);
    printf("3 x 20%%, target 0.004: m(10) %u, m(40) %u, m(64) %u\n", mpt_fecplan_m(&p, 10),
           mpt_fecplan_m(&p, 40), mpt_fecplan_m(&p, 64));
    ASSERT_EQ(mpt_fecplan_next(&p, 10, t0, t0 + 10 * MS), t0 + 20 * MS);
    ASSERT_EQ(mpt_fecplan_next(&p, 20, t0, t0 + 20 * MS), t0 + 30 * MS);
    ASSERT_EQ(mpt_fecplan_next(&p, 30, t0, t0 + 40 * MS), t0 + 50 * MS);
    ASSERT_EQ(mpt_fecplan_next(&p, 30, t0, t0 + MPT_FECPLAN_BLOCK_MAX_US), 0);
    ASSERT_EQ(mpt_fecplan_next(&p, 64, t0, t0 + 10 * MS), 0);
    ASSERT_EQ(mpt_fecplan_first(&p, t0), t0 + MPT_FEC_BLOCK_US);
    /* Never open past half the receiver's wait: its repairs must come within it. */
    mpt_fecplan_wait(&p, 50 * MS);
    ASSERT_EQ(mpt_fecplan_first(&p, t0), t0 + 10 * MS);
    ASSERT_EQ(mpt_fecplan_next(&p, 20, t0, t0 + 20 * MS), t0 + 25 * MS);
    ASSERT_EQ(mpt_fecplan_next(&p, 25, t0, t0 + 25 * MS), 0);
    mpt_fecplan_wait(&p, 30 * MS);
    ASSERT_EQ(mpt_fecplan_next(&p, 10, t0, t0 + 10 * MS), t0 + 15 * MS);
    ASSERT_EQ(mpt_fecplan_next(&p, 15, t0, t0 + 15 * MS), 0);
    mpt_fecplan_wait(&p, 8 * MS); /* fec_wait = 8ms: blocks of 4 ms */
    ASSERT_EQ(mpt_fecplan_first(&p, t0), t0 + 4 * MS);
    ASSERT_EQ(mpt_fecplan_next(&p, 4, t0, t0 + 4 * MS), 0);
    mpt_fecplan_wait(&p, 10000 * MS); /* a long wait: the 50 ms of MPT_FECPLAN_BLOCK_MAX_US */
    ASSERT_EQ(mpt_fecplan_next(&p, 30, t0, t0 + 40 * MS), t0 + 50 * MS);
    ASSERT_EQ(mpt_fecplan_next(&p, 30, t0, t0 + 50 * MS), 0);
    mpt_fecplan_wait(&p, 1 * MS);
    ASSERT_EQ(mpt_fecplan_first(&p, t0), t0 + 1 * MS);
    mpt_fecplan_wait(&p, 50 * MS);
    /* Planned again only when what it depends on changes. */
    mpt_fecplan_set(&p, l1, w, 7, 3, 0.004, 0, 0);
    ASSERT_LE(mpt_fecplan_m(&p, 20), 1);
    ASSERT_EQ(mpt_fecplan_next(&p, 20, t0, t0 + 10 * MS), 0);
    ASSERT(!mpt_fecplan_none(&p));
    /* Paths that lose no more than the target: no block gets a repair (its sources are not
     * coded at all); a lossy path outside the mask does not count, one inside does. */
    {
        double l0[3] = {0, 0.0005, 0.3};
        mpt_fecplan_set(&p, l0, w, 3, 3, 0.001, 0, 0);
        ASSERT(mpt_fecplan_none(&p));
        ASSERT_EQ(mpt_fecplan_m(&p, 1), 0);
        ASSERT_EQ(mpt_fecplan_m(&p, 64), 0);
        mpt_fecplan_set(&p, l0, w, 7, 3, 0.001, 0, 0);
        ASSERT(!mpt_fecplan_none(&p));
        ASSERT_GT(mpt_fecplan_m(&p, 64), 0);
        mpt_fecplan_set(&p, l0, w, 3, 3, 0.001, 64, 9); /* fixed: always coded */
        ASSERT(!mpt_fecplan_none(&p));
        ASSERT_EQ(mpt_fecplan_m(&p, 64), 9);
    }
    mpt_fecplan_set(&p, l20, w, 7, 3, 0.004, 10, 6);
    ASSERT_EQ(mpt_fecplan_k(&p), 10);
    ASSERT_EQ(mpt_fecplan_m(&p, 10), 6);
    ASSERT_EQ(mpt_fecplan_m(&p, 5), 3);
    ASSERT_EQ(mpt_fecplan_next(&p, 5, t0, t0 + 10 * MS), 0);
}

/* A server and NCLIENTS clients of one path each, wired directly (nothing lost), the target
 * echoing every datagram. */
static struct {
    struct mpt_server s;
    struct mpt_client c[NCLIENTS];
    struct mpt_outq q;
    struct mpt_addr paddr[NCLIENTS];
    uint64_t now, cdl[NCLIENTS], sdl;
    uint64_t echoes[NCLIENTS];
    unsigned n;
} fx;

static struct mpt_addr addr4(uint32_t ip, uint16_t port)
{
    struct mpt_addr a;

    memset(&a, 0, sizeof(a));
    a.u.in4.sin_family = AF_INET;
    a.u.in4.sin_addr.s_addr = htonl(ip);
    a.u.in4.sin_port = htons(port);
    return a;
}

struct held {
    int to_server;
    unsigned who;
    uint32_t len;
    uint8_t data[MPT_MAX_PAYLOAD + 64];
};

static struct held *inflight;
static unsigned ninflight;
#define INFLIGHT_MAX 8192

static void keep(int to_server, unsigned who, const uint8_t *d, size_t len)
{
    ASSERT_LT(ninflight, INFLIGHT_MAX);
    inflight[ninflight].to_server = to_server;
    inflight[ninflight].who = who;
    inflight[ninflight].len = (uint32_t)len;
    memcpy(inflight[ninflight].data, d, len);
    ninflight++;
}

/* Takes what an end queued: datagrams to the other end are kept for delivery. */
static void collect(int from_server, unsigned who)
{
    for (unsigned i = 0; i < fx.q.n; i++) {
        const struct mpt_out *o = &fx.q.v[i];
        switch (o->kind) {
        case MPT_OUT_PATH:
            if (from_server) {
                for (unsigned c = 0; c < fx.n; c++)
                    if (mpt_addr_equal(&o->addr, &fx.paddr[c]))
                        keep(0, c, o->data, o->len);
            } else {
                keep(1, who, o->data, o->len);
            }
            break;
        case MPT_OUT_APP:
            fx.echoes[who]++;
            break;
        case MPT_OUT_FLOW_OPEN:
            break;
        case MPT_OUT_FLOW:
            keep(2, o->index, o->data, o->len); /* the target echoes it */
            break;
        default:
            break;
        }
    }
    mpt_outq_reset(&fx.q);
}

static void pump(void)
{
    static struct held l[64];

    while (ninflight) {
        unsigned n = ninflight < 64 ? ninflight : 64;
        memcpy(l, inflight, n * sizeof(*l));
        memmove(inflight, inflight + n, (ninflight - n) * sizeof(*inflight));
        ninflight -= n;
        for (unsigned i = 0; i < n; i++) {
            if (l[i].to_server == 1) {
                mpt_server_on_path(&fx.s, fx.now, &fx.paddr[l[i].who], l[i].data, l[i].len, &fx.q);
                collect(1, 0);
                if (fx.s.wake)
                    fx.sdl = fx.now;
            } else if (l[i].to_server == 2) {
                mpt_server_on_target(&fx.s, fx.now, l[i].who, l[i].data, l[i].len, &fx.q);
                collect(1, 0);
                if (fx.s.wake)
                    fx.sdl = fx.now;
            } else {
                mpt_client_on_path(&fx.c[l[i].who], fx.now, 0, l[i].data, l[i].len, &fx.q);
                collect(0, l[i].who);
                if (fx.c[l[i].who].wake)
                    fx.cdl[l[i].who] = fx.now;
            }
        }
    }
}

static void advance(uint64_t until)
{
    for (;;) {
        uint64_t t = fx.sdl;
        for (unsigned c = 0; c < fx.n; c++)
            if (fx.cdl[c] < t)
                t = fx.cdl[c];
        if (t > until)
            break;
        if (t > fx.now)
            fx.now = t;
        for (unsigned c = 0; c < fx.n; c++)
            if (fx.cdl[c] <= fx.now) {
                fx.cdl[c] = mpt_client_on_timer(&fx.c[c], fx.now, &fx.q);
                collect(0, c);
            }
        if (fx.sdl <= fx.now) {
            fx.sdl = mpt_server_on_timer(&fx.s, fx.now, &fx.q);
            collect(1, 0);
        }
        pump();
    }
    fx.now = until;
}

static void setup(unsigned n, uint8_t mode, unsigned fec_k, unsigned fec_m)
{
    struct mpt_client_params cp = {
        .secret = secret,
        .npaths = 1,
        .max_flows = 16,
        .flow_timeout_ms = 60000,
        .probe_interval_ms = 100,
        .mode = mode,
        .fec_k = fec_k,
        .fec_m = fec_m,
        .reorder_cap_ms = 50,
    };
    struct mpt_server_params sp = {
        .secret = secret,
        .max_sessions = 16,
        .max_flows = 64,
        .flow_timeout_ms = 60000,
        .session_timeout_ms = 120000,
        .ntargets = 1,
        .reorder_cap_ms = 50,
    };

    memset(&fx, 0, sizeof(fx));
    fx.n = n;
    inflight = calloc(INFLIGHT_MAX, sizeof(*inflight));
    ASSERT(inflight);
    ninflight = 0;
    ASSERT_EQ(mpt_outq_init(&fx.q, 4096, 8 << 20), 0);
    ASSERT_EQ(mpt_server_init(&fx.s, &sp), 0);
    for (unsigned c = 0; c < n; c++) {
        ASSERT_EQ(mpt_client_init(&fx.c[c], &cp), 0);
        fx.paddr[c] = addr4(0xc0a80001 + c, (uint16_t)(40000 + c));
    }
    fx.now = 5 * SEC;
    fx.sdl = fx.now;
    for (unsigned c = 0; c < n; c++)
        fx.cdl[c] = fx.now;
    advance(fx.now + 300 * MS);
    for (unsigned c = 0; c < n; c++)
        ASSERT_EQ(fx.c[c].state, MPT_CLIENT_ESTABLISHED);
}

static void teardown(void)
{
    for (unsigned c = 0; c < fx.n; c++)
        mpt_client_free(&fx.c[c]);
    mpt_server_free(&fx.s);
    mpt_outq_free(&fx.q);
    free(inflight);
}

/* Every client sends `count` datagrams of `len` bytes, one each `gap_us`, all at once. */
static void traffic(unsigned count, size_t len, uint64_t gap_us)
{
    uint8_t buf[1200];

    memset(buf, 0xab, sizeof(buf));
    for (unsigned i = 0; i < count; i++) {
        for (unsigned c = 0; c < fx.n; c++) {
            struct mpt_addr app = addr4(0x7f000001, (uint16_t)(10000 + c));
            mpt_client_on_app(&fx.c[c], fx.now, &app, buf, len, &fx.q);
            collect(0, c);
            if (fx.c[c].wake)
                fx.cdl[c] = fx.now;
        }
        pump();
        advance(fx.now + gap_us);
    }
    advance(fx.now + 200 * MS);
}

/* Sessions in fec mode, more than the 8 encoders there once were, all sending at once: each has
 * its replies coded (an encoder each, allocated on its first coded reply), none goes uncoded; an
 * idle session's encoder is freed. */
static void encoders(void)
{
    uint64_t total_src = 0;

    setup(NCLIENTS, MPT_CLIENT_FEC, 0, 0);
    traffic(200, 500, 1 * MS);
    printf("%u sessions in fec mode: %u encoders, replies uncoded for want of one %llu (limit "
           "0)\n",
           NCLIENTS, fx.s.fec_encoders, (unsigned long long)fx.s.fec_no_encoder);
    ASSERT_EQ(fx.s.fec_encoders, NCLIENTS);
    ASSERT_EQ(fx.s.fec_no_encoder, 0);
    for (unsigned i = 0; i < fx.s.p.max_sessions; i++) {
        const struct mpt_server_session *ss = &fx.s.sessions[i];
        if (!ss->sid)
            continue;
        ASSERT_GE(ss->fec_sources, 190);
        ASSERT_GT(ss->fec_repairs, 0);
        total_src += ss->fec_sources;
    }
    ASSERT_GE(total_src, NCLIENTS * 190);
    for (unsigned c = 0; c < fx.n; c++)
        ASSERT_GE(fx.echoes[c], 200);
    /* Idle past MPT_SERVER_FEC_IDLE_US (the probes go on): the encoders are given back. */
    advance(fx.now + MPT_SERVER_FEC_IDLE_US + 2 * SEC);
    printf("after %llu s idle: %u encoders (limit 0)\n",
           (unsigned long long)(MPT_SERVER_FEC_IDLE_US / SEC + 2), fx.s.fec_encoders);
    ASSERT_EQ(fx.s.fec_encoders, 0);
    teardown();
}

/* The client's fixed fec = K:M reaches the server in its probes: replies go in blocks of K with
 * M repairs, as the client's datagrams do, whatever the paths' loss (none here). */
static void fixed_ratio(void)
{
    const struct mpt_server_session *ss = NULL;
    double up, down;

    setup(1, MPT_CLIENT_FEC, 10, 6);
    traffic(400, 300, 200);
    for (unsigned i = 0; i < fx.s.p.max_sessions; i++)
        if (fx.s.sessions[i].sid)
            ss = &fx.s.sessions[i];
    ASSERT(ss);
    ASSERT_EQ(ss->fec_k, 10);
    ASSERT_EQ(ss->fec_m, 6);
    up = (double)fx.c[0].fec_repairs_tx / (double)fx.c[0].fec_sources;
    down = (double)ss->fec_repairs / (double)ss->fec_sources;
    printf("fec = 10:6: repairs per datagram, client %.3f, server %.3f (limits 0.55-0.65)\n", up,
           down);
    ASSERT_DBL_GE(up, 0.55);
    ASSERT_DBL_LE(up, 0.65);
    ASSERT_DBL_GE(down, 0.55);
    ASSERT_DBL_LE(down, 0.65);
    teardown();
}

/* Planned fec mode over a path measured loss-free: no repair is planned either way, so neither
 * end codes its datagrams at all (no source added to a block, no repair sent). */
static void no_repair(void)
{
    const struct mpt_server_session *ss = NULL;
    uint64_t c_src, c_rep, s_src, s_rep;

    setup(1, MPT_CLIENT_FEC, 0, 0);
    /* Until a path is measured over MPT_FECPLAN_PRIOR_DGRAMS datagrams it is planned for as
     * lossy: coded. */
    traffic(800, 300, 1 * MS);
    for (unsigned i = 0; i < fx.s.p.max_sessions; i++)
        if (fx.s.sessions[i].sid)
            ss = &fx.s.sessions[i];
    ASSERT(ss);
    ASSERT_GT(fx.c[0].fec_repairs_tx, 0);
    ASSERT_GT(ss->fec_repairs, 0);
    c_src = fx.c[0].fec_sources;
    c_rep = fx.c[0].fec_repairs_tx;
    s_src = ss->fec_sources;
    s_rep = ss->fec_repairs;
    traffic(500, 300, 1 * MS);
    printf("measured loss-free: sources coded %llu up, %llu down; repairs %llu up, %llu down "
           "(limits 0)\n",
           (unsigned long long)(fx.c[0].fec_sources - c_src),
           (unsigned long long)(ss->fec_sources - s_src),
           (unsigned long long)(fx.c[0].fec_repairs_tx - c_rep),
           (unsigned long long)(ss->fec_repairs - s_rep));
    ASSERT_EQ(fx.c[0].fec_sources - c_src, 0);
    ASSERT_EQ(ss->fec_sources - s_src, 0);
    ASSERT_EQ(fx.c[0].fec_repairs_tx - c_rep, 0);
    ASSERT_EQ(ss->fec_repairs - s_rep, 0);
    ASSERT_GE(fx.echoes[0], 1300);
    teardown();
}

/* calloc, wrapped (-Wl,--wrap=calloc): fails while fail_calloc is set, counting the calls. */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static int fail_calloc;
static unsigned long failed_callocs;

void *__wrap_calloc(size_t n, size_t size)
{
    if (fail_calloc) {
        failed_callocs++;
        return NULL;
    }
    return __real_calloc(n, size);
}

/* A server that cannot allocate a session's encoder sends its replies uncoded and tries again
 * at most once a second (not for every reply); once memory is there, the replies are coded. */
static void encoder_retry(void)
{
    const struct mpt_server_session *ss = NULL;

    setup(1, MPT_CLIENT_FEC, 10, 6);
    fail_calloc = 1;
    failed_callocs = 0;
    traffic(2000, 300, 1 * MS); /* 2.2 s */
    fail_calloc = 0;
    printf("2.2 s without memory: %llu replies uncoded, %lu allocations tried (limit 3)\n",
           (unsigned long long)fx.s.fec_no_encoder, failed_callocs);
    ASSERT_GE(fx.s.fec_no_encoder, 1900);
    ASSERT_GE(failed_callocs, 1);
    ASSERT_LE(failed_callocs, 3);
    ASSERT_EQ(fx.s.fec_encoders, 0);
    ASSERT_GE(fx.echoes[0], 2000);
    advance(fx.now + 1 * SEC);
    traffic(200, 300, 1 * MS);
    for (unsigned i = 0; i < fx.s.p.max_sessions; i++)
        if (fx.s.sessions[i].sid)
            ss = &fx.s.sessions[i];
    ASSERT(ss);
    printf("then: %u encoder, %llu repairs sent\n", fx.s.fec_encoders,
           (unsigned long long)ss->fec_repairs);
    ASSERT_EQ(fx.s.fec_encoders, 1);
    ASSERT_GT(ss->fec_repairs, 0);
    teardown();
}

/* Tables of the modes: a server whose sessions are in redundant mode, and a client in redundant
 * mode, hold neither fec mode's decoder and encoders nor the reorder buffer; a balance session
 * makes the server allocate the buffer, a fec one its decoder. */
static void tables(void)
{
    setup(1, MPT_CLIENT_REDUNDANT, 0, 0);
    traffic(50, 200, 1 * MS);
    ASSERT_GE(fx.echoes[0], 50);
    printf("redundant: server decoder %u sources, reorder %u entries, encoders %u; client "
           "decoder %u sources, reorder %u entries (limits 0)\n",
           fx.s.fec_rx.nsrc, fx.s.reorder.nent, fx.s.fec_encoders, fx.c[0].fec_rx.nsrc,
           fx.c[0].reorder.nent);
    ASSERT_EQ(fx.s.fec_rx.nsrc, 0);
    ASSERT(!fx.s.reorder.buf);
    ASSERT_EQ(fx.s.fec_encoders, 0);
    ASSERT_EQ(fx.c[0].fec_rx.nsrc, 0);
    ASSERT(!fx.c[0].fec_tx.sym);
    ASSERT(!fx.c[0].reorder.buf);
    teardown();

    setup(1, MPT_CLIENT_BALANCE, 0, 0);
    traffic(50, 200, 1 * MS);
    ASSERT_GE(fx.echoes[0], 50);
    ASSERT(fx.s.reorder.buf);
    ASSERT(fx.c[0].reorder.buf);
    ASSERT_EQ(fx.s.fec_rx.nsrc, 0);
    ASSERT_EQ(fx.c[0].fec_rx.nsrc, 0);
    teardown();

    setup(1, MPT_CLIENT_FEC, 0, 0);
    traffic(50, 200, 1 * MS);
    ASSERT_GE(fx.echoes[0], 50);
    ASSERT_EQ(fx.s.fec_rx.nsrc, MPT_SERVER_FEC_SOURCES);
    ASSERT(!fx.s.reorder.buf);
    ASSERT(fx.c[0].fec_tx.sym);
    teardown();
}

static const struct task_case cases[] = {
    {"plan", plan},     {"encoders", encoders},   {"fixed_ratio", fixed_ratio},
    {"tables", tables}, {"no_repair", no_repair}, {"encoder_retry", encoder_retry},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return task_run(cases, argc, argv);
}
