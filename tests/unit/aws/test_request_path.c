/* test_request_path.c — the AWS request path over a scripted transport: standard-mode retries (which codes,
 * how many attempts, full-jitter backoff bounds, non-replayable bodies), error classification, S3
 * addressing, signing per attempt, and secrets redacted from -v / -vv logs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "auth/creds_chain.h"
#include "services/sts.h"

#define MAX_SCRIPT 16

typedef struct scripted {
    rd_http_transport base;
    int statuses[MAX_SCRIPT];
    const char *bodies[MAX_SCRIPT];
    int fail_network[MAX_SCRIPT];
    int n, calls;
    char urls[MAX_SCRIPT][512];
    char auth[MAX_SCRIPT][512];
} scripted;

static rd_status scripted_send(rd_http_transport *t, const rd_http_request *req, rd_http_response *resp, rd_error *err)
{
    scripted *s = (scripted *)t;
    int i = s->calls++;
    assert_true(i < s->n);
    snprintf(s->urls[i], sizeof s->urls[i], "%s", req->url);
    const char *a = rd_headers_get(req->headers, "Authorization");
    snprintf(s->auth[i], sizeof s->auth[i], "%s", a ? a : "");
    if (s->fail_network[i])
        return rd_error_set(err, RD_E_NETWORK, "connection reset by peer");
    resp->status = s->statuses[i];
    rd_headers_add(&resp->headers, "x-amzn-RequestId", "r");
    if (s->bodies[i])
        rd_buf_puts(&resp->body, s->bodies[i]);
    return RD_OK;
}

static void scripted_destroy(rd_http_transport *t)
{
    (void)t;
}

static const rd_http_transport_vtable scripted_vt = { scripted_send, scripted_destroy };

typedef struct sleeps {
    long ms[MAX_SCRIPT];
    int n;
} sleeps;

static void record_sleep(void *ctx, long ms)
{
    sleeps *s = ctx;
    s->ms[s->n++] = ms;
}

static unsigned max_jitter(void *ctx, unsigned bound)
{
    (void)ctx;
    return bound - 1;
}

static time_t fixed_now(void)
{
    return 1764000000;
}

static void client_init(rd_aws_client *c, scripted *s, rd_creds_provider *creds, sleeps *sl)
{
    memset(c, 0, sizeof *c);
    s->base.vt = &scripted_vt;
    c->http = &s->base;
    c->creds = creds;
    c->region = "us-east-1";
    c->now = fixed_now;
    c->jitter = max_jitter;
    c->sleep_ms = record_sleep;
    c->sleep_ctx = sl;
    unsetenv("AWS_MAX_ATTEMPTS");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_STS");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_ENDPOINT_URL_REDSHIFT_DATA");
}

static const char *sts_ok = "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/u</Arn>"
                            "<UserId>U</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
                            "</GetCallerIdentityResponse>";

static void test_retries_transient_then_succeeds(void **state)
{
    (void)state;
    rd_creds_provider *creds;
    rd_error err;
    assert_int_equal(rd_creds_static_new("AKID", "secret", NULL, "explicit", NULL, &creds, &err), RD_OK);
    scripted s = { .n = 3, .statuses = { 503, 0, 200 }, .fail_network = { 0, 1, 0 },
                   .bodies = { "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>", NULL,
                               sts_ok } };
    sleeps sl = { .n = 0 };
    rd_aws_client c;
    client_init(&c, &s, creds, &sl);
    rd_identity id = { 0 };
    assert_int_equal(rd_sts_get_caller_identity(&c, &id, &err), RD_OK);
    assert_string_equal(id.account, "123456789012");
    assert_int_equal(s.calls, 3);
    /* full jitter: at most 1 s, then 2 s (the jitter hook returns the bound) */
    assert_int_equal(sl.n, 2);
    assert_int_equal(sl.ms[0], 1000);
    assert_int_equal(sl.ms[1], 2000);
    assert_string_equal(s.urls[0], "https://sts.us-east-1.amazonaws.com/");
    assert_non_null(strstr(s.auth[0], "Credential=AKID/20251124/us-east-1/sts/aws4_request"));
    rd_identity_free(&id);
    rd_creds_provider_free(creds);
}

static void test_throttling_exhausts_attempts(void **state)
{
    (void)state;
    rd_creds_provider *creds;
    rd_error err;
    assert_int_equal(rd_creds_static_new("AKID", "secret", NULL, "explicit", NULL, &creds, &err), RD_OK);
    const char *thr = "{\"__type\":\"com.amazonaws#ThrottlingException\",\"message\":\"Rate exceeded\"}";
    scripted s = { .n = 5, .statuses = { 400, 400, 400, 400, 400 }, .bodies = { thr, thr, thr, thr, thr } };
    sleeps sl = { .n = 0 };
    rd_aws_client c;
    client_init(&c, &s, creds, &sl);
    setenv("AWS_MAX_ATTEMPTS", "5", 1);
    json_t *out = NULL;
    rd_error_clear(&err);
    assert_int_equal(rd_aws_json_call(&c, &rd_svc_redshift_data, "DescribeStatement", NULL, &out, &err),
                     RD_E_REMOTE);
    assert_int_equal(s.calls, 5);
    assert_string_equal(err.aws_code, "ThrottlingException");
    assert_int_equal(err.http_status, 400);
    assert_non_null(strstr(err.message, "after 5 attempts"));
    assert_non_null(strstr(err.message, "DescribeStatement"));
    assert_int_equal(sl.ms[3], 8000);
    unsetenv("AWS_MAX_ATTEMPTS");
    rd_creds_provider_free(creds);
}

static void test_errors_not_retried_and_classified(void **state)
{
    (void)state;
    rd_creds_provider *creds;
    rd_error err;
    assert_int_equal(rd_creds_static_new("AKID", "secret", NULL, "explicit", NULL, &creds, &err), RD_OK);
    static const struct {
        int status;
        const char *body;
        rd_status want;
        const char *code;
    } cases[] = {
        { 400, "{\"__type\":\"ValidationException\",\"message\":\"bad sql\"}", RD_E_REMOTE, "ValidationException" },
        { 400, "{\"__type\":\"AccessDeniedException\",\"message\":\"no\"}", RD_E_DENIED, "AccessDeniedException" },
        { 400, "{\"__type\":\"ResourceNotFoundException\"}", RD_E_NOT_FOUND, "ResourceNotFoundException" },
        { 403, "{\"message\":\"The security token included in the request is expired\"}", RD_E_DENIED, "Forbidden" },
        { 400, "", RD_E_REMOTE, "BadRequest" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        scripted s = { .n = 1, .statuses = { cases[i].status }, .bodies = { cases[i].body } };
        sleeps sl = { .n = 0 };
        rd_aws_client c;
        client_init(&c, &s, creds, &sl);
        json_t *out = NULL;
        rd_error_clear(&err);
        assert_int_equal(rd_aws_json_call(&c, &rd_svc_redshift_data, "ExecuteStatement", NULL, &out, &err),
                         cases[i].want);
        assert_int_equal(s.calls, 1); /* not retried */
        assert_string_equal(err.aws_code, cases[i].code);
    }
    /* the x-amzn-ErrorType header and query-protocol XML */
    scripted s = { .n = 1, .statuses = { 403 },
                   .bodies = { "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The "
                               "security token included in the request is expired</Message></Error></ErrorResponse>" } };
    sleeps sl = { .n = 0 };
    rd_aws_client c;
    client_init(&c, &s, creds, &sl);
    rd_identity id = { 0 };
    assert_int_equal(rd_sts_get_caller_identity(&c, &id, &err), RD_E_DENIED);
    assert_string_equal(err.aws_code, "ExpiredToken");
    assert_non_null(strstr(err.message, "aws sso login")); /* says what to do */
    rd_creds_provider_free(creds);
}

static void test_non_replayable_body_not_retried(void **state)
{
    (void)state;
    rd_creds_provider *creds;
    rd_error err;
    assert_int_equal(rd_creds_static_new("AKID", "secret", NULL, "explicit", NULL, &creds, &err), RD_OK);
    scripted s = { .n = 2, .statuses = { 500, 200 }, .bodies = { "<Error><Code>InternalError</Code></Error>", "" } };
    sleeps sl = { .n = 0 };
    rd_aws_client c;
    client_init(&c, &s, creds, &sl);
    rd_aws_request req = { 0 };
    req.svc = &rd_svc_s3;
    req.method = "PUT";
    req.bucket = "my-bucket";
    req.path = "/a%20b/c";
    req.body = "x";
    req.body_len = 1;
    req.body_replayable = 0;
    rd_http_response resp;
    rd_http_response_init(&resp);
    assert_int_equal(rd_aws_send(&c, &req, &resp, &err), RD_E_REMOTE);
    assert_int_equal(s.calls, 1);
    /* AWS endpoint: virtual-hosted addressing */
    assert_string_equal(s.urls[0], "https://my-bucket.s3.us-east-1.amazonaws.com/a%20b/c");
    rd_http_response_free(&resp);

    /* custom endpoint: path-style */
    scripted s2 = { .n = 1, .statuses = { 200 }, .bodies = { "" } };
    client_init(&c, &s2, creds, &sl);
    c.endpoint_url = "http://127.0.0.1:4566";
    req.body_replayable = 1;
    rd_http_response_init(&resp);
    assert_int_equal(rd_aws_send(&c, &req, &resp, &err), RD_OK);
    assert_string_equal(s2.urls[0], "http://127.0.0.1:4566/my-bucket/a%20b/c");
    rd_http_response_free(&resp);
    rd_creds_provider_free(creds);
}

static void test_verbose_log_redacts_secrets(void **state)
{
    (void)state;
    rd_creds_provider *creds;
    rd_error err;
    assert_int_equal(rd_creds_static_new("AKIDLOG", "SUPERSECRETKEY", "SESSIONTOKEN123", "explicit", NULL, &creds,
                                         &err),
                     RD_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    rd_log log = { RD_LOG_DEBUG, mem };
    scripted s = { .n = 1, .statuses = { 200 }, .bodies = { sts_ok } };
    sleeps sl = { .n = 0 };
    rd_aws_client c;
    client_init(&c, &s, creds, &sl);
    c.log = &log;
    rd_identity id = { 0 };
    assert_int_equal(rd_sts_get_caller_identity(&c, &id, &err), RD_OK);
    fclose(mem);
    assert_non_null(strstr(text, "POST sts.us-east-1.amazonaws.com / -> 200 (attempt 1/3"));
    assert_non_null(strstr(text, "Authorization: <redacted>"));
    assert_non_null(strstr(text, "X-Amz-Security-Token: <redacted>"));
    assert_null(strstr(text, "SUPERSECRETKEY"));
    assert_null(strstr(text, "SESSIONTOKEN123"));
    assert_null(strstr(text, "Signature="));
    free(text);
    rd_identity_free(&id);
    rd_creds_provider_free(creds);
}

static void test_assume_role_parses_credentials(void **state)
{
    (void)state;
    rd_creds_provider *creds;
    rd_error err;
    assert_int_equal(rd_creds_static_new("AKID", "secret", NULL, "explicit", NULL, &creds, &err), RD_OK);
    const char *reply = "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
                        "<Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>sk</SecretAccessKey>"
                        "<SessionToken>tok</SessionToken><Expiration>2025-11-24T17:00:00.000Z</Expiration>"
                        "</Credentials><AssumedRoleUser><AssumedRoleId>AROA:s</AssumedRoleId>"
                        "<Arn>arn:aws:sts::210987654321:assumed-role/r/s</Arn></AssumedRoleUser>"
                        "</AssumeRoleResult></AssumeRoleResponse>";
    scripted s = { .n = 1, .statuses = { 200 }, .bodies = { reply } };
    sleeps sl = { .n = 0 };
    rd_aws_client c;
    client_init(&c, &s, creds, &sl);
    rd_sts_assume_role_input in = { "arn:aws:iam::210987654321:role/r", "s", "ext", 900, NULL, NULL };
    rd_credentials out;
    rd_credentials_init(&out);
    assert_int_equal(rd_sts_assume_role(&c, &in, &out, &err), RD_OK);
    assert_string_equal(out.access_key_id, "ASIAX");
    assert_string_equal(out.session_token, "tok");
    assert_string_equal(out.account_id, "210987654321");
    assert_string_equal(out.provider, "assume-role");
    assert_int_equal(out.expiration, 1764003600);
    rd_credentials_free(&out);
    rd_creds_provider_free(creds);
}

/* The one classifier the request path and the downloader share. */
static void test_retry_class(void **state)
{
    (void)state;
    assert_int_equal(rd_aws_retry_class(RD_OK, 0, 503, "SlowDown"), RD_RETRY_THROTTLE);
    assert_int_equal(rd_aws_retry_class(RD_OK, 0, 400, "ThrottlingException"), RD_RETRY_THROTTLE);
    assert_int_equal(rd_aws_retry_class(RD_OK, 0, 429, NULL), RD_RETRY_THROTTLE);
    assert_int_equal(rd_aws_retry_class(RD_OK, 0, 500, "InternalError"), RD_RETRY_TRANSIENT);
    assert_int_equal(rd_aws_retry_class(RD_OK, 0, 504, NULL), RD_RETRY_TRANSIENT);
    assert_int_equal(rd_aws_retry_class(RD_OK, 0, 400, "RequestTimeout"), RD_RETRY_TRANSIENT);
    assert_int_equal(rd_aws_retry_class(RD_E_NETWORK, 0, 0, NULL), RD_RETRY_TRANSIENT);
    assert_int_equal(rd_aws_retry_class(RD_E_IO, EIO, 0, NULL), RD_RETRY_TRANSIENT);
    assert_int_equal(rd_aws_retry_class(RD_OK, 0, 403, "AccessDenied"), RD_RETRY_NEVER);
    assert_int_equal(rd_aws_retry_class(RD_OK, 0, 404, "NoSuchKey"), RD_RETRY_NEVER);
    assert_int_equal(rd_aws_retry_class(RD_OK, 0, 501, "NotImplemented"), RD_RETRY_NEVER);
    assert_int_equal(rd_aws_retry_class(RD_E_CONFIG, 0, 0, NULL), RD_RETRY_NEVER); /* TLS certificate */
    assert_int_equal(rd_aws_retry_class(RD_E_IO, ENOSPC, 0, NULL), RD_RETRY_NEVER);
    assert_int_equal(rd_aws_retry_class(RD_E_IO, EDQUOT, 0, NULL), RD_RETRY_NEVER);
    assert_int_equal(rd_aws_retry_class(RD_E_IO, EROFS, 0, NULL), RD_RETRY_NEVER);
    assert_int_equal(rd_aws_retry_class(RD_E_IO, 0, 0, NULL), RD_RETRY_NEVER); /* a sink that refused */
}

/* Full jitter within min(cap, base * 2^(attempt-1)). */
static void test_backoff_window(void **state)
{
    (void)state;
    assert_int_equal(rd_aws_backoff_ms(1000, 20000, 1, max_jitter, NULL), 1000);
    assert_int_equal(rd_aws_backoff_ms(1000, 20000, 3, max_jitter, NULL), 4000);
    assert_int_equal(rd_aws_backoff_ms(1000, 20000, 40, max_jitter, NULL), 20000);
    assert_int_equal(rd_aws_backoff_ms(100, 5000, 7, max_jitter, NULL), 5000);
    for (int i = 0; i < 50; i++) {
        long ms = rd_aws_backoff_ms(100, 5000, 3, NULL, NULL);
        assert_true(ms >= 0 && ms <= 400);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retries_transient_then_succeeds),
        cmocka_unit_test(test_retry_class),
        cmocka_unit_test(test_backoff_window),
        cmocka_unit_test(test_throttling_exhausts_attempts),
        cmocka_unit_test(test_errors_not_retried_and_classified),
        cmocka_unit_test(test_non_replayable_body_not_retried),
        cmocka_unit_test(test_verbose_log_redacts_secrets),
        cmocka_unit_test(test_assume_role_parses_credentials),
    };
    return cmocka_run_group_tests_name("aws client", tests, NULL, NULL);
}
