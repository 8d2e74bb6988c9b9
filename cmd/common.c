#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cmd/cmd.h"
#include "core/log.h"

static void on_log(int level, const char *msg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    struct timeval tv;
    struct tm tm;
    char ts[32];

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s.%03d %s: %s\n", ts, (int)(tv.tv_usec / 1000),
            names[level < 0   ? 0
                  : level > 3 ? 3
                              : level],
            msg);
}

void mpt_cmd_log_init(int level)
{
    mpt_log_state.level = level;
    mpt_log_state.sink = on_log;
}

int mpt_cmd_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

void mpt_cmd_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mptunnel %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
