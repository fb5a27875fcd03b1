/* cmd_pull.c — `redduck pull`: a deployed project's latest data (the server's current snapshot) into a local
 * DuckDB file, through rd_cloud_pull (redduck/pull.h); prints the progress on a terminal and what changed since
 * the last pull. Needs the server's token only, never AWS credentials. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "redduck/pull.h"

static const char pull_help[] =
    "usage: redduck pull [--project P] [--into FILE] [--tables a,b] [--server URL] [--ca-cert FILE]\n"
    "                    [--insecure-http] [-v]\n"
    "\n"
    "Downloads the project's latest data from the redduck server (the snapshot its last successful refresh\n"
    "published) into a local DuckDB file, then says what changed since the last pull. No AWS credentials are\n"
    "needed: only the server's token (`redduck login`).\n"
    "\n"
    "  --project P     the project (default: `name:` of ./redduck.yaml, else the folder's name)\n"
    "  --into FILE     the DuckDB file written (default: ./<project>.duckdb); replaced atomically, never half\n"
    "  --tables a,b    keep only these tables\n"
    RD_CLI_CLOUD_OPTIONS_HELP
    "\n"
    "A broken download (connection lost, Ctrl-C) leaves FILE.part: the next pull resumes it (unless the server\n"
    "has a newer snapshot meanwhile, then it starts over). The bytes are checked against the server's SHA-256.\n"
    "\n"
    "Exit codes: 0 ok, 1 failure (no data yet, unknown table, network), 2 usage, 3 token refused, 4 role.\n";

static void progress(void *ctx, uint64_t have, uint64_t total)
{
    (void)ctx;
    if (total)
        fprintf(stderr, "\rredduck pull: %.1f of %.1f MB (%d%%)  ", have / 1e6, total / 1e6,
                (int)(have * 100 / total));
    else
        fprintf(stderr, "\rredduck pull: %.1f MB  ", have / 1e6);
}

/* Splits "a,b" into names (pointers into s, which is changed). */
static size_t split_tables(char *s, const char **names, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ","))
        if (*tok)
            names[n++] = tok;
    return n;
}

int rd_cmd_pull(int argc, char **argv)
{
    const char *project_flag = NULL, *into = NULL, *tables = NULL;
    rd_cli_cloud_flags f = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_STRING("--project", &project_flag),
        RD_CLI_OPT_STRING("--into", &into),
        RD_CLI_OPT_STRING("--tables", &tables),
        RD_CLI_OPT_CLOUD(&f),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "pull", pull_help, opts, RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    char *project = NULL;
    rd_status st = rd_cloud_project_name(".", project_flag, &project, &err);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        return rd_cli_exit_code(st);
    }
    char *tables_copy = tables ? strdup(tables) : NULL;
    const char *names[256];
    size_t nnames = tables_copy ? split_tables(tables_copy, names, sizeof names / sizeof *names) : 0;
    if (tables && !nnames) {
        free(project);
        free(tables_copy);
        return rd_cli_usage_error("pull", "--tables needs table names (a,b)");
    }
    char *default_into = NULL;
    if (!into) {
        size_t n = strlen(project) + 8;
        default_into = malloc(n);
        if (default_into)
            snprintf(default_into, n, "%s.duckdb", project);
        into = default_into;
    }
    rd_cloud *c = into ? rd_cli_cloud_open(&f, &rc) : NULL;
    if (!c) {
        free(project);
        free(tables_copy);
        free(default_into);
        return into ? rc : 1;
    }
    int tty = isatty(STDERR_FILENO);
    rd_cloud_pull_options po = { .project = project, .into = into, .tables = nnames ? names : NULL,
                                 .ntables = nnames, .progress = tty ? progress : NULL };
    rd_cloud_pull_result r;
    st = rd_cloud_pull(c, &po, &r, &err);
    if (tty)
        fputs("\r\033[K", stderr);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        rc = rd_cli_exit_code(st);
    } else {
        if (r.up_to_date)
            printf("%s is up to date: snapshot %lld of %s\n", into, (long long)r.snapshot_id, project);
        else
            printf("pulled snapshot %lld of %s into %s (%.1f MB%s)\n", (long long)r.snapshot_id, project, into,
                   r.size / 1e6, r.resumed_from ? ", resumed" : "");
        size_t changed = 0;
        for (size_t i = 0; r.previous_id && i < r.nchanges; i++) {
            const rd_cloud_table_change *t = &r.changes[i];
            if (t->kind == RD_CLOUD_TABLE_ROWS) {
                long long d = (long long)t->rows_after - (long long)t->rows_before;
                printf("%s: %llu → %llu rows (%+lld)\n", t->name, (unsigned long long)t->rows_before,
                       (unsigned long long)t->rows_after, d);
            } else if (t->kind == RD_CLOUD_TABLE_NEW) {
                printf("new table %s (%llu rows)\n", t->name, (unsigned long long)t->rows_after);
            } else if (t->kind == RD_CLOUD_TABLE_REMOVED) {
                printf("table %s removed\n", t->name);
            } else {
                continue;
            }
            changed++;
        }
        if (!r.previous_id) {
            for (size_t i = 0; i < r.nchanges; i++)
                printf("%s: %llu rows\n", r.changes[i].name, (unsigned long long)r.changes[i].rows_after);
        } else if (!changed) {
            printf("no changes since the last pull (snapshot %lld)\n", (long long)r.previous_id);
        }
        rd_cloud_pull_result_free(&r);
        rc = 0;
    }
    rd_cloud_free(c);
    free(project);
    free(tables_copy);
    free(default_into);
    return rc;
}
