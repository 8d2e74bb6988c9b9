/* The options every command that reads a config file shares: -c FILE, -v, -q. */
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/log.h"

static void usage_hint(const char *cmd)
{
    fprintf(stderr, "Try `mptunnel %s --help'.\n", cmd);
}

static void print_usage(const char *cmd)
{
    for (const struct mpt_cmd *c = mpt_cmds; c->name; c++) {
        if (strcmp(c->name, cmd) == 0) {
            c->usage(stdout);
            return;
        }
    }
}

int mpt_cmd_config_opt(const char *cmd, int argc, char **argv, int *i, const char **file)
{
    const char *a = argv[*i];

    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
        if (*i + 1 >= argc) {
            mpt_cmd_error(cmd, "option `%s' needs a FILE", a);
            return -1;
        }
        *file = argv[++*i];
        return 1;
    }
    if (strncmp(a, "--config=", 9) == 0) {
        *file = a + 9;
        return 1;
    }
    if (strncmp(a, "-c", 2) == 0 && a[2]) {
        *file = a + 2;
        return 1;
    }
    return 0;
}

int mpt_cmd_load_config(const char *cmd, int argc, char **argv, enum mpt_config_role role,
                        struct mpt_config *cfg)
{
    char err[MPT_CONFIG_ERR_MAX];
    const char *file = NULL;
    int verbosity = 0, level;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int opt;

        if (mpt_cmd_is_help(a)) {
            print_usage(cmd);
            exit(MPT_EXIT_OK);
        } else if ((opt = mpt_cmd_config_opt(cmd, argc, argv, &i, &file)) != 0) {
            if (opt < 0) {
                usage_hint(cmd);
                return MPT_EXIT_USAGE;
            }
        } else if (strcmp(a, "--verbose") == 0) {
            verbosity++;
        } else if (strcmp(a, "--quiet") == 0) {
            verbosity--;
        } else if (a[0] == '-' && a[1] && strspn(a + 1, "vq") == strlen(a + 1)) {
            for (const char *p = a + 1; *p; p++)
                verbosity += *p == 'v' ? 1 : -1;
        } else if (a[0] == '-') {
            mpt_cmd_error(cmd, "unknown option `%s'", a);
            usage_hint(cmd);
            return MPT_EXIT_USAGE;
        } else {
            mpt_cmd_error(cmd, "unexpected argument `%s'", a);
            usage_hint(cmd);
            return MPT_EXIT_USAGE;
        }
    }
    if (!file || !*file) {
        mpt_cmd_error(cmd, "no configuration file (use -c FILE)");
        usage_hint(cmd);
        return MPT_EXIT_USAGE;
    }
    if (mpt_config_load(cfg, file, role, err, sizeof(err)) != 0) {
        mpt_cmd_error(cmd, "%s", err);
        return MPT_EXIT_USAGE;
    }
    level = (cfg->log_level_set ? (int)cfg->log_level : MPT_LOGL_INFO) + verbosity;
    if (level < MPT_LOGL_ERROR)
        level = MPT_LOGL_ERROR;
    if (level > MPT_LOGL_DEBUG)
        level = MPT_LOGL_DEBUG;
    mpt_cmd_log_init(level);
    return MPT_EXIT_OK;
}
