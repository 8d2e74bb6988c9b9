/* Batched sends on links with a real MTU: in a network namespace of its own (root only), lo's MTU
 * is set to 1500 or 1280 and batches of datagrams of every size class from 1 to 65,000 bytes go
 * through mpt_udp_send_batch, GSO runs included. Every datagram must arrive intact and in order;
 * a run refused for its size (the route's MTU lowered under a cached value) must be re-sent one by
 * one, without turning GSO off for other sizes or destinations. Skips (77) without root or
 * network namespaces. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "task.h"

#include "net/loop.h"
#include "net/udp.h"

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define PORT_A 4100
#define PORT_B 4101
#define BIG_BUF (64 << 20)
#define MAX_BATCH 64

static void skip(const char *why)
{
    printf("SKIP: %s\n", why);
    exit(77);
}

/* Sets lo up with the given MTU. Returns 0 or -errno. */
static int lo_mtu(int mtu)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    ifr.ifr_mtu = mtu;
    if (ioctl(fd, SIOCSIFMTU, &ifr) != 0)
        rc = -errno;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (rc == 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
            rc = -errno;
    }
    close(fd);
    return rc;
}

/* Into a network namespace of our own, with lo up, or skip. */
static void enter_netns(void)
{
    if (geteuid() != 0)
        skip("needs root (a network namespace of its own, lo's MTU)");
    if (unshare(CLONE_NEWNET) != 0) {
        char why[128];
        snprintf(why, sizeof(why), "no network namespace: unshare(CLONE_NEWNET): %s",
                 strerror(errno));
        skip(why);
    }
    ASSERT_EQ(lo_mtu(65536), 0);
}

static void set_addr(struct sockaddr_storage *ss, int family, int port)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        s->sin_port = htons((uint16_t)port);
        s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons((uint16_t)port);
        s->sin6_addr = in6addr_loopback;
    }
}

/* A plain receiver with UDP_GRO on, so that a GSO run arrives as one buffer (proof that GSO was
 * used); the segments are split by the test. */
static int receiver(int family, int port)
{
    struct sockaddr_storage ss;
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1, buf = BIG_BUF;

    ASSERT(fd >= 0);
    set_addr(&ss, family, port);
    ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)), 0);
    ASSERT_EQ(setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)), 0);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&ss,
                   family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)),
              0);
    return fd;
}

static uint8_t pattern(unsigned size, unsigned seq, size_t k)
{
    return (uint8_t)(size * 13u + seq * 31u + k * 7u + (k >> 8));
}

static uint8_t *bufs[MAX_BATCH];

static void fill(unsigned size, unsigned seq, uint8_t *p)
{
    for (size_t k = 0; k < size; k++)
        p[k] = pattern(size, seq, k);
}

struct rx_stats {
    unsigned got, gro_batches;
};

/* Receives `want` datagrams of `size` bytes with sequence numbers first.. in order, within 2 s;
 * asserts each intact. */
static void expect(int fd, unsigned size, unsigned first, unsigned want, struct rx_stats *st)
{
    static uint8_t rx[65536];
    unsigned next = first, end = first + want;

    while (next < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = rx, .iov_len = sizeof(rx)};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = ctl.buf,
                           .msg_controllen = sizeof(ctl.buf)};
        ssize_t n;
        size_t seg = 0;

        if (poll(&pfd, 1, 2000) != 1) {
            fprintf(stderr, "size %u: received %u of %u datagrams within 2 s\n", size, next - first,
                    want);
            ASSERT_EQ(next, end);
        }
        n = recvmsg(fd, &m, MSG_DONTWAIT);
        ASSERT(n >= 0);
        ASSERT_EQ(m.msg_flags & MSG_TRUNC, 0);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                int v;
                memcpy(&v, CMSG_DATA(c), sizeof(v));
                seg = (size_t)v;
            }
        }
        if (!seg || seg >= (size_t)n)
            seg = (size_t)n ? (size_t)n : 1;
        else
            st->gro_batches++;
        for (size_t off = 0; off == 0 || off < (size_t)n; off += seg) {
            size_t len = (size_t)n - off < seg ? (size_t)n - off : seg;
            if (len != size || next >= end) {
                fprintf(stderr, "size %u: got a datagram of %zu bytes (#%u of %u)\n", size, len,
                        next - first, want);
                ASSERT_EQ(len, size);
                ASSERT_LT(next, end);
            }
            for (size_t k = 0; k < len; k++) {
                if (rx[off + k] != pattern(size, next, k)) {
                    fprintf(stderr, "size %u: datagram #%u corrupt or out of order at byte %zu\n",
                            size, next - first, k);
                    ASSERT(0);
                }
            }
            next++;
            st->got++;
        }
    }
}

struct rig {
    struct mpt_loop *loop;
    struct mpt_udp tx;
    int family;
    int rx_a, rx_b;
    struct sockaddr_storage a, b;
    unsigned seq;
};

static void rig_open(struct rig *r, int family)
{
    memset(r, 0, sizeof(*r));
    r->family = family;
    ASSERT_EQ(mpt_loop_new(&r->loop), 0);
    ASSERT_EQ(mpt_udp_open(&r->tx, r->loop, family, NULL, BIG_BUF, BIG_BUF, NULL, NULL), 0);
    r->rx_a = receiver(family, PORT_A);
    r->rx_b = receiver(family, PORT_B);
    set_addr(&r->a, family, PORT_A);
    set_addr(&r->b, family, PORT_B);
}

static void rig_close(struct rig *r)
{
    mpt_udp_close(&r->tx, NULL);
    ASSERT_EQ(mpt_loop_free(r->loop), 0);
    close(r->rx_a);
    close(r->rx_b);
}

/* Sends n datagrams of `size` bytes to `to` (NULL: connected) in one batch and checks that they
 * all arrive at rx_fd. Returns the GRO batches seen (> 0: GSO was used). */
static unsigned batch(struct rig *r, const struct sockaddr *to, int rx_fd, unsigned size,
                      unsigned n)
{
    struct mpt_udp_msg m[MAX_BATCH];
    struct rx_stats st = {0, 0};
    unsigned first = r->seq;

    for (unsigned i = 0; i < n; i++) {
        fill(size, r->seq + i, bufs[i]);
        m[i].buf = bufs[i];
        m[i].len = size;
        m[i].to = to;
        m[i].pre = NULL;
        m[i].pre_len = 0;
        m[i].from = NULL;
    }
    ASSERT_EQ(mpt_udp_send_batch(&r->tx, m, n), n);
    for (unsigned i = 0; i < n; i++)
        ASSERT_EQ(m[i].err, 0);
    r->seq += n;
    expect(rx_fd, size, first, n, &st);
    return st.gro_batches;
}

static const unsigned sizes[] = {1,    2,     8,     100,   576,   1000,  1188,  1189,  1190,
                                 1231, 1232,  1233,  1252,  1253,  1280,  1400,  1428,  1452,
                                 1471, 1472,  1473,  1500,  1544,  2000,  2500,  4000,  8972,
                                 9000, 16000, 21000, 32000, 32500, 32501, 40000, 60000, 65000};

static void alloc_bufs(void)
{
    for (int i = 0; i < MAX_BATCH; i++)
        if (!bufs[i])
            ASSERT((bufs[i] = malloc(65536)) != NULL);
}

/* Every size class, as batches to one destination and interleaved to two, on lo with `mtu`. */
static void every_size(int family, int mtu)
{
    struct rig r;
    unsigned hdr = family == AF_INET ? 28 : 48, gso_small = 0, gso_large = 0, nsizes = 0;
    uint64_t lost;

    enter_netns();
    alloc_bufs();
    ASSERT_EQ(lo_mtu(mtu), 0);
    rig_open(&r, family);
    ASSERT_EQ(mpt_udp_mtu(&r.tx, (struct sockaddr *)&r.a), mtu);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        unsigned size = sizes[s], n = size <= 2000 ? MAX_BATCH : size <= 16000 ? 16 : 4;
        unsigned g = batch(&r, (struct sockaddr *)&r.a, r.rx_a, size, n);

        nsizes++;
        if (size + hdr <= (unsigned)mtu)
            gso_small += g > 0;
        else
            gso_large += g;
    }
    /* Interleaved: a, b, a, b... each destination in order, runs per destination. */
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        struct mpt_udp_msg m[MAX_BATCH];
        struct rx_stats st = {0, 0};
        unsigned size = sizes[s], n = size <= 16000 ? 32 : 4, first = r.seq;

        for (unsigned i = 0; i < n; i++) {
            fill(size, first + i / 2 + (i % 2 ? 1000 : 0), bufs[i]);
            m[i].buf = bufs[i];
            m[i].len = size;
            m[i].to = (struct sockaddr *)(i % 2 ? &r.b : &r.a);
            m[i].pre = NULL;
            m[i].pre_len = 0;
            m[i].from = NULL;
        }
        ASSERT_EQ(mpt_udp_send_batch(&r.tx, m, n), n);
        expect(r.rx_a, size, first, n / 2, &st);
        expect(r.rx_b, size, first + 1000, n / 2, &st);
        r.seq += n;
    }
    lost = mpt_udp_errors_total(&r.tx.tx.err);
    printf("MTU %d, %s: %u size classes 1..65000, datagrams lost %llu (limit 0), size classes "
           "sent as GSO runs %u, GSO runs over the MTU %u (limit 0), runs re-sent one by one "
           "%llu (limit 0)\n",
           mtu, family == AF_INET ? "IPv4" : "IPv6", nsizes, (unsigned long long)lost, gso_small,
           gso_large, (unsigned long long)r.tx.tx.err.gso_resent);
    ASSERT_EQ(lost, 0);
    ASSERT_EQ(gso_large, 0);
    /* The MTU was known before any run: none had to be refused first. */
    ASSERT_EQ(r.tx.tx.err.gso_resent, 0);
    /* Runs that fit were still sent with GSO. */
    ASSERT_GT(gso_small, 5);
    rig_close(&r);
}

static void test_ipv4_1500(void)
{
    every_size(AF_INET, 1500);
}

static void test_ipv4_1280(void)
{
    every_size(AF_INET, 1280);
}

static void test_ipv6_1500(void)
{
    every_size(AF_INET6, 1500);
}

static void test_ipv6_1280(void)
{
    every_size(AF_INET6, 1280);
}

/* The route's MTU drops under a cached value: the first run is refused (EMSGSIZE, or EINVAL on
 * older kernels) and re-sent one by one, nothing lost; later runs of that size go one by one
 * without a refusal; smaller runs and other destinations keep GSO. */
static void test_mtu_drop(void)
{
    struct rig r;
    unsigned before;

    enter_netns();
    alloc_bufs();
    rig_open(&r, AF_INET);
    ASSERT_GT(batch(&r, (struct sockaddr *)&r.a, r.rx_a, 1500, MAX_BATCH), 0);
    ASSERT_GT(batch(&r, (struct sockaddr *)&r.b, r.rx_b, 1500, MAX_BATCH), 0);
    ASSERT_EQ(lo_mtu(1500), 0);
    ASSERT_EQ(r.tx.tx.err.gso_resent, 0);
    /* The cache still says 65536: the kernel refuses the run, which goes again one by one. */
    ASSERT_EQ(batch(&r, (struct sockaddr *)&r.a, r.rx_a, 1500, MAX_BATCH), 0);
    before = (unsigned)r.tx.tx.err.gso_resent;
    printf("runs re-sent one by one after the MTU fell to 1500: %u (limit 1)\n", before);
    ASSERT_EQ(before, 1);
    ASSERT_EQ(mpt_udp_mtu(&r.tx, (struct sockaddr *)&r.a), 1500);
    /* Learned: no further refusal for this destination. */
    ASSERT_EQ(batch(&r, (struct sockaddr *)&r.a, r.rx_a, 1500, MAX_BATCH), 0);
    ASSERT_EQ(r.tx.tx.err.gso_resent, 1);
    /* Smaller runs to it, and runs to the other destination, still use GSO. */
    ASSERT_GT(batch(&r, (struct sockaddr *)&r.a, r.rx_a, 1000, MAX_BATCH), 0);
    ASSERT_GT(batch(&r, (struct sockaddr *)&r.b, r.rx_b, 100, MAX_BATCH), 0);
    ASSERT_EQ(mpt_udp_errors_total(&r.tx.tx.err), 0);
    rig_close(&r);
}

/* A connected socket (as the server's flows are) learns its MTU from IP_MTU. */
static void test_connected(void)
{
    struct rig r;

    enter_netns();
    alloc_bufs();
    ASSERT_EQ(lo_mtu(1280), 0);
    rig_open(&r, AF_INET);
    ASSERT_EQ(mpt_udp_connect(&r.tx, (struct sockaddr *)&r.a), 0);
    ASSERT_EQ(mpt_udp_mtu(&r.tx, NULL), 1280);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        unsigned size = sizes[s], n = size <= 16000 ? 32 : 4;
        unsigned g = batch(&r, NULL, r.rx_a, size, n);
        if (size + 28 > 1280)
            ASSERT_EQ(g, 0);
    }
    ASSERT_EQ(mpt_udp_errors_total(&r.tx.tx.err), 0);
    ASSERT_EQ(r.tx.tx.err.gso_resent, 0);
    rig_close(&r);
}

/* What no MTU can carry is refused and counted as too big; the rest of the batch goes. */
static void test_too_big(void)
{
    struct rig r;
    struct mpt_udp_msg m[3];
    static uint8_t big[65536];

    enter_netns();
    alloc_bufs();
    ASSERT_EQ(lo_mtu(1500), 0);
    rig_open(&r, AF_INET);
    fill(100, 0, bufs[0]);
    fill(100, 1, bufs[1]);
    m[0] = (struct mpt_udp_msg){.buf = bufs[0], .len = 100, .to = (struct sockaddr *)&r.a};
    m[1] = (struct mpt_udp_msg){.buf = big, .len = 65508, .to = (struct sockaddr *)&r.a};
    m[2] = (struct mpt_udp_msg){.buf = bufs[1], .len = 100, .to = (struct sockaddr *)&r.a};
    ASSERT_EQ(mpt_udp_send_batch(&r.tx, m, 3), 2);
    ASSERT_EQ(m[1].err, -EMSGSIZE);
    ASSERT_EQ(r.tx.tx.err.too_big, 1);
    ASSERT_EQ(mpt_udp_errors_total(&r.tx.tx.err), 1);
    {
        struct rx_stats st = {0, 0};
        expect(r.rx_a, 100, 0, 2, &st);
    }
    rig_close(&r);
}

/* A full send buffer (lo shaped to 1 Mbit/s by tc, a small SO_SNDBUF): what the kernel refuses
 * is counted as congestion, each datagram either sent or marked EAGAIN, nothing else. */
static void test_congestion(void)
{
    struct mpt_loop *loop;
    struct mpt_udp tx;
    struct sockaddr_storage a;
    struct mpt_udp_msg m[MAX_BATCH];
    unsigned sent = 0, total = 0, marked = 0;

    enter_netns();
    alloc_bufs();
    ASSERT_EQ(lo_mtu(1500), 0);
    if (system("tc qdisc add dev lo root tbf rate 1mbit burst 16k latency 5s 2>/dev/null") != 0)
        skip("no tc, or no tbf qdisc");
    ASSERT_EQ(mpt_loop_new(&loop), 0);
    ASSERT_EQ(mpt_udp_open(&tx, loop, AF_INET, NULL, 65536, 0, NULL, NULL), 0);
    set_addr(&a, AF_INET, PORT_A);
    for (int round = 0; round < 16; round++) {
        for (unsigned i = 0; i < MAX_BATCH; i++)
            m[i] = (struct mpt_udp_msg){.buf = bufs[i], .len = 1000, .to = (struct sockaddr *)&a};
        sent += mpt_udp_send_batch(&tx, m, MAX_BATCH);
        total += MAX_BATCH;
        for (unsigned i = 0; i < MAX_BATCH; i++) {
            ASSERT(m[i].err == 0 || m[i].err == -EAGAIN);
            marked += m[i].err != 0;
        }
    }
    printf("%u datagrams into a full send buffer: %u sent, %llu counted as congestion "
           "(%u marked), other kinds %llu (limit 0)\n",
           total, sent, (unsigned long long)tx.tx.err.congestion, marked,
           (unsigned long long)(mpt_udp_errors_total(&tx.tx.err) - tx.tx.err.congestion));
    ASSERT_GT(tx.tx.err.congestion, 0);
    ASSERT_EQ(tx.tx.err.congestion, total - sent);
    ASSERT_EQ(marked, total - sent);
    ASSERT_EQ(mpt_udp_errors_total(&tx.tx.err), tx.tx.err.congestion);
    mpt_udp_close(&tx, NULL);
    ASSERT_EQ(mpt_loop_free(loop), 0);
}

/* One case a line: the build reads them from here (test/unit/net/CMakeLists.txt). */
/* clang-format off */
static const struct task_case cases[] = {
    {"ipv4_1500", test_ipv4_1500},
    {"ipv4_1280", test_ipv4_1280},
    {"ipv6_1500", test_ipv6_1500},
    {"ipv6_1280", test_ipv6_1280},
    {"mtu_drop", test_mtu_drop},
    {"connected", test_connected},
    {"too_big", test_too_big},
    {"congestion", test_congestion},
    {NULL, NULL},
};
/* clang-format on */

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
