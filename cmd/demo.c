#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "net/demo.h"
#include "net/loop.h"

void mpt_usage_demo(FILE *out)
{
    fprintf(out, "Usage: mptunnel demo [--paths N] [--loss P] [--delay MS] [--jitter MS]\n"
                 "                     [--rate PPS] [--size BYTES] [--duration SEC] [--seed N]\n"
                 "                     [--kill-path SEC] [--mode MODE] [-v] [-q]\n"
                 "\n"
                 "Runs the whole tunnel in one process on 127.0.0.1: an echo target, the server,\n"
                 "N bridges that lose datagrams at random, the client, and a traffic generator.\n"
                 "Prints every second the loss end to end (over the last settled second and in\n"
                 "total) and each path's (at its bridge, last second and total), a line when the\n"
                 "client takes a path for down or alive again, and a summary at the end or on\n"
                 "Ctrl-C.\n"
                 "\n"
                 "Options:\n"
                 "  --paths N        number of paths (bridges), 1-8 (default 3)\n"
                 "  --loss P         loss of every path in each direction, 0-1 or a percentage\n"
                 "                   such as 20%% (default 0.2)\n"
                 "  --delay MS       one-way delay added by every bridge (default 5)\n"
                 "  --jitter MS      delay variation, uniform +-MS (default 1)\n"
                 "  --rate PPS       datagrams per second (default 1000)\n"
                 "  --size BYTES     datagram size, 20-65000 (default 1000)\n"
                 "  --duration SEC   how long to send (default 10; 0 = until Ctrl-C)\n"
                 "  --seed N         seed of the bridges' loss (default 1)\n"
                 "  --kill-path SEC  black out path 1 at SEC for 3 s, to watch the tunnel ride\n"
                 "                   it out\n"
                 "  --mode MODE      the client's mode: redundant (default), adaptive, backup,\n"
                 "                   balance or fec; the summary tells the bytes it spent\n"
                 "  -v, -q           more or less log output (default: warnings only)\n"
                 "\n"
                 "With independent loss p on each of N paths, a datagram is lost one way only if\n"
                 "every copy is: about p^N. Exit status 1 if any datagram arrived twice or\n"
                 "altered.\n");
}

static int parse_double(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x;

    errno = 0;
    x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        mpt_cmd_error("demo", "invalid value `%s' for %s (expected %g to %g)", v, opt, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* A probability: 0-1, or a percentage such as 20%. */
static int parse_prob(const char *opt, const char *v, double *out)
{
    size_t n = strlen(v);
    char num[64];
    double x;

    if (n > 1 && n < sizeof(num) && v[n - 1] == '%') {
        memcpy(num, v, n - 1);
        num[n - 1] = '\0';
        if (parse_double(opt, num, 0, 100, &x) != 0)
            return -1;
        *out = x / 100;
        return 0;
    }
    return parse_double(opt, v, 0, 1, out);
}

static int parse_mode(const char *v, unsigned *out)
{
    for (int m = MPT_MODE_REDUNDANT; m <= MPT_MODE_FEC; m++)
        if (strcmp(v, mpt_mode_name((enum mpt_sched_mode)m)) == 0) {
            *out = (unsigned)m;
            return 0;
        }
    mpt_cmd_error("demo",
                  "invalid mode `%s' (expected redundant, adaptive, backup, balance or fec)", v);
    return -1;
}

static void print_header(const struct mpt_demo_report *r)
{
    printf("\n%6s %8s %17s %17s", "", "", "end-to-end loss", "round-trip loss");
    for (unsigned i = 0; i < r->npaths; i++)
        printf(" | %-6s %23s %7s", "", "loss at the bridge, %", "");
    printf("\n%6s %8s %8s %8s %8s %8s", "time", "sent", "last s", "total", "last s", "total");
    for (unsigned i = 0; i < r->npaths; i++) {
        char name[16];
        snprintf(name, sizeof(name), "path %u", i + 1);
        printf(" | %-6s %11s %11s %7s", name, "-> s/total", "<- s/total", "rtt");
    }
    printf("\n");
}

/* What the report callback needs between calls. */
struct demo_ctx {
    struct mpt_demo_options o;
    unsigned rows;
    int finished;
    uint64_t duplicates, corrupted;
};

static void on_event(const struct mpt_demo_event *e, void *arg)
{
    char name[MPT_PATH_NAME_MAX + 4] = "";

    if (e->label && e->label[0])
        snprintf(name, sizeof(name), " (%s)", e->label);
    switch (e->kind) {
    case MPT_DEMO_BLACKOUT:
        printf("%5.1fs path %u%s blacked out by the demo\n", e->at_s, e->path + 1, name);
        break;
    case MPT_DEMO_RESTORED:
        printf("%5.1fs path %u%s: blackout over after %.1f s\n", e->at_s, e->path + 1, name,
               e->after_s);
        break;
    case MPT_DEMO_PATH_DOWN:
        if (e->after_s >= 0)
            printf("%5.1fs path %u%s down: the client noticed %.2f s into the blackout\n", e->at_s,
                   e->path + 1, name, e->after_s);
        else
            printf("%5.1fs path %u%s down\n", e->at_s, e->path + 1, name);
        break;
    case MPT_DEMO_PATH_UP:
        if (e->after_s >= 0)
            printf("%5.1fs path %u%s up again after %.1f s down\n", e->at_s, e->path + 1, name,
                   e->after_s);
        else
            printf("%5.1fs path %u%s up again\n", e->at_s, e->path + 1, name);
        break;
    }
    fflush(stdout);
}

static void on_report(const struct mpt_demo_report *r, void *arg)
{
    struct demo_ctx *ctx = arg;
    const struct mpt_demo_options *o = &ctx->o;

    if (r->final) {
        ctx->finished = 1;
        ctx->duplicates = r->duplicates;
        ctx->corrupted = r->corrupted;
    }
    if (r->final) {
        double p_rt = 1.0 - (1.0 - o->loss) * (1.0 - o->loss);
        double expect = 1.0 - pow(1.0 - pow(o->loss, o->paths), 2);
        printf("\nSummary after %.1f s%s: %llu datagrams sent, %llu reached the target, %llu came "
               "back.\n",
               r->elapsed_s, r->interrupted ? " (interrupted)" : "", (unsigned long long)r->sent,
               (unsigned long long)r->at_target, (unsigned long long)r->delivered);
        if (r->interrupted)
            printf("  the last %llu datagrams, sent too recently to tell, are left out of the "
                   "loss figures.\n",
                   (unsigned long long)r->in_flight);
        printf("  end-to-end loss: one way %.3f%%, round trip %.3f%%\n", 100 * r->loss_fwd,
               100 * r->loss_rt);
        printf("  one path alone would lose %.1f%% one way and %.1f%% round trip;\n", 100 * o->loss,
               100 * p_rt);
        printf("  %u independent paths: expected about %.3f%% one way, %.3f%% round trip.\n",
               o->paths, 100 * pow(o->loss, o->paths), 100 * expect);
        for (unsigned i = 0; i < r->npaths; i++)
            printf("  path %u (%s) lost %.1f%% -> and %.1f%% <- at its bridge\n", i + 1,
                   r->paths[i].label, 100 * r->paths[i].loss_to, 100 * r->paths[i].loss_back);
        printf("  duplicates delivered: %llu, corrupted: %llu, sessions: %u, round-trip time p50 "
               "%.2f ms, p99 %.2f ms\n",
               (unsigned long long)r->duplicates, (unsigned long long)r->corrupted, r->sessions,
               r->rtt_p50_ms, r->rtt_p99_ms);
        printf("  mode %s: the client sent %.3f bytes on its paths per byte of payload (probes and "
               "headers included)",
               mpt_mode_name((enum mpt_sched_mode)o->mode), r->wire_up);
        if (o->mode == MPT_MODE_FEC)
            printf("; replies rebuilt from repairs %llu, given up %llu",
                   (unsigned long long)r->fec_recovered, (unsigned long long)r->fec_given_up);
        printf("\n");
        fflush(stdout);
        return;
    }
    if (ctx->rows++ % 20 == 0)
        print_header(r);
    printf("%5.0fs %8llu", r->elapsed_s, (unsigned long long)r->sent);
    if (r->have_1s)
        printf(" %7.2f%% %7.2f%% %7.2f%% %7.2f%%", 100 * r->loss_fwd_1s, 100 * r->loss_fwd,
               100 * r->loss_rt_1s, 100 * r->loss_rt);
    else
        printf(" %8s %8s %8s %8s", "-", "-", "-", "-");
    for (unsigned i = 0; i < r->npaths; i++) {
        const struct mpt_demo_path *p = &r->paths[i];
        printf(" | %-6s %5.1f/%-5.1f %5.1f/%-5.1f %5.1fms",
               p->down ? "DOWN"
               : p->up ? "up"
                       : "...",
               100 * p->loss_to_1s, 100 * p->loss_to, 100 * p->loss_back_1s, 100 * p->loss_back,
               p->rtt_ms);
    }
    printf("\n");
    fflush(stdout);
}

int mpt_cmd_demo(int argc, char **argv)
{
    struct demo_ctx ctx = {.o = {.paths = 3,
                                 .loss = 0.2,
                                 .delay_ms = 5,
                                 .jitter_ms = 1,
                                 .rate = 1000,
                                 .size = 1000,
                                 .duration_ms = 10000,
                                 .seed = 1,
                                 .kill_path_ms = 0,
                                 .on_event = on_event,
                                 .mode = 0}};
    struct mpt_demo_options *o = &ctx.o;
    struct mpt_demo *demo;
    struct mpt_loop *loop;
    char err[256];
    int verbosity = 0, rc, status = MPT_EXIT_OK;
    double v;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbosity++;
            continue;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            verbosity--;
            continue;
        }
        if (!val || a[0] != '-') {
            mpt_cmd_error("demo", a[0] == '-' ? "option `%s' needs a value" : "unexpected `%s'", a);
            return MPT_EXIT_USAGE;
        }
        i++;
        if (strcmp(a, "--paths") == 0 && parse_double(a, val, 1, MPT_DEMO_MAX_PATHS, &v) == 0)
            o->paths = (unsigned)v;
        else if (strcmp(a, "--loss") == 0 && parse_prob(a, val, &v) == 0)
            o->loss = v;
        else if (strcmp(a, "--delay") == 0 && parse_double(a, val, 0, 10000, &v) == 0)
            o->delay_ms = (uint32_t)v;
        else if (strcmp(a, "--jitter") == 0 && parse_double(a, val, 0, 10000, &v) == 0)
            o->jitter_ms = (uint32_t)v;
        else if (strcmp(a, "--rate") == 0 && parse_double(a, val, 1, 1000000, &v) == 0)
            o->rate = (unsigned)v;
        else if (strcmp(a, "--size") == 0 && parse_double(a, val, 20, 65000, &v) == 0)
            o->size = (unsigned)v;
        else if (strcmp(a, "--duration") == 0 && parse_double(a, val, 0, 86400, &v) == 0)
            o->duration_ms = (uint32_t)(v * 1000);
        else if (strcmp(a, "--seed") == 0 && parse_double(a, val, 0, 1e15, &v) == 0)
            o->seed = (uint64_t)v;
        else if (strcmp(a, "--kill-path") == 0 && parse_double(a, val, 0, 86400, &v) == 0)
            o->kill_path_ms = (uint32_t)(v * 1000);
        else if (strcmp(a, "--mode") == 0 && parse_mode(val, &o->mode) == 0)
            ;
        else {
            if (strncmp(a, "--", 2) == 0 &&
                strstr(" --paths --loss --delay --jitter --rate --size --duration --seed "
                       "--kill-path --mode ",
                       a) == NULL)
                mpt_cmd_error("demo", "unknown option `%s'", a);
            fprintf(stderr, "Try `mptunnel demo --help'.\n");
            return MPT_EXIT_USAGE;
        }
    }
    mpt_cmd_log_init(MPT_LOGL_WARN + verbosity < 0 ? 0 : MPT_LOGL_WARN + verbosity);
    rc = mpt_loop_new(&loop);
    if (rc) {
        mpt_cmd_error("demo", "cannot create the event loop: %s", mpt_strerror(rc));
        return MPT_EXIT_FAIL;
    }
    printf("mptunnel demo: %u path%s on 127.0.0.1, each losing %.1f%% each way (delay %u ms, "
           "jitter %u ms, seed %llu);\n%u datagrams/s of %u bytes for %s. Ctrl-C stops.\n",
           o->paths, o->paths == 1 ? "" : "s", 100 * o->loss, o->delay_ms, o->jitter_ms,
           (unsigned long long)o->seed, o->rate, o->size, o->duration_ms ? "the duration" : "ever");
    printf("The paths' live state, from another terminal: mptunnel status --demo --watch\n");
    rc = mpt_demo_start(loop, o, on_report, &ctx, &demo, err, sizeof(err));
    if (rc) {
        mpt_cmd_error("demo", "%s", err);
        status = MPT_EXIT_FAIL;
    }
    if (mpt_loop_run(loop) != 0)
        status = MPT_EXIT_FAIL;
    if (mpt_loop_free(loop) != 0) {
        mpt_cmd_error("demo", "event loop did not close cleanly");
        status = MPT_EXIT_FAIL;
    }
    if (status == MPT_EXIT_OK && ctx.finished && (ctx.duplicates || ctx.corrupted))
        status = MPT_EXIT_FAIL;
    return status;
}
