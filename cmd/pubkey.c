/* mptunnel pubkey: the X25519 public key of a private key read from standard input. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"

/* A key and generous whitespace; more is not a key. */
#define PUBKEY_INPUT_MAX 1024

void mpt_usage_pubkey(FILE *out)
{
    fprintf(out,
            "Usage: mptunnel pubkey < private.key\n"
            "\n"
            "Reads a private key (the base64 of 32 bytes, as `mptunnel genkey' prints it) from\n"
            "standard input and prints its X25519 public key, in base64. A server's public key\n"
            "goes into its clients' `server_public_key =' ([client]); a client's into the\n"
            "server's `public_key =' of its [peer NAME] section. Whitespace around the key is\n"
            "ignored; anything else is an error, and the input is never shown.\n"
            "\n"
            "  (umask 077; mptunnel genkey > /etc/mptunnel/private.key)\n"
            "  mptunnel pubkey < /etc/mptunnel/private.key\n"
            "\n"
            "  -h, --help  this text\n"
            "\n"
            "Exit status: 0, 2 if the input is not a private key, 1 if it cannot be read.\n");
}

int mpt_cmd_pubkey(int argc, char **argv)
{
    char text[PUBKEY_INPUT_MAX + 1], reason[MPT_CONFIG_ERR_MAX];
    char b64[sodium_base64_ENCODED_LEN(MPT_KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];
    uint8_t priv[MPT_KEY_LEN], pub[MPT_KEY_LEN];
    size_t len = 0;
    ssize_t n;
    int status = MPT_EXIT_USAGE;

    if (argc > 1) {
        /* Not quoted: a private key given as an argument is still a private key. */
        mpt_cmd_error("pubkey", "unexpected argument (the private key comes on standard input: "
                                "mptunnel pubkey < private.key)");
        return MPT_EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        mpt_cmd_error("pubkey", "libsodium failed to initialise");
        return MPT_EXIT_FAIL;
    }
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "mptunnel pubkey: reading a private key from standard input (end with "
                        "Ctrl-D)\n");
    for (;;) {
        n = read(STDIN_FILENO, text + len, sizeof(text) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            mpt_cmd_error("pubkey", "cannot read standard input: %s", strerror(errno));
            status = MPT_EXIT_FAIL;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof(text)) {
            mpt_cmd_error("pubkey",
                          "input too long (max %d bytes; expected a private key: the base64 of "
                          "%d bytes, as `mptunnel genkey' prints it)",
                          PUBKEY_INPUT_MAX, MPT_KEY_LEN);
            goto out;
        }
    }
    text[len] = '\0';
    /* The reasons never quote the input: it is most of a key even when mistyped. */
    if (memchr(text, '\0', len)) {
        mpt_cmd_error("pubkey", "private key is not valid base64 (make one with `mptunnel "
                                "genkey')");
        goto out;
    }
    if (mpt_key_parse(priv, text, "private key", "make one with `mptunnel genkey'", reason,
                      sizeof(reason)) != 0) {
        mpt_cmd_error("pubkey", "%s", reason);
        goto out;
    }
    if (mpt_key_public(pub, priv) != 0) {
        mpt_cmd_error("pubkey", "private key is all zero bytes (make one with `mptunnel genkey')");
        goto out;
    }
    sodium_bin2base64(b64, sizeof(b64), pub, sizeof(pub), sodium_base64_VARIANT_ORIGINAL);
    status = printf("%s\n", b64) < 0 || fflush(stdout) != 0 ? MPT_EXIT_FAIL : MPT_EXIT_OK;
    if (status != MPT_EXIT_OK)
        mpt_cmd_error("pubkey", "cannot write the public key: %s", strerror(errno));
out:
    sodium_memzero(text, sizeof(text));
    sodium_memzero(priv, sizeof(priv));
    return status;
}
