/* target.h — an ingest target's life outside the load transaction, beyond redduck/target.h (the DuckDB
 * file's lock, its configuration, the run history): the open database for the sink, and the ledger of
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
#include "redduck/target.h"

#define RD_TARGET_DEFAULT_LOCK_TIMEOUT RD_INGEST_DEFAULT_LOCK_TIMEOUT

/* The one DuckDB configuration of redduck, for every database it opens: threads (0: the CPUs online, at most
 * 8; < 0: DuckDB's default), memory_limit (NULL: RD_TARGET_DEFAULT_MEMORY), preserve_insertion_order off,
 * temp_directory when given. */
void rd_target_configure(duckdb_config cfg, int threads, const char *memory, const char *temp_dir);
/* The open database (borrowed from t), for a sink to connect to. */
duckdb_database rd_target_database(rd_target *t);
/* The memory_limit t was opened with. */
const char *rd_target_memory(const rd_target *t);

/* ---- the ledger: <FILE>.redduck-ledger, 0600, one JSON object a line, removed when empty ----------------
 * Entries are tagged with a token of this process. Callers hold the file's lock, so an entry with another
 * token was left by a process that is gone. Thread-safe within the process (one mutex). */

typedef enum rd_target_kind { RD_TARGET_PREFIX, RD_TARGET_DIR } rd_target_kind;

/* Records that this process started location for db_path: an "s3://bucket/prefix/" (before the UNLOAD is
 * sent) or a download directory. RD_E_IO when the ledger cannot be written. */
rd_status rd_target_ledger_add(const char *db_path, rd_target_kind kind, const char *location, rd_error *err);
/* Records the UNLOAD statement writing to location (an "s3://…/" this process recorded): the next run's
 * sweep stops it before deleting location, so its last files cannot land after the delete. */
rd_status rd_target_ledger_add_statement(const char *db_path, const char *location, const char *statement_id,
                                         rd_error *err);
/* Drops this process's entries for location (once it is cleaned up): the location's and its statement's.
 * Best effort. */
void rd_target_ledger_remove(const char *db_path, const char *location);

typedef struct rd_target_sweep_result {
    size_t dirs, prefixes, objects; /* removed */
    uint64_t bytes;
    size_t failed;                  /* entries that could not be cleaned: they stay for the next run */
} rd_target_sweep_result;

/* Stops an earlier run's statement (cancels it if it still runs, waits for its end): 1 when it has ended
 * (or the Data API no longer knows it), 0 when it may still run. */
typedef int (*rd_target_stop_fn)(void *ctx, const char *statement_id);

/* Cleans what dead runs recorded for db_path: removes their download directories and, when s3 is given,
 * deletes their staging prefixes in bucket (other buckets' entries stay, for a run staging there, or for
 * `redduck gc`); a prefix whose recorded statement stop cannot stop stays for a later run (stop NULL: the
 * prefixes with a statement stay). Failures are logged (warn) and counted, never fatal. */
void rd_target_sweep(const char *db_path, rd_aws_client *s3, const char *bucket, rd_target_stop_fn stop,
                     void *stop_ctx, const rd_log *log, rd_target_sweep_result *r);

#endif
