/* PIECE messages (PROTOCOL.md §5): splitting and reassembly. */
#include "core/split.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const mpt_split_drop_names[MPT_SPLIT_DROP_COUNT] = {
    [MPT_SPLIT_DROP_BAD] = "bad",
    [MPT_SPLIT_DROP_DUPLICATE] = "duplicate",
    [MPT_SPLIT_DROP_EXPIRED] = "expired",
    [MPT_SPLIT_DROP_EVICTED] = "evicted",
};

int mpt_split_init(struct mpt_split *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->arena = malloc((size_t)(MPT_SPLIT_SLOTS + 1) * MPT_SPLIT_SLOT_BYTES);
    if (!sp->arena)
        return -ENOMEM;
    sp->scratch = sp->arena + (size_t)MPT_SPLIT_SLOTS * MPT_SPLIT_SLOT_BYTES;
    return 0;
}

void mpt_split_free(struct mpt_split *sp)
{
    free(sp->arena);
    memset(sp, 0, sizeof(*sp));
}

unsigned mpt_split_count(size_t len, unsigned max_dgram)
{
    size_t room, k;

    if (!max_dgram || MPT_DATA_OVERHEAD + len <= max_dgram)
        return 0;
    if (max_dgram <= MPT_PIECE_OVERHEAD || len > MPT_PIECE_MAX_TOTAL)
        return 0;
    room = max_dgram - MPT_PIECE_OVERHEAD;
    k = (len + room - 1) / room;
    if (k < 2)
        k = 2;
    /* Equal pieces of ceil(len / k) leave the last one empty when (k - 1)^2 >= len: never with
     * any real MTU, but refuse it rather than send an empty piece. */
    if (k > MPT_SPLIT_MAX_PIECES || (k - 1) * ((len + k - 1) / k) >= len)
        return 0;
    return (unsigned)k;
}

size_t mpt_split_piece_len(size_t len, unsigned k, unsigned i)
{
    size_t ps = (len + k - 1) / k, off = (size_t)i * ps;

    if (off >= len)
        return 0;
    return len - off < ps ? len - off : ps;
}

size_t mpt_split_write(uint8_t *inner, uint32_t flow, uint32_t msg, unsigned i, unsigned k,
                       const uint8_t *msg_buf, size_t len)
{
    size_t ps = (len + k - 1) / k, n = mpt_split_piece_len(len, k, i);

    inner[0] = MPT_INNER_PIECE;
    inner[1] = 0;
    inner[2] = (uint8_t)i;
    inner[3] = (uint8_t)k;
    mpt_put32(inner + 4, flow);
    mpt_put32(inner + 8, msg);
    mpt_put16(inner + 12, (uint16_t)len);
    mpt_put16(inner + 14, 0);
    memcpy(inner + MPT_PIECE_HDR_LEN, msg_buf + (size_t)i * ps, n);
    return MPT_PIECE_HDR_LEN + n;
}

static void drop_part(struct mpt_split *sp, struct mpt_split_partial *p, enum mpt_split_drop why)
{
    sp->st.drops[why]++;
    p->sid = 0;
}

/* The partial message of (sid, flow, msg), or a slot for it: free, else expired, else the oldest
 * (evicted). Expired ones found on the way are dropped. */
static struct mpt_split_partial *find(struct mpt_split *sp, uint64_t now, uint64_t sid,
                                      uint32_t flow, uint32_t msg, int *fresh)
{
    struct mpt_split_partial *freep = NULL, *oldest = NULL;

    for (unsigned i = 0; i < MPT_SPLIT_SLOTS; i++) {
        struct mpt_split_partial *p = &sp->part[i];
        if (p->sid && now - p->first_us > MPT_SPLIT_MAX_AGE_US)
            drop_part(sp, p, MPT_SPLIT_DROP_EXPIRED);
        if (!p->sid) {
            if (!freep)
                freep = p;
            continue;
        }
        if (p->sid == sid && p->flow == flow && p->msg == msg) {
            *fresh = 0;
            return p;
        }
        if (!oldest || p->first_us < oldest->first_us)
            oldest = p;
    }
    *fresh = 1;
    if (freep)
        return freep;
    drop_part(sp, oldest, MPT_SPLIT_DROP_EVICTED);
    return oldest;
}

size_t mpt_split_add(struct mpt_split *sp, uint64_t now, uint64_t sid, const uint8_t *m, size_t n,
                     const uint8_t **out)
{
    struct mpt_split_partial *p;
    unsigned idx, k;
    size_t total, ps, len;
    uint32_t flow;
    uint8_t *buf;
    int fresh;

    if (n < MPT_PIECE_HDR_LEN || m[1] != 0 || mpt_get16(m + 14) != 0 || sid == 0) {
        sp->st.drops[MPT_SPLIT_DROP_BAD]++;
        return 0;
    }
    idx = m[2];
    k = m[3];
    flow = mpt_get32(m + 4);
    total = mpt_get16(m + 12);
    if (k < 2 || k > MPT_SPLIT_MAX_PIECES || idx >= k || total < MPT_FLOW_HDR_LEN ||
        total > MPT_PIECE_MAX_TOTAL) {
        sp->st.drops[MPT_SPLIT_DROP_BAD]++;
        return 0;
    }
    ps = (total + k - 1) / k;
    len = mpt_split_piece_len(total, k, idx);
    if ((k - 1) * ps >= total || n - MPT_PIECE_HDR_LEN != len) {
        sp->st.drops[MPT_SPLIT_DROP_BAD]++;
        return 0;
    }
    p = find(sp, now, sid, flow, mpt_get32(m + 8), &fresh);
    if (fresh) {
        p->sid = sid;
        p->flow = flow;
        p->msg = mpt_get32(m + 8);
        p->first_us = now;
        p->have = 0;
        p->got = 0;
        p->total = (uint16_t)total;
        p->count = (uint8_t)k;
    } else if (p->total != total || p->count != k) {
        sp->st.drops[MPT_SPLIT_DROP_BAD]++;
        return 0;
    } else if (p->have & (1ull << idx)) {
        sp->st.drops[MPT_SPLIT_DROP_DUPLICATE]++;
        return 0;
    }
    sp->st.pieces_rx++;
    buf = sp->arena + (size_t)(p - sp->part) * MPT_SPLIT_SLOT_BYTES;
    memcpy(buf + (size_t)idx * ps, m + MPT_PIECE_HDR_LEN, len);
    p->have |= 1ull << idx;
    if (++p->got < k)
        return 0;
    p->sid = 0;
    /* Only a FLOW message of the flow the pieces named may come out of them. */
    if (buf[0] != MPT_INNER_FLOW || mpt_get32(buf + 4) != flow) {
        sp->st.drops[MPT_SPLIT_DROP_BAD]++;
        return 0;
    }
    sp->st.reassembled++;
    *out = buf;
    return total;
}
