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
                                            uint64_t wait_us, uint64_t hold_us, const uint8_t *data,
                                            size_t len, uint32_t tag, uint32_t tag2)
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
        if (q->next == ctr && !hold_us) {
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
    e->ready_us = now + hold_us;
    e->deadline_us = now + (wait_us > hold_us ? wait_us : hold_us);
    if (!q->n || e->ready_us < q->due_us)
        q->due_us = e->ready_us; /* at the latest: mpt_reorder_pop tells exactly */
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
            if (!flush && now < e->ready_us) {
                q->due_us = e->ready_us;
                return NULL;
            }
            unlink_ent(q, r, i);
            q->next = e->ctr + 1;
            r->popped = i;
            return e;
        }
        if (!flush && now < e->deadline_us) {
            q->due_us = e->deadline_us;
            return NULL;
        }
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

    return q->n ? q->due_us : UINT64_MAX;
}

void mpt_owd_reset(struct mpt_owd *o)
{
    memset(o, 0, sizeof(*o));
}

void mpt_owd_add(struct mpt_owd *o, uint64_t now_us, uint64_t sent_us)
{
    /* The clocks' offset may be anything: the difference is taken modulo 2^64 and read as
     * signed, which is exact while the two clocks are within 2^63 us of each other. */
    int64_t d = (int64_t)(now_us - sent_us);

    o->s[o->next] = d;
    o->next = (o->next + 1) % MPT_OWD_SAMPLES;
    if (!o->n || d <= o->min || now_us - o->min_at_us >= MPT_OWD_MIN_US) {
        o->min = d;
        o->min_at_us = now_us;
    }
    if (o->n < MPT_OWD_SAMPLES)
        o->n++;
}

uint32_t mpt_reorder_delays(const struct mpt_owd *const *owd, const uint64_t *srtt_us,
                            uint32_t mask, unsigned n, int64_t *hi, int64_t *lo, int64_t *base)
{
    uint32_t known = 0;
    int one_way = mask != 0;

    for (unsigned i = 0; i < n; i++)
        if ((mask & (1u << i)) && (!owd[i] || !owd[i]->n))
            one_way = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (one_way) {
            hi[i] = lo[i] = owd[i]->s[0];
            for (unsigned k = 1; k < owd[i]->n; k++) {
                if (owd[i]->s[k] > hi[i])
                    hi[i] = owd[i]->s[k];
                if (owd[i]->s[k] < lo[i])
                    lo[i] = owd[i]->s[k];
            }
            base[i] = owd[i]->min < lo[i] ? owd[i]->min : lo[i];
        } else if (srtt_us[i]) {
            hi[i] = lo[i] = base[i] = (int64_t)(srtt_us[i] / 2);
        } else {
            continue;
        }
        known |= 1u << i;
    }
    return known;
}

uint64_t mpt_reorder_wait(const int64_t *hi, const int64_t *lo, uint32_t known, unsigned n,
                          unsigned path, uint64_t extra_us, uint64_t cap_us)
{
    int64_t top = INT64_MIN, own = INT64_MAX;
    uint64_t g = 0;

    for (unsigned i = 0; i < n; i++) {
        if (!(known & (1u << i)))
            continue;
        if (hi[i] > top)
            top = hi[i];
        if (lo[i] < own)
            own = lo[i];
    }
    /* A path with no figure (or not among them) counts as the fastest: the longest wait. */
    if (path < n && (known & (1u << path)))
        own = lo[path];
    if (known && top > own)
        g = (uint64_t)(top - own);
    g += extra_us + MPT_REORDER_MARGIN_US;
    return g < cap_us ? g : cap_us;
}

uint64_t mpt_reorder_hold(const int64_t *base, uint32_t known, unsigned n, unsigned path,
                          uint64_t cap_us)
{
    int64_t top = INT64_MIN;
    uint64_t g;

    if (path >= n || !(known & (1u << path)))
        return 0;
    for (unsigned i = 0; i < n; i++)
        if ((known & (1u << i)) && base[i] > top)
            top = base[i];
    g = top > base[path] ? (uint64_t)(top - base[path]) : 0;
    return g < cap_us ? g : cap_us;
}

uint64_t mpt_reorder_times(const struct mpt_owd *const *owd, const uint64_t *srtt_us, uint32_t mask,
                           unsigned n, unsigned path, uint64_t extra_us, uint64_t cap_us,
                           uint64_t *hold_us)
{
    int64_t hi[32], lo[32], base[32];
    uint32_t known;

    if (n > 32)
        n = 32;
    known = mpt_reorder_delays(owd, srtt_us, mask, n, hi, lo, base);
    *hold_us = mpt_reorder_hold(base, known, n, path, cap_us);
    return mpt_reorder_wait(hi, lo, known, n, path, extra_us, cap_us);
}
