/* test_transfer.c — parallel resumable downloads against the real emulator (in-process, loopback) with
 * seeded faults: connection resets mid-body, truncated bodies and SlowDown answers must all end with
 * byte-identical files; a missing object fails with an error naming it. And the same downloader on a
 * scripted fake transport (no server): a reset mid-body resumed with a Range request, SlowDown retried,
 * a 403 not retried and named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "emulator/emulator_internal.h"
#include "emulator/s3/s3_store.h"
#include "ingest/transfer.h"
#include "redduck/buf.h"
#include "redduck/emulator.h"
#include "redduck/sigv4.h"

#define NFILES 24

typedef struct fixture {
    char dir[64];
    rd_emulator *emu;
    char base[128];
    unsigned char digests[NFILES][32];
    uint64_t sizes[NFILES];
    char names[NFILES][64];
    char paths[NFILES][128];
    rd_transfer_item items[NFILES];
    int done_calls;
} fixture;

static void sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

static rd_status presign(void *ctx, const rd_transfer_item *item, uint64_t offset, char **url, rd_headers *h,
                         rd_error *err)
{
    fixture *f = ctx;
    char u[512];
    snprintf(u, sizeof u, "%s/redduck-staging/%s", f->base, item->name);
    rd_sigv4_params p = { "s3", "us-east-1", time(NULL), "test", "test", NULL, 1, 0, 0, 0 };
    rd_sigv4_request r = { "GET", u, NULL, NULL, 0, NULL };
    rd_status st = rd_sigv4_presign_url(&p, &r, 300, url, NULL, err);
    if (st == RD_OK && offset > 0) {
        char range[64];
        snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)offset);
        rd_headers_add(h, "Range", range);
    }
    return st;
}

static rd_status on_done(void *ctx, const rd_transfer_item *item, rd_status st, const rd_error *err)
{
    (void)item;
    (void)err;
    fixture *f = ctx;
    if (st == RD_OK)
        f->done_calls++;
    return RD_OK;
}

static fixture *setup(const char *faults)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rd-transfer-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char data[128];
    snprintf(data, sizeof data, "%s/data", f->dir);
    rd_emulator_options o = { 0 };
    o.data_dir = data;
    o.faults = faults;
    o.seed = 7;
    o.threads = 4;
    o.log_stream = stderr;
    rd_error err;
    rd_error_clear(&err);
    if (rd_emulator_start(&o, &f->emu, &err) != RD_OK)
        fail_msg("emulator: %s", err.message);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", rd_emulator_port(f->emu));
    srand(11);
    for (int i = 0; i < NFILES; i++) {
        size_t size = i == 0 ? 0 : (size_t)(rand() % (3 * 1024 * 1024));
        unsigned char *buf = malloc(size + 1);
        for (size_t j = 0; j < size; j++)
            buf[j] = (unsigned char)rand();
        snprintf(f->names[i], sizeof f->names[i], "stage/0%03d_part_00.parquet", i);
        assert_int_equal(rd_s3_store_put_data(f->emu->store, "redduck-staging", f->names[i], buf, size, NULL, NULL, NULL),
                         0);
        sha256(buf, size, f->digests[i]);
        f->sizes[i] = size;
        free(buf);
        snprintf(f->paths[i], sizeof f->paths[i], "%s/file-%d", f->dir, i);
        f->items[i].name = f->names[i];
        f->items[i].expected_size = size;
        f->items[i].local_path = f->paths[i];
    }
    return f;
}

static void teardown(fixture *f)
{
    rd_emulator_stop(f->emu);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

static void check_files(fixture *f)
{
    for (int i = 0; i < NFILES; i++) {
        FILE *fp = fopen(f->paths[i], "rb");
        assert_non_null(fp);
        unsigned char *buf = malloc(f->sizes[i] + 1);
        assert_int_equal(fread(buf, 1, f->sizes[i] + 1, fp), f->sizes[i]);
        fclose(fp);
        unsigned char d[32];
        sha256(buf, f->sizes[i], d);
        free(buf);
        if (memcmp(d, f->digests[i], 32) != 0)
            fail_msg("file %d differs", i);
    }
}

static void test_clean_transfer(void **state)
{
    (void)state;
    fixture *f = setup(NULL);
    rd_transfer_options o = { 0 };
    o.concurrency = 8;
    o.sign = presign;
    o.sign_ctx = f;
    o.done = on_done;
    o.done_ctx = f;
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(f->items, NFILES, &o, &stats, &err), RD_OK);
    assert_int_equal(stats.files, NFILES);
    assert_int_equal(f->done_calls, NFILES);
    assert_int_equal(stats.retries, 0);
    check_files(f);
    teardown(f);
}

static void test_faults_resume_to_identical_files(void **state)
{
    (void)state;
    fixture *f = setup("s3.get.reset=0.3,s3.get.truncate=0.2,s3.get.slowdown=0.15");
    rd_transfer_options o = { 0 };
    o.concurrency = 8;
    o.max_attempts = 40;
    o.backoff_base_ms = 5;
    o.sign = presign;
    o.sign_ctx = f;
    o.done = on_done;
    o.done_ctx = f;
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(f->items, NFILES, &o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(stats.files, NFILES);
    assert_true(stats.retries > 0);
    assert_true(stats.resumes > 0); /* broken bodies continued with Range requests */
    check_files(f);
    teardown(f);
}

static void test_missing_object_fails_naming_it(void **state)
{
    (void)state;
    fixture *f = setup(NULL);
    f->items[5].name = "stage/nope.parquet";
    rd_transfer_options o = { 0 };
    o.concurrency = 4;
    o.sign = presign;
    o.sign_ctx = f;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(f->items, NFILES, &o, NULL, &err), RD_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "stage/nope.parquet"));
    assert_non_null(strstr(err.message, "NoSuchKey"));
    teardown(f);
}

/* A full disk is not the network: the first ENOSPC ends the transfer, naming the directory and the way out,
 * instead of ten retries reported as curl's "Failure writing output to destination". */
static void test_full_disk_fails_at_once(void **state)
{
    (void)state;
    fixture *f = setup(NULL);
    int big = 1;
    while (f->sizes[big] < 65536)
        big++;
    f->items[big].local_path = "/dev/full"; /* every write: ENOSPC */
    rd_transfer_options o = { 0 };
    o.concurrency = 1;
    o.backoff_base_ms = 5;
    o.sign = presign;
    o.sign_ctx = f;
    o.disk_full_hint = "free space or lower --max-local-bytes";
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(&f->items[big], 1, &o, &stats, &err), RD_E_IO);
    assert_string_equal(err.message, "No space left on device on /dev: free space or lower --max-local-bytes");
    assert_int_equal(stats.retries, 0);
    teardown(f);
}

/* --- the downloader on a scripted fake transport ------------------------------------------------------ */

enum fake_action { FAKE_FULL, FAKE_RESET_AT_1000, FAKE_SLOWDOWN, FAKE_FORBIDDEN };
#define FAKE_CALLS 8
#define FAKE_SIZE 4000

typedef struct fake_s3 {
    rd_http_transport base;
    unsigned char object[FAKE_SIZE];
    enum fake_action script[FAKE_CALLS];
    int n, calls;
    char range[FAKE_CALLS][64]; /* the Range header of each call, "" without */
    char url[FAKE_CALLS][256];
} fake_s3;

/* Hands data to the request's sink as libcurl does. */
static rd_status fake_deliver(const rd_http_request *req, rd_http_response *resp, const void *data, size_t len,
                              rd_error *err)
{
    if (!req->on_body)
        return rd_buf_append(&resp->body, data, len);
    if (req->on_body(req->on_body_ctx, data, len) != len)
        return rd_error_set(err, RD_E_IO, "receiving from fake: the local sink refused the data");
    return RD_OK;
}

static rd_status fake_send(rd_http_transport *t, const rd_http_request *req, rd_http_response *resp, rd_error *err)
{
    fake_s3 *f = (fake_s3 *)t;
    int i = f->calls++;
    assert_true(i < f->n);
    assert_string_equal(req->method, "GET");
    const char *range = rd_headers_get(req->headers, "Range");
    snprintf(f->range[i], sizeof f->range[i], "%s", range ? range : "");
    snprintf(f->url[i], sizeof f->url[i], "%s", req->url);
    size_t from = 0;
    if (range)
        assert_int_equal(sscanf(range, "bytes=%zu-", &from), 1);
    assert_true(from <= FAKE_SIZE);
    switch (f->script[i]) {
    case FAKE_SLOWDOWN: {
        static const char body[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
                                   "<Message>Please reduce your request rate.</Message></Error>";
        resp->status = 503;
        return fake_deliver(req, resp, body, sizeof body - 1, err);
    }
    case FAKE_FORBIDDEN: {
        static const char body[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>"
                                   "<Message>Access Denied</Message></Error>";
        resp->status = 403;
        return fake_deliver(req, resp, body, sizeof body - 1, err);
    }
    case FAKE_RESET_AT_1000:
        resp->status = range ? 206 : 200;
        assert_true(from < 1000);
        if (fake_deliver(req, resp, f->object + from, 1000 - from, err) != RD_OK)
            return RD_E_IO;
        return rd_error_set(err, RD_E_NETWORK, "GET fake: Connection reset by peer");
    case FAKE_FULL:
    default:
        resp->status = range ? 206 : 200;
        return fake_deliver(req, resp, f->object + from, FAKE_SIZE - from, err);
    }
}

static void fake_destroy(rd_http_transport *t)
{
    (void)t;
}

static const rd_http_transport_vtable fake_vt = { fake_send, fake_destroy };

static rd_status fake_sign(void *ctx, const rd_transfer_item *item, uint64_t offset, char **url, rd_headers *h,
                           rd_error *err)
{
    (void)ctx;
    (void)err;
    rd_buf u = RD_BUF_INIT;
    rd_buf_printf(&u, "https://bucket.s3.us-east-1.amazonaws.com/%s", item->name);
    *url = rd_buf_detach(&u);
    if (offset > 0) {
        char range[64];
        snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)offset);
        rd_headers_add(h, "Range", range);
    }
    return RD_OK;
}

typedef struct fake_fixture {
    fake_s3 http;
    char dir[64];
    char path[128];
    rd_transfer_item item;
    rd_transfer_options o;
} fake_fixture;

static fake_fixture *fake_setup(const enum fake_action *script, int n)
{
    fake_fixture *f = calloc(1, sizeof *f);
    f->http.base.vt = &fake_vt;
    for (int i = 0; i < FAKE_SIZE; i++)
        f->http.object[i] = (unsigned char)(i * 7 + 3);
    memcpy(f->http.script, script, (size_t)n * sizeof *script);
    f->http.n = n;
    snprintf(f->dir, sizeof f->dir, "/tmp/rd-transfer-fake-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/obj", f->dir);
    f->item.name = "stage/0000_part_00.parquet";
    f->item.expected_size = FAKE_SIZE;
    f->item.local_path = f->path;
    f->o.http = &f->http.base;
    f->o.backoff_base_ms = 1;
    f->o.sign = fake_sign;
    return f;
}

static void fake_teardown(fake_fixture *f)
{
    unlink(f->path);
    rmdir(f->dir);
    free(f);
}

static void fake_check_file(const fake_fixture *f)
{
    unsigned char buf[FAKE_SIZE + 1];
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(buf, 1, sizeof buf, fp), FAKE_SIZE);
    fclose(fp);
    assert_memory_equal(buf, f->http.object, FAKE_SIZE);
}

static void test_fake_reset_resumes_with_range(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_RESET_AT_1000, FAKE_FULL };
    fake_fixture *f = fake_setup(script, 2);
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(f->http.calls, 2);
    assert_string_equal(f->http.range[0], "");
    assert_string_equal(f->http.range[1], "bytes=1000-"); /* continued, not started over */
    assert_string_equal(f->http.url[1], "https://bucket.s3.us-east-1.amazonaws.com/stage/0000_part_00.parquet");
    assert_int_equal(stats.files, 1);
    assert_int_equal(stats.retries, 1);
    assert_int_equal(stats.resumes, 1);
    assert_int_equal(stats.bytes, FAKE_SIZE);
    fake_check_file(f);
    fake_teardown(f);
}

static void test_fake_slowdown_is_retried(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_SLOWDOWN, FAKE_SLOWDOWN, FAKE_FULL };
    fake_fixture *f = fake_setup(script, 3);
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(f->http.calls, 3);
    assert_string_equal(f->http.range[2], ""); /* the error bodies did not reach the file */
    assert_int_equal(stats.retries, 2); /* attempts 2 and 3 */
    assert_int_equal(stats.resumes, 0);
    fake_check_file(f);
    fake_teardown(f);
}

static void test_fake_slowdown_gives_up_after_max_attempts(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_SLOWDOWN, FAKE_SLOWDOWN, FAKE_SLOWDOWN };
    fake_fixture *f = fake_setup(script, 3);
    f->o.max_attempts = 3;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_REMOTE);
    assert_int_equal(f->http.calls, 3);
    assert_string_equal(err.message,
                        "downloading stage/0000_part_00.parquet failed after 3 attempts: HTTP 503 SlowDown");
    fake_teardown(f);
}

static void test_fake_forbidden_is_not_retried(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_FORBIDDEN, FAKE_FULL };
    fake_fixture *f = fake_setup(script, 2);
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_DENIED);
    assert_int_equal(f->http.calls, 1);
    assert_string_equal(err.message, "downloading stage/0000_part_00.parquet failed after 1 attempt: HTTP 403 "
                                     "AccessDenied — the identity needs s3:GetObject on this object");
    fake_teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_transfer),
        cmocka_unit_test(test_faults_resume_to_identical_files),
        cmocka_unit_test(test_missing_object_fails_naming_it),
        cmocka_unit_test(test_full_disk_fails_at_once),
        cmocka_unit_test(test_fake_reset_resumes_with_range),
        cmocka_unit_test(test_fake_slowdown_is_retried),
        cmocka_unit_test(test_fake_slowdown_gives_up_after_max_attempts),
        cmocka_unit_test(test_fake_forbidden_is_not_retried),
    };
    return cmocka_run_group_tests_name("transfer", tests, NULL, NULL);
}
