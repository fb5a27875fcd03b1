/* cmd_status.c — `redduck status --cloud`: a project's sources on the redduck server (redduck/cloud.h) as an
 * aligned table — the last run (when, state, rows, duration) and the next scheduled one — and its current
 * snapshot; --json prints the server's answer as it came. There is no local status yet: --cloud is required. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/timeutil.h"

static const char status_help[] =
    "usage: redduck status --cloud [--project NAME] [--json] [--server URL] [--ca-cert FILE] [--insecure-http]\n"
    "                      [-v]\n"
    "\n"
    "Shows the project's sources on the redduck server, one line each: SOURCE, LAST RUN (how long ago it\n"
    "ended, or started), STATUS (queued, running, success, failed, cancelled; 'never' before the first run),\n"
    "ROWS and DURATION of that run, NEXT RUN (when its schedule runs it next, or 'disabled' / 'manual'), then\n"
    "the project's current snapshot (the DuckDB file `redduck pull` downloads). --cloud is required (there is\n"
    "no local status yet).\n"
    "\n"
    "  --cloud              the project on the redduck server\n"
    "  --project NAME       the project on the server (default: `name:` in ./redduck.yaml, else the folder's\n"
    "                       name)\n"
    "  --json               print the server's answer (JSON) instead of the table\n"
    RD_CLI_CLOUD_OPTIONS_HELP
    "\n"
    "Exit codes: 0 ok, 1 failure (no such project), 2 usage, 3 token refused, 4 role not enough.\n";

static int fail(rd_status st, const rd_error *err)
{
    rd_cli_print_error(err);
    return rd_cli_exit_code(st);
}

/* "3m ago", "in 2h", "just now"; "-" for NULL or a time that does not parse. */
static void relative(const char *iso, time_t now, char out[32])
{
    time_t t = 0;
    if (!iso || rd_time_parse_iso8601(iso, &t) != 0) {
        snprintf(out, 32, "-");
        return;
    }
    long long d = (long long)(now - t);
    int future = d < 0;
    long long a = future ? -d : d;
    char n[24];
    if (a < 1)
        snprintf(out, 32, "just now");
    else {
        if (a < 60)
            snprintf(n, sizeof n, "%llds", a);
        else if (a < 3600)
            snprintf(n, sizeof n, "%lldm", a / 60);
        else if (a < 86400)
            snprintf(n, sizeof n, "%lldh", a / 3600);
        else
            snprintf(n, sizeof n, "%lldd", a / 86400);
        snprintf(out, 32, future ? "in %s" : "%s ago", n);
    }
}

static void duration_text(double s, char out[32])
{
    if (s < 0)
        snprintf(out, 32, "-");
    else if (s < 60)
        snprintf(out, 32, "%.1f s", s);
    else
        snprintf(out, 32, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static void size_text(uint64_t b, char out[32])
{
    if (b < 1024)
        snprintf(out, 32, "%llu B", (unsigned long long)b);
    else if (b < 1024 * 1024)
        snprintf(out, 32, "%.1f KiB", (double)b / 1024);
    else if (b < 1024ull * 1024 * 1024)
        snprintf(out, 32, "%.1f MiB", (double)b / (1024 * 1024));
    else
        snprintf(out, 32, "%.1f GiB", (double)b / (1024.0 * 1024 * 1024));
}

enum { C_SOURCE, C_LAST, C_STATUS, C_ROWS, C_DURATION, C_NEXT, NCOLS };

typedef struct row {
    char col[NCOLS][160];
} row;

static void print_table(const rd_cloud_project_status *s, time_t now)
{
    static const char *const head[NCOLS] = { "SOURCE", "LAST RUN", "STATUS", "ROWS", "DURATION", "NEXT RUN" };
    row *rows = calloc(s->nsources + 1, sizeof *rows);
    if (!rows)
        return;
    size_t w[NCOLS];
    for (int k = 0; k < NCOLS; k++) {
        snprintf(rows[0].col[k], sizeof rows[0].col[k], "%s", head[k]);
        w[k] = strlen(head[k]);
    }
    for (size_t i = 0; i < s->nsources; i++) {
        const rd_cloud_source_status *x = &s->sources[i];
        const rd_cloud_run *r = x->last_run;
        row *o = &rows[i + 1];
        char t[32];
        snprintf(o->col[C_SOURCE], sizeof o->col[0], "%.150s", x->name);
        if (r) {
            relative(r->finished_at ? r->finished_at : r->started_at ? r->started_at : r->queued_at, now, t);
            snprintf(o->col[C_LAST], sizeof o->col[0], "%s", t);
            snprintf(o->col[C_STATUS], sizeof o->col[0], "%s", r->state);
            if (r->rows >= 0)
                snprintf(o->col[C_ROWS], sizeof o->col[0], "%lld", (long long)r->rows);
            else
                snprintf(o->col[C_ROWS], sizeof o->col[0], "-");
            duration_text(r->duration_s, t);
            snprintf(o->col[C_DURATION], sizeof o->col[0], "%s", t);
        } else {
            snprintf(o->col[C_LAST], sizeof o->col[0], "-");
            snprintf(o->col[C_STATUS], sizeof o->col[0], "%s", x->running ? "queued" : "never");
            snprintf(o->col[C_ROWS], sizeof o->col[0], "-");
            snprintf(o->col[C_DURATION], sizeof o->col[0], "-");
        }
        if (x->next_run) {
            relative(x->next_run, now, t);
            snprintf(o->col[C_NEXT], sizeof o->col[0], "%s", t);
        } else if (x->schedule && strcmp(x->schedule, "disabled") == 0) {
            snprintf(o->col[C_NEXT], sizeof o->col[0], "disabled");
        } else if (x->schedule && strcmp(x->schedule, "none") == 0) {
            snprintf(o->col[C_NEXT], sizeof o->col[0], "manual");
        } else {
            snprintf(o->col[C_NEXT], sizeof o->col[0], "-");
        }
        for (int k = 0; k < NCOLS; k++)
            if (strlen(o->col[k]) > w[k])
                w[k] = strlen(o->col[k]);
    }
    for (size_t i = 0; i <= s->nsources; i++) {
        for (int k = 0; k < NCOLS; k++) {
            if (k == NCOLS - 1)
                printf("%s\n", rows[i].col[k]);
            else if (k == C_ROWS && i > 0)
                printf("%*s  ", (int)w[k], rows[i].col[k]);
            else
                printf("%-*s  ", (int)w[k], rows[i].col[k]);
        }
    }
    free(rows);
}

int rd_cmd_status(int argc, char **argv)
{
    const char *project_flag = NULL;
    int cloud = 0, json = 0;
    rd_cli_cloud_flags f = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_FLAG("--cloud", &cloud),
        RD_CLI_OPT_FLAG("--json", &json),
        RD_CLI_OPT_STRING("--project", &project_flag),
        RD_CLI_OPT_CLOUD(&f),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "status", status_help, opts, RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc == RD_CLI_CONTINUE && !cloud)
        rc = rd_cli_usage_error("status", "status needs --cloud: it shows a project on a redduck server (there is no "
                                "local status yet)");
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
    rd_cloud_project_status s;
    st = rd_cloud_status(c, project, &s, &err);
    if (st == RD_OK && json) {
        printf("%s\n", s.json);
    } else if (st == RD_OK) {
        time_t now = time(NULL);
        if (s.active_version)
            printf("%s: version %lld on %s\n", s.project, (long long)s.active_version, rd_cloud_server(c));
        else
            printf("%s has no deployment on %s (`redduck deploy`)\n", s.project, rd_cloud_server(c));
        if (s.nsources)
            print_table(&s, now);
        else if (s.active_version)
            printf("no sources have run yet\n");
        if (s.has_snapshot) {
            char ago[32], size[32];
            relative(s.snapshot_created_at, now, ago);
            size_text(s.snapshot_size, size);
            printf("snapshot %lld: %s, %s, sha256 %.12s\n", (long long)s.snapshot_id, ago, size,
                   s.snapshot_sha256 ? s.snapshot_sha256 : "");
        } else {
            printf("no snapshot yet\n");
        }
    }
    if (st == RD_OK)
        rd_cloud_project_status_free(&s);
    rd_cloud_free(c);
    free(project);
    return st == RD_OK ? 0 : fail(st, &err);
}
