/* What a core endpoint asks its driver to do, in order: datagrams to send (one buffer may be
 * listed for several destinations: encrypt once, send on every path) and flow sockets to open. The
 * queue and its arena are allocated once; nothing is allocated per datagram. */
#ifndef MPT_OUTQ_H
#define MPT_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"

enum mpt_out_kind {
    MPT_OUT_PATH,      /* client: send on path `index`; server: send to `addr` (a path) */
    MPT_OUT_APP,       /* client: send to the local application at `addr` */
    MPT_OUT_FLOW,      /* server: send on flow socket `index` (to its target) */
    MPT_OUT_FLOW_OPEN, /* server: open a socket for flow `index` towards target `target`
                          (MPT_TARGET_NAMED: towards `addr`) */
    MPT_OUT_RESOLVE,   /* server: look up the host in `data` for flow `index`, port in `addr`,
                          and answer with mpt_server_on_resolved(..., `gen`) */
};

struct mpt_out {
    const uint8_t *data; /* into the arena; NULL for open/close */
    uint32_t len;
    uint16_t kind;
    uint16_t target;
    uint32_t index;
    uint32_t gen; /* MPT_OUT_RESOLVE: the lookup's number; client MPT_OUT_APP: the flow's id */
    struct mpt_addr addr;
    struct mpt_addr src; /* server, MPT_OUT_PATH: the local address to send from (family 0: any) */
};

struct mpt_outq {
    struct mpt_out *v;
    unsigned n, max;
    uint8_t *arena;
    size_t used, cap;
};

/* Room a single input may need: one datagram of the largest size plus small control messages,
 * or the same datagram as up to 64 pieces (their headers, tags and alignment) on up to 4 paths;
 * with fewer entries free, a datagram goes whole rather than in pieces (PROTOCOL.md §5). */
#define MPT_OUTQ_INPUT_BYTES (MPT_OUTQ_ONE_DGRAM + 8192)
#define MPT_OUTQ_ONE_DGRAM 65536
#define MPT_OUTQ_INPUT_ENTRIES 256

/* Allocates a queue of `max` entries and `cap` arena bytes. Returns 0 or -ENOMEM. */
int mpt_outq_init(struct mpt_outq *q, unsigned max, size_t cap);
void mpt_outq_free(struct mpt_outq *q);

/* Empties the queue (after the driver sent everything). */
static inline void mpt_outq_reset(struct mpt_outq *q)
{
    q->n = 0;
    q->used = 0;
}

/* 1 if the queue must be drained before the next input may be handed to core. */
static inline int mpt_outq_full(const struct mpt_outq *q)
{
    return q->cap - q->used < MPT_OUTQ_INPUT_BYTES || q->max - q->n < MPT_OUTQ_INPUT_ENTRIES;
}

/* Reserves len bytes of the arena (aligned to 16), or NULL if it is full. */
uint8_t *mpt_outq_alloc(struct mpt_outq *q, size_t len);

/* Appends an entry; returns it (zeroed but for the fields given) or NULL if full. */
struct mpt_out *mpt_outq_push(struct mpt_outq *q, enum mpt_out_kind kind, const uint8_t *data,
                              size_t len, uint32_t index);

#endif
