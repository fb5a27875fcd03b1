/* cmd_logs.c — `redduck logs --cloud SOURCE`: the log lines of a source's latest run (or of --run ID) on the
 * redduck server (redduck/cloud.h); --follow long-polls for new lines until the run ends and exits with its
 * outcome. There is no local log yet: --cloud is required. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/parse.h"

#define FOLLOW_WAIT_S 10 /* one long-poll; well under the client's 30 s idle limit */
#define LATEST_SCAN 20   /* runs looked at for the newest that is not a skipped one */

static const char logs_help[] =
    "usage: redduck logs --cloud SOURCE [--run ID] [--follow] [--project NAME] [--server URL] [--ca-cert FILE]\n"
    "                    [--insecure-http] [-v]\n"
    "\n"
    "Prints the log of the latest run of SOURCE on the redduck server (a skipped run is passed over), or of run\n"
    "ID: a first line naming the run, then one line per step (time, then what the scheduler and the ingest\n"
    "did; never a secret). --follow keeps printing new lines until the run ends, then exits 0 when it\n"
    "succeeded and 1 when it failed or was cancelled. --cloud is required (there is no local log yet).\n"
    "\n"
    "  --cloud              the project on the redduck server\n"
    "  --run ID             this run (see `redduck status --cloud`) instead of the latest; SOURCE may be left out\n"
    "  --follow             wait for new lines until the run ends\n"
    "  --project NAME       the project on the server (default: `name:` in ./redduck.yaml, else the folder's\n"
    "                       name)\n"
    RD_CLI_CLOUD_OPTIONS_HELP
    "\n"
    "Exit codes: 0 ok (with --follow: the run succeeded), 1 failure (no such source or run, the run failed),\n"
    "2 usage, 3 token refused, 4 role not enough.\n";

typedef struct logs_args {
    const char *source;
} logs_args;

static int set_source(const char *value, void *dest)
{
    logs_args *a = dest;
    if (a->source)
        return rd_cli_usage_error("logs", "one source only ('%s' and '%s')", a->source, value);
    a->source = value;
    return 0;
}

static int parse_run(const char *value, void *dest)
{
    uint64_t id = 0;
    if (rd_parse_uint(value, 1, INT64_MAX, &id) != 0)
        return rd_cli_usage_error("logs", "--run: '%s' is not a run id (1, 2, ...)", value);
    *(int64_t *)dest = (int64_t)id;
    return 0;
}

static int fail(rd_status st, const rd_error *err)
{
    rd_cli_print_error(err);
    return rd_cli_exit_code(st);
}

/* The run to show: --run's, else the newest of source that is not skipped (else the newest). */
static rd_status find_run(rd_cloud *c, const char *project, const char *source, int64_t run_id, rd_cloud_run *out,
                          rd_error *err)
{
    if (run_id) {
        rd_cloud_run r;
        rd_status st = rd_cloud_run_get(c, project, run_id, &r, err);
        if (st != RD_OK)
            return st;
        if (source && strcmp(r.source, source) != 0) {
            st = rd_error_set(err, RD_E_USAGE, "run %lld is a run of %s, not of %s", (long long)run_id, r.source,
                              source);
            rd_cloud_run_clear(&r);
            return st;
        }
        *out = r;
        return RD_OK;
    }
    rd_cloud_run *runs = NULL;
    size_t n = 0;
    rd_status st = rd_cloud_runs(c, project, source, LATEST_SCAN, &runs, &n, err);
    if (st != RD_OK)
        return st;
    if (!n) {
        rd_cloud_runs_free(runs, n);
        return rd_error_set(err, RD_E_NOT_FOUND, "source %s of %s has no runs on %s (check the name with `redduck "
                            "status --cloud`; start one with `redduck refresh --cloud %s`)", source, project,
                            rd_cloud_server(c), source);
    }
    size_t pick = 0;
    while (pick < n && strcmp(runs[pick].state, "skipped") == 0)
        pick++;
    if (pick == n)
        pick = 0;
    *out = runs[pick];
    memset(&runs[pick], 0, sizeof runs[pick]);
    rd_cloud_runs_free(runs, n);
    return RD_OK;
}

int rd_cmd_logs(int argc, char **argv)
{
    const char *project_flag = NULL;
    int cloud = 0, follow = 0;
    int64_t run_id = 0;
    logs_args a = { NULL };
    rd_cli_cloud_flags f = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_ARGS(&a, set_source),
        RD_CLI_OPT_FLAG("--cloud", &cloud),
        RD_CLI_OPT_FLAG("--follow", &follow),
        RD_CLI_OPT_PARSE("--run", &run_id, parse_run),
        RD_CLI_OPT_STRING("--project", &project_flag),
        RD_CLI_OPT_CLOUD(&f),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "logs", logs_help, opts, RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc == RD_CLI_CONTINUE && !cloud)
        rc = rd_cli_usage_error("logs", "logs needs --cloud: it reads a run on a redduck server (there is no local "
                                "log yet)");
    if (rc == RD_CLI_CONTINUE && !a.source && !run_id)
        rc = rd_cli_usage_error("logs", "name the SOURCE whose latest run to show (or pass --run ID)");
    if (rc != RD_CLI_CONTINUE)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    char *project = NULL;
    rd_status st = rd_cloud_project_name(".", project_flag, &project, &err);
    if (st != RD_OK)
        return fail(st, &err);
    rd_cloud *c = rd_cli_cloud_open(&f, &rc);
    if (!c) {
        free(project);
        return rc;
    }
    rd_cloud_run r;
    memset(&r, 0, sizeof r);
    st = find_run(c, project, a.source, run_id, &r, &err);
    char *state = NULL;
    if (st == RD_OK) {
        printf("run %lld of %s (%s%s%s, queued %s): %s\n", (long long)r.id, r.source, r.trigger ? r.trigger : "run",
               r.triggered_by ? " by " : "", r.triggered_by ? r.triggered_by : "", r.queued_at ? r.queued_at : "-",
               r.state);
        fflush(stdout);
        int64_t after = 0;
        for (;;) {
            rd_cloud_run_log l;
            if ((st = rd_cloud_run_logs(c, project, r.id, after, follow ? FOLLOW_WAIT_S : 0, &l, &err)) != RD_OK)
                break;
            for (size_t i = 0; i < l.nlines; i++) {
                printf("%s  %s\n", l.lines[i].at ? l.lines[i].at : "-", l.lines[i].line);
                after = l.lines[i].seq;
            }
            fflush(stdout);
            /* without --follow: the lines there are now (several answers when there are many) */
            int again = !l.done && (follow || l.nlines > 0);
            if (!again) {
                free(state);
                state = l.state ? strdup(l.state) : NULL;
            }
            rd_cloud_run_log_free(&l);
            if (!again)
                break;
        }
    }
    int code = 0;
    if (st == RD_OK && follow) {
        printf("run %lld of %s: %s\n", (long long)r.id, r.source, state ? state : "?");
        if (!state || strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0)
            code = 1;
    }
    free(state);
    rd_cloud_run_clear(&r);
    rd_cloud_free(c);
    free(project);
    return st == RD_OK ? code : fail(st, &err);
}
