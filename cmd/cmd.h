/* The front door: subcommands and what they share. Only cmd/ prints to the user or exits. */
#ifndef MPT_CMD_H
#define MPT_CMD_H

#include <stdio.h>

#include "config/config.h"

#define MPT_EXIT_OK 0
#define MPT_EXIT_FAIL 1  /* runtime failure */
#define MPT_EXIT_USAGE 2 /* usage or configuration error */

struct mpt_cmd {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0] is the subcommand name */
    const char *summary;              /* one line for `mptunnel help` */
    void (*usage)(FILE *out);         /* the whole `<command> --help` text */
};

/* The table, terminated by a NULL name. */
extern const struct mpt_cmd mpt_cmds[];

int mpt_cmd_client(int argc, char **argv);
int mpt_cmd_server(int argc, char **argv);
int mpt_cmd_bridge(int argc, char **argv);
int mpt_cmd_genkey(int argc, char **argv);
int mpt_cmd_pubkey(int argc, char **argv);
int mpt_cmd_demo(int argc, char **argv);
int mpt_cmd_status(int argc, char **argv);
int mpt_cmd_check(int argc, char **argv);
int mpt_cmd_path(int argc, char **argv);
void mpt_usage_client(FILE *out);
void mpt_usage_server(FILE *out);
void mpt_usage_bridge(FILE *out);
void mpt_usage_genkey(FILE *out);
void mpt_usage_pubkey(FILE *out);
void mpt_usage_demo(FILE *out);
void mpt_usage_status(FILE *out);
void mpt_usage_check(FILE *out);
void mpt_usage_path(FILE *out);

/* Sends log messages to stderr ("2026-11-25 12:00:00.123 info: ..."), at `level`
 * (MPT_LOGL_*). When stderr is systemd's journal stream (JOURNAL_STREAM), as "<6>..." instead:
 * a syslog priority prefix and no timestamp. */
void mpt_cmd_log_init(int level);

/* The configuration file option at argv[*i]: `-c FILE', `--config FILE', `--config=FILE' or
 * `-cFILE'. Returns 1 with *file set (and *i past FILE), 0 if argv[*i] is another argument, or -1
 * after saying what is missing. */
int mpt_cmd_config_opt(const char *cmd, int argc, char **argv, int *i, const char **file);

/* Parses a subcommand's options (-c/--config FILE, required; -v, -q; -h prints `cmd`'s usage and
 * exits 0), loads FILE into *cfg for `role` and starts logging at the file's log_level (default
 * info) moved by -v/-q. argv[0] is the subcommand name. Returns 0 to go on, or the exit status
 * after printing `mptunnel <cmd>: <message>` to stderr (MPT_EXIT_USAGE for usage and config
 * errors). */
int mpt_cmd_load_config(const char *cmd, int argc, char **argv, enum mpt_config_role role,
                        struct mpt_config *cfg);

/* Runs a client or a server from a loaded configuration until SIGINT/SIGTERM; returns the exit
 * status. */
int mpt_cmd_run_tunnel(const char *cmd, const struct mpt_config *cfg, enum mpt_config_role role);

/* 1 if arg is -h or --help. */
int mpt_cmd_is_help(const char *arg);

/* Prints "mptunnel <cmd>: <message>" to stderr. */
void mpt_cmd_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
