/* The sliding window that serves both anti-replay and de-duplication of multipath copies
 * (PROTOCOL.md §6). Fixed size: MPT_WINDOW_BITS counters behind the highest seen. */
#ifndef MPT_REPLAY_H
#define MPT_REPLAY_H

#include <stdint.h>

#define MPT_WINDOW_WORDS 1025 /* one word more than the window, for the ring */
#define MPT_WINDOW_BITS ((MPT_WINDOW_WORDS - 1) * 64) /* 65536 */

struct mpt_window {
    uint64_t top; /* highest counter accepted; 0 = none yet (counters start at 1) */
    uint64_t bits[MPT_WINDOW_WORDS];
};

void mpt_window_init(struct mpt_window *w);

/* Read-only check before any crypto work: 0 if counter may be new, -1 if it is 0, a duplicate,
 * or too old (more than MPT_WINDOW_BITS behind the highest). */
int mpt_window_check(const struct mpt_window *w, uint64_t counter);

/* Records counter as seen; call only after the datagram authenticated. */
void mpt_window_update(struct mpt_window *w, uint64_t counter);

#endif
