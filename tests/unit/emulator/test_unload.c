/* test_unload.c — UNLOAD through the Data API into a real S3 store: file naming per slice, Parquet read
 * back by DuckDB with exact values (TIMESTAMPTZ as INT96 UTC), the manifest, MAXFILESIZE splitting, the empty
 * result, Redshift's refusals (outer LIMIT, TIME in Parquet, non-empty prefix) with ALLOWOVERWRITE and
 * CLEANPATH, and Parquet streamed from the query into the emulator's own writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>

#include "engine_test_util.h"

static int setup(void **state)
{
    *state = env_new(2);
    return 0;
}

static int teardown(void **state)
{
    env_free(*state);
    return 0;
}

/* Runs an UNLOAD; returns the final status; *error (malloc'd or NULL) gets the Error. */
static char *unload(test_env *e, const char *sql, char **error)
{
    char id[48];
    run_sql_wait(e, sql, id);
    json_t *d = describe_id(e, id);
    char *st = strdup(jget_str(d, "Status"));
    const char *er = jget_str(d, "Error");
    if (error)
        *error = er ? strdup(er) : NULL;
    json_decref(d);
    return st;
}

static size_t list_keys(test_env *e, const char *prefix, char keys[][128], size_t max)
{
    rd_s3_listing l;
    rd_emu_error err;
    assert_int_equal(rd_s3_store_list(e->store, "unload-bucket", prefix, NULL, NULL, 1000, &l, &err), 0);
    size_t n = l.object_count < max ? l.object_count : max;
    for (size_t i = 0; i < n; i++)
        snprintf(keys[i], 128, "%s", l.objects[i].key);
    rd_s3_listing_free(&l);
    return n;
}

/* Copies an object out of the store to a local file (path written to out). */
static void fetch(test_env *e, const char *key, char out[300])
{
    int fd;
    rd_s3_object_info info;
    rd_emu_error err;
    assert_int_equal(rd_s3_store_open_object(e->store, "unload-bucket", key, &fd, &info, &err), 0);
    snprintf(out, 300, "%s/fetched-%zu", e->dir, strlen(key) + (size_t)rand());
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        assert_int_equal(write(o, buf, (size_t)n), n);
    close(o);
    close(fd);
    rd_s3_object_info_free(&info);
}

static char *duck_one(const char *sql)
{
    duckdb_database db;
    duckdb_connection c;
    assert_int_equal(duckdb_open(NULL, &db), DuckDBSuccess);
    assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
    duckdb_result r;
    if (duckdb_query(c, sql, &r) != DuckDBSuccess)
        fail_msg("%s: %s", sql, duckdb_result_error(&r));
    char *v = duckdb_value_varchar(&r, 0, 0);
    char *out = strdup(v ? v : "NULL");
    duckdb_free(v);
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    duckdb_close(&db);
    return out;
}

/* The two slices' part files and the manifest an UNLOAD to key prefix wrote (nothing else under it), fetched
 * into local files p0, p1 and man. */
static void fetch_parts(test_env *e, const char *prefix, char *p0, char *p1, char *man)
{
    char keys[16][128], want[3][160];
    size_t n = list_keys(e, prefix, keys, 16);
    assert_int_equal(n, 3);
    snprintf(want[0], sizeof want[0], "%s0000_part_00.parquet", prefix);
    snprintf(want[1], sizeof want[1], "%s0001_part_00.parquet", prefix);
    snprintf(want[2], sizeof want[2], "%smanifest", prefix);
    char *out[3] = { p0, p1, man };
    for (int i = 0; i < 3; i++) {
        assert_string_equal(keys[i], want[i]);
        fetch(e, keys[i], out[i]);
    }
}

static void test_parquet_files_and_manifest(void **state)
{
    test_env *e = *state;
    char id[48];
    run_sql_wait(e, "CREATE TABLE src AS SELECT range AS id, CAST(range * 1.25 AS DECIMAL(12,2)) AS amount, "
                    "CASE WHEN range % 2 = 0 THEN 'it''s' ELSE 'naïve' END AS label, "
                    "TIMESTAMPTZ '2024-03-10 06:59:59+00' + to_seconds(range) AS ts FROM range(100)", id);
    char *err = NULL;
    char *st = unload(e, "UNLOAD ('SELECT * FROM src WHERE label <> ''x'' ORDER BY id') TO 's3://unload-bucket/out/sales_' "
                         "IAM_ROLE 'arn:aws:iam::000000000000:role/unload' FORMAT AS PARQUET MANIFEST VERBOSE", &err);
    if (strcmp(st, "FINISHED") != 0)
        fail_msg("UNLOAD: %s %s", st, err ? err : "");
    free(st);
    free(err);
    char p0[300], p1[300], man[300];
    fetch_parts(e, "out/sales_", p0, p1, man);
    char keys[16][128];
    size_t n;
    char sql[1200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) || '|' || sum(id) || '|' || sum(amount) || '|' || count(*) FILTER (WHERE label = 'it''s') "
             "|| '|' || min(ts)::VARCHAR || '|' || typeof(min(ts)) FROM read_parquet(['%s', '%s'])", p0, p1);
    char *v = duck_one(sql);
    assert_string_equal(v, "100|4950|6187.50|50|2024-03-10 06:59:59|TIMESTAMP"); /* INT96, as Redshift writes it */
    free(v);
    snprintf(sql, sizeof sql, "SELECT max(id) FROM read_parquet('%s')", p0);
    v = duck_one(sql);
    assert_string_equal(v, "49"); /* the first slice holds the first half, in order */
    free(v);
    json_error_t jerr;
    json_t *m = json_load_file(man, 0, &jerr);
    assert_non_null(m);
    json_t *entries = json_object_get(m, "entries");
    assert_int_equal(json_array_size(entries), 2);
    assert_string_equal(jget_str(json_array_get(entries, 0), "url"), "s3://unload-bucket/out/sales_0000_part_00.parquet");
    json_int_t rows = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *meta = json_object_get(json_array_get(entries, i), "meta");
        rows += json_integer_value(json_object_get(meta, "record_count"));
        assert_true(json_integer_value(json_object_get(meta, "content_length")) > 0);
    }
    assert_int_equal(rows, 100);
    json_t *elements = json_object_get(json_object_get(m, "schema"), "elements");
    assert_int_equal(json_array_size(elements), 4);
    assert_string_equal(jget_str(json_array_get(elements, 1), "name"), "amount");
    assert_string_equal(jget_str(json_object_get(json_array_get(elements, 1), "type"), "base"), "numeric");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "meta"), "record_count")), 100);
    json_decref(m);

    /* the same prefix again: refused, then ALLOWOVERWRITE, then CLEANPATH removes a stray file */
    st = unload(e, "UNLOAD ('SELECT * FROM src') TO 's3://unload-bucket/out/sales_' IAM_ROLE default PARQUET", &err);
    assert_string_equal(st, "FAILED");
    assert_string_equal(err, "ERROR: Specified unload destination on S3 is not empty. Consider using a different bucket "
                             "/ prefix, manually removing the target files in S3, or using the ALLOWOVERWRITE option.");
    free(st);
    free(err);
    st = unload(e, "UNLOAD ('SELECT * FROM src') TO 's3://unload-bucket/out/sales_' IAM_ROLE default PARQUET ALLOWOVERWRITE",
                &err);
    assert_string_equal(st, "FINISHED");
    free(st);
    free(err);
    rd_emu_error rerr;
    assert_int_equal(rd_s3_store_put_data(e->store, "unload-bucket", "out/sales_stale.csv", "x", 1, NULL, NULL, &rerr),
                     0);
    st = unload(e, "UNLOAD ('SELECT * FROM src') TO 's3://unload-bucket/out/sales_' IAM_ROLE default PARQUET CLEANPATH", &err);
    assert_string_equal(st, "FINISHED");
    free(st);
    free(err);
    n = list_keys(e, "out/", keys, 16);
    assert_int_equal(n, 2); /* the manifest and the stray file are gone */
    assert_string_equal(keys[0], "out/sales_0000_part_00.parquet");
}

static void test_refusals_and_empty(void **state)
{
    test_env *e = *state;
    char *err = NULL;
    char *st = unload(e, "UNLOAD ('select * from range(10) limit 5') TO 's3://unload-bucket/lim/' IAM_ROLE 'r' PARQUET", &err);
    assert_string_equal(st, "FAILED");
    assert_string_equal(err, "ERROR: Limit clause is not supported in the outermost select of an UNLOAD statement");
    free(st);
    free(err);
    st = unload(e, "UNLOAD ('select * from (select * from range(10) limit 5)') TO 's3://unload-bucket/lim/' IAM_ROLE 'r' "
                   "PARQUET", &err);
    assert_string_equal(st, "FINISHED");
    free(st);
    free(err);
    st = unload(e, "UNLOAD ('select TIME ''01:02:03'' AS t') TO 's3://unload-bucket/time/' IAM_ROLE 'r' PARQUET", &err);
    assert_string_equal(st, "FAILED");
    assert_non_null(strstr(err, "PARQUET"));
    assert_non_null(strstr(err, "\"t\""));
    free(st);
    free(err);
    st = unload(e, "UNLOAD ('select 1 AS x where false') TO 's3://unload-bucket/empty/' IAM_ROLE 'r' PARQUET MANIFEST", &err);
    assert_string_equal(st, "FINISHED");
    free(st);
    free(err);
    char keys[4][128];
    assert_int_equal(list_keys(e, "empty/", keys, 4), 0);
    st = unload(e, "UNLOAD ('select 1') TO 's3://no-such-bucket/x/' IAM_ROLE 'r' PARQUET", &err);
    assert_string_equal(st, "FAILED");
    assert_non_null(strstr(err, "NoSuchBucket"));
    free(st);
    free(err);
}

static void test_split_and_csv(void **state)
{
    test_env *e = *state;
    char *err = NULL;
    /* ~19 MB of incompressible text, serial, split at 5 MB */
    char *st = unload(e, "UNLOAD ('SELECT range AS i, md5(range::VARCHAR) || md5((range * 7)::VARCHAR) AS h "
                         "FROM range(300000) ORDER BY i') TO 's3://unload-bucket/big/part_' IAM_ROLE 'r' "
                         "FORMAT PARQUET PARALLEL OFF MAXFILESIZE 5 MB MANIFEST",
                      &err);
    if (strcmp(st, "FINISHED") != 0)
        fail_msg("UNLOAD: %s %s", st, err ? err : "");
    free(st);
    free(err);
    char keys[64][128];
    size_t n = list_keys(e, "big/", keys, 64);
    assert_true(n >= 5);
    char paths[64][300];
    rd_buf list = RD_BUF_INIT;
    for (size_t i = 0; i + 1 < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "big/part_%03zu.parquet", i);
        assert_string_equal(keys[i], want);
        rd_s3_object_info info;
        rd_emu_error rerr;
        assert_int_equal(rd_s3_store_head(e->store, "unload-bucket", keys[i], &info, &rerr), 0);
        assert_true(info.size <= 5u * 1024 * 1024);
        rd_s3_object_info_free(&info);
        fetch(e, keys[i], paths[i]);
        rd_buf_printf(&list, "%s'%s'", i ? ", " : "", paths[i]);
    }
    assert_string_equal(keys[n - 1], "big/part_manifest");
    char sql[8192];
    snprintf(sql, sizeof sql, "SELECT count(*) || '|' || sum(i) || '|' || count(DISTINCT h) FROM read_parquet([%s])",
             rd_buf_cstr(&list));
    rd_buf_free(&list);
    char *v = duck_one(sql);
    assert_string_equal(v, "300000|44999850000|300000");
    free(v);

    /* CSV: no suffix, quoting as CSV, VARBYTE as hex, HEADER */
    st = unload(e, "UNLOAD ('SELECT 1 AS n, ''a,b'' AS s, ''ab''::VARBYTE AS b') TO 's3://unload-bucket/csv/x_' "
                   "IAM_ROLE 'r' CSV HEADER PARALLEL OFF",
                &err);
    assert_string_equal(st, "FINISHED");
    free(st);
    free(err);
    n = list_keys(e, "csv/", keys, 4);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0], "csv/x_000");
    char p[300];
    fetch(e, keys[0], p);
    FILE *f = fopen(p, "r");
    char line1[128] = "", line2[128] = "";
    assert_non_null(fgets(line1, sizeof line1, f));
    assert_non_null(fgets(line2, sizeof line2, f));
    fclose(f);
    assert_string_equal(line1, "n,s,b\n");
    assert_string_equal(line2, "1,\"a,b\",6162\n");
}

/* An UNLOAD that must finish: fails the test with the statement's error otherwise. */
static void unload_ok(test_env *e, const char *sql)
{
    char *err = NULL;
    char *st = unload(e, sql, &err);
    if (strcmp(st, "FINISHED") != 0)
        fail_msg("UNLOAD: %s %s", st, err ? err : "");
    free(st);
    free(err);
}

/* A result streamed from its query (no materialised copy): a file per slice, rows in order across the files,
 * exact values and shares, the manifest's counts from the files; PARALLEL OFF one file. */
static void test_one_pass(void **state)
{
    test_env *e = *state;
    unload_ok(e, "UNLOAD ('SELECT 149999 - range AS id, CAST(149999 - range AS DECIMAL(12,2)) / 4 AS q, "
                 "''r'' || (149999 - range) AS s FROM range(150000)') TO 's3://unload-bucket/one/x_' "
                 "IAM_ROLE 'r' FORMAT PARQUET MANIFEST");
    char *err = NULL, *st;
    char p0[300], p1[300], man[300];
    fetch_parts(e, "one/x_", p0, p1, man);
    char keys[16][128];
    size_t n;
    char sql[1200];
    snprintf(sql, sizeof sql,
             "SELECT count(*) || '|' || sum(id) || '|' || CAST(sum(q) * 4 AS BIGINT) || '|' || count(*) FILTER (WHERE s = 'r' || id) || "
             "'|' || bool_and(id = 149999 - file_row_number) FROM read_parquet('%s', file_row_number = true)", p0);
    char *first = duck_one(sql);
    snprintf(sql, sizeof sql, "SELECT count(*) || '|' || max(id) || '|' || min(id) FROM read_parquet('%s')", p1);
    char *second = duck_one(sql);
    /* the first file holds the highest ids, in the query's order; the second the rest, below them */
    long long n0 = atoll(first), n1 = atoll(second);
    assert_int_equal(n0 + n1, 150000);
    /* the rows stream from the query into the emulator's writer: each slice gets its exact share */
    assert_int_equal(n0, 75000);
    char want[128];
    snprintf(want, sizeof want, "%lld|%lld|0", n1, 149999 - n0);
    assert_string_equal(second, want);
    long long sum0 = 0;
    for (long long i = 150000 - n0; i < 150000; i++)
        sum0 += i;
    snprintf(want, sizeof want, "%lld|%lld|%lld|%lld|true", n0, sum0, sum0, n0);
    assert_string_equal(first, want);
    free(first);
    free(second);
    json_error_t jerr;
    json_t *m = json_load_file(man, 0, &jerr);
    assert_non_null(m);
    json_t *entries = json_object_get(m, "entries");
    assert_int_equal(json_array_size(entries), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(entries, 0), "meta"),
                                                        "record_count")), n0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(entries, 1), "meta"),
                                                        "record_count")), n1);
    json_decref(m);

    /* an ORDER BY keeps its order across the slices' files (the materialised path: exact halves) */
    st = unload(e, "UNLOAD ('SELECT range AS id FROM range(150000) ORDER BY id DESC') TO 's3://unload-bucket/ord/x_' "
                   "IAM_ROLE 'r' FORMAT PARQUET",
                &err);
    assert_string_equal(st, "FINISHED");
    free(st);
    free(err);
    n = list_keys(e, "ord/", keys, 16);
    assert_int_equal(n, 2);
    fetch(e, keys[0], p0);
    fetch(e, keys[1], p1);
    snprintf(sql, sizeof sql, "SELECT count(*) || '|' || bool_and(id = 149999 - file_row_number) FROM "
             "read_parquet('%s', file_row_number = true)", p0);
    char *v = duck_one(sql);
    assert_string_equal(v, "75000|true");
    free(v);
    snprintf(sql, sizeof sql, "SELECT count(*) || '|' || bool_and(id = 74999 - file_row_number) FROM "
             "read_parquet('%s', file_row_number = true)", p1);
    v = duck_one(sql);
    assert_string_equal(v, "75000|true");
    free(v);

    st = unload(e, "UNLOAD ('SELECT range AS id FROM range(150000)') TO 's3://unload-bucket/off/x_' IAM_ROLE 'r' "
                   "FORMAT PARQUET PARALLEL OFF",
                &err);
    assert_string_equal(st, "FINISHED");
    free(st);
    free(err);
    n = list_keys(e, "off/", keys, 16);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0], "off/x_000.parquet");
    fetch(e, keys[0], p0);
    snprintf(sql, sizeof sql, "SELECT count(*) || '|' || bool_and(id = file_row_number) FROM read_parquet('%s', "
             "file_row_number = true)", p0);
    v = duck_one(sql);
    assert_string_equal(v, "150000|true");
    free(v);
}

/* A small result, streamed as a big one is: each slice holds
 * its exact share, rows*s/slices onwards, in the query's order; the manifest counts them; a result of one
 * row leaves the first slice without a file; a column named like an emulator's internal one keeps its
 * values. */
static void test_small_exact_shares(void **state)
{
    test_env *e = *state;
    unload_ok(e, "UNLOAD ('SELECT 9 - range AS id, ''r'' || range AS s FROM range(7)') TO "
                 "'s3://unload-bucket/small/x_' IAM_ROLE 'r' FORMAT PARQUET MANIFEST");
    char p0[300], p1[300], man[300];
    fetch_parts(e, "small/x_", p0, p1, man);
    char keys[16][128];
    size_t n;
    char sql[1200];
    snprintf(sql, sizeof sql, "SELECT string_agg(id::VARCHAR || s, ',' ORDER BY file_row_number) || '|' || "
             "string_agg(column_name, ',') FILTER (WHERE file_row_number = 0) FROM read_parquet('%s', "
             "file_row_number = true), (SELECT string_agg(name, ',') AS column_name FROM parquet_schema('%s') "
             "WHERE type IS NOT NULL)", p0, p0);
    char *v = duck_one(sql);
    assert_string_equal(v, "9r0,8r1,7r2|id,s"); /* 7 * 1 / 2 = 3 rows; no slice column in the file */
    free(v);
    snprintf(sql, sizeof sql, "SELECT string_agg(id::VARCHAR || s, ',' ORDER BY file_row_number) FROM "
             "read_parquet('%s', file_row_number = true)", p1);
    v = duck_one(sql);
    assert_string_equal(v, "6r3,5r4,4r5,3r6");
    free(v);
    json_error_t jerr;
    json_t *m = json_load_file(man, 0, &jerr);
    assert_non_null(m);
    json_t *entries = json_object_get(m, "entries");
    assert_int_equal(json_array_size(entries), 2);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(entries, i), "meta"),
                                                            "record_count")), i == 0 ? 3 : 4);
    json_decref(m);

    unload_ok(e, "UNLOAD ('SELECT 42 AS id') TO 's3://unload-bucket/one-row/x_' IAM_ROLE 'r' FORMAT PARQUET");
    n = list_keys(e, "one-row/", keys, 16);
    assert_int_equal(n, 1);
    assert_string_equal(keys[0], "one-row/x_0001_part_00.parquet");

    unload_ok(e, "UNLOAD ('SELECT range AS rd_unload_slice FROM range(5)') TO 's3://unload-bucket/named/x_' "
                 "IAM_ROLE 'r' FORMAT PARQUET");
    n = list_keys(e, "named/", keys, 16);
    assert_int_equal(n, 2);
    fetch(e, keys[1], p1);
    snprintf(sql, sizeof sql, "SELECT string_agg(rd_unload_slice::VARCHAR, ',' ORDER BY file_row_number) FROM "
             "read_parquet('%s', file_row_number = true)", p1);
    v = duck_one(sql);
    assert_string_equal(v, "2,3,4");
    free(v);
}

/* A query that fails deep in its stream (a cast of row 140000, after the count of its rows succeeded): the
 * statement FAILED with DuckDB's reason in Redshift's form, no manifest, and no file of the failing slice; the
 * temporary directory holds nothing of it. */
static void test_fails_mid_stream(void **state)
{
    test_env *e = *state;
    char *err = NULL;
    char *st = unload(e, "UNLOAD ('SELECT range AS id, CAST(CASE WHEN range < 140000 THEN range::VARCHAR ELSE ''x'' "
                         "END AS INTEGER) AS v FROM range(150000)') TO 's3://unload-bucket/bad/x_' IAM_ROLE 'r' "
                         "FORMAT PARQUET MANIFEST",
                &err);
    assert_string_equal(st, "FAILED");
    assert_non_null(err);
    if (strncmp(err, "ERROR: ", 7) != 0 || !strstr(err, "'x'"))
        fail_msg("the error does not give the reason: %s", err);
    free(st);
    free(err);
    char keys[16][128];
    size_t n = list_keys(e, "bad/", keys, 16);
    for (size_t i = 0; i < n; i++)
        if (strstr(keys[i], "manifest") || strstr(keys[i], "0001_part"))
            fail_msg("a failed UNLOAD left %s", keys[i]);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/tmp", e->dir);
    DIR *d = opendir(tmp);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                fail_msg("a failed UNLOAD left %s in the temporary directory", de->d_name);
        closedir(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parquet_files_and_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_and_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_exact_shares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fails_mid_stream, setup, teardown),
    };
    return cmocka_run_group_tests_name("unload", tests, NULL, NULL);
}
