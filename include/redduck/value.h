/* redduck/value.h — what readers of a DuckDB file share: one value of a result (a row of a column of a data
 * chunk) as text (DuckDB's own text, as a cast to VARCHAR gives it) and as JSON, for `redduck query` and the
 * server's query API; and a copy of some tables of a file into a new file (`redduck pull --tables`). It
 * never writes the file it reads; a file's tables and their row counts (what `pull` reports as changed). The DuckDB types are declared here by their struct tags only (a
 * duckdb_vector is a struct _duckdb_vector *), so this header does not need duckdb.h.
 *
 * Ownership: appended text goes into the caller's rd_buf; nothing is kept between calls.
 * Threads: every function is reentrant (the DuckDB objects passed belong to one thread at a time). */
#ifndef REDDUCK_VALUE_H
#define REDDUCK_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/buf.h"
#include "redduck/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct _duckdb_vector;       /* duckdb_vector */
struct _duckdb_logical_type; /* duckdb_logical_type */

/* 1 when the value at row of vec is not NULL. */
int rd_value_is_valid(struct _duckdb_vector *vec, uint64_t row);
/* 1 when a column of that logical type holds numbers (the table view right-aligns them). */
int rd_value_type_is_numeric(struct _duckdb_logical_type *type);

/* Appends the text of the valid value at row of vec (of type): DuckDB's VARCHAR cast (1.0, 0.1, 1e+20, inf;
 * '2024-01-02 03:04:05'; [1, 2]; {'a': 1}; blobs as \xAB escapes; DECIMAL exact). Nested NULLs read NULL. */
void rd_value_text(rd_buf *out, struct _duckdb_vector *vec, struct _duckdb_logical_type *type, uint64_t row);

typedef enum rd_value_json_style {
    /* `redduck query --json`: integer types that fit in 64 bits and finite FLOAT/DOUBLE as numbers, BOOLEAN
     * as true/false, every other value (DECIMAL, nested types, dates) as the string of its text */
    RD_VALUE_JSON_LOCAL,
    /* the server's query API: integers as numbers only within ±2^53 (the exact range of a JSON reader's
     * double; beyond, and DECIMAL, HUGEINT, inf/nan: strings), dates and times as ISO 8601 strings
     * ("2024-01-02T03:04:05"), BLOB as lower-case hex, LIST/ARRAY as arrays, STRUCT and MAP as objects
     * (map keys as their text), a UNION as its member's value, anything else as the string of its text */
    RD_VALUE_JSON_API
} rd_value_json_style;

/* Appends the value at row of vec (NULL included: null) as JSON. RD_E_CONFIG when a string is not valid UTF-8
 * (JSON cannot carry it: the message names the column type, never the value); RD_E_INTERNAL on out of memory.
 * out may hold a partial value on failure. */
rd_status rd_value_json(rd_buf *out, struct _duckdb_vector *vec, struct _duckdb_logical_type *type, uint64_t row,
                        rd_value_json_style style, rd_error *err);
/* Appends s (n bytes) as a JSON string. RD_E_CONFIG when it is not valid UTF-8. */
rd_status rd_value_json_string(rd_buf *out, const char *s, size_t n, rd_error *err);

/* Writes dest, a new DuckDB file (0600; an existing one is replaced only by the caller), holding a copy of
 * the named tables of src (opened read-only), rows and column types as they are, nothing else. RD_E_NOT_FOUND
 * naming the first table src lacks and the tables it has; RD_E_IO with DuckDB's message. On failure dest is
 * removed. */
rd_status rd_value_copy_tables(const char *src, const char *dest, const char *const *tables, size_t ntables,
                               rd_error *err);

/* One table of a file and its row count. */
typedef struct rd_value_table {
    char *name;
    uint64_t rows;
} rd_value_table;

/* The tables of the main schema of the DuckDB file at path (opened read-only), sorted by name, with their row
 * counts; redduck's own (_redduck_*) are left out. *out is freed with rd_value_tables_free. RD_E_IO with
 * DuckDB's message. */
rd_status rd_value_file_tables(const char *path, rd_value_table **out, size_t *n, rd_error *err);
void rd_value_tables_free(rd_value_table *t, size_t n);

#ifdef __cplusplus
}
#endif
#endif
