/* Targets named inside the encryption (PROTOCOL.md §5): the target block, allow rules, and a client
 * and a server core wired back to back: a flow opens towards what it names only when an allow rule
 * covers it, a lost first datagram never misroutes it, names are resolved through the driver, and
 * refusals are counted by reason and told to the client; in key mode, a peer with rules of its
 * own is held to them alone. Time is explicit; no network. */
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
    struct list opens;   /* flow sockets opened (flow = slot, len = target, addr) */
    struct list lookups; /* names to resolve (flow = slot, path = gen, data = name, addr = port) */
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
            p->path = o->target; /* the front */
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
            p->addr = o->addr;
            break;
        case MPT_OUT_RESOLVE:
            ASSERT(from_server);
            p = add(&fx.lookups, o->data, o->len);
            p->flow = o->index;
            p->path = o->gen;
            p->addr = o->addr;
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

static struct mpt_allow_rule rules[4];
static unsigned nrules;

/* Key mode, when `keys.npeers` is set before setup: the client is peer 0. */
static struct {
    uint8_t cpriv[32], spriv[32], spub[32], psk[32];
    struct mpt_server_peer peers[2];
    unsigned npeers;
    struct mpt_allow_rule rules[4]; /* the peers' own */
    unsigned nrules;
} keys;

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
        .allow = rules,
        .nallow = nrules,
        .max_lookups = 2,
    };

    if (keys.npeers) {
        cp.secret = keys.psk;
        cp.private_key = keys.cpriv;
        cp.server_public_key = keys.spub;
        sp.secret = NULL;
        sp.private_key = keys.spriv;
        sp.peers = keys.peers;
        sp.npeers = keys.npeers;
        sp.peer_allow = keys.rules;
        sp.npeer_allow = keys.nrules;
    }
    memset(&fx, 0, sizeof(fx));
    ASSERT_EQ(mpt_outq_init(&fx.q, 1024, 1 << 20), 0);
    ASSERT_EQ(mpt_client_init(&fx.c, &cp), 0);
    ASSERT_EQ(mpt_server_init(&fx.s, &sp), 0);
    for (int i = 0; i < NPATHS; i++)
        fx.paddr[i] = addr4(0xc0a80001 + (uint32_t)i, (uint16_t)(40000 + i));
    fx.now = 1000000;
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

/* For the cases without the fixture. */
static void teardown_none(void)
{
    nrules = 0;
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

/* Handshake, then one round of probes so that the server knows every path. */
static void establish(void)
{
    ctimer();
    ASSERT_EQ(fx.up.n, NPATHS);
    for (unsigned i = 0; i < NPATHS; i++) {
        ASSERT_EQ(fx.up.v[i].len, keys.npeers ? MPT_INIT_IK_LEN : MPT_INIT_NN_LEN);
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

static int has_payload(const struct pkt *p, const char *msg)
{
    return p->len == strlen(msg) && memcmp(p->data, msg, p->len) == 0;
}

static struct mpt_addr addr6(const char *text, uint16_t port)
{
    struct mpt_addr a;

    ASSERT_EQ(mpt_target_literal(text, port, &a), 0);
    return a;
}

static void rule4(uint32_t ip, unsigned prefix, uint16_t lo, uint16_t hi)
{
    struct mpt_allow_rule *r = &rules[nrules++];

    memset(r, 0, sizeof(*r));
    r->family = AF_INET;
    r->prefix = (uint8_t)prefix;
    r->port_lo = lo;
    r->port_hi = hi;
    ip = htonl(ip);
    memcpy(r->addr, &ip, 4);
}

static void send_to(const struct mpt_addr *app, uint16_t front, const char *host, uint16_t port,
                    const char *msg)
{
    mpt_client_on_app_to(&fx.c, fx.now, app, front, host, port, (const uint8_t *)msg, strlen(msg),
                         &fx.q);
    collect(0);
}

static void block(void)
{
    uint8_t b[MPT_TARGET_BLOCK_MAX + 8];
    char host[MPT_TARGET_HOST_MAX + 1], name[300];
    uint16_t port;
    int n;

    n = mpt_target_encode(b, sizeof(b), "dns.example.org", 53);
    ASSERT_EQ(n, 1 + 15 + 2);
    ASSERT_EQ(b[0], 15);
    ASSERT_EQ(mpt_target_decode(b, (size_t)n + 5, host, &port), n);
    ASSERT_STR_EQ(host, "dns.example.org");
    ASSERT_EQ(port, 53);
    /* Every truncation is refused, never read past. */
    for (int len = 0; len < n; len++)
        ASSERT_EQ(mpt_target_decode(b, (size_t)len, host, &port), -EINVAL);
    ASSERT_EQ(mpt_target_encode(b, (size_t)n - 1, "dns.example.org", 53), -ENOBUFS);
    ASSERT_EQ(mpt_target_encode(b, sizeof(b), "dns.example.org", 0), -EINVAL);
    ASSERT_EQ(mpt_target_encode(b, sizeof(b), "", 53), -EINVAL);
    ASSERT_EQ(mpt_target_encode(b, sizeof(b), "a b", 53), -EINVAL);
    ASSERT_EQ(mpt_target_encode(b, sizeof(b), "fd00::1", 53), 1 + 7 + 2);
    memset(name, 'a', 253);
    name[253] = '\0';
    ASSERT_EQ(mpt_target_encode(b, sizeof(b), name, 1), 256);
    name[253] = 'a';
    name[254] = '\0';
    ASSERT_EQ(mpt_target_encode(b, sizeof(b), name, 1), -EINVAL);
    /* Hostile blocks: empty host, a control byte, a length of 254 or more, port 0. */
    memcpy(b, "\x00\x00\x35", 3);
    ASSERT_EQ(mpt_target_decode(b, 3, host, &port), -EINVAL);
    memcpy(b, "\x01\x07\x00\x35", 4);
    ASSERT_EQ(mpt_target_decode(b, 4, host, &port), -EINVAL);
    memcpy(b, "\x01x\x00\x00", 4);
    ASSERT_EQ(mpt_target_decode(b, 4, host, &port), -EINVAL);
    b[0] = 254;
    memset(b + 1, 'a', 256);
    ASSERT_EQ(mpt_target_decode(b, 257, host, &port), -EINVAL);
    for (unsigned v = 0; v < 256; v++) {
        uint8_t x[4] = {1, (uint8_t)v, 0, 1};
        int ok = (v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') || (v >= '0' && v <= '9') ||
                 v == '-' || v == '_' || v == '.' || v == ':';
        ASSERT_EQ(mpt_target_decode(x, 4, host, &port), ok ? 4 : -EINVAL);
    }
}

static void allow_rules(void)
{
    struct mpt_allow_rule r[3];
    struct mpt_addr a;

    nrules = 0;
    rule4(0x0a000000, 24, 53, 53);
    rule4(0xc0a80000, 16, 1000, 2000);
    memcpy(r, rules, 2 * sizeof(r[0]));
    memset(&r[2], 0, sizeof(r[2]));
    r[2].family = AF_INET6;
    r[2].prefix = 64;
    r[2].port_lo = 1;
    r[2].port_hi = 65535;
    inet_pton(AF_INET6, "fd00:1::", r[2].addr);
    ASSERT_EQ(mpt_allow_match(r, 3, (a = addr4(0x0a0000fe, 53), &a)), 1);
    ASSERT_EQ(mpt_allow_match(r, 3, (a = addr4(0x0a0001fe, 53), &a)), 0);
    ASSERT_EQ(mpt_allow_match(r, 3, (a = addr4(0x0a0000fe, 54), &a)), 0);
    ASSERT_EQ(mpt_allow_match(r, 3, (a = addr4(0xc0a8ffff, 1000), &a)), 1);
    ASSERT_EQ(mpt_allow_match(r, 3, (a = addr4(0xc0a8ffff, 2001), &a)), 0);
    ASSERT_EQ(mpt_allow_match(r, 3, (a = addr6("fd00:1::9", 7), &a)), 1);
    ASSERT_EQ(mpt_allow_match(r, 3, (a = addr6("fd00:2::9", 7), &a)), 0);
    /* An IPv4-mapped address is judged as IPv4, and matches no IPv6 rule by accident. */
    ASSERT_EQ(mpt_allow_match(r, 3, (a = addr6("::ffff:10.0.0.1", 53), &a)), 1);
    ASSERT_EQ(mpt_allow_match(r, 3, (a = addr6("::ffff:10.0.1.1", 53), &a)), 0);
    ASSERT_EQ(mpt_allow_match(r, 0, (a = addr4(0x0a0000fe, 53), &a)), 0);
    /* /0 covers every address of its family. */
    r[0].prefix = 0;
    memset(r[0].addr, 0, 4);
    ASSERT_EQ(mpt_allow_match(r, 1, (a = addr4(0x01020304, 53), &a)), 1);
    ASSERT_EQ(mpt_allow_match(r, 1, (a = addr6("fd00:1::9", 53), &a)), 0);
    nrules = 0;
}

static void setup_rules(void)
{
    nrules = 0;
    rule4(0x0a000000, 24, 53, 53); /* 10.0.0.0/24:53 */
    setup();
    establish();
}

static void named_literal(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001), want = addr4(0x0a000007, 53);
    uint32_t len1, len2;

    setup_rules();
    send_to(&app, 1, "10.0.0.7", 53, "q1");
    ASSERT_EQ(fx.up.n, NPATHS);
    len1 = fx.up.v[0].len;
    deliver_up();
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.opens.v[0].len, MPT_TARGET_NAMED);
    ASSERT(mpt_addr_equal(&fx.opens.v[0].addr, &want));
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT(has_payload(&fx.targets.v[0], "q1"));
    deliver_down(); /* FLOW_STATUS open */
    ASSERT_EQ(fx.c.flows[fx.c.flow_slots.head].acked, 1);
    send_to(&app, 1, "10.0.0.7", 53, "q2");
    len2 = fx.up.v[0].len;
    /* Once open, the target no longer travels: 11 bytes less (length, 8 characters, port). */
    printf("target block %u bytes, then none\n", len1 - len2);
    ASSERT_EQ(len1 - len2, 11);
    deliver_up();
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.targets.n, 2);
    ASSERT(has_payload(&fx.targets.v[1], "q2"));
    ASSERT_EQ(fx.targets.v[1].flow, fx.targets.v[0].flow);
    target_send(fx.targets.v[0].flow, "a1");
    deliver_down();
    ASSERT_EQ(fx.apps.n, 1);
    ASSERT(has_payload(&fx.apps.v[0], "a1"));
    ASSERT_EQ(fx.apps.v[0].path, 1); /* back through its front */
    ASSERT(mpt_addr_equal(&fx.apps.v[0].addr, &app));
    teardown();
}

/* Every copy of a flow's first datagram lost: the next one still names the target. */
static void first_lost(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001), want = addr4(0x0a000008, 53);

    setup_rules();
    send_to(&app, 2, "10.0.0.8", 53, "lost");
    clear(&fx.up);
    send_to(&app, 2, "10.0.0.8", 53, "q2");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.opens.v[0].len, MPT_TARGET_NAMED);
    ASSERT(mpt_addr_equal(&fx.opens.v[0].addr, &want));
    ASSERT(has_payload(&fx.targets.v[0], "q2"));
    /* The status lost too: the target travels again, and is acknowledged again. */
    clear(&fx.down);
    send_to(&app, 2, "10.0.0.8", 53, "q3");
    ASSERT_GT(fx.up.v[0].len, 0);
    deliver_up();
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.targets.n, 2);
    ASSERT_GE(fx.down.n, 1);
    deliver_down();
    ASSERT_EQ(fx.c.flows[fx.c.flow_slots.head].acked, 1);
    teardown();
}

static void refused(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);
    uint64_t t0;

    setup_rules();
    send_to(&app, 1, "10.0.1.7", 53, "x"); /* outside the block */
    send_to(&app, 1, "10.0.0.7", 54, "y"); /* outside the ports */
    send_to(&app, 1, "fd00::1", 53, "z");  /* no IPv6 rule */
    deliver_up();
    ASSERT_EQ(fx.opens.n, 0);
    ASSERT_EQ(fx.targets.n, 0);
    ASSERT_EQ(fx.s.refused[MPT_FLOW_NOT_ALLOWED], 3); /* once each: duplicates stop first */
    ASSERT_EQ(fx.s.flow_slots.used, 0);
    deliver_down();
    ASSERT_EQ(fx.c.refused[MPT_FLOW_NOT_ALLOWED], 3);
    /* The client stops sending them for a while... */
    t0 = fx.now;
    send_to(&app, 1, "10.0.1.7", 53, "x2");
    ASSERT_EQ(fx.up.n, 0);
    ASSERT_EQ(fx.c.refused_drops, 1);
    /* ...then asks again, target included, and is refused again. */
    fx.now = t0 + MPT_CLIENT_REFUSED_US;
    send_to(&app, 1, "10.0.1.7", 53, "x3");
    ASSERT_EQ(fx.up.n, NPATHS);
    deliver_up();
    ASSERT_EQ(fx.opens.n, 0);
    ASSERT_EQ(fx.targets.n, 0);
    ASSERT_EQ(fx.s.refused[MPT_FLOW_NOT_ALLOWED], 4);
    printf("refused: %llu not allowed, 0 contacted\n",
           (unsigned long long)fx.s.refused[MPT_FLOW_NOT_ALLOWED]);
    teardown();
}

static void no_default_target(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);

    setup_rules();
    fx.s.p.ntargets = 0;
    send_to(&app, 0, NULL, 0, "plain");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 0);
    ASSERT_EQ(fx.targets.n, 0);
    ASSERT_EQ(fx.s.refused[MPT_FLOW_NOT_ALLOWED], 1);
    teardown();
}

static void names(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001), got = addr4(0x0a000009, 1234);
    struct mpt_addr want = addr4(0x0a000009, 53), bad = addr4(0x0b000009, 1);
    uint32_t slot, gen;

    setup_rules();
    send_to(&app, 1, "dns.example", 53, "q1");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 0);
    ASSERT_EQ(fx.lookups.n, 1);
    ASSERT(has_payload(&fx.lookups.v[0], "dns.example"));
    ASSERT_EQ(mpt_addr_port(&fx.lookups.v[0].addr), 53);
    slot = fx.lookups.v[0].flow;
    gen = fx.lookups.v[0].path;
    /* While it resolves, the flow's first datagram is held; more start no second lookup and
     * reach no one. */
    send_to(&app, 1, "dns.example", 53, "q2");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 1);
    ASSERT_EQ(fx.targets.n, 0);
    ASSERT_EQ(fx.s.nheld, 1);
    /* A stale answer is ignored; the right one opens the flow at the port named, and the first
     * datagram goes to the target then, after the open. */
    mpt_server_on_resolved(&fx.s, fx.now, slot, gen + 1, 0, &got, &fx.q);
    collect(1);
    ASSERT_EQ(fx.opens.n, 0);
    ASSERT_EQ(fx.targets.n, 0);
    mpt_server_on_resolved(&fx.s, fx.now, slot, gen, 0, &got, &fx.q);
    collect(1);
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT(mpt_addr_equal(&fx.opens.v[0].addr, &want));
    ASSERT_EQ(fx.s.lookups, 0);
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT(has_payload(&fx.targets.v[0], "q1"));
    ASSERT_EQ(fx.targets.v[0].flow, fx.opens.v[0].flow);
    ASSERT_EQ(fx.s.nheld, 0);
    ASSERT_EQ(fx.s.held_delivered, 1);
    deliver_down();
    send_to(&app, 1, "dns.example", 53, "q3");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 2);
    ASSERT(has_payload(&fx.targets.v[1], "q3"));
    /* A name that resolves outside the rules: refused, its slot freed, nothing opened. */
    send_to(&app, 1, "evil.example", 53, "e1");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 2);
    mpt_server_on_resolved(&fx.s, fx.now, fx.lookups.v[1].flow, fx.lookups.v[1].path, 0, &bad,
                           &fx.q);
    collect(1);
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.s.refused[MPT_FLOW_NOT_ALLOWED], 1);
    ASSERT_EQ(fx.s.flow_slots.used, 1);
    ASSERT_EQ(fx.targets.n, 2); /* its held datagram with it: nowhere */
    ASSERT_EQ(fx.s.nheld, 0);
    /* A name that does not resolve. */
    send_to(&app, 1, "nosuch.example", 53, "n1");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 3);
    mpt_server_on_resolved(&fx.s, fx.now, fx.lookups.v[2].flow, fx.lookups.v[2].path, -ENOENT, NULL,
                           &fx.q);
    collect(1);
    ASSERT_EQ(fx.s.refused[MPT_FLOW_UNRESOLVED], 1);
    ASSERT_EQ(fx.s.flow_slots.used, 1);
    ASSERT_EQ(fx.s.nheld, 0);
    ASSERT_EQ(fx.targets.n, 2);
    deliver_down();
    ASSERT_EQ(fx.c.refused[MPT_FLOW_NOT_ALLOWED], 1);
    ASSERT_EQ(fx.c.refused[MPT_FLOW_UNRESOLVED], 1);
    ASSERT_EQ(fx.opens.n, 1);
    teardown();
}

static void lookup_limit(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001), got = addr4(0x0a000009, 0);
    uint32_t slot, gen;

    setup_rules(); /* max_lookups 2 */
    send_to(&app, 1, "a.example", 53, "1");
    send_to(&app, 1, "b.example", 53, "2");
    send_to(&app, 1, "c.example", 53, "3");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 2);
    ASSERT_EQ(fx.s.refused[MPT_FLOW_BUSY], 1);
    ASSERT_EQ(fx.s.lookups, 2);
    /* A pending flow that expires leaves its lookup running: the answer, come late, opens no flow
     * but is kept for the next flow naming the name, which opens without a lookup. */
    slot = fx.lookups.v[0].flow;
    gen = fx.lookups.v[0].path;
    ASSERT_EQ(fx.s.nheld, 2);
    fx.now += 11000000;
    stimer();
    ASSERT_EQ(fx.s.flow_slots.used, 0);
    ASSERT_EQ(fx.s.lookups, 2);
    ASSERT_EQ(fx.s.nheld, 0); /* their datagrams with them */
    mpt_server_on_resolved(&fx.s, fx.now, slot, gen, 0, &got, &fx.q);
    collect(1);
    ASSERT_EQ(fx.opens.n, 0);
    ASSERT_EQ(fx.s.lookups, 1);
    clear(&fx.lookups);
    mpt_client_close_front(&fx.c, 1, fx.now);
    send_to(&app, 1, "a.example", 53, "4");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 0);
    ASSERT_EQ(fx.opens.n, 1);
    /* A lookup the driver never answers is given up after MPT_NAMES_LOOKUP_US: its place is
     * free again, and its answer, should it come, is ignored. */
    fx.now += MPT_NAMES_LOOKUP_US;
    send_to(&app, 1, "b.example", 53, "5");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 1);
    ASSERT_EQ(fx.s.names.given_up, 1);
    ASSERT_EQ(fx.s.lookups, 1);
    mpt_server_on_resolved(&fx.s, fx.now, 0, fx.lookups.v[0].path - 1, 0, &got, &fx.q);
    collect(1);
    ASSERT_EQ(fx.opens.n, 1);
    teardown();
}

/* The server forgot a flow (expired there first, or a new session): it says so, and the client
 * names the target again. */
static void unknown_flow(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);

    setup_rules();
    send_to(&app, 1, "10.0.0.7", 53, "q1");
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.opens.n, 1);
    fx.now += 11000000; /* server flow_timeout 10 s, client 30 s */
    stimer();
    ASSERT_EQ(fx.s.flow_slots.used, 0);
    ctimer();
    deliver_up();
    deliver_down();
    clear(&fx.up);
    /* The silence made a new session, which sends targets again anyway: pretend it did not. */
    fx.c.flows[fx.c.flow_slots.head].acked = 1;
    send_to(&app, 1, "10.0.0.7", 53, "q2"); /* without the target: dropped, answered */
    deliver_up();
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.targets.n, 1);
    deliver_down();
    ASSERT_EQ(fx.c.flows[fx.c.flow_slots.head].acked, 0);
    send_to(&app, 1, "10.0.0.7", 53, "q3");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 2);
    ASSERT_EQ(fx.opens.v[1].len, MPT_TARGET_NAMED);
    ASSERT(has_payload(&fx.targets.v[1], "q3"));
    teardown();
}

/* One application address, three destinations: three flows, each reply back to its own. */
static void flows_apart(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);

    setup_rules();
    send_to(&app, 0, NULL, 0, "d");
    send_to(&app, 1, "10.0.0.1", 53, "a");
    send_to(&app, 2, "10.0.0.2", 53, "b");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 3);
    ASSERT_EQ(fx.opens.v[0].len, 0);
    ASSERT_EQ(fx.opens.v[1].len, MPT_TARGET_NAMED);
    ASSERT_EQ(fx.targets.n, 3);
    deliver_down();
    for (unsigned i = 0; i < 3; i++) {
        char r[8];
        snprintf(r, sizeof(r), "r%u", i);
        target_send(fx.targets.v[i].flow, r);
    }
    deliver_down();
    ASSERT_EQ(fx.apps.n, 3);
    for (unsigned i = 0; i < 3; i++) {
        ASSERT_EQ(fx.apps.v[i].path, i); /* front i gets reply i */
        ASSERT_EQ(fx.apps.v[i].data[1], '0' + i);
    }
    teardown();
}

/* A SOCKS association ends: the flows of its front go, the others stay, and a late reply to one
 * of its flows reaches nobody. */
static void close_front(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);
    uint64_t closed;

    setup_rules();
    send_to(&app, 3, "10.0.0.1", 53, "a");
    send_to(&app, 3, "10.0.0.2", 53, "b");
    send_to(&app, 4, "10.0.0.1", 53, "c");
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.targets.n, 3);
    ASSERT_EQ(mpt_client_flows(&fx.c), 3);
    closed = fx.c.flows_closed;
    mpt_client_close_front(&fx.c, 3, fx.now);
    ASSERT_EQ(mpt_client_flows(&fx.c), 1);
    ASSERT_EQ(fx.c.flows_closed, closed + 2);
    mpt_client_close_front(&fx.c, 3, fx.now); /* none left: nothing happens */
    ASSERT_EQ(mpt_client_flows(&fx.c), 1);
    for (unsigned i = 0; i < 3; i++)
        target_send(fx.targets.v[i].flow, "r");
    deliver_down();
    ASSERT_EQ(fx.apps.n, 1);
    ASSERT_EQ(fx.apps.v[0].path, 4);
    teardown();
}

/* The server's name cache: flows naming one name, at once and later, cause one lookup; a name
 * that did not resolve is refused without a lookup for a while; an answer is used until it
 * expires; an answer outside the rules of the moment is still refused. */
static void name_cache(void)
{
    struct mpt_addr a1 = addr4(0x7f000001, 5001), a2 = addr4(0x7f000001, 5002);
    struct mpt_addr got = addr4(0x0a000009, 0), want = addr4(0x0a000009, 53);
    uint32_t gen;

    setup_rules(); /* max_lookups 2 */
    send_to(&a1, 1, "dns.example", 53, "q1");
    send_to(&a2, 1, "dns.example", 53, "q2"); /* another flow, while the first resolves */
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 1);
    ASSERT_EQ(fx.s.flow_slots.used, 2);
    ASSERT_EQ(fx.s.names.misses, 1);
    ASSERT_EQ(fx.s.names.hits, 1);
    gen = fx.lookups.v[0].path;
    mpt_server_on_resolved(&fx.s, fx.now, fx.lookups.v[0].flow, gen, 0, &got, &fx.q);
    collect(1);
    ASSERT_EQ(fx.opens.n, 2); /* both waiting flows open with the one answer */
    ASSERT(mpt_addr_equal(&fx.opens.v[0].addr, &want));
    ASSERT(mpt_addr_equal(&fx.opens.v[1].addr, &want));
    ASSERT_EQ(fx.targets.n, 2); /* each with its first datagram */
    ASSERT(has_payload(&fx.targets.v[0], "q1") || has_payload(&fx.targets.v[1], "q1"));
    ASSERT(has_payload(&fx.targets.v[0], "q2") || has_payload(&fx.targets.v[1], "q2"));
    ASSERT_EQ(mpt_names_cached(&fx.s.names, fx.now), 1);
    deliver_down();
    /* Later flows, at other ports, open at once from the cache. */
    for (uint16_t i = 0; i < 8; i++) {
        struct mpt_addr a = addr4(0x7f000001, (uint16_t)(6000 + i));
        send_to(&a, 1, "dns.example", 53, "q");
    }
    deliver_up();
    printf("10 flows to one name: %u lookup (limit 1), %llu answered by the cache\n", fx.lookups.n,
           (unsigned long long)fx.s.names.hits);
    ASSERT_EQ(fx.lookups.n, 1);
    ASSERT_EQ(fx.opens.n, 10);
    ASSERT_EQ(fx.s.names.hits, 9);
    /* A reload whose rules no longer cover the address: the cached answer opens nothing. */
    {
        struct mpt_allow_rule none = rules[0];
        none.port_lo = none.port_hi = 54;
        mpt_server_set_allow(&fx.s, &none, 1);
        send_to(&a1, 2, "dns.example", 53, "x");
        deliver_up();
        ASSERT_EQ(fx.lookups.n, 1);
        ASSERT_EQ(fx.opens.n, 10);
        ASSERT_EQ(fx.s.refused[MPT_FLOW_NOT_ALLOWED], 1);
        mpt_server_set_allow(&fx.s, rules, nrules);
    }
    /* Expired (60 s): asked again. */
    fx.now += MPT_NAMES_TTL_US;
    send_to(&a1, 3, "dns.example", 53, "q");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 2);
    ASSERT_EQ(fx.s.names.misses, 2);
    /* A negative answer: refused at once for MPT_NAMES_NEG_TTL_US, then asked again. */
    send_to(&a1, 4, "nosuch.example", 53, "n");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 3);
    mpt_server_on_resolved(&fx.s, fx.now, fx.lookups.v[2].flow, fx.lookups.v[2].path, -ENOENT, NULL,
                           &fx.q);
    collect(1);
    ASSERT_EQ(fx.s.refused[MPT_FLOW_UNRESOLVED], 1);
    send_to(&a2, 4, "nosuch.example", 53, "n");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 3);
    ASSERT_EQ(fx.s.refused[MPT_FLOW_UNRESOLVED], 2);
    fx.now += MPT_NAMES_NEG_TTL_US;
    send_to(&a2, 5, "nosuch.example", 53, "n");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 4);
    teardown();
}

/* The first datagrams held while a name resolves: MPT_SERVER_HELD flows at most; the others'
 * first datagrams are dropped (the client keeps naming the target), and every flow opens. */
static void held_bounds(void)
{
    struct mpt_addr got = addr4(0x0a000009, 0);
    char msg[8];
    unsigned n = MPT_SERVER_HELD + 4, from[MPT_SERVER_HELD + 4] = {0};

    nrules = 0;
    rule4(0x0a000000, 24, 53, 53);
    setup_params(4, 64, 64);
    establish();
    for (unsigned i = 0; i < n; i++) {
        struct mpt_addr a = addr4(0x7f000001, (uint16_t)(7000 + i));
        snprintf(msg, sizeof(msg), "h%02u", i);
        send_to(&a, 1, "many.example", 53, msg);
    }
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 1);
    ASSERT_EQ(fx.s.flow_slots.used, n);
    ASSERT_EQ(fx.s.nheld, MPT_SERVER_HELD);
    mpt_server_on_resolved(&fx.s, fx.now, fx.lookups.v[0].flow, fx.lookups.v[0].path, 0, &got,
                           &fx.q);
    collect(1);
    printf("%u flows waiting for one name: %u opened, %u first datagrams delivered (limit %u)\n", n,
           fx.opens.n, fx.targets.n, MPT_SERVER_HELD);
    ASSERT_EQ(fx.opens.n, n);
    ASSERT_EQ(fx.targets.n, MPT_SERVER_HELD);
    ASSERT_EQ(fx.s.nheld, 0);
    for (unsigned i = 0; i < fx.targets.n; i++) {
        unsigned k;
        ASSERT_EQ(fx.targets.v[i].len, 3);
        k = (unsigned)(fx.targets.v[i].data[1] - '0') * 10 +
            (unsigned)(fx.targets.v[i].data[2] - '0');
        ASSERT_LT(k, n);
        ASSERT_EQ(from[k], 0);
        from[k] = 1;
    }
    teardown();
    nrules = 0;
}

/* The cache's bounds, on the module alone: 256 names, at most 64 negative answers however many
 * names fail, lookups under way never pushed out. */
static void name_bounds(void)
{
    struct mpt_names n;
    struct mpt_addr a = addr4(0x0a000001, 99);
    char host[32];
    uint32_t gen = 1;
    uint64_t now = 1000;

    ASSERT_EQ(mpt_names_init(&n, 0), 0);
    for (unsigned i = 0; i < 200; i++) {
        snprintf(host, sizeof(host), "ok%u.example", i);
        ASSERT(mpt_names_start(&n, host, gen, now++));
        ASSERT(mpt_names_answer(&n, gen++, 0, &a, now));
    }
    for (unsigned i = 0; i < 1000; i++) {
        snprintf(host, sizeof(host), "no%u.example", i);
        ASSERT(mpt_names_start(&n, host, gen, now++));
        ASSERT(mpt_names_answer(&n, gen++, -ENOENT, NULL, now));
        ASSERT_LE(n.negative, MPT_NAMES_NEG_MAX);
    }
    {
        unsigned kept = 0;
        for (unsigned i = 0; i < 200; i++) {
            struct mpt_name *e;
            snprintf(host, sizeof(host), "ok%u.example", i);
            e = mpt_names_find(&n, host, now);
            kept += e && e->state == MPT_NAME_FOUND && mpt_addr_port(&e->addr) == 0;
        }
        printf("1000 failing names: %u negative answers kept (limit %u), %u of 200 found kept "
               "(at least %u)\n",
               n.negative, MPT_NAMES_NEG_MAX, kept, MPT_NAMES_SIZE - MPT_NAMES_NEG_MAX - 1);
        ASSERT_GE(kept, MPT_NAMES_SIZE - MPT_NAMES_NEG_MAX - 1);
    }
    ASSERT_LE(mpt_names_cached(&n, now), MPT_NAMES_SIZE);
    /* Every entry pending: no room, and none is pushed out. */
    for (unsigned i = 0; i < MPT_NAMES_SIZE; i++) {
        snprintf(host, sizeof(host), "p%u.example", i);
        ASSERT(mpt_names_start(&n, host, gen++, now));
    }
    ASSERT_EQ(n.pending, MPT_NAMES_SIZE);
    ASSERT(!mpt_names_start(&n, "one.more", gen++, now));
    ASSERT(!mpt_names_answer(&n, 0, 0, &a, now)); /* no such lookup */
    mpt_names_free(&n);
    teardown_none();
}

/* FLOW_CLOSE messages of `ids` ids among the datagrams in flight up (their inner length tells). */
static unsigned closes_up(unsigned ids)
{
    unsigned k = 0;

    for (unsigned i = 0; i < fx.up.n; i++)
        k += fx.up.v[i].len == MPT_DATA_OVERHEAD + MPT_FLOW_CLOSE_HDR_LEN + 4 * ids;
    return k;
}

/* Flows forgotten by the client are closed at the server at once (FLOW_CLOSE): an association
 * that ends, and a flow that expires at the client. Each close is sent three times on every path
 * data goes on, then no more; copies and ids unknown change nothing; a malformed one is dropped. */
static void flow_close_msg(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);
    unsigned sends = 0;

    setup_rules();
    send_to(&app, 3, "10.0.0.1", 53, "a");
    send_to(&app, 3, "10.0.0.2", 53, "b");
    send_to(&app, 4, "10.0.0.1", 53, "c");
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.s.flow_slots.used, 3);
    mpt_client_close_front(&fx.c, 3, fx.now);
    ASSERT(fx.c.wake);
    clear(&fx.closes);
    ctimer();
    ASSERT_EQ(closes_up(2), NPATHS); /* one message with both ids, on each path */
    deliver_up();
    ASSERT_EQ(fx.s.flow_slots.used, 1);
    ASSERT_EQ(fx.closes.n, 2);
    ASSERT_EQ(fx.s.flows_closed_by_client, 2);
    sends = 1;
    for (int i = 0; i < 10; i++) {
        fx.now += MPT_CLIENT_CLOSE_GAP_US;
        ctimer();
        sends += closes_up(2) / NPATHS;
        deliver_up(); /* probes, and the repetitions: nothing more closes */
        deliver_down();
    }
    printf("FLOW_CLOSE sent %u times (limit %u)\n", sends, MPT_CLIENT_CLOSE_SENDS);
    ASSERT_EQ(sends, MPT_CLIENT_CLOSE_SENDS);
    ASSERT_EQ(fx.c.nclose, 0);
    ASSERT_EQ(fx.s.flow_slots.used, 1);
    ASSERT_EQ(fx.s.flows_closed_by_client, 2);
    /* The flow left expires at the client (30 s; the server's timer is not run here). */
    for (int i = 0; i < 16; i++) {
        fx.now += 2000000;
        ctimer();
        deliver_up();
        deliver_down();
    }
    ASSERT_EQ(mpt_client_flows(&fx.c), 0);
    ASSERT_EQ(fx.s.flow_slots.used, 0);
    ASSERT_EQ(fx.s.flows_closed_by_client, 3);
    teardown();
}

/* Hostile FLOW_CLOSE messages, sealed under the session's keys: counted malformed, nothing
 * closed. */
static void flow_close_bad(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);
    uint8_t buf[MPT_DATA_OVERHEAD + 16];
    uint64_t mal;
    static const struct {
        uint8_t flags;
        uint16_t count;
        size_t len;
    } bad[] = {
        {0, 0, 4}, {0, 2, 8}, {0, 1, 12}, {1, 1, 8}, {0, 1, 3}, {0, 0xffff, 12},
    };

    setup_rules();
    send_to(&app, 3, "10.0.0.1", 53, "a");
    deliver_up();
    deliver_down();
    ASSERT_EQ(fx.s.flow_slots.used, 1);
    mal = fx.s.ctr.drops[MPT_DROP_MALFORMED];
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *m = mpt_data_inner(buf);
        size_t n;
        memset(buf, 0, sizeof(buf));
        m[0] = MPT_INNER_FLOW_CLOSE;
        m[1] = bad[i].flags;
        mpt_put16(m + 2, bad[i].count);
        mpt_put32(m + 4, fx.c.flows[fx.c.flow_slots.head].id);
        mpt_put32(m + 8, fx.c.flows[fx.c.flow_slots.head].id);
        n = mpt_data_seal(&fx.c.sec->keys, fx.c.sid, buf, bad[i].len);
        server_rx(&fx.paddr[0], buf, n);
    }
    ASSERT_EQ(fx.s.ctr.drops[MPT_DROP_MALFORMED], mal + sizeof(bad) / sizeof(bad[0]));
    ASSERT_EQ(fx.s.flow_slots.used, 1);
    teardown();
}

/* A hostile host reaching the client core is dropped, never sent. */
static void bad_host(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001);

    setup_rules();
    send_to(&app, 1, "a b", 53, "x");
    send_to(&app, 1, "", 53, "x");
    send_to(&app, 1, "a\x01", 53, "x");
    ASSERT_EQ(fx.up.n, 0);
    ASSERT_EQ(fx.c.ctr.drops[MPT_DROP_LIMIT], 3);
    send_to(&app, 1, NULL, 53, "x"); /* no host: the default target */
    ASSERT_EQ(fx.up.n, NPATHS);
    teardown();
}

/* Key mode: peer 0 (the client) has rules and a target of its own, peer 1 none. The client's
 * flows reach what its rules cover and its own default target, never what only [server]'s allow;
 * a reload that takes its target away refuses its new default flows, one that takes its rules
 * away puts it under [server]'s; open flows keep their targets. */
static void peer_rules(void)
{
    struct mpt_addr app = addr4(0x7f000001, 5001), app2 = addr4(0x7f000001, 5002);
    struct mpt_addr app3 = addr4(0x7f000001, 5003);
    struct mpt_addr own = addr4(0x0a000202, 4000), mine = addr4(0x0a000107, 53);
    struct mpt_addr theirs = addr4(0x0a000009, 53);
    struct mpt_server_peer p[2];
    struct mpt_addr to;
    uint32_t dflow;
    const unsigned na = MPT_FLOW_NOT_ALLOWED;

    memset(&keys, 0, sizeof(keys));
    memset(keys.cpriv, 0x11, 32);
    memset(keys.spriv, 0x22, 32);
    memset(keys.psk, 0x44, 32);
    ASSERT_EQ(crypto_scalarmult_base(keys.spub, keys.spriv), 0);
    strcpy(keys.peers[0].name, "laptop");
    ASSERT_EQ(crypto_scalarmult_base(keys.peers[0].public_key, keys.cpriv), 0);
    memcpy(keys.peers[0].psk, keys.psk, 32);
    keys.peers[0].own = 1;
    keys.peers[0].allow_first = 1;
    keys.peers[0].nallow = 1;
    keys.peers[0].target = own;
    strcpy(keys.peers[1].name, "phone");
    memset(keys.peers[1].public_key, 0x09, 32);
    keys.peers[1].public_key[0] = 0x10;
    keys.npeers = 2;
    /* Rule 0 is another peer's; rule 1, 10.0.1.0/24:53, the laptop's. [server]: 10.0.0.0/24:53. */
    nrules = 0;
    rule4(0x0a000300, 24, 1, 65535);
    rule4(0x0a000100, 24, 53, 53);
    memcpy(keys.rules, rules, 2 * sizeof(rules[0]));
    keys.nrules = 2;
    nrules = 0;
    rule4(0x0a000000, 24, 53, 53);
    setup();
    establish();
    ASSERT_EQ(fx.s.sessions[fx.s.session_slots.head].peer, 0);

    /* Its own rule: open. [server]'s rule or the other peer's: refused, nothing opened. */
    send_to(&app, 1, "10.0.1.7", 53, "q1");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.opens.v[0].len, MPT_TARGET_NAMED);
    ASSERT(mpt_addr_equal(&fx.opens.v[0].addr, &mine));
    send_to(&app, 2, "10.0.0.7", 53, "x1");
    send_to(&app, 3, "10.0.3.7", 53, "x2");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.targets.n, 1);
    ASSERT_EQ(fx.s.refused[na], 2);
    ASSERT_EQ(fx.s.peers[0].refused[na], 2);
    ASSERT_EQ(fx.s.peers[1].refused[na], 0);
    /* A name resolving to what only [server] allows: refused after the lookup. */
    send_to(&app, 4, "dns.example", 53, "x3");
    deliver_up();
    ASSERT_EQ(fx.lookups.n, 1);
    mpt_server_on_resolved(&fx.s, fx.now, fx.lookups.v[0].flow, fx.lookups.v[0].path, 0, &theirs,
                           &fx.q);
    collect(1);
    ASSERT_EQ(fx.opens.n, 1);
    ASSERT_EQ(fx.s.peers[0].refused[na], 3);
    /* The default target: its own, given to the driver as an address; replies come back. */
    send_to(&app, 0, NULL, 0, "d1");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 2);
    ASSERT_EQ(fx.opens.v[1].len, MPT_TARGET_NAMED);
    ASSERT(mpt_addr_equal(&fx.opens.v[1].addr, &own));
    ASSERT_EQ(fx.targets.n, 2);
    ASSERT(has_payload(&fx.targets.v[1], "d1"));
    dflow = fx.targets.v[1].flow;
    /* A socket the driver could not open is opened again towards the same: its own target. */
    ASSERT_EQ(mpt_server_flow_reopen(&fx.s, dflow, &to), 1);
    ASSERT(mpt_addr_equal(&to, &own));
    ASSERT_EQ(mpt_server_flow_reopen(&fx.s, fx.opens.v[0].flow, &to), 2); /* named */
    deliver_down();
    clear(&fx.apps);
    target_send(dflow, "r1");
    deliver_down();
    ASSERT_EQ(fx.apps.n, 1);
    ASSERT(has_payload(&fx.apps.v[0], "r1"));
    ASSERT_EQ(fx.apps.v[0].path, 0);
    deliver_down();
    ASSERT_EQ(fx.c.refused[na], 3);

    /* Rules out of range: refused, nothing changed. */
    memcpy(p, keys.peers, sizeof(p));
    p[0].nallow = 2;
    ASSERT_EQ(mpt_server_set_peers(&fx.s, keys.spriv, p, 2, keys.rules, 2, &fx.q), -EINVAL);
    ASSERT_EQ(fx.s.peers[0].peer.nallow, 1);
    /* A reload: its own rules (now the first), no target. New default flows are refused; the
     * open one keeps its target. */
    p[0].allow_first = 0;
    p[0].nallow = 1;
    memset(&p[0].target, 0, sizeof(p[0].target));
    ASSERT_EQ(mpt_server_set_peers(&fx.s, keys.spriv, p, 2, keys.rules + 1, 1, &fx.q), 0);
    collect(1);
    ASSERT_EQ(fx.s.refused[na], 3);
    send_to(&app2, 0, NULL, 0, "d2");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 2);
    ASSERT_EQ(fx.s.refused[na], 4);
    ASSERT_EQ(fx.s.peers[0].refused[na], 4); /* its counts stay across a reload */
    send_to(&app, 0, NULL, 0, "d3");
    deliver_up();
    ASSERT_EQ(fx.targets.n, 3);
    ASSERT(has_payload(&fx.targets.v[2], "d3"));
    ASSERT_EQ(fx.targets.v[2].flow, dflow);
    ASSERT_EQ(mpt_server_flow_reopen(&fx.s, dflow, &to), -1); /* it has no target now */
    /* A reload without rules of its own: [server]'s rules and default target (index 0). */
    p[0].own = 0;
    ASSERT_EQ(mpt_server_set_peers(&fx.s, keys.spriv, p, 2, NULL, 0, &fx.q), 0);
    collect(1);
    send_to(&app3, 0, NULL, 0, "d4");
    send_to(&app3, 5, "10.0.0.7", 53, "q5");
    send_to(&app3, 6, "10.0.1.8", 53, "x6");
    deliver_up();
    ASSERT_EQ(fx.opens.n, 4);
    ASSERT_EQ(fx.opens.v[2].len, 0);
    ASSERT_EQ(fx.opens.v[3].len, MPT_TARGET_NAMED);
    ASSERT_EQ(mpt_server_flow_reopen(&fx.s, fx.opens.v[2].flow, &to), 0); /* [server]'s */
    ASSERT_EQ(mpt_server_flow_reopen(&fx.s, dflow, &to), 0); /* its peer is under [server]'s */
    ASSERT_EQ(fx.s.refused[na], 5);
    printf("peer laptop: %llu refused not_allowed, %u flows opened\n",
           (unsigned long long)fx.s.peers[0].refused[na], fx.opens.n);
    teardown();
    memset(&keys, 0, sizeof(keys));
    nrules = 0;
}

static const struct task_case cases[] = {
    {"block", block},
    {"allow_rules", allow_rules},
    {"named_literal", named_literal},
    {"first_lost", first_lost},
    {"refused", refused},
    {"no_default_target", no_default_target},
    {"names", names},
    {"lookup_limit", lookup_limit},
    {"unknown_flow", unknown_flow},
    {"flows_apart", flows_apart},
    {"bad_host", bad_host},
    {"close_front", close_front},
    {"name_cache", name_cache},
    {"name_bounds", name_bounds},
    {"held_bounds", held_bounds},
    {"flow_close_msg", flow_close_msg},
    {"flow_close_bad", flow_close_bad},
    {"peer_rules", peer_rules},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
