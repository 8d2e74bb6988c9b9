/* A loaded configuration told back key by key, defaults filled in: what `mptunnel check` prints.
 * Every key of the schema (config.c's table) has its line here; test/unit/config/test_show.c
 * fails when one is missing. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

struct walk {
    const struct mpt_config *cfg;
    const struct mpt_path_config *path; /* the [path NAME] being told, or NULL */
    const char *schema;                 /* its section in the schema: "tunnel", "path", ... */
    char section[MPT_CONFIG_PEER_NAME_MAX + 16];
    int path_no;
    mpt_config_item_cb cb;
    void *arg;
};

static void begin(struct walk *w, const char *section, const struct mpt_path_config *path,
                  int path_no)
{
    w->schema = section;
    w->path = path;
    w->path_no = path_no;
    if (path)
        snprintf(w->section, sizeof(w->section), "path %s", path->name);
    else
        snprintf(w->section, sizeof(w->section), "%s", section);
}

/* One key: `def_note` is the note when the file did not give the key. */
static void emit_addr(struct walk *w, const char *key, const char *value, const char *note,
                      const char *def_note, const struct mpt_hostport *addr, int passive)
{
    struct mpt_config_item it = {
        .section = w->section,
        .key = key,
        .value = value,
        .note = note,
        .addr = addr,
        .passive = passive,
        .path = w->path_no,
    };

    if (!it.note && !mpt_config_key_given(w->cfg, w->path, w->schema, key))
        it.note = def_note;
    w->cb(w->arg, &it);
}

static void emit(struct walk *w, const char *key, const char *value, const char *def_note)
{
    emit_addr(w, key, value, NULL, def_note, NULL, 0);
}

static void emit_uint(struct walk *w, const char *key, unsigned long v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%lu", v);
    emit(w, key, buf, "default");
}

/* In the largest unit that keeps it exact, as mpt_duration_parse reads it back. */
static void emit_duration(struct walk *w, const char *key, uint32_t ms)
{
    char buf[24];

    if (ms && ms % 3600000 == 0)
        snprintf(buf, sizeof(buf), "%uh", (unsigned)(ms / 3600000));
    else if (ms && ms % 60000 == 0)
        snprintf(buf, sizeof(buf), "%um", (unsigned)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, sizeof(buf), "%us", (unsigned)(ms / 1000));
    else
        snprintf(buf, sizeof(buf), "%ums", (unsigned)ms);
    emit(w, key, buf, "default");
}

static void emit_size(struct walk *w, const char *key, uint32_t bytes)
{
    char buf[24];

    if (!bytes) {
        emit(w, key, "4M", "default (capped by net.core.[rw]mem_max unless root)");
        return;
    }
    if (bytes % (1024 * 1024 * 1024) == 0)
        snprintf(buf, sizeof(buf), "%uG", (unsigned)(bytes / (1024 * 1024 * 1024)));
    else if (bytes % (1024 * 1024) == 0)
        snprintf(buf, sizeof(buf), "%uM", (unsigned)(bytes / (1024 * 1024)));
    else if (bytes % 1024 == 0)
        snprintf(buf, sizeof(buf), "%uK", (unsigned)(bytes / 1024));
    else
        snprintf(buf, sizeof(buf), "%u", (unsigned)bytes);
    emit(w, key, buf, "default");
}

/* As written: "[V6]:PORT" for IPv6 literals, "PORT" alone for all addresses. */
static void hostport_text(const struct mpt_hostport *hp, char *buf, size_t len)
{
    if (!hp->host[0])
        snprintf(buf, len, "%u", (unsigned)hp->port);
    else if (strchr(hp->host, ':'))
        snprintf(buf, len, "[%s]:%u", hp->host, (unsigned)hp->port);
    else
        snprintf(buf, len, "%s:%u", hp->host, (unsigned)hp->port);
}

static void emit_hostport(struct walk *w, const char *key, const struct mpt_hostport *hp,
                          int passive)
{
    char buf[MPT_CONFIG_HOST_MAX + 16];

    if (!hp->line) {
        emit(w, key, "", "not set");
        return;
    }
    hostport_text(hp, buf, sizeof(buf));
    emit_addr(w, key, buf, NULL, NULL, hp, passive);
}

static void emit_control(struct walk *w, enum mpt_config_role role)
{
    char path[512];

    if (mpt_config_control_path(w->cfg, role, path, sizeof(path)) != 0)
        snprintf(path, sizeof(path), "(too long)");
    emit(w, "control", path, "default");
}

static void walk_tunnel(struct walk *w)
{
    const struct mpt_config *cfg = w->cfg;

    begin(w, "tunnel", NULL, 0);
    if (cfg->have_secret && !cfg->secret_file[0])
        emit_addr(w, "secret", "(not shown)", "set", NULL, NULL, 0);
    else
        emit_addr(w, "secret", "", cfg->secret_file[0] ? "from secret_file" : "not set", NULL, NULL,
                  0);
    if (cfg->secret_file[0])
        emit_addr(w, "secret_file", cfg->secret_file, "read; the secret is not shown", NULL, NULL,
                  0);
    else
        emit(w, "secret_file", "", "not set");
    emit(w, "log_level", mpt_log_level_name(cfg->log_level), "default");
    emit(w, "cipher", cfg->no_aes ? "chacha20-poly1305" : "auto", "default");
    emit_size(w, "sndbuf", cfg->sndbuf);
    emit_size(w, "rcvbuf", cfg->rcvbuf);
    emit(w, "insecure_permissions", cfg->insecure_permissions ? "yes" : "no", "default");
    emit_duration(w, "rekey_interval", cfg->rekey_ms);
}

static void key_text(const uint8_t key[MPT_KEY_LEN], char *buf, size_t len)
{
    sodium_bin2base64(buf, len, key, MPT_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

/* private_key and private_key_file: never the key, only its public key. */
static void emit_own_key(struct walk *w, const struct mpt_key_config *k)
{
    char pub[sodium_base64_ENCODED_LEN(MPT_KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];
    char note[sizeof(pub) + 64];

    key_text(k->public_key, pub, sizeof(pub));
    if (!k->have_private_key) {
        emit(w, "private_key", "", "not set: shared-secret mode");
        emit(w, "private_key_file", "", "not set");
        return;
    }
    snprintf(note, sizeof(note), "%s, public key %s", k->file[0] ? "from private_key_file" : "set",
             pub);
    if (k->file[0]) {
        emit_addr(w, "private_key", "", note, NULL, NULL, 0);
        emit_addr(w, "private_key_file", k->file, "read; the key is not shown", NULL, NULL, 0);
    } else {
        emit_addr(w, "private_key", "(not shown)", note, NULL, NULL, 0);
        emit(w, "private_key_file", "", "not set");
    }
}

static void walk_path_keys(struct walk *w, const struct mpt_path_config *p)
{
    emit(w, "bind", p->bind, "not set: any address");
    emit(w, "device", p->device, "not set: any interface");
    emit_uint(w, "priority", p->priority);
    emit_uint(w, "weight", p->weight);
}

static void walk_client(struct walk *w)
{
    const struct mpt_client_config *cl = &w->cfg->client;
    char buf[32];
    unsigned unnamed = 0;

    begin(w, "client", NULL, 0);
    emit_hostport(w, "listen", &cl->listen, 1);
    for (unsigned i = 0; i < cl->npaths; i++) {
        if (cl->paths[i].name[0])
            continue;
        w->path_no = (int)i + 1;
        emit_hostport(w, "bridge", &cl->paths[i].bridge, 0);
        unnamed++;
    }
    w->path_no = 0;
    if (!unnamed)
        emit(w, "bridge", "", "not set: [path NAME] sections only");
    emit(w, "mode", mpt_mode_name(cl->mode), "default");
    snprintf(buf, sizeof(buf), "%g", cl->target_loss);
    emit(w, "target_loss", buf, "default");
    if (cl->fec_k) {
        snprintf(buf, sizeof(buf), "%u:%u", cl->fec_k, cl->fec_m);
        emit(w, "fec", buf, "default");
    } else {
        emit(w, "fec", "", "not set: from measured loss and target_loss");
    }
    emit_duration(w, "fec_wait", cl->fec_wait_ms);
    emit_uint(w, "max_flows", cl->max_flows);
    emit_duration(w, "flow_timeout", cl->flow_timeout_ms);
    emit_duration(w, "probe_interval", cl->probe_interval_ms);
    emit_duration(w, "reorder_cap", cl->reorder_cap_ms);
    emit_control(w, MPT_ROLE_CLIENT);
    emit_hostport(w, "metrics", &cl->metrics, 1);
    emit_hostport(w, "socks", &cl->socks, 1);
    emit(w, "socks_user", cl->socks_user, "not set: no authentication");
    if (cl->socks_password_file[0]) {
        emit_addr(w, "socks_password", "", "from socks_password_file", NULL, NULL, 0);
        emit_addr(w, "socks_password_file", cl->socks_password_file,
                  "read; the password is not shown", NULL, NULL, 0);
    } else {
        emit_addr(w, "socks_password", cl->socks_password_line ? "(not shown)" : "",
                  cl->socks_password_line ? "set" : "not set", NULL, NULL, 0);
        emit(w, "socks_password_file", "", "not set");
    }
    emit_own_key(w, &cl->key);
    if (cl->have_server_public_key) {
        char pub[sodium_base64_ENCODED_LEN(MPT_KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];

        key_text(cl->server_public_key, pub, sizeof(pub));
        emit(w, "server_public_key", pub, NULL);
    } else {
        emit(w, "server_public_key", "", "not set");
    }
    for (unsigned i = 0; i < cl->npaths; i++) {
        const struct mpt_path_config *p = &cl->paths[i];

        if (!p->name[0])
            continue;
        begin(w, "path", p, (int)i + 1);
        emit_hostport(w, "bridge", &p->bridge, 0);
        walk_path_keys(w, p);
    }
    for (unsigned i = 0; i < cl->nforwards; i++) {
        const struct mpt_forward_config *f = &cl->forwards[i];
        char tbuf[MPT_CONFIG_HOST_MAX + 16];

        begin(w, "forward", NULL, 0);
        snprintf(w->section, sizeof(w->section), "forward %s", f->name);
        emit_hostport(w, "listen", &f->listen, 1);
        /* Resolved by the server, which checks it against its `allow' list. */
        hostport_text(&f->target, tbuf, sizeof(tbuf));
        emit_addr(w, "target", tbuf, "resolved and checked by the server", NULL, NULL, 0);
    }
}

static void emit_allow(struct walk *w, const struct mpt_allow *a)
{
    char buf[MPT_CONFIG_HOST_MAX + 32];

    mpt_allow_format(a, buf, sizeof(buf));
    emit_addr(w, "allow", buf, NULL, NULL, a->family ? NULL : &a->host, 0);
}

static void walk_peer(struct walk *w, const struct mpt_config_peer *p)
{
    const struct mpt_server_config *sv = &w->cfg->server;
    char pub[sodium_base64_ENCODED_LEN(MPT_KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];
    int own = p->nallow || p->target.line;

    begin(w, "peer", NULL, 0);
    snprintf(w->section, sizeof(w->section), "peer %s", p->name);
    key_text(p->public_key, pub, sizeof(pub));
    emit(w, "public_key", pub, NULL);
    if (p->secret_file[0]) {
        emit_addr(w, "secret", "", "from secret_file", NULL, NULL, 0);
        emit_addr(w, "secret_file", p->secret_file, "read; the secret is not shown", NULL, NULL, 0);
    } else {
        if (p->have_secret)
            emit_addr(w, "secret", "(not shown)", "set", NULL, NULL, 0);
        else
            emit_addr(w, "secret", "",
                      w->cfg->have_secret ? "not set: [tunnel] secret" : "not set: none", NULL,
                      NULL, 0);
        emit_addr(w, "secret_file", "", "not set", NULL, NULL, 0);
    }
    for (unsigned i = 0; i < p->nallow; i++)
        emit_allow(w, &sv->peer_allow[p->allow_first + i]);
    if (!p->nallow)
        emit_addr(w, "allow", "",
                  own ? "not set: its target only" : "not set: [server] target and allow", NULL,
                  NULL, 0);
    if (p->target.line)
        emit_hostport(w, "target", &p->target, 0);
    else
        emit_addr(w, "target", "",
                  own ? "not set: its allow rules only" : "not set: [server] target and allow",
                  NULL, NULL, 0);
}

static void walk_server(struct walk *w)
{
    const struct mpt_server_config *sv = &w->cfg->server;

    begin(w, "server", NULL, 0);
    emit_hostport(w, "listen", &sv->listen, 1);
    emit_hostport(w, "target", &sv->target, 0);
    for (unsigned i = 0; i < sv->nallow; i++)
        emit_allow(w, &sv->allow[i]);
    if (!sv->nallow)
        emit(w, "allow", "", "not set: flows reach the default target only");
    emit_uint(w, "max_sessions", sv->max_sessions);
    emit_uint(w, "max_flows", sv->max_flows);
    emit_duration(w, "flow_timeout", sv->flow_timeout_ms);
    emit_duration(w, "session_timeout", sv->session_timeout_ms);
    emit_duration(w, "reorder_cap", sv->reorder_cap_ms);
    emit_control(w, MPT_ROLE_SERVER);
    emit_hostport(w, "metrics", &sv->metrics, 1);
    emit_own_key(w, &sv->key);
    for (unsigned i = 0; i < sv->npeers; i++)
        walk_peer(w, &sv->peers[i]);
}

void mpt_config_walk(const struct mpt_config *cfg, enum mpt_config_role role, mpt_config_item_cb cb,
                     void *arg)
{
    struct walk w = {.cfg = cfg, .cb = cb, .arg = arg};

    walk_tunnel(&w);
    if (role == MPT_ROLE_CLIENT || (role == MPT_ROLE_ANY && cfg->client.present))
        walk_client(&w);
    if (role == MPT_ROLE_SERVER || (role == MPT_ROLE_ANY && cfg->server.present))
        walk_server(&w);
}
