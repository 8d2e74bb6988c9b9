/* config/: secrets others can read are refused, messages never quote key material, and the control
 * socket's directory is checked before use. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "config/config.h"
#include "task.h"

#define SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
/* Looks like a key but is not one (48 bytes): what a user may paste by mistake. */
#define KEY48 "q3Jv7TzW9pL2xK8mN4bV6cR1sY5uH0gE3fD7aQ9wZ2iO6kP8jM4nB1vC5xL7tS3r"

static struct mpt_config cfg;
static char err[MPT_CONFIG_ERR_MAX];
static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/mpt-secrets-XXXXXX");
    ASSERT(mkdtemp(tmpdir) != NULL);
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ASSERT_EQ(system(cmd), 0);
}

static void write_file(const char *path, const char *content, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    ASSERT_EQ(close(fd), 0);
    ASSERT_EQ(chmod(path, mode), 0);
}

static int load_file(const char *path)
{
    memset(err, 0, sizeof(err));
    return mpt_config_load(&cfg, path, MPT_ROLE_ANY, err, sizeof(err));
}

static void test_inline_secret_mode(void)
{
    char ini[128], want[600];

    make_tmpdir();
    snprintf(ini, sizeof(ini), "%s/tunnel.ini", tmpdir);

    write_file(ini, "[tunnel]\nsecret = " SECRET "\n", 0600);
    ASSERT_EQ(load_file(ini), 0);
    write_file(ini, "[tunnel]\nsecret = " SECRET "\n", 0400);
    ASSERT_EQ(load_file(ini), 0);

    write_file(ini, "[tunnel]\nlog_level = info\nsecret = " SECRET "\n", 0644);
    ASSERT_EQ(load_file(ini), -1);
    snprintf(want, sizeof(want),
             "%s:3: secret: this file holds a secret and can be read by others (mode 0644): run "
             "`chmod 600 %s' (or set `insecure_permissions = yes' in [tunnel] to accept it)",
             ini, ini);
    ASSERT_STR_EQ(err, want);
    ASSERT_EQ(cfg.have_secret, 0);

    write_file(ini, "[tunnel]\nsecret = " SECRET "\n", 0640);
    ASSERT_EQ(load_file(ini), -1);
    ASSERT(strstr(err, "can be read by its group (mode 0640)") != NULL);
    write_file(ini, "[tunnel]\nsecret = " SECRET "\n", 0620);
    ASSERT_EQ(load_file(ini), -1);
    ASSERT(strstr(err, "can be written by its group (mode 0620)") != NULL);

    /* Execute bits give nothing away. */
    write_file(ini, "[tunnel]\nsecret = " SECRET "\n", 0711);
    ASSERT_EQ(load_file(ini), 0);

    /* Execute bits give nothing away. */
    write_file(ini, "[tunnel]\nsecret = " SECRET "\n", 0711);
    ASSERT_EQ(load_file(ini), 0);

    /* The override, wherever it stands in [tunnel]. */
    write_file(ini, "[tunnel]\nsecret = " SECRET "\ninsecure_permissions = yes\n", 0644);
    ASSERT_EQ(load_file(ini), 0);
    ASSERT_EQ(cfg.insecure_permissions, 1);
    ASSERT_EQ(cfg.secret[31], 31);
    write_file(ini, "[tunnel]\ninsecure_permissions = no\nsecret = " SECRET "\n", 0644);
    ASSERT_EQ(load_file(ini), -1);
    write_file(ini, "[tunnel]\ninsecure_permissions = maybe\n", 0600);
    ASSERT_EQ(load_file(ini), -1);
    snprintf(want, sizeof(want),
             "%s:2: insecure_permissions: invalid value `maybe' (expected yes or no)", ini);
    ASSERT_STR_EQ(err, want);

    /* No secret in the file: its mode is its owner's business. */
    write_file(ini, "[client]\nlisten = 3000\nbridge = 1.1.1.1:4000\n", 0644);
    ASSERT_EQ(load_file(ini), 0);
    /* From memory (tests, fuzzing) there is no mode to check. */
    ASSERT_EQ(mpt_config_load_string(&cfg, "t.ini", "[tunnel]\nsecret = " SECRET "\n", MPT_ROLE_ANY,
                                     err, sizeof(err)),
              0);
    remove_tmpdir();
}

static void test_secret_file_mode(void)
{
    char ini[128], sec[128], want[700];

    make_tmpdir();
    snprintf(ini, sizeof(ini), "%s/tunnel.ini", tmpdir);
    snprintf(sec, sizeof(sec), "%s/secret", tmpdir);
    write_file(sec, SECRET "\n", 0600);
    /* The file naming the secret may be world-readable: it holds none. */
    write_file(ini, "[tunnel]\nsecret_file = secret\n", 0644);
    ASSERT_EQ(load_file(ini), 0);
    ASSERT_EQ(cfg.secret[7], 7);

    write_file(sec, SECRET "\n", 0644);
    ASSERT_EQ(load_file(ini), -1);
    snprintf(want, sizeof(want),
             "%s:2: secret_file: `%s' can be read by others (mode 0644): run `chmod 600 %s' (or "
             "set `insecure_permissions = yes' in [tunnel] to accept it)",
             ini, sec, sec);
    ASSERT_STR_EQ(err, want);
    ASSERT_EQ(cfg.have_secret, 0);

    write_file(sec, SECRET "\n", 0604);
    ASSERT_EQ(load_file(ini), -1);
    ASSERT(strstr(err, "can be read by others (mode 0604)") != NULL);

    write_file(ini, "[tunnel]\ninsecure_permissions = yes\nsecret_file = secret\n", 0600);
    ASSERT_EQ(load_file(ini), 0);
    ASSERT_EQ(cfg.secret[7], 7);
    remove_tmpdir();
}

/* Sets a POSIX ACL: entries of (tag, perm, id), as the kernel stores them. Returns 0, or -1 if
 * the file system has no ACLs. */
static int set_acl(const char *path, const unsigned (*e)[3], int n)
{
    unsigned char b[4 + 8 * 8];
    size_t len = 4;

    memset(b, 0, sizeof(b));
    b[0] = 2; /* version */
    for (int i = 0; i < n; i++, len += 8) {
        b[len] = (unsigned char)e[i][0];
        b[len + 2] = (unsigned char)e[i][1];
        for (int k = 0; k < 4; k++)
            b[len + 4 + k] = (unsigned char)(e[i][2] >> (8 * k));
    }
    return setxattr(path, "system.posix_acl_access", b, len, 0);
}

#define NOID 0xffffffffu

static void test_acl(void)
{
    char ini[128], sec[128];
    unsigned me = (unsigned)geteuid();
    struct stat st;

    make_tmpdir();
    snprintf(ini, sizeof(ini), "%s/tunnel.ini", tmpdir);
    snprintf(sec, sizeof(sec), "%s/secret", tmpdir);
    write_file(sec, SECRET "\n", 0400);
    write_file(ini, "[tunnel]\nsecret_file = secret\n", 0600);
    /* As systemd hands credentials to a service's user: 0400, and an ACL entry for that user
     * (here: this process's). The mode then reads 0440, but nobody else may read the file. */
    {
        static const unsigned acl[][3] = {
            {0x01, 4, NOID}, {0x02, 4, 0}, {0x04, 0, NOID}, {0x10, 4, NOID}, {0x20, 0, NOID}};
        unsigned e[5][3];
        memcpy(e, acl, sizeof(e));
        e[1][2] = me;
        if (set_acl(sec, (const unsigned(*)[3])e, 5) != 0) {
            fprintf(stderr, "  (no POSIX ACLs in %s: not tried)\n", tmpdir);
            remove_tmpdir();
            return;
        }
    }
    ASSERT_EQ(stat(sec, &st), 0);
    fprintf(stderr, "  the service's ACL: mode %04o\n", (unsigned)(st.st_mode & 07777));
    ASSERT_EQ(st.st_mode & 07777, 0440);
    ASSERT_EQ(load_file(ini), 0);
    ASSERT_EQ(cfg.secret[9], 9);

    /* Another user in the ACL: refused, with the ACL named. */
    {
        static const unsigned acl[][3] = {
            {0x01, 6, NOID}, {0x02, 4, 65533}, {0x04, 0, NOID}, {0x10, 4, NOID}, {0x20, 0, NOID}};
        ASSERT_EQ(set_acl(sec, acl, 5), 0);
    }
    ASSERT_EQ(load_file(ini), -1);
    fprintf(stderr, "  %s\n", err);
    ASSERT(strstr(err, "can be read by other users or groups (mode 0640 and an ACL): run "
                       "`setfacl -b ") != NULL);
    ASSERT(strstr(err, " && chmod 600 ") != NULL);

    /* The owning group, under the mask. */
    {
        static const unsigned acl[][3] = {
            {0x01, 6, NOID}, {0x04, 4, NOID}, {0x08, 0, 65533}, {0x10, 4, NOID}, {0x20, 0, NOID}};
        ASSERT_EQ(set_acl(sec, acl, 5), 0);
    }
    ASSERT_EQ(load_file(ini), -1);
    /* ... but not when the mask takes the permission away. */
    {
        static const unsigned acl[][3] = {
            {0x01, 6, NOID}, {0x04, 4, NOID}, {0x08, 4, 65533}, {0x10, 0, NOID}, {0x20, 0, NOID}};
        ASSERT_EQ(set_acl(sec, acl, 5), 0);
    }
    ASSERT_EQ(load_file(ini), 0);
    remove_tmpdir();
}

/* err must not hold 12 consecutive characters of KEY48. */
static void assert_not_quoted(const char *text, int line, const char *key)
{
    char where[64];

    memset(err, 0, sizeof(err));
    ASSERT_EQ(mpt_config_load_string(&cfg, "t.ini", text, MPT_ROLE_ANY, err, sizeof(err)), -1);
    fprintf(stderr, "  %s\n", err);
    for (size_t i = 0; i + 12 <= strlen(KEY48); i++)
        ASSERT(memmem(err, strlen(err), &KEY48[i], 12) == NULL);
    snprintf(where, sizeof(where), "t.ini:%d: %s", line, key);
    ASSERT(strncmp(err, where, strlen(where)) == 0);
}

static void test_messages_hide_secrets(void)
{
    assert_not_quoted("[tunnel]\nsecret = " KEY48 "\n", 2, "secret: secret decodes to 48 bytes");
    assert_not_quoted("[tunnel]\nsecret = " KEY48 "!\n", 2, "secret: secret is not valid base64");
    assert_not_quoted("[tunnel]\nsecret_file = " KEY48 "\n", 2,
                      "secret_file: invalid value (not shown: it may hold a secret)");
    assert_not_quoted("[tunnel]\nsecret " KEY48 "\n", 2,
                      "syntax error: expected `key = value' or `[section]' (the line is not shown");
    assert_not_quoted("[tunnel]\n" KEY48 "\n", 2, "syntax error:");
    assert_not_quoted("[tunnel]\n" KEY48 "==\n", 2,
                      "syntax error: expected `key = value' (the key");
    assert_not_quoted(KEY48 "==\n", 1, "syntax error:");
    assert_not_quoted("[" KEY48 "]\n", 1, "syntax error: not a section header");
    assert_not_quoted("[tunnel]\nlog_level = " KEY48 "\n", 2,
                      "log_level: invalid value (not shown: it may hold a secret)");
    assert_not_quoted("[client]\nbridge = " KEY48 "\n", 2, "bridge: invalid value (not shown");
    assert_not_quoted("[client]\nsecret = " KEY48 "\n", 2, "secret: unknown key in [client]");
    /* Ordinary values are still quoted. */
    memset(err, 0, sizeof(err));
    ASSERT_EQ(mpt_config_load_string(&cfg, "t.ini", "[tunnel]\nsecret_file = /no/such/file\n",
                                     MPT_ROLE_ANY, err, sizeof(err)),
              -1);
    ASSERT_STR_EQ(err,
                  "t.ini:2: secret_file: cannot open `/no/such/file': No such file or directory");
    ASSERT_EQ(mpt_config_load_string(&cfg, "t.ini", "[tunnel]\nlog_level = loud\n", MPT_ROLE_ANY,
                                     err, sizeof(err)),
              -1);
    ASSERT_STR_EQ(err, "t.ini:2: log_level: invalid level `loud' (expected error, warn, info or "
                       "debug)");
}

static void test_control_dir(void)
{
    char dir[128], sock[200], link[160];

    make_tmpdir();
    snprintf(dir, sizeof(dir), "%s/run", tmpdir);
    snprintf(sock, sizeof(sock), "%s/client-x.sock", dir);
    ASSERT_EQ(mkdir(dir, 0700), 0);
    ASSERT_EQ(mpt_config_control_dir_check(sock, err, sizeof(err)), 0);
    ASSERT_EQ(chmod(dir, 0755), 0);
    ASSERT_EQ(mpt_config_control_dir_check(sock, err, sizeof(err)), 0);

    ASSERT_EQ(chmod(dir, 0777), 0);
    ASSERT_EQ(mpt_config_control_dir_check(sock, err, sizeof(err)), -EPERM);
    fprintf(stderr, "  %s\n", err);
    ASSERT(strstr(err, "is writable by others (mode 0777): not using it") != NULL);
    ASSERT_EQ(chmod(dir, 01777), 0);
    ASSERT_EQ(mpt_config_control_dir_check(sock, err, sizeof(err)), -EPERM);
    ASSERT_EQ(chmod(dir, 0770), 0);
    ASSERT_EQ(mpt_config_control_dir_check(sock, err, sizeof(err)), -EPERM);
    ASSERT(strstr(err, "is writable by its group (mode 0770)") != NULL);
    ASSERT_EQ(chmod(dir, 0700), 0);

    snprintf(link, sizeof(link), "%s/link", tmpdir);
    ASSERT_EQ(symlink(dir, link), 0);
    snprintf(sock, sizeof(sock), "%s/client-x.sock", link);
    ASSERT_EQ(mpt_config_control_dir_check(sock, err, sizeof(err)), -ENOTDIR);
    ASSERT(strstr(err, "is not a directory (a symbolic link)") != NULL);
    snprintf(sock, sizeof(sock), "%s/missing/client-x.sock", tmpdir);
    ASSERT_EQ(mpt_config_control_dir_check(sock, err, sizeof(err)), -ENOENT);

    if (geteuid() == 0) {
        snprintf(sock, sizeof(sock), "%s/client-x.sock", dir);
        ASSERT_EQ(chown(dir, 65534, 65534), 0);
        ASSERT_EQ(mpt_config_control_dir_check(sock, err, sizeof(err)), -EPERM);
        fprintf(stderr, "  %s\n", err);
        ASSERT(strstr(err, "belongs to another user (uid 65534)") != NULL);
    } else {
        fprintf(stderr, "  (not root: a directory of another user is not tried)\n");
    }
    remove_tmpdir();
}

static const struct task_case cases[] = {
    {"inline_secret_mode", test_inline_secret_mode},
    {"secret_file_mode", test_secret_file_mode},
    {"messages_hide_secrets", test_messages_hide_secrets},
    {"acl", test_acl},
    {"control_dir", test_control_dir},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
