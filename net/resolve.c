#include "net/resolve.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "net/udp.h"

int mpt_resolve(struct mpt_loop *loop, const char *host, uint16_t port, int passive,
                struct mpt_addr *out)
{
    struct addrinfo hints;
    uv_getaddrinfo_t req;
    char service[8];
    struct addrinfo *ai;
    int err;

    memset(out, 0, sizeof(*out));
    if (!host[0]) {
        if (!passive)
            return UV_EINVAL;
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_addr = in6addr_any;
        out->u.in6.sin6_port = htons(port);
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    snprintf(service, sizeof(service), "%u", port);
    err = uv_getaddrinfo(mpt_loop_uv(loop), &req, NULL, host, service, &hints);
    if (err)
        return err;
    err = UV_EAI_NONAME;
    for (ai = req.addrinfo; ai; ai = ai->ai_next) {
        if (mpt_addr_set(out, ai->ai_addr) == 0) {
            err = 0;
            break;
        }
    }
    uv_freeaddrinfo(req.addrinfo);
    return err;
}
