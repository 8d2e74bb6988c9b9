/* config/: any bytes as a config file, for every role. Checks what a success promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct mpt_config *cfg, int rc, const char *err)
{
    if (rc != 0) {
        /* A failure always says where: the file name first, printable text only. */
        if (strncmp(err, "fuzz.ini", 8) != 0 || strlen(err) >= MPT_CONFIG_ERR_MAX)
            abort();
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < ' ' || *p == 0x7f)
                abort();
        return;
    }
    if (err[0] || cfg->client.npaths > MPT_CONFIG_MAX_PATHS)
        abort();
    for (unsigned i = 0; i < cfg->client.npaths; i++) {
        const struct mpt_path_config *p = &cfg->client.paths[i];
        if (p->bridge.port == 0 || p->bridge.line <= 0 || !memchr(p->name, 0, sizeof(p->name)) ||
            !memchr(p->device, 0, sizeof(p->device)) || p->priority > 1000 || p->weight < 1 ||
            p->weight > 1000)
            abort();
    }
    /* Key mode: both keys or neither; a server's peers with it and only with it, each named,
     * each with a public key, their rules within the shared table. */
    if (cfg->client.key.have_private_key != cfg->client.have_server_public_key ||
        (cfg->server.npeers > 0) != cfg->server.key.have_private_key ||
        cfg->server.npeers > MPT_CONFIG_MAX_PEERS ||
        cfg->server.npeer_allow > MPT_CONFIG_MAX_PEER_ALLOW)
        abort();
    for (unsigned i = 0; i < cfg->server.npeers; i++) {
        const struct mpt_config_peer *p = &cfg->server.peers[i];
        if (!p->name[0] || !memchr(p->name, 0, sizeof(p->name)) || p->public_key_line <= 0 ||
            mpt_key_low_order(p->public_key) ||
            p->allow_first + p->nallow > cfg->server.npeer_allow)
            abort();
    }
    if (cfg->client.target_loss <= 0 || cfg->client.target_loss >= 1 || cfg->client.max_flows < 1 ||
        cfg->client.probe_interval_ms < 20 || cfg->server.max_sessions < 1 ||
        cfg->sndbuf > (1u << 30) || cfg->rcvbuf > (1u << 30))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mpt_config cfg;
    char err[MPT_CONFIG_ERR_MAX];
    char *text = malloc(size + 1);
    int rc;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (int role = MPT_ROLE_ANY; role <= MPT_ROLE_SERVER; role++) {
        err[0] = '\0';
        rc = mpt_config_load_string(&cfg, "fuzz.ini", text, (enum mpt_config_role)role, err,
                                    sizeof(err));
        check(&cfg, rc, err);
        if (role == MPT_ROLE_CLIENT && rc == 0 &&
            ((!cfg.have_secret && !mpt_config_key_mode(&cfg, MPT_ROLE_CLIENT)) ||
             cfg.client.npaths == 0 || cfg.client.listen.line == 0))
            abort();
        if (role == MPT_ROLE_SERVER && rc == 0 &&
            ((!cfg.have_secret && !mpt_config_key_mode(&cfg, MPT_ROLE_SERVER)) ||
             (cfg.server.target.port == 0 && cfg.server.nallow == 0 && cfg.server.npeers == 0) ||
             cfg.server.listen.line == 0))
            abort();
    }
    free(text);
    return 0;
}
