/* main.c — the redduck command line: parses the subcommand and hands off. Placeholder until the
 * commands land. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("redduck %s\n", RD_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: redduck <command> [options]\n");
    return 2;
}
