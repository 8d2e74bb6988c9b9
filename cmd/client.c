#include <stdio.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "net/tunnel.h"

void mpt_usage_client(FILE *out)
{
    fprintf(out,
            "Usage: mptunnel client -c FILE [-v] [-q]\n"
            "\n"
            "Listens where local applications send ([client] listen); every source address is a\n"
            "flow. Each datagram is encrypted once and sent over every path ([client] bridge\n"
            "lines and [path NAME] sections); replies come back to the application that owns the\n"
            "flow. If the server is restarted, the session is re-established on its own within\n"
            "about two seconds.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   the configuration ([tunnel] and [client] are read)\n"
            "  -v, --verbose       more log output (repeat for debug)\n"
            "  -q, --quiet         less log output\n"
            "  -h, --help          this text\n"
            "\n"
            "Example:\n"
            "  [tunnel]\n"
            "  secret = <output of mptunnel genkey>\n"
            "  [client]\n"
            "  listen = 127.0.0.1:3000\n"
            "  bridge = 198.51.100.7:4000\n"
            "  bridge = bridge2.example.com:4000\n"
            "\n"
            "Exit status: 0 after SIGINT/SIGTERM, 1 runtime failure, 2 usage or configuration "
            "error.\n");
}

int mpt_cmd_client(int argc, char **argv)
{
    /* The configuration holds the secret: key memory (locked, not dumped, wiped when freed). */
    struct mpt_config *cfg = mpt_secure_alloc(sizeof(*cfg), NULL);
    int rc;

    if (!cfg) {
        mpt_cmd_error("client", "out of memory");
        return MPT_EXIT_FAIL;
    }
    rc = mpt_cmd_load_config("client", argc, argv, MPT_ROLE_CLIENT, cfg);
    if (rc == 0)
        rc = mpt_cmd_run_tunnel("client", cfg, MPT_ROLE_CLIENT);
    mpt_secure_free(cfg, sizeof(*cfg));
    return rc;
}
