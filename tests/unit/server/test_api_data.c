/* test_api_data.c — the data calls of the /v1 API in-process (rd_httpd on port 0, a real store, libcurl as the
 * client): the snapshot download whole (bytes and SHA-256 header equal to the file's), one range (206 and its
 * Content-Range), 416, If-Range with another ETag (the whole file), a malformed Range ignored, a viewer allowed,
 * a non-member told nothing (404), no snapshot yet (404 "no data yet"); a download in progress while a newer
 * snapshot replaces the file and unlinks it still gets the old bytes whole; the snapshot's description; the
 * query API in JSON and CSV, its refusals, a burst over max_concurrent queued, and 429 with Retry-After when a
 * slot stays taken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api_test_util.h"

#define DUCKDB_API_NO_DEPRECATED 1
#include <curl/curl.h>
#include <duckdb.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "httpd/httpd.h"
#include "server/api.h"
#include "server/store.h"

typedef struct fixture {
    rd_test_server s;
    char viewer[RD_TOKEN_LEN + 1], outsider[RD_TOKEN_LEN + 1];
    int files;
} fixture;

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void read_all(const char *path, rd_buf *out)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        rd_buf_append(out, buf, n);
    fclose(fp);
}

/* Publishes path as demo's new snapshot; its sha256 into sha. */
static int64_t publish_file(fixture *f, const char *path, const char *tables, char sha[65])
{
    rd_buf b = RD_BUF_INIT;
    read_all(path, &b);
    sha256_hex(b.data, b.len, sha);
    rd_store_snapshot s;
    memset(&s, 0, sizeof s);
    s.project = "demo";
    s.path = (char *)path;
    s.sha256 = sha;
    s.size = b.len;
    s.tables_json = (char *)tables;
    rd_buf_free(&b);
    int64_t id = 0;
    rd_error err;
    rd_error_clear(&err);
    if (rd_store_snapshot_publish(f->s.st, &s, &id, &err) != RD_OK)
        fail_msg("%s", err.message);
    return id;
}

/* A DuckDB file made by sql, published. */
static int64_t publish_db(fixture *f, const char *sql, char path[400], char sha[65])
{
    snprintf(path, 400, "%s/snap-%d.duckdb", f->s.dir, ++f->files);
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
    return publish_file(f, path, "[{\"name\":\"sales\",\"rows\":500}]", sha);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    static const char *const projects[] = { "demo", NULL };
    if (!f || rd_test_server_open(&f->s, "rd-api-data", projects) != 0)
        return -1;
    *state = f;
    rd_test_server_user(&f->s, "vera", "demo", RD_ROLE_VIEWER, 0, f->viewer);
    rd_test_server_user(&f->s, "otto", "demo", RD_ROLE_NONE, 0, f->outsider);
    rd_api_options ao = { 0 };
    ao.query.max_concurrent = 1;
    ao.query.timeout_ms = 1500;
    ao.query.max_rows = 100;
    return rd_test_server_start(&f->s, &ao, 4);
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_test_server_close(&f->s);
    free(f);
    return 0;
}

/* ---- requests -------------------------------------------------------------------------------------------- */

typedef rd_test_answer answer;
#define header rd_test_answer_header
#define answer_free rd_test_answer_free

/* One call with optional extra header lines (NULL-terminated); a->on_first/ctx are kept. */
static long call(const fixture *f, const char *method, const char *path, const char *token, const char *json,
                 const char *const *extra, answer *a)
{
    rd_test_request r = { .method = method, .path = path, .token = token, .content_type = "application/json",
                          .body = json, .extra = extra };
    return rd_test_http(&f->s, &r, a);
}

static const char *error_code(const answer *a, char out[64])
{
    json_t *j = json_loadb(a->body.data ? a->body.data : "", a->body.len, 0, NULL);
    assert_non_null(j);
    snprintf(out, 64, "%s", json_string_value(json_object_get(json_object_get(j, "error"), "code")));
    json_decref(j);
    return out;
}

#define SNAP "/v1/projects/demo/snapshot"
#define QUERY "/v1/projects/demo/query"
#define SALES "CREATE TABLE sales AS SELECT range AS id, 'r' || (range % 5) AS region FROM range(500)"

/* ---- tests ----------------------------------------------------------------------------------------------- */

static void no_snapshot_and_non_member(void **state)
{
    fixture *f = *state;
    answer a = { 0 };
    char code[64];
    assert_int_equal(call(f, "GET", SNAP, f->viewer, NULL, NULL, &a), 404);
    assert_string_equal(error_code(&a, code), "NotFound");
    assert_non_null(strstr(rd_buf_cstr(&a.body), "no data yet"));
    answer_free(&a);
    assert_int_equal(call(f, "POST", QUERY, f->viewer, "{\"sql\":\"SELECT 1\"}", NULL, &a), 404);
    assert_non_null(strstr(rd_buf_cstr(&a.body), "no data yet"));
    answer_free(&a);
    char path[400], sha[65];
    publish_db(f, SALES, path, sha);
    const char *calls[][2] = { { "GET", SNAP }, { "GET", SNAP "/info" }, { "POST", QUERY } };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(call(f, calls[i][0], calls[i][1], f->outsider, "{\"sql\":\"SELECT 1\"}", NULL, &a), 404);
        assert_string_equal(error_code(&a, code), "NotFound");
        assert_null(strstr(rd_buf_cstr(&a.body), "no data"));
        answer_free(&a);
    }
    assert_int_equal(call(f, "PUT", SNAP, f->viewer, NULL, NULL, &a), 405);
    answer_free(&a);
}

static void download_whole_and_ranges(void **state)
{
    fixture *f = *state;
    char path[400], sha[65], h[200], want[200];
    int64_t id = publish_db(f, SALES, path, sha);
    rd_buf file = RD_BUF_INIT;
    read_all(path, &file);
    assert_true(file.len > 1000);
    answer a = { 0 };
    assert_int_equal(call(f, "GET", SNAP, f->viewer, NULL, NULL, &a), 200);
    assert_int_equal(a.body.len, file.len);
    assert_memory_equal(a.body.data, file.data, file.len);
    assert_string_equal(header(&a, "X-Redduck-Sha256", h, sizeof h), sha);
    snprintf(want, sizeof want, "\"%s\"", sha);
    assert_string_equal(header(&a, "ETag", h, sizeof h), want);
    assert_string_equal(header(&a, "Accept-Ranges", h, sizeof h), "bytes");
    assert_string_equal(header(&a, "Content-Type", h, sizeof h), "application/vnd.duckdb");
    assert_string_equal(header(&a, "Cache-Control", h, sizeof h), "no-store");
    snprintf(want, sizeof want, "%lld", (long long)id);
    assert_string_equal(header(&a, "X-Redduck-Snapshot-Id", h, sizeof h), want);
    char got[65];
    sha256_hex(a.body.data, a.body.len, got);
    assert_string_equal(got, sha);
    answer_free(&a);

    /* one range */
    const char *r1[] = { "Range: bytes=100-199", NULL };
    assert_int_equal(call(f, "GET", SNAP, f->viewer, NULL, r1, &a), 206);
    assert_int_equal(a.body.len, 100);
    assert_memory_equal(a.body.data, file.data + 100, 100);
    snprintf(want, sizeof want, "bytes 100-199/%zu", file.len);
    assert_string_equal(header(&a, "Content-Range", h, sizeof h), want);
    answer_free(&a);
    /* the rest from an offset, with the matching If-Range */
    char ir[120], rest[64];
    snprintf(ir, sizeof ir, "If-Range: \"%s\"", sha);
    snprintf(rest, sizeof rest, "Range: bytes=%zu-", file.len - 10);
    const char *r2[] = { rest, ir, NULL };
    assert_int_equal(call(f, "GET", SNAP, f->viewer, NULL, r2, &a), 206);
    assert_int_equal(a.body.len, 10);
    assert_memory_equal(a.body.data, file.data + file.len - 10, 10);
    answer_free(&a);
    /* past the end: 416 */
    snprintf(rest, sizeof rest, "Range: bytes=%zu-", file.len);
    const char *r3[] = { rest, NULL };
    assert_int_equal(call(f, "GET", SNAP, f->viewer, NULL, r3, &a), 416);
    snprintf(want, sizeof want, "bytes */%zu", file.len);
    assert_string_equal(header(&a, "Content-Range", h, sizeof h), want);
    answer_free(&a);
    /* another snapshot's ETag: the whole file */
    const char *r4[] = { "Range: bytes=100-199", "If-Range: \"0000\"", NULL };
    assert_int_equal(call(f, "GET", SNAP, f->viewer, NULL, r4, &a), 200);
    assert_int_equal(a.body.len, file.len);
    answer_free(&a);
    /* malformed: ignored */
    const char *r5[] = { "Range: bytes=5-1", NULL };
    assert_int_equal(call(f, "GET", SNAP, f->viewer, NULL, r5, &a), 200);
    assert_int_equal(a.body.len, file.len);
    answer_free(&a);
    /* the description */
    assert_int_equal(call(f, "GET", SNAP "/info", f->viewer, NULL, NULL, &a), 200);
    json_t *j = json_loadb(a.body.data, a.body.len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), id);
    assert_string_equal(json_string_value(json_object_get(j, "sha256")), sha);
    assert_int_equal(json_integer_value(json_object_get(j, "size")), (json_int_t)file.len);
    assert_non_null(strchr(json_string_value(json_object_get(j, "created_at")), 'T'));
    json_t *t0 = json_array_get(json_object_get(j, "tables"), 0);
    assert_string_equal(json_string_value(json_object_get(t0, "name")), "sales");
    assert_int_equal(json_integer_value(json_object_get(t0, "rows")), 500);
    json_decref(j);
    answer_free(&a);
    rd_buf_free(&file);
}

typedef struct replace_ctx {
    fixture *f;
    const char *old_path;
    char new_path[400];
} replace_ctx;

/* Mid-download: a newer snapshot is published and the old file unlinked (as the scheduler prunes it). */
static void replace_snapshot(void *ud)
{
    replace_ctx *r = ud;
    snprintf(r->new_path, sizeof r->new_path, "%s/newer.bin", r->f->s.dir);
    FILE *fp = fopen(r->new_path, "wb");
    assert_non_null(fp);
    fputs("a newer snapshot", fp);
    fclose(fp);
    char sha[65];
    publish_file(r->f, r->new_path, "[]", sha);
    assert_int_equal(unlink(r->old_path), 0);
}

static void download_survives_replacement(void **state)
{
    fixture *f = *state;
    char path[400], sha[65];
    snprintf(path, sizeof path, "%s/big.bin", f->s.dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint32_t x = 12345;
    for (int i = 0; i < 16 * 1024 * 1024 / 4; i++) { /* 16 MiB, far more than the socket buffers */
        x = x * 1103515245u + 12345u;
        fwrite(&x, 4, 1, fp);
    }
    fclose(fp);
    publish_file(f, path, "[]", sha);
    replace_ctx rc = { .f = f, .old_path = path };
    answer a = { .on_first = replace_snapshot, .ctx = &rc };
    assert_int_equal(call(f, "GET", SNAP, f->viewer, NULL, NULL, &a), 200);
    assert_true(a.first_done);
    assert_int_equal(access(path, F_OK), -1); /* unlinked while the body was in flight */
    assert_int_equal(a.body.len, 16 * 1024 * 1024);
    char got[65];
    sha256_hex(a.body.data, a.body.len, got);
    assert_string_equal(got, sha);
    answer_free(&a);
    /* the next download is the newer snapshot */
    answer b = { 0 };
    assert_int_equal(call(f, "GET", SNAP, f->viewer, NULL, NULL, &b), 200);
    assert_int_equal(b.body.len, strlen("a newer snapshot"));
    answer_free(&b);
}

static void query_json_csv_and_refusals(void **state)
{
    fixture *f = *state;
    char path[400], sha[65], h[64], code[64];
    int64_t id = publish_db(f, SALES, path, sha);
    answer a = { 0 };
    assert_int_equal(call(f, "POST", QUERY, f->viewer,
                          "{\"sql\":\"SELECT region, count(*) AS n FROM sales GROUP BY region ORDER BY region\"}", NULL,
                          &a),
                     200);
    json_t *j = json_loadb(a.body.data, a.body.len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "row_count")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "snapshot_id")), id);
    json_t *r0 = json_array_get(json_object_get(j, "rows"), 0);
    assert_string_equal(json_string_value(json_array_get(r0, 0)), "r0");
    assert_int_equal(json_integer_value(json_array_get(r0, 1)), 100);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "columns"), 1), "name")),
                        "n");
    json_decref(j);
    answer_free(&a);

    assert_int_equal(call(f, "POST", QUERY, f->viewer, "{\"sql\":\"SELECT id FROM sales ORDER BY id\",\"format\":\"csv\"}",
                          NULL, &a),
                     200);
    assert_string_equal(header(&a, "Content-Type", h, sizeof h), "text/csv; charset=utf-8");
    assert_string_equal(header(&a, "X-Redduck-Truncated", h, sizeof h), "true"); /* max_rows 100 of 500 */
    assert_int_equal(strncmp(rd_buf_cstr(&a.body), "id\n0\n1\n2\n", 9), 0);
    size_t lines = 0;
    for (size_t i = 0; i < a.body.len; i++)
        lines += a.body.data[i] == '\n';
    assert_int_equal(lines, 101);
    answer_free(&a);

    const char *bad[][2] = {
        { "{\"sql\":\"INSERT INTO sales VALUES (1, 'x')\"}", "Refused" },
        { "{\"sql\":\"SELECT * FROM read_csv('/etc/passwd')\"}", "Refused" },
        { "{\"sql\":\"SELECT 1; SELECT 2\"}", "Refused" },
        { "{\"sql\":\"SELEC 1\"}", "BadRequest" },
        { "{\"sql\":\"SELECT 1\",\"format\":\"xml\"}", "BadRequest" },
        { "{\"sql\":\"SELECT 1\",\"limit\":1}", "BadRequest" },
        { "{\"sql\":\"SELECT 1\\u0000\"}", "BadRequest" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(call(f, "POST", QUERY, f->viewer, bad[i][0], NULL, &a), 400);
        if (strcmp(error_code(&a, code), bad[i][1]) != 0)
            fail_msg("%s: %s", bad[i][0], rd_buf_cstr(&a.body));
        answer_free(&a);
    }
}

typedef struct slow_query {
    fixture *f;
    long status;
    char code[64];
} slow_query;

static void *slow_main(void *ud)
{
    slow_query *s = ud;
    answer a = { 0 };
    s->status = call(s->f, "POST", QUERY, s->f->viewer,
                     "{\"sql\":\"SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range + b.range = 7\"}",
                     NULL, &a);
    error_code(&a, s->code);
    answer_free(&a);
    return NULL;
}

static void query_busy_and_timeout(void **state)
{
    fixture *f = *state;
    char path[400], sha[65], h[64], code[64];
    publish_db(f, SALES, path, sha);
    slow_query s = { .f = f };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_main, &s), 0);
    /* a connection accepted together with the slow one would wait on its httpd thread: let it start first */
    struct timespec pause = { 0, 300 * 1000000L };
    nanosleep(&pause, NULL);
    int busy = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do { /* until the slow query holds the one slot */
        answer a = { 0 };
        long st = call(f, "POST", QUERY, f->viewer, "{\"sql\":\"SELECT 1\"}", NULL, &a);
        if (st == 429) {
            busy = 1;
            assert_string_equal(header(&a, "Retry-After", h, sizeof h), "1");
            assert_string_equal(error_code(&a, code), "TooManyRequests");
        }
        answer_free(&a);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!busy && now.tv_sec - t0.tv_sec < 5);
    pthread_join(t, NULL);
    if (!busy)
        fail_msg("never busy; the slow query: %ld %s", s.status, s.code);
    assert_int_equal(s.status, 408); /* interrupted after timeout_ms */
    assert_string_equal(s.code, "Timeout");
    answer a = { 0 };
    assert_int_equal(call(f, "POST", QUERY, f->viewer, "{\"sql\":\"SELECT 1\"}", NULL, &a), 200);
    answer_free(&a);
}

/* A burst over the one slot queues for it (each query here takes milliseconds) instead of failing. */
typedef struct quick_query {
    fixture *f;
    long status;
} quick_query;

static void *quick_main(void *ud)
{
    quick_query *q = ud;
    answer a = { 0 };
    q->status = call(q->f, "POST", QUERY, q->f->viewer, "{\"sql\":\"SELECT count(*) FROM sales\"}", NULL, &a);
    answer_free(&a);
    return NULL;
}

static void query_burst_queues(void **state)
{
    fixture *f = *state;
    char path[400], sha[65];
    publish_db(f, SALES, path, sha);
    enum { N = 4 }; /* the fixture allows one query at once */
    pthread_t t[N];
    quick_query q[N];
    for (int i = 0; i < N; i++) {
        q[i] = (quick_query){ .f = f };
        assert_int_equal(pthread_create(&t[i], NULL, quick_main, &q[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(q[i].status, 200);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(no_snapshot_and_non_member, setup, teardown),
        cmocka_unit_test_setup_teardown(download_whole_and_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(download_survives_replacement, setup, teardown),
        cmocka_unit_test_setup_teardown(query_json_csv_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(query_busy_and_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(query_burst_queues, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
