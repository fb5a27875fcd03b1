/* cmd_gc.c — `redduck gc --staging s3://bucket/prefix [--older-than 24h] [--dry-run]`: deletes the
 * redduck-<uuid>/ prefixes ingest runs left under a staging location and says what went. The work is
 * rd_gc_staging's (redduck/gc.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/parse.h"
#include "redduck/gc.h"
#include "redduck/session.h"

static const char gc_help[] =
    "usage: redduck gc --staging s3://bucket/prefix [--older-than AGE] [--dry-run] [AWS options]\n"
    "\n"
    "Deletes the staging prefixes (redduck-<uuid>/) that ingest runs left under --staging: a run killed\n"
    "before its cleanup leaves its UNLOAD files there. Only prefixes whose newest object is older than\n"
    "--older-than go (a running ingest keeps writing to its own). The next ingest of the same DuckDB file\n"
    "deletes its dead runs' prefixes by itself; gc is for the ones no run will come back for.\n"
    "\n"
    "Options:\n"
    "  --staging URL         the staging location, as given to `redduck ingest --staging`\n"
    "  --older-than AGE      only prefixes last written at least AGE ago: 90s, 30m, 24h, 7d (default 24h)\n"
    "  --dry-run             list what would be deleted, delete nothing\n"
    RD_CLI_AWS_OPTIONS_HELP
    "\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 no credentials found, 4 refused by AWS.\n";

typedef struct gc_print {
    int dry_run;
} gc_print;

static void on_prefix(void *ctx, const rd_gc_prefix *p)
{
    gc_print *g = ctx;
    char when[32] = "?";
    time_t t = (time_t)p->newest;
    struct tm tm;
    if (p->newest > 0 && gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *what = !p->eligible ? "kept (newer)" : p->deleted ? "deleted" : g->dry_run ? "would delete" : "?";
    printf("%-12s %s  %zu object%s, %.1f MB, last written %s\n", what, p->url, p->objects,
           p->objects == 1 ? "" : "s", (double)p->bytes / 1e6, when);
}

static int parse_age(const char *value, void *dest)
{
    if (rd_parse_duration(value, dest) != 0)
        return rd_cli_usage_error("gc", "--older-than is an age such as 90s, 30m, 24h or 7d, not '%s'", value);
    return 0;
}

int rd_cmd_gc(int argc, char **argv)
{
    rd_session_options sopts = { 0 };
    rd_gc_options o = { 0 };
    o.older_than_s = 24 * 3600;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_AWS(&sopts),
        RD_CLI_OPT_STRING("--staging", &o.staging),
        RD_CLI_OPT_PARSE("--older-than", &o.older_than_s, parse_age),
        RD_CLI_OPT_FLAG("--dry-run", &o.dry_run),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "gc", gc_help, opts, 0, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if (!o.staging)
        return rd_cli_usage_error("gc", "--staging s3://bucket/prefix is required");

    rd_session *s = rd_cli_session_open(&sopts, &rc);
    if (!s)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    gc_print gp = { o.dry_run };
    o.on_prefix = on_prefix;
    o.on_prefix_ctx = &gp;
    rd_gc_result r;
    rd_status st = rd_gc_staging(s, &o, &r, &err);
    if (st == RD_OK) {
        printf("%s %zu prefix%s, %zu object%s, %.1f MB under %s", o.dry_run ? "would delete" : "deleted",
               r.prefixes, r.prefixes == 1 ? "" : "es", r.objects, r.objects == 1 ? "" : "s",
               (double)r.bytes / 1e6, o.staging);
        if (r.kept)
            printf(" (%zu newer prefix%s kept)", r.kept, r.kept == 1 ? "" : "es");
        printf("%s\n", o.dry_run && r.prefixes ? "; run without --dry-run to delete them" : "");
    } else {
        rd_cli_print_error(&err);
    }
    rd_session_free(s);
    return rd_cli_exit_code(st);
}
