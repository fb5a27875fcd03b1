/* sink.h — where ingest puts what it fetched: a small vtable (load a batch of finished Parquet files, append
 * Data API records, commit with the expected row count, close = abort unless committed) with two
 * implementations. The DuckDB table: a staging table next to the target that each batch is appended to
 * (decoded per the plan), then the count check and DROP old + RENAME staging; everything from the staging
 * table's creation to the swap is one DuckDB transaction, so a failure (or a crash) at any point leaves the
 * file as it was. The Parquet directory (--format parquet): the files are moved into a hidden staging
 * directory inside it and renamed into place at the commit; an abort deletes them. Each sink owns what it
 * opened (database and connection, staging directory). Not thread-safe: one thread at a time (ingest's
 * loader thread, or the caller). */
#ifndef RD_INGEST_SINK_H
#define RD_INGEST_SINK_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "duckdb.h"

#include "core/log.h"
#include "ingest/plan.h"
#include "redduck/error.h"

typedef struct rd_sink rd_sink;

/* One finished Parquet file of a batch. */
typedef struct rd_sink_file {
    const char *path;  /* where it was downloaded: the DuckDB sink reads it, the directory sink moves it
                          away; the caller deletes what is left there */
    const char *name;  /* the file's name in the result (the directory sink keeps it) */
    uint64_t rows;     /* its row count from the UNLOAD manifest, or RD_SINK_ROWS_UNKNOWN */
} rd_sink_file;
#define RD_SINK_ROWS_UNKNOWN UINT64_MAX

typedef struct rd_sink_vtable {
    rd_status (*load)(rd_sink *s, const rd_sink_file *files, size_t n, uint64_t *rows, rd_error *err);
    rd_status (*append_records)(rd_sink *s, json_t *records, uint64_t *rows, rd_error *err);
    rd_status (*commit)(rd_sink *s, uint64_t expected_rows, rd_error *err);
    void (*close)(rd_sink *s); /* aborts what is not committed; frees */
} rd_sink_vtable;

/* What every sink has; an implementation embeds it first. */
struct rd_sink {
    const rd_sink_vtable *vt;
    uint64_t rows;              /* rows taken so far */
    const char *download_hint;  /* the way out when the download directory's disk is full */
    const char *committed_note; /* what a commit leaves ("the new table was committed") */
    const char *load_step;      /* prefix of a load's error ("loading into DuckDB: ") */
    const char *commit_step;    /* what the commit does, for the log ("replacing table t") */
};

typedef struct rd_sink_options {
    const char *path;       /* the .duckdb file (created if absent) */
    const char *table;      /* target table name */
    int threads;            /* 0: the CPUs online, at most 8 */
    const char *memory;     /* memory_limit, NULL: "128MB" */
    const char *temp_dir;   /* DuckDB spill directory, or NULL */
    void *shared_db;        /* an open duckdb_database to connect to instead of opening path, or NULL */
    int append;             /* commit appends to the table (creating it if absent) instead of replacing */
    const char *unique_key; /* with append: delete the table's rows whose key is among the new rows first */
    int fast_compression;   /* 1: skip DuckDB's costly string compression (FSST, dictionary): faster load,
                               larger file */
    const char *disk_full_hint; /* the way out when the disk DuckDB writes to is full (ends the one-line
                                   "No space left on device on <dir>: ..." message); NULL: "free space" */
    const volatile sig_atomic_t *cancel; /* checked by rd_sink_commit just before COMMIT, or NULL */
    const rd_log *log;      /* borrowed, or NULL: the commit's steps at INFO */
} rd_sink_options;

/* The DuckDB table sink: opens the file (configured by rd_target_configure; or connects to shared_db) and
 * creates the empty staging table from the plan (borrowed for the sink's life). */
rd_status rd_sink_open(const rd_sink_options *o, const rd_plan *plan, rd_sink **out, rd_error *err);
/* The Parquet directory sink: creates dir (0755) if absent and a hidden staging directory inside it. Loads
 * move the files there (their rows: the manifest's counts); the commit checks the count when every file's
 * is known, then renames them into dir; an abort deletes them. Appending records is RD_E_USAGE. */
rd_status rd_sink_open_dir(const char *dir, rd_sink **out, rd_error *err);

/* The vtable, called. Load: the DuckDB sink appends the rows of n Parquet files in one statement (DuckDB
 * reads them in parallel); *rows gets their number. */
rd_status rd_sink_load(rd_sink *s, const rd_sink_file *files, size_t n, uint64_t *rows, rd_error *err);
/* rd_sink_load of files named by their base names, rows unknown. */
rd_status rd_sink_load_parquet(rd_sink *s, const char *const *paths, size_t n, uint64_t *rows, rd_error *err);
/* Appends the Records of one GetStatementResult page (typed Field unions); *rows gets their number. */
rd_status rd_sink_append_records(rd_sink *s, json_t *records, uint64_t *rows, rd_error *err);
/* DuckDB: verifies the staging table holds expected_rows rows, then swaps it in (or appends it, per the
 * options) and commits the one transaction. The cancel flag (options) is looked at just before COMMIT is
 * issued: raised by then → ROLLBACK and RD_E_CANCELLED ("interrupted during commit: rolled back: the old
 * table is unchanged"); raised later, COMMIT runs to its end (the caller sees the flag and says so). */
rd_status rd_sink_commit(rd_sink *s, uint64_t expected_rows, rd_error *err);
/* Aborts what is not committed (DuckDB: drops the staging table; directory: deletes the staged files) and
 * closes. NULL is a no-op. */
void rd_sink_close(rd_sink *s);
/* Rows taken so far. */
uint64_t rd_sink_rows(const rd_sink *s);

/* *exists = 1 if table exists in the main schema of the database conn is connected to. RD_E_IO when the
 * lookup itself fails. */
rd_status rd_sink_table_exists(duckdb_connection conn, const char *table, int *exists, rd_error *err);

/* Splits "FILE.duckdb:table" → path and table (malloc'd). Without ":table" the table is default_table.
 * A ':' followed by something with '/' is part of the path. RD_E_USAGE for an empty path or a bad name. */
rd_status rd_sink_parse_into(const char *into, const char *default_table, char **path, char **table,
                             rd_error *err);

#endif
