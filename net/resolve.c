#include "net/resolve.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
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

struct resolve_req {
    uv_getaddrinfo_t req;
    mpt_resolve_cb cb;
    void *arg;
};

/* The first usable address of a getaddrinfo answer. */
static int first_addr(const struct addrinfo *ai, struct mpt_addr *out)
{
    for (; ai; ai = ai->ai_next)
        if (mpt_addr_set(out, ai->ai_addr) == 0)
            return 0;
    return UV_EAI_NONAME;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct resolve_req *r = mpt_container_of(req, struct resolve_req, req);
    struct mpt_addr addr;

    memset(&addr, 0, sizeof(addr));
    if (status == 0)
        status = first_addr(res, &addr);
    uv_freeaddrinfo(res);
    r->cb(r->arg, status, &addr);
    free(r);
}

int mpt_resolve_start(struct mpt_loop *loop, const char *host, uint16_t port, int passive,
                      mpt_resolve_cb cb, void *arg)
{
    struct addrinfo hints;
    struct resolve_req *r;
    struct mpt_addr addr;
    char service[8];
    int err;

    if (!host[0]) {
        err = mpt_resolve(loop, host, port, passive, &addr);
        cb(arg, err, &addr);
        return 0;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return UV_ENOMEM;
    r->cb = cb;
    r->arg = arg;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    snprintf(service, sizeof(service), "%u", port);
    err = uv_getaddrinfo(mpt_loop_uv(loop), &r->req, on_resolved, host, service, &hints);
    if (err)
        free(r);
    return err;
}
