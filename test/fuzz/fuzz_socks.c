/* core/socks: every SOCKS5 parser over arbitrary bytes. Checks: nothing read past the input
 * (ASan), a length taken never larger than the input, and a parsed UDP header written back and
 * parsed again gives the same destination (a name that is an address literal, such as
 * `e::0e', is written back as that address, in its own form). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/socks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The same host: the same text, or two spellings of one address. */
static int same_host(const char *a, const char *b)
{
    uint8_t x[16], y[16];

    if (strcmp(a, b) == 0)
        return 1;
    if (inet_pton(AF_INET6, a, x) == 1 && inet_pton(AF_INET6, b, y) == 1)
        return memcmp(x, y, 16) == 0;
    if (inet_pton(AF_INET, a, x) == 1 && inet_pton(AF_INET, b, y) == 1)
        return memcmp(x, y, 4) == 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mpt_socks_dest d, again;
    uint8_t *copy, hdr[MPT_SOCKS_UDP_HDR_MAX], method, cmd;
    char user[256], pass[256];
    int r;

    /* An exact-size copy, so that ASan sees any read past the end. */
    copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    r = mpt_socks_greeting(copy, size, size & 1, &method);
    if (r > (int)size)
        abort();
    r = mpt_socks_userpass(copy, size, user, pass);
    if (r > (int)size)
        abort();
    r = mpt_socks_request(copy, size, &cmd, &d);
    if (r > (int)size)
        abort();
    r = mpt_socks_udp_parse(copy, size, &d);
    if (r > (int)size)
        abort();
    if (r > 0) {
        int h = mpt_socks_udp_header(hdr, &d);
        if (h <= 0 || h > (int)sizeof(hdr))
            abort();
        if (mpt_socks_udp_parse(hdr, (size_t)h, &again) != h || !same_host(again.host, d.host) ||
            again.port != d.port)
            abort();
    }
    free(copy);
    return 0;
}
