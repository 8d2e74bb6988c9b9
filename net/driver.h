/* The one lifecycle every driver shares (client, server, bridge, demo, control socket): start,
 * run, stop, and a single count that knows when the last handle has closed. Internal to net/.
 *
 * A driver embeds a struct mpt_driver and opens each of its libuv handles through this module
 * (mpt_driver_own after a uv_*_init, mpt_driver_udp_open for sockets), so that each open handle
 * holds a reference. The driver itself holds one more reference while it runs, and an owner may
 * hold others (mpt_driver_ref). ops->destroy runs exactly once, when the last reference goes:
 * never while the driver runs, however many of its handles ordinary traffic opens and closes
 * (an idle flow's socket, an expired bridge peer). */
#ifndef MPT_NET_DRIVER_H
#define MPT_NET_DRIVER_H

#include <uv.h>

#include "net/loop.h"
#include "net/udp.h"

struct mpt_driver;

struct mpt_driver_ops {
    const char *name; /* for messages: "client", "server", "bridge", ... */
    /* Starts closing every handle the driver still has (mpt_driver_close, mpt_udp_close) and
     * drops queued work. Called once, from mpt_driver_stop. */
    void (*stop)(struct mpt_driver *d);
    /* Frees the driver's memory. Called once, when no handle is open and nobody holds a
     * reference; nothing of the driver may be touched afterwards. */
    void (*destroy)(struct mpt_driver *d);
};

struct mpt_driver {
    struct mpt_service svc; /* stopped with the loop's other services */
    struct mpt_loop *loop;
    const struct mpt_driver_ops *ops;
    unsigned refs;    /* open handles + 1 while running + owners' references */
    unsigned handles; /* open handles alone (for tests and messages) */
    int stopping;
};

/* Makes d a running driver on loop: one reference (dropped by mpt_driver_stop); if service is
 * nonzero it is also stopped with the loop (SIGINT, SIGTERM, mpt_loop_stop). */
void mpt_driver_init(struct mpt_driver *d, struct mpt_loop *loop, const struct mpt_driver_ops *ops,
                     int service);

/* Stops the driver (once; later calls do nothing): ops->stop closes its handles, then the
 * running reference is dropped. d may be destroyed before this returns. */
void mpt_driver_stop(struct mpt_driver *d);

/* 1 once mpt_driver_stop was called. */
int mpt_driver_stopping(const struct mpt_driver *d);

/* An owner's reference: the driver is not destroyed before the matching mpt_driver_unref. */
void mpt_driver_ref(struct mpt_driver *d);
void mpt_driver_unref(struct mpt_driver *d);

/* Counts an initialised handle as the driver's: h->data is set to d (the handle's callbacks
 * recover their owner with container_of, not from data). mpt_driver_close closes it. */
void mpt_driver_own(struct mpt_driver *d, uv_handle_t *h);

/* Closes a handle taken with mpt_driver_own (nothing if it is closing already); its reference
 * goes when libuv has closed it. */
void mpt_driver_close(uv_handle_t *h);

/* For a handle taken with mpt_driver_own whose owner must learn when its close completes: the
 * owner closes it with uv_close(h, cb) itself, and cb calls this last (the handle's reference
 * goes, and with it perhaps the driver). */
void mpt_driver_closed(uv_handle_t *h);

/* mpt_udp_open on the driver's loop, the socket counted as the driver's handle: it holds a
 * reference until its close completes (after the on_close callback given to mpt_udp_close,
 * which may free u). Returns what mpt_udp_open returns; on failure a socket that is closing
 * (mpt_udp_is_closing) is counted too and needs nothing more from the caller, who must only keep
 * u allocated or close it with mpt_udp_close(u, cb) to learn when it may be freed. */
int mpt_driver_udp_open(struct mpt_driver *d, struct mpt_udp *u, int family,
                        const struct sockaddr *bind_addr, uint32_t sndbuf, uint32_t rcvbuf,
                        mpt_udp_recv_cb on_recv, void *owner);

/* net/udp.c calls this when a socket opened by mpt_driver_udp_open has closed. */
void mpt_driver_udp_closed(struct mpt_driver *d);

#endif
