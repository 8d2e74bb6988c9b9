#include "core/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int mpt_addr_set(struct mpt_addr *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        memcpy(&a->u.in4, sa, sizeof(a->u.in4));
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(&a->u.in6, sa, sizeof(a->u.in6));
        return 0;
    }
    return -EAFNOSUPPORT;
}

socklen_t mpt_addr_len(const struct mpt_addr *a)
{
    switch (a->u.sa.sa_family) {
    case AF_INET:
        return sizeof(struct sockaddr_in);
    case AF_INET6:
        return sizeof(struct sockaddr_in6);
    default:
        return 0;
    }
}

int mpt_addr_equal(const struct mpt_addr *a, const struct mpt_addr *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return 0;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in4.sin_port == b->u.in4.sin_port &&
               a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr;
    if (a->u.sa.sa_family == AF_INET6)
        return a->u.in6.sin6_port == b->u.in6.sin6_port &&
               a->u.in6.sin6_scope_id == b->u.in6.sin6_scope_id &&
               memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16) == 0;
    return 1;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint32_t mpt_addr_hash(const struct mpt_addr *a, uint64_t key)
{
    uint64_t h = key ^ a->u.sa.sa_family;

    if (a->u.sa.sa_family == AF_INET) {
        h = mix64(h ^ ((uint64_t)a->u.in4.sin_addr.s_addr << 16 | a->u.in4.sin_port));
    } else if (a->u.sa.sa_family == AF_INET6) {
        uint64_t w[2];
        memcpy(w, &a->u.in6.sin6_addr, 16);
        h = mix64(h ^ w[0]);
        h = mix64(h ^ w[1]);
        h = mix64(h ^ ((uint64_t)a->u.in6.sin6_scope_id << 16 | a->u.in6.sin6_port));
    }
    return (uint32_t)(h ^ (h >> 32));
}

uint16_t mpt_addr_port(const struct mpt_addr *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in4.sin_port);
    if (a->u.sa.sa_family == AF_INET6)
        return ntohs(a->u.in6.sin6_port);
    return 0;
}

const char *mpt_addr_str(const struct mpt_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.in4.sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(a->u.in4.sin_port));
    } else if (a->u.sa.sa_family == AF_INET6) {
        if (IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr)) {
            inet_ntop(AF_INET, &a->u.in6.sin6_addr.s6_addr[12], ip, sizeof(ip));
            snprintf(buf, len, "%s:%u", ip, ntohs(a->u.in6.sin6_port));
        } else {
            inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof(ip));
            snprintf(buf, len, "[%s]:%u", ip, ntohs(a->u.in6.sin6_port));
        }
    } else {
        snprintf(buf, len, "(none)");
    }
    return buf;
}
