#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

struct mpt_log_state mpt_log_state = {MPT_LOGL_INFO, NULL, 0};

void mpt_logf(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (level > mpt_log_state.level || !mpt_log_state.sink)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mpt_log_state.sink(level, msg);
}
