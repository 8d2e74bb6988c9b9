#include <stdio.h>

#include "cmd/cmd.h"
#include "core/crypto.h"
#include "net/tunnel.h"

void mpt_usage_server(FILE *out)
{
    fprintf(out,
            "Usage: mptunnel server -c FILE [-v] [-q]\n"
            "\n"
            "Accepts the paths' traffic on [server] listen, removes duplicates, and forwards each\n"
            "flow to [server] target from a socket of its own (like a NAT); the target's replies\n"
            "go back over the paths. Datagrams that fail authentication get no answer at all.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   the configuration ([tunnel] and [server] are read)\n"
            "  -v, --verbose       more log output (repeat for debug)\n"
            "  -q, --quiet         less log output\n"
            "  -h, --help          this text\n"
            "\n"
            "Example:\n"
            "  [tunnel]\n"
            "  secret = <the client's secret>\n"
            "  [server]\n"
            "  listen = 2000            ; PORT alone: all addresses, IPv4 and IPv6\n"
            "  target = 127.0.0.1:1194\n"
            "\n"
            "Exit status: 0 after SIGINT/SIGTERM, 1 runtime failure, 2 usage or configuration "
            "error.\n");
}

int mpt_cmd_server(int argc, char **argv)
{
    /* The configuration holds the secret: key memory (locked, not dumped, wiped when freed). */
    struct mpt_config *cfg = mpt_secure_alloc(sizeof(*cfg), NULL);
    int rc;

    if (!cfg) {
        mpt_cmd_error("server", "out of memory");
        return MPT_EXIT_FAIL;
    }
    rc = mpt_cmd_load_config("server", argc, argv, MPT_ROLE_SERVER, cfg);
    if (rc == 0)
        rc = mpt_cmd_run_tunnel("server", cfg, MPT_ROLE_SERVER);
    mpt_secure_free(cfg, sizeof(*cfg));
    return rc;
}
