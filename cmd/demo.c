#include <stdio.h>

#include "cmd/cmd.h"

void mpt_usage_demo(FILE *out)
{
    fprintf(out, "Usage: mptunnel demo ...\n");
}

int mpt_cmd_demo(int argc, char **argv)
{
    mpt_cmd_error("demo", "not available in this build");
    return MPT_EXIT_FAIL;
}
