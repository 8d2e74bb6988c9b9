/* `mptunnel demo`: the whole tunnel in one process on loopback — an echo target, the server, N
 * impaired bridges, the client and a traffic generator — with figures every second. Printing is
 * left to cmd/: this module fills a report and calls back. */
#ifndef MPT_NET_DEMO_H
#define MPT_NET_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include "core/client.h"
#include "net/loop.h"

#define MPT_DEMO_MAX_PATHS 8

/* Something that happened to a path, when it happened. */
enum mpt_demo_event_kind {
    MPT_DEMO_BLACKOUT,  /* the demo blacked the path out (--kill-path) */
    MPT_DEMO_RESTORED,  /* and ended the blackout */
    MPT_DEMO_PATH_DOWN, /* the client took the path for down */
    MPT_DEMO_PATH_UP,   /* the client took it for alive again */
};

struct mpt_demo_event {
    enum mpt_demo_event_kind kind;
    unsigned path;     /* from 0 */
    const char *label; /* the path's name in messages (its bridge, HOST:PORT) */
    double at_s;       /* since the demo started */
    double after_s;    /* PATH_DOWN: since the blackout began; PATH_UP: since the path went down;
                          < 0 if unknown */
};

typedef void (*mpt_demo_event_cb)(const struct mpt_demo_event *e, void *arg);

struct mpt_demo_options {
    unsigned paths;    /* 1..MPT_DEMO_MAX_PATHS */
    double loss;       /* per path, each direction */
    uint32_t delay_ms; /* per path, each direction */
    uint32_t jitter_ms;
    unsigned rate;        /* datagrams per second */
    unsigned size;        /* bytes per datagram, >= 16 */
    uint32_t duration_ms; /* 0 = until stopped */
    uint64_t seed;
    uint32_t kill_path_ms;      /* > 0: take path 1 down at this time and back 3 s later */
    mpt_demo_event_cb on_event; /* optional: path events as they happen (same arg as reports) */
    unsigned mode;              /* the client's scheduling mode (enum mpt_sched_mode) */
};

struct mpt_demo_path {
    char label[MPT_PATH_NAME_MAX];   /* how logs and status name it */
    double loss_to, loss_back;       /* measured at the bridge, cumulative */
    double loss_to_1s, loss_back_1s; /* the same over the last interval (since the last report) */
    uint64_t to_rx, back_rx;
    int down; /* blacked out by the demo */
    int up;   /* the client's view (probes) */
    double rtt_ms;
};

struct mpt_demo_report {
    double elapsed_s;
    int final;
    int interrupted;     /* final, but stopped early (SIGINT): only settled seconds are counted */
    uint64_t sent;       /* datagrams the generator sent */
    uint64_t at_target;  /* datagrams the echo target received */
    uint64_t delivered;  /* distinct echoes back at the generator */
    uint64_t duplicates; /* echoes seen twice (must stay 0) */
    uint64_t corrupted;  /* echoes whose content changed (must stay 0) */
    uint64_t in_flight;  /* sent too recently to count as lost */
    double loss_fwd;     /* generator -> target, end to end */
    double loss_rt;      /* round trip, end to end */
    double loss_fwd_1s, loss_rt_1s; /* the same for the last settled second */
    int have_1s;                    /* a second is settled yet */
    double rtt_p50_ms, rtt_p99_ms;
    unsigned sessions; /* handshakes the client made */
    double wire_up;    /* UDP payload bytes the client sent on its paths per payload byte */
    uint64_t fec_recovered,
        fec_given_up; /* fec mode: replies rebuilt, and given up, at the client */
    unsigned npaths;
    struct mpt_demo_path paths[MPT_DEMO_MAX_PATHS];
};

struct mpt_demo;
typedef void (*mpt_demo_report_cb)(const struct mpt_demo_report *r, void *arg);

/* Builds the whole topology on 127.0.0.1 with ephemeral ports and starts the traffic. `on_report`
 * runs every second and once more at the end (final = 1), after which the demo stops the loop; a
 * loop stopped otherwise (SIGINT) gets its final report too, with `interrupted` set.
 * Returns 0 or a negative code with a message in err. */
int mpt_demo_start(struct mpt_loop *loop, const struct mpt_demo_options *o,
                   mpt_demo_report_cb on_report, void *arg, struct mpt_demo **out, char *err,
                   size_t errlen);

#endif
