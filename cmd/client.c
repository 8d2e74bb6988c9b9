#include <stdio.h>

#include "cmd/cmd.h"

void mpt_usage_client(FILE *out)
{
    fprintf(out, "Usage: mptunnel client ...\n");
}

int mpt_cmd_client(int argc, char **argv)
{
    mpt_cmd_error("client", "not available in this build");
    return MPT_EXIT_FAIL;
}
