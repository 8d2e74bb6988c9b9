/* The INI file turned into a struct mpt_config.
 *
 * inih splits `key = value' and calls on_key() for each; lines reach it through read_line(), which
 * numbers them (inih does not pass line numbers to handlers in every build), handles sections
 * itself (inih does not report a section without keys), drops comments, and refuses what inih
 * would silently misread: NUL bytes, lines longer than its buffer, indented continuation lines.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "config/config.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define SECRET_FILE_MAX 1024
#define CONTROL_PATH_MAX 107 /* sun_path holds 108 bytes, NUL included */
#define DEVICE_NAME_MAX 15   /* IFNAMSIZ - 1 */
#define DURATION_MAX_MS (24u * 3600 * 1000)
#define BUF_SIZE_MAX (1024u * 1024 * 1024)

enum section_kind {
    SEC_NONE = 0,
    SEC_TUNNEL,
    SEC_CLIENT,
    SEC_SERVER,
    SEC_PATH,
    SEC_FORWARD,
    SEC_PEER,
};

struct config_ctx;

struct config_key {
    enum section_kind section;
    const char *name;
    int repeatable;
    int (*set)(struct config_ctx *c, const char *key, const char *value);
};

static const struct config_key keys[];
#define NKEYS 56

struct config_ctx {
    struct mpt_config *cfg;
    const char *name; /* the file, as named in messages */
    const char *text;
    size_t len, pos;
    int line;
    enum section_kind section;
    int section_line;
    struct mpt_path_config *path;       /* the [path NAME] being read */
    struct mpt_forward_config *forward; /* the [forward NAME] being read */
    struct mpt_config_peer *peer;       /* the [peer NAME] being read */
    int peer_key_line[NKEYS];           /* its keys; a name is never read twice */
    int forward_key_line[MPT_CONFIG_MAX_FORWARDS][NKEYS];
    int path_line[MPT_CONFIG_MAX_PATHS];
    int key_line[SEC_PATH][NKEYS];                  /* where a key was first given, 0 = not yet */
    int path_key_line[MPT_CONFIG_MAX_PATHS][NKEYS]; /* the same per [path NAME] */
    int file_mode_known;                            /* file_mode is the config file's */
    mode_t file_mode;
    mode_t file_access; /* what others may do (others_access) */
    int file_acl;
    char exposed_path[PATH_MAX]; /* the first key file others may read or write, and its mode */
    mode_t exposed_mode;
    mode_t exposed_access;
    int exposed_acl;
    int exposed_line;
    const char *exposed_key; /* `secret_file', `private_key_file' */
    int inline_secret_line;  /* first key holding key material */
    const char *inline_secret_key;
    int failed;
    char *err;
    size_t errlen;
};

static const char *const section_names[] = {"",     "tunnel",  "client", "server",
                                            "path", "forward", "peer"};

/* Records the first error only: `name:line: message', or `name: message' for line 0. */
__attribute__((format(printf, 3, 4))) static int fail(struct config_ctx *c, int line,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->failed)
        return -1;
    c->failed = 1;
    if (line > 0)
        n = snprintf(c->err, c->errlen, "%s:%d: ", c->name, line);
    else
        n = snprintf(c->err, c->errlen, "%s: ", c->name);
    if (n < 0 || (size_t)n >= c->errlen)
        goto out;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
out:
    /* Messages quote hostile text and end up on terminals and in logs. */
    for (char *p = c->err; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = '?';
    return -1;
}

/* Keys whose value is key material. */
static int secret_key_name(const char *name)
{
    return strstr(name, "secret") || strstr(name, "private") || strstr(name, "password") ||
           strcmp(name, "psk") == 0;
}

/* Keys whose value names a file (`secret_file'): a path, which messages may quote. */
static int file_key_name(const char *name)
{
    size_t len = strlen(name);

    return len > 5 && strcmp(name + len - 5, "_file") == 0;
}

/* 1 if `s' has the shape of a key: a run of 40 or more base64 characters (32 bytes are 43) with
 * upper and lower case letters and digits, which paths and host names seldom have. */
static int looks_like_key(const char *s)
{
    size_t run = 0;
    int kinds = 0;

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!isalnum(ch) && ch != '+' && ch != '/' && ch != '-' && ch != '_') {
            run = 0;
            kinds = 0;
            continue;
        }
        run++;
        kinds |= isupper(ch) ? 1 : islower(ch) ? 2 : isdigit(ch) ? 4 : 0;
        if (run >= 40 && kinds == 7)
            return 1;
    }
    return 0;
}

/* 1 if a line must not be quoted in a message: it may hold a secret. */
static int line_may_hold_secret(const char *line)
{
    char word[32];
    size_t n = strcspn(line, " \t=:[]");

    if (n < sizeof(word)) {
        memcpy(word, line, n);
        word[n] = '\0';
        for (char *p = word; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    } else {
        word[0] = '\0';
    }
    return looks_like_key(line) || secret_key_name(word);
}

/* 1 if err holds 12 consecutive characters of value (all of it if shorter, from 8 on). */
static int quotes(const char *err, const char *value)
{
    size_t len = strlen(value), w = len < 12 ? len : 12;

    if (w < 8)
        return 0;
    for (size_t i = 0; i + w <= len; i++)
        if (memmem(err, strlen(err), value + i, w))
            return 1;
    return 0;
}

/* What users other than the file's owner and this process's user may do to an open file, read
 * or write (execute does not matter here), as S_IRGRP, S_IWGRP, S_IROTH and S_IWOTH bits: its
 * group and other bits or, for a file with a POSIX ACL (*acl = 1),
 * the ACL's own answer, in which the group bits of the mode are only its mask (systemd's
 * credentials, for one, are 0400 files that the service's user may read through an ACL). */
static mode_t others_access(int fd, mode_t mode, uid_t owner, int *acl)
{
    unsigned char b[1024];
    ssize_t n = fgetxattr(fd, "system.posix_acl_access", b, sizeof(b));
    mode_t group = 0, mask = 07;

    *acl = 0;
    if (n < 0 && errno != ERANGE)
        return mode & 066; /* no ACL (ENODATA, ENOTSUP) */
    *acl = 1;
    if (n < 4 || (n - 4) % 8 != 0)
        return 066; /* too large or unreadable: assume the worst */
    /* Little-endian: a version (2), then entries of u16 tag, u16 permissions, u32 id. */
    for (ssize_t i = 4; i + 8 <= n; i += 8) {
        unsigned tag = b[i] | b[i + 1] << 8, perm = (b[i + 2] | b[i + 3] << 8) & 07;
        uint32_t id = (uint32_t)b[i + 4] | (uint32_t)b[i + 5] << 8 | (uint32_t)b[i + 6] << 16 |
                      (uint32_t)b[i + 7] << 24;
        if (tag == 0x02 && id != owner && id != geteuid()) /* ACL_USER: another user */
            group |= perm;
        else if (tag == 0x04 || tag == 0x08) /* ACL_GROUP_OBJ, ACL_GROUP */
            group |= perm;
        else if (tag == 0x10) /* ACL_MASK */
            mask = perm;
    }
    return (mode_t)((group & mask & 06) << 3) | (mode & 06);
}

static int parse_uint(unsigned long *out, const char *s, unsigned long min, unsigned long max)
{
    unsigned long v = 0;
    const char *p;

    if (!*s)
        return -1;
    for (p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (ULONG_MAX - 9) / 10)
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int set_uint(struct config_ctx *c, const char *key, const char *value, unsigned *out,
                    unsigned long min, unsigned long max)
{
    unsigned long v;

    if (parse_uint(&v, value, min, max) != 0)
        return fail(c, c->line, "%s: invalid value `%s' (expected an integer %lu-%lu)", key, value,
                    min, max);
    *out = (unsigned)v;
    return 0;
}

static int set_duration(struct config_ctx *c, const char *key, const char *value, uint32_t *out,
                        uint32_t min, uint32_t max, const char *range)
{
    uint32_t ms;

    if (mpt_duration_parse(&ms, value) != 0)
        return fail(c, c->line, "%s: invalid duration `%s' (expected e.g. 30s, 500ms, 2m)", key,
                    value);
    if (ms < min || ms > max)
        return fail(c, c->line, "%s: duration `%s' out of range (%s)", key, value, range);
    *out = ms;
    return 0;
}

static int set_hostport(struct config_ctx *c, const char *key, const char *value,
                        struct mpt_hostport *hp, int allow_port_only)
{
    char reason[MPT_CONFIG_ERR_MAX];

    if (mpt_hostport_parse(hp, value, allow_port_only, reason, sizeof(reason)) != 0)
        return fail(c, c->line, "%s: %s", key, reason);
    hp->line = c->line;
    return 0;
}

static int set_control(struct config_ctx *c, const char *key, const char *value, char *out)
{
    if (strlen(value) > CONTROL_PATH_MAX)
        return fail(c, c->line, "%s: path `%.40s...' too long (max %d characters)", key, value,
                    CONTROL_PATH_MAX);
    strcpy(out, value);
    return 0;
}

/* A slot in client.paths for a `bridge =' line or a [path NAME] section. */
static struct mpt_path_config *add_path(struct config_ctx *c, const char *what)
{
    struct mpt_client_config *cl = &c->cfg->client;
    struct mpt_path_config *p;

    if (cl->npaths >= MPT_CONFIG_MAX_PATHS) {
        fail(c, c->line, "%s: too many paths (max %d)", what, MPT_CONFIG_MAX_PATHS);
        return NULL;
    }
    c->path_line[cl->npaths] = c->line;
    p = &cl->paths[cl->npaths++];
    memset(p, 0, sizeof(*p));
    p->priority = 1;
    p->weight = 1;
    return p;
}

static int set_secret(struct config_ctx *c, const char *key, const char *value)
{
    char reason[MPT_CONFIG_ERR_MAX];

    if (mpt_secret_parse(c->cfg->secret, value, reason, sizeof(reason)) != 0)
        return fail(c, c->line, "%s: %s", key, reason);
    c->cfg->have_secret = 1;
    c->cfg->secret_line = c->line;
    return 0;
}

/* Relative to the directory of the config file, so that a file and its secret move together. */
static int resolve_relative(char *out, size_t outlen, const char *base, const char *path)
{
    const char *slash = strrchr(base, '/');
    int n;

    if (path[0] == '/' || !slash)
        n = snprintf(out, outlen, "%s", path);
    else
        n = snprintf(out, outlen, "%.*s/%s", (int)(slash - base), base, path);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* A secret's file (`secret_file', `private_key_file', `socks_password_file') read whole into
 * text[SECRET_FILE_MAX + 1], NUL-terminated, and *lenp the bytes read (a NUL inside is the
 * caller's to refuse), its path as opened into path[PATH_MAX]. The first such file that others
 * may read or write is kept for check_permissions(). Returns 0, or -1 with the error recorded;
 * text is the caller's to wipe. */
static int read_secret_file(struct config_ctx *c, const char *key, const char *value,
                            const char *what, char *text, size_t *lenp, char *path)
{
    struct stat st;
    ssize_t n;
    size_t len = 0;
    mode_t access;
    int fd = -1, rc = -1, acl;

    if (resolve_relative(path, PATH_MAX, c->name, value) != 0) {
        fail(c, c->line, "%s: path `%.40s...' too long", key, value);
        goto out;
    }
    /* Non-blocking and regular files only: checking a config must never hang on a FIFO. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        fail(c, c->line, "%s: cannot open `%s': %s", key, path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(c, c->line, "%s: `%s' is not a regular file", key, path);
        goto out;
    }
    access = others_access(fd, st.st_mode, st.st_uid, &acl);
    if (access && !c->exposed_path[0]) {
        strcpy(c->exposed_path, path);
        c->exposed_mode = st.st_mode;
        c->exposed_access = access;
        c->exposed_acl = acl;
        c->exposed_line = c->line;
        c->exposed_key = key;
    }
    for (;;) {
        n = read(fd, text + len, SECRET_FILE_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail(c, c->line, "%s: cannot read `%s': %s", key, path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == SECRET_FILE_MAX) {
            fail(c, c->line, "%s: `%s' is too large for a %s (max %d bytes)", key, path, what,
                 SECRET_FILE_MAX - 1);
            goto out;
        }
    }
    text[len] = '\0';
    *lenp = len;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Where a secret's file was opened, for messages (cut short with `...' if need be). */
static void keep_path(char *opened, size_t opened_len, const char *path)
{
    if (strlen(path) < opened_len)
        strcpy(opened, path);
    else
        snprintf(opened, opened_len, "%.*s...", (int)opened_len - 4, path);
}

/* A key in a file of its own (`secret_file', `private_key_file'): read, as mpt_key_parse() does
 * with `what' and `hint', into out, the path as opened into opened[opened_len]. */
static int read_key_file(struct config_ctx *c, const char *key, const char *value,
                         uint8_t out[MPT_KEY_LEN], const char *what, const char *hint, char *opened,
                         size_t opened_len)
{
    char path[PATH_MAX], text[SECRET_FILE_MAX + 1], reason[MPT_CONFIG_ERR_MAX];
    size_t len;
    int rc = -1;

    if (read_secret_file(c, key, value, what, text, &len, path) != 0)
        goto out;
    if (memchr(text, '\0', len)) {
        fail(c, c->line, "%s: `%s': %s is not valid base64", key, path, what);
        goto out;
    }
    if (mpt_key_parse(out, text, what, hint, reason, sizeof(reason)) != 0) {
        fail(c, c->line, "%s: `%s': %s", key, path, reason);
        goto out;
    }
    keep_path(opened, opened_len, path);
    rc = 0;
out:
    sodium_memzero(text, sizeof(text));
    return rc;
}

#define GENKEY_HINT "make one with `mptunnel genkey'"
#define PUBKEY_HINT "`mptunnel pubkey < private.key' prints it"

static int set_secret_file(struct config_ctx *c, const char *key, const char *value)
{
    if (read_key_file(c, key, value, c->cfg->secret, "secret", GENKEY_HINT, c->cfg->secret_file,
                      sizeof(c->cfg->secret_file)) != 0)
        return -1;
    c->cfg->have_secret = 1;
    c->cfg->secret_line = c->line;
    return 0;
}

/* This side's private key is good, and its public key known. */
static int own_key_done(struct config_ctx *c, const char *key, struct mpt_key_config *k)
{
    if (mpt_key_public(k->public_key, k->private_key) != 0) {
        sodium_memzero(k->private_key, sizeof(k->private_key));
        return fail(c, c->line, "%s: private key is all zero bytes (%s)", key, GENKEY_HINT);
    }
    k->have_private_key = 1;
    k->line = c->line;
    return 0;
}

static int set_private_key(struct config_ctx *c, const char *key, const char *value,
                           struct mpt_key_config *k)
{
    char reason[MPT_CONFIG_ERR_MAX];

    if (mpt_key_parse(k->private_key, value, "private key", GENKEY_HINT, reason, sizeof(reason)) !=
        0)
        return fail(c, c->line, "%s: %s", key, reason);
    return own_key_done(c, key, k);
}

static int set_private_key_file(struct config_ctx *c, const char *key, const char *value,
                                struct mpt_key_config *k)
{
    if (read_key_file(c, key, value, k->private_key, "private key", GENKEY_HINT, k->file,
                      sizeof(k->file)) != 0)
        return -1;
    return own_key_done(c, key, k);
}

static int set_client_private_key(struct config_ctx *c, const char *key, const char *value)
{
    return set_private_key(c, key, value, &c->cfg->client.key);
}

static int set_client_private_key_file(struct config_ctx *c, const char *key, const char *value)
{
    return set_private_key_file(c, key, value, &c->cfg->client.key);
}

static int set_server_private_key(struct config_ctx *c, const char *key, const char *value)
{
    return set_private_key(c, key, value, &c->cfg->server.key);
}

static int set_server_private_key_file(struct config_ctx *c, const char *key, const char *value)
{
    return set_private_key_file(c, key, value, &c->cfg->server.key);
}

/* A public key: 32 bytes of base64 that are a point of large order. */
static int parse_public_key(struct config_ctx *c, const char *key, const char *value,
                            uint8_t out[MPT_KEY_LEN])
{
    char reason[MPT_CONFIG_ERR_MAX];

    if (mpt_key_parse(out, value, "public key", PUBKEY_HINT, reason, sizeof(reason)) != 0)
        return fail(c, c->line, "%s: %s", key, reason);
    if (sodium_is_zero(out, MPT_KEY_LEN))
        return fail(c, c->line, "%s: public key is all zero bytes (%s)", key, PUBKEY_HINT);
    if (mpt_key_low_order(out))
        return fail(c, c->line,
                    "%s: public key is a point of small order, which no private key has (%s)", key,
                    PUBKEY_HINT);
    return 0;
}

static int set_server_public_key(struct config_ctx *c, const char *key, const char *value)
{
    struct mpt_client_config *cl = &c->cfg->client;

    if (parse_public_key(c, key, value, cl->server_public_key) != 0)
        return -1;
    cl->have_server_public_key = 1;
    cl->server_public_key_line = c->line;
    return 0;
}

static int set_insecure_permissions(struct config_ctx *c, const char *key, const char *value)
{
    if (strcmp(value, "yes") == 0)
        c->cfg->insecure_permissions = 1;
    else if (strcmp(value, "no") == 0)
        c->cfg->insecure_permissions = 0;
    else
        return fail(c, c->line, "%s: invalid value `%s' (expected yes or no)", key, value);
    return 0;
}

static int set_log_level(struct config_ctx *c, const char *key, const char *value)
{
    for (int l = MPT_LOG_ERROR; l <= MPT_LOG_DEBUG; l++) {
        if (strcmp(value, mpt_log_level_name((enum mpt_log_level)l)) == 0) {
            c->cfg->log_level = (enum mpt_log_level)l;
            c->cfg->log_level_set = 1;
            return 0;
        }
    }
    return fail(c, c->line, "%s: invalid level `%s' (expected error, warn, info or debug)", key,
                value);
}

static int set_cipher(struct config_ctx *c, const char *key, const char *value)
{
    if (strcmp(value, "auto") == 0)
        c->cfg->no_aes = 0;
    else if (strcmp(value, "chacha20-poly1305") == 0)
        c->cfg->no_aes = 1;
    else
        return fail(c, c->line, "%s: invalid cipher `%s' (expected auto or chacha20-poly1305)", key,
                    value);
    return 0;
}

static int set_bufsize(struct config_ctx *c, const char *key, const char *value)
{
    uint32_t v;

    if (mpt_size_parse(&v, value) != 0 || v == 0 || v > BUF_SIZE_MAX)
        return fail(c, c->line, "%s: invalid size `%s' (expected e.g. 4M, 512K, 65536; max 1G)",
                    key, value);
    if (strcmp(key, "sndbuf") == 0)
        c->cfg->sndbuf = v;
    else
        c->cfg->rcvbuf = v;
    return 0;
}

static int set_client_listen(struct config_ctx *c, const char *key, const char *value)
{
    return set_hostport(c, key, value, &c->cfg->client.listen, 1);
}

static int set_client_bridge(struct config_ctx *c, const char *key, const char *value)
{
    struct mpt_hostport hp;
    struct mpt_path_config *p;

    if (set_hostport(c, key, value, &hp, 0) != 0)
        return -1;
    p = add_path(c, key);
    if (!p)
        return -1;
    p->bridge = hp;
    return 0;
}

static int set_mode(struct config_ctx *c, const char *key, const char *value)
{
    for (int m = MPT_MODE_REDUNDANT; m <= MPT_MODE_FEC; m++) {
        if (strcmp(value, mpt_mode_name((enum mpt_sched_mode)m)) == 0) {
            c->cfg->client.mode = (enum mpt_sched_mode)m;
            return 0;
        }
    }
    return fail(c, c->line,
                "%s: invalid mode `%s' (expected redundant, adaptive, backup, balance or fec)", key,
                value);
}

static int set_target_loss(struct config_ctx *c, const char *key, const char *value)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(value, &end);
    if (errno || *end || end == value || !isfinite(v) || !(v > 0.0 && v < 1.0))
        return fail(c, c->line, "%s: invalid value `%s' (expected a fraction, 0 < x < 1)", key,
                    value);
    c->cfg->client.target_loss = v;
    return 0;
}

/* `fec = K:M`: blocks of K datagrams and M repairs (1..64, 1..32). */
static int set_fec(struct config_ctx *c, const char *key, const char *value)
{
    unsigned k, m;
    char tail;

    if (sscanf(value, "%u:%u%c", &k, &m, &tail) != 2 || k < 1 || k > 64 || m < 1 || m > 32)
        return fail(c, c->line,
                    "%s: invalid value `%s' (expected K:M, K datagrams 1 to 64 and M repairs 1 "
                    "to 32, as 10:6)",
                    key, value);
    c->cfg->client.fec_k = k;
    c->cfg->client.fec_m = m;
    return 0;
}

static int set_fec_wait(struct config_ctx *c, const char *key, const char *value)
{
    return set_duration(c, key, value, &c->cfg->client.fec_wait_ms, 1, 10000, "1ms-10s");
}

static int set_client_max_flows(struct config_ctx *c, const char *key, const char *value)
{
    return set_uint(c, key, value, &c->cfg->client.max_flows, 1, 1000000);
}

static int set_client_flow_timeout(struct config_ctx *c, const char *key, const char *value)
{
    return set_duration(c, key, value, &c->cfg->client.flow_timeout_ms, 1000, DURATION_MAX_MS,
                        "1s-24h");
}

static int set_probe_interval(struct config_ctx *c, const char *key, const char *value)
{
    return set_duration(c, key, value, &c->cfg->client.probe_interval_ms, 20, 10000, "20ms-10s");
}

/* How long a datagram may wait for those before it (PROTOCOL.md §8.1); 0 turns ordering off. */
static int set_reorder_cap(struct config_ctx *c, const char *key, const char *value, uint32_t *out)
{
    return set_duration(c, key, value, out, 0, 10000, "0-10s");
}

static int set_client_reorder_cap(struct config_ctx *c, const char *key, const char *value)
{
    return set_reorder_cap(c, key, value, &c->cfg->client.reorder_cap_ms);
}

static int set_server_reorder_cap(struct config_ctx *c, const char *key, const char *value)
{
    return set_reorder_cap(c, key, value, &c->cfg->server.reorder_cap_ms);
}

static int set_client_control(struct config_ctx *c, const char *key, const char *value)
{
    return set_control(c, key, value, c->cfg->client.control);
}

static int set_client_metrics(struct config_ctx *c, const char *key, const char *value)
{
    return set_hostport(c, key, value, &c->cfg->client.metrics, 0);
}

static int set_server_listen(struct config_ctx *c, const char *key, const char *value)
{
    return set_hostport(c, key, value, &c->cfg->server.listen, 1);
}

static int set_server_target(struct config_ctx *c, const char *key, const char *value)
{
    return set_hostport(c, key, value, &c->cfg->server.target, 0);
}

static int set_max_sessions(struct config_ctx *c, const char *key, const char *value)
{
    return set_uint(c, key, value, &c->cfg->server.max_sessions, 1, 100000);
}

static int set_server_max_flows(struct config_ctx *c, const char *key, const char *value)
{
    return set_uint(c, key, value, &c->cfg->server.max_flows, 1, 1000000);
}

static int set_server_flow_timeout(struct config_ctx *c, const char *key, const char *value)
{
    return set_duration(c, key, value, &c->cfg->server.flow_timeout_ms, 1000, DURATION_MAX_MS,
                        "1s-24h");
}

static int set_session_timeout(struct config_ctx *c, const char *key, const char *value)
{
    return set_duration(c, key, value, &c->cfg->server.session_timeout_ms, 1000, DURATION_MAX_MS,
                        "1s-24h");
}

static int set_server_control(struct config_ctx *c, const char *key, const char *value)
{
    return set_control(c, key, value, c->cfg->server.control);
}

static int set_server_metrics(struct config_ctx *c, const char *key, const char *value)
{
    return set_hostport(c, key, value, &c->cfg->server.metrics, 0);
}

static int set_client_socks(struct config_ctx *c, const char *key, const char *value)
{
    return set_hostport(c, key, value, &c->cfg->client.socks, 1);
}

/* RFC 1929 carries a name or password of 1-255 bytes; these are printable, without spaces at
 * either end (inih would have dropped them). */
static const char *socks_credential_invalid(const char *v)
{
    size_t len = strlen(v);

    if (len == 0)
        return "empty";
    if (len > MPT_CONFIG_SOCKS_CRED_MAX)
        return "longer than 255 bytes (RFC 1929)";
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            return "a control character";
    if (v[0] == ' ' || v[len - 1] == ' ')
        return "a space at either end";
    return NULL;
}

static int set_socks_user(struct config_ctx *c, const char *key, const char *value)
{
    const char *why = socks_credential_invalid(value);

    if (why)
        return fail(c, c->line, "%s: invalid user name `%s' (%s)", key, value, why);
    strcpy(c->cfg->client.socks_user, value);
    c->cfg->client.socks_user_line = c->line;
    return 0;
}

static int set_socks_password(struct config_ctx *c, const char *key, const char *value)
{
    const char *why = socks_credential_invalid(value);

    if (why)
        return fail(c, c->line, "%s: invalid password (%s)", key, why);
    strcpy(c->cfg->client.socks_password, value);
    c->cfg->client.socks_password_line = c->line;
    return 0;
}

/* The password is the file's first line (its end of line not included). */
static int set_socks_password_file(struct config_ctx *c, const char *key, const char *value)
{
    struct mpt_client_config *cl = &c->cfg->client;
    char path[PATH_MAX], text[SECRET_FILE_MAX + 1];
    const char *why;
    size_t len, first;
    int rc = -1;

    if (read_secret_file(c, key, value, "password", text, &len, path) != 0)
        goto out;
    first = strcspn(text, "\r\n"); /* stops at a NUL too */
    why = text[first] == '\0' && first < len ? "a NUL byte" : NULL;
    text[first] = '\0';
    if (!why)
        why = socks_credential_invalid(text);
    if (why) {
        fail(c, c->line, "%s: `%s': invalid password (%s)", key, path, why);
        goto out;
    }
    strcpy(cl->socks_password, text);
    cl->socks_password_line = c->line;
    keep_path(cl->socks_password_file, sizeof(cl->socks_password_file), path);
    rc = 0;
out:
    sodium_memzero(text, sizeof(text));
    return rc;
}

/* An `allow' line added to a list: rules[*n] ([server]'s, or a peer's within the shared table),
 * where *used of `max' places are taken; `limit' says which limit a full table breaks. */
static int add_allow(struct config_ctx *c, const char *key, const char *value,
                     struct mpt_allow *rules, unsigned *n, unsigned *used, unsigned max,
                     const char *limit)
{
    char reason[MPT_CONFIG_ERR_MAX], a[MPT_CONFIG_HOST_MAX + 32], b[sizeof(a)];
    struct mpt_allow rule;

    if (mpt_allow_parse(&rule, value, reason, sizeof(reason)) != 0)
        return fail(c, c->line, "%s: %s", key, reason);
    mpt_allow_format(&rule, a, sizeof(a));
    for (unsigned i = 0; i < *n; i++)
        if (strcmp(mpt_allow_format(&rules[i], b, sizeof(b)), a) == 0)
            return fail(c, c->line, "%s: `%s' already allowed at line %d", key, value,
                        rules[i].line);
    if (*used >= max)
        return fail(c, c->line, "%s: too many rules (%s)", key, limit);
    rule.line = c->line;
    rule.host.line = c->line;
    rules[*n] = rule;
    (*n)++;
    if (used != n)
        (*used)++;
    return 0;
}

static int set_allow(struct config_ctx *c, const char *key, const char *value)
{
    struct mpt_server_config *sv = &c->cfg->server;
    char limit[32];

    snprintf(limit, sizeof(limit), "max %d", MPT_CONFIG_MAX_ALLOW);
    return add_allow(c, key, value, sv->allow, &sv->nallow, &sv->nallow, MPT_CONFIG_MAX_ALLOW,
                     limit);
}

static int set_peer_public_key(struct config_ctx *c, const char *key, const char *value)
{
    const struct mpt_server_config *sv = &c->cfg->server;
    struct mpt_config_peer *p = c->peer;

    if (parse_public_key(c, key, value, p->public_key) != 0)
        return -1;
    for (const struct mpt_config_peer *q = sv->peers; q < p; q++)
        if (sodium_memcmp(q->public_key, p->public_key, MPT_KEY_LEN) == 0)
            return fail(c, c->line,
                        "%s: the same key as [peer %s] at line %d (each client needs a key pair "
                        "of its own)",
                        key, q->name, q->public_key_line);
    p->public_key_line = c->line;
    return 0;
}

static int set_peer_secret(struct config_ctx *c, const char *key, const char *value)
{
    char reason[MPT_CONFIG_ERR_MAX];

    if (mpt_secret_parse(c->peer->secret, value, reason, sizeof(reason)) != 0)
        return fail(c, c->line, "%s: %s", key, reason);
    c->peer->have_secret = 1;
    c->peer->secret_line = c->line;
    return 0;
}

static int set_peer_secret_file(struct config_ctx *c, const char *key, const char *value)
{
    struct mpt_config_peer *p = c->peer;

    if (read_key_file(c, key, value, p->secret, "secret", GENKEY_HINT, p->secret_file,
                      sizeof(p->secret_file)) != 0)
        return -1;
    p->have_secret = 1;
    p->secret_line = c->line;
    return 0;
}

static int set_peer_allow(struct config_ctx *c, const char *key, const char *value)
{
    struct mpt_server_config *sv = &c->cfg->server;
    struct mpt_config_peer *p = c->peer;
    char limit[64];

    snprintf(limit, sizeof(limit), "max %d in all [peer] sections", MPT_CONFIG_MAX_PEER_ALLOW);
    return add_allow(c, key, value, &sv->peer_allow[p->allow_first], &p->nallow, &sv->npeer_allow,
                     MPT_CONFIG_MAX_PEER_ALLOW, limit);
}

static int set_peer_target(struct config_ctx *c, const char *key, const char *value)
{
    return set_hostport(c, key, value, &c->peer->target, 0);
}

static int set_forward_listen(struct config_ctx *c, const char *key, const char *value)
{
    return set_hostport(c, key, value, &c->forward->listen, 1);
}

static int set_forward_target(struct config_ctx *c, const char *key, const char *value)
{
    if (set_hostport(c, key, value, &c->forward->target, 0) != 0)
        return -1;
    if (!mpt_hostname_valid(c->forward->target.host))
        return fail(c, c->line,
                    "%s: invalid host in `%s' (an address, or a name of at most %d characters in "
                    "labels of 1-63 letters, digits, `-' and `_')",
                    key, value, MPT_HOSTNAME_MAX);
    return 0;
}

static int set_path_bridge(struct config_ctx *c, const char *key, const char *value)
{
    return set_hostport(c, key, value, &c->path->bridge, 0);
}

static int set_path_bind(struct config_ctx *c, const char *key, const char *value)
{
    unsigned char addr[16];

    if (strlen(value) >= sizeof(c->path->bind) ||
        (inet_pton(AF_INET, value, addr) != 1 && inet_pton(AF_INET6, value, addr) != 1))
        return fail(c, c->line, "%s: invalid address `%s' (expected an IPv4 or IPv6 address)", key,
                    value);
    strcpy(c->path->bind, value);
    return 0;
}

static int set_path_device(struct config_ctx *c, const char *key, const char *value)
{
    size_t len = strlen(value);

    /* The kernel's dev_valid_name(). */
    if (len > DEVICE_NAME_MAX || strcmp(value, ".") == 0 || strcmp(value, "..") == 0 ||
        strpbrk(value, "/: \t\v\f\r\n"))
        return fail(c, c->line,
                    "%s: invalid interface name `%s' (max %d characters, no `/' or "
                    "`:')",
                    key, value, DEVICE_NAME_MAX);
    memcpy(c->path->device, value, len + 1);
    return 0;
}

static int set_path_priority(struct config_ctx *c, const char *key, const char *value)
{
    return set_uint(c, key, value, &c->path->priority, 0, 1000);
}

static int set_path_weight(struct config_ctx *c, const char *key, const char *value)
{
    return set_uint(c, key, value, &c->path->weight, 1, 1000);
}

static int set_rekey_interval(struct config_ctx *c, const char *key, const char *value)
{
    return set_duration(c, key, value, &c->cfg->rekey_ms, 2000, 120000, "2s-2m");
}

static const struct config_key keys[] = {
    {SEC_TUNNEL, "secret", 0, set_secret},
    {SEC_TUNNEL, "secret_file", 0, set_secret_file},
    {SEC_TUNNEL, "log_level", 0, set_log_level},
    {SEC_TUNNEL, "cipher", 0, set_cipher},
    {SEC_TUNNEL, "sndbuf", 0, set_bufsize},
    {SEC_TUNNEL, "rcvbuf", 0, set_bufsize},
    {SEC_TUNNEL, "insecure_permissions", 0, set_insecure_permissions},
    {SEC_TUNNEL, "rekey_interval", 0, set_rekey_interval},
    {SEC_CLIENT, "listen", 0, set_client_listen},
    {SEC_CLIENT, "bridge", 1, set_client_bridge},
    {SEC_CLIENT, "mode", 0, set_mode},
    {SEC_CLIENT, "target_loss", 0, set_target_loss},
    {SEC_CLIENT, "fec", 0, set_fec},
    {SEC_CLIENT, "fec_wait", 0, set_fec_wait},
    {SEC_CLIENT, "max_flows", 0, set_client_max_flows},
    {SEC_CLIENT, "flow_timeout", 0, set_client_flow_timeout},
    {SEC_CLIENT, "probe_interval", 0, set_probe_interval},
    {SEC_CLIENT, "reorder_cap", 0, set_client_reorder_cap},
    {SEC_CLIENT, "control", 0, set_client_control},
    {SEC_CLIENT, "metrics", 0, set_client_metrics},
    {SEC_CLIENT, "socks", 0, set_client_socks},
    {SEC_CLIENT, "socks_user", 0, set_socks_user},
    {SEC_CLIENT, "socks_password", 0, set_socks_password},
    {SEC_CLIENT, "socks_password_file", 0, set_socks_password_file},
    {SEC_CLIENT, "private_key", 0, set_client_private_key},
    {SEC_CLIENT, "private_key_file", 0, set_client_private_key_file},
    {SEC_CLIENT, "server_public_key", 0, set_server_public_key},
    {SEC_SERVER, "listen", 0, set_server_listen},
    {SEC_SERVER, "target", 0, set_server_target},
    {SEC_SERVER, "allow", 1, set_allow},
    {SEC_SERVER, "max_sessions", 0, set_max_sessions},
    {SEC_SERVER, "max_flows", 0, set_server_max_flows},
    {SEC_SERVER, "flow_timeout", 0, set_server_flow_timeout},
    {SEC_SERVER, "session_timeout", 0, set_session_timeout},
    {SEC_SERVER, "reorder_cap", 0, set_server_reorder_cap},
    {SEC_SERVER, "control", 0, set_server_control},
    {SEC_SERVER, "metrics", 0, set_server_metrics},
    {SEC_SERVER, "private_key", 0, set_server_private_key},
    {SEC_SERVER, "private_key_file", 0, set_server_private_key_file},
    {SEC_PATH, "bridge", 0, set_path_bridge},
    {SEC_PATH, "bind", 0, set_path_bind},
    {SEC_PATH, "device", 0, set_path_device},
    {SEC_PATH, "priority", 0, set_path_priority},
    {SEC_PATH, "weight", 0, set_path_weight},
    {SEC_FORWARD, "listen", 0, set_forward_listen},
    {SEC_FORWARD, "target", 0, set_forward_target},
    {SEC_PEER, "public_key", 0, set_peer_public_key},
    {SEC_PEER, "secret", 0, set_peer_secret},
    {SEC_PEER, "secret_file", 0, set_peer_secret_file},
    {SEC_PEER, "allow", 1, set_peer_allow},
    {SEC_PEER, "target", 0, set_peer_target},
    {SEC_NONE, NULL, 0, NULL},
};

_Static_assert(sizeof(keys) / sizeof(keys[0]) <= NKEYS, "raise NKEYS");
_Static_assert(NKEYS <= 64, "mpt_config.given holds a bit per key");

const char *mpt_config_key(unsigned i, const char **section)
{
    if (i >= sizeof(keys) / sizeof(keys[0]) || !keys[i].name)
        return NULL;
    *section = section_names[keys[i].section];
    return keys[i].name;
}

int mpt_config_key_given(const struct mpt_config *cfg, const struct mpt_path_config *path,
                         const char *section, const char *key)
{
    for (const struct config_key *k = keys; k->name; k++) {
        if (strcmp(section_names[k->section], section) != 0 || strcmp(k->name, key) != 0)
            continue;
        if (k->section == SEC_PATH)
            return path && (path->given >> (k - keys)) & 1;
        return (cfg->given >> (k - keys)) & 1;
    }
    return 0;
}

/* "[client]", "[path NAME]" or "[forward NAME]", for messages. */
static const char *section_label(struct config_ctx *c, char *buf, size_t len)
{
    if (c->section == SEC_PATH)
        snprintf(buf, len, "[path %s]", c->path->name);
    else if (c->section == SEC_FORWARD)
        snprintf(buf, len, "[forward %s]", c->forward->name);
    else if (c->section == SEC_PEER)
        snprintf(buf, len, "[peer %s]", c->peer->name);
    else
        snprintf(buf, len, "[%s]", section_names[c->section]);
    return buf;
}

/* Where a key that is unknown in this section does belong, if anywhere. */
static const char *key_home(const char *name)
{
    for (const struct config_key *k = keys; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k->section == SEC_PATH      ? "[path NAME]"
                   : k->section == SEC_FORWARD ? "[forward NAME]"
                   : k->section == SEC_PEER    ? "[peer NAME]"
                                               : section_names[k->section];
    return NULL;
}

/* The lines where each key of the section being read was first given (0: not yet). */
static int *section_key_lines(struct config_ctx *c)
{
    if (c->section == SEC_PATH)
        return c->path_key_line[c->path - c->cfg->client.paths];
    if (c->section == SEC_FORWARD)
        return c->forward_key_line[c->forward - c->cfg->client.forwards];
    if (c->section == SEC_PEER)
        return c->peer_key_line;
    return c->key_line[c->section];
}

/* `secret' and `secret_file', `private_key' and `private_key_file': one of the two per section.
 * Returns the other one's index in keys[] if this section has it, else -1. */
static int sibling_key(const struct config_key *k)
{
    char name[64];
    size_t len = strlen(k->name);

    if (file_key_name(k->name))
        snprintf(name, sizeof(name), "%.*s", (int)(len - 5), k->name);
    else
        snprintf(name, sizeof(name), "%s_file", k->name);
    for (const struct config_key *o = keys; o->name; o++)
        if (o->section == k->section && strcmp(o->name, name) == 0)
            return (int)(o - keys);
    return -1;
}

static int on_key(struct config_ctx *c, const char *name, const char *value)
{
    const struct config_key *k;
    char label[MPT_CONFIG_PEER_NAME_MAX + 16];
    const char *home;
    int *seen, *lines, sibling;

    if (c->failed)
        return -1;
    if (!*name)
        return fail(c, c->line, "syntax error: no key before `='");
    if (looks_like_key(name))
        return fail(c, c->line,
                    "syntax error: expected `key = value' (the key is not shown: it looks like a "
                    "secret, which belongs in `secret = ...' under [tunnel])");
    if (c->section == SEC_NONE)
        return fail(c, c->line,
                    "%s: key outside any section (put it under [tunnel], [client], "
                    "[server], [path NAME], [forward NAME] or [peer NAME])",
                    name);
    for (k = keys; k->name; k++)
        if (k->section == c->section && strcmp(k->name, name) == 0)
            break;
    if (!k->name) {
        section_label(c, label, sizeof(label));
        home = key_home(name);
        if (!home)
            return fail(c, c->line, "%s: unknown key in %s", name, label);
        return fail(c, c->line, "%s: unknown key in %s (it belongs in %s%s%s)", name, label,
                    home[0] == '[' ? "" : "[", home, home[0] == '[' ? "" : "]");
    }
    if (!*value)
        return fail(c, c->line, "%s: empty value", name);
    lines = section_key_lines(c);
    seen = &lines[k - keys];
    if (*seen && !k->repeatable)
        return fail(c, c->line, "%s: duplicate key (first given at line %d)", name, *seen);
    sibling = sibling_key(k);
    if (sibling >= 0 && lines[sibling])
        return fail(c, c->line, "%s: `%s' already given at line %d (use one of them)", name,
                    keys[sibling].name, lines[sibling]);
    if (!*seen)
        *seen = c->line;
    if (c->section == SEC_PATH)
        c->path->given |= 1ull << (k - keys);
    else if (c->section != SEC_PEER)
        c->cfg->given |= 1ull << (k - keys);
    if (secret_key_name(k->name) && !file_key_name(k->name) && !c->inline_secret_line) {
        c->inline_secret_line = c->line;
        c->inline_secret_key = k->name;
    }
    /* The table's name, not inih's: it outlives the line (use_secret_key keeps it). */
    if (k->set(c, k->name, value) == 0)
        return 0;
    /* Whatever a handler wrote, a message never carries key material: a secret_file's path is
     * quoted unless it looks like a key itself. */
    if ((looks_like_key(value) || (secret_key_name(k->name) && !file_key_name(k->name))) &&
        quotes(c->err, value))
        snprintf(c->err, c->errlen, "%s:%d: %s: invalid value (not shown: it may hold a secret)",
                 c->name, c->line, k->name);
    return -1;
}

#if INI_HANDLER_LINENO
static int on_ini_key(void *user, const char *section, const char *name, const char *value,
                      int lineno)
#else
static int on_ini_key(void *user, const char *section, const char *name, const char *value)
#endif
{
    /* The section comes from read_line(): inih truncates long names and skips empty sections. */
    return on_key(user, name, value) == 0;
}

static int end_section(struct config_ctx *c)
{
    if (c->section == SEC_PATH && !c->path->bridge.line)
        return fail(c, c->section_line, "[path %s]: no bridge (add `bridge = HOST:PORT')",
                    c->path->name);
    if (c->section == SEC_FORWARD && !c->forward->listen.line)
        return fail(c, c->section_line, "[forward %s]: no listen (add `listen = [HOST:]PORT')",
                    c->forward->name);
    if (c->section == SEC_FORWARD && !c->forward->target.line)
        return fail(c, c->section_line, "[forward %s]: no target (add `target = HOST:PORT')",
                    c->forward->name);
    if (c->section == SEC_PEER && !c->peer->public_key_line)
        return fail(c, c->section_line,
                    "[peer %s]: no public_key (add `public_key = BASE64'; " PUBKEY_HINT
                    " from the client's private key)",
                    c->peer->name);
    return 0;
}

/* 1 if two local addresses as written are the same socket (PORT alone is every address). */
static int same_listen(const struct mpt_hostport *a, const struct mpt_hostport *b)
{
    return a->line && b->line && a->port == b->port &&
           (!a->host[0] || !b->host[0] || strcmp(a->host, b->host) == 0);
}

/* The client's local sockets: `listen', `socks' and each forward's `listen' all differ. */
static int check_listens(struct config_ctx *c)
{
    const struct mpt_client_config *cl = &c->cfg->client;
    const struct mpt_hostport *all[MPT_CONFIG_MAX_FORWARDS + 2];
    const char *what[MPT_CONFIG_MAX_FORWARDS + 2];
    unsigned n = 0;
    char a[MPT_CONFIG_HOST_MAX + 16];

    all[n] = &cl->listen;
    what[n++] = "listen";
    all[n] = &cl->socks;
    what[n++] = "socks";
    for (unsigned i = 0; i < cl->nforwards; i++) {
        all[n] = &cl->forwards[i].listen;
        what[n++] = "listen";
    }
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = 0; j < i; j++)
            if (same_listen(all[i], all[j]))
                return fail(c, all[i]->line, "%s: `%s' is already used by `%s' at line %d", what[i],
                            mpt_hostport_format(all[i], a, sizeof(a)), what[j], all[j]->line);
    return 0;
}

/* 1 if `name' is 1 to max - 1 characters of A-Z a-z 0-9 _ . - */
static int valid_path_name(const char *name, size_t max)
{
    size_t len = strlen(name);

    if (len == 0 || len >= max)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return 0;
    return 1;
}

/* A `[...]' line, already trimmed; inih gets the same line and only keeps its own copy. */
static int on_section(struct config_ctx *c, char *line)
{
    struct mpt_path_config *p;
    char *name, *close, *end, *rest;

    if (end_section(c) != 0)
        return -1;
    if (line_may_hold_secret(line + 1))
        return fail(c, c->line,
                    "syntax error: not a section header (the line is not shown: it may hold a "
                    "secret)");
    close = strchr(line, ']');
    if (!close)
        return fail(c, c->line, "syntax error: `%s' has no closing `]'", line);
    for (rest = close + 1; *rest; rest++)
        if (!isspace((unsigned char)*rest))
            return fail(c, c->line, "syntax error: text after `]' in `%s'", line);
    name = line + 1;
    while (isspace((unsigned char)*name))
        name++;
    end = close;
    while (end > name && isspace((unsigned char)end[-1]))
        end--;
    *end = '\0';
    c->section_line = c->line;
    c->path = NULL;
    c->forward = NULL;
    c->peer = NULL;
    if (strcmp(name, "tunnel") == 0) {
        c->section = SEC_TUNNEL;
    } else if (strcmp(name, "client") == 0) {
        c->section = SEC_CLIENT;
        c->cfg->client.present = 1;
    } else if (strcmp(name, "server") == 0) {
        c->section = SEC_SERVER;
        c->cfg->server.present = 1;
    } else if (strncmp(name, "path", 4) == 0 && (!name[4] || isspace((unsigned char)name[4]))) {
        name += 4;
        while (isspace((unsigned char)*name))
            name++;
        if (!*name)
            return fail(c, c->line, "[path]: no path name (write [path NAME])");
        if (!valid_path_name(name, MPT_CONFIG_NAME_MAX))
            return fail(c, c->line,
                        "[path %s]: invalid path name (1-%d characters of A-Z a-z "
                        "0-9 _ . -)",
                        name, MPT_CONFIG_NAME_MAX - 1);
        for (unsigned i = 0; i < c->cfg->client.npaths; i++)
            if (strcmp(c->cfg->client.paths[i].name, name) == 0)
                return fail(c, c->line, "[path %s]: duplicate path name (first at line %d)", name,
                            c->path_line[i]);
        /* Reports a full table against this section: c->line is its header. */
        {
            char what[MPT_CONFIG_NAME_MAX + 8];
            snprintf(what, sizeof(what), "[path %s]", name);
            p = add_path(c, what);
        }
        if (!p)
            return -1;
        strcpy(p->name, name);
        c->path = p;
        c->section = SEC_PATH;
    } else if (strncmp(name, "forward", 7) == 0 && (!name[7] || isspace((unsigned char)name[7]))) {
        struct mpt_client_config *cl = &c->cfg->client;
        struct mpt_forward_config *f;

        name += 7;
        while (isspace((unsigned char)*name))
            name++;
        if (!*name)
            return fail(c, c->line, "[forward]: no forward name (write [forward NAME])");
        if (!valid_path_name(name, MPT_CONFIG_NAME_MAX))
            return fail(c, c->line,
                        "[forward %s]: invalid forward name (1-%d characters of A-Z a-z "
                        "0-9 _ . -)",
                        name, MPT_CONFIG_NAME_MAX - 1);
        for (unsigned i = 0; i < cl->nforwards; i++)
            if (strcmp(cl->forwards[i].name, name) == 0)
                return fail(c, c->line, "[forward %s]: duplicate forward name (first at line %d)",
                            name, cl->forwards[i].line);
        if (cl->nforwards >= MPT_CONFIG_MAX_FORWARDS)
            return fail(c, c->line, "[forward %s]: too many forwards (max %d)", name,
                        MPT_CONFIG_MAX_FORWARDS);
        f = &cl->forwards[cl->nforwards++];
        memset(f, 0, sizeof(*f));
        strcpy(f->name, name);
        f->line = c->line;
        c->forward = f;
        c->section = SEC_FORWARD;
    } else if (strncmp(name, "peer", 4) == 0 && (!name[4] || isspace((unsigned char)name[4]))) {
        struct mpt_server_config *sv = &c->cfg->server;
        struct mpt_config_peer *pe;

        name += 4;
        while (isspace((unsigned char)*name))
            name++;
        if (!*name)
            return fail(c, c->line, "[peer]: no peer name (write [peer NAME])");
        if (!valid_path_name(name, MPT_CONFIG_PEER_NAME_MAX))
            return fail(c, c->line,
                        "[peer %s]: invalid peer name (1-%d characters of A-Z a-z 0-9 _ . -)", name,
                        MPT_CONFIG_PEER_NAME_MAX - 1);
        for (unsigned i = 0; i < sv->npeers; i++)
            if (strcmp(sv->peers[i].name, name) == 0)
                return fail(c, c->line, "[peer %s]: duplicate peer name (first at line %d)", name,
                            sv->peers[i].line);
        if (sv->npeers >= MPT_CONFIG_MAX_PEERS)
            return fail(c, c->line, "[peer %s]: too many peers (max %d)", name,
                        MPT_CONFIG_MAX_PEERS);
        pe = &sv->peers[sv->npeers++];
        memset(pe, 0, sizeof(*pe));
        strcpy(pe->name, name);
        pe->line = c->line;
        pe->allow_first = sv->npeer_allow;
        memset(c->peer_key_line, 0, sizeof(c->peer_key_line));
        c->peer = pe;
        c->section = SEC_PEER;
    } else {
        return fail(c, c->line, "[%s]: unknown section", name);
    }
    return 0;
}

/* inih's reader: one line per call into buf[num], cleaned up (see the top of this file). */
static char *read_line(char *buf, int num, void *stream)
{
    struct config_ctx *c = stream;
    const char *p, *nl;
    size_t n;

    if (c->failed || c->pos >= c->len)
        return NULL;
    p = c->text + c->pos;
    nl = memchr(p, '\n', c->len - c->pos);
    n = nl ? (size_t)(nl - p) : c->len - c->pos;
    c->pos += n + (nl ? 1 : 0);
    if (c->line == INT_MAX) {
        fail(c, 0, "too many lines");
        return NULL;
    }
    c->line++;
    if (memchr(p, '\0', n)) {
        fail(c, c->line, "syntax error: NUL byte in line");
        return NULL;
    }
    if (c->line == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        n -= 3;
    }
    while (n && isspace((unsigned char)*p)) {
        p++;
        n--;
    }
    if (n && (*p == ';' || *p == '#'))
        n = 0;
    /* inih's inline comment: `;' after whitespace; cut here so that long comments are fine. */
    for (size_t i = 1; i < n; i++) {
        if (p[i] == ';' && isspace((unsigned char)p[i - 1])) {
            n = i;
            break;
        }
    }
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    if (num < 1 || n >= (size_t)num) {
        fail(c, c->line, "line too long (max %d characters, comments aside)", num - 1);
        return NULL;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (buf[0] == '[') {
        if (on_section(c, buf) != 0)
            return NULL;
        /* on_section() may have cut buf; inih only needs a well-formed header. */
        snprintf(buf, (size_t)num, "[s]");
    } else if (n && !strpbrk(buf, "=:")) {
        if (line_may_hold_secret(buf))
            fail(c, c->line,
                 "syntax error: expected `key = value' or `[section]' (the line is not shown: "
                 "it may hold a secret)");
        else
            fail(c, c->line, "syntax error: `%s' (expected `key = value' or `[section]')", buf);
        return NULL;
    }
    return buf;
}

/* "read by others (mode 0644)", "written by its group (mode 0620)", ...: who may do what to a
 * file, from others_access(), and its mode. */
static const char *exposure(mode_t access, mode_t mode, int acl, char *buf, size_t len)
{
    snprintf(buf, len, "%s by %s (mode %04o%s)", access & (S_IRGRP | S_IROTH) ? "read" : "written",
             access & 06 ? "others"
             : acl       ? "other users or groups"
                         : "its group",
             (unsigned)(mode & 07777), acl ? " and an ACL" : "");
    return buf;
}

/* A secret that another user can read is no secret: refuse it, unless the file says not to. */
static int check_permissions(struct config_ctx *c)
{
    char who[80], fix[2 * PATH_MAX + 40];
    const char *path = c->exposed_path;
    mode_t access = c->exposed_access, mode = c->exposed_mode;
    int acl = c->exposed_acl;

    if (c->cfg->insecure_permissions)
        return 0;
    if (!c->exposed_path[0]) {
        if (!(c->inline_secret_line && c->file_mode_known && c->file_access))
            return 0;
        path = c->name;
        access = c->file_access;
        mode = c->file_mode;
        acl = c->file_acl;
    }
    exposure(access, mode, acl, who, sizeof(who));
    if (acl)
        snprintf(fix, sizeof(fix), "setfacl -b %s && chmod 600 %s", path, path);
    else
        snprintf(fix, sizeof(fix), "chmod 600 %s", path);
    if (path == c->exposed_path)
        return fail(c, c->exposed_line,
                    "%s: `%s' can be %s: run `%s' (or set `insecure_permissions = yes' in "
                    "[tunnel] to accept it)",
                    c->exposed_key, path, who, fix);
    return fail(c, c->inline_secret_line,
                "%s: this file holds %s and can be %s: run `%s' (or set "
                "`insecure_permissions = yes' in [tunnel] to accept it)",
                c->inline_secret_key,
                strstr(c->inline_secret_key, "private") ? "a private key" : "a secret", who, fix);
}

/* Key mode, side by side: what one key needs of another, wherever in the file each was given. */
/* socks_user and a password come together, and with `socks'. */
static int check_socks(struct config_ctx *c)
{
    const struct mpt_client_config *cl = &c->cfg->client;
    const char *pw = cl->socks_password_file[0] ? "socks_password_file" : "socks_password";

    if (cl->socks_user_line && !cl->socks_password_line)
        return fail(c, cl->socks_user_line,
                    "socks_user: no password (add `socks_password = ...' or "
                    "`socks_password_file = PATH')");
    if (cl->socks_password_line && !cl->socks_user_line)
        return fail(c, cl->socks_password_line, "%s: no socks_user (add `socks_user = NAME')", pw);
    if (cl->socks_user_line && !cl->socks.line)
        return fail(c, cl->socks_user_line,
                    "socks_user: no SOCKS5 front to protect (add `socks = [HOST:]PORT')");
    return 0;
}

static int check_keys(struct config_ctx *c)
{
    const struct mpt_client_config *cl = &c->cfg->client;
    const struct mpt_server_config *sv = &c->cfg->server;

    if (cl->key.have_private_key && !cl->have_server_public_key)
        return fail(c, cl->key.line,
                    "%s: no server_public_key in [client] (key mode needs the server's public key "
                    "too: add `server_public_key = BASE64')",
                    cl->key.file[0] ? "private_key_file" : "private_key");
    if (cl->have_server_public_key && !cl->key.have_private_key)
        return fail(c, cl->server_public_key_line,
                    "server_public_key: no private_key in [client] (key mode needs this side's "
                    "own key too: add `private_key = BASE64'; " GENKEY_HINT ")");
    if (cl->key.have_private_key &&
        sodium_memcmp(cl->server_public_key, cl->key.public_key, MPT_KEY_LEN) == 0)
        return fail(c, cl->server_public_key_line,
                    "server_public_key: the public key of this side's own private_key (line %d); "
                    "the client needs a key pair of its own",
                    cl->key.line);
    if (sv->npeers && !sv->key.have_private_key)
        return fail(
            c, sv->peers[0].line,
            "[peer %s]: no private_key in [server] (peers are the clients of a server in "
            "key mode, which needs a key of its own: add `private_key = BASE64'; " GENKEY_HINT ")",
            sv->peers[0].name);
    if (sv->key.have_private_key && !sv->npeers)
        return fail(c, sv->key.line,
                    "%s: no [peer NAME] section (a server in key mode lets in only the clients "
                    "it lists, each with `public_key = BASE64')",
                    sv->key.file[0] ? "private_key_file" : "private_key");
    for (unsigned i = 0; i < sv->npeers; i++)
        if (sodium_memcmp(sv->peers[i].public_key, sv->key.public_key, MPT_KEY_LEN) == 0)
            return fail(c, sv->peers[i].public_key_line,
                        "public_key: the server's own public key (of private_key at line %d); "
                        "each client needs a key pair of its own",
                        sv->key.line);
    return 0;
}

/* A side in key mode needs no [tunnel] secret. */
static int needs_secret(const struct mpt_config *cfg, enum mpt_config_role role)
{
    return !mpt_config_key_mode(cfg, role);
}

/* Where flows may go: [server] target or allow, or (key mode) each peer's own. */
static int check_targets(struct config_ctx *c)
{
    const struct mpt_server_config *sv = &c->cfg->server;

    if (sv->target.port || sv->nallow)
        return 0;
    if (!sv->npeers)
        return fail(c, 0, "[server]: no target (add `target = HOST:PORT')");
    for (unsigned i = 0; i < sv->npeers; i++)
        if (!sv->peers[i].target.line && !sv->peers[i].nallow)
            return fail(c, sv->peers[i].line,
                        "[peer %s]: no target (add `target = HOST:PORT' or `allow = ...' to it, "
                        "or to [server] for every peer)",
                        sv->peers[i].name);
    return 0;
}

static int check_role(struct config_ctx *c, enum mpt_config_role role)
{
    struct mpt_config *cfg = c->cfg;

    if (role == MPT_ROLE_ANY)
        return 0;
    if (!cfg->have_secret && needs_secret(cfg, role))
        return fail(c, 0,
                    "[tunnel]: no secret (add `secret = BASE64' or `secret_file = PATH'; "
                    "`mptunnel genkey' makes one)");
    if (role == MPT_ROLE_CLIENT) {
        if (!cfg->client.present)
            return fail(c, 0, "no [client] section (it needs `listen =' and `bridge =')");
        if (!cfg->client.listen.line)
            return fail(c, 0, "[client]: no listen (add `listen = [HOST:]PORT')");
        if (cfg->client.npaths == 0)
            return fail(c, 0, "[client]: no bridge (add `bridge = HOST:PORT')");
    } else {
        if (!cfg->server.present)
            return fail(c, 0, "no [server] section (it needs `listen =' and `target =')");
        if (!cfg->server.listen.line)
            return fail(c, 0, "[server]: no listen (add `listen = [HOST:]PORT')");
        if (check_targets(c) != 0)
            return -1;
    }
    return 0;
}

/* inih reads each line into a buffer in its own stack frame and leaves it there, secret lines
 * too: once it has returned, overwrite the stack where that frame was. */
__attribute__((noinline)) static void scrub_stack(void)
{
    unsigned char buf[16384];

    sodium_memzero(buf, sizeof(buf));
    __asm__ __volatile__("" : : "r"(buf) : "memory");
}

/* st: the file's status, or NULL for text that comes from memory; access and acl: what
 * others_access() says of it. */
static int load_buffer(struct mpt_config *cfg, const char *name, const char *text, size_t len,
                       const struct stat *st, mode_t access, int acl, enum mpt_config_role role,
                       char *err, size_t errlen)
{
    struct config_ctx *c;
    char scratch[MPT_CONFIG_ERR_MAX];
    int r, rc = -1;

    mpt_config_defaults(cfg);
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    /* Too big for some stacks: key_line tables for every path. */
    c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    c->cfg = cfg;
    c->name = name;
    c->text = text;
    c->len = len;
    c->err = err;
    c->errlen = errlen;
    if (st) {
        c->file_mode_known = 1;
        c->file_mode = st->st_mode;
        c->file_access = access;
        c->file_acl = acl;
    }
    if (strlen(name) >= sizeof(cfg->file)) {
        fail(c, 0, "file name too long");
        goto out;
    }
    strcpy(cfg->file, name);
    r = ini_parse_stream(read_line, c, on_ini_key, c);
    scrub_stack();
    if (c->failed)
        goto out;
    if (r > 0) {
        fail(c, r, "syntax error");
        goto out;
    }
    if (r < 0) {
        fail(c, 0, "cannot parse (out of memory)");
        goto out;
    }
    if (end_section(c) != 0 || check_listens(c) != 0 || check_socks(c) != 0 || check_keys(c) != 0 ||
        check_role(c, role) != 0 || check_permissions(c) != 0)
        goto out;
    rc = 0;
out:
    free(c);
    if (rc != 0)
        mpt_config_wipe(cfg);
    return rc;
}

int mpt_config_key_mode(const struct mpt_config *cfg, enum mpt_config_role role)
{
    if (role == MPT_ROLE_CLIENT)
        return cfg->client.key.have_private_key;
    if (role == MPT_ROLE_SERVER)
        return cfg->server.key.have_private_key;
    return 0;
}

void mpt_config_peer_psk(const struct mpt_config *cfg, const struct mpt_config_peer *peer,
                         uint8_t psk[MPT_KEY_LEN])
{
    if (peer && peer->have_secret)
        memcpy(psk, peer->secret, MPT_KEY_LEN);
    else if (cfg->have_secret)
        memcpy(psk, cfg->secret, MPT_KEY_LEN);
    else
        memset(psk, 0, MPT_KEY_LEN);
}

void mpt_config_wipe(struct mpt_config *cfg)
{
    struct mpt_key_config *own[] = {&cfg->client.key, &cfg->server.key};

    sodium_memzero(cfg->secret, sizeof(cfg->secret));
    cfg->have_secret = 0;
    sodium_memzero(cfg->client.socks_password, sizeof(cfg->client.socks_password));
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        sodium_memzero(own[i]->private_key, sizeof(own[i]->private_key));
        own[i]->have_private_key = 0;
    }
    for (unsigned i = 0; i < cfg->server.npeers && i < MPT_CONFIG_MAX_PEERS; i++) {
        sodium_memzero(cfg->server.peers[i].secret, sizeof(cfg->server.peers[i].secret));
        cfg->server.peers[i].have_secret = 0;
    }
}

void mpt_config_defaults(struct mpt_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = MPT_LOG_INFO;
    cfg->client.mode = MPT_MODE_REDUNDANT;
    cfg->client.target_loss = 0.001;
    cfg->client.fec_wait_ms = 50;
    cfg->client.max_flows = 1024;
    cfg->client.flow_timeout_ms = 60000;
    cfg->client.probe_interval_ms = 200;
    cfg->rekey_ms = 120000;
    cfg->client.reorder_cap_ms = 100;
    cfg->server.max_sessions = 64;
    cfg->server.max_flows = 4096;
    cfg->server.flow_timeout_ms = 60000;
    cfg->server.session_timeout_ms = 120000;
    cfg->server.reorder_cap_ms = 100;
}

int mpt_config_load_string(struct mpt_config *cfg, const char *name, const char *text,
                           enum mpt_config_role role, char *err, size_t errlen)
{
    return load_buffer(cfg, name, text, strlen(text), NULL, 0, 0, role, err, errlen);
}

int mpt_config_load(struct mpt_config *cfg, const char *path, enum mpt_config_role role, char *err,
                    size_t errlen)
{
    char *text = NULL, scratch[MPT_CONFIG_ERR_MAX];
    struct stat st;
    mode_t access;
    int acl;
    size_t len = 0, cap = 0;
    ssize_t n;
    int fd = -1, rc = -1;

    mpt_config_defaults(cfg);
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    /* sodium_malloc needs it. */
    if (sodium_init() < 0) {
        snprintf(err, errlen, "%s: cannot initialise libsodium", path);
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        if (len == cap) {
            char *more;
            if (cap > CONFIG_FILE_MAX) {
                snprintf(err, errlen, "%s: file too large (max %d bytes)", path, CONFIG_FILE_MAX);
                goto out;
            }
            /* Not realloc: every copy of the text (which may hold the secret) is wiped. */
            cap = cap ? cap * 2 : 4096;
            more = sodium_malloc(cap + 1);
            if (!more) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto out;
            }
            if (text)
                memcpy(more, text, len);
            sodium_free(text);
            text = more;
        }
        n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONFIG_FILE_MAX) {
        snprintf(err, errlen, "%s: file too large (max %d bytes)", path, CONFIG_FILE_MAX);
        goto out;
    }
    text[len] = '\0';
    access = others_access(fd, st.st_mode, st.st_uid, &acl);
    rc = load_buffer(cfg, path, text, len, &st, access, acl, role, err, errlen);
out:
    if (fd >= 0)
        close(fd);
    sodium_free(text); /* wipes */
    return rc;
}

const char *mpt_mode_name(enum mpt_sched_mode mode)
{
    switch (mode) {
    case MPT_MODE_REDUNDANT:
        return "redundant";
    case MPT_MODE_ADAPTIVE:
        return "adaptive";
    case MPT_MODE_BACKUP:
        return "backup";
    case MPT_MODE_BALANCE:
        return "balance";
    case MPT_MODE_FEC:
        return "fec";
    }
    return "unknown";
}

const char *mpt_log_level_name(enum mpt_log_level level)
{
    switch (level) {
    case MPT_LOG_ERROR:
        return "error";
    case MPT_LOG_WARN:
        return "warn";
    case MPT_LOG_INFO:
        return "info";
    case MPT_LOG_DEBUG:
        return "debug";
    }
    return "unknown";
}
