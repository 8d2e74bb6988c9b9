/* The status document (packaging/STATUS.md, schema mptunnel-status/2): a bounded JSON writer,
 * and the client's and server's writers that the control socket serves. No uv.h here. */
#ifndef MPT_NET_STATUS_H
#define MPT_NET_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/client.h"
#include "core/server.h"
#include "net/loop.h"
#include "net/socks.h"
#include "net/udp_tx.h"

#define MPT_STATUS_SCHEMA "mptunnel-status/2"
#define MPT_JSON_MAX_DEPTH 16

/* Writes JSON into a fixed buffer. Every value is written whole or not at all: once one does not
 * fit, the writer stops adding values but still closes what is open (room is kept for that), and
 * the outermost object gets `"truncated": true`. The text is always valid JSON, NUL-terminated. */
struct mpt_json {
    char *buf;
    size_t cap, len;
    int depth;  /* containers opened */
    int wdepth; /* containers opened and written (< depth only once truncated) */
    int truncated;
    uint8_t first[MPT_JSON_MAX_DEPTH]; /* no member written yet at this level */
    uint8_t is_obj[MPT_JSON_MAX_DEPTH];
};

/* buf[cap] must hold at least 64 bytes. */
void mpt_json_init(struct mpt_json *j, char *buf, size_t cap);

/* Within an object, key names the member; within an array (or at the top) it must be NULL. */
void mpt_json_obj(struct mpt_json *j, const char *key);
void mpt_json_arr(struct mpt_json *j, const char *key);
void mpt_json_end(struct mpt_json *j);
void mpt_json_str(struct mpt_json *j, const char *key, const char *val);
void mpt_json_u64(struct mpt_json *j, const char *key, uint64_t val);
void mpt_json_int(struct mpt_json *j, const char *key, long long val);
void mpt_json_num(struct mpt_json *j, const char *key, double val); /* non-finite -> null */
void mpt_json_bool(struct mpt_json *j, const char *key, int val);
void mpt_json_null(struct mpt_json *j, const char *key);

/* Writes Prometheus text exposition (format 0.0.4) into a fixed buffer, one whole line at a time:
 * once a line does not fit, nothing more is added but mpt_prom_finish's last line, for which room
 * is kept. The text is always NUL-terminated. */
struct mpt_prom {
    char *buf;
    size_t cap, len;
    int truncated;
};

/* Labels of one sample, `key="value",...' with the values escaped; cut short (and marked
 * truncated) beyond its size, which our label sets never reach. */
struct mpt_prom_labels {
    char buf[640];
    size_t len;
};

/* buf[cap] must hold at least 256 bytes. */
void mpt_prom_init(struct mpt_prom *p, char *buf, size_t cap);
/* `# HELP' and `# TYPE' lines of a family; type is "counter", "gauge" or "untyped". */
void mpt_prom_family(struct mpt_prom *p, const char *name, const char *type, const char *help);
/* One sample; labels may be NULL. Non-finite values are written as NaN, +Inf, -Inf. */
void mpt_prom_u64(struct mpt_prom *p, const char *name, const struct mpt_prom_labels *labels,
                  uint64_t val);
void mpt_prom_num(struct mpt_prom *p, const char *name, const struct mpt_prom_labels *labels,
                  double val);
/* The last family, mptunnel_scrape_truncated: 1 if lines were left out. */
void mpt_prom_finish(struct mpt_prom *p);
void mpt_prom_labels_reset(struct mpt_prom_labels *l);
void mpt_prom_label(struct mpt_prom_labels *l, const char *key, const char *val);

/* Throughput of one direction over the last sampling interval. */
struct mpt_status_rate {
    uint64_t dgrams, bytes; /* counters at the last sample */
    double pps, bps;        /* packets and bits per second over the interval before it */
};

/* Updates r from the counters now, dt_us after the last sample. */
void mpt_status_rate_sample(struct mpt_status_rate *r, uint64_t dgrams, uint64_t bytes,
                            uint64_t dt_us);

/* What the client's document says beyond the core: per path, from the configuration. */
/* What only the driver knows, for the metrics: the datagrams its sockets failed to send since
 * start, by kind (added to *e); the route MTU towards a path's peer (the client's path index, or
 * the server's path address), 0 if unknown. */
typedef void (*mpt_status_send_errors_cb)(void *drv, struct mpt_udp_errors *e);
typedef unsigned (*mpt_status_mtu_cb)(void *drv, unsigned path, const struct mpt_addr *to);
/* The datagrams to client path `path` that the kernel refused (set in *e). */
typedef void (*mpt_status_path_errors_cb)(void *drv, unsigned path, struct mpt_udp_errors *e);

struct mpt_status_client_info {
    const struct mpt_client *core;
    mpt_status_send_errors_cb send_errors; /* may be NULL */
    mpt_status_mtu_cb mtu;                 /* may be NULL */
    void *drv;                             /* their argument */
    const struct mpt_config *cfg;          /* read during the call only */
    unsigned npaths;
    struct mpt_addr remote[MPT_MAX_PATHS];
    struct mpt_addr listen;
    mpt_status_path_errors_cb path_errors; /* may be NULL */
    /* Commands read on the control socket ("path disable N"), or NULL. */
    void (*command)(void *arg, const char *line);
    void *command_arg;
    const struct mpt_socks_stats *socks; /* the SOCKS5 front's figures, NULL if none */
};

struct mpt_status_server_info {
    const struct mpt_server *core;
    mpt_status_send_errors_cb send_errors; /* may be NULL */
    mpt_status_mtu_cb mtu;                 /* may be NULL */
    void *drv;                             /* their argument */
    const struct mpt_config *cfg;          /* read during the call only */
    struct mpt_addr listen, target;
};

/* Bytes the tunnel adds to an application's datagram on a path to `remote` (IP and UDP headers,
 * the data header, the tag, the flow header): a path of MTU m carries datagrams of up to
 * m - overhead bytes without IP fragmentation. */
unsigned mpt_status_overhead(const struct mpt_addr *remote);

struct mpt_control;
struct mpt_metrics;

/* Starts the control socket of a running client (path from mpt_config_control_path). The state
 * it keeps points at info->core, which must outlive it: close it with mpt_control_close before
 * freeing the core. Failure is not fatal to the caller: returns 0 or a negative code, with the
 * reason logged as a warning; *out is then NULL. */
int mpt_status_client_start(struct mpt_loop *loop, const struct mpt_status_client_info *info,
                            struct mpt_control **out);
int mpt_status_server_start(struct mpt_loop *loop, const struct mpt_status_server_info *info,
                            struct mpt_control **out);

/* Starts the metrics endpoint of a running client or server (net/metrics.h) where `metrics =`
 * says (m, written in `file`; m->line 0: not configured, nothing started), from state of its
 * own kept as for the control socket: info->core and the send-errors callback's argument must
 * outlive it (close it with mpt_metrics_close first). Returns 0, or a negative code with
 * `file:line: metrics: reason` in err (the name did not resolve, the address could not be
 * bound; nothing is left open). */
int mpt_status_client_metrics_start(struct mpt_loop *loop,
                                    const struct mpt_status_client_info *info, const char *file,
                                    const struct mpt_hostport *m, struct mpt_metrics **out,
                                    char *err, size_t errlen);
int mpt_status_server_metrics_start(struct mpt_loop *loop,
                                    const struct mpt_status_server_info *info, const char *file,
                                    const struct mpt_hostport *m, struct mpt_metrics **out,
                                    char *err, size_t errlen);

/* The writers behind them, for tests: `st` is the state made by mpt_status_*_new. */
struct mpt_status_client;
struct mpt_status_server;
struct mpt_status_client *mpt_status_client_new(const struct mpt_status_client_info *info,
                                                uint64_t now_us);
struct mpt_status_server *mpt_status_server_new(const struct mpt_status_server_info *info,
                                                uint64_t now_us);
void mpt_status_client_sample(struct mpt_status_client *st, uint64_t now_us);
void mpt_status_server_sample(struct mpt_status_server *st, uint64_t now_us);
void mpt_status_client_write(struct mpt_status_client *st, struct mpt_json *j, uint64_t now_us);
void mpt_status_server_write(struct mpt_status_server *st, struct mpt_json *j, uint64_t now_us);
void mpt_status_client_prom(struct mpt_status_client *st, struct mpt_prom *p, uint64_t now_us);
void mpt_status_server_prom(struct mpt_status_server *st, struct mpt_prom *p, uint64_t now_us);
void mpt_status_client_free(struct mpt_status_client *st);

/* After a reload: the mode and paths from info (rates start over), the rest kept. */
void mpt_status_client_update(struct mpt_status_client *st,
                              const struct mpt_status_client_info *info, uint64_t now_us);
void mpt_status_server_free(struct mpt_status_server *st);

#endif
