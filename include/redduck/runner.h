/* redduck/runner.h — `redduck run`: ingests a project's sources (all, or the named ones), several at once, each
 * atomically into the project's one DuckDB file (shared by every source through one DuckDB instance), a
 * failed source leaving its previous table intact and not stopping the others. Incremental sources append
 * only rows past the table's current maximum of their column (upserting on unique_key). Every run of a
 * source is recorded in the table _redduck_runs of the same file. Owns the worker threads and the DuckDB
 * instance for the duration of the call. */
#ifndef REDDUCK_RUNNER_H
#define REDDUCK_RUNNER_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "redduck/project.h"
#include "redduck/error.h"
#include "redduck/ingest.h"
#include "redduck/session.h"
#include "redduck/target.h"

struct rd_run_item;

typedef struct rd_run_options {
    const char *const *only;      /* source names to run (a name given twice runs once), or NULL for all */
    size_t nonly;
    int parallel;                 /* 0: the project's `parallel` */
    const char *endpoint_url;     /* --endpoint-url for every connector, or NULL */
    int verbose;
    const volatile sig_atomic_t *cancel;
    void (*on_done)(void *ctx, const struct rd_run_item *item); /* after each source (any thread, serialised) */
    void *on_done_ctx;
    long lock_timeout_s;          /* wait this long for another process to close the DuckDB file; 0: 30; < 0: no wait */
    void (*on_lock_wait)(void *ctx, const char *message); /* once, when another process holds it; may be NULL */
    void *on_lock_wait_ctx;
    rd_target *target;            /* the project's DuckDB file, open (borrowed: used instead of opening
                                     p->duckdb_path, never closed by the run); NULL: opened and closed here */
    int no_host_environment;      /* nothing of the host is read for AWS: no AWS_* variable, no ~/.aws file,
                                     no profile; keys, region and endpoint come from the connector only (the
                                     server's rule, see rd_session_options.no_host_environment) */
    const char *env_label;        /* where the keys go, for messages ("the variables of prod"); NULL: DIR/.env */
    /* Called on the source's worker thread with each progress report of its ingest; may be NULL. */
    void (*on_progress)(void *ctx, const char *source, const rd_ingest_progress *p);
    void *on_progress_ctx;
} rd_run_options;

typedef struct rd_run_item {
    const char *source;           /* borrowed from the project */
    const char *table;
    rd_status status;
    rd_error error;
    uint64_t rows, bytes;
    size_t files;
    double seconds;
    double probe_s, unload_s, download_s, commit_s, cleanup_s; /* the ingest's phases (rd_ingest_result) */
    int incremental;
    char *watermark;              /* owned: the maximum the incremental run started from (NULL for none) */
} rd_run_item;

typedef struct rd_run_report {
    rd_run_item *items;           /* owned; in the order sources were selected */
    size_t count;
    size_t failed;
} rd_run_report;
void rd_run_report_free(rd_run_report *r);

/* RD_OK when the run happened (sources may have failed: see report->failed); an error before any source
 * ran (unknown source name, the DuckDB file cannot be opened). */
rd_status rd_project_run(const rd_project *p, const rd_run_options *o, rd_run_report *report, rd_error *err);

/* The AWS session for connector c: its explicit keys (from the YAML or .env) when set, else — only when
 * allow_host_access — the AWS CLI chain with its profile; region and endpoint from the connector
 * (endpoint_url, when given, wins). RD_E_CONFIG naming the keys to set when host access is off. */
rd_status rd_project_session(const rd_project *p, const rd_connector *c, const char *endpoint_url, int verbose,
                             rd_session **out, rd_error *err);

/* rd_project_session as a run with o makes it (o's endpoint_url, verbose, env_label and
 * no_host_environment; with no_host_environment a connector without explicit keys or without a region is
 * RD_E_CONFIG naming the variables to set). */
rd_status rd_project_session_opts(const rd_project *p, const rd_connector *c, const rd_run_options *o,
                                  rd_session **out, rd_error *err);

#endif
