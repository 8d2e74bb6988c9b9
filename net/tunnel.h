/* The client and server drivers: they own the sockets and the timer, feed core and carry out
 * what it returns. No uv.h here, so cmd/ can start them. */
#ifndef MPT_NET_TUNNEL_H
#define MPT_NET_TUNNEL_H

#include <stddef.h>

#include "config/config.h"
#include "core/client.h"
#include "core/server.h"
#include "net/loop.h"

struct mpt_client_drv;
struct mpt_server_drv;

/* Resolves the configuration's addresses, opens the sockets and starts the client on `loop`
 * (stopped with the loop). Returns 0, or a negative code with a message in err naming what failed
 * (address, file:line). */
int mpt_client_drv_start(struct mpt_loop *loop, const struct mpt_config *cfg,
                         struct mpt_client_drv **out, char *err, size_t errlen);

/* How a reload ended: status 0, or a negative code with a message saying file:line and why (the
 * driver then runs on unchanged). */
typedef void (*mpt_drv_reload_cb)(void *arg, int status, const char *err);

/* Applies a new configuration to a running client without dropping its session or flows: paths
 * added, removed or moved (every host name resolved again, in the background: the loop never
 * waits for a lookup), a path that continues keeping its statistics and socket; the secret (a
 * new handshake under it), mode, priorities, weights and timers. listen, max_flows, metrics and
 * control take effect at the next start only (a warning says so). cb(arg, ...) runs exactly once,
 * from the loop, perhaps before this returns; cfg must stay valid until then. A reload while
 * another is under way fails (UV_EBUSY). */
void mpt_client_drv_reload(struct mpt_client_drv *d, const struct mpt_config *cfg,
                           mpt_drv_reload_cb cb, void *arg);

/* The core behind a running client (statistics; read-only). */
const struct mpt_client *mpt_client_drv_core(const struct mpt_client_drv *d);

/* The address the client listens on for applications. */
void mpt_client_drv_local(struct mpt_client_drv *d, struct mpt_addr *out);

/* The same for the server. */
int mpt_server_drv_start(struct mpt_loop *loop, const struct mpt_config *cfg,
                         struct mpt_server_drv **out, char *err, size_t errlen);
const struct mpt_server *mpt_server_drv_core(const struct mpt_server_drv *d);

/* Applies a new configuration to a running server: the secret (for new handshakes; open
 * sessions keep their keys), the target resolved again in the background (for new flows), the
 * timeouts. listen, max_flows and max_sessions take effect at the next start only. cb as for
 * mpt_client_drv_reload. */
void mpt_server_drv_reload(struct mpt_server_drv *d, const struct mpt_config *cfg,
                           mpt_drv_reload_cb cb, void *arg);
void mpt_server_drv_local(struct mpt_server_drv *d, struct mpt_addr *out);

#endif
