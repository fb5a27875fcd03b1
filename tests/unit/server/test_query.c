/* test_query.c — the query API's engine on real DuckDB files published as snapshots in a real store: a SELECT's
 * values as JSON (numbers, exact decimals, big integers as strings, ISO dates, hex blobs, nested values) and as
 * CSV; every kind of statement that is not one SELECT refused before it runs, and the functions that read files
 * refused by the configuration; the row limit truncating; the timeout interrupting a long query; the memory
 * limit; a newer snapshot read by the next query and the old instance closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_util.h"

#define DUCKDB_API_NO_DEPRECATED 1
#include <duckdb.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/query.h"
#include "server/store.h"

typedef struct fixture {
    char dir[256];
    char data[300];
    rd_keyring *kr;
    rd_store *st;
    rd_query_engine *e;
    int files;
} fixture;

static void sha256_file(const char *path, char out[65], uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char buf[65536];
    size_t n;
    *size = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
        *size += n;
    }
    fclose(f);
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Creates a DuckDB file running sql, publishes it as demo's new snapshot; returns its id. */
static int64_t publish(fixture *f, const char *sql, const char *tables_json)
{
    char path[400];
    snprintf(path, sizeof path, "%s/snap-%d.duckdb", f->dir, ++f->files);
    duckdb_database db;
    duckdb_connection conn;
    assert_int_equal(duckdb_open(path, &db), DuckDBSuccess);
    assert_int_equal(duckdb_connect(db, &conn), DuckDBSuccess);
    duckdb_result res;
    if (duckdb_query(conn, sql, &res) != DuckDBSuccess)
        fail_msg("%s", duckdb_result_error(&res));
    duckdb_destroy_result(&res);
    duckdb_disconnect(&conn);
    duckdb_close(&db);
    rd_store_snapshot s;
    memset(&s, 0, sizeof s);
    char sha[65];
    sha256_file(path, sha, &s.size);
    s.project = "demo";
    s.path = path;
    s.sha256 = sha;
    s.tables_json = (char *)tables_json;
    int64_t id = 0;
    rd_error err;
    rd_error_clear(&err);
    if (rd_store_snapshot_publish(f->st, &s, &id, &err) != RD_OK)
        fail_msg("%s", err.message);
    return id;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || rd_test_mkdtemp(f->dir, sizeof f->dir, "rd-query") != 0)
        return -1;
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    mkdir(f->data, 0700);
    char kp[400];
    snprintf(kp, sizeof kp, "%s/keyring", f->data);
    rd_error err;
    rd_error_clear(&err);
    int created = 0;
    char admin_tok[RD_TOKEN_LEN + 1];
    int admin = 0;
    if (rd_keyring_open(kp, RD_KEYRING_CREATE, &f->kr, &created, &err) != RD_OK ||
        rd_store_open_sqlite(f->data, f->kr, NULL, &f->st, &err) != RD_OK ||
        rd_store_bootstrap(f->st, admin_tok, &admin, &err) != RD_OK ||
        rd_store_project_create(f->st, "test", "demo", &err) != RD_OK ||
        rd_query_engine_new(&f->e, &err) != RD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_query_engine_free(f->e);
    rd_store_close(f->st);
    rd_keyring_free(f->kr);
    rd_test_rm_tree(f->dir);
    free(f);
    return 0;
}

static const char *SALES = "CREATE TABLE sales AS SELECT range AS id, (range % 7)::INTEGER AS region, "
                           "(range * 1.25)::DECIMAL(12,2) AS amount FROM range(1000);"
                           "CREATE TABLE t (i INTEGER, b BIGINT, d DECIMAL(10,2), s VARCHAR, ok BOOLEAN, dt DATE, "
                           "ts TIMESTAMP, bl BLOB, l INTEGER[], st STRUCT(a INTEGER, b VARCHAR), x DOUBLE, "
                           "m MAP(VARCHAR, INTEGER), h HUGEINT);"
                           "INSERT INTO t VALUES (42, 9007199254740993, 12.34, 'a \"q\", b', true, DATE '2024-01-02', "
                           "TIMESTAMP '2024-01-02 03:04:05', '\\x00\\xFFA'::BLOB, [1, 2, NULL], {'a': 1, 'b': 'x'}, "
                           "0.5, MAP {'k': 7}, 170141183460469231731687303715884105727),"
                           "(NULL, -5, NULL, '', false, NULL, NULL, NULL, [], NULL, -1e300, NULL, 3);";

static const char *TABLES = "[{\"name\":\"sales\",\"rows\":1000},{\"name\":\"t\",\"rows\":2}]";

static rd_status run(fixture *f, const char *sql, rd_query_format fmt, const rd_query_limits *lim,
                     rd_query_result *r, rd_query_failure *why, rd_error *err)
{
    rd_error_clear(err);
    memset(r, 0, sizeof *r);
    return rd_query_run(f->e, f->st, "demo", sql, strlen(sql), fmt, lim, r, why, err);
}

static json_t *run_json(fixture *f, const char *sql, const rd_query_limits *lim, rd_query_result *r)
{
    rd_query_failure why;
    rd_error err;
    if (run(f, sql, RD_QUERY_JSON, lim, r, &why, &err) != RD_OK)
        fail_msg("%s: %s", sql, err.message);
    assert_int_equal(why, RD_QUERY_OK);
    json_error_t je;
    json_t *j = json_loadb(r->body.data, r->body.len, 0, &je);
    if (!j)
        fail_msg("not JSON: %s (%.200s)", je.text, rd_buf_cstr(&r->body));
    return j;
}

static void no_data_before_a_snapshot(void **state)
{
    fixture *f = *state;
    rd_query_result r;
    rd_query_failure why;
    rd_error err;
    assert_int_not_equal(run(f, "SELECT 1", RD_QUERY_JSON, NULL, &r, &why, &err), RD_OK);
    assert_int_equal(why, RD_QUERY_NO_DATA);
    assert_non_null(strstr(err.message, "no data yet"));
}

static void select_values_as_json(void **state)
{
    fixture *f = *state;
    int64_t id = publish(f, SALES, TABLES);
    rd_query_result r;
    json_t *j = run_json(f, "SELECT * FROM t ORDER BY b DESC", NULL, &r);
    assert_int_equal(json_integer_value(json_object_get(j, "snapshot_id")), id);
    assert_int_equal(json_integer_value(json_object_get(j, "row_count")), 2);
    assert_true(json_is_false(json_object_get(j, "truncated")));
    assert_true(json_is_integer(json_object_get(j, "elapsed_ms")));
    json_t *cols = json_object_get(j, "columns");
    assert_int_equal(json_array_size(cols), 13);
    assert_string_equal(json_string_value(json_object_get(json_array_get(cols, 0), "name")), "i");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cols, 0), "type")), "INTEGER");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cols, 2), "type")), "DECIMAL(10,2)");
    json_t *row = json_array_get(json_object_get(j, "rows"), 0);
    assert_int_equal(json_integer_value(json_array_get(row, 0)), 42);
    assert_string_equal(json_string_value(json_array_get(row, 1)), "9007199254740993"); /* past 2^53 */
    assert_string_equal(json_string_value(json_array_get(row, 2)), "12.34");
    assert_string_equal(json_string_value(json_array_get(row, 3)), "a \"q\", b");
    assert_true(json_is_true(json_array_get(row, 4)));
    assert_string_equal(json_string_value(json_array_get(row, 5)), "2024-01-02");
    assert_string_equal(json_string_value(json_array_get(row, 6)), "2024-01-02T03:04:05");
    assert_string_equal(json_string_value(json_array_get(row, 7)), "00ff41");
    json_t *l = json_array_get(row, 8);
    assert_int_equal(json_array_size(l), 3);
    assert_int_equal(json_integer_value(json_array_get(l, 1)), 2);
    assert_true(json_is_null(json_array_get(l, 2)));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(row, 9), "a")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(row, 9), "b")), "x");
    assert_true(json_real_value(json_array_get(row, 10)) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(row, 11), "k")), 7);
    assert_string_equal(json_string_value(json_array_get(row, 12)), "170141183460469231731687303715884105727");
    json_t *row2 = json_array_get(json_object_get(j, "rows"), 1);
    assert_true(json_is_null(json_array_get(row2, 0)));
    assert_int_equal(json_integer_value(json_array_get(row2, 1)), -5);
    assert_string_equal(json_string_value(json_array_get(row2, 3)), "");
    assert_true(json_is_false(json_array_get(row2, 4)));
    assert_int_equal(json_array_size(json_array_get(row2, 8)), 0);
    assert_true(json_real_value(json_array_get(row2, 10)) == -1e300);
    assert_int_equal(json_integer_value(json_array_get(row2, 12)), 3);
    json_decref(j);
    rd_query_result_free(&r);

    /* an aggregate over the table, and the settings the instance runs with */
    j = run_json(f, "SELECT count(*) AS n, sum(amount) AS total, current_setting('enable_external_access') AS ext, "
                    "current_setting('access_mode') AS mode FROM sales", NULL, &r);
    row = json_array_get(json_object_get(j, "rows"), 0);
    assert_int_equal(json_integer_value(json_array_get(row, 0)), 1000);
    assert_string_equal(json_string_value(json_array_get(row, 1)), "624375.00");
    assert_true(json_is_false(json_array_get(row, 2)));
    assert_string_equal(json_string_value(json_array_get(row, 3)), "read_only");
    json_decref(j);
    rd_query_result_free(&r);
}

static void select_values_as_csv(void **state)
{
    fixture *f = *state;
    publish(f, SALES, TABLES);
    rd_query_result r;
    rd_query_failure why;
    rd_error err;
    assert_int_equal(run(f, "SELECT i, s, d, dt FROM t ORDER BY b DESC", RD_QUERY_CSV, NULL, &r, &why, &err), RD_OK);
    assert_string_equal(rd_buf_cstr(&r.body), "i,s,d,dt\n42,\"a \"\"q\"\", b\",12.34,2024-01-02\n,\"\",,\n");
    assert_int_equal(r.row_count, 2);
    assert_false(r.truncated);
    rd_query_result_free(&r);
}

static void refused(fixture *f, const char *sql, rd_query_failure want, const char *word)
{
    rd_query_result r;
    rd_query_failure why = RD_QUERY_OK;
    rd_error err;
    rd_status st = run(f, sql, RD_QUERY_JSON, NULL, &r, &why, &err);
    if (st == RD_OK)
        fail_msg("ran: %s", sql);
    if (why != want)
        fail_msg("%s: failure %d, not %d (%s)", sql, (int)why, (int)want, err.message);
    if (word && !strstr(err.message, word))
        fail_msg("%s: the message does not say %s: %s", sql, word, err.message);
}

static void everything_but_one_select_is_refused(void **state)
{
    fixture *f = *state;
    publish(f, SALES, TABLES);
    char outside[400];
    snprintf(outside, sizeof outside, "ATTACH '%s/other.duckdb' AS o", f->dir);
    char copy[400];
    snprintf(copy, sizeof copy, "COPY sales TO '%s/out.csv'", f->dir);
    char export[400];
    snprintf(export, sizeof export, "EXPORT DATABASE '%s/exp'", f->dir);
    const struct {
        const char *sql, *word;
    } cases[] = {
        { "INSERT INTO sales VALUES (1, 1, 1)", "INSERT" },
        { "UPDATE sales SET region = 0", "UPDATE" },
        { "DELETE FROM sales", "DELETE" },
        { "CREATE TABLE x (i INTEGER)", "CREATE" },
        { "CREATE VIEW v AS SELECT 1", "CREATE" },
        { "DROP TABLE sales", "DROP" },
        { "ALTER TABLE sales ADD COLUMN z INTEGER", "ALTER" },
        { outside, "ATTACH" },
        { "DETACH demo", "DETACH" },
        { copy, "COPY" },
        { export, "EXPORT" },
        { "SET threads = 8", "SET" },
        { "SET enable_external_access = true", "SET" },
        { "RESET threads", "SET" },
        { "PRAGMA table_info('sales')", "PRAGMA" },
        { "CALL pragma_table_info('sales')", "CALL" },
        { "INSTALL httpfs", "INSTALL" },
        { "LOAD httpfs", "LOAD" },
        { "CHECKPOINT", NULL },
        { "VACUUM", "VACUUM" },
        { "BEGIN TRANSACTION", "transaction" },
        { "EXPLAIN SELECT 1", "EXPLAIN" },
        { "SELECT 1; SELECT 2", "2 statements" },
        { "SELECT 1; DROP TABLE sales", "2 statements" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        refused(f, cases[i].sql, RD_QUERY_REFUSED, cases[i].word);
    /* functions that read files: refused by enable_external_access=false */
    refused(f, "SELECT * FROM read_csv('/etc/passwd')", RD_QUERY_REFUSED, "never files");
    refused(f, "SELECT * FROM read_text('/etc/hostname')", RD_QUERY_REFUSED, "never files");
    refused(f, "SELECT * FROM glob('/*')", RD_QUERY_REFUSED, "never files");
    refused(f, "SELECT * FROM read_parquet('/etc/x.parquet')", RD_QUERY_REFUSED, NULL);
    refused(f, "SELECT * FROM read_blob('/etc/hostname')", RD_QUERY_REFUSED, NULL);
    /* a file named as a table: replacement scans are off, so it is no table at all */
    refused(f, "SELECT * FROM '/etc/passwd'", RD_QUERY_BAD_REQUEST, "does not exist");
    /* NUL, empty, syntax */
    rd_query_result r;
    rd_query_failure why;
    rd_error err;
    rd_error_clear(&err);
    assert_int_not_equal(rd_query_run(f->e, f->st, "demo", "SELECT 1\0; DROP TABLE sales", 27, RD_QUERY_JSON, NULL, &r,
                                      &why, &err), RD_OK);
    assert_int_equal(why, RD_QUERY_BAD_REQUEST);
    assert_non_null(strstr(err.message, "NUL"));
    refused(f, "", RD_QUERY_BAD_REQUEST, "empty");
    refused(f, "SELEC 1", RD_QUERY_BAD_REQUEST, "syntax");
    refused(f, "SELECT nosuch FROM sales", RD_QUERY_BAD_REQUEST, NULL);

    /* nothing changed: the table is whole, nothing was written */
    json_t *j = run_json(f, "SELECT count(*) FROM sales", NULL, &r);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(json_object_get(j, "rows"), 0), 0)), 1000);
    json_decref(j);
    rd_query_result_free(&r);
    char p[400];
    snprintf(p, sizeof p, "%s/out.csv", f->dir);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/other.duckdb", f->dir);
    assert_int_not_equal(access(p, F_OK), 0);
}

static void rows_limit_truncates(void **state)
{
    fixture *f = *state;
    publish(f, SALES, TABLES);
    rd_query_limits lim = { .max_rows = 10 };
    rd_query_result r;
    json_t *j = run_json(f, "SELECT id FROM sales ORDER BY id DESC;", &lim, &r);
    assert_int_equal(json_integer_value(json_object_get(j, "row_count")), 10);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_int_equal(json_array_size(json_object_get(j, "rows")), 10);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(json_object_get(j, "rows"), 0), 0)), 999);
    json_decref(j);
    rd_query_result_free(&r);
    lim.max_rows = 1000; /* exactly all: not truncated */
    j = run_json(f, "SELECT id FROM sales", &lim, &r);
    assert_int_equal(json_integer_value(json_object_get(j, "row_count")), 1000);
    assert_true(json_is_false(json_object_get(j, "truncated")));
    json_decref(j);
    rd_query_result_free(&r);
    /* a statement that is no subquery (SHOW) runs as it is, limited while fetching */
    lim.max_rows = 1;
    j = run_json(f, "SHOW TABLES", &lim, &r);
    assert_int_equal(json_integer_value(json_object_get(j, "row_count")), 1);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    rd_query_result_free(&r);
}

static void timeout_interrupts(void **state)
{
    fixture *f = *state;
    publish(f, SALES, TABLES);
    rd_query_limits lim = { .timeout_ms = 300 };
    rd_query_result r;
    rd_query_failure why;
    rd_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rd_status st = run(f, "SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range + b.range = 7",
                       RD_QUERY_JSON, &lim, &r, &why, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_not_equal(st, RD_OK);
    assert_int_equal(why, RD_QUERY_TIMEOUT);
    assert_non_null(strstr(err.message, "longer than 0.3 s"));
    assert_true(t1.tv_sec - t0.tv_sec < 10);
    /* the instance still answers */
    json_t *j = run_json(f, "SELECT 1", NULL, &r);
    json_decref(j);
    rd_query_result_free(&r);
}

static void memory_limit(void **state)
{
    fixture *f = *state;
    publish(f, SALES, TABLES);
    rd_query_limits lim = { .max_memory = "16MB" };
    rd_query_result r;
    rd_query_failure why;
    rd_error err;
    rd_status st = run(f, "SELECT count(DISTINCT s) FROM (SELECT range::VARCHAR || repeat('x', 40) AS s FROM "
                          "range(3000000))", RD_QUERY_JSON, &lim, &r, &why, &err);
    if (st == RD_OK)
        fail_msg("ran within 16MB: %s", rd_buf_cstr(&r.body));
    if (why != RD_QUERY_OUT_OF_MEMORY)
        fail_msg("failure %d: %s", (int)why, err.message);
    assert_non_null(strstr(err.message, "16MB"));
}

static void new_snapshot_is_read(void **state)
{
    fixture *f = *state;
    int64_t a = publish(f, "CREATE TABLE v AS SELECT 1 AS n", "[{\"name\":\"v\",\"rows\":1}]");
    rd_query_result r;
    json_t *j = run_json(f, "SELECT n FROM v", NULL, &r);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(json_object_get(j, "rows"), 0), 0)), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "snapshot_id")), a);
    json_decref(j);
    rd_query_result_free(&r);
    assert_int_equal(rd_query_engine_instances(f->e), 1);
    int64_t b = publish(f, "CREATE TABLE v AS SELECT 2 AS n", "[{\"name\":\"v\",\"rows\":1}]");
    assert_true(b > a);
    j = run_json(f, "SELECT n FROM v", NULL, &r);
    assert_int_equal(json_integer_value(json_array_get(json_array_get(json_object_get(j, "rows"), 0), 0)), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "snapshot_id")), b);
    json_decref(j);
    rd_query_result_free(&r);
    assert_int_equal(rd_query_engine_instances(f->e), 1); /* the old one closed */
}

static void range_header(void **state)
{
    (void)state;
    uint64_t a = 0, b = 0;
    assert_int_equal(rd_range_parse("bytes=0-", 100, &a, &b), RD_RANGE_OK);
    assert_true(a == 0 && b == 99);
    assert_int_equal(rd_range_parse("bytes=10-19", 100, &a, &b), RD_RANGE_OK);
    assert_true(a == 10 && b == 19);
    assert_int_equal(rd_range_parse("bytes=90-1000", 100, &a, &b), RD_RANGE_OK);
    assert_true(a == 90 && b == 99);
    assert_int_equal(rd_range_parse("bytes=100-", 100, &a, &b), RD_RANGE_UNSATISFIABLE);
    assert_int_equal(rd_range_parse("bytes=200-300", 100, &a, &b), RD_RANGE_UNSATISFIABLE);
    assert_int_equal(rd_range_parse(NULL, 100, &a, &b), RD_RANGE_NONE);
    const char *bad[] = { "bytes=-5", "bytes=5-4", "bytes=1-2,4-5", "bytes=x-", "items=1-", "bytes 1-2", "bytes=+1-",
                          "bytes=99999999999999999999-", "", "bytes=", "bytes=1-2x" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (rd_range_parse(bad[i], 100, &a, &b) != RD_RANGE_NONE)
            fail_msg("'%s' was taken", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(no_data_before_a_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(select_values_as_json, setup, teardown),
        cmocka_unit_test_setup_teardown(select_values_as_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(everything_but_one_select_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(rows_limit_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(timeout_interrupts, setup, teardown),
        cmocka_unit_test_setup_teardown(memory_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(new_snapshot_is_read, setup, teardown),
        cmocka_unit_test(range_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
