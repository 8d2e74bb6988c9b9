/* core/noise: Noise_NNpsk0 and Noise_IKpsk2 (25519, ChaChaPoly, BLAKE2b) against published test
 * vectors, between our own two sides, and under hostile input. core/NOISE.md says what is tested
 * where. */
#include <errno.h>
#include <sodium.h>

#include "core/noise.h"
#include "task.h"

#define MAXMSG MPT_NOISE_MAX_MSG

/* The vectors file of Debian's golang-github-flynn-noise-dev: every pattern, cipher and hash. */
#define VECTORS_FILE "/usr/share/gocode/src/github.com/flynn/noise/vectors.txt"

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;

    ASSERT(strlen(hex) % 2 == 0 && n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ASSERT(sscanf(hex + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 29);
}

/* A test vector: hex strings, "" where absent; msgs are payload, ciphertext pairs. */
struct vector {
    char name[64];
    char init_static[65], resp_static[65], init_e[65], resp_e[65], psk[65];
    char prologue[512];
    int nmsgs;
    char payload[8][256];
    char ct[8][1024];
};

static int pattern_of(const char *name)
{
    if (strcmp(name, mpt_noise_protocol_name(MPT_NOISE_NNPSK0)) == 0)
        return MPT_NOISE_NNPSK0;
    if (strcmp(name, mpt_noise_protocol_name(MPT_NOISE_IKPSK2)) == 0)
        return MPT_NOISE_IKPSK2;
    return -1;
}

/* Runs a vector with our code on both sides: each message must equal the vector's bytes and
 * read back to its payload; messages after the handshake go through the split CipherStates,
 * initiator first, then alternating. */
static void run_vector(const struct vector *v)
{
    struct mpt_noise_handshake hi, hr;
    struct mpt_noise_cipher is, ir, rs, rr;
    struct mpt_noise_params pi, pr;
    uint8_t si[32], sr[32], sr_pub[32], ei[32], er[32], psk[32], prologue[256];
    static uint8_t pay[256], want[1024], msg[1024], out[1024];
    size_t plen, wlen;
    int pat = pattern_of(v->name), n;

    ASSERT(pat >= 0);
    memset(&pi, 0, sizeof(pi));
    pi.pattern = pat;
    pi.initiator = 1;
    pi.prologue = prologue;
    pi.prologue_len = unhex(prologue, sizeof(prologue), v->prologue);
    pi.psk = psk;
    unhex(psk, 32, v->psk);
    unhex(ei, 32, v->init_e);
    unhex(er, 32, v->resp_e);
    pr = pi;
    pr.initiator = 0;
    if (pat == MPT_NOISE_IKPSK2) {
        unhex(si, 32, v->init_static);
        unhex(sr, 32, v->resp_static);
        ASSERT_EQ(mpt_noise_pubkey(sr_pub, sr), 0);
        pi.s = si;
        pi.rs = sr_pub;
        pr.s = sr;
        pr.psk = NULL; /* as a server would: known once the first message names the peer */
    }
    ASSERT_EQ(mpt_noise_handshake_init(&hi, &pi), 0);
    ASSERT_EQ(mpt_noise_handshake_init(&hr, &pr), 0);
    ASSERT_EQ(mpt_noise_handshake_fix_ephemeral(&hi, ei), 0);
    ASSERT_EQ(mpt_noise_handshake_fix_ephemeral(&hr, er), 0);
    for (int i = 0; i < v->nmsgs; i++) {
        struct mpt_noise_handshake *w = i % 2 ? &hr : &hi, *r = i % 2 ? &hi : &hr;
        plen = unhex(pay, sizeof(pay), v->payload[i]);
        wlen = unhex(want, sizeof(want), v->ct[i]);
        if (i < 2) {
            ASSERT_EQ(mpt_noise_handshake_writing(w), 1);
            ASSERT_EQ(mpt_noise_handshake_msg_len(w, plen), wlen);
            n = mpt_noise_handshake_write(w, pay, plen, msg, sizeof(msg));
            ASSERT_EQ(n, wlen);
            ASSERT_MEM_EQ(msg, want, wlen);
            if (pat == MPT_NOISE_IKPSK2 && i == 0) {
                ASSERT(mpt_noise_handshake_remote_static(&hr) == NULL);
            }
            n = mpt_noise_handshake_read(r, msg, wlen, out, sizeof(out));
            ASSERT_EQ(n, plen);
            ASSERT_MEM_EQ(out, pay, plen);
            if (pat == MPT_NOISE_IKPSK2 && i == 0) {
                uint8_t si_pub[32];
                ASSERT_EQ(mpt_noise_pubkey(si_pub, si), 0);
                ASSERT(mpt_noise_handshake_remote_static(&hr) != NULL);
                ASSERT_MEM_EQ(mpt_noise_handshake_remote_static(&hr), si_pub, 32);
                ASSERT_EQ(mpt_noise_handshake_set_psk(&hr, psk), 0);
            }
            if (i == 1) {
                ASSERT_EQ(hi.state, MPT_NOISE_HS_DONE);
                ASSERT_EQ(hr.state, MPT_NOISE_HS_DONE);
                ASSERT_MEM_EQ(mpt_noise_handshake_hash(&hi), mpt_noise_handshake_hash(&hr), 64);
                ASSERT_EQ(mpt_noise_handshake_split(&hi, &is, &ir), 0);
                ASSERT_EQ(mpt_noise_handshake_split(&hr, &rs, &rr), 0);
                ASSERT_EQ(hi.state, MPT_NOISE_HS_EMPTY);
                ASSERT(sodium_is_zero((const uint8_t *)&hi, sizeof(hi)));
            }
            continue;
        }
        struct mpt_noise_cipher *enc = i % 2 ? &rs : &is, *dec = i % 2 ? &ir : &rr;
        n = mpt_noise_cipher_encrypt(enc, NULL, 0, pay, plen, msg, sizeof(msg));
        ASSERT_EQ(n, wlen);
        ASSERT_MEM_EQ(msg, want, wlen);
        n = mpt_noise_cipher_decrypt(dec, NULL, 0, msg, wlen, out, sizeof(out));
        ASSERT_EQ(n, plen);
        ASSERT_MEM_EQ(out, pay, plen);
    }
    mpt_noise_cipher_wipe(&is);
    mpt_noise_cipher_wipe(&ir);
    mpt_noise_cipher_wipe(&rs);
    mpt_noise_cipher_wipe(&rr);
}

/* One vector of each of our protocols from the published set (prologue and payloads present). */
static void vectors(void)
{
    static const struct vector nn = {
        .name = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b",
        .init_e = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
        .resp_e = "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60",
        .prologue = "6e6f74736563726574",
        .psk = "2176657279736563726574766572797365637265747665727973656372657421",
        .nmsgs = 4,
        .payload = {"746573745f6d73675f30", "746573745f6d73675f31",
                    "79656c6c6f777375626d6172696e65", "7375626d6172696e6579656c6c6f77"},
        .ct = {"358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd1662544291e8e0931ad8b1"
               "6a78a94b1c635dbd71a5ac125379e105b3de",
               "64b101b1d0be5a8704bd078f9895001fc03e8e9f9522f188dd128d9846d48466871d4367360b3a22"
               "ef39d1de21e1ff59b1753271ca93e5511e28",
               "7811d68572ef1cef95b8a84abaa2c04c52c65b6bc7717b20d7d0937fbdd792",
               "ccf5caaaee5fd10189d055e7c7e73eff5c50c424c5186ba83af5921864b95f"},
    };
    static const struct vector ik = {
        .name = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b",
        .init_static = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        .resp_static = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
        .init_e = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
        .resp_e = "4142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f60",
        .prologue = "6e6f74736563726574",
        .psk = "2176657279736563726574766572797365637265747665727973656372657421",
        .nmsgs = 4,
        .payload = {"746573745f6d73675f30", "746573745f6d73675f31",
                    "79656c6c6f777375626d6172696e65", "7375626d6172696e6579656c6c6f77"},
        .ct = {"358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254b62f8e1b309574de"
               "35d98d9a4088e6919c1849b2c5254dcbca5494537cb4a7295084dc6a278b90d5443be18249717177"
               "e07148a37250771da813c0db249d31475e830bbcc50ce9aeab43",
               "64b101b1d0be5a8704bd078f9895001fc03e8e9f9522f188dd128d9846d4846655590e80a4cbf7b1"
               "1a803755ea3f2276bcb10438d218a79e05cf",
               "f4c177d26066f6951689eeb7dba6199b0a71514482d9fd58cab9c9da5ebe95",
               "15e2992826a7c63bdc9c36c422f0625aa3cddb283aaf9aea44444d8ffdbe82"},
    };
    run_vector(&nn);
    run_vector(&ik);
}

static void set(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    ASSERT(n < cap);
    memcpy(dst, src, n + 1);
}

/* Every vector for our two protocol names in the installed vectors file (skips with 77 when the
 * package is not installed). */
static int vectors_file_run(const char *path)
{
    static struct vector v;
    static char line[4096];
    FILE *f = fopen(path, "r");
    int in = 0, ran[2] = {0, 0};

    if (!f) {
        printf("skip: %s not found (Debian package golang-github-flynn-noise-dev)\n", path);
        return 77;
    }
    for (;;) {
        char *got = fgets(line, sizeof(line), f), *eq;
        size_t len = got ? strlen(line) : 0;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!got || len == 0) {
            if (in) {
                run_vector(&v);
                ran[pattern_of(v.name)]++;
            }
            in = 0;
            if (!got)
                break;
            continue;
        }
        if (!(eq = strchr(line, '=')))
            continue;
        *eq++ = 0;
        if (strcmp(line, "handshake") == 0) {
            memset(&v, 0, sizeof(v));
            in = pattern_of(eq) >= 0;
            if (in)
                set(v.name, sizeof(v.name), eq);
            continue;
        }
        if (!in)
            continue;
        ASSERT(strlen(eq) < sizeof(v.ct[0]));
        if (strcmp(line, "init_static") == 0)
            set(v.init_static, sizeof(v.init_static), eq);
        else if (strcmp(line, "resp_static") == 0)
            set(v.resp_static, sizeof(v.resp_static), eq);
        else if (strcmp(line, "gen_init_ephemeral") == 0)
            set(v.init_e, sizeof(v.init_e), eq);
        else if (strcmp(line, "gen_resp_ephemeral") == 0)
            set(v.resp_e, sizeof(v.resp_e), eq);
        else if (strcmp(line, "prologue") == 0)
            set(v.prologue, sizeof(v.prologue), eq);
        else if (strcmp(line, "preshared_key") == 0)
            set(v.psk, sizeof(v.psk), eq);
        else if (strncmp(line, "msg_", 4) == 0) {
            int i = atoi(line + 4);
            ASSERT(i >= 0 && i < 8);
            if (strstr(line, "_payload"))
                set(v.payload[i], sizeof(v.payload[i]), eq);
            else
                set(v.ct[i], sizeof(v.ct[i]), eq);
            if (i + 1 > v.nmsgs)
                v.nmsgs = i + 1;
        }
    }
    fclose(f);
    printf("vectors: %d of %s, %d of %s (at least 1 each)\n", ran[0],
           mpt_noise_protocol_name(MPT_NOISE_NNPSK0), ran[1],
           mpt_noise_protocol_name(MPT_NOISE_IKPSK2));
    ASSERT_GE(ran[0], 1);
    ASSERT_GE(ran[1], 1);
    return 0;
}

/* ---- Our two sides, random keys ---- */

struct pair {
    struct mpt_noise_handshake i, r;
    uint8_t si[32], si_pub[32], sr[32], sr_pub[32], psk[32];
};

static void pair_init(struct pair *p, int pattern, const uint8_t *prologue, size_t plen)
{
    struct mpt_noise_params pi, pr;

    randombytes_buf(p->si, 32);
    randombytes_buf(p->sr, 32);
    randombytes_buf(p->psk, 32);
    ASSERT_EQ(mpt_noise_pubkey(p->si_pub, p->si), 0);
    ASSERT_EQ(mpt_noise_pubkey(p->sr_pub, p->sr), 0);
    memset(&pi, 0, sizeof(pi));
    pi.pattern = pattern;
    pi.initiator = 1;
    pi.prologue = prologue;
    pi.prologue_len = plen;
    pi.psk = p->psk;
    pr = pi;
    pr.initiator = 0;
    if (pattern == MPT_NOISE_IKPSK2) {
        pi.s = p->si;
        pi.rs = p->sr_pub;
        pr.s = p->sr;
    }
    ASSERT_EQ(mpt_noise_handshake_init(&p->i, &pi), 0);
    ASSERT_EQ(mpt_noise_handshake_init(&p->r, &pr), 0);
}

/* 1 if every byte of the handshake but its state is zero, and the state says failed. */
static int wiped_failed(const struct mpt_noise_handshake *hs)
{
    struct mpt_noise_handshake z;

    memset(&z, 0, sizeof(z));
    z.state = MPT_NOISE_HS_FAILED;
    return memcmp(&z, hs, sizeof(z)) == 0;
}

static void round_trip(void)
{
    static uint8_t msg[MAXMSG], out[MAXMSG], pay[MAXMSG];
    struct mpt_noise_cipher is, ir, rs, rr;
    uint8_t prologue[40];
    int n;

    fill(prologue, sizeof(prologue), 7);
    for (int pat = 0; pat < 2; pat++) {
        for (int k = 0; k < 4; k++) {
            struct pair p;
            size_t plen = (size_t)k * 50;
            pair_init(&p, pat, prologue, (size_t)k * 10);
            if (k == 3) /* the largest message the framework allows */
                plen = MAXMSG - mpt_noise_handshake_msg_len(&p.i, 0);
            fill(pay, plen, (uint8_t)k);
            n = mpt_noise_handshake_write(&p.i, pay, plen, msg, sizeof(msg));
            ASSERT_EQ(n, plen + (pat == MPT_NOISE_NNPSK0 ? 48 : 96));
            ASSERT_EQ(mpt_noise_handshake_read(&p.r, msg, (size_t)n, out, sizeof(out)), plen);
            ASSERT_MEM_EQ(out, pay, plen);
            if (k == 3)
                plen = MAXMSG - 48;
            n = mpt_noise_handshake_write(&p.r, pay, plen, msg, sizeof(msg));
            ASSERT_EQ(n, plen + 48);
            ASSERT_EQ(mpt_noise_handshake_read(&p.i, msg, (size_t)n, out, sizeof(out)), plen);
            ASSERT_MEM_EQ(out, pay, plen);
            if (pat == MPT_NOISE_IKPSK2)
                ASSERT_MEM_EQ(mpt_noise_handshake_remote_static(&p.r), p.si_pub, 32);
            ASSERT_MEM_EQ(mpt_noise_handshake_hash(&p.i), mpt_noise_handshake_hash(&p.r), 64);
            ASSERT_EQ(mpt_noise_handshake_split(&p.i, &is, &ir), 0);
            ASSERT_EQ(mpt_noise_handshake_split(&p.r, &rs, &rr), 0);
            ASSERT_MEM_EQ(is.k, rr.k, 32);
            ASSERT_MEM_EQ(ir.k, rs.k, 32);
            ASSERT(memcmp(is.k, ir.k, 32) != 0);
            for (int m = 0; m < 10; m++) {
                size_t l = m == 9 ? MAXMSG - 16 : (size_t)m * 7;
                fill(pay, l, (uint8_t)m);
                n = mpt_noise_cipher_encrypt(m % 2 ? &rs : &is, prologue, 5, pay, l, msg,
                                             sizeof(msg));
                ASSERT_EQ(n, l + 16);
                ASSERT_EQ(mpt_noise_cipher_decrypt(m % 2 ? &ir : &rr, prologue, 5, msg, (size_t)n,
                                                   out, sizeof(out)),
                          l);
                ASSERT_MEM_EQ(out, pay, l);
            }
            /* In place. */
            fill(msg, 100, 1);
            ASSERT_EQ(mpt_noise_cipher_encrypt(&is, NULL, 0, msg, 100, msg, sizeof(msg)), 116);
            ASSERT_EQ(mpt_noise_cipher_decrypt(&rr, NULL, 0, msg, 116, msg, sizeof(msg)), 100);
            fill(pay, 100, 1);
            ASSERT_MEM_EQ(msg, pay, 100);
        }
    }
}

/* Every single bit flipped in each handshake message, in turn: the reader fails and is wiped. */
static void bit_flips(void)
{
    static uint8_t m1[200], m2[200], copy[200], out[200];

    for (int pat = 0; pat < 2; pat++) {
        struct pair base, p;
        uint8_t pay[7] = {1, 2, 3, 4, 5, 6, 7};
        int n1, n2, count = 0;

        pair_init(&base, pat, (const uint8_t *)"pro", 3);
        p = base;
        n1 = mpt_noise_handshake_write(&p.i, pay, sizeof(pay), m1, sizeof(m1));
        ASSERT_GT(n1, 0);
        for (int bit = 0; bit < n1 * 8; bit++) {
            struct mpt_noise_handshake r = base.r;
            memcpy(copy, m1, (size_t)n1);
            copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = mpt_noise_handshake_read(&r, copy, (size_t)n1, out, sizeof(out));
            ASSERT(rc == -EBADMSG || rc == -EPROTO);
            ASSERT(wiped_failed(&r));
            ASSERT_EQ(mpt_noise_handshake_read(&r, m1, (size_t)n1, out, sizeof(out)), -EINVAL);
            count++;
        }
        ASSERT_EQ(mpt_noise_handshake_read(&p.r, m1, (size_t)n1, out, sizeof(out)), sizeof(pay));
        n2 = mpt_noise_handshake_write(&p.r, pay, sizeof(pay), m2, sizeof(m2));
        ASSERT_GT(n2, 0);
        for (int bit = 0; bit < n2 * 8; bit++) {
            struct mpt_noise_handshake i = p.i;
            memcpy(copy, m2, (size_t)n2);
            copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            int rc = mpt_noise_handshake_read(&i, copy, (size_t)n2, out, sizeof(out));
            ASSERT(rc == -EBADMSG || rc == -EPROTO);
            ASSERT(wiped_failed(&i));
            count++;
        }
        ASSERT_EQ(mpt_noise_handshake_read(&p.i, m2, (size_t)n2, out, sizeof(out)), sizeof(pay));
        printf("%s: %d altered messages, all refused\n", mpt_noise_protocol_name(pat), count);
        mpt_noise_handshake_wipe(&p.i);
        mpt_noise_handshake_wipe(&p.r);
    }
}

/* A wrong psk, a wrong prologue, a wrong responder key: the handshake fails where the pattern
 * first authenticates (NNpsk0: the first message; IKpsk2: psk only in the second). */
static void wrong_keys(void)
{
    uint8_t m[200], out[200];
    int n;

    for (int pat = 0; pat < 2; pat++) {
        for (int what = 0; what < 3; what++) {
            struct pair p;
            pair_init(&p, pat, (const uint8_t *)"pro", 3);
            if (what == 0) {
                p.psk[0] ^= 1;
                ASSERT_EQ(mpt_noise_handshake_set_psk(&p.r, p.psk), 0);
            } else if (what == 1) {
                struct mpt_noise_params pr = {.pattern = pat,
                                              .prologue = (const uint8_t *)"prx",
                                              .prologue_len = 3,
                                              .s = pat == MPT_NOISE_IKPSK2 ? p.sr : NULL,
                                              .psk = p.psk};
                ASSERT_EQ(mpt_noise_handshake_init(&p.r, &pr), 0);
            } else {
                if (pat == MPT_NOISE_NNPSK0)
                    continue;
                p.sr_pub[3] ^= 1;
                struct mpt_noise_params pi = {.pattern = pat,
                                              .initiator = 1,
                                              .prologue = (const uint8_t *)"pro",
                                              .prologue_len = 3,
                                              .s = p.si,
                                              .rs = p.sr_pub,
                                              .psk = p.psk};
                ASSERT_EQ(mpt_noise_handshake_init(&p.i, &pi), 0);
            }
            n = mpt_noise_handshake_write(&p.i, NULL, 0, m, sizeof(m));
            ASSERT_GT(n, 0);
            int rc = mpt_noise_handshake_read(&p.r, m, (size_t)n, out, sizeof(out));
            if (pat == MPT_NOISE_IKPSK2 && what == 0) {
                /* The psk enters at the second message: the initiator refuses it. */
                ASSERT_EQ(rc, 0);
                n = mpt_noise_handshake_write(&p.r, NULL, 0, m, sizeof(m));
                ASSERT_GT(n, 0);
                ASSERT_EQ(mpt_noise_handshake_read(&p.i, m, (size_t)n, out, sizeof(out)), -EBADMSG);
                ASSERT(wiped_failed(&p.i));
                continue;
            }
            ASSERT_EQ(rc, -EBADMSG);
            ASSERT(wiped_failed(&p.r));
        }
    }
}

/* Points of small order (X25519 results all zero): refused with -EPROTO wherever the DH is. */
static void zero_dh(void)
{
    static const char *low[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    };
    uint8_t pt[32], m[200], out[200];

    for (size_t k = 0; k < sizeof(low) / sizeof(low[0]); k++) {
        struct pair p;
        unhex(pt, 32, low[k]);
        /* NNpsk0 initiator: a second message whose e has low order (ee before any tag). */
        pair_init(&p, MPT_NOISE_NNPSK0, NULL, 0);
        ASSERT_GT(mpt_noise_handshake_write(&p.i, NULL, 0, m, sizeof(m)), 0);
        memcpy(m, pt, 32);
        memset(m + 32, 0, 16);
        ASSERT_EQ(mpt_noise_handshake_read(&p.i, m, 48, out, sizeof(out)), -EPROTO);
        ASSERT(wiped_failed(&p.i));
        /* IKpsk2 responder: a first message whose e has low order (es). */
        pair_init(&p, MPT_NOISE_IKPSK2, NULL, 0);
        memset(m, 0, 96);
        memcpy(m, pt, 32);
        ASSERT_EQ(mpt_noise_handshake_read(&p.r, m, 96, out, sizeof(out)), -EPROTO);
        ASSERT(wiped_failed(&p.r));
        /* IKpsk2 initiator told a low-order responder key: es fails as it writes. */
        struct mpt_noise_params pi = {
            .pattern = MPT_NOISE_IKPSK2, .initiator = 1, .s = p.si, .rs = pt, .psk = p.psk};
        ASSERT_EQ(mpt_noise_handshake_init(&p.i, &pi), 0);
        ASSERT_EQ(mpt_noise_handshake_write(&p.i, NULL, 0, m, sizeof(m)), -EPROTO);
        ASSERT(wiped_failed(&p.i));
        /* IKpsk2 responder, first message from a peer whose static key has low order (ss):
         * built by an initiator that we make believe its own public key is that point. */
        pair_init(&p, MPT_NOISE_IKPSK2, NULL, 0);
        memcpy(p.i.s_pub, pt, 32);
        int n = mpt_noise_handshake_write(&p.i, NULL, 0, m, sizeof(m));
        ASSERT_EQ(n, 96);
        ASSERT_EQ(mpt_noise_handshake_read(&p.r, m, 96, out, sizeof(out)), -EPROTO);
        ASSERT(wiped_failed(&p.r));
    }
    printf("%zu low-order points refused in 4 positions each\n", sizeof(low) / sizeof(low[0]));
}

/* Lengths: every too-short message, one past the framework's limit, a payload buffer too small;
 * a payload that would not fit is refused before anything changes. */
static void lengths(void)
{
    static uint8_t m[MAXMSG + 2], out[MAXMSG];
    struct mpt_noise_cipher a, b;

    for (int pat = 0; pat < 2; pat++) {
        struct pair base, p;
        int n;

        pair_init(&base, pat, NULL, 0);
        p = base;
        size_t min1 = mpt_noise_handshake_msg_len(&p.i, 0);
        ASSERT_EQ(min1, pat == MPT_NOISE_NNPSK0 ? 48 : 96);
        /* Writing: too large for the limit or for the buffer, refused without harm. */
        ASSERT_EQ(mpt_noise_handshake_write(&p.i, out, MAXMSG - min1 + 1, m, sizeof(m)), -EMSGSIZE);
        ASSERT_EQ(mpt_noise_handshake_write(&p.i, out, 10, m, min1 + 9), -EMSGSIZE);
        ASSERT_EQ(p.i.state, MPT_NOISE_HS_RUNNING);
        n = mpt_noise_handshake_write(&p.i, out, 10, m, min1 + 10);
        ASSERT_EQ(n, min1 + 10);
        for (size_t len = 0; len < min1; len++) {
            struct mpt_noise_handshake r = base.r;
            ASSERT_EQ(mpt_noise_handshake_read(&r, m, len, out, sizeof(out)), -EBADMSG);
            ASSERT(wiped_failed(&r));
        }
        {
            struct mpt_noise_handshake r = base.r;
            ASSERT_EQ(mpt_noise_handshake_read(&r, m, MAXMSG + 1, out, sizeof(out)), -EMSGSIZE);
            ASSERT(wiped_failed(&r));
            r = base.r;
            ASSERT_EQ(mpt_noise_handshake_read(&r, m, (size_t)n, out, 9), -EMSGSIZE);
            ASSERT(wiped_failed(&r));
            r = base.r;
            ASSERT_EQ(mpt_noise_handshake_read(&r, m, (size_t)n + 1, out, sizeof(out)), -EBADMSG);
        }
        ASSERT_EQ(mpt_noise_handshake_read(&p.r, m, (size_t)n, out, 10), 10);
        n = mpt_noise_handshake_write(&p.r, NULL, 0, m, sizeof(m));
        ASSERT_EQ(n, 48);
        for (size_t len = 0; len < 48; len++) {
            struct mpt_noise_handshake i = p.i;
            ASSERT_EQ(mpt_noise_handshake_read(&i, m, len, out, sizeof(out)), -EBADMSG);
            ASSERT(wiped_failed(&i));
        }
        ASSERT_EQ(mpt_noise_handshake_read(&p.i, m, 48, NULL, 0), 0);
        ASSERT_EQ(mpt_noise_handshake_split(&p.i, &a, &b), 0);
        mpt_noise_handshake_wipe(&p.r);
    }
    /* Transport. */
    for (size_t len = 0; len < 16; len++)
        ASSERT_EQ(mpt_noise_cipher_decrypt(&b, NULL, 0, m, len, out, sizeof(out)), -EBADMSG);
    ASSERT_EQ(mpt_noise_cipher_decrypt(&b, NULL, 0, m, MAXMSG + 1, out, sizeof(out)), -EMSGSIZE);
    ASSERT_EQ(mpt_noise_cipher_decrypt(&b, NULL, 0, m, 100, out, 83), -EMSGSIZE);
    ASSERT_EQ(mpt_noise_cipher_encrypt(&a, NULL, 0, out, MAXMSG - 15, m, sizeof(m)), -EMSGSIZE);
    ASSERT_EQ(mpt_noise_cipher_encrypt(&a, NULL, 0, out, 100, m, 115), -EMSGSIZE);
    ASSERT_EQ(a.n, 0);
    ASSERT_EQ(b.n, 0);
    mpt_noise_cipher_wipe(&a);
    mpt_noise_cipher_wipe(&b);
    ASSERT(sodium_is_zero((const uint8_t *)&a, sizeof(a)));
}

/* Calls out of turn or without what the pattern needs: -EINVAL. */
static void misuse(void)
{
    struct mpt_noise_handshake hs;
    struct mpt_noise_cipher a, b;
    uint8_t key[32], m[200], out[200];
    struct pair p;

    fill(key, 32, 1);
    struct mpt_noise_params nn_s = {.pattern = MPT_NOISE_NNPSK0, .initiator = 1, .s = key};
    struct mpt_noise_params ik_no_rs = {.pattern = MPT_NOISE_IKPSK2, .initiator = 1, .s = key};
    struct mpt_noise_params ik_resp_rs = {.pattern = MPT_NOISE_IKPSK2, .s = key, .rs = key};
    struct mpt_noise_params bad = {.pattern = 7};
    struct mpt_noise_params bad_prologue = {.pattern = 0, .prologue_len = 3};
    ASSERT_EQ(mpt_noise_handshake_init(&hs, &nn_s), -EINVAL);
    ASSERT_EQ(mpt_noise_handshake_init(&hs, &ik_no_rs), -EINVAL);
    ASSERT_EQ(mpt_noise_handshake_init(&hs, &ik_resp_rs), -EINVAL);
    ASSERT_EQ(mpt_noise_handshake_init(&hs, &bad), -EINVAL);
    ASSERT_EQ(mpt_noise_handshake_init(&hs, &bad_prologue), -EINVAL);
    ASSERT(wiped_failed(&hs));
    ASSERT(mpt_noise_protocol_name(2) == NULL);

    pair_init(&p, MPT_NOISE_NNPSK0, NULL, 0);
    ASSERT_EQ(mpt_noise_handshake_writing(&p.r), 0);
    ASSERT_EQ(mpt_noise_handshake_write(&p.r, NULL, 0, m, sizeof(m)), -EINVAL);
    ASSERT_EQ(mpt_noise_handshake_read(&p.i, m, 48, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(mpt_noise_handshake_split(&p.i, &a, &b), -EINVAL);
    ASSERT(mpt_noise_handshake_hash(&p.i) == NULL);
    ASSERT_EQ(p.i.state, MPT_NOISE_HS_RUNNING);

    /* No psk given: refused without harm, then given. */
    struct mpt_noise_params nopsk = {.pattern = MPT_NOISE_NNPSK0, .initiator = 1};
    struct mpt_noise_handshake hr;
    ASSERT_EQ(mpt_noise_handshake_init(&hs, &nopsk), 0);
    nopsk.initiator = 0;
    ASSERT_EQ(mpt_noise_handshake_init(&hr, &nopsk), 0);
    ASSERT_EQ(mpt_noise_handshake_write(&hs, NULL, 0, m, sizeof(m)), -EINVAL);
    ASSERT_EQ(hs.state, MPT_NOISE_HS_RUNNING);
    ASSERT_EQ(mpt_noise_handshake_set_psk(&hs, key), 0);
    ASSERT_EQ(mpt_noise_handshake_write(&hs, NULL, 0, m, sizeof(m)), 48);
    ASSERT_EQ(mpt_noise_handshake_read(&hr, m, 48, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(hr.state, MPT_NOISE_HS_RUNNING);
    ASSERT_EQ(mpt_noise_handshake_set_psk(&hr, key), 0);
    ASSERT_EQ(mpt_noise_handshake_read(&hr, m, 48, out, sizeof(out)), 0);
    mpt_noise_handshake_wipe(&hr);
    /* A failed handshake takes nothing more. */
    hs.state = MPT_NOISE_HS_FAILED;
    ASSERT_EQ(mpt_noise_handshake_set_psk(&hs, key), -EINVAL);
    ASSERT_EQ(mpt_noise_handshake_fix_ephemeral(&hs, key), -EINVAL);

    memset(&a, 0, sizeof(a));
    ASSERT_EQ(mpt_noise_cipher_encrypt(&a, NULL, 0, m, 1, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(mpt_noise_cipher_decrypt(&a, NULL, 0, m, 17, out, sizeof(out)), -EINVAL);
    ASSERT_EQ(mpt_noise_cipher_rekey(&a), -EINVAL);
    mpt_noise_handshake_wipe(&p.i);
    mpt_noise_handshake_wipe(&p.r);
    mpt_noise_handshake_wipe(NULL);
    mpt_noise_cipher_wipe(NULL);
}

/* Transport: an altered message fails and leaves the state as it was; nonces set out of order;
 * rekeying on both sides; the last nonce is reserved. */
static void transport(void)
{
    struct mpt_noise_cipher is, ir, rs, rr;
    uint8_t m[5][64], out[64], copy[64];
    struct pair p;
    int n[5];

    pair_init(&p, MPT_NOISE_NNPSK0, NULL, 0);
    ASSERT_GT(mpt_noise_handshake_write(&p.i, NULL, 0, m[0], 64), 0);
    ASSERT_EQ(mpt_noise_handshake_read(&p.r, m[0], 48, out, 64), 0);
    ASSERT_GT(mpt_noise_handshake_write(&p.r, NULL, 0, m[0], 64), 0);
    ASSERT_EQ(mpt_noise_handshake_read(&p.i, m[0], 48, out, 64), 0);
    ASSERT_EQ(mpt_noise_handshake_split(&p.i, &is, &ir), 0);
    ASSERT_EQ(mpt_noise_handshake_split(&p.r, &rs, &rr), 0);
    for (int i = 0; i < 5; i++) {
        uint8_t pt[20];
        fill(pt, 20, (uint8_t)i);
        n[i] = mpt_noise_cipher_encrypt(&is, (const uint8_t *)"ad", 2, pt, 20, m[i], 64);
        ASSERT_EQ(n[i], 36);
    }
    ASSERT_EQ(is.n, 5);
    for (int bit = 0; bit < n[0] * 8; bit++) {
        memcpy(copy, m[0], 36);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ASSERT_EQ(mpt_noise_cipher_decrypt(&rr, (const uint8_t *)"ad", 2, copy, 36, out, 64),
                  -EBADMSG);
        ASSERT_EQ(rr.n, 0);
        ASSERT_EQ(rr.has_key, 1);
    }
    ASSERT_EQ(mpt_noise_cipher_decrypt(&rr, (const uint8_t *)"AD", 2, m[0], 36, out, 64), -EBADMSG);
    ASSERT_EQ(mpt_noise_cipher_decrypt(&rr, (const uint8_t *)"ad", 2, m[0], 36, out, 64), 20);
    /* Out of order with SetNonce; the wrong nonce fails. */
    for (int i = 4; i >= 1; i--) {
        mpt_noise_cipher_set_nonce(&rr, (uint64_t)(5 - i));
        ASSERT_EQ(mpt_noise_cipher_decrypt(&rr, (const uint8_t *)"ad", 2, m[i], 36, out, 64),
                  -EBADMSG);
        mpt_noise_cipher_set_nonce(&rr, (uint64_t)i);
        ASSERT_EQ(mpt_noise_cipher_decrypt(&rr, (const uint8_t *)"ad", 2, m[i], 36, out, 64), 20);
        uint8_t want[20];
        fill(want, 20, (uint8_t)i);
        ASSERT_MEM_EQ(out, want, 20);
    }
    /* Rekey: both sides, then messages still open; the old key is gone. */
    uint8_t old[32];
    memcpy(old, is.k, 32);
    ASSERT_EQ(mpt_noise_cipher_rekey(&is), 0);
    ASSERT_EQ(mpt_noise_cipher_rekey(&rr), 0);
    ASSERT(memcmp(old, is.k, 32) != 0);
    ASSERT_MEM_EQ(is.k, rr.k, 32);
    mpt_noise_cipher_set_nonce(&rr, is.n);
    n[0] = mpt_noise_cipher_encrypt(&is, NULL, 0, out, 3, m[0], 64);
    ASSERT_EQ(mpt_noise_cipher_decrypt(&rr, NULL, 0, m[0], (size_t)n[0], out, 64), 3);
    /* Nonce 2^64 - 1 is never used. */
    mpt_noise_cipher_set_nonce(&is, UINT64_MAX - 1);
    ASSERT_EQ(mpt_noise_cipher_encrypt(&is, NULL, 0, out, 3, m[0], 64), 19);
    ASSERT_EQ(mpt_noise_cipher_encrypt(&is, NULL, 0, out, 3, m[0], 64), -EOVERFLOW);
    mpt_noise_cipher_set_nonce(&rr, UINT64_MAX);
    ASSERT_EQ(mpt_noise_cipher_decrypt(&rr, NULL, 0, m[0], 19, out, 64), -EOVERFLOW);
    mpt_noise_cipher_wipe(&is);
    mpt_noise_cipher_wipe(&ir);
    mpt_noise_cipher_wipe(&rs);
    mpt_noise_cipher_wipe(&rr);
}

/* Two handshakes between the same static keys and psk: random ephemerals, so different session
 * keys (forward secrecy rests on them). */
static void fresh_keys(void)
{
    uint8_t k[2][32], m[128], out[128];
    struct mpt_noise_cipher a, b;
    struct pair base;

    pair_init(&base, MPT_NOISE_IKPSK2, NULL, 0);
    for (int t = 0; t < 2; t++) {
        struct pair p = base;
        ASSERT_EQ(mpt_noise_handshake_write(&p.i, NULL, 0, m, sizeof(m)), 96);
        ASSERT_EQ(mpt_noise_handshake_read(&p.r, m, 96, out, sizeof(out)), 0);
        ASSERT_EQ(mpt_noise_handshake_write(&p.r, NULL, 0, m, sizeof(m)), 48);
        ASSERT_EQ(mpt_noise_handshake_read(&p.i, m, 48, out, sizeof(out)), 0);
        ASSERT_EQ(mpt_noise_handshake_split(&p.i, &a, &b), 0);
        memcpy(k[t], a.k, 32);
        mpt_noise_cipher_wipe(&a);
        mpt_noise_cipher_wipe(&b);
        mpt_noise_handshake_wipe(&p.r);
    }
    ASSERT(memcmp(k[0], k[1], 32) != 0);
}

static const struct task_case cases[] = {
    {"vectors", vectors},       {"round_trip", round_trip},
    {"bit_flips", bit_flips},   {"wrong_keys", wrong_keys},
    {"zero_dh", zero_dh},       {"lengths", lengths},
    {"misuse", misuse},         {"transport", transport},
    {"fresh_keys", fresh_keys}, {NULL, NULL},
};

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    if (argc > 1 && strcmp(argv[1], "vectors_file") == 0)
        return vectors_file_run(argc > 2 ? argv[2] : VECTORS_FILE);
    return task_run(cases, argc, argv);
}
