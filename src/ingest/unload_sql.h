/* unload_sql.h — builds the UNLOAD statement redduck sends through the Data API: the user's query (or a
 * table) wrapped as `select * from (\n<q>\n)` so an inner LIMIT and a trailing `--` comment are safe,
 * quoted as a Redshift string literal (every ' doubled, every \ doubled), with the options ingest needs.
 * Owns only string building; nothing here talks to AWS. */
#ifndef RD_INGEST_UNLOAD_SQL_H
#define RD_INGEST_UNLOAD_SQL_H

#include <stdint.h>

#include "redduck/buf.h"
#include "redduck/error.h"

typedef struct rd_unload_request {
    const char *sql;            /* the user's query, or NULL when table is set */
    const char *table;          /* "schema.table" or "table" (each part quoted as an identifier) */
    const char *select_list;    /* NULL: "*"; else the projection over the wrapped query (type encodings) */
    const char *destination;    /* "s3://bucket/prefix/" (the unique staging prefix) */
    const char *iam_role;       /* role ARN, or NULL / "default" for IAM_ROLE default */
    uint64_t max_file_size_mb;  /* 0: Redshift's default */
    const char *kms_key_id;     /* NULL: no ENCRYPTED/KMS_KEY_ID */
    const char *region;         /* bucket region when it differs from the cluster's, or NULL */
    int parallel_off;           /* 1: PARALLEL OFF */
    const char *where;          /* a filter over the wrapped query (incremental loads), or NULL */
} rd_unload_request;

/* Appends the statement to out. RD_E_USAGE when neither or both of sql/table are given, the query is
 * empty after trimming, the destination is not an s3:// URL, or the table name is malformed. */
rd_status rd_unload_sql_build(const rd_unload_request *req, rd_buf *out, rd_error *err);

/* Appends the plain SELECT: `select <list> from (\n<sql>\n) as redduck_q` (sql trimmed of whitespace and
 * trailing semicolons) or `select <list> from "schema"."table"`, then suffix (e.g. " where 1=0") if any.
 * RD_E_USAGE as rd_unload_sql_build. Used for the schema probe and the Data API path. */
rd_status rd_unload_sql_select(const char *sql, const char *table, const char *select_list, const char *suffix,
                               rd_buf *out, rd_error *err);

/* Appends s as a Redshift string literal body (without the surrounding quotes): ' → '', \ → \\. */
rd_status rd_unload_sql_quote_literal(rd_buf *out, const char *s);
/* Appends "schema"."table" with embedded double quotes doubled. */
rd_status rd_unload_sql_quote_table(rd_buf *out, const char *dotted, rd_error *err);

#endif
