/* The shared driver lifecycle: see driver.h. */
#include "net/driver.h"

static void on_service_stop(struct mpt_service *svc)
{
    mpt_driver_stop(mpt_container_of(svc, struct mpt_driver, svc));
}

void mpt_driver_init(struct mpt_driver *d, struct mpt_loop *loop, const struct mpt_driver_ops *ops,
                     int service)
{
    d->loop = loop;
    d->ops = ops;
    d->refs = 1;
    d->handles = 0;
    d->stopping = 0;
    d->svc.stop = NULL;
    d->svc.next = NULL;
    if (service) {
        d->svc.stop = on_service_stop;
        mpt_loop_add_service(loop, &d->svc);
    }
}

void mpt_driver_ref(struct mpt_driver *d)
{
    d->refs++;
}

void mpt_driver_unref(struct mpt_driver *d)
{
    if (--d->refs == 0)
        d->ops->destroy(d);
}

void mpt_driver_stop(struct mpt_driver *d)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    if (d->svc.stop)
        mpt_loop_remove_service(d->loop, &d->svc);
    /* Held across ops->stop, whose closes may complete synchronously in no case today, but the
     * driver must outlive its own stop function whatever its handles do. */
    d->refs++;
    d->ops->stop(d);
    d->refs--;
    mpt_driver_unref(d);
}

int mpt_driver_stopping(const struct mpt_driver *d)
{
    return d->stopping;
}

static void handle_released(struct mpt_driver *d)
{
    d->handles--;
    mpt_driver_unref(d);
}

void mpt_driver_own(struct mpt_driver *d, uv_handle_t *h)
{
    h->data = d;
    d->handles++;
    d->refs++;
}

static void on_owned_closed(uv_handle_t *h)
{
    handle_released(h->data);
}

void mpt_driver_close(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_owned_closed);
}

void mpt_driver_closed(uv_handle_t *h)
{
    handle_released(h->data);
}

void mpt_driver_udp_closed(struct mpt_driver *d)
{
    handle_released(d);
}

int mpt_driver_udp_open(struct mpt_driver *d, struct mpt_udp *u, int family,
                        const struct sockaddr *bind_addr, uint32_t sndbuf, uint32_t rcvbuf,
                        mpt_udp_recv_cb on_recv, void *owner)
{
    int rc = mpt_udp_open(u, d->loop, family, bind_addr, sndbuf, rcvbuf, on_recv, owner);

    if (rc == 0 || mpt_udp_is_closing(u)) {
        u->drv = d;
        d->handles++;
        d->refs++;
    }
    return rc;
}
