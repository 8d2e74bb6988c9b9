/* core/ratelimit: per-source token buckets for handshakes and the global cap. */
#include <arpa/inet.h>
#include <sodium.h>

#include "core/ratelimit.h"
#include "task.h"

static struct mpt_addr addr4(uint32_t ip, uint16_t port)
{
    struct mpt_addr a;

    memset(&a, 0, sizeof(a));
    a.u.in4.sin_family = AF_INET;
    a.u.in4.sin_addr.s_addr = htonl(ip);
    a.u.in4.sin_port = htons(port);
    return a;
}

static int count_allowed(struct mpt_ratelimit *rl, const struct mpt_addr *a, uint64_t now, int n)
{
    int ok = 0;

    for (int i = 0; i < n; i++)
        ok += mpt_ratelimit_allow(rl, a, now);
    return ok;
}

static struct mpt_ratelimit rl; /* large: keep it off the stack */

/* The buckets are a hash table keyed at random: two sources may share a slot (the newer then
 * takes it over, which is lenient, never a lockout). Tests that need two IPv4 sources apart pick
 * a key under which they are. */
static void keep_apart(uint32_t ip1, uint32_t ip2)
{
    struct mpt_addr x = addr4(ip1, 0), y = addr4(ip2, 0);

    for (uint64_t k = 1;; k++) {
        if (mpt_addr_hash(&x, k) % MPT_RATELIMIT_SLOTS !=
            mpt_addr_hash(&y, k) % MPT_RATELIMIT_SLOTS) {
            rl.key = k;
            return;
        }
    }
}

static void burst_then_refuse(void)
{
    struct mpt_addr a = addr4(0x0a000001, 1000), b = addr4(0x0a000002, 1000);
    uint64_t now = 5000000;

    mpt_ratelimit_init(&rl, 10, 5, 1000, 1000);
    keep_apart(0x0a000001, 0x0a000002);
    ASSERT_EQ(count_allowed(&rl, &a, now, 100), 5);
    ASSERT_EQ(mpt_ratelimit_allow(&rl, &a, now), 0);
    /* Another source has its own bucket. */
    ASSERT_EQ(count_allowed(&rl, &b, now, 100), 5);
    /* Another port of the same host is the same source: its bucket is empty too. */
    struct mpt_addr a2 = addr4(0x0a000001, 1001);
    ASSERT_EQ(count_allowed(&rl, &a2, now, 100), 0);
}

static void refill(void)
{
    struct mpt_addr a = addr4(0x0a000001, 1000);
    uint64_t now = 1000000;

    mpt_ratelimit_init(&rl, 10, 5, 1000, 1000);
    ASSERT_EQ(count_allowed(&rl, &a, now, 100), 5);
    /* 10 per second: one token per 100 ms. */
    now += 99000;
    ASSERT_EQ(mpt_ratelimit_allow(&rl, &a, now), 0);
    now += 1000;
    ASSERT_EQ(mpt_ratelimit_allow(&rl, &a, now), 1);
    ASSERT_EQ(mpt_ratelimit_allow(&rl, &a, now), 0);
    now += 300000;
    ASSERT_EQ(count_allowed(&rl, &a, now, 100), 3);
    /* A long pause refills the bucket to its size, not beyond. */
    now += 3600ULL * 1000000;
    ASSERT_EQ(count_allowed(&rl, &a, now, 100), 5);
    /* Steady rate over 10 s, asked every ms: 10 per second plus nothing more. */
    int ok = 0;
    for (int i = 0; i < 10000; i++) {
        now += 1000;
        ok += mpt_ratelimit_allow(&rl, &a, now);
    }
    ASSERT_GE(ok, 99);
    ASSERT_LE(ok, 101);
}

/* A source asking more often than one milli-token accrues must still be refilled at its rate:
 * time between calls is not lost to rounding. */
static void refill_fine_grained(void)
{
    struct mpt_addr a = addr4(0x0a000001, 1000);
    uint64_t now = 1000000;
    int ok = 0;

    mpt_ratelimit_init(&rl, 10, 5, 100, 100);
    ASSERT_EQ(count_allowed(&rl, &a, now, 100), 5);
    /* Every 50 µs for 2 s: 10/s accrues 0.5 milli-tokens per call for the source, 5 for the
     * global bucket. */
    for (int i = 0; i < 40000; i++) {
        now += 50;
        ok += mpt_ratelimit_allow(&rl, &a, now);
    }
    ASSERT_GE(ok, 19);
    ASSERT_LE(ok, 21);
}

static void global_cap(void)
{
    uint64_t now = 1000000;
    int ok = 0;

    /* The global bucket is separate: 50 at once, then 100 a second. */
    mpt_ratelimit_init(&rl, 10, 5, 100, 50);
    for (int i = 0; i < 1000; i++)
        ok += mpt_ratelimit_allow_global(&rl, now);
    ASSERT_EQ(ok, 50);
    ok = 0;
    for (int i = 0; i < 1000; i++)
        ok += mpt_ratelimit_allow_global(&rl, now + (uint64_t)i * 1000);
    ASSERT_GE(ok, 99);
    ASSERT_LE(ok, 101);
    /* Sources have their own buckets, untouched by the global one. */
    for (uint32_t i = 0; i < 100; i++) {
        struct mpt_addr a = addr4(0x0b000000 + i, 4000);
        ASSERT_EQ(count_allowed(&rl, &a, now, 10), 5);
    }
}

/* A source is its address, whatever the port: rotating ports buys no fresh bucket. An IPv6
 * source is its /64. */
static void ports_share_a_bucket(void)
{
    uint64_t now = 1000000;
    int ok = 0;

    mpt_ratelimit_init(&rl, 10, 5, 100, 50);
    for (uint16_t port = 1; port < 1000; port++) {
        struct mpt_addr a = addr4(0x0e000001, port);
        ok += mpt_ratelimit_allow(&rl, &a, now);
    }
    ASSERT_EQ(ok, 5);
    ok = 0;
    for (int i = 0; i < 100; i++) {
        struct mpt_addr a;
        memset(&a, 0, sizeof(a));
        a.u.in6.sin6_family = AF_INET6;
        a.u.in6.sin6_addr.s6_addr[0] = 0x20;
        a.u.in6.sin6_addr.s6_addr[15] = (uint8_t)i; /* the same /64 */
        a.u.in6.sin6_port = htons((uint16_t)(1000 + i));
        ok += mpt_ratelimit_allow(&rl, &a, now);
    }
    ASSERT_EQ(ok, 5);
}

static void time_edges(void)
{
    struct mpt_addr a = addr4(0x0a000001, 1000);

    mpt_ratelimit_init(&rl, 10, 3, 1000, 1000);
    ASSERT_EQ(count_allowed(&rl, &a, 0, 10), 3);
    ASSERT_EQ(count_allowed(&rl, &a, 0, 10), 0);
    ASSERT_EQ(count_allowed(&rl, &a, 2000000, 10), 3);
    ASSERT_EQ(count_allowed(&rl, &a, 1000000, 10), 0);
}

/* IPv4 clients reaching a dual-stack socket appear as ::ffff:a.b.c.d: each has its own bucket,
 * and one of them spending its own leaves the others theirs (their /64 is ::/64 for all). */
static struct mpt_addr addr4_mapped(uint32_t ip, uint16_t port)
{
    struct mpt_addr a;

    memset(&a, 0, sizeof(a));
    a.u.in6.sin6_family = AF_INET6;
    a.u.in6.sin6_addr.s6_addr[10] = 0xff;
    a.u.in6.sin6_addr.s6_addr[11] = 0xff;
    ip = htonl(ip);
    memcpy(a.u.in6.sin6_addr.s6_addr + 12, &ip, 4);
    a.u.in6.sin6_port = htons(port);
    return a;
}

static void mapped_ipv4_sources_apart(void)
{
    struct mpt_addr junk = addr4_mapped(0xc6336401, 4000), real = addr4_mapped(0xc6336402, 5000);
    struct mpt_addr plain = addr4(0xc6336401, 4001);
    uint64_t now = 3000000;

    mpt_ratelimit_init(&rl, 10, 5, 1000, 1000);
    keep_apart(0xc6336401, 0xc6336402);
    /* One source floods from many ports: it spends only its own bucket. */
    for (uint16_t p = 0; p < 200; p++) {
        struct mpt_addr j = addr4_mapped(0xc6336401, (uint16_t)(4000 + p));
        mpt_ratelimit_allow(&rl, &j, now);
    }
    ASSERT_EQ(mpt_ratelimit_allow(&rl, &junk, now), 0);
    ASSERT_EQ(count_allowed(&rl, &real, now, 100), 5);
    /* The same host through an IPv4 socket is the same source. */
    ASSERT_EQ(mpt_ratelimit_allow(&rl, &plain, now), 0);
}

static const struct task_case cases[] = {
    {"burst_then_refuse", burst_then_refuse},
    {"refill", refill},
    {"refill_fine_grained", refill_fine_grained},
    {"global_cap", global_cap},
    {"ports_share_a_bucket", ports_share_a_bucket},
    {"time_edges", time_edges},
    {"mapped_ipv4_sources_apart", mapped_ipv4_sources_apart},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    return task_run(cases, argc, argv);
}
