/* cmd_refresh.c — `redduck refresh --cloud [SOURCE...]`: queues manual runs of a project's sources on the
 * redduck server (redduck/cloud.h) and prints their ids; --wait follows each run to its end, one line per run.
 * There is no local refresh yet (`redduck run` ingests locally): --cloud is required. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/parse.h"
#include "core/timeutil.h"
#include "redduck/buf.h"

#define POLL_MS 500
#define TIMEOUT_MAX_S (7 * 24 * 3600)

static const char refresh_help[] =
    "usage: redduck refresh --cloud [SOURCE...] [--wait] [--timeout SECONDS] [--project NAME] [--server URL]\n"
    "                       [--ca-cert FILE] [--insecure-http] [-v]\n"
    "\n"
    "Asks the redduck server to refresh the project's sources now (all of them, or the SOURCEs named), as their\n"
    "schedules would, and prints the run each got: queued, or skipped when a run of that source is queued or\n"
    "running already. The server runs them with the deployment's prod variables; nothing runs on this machine.\n"
    "--cloud is required (refreshing a local project is `redduck run`).\n"
    "\n"
    "  --cloud              refresh on the redduck server\n"
    "  --wait               wait for every run to end, printing one line per run as it ends (source, state,\n"
    "                       rows, duration); exit 1 if any failed\n"
    "  --timeout SECONDS    with --wait, give up after this long (exit 1; the runs go on on the server)\n"
    "  --project NAME       the project on the server (default: `name:` in ./redduck.yaml, else the folder's\n"
    "                       name)\n"
    RD_CLI_CLOUD_OPTIONS_HELP
    "\n"
    "Exit codes: 0 ok, 1 failure (a run failed, an unknown project or source, the timeout), 2 usage, 3 token\n"
    "refused, 4 role not enough (refreshing needs the editor role).\n";

typedef struct sources {
    const char **v;
    size_t n;
} sources;

static int add_source(const char *value, void *dest)
{
    sources *s = dest;
    if (!*value)
        return rd_cli_usage_error("refresh", "a source name is not empty");
    const char **v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        return rd_cli_usage_error("refresh", "out of memory");
    v[s->n++] = value;
    s->v = v;
    return 0;
}

static int parse_timeout(const char *value, void *dest)
{
    uint64_t secs = 0;
    if (rd_parse_uint(value, 1, TIMEOUT_MAX_S, &secs) != 0)
        return rd_cli_usage_error("refresh", "--timeout is a number of seconds (1 or more), not '%s'", value);
    *(long *)dest = (long)secs;
    return 0;
}

static int fail(rd_status st, const rd_error *err)
{
    rd_cli_print_error(err);
    return rd_cli_exit_code(st);
}

/* "12.3 s", or "" when not known. */
static void duration_text(double s, char out[32])
{
    if (s < 0)
        out[0] = 0;
    else if (s < 60)
        snprintf(out, 32, "%.1f s", s);
    else
        snprintf(out, 32, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

/* The line printed when a run ends. */
static void print_ended(const rd_cloud_run *r)
{
    char dur[32];
    duration_text(r->duration_s, dur);
    printf("%s: %s", r->source, r->state);
    if (strcmp(r->state, "success") == 0 && r->rows >= 0)
        printf(", %lld rows", (long long)r->rows);
    if (dur[0])
        printf(", %s", dur);
    if (r->attempts > 1)
        printf(", %d attempts", r->attempts);
    printf(" (run %lld)", (long long)r->id);
    if (r->error)
        printf(": %s", r->error);
    printf("\n");
    fflush(stdout);
}

/* Polls each run until it ends (or timeout_s passes, 0: no limit). *failed counts those that did not succeed
 * (failed or cancelled). */
static rd_status wait_runs(rd_cloud *c, const char *project, const rd_cloud_refresh_result *r, long timeout_s,
                           int *failed, rd_error *err)
{
    int *ended = calloc(r->nruns ? r->nruns : 1, sizeof *ended);
    if (!ended)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    long long deadline = timeout_s ? rd_monotonic_ms() + (long long)timeout_s * 1000 : 0;
    size_t left = r->nruns;
    rd_status st = RD_OK;
    while (left && st == RD_OK) {
        for (size_t i = 0; i < r->nruns && st == RD_OK; i++) {
            if (ended[i])
                continue;
            rd_cloud_run run;
            if ((st = rd_cloud_run_get(c, project, r->runs[i].id, &run, err)) != RD_OK)
                break;
            if (rd_cloud_run_state_ended(run.state)) {
                ended[i] = 1;
                left--;
                print_ended(&run);
                if (strcmp(run.state, "failed") == 0 || strcmp(run.state, "cancelled") == 0)
                    (*failed)++;
            }
            rd_cloud_run_clear(&run);
        }
        if (!left || st != RD_OK)
            break;
        if (deadline && rd_monotonic_ms() >= deadline) {
            rd_buf still = RD_BUF_INIT;
            for (size_t i = 0; i < r->nruns; i++)
                if (!ended[i])
                    rd_buf_printf(&still, "%s%s (run %lld)", still.len ? ", " : "", r->runs[i].source,
                                  (long long)r->runs[i].id);
            st = rd_error_set(err, RD_E_REMOTE, "still running after %ld s: %s (they go on on the server: see "
                              "`redduck status --cloud`)", timeout_s, rd_buf_cstr(&still));
            rd_buf_free(&still);
            break;
        }
        rd_sleep_ms(POLL_MS);
    }
    free(ended);
    return st;
}

int rd_cmd_refresh(int argc, char **argv)
{
    const char *project_flag = NULL;
    int cloud = 0, wait = 0;
    long timeout_s = 0;
    sources src = { NULL, 0 };
    rd_cli_cloud_flags f = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_ARGS(&src, add_source),
        RD_CLI_OPT_FLAG("--cloud", &cloud),
        RD_CLI_OPT_FLAG("--wait", &wait),
        RD_CLI_OPT_PARSE("--timeout", &timeout_s, parse_timeout),
        RD_CLI_OPT_STRING("--project", &project_flag),
        RD_CLI_OPT_CLOUD(&f),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "refresh", refresh_help, opts, RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc == RD_CLI_CONTINUE && !cloud)
        rc = rd_cli_usage_error("refresh", "refresh needs --cloud: it runs on a redduck server (there is no local "
                                "refresh yet; `redduck run` ingests a project here)");
    if (rc == RD_CLI_CONTINUE && timeout_s && !wait)
        rc = rd_cli_usage_error("refresh", "--timeout needs --wait");
    if (rc != RD_CLI_CONTINUE) {
        free(src.v);
        return rc;
    }
    rd_error err;
    rd_error_clear(&err);
    char *project = NULL;
    rd_status st = rd_cloud_project_name(".", project_flag, &project, &err);
    if (st != RD_OK) {
        free(src.v);
        return fail(st, &err);
    }
    rd_cloud *c = rd_cli_cloud_open(&f, &rc);
    if (!c) {
        free(project);
        free(src.v);
        return rc;
    }
    rd_cloud_refresh_result r = { 0 };
    int failed = 0;
    st = rd_cloud_refresh(c, project, src.v, src.n, &r, &err);
    if (st == RD_OK) {
        if (!r.nruns)
            printf("%s has no sources to refresh\n", project);
        for (size_t i = 0; i < r.nruns; i++) {
            if (r.runs[i].skipped)
                printf("%s: run %lld skipped (a run of %s is queued or running already)\n", r.runs[i].source,
                       (long long)r.runs[i].id, r.runs[i].source);
            else
                printf("%s: run %lld queued\n", r.runs[i].source, (long long)r.runs[i].id);
        }
        fflush(stdout);
        if (wait)
            st = wait_runs(c, project, &r, timeout_s, &failed, &err);
    }
    rd_cloud_refresh_result_free(&r);
    rd_cloud_free(c);
    free(project);
    free(src.v);
    if (st != RD_OK)
        return fail(st, &err);
    if (failed) {
        fprintf(stderr, "redduck: %d of the runs failed (see `redduck logs --cloud SOURCE`)\n", failed);
        return 1;
    }
    return 0;
}
