#include "core/session.h"

#include <sodium.h>
#include <string.h>

const char *const mpt_drop_names[MPT_DROP_COUNT] = {
    "malformed", "unknown_session", "auth_failed", "replay", "over_limit", "no_session", "expired",
};

void mpt_keys_init(struct mpt_keys *k, const uint8_t tx[MPT_KEY_LEN], const uint8_t rx[MPT_KEY_LEN],
                   int cipher, uint64_t expires_us)
{
    memcpy(k->tx, tx, MPT_KEY_LEN);
    memcpy(k->rx, rx, MPT_KEY_LEN);
    k->cipher = cipher == MPT_CIPHER_AES256GCM ? MPT_CIPHER_AES256GCM : MPT_CIPHER_CHACHA20;
    if (k->cipher == MPT_CIPHER_AES256GCM) {
        crypto_aead_aes256gcm_beforenm(&k->tx_aes, tx);
        crypto_aead_aes256gcm_beforenm(&k->rx_aes, rx);
    }
    k->tx_counter = 0;
    k->expires_us = expires_us;
    mpt_window_init(&k->rx_window);
}

void mpt_keys_wipe(struct mpt_keys *k)
{
    sodium_memzero(k, sizeof(*k));
}

size_t mpt_data_seal(struct mpt_keys *k, uint64_t sid, uint8_t *buf, size_t inner_len)
{
    uint64_t ctr = ++k->tx_counter;

    buf[0] = MPT_PROTO_VERSION;
    buf[1] = MPT_TYPE_DATA;
    buf[2] = 0;
    buf[3] = 0;
    mpt_put64(buf + MPT_DATA_OFF_SID, sid);
    mpt_put64(buf + MPT_DATA_OFF_CTR, ctr);
    if (k->cipher == MPT_CIPHER_AES256GCM) {
        uint8_t nonce[12] = {0};
        mpt_put64(nonce + 4, ctr);
        crypto_aead_aes256gcm_encrypt_detached_afternm(
            buf + MPT_DATA_HDR_LEN, buf + MPT_DATA_HDR_LEN + inner_len, NULL,
            buf + MPT_DATA_HDR_LEN, inner_len, buf, MPT_DATA_HDR_LEN, NULL, nonce, &k->tx_aes);
    } else {
        mpt_aead_seal(k->tx, ctr, buf, MPT_DATA_HDR_LEN, buf + MPT_DATA_HDR_LEN, inner_len,
                      buf + MPT_DATA_HDR_LEN);
    }
    return MPT_DATA_HDR_LEN + inner_len + MPT_TAG_LEN;
}

int mpt_data_open(struct mpt_keys *k, const uint8_t *buf, size_t len, uint8_t *out)
{
    uint64_t ctr = mpt_get64(buf + MPT_DATA_OFF_CTR);

    /* Duplicates and replays stop here, before any crypto work. */
    if (mpt_window_check(&k->rx_window, ctr) != 0) {
        const struct mpt_window *w = &k->rx_window;
        return ctr != 0 && ctr <= w->top && w->top - ctr < MPT_WINDOW_BITS ? MPT_OPEN_DUPLICATE
                                                                           : -MPT_DROP_REPLAY;
    }
    if (k->cipher == MPT_CIPHER_AES256GCM) {
        uint8_t nonce[12] = {0};
        size_t ctlen = len - MPT_DATA_OVERHEAD;
        mpt_put64(nonce + 4, ctr);
        if (crypto_aead_aes256gcm_decrypt_detached_afternm(
                out, NULL, buf + MPT_DATA_HDR_LEN, ctlen, buf + MPT_DATA_HDR_LEN + ctlen, buf,
                MPT_DATA_HDR_LEN, nonce, &k->rx_aes) != 0)
            return -MPT_DROP_AUTH;
    } else if (mpt_aead_open(k->rx, ctr, buf, MPT_DATA_HDR_LEN, buf + MPT_DATA_HDR_LEN,
                             len - MPT_DATA_HDR_LEN, out) != 0) {
        return -MPT_DROP_AUTH;
    }
    mpt_window_update(&k->rx_window, ctr);
    return (int)(len - MPT_DATA_OVERHEAD);
}
