#include "core/replay.h"

#include <string.h>

void mpt_window_init(struct mpt_window *w)
{
    memset(w, 0, sizeof(*w));
}

int mpt_window_check(const struct mpt_window *w, uint64_t counter)
{
    uint64_t word;

    if (counter == 0)
        return -1;
    if (counter > w->top)
        return 0;
    if (w->top - counter >= MPT_WINDOW_BITS)
        return -1;
    word = (counter >> 6) % MPT_WINDOW_WORDS;
    return (w->bits[word] >> (counter & 63)) & 1 ? -1 : 0;
}

int mpt_window_has(const struct mpt_window *w, uint64_t counter)
{
    if (counter == 0 || counter > w->top)
        return 0;
    if (w->top - counter >= MPT_WINDOW_BITS)
        return 1;
    return (int)((w->bits[(counter >> 6) % MPT_WINDOW_WORDS] >> (counter & 63)) & 1);
}

void mpt_window_update(struct mpt_window *w, uint64_t counter)
{
    uint64_t cur = w->top >> 6, next = counter >> 6;

    if (counter > w->top) {
        /* Clear the words the window slides over; at most the whole ring. */
        uint64_t steps = next - cur;
        if (steps > MPT_WINDOW_WORDS)
            steps = MPT_WINDOW_WORDS;
        for (uint64_t i = 1; i <= steps; i++)
            w->bits[(cur + i) % MPT_WINDOW_WORDS] = 0;
        w->top = counter;
    }
    w->bits[next % MPT_WINDOW_WORDS] |= 1ULL << (counter & 63);
}

void mpt_copies_reset(struct mpt_copies *r, uint64_t sid)
{
    memset(r->e, 0, sizeof(r->e));
    r->sid = sid;
}

static uint32_t copies_tag(const uint8_t *tag)
{
    return (uint32_t)tag[0] << 24 | (uint32_t)tag[1] << 16;
}

/* The ring holds no counter: an entry is written only for a counter less than MPT_COPIES_SLOTS
 * behind the top when it is accepted, so a slot is rewritten only by a counter at least that far
 * ahead, which puts the old one out of reach of mpt_copies_dup. */
void mpt_copies_accept(struct mpt_copies *r, const struct mpt_window *w, uint64_t counter,
                       const uint8_t *tag, unsigned path)
{
    if (w->top - counter >= MPT_COPIES_SLOTS || path >= MPT_COPIES_MAX_PATHS)
        return;
    r->e[counter % MPT_COPIES_SLOTS] = copies_tag(tag) | 1u << path;
}

int mpt_copies_dup(struct mpt_copies *r, const struct mpt_window *w, uint64_t counter,
                   const uint8_t *tag, unsigned path)
{
    uint32_t *e, bit = 1u << path;

    if (counter == 0 || counter > w->top || w->top - counter >= MPT_COPIES_SLOTS ||
        path >= MPT_COPIES_MAX_PATHS)
        return 0;
    e = &r->e[counter % MPT_COPIES_SLOTS];
    if ((*e & 0xffff0000u) != copies_tag(tag) || (*e & bit))
        return 0;
    *e |= bit;
    return 1;
}
