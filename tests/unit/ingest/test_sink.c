/* test_sink.c — the Redshift ↔ DuckDB type plan and the sinks: ColumnMetadata → DuckDB types and the
 * encode/decode projections; Data API records stored with exact values; the swap replaces a table only
 * when the row count matches, and any failure (count mismatch, a bad value, closing without commit)
 * leaves the previous table and no staging table behind. Both sink implementations through the vtable: a
 * batch of Parquet files made by DuckDB here, committed with the right and a wrong row count, or aborted
 * (nothing visible). */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_types_and_projections),
        cmocka_unit_test(test_parse_into),
        cmocka_unit_test(test_sink_stores_exact_values_and_swaps_atomically),
        cmocka_unit_test(test_cancel_before_commit_rolls_back),
        cmocka_unit_test(test_duckdb_sink_batches),
        cmocka_unit_test(test_parquet_dir_sink_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
