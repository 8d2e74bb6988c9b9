#include "core/crypto.h"

#include <sodium.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/wire.h"

int mpt_cipher_aes_available(void)
{
    return sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
}

const char *mpt_cipher_name(int cipher)
{
    return cipher == MPT_CIPHER_AES256GCM ? "aes-256-gcm" : "chacha20-poly1305";
}

int mpt_mac_equal(const uint8_t a[16], const uint8_t b[16])
{
    return crypto_verify_16(a, b) == 0;
}

static void make_nonce(uint8_t nonce[12], uint64_t counter)
{
    memset(nonce, 0, 4);
    mpt_put64(nonce + 4, counter);
}

void mpt_aead_seal(const uint8_t key[MPT_KEY_LEN], uint64_t counter, const uint8_t *ad,
                   size_t adlen, const uint8_t *pt, size_t ptlen, uint8_t *out)
{
    uint8_t nonce[12];

    make_nonce(nonce, counter);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, out + ptlen, NULL, pt, ptlen, ad, adlen,
                                                       NULL, nonce, key);
}

int mpt_aead_open(const uint8_t key[MPT_KEY_LEN], uint64_t counter, const uint8_t *ad, size_t adlen,
                  const uint8_t *ct, size_t ctlen, uint8_t *out)
{
    uint8_t nonce[12];

    if (ctlen < MPT_TAG_LEN)
        return -1;
    make_nonce(nonce, counter);
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, ct, ctlen - MPT_TAG_LEN,
                                                              ct + ctlen - MPT_TAG_LEN, ad, adlen,
                                                              nonce, key) == 0
               ? 0
               : -1;
}

void mpt_random(void *buf, size_t len)
{
    randombytes_buf(buf, len);
}

uint64_t mpt_random64(void)
{
    uint64_t v;
    randombytes_buf(&v, sizeof(v));
    return v;
}

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

void *mpt_secure_alloc(size_t size, int *locked)
{
    size_t page = page_size(), len;
    uint8_t *base;
    int ok = 0;

    if (size == 0 || size > SIZE_MAX / 2)
        return NULL;
    len = (size + page - 1) / page * page;
    base = mmap(NULL, len + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    if (mprotect(base, page, PROT_NONE) != 0 || mprotect(base + page + len, page, PROT_NONE) != 0) {
        munmap(base, len + 2 * page);
        return NULL;
    }
    /* Best effort: beyond RLIMIT_MEMLOCK the keys may be swapped out, but are still kept out of
     * core dumps (sodium_mlock applies MADV_DONTDUMP too, before it locks). */
    if (len <= MPT_SECURE_LOCK_MAX)
        ok = sodium_mlock(base + page, len) == 0;
#ifdef MADV_DONTDUMP
    madvise(base + page, len, MADV_DONTDUMP);
#endif
    if (locked)
        *locked = ok;
    return base + page;
}

void mpt_secure_free(void *p, size_t size)
{
    size_t page = page_size(), len;

    if (!p)
        return;
    len = (size + page - 1) / page * page;
    if (len <= MPT_SECURE_LOCK_MAX) {
        /* Wipes, then unlocks (whether or not the lock had been granted). */
        (void)sodium_munlock(p, len);
    }
    munmap((uint8_t *)p - page, len + 2 * page);
}

void mpt_wipe(void *p, size_t len)
{
    sodium_memzero(p, len);
}
