#include "net/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "net/driver.h"

struct mpt_notify {
    struct mpt_driver drv;
    uv_timer_t timer;
    int timer_open;
    uv_timer_t status_timer;
    int status_open;
    mpt_notify_status_cb status_cb;
    void *status_arg;
    char status[MPT_NOTIFY_STATUS_MAX]; /* the line sent last */
};

static void on_watchdog(uv_timer_t *t)
{
    sd_notify(0, "WATCHDOG=1");
}

static void notify_stop(struct mpt_driver *drv)
{
    struct mpt_notify *n = mpt_container_of(drv, struct mpt_notify, drv);

    if (mpt_loop_stopping(drv->loop))
        sd_notify(0, "STOPPING=1");
    if (n->timer_open) {
        n->timer_open = 0;
        mpt_driver_close((uv_handle_t *)&n->timer);
    }
    if (n->status_open) {
        n->status_open = 0;
        mpt_driver_close((uv_handle_t *)&n->status_timer);
    }
}

static void on_status(uv_timer_t *t)
{
    struct mpt_notify *n = mpt_container_of(t, struct mpt_notify, status_timer);
    char line[MPT_NOTIFY_STATUS_MAX];

    line[0] = '\0';
    n->status_cb(n->status_arg, line, sizeof(line));
    if (line[0] && strcmp(line, n->status) != 0) {
        memcpy(n->status, line, sizeof(line));
        sd_notifyf(0, "STATUS=%s", line);
    }
}

void mpt_notify_watch_status(struct mpt_notify *n, mpt_notify_status_cb cb, void *arg)
{
    const char *sock = getenv("NOTIFY_SOCKET");

    if (!n || !sock || !*sock || n->status_open || mpt_driver_stopping(&n->drv))
        return;
    if (uv_timer_init(mpt_loop_uv(n->drv.loop), &n->status_timer) != 0)
        return;
    mpt_driver_own(&n->drv, (uv_handle_t *)&n->status_timer);
    n->status_open = 1;
    n->status_cb = cb;
    n->status_arg = arg;
    uv_unref((uv_handle_t *)&n->status_timer);
    uv_timer_start(&n->status_timer, on_status, MPT_NOTIFY_STATUS_MS, MPT_NOTIFY_STATUS_MS);
}

static void notify_destroy(struct mpt_driver *drv)
{
    free(mpt_container_of(drv, struct mpt_notify, drv));
}

static const struct mpt_driver_ops notify_ops = {
    .name = "notify",
    .stop = notify_stop,
    .destroy = notify_destroy,
};

int mpt_notify_start(struct mpt_loop *loop, struct mpt_notify **out)
{
    struct mpt_notify *n = calloc(1, sizeof(*n));
    uint64_t usec = 0;
    int err;

    *out = NULL;
    if (!n)
        return UV_ENOMEM;
    mpt_driver_init(&n->drv, loop, &notify_ops, 1);
    /* The caller's reference, dropped by mpt_notify_free. */
    mpt_driver_ref(&n->drv);
    *out = n;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    err = uv_timer_init(mpt_loop_uv(loop), &n->timer);
    if (err)
        return err;
    mpt_driver_own(&n->drv, (uv_handle_t *)&n->timer);
    n->timer_open = 1;
    /* The keep-alive alone must not keep the loop running. */
    uv_unref((uv_handle_t *)&n->timer);
    uv_timer_start(&n->timer, on_watchdog, 0, usec / 2000 ? usec / 2000 : 1);
    return 0;
}

void mpt_notify_free(struct mpt_notify *n)
{
    if (!n)
        return;
    mpt_driver_stop(&n->drv);
    mpt_driver_unref(&n->drv);
}

void mpt_notify_ready(const char *status)
{
    if (status)
        sd_notifyf(0, "READY=1\nSTATUS=%s", status);
    else
        sd_notify(0, "READY=1");
}

void mpt_notify_reloading(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
}

void mpt_notify_status(const char *status)
{
    sd_notifyf(0, "STATUS=%s", status);
}
