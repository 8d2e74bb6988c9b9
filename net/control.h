/* The control socket: a UNIX stream socket where `mptunnel status` reads the live state of a
 * running client or server (packaging/STATUS.md). A peer connects, may write one line ("json\n"),
 * and reads one JSON document; the server then closes. At most MPT_CONTROL_MAX_CONNS peers at a
 * time, each closed after MPT_CONTROL_TIMEOUT_MS; the document is at most MPT_CONTROL_MAX_DOC
 * bytes (truncated, still valid JSON, beyond). What the document says is the driver's business:
 * it comes from a snapshot callback. No uv.h here, so cmd/ can use mpt_control_query. */
#ifndef MPT_NET_CONTROL_H
#define MPT_NET_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"

#define MPT_CONTROL_MAX_CONNS 16
#define MPT_CONTROL_TIMEOUT_MS 2000
#define MPT_CONTROL_MAX_DOC (1u << 20)
#define MPT_CONTROL_SAMPLE_MS 1000
#define MPT_CONTROL_LINE_MAX 384 /* a request line, NUL included */

struct mpt_control;
struct mpt_json;

struct mpt_control_ops {
    /* Every MPT_CONTROL_SAMPLE_MS (may be NULL): for rates over the last interval. */
    void (*sample)(void *arg, uint64_t now_us);
    /* Writes the document for one peer. */
    void (*snapshot)(void *arg, struct mpt_json *j, uint64_t now_us);
    /* Once the control is closed (also after a failed start): arg may be freed. */
    void (*release)(void *arg);
    /* A request line other than "json" (may be NULL): a command such as "path disable 2", run
     * after the peer got its document (the state before the command). */
    void (*command)(void *arg, const char *line);
};

typedef void (*mpt_control_closed_cb)(void *arg);

/* Listens on `path`, a socket file made with mode 0600; its directory is made (0700) if missing,
 * and refused (-EPERM, -ENOTDIR, logged with the reason) if it belongs to another user or others
 * may write to it (mpt_config_control_dir_check).
 * A stale socket file that nobody answers on is replaced; a live one is left alone
 * (UV_EADDRINUSE), as is anything that is not a socket (UV_EEXIST). Returns 0, or a negative
 * code; on failure ops->release(arg) still runs, later, from the loop. */
int mpt_control_start(struct mpt_loop *loop, const char *path, const struct mpt_control_ops *ops,
                      void *arg, struct mpt_control **out);

/* Removes the socket file and closes every handle; cb(cb_arg) runs when all are closed (after
 * ops->release). No snapshot is taken after this call. */
void mpt_control_close(struct mpt_control *c, mpt_control_closed_cb cb, void *cb_arg);

/* The peer side, blocking, plain POSIX sockets: connects to `path`, asks for JSON and reads the
 * document into buf (NUL-terminated), all within timeout_ms. Returns its length, or a negative
 * errno (-ENOENT, -ECONNREFUSED, -ETIMEDOUT, -EMSGSIZE when buf is too small, ...). */
long mpt_control_query(const char *path, char *buf, size_t len, int timeout_ms);

/* The same with another request line (without its newline): a command, answered by the document
 * as it was before the command ran. */
long mpt_control_request(const char *path, const char *line, char *buf, size_t len, int timeout_ms);

/* The arg given to mpt_control_start. */
void *mpt_control_arg(const struct mpt_control *c);

#endif
