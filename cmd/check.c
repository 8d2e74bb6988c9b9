/* mptunnel check: a configuration validated and its host names resolved, without binding
 * anything; the effective settings printed, every key with its value after defaults. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "net/loop.h"
#include "net/resolve.h"

#define NOTE_COLUMN 40

void mpt_usage_check(FILE *out)
{
    fprintf(out,
            "Usage: mptunnel check -c FILE [--client|--server] [-q]\n"
            "\n"
            "Reads FILE as `mptunnel client' and `mptunnel server' would, resolves its host\n"
            "names, and prints the effective settings: every key of the sections checked with\n"
            "its value after defaults, a note saying which are defaults, and the address each\n"
            "host name resolved to. Nothing is bound or sent; secrets and private keys are never\n"
            "printed (a private key's public key is). The first lines say which mode each side\n"
            "is in: shared-secret mode, or key mode and how many peers a server lists. The\n"
            "output is in the file's own syntax, paths numbered from 1 as `status' and\n"
            "`mptunnel path' number them.\n"
            "\n"
            "  -c, --config FILE   the configuration to check\n"
            "  --client, --server  check only that side (default: each side FILE has a\n"
            "                      section for)\n"
            "  -q, --quiet         print nothing; only the exit status tells\n"
            "  -h, --help          this text\n"
            "\n"
            "Exit status: 0 if FILE is good, 2 if not, with `file:line: key: reason' on stderr\n"
            "(also for a host name that does not resolve); 1 on a runtime failure.\n");
}

struct check {
    struct mpt_loop *loop;
    const char *file;
    FILE *out;           /* the report, kept until everything resolved */
    const char *section; /* the last section header printed */
    char section_buf[MPT_CONFIG_PEER_NAME_MAX + 16];
    char err[MPT_CONFIG_ERR_MAX];
    int failed;
};

/* `host -> address' when a host name was looked up; nothing for literals. Returns 0 or -1 with
 * c->err set. */
static int resolve_item(struct check *c, const struct mpt_config_item *it, char *note, size_t len)
{
    const struct mpt_hostport *hp = it->addr;
    char a[MPT_ADDR_STRLEN];
    struct mpt_addr addr;
    int rc;

    note[0] = '\0';
    rc = mpt_resolve(c->loop, hp->host, hp->port, it->passive, &addr);
    if (rc) {
        snprintf(c->err, sizeof(c->err), "%s:%d: %s: cannot resolve `%s': %s", c->file, hp->line,
                 it->key, hp->host, mpt_strerror(rc));
        return -1;
    }
    mpt_addr_str(&addr, a, sizeof(a));
    if (strcmp(it->key, "allow") == 0 && strrchr(a, ':'))
        *strrchr(a, ':') = '\0'; /* the rule's ports are in its value */
    if (!hp->host[0])
        snprintf(note, len, "all addresses: %s", a);
    else if (strcmp(it->value, a) != 0)
        snprintf(note, len, "%s -> %s", hp->host, a);
    return 0;
}

static void on_item(void *arg, const struct mpt_config_item *it)
{
    struct check *c = arg;
    char resolved[MPT_CONFIG_HOST_MAX + MPT_ADDR_STRLEN + 32], note[sizeof(resolved) + 256];
    int n, col;

    if (c->failed)
        return;
    resolved[0] = '\0';
    if (it->addr && resolve_item(c, it, resolved, sizeof(resolved)) != 0) {
        c->failed = 1;
        return;
    }
    if (!c->section || strcmp(c->section, it->section) != 0) {
        snprintf(c->section_buf, sizeof(c->section_buf), "%s", it->section);
        c->section = c->section_buf;
        if (strncmp(it->section, "path ", 5) == 0)
            fprintf(c->out, "\n[%s]%*s; path %d\n", it->section,
                    NOTE_COLUMN - 2 - (int)strlen(it->section), "", it->path);
        else
            fprintf(c->out, "\n[%s]\n", it->section);
    }
    if (it->path && strcmp(it->section, "client") == 0)
        n = snprintf(note, sizeof(note), "path %d", it->path);
    else
        n = 0;
    note[n] = '\0';
    if (resolved[0])
        n += snprintf(note + n, sizeof(note) - (size_t)n, "%s%s", n ? ", " : "", resolved);
    if (it->note && (size_t)n < sizeof(note))
        snprintf(note + n, sizeof(note) - (size_t)n, "%s%s", n ? ", " : "", it->note);
    col = fprintf(c->out, "%s = %s", it->key, it->value);
    if (note[0])
        fprintf(c->out, "%*s; %s", col < NOTE_COLUMN ? NOTE_COLUMN - col : 1, "", note);
    fputc('\n', c->out);
}

/* "; server: key mode, 3 peers", "; client: shared-secret mode". */
static void print_mode(FILE *out, const struct mpt_config *cfg, enum mpt_config_role role)
{
    const char *side = role == MPT_ROLE_CLIENT ? "client" : "server";
    unsigned n = cfg->server.npeers;

    if (!mpt_config_key_mode(cfg, role))
        fprintf(out, "; %s: shared-secret mode\n", side);
    else if (role == MPT_ROLE_CLIENT)
        fprintf(out, "; %s: key mode\n", side);
    else
        fprintf(out, "; %s: key mode, %u peer%s\n", side, n, n == 1 ? "" : "s");
}

int mpt_cmd_check(int argc, char **argv)
{
    struct check c = {0};
    struct mpt_config cfg;
    const char *file = NULL;
    enum mpt_config_role roles[2], walk_role;
    char *text = NULL;
    size_t text_len = 0;
    int quiet = 0, want_client = 0, want_server = 0, nroles = 0, status = MPT_EXIT_USAGE;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int opt;

        if (mpt_cmd_is_help(a)) {
            mpt_usage_check(stdout);
            return MPT_EXIT_OK;
        } else if ((opt = mpt_cmd_config_opt("check", argc, argv, &i, &file)) != 0) {
            if (opt < 0)
                goto usage;
        } else if (strcmp(a, "--client") == 0) {
            want_client = 1;
        } else if (strcmp(a, "--server") == 0) {
            want_server = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else {
            mpt_cmd_error("check", "%s `%s'",
                          a[0] == '-' ? "unknown option" : "unexpected argument", a);
            goto usage;
        }
    }
    if (!file || !*file) {
        mpt_cmd_error("check", "no configuration file (use -c FILE)");
        goto usage;
    }
    /* The file alone first, then what each side needs. */
    if (mpt_config_load(&cfg, file, MPT_ROLE_ANY, c.err, sizeof(c.err)) != 0)
        goto config_error;
    if (!want_client && !want_server) {
        want_client = cfg.client.present;
        want_server = cfg.server.present;
        if (!want_client && !want_server) {
            snprintf(c.err, sizeof(c.err), "%s: no [client] or [server] section", file);
            goto config_error;
        }
    }
    if (want_client)
        roles[nroles++] = MPT_ROLE_CLIENT;
    if (want_server)
        roles[nroles++] = MPT_ROLE_SERVER;
    if (mpt_loop_new(&c.loop) != 0) {
        mpt_cmd_error("check", "cannot create the event loop");
        return MPT_EXIT_FAIL;
    }
    c.file = file;
    c.out = open_memstream(&text, &text_len);
    if (!c.out) {
        mpt_cmd_error("check", "out of memory");
        status = MPT_EXIT_FAIL;
        goto out;
    }
    fprintf(c.out, "; %s: good for %s%s%s\n", file, want_client ? "client" : "",
            want_client && want_server ? " and " : "", want_server ? "server" : "");
    for (int r = 0; r < nroles && !c.err[0]; r++)
        mpt_config_load(&cfg, file, roles[r], c.err, sizeof(c.err));
    walk_role = nroles == 2 ? MPT_ROLE_ANY : roles[0];
    for (int r = 0; r < nroles && !c.err[0]; r++)
        print_mode(c.out, &cfg, roles[r]);
    if (!c.err[0])
        mpt_config_walk(&cfg, walk_role, on_item, &c);
    mpt_config_wipe(&cfg);
    fclose(c.out);
    c.out = NULL;
    if (c.err[0]) {
        mpt_cmd_error("check", "%s", c.err);
        status = MPT_EXIT_USAGE;
        goto out;
    }
    if (!quiet)
        fwrite(text, 1, text_len, stdout);
    status = fflush(stdout) == 0 ? MPT_EXIT_OK : MPT_EXIT_FAIL;
out:
    free(text);
    mpt_loop_free(c.loop);
    return status;
config_error:
    mpt_config_wipe(&cfg);
    mpt_cmd_error("check", "%s", c.err);
    return MPT_EXIT_USAGE;
usage:
    fprintf(stderr, "Try `mptunnel check --help'.\n");
    return MPT_EXIT_USAGE;
}
