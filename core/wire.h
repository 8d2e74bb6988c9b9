/* The wire format: sizes, offsets and byte-order helpers. core/PROTOCOL.md is the reference; the
 * section numbers below point into it. Every parser checks the size of a datagram before reading
 * anything else. */
#ifndef MPT_WIRE_H
#define MPT_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MPT_PROTO_VERSION 2
#define MPT_PROTO_VERSION_1 1 /* the version before: recognised only to say so in the log */

/* §2 outer types */
#define MPT_TYPE_INIT 1     /* handshake initiation, client -> server */
#define MPT_TYPE_RESPONSE 2 /* its answer, server -> client */
#define MPT_TYPE_DATA 3
#define MPT_TYPE_COOKIE 4 /* server -> client, under load: prove your address (MAC2) */

#define MPT_HDR_LEN 4  /* version, type, two reserved zero bytes */
#define MPT_MAC_LEN 16 /* BLAKE2b-128: MAC1 and MAC2 of handshake messages */
#define MPT_TAG_LEN 16 /* ChaCha20-Poly1305 tag */

/* §3 INIT: header, session id, the first Noise message, MAC1, MAC2. */
#define MPT_INIT_OFF_SID 4
#define MPT_INIT_OFF_NOISE 12
#define MPT_INIT_NN_LEN 132 /* shared-secret mode: Noise_NNpsk0, message of 88 bytes */
#define MPT_INIT_IK_LEN 180 /* key mode: Noise_IKpsk2, message of 136 bytes */
#define MPT_INIT_MAX_LEN MPT_INIT_IK_LEN

/* §3 RESPONSE: header, session id, the second Noise message (56 bytes), MAC1. */
#define MPT_RESPONSE_LEN 84
#define MPT_RESPONSE_OFF_SID 4
#define MPT_RESPONSE_OFF_NOISE 12
#define MPT_RESPONSE_NOISE_LEN 56
#define MPT_RESPONSE_OFF_MAC1 68

/* §3 COOKIE: header, session id, nonce (24), the sealed cookie (16 + tag). */
#define MPT_COOKIE_MSG_LEN 68
#define MPT_COOKIE_OFF_SID 4
#define MPT_COOKIE_OFF_NONCE 12
#define MPT_COOKIE_OFF_BOX 36

/* Version 1's handshake request, for the log line that names an old peer. */
#define MPT_V1_HELLO_LEN 128

/* §4 DATA: header, then ciphertext of an inner message, then the tag. */
#define MPT_DATA_OFF_SID 4
#define MPT_DATA_OFF_CTR 12
#define MPT_DATA_HDR_LEN 20
#define MPT_DATA_MIN_LEN (MPT_DATA_HDR_LEN + 1 + MPT_TAG_LEN)
#define MPT_DATA_OVERHEAD (MPT_DATA_HDR_LEN + MPT_TAG_LEN)

/* §5 inner messages (inside the encryption). */
#define MPT_INNER_FLOW 1      /* a datagram of a flow */
#define MPT_INNER_PROBE 2     /* per-path liveness probe, client -> server */
#define MPT_INNER_PROBE_ACK 3 /* its answer, server -> client */
#define MPT_INNER_PIECE 5     /* a piece of a FLOW message too large for its paths (split.h) */
#define MPT_INNER_FLOW_STATUS                                                                      \
    4 /* a flow that named its target: open or refused, server -> client */
#define MPT_INNER_PATH_CHALLENGE 6 /* proof asked of a new return address, server -> client */
#define MPT_INNER_PATH_RESPONSE 7  /* its echo, client -> server, on the path it came on */
#define MPT_INNER_FLOW_CLOSE 9     /* flows the client forgot, client -> server */

#define MPT_FLOW_HDR_LEN 8         /* kind, flags, target (u16), flow id (u32) */
#define MPT_FLOW_STATUS_LEN 8      /* kind, status, zero (2), flow id (u32) */
#define MPT_FLOW_CLOSE_HDR_LEN 4   /* kind, zero, count (u16); then count flow ids (u32) */
#define MPT_FLOW_CLOSE_MAX_IDS 128 /* ids per FLOW_CLOSE: 516 bytes, fits any path */
#define MPT_PROBE_LEN 84           /* §5: see PROTOCOL.md for the fields */
#define MPT_PROBE_MIN_LEN 48       /* §5: a probe without the fixed fec = K:M (bytes 48-49) */
#define MPT_PROBE_ACK_LEN 40       /* §5 */
#define MPT_PROBE_ACK_MIN_LEN 32   /* §5: an ack without the server's clock id (bytes 32-39) */
#define MPT_PROBE_OFF_SEQ 4
#define MPT_PROBE_OFF_TIME 8
#define MPT_PROBE_OFF_RX 16
#define MPT_PROBE_OFF_LOSS_UP 20
#define MPT_PROBE_OFF_LOSS_DOWN 22
#define MPT_PROBE_OFF_SRTT 24
#define MPT_PROBE_OFF_NPATHS 28
#define MPT_PROBE_OFF_USE 32   /* 16 bytes: per client path index, 0 = do not use, else a weight */
#define MPT_PROBE_OFF_FLAGS 29 /* bit 0: the loss server -> client is measured (§11) */
#define MPT_PROBE_F_MEASURED 0x01
#define MPT_PROBE_OFF_TARGET 30 /* fec mode: target_loss in millionths (0: 0.001), §11 */
#define MPT_PROBE_OFF_FEC_K 48  /* fec mode: fixed K (0: planned) and M, §11 */
#define MPT_PROBE_OFF_FEC_M 49
#define MPT_PROBE_OFF_CAPS 50     /* 16 x 2 bytes: balance mode's caps of replies, §8.2 */
#define MPT_PROBE_OFF_FEC_WAIT 82 /* fec mode: the client's fec_wait, ms (0: not said), §11 */
#define MPT_PROBE_OFF_TX 20       /* in PROBE_ACK: the server's copies sent on this path */
#define MPT_PROBE_OFF_STIME 24    /* in PROBE_ACK: the server's clock when it sent it, µs */
#define MPT_PROBE_OFF_CLOCK 32    /* in PROBE_ACK: which clock that is (random per server start) */
#define MPT_PATH_CHALLENGE_LEN 24 /* §5: kind, zero (7), 16 random bytes; PATH_RESPONSE alike */
#define MPT_CHALLENGE_OFF 8
#define MPT_CHALLENGE_LEN 16

/* The largest UDP payload over IPv4, and so the largest application datagram we carry. */
#define MPT_MAX_DGRAM 65507
#define MPT_MAX_PAYLOAD (MPT_MAX_DGRAM - MPT_DATA_OVERHEAD - MPT_FLOW_HDR_LEN)

static inline void mpt_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void mpt_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void mpt_put64(uint8_t *p, uint64_t v)
{
    mpt_put32(p, (uint32_t)(v >> 32));
    mpt_put32(p + 4, (uint32_t)v);
}

static inline uint16_t mpt_get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t mpt_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t mpt_get64(const uint8_t *p)
{
    return (uint64_t)mpt_get32(p) << 32 | mpt_get32(p + 4);
}

/* Classifies a datagram by its outer header and size (§2): returns MPT_TYPE_* if the version,
 * reserved bytes and the type's size rule hold, else 0. Reads nothing beyond len. */
int mpt_wire_classify(const uint8_t *buf, size_t len);

#endif
