/* mptunnel bridge: a plain UDP relay with seeded test impairments (net/bridge.h). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "config/config.h"
#include "core/log.h"
#include "net/bridge.h"
#include "net/notify.h"
#include "net/resolve.h"

#define CMD "bridge"
#define MAX_DELAY_MS 600000.0 /* ten minutes */
#define MAX_IDLE_S 86400.0
#define MAX_PEERS 1000000
#define MAX_BUF (1u << 30)

void mpt_usage_bridge(FILE *out)
{
    fprintf(out,
            "Usage: mptunnel bridge --listen [ADDR:]PORT --to HOST:PORT [options]\n"
            "\n"
            "Relays UDP datagrams from --listen to --to and the replies back, knowing nothing\n"
            "of what they carry: a path of the tunnel, or any UDP service's relay. Each source\n"
            "address seen on --listen (a peer) gets a socket of its own towards --to, so the\n"
            "destination tells peers apart and every peer gets its own replies. Without\n"
            "impairment options the bridge only forwards.\n"
            "\n"
            "Addresses:\n"
            "  --listen [ADDR:]PORT   where peers send; PORT alone = all addresses (IPv4 and\n"
            "                         IPv6); IPv6 as [ADDR]:PORT\n"
            "  --to HOST:PORT         where datagrams go; host names are resolved at start\n"
            "\n"
            "Impairments (for tests; each applies to both directions):\n"
            "  --loss P               drop a datagram with probability P (0..1, or 20%%)\n"
            "  --delay MS             hold every datagram MS milliseconds (decimals allowed)\n"
            "  --jitter MS            add a delay drawn uniformly from -MS..+MS (never below 0);\n"
            "                         jitter keeps the order of datagrams, as a queue does\n"
            "  --duplicate P          send a second copy with probability P\n"
            "  --reorder P            hold a datagram back 10 ms more with probability P, so\n"
            "                         that the ones after it overtake it\n"
            "  --corrupt P            flip 1 to 3 random bits of a copy with probability P\n"
            "  --seed N               seed of the pseudo-random draws (default: random, logged);\n"
            "                         the same seed and traffic give the same impairments\n"
            "  --loss-to P, --loss-back P, --delay-to MS, --delay-back MS, and so on for\n"
            "  jitter, duplicate, reorder and corrupt: one direction only, overriding the\n"
            "  option above (-to = towards --to, -back = back to the peers)\n"
            "\n"
            "Limits:\n"
            "  --idle-timeout SEC     forget a peer silent both ways this long (default 60)\n"
            "  --max-peers N          peers at once (default 1024). Datagrams from a new\n"
            "                         address beyond that are dropped and counted; active\n"
            "                         peers are never evicted\n"
            "  Delayed datagrams wait in a queue of at most 65536 datagrams and 64 MiB;\n"
            "  what does not fit is dropped and counted.\n"
            "\n"
            "Other options:\n"
            "  --record FILE          append every datagram sent towards --to to FILE as\n"
            "                         [u32 big-endian length][bytes], up to 64 MiB in all\n"
            "  --sndbuf SIZE          socket send buffer (4M, 512K, 65536; default: system's)\n"
            "  --rcvbuf SIZE          socket receive buffer\n"
            "  -v, --verbose          debug messages (one per new or forgotten peer)\n"
            "  -q, --quiet            warnings and errors only\n"
            "  -h, --help             this text\n"
            "\n"
            "Signals:\n"
            "  SIGUSR1                blackout: drop everything, both ways, until SIGUSR2\n"
            "  SIGUSR2                end the blackout\n"
            "  SIGINT, SIGTERM        stop; a summary per direction is logged (received,\n"
            "                         forwarded, dropped, duplicated, reordered, corrupted)\n"
            "\n"
            "Exit status: 0 after SIGINT/SIGTERM, 1 runtime failure (such as an address in\n"
            "use), 2 usage error.\n"
            "\n"
            "Example: a path losing 20%% each way with 30 ms +- 5 ms of delay:\n"
            "  mptunnel bridge --listen 4000 --to server.example.com:2000 \\\n"
            "      --loss 0.2 --delay 30 --jitter 5 --seed 1\n");
}

enum { K_LOSS, K_DELAY, K_JITTER, K_DUPLICATE, K_REORDER, K_CORRUPT, K_N };

static const char *const kind_name[K_N] = {"loss",      "delay",   "jitter",
                                           "duplicate", "reorder", "corrupt"};

/* An impairment value as given: [kind][0 = both, 1 = to, 2 = back]. */
struct impair_args {
    double v[K_N][3];
    int set[K_N][3];
};

static int is_ms_kind(int k)
{
    return k == K_DELAY || k == K_JITTER;
}

/* A decimal number, nothing after it but `suffix` (may be NULL). */
static int parse_double(double *out, const char *s, const char *suffix)
{
    char *end;

    if (!*s || *s == ' ' || *s == '\t')
        return -1;
    errno = 0;
    *out = strtod(s, &end);
    if (errno || end == s || !isfinite(*out))
        return -1;
    if (*end && !(suffix && strcmp(end, suffix) == 0))
        return -1;
    return 0;
}

static int parse_prob(double *p, const char *s)
{
    size_t n = strlen(s);

    if (n > 1 && s[n - 1] == '%') {
        if (parse_double(p, s, "%") != 0)
            return -1;
        *p /= 100.0;
    } else if (parse_double(p, s, NULL) != 0) {
        return -1;
    }
    return *p >= 0.0 && *p <= 1.0 ? 0 : -1;
}

static int parse_ms(double *ms, const char *s)
{
    if (parse_double(ms, s, "ms") != 0)
        return -1;
    return *ms >= 0.0 && *ms <= MAX_DELAY_MS ? 0 : -1;
}

static int parse_u64(uint64_t *v, const char *s)
{
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *v = strtoull(s, &end, 0);
    return errno || *end ? -1 : 0;
}

/* "4M", "512K", "1G", "65536": bytes, binary multiples. */
static int parse_size(uint32_t *bytes, const char *s)
{
    uint64_t v, mult = 1;
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    if (*end) {
        switch (*end) {
        case 'k':
        case 'K':
            mult = 1u << 10;
            break;
        case 'm':
        case 'M':
            mult = 1u << 20;
            break;
        case 'g':
        case 'G':
            mult = 1u << 30;
            break;
        default:
            return -1;
        }
        if (end[1])
            return -1;
    }
    if (v > MAX_BUF / mult)
        return -1;
    *bytes = (uint32_t)(v * mult);
    return 0;
}

/* Fills p for one direction (1 = to, 2 = back) from the values given. */
static void impair_params(struct mpt_impair_params *p, const struct impair_args *ia, int which)
{
    double v[K_N];

    for (int k = 0; k < K_N; k++)
        v[k] = ia->set[k][which] ? ia->v[k][which] : ia->set[k][0] ? ia->v[k][0] : 0.0;
    memset(p, 0, sizeof(*p));
    p->loss = v[K_LOSS];
    p->duplicate = v[K_DUPLICATE];
    p->reorder = v[K_REORDER];
    p->corrupt = v[K_CORRUPT];
    p->delay_us = (uint32_t)lround(v[K_DELAY] * 1000.0);
    p->jitter_us = (uint32_t)lround(v[K_JITTER] * 1000.0);
}

/* Tries `name` (without "--") as an impairment option; 1 if it is one (then *kind, *which). */
static int impair_option(const char *name, int *kind, int *which)
{
    for (int k = 0; k < K_N; k++) {
        size_t n = strlen(kind_name[k]);

        if (strncmp(name, kind_name[k], n) != 0)
            continue;
        if (name[n] == '\0')
            *which = 0;
        else if (strcmp(name + n, "-to") == 0)
            *which = 1;
        else if (strcmp(name + n, "-back") == 0)
            *which = 2;
        else
            continue;
        *kind = k;
        return 1;
    }
    return 0;
}

struct bridge_args {
    struct mpt_hostport listen, to;
    int have_listen, have_to;
    struct impair_args ia;
    uint64_t seed;
    int have_seed;
    double idle_s;
    uint64_t max_peers;
    const char *record;
    uint32_t sndbuf, rcvbuf;
    int level;
};

/* Parses argv (argv[0] is "bridge"). Returns 0, 1 for --help, or -1 after printing an error. */
static int parse_args(struct bridge_args *a, int argc, char **argv)
{
    char err[MPT_CONFIG_ERR_MAX];

    memset(a, 0, sizeof(*a));
    a->idle_s = MPT_BRIDGE_IDLE_MS / 1000.0;
    a->max_peers = MPT_BRIDGE_MAX_PEERS;
    a->level = MPT_LOGL_INFO;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq, *val;
        char name[32];
        size_t nlen;
        int kind, which;

        if (mpt_cmd_is_help(arg))
            return 1;
        if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            a->level = MPT_LOGL_DEBUG;
            continue;
        }
        if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
            a->level = MPT_LOGL_WARN;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            mpt_cmd_error(CMD, "unexpected argument `%s' (see mptunnel bridge --help)", arg);
            return -1;
        }
        eq = strchr(arg, '=');
        nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nlen == 0 || nlen >= sizeof(name)) {
            mpt_cmd_error(CMD, "unknown option `%s' (see mptunnel bridge --help)", arg);
            return -1;
        }
        memcpy(name, arg + 2, nlen);
        name[nlen] = '\0';
        if (!impair_option(name, &kind, &which) && strcmp(name, "listen") != 0 &&
            strcmp(name, "to") != 0 && strcmp(name, "seed") != 0 &&
            strcmp(name, "idle-timeout") != 0 && strcmp(name, "max-peers") != 0 &&
            strcmp(name, "record") != 0 && strcmp(name, "sndbuf") != 0 &&
            strcmp(name, "rcvbuf") != 0) {
            mpt_cmd_error(CMD, "unknown option `--%s' (see mptunnel bridge --help)", name);
            return -1;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            mpt_cmd_error(CMD, "option `--%s' needs a value", name);
            return -1;
        }

        if (impair_option(name, &kind, &which)) {
            double v;
            if (is_ms_kind(kind) ? parse_ms(&v, val) : parse_prob(&v, val)) {
                mpt_cmd_error(CMD, "invalid --%s `%s' (%s)", name, val,
                              is_ms_kind(kind)
                                  ? "milliseconds from 0 to 600000"
                                  : "a probability from 0 to 1, or a percentage such as 20%");
                return -1;
            }
            a->ia.v[kind][which] = v;
            a->ia.set[kind][which] = 1;
        } else if (strcmp(name, "listen") == 0 || strcmp(name, "to") == 0) {
            int is_listen = name[0] == 'l';
            if (mpt_hostport_parse(is_listen ? &a->listen : &a->to, val, is_listen, err,
                                   sizeof(err)) != 0) {
                mpt_cmd_error(CMD, "--%s: %s", name, err);
                return -1;
            }
            *(is_listen ? &a->have_listen : &a->have_to) = 1;
        } else if (strcmp(name, "seed") == 0) {
            if (parse_u64(&a->seed, val) != 0) {
                mpt_cmd_error(CMD, "invalid --seed `%s' (an integer from 0 to 2^64-1)", val);
                return -1;
            }
            a->have_seed = 1;
        } else if (strcmp(name, "idle-timeout") == 0) {
            if (parse_double(&a->idle_s, val, "s") != 0 || a->idle_s < 0.001 ||
                a->idle_s > MAX_IDLE_S) {
                mpt_cmd_error(CMD, "invalid --idle-timeout `%s' (seconds from 0.001 to %.0f)", val,
                              MAX_IDLE_S);
                return -1;
            }
        } else if (strcmp(name, "max-peers") == 0) {
            if (parse_u64(&a->max_peers, val) != 0 || a->max_peers < 1 ||
                a->max_peers > MAX_PEERS) {
                mpt_cmd_error(CMD, "invalid --max-peers `%s' (from 1 to %d)", val, MAX_PEERS);
                return -1;
            }
        } else if (strcmp(name, "record") == 0) {
            if (!*val) {
                mpt_cmd_error(CMD, "invalid --record `' (a file name)");
                return -1;
            }
            a->record = val;
        } else {
            uint32_t *size = name[0] == 's' ? &a->sndbuf : &a->rcvbuf;
            if (parse_size(size, val) != 0) {
                mpt_cmd_error(CMD,
                              "invalid --%s `%s' (bytes, such as 4M, 512K or 65536; at most 1G)",
                              name, val);
                return -1;
            }
        }
    }
    if (!a->have_listen || !a->have_to) {
        mpt_cmd_error(CMD, "missing --%s (see mptunnel bridge --help)",
                      a->have_listen ? "to" : "listen");
        return -1;
    }
    return 0;
}

static void log_summary(const struct mpt_bridge_stats *st, int recording)
{
    static const char *const names[2] = {"to", "back"};

    for (int d = 0; d < 2; d++) {
        const struct mpt_bridge_dir_stats *s = &st->dir[d];
        MPT_INFO("bridge: %s: received %llu, forwarded %llu, dropped %llu, duplicated %llu, "
                 "reordered %llu, corrupted %llu; queue full %llu, send errors %llu (by kind: "
                 "congestion %llu, too big %llu, unreachable %llu, other %llu)",
                 names[d], (unsigned long long)s->impair.received,
                 (unsigned long long)s->impair.forwarded, (unsigned long long)s->impair.dropped,
                 (unsigned long long)s->impair.duplicated, (unsigned long long)s->impair.reordered,
                 (unsigned long long)s->impair.corrupted, (unsigned long long)s->queue_drops,
                 (unsigned long long)s->send_errors, (unsigned long long)s->send_kinds.congestion,
                 (unsigned long long)s->send_kinds.too_big,
                 (unsigned long long)s->send_kinds.unreachable,
                 (unsigned long long)s->send_kinds.other);
    }
    MPT_INFO("bridge: peers: %llu created, %llu forgotten idle, %llu datagrams from new "
             "addresses refused",
             (unsigned long long)st->peers_created, (unsigned long long)st->peers_expired,
             (unsigned long long)st->peer_drops);
    if (recording)
        MPT_INFO("bridge: recorded %llu datagrams (%llu bytes)", (unsigned long long)st->recorded,
                 (unsigned long long)st->record_bytes);
}

int mpt_cmd_bridge(int argc, char **argv)
{
    struct bridge_args a;
    struct mpt_bridge_options o;
    struct mpt_bridge_stats st;
    struct mpt_loop *loop = NULL;
    struct mpt_bridge *b = NULL;
    struct mpt_notify *notify = NULL;
    char s[MPT_ADDR_STRLEN];
    int rc = MPT_EXIT_FAIL, err;

    err = parse_args(&a, argc, argv);
    if (err > 0) {
        mpt_usage_bridge(stdout);
        return MPT_EXIT_OK;
    }
    if (err < 0)
        return MPT_EXIT_USAGE;
    mpt_cmd_log_init(a.level);

    mpt_bridge_options_init(&o);
    impair_params(&o.impair[MPT_BRIDGE_TO], &a.ia, 1);
    impair_params(&o.impair[MPT_BRIDGE_BACK], &a.ia, 2);
    if (!a.have_seed && getrandom(&a.seed, sizeof(a.seed), 0) != sizeof(a.seed))
        a.seed = (uint64_t)getpid();
    o.seed = a.seed;
    o.idle_timeout_ms = (uint32_t)lround(a.idle_s * 1000.0);
    o.max_peers = (unsigned)a.max_peers;
    o.sndbuf = a.sndbuf;
    o.rcvbuf = a.rcvbuf;

    err = mpt_loop_new(&loop);
    if (err) {
        mpt_cmd_error(CMD, "cannot create the event loop: %s", mpt_strerror(err));
        return MPT_EXIT_FAIL;
    }
    err = mpt_resolve(loop, a.listen.host, a.listen.port, 1, &o.listen);
    if (err) {
        mpt_cmd_error(CMD, "cannot resolve --listen `%s': %s", a.listen.host, mpt_strerror(err));
        goto out;
    }
    err = mpt_resolve(loop, a.to.host, a.to.port, 0, &o.to);
    if (err) {
        mpt_cmd_error(CMD, "cannot resolve --to `%s': %s", a.to.host, mpt_strerror(err));
        goto out;
    }
    if (a.record) {
        /* Records hold the traffic of others: private to the user (umask aside). */
        o.record_fd = open(a.record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (o.record_fd < 0) {
            mpt_cmd_error(CMD, "cannot open --record `%s': %s", a.record, strerror(errno));
            goto out;
        }
    }
    err = mpt_bridge_start(loop, &o, &b);
    if (err) {
        mpt_cmd_error(CMD, "cannot listen on %s: %s", mpt_addr_str(&o.listen, s, sizeof(s)),
                      mpt_strerror(err));
        goto out;
    }
    err = mpt_notify_start(loop, &notify);
    if (err)
        MPT_WARN("no watchdog keep-alive: %s", mpt_strerror(err));
    {
        char line[160], to[MPT_ADDR_STRLEN];
        struct mpt_addr local;

        mpt_bridge_local(b, &local);
        snprintf(line, sizeof(line), "bridge: %s -> %s", mpt_addr_str(&local, s, sizeof(s)),
                 mpt_addr_str(&o.to, to, sizeof(to)));
        mpt_notify_ready(line);
    }
    err = mpt_loop_run(loop);
    mpt_bridge_get_stats(b, &st);
    log_summary(&st, a.record != NULL);
    if (err) {
        mpt_cmd_error(CMD, "event loop failed: %s", mpt_strerror(err));
        goto out;
    }
    rc = MPT_EXIT_OK;
out:
    mpt_bridge_free(b);
    mpt_notify_free(notify);
    if (mpt_loop_free(loop) != 0) {
        mpt_cmd_error(CMD, "internal error: handles left open at exit");
        rc = MPT_EXIT_FAIL;
    }
    return rc;
}
