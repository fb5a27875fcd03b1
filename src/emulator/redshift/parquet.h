/* parquet.h — the Parquet files UNLOAD writes, in Redshift's physical forms, which DuckDB's own writer cannot
 * give: TIMESTAMP and TIMESTAMPTZ as INT96 (nanoseconds of the day and Julian day; TIMESTAMPTZ in UTC),
 * DECIMAL(p,s) as FIXED_LEN_BYTE_ARRAY of the fewest bytes that hold p digits (big-endian two's complement),
 * SMALLINT as INT32 annotated INT_16, INTEGER INT32, BIGINT INT64, REAL FLOAT, DOUBLE PRECISION DOUBLE,
 * BOOLEAN, DATE as INT32 DATE, and CHAR, VARCHAR and SUPER as UTF-8 BYTE_ARRAY. Every column is OPTIONAL;
 * pages are data pages v1, PLAIN values with RLE definition levels, Snappy-compressed (as Redshift does by
 * default), of about 1 MiB each; row groups are cut at a size in bytes (ROWGROUPSIZE; Redshift's default is
 * 32 MB). Values come from DuckDB's result chunks.
 *
 * A writer belongs to one thread at a time. It owns its file descriptor, its buffers and a thread of its own
 * that compresses each page while the caller goes on appending rows (at most 4 pages queued; without that
 * thread the caller's compresses); rd_emu_pq_close and rd_emu_pq_discard join that thread and free it (the file itself is the caller's: discard leaves it, incomplete, for the caller to
 * remove). */
#ifndef RD_EMULATOR_PARQUET_H
#define RD_EMULATOR_PARQUET_H

#ifdef RD_HAVE_DUCKDB

#include <stdint.h>

#include "duckdb.h"
#include "redduck/error.h"

#define RD_EMU_PQ_ROW_GROUP_DEFAULT ((uint64_t)32 * 1024 * 1024)

typedef struct rd_emu_pq_column {
    const char *name;      /* borrowed for the writer's life */
    duckdb_type type;      /* one rd_emu_pq_supported accepts */
    int precision, scale;  /* DECIMAL */
    duckdb_type storage;   /* DECIMAL: DuckDB's internal type (SMALLINT, INTEGER, BIGINT or HUGEINT) */
} rd_emu_pq_column;

typedef struct rd_emu_pq_writer rd_emu_pq_writer;

/* 1 when a column of DuckDB's type t can be written (the others are cast to VARCHAR by the caller). */
int rd_emu_pq_supported(duckdb_type t);

/* Creates the file at path (0600, O_EXCL) and a writer for ncols columns (copied; names borrowed).
 * row_group_bytes: 0 for the default. */
rd_status rd_emu_pq_open(rd_emu_pq_writer **out, const char *path, const rd_emu_pq_column *cols, size_t ncols,
                         uint64_t row_group_bytes, rd_error *err);

/* Appends rows [from, from+count) of chunk, whose vectors are the writer's columns in order; a row group is
 * written once it reaches its size. */
rd_status rd_emu_pq_write(rd_emu_pq_writer *w, duckdb_data_chunk chunk, idx_t from, idx_t count, rd_error *err);

/* The file's size if it were closed now, or a little more: what is written plus a bound for what is held. */
uint64_t rd_emu_pq_size_bound(const rd_emu_pq_writer *w);
int64_t rd_emu_pq_rows(const rd_emu_pq_writer *w);

/* Writes what is held and the footer, closes the file and frees w; *size is the file's size. */
rd_status rd_emu_pq_close(rd_emu_pq_writer *w, uint64_t *size, rd_error *err);
/* Frees w and closes its file without finishing it. NULL is a no-op. */
void rd_emu_pq_discard(rd_emu_pq_writer *w);

#endif
#endif
