/* core/client and core/server wired back to back through their output queues: handshake, data
 * both ways, the answers to tampering and replay, limits, expiry and re-handshakes. Time is
 * explicit; no network. */
#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>

#include "core/client.h"
#include "core/server.h"
#include "task.h"

#define NPATHS 3
#define MAXPKT 256

static const uint8_t secret[32] = {0x5e, 0xc7, 0xe7, 1, 2, 3};

struct pkt {
    unsigned path; /* client side: the path it travels on */
    uint32_t flow; /* server side: the flow slot */
    struct mpt_addr addr;
    uint32_t len;
    uint8_t data[1600];
};

struct list {
    unsigned n;
    struct pkt v[MAXPKT];
};

/* One client and one server; `paddr` are the source addresses the server sees for each path. */
struct fx {
    struct mpt_client c;
    struct mpt_server s;
    struct mpt_outq q;
    uint64_t now;
    struct mpt_addr paddr[NPATHS];
    struct list up;      /* client -> server */
    struct list down;    /* server -> client, on the path whose address it was sent to */
    struct list stray;   /* server -> an address that is no path (an attacker's) */
    struct list apps;    /* to local applications */
    struct list targets; /* to the target, per flow */
    struct list opens;   /* flow sockets opened (flow = slot, len = target) */
    struct list closes;  /* flow sockets closed */
};

static struct fx fx;

static struct mpt_addr addr4(uint32_t ip, uint16_t port)
{
    struct mpt_addr a;

    memset(&a, 0, sizeof(a));
    a.u.in4.sin_family = AF_INET;
    a.u.in4.sin_addr.s_addr = htonl(ip);
    a.u.in4.sin_port = htons(port);
    return a;
}

static struct pkt *add(struct list *l, const uint8_t *data, size_t len)
{
    struct pkt *p;

    ASSERT_LT(l->n, MAXPKT);
    ASSERT_LE(len, sizeof(p->data));
    p = &l->v[l->n++];
    memset(p, 0, offsetof(struct pkt, data));
    p->len = (uint32_t)len;
    if (data)
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

/* Carries the output queue of one side into the lists, then empties it. */
static void collect(int from_server)
{
    for (unsigned i = 0; i < fx.q.n; i++) {
        const struct mpt_out *o = &fx.q.v[i];
        struct pkt *p;
        /* Whatever an entry carries lives in the queue's arena, never in a caller's buffer. */
        ASSERT(!o->len || (o->data >= fx.q.arena && o->data + o->len <= fx.q.arena + fx.q.cap));
        switch (o->kind) {
        case MPT_OUT_PATH:
            if (!from_server) {
                p = add(&fx.up, o->data, o->len);
                p->path = o->index;
            } else if (path_of(&o->addr) >= 0) {
                p = add(&fx.down, o->data, o->len);
                p->path = (unsigned)path_of(&o->addr);
            } else {
                p = add(&fx.stray, o->data, o->len);
            }
            p->addr = o->addr;
            break;
        case MPT_OUT_APP:
            ASSERT(!from_server);
            p = add(&fx.apps, o->data, o->len);
            p->addr = o->addr;
            break;
        case MPT_OUT_FLOW:
            ASSERT(from_server);
            p = add(&fx.targets, o->data, o->len);
            p->flow = o->index;
            break;
        case MPT_OUT_FLOW_OPEN:
            ASSERT(from_server);
            p = add(&fx.opens, NULL, 0);
            p->flow = o->index;
            p->len = o->target;
            break;
        default:
            ASSERT(0);
        }
    }
    mpt_outq_reset(&fx.q);
    for (unsigned i = 0; i < fx.s.nclosed; i++)
        add(&fx.closes, NULL, 0)->flow = fx.s.closed[i];
    fx.s.nclosed = 0;
}

static void clear(struct list *l)
{
    l->n = 0;
}

static void setup_with(const struct mpt_client_params *cp, const struct mpt_server_params *sp)
{
    memset(&fx, 0, sizeof(fx));
    ASSERT_EQ(mpt_outq_init(&fx.q, 1024, 1 << 20), 0);
    ASSERT_EQ(mpt_client_init(&fx.c, cp), 0);
    ASSERT_EQ(mpt_server_init(&fx.s, sp), 0);
    for (int i = 0; i < NPATHS; i++)
        fx.paddr[i] = addr4(0xc0a80001 + (uint32_t)i, (uint16_t)(40000 + i));
    fx.now = 1000000;
}

static void setup_params(unsigned max_sessions, unsigned max_flows, unsigned client_flows)
{
    struct mpt_client_params cp = {
        .secret = secret,
        .npaths = NPATHS,
        .max_flows = client_flows,
        .flow_timeout_ms = 30000,
        .probe_interval_ms = 200,
    };
    struct mpt_server_params sp = {
        .secret = secret,
        .max_sessions = max_sessions,
        .max_flows = max_flows,
        .flow_timeout_ms = 10000,
        .session_timeout_ms = 60000,
        .ntargets = 1,
    };

    setup_with(&cp, &sp);
}

static void setup(void)
{
    setup_params(4, 16, 16);
}

static void teardown(void)
{
    mpt_client_free(&fx.c);
    mpt_server_free(&fx.s);
    mpt_outq_free(&fx.q);
}

static uint64_t ctimer(void)
{
    uint64_t d = mpt_client_on_timer(&fx.c, fx.now, &fx.q);

    collect(0);
    return d;
}

static uint64_t stimer(void)
{
    uint64_t d = mpt_server_on_timer(&fx.s, fx.now, &fx.q);

    collect(1);
    return d;
}

static void app_send(const struct mpt_addr *app, const char *msg)
{
    mpt_client_on_app(&fx.c, fx.now, app, (const uint8_t *)msg, strlen(msg), &fx.q);
    collect(0);
}

static void target_send(uint32_t flow, const char *msg)
{
    mpt_server_on_target(&fx.s, fx.now, flow, (const uint8_t *)msg, strlen(msg), &fx.q);
    collect(1);
}

static void server_rx(const struct mpt_addr *from, const uint8_t *buf, size_t len)
{
    mpt_server_on_path(&fx.s, fx.now, from, buf, len, &fx.q);
    collect(1);
}

/* Hands every datagram in flight to the server (from its path's address), then empties `up`. */
static void deliver_up(void)
{
    static struct list l;

    l = fx.up;
    clear(&fx.up);
    for (unsigned i = 0; i < l.n; i++)
        server_rx(&fx.paddr[l.v[i].path], l.v[i].data, l.v[i].len);
}

static void deliver_down(void)
{
    static struct list l;

    l = fx.down;
    clear(&fx.down);
    for (unsigned i = 0; i < l.n; i++) {
        mpt_client_on_path(&fx.c, fx.now, l.v[i].path, l.v[i].data, l.v[i].len, &fx.q);
        collect(0);
    }
}

/* The handshake whose INITs are in `up`, then one round of probes. */
static void establish_rest(void)
{
    ASSERT_EQ(fx.up.n, NPATHS);
    for (unsigned i = 0; i < NPATHS; i++) {
        ASSERT_EQ(fx.up.v[i].len, mpt_hs_init_len(fx.c.sec->hsk.keymode));
        ASSERT_EQ(fx.up.v[i].path, i);
    }
    deliver_up();
    /* One session, answered on each path the INIT came from. */
    ASSERT_EQ(fx.s.session_slots.used, 1);
    ASSERT_EQ(fx.down.n, NPATHS);
    deliver_down();
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    ASSERT_EQ(fx.c.hs_sid, 0);
    ctimer();
    ASSERT_EQ(fx.up.n, NPATHS); /* probes */
    deliver_up();
    /* Each new return address is challenged, and validated by the client's echo. */
    ASSERT_EQ(fx.down.n, NPATHS);
    deliver_down();
    ASSERT_EQ(fx.up.n, NPATHS);
    deliver_up();
    ASSERT_EQ(fx.down.n, 0);
    ASSERT_EQ(fx.s.sessions[fx.s.session_slots.head].npaths, NPATHS);
    for (unsigned i = 0; i < NPATHS; i++)
        ASSERT(fx.s.sessions[fx.s.session_slots.head].paths[i].validated);
}

/* Handshake, then one round of probes so that the server knows every path. */
static void establish(void)
{
    ctimer();
    establish_rest();
}

static int has_payload(const struct pkt *p, const char *msg)
{
    return p->len == strlen(msg) && memcmp(p->data, msg, p->len) == 0;
}

static void data_round_trip(void)
{
    struct mpt_addr a = addr4(0x7f000001, 5001), b = addr4(0x7f000001, 5002);
    uint32_t fa, fb;

    setup();
    establish();
    app_send(&a, "from a");
    ASSERT_EQ(fx.up.n, NPATHS);
    /* Encrypted once: the same bytes on every path, no plaintext. */
    for (unsigned i = 1; i < NPATHS; i++)
        ASSERT(fx.up.v[i].len == fx.up.v[0].len &&
               memcmp(fx.up.v[i].data, fx.up.v[0].data, fx.up.v[0].len) == 0);
    ASSERT(memmem(fx.up.v[0].data, fx.up.v[0].len, "from a", 6) == NULL);
    deliver_up();
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT(has_payload(&fx.targets.v[0], "from a"));
    fa = fx.targets.v[0].flow;
    ASSERT_EQ(fx.opens.v[0].flow, fa);
    ASSERT_EQ(fx.opens.v[0].len, 0); /* target 0 */

    app_send(&b, "from b");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 2);
    ASSERT_EQ(fx.targets.n, 2);
    fb = fx.targets.v[1].flow;
    ASSERT_NE(fa, fb);
    ASSERT(has_payload(&fx.targets.v[1], "from b"));

    /* Replies come back to the application that owns the flow. */
    target_send(fb, "to b");
    ASSERT_EQ(fx.down.n, NPATHS);
    target_send(fa, "to a");
    deliver_down();
    ASSERT_EQ(fx.apps.n, 2);
    ASSERT(has_payload(&fx.apps.v[0], "to b"));
    ASSERT(mpt_addr_equal(&fx.apps.v[0].addr, &b));
    ASSERT(has_payload(&fx.apps.v[1], "to a"));
    ASSERT(mpt_addr_equal(&fx.apps.v[1].addr, &a));
    /* A second datagram of a flow opens nothing new. */
    app_send(&a, "again");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 2);
    ASSERT_EQ(fx.targets.v[2].flow, fa);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_AUTH] + fx.s.ctr.drops[MPT_DROP_AUTH], 0);
    /* Empty datagrams are datagrams too. */
    app_send(&a, "");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 4);
    ASSERT_EQ(fx.targets.v[3].len, 0);
    teardown();
}

/* Before the session exists, applications' datagrams are refused (counted), not queued. */
static void no_session_yet(void)
{
    struct mpt_addr a = addr4(0x7f000001, 5001);

    setup();
    app_send(&a, "early");
    /* Nothing to send it with yet: it is held, not lost... */
    ASSERT_EQ(fx.up.n, 0);
    ASSERT_EQ(fx.c.nheld, 1);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_NOSESSION], 0);
    /* ...and leaves with the first session. */
    ctimer();
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    ctimer();
    deliver_up();
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT(has_payload(&fx.targets.v[0], "early"));
    ASSERT_EQ(fx.c.nheld, 0);
    /* What is held too long (the server away) is dropped rather than delivered late. */
    teardown();
    setup();
    app_send(&a, "stale");
    fx.now += MPT_CLIENT_HELD_US + 1;
    ctimer();
    deliver_up();
    deliver_down();
    ctimer();
    deliver_up();
    ASSERT_EQ(fx.targets.n, 0);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_NOSESSION], 1);
    teardown();
}

/* Releasing the held datagrams never takes the room the same call needs for probes and
 * handshakes: with a queue too small for all of them at once, each call releases what fits beside
 * a probe on every path, and the rest follows in the next calls. */
static void held_release_leaves_room(void)
{
    struct mpt_addr a = addr4(0x7f000001, 5001);
    uint64_t probes[NPATHS];
    unsigned calls = 0;
    char msg[32];

    setup();
    mpt_outq_free(&fx.q);
    ASSERT_EQ(mpt_outq_init(&fx.q, 96, 1 << 20), 0);
    for (int i = 0; i < MPT_CLIENT_HELD_MAX; i++) {
        snprintf(msg, sizeof(msg), "held %d", i);
        app_send(&a, msg);
    }
    ASSERT_EQ(fx.c.nheld, MPT_CLIENT_HELD_MAX);
    ctimer();
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    for (int i = 0; i < NPATHS; i++)
        probes[i] = fx.c.paths[i].probes_sent;
    while (fx.c.nheld && calls < 10) {
        uint64_t next = mpt_client_on_timer(&fx.c, fx.now, &fx.q);
        ASSERT_LE(fx.q.n, fx.q.max);
        collect(0);
        deliver_up();
        if (fx.c.nheld)
            ASSERT_LE(next, fx.now + 1); /* called again at once */
        calls++;
    }
    printf("held datagrams released in %u timer calls of a 96-entry queue\n", calls);
    ASSERT_EQ(fx.c.nheld, 0);
    ASSERT_GT(calls, 1);
    /* The first call sent a probe on every path despite the release. */
    for (int i = 0; i < NPATHS; i++)
        ASSERT_GT(fx.c.paths[i].probes_sent, probes[i]);
    ASSERT_EQ(fx.targets.n, MPT_CLIENT_HELD_MAX);
    for (int i = 0; i < MPT_CLIENT_HELD_MAX; i++) {
        snprintf(msg, sizeof(msg), "held %d", i);
        ASSERT(has_payload(&fx.targets.v[i], msg));
    }
    ASSERT_EQ(fx.c.ctr.queue_full, 0);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_NOSESSION], 0);
    teardown();
}

static void tampered_init(void)
{
    uint8_t init[MPT_INIT_NN_LEN], bad[MPT_INIT_NN_LEN];
    struct mpt_addr from;
    const unsigned checked = (MPT_INIT_NN_LEN - MPT_MAC_LEN) * 8;

    setup();
    ctimer();
    memcpy(init, fx.up.v[0].data, MPT_INIT_NN_LEN);
    clear(&fx.up);
    /* Every single bit flipped but MAC2's (looked at only under load), each from a source of its
     * own: no answer, no state. */
    for (unsigned bit = 0; bit < checked; bit++) {
        memcpy(bad, init, sizeof(bad));
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        from = addr4(0x0a000000 + bit, 999);
        server_rx(&from, bad, sizeof(bad));
        ASSERT_EQ(fx.stray.n, 0);
        ASSERT_EQ(fx.s.session_slots.used, 0);
    }
    /* A flip in the type byte may make it a DATA datagram of an unknown session. */
    ASSERT_EQ(fx.s.ctr.drops[MPT_DROP_AUTH] + fx.s.ctr.drops[MPT_DROP_MALFORMED] +
                  fx.s.ctr.drops[MPT_DROP_SESSION],
              checked);
    ASSERT_GT(fx.s.ctr.drops[MPT_DROP_AUTH], checked - 40);
    /* Truncated or padded: refused by size before anything else. */
    from = addr4(0x0b000001, 1);
    server_rx(&from, init, MPT_INIT_NN_LEN - 1);
    memcpy(bad, init, sizeof(bad));
    server_rx(&from, bad, MPT_RESPONSE_LEN);
    ASSERT_EQ(fx.stray.n, 0);
    ASSERT_EQ(fx.s.session_slots.used, 0);
    ASSERT_EQ(fx.s.ctr.handshakes, 0);
    /* The untouched INIT still works. */
    server_rx(&fx.paddr[0], init, sizeof(init));
    ASSERT_EQ(fx.down.n, 1);
    ASSERT_EQ(fx.s.session_slots.used, 1);
    teardown();
}

/* A RESPONSE forged or tampered: refused by the client, which still takes the genuine one. */
static void tampered_response(void)
{
    uint8_t resp[MPT_RESPONSE_LEN], bad[MPT_RESPONSE_LEN];

    setup();
    ctimer();
    deliver_up();
    memcpy(resp, fx.down.v[0].data, MPT_RESPONSE_LEN);
    clear(&fx.down);
    for (unsigned bit = 0; bit < MPT_RESPONSE_LEN * 8; bit++) {
        memcpy(bad, resp, sizeof(bad));
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        mpt_client_on_path(&fx.c, fx.now, 0, bad, sizeof(bad), &fx.q);
        ASSERT_EQ(fx.q.n, 0);
        ASSERT_EQ(fx.c.state, MPT_CLIENT_HANDSHAKE);
    }
    mpt_client_on_path(&fx.c, fx.now, 0, resp, sizeof(resp), &fx.q);
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    teardown();
}

static void replayed_init(void)
{
    uint8_t init[MPT_INIT_NN_LEN], resp[MPT_RESPONSE_LEN];
    struct mpt_addr attacker = addr4(0x0a0a0a0a, 6666), app = addr4(0x7f000001, 5001);
    uint64_t sid;

    setup();
    ctimer();
    memcpy(init, fx.up.v[0].data, MPT_INIT_NN_LEN);
    deliver_up();
    memcpy(resp, fx.down.v[0].data, MPT_RESPONSE_LEN);
    deliver_down();
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    sid = fx.c.sid;
    app_send(&app, "before");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 1);

    /* Within a second, a copy from elsewhere (it might be another path) gets the same answer as
     * before, no larger than the request: nothing new to learn, no new session. */
    server_rx(&attacker, init, sizeof(init));
    ASSERT_LE(fx.stray.n, 1);
    for (unsigned i = 0; i < fx.stray.n; i++) {
        ASSERT_LE(fx.stray.v[i].len, MPT_INIT_NN_LEN);
        ASSERT_MEM_EQ(fx.stray.v[i].data, resp, MPT_RESPONSE_LEN);
    }
    ASSERT_EQ(fx.s.session_slots.used, 1);
    ASSERT_EQ(fx.s.ctr.handshakes, 1);
    /* The RESPONSE replayed to the client changes nothing. */
    mpt_client_on_path(&fx.c, fx.now, 1, resp, sizeof(resp), &fx.q);
    ASSERT_EQ(fx.q.n, 0);
    ASSERT(fx.c.sid == sid);
    /* Nor did the replay disturb the session: data still flows both ways. */
    app_send(&app, "after");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 2);
    ASSERT(has_payload(&fx.targets.v[1], "after"));
    target_send(fx.targets.v[1].flow, "back");
    deliver_down();
    ASSERT_EQ(fx.apps.n, 1);
    ASSERT(has_payload(&fx.apps.v[0], "back"));
    /* The attacker's address was never learnt as a path: replies go to real paths only. */
    for (unsigned i = 0; i < fx.s.sessions[fx.s.session_slots.head].npaths; i++)
        ASSERT(path_of(&fx.s.sessions[fx.s.session_slots.head].paths[i].addr) >= 0);

    /* A flood of the replay within that second: at most MPT_SERVER_INIT_COPIES answers. */
    clear(&fx.stray);
    for (int i = 0; i < 1000; i++)
        server_rx(&attacker, init, sizeof(init));
    ASSERT_LE(fx.stray.n, MPT_SERVER_INIT_COPIES);
    /* Later, from anywhere, however often: nothing at all, and the session goes on. */
    fx.now += MPT_SERVER_INIT_COPY_US;
    clear(&fx.stray);
    clear(&fx.down);
    for (int i = 0; i < 1000; i++) {
        server_rx(&attacker, init, sizeof(init));
        server_rx(&fx.paddr[i % NPATHS], init, sizeof(init));
    }
    ASSERT_EQ(fx.stray.n, 0);
    ASSERT_EQ(fx.down.n, 0);
    ASSERT_GE(fx.s.ctr.drops[MPT_DROP_EXPIRED], 2000);
    ASSERT_EQ(fx.s.ctr.handshakes, 1);
    ASSERT_EQ(fx.s.session_slots.used, 1);
    app_send(&app, "later");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 3);
    teardown();
}

/* Data captured before a server restart, replayed into the new server: dropped as of an unknown
 * session, before and after the client's new handshake. */
static void restart_replay(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);
    struct mpt_server_params sp;
    static struct list captured;

    setup();
    establish();
    for (int i = 0; i < 5; i++) {
        app_send(&app, "secret data");
        for (unsigned j = 0; j < fx.up.n; j++)
            captured.v[captured.n++] = fx.up.v[j];
        deliver_up();
    }
    ASSERT_EQ(fx.targets.n, 5);
    sp = fx.s.p;
    sp.secret = secret;
    mpt_server_free(&fx.s);
    ASSERT_EQ(mpt_server_init(&fx.s, &sp), 0);
    clear(&fx.targets);
    for (unsigned i = 0; i < captured.n; i++)
        server_rx(&fx.paddr[captured.v[i].path], captured.v[i].data, captured.v[i].len);
    ASSERT_EQ(fx.targets.n, 0);
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.s.ctr.drops[MPT_DROP_SESSION], captured.n);
    ASSERT_EQ(fx.s.ctr.opened, 0); /* not even a decryption attempt */
    ASSERT_EQ(fx.stray.n + fx.down.n, 0);

    /* The client notices the silence and makes a new session; the old data stays dead. */
    for (int i = 0; i < 12 && fx.c.sessions_established == 1; i++) {
        fx.now += 100000;
        ctimer();
        deliver_up();
        deliver_down();
    }
    ASSERT_EQ(fx.c.sessions_established, 2);
    ASSERT_EQ(fx.c.hs_sid, 0);
    ASSERT_EQ(fx.s.session_slots.used, 1);
    for (unsigned i = 0; i < captured.n; i++)
        server_rx(&fx.paddr[captured.v[i].path], captured.v[i].data, captured.v[i].len);
    ASSERT_EQ(fx.targets.n, 0);
    app_send(&app, "fresh");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT(has_payload(&fx.targets.v[0], "fresh"));
    teardown();
}

/* The same datagram on every path, in any order, interleaved with others: delivered once, both
 * ways. */
static void multipath_dedup(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);
    static struct list batch;
    uint32_t flow;

    uint64_t sdrops, cdrops;
    char msg[32];

    setup();
    establish();
    /* The handshake's extra REPLY copies count as duplicates already. */
    sdrops = fx.s.ctr.duplicates;
    cdrops = fx.c.ctr.duplicates;
    for (int i = 0; i < 50; i++) {
        snprintf(msg, sizeof(msg), "m%d", i);
        app_send(&app, msg);
    }
    ASSERT_EQ(fx.up.n, 50 * NPATHS);
    /* Deliver newest first, then everything again. */
    batch = fx.up;
    clear(&fx.up);
    for (unsigned i = batch.n; i-- > 0;)
        server_rx(&fx.paddr[batch.v[i].path], batch.v[i].data, batch.v[i].len);
    for (unsigned i = 0; i < batch.n; i++)
        server_rx(&fx.paddr[batch.v[i].path], batch.v[i].data, batch.v[i].len);
    ASSERT_EQ(fx.targets.n, 50);
    ASSERT_EQ(fx.s.ctr.duplicates - sdrops, 50 * NPATHS * 2 - 50);
    ASSERT_EQ(mpt_counters_rejected(&fx.s.ctr), 0);
    for (int i = 0; i < 50; i++) {
        snprintf(msg, sizeof(msg), "m%d", 49 - i);
        ASSERT(has_payload(&fx.targets.v[i], msg));
    }
    flow = fx.targets.v[0].flow;
    for (int i = 0; i < 20; i++) {
        snprintf(msg, sizeof(msg), "r%d", i);
        target_send(flow, msg);
    }
    ASSERT_EQ(fx.down.n, 20 * NPATHS);
    batch = fx.down;
    fx.down.n = 0;
    for (unsigned k = 0; k < 2; k++)
        for (unsigned i = 0; i < batch.n; i++) {
            unsigned j = (i * 7 + k) % batch.n;
            mpt_client_on_path(&fx.c, fx.now, batch.v[j].path, batch.v[j].data, batch.v[j].len,
                               &fx.q);
            collect(0);
        }
    ASSERT_EQ(fx.apps.n, 20);
    ASSERT_EQ(fx.c.ctr.duplicates - cdrops, 20 * NPATHS * 2 - 20);
    ASSERT_EQ(mpt_counters_rejected(&fx.c.ctr), 0);
    teardown();
}

/* A datagram received on a path the client does not have, or cut short: refused quietly. */
static void bad_input(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);
    static uint8_t junk[2000];

    setup();
    establish();
    app_send(&app, "x");
    deliver_up();
    target_send(fx.targets.v[0].flow, "y");
    mpt_client_on_path(&fx.c, fx.now, NPATHS, fx.down.v[0].data, fx.down.v[0].len, &fx.q);
    mpt_client_on_path(&fx.c, fx.now, 0, fx.down.v[0].data, fx.down.v[0].len - 1, &fx.q);
    ASSERT_EQ(fx.q.n, 0);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_AUTH], 1);
    /* Targets' datagrams on a flow that does not exist. */
    target_send(12345, "z");
    target_send(fx.s.p.max_flows, "z");
    target_send(fx.targets.v[0].flow + 1, "z");
    ASSERT_EQ(fx.down.n, NPATHS);
    /* Junk of every length. */
    for (size_t len = 0; len < sizeof(junk); len += 7) {
        memset(junk, (int)len, len);
        server_rx(&fx.paddr[0], junk, len);
        mpt_client_on_path(&fx.c, fx.now, 0, junk, len, &fx.q);
        collect(0);
    }
    ASSERT_EQ(fx.stray.n + fx.apps.n, 0);
    ASSERT_EQ(fx.targets.n, 1);
    /* Too large for the tunnel. */
    static uint8_t big[MPT_MAX_PAYLOAD + 1];
    mpt_client_on_app(&fx.c, fx.now, &app, big, sizeof(big), &fx.q);
    ASSERT_EQ(fx.q.n, 0);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_LIMIT], 1);
    teardown();
}

static void flow_limit(void)
{
    struct mpt_addr app;

    setup_params(4, 4, 5);
    establish();
    for (uint16_t i = 0; i < 6; i++) {
        app = addr4(0x7f000001, (uint16_t)(6000 + i));
        app_send(&app, "hi");
        deliver_up();
    }
    /* Client: 5 flows, the 6th refused. Server: 4 flows, the 5th refused. */
    ASSERT_EQ(mpt_client_flows(&fx.c), 5);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_LIMIT], 1);
    ASSERT_EQ(fx.opens.n, 4);
    ASSERT_EQ(fx.targets.n, 4);
    ASSERT_EQ(fx.s.flow_slots.used, 4);
    ASSERT_EQ(fx.s.ctr.drops[MPT_DROP_LIMIT], 1);
    /* Once the server's flows are idle past their timeout, a new one takes the oldest slot. */
    fx.now += 10000000;
    app = addr4(0x7f000001, 6001);
    app_send(&app, "keep");
    deliver_up();
    app = addr4(0x7f000001, 6004);
    app_send(&app, "new");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 5);
    ASSERT_EQ(fx.closes.n, 1);
    ASSERT_EQ(fx.closes.v[0].flow, fx.opens.v[0].flow);
    ASSERT_EQ(fx.opens.v[4].flow, fx.opens.v[0].flow);
    ASSERT_EQ(fx.s.flow_slots.used, 4);
    teardown();
}

/* Runs another client's timer and returns its first datagram (path 0) in `out`. */
static size_t other_client_timer(struct mpt_client *c, uint8_t *out)
{
    size_t len;

    mpt_client_on_timer(c, fx.now, &fx.q);
    ASSERT_EQ(fx.q.n, NPATHS);
    len = fx.q.v[0].len;
    memcpy(out, fx.q.v[0].data, len);
    mpt_outq_reset(&fx.q);
    return len;
}

/* Sessions beyond the limit are refused while the others are alive and confirmed; a session that
 * never confirmed gives way to a new one. */
static void session_limit(void)
{
    struct mpt_client_params cp;
    struct mpt_client c2, c3;
    struct mpt_addr a2 = addr4(0xc0a80101, 7000), a3 = addr4(0xc0a80102, 7000);
    struct mpt_addr app = addr4(0x7f000001, 5001);
    uint8_t buf[256];
    size_t n;

    setup_params(2, 16, 16);
    establish();
    cp = fx.c.p;
    cp.secret = secret;
    ASSERT_EQ(mpt_client_init(&c2, &cp), 0);
    ASSERT_EQ(mpt_client_init(&c3, &cp), 0);
    /* A second client, half-open (it never sends data). */
    n = other_client_timer(&c2, buf);
    server_rx(&a2, buf, n);
    ASSERT_EQ(fx.s.session_slots.used, 2);
    ASSERT_EQ(fx.stray.n, 1);
    /* A third client takes the half-open one's place. */
    n = other_client_timer(&c3, buf);
    server_rx(&a3, buf, n);
    ASSERT_EQ(fx.s.session_slots.used, 2);
    ASSERT_EQ(fx.stray.n, 2);
    mpt_client_on_path(&c3, fx.now, 0, fx.stray.v[1].data, fx.stray.v[1].len, &fx.q);
    ASSERT_EQ(c3.state, MPT_CLIENT_ESTABLISHED);
    mpt_client_on_app(&c3, fx.now, &app, (const uint8_t *)"c3", 2, &fx.q);
    ASSERT_EQ(fx.q.n, NPATHS);
    n = fx.q.v[0].len;
    memcpy(buf, fx.q.v[0].data, n);
    mpt_outq_reset(&fx.q);
    server_rx(&a3, buf, n);
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT_EQ(fx.stray.n, 3); /* the challenge to c3's return address, not validated yet */
    /* Both sessions now confirmed and alive: c2 is refused, silently, and allocates nothing. */
    app_send(&app, "c1");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 2);
    uint64_t limit_drops = fx.s.ctr.drops[MPT_DROP_LIMIT];
    fx.now += MPT_CLIENT_INIT_RENEW_US; /* a new INIT: the one before was taken */
    n = other_client_timer(&c2, buf);
    ASSERT_EQ(n, MPT_INIT_NN_LEN);
    server_rx(&a2, buf, n);
    ASSERT_EQ(fx.stray.n, 3);
    ASSERT_EQ(fx.s.session_slots.used, 2);
    ASSERT_EQ(fx.s.ctr.drops[MPT_DROP_LIMIT], limit_drops + 1);
    mpt_client_free(&c2);
    mpt_client_free(&c3);
    teardown();
}

static void idle_flow_expiry(void)
{
    struct mpt_addr a = addr4(0x7f000001, 5001), b = addr4(0x7f000001, 5002);
    uint32_t fa, fb;
    uint64_t t0;

    setup();
    establish();
    app_send(&a, "a");
    deliver_up();
    t0 = fx.now;
    fx.now += 4000000;
    app_send(&b, "b");
    deliver_up();
    fa = fx.opens.v[0].flow;
    fb = fx.opens.v[1].flow;
    /* The server's timer asks to be called back no later than the first flow's expiry. */
    ASSERT_LE(stimer(), t0 + 10000000);
    ASSERT_EQ(fx.closes.n, 0);
    fx.now = t0 + 10000000;
    stimer();
    ASSERT_EQ(fx.closes.n, 1);
    ASSERT_EQ(fx.closes.v[0].flow, fa);
    ASSERT_EQ(fx.s.flow_slots.used, 1);
    /* The target's late datagram for the closed flow goes nowhere. */
    target_send(fa, "late");
    ASSERT_EQ(fx.down.n, 0);
    fx.now = t0 + 14000000;
    stimer();
    ASSERT_EQ(fx.closes.n, 2);
    ASSERT_EQ(fx.closes.v[1].flow, fb);
    ASSERT_EQ(fx.s.flow_slots.used, 0);
    /* The client still has its flows: the next datagram opens a new one on the server. */
    app_send(&a, "a2");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 3);
    ASSERT(has_payload(&fx.targets.v[2], "a2"));
    /* The client forgets idle flows too. */
    ASSERT_EQ(mpt_client_flows(&fx.c), 2);
    fx.now += 30000000;
    ctimer();
    ASSERT_EQ(mpt_client_flows(&fx.c), 0);
    teardown();
}

/* The client makes a new session (its old one silent): the server moves the flows over, with
 * their slots and sockets. */
static void rehandshake_keeps_flows(void)
{
    struct mpt_addr a = addr4(0x7f000001, 5001);
    uint64_t old_sid;
    uint32_t flow;

    setup();
    establish();
    app_send(&a, "one");
    deliver_up();
    flow = fx.targets.v[0].flow;
    old_sid = fx.c.sid;
    /* Nothing from the server for a second: the client starts over, naming its old session. */
    for (int i = 0; i < 20 && fx.c.hs_sid == 0; i++) {
        fx.now += 100000;
        ctimer();
        clear(&fx.up);
    }
    ASSERT_NE(fx.c.hs_sid, 0);
    /* Meanwhile the old session still carries data. */
    app_send(&a, "two");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 2);
    fx.now += 250000;
    ctimer();
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.c.hs_sid, 0);
    ASSERT(fx.c.sid != old_sid);
    ASSERT_EQ(fx.s.session_slots.used, 1);
    app_send(&a, "three");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 3);
    ASSERT_EQ(fx.targets.v[2].flow, flow);
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.closes.n, 0);
    target_send(flow, "back");
    deliver_down();
    ASSERT_EQ(fx.apps.n, 1);
    ASSERT(mpt_addr_equal(&fx.apps.v[0].addr, &a));
    teardown();
}

/* The same with every session slot in use: a client's new session replaces its own old one
 * rather than being refused for want of room. */
static void rehandshake_when_full(void)
{
    struct mpt_addr a = addr4(0x7f000001, 5001);
    uint32_t flow;

    setup_params(1, 16, 16);
    establish();
    app_send(&a, "one");
    deliver_up();
    flow = fx.targets.v[0].flow;
    for (int i = 0; i < 20 && fx.c.hs_sid == 0; i++) {
        fx.now += 100000;
        ctimer();
        /* Client -> server still works: the server hears the probes. */
        deliver_up();
        clear(&fx.down);
    }
    ASSERT_NE(fx.c.hs_sid, 0);
    fx.now += 250000;
    ctimer();
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.c.hs_sid, 0);
    ASSERT_EQ(fx.s.session_slots.used, 1);
    app_send(&a, "two");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 2);
    ASSERT_EQ(fx.targets.v[1].flow, flow);
    ASSERT_EQ(fx.opens.n, 1);
    teardown();
}

/* The client's timer returns a deadline: it is in the future, and timers fired only at their
 * deadlines keep a quiet tunnel up with probes. */
static void timer_deadlines(void)
{
    uint64_t d, end;
    unsigned probes = 0;

    setup();
    establish();
    end = fx.now + 10000000;
    while (fx.now < end) {
        d = ctimer();
        ASSERT_GT(d, fx.now);
        ASSERT_LE(d, fx.now + 1000000);
        probes += fx.up.n;
        deliver_up();
        deliver_down();
        fx.now = d;
    }
    ASSERT_EQ(fx.c.sessions_established, 1);
    ASSERT_GE(probes, 10 * 5 * NPATHS - NPATHS);
    for (unsigned i = 0; i < NPATHS; i++) {
        ASSERT_NE(fx.c.paths[i].state, MPT_PATH_DOWN);
        ASSERT_GT(fx.c.paths[i].srtt_us + 1, 0);
    }
    teardown();
}

/* The AEAD each session gets: AES-256-GCM only where both ends may use it, and data flows
 * with either. */
static void cipher_choice(void)
{
    const int aes = mpt_cipher_aes_available();
    struct mpt_addr a = addr4(0x7f000001, 5001);

    for (int no_c = 0; no_c < 2; no_c++) {
        for (int no_s = 0; no_s < 2; no_s++) {
            int want = aes && !no_c && !no_s ? MPT_CIPHER_AES256GCM : MPT_CIPHER_CHACHA20;
            setup();
            fx.c.p.no_aes = no_c;
            fx.s.aes = aes && !no_s;
            establish();
            ASSERT_EQ(fx.c.sec->keys.cipher, want);
            ASSERT_EQ(fx.s.sessions[fx.s.session_slots.head].keys.cipher, want);
            app_send(&a, "both ways");
            deliver_up();
            ASSERT_EQ(fx.targets.n, 1);
            target_send(fx.targets.v[0].flow, "back");
            deliver_down();
            ASSERT_EQ(fx.apps.n, 1);
            printf("client %s AES, server %s AES: %s\n", no_c ? "without" : "with",
                   no_s ? "without" : "with", mpt_cipher_name(want));
            teardown();
        }
    }
}

/* The return direction dies: the client re-handshakes, the server re-keys on the HELLO, but the
 * REPLY is lost. Datagrams the client still sends under the old session keep reaching the target,
 * and the old id is dropped once the client shows it has the new keys. */
static void rehandshake_reply_lost(void)
{
    struct mpt_addr a = addr4(0x7f000001, 5001);
    uint8_t stale[2048];
    size_t stale_len;
    uint64_t old_sid;

    setup();
    establish();
    app_send(&a, "one");
    deliver_up();
    old_sid = fx.c.sid;
    for (int i = 0; i < 20 && fx.c.hs_sid == 0; i++) {
        fx.now += 100000;
        ctimer();
        clear(&fx.up);
    }
    ASSERT_NE(fx.c.hs_sid, 0);
    fx.now += 250000;
    ctimer(); /* the HELLO again */
    deliver_up();
    clear(&fx.down); /* the REPLY is lost */
    ASSERT_EQ(fx.s.sessions[fx.s.session_slots.head].prev_sid, old_sid);
    app_send(&a, "two");
    ASSERT_EQ(fx.up.n, NPATHS);
    stale_len = fx.up.v[0].len;
    memcpy(stale, fx.up.v[0].data, stale_len);
    deliver_up();
    ASSERT_EQ(fx.targets.n, 2);
    ASSERT(has_payload(&fx.targets.v[1], "two"));
    /* The REPLY gets through at last; the client's next datagram retires the old id. */
    fx.now += 250000;
    ctimer();
    deliver_up();
    deliver_down();
    ASSERT(fx.c.sid != old_sid);
    app_send(&a, "three");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 3);
    ASSERT_EQ(fx.s.sessions[fx.s.session_slots.head].prev_sid, 0);
    server_rx(&fx.paddr[0], stale, stale_len);
    ASSERT_EQ(fx.targets.n, 3);
    teardown();
}

/* Counts of the client's datagrams in `up` on path `path`. */
static unsigned up_on(unsigned path)
{
    unsigned n = 0;

    for (unsigned i = 0; i < fx.up.n; i++)
        n += fx.up.v[i].path == path;
    return n;
}

/* A disabled path carries nothing either way, for as long as it stays so; enabled, it is probed
 * at once and up after the first answer. */
static void disabled_path(void)
{
    struct mpt_addr a = addr4(0x7f000001, 5001);
    uint32_t flow;

    setup();
    establish();
    ASSERT_EQ(mpt_client_set_enabled(&fx.c, 1, 0, fx.now), 0);
    ASSERT_EQ(fx.c.paths[1].state, MPT_PATH_DISABLED);
    ASSERT_STR_EQ(mpt_path_state_name(fx.c.paths[1].state), "disabled");
    ASSERT_EQ(mpt_client_set_enabled(&fx.c, NPATHS, 0, fx.now), -EINVAL);
    ASSERT(fx.c.wake);
    ctimer(); /* probes at once: the server learns not to answer on path 1 */
    ASSERT_EQ(up_on(1), 0);
    ASSERT_EQ(up_on(0), 1);
    deliver_up();
    deliver_down();
    app_send(&a, "hello");
    ASSERT_EQ(up_on(1), 0);
    ASSERT_EQ(fx.up.n, NPATHS - 1);
    deliver_up();
    ASSERT_EQ(fx.targets.n, 1);
    flow = fx.targets.v[0].flow;
    target_send(flow, "reply");
    for (unsigned i = 0; i < fx.down.n; i++)
        ASSERT_NE(fx.down.v[i].path, 1);
    ASSERT_EQ(fx.down.n, NPATHS - 1);
    deliver_down();
    ASSERT_EQ(fx.apps.n, 1);
    /* Seconds later: still nothing on it, still disabled (not merely down). */
    for (int k = 0; k < 20; k++) {
        fx.now += 200000;
        ctimer();
        ASSERT_EQ(up_on(1), 0);
        deliver_up();
        deliver_down();
    }
    ASSERT_EQ(fx.c.paths[1].state, MPT_PATH_DISABLED);
    ASSERT_EQ(fx.c.paths[0].state, MPT_PATH_UP);
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);

    ASSERT_EQ(mpt_client_set_enabled(&fx.c, 1, 1, fx.now), 0);
    ASSERT_EQ(fx.c.paths[1].state, MPT_PATH_DOWN);
    ctimer();
    ASSERT_EQ(up_on(1), 1);
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.c.paths[1].state, MPT_PATH_UP);
    teardown();
}

/* New parameters on a running client: paths renumbered, one dropped, one added; each path that
 * goes on keeps its figures, the session and flows stay; a new secret starts a handshake. */
static void reconfigure_paths(void)
{
    struct mpt_addr a = addr4(0x7f000001, 5001);
    struct mpt_client_params p = {
        .secret = secret,
        .npaths = 2,
        .max_flows = 99, /* ignored: the tables keep their size */
        .flow_timeout_ms = 30000,
        .probe_interval_ms = 100,
    };
    int from[MPT_MAX_PATHS] = {2, -1};
    uint64_t sid, tx2;
    uint8_t other[32] = {9};

    setup();
    establish();
    app_send(&a, "hello");
    deliver_up();
    sid = fx.c.sid;
    tx2 = fx.c.paths[2].tx_dgrams;
    ASSERT_EQ(mpt_client_set_enabled(&fx.c, 2, 0, fx.now), 0);
    ASSERT_EQ(mpt_client_reconfigure(&fx.c, &p, from, fx.now), 0);
    ASSERT_EQ(fx.c.p.npaths, 2);
    ASSERT_EQ(fx.c.p.max_flows, 16);
    ASSERT_EQ(fx.c.p.probe_interval_ms, 100);
    ASSERT_EQ(fx.c.paths[0].tx_dgrams, tx2);
    ASSERT_EQ(fx.c.paths[0].state, MPT_PATH_DISABLED); /* old path 3 was disabled */
    ASSERT_EQ(fx.c.paths[1].tx_dgrams, 0);
    ASSERT_EQ(fx.c.paths[1].state, MPT_PATH_DOWN);
    ASSERT_EQ(fx.c.sid, sid);
    ASSERT_EQ(fx.c.hs_sid, 0);
    ASSERT_EQ(mpt_client_flows(&fx.c), 1);
    ASSERT(fx.c.wake);
    app_send(&a, "again");
    ASSERT_EQ(fx.up.n, 1);
    ASSERT_EQ(fx.up.v[0].path, 1);
    /* Invalid: nothing changes. */
    p.npaths = 0;
    ASSERT_EQ(mpt_client_reconfigure(&fx.c, &p, from, fx.now), -EINVAL);
    p.npaths = 2;
    from[0] = 5;
    ASSERT_EQ(mpt_client_reconfigure(&fx.c, &p, from, fx.now), -EINVAL);
    ASSERT_EQ(fx.c.p.npaths, 2);
    /* Another secret: a handshake under it, the session goes on meanwhile. */
    from[0] = 0;
    from[1] = 1;
    p.secret = other;
    ASSERT_EQ(mpt_client_reconfigure(&fx.c, &p, from, fx.now), 0);
    ASSERT_NE(fx.c.hs_sid, 0);
    ASSERT_EQ(fx.c.sid, sid);
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    teardown();
}

/* A captured INIT replayed at 1,000/s from 150 addresses, from 2 s after it was taken: never an
 * answer of any kind, and a new client connecting meanwhile is answered at once. */
static void replay_flood(void)
{
    struct mpt_client_params cp;
    struct mpt_client c2;
    uint8_t init[MPT_INIT_NN_LEN];
    struct mpt_addr a2 = addr4(0xc0a80201, 7000);
    uint64_t t_connect = 0, t_start;

    setup();
    ctimer();
    memcpy(init, fx.up.v[0].data, sizeof(init));
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    cp = fx.c.p;
    cp.secret = secret;
    ASSERT_EQ(mpt_client_init(&c2, &cp), 0);
    fx.now += 2 * MPT_SERVER_INIT_COPY_US;
    clear(&fx.stray);
    t_start = fx.now;
    for (unsigned ms = 0; ms < 3000 && !t_connect; ms++) {
        struct mpt_addr src = addr4(0x0a010000 + ms % 150, 5000);
        server_rx(&src, init, sizeof(init));
        if (ms == 1500) {
            /* c2 starts in the middle of the flood. */
            mpt_client_on_timer(&c2, fx.now, &fx.q);
            for (unsigned i = 0, n = fx.q.n; i < n; i++)
                if (fx.q.v[i].index == 0) {
                    static uint8_t m[MPT_INIT_NN_LEN];
                    memcpy(m, fx.q.v[i].data, sizeof(m));
                    mpt_outq_reset(&fx.q);
                    server_rx(&a2, m, sizeof(m));
                    break;
                }
            mpt_outq_reset(&fx.q);
            t_start = fx.now;
        }
        for (unsigned i = 0; i < fx.stray.n && ms >= 1500; i++) {
            if (!mpt_addr_equal(&fx.stray.v[i].addr, &a2))
                continue;
            mpt_client_on_path(&c2, fx.now, 0, fx.stray.v[i].data, fx.stray.v[i].len, &fx.q);
            for (unsigned j = 0, n = fx.q.n; j < n; j++) {
                static uint8_t m[MPT_INIT_MAX_LEN];
                size_t len = fx.q.v[j].len;
                if (fx.q.v[j].index != 0 || len > sizeof(m))
                    continue;
                memcpy(m, fx.q.v[j].data, len);
                mpt_outq_reset(&fx.q);
                server_rx(&a2, m, len);
                break;
            }
            mpt_outq_reset(&fx.q);
            if (c2.state == MPT_CLIENT_ESTABLISHED)
                t_connect = fx.now;
        }
        {
            unsigned to_replayers = 0;
            for (unsigned i = 0; i < fx.stray.n; i++)
                to_replayers += !mpt_addr_equal(&fx.stray.v[i].addr, &a2);
            ASSERT_EQ(to_replayers, 0);
        }
        clear(&fx.stray);
        fx.now += 1000;
    }
    printf("replays: %llu refused, 0 answered; a new client connected %.1f ms after it started "
           "(limit 1000)\n",
           (unsigned long long)fx.s.ctr.drops[MPT_DROP_EXPIRED],
           (double)(t_connect - t_start) / 1e3);
    ASSERT_NE(t_connect, 0);
    ASSERT_LE(t_connect - t_start, 1000000);
    ASSERT_GE(fx.s.ctr.drops[MPT_DROP_EXPIRED], 1500);
    mpt_client_free(&c2);
    teardown();
}

/* Fresh INITs beyond the server's load: it answers with a COOKIE (never state), the client sends
 * the INIT again at once with MAC2, and is let in. */
static void cookie_under_load(void)
{
    struct mpt_addr a2 = addr4(0xc0a80301, 7000);

    setup();
    /* Load: the budget of INITs given work without a cookie, spent. */
    while (mpt_ratelimit_allow_global(&fx.s.load, fx.now))
        ;
    ctimer();
    ASSERT_EQ(fx.up.n, NPATHS);
    deliver_up();
    /* A COOKIE back on each path, no session. */
    ASSERT_EQ(fx.down.n, NPATHS);
    for (unsigned i = 0; i < fx.down.n; i++) {
        ASSERT_EQ(fx.down.v[i].len, MPT_COOKIE_MSG_LEN);
        ASSERT_LE(fx.down.v[i].len, MPT_INIT_NN_LEN);
    }
    ASSERT_EQ(fx.s.session_slots.used, 0);
    ASSERT_EQ(fx.s.cookies_sent, NPATHS);
    deliver_down();
    ASSERT_EQ(fx.c.cookies, NPATHS);
    /* The INIT again, at once, on each path with its own cookie. */
    ASSERT_EQ(fx.up.n, NPATHS);
    deliver_up();
    ASSERT_EQ(fx.s.session_slots.used, 1);
    deliver_down();
    ASSERT_EQ(fx.c.state, MPT_CLIENT_ESTABLISHED);
    /* A cookie proves its path's address only: the same INIT from elsewhere is not let in. */
    {
        static struct mpt_hs_client st;
        struct mpt_hs_init_params ip = {.sid = 77, .unix_us = fx.now};
        ASSERT_EQ(mpt_hs_client_init(&st, &fx.c.sec->hsk, &ip), 0);
        mpt_hs_client_set_cookie(&st, fx.c.sec->cookie[0]);
        server_rx(&a2, st.msg, st.len);
        ASSERT_EQ(fx.s.session_slots.used, 1);
        ASSERT_EQ(fx.stray.n, 1);
        ASSERT_EQ(fx.stray.v[0].len, MPT_COOKIE_MSG_LEN);
        mpt_hs_client_wipe(&st);
    }
    teardown();
}

/* Another holder of the secret names the victim's session as its previous one: without proof
 * under that session's key it is refused, and the victim's session and flows go on. */
static void takeover_refused(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001), attacker = addr4(0x0a0a0a0a, 6666);
    static struct mpt_hs_keys k;
    static struct mpt_hs_client st;
    struct mpt_hs_init_params ip = {0};
    uint8_t guess[32];

    setup();
    establish();
    app_send(&app, "mine");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT_EQ(mpt_hs_keys_secret(&k, secret), 0);
    memset(guess, 0, sizeof(guess));
    ip.sid = 0x5555;
    ip.unix_us = fx.now;
    ip.prev = fx.c.sid; /* in every DATA header */
    ip.prev_resume = guess;
    ASSERT_EQ(mpt_hs_client_init(&st, &k, &ip), 0);
    server_rx(&attacker, st.msg, st.len);
    ASSERT_EQ(fx.stray.n, 0);
    ASSERT_EQ(fx.s.ctr.handshakes, 1);
    ASSERT(fx.s.sessions[fx.s.session_slots.head].sid == fx.c.sid);
    mpt_hs_client_wipe(&st);
    app_send(&app, "still mine");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 2);
    target_send(fx.targets.v[1].flow, "back");
    ASSERT_EQ(fx.stray.n, 0);
    deliver_down();
    ASSERT_EQ(fx.apps.n, 1);
    teardown();
}

/* Key mode: each client its own key pair; the server knows its peers by public key; a peer only
 * ever reaches its own session. */
static void key_mode(void)
{
    uint8_t cpriv[32], spriv[32], spub[32], opriv[32];
    struct mpt_server_peer peers[2];
    struct mpt_client_params cp = {
        .npaths = NPATHS,
        .max_flows = 16,
        .flow_timeout_ms = 30000,
        .probe_interval_ms = 200,
    };
    struct mpt_server_params sp = {
        .max_sessions = 4,
        .max_flows = 16,
        .flow_timeout_ms = 10000,
        .session_timeout_ms = 60000,
        .ntargets = 1,
    };
    struct mpt_addr app = addr4(0x7f000001, 5001);
    uint32_t slot;

    memset(cpriv, 0x11, 32);
    memset(spriv, 0x22, 32);
    memset(opriv, 0x33, 32);
    ASSERT_EQ(crypto_scalarmult_base(spub, spriv), 0);
    memset(peers, 0, sizeof(peers));
    strcpy(peers[0].name, "laptop");
    ASSERT_EQ(crypto_scalarmult_base(peers[0].public_key, cpriv), 0);
    memset(peers[0].psk, 0x44, 32);
    strcpy(peers[1].name, "phone");
    ASSERT_EQ(crypto_scalarmult_base(peers[1].public_key, opriv), 0);
    cp.private_key = cpriv;
    cp.server_public_key = spub;
    cp.secret = peers[0].psk;
    sp.private_key = spriv;
    sp.peers = peers;
    sp.npeers = 2;
    setup_with(&cp, &sp);
    ctimer();
    ASSERT_EQ(fx.up.v[0].len, MPT_INIT_IK_LEN);
    establish_rest();
    slot = fx.s.session_slots.head;
    ASSERT_EQ(fx.s.sessions[slot].peer, 0);
    ASSERT_EQ(fx.s.peers[0].handshakes, 1);
    app_send(&app, "hello");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 1);
    target_send(fx.targets.v[0].flow, "back");
    deliver_down();
    ASSERT_EQ(fx.apps.n, 1);
    /* The other peer (its own key, no psk given: the server expects 0x44... no, zeros) cannot
     * name this session as its previous one: no proof, and the session is not its own. */
    {
        static struct mpt_hs_keys ok;
        static struct mpt_hs_client st;
        struct mpt_hs_init_params ip = {.sid = 0x99, .unix_us = fx.now, .prev = fx.c.sid};
        uint8_t zero[32] = {0};
        ASSERT_EQ(mpt_hs_keys_pair(&ok, opriv, spub, zero), 0);
        ip.prev_resume = zero;
        ASSERT_EQ(mpt_hs_client_init(&st, &ok, &ip), 0);
        server_rx(&fx.paddr[0], st.msg, st.len);
        ASSERT_EQ(fx.s.ctr.handshakes, 1);
        ASSERT(fx.s.sessions[slot].sid == fx.c.sid);
        clear(&fx.down);
        mpt_hs_client_wipe(&st);
    }
    /* An unknown key: refused without an answer. */
    {
        static struct mpt_hs_keys uk;
        static struct mpt_hs_client st;
        uint8_t upriv[32];
        struct mpt_hs_init_params ip = {.sid = 0x98, .unix_us = fx.now};
        memset(upriv, 0x55, 32);
        ASSERT_EQ(mpt_hs_keys_pair(&uk, upriv, spub, NULL), 0);
        ASSERT_EQ(mpt_hs_client_init(&st, &uk, &ip), 0);
        server_rx(&fx.paddr[0], st.msg, st.len);
        ASSERT_EQ(fx.down.n, 0);
        ASSERT_EQ(fx.s.ctr.handshakes, 1);
        mpt_hs_client_wipe(&st);
    }
    /* The peer's own INIT replayed (key mode: not newer than the last taken): nothing. */
    teardown();
}

/* Keys change every rekey_after_ms without a gap; a datagram held back until its keys are past
 * their lifetime is refused, and the old keys are wiped. */
static void rekey(void)
{
    struct mpt_client_params cp = {
        .secret = secret,
        .npaths = NPATHS,
        .max_flows = 16,
        .flow_timeout_ms = 60000,
        .probe_interval_ms = 200,
        .rekey_after_ms = 5000,
    };
    struct mpt_server_params sp = {
        .secret = secret,
        .max_sessions = 4,
        .max_flows = 16,
        .flow_timeout_ms = 60000,
        .session_timeout_ms = 60000,
        .ntargets = 1,
        .rekey_after_ms = 5000,
    };
    struct mpt_addr app = addr4(0x7f000001, 5001);
    static struct list held;
    uint64_t sid0, t0;
    unsigned sent = 0, got = 0;

    setup_with(&cp, &sp);
    establish();
    sid0 = fx.c.sid;
    t0 = fx.c.established_us;
    app_send(&app, "held back");
    held = fx.up;
    clear(&fx.up);
    /* 12 s of traffic, a datagram every 10 ms, everything delivered both ways at once. */
    for (; fx.now < t0 + 12000000; fx.now += 10000) {
        char m[32];
        snprintf(m, sizeof(m), "d%u", sent++);
        app_send(&app, m);
        ctimer();
        deliver_up();
        stimer();
        deliver_down();
        got += fx.targets.n;
        clear(&fx.targets);
        clear(&fx.apps);
        clear(&fx.opens);
    }
    printf("re-keys in 12 s at 5 s: %u; datagrams delivered %u of %u\n",
           fx.c.sessions_established - 1, got, sent);
    ASSERT_EQ(fx.c.sessions_established, 3);
    ASSERT(fx.c.sid != sid0);
    ASSERT_EQ(got, sent);
    ASSERT_EQ(fx.s.session_slots.used, 1);
    ASSERT_EQ(fx.s.flow_slots.used, 1);
    /* The datagram held since the first keys: refused. */
    for (unsigned i = 0; i < held.n; i++)
        server_rx(&fx.paddr[held.v[i].path], held.v[i].data, held.v[i].len);
    ASSERT_EQ(fx.targets.n, 0);
    ASSERT_GE(fx.s.ctr.drops[MPT_DROP_SESSION] + fx.s.ctr.drops[MPT_DROP_EXPIRED], 1);
    /* The keys before the last re-key: wiped once their 2 s are over. */
    ASSERT_NE(fx.c.prev_sid, 0);
    t0 = fx.c.prev_until_us;
    while (fx.now <= t0) {
        fx.now += 100000;
        ctimer();
        deliver_up();
        stimer();
        deliver_down();
    }
    ASSERT_EQ(fx.c.prev_sid, 0);
    {
        static const uint8_t zero[MPT_KEY_LEN];
        ASSERT_MEM_EQ(fx.c.sec->prev_keys.tx, zero, MPT_KEY_LEN);
    }
    /* Without the server, keys die at 1.5 x: the client says so and holds datagrams. */
    t0 = fx.c.established_us;
    for (; fx.now < t0 + 7600000; fx.now += 100000) {
        ctimer();
        clear(&fx.up);
    }
    ASSERT_NE(fx.c.state, MPT_CLIENT_ESTABLISHED);
    teardown();
}

static const struct task_case cases[] = {
    {"cipher_choice", cipher_choice},
    {"rehandshake_reply_lost", rehandshake_reply_lost},
    {"data_round_trip", data_round_trip},
    {"no_session_yet", no_session_yet},
    {"held_release_leaves_room", held_release_leaves_room},
    {"tampered_init", tampered_init},
    {"tampered_response", tampered_response},
    {"replayed_init", replayed_init},
    {"restart_replay", restart_replay},
    {"multipath_dedup", multipath_dedup},
    {"bad_input", bad_input},
    {"flow_limit", flow_limit},
    {"session_limit", session_limit},
    {"idle_flow_expiry", idle_flow_expiry},
    {"rehandshake_keeps_flows", rehandshake_keeps_flows},
    {"rehandshake_when_full", rehandshake_when_full},
    {"timer_deadlines", timer_deadlines},
    {"disabled_path", disabled_path},
    {"reconfigure_paths", reconfigure_paths},
    {"replay_flood", replay_flood},
    {"cookie_under_load", cookie_under_load},
    {"takeover_refused", takeover_refused},
    {"key_mode", key_mode},
    {"rekey", rekey},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
