/* target.h — an ingest target's life outside the load transaction: the DuckDB file's write lock (taken by
 * opening the database, since DuckDB holds an fcntl lock while it is open, waiting a bounded time for
 * another process to let go), files redduck creates kept private (0600, their WAL too), and the ledger of
 * what each run starts outside the transaction (S3 staging prefixes, download directories), so that the
 * next run of the same file sweeps what a killed run left. Also the staging garbage collector behind
 * redduck/gc.h. Does not own the load itself (sink.h) or the staging of a live job (ingest.c). */
#ifndef RD_INGEST_TARGET_H
#define RD_INGEST_TARGET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"
#include "core/log.h"
#include "duckdb.h"
#include "redduck/error.h"
#include "redduck/ingest.h"

#define RD_TARGET_DEFAULT_LOCK_TIMEOUT RD_INGEST_DEFAULT_LOCK_TIMEOUT

typedef struct rd_target_options {
    const char *path;              /* the .duckdb file (created if absent, 0600) */
    duckdb_config config;          /* borrowed; NULL: DuckDB's defaults */
    long lock_timeout_s;           /* wait this long for another process's lock; 0: the default; < 0: no wait */
    void (*waiting)(void *ctx, const char *message); /* once, when the file is held by another process; may
                                                        be NULL */
    void *waiting_ctx;
    const volatile sig_atomic_t *cancel; /* stops the wait with RD_E_CANCELLED */
} rd_target_options;

typedef struct rd_target {
    duckdb_database db;            /* open for writing: this process holds the file's lock */
    unsigned mask;                 /* permission bits withheld from files created while open (see .c) */
} rd_target;

/* Opens the file for writing, retrying while another process holds its lock (RD_E_IO naming the holder's
 * PID when the wait runs out: "FILE is in use by PID n (program): close it or raise --lock-timeout"). A new
 * file is created 0600; while it is open, files the process creates get no permission the database file
 * lacks (its WAL, which DuckDB deletes and re-creates at each checkpoint), through the process umask — which
 * is process-wide: other threads' new files get the same restriction (never a wider mode) meanwhile.
 * Out-parameter written only on success. */
rd_status rd_target_open(const rd_target_options *o, rd_target *out, rd_error *err);
/* Closes the database and gives the umask back (when the last open target closes). No-op on a zeroed one. */
void rd_target_close(rd_target *t);

/* ---- the ledger: <FILE>.redduck-ledger, 0600, one JSON object a line, removed when empty ----------------
 * Entries are tagged with a token of this process. Callers hold the file's lock, so an entry with another
 * token was left by a process that is gone. Thread-safe within the process (one mutex). */

typedef enum rd_target_kind { RD_TARGET_PREFIX, RD_TARGET_DIR } rd_target_kind;

/* Records that this process started location for db_path: an "s3://bucket/prefix/" (before the UNLOAD is
 * sent) or a download directory. RD_E_IO when the ledger cannot be written. */
rd_status rd_target_ledger_add(const char *db_path, rd_target_kind kind, const char *location, rd_error *err);
/* Drops this process's entry for location (once it is cleaned up). Best effort. */
void rd_target_ledger_remove(const char *db_path, const char *location);

typedef struct rd_target_sweep_result {
    size_t dirs, prefixes, objects; /* removed */
    uint64_t bytes;
    size_t failed;                  /* entries that could not be cleaned: they stay for the next run */
} rd_target_sweep_result;

/* Cleans what dead runs recorded for db_path: removes their download directories and, when s3 is given,
 * deletes their staging prefixes in bucket (other buckets' entries stay, for a run staging there, or for
 * `redduck gc`). Failures are logged (warn) and counted, never fatal. */
void rd_target_sweep(const char *db_path, rd_aws_client *s3, const char *bucket, const rd_log *log,
                     rd_target_sweep_result *r);

#endif
