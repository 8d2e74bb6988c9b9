/* What both ends keep per session: directional keys, the send counter and the receive window,
 * and the sealing and opening of DATA datagrams (PROTOCOL.md §4, §6). Also the counters of
 * datagrams dropped, by reason. */
#ifndef MPT_SESSION_H
#define MPT_SESSION_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"
#include "core/replay.h"
#include "core/wire.h"

struct mpt_keys {
    crypto_aead_aes256gcm_state tx_aes, rx_aes; /* expanded keys, AES-256-GCM sessions only */
    uint8_t tx[MPT_KEY_LEN];
    uint8_t rx[MPT_KEY_LEN];
    int cipher;          /* enum mpt_cipher */
    uint64_t tx_counter; /* last counter used; the next datagram gets tx_counter + 1 */
    uint64_t expires_us; /* from then on (monotonic time) the keys seal and open nothing */
    struct mpt_window rx_window;
};

/* Key lifetimes (PROTOCOL.md §3): the client re-keys a session this old or after this many
 * datagrams; keys live MPT_REJECT_AFTER(rekey) from their handshake, then accept nothing. */
#define MPT_REKEY_AFTER_MS 120000u
#define MPT_REKEY_MIN_MS 2000u /* the shortest interval a configuration may ask for */
#define MPT_REKEY_AFTER_MESSAGES (1ULL << 60)
#define MPT_REJECT_AFTER_US(rekey_ms) ((uint64_t)(rekey_ms)*1500)

/* 1 if the keys may still seal and open datagrams at `now`. */
static inline int mpt_keys_live(const struct mpt_keys *k, uint64_t now)
{
    return now < k->expires_us;
}

/* Why a received datagram was dropped. */
enum mpt_drop {
    MPT_DROP_MALFORMED = 0, /* bad size, version, type or inner message */
    MPT_DROP_SESSION,       /* unknown session */
    MPT_DROP_AUTH,          /* failed authentication (MAC or AEAD) */
    MPT_DROP_REPLAY,        /* replayed from before the window (too old), or counter 0 */
    MPT_DROP_LIMIT,         /* over a limit (flows, sessions, size, handshake rate) */
    MPT_DROP_NOSESSION,     /* client: no session yet to carry it */
    MPT_DROP_EXPIRED,       /* under keys past their lifetime (or a replayed handshake) */
    MPT_DROP_COUNT,
};

extern const char *const mpt_drop_names[MPT_DROP_COUNT];

struct mpt_counters {
    uint64_t rx_dgrams, rx_bytes; /* from paths, authenticated and fresh */
    uint64_t tx_dgrams, tx_bytes; /* to paths, every copy counted */
    uint64_t app_rx, app_tx;      /* datagrams from / to applications or targets */
    uint64_t sealed;              /* AEAD seal operations */
    uint64_t opened;              /* AEAD open operations attempted */
    uint64_t handshakes;          /* sessions established */
    uint64_t duplicates;          /* copies of a datagram another path delivered first: dropped,
                                     but not rejected (multipath sends them on purpose) */
    uint64_t drops[MPT_DROP_COUNT];
    uint64_t queue_full; /* copies not queued: the driver's output queue had no room */
};

/* Datagrams rejected, every reason summed (duplicates are not rejected). */
static inline uint64_t mpt_counters_rejected(const struct mpt_counters *c)
{
    uint64_t n = 0;

    for (int i = 0; i < MPT_DROP_COUNT; i++)
        n += c->drops[i];
    return n;
}

/* What mpt_data_open returns for a copy already received (inside the window): not a drop reason,
 * counted in `duplicates'. */
#define MPT_OPEN_DUPLICATE (-(MPT_DROP_COUNT + 1))

/* Installs fresh keys for `cipher` (counters reset, window empty), live until expires_us. */
void mpt_keys_init(struct mpt_keys *k, const uint8_t tx[MPT_KEY_LEN], const uint8_t rx[MPT_KEY_LEN],
                   int cipher, uint64_t expires_us);
void mpt_keys_wipe(struct mpt_keys *k);

/* Where the inner message of a DATA datagram being built goes: write it at buf + MPT_DATA_HDR_LEN,
 * then seal. buf must have room for MPT_DATA_OVERHEAD + inner_len bytes. */
static inline uint8_t *mpt_data_inner(uint8_t *buf)
{
    return buf + MPT_DATA_HDR_LEN;
}

/* Writes the header, encrypts the inner message in place; returns the datagram's length. */
size_t mpt_data_seal(struct mpt_keys *k, uint64_t sid, uint8_t *buf, size_t inner_len);

/* The session id of a DATA datagram (its size already checked by mpt_wire_classify). */
static inline uint64_t mpt_data_sid(const uint8_t *buf)
{
    return mpt_get64(buf + MPT_DATA_OFF_SID);
}

/* Checks the window (read-only), decrypts into out (len - MPT_DATA_OVERHEAD bytes), then records
 * the counter. Returns the inner length, MPT_OPEN_DUPLICATE (a counter the window holds), or
 * -MPT_DROP_REPLAY (older than the window) / -MPT_DROP_AUTH. */
int mpt_data_open(struct mpt_keys *k, const uint8_t *buf, size_t len, uint8_t *out);

#endif
