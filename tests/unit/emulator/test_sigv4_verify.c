/* test_sigv4_verify.c — the emulator's SigV4 verification: good signatures pass; a wrong secret, an unknown
 * key, a skewed clock, a missing or forged session token and an expired presigned URL are each refused
 * with their own result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/iam/auth.h"
#include "redduck/sigv4.h"

#define NOW 1764000000

static rd_emu_auth_result sign_and_verify(rd_emu_ids *ids, const char *key, const char *secret, const char *token,
                                          const char *service, time_t signed_at, const char *target,
                                          const char *body, const char *tamper_header)
{
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "Host", "127.0.0.1:4566");
    rd_headers_add(&h, "Content-Type", "application/x-amz-json-1.1");
    rd_headers_add(&h, "User-Agent", "test/1");
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:4566%s", target);
    int s3 = strcmp(service, "s3") == 0;
    rd_sigv4_params p = { service, "us-east-1", signed_at, key, secret, token, s3, 0, 0, 0 };
    rd_sigv4_request r = { "POST", url, &h, body, body ? strlen(body) : 0, NULL };
    rd_error err;
    assert_int_equal(rd_sigv4_sign_headers(&p, &r, NULL, &err), RD_OK);
    if (tamper_header)
        rd_headers_set(&h, "Content-Type", tamper_header);
    rd_emu_auth_info info;
    rd_emu_auth_result res = rd_emu_auth_verify(ids, "POST", target, &h, body, body ? strlen(body) : 0, NOW, &info);
    if (res == RD_AUTH_OK) {
        assert_string_equal(info.access_key_id, key);
        assert_string_equal(info.service, service);
        assert_string_equal(info.region, "us-east-1");
    }
    rd_headers_free(&h);
    return res;
}

static void test_verify_header_signatures(void **state)
{
    (void)state;
    rd_emu_ids *ids;
    rd_error err;
    assert_int_equal(rd_emu_ids_load(NULL, &ids, &err), RD_OK);
    const char *body = "{\"Sql\":\"select 1\"}";
    assert_int_equal(sign_and_verify(ids, "test", "test", NULL, "redshift-data", NOW, "/", body, NULL), RD_AUTH_OK);
    assert_int_equal(sign_and_verify(ids, "test", "test", NULL, "s3", NOW, "/bucket/a%20b/c?list-type=2&prefix=a%2F",
                                     NULL, NULL),
                     RD_AUTH_OK);
    assert_int_equal(sign_and_verify(ids, "test", "wrong", NULL, "redshift-data", NOW, "/", body, NULL),
                     RD_AUTH_BAD_SIGNATURE);
    assert_int_equal(sign_and_verify(ids, "nobody", "test", NULL, "sts", NOW, "/", body, NULL), RD_AUTH_UNKNOWN_KEY);
    assert_int_equal(sign_and_verify(ids, "test", "test", NULL, "sts", NOW - 16 * 60, "/", body, NULL),
                     RD_AUTH_SKEWED);
    assert_int_equal(sign_and_verify(ids, "test", "test", NULL, "sts", NOW + 14 * 60, "/", body, NULL), RD_AUTH_OK);
    /* a header changed after signing */
    assert_int_equal(sign_and_verify(ids, "test", "test", NULL, "sts", NOW, "/", body, "text/plain"),
                     RD_AUTH_BAD_SIGNATURE);

    /* a body changed after signing (non-S3 services hash the body) */
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "Host", "127.0.0.1:4566");
    rd_sigv4_params p = { "sts", "us-east-1", NOW, "test", "test", NULL, 0, 0, 0, 0 };
    rd_sigv4_request r = { "POST", "http://127.0.0.1:4566/", &h, "Action=A", 8, NULL };
    assert_int_equal(rd_sigv4_sign_headers(&p, &r, NULL, &err), RD_OK);
    rd_emu_auth_info info;
    assert_int_equal(rd_emu_auth_verify(ids, "POST", "/", &h, "Action=B", 8, NOW, &info), RD_AUTH_BAD_SIGNATURE);
    assert_int_equal(rd_emu_auth_verify(ids, "POST", "/", &h, "Action=A", 8, NOW, &info), RD_AUTH_OK);
    rd_headers_remove(&h, "Authorization");
    assert_int_equal(rd_emu_auth_verify(ids, "POST", "/", &h, "Action=A", 8, NOW, &info), RD_AUTH_MISSING);
    rd_headers_set(&h, "Authorization", "AWS4-HMAC-SHA256 Credential=garbage");
    assert_int_equal(rd_emu_auth_verify(ids, "POST", "/", &h, "Action=A", 8, NOW, &info), RD_AUTH_MALFORMED);
    rd_headers_free(&h);
    rd_emu_ids_free(ids);
}

/* Before a body arrives: what the headers show is checked, the signature is not (it covers the body). */
static void test_precheck_headers(void **state)
{
    (void)state;
    rd_emu_ids *ids;
    rd_error err;
    assert_int_equal(rd_emu_ids_load(NULL, &ids, &err), RD_OK);
    rd_emu_auth_info info;
    rd_headers none = RD_HEADERS_INIT;
    assert_int_equal(rd_emu_auth_precheck(ids, &none, NOW, &info), RD_AUTH_MISSING);
    const struct {
        const char *key, *secret;
        time_t at;
        rd_emu_auth_result want;
    } cases[] = { { "test", "test", NOW, RD_AUTH_OK },
                  { "test", "wrong", NOW, RD_AUTH_OK }, /* only the signature could tell */
                  { "nobody", "test", NOW, RD_AUTH_UNKNOWN_KEY },
                  { "test", "test", NOW - 16 * 60, RD_AUTH_SKEWED } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rd_headers h = RD_HEADERS_INIT;
        rd_headers_add(&h, "Host", "127.0.0.1:4566");
        rd_sigv4_params p = { "redshift-data", "us-east-1", cases[i].at, cases[i].key, cases[i].secret, NULL,
                              0, 0, 0, 0 };
        rd_sigv4_request r = { "POST", "http://127.0.0.1:4566/", &h, "{}", 2, NULL };
        assert_int_equal(rd_sigv4_sign_headers(&p, &r, NULL, &err), RD_OK);
        assert_int_equal(rd_emu_auth_precheck(ids, &h, NOW, &info), cases[i].want);
        if (i == 0)
            assert_string_equal(info.service, "redshift-data");
        rd_headers_set(&h, "Authorization", "AWS4-HMAC-SHA256 Credential=test");
        assert_int_equal(rd_emu_auth_precheck(ids, &h, NOW, &info), RD_AUTH_MALFORMED);
        rd_headers_free(&h);
    }
    rd_emu_ids_free(ids);
}

static void test_verify_session_tokens(void **state)
{
    (void)state;
    rd_emu_ids *ids;
    rd_error err;
    assert_int_equal(rd_emu_ids_load(NULL, &ids, &err), RD_OK);
    char *key, *secret, *token, *arn, *id;
    time_t exp;
    assert_int_equal(rd_emu_ids_issue_session(ids, "default", "s", 900, NOW, &key, &secret, &token, &arn, &id, &exp,
                                              NULL),
                     0);
    assert_int_equal(sign_and_verify(ids, key, secret, token, "sts", NOW, "/", "x", NULL), RD_AUTH_OK);
    assert_int_equal(sign_and_verify(ids, key, secret, NULL, "sts", NOW, "/", "x", NULL), RD_AUTH_BAD_TOKEN);
    assert_int_equal(sign_and_verify(ids, key, secret, "forged", "sts", NOW, "/", "x", NULL), RD_AUTH_BAD_TOKEN);
    /* expired: verify an hour later, signed then too */
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "Host", "h");
    rd_sigv4_params p = { "sts", "us-east-1", NOW + 3600, key, secret, token, 0, 0, 0, 0 };
    rd_sigv4_request r = { "GET", "http://h/", &h, NULL, 0, NULL };
    assert_int_equal(rd_sigv4_sign_headers(&p, &r, NULL, &err), RD_OK);
    rd_emu_auth_info info;
    assert_int_equal(rd_emu_auth_verify(ids, "GET", "/", &h, NULL, 0, NOW + 3600, &info), RD_AUTH_EXPIRED_TOKEN);
    rd_headers_free(&h);
    free(key);
    free(secret);
    free(token);
    free(arn);
    free(id);
    rd_emu_ids_free(ids);
}

static void test_verify_presigned(void **state)
{
    (void)state;
    rd_emu_ids *ids;
    rd_error err;
    assert_int_equal(rd_emu_ids_load(NULL, &ids, &err), RD_OK);
    rd_sigv4_params p = { "s3", "us-east-1", NOW, "test", "test", NULL, 1, 0, 0, 0 };
    rd_sigv4_request r = { "GET", "http://127.0.0.1:4566/bucket/some%20key?versionId=1", NULL, NULL, 0, NULL };
    char *url = NULL;
    assert_int_equal(rd_sigv4_presign_url(&p, &r, 300, &url, NULL, &err), RD_OK);
    const char *target = strstr(url, "4566") + 4;
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "Host", "127.0.0.1:4566");
    rd_emu_auth_info info;
    assert_int_equal(rd_emu_auth_verify(ids, "GET", target, &h, NULL, 0, NOW + 10, &info), RD_AUTH_OK);
    assert_int_equal(rd_emu_auth_verify(ids, "GET", target, &h, NULL, 0, NOW + 301, &info), RD_AUTH_EXPIRED_PRESIGN);
    assert_int_equal(rd_emu_auth_verify(ids, "PUT", target, &h, NULL, 0, NOW + 10, &info), RD_AUTH_BAD_SIGNATURE);
    rd_emu_auth_info scope;
    assert_true(rd_emu_auth_scope(target, &h, &scope));
    assert_string_equal(scope.service, "s3");
    rd_headers_free(&h);
    free(url);
    rd_emu_ids_free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_header_signatures),
        cmocka_unit_test(test_precheck_headers),
        cmocka_unit_test(test_verify_session_tokens),
        cmocka_unit_test(test_verify_presigned),
    };
    return cmocka_run_group_tests_name("emulator auth", tests, NULL, NULL);
}
