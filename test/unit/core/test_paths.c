/* core/client and core/server back to back: the validation of return addresses (PROTOCOL.md §5
 * PATH_CHALLENGE, §7) and the honest count of copies per path (§5 "copies received"). A relay on
 * one path sees the client's datagrams first and may re-send them, fresh, from other addresses:
 * those addresses get nothing but challenges, within 3x the bytes that came from them. */
#include <arpa/inet.h>

#include "core/client.h"
#include "core/server.h"
#include "task.h"

#define NPATHS 3
#define MAXPKT 512
#define VICTIMS 14

static const uint8_t secret[32] = {0x9a, 0x7b, 1, 2, 3};

struct pkt {
    unsigned path;
    struct mpt_addr addr;
    uint32_t len;
    uint8_t data[1600];
};

struct list {
    unsigned n;
    struct pkt v[MAXPKT];
};

static struct {
    struct mpt_client c;
    struct mpt_server s;
    struct mpt_outq q;
    uint64_t now;
    struct mpt_addr paddr[NPATHS];
    struct list up, down, targets;
    uint64_t stray_dgrams, stray_bytes; /* server -> addresses that are no path */
    uint32_t flow;                      /* the server's flow slot of the last target datagram */
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

static void add(struct list *l, const struct mpt_out *o, unsigned path)
{
    struct pkt *p;

    ASSERT_LT(l->n, MAXPKT);
    ASSERT_LE(o->len, sizeof(p->data));
    p = &l->v[l->n++];
    p->path = path;
    p->addr = o->addr;
    p->len = o->len;
    memcpy(p->data, o->data, o->len);
}

static void collect(int from_server)
{
    for (unsigned i = 0; i < fx.q.n; i++) {
        const struct mpt_out *o = &fx.q.v[i];
        int path = -1;
        if (o->kind == MPT_OUT_PATH && !from_server) {
            add(&fx.up, o, o->index);
        } else if (o->kind == MPT_OUT_PATH) {
            for (int j = 0; j < NPATHS; j++)
                if (mpt_addr_equal(&o->addr, &fx.paddr[j]))
                    path = j;
            if (path >= 0) {
                add(&fx.down, o, (unsigned)path);
            } else {
                fx.stray_dgrams++;
                fx.stray_bytes += o->len;
            }
        } else if (o->kind == MPT_OUT_FLOW) {
            add(&fx.targets, o, 0);
            fx.flow = o->index;
        }
    }
    mpt_outq_reset(&fx.q);
    fx.s.nclosed = 0;
}

static void server_rx(const struct mpt_addr *from, const uint8_t *buf, size_t len)
{
    mpt_server_on_path(&fx.s, fx.now, from, buf, len, &fx.q);
    collect(1);
}

/* Carries everything in flight both ways until nothing moves. */
static void pump(void)
{
    static struct list l;

    while (fx.up.n || fx.down.n) {
        l = fx.up;
        fx.up.n = 0;
        for (unsigned i = 0; i < l.n; i++)
            server_rx(&fx.paddr[l.v[i].path], l.v[i].data, l.v[i].len);
        l = fx.down;
        fx.down.n = 0;
        for (unsigned i = 0; i < l.n; i++) {
            mpt_client_on_path(&fx.c, fx.now, l.v[i].path, l.v[i].data, l.v[i].len, &fx.q);
            collect(0);
        }
    }
}

static void tick(uint64_t us)
{
    fx.now += us;
    mpt_client_on_timer(&fx.c, fx.now, &fx.q);
    collect(0);
    mpt_server_on_timer(&fx.s, fx.now, &fx.q);
    collect(1);
    pump();
}

static struct mpt_server_session *session(void)
{
    return &fx.s.sessions[fx.s.session_slots.head];
}

static struct mpt_server_path *spath(const struct mpt_addr *a)
{
    struct mpt_server_session *ss = session();

    for (unsigned i = 0; i < ss->npaths; i++)
        if (mpt_addr_equal(&ss->paths[i].addr, a))
            return &ss->paths[i];
    return NULL;
}

static void setup(void)
{
    struct mpt_client_params cp = {
        .secret = secret,
        .npaths = NPATHS,
        .max_flows = 16,
        .flow_timeout_ms = 30000,
        .probe_interval_ms = 200,
    };
    struct mpt_server_params sp = {
        .secret = secret,
        .max_sessions = 4,
        .max_flows = 16,
        .flow_timeout_ms = 30000,
        .session_timeout_ms = 60000,
        .ntargets = 1,
    };

    memset(&fx, 0, sizeof(fx));
    ASSERT_EQ(mpt_outq_init(&fx.q, 1024, 1 << 20), 0);
    ASSERT_EQ(mpt_client_init(&fx.c, &cp), 0);
    ASSERT_EQ(mpt_server_init(&fx.s, &sp), 0);
    for (int i = 0; i < NPATHS; i++)
        fx.paddr[i] = addr4(0xc0a80001 + (uint32_t)i, (uint16_t)(40000 + i));
    fx.now = 1000000;
    tick(0); /* handshake, probes, challenges and their echoes */
    tick(1000);
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    ASSERT_EQ(session()->npaths, NPATHS);
}

static void teardown(void)
{
    mpt_client_free(&fx.c);
    mpt_server_free(&fx.s);
    mpt_outq_free(&fx.q);
}

static void app_send(const char *msg)
{
    struct mpt_addr app = addr4(0x7f000001, 5000);

    mpt_client_on_app(&fx.c, fx.now, &app, (const uint8_t *)msg, strlen(msg), &fx.q);
    collect(0);
}

static void target_send(const char *msg)
{
    mpt_server_on_target(&fx.s, fx.now, fx.flow, (const uint8_t *)msg, strlen(msg), &fx.q);
    collect(1);
}

/* Each path of a new session is validated by one challenge and its echo, on that path. */
static void new_paths_validated(void)
{
    setup();
    for (unsigned i = 0; i < NPATHS; i++) {
        struct mpt_server_path *p = spath(&fx.paddr[i]);
        ASSERT(p);
        ASSERT(p->validated);
        ASSERT_EQ(p->amp_tx, MPT_DATA_OVERHEAD + MPT_PATH_CHALLENGE_LEN);
    }
    ASSERT_EQ(fx.s.challenges, NPATHS);
    ASSERT_EQ(fx.s.validations, NPATHS);
    ASSERT_EQ(fx.c.challenges, NPATHS);
    ASSERT_EQ(fx.stray_dgrams, 0);
    /* Replies go on every path at once. */
    app_send("hello");
    pump();
    ASSERT_EQ(fx.targets.n, 1);
    target_send("back");
    ASSERT_EQ(fx.down.n, NPATHS);
    pump();
    teardown();
}

/* A relay on path 0 re-sends, fresh, what the client sends, from 14 victim addresses, before it
 * forwards the original: the victims get challenges only, within 3x what came from them, and the
 * session's replies keep going to its own paths only. */
static void reflection_bounded(void)
{
    uint64_t attack_bytes = 0;
    unsigned replies = 0;

    setup();
    for (unsigned round = 0; round < 200; round++) {
        struct mpt_addr v = addr4(0x7f000201 + round % VICTIMS, 7000);
        char msg[32];
        snprintf(msg, sizeof(msg), "datagram %u", round);
        app_send(msg);
        ASSERT_EQ(fx.up.n, NPATHS);
        server_rx(&v, fx.up.v[0].data, fx.up.v[0].len);
        attack_bytes += fx.up.v[0].len;
        pump();
        target_send(msg);
        replies += fx.down.n;
        pump();
        if (round % 20 == 19)
            tick(100000);
    }
    printf("attacker sent %llu bytes from %u addresses; they received %llu bytes in %llu "
           "datagrams (limit 3x)\n",
           (unsigned long long)attack_bytes, VICTIMS, (unsigned long long)fx.stray_bytes,
           (unsigned long long)fx.stray_dgrams);
    ASSERT_LE(fx.stray_bytes, 3 * attack_bytes);
    ASSERT_GE(fx.stray_dgrams, VICTIMS); /* each was challenged */
    ASSERT_EQ(replies, 200 * NPATHS);
    for (unsigned i = 0; i < VICTIMS; i++) {
        struct mpt_addr v = addr4(0x7f000201 + i, 7000);
        struct mpt_server_path *p = spath(&v);
        if (p) {
            ASSERT(!p->validated);
            ASSERT_LE(p->amp_tx, MPT_SERVER_AMP_FACTOR * p->amp_rx);
        }
    }
    teardown();
}

/* One fresh datagram from an attacker's address and nothing more: the challenges it gets never
 * exceed 3x its size, however long the session lasts. */
static void budget_enforced(void)
{
    struct mpt_addr v = addr4(0x7f000299, 7000);
    struct mpt_server_path *p;

    setup();
    app_send("x");
    server_rx(&v, fx.up.v[0].data, fx.up.v[0].len);
    p = spath(&v);
    ASSERT(p);
    ASSERT_EQ(fx.stray_dgrams, 1);
    /* The client's probes from its own paths never feed the attacker's budget. */
    for (unsigned i = 0; i < 50; i++)
        tick(200000);
    ASSERT_LE(fx.stray_bytes, 3 * (uint64_t)(MPT_DATA_OVERHEAD + MPT_FLOW_HDR_LEN + 1));
    printf("%llu bytes in from the address, %llu out (limit 3x)\n", (unsigned long long)p->amp_rx,
           (unsigned long long)fx.stray_bytes);
    teardown();
}

/* NAT rebinding: path 0 now arrives from another port. Its first datagram from there is answered
 * with a challenge at once; replies go to the other paths until the echo comes, then there too. */
static void rebinding(void)
{
    struct mpt_addr old;
    struct pkt *probe = NULL;

    setup();
    app_send("open");
    pump();
    old = fx.paddr[0];
    fx.paddr[0] = addr4(0xc0a80001, 41000);
    fx.now += 200000;
    mpt_client_on_timer(&fx.c, fx.now, &fx.q);
    collect(0);
    for (unsigned i = 0; i < fx.up.n; i++)
        if (fx.up.v[i].path == 0)
            probe = &fx.up.v[i];
    ASSERT(probe);
    server_rx(&fx.paddr[0], probe->data, probe->len);
    /* The challenge, and nothing else, to the new address. */
    ASSERT_EQ(fx.down.n, 1);
    ASSERT_EQ(fx.down.v[0].path, 0);
    ASSERT_EQ(fx.down.v[0].len, MPT_DATA_OVERHEAD + MPT_PATH_CHALLENGE_LEN);
    ASSERT(!spath(&fx.paddr[0])->validated);
    /* Meanwhile a reply goes to the validated paths only. */
    {
        static struct list held;
        held = fx.down;
        fx.down.n = 0;
        target_send("meanwhile");
        for (unsigned i = 0; i < fx.down.n; i++)
            ASSERT(fx.down.v[i].path != 0);
        ASSERT_EQ(fx.down.n, NPATHS - 1);
        pump();
        fx.down = held;
    }
    fx.up.n = 0;
    pump(); /* the challenge reaches the client, its echo the server */
    ASSERT(spath(&fx.paddr[0])->validated);
    ASSERT_EQ(spath(&fx.paddr[0])->id, 0);
    ASSERT(!spath(&old) || spath(&old)->id == MPT_PATH_ID_UNKNOWN);
    target_send("after");
    {
        int on_new = 0;
        for (unsigned i = 0; i < fx.down.n; i++)
            on_new |= fx.down.v[i].path == 0;
        ASSERT(on_new);
    }
    pump();
    teardown();
}

/* Copies received (§5): once per counter and path, only for the accepted copy's bytes. */
static void copies_counted_once(void)
{
    struct mpt_server_path *p1, *p2;
    uint64_t r1, r2;
    uint8_t stale[1600], forged[1600];
    size_t stale_len;

    setup();
    app_send("first");
    memcpy(stale, fx.up.v[0].data, fx.up.v[0].len);
    stale_len = fx.up.v[0].len;
    pump();
    p1 = spath(&fx.paddr[1]);
    p2 = spath(&fx.paddr[2]);
    app_send("second");
    ASSERT_EQ(fx.up.n, NPATHS);
    r1 = p1->rx_dgrams;
    r2 = p2->rx_dgrams;
    server_rx(&fx.paddr[0], fx.up.v[0].data, fx.up.v[0].len);
    server_rx(&fx.paddr[1], fx.up.v[1].data, fx.up.v[1].len); /* a duplicate: counts */
    ASSERT_EQ(p1->rx_dgrams, r1 + 1);
    server_rx(&fx.paddr[1], fx.up.v[1].data, fx.up.v[1].len); /* again: does not */
    ASSERT_EQ(p1->rx_dgrams, r1 + 1);
    memcpy(forged, fx.up.v[2].data, fx.up.v[2].len);
    forged[fx.up.v[2].len - MPT_TAG_LEN] ^= 1;
    server_rx(&fx.paddr[2], forged, fx.up.v[2].len); /* another tag: does not */
    ASSERT_EQ(p2->rx_dgrams, r2);
    server_rx(&fx.paddr[2], stale, stale_len); /* a stale copy path 2 delivered: does not */
    ASSERT_EQ(p2->rx_dgrams, r2);
    server_rx(&fx.paddr[2], fx.up.v[2].data, fx.up.v[2].len);
    ASSERT_EQ(p2->rx_dgrams, r2 + 1);
    ASSERT_EQ(fx.targets.n, 2);
    fx.up.n = 0;
    teardown();
}

static const struct task_case cases[] = {
    {"new_paths_validated", new_paths_validated}, {"reflection_bounded", reflection_bounded},
    {"budget_enforced", budget_enforced},         {"rebinding", rebinding},
    {"copies_counted_once", copies_counted_once}, {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
