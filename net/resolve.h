/* Name resolution for configured addresses (libuv getaddrinfo): blocking at start-up, in the
 * background for a reload. */
#ifndef MPT_NET_RESOLVE_H
#define MPT_NET_RESOLVE_H

#include <stdint.h>

#include "core/addr.h"
#include "net/loop.h"

/* Resolves host ("" = all addresses: [::] dual-stack when `passive`, else an error) and port into
 * the first usable address. Numeric hosts are not looked up. Returns 0 or a negative UV_E* code. */
int mpt_resolve(struct mpt_loop *loop, const char *host, uint16_t port, int passive,
                struct mpt_addr *out);

/* Called once with the outcome of mpt_resolve_start: status 0 and the address, or a negative
 * UV_E* code. */
typedef void (*mpt_resolve_cb)(void *arg, int status, const struct mpt_addr *addr);

/* The same without blocking the loop (libuv's thread pool): cb(arg, ...) runs later from the
 * loop, or at once for "" (all addresses). Returns 0 (cb will run exactly once), or a negative
 * code if the lookup could not start (cb will not run). */
int mpt_resolve_start(struct mpt_loop *loop, const char *host, uint16_t port, int passive,
                      mpt_resolve_cb cb, void *arg);

#endif
