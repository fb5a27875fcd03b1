/* redduck/target.h — a local DuckDB file open for ingest: its write lock (DuckDB holds an fcntl lock while
 * the database is open; opening waits a bounded time for another process to let go), its one DuckDB
 * configuration, and the few things the project runner does on it besides loading: the current maximum of
 * an incremental column, and the run history in _redduck_runs. The history lives here, in the ingest
 * layer, because ingest owns the reserved _redduck names (rd_ingest_check_table_name) and the file; the
 * runner only says what a run was. Ownership: rd_target_open returns a target the caller closes; strings are
 * copied. Thread-safe after opening: each operation (and each rd_ingest given the target) uses its own
 * DuckDB connection to the one database. */
#ifndef REDDUCK_TARGET_H
#define REDDUCK_TARGET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "redduck/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rd_target rd_target;

#define RD_TARGET_DEFAULT_MEMORY "128MB"

typedef struct rd_target_options {
    const char *path;              /* the .duckdb file (created if absent, 0600) */
    long lock_timeout_s;           /* wait this long for another process's lock; 0: 30 s; < 0: no wait */
    void (*waiting)(void *ctx, const char *message); /* once, when the file is held by another process; may
                                                        be NULL */
    void *waiting_ctx;
    const volatile sig_atomic_t *cancel; /* stops the wait with RD_E_CANCELLED */
    int threads;                   /* DuckDB threads; 0: the CPUs online, at most 8; < 0: DuckDB's default */
    const char *memory;            /* DuckDB memory_limit; NULL: RD_TARGET_DEFAULT_MEMORY */
} rd_target_options;

/* Opens the file for writing, retrying while another process holds its lock (RD_E_IO naming the holder's
 * PID when the wait runs out: "FILE is in use by PID n (program): close it or raise --lock-timeout"). A new
 * file is created 0600; while it is open, files the process creates get no permission the database file
 * lacks (its WAL, which DuckDB deletes and re-creates at each checkpoint), through the process umask — which
 * is process-wide: other threads' new files get the same restriction (never a wider mode) meanwhile.
 * *out written only on success. */
rd_status rd_target_open(const rd_target_options *o, rd_target **out, rd_error *err);
/* Closes the database and gives the umask back (when the last open target closes). NULL is a no-op. */
void rd_target_close(rd_target *t);
/* The file's path, as given to rd_target_open (borrowed from t). */
const char *rd_target_path(const rd_target *t);

/* The maximum of column in table, cast to text: *text NULL when the table does not exist or is empty, else
 * malloc'd (the caller frees). RD_E_CONFIG naming column and table when the query fails (no such column). */
rd_status rd_target_table_max(rd_target *t, const char *table, const char *column, char **text, rd_error *err);

/* One run of one source, as recorded in _redduck_runs. Borrowed for the call. */
typedef struct rd_run_record {
    const char *source;
    const char *table;
    time_t started;                /* finished_at is the time of the call */
    rd_status status;              /* stored as "ok", "cancelled" or "failed" */
    const char *error;             /* stored when status is not RD_OK */
    uint64_t rows, bytes;
    size_t files;
    double seconds;
    int incremental;
    const char *watermark;         /* or NULL */
} rd_run_record;

/* Creates _redduck_runs if absent. RD_E_IO with DuckDB's message. */
rd_status rd_target_runs_init(rd_target *t, rd_error *err);
/* Appends r to _redduck_runs. RD_E_IO ("recording the run in _redduck_runs of FILE: ..."). */
rd_status rd_target_record_run(rd_target *t, const rd_run_record *r, rd_error *err);

/* One table of a snapshot and its row count. */
typedef struct rd_target_table_count {
    char *name;
    uint64_t rows;
} rd_target_table_count;

/* Writes a consistent copy of the target's database into the new file dest_path (which must not exist),
 * on its own connection: ATTACH dest, COPY FROM DATABASE (one transaction, so it holds committed data only:
 * never half of a refresh that is still running), DETACH. The copy is created with the target's private
 * mode (0600 for a file redduck created). With tables (may be NULL) the copy's tables but redduck's own
 * (_redduck*) and their row counts, counted in the copy before it is detached, sorted by name, go into
 * *tables (*ntables entries; free with rd_target_table_counts_free). The file is not fsync'd. RD_E_USAGE for
 * an empty path or one with a control character; RD_E_IO with DuckDB's message (a partial copy is removed). */
rd_status rd_target_snapshot(rd_target *t, const char *dest_path, rd_error *err);
rd_status rd_target_snapshot_counted(rd_target *t, const char *dest_path, rd_target_table_count **tables,
                                     size_t *ntables, rd_error *err);
void rd_target_table_counts_free(rd_target_table_count *v, size_t n);

#ifdef __cplusplus
}
#endif
#endif
