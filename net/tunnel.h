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

/* The core behind a running client (statistics; read-only). */
const struct mpt_client *mpt_client_drv_core(const struct mpt_client_drv *d);

/* The address the client listens on for applications. */
void mpt_client_drv_local(struct mpt_client_drv *d, struct mpt_addr *out);

/* The same for the server. */
int mpt_server_drv_start(struct mpt_loop *loop, const struct mpt_config *cfg,
                         struct mpt_server_drv **out, char *err, size_t errlen);
const struct mpt_server *mpt_server_drv_core(const struct mpt_server_drv *d);
void mpt_server_drv_local(struct mpt_server_drv *d, struct mpt_addr *out);

#endif
