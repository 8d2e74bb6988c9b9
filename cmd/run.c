/* Running a client or a server: the loop, the driver, and the exit status. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
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

/* What SIGHUP reloads: the file the process was started with, read again whole. */
struct reload {
    struct mpt_loop *loop;
    const char *cmd;
    enum mpt_config_role role;
    struct mpt_client_drv *client;
    struct mpt_server_drv *server;
    struct mpt_config *cfg;     /* the configuration running now */
    struct mpt_config *pending; /* the one being applied (its host names being resolved) */
    int verbosity;              /* -v/-q of the command line, kept over reloads */
};

static void reload_done(struct reload *r, const char *err)
{
    char line[160];

    if (err)
        snprintf(line, sizeof(line), "%s: reload failed, old configuration kept: %.100s", r->cmd,
                 err);
    else
        snprintf(line, sizeof(line), "%s: reloaded %.120s", r->cmd, r->cfg->file);
    mpt_notify_ready(line);
}

static void on_reloaded(void *arg, int status, const char *err)
{
    struct reload *r = arg;
    struct mpt_config *cfg = r->pending;
    int level;

    r->pending = NULL;
    if (status) {
        MPT_ERROR("reload: %s; the running configuration stays", err);
        mpt_secure_free(cfg, sizeof(*cfg));
        reload_done(r, err);
        return;
    }
    level = (cfg->log_level_set ? (int)cfg->log_level : MPT_LOGL_INFO) + r->verbosity;
    mpt_cmd_log_init(level < MPT_LOGL_ERROR   ? MPT_LOGL_ERROR
                     : level > MPT_LOGL_DEBUG ? MPT_LOGL_DEBUG
                                              : level);
    mpt_secure_free(r->cfg, sizeof(*r->cfg));
    r->cfg = cfg;
    reload_done(r, NULL);
}

static void on_reload(void *arg)
{
    struct reload *r = arg;
    struct mpt_config *cfg;
    char err[MPT_CONFIG_ERR_MAX];

    if (r->pending) {
        MPT_WARN("SIGHUP: a reload is under way already; ignored");
        return;
    }
    mpt_notify_reloading();
    MPT_INFO("SIGHUP: reloading %s", r->cfg->file);
    cfg = mpt_secure_alloc(sizeof(*cfg), NULL);
    if (!cfg) {
        MPT_ERROR("reload: out of memory; the running configuration stays");
        reload_done(r, "out of memory");
        return;
    }
    if (mpt_config_load(cfg, r->cfg->file, r->role, err, sizeof(err)) != 0) {
        MPT_ERROR("reload: %s; the running configuration stays", err);
        mpt_secure_free(cfg, sizeof(*cfg));
        reload_done(r, err);
        return;
    }
    /* Applied once its host names are resolved, without stopping traffic meanwhile. */
    r->pending = cfg;
    if (r->client)
        mpt_client_drv_reload(r->client, cfg, on_reloaded, r);
    else
        mpt_server_drv_reload(r->server, cfg, on_reloaded, r);
}

/* The line `systemctl status' shows, every few seconds. */
static void on_status_line(void *arg, char *buf, size_t len)
{
    struct reload *r = arg;

    if (r->client) {
        const struct mpt_client *c = mpt_client_drv_core(r->client);
        uint64_t quiet = mpt_client_silence_us(c, mpt_loop_now_us(r->loop));
        unsigned up = 0, off = 0;

        for (unsigned i = 0; i < c->p.npaths; i++) {
            up += c->paths[i].state == MPT_PATH_UP || c->paths[i].state == MPT_PATH_LOSSY;
            off += c->paths[i].state == MPT_PATH_DISABLED;
        }
        if (c->state != MPT_CLIENT_ESTABLISHED || quiet >= 1000000)
            snprintf(buf, len, "client: no answer for %llu s on %u path%s",
                     (unsigned long long)(quiet / 1000000), c->p.npaths,
                     c->p.npaths == 1 ? "" : "s");
        else
            snprintf(buf, len, "client: session up, %u of %u paths up%s%.0u%s, %u flows", up,
                     c->p.npaths, off ? ", " : "", off, off ? " disabled" : "",
                     mpt_client_flows(c));
    } else {
        const struct mpt_server *s = mpt_server_drv_core(r->server);

        snprintf(buf, len, "server: %u session%s, %u flow%s", s->session_slots.used,
                 s->session_slots.used == 1 ? "" : "s", s->flow_slots.used,
                 s->flow_slots.used == 1 ? "" : "s");
    }
}

int mpt_cmd_run_tunnel(const char *cmd, const struct mpt_config *cfg, enum mpt_config_role role)
{
    struct mpt_client_drv *client = NULL;
    struct mpt_server_drv *server = NULL;
    struct mpt_notify *notify = NULL;
    struct reload reload = {0};
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
        reload.cfg = mpt_secure_alloc(sizeof(*reload.cfg), NULL);
        if (reload.cfg) {
            *reload.cfg = *cfg;
            reload.loop = loop;
            reload.cmd = cmd;
            reload.role = role;
            reload.client = client;
            reload.server = server;
            reload.verbosity =
                mpt_log_state.level - (cfg->log_level_set ? (int)cfg->log_level : MPT_LOGL_INFO);
            mpt_loop_on_reload(loop, on_reload, &reload);
        } else {
            MPT_WARN("%s: out of memory: SIGHUP will not reload", cmd);
        }
        notify_ready(loop, cmd, cfg, client, server, &notify);
        reload.loop = loop;
        reload.client = client;
        reload.server = server;
        mpt_notify_watch_status(notify, on_status_line, &reload);
        if (mpt_loop_run(loop) != 0)
            status = MPT_EXIT_FAIL;
    }
    mpt_notify_free(notify);
    if (mpt_loop_free(loop) != 0) {
        mpt_cmd_error(cmd, "event loop did not close cleanly");
        status = MPT_EXIT_FAIL;
    }
    mpt_secure_free(reload.cfg, sizeof(*reload.cfg));
    mpt_secure_free(reload.pending, sizeof(*reload.pending));
    if (status == MPT_EXIT_OK)
        MPT_INFO("%s stopped", cmd);
    return status;
}
