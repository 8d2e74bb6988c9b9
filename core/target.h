/* Targets named inside the encryption (PROTOCOL.md §5): the target block of a FLOW message, and
 * the server's allow rules. Pure functions over bytes and addresses. */
#ifndef MPT_TARGET_H
#define MPT_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"

#define MPT_TARGET_HOST_MAX 253 /* characters of a host in a target block */
#define MPT_TARGET_BLOCK_MAX (1 + MPT_TARGET_HOST_MAX + 2)

/* FLOW flags (§5). */
#define MPT_FLOW_F_TARGET 0x01 /* client: a target block follows the header */
#define MPT_FLOW_F_NAMED 0x02  /* client: the flow names its target (index 0 then) */

/* FLOW_STATUS codes, server -> client (§5). */
enum mpt_flow_status {
    MPT_FLOW_OPEN = 0,        /* the flow is open towards the target it named */
    MPT_FLOW_NOT_ALLOWED = 1, /* no allow rule covers the target */
    MPT_FLOW_UNRESOLVED = 2,  /* the name did not resolve */
    MPT_FLOW_BUSY = 3,        /* a limit: flows, or lookups under way */
    MPT_FLOW_UNKNOWN = 4,     /* the server has no such flow: send the target again */
    MPT_FLOW_BAD_TARGET = 5,  /* the target block is malformed */
    MPT_FLOW_STATUS_COUNT,
};

extern const char *const mpt_flow_status_names[MPT_FLOW_STATUS_COUNT];

/* An allow rule with its names resolved: an address block and a port range. */
struct mpt_allow_rule {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t prefix;
    uint16_t port_lo, port_hi;
    uint8_t addr[16];
};

/* 1 if a host is one a target block may carry: 1-253 characters of letters, digits, `-', `_',
 * `.' and (an IPv6 literal) `:'. */
int mpt_target_host_valid(const char *host, size_t len);

/* Writes the target block (length, host, port) at p[room]. Returns its size, or -EINVAL for an
 * invalid host, -ENOBUFS if it does not fit. */
int mpt_target_encode(uint8_t *p, size_t room, const char *host, uint16_t port);

/* Reads a target block from p[n] into host[MPT_TARGET_HOST_MAX + 1] (NUL-terminated) and *port.
 * Returns the bytes it took, or -EINVAL (short, empty or invalid host, port 0). */
int mpt_target_decode(const uint8_t *p, size_t n, char *host, uint16_t *port);

/* An IPv4 or IPv6 literal and a port into *out. Returns 0, or -EINVAL for anything else. */
int mpt_target_literal(const char *host, uint16_t port, struct mpt_addr *out);

/* 1 if a rule of rules[n] covers address and port of `a` (an IPv4-mapped IPv6 address counts as
 * IPv4), else 0. */
int mpt_allow_match(const struct mpt_allow_rule *rules, unsigned n, const struct mpt_addr *a);

#endif
