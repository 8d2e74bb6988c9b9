/* core/split: PIECE messages (PROTOCOL.md §5) — how datagrams are cut for a path's size, their
 * reassembly in any order, the bounds of the reassembly table against loss and hostile pieces, and
 * the client and server carrying datagrams too large for their paths as pieces, both ways. */
#include <arpa/inet.h>

#include "core/client.h"
#include "core/server.h"
#include "core/split.h"
#include "task.h"

#define SID 0x1122334455667788ULL

static uint8_t src[MPT_MAX_PAYLOAD], piece[MPT_SPLIT_MAX_PIECES][MPT_SPLIT_SLOT_BYTES / 16];
static size_t piece_n[MPT_SPLIT_MAX_PIECES];

static uint64_t rng = 88172645463325252ULL;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* A FLOW message of len bytes (header included) of flow 7. */
static void fill(size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        src[i] = (uint8_t)(seed + i * 131 + (i >> 8));
    src[0] = MPT_INNER_FLOW;
    src[1] = 0;
    mpt_put16(src + 2, 0);
    mpt_put32(src + 4, 7);
}

/* Cuts src (len bytes) into the pieces of message msg for max_dgram; returns their count (0:
 * whole). Every piece's sealed size fits max_dgram and all but the last have the same size. */
static unsigned cut(size_t len, unsigned max_dgram, uint32_t msg)
{
    unsigned k = mpt_split_count(len, max_dgram);

    for (unsigned i = 0; i < k; i++) {
        piece_n[i] = mpt_split_write(piece[i], 7, msg, i, k, src, len);
        ASSERT_LE(piece_n[i] + MPT_DATA_OVERHEAD, max_dgram);
        ASSERT_GT(piece_n[i], MPT_PIECE_HDR_LEN);
        if (i > 0 && i + 1 < k)
            ASSERT_EQ(piece_n[i], piece_n[0]);
        if (i + 1 == k)
            ASSERT_LE(piece_n[i], piece_n[0]);
    }
    return k;
}

/* Adds piece i; returns the completed length (0 if not complete) and checks the bytes. */
static size_t put(struct mpt_split *sp, uint64_t now, unsigned i, size_t len)
{
    const uint8_t *out = NULL;
    size_t n = mpt_split_add(sp, now, SID, piece[i], piece_n[i], &out);

    if (n) {
        ASSERT_EQ(n, len);
        ASSERT_MEM_EQ(out, src, len);
    }
    return n;
}

/* Datagrams of every size from 1 to 65,000 (FLOW messages 8 bytes larger) against MTU 1500 and
 * 1280, IPv4 and IPv6: whole when it fits, else pieces that fit, rebuilt exactly (in order,
 * reversed, or shuffled). */
static void every_size(void)
{
    static const unsigned mtus[] = {1500 - 28, 1500 - 48, 1280 - 28, 1280 - 48};
    struct mpt_split sp;
    uint64_t now = 1000;

    ASSERT_EQ(mpt_split_init(&sp), 0);
    for (unsigned m = 0; m < 4; m++) {
        unsigned max = mtus[m], kmax = 0;
        for (size_t len = MPT_FLOW_HDR_LEN + 1; len <= MPT_FLOW_HDR_LEN + 65000; len++) {
            unsigned k;
            int whole = MPT_DATA_OVERHEAD + len <= max;
            /* Reassemble every size for the IPv4 MTUs, every 7th for the others (time). */
            if (m >= 2 && !whole && len % 7) {
                ASSERT_GE(mpt_split_count(len, max), 2);
                continue;
            }
            fill(len, (uint32_t)len);
            k = cut(len, max, (uint32_t)len);
            ASSERT_EQ(k == 0, whole);
            if (!k)
                continue;
            /* The fewest pieces that fit. */
            ASSERT_GT(len, (size_t)(k - 1) * (max - MPT_PIECE_OVERHEAD));
            if (k > kmax)
                kmax = k;
            for (unsigned j = 0; j < k; j++) {
                unsigned i = len % 3 == 0 ? j : len % 3 == 1 ? k - 1 - j : (j * 7 + 3) % k;
                if (len % 3 == 2 && k % 7 == 0)
                    i = j;
                ASSERT_EQ(put(&sp, now, i, len), j + 1 == k ? len : 0);
            }
        }
        printf("MTU payload %u: at most %u pieces for 65,000 bytes (limit %u)\n", max, kmax,
               MPT_SPLIT_MAX_PIECES);
        ASSERT_LE(kmax, MPT_SPLIT_MAX_PIECES);
    }
    /* Unknown MTU, or larger than 64 pieces would carry: whole. */
    ASSERT_EQ(mpt_split_count(5000, 0), 0);
    ASSERT_EQ(mpt_split_count(65000, 576 - 28), 0);
    ASSERT_EQ(mpt_split_count(MPT_PIECE_MAX_TOTAL + 1, 1472), 0);
    ASSERT_EQ(mpt_split_count(MPT_PIECE_MAX_TOTAL, 1252), 55);
    ASSERT_EQ(mpt_split_count(MPT_PIECE_MAX_TOTAL, 1232), 56);
    ASSERT_EQ(MPT_PIECE_MAX_TOTAL, MPT_FLOW_HDR_LEN + MPT_MAX_PAYLOAD);
    for (unsigned i = 0; i < MPT_SPLIT_DROP_COUNT; i++)
        ASSERT_EQ(sp.st.drops[i], 0);
    mpt_split_free(&sp);
}

/* Pieces in random order, each several times (copies of a forger that has the keys, or a
 * retransmitting sender): one datagram out, every extra piece counted as a duplicate. */
static void out_of_order_duplicates(void)
{
    struct mpt_split sp;
    uint64_t now = 5000, dups = 0;

    ASSERT_EQ(mpt_split_init(&sp), 0);
    for (unsigned round = 0; round < 500; round++) {
        size_t len = 1500 + rnd() % 20000, done = 0;
        unsigned k, left;
        uint64_t seen = 0;
        fill(len, round);
        k = cut(len, 1472, round + 1);
        ASSERT_GE(k, 2);
        left = k;
        while (left) {
            unsigned i = rnd() % k;
            size_t n = put(&sp, now, i, len);
            if (seen & (1ull << i)) {
                dups++;
                ASSERT_EQ(n, 0);
                continue;
            }
            seen |= 1ull << i;
            left--;
            ASSERT_EQ(n ? 1 : 0, left == 0);
            done += n;
        }
        ASSERT_EQ(done, len);
        /* A piece after completion starts a new partial message, which never completes. */
        if (round % 50 == 0)
            ASSERT_EQ(put(&sp, now, 0, len), 0);
        now += 100;
    }
    printf("500 datagrams rebuilt, %llu duplicate pieces dropped\n", (unsigned long long)dups);
    ASSERT_EQ(sp.st.reassembled, 500);
    ASSERT_EQ(sp.st.drops[MPT_SPLIT_DROP_DUPLICATE], dups);
    mpt_split_free(&sp);
}

/* Two messages with pieces interleaved, of different sizes, flows and sessions: each rebuilt. */
static void interleaved(void)
{
    static uint8_t a[MPT_SPLIT_MAX_PIECES][1500], b[MPT_SPLIT_MAX_PIECES][1500];
    static uint8_t da[9000], db[5000];
    size_t an[MPT_SPLIT_MAX_PIECES], bn[MPT_SPLIT_MAX_PIECES], n;
    struct mpt_split sp;
    const uint8_t *out;
    unsigned ka = mpt_split_count(sizeof(da), 1472), kb = mpt_split_count(sizeof(db), 1472);

    ASSERT_EQ(mpt_split_init(&sp), 0);
    for (size_t i = 0; i < sizeof(da); i++)
        da[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(db); i++)
        db[i] = (uint8_t)(i * 3 + 1);
    memset(da, 0, MPT_FLOW_HDR_LEN);
    memset(db, 0, MPT_FLOW_HDR_LEN);
    da[0] = db[0] = MPT_INNER_FLOW;
    mpt_put32(da + 4, 1);
    mpt_put32(db + 4, 2);
    for (unsigned i = 0; i < ka; i++)
        an[i] = mpt_split_write(a[i], 1, 42, i, ka, da, sizeof(da));
    /* The same message id under another flow is another message. */
    for (unsigned i = 0; i < kb; i++)
        bn[i] = mpt_split_write(b[i], 2, 42, i, kb, db, sizeof(db));
    for (unsigned i = 0; i < ka || i < kb; i++) {
        if (i < ka) {
            n = mpt_split_add(&sp, 1, SID, a[i], an[i], &out);
            if (i + 1 == ka) {
                ASSERT_EQ(n, sizeof(da));
                ASSERT_MEM_EQ(out, da, n);
            } else {
                ASSERT_EQ(n, 0);
            }
        }
        if (i < kb) {
            /* Under another session too: that also is another message. */
            n = mpt_split_add(&sp, 1, SID + 1, b[i], bn[i], &out);
            ASSERT_EQ(n, i + 1 == kb ? sizeof(db) : 0);
            if (n)
                ASSERT_MEM_EQ(out, db, n);
        }
    }
    ASSERT_EQ(sp.st.reassembled, 2);
    mpt_split_free(&sp);
}

/* A lost piece: the partial message waits at most a second, then is dropped and counted. */
static void lost_piece(void)
{
    struct mpt_split sp;
    size_t len = 4000;
    unsigned k;

    ASSERT_EQ(mpt_split_init(&sp), 0);
    fill(len, 3);
    k = cut(len, 1472, 1);
    ASSERT_EQ(k, 3);
    ASSERT_EQ(put(&sp, 0, 0, len), 0);
    ASSERT_EQ(put(&sp, 10, 2, len), 0);
    /* Within the second, the last piece still completes it... */
    ASSERT_EQ(put(&sp, MPT_SPLIT_MAX_AGE_US, 1, len), len);
    /* ...after it, not: the piece starts afresh, the old partial dropped as expired. */
    k = cut(len, 1472, 2);
    ASSERT_EQ(put(&sp, 2000000, 0, len), 0);
    ASSERT_EQ(put(&sp, 2000000 + MPT_SPLIT_MAX_AGE_US + 1, 1, len), 0);
    ASSERT_EQ(sp.st.drops[MPT_SPLIT_DROP_EXPIRED], 1);
    ASSERT_EQ(put(&sp, 2000000 + MPT_SPLIT_MAX_AGE_US + 2, 2, len), 0);
    ASSERT_EQ(put(&sp, 2000000 + MPT_SPLIT_MAX_AGE_US + 3, 0, len), len);
    ASSERT_EQ(sp.st.reassembled, 2);
    mpt_split_free(&sp);
}

/* More partial messages than the table holds: the oldest gives way (counted), the rest complete. */
static void eviction(void)
{
    struct mpt_split sp;
    size_t len = 3000;
    unsigned done = 0;

    ASSERT_EQ(mpt_split_init(&sp), 0);
    fill(len, 5);
    for (uint32_t m = 1; m <= MPT_SPLIT_SLOTS + 1; m++) {
        cut(len, 1472, m);
        ASSERT_EQ(put(&sp, m, 0, len), 0);
    }
    ASSERT_EQ(sp.st.drops[MPT_SPLIT_DROP_EVICTED], 1);
    for (uint32_t m = 2; m <= MPT_SPLIT_SLOTS + 1; m++) {
        cut(len, 1472, m);
        ASSERT_EQ(put(&sp, 100, 1, len), 0);
        done += put(&sp, 100, 2, len) == len;
    }
    /* Message 1 was evicted: its late pieces take a slot again, and wait for the lost one. */
    cut(len, 1472, 1);
    ASSERT_EQ(put(&sp, 100, 1, len), 0);
    ASSERT_EQ(put(&sp, 100, 2, len), 0);
    printf("%u of %u partial messages completed, %llu evicted\n", done, MPT_SPLIT_SLOTS + 1,
           (unsigned long long)sp.st.drops[MPT_SPLIT_DROP_EVICTED]);
    ASSERT_EQ(done, MPT_SPLIT_SLOTS);
    ASSERT_EQ(sp.st.drops[MPT_SPLIT_DROP_EVICTED], 1);
    mpt_split_free(&sp);
}

/* Pieces no sender makes: every one dropped and counted, nothing written out of bounds (run
 * under the sanitizers), and the valid message beside them still rebuilt. */
static void hostile(void)
{
    static uint8_t m[MPT_SPLIT_SLOT_BYTES + 64];
    struct mpt_split sp;
    const uint8_t *out;
    uint64_t bad;
    size_t len = 5000, n;
    unsigned k;

    ASSERT_EQ(mpt_split_init(&sp), 0);
    fill(len, 9);
    k = cut(len, 1472, 77);
    ASSERT_EQ(k, 4);
#define TRY(buf, sz) ASSERT_EQ(mpt_split_add(&sp, 1, SID, (buf), (sz), &out), 0)
    /* Too short, flags set, reserved bytes set, session 0. */
    TRY(piece[0], MPT_PIECE_HDR_LEN - 1);
    memcpy(m, piece[0], piece_n[0]);
    m[1] = 1;
    TRY(m, piece_n[0]);
    memcpy(m, piece[0], piece_n[0]);
    m[15] = 1;
    TRY(m, piece_n[0]);
    ASSERT_EQ(mpt_split_add(&sp, 1, 0, piece[0], piece_n[0], &out), 0);
    /* Counts 0, 1 and 65; index at or past the count. */
    for (unsigned c = 0; c < 3; c++) {
        memcpy(m, piece[0], piece_n[0]);
        m[3] = (uint8_t)(c == 2 ? MPT_SPLIT_MAX_PIECES + 1 : c);
        TRY(m, piece_n[0]);
    }
    memcpy(m, piece[0], piece_n[0]);
    m[2] = 4;
    TRY(m, piece_n[0]);
    /* Total under a FLOW header, over the largest message, or a count that leaves a piece
     * empty. */
    memcpy(m, piece[0], piece_n[0]);
    mpt_put16(m + 12, MPT_FLOW_HDR_LEN - 1);
    TRY(m, piece_n[0]);
    memcpy(m, piece[0], piece_n[0]);
    mpt_put16(m + 12, MPT_PIECE_MAX_TOTAL + 1);
    TRY(m, piece_n[0]);
    memcpy(m, piece[0], piece_n[0]);
    m[3] = 64;
    mpt_put16(m + 12, 100); /* ceil(100/64) = 2: 50 pieces fill it, 14 would be empty */
    m[2] = 0;
    TRY(m, MPT_PIECE_HDR_LEN + 2);
    /* A length that does not match the piece's place: one byte short, one long, a huge one. */
    TRY(piece[1], piece_n[1] - 1);
    memcpy(m, piece[1], piece_n[1]);
    TRY(m, piece_n[1] + 1);
    memcpy(m, piece[3], MPT_PIECE_HDR_LEN);
    TRY(m, sizeof(m));
    bad = sp.st.drops[MPT_SPLIT_DROP_BAD];
    ASSERT_EQ(bad, 14);
    ASSERT_EQ(sp.st.pieces_rx, 0);
    /* A real piece, then pieces of the same message that disagree on total or count. */
    ASSERT_EQ(put(&sp, 1, 0, len), 0);
    memcpy(m, piece[1], piece_n[1]);
    mpt_put16(m + 12, (uint16_t)(len + 1));
    TRY(m, piece_n[1]);
    memcpy(m, piece[1], piece_n[1]);
    m[3] = 5;
    mpt_put16(m + 12, (uint16_t)(1250 * 5));
    TRY(m, piece_n[1]);
    ASSERT_EQ(sp.st.drops[MPT_SPLIT_DROP_BAD], bad + 2);
    /* Overlapping: the same index with other bytes is a duplicate, the first bytes stay. */
    memcpy(m, piece[0], piece_n[0]);
    m[MPT_PIECE_HDR_LEN + 20] ^= 0xff;
    TRY(m, piece_n[0]);
    ASSERT_EQ(sp.st.drops[MPT_SPLIT_DROP_DUPLICATE], 1);
    ASSERT_EQ(put(&sp, 1, 1, len), 0);
    ASSERT_EQ(put(&sp, 1, 2, len), 0);
    n = put(&sp, 1, 3, len);
    ASSERT_EQ(n, len);
    /* Pieces that rebuild something other than a FLOW message of their flow: a PIECE, a PROBE,
     * or a FLOW message of another flow. Dropped whole, never handed on. */
    for (unsigned t = 0; t < 3; t++) {
        fill(len, 11);
        if (t == 0)
            src[0] = MPT_INNER_PIECE;
        else if (t == 1)
            src[0] = MPT_INNER_PROBE;
        else
            mpt_put32(src + 4, 8);
        k = cut(len, 1472, 200 + t);
        for (unsigned i = 0; i < k; i++)
            ASSERT_EQ(mpt_split_add(&sp, 1, SID, piece[i], piece_n[i], &out), 0);
    }
    ASSERT_EQ(sp.st.drops[MPT_SPLIT_DROP_BAD], bad + 5);
    ASSERT_EQ(sp.st.reassembled, 1);
    /* Random bytes after a piece header, valid or not: never more than the table, never a
     * crash, every piece accounted for. */
    for (unsigned i = 0; i < 200000; i++) {
        size_t sz = rnd() % 1600;
        for (size_t j = 0; j < sz; j++)
            m[j] = (uint8_t)rnd();
        if (i % 2) {
            /* Well-formed headers of a few messages, lengths right: they mix and complete. */
            unsigned kk = 2 + rnd() % 4, ii = rnd() % kk;
            size_t total = kk * kk + MPT_FLOW_HDR_LEN + rnd() % 6000;
            sz = MPT_PIECE_HDR_LEN + mpt_split_piece_len(total, kk, ii);
            m[1] = 0;
            m[2] = (uint8_t)ii;
            m[3] = (uint8_t)kk;
            mpt_put32(m + 4, 1);
            mpt_put32(m + 8, rnd() % 100);
            mpt_put16(m + 12, (uint16_t)total);
            mpt_put16(m + 14, 0);
        }
        n = mpt_split_add(&sp, 2 + i, SID, m, sz, &out);
        ASSERT(n == 0 || (n >= MPT_FLOW_HDR_LEN && out[0] == MPT_INNER_FLOW));
    }
    printf("random pieces: %llu accepted, %llu rebuilt, %llu bad, %llu duplicate, %llu evicted, "
           "%llu expired\n",
           (unsigned long long)sp.st.pieces_rx, (unsigned long long)sp.st.reassembled,
           (unsigned long long)sp.st.drops[MPT_SPLIT_DROP_BAD],
           (unsigned long long)sp.st.drops[MPT_SPLIT_DROP_DUPLICATE],
           (unsigned long long)sp.st.drops[MPT_SPLIT_DROP_EVICTED],
           (unsigned long long)sp.st.drops[MPT_SPLIT_DROP_EXPIRED]);
    ASSERT_GT(sp.st.pieces_rx, 1000);
#undef TRY
    mpt_split_free(&sp);
}

/* A client and a server back to back, 3 paths. */
#define NPATHS 3
#define MAXQ 4096

static const uint8_t secret[32] = {0x5b, 0x17, 3};

struct wpkt {
    unsigned path;
    uint32_t flow;
    size_t len;
    uint8_t *data;
};

struct wlist {
    unsigned n;
    struct wpkt v[MAXQ];
};

static struct {
    struct mpt_client c;
    struct mpt_server s;
    struct mpt_outq q;
    uint64_t now;
    struct mpt_addr paddr[NPATHS], app;
    unsigned max[NPATHS]; /* what each path carries whole; 0 = unknown */
    struct wlist up, down, apps, targets;
} w;

static void wadd(struct wlist *l, unsigned path, uint32_t flow, const uint8_t *d, size_t len)
{
    struct wpkt *p;

    ASSERT_LT(l->n, MAXQ);
    p = &l->v[l->n++];
    p->path = path;
    p->flow = flow;
    p->len = len;
    p->data = malloc(len ? len : 1);
    ASSERT(p->data);
    memcpy(p->data, d, len);
}

static void wclear(struct wlist *l)
{
    for (unsigned i = 0; i < l->n; i++)
        free(l->v[i].data);
    l->n = 0;
}

static void wcollect(int from_server)
{
    for (unsigned i = 0; i < w.q.n; i++) {
        const struct mpt_out *o = &w.q.v[i];
        switch (o->kind) {
        case MPT_OUT_PATH:
            if (!from_server) {
                wadd(&w.up, o->index, 0, o->data, o->len);
            } else {
                for (unsigned j = 0; j < NPATHS; j++)
                    if (mpt_addr_equal(&o->addr, &w.paddr[j]))
                        wadd(&w.down, j, 0, o->data, o->len);
            }
            break;
        case MPT_OUT_APP:
            wadd(&w.apps, 0, 0, o->data, o->len);
            break;
        case MPT_OUT_FLOW:
            wadd(&w.targets, 0, o->index, o->data, o->len);
            break;
        default:
            break;
        }
    }
    mpt_outq_reset(&w.q);
    w.s.nclosed = 0;
}

/* Carries what is in flight one way, each copy lost with probability loss; then empties it. */
static void wdeliver(struct wlist *l, int to_server, double loss)
{
    static struct wlist t;

    t = *l;
    l->n = 0;
    for (unsigned i = 0; i < t.n; i++) {
        if (loss > 0 && rnd() % 1000000 < loss * 1000000)
            continue;
        if (to_server)
            mpt_server_on_path(&w.s, w.now, &w.paddr[t.v[i].path], t.v[i].data, t.v[i].len, &w.q);
        else
            mpt_client_on_path(&w.c, w.now, t.v[i].path, t.v[i].data, t.v[i].len, &w.q);
        wcollect(to_server);
    }
    wclear(&t);
}

static unsigned server_mtu(void *arg, const struct mpt_addr *to)
{
    (void)arg;
    for (unsigned j = 0; j < NPATHS; j++)
        if (mpt_addr_equal(to, &w.paddr[j]))
            return w.max[j];
    return 0;
}

static void wsetup(unsigned max)
{
    struct mpt_client_params cp = {
        .secret = secret,
        .npaths = NPATHS,
        .max_flows = 8,
        .flow_timeout_ms = 30000,
        .probe_interval_ms = 200,
    };
    struct mpt_server_params sp = {
        .secret = secret,
        .max_sessions = 2,
        .max_flows = 8,
        .flow_timeout_ms = 30000,
        .session_timeout_ms = 60000,
        .ntargets = 1,
    };

    memset(&w, 0, sizeof(w));
    ASSERT_EQ(mpt_outq_init(&w.q, 1024, 1 << 20), 0);
    ASSERT_EQ(mpt_client_init(&w.c, &cp), 0);
    ASSERT_EQ(mpt_server_init(&w.s, &sp), 0);
    for (unsigned i = 0; i < NPATHS; i++) {
        memset(&w.paddr[i], 0, sizeof(w.paddr[i]));
        w.paddr[i].u.in4.sin_family = AF_INET;
        w.paddr[i].u.in4.sin_addr.s_addr = htonl(0xc0a80001 + i);
        w.paddr[i].u.in4.sin_port = htons((uint16_t)(40000 + i));
        w.max[i] = max;
        mpt_client_set_path_mtu(&w.c, i, max);
    }
    w.app.u.in4.sin_family = AF_INET;
    w.app.u.in4.sin_addr.s_addr = htonl(0x7f000001);
    w.app.u.in4.sin_port = htons(5000);
    w.now = 1000000;
    /* Handshake, then probes so that the server knows every path. */
    mpt_client_on_timer(&w.c, w.now, &w.q);
    wcollect(0);
    wdeliver(&w.up, 1, 0);
    wdeliver(&w.down, 0, 0);
    ASSERT_EQ(w.c.state, MPT_CLIENT_ESTABLISHED);
    mpt_client_on_timer(&w.c, w.now, &w.q);
    wcollect(0);
    wdeliver(&w.up, 1, 0);
    wdeliver(&w.down, 0, 0);
    wdeliver(&w.up, 1, 0);       /* the echoes that validate each return address */
    ASSERT_EQ(w.s.mtu_dirty, 1); /* paths came: the driver is asked for their MTUs */
    mpt_server_set_path_mtus(&w.s, 0, server_mtu, NULL);
    ASSERT_EQ(w.s.mtu_dirty, 0);
    wclear(&w.apps);
}

static void wteardown(void)
{
    wclear(&w.up);
    wclear(&w.down);
    wclear(&w.apps);
    wclear(&w.targets);
    mpt_client_free(&w.c);
    mpt_server_free(&w.s);
    mpt_outq_free(&w.q);
}

/* Checks what one datagram of len bytes became on the wire: k pieces (or 1 whole) on each path,
 * each fitting max, all pieces but the last of one size (a GSO run); returns the pieces. */
static unsigned wire_check(const struct wlist *l, size_t len, unsigned max)
{
    unsigned k = mpt_split_count(MPT_FLOW_HDR_LEN + len, max), n = k ? k : 1;

    ASSERT_EQ(l->n, n * NPATHS);
    for (unsigned p = 0; p < NPATHS; p++) {
        unsigned seen = 0;
        size_t first = 0;
        for (unsigned i = 0; i < l->n; i++) {
            if (l->v[i].path != p)
                continue;
            if (k)
                ASSERT_LE(l->v[i].len, max);
            if (!seen)
                first = l->v[i].len;
            else if (seen + 1 < n)
                ASSERT_EQ(l->v[i].len, first);
            seen++;
        }
        ASSERT_EQ(seen, n);
    }
    return k;
}

/* Datagrams of sizes around each edge, both ways, over paths of MTU 1500 (IPv4): sent as pieces
 * that fit whenever they would not fit whole, delivered exactly once and intact. */
static void end_to_end(void)
{
    static const size_t sizes[] = {0,    1,    1427, 1428,  1429,  1500,
                                   2872, 2873, 9000, 30000, 65000, MPT_MAX_PAYLOAD};
    static uint8_t buf[MPT_MAX_PAYLOAD];
    unsigned max = 1500 - 28;

    wsetup(max);
    for (unsigned t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        size_t len = sizes[t];
        unsigned k;
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(i * 7 + t);
        mpt_client_on_app(&w.c, w.now, &w.app, buf, len, &w.q);
        wcollect(0);
        k = wire_check(&w.up, len, max);
        ASSERT_EQ(k == 0, len <= 1428);
        wdeliver(&w.up, 1, 0);
        ASSERT_EQ(w.targets.n, 1);
        ASSERT_EQ(w.targets.v[0].len, len);
        ASSERT_MEM_EQ(w.targets.v[0].data, buf, len);
        buf[0] ^= 0x5a;
        mpt_server_on_target(&w.s, w.now, w.targets.v[0].flow, buf, len, &w.q);
        wcollect(1);
        ASSERT_EQ(wire_check(&w.down, len, max), k);
        wdeliver(&w.down, 0, 0);
        ASSERT_EQ(w.apps.n, 1);
        ASSERT_EQ(w.apps.v[0].len, len);
        ASSERT_MEM_EQ(w.apps.v[0].data, buf, len);
        wclear(&w.targets);
        wclear(&w.apps);
        w.now += 1000;
    }
    printf("client: %llu split, %llu pieces, %llu rebuilt; server: %llu split, %llu pieces, "
           "%llu rebuilt\n",
           (unsigned long long)w.c.split.st.split, (unsigned long long)w.c.split.st.pieces_tx,
           (unsigned long long)w.c.split.st.reassembled, (unsigned long long)w.s.split.st.split,
           (unsigned long long)w.s.split.st.pieces_tx,
           (unsigned long long)w.s.split.st.reassembled);
    ASSERT_EQ(w.c.split.st.split, 8);
    ASSERT_EQ(w.s.split.st.reassembled, 8);
    ASSERT_EQ(w.s.split.st.split, 8);
    ASSERT_EQ(w.c.split.st.reassembled, 8);
    /* Copies of pieces on other paths are the window's duplicates, never the reassembler's. */
    ASSERT_EQ(w.s.split.st.drops[MPT_SPLIT_DROP_DUPLICATE], 0);
    ASSERT_GT(w.s.ctr.duplicates, 0);
    wteardown();
}

/* One path of unknown MTU among those a datagram goes on: it goes whole (IP fragments). */
static void unknown_mtu(void)
{
    static uint8_t buf[3000];

    wsetup(1472);
    mpt_client_set_path_mtu(&w.c, 1, 0);
    mpt_client_on_app(&w.c, w.now, &w.app, buf, sizeof(buf), &w.q);
    wcollect(0);
    ASSERT_EQ(w.up.n, NPATHS);
    /* The smallest known path decides. */
    mpt_client_set_path_mtu(&w.c, 1, 1252);
    wclear(&w.up);
    mpt_client_on_app(&w.c, w.now, &w.app, buf, sizeof(buf), &w.q);
    wcollect(0);
    ASSERT_EQ(w.up.n, NPATHS * mpt_split_count(MPT_FLOW_HDR_LEN + sizeof(buf), 1252));
    ASSERT_EQ(mpt_split_count(MPT_FLOW_HDR_LEN + sizeof(buf), 1252), 3);
    wdeliver(&w.up, 1, 0);
    ASSERT_EQ(w.targets.n, 1);
    wteardown();
}

static const struct task_case cases[] = {
    {"every_size", every_size},
    {"out_of_order_duplicates", out_of_order_duplicates},
    {"interleaved", interleaved},
    {"lost_piece", lost_piece},
    {"eviction", eviction},
    {"hostile", hostile},
    {"end_to_end", end_to_end},
    {"unknown_mtu", unknown_mtu},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
