/* What core tells the operator, in virtual time: the client's no-answer warnings (within 5 s,
 * then at doubling intervals), the server's failed-authentication lines (one per source, then
 * summed up every minute; a budget over all sources), the periodic counters at debug level, and
 * nothing formatted when the level is below a message's. */
#include <arpa/inet.h>
#include <sodium.h>

#include "core/client.h"
#include "core/log.h"
#include "core/server.h"
#include "task.h"

#define MAXLINES 256

static struct {
    int level[MAXLINES];
    char text[MAXLINES][1024];
    unsigned n;
    uint64_t at[MAXLINES]; /* virtual time of each line */
} logged;

static uint64_t vnow;

static void sink(int level, const char *msg)
{
    if (logged.n == MAXLINES)
        return;
    logged.level[logged.n] = level;
    logged.at[logged.n] = vnow;
    snprintf(logged.text[logged.n], sizeof(logged.text[0]), "%s", msg);
    logged.n++;
}

static void log_reset(int level)
{
    memset(&logged, 0, sizeof(logged));
    mpt_log_state.level = level;
    mpt_log_state.sink = sink;
}

static unsigned count(const char *needle, int level)
{
    unsigned n = 0;

    for (unsigned i = 0; i < logged.n; i++)
        if (logged.level[i] == level && strstr(logged.text[i], needle))
            n++;
    return n;
}

static int find(const char *needle, unsigned from)
{
    for (unsigned i = from; i < logged.n; i++)
        if (strstr(logged.text[i], needle))
            return (int)i;
    return -1;
}

static const uint8_t secret[32] = {1, 2, 3};
static const uint8_t other[32] = {9, 9, 9};
static struct mpt_client cl;
static struct mpt_server sv;
static struct mpt_outq q;

static struct mpt_addr addr4(uint32_t ip, uint16_t port)
{
    struct mpt_addr a;

    memset(&a, 0, sizeof(a));
    a.u.in4.sin_family = AF_INET;
    a.u.in4.sin_addr.s_addr = htonl(ip);
    a.u.in4.sin_port = htons(port);
    return a;
}

static void client_setup(const uint8_t *key)
{
    struct mpt_client_params p;
    struct mpt_addr r0 = addr4(0x7f000001, 4000), r1 = addr4(0x7f000001, 4001);

    memset(&p, 0, sizeof(p));
    p.secret = key;
    p.npaths = 2;
    p.max_flows = 8;
    p.flow_timeout_ms = 60000;
    p.probe_interval_ms = 200;
    snprintf(p.path_name[1], sizeof(p.path_name[1]), "wan2");
    ASSERT_EQ(mpt_client_init(&cl, &p), 0);
    mpt_client_set_remote(&cl, 0, &r0);
    mpt_client_set_remote(&cl, 1, &r1);
    ASSERT_EQ(mpt_outq_init(&q, 1024, 1 << 20), 0);
}

static void server_setup(void)
{
    struct mpt_server_params p;

    memset(&p, 0, sizeof(p));
    p.secret = secret;
    p.max_sessions = 4;
    p.max_flows = 8;
    p.flow_timeout_ms = 60000;
    p.session_timeout_ms = 120000;
    p.ntargets = 1;
    ASSERT_EQ(mpt_server_init(&sv, &p), 0);
}

/* Runs the client's timer until `until`, the outputs dropped (nothing answers). */
static void client_run(uint64_t until)
{
    while (vnow < until) {
        uint64_t next = mpt_client_on_timer(&cl, vnow, &q);
        mpt_outq_reset(&q);
        vnow = next < until ? next : until;
    }
}

static void no_answer(void)
{
    int first;

    log_reset(MPT_LOGL_INFO);
    client_setup(secret);
    vnow = 1000000;
    client_run(vnow + 5000000);
    first = find("no answer from the server", 0);
    ASSERT(first >= 0);
    printf("first warning after %.2f s (limit 5): %s\n", (logged.at[first] - 1000000) / 1e6,
           logged.text[first]);
    ASSERT_EQ(logged.level[first], MPT_LOGL_WARN);
    ASSERT_LE(logged.at[first] - 1000000, 5000000);
    ASSERT(strstr(logged.text[first], "handshakes sent on 2 paths"));
    ASSERT(strstr(logged.text[first], "path 1 -> 127.0.0.1:4000"));
    ASSERT(strstr(logged.text[first], "path 2 (wan2) -> 127.0.0.1:4001"));
    ASSERT(strstr(logged.text[first], "nothing came back"));
    ASSERT(strstr(logged.text[first], "different secret"));
    ASSERT_GT(mpt_client_silence_us(&cl, vnow), 4000000);
    /* An hour: warnings at doubling intervals, at most 5 minutes apart. */
    client_run(vnow + 3600ULL * 1000000);
    {
        unsigned n = count("no answer from the server", MPT_LOGL_WARN);
        uint64_t prev = 0, gap = 0;
        printf("warnings in the first hour: %u (limit 20)\n", n);
        ASSERT_LE(n, 20);
        ASSERT_GE(n, 8);
        for (int i = find("no answer", 0); i >= 0; i = find("no answer", (unsigned)i + 1)) {
            if (prev) {
                ASSERT_GE(logged.at[i] - prev, gap);
                gap = logged.at[i] - prev;
                ASSERT_LE(gap, MPT_CLIENT_QUIET_MAX_US);
            }
            prev = logged.at[i];
        }
    }
    mpt_client_free(&cl);
    mpt_outq_free(&q);
}

/* Replies that fail authentication point at the cause in the warning. */
static void no_answer_bad_replies(void)
{
    uint8_t hello[MPT_INIT_NN_LEN];
    int w;

    log_reset(MPT_LOGL_INFO);
    client_setup(secret);
    server_setup();
    vnow = 1000000;
    mpt_client_on_timer(&cl, vnow, &q);
    ASSERT(q.n >= 1 && q.v[0].len == MPT_INIT_NN_LEN);
    memcpy(hello, q.v[0].data, MPT_INIT_NN_LEN);
    mpt_outq_reset(&q);
    /* A server with another secret would stay silent; a REPLY under another key is what a
     * corrupting middlebox or a mismatched server produces. */
    {
        struct mpt_server other_sv;
        struct mpt_server_params p;
        struct mpt_addr from = addr4(0x7f000001, 5000);
        memset(&p, 0, sizeof(p));
        p.secret = secret;
        p.max_sessions = 4;
        p.max_flows = 8;
        p.flow_timeout_ms = 60000;
        p.session_timeout_ms = 120000;
        p.ntargets = 1;
        ASSERT_EQ(mpt_server_init(&other_sv, &p), 0);
        mpt_server_on_path(&other_sv, vnow, &from, hello, sizeof(hello), &q);
        ASSERT_EQ(q.n, 1);
        {
            uint8_t reply[MPT_RESPONSE_LEN];
            memcpy(reply, q.v[0].data, MPT_RESPONSE_LEN);
            reply[MPT_RESPONSE_OFF_MAC1] ^= 1;
            mpt_outq_reset(&q);
            mpt_client_on_path(&cl, vnow, 1, reply, sizeof(reply), &q);
        }
        mpt_server_free(&other_sv);
    }
    client_run(vnow + 4000000);
    w = find("no answer from the server", 0);
    ASSERT(w >= 0);
    printf("%s\n", logged.text[w]);
    ASSERT(strstr(logged.text[w], "path 2 (wan2) got 1 reply that failed authentication"));
    ASSERT(strstr(logged.text[w], "the server has a different secret"));
    mpt_client_free(&cl);
    mpt_server_free(&sv);
    mpt_outq_free(&q);
}

/* The end of a silence is said once, and the warnings start over with the next one. */
static void answer_again(void)
{
    client_setup(secret);
    server_setup();
    log_reset(MPT_LOGL_INFO);
    vnow = 1000000;
    client_run(vnow + 4000000);
    ASSERT_EQ(count("no answer from the server", MPT_LOGL_WARN), 1);
    /* The server answers the next HELLO. */
    {
        struct mpt_addr from = addr4(0x7f000001, 5000);
        uint64_t next = mpt_client_on_timer(&cl, vnow, &q);
        for (unsigned i = 0; i < q.n; i++) {
            struct mpt_outq sq;
            ASSERT_EQ(mpt_outq_init(&sq, 64, 1 << 16), 0);
            if (q.v[i].len == MPT_INIT_NN_LEN && q.v[i].index == 0) {
                mpt_server_on_path(&sv, vnow, &from, q.v[i].data, q.v[i].len, &sq);
                ASSERT_EQ(sq.n, 1);
                mpt_client_on_path(&cl, vnow, 0, sq.v[0].data, sq.v[0].len, &q);
            }
            mpt_outq_free(&sq);
        }
        (void)next;
        mpt_outq_reset(&q);
    }
    ASSERT_EQ(cl.state, MPT_CLIENT_ESTABLISHED);
    mpt_client_on_timer(&cl, vnow, &q);
    mpt_outq_reset(&q);
    ASSERT_EQ(count("the server answers again", MPT_LOGL_INFO), 1);
    ASSERT_EQ(mpt_client_silence_us(&cl, vnow), 0);
    mpt_client_free(&cl);
    mpt_server_free(&sv);
    mpt_outq_free(&q);
}

static void hello_from(const uint8_t *key, uint8_t *hello)
{
    struct mpt_client c;
    struct mpt_client_params p;
    struct mpt_outq cq;

    memset(&p, 0, sizeof(p));
    p.secret = key;
    p.npaths = 1;
    p.max_flows = 1;
    p.flow_timeout_ms = 1000;
    p.probe_interval_ms = 200;
    ASSERT_EQ(mpt_client_init(&c, &p), 0);
    ASSERT_EQ(mpt_outq_init(&cq, 64, 1 << 16), 0);
    mpt_client_on_timer(&c, 1, &cq);
    ASSERT(cq.n == 1 && cq.v[0].len == MPT_INIT_NN_LEN);
    memcpy(hello, cq.v[0].data, MPT_INIT_NN_LEN);
    mpt_outq_free(&cq);
    mpt_client_free(&c);
}

static void server_auth_failures(void)
{
    uint8_t hello[MPT_INIT_NN_LEN];
    struct mpt_addr a = addr4(0x0a000001, 4000);
    unsigned n;

    server_setup();
    ASSERT_EQ(mpt_outq_init(&q, 1024, 1 << 20), 0);
    log_reset(MPT_LOGL_INFO);
    hello_from(other, hello);
    /* One source, 8 per second (two paths of a client) for 30 s: one line. */
    for (vnow = 1000000; vnow < 31000000; vnow += 125000) {
        a.u.in4.sin_port = htons((uint16_t)(4000 + (vnow / 125000) % 2));
        mpt_server_on_path(&sv, vnow, &a, hello, sizeof(hello), &q);
        ASSERT_EQ(q.n, 0); /* never an answer */
        mpt_server_on_timer(&sv, vnow, &q);
    }
    n = count("failed authentication", MPT_LOGL_WARN);
    printf("lines for one source in 30 s: %u (must be 1): %s\n", n, logged.text[0]);
    ASSERT_EQ(n, 1);
    ASSERT(strstr(logged.text[find("failed authentication", 0)], "10.0.0.1:400"));
    ASSERT_EQ(sv.ctr.drops[MPT_DROP_AUTH], 240);
    /* After a minute, the rest summed up, by the timer even without new failures. */
    vnow = 62000000;
    mpt_server_on_timer(&sv, vnow, &q);
    ASSERT_EQ(count("failed authentication", MPT_LOGL_WARN), 2);
    ASSERT(strstr(logged.text[find("more datagrams", 0)], "239 more datagrams from 10.0.0.1"));
    /* 200 sources at once: the burst budget, then one line a second at most. */
    log_reset(MPT_LOGL_INFO);
    for (unsigned i = 0; i < 200; i++) {
        struct mpt_addr b = addr4(0x0b000000 + i, 4000);
        mpt_server_on_path(&sv, vnow, &b, hello, sizeof(hello), &q);
    }
    n = count("failed authentication", MPT_LOGL_WARN);
    printf("lines for 200 new sources at once: %u (limit %u)\n", n, MPT_SERVER_AUTHLOG_BURST);
    ASSERT_LE(n, MPT_SERVER_AUTHLOG_BURST);
    ASSERT_GE(n, 1);
    mpt_server_free(&sv);
    mpt_outq_free(&q);
}

static void periodic_counters(void)
{
    client_setup(secret);
    log_reset(MPT_LOGL_INFO);
    vnow = 1000000;
    client_run(vnow + 130000000);
    ASSERT_EQ(find("last 60 s:", 0), -1); /* debug level only */
    mpt_client_free(&cl);
    mpt_outq_free(&q);

    client_setup(secret);
    log_reset(MPT_LOGL_DEBUG);
    vnow = 1000000;
    client_run(vnow + 130000000);
    ASSERT_EQ(count("last 60 s:", MPT_LOGL_DEBUG), 2);
    printf("%s\n", logged.text[find("last 60 s:", 0)]);
    ASSERT(strstr(logged.text[find("last 60 s:", 0)], "path 2 (wan2) down"));
    mpt_client_free(&cl);
    mpt_outq_free(&q);

    server_setup();
    ASSERT_EQ(mpt_outq_init(&q, 1024, 1 << 20), 0);
    log_reset(MPT_LOGL_DEBUG);
    for (vnow = 1000000; vnow < 131000000; vnow += 1000000)
        mpt_server_on_timer(&sv, vnow, &q);
    ASSERT_EQ(count("last 60 s:", MPT_LOGL_DEBUG), 2);
    mpt_server_free(&sv);
    mpt_outq_free(&q);
}

/* A full flow table is said once a minute, however many datagrams it refuses. */
static void flow_table_full(void)
{
    struct mpt_client_params p;
    const uint8_t data[4] = "abc";

    memset(&p, 0, sizeof(p));
    p.secret = secret;
    p.npaths = 1;
    p.max_flows = 2;
    p.flow_timeout_ms = 600000;
    p.probe_interval_ms = 200;
    ASSERT_EQ(mpt_client_init(&cl, &p), 0);
    ASSERT_EQ(mpt_outq_init(&q, 1024, 1 << 20), 0);
    log_reset(MPT_LOGL_INFO);
    for (vnow = 1000000; vnow < 31000000; vnow += 10000) {
        struct mpt_addr app = addr4(0x7f000001, (uint16_t)(1000 + (vnow / 10000) % 50));
        mpt_client_on_app(&cl, vnow, &app, data, sizeof(data), &q);
        mpt_outq_reset(&q);
    }
    printf("flow-table-full warnings in 30 s: %u (must be 1), %llu datagrams refused\n",
           count("flow table full", MPT_LOGL_WARN),
           (unsigned long long)cl.ctr.drops[MPT_DROP_LIMIT]);
    ASSERT_EQ(count("flow table full", MPT_LOGL_WARN), 1);
    ASSERT_GT(cl.ctr.drops[MPT_DROP_LIMIT], 1000);
    vnow = 62000000;
    {
        struct mpt_addr app = addr4(0x7f000002, 9);
        mpt_client_on_app(&cl, vnow, &app, data, sizeof(data), &q);
    }
    ASSERT_EQ(count("flow table full", MPT_LOGL_WARN), 2);
    mpt_client_free(&cl);
    mpt_outq_free(&q);
}

/* Runs client and server until `until`: what the client sends on path 0 reaches the server, whose
 * answers come back on path 0; path 1 loses everything. */
static uint16_t pump_port = 5000; /* where path 0 arrives from at the server */

static void pump(uint64_t until, uint64_t step)
{
    struct mpt_addr from = addr4(0x7f000001, pump_port);
    struct mpt_outq sq;

    ASSERT_EQ(mpt_outq_init(&sq, 1024, 1 << 20), 0);
    for (; vnow < until; vnow += step) {
        mpt_client_on_timer(&cl, vnow, &q);
        for (unsigned i = 0; i < q.n; i++)
            if (q.v[i].kind == MPT_OUT_PATH && q.v[i].index == 0)
                mpt_server_on_path(&sv, vnow, &from, q.v[i].data, q.v[i].len, &sq);
        mpt_outq_reset(&q);
        mpt_server_on_timer(&sv, vnow, &sq);
        for (unsigned i = 0; i < sq.n; i++)
            if (sq.v[i].kind == MPT_OUT_PATH)
                mpt_client_on_path(&cl, vnow, 0, sq.v[i].data, sq.v[i].len, &q);
        mpt_outq_reset(&sq);
        mpt_outq_reset(&q);
    }
    mpt_outq_free(&sq);
}

/* One path silent while the other answers: a warning after 5 s, then ever more calmly. */
static void one_path_silent(void)
{
    int w;

    log_reset(MPT_LOGL_INFO);
    client_setup(secret);
    server_setup();
    vnow = 1000000;
    pump(vnow + 4900000, 50000);
    ASSERT_EQ(cl.state, MPT_CLIENT_ESTABLISHED);
    ASSERT_EQ(count("while other paths answer", MPT_LOGL_WARN), 0);
    ASSERT_EQ(count("no answer from the server", MPT_LOGL_WARN), 0);
    pump(vnow + 300000, 50000);
    w = find("while other paths answer", 0);
    ASSERT(w >= 0);
    printf("%s\n", logged.text[w]);
    ASSERT(strstr(logged.text[w], "path 2 (wan2) -> 127.0.0.1:4001: no answer for 5 s"));
    ASSERT(strstr(logged.text[w], "never heard"));
    pump(vnow + 60000000, 50000);
    printf("warnings about path 2 in 65 s: %u (limit 4)\n",
           count("while other paths answer", MPT_LOGL_WARN));
    ASSERT_LE(count("while other paths answer", MPT_LOGL_WARN), 4);
    ASSERT_GE(count("while other paths answer", MPT_LOGL_WARN), 3);
    ASSERT_EQ(count("path 1 (", MPT_LOGL_WARN), 0);
    mpt_client_free(&cl);
    mpt_server_free(&sv);
    mpt_outq_free(&q);
}

/* A client path that arrives from a new address (NAT rebinding) is logged once, at info. */
static void roaming_logged(void)
{
    log_reset(MPT_LOGL_INFO);
    client_setup(secret);
    server_setup();
    vnow = 1000000;
    pump_port = 5000;
    pump(vnow + 1000000, 50000);
    ASSERT_EQ(count("now arrives from", MPT_LOGL_INFO), 0);
    pump_port = 5001;
    pump(vnow + 1000000, 50000);
    ASSERT_EQ(count("now arrives from", MPT_LOGL_INFO), 1);
    printf("%s\n", logged.text[find("now arrives from", 0)]);
    ASSERT(strstr(logged.text[find("now arrives from", 0)],
                  "client path 1 now arrives from 127.0.0.1:5001 (was 127.0.0.1:5000)"));
    pump_port = 5000;
    mpt_client_free(&cl);
    mpt_server_free(&sv);
    mpt_outq_free(&q);
}

static const struct task_case cases[] = {
    {"roaming_logged", roaming_logged},
    {"one_path_silent", one_path_silent},
    {"flow_table_full", flow_table_full},
    {"no_answer", no_answer},
    {"no_answer_bad_replies", no_answer_bad_replies},
    {"answer_again", answer_again},
    {"server_auth_failures", server_auth_failures},
    {"periodic_counters", periodic_counters},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    return task_run(cases, argc, argv);
}
