/* core/socks: every SOCKS5 parser over arbitrary bytes. Checks: nothing read past the input
 * (ASan), a length taken never larger than the input, and a parsed UDP header written back and
 * parsed again gives the same destination. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/socks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        if (mpt_socks_udp_parse(hdr, (size_t)h, &again) != h || strcmp(again.host, d.host) != 0 ||
            again.port != d.port)
            abort();
    }
    free(copy);
    return 0;
}
