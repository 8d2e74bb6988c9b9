/* The whole life of every table of core/client and core/server, wired back to back with explicit
 * time: flows, sessions, half-open handshakes and held datagrams are created, stay up to their
 * timeout to the microsecond, expire at it, and their slots serve again. The timers run exactly at
 * the deadlines they return, as the drivers run them. The server's flow sockets are tracked per
 * slot: a slot is opened only when closed, and datagrams go only to open ones. */
#include <arpa/inet.h>
#include <stdio.h>

#include "core/client.h"
#include "core/server.h"
#include "task.h"

#define NPATHS 2
#define MAXPKT 1024
#define MAXSLOTS 64
#define SEC 1000000ULL
#define MS 1000ULL

static const uint8_t secret[32] = {0x11, 0xfe, 0x71, 0x3e};

struct pkt {
    unsigned path;
    uint32_t flow;
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
    struct mpt_server_params sp;
    struct mpt_outq q;
    uint64_t now, cdl, sdl;
    uint64_t soff; /* the server's clock: now + soff */
    struct mpt_addr paddr[NPATHS];
    int client_silent; /* stopped: its timer does not run, nothing reaches it */
    int server_down;   /* nothing reaches the server */
    int down_blocked;  /* nothing from the server reaches the client */
    struct list up, down, stray, apps, targets;
    uint8_t open[MAXSLOTS]; /* server flow sockets */
    unsigned opens, closes;
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

static struct mpt_addr app_addr(unsigned i)
{
    return addr4(0x7f000001, (uint16_t)(10000 + i));
}

static struct pkt *add(struct list *l, const uint8_t *data, size_t len)
{
    struct pkt *p;

    ASSERT_LT(l->n, MAXPKT);
    ASSERT_LE(len, sizeof(p->data));
    p = &l->v[l->n++];
    memset(p, 0, offsetof(struct pkt, data));
    p->len = (uint32_t)len;
    memcpy(p->data, data, len);
    return p;
}

static int path_of(const struct mpt_addr *a)
{
    for (int i = 0; i < NPATHS; i++)
        if (mpt_addr_equal(a, &fx.paddr[i]))
            return i;
    return -1;
}

/* Carries out one side's output as its driver would: closed flow sockets first, then the queue. */
static void collect(int from_server)
{
    if (from_server) {
        for (uint32_t i = 0; i < fx.s.nclosed; i++) {
            uint32_t slot = fx.s.closed[i];
            ASSERT_LT(slot, MAXSLOTS);
            ASSERT(fx.open[slot]);
            fx.open[slot] = 0;
            fx.closes++;
        }
        fx.s.nclosed = 0;
    }
    for (unsigned i = 0; i < fx.q.n; i++) {
        const struct mpt_out *o = &fx.q.v[i];
        struct pkt *p;
        switch (o->kind) {
        case MPT_OUT_PATH:
            if (!from_server) {
                add(&fx.up, o->data, o->len)->path = o->index;
            } else if (path_of(&o->addr) >= 0) {
                add(&fx.down, o->data, o->len)->path = (unsigned)path_of(&o->addr);
            } else {
                p = add(&fx.stray, o->data, o->len);
                p->addr = o->addr;
            }
            break;
        case MPT_OUT_APP:
            p = add(&fx.apps, o->data, o->len);
            p->addr = o->addr;
            break;
        case MPT_OUT_FLOW_OPEN:
            ASSERT_LT(o->index, MAXSLOTS);
            ASSERT(!fx.open[o->index]);
            fx.open[o->index] = 1;
            fx.opens++;
            break;
        case MPT_OUT_FLOW:
            ASSERT(fx.open[o->index]);
            add(&fx.targets, o->data, o->len)->flow = o->index;
            break;
        default:
            ASSERT(0);
        }
    }
    mpt_outq_reset(&fx.q);
}

static void setup(unsigned max_sessions, unsigned client_flows, uint32_t client_flow_ms,
                  unsigned server_flows, uint32_t server_flow_ms, uint32_t session_ms)
{
    struct mpt_client_params cp = {
        .secret = secret,
        .npaths = NPATHS,
        .max_flows = client_flows,
        .flow_timeout_ms = client_flow_ms,
        .probe_interval_ms = 200,
    };
    struct mpt_server_params sp = {
        .secret = secret,
        .max_sessions = max_sessions,
        .max_flows = server_flows,
        .flow_timeout_ms = server_flow_ms,
        .session_timeout_ms = session_ms,
        .ntargets = 1,
    };

    ASSERT_LE(server_flows, MAXSLOTS);
    memset(&fx, 0, sizeof(fx));
    ASSERT_EQ(mpt_outq_init(&fx.q, 1024, 1 << 20), 0);
    ASSERT_EQ(mpt_client_init(&fx.c, &cp), 0);
    ASSERT_EQ(mpt_server_init(&fx.s, &sp), 0);
    fx.sp = sp;
    for (int i = 0; i < NPATHS; i++)
        fx.paddr[i] = addr4(0xc0a80001 + (uint32_t)i, (uint16_t)(40000 + i));
    fx.now = 5 * SEC;
    fx.cdl = fx.sdl = fx.now;
}

static void teardown(void)
{
    mpt_client_free(&fx.c);
    mpt_server_free(&fx.s);
    mpt_outq_free(&fx.q);
}

static void server_rx(const struct mpt_addr *from, const uint8_t *buf, size_t len)
{
    mpt_server_on_path(&fx.s, fx.now + fx.soff, from, buf, len, &fx.q);
    collect(1);
}

/* Hands everything in flight to its receiver, until nothing is left. */
static void pump(void)
{
    static struct list l;

    while (fx.up.n || fx.down.n) {
        l = fx.up;
        fx.up.n = 0;
        for (unsigned i = 0; i < l.n; i++)
            if (!fx.server_down)
                server_rx(&fx.paddr[l.v[i].path], l.v[i].data, l.v[i].len);
        l = fx.down;
        fx.down.n = 0;
        for (unsigned i = 0; i < l.n; i++) {
            if (fx.client_silent || fx.down_blocked)
                continue;
            mpt_client_on_path(&fx.c, fx.now, l.v[i].path, l.v[i].data, l.v[i].len, &fx.q);
            collect(0);
            if (fx.c.wake) /* as the driver does */
                fx.cdl = fx.now;
        }
    }
}

/* Runs both endpoints' timers at their deadlines up to `until`, delivering everything. */
static void advance(uint64_t until)
{
    for (;;) {
        uint64_t t = fx.sdl;
        if (!fx.client_silent && fx.cdl < t)
            t = fx.cdl;
        if (t > until)
            break;
        if (t > fx.now)
            fx.now = t;
        if (!fx.client_silent && fx.cdl <= fx.now) {
            fx.cdl = mpt_client_on_timer(&fx.c, fx.now, &fx.q);
            ASSERT_GT(fx.cdl, fx.now);
            collect(0);
        }
        if (fx.sdl <= fx.now) {
            fx.sdl = mpt_server_on_timer(&fx.s, fx.now + fx.soff, &fx.q) - fx.soff;
            ASSERT_GT(fx.sdl, fx.now);
            collect(1);
        }
        pump();
    }
    fx.now = until;
}

/* The server's timer, run now (its deadline only bounds when it runs next: sessions are looked at
 * at least once a second). */
static void stimer_now(void)
{
    fx.sdl = mpt_server_on_timer(&fx.s, fx.now + fx.soff, &fx.q) - fx.soff;
    ASSERT_GT(fx.sdl, fx.now);
    ASSERT_LE(fx.sdl, fx.now + 1 * SEC);
    collect(1);
    pump();
}

static void establish(void)
{
    advance(fx.now + 100 * MS);
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
}

/* Application i sends one datagram "a<i> <tag>"; everything in flight is delivered. */
static void app_send(unsigned i, unsigned tag)
{
    struct mpt_addr a = app_addr(i);
    char msg[32];

    snprintf(msg, sizeof(msg), "a%u %u", i, tag);
    mpt_client_on_app(&fx.c, fx.now, &a, (const uint8_t *)msg, strlen(msg), &fx.q);
    collect(0);
    pump();
}

static void target_send(uint32_t slot, const char *msg)
{
    mpt_server_on_target(&fx.s, fx.now + fx.soff, slot, (const uint8_t *)msg, strlen(msg), &fx.q);
    collect(1);
    pump();
}

static unsigned open_sockets(void)
{
    unsigned n = 0;

    for (unsigned i = 0; i < MAXSLOTS; i++)
        n += fx.open[i];
    return n;
}

/* Client flows: a full table refuses newcomers until its flows are idle for flow_timeout; they
 * expire exactly then, a late reply for one goes nowhere, and the table fills again — three
 * times, with new applications and then the first ones again. */
static void client_flows(void)
{
    const unsigned n = 8;

    setup(4, n, 1000, MAXSLOTS, 60000, 60000);
    establish();
    for (unsigned round = 0; round < 3; round++) {
        unsigned base = round == 1 ? 100 : 0, targets = fx.targets.n, apps;
        uint64_t t0 = fx.now, drops = fx.c.ctr.drops[MPT_DROP_LIMIT];
        uint32_t slot;
        for (unsigned i = 0; i < n; i++)
            app_send(base + i, round);
        ASSERT_EQ(mpt_client_flows(&fx.c), n);
        ASSERT_EQ(fx.targets.n, targets + n);
        slot = fx.targets.v[targets].flow;
        /* Full, none idle long enough: the newcomer is refused and nothing is sent. */
        app_send(50, round);
        ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_LIMIT], drops + 1);
        ASSERT_EQ(fx.targets.n, targets + n);
        advance(t0 + 1 * SEC - 1);
        ASSERT_EQ(mpt_client_flows(&fx.c), n);
        advance(t0 + 1 * SEC);
        ASSERT_EQ(mpt_client_flows(&fx.c), 0);
        /* The server's flow is still open; its reply finds no flow at the client. */
        apps = fx.apps.n;
        target_send(slot, "late");
        ASSERT_EQ(fx.apps.n, apps);
        printf("round %u: %u client flows expired at exactly 1 s idle, late reply dropped\n", round,
               n);
    }
    /* The session lived on throughout, on its probes. */
    ASSERT_EQ(fx.c.sessions_established, 1);
    teardown();
}

/* Server flows: expire exactly at flow_timeout after their last datagram either way, their
 * sockets closed; the target's late datagram goes nowhere; the same client flows open them again
 * (the same slots, since the table is full). */
static void server_flows(void)
{
    const unsigned n = 8;

    setup(4, 64, 60000, n, 1000, 60000);
    establish();
    for (unsigned round = 0; round < 3; round++) {
        unsigned targets = fx.targets.n, opens = fx.opens, closes = fx.closes, apps;
        uint64_t drops = fx.s.ctr.drops[MPT_DROP_LIMIT], t1;
        uint32_t slots[8];
        for (unsigned i = 0; i < n; i++)
            app_send(i, round);
        ASSERT_EQ(fx.opens, opens + n);
        ASSERT_EQ(fx.s.flow_slots.used, n);
        ASSERT_EQ(open_sockets(), n);
        for (unsigned i = 0; i < n; i++)
            slots[i] = fx.targets.v[targets + i].flow;
        /* Full, none idle: the server refuses a ninth flow. */
        app_send(n, round);
        ASSERT_EQ(fx.s.ctr.drops[MPT_DROP_LIMIT], drops + 1);
        ASSERT_EQ(fx.targets.n, targets + n);
        /* Replies half a second later: the flows' clocks start again. */
        advance(fx.now + 500 * MS);
        t1 = fx.now;
        apps = fx.apps.n;
        for (unsigned i = 0; i < n; i++)
            target_send(slots[i], "reply");
        ASSERT_EQ(fx.apps.n, apps + n);
        advance(t1 + 1 * SEC - 1);
        ASSERT_EQ(fx.s.flow_slots.used, n);
        ASSERT_EQ(fx.closes, closes);
        advance(t1 + 1 * SEC);
        ASSERT_EQ(fx.s.flow_slots.used, 0);
        ASSERT_EQ(fx.closes, closes + n);
        ASSERT_EQ(open_sockets(), 0);
        apps = fx.apps.n;
        target_send(slots[0], "late");
        ASSERT_EQ(fx.apps.n, apps);
        printf("round %u: %u server flows closed at exactly 1 s idle\n", round, n);
    }
    ASSERT_EQ(mpt_client_flows(&fx.c), n + 1);
    ASSERT_EQ(fx.c.sessions_established, 1);
    teardown();
}

/* Sessions: a client silent for session_timeout loses its session (flows and all) exactly then;
 * resumed, it makes a new one in the freed slot (max_sessions = 1) and its flows work again. */
static void sessions(void)
{
    setup(1, 64, 60000, 16, 60000, 2000);
    establish();
    for (unsigned round = 0; round < 3; round++) {
        unsigned targets = fx.targets.n, closes = fx.closes;
        uint32_t slot = fx.s.session_slots.head;
        uint64_t last;
        for (unsigned i = 0; i < 3; i++)
            app_send(i, round);
        ASSERT_EQ(fx.targets.n, targets + 3);
        ASSERT_EQ(fx.s.flow_slots.used, 3);
        fx.client_silent = 1;
        last = fx.s.sessions[slot].last_rx_us;
        advance(last + 2 * SEC - 1);
        stimer_now();
        ASSERT_EQ(fx.s.session_slots.used, 1);
        ASSERT_EQ(fx.s.flow_slots.used, 3);
        advance(last + 2 * SEC);
        stimer_now();
        ASSERT_EQ(fx.s.session_slots.used, 0);
        ASSERT_EQ(fx.s.flow_slots.used, 0);
        ASSERT_EQ(fx.closes, closes + 3);
        ASSERT_EQ(open_sockets(), 0);
        fx.client_silent = 0;
        advance(fx.now + 1500 * MS);
        ASSERT_EQ(fx.s.session_slots.used, 1);
        ASSERT_EQ(fx.c.sessions_established, round + 2);
        ASSERT_EQ(fx.s.ctr.handshakes, round + 2);
        targets = fx.targets.n;
        for (unsigned i = 0; i < 3; i++)
            app_send(i, 10 + round);
        ASSERT_EQ(fx.targets.n, targets + 3);
        printf("round %u: session forgotten at exactly 2 s of silence, a new one made on "
               "resuming\n",
               round);
    }
    teardown();
}

/* Returns a INIT of another client (same secret). */
static size_t other_hello(uint8_t *out)
{
    struct mpt_client c2;
    struct mpt_client_params cp = fx.c.p;
    size_t len;

    cp.secret = secret;
    ASSERT_EQ(mpt_client_init(&c2, &cp), 0);
    mpt_client_on_timer(&c2, fx.now, &fx.q);
    ASSERT_EQ(fx.q.n, NPATHS);
    len = fx.q.v[0].len;
    memcpy(out, fx.q.v[0].data, len);
    mpt_outq_reset(&fx.q);
    mpt_client_free(&c2);
    return len;
}

static unsigned unconfirmed(void)
{
    unsigned n = 0;

    for (uint32_t i = fx.s.session_slots.head; i != MPT_NIL; i = fx.s.session_slots.next[i])
        n += !fx.s.sessions[i].confirmed;
    return n;
}

/* Half-open handshakes: an INIT answered but never followed by data lives 10 s (or the session
 * timeout if shorter), then its slot serves again, for the next INIT of such a client. */
static void half_open(void)
{
    struct mpt_addr from = addr4(0x0a000001, 999);
    uint8_t hello[MPT_INIT_NN_LEN];
    uint32_t session_ms[2] = {60000, 2000};

    for (unsigned k = 0; k < 2; k++) {
        uint64_t life = session_ms[k] < 10000 ? session_ms[k] * MS : 10 * SEC;
        setup(2, 16, 60000, 16, 60000, session_ms[k]);
        establish();
        for (unsigned round = 0; round < 3; round++) {
            uint64_t t0 = fx.now;
            unsigned stray = fx.stray.n;
            ASSERT_EQ(other_hello(hello), MPT_INIT_NN_LEN);
            server_rx(&from, hello, sizeof(hello));
            ASSERT_EQ(fx.stray.n, stray + 1);
            ASSERT_EQ(fx.stray.v[stray].len, MPT_RESPONSE_LEN);
            ASSERT_EQ(fx.s.session_slots.used, 2);
            ASSERT_EQ(unconfirmed(), 1);
            advance(t0 + life - 1);
            stimer_now();
            ASSERT_EQ(fx.s.session_slots.used, 2);
            advance(t0 + life);
            stimer_now();
            ASSERT_EQ(fx.s.session_slots.used, 1);
            ASSERT_EQ(unconfirmed(), 0);
            advance(fx.now + 1 * SEC);
        }
        printf("session_timeout %u ms: a half-open session expired at exactly %.0f s, three "
               "times; the genuine one stayed\n",
               session_ms[k], (double)life / SEC);
        ASSERT_EQ(fx.c.sessions_established, 1);
        app_send(1, 1);
        ASSERT_EQ(fx.targets.n, 1);
        teardown();
    }
}

/* Held datagrams: held before the first session, sent when it comes if at most 2 s old, dropped
 * if older; a table full of stale ones takes fresh ones again. */
static void held(void)
{
    uint64_t t0, drops;

    /* The limit to the microsecond: the session comes at T + 2 s (the ninth INIT, every 250 ms
     * from T); what was held at T - 1 µs is dropped, at T sent. */
    setup(4, 16, 60000, 16, 60000, 60000);
    t0 = fx.now;
    fx.now = t0 - 1;
    app_send(0, 0);
    fx.now = t0;
    app_send(1, 0);
    ASSERT_EQ(fx.c.nheld, 2);
    fx.server_down = 1;
    advance(t0 + 2 * SEC - 1);
    ASSERT_EQ(fx.c.state, MPT_CLIENT_HANDSHAKE);
    ASSERT_EQ(fx.c.hs_attempts, 8);
    fx.server_down = 0;
    advance(t0 + 2 * SEC);
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT(fx.targets.v[0].len == 4 && memcmp(fx.targets.v[0].data, "a1 0", 4) == 0);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_NOSESSION], 1);
    ASSERT_EQ(fx.c.nheld, 0);
    teardown();

    /* A full table of held datagrams: the next is refused while they are fresh, and taken once
     * they are stale; the stale ones are dropped, the fresh one sent. */
    setup(4, 128, 60000, 16, 60000, 60000);
    t0 = fx.now;
    fx.server_down = 1;
    for (unsigned i = 0; i < MPT_CLIENT_HELD_MAX; i++)
        app_send(i, 0);
    ASSERT_EQ(fx.c.nheld, MPT_CLIENT_HELD_MAX);
    app_send(MPT_CLIENT_HELD_MAX, 0);
    ASSERT_EQ(fx.c.nheld, MPT_CLIENT_HELD_MAX);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_NOSESSION], 1);
    advance(t0 + MPT_CLIENT_HELD_US + 1);
    drops = fx.c.ctr.drops[MPT_DROP_NOSESSION];
    app_send(MPT_CLIENT_HELD_MAX + 1, 1);
    ASSERT_EQ(fx.c.nheld, 1);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_NOSESSION], drops + MPT_CLIENT_HELD_MAX);
    /* The same for bytes: eight of 8 KiB fill them. */
    for (unsigned i = 0; i < 20; i++) {
        static uint8_t big[8192];
        struct mpt_addr a = app_addr(200 + i);
        mpt_client_on_app(&fx.c, fx.now, &a, big, sizeof(big), &fx.q);
        collect(0);
    }
    ASSERT_LE(fx.c.held_used, MPT_CLIENT_HELD_BYTES);
    ASSERT_EQ(fx.c.nheld, 8); /* "a65 1" and seven of 8 KiB */
    advance(fx.now + MPT_CLIENT_HELD_US + 1);
    {
        struct mpt_addr a = app_addr(300);
        mpt_client_on_app(&fx.c, fx.now, &a, (const uint8_t *)"fresh", 5, &fx.q);
        collect(0);
    }
    ASSERT_EQ(fx.c.nheld, 1);
    fx.server_down = 0;
    advance(fx.now + 300 * MS);
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT(fx.targets.v[0].len == 5 && memcmp(fx.targets.v[0].data, "fresh", 5) == 0);
    ASSERT_EQ(fx.c.nheld, 0);
    ASSERT_EQ(fx.c.held_used, 0);
    printf("held: at most %u datagrams and %u bytes; stale ones (over %.0f s) dropped and their "
           "room taken again\n",
           MPT_CLIENT_HELD_MAX, MPT_CLIENT_HELD_BYTES, (double)MPT_CLIENT_HELD_US / SEC);
    teardown();
}

/* A full session table (max_sessions = 1) and another client's INIT: the session in the table,
 * silent for 3 s and with flows, gives way to a half-open one (its flow sockets all closed);
 * resumed, the client takes the half-open one's place and its flows work again. Before the 3 s
 * the INIT is refused and nothing changes; a replay of the first client's INIT never counts. */
static void evict_with_flows(void)
{
    struct mpt_addr attacker = addr4(0x0a0a0a0a, 6666);
    uint8_t hello[MPT_INIT_NN_LEN], init2[MPT_INIT_NN_LEN];
    uint64_t sid1, last;
    unsigned targets, closes;
    uint32_t slot;

    setup(1, 16, 60000, 16, 60000, 60000);
    /* The first INIT, as a recording on a path would have it. */
    fx.cdl = mpt_client_on_timer(&fx.c, fx.now, &fx.q);
    ASSERT_EQ(fx.q.n, NPATHS);
    ASSERT_EQ(fx.q.v[0].len, MPT_INIT_NN_LEN);
    memcpy(hello, fx.q.v[0].data, MPT_INIT_NN_LEN);
    collect(0);
    pump();
    establish();
    sid1 = fx.c.sid;
    for (unsigned i = 0; i < 3; i++)
        app_send(i, 0);
    ASSERT_EQ(fx.s.flow_slots.used, 3);

    /* The server's answers stop reaching the client for 1.2 s: it re-keys its session, which the
     * server does in place, flows kept. The recorded INIT's session id is now free. */
    fx.down_blocked = 1;
    advance(fx.now + 1200 * MS);
    fx.down_blocked = 0;
    advance(fx.now + 300 * MS);
    ASSERT_EQ(fx.c.sessions_established, 2);
    ASSERT(fx.c.sid != sid1);
    ASSERT_EQ(fx.s.session_slots.used, 1);
    ASSERT_EQ(fx.s.flow_slots.used, 3);

    /* The client falls silent. */
    fx.client_silent = 1;
    slot = fx.s.session_slots.head;
    last = fx.s.sessions[slot].last_rx_us;
    advance(last + 3 * SEC - 1);
    server_rx(&attacker, hello, sizeof(hello)); /* the recording: a replay */
    ASSERT_EQ(other_hello(init2), MPT_INIT_NN_LEN);
    server_rx(&attacker, init2, sizeof(init2));
    ASSERT_EQ(fx.stray.n, 0);
    ASSERT_EQ(fx.s.flow_slots.used, 3);
    ASSERT_EQ(open_sockets(), 3);
    advance(last + 3 * SEC);
    closes = fx.closes;
    server_rx(&attacker, hello, sizeof(hello));
    ASSERT_EQ(fx.stray.n, 0);
    ASSERT_EQ(fx.s.flow_slots.used, 3);
    ASSERT_EQ(other_hello(init2), MPT_INIT_NN_LEN);
    server_rx(&attacker, init2, sizeof(init2));
    ASSERT_EQ(fx.stray.n, 1);
    ASSERT_EQ(fx.stray.v[0].len, MPT_RESPONSE_LEN);
    ASSERT_EQ(fx.s.session_slots.used, 1);
    ASSERT_EQ(unconfirmed(), 1);
    ASSERT_EQ(fx.s.flow_slots.used, 0);
    ASSERT_EQ(fx.closes, closes + 3);
    ASSERT_EQ(open_sockets(), 0);
    for (uint32_t i = 0; i < fx.s.p.max_flows; i++)
        ASSERT_EQ(fx.s.flows[i].session, MPT_NIL);

    /* Resumed: the client's new INIT takes the half-open session's place. */
    fx.client_silent = 0;
    advance(fx.now + 1500 * MS);
    ASSERT_EQ(fx.c.sessions_established, 3);
    ASSERT_EQ(fx.s.session_slots.used, 1);
    ASSERT_EQ(unconfirmed(), 0); /* its probes confirmed it */
    targets = fx.targets.n;
    for (unsigned i = 0; i < 3; i++)
        app_send(i, 1);
    ASSERT_EQ(fx.targets.n, targets + 3);
    ASSERT_EQ(unconfirmed(), 0);
    ASSERT_EQ(fx.s.flow_slots.used, 3);
    ASSERT_EQ(open_sockets(), 3);
    printf("another client's INIT evicted a session silent 3 s with 3 flows (all closed), not "
           "one silent 1 us less, and a replayed INIT never did; the client came back in its "
           "place\n");
    teardown();
}

/* The one-way delays the client measures on each path, and the reorder times they give: with
 * every datagram delivered at once, no queue either way, no hold and the margin alone to wait. */
static void check_delays(const char *what)
{
    const struct mpt_owd *owd[NPATHS];
    uint64_t srtt[NPATHS], hold, wait;

    for (unsigned i = 0; i < NPATHS; i++) {
        const struct mpt_est *e = &fx.c.paths[i].est;
        ASSERT(e->owd_have);
        printf("%s: path %u: queue up %llu us, down %llu us\n", what, i + 1,
               (unsigned long long)mpt_est_queue_us(e, 0),
               (unsigned long long)mpt_est_queue_us(e, 1));
        ASSERT_LT(mpt_est_queue_us(e, 0), 1 * MS);
        ASSERT_LT(mpt_est_queue_us(e, 1), 1 * MS);
        owd[i] = &fx.c.paths[i].owd;
        srtt[i] = fx.c.paths[i].srtt_us;
    }
    for (unsigned i = 0; i < NPATHS; i++) {
        wait = mpt_reorder_times(owd, srtt, (1u << NPATHS) - 1, NPATHS, i, 0, 100 * MS, &hold);
        printf("%s: path %u: reorder hold %llu us, wait %llu us\n", what, i + 1,
               (unsigned long long)hold, (unsigned long long)wait);
        ASSERT_LT(hold, 1 * MS);
        ASSERT_LT(wait, MPT_REORDER_MARGIN_US + 1 * MS);
    }
}

/* A server started again with another clock (in a time namespace of its own, or another host's
 * behind the same address), ahead of the last by 1,000 s and then behind it by 600 s: whether or
 * not a session takes the client's up (here the client resumes its own, which the new server does
 * not know), the client's one-way delays start over on the new clock (the PROBE_ACK names it), so
 * no path shows the clocks' difference as a queue, either way, and the reorder buffer neither
 * holds nor waits for it. */
static void server_clock(void)
{
    static const uint64_t soff[] = {1000 * SEC, 400 * SEC};

    setup(4, 64, 60000, 16, 60000, 60000);
    establish();
    advance(fx.now + 3 * SEC);
    check_delays("first server");
    for (unsigned k = 0; k < 2; k++) {
        char what[64];
        mpt_server_free(&fx.s);
        memset(fx.open, 0, sizeof(fx.open));
        ASSERT_EQ(mpt_server_init(&fx.s, &fx.sp), 0);
        fx.soff = soff[k];
        mpt_server_set_wall(&fx.s, fx.now + fx.soff, fx.now); /* Unix time as the client's */
        fx.sdl = fx.now;
        advance(fx.now + 3 * SEC);
        ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
        ASSERT_EQ(fx.c.sessions_established, k + 2);
        snprintf(what, sizeof(what), "server %u, clock %+lld s", k + 2,
                 (long long)(soff[k] / SEC) - (k ? (long long)(soff[k - 1] / SEC) : 0));
        check_delays(what);
    }
    teardown();
}

static const struct task_case cases[] = {
    {"client_flows", client_flows},
    {"server_flows", server_flows},
    {"sessions", sessions},
    {"half_open", half_open},
    {"held", held},
    {"evict_with_flows", evict_with_flows},
    {"server_clock", server_clock},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    return task_run(cases, argc, argv);
}
