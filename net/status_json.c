/* The status document, schema mptunnel-status/2 (packaging/STATUS.md,
 * packaging/status-schema.json): a bounded JSON writer and what the client and the server report.
 * Times come from the loop and are passed in; the core is only read. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/wire.h"
#include "net/control.h"
#include "net/status.h"
#include "net/status_state.h"

/* ---- JSON writer ---- */

/* Room kept for closing every open container, `,"truncated":true' and the NUL. */
#define JSON_RESERVE(j) ((size_t)(j)->wdepth + 24)

void mpt_json_init(struct mpt_json *j, char *buf, size_t cap)
{
    memset(j, 0, sizeof(*j));
    j->buf = buf;
    j->cap = cap;
    buf[0] = '\0';
}

/* Appends within the limit; on overflow sets *ovf and writes nothing more. */
static void put(struct mpt_json *j, const char *s, size_t n, size_t limit, int *ovf)
{
    if (*ovf || j->len + n > limit) {
        *ovf = 1;
        return;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

static void put_escaped(struct mpt_json *j, const char *s, size_t limit, int *ovf)
{
    put(j, "\"", 1, limit, ovf);
    for (const unsigned char *p = (const unsigned char *)s; *p && !*ovf; p++) {
        char e[8];
        if (*p == '"' || *p == '\\') {
            e[0] = '\\';
            e[1] = (char)*p;
            put(j, e, 2, limit, ovf);
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(e, sizeof(e), "\\u%04x", *p);
            put(j, e, 6, limit, ovf);
        } else {
            put(j, (const char *)p, 1, limit, ovf);
        }
    }
    put(j, "\"", 1, limit, ovf);
}

/* Writes `,"key":' as needed then the raw value text (or, for a string, the escaped value).
 * All of it or nothing. Returns 0 if written. */
static int value(struct mpt_json *j, const char *key, const char *raw, const char *str)
{
    size_t saved = j->len, limit;
    int ovf = 0;

    if (j->truncated)
        return -1;
    limit = j->cap - JSON_RESERVE(j);
    if (j->cap < JSON_RESERVE(j))
        limit = 0;
    if (j->wdepth > 0) {
        int lvl = j->wdepth - 1;
        if (!j->first[lvl])
            put(j, ",", 1, limit, &ovf);
        if (j->is_obj[lvl])
            put_escaped(j, key ? key : "", limit, &ovf);
        if (j->is_obj[lvl])
            put(j, ":", 1, limit, &ovf);
    }
    if (str)
        put_escaped(j, str, limit, &ovf);
    else if (raw)
        put(j, raw, strlen(raw), limit, &ovf);
    else
        put(j, "null", 4, limit, &ovf);
    if (ovf) {
        j->len = saved;
        j->buf[j->len] = '\0';
        j->truncated = 1;
        return -1;
    }
    if (j->wdepth > 0)
        j->first[j->wdepth - 1] = 0;
    j->buf[j->len] = '\0';
    return 0;
}

static void open_container(struct mpt_json *j, const char *key, int is_obj)
{
    if (j->depth >= MPT_JSON_MAX_DEPTH - 1)
        j->truncated = 1;
    if (value(j, key, is_obj ? "{" : "[", NULL) == 0) {
        j->first[j->wdepth] = 1;
        j->is_obj[j->wdepth] = (uint8_t)is_obj;
        j->wdepth++;
    }
    j->depth++;
}

void mpt_json_obj(struct mpt_json *j, const char *key)
{
    open_container(j, key, 1);
}

void mpt_json_arr(struct mpt_json *j, const char *key)
{
    open_container(j, key, 0);
}

void mpt_json_end(struct mpt_json *j)
{
    static const char trunc[] = ",\"truncated\":true";

    if (j->depth == 0)
        return;
    if (j->depth > j->wdepth) {
        j->depth--;
        return;
    }
    /* The reserve guarantees room for these. */
    if (j->wdepth == 1 && j->is_obj[0] && j->truncated) {
        size_t n = j->first[0] ? sizeof(trunc) - 2 : sizeof(trunc) - 1;
        memcpy(j->buf + j->len, trunc + (sizeof(trunc) - 1 - n), n);
        j->len += n;
    }
    j->buf[j->len++] = j->is_obj[j->wdepth - 1] ? '}' : ']';
    j->buf[j->len] = '\0';
    j->depth--;
    j->wdepth--;
}

void mpt_json_str(struct mpt_json *j, const char *key, const char *val)
{
    value(j, key, NULL, val ? val : "");
}

void mpt_json_u64(struct mpt_json *j, const char *key, uint64_t val)
{
    char t[32];

    snprintf(t, sizeof(t), "%" PRIu64, val);
    value(j, key, t, NULL);
}

void mpt_json_int(struct mpt_json *j, const char *key, long long val)
{
    char t[32];

    snprintf(t, sizeof(t), "%lld", val);
    value(j, key, t, NULL);
}

void mpt_json_num(struct mpt_json *j, const char *key, double val)
{
    char t[40];

    if (!isfinite(val)) {
        value(j, key, "null", NULL);
        return;
    }
    snprintf(t, sizeof(t), "%.10g", val);
    value(j, key, t, NULL);
}

void mpt_json_bool(struct mpt_json *j, const char *key, int val)
{
    value(j, key, val ? "true" : "false", NULL);
}

void mpt_json_null(struct mpt_json *j, const char *key)
{
    value(j, key, "null", NULL);
}

/* ---- rates ---- */

void mpt_status_rate_sample(struct mpt_status_rate *r, uint64_t dgrams, uint64_t bytes,
                            uint64_t dt_us)
{
    /* Counters that went back belong to something new in the same slot: start again. */
    if (dt_us == 0 || dgrams < r->dgrams || bytes < r->bytes) {
        r->pps = 0;
        r->bps = 0;
    } else {
        r->pps = (double)(dgrams - r->dgrams) * 1e6 / (double)dt_us;
        r->bps = (double)(bytes - r->bytes) * 8e6 / (double)dt_us;
    }
    r->dgrams = dgrams;
    r->bytes = bytes;
}

/* ---- pieces both roles share ---- */

/* Milliseconds from `then` to `now`, or null if `then` is 0 (never). */
static void ms_ago(struct mpt_json *j, const char *key, uint64_t now, uint64_t then)
{
    if (!then)
        mpt_json_null(j, key);
    else
        mpt_json_u64(j, key, now > then ? (now - then) / 1000 : 0);
}

static void ms_value(struct mpt_json *j, const char *key, uint64_t us)
{
    if (!us)
        mpt_json_null(j, key);
    else
        mpt_json_num(j, key, (double)us / 1000.0);
}

static void direction(struct mpt_json *j, const char *key, uint64_t dgrams, uint64_t bytes,
                      const struct mpt_status_rate *r)
{
    mpt_json_obj(j, key);
    mpt_json_u64(j, "packets", dgrams);
    mpt_json_u64(j, "bytes", bytes);
    mpt_json_num(j, "bps", r->bps);
    mpt_json_num(j, "pps", r->pps);
    mpt_json_end(j);
}

static void header(struct mpt_json *j, const char *role, const char *file, uint64_t now,
                   uint64_t start)
{
    mpt_json_str(j, "schema", MPT_STATUS_SCHEMA);
    mpt_json_str(j, "role", role);
    mpt_json_str(j, "version", MPT_VERSION);
    mpt_json_int(j, "pid", (long long)getpid());
    mpt_json_str(j, "config", file);
    mpt_json_u64(j, "uptime_ms", now > start ? (now - start) / 1000 : 0);
}

static void counters(struct mpt_json *j, const struct mpt_counters *c)
{
    mpt_json_obj(j, "counters");
    mpt_json_u64(j, "rx_packets", c->rx_dgrams);
    mpt_json_u64(j, "rx_bytes", c->rx_bytes);
    mpt_json_u64(j, "tx_packets", c->tx_dgrams);
    mpt_json_u64(j, "tx_bytes", c->tx_bytes);
    mpt_json_u64(j, "app_rx", c->app_rx);
    mpt_json_u64(j, "app_tx", c->app_tx);
    mpt_json_u64(j, "sealed", c->sealed);
    mpt_json_u64(j, "opened", c->opened);
    mpt_json_u64(j, "handshakes", c->handshakes);
    mpt_json_u64(j, "duplicates", c->duplicates);
}

/* Datagrams too large for their paths, sent as pieces and rebuilt from them (PROTOCOL.md §5). */
static void split_stats(struct mpt_json *j, const struct mpt_split_stats *st)
{
    mpt_json_obj(j, "split");
    mpt_json_u64(j, "packets", st->split);
    mpt_json_u64(j, "pieces_sent", st->pieces_tx);
    mpt_json_u64(j, "pieces_received", st->pieces_rx);
    mpt_json_u64(j, "reassembled", st->reassembled);
    mpt_json_obj(j, "dropped");
    for (int i = 0; i < MPT_SPLIT_DROP_COUNT; i++)
        mpt_json_u64(j, mpt_split_drop_names[i], st->drops[i]);
    mpt_json_end(j);
    mpt_json_end(j);
}

static void rejected(struct mpt_json *j, const struct mpt_counters *c)
{
    uint64_t total = 0;

    mpt_json_obj(j, "rejected");
    for (int i = 0; i < MPT_DROP_COUNT; i++) {
        mpt_json_u64(j, mpt_drop_names[i], c->drops[i]);
        total += c->drops[i];
    }
    mpt_json_u64(j, "total", total);
    mpt_json_end(j);
}

unsigned mpt_status_overhead(const struct mpt_addr *remote)
{
    return mpt_udp_addr_headers(&remote->u.sa) + MPT_DATA_OVERHEAD + MPT_FLOW_HDR_LEN;
}

/* Datagrams lost by kind, their total, and the GSO runs sent again one by one. */
static void send_errors(struct mpt_json *j, const char *key, const struct mpt_udp_errors *e)
{
    mpt_json_obj(j, key);
    mpt_json_u64(j, "congestion", e->congestion);
    mpt_json_u64(j, "too_big", e->too_big);
    mpt_json_u64(j, "unreachable", e->unreachable);
    mpt_json_u64(j, "other", e->other);
    mpt_json_u64(j, "total", mpt_udp_errors_total(e));
    mpt_json_u64(j, "gso_resent", e->gso_resent);
    mpt_json_end(j);
}

/* Everything the process's sockets failed to send. */
static void send_totals(struct mpt_json *j, mpt_status_send_errors_cb cb, void *drv)
{
    struct mpt_udp_errors e;

    memset(&e, 0, sizeof(e));
    if (cb)
        cb(drv, &e);
    send_errors(j, "send_errors", &e);
}

static const char *state_name(unsigned st)
{
    const char *n = st <= MPT_PATH_DISABLED ? mpt_path_state_name((enum mpt_path_state)st) : NULL;
    return n ? n : "unknown";
}

static const char *mode_name(unsigned m)
{
    const char *n = m <= MPT_MODE_FEC ? mpt_mode_name((enum mpt_sched_mode)m) : NULL;
    return n ? n : "unknown";
}

/* ---- client ---- */

/* What the document says of each path, from the configuration. */
static void client_paths(struct mpt_status_client *st, const struct mpt_status_client_info *info)
{
    const struct mpt_client_config *cc = &info->cfg->client;

    st->mode = (unsigned)cc->mode;
    st->npaths = info->npaths < MPT_MAX_PATHS ? info->npaths : MPT_MAX_PATHS;
    memset(st->paths, 0, sizeof(st->paths));
    for (unsigned i = 0; i < st->npaths; i++) {
        struct status_client_path *p = &st->paths[i];
        const struct mpt_path_config *pc = &cc->paths[i];
        const struct mpt_client_path *cp = &info->core->paths[i];

        snprintf(p->name, sizeof(p->name), "%s", pc->name);
        mpt_path_label(pc, p->label, sizeof(p->label));
        mpt_hostport_format(&pc->bridge, p->bridge, sizeof(p->bridge));
        mpt_addr_str(&info->remote[i], p->remote, sizeof(p->remote));
        p->priority = pc->priority;
        p->weight = pc->weight;
        p->overhead = mpt_status_overhead(&info->remote[i]);
        p->tx.dgrams = cp->tx_dgrams;
        p->tx.bytes = cp->tx_bytes;
        p->rx.dgrams = cp->rx_dgrams;
        p->rx.bytes = cp->rx_bytes;
    }
}

struct mpt_status_client *mpt_status_client_new(const struct mpt_status_client_info *info,
                                                uint64_t now_us)
{
    struct mpt_status_client *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    st->core = info->core;
    st->send_errors = info->send_errors;
    st->mtu = info->mtu;
    st->path_errors = info->path_errors;
    st->drv = info->drv;
    st->command = info->command;
    st->command_arg = info->command_arg;
    st->socks = info->socks;
    snprintf(st->file, sizeof(st->file), "%s", info->cfg->file);
    mpt_addr_str(&info->listen, st->listen, sizeof(st->listen));
    st->max_flows = info->cfg->client.max_flows;
    st->start_us = now_us;
    st->sample_us = now_us;
    client_paths(st, info);
    return st;
}

void mpt_status_client_update(struct mpt_status_client *st,
                              const struct mpt_status_client_info *info, uint64_t now_us)
{
    client_paths(st, info);
    st->sample_us = now_us;
}

void mpt_status_client_free(struct mpt_status_client *st)
{
    free(st);
}

void mpt_status_client_sample(struct mpt_status_client *st, uint64_t now_us)
{
    uint64_t dt = now_us > st->sample_us ? now_us - st->sample_us : 0;

    for (unsigned i = 0; i < st->npaths; i++) {
        const struct mpt_client_path *cp = &st->core->paths[i];
        mpt_status_rate_sample(&st->paths[i].tx, cp->tx_dgrams, cp->tx_bytes, dt);
        mpt_status_rate_sample(&st->paths[i].rx, cp->rx_dgrams, cp->rx_bytes, dt);
    }
    st->sample_us = now_us;
}

static const char *client_state_name(enum mpt_client_state s)
{
    switch (s) {
    case MPT_CLIENT_IDLE:
        return "idle";
    case MPT_CLIENT_HANDSHAKE:
        return "handshake";
    case MPT_CLIENT_ESTABLISHED:
        return "established";
    }
    return "unknown";
}

/* The SOCKS5 front's figures ([client] socks), or null without one. */
static void socks_stats(struct mpt_json *j, const struct mpt_socks_stats *s)
{
    if (!s) {
        mpt_json_null(j, "socks");
        return;
    }
    mpt_json_obj(j, "socks");
    mpt_json_str(j, "listen", s->listen);
    mpt_json_obj(j, "connections");
    mpt_json_u64(j, "total", s->connections);
    mpt_json_u64(j, "refused", s->connections_refused);
    mpt_json_u64(j, "handshake_failed", s->handshake_failed);
    mpt_json_u64(j, "handshake_timeouts", s->handshake_timeouts);
    mpt_json_u64(j, "unsupported_command", s->unsupported);
    mpt_json_end(j);
    mpt_json_obj(j, "associations");
    mpt_json_u64(j, "open", s->assoc_open);
    mpt_json_u64(j, "max", s->max_assoc);
    mpt_json_u64(j, "total", s->assoc_total);
    mpt_json_u64(j, "refused", s->assoc_refused);
    mpt_json_u64(j, "max_destinations", s->max_dests);
    mpt_json_end(j);
    mpt_json_obj(j, "datagrams");
    mpt_json_u64(j, "in", s->dgrams_in);
    mpt_json_u64(j, "out", s->dgrams_out);
    mpt_json_obj(j, "dropped");
    for (int i = 0; i < MPT_SOCKS_DROP_COUNT; i++)
        mpt_json_u64(j, mpt_socks_drop_names[i], s->drops[i]);
    mpt_json_end(j);
    mpt_json_end(j);
    mpt_json_end(j);
}

/* fec mode (PROTOCOL.md §11): datagrams coded and the repairs sent for them, that way; and the
 * other way's datagrams rebuilt from repairs and given up. */
static void fec_stats(struct mpt_json *j, uint64_t sources, uint64_t repairs, uint64_t recovered,
                      uint64_t given_up)
{
    mpt_json_obj(j, "fec");
    mpt_json_u64(j, "coded", sources);
    mpt_json_u64(j, "repairs_sent", repairs);
    if (sources)
        mpt_json_num(j, "repair_ratio", (double)repairs / (double)sources);
    else
        mpt_json_null(j, "repair_ratio");
    mpt_json_u64(j, "recovered", recovered);
    mpt_json_u64(j, "given_up", given_up);
    mpt_json_end(j);
}

/* The reorder buffer (PROTOCOL.md §8.1, balance mode): datagrams that waited for an earlier one,
 * gaps given up after their wait, datagrams that came after their gap was given up (delivered at
 * once), datagrams it could not hold, those it holds now, and the extra wait late arrivals added
 * (the client's; the server's queues each have their own). */
static void reorder_stats(struct mpt_json *j, const struct mpt_reorder *r, int with_extra)
{
    mpt_json_obj(j, "reorder");
    mpt_json_u64(j, "held", r->st.held);
    mpt_json_u64(j, "gaps", r->st.gaps);
    mpt_json_u64(j, "late", r->st.late);
    mpt_json_u64(j, "overflow", r->st.overflow);
    mpt_json_u64(j, "holding", r->used);
    if (with_extra && r->nq)
        mpt_json_num(j, "extra_wait_ms", (double)r->q[0].extra_us / 1000.0);
    mpt_json_end(j);
}

void mpt_status_client_write(struct mpt_status_client *st, struct mpt_json *j, uint64_t now)
{
    const struct mpt_client *c = st->core;
    char sid[24];

    mpt_json_obj(j, NULL);
    header(j, "client", st->file, now, st->start_us);
    mpt_json_str(j, "listen", st->listen);
    mpt_json_str(j, "mode", mode_name(st->mode));

    mpt_json_obj(j, "session");
    mpt_json_str(j, "state", client_state_name(c->state));
    if (c->state == MPT_CLIENT_ESTABLISHED) {
        snprintf(sid, sizeof(sid), "%016" PRIx64, c->sid);
        mpt_json_str(j, "id", sid);
        ms_ago(j, "age_ms", now, c->established_us);
    } else {
        mpt_json_null(j, "id");
        mpt_json_null(j, "age_ms");
    }
    ms_ago(j, "last_heard_ms", now, c->last_auth_us);
    mpt_json_u64(j, "established", c->sessions_established);
    fec_stats(j, c->fec_sources, c->fec_repairs_tx, c->fec_recovered, c->fec_rx.given_up);
    if (mpt_client_silence_us(c, now)) {
        mpt_json_u64(j, "silent_ms", mpt_client_silence_us(c, now) / 1000);
        mpt_json_u64(j, "handshakes_sent", c->hs_attempts);
    } else {
        mpt_json_null(j, "silent_ms");
        mpt_json_null(j, "handshakes_sent");
    }
    mpt_json_end(j);
    reorder_stats(j, &c->reorder, 1);

    mpt_json_obj(j, "flows");
    mpt_json_u64(j, "used", mpt_client_flows(c));
    mpt_json_u64(j, "max", st->max_flows);
    mpt_json_end(j);
    /* Flows the server refused, by reason, and their datagrams dropped here meanwhile. */
    mpt_json_obj(j, "refused");
    for (int i = 1; i < MPT_FLOW_STATUS_COUNT; i++)
        mpt_json_u64(j, mpt_flow_status_names[i], c->refused[i]);
    mpt_json_u64(j, "dropped", c->refused_drops);
    mpt_json_end(j);
    socks_stats(j, st->socks);

    mpt_json_arr(j, "paths");
    for (unsigned i = 0; i < st->npaths; i++) {
        const struct status_client_path *p = &st->paths[i];
        const struct mpt_client_path *cp = &c->paths[i];

        mpt_json_obj(j, NULL);
        mpt_json_u64(j, "index", i);
        mpt_json_str(j, "name", p->name);
        mpt_json_str(j, "bridge", p->bridge);
        mpt_json_str(j, "label", p->label);
        mpt_json_str(j, "remote", p->remote);
        mpt_json_u64(j, "priority", p->priority);
        mpt_json_u64(j, "weight", p->weight);
        mpt_json_str(j, "state", state_name(cp->state));
        ms_ago(j, "state_ms", now, cp->state_since_us);
        ms_value(j, "rtt_ms", cp->acks_received ? cp->srtt_us : 0);
        if (cp->acks_received)
            mpt_json_num(j, "rttvar_ms", (double)cp->rttvar_us / 1000.0);
        else
            mpt_json_null(j, "rttvar_ms");
        mpt_json_obj(j, "loss");
        mpt_json_num(j, "up", cp->loss_up);
        mpt_json_num(j, "down", cp->loss_down);
        mpt_json_bool(j, "known", cp->loss_known);
        mpt_json_bool(j, "unusable_up", cp->unusable[0]);
        mpt_json_bool(j, "unusable_down", cp->unusable[1]);
        mpt_json_end(j);
        mpt_json_obj(j, "probes");
        mpt_json_u64(j, "sent", cp->probes_sent);
        mpt_json_u64(j, "acked", cp->acks_received);
        mpt_json_end(j);
        direction(j, "tx", cp->tx_dgrams, cp->tx_bytes, &p->tx);
        direction(j, "rx", cp->rx_dgrams, cp->rx_bytes, &p->rx);
        {
            struct mpt_udp_errors e;
            unsigned mtu = 0;
            memset(&e, 0, sizeof(e));
            if (st->mtu)
                mtu = st->mtu(st->drv, i, NULL);
            if (st->path_errors)
                st->path_errors(st->drv, i, &e);
            if (mtu) {
                mpt_json_u64(j, "mtu", mtu);
                mpt_json_u64(j, "max_payload", mtu > p->overhead ? mtu - p->overhead : 0);
            } else {
                mpt_json_null(j, "mtu");
                mpt_json_null(j, "max_payload");
            }
            send_errors(j, "send_errors", &e);
        }
        ms_ago(j, "last_heard_ms", now, cp->last_rx_us);
        mpt_json_end(j);
    }
    mpt_json_end(j);

    counters(j, &c->ctr);
    mpt_json_u64(j, "data_packets", c->data_dgrams);
    mpt_json_u64(j, "data_copies", c->data_copies);
    if (c->data_dgrams)
        mpt_json_num(j, "copies_per_packet", (double)c->data_copies / (double)c->data_dgrams);
    else
        mpt_json_null(j, "copies_per_packet");
    mpt_json_end(j);
    send_totals(j, st->send_errors, st->drv);
    rejected(j, &c->ctr);
    split_stats(j, &c->split.st);
    mpt_json_end(j);
}

/* ---- server ---- */

struct mpt_status_server *mpt_status_server_new(const struct mpt_status_server_info *info,
                                                uint64_t now_us)
{
    struct mpt_status_server *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    st->core = info->core;
    st->send_errors = info->send_errors;
    st->mtu = info->mtu;
    st->drv = info->drv;
    st->max_sessions = info->core->p.max_sessions;
    st->max_flows = info->core->p.max_flows;
    st->sessions = calloc(st->max_sessions, sizeof(*st->sessions));
    if (!st->sessions) {
        free(st);
        return NULL;
    }
    snprintf(st->file, sizeof(st->file), "%s", info->cfg->file);
    mpt_addr_str(&info->listen, st->listen, sizeof(st->listen));
    mpt_addr_str(&info->target, st->target, sizeof(st->target));
    st->start_us = now_us;
    st->sample_us = now_us;
    return st;
}

void mpt_status_server_free(struct mpt_status_server *st)
{
    if (!st)
        return;
    free(st->sessions);
    free(st);
}

void mpt_status_server_sample(struct mpt_status_server *st, uint64_t now_us)
{
    uint64_t dt = now_us > st->sample_us ? now_us - st->sample_us : 0;

    for (unsigned s = 0; s < st->max_sessions; s++) {
        const struct mpt_server_session *ss = &st->core->sessions[s];
        struct status_server_session *rs = &st->sessions[s];

        if (ss->sid != rs->sid) {
            memset(rs, 0, sizeof(*rs));
            rs->sid = ss->sid;
        }
        if (!ss->sid)
            continue;
        for (unsigned i = 0; i < ss->npaths && i < MPT_MAX_PATHS; i++) {
            const struct mpt_server_path *sp = &ss->paths[i];
            if (mpt_addr_equal(&rs->addr[i], &sp->addr) == 0) {
                memset(&rs->tx[i], 0, sizeof(rs->tx[i]));
                memset(&rs->rx[i], 0, sizeof(rs->rx[i]));
                rs->addr[i] = sp->addr;
            }
            mpt_status_rate_sample(&rs->tx[i], sp->tx_dgrams, sp->tx_bytes, dt);
            mpt_status_rate_sample(&rs->rx[i], sp->rx_dgrams, sp->rx_bytes, dt);
        }
    }
    st->sample_us = now_us;
}

void mpt_status_server_write(struct mpt_status_server *st, struct mpt_json *j, uint64_t now)
{
    static const struct mpt_status_rate zero;
    const struct mpt_server *s = st->core;
    char sid[24], a[MPT_ADDR_STRLEN];

    mpt_json_obj(j, NULL);
    header(j, "server", st->file, now, st->start_us);
    mpt_json_str(j, "listen", st->listen);
    mpt_json_str(j, "target", st->target);

    mpt_json_obj(j, "sessions");
    mpt_json_u64(j, "used", s->session_slots.used);
    mpt_json_u64(j, "max", st->max_sessions);
    mpt_json_arr(j, "list");
    for (unsigned k = 0; k < st->max_sessions; k++) {
        const struct mpt_server_session *ss = &s->sessions[k];
        const struct status_server_session *rs = &st->sessions[k];
        int rates = rs->sid == ss->sid;

        if (!ss->sid)
            continue;
        mpt_json_obj(j, NULL);
        snprintf(sid, sizeof(sid), "%016" PRIx64, ss->sid);
        mpt_json_str(j, "id", sid);
        ms_ago(j, "age_ms", now, ss->created_us);
        ms_ago(j, "last_heard_ms", now, ss->last_rx_us);
        mpt_json_bool(j, "confirmed", ss->confirmed);
        if (ss->peer < s->p.npeers)
            mpt_json_str(j, "peer", s->peers[ss->peer].peer.name);
        else
            mpt_json_null(j, "peer");
        ms_ago(j, "keys_age_ms", now, ss->init_us);
        mpt_json_str(j, "mode", mode_name(ss->mode));
        mpt_json_u64(j, "flows", ss->nflows);
        mpt_json_arr(j, "paths");
        for (unsigned i = 0; i < ss->npaths && i < MPT_MAX_PATHS; i++) {
            const struct mpt_server_path *sp = &ss->paths[i];
            int same = rates && mpt_addr_equal(&rs->addr[i], &sp->addr);

            mpt_json_obj(j, NULL);
            mpt_json_u64(j, "index", i);
            if (sp->id == MPT_PATH_ID_UNKNOWN)
                mpt_json_null(j, "client_path");
            else
                mpt_json_u64(j, "client_path", sp->id);
            mpt_json_str(j, "remote", mpt_addr_str(&sp->addr, a, sizeof(a)));
            mpt_json_bool(j, "validated", sp->validated);
            mpt_json_str(j, "state", state_name(sp->state));
            ms_value(j, "rtt_ms", sp->srtt_us);
            mpt_json_obj(j, "loss");
            mpt_json_num(j, "up", sp->loss_up);
            mpt_json_num(j, "down", sp->loss_down);
            mpt_json_end(j);
            mpt_json_u64(j, "use", sp->use);
            direction(j, "tx", sp->tx_dgrams, sp->tx_bytes, same ? &rs->tx[i] : &zero);
            direction(j, "rx", sp->rx_dgrams, sp->rx_bytes, same ? &rs->rx[i] : &zero);
            {
                unsigned mtu = st->mtu ? st->mtu(st->drv, i, &sp->addr) : 0;
                if (mtu)
                    mpt_json_u64(j, "mtu", mtu);
                else
                    mpt_json_null(j, "mtu");
            }
            ms_ago(j, "last_heard_ms", now, sp->last_rx_us);
            mpt_json_end(j);
        }
        mpt_json_end(j);
        fec_stats(j, ss->fec_sources, ss->fec_repairs, ss->fec_recovered, ss->fec_given_up);
        mpt_json_end(j);
    }
    mpt_json_end(j);
    mpt_json_end(j);

    mpt_json_obj(j, "flows");
    mpt_json_u64(j, "used", s->flow_slots.used);
    mpt_json_u64(j, "max", st->max_flows);
    mpt_json_u64(j, "closed_by_client", s->flows_closed_by_client);
    mpt_json_end(j);
    /* Names that flows named: the cache of answers, and the lookups it spared (§5). */
    mpt_json_obj(j, "names");
    mpt_json_u64(j, "cached", mpt_names_cached(&s->names, now));
    mpt_json_u64(j, "max", MPT_NAMES_SIZE);
    mpt_json_u64(j, "lookups", s->names.pending);
    mpt_json_u64(j, "hits", s->names.hits);
    mpt_json_u64(j, "misses", s->names.misses);
    mpt_json_u64(j, "given_up", s->names.given_up);
    mpt_json_end(j);
    reorder_stats(j, &s->reorder, 0);

    counters(j, &s->ctr);
    mpt_json_end(j);
    send_totals(j, st->send_errors, st->drv);
    rejected(j, &s->ctr);
    /* Flows that named a target and were refused, by reason: nothing was sent towards them. */
    mpt_json_obj(j, "refused");
    for (int i = 1; i < MPT_FLOW_STATUS_COUNT; i++)
        mpt_json_u64(j, mpt_flow_status_names[i], s->refused[i]);
    mpt_json_end(j);
    /* Key mode: each peer, whose rules its flows are held to, and its refusals. */
    if (s->p.npeers) {
        mpt_json_arr(j, "peers");
        for (unsigned k = 0; k < s->p.npeers; k++) {
            const struct mpt_server_peer_state *ps = &s->peers[k];
            mpt_json_obj(j, NULL);
            mpt_json_str(j, "name", ps->peer.name);
            mpt_json_str(j, "rules", ps->peer.own ? "own" : "server");
            mpt_json_u64(j, "handshakes", ps->handshakes);
            mpt_json_obj(j, "refused");
            for (int i = 1; i < MPT_FLOW_STATUS_COUNT; i++)
                mpt_json_u64(j, mpt_flow_status_names[i], ps->refused[i]);
            mpt_json_end(j);
            mpt_json_end(j);
        }
        mpt_json_end(j);
    }
    split_stats(j, &s->split.st);
    /* The sources whose datagrams failed authentication lately (a client with another secret). */
    mpt_json_arr(j, "auth_failures");
    for (unsigned i = 0; i < MPT_SERVER_AUTHLOG_SLOTS; i++) {
        const struct mpt_server_authfail *e = &s->authfail[i];
        if (!e->last_us)
            continue;
        mpt_json_obj(j, NULL);
        mpt_json_str(j, "source", mpt_addr_str(&e->src, a, sizeof(a)));
        mpt_json_u64(j, "count", e->total);
        ms_ago(j, "last_ms", now, e->last_us);
        mpt_json_end(j);
    }
    mpt_json_end(j);
    mpt_json_end(j);
}

/* ---- the control socket behind each ---- */

static void on_client_sample(void *arg, uint64_t now_us)
{
    mpt_status_client_sample(arg, now_us);
}

static void on_client_snapshot(void *arg, struct mpt_json *j, uint64_t now_us)
{
    mpt_status_client_write(arg, j, now_us);
}

static void on_client_release(void *arg)
{
    mpt_status_client_free(arg);
}

static void on_client_command(void *arg, const char *line)
{
    struct mpt_status_client *st = arg;

    if (st->command)
        st->command(st->command_arg, line);
}

static void on_server_sample(void *arg, uint64_t now_us)
{
    mpt_status_server_sample(arg, now_us);
}

static void on_server_snapshot(void *arg, struct mpt_json *j, uint64_t now_us)
{
    mpt_status_server_write(arg, j, now_us);
}

static void on_server_release(void *arg)
{
    mpt_status_server_free(arg);
}

static int start(struct mpt_loop *loop, const struct mpt_config *cfg, enum mpt_config_role role,
                 const struct mpt_control_ops *ops, void *st, struct mpt_control **out)
{
    const char *rolename = role == MPT_ROLE_CLIENT ? "client" : "server";
    char path[256];
    int rc;

    *out = NULL;
    if (!st) {
        MPT_WARN("no control socket for the %s: out of memory", rolename);
        return -ENOMEM;
    }
    rc = mpt_config_control_path(cfg, role, path, sizeof(path));
    if (rc) {
        ops->release(st);
        MPT_WARN("no control socket for the %s: %s", rolename, strerror(-rc));
        return rc;
    }
    rc = mpt_control_start(loop, path, ops, st, out);
    if (rc)
        MPT_WARN("no control socket for the %s: %s: %s", rolename, path, mpt_strerror(rc));
    else
        MPT_INFO("control socket %s", path);
    return rc;
}

int mpt_status_client_start(struct mpt_loop *loop, const struct mpt_status_client_info *info,
                            struct mpt_control **out)
{
    static const struct mpt_control_ops ops = {on_client_sample, on_client_snapshot,
                                               on_client_release, on_client_command};

    return start(loop, info->cfg, MPT_ROLE_CLIENT, &ops,
                 mpt_status_client_new(info, mpt_loop_now_us(loop)), out);
}

int mpt_status_server_start(struct mpt_loop *loop, const struct mpt_status_server_info *info,
                            struct mpt_control **out)
{
    static const struct mpt_control_ops ops = {on_server_sample, on_server_snapshot,
                                               on_server_release, NULL};

    return start(loop, info->cfg, MPT_ROLE_SERVER, &ops,
                 mpt_status_server_new(info, mpt_loop_now_us(loop)), out);
}
