/* Key material as written in a config file: base64 of 32 bytes. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

/* Long enough to report the decoded size of a somewhat wrong key (a 64-byte key, say). */
#define KEY_TEXT_MAX 200

int mpt_key_parse(uint8_t out[MPT_KEY_LEN], const char *text, const char *what, const char *hint,
                  char *err, size_t errlen)
{
    unsigned char bin[KEY_TEXT_MAX];
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
        snprintf(err, errlen, "empty %s (%s)", what, hint);
        goto out;
    }
    if (len > KEY_TEXT_MAX) {
        snprintf(err, errlen, "%s too long (expected the base64 of %d bytes)", what, MPT_KEY_LEN);
        goto out;
    }
    /* The key itself is never quoted: a mistyped key is still most of a key. */
    if (sodium_base642bin(bin, sizeof(bin), text, len, NULL, &binlen, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != text + len) {
        if (sodium_base642bin(bin, sizeof(bin), text, len, NULL, &binlen, &end,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 ||
            end != text + len) {
            snprintf(err, errlen, "%s is not valid base64 (%s)", what, hint);
            goto out;
        }
    }
    if (binlen != MPT_KEY_LEN) {
        snprintf(err, errlen, "%s decodes to %zu bytes, expected %d (%s)", what, binlen,
                 MPT_KEY_LEN, hint);
        goto out;
    }
    memcpy(out, bin, MPT_KEY_LEN);
    rc = 0;
out:
    sodium_memzero(bin, sizeof(bin));
    return rc;
}

int mpt_secret_parse(uint8_t out[MPT_SECRET_LEN], const char *text, char *err, size_t errlen)
{
    return mpt_key_parse(out, text, "secret", "make one with `mptunnel genkey'", err, errlen);
}
