/* Where a client's or server's control socket lives when the file does not say (`control =`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int mpt_config_control_dir_check(const char *sock_path, char *err, size_t errlen)
{
    char dir[256];
    const char *slash = strrchr(sock_path, '/');
    struct stat st;
    int n;

    if (!slash)
        n = snprintf(dir, sizeof(dir), ".");
    else if (slash == sock_path)
        n = snprintf(dir, sizeof(dir), "/");
    else
        n = snprintf(dir, sizeof(dir), "%.*s", (int)(slash - sock_path), sock_path);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        snprintf(err, errlen, "control socket path too long");
        return -ENAMETOOLONG;
    }
    if (lstat(dir, &st) != 0) {
        n = -errno;
        snprintf(err, errlen, "control directory `%s': %s", dir, strerror(-n));
        return n;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "control directory `%s' is not a directory%s", dir,
                 S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
        return -ENOTDIR;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(err, errlen,
                 "control directory `%s' belongs to another user (uid %u): not using it "
                 "(remove it, or set `control =' to a path in a directory of your own)",
                 dir, (unsigned)st.st_uid);
        return -EPERM;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen,
                 "control directory `%s' is writable by %s (mode %04o): not using it "
                 "(run `chmod go-w %s', or set `control =' to a path in a private directory)",
                 dir, st.st_mode & S_IWOTH ? "others" : "its group", (unsigned)(st.st_mode & 07777),
                 dir);
        return -EPERM;
    }
    return 0;
}
