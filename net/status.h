/* The status document (packaging/STATUS.md, schema mptunnel-status/1): a bounded JSON writer,
 * and the client's and server's writers that the control socket serves. No uv.h here. */
#ifndef MPT_NET_STATUS_H
#define MPT_NET_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/client.h"
#include "core/server.h"
#include "net/loop.h"

#define MPT_STATUS_SCHEMA "mptunnel-status/1"
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

/* Throughput of one direction over the last sampling interval. */
struct mpt_status_rate {
    uint64_t dgrams, bytes; /* counters at the last sample */
    double pps, bps;        /* packets and bits per second over the interval before it */
};

/* Updates r from the counters now, dt_us after the last sample. */
void mpt_status_rate_sample(struct mpt_status_rate *r, uint64_t dgrams, uint64_t bytes,
                            uint64_t dt_us);

/* What the client's document says beyond the core: per path, from the configuration. */
struct mpt_status_client_info {
    const struct mpt_client *core;
    const struct mpt_config *cfg; /* read during the call only */
    unsigned npaths;
    struct mpt_addr remote[MPT_MAX_PATHS];
    struct mpt_addr listen;
};

struct mpt_status_server_info {
    const struct mpt_server *core;
    const struct mpt_config *cfg; /* read during the call only */
    struct mpt_addr listen, target;
};

struct mpt_control;

/* Starts the control socket of a running client (path from mpt_config_control_path). The state
 * it keeps points at info->core, which must outlive it: close it with mpt_control_close before
 * freeing the core. Failure is not fatal to the caller: returns 0 or a negative code, with the
 * reason logged as a warning; *out is then NULL. */
int mpt_status_client_start(struct mpt_loop *loop, const struct mpt_status_client_info *info,
                            struct mpt_control **out);
int mpt_status_server_start(struct mpt_loop *loop, const struct mpt_status_server_info *info,
                            struct mpt_control **out);

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
void mpt_status_client_free(struct mpt_status_client *st);
void mpt_status_server_free(struct mpt_status_server *st);

#endif
