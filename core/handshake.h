/* Protocol 2's handshake messages (PROTOCOL.md §3): INIT, RESPONSE and COOKIE around the Noise
 * handshakes of core/noise.h, their MACs, timestamps, cookies and the proof that continues a
 * previous session; and the server's record of recent initiations that refuses replays.
 * Sans-I/O: the caller gives the time (monotonic `now` and the wall clock as TAI64N), owns every
 * struct, and decides what to send. */
#ifndef MPT_HANDSHAKE_H
#define MPT_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/crypto.h"
#include "core/noise.h"
#include "core/wire.h"

#define MPT_TAI64N_LEN 12
#define MPT_PROOF_LEN 16
#define MPT_COOKIE_LEN 16

/* The INIT's Noise payload (40 bytes, §3). */
#define MPT_INIT_PAYLOAD_LEN 40
#define MPT_INIT_P_TAI 0
#define MPT_INIT_P_PREV 12
#define MPT_INIT_P_PROOF 20
#define MPT_INIT_P_MODE 36
#define MPT_INIT_P_FLAGS 37 /* bit 0: the client can use AES-256-GCM */
#define MPT_INIT_FLAG_AES 0x01
#define MPT_RESPONSE_PAYLOAD_LEN 8
#define MPT_RESPONSE_P_CIPHER 0

/* Long-term keys and what derives from them, for one side. Kept in mpt_secure_alloc memory. */
struct mpt_hs_keys {
    int keymode;                    /* 0 shared-secret (Noise_NNpsk0), 1 key mode (Noise_IKpsk2) */
    uint8_t psk[MPT_KEY_LEN];       /* the secret; key mode: the pre-shared key (zero: none) */
    uint8_t priv[MPT_KEY_LEN];      /* key mode: own private key */
    uint8_t pub[MPT_KEY_LEN];       /* key mode: own public key */
    uint8_t remote[MPT_KEY_LEN];    /* key mode, client: the server's public key */
    uint8_t mac1_init[MPT_KEY_LEN]; /* MAC1 of INITs (to the server) */
    uint8_t mac1_resp[MPT_KEY_LEN]; /* MAC1 of RESPONSEs (client: its own; key mode per peer) */
    uint8_t cookie[MPT_KEY_LEN];    /* seals COOKIE messages (the server's) */
};

/* Shared-secret mode from the 32-byte secret. Returns 0, or -EINVAL if libsodium fails. */
int mpt_hs_keys_secret(struct mpt_hs_keys *k, const uint8_t secret[MPT_KEY_LEN]);

/* Key mode: own private key, the server's public key (client; NULL at the server) and the
 * pre-shared key (NULL: none). Returns 0, or -EINVAL for a key of low order or libsodium failing.
 */
int mpt_hs_keys_pair(struct mpt_hs_keys *k, const uint8_t priv[MPT_KEY_LEN],
                     const uint8_t *server_pub, const uint8_t *psk);

void mpt_hs_keys_wipe(struct mpt_hs_keys *k);

/* The MAC1 key of RESPONSEs to the client whose static public key is `pub` (key mode). */
void mpt_hs_mac1_resp_key(uint8_t out[MPT_KEY_LEN], const uint8_t pub[MPT_KEY_LEN]);

/* Size of an INIT in this mode (132 or 180 bytes). */
size_t mpt_hs_init_len(int keymode);

/* TAI64N of a Unix time in microseconds: 8 bytes of seconds + 2^62, 4 bytes of nanoseconds. */
void mpt_tai64n(uint8_t out[MPT_TAI64N_LEN], uint64_t unix_us);

/* The resume key of a session (proofs for sessions that continue it), from its two transport
 * keys: they depend on the Diffie-Hellman results, so no one else can compute it, not even a
 * holder of the shared secret who recorded the handshake (whose hash h they could). */
void mpt_hs_resume_key(uint8_t out[MPT_KEY_LEN], const uint8_t c2s[MPT_KEY_LEN],
                       const uint8_t s2c[MPT_KEY_LEN]);

/* The proof, under a session's resume key, that an INIT of session `sid` with ephemeral key
 * e_pub continues that session. */
void mpt_hs_proof(uint8_t out[MPT_PROOF_LEN], const uint8_t resume[MPT_KEY_LEN], uint64_t sid,
                  const uint8_t e_pub[MPT_KEY_LEN]);

/* ---- Client side ---- */

/* A handshake under way at the client: the INIT as sent (for retries and cookies). */
struct mpt_hs_client {
    struct mpt_noise_handshake hs;
    uint64_t sid;
    uint8_t msg[MPT_INIT_MAX_LEN];
    size_t len;
    int flags; /* what the INIT offered: MPT_INIT_FLAG_* */
};

/* What a client's INIT says besides its keys. */
struct mpt_hs_init_params {
    uint64_t sid;               /* nonzero */
    uint64_t unix_us;           /* the wall clock now */
    uint64_t prev;              /* the session it continues, 0 = none */
    const uint8_t *prev_resume; /* that session's resume key (with prev) */
    uint8_t mode;               /* scheduling mode */
    uint8_t flags;              /* MPT_INIT_FLAG_* */
    const uint8_t *cookie;      /* MPT_COOKIE_LEN bytes for MAC2, or NULL */
};

/* Builds the INIT into st->msg. Returns 0, or -EINVAL (libsodium or keys refused). */
int mpt_hs_client_init(struct mpt_hs_client *st, const struct mpt_hs_keys *k,
                       const struct mpt_hs_init_params *ip);

/* Sets MAC2 of the INIT from a cookie (the rest of the message stays as it was). */
void mpt_hs_client_set_cookie(struct mpt_hs_client *st, const uint8_t cookie[MPT_COOKIE_LEN]);

/* The outcome of a handshake: directional keys and the session's resume key. */
struct mpt_hs_result {
    uint8_t tx[MPT_KEY_LEN], rx[MPT_KEY_LEN];
    uint8_t resume[MPT_KEY_LEN];
    int cipher; /* enum mpt_cipher */
};

/* Reads a RESPONSE (len bytes, hostile) to st's INIT. Returns 0 with the session's keys (st is
 * then wiped), -EBADMSG if it does not authenticate (st unchanged: a forged RESPONSE cannot end
 * a handshake), or -EPROTO if it names a cipher that was not offered. */
int mpt_hs_client_response(struct mpt_hs_client *st, const struct mpt_hs_keys *k,
                           const uint8_t *buf, size_t len, struct mpt_hs_result *out);

/* Reads a COOKIE (len bytes, hostile) for st's INIT into cookie. Returns 0 or -EBADMSG. */
int mpt_hs_client_cookie(const struct mpt_hs_client *st, const struct mpt_hs_keys *k,
                         const uint8_t *buf, size_t len, uint8_t cookie[MPT_COOKIE_LEN]);

void mpt_hs_client_wipe(struct mpt_hs_client *st);

/* ---- Server side ---- */

/* 1 if an INIT's MAC1 (len bytes, size already checked) is right for these keys. */
int mpt_hs_check_mac1(const struct mpt_hs_keys *k, const uint8_t *buf, size_t len);

/* The secret behind cookies, changed every MPT_HS_COOKIE_US (the previous one still accepted). */
#define MPT_HS_COOKIE_US 120000000ULL
struct mpt_hs_cookies {
    uint8_t secret[MPT_KEY_LEN], prev[MPT_KEY_LEN];
    uint64_t changed_us; /* 0 = never made */
};

/* 1 if the INIT's MAC2 proves that its source `from` received a cookie of ours lately. */
int mpt_hs_check_mac2(struct mpt_hs_cookies *c, uint64_t now, const struct mpt_addr *from,
                      const uint8_t *buf, size_t len);

/* Writes a COOKIE answering the INIT in buf (from `from`) into out (MPT_COOKIE_MSG_LEN bytes). */
void mpt_hs_cookie_msg(struct mpt_hs_cookies *c, const struct mpt_hs_keys *k, uint64_t now,
                       const struct mpt_addr *from, const uint8_t *init, size_t init_len,
                       uint8_t out[MPT_COOKIE_MSG_LEN]);

/* An INIT the server read: what its payload says, and the Noise state to answer it with. */
struct mpt_hs_server {
    struct mpt_noise_handshake hs;
    uint64_t sid;
    uint8_t tai[MPT_TAI64N_LEN];
    uint64_t prev;
    uint8_t proof[MPT_PROOF_LEN];
    uint8_t mode, flags;
    uint8_t e_pub[MPT_KEY_LEN];     /* the client's ephemeral key */
    uint8_t remote[MPT_KEY_LEN];    /* key mode: the client's static public key */
    uint8_t init_mac1[MPT_MAC_LEN]; /* names this INIT (its copies have the same) */
};

/* Reads an INIT (size and MAC1 checked) into st. Key mode: the caller then looks the client up
 * by st->remote and gives its pre-shared key to mpt_hs_server_response. Returns 0, or -EBADMSG
 * (st wiped). */
int mpt_hs_server_read(struct mpt_hs_server *st, const struct mpt_hs_keys *k, const uint8_t *buf,
                       size_t len);

/* 1 if the INIT read into st proves that it continues the session whose resume key is given. */
int mpt_hs_server_proof_ok(const struct mpt_hs_server *st, const uint8_t resume[MPT_KEY_LEN]);

/* Writes the RESPONSE (MPT_RESPONSE_LEN bytes) choosing `cipher`, with the peer's pre-shared key
 * (key mode; NULL: k->psk) and the MAC1 key of RESPONSEs to that client, and gives the session's
 * keys. st is wiped. Returns 0, or -EPROTO / -EINVAL (nothing to send). */
int mpt_hs_server_response(struct mpt_hs_server *st, const struct mpt_hs_keys *k,
                           const uint8_t *psk, const uint8_t mac1_resp[MPT_KEY_LEN], int cipher,
                           uint8_t out[MPT_RESPONSE_LEN], struct mpt_hs_result *res);

void mpt_hs_server_wipe(struct mpt_hs_server *st);

/* Shared-secret mode's record of recent initiations (§3): an INIT is fresh if its timestamp is
 * within MPT_HS_WINDOW_US of the server's clock, not below the floor, and its ephemeral key is not
 * recorded. The record is bounded: when full, the entry with the oldest timestamp gives way and
 * the floor rises to it, so a replay is refused however many initiations come. */
#define MPT_HS_WINDOW_US 120000000ULL
#define MPT_HS_RECENT 8192
struct mpt_hs_recent_entry {
    uint64_t key;    /* the first 8 bytes of the ephemeral key; 0 = free */
    uint64_t tai_us; /* its timestamp, µs since the Unix epoch */
};
struct mpt_hs_recent {
    struct mpt_hs_recent_entry e[MPT_HS_RECENT];
    unsigned used;
    int floored;       /* the record overflowed once: floor_us holds */
    uint64_t floor_us; /* then initiations stamped at or below this are refused */
};

/* Reads a TAI64N timestamp as µs since the Unix epoch into *us. Returns 0, or -EINVAL if it
 * cannot be one (before 1970, nanoseconds over 10^9, or past what 64 bits of µs hold). */
int mpt_tai64n_parse(const uint8_t tai[MPT_TAI64N_LEN], uint64_t *us);

enum {
    MPT_HS_FRESH = 0,
    MPT_HS_STALE,  /* outside the window, or below the floor */
    MPT_HS_REPLAY, /* recorded already */
};

/* Checks an INIT's timestamp and ephemeral key against the record at server time unix_us, and
 * records them if fresh (record 1) or only checks (record 0). Returns MPT_HS_*. */
int mpt_hs_recent_check(struct mpt_hs_recent *r, uint64_t unix_us, const struct mpt_hs_server *st,
                        int record);

#endif
