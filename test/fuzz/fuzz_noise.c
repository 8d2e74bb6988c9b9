/* core/noise: hostile handshake and transport messages. Fixed keys on both sides, so a seed can
 * be a complete valid exchange. Input: byte 0 the mode (bit 0: NNpsk0 or IKpsk2; bit 1: the
 * responder reads a first message, or the initiator, having written its first message, reads a
 * second), then chunks of [length, 2 bytes big-endian][bytes]: the first the handshake message,
 * the others transport messages as [nonce, 8 bytes big-endian][ciphertext], read after Split()
 * (the responder writes its message first). Checks: a payload is exactly the message less its
 * overhead; a refused message leaves the handshake wiped and failed; a failed transport message
 * changes nothing. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key_si[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                   1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
static const uint8_t key_sr[32] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
                                   2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
static const uint8_t key_psk[32] = {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
                                    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
static const uint8_t key_ei[32] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                   4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
static const uint8_t key_er[32] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
                                   5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5};

static uint8_t buf[MPT_NOISE_MAX_MSG], out[MPT_NOISE_MAX_MSG];

static int wiped_failed(const struct mpt_noise_handshake *hs)
{
    struct mpt_noise_handshake z;

    memset(&z, 0, sizeof(z));
    z.state = MPT_NOISE_HS_FAILED;
    return memcmp(&z, hs, sizeof(z)) == 0;
}

/* The next chunk of the input, or NULL at its end. */
static const uint8_t *chunk(const uint8_t **p, size_t *left, size_t *len)
{
    const uint8_t *c;

    if (*left < 2)
        return NULL;
    *len = (size_t)(*p)[0] << 8 | (*p)[1];
    if (*len > *left - 2)
        *len = *left - 2;
    c = *p + 2;
    *p += 2 + *len;
    *left -= 2 + *len;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t sr_pub[32];
    struct mpt_noise_handshake hs;
    struct mpt_noise_cipher tx, rx, before;
    struct mpt_noise_params p;
    const uint8_t *msg, *rest;
    size_t left, len, min;
    int pattern, initiator, n;

    if (size < 1)
        return 0;
    pattern = data[0] & 1 ? MPT_NOISE_IKPSK2 : MPT_NOISE_NNPSK0;
    initiator = (data[0] & 2) != 0;
    rest = data + 1;
    left = size - 1;
    if (mpt_noise_pubkey(sr_pub, key_sr) != 0)
        abort();
    memset(&p, 0, sizeof(p));
    p.pattern = pattern;
    p.initiator = initiator;
    p.psk = key_psk;
    p.prologue = (const uint8_t *)"fuzz";
    p.prologue_len = 4;
    if (pattern == MPT_NOISE_IKPSK2) {
        p.s = initiator ? key_si : key_sr;
        p.rs = initiator ? sr_pub : NULL;
    }
    if (mpt_noise_handshake_init(&hs, &p) != 0 ||
        mpt_noise_handshake_fix_ephemeral(&hs, initiator ? key_ei : key_er) != 0)
        abort();
    if (initiator && mpt_noise_handshake_write(&hs, NULL, 0, buf, sizeof(buf)) <= 0)
        abort();
    if (!(msg = chunk(&rest, &left, &len)))
        return 0;
    min = mpt_noise_handshake_msg_len(&hs, 0);
    n = mpt_noise_handshake_read(&hs, msg, len, out, sizeof(out));
    if (n < 0) {
        if (!wiped_failed(&hs) || (n != -EBADMSG && n != -EPROTO && n != -EMSGSIZE))
            abort();
        return 0;
    }
    if ((size_t)n != len - min)
        abort();
    if (!initiator && mpt_noise_handshake_write(&hs, out, (size_t)n < 100 ? (size_t)n : 100, buf,
                                                sizeof(buf)) < 0)
        abort();
    if (mpt_noise_handshake_split(&hs, &tx, &rx) != 0)
        abort();
    while ((msg = chunk(&rest, &left, &len))) {
        uint64_t nonce = 0;
        if (len < 8)
            break;
        for (int i = 0; i < 8; i++)
            nonce = nonce << 8 | msg[i];
        mpt_noise_cipher_set_nonce(&rx, nonce);
        before = rx;
        n = mpt_noise_cipher_decrypt(&rx, NULL, 0, msg + 8, len - 8, out, sizeof(out));
        if (n < 0 ? memcmp(&before, &rx, sizeof(rx)) != 0 : (size_t)n != len - 8 - 16)
            abort();
        /* Answer it, as a peer would. */
        if (n >= 0 &&
            mpt_noise_cipher_encrypt(&tx, NULL, 0, out, (size_t)n, buf, sizeof(buf)) < 0 &&
            tx.n != UINT64_MAX)
            abort();
    }
    mpt_noise_cipher_wipe(&tx);
    mpt_noise_cipher_wipe(&rx);
    return 0;
}
