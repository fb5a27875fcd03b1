/* cmd_pull.c — `redduck pull`. */
#include <stdio.h>

#include "cli.h"

int rd_cmd_pull(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "redduck: pull is not built yet\n");
    return 2;
}
