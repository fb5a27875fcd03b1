/* cmd_logs.c — `redduck logs`. */
#include <stdio.h>

#include "cli.h"

int rd_cmd_logs(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "redduck: logs is not built yet\n");
    return 2;
}
