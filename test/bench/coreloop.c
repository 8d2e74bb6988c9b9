/* mpt-coreloop: the per-datagram work of both cores, with no sockets. One client core and one
 * server core are wired together in memory over 3 loss-free paths; N flows (local applications at
 * N addresses) each send once and the target echoes (the warm-up), then M datagrams of S bytes go
 * round robin over the flows: client -> server -> target echo -> server -> client -> application.
 * Virtual time advances a few microseconds per datagram and the timers run when due, as a driver
 * would run them. Every datagram must come back to the flow that sent it.
 *
 * The measured section is measured_run(), so that callgrind counts only it:
 *   valgrind --tool=callgrind --toggle-collect=measured_run mpt-coreloop N M S
 *
 * Usage: mpt-coreloop FLOWS DATAGRAMS SIZE [MODE]: MODE redundant (default), or fec with a fixed
 * K:M (fec = 64:30, what 3 paths at 20% need; fec:K:M another). Prints one line
 * of key=value figures, the CPU time of the measured section among them; exits 0 if every
 * datagram came back to its flow, 1 if not, 2 on bad usage or setup failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/client.h"
#include "core/server.h"

#define NPATHS 3
#define STEP_US 5 /* virtual time per datagram */
#define PATH_PORT 4000

#if defined(__clang__)
#define MEASURED __attribute__((noinline))
#else
#define MEASURED __attribute__((noinline, noclone))
#endif

struct bench {
    struct mpt_client c;
    struct mpt_server s;
    struct mpt_outq q[2];          /* outputs of one round; the other holds the round's inputs */
    unsigned cur;                  /* q[cur] collects outputs */
    struct mpt_addr paths[NPATHS]; /* the client's paths as the server sees their sources */
    struct mpt_addr *apps;         /* one local application per flow */
    unsigned nflows;
    uint64_t now, c_next, s_next;
    uint8_t *payload;
    size_t size;
    /* The datagram in flight: which flow sent it and its sequence number. */
    uint32_t expect_flow, expect_seq;
    uint64_t delivered, misrouted, flow_opens, datagrams;
};

static void addr4(struct mpt_addr *a, uint32_t ip, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->u.in4.sin_family = AF_INET;
    a->u.in4.sin_addr.s_addr = htonl(ip);
    a->u.in4.sin_port = htons(port);
}

/* The application end: counts the datagram if it is the one in flight, at its own flow. */
static void on_app(struct bench *b, const struct mpt_out *o)
{
    if (o->len == b->size && mpt_get32(o->data) == b->expect_flow &&
        mpt_get32(o->data + 4) == b->expect_seq &&
        mpt_addr_equal(&o->addr, &b->apps[b->expect_flow]))
        b->delivered++;
    else
        b->misrouted++;
}

/* Delivers what the cores queued, round after round, until nothing is left: the client's
 * datagrams to the server, the server's to the client (by the path address), flows' datagrams to
 * the target (which echoes them at once) and the client's to the applications. */
static void pump(struct bench *b)
{
    while (b->q[b->cur].n) {
        const struct mpt_outq *in = &b->q[b->cur];
        struct mpt_outq *out = &b->q[b->cur ^ 1];

        mpt_outq_reset(out);
        b->s.nclosed = 0;
        for (unsigned i = 0; i < in->n; i++) {
            const struct mpt_out *o = &in->v[i];
            switch (o->kind) {
            case MPT_OUT_PATH:
                if (mpt_addr_len(&o->addr) == 0) {
                    mpt_server_on_path(&b->s, b->now, &b->paths[o->index], o->data, o->len, out);
                    break;
                }
                for (unsigned p = 0; p < NPATHS; p++)
                    if (mpt_addr_equal(&o->addr, &b->paths[p]))
                        mpt_client_on_path(&b->c, b->now, p, o->data, o->len, out);
                break;
            case MPT_OUT_FLOW:
                mpt_server_on_target(&b->s, b->now, o->index, o->data, o->len, out);
                break;
            case MPT_OUT_FLOW_OPEN:
                b->flow_opens++;
                break;
            case MPT_OUT_APP:
                on_app(b, o);
                break;
            }
        }
        mpt_outq_reset(&b->q[b->cur]);
        b->cur ^= 1;
    }
}

/* Runs whichever timer is due (or asked for), as the driver's timers would. */
static void timers(struct bench *b)
{
    struct mpt_outq *q = &b->q[b->cur];

    if (b->c.wake || b->now >= b->c_next)
        b->c_next = mpt_client_on_timer(&b->c, b->now, q);
    if (b->now >= b->s_next)
        b->s_next = mpt_server_on_timer(&b->s, b->now, q);
    if (q->n)
        pump(b);
}

/* One datagram of flow `flow` from its application, through both cores and back. */
static void send_one(struct bench *b, uint32_t flow, uint32_t seq)
{
    b->now += STEP_US;
    mpt_put32(b->payload, flow);
    mpt_put32(b->payload + 4, seq);
    b->expect_flow = flow;
    b->expect_seq = seq;
    mpt_client_on_app(&b->c, b->now, &b->apps[flow], b->payload, b->size, &b->q[b->cur]);
    pump(b);
    timers(b);
    b->datagrams++;
}

/* The measured section: `count` datagrams, round robin over the flows. */
static MEASURED void measured_run(struct bench *b, uint32_t count)
{
    for (uint32_t k = 0; k < count; k++)
        send_one(b, k % b->nflows, k);
}

static int setup(struct bench *b, unsigned nflows, size_t size, uint8_t mode, unsigned fk,
                 unsigned fm)
{
    struct mpt_client_params cp;
    struct mpt_server_params sp;
    uint8_t secret[32];

    memset(secret, 7, sizeof(secret));
    memset(&cp, 0, sizeof(cp));
    cp.secret = secret;
    cp.npaths = NPATHS;
    cp.max_flows = nflows;
    cp.flow_timeout_ms = 600000;
    cp.probe_interval_ms = 100;
    cp.mode = mode;
    /* fec: the repairs that 3 paths at 20% loss need (the paths here lose nothing, so a plan from
     * measured loss would send none), one way; the replies are planned from loss (none). */
    cp.fec_k = fk;
    cp.fec_m = fm;
    memset(&sp, 0, sizeof(sp));
    sp.secret = secret;
    sp.max_sessions = 4;
    sp.max_flows = nflows;
    sp.flow_timeout_ms = 600000;
    sp.session_timeout_ms = 600000;
    sp.ntargets = 1;
    b->nflows = nflows;
    b->size = size;
    b->now = 1000000;
    b->apps = calloc(nflows, sizeof(*b->apps));
    b->payload = calloc(1, size);
    if (!b->apps || !b->payload || mpt_client_init(&b->c, &cp) != 0 ||
        mpt_server_init(&b->s, &sp) != 0 || mpt_outq_init(&b->q[0], 1024, 1u << 20) != 0 ||
        mpt_outq_init(&b->q[1], 1024, 1u << 20) != 0)
        return -ENOMEM;
    for (unsigned i = 0; i < NPATHS; i++)
        addr4(&b->paths[i], 0xc0000201 + i, (uint16_t)(PATH_PORT + i)); /* 192.0.2.1.. */
    /* Applications at 10.x.y.z, a few ports each: distinct addresses, like real sockets. */
    for (unsigned i = 0; i < nflows; i++)
        addr4(&b->apps[i], 0x0a000000 + (i >> 3), (uint16_t)(40000 + (i & 7)));
    /* Handshake, then the first probes, so that every path is known both ways. */
    b->c_next = b->s_next = 0;
    timers(b);
    for (int i = 0; i < 4 && b->c.state != MPT_CLIENT_ESTABLISHED; i++) {
        b->now += 1000;
        timers(b);
    }
    b->now += 1000;
    timers(b);
    return b->c.state == MPT_CLIENT_ESTABLISHED ? 0 : -EPROTO;
}

static void teardown(struct bench *b)
{
    mpt_client_free(&b->c);
    mpt_server_free(&b->s);
    mpt_outq_free(&b->q[0]);
    mpt_outq_free(&b->q[1]);
    free(b->apps);
    free(b->payload);
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *v)
{
    char *end;

    errno = 0;
    *v = strtoul(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' && *v >= min && *v <= max ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
    static struct bench b;
    unsigned long nflows, count, size;
    uint64_t opens_before, sealed, opened, dups;
    struct timespec t0, t1;
    uint8_t mode = MPT_CLIENT_REDUNDANT;
    int rc = 2;

    unsigned fk = 64, fm = 30;
    char tail;

    if (argc == 5 && strcmp(argv[4], "fec") == 0)
        mode = MPT_CLIENT_FEC;
    else if (argc == 5 && sscanf(argv[4], "fec:%u:%u%c", &fk, &fm, &tail) == 2 && fk >= 1 &&
             fk <= 64 && fm >= 1 && fm <= 32)
        mode = MPT_CLIENT_FEC;
    else if (argc == 5 && strcmp(argv[4], "redundant") != 0)
        argc = 0;
    if ((argc != 4 && argc != 5) || parse_uint(argv[1], 1, 1000000, &nflows) != 0 ||
        parse_uint(argv[2], 1, UINT32_MAX, &count) != 0 ||
        parse_uint(argv[3], 8, MPT_MAX_PAYLOAD, &size) != 0) {
        fprintf(
            stderr,
            "usage: mpt-coreloop FLOWS(1..1000000) DATAGRAMS SIZE(8..%u) [redundant|fec[:K:M]]\n",
            (unsigned)MPT_MAX_PAYLOAD);
        return 2;
    }
    if (setup(&b, (unsigned)nflows, size, mode, fk, fm) != 0) {
        fprintf(stderr, "mpt-coreloop: setup failed (no session)\n");
        goto out;
    }
    /* Warm-up: every flow once, so that both ends hold all of them. */
    for (uint32_t f = 0; f < nflows; f++)
        send_one(&b, f, UINT32_MAX);
    if (b.delivered != nflows || b.misrouted || b.flow_opens != nflows ||
        mpt_client_flows(&b.c) != nflows || b.s.flow_slots.used != nflows) {
        fprintf(stderr,
                "mpt-coreloop: warm-up: %llu of %lu delivered, %llu misrouted, %llu flows opened\n",
                (unsigned long long)b.delivered, nflows, (unsigned long long)b.misrouted,
                (unsigned long long)b.flow_opens);
        rc = 1;
        goto out;
    }
    b.delivered = b.misrouted = b.datagrams = 0;
    opens_before = b.flow_opens;
    sealed = b.c.ctr.sealed + b.s.ctr.sealed;
    opened = b.c.ctr.rx_dgrams + b.s.ctr.rx_dgrams;
    dups = b.c.ctr.duplicates + b.s.ctr.duplicates;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    measured_run(&b, (uint32_t)count);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);

    /* AEAD work: seals, and opens of the first copy (the others stop at the replay window). */
    sealed = b.c.ctr.sealed + b.s.ctr.sealed - sealed;
    opened = b.c.ctr.rx_dgrams + b.s.ctr.rx_dgrams - opened;
    dups = b.c.ctr.duplicates + b.s.ctr.duplicates - dups;
    printf("flows=%lu datagrams=%lu size=%lu delivered=%llu misrouted=%llu flow_opens=%llu "
           "seals=%llu opens=%llu duplicates=%llu client_flows=%u server_flows=%u virtual_ms=%llu "
           "mode=%s cpu_ns_per_datagram=%.0f\n",
           nflows, count, size, (unsigned long long)b.delivered, (unsigned long long)b.misrouted,
           (unsigned long long)(b.flow_opens - opens_before), (unsigned long long)sealed,
           (unsigned long long)opened, (unsigned long long)dups, mpt_client_flows(&b.c),
           b.s.flow_slots.used, (unsigned long long)(b.now / 1000),
           mode == MPT_CLIENT_FEC ? "fec" : "redundant",
           ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
               (double)count);
    rc = b.delivered == count && b.misrouted == 0 && b.flow_opens == opens_before &&
                 mpt_client_flows(&b.c) == nflows && b.s.flow_slots.used == nflows
             ? 0
             : 1;
    if (rc)
        fprintf(stderr, "mpt-coreloop: %llu of %lu datagrams came back to their flow\n",
                (unsigned long long)b.delivered, count);
out:
    teardown(&b);
    return rc;
}
