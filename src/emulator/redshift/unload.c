/* unload.c — UNLOAD as Redshift does it: checks (outer LIMIT, role, bucket, non-empty prefix, Parquet
 * types), then files per slice, each published into the S3 store as soon as it is complete, the manifest
 * last. Two ways to write them: Parquet without PARTITION BY, MAXFILESIZE, ROWGROUPSIZE or ORDER BY, big
 * enough for every slice, goes in one DuckDB COPY of the query that rotates files every few row groups
 * (write_direct: about DuckDB's own COPY's cost, shares about equal), or, when smaller, in one COPY
 * partitioned by each row's slice (write_small: exact shares); everything else comes from the
 * result materialised once (sorted by the partition values for PARTITION BY, so each partition is one run of
 * rows), one COPY of a rowid range per file (exact shares, MAXFILESIZE splits). With a pace (unload.mbps),
 * each file waits for its time before it is published. Does not parse (dialect.c) nor own the store. */
#include "emulator/redshift/unload.h"

#ifdef RD_HAVE_DUCKDB

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "emulator/emulator.h"
#include "emulator/redshift/dialect.h"
#include "emulator/redshift/duck_redshift.h"
#include "emulator/s3/s3_store.h"
#include "redduck/buf.h"

#define RD_UNLOAD_DEFAULT_MAX ((uint64_t)(6.2 * 1024 * 1024 * 1024))
#define RD_UNLOAD_ROW_GROUP 122880 /* DuckDB's default rows per Parquet row group */
#define RD_UNLOAD_DIRECT_MIN (16 * 2048) /* rows per slice for the one-pass path */

typedef struct unload_col {
    char *name;     /* as in the result */
    char *lower;    /* as written */
    rd_emu_column desc;
    int is_partition;
} unload_col;

typedef struct unload_file {
    char *key;
    uint64_t size;
    int64_t rows;
} unload_file;

typedef struct unload_ctx {
    const rd_emu_unload_env *env;
    duckdb_connection conn;
    rd_unload_spec *spec;
    char table[64];
    unload_col *cols;
    size_t ncols;
    unload_file *files;
    size_t nfiles;
    uint64_t max_size;
    int64_t rows; /* in the result (the materialised table, or as counted before the one-pass COPY) */
    rd_error *err;
    double began;           /* rd_monotonic_seconds at the start, for the pace */
    uint64_t paced_bytes;   /* of the files published so far (by one thread at a time) */
} unload_ctx;

/* Runs sql into *r; a failure sets u->err in Redshift's words (and destroys *r). */
static rd_status q_run(unload_ctx *u, const char *sql, duckdb_result *r)
{
    if (duckdb_query(u->conn, sql, r) == DuckDBSuccess)
        return RD_OK;
    char *m = rd_emu_redshift_error(duckdb_result_error(r));
    rd_error_set(u->err, RD_E_REMOTE, "%s", m ? m : "ERROR: UNLOAD failed");
    free(m);
    duckdb_destroy_result(r);
    return RD_E_REMOTE;
}

static rd_status q_exec(unload_ctx *u, const char *sql)
{
    duckdb_result r;
    rd_status st = q_run(u, sql, &r);
    if (st == RD_OK)
        duckdb_destroy_result(&r);
    return st;
}

/* q_exec of a statement whose answer is one number (a count, or CREATE TABLE AS's rows): *n gets it. */
static rd_status q_count(unload_ctx *u, const char *sql, int64_t *n)
{
    duckdb_result r;
    rd_status st = q_run(u, sql, &r);
    if (st != RD_OK)
        return st;
    *n = -1;
    duckdb_data_chunk ch = duckdb_result_get_chunk(r, 0);
    if (ch) {
        duckdb_vector vec = duckdb_data_chunk_get_vector(ch, 0);
        if (duckdb_data_chunk_get_size(ch) > 0 && duckdb_column_type(&r, 0) == DUCKDB_TYPE_BIGINT)
            *n = ((int64_t *)duckdb_vector_get_data(vec))[0];
        duckdb_destroy_data_chunk(&ch);
    }
    duckdb_destroy_result(&r);
    return *n >= 0 ? RD_OK : rd_error_set(u->err, RD_E_REMOTE, "ERROR: UNLOAD could not count its rows");
}

static void append_ident(rd_buf *b, const char *name)
{
    rd_buf_putc(b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            rd_buf_putc(b, '"');
        rd_buf_putc(b, *p);
    }
    rd_buf_putc(b, '"');
}

static const char *verbose_type(const rd_emu_column *c)
{
    switch (c->duck_type) {
    case DUCKDB_TYPE_BOOLEAN: return "boolean";
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT: return "smallint";
    case DUCKDB_TYPE_INTEGER: return "integer";
    case DUCKDB_TYPE_BIGINT: return "bigint";
    case DUCKDB_TYPE_FLOAT: return "real";
    case DUCKDB_TYPE_DOUBLE: return "double precision";
    case DUCKDB_TYPE_DATE: return "date";
    case DUCKDB_TYPE_TIME: return "time without time zone";
    case DUCKDB_TYPE_TIME_TZ: return "time with time zone";
    case DUCKDB_TYPE_TIMESTAMP: return "timestamp without time zone";
    case DUCKDB_TYPE_TIMESTAMP_TZ: return "timestamp with time zone";
    case DUCKDB_TYPE_BLOB: return "varbyte";
    case DUCKDB_TYPE_DECIMAL:
    case DUCKDB_TYPE_HUGEINT: return "numeric";
    default: return "character varying";
    }
}

/* The SELECT list as written: lowercased names; VARBYTE as hex in text formats. */
static void select_list(unload_ctx *u, rd_buf *b)
{
    int first = 1;
    for (size_t i = 0; i < u->ncols; i++) {
        if (u->cols[i].is_partition && !u->spec->partition_include)
            continue;
        if (!first)
            rd_buf_puts(b, ", ");
        first = 0;
        if (u->spec->format != RD_UNLOAD_PARQUET && u->cols[i].desc.duck_type == DUCKDB_TYPE_BLOB) {
            rd_buf_puts(b, "lower(hex(");
            append_ident(b, u->cols[i].name);
            rd_buf_puts(b, "))");
        } else {
            append_ident(b, u->cols[i].name);
        }
        rd_buf_puts(b, " AS ");
        append_ident(b, u->cols[i].lower);
    }
}

static const char *file_suffix(const rd_unload_spec *s, char *buf, size_t size)
{
    const char *comp = s->gzip ? ".gz" : s->zstd ? ".zst" : "";
    if (s->extension)
        snprintf(buf, size, ".%s%s", s->extension, comp);
    else
        snprintf(buf, size, "%s%s", s->format == RD_UNLOAD_PARQUET ? ".parquet" : "", comp);
    return buf;
}

/* The key of a slice's part file (slice -1: PARALLEL OFF's numbered files) into *key. */
static void file_key(const unload_ctx *u, const char *key_prefix, int slice, int part, rd_buf *key)
{
    char suffix[64];
    file_suffix(u->spec, suffix, sizeof suffix);
    if (slice >= 0)
        rd_buf_printf(key, "%s%04d_part_%02d%s", key_prefix, slice, part, suffix);
    else
        rd_buf_printf(key, "%s%03d%s", key_prefix, part, suffix);
}

/* With a pace (unload.mbps): waits until a file of `size` bytes may appear, (the bytes published before it +
 * size) / pace after the UNLOAD began. RD_E_CANCELLED (in u->err or err) when the statement is cancelled
 * meanwhile. Called by the one thread publishing at the time. */
static rd_status pace_wait(unload_ctx *u, uint64_t size, rd_error *err)
{
    const rd_emu_unload_env *env = u->env;
    u->paced_bytes += size;
    if (env->pace_bytes_per_second <= 0)
        return RD_OK;
    double due = (double)u->paced_bytes / env->pace_bytes_per_second;
    for (;;) {
        if (env->cancelled && env->cancelled(env->cancel_ctx))
            return rd_error_set(err, RD_E_CANCELLED, "ERROR: Query cancelled on user's request");
        double left = due - (rd_monotonic_seconds() - u->began);
        if (left <= 0)
            return RD_OK;
        rd_sleep_ms(left > 0.05 ? 50 : (long)(left * 1e3) + 1);
    }
}

/* Waits for the file's time (pace_wait), moves the temp file at path into the store as key and adds it to
 * the files of the manifest; the temp file is gone either way. Errors go to err. Called by the one thread
 * publishing at the time. */
static rd_status publish(unload_ctx *u, const char *key, const char *path, uint64_t size, int64_t rows, rd_error *err)
{
    rd_status st = pace_wait(u, size, err);
    if (st != RD_OK) {
        unlink(path);
        return st;
    }
    unload_file *nv = realloc(u->files, (u->nfiles + 1) * sizeof *nv);
    if (!nv) {
        unlink(path);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    u->files = nv;
    rd_s3_object_info info;
    memset(&info, 0, sizeof info);
    rd_emu_error serr;
    if (rd_s3_store_put_file(u->env->store, u->spec->bucket, key, path,
                             u->spec->format == RD_UNLOAD_PARQUET ? "application/octet-stream" : "text/plain", &info,
                             &serr) != 0) {
        unlink(path);
        st = rd_error_set(err, RD_E_REMOTE, "ERROR: S3ServiceException:%s,Status 500,Error %s", serr.message,
                          serr.code);
    } else if (!(nv[u->nfiles].key = strdup(key))) {
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    } else {
        nv[u->nfiles].size = info.size ? info.size : size;
        nv[u->nfiles].rows = rows;
        u->nfiles++;
    }
    rd_s3_object_info_free(&info);
    return st;
}

/* Writes rows [off, off+len) of the materialised table, in order, to one temp file; returns its size. A rowid
 * range is a scan of only the row groups holding it (LIMIT/OFFSET after ORDER BY rowid sorted everything for
 * each file), and DuckDB keeps the scan's order in COPY. */
static rd_status copy_range(unload_ctx *u, int64_t off, int64_t len, const char *path, uint64_t *size)
{
    rd_buf sql = RD_BUF_INIT;
    rd_buf_puts(&sql, "COPY (SELECT ");
    select_list(u, &sql);
    rd_buf_printf(&sql, " FROM %s", u->table);
    if (off > 0 || off + len < u->rows)
        rd_buf_printf(&sql, " WHERE rowid >= %lld AND rowid < %lld", (long long)off, (long long)(off + len));
    rd_buf_puts(&sql, ") TO ");
    rd_sql_quote_literal(&sql, path, strlen(path));
    const rd_unload_spec *s = u->spec;
    if (s->format == RD_UNLOAD_PARQUET) {
        rd_buf_puts(&sql, " (FORMAT PARQUET");
        if (s->row_group_size)
            rd_buf_printf(&sql, ", ROW_GROUP_SIZE_BYTES %llu", (unsigned long long)s->row_group_size);
        rd_buf_puts(&sql, ")");
    } else {
        const char *delim = s->delimiter ? s->delimiter : s->format == RD_UNLOAD_CSV ? "," : "|";
        rd_buf_puts(&sql, " (FORMAT CSV, DELIMITER ");
        rd_sql_quote_literal(&sql, delim, strlen(delim));
        rd_buf_printf(&sql, ", HEADER %s", s->header ? "true" : "false");
        if (s->null_as) {
            rd_buf_puts(&sql, ", NULLSTR ");
            rd_sql_quote_literal(&sql, s->null_as, strlen(s->null_as));
        }
        if (s->add_quotes || s->format == RD_UNLOAD_CSV)
            rd_buf_puts(&sql, ", QUOTE '\"'");
        rd_buf_printf(&sql, ", COMPRESSION %s)", s->gzip ? "gzip" : s->zstd ? "zstd" : "none");
    }
    rd_status st = q_exec(u, rd_buf_cstr(&sql));
    rd_buf_free(&sql);
    if (st != RD_OK)
        return st;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return rd_error_set(u->err, RD_E_IO, "ERROR: UNLOAD could not write its temporary file");
    *size = (uint64_t)sb.st_size;
    return RD_OK;
}

/* Writes [off, off+len) as one or more files of at most max_size bytes, each published when complete; names
 * come from *part. */
static rd_status write_range(unload_ctx *u, const char *key_prefix, int slice, int *part, int64_t off, int64_t len)
{
    if (len <= 0)
        return RD_OK;
    rd_buf path = RD_BUF_INIT;
    unsigned long long n = u->env->next_tmp(u->env->ctx);
    rd_buf_printf(&path, "%s/tmp/unload-%d-%llu", u->env->data_dir, (int)getpid(), n);
    uint64_t size = 0;
    rd_status st = copy_range(u, off, len, rd_buf_cstr(&path), &size);
    if (st == RD_OK && size > u->max_size && len > 1) {
        unlink(rd_buf_cstr(&path));
        int64_t parts = (int64_t)(size / (u->max_size - u->max_size / 10)) + 1;
        if (parts > len)
            parts = len;
        int64_t each = (len + parts - 1) / parts;
        for (int64_t o = 0; o < len && st == RD_OK; o += each)
            st = write_range(u, key_prefix, slice, part, off + o, o + each > len ? len - o : each);
        rd_buf_free(&path);
        return st;
    }
    if (st != RD_OK) {
        unlink(rd_buf_cstr(&path));
        rd_buf_free(&path);
        return st;
    }
    rd_buf key = RD_BUF_INIT;
    file_key(u, key_prefix, slice, (*part)++, &key);
    st = publish(u, rd_buf_cstr(&key), rd_buf_cstr(&path), size, len, u->err);
    rd_buf_free(&key);
    rd_buf_free(&path);
    return st;
}

/* The rows [start, start+rows) as PARALLEL says: one run of files, or one per slice in equal shares. */
static rd_status write_group(unload_ctx *u, const char *key_prefix, int64_t start, int64_t rows)
{
    rd_status st = RD_OK;
    if (!u->spec->parallel) {
        int part = 0;
        return write_range(u, key_prefix, -1, &part, start, rows);
    }
    int slices = u->env->slices;
    for (int s = 0; s < slices && st == RD_OK; s++) {
        int64_t from = rows * s / slices, to = rows * (s + 1) / slices;
        int part = 0;
        st = write_range(u, key_prefix, s, &part, start + from, to - from);
    }
    return st;
}

/* The partition columns as text, the way Hive paths show them: "CAST(c1 AS VARCHAR), CAST(c2 AS VARCHAR)". */
static void partition_keys(unload_ctx *u, rd_buf *b)
{
    for (size_t i = 0, k = 0; i < u->ncols; i++) {
        if (!u->cols[i].is_partition)
            continue;
        if (k++)
            rd_buf_puts(b, ", ");
        rd_buf_puts(b, "CAST(");
        append_ident(b, u->cols[i].name);
        rd_buf_puts(b, " AS VARCHAR)");
    }
}

/* Re-materialises the result sorted by the partition values (then by its own order, so rows keep their order
 * within a partition): each partition becomes one rowid range, written like an unpartitioned result. */
static rd_status sort_by_partition(unload_ctx *u)
{
    char sorted[80];
    snprintf(sorted, sizeof sorted, "%s_p", u->table);
    rd_buf sql = RD_BUF_INIT;
    rd_buf_printf(&sql, "CREATE TEMP TABLE %s AS SELECT * FROM %s ORDER BY ", sorted, u->table);
    partition_keys(u, &sql);
    rd_buf_printf(&sql, ", rowid; DROP TABLE %s; ALTER TABLE %s RENAME TO %s", u->table, sorted, u->table);
    rd_status st = q_exec(u, rd_buf_cstr(&sql));
    rd_buf_free(&sql);
    return st;
}

static rd_status write_partitions(unload_ctx *u)
{
    rd_status st = sort_by_partition(u);
    if (st != RD_OK)
        return st;
    size_t npart = 0;
    for (size_t i = 0; i < u->ncols; i++)
        npart += u->cols[i].is_partition != 0;
    /* one row per partition: its values, first rowid and row count, in the sorted order */
    rd_buf sql = RD_BUF_INIT;
    rd_buf_puts(&sql, "SELECT ");
    partition_keys(u, &sql);
    rd_buf_printf(&sql, ", CAST(min(rowid) AS BIGINT), CAST(count(*) AS BIGINT) FROM %s GROUP BY ", u->table);
    for (size_t k = 0; k < npart; k++)
        rd_buf_printf(&sql, "%s%zu", k ? ", " : "", k + 1);
    rd_buf_puts(&sql, " ORDER BY min(rowid)");
    duckdb_result r;
    if (duckdb_query(u->conn, rd_buf_cstr(&sql), &r) != DuckDBSuccess) {
        char *m = rd_emu_redshift_error(duckdb_result_error(&r));
        rd_error_set(u->err, RD_E_REMOTE, "%s", m ? m : "ERROR: UNLOAD failed");
        free(m);
        duckdb_destroy_result(&r);
        rd_buf_free(&sql);
        return RD_E_REMOTE;
    }
    rd_buf_free(&sql);
    idx_t chunks = duckdb_result_chunk_count(r);
    for (idx_t c = 0; c < chunks && st == RD_OK; c++) {
        duckdb_data_chunk ch = duckdb_result_get_chunk(r, c);
        idx_t n = duckdb_data_chunk_get_size(ch);
        int64_t *starts = (int64_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, npart));
        int64_t *counts = (int64_t *)duckdb_vector_get_data(duckdb_data_chunk_get_vector(ch, npart + 1));
        for (idx_t row = 0; row < n && st == RD_OK; row++) {
            rd_buf prefix = RD_BUF_INIT;
            rd_buf_puts(&prefix, u->spec->prefix);
            if (prefix.len && prefix.data[prefix.len - 1] != '/')
                rd_buf_putc(&prefix, '/');
            size_t k = 0;
            for (size_t i = 0; i < u->ncols; i++) {
                if (!u->cols[i].is_partition)
                    continue;
                duckdb_vector v = duckdb_data_chunk_get_vector(ch, k);
                uint64_t *valid = duckdb_vector_get_validity(v);
                rd_buf_printf(&prefix, "%s=", u->cols[i].lower);
                if (valid && !duckdb_validity_row_is_valid(valid, row)) {
                    rd_buf_puts(&prefix, "__HIVE_DEFAULT_PARTITION__");
                } else {
                    duckdb_string_t *d = (duckdb_string_t *)duckdb_vector_get_data(v);
                    rd_buf_append(&prefix, duckdb_string_t_data(&d[row]), duckdb_string_t_length(d[row]));
                }
                rd_buf_putc(&prefix, '/');
                k++;
            }
            st = write_group(u, rd_buf_cstr(&prefix), starts[row], counts[row]);
            rd_buf_free(&prefix);
        }
        duckdb_destroy_data_chunk(&ch);
    }
    duckdb_destroy_result(&r);
    return st;
}

/* 1 when the word ORDER appears anywhere in sql (any case, outside nothing: literals and comments count too).
 * DuckDB's rotating COPY keeps a scan's order across its files but not a sort's, so any ORDER BY sends the
 * UNLOAD down the materialised path; a false alarm only costs speed. */
static int mentions_order(const char *sql)
{
    for (const char *p = sql; *p; p++) {
        if (strncasecmp(p, "order", 5) != 0)
            continue;
        int before = p == sql || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after = !(isalnum((unsigned char)p[5]) || p[5] == '_');
        if (before && after)
            return 1;
    }
    return 0;
}

/* The result's columns, from a LIMIT 0 query over source (a table or a parenthesised query). */
static rd_status describe(unload_ctx *u, const char *source)
{
    rd_buf d = RD_BUF_INIT;
    rd_buf_printf(&d, "SELECT * FROM %s LIMIT 0", source);
    duckdb_result r;
    if (duckdb_query(u->conn, rd_buf_cstr(&d), &r) != DuckDBSuccess) {
        char *m = rd_emu_redshift_error(duckdb_result_error(&r));
        rd_error_set(u->err, RD_E_REMOTE, "%s", m ? m : "ERROR: UNLOAD could not describe its query");
        free(m);
        rd_buf_free(&d);
        duckdb_destroy_result(&r);
        return RD_E_REMOTE;
    }
    rd_buf_free(&d);
    for (size_t i = 0; i < u->ncols && u->cols; i++) {
        free(u->cols[i].name);
        free(u->cols[i].lower);
    }
    free(u->cols);
    u->ncols = duckdb_column_count(&r);
    u->cols = calloc(u->ncols ? u->ncols : 1, sizeof *u->cols);
    if (!u->cols) {
        u->ncols = 0;
        duckdb_destroy_result(&r);
        return rd_error_set(u->err, RD_E_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < u->ncols; i++) {
        u->cols[i].name = strdup(duckdb_column_name(&r, i));
        u->cols[i].lower = strdup(u->cols[i].name ? u->cols[i].name : "");
        for (char *p = u->cols[i].lower; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
        duckdb_logical_type t = duckdb_column_logical_type(&r, i);
        rd_emu_column_describe(t, &u->cols[i].desc);
        duckdb_destroy_logical_type(&t);
    }
    duckdb_destroy_result(&r);
    return RD_OK;
}

/* --- the one-pass path: DuckDB's COPY of the query into a directory, rotating files every few row groups; a
 * watcher publishes each file as soon as its footer is complete (DuckDB opens the next file before it has
 * finished the previous one, so a file's presence says nothing). --- */

/* Thrift's compact protocol, read only to check that a Parquet footer is whole and take its row count. */
typedef struct thrift_in {
    const unsigned char *p, *end;
    int bad;
} thrift_in;

static uint64_t thrift_varint(thrift_in *t)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (t->p >= t->end) {
            t->bad = 1;
            return 0;
        }
        unsigned char b = *t->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return v;
    }
    t->bad = 1;
    return 0;
}

static void thrift_skip_bytes(thrift_in *t, uint64_t n)
{
    if (n > (uint64_t)(t->end - t->p))
        t->bad = 1;
    else
        t->p += n;
}

static int64_t thrift_struct(thrift_in *t, int depth, int want_field);

static void thrift_skip(thrift_in *t, int type, int depth)
{
    if (depth > 32) {
        t->bad = 1;
        return;
    }
    switch (type) {
    case 1: case 2: break;                        /* booleans live in the field header */
    case 3: thrift_skip_bytes(t, 1); break;
    case 4: case 5: case 6: (void)thrift_varint(t); break;
    case 7: thrift_skip_bytes(t, 8); break;
    case 8: thrift_skip_bytes(t, thrift_varint(t)); break;
    case 9: case 10: {
        if (t->p >= t->end) {
            t->bad = 1;
            return;
        }
        unsigned char h = *t->p++;
        uint64_t n = h >> 4;
        if (n == 15)
            n = thrift_varint(t);
        for (uint64_t i = 0; i < n && !t->bad; i++)
            if ((h & 0x0F) == 1 || (h & 0x0F) == 2)
                thrift_skip_bytes(t, 1);
            else
                thrift_skip(t, h & 0x0F, depth + 1);
        break;
    }
    case 11: {
        uint64_t n = thrift_varint(t);
        if (n == 0)
            break;
        if (t->p >= t->end) {
            t->bad = 1;
            return;
        }
        unsigned char kv = *t->p++;
        for (uint64_t i = 0; i < n && !t->bad; i++) {
            thrift_skip(t, kv >> 4, depth + 1);
            thrift_skip(t, kv & 0x0F, depth + 1);
        }
        break;
    }
    case 12: (void)thrift_struct(t, depth + 1, 0); break;
    default: t->bad = 1;
    }
}

/* Reads a struct to its end; returns the i64 field want_field (0: none), or -1. */
static int64_t thrift_struct(thrift_in *t, int depth, int want_field)
{
    int64_t found = -1;
    int last = 0;
    while (!t->bad) {
        if (t->p >= t->end) {
            t->bad = 1;
            break;
        }
        unsigned char h = *t->p++;
        if (h == 0)
            return found;
        int type = h & 0x0F, delta = h >> 4;
        int id;
        if (delta) {
            id = last + delta;
        } else {
            uint64_t z = thrift_varint(t);
            id = (int)((z >> 1) ^ (~(z & 1) + 1));
        }
        last = id;
        if (want_field && id == want_field && type == 6) {
            uint64_t z = thrift_varint(t);
            found = (int64_t)((z >> 1) ^ (~(z & 1) + 1));
        } else {
            thrift_skip(t, type, depth);
        }
    }
    return -1;
}

/* 1 with *rows when path is a whole Parquet file (magic at both ends, a footer that decodes to exactly its
 * length), else 0. */
static int parquet_complete(const char *path, int64_t *rows)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int ok = 0;
    unsigned char tail[8], head[4];
    long size;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 12 && fseek(f, size - 8, SEEK_SET) == 0 &&
        fread(tail, 1, 8, f) == 8 && memcmp(tail + 4, "PAR1", 4) == 0 && fseek(f, 0, SEEK_SET) == 0 &&
        fread(head, 1, 4, f) == 4 && memcmp(head, "PAR1", 4) == 0) {
        uint32_t len = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
        unsigned char *meta = len > 0 && (long)len <= size - 12 ? malloc(len) : NULL;
        if (meta && fseek(f, size - 8 - (long)len, SEEK_SET) == 0 && fread(meta, 1, len, f) == len) {
            thrift_in t = { meta, meta + len, 0 };
            int64_t n = thrift_struct(&t, 0, 3); /* FileMetaData.num_rows */
            if (!t.bad && t.p == t.end && n >= 0) {
                *rows = n;
                ok = 1;
            }
        }
        free(meta);
    }
    fclose(f);
    return ok;
}

typedef struct direct_run {
    unload_ctx *u;
    const char *dir;
    int64_t total;   /* rows counted before the COPY: how the files map to slices */
    int64_t written; /* rows in the files published so far */
    int next;        /* DuckDB's number of the next file to publish */
    int last_slice, part;
    rd_status st;
    rd_error err;
    pthread_mutex_t mu;
    int copy_done;
} direct_run;

/* Publishes DuckDB's next file when it is complete; 1 if one was published. Called by one thread at a time. */
static int publish_next(direct_run *d)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data_%d.parquet", d->dir, d->next);
    int64_t n = 0;
    if (!parquet_complete(path, &n))
        return 0;
    unload_ctx *u = d->u;
    int slices = u->spec->parallel ? u->env->slices : 1;
    int slice = d->total > 0 ? (int)(d->written * slices / d->total) : 0;
    if (slice >= slices)
        slice = slices - 1;
    if (slice != d->last_slice)
        d->part = 0;
    d->last_slice = slice;
    rd_buf key = RD_BUF_INIT;
    file_key(u, u->spec->prefix, u->spec->parallel ? slice : -1, d->part++, &key);
    struct stat sb;
    uint64_t size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    d->st = publish(u, rd_buf_cstr(&key), path, size, n, &d->err);
    rd_buf_free(&key);
    d->written += n;
    d->next++;
    return d->st == RD_OK;
}

static void *direct_watch(void *arg)
{
    direct_run *d = arg;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        int stop = d->copy_done;
        pthread_mutex_unlock(&d->mu);
        if (stop || d->st != RD_OK)
            return NULL;
        if (!publish_next(d)) {
            struct timespec ts = { 0, 20 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
    }
}

/* The start of a one-pass COPY into a new temporary directory: *dir its path, *sql "COPY (SELECT <the
 * list>" for the caller to go on with. RD_E_IO (u->err set, nothing to free) when it cannot be made. */
static rd_status copy_dir_begin(unload_ctx *u, rd_buf *dir, rd_buf *sql)
{
    rd_buf_printf(dir, "%s/tmp/unload-%d-%llu.d", u->env->data_dir, (int)getpid(), u->env->next_tmp(u->env->ctx));
    if (mkdir(rd_buf_cstr(dir), 0700) != 0) {
        rd_buf_free(dir);
        return rd_error_set(u->err, RD_E_IO, "ERROR: UNLOAD could not create its temporary directory");
    }
    rd_buf_puts(sql, "COPY (SELECT ");
    select_list(u, sql);
    return RD_OK;
}

/* The whole result in one COPY of the query (about the cost of DuckDB's own COPY: nothing materialised),
 * files of about total/slices rows each, named per slice by the rows before them; *rows_out becomes the rows
 * the files hold. */
static rd_status write_direct(unload_ctx *u, const char *source, int64_t *rows_out)
{
    int slices = u->spec->parallel ? u->env->slices : 1;
    int64_t share = (u->rows + slices - 1) / slices;
    int64_t groups = (share + RD_UNLOAD_ROW_GROUP - 1) / RD_UNLOAD_ROW_GROUP; /* row groups per file */
    int64_t group_rows = (share + groups - 1) / groups;
    rd_buf dir = RD_BUF_INIT, sql = RD_BUF_INIT;
    if (copy_dir_begin(u, &dir, &sql) != RD_OK)
        return RD_E_IO;
    rd_buf_printf(&sql, " FROM %s) TO ", source);
    rd_sql_quote_literal(&sql, rd_buf_cstr(&dir), dir.len);
    rd_buf_printf(&sql, " (FORMAT PARQUET, ROW_GROUP_SIZE %lld", (long long)group_rows);
    if (u->spec->parallel)
        rd_buf_printf(&sql, ", ROW_GROUPS_PER_FILE %lld", (long long)groups);
    rd_buf_printf(&sql, ", FILE_SIZE_BYTES %llu)", (unsigned long long)(u->max_size - u->max_size / 10));

    direct_run d;
    memset(&d, 0, sizeof d);
    d.u = u;
    d.dir = rd_buf_cstr(&dir);
    d.total = u->rows;
    d.last_slice = -1;
    rd_error_clear(&d.err);
    pthread_mutex_init(&d.mu, NULL);
    pthread_t watcher;
    int watching = pthread_create(&watcher, NULL, direct_watch, &d) == 0;
    rd_status st = q_exec(u, rd_buf_cstr(&sql));
    pthread_mutex_lock(&d.mu);
    d.copy_done = 1;
    pthread_mutex_unlock(&d.mu);
    if (watching)
        pthread_join(watcher, NULL);
    if (st == RD_OK && d.st == RD_OK)
        while (publish_next(&d)) /* the files the watcher had not reached: all complete now */
            ;
    if (st == RD_OK && d.st != RD_OK)
        st = rd_error_set(u->err, d.st, "%s", d.err.message);
    if (st == RD_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data_%d.parquet", d.dir, d.next);
        if (access(path, F_OK) == 0) /* a file left that is not a whole Parquet file */
            st = rd_error_set(u->err, RD_E_INTERNAL, "ERROR: UNLOAD wrote an incomplete file");
        else
            *rows_out = d.written;
    }
    pthread_mutex_destroy(&d.mu);
    /* leftovers of a failure: the directory's files, then the directory */
    for (int i = d.next;; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data_%d.parquet", d.dir, i);
        if (unlink(path) != 0)
            break;
    }
    rmdir(rd_buf_cstr(&dir));
    rd_buf_free(&sql);
    rd_buf_free(&dir);
    return st;
}

/* A small result (fewer than RD_UNLOAD_DIRECT_MIN rows a slice, where DuckDB's row groups cannot cut exact
 * shares) in one COPY of the query too: each row goes to its slice's exact share by its number (slice s
 * holds rows [rows*s/slices, rows*(s+1)/slices), as write_group cuts them), through PARTITION_BY a slice
 * column that DuckDB does not write into the files; one directory per slice, published in slice order once
 * the COPY is done. About half the cost of materialising the result and copying each share. */
#define RD_UNLOAD_SLICE_COL "rd_unload_slice"
static rd_status write_small(unload_ctx *u, const char *source, int64_t *rows_out)
{
    int slices = u->env->slices;
    int64_t written = 0;
    rd_buf dir = RD_BUF_INIT, sql = RD_BUF_INIT;
    if (copy_dir_begin(u, &dir, &sql) != RD_OK)
        return RD_E_IO;
    /* least(): a query whose second run gives more rows than it counted still writes them all */
    rd_buf_printf(&sql, ", least((row_number() OVER () * %d - 1) // %lld, %d) AS " RD_UNLOAD_SLICE_COL " FROM %s) TO ",
                  slices, (long long)u->rows, slices - 1, source);
    rd_sql_quote_literal(&sql, rd_buf_cstr(&dir), dir.len);
    rd_buf_puts(&sql, " (FORMAT PARQUET, PARTITION_BY (" RD_UNLOAD_SLICE_COL "))");
    rd_status st = q_exec(u, rd_buf_cstr(&sql));
    for (int s = 0; s < slices; s++) {
        int part = 0;
        for (int i = 0;; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/" RD_UNLOAD_SLICE_COL "=%d/data_%d.parquet", rd_buf_cstr(&dir), s, i);
            if (access(path, F_OK) != 0)
                break;
            int64_t n = 0;
            if (st == RD_OK && !parquet_complete(path, &n))
                st = rd_error_set(u->err, RD_E_INTERNAL, "ERROR: UNLOAD wrote an incomplete file");
            if (st != RD_OK) { /* the leftovers of a failure */
                unlink(path);
                continue;
            }
            struct stat sb;
            rd_buf key = RD_BUF_INIT;
            file_key(u, u->spec->prefix, s, part++, &key);
            st = publish(u, rd_buf_cstr(&key), path, stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0, n, u->err);
            rd_buf_free(&key);
            written += n;
        }
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/" RD_UNLOAD_SLICE_COL "=%d", rd_buf_cstr(&dir), s);
        rmdir(sub);
    }
    rmdir(rd_buf_cstr(&dir));
    rd_buf_free(&sql);
    rd_buf_free(&dir);
    if (st == RD_OK)
        *rows_out = written;
    return st;
}

static rd_status write_manifest(unload_ctx *u)
{
    json_t *root = json_object(), *entries = json_array();
    uint64_t total_len = 0;
    int64_t total_rows = 0;
    for (size_t i = 0; i < u->nfiles; i++) {
        char *url = NULL;
        if (asprintf(&url, "s3://%s/%s", u->spec->bucket, u->files[i].key) < 0)
            url = NULL;
        json_array_append_new(entries, json_pack("{s:s, s:{s:I, s:I}}", "url", url ? url : "", "meta",
                                                 "content_length", (json_int_t)u->files[i].size, "record_count",
                                                 (json_int_t)u->files[i].rows));
        free(url);
        total_len += u->files[i].size;
        total_rows += u->files[i].rows;
    }
    json_object_set_new(root, "entries", entries);
    if (u->spec->manifest_verbose) {
        json_t *elements = json_array();
        for (size_t i = 0; i < u->ncols; i++) {
            if (u->cols[i].is_partition && !u->spec->partition_include)
                continue;
            json_t *type = json_pack("{s:s}", "base", verbose_type(&u->cols[i].desc));
            if (u->cols[i].desc.duck_type == DUCKDB_TYPE_DECIMAL) {
                json_object_set_new(type, "precision", json_integer(u->cols[i].desc.precision));
                json_object_set_new(type, "scale", json_integer(u->cols[i].desc.scale));
            } else if (u->cols[i].desc.duck_type == DUCKDB_TYPE_VARCHAR) {
                json_object_set_new(type, "max_length", json_integer(u->cols[i].desc.precision));
            }
            json_array_append_new(elements, json_pack("{s:s, s:o}", "name", u->cols[i].lower, "type", type));
        }
        json_object_set_new(root, "schema", json_pack("{s:o}", "elements", elements));
        json_object_set_new(root, "meta", json_pack("{s:I, s:I}", "content_length", (json_int_t)total_len,
                                                    "record_count", (json_int_t)total_rows));
        json_object_set_new(root, "author", json_pack("{s:s, s:s}", "name", "Amazon Redshift", "version", "1.0.0"));
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return rd_error_set(u->err, RD_E_INTERNAL, "out of memory");
    rd_buf key = RD_BUF_INIT;
    rd_buf_printf(&key, "%smanifest", u->spec->prefix);
    rd_emu_error serr;
    rd_status st = RD_OK;
    if (rd_s3_store_put_data(u->env->store, u->spec->bucket, rd_buf_cstr(&key), text, strlen(text),
                             "application/json", NULL, &serr) != 0)
        st = rd_error_set(u->err, RD_E_REMOTE, "ERROR: S3ServiceException:%s,Status 500,Error %s", serr.message,
                          serr.code);
    rd_buf_free(&key);
    free(text);
    return st;
}

static rd_status check_destination(unload_ctx *u, const char *role)
{
    rd_unload_spec *s = u->spec;
    rd_emu_error serr;
    if (rd_s3_store_head_bucket(u->env->store, s->bucket, NULL, &serr) != 0)
        return rd_error_set(u->err, RD_E_REMOTE,
                            "ERROR: S3ServiceException:The specified bucket does not exist,Status 404,Error "
                            "NoSuchBucket,Bucket %s",
                            s->bucket);
    rd_s3_listing l;
    memset(&l, 0, sizeof l);
    if (rd_s3_store_list(u->env->store, s->bucket, s->prefix, NULL, NULL, s->clean_path ? 1000 : 1, &l, &serr) != 0)
        return rd_error_set(u->err, RD_E_REMOTE, "ERROR: S3ServiceException:%s,Status 500", serr.message);
    rd_status st = RD_OK;
    if (l.object_count > 0 && s->clean_path) {
        char *res = NULL;
        if (asprintf(&res, "arn:aws:s3:::%s/%s*", s->bucket, s->prefix) < 0)
            res = NULL;
        int ok = res && rd_emu_role_allowed(u->env->emu, role, "s3:DeleteObject", res);
        free(res);
        if (!ok) {
            rd_s3_listing_free(&l);
            return rd_error_set(u->err, RD_E_DENIED,
                                "ERROR: S3ServiceException:Access Denied,Status 403,Error AccessDenied");
        }
        for (;;) {
            for (size_t i = 0; i < l.object_count && st == RD_OK; i++)
                if (rd_s3_store_delete(u->env->store, s->bucket, l.objects[i].key, &serr) != 0)
                    st = rd_error_set(u->err, RD_E_REMOTE, "ERROR: S3ServiceException:%s,Status 500", serr.message);
            int more = l.truncated && st == RD_OK;
            rd_s3_listing_free(&l);
            memset(&l, 0, sizeof l);
            if (!more || rd_s3_store_list(u->env->store, s->bucket, s->prefix, NULL, NULL, 1000, &l, &serr) != 0)
                break;
            if (l.object_count == 0)
                break;
        }
    } else if (l.object_count > 0 && !s->allow_overwrite) {
        st = rd_error_set(u->err, RD_E_REMOTE,
                          "ERROR: Specified unload destination on S3 is not empty. Consider using a different bucket "
                          "/ prefix, manually removing the target files in S3, or using the ALLOWOVERWRITE option.");
    }
    rd_s3_listing_free(&l);
    return st;
}

rd_status rd_emu_unload_run(const rd_emu_unload_env *env, duckdb_connection conn, const char *sql, int64_t *rows_out,
                            rd_error *err)
{
    rd_unload_spec spec;
    rd_status st = rd_unload_parse(sql, &spec, err);
    if (st != RD_OK) {
        err->code = RD_E_REMOTE;
        return st;
    }
    unload_ctx u;
    memset(&u, 0, sizeof u);
    u.env = env;
    u.conn = conn;
    u.spec = &spec;
    u.err = err;
    u.max_size = spec.max_file_size ? spec.max_file_size : RD_UNLOAD_DEFAULT_MAX;
    u.began = rd_monotonic_seconds();
    char *role = NULL;
    rd_buf q = RD_BUF_INIT, source = RD_BUF_INIT;
    char **pn = NULL;
    size_t pc = 0;
    int table_made = 0;

    if (rd_sql_has_outer_limit(spec.query)) {
        st = rd_error_set(err, RD_E_REMOTE,
                          "ERROR: Limit clause is not supported in the outermost select of an UNLOAD statement");
        goto done;
    }
    if (spec.format == RD_UNLOAD_JSON || spec.bzip2) {
        st = rd_error_set(err, RD_E_REMOTE, "ERROR: the emulator does not support UNLOAD %s: use PARQUET or CSV",
                          spec.bzip2 ? "with BZIP2" : "to JSON");
        goto done;
    }
    if (!env->store) {
        st = rd_error_set(err, RD_E_REMOTE, "ERROR: UNLOAD needs the emulator's S3 store");
        goto done;
    }
    if (strcmp(spec.iam_role, "default") == 0)
        role = env->default_role(env->ctx);
    else
        role = strdup(spec.iam_role);
    if (!role) {
        st = rd_error_set(err, RD_E_REMOTE, "ERROR: No default IAM role is set for this %s",
                          env->is_cluster ? "cluster" : "workgroup");
        goto done;
    }
    char *res = NULL;
    if (asprintf(&res, "arn:aws:s3:::%s/%s*", spec.bucket, spec.prefix) < 0)
        res = NULL;
    int allowed = res && rd_emu_role_allowed(env->emu, role, "s3:PutObject", res);
    free(res);
    if (!allowed) {
        st = rd_error_set(err, RD_E_REMOTE,
                          "ERROR: S3ServiceException:Access Denied,Status 403,Error AccessDenied,Rid emulator,"
                          "ExtRid emulator,CanRetry 1 (IAM role %s may not write s3://%s/%s)",
                          role, spec.bucket, spec.prefix);
        goto done;
    }
    if ((st = check_destination(&u, role)) != RD_OK)
        goto done;

    rd_error rerr;
    rd_error_clear(&rerr);
    if (rd_sql_rewrite_ex(spec.query, RD_SQL_BPCHAR, &q, &pn, &pc, &rerr) != RD_OK) {
        st = rd_error_set(err, RD_E_REMOTE, "%s", rerr.message);
        goto done;
    }
    /* Parquet without partitions, MAXFILESIZE, ROWGROUPSIZE or ORDER BY: straight from the query in one pass
     * (when every slice gets enough rows that DuckDB's row groups, cut at vectors of 2048 rows, split it into
     * about equal shares); the rest from the result materialised once. */
    int direct = spec.format == RD_UNLOAD_PARQUET && !spec.partition_count && !spec.max_file_size &&
                 !spec.row_group_size && !mentions_order(rd_buf_cstr(&q));
    int64_t rows = -1;
    int small = 0;
    rd_buf_puts(&source, "(");
    rd_buf_puts(&source, rd_buf_cstr(&q));
    rd_buf_puts(&source, "\n) AS rd_q");
    /* the fixed cost of a small UNLOAD is the statements before its COPYs: a count, then either the
     * describe of the query (one pass) or CREATE TABLE AS, which answers its rows, and its describe */
    if (direct) {
        rd_buf cnt = RD_BUF_INIT;
        rd_buf_printf(&cnt, "SELECT count(*) FROM %s", rd_buf_cstr(&source));
        st = q_count(&u, rd_buf_cstr(&cnt), &rows);
        rd_buf_free(&cnt);
        if (st != RD_OK)
            goto done;
        small = spec.parallel && rows < (int64_t)env->slices * RD_UNLOAD_DIRECT_MIN; /* exact shares */
        if ((st = describe(&u, rd_buf_cstr(&source))) != RD_OK)
            goto done;
        for (size_t i = 0; small && i < u.ncols; i++)
            if (strcmp(u.cols[i].lower, RD_UNLOAD_SLICE_COL) == 0)
                direct = small = 0; /* a column of that name: the materialised path */
    }
    if (!direct) {
        snprintf(u.table, sizeof u.table, "rd_unload_%llu", env->next_tmp(env->ctx));
        rd_buf ctas = RD_BUF_INIT;
        rd_buf_printf(&ctas, "CREATE TEMP TABLE %s AS ", u.table);
        rd_buf_puts(&ctas, rd_buf_cstr(&q));
        st = q_count(&u, rd_buf_cstr(&ctas), &rows);
        rd_buf_free(&ctas);
        if (st != RD_OK)
            goto done;
        table_made = 1;
        if ((st = describe(&u, u.table)) != RD_OK)
            goto done;
    }
    for (size_t p = 0; p < spec.partition_count; p++) {
        int found = 0;
        for (size_t i = 0; i < u.ncols; i++)
            if (strcmp(u.cols[i].lower, spec.partition_by[p]) == 0)
                u.cols[i].is_partition = found = 1;
        if (!found) {
            st = rd_error_set(err, RD_E_REMOTE, "ERROR: Partition column \"%s\" does not exist in the query",
                              spec.partition_by[p]);
            goto done;
        }
    }
    if (spec.format == RD_UNLOAD_PARQUET) {
        for (size_t i = 0; i < u.ncols; i++) {
            int t = u.cols[i].desc.duck_type;
            if (t == DUCKDB_TYPE_TIME || t == DUCKDB_TYPE_TIME_TZ || t == DUCKDB_TYPE_BLOB) {
                st = rd_error_set(err, RD_E_REMOTE,
                                  "ERROR: UNLOAD with PARQUET format does not support column \"%s\" of type %s",
                                  u.cols[i].lower, u.cols[i].desc.type_name);
                goto done;
            }
        }
    }
    *rows_out = rows;
    u.rows = rows;
    if (rows == 0) /* Redshift writes neither data files nor manifest for an empty result */
        goto done;
    if (direct && small)
        st = write_small(&u, rd_buf_cstr(&source), rows_out);
    else if (direct)
        st = write_direct(&u, rd_buf_cstr(&source), rows_out);
    else
        st = spec.partition_count ? write_partitions(&u) : write_group(&u, spec.prefix, 0, rows);
    if (st == RD_OK && spec.manifest)
        st = write_manifest(&u);
done:
    if (table_made) {
        rd_buf drop = RD_BUF_INIT;
        rd_buf_printf(&drop, "DROP TABLE IF EXISTS %s; DROP TABLE IF EXISTS %s_p", u.table, u.table);
        duckdb_result r;
        duckdb_query(conn, rd_buf_cstr(&drop), &r);
        duckdb_destroy_result(&r);
        rd_buf_free(&drop);
    }
    for (size_t i = 0; i < pc; i++)
        free(pn[i]);
    free(pn);
    for (size_t i = 0; i < u.ncols && u.cols; i++) {
        free(u.cols[i].name);
        free(u.cols[i].lower);
    }
    free(u.cols);
    for (size_t i = 0; i < u.nfiles; i++)
        free(u.files[i].key);
    free(u.files);
    free(role);
    rd_buf_free(&q);
    rd_buf_free(&source);
    rd_unload_spec_free(&spec);
    return st;
}

#endif
