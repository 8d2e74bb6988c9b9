/* systemd service notifications through libsystemd's sd_notify: readiness, reloads, stopping,
 * a status line, and the watchdog's keep-alive sent from the loop. Everything does nothing when
 * the process was not started by systemd with Type=notify (no NOTIFY_SOCKET). No uv.h here, so
 * cmd/ can use it. */
#ifndef MPT_NET_NOTIFY_H
#define MPT_NET_NOTIFY_H

#include <stddef.h>

#include "net/loop.h"

struct mpt_notify;

#define MPT_NOTIFY_STATUS_MS 5000 /* how often the status line is looked at */
#define MPT_NOTIFY_STATUS_MAX 160

/* Writes a short status line into buf[len] ("" = nothing to say). */
typedef void (*mpt_notify_status_cb)(void *arg, char *buf, size_t len);

/* Starts the watchdog keep-alive on `loop` if the service manager expects one (WatchdogSec=, seen
 * as WATCHDOG_USEC): WATCHDOG=1 every half of that interval, from a timer of the loop, so a loop
 * that hangs stops the keep-alives. The timer does not keep the loop running; it stops with the
 * loop (SIGINT, SIGTERM, mpt_loop_stop), which also sends STOPPING=1. Returns 0 or a negative
 * UV_E* code (no keep-alive then); *out is set either way, for mpt_notify_free. */
int mpt_notify_start(struct mpt_loop *loop, struct mpt_notify **out);

/* Stops the keep-alive and drops the caller's hold on n, after mpt_loop_run and before
 * mpt_loop_free (which completes the close). Accepts NULL. */
void mpt_notify_free(struct mpt_notify *n);

/* Under systemd (NOTIFY_SOCKET set): every MPT_NOTIFY_STATUS_MS, cb(arg) writes the status line,
 * sent as STATUS= when it changed. Stops with n. Does nothing otherwise. */
void mpt_notify_watch_status(struct mpt_notify *n, mpt_notify_status_cb cb, void *arg);

/* READY=1 with a status line (may be NULL): the service is up (listening). Also ends a reload. */
void mpt_notify_ready(const char *status);

/* RELOADING=1 (with MONOTONIC_USEC): a reload begins; mpt_notify_ready ends it. */
void mpt_notify_reloading(void);

/* STATUS=<line>: a short line for `systemctl status'. */
void mpt_notify_status(const char *status);

#endif
