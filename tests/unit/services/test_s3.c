/* test_s3.c — the S3 client (services/s3.c) over a scripted transport: ListObjectsV2 paging with
 * continuation tokens and each object's ETag, DeleteObjects batches of 1000 and a per-key error named,
 * HeadBucket's region, the signed ranged GET with If-Match (rd_s3_prepare_get), and rd_s3_parse_url's rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_transport.h"
#include "services/s3.h"

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_list_follows_continuation_tokens(void **state)
{
    fake_env *e = *state;
    fake_script(&e->f, 200, NULL, NULL,
                "<ListBucketResult><IsTruncated>true</IsTruncated>"
                "<NextContinuationToken>tok/1+=</NextContinuationToken>"
                "<Contents><Key>run/a.parquet</Key><Size>10</Size>"
                "<LastModified>2025-11-24T16:00:00.000Z</LastModified>"
                "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></Contents>"
                "<Contents><Key>run/b.parquet</Key><Size>20</Size></Contents></ListBucketResult>");
    fake_script(&e->f, 200, NULL, NULL,
                "<ListBucketResult><IsTruncated>false</IsTruncated>"
                "<Contents><Key>run/c.parquet</Key><Size>30</Size><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
                "</Contents>"
                /* hostile ETags are dropped, never passed on to an If-Match header */
                "<Contents><Key>run/d.parquet</Key><Size>1</Size><ETag>\"a&#13;&#10;X-Evil: 1\"</ETag></Contents>"
                "<Contents><Key>run/e.parquet</Key><Size>1</Size><ETag>\"000000000000000000000000000000000000000000000000000000000000000000000000000000\"</ETag></Contents>"
                /* 79 bytes fit */
                "<Contents><Key>run/f.parquet</Key><Size>1</Size><ETag>\"11111111111111111111111111111111111111111111111111111111111111111111111111111\"</ETag></Contents>"
                "</ListBucketResult>");
    rd_s3_object_list l = { 0 };
    assert_int_equal(rd_s3_list(&e->c, "stage-bucket", "run/", &l, &e->err), RD_OK);
    assert_int_equal(e->f.calls, 2);
    assert_int_equal(l.count, 6);
    assert_string_equal(l.items[0].key, "run/a.parquet");
    assert_int_equal(l.items[0].size, 10);
    assert_true(l.items[0].last_modified > 0);
    assert_string_equal(l.items[0].etag, "\"9b2cf535f27731c974343645a3985328\"");
    assert_string_equal(l.items[1].etag, "");
    assert_string_equal(l.items[2].key, "run/c.parquet");
    assert_int_equal(l.items[2].size, 30);
    assert_string_equal(l.items[2].etag, "\"3858f62230ac3c915f300c664312c11f-9\"");
    assert_string_equal(l.items[3].key, "run/d.parquet");
    assert_string_equal(l.items[3].etag, "");
    assert_string_equal(l.items[4].etag, ""); /* 80 bytes */
    assert_int_equal(strlen(l.items[5].etag), 79);
    assert_string_equal(e->f.method[0], "GET");
    assert_non_null(strstr(e->f.url[0], "list-type=2"));
    assert_non_null(strstr(e->f.url[0], "prefix=run%2F"));
    assert_null(strstr(e->f.url[0], "continuation-token"));
    /* the second page asks for the token, encoded */
    assert_non_null(strstr(e->f.url[1], "continuation-token=tok%2F1%2B%3D"));
    rd_s3_object_list_free(&l);
}

static void test_delete_batches_of_1000(void **state)
{
    fake_env *e = *state;
    enum { NKEYS = 2500 };
    char **keys = calloc(NKEYS, sizeof *keys);
    for (size_t i = 0; i < NKEYS; i++) {
        keys[i] = malloc(32);
        snprintf(keys[i], 32, "run/part-%04zu", i);
    }
    for (int i = 0; i < 3; i++)
        fake_script(&e->f, 200, NULL, NULL, "<DeleteResult></DeleteResult>");
    size_t deleted = 0;
    assert_int_equal(rd_s3_delete_keys(&e->c, "stage-bucket", (const char *const *)keys, NKEYS, &deleted, &e->err),
                     RD_OK);
    assert_int_equal(deleted, NKEYS);
    assert_int_equal(e->f.calls, 3);
    assert_int_equal(count_of(e->f.body[0], "<Key>"), RD_S3_DELETE_BATCH);
    assert_int_equal(count_of(e->f.body[1], "<Key>"), RD_S3_DELETE_BATCH);
    assert_int_equal(count_of(e->f.body[2], "<Key>"), 500);
    assert_non_null(strstr(e->f.body[0], "<Key>run/part-0000</Key>"));
    assert_non_null(strstr(e->f.body[2], "<Key>run/part-2499</Key>"));
    assert_non_null(strstr(e->f.body[0], "<Quiet>true</Quiet>"));
    assert_string_equal(e->f.method[0], "POST");
    assert_non_null(strstr(e->f.url[0], "delete"));
    for (size_t i = 0; i < NKEYS; i++)
        free(keys[i]);
    free(keys);
}

static void test_delete_names_the_failed_key(void **state)
{
    fake_env *e = *state;
    fake_script(&e->f, 200, NULL, NULL,
                "<DeleteResult><Deleted><Key>run/a</Key></Deleted><Error><Key>run/b</Key><Code>AccessDenied</Code>"
                "<Message>Access Denied</Message></Error></DeleteResult>");
    const char *keys[] = { "run/a", "run/b", "run/c" };
    size_t deleted = 0;
    assert_int_equal(rd_s3_delete_keys(&e->c, "stage-bucket", keys, 3, &deleted, &e->err), RD_E_DENIED);
    assert_int_equal(deleted, 2);
    assert_non_null(strstr(e->err.message, "s3://stage-bucket/run/b"));
    assert_non_null(strstr(e->err.message, "AccessDenied"));
    assert_non_null(strstr(e->err.message, "s3:DeleteObject"));
}

static void test_head_bucket_region(void **state)
{
    fake_env *e = *state;
    char region[64] = "";
    /* the header on success; on a 301 redirect too; without it the client's region */
    fake_script(&e->f, 200, "x-amz-bucket-region", "eu-west-1", NULL);
    assert_int_equal(rd_s3_head_bucket(&e->c, "b1", region, sizeof region, &e->err), RD_OK);
    assert_string_equal(region, "eu-west-1");
    assert_string_equal(e->f.method[0], "HEAD");
    fake_script(&e->f, 301, "x-amz-bucket-region", "ap-south-1", NULL);
    assert_int_equal(rd_s3_head_bucket(&e->c, "b2", region, sizeof region, &e->err), RD_OK);
    assert_string_equal(region, "ap-south-1");
    fake_script(&e->f, 200, NULL, NULL, NULL);
    assert_int_equal(rd_s3_head_bucket(&e->c, "b3", region, sizeof region, &e->err), RD_OK);
    assert_string_equal(region, "us-east-1");
    /* a region that is no region is refused, never used as a hostname */
    fake_script(&e->f, 200, "x-amz-bucket-region", "evil.example.com/", NULL);
    assert_int_equal(rd_s3_head_bucket(&e->c, "b4", region, sizeof region, &e->err), RD_E_REMOTE);
    assert_string_equal(region, "");
    fake_script(&e->f, 404, NULL, NULL, NULL);
    assert_int_equal(rd_s3_head_bucket(&e->c, "b5", region, sizeof region, &e->err), RD_E_NOT_FOUND);
    assert_non_null(strstr(e->err.message, "'b5' does not exist"));
}

/* The Authorization header's SignedHeaders list, for checking what was signed. */
static const char *signed_headers(const rd_headers *h, char *out, size_t len)
{
    const char *auth = rd_headers_get(h, "Authorization");
    const char *p = auth ? strstr(auth, "SignedHeaders=") : NULL;
    assert_non_null(p);
    p += strlen("SignedHeaders=");
    snprintf(out, len, "%.*s", (int)strcspn(p, ","), p);
    return out;
}

static void test_prepare_get_range_and_if_match(void **state)
{
    fake_env *e = *state;
    char sh[512];
    char *url = NULL;
    rd_headers h = RD_HEADERS_INIT;
    /* a range of known length, with If-Match: both signed */
    assert_int_equal(rd_s3_prepare_get(&e->c, "stage-bucket", "run/a b.parquet", 1048576, 1048576, "\"abc-2\"", &url,
                                       &h, &e->err),
                     RD_OK);
    assert_non_null(strstr(url, "/run/a%20b.parquet"));
    assert_string_equal(rd_headers_get(&h, "Range"), "bytes=1048576-2097151");
    assert_string_equal(rd_headers_get(&h, "If-Match"), "\"abc-2\"");
    signed_headers(&h, sh, sizeof sh);
    assert_non_null(strstr(sh, "range"));
    assert_non_null(strstr(sh, "if-match"));
    free(url);
    rd_headers_free(&h);
    /* to the end from an offset; one byte */
    assert_int_equal(rd_s3_prepare_get(&e->c, "stage-bucket", "k", 1000, UINT64_MAX, NULL, &url, &h, &e->err), RD_OK);
    assert_string_equal(rd_headers_get(&h, "Range"), "bytes=1000-");
    assert_null(rd_headers_get(&h, "If-Match"));
    free(url);
    rd_headers_free(&h);
    assert_int_equal(rd_s3_prepare_get(&e->c, "stage-bucket", "k", 0, 1, NULL, &url, &h, &e->err), RD_OK);
    assert_string_equal(rd_headers_get(&h, "Range"), "bytes=0-0");
    free(url);
    rd_headers_free(&h);
    /* the whole object: no Range */
    assert_int_equal(rd_s3_prepare_get(&e->c, "stage-bucket", "k", 0, UINT64_MAX, "\"e\"", &url, &h, &e->err), RD_OK);
    assert_null(rd_headers_get(&h, "Range"));
    assert_string_equal(rd_headers_get(&h, "If-Match"), "\"e\"");
    free(url);
    rd_headers_free(&h);
    /* an empty range, one past 2^64, an ETag that would break the header block: refused, nothing made */
    url = NULL;
    assert_int_equal(rd_s3_prepare_get(&e->c, "stage-bucket", "k", 5, 0, NULL, &url, &h, &e->err), RD_E_USAGE);
    assert_int_equal(rd_s3_prepare_get(&e->c, "stage-bucket", "k", UINT64_MAX - 1, 3, NULL, &url, &h, &e->err),
                     RD_E_USAGE);
    assert_int_equal(rd_s3_prepare_get(&e->c, "stage-bucket", "k", 0, 10, "\"a\"\r\nX-Evil: 1", &url, &h, &e->err),
                     RD_E_USAGE);
    assert_null(url);
    assert_int_equal(h.count, 0);
    assert_int_equal(e->f.calls, 0); /* prepared, never sent */
}

static void test_parse_url_rules(void **state)
{
    (void)state;
    char *bucket = NULL, *prefix = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_s3_parse_url("s3://my-bucket/some/prefix/", &bucket, &prefix, &err), RD_OK);
    assert_string_equal(bucket, "my-bucket");
    assert_string_equal(prefix, "some/prefix/");
    free(bucket);
    free(prefix);
    assert_int_equal(rd_s3_parse_url("s3://my-bucket", &bucket, &prefix, &err), RD_OK);
    assert_string_equal(bucket, "my-bucket");
    assert_string_equal(prefix, "");
    free(bucket);
    free(prefix);
    const char *bad[] = { "my-bucket/x", "http://b/x", "s3://", "s3:///x", "s3://UPPER/x", "s3://a/x/../y",
                          "s3://bucket/./y", "s3://bucket/x\ny", "s3://b/x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bucket = prefix = NULL;
        assert_int_equal(rd_s3_parse_url(bad[i], &bucket, &prefix, &err), RD_E_USAGE);
        assert_null(bucket);
        assert_null(prefix);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FAKE_TEST(test_list_follows_continuation_tokens),
        FAKE_TEST(test_delete_batches_of_1000),
        FAKE_TEST(test_delete_names_the_failed_key),
        FAKE_TEST(test_head_bucket_region),
        FAKE_TEST(test_prepare_get_range_and_if_match),
        cmocka_unit_test(test_parse_url_rules),
    };
    return cmocka_run_group_tests_name("services_s3", tests, NULL, NULL);
}
