/* test_session_isolation.c — a session without the host (a server's scheduled run) reads no AWS_* variable:
 * the clients it makes resolve endpoints and retry budgets from the session's own options only, whatever the
 * process environment says. The same environment does reach a session of the host (the control case). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "aws/endpoints.h"
#include "redduck/session.h"
#include "redduck/buf.h"
#include "redduck/headers.h"

static void host_environment(void)
{
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/redduck-test-config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/redduck-test-credentials", 1);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 1);
    setenv("AWS_MAX_ATTEMPTS", "7", 1);
    setenv("AWS_REGION", "eu-west-3", 1);
}

/* The URL a client would send a Data API call to. */
static char *url_of(rd_session *s, const char *region)
{
    rd_aws_client c;
    rd_session_client(s, region, &c);
    rd_aws_request req = { 0 };
    req.svc = &rd_svc_redshift_data;
    req.method = "POST";
    req.path = "/";
    req.body = "{}";
    req.body_len = 2;
    req.body_replayable = 1;
    rd_buf url = RD_BUF_INIT;
    rd_headers h;
    rd_headers_init(&h);
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_aws_prepare(&c, &req, &url, &h, &err), RD_OK);
    rd_headers_free(&h);
    char *out = strdup(rd_buf_cstr(&url));
    rd_buf_free(&url);
    return out;
}

static void test_server_run_ignores_the_environment(void **state)
{
    (void)state;
    host_environment();
    rd_session_options o = { 0 };
    o.no_host_environment = 1;
    o.region = "us-west-2";
    o.region_source = "connector prod";
    o.access_key_id = "AKIDEXPLICIT";
    o.secret_access_key = "explicit-secret";
    rd_session *s = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_session_new(&o, &s, &err), RD_OK);

    rd_aws_client c;
    rd_session_client(s, "us-west-2", &c);
    assert_int_equal(rd_aws_client_max_attempts(&c), 3); /* not AWS_MAX_ATTEMPTS */
    char *url = url_of(s, "us-west-2");
    assert_string_equal(url, "https://redshift-data.us-west-2.amazonaws.com/"); /* not AWS_ENDPOINT_URL */
    free(url);
    rd_session_free(s);

    /* the connector's own endpoint still applies */
    o.endpoint_url = "http://127.0.0.1:4566";
    assert_int_equal(rd_session_new(&o, &s, &err), RD_OK);
    url = url_of(s, "us-west-2");
    assert_string_equal(url, "http://127.0.0.1:4566/");
    free(url);
    rd_session_free(s);
}

static void test_host_session_reads_the_environment(void **state)
{
    (void)state;
    host_environment();
    rd_session_options o = { 0 };
    o.access_key_id = "AKIDEXPLICIT";
    o.secret_access_key = "explicit-secret";
    rd_session *s = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_session_new(&o, &s, &err), RD_OK);
    rd_aws_client c;
    rd_session_client(s, "eu-west-3", &c);
    assert_int_equal(rd_aws_client_max_attempts(&c), 7);
    char *url = url_of(s, "eu-west-3");
    assert_string_equal(url, "http://127.0.0.1:9/");
    free(url);
    rd_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_run_ignores_the_environment),
        cmocka_unit_test(test_host_session_reads_the_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
