/* The target block and allow rules (PROTOCOL.md §5). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "core/target.h"
#include "core/wire.h"

const char *const mpt_flow_status_names[MPT_FLOW_STATUS_COUNT] = {
    "open", "not_allowed", "unresolved", "busy", "unknown_flow", "bad_target",
};

int mpt_target_host_valid(const char *host, size_t len)
{
    if (len == 0 || len > MPT_TARGET_HOST_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return 0;
    }
    return 1;
}

int mpt_target_encode(uint8_t *p, size_t room, const char *host, uint16_t port)
{
    size_t len = strlen(host);

    if (!mpt_target_host_valid(host, len) || port == 0)
        return -EINVAL;
    if (room < 1 + len + 2)
        return -ENOBUFS;
    p[0] = (uint8_t)len;
    memcpy(p + 1, host, len);
    mpt_put16(p + 1 + len, port);
    return (int)(1 + len + 2);
}

int mpt_target_decode(const uint8_t *p, size_t n, char *host, uint16_t *port)
{
    size_t len;

    if (n < 1)
        return -EINVAL;
    len = p[0];
    if (n < 1 + len + 2 || !mpt_target_host_valid((const char *)p + 1, len))
        return -EINVAL;
    *port = mpt_get16(p + 1 + len);
    if (*port == 0)
        return -EINVAL;
    memcpy(host, p + 1, len);
    host[len] = '\0';
    return (int)(1 + len + 2);
}

int mpt_target_literal(const char *host, uint16_t port, struct mpt_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, &out->u.in4.sin_addr) == 1) {
        out->u.in4.sin_family = AF_INET;
        out->u.in4.sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) == 1) {
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons(port);
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return -EINVAL;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (memcmp(a, b, full) != 0)
        return 0;
    return !rest || ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int mpt_allow_match(const struct mpt_allow_rule *rules, unsigned n, const struct mpt_addr *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *v4 = NULL, *v6 = NULL;
    uint16_t port = mpt_addr_port(a);

    if (a->u.sa.sa_family == AF_INET) {
        v4 = (const uint8_t *)&a->u.in4.sin_addr;
    } else if (a->u.sa.sa_family == AF_INET6) {
        v6 = (const uint8_t *)&a->u.in6.sin6_addr;
        if (memcmp(v6, mapped, sizeof(mapped)) == 0)
            v4 = v6 + 12;
    } else {
        return 0;
    }
    for (unsigned i = 0; i < n; i++) {
        const struct mpt_allow_rule *r = &rules[i];
        if (port < r->port_lo || port > r->port_hi)
            continue;
        if (r->family == AF_INET && v4 && r->prefix <= 32 && prefix_match(v4, r->addr, r->prefix))
            return 1;
        if (r->family == AF_INET6 && v6 && r->prefix <= 128 && prefix_match(v6, r->addr, r->prefix))
            return 1;
    }
    return 0;
}
