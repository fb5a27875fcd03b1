/* test_s3_post.c — S3 PostObject's parts driven directly: the multipart/form-data reader (framing, limits,
 * what follows the file), ${filename}, the POST policy's every outcome (expiration forms, eq / starts-with /
 * content-length-range, the Content-Type list, unreadable conditions, extra fields), and whole requests
 * through the router (unsigned at the header level) into a real store with the default identity: the object
 * kept with its content type and metadata, a wrong signature refused with nothing stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emulator/router.h"
#include "emulator/s3/s3_post.h"
#include "emulator/s3/s3_store.h"

#define CT "multipart/form-data; boundary=BnD"

/* A form body: name/value pairs (NULL-terminated), then the file (filename, data) unless file_data is NULL. */
static void form_body(rd_buf *b, const char *filename, const char *file_data, ...)
{
    va_list ap;
    va_start(ap, file_data);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        rd_buf_printf(b, "--BnD\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n", name, value);
    }
    va_end(ap);
    if (file_data)
        rd_buf_printf(b,
                      "--BnD\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                      "Content-Type: application/octet-stream\r\n\r\n%s\r\n",
                      filename, file_data);
    rd_buf_puts(b, "--BnD--\r\n");
}

static int parse(const char *ct, const char *body, size_t len, rd_emu_s3_post_form *f, rd_emu_error *e)
{
    memset(e, 0, sizeof *e);
    return rd_emu_s3_post_form_parse(ct, body, len, f, e);
}

static void expect_malformed(const char *ct, const char *body)
{
    rd_emu_s3_post_form f;
    rd_emu_error e;
    assert_int_equal(parse(ct, body, strlen(body), &f, &e), -1);
    assert_int_equal(e.http_status, 400);
    assert_string_equal(e.code, "MalformedPOSTRequest");
    assert_string_equal(e.message, "The body of your POST request is not well-formed multipart/form-data.");
}

static void test_form_parse(void **state)
{
    (void)state;
    rd_buf b = RD_BUF_INIT;
    form_body(&b, "C:\\Users\\ana\\photo.png", "bin\r\n-BnD x--BnD--\r\n", "key", "up/${filename}", "X-Amz-Meta-Tag",
              "a\"b", NULL);
    rd_emu_s3_post_form f;
    rd_emu_error e;
    assert_int_equal(parse(CT, b.data, b.len, &f, &e), 0);
    assert_int_equal(f.count, 2);
    assert_string_equal(rd_emu_s3_post_form_get(&f, "KEY"), "up/${filename}"); /* names compare without case */
    assert_string_equal(rd_emu_s3_post_form_get(&f, "x-amz-meta-tag"), "a\"b");
    assert_null(rd_emu_s3_post_form_get(&f, "policy"));
    assert_true(f.has_file);
    assert_string_equal(f.filename, "photo.png"); /* a browser's path cut to the name */
    /* the file's bytes are exact, even with CRLF and a near-boundary inside */
    assert_int_equal(f.file_len, strlen("bin\r\n-BnD x--BnD--\r\n"));
    assert_memory_equal(f.file_data, "bin\r\n-BnD x--BnD--\r\n", f.file_len);
    char *key = rd_emu_s3_post_key(&f);
    assert_string_equal(key, "up/photo.png");
    free(key);
    rd_emu_s3_post_form_free(&f);
    rd_emu_s3_post_form_free(NULL);

    /* quoted boundary with other parameters; fields after the file are ignored; an empty file */
    const char *body = "--a b\r\nContent-Disposition: form-data; name=key\r\n\r\nk\r\n"
                       "--a b\r\ncontent-disposition: FORM-DATA; filename=\"\"; name=\"file\"\r\n\r\n\r\n"
                       "--a b\r\nContent-Disposition: form-data; name=\"after\"\r\n\r\nignored\r\n--a b--";
    assert_int_equal(parse("multipart/form-data; charset=utf-8; boundary=\"a b\"", body, strlen(body), &f, &e), 0);
    assert_int_equal(f.count, 1);
    assert_int_equal(f.file_len, 0);
    assert_string_equal(f.filename, "");
    assert_null(rd_emu_s3_post_form_get(&f, "after"));
    rd_emu_s3_post_form_free(&f);

    /* no file: S3's InvalidArgument */
    rd_buf_reset(&b);
    form_body(&b, NULL, NULL, "key", "k", NULL);
    assert_int_equal(parse(CT, b.data, b.len, &f, &e), -1);
    assert_string_equal(e.code, "InvalidArgument");
    assert_string_equal(e.message, "POST requires exactly one file upload per request.");
    rd_buf_free(&b);
}

static void test_form_malformed(void **state)
{
    (void)state;
    const char *ok_part = "--BnD\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--BnD--";
    expect_malformed(NULL, ok_part);
    expect_malformed("multipart/form-data", ok_part);                 /* no boundary */
    expect_malformed("multipart/form-data; boundary=", ok_part);      /* empty boundary */
    expect_malformed("multipart/form-data; boundary=\"BnD", ok_part); /* unterminated quote */
    expect_malformed("application/x-www-form-urlencoded; boundary=BnD", ok_part);
    char long_ct[128];
    snprintf(long_ct, sizeof long_ct, "multipart/form-data; boundary=%071d", 0);
    expect_malformed(long_ct, ok_part); /* longer than RFC 2046's 70 */
    expect_malformed(CT, "");
    expect_malformed(CT, "preamble\r\n--BnD\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--BnD--");
    expect_malformed(CT, "--BnD");                                  /* nothing after the first delimiter */
    expect_malformed(CT, "--BnDjunk\r\n");                          /* delimiter not followed by CRLF */
    expect_malformed(CT, "--BnD\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx"); /* no close */
    expect_malformed(CT, "--BnD\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--BnDzz");
    expect_malformed(CT, "--BnD\r\nContent-Disposition: form-data\r\n\r\nx\r\n--BnD--");     /* no name */
    expect_malformed(CT, "--BnD\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nx\r\n--BnD--");
    expect_malformed(CT, "--BnD\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--BnD--");
    expect_malformed(CT, "--BnD\r\nContent-Type: text/plain\r\n\r\nx\r\n--BnD--");            /* no disposition */
    expect_malformed(CT, "--BnD\r\nContent-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\nx\r\n--BnD--");
    expect_malformed(CT, "--BnD\r\nContent-Disposition: form-data; name=\"a\"\r\n"
                         "Content-Disposition: form-data; name=\"b\"\r\n\r\nx\r\n--BnD--");
    expect_malformed(CT, "--BnD\r\nno colon here\r\n\r\nx\r\n--BnD--");
    expect_malformed(CT, "--BnD\r\nContent-Disposition: form-data; name=\"a\"\r\n"); /* headers never end */

    /* bounds: fields before the file, their total size */
    rd_buf b = RD_BUF_INIT;
    for (int i = 0; i <= RD_EMU_S3_POST_MAX_FIELDS; i++)
        rd_buf_printf(&b, "--BnD\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\n\r\n", i);
    rd_buf_puts(&b, "--BnD\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--BnD--");
    expect_malformed(CT, b.data);
    rd_buf_reset(&b);
    rd_buf_puts(&b, "--BnD\r\nContent-Disposition: form-data; name=\"big\"\r\n\r\n");
    for (int i = 0; i < RD_EMU_S3_POST_MAX_PRE_DATA; i++)
        rd_buf_putc(&b, 'v');
    rd_buf_puts(&b, "\r\n--BnD\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--BnD--");
    rd_emu_s3_post_form f;
    rd_emu_error e;
    assert_int_equal(parse(CT, b.data, b.len, &f, &e), -1);
    assert_string_equal(e.code, "MaxPostPreDataLengthExceeded");
    rd_buf_free(&b);
}

/* A form of the given fields and a file of file_len bytes, parsed. */
static rd_emu_s3_post_form *make_form(rd_buf *b, const char *file, ...)
{
    va_list ap;
    va_start(ap, file);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        rd_buf_printf(b, "--BnD\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n", name, value);
    }
    va_end(ap);
    rd_buf_printf(b, "--BnD\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\r\n%s\r\n--BnD--",
                  file);
    rd_emu_s3_post_form *f = calloc(1, sizeof *f);
    rd_emu_error e;
    assert_int_equal(parse(CT, b->data, b->len, f, &e), 0);
    return f;
}

static void free_form(rd_emu_s3_post_form *f)
{
    rd_emu_s3_post_form_free(f);
    free(f);
}

/* The policy check's outcome: 0, or the error's code and message. */
static int check(const rd_emu_s3_post_form *f, const char *policy, time_t now, rd_emu_error *e)
{
    memset(e, 0, sizeof *e);
    char *key = rd_emu_s3_post_key(f);
    int rc = rd_emu_s3_post_policy_check(policy, strlen(policy), f, "bkt", key ? key : "", now, e);
    free(key);
    return rc;
}

static void expect_denied(const rd_emu_s3_post_form *f, const char *policy, int status, const char *code,
                          const char *message)
{
    rd_emu_error e;
    assert_int_equal(check(f, policy, 1000, &e), -1);
    assert_int_equal(e.http_status, status);
    assert_string_equal(e.code, code);
    if (message)
        assert_string_equal(e.message, message);
}

#define EXP "\"expiration\": \"1970-01-01T00:20:00Z\""

static void test_policy(void **state)
{
    (void)state;
    rd_buf b = RD_BUF_INIT;
    rd_emu_s3_post_form *f = make_form(&b, "0123456789", "key", "docs/${filename}", "Content-Type",
                                       "image/png,image/jpeg", "x-amz-meta-owner", "ana", "x-ignore-me", "1",
                                       "policy", "p", "x-amz-signature", "s", NULL);
    rd_emu_error e;
    const char *good = "{" EXP ", \"conditions\": [{\"bucket\": \"bkt\"}, [\"starts-with\", \"$key\", \"docs/\"],"
                       " [\"starts-with\", \"$Content-Type\", \"image/\"], [\"eq\", \"$X-Amz-Meta-Owner\", \"ana\"],"
                       " [\"content-length-range\", 10, \"10\"]]}";
    assert_int_equal(check(f, good, 1000, &e), 0);
    assert_int_equal(check(f, good, 1200, &e), 0); /* up to and including the expiration */

    assert_int_equal(check(f, good, 1201, &e), -1);
    assert_string_equal(e.message, "Invalid according to Policy: Policy expired.");
    /* fractions of a second */
    const char *frac = "{\"expiration\": \"1970-01-01T00:20:00.000Z\", \"conditions\": [[\"starts-with\", \"$key\", "
                       "\"\"], [\"starts-with\", \"$content-type\", \"\"], {\"x-amz-meta-owner\": \"ana\"}]}";
    assert_int_equal(check(f, frac, 1000, &e), 0);

    /* the policy itself */
    expect_denied(f, "not json", 400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.");
    expect_denied(f, "[1]", 400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.");
    expect_denied(f, "{\"conditions\": []}", 400, "InvalidPolicyDocument",
                  "Invalid Policy: Policy missing expiration.");
    expect_denied(f, "{" EXP "}", 400, "InvalidPolicyDocument", "Invalid Policy: Policy missing conditions.");
    expect_denied(f, "{\"expiration\": \"tomorrow\", \"conditions\": []}", 400, "InvalidPolicyDocument", NULL);
    expect_denied(f, "{\"expiration\": \"1970-01-01T00:20:00\", \"conditions\": []}", 400, "InvalidPolicyDocument",
                  NULL);
    expect_denied(f, "{\"expiration\": 5, \"conditions\": []}", 400, "InvalidPolicyDocument", NULL);

    /* each condition that fails names itself, as S3 does */
    expect_denied(f, "{" EXP ", \"conditions\": [{\"bucket\": \"other\"}]}", 403, "AccessDenied",
                  "Invalid according to Policy: Policy Condition failed: [\"eq\", \"$bucket\", \"other\"]");
    expect_denied(f, "{" EXP ", \"conditions\": [[\"eq\", \"$key\", \"docs/other.txt\"]]}", 403, "AccessDenied",
                  "Invalid according to Policy: Policy Condition failed: [\"eq\", \"$key\", \"docs/other.txt\"]");
    expect_denied(f, "{" EXP ", \"conditions\": [[\"starts-with\", \"$key\", \"img/\"]]}", 403, "AccessDenied",
                  "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\", \"img/\"]");
    /* a Content-Type list: every member must match */
    expect_denied(f, "{" EXP ", \"conditions\": [[\"starts-with\", \"$Content-Type\", \"image/p\"]]}", 403,
                  "AccessDenied",
                  "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$Content-Type\", "
                  "\"image/p\"]");
    /* a condition on a field the form lacks fails, even starts-with "" */
    expect_denied(f, "{" EXP ", \"conditions\": [[\"starts-with\", \"$acl\", \"\"]]}", 403, "AccessDenied",
                  "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$acl\", \"\"]");
    /* conditions S3 cannot read */
    expect_denied(f, "{" EXP ", \"conditions\": [[\"matches\", \"$key\", \"x\"]]}", 403, "AccessDenied",
                  "Invalid according to Policy: Policy Condition failed: [\"matches\", \"$key\", \"x\"]");
    expect_denied(f, "{" EXP ", \"conditions\": [[\"eq\", \"key\", \"docs/f.txt\"]]}", 403, "AccessDenied", NULL);
    expect_denied(f, "{" EXP ", \"conditions\": [[\"eq\", \"$key\"]]}", 403, "AccessDenied", NULL);
    expect_denied(f, "{" EXP ", \"conditions\": [{\"key\": 5}]}", 403, "AccessDenied", NULL);
    expect_denied(f, "{" EXP ", \"conditions\": [{}]}", 403, "AccessDenied", NULL);
    expect_denied(f, "{" EXP ", \"conditions\": [7]}", 403, "AccessDenied", NULL);
    expect_denied(f, "{" EXP ", \"conditions\": [[\"content-length-range\", -1, 5]]}", 403, "AccessDenied", NULL);

    /* every field but the exempt ones must be named by a condition */
    expect_denied(f,
                  "{" EXP ", \"conditions\": [[\"starts-with\", \"$key\", \"\"], "
                  "{\"Content-Type\": \"image/png,image/jpeg\"}]}",
                  403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-owner");

    /* content-length-range: the tightest of several */
    const char *range = "{" EXP ", \"conditions\": [[\"starts-with\", \"$key\", \"\"], [\"starts-with\", "
                        "\"$content-type\", \"\"], [\"starts-with\", \"$x-amz-meta-owner\", \"\"], "
                        "[\"content-length-range\", 0, 100], [\"content-length-range\", 11, 1000]]}";
    expect_denied(f, range, 400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size");
    range = "{" EXP ", \"conditions\": [[\"starts-with\", \"$key\", \"\"], [\"starts-with\", \"$content-type\", "
            "\"\"], [\"starts-with\", \"$x-amz-meta-owner\", \"\"], [\"content-length-range\", 0, 9]]}";
    expect_denied(f, range, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
    free_form(f);

    /* no key field: no key */
    rd_buf_reset(&b);
    f = make_form(&b, "x", "a", "b", NULL);
    assert_null(rd_emu_s3_post_key(f));
    free_form(f);
    rd_buf_free(&b);
}

/* ---- whole requests through the router --------------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static char *b64(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

static void route_to(rd_emu *emu, const char *host, const char *path, const rd_buf *body, rd_emu_response *resp)
{
    rd_headers h;
    rd_headers_init(&h);
    rd_headers_add(&h, "Host", host);
    rd_headers_add(&h, "Content-Type", CT);
    rd_emu_response_init(resp);
    rd_emu_route_request(emu, "POST", path, &h, body->data, body->len, "REQ1", resp);
    rd_headers_free(&h);
}

static void route(rd_emu *emu, const rd_buf *body, rd_emu_response *resp)
{
    route_to(emu, "127.0.0.1:4566", "/bkt", body, resp);
}

static void test_post_through_router(void **state)
{
    (void)state;
    char dir[] = "/tmp/rd-s3post-XXXXXX";
    assert_non_null(mkdtemp(dir));
    rd_emu emu;
    memset(&emu, 0, sizeof emu);
    emu.log.out = stderr;
    emu.log.level = RD_LOG_ERROR;
    rd_error err;
    assert_int_equal(rd_emu_ids_load(NULL, &emu.ids, &err), RD_OK); /* key test, secret test, everything */
    assert_int_equal(rd_s3_store_open(dir, &emu.store, &err), RD_OK);
    assert_int_equal(rd_s3_store_create_bucket(emu.store, "bkt", "us-east-1", NULL), 0);

    char expiration[32], date8[9];
    time_t later = time(NULL) + 600;
    strftime(expiration, sizeof expiration, "%Y-%m-%dT%H:%M:%SZ", gmtime(&later));
    strftime(date8, sizeof date8, "%Y%m%d", gmtime(&later));
    char policy[512], cred[128];
    snprintf(cred, sizeof cred, "test/%s/us-east-1/s3/aws4_request", date8);
    snprintf(policy, sizeof policy,
             "{\"expiration\": \"%s\", \"conditions\": [{\"bucket\": \"bkt\"}, [\"starts-with\", \"$key\", \"u/\"],"
             " {\"Content-Type\": \"text/csv\"},"
             " {\"x-amz-meta-owner\": \"ana\"}, {\"Cache-Control\": \"no-cache\"}, {\"x-amz-algorithm\": "
             "\"AWS4-HMAC-SHA256\"}, {\"x-amz-credential\": \"%s\"}, {\"x-amz-date\": \"%sT000000Z\"}]}",
             expiration, cred, date8);
    char *policy_b64 = b64(policy);
    char sig[65];
    rd_emu_s3_post_signature("test", date8, "us-east-1", "s3", policy_b64, sig);
    char date[32];
    snprintf(date, sizeof date, "%sT000000Z", date8);

    rd_buf body = RD_BUF_INIT;
    form_body(&body, "data.csv", "a,b\n", "key", "u/${filename}", "Content-Type", "text/csv", "X-Amz-Meta-Owner",
              "ana", "Cache-Control", "no-cache", "x-amz-algorithm", "AWS4-HMAC-SHA256", "x-amz-credential", cred,
              "x-amz-date", date, "policy", policy_b64, "x-amz-signature", sig, NULL);
    rd_emu_response resp;
    route(&emu, &body, &resp);
    assert_int_equal(resp.status, 204);
    assert_string_equal(rd_headers_get(&resp.headers, "ETag"), "\"f69f5b72bc79a92dc70c63c9aa142e36\"");
    assert_string_equal(rd_headers_get(&resp.headers, "Location"), "http://127.0.0.1:4566/bkt/u%2Fdata.csv");
    rd_emu_response_free(&resp);
    rd_s3_object_info info;
    memset(&info, 0, sizeof info);
    assert_int_equal(rd_s3_store_head(emu.store, "bkt", "u/data.csv", &info, NULL), 0);
    assert_int_equal(info.size, 4);
    assert_string_equal(info.content_type, "text/csv");
    assert_string_equal(rd_headers_get(&info.meta.headers, "x-amz-meta-owner"), "ana");
    assert_non_null(rd_headers_get(&info.meta.headers, "Cache-Control"));
    assert_string_equal(rd_headers_get(&info.meta.headers, "Cache-Control"), "no-cache");
    rd_s3_object_info_free(&info);

    /* virtual-hosted addressing: the bucket from the Host, and so is the Location (the key encoded as S3 does) */
    route_to(&emu, "bkt.localhost:4566", "/", &body, &resp);
    assert_int_equal(resp.status, 204);
    assert_string_equal(rd_headers_get(&resp.headers, "Location"), "http://bkt.localhost:4566/u%2Fdata.csv");
    rd_emu_response_free(&resp);

    /* a signature over another secret: refused, nothing stored */
    rd_emu_s3_post_signature("not-test", date8, "us-east-1", "s3", policy_b64, sig);
    rd_buf_reset(&body);
    form_body(&body, "other.csv", "x", "key", "u/${filename}", "Content-Type", "text/csv", "x-amz-meta-owner", "ana",
              "Cache-Control", "no-cache", "x-amz-algorithm", "AWS4-HMAC-SHA256", "x-amz-credential", cred,
              "x-amz-date", date, "policy", policy_b64, "x-amz-signature", sig, NULL);
    route(&emu, &body, &resp);
    assert_int_equal(resp.status, 403);
    assert_non_null(strstr(rd_buf_cstr(&resp.body), "<Code>SignatureDoesNotMatch</Code>"));
    rd_emu_response_free(&resp);
    assert_int_equal(rd_s3_store_head(emu.store, "bkt", "u/other.csv", &info, NULL), -1);

    /* no policy: an anonymous upload, which the emulator's buckets never allow */
    rd_buf_reset(&body);
    form_body(&body, "anon.csv", "x", "key", "u/anon.csv", NULL);
    route(&emu, &body, &resp);
    assert_int_equal(resp.status, 403);
    assert_non_null(strstr(rd_buf_cstr(&resp.body), "<Code>AccessDenied</Code>"));
    rd_emu_response_free(&resp);

    /* an unsigned multipart POST to a key is not a PostObject and gets no further */
    rd_headers h;
    rd_headers_init(&h);
    rd_headers_add(&h, "Content-Type", CT);
    rd_emu_response_init(&resp);
    rd_emu_route_request(&emu, "POST", "/bkt/u/data.csv?delete", &h, body.data, body.len, "REQ2", &resp);
    assert_int_equal(resp.status, 405);
    rd_emu_response_free(&resp);
    rd_headers_free(&h);
    assert_int_equal(rd_s3_store_head(emu.store, "bkt", "u/data.csv", &info, NULL), 0);
    rd_s3_object_info_free(&info);

    free(policy_b64);
    rd_buf_free(&body);
    rd_s3_store_close(emu.store);
    rd_emu_ids_free(emu.ids);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_parse),
        cmocka_unit_test(test_form_malformed),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_post_through_router),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
