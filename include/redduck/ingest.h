/* redduck/ingest.h — the core job as a library call: run a query (or copy a table) on Redshift through the
 * Data API, UNLOAD it as Parquet to a unique S3 staging prefix, download the part files in parallel (big
 * ones as ranged GETs), from the moment each appears in S3 while the UNLOAD still runs, loading each into a
 * staging table of a local DuckDB file; verify what was loaded against the manifest (files, sizes, row
 * counts) and swap the table in atomically; then delete the staged files. Or, for small results, page it through
 * GetStatementResult (no S3). The CLI (`redduck ingest`) and the project runner both call rd_ingest.
 * Ownership: options are borrowed for the call; the result is filled by value. */
#ifndef REDDUCK_INGEST_H
#define REDDUCK_INGEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "redduck/buf.h"
#include "redduck/error.h"
#include "redduck/session.h"
#include "redduck/target.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rd_ingest_via {
    RD_VIA_AUTO = 0,  /* UNLOAD when a staging location is given, else the Data API result */
    RD_VIA_UNLOAD,
    RD_VIA_DATA_API
} rd_ingest_via;

typedef enum rd_ingest_phase {
    RD_PHASE_PROBE,     /* schema probe */
    RD_PHASE_UNLOAD,    /* UNLOAD running on Redshift */
    RD_PHASE_DOWNLOAD,  /* files downloading (and loading) */
    RD_PHASE_FETCH,     /* Data API result pages */
    RD_PHASE_COMMIT,    /* verify + swap */
    RD_PHASE_CLEANUP    /* deleting staged files */
} rd_ingest_phase;

typedef struct rd_ingest_progress {
    rd_ingest_phase phase;
    double elapsed_s;        /* in this phase */
    const char *status;      /* Redshift statement status while waiting, else NULL */
    size_t files_done, files_total;
    uint64_t bytes_done, bytes_total; /* bytes_total 0 when unknown */
    uint64_t rows_loaded;
} rd_ingest_progress;

typedef struct rd_ingest_options {
    const char *sql;             /* the query, or NULL with table */
    const char *table;           /* "schema.name" to copy whole, or NULL with sql */
    const char *into;            /* "FILE.duckdb[:table]", or a directory with format_parquet */
    int format_parquet;          /* 1: keep the Parquet files in `into` (no DuckDB) */

    const char *workgroup;       /* Serverless, or */
    const char *cluster_id;      /* provisioned (+ db_user or secret_arn, or neither for IAM) */
    const char *db_user;
    const char *secret_arn;
    const char *database;        /* NULL: "dev" */

    const char *staging;         /* "s3://bucket/prefix" (a unique redduck-<uuid>/ goes under it) */
    const char *iam_role;        /* role ARN for UNLOAD; NULL or "default": IAM_ROLE default */
    const char *kms_key;         /* KMS key id: ENCRYPTED KMS_KEY_ID */
    uint64_t max_file_size_mb;   /* UNLOAD MAXFILESIZE; 0: Redshift's default */
    int concurrency;             /* parallel GET requests (a big file's ranges count one each); 0:
                                    RD_INGEST_DEFAULT_CONCURRENCY */
    uint64_t part_size;          /* files above it are fetched as ranged GETs of this size, spread over the
                                    connections; 0: RD_INGEST_DEFAULT_PART_SIZE; at least RD_INGEST_MIN_PART_SIZE */
    int no_overlap;              /* 1: wait for the UNLOAD to finish before downloading (else part files are
                                    fetched and loaded as they appear in S3, verified against the manifest at
                                    the end, before the commit) */
    uint64_t max_local_bytes;    /* bound on downloaded-but-not-loaded bytes on local disk; 0: 1 GiB */
    int keep_staging;            /* 1: leave the staged files in S3 */
    long timeout_s;              /* limit on the Redshift statement; 0: none */
    rd_ingest_via via;
    uint64_t data_api_max_rows;  /* refuse a Data API fetch beyond this many rows; 0: 1,000,000 */

    int duckdb_threads;          /* 0: the CPUs online, at most 8 */
    const char *duckdb_memory;   /* DuckDB memory_limit; NULL: "128MB" */
    int fast_compression;        /* 1: skip DuckDB's string compression (faster load, larger file) */

    const char *filter;          /* SQL condition over the query's columns (incremental loads), or NULL */
    int append;                  /* 1: add the rows to the existing table (created if absent) */
    const char *unique_key;      /* with append: rows whose key is in the new rows are replaced (upsert) */
    rd_target *target;           /* the open DuckDB file named by `into` to load into (borrowed; the project
                                    runner shares one, and its threads and memory limit apply); NULL: open it */
    long lock_timeout_s;         /* wait this long for another process to close the DuckDB file (checked before
                                    any Redshift work); 0: RD_INGEST_DEFAULT_LOCK_TIMEOUT; negative: do not wait */

    const volatile sig_atomic_t *cancel; /* set from a signal handler: cancel the statement, clean up,
                                            RD_E_CANCELLED. In the commit: raised before COMMIT is issued →
                                            rolled back ("... rolled back: the old table is unchanged");
                                            later → COMMIT finishes ("... the new table was committed").
                                            Raised after the job is done, still RD_E_CANCELLED. */
    void (*progress)(void *ctx, const rd_ingest_progress *p); /* may be NULL; called on the caller's thread */
    void *progress_ctx;
} rd_ingest_options;

#define RD_INGEST_DEFAULT_CONCURRENCY 16
#define RD_INGEST_DEFAULT_PART_SIZE (32ull << 20)
#define RD_INGEST_MIN_PART_SIZE (1ull << 20)
#define RD_INGEST_MAX_PART_SIZE (5ull << 30)
#define RD_INGEST_DEFAULT_LOCK_TIMEOUT 30

/* The ranges of the numeric options, for `redduck ingest`'s flags and a source's keys alike. */
#define RD_INGEST_MAX_FILE_SIZE_MB_MIN 5    /* Redshift's MAXFILESIZE range */
#define RD_INGEST_MAX_FILE_SIZE_MB_MAX 6200
#define RD_INGEST_CONCURRENCY_MAX 256
#define RD_INGEST_LOCK_TIMEOUT_MAX 86400

/* The option values given by name, parsed in this one place for `redduck ingest` and a source's keys:
 * "auto" | "unload" | "data-api", and "auto" | "fast" (*fast 1). RD_E_USAGE otherwise, the message being the
 * rule ("must be auto, unload or data-api"), which the caller prefixes with the flag or key and follows with
 * the value as it shows it. Out-parameters are written only on success. */
rd_status rd_ingest_parse_via(const char *s, rd_ingest_via *out, rd_error *err);
rd_status rd_ingest_parse_compression(const char *s, int *fast, rd_error *err);

typedef struct rd_ingest_result {
    char table[256];            /* the DuckDB table written ("" with format_parquet) */
    char statement_id[64];      /* the UNLOAD (or query) statement */
    char staging_url[1024];     /* s3://bucket/prefix/redduck-<uuid>/ ("" via the Data API) */
    int via_data_api;
    uint64_t rows;              /* rows loaded (verified against the manifest) */
    uint64_t bytes;             /* bytes downloaded */
    size_t files;
    size_t retries, resumes;    /* download attempts beyond the first; attempts resumed with Range */
    size_t ranged_files;        /* files fetched as several ranged GETs */
    size_t requests;            /* GET requests of part files, retries included */
    size_t early_files;         /* files downloaded while the UNLOAD still ran */
    int reloaded;               /* 1 when the files loaded during the UNLOAD disagreed with its manifest and
                                   everything was loaded again from the manifest */
    size_t staged_deleted;      /* staged objects deleted */
    double probe_s, unload_s, download_s, commit_s, cleanup_s, total_s;
} rd_ingest_result;

/* Runs the whole job. Errors name the step that failed and what to do; on any failure the previous table
 * in the target file is untouched and the staging prefix is emptied (unless keep_staging). */
rd_status rd_ingest(rd_session *s, const rd_ingest_options *o, rd_ingest_result *r, rd_error *err);

/* RD_E_USAGE when table is one of redduck's own names (any starting with _redduck, in any case: the run
 * history _redduck_runs and other bookkeeping live there); RD_OK otherwise. Every target table passes
 * here (`ingest --into`, a source's table_name in `run` and `run --check`). */
rd_status rd_ingest_check_table_name(const char *table, rd_error *err);

/* Appends to out the filter an incremental load sends: "column" > 'value', the column quoted as an
 * identifier and the value as a Redshift literal (' and \ doubled). */
void rd_ingest_filter_after(rd_buf *out, const char *column, const char *value);

#ifdef __cplusplus
}
#endif
#endif
