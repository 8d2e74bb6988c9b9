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

/* Keys derived once from the pre-shared secret. */
struct mpt_psk {
    uint8_t hello_key[MPT_KEY_LEN]; /* MAC of HELLO */
    uint8_t reply_key[MPT_KEY_LEN]; /* MAC of REPLY */
    uint8_t kdf_key[MPT_KEY_LEN];   /* session key derivation */
};

/* Initialises libsodium (idempotent) and derives the handshake keys. Returns 0 or -1. */
int mpt_psk_init(struct mpt_psk *psk, const uint8_t secret[32]);

/* Wipes the keys. */
void mpt_psk_wipe(struct mpt_psk *psk);

/* MAC of a HELLO's first MPT_HELLO_OFF_MAC bytes. */
void mpt_hello_mac(const struct mpt_psk *psk, const uint8_t *hello, uint8_t mac[16]);

/* MAC of a REPLY's first MPT_REPLY_OFF_MAC bytes, bound to the HELLO's client random. */
void mpt_reply_mac(const struct mpt_psk *psk, const uint8_t *reply, const uint8_t client_random[32],
                   uint8_t mac[16]);

/* Constant-time comparison of two 16-byte MACs: 1 if equal. */
int mpt_mac_equal(const uint8_t a[16], const uint8_t b[16]);

/* Derives the two directional keys of a session from both sides' randomness. */
void mpt_session_keys(const struct mpt_psk *psk, uint64_t sid, const uint8_t client_random[32],
                      const uint8_t server_random[32], uint8_t c2s[MPT_KEY_LEN],
                      uint8_t s2c[MPT_KEY_LEN]);

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
