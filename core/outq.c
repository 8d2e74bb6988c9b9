#include "core/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int mpt_outq_init(struct mpt_outq *q, unsigned max, size_t cap)
{
    memset(q, 0, sizeof(*q));
    q->v = calloc(max, sizeof(*q->v));
    q->arena = malloc(cap);
    if (!q->v || !q->arena) {
        mpt_outq_free(q);
        return -ENOMEM;
    }
    q->max = max;
    q->cap = cap;
    return 0;
}

void mpt_outq_free(struct mpt_outq *q)
{
    if (!q)
        return;
    free(q->v);
    free(q->arena);
    memset(q, 0, sizeof(*q));
}

uint8_t *mpt_outq_alloc(struct mpt_outq *q, size_t len)
{
    size_t start = (q->used + 15) & ~(size_t)15;

    if (start > q->cap || q->cap - start < len)
        return NULL;
    q->used = start + len;
    return q->arena + start;
}

struct mpt_out *mpt_outq_push(struct mpt_outq *q, enum mpt_out_kind kind, const uint8_t *data,
                              size_t len, uint32_t index)
{
    struct mpt_out *o;

    if (q->n >= q->max)
        return NULL;
    o = &q->v[q->n++];
    memset(o, 0, sizeof(*o));
    o->kind = (uint16_t)kind;
    o->data = data;
    o->len = (uint32_t)len;
    o->index = index;
    return o;
}
