/*
 * udpgen: traffic generator and checker used by mptunnel's tests and benchmarks.
 *
 *   udpgen send  --to ADDR:PORT --count N ...   K flows, paced, checks the echoes
 *   udpgen echo  --listen ADDR:PORT ...         echoes every datagram, checks and counts
 *   udpgen sink  --listen ADDR:PORT ...         checks and counts, no reply
 *   udpgen junk  --to ADDR:PORT --count N ...   hostile datagrams; counts what comes back
 *
 * Datagram format. The class is chosen by length, so a receiver knows which layout to check
 * before reading a byte; all integers big-endian unless said otherwise.
 *
 *   full, length >= 32:
 *     0 magic u32 = 0x4d505447 ("MPTG")   4 flow u32    8 seq u64    16 send time u64 (ns,
 *     CLOCK_MONOTONIC)   24 length u32   28 checksum u32   32 payload
 *   compact, 14 <= length < 32 (no send time, so no latency sample):
 *     0 kind u8 = 0xc5   1 length u8   2 flow u32   6 seq u32   10 checksum u32   14 payload
 *   tiny, 1 <= length < 14 (no sequence number):
 *     0 tag u8 = 0xb0 | length   1..4 flow, least significant byte first, cut off by the length
 *     5..12 filler: the little-endian bytes of splitmix64(flow << 4 | length)
 *
 * checksum: FNV-1a 64 over the datagram without the checksum field (8-byte little-endian words,
 * then the tail bytes), finished with murmur3's fmix64; the low 32 bits.
 * payload: the little-endian splitmix64 stream seeded from (seed, flow index, seq), so a run is
 * reproducible from its seed (only the flow ids, which carry a per-run tag, and times differ).
 *
 * Full and compact datagrams are identified by (flow, seq): duplicates and reordering are exact.
 * Tiny ones are counted per flow and length class: the receiver knows how many of each length it
 * was sent, so "unique" is min(received, sent) per class and the excess counts as duplicates.
 * A 1-byte datagram carries only its tag (length 1) and byte 1 the low byte of the flow index, so
 * misdelivery of the shortest ones is detected as far as the bytes allow.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/wire.h"
#include "test/tools/toolnet.h"

#define UG_MAGIC 0x4d505447u
#define UG_FULL_HDR 32
#define UG_COMPACT_KIND 0xc5
#define UG_COMPACT_HDR 14
#define UG_TINY_TAG 0xb0
#define UG_MAX_SIZE 65507
#define UG_RX_SLOT 65536
#define UG_BATCH 64
#define UG_MAX_FLOWS 4096
#define UG_FLOW_BITS 12
#define UG_SEQ_CAP (16u << 20)
#define UG_BITMAP_BUDGET (512ull << 20)
#define UG_DEFAULT_BUF (4 << 20)
#define UG_MIN_SLEEP_NS 50000u

enum { EXIT_USAGE = 2 };

static volatile sig_atomic_t got_signal;

/* ---- bytes ---- */

/* FNV-1a 64 over 8-byte little-endian words, then the tail bytes one by one: a word at a time
 * keeps the check under 0.3 us for 1200 bytes, where a byte loop costs over 1 us. */
static uint64_t sum_update(uint64_t h, const uint8_t *p, size_t n)
{
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w = 0;
        for (int i = 0; i < 8; i++)
            w |= (uint64_t)p[i] << (8 * i);
        h = (h ^ w) * 0x100000001b3ull;
    }
    for (; n; p++, n--)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

/* The checksum of p[0..len) without the 4-byte field at `at`: murmur3's fmix64, low 32 bits. */
static uint32_t checksum(const uint8_t *p, size_t len, size_t at)
{
    uint64_t h = sum_update(sum_update(0xcbf29ce484222325ull, p, at), p + at + 4, len - at - 4);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t n, uint64_t *state)
{
    while (n) {
        uint64_t r = splitmix64(state);
        size_t k = n < 8 ? n : 8;
        for (size_t i = 0; i < k; i++)
            p[i] = (uint8_t)(r >> (8 * i));
        p += k;
        n -= k;
    }
}

/* ---- datagram format (see the top of the file) ---- */

enum dg_class { DG_BAD, DG_FULL, DG_COMPACT, DG_TINY };

struct dg_info {
    uint32_t flow; /* for tiny: only the low 8 * flow_bytes bits */
    int flow_bytes;
    uint64_t seq;
    uint64_t send_ns; /* 0 when the class has none */
};

static void tiny_bytes(uint8_t out[13], size_t len, uint32_t flow)
{
    uint64_t s = (uint64_t)flow << 4 | len;
    uint64_t r = splitmix64(&s);

    out[0] = (uint8_t)(UG_TINY_TAG | len);
    for (int i = 0; i < 4; i++)
        out[1 + i] = (uint8_t)(flow >> (8 * i));
    for (int i = 0; i < 8; i++)
        out[5 + i] = (uint8_t)(r >> (8 * i));
}

static void dgram_build(uint8_t *p, size_t len, uint32_t flow, uint64_t seq, uint64_t now,
                        uint64_t seed)
{
    uint64_t st = seed ^ ((uint64_t)(flow & ((1u << UG_FLOW_BITS) - 1)) << 48) ^
                  (seq * 0xd1342543de82ef95ull);

    if (len >= UG_FULL_HDR) {
        mpt_put32(p, UG_MAGIC);
        mpt_put32(p + 4, flow);
        mpt_put64(p + 8, seq);
        mpt_put64(p + 16, now);
        mpt_put32(p + 24, (uint32_t)len);
        fill_random(p + 32, len - 32, &st);
        mpt_put32(p + 28, checksum(p, len, 28));
    } else if (len >= UG_COMPACT_HDR) {
        p[0] = UG_COMPACT_KIND;
        p[1] = (uint8_t)len;
        mpt_put32(p + 2, flow);
        mpt_put32(p + 6, (uint32_t)seq);
        fill_random(p + 14, len - 14, &st);
        mpt_put32(p + 10, checksum(p, len, 10));
    } else {
        uint8_t t[13];
        tiny_bytes(t, len, flow);
        memcpy(p, t, len);
    }
}

/* Checks a datagram; returns its class, or DG_BAD for a bad header, length or checksum. */
static enum dg_class dgram_parse(const uint8_t *p, size_t len, struct dg_info *d)
{
    memset(d, 0, sizeof(*d));
    if (len >= UG_FULL_HDR) {
        if (mpt_get32(p) != UG_MAGIC || mpt_get32(p + 24) != len ||
            mpt_get32(p + 28) != checksum(p, len, 28))
            return DG_BAD;
        d->flow = mpt_get32(p + 4);
        d->flow_bytes = 4;
        d->seq = mpt_get64(p + 8);
        d->send_ns = mpt_get64(p + 16);
        return DG_FULL;
    }
    if (len >= UG_COMPACT_HDR) {
        if (p[0] != UG_COMPACT_KIND || p[1] != len || mpt_get32(p + 10) != checksum(p, len, 10))
            return DG_BAD;
        d->flow = mpt_get32(p + 2);
        d->flow_bytes = 4;
        d->seq = mpt_get32(p + 6);
        return DG_COMPACT;
    }
    if (len == 0 || p[0] != (UG_TINY_TAG | len))
        return DG_BAD;
    d->flow_bytes = len - 1 < 4 ? (int)len - 1 : 4;
    for (int i = 0; i < d->flow_bytes; i++)
        d->flow |= (uint32_t)p[1 + i] << (8 * i);
    if (len > 5) {
        uint8_t t[13];
        tiny_bytes(t, len, d->flow);
        if (memcmp(t + 5, p + 5, len - 5) != 0)
            return DG_BAD;
    }
    return DG_TINY;
}

static uint32_t flow_mask(int flow_bytes)
{
    return flow_bytes >= 4 ? 0xffffffffu : (1u << (8 * flow_bytes)) - 1;
}

/* ---- latency histogram: exact below 2048 ns, then 1/1024 relative precision ---- */

#define H_SUB_BITS 10
#define H_SUB (1u << H_SUB_BITS)
#define H_MAX_MSB 40
#define H_BUCKETS ((H_MAX_MSB - H_SUB_BITS + 1) * H_SUB + H_SUB)

struct histo {
    uint64_t count;
    uint64_t max;
    uint64_t b[H_BUCKETS];
};

static void histo_add(struct histo *h, uint64_t v)
{
    size_t i;

    if (v > h->max)
        h->max = v;
    if (v >= 1ull << H_MAX_MSB)
        v = (1ull << H_MAX_MSB) - 1;
    if (v < 2 * H_SUB) {
        i = v;
    } else {
        int msb = 63 - __builtin_clzll(v);
        int shift = msb - H_SUB_BITS;
        i = (size_t)shift * H_SUB + (v >> shift);
    }
    h->b[i]++;
    h->count++;
}

static uint64_t histo_lower(size_t i)
{
    if (i < 2 * H_SUB)
        return i;
    size_t shift = i / H_SUB - 1;
    return (uint64_t)(i - shift * H_SUB) << shift;
}

static double histo_pct_us(const struct histo *h, double pct)
{
    uint64_t rank, seen = 0;

    if (!h->count)
        return 0;
    rank = (uint64_t)(pct / 100.0 * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < H_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = histo_lower(i);
            return (double)(v > h->max ? h->max : v) / 1000.0;
        }
    }
    return (double)h->max / 1000.0;
}

static void histo_json(FILE *f, const char *key, const struct histo *h)
{
    fprintf(f,
            "\"%s\":{\"samples\":%" PRIu64 ",\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}",
            key, h->count, histo_pct_us(h, 50), histo_pct_us(h, 99), histo_pct_us(h, 99.9),
            (double)h->max / 1000.0);
}

/* ---- a seen-bitmap over sequence numbers, grown on demand up to a cap ---- */

struct seen {
    uint64_t *bits;
    uint64_t nbits;
};

/* Returns 1 if seq is new, 0 if seen before, -1 if it cannot be tracked (cap or memory). */
static int seen_mark(struct seen *s, uint64_t seq, uint64_t cap, uint64_t *budget)
{
    if (seq >= cap)
        return -1;
    if (seq >= s->nbits) {
        uint64_t n = s->nbits ? s->nbits : 4096;
        while (n <= seq)
            n *= 2;
        if (n > cap)
            n = (cap + 63) / 64 * 64;
        uint64_t grow = (n - s->nbits) / 8;
        if (budget && grow > *budget)
            return -1;
        uint64_t *bits = realloc(s->bits, n / 8);
        if (!bits)
            return -1;
        memset((uint8_t *)bits + s->nbits / 8, 0, grow);
        s->bits = bits;
        s->nbits = n;
        if (budget)
            *budget -= grow;
    }
    uint64_t w = seq / 64, m = 1ull << (seq % 64);
    if (s->bits[w] & m)
        return 0;
    s->bits[w] |= m;
    return 1;
}

/* ---- options ---- */

struct opts {
    struct tool_addr addr;
    bool have_addr;
    uint64_t count;
    uint64_t rate;
    size_t size_min, size_max;
    uint32_t flows;
    uint64_t seed;
    uint64_t linger_ms;
    bool json;
    const char *stats;
    const char *ready;
    const char *replay;
    int bufsize;
};

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (!*s || *end || errno || *s == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_size(const char *s, size_t *lo, size_t *hi)
{
    char buf[64], *dash;
    uint64_t a, b;

    if (strlen(s) >= sizeof(buf))
        return -1;
    strcpy(buf, s);
    dash = strchr(buf, '-');
    if (dash)
        *dash = '\0';
    if (parse_u64(buf, &a) != 0 || (dash && parse_u64(dash + 1, &b) != 0))
        return -1;
    if (!dash)
        b = a;
    if (a < 1 || b < a || b > UG_MAX_SIZE)
        return -1;
    *lo = a;
    *hi = b;
    return 0;
}

enum {
    OPT_TO = 1,
    OPT_LISTEN,
    OPT_COUNT,
    OPT_RATE,
    OPT_SIZE,
    OPT_FLOWS,
    OPT_SEED,
    OPT_LINGER,
    OPT_JSON,
    OPT_STATS,
    OPT_READY,
    OPT_REPLAY,
    OPT_BUF,
    OPT_HELP
};

static const struct option long_opts[] = {
    {"to", required_argument, NULL, OPT_TO},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"count", required_argument, NULL, OPT_COUNT},
    {"rate", required_argument, NULL, OPT_RATE},
    {"size", required_argument, NULL, OPT_SIZE},
    {"flows", required_argument, NULL, OPT_FLOWS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"linger", required_argument, NULL, OPT_LINGER},
    {"json", no_argument, NULL, OPT_JSON},
    {"stats", required_argument, NULL, OPT_STATS},
    {"ready", required_argument, NULL, OPT_READY},
    {"replay", required_argument, NULL, OPT_REPLAY},
    {"bufsize", required_argument, NULL, OPT_BUF},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Parses argv into o; `allowed` lists the option ids this subcommand accepts. Returns 0, 1 for
 * --help, or -1 after printing the problem. */
static int parse_opts(const char *cmd, int argc, char **argv, const int *allowed, struct opts *o)
{
    int c;
    uint64_t v;

    memset(o, 0, sizeof(*o));
    o->size_min = o->size_max = 64;
    o->flows = 1;
    o->seed = 1;
    o->linger_ms = 500;
    o->bufsize = UG_DEFAULT_BUF;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        bool ok = false;
        for (const int *a = allowed; *a; a++)
            ok |= *a == c;
        if (c == OPT_HELP)
            return 1;
        if (c == '?' || !ok) {
            fprintf(stderr, "udpgen %s: unknown option `%s'\n", cmd, argv[optind - 1]);
            return -1;
        }
        switch (c) {
        case OPT_TO:
        case OPT_LISTEN:
            if (tool_addr_parse(optarg, &o->addr) != 0) {
                fprintf(stderr, "udpgen %s: invalid address `%s'\n", cmd, optarg);
                return -1;
            }
            o->have_addr = true;
            break;
        case OPT_SIZE:
            if (parse_size(optarg, &o->size_min, &o->size_max) != 0) {
                fprintf(stderr, "udpgen %s: invalid size `%s' (MIN[-MAX], 1..%d)\n", cmd, optarg,
                        UG_MAX_SIZE);
                return -1;
            }
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_STATS:
            o->stats = optarg;
            break;
        case OPT_READY:
            o->ready = optarg;
            break;
        case OPT_REPLAY:
            o->replay = optarg;
            break;
        default:
            if (parse_u64(optarg, &v) != 0) {
                fprintf(stderr, "udpgen %s: invalid number `%s'\n", cmd, optarg);
                return -1;
            }
            if (c == OPT_COUNT)
                o->count = v;
            else if (c == OPT_RATE)
                o->rate = v;
            else if (c == OPT_SEED)
                o->seed = v;
            else if (c == OPT_LINGER)
                o->linger_ms = v;
            else if (c == OPT_BUF && v <= (1u << 30))
                o->bufsize = (int)v;
            else if (c == OPT_FLOWS && v >= 1 && v <= UG_MAX_FLOWS)
                o->flows = (uint32_t)v;
            else {
                fprintf(stderr, "udpgen %s: value out of range `%s'\n", cmd, optarg);
                return -1;
            }
        }
    }
    if (optind < argc) {
        fprintf(stderr, "udpgen %s: unexpected argument `%s'\n", cmd, argv[optind]);
        return -1;
    }
    if (!o->have_addr) {
        fprintf(stderr, "udpgen %s: missing %s\n", cmd,
                strcmp(cmd, "echo") && strcmp(cmd, "sink") ? "--to" : "--listen");
        return -1;
    }
    return 0;
}

static struct timespec ns_to_ts(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    return ts;
}

/* Receive buffers for one recvmmsg batch. */
struct rx_batch {
    uint8_t *buf;
    struct mmsghdr msgs[UG_BATCH];
    struct iovec iov[UG_BATCH];
    struct sockaddr_storage from[UG_BATCH];
};

static int rx_batch_init(struct rx_batch *rx)
{
    rx->buf = malloc((size_t)UG_BATCH * UG_RX_SLOT);
    return rx->buf ? 0 : -ENOMEM;
}

static void rx_batch_arm(struct rx_batch *rx)
{
    for (int i = 0; i < UG_BATCH; i++) {
        rx->iov[i].iov_base = rx->buf + (size_t)i * UG_RX_SLOT;
        rx->iov[i].iov_len = UG_RX_SLOT;
        memset(&rx->msgs[i].msg_hdr, 0, sizeof(rx->msgs[i].msg_hdr));
        rx->msgs[i].msg_hdr.msg_iov = &rx->iov[i];
        rx->msgs[i].msg_hdr.msg_iovlen = 1;
        rx->msgs[i].msg_hdr.msg_name = &rx->from[i];
        rx->msgs[i].msg_hdr.msg_namelen = sizeof(rx->from[i]);
    }
}

/* ---- echo and sink ---- */

struct rx_flow {
    uint32_t id;
    bool used;
    uint64_t received, unique, duplicates, corrupt, reordered, tiny, untracked;
    uint64_t max_seq;
    bool any_seq;
    struct seen seen;
};

#define RX_SLOTS (2 * UG_MAX_FLOWS)

struct listener {
    bool echo;
    struct rx_flow *slots;
    uint32_t nflows;
    uint64_t budget;
    uint64_t received, unique, duplicates, corrupt, reordered, tiny, tiny_unattributed, untracked,
        flows_overflow, bytes, echo_errors;
    uint64_t first_ns, last_ns;
    struct histo *oneway;
};

static struct rx_flow *rx_lookup(struct listener *l, uint32_t id, bool insert)
{
    uint32_t h = (id * 0x9e3779b1u) % RX_SLOTS;

    for (uint32_t i = 0; i < RX_SLOTS; i++) {
        struct rx_flow *f = &l->slots[(h + i) % RX_SLOTS];
        if (f->used && f->id == id)
            return f;
        if (!f->used) {
            if (!insert || l->nflows >= UG_MAX_FLOWS)
                return NULL;
            f->used = true;
            f->id = id;
            l->nflows++;
            return f;
        }
    }
    return NULL;
}

static void listener_account(struct listener *l, const uint8_t *p, size_t len, bool truncated,
                             uint64_t now)
{
    struct dg_info d;
    enum dg_class c = truncated ? DG_BAD : dgram_parse(p, len, &d);
    struct rx_flow *f;

    l->received++;
    l->bytes += len;
    if (!l->first_ns)
        l->first_ns = now;
    l->last_ns = now;
    if (c == DG_BAD) {
        l->corrupt++;
        /* Attribute to a flow only if the id names one already known. */
        if (len >= UG_FULL_HDR && (f = rx_lookup(l, mpt_get32(p + 4), false)))
            f->corrupt++;
        return;
    }
    if (c == DG_TINY && d.flow_bytes < 4) {
        l->tiny++;
        l->tiny_unattributed++;
        return;
    }
    f = rx_lookup(l, d.flow, true);
    if (!f) {
        l->flows_overflow++;
        return;
    }
    f->received++;
    if (c == DG_TINY) {
        f->tiny++;
        l->tiny++;
        return;
    }
    if (d.send_ns && now >= d.send_ns)
        histo_add(l->oneway, now - d.send_ns);
    int r = seen_mark(&f->seen, d.seq, UG_SEQ_CAP, &l->budget);
    if (r < 0) {
        f->untracked++;
        l->untracked++;
        return;
    }
    if (r == 0) {
        f->duplicates++;
        l->duplicates++;
        return;
    }
    f->unique++;
    l->unique++;
    if (f->any_seq && d.seq < f->max_seq) {
        f->reordered++;
        l->reordered++;
    }
    if (!f->any_seq || d.seq > f->max_seq)
        f->max_seq = d.seq;
    f->any_seq = true;
}

static void listener_json(FILE *f, const struct listener *l)
{
    double secs = l->last_ns > l->first_ns ? (double)(l->last_ns - l->first_ns) / 1e9 : 0;

    fprintf(f,
            "{\"mode\":\"%s\",\"received\":%" PRIu64 ",\"unique\":%" PRIu64
            ",\"duplicates\":%" PRIu64 ",\"corrupt\":%" PRIu64 ",\"reordered\":%" PRIu64
            ",\"tiny\":%" PRIu64 ",\"tiny_unattributed\":%" PRIu64 ",\"untracked\":%" PRIu64
            ",\"flows_overflow\":%" PRIu64 ",\"echo_errors\":%" PRIu64 ",\"bytes\":%" PRIu64
            ",\"seconds\":%.3f,",
            l->echo ? "echo" : "sink", l->received, l->unique, l->duplicates, l->corrupt,
            l->reordered, l->tiny, l->tiny_unattributed, l->untracked, l->flows_overflow,
            l->echo_errors, l->bytes, secs);
    histo_json(f, "oneway_us", l->oneway);
    fprintf(f, ",\"flows\":[");
    bool first = true;
    for (uint32_t i = 0; i < RX_SLOTS; i++) {
        const struct rx_flow *x = &l->slots[i];
        if (!x->used)
            continue;
        fprintf(f,
                "%s{\"flow\":%" PRIu32 ",\"received\":%" PRIu64 ",\"unique\":%" PRIu64
                ",\"duplicates\":%" PRIu64 ",\"corrupt\":%" PRIu64 ",\"reordered\":%" PRIu64
                ",\"tiny\":%" PRIu64 ",\"untracked\":%" PRIu64 "}",
                first ? "" : ",", x->id, x->received, x->unique, x->duplicates, x->corrupt,
                x->reordered, x->tiny, x->untracked);
        first = false;
    }
    fprintf(f, "]}\n");
}

static int write_stats(const char *path, const struct listener *l)
{
    char tmp[4096];
    FILE *f;

    if (!path) {
        listener_json(stdout, l);
        fflush(stdout);
        return 0;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return -errno;
    listener_json(f, l);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return -errno;
    return 0;
}

static int run_listener(const char *cmd, int argc, char **argv, bool echo)
{
    static const int allowed[] = {OPT_LISTEN, OPT_STATS, OPT_READY, OPT_BUF, 0};
    struct opts o;
    struct listener l;
    struct rx_batch rx = {0};
    sigset_t unblocked;
    char addr[TOOL_ADDRSTRLEN];
    int fd = -1, rc = 1, err;

    memset(&l, 0, sizeof(l));
    err = parse_opts(cmd, argc, argv, allowed, &o);
    if (err)
        return err > 0 ? 0 : EXIT_USAGE;
    l.echo = echo;
    l.budget = UG_BITMAP_BUDGET;
    l.slots = calloc(RX_SLOTS, sizeof(*l.slots));
    l.oneway = calloc(1, sizeof(*l.oneway));
    if (!l.slots || !l.oneway || rx_batch_init(&rx) != 0) {
        fprintf(stderr, "udpgen %s: out of memory\n", cmd);
        goto out;
    }
    tool_signals_init(&got_signal, &unblocked);
    fd = tool_udp_socket(o.addr.ss.ss_family, o.bufsize, &o.addr);
    if (fd < 0) {
        fprintf(stderr, "udpgen %s: bind %s: %s\n", cmd,
                tool_addr_format((struct sockaddr *)&o.addr.ss, addr, sizeof(addr)), strerror(-fd));
        goto out;
    }
    if (o.ready && (err = tool_write_ready(o.ready, fd)) != 0) {
        fprintf(stderr, "udpgen %s: %s: %s\n", cmd, o.ready, strerror(-err));
        goto out;
    }

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int sig = got_signal;
        if (sig == SIGUSR1) {
            got_signal = 0;
            write_stats(o.stats, &l);
            continue;
        }
        if (sig)
            break;
        if (ppoll(&pfd, 1, NULL, &unblocked) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "udpgen %s: poll: %s\n", cmd, strerror(errno));
            goto out;
        }
        for (int round = 0; round < 16; round++) {
            rx_batch_arm(&rx);
            int n = recvmmsg(fd, rx.msgs, UG_BATCH, MSG_DONTWAIT, NULL);
            if (n <= 0)
                break;
            uint64_t now = tool_now_ns();
            for (int i = 0; i < n; i++) {
                struct msghdr *h = &rx.msgs[i].msg_hdr;
                listener_account(&l, rx.iov[i].iov_base, rx.msgs[i].msg_len,
                                 (h->msg_flags & MSG_TRUNC) != 0, now);
                rx.iov[i].iov_len = rx.msgs[i].msg_len;
            }
            if (echo) {
                int done = 0;
                while (done < n) {
                    int s = sendmmsg(fd, rx.msgs + done, (unsigned)(n - done), 0);
                    if (s < 0) {
                        if (errno == EINTR)
                            continue;
                        /* Skip the datagram the kernel refused (e.g. an unreachable source). */
                        l.echo_errors++;
                        s = 1;
                    }
                    done += s;
                }
            }
            if (n < UG_BATCH)
                break;
        }
    }
    err = write_stats(o.stats, &l);
    if (err) {
        fprintf(stderr, "udpgen %s: %s: %s\n", cmd, o.stats, strerror(-err));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (l.slots) {
        for (uint32_t i = 0; i < RX_SLOTS; i++)
            free(l.slots[i].seen.bits);
    }
    free(l.slots);
    free(l.oneway);
    free(rx.buf);
    return rc;
}

static int cmd_echo(int argc, char **argv)
{
    return run_listener("echo", argc, argv, true);
}

static int cmd_sink(int argc, char **argv)
{
    return run_listener("sink", argc, argv, false);
}

/* ---- send ---- */

struct tx_flow {
    int fd;
    uint32_t id;
    uint16_t port;
    uint64_t nseq; /* datagrams this flow sends in total */
    uint64_t sent;
    uint64_t unique, duplicates, corrupt, misdelivered, reordered, stray;
    uint64_t max_seq;
    bool any_seq;
    struct seen seen;
    uint64_t tiny_sent[UG_COMPACT_HDR], tiny_recv[UG_COMPACT_HDR];
};

struct sender {
    struct opts o;
    struct tx_flow *flows;
    uint32_t nflows;
    uint32_t run;
    struct histo *rtt;
    uint8_t *txbuf;
    size_t batch;
};

static size_t size_of(const struct sender *s, uint64_t idx)
{
    uint64_t st = s->o.seed * 0x2545f4914f6cdd1dull + idx;
    uint64_t span = s->o.size_max - s->o.size_min + 1;
    return s->o.size_min + (size_t)(splitmix64(&st) % span);
}

/* Does a tiny datagram's partial flow id name another flow of this run? */
static bool names_other_flow(const struct sender *s, const struct dg_info *d, uint32_t self)
{
    uint32_t m = flow_mask(d->flow_bytes);
    for (uint32_t k = 0; k < s->nflows; k++)
        if (k != self && (s->flows[k].id & m) == d->flow)
            return true;
    return false;
}

static void sender_account(struct sender *s, uint32_t k, const uint8_t *p, size_t len,
                           bool truncated, const struct sockaddr *from, uint64_t now)
{
    struct tx_flow *f = &s->flows[k];
    struct dg_info d;
    enum dg_class c = truncated ? DG_BAD : dgram_parse(p, len, &d);

    if (!tool_addr_equal(from, (const struct sockaddr *)&s->o.addr.ss))
        f->stray++;
    if (c == DG_BAD) {
        f->corrupt++;
        return;
    }
    if (c == DG_TINY) {
        uint32_t m = flow_mask(d.flow_bytes);
        if ((f->id & m) != d.flow) {
            if (names_other_flow(s, &d, k))
                f->misdelivered++;
            else
                f->corrupt++;
            return;
        }
        f->tiny_recv[len]++;
        return;
    }
    if (d.flow != f->id) {
        /* A well-formed datagram for someone else: misdelivered, whoever it was meant for. */
        f->misdelivered++;
        return;
    }
    if (d.seq >= f->nseq) {
        f->corrupt++;
        return;
    }
    if (d.send_ns && now >= d.send_ns)
        histo_add(s->rtt, now - d.send_ns);
    int r = seen_mark(&f->seen, d.seq, f->nseq, NULL);
    if (r < 0) {
        f->corrupt++;
        return;
    }
    if (r == 0) {
        f->duplicates++;
        return;
    }
    f->unique++;
    if (f->any_seq && d.seq < f->max_seq)
        f->reordered++;
    if (!f->any_seq || d.seq > f->max_seq)
        f->max_seq = d.seq;
    f->any_seq = true;
}

/* Sends datagrams [from, to) of the run, grouped into one sendmmsg per flow socket. */
static int send_range(struct sender *s, uint64_t from, uint64_t to, uint64_t now)
{
    struct mmsghdr msgs[UG_BATCH * 4];
    struct iovec iov[UG_BATCH * 4];
    size_t n = (size_t)(to - from);
    size_t slot = s->o.size_max;

    for (uint32_t k = 0; k < s->nflows && k < n; k++) {
        struct tx_flow *f = &s->flows[(from + k) % s->nflows];
        unsigned cnt = 0;
        for (uint64_t idx = from + k; idx < to; idx += s->nflows) {
            size_t len = size_of(s, idx);
            uint64_t seq = idx / s->nflows;
            uint8_t *p = s->txbuf + (size_t)(idx - from) * slot;
            dgram_build(p, len, f->id, seq, now, s->o.seed);
            if (len < UG_COMPACT_HDR)
                f->tiny_sent[len]++;
            iov[cnt].iov_base = p;
            iov[cnt].iov_len = len;
            memset(&msgs[cnt], 0, sizeof(msgs[cnt]));
            msgs[cnt].msg_hdr.msg_iov = &iov[cnt];
            msgs[cnt].msg_hdr.msg_iovlen = 1;
            msgs[cnt].msg_hdr.msg_name = &s->o.addr.ss;
            msgs[cnt].msg_hdr.msg_namelen = s->o.addr.len;
            cnt++;
        }
        unsigned done = 0;
        while (done < cnt) {
            int r = sendmmsg(f->fd, msgs + done, cnt - done, 0);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                /* ENOBUFS and friends: the datagram is lost, as on a real link. */
                if (errno == ENOBUFS || errno == ECONNREFUSED) {
                    r = 1;
                } else {
                    return -errno;
                }
            }
            done += (unsigned)r;
        }
        f->sent += cnt;
    }
    return 0;
}

static void drain_flow(struct sender *s, uint32_t k, struct rx_batch *rx)
{
    for (int round = 0; round < 8; round++) {
        rx_batch_arm(rx);
        int n = recvmmsg(s->flows[k].fd, rx->msgs, UG_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        uint64_t now = tool_now_ns();
        for (int i = 0; i < n; i++)
            sender_account(s, k, rx->iov[i].iov_base, rx->msgs[i].msg_len,
                           (rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0,
                           (struct sockaddr *)&rx->from[i], now);
        if (n < UG_BATCH)
            return;
    }
}

struct totals {
    uint64_t sent, unique, duplicates, corrupt, misdelivered, reordered, stray, loss;
};

static void flow_totals(const struct tx_flow *f, struct totals *t)
{
    uint64_t uniq = f->unique, dups = f->duplicates;

    for (size_t len = 1; len < UG_COMPACT_HDR; len++) {
        uint64_t a = f->tiny_sent[len], b = f->tiny_recv[len];
        uniq += b < a ? b : a;
        dups += b > a ? b - a : 0;
    }
    memset(t, 0, sizeof(*t));
    t->sent = f->sent;
    t->unique = uniq;
    t->duplicates = dups;
    t->corrupt = f->corrupt;
    t->misdelivered = f->misdelivered;
    t->reordered = f->reordered;
    t->stray = f->stray;
    t->loss = f->sent > uniq ? f->sent - uniq : 0;
}

static void sender_report(const struct sender *s, double secs, bool interrupted)
{
    struct totals all = {0}, t;
    FILE *sum = s->o.json ? stderr : stdout;

    for (uint32_t k = 0; k < s->nflows; k++) {
        flow_totals(&s->flows[k], &t);
        all.sent += t.sent;
        all.unique += t.unique;
        all.duplicates += t.duplicates;
        all.corrupt += t.corrupt;
        all.misdelivered += t.misdelivered;
        all.reordered += t.reordered;
        all.stray += t.stray;
        all.loss += t.loss;
    }
    double ratio = all.sent ? (double)all.loss / (double)all.sent : 0;
    double pps = secs > 0 ? (double)all.sent / secs : 0;
    fprintf(sum,
            "udpgen send: sent %" PRIu64 " in %.3f s (%.0f pps), echoed %" PRIu64 ", loss %" PRIu64
            " (%.4f%%), dup %" PRIu64 ", corrupt %" PRIu64 ", misdelivered %" PRIu64
            ", reordered %" PRIu64 ", rtt us p50 %.1f p99 %.1f p999 %.1f max %.1f%s\n",
            all.sent, secs, pps, all.unique, all.loss, 100 * ratio, all.duplicates, all.corrupt,
            all.misdelivered, all.reordered, histo_pct_us(s->rtt, 50), histo_pct_us(s->rtt, 99),
            histo_pct_us(s->rtt, 99.9), (double)s->rtt->max / 1000.0,
            interrupted ? " (interrupted)" : "");
    if (!s->o.json)
        return;
    printf("{\"sent\":%" PRIu64 ",\"received_unique\":%" PRIu64 ",\"duplicates\":%" PRIu64
           ",\"corrupt\":%" PRIu64 ",\"misdelivered\":%" PRIu64 ",\"reordered\":%" PRIu64
           ",\"stray\":%" PRIu64 ",\"loss\":%" PRIu64 ",\"loss_ratio\":%.6f,\"seconds\":%.3f,"
           "\"rate_pps\":%.1f,\"interrupted\":%s,",
           all.sent, all.unique, all.duplicates, all.corrupt, all.misdelivered, all.reordered,
           all.stray, all.loss, ratio, secs, pps, interrupted ? "true" : "false");
    histo_json(stdout, "rtt_us", s->rtt);
    printf(",\"flows\":[");
    for (uint32_t k = 0; k < s->nflows; k++) {
        flow_totals(&s->flows[k], &t);
        printf("%s{\"flow\":%" PRIu32 ",\"port\":%u,\"sent\":%" PRIu64
               ",\"received_unique\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"corrupt\":%" PRIu64
               ",\"misdelivered\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"loss\":%" PRIu64 "}",
               k ? "," : "", s->flows[k].id, s->flows[k].port, t.sent, t.unique, t.duplicates,
               t.corrupt, t.misdelivered, t.reordered, t.loss);
    }
    printf("]}\n");
    fflush(stdout);
}

static int cmd_send(int argc, char **argv)
{
    static const int allowed[] = {OPT_TO,   OPT_COUNT,  OPT_RATE, OPT_SIZE, OPT_FLOWS,
                                  OPT_SEED, OPT_LINGER, OPT_JSON, OPT_BUF,  0};
    struct sender s;
    struct rx_batch rx = {0};
    struct pollfd *pfds = NULL;
    sigset_t unblocked;
    int rc = 1, err;

    memset(&s, 0, sizeof(s));
    err = parse_opts("send", argc, argv, allowed, &s.o);
    if (err)
        return err > 0 ? 0 : EXIT_USAGE;
    if (s.o.count == 0 || s.o.count / s.o.flows >= UINT32_MAX) {
        fprintf(stderr, "udpgen send: --count must be 1..%" PRIu64 "\n",
                (uint64_t)UINT32_MAX * s.o.flows);
        return EXIT_USAGE;
    }
    s.nflows = s.o.flows;
    /* Flow ids carry a per-run tag so that runs against one echo never look like duplicates. */
    s.run = (uint32_t)((tool_now_ns() ^ ((uint64_t)getpid() << 16)) & 0xfffff);
    s.batch = (4u << 20) / s.o.size_max;
    if (s.batch > UG_BATCH * 4)
        s.batch = UG_BATCH * 4;
    if (s.batch < 1)
        s.batch = 1;
    s.flows = calloc(s.nflows, sizeof(*s.flows));
    s.rtt = calloc(1, sizeof(*s.rtt));
    s.txbuf = malloc(s.batch * s.o.size_max);
    pfds = calloc(s.nflows, sizeof(*pfds));
    if (!s.flows || !s.rtt || !s.txbuf || !pfds || rx_batch_init(&rx) != 0) {
        fprintf(stderr, "udpgen send: out of memory\n");
        goto out;
    }
    for (uint32_t k = 0; k < s.nflows; k++)
        s.flows[k].fd = -1;
    tool_signals_init(&got_signal, &unblocked);
    prctl(PR_SET_TIMERSLACK, 1000UL);
    for (uint32_t k = 0; k < s.nflows; k++) {
        struct tx_flow *f = &s.flows[k];
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        f->fd = tool_udp_socket(s.o.addr.ss.ss_family, s.o.bufsize, NULL);
        if (f->fd < 0) {
            fprintf(stderr, "udpgen send: socket: %s\n", strerror(-f->fd));
            goto out;
        }
        getsockname(f->fd, (struct sockaddr *)&ss, &sl);
        f->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
        f->id = s.run << UG_FLOW_BITS | k;
        f->nseq = s.o.count / s.nflows + (k < s.o.count % s.nflows);
        pfds[k].fd = f->fd;
        pfds[k].events = POLLIN;
    }

    uint64_t start = tool_now_ns() + 1000000, next = 0, end = 0, last_send = start;
    bool interrupted = false;
    for (;;) {
        uint64_t now = tool_now_ns(), wait;
        if (got_signal == SIGUSR1)
            got_signal = 0;
        if (got_signal) {
            interrupted = true;
            break;
        }
        if (next < s.o.count && now >= start) {
            uint64_t due = s.o.count;
            if (s.o.rate) {
                due = (uint64_t)((double)(now - start) * (double)s.o.rate / 1e9) + 1;
                if (due > s.o.count)
                    due = s.o.count;
            }
            if (due > next) {
                uint64_t to = due - next > s.batch ? next + s.batch : due;
                if ((err = send_range(&s, next, to, now)) != 0) {
                    fprintf(stderr, "udpgen send: send: %s\n", strerror(-err));
                    goto out;
                }
                next = to;
                last_send = now;
                if (next == s.o.count)
                    end = tool_now_ns() + s.o.linger_ms * 1000000ull;
            }
        }
        now = tool_now_ns();
        if (next < s.o.count) {
            uint64_t at = start;
            if (s.o.rate)
                at = start + (uint64_t)((double)next * 1e9 / (double)s.o.rate);
            else if (now >= start)
                at = now;
            wait = at > now ? at - now : 0;
            /* Waking for every datagram at high rates costs more than the sending itself: sleep
             * at least UG_MIN_SLEEP_NS and send what fell due meanwhile in one batch. */
            if (wait && wait < UG_MIN_SLEEP_NS)
                wait = UG_MIN_SLEEP_NS;
        } else {
            if (now >= end)
                break;
            wait = end - now;
        }
        struct timespec ts = ns_to_ts(wait);
        int r = ppoll(pfds, s.nflows, &ts, &unblocked);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "udpgen send: poll: %s\n", strerror(errno));
            goto out;
        }
        for (uint32_t k = 0; r > 0 && k < s.nflows; k++)
            if (pfds[k].revents & POLLIN)
                drain_flow(&s, k, &rx);
    }
    sender_report(&s, (double)(last_send - start) / 1e9, interrupted);
    rc = 0;
out:
    if (s.flows) {
        for (uint32_t k = 0; k < s.nflows; k++) {
            if (s.flows[k].fd >= 0)
                close(s.flows[k].fd);
            free(s.flows[k].seen.bits);
        }
    }
    free(s.flows);
    free(s.rtt);
    free(s.txbuf);
    free(pfds);
    free(rx.buf);
    return rc;
}

/* ---- junk ---- */

enum junk_kind { J_RANDOM, J_OVERSIZE, J_REPLAY, J_TRUNCATED, J_BITFLIP, J_SWAPPED, J_KINDS };

static const char *const junk_names[J_KINDS] = {"random",    "oversize", "replay",
                                                "truncated", "bitflip",  "swapped"};

struct record {
    const uint8_t *p;
    uint32_t len;
};

/* Reads [u32 big-endian length][bytes] records; a torn last record is ignored. */
static int load_records(const char *path, uint8_t **data, struct record **recs, size_t *n)
{
    struct stat st;
    size_t cap = 0, off = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -errno;

    *data = NULL;
    *recs = NULL;
    *n = 0;
    if (fd < 0)
        return rc;
    rc = -EFBIG;
    if (fstat(fd, &st) != 0 || st.st_size > (256 << 20))
        goto out;
    rc = -ENOMEM;
    *data = malloc((size_t)st.st_size + 1);
    if (!*data)
        goto out;
    size_t size = 0;
    while (size < (size_t)st.st_size) {
        ssize_t r = read(fd, *data + size, (size_t)st.st_size - size);
        if (r <= 0)
            break;
        size += (size_t)r;
    }
    while (off + 4 <= size) {
        uint32_t len = mpt_get32(*data + off);
        if (len > size - off - 4 || len > UG_MAX_SIZE)
            break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            struct record *r = realloc(*recs, cap * sizeof(**recs));
            if (!r)
                goto out;
            *recs = r;
        }
        (*recs)[*n].p = *data + off + 4;
        (*recs)[*n].len = len;
        (*n)++;
        off += 4 + (size_t)len;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

static size_t make_junk(uint8_t *p, enum junk_kind kind, const struct record *recs, size_t nrec,
                        uint64_t *rng)
{
    uint64_t r = splitmix64(rng);
    size_t len;

    if (kind == J_RANDOM || kind == J_OVERSIZE) {
        len = kind == J_OVERSIZE ? 65000 : (size_t)(r % 1501);
        fill_random(p, len, rng);
        return len;
    }
    const struct record *rec = &recs[r % nrec];
    len = rec->len;
    memcpy(p, rec->p, len);
    r = splitmix64(rng);
    if (kind == J_TRUNCATED) {
        len = len ? (size_t)(r % len) : 0;
    } else if (kind == J_BITFLIP && len) {
        int flips = 1 + (int)(r % 3);
        for (int i = 0; i < flips; i++) {
            uint64_t b = splitmix64(rng) % ((uint64_t)len * 8);
            p[b / 8] ^= (uint8_t)(1u << (b % 8));
        }
    } else if (kind == J_SWAPPED && len >= 2) {
        /* Reverse the bytes of one or two aligned 2/4/8-byte fields in the first 64 bytes,
         * where headers keep their lengths, counters and ids. */
        int swaps = 1 + (int)(r % 2);
        for (int i = 0; i < swaps; i++) {
            uint64_t x = splitmix64(rng);
            size_t w = (size_t)2 << (x % 3);
            while (w > len)
                w /= 2;
            size_t span = (len < 64 ? len : 64) / w;
            size_t at = (size_t)((x >> 8) % span) * w;
            for (size_t a = at, b = at + w - 1; a < b; a++, b--) {
                uint8_t t = p[a];
                p[a] = p[b];
                p[b] = t;
            }
        }
    }
    return len;
}

static int cmd_junk(int argc, char **argv)
{
    static const int allowed[] = {OPT_TO,     OPT_COUNT, OPT_SEED, OPT_REPLAY, OPT_RATE,
                                  OPT_LINGER, OPT_JSON,  OPT_BUF,  0};
    struct opts o;
    struct rx_batch rx = {0};
    struct record *recs = NULL;
    uint8_t *data = NULL, *buf = NULL;
    size_t nrec = 0;
    int fds[J_KINDS];
    struct pollfd pfds[J_KINDS];
    uint64_t sent[J_KINDS] = {0}, got[J_KINDS] = {0}, got_total = 0, got_max = 0;
    sigset_t unblocked;
    int rc = 1, err;

    for (int k = 0; k < J_KINDS; k++)
        fds[k] = -1;
    err = parse_opts("junk", argc, argv, allowed, &o);
    if (err)
        return err > 0 ? 0 : EXIT_USAGE;
    if (o.replay && (err = load_records(o.replay, &data, &recs, &nrec)) != 0) {
        fprintf(stderr, "udpgen junk: %s: %s\n", o.replay, strerror(-err));
        goto out;
    }
    buf = malloc(65536);
    if (!buf || rx_batch_init(&rx) != 0) {
        fprintf(stderr, "udpgen junk: out of memory\n");
        goto out;
    }
    tool_signals_init(&got_signal, &unblocked);
    /* One socket per kind: whatever comes back on a socket was provoked by that kind. */
    for (int k = 0; k < J_KINDS; k++) {
        fds[k] = tool_udp_socket(o.addr.ss.ss_family, o.bufsize, NULL);
        if (fds[k] < 0) {
            fprintf(stderr, "udpgen junk: socket: %s\n", strerror(-fds[k]));
            goto out;
        }
        pfds[k].fd = fds[k];
        pfds[k].events = POLLIN;
    }

    uint64_t rng = o.seed, start = tool_now_ns(), end = 0, i = 0;
    for (;;) {
        uint64_t now = tool_now_ns(), wait;
        if (got_signal && got_signal != SIGUSR1)
            break;
        uint64_t due = o.count;
        if (o.rate) {
            due = (uint64_t)((double)(now - start) * (double)o.rate / 1e9) + 1;
            if (due > o.count)
                due = o.count;
        }
        for (int burst = 0; i < due && burst < UG_BATCH; burst++, i++) {
            enum junk_kind kind;
            uint64_t r = splitmix64(&rng);
            if (i % 128 == 64)
                kind = J_OVERSIZE;
            else if (nrec)
                kind = (r % 5 == 0) ? J_RANDOM : (enum junk_kind)(J_REPLAY + (r >> 8) % 4);
            else
                kind = J_RANDOM;
            size_t len = make_junk(buf, kind, recs, nrec, &rng);
            if (sendto(fds[kind], buf, len, 0, (struct sockaddr *)&o.addr.ss, o.addr.len) >= 0)
                sent[kind]++;
            if (i + 1 == o.count)
                end = tool_now_ns() + o.linger_ms * 1000000ull;
        }
        now = tool_now_ns();
        if (i < o.count) {
            uint64_t at = o.rate ? start + (uint64_t)((double)i * 1e9 / (double)o.rate) : now;
            wait = at > now ? at - now : 0;
        } else {
            if (now >= end)
                break;
            wait = end - now;
        }
        struct timespec ts = ns_to_ts(wait);
        if (ppoll(pfds, J_KINDS, &ts, &unblocked) <= 0)
            continue;
        for (int k = 0; k < J_KINDS; k++) {
            if (!(pfds[k].revents & POLLIN))
                continue;
            rx_batch_arm(&rx);
            int n = recvmmsg(fds[k], rx.msgs, UG_BATCH, MSG_DONTWAIT, NULL);
            for (int j = 0; j < n; j++) {
                got[k]++;
                got_total++;
                if (rx.msgs[j].msg_len > got_max)
                    got_max = rx.msgs[j].msg_len;
            }
        }
    }

    uint64_t sent_total = 0;
    for (int k = 0; k < J_KINDS; k++)
        sent_total += sent[k];
    FILE *sum = o.json ? stderr : stdout;
    fprintf(sum, "udpgen junk: sent %" PRIu64 " (", sent_total);
    for (int k = 0; k < J_KINDS; k++)
        fprintf(sum, "%s%s %" PRIu64, k ? ", " : "", junk_names[k], sent[k]);
    fprintf(sum, "), replay records %zu, received back %" PRIu64 " (largest %" PRIu64 " bytes)\n",
            nrec, got_total, got_max);
    if (o.json) {
        printf("{\"sent\":{\"total\":%" PRIu64, sent_total);
        for (int k = 0; k < J_KINDS; k++)
            printf(",\"%s\":%" PRIu64, junk_names[k], sent[k]);
        printf("},\"replay_records\":%zu,\"received\":{\"total\":%" PRIu64 ",\"max_size\":%" PRIu64
               ",\"by_kind\":{",
               nrec, got_total, got_max);
        for (int k = 0; k < J_KINDS; k++)
            printf("%s\"%s\":%" PRIu64, k ? "," : "", junk_names[k], got[k]);
        printf("}}}\n");
        fflush(stdout);
    }
    rc = 0;
out:
    for (int k = 0; k < J_KINDS; k++)
        if (fds[k] >= 0)
            close(fds[k]);
    free(recs);
    free(data);
    free(buf);
    free(rx.buf);
    return rc;
}

/* ---- front door ---- */

static int cmd_help(int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
} commands[] = {
    {"send", cmd_send,
     "send --to ADDR:PORT --count N [--rate PPS] [--size MIN[-MAX]] [--flows K] [--seed S]\n"
     "          [--linger MS] [--json] [--bufsize BYTES]\n"
     "    K sockets (flows) send N datagrams round-robin, sizes uniform in [MIN,MAX]\n"
     "    (1..65507, default 64), paced at PPS (0 = as fast as possible, the default) on a\n"
     "    clock-based schedule that sleeps at least 50 us, so above 20000 pps datagrams leave\n"
     "    in small bursts; then waits MS (default 500) for echoes. Prints a summary; --json\n"
     "    adds one JSON object on stdout."},
    {"echo", cmd_echo,
     "echo --listen ADDR:PORT [--stats FILE] [--ready FILE] [--bufsize BYTES]\n"
     "    Echo every datagram to its sender, check and count it per flow. SIGTERM/SIGINT write\n"
     "    the stats as JSON to FILE (or stdout) and exit 0; SIGUSR1 writes them and goes on.\n"
     "    --ready FILE receives the bound address (useful with port 0)."},
    {"sink", cmd_sink,
     "sink --listen ADDR:PORT [--stats FILE] [--ready FILE] [--bufsize BYTES]\n"
     "    Like echo without replying; oneway_us is the one-way delay (same host only)."},
    {"junk", cmd_junk,
     "junk --to ADDR:PORT --count N [--seed S] [--replay FILE] [--rate PPS] [--linger MS]\n"
     "          [--json]\n"
     "    Hostile datagrams: random bytes (0..1500, every 128th 65000), and with --replay\n"
     "    ([u32 big-endian length][bytes] records) verbatim, truncated, bit-flipped and\n"
     "    byte-swapped replays. Counts what comes back, per kind (one socket per kind)."},
    {"help", cmd_help, "help"},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: udpgen <command> [options]\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  udpgen %s\n\n", commands[i].usage);
    fprintf(out,
            "Datagrams: >= 32 bytes carry a full header (magic, flow, seq, send time, length,\n"
            "checksum), 14..31 bytes a compact one (no send time), 1..13 bytes only a\n"
            "tag, flow bytes and filler: they are counted per length class, not by sequence.\n");
}

static int cmd_help(int argc, char **argv)
{
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        for (int a = 2; a < argc; a++) {
            if (!strcmp(argv[a], "--help")) {
                printf("Usage: udpgen %s\n", commands[i].usage);
                return 0;
            }
        }
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "udpgen: unknown command `%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
