/* scheduler.h — the server's refreshes: for each project's active deployment, loaded with the variables of
 * prod over shared only (never the server's own environment or ~/.aws: allow_host_access is forced off),
 * runs each source when its `refresh:` schedule is due, on demand (rd_scheduler_trigger) and once to catch
 * up a slot missed while the server was down; at most max_concurrent_runs ingests at once, never two of one
 * source (a due run while one runs is recorded as skipped), retries as the source says, and after every
 * successful run publishes a consistent snapshot of the project's DuckDB file (the store's snapshot row
 * names it). Each project's tables live in DATA_DIR/projects/P/data.duckdb, open through one rd_target per
 * project while the server runs. Notifications (`notify:`) are POSTed from here.
 *
 * Owns its threads (one clock thread, max_concurrent_runs workers, one notifier), the projects' targets and
 * the loaded deployments. Every run and its log lines go to the store (rd_store_run_*), which is where the
 * API and the page read them.
 *
 * Threads: every function may be called from any thread (the API's pool) while the scheduler runs;
 * rd_scheduler_stop must not race them. */
#ifndef RD_SERVER_SCHEDULER_H
#define RD_SERVER_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "redduck/error.h"
#include "server/store.h"

typedef struct rd_scheduler rd_scheduler;

#define RD_SCHEDULER_KEEP_RUNS_DAYS 90

typedef struct rd_scheduler_options {
    const char *data_dir;      /* required */
    rd_store *store;           /* required; borrowed, must outlive the scheduler */
    int max_concurrent_runs;   /* ingests at once across projects; <= 0: 4 */
    int tick_ms;               /* how often due times are checked; <= 0: 200 */
    int keep_runs_days;        /* runs (and their logs) that ended longer ago are removed at start and hourly,
                                  each source's newest ended run kept; 0: RD_SCHEDULER_KEEP_RUNS_DAYS; < 0: never */
    /* The clock, for tests: Unix milliseconds. NULL: the real clock. */
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    FILE *log;                 /* one line per run started and ended (project, source, run id, status): never
                                  a value; NULL: none (borrowed) */
} rd_scheduler_options;

/* Starts the threads. The first tick records the catch-up runs (trigger "catch-up") of sources whose slot
 * passed while no server ran. RD_E_USAGE for missing options. */
rd_status rd_scheduler_start(const rd_scheduler_options *o, rd_scheduler **out, rd_error *err);
/* Stops taking runs, cancels the running ingests as Ctrl-C does (each run is recorded "cancelled", its
 * staging emptied, the previous table intact), waits for the threads and closes the targets. NULL: no-op. */
void rd_scheduler_stop(rd_scheduler *s);

/* How many projects have an active deployment and how many of their sources a schedule (for the start-up
 * line). Either may be NULL. */
void rd_scheduler_counts(rd_scheduler *s, size_t *projects, size_t *scheduled);

/* Queues a manual run (trigger "manual", by actor) of each named source (all the sources when n is 0) of
 * project's active deployment. A source already queued or running gets a "skipped" run instead. The run ids
 * go into *ids (malloc'd, *nids entries; either may be NULL), in the order of the sources. RD_E_NOT_FOUND
 * for a project without an active deployment or a source it does not have (nothing queued then);
 * RD_E_CONFIG when the active version's files cannot be read (the server log says why); RD_E_CANCELLED once
 * rd_scheduler_stop has begun. */
rd_status rd_scheduler_trigger(rd_scheduler *s, const char *project, const char *actor,
                               const char *const *sources, size_t n, int64_t **ids, size_t *nids, rd_error *err);

/* One source of the active deployment as the scheduler sees it. */
typedef struct rd_scheduler_source {
    char *name;
    char *table;
    char *schedule;       /* "cron 0 6 * * * Europe/Berlin", "every 1h", "disabled", "none" */
    int64_t next_run_ms;  /* 0: none (disabled or no schedule) */
    int running;          /* a run is queued or running */
} rd_scheduler_source;

/* The sources of project's active deployment, sorted by name. RD_E_NOT_FOUND without one. */
rd_status rd_scheduler_sources(rd_scheduler *s, const char *project, rd_scheduler_source **out, size_t *n,
                               rd_error *err);
void rd_scheduler_sources_free(rd_scheduler_source *v, size_t n);

/* Waits up to timeout_ms for run id to end (success, failed, skipped, cancelled): RD_OK with *ended 1 when
 * it has, 0 when the time ran out first; RD_E_NOT_FOUND for no such run. For `refresh --wait` and tests. */
rd_status rd_scheduler_wait(rd_scheduler *s, int64_t run_id, long timeout_ms, int *ended, rd_error *err);

#endif
