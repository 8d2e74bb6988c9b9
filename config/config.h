/* config: the INI file (inih) turned into a validated struct mpt_config.
 *
 * One file may hold both sides: [tunnel] (shared), [client], [server], [path NAME], [forward NAME]
 * and [peer NAME] sections.
 * Every section and key of the whole file is checked, whichever command reads it; unknown keys and
 * sections are errors. Errors carry `file:line: key: reason`, quoting the bad value.
 * No libuv here: host names are kept as text and resolved by net/.
 */
#ifndef MPT_CONFIG_H
#define MPT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define MPT_CONFIG_MAX_PATHS 16 /* paths per client (bridge lines plus [path] sections) */
#define MPT_CONFIG_HOST_MAX 256 /* host name or address literal, NUL included */
#define MPT_CONFIG_NAME_MAX 32  /* [path NAME] */
#define MPT_CONFIG_ERR_MAX 512  /* size of the error text buffer */
#define MPT_SECRET_LEN 32
#define MPT_KEY_LEN 32                 /* an X25519 private or public key */
#define MPT_CONFIG_MAX_PEERS 1024      /* [peer NAME] sections */
#define MPT_CONFIG_PEER_NAME_MAX 64    /* [peer NAME], NUL included */
#define MPT_CONFIG_MAX_PEER_ALLOW 1024 /* allow lines of all [peer NAME] sections together */
#define MPT_CONFIG_MAX_FORWARDS 64     /* [forward NAME] sections */
#define MPT_CONFIG_MAX_ALLOW 256       /* allow lines of [server] */
#define MPT_HOSTNAME_MAX 253           /* a DNS name as a target may carry it */
#define MPT_CONFIG_SOCKS_CRED_MAX 255  /* socks_user, socks_password (RFC 1929) */

/* "HOST:PORT", "[V6]:PORT" or "PORT" as written; host empty means all addresses. */
struct mpt_hostport {
    char host[MPT_CONFIG_HOST_MAX];
    uint16_t port;
    int line; /* where it was written, for later messages (resolution failures) */
};

enum mpt_sched_mode {
    MPT_MODE_REDUNDANT = 0,
    MPT_MODE_ADAPTIVE,
    MPT_MODE_BACKUP,
    MPT_MODE_BALANCE,
    MPT_MODE_FEC,
};

enum mpt_log_level {
    MPT_LOG_ERROR = 0,
    MPT_LOG_WARN,
    MPT_LOG_INFO,
    MPT_LOG_DEBUG,
};

struct mpt_path_config {
    char name[MPT_CONFIG_NAME_MAX];   /* "" for a plain `bridge =` line; else [path NAME] */
    struct mpt_hostport bridge;       /* where the client sends for this path */
    char bind[MPT_CONFIG_HOST_MAX];   /* local address to send from, "" = any */
    char device[MPT_CONFIG_NAME_MAX]; /* SO_BINDTODEVICE, "" = none */
    unsigned priority;                /* backup mode; lower is preferred; default 1 */
    unsigned weight;                  /* balance mode; default 1 */
    uint64_t given;                   /* keys the section gave (mpt_config_key_given) */
};

/* [forward NAME]: a local port whose flows go to `target`, a name or address the server resolves
 * and checks against its `allow` list. */
struct mpt_forward_config {
    char name[MPT_CONFIG_NAME_MAX];
    struct mpt_hostport listen;
    struct mpt_hostport target;
    int line; /* the section header */
};

/* One `allow` line of [server]: a host name, or an address block (an address alone is a /32 or a
 * /128), and a port range. */
struct mpt_allow {
    struct mpt_hostport host; /* host.host: the name, "" for a block; port: port_lo */
    int family;               /* AF_INET or AF_INET6 for a block, 0 for a name */
    uint8_t addr[16];         /* the block's first address, network order */
    unsigned prefix;          /* its prefix length */
    uint16_t port_lo, port_hi;
    int line;
};

/* Key mode: this side's own key pair, from `private_key' or `private_key_file'. */
struct mpt_key_config {
    uint8_t private_key[MPT_KEY_LEN]; /* X25519, as given (X25519 clamps it when used) */
    uint8_t public_key[MPT_KEY_LEN];  /* its public key (crypto_scalarmult_base) */
    int have_private_key;             /* 1: this side is in key mode */
    int line;                         /* where private_key or private_key_file was given */
    char file[512];                   /* private_key_file as opened, "" if not used */
};

/* [peer NAME]: a client that a server in key mode lets in. A peer with `allow' or `target' lines
 * gets exactly those; one with neither gets [server]'s `target' and `allow'. */
struct mpt_config_peer {
    char name[MPT_CONFIG_PEER_NAME_MAX];
    int line;                        /* the section header */
    uint8_t public_key[MPT_KEY_LEN]; /* the client's X25519 public key */
    int public_key_line;
    uint8_t secret[MPT_KEY_LEN]; /* its own psk (`secret' or `secret_file') */
    int have_secret;             /* 0: mpt_config_peer_psk() says which psk applies */
    int secret_line;
    char secret_file[128];        /* secret_file as opened (cut short with ...), or "" */
    unsigned allow_first, nallow; /* its rules: server.peer_allow[allow_first ...] */
    struct mpt_hostport target;   /* its default target; line 0 = none */
};

struct mpt_client_config {
    int present; /* a [client] section was seen */
    struct mpt_hostport listen;
    struct mpt_path_config paths[MPT_CONFIG_MAX_PATHS];
    unsigned npaths;
    enum mpt_sched_mode mode;    /* `mode =`, default redundant */
    double target_loss;          /* adaptive and fec modes, default 0.001 */
    unsigned fec_k, fec_m;       /* `fec = K:M`; 0:0 = from measured loss */
    uint32_t fec_wait_ms;        /* a lost datagram waits for repair at most; 50 ms */
    unsigned max_flows;          /* default 1024 */
    uint32_t flow_timeout_ms;    /* default 60 s */
    uint32_t probe_interval_ms;  /* default 200 ms */
    uint32_t reorder_cap_ms;     /* replies held for order at most; default 100 ms */
    char control[256];           /* control socket path, "" = default */
    struct mpt_hostport metrics; /* Prometheus endpoint; line 0 = none */
    struct mpt_hostport socks;   /* SOCKS5 front (UDP ASSOCIATE); line 0 = none */
    /* RFC 1929 username/password the front requires; "" (line 0) = no authentication. */
    char socks_user[MPT_CONFIG_SOCKS_CRED_MAX + 1];
    char socks_password[MPT_CONFIG_SOCKS_CRED_MAX + 1];
    char socks_password_file[512]; /* socks_password_file as opened, "" if not used */
    int socks_user_line, socks_password_line;
    struct mpt_forward_config forwards[MPT_CONFIG_MAX_FORWARDS];
    unsigned nforwards;
    struct mpt_key_config key; /* key mode: private_key or private_key_file */
    uint8_t server_public_key[MPT_KEY_LEN];
    int have_server_public_key;
    int server_public_key_line;
};

struct mpt_server_config {
    int present;
    struct mpt_hostport listen;
    struct mpt_hostport target;                   /* the default target */
    struct mpt_allow allow[MPT_CONFIG_MAX_ALLOW]; /* what flows may name besides `target` */
    unsigned nallow;
    unsigned max_sessions;       /* default 64 */
    unsigned max_flows;          /* total over all sessions, default 4096 */
    uint32_t flow_timeout_ms;    /* default 60 s */
    uint32_t session_timeout_ms; /* default 120 s */
    uint32_t reorder_cap_ms;     /* datagrams held for order at most; default 100 ms */
    char control[256];
    struct mpt_hostport metrics; /* Prometheus endpoint; line 0 = none */
    struct mpt_key_config key;   /* key mode: private_key or private_key_file */
    struct mpt_config_peer peers[MPT_CONFIG_MAX_PEERS]; /* key mode: the clients, in file order */
    unsigned npeers;
    struct mpt_allow peer_allow[MPT_CONFIG_MAX_PEER_ALLOW]; /* the peers' allow rules */
    unsigned npeer_allow;
};

struct mpt_config {
    char file[512]; /* the path it was read from */
    uint8_t secret[MPT_SECRET_LEN];
    int have_secret;
    int secret_line;
    enum mpt_log_level log_level; /* [tunnel] log_level, default info */
    int log_level_set;            /* 1 if the file set it */
    int no_aes;                   /* [tunnel] cipher = chacha20-poly1305 (default auto:
                                     AES-256-GCM where both ends have it in hardware) */
    uint32_t sndbuf;              /* [tunnel] sndbuf = 4M; 0 = default */
    uint32_t rcvbuf;              /* [tunnel] rcvbuf; 0 = default */
    char secret_file[512];        /* [tunnel] secret_file as opened, "" if not used */
    uint64_t given;               /* keys given outside [path NAME] sections */
    int insecure_permissions;     /* [tunnel] insecure_permissions = yes: accept a secret
                                     that group or others may read */
    uint32_t rekey_ms;            /* [tunnel] rekey_interval: new session keys this often
                                     (2 s to 2 min, default 2 min) */
    struct mpt_client_config client;
    struct mpt_server_config server;
};

enum mpt_config_role {
    MPT_ROLE_ANY = 0, /* only check the file itself */
    MPT_ROLE_CLIENT,  /* also require what `mptunnel client` needs */
    MPT_ROLE_SERVER,  /* also require what `mptunnel server` needs */
};

/* Fills *cfg with defaults. */
void mpt_config_defaults(struct mpt_config *cfg);

/* 1 if the side `role' (MPT_ROLE_CLIENT or MPT_ROLE_SERVER) of cfg is in key mode: it has a
 * private_key (a server then has [peer] sections, a client a server_public_key). */
int mpt_config_key_mode(const struct mpt_config *cfg, enum mpt_config_role role);

/* The pre-shared key of a key-mode handshake with `peer' (a server's [peer NAME]; NULL for a
 * client's handshake with its server): the peer's own `secret', else [tunnel] secret, else 32
 * zero bytes. */
void mpt_config_peer_psk(const struct mpt_config *cfg, const struct mpt_config_peer *peer,
                         uint8_t psk[MPT_KEY_LEN]);

/* Wipes every key of cfg (secrets, private keys) and marks them not set. */
void mpt_config_wipe(struct mpt_config *cfg);

/* Reads and validates `path` for `role`. Returns 0, or -1 with a one-line message
 * `file:line: key: reason` (or `file: reason` where no line applies) in err[errlen]. */
int mpt_config_load(struct mpt_config *cfg, const char *path, enum mpt_config_role role, char *err,
                    size_t errlen);

/* Same, from a string in memory (`name` stands for the file in messages). For tests and fuzzing. */
int mpt_config_load_string(struct mpt_config *cfg, const char *name, const char *text,
                           enum mpt_config_role role, char *err, size_t errlen);

/* Parses "HOST:PORT", "[V6]:PORT", or (if allow_port_only) "PORT". Returns 0 or -1 with a reason
 * in err (without file:line, which the caller adds). */
int mpt_hostport_parse(struct mpt_hostport *hp, const char *text, int allow_port_only, char *err,
                       size_t errlen);

/* Parses an `allow` value: HOST:PORTS, V4/LEN:PORTS, [V6]:PORTS or [V6/LEN]:PORTS, where PORTS is
 * PORT, LOW-HIGH or `*' (1-65535) and HOST a name or an address literal. A block with bits set
 * past its prefix, a reversed range, a port 0 or an invalid name is refused. Returns 0 or -1
 * with a reason in err (without file:line). */
int mpt_allow_parse(struct mpt_allow *a, const char *text, char *err, size_t errlen);

/* Writes an allow rule in the syntax mpt_allow_parse reads; returns buf. */
const char *mpt_allow_format(const struct mpt_allow *a, char *buf, size_t len);

/* 1 if `name` may be sent as a target's host: an IPv4 or IPv6 literal, or a DNS name of at most
 * MPT_HOSTNAME_MAX characters in labels of 1-63 letters, digits, `-' and `_'. */
int mpt_hostname_valid(const char *name);

/* Writes "HOST:PORT" or "[V6]:PORT" into buf; returns buf. */
const char *mpt_hostport_format(const struct mpt_hostport *hp, char *buf, size_t len);

/* How a path is named wherever it is shown (logs, status, demo; numbered from 1 beside it): its
 * [path NAME], else its bridge as configured (HOST:PORT). Returns buf. */
const char *mpt_path_label(const struct mpt_path_config *pc, char *buf, size_t len);

/* Decodes a base64 secret of exactly 32 bytes (standard alphabet, padding optional, surrounding
 * whitespace ignored). Returns 0 or -1 with a reason. */
int mpt_secret_parse(uint8_t out[MPT_SECRET_LEN], const char *text, char *err, size_t errlen);

/* The same for any 32-byte key: reasons name it `what' ("private key") and end with `hint' ("make
 * one with `mptunnel genkey'"). The text is never quoted in a reason. Returns 0 or -1. */
int mpt_key_parse(uint8_t out[MPT_KEY_LEN], const char *text, const char *what, const char *hint,
                  char *err, size_t errlen);

/* The X25519 public key of a private key. Returns 0, or -1 for an all-zero private key. */
int mpt_key_public(uint8_t pub[MPT_KEY_LEN], const uint8_t priv[MPT_KEY_LEN]);

/* 1 if `pub' is a point of small order (all zero among them), which no private key has and with
 * which a Diffie-Hellman result would be known to anyone; 0 for a usable public key. */
int mpt_key_low_order(const uint8_t pub[MPT_KEY_LEN]);

/* "250ms", "2s", "1m", "60" (seconds). Returns 0 or -1. */
int mpt_duration_parse(uint32_t *ms, const char *text);

/* "4M", "512K", "65536". Returns 0 or -1. */
int mpt_size_parse(uint32_t *bytes, const char *text);

/* The control socket's path for `role` (MPT_ROLE_CLIENT or MPT_ROLE_SERVER): the section's
 * `control =` if set, else <dir>/<role>-<name>.sock where <name> is the file's base name without
 * `.ini' and <dir> is $RUNTIME_DIRECTORY (systemd), /run/mptunnel (root), $XDG_RUNTIME_DIR/mptunnel
 * or /tmp/mptunnel-<uid>, the first that applies. Returns 0, -EINVAL or -ENAMETOOLONG. */
int mpt_config_control_path(const struct mpt_config *cfg, enum mpt_config_role role, char *buf,
                            size_t len);

/* The schema: the section ("tunnel", "client", "server", "path", "forward" or "peer") and name of
 * key i, in the order of the file's documentation; NULL past the last key. */
const char *mpt_config_key(unsigned i, const char **section);

/* 1 if the file gave `key` in `section` ("path" for a [path NAME] section, then `path` names which
 * one; NULL otherwise), 0 if the value is the default. */
int mpt_config_key_given(const struct mpt_config *cfg, const struct mpt_path_config *path,
                         const char *section, const char *key);

/* One key with its effective value, as `mptunnel check` prints it. */
struct mpt_config_item {
    const char *section; /* "tunnel", "client", "server", "path NAME", ... */
    const char *key;
    const char *value;               /* in the file's syntax; a secret or private key never */
    const char *note;                /* NULL, or a remark ("default", "not set", ...) */
    const struct mpt_hostport *addr; /* an address to resolve, or NULL */
    int passive;                     /* addr is a local one (PORT alone = all addresses) */
    int path;                        /* the path (from 1) the key belongs to, or 0 */
};

typedef void (*mpt_config_item_cb)(void *arg, const struct mpt_config_item *item);

/* Calls cb for every key of [tunnel] and, as `role` says, of [client] and its paths (plain
 * `bridge =' lines in [client], then each [path NAME]) and of [server] and its [peer NAME]
 * sections (MPT_ROLE_ANY: every side the file has a section for), with its value after defaults.
 * Keys that are not set still come, with an empty value and a note. Secrets and private keys never
 * come, only whether one is set (a private key's public key comes in the note). */
void mpt_config_walk(const struct mpt_config *cfg, enum mpt_config_role role, mpt_config_item_cb cb,
                     void *arg);
/* Checks the directory that holds the control socket `sock_path`: it must be a directory (not a
 * symbolic link) owned by this user or by root, and not writable by group or others, so that no
 * other user can replace the socket. Returns 0, or -EPERM / -ENOTDIR / -errno with a reason in
 * err (which names the directory and the fix). */
int mpt_config_control_dir_check(const char *sock_path, char *err, size_t errlen);

const char *mpt_mode_name(enum mpt_sched_mode mode);
const char *mpt_log_level_name(enum mpt_log_level level);

#endif
