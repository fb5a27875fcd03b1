/* cmd_run.c — `redduck run [DIR] [SOURCE...]`: loads the project, checks it (`--check` stops there, without
 * touching AWS, after listing each source's schedule and its next runs), runs the sources through the
 * project runner and prints a summary table. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/parse.h"
#include "core/timeutil.h"
#include "core/tz.h"
#include "redduck/ingest.h"
#include "redduck/project.h"
#include "redduck/runner.h"

static const char run_help[] =
    "usage: redduck run [DIR] [SOURCE...] [--check] [--parallel N] [--json] [--endpoint-url URL] [-v]\n"
    "\n"
    "Ingests the sources of the project in DIR (default: the current directory) — all of them, or the named\n"
    "ones — into the project's DuckDB file, several at once. Each source is atomic: a failed source leaves\n"
    "its previous table as it was and does not stop the others. Incremental sources (incremental: {column:\n"
    "..., unique_key: ...}) fetch only rows past the table's current maximum of that column. Every run is\n"
    "recorded in the table _redduck_runs of the DuckDB file.\n"
    "\n"
    "Options:\n"
    "  --check            validate redduck.yaml, connectors/, sources/ and .env, print each source's schedule\n"
    "                     and its next three runs (UTC, and local time for a cron with tz), then stop (no AWS\n"
    "                     calls); the environment variable REDDUCK_NOW=2026-03-28T00:00:00Z sets the time\n"
    "                     they are counted from, for reproducible output (tests; --check only)\n"
    "  --parallel N       sources at once (default: `parallel` in redduck.yaml, else 2)\n"
    "  --lock-timeout S   wait S seconds for another process to close the DuckDB file (default 30; 0: none)\n"
    "  --json             print the results as JSON on stdout\n"
    "  --endpoint-url URL send every AWS request to URL (an emulator)\n"
    "  -v, -vv            log requests (secrets redacted)\n"
    "\n"
    "Exit codes: 0 every source succeeded, 1 the project could not be loaded or run, 2 usage, 130 interrupted,\n"
    "100+N when N sources failed (at most 199).\n";

static volatile sig_atomic_t g_cancel; /* set by the signal handler (main's state) */

static void on_signal(int sig)
{
    (void)sig;
    g_cancel = 1;
}

static void on_lock_wait(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "redduck: %s\n", message);
}

#define CHECK_NEXT_RUNS 3

/* "2026-12-02T06:00:00+01:00" for the instant t (Unix seconds) at UTC offset off. */
static void format_local(int64_t t, int32_t off, char out[32])
{
    int64_t local = t + off, days = local / 86400 - (local % 86400 < 0), y;
    int64_t sod = local - days * 86400;
    int m, d;
    rd_tz_civil_from_days(days, &y, &m, &d);
    int32_t a = off < 0 ? -off : off;
    snprintf(out, 32, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (long long)y, m, d, (int)(sod / 3600),
             (int)(sod % 3600 / 60), (int)(sod % 60), off < 0 ? '-' : '+', (int)(a / 3600), (int)(a % 3600 / 60));
}

/* `--check`'s schedule lines for one source: what it is, then its next runs after now_ms. */
static void print_schedule(const rd_source *src, int64_t now_ms)
{
    const rd_schedule *s = &src->refresh;
    char desc[512];
    rd_schedule_describe(s, desc, sizeof desc);
    if (s->kind == RD_SCHEDULE_NONE || s->disabled) {
        printf("  %s: %s%s\n", src->name, s->disabled ? "disabled, " : "", "manual only");
        return;
    }
    char retry[96] = "", backoff[48];
    rd_schedule_format_period(s->retry_backoff_s, backoff, sizeof backoff);
    if (s->retry_attempts > 1)
        snprintf(retry, sizeof retry, " (up to %d attempts, %s apart)", s->retry_attempts, backoff);
    printf("  %s: %s%s\n", src->name, desc, retry);
    rd_tz *tz = NULL;
    rd_error err;
    rd_error_clear(&err);
    if (s->kind == RD_SCHEDULE_CRON && s->tz && rd_tz_load(s->tz, &tz, &err) != RD_OK)
        tz = NULL; /* the loader read it already; without it only UTC is shown */
    int64_t t = now_ms;
    for (int i = 0; i < CHECK_NEXT_RUNS; i++) {
        int64_t next = 0;
        if (rd_schedule_next(s, t, &next, &err) != RD_OK) {
            printf("    %s\n", i ? "no later run" : "never: no time matches within 5 years");
            break;
        }
        char utc[21];
        rd_time_format_iso8601((time_t)(next / 1000), utc);
        if (tz) {
            char local[32];
            format_local(next / 1000, rd_tz_offset(tz, next / 1000), local);
            printf("    next %s  %s %s\n", utc, local, s->tz);
        } else
            printf("    next %s\n", utc);
        t = next;
    }
    rd_tz_free(tz);
}

/* The instant `--check` counts from: now, or REDDUCK_NOW (an ISO 8601 time) for reproducible output. */
static int check_now(int64_t *now_ms)
{
    const char *fixed = getenv("REDDUCK_NOW");
    if (fixed && fixed[0]) {
        time_t t;
        if (rd_time_parse_iso8601(fixed, &t) != 0)
            return rd_cli_usage_error("run", "REDDUCK_NOW must be an ISO 8601 time such as 2026-03-28T00:00:00Z");
        *now_ms = (int64_t)t * 1000;
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_named(const char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

typedef struct done_ctx {
    int json;
} done_ctx;

static void on_done(void *ctx, const rd_run_item *it)
{
    done_ctx *d = ctx;
    if (d->json)
        return;
    if (it->status == RD_OK)
        fprintf(stderr, "ok      %s → %s: %llu rows%s in %.1fs\n", it->source, it->table,
                (unsigned long long)it->rows, it->incremental ? " added" : "", it->seconds);
    else
        fprintf(stderr, "FAILED  %s → %s: %s\n", it->source, it->table, it->error.message);
}

/* The positional arguments: the project folder first (when it is one), then source names. */
typedef struct run_args {
    const char *dir;
    const char **only; /* room for argc names */
    size_t nonly;
} run_args;

static int add_arg(const char *value, void *dest)
{
    run_args *ra = dest;
    if (!ra->dir && ra->nonly == 0 && is_dir(value))
        ra->dir = value;
    else
        ra->only[ra->nonly++] = value;
    return 0;
}

static int parse_parallel(const char *value, void *dest)
{
    uint64_t n = 0;
    if (rd_parse_uint(value, 1, RD_PROJECT_PARALLEL_MAX, &n) != 0)
        return rd_cli_usage_error("run", "--parallel must be 1..%d", RD_PROJECT_PARALLEL_MAX);
    *(int *)dest = (int)n;
    return 0;
}

/* As ingest's --lock-timeout: 0 is "do not wait", which the runner spells -1. */
static int parse_lock_timeout(const char *value, void *dest)
{
    uint64_t secs = 0;
    if (rd_parse_uint(value, 0, RD_INGEST_LOCK_TIMEOUT_MAX, &secs) != 0)
        return rd_cli_usage_error("run", "--lock-timeout is a number of seconds, not '%s'", value);
    *(long *)dest = secs == 0 ? -1 : (long)secs;
    return 0;
}

int rd_cmd_run(int argc, char **argv)
{
    const char *endpoint = NULL;
    run_args ra = { NULL, calloc((size_t)argc, sizeof *ra.only), 0 };
    int check = 0, json = 0, parallel = 0, verbose = 0;
    long lock_timeout = 0; /* 0: the runner's default */
    if (!ra.only)
        return 1;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_ARGS(&ra, add_arg),
        RD_CLI_OPT_FLAG("--check", &check),
        RD_CLI_OPT_FLAG("--json", &json),
        RD_CLI_OPT_PARSE("--parallel", &parallel, parse_parallel),
        RD_CLI_OPT_PARSE("--lock-timeout", &lock_timeout, parse_lock_timeout),
        RD_CLI_OPT_STRING("--endpoint-url", &endpoint),
        RD_CLI_OPT_VERBOSE("-v", &verbose),
        RD_CLI_OPT_VERBOSE("--verbose", &verbose),
        RD_CLI_OPT_DEBUG("-vv", &verbose),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "run", run_help, opts, 0, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE) {
        free(ra.only);
        return rc;
    }
    const char *dir = ra.dir, **only = ra.only;
    size_t nonly = ra.nonly;
    rd_error err;
    rd_error_clear(&err);
    rd_project p;
    rd_status st = rd_project_load(dir ? dir : ".", &p, &err);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        free(only);
        return 1;
    }
    for (size_t i = 0; i < nonly; i++)
        if (!rd_project_source(&p, only[i])) {
            fprintf(stderr, "redduck run: no source named '%s' in %s\n", only[i], p.dir);
            rd_project_free(&p);
            free(only);
            return 2;
        }
    if (check) {
        int64_t now_ms = 0;
        rc = check_now(&now_ms);
        if (rc == 0) {
            printf("%s: ok — %zu connector%s, %zu source%s, DuckDB file %s\n", p.name, p.nconnectors,
                   p.nconnectors == 1 ? "" : "s", p.nsources, p.nsources == 1 ? "" : "s", p.duckdb_path);
            char from[21];
            rd_time_format_iso8601((time_t)(now_ms / 1000), from);
            if (p.nsources)
                printf("schedules (next runs after %s):\n", from);
            for (size_t i = 0; i < p.nsources; i++)
                if (!nonly || is_named(only, nonly, p.sources[i].name))
                    print_schedule(&p.sources[i], now_ms);
        }
        rd_project_free(&p);
        free(only);
        return rc;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_cancel = 0;
    done_ctx dc = { json };
    rd_run_options ro = { 0 };
    ro.only = nonly ? only : NULL;
    ro.nonly = nonly;
    ro.parallel = parallel;
    ro.endpoint_url = endpoint;
    ro.verbose = verbose;
    ro.cancel = &g_cancel;
    ro.on_done = on_done;
    ro.on_done_ctx = &dc;
    ro.lock_timeout_s = lock_timeout;
    ro.on_lock_wait = on_lock_wait;
    rd_run_report rep;
    st = rd_project_run(&p, &ro, &rep, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    int code = 0;
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        code = rd_cli_exit_code(st) == 2 ? 2 : 1;
    } else if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < rep.count; i++) {
            rd_run_item *it = &rep.items[i];
            json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:b}", "source", it->source, "table",
                                  it->table, "status", it->status == RD_OK ? "ok" : "failed", "rows",
                                  (json_int_t)it->rows, "bytes", (json_int_t)it->bytes, "files",
                                  (json_int_t)it->files, "seconds", it->seconds, "incremental", it->incremental);
            if (it->status != RD_OK)
                json_object_set_new(o, "error", json_string(it->error.message));
            if (it->watermark)
                json_object_set_new(o, "watermark", json_string(it->watermark));
            json_array_append_new(arr, o);
        }
        json_t *top = json_pack("{s:s, s:s, s:o, s:I}", "project", p.name, "duckdb", p.duckdb_path, "sources", arr,
                                "failed", (json_int_t)rep.failed);
        char *txt = json_dumps(top, JSON_COMPACT);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        json_decref(top);
    } else {
        printf("%-24s %-24s %-7s %12s %10s %8s\n", "source", "table", "status", "rows", "MB", "seconds");
        for (size_t i = 0; i < rep.count; i++) {
            rd_run_item *it = &rep.items[i];
            printf("%-24s %-24s %-7s %12llu %10.1f %8.1f\n", it->source, it->table,
                   it->status == RD_OK ? "ok" : "FAILED", (unsigned long long)it->rows, (double)it->bytes / 1e6,
                   it->seconds);
        }
        printf("%zu of %zu sources succeeded; results in %s (history: table _redduck_runs)\n",
               rep.count - rep.failed, rep.count, p.duckdb_path);
    }
    if (st == RD_OK && rep.failed)
        code = g_cancel ? 130 : 100 + (int)(rep.failed > 99 ? 99 : rep.failed);
    if (st == RD_OK)
        rd_run_report_free(&rep);
    rd_project_free(&p);
    free(only);
    return code;
}
