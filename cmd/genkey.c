#include <sodium.h>
#include <stdio.h>

#include "cmd/cmd.h"

void mpt_usage_genkey(FILE *out)
{
    fprintf(out,
            "Usage: mptunnel genkey\n"
            "\n"
            "Prints 32 random bytes in base64. They serve as a secret, for `secret =` in\n"
            "[tunnel] (or a file named by `secret_file =`), which both ends need alike; or as a\n"
            "private key in key mode, for `private_key =` in [client] or [server] (or a file\n"
            "named by `private_key_file =`), one for each side, whose public key `mptunnel\n"
            "pubkey` prints.\n"
            "\n"
            "  (umask 077; mptunnel genkey > /etc/mptunnel/secret)\n"
            "  (umask 077; mptunnel genkey > /etc/mptunnel/private.key)\n"
            "  mptunnel pubkey < /etc/mptunnel/private.key\n");
}

int mpt_cmd_genkey(int argc, char **argv)
{
    unsigned char key[32];
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    int rc;

    if (argc > 1) {
        mpt_cmd_error("genkey", "unexpected argument `%s'", argv[1]);
        return MPT_EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        mpt_cmd_error("genkey", "libsodium failed to initialise");
        return MPT_EXIT_FAIL;
    }
    randombytes_buf(key, sizeof(key));
    sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(key, sizeof(key));
    rc = printf("%s\n", b64) < 0 || fflush(stdout) != 0 ? MPT_EXIT_FAIL : MPT_EXIT_OK;
    sodium_memzero(b64, sizeof(b64));
    return rc;
}
