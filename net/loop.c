#include <stdlib.h>

#include "core/log.h"
#include "net/udp.h"

/* Receive buffer shared by every socket on the loop: callbacks run one at a time, and libuv
 * splits it into 64 KiB slots for one recvmmsg call. */
#define MPT_RXBUF_SLOTS 16
#define MPT_RXBUF_SIZE (MPT_RXBUF_SLOTS * 64 * 1024)

struct mpt_loop {
    uv_loop_t uv;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_signal_t sighup;
    mpt_loop_reload_cb on_reload;
    void *reload_arg;
    struct mpt_service *services;
    int stopping;
    char *rxbuf;
    int rxbuf_busy;
};

static void on_signal(uv_signal_t *h, int signum)
{
    struct mpt_loop *loop = h->data;
    mpt_loop_stop(loop);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    struct mpt_loop *loop = h->data;

    if (loop->stopping)
        return;
    if (loop->on_reload)
        loop->on_reload(loop->reload_arg);
    else
        MPT_INFO("SIGHUP: nothing to reload");
}

void mpt_loop_on_reload(struct mpt_loop *loop, mpt_loop_reload_cb cb, void *arg)
{
    loop->on_reload = cb;
    loop->reload_arg = arg;
}

int mpt_loop_new(struct mpt_loop **out)
{
    struct mpt_loop *loop = calloc(1, sizeof(*loop));
    int err;

    *out = NULL;
    if (!loop)
        return UV_ENOMEM;
    loop->rxbuf = malloc(MPT_RXBUF_SIZE);
    if (!loop->rxbuf) {
        free(loop);
        return UV_ENOMEM;
    }
    err = uv_loop_init(&loop->uv);
    if (err) {
        free(loop->rxbuf);
        free(loop);
        return err;
    }
    uv_signal_init(&loop->uv, &loop->sigint);
    uv_signal_init(&loop->uv, &loop->sigterm);
    loop->sigint.data = loop;
    loop->sigterm.data = loop;
    uv_signal_start(&loop->sigint, on_signal, SIGINT);
    uv_signal_start(&loop->sigterm, on_signal, SIGTERM);
    /* SIGHUP would end the process (and leave its control socket behind): it reloads. */
    uv_signal_init(&loop->uv, &loop->sighup);
    loop->sighup.data = loop;
    uv_signal_start(&loop->sighup, on_sighup, SIGHUP);
    /* Signal handles must not keep the loop alive once the services are gone. */
    uv_unref((uv_handle_t *)&loop->sigint);
    uv_unref((uv_handle_t *)&loop->sigterm);
    uv_unref((uv_handle_t *)&loop->sighup);
    *out = loop;
    return 0;
}

void mpt_loop_add_service(struct mpt_loop *loop, struct mpt_service *svc)
{
    svc->next = loop->services;
    loop->services = svc;
    if (loop->stopping && svc->stop)
        svc->stop(svc);
}

void mpt_loop_remove_service(struct mpt_loop *loop, struct mpt_service *svc)
{
    for (struct mpt_service **p = &loop->services; *p; p = &(*p)->next) {
        if (*p == svc) {
            *p = svc->next;
            return;
        }
    }
}

void mpt_loop_stop(struct mpt_loop *loop)
{
    struct mpt_service *svc, *next;

    if (loop->stopping)
        return;
    loop->stopping = 1;
    for (svc = loop->services; svc; svc = next) {
        next = svc->next;
        if (svc->stop)
            svc->stop(svc);
    }
}

int mpt_loop_stopping(const struct mpt_loop *loop)
{
    return loop->stopping;
}

int mpt_loop_run(struct mpt_loop *loop)
{
    return uv_run(&loop->uv, UV_RUN_DEFAULT) < 0 ? UV_EINVAL : 0;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int mpt_loop_free(struct mpt_loop *loop)
{
    int err;

    if (!loop)
        return 0;
    uv_walk(&loop->uv, on_walk_close, NULL);
    uv_run(&loop->uv, UV_RUN_DEFAULT);
    err = uv_loop_close(&loop->uv);
    free(loop->rxbuf);
    free(loop);
    return err;
}

uint64_t mpt_loop_now_us(struct mpt_loop *loop)
{
    return uv_hrtime() / 1000;
}

uint64_t mpt_loop_wall_us(void)
{
    uv_timeval64_t tv;

    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}

const char *mpt_strerror(int err)
{
    return uv_strerror(err);
}

uv_loop_t *mpt_loop_uv(struct mpt_loop *loop)
{
    return &loop->uv;
}

/* Used by net/udp.c: hands out the shared receive buffer. */
char *mpt_loop_rxbuf(struct mpt_loop *loop, size_t *len);
char *mpt_loop_rxbuf(struct mpt_loop *loop, size_t *len)
{
    *len = MPT_RXBUF_SIZE;
    return loop->rxbuf;
}
