/* The server's cache of host names that flows named (PROTOCOL.md §5): a fixed table of recent
 * answers of the driver's resolver, positive and negative, each kept for a while, and the lookups
 * under way, so that flows naming one name cause one lookup. Pure: time is given. */
#ifndef MPT_NAMES_H
#define MPT_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/target.h"

#define MPT_NAMES_SIZE 256              /* names kept, answers and lookups under way */
#define MPT_NAMES_TTL_US 60000000ULL    /* an address found is used this long */
#define MPT_NAMES_NEG_TTL_US 5000000ULL /* a name that did not resolve is refused this long */
#define MPT_NAMES_NEG_MAX 64            /* negative answers kept at most */
#define MPT_NAMES_LOOKUP_US 60000000ULL /* a lookup not answered in this long is given up */

enum mpt_name_state {
    MPT_NAME_FREE = 0,
    MPT_NAME_PENDING,  /* being resolved: gen names the lookup */
    MPT_NAME_FOUND,    /* addr (its port 0) */
    MPT_NAME_NOTFOUND, /* the lookup failed */
};

struct mpt_name {
    uint8_t state; /* enum mpt_name_state */
    uint8_t len;
    uint32_t hash;
    uint32_t gen;   /* while pending: the lookup's number */
    uint64_t at_us; /* when the lookup began (pending) or its answer came */
    struct mpt_addr addr;
    char host[MPT_TARGET_HOST_MAX + 1];
};

struct mpt_names {
    struct mpt_name *v; /* MPT_NAMES_SIZE entries */
    uint64_t ttl_us, neg_ttl_us;
    unsigned pending, negative; /* entries in those states */
    uint64_t hits;              /* flows answered by an entry, or joined to a lookup under way */
    uint64_t misses;            /* flows that started a lookup */
    uint64_t given_up;          /* lookups not answered within MPT_NAMES_LOOKUP_US */
};

/* Allocates the table (ttl_us 0: MPT_NAMES_TTL_US; negative answers live the smaller of it and
 * MPT_NAMES_NEG_TTL_US). Returns 0 or -ENOMEM. */
int mpt_names_init(struct mpt_names *n, uint64_t ttl_us);
void mpt_names_free(struct mpt_names *n);

/* The entry of host (NUL-terminated) if one is pending, or holds an answer still fresh at `now`;
 * else NULL. Counts nothing. */
struct mpt_name *mpt_names_find(struct mpt_names *n, const char *host, uint64_t now);

/* An entry for a new lookup of host, pending as lookup `gen`: a free or stale entry, else the
 * oldest answer (never one pending; a lookup pending past MPT_NAMES_LOOKUP_US is given up first).
 * NULL if every entry is pending. */
struct mpt_name *mpt_names_start(struct mpt_names *n, const char *host, uint32_t gen, uint64_t now);

/* The answer of lookup `gen`: status 0 and addr (its port is cleared), or a negative code. Returns
 * its entry, now FOUND or NOTFOUND, or NULL if no lookup of that number is pending (given up).
 * Over MPT_NAMES_NEG_MAX negative answers, the oldest is forgotten. */
struct mpt_name *mpt_names_answer(struct mpt_names *n, uint32_t gen, int status,
                                  const struct mpt_addr *addr, uint64_t now);

/* Gives up every lookup pending past MPT_NAMES_LOOKUP_US; returns how many. */
unsigned mpt_names_expire(struct mpt_names *n, uint64_t now);

/* Forgets entry e (a lookup that could not be asked after all). */
void mpt_names_drop(struct mpt_names *n, struct mpt_name *e);

/* Entries holding a fresh answer at `now` (for the status report). */
unsigned mpt_names_cached(const struct mpt_names *n, uint64_t now);

#endif
