/* cmd_status.c — `redduck status`. */
#include <stdio.h>

#include "cli.h"

int rd_cmd_status(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "redduck: status is not built yet\n");
    return 2;
}
