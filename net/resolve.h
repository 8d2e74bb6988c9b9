/* Name resolution for configured addresses (libuv getaddrinfo, at start-up). */
#ifndef MPT_NET_RESOLVE_H
#define MPT_NET_RESOLVE_H

#include <stdint.h>

#include "core/addr.h"
#include "net/loop.h"

/* Resolves host ("" = all addresses: [::] dual-stack when `passive`, else an error) and port into
 * the first usable address. Numeric hosts are not looked up. Returns 0 or a negative UV_E* code. */
int mpt_resolve(struct mpt_loop *loop, const char *host, uint16_t port, int passive,
                struct mpt_addr *out);

#endif
