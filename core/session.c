#include "core/session.h"

#include <sodium.h>
#include <string.h>

const char *const mpt_drop_names[MPT_DROP_COUNT] = {
    "malformed", "unknown_session", "auth_failed", "replay", "over_limit", "no_session",
};

void mpt_keys_init(struct mpt_keys *k, const uint8_t tx[MPT_KEY_LEN], const uint8_t rx[MPT_KEY_LEN])
{
    memcpy(k->tx, tx, MPT_KEY_LEN);
    memcpy(k->rx, rx, MPT_KEY_LEN);
    k->tx_counter = 0;
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
    mpt_aead_seal(k->tx, ctr, buf, MPT_DATA_HDR_LEN, buf + MPT_DATA_HDR_LEN, inner_len,
                  buf + MPT_DATA_HDR_LEN);
    return MPT_DATA_HDR_LEN + inner_len + MPT_TAG_LEN;
}

int mpt_data_open(struct mpt_keys *k, const uint8_t *buf, size_t len, uint8_t *out)
{
    uint64_t ctr = mpt_get64(buf + MPT_DATA_OFF_CTR);

    /* Duplicates and replays stop here, before any crypto work. */
    if (mpt_window_check(&k->rx_window, ctr) != 0)
        return -MPT_DROP_REPLAY;
    if (mpt_aead_open(k->rx, ctr, buf, MPT_DATA_HDR_LEN, buf + MPT_DATA_HDR_LEN,
                      len - MPT_DATA_HDR_LEN, out) != 0)
        return -MPT_DROP_AUTH;
    mpt_window_update(&k->rx_window, ctr);
    return (int)(len - MPT_DATA_OVERHEAD);
}
