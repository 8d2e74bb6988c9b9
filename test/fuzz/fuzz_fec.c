/* core/fec.c's receiver (PROTOCOL.md §11): a script of operations from the input against one
 * decoder, as a receiver drives it, each datagram's counter going through a replay window first:
 *   - genuine blocks of session GOOD, made by the encoder, their sources and repairs delivered
 *     in an order, with losses and repeats, that the input picks;
 *   - hostile REPAIR messages and sources (any bytes) of session BAD, and bytes written over a
 *     genuine repair of session GOOD's (a peer that holds the keys can send anything);
 *   - time passing, blocks expiring, a session dropped.
 * Checks: every message the decoder gives is inside its buffers, of a kind it protects and of a
 * length it allows, and of a counter in its block; no counter is delivered twice (the window
 * decides, as in the client and server); a message of GOOD rebuilt from genuine symbols only is
 * the one that was sent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/fec.h"
#include "core/replay.h"
#include "core/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GOOD 0x600d
#define BAD 0xbad
#define NSRC 256
#define NPEND 4
#define KEEP 4096 /* counters of GOOD remembered with what was sent */

struct input {
    const uint8_t *p;
    size_t n;
};

static uint8_t take8(struct input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t take16(struct input *in)
{
    return (uint16_t)(take8(in) << 8 | take8(in));
}

static struct mpt_fec_tx tx;
static struct mpt_fec_rx rx;
static struct mpt_window win[2];
static uint64_t now, next_ctr[2];
static uint8_t *delivered;      /* GOOD counters delivered, by counter % KEEP */
static uint8_t *sent_msg;       /* what GOOD sent with each counter % KEEP */
static uint16_t sent_len[KEEP]; /* 0: not a genuine source */
static uint64_t sent_ctr[KEEP]; /* the counter the entry is of */
static int tainted;             /* a repair of GOOD was altered: content unchecked since */

/* The bounds of what the decoder may point at: its scratch symbols or its cache's entries. */
static int inside(const uint8_t *d, size_t len)
{
    const uint8_t *s = rx.scratch;
    size_t ssz = (size_t)(MPT_FEC_K_MAX + MPT_FEC_M_MAX) * MPT_FEC_SYM_MAX;

    if (d >= s && d + len <= s + ssz)
        return 1;
    for (unsigned i = 0; i < rx.nsrc; i++) {
        const uint8_t *e = rx.src_buf + (size_t)i * MPT_FEC_SRC_MAX;
        if (d >= e && d + len <= e + MPT_FEC_SRC_MAX)
            return 1;
    }
    return 0;
}

/* A datagram of session `who` accepted by its window: counted, and for GOOD checked against what
 * was sent (only where its block was not altered). */
static void accept(int who, uint64_t ctr, const uint8_t *msg, size_t len, int rebuilt)
{
    if (mpt_window_check(&win[who], ctr) != 0)
        return;
    mpt_window_update(&win[who], ctr);
    if (who)
        return;
    if (ctr + KEEP <= next_ctr[0] || ctr > next_ctr[0])
        return; /* not a counter of the traffic kept */
    if (delivered[ctr % KEEP])
        abort(); /* delivered twice */
    delivered[ctr % KEEP] = 1;
    if (rebuilt && !tainted &&
        (sent_ctr[ctr % KEEP] != ctr || !sent_len[ctr % KEEP] || len != sent_len[ctr % KEEP] ||
         memcmp(msg, sent_msg + (ctr % KEEP) * MPT_FEC_SRC_MAX, len) != 0))
        abort(); /* rebuilt from genuine symbols, yet not a source sent, or not what was sent */
}

/* Whatever the decoder rebuilt after its last call: of the block of `first` (0: any) and before
 * counter `before` (0: any). */
static void drain(uint64_t first, uint64_t before)
{
    const struct mpt_fec_out *o;
    unsigned n = 0;

    while ((o = mpt_fec_rx_take(&rx))) {
        if (++n > MPT_FEC_M_MAX || !o->len || o->len > MPT_FEC_SRC_MAX ||
            !inside(o->data, o->len) || !mpt_fec_protects(o->data, o->len) ||
            (o->sid != GOOD && o->sid != BAD))
            abort();
        if (first && (o->ctr < first || o->ctr - first >= MPT_FEC_SPAN || o->ctr >= before))
            abort(); /* not a counter of the block */
        accept(o->sid == BAD, o->ctr, o->data, o->len, 1);
    }
}

static void source(int who, uint64_t ctr, const uint8_t *msg, size_t len)
{
    if (mpt_window_check(&win[who], ctr) != 0) {
        mpt_fec_rx_late(&rx, who ? BAD : GOOD, ctr);
        return;
    }
    accept(who, ctr, msg, len, 0);
    mpt_fec_rx_source(&rx, who ? BAD : GOOD, ctr, msg, len, now);
    drain(0, 0);
}

static void repair(int who, uint64_t ctr, const uint8_t *msg, size_t len)
{
    if (mpt_window_check(&win[who], ctr) != 0)
        return;
    mpt_window_update(&win[who], ctr);
    mpt_fec_rx_repair(&rx, who ? BAD : GOOD, ctr, msg, len, now, 50000);
    drain(len >= MPT_REPAIR_HDR_LEN ? mpt_get64(msg + 4) : 0, ctr);
}

/* A genuine block of GOOD: k sources, m repairs; the input picks sizes, losses, repeats, order,
 * and perhaps bytes written over one repair. */
static void genuine(struct input *in)
{
    static uint8_t msg[MPT_FEC_K_MAX][MPT_FEC_SRC_MAX];
    static uint8_t rep[MPT_FEC_M_MAX][MPT_REPAIR_MAX_LEN];
    size_t len[MPT_FEC_K_MAX], rlen[MPT_FEC_M_MAX];
    uint64_t ctr[MPT_FEC_K_MAX + MPT_FEC_M_MAX];
    unsigned k = 1 + take8(in) % 24, m = 1 + take8(in) % 8, order[MPT_FEC_K_MAX + MPT_FEC_M_MAX];
    uint8_t gap = take8(in) % 4, fill = take8(in);

    for (unsigned i = 0; i < k; i++) {
        len[i] = MPT_FLOW_HDR_LEN + take8(in) % 64 + (take8(in) & 1 ? 1300 : 0);
        memset(msg[i], fill + (uint8_t)i, len[i]);
        msg[i][0] = i & 1 ? MPT_INNER_FLOW : MPT_INNER_PIECE;
        /* A counter now and then skipped (another kind of message took it). */
        next_ctr[0] += 1 + (gap && i % 5 == 4);
        ctr[i] = next_ctr[0];
        if (!mpt_fec_tx_fits(&tx, ctr[i], k))
            mpt_fec_tx_close(&tx, 1);
        mpt_fec_tx_add(&tx, ctr[i], msg[i], len[i], now);
        sent_len[ctr[i] % KEEP] = (uint16_t)len[i];
        sent_ctr[ctr[i] % KEEP] = ctr[i];
        delivered[ctr[i] % KEEP] = 0;
        memcpy(sent_msg + (ctr[i] % KEEP) * MPT_FEC_SRC_MAX, msg[i], len[i]);
    }
    m = mpt_fec_tx_close(&tx, m);
    for (unsigned j = 0; j < m; j++) {
        ctr[k + j] = ++next_ctr[0];
        sent_len[ctr[k + j] % KEEP] = 0;
        sent_ctr[ctr[k + j] % KEEP] = ctr[k + j];
        delivered[ctr[k + j] % KEEP] = 0;
        rlen[j] = mpt_fec_tx_repair(&tx, j, rep[j]);
    }
    if (take8(in) == 0xa5) { /* bytes written over one repair, by a peer with the keys */
        unsigned j = take8(in) % m;
        for (unsigned x = take8(in) % 8; x > 0; x--) {
            uint16_t at = take16(in);
            rep[j][at % rlen[j]] = take8(in);
        }
        tainted = 1;
    }
    for (unsigned i = 0; i < k + m; i++)
        order[i] = i;
    for (unsigned i = k + m - 1; i > 0; i--) { /* the order the input picks */
        unsigned j = take8(in) % (i + 1), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (unsigned x = 0; x < k + m; x++) {
        unsigned i = order[x], fate = take8(in) % 8; /* 0-1: lost, 7: twice */
        for (unsigned copy = 0; fate >= 2 && copy < (fate == 7 ? 2u : 1u); copy++) {
            if (i < k)
                source(0, ctr[i], msg[i], len[i]);
            else
                repair(0, ctr[i], rep[i - k], rlen[i - k]);
        }
        now += take8(in) % 4 * 1000;
    }
}

static void setup(void)
{
    delivered = calloc(KEEP, 1);
    sent_msg = malloc((size_t)KEEP * MPT_FEC_SRC_MAX);
    if (!delivered || !sent_msg || mpt_fec_tx_init(&tx) || mpt_fec_rx_init(&rx, NSRC, NPEND))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static uint8_t buf[MPT_REPAIR_MAX_LEN + 64];
    struct input in = {data, size};

    if (!ready) {
        setup();
        ready = 1;
    }
    /* Each input starts from a fresh receiver state: sessions of new ids, windows empty. */
    mpt_fec_rx_drop(&rx, GOOD);
    mpt_fec_rx_drop(&rx, BAD);
    for (unsigned i = 0; i < rx.nsrc; i++)
        rx.src[i].len = 0;
    memset(rx.done_sid, 0, sizeof(rx.done_sid));
    mpt_window_init(&win[0]);
    mpt_window_init(&win[1]);
    mpt_fec_tx_reset(&tx);
    memset(sent_len, 0, sizeof(sent_len));
    tainted = 0;
    next_ctr[0] = next_ctr[1] = 0;
    now = 1000000;
    for (unsigned ops = 0; in.n && ops < 64; ops++) {
        uint8_t op = take8(&in);
        switch (op % 8) {
        case 0:
        case 1:
            genuine(&in);
            break;
        case 2: /* a hostile REPAIR of BAD: a header near the counters in use, then any bytes */
        case 3: {
            size_t len = take16(&in) % (MPT_REPAIR_MAX_LEN + 8);
            uint64_t ctr = next_ctr[1] + 1 + take8(&in) % 200;
            for (size_t i = 0; i < len; i++)
                buf[i] = take8(&in);
            if (len >= MPT_REPAIR_HDR_LEN && op & 0x80) { /* mostly well formed */
                unsigned span = 1 + buf[4] % 128, k = 0;
                buf[0] = MPT_INNER_REPAIR;
                buf[3] = (uint8_t)(1 + buf[3] % MPT_FEC_M_MAX);
                buf[1] = (uint8_t)(buf[1] % buf[3]);
                mpt_put64(buf + 4, ctr > span ? ctr - span : 1);
                buf[12] |= 1;
                for (unsigned i = 0; i < MPT_FEC_SPAN; i++) {
                    if (i >= span || k == MPT_FEC_K_MAX)
                        buf[12 + i / 8] &= (uint8_t) ~(1u << (i % 8));
                    k += buf[12 + i / 8] >> (i % 8) & 1;
                }
                buf[2] = (uint8_t)k;
                mpt_put16(buf + 28, (uint16_t)(len - MPT_REPAIR_HDR_LEN));
                buf[30] = buf[31] = 0;
            }
            if (ctr > next_ctr[1])
                next_ctr[1] = ctr;
            repair(1, ctr, buf, len);
            break;
        }
        case 4: { /* a hostile source of BAD */
            size_t len = take16(&in) % (MPT_FEC_SRC_MAX + 8);
            uint64_t ctr = next_ctr[1] + 1 + take8(&in) % 4 - (op & 0x80 ? 64 : 0);
            for (size_t i = 0; i < len; i++)
                buf[i] = take8(&in);
            if (len && op & 0x40) /* of a kind the code protects */
                buf[0] = op & 0x20 ? MPT_INNER_FLOW : MPT_INNER_PIECE;
            if (ctr > next_ctr[1])
                next_ctr[1] = ctr;
            if (ctr)
                source(1, ctr, buf, len);
            break;
        }
        case 5: /* time passes */
            now += (uint64_t)take16(&in) * 10;
            mpt_fec_rx_expire(&rx, now);
            drain(0, 0);
            break;
        case 6: /* a counter of GOOD given to something that is not coded */
            next_ctr[0] += 1 + take8(&in) % 3;
            break;
        default: /* BAD closed */
            mpt_fec_rx_drop(&rx, BAD);
            break;
        }
        if (rx.nout > MPT_FEC_M_MAX)
            abort();
    }
    now += 10000000;
    mpt_fec_rx_expire(&rx, now);
    drain(0, 0);
    return 0;
}
