/* The metrics endpoint: a small HTTP/1.1 server on a TCP socket that answers `GET /metrics' (and
 * HEAD) with Prometheus text exposition, format 0.0.4; 404 for any other path, 405 for any other
 * method of HTTP's, 400 for what does not parse (nodejs http-parser), 414 for a URL over
 * MPT_METRICS_MAX_URL bytes, 505 for HTTP other than 1.x, 431 for a request line and headers
 * over MPT_METRICS_MAX_REQUEST bytes. Every answer closes the connection. At most
 * MPT_METRICS_MAX_CONNS peers at a time (more are closed at once); a request must be whole within
 * MPT_METRICS_TIMEOUT_MS of the connection, and the peer then has MPT_METRICS_LINGER_MS to read
 * the answer. The text comes from a render callback, at most MPT_METRICS_MAX_DOC bytes. No uv.h
 * here. */
#ifndef MPT_NET_METRICS_H
#define MPT_NET_METRICS_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"

#define MPT_METRICS_MAX_CONNS 16
#define MPT_METRICS_MAX_REQUEST 8192
#define MPT_METRICS_MAX_URL 1024
#define MPT_METRICS_TIMEOUT_MS 5000
#define MPT_METRICS_LINGER_MS 5000
#define MPT_METRICS_MAX_DOC (4u << 20)

struct mpt_prom;
struct mpt_metrics;

struct mpt_metrics_ops {
    /* Writes the text for one request. */
    void (*render)(void *arg, struct mpt_prom *p, uint64_t now_us);
    /* Once the endpoint is closed (also after a failed start): arg may be freed. */
    void (*release)(void *arg);
};

typedef void (*mpt_metrics_closed_cb)(void *arg);

/* Listens on `addr` (a struct sockaddr of family AF_INET or AF_INET6). Returns 0, or a negative
 * UV_E* code (UV_EADDRINUSE, ...); on failure ops->release(arg) still runs (now or later, from
 * the loop), and nothing needs closing. */
int mpt_metrics_start(struct mpt_loop *loop, const void *addr, const struct mpt_metrics_ops *ops,
                      void *arg, struct mpt_metrics **out);

/* Closes the listening socket and every connection; cb(cb_arg) runs once all are closed (after
 * ops->release). Nothing is rendered after this call. Accepts NULL. */
void mpt_metrics_close(struct mpt_metrics *m, mpt_metrics_closed_cb cb, void *cb_arg);

/* The arg given to mpt_metrics_start. */
void *mpt_metrics_arg(const struct mpt_metrics *m);

/* One request as it arrives, without I/O: what the server does with the bytes it reads. */
struct mpt_http_req {
    http_parser parser;
    size_t bytes; /* fed so far */
    char url[MPT_METRICS_MAX_URL];
    size_t url_len;
    int status; /* the answer once known, else 0 */
    int head;   /* HEAD: the answer has no body */
};

void mpt_http_req_init(struct mpt_http_req *r);

/* Feeds the next bytes read from the peer. Returns 0 while the request line and headers are not
 * whole, then the status to answer (200, 400, 404, 405, 414, 431, 505), which stays: later bytes
 * (a body, another request) are ignored. */
int mpt_http_req_feed(struct mpt_http_req *r, const char *data, size_t len);

#endif
