/* The client endpoint, sans-I/O (PROTOCOL.md §3-§7). Local applications' datagrams become flows;
 * each datagram is encrypted once and sent on every path; replies are de-duplicated and handed
 * back to the application that owns the flow. The driver feeds datagrams and timer expiries with
 * an explicit `now` (microseconds, monotonic) and carries out what the output queue lists. */
#ifndef MPT_CLIENT_H
#define MPT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/estimate.h"
#include "core/fec.h"
#include "core/fecplan.h"
#include "core/handshake.h"
#include "core/outq.h"
#include "core/reorder.h"
#include "core/sched.h"
#include "core/session.h"
#include "core/split.h"
#include "core/table.h"
#include "core/target.h"

#define MPT_MAX_PATHS 16
#define MPT_PATH_NAME_MAX                                                                          \
    72 /* a path's name in messages: [path NAME] or the bridge's HOST:PORT                         \
        */
#define MPT_CLIENT_PREV_US 2000000 /* datagrams of the previous session are read this long */
#define MPT_CLIENT_QUIET_FIRST_US 3000000ULL /* no answer this long: say so */
#define MPT_CLIENT_QUIET_MAX_US 300000000ULL /* and again at most this far apart */
#define MPT_CLIENT_STATS_US 60000000ULL      /* counters logged this often (debug level) */
#define MPT_CLIENT_PATH_QUIET_US 5000000ULL  /* one path silent this long, others not: say so */

/* What a path is now, from the client's probes and traffic (PROTOCOL.md §7). */
enum mpt_path_state {
    MPT_PATH_DOWN = 0, /* nothing authenticated heard for the down interval (or never) */
    MPT_PATH_UP,       /* alive, loss under the lossy threshold */
    MPT_PATH_LOSSY,    /* alive, but losing more than MPT_LOSSY_THRESHOLD in a direction */
    MPT_PATH_DISABLED, /* taken out of service by the operator (mpt_client_set_enabled) */
};

#define MPT_LOSSY_THRESHOLD 0.05

/* A direction of a path that loses more than MPT_UNUSABLE_LOSS of a loss sample of at least
 * MPT_UNUSABLE_MIN datagrams is unusable at once for the backup, adaptive and balance modes
 * (PROTOCOL.md §8), until the samples since, MPT_USABLE_MIN datagrams at least, lost at most
 * MPT_USABLE_LOSS of them. */
#define MPT_UNUSABLE_LOSS 0.5
#define MPT_UNUSABLE_MIN 10
#define MPT_USABLE_LOSS 0.25
#define MPT_USABLE_MIN 20

/* Scheduling modes (PROTOCOL.md §8); the values travel in HELLO and PROBE. */
enum mpt_client_mode {
    MPT_CLIENT_REDUNDANT = 0, /* a copy on every live path */
    MPT_CLIENT_ADAPTIVE = 1,  /* the fewest copies that keep residual loss under target_loss */
    MPT_CLIENT_BACKUP = 2,    /* only the live paths of the best priority */
    MPT_CLIENT_BALANCE = 3,   /* one copy, spread over live paths by weight */
    MPT_CLIENT_FEC = 4,       /* one copy as in balance, and repairs of a block code (§11) */
};

const char *mpt_path_state_name(enum mpt_path_state st);

struct mpt_client_params {
    const uint8_t *secret;            /* 32 bytes: shared-secret mode, or key mode's psk (NULL) */
    const uint8_t *private_key;       /* key mode: the client's X25519 private key, else NULL */
    const uint8_t *server_public_key; /* key mode: the server's public key */
    uint32_t rekey_after_ms;          /* a session is re-keyed this old (0: MPT_REKEY_AFTER_MS) */
    unsigned npaths;                  /* 1..MPT_MAX_PATHS */
    unsigned max_flows;               /* > 0 */
    uint32_t flow_timeout_ms;         /* idle flows are forgotten after this */
    uint32_t probe_interval_ms;       /* per-path probes; a session silent for max(1 s, 5 probes) is
                                         re-established */
    uint8_t mode;                     /* enum mpt_client_mode, announced to the server */
    int no_aes;                       /* never offer AES-256-GCM (ChaCha20-Poly1305 only) */
    double target_loss;               /* adaptive and fec modes: keep residual loss under this */
    unsigned fec_k, fec_m;            /* fec mode: fixed K:M (0: from measured loss) */
    uint32_t fec_wait_ms;             /* fec mode: a lost datagram waits this at most (0: 50 ms) */
    unsigned priority[MPT_MAX_PATHS]; /* backup mode; lower is preferred */
    unsigned weight[MPT_MAX_PATHS];   /* balance mode; > 0 */
    uint32_t reorder_cap_ms; /* replies held for order at most this long (§8.1); 0 = never */
    /* How messages name each path (numbered from 1 beside it); "" = by number only. */
    char path_name[MPT_MAX_PATHS][MPT_PATH_NAME_MAX];
};

struct mpt_client_path {
    enum mpt_path_state state;
    uint64_t last_rx_us; /* last authenticated datagram on this path; 0 = never */
    uint64_t state_since_us;
    uint64_t rx_dgrams, rx_bytes; /* copies received, duplicates of other paths included */
    uint64_t tx_dgrams, tx_bytes; /* copies sent */
    uint64_t data_tx;             /* datagrams of flows sent on this path (copies) */
    uint32_t probe_seq;
    uint32_t probes_sent, acks_received;
    uint64_t srtt_us, rttvar_us, last_rtt_us; /* round-trip time, RFC 6298 smoothing */
    double loss_up;                           /* client -> server, smoothed (0..1) */
    double loss_down;                         /* server -> client, smoothed (0..1) */
    int loss_known;                           /* at least one loss sample each way */
    uint64_t
        loss_n[2]; /* datagrams the loss samples covered, each way (to MPT_FECPLAN_PRIOR_DGRAMS) */
    /* Counters at the last probe acknowledged, for the loss of the next interval. */
    uint32_t ack_seq;
    uint64_t ack_tx, ack_rx;
    uint32_t ack_peer_rx, ack_peer_tx;
    /* tx_dgrams at the time of each recent probe, by sequence number. */
    uint64_t probe_tx[16];
    struct mpt_addr remote; /* where the path sends, for messages (mpt_client_set_remote) */
    uint64_t rx_malformed;  /* datagrams that are not mptunnel's */
    uint64_t rx_unauth;     /* replies that failed authentication */
    uint64_t hs_malformed, hs_unauth; /* the two above when the last handshake began */
    /* A path down while others answer: warned about after MPT_CLIENT_PATH_QUIET_US, then at
     * doubling intervals; quiet_ref is the silence (since when) being reported on. */
    uint64_t quiet_ref_us, quiet_next_us, quiet_step_us;
    uint32_t quiet_probes; /* probes_sent when that silence began */
    unsigned max_dgram;    /* UDP payload it carries whole (mpt_client_set_path_mtu); 0 unknown */
    /* Unusable each way (index 0 client -> server, 1 back), and the datagrams sent and received
     * since it became so (PROTOCOL.md §8). */
    uint8_t unusable[2];
    uint64_t since_sent[2], since_got[2];
    struct mpt_est est;    /* delivery rate, RTT and loss each way, from acknowledged probes */
    struct mpt_bucket cap; /* balance mode: its cap up as a rate (§8.2) */
    struct mpt_owd owd;    /* its one-way delay server -> client, from probe acks (§8.1) */
};

/* Replies of the session that the reorder buffer can hold at once (§8.1). */
#define MPT_CLIENT_REORDER_ENTRIES 2048

/* fec mode (§11): replies kept for decoding, and blocks of replies awaiting repair. */
#define MPT_CLIENT_FEC_SOURCES 1024
#define MPT_CLIENT_FEC_BLOCKS 16

/* Datagrams held while the first session is being opened (sent once it is). */
#define MPT_CLIENT_HELD_MAX 64
#define MPT_CLIENT_HELD_BYTES (64 * 1024)
#define MPT_CLIENT_HELD_US 2000000 /* older than this when the session comes: dropped */

struct mpt_client_held {
    uint32_t flow;
    uint32_t off, len;
    uint64_t at_us;
};

struct mpt_client_flow {
    struct mpt_addr app;
    uint32_t id;
    uint64_t last_us;
    uint16_t front;  /* the local socket it came in on (0: `listen'), see mpt_client_on_app_to */
    uint16_t port;   /* the target it names: 0 = the server's default target */
    uint8_t acked;   /* the server has it open: the target need not travel again */
    uint8_t refused; /* the server's last refusal (enum mpt_flow_status), 0 = none */
    uint64_t refused_us; /* when: its datagrams are dropped for MPT_CLIENT_REFUSED_US */
    char host[MPT_TARGET_HOST_MAX + 1];
};

/* Flows forgotten here are told to the server (FLOW_CLOSE, PROTOCOL.md §5) so that it frees them at
 * once: each id is sent MPT_CLIENT_CLOSE_SENDS times, MPT_CLIENT_CLOSE_GAP_US apart, on the paths
 * data goes on; at most MPT_CLIENT_CLOSE_MAX ids wait (more: the oldest left to the server's
 * flow_timeout). */
#define MPT_CLIENT_CLOSE_MAX 512
#define MPT_CLIENT_CLOSE_SENDS 3
#define MPT_CLIENT_CLOSE_GAP_US 200000ULL

/* A refused flow tries again after this long (the server's allow list may have changed). */
#define MPT_CLIENT_REFUSED_US 5000000ULL
#define MPT_CLIENT_REFUSELOG_US 10000000ULL

enum mpt_client_state {
    MPT_CLIENT_IDLE = 0,    /* no session, no handshake under way */
    MPT_CLIENT_HANDSHAKE,   /* first handshake under way */
    MPT_CLIENT_ESTABLISHED, /* a session (perhaps with a new handshake under way) */
};

/* A handshake's INIT is sent again every MPT_CLIENT_INIT_RETRY_US and made anew (new session
 * id, ephemeral key and timestamp) every MPT_CLIENT_INIT_RENEW_US; a RESPONSE to the one before
 * is still taken. A cookie is used this long after it came. */
#define MPT_CLIENT_INIT_RETRY_US 250000ULL
#define MPT_CLIENT_INIT_RENEW_US 500000ULL
#define MPT_CLIENT_COOKIE_US 110000000ULL

/* The client's key material, in memory of its own (mpt_secure_alloc: locked, not dumped). */
struct mpt_client_secrets {
    struct mpt_hs_keys hsk;      /* long-term keys */
    struct mpt_hs_client hs[2];  /* the INIT being sent (hs_cur) and the one before */
    struct mpt_keys keys;        /* the current session's */
    struct mpt_keys prev_keys;   /* the session before the last handshake's */
    uint8_t resume[MPT_KEY_LEN]; /* the current session's: proves that a new one continues it */
    uint8_t cookie[MPT_MAX_PATHS][MPT_COOKIE_LEN]; /* per path: the server's source proof */
};

struct mpt_client {
    struct mpt_client_params p;
    struct mpt_client_secrets *sec;
    enum mpt_client_state state;

    /* The current session (its keys: sec->keys). */
    uint64_t sid;
    uint64_t last_auth_us; /* last authenticated datagram on any path */
    /* The session before the last handshake, still read for MPT_CLIENT_PREV_US (sec->prev_keys). */
    uint64_t prev_sid, prev_until_us;
    uint64_t established_us;
    uint64_t server_clock; /* the clock id of the last PROBE_ACK (0: none yet), §5 */

    /* A handshake under way (hs_sid != 0: the id of the INIT in sec->hs[hs_cur]). */
    uint64_t hs_sid;
    unsigned hs_cur;
    uint64_t hs_next_us, hs_started_us, hs_built_us;
    unsigned hs_attempts;
    uint64_t cookie_us[MPT_MAX_PATHS]; /* when each path's cookie came; 0 = none */
    uint64_t cookies;                  /* COOKIE messages taken */
    int64_t wall_off_us;               /* Unix time - now (mpt_client_set_wall) */

    /* Silence (no authenticated datagram on any path) and its reports: the first after
     * MPT_CLIENT_QUIET_FIRST_US, then at doubling intervals up to MPT_CLIENT_QUIET_MAX_US. */
    uint64_t first_try_us;   /* the first handshake began; 0 = not yet */
    uint64_t quiet_since_us; /* the silence reported on */
    uint64_t quiet_next_us, quiet_step_us;
    unsigned quiet_reports;

    struct mpt_client_path paths[MPT_MAX_PATHS];
    uint64_t next_probe_us;

    /* Scheduling (PROTOCOL.md §8): the paths each datagram goes on, recomputed when a path's
     * state or loss changes; balance mode picks one per datagram by weight. */
    uint32_t send_mask;         /* client -> server */
    uint8_t use[MPT_MAX_PATHS]; /* server -> client, announced in probes */
    int32_t wrr[MPT_MAX_PATHS];
    unsigned share[MPT_MAX_PATHS]; /* balance mode: each path's share, client -> server (§8.2) */
    unsigned share_down[MPT_MAX_PATHS];    /* and server -> client, told in `use' */
    uint8_t adapt_order[2][MPT_MAX_PATHS]; /* adaptive mode: the order chosen last, each way */
    int sched_dirty;
    int wake;          /* the driver should call mpt_client_on_timer now (and clear this) */
    uint32_t disabled; /* paths out of service: they carry nothing at all */
    uint64_t data_dgrams, data_copies; /* datagrams of flows sent, and the copies they took */

    struct mpt_client_held held[MPT_CLIENT_HELD_MAX];
    unsigned nheld;
    unsigned held_next; /* the first not yet released (a release may take several calls) */
    uint8_t *held_buf;
    size_t held_used;

    struct mpt_client_flow *flows;
    struct mpt_slots flow_slots;
    struct mpt_index flow_by_app; /* key: keyed hash of the address */
    struct mpt_index flow_by_id;  /* key: flow id */
    uint64_t hash_key;
    uint32_t next_flow_id;

    struct mpt_counters ctr;
    struct mpt_split split; /* FLOW messages too large for the paths, both ways (PROTOCOL.md §5) */
    /* The paths that delivered each recent counter, for the session and the one before (§5):
     * each counter counts once per path in the loss figures. */
    struct mpt_copies *copies;
    uint64_t challenges; /* PATH_CHALLENGE answered */
    /* Replies put back in order (§8.1): one queue, this session's; allocated in balance mode
     * with reorder_cap_ms (q NULL until then). */
    struct mpt_reorder reorder;
    /* fec mode (§11), allocated when the mode is first fec (sym NULL until then): the encoder of
     * datagrams to the server, its plan for the open block, and when that block is closed (or
     * looked at again: mpt_fecplan_next). */
    struct mpt_fec_tx fec_tx;
    struct mpt_fecplan fec_plan;
    uint64_t fec_close_us;
    uint64_t fec_longer;    /* times an open block was given 10 ms more (mpt_fecplan_next) */
    unsigned fec_next_path; /* the path the next block's first repair goes on */
    uint64_t fec_now_us;    /* the time of the input being handled */
    uint64_t fec_sources, fec_repairs_tx, fec_repair_drops;
    struct mpt_fec_rx fec_rx; /* the decoder of the server's replies */
    uint64_t fec_recovered;   /* replies rebuilt from repairs and delivered */
    uint64_t timer_at_us;     /* the deadline mpt_client_on_timer returned last */
    unsigned sessions_established;
    uint64_t flows_opened, flows_closed;
    uint64_t refused[MPT_FLOW_STATUS_COUNT]; /* refusals the server sent, by reason */
    uint64_t refused_drops;                  /* datagrams of refused flows dropped */
    uint64_t refuselog_us, refused_logged;
    uint64_t warn_full_us; /* the flow-table-full warning may come again from then */
    uint32_t close_ids[MPT_CLIENT_CLOSE_MAX]; /* flows to tell the server of (FLOW_CLOSE) */
    uint8_t close_left[MPT_CLIENT_CLOSE_MAX]; /* sends each still has */
    unsigned nclose;
    int close_new;          /* ids not sent yet: send at once */
    uint64_t close_next_us; /* the next repetition */
    uint64_t closes_sent;   /* FLOW_CLOSE messages sealed */
    uint64_t closes_lost;   /* ids pushed out of a full list before their last send */

    /* Counters every MPT_CLIENT_STATS_US (logged at debug level): their values at the last. */
    uint64_t stats_next_us;
    struct mpt_counters stats_ctr;
    uint64_t stats_flows_opened, stats_flows_closed;
};

/* Allocates every table at its full size. Returns 0, -EINVAL or -ENOMEM. */
int mpt_client_init(struct mpt_client *c, const struct mpt_client_params *p);
void mpt_client_free(struct mpt_client *c);

/* The wall clock (µs since the Unix epoch) at monotonic time `now`, for handshake timestamps. The
 * driver calls it at start and from time to time (the clock may be set while it runs). */
void mpt_client_set_wall(struct mpt_client *c, uint64_t now, uint64_t unix_us);

/* A datagram from the local application at `app`. */
void mpt_client_on_app(struct mpt_client *c, uint64_t now, const struct mpt_addr *app,
                       const uint8_t *buf, size_t len, struct mpt_outq *q);

/* A datagram from `app` that came in on local socket `front` (1, 2, ...: a forward or a SOCKS
 * front; 0: `listen'), for target host:port (host NULL or port 0: the server's default target).
 * Flows are told apart by application, front and target; replies come back as MPT_OUT_APP with
 * `target` = front and `index` = the flow's slot (mpt_client_flow_at). The host must be one
 * mpt_target_host_valid accepts, or the datagram is dropped. */
void mpt_client_on_app_to(struct mpt_client *c, uint64_t now, const struct mpt_addr *app,
                          uint16_t front, const char *host, uint16_t port, const uint8_t *buf,
                          size_t len, struct mpt_outq *q);

/* Forgets every flow that came in on local socket `front' (a SOCKS association that ended): their
 * late replies are dropped, and the front may be used again for new flows. The server is told to
 * close them (FLOW_CLOSE) by the next mpt_client_on_timer: `wake` is set. */
void mpt_client_close_front(struct mpt_client *c, uint16_t front, uint64_t now);

/* A datagram received on path `path`. */
void mpt_client_on_path(struct mpt_client *c, uint64_t now, unsigned path, const uint8_t *buf,
                        size_t len, struct mpt_outq *q);

/* Timers: handshakes, probes, expiry. Call at or after the returned deadline (absolute, µs). */
uint64_t mpt_client_on_timer(struct mpt_client *c, uint64_t now, struct mpt_outq *q);

/* Where path `path` sends (the driver resolved it), so that messages can name the address. */
void mpt_client_set_remote(struct mpt_client *c, unsigned path, const struct mpt_addr *remote);

/* Takes path `path` out of service (enabled 0) or puts it back (1). A disabled path carries
 * nothing: no data, probes or handshakes, and the server is told not to answer on it. A path put
 * back starts down and is probed at once. Returns 0, or -EINVAL for a path that does not exist. */
int mpt_client_set_enabled(struct mpt_client *c, unsigned path, int enabled, uint64_t now);

/* Applies new parameters to a running client without touching its session or flows: new path i
 * takes over the state (statistics, disabled or not) of old path from[i], or starts afresh (down)
 * if from[i] < 0. Mode, target loss, probe interval, flow timeout, priorities, weights and names
 * are taken from p; max_flows stays what it was (the tables are sized at start). Different
 * keys (secret, private key, server key) start a new handshake under them (the session goes on
 * under its keys meanwhile). Returns 0, or -EINVAL (nothing changed) if p is not valid. */
int mpt_client_reconfigure(struct mpt_client *c, const struct mpt_client_params *p,
                           const int from[MPT_MAX_PATHS], uint64_t now);

/* The largest UDP payload path `path` carries whole (route MTU less IP and UDP headers; 0 =
 * unknown). A FLOW message whose DATA datagram would exceed the smallest of these among the paths
 * it goes on is sent as pieces that fit (PROTOCOL.md §5 PIECE); with any of them unknown, whole. */
void mpt_client_set_path_mtu(struct mpt_client *c, unsigned path, unsigned max_dgram);

/* How long nothing authenticated arrived on any path while trying (since the last authenticated
 * datagram, or since the first handshake began): 0 while the server answers. */
uint64_t mpt_client_silence_us(const struct mpt_client *c, uint64_t now);

/* The flow in slot `slot` (from an MPT_OUT_APP entry's index; it is still the entry's flow if
 * its id is the entry's `gen`). */
static inline const struct mpt_client_flow *mpt_client_flow_at(const struct mpt_client *c,
                                                               uint32_t slot)
{
    return &c->flows[slot];
}

/* Number of flows in use. */
static inline unsigned mpt_client_flows(const struct mpt_client *c)
{
    return c->flow_slots.used;
}

#endif
