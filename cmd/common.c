#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/log.h"

static void on_log(int level, const char *msg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const int prio[] = {3, 4, 6, 7}; /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
    int l = level < 0 ? 0 : level > 3 ? 3 : level;
    struct timeval tv;
    struct tm tm;
    char ts[32];

    /* Under systemd the journal stamps each line itself and reads the priority from the prefix. */
    if (mpt_log_state.journal) {
        fprintf(stderr, "<%d>%s\n", prio[l], msg);
        return;
    }
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s.%03d %s: %s\n", ts, (int)(tv.tv_usec / 1000), names[l], msg);
}

/* 1 if stderr is the stream JOURNAL_STREAM ("DEVICE:INODE") names, as sd_journal_stream_fd(3)
 * and systemd.exec(5) describe: a child whose stderr was redirected does not qualify. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char tail;

    if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void mpt_cmd_log_init(int level)
{
    mpt_log_state.level = level;
    mpt_log_state.sink = on_log;
    mpt_log_state.journal = stderr_is_journal();
}

int mpt_cmd_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

void mpt_cmd_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    /* Under systemd an error is an error in the journal too, even before logging starts. */
    fprintf(stderr, "%smptunnel %s: ", stderr_is_journal() ? "<3>" : "", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
