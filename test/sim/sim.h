/* The deterministic network simulation's world (sim.c): one mpt_client with N paths and one
 * mpt_server wired through a discrete-event network in virtual time, applications on the client
 * side and an echo target behind the server. Cases build a world from a struct sim_cfg, add
 * controls (actions at given times), a step hook (called after every event) or a delivery hook,
 * run it and read the figures. */
#ifndef MPT_TEST_SIM_H
#define MPT_TEST_SIM_H

#include "core/client.h"
#include "core/impair.h"
#include "core/server.h"
#include "task.h"

#define SIM_MAX_PATHS 4
#define SIM_MAX_APPS 64
#define MS 1000ULL
#define SEC 1000000ULL

struct ev;

struct sim_cfg {
    uint64_t seed;
    unsigned npaths, napps;
    struct mpt_impair_params up[SIM_MAX_PATHS], down[SIM_MAX_PATHS];
    uint32_t count;       /* datagrams per application */
    uint64_t interval_us; /* between one application's datagrams */
    uint32_t min_len, max_len;
    uint64_t target_delay_us;
    uint64_t start_us; /* applications start this long after the session is first up */
    uint64_t end_us;   /* virtual time the run stops */
    int named;         /* application a names target 10.0.1.a:53 (sp.allow must cover it) */
    struct mpt_client_params cp;
    struct mpt_server_params sp;
};

struct app {
    struct mpt_addr addr;
    uint32_t sent;
    uint8_t *up_seen;   /* per sequence number: reached the target */
    uint8_t *down_seen; /* per sequence number: its echo reached the application */
    uint64_t *sent_at;
    uint32_t echoes, replies;
};

struct sim;
typedef void (*sim_control_cb)(struct sim *w, int code);
typedef void (*sim_step_cb)(struct sim *w);
/* A datagram delivered for the first time (to the target if !down, else to its application),
 * by a copy that came over `path`. */
typedef void (*sim_deliver_cb)(struct sim *w, int down, unsigned path, uint32_t app, uint32_t seq);
/* A relay on a path: called for each datagram handed to it (to_server: client -> server); returns
 * 0 to drop it, else 1 to let it go on — or what it put in its place, if it set *data and *len
 * (memory of its own that lives until the next call). */
typedef int (*sim_filter_cb)(struct sim *w, int to_server, unsigned path, const uint8_t **data,
                             size_t *len);

struct sim {
    struct sim_cfg cfg;
    uint64_t now, seq;
    struct ev *heap;
    size_t nheap, capheap;

    struct mpt_client c;
    struct mpt_server s;
    struct mpt_outq q;
    uint64_t cdeadline, sdeadline;
    int started;

    struct mpt_impair up[SIM_MAX_PATHS], down[SIM_MAX_PATHS];
    struct mpt_addr paddr[SIM_MAX_PATHS];
    struct app apps[SIM_MAX_APPS];
    uint32_t *flow_gen;
    int32_t *flow_app; /* the application whose datagrams a flow socket carries; -1 none yet */
    struct mpt_addr *flow_to; /* where the server opened each flow socket (named targets) */

    sim_control_cb control;
    sim_step_cb step;
    sim_deliver_cb deliver;
    sim_filter_cb filter;
    void *user;

    /* Figures. */
    uint64_t sent_up, recv_up, dup_up, corrupt_up;
    uint64_t echo_sent, recv_down, dup_down, corrupt_down, misdelivered, crossed_flows;
    uint64_t max_sessions_used, max_flows_used, max_client_flows;
    uint64_t flow_opens; /* flow sockets the server opened */
    uint64_t misrouted;  /* named targets: a datagram on a flow opened towards another target */
    uint64_t events;
    uint64_t dead_sent; /* datagrams the server sent to an address no path has (rebinding) */
    /* Per path, each way (index 0 = client -> server, 1 = server -> client): datagrams and bytes
     * handed to the path (probes and handshakes included), copies of flow datagrams among them,
     * and the flow datagrams whose first delivered copy came over it. */
    uint64_t path_dgrams[2][SIM_MAX_PATHS], path_bytes[2][SIM_MAX_PATHS];
    uint64_t path_data[2][SIM_MAX_PATHS], path_first[2][SIM_MAX_PATHS];
    uint64_t path_data_last_us[2][SIM_MAX_PATHS]; /* when the last data copy was handed to it */
    int rx_path;                                  /* the path of the datagram being handled */
};

/* Defaults: 3 paths of 20 ms +- 2 ms each way without loss, one application sending 1000
 * datagrams of 32-200 bytes, one every millisecond, for a run of 20 s. */
void cfg_defaults(struct sim_cfg *c, uint64_t seed);
/* The same loss, duplication and reordering on every path, both ways. */
void set_all(struct sim_cfg *c, double loss, double dup, double reorder);

/* Builds the world (seeding libsodium's generator from cfg->seed); sim_free releases it. */
void sim_init(struct sim *w, const struct sim_cfg *cfg);
void sim_free(struct sim *w);
/* Runs until cfg.end_us. */
void sim_run(struct sim *w);
/* Calls w->control(w, code) at virtual time `at`. */
void sim_schedule_control(struct sim *w, uint64_t at, int code);
/* Replaces the client (or server) object, as a restart with kill -9 would. */
void sim_restart_client(struct sim *w);
void sim_restart_server(struct sim *w);

/* End-to-end loss of the whole run, each way. */
double loss_up(const struct sim *w);
double loss_down(const struct sim *w);
/* Asserts the invariants of every run: no duplicate, no corruption, no misdelivery. */
void check_integrity(const struct sim *w);

/* The cases of sim_modes.c: path health and the scheduling modes. */
extern const struct task_case sim_mode_cases[];
/* The cases of sim_lifetime.c: tables expiring and coming back. */
extern const struct task_case sim_lifetime_cases[];
/* The cases of sim_split.c: datagrams sent as pieces. */
extern const struct task_case sim_split_cases[];
/* The cases of sim_sched.c: scheduling that follows the paths, the reorder buffer. */
extern const struct task_case sim_sched_cases[];
/* The cases of sim_fec.c: forward error correction. */
extern const struct task_case sim_fec_cases[];
/* The cases of sim_fec_ends.c: fec mode's planning at both ends. */
extern const struct task_case sim_fec_ends_cases[];

#endif
