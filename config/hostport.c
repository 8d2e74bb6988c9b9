#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static int parse_port(uint16_t *port, const char *s)
{
    char *end;
    unsigned long v;

    if (!*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

int mpt_hostport_parse(struct mpt_hostport *hp, const char *text, int allow_port_only, char *err,
                       size_t errlen)
{
    const char *colon, *host = text;
    size_t hostlen;

    memset(hp, 0, sizeof(*hp));
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "invalid address `%s' (expected [IPV6]:PORT)", text);
            return -1;
        }
        host = text + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
        if (hostlen == 0 || !memchr(host, ':', hostlen)) {
            snprintf(err, errlen, "invalid address `%s' (expected [IPV6]:PORT)", text);
            return -1;
        }
    } else {
        colon = strrchr(text, ':');
        if (!colon) {
            if (allow_port_only && parse_port(&hp->port, text) == 0)
                return 0;
            snprintf(err, errlen, "invalid address `%s' (expected %s)", text,
                     allow_port_only ? "HOST:PORT, [IPV6]:PORT or PORT" : "HOST:PORT");
            return -1;
        }
        if (memchr(text, ':', (size_t)(colon - text))) {
            snprintf(err, errlen, "invalid address `%s' (write IPv6 as [ADDR]:PORT)", text);
            return -1;
        }
        hostlen = (size_t)(colon - text);
        if (hostlen == 0) {
            snprintf(err, errlen, "invalid address `%s' (empty host)", text);
            return -1;
        }
    }
    if (hostlen >= sizeof(hp->host)) {
        snprintf(err, errlen, "invalid address `%.64s...' (host too long)", text);
        return -1;
    }
    for (size_t i = 0; i < hostlen; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (ch <= ' ' || ch >= 127 || ch == '/' || ch == '[' || ch == ']') {
            snprintf(err, errlen, "invalid address `%s' (bad character in host)", text);
            return -1;
        }
    }
    if (parse_port(&hp->port, colon + 1) != 0) {
        snprintf(err, errlen, "invalid address `%s' (port must be 1-65535)", text);
        return -1;
    }
    memcpy(hp->host, host, hostlen);
    hp->host[hostlen] = '\0';
    return 0;
}

const char *mpt_hostport_format(const struct mpt_hostport *hp, char *buf, size_t len)
{
    if (strchr(hp->host, ':'))
        snprintf(buf, len, "[%s]:%u", hp->host, hp->port);
    else
        snprintf(buf, len, "%s:%u", hp->host, hp->port);
    return buf;
}

const char *mpt_path_label(const struct mpt_path_config *pc, char *buf, size_t len)
{
    if (pc->name[0])
        snprintf(buf, len, "%s", pc->name);
    else
        mpt_hostport_format(&pc->bridge, buf, len);
    return buf;
}

int mpt_hostname_valid(const char *name)
{
    unsigned char buf[16];
    size_t len = strlen(name), label = 0;

    if (inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1)
        return 1;
    if (len == 0 || len > MPT_HOSTNAME_MAX)
        return 0;
    for (const char *p = name; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!isalnum(ch) && ch != '-' && ch != '_')
            return 0;
        if (++label > 63)
            return 0;
    }
    return 1; /* a trailing dot (absolute name) is fine */
}

/* "PORT", "LOW-HIGH" or "*". */
static int parse_ports(struct mpt_allow *a, const char *s)
{
    const char *dash = strchr(s, '-');
    char lo[8];

    if (strcmp(s, "*") == 0) {
        a->port_lo = 1;
        a->port_hi = 65535;
        return 0;
    }
    if (!dash)
        return parse_port(&a->port_lo, s) != 0 ? -1 : (a->port_hi = a->port_lo, 0);
    if ((size_t)(dash - s) >= sizeof(lo))
        return -1;
    memcpy(lo, s, (size_t)(dash - s));
    lo[dash - s] = '\0';
    if (parse_port(&a->port_lo, lo) != 0 || parse_port(&a->port_hi, dash + 1) != 0)
        return -1;
    return a->port_lo <= a->port_hi ? 0 : -1;
}

/* "ADDR" or "ADDR/LEN" into a block with no bit set past its prefix. */
static int parse_block(struct mpt_allow *a, const char *s, size_t n, char *err, size_t errlen,
                       const char *text)
{
    char host[INET6_ADDRSTRLEN + 8];
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    unsigned long len;
    char *end;
    unsigned bits;

    if (alen >= INET6_ADDRSTRLEN)
        return -1;
    memcpy(host, s, alen);
    host[alen] = '\0';
    if (inet_pton(AF_INET, host, a->addr) == 1)
        a->family = AF_INET;
    else if (inet_pton(AF_INET6, host, a->addr) == 1)
        a->family = AF_INET6;
    else
        return -1;
    bits = a->family == AF_INET ? 32 : 128;
    a->prefix = bits;
    if (slash) {
        const char *p = slash + 1;
        size_t plen = n - alen - 1;
        char num[8];
        if (plen == 0 || plen >= sizeof(num) || *p < '0' || *p > '9')
            goto bad_len;
        memcpy(num, p, plen);
        num[plen] = '\0';
        errno = 0;
        len = strtoul(num, &end, 10);
        if (errno || *end || len > bits || (plen > 1 && num[0] == '0'))
            goto bad_len;
        a->prefix = (unsigned)len;
    }
    for (unsigned b = a->prefix; b < bits; b++) {
        if (a->addr[b / 8] & (0x80 >> (b % 8))) {
            snprintf(err, errlen, "invalid rule `%s' (address bits set past the /%u prefix)", text,
                     a->prefix);
            return -2;
        }
    }
    return 0;
bad_len:
    snprintf(err, errlen, "invalid rule `%s' (prefix length must be 0-%u)", text, bits);
    return -2;
}

int mpt_allow_parse(struct mpt_allow *a, const char *text, char *err, size_t errlen)
{
    const char *colon, *host = text;
    size_t hostlen;
    int rc;

    memset(a, 0, sizeof(*a));
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            goto syntax;
        host = text + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
        if (hostlen == 0 || !memchr(host, ':', hostlen))
            goto syntax;
    } else {
        colon = strrchr(text, ':');
        if (!colon || colon == text || memchr(text, ':', (size_t)(colon - text)))
            goto syntax;
        hostlen = (size_t)(colon - text);
    }
    if (parse_ports(a, colon + 1) != 0) {
        snprintf(err, errlen,
                 "invalid rule `%s' (ports: PORT, LOW-HIGH or `*', within 1-65535, LOW <= HIGH)",
                 text);
        return -1;
    }
    rc = parse_block(a, host, hostlen, err, errlen, text);
    if (rc == -2)
        return -1;
    if (rc == 0) {
        a->host.port = a->port_lo;
        return 0;
    }
    /* Not an address: a host name, resolved by the server. */
    if (text[0] == '[' || hostlen > MPT_HOSTNAME_MAX || memchr(host, '/', hostlen))
        goto syntax;
    memcpy(a->host.host, host, hostlen);
    a->host.host[hostlen] = '\0';
    a->host.port = a->port_lo;
    if (!mpt_hostname_valid(a->host.host)) {
        snprintf(err, errlen, "invalid rule `%s' (not an address, block or host name)", text);
        memset(a, 0, sizeof(*a));
        return -1;
    }
    return 0;
syntax:
    snprintf(err, errlen,
             "invalid rule `%s' (expected HOST:PORT, HOST:*, CIDR:PORT or CIDR:LOW-HIGH; IPv6 "
             "as [ADDR/LEN]:PORT)",
             text);
    memset(a, 0, sizeof(*a));
    return -1;
}

const char *mpt_allow_format(const struct mpt_allow *a, char *buf, size_t len)
{
    char host[MPT_CONFIG_HOST_MAX + 8], ports[16];

    if (a->port_lo == 1 && a->port_hi == 65535)
        snprintf(ports, sizeof(ports), "*");
    else if (a->port_lo == a->port_hi)
        snprintf(ports, sizeof(ports), "%u", (unsigned)a->port_lo);
    else
        snprintf(ports, sizeof(ports), "%u-%u", (unsigned)a->port_lo, (unsigned)a->port_hi);
    if (!a->family) {
        snprintf(buf, len, "%s:%s", a->host.host, ports);
        return buf;
    }
    inet_ntop(a->family, a->addr, host, sizeof(host));
    if (a->family == AF_INET6) {
        if (a->prefix == 128)
            snprintf(buf, len, "[%s]:%s", host, ports);
        else
            snprintf(buf, len, "[%s/%u]:%s", host, a->prefix, ports);
    } else if (a->prefix == 32) {
        snprintf(buf, len, "%s:%s", host, ports);
    } else {
        snprintf(buf, len, "%s/%u:%s", host, a->prefix, ports);
    }
    return buf;
}
