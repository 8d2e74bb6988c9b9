/* mptunnel path: takes a path of a running client out of service and back, through its control
 * socket. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "net/control.h"

#define DOC_MAX (MPT_CONTROL_MAX_DOC + 64)
#define CONFIRM_MS 2000

void mpt_usage_path(FILE *out)
{
    fprintf(out,
            "Usage: mptunnel path -c FILE disable|enable NAME\n"
            "\n"
            "Takes a path of the client running with FILE out of service (disable) or puts it\n"
            "back (enable), at once and until the client stops; the session and its flows go\n"
            "on over the other paths. A disabled path carries nothing, neither data nor probes,\n"
            "and the server stops answering on it; `mptunnel status' shows it as disabled.\n"
            "An enabled path starts down and is up again after its first probe is answered.\n"
            "\n"
            "NAME is the path's [path NAME], its bridge HOST:PORT as written in FILE, or its\n"
            "number from 1 (in the order of FILE, as `status' and `check' number them).\n"
            "\n"
            "  -c, --config FILE   the configuration the client runs with\n"
            "  -q, --quiet         print nothing on success\n"
            "  -h, --help          this text\n"
            "\n"
            "Exit status: 0 once the client shows the path disabled (or back in service), 1 if\n"
            "the client does not answer or does not change, 2 on usage or configuration errors\n"
            "(an unknown NAME among them).\n");
}

/* The path NAME stands for, from 1; 0 if none. */
static unsigned find_path(const struct mpt_client_config *cc, const char *name)
{
    char text[MPT_CONFIG_HOST_MAX + 16], *end;
    unsigned long n;

    for (unsigned i = 0; i < cc->npaths; i++)
        if (cc->paths[i].name[0] && strcmp(cc->paths[i].name, name) == 0)
            return i + 1;
    for (unsigned i = 0; i < cc->npaths; i++)
        if (strcmp(mpt_hostport_format(&cc->paths[i].bridge, text, sizeof(text)), name) == 0)
            return i + 1;
    n = strtoul(name, &end, 10);
    if (name[0] >= '0' && name[0] <= '9' && !*end && n >= 1 && n <= cc->npaths)
        return (unsigned)n;
    return 0;
}

/* The state of path `index` (from 0) in a client's status document, into out; -1 if absent.
 * The document is ours (net/status_json.c): objects of "paths" start with their "index". */
static int path_state(const char *doc, unsigned index, char *out, size_t len)
{
    char key[32];
    const char *p = strstr(doc, "\"paths\":["), *q;
    size_t n;

    if (!p)
        return -1;
    snprintf(key, sizeof(key), "{\"index\":%u,", index);
    p = strstr(p, key);
    if (!p)
        return -1;
    p = strstr(p, "\"state\":\"");
    if (!p)
        return -1;
    p += 9;
    q = strchr(p, '"');
    if (!q || (n = (size_t)(q - p)) >= len)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int mpt_cmd_path(int argc, char **argv)
{
    const char *file = NULL, *action = NULL, *name = NULL;
    struct mpt_config *cfg = NULL;
    char err[MPT_CONFIG_ERR_MAX], sock[512], req[MPT_CONFIG_HOST_MAX + 64], state[32],
        label[MPT_CONFIG_HOST_MAX + 16];
    char *doc = NULL;
    unsigned index;
    int quiet = 0, status = MPT_EXIT_USAGE, enable;
    long rc;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int opt;

        if (mpt_cmd_is_help(a)) {
            mpt_usage_path(stdout);
            return MPT_EXIT_OK;
        } else if ((opt = mpt_cmd_config_opt("path", argc, argv, &i, &file)) != 0) {
            if (opt < 0)
                goto usage;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (a[0] == '-') {
            mpt_cmd_error("path", "unknown option `%s'", a);
            goto usage;
        } else if (!action) {
            action = a;
        } else if (!name) {
            name = a;
        } else {
            mpt_cmd_error("path", "unexpected argument `%s'", a);
            goto usage;
        }
    }
    if (!file || !*file) {
        mpt_cmd_error("path", "no configuration file (use -c FILE)");
        goto usage;
    }
    if (!action || !name) {
        mpt_cmd_error("path", "say `disable NAME' or `enable NAME'");
        goto usage;
    }
    if (strcmp(action, "disable") == 0) {
        enable = 0;
    } else if (strcmp(action, "enable") == 0) {
        enable = 1;
    } else {
        mpt_cmd_error("path", "unknown action `%s' (disable or enable)", action);
        goto usage;
    }
    cfg = mpt_secure_alloc(sizeof(*cfg), NULL);
    doc = malloc(DOC_MAX);
    if (!cfg || !doc) {
        mpt_cmd_error("path", "out of memory");
        status = MPT_EXIT_FAIL;
        goto out;
    }
    if (mpt_config_load(cfg, file, MPT_ROLE_CLIENT, err, sizeof(err)) != 0) {
        mpt_cmd_error("path", "%s", err);
        goto out;
    }
    index = find_path(&cfg->client, name);
    if (!index) {
        mpt_cmd_error("path", "%s: no path `%s' (give a [path NAME], a bridge HOST:PORT or 1-%u)",
                      file, name, cfg->client.npaths);
        goto out;
    }
    mpt_path_label(&cfg->client.paths[index - 1], label, sizeof(label));
    if (mpt_config_control_path(cfg, MPT_ROLE_CLIENT, sock, sizeof(sock)) != 0) {
        mpt_cmd_error("path", "%s: control socket path too long", file);
        goto out;
    }
    status = MPT_EXIT_FAIL;
    /* With the label: a client still running an older file refuses a path of another name. */
    snprintf(req, sizeof(req), "path %s %u %s", action, index, label);
    rc = mpt_control_request(sock, req, doc, DOC_MAX, 2000);
    if (rc < 0) {
        mpt_cmd_error("path", "no client answers at %s: %s", sock, strerror((int)-rc));
        goto out;
    }
    /* The answer is the state before the command: ask until the change shows. */
    for (int waited = 0;; waited += 50) {
        rc = mpt_control_query(sock, doc, DOC_MAX, 2000);
        if (rc >= 0 && path_state(doc, index - 1, state, sizeof(state)) == 0 &&
            (strcmp(state, "disabled") == 0) == !enable)
            break;
        if (waited >= CONFIRM_MS) {
            mpt_cmd_error("path",
                          "the client at %s did not %s path %u (%s); is it running with %s?", sock,
                          action, index, label, file);
            goto out;
        }
        sleep_ms(50);
    }
    if (!quiet)
        printf("path %u (%s): %s\n", index, label, enable ? "enabled" : "disabled");
    status = fflush(stdout) == 0 ? MPT_EXIT_OK : MPT_EXIT_FAIL;
out:
    free(doc);
    mpt_secure_free(cfg, sizeof(*cfg));
    return status;
usage:
    fprintf(stderr, "Try `mptunnel path --help'.\n");
    return MPT_EXIT_USAGE;
}
