/* cmd_refresh.c — `redduck refresh`. */
#include <stdio.h>

#include "cli.h"

int rd_cmd_refresh(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "redduck: refresh is not built yet\n");
    return 2;
}
