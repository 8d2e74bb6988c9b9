/* mptunnel: one binary, one table of subcommands. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

const struct mpt_cmd mpt_cmds[] = {
    {"client", mpt_cmd_client, "run the client side: local UDP port -> several paths",
     mpt_usage_client},
    {"server", mpt_cmd_server, "run the server side: paths -> target", mpt_usage_server},
    {"bridge", mpt_cmd_bridge, "relay UDP from --listen to --to (a path), with test impairments",
     mpt_usage_bridge},
    {"genkey", mpt_cmd_genkey, "print a new secret or private key (base64 of 32 random bytes)",
     mpt_usage_genkey},
    {"pubkey", mpt_cmd_pubkey, "print the public key of a private key read from standard input",
     mpt_usage_pubkey},
    {"demo", mpt_cmd_demo, "the whole tunnel on loopback over lossy paths, with live figures",
     mpt_usage_demo},
    {"status", mpt_cmd_status, "show the live state of a running client or server",
     mpt_usage_status},
    {"check", mpt_cmd_check, "validate a configuration, resolve its names, print the settings",
     mpt_usage_check},
    {"path", mpt_cmd_path, "take a path of a running client out of service, or put it back",
     mpt_usage_path},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    const struct mpt_cmd *c;

    fprintf(out, "Usage: mptunnel <command> [options]\n"
                 "\n"
                 "mptunnel carries UDP between two hosts over several paths at once, so that\n"
                 "the application sees far less loss and no outage when one path fails.\n"
                 "\n"
                 "Commands:\n");
    for (c = mpt_cmds; c->name; c++)
        fprintf(out, "  %-8s %s\n", c->name, c->summary);
    fprintf(out, "  %-8s %s\n", "help", "this text, or `help <command>` for one command");
    fprintf(out, "\n"
                 "Scheduling modes ([client] mode =), which mode for which job:\n"
                 "  redundant  every datagram on every path (default): least loss, no gap when a\n"
                 "             path dies; for VoIP, games, DNS, VPNs over lossy links\n"
                 "  adaptive   the fewest copies that keep loss under target_loss, from measured\n"
                 "             per-path loss; the same jobs where bandwidth costs\n"
                 "  backup     only the best priority carries traffic; the next takes over within\n"
                 "             a second of a failure and hands back; a cheap link and a spare\n"
                 "  balance    no copies, datagrams spread by weight; bulk transfer over uplinks\n"
                 "\n"
                 "Options:\n"
                 "  --version   print the version\n"
                 "  --help      this text\n"
                 "\n"
                 "Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.\n"
                 "See `mptunnel <command> --help` and mptunnel(1).\n");
}

static const struct mpt_cmd *find(const char *name)
{
    const struct mpt_cmd *c;

    for (c = mpt_cmds; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int main(int argc, char **argv)
{
    const struct mpt_cmd *c;

    if (argc < 2) {
        usage(stderr);
        return MPT_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("mptunnel %s\n", MPT_VERSION);
        return MPT_EXIT_OK;
    }
    if (mpt_cmd_is_help(argv[1])) {
        usage(stdout);
        return MPT_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return MPT_EXIT_OK;
        }
        c = find(argv[2]);
        if (!c) {
            mpt_cmd_error("help", "unknown command `%s'", argv[2]);
            return MPT_EXIT_USAGE;
        }
        c->usage(stdout);
        return MPT_EXIT_OK;
    }
    c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "mptunnel: unknown command `%s'\n\n", argv[1]);
        usage(stderr);
        return MPT_EXIT_USAGE;
    }
    if (argc > 2 && mpt_cmd_is_help(argv[2])) {
        c->usage(stdout);
        return MPT_EXIT_OK;
    }
    return c->fn(argc - 1, argv + 1);
}
