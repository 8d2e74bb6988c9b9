/* Keys and cryptographic operations (libsodium). PROTOCOL.md §3 (handshake) and §4 (data). */
#ifndef MPT_CRYPTO_H
#define MPT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define MPT_KEY_LEN 32

/* The AEAD of a session (PROTOCOL.md §4), chosen in the handshake. */
enum mpt_cipher {
    MPT_CIPHER_CHACHA20 = 0,  /* ChaCha20-Poly1305-IETF: everywhere */
    MPT_CIPHER_AES256GCM = 1, /* AES-256-GCM: when both ends have AES-NI and CLMUL */
};

/* 1 if this CPU runs AES-256-GCM in hardware (libsodium initialised). */
int mpt_cipher_aes_available(void);

const char *mpt_cipher_name(int cipher);

/* Constant-time comparison of two 16-byte MACs: 1 if equal. */
int mpt_mac_equal(const uint8_t a[16], const uint8_t b[16]);

/* ChaCha20-Poly1305-IETF with nonce = 4 zero bytes || counter (big-endian). `out` receives
 * ptlen + 16 bytes; in-place (out == pt) is allowed. */
void mpt_aead_seal(const uint8_t key[MPT_KEY_LEN], uint64_t counter, const uint8_t *ad,
                   size_t adlen, const uint8_t *pt, size_t ptlen, uint8_t *out);

/* Decrypts and verifies ctlen bytes (tag included) into out (ctlen - 16 bytes). Returns 0, or -1
 * if authentication fails (out is then unspecified). */
int mpt_aead_open(const uint8_t key[MPT_KEY_LEN], uint64_t counter, const uint8_t *ad, size_t adlen,
                  const uint8_t *ct, size_t ctlen, uint8_t *out);

/* Memory for key material: zeroed, left out of core dumps (MADV_DONTDUMP), locked in RAM with
 * sodium_mlock when it is at most MPT_SECURE_LOCK_MAX bytes (and RLIMIT_MEMLOCK allows), between
 * two inaccessible guard pages. *locked (if not NULL) says whether the lock was granted. Returns
 * NULL if out of memory. */
#define MPT_SECURE_LOCK_MAX (16u << 20)
void *mpt_secure_alloc(size_t size, int *locked);

/* Wipes (sodium_munlock) and unmaps memory of mpt_secure_alloc(size); p may be NULL. A region too
 * large to be locked is unmapped without being written: its untouched pages were never made. */
void mpt_secure_free(void *p, size_t size);

/* Wipes len bytes (sodium_memzero): for key material on the stack. */
void mpt_wipe(void *p, size_t len);

/* Random bytes (libsodium's generator; tests may install their own with
 * randombytes_set_implementation). */
void mpt_random(void *buf, size_t len);
uint64_t mpt_random64(void);

#endif
