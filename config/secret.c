/* The pre-shared secret as written in a config file: base64 of 32 bytes. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

/* Long enough to report the decoded size of a somewhat wrong secret (a 64-byte key, say). */
#define SECRET_TEXT_MAX 200

int mpt_secret_parse(uint8_t out[MPT_SECRET_LEN], const char *text, char *err, size_t errlen)
{
    unsigned char bin[SECRET_TEXT_MAX];
    size_t len = strlen(text), binlen = 0;
    const char *end = NULL;
    int rc = -1;

    while (len && isspace((unsigned char)*text)) {
        text++;
        len--;
    }
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    if (len == 0) {
        snprintf(err, errlen, "empty secret (make one with `mptunnel genkey')");
        goto out;
    }
    if (len > SECRET_TEXT_MAX) {
        snprintf(err, errlen, "secret too long (expected the base64 of %d bytes)", MPT_SECRET_LEN);
        goto out;
    }
    /* The secret itself is never quoted: a mistyped key is still most of a key. */
    if (sodium_base642bin(bin, sizeof(bin), text, len, NULL, &binlen, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != text + len) {
        if (sodium_base642bin(bin, sizeof(bin), text, len, NULL, &binlen, &end,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
            end != text + len) {
            snprintf(err, errlen, "secret is not valid base64 (make one with `mptunnel genkey')");
            goto out;
        }
    }
    if (binlen != MPT_SECRET_LEN) {
        snprintf(err, errlen,
                 "secret decodes to %zu bytes, expected %d (make one with `mptunnel "
                 "genkey')",
                 binlen, MPT_SECRET_LEN);
        goto out;
    }
    memcpy(out, bin, MPT_SECRET_LEN);
    rc = 0;
out:
    sodium_memzero(bin, sizeof(bin));
    return rc;
}
