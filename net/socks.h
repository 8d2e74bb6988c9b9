/* The client's SOCKS5 front (RFC 1928): a TCP listener where applications ask for a UDP
 * association, then a UDP relay socket per association. Each destination an association's
 * datagrams name becomes a tunnel flow of its own (front = the association's number) that names
 * its target, so that names are resolved and checked by the server; replies come back with the
 * SOCKS header of the destination they came from. CONNECT and BIND are answered "command not
 * supported". Every byte on the control connection and in the datagrams is hostile: parsed by
 * core/socks.c, limited, timed out, counted. Internal to net/ (no uv.h here: the client driver
 * and the status writers see only this). */
#ifndef MPT_NET_SOCKS_H
#define MPT_NET_SOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"

#define MPT_SOCKS_MAX_ASSOC 64      /* associations at once */
#define MPT_SOCKS_MAX_HANDSHAKES 16 /* control connections not yet associated, beyond those */
#define MPT_SOCKS_MAX_DESTS 32      /* destinations per association */
#define MPT_SOCKS_HANDSHAKE_MS 5000 /* a control connection must have asked by then */
#define MPT_SOCKS_LINGER_MS 2000    /* after a refusal, for the peer to read it and close */
#define MPT_SOCKS_KEEPALIVE_S 60    /* TCP keepalive of control connections, from this idle time */

/* Why a datagram from a SOCKS client was dropped. */
enum mpt_socks_drop {
    MPT_SOCKS_DROP_FRAGMENT = 0, /* FRAG != 0: fragments are not reassembled (RFC 1928 §7) */
    MPT_SOCKS_DROP_MALFORMED,    /* a header that does not parse, an unknown address type */
    MPT_SOCKS_DROP_SOURCE,       /* not from the address the client announced or first used */
    MPT_SOCKS_DROP_DESTINATIONS, /* a new destination over MPT_SOCKS_MAX_DESTS */
    MPT_SOCKS_DROP_COUNT,
};

extern const char *const mpt_socks_drop_names[MPT_SOCKS_DROP_COUNT];

/* The front's figures since start, for status and metrics. */
struct mpt_socks_stats {
    char listen[MPT_ADDR_STRLEN];
    unsigned max_assoc, max_dests;
    uint64_t connections;           /* control connections accepted */
    uint64_t connections_refused;   /* over the limit of connections: closed at once */
    uint64_t handshake_failed;      /* malformed, no acceptable method, wrong password */
    uint64_t handshake_timeouts;    /* no request within MPT_SOCKS_HANDSHAKE_MS */
    uint64_t unsupported;           /* CONNECT, BIND or another command: reply 7 */
    unsigned assoc_open;            /* associations now */
    uint64_t assoc_total;           /* associations made */
    uint64_t assoc_refused;         /* UDP ASSOCIATE over MPT_SOCKS_MAX_ASSOC (reply 1) */
    uint64_t dgrams_in, dgrams_out; /* datagrams from SOCKS clients, and replies to them */
    uint64_t drops[MPT_SOCKS_DROP_COUNT];
};

struct mpt_socks;
struct mpt_driver;

/* A datagram of an association (`front') from the client at `app' to host:port. */
typedef void (*mpt_socks_dgram_cb)(void *arg, const struct mpt_addr *app, uint16_t front,
                                   const char *host, uint16_t port, const uint8_t *data,
                                   size_t len);
/* Association `front' has ended (its control connection closed): its flows can go. */
typedef void (*mpt_socks_closed_cb)(void *arg, uint16_t front);

struct mpt_socks_params {
    const struct mpt_addr *listen; /* where to listen (TCP) */
    uint16_t front_base;           /* associations are fronts front_base, front_base + 1, ... */
    uint32_t dest_idle_ms;         /* a destination idle this long frees its place */
    uint32_t sndbuf, rcvbuf;       /* relay sockets' buffers (0: the default) */
    const char *user, *pass;       /* RFC 1929 username/password; NULL: no authentication */
    mpt_socks_dgram_cb on_dgram;
    mpt_socks_closed_cb on_closed;
    void *arg;
};

/* Starts the front on driver d's loop, every handle counted as d's. Returns 0, or a negative
 * code (the address could not be bound). Whenever *out is set (on failure too), the front is
 * stopped with mpt_socks_stop and freed with mpt_socks_free once d's handles have all closed. */
int mpt_socks_start(struct mpt_driver *d, const struct mpt_socks_params *p, struct mpt_socks **out);

/* Closes the listener, every control connection and relay socket (on_closed is not called). */
void mpt_socks_stop(struct mpt_socks *s);

/* Frees the front (NULL: nothing); only once no handle of it is open. */
void mpt_socks_free(struct mpt_socks *s);

/* 1 if `front' is one of the front's associations. */
int mpt_socks_owns(const struct mpt_socks *s, uint16_t front);

/* A reply of association `front' from host:port: sent to its client with the SOCKS header.
 * Returns 0, or a negative code if the association is gone or the kernel refused it. */
int mpt_socks_send(struct mpt_socks *s, uint16_t front, const char *host, uint16_t port,
                   const uint8_t *data, size_t len);

const struct mpt_socks_stats *mpt_socks_stats(const struct mpt_socks *s);

struct mpt_udp_errors;

/* Adds to *e the replies the kernel refused to send on relay sockets since start, by kind. */
void mpt_socks_send_errors(const struct mpt_socks *s, struct mpt_udp_errors *e);

/* 1 if user/pass (user NULL: no authentication) are not what the front was started with. */
int mpt_socks_credentials_differ(const struct mpt_socks *s, const char *user, const char *pass);

#endif
