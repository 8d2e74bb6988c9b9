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
