/* Logging: lower layers format a message and hand it to the sink that cmd/ installed.
 * The level is the only global of the program; a message below it costs one comparison. */
#ifndef MPT_LOG_H
#define MPT_LOG_H

#include <stdint.h>

enum {
    MPT_LOGL_ERROR = 0,
    MPT_LOGL_WARN = 1,
    MPT_LOGL_INFO = 2,
    MPT_LOGL_DEBUG = 3,
};

typedef void (*mpt_log_sink_cb)(int level, const char *msg);

struct mpt_log_state {
    int level;            /* messages with level <= this are emitted */
    mpt_log_sink_cb sink; /* NULL: messages are dropped */
    int journal;          /* the sink writes to systemd's journal: "<N>" prefixes, no time */
};

extern struct mpt_log_state mpt_log_state;

/* 1 if messages at lvl are emitted: test it before preparing costly arguments. */
#define MPT_LOG_ON(lvl) ((lvl) <= mpt_log_state.level && mpt_log_state.sink)

/* Formats and emits one message (no trailing newline needed). */
void mpt_logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define MPT_LOG(lvl, ...)                                                                          \
    do {                                                                                           \
        if ((lvl) <= mpt_log_state.level && mpt_log_state.sink)                                    \
            mpt_logf((lvl), __VA_ARGS__);                                                          \
    } while (0)

/* 1 at most once per `period_us` (and the first time): *next keeps when it may be again. For
 * messages that traffic could otherwise repeat for every datagram. */
static inline int mpt_log_due(uint64_t *next, uint64_t now, uint64_t period_us)
{
    if (*next && now < *next)
        return 0;
    *next = now + period_us;
    return 1;
}

#define MPT_ERROR(...) MPT_LOG(MPT_LOGL_ERROR, __VA_ARGS__)
#define MPT_WARN(...) MPT_LOG(MPT_LOGL_WARN, __VA_ARGS__)
#define MPT_INFO(...) MPT_LOG(MPT_LOGL_INFO, __VA_ARGS__)
#define MPT_DEBUG(...) MPT_LOG(MPT_LOGL_DEBUG, __VA_ARGS__)

#endif
