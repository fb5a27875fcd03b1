/* plan.h — type handling between Redshift and DuckDB, planned from the schema probe's ColumnMetadata:
 * which columns UNLOAD must encode (Parquet UNLOAD refuses TIME, TIMETZ, VARBYTE, GEOMETRY: they travel
 * as text or hex), how DuckDB decodes them back, and the DuckDB type of every column (for an empty result
 * and for the Data API path). Owns only SQL text; talks to nobody. */
#ifndef RD_INGEST_PLAN_H
#define RD_INGEST_PLAN_H

#include <jansson.h>
#include <stddef.h>

#include "redduck/buf.h"
#include "redduck/error.h"

typedef enum rd_plan_kind {
    RD_COL_PLAIN,   /* travels as is */
    RD_COL_TIME,    /* time → text → TIME */
    RD_COL_TIMETZ,  /* timetz → text → TIMETZ */
    RD_COL_HEX,     /* varbyte / geometry → hex text → BLOB */
    RD_COL_JSON     /* super → JSON text → JSON */
} rd_plan_kind;

typedef struct rd_plan_column {
    char *name;          /* owned, as Redshift reports it */
    char *rs_type;       /* owned, typeName ("int4", "numeric", ...) */
    int precision, scale;
    rd_plan_kind kind;
    char duck_type[48];  /* DuckDB type: "INTEGER", "DECIMAL(12,2)", "TIMESTAMPTZ", ... */
} rd_plan_column;

typedef struct rd_plan {
    rd_plan_column *cols; /* owned */
    size_t ncols;
    int needs_encoding;   /* 1 when some column is not PLAIN */
} rd_plan;

/* From a GetStatementResult / DescribeStatement ColumnMetadata array. RD_E_REMOTE if malformed. */
rd_status rd_plan_from_metadata(json_t *column_metadata, rd_plan *out, rd_error *err);
void rd_plan_free(rd_plan *p);

/* The projection UNLOAD runs over the wrapped query: NULL-able — appends nothing and returns 0 when no
 * column needs encoding; else appends e.g. `"id", to_hex("payload") as "payload"` and returns 1. */
int rd_plan_unload_select(const rd_plan *p, rd_buf *out);
/* DuckDB projection that decodes a Parquet file's columns back: `"id", unhex("payload") AS "payload"`. */
void rd_plan_decode_select(const rd_plan *p, rd_buf *out);
/* DuckDB column list for CREATE TABLE: `"id" INTEGER, "payload" BLOB`. */
void rd_plan_create_columns(const rd_plan *p, rd_buf *out);

/* Appends a double-quoted identifier (embedded quotes doubled). */
void rd_plan_quote_ident(rd_buf *out, const char *name);

#endif
