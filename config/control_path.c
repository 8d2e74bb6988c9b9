/* Where a client's or server's control socket lives when the file does not say (`control =`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

/* The file's base name without a trailing `.ini': the instance name in default paths. */
static void instance_name(const char *file, char *out, size_t len)
{
    const char *base = strrchr(file, '/');
    size_t n;

    base = base ? base + 1 : file;
    n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".ini") == 0)
        n -= 4;
    if (n == 0) {
        base = "mptunnel";
        n = strlen(base);
    }
    if (n >= len)
        n = len - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}

int mpt_config_control_path(const struct mpt_config *cfg, enum mpt_config_role role, char *buf,
                            size_t len)
{
    const char *set, *rolename, *env;
    char name[128], dir[256];
    int n;

    if (role == MPT_ROLE_CLIENT) {
        set = cfg->client.control;
        rolename = "client";
    } else if (role == MPT_ROLE_SERVER) {
        set = cfg->server.control;
        rolename = "server";
    } else {
        return -EINVAL;
    }
    if (set[0]) {
        n = snprintf(buf, len, "%s", set);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
    }
    instance_name(cfg->file, name, sizeof(name));
    /* systemd's RuntimeDirectory= may list several directories: the first is ours. */
    env = getenv("RUNTIME_DIRECTORY");
    if (env && env[0] == '/') {
        size_t k = strcspn(env, ":");
        n = snprintf(dir, sizeof(dir), "%.*s", (int)k, env);
    } else if (geteuid() == 0) {
        n = snprintf(dir, sizeof(dir), "/run/mptunnel");
    } else if ((env = getenv("XDG_RUNTIME_DIR")) && env[0] == '/') {
        n = snprintf(dir, sizeof(dir), "%s/mptunnel", env);
    } else {
        n = snprintf(dir, sizeof(dir), "/tmp/mptunnel-%u", (unsigned)geteuid());
    }
    if (n < 0 || (size_t)n >= sizeof(dir))
        return -ENAMETOOLONG;
    n = snprintf(buf, len, "%s/%s-%s.sock", dir, rolename, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
