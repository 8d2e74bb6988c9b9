/* The client's and the server's figures as Prometheus text exposition (format 0.0.4), from the
 * same state and core fields as the status document (status_json.c); served by net/metrics.c.
 * Counters are totals since start; per-path series carry `index' and `path' labels on the client
 * (numbered from 1; the path's [path NAME], or its bridge host:port) and `session', `path' and
 * `remote' on the server. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/metrics.h"
#include "net/resolve.h"
#include "net/status.h"
#include "net/status_state.h"

/* ---- text writer ---- */

/* Room kept for mpt_prom_finish's lines. */
#define PROM_RESERVE 192

void mpt_prom_init(struct mpt_prom *p, char *buf, size_t cap)
{
    memset(p, 0, sizeof(*p));
    p->buf = buf;
    p->cap = cap;
    buf[0] = '\0';
}

/* Appends one whole line (or lines) of n bytes, within the reserve unless `final`. */
static void put_line(struct mpt_prom *p, const char *s, size_t n, int final)
{
    size_t limit = final ? p->cap - 1 : p->cap - 1 - PROM_RESERVE;

    if (p->truncated && !final)
        return;
    if (p->cap < PROM_RESERVE + 1 || p->len + n > limit) {
        p->truncated = 1;
        return;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

/* HELP text escapes backslash and newline; label values also the double quote. */
static size_t escape(char *out, size_t room, const char *s, int quote)
{
    size_t n = 0;

    for (; *s; s++) {
        char e = 0;
        if (*s == '\\')
            e = '\\';
        else if (*s == '\n')
            e = 'n';
        else if (quote && *s == '"')
            e = '"';
        if (n + (e ? 2 : 1) >= room)
            break;
        if (e) {
            out[n++] = '\\';
            out[n++] = e;
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
    return n;
}

void mpt_prom_family(struct mpt_prom *p, const char *name, const char *type, const char *help)
{
    char line[768], h[512];
    int n;

    escape(h, sizeof(h), help, 0);
    n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, h, name, type);
    if (n > 0 && (size_t)n < sizeof(line))
        put_line(p, line, (size_t)n, 0);
}

static void sample(struct mpt_prom *p, const char *name, const struct mpt_prom_labels *l,
                   const char *val)
{
    char line[1024];
    int n;

    if (l && l->len)
        n = snprintf(line, sizeof(line), "%s{%s} %s\n", name, l->buf, val);
    else
        n = snprintf(line, sizeof(line), "%s %s\n", name, val);
    if (n > 0 && (size_t)n < sizeof(line))
        put_line(p, line, (size_t)n, 0);
    else
        p->truncated = 1;
}

void mpt_prom_u64(struct mpt_prom *p, const char *name, const struct mpt_prom_labels *labels,
                  uint64_t val)
{
    char t[32];

    snprintf(t, sizeof(t), "%" PRIu64, val);
    sample(p, name, labels, t);
}

void mpt_prom_num(struct mpt_prom *p, const char *name, const struct mpt_prom_labels *labels,
                  double val)
{
    char t[40];

    if (isnan(val))
        snprintf(t, sizeof(t), "NaN");
    else if (isinf(val))
        snprintf(t, sizeof(t), "%s", val > 0 ? "+Inf" : "-Inf");
    else
        snprintf(t, sizeof(t), "%.10g", val);
    sample(p, name, labels, t);
}

void mpt_prom_finish(struct mpt_prom *p)
{
    char line[PROM_RESERVE];
    int n = snprintf(line, sizeof(line),
                     "# HELP mptunnel_scrape_truncated 1 if series were left out (text too big)\n"
                     "# TYPE mptunnel_scrape_truncated gauge\n"
                     "mptunnel_scrape_truncated %d\n",
                     p->truncated ? 1 : 0);

    if (n > 0 && (size_t)n < sizeof(line))
        put_line(p, line, (size_t)n, 1);
}

void mpt_prom_labels_reset(struct mpt_prom_labels *l)
{
    l->len = 0;
    l->buf[0] = '\0';
}

void mpt_prom_label(struct mpt_prom_labels *l, const char *key, const char *val)
{
    char v[sizeof(l->buf)];
    int n;

    escape(v, sizeof(v), val, 1);
    n = snprintf(l->buf + l->len, sizeof(l->buf) - l->len, "%s%s=\"%s\"", l->len ? "," : "", key,
                 v);
    /* Cut short: the last label is dropped, so the set stays well-formed. */
    if (n < 0 || (size_t)n >= sizeof(l->buf) - l->len)
        l->buf[l->len] = '\0';
    else
        l->len += (size_t)n;
}

/* ---- shared pieces ---- */

static void one(struct mpt_prom *p, const char *name, const char *type, const char *help,
                uint64_t v)
{
    mpt_prom_family(p, name, type, help);
    mpt_prom_u64(p, name, NULL, v);
}

static void info(struct mpt_prom *p, const char *role, uint64_t now, uint64_t start)
{
    struct mpt_prom_labels l;

    mpt_prom_family(p, "mptunnel_info", "gauge", "Always 1: the role and version of this process");
    mpt_prom_labels_reset(&l);
    mpt_prom_label(&l, "role", role);
    mpt_prom_label(&l, "version", MPT_VERSION);
    mpt_prom_u64(p, "mptunnel_info", &l, 1);
    mpt_prom_family(p, "mptunnel_uptime_seconds", "gauge", "Seconds since the process started");
    mpt_prom_num(p, "mptunnel_uptime_seconds", NULL,
                 now > start ? (double)(now - start) / 1e6 : 0.0);
}

/* Counters of the whole endpoint: traffic, handshakes, rejected datagrams, send errors. */
static void totals(struct mpt_prom *p, const struct mpt_counters *c, const char *app,
                   mpt_status_send_errors_cb send_errors, void *drv)
{
    struct mpt_udp_errors e = {0};
    const struct {
        const char *name;
        const uint64_t *v;
    } kinds[] = {{"congestion", &e.congestion},
                 {"too_big", &e.too_big},
                 {"unreachable", &e.unreachable},
                 {"other", &e.other}};
    struct mpt_prom_labels l;
    char help[128];

    one(p, "mptunnel_handshakes_total", "counter", "Sessions established (handshakes completed)",
        c->handshakes);
    one(p, "mptunnel_received_packets_total", "counter",
        "Datagrams received from the paths, authenticated and new", c->rx_dgrams);
    one(p, "mptunnel_received_bytes_total", "counter",
        "Bytes of the datagrams received from the paths, authenticated and new", c->rx_bytes);
    one(p, "mptunnel_sent_packets_total", "counter", "Datagrams sent on the paths, every copy",
        c->tx_dgrams);
    one(p, "mptunnel_sent_bytes_total", "counter", "Bytes sent on the paths, every copy",
        c->tx_bytes);
    snprintf(help, sizeof(help), "Datagrams received from %s", app);
    one(p, "mptunnel_app_received_packets_total", "counter", help, c->app_rx);
    snprintf(help, sizeof(help), "Datagrams delivered to %s", app);
    one(p, "mptunnel_app_sent_packets_total", "counter", help, c->app_tx);

    mpt_prom_family(p, "mptunnel_rejected_packets_total", "counter",
                    "Datagrams rejected on arrival, by reason");
    for (int i = 0; i < MPT_DROP_COUNT; i++) {
        mpt_prom_labels_reset(&l);
        mpt_prom_label(&l, "reason", mpt_drop_names[i]);
        mpt_prom_u64(p, "mptunnel_rejected_packets_total", &l, c->drops[i]);
    }
    one(p, "mptunnel_duplicate_packets_total", "counter",
        "Copies of a datagram another path delivered first: dropped, not rejected (multipath "
        "sends them on purpose)",
        c->duplicates);

    if (send_errors)
        send_errors(drv, &e);
    mpt_prom_family(p, "mptunnel_send_errors_total", "counter",
                    "Datagrams the kernel refused to send, dropped, by kind: congestion (queue "
                    "full), too_big, unreachable, other");
    for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        mpt_prom_labels_reset(&l);
        mpt_prom_label(&l, "kind", kinds[i].name);
        mpt_prom_u64(p, "mptunnel_send_errors_total", &l, *kinds[i].v);
    }
    one(p, "mptunnel_queue_full_total", "counter",
        "Copies never sent: the output queue had no room for them", c->queue_full);
    one(p, "mptunnel_gso_resent_total", "counter",
        "Runs of datagrams the kernel refused as one GSO send, sent again one by one (not lost)",
        e.gso_resent);
}

/* fec mode (PROTOCOL.md §11). */
static void fec_totals(struct mpt_prom *p, uint64_t sources, uint64_t repairs, uint64_t recovered,
                       uint64_t given_up)
{
    one(p, "mptunnel_fec_coded_packets_total", "counter",
        "fec mode: datagrams sent as sources of the erasure code", sources);
    one(p, "mptunnel_fec_repairs_sent_total", "counter", "fec mode: repair datagrams sent",
        repairs);
    one(p, "mptunnel_fec_recovered_packets_total", "counter",
        "fec mode: datagrams lost on their paths and rebuilt from repairs", recovered);
    one(p, "mptunnel_fec_given_up_packets_total", "counter",
        "fec mode: lost datagrams whose repairs did not come in time", given_up);
}

/* The reorder buffer (PROTOCOL.md §8.1, balance mode). */
static void reorder_totals(struct mpt_prom *p, const struct mpt_reorder *r)
{
    one(p, "mptunnel_reorder_held_packets_total", "counter",
        "Datagrams the reorder buffer held for an earlier one", r->st.held);
    one(p, "mptunnel_reorder_gaps_total", "counter",
        "Gaps in the datagrams' order given up after their wait (lost, or later than it)",
        r->st.gaps);
    one(p, "mptunnel_reorder_late_packets_total", "counter",
        "Datagrams that came after their gap was given up, delivered at once", r->st.late);
    one(p, "mptunnel_reorder_overflow_packets_total", "counter",
        "Datagrams the reorder buffer could not hold (too large, or full), delivered at once",
        r->st.overflow);
    one(p, "mptunnel_reorder_holding_packets", "gauge", "Datagrams the reorder buffer holds now",
        r->used);
}

/* Datagrams too large for their paths, sent as pieces and rebuilt from them. */
static void split_totals(struct mpt_prom *p, const struct mpt_split_stats *st)
{
    struct mpt_prom_labels l;

    one(p, "mptunnel_split_packets_total", "counter",
        "Datagrams too large for their paths whole, sent as pieces that fit", st->split);
    one(p, "mptunnel_split_pieces_sent_total", "counter",
        "Pieces sent (each once, whatever the copies)", st->pieces_tx);
    one(p, "mptunnel_split_pieces_received_total", "counter",
        "Pieces received, authenticated and new", st->pieces_rx);
    one(p, "mptunnel_reassembled_packets_total", "counter", "Datagrams rebuilt from their pieces",
        st->reassembled);
    mpt_prom_family(p, "mptunnel_reassembly_drops_total", "counter",
                    "Pieces or partial datagrams dropped, by reason: bad (impossible or "
                    "inconsistent), duplicate, expired (over 1 s), evicted (table full)");
    for (int i = 0; i < MPT_SPLIT_DROP_COUNT; i++) {
        mpt_prom_labels_reset(&l);
        mpt_prom_label(&l, "reason", mpt_split_drop_names[i]);
        mpt_prom_u64(p, "mptunnel_reassembly_drops_total", &l, st->drops[i]);
    }
}

static void path_labels(struct mpt_prom_labels *l, const struct mpt_prom_labels *base,
                        const char *key, const char *val)
{
    *l = *base;
    mpt_prom_label(l, key, val);
}

/* Flows naming a target that the server refused, by reason (on the client: as the server said). */
static void refused_totals(struct mpt_prom *p, const uint64_t *refused)
{
    mpt_prom_family(p, "mptunnel_refused_flows_total", "counter",
                    "Flows naming a target that were refused, by reason (the target was never "
                    "contacted)");
    for (int i = 1; i < MPT_FLOW_STATUS_COUNT; i++) {
        struct mpt_prom_labels why;
        mpt_prom_labels_reset(&why);
        mpt_prom_label(&why, "reason", mpt_flow_status_names[i]);
        mpt_prom_u64(p, "mptunnel_refused_flows_total", &why, refused[i]);
    }
}

/* The SOCKS5 front's figures, if there is one. */
static void socks_totals(struct mpt_prom *p, const struct mpt_socks_stats *s)
{
    struct mpt_prom_labels l;

    if (!s)
        return;
    one(p, "mptunnel_socks_connections_total", "counter", "SOCKS control connections accepted",
        s->connections);
    one(p, "mptunnel_socks_connections_refused_total", "counter",
        "SOCKS control connections over the limit, closed at once", s->connections_refused);
    mpt_prom_family(p, "mptunnel_socks_handshake_errors_total", "counter",
                    "SOCKS control connections ended in their handshake, by reason: failed "
                    "(malformed, no acceptable method, wrong password), timeout, unsupported "
                    "(CONNECT, BIND: reply 7)");
    mpt_prom_labels_reset(&l);
    mpt_prom_label(&l, "reason", "failed");
    mpt_prom_u64(p, "mptunnel_socks_handshake_errors_total", &l, s->handshake_failed);
    mpt_prom_labels_reset(&l);
    mpt_prom_label(&l, "reason", "timeout");
    mpt_prom_u64(p, "mptunnel_socks_handshake_errors_total", &l, s->handshake_timeouts);
    mpt_prom_labels_reset(&l);
    mpt_prom_label(&l, "reason", "unsupported");
    mpt_prom_u64(p, "mptunnel_socks_handshake_errors_total", &l, s->unsupported);
    one(p, "mptunnel_socks_associations", "gauge", "SOCKS UDP associations open", s->assoc_open);
    one(p, "mptunnel_socks_associations_max", "gauge", "SOCKS UDP associations allowed at once",
        s->max_assoc);
    one(p, "mptunnel_socks_associations_total", "counter", "SOCKS UDP associations made",
        s->assoc_total);
    one(p, "mptunnel_socks_associations_refused_total", "counter",
        "SOCKS UDP ASSOCIATE requests over the limit of associations", s->assoc_refused);
    mpt_prom_family(p, "mptunnel_socks_datagrams_total", "counter",
                    "Datagrams of SOCKS clients (in) and replies to them (out)");
    mpt_prom_labels_reset(&l);
    mpt_prom_label(&l, "direction", "in");
    mpt_prom_u64(p, "mptunnel_socks_datagrams_total", &l, s->dgrams_in);
    mpt_prom_labels_reset(&l);
    mpt_prom_label(&l, "direction", "out");
    mpt_prom_u64(p, "mptunnel_socks_datagrams_total", &l, s->dgrams_out);
    mpt_prom_family(p, "mptunnel_socks_dropped_total", "counter",
                    "Datagrams of SOCKS clients dropped, by reason: fragment (FRAG not 0), "
                    "malformed header, source (not the client's announced address), "
                    "destinations (over the limit per association)");
    for (int i = 0; i < MPT_SOCKS_DROP_COUNT; i++) {
        mpt_prom_labels_reset(&l);
        mpt_prom_label(&l, "reason", mpt_socks_drop_names[i]);
        mpt_prom_u64(p, "mptunnel_socks_dropped_total", &l, s->drops[i]);
    }
}

/* ---- client ---- */

void mpt_status_client_prom(struct mpt_status_client *st, struct mpt_prom *p, uint64_t now)
{
    static const enum mpt_path_state states[] = {MPT_PATH_DOWN, MPT_PATH_UP, MPT_PATH_LOSSY,
                                                 MPT_PATH_DISABLED};
    const struct mpt_client *c = st->core;
    struct mpt_prom_labels base[MPT_MAX_PATHS], l;

    info(p, "client", now, st->start_us);
    one(p, "mptunnel_session_established", "gauge", "1 while the client has a session",
        c->state == MPT_CLIENT_ESTABLISHED);
    one(p, "mptunnel_flows", "gauge", "Flows open", mpt_client_flows(c));
    one(p, "mptunnel_flows_max", "gauge", "Flows that may be open at once (max_flows)",
        st->max_flows);

    for (unsigned i = 0; i < st->npaths; i++) {
        const struct status_client_path *sp = &st->paths[i];
        char idx[16];

        snprintf(idx, sizeof(idx), "%u", i + 1);
        mpt_prom_labels_reset(&base[i]);
        mpt_prom_label(&base[i], "index", idx);
        mpt_prom_label(&base[i], "path", sp->label);
    }

    mpt_prom_family(p, "mptunnel_path_state", "gauge",
                    "1 for the path's state (down, up, lossy, disabled), 0 for the others");
    for (unsigned i = 0; i < st->npaths; i++) {
        for (unsigned s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
            path_labels(&l, &base[i], "state", mpt_path_state_name(states[s]));
            mpt_prom_u64(p, "mptunnel_path_state", &l, c->paths[i].state == states[s]);
        }
    }
    mpt_prom_family(p, "mptunnel_path_rtt_seconds", "gauge",
                    "Smoothed round-trip time of the path's probes (absent before the first)");
    for (unsigned i = 0; i < st->npaths; i++)
        if (c->paths[i].acks_received)
            mpt_prom_num(p, "mptunnel_path_rtt_seconds", &base[i],
                         (double)c->paths[i].srtt_us / 1e6);
    mpt_prom_family(p, "mptunnel_path_rtt_variation_seconds", "gauge",
                    "Variation of the path's round-trip time (RFC 6298 RTTVAR)");
    for (unsigned i = 0; i < st->npaths; i++)
        if (c->paths[i].acks_received)
            mpt_prom_num(p, "mptunnel_path_rtt_variation_seconds", &base[i],
                         (double)c->paths[i].rttvar_us / 1e6);
    mpt_prom_family(p, "mptunnel_path_loss_ratio", "gauge",
                    "Smoothed loss of the path, 0..1: up = client to server, down = back "
                    "(absent until measured both ways)");
    for (unsigned i = 0; i < st->npaths; i++) {
        if (!c->paths[i].loss_known)
            continue;
        path_labels(&l, &base[i], "direction", "up");
        mpt_prom_num(p, "mptunnel_path_loss_ratio", &l, c->paths[i].loss_up);
        path_labels(&l, &base[i], "direction", "down");
        mpt_prom_num(p, "mptunnel_path_loss_ratio", &l, c->paths[i].loss_down);
    }
    mpt_prom_family(p, "mptunnel_path_mtu_bytes", "gauge",
                    "Route MTU towards the path's bridge as the kernel knows it (absent if "
                    "unknown)");
    for (unsigned i = 0; i < st->npaths && st->mtu; i++) {
        unsigned mtu = st->mtu(st->drv, i, NULL);
        if (mtu)
            mpt_prom_u64(p, "mptunnel_path_mtu_bytes", &base[i], mtu);
    }
    mpt_prom_family(p, "mptunnel_path_sent_packets_total", "counter",
                    "Datagrams sent on the path (copies, probes and handshakes included)");
    for (unsigned i = 0; i < st->npaths; i++)
        mpt_prom_u64(p, "mptunnel_path_sent_packets_total", &base[i], c->paths[i].tx_dgrams);
    mpt_prom_family(p, "mptunnel_path_sent_bytes_total", "counter", "Bytes sent on the path");
    for (unsigned i = 0; i < st->npaths; i++)
        mpt_prom_u64(p, "mptunnel_path_sent_bytes_total", &base[i], c->paths[i].tx_bytes);
    mpt_prom_family(p, "mptunnel_path_received_packets_total", "counter",
                    "Authenticated datagrams received on the path (duplicates of other paths "
                    "included)");
    for (unsigned i = 0; i < st->npaths; i++)
        mpt_prom_u64(p, "mptunnel_path_received_packets_total", &base[i], c->paths[i].rx_dgrams);
    mpt_prom_family(p, "mptunnel_path_received_bytes_total", "counter",
                    "Bytes of the authenticated datagrams received on the path");
    for (unsigned i = 0; i < st->npaths; i++)
        mpt_prom_u64(p, "mptunnel_path_received_bytes_total", &base[i], c->paths[i].rx_bytes);
    mpt_prom_family(p, "mptunnel_path_probes_sent_total", "counter", "Probes sent on the path");
    for (unsigned i = 0; i < st->npaths; i++)
        mpt_prom_u64(p, "mptunnel_path_probes_sent_total", &base[i], c->paths[i].probes_sent);
    mpt_prom_family(p, "mptunnel_path_probes_acked_total", "counter",
                    "Probes of the path that the server acknowledged");
    for (unsigned i = 0; i < st->npaths; i++)
        mpt_prom_u64(p, "mptunnel_path_probes_acked_total", &base[i], c->paths[i].acks_received);

    one(p, "mptunnel_data_packets_total", "counter",
        "Datagrams of applications sent into the tunnel", c->data_dgrams);
    one(p, "mptunnel_data_copies_total", "counter", "Copies those datagrams took over all paths",
        c->data_copies);
    totals(p, &c->ctr, "applications", st->send_errors, st->drv);
    refused_totals(p, c->refused);
    one(p, "mptunnel_refused_flow_drops_total", "counter",
        "Datagrams of flows the server refused, dropped by the client until it asks again",
        c->refused_drops);
    split_totals(p, &c->split.st);
    fec_totals(p, c->fec_sources, c->fec_repairs_tx, c->fec_recovered, c->fec_rx.given_up);
    reorder_totals(p, &c->reorder);
    socks_totals(p, st->socks);
}

/* ---- server ---- */

void mpt_status_server_prom(struct mpt_status_server *st, struct mpt_prom *p, uint64_t now)
{
    /* One family at a time over every session's paths: series of a family stay together. */
    enum { F_STATE, F_RTT, F_LOSS, F_MTU, F_TXP, F_TXB, F_RXP, F_RXB, F_COUNT };
    static const struct {
        const char *name, *type, *help;
    } fam[F_COUNT] = {
        {"mptunnel_path_state", "gauge",
         "1 for the path's state as the client last reported it (down, up, lossy), 0 for the "
         "others"},
        {"mptunnel_path_rtt_seconds", "gauge",
         "Smoothed round-trip time of the path, as the client last reported it"},
        {"mptunnel_path_loss_ratio", "gauge",
         "Smoothed loss of the path as the client last reported it, 0..1: up = client to server, "
         "down = back"},
        {"mptunnel_path_mtu_bytes", "gauge",
         "Route MTU towards the path's address as the kernel knows it (absent if unknown)"},
        {"mptunnel_path_sent_packets_total", "counter", "Datagrams sent on the path"},
        {"mptunnel_path_sent_bytes_total", "counter", "Bytes sent on the path"},
        {"mptunnel_path_received_packets_total", "counter",
         "Authenticated datagrams received on the path (duplicates of other paths included)"},
        {"mptunnel_path_received_bytes_total", "counter",
         "Bytes of the authenticated datagrams received on the path"},
    };
    static const enum mpt_path_state states[] = {MPT_PATH_DOWN, MPT_PATH_UP, MPT_PATH_LOSSY};
    const struct mpt_server *s = st->core;
    struct mpt_prom_labels base, l;

    info(p, "server", now, st->start_us);
    one(p, "mptunnel_sessions", "gauge", "Sessions open", s->session_slots.used);
    one(p, "mptunnel_sessions_max", "gauge", "Sessions that may be open at once (max_sessions)",
        st->max_sessions);
    one(p, "mptunnel_flows", "gauge", "Flows open, over all sessions", s->flow_slots.used);
    one(p, "mptunnel_flows_max", "gauge", "Flows that may be open at once (max_flows)",
        st->max_flows);

    for (int f = 0; f < F_COUNT; f++) {
        mpt_prom_family(p, fam[f].name, fam[f].type, fam[f].help);
        for (unsigned k = 0; k < st->max_sessions && !p->truncated; k++) {
            const struct mpt_server_session *ss = &s->sessions[k];
            char sid[24];

            if (!ss->sid)
                continue;
            snprintf(sid, sizeof(sid), "%016" PRIx64, ss->sid);
            for (unsigned i = 0; i < ss->npaths && i < MPT_MAX_PATHS; i++) {
                const struct mpt_server_path *sp = &ss->paths[i];
                char idx[16], a[MPT_ADDR_STRLEN];

                if (sp->id == MPT_PATH_ID_UNKNOWN)
                    snprintf(idx, sizeof(idx), "unknown");
                else
                    snprintf(idx, sizeof(idx), "%u", sp->id + 1u);
                mpt_prom_labels_reset(&base);
                mpt_prom_label(&base, "session", sid);
                mpt_prom_label(&base, "path", idx);
                mpt_prom_label(&base, "remote", mpt_addr_str(&sp->addr, a, sizeof(a)));
                switch (f) {
                case F_STATE:
                    for (unsigned x = 0; x < sizeof(states) / sizeof(states[0]); x++) {
                        path_labels(&l, &base, "state", mpt_path_state_name(states[x]));
                        mpt_prom_u64(p, fam[f].name, &l, sp->state == states[x]);
                    }
                    break;
                case F_RTT:
                    if (sp->srtt_us)
                        mpt_prom_num(p, fam[f].name, &base, (double)sp->srtt_us / 1e6);
                    break;
                case F_LOSS:
                    path_labels(&l, &base, "direction", "up");
                    mpt_prom_num(p, fam[f].name, &l, sp->loss_up);
                    path_labels(&l, &base, "direction", "down");
                    mpt_prom_num(p, fam[f].name, &l, sp->loss_down);
                    break;
                case F_MTU: {
                    unsigned mtu = st->mtu ? st->mtu(st->drv, i, &sp->addr) : 0;
                    if (mtu)
                        mpt_prom_u64(p, fam[f].name, &base, mtu);
                    break;
                }
                case F_TXP:
                    mpt_prom_u64(p, fam[f].name, &base, sp->tx_dgrams);
                    break;
                case F_TXB:
                    mpt_prom_u64(p, fam[f].name, &base, sp->tx_bytes);
                    break;
                case F_RXP:
                    mpt_prom_u64(p, fam[f].name, &base, sp->rx_dgrams);
                    break;
                case F_RXB:
                    mpt_prom_u64(p, fam[f].name, &base, sp->rx_bytes);
                    break;
                }
            }
        }
    }
    totals(p, &s->ctr, "the target", st->send_errors, st->drv);
    refused_totals(p, s->refused);
    split_totals(p, &s->split.st);
    one(p, "mptunnel_flows_closed_by_client_total", "counter",
        "Flows closed at once because their client said it had forgotten them (FLOW_CLOSE)",
        s->flows_closed_by_client);
    one(p, "mptunnel_name_cache_hits_total", "counter",
        "Flows naming a host answered from the name cache or joined to a lookup under way",
        s->names.hits);
    one(p, "mptunnel_name_cache_misses_total", "counter",
        "Flows naming a host that started a lookup", s->names.misses);
    one(p, "mptunnel_name_lookups", "gauge", "Lookups of names under way", s->names.pending);
    fec_totals(p, s->fec_sources_tx, s->fec_repairs_tx, s->fec_recovered, s->fec_rx.given_up);
    one(p, "mptunnel_fec_encoders", "gauge",
        "fec mode: encoders of replies held now, one per session coding its replies",
        s->fec_encoders);
    one(p, "mptunnel_fec_uncoded_packets_total", "counter",
        "fec mode: replies sent uncoded, their encoder not allocated (out of memory)",
        s->fec_no_encoder);
    one(p, "mptunnel_fec_decoder_bytes", "gauge",
        "fec mode: bytes of the decoder's tables, allocated when a session first uses the mode",
        s->fec_rx.nsrc ? (uint64_t)s->fec_rx.nsrc * MPT_FEC_SRC_MAX +
                             (uint64_t)s->fec_rx.npend * MPT_FEC_M_MAX * MPT_FEC_SYM_MAX
                       : 0);
    one(p, "mptunnel_reorder_buffer_bytes", "gauge",
        "Bytes of the reorder buffer, allocated when a session first orders (balance mode)",
        (uint64_t)s->reorder.nent * MPT_REORDER_CHUNK);
    reorder_totals(p, &s->reorder);
}

/* ---- the endpoints ---- */

static void on_client_render(void *arg, struct mpt_prom *p, uint64_t now_us)
{
    mpt_status_client_prom(arg, p, now_us);
}

static void on_client_release(void *arg)
{
    mpt_status_client_free(arg);
}

static void on_server_render(void *arg, struct mpt_prom *p, uint64_t now_us)
{
    mpt_status_server_prom(arg, p, now_us);
}

static void on_server_release(void *arg)
{
    mpt_status_server_free(arg);
}

/* Where `metrics =` (m, written in `file`) points. Returns 0, or a negative code with the
 * message in err. */
static int metrics_addr(struct mpt_loop *loop, const char *file, const struct mpt_hostport *m,
                        struct mpt_addr *addr, char *err, size_t errlen)
{
    int rc = mpt_resolve(loop, m->host, m->port, 1, addr);

    if (rc)
        snprintf(err, errlen, "%s:%d: metrics: cannot resolve `%s': %s", file, m->line, m->host,
                 mpt_strerror(rc));
    return rc;
}

/* Starts the endpoint on addr with the state st (released on failure too), and says so. */
static int start(struct mpt_loop *loop, const char *file, const struct mpt_hostport *m,
                 const struct mpt_addr *addr, const struct mpt_metrics_ops *ops, void *st,
                 struct mpt_metrics **out, char *err, size_t errlen)
{
    char a[MPT_ADDR_STRLEN];
    int rc;

    if (!st) {
        snprintf(err, errlen, "%s:%d: metrics: out of memory", file, m->line);
        return -ENOMEM;
    }
    rc = mpt_metrics_start(loop, &addr->u.sa, ops, st, out);
    if (rc)
        snprintf(err, errlen, "%s:%d: metrics: cannot listen on %s: %s", file, m->line,
                 mpt_addr_str(addr, a, sizeof(a)), mpt_strerror(rc));
    else
        MPT_INFO("metrics on http://%s/metrics", mpt_addr_str(addr, a, sizeof(a)));
    return rc;
}

int mpt_status_client_metrics_start(struct mpt_loop *loop,
                                    const struct mpt_status_client_info *info, const char *file,
                                    const struct mpt_hostport *m, struct mpt_metrics **out,
                                    char *err, size_t errlen)
{
    static const struct mpt_metrics_ops ops = {on_client_render, on_client_release};
    struct mpt_addr addr;
    int rc;

    *out = NULL;
    if (!m->line)
        return 0;
    rc = metrics_addr(loop, file, m, &addr, err, errlen);
    if (rc)
        return rc;
    return start(loop, file, m, &addr, &ops, mpt_status_client_new(info, mpt_loop_now_us(loop)),
                 out, err, errlen);
}

int mpt_status_server_metrics_start(struct mpt_loop *loop,
                                    const struct mpt_status_server_info *info, const char *file,
                                    const struct mpt_hostport *m, struct mpt_metrics **out,
                                    char *err, size_t errlen)
{
    static const struct mpt_metrics_ops ops = {on_server_render, on_server_release};
    struct mpt_addr addr;
    int rc;

    *out = NULL;
    if (!m->line)
        return 0;
    rc = metrics_addr(loop, file, m, &addr, err, errlen);
    if (rc)
        return rc;
    return start(loop, file, m, &addr, &ops, mpt_status_server_new(info, mpt_loop_now_us(loop)),
                 out, err, errlen);
}
