/* unload.c — UNLOAD as Redshift does it: checks (outer LIMIT, role, bucket, non-empty prefix, Parquet
 * types), then files per slice, each published into the S3 store as soon as it is complete, the manifest
 * last. Parquet is written by the emulator's own writer (parquet.h) in Redshift's physical forms (INT96
 * timestamps, decimals as FIXED_LEN_BYTE_ARRAY, Snappy): without PARTITION BY the query's rows stream
 * straight from DuckDB into it after a count of them (exact slice shares, files rotated at MAXFILESIZE,
 * nothing materialised); with PARTITION BY the result is materialised once, sorted by the partition values,
 * and each partition's rowid range streamed the same way. CSV and text come from that materialised result,
 * one DuckDB COPY of a rowid range per file. With a pace (unload.mbps), each file waits for its time before it
 * is published. Does not parse (dialect.c) nor own the store. */
#include "emulator/redshift/unload.h"

#ifdef RD_HAVE_DUCKDB

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "emulator/emulator.h"
#include "emulator/redshift/dialect.h"
#include "emulator/redshift/duck_redshift.h"
#include "emulator/redshift/parquet.h"
#include "emulator/s3/s3_store.h"
#include "redduck/buf.h"

#define RD_UNLOAD_DEFAULT_MAX ((uint64_t)(6.2 * 1024 * 1024 * 1024))

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

/* The SELECT list as written: lowercased names; VARBYTE as hex in text formats; for Parquet, the types the
 * writer does not write cast to ones it does (HUGEINT to DECIMAL(38,0), any other to VARCHAR, as the Data API
 * describes them). */
static void select_list(unload_ctx *u, rd_buf *b)
{
    int first = 1;
    for (size_t i = 0; i < u->ncols; i++) {
        if (u->cols[i].is_partition && !u->spec->partition_include)
            continue;
        if (!first)
            rd_buf_puts(b, ", ");
        first = 0;
        int t = u->cols[i].desc.duck_type;
        const char *cast = NULL;
        if (u->spec->format == RD_UNLOAD_PARQUET)
            cast = t == DUCKDB_TYPE_HUGEINT ? "DECIMAL(38,0)" : rd_emu_pq_supported((duckdb_type)t) ? NULL : "VARCHAR";
        if (u->spec->format != RD_UNLOAD_PARQUET && t == DUCKDB_TYPE_BLOB) {
            rd_buf_puts(b, "lower(hex(");
            append_ident(b, u->cols[i].name);
            rd_buf_puts(b, "))");
        } else if (cast) {
            rd_buf_puts(b, "CAST(");
            append_ident(b, u->cols[i].name);
            rd_buf_printf(b, " AS %s)", cast);
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

/* --- Parquet: the query's rows streamed from DuckDB into the emulator's writer (parquet.h), which writes
 * Redshift's physical forms; each file is published as soon as it is closed. --- */

typedef struct pq_stream {
    unload_ctx *u;
    const char *key_prefix;
    rd_emu_pq_column *cols;
    size_t ncols;
    rd_emu_pq_writer *w; /* the open file's, or NULL */
    rd_buf path;         /* the open file's */
    int slice;           /* the open file's slice */
    int part;            /* the next part number in that slice */
    int64_t written;     /* rows in the files published */
} pq_stream;

static rd_status stream_open(pq_stream *ps, int slice)
{
    unload_ctx *u = ps->u;
    if (ps->slice != slice)
        ps->part = 0;
    ps->slice = slice;
    rd_buf_reset(&ps->path);
    rd_buf_printf(&ps->path, "%s/tmp/unload-%d-%llu.parquet", u->env->data_dir, (int)getpid(),
                  u->env->next_tmp(u->env->ctx));
    return rd_emu_pq_open(&ps->w, rd_buf_cstr(&ps->path), ps->cols, ps->ncols, u->spec->row_group_size, u->err);
}

/* Closes the open file and publishes it as the slice's next part. */
static rd_status stream_publish(pq_stream *ps)
{
    unload_ctx *u = ps->u;
    int64_t rows = rd_emu_pq_rows(ps->w);
    uint64_t size = 0;
    rd_status st = rd_emu_pq_close(ps->w, &size, u->err);
    ps->w = NULL;
    if (st != RD_OK) {
        unlink(rd_buf_cstr(&ps->path));
        return st;
    }
    rd_buf key = RD_BUF_INIT;
    file_key(u, ps->key_prefix, u->spec->parallel ? ps->slice : -1, ps->part++, &key);
    st = publish(u, rd_buf_cstr(&key), rd_buf_cstr(&ps->path), size, rows, u->err);
    rd_buf_free(&key);
    ps->written += rows;
    return st;
}

/* The rows of `SELECT <list> <from>` (rows of them counted before) as Parquet files under key_prefix: with
 * PARALLEL, slice s gets rows [rows*s/slices, rows*(s+1)/slices) in the query's order (the last one any rows
 * beyond the count), each slice's rows in files of at most MAXFILESIZE; *written gets the rows written. */
static rd_status write_parquet(unload_ctx *u, const char *from, const char *key_prefix, int64_t rows,
                               int64_t *written)
{
    rd_buf sql = RD_BUF_INIT;
    rd_buf_puts(&sql, "SELECT ");
    select_list(u, &sql);
    rd_buf_printf(&sql, " %s", from);
    duckdb_prepared_statement prep = NULL;
    duckdb_pending_result pending = NULL;
    duckdb_result res;
    memset(&res, 0, sizeof res);
    int have_res = 0;
    rd_status st = RD_OK;
    const char *derr = NULL;
    if (duckdb_prepare(u->conn, rd_buf_cstr(&sql), &prep) != DuckDBSuccess)
        derr = duckdb_prepare_error(prep);
    else if (duckdb_pending_prepared_streaming(prep, &pending) != DuckDBSuccess)
        derr = duckdb_pending_error(pending);
    else if ((have_res = 1, duckdb_execute_pending(pending, &res) != DuckDBSuccess))
        derr = duckdb_result_error(&res);
    rd_buf_free(&sql);
    pq_stream ps;
    memset(&ps, 0, sizeof ps);
    ps.u = u;
    ps.key_prefix = key_prefix;
    ps.slice = -2;
    rd_buf_init(&ps.path);
    if (!derr) {
        ps.ncols = duckdb_column_count(&res);
        ps.cols = calloc(ps.ncols ? ps.ncols : 1, sizeof *ps.cols);
        if (!ps.cols)
            st = rd_error_set(u->err, RD_E_INTERNAL, "out of memory");
        for (size_t i = 0; st == RD_OK && i < ps.ncols; i++) {
            duckdb_logical_type t = duckdb_column_logical_type(&res, i);
            ps.cols[i].name = duckdb_column_name(&res, i);
            ps.cols[i].type = duckdb_get_type_id(t);
            if (ps.cols[i].type == DUCKDB_TYPE_DECIMAL) {
                ps.cols[i].precision = duckdb_decimal_width(t);
                ps.cols[i].scale = duckdb_decimal_scale(t);
                ps.cols[i].storage = duckdb_decimal_internal_type(t);
            }
            duckdb_destroy_logical_type(&t);
        }
    }
    int slices = u->spec->parallel ? u->env->slices : 1;
    int64_t g = 0; /* the next row's number */
    duckdb_data_chunk ch = NULL;
    while (!derr && st == RD_OK && (ch = duckdb_fetch_chunk(res)) != NULL) {
        idx_t size = duckdb_data_chunk_get_size(ch);
        for (idx_t off = 0; off < size && st == RD_OK;) {
            int s = 0;
            while (s < slices - 1 && g >= rows * (s + 1) / slices)
                s++;
            int64_t end = s == slices - 1 ? INT64_MAX : rows * (s + 1) / slices;
            idx_t n = (int64_t)(size - off) < end - g ? size - off : (idx_t)(end - g);
            if (ps.w && ps.slice != s)
                st = stream_publish(&ps);
            if (st == RD_OK && ps.w && rd_emu_pq_rows(ps.w) > 0) { /* a file that would pass MAXFILESIZE
                                                                      * ends before these rows */
                uint64_t bound = rd_emu_pq_size_bound(ps.w);
                uint64_t more = bound / (uint64_t)rd_emu_pq_rows(ps.w) * n;
                if (bound + more > u->max_size)
                    st = stream_publish(&ps);
            }
            if (st == RD_OK && !ps.w)
                st = stream_open(&ps, s);
            if (st == RD_OK)
                st = rd_emu_pq_write(ps.w, ch, off, n, u->err);
            off += n;
            g += (int64_t)n;
        }
        duckdb_destroy_data_chunk(&ch);
    }
    if (!derr && st == RD_OK && have_res)
        derr = duckdb_result_error(&res); /* a query that failed while it streamed */
    if (derr) {
        char *m = rd_emu_redshift_error(derr);
        st = rd_error_set(u->err, RD_E_REMOTE, "%s", m ? m : "ERROR: UNLOAD failed");
        free(m);
    }
    if (st == RD_OK && ps.w)
        st = stream_publish(&ps);
    if (ps.w) { /* the file of a failure */
        rd_emu_pq_discard(ps.w);
        unlink(rd_buf_cstr(&ps.path));
    }
    if (have_res)
        duckdb_destroy_result(&res);
    duckdb_destroy_pending(&pending);
    duckdb_destroy_prepare(&prep);
    free(ps.cols);
    rd_buf_free(&ps.path);
    if (st == RD_OK)
        *written = ps.written;
    return st;
}

/* Writes rows [off, off+len) of the materialised table, in order, as CSV or text to one temp file; returns
 * its size. A rowid
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

/* The rows [start, start+rows) of the materialised table as PARALLEL says: one run of files, or one per slice
 * in equal shares. */
static rd_status write_group(unload_ctx *u, const char *key_prefix, int64_t start, int64_t rows)
{
    rd_status st = RD_OK;
    if (u->spec->format == RD_UNLOAD_PARQUET) {
        char from[160];
        snprintf(from, sizeof from, "FROM %s WHERE rowid >= %lld AND rowid < %lld", u->table, (long long)start,
                 (long long)(start + rows));
        int64_t written = 0;
        return write_parquet(u, from, key_prefix, rows, &written);
    }
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
    /* Parquet without PARTITION BY: streamed straight from the query, after a count of its rows (for the
     * slices' shares) and a describe of its columns; the rest from the result materialised once. */
    int stream = spec.format == RD_UNLOAD_PARQUET && !spec.partition_count;
    int64_t rows = -1;
    rd_buf_puts(&source, "(");
    rd_buf_puts(&source, rd_buf_cstr(&q));
    rd_buf_puts(&source, "\n) AS rd_q");
    if (stream) {
        rd_buf cnt = RD_BUF_INIT;
        rd_buf_printf(&cnt, "SELECT count(*) FROM %s", rd_buf_cstr(&source));
        st = q_count(&u, rd_buf_cstr(&cnt), &rows);
        rd_buf_free(&cnt);
        if (st != RD_OK || (st = describe(&u, rd_buf_cstr(&source))) != RD_OK)
            goto done;
    } else {
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
    if (stream) {
        rd_buf from = RD_BUF_INIT;
        rd_buf_printf(&from, "FROM %s", rd_buf_cstr(&source));
        st = write_parquet(&u, rd_buf_cstr(&from), spec.prefix, rows, rows_out);
        rd_buf_free(&from);
    } else {
        st = spec.partition_count ? write_partitions(&u) : write_group(&u, spec.prefix, 0, rows);
    }
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
