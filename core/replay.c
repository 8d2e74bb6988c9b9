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
