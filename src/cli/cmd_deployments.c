/* cmd_deployments.c — `redduck deployments [DIR]`: a project's versions on the redduck server, newest first,
 * the active one marked; `--rollback N` makes version N the active one again (redduck/cloud.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char deployments_help[] =
    "usage: redduck deployments [DIR] [--project NAME] [--rollback N] [--server URL] [--ca-cert FILE]\n"
    "                           [--insecure-http] [-v]\n"
    "\n"
    "Lists the versions of the project on the redduck server, newest first: VERSION, '*' for the active one,\n"
    "the environment, when and by whom it was deployed, and the start of its archive's SHA-256. Every version\n"
    "is kept: --rollback N makes version N the active one again (atomically; the others stay listed).\n"
    "\n"
    "  --project NAME       the project on the server (default: `name:` in DIR/redduck.yaml, else the folder's\n"
    "                       name; DIR defaults to the current directory)\n"
    "  --rollback N         activate version N\n"
    RD_CLI_CLOUD_OPTIONS_HELP
    "\n"
    "Exit codes: 0 ok, 1 failure (no such project or version), 2 usage, 3 token refused, 4 role not enough.\n";

static int fail(rd_status st, const rd_error *err)
{
    rd_cli_print_error(err);
    return rd_cli_exit_code(st);
}

static int parse_version(const char *value, void *dest)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < 1)
        return rd_cli_usage_error("deployments", "--rollback: '%s' is not a version number (1, 2, ...)", value);
    *(long *)dest = v;
    return 0;
}

int rd_cmd_deployments(int argc, char **argv)
{
    const char *dir = NULL, *project_flag = NULL;
    long rollback = 0;
    rd_cli_cloud_flags f = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_DIR(&dir),
        RD_CLI_OPT_STRING("--project", &project_flag),
        RD_CLI_OPT_PARSE("--rollback", &rollback, parse_version),
        RD_CLI_OPT_CLOUD(&f),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "deployments", deployments_help, opts, RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    char *project = NULL;
    rd_status st = rd_cloud_project_name(dir ? dir : ".", project_flag, &project, &err);
    if (st != RD_OK)
        return fail(st, &err);
    rd_cloud *c = rd_cli_cloud_open(&f, &rc);
    if (!c) {
        free(project);
        return rc;
    }
    rd_cloud_deployment *d = NULL;
    size_t n = 0;
    st = rd_cloud_list_deployments(c, project, &d, &n, &err);
    if (st == RD_OK && rollback) {
        long was = 0;
        int known = 0;
        for (size_t i = 0; i < n; i++) {
            known |= d[i].version == rollback;
            if (d[i].active)
                was = d[i].version;
        }
        if (!known)
            st = rd_error_set(&err, RD_E_NOT_FOUND, "project %s has no version %ld on %s (see `redduck deployments`)",
                              project, rollback, rd_cloud_server(c));
        else if (was == rollback)
            printf("%s: version %ld is already the active one\n", project, rollback);
        else if ((st = rd_cloud_activate(c, project, rollback, &err)) == RD_OK) {
            if (was)
                printf("%s: version %ld is active (was %ld)\n", project, rollback, was);
            else
                printf("%s: version %ld is active\n", project, rollback);
        }
    } else if (st == RD_OK) {
        if (!n) {
            printf("%s has no deployments on %s (`redduck deploy`)\n", project, rd_cloud_server(c));
        } else {
            printf("%-8s %-6s %-12s %-21s %-16s %s\n", "VERSION", "ACTIVE", "ENVIRONMENT", "CREATED", "BY", "SHA256");
            for (size_t i = 0; i < n; i++)
                printf("%-8ld %-6s %-12s %-21s %-16s %.12s\n", d[i].version, d[i].active ? "*" : "",
                       d[i].environment, d[i].created_at, d[i].created_by, d[i].sha256);
        }
    }
    rd_cloud_deployments_free(d, n);
    rd_cloud_free(c);
    free(project);
    return st == RD_OK ? 0 : fail(st, &err);
}
