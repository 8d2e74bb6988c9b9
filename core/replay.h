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

/* 1 if counter was recorded, or is too old for the window to tell (more than MPT_WINDOW_BITS
 * behind the highest); 0 if it has not arrived (or is above the highest, or is 0). */
int mpt_window_has(const struct mpt_window *w, uint64_t counter);

/* Records counter as seen; call only after the datagram authenticated. */
void mpt_window_update(struct mpt_window *w, uint64_t counter);

/* Which paths delivered the most recent accepted counters of one window, for honest per-path
 * counts of copies received (PROTOCOL.md §5 "copies received", §6): a copy counts on a path if it
 * is the first accepted copy, or a duplicate that carries the accepted copy's first tag bytes and
 * that path has not delivered yet. Stale re-sends, copies older than the ring and forgeries count
 * nothing, and no duplicate costs any crypto work. An entry is 16 tag bits and a 16-bit mask of
 * paths, kept for the counters less than MPT_COPIES_SLOTS behind the window's top: 16 KiB. */
#define MPT_COPIES_SLOTS 4096
#define MPT_COPIES_MAX_PATHS 16

struct mpt_copies {
    uint64_t sid;                 /* the session (keys) whose window it follows; 0 = none */
    uint32_t e[MPT_COPIES_SLOTS]; /* tag bits << 16 | mask of paths */
};

/* Empties the ring and gives it to the keys of session `sid`. */
void mpt_copies_reset(struct mpt_copies *r, uint64_t sid);

/* A datagram with `counter` and `tag` (its first two tag bytes are kept) authenticated and was
 * recorded in w (mpt_window_update done); its copy came on `path` (< MPT_COPIES_MAX_PATHS). */
void mpt_copies_accept(struct mpt_copies *r, const struct mpt_window *w, uint64_t counter,
                       const uint8_t *tag, unsigned path);

/* A duplicate (mpt_window_check refused it, the counter being recorded): returns 1, and notes the
 * path, if the copy counts as received on `path` — the accepted copy's tag bits, and the first
 * copy of that counter on that path; else 0. */
int mpt_copies_dup(struct mpt_copies *r, const struct mpt_window *w, uint64_t counter,
                   const uint8_t *tag, unsigned path);

#endif
