/* test_sink.c — the Redshift ↔ DuckDB type plan and the sinks: ColumnMetadata → DuckDB types and the
 * encode/decode projections; Data API records stored with exact values; the swap replaces a table only
 * when the row count matches, and any failure (count mismatch, a bad value, closing without commit)
 * leaves the previous table and no staging table behind. Both sink implementations through the vtable: a
 * batch of Parquet files made by DuckDB here, committed with the right and a wrong row count, or aborted
 * (nothing visible); and both physical forms of a Parquet UNLOAD (INT96 / INT64 timestamps,
 * FIXED_LEN_BYTE_ARRAY / INT32 decimals) loading to the same types and values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duckdb.h"
#include "ingest/plan.h"
#include "ingest/sink.h"
#include "test_util.h"

static const char metadata[] =
    "[{\"name\":\"id\",\"typeName\":\"int8\"},{\"name\":\"amount\",\"typeName\":\"numeric\",\"precision\":12,"
    "\"scale\":2},{\"name\":\"at\",\"typeName\":\"time\"},{\"name\":\"tz\",\"typeName\":\"timetz\"},"
    "{\"name\":\"raw\",\"typeName\":\"varbyte\"},{\"name\":\"doc\",\"typeName\":\"super\"},"
    "{\"name\":\"say \\\"hi\\\"\",\"typeName\":\"varchar\"},{\"name\":\"ok\",\"typeName\":\"bool\"},"
    "{\"name\":\"f\",\"typeName\":\"float8\"},{\"name\":\"ts\",\"typeName\":\"timestamptz\"}]";

static void load_plan(rd_plan *p)
{
    json_error_t je;
    json_t *md = json_loads(metadata, 0, &je);
    assert_non_null(md);
    rd_error err;
    assert_int_equal(rd_plan_from_metadata(md, p, &err), RD_OK);
    json_decref(md);
}

static void test_plan_types_and_projections(void **state)
{
    (void)state;
    rd_plan p;
    load_plan(&p);
    assert_int_equal(p.ncols, 10);
    const char *want[] = { "BIGINT", "DECIMAL(12,2)", "TIME", "TIMETZ", "BLOB", "JSON", "VARCHAR", "BOOLEAN",
                           "DOUBLE", "TIMESTAMPTZ" };
    for (size_t i = 0; i < 10; i++)
        assert_string_equal(p.cols[i].duck_type, want[i]);
    assert_true(p.needs_encoding);
    rd_buf b = RD_BUF_INIT;
    assert_int_equal(rd_plan_unload_select(&p, &b), 1);
    assert_string_equal(rd_buf_cstr(&b), "\"id\", \"amount\", cast(\"at\" as varchar) as \"at\", cast(\"tz\" as "
                                         "varchar) as \"tz\", to_hex(\"raw\") as \"raw\", \"doc\", \"say \"\"hi\"\"\", "
                                         "\"ok\", \"f\", \"ts\"");
    rd_buf_reset(&b);
    rd_plan_decode_select(&p, &b);
    assert_non_null(strstr(rd_buf_cstr(&b), "unhex(\"raw\") AS \"raw\""));
    assert_non_null(strstr(rd_buf_cstr(&b), "CAST(\"at\" AS TIME) AS \"at\""));
    assert_non_null(strstr(rd_buf_cstr(&b), "CAST(\"say \"\"hi\"\"\" AS VARCHAR) AS \"say \"\"hi\"\"\""));
    rd_buf_free(&b);
    rd_plan_free(&p);

    /* a plain result needs no projection */
    json_error_t je;
    json_t *md = json_loads("[{\"name\":\"a\",\"typeName\":\"int4\"}]", 0, &je);
    rd_error err;
    assert_int_equal(rd_plan_from_metadata(md, &p, &err), RD_OK);
    rd_buf b2 = RD_BUF_INIT;
    assert_int_equal(rd_plan_unload_select(&p, &b2), 0);
    assert_int_equal(b2.len, 0);
    rd_plan_free(&p);
    json_decref(md);
    /* duplicate names are refused with advice */
    md = json_loads("[{\"name\":\"a\",\"typeName\":\"int4\"},{\"name\":\"a\",\"typeName\":\"int4\"}]", 0, &je);
    assert_int_equal(rd_plan_from_metadata(md, &p, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "aliases"));
    json_decref(md);
}

static void test_parse_into(void **state)
{
    (void)state;
    char *path, *table;
    rd_error err;
    assert_int_equal(rd_sink_parse_into("w.duckdb:sales", "result", &path, &table, &err), RD_OK);
    assert_string_equal(path, "w.duckdb");
    assert_string_equal(table, "sales");
    free(path);
    free(table);
    assert_int_equal(rd_sink_parse_into("dir:x/w.duckdb", "result", &path, &table, &err), RD_OK);
    assert_string_equal(path, "dir:x/w.duckdb");
    assert_string_equal(table, "result");
    free(path);
    free(table);
    assert_int_equal(rd_sink_parse_into("w.duckdb:", "result", &path, &table, &err), RD_E_USAGE);
    assert_int_equal(rd_sink_parse_into(":t", "result", &path, &table, &err), RD_E_USAGE);
    assert_int_equal(rd_sink_parse_into("", "result", &path, &table, &err), RD_E_USAGE);
}

static const char records[] =
    "[[{\"longValue\":1},{\"stringValue\":\"12.34\"},{\"stringValue\":\"01:02:03.5\"},"
    "{\"stringValue\":\"04:05:06+00\"},{\"blobValue\":\"AP8Q\"},{\"stringValue\":\"{\\\"a\\\":1}\"},"
    "{\"stringValue\":\"x'y\"},{\"booleanValue\":true},{\"doubleValue\":0.1},"
    "{\"stringValue\":\"2024-06-30 12:00:00+00\"}],"
    "[{\"longValue\":2},{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},{\"stringValue\":\"00ff10\"},"
    "{\"isNull\":true},{\"isNull\":true},{\"booleanValue\":false},{\"isNull\":true},{\"isNull\":true}]]";

static char *query_text(const char *path, const char *sql)
{
    duckdb_database db;
    duckdb_connection c;
    assert_int_equal(duckdb_open(path, &db), DuckDBSuccess);
    assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
    duckdb_result r;
    char *out = NULL;
    if (duckdb_query(c, sql, &r) == DuckDBSuccess) {
        char *v = duckdb_value_varchar(&r, 0, 0);
        out = strdup(v ? v : "(null)");
        duckdb_free(v);
    } else {
        out = strdup(duckdb_result_error(&r));
    }
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    duckdb_close(&db);
    return out;
}

static void store(const char *path, const rd_plan *p, const char *recs, uint64_t expect, rd_status want_commit)
{
    rd_sink_options o = { .path = path, .table = "t", .threads = 1, .memory = "64MB" };
    rd_sink *s = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_sink_open(&o, p, &s, &err), RD_OK);
    json_error_t je;
    json_t *r = json_loads(recs, 0, &je);
    assert_non_null(r);
    uint64_t rows = 0;
    assert_int_equal(rd_sink_append_records(s, r, &rows, &err), RD_OK);
    assert_int_equal(rows, json_array_size(r));
    json_decref(r);
    rd_status st = rd_sink_commit(s, expect, &err);
    assert_int_equal(st, want_commit);
    if (st != RD_OK)
        assert_non_null(strstr(err.message, "not replaced"));
    rd_sink_close(s);
}

static void test_sink_stores_exact_values_and_swaps_atomically(void **state)
{
    (void)state;
    char dir[] = "/tmp/rd-sink-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/w.duckdb", dir);
    rd_plan p;
    load_plan(&p);

    store(path, &p, records, 2, RD_OK);
    char *v = query_text(path, "select string_agg(concat_ws('|', id, amount, \"at\", tz, hex(raw), doc, \"say \"\"hi\"\"\", "
                               "ok, f, ts), ';' order by id) from t");
    assert_string_equal(v, "1|12.34|01:02:03.5|04:05:06+00|00FF10|{\"a\":1}|x'y|true|0.1|2024-06-30 12:00:00+00;"
                           "2|00FF10|false");
    free(v);

    /* a count that does not match leaves the previous table untouched, and no staging table */
    store(path, &p, "[[{\"longValue\":9},{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},"
                    "{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},{\"isNull\":true}]]",
          5, RD_E_REMOTE);
    v = query_text(path, "select count(*) || ':' || max(id) from t");
    assert_string_equal(v, "2:2");
    free(v);
    v = query_text(path, "select count(*) from information_schema.tables where table_name like '%redduck%'");
    assert_string_equal(v, "0");
    free(v);

    /* a value DuckDB cannot store fails the append; closing without commit changes nothing */
    rd_sink_options o = { .path = path, .table = "t", .threads = 1, .memory = "64MB" };
    rd_sink *s = NULL;
    rd_error err;
    assert_int_equal(rd_sink_open(&o, &p, &s, &err), RD_OK);
    json_error_t je;
    json_t *bad = json_loads("[[{\"longValue\":3},{\"stringValue\":\"not a number\"},{\"isNull\":true},"
                             "{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},"
                             "{\"isNull\":true},{\"isNull\":true},{\"isNull\":true}]]",
                             0, &je);
    assert_int_not_equal(rd_sink_append_records(s, bad, NULL, &err), RD_OK);
    assert_non_null(strstr(err.message, "amount"));
    json_decref(bad);
    rd_sink_close(s);
    v = query_text(path, "select count(*) || ':' || (select count(*) from information_schema.tables) from t");
    assert_string_equal(v, "2:1");
    free(v);

    rd_plan_free(&p);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A signal raised before COMMIT is issued rolls the commit back: the old table stays, no staging table. */
static void test_cancel_before_commit_rolls_back(void **state)
{
    (void)state;
    char dir[] = "/tmp/rd-sink-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/w.duckdb", dir);
    rd_plan p;
    load_plan(&p);
    store(path, &p, records, 2, RD_OK);

    volatile sig_atomic_t flag = 1;
    rd_sink_options o = { .path = path, .table = "t", .threads = 1, .memory = "64MB", .cancel = &flag };
    rd_sink *s = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_sink_open(&o, &p, &s, &err), RD_OK);
    json_error_t je;
    json_t *one = json_loads("[[{\"longValue\":7},{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},"
                             "{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},{\"isNull\":true},"
                             "{\"isNull\":true},{\"isNull\":true}]]",
                             0, &je);
    assert_int_equal(rd_sink_append_records(s, one, NULL, &err), RD_OK);
    json_decref(one);
    assert_int_equal(rd_sink_commit(s, 1, &err), RD_E_CANCELLED);
    assert_string_equal(err.message, "interrupted during commit: rolled back: the old table is unchanged");
    rd_sink_close(s);
    char *v = query_text(path, "select count(*) || ':' || max(id) || ':' || (select count(*) from "
                               "information_schema.tables) from t");
    assert_string_equal(v, "2:2:1");
    free(v);

    rd_plan_free(&p);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- the vtable, both implementations, over Parquet files ---------------------------------------------- */

/* dir/name: n rows (id from first, s = 'r' || id), written by DuckDB. */
static void make_parquet(const char *dir, const char *name, int first, int n)
{
    duckdb_database db;
    duckdb_connection c;
    assert_int_equal(duckdb_open(NULL, &db), DuckDBSuccess);
    assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
    char sql[512];
    snprintf(sql, sizeof sql, "COPY (SELECT range AS id, 'r' || range AS s FROM range(%d, %d)) TO '%s/%s' "
                              "(FORMAT parquet)", first, first + n, dir, name);
    duckdb_result r;
    assert_int_equal(duckdb_query(c, sql, &r), DuckDBSuccess);
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    duckdb_close(&db);
}

static void two_column_plan(rd_plan *p)
{
    json_t *md = json_loads("[{\"name\":\"id\",\"typeName\":\"int8\"},{\"name\":\"s\",\"typeName\":\"varchar\"}]", 0,
                            NULL);
    rd_error err;
    assert_int_equal(rd_plan_from_metadata(md, p, &err), RD_OK);
    json_decref(md);
}

/* Entries of dir: visible ones, or all (hidden ones too). */
static int entries(const char *dir, int all)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && (all || e->d_name[0] != '.'))
            n++;
    closedir(d);
    return n;
}

/* A batch of two files (3 + 2 rows) from src, with or without their row counts. */
static void batch(const char *src, int first, rd_sink_file files[2], char paths[2][256], int counts)
{
    snprintf(paths[0], 256, "%s/in-a-%d.parquet", src, first);
    snprintf(paths[1], 256, "%s/in-b-%d.parquet", src, first);
    make_parquet(src, paths[0] + strlen(src) + 1, first, 3);
    make_parquet(src, paths[1] + strlen(src) + 1, first + 3, 2);
    files[0] = (rd_sink_file){ paths[0], "part_a.parquet", counts ? 3 : RD_SINK_ROWS_UNKNOWN };
    files[1] = (rd_sink_file){ paths[1], "part_b.parquet", counts ? 2 : RD_SINK_ROWS_UNKNOWN };
}

static void test_duckdb_sink_batches(void **state)
{
    (void)state;
    char dir[] = "/tmp/rd-sinkv-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/w.duckdb", dir);
    rd_plan p;
    two_column_plan(&p);
    rd_sink_file files[2];
    char paths[2][256];
    batch(dir, 0, files, paths, 1);
    rd_sink_options o = { .path = path, .table = "t", .threads = 1, .memory = "64MB" };
    rd_error err;

    /* a wrong expected count: refused, nothing committed */
    rd_sink *s = NULL;
    assert_int_equal(rd_sink_open(&o, &p, &s, &err), RD_OK);
    uint64_t rows = 0;
    assert_int_equal(rd_sink_load(s, files, 2, &rows, &err), RD_OK);
    assert_int_equal(rows, 5);
    assert_int_equal(rd_sink_rows(s), 5);
    assert_int_equal(rd_sink_commit(s, 6, &err), RD_E_REMOTE);
    assert_non_null(strstr(err.message, "loaded 5 rows but Redshift reported 6"));
    rd_sink_close(s);
    char *v = query_text(path, "select count(*) from information_schema.tables");
    assert_string_equal(v, "0");
    free(v);

    /* the right count: the table holds the batch */
    assert_int_equal(rd_sink_open(&o, &p, &s, &err), RD_OK);
    assert_int_equal(rd_sink_load(s, files, 2, &rows, &err), RD_OK);
    assert_int_equal(rd_sink_commit(s, 5, &err), RD_OK);
    rd_sink_close(s);
    v = query_text(path, "select count(*) || ':' || sum(id) || ':' || max(s) || ':' || (select count(*) from "
                         "information_schema.tables) from t");
    assert_string_equal(v, "5:10:r4:1");
    free(v);

    /* aborted (closed without commit): the old table, no staging table */
    batch(dir, 100, files, paths, 1);
    assert_int_equal(rd_sink_open(&o, &p, &s, &err), RD_OK);
    assert_int_equal(rd_sink_load(s, files, 2, &rows, &err), RD_OK);
    rd_sink_close(s);
    v = query_text(path, "select count(*) || ':' || max(id) || ':' || (select count(*) from "
                         "information_schema.tables) from t");
    assert_string_equal(v, "5:4:1");
    free(v);

    rd_plan_free(&p);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* DuckDB writes a big load's blocks into the file before COMMIT; the sink has them sent to the disk as they
 * come (core/writeback.h), so that the COMMIT's fsync does not wait for the whole load: the file has no dirty
 * page left well before the commit (left to the kernel they would stay dirty for half a minute). */
static void test_loaded_blocks_reach_the_disk_before_the_commit(void **state)
{
    (void)state;
    char dir[] = "/tmp/rd-sinkw-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/w.duckdb", dir);
    rd_plan p;
    two_column_plan(&p);
    make_parquet(dir, "big.parquet", 0, 3000000);
    char in[256];
    snprintf(in, sizeof in, "%s/big.parquet", dir);
    rd_sink_file f = { in, "big.parquet", 3000000 };
    rd_sink_options o = { .path = path, .table = "t", .threads = 1, .memory = "64MB" };
    rd_error err;
    rd_sink *s = NULL;
    assert_int_equal(rd_sink_open(&o, &p, &s, &err), RD_OK);
    uint64_t rows = 0;
    assert_int_equal(rd_sink_load(s, &f, 1, &rows, &err), RD_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > (8 << 20)); /* the load's blocks are in the file already */
    assert_int_equal(rd_test_clean_within_10s(path), 1); /* needs Linux 6.5+ (cachestat) */
    assert_int_equal(rd_sink_commit(s, 3000000, &err), RD_OK);
    rd_sink_close(s);
    char *v = query_text(path, "select count(*) from t");
    assert_string_equal(v, "3000000");
    free(v);
    rd_plan_free(&p);
    rd_test_rm_tree(dir);
}

static void test_parquet_dir_sink_batches(void **state)
{
    (void)state;
    char dir[] = "/tmp/rd-sinkv-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char out[128];
    snprintf(out, sizeof out, "%s/out", dir);
    rd_sink_file files[2];
    char paths[2][256];
    rd_error err;

    /* a wrong expected count: refused, nothing visible, nothing left behind */
    batch(dir, 0, files, paths, 1);
    rd_sink *s = NULL;
    assert_int_equal(rd_sink_open_dir(out, &s, &err), RD_OK); /* creates out */
    uint64_t rows = 0;
    assert_int_equal(rd_sink_load(s, files, 2, &rows, &err), RD_OK);
    assert_int_equal(rows, 5);
    assert_int_equal(rd_sink_rows(s), 5);
    assert_int_equal(access(paths[0], F_OK), -1); /* taken */
    assert_int_equal(entries(out, 0), 0);         /* staged, not visible */
    assert_int_equal(rd_sink_commit(s, 6, &err), RD_E_REMOTE);
    assert_non_null(strstr(err.message, "hold 5 rows but Redshift reported 6"));
    assert_int_equal(entries(out, 0), 0);
    rd_sink_close(s);
    assert_int_equal(entries(out, 1), 0);

    /* records are not Parquet files */
    assert_int_equal(rd_sink_open_dir(out, &s, &err), RD_OK);
    json_t *recs = json_loads("[[{\"longValue\":1},{\"stringValue\":\"x\"}]]", 0, NULL);
    assert_int_equal(rd_sink_append_records(s, recs, &rows, &err), RD_E_USAGE);
    json_decref(recs);
    rd_sink_close(s);

    /* the right count: the files in place, under their names */
    batch(dir, 0, files, paths, 1);
    assert_int_equal(rd_sink_open_dir(out, &s, &err), RD_OK);
    assert_int_equal(rd_sink_load(s, files, 2, &rows, &err), RD_OK);
    assert_int_equal(rd_sink_commit(s, 5, &err), RD_OK);
    rd_sink_close(s);
    assert_int_equal(entries(out, 1), 2);
    char sql[256];
    snprintf(sql, sizeof sql, "select count(*) || ':' || sum(id) from read_parquet('%s/part_*.parquet')", out);
    char *v = query_text(NULL, sql);
    assert_string_equal(v, "5:10");
    free(v);

    /* aborted: the committed files stay as they were, the staged ones are gone */
    batch(dir, 100, files, paths, 1);
    assert_int_equal(rd_sink_open_dir(out, &s, &err), RD_OK);
    assert_int_equal(rd_sink_load(s, files, 2, &rows, &err), RD_OK);
    rd_sink_close(s);
    assert_int_equal(entries(out, 1), 2);
    v = query_text(NULL, sql);
    assert_string_equal(v, "5:10");
    free(v);

    /* counts unknown (no manifest): the commit cannot check them and keeps the files */
    batch(dir, 200, files, paths, 0);
    assert_int_equal(rd_sink_open_dir(out, &s, &err), RD_OK);
    assert_int_equal(rd_sink_load(s, files, 2, &rows, &err), RD_OK);
    assert_int_equal(rows, 0);
    assert_int_equal(rd_sink_commit(s, 5, &err), RD_OK);
    rd_sink_close(s);
    assert_int_equal(entries(out, 1), 2);
    v = query_text(NULL, sql);
    assert_string_equal(v, "5:1010");
    free(v);

    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- Parquet as Redshift is reported to write it: INT96 timestamps, FIXED_LEN_BYTE_ARRAY decimals ---------- */

/* DuckDB writes neither (INT64 TIMESTAMP_MICROS, INT32/INT64 decimals up to 18 digits), so this file is built
 * here byte by byte: one row group, one PLAIN uncompressed data page per column, Thrift compact metadata. */
typedef struct tbuf {
    unsigned char *p;
    size_t n, cap;
    int16_t last[16]; /* the last field id per struct depth */
    int depth;
} tbuf;

static void put(tbuf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put8(tbuf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}
static void varint(tbuf *b, uint64_t v)
{
    while (v >= 0x80) {
        put8(b, (unsigned)(v & 0x7F) | 0x80);
        v >>= 7;
    }
    put8(b, (unsigned)v);
}
static void zigzag(tbuf *b, int64_t v)
{
    varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
enum { T_I32 = 5, T_I64 = 6, T_BIN = 8, T_LIST = 9, T_STRUCT = 12 };
static void field(tbuf *b, int16_t id, int type)
{
    int16_t delta = (int16_t)(id - b->last[b->depth]);
    assert_true(delta > 0 && delta <= 15);
    put8(b, (unsigned)(delta << 4 | type));
    b->last[b->depth] = id;
}
static void f_i32(tbuf *b, int16_t id, int64_t v)
{
    field(b, id, T_I32);
    zigzag(b, v);
}
static void f_i64(tbuf *b, int16_t id, int64_t v)
{
    field(b, id, T_I64);
    zigzag(b, v);
}
static void f_str(tbuf *b, int16_t id, const char *s)
{
    field(b, id, T_BIN);
    varint(b, strlen(s));
    put(b, s, strlen(s));
}
static void begin(tbuf *b) /* a struct (top level or nested) */
{
    b->last[++b->depth] = 0;
}
static void end(tbuf *b)
{
    put8(b, 0);
    b->depth--;
}
static void f_struct(tbuf *b, int16_t id)
{
    field(b, id, T_STRUCT);
    begin(b);
}
static void f_list(tbuf *b, int16_t id, int elem_type, size_t n)
{
    field(b, id, T_LIST);
    assert_true(n < 15);
    put8(b, (unsigned)(n << 4 | (size_t)elem_type));
}

typedef struct pcol {
    const char *name;
    int type;            /* 1 INT32, 3 INT96, 7 FIXED_LEN_BYTE_ARRAY */
    int type_length;     /* FLBA */
    int optional;
    int decimal_scale;   /* >= 0 with precision: a DECIMAL */
    int decimal_precision;
    const unsigned char *values; /* the non-null values, PLAIN, back to back */
    size_t values_len;
    unsigned defined;    /* bit i: row i is not null (optional columns) */
} pcol;

/* Days from 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_of(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400, doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* An INT96 timestamp: nanoseconds of the day, then the Julian day, little-endian. */
static void int96(unsigned char out[12], int y, int mo, int d, int h, int mi, int sec, int64_t micros)
{
    uint64_t nanos = ((uint64_t)(h * 3600 + mi * 60 + sec) * 1000000u + (uint64_t)micros) * 1000u;
    uint32_t jd = (uint32_t)(days_of(y, mo, d) + 2440588);
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(nanos >> (8 * i));
    for (int i = 0; i < 4; i++)
        out[8 + i] = (unsigned char)(jd >> (8 * i));
}

static void write_forms_parquet(const char *path, const pcol *cols, size_t ncols, int rows)
{
    tbuf f = { 0 };
    put(&f, "PAR1", 4);
    int64_t offsets[8], sizes[8];
    for (size_t c = 0; c < ncols; c++) {
        tbuf data = { 0 };
        if (cols[c].optional) { /* definition levels: bit-packed, width 1, with their 4-byte length */
            unsigned char lv[4] = { 2, 0, 0, 0 };
            put(&data, lv, 4);
            put8(&data, 1 << 1 | 1); /* one group of 8 */
            put8(&data, cols[c].defined & 0xFF);
        }
        put(&data, cols[c].values, cols[c].values_len);
        tbuf h = { 0 };
        begin(&h);
        f_i32(&h, 1, 0); /* DATA_PAGE */
        f_i32(&h, 2, (int64_t)data.n);
        f_i32(&h, 3, (int64_t)data.n);
        f_struct(&h, 5);
        f_i32(&h, 1, rows);
        f_i32(&h, 2, 0); /* PLAIN */
        f_i32(&h, 3, 3); /* RLE */
        f_i32(&h, 4, 3);
        end(&h);
        end(&h);
        offsets[c] = (int64_t)f.n;
        sizes[c] = (int64_t)(h.n + data.n);
        put(&f, h.p, h.n);
        put(&f, data.p, data.n);
        free(h.p);
        free(data.p);
    }
    tbuf m = { 0 };
    begin(&m);
    f_i32(&m, 1, 1);
    f_list(&m, 2, T_STRUCT, ncols + 1);
    begin(&m);
    f_str(&m, 4, "schema");
    f_i32(&m, 5, (int64_t)ncols);
    end(&m);
    for (size_t c = 0; c < ncols; c++) {
        begin(&m);
        f_i32(&m, 1, cols[c].type);
        if (cols[c].type == 7)
            f_i32(&m, 2, cols[c].type_length);
        f_i32(&m, 3, cols[c].optional ? 1 : 0);
        f_str(&m, 4, cols[c].name);
        if (cols[c].decimal_precision) {
            f_i32(&m, 6, 5); /* DECIMAL */
            f_i32(&m, 7, cols[c].decimal_scale);
            f_i32(&m, 8, cols[c].decimal_precision);
        }
        end(&m);
    }
    f_i64(&m, 3, rows);
    f_list(&m, 4, T_STRUCT, 1);
    begin(&m);
    f_list(&m, 1, T_STRUCT, ncols);
    int64_t total = 0;
    for (size_t c = 0; c < ncols; c++) {
        begin(&m);
        f_i64(&m, 2, offsets[c]);
        f_struct(&m, 3);
        f_i32(&m, 1, cols[c].type);
        f_list(&m, 2, T_I32, 2);
        zigzag(&m, 0);
        zigzag(&m, 3);
        f_list(&m, 3, T_BIN, 1);
        varint(&m, strlen(cols[c].name));
        put(&m, cols[c].name, strlen(cols[c].name));
        f_i32(&m, 4, 0); /* UNCOMPRESSED */
        f_i64(&m, 5, rows);
        f_i64(&m, 6, sizes[c]);
        f_i64(&m, 7, sizes[c]);
        f_i64(&m, 9, offsets[c]);
        end(&m);
        end(&m);
        total += sizes[c];
    }
    f_i64(&m, 2, total);
    f_i64(&m, 3, rows);
    end(&m);
    end(&m);
    put(&f, m.p, m.n);
    unsigned char len[4] = { (unsigned char)m.n, (unsigned char)(m.n >> 8), (unsigned char)(m.n >> 16),
                             (unsigned char)(m.n >> 24) };
    put(&f, len, 4);
    put(&f, "PAR1", 4);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(f.p, 1, f.n, out), f.n);
    fclose(out);
    free(m.p);
    free(f.p);
}

/* The ingest reads both forms a Parquet UNLOAD may take: INT96 timestamps (as Redshift is reported to write)
 * and INT64 ones (as DuckDB and the emulator write), FIXED_LEN_BYTE_ARRAY decimals of few digits and INT32
 * ones, into the same DuckDB types and values. */
static void test_both_parquet_forms_load_alike(void **state)
{
    (void)state;
    char dir[] = "/tmp/rd-forms-XXXXXX";
    assert_non_null(mkdtemp(dir));
    unsigned char ids[12] = { 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0 };
    unsigned char ts[24], tz[24];
    int96(ts, 2024, 2, 29, 12, 34, 56, 789012); /* rows 1 and 3; row 2 NULL */
    int96(ts + 12, 1969, 7, 20, 20, 17, 40, 0);
    int96(tz, 2024, 2, 29, 23, 59, 59, 999999); /* rows 1 and 2; row 3 NULL */
    int96(tz + 12, 1900, 1, 1, 0, 0, 0, 1);
    const unsigned char amounts[] = { 0x00, 0x07, 0x5B, 0xCD, 0x15,  /* 1234567.89 */
                                      0xFF, 0xFF, 0xFF, 0xFF, 0xFB }; /* -0.05; row 3 NULL */
    const pcol cols[] = {
        { "id", 1, 0, 0, 0, 0, ids, sizeof ids, 0 },
        { "ts", 3, 0, 1, 0, 0, ts, sizeof ts, 0x5 },
        { "tz", 3, 0, 1, 0, 0, tz, sizeof tz, 0x3 },
        { "amount", 7, 5, 1, 2, 9, amounts, sizeof amounts, 0x3 },
    };
    char redshift_form[256], duckdb_form[256];
    snprintf(redshift_form, sizeof redshift_form, "%s/int96-flba.parquet", dir);
    write_forms_parquet(redshift_form, cols, 4, 3);
    /* the same rows as DuckDB writes them */
    snprintf(duckdb_form, sizeof duckdb_form, "%s/int64-int32.parquet", dir);
    {
        duckdb_database db;
        duckdb_connection c;
        assert_int_equal(duckdb_open(NULL, &db), DuckDBSuccess);
        assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "COPY (SELECT * FROM (VALUES (1, TIMESTAMP '2024-02-29 12:34:56.789012', "
                 "TIMESTAMP '2024-02-29 23:59:59.999999', 1234567.89::DECIMAL(9,2)), (2, NULL, "
                 "TIMESTAMP '1900-01-01 00:00:00.000001', -0.05::DECIMAL(9,2)), (3, TIMESTAMP '1969-07-20 20:17:40', "
                 "NULL, NULL)) v(id, ts, tz, amount)) TO '%s' (FORMAT parquet)", duckdb_form);
        duckdb_result r;
        assert_int_equal(duckdb_query(c, sql, &r), DuckDBSuccess);
        duckdb_destroy_result(&r);
        duckdb_disconnect(&c);
        duckdb_close(&db);
    }
    /* the forms really differ: the physical types as DuckDB's Parquet reader sees them */
    const char *forms[][2] = { { redshift_form, "INT32,INT96,INT96,FIXED_LEN_BYTE_ARRAY" },
                               { duckdb_form, "INT32,INT64,INT64,INT32" } };
    for (int k = 0; k < 2; k++) {
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT string_agg(type, ',' ORDER BY name = 'amount', name = 'tz', name = 'ts') "
                                  "FROM parquet_schema('%s') WHERE type IS NOT NULL", forms[k][0]);
        char *types = query_text(":memory:", sql);
        assert_string_equal(types, forms[k][1]);
        free(types);
    }
    json_t *md = json_loads("[{\"name\":\"id\",\"typeName\":\"int4\"},{\"name\":\"ts\",\"typeName\":\"timestamp\"},"
                            "{\"name\":\"tz\",\"typeName\":\"timestamptz\"},{\"name\":\"amount\",\"typeName\":"
                            "\"numeric\",\"precision\":9,\"scale\":2}]",
                            0, NULL);
    assert_non_null(md);
    rd_plan p;
    rd_error err;
    assert_int_equal(rd_plan_from_metadata(md, &p, &err), RD_OK);
    json_decref(md);
    const char *files[] = { redshift_form, duckdb_form };
    char *seen[2];
    for (int k = 0; k < 2; k++) {
        char path[300];
        snprintf(path, sizeof path, "%s/w%d.duckdb", dir, k);
        rd_sink_options o = { .path = path, .table = "t", .threads = 1, .memory = "64MB" };
        rd_sink *s = NULL;
        assert_int_equal(rd_sink_open(&o, &p, &s, &err), RD_OK);
        rd_sink_file one = { files[k], "0000_part_00.parquet", 3 };
        uint64_t rows = 0;
        if (rd_sink_load(s, &one, 1, &rows, &err) != RD_OK)
            fail_msg("%s: %s", files[k], err.message);
        assert_int_equal(rows, 3);
        assert_int_equal(rd_sink_commit(s, 3, &err), RD_OK);
        rd_sink_close(s);
        seen[k] = query_text(path, "SET TimeZone = 'UTC'; SELECT string_agg(id || '|' || coalesce(ts::VARCHAR, 'null') "
                                   "|| '|' || coalesce(tz::VARCHAR, 'null') || '|' || coalesce(amount::VARCHAR, "
                                   "'null') || '|' || typeof(ts) || '|' || typeof(tz) || '|' || typeof(amount), "
                                   "' ; ' ORDER BY id) FROM t");
    }
    assert_string_equal(seen[0], "1|2024-02-29 12:34:56.789012|2024-02-29 23:59:59.999999+00|1234567.89|TIMESTAMP|"
                                 "TIMESTAMP WITH TIME ZONE|DECIMAL(9,2) ; 2|null|1900-01-01 00:00:00.000001+00|-0.05|"
                                 "TIMESTAMP|TIMESTAMP WITH TIME ZONE|DECIMAL(9,2) ; 3|1969-07-20 20:17:40|null|null|"
                                 "TIMESTAMP|TIMESTAMP WITH TIME ZONE|DECIMAL(9,2)");
    assert_string_equal(seen[1], seen[0]);
    free(seen[0]);
    free(seen[1]);
    rd_plan_free(&p);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_types_and_projections),
        cmocka_unit_test(test_parse_into),
        cmocka_unit_test(test_sink_stores_exact_values_and_swaps_atomically),
        cmocka_unit_test(test_cancel_before_commit_rolls_back),
        cmocka_unit_test(test_duckdb_sink_batches),
        cmocka_unit_test(test_loaded_blocks_reach_the_disk_before_the_commit),
        cmocka_unit_test(test_parquet_dir_sink_batches),
        cmocka_unit_test(test_both_parquet_forms_load_alike),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
