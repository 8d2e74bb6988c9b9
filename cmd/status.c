/* mptunnel status: the live state of a running client or server, read from its control socket
 * (packaging/STATUS.md), printed as JSON or as a report. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "net/control.h"

#define DOC_MAX (MPT_CONTROL_MAX_DOC + 64)
#define QUERY_TIMEOUT_MS 2000

void mpt_usage_status(FILE *out)
{
    fprintf(
        out,
        "Usage: mptunnel status -c FILE [--json] [--watch] [--client|--server]\n"
        "       mptunnel status --demo [--json] [--watch] [--client|--server]\n"
        "\n"
        "Shows the live state of the client and/or server that run with FILE, read from\n"
        "their control sockets (`control =' in [client] / [server], or the default path:\n"
        "$RUNTIME_DIRECTORY, /run/mptunnel as root, $XDG_RUNTIME_DIR/mptunnel, else\n"
        "/tmp/mptunnel-UID; named <role>-<FILE's base name>.sock).\n"
        "\n"
        "  -c, --config FILE   the configuration the client/server runs with\n"
        "  --demo              the `mptunnel demo' running on this machine\n"
        "  --client, --server  only that side (default: each side FILE has a section for)\n"
        "  --json              print the status document (schema mptunnel-status/1); with\n"
        "                      both sides, an object {\"client\": DOC, \"server\": DOC}, a side\n"
        "                      that does not answer being null\n"
        "  --watch             refresh every second until Ctrl-C (with --json: one document\n"
        "                      per line)\n"
        "  -v, -q              more or less logging\n"
        "\n"
        "The report: the session, flows, one row per path (state, smoothed RTT and its\n"
        "variation, loss each way, throughput each way, time since last heard) and the\n"
        "datagrams rejected, by reason. `->' is client to server, `<-' server to client.\n"
        "\n"
        "Exit status: 0 if a side answered, 1 if none did, 2 on usage or configuration errors.\n"
        "See packaging/STATUS.md for the document's fields.\n");
}

/* ---- a small JSON reader, enough for our own documents ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jtok {
    enum jtype t;
    int start, len; /* the text (for strings: between the quotes) */
    int next;       /* the token after this one's subtree */
};

struct jdoc {
    const char *s;
    struct jtok *v;
    int n, cap;
    int pos, end;
};

static void skip_ws(struct jdoc *d)
{
    while (d->pos < d->end && strchr(" \t\r\n", d->s[d->pos]))
        d->pos++;
}

static int new_tok(struct jdoc *d, enum jtype t)
{
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 256;
        struct jtok *v = realloc(d->v, (size_t)cap * sizeof(*v));
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n].t = t;
    d->v[d->n].start = d->pos;
    d->v[d->n].len = 0;
    return d->n++;
}

static int parse_value(struct jdoc *d, int depth);

static int parse_string(struct jdoc *d)
{
    int k = new_tok(d, J_STR);

    if (k < 0)
        return -1;
    d->pos++;
    d->v[k].start = d->pos;
    while (d->pos < d->end && d->s[d->pos] != '"') {
        if (d->s[d->pos] == '\\')
            d->pos++;
        d->pos++;
    }
    if (d->pos >= d->end)
        return -1;
    d->v[k].len = d->pos - d->v[k].start;
    d->pos++;
    d->v[k].next = d->n;
    return k;
}

static int parse_container(struct jdoc *d, int depth, int obj)
{
    int k = new_tok(d, obj ? J_OBJ : J_ARR);

    if (k < 0)
        return -1;
    d->pos++;
    skip_ws(d);
    if (d->pos < d->end && d->s[d->pos] == (obj ? '}' : ']')) {
        d->pos++;
        d->v[k].next = d->n;
        return k;
    }
    for (;;) {
        skip_ws(d);
        if (obj) {
            if (d->pos >= d->end || d->s[d->pos] != '"' || parse_string(d) < 0)
                return -1;
            skip_ws(d);
            if (d->pos >= d->end || d->s[d->pos] != ':')
                return -1;
            d->pos++;
        }
        if (parse_value(d, depth + 1) < 0)
            return -1;
        skip_ws(d);
        if (d->pos >= d->end)
            return -1;
        if (d->s[d->pos] == ',') {
            d->pos++;
            continue;
        }
        if (d->s[d->pos] != (obj ? '}' : ']'))
            return -1;
        d->pos++;
        d->v[k].next = d->n;
        return k;
    }
}

static int parse_value(struct jdoc *d, int depth)
{
    const char *p;
    int k;

    skip_ws(d);
    if (d->pos >= d->end || depth > 32)
        return -1;
    p = d->s + d->pos;
    if (*p == '{' || *p == '[')
        return parse_container(d, depth, *p == '{');
    if (*p == '"')
        return parse_string(d);
    if (strncmp(p, "null", 4) == 0 || strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        k = new_tok(d, *p == 'n' ? J_NULL : J_BOOL);
        if (k < 0)
            return -1;
        d->v[k].len = *p == 'f' ? 5 : 4;
    } else {
        char *e;
        k = new_tok(d, J_NUM);
        if (k < 0)
            return -1;
        strtod(p, &e);
        if (e == p)
            return -1;
        d->v[k].len = (int)(e - p);
    }
    d->pos += d->v[k].len;
    d->v[k].next = d->n;
    return k;
}

static int json_parse(struct jdoc *d, const char *s, size_t len)
{
    memset(d, 0, sizeof(*d));
    d->s = s;
    d->end = (int)len;
    if (parse_value(d, 0) != 0)
        return -1;
    skip_ws(d);
    return d->pos == d->end ? 0 : -1;
}

/* The member `key' of object k, or -1. */
static int jget(const struct jdoc *d, int k, const char *key)
{
    size_t kl = strlen(key);

    if (k < 0 || d->v[k].t != J_OBJ)
        return -1;
    for (int i = k + 1; i < d->v[k].next;) {
        int val = d->v[i].next;
        if ((size_t)d->v[i].len == kl && memcmp(d->s + d->v[i].start, key, kl) == 0)
            return val;
        i = d->v[val].next;
    }
    return -1;
}

/* Follows "a.b.c". */
static int jpath(const struct jdoc *d, int k, const char *path)
{
    char part[64];

    while (k >= 0 && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof(part), "%.*s", (int)n, path);
        k = jget(d, k, part);
        path += n + (path[n] == '.');
    }
    return k;
}

static int jis_num(const struct jdoc *d, int k)
{
    return k >= 0 && d->v[k].t == J_NUM;
}

static double jnum(const struct jdoc *d, int k)
{
    return jis_num(d, k) ? strtod(d->s + d->v[k].start, NULL) : 0;
}

static int jbool(const struct jdoc *d, int k)
{
    return k >= 0 && d->v[k].t == J_BOOL && d->s[d->v[k].start] == 't';
}

/* The string value (escapes undone; non-ASCII \u as '?'), or `def'. */
static const char *jstr(const struct jdoc *d, int k, char *buf, size_t len, const char *def)
{
    size_t o = 0;

    if (k < 0 || d->v[k].t != J_STR)
        return def;
    for (int i = 0; i < d->v[k].len && o + 1 < len; i++) {
        char c = d->s[d->v[k].start + i];
        if (c == '\\' && i + 1 < d->v[k].len) {
            c = d->s[d->v[k].start + ++i];
            if (c == 'n')
                c = '\n';
            else if (c == 't')
                c = '\t';
            else if (c == 'u') {
                char hex[5] = {0};
                unsigned long u;
                if (i + 4 >= d->v[k].len)
                    break;
                memcpy(hex, d->s + d->v[k].start + i + 1, 4);
                u = strtoul(hex, NULL, 16);
                c = u >= 0x20 && u < 0x7f ? (char)u : '?';
                i += 4;
            }
        }
        buf[o++] = c;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- the report ---- */

static void fmt_ms_ago(char *buf, size_t len, const struct jdoc *d, int k)
{
    double ms = jnum(d, k);

    if (!jis_num(d, k))
        snprintf(buf, len, "never");
    else if (ms < 10000)
        snprintf(buf, len, "%.0f ms", ms);
    else if (ms < 600000)
        snprintf(buf, len, "%.1f s", ms / 1000);
    else
        snprintf(buf, len, "%.0f min", ms / 60000);
}

static void fmt_rate(char *buf, size_t len, const struct jdoc *d, int dir)
{
    double bps = jnum(d, jget(d, dir, "bps")), pps = jnum(d, jget(d, dir, "pps"));
    const char *unit = "";

    if (bps >= 1e9) {
        bps /= 1e9;
        unit = "G";
    } else if (bps >= 1e6) {
        bps /= 1e6;
        unit = "M";
    } else if (bps >= 1e3) {
        bps /= 1e3;
        unit = "k";
    }
    snprintf(buf, len, "%.*f%sb/s %.0fp/s", bps < 10 && unit[0] ? 2 : 1, bps, unit, pps);
}

static void fmt_loss(char *buf, size_t len, const struct jdoc *d, int k)
{
    if (jis_num(d, k))
        snprintf(buf, len, "%.1f%%", jnum(d, k) * 100);
    else
        snprintf(buf, len, "-");
}

static void fmt_rtt(char *buf, size_t len, const struct jdoc *d, int k)
{
    if (jis_num(d, k))
        snprintf(buf, len, "%.2f", jnum(d, k));
    else
        snprintf(buf, len, "-");
}

static void print_path_header(void)
{
    printf("  %-10s %-24s %-6s %8s %7s %7s %7s %-20s %-20s %s\n", "PATH", "REMOTE", "STATE",
           "RTT ms", "+-ms", "LOSS->", "LOSS<-", "RATE->", "RATE<-", "HEARD");
}

/* One row; `up` and `down` are the direction objects client->server and server->client. */
static void print_path_row(const struct jdoc *d, int p, const char *name, int up, int down)
{
    char remote[128], state[32], rtt[32], var[32], lu[16], ld[16], ru[48], rd[48], heard[32];

    jstr(d, jget(d, p, "remote"), remote, sizeof(remote), "-");
    jstr(d, jget(d, p, "state"), state, sizeof(state), "?");
    fmt_rtt(rtt, sizeof(rtt), d, jget(d, p, "rtt_ms"));
    fmt_rtt(var, sizeof(var), d, jget(d, p, "rttvar_ms"));
    fmt_loss(lu, sizeof(lu), d, jpath(d, p, "loss.up"));
    fmt_loss(ld, sizeof(ld), d, jpath(d, p, "loss.down"));
    if (jget(d, p, "loss") >= 0 && jget(d, jget(d, p, "loss"), "known") >= 0 &&
        !jbool(d, jpath(d, p, "loss.known"))) {
        snprintf(lu, sizeof(lu), "-");
        snprintf(ld, sizeof(ld), "-");
    }
    fmt_rate(ru, sizeof(ru), d, up);
    fmt_rate(rd, sizeof(rd), d, down);
    fmt_ms_ago(heard, sizeof(heard), d, jget(d, p, "last_heard_ms"));
    printf("  %-10s %-24s %-6s %8s %7s %7s %7s %-20s %-20s %s\n", name, remote, state, rtt, var, lu,
           ld, ru, rd, heard);
}

static void print_rejected(const struct jdoc *d, int root)
{
    int r = jget(d, root, "rejected");
    int first = 1;

    printf("rejected:");
    if (r >= 0 && d->v[r].t == J_OBJ) {
        for (int i = r + 1; i < d->v[r].next;) {
            char key[64];
            int val = d->v[i].next;
            jstr(d, i, key, sizeof(key), "?");
            printf("%s %s %.0f", first ? "" : ",", key, jnum(d, val));
            first = 0;
            i = d->v[val].next;
        }
    }
    printf("\n");
}

static void print_header(const struct jdoc *d, int root, const char *role)
{
    char file[600], listen[128], extra[160], up[32];

    jstr(d, jget(d, root, "config"), file, sizeof(file), "?");
    jstr(d, jget(d, root, "listen"), listen, sizeof(listen), "?");
    fmt_ms_ago(up, sizeof(up), d, jget(d, root, "uptime_ms"));
    printf("%s %s (pid %.0f, up %s), listening on %s", role, file, jnum(d, jget(d, root, "pid")),
           up, listen);
    if (jstr(d, jget(d, root, "mode"), extra, sizeof(extra), NULL))
        printf(", mode %s", extra);
    if (jstr(d, jget(d, root, "target"), extra, sizeof(extra), NULL))
        printf(", target %s", extra);
    printf("\n");
}

static void print_client(const struct jdoc *d, int root)
{
    int s = jget(d, root, "session"), paths = jget(d, root, "paths");
    char state[32], id[40], age[32], heard[32];
    unsigned i = 0;

    print_header(d, root, "client");
    jstr(d, jget(d, s, "state"), state, sizeof(state), "?");
    jstr(d, jget(d, s, "id"), id, sizeof(id), "-");
    fmt_ms_ago(age, sizeof(age), d, jget(d, s, "age_ms"));
    fmt_ms_ago(heard, sizeof(heard), d, jget(d, s, "last_heard_ms"));
    printf("session %s %s, established %s ago, last heard %s ago, %.0f established so far\n", state,
           id, age, heard, jnum(d, jget(d, s, "established")));
    printf("flows %.0f/%.0f", jnum(d, jpath(d, root, "flows.used")),
           jnum(d, jpath(d, root, "flows.max")));
    if (jis_num(d, jpath(d, root, "counters.copies_per_packet")))
        printf(", %.2f copies per packet", jnum(d, jpath(d, root, "counters.copies_per_packet")));
    printf("\n");
    print_path_header();
    if (paths >= 0 && d->v[paths].t == J_ARR) {
        for (int p = paths + 1; p < d->v[paths].next; p = d->v[p].next, i++) {
            char name[64];
            if (!jstr(d, jget(d, p, "name"), name, sizeof(name), NULL) || !name[0])
                snprintf(name, sizeof(name), "#%u", i);
            print_path_row(d, p, name, jget(d, p, "tx"), jget(d, p, "rx"));
        }
    }
    print_rejected(d, root);
}

static void print_server(const struct jdoc *d, int root)
{
    int list = jpath(d, root, "sessions.list");

    print_header(d, root, "server");
    printf("sessions %.0f/%.0f, flows %.0f/%.0f\n", jnum(d, jpath(d, root, "sessions.used")),
           jnum(d, jpath(d, root, "sessions.max")), jnum(d, jpath(d, root, "flows.used")),
           jnum(d, jpath(d, root, "flows.max")));
    if (list >= 0 && d->v[list].t == J_ARR) {
        for (int s = list + 1; s < d->v[list].next; s = d->v[s].next) {
            char id[40], mode[32], age[32], heard[32];
            int paths = jget(d, s, "paths");

            jstr(d, jget(d, s, "id"), id, sizeof(id), "-");
            jstr(d, jget(d, s, "mode"), mode, sizeof(mode), "?");
            fmt_ms_ago(age, sizeof(age), d, jget(d, s, "age_ms"));
            fmt_ms_ago(heard, sizeof(heard), d, jget(d, s, "last_heard_ms"));
            printf("session %s (%s%s), age %s, last heard %s ago, %.0f flows\n", id, mode,
                   jbool(d, jget(d, s, "confirmed")) ? "" : ", unconfirmed", age, heard,
                   jnum(d, jget(d, s, "flows")));
            print_path_header();
            if (paths < 0 || d->v[paths].t != J_ARR)
                continue;
            for (int p = paths + 1; p < d->v[paths].next; p = d->v[p].next) {
                char name[32];
                int cp = jget(d, p, "client_path");
                if (jis_num(d, cp))
                    snprintf(name, sizeof(name), "#%.0f", jnum(d, cp));
                else
                    snprintf(name, sizeof(name), "?");
                print_path_row(d, p, name, jget(d, p, "rx"), jget(d, p, "tx"));
            }
        }
    }
    print_rejected(d, root);
}

/* ---- the command ---- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    interrupted = 1;
}

struct side {
    const char *role;
    char path[256];
    char *doc;
    long len; /* < 0: the errno of the query */
};

static void query(struct side *s)
{
    s->len = mpt_control_query(s->path, s->doc, DOC_MAX, QUERY_TIMEOUT_MS);
    /* One document, one line. */
    while (s->len > 0 && (s->doc[s->len - 1] == '\n' || s->doc[s->len - 1] == '\r'))
        s->doc[--s->len] = '\0';
}

static void report_error(const struct side *s, const char *cfgfile)
{
    mpt_cmd_error("status", "no answer from the %s at %s: %s (is `mptunnel %s -c %s' running?)",
                  s->role, s->path, s->len == -EMSGSIZE ? "document too large" : strerror(-s->len),
                  s->role, cfgfile);
}

static int show(struct side *sides, int n, int json, const char *cfgfile)
{
    int answered = 0;

    for (int i = 0; i < n; i++) {
        query(&sides[i]);
        if (sides[i].len >= 0)
            answered++;
        else
            report_error(&sides[i], cfgfile);
    }
    if (json) {
        if (n == 1) {
            if (sides[0].len >= 0)
                printf("%s\n", sides[0].doc);
        } else {
            printf("{");
            for (int i = 0; i < n; i++)
                printf("%s\"%s\":%s", i ? "," : "", sides[i].role,
                       sides[i].len >= 0 ? sides[i].doc : "null");
            printf("}\n");
        }
    } else {
        for (int i = 0; i < n; i++) {
            struct jdoc d;
            if (sides[i].len < 0)
                continue;
            if (i > 0)
                printf("\n");
            if (json_parse(&d, sides[i].doc, (size_t)sides[i].len) != 0) {
                mpt_cmd_error("status", "the %s at %s sent a malformed document", sides[i].role,
                              sides[i].path);
                answered--;
            } else if (sides[i].role[0] == 'c') {
                print_client(&d, 0);
            } else {
                print_server(&d, 0);
            }
            free(d.v);
        }
    }
    fflush(stdout);
    return answered > 0 ? MPT_EXIT_OK : MPT_EXIT_FAIL;
}

int mpt_cmd_status(int argc, char **argv)
{
    struct mpt_config cfg;
    struct side sides[2];
    char **rest;
    int nrest = 0, json = 0, watch = 0, want_client = 0, want_server = 0, demo = 0, n = 0, rc;

    rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (!rest)
        return MPT_EXIT_FAIL;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (i > 0 && strcmp(argv[i], "--watch") == 0)
            watch = 1;
        else if (i > 0 && strcmp(argv[i], "--client") == 0)
            want_client = 1;
        else if (i > 0 && strcmp(argv[i], "--server") == 0)
            want_server = 1;
        else if (i > 0 && strcmp(argv[i], "--demo") == 0)
            demo = 1;
        else
            rest[nrest++] = argv[i];
    }
    mpt_config_defaults(&cfg);
    if (demo && nrest == 1) {
        /* The demo's client and server use the default paths of a file named `demo'. */
        snprintf(cfg.file, sizeof(cfg.file), "demo");
        cfg.client.present = cfg.server.present = 1;
        rc = MPT_EXIT_OK;
    } else if (demo) {
        mpt_cmd_error("status", "--demo takes no configuration");
        rc = MPT_EXIT_USAGE;
    } else {
        rc = mpt_cmd_load_config("status", nrest, rest, MPT_ROLE_ANY, &cfg);
    }
    free(rest);
    if (rc != MPT_EXIT_OK)
        return rc;
    if (!want_client && !want_server) {
        want_client = cfg.client.present;
        want_server = cfg.server.present;
    }
    if (want_client && !cfg.client.present) {
        mpt_cmd_error("status", "%s: no [client] section", cfg.file);
        return MPT_EXIT_USAGE;
    }
    if (want_server && !cfg.server.present) {
        mpt_cmd_error("status", "%s: no [server] section", cfg.file);
        return MPT_EXIT_USAGE;
    }
    if (!want_client && !want_server) {
        mpt_cmd_error("status", "%s: neither a [client] nor a [server] section", cfg.file);
        return MPT_EXIT_USAGE;
    }
    for (int r = 0; r < 2; r++) {
        enum mpt_config_role role = r == 0 ? MPT_ROLE_CLIENT : MPT_ROLE_SERVER;
        struct side *s = &sides[n];

        if (!(r == 0 ? want_client : want_server))
            continue;
        s->role = r == 0 ? "client" : "server";
        if (mpt_config_control_path(&cfg, role, s->path, sizeof(s->path)) != 0) {
            mpt_cmd_error("status", "%s: the %s's control socket path is too long", cfg.file,
                          s->role);
            rc = MPT_EXIT_USAGE;
            goto out;
        }
        s->doc = malloc(DOC_MAX);
        if (!s->doc) {
            mpt_cmd_error("status", "out of memory");
            rc = MPT_EXIT_FAIL;
            goto out;
        }
        n++;
    }
    if (!watch) {
        rc = show(sides, n, json, cfg.file);
        goto out;
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    while (!interrupted) {
        struct timespec ts = {.tv_sec = 1};
        if (!json && isatty(STDOUT_FILENO))
            printf("\033[H\033[2J");
        show(sides, n, json, cfg.file);
        nanosleep(&ts, NULL);
    }
    rc = MPT_EXIT_OK;
out:
    for (int i = 0; i < n; i++)
        free(sides[i].doc);
    return rc;
}
