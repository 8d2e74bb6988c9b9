#include <stdio.h>

#include "cmd/cmd.h"

void mpt_usage_bridge(FILE *out)
{
    fprintf(out, "Usage: mptunnel bridge ...\n");
}

int mpt_cmd_bridge(int argc, char **argv)
{
    mpt_cmd_error("bridge", "not available in this build");
    return MPT_EXIT_FAIL;
}
