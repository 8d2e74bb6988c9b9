#include <stdio.h>

#include "cmd/cmd.h"

void mpt_usage_server(FILE *out)
{
    fprintf(out, "Usage: mptunnel server ...\n");
}

int mpt_cmd_server(int argc, char **argv)
{
    mpt_cmd_error("server", "not available in this build");
    return MPT_EXIT_FAIL;
}
