/* cmd_ingest.c — `redduck ingest`: flags → rd_ingest_options, Ctrl-C → a cancel flag rd_ingest honours,
 * progress lines on a terminal, a summary (or --json) at the end. The work itself is rd_ingest's. */
#include <limits.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/parse.h"
#include "redduck/ingest.h"
#include "redduck/session.h"

static const char ingest_help[] =
    "usage: redduck ingest (--sql 'select ...' | --table schema.name) --into FILE.duckdb[:table]\n"
    "                      (--workgroup WG | --cluster-id ID [--db-user U | --secret-arn ARN])\n"
    "                      [--database DB] [--staging s3://bucket/prefix] [options] [AWS options]\n"
    "\n"
    "Runs the query on Redshift through the Data API as UNLOAD ... FORMAT PARQUET to a unique prefix\n"
    "under --staging, downloads the files in parallel while loading each into a staging table of the\n"
    "DuckDB file, checks the row count against the UNLOAD manifest, swaps the table in atomically (the\n"
    "previous table stays as it was on any failure) and deletes the staged files. Without --staging the\n"
    "result is fetched through the Data API's GetStatementResult pages instead (small results).\n"
    "\n"
    "What to copy:\n"
    "  --sql SQL             a query (any SELECT; an inner LIMIT, comments and quotes are fine)\n"
    "  --table NAME          a whole table, 'name' or 'schema.name'\n"
    "  --into FILE[:TABLE]   the DuckDB file (created if absent) and table (default: the --table name,\n"
    "                        else 'result'); with --format parquet: a directory for the Parquet files\n"
    "  --format duckdb|parquet   load into DuckDB (default) or keep the Parquet files\n"
    "Where it runs:\n"
    "  --workgroup WG        Redshift Serverless workgroup (the Data API uses GetCredentials)\n"
    "  --cluster-id ID       provisioned cluster (IAM identity: GetClusterCredentialsWithIAM), with\n"
    "  --db-user USER        ... a database user (GetClusterCredentials), or\n"
    "  --secret-arn ARN      ... a Secrets Manager secret\n"
    "  --database DB         database (default: dev)\n"
    "UNLOAD:\n"
    "  --staging URL         s3://bucket/prefix for the staged files (a redduck-<uuid>/ goes under it)\n"
    "  --iam-role ARN        role Redshift uses to write to S3 (default: the cluster's default role)\n"
    "  --kms-key ID          encrypt the staged files with this KMS key\n"
    "  --max-file-size N     UNLOAD MAXFILESIZE, in MB (or 512MB, 1GB)\n"
    "  --keep-staging        do not delete the staged files afterwards\n"
    "  --via auto|unload|data-api   how to fetch (auto: unload when --staging is given)\n"
    "Limits:\n"
    "  --concurrency N       parallel GET requests (default 16)\n"
    "  --part-size SIZE      files larger than this are fetched as ranged GETs of this size, spread over\n"
    "                        the connections (default 32MB; 1MB..5GB); the last file, when it would leave\n"
    "                        some idle, goes as one range per idle connection (at least 8MB)\n"
    "  --no-overlap          wait for the UNLOAD to finish before downloading (by default part files are\n"
    "                        fetched and loaded as they appear, checked against the manifest at the end)\n"
    "  --max-local-bytes N   local disk for downloaded, not yet loaded files (default 1GB; K/M/G ok)\n"
    "  --timeout SECONDS     cancel the Redshift statement after this long (default: no limit)\n"
    "  --lock-timeout SECONDS   wait this long for another process to close the DuckDB file, before any\n"
    "                        Redshift work (default 30; 0: fail at once)\n"
    "  --threads N           DuckDB threads (default: the CPUs, at most 8)\n"
    "  --memory-limit SIZE   DuckDB memory limit (default 128MB)\n"
    "  --compression auto|fast   auto: DuckDB's full compression (smallest file); fast: skip its string\n"
    "                        compression (FSST, dictionary) — loads about a third faster, file ~2-3x larger\n"
    "Output:\n"
    "  --json                print a JSON summary on stdout\n"
    RD_CLI_AWS_OPTIONS_HELP
    "\n"
    "Ctrl-C (or SIGTERM) cancels the Redshift statement, deletes the staged files and exits 130. During\n"
    "the commit: before COMMIT is issued the transaction is rolled back (the old table is unchanged);\n"
    "once COMMIT has started it finishes (the new table is in); the message says which, exit 130.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 no credentials found, 4 refused by AWS, 130 interrupted.\n";

static volatile sig_atomic_t g_cancel; /* the one flag a signal handler may set (main's state) */

static void on_signal(int sig)
{
    (void)sig;
    g_cancel = 1;
}

typedef struct progress_state {
    int tty;
    int last_phase;
    int open_line;
} progress_state;

static const char *phase_name(rd_ingest_phase p)
{
    switch (p) {
    case RD_PHASE_PROBE: return "probe";
    case RD_PHASE_UNLOAD: return "unload";
    case RD_PHASE_DOWNLOAD: return "download";
    case RD_PHASE_FETCH: return "fetch";
    case RD_PHASE_COMMIT: return "commit";
    case RD_PHASE_CLEANUP: return "cleanup";
    }
    return "?";
}

static void on_progress(void *ctx, const rd_ingest_progress *p)
{
    progress_state *ps = ctx;
    if (!ps->tty)
        return;
    if (ps->open_line && ps->last_phase != (int)p->phase)
        fputc('\n', stderr);
    ps->last_phase = (int)p->phase;
    ps->open_line = 1;
    char line[256];
    switch (p->phase) {
    case RD_PHASE_DOWNLOAD: {
        double mb = (double)p->bytes_done / 1e6;
        double rate = p->elapsed_s > 0 ? mb / p->elapsed_s : 0;
        char eta[32] = "";
        if (p->bytes_total && rate > 0 && p->bytes_done < p->bytes_total)
            snprintf(eta, sizeof eta, ", ETA %.0fs", ((double)(p->bytes_total - p->bytes_done) / 1e6) / rate);
        snprintf(line, sizeof line, "download: files %zu/%zu, %.1f/%.1f MB, %.1f MB/s%s; rows loaded %llu",
                 p->files_done, p->files_total, mb, (double)p->bytes_total / 1e6, rate, eta,
                 (unsigned long long)p->rows_loaded);
        break;
    }
    case RD_PHASE_FETCH:
        snprintf(line, sizeof line, "fetch: %s%.1fs; rows %llu", p->status ? p->status : "", p->elapsed_s,
                 (unsigned long long)p->rows_loaded);
        break;
    case RD_PHASE_COMMIT:
        snprintf(line, sizeof line, "commit: verifying %llu rows and replacing the table",
                 (unsigned long long)p->rows_loaded);
        break;
    case RD_PHASE_UNLOAD:
        if (p->files_total > 0) { /* part files fetched while it runs */
            snprintf(line, sizeof line, "unload: %s %.1fs; fetched files %zu/%zu so far, %.1f MB; rows loaded %llu",
                     p->status ? p->status : "", p->elapsed_s, p->files_done, p->files_total,
                     (double)p->bytes_done / 1e6, (unsigned long long)p->rows_loaded);
            break;
        }
        /* fall through */
    default:
        snprintf(line, sizeof line, "%s: %s %.1fs", phase_name(p->phase), p->status ? p->status : "",
                 p->elapsed_s);
    }
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
}

int rd_cmd_ingest(int argc, char **argv)
{
    rd_session_options sopts = { 0 };
    rd_ingest_options o = { 0 };
    int json = 0;
    const char *format = "duckdb", *via = "auto", *max_file = NULL, *conc = NULL, *part_size = NULL, *max_local = NULL,
               *timeout = NULL, *threads = NULL, *compression = "auto", *lock_timeout = NULL;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_AWS(&sopts),
        RD_CLI_OPT_STRING("--sql", &o.sql),
        RD_CLI_OPT_STRING("--table", &o.table),
        RD_CLI_OPT_STRING("--into", &o.into),
        RD_CLI_OPT_STRING("--format", &format),
        RD_CLI_OPT_STRING("--workgroup", &o.workgroup),
        RD_CLI_OPT_STRING("--cluster-id", &o.cluster_id),
        RD_CLI_OPT_STRING("--db-user", &o.db_user),
        RD_CLI_OPT_STRING("--secret-arn", &o.secret_arn),
        RD_CLI_OPT_STRING("--database", &o.database),
        RD_CLI_OPT_STRING("--staging", &o.staging),
        RD_CLI_OPT_STRING("--iam-role", &o.iam_role),
        RD_CLI_OPT_STRING("--kms-key", &o.kms_key),
        RD_CLI_OPT_STRING("--max-file-size", &max_file),
        RD_CLI_OPT_STRING("--concurrency", &conc),
        RD_CLI_OPT_STRING("--part-size", &part_size),
        RD_CLI_OPT_FLAG("--no-overlap", &o.no_overlap),
        RD_CLI_OPT_STRING("--max-local-bytes", &max_local),
        RD_CLI_OPT_STRING("--timeout", &timeout),
        RD_CLI_OPT_STRING("--via", &via),
        RD_CLI_OPT_STRING("--threads", &threads),
        RD_CLI_OPT_STRING("--memory-limit", &o.duckdb_memory),
        RD_CLI_OPT_STRING("--compression", &compression),
        RD_CLI_OPT_STRING("--lock-timeout", &lock_timeout),
        RD_CLI_OPT_FLAG("--json", &json),
        RD_CLI_OPT_FLAG("--keep-staging", &o.keep_staging),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "ingest", ingest_help, opts, 0, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    /* the values are checked once all are read: the last of a repeated option counts */
    if (strcmp(format, "parquet") == 0)
        o.format_parquet = 1;
    else if (strcmp(format, "duckdb") != 0)
        return rd_cli_usage_error("ingest", "--format is duckdb or parquet, not '%s'", format);
    rd_error rule;
    rd_error_clear(&rule);
    if (rd_ingest_parse_compression(compression, &o.fast_compression, &rule) != RD_OK)
        return rd_cli_usage_error("ingest", "--compression %s, not '%s'", rule.message, compression);
    if (rd_ingest_parse_via(via, &o.via, &rule) != RD_OK)
        return rd_cli_usage_error("ingest", "--via %s, not '%s'", rule.message, via);
    uint64_t v = 0;
    if (max_file) {
        if (rd_parse_size(max_file, 1ull << 20, &v) != 0 || v < ((uint64_t)RD_INGEST_MAX_FILE_SIZE_MB_MIN << 20) ||
            v > ((uint64_t)RD_INGEST_MAX_FILE_SIZE_MB_MAX << 20))
            return rd_cli_usage_error("ingest", "--max-file-size must be 5MB..6.2GB (Redshift's range), not '%s'",
                                      max_file);
        o.max_file_size_mb = v >> 20;
    }
    if (conc) {
        if (rd_parse_uint(conc, 1, RD_INGEST_CONCURRENCY_MAX, &v) != 0)
            return rd_cli_usage_error("ingest", "--concurrency must be 1..256, not '%s'", conc);
        o.concurrency = (int)v;
    }
    if (part_size) {
        if (rd_parse_size(part_size, 1ull << 20, &v) != 0 || v < RD_INGEST_MIN_PART_SIZE ||
            v > RD_INGEST_MAX_PART_SIZE)
            return rd_cli_usage_error("ingest", "--part-size must be 1MB..5GB, not '%s'", part_size);
        o.part_size = v;
    }
    if (max_local) {
        if (rd_parse_size(max_local, 1, &v) != 0 || v < (1ull << 20))
            return rd_cli_usage_error("ingest", "--max-local-bytes must be at least 1M, not '%s'", max_local);
        o.max_local_bytes = v;
    }
    if (timeout) {
        if (rd_parse_uint(timeout, 1, LONG_MAX, &v) != 0)
            return rd_cli_usage_error("ingest", "--timeout is a number of seconds, not '%s'", timeout);
        o.timeout_s = (long)v;
    }
    if (lock_timeout) {
        if (rd_parse_uint(lock_timeout, 0, RD_INGEST_LOCK_TIMEOUT_MAX, &v) != 0)
            return rd_cli_usage_error("ingest", "--lock-timeout is a number of seconds, not '%s'", lock_timeout);
        o.lock_timeout_s = v == 0 ? -1 : (long)v;
    }
    if (threads) {
        if (rd_parse_uint(threads, 1, 256, &v) != 0)
            return rd_cli_usage_error("ingest", "--threads must be 1..256, not '%s'", threads);
        o.duckdb_threads = (int)v;
    }
    if (!o.sql == !o.table)
        return rd_cli_usage_error("ingest", "give either --sql or --table");
    if (!o.into)
        return rd_cli_usage_error("ingest", "--into FILE.duckdb[:table] is required");
    if (!o.workgroup == !o.cluster_id)
        return rd_cli_usage_error("ingest", "give either --workgroup or --cluster-id");

    rd_session *s = rd_cli_session_open(&sopts, &rc);
    if (!s)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_cancel = 0;
    o.cancel = &g_cancel;
    progress_state ps = { isatty(2), -1, 0 };
    o.progress = on_progress;
    o.progress_ctx = &ps;

    rd_ingest_result r;
    rd_status st = rd_ingest(s, &o, &r, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (ps.open_line)
        fputc('\n', stderr);
    if (st == RD_OK || json) {
        if (json) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:{s:f, s:f, s:f, s:f, "
                                  "s:f, s:f}}",
                                  "status", st == RD_OK ? "ok" : "error", "into", o.into, "table", r.table,
                                  "statement_id", r.statement_id, "rows", (json_int_t)r.rows, "bytes",
                                  (json_int_t)r.bytes, "files", (json_int_t)r.files, "retries",
                                  (json_int_t)r.retries, "resumes", (json_int_t)r.resumes, "staged_deleted",
                                  (json_int_t)r.staged_deleted, "via_data_api", r.via_data_api, "seconds", "probe",
                                  r.probe_s, "unload", r.unload_s, "download", r.download_s, "commit", r.commit_s,
                                  "cleanup", r.cleanup_s, "total", r.total_s);
            if (r.staging_url[0])
                json_object_set_new(j, "staging", json_string(r.staging_url));
            json_object_set_new(j, "ranged_files", json_integer((json_int_t)r.ranged_files));
            json_object_set_new(j, "requests", json_integer((json_int_t)r.requests));
            json_object_set_new(j, "early_files", json_integer((json_int_t)r.early_files));
            json_object_set_new(j, "reloaded", json_boolean(r.reloaded));
            if (st != RD_OK)
                json_object_set_new(j, "error", json_string(err.message));
            char *txt = json_dumps(j, JSON_COMPACT);
            printf("%s\n", txt ? txt : "{}");
            free(txt);
            json_decref(j);
        } else if (o.format_parquet) {
            printf("unloaded %llu rows into %s (%zu files, %.1f MB) in %.1fs\n", (unsigned long long)r.rows, o.into,
                   r.files, (double)r.bytes / 1e6, r.total_s);
        } else {
            printf("loaded %llu rows into %s (table %s; %zu files, %.1f MB) in %.1fs", (unsigned long long)r.rows,
                   o.into, r.table, r.files, (double)r.bytes / 1e6, r.total_s);
            if (r.via_data_api)
                printf(" — query %.1fs, fetch %.1fs, commit %.1fs\n", r.unload_s, r.download_s, r.commit_s);
            else
                printf(" — probe %.1fs, unload %.1fs, download+load %.1fs, commit %.1fs, cleanup %.1fs\n",
                       r.probe_s, r.unload_s, r.download_s, r.commit_s, r.cleanup_s);
        }
    }
    if (st != RD_OK)
        rd_cli_print_error(&err);
    rd_session_free(s);
    return rd_cli_exit_code(st);
}
