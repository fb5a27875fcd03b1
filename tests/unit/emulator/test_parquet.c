/* test_parquet.c — the emulator's Parquet writer (the files UNLOAD writes), read back by DuckDB's own reader:
 * Redshift's physical forms in the schema (INT96 timestamps, FIXED_LEN_BYTE_ARRAY decimals of the fewest
 * bytes, INT32 INT_16 smallints, UTF-8 strings), every value back as written (NULLs, negative and 38-digit
 * decimals, timestamps before 1970 and with microseconds, strings over a page, booleans), several row groups
 * and pages, and the Snappy streams (long literals and matches, blocks over 64 KiB) that DuckDB decompresses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emulator/redshift/parquet.h"
#include "emulator/redshift/snappy.h"

typedef struct env {
    duckdb_database db;
    duckdb_connection c;
    char dir[64];
    char path[128];
} env;

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    assert_int_equal(duckdb_open(NULL, &e->db), DuckDBSuccess);
    assert_int_equal(duckdb_connect(e->db, &e->c), DuckDBSuccess);
    snprintf(e->dir, sizeof e->dir, "/tmp/rd-test-pq-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->path, sizeof e->path, "%s/out.parquet", e->dir);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    unlink(e->path);
    rmdir(e->dir);
    duckdb_disconnect(&e->c);
    duckdb_close(&e->db);
    free(e);
    return 0;
}

static void exec(env *e, const char *sql)
{
    duckdb_result r;
    if (duckdb_query(e->c, sql, &r) != DuckDBSuccess)
        fail_msg("%s: %s", sql, duckdb_result_error(&r));
    duckdb_destroy_result(&r);
}

static char *one(env *e, const char *sql)
{
    duckdb_result r;
    if (duckdb_query(e->c, sql, &r) != DuckDBSuccess)
        fail_msg("%s: %s", sql, duckdb_result_error(&r));
    char *v = duckdb_value_varchar(&r, 0, 0);
    char *out = strdup(v ? v : "NULL");
    duckdb_free(v);
    duckdb_destroy_result(&r);
    return out;
}

/* Writes the result of sql to e->path with the writer, chunk by chunk (in pieces of `piece` rows, to cover
 * partial chunks), row groups of rg_bytes. */
static void write_query(env *e, const char *sql, uint64_t rg_bytes, idx_t piece)
{
    duckdb_result r;
    if (duckdb_query(e->c, sql, &r) != DuckDBSuccess)
        fail_msg("%s: %s", sql, duckdb_result_error(&r));
    size_t n = duckdb_column_count(&r);
    rd_emu_pq_column cols[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        duckdb_logical_type t = duckdb_column_logical_type(&r, i);
        memset(&cols[i], 0, sizeof cols[i]);
        cols[i].name = duckdb_column_name(&r, i);
        cols[i].type = duckdb_get_type_id(t);
        if (cols[i].type == DUCKDB_TYPE_DECIMAL) {
            cols[i].precision = duckdb_decimal_width(t);
            cols[i].scale = duckdb_decimal_scale(t);
            cols[i].storage = duckdb_decimal_internal_type(t);
        }
        duckdb_destroy_logical_type(&t);
        assert_true(rd_emu_pq_supported(cols[i].type));
    }
    rd_emu_pq_writer *w = NULL;
    rd_error err;
    rd_error_clear(&err);
    unlink(e->path);
    assert_int_equal(rd_emu_pq_open(&w, e->path, cols, n, rg_bytes, &err), RD_OK);
    duckdb_data_chunk ch;
    int64_t rows = 0;
    while ((ch = duckdb_fetch_chunk(r)) != NULL) {
        idx_t size = duckdb_data_chunk_get_size(ch);
        for (idx_t from = 0; from < size; from += piece) {
            idx_t cnt = size - from < piece ? size - from : piece;
            if (rd_emu_pq_write(w, ch, from, cnt, &err) != RD_OK)
                fail_msg("write: %s", err.message);
            rows += (int64_t)cnt;
        }
        duckdb_destroy_data_chunk(&ch);
    }
    assert_int_equal(rd_emu_pq_rows(w), rows);
    uint64_t bound = rd_emu_pq_size_bound(w), size = 0;
    if (rd_emu_pq_close(w, &size, &err) != RD_OK)
        fail_msg("close: %s", err.message);
    assert_true(size > 0 && size <= bound);
    assert_int_equal(access(e->path, F_OK), 0);
    duckdb_destroy_result(&r);
}

#define SRC                                                                                                     \
    "SELECT i, i %% 3 = 0 AS b, CAST(i %% 30000 - 15000 AS SMALLINT) AS s, CAST(i * 7 AS INTEGER) AS n, "        \
    "i * 1000000007 AS big, CAST(i / 7.0 AS REAL) AS r, i / 3.0 AS d, "                                       \
    "CAST((i %% 8000) / 100.0 - 40 AS DECIMAL(4,2)) AS d4, CAST(i * 12.5 - 9999 AS DECIMAL(9,1)) AS d9, "               \
    "CAST(i * 1000.75 - 2e6 AS DECIMAL(18,2)) AS d18, "                                                        \
    "CAST(CASE WHEN i %% 2 = 1 THEN '-' ELSE '' END || i || '1234567890123456789012.0123456789' AS DECIMAL(38,10)) "  \
    "AS d38, "                \
    "CASE WHEN i %% 5 = 0 THEN NULL ELSE 'naïve ' || i || repeat('x', i %% 50) END AS v, "                       \
    "DATE '1969-12-25' + CAST(i %% 1000 AS INTEGER) AS dt, "                                                    \
    "TIMESTAMP '1969-12-31 23:59:58.5' + to_microseconds(i * 123456789) AS ts, "                               \
    "CASE WHEN i %% 7 = 0 THEN NULL ELSE TIMESTAMPTZ '2024-03-10 06:59:59.000001+00' + to_seconds(i) END AS tz " \
    "FROM range(%d) t(i)"

static void test_types_and_values(void **state)
{
    env *e = *state;
    char sql[2048], q[4096];
    snprintf(sql, sizeof sql, SRC, 5000);
    /* row groups of about 64 KiB: several, cut inside chunks written in pieces of 700 rows */
    write_query(e, sql, 64 * 1024, 700);
    snprintf(q, sizeof q,
             "SELECT string_agg(name || ':' || type || coalesce('(' || type_length || ')', '') || ':' || "
             "coalesce(converted_type, '-') || ':' || repetition_type, ',' ORDER BY name) FROM parquet_schema('%s') "
             "WHERE num_children IS NULL", e->path);
    char *v = one(e, q);
    assert_string_equal(v, "b:BOOLEAN:-:OPTIONAL,big:INT64:-:OPTIONAL,d:DOUBLE:-:OPTIONAL,"
                           "d18:FIXED_LEN_BYTE_ARRAY(8):DECIMAL:OPTIONAL,d38:FIXED_LEN_BYTE_ARRAY(16):DECIMAL:OPTIONAL,"
                           "d4:FIXED_LEN_BYTE_ARRAY(2):DECIMAL:OPTIONAL,d9:FIXED_LEN_BYTE_ARRAY(4):DECIMAL:OPTIONAL,"
                           "dt:INT32:DATE:OPTIONAL,i:INT64:-:OPTIONAL,n:INT32:-:OPTIONAL,r:FLOAT:-:OPTIONAL,"
                           "s:INT32:INT_16:OPTIONAL,ts:INT96:-:OPTIONAL,tz:INT96:-:OPTIONAL,v:BYTE_ARRAY:UTF8:OPTIONAL");
    free(v);
    snprintf(q, sizeof q, "SELECT count(*) > 2 FROM parquet_metadata('%s') WHERE column_id = 0", e->path);
    v = one(e, q);
    assert_string_equal(v, "true"); /* several row groups */
    free(v);
    /* statistics: null counts of every column; min and max of the integers, per row group */
    snprintf(q, sizeof q,
             "SELECT string_agg(path_in_schema || ':' || nulls || ':' || coalesce(lo, '-') || ':' || coalesce(hi, '-'), "
             "',' ORDER BY path_in_schema) FROM (SELECT path_in_schema, sum(stats_null_count) AS nulls, "
             "min(stats_min_value::BIGINT)::VARCHAR AS lo, max(stats_max_value::BIGINT)::VARCHAR AS hi FROM "
             "parquet_metadata('%s') WHERE path_in_schema IN ('i', 's', 'n', 'big', 'v', 'tz') GROUP BY 1)",
             e->path);
    v = one(e, q);
    assert_string_equal(v, "big:0:0:4999000034993,i:0:0:4999,n:0:0:34993,s:0:-15000:-10001,tz:715:-:-,v:1000:-:-");
    free(v);
    snprintf(q, sizeof q,
             "SELECT (SELECT min(stats_min_value::DATE) || '|' || max(stats_max_value::DATE) FROM parquet_metadata('%s') "
             "WHERE path_in_schema = 'dt') = (SELECT min(dt) || '|' || max(dt) FROM read_parquet('%s'))", e->path,
             e->path);
    v = one(e, q);
    assert_string_equal(v, "true"); /* a DATE's range read back as dates */
    free(v);
    snprintf(q, sizeof q,
             "SELECT count(*) || '|' || count(*) FILTER (WHERE lo <> coalesce(prev + 1, 0)) FROM (SELECT "
             "stats_min_value::BIGINT AS lo, lag(stats_max_value::BIGINT) OVER (ORDER BY row_group_id) AS prev FROM "
             "parquet_metadata('%s') WHERE path_in_schema = 'i')", e->path);
    v = one(e, q);
    if (atoi(v) < 3 || strcmp(strchr(v, '|'), "|0") != 0)
        fail_msg("row groups' ranges of i not contiguous: %s", v);
    free(v);
    snprintf(q, sizeof q, "SELECT string_agg(DISTINCT compression, ',') FROM parquet_metadata('%s')", e->path);
    v = one(e, q);
    assert_string_equal(v, "SNAPPY");
    free(v);
    /* DuckDB's types: INT96 reads as TIMESTAMP, each decimal with its precision and scale */
    snprintf(q, sizeof q,
             "SELECT typeof(s) || ',' || typeof(d4) || ',' || typeof(d38) || ',' || typeof(ts) || ',' || typeof(tz) "
             "FROM read_parquet('%s') LIMIT 1", e->path);
    v = one(e, q);
    assert_string_equal(v, "SMALLINT,DECIMAL(4,2),DECIMAL(38,10),TIMESTAMP,TIMESTAMP");
    free(v);
    /* every value, both ways (TIMESTAMPTZ compared in UTC microseconds) */
    snprintf(q, sizeof q,
             "SELECT (SELECT count(*) FROM read_parquet('%s')) || '|' || (SELECT count(*) FROM ("
             "SELECT i, b, s, n, big, r, d, d4, d9, d18, d38, v, dt, ts, epoch_us(tz) FROM (" SRC ") "
             "EXCEPT SELECT i, b, s, n, big, r, d, d4, d9, d18, d38, v, dt, ts, epoch_us(tz) FROM read_parquet('%s'))) "
             "|| '|' || (SELECT count(*) FROM read_parquet('%s') WHERE v IS NULL OR tz IS NULL)",
             e->path, 5000, e->path, e->path);
    v = one(e, q);
    assert_string_equal(v, "5000|0|1572"); /* NULLs: 1000 in v, 715 in tz, 143 rows in both */
    free(v);
}

/* Strings over a page and over Snappy's 64 KiB blocks: random bytes (literals of every length), runs
 * (matches of 64 and more), and a mix; DuckDB's reader decompresses each page and checks its length. */
static void test_long_strings_and_snappy(void **state)
{
    env *e = *state;
    exec(e, "CREATE TABLE ls AS SELECT i, CASE i % 4 "
            "WHEN 0 THEN repeat('abcdefgh', 40000 + i) "
            "WHEN 1 THEN (SELECT string_agg(chr(65 + CAST(random() * 50 AS INTEGER)), '') FROM range(200000 + i)) "
            "WHEN 2 THEN repeat('z', i) || md5(i::VARCHAR) || repeat('0123456789', 7000) "
            "ELSE '' END AS v FROM range(24) t(i)");
    write_query(e, "SELECT i, v FROM ls ORDER BY i", 0, 2048);
    char q[1024];
    snprintf(q, sizeof q,
             "SELECT (SELECT count(*) FROM read_parquet('%s')) || '|' || (SELECT count(*) FROM (SELECT i, v FROM ls "
             "EXCEPT SELECT i, v FROM read_parquet('%s')))",
             e->path, e->path);
    char *v = one(e, q);
    assert_string_equal(v, "24|0");
    free(v);
    snprintf(q, sizeof q,
             "SELECT sum(total_compressed_size) < sum(total_uncompressed_size) / 2 FROM parquet_metadata('%s')",
             e->path);
    v = one(e, q);
    assert_string_equal(v, "true"); /* the repeated strings compress */
    free(v);

    /* the compressor alone: a stream's length preamble, and incompressible input within its bound */
    uint8_t in[1000], out[1300];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 2654435761u >> 13);
    size_t n = rd_emu_snappy_compress(in, sizeof in, out);
    assert_true(n <= rd_emu_snappy_max_compressed(sizeof in));
    assert_int_equal(out[0], (1000 & 0x7F) | 0x80);
    assert_int_equal(out[1], 1000 >> 7);
    n = rd_emu_snappy_compress(in, 0, out);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 0);
}

/* An empty file (no rows) is still a valid Parquet file with the schema, and so is one whose columns hold
 * NULLs only; a file that cannot be created fails naming why. */
static void test_empty_and_refusals(void **state)
{
    env *e = *state;
    write_query(e, "SELECT CAST(NULL AS INTEGER) AS a, 'x' AS b FROM range(0)", 0, 2048);
    char q[512];
    snprintf(q, sizeof q, "SELECT count(*) || '|' || (SELECT count(*) FROM parquet_schema('%s')) FROM read_parquet('%s')",
             e->path, e->path);
    char *v = one(e, q);
    assert_string_equal(v, "0|3");
    free(v);
    /* columns of NULLs only (no values at all in their pages), beside one with values */
    write_query(e, "SELECT CAST(NULL AS INTEGER) AS a, CAST(NULL AS VARCHAR) AS s, CAST(NULL AS BOOLEAN) AS t, "
                   "range AS i FROM range(10)", 0, 2048);
    snprintf(q, sizeof q, "SELECT count(*) || '|' || count(a) || '|' || count(s) || '|' || count(t) || '|' || sum(i) "
             "FROM read_parquet('%s')", e->path);
    v = one(e, q);
    assert_string_equal(v, "10|0|0|0|45");
    free(v);
    rd_emu_pq_column c = { .name = "a", .type = DUCKDB_TYPE_INTEGER };
    rd_emu_pq_writer *w = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_not_equal(rd_emu_pq_open(&w, e->path, &c, 1, 0, &err), RD_OK); /* exists: O_EXCL */
    assert_null(w);
    assert_non_null(strstr(err.message, "could not create"));
    c.type = DUCKDB_TYPE_INTERVAL;
    assert_false(rd_emu_pq_supported(c.type));
    unlink(e->path);
    assert_int_not_equal(rd_emu_pq_open(&w, e->path, &c, 1, 0, &err), RD_OK);
    assert_int_not_equal(access(e->path, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_types_and_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_strings_and_snappy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
