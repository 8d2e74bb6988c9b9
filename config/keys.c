/* X25519 keys of key mode: a private key's public key, and public keys that are no keys. */
#include <sodium.h>
#include <string.h>

#include "config/config.h"

int mpt_key_public(uint8_t pub[MPT_KEY_LEN], const uint8_t priv[MPT_KEY_LEN])
{
    if (sodium_init() < 0)
        return -1;
    if (sodium_is_zero(priv, MPT_KEY_LEN))
        return -1;
    return crypto_scalarmult_base(pub, priv) == 0 ? 0 : -1;
}

int mpt_key_low_order(const uint8_t pub[MPT_KEY_LEN])
{
    /* Any scalar will do: X25519 clamps it to a multiple of the cofactor, so the product is the
     * identity (all zero, which libsodium refuses) exactly for points of small order, and their
     * non-canonical encodings are refused outright. */
    static const uint8_t scalar[MPT_KEY_LEN] = {1};
    uint8_t q[MPT_KEY_LEN];
    int low;

    if (sodium_init() < 0)
        return 1;
    low = crypto_scalarmult(q, scalar, pub) != 0;
    sodium_memzero(q, sizeof(q));
    return low;
}
