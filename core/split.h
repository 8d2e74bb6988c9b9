/* Splitting of FLOW messages too large for their paths into PIECE messages, and their
 * reassembly (PROTOCOL.md §5 PIECE). Shared by both ends: each piece is sealed as a DATA datagram
 * of its own, so each may arrive on any path, and the receiver rebuilds the FLOW message from the
 * pieces in a fixed table of partial messages, whatever the sender claims, then handles it as if
 * it had come whole. No clock: `now` is given. */
#ifndef MPT_SPLIT_H
#define MPT_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/wire.h"

#define MPT_PIECE_HDR_LEN 16 /* kind, flags, index, count, flow id, message id, total, zero */
#define MPT_PIECE_MAX_TOTAL (MPT_MAX_DGRAM - MPT_DATA_OVERHEAD) /* the largest FLOW message */
#define MPT_SPLIT_MAX_PIECES 64 /* more would be needed: the datagram goes whole (IP fragments) */
#define MPT_SPLIT_SLOTS 64      /* partial messages a receiver holds at once */
#define MPT_SPLIT_SLOT_BYTES 65536
#define MPT_SPLIT_MAX_AGE_US 1000000 /* a partial message older than this is dropped */

/* The sealed size of piece-carrying datagrams: DATA overhead and the piece header. */
#define MPT_PIECE_OVERHEAD (MPT_DATA_OVERHEAD + MPT_PIECE_HDR_LEN)

/* Why pieces or partial messages were dropped. */
enum mpt_split_drop {
    MPT_SPLIT_DROP_BAD = 0,   /* index, count or length impossible, or disagreeing with others */
    MPT_SPLIT_DROP_DUPLICATE, /* a piece the partial message already holds */
    MPT_SPLIT_DROP_EXPIRED,   /* a partial message older than MPT_SPLIT_MAX_AGE_US */
    MPT_SPLIT_DROP_EVICTED,   /* a partial message pushed out of the full table */
    MPT_SPLIT_DROP_COUNT,
};

extern const char *const mpt_split_drop_names[MPT_SPLIT_DROP_COUNT];

struct mpt_split_stats {
    uint64_t split;       /* datagrams sent as pieces */
    uint64_t pieces_tx;   /* pieces sealed (each once, whatever the copies) */
    uint64_t pieces_rx;   /* pieces received, authenticated and fresh */
    uint64_t reassembled; /* datagrams rebuilt from their pieces */
    uint64_t drops[MPT_SPLIT_DROP_COUNT];
};

struct mpt_split_partial {
    uint64_t sid;      /* the session it came under; 0 = free slot */
    uint64_t first_us; /* its first piece arrived */
    uint64_t have;     /* pieces received, by index */
    uint32_t flow, msg;
    uint16_t total;
    uint8_t count, got;
};

struct mpt_split {
    struct mpt_split_partial part[MPT_SPLIT_SLOTS];
    uint8_t *arena; /* MPT_SPLIT_SLOTS * MPT_SPLIT_SLOT_BYTES */
    uint8_t
        *scratch; /* MPT_SPLIT_SLOT_BYTES after them: a FLOW message being cut, for the sender */
    uint32_t next_msg; /* the last message id sent */
    struct mpt_split_stats st;
};

/* Allocates the reassembly arena. Returns 0 or -ENOMEM. */
int mpt_split_init(struct mpt_split *sp);
void mpt_split_free(struct mpt_split *sp);

/* How many pieces a FLOW message of len bytes (header, target block, datagram) takes on paths
 * that carry `max_dgram` bytes of UDP payload whole: 0 if it goes whole (it fits, max_dgram is 0 =
 * unknown, or it would need more than MPT_SPLIT_MAX_PIECES), else 2..MPT_SPLIT_MAX_PIECES. */
unsigned mpt_split_count(size_t len, unsigned max_dgram);

/* The bytes of the message in piece i of k of a message of len bytes: every piece but the last
 * holds ceil(len / k), the last what remains (never zero for a count mpt_split_count gave). */
size_t mpt_split_piece_len(size_t len, unsigned k, unsigned i);

/* Writes piece i of k of the FLOW message msg_buf (len bytes, of flow `flow`), message id `msg`,
 * as an inner message at `inner`; returns its length (MPT_PIECE_HDR_LEN + mpt_split_piece_len). */
size_t mpt_split_write(uint8_t *inner, uint32_t flow, uint32_t msg, unsigned i, unsigned k,
                       const uint8_t *msg_buf, size_t len);

/* A new message id for a datagram about to be split (never 0). */
static inline uint32_t mpt_split_next_msg(struct mpt_split *sp)
{
    if (++sp->next_msg == 0)
        sp->next_msg = 1;
    return sp->next_msg;
}

/* A PIECE inner message m of n bytes, authenticated under session sid. Returns the length of the
 * FLOW message it completes, with *out set (valid until the next call on sp); 0 if the message is
 * not complete yet, or the piece was dropped (counted in sp->st). A rebuilt message is always a
 * FLOW message of the flow its pieces named. */
size_t mpt_split_add(struct mpt_split *sp, uint64_t now, uint64_t sid, const uint8_t *m, size_t n,
                     const uint8_t **out);

#endif
