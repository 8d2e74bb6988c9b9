/* The server's cache of names (names.h). A linear table: it is read once per new flow that names
 * a host, never per datagram, and 256 entries compare by hash and length first. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/names.h"

static uint32_t name_hash(const char *host, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)host[i]) * 16777619u;
    return h;
}

int mpt_names_init(struct mpt_names *n, uint64_t ttl_us)
{
    memset(n, 0, sizeof(*n));
    n->v = calloc(MPT_NAMES_SIZE, sizeof(*n->v));
    if (!n->v)
        return -ENOMEM;
    n->ttl_us = ttl_us ? ttl_us : MPT_NAMES_TTL_US;
    n->neg_ttl_us = n->ttl_us < MPT_NAMES_NEG_TTL_US ? n->ttl_us : MPT_NAMES_NEG_TTL_US;
    return 0;
}

void mpt_names_free(struct mpt_names *n)
{
    free(n->v);
    n->v = NULL;
}

/* 1 if entry e holds an answer still good at `now`. */
static int fresh(const struct mpt_names *n, const struct mpt_name *e, uint64_t now)
{
    if (e->state == MPT_NAME_FOUND)
        return now - e->at_us < n->ttl_us;
    if (e->state == MPT_NAME_NOTFOUND)
        return now - e->at_us < n->neg_ttl_us;
    return 0;
}

static void forget(struct mpt_names *n, struct mpt_name *e)
{
    if (e->state == MPT_NAME_PENDING)
        n->pending--;
    else if (e->state == MPT_NAME_NOTFOUND)
        n->negative--;
    e->state = MPT_NAME_FREE;
}

struct mpt_name *mpt_names_find(struct mpt_names *n, const char *host, uint64_t now)
{
    size_t len = strlen(host);
    uint32_t h;

    if (len > MPT_TARGET_HOST_MAX)
        return NULL;
    h = name_hash(host, len);
    for (unsigned i = 0; i < MPT_NAMES_SIZE; i++) {
        struct mpt_name *e = &n->v[i];
        if (e->state == MPT_NAME_FREE || e->hash != h || e->len != len ||
            memcmp(e->host, host, len) != 0)
            continue;
        if (e->state == MPT_NAME_PENDING && now - e->at_us >= MPT_NAMES_LOOKUP_US) {
            forget(n, e);
            n->given_up++;
            continue;
        }
        /* A stale entry of the name may stand before the fresh one that replaced it. */
        if (e->state == MPT_NAME_PENDING || fresh(n, e, now))
            return e;
    }
    return NULL;
}

struct mpt_name *mpt_names_start(struct mpt_names *n, const char *host, uint32_t gen, uint64_t now)
{
    size_t len = strlen(host);
    struct mpt_name *e = NULL, *oldest = NULL;

    if (len > MPT_TARGET_HOST_MAX)
        return NULL;
    for (unsigned i = 0; i < MPT_NAMES_SIZE; i++) {
        struct mpt_name *x = &n->v[i];
        if (x->state == MPT_NAME_PENDING && now - x->at_us >= MPT_NAMES_LOOKUP_US) {
            forget(n, x);
            n->given_up++;
        }
        /* The same name's stale entry, or any free or stale one: the first will do. */
        if (x->state == MPT_NAME_FREE || (x->state != MPT_NAME_PENDING && !fresh(n, x, now))) {
            e = x;
            break;
        }
        if (x->state != MPT_NAME_PENDING && (!oldest || x->at_us < oldest->at_us))
            oldest = x;
    }
    if (!e)
        e = oldest;
    if (!e)
        return NULL;
    forget(n, e);
    e->state = MPT_NAME_PENDING;
    e->len = (uint8_t)len;
    e->hash = name_hash(host, len);
    e->gen = gen;
    e->at_us = now;
    memset(&e->addr, 0, sizeof(e->addr));
    memcpy(e->host, host, len);
    e->host[len] = '\0';
    n->pending++;
    return e;
}

struct mpt_name *mpt_names_answer(struct mpt_names *n, uint32_t gen, int status,
                                  const struct mpt_addr *addr, uint64_t now)
{
    struct mpt_name *e = NULL;

    for (unsigned i = 0; i < MPT_NAMES_SIZE; i++) {
        if (n->v[i].state == MPT_NAME_PENDING && n->v[i].gen == gen) {
            e = &n->v[i];
            break;
        }
    }
    if (!e)
        return NULL;
    forget(n, e);
    e->at_us = now;
    if (status == 0 && addr &&
        (addr->u.sa.sa_family == AF_INET || addr->u.sa.sa_family == AF_INET6)) {
        e->state = MPT_NAME_FOUND;
        e->addr = *addr;
        if (e->addr.u.sa.sa_family == AF_INET)
            e->addr.u.in4.sin_port = 0;
        else
            e->addr.u.in6.sin6_port = 0;
        return e;
    }
    /* Negative answers are bounded apart: names that do not exist cannot push out those that do. */
    if (n->negative >= MPT_NAMES_NEG_MAX) {
        struct mpt_name *old = NULL;
        for (unsigned i = 0; i < MPT_NAMES_SIZE; i++) {
            struct mpt_name *x = &n->v[i];
            if (x->state == MPT_NAME_NOTFOUND && (!old || x->at_us < old->at_us))
                old = x;
        }
        if (old)
            forget(n, old);
    }
    e->state = MPT_NAME_NOTFOUND;
    n->negative++;
    return e;
}

unsigned mpt_names_expire(struct mpt_names *n, uint64_t now)
{
    unsigned k = 0;

    for (unsigned i = 0; i < MPT_NAMES_SIZE && n->pending; i++) {
        struct mpt_name *x = &n->v[i];
        if (x->state == MPT_NAME_PENDING && now - x->at_us >= MPT_NAMES_LOOKUP_US) {
            forget(n, x);
            n->given_up++;
            k++;
        }
    }
    return k;
}

void mpt_names_drop(struct mpt_names *n, struct mpt_name *e)
{
    forget(n, e);
}

unsigned mpt_names_cached(const struct mpt_names *n, uint64_t now)
{
    unsigned k = 0;

    for (unsigned i = 0; i < MPT_NAMES_SIZE; i++)
        k += fresh(n, &n->v[i], now);
    return k;
}
