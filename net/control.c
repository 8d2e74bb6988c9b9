/* The control socket (see control.h and packaging/STATUS.md). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "net/control.h"
#include "net/driver.h"
#include "net/status.h"
#include "net/udp.h"

#define SUN_PATH_LEN sizeof(((struct sockaddr_un *)0)->sun_path)

struct conn {
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct mpt_control *ctl;
    char *doc;
    char rbuf[256];
    char line[MPT_CONTROL_LINE_MAX]; /* the request line, as far as read */
    unsigned line_len;
    int line_done;
    int registered; /* in ctl->conns */
    int closing;
    unsigned open_handles;
};

struct mpt_control {
    struct mpt_driver base; /* lifecycle: the two handles and one reference per connection */
    struct mpt_loop *loop;
    uv_pipe_t listen;
    uv_timer_t sample;
    struct mpt_control_ops ops;
    void *arg;
    char path[SUN_PATH_LEN];
    int bound; /* the socket file is ours to remove */
    dev_t dev;
    ino_t ino;
    char *scratch; /* MPT_CONTROL_MAX_DOC, made at the first request */
    struct conn *conns[MPT_CONTROL_MAX_CONNS];
    mpt_control_closed_cb on_closed;
    void *closed_arg;
};

/* The last reference is gone: closed, and every connection with it. */
static void control_destroy(struct mpt_driver *base)
{
    struct mpt_control *ctl = mpt_container_of(base, struct mpt_control, base);

    if (ctl->ops.release)
        ctl->ops.release(ctl->arg);
    if (ctl->on_closed)
        ctl->on_closed(ctl->closed_arg);
    free(ctl->scratch);
    free(ctl);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct mpt_control *ctl = c->ctl;

    if (--c->open_handles > 0)
        return;
    free(c->doc);
    free(c);
    mpt_driver_unref(&ctl->base);
}

static void conn_close(struct conn *c)
{
    struct mpt_control *ctl = c->ctl;

    if (c->closing)
        return;
    c->closing = 1;
    if (c->registered) {
        for (unsigned i = 0; i < MPT_CONTROL_MAX_CONNS; i++)
            if (ctl->conns[i] == c)
                ctl->conns[i] = NULL;
        c->registered = 0;
    }
    c->open_handles = 2;
    uv_close((uv_handle_t *)&c->pipe, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_conn_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;

    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

/* The request line: "json" (the only format) or a command for the owner. Input past it is read
 * and dropped so that closing never discards unread data (which would reset the peer). EOF ends
 * the exchange. */
static void on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct mpt_control *ctl = c->ctl;

    if (nread < 0) {
        conn_close(c);
        return;
    }
    for (ssize_t i = 0; i < nread && !c->line_done; i++) {
        char ch = buf->base[i];

        if (ch == '\n') {
            c->line_done = 1;
            c->line[c->line_len] = '\0';
            if (strcmp(c->line, "json") != 0 && ctl->ops.command &&
                !mpt_driver_stopping(&ctl->base))
                ctl->ops.command(ctl->arg, c->line);
        } else if (c->line_len + 1 < sizeof(c->line) && (unsigned char)ch >= ' ' && ch != 0x7f) {
            c->line[c->line_len++] = ch;
        } else {
            c->line_done = 1; /* too long or not text: no command */
        }
    }
}

static void on_conn_shutdown(uv_shutdown_t *req, int status)
{
    if (status < 0)
        conn_close(req->data);
}

static void on_conn_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    /* Our EOF tells the peer the document is whole; we close at its EOF (or the timeout). */
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->pipe, on_conn_shutdown) != 0)
        conn_close(c);
}

static int conn_respond(struct conn *c)
{
    struct mpt_control *ctl = c->ctl;
    struct mpt_json j;
    uv_buf_t b;

    if (!ctl->scratch) {
        ctl->scratch = malloc(MPT_CONTROL_MAX_DOC);
        if (!ctl->scratch)
            return UV_ENOMEM;
    }
    mpt_json_init(&j, ctl->scratch, MPT_CONTROL_MAX_DOC);
    ctl->ops.snapshot(ctl->arg, &j, mpt_loop_now_us(ctl->loop));
    c->doc = malloc(j.len + 1);
    if (!c->doc)
        return UV_ENOMEM;
    memcpy(c->doc, j.buf, j.len);
    c->doc[j.len] = '\n';
    b = uv_buf_init(c->doc, (unsigned)j.len + 1);
    c->wreq.data = c;
    return uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, on_conn_written);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mpt_control *ctl = mpt_container_of(server, struct mpt_control, listen);
    uv_loop_t *uv = mpt_loop_uv(ctl->loop);
    struct conn *c;
    unsigned slot = MPT_CONTROL_MAX_CONNS;

    if (status < 0 || mpt_driver_stopping(&ctl->base))
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->ctl = ctl;
    uv_pipe_init(uv, &c->pipe, 0);
    uv_timer_init(uv, &c->timer);
    c->pipe.data = c;
    c->timer.data = c;
    mpt_driver_ref(&ctl->base); /* until both of the connection's handles have closed */
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        conn_close(c);
        return;
    }
    for (unsigned i = 0; i < MPT_CONTROL_MAX_CONNS; i++) {
        if (!ctl->conns[i]) {
            slot = i;
            break;
        }
    }
    /* Over the limit: accepted only to be closed at once, without an answer. */
    if (slot == MPT_CONTROL_MAX_CONNS) {
        conn_close(c);
        return;
    }
    ctl->conns[slot] = c;
    c->registered = 1;
    uv_timer_start(&c->timer, on_conn_timeout, MPT_CONTROL_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->pipe, on_conn_alloc, on_conn_read) != 0 ||
        conn_respond(c) != 0)
        conn_close(c);
}

static void on_sample(uv_timer_t *t)
{
    struct mpt_control *ctl = mpt_container_of(t, struct mpt_control, sample);

    if (ctl->ops.sample)
        ctl->ops.sample(ctl->arg, mpt_loop_now_us(ctl->loop));
}

/* Removes the socket file if it is still the one we made (a newer process may have replaced it). */
static void remove_socket_file(struct mpt_control *ctl)
{
    struct stat st;

    if (!ctl->bound)
        return;
    ctl->bound = 0;
    if (lstat(ctl->path, &st) == 0 && st.st_dev == ctl->dev && st.st_ino == ctl->ino)
        unlink(ctl->path);
}

/* Closes the socket, its file and every connection (mpt_driver_stop calls this once). */
static void control_stop(struct mpt_driver *base)
{
    struct mpt_control *ctl = mpt_container_of(base, struct mpt_control, base);

    remove_socket_file(ctl);
    for (unsigned i = 0; i < MPT_CONTROL_MAX_CONNS; i++)
        if (ctl->conns[i])
            conn_close(ctl->conns[i]);
    mpt_driver_close((uv_handle_t *)&ctl->listen);
    mpt_driver_close((uv_handle_t *)&ctl->sample);
}

static const struct mpt_driver_ops control_ops = {"control", control_stop, control_destroy};

void mpt_control_close(struct mpt_control *ctl, mpt_control_closed_cb cb, void *cb_arg)
{
    if (!ctl || mpt_driver_stopping(&ctl->base))
        return;
    ctl->on_closed = cb;
    ctl->closed_arg = cb_arg;
    mpt_driver_stop(&ctl->base);
}

/* Makes the socket's directory (one level, 0700) if it is missing, then refuses it if another
 * user could replace the socket in it (mpt_config_control_dir_check). */
static int make_dir(const char *path)
{
    char dir[SUN_PATH_LEN], why[MPT_CONFIG_ERR_MAX];
    char *slash;
    int rc;

    strcpy(dir, path);
    slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -errno;
    }
    rc = mpt_config_control_dir_check(path, why, sizeof(why));
    if (rc)
        MPT_ERROR("%s", why);
    return rc;
}

/* 0 if nothing is at path (any stale socket removed), UV_EADDRINUSE if a process answers there,
 * UV_EEXIST if it is not a socket. */
static int clear_stale(const char *path)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return UV_EEXIST;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    /* EAGAIN: a live listener with a full backlog. */
    if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS)
        rc = UV_EADDRINUSE;
    else if (errno == ECONNREFUSED || errno == ENOENT)
        rc = unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
    else
        rc = -errno;
    close(fd);
    return rc;
}

int mpt_control_start(struct mpt_loop *loop, const char *path, const struct mpt_control_ops *ops,
                      void *arg, struct mpt_control **out)
{
    uv_loop_t *uv = mpt_loop_uv(loop);
    struct mpt_control *ctl;
    struct stat st;
    mode_t old;
    int rc;

    *out = NULL;
    ctl = calloc(1, sizeof(*ctl));
    if (!ctl) {
        if (ops->release)
            ops->release(arg);
        return UV_ENOMEM;
    }
    /* A peer that leaves before reading its answer must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    ctl->loop = loop;
    ctl->ops = *ops;
    ctl->arg = arg;
    /* The owner stops it (mpt_control_close), not the loop. */
    mpt_driver_init(&ctl->base, loop, &control_ops, 0);
    uv_pipe_init(uv, &ctl->listen, 0);
    uv_timer_init(uv, &ctl->sample);
    mpt_driver_own(&ctl->base, (uv_handle_t *)&ctl->listen);
    mpt_driver_own(&ctl->base, (uv_handle_t *)&ctl->sample);
    if (strlen(path) >= sizeof(ctl->path)) {
        rc = UV_ENAMETOOLONG;
        goto out;
    }
    strcpy(ctl->path, path);
    rc = make_dir(path);
    if (!rc)
        rc = clear_stale(path);
    if (rc)
        goto out;
    /* Made 0600 from the start (umask), so no other user can ever connect. */
    old = umask(0177);
    rc = uv_pipe_bind(&ctl->listen, path);
    umask(old);
    if (rc)
        goto out;
    ctl->bound = 1;
    if (lstat(path, &st) == 0) {
        ctl->dev = st.st_dev;
        ctl->ino = st.st_ino;
    }
    if (chmod(path, 0600) != 0) {
        rc = -errno;
        goto out;
    }
    rc = uv_listen((uv_stream_t *)&ctl->listen, MPT_CONTROL_MAX_CONNS, on_connection);
    if (rc)
        goto out;
    uv_timer_start(&ctl->sample, on_sample, MPT_CONTROL_SAMPLE_MS, MPT_CONTROL_SAMPLE_MS);
    *out = ctl;
out:
    if (rc)
        mpt_control_close(ctl, NULL, NULL);
    return rc;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void *mpt_control_arg(const struct mpt_control *c)
{
    return c->arg;
}

long mpt_control_query(const char *path, char *buf, size_t len, int timeout_ms)
{
    return mpt_control_request(path, "json", buf, len, timeout_ms);
}

long mpt_control_request(const char *path, const char *line, char *buf, size_t len, int timeout_ms)
{
    char req[MPT_CONTROL_LINE_MAX + 1];
    int reqlen;
    struct sockaddr_un sun;
    struct timeval tv;
    int64_t deadline = mono_ms() + timeout_ms;
    size_t n = 0;
    long rc;
    int fd;

    reqlen = snprintf(req, sizeof(req), "%s\n", line);
    if (len == 0 || reqlen < 0 || (size_t)reqlen >= sizeof(req))
        return -EINVAL;
    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    /* A blocking connect to a full backlog waits at most this long. */
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        rc = errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : -errno;
        goto out;
    }
    if (send(fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
        rc = -errno;
        goto out;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - mono_ms();
        ssize_t r;

        if (left <= 0) {
            rc = -ETIMEDOUT;
            goto out;
        }
        r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            continue;
        if (n + 1 >= len) {
            rc = -EMSGSIZE;
            goto out;
        }
        r = recv(fd, buf + n, len - 1 - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    rc = (long)n;
out:
    close(fd);
    return rc;
}
