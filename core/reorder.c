#include "core/reorder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EXTRA_HALF_US 4000000ULL /* the extra wait halves when nothing came late this long */
#define MAX_EXTRA_US 10000000ULL

int mpt_reorder_init(struct mpt_reorder *r, unsigned nq, unsigned nent)
{
    memset(r, 0, sizeof(*r));
    if (nq < 1 || nent < 1 || nent >= MPT_REORDER_NONE)
        return -EINVAL;
    r->q = calloc(nq, sizeof(*r->q));
    r->e = calloc(nent, sizeof(*r->e));
    r->buf = malloc((size_t)nent * MPT_REORDER_CHUNK);
    if (!r->q || !r->e || !r->buf) {
        mpt_reorder_free(r);
        return -ENOMEM;
    }
    r->nq = nq;
    r->nent = nent;
    for (unsigned i = 0; i < nent; i++) {
        r->e[i].next = i + 1 < nent ? i + 1 : MPT_REORDER_NONE;
        r->e[i].data = r->buf + (size_t)i * MPT_REORDER_CHUNK;
    }
    r->free = 0;
    r->popped = MPT_REORDER_NONE;
    for (unsigned i = 0; i < nq; i++)
        mpt_reorder_reset(r, i, 0);
    return 0;
}

void mpt_reorder_free(struct mpt_reorder *r)
{
    if (!r)
        return;
    free(r->q);
    free(r->e);
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

static void ent_free(struct mpt_reorder *r, uint32_t i)
{
    r->e[i].next = r->free;
    r->free = i;
    r->used--;
}

/* The entry mpt_reorder_pop handed out last is the caller's no more. */
static void release_popped(struct mpt_reorder *r)
{
    if (r->popped != MPT_REORDER_NONE) {
        ent_free(r, r->popped);
        r->popped = MPT_REORDER_NONE;
    }
}

static void unlink_ent(struct mpt_reorder_q *q, struct mpt_reorder *r, uint32_t i)
{
    struct mpt_reorder_ent *e = &r->e[i];

    if (e->prev != MPT_REORDER_NONE)
        r->e[e->prev].next = e->next;
    else
        q->head = e->next;
    if (e->next != MPT_REORDER_NONE)
        r->e[e->next].prev = e->prev;
    else
        q->tail = e->prev;
    q->n--;
}

void mpt_reorder_reset(struct mpt_reorder *r, unsigned qi, uint64_t sid)
{
    struct mpt_reorder_q *q;

    if (qi >= r->nq)
        return;
    q = &r->q[qi];
    release_popped(r);
    while (q->n) {
        uint32_t i = q->head;
        unlink_ent(q, r, i);
        ent_free(r, i);
    }
    memset(q, 0, sizeof(*q));
    q->sid = sid;
    q->next = 1;
    q->head = q->tail = MPT_REORDER_NONE;
}

/* Moves q->next over the counters that arrived (delivered, or no flow data) up to `limit`. */
static void skip_seen(struct mpt_reorder_q *q, const struct mpt_window *w, uint64_t limit)
{
    if (w->top > MPT_WINDOW_BITS && q->next < w->top - MPT_WINDOW_BITS)
        q->next = w->top - MPT_WINDOW_BITS; /* too old to tell: as good as arrived */
    while (q->next < limit && mpt_window_has(w, q->next))
        q->next++;
}

enum mpt_reorder_verdict mpt_reorder_arrive(struct mpt_reorder *r, unsigned qi,
                                            const struct mpt_window *w, uint64_t ctr, uint64_t now,
                                            uint64_t wait_us, const uint8_t *data, size_t len,
                                            uint32_t tag, uint32_t tag2)
{
    struct mpt_reorder_q *q = &r->q[qi];
    struct mpt_reorder_ent *e;
    uint32_t i, at;

    release_popped(r);
    if (ctr < q->next) {
        /* Its gap was given up: better late than never, and the waits are too short: by at least
         * how late it came, if its gap is among the last given up. */
        uint64_t late = 0;
        r->st.late++;
        for (unsigned g = 0; g < MPT_REORDER_GIVEN; g++)
            if (ctr >= q->given[g].from && ctr < q->given[g].to && now >= q->given[g].at_us)
                late = now - q->given[g].at_us;
        q->extra_us += q->extra_us / 2 + 2000;
        if (q->extra_us < late + late / 4 + 1000)
            q->extra_us = late + late / 4 + 1000;
        if (q->extra_us > MAX_EXTRA_US)
            q->extra_us = MAX_EXTRA_US;
        q->extra_at_us = now;
        return MPT_REORDER_NOW;
    }
    if (q->extra_us && now - q->extra_at_us >= EXTRA_HALF_US) {
        q->extra_us /= 2; /* nothing came late for a while */
        q->extra_at_us = now;
    }
    /* Nothing held before it: its turn if every counter before it arrived. */
    if (!q->n || ctr < r->e[q->head].ctr) {
        skip_seen(q, w, ctr);
        if (q->next == ctr) {
            q->next = ctr + 1;
            return MPT_REORDER_NOW;
        }
    }
    if (len > MPT_REORDER_CHUNK || r->free == MPT_REORDER_NONE) {
        r->st.overflow++;
        return MPT_REORDER_NOW;
    }
    i = r->free;
    e = &r->e[i];
    r->free = e->next;
    r->used++;
    e->ctr = ctr;
    e->deadline_us = now + wait_us;
    e->len = (uint32_t)len;
    e->tag = tag;
    e->tag2 = tag2;
    memcpy((uint8_t *)(uintptr_t)e->data, data, len);
    /* In counter order; most come after the last held, so look from the tail. */
    at = q->tail;
    while (at != MPT_REORDER_NONE && r->e[at].ctr > ctr)
        at = r->e[at].prev;
    e->prev = at;
    e->next = at == MPT_REORDER_NONE ? q->head : r->e[at].next;
    if (e->prev != MPT_REORDER_NONE)
        r->e[e->prev].next = i;
    else
        q->head = i;
    if (e->next != MPT_REORDER_NONE)
        r->e[e->next].prev = i;
    else
        q->tail = i;
    q->n++;
    r->st.held++;
    return MPT_REORDER_HELD;
}

const struct mpt_reorder_ent *mpt_reorder_pop(struct mpt_reorder *r, unsigned qi,
                                              const struct mpt_window *w, uint64_t now, int flush)
{
    struct mpt_reorder_q *q = &r->q[qi];

    release_popped(r);
    while (q->n) {
        uint32_t i = q->head;
        struct mpt_reorder_ent *e = &r->e[i];
        skip_seen(q, w, e->ctr);
        if (q->next >= e->ctr) {
            unlink_ent(q, r, i);
            q->next = e->ctr + 1;
            r->popped = i;
            return e;
        }
        if (!flush && now < e->deadline_us)
            return NULL;
        /* Waited long enough: what is missing before it is lost, or later than worth waiting. */
        r->st.gaps++;
        q->given[q->given_next].from = q->next;
        q->given[q->given_next].to = e->ctr;
        q->given[q->given_next].at_us = now;
        q->given_next = (q->given_next + 1) % MPT_REORDER_GIVEN;
        q->next = e->ctr;
    }
    return NULL;
}

uint64_t mpt_reorder_deadline(const struct mpt_reorder *r, unsigned qi)
{
    const struct mpt_reorder_q *q = &r->q[qi];

    return q->n ? r->e[q->head].deadline_us : UINT64_MAX;
}

uint64_t mpt_reorder_wait(const uint64_t *srtt_us, uint32_t mask, unsigned n, unsigned path,
                          uint64_t extra_us, uint64_t cap_us)
{
    uint64_t lo = UINT64_MAX, hi = 0, own, g;

    for (unsigned i = 0; i < n; i++) {
        if (!(mask & (1u << i)) || !srtt_us[i])
            continue;
        if (srtt_us[i] < lo)
            lo = srtt_us[i];
        if (srtt_us[i] > hi)
            hi = srtt_us[i];
    }
    /* A path not measured (or not among them) counts as the fastest: the longest wait. */
    own = path < n && (mask & (1u << path)) && srtt_us[path] ? srtt_us[path] : lo;
    g = hi > own ? (hi - own) / 2 : 0;
    g += extra_us + MPT_REORDER_MARGIN_US;
    return g < cap_us ? g : cap_us;
}
