/* Running a client or a server: the loop, the driver, and the exit status. */
#include <stdio.h>
#include <sys/resource.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "net/loop.h"
#include "net/notify.h"
#include "net/tunnel.h"

/* Each server flow holds a socket: let the process have as many descriptors as it may. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* systemd: READY=1 once listening, with a status line; the watchdog's keep-alive if asked for. */
static void notify_ready(struct mpt_loop *loop, const char *cmd, const struct mpt_config *cfg,
                         struct mpt_client_drv *client, struct mpt_server_drv *server,
                         struct mpt_notify **notify)
{
    char line[160], a[MPT_ADDR_STRLEN];
    struct mpt_addr local;
    int rc;

    if (client) {
        mpt_client_drv_local(client, &local);
        snprintf(line, sizeof(line), "client: listening on %s, %u path%s",
                 mpt_addr_str(&local, a, sizeof(a)), cfg->client.npaths,
                 cfg->client.npaths == 1 ? "" : "s");
    } else {
        mpt_server_drv_local(server, &local);
        snprintf(line, sizeof(line), "server: listening on %s", mpt_addr_str(&local, a, sizeof(a)));
    }
    rc = mpt_notify_start(loop, notify);
    if (rc)
        MPT_WARN("%s: no watchdog keep-alive: %s", cmd, mpt_strerror(rc));
    mpt_notify_ready(line);
}

int mpt_cmd_run_tunnel(const char *cmd, const struct mpt_config *cfg, enum mpt_config_role role)
{
    struct mpt_client_drv *client = NULL;
    struct mpt_server_drv *server = NULL;
    struct mpt_notify *notify = NULL;
    struct mpt_loop *loop;
    char err[MPT_CONFIG_ERR_MAX];
    int rc, status = MPT_EXIT_OK;

    raise_fd_limit();
    rc = mpt_loop_new(&loop);
    if (rc) {
        mpt_cmd_error(cmd, "cannot create the event loop: %s", mpt_strerror(rc));
        return MPT_EXIT_FAIL;
    }
    if (role == MPT_ROLE_CLIENT)
        rc = mpt_client_drv_start(loop, cfg, &client, err, sizeof(err));
    else
        rc = mpt_server_drv_start(loop, cfg, &server, err, sizeof(err));
    if (rc) {
        mpt_cmd_error(cmd, "%s", err);
        status = MPT_EXIT_FAIL;
    } else {
        notify_ready(loop, cmd, cfg, client, server, &notify);
        if (mpt_loop_run(loop) != 0)
            status = MPT_EXIT_FAIL;
    }
    mpt_notify_free(notify);
    if (mpt_loop_free(loop) != 0) {
        mpt_cmd_error(cmd, "event loop did not close cleanly");
        status = MPT_EXIT_FAIL;
    }
    if (status == MPT_EXIT_OK)
        MPT_INFO("%s stopped", cmd);
    return status;
}
