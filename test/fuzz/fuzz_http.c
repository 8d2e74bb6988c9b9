/* net/metrics.c: any bytes as an HTTP request to the metrics endpoint, read as the socket would
 * deliver them (in pieces whose size the first byte chooses). Checks what the reader promises: an
 * answer from the known set, never more than the request limit read, and an answer that stays. */
#include <stdint.h>
#include <stdlib.h>

#include "net/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int known(int st)
{
    return st == 0 || st == 200 || st == 400 || st == 404 || st == 405 || st == 414 || st == 431 ||
           st == 505;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mpt_http_req r;
    size_t step, off = 1;
    int st = 0, first = 0;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 64 + 1;
    mpt_http_req_init(&r);
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        st = mpt_http_req_feed(&r, (const char *)data + off, n);
        if (!known(st) || r.bytes > MPT_METRICS_MAX_REQUEST || r.url_len >= MPT_METRICS_MAX_URL)
            abort();
        if (first && st != first)
            abort();
        if (st)
            first = st;
        off += n;
    }
    if (r.head && st != 200 && st != 404 && st != 400)
        abort();
    return 0;
}
