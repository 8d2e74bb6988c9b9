/* The server endpoint, sans-I/O (PROTOCOL.md §3-§7). Answers authenticated handshakes, removes
 * duplicates, forwards each flow to its target through a socket of its own (the driver opens it
 * when told), and returns the target's replies over every live path of the session. */
#ifndef MPT_SERVER_H
#define MPT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/fec.h"
#include "core/fecplan.h"
#include "core/client.h"
#include "core/handshake.h"
#include "core/names.h"
#include "core/outq.h"
#include "core/ratelimit.h"
#include "core/reorder.h"
#include "core/sched.h"
#include "core/session.h"
#include "core/split.h"
#include "core/table.h"
#include "core/target.h"

/* A client of a server in key mode (PROTOCOL.md §3): its name and keys, and what its flows may
 * reach (§5). own = 0: [server]'s allow rules and default target, as in shared-secret mode.
 * own = 1: only its own rules, peer_allow[allow_first, allow_first + nallow) of the server's
 * parameters, and its own default target (family 0: none, and a flow that names no target is
 * refused "not_allowed"). */
#define MPT_PEER_NAME_MAX 64
struct mpt_server_peer {
    char name[MPT_PEER_NAME_MAX];
    uint8_t public_key[MPT_KEY_LEN];
    uint8_t psk[MPT_KEY_LEN]; /* its pre-shared key: its own `secret`, else the tunnel's, else 0 */
    uint8_t own;
    uint32_t allow_first, nallow;
    struct mpt_addr target;
};

struct mpt_server_params {
    const uint8_t *secret;               /* shared-secret mode: 32 bytes (NULL in key mode) */
    const uint8_t *private_key;          /* key mode: the server's X25519 private key, else NULL */
    const struct mpt_server_peer *peers; /* key mode: its clients (copied) */
    unsigned npeers;
    const struct mpt_allow_rule *peer_allow; /* key mode: the peers' own rules (copied) */
    unsigned npeer_allow;                    /* at most MPT_SERVER_MAX_ALLOW */
    unsigned max_sessions;                   /* > 0 */
    unsigned max_flows;                      /* > 0, over all sessions */
    uint32_t flow_timeout_ms;                /* idle flows are closed after this */
    uint32_t session_timeout_ms;             /* idle sessions are forgotten after this */
    unsigned ntargets; /* target indexes a flow may use (0: no default target) */
    int no_aes;        /* never choose AES-256-GCM (ChaCha20-Poly1305 only) */
    /* What a flow may name (§5), names resolved: a target outside is refused, never contacted. */
    const struct mpt_allow_rule *allow;
    unsigned nallow;
    unsigned max_lookups;    /* names being resolved at once, over all sessions; 0: 16 (at most
                                MPT_NAMES_SIZE) */
    uint32_t name_ttl_ms;    /* answers of lookups kept this long (names.h); 0: 60 s */
    uint32_t rekey_after_ms; /* clients re-key this often; keys older than 1.5x are refused (0:
                                MPT_REKEY_AFTER_MS) */
    uint32_t reorder_cap_ms; /* datagrams held for order at most this long (§8.1); 0 = never */
};

/* Datagrams of all sessions that the reorder buffer can hold at once (§8.1). */
#define MPT_SERVER_REORDER_ENTRIES 4096

/* fec mode (§11): sources kept for decoding over all sessions, blocks awaiting repair, and the
 * longest wait for a lost datagram's repair. The decoder is allocated when the first session in
 * fec mode needs it. */
#define MPT_SERVER_FEC_SOURCES 2048
#define MPT_SERVER_FEC_BLOCKS 32
#define MPT_SERVER_FEC_WAIT_US MPT_FEC_WAIT_US
/* The encoder of a session's replies, allocated on its first coded reply and freed when it has
 * added nothing for MPT_SERVER_FEC_IDLE_US (or the session ends). The replies' residual loss
 * aimed for when the client says none. */
#define MPT_SERVER_FEC_IDLE_US 10000000ULL
#define MPT_SERVER_FEC_TARGET 0.001

struct mpt_server_fec {
    struct mpt_fec_tx tx;
    uint64_t sid;            /* the session id its open block is sealed under */
    uint64_t last_us;        /* last source added: idle this long, it is freed */
    uint64_t close_us;       /* when the open block is closed (or looked at again) */
    struct mpt_fecplan plan; /* repairs by block size, for the paths as they are */
    unsigned next_path;
};

/* MPT_OUT_FLOW_OPEN's target for a flow that named its own: the address is in mpt_out.addr. */
#define MPT_TARGET_NAMED 0xffff
#define MPT_SERVER_MAX_ALLOW 4096 /* rules after resolution */
#define MPT_SERVER_MAX_PEERS 4096
/* Refusals logged at most once per this interval (with the count since the last line). */
#define MPT_SERVER_REFUSELOG_US 10000000ULL
/* The first datagram of a flow that arrives while the name the flow named resolves is held and
 * delivered when the flow opens (§5): at most this many held at once, each at most this long. */
#define MPT_SERVER_HELD 16
#define MPT_SERVER_HELD_MAX 8192

#define MPT_PATH_ID_UNKNOWN 0xff

/* Copies of an INIT (the same bytes on other paths, or sent again) are answered with the same
 * RESPONSE for this long after the first, at most MPT_SERVER_INIT_COPIES times; later, it is a
 * replay and gets nothing. */
#define MPT_SERVER_INIT_COPY_US 1000000ULL
#define MPT_SERVER_INIT_COPIES 8

/* Key mode: what the server keeps of each client between sessions. */
struct mpt_server_peer_state {
    struct mpt_server_peer peer;
    uint8_t mac1_resp[MPT_KEY_LEN]; /* MAC1 key of RESPONSEs to it */
    uint64_t greatest_tai_us;       /* the newest INIT timestamp taken + 1 (0: none): not newer,
                                       a replay */
    uint64_t handshakes;
    uint64_t refused[MPT_FLOW_STATUS_COUNT]; /* its flows refused, by reason (index 0 unused) */
};

/* The server's key material (mpt_secure_alloc). */
struct mpt_server_secrets {
    struct mpt_hs_keys keys;
    struct mpt_hs_cookies cookies;
};

/* Sources whose datagrams failed authentication, for the log: the first failure of a source is
 * logged at once, the next ones summed up every MPT_SERVER_AUTHLOG_US; at most
 * MPT_SERVER_AUTHLOG_BURST lines at a time and one a second on average, however many sources. */
#define MPT_SERVER_AUTHLOG_SLOTS 8
#define MPT_SERVER_AUTHLOG_US 60000000ULL
#define MPT_SERVER_AUTHLOG_BURST 8

struct mpt_server_authfail {
    struct mpt_addr src; /* the address; the port as last seen */
    uint64_t pending;    /* failures not logged yet */
    uint64_t total;
    uint64_t last_us, logged_us; /* 0 = never */
};

struct mpt_server_path {
    struct mpt_addr addr;  /* where this path's datagrams come from, and replies go */
    struct mpt_addr local; /* the server's address they arrive at, replies leave from (0: any) */
    uint8_t id;            /* the client's path index, from its probes */
    uint64_t last_rx_us;
    uint64_t rx_dgrams, rx_bytes; /* copies received, duplicates of other paths included */
    uint64_t tx_dgrams, tx_bytes; /* copies sent */
    /* What the client's last probe on this path said (PROTOCOL.md §5). */
    uint8_t state;         /* enum mpt_path_state, the client's view */
    uint16_t use;          /* the client's share for the return direction: 0 = do not use */
    double loss_up;        /* client -> server */
    double loss_down;      /* server -> client */
    uint8_t loss_measured; /* fec mode: loss_down is a measurement to plan with (§11) */
    uint64_t srtt_us;      /* the client's smoothed RTT of this path */
    struct mpt_owd owd;    /* its one-way delay client -> server, from probes (§8.1) */
    struct mpt_bucket cap; /* balance mode: the client's cap of replies on it, as a rate */
    unsigned max_dgram;    /* UDP payload it carries whole, set by the driver; 0 unknown */
    /* Validation of the return address (PROTOCOL.md §5 PATH_CHALLENGE, §7): until the client
     * echoes the challenge from it, it is sent nothing but challenges, and at most
     * MPT_SERVER_AMP_FACTOR times the bytes that came from it. */
    uint8_t validated;
    uint8_t challenge[MPT_CHALLENGE_LEN];
    uint64_t challenge_us;   /* the last challenge sent; 0 = none yet */
    uint64_t amp_rx, amp_tx; /* bytes authenticated from it, and sent to it, before validation */
};

#define MPT_SERVER_AMP_FACTOR 3

struct mpt_server_session {
    uint64_t sid;  /* 0 = free slot */
    uint32_t peer; /* key mode: index of its client in the peer table; MPT_NIL in shared-secret */
    struct mpt_keys keys;
    uint8_t resume[MPT_KEY_LEN];      /* proves that an INIT continues this session */
    uint8_t prev_resume[MPT_KEY_LEN]; /* the same for prev_sid, while it is honoured */
    /* The INIT that opened the present keys, and its RESPONSE, for copies of that INIT (on other
     * paths, or a retry) within MPT_SERVER_INIT_COPY_US. */
    uint8_t init_mac1[MPT_MAC_LEN];
    uint64_t init_us;
    uint8_t response[MPT_RESPONSE_LEN];
    uint8_t response_copies;
    /* The session this one re-keyed, still honoured until the client's first datagram under the
     * new id (its REPLY may be lost while its datagrams still arrive): 0 = none. */
    uint64_t prev_sid;
    uint64_t prev_until_us;
    struct mpt_keys prev_keys;
    int confirmed; /* an authenticated DATA datagram arrived */
    uint64_t created_us, last_rx_us;
    uint8_t mode;               /* the client's scheduling mode (enum mpt_sched_mode) */
    int have_hints;             /* a probe told us which client paths to use */
    uint64_t hints_time;        /* the client time in the probe that set them (its clock, us) */
    uint8_t use[MPT_MAX_PATHS]; /* by client path index: 0 = do not use, else a weight */
    double cap[MPT_MAX_PATHS];  /* and balance mode's caps, datagrams/s (0: none; §8.2) */
    int32_t wrr[MPT_MAX_PATHS]; /* balance mode: smooth weighted round robin, by path slot */
    unsigned npaths;
    struct mpt_server_path paths[MPT_MAX_PATHS];
    uint32_t nflows;
    uint64_t fec_recovered;            /* fec mode: datagrams rebuilt from repairs and delivered */
    uint64_t fec_sources, fec_repairs; /* replies coded, and repairs sent for them */
    uint64_t fec_given_up;             /* its datagrams lost for good: repairs too few in time */
    double fec_target;                 /* the client's target_loss (probes); 0 = not said */
    uint8_t fec_k, fec_m;              /* the client's fixed fec = K:M (probes); 0 = planned */
    uint16_t fec_wait_ms;              /* the client's fec_wait (probes); 0 = not said */
};

struct mpt_server_flow {
    uint32_t session; /* MPT_NIL = free */
    uint32_t id;
    uint16_t target; /* index, or MPT_TARGET_NAMED */
    uint8_t pending; /* its name is being resolved: no socket yet */
    uint8_t own;     /* the default target of a peer with its own (target MPT_TARGET_NAMED) */
    uint16_t port;   /* while pending: the port it named */
    uint32_t gen;    /* while pending: the lookup's number (mpt_server_on_resolved) */
    uint64_t last_us;
};

struct mpt_server_held {
    uint32_t flow; /* the flow slot; MPT_NIL: free */
    uint32_t len;
    uint8_t *data; /* MPT_SERVER_HELD_MAX bytes of mpt_server.held_buf */
};

struct mpt_server {
    struct mpt_server_params p;
    struct mpt_addr rx_local; /* during an input: the local address it arrived at (0: unknown) */
    struct mpt_server_secrets *sec;      /* in mpt_secure_alloc memory */
    struct mpt_server_peer_state *peers; /* key mode: p.npeers, in mpt_secure_alloc memory */
    struct mpt_hs_recent *recent;        /* shared-secret mode: recent initiations (§3) */
    struct mpt_ratelimit load;           /* INITs given Noise work without a cookie; cookies sent */
    int64_t wall_off_us;                 /* Unix time - now, from mpt_server_set_wall */
    uint64_t clock_id;      /* names the clock of `now` in PROBE_ACKs: random, nonzero (§5) */
    uint64_t start_wall_us; /* Unix time of the first mpt_server_set_wall: INITs stamped at or
                               before it are refused (the record of them died with a restart) */
    uint64_t cookies_sent;
    uint64_t warn_v1_us, warn_mode_us,
        warn_stale_us;                   /* log lines about old peers and clocks: from then on */
    struct mpt_server_session *sessions; /* in mpt_secure_alloc memory: they hold the keys */
    struct mpt_slots session_slots;
    struct mpt_index session_by_sid;
    struct mpt_index session_by_prev; /* key: prev_sid */
    /* Per session slot, two rings of the paths that delivered each recent counter (for the keys
     * in use and those before a re-key), so that each counter counts once per path (§5). */
    struct mpt_copies *copies;
    uint64_t challenges;  /* PATH_CHALLENGE datagrams sent */
    uint64_t validations; /* return addresses validated */
    uint64_t amp_refused; /* datagrams not sent to an unvalidated address: over its budget */
    struct mpt_server_flow *flows;
    struct mpt_slots flow_slots;
    struct mpt_index flow_by_key; /* key: session slot << 32 | flow id */
    struct mpt_ratelimit ratelimit;
    int aes; /* AES-256-GCM may be chosen: hardware support and not disabled */
    struct mpt_counters ctr;
    struct mpt_split split;     /* FLOW messages too large for the paths, both ways (§5) */
    struct mpt_reorder reorder; /* flows' datagrams put back in order (§8.1), a queue per session */
    struct mpt_fec_rx fec_rx;   /* fec mode (§11): recent sources and blocks awaiting repair
                                   (allocated on first use: nsrc 0 until then) */
    struct mpt_server_fec **fec_tx; /* by session slot: its replies' encoder, NULL = none */
    unsigned fec_encoders;          /* allocated now */
    uint64_t fec_no_encoder;        /* replies sent uncoded: no memory for their encoder */
    uint64_t fec_no_decoder;        /* coded datagrams taken uncoded: no memory for the decoder */
    uint64_t reorder_nomem; /* balance datagrams delivered unordered: no memory for the buffer */
    uint64_t fec_rx_retry_us, reorder_retry_us; /* their allocation failed: tried again then */
    uint64_t fec_tx_retry_us;                   /* an encoder's allocation failed: again then */
    uint64_t fec_repairs_tx;
    uint64_t fec_longer; /* times an open block was given 10 ms more (mpt_fecplan_next) */
    uint64_t fec_sources_tx, fec_recovered; /* over all sessions, closed ones included */
    uint64_t rx_ctr;  /* during an input: the counter of the datagram that authenticated */
    uint32_t rx_slot; /* its session, MPT_NIL if none; rx_fresh: under its current keys */
    int rx_fresh;
    unsigned rx_path;     /* the path slot it came over */
    int wake;             /* the driver should call mpt_server_on_timer now (and clear this) */
    uint64_t timer_at_us; /* the deadline mpt_server_on_timer returned last */
    int mtu_dirty;        /* a path came or moved: call mpt_server_set_path_mtus */
    struct mpt_server_authfail authfail[MPT_SERVER_AUTHLOG_SLOTS];
    uint64_t authlog_stamp_us;
    unsigned authlog_tokens;
    uint64_t flows_opened, flows_closed;
    uint64_t refused[MPT_FLOW_STATUS_COUNT]; /* flows refused, by reason (index 0 unused) */
    uint64_t refused_logged;                 /* refusals up to the last log line */
    uint64_t refuselog_us;
    struct mpt_allow_rule
        *allow; /* [server]'s: MPT_SERVER_MAX_ALLOW entries; p.allow is not kept */
    unsigned nallow;
    struct mpt_allow_rule *peer_allow; /* key mode: the peers' own, MPT_SERVER_MAX_ALLOW entries */
    unsigned npeer_allow;
    unsigned lookups;                /* names being resolved now (names.pending) */
    struct mpt_names names;          /* recent answers and lookups under way (§5) */
    uint64_t flows_closed_by_client; /* closed by a FLOW_CLOSE (§5) */
    uint32_t lookup_gen;
    uint64_t warn_sessions_us, warn_flows_us; /* table-full warnings may come again from then */
    uint64_t stats_next_us; /* counters logged every MPT_CLIENT_STATS_US at debug level */
    struct mpt_counters stats_ctr;
    uint64_t stats_flows_opened, stats_flows_closed;
    /* Flows closed by the last call, whose sockets the driver must close before it carries out
     * the output queue (where a slot may already be opened again). */
    uint32_t *closed;
    uint32_t nclosed;
    /* First datagrams of flows whose name is being resolved (§5), and what became of them. */
    struct mpt_server_held held[MPT_SERVER_HELD];
    uint8_t *held_buf;
    unsigned nheld;
    uint64_t held_total, held_delivered;
};

/* Allocates every table at its full size. Returns 0, -EINVAL or -ENOMEM. */
int mpt_server_init(struct mpt_server *s, const struct mpt_server_params *p);
void mpt_server_free(struct mpt_server *s);

/* Shared-secret mode: handshakes from now on need this secret (sessions keep their keys).
 * Returns 1 if it changed, 0 if it is the same, -EINVAL in key mode or if libsodium fails. */
int mpt_server_set_secret(struct mpt_server *s, const uint8_t secret[MPT_KEY_LEN]);

/* Key mode: a new private key and list of peers with their own rules (a reload; as in
 * mpt_server_params). Sessions of peers still listed keep their keys, and each peer its newest
 * timestamp (replays stay refused); sessions of peers no longer listed are closed (their flows
 * with them: see `closed`). A peer's new rules and target apply to its new flows; open flows keep
 * their targets. Returns a count of the sessions closed, or -EINVAL (nothing changed) in
 * shared-secret mode, for bad keys or for rules out of range, -ENOMEM. */
int mpt_server_set_peers(struct mpt_server *s, const uint8_t private_key[MPT_KEY_LEN],
                         const struct mpt_server_peer *peers, unsigned npeers,
                         const struct mpt_allow_rule *peer_allow, unsigned npeer_allow,
                         struct mpt_outq *q);

/* The wall clock (µs since the Unix epoch) at monotonic time `now`: handshake timestamps are
 * judged by it. The driver calls it at start and from time to time (the clock may be set). */
void mpt_server_set_wall(struct mpt_server *s, uint64_t now, uint64_t unix_us);

/* A datagram that arrived from `from` on the tunnel's listening socket. */
void mpt_server_on_path(struct mpt_server *s, uint64_t now, const struct mpt_addr *from,
                        const uint8_t *buf, size_t len, struct mpt_outq *q);

/* The same, for a datagram that arrived at the local address `local` (NULL: unknown): what is
 * sent back on its path (REPLY, acks, replies) is queued with that address as its source
 * (mpt_out.src), so that a server with several addresses answers from the one the client wrote
 * to, which is the only one its NAT or firewall lets through. */
void mpt_server_on_path_local(struct mpt_server *s, uint64_t now, const struct mpt_addr *from,
                              const struct mpt_addr *local, const uint8_t *buf, size_t len,
                              struct mpt_outq *q);

/* A datagram the target sent to flow `flow`'s socket. */
void mpt_server_on_target(struct mpt_server *s, uint64_t now, uint32_t flow, const uint8_t *buf,
                          size_t len, struct mpt_outq *q);

/* The driver's answer to an MPT_OUT_RESOLVE entry (its `index` and `gen`): status 0 and the
 * address (its port is ignored), or a negative code. It is kept in the name cache, and every flow
 * waiting for that lookup opens or is refused; a stale `gen` (a lookup given up) is ignored. */
void mpt_server_on_resolved(struct mpt_server *s, uint64_t now, uint32_t flow, uint32_t gen,
                            int status, const struct mpt_addr *addr, struct mpt_outq *q);

/* Replaces [server]'s allow rules (a reload; at most MPT_SERVER_MAX_ALLOW, the rest ignored),
 * those of shared-secret sessions and of peers without their own: flows open already keep their
 * targets. */
void mpt_server_set_allow(struct mpt_server *s, const struct mpt_allow_rule *allow,
                          unsigned nallow);

/* Sets the paths' max_dgram (the largest UDP payload each carries whole; 0 unknown) from
 * mtu(arg, address): of every path if `all`, else of those not known yet, and clears mtu_dirty.
 * The driver calls it whenever mtu_dirty is set (a path came or moved) and every
 * MPT_UDP_MTU_REFRESH_MS or so with all. A FLOW message whose DATA datagram exceeds the smallest
 * max_dgram of the paths it goes on is sent as pieces that fit (PROTOCOL.md §5 PIECE); with any of
 * them unknown, whole. */
void mpt_server_set_path_mtus(struct mpt_server *s, int all,
                              unsigned (*mtu)(void *arg, const struct mpt_addr *to), void *arg);

/* Where the driver opens flow `slot`'s socket again when it could not at first: 1 with *to for a
 * flow of its peer's own default target (as the peer has it now), 0 for one of [server]'s
 * default target (index flows[slot].target), 2 for a flow that named its target (towards the
 * address its MPT_OUT_FLOW_OPEN gave), -1 for one whose peer has no default target now, a flow
 * whose name is being resolved, or a free slot (not opened again). */
int mpt_server_flow_reopen(const struct mpt_server *s, uint32_t slot, struct mpt_addr *to);

/* Expiry of flows and sessions. Returns the next deadline (absolute, µs). */
uint64_t mpt_server_on_timer(struct mpt_server *s, uint64_t now, struct mpt_outq *q);

/* Closes every flow (listed in `closed`) and forgets every session, for shutdown. */
void mpt_server_close_all(struct mpt_server *s, struct mpt_outq *q);

#endif
