/* What the status writers keep between calls, shared by the JSON document (status_json.c) and
 * the Prometheus text (status_prom.c): per path, what the configuration said, and the counters at
 * the last sample for rates. Internal to net/. */
#ifndef MPT_NET_STATUS_STATE_H
#define MPT_NET_STATUS_STATE_H

#include "net/status.h"

struct status_client_path {
    char name[MPT_CONFIG_NAME_MAX];
    char label[MPT_PATH_NAME_MAX];
    char bridge[MPT_CONFIG_HOST_MAX + 16];
    char remote[MPT_ADDR_STRLEN];
    unsigned priority, weight, overhead;
    struct mpt_status_rate tx, rx;
};

struct mpt_status_client {
    const struct mpt_client *core;
    mpt_status_send_errors_cb send_errors;
    mpt_status_mtu_cb mtu;
    mpt_status_path_errors_cb path_errors;
    void *drv;
    char file[512];
    char listen[MPT_ADDR_STRLEN];
    unsigned mode, npaths, max_flows;
    uint64_t start_us, sample_us;
    struct status_client_path paths[MPT_MAX_PATHS];
    void (*command)(void *arg, const char *line); /* control socket commands, or NULL */
    void *command_arg;
    const struct mpt_socks_stats *socks; /* NULL if no SOCKS5 front */
};

struct status_server_session {
    uint64_t sid;
    struct mpt_addr addr[MPT_MAX_PATHS];
    struct mpt_status_rate tx[MPT_MAX_PATHS], rx[MPT_MAX_PATHS];
};

struct mpt_status_server {
    const struct mpt_server *core;
    mpt_status_send_errors_cb send_errors;
    mpt_status_mtu_cb mtu;
    void *drv;
    char file[512];
    char listen[MPT_ADDR_STRLEN], target[MPT_ADDR_STRLEN];
    unsigned max_sessions, max_flows;
    uint64_t start_us, sample_us;
    struct status_server_session *sessions; /* by core session slot */
};

#endif
