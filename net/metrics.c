/* The metrics endpoint (see metrics.h): nodejs http-parser reads the request, libuv carries the
 * bytes. One answer per connection, then our FIN; we read and drop what the peer still sends until
 * its EOF (closing with unread data would reset the connection and could lose the answer). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/driver.h"
#include "net/metrics.h"
#include "net/status.h"
#include "net/udp.h"

/* ---- the request, without I/O ---- */

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct mpt_http_req *r = p->data;

    if (len > sizeof(r->url) - 1 - r->url_len) {
        r->status = 414;
        return -1;
    }
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

static int is_metrics_path(const struct mpt_http_req *r)
{
    static const char want[] = "/metrics";
    struct http_parser_url u;
    const char *path;
    size_t len;

    http_parser_url_init(&u);
    if (http_parser_parse_url(r->url, r->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return -1;
    path = r->url + u.field_data[UF_PATH].off;
    len = u.field_data[UF_PATH].len;
    return len == sizeof(want) - 1 && memcmp(path, want, len) == 0;
}

static int on_headers_complete(http_parser *p)
{
    struct mpt_http_req *r = p->data;
    int path;

    if (p->http_major != 1) {
        r->status = 505;
    } else if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
        r->status = 405;
    } else {
        path = is_metrics_path(r);
        r->status = path < 0 ? 400 : path ? 200 : 404;
        r->head = p->method == HTTP_HEAD;
    }
    /* The answer is known: nothing after the headers (a body, a next request) is parsed. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings req_settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
};

void mpt_http_req_init(struct mpt_http_req *r)
{
    memset(r, 0, sizeof(*r));
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
}

int mpt_http_req_feed(struct mpt_http_req *r, const char *data, size_t len)
{
    size_t room = MPT_METRICS_MAX_REQUEST - r->bytes;
    enum http_errno e;

    if (r->status)
        return r->status;
    /* Beyond the limit the parser never sees a byte. */
    if (len > room)
        len = room;
    r->bytes += len;
    if (len)
        http_parser_execute(&r->parser, &req_settings, data, len);
    if (r->status)
        return r->status;
    /* A method the parser does not know is no method of HTTP's: a bad request, like garbage. */
    e = HTTP_PARSER_ERRNO(&r->parser);
    if (e == HPE_HEADER_OVERFLOW)
        r->status = 431;
    else if (e != HPE_OK)
        r->status = 400;
    else if (r->bytes >= MPT_METRICS_MAX_REQUEST)
        r->status = 431;
    return r->status;
}

/* ---- answers ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Internal Server Error";
}

#define HEAD_MAX 256

/* The status line and headers for a body of body_len bytes. */
static size_t answer_head(int status, size_t body_len, char *buf)
{
    int n = snprintf(buf, HEAD_MAX,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "%s"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     status, reason(status),
                     status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
                                   : "text/plain; charset=utf-8",
                     status == 405 ? "Allow: GET, HEAD\r\n" : "", body_len);
    return n > 0 && n < HEAD_MAX ? (size_t)n : 0;
}

/* ---- the server ---- */

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct mpt_metrics *m;
    struct mpt_http_req req;
    char *answer;
    char rbuf[2048];
    int answered;
    int written;  /* the answer is out */
    int peer_eof; /* the peer has finished sending */
    int registered;
    int closing;
    unsigned open_handles;
};

struct mpt_metrics {
    struct mpt_driver base; /* lifecycle: the listening socket and one reference per connection */
    struct mpt_loop *loop;
    uv_tcp_t listen;
    struct mpt_metrics_ops ops;
    void *arg;
    char *scratch; /* MPT_METRICS_MAX_DOC, made at the first request */
    struct conn *conns[MPT_METRICS_MAX_CONNS];
    mpt_metrics_closed_cb on_closed;
    void *closed_arg;
};

/* The last reference is gone: closed, and every connection with it. */
static void metrics_destroy(struct mpt_driver *base)
{
    struct mpt_metrics *m = mpt_container_of(base, struct mpt_metrics, base);

    if (m->ops.release)
        m->ops.release(m->arg);
    if (m->on_closed)
        m->on_closed(m->closed_arg);
    free(m->scratch);
    free(m);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct mpt_metrics *m = c->m;

    if (--c->open_handles > 0)
        return;
    free(c->answer);
    free(c);
    mpt_driver_unref(&m->base);
}

static void conn_close(struct conn *c)
{
    struct mpt_metrics *m = c->m;

    if (c->closing)
        return;
    c->closing = 1;
    if (c->registered) {
        for (unsigned i = 0; i < MPT_METRICS_MAX_CONNS; i++)
            if (m->conns[i] == c)
                m->conns[i] = NULL;
        c->registered = 0;
    }
    c->open_handles = 2;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_conn_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_conn_shutdown(uv_shutdown_t *req, int status)
{
    if (status < 0)
        conn_close(req->data);
}

static void on_conn_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    c->written = 1;
    if (status < 0 || c->closing || c->peer_eof) {
        conn_close(c);
        return;
    }
    /* Our FIN, then the peer's EOF (or the linger timeout) closes. */
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_conn_shutdown) != 0)
        conn_close(c);
}

/* Renders (for 200) and writes the answer to the request read so far. */
static int conn_answer(struct conn *c, int status)
{
    static const char *const bodies[] = {"bad request\n", "not found\n", "method not allowed\n",
                                         "request too large\n", "HTTP/1.x only\n"};
    struct mpt_metrics *m = c->m;
    const char *body = NULL;
    size_t body_len = 0, head_len;
    struct mpt_prom p;
    char head[HEAD_MAX];
    uv_buf_t b;

    c->answered = 1;
    if (status == 200) {
        if (!m->scratch && !(m->scratch = malloc(MPT_METRICS_MAX_DOC)))
            return UV_ENOMEM;
        mpt_prom_init(&p, m->scratch, MPT_METRICS_MAX_DOC);
        m->ops.render(m->arg, &p, mpt_loop_now_us(m->loop));
        mpt_prom_finish(&p);
        body = p.buf;
        body_len = p.len;
    } else {
        body = status == 400   ? bodies[0]
               : status == 404 ? bodies[1]
               : status == 405 ? bodies[2]
               : status == 505 ? bodies[4]
                               : bodies[3];
        body_len = strlen(body);
    }
    head_len = answer_head(status, body_len, head);
    if (c->req.head)
        body_len = 0;
    c->answer = malloc(head_len + body_len);
    if (!c->answer)
        return UV_ENOMEM;
    memcpy(c->answer, head, head_len);
    if (body_len)
        memcpy(c->answer + head_len, body, body_len);
    b = uv_buf_init(c->answer, (unsigned)(head_len + body_len));
    c->wreq.data = c;
    /* From here the peer has the linger time to read the answer and close. */
    uv_timer_start(&c->timer, on_conn_timeout, MPT_METRICS_LINGER_MS, 0);
    return uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_conn_written);
}

static void on_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;

    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    int status;

    if (nread < 0) {
        /* A peer may half-close once its request is sent: the answer still goes out. */
        if (nread == UV_EOF && c->answered && !c->written) {
            c->peer_eof = 1;
            uv_read_stop(s);
            return;
        }
        conn_close(c);
        return;
    }
    if (c->answered || c->closing || nread == 0)
        return;
    status = mpt_http_req_feed(&c->req, buf->base, (size_t)nread);
    if (status && conn_answer(c, status) != 0)
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mpt_metrics *m = mpt_container_of(server, struct mpt_metrics, listen);
    uv_loop_t *uv = mpt_loop_uv(m->loop);
    unsigned slot = MPT_METRICS_MAX_CONNS;
    struct conn *c;

    if (status < 0 || mpt_driver_stopping(&m->base))
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->m = m;
    mpt_http_req_init(&c->req);
    uv_tcp_init(uv, &c->tcp);
    uv_timer_init(uv, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    mpt_driver_ref(&m->base); /* until both of the connection's handles have closed */
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    for (unsigned i = 0; i < MPT_METRICS_MAX_CONNS; i++) {
        if (!m->conns[i]) {
            slot = i;
            break;
        }
    }
    /* Over the limit: accepted only to be closed at once. */
    if (slot == MPT_METRICS_MAX_CONNS) {
        conn_close(c);
        return;
    }
    m->conns[slot] = c;
    c->registered = 1;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, on_conn_timeout, MPT_METRICS_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_conn_alloc, on_conn_read) != 0)
        conn_close(c);
}

/* Closes the socket and every connection (mpt_driver_stop calls this once). */
static void metrics_stop(struct mpt_driver *base)
{
    struct mpt_metrics *m = mpt_container_of(base, struct mpt_metrics, base);

    for (unsigned i = 0; i < MPT_METRICS_MAX_CONNS; i++)
        if (m->conns[i])
            conn_close(m->conns[i]);
    mpt_driver_close((uv_handle_t *)&m->listen);
}

static const struct mpt_driver_ops metrics_ops = {"metrics", metrics_stop, metrics_destroy};

void mpt_metrics_close(struct mpt_metrics *m, mpt_metrics_closed_cb cb, void *cb_arg)
{
    if (!m || mpt_driver_stopping(&m->base))
        return;
    m->on_closed = cb;
    m->closed_arg = cb_arg;
    mpt_driver_stop(&m->base);
}

void *mpt_metrics_arg(const struct mpt_metrics *m)
{
    return m->arg;
}

int mpt_metrics_start(struct mpt_loop *loop, const void *addr, const struct mpt_metrics_ops *ops,
                      void *arg, struct mpt_metrics **out)
{
    const struct sockaddr *sa = addr;
    struct mpt_metrics *m;
    int rc;

    *out = NULL;
    m = calloc(1, sizeof(*m));
    if (!m) {
        if (ops->release)
            ops->release(arg);
        return UV_ENOMEM;
    }
    /* A peer that leaves before reading its answer must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    m->loop = loop;
    m->ops = *ops;
    m->arg = arg;
    /* The owner stops it (mpt_metrics_close), not the loop. */
    mpt_driver_init(&m->base, loop, &metrics_ops, 0);
    rc = uv_tcp_init_ex(mpt_loop_uv(loop), &m->listen, sa->sa_family);
    if (rc) {
        /* No handle yet: nothing to close. */
        if (ops->release)
            ops->release(arg);
        free(m);
        return rc;
    }
    mpt_driver_own(&m->base, (uv_handle_t *)&m->listen);
    rc = uv_tcp_bind(&m->listen, sa, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&m->listen, MPT_METRICS_MAX_CONNS, on_connection);
    if (rc) {
        mpt_driver_stop(&m->base);
        return rc;
    }
    *out = m;
    return 0;
}
