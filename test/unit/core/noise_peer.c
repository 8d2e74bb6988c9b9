/* One side of a Noise handshake (core/noise) driven line by line, for tests against another
 * implementation (noise_interop.py).
 *
 *   noise_peer nnpsk0|ikpsk2 initiator|responder [s=HEX] [rs=HEX] [psk=HEX] [e=HEX] [prologue=HEX]
 *
 * e= fixes this side's ephemeral private key (deterministic transcripts). Commands on standard
 * input, one a line; HEX may be empty or `-' for no bytes; each is answered by one line,
 * `ok [HEX]' or `err CODE' (a negative errno):
 *   write HEX   the next handshake message with that payload -> ok MESSAGE
 *   read HEX    the peer's next handshake message            -> ok PAYLOAD
 *   psk HEX     sets the pre-shared key                      -> ok
 *   rs          the remote static key                        -> ok KEY
 *   hash        the handshake hash, once done                -> ok HASH
 *   split       Split(): the transport CipherStates          -> ok
 *   send HEX    a transport message                          -> ok CIPHERTEXT
 *   recv HEX    the peer's transport message                 -> ok PLAINTEXT
 * Exit status 0 at end of input, 2 on a usage error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/noise.h"

#define BUF (MPT_NOISE_MAX_MSG + 64)

static char line[2 * BUF + 64];
static uint8_t in[BUF], out[BUF];

static int unhex(uint8_t *dst, size_t cap, const char *hex, size_t *len)
{
    size_t n = strlen(hex);

    if (strcmp(hex, "-") == 0)
        n = 0;
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        dst[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static void answer(int rc, const uint8_t *p, size_t n)
{
    if (rc < 0) {
        printf("err %d\n", rc);
    } else {
        printf("ok ");
        for (size_t i = 0; i < n; i++)
            printf("%02x", p[i]);
        printf("\n");
    }
    fflush(stdout);
}

static int key_arg(const char *arg, const char *name, uint8_t key[32], const uint8_t **set)
{
    size_t nlen = strlen(name), len;

    if (strncmp(arg, name, nlen) != 0 || arg[nlen] != '=')
        return 0;
    if (unhex(key, 32, arg + nlen + 1, &len) || len != 32) {
        fprintf(stderr, "noise_peer: %s: 32 bytes in hex\n", name);
        exit(2);
    }
    *set = key;
    return 1;
}

int main(int argc, char **argv)
{
    static uint8_t s[32], rs[32], psk[32], e[32], prologue[1024];
    struct mpt_noise_handshake hs;
    struct mpt_noise_cipher tx, rx;
    struct mpt_noise_params p;
    const uint8_t *fixed_e = NULL;
    size_t len;
    int rc;

    memset(&p, 0, sizeof(p));
    if (argc < 3 || (strcmp(argv[1], "nnpsk0") && strcmp(argv[1], "ikpsk2")) ||
        (strcmp(argv[2], "initiator") && strcmp(argv[2], "responder"))) {
        fprintf(stderr, "usage: noise_peer nnpsk0|ikpsk2 initiator|responder [KEY=HEX]...\n");
        return 2;
    }
    p.pattern = strcmp(argv[1], "nnpsk0") == 0 ? MPT_NOISE_NNPSK0 : MPT_NOISE_IKPSK2;
    p.initiator = strcmp(argv[2], "initiator") == 0;
    for (int i = 3; i < argc; i++) {
        if (key_arg(argv[i], "s", s, &p.s) || key_arg(argv[i], "rs", rs, &p.rs) ||
            key_arg(argv[i], "psk", psk, &p.psk) || key_arg(argv[i], "e", e, &fixed_e))
            continue;
        if (strncmp(argv[i], "prologue=", 9) == 0 &&
            unhex(prologue, sizeof(prologue), argv[i] + 9, &p.prologue_len) == 0) {
            p.prologue = prologue;
            continue;
        }
        fprintf(stderr, "noise_peer: bad argument `%s'\n", argv[i]);
        return 2;
    }
    if ((rc = mpt_noise_handshake_init(&hs, &p)) != 0) {
        fprintf(stderr, "noise_peer: init: %d\n", rc);
        return 2;
    }
    if (fixed_e)
        mpt_noise_handshake_fix_ephemeral(&hs, fixed_e);
    memset(&tx, 0, sizeof(tx));
    memset(&rx, 0, sizeof(rx));
    while (fgets(line, sizeof(line), stdin)) {
        char *cmd = line, *arg;
        line[strcspn(line, "\r\n")] = 0;
        arg = strchr(line, ' ');
        if (arg)
            *arg++ = 0;
        else
            arg = "";
        if (strcmp(cmd, "rs") == 0) {
            const uint8_t *k = mpt_noise_handshake_remote_static(&hs);
            answer(k ? 0 : -EINVAL, k, 32);
            continue;
        }
        if (strcmp(cmd, "hash") == 0) {
            const uint8_t *h = mpt_noise_handshake_hash(&hs);
            answer(h ? 0 : -EINVAL, h, MPT_NOISE_HASH_LEN);
            continue;
        }
        if (strcmp(cmd, "split") == 0) {
            answer(mpt_noise_handshake_split(&hs, &tx, &rx), NULL, 0);
            continue;
        }
        if (unhex(in, sizeof(in), arg, &len)) {
            answer(-EINVAL, NULL, 0);
            continue;
        }
        if (strcmp(cmd, "write") == 0)
            rc = mpt_noise_handshake_write(&hs, in, len, out, sizeof(out));
        else if (strcmp(cmd, "read") == 0)
            rc = mpt_noise_handshake_read(&hs, in, len, out, sizeof(out));
        else if (strcmp(cmd, "send") == 0)
            rc = mpt_noise_cipher_encrypt(&tx, NULL, 0, in, len, out, sizeof(out));
        else if (strcmp(cmd, "recv") == 0)
            rc = mpt_noise_cipher_decrypt(&rx, NULL, 0, in, len, out, sizeof(out));
        else if (strcmp(cmd, "psk") == 0 && len == 32)
            rc = mpt_noise_handshake_set_psk(&hs, in) ? -EINVAL : 0;
        else
            rc = -EINVAL;
        answer(rc, out, rc > 0 ? (size_t)rc : 0);
    }
    mpt_noise_handshake_wipe(&hs);
    mpt_noise_cipher_wipe(&tx);
    mpt_noise_cipher_wipe(&rx);
    return 0;
}
