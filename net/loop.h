/* The event loop as the rest of the program sees it: an opaque object created by cmd/ and passed
 * down to every service. SIGINT and SIGTERM stop every service added to it; mpt_loop_run returns
 * when all their handles are closed. No uv.h here, so cmd/ can hold one. */
#ifndef MPT_NET_LOOP_H
#define MPT_NET_LOOP_H

#include <stdint.h>

struct mpt_loop;

/* A running service (client, server, bridge, ...). stop() starts closing its handles; the loop
 * ends once every handle is closed. */
struct mpt_service {
    void (*stop)(struct mpt_service *svc);
    struct mpt_service *next;
};

/* Creates a loop with its signal handlers. Returns 0 or a negative UV_E* code. */
int mpt_loop_new(struct mpt_loop **out);

typedef void (*mpt_loop_reload_cb)(void *arg);

/* What SIGHUP does: cb(arg), from the loop (replacing any earlier one). Without one, SIGHUP is
 * logged and otherwise ignored; it never ends the process. */
void mpt_loop_on_reload(struct mpt_loop *loop, mpt_loop_reload_cb cb, void *arg);

/* Adds a service to stop on SIGINT/SIGTERM or mpt_loop_stop. */
void mpt_loop_add_service(struct mpt_loop *loop, struct mpt_service *svc);

/* Removes a service (one that closes by itself). */
void mpt_loop_remove_service(struct mpt_loop *loop, struct mpt_service *svc);

/* Runs until every handle is closed. Returns 0, or a negative UV_E* code. */
int mpt_loop_run(struct mpt_loop *loop);

/* Asks every service to stop (as a signal would). Safe to call from a callback. */
void mpt_loop_stop(struct mpt_loop *loop);

/* 1 once a signal or mpt_loop_stop asked the loop to stop. */
int mpt_loop_stopping(const struct mpt_loop *loop);

/* Closes what is left and frees the loop. Returns 0 if uv_loop_close succeeded, else UV_EBUSY. */
int mpt_loop_free(struct mpt_loop *loop);

/* Monotonic time in microseconds (the loop's cached time refreshed). */
uint64_t mpt_loop_now_us(struct mpt_loop *loop);

/* The wall clock: µs since the Unix epoch (0 if it cannot be read). */
uint64_t mpt_loop_wall_us(void);

/* Error text for a negative UV_E* / errno code. */
const char *mpt_strerror(int err);

#endif
