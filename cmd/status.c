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
    fprintf(out,
            "Usage: mptunnel status -c FILE [--json] [--watch] [--wide] [--client|--server]\n"
            "       mptunnel status --demo [--json] [--watch] [--wide] [--client|--server]\n"
            "\n"
            "Shows the live state of the client and/or server that run with FILE, read from\n"
            "their control sockets (`control =' in [client] / [server], or the default path:\n"
            "$RUNTIME_DIRECTORY, /run/mptunnel as root, $XDG_RUNTIME_DIR/mptunnel, else\n"
            "/tmp/mptunnel-UID; named <role>-<FILE's base name>.sock).\n"
            "\n"
            "  -c, --config FILE   the configuration the client/server runs with\n"
            "  --demo              the `mptunnel demo' running on this machine\n"
            "  --client, --server  only that side (default: each side FILE has a section for)\n"
            "  --json              print the status document (schema mptunnel-status/2);\n"
            "                      with both sides, {\"client\": DOC, \"server\": DOC}, a\n"
            "                      side that does not answer being null\n"
            "  --watch             refresh every second until Ctrl-C (with --json: one\n"
            "                      document per line)\n"
            "  --wide              more columns (remote address, RTT variation, packets,\n"
            "                      packets/s, MTU); without it the table fits 100 columns\n"
            "  -v, -q              more or less logging\n"
            "\n"
            "The report: the session (or how long the server has not answered), flows,\n"
            "one row per path, numbered from 1 and named by its [path NAME] or its bridge\n"
            "(state, smoothed RTT, loss, throughput and bytes each way, time since last\n"
            "heard), the client's paths' route MTUs (a column with --wide) and the largest\n"
            "datagram each carries whole, the datagrams the kernel refused to send by kind\n"
            "(congestion, too big, unreachable, other) and the datagrams rejected, by\n"
            "reason; on a client, the flows its server refused, and the SOCKS5 front's\n"
            "associations and dropped datagrams. Duplicate copies (multipath sends them\n"
            "on purpose) are counted apart, not as rejected. `->' is client to server,\n"
            "`<-' server to client. Bytes in KiB/MiB/GiB, rates in kb/s, Mb/s, Gb/s.\n"
            "\n"
            "Exit status: 0 if a side answered, 1 if none did, 2 on usage or configuration\n"
            "errors.\n"
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

/* The path table fits MAX_COLS columns unless --wide: the path column takes what is left. */
#define MAX_COLS 100
#define PATH_COL_MAX 26

/* "40 ms", "1.5 s", "12 s", "5.2 min", "3.1 h", "2.0 d". */
static void fmt_duration(char *buf, size_t len, double ms)
{
    if (ms < 1000)
        snprintf(buf, len, "%.0f ms", ms);
    else if (ms < 10000)
        snprintf(buf, len, "%.1f s", ms / 1000);
    else if (ms < 60000)
        snprintf(buf, len, "%.0f s", ms / 1000);
    else if (ms < 3600000)
        snprintf(buf, len, "%.1f min", ms / 60000);
    else if (ms < 48 * 3600000.0)
        snprintf(buf, len, "%.1f h", ms / 3600000);
    else
        snprintf(buf, len, "%.1f d", ms / 86400000);
}

static void fmt_ms_ago(char *buf, size_t len, const struct jdoc *d, int k)
{
    if (!jis_num(d, k))
        snprintf(buf, len, "never");
    else
        fmt_duration(buf, len, jnum(d, k));
}

/* Three significant digits: "1.23", "12.3", "123". */
static void fmt3(char *buf, size_t len, double v, const char *unit)
{
    snprintf(buf, len, "%.*f%s", v < 9.995 ? 2 : v < 99.95 ? 1 : 0, v, unit);
}

/* Bytes in binary units, as `wg show' prints them: "512 B", "1.23 KiB", "45.6 MiB". */
static void fmt_bytes(char *buf, size_t len, double b)
{
    static const char *const units[] = {" KiB", " MiB", " GiB", " TiB", " PiB"};
    int u = -1;

    if (b < 1024) {
        snprintf(buf, len, "%.0f B", b);
        return;
    }
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    fmt3(buf, len, b, units[u]);
}

/* Bits per second in decimal units: "0b/s", "850b/s", "1.23Mb/s". */
static void fmt_bits(char *buf, size_t len, double bps)
{
    if (bps < 1000)
        snprintf(buf, len, "%.0fb/s", bps);
    else if (bps < 1e6)
        fmt3(buf, len, bps / 1e3, "kb/s");
    else if (bps < 1e9)
        fmt3(buf, len, bps / 1e6, "Mb/s");
    else
        fmt3(buf, len, bps / 1e9, "Gb/s");
}

static void fmt_count(char *buf, size_t len, double n)
{
    if (n < 100000)
        snprintf(buf, len, "%.0f", n);
    else if (n < 1e6)
        fmt3(buf, len, n / 1e3, "k");
    else if (n < 1e9)
        fmt3(buf, len, n / 1e6, "M");
    else
        fmt3(buf, len, n / 1e9, "G");
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
        fmt3(buf, len, jnum(d, k), "");
    else
        snprintf(buf, len, "-");
}

/* One row of the path table: the path's cell, then the direction objects client->server and
 * server->client (the server's rx and tx). */
struct row {
    char cell[160];
    char remote[128];
    int p, up, down;
};

struct table {
    int wide;
    int with_remote; /* a REMOTE column (client, --wide) */
    int with_mtu;    /* an MTU column (client, --wide) */
    int w, rw;       /* widths of the path and remote columns */
};

static void table_fit(struct table *t, const struct row *rows, unsigned n)
{
    t->w = 4;
    t->rw = 6;
    for (unsigned i = 0; i < n; i++) {
        int l = (int)strlen(rows[i].cell), r = (int)strlen(rows[i].remote);
        if (l > t->w)
            t->w = l;
        if (r > t->rw)
            t->rw = r;
    }
    if (!t->wide && t->w > PATH_COL_MAX)
        t->w = PATH_COL_MAX;
}

static void print_table_header(const struct table *t)
{
    printf("%-*s", t->w, "PATH");
    if (t->with_remote)
        printf(" %-*s", t->rw, "REMOTE");
    printf(" %-8s %6s", "STATE", "RTT ms");
    if (t->wide)
        printf(" %6s", "+-ms");
    printf(" %6s %6s %8s %8s %8s %8s", "LOSS->", "LOSS<-", "RATE->", "RATE<-", "BYTES->",
           "BYTES<-");
    if (t->wide)
        printf(" %8s %8s %7s %7s", "PKTS->", "PKTS<-", "PPS->", "PPS<-");
    if (t->with_mtu)
        printf(" %5s", "MTU");
    printf(" %7s\n", "HEARD");
}

static void print_table_row(const struct table *t, const struct jdoc *d, const struct row *r)
{
    char cell[160], state[32], rtt[32], var[32], lu[16], ld[16], ru[32], rd[32], bu[32], bd[32];
    char heard[32];
    int p = r->p;

    snprintf(cell, sizeof(cell), "%s", r->cell);
    if ((int)strlen(cell) > t->w) {
        cell[t->w - 1] = '~';
        cell[t->w] = '\0';
    }
    jstr(d, jget(d, p, "state"), state, sizeof(state), "?");
    fmt_rtt(rtt, sizeof(rtt), d, jget(d, p, "rtt_ms"));
    fmt_rtt(var, sizeof(var), d, jget(d, p, "rttvar_ms"));
    fmt_loss(lu, sizeof(lu), d, jpath(d, p, "loss.up"));
    fmt_loss(ld, sizeof(ld), d, jpath(d, p, "loss.down"));
    if (jget(d, jget(d, p, "loss"), "known") >= 0 && !jbool(d, jpath(d, p, "loss.known"))) {
        snprintf(lu, sizeof(lu), "-");
        snprintf(ld, sizeof(ld), "-");
    }
    fmt_bits(ru, sizeof(ru), jnum(d, jget(d, r->up, "bps")));
    fmt_bits(rd, sizeof(rd), jnum(d, jget(d, r->down, "bps")));
    fmt_bytes(bu, sizeof(bu), jnum(d, jget(d, r->up, "bytes")));
    fmt_bytes(bd, sizeof(bd), jnum(d, jget(d, r->down, "bytes")));
    fmt_ms_ago(heard, sizeof(heard), d, jget(d, p, "last_heard_ms"));
    printf("%-*s", t->w, cell);
    if (t->with_remote)
        printf(" %-*s", t->rw, r->remote);
    printf(" %-8s %6s", state, rtt);
    if (t->wide)
        printf(" %6s", var);
    printf(" %6s %6s %8s %8s %8s %8s", lu, ld, ru, rd, bu, bd);
    if (t->wide) {
        char pu[32], pd[32];
        fmt_count(pu, sizeof(pu), jnum(d, jget(d, r->up, "packets")));
        fmt_count(pd, sizeof(pd), jnum(d, jget(d, r->down, "packets")));
        printf(" %8s %8s %7.0f %7.0f", pu, pd, jnum(d, jget(d, r->up, "pps")),
               jnum(d, jget(d, r->down, "pps")));
    }
    if (t->with_mtu) {
        char mtu[16] = "-";
        if (jis_num(d, jget(d, p, "mtu")))
            snprintf(mtu, sizeof(mtu), "%.0f", jnum(d, jget(d, p, "mtu")));
        printf(" %5s", mtu);
    }
    printf(" %7s\n", heard);
}

static void print_table(struct table *t, const struct jdoc *d, struct row *rows, unsigned n)
{
    table_fit(t, rows, n);
    print_table_header(t);
    for (unsigned i = 0; i < n; i++)
        print_table_row(t, d, &rows[i]);
}

/* The kinds of send errors that occurred in a send_errors object ("3 congestion, 1 too big"), or
 * "none"; returns the total. */
static double fmt_send_errors(char *buf, size_t len, const struct jdoc *d, int e)
{
    static const char *const kinds[][2] = {{"congestion", "congestion"},
                                           {"too_big", "too big"},
                                           {"unreachable", "unreachable"},
                                           {"other", "other"}};
    size_t o = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && o < len; i++) {
        double v = jnum(d, jget(d, e, kinds[i][0]));
        if (v > 0)
            o += (size_t)snprintf(buf + o, len - o, "%s%.0f %s", o ? ", " : "", v, kinds[i][1]);
    }
    if (!buf[0])
        snprintf(buf, len, "none");
    return jnum(d, jget(d, e, "total"));
}

/* Datagrams the kernel refused to send, on every socket, then each client path that lost any. */
static void print_send_errors(const struct jdoc *d, int root)
{
    int se = jget(d, root, "send_errors"), paths = jget(d, root, "paths");
    char a[160];
    unsigned i = 0;

    if (se < 0)
        return;
    fmt_send_errors(a, sizeof(a), d, se);
    printf("send errors: %s", a);
    if (jnum(d, jget(d, se, "gso_resent")) > 0)
        printf("; %.0f batches re-sent unbatched (too large for the route)",
               jnum(d, jget(d, se, "gso_resent")));
    printf("\n");
    if (paths < 0 || d->v[paths].t != J_ARR)
        return;
    for (int p = paths + 1; p < d->v[paths].next; p = d->v[p].next, i++) {
        int e = jget(d, p, "send_errors");
        if (e >= 0 && fmt_send_errors(a, sizeof(a), d, e) > 0)
            printf("    path %u: %s\n", i + 1, a);
    }
}

/* Each client path's route MTU and the largest application datagram it carries whole, as few
 * lines as fit MAX_COLS: "MTU (whole datagrams up to): 1 1500 (1428), 2 1280 (1188)". */
static void print_mtus(const struct jdoc *d, int root)
{
    int paths = jget(d, root, "paths"), col;
    unsigned i = 0;

    if (paths < 0 || d->v[paths].t != J_ARR || paths + 1 >= d->v[paths].next)
        return;
    col = printf("MTU (whole datagrams up to):");
    for (int p = paths + 1; p < d->v[paths].next; p = d->v[p].next, i++) {
        char item[64];
        int n;
        if (jis_num(d, jget(d, p, "mtu")))
            n = snprintf(item, sizeof(item), "%s %u %.0f (%.0f)", i ? "," : "", i + 1,
                         jnum(d, jget(d, p, "mtu")), jnum(d, jget(d, p, "max_payload")));
        else
            n = snprintf(item, sizeof(item), "%s %u unknown", i ? "," : "", i + 1);
        if (col + n > MAX_COLS) {
            printf("\n ");
            col = 1;
        }
        col += printf("%s", item);
    }
    printf("\n");
}

/* Rejected datagrams, the reasons that occurred only; duplicates are not among them. */
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
            if (strcmp(key, "total") != 0 && jnum(d, val) > 0) {
                printf("%s %.0f %s", first ? "" : ",", jnum(d, val), key);
                first = 0;
            }
            i = d->v[val].next;
        }
    }
    printf("%s\n", first ? " none" : "");
}

/* Datagrams sent as pieces and rebuilt, when there were any. */
static void print_split(const struct jdoc *d, int root)
{
    int r = jpath(d, root, "split.dropped");
    double sent = jnum(d, jpath(d, root, "split.packets"));
    double rebuilt = jnum(d, jpath(d, root, "split.reassembled"));

    if (!(sent > 0) && !(rebuilt > 0) && !(jnum(d, jpath(d, root, "split.pieces_received")) > 0))
        return;
    printf("split: %.0f datagrams sent as %.0f pieces, %.0f rebuilt from %.0f pieces", sent,
           jnum(d, jpath(d, root, "split.pieces_sent")), rebuilt,
           jnum(d, jpath(d, root, "split.pieces_received")));
    if (r >= 0 && d->v[r].t == J_OBJ) {
        int first = 1;
        for (int i = r + 1; i < d->v[r].next;) {
            char key[64];
            int val = d->v[i].next;
            jstr(d, i, key, sizeof(key), "?");
            if (jnum(d, val) > 0) {
                printf("%s %.0f %s", first ? "; dropped:" : ",", jnum(d, val), key);
                first = 0;
            }
            i = d->v[val].next;
        }
    }
    printf("\n");
}

/* The members of object `path' under root that are above zero, as " N key, N key" after
 * `lead'; nothing if none is. Returns 1 if it printed. */
static int print_nonzero(const struct jdoc *d, int root, const char *path, const char *lead)
{
    int r = jpath(d, root, path), first = 1;

    if (r < 0 || d->v[r].t != J_OBJ)
        return 0;
    for (int i = r + 1; i < d->v[r].next;) {
        char key[64];
        int val = d->v[i].next;
        jstr(d, i, key, sizeof(key), "?");
        if (d->v[val].t != J_OBJ && jnum(d, val) > 0) {
            printf("%s %.0f %s", first ? lead : ",", jnum(d, val), key);
            first = 0;
        }
        i = d->v[val].next;
    }
    return !first;
}

/* Flows the server refused (client), and the SOCKS5 front's figures when it has one. */
static void print_refused_socks(const struct jdoc *d, int root)
{
    char listen[128];
    int s = jget(d, root, "socks");

    if (print_nonzero(d, root, "refused", "refused by the server:"))
        printf("\n");
    if (s < 0 || d->v[s].t != J_OBJ)
        return;
    jstr(d, jget(d, s, "listen"), listen, sizeof(listen), "?");
    printf("socks %s: %.0f/%.0f associations, %.0f made, %.0f refused; datagrams %.0f in, %.0f out",
           listen, jnum(d, jpath(d, s, "associations.open")),
           jnum(d, jpath(d, s, "associations.max")), jnum(d, jpath(d, s, "associations.total")),
           jnum(d, jpath(d, s, "associations.refused")), jnum(d, jpath(d, s, "datagrams.in")),
           jnum(d, jpath(d, s, "datagrams.out")));
    print_nonzero(d, s, "datagrams.dropped", "; dropped:");
    print_nonzero(d, s, "connections", "; connections:");
    printf("\n");
}

static void print_header(const struct jdoc *d, int root, const char *role)
{
    char file[600], listen[128], extra[160], up[32];

    jstr(d, jget(d, root, "config"), file, sizeof(file), "?");
    jstr(d, jget(d, root, "listen"), listen, sizeof(listen), "?");
    fmt_ms_ago(up, sizeof(up), d, jget(d, root, "uptime_ms"));
    /* Two lines, so that a long configuration path does not push the rest past 100 columns. */
    printf("%s %s (pid %.0f, up %s)\nlistening on %s", role, file, jnum(d, jget(d, root, "pid")),
           up, listen);
    if (jstr(d, jget(d, root, "mode"), extra, sizeof(extra), NULL))
        printf(", mode %s", extra);
    if (jstr(d, jget(d, root, "target"), extra, sizeof(extra), NULL))
        printf(", target %s", extra);
    printf("\n");
}

static void print_duplicates(const struct jdoc *d, int root)
{
    int k = jpath(d, root, "counters.duplicates");

    if (jis_num(d, k))
        printf(", %.0f duplicate copies dropped", jnum(d, k));
}

static void print_client(const struct jdoc *d, int root, int wide)
{
    int s = jget(d, root, "session"), paths = jget(d, root, "paths");
    char state[32], id[40], age[32], heard[32], silent[32];
    struct row rows[64];
    struct table t = {.wide = wide, .with_remote = wide, .with_mtu = wide};
    unsigned n = 0;

    print_header(d, root, "client");
    jstr(d, jget(d, s, "state"), state, sizeof(state), "?");
    jstr(d, jget(d, s, "id"), id, sizeof(id), "-");
    fmt_ms_ago(age, sizeof(age), d, jget(d, s, "age_ms"));
    fmt_ms_ago(heard, sizeof(heard), d, jget(d, s, "last_heard_ms"));
    if (strcmp(state, "established") == 0)
        printf("session established, id %s, %s old, last heard %s ago, %.0f so far", id, age, heard,
               jnum(d, jget(d, s, "established")));
    else
        printf("session: none yet (%s)", state);
    if (jis_num(d, jget(d, s, "silent_ms"))) {
        fmt_duration(silent, sizeof(silent), jnum(d, jget(d, s, "silent_ms")));
        printf("; no answer for %s (%.0f handshakes sent)", silent,
               jnum(d, jget(d, s, "handshakes_sent")));
    }
    printf("\n");
    printf("flows %.0f/%.0f", jnum(d, jpath(d, root, "flows.used")),
           jnum(d, jpath(d, root, "flows.max")));
    if (jis_num(d, jpath(d, root, "counters.copies_per_packet")))
        printf(", %.2f copies per packet", jnum(d, jpath(d, root, "counters.copies_per_packet")));
    print_duplicates(d, root);
    printf("\n");
    if (paths >= 0 && d->v[paths].t == J_ARR) {
        for (int p = paths + 1; p < d->v[paths].next && n < 64; p = d->v[p].next, n++) {
            struct row *r = &rows[n];
            char label[128];
            if (!jstr(d, jget(d, p, "label"), label, sizeof(label), NULL) &&
                !jstr(d, jget(d, p, "name"), label, sizeof(label), NULL))
                label[0] = '\0';
            if (!label[0])
                jstr(d, jget(d, p, "bridge"), label, sizeof(label), "");
            snprintf(r->cell, sizeof(r->cell), "%u %s", n + 1, label);
            jstr(d, jget(d, p, "remote"), r->remote, sizeof(r->remote), "-");
            r->p = p;
            r->up = jget(d, p, "tx");
            r->down = jget(d, p, "rx");
        }
    }
    print_table(&t, d, rows, n);
    if (!wide)
        print_mtus(d, root);
    print_send_errors(d, root);
    print_rejected(d, root);
    print_split(d, root);
    print_refused_socks(d, root);
}

static void print_server(const struct jdoc *d, int root, int wide)
{
    int list = jpath(d, root, "sessions.list");

    print_header(d, root, "server");
    printf("sessions %.0f/%.0f, flows %.0f/%.0f", jnum(d, jpath(d, root, "sessions.used")),
           jnum(d, jpath(d, root, "sessions.max")), jnum(d, jpath(d, root, "flows.used")),
           jnum(d, jpath(d, root, "flows.max")));
    print_duplicates(d, root);
    printf("\n");
    if (list >= 0 && d->v[list].t == J_ARR) {
        for (int s = list + 1; s < d->v[list].next; s = d->v[s].next) {
            char id[40], mode[32], age[32], heard[32];
            int paths = jget(d, s, "paths");
            struct row rows[64];
            struct table t = {.wide = wide};
            unsigned n = 0;

            jstr(d, jget(d, s, "id"), id, sizeof(id), "-");
            jstr(d, jget(d, s, "mode"), mode, sizeof(mode), "?");
            fmt_ms_ago(age, sizeof(age), d, jget(d, s, "age_ms"));
            fmt_ms_ago(heard, sizeof(heard), d, jget(d, s, "last_heard_ms"));
            printf("session %s (%s%s), %s old, last heard %s ago, %.0f flows\n", id, mode,
                   jbool(d, jget(d, s, "confirmed")) ? "" : ", unconfirmed", age, heard,
                   jnum(d, jget(d, s, "flows")));
            if (paths < 0 || d->v[paths].t != J_ARR)
                continue;
            for (int p = paths + 1; p < d->v[paths].next && n < 64; p = d->v[p].next, n++) {
                struct row *r = &rows[n];
                char remote[128];
                int cp = jget(d, p, "client_path");
                jstr(d, jget(d, p, "remote"), remote, sizeof(remote), "-");
                /* The client's number for the path (from 1), and where it arrives from. */
                if (jis_num(d, cp))
                    snprintf(r->cell, sizeof(r->cell), "%.0f %s", jnum(d, cp) + 1, remote);
                else
                    snprintf(r->cell, sizeof(r->cell), "? %s", remote);
                r->remote[0] = '\0';
                r->p = p;
                r->up = jget(d, p, "rx");
                r->down = jget(d, p, "tx");
            }
            print_table(&t, d, rows, n);
        }
    }
    print_send_errors(d, root);
    print_rejected(d, root);
    print_split(d, root);
    {
        int af = jget(d, root, "auth_failures");
        if (af >= 0 && d->v[af].t == J_ARR) {
            for (int e = af + 1; e < d->v[af].next; e = d->v[e].next) {
                char src[128], last[32];
                jstr(d, jget(d, e, "source"), src, sizeof(src), "?");
                fmt_ms_ago(last, sizeof(last), d, jget(d, e, "last_ms"));
                printf("failed authentication: %.0f from %s, last %s ago (another secret?)\n",
                       jnum(d, jget(d, e, "count")), src, last);
            }
        }
    }
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

static int show(struct side *sides, int n, int json, int wide, const char *cfgfile)
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
                print_client(&d, 0, wide);
            } else {
                print_server(&d, 0, wide);
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
    int nrest = 0, json = 0, watch = 0, wide = 0, want_client = 0, want_server = 0, demo = 0, n = 0,
        rc;

    rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (!rest)
        return MPT_EXIT_FAIL;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (i > 0 && strcmp(argv[i], "--watch") == 0)
            watch = 1;
        else if (i > 0 && strcmp(argv[i], "--wide") == 0)
            wide = 1;
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
        rc = show(sides, n, json, wide, cfg.file);
        goto out;
    }
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    while (!interrupted) {
        struct timespec ts = {.tv_sec = 1};
        if (!json && isatty(STDOUT_FILENO))
            printf("\033[H\033[2J");
        show(sides, n, json, wide, cfg.file);
        nanosleep(&ts, NULL);
    }
    rc = MPT_EXIT_OK;
out:
    for (int i = 0; i < n; i++)
        free(sides[i].doc);
    return rc;
}
