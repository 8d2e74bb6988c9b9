/* SOCKS5 messages (RFC 1928, RFC 1929). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "core/socks.h"
#include "core/wire.h"

int mpt_socks_greeting(const uint8_t *p, size_t n, int want_userpass, uint8_t *method)
{
    int none = 0, userpass = 0;

    if (n < 2)
        return n && p[0] != MPT_SOCKS_VERSION ? -EINVAL : 0;
    if (p[0] != MPT_SOCKS_VERSION || p[1] == 0)
        return -EINVAL;
    if (n < 2u + p[1])
        return 0;
    for (unsigned i = 0; i < p[1]; i++) {
        none |= p[2 + i] == MPT_SOCKS_AUTH_NONE;
        userpass |= p[2 + i] == MPT_SOCKS_AUTH_USERPASS;
    }
    if (want_userpass)
        *method = userpass ? MPT_SOCKS_AUTH_USERPASS : MPT_SOCKS_AUTH_REFUSED;
    else
        *method = none ? MPT_SOCKS_AUTH_NONE : MPT_SOCKS_AUTH_REFUSED;
    return 2 + p[1];
}

int mpt_socks_userpass(const uint8_t *p, size_t n, char *user, char *pass)
{
    size_t ulen, plen;

    if (n < 2)
        return n && p[0] != 1 ? -EINVAL : 0;
    if (p[0] != 1 || p[1] == 0)
        return -EINVAL;
    ulen = p[1];
    if (n < 2 + ulen + 1)
        return 0;
    plen = p[2 + ulen];
    if (n < 3 + ulen + plen)
        return 0;
    memcpy(user, p + 2, ulen);
    user[ulen] = '\0';
    memcpy(pass, p + 3 + ulen, plen);
    pass[plen] = '\0';
    /* A NUL inside would make the name compare as a shorter one. */
    if (strlen(user) != ulen || strlen(pass) != plen)
        return -EINVAL;
    return (int)(3 + ulen + plen);
}

/* ATYP DST.ADDR DST.PORT at p[n] into d. Returns its length, 0 if more are needed, -EINVAL or
 * -EAFNOSUPPORT. */
static int parse_dest(const uint8_t *p, size_t n, struct mpt_socks_dest *d)
{
    size_t alen;

    if (n < 1)
        return 0;
    memset(d, 0, sizeof(*d));
    d->atyp = p[0];
    switch (p[0]) {
    case MPT_SOCKS_ATYP_IPV4:
        alen = 4;
        break;
    case MPT_SOCKS_ATYP_IPV6:
        alen = 16;
        break;
    case MPT_SOCKS_ATYP_DOMAIN:
        if (n < 2)
            return 0;
        alen = 1 + (size_t)p[1];
        break;
    default:
        return -EAFNOSUPPORT;
    }
    if (n < 1 + alen + 2)
        return 0;
    if (p[0] == MPT_SOCKS_ATYP_IPV4) {
        inet_ntop(AF_INET, p + 1, d->host, sizeof(d->host));
    } else if (p[0] == MPT_SOCKS_ATYP_IPV6) {
        inet_ntop(AF_INET6, p + 1, d->host, sizeof(d->host));
    } else {
        if (!mpt_target_host_valid((const char *)p + 2, alen - 1))
            return -EINVAL;
        memcpy(d->host, p + 2, alen - 1);
        d->host[alen - 1] = '\0';
    }
    d->port = mpt_get16(p + 1 + alen);
    return (int)(1 + alen + 2);
}

int mpt_socks_request(const uint8_t *p, size_t n, uint8_t *cmd, struct mpt_socks_dest *d)
{
    int r;

    if (n < 3)
        return n && p[0] != MPT_SOCKS_VERSION ? -EINVAL : 0;
    if (p[0] != MPT_SOCKS_VERSION || p[2] != 0)
        return -EINVAL;
    r = parse_dest(p + 3, n - 3, d);
    if (r <= 0)
        return r;
    *cmd = p[1];
    return 3 + r;
}

size_t mpt_socks_reply(uint8_t *out, uint8_t rep, const struct mpt_addr *bnd)
{
    out[0] = MPT_SOCKS_VERSION;
    out[1] = rep;
    out[2] = 0;
    if (bnd && bnd->u.sa.sa_family == AF_INET6) {
        out[3] = MPT_SOCKS_ATYP_IPV6;
        memcpy(out + 4, &bnd->u.in6.sin6_addr, 16);
        mpt_put16(out + 20, mpt_addr_port(bnd));
        return 22;
    }
    out[3] = MPT_SOCKS_ATYP_IPV4;
    if (bnd && bnd->u.sa.sa_family == AF_INET) {
        memcpy(out + 4, &bnd->u.in4.sin_addr, 4);
        mpt_put16(out + 8, mpt_addr_port(bnd));
    } else {
        memset(out + 4, 0, 6);
    }
    return 10;
}

int mpt_socks_udp_parse(const uint8_t *p, size_t n, struct mpt_socks_dest *d)
{
    int r;

    if (n < 4 || p[0] != 0 || p[1] != 0)
        return -EINVAL;
    if (p[2] != 0)
        return -EMSGSIZE;
    r = parse_dest(p + 3, n - 3, d);
    if (r == 0)
        return -EINVAL;
    if (r < 0)
        return r;
    if (d->port == 0)
        return -EINVAL;
    return 3 + r;
}

int mpt_socks_udp_header(uint8_t *out, const struct mpt_socks_dest *d)
{
    size_t len = strlen(d->host);

    out[0] = out[1] = out[2] = 0;
    if (inet_pton(AF_INET, d->host, out + 4) == 1) {
        out[3] = MPT_SOCKS_ATYP_IPV4;
        mpt_put16(out + 8, d->port);
        return 10;
    }
    if (inet_pton(AF_INET6, d->host, out + 4) == 1) {
        out[3] = MPT_SOCKS_ATYP_IPV6;
        mpt_put16(out + 20, d->port);
        return 22;
    }
    if (!mpt_target_host_valid(d->host, len))
        return -EINVAL;
    out[3] = MPT_SOCKS_ATYP_DOMAIN;
    out[4] = (uint8_t)len;
    memcpy(out + 5, d->host, len);
    mpt_put16(out + 5 + len, d->port);
    return (int)(7 + len);
}
