/* core/crypto and core/session: AEAD of DATA datagrams (PROTOCOL.md §4), handshake MACs and
 * session keys (§3). */
#include "core/crypto.h"
#include "core/session.h"
#include "task.h"

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 31);
}

static void round_trip(void)
{
    static const size_t lens[] = {0, 1, 15, 16, 17, 100, 1200, 65000};
    static uint8_t pt[65000], ct[65000 + MPT_TAG_LEN], out[65000];
    uint8_t key[MPT_KEY_LEN], ad[MPT_DATA_HDR_LEN];

    fill(key, sizeof(key), 3);
    fill(ad, sizeof(ad), 9);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = lens[i];
        fill(pt, n, (uint8_t)i);
        mpt_aead_seal(key, 1000 + i, ad, sizeof(ad), pt, n, ct);
        ASSERT(n == 0 || memcmp(ct, pt, n) != 0);
        ASSERT_EQ(mpt_aead_open(key, 1000 + i, ad, sizeof(ad), ct, n + MPT_TAG_LEN, out), 0);
        ASSERT_MEM_EQ(out, pt, n);
        /* In place. */
        memcpy(ct, pt, n);
        mpt_aead_seal(key, 1000 + i, ad, sizeof(ad), ct, n, ct);
        ASSERT_EQ(mpt_aead_open(key, 1000 + i, ad, sizeof(ad), ct, n + MPT_TAG_LEN, out), 0);
        ASSERT_MEM_EQ(out, pt, n);
    }
    ASSERT_EQ(mpt_aead_open(key, 1, ad, sizeof(ad), ct, MPT_TAG_LEN - 1, out), -1);
}

/* A DATA datagram built by mpt_data_seal, with every single bit flipped in turn (header, which is
 * the AD, ciphertext and tag): none opens. */
static void bit_flips_with(int cipher)
{
    struct mpt_keys tx, rx;
    uint8_t k1[MPT_KEY_LEN], k2[MPT_KEY_LEN], dgram[200], copy[200], out[200], plain[60];
    size_t inner = sizeof(plain), n;

    fill(k1, sizeof(k1), 1);
    fill(k2, sizeof(k2), 2);
    mpt_keys_init(&tx, k1, k2, cipher, UINT64_MAX);
    mpt_keys_init(&rx, k2, k1, cipher, UINT64_MAX);
    ASSERT_EQ(tx.cipher, cipher);
    fill(plain, inner, 5);
    memcpy(mpt_data_inner(dgram), plain, inner);
    n = mpt_data_seal(&tx, 0x1122334455667788ULL, dgram, inner);
    ASSERT_EQ(n, inner + MPT_DATA_OVERHEAD);
    ASSERT(mpt_data_sid(dgram) == 0x1122334455667788ULL);
    ASSERT_EQ(tx.tx_counter, 1);
    for (size_t bit = 0; bit < n * 8; bit++) {
        memcpy(copy, dgram, n);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int r = mpt_data_open(&rx, copy, n, out);
        ASSERT(r < 0);
        /* A flip in the counter may land on one the window already refuses; else it is AEAD. */
        ASSERT(r == -MPT_DROP_AUTH || r == -MPT_DROP_REPLAY || r == MPT_OPEN_DUPLICATE);
    }
    ASSERT_EQ(rx.rx_window.top, 0);
    ASSERT_EQ(mpt_data_open(&rx, dgram, n, out), (int)inner);
    ASSERT_MEM_EQ(out, plain, inner);
    /* The same datagram again is a duplicate, refused before any crypto. */
    ASSERT_EQ(mpt_data_open(&rx, dgram, n, out), MPT_OPEN_DUPLICATE);
}

static void bit_flips(void)
{
    bit_flips_with(MPT_CIPHER_CHACHA20);
}

/* The same with AES-256-GCM, where this CPU has it; and the two ciphers never open each other's
 * datagrams. */
static void aes_gcm(void)
{
    struct mpt_keys c, a;
    uint8_t k1[MPT_KEY_LEN], k2[MPT_KEY_LEN], d[100], out[100];
    size_t n;

    if (!mpt_cipher_aes_available()) {
        printf("AES-256-GCM not available on this CPU: ChaCha20-Poly1305 only\n");
        return;
    }
    bit_flips_with(MPT_CIPHER_AES256GCM);
    fill(k1, sizeof(k1), 21);
    fill(k2, sizeof(k2), 22);
    mpt_keys_init(&c, k1, k2, MPT_CIPHER_CHACHA20, UINT64_MAX);
    mpt_keys_init(&a, k2, k1, MPT_CIPHER_AES256GCM, UINT64_MAX);
    fill(mpt_data_inner(d), 30, 3);
    n = mpt_data_seal(&c, 5, d, 30);
    ASSERT_EQ(mpt_data_open(&a, d, n, out), -MPT_DROP_AUTH);
    mpt_keys_init(&a, k2, k1, MPT_CIPHER_CHACHA20, UINT64_MAX);
    ASSERT_EQ(mpt_data_open(&a, d, n, out), 30);
}

static void wrong_counter(void)
{
    uint8_t key[MPT_KEY_LEN], pt[64], ct[64 + MPT_TAG_LEN], out[64];

    fill(key, sizeof(key), 4);
    fill(pt, sizeof(pt), 8);
    mpt_aead_seal(key, 42, NULL, 0, pt, sizeof(pt), ct);
    ASSERT_EQ(mpt_aead_open(key, 42, NULL, 0, ct, sizeof(ct), out), 0);
    ASSERT_EQ(mpt_aead_open(key, 43, NULL, 0, ct, sizeof(ct), out), -1);
    ASSERT_EQ(mpt_aead_open(key, 41, NULL, 0, ct, sizeof(ct), out), -1);
    ASSERT_EQ(mpt_aead_open(key, 42ULL | 1ULL << 63, NULL, 0, ct, sizeof(ct), out), -1);
}

static void wrong_key(void)
{
    uint8_t key[MPT_KEY_LEN], other[MPT_KEY_LEN], pt[64], ct[64 + MPT_TAG_LEN], out[64];

    fill(key, sizeof(key), 4);
    fill(pt, sizeof(pt), 8);
    mpt_aead_seal(key, 7, NULL, 0, pt, sizeof(pt), ct);
    for (size_t i = 0; i < MPT_KEY_LEN * 8; i++) {
        memcpy(other, key, sizeof(key));
        other[i / 8] ^= (uint8_t)(1u << (i % 8));
        ASSERT_EQ(mpt_aead_open(other, 7, NULL, 0, ct, sizeof(ct), out), -1);
    }
}

static void data_counters(void)
{
    struct mpt_keys a, b;
    uint8_t k1[MPT_KEY_LEN], k2[MPT_KEY_LEN], d[5][100], out[100];
    size_t n[5];

    fill(k1, sizeof(k1), 11);
    fill(k2, sizeof(k2), 12);
    mpt_keys_init(&a, k1, k2, MPT_CIPHER_CHACHA20, UINT64_MAX);
    mpt_keys_init(&b, k2, k1, MPT_CIPHER_CHACHA20, UINT64_MAX);
    for (int i = 0; i < 5; i++) {
        fill(mpt_data_inner(d[i]), 10, (uint8_t)i);
        n[i] = mpt_data_seal(&a, 9, d[i], 10);
        ASSERT(mpt_get64(d[i] + MPT_DATA_OFF_CTR) == (uint64_t)i + 1);
        ASSERT_EQ(mpt_wire_classify(d[i], n[i]), MPT_TYPE_DATA);
    }
    for (int i = 4; i >= 0; i--) {
        ASSERT_EQ(mpt_data_open(&b, d[i], n[i], out), 10);
        uint8_t want[10];
        fill(want, 10, (uint8_t)i);
        ASSERT_MEM_EQ(out, want, 10);
    }
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(mpt_data_open(&b, d[i], n[i], out), MPT_OPEN_DUPLICATE);
    /* The sender's own key does not open its datagrams (one key per direction). */
    ASSERT_EQ(mpt_data_open(&a, d[0], n[0], out), -MPT_DROP_AUTH);
    mpt_keys_wipe(&a);
    mpt_keys_wipe(&b);
}

static const struct task_case cases[] = {
    {"round_trip", round_trip},
    {"bit_flips", bit_flips},
    {"wrong_counter", wrong_counter},
    {"wrong_key", wrong_key},
    {"data_counters", data_counters},
    {"aes_gcm", aes_gcm},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
