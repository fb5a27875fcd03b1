/* sink.h — the DuckDB end of ingest: one target file and table, a staging table next to it that each
 * downloaded Parquet file is appended to (decoded per the plan), rows appended from Data API pages, and
 * the commit: count check, then DROP old + RENAME staging. Everything from the staging table's creation to
 * the swap is one DuckDB transaction, so a failure (or a crash) at any point leaves the file as it was. Owns the DuckDB database and connection. Not thread-safe: one
 * thread at a time (ingest's loader thread, or the caller). */
#ifndef RD_INGEST_SINK_H
#define RD_INGEST_SINK_H

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

#include "duckdb.h"

#include "core/log.h"
#include "ingest/plan.h"
#include "redduck/error.h"

typedef struct rd_sink rd_sink;

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

/* Sets the database options of o (threads, memory_limit, temp_directory...) on cfg, for whoever opens the
 * database the sink will use (ingest opens it early, to hold the file's lock; see target.h). */
void rd_sink_configure(const rd_sink_options *o, duckdb_config cfg);
/* Opens the file and creates the empty staging table from the plan (borrowed for the sink's life). */
rd_status rd_sink_open(const rd_sink_options *o, const rd_plan *plan, rd_sink **out, rd_error *err);
/* Appends the rows of n Parquet files in one statement (DuckDB reads them in parallel); *rows gets their
 * number. */
rd_status rd_sink_load_parquet(rd_sink *s, const char *const *paths, size_t n, uint64_t *rows, rd_error *err);
/* Appends the Records of one GetStatementResult page (typed Field unions); *rows gets their number. */
rd_status rd_sink_append_records(rd_sink *s, json_t *records, uint64_t *rows, rd_error *err);
/* Verifies the staging table holds expected_rows rows, then swaps it in (or appends it, per the options)
 * and commits the one transaction. The cancel flag (options) is looked at just before COMMIT is issued:
 * raised by then → ROLLBACK and RD_E_CANCELLED ("interrupted during commit: rolled back: the old table is
 * unchanged"); raised later, COMMIT runs to its end (the caller sees the flag and says so). */
rd_status rd_sink_commit(rd_sink *s, uint64_t expected_rows, rd_error *err);
/* Drops the staging table if not committed, closes. NULL is a no-op. */
void rd_sink_close(rd_sink *s);
/* Rows appended so far. */
uint64_t rd_sink_rows(const rd_sink *s);

/* *exists = 1 if table exists in the main schema of the database conn is connected to. RD_E_IO when the
 * lookup itself fails. */
rd_status rd_sink_table_exists(duckdb_connection conn, const char *table, int *exists, rd_error *err);

/* Splits "FILE.duckdb:table" → path and table (malloc'd). Without ":table" the table is default_table.
 * A ':' followed by something with '/' is part of the path. RD_E_USAGE for an empty path or a bad name. */
rd_status rd_sink_parse_into(const char *into, const char *default_table, char **path, char **table,
                             rd_error *err);

#endif
