/* test_remote_providers.c — the providers that ask a service (web identity, SSO, container endpoint, IMDS),
 * driven through a recording in-process rd_http_transport: no socket is ever opened, so "no traffic"
 * is checked by counting the requests the transport saw. */
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

#include "aws/config.h"
#include "auth/creds_chain.h"
#include "aws/http.h"

/* --- a scripted, recording transport ----------------------------------------------------------------- */

#define MAX_REQ 16
#define MAX_ROUTES 8

typedef struct route {
    const char *method;
    const char *url_contains;
    int status;
    const char *body;
    const char *header_name; /* optional reply header */
    const char *header_value;
} route;

typedef struct seen_request {
    char *method;
    char *url;
    rd_headers headers;
    char *body;
} seen_request;

typedef struct fake_http {
    rd_http_transport base;
    route routes[MAX_ROUTES];
    size_t nroutes;
    seen_request seen[MAX_REQ];
    size_t nseen;
} fake_http;

static rd_status fake_send(rd_http_transport *t, const rd_http_request *req, rd_http_response *resp, rd_error *err)
{
    fake_http *f = (fake_http *)t;
    assert_true(f->nseen < MAX_REQ);
    seen_request *s = &f->seen[f->nseen++];
    s->method = strdup(req->method);
    s->url = strdup(req->url);
    rd_headers_init(&s->headers);
    if (req->headers)
        rd_headers_copy(&s->headers, req->headers);
    s->body = req->body ? strndup(req->body, req->body_len) : NULL;
    for (size_t i = 0; i < f->nroutes; i++) {
        const route *r = &f->routes[i];
        if (strcmp(r->method, req->method) == 0 && strstr(req->url, r->url_contains)) {
            resp->status = r->status;
            if (r->body)
                rd_buf_puts(&resp->body, r->body);
            if (r->header_name)
                rd_headers_add(&resp->headers, r->header_name, r->header_value);
            return RD_OK;
        }
    }
    return rd_error_set(err, RD_E_NETWORK, "%s %s: connection refused (no route in the fake)", req->method, req->url);
}

static void fake_destroy(rd_http_transport *t)
{
    (void)t;
}

static const rd_http_transport_vtable fake_vt = { fake_send, fake_destroy };

static void fake_init(fake_http *f)
{
    memset(f, 0, sizeof *f);
    f->base.vt = &fake_vt;
}

static void fake_route(fake_http *f, const char *method, const char *url_contains, int status, const char *body)
{
    assert_true(f->nroutes < MAX_ROUTES);
    route r = { method, url_contains, status, body, NULL, NULL };
    f->routes[f->nroutes++] = r;
}

static void fake_free(fake_http *f)
{
    for (size_t i = 0; i < f->nseen; i++) {
        free(f->seen[i].method);
        free(f->seen[i].url);
        free(f->seen[i].body);
        rd_headers_free(&f->seen[i].headers);
    }
    f->nseen = 0;
}

/* --- fixture: temp HOME, config file, fixed clock ----------------------------------------------------- */

#define NOW 1764000000 /* 2025-11-24T16:00:00Z */

static time_t fixed_now(void)
{
    return NOW;
}

typedef struct fixture {
    char home[64];
    char config_path[128];
    rd_aws_config *cfg;
    fake_http http;
    rd_creds_ctx ctx;
} fixture;

static const char *const env_vars[] = {
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_EC2_METADATA_V1_DISABLED",
    "AWS_METADATA_SERVICE_TIMEOUT", "AWS_METADATA_SERVICE_NUM_ATTEMPTS", "AWS_IMDS_USE_IPV6",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO", "AWS_MAX_ATTEMPTS", NULL
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void fixture_load_config(fixture *fx, const char *config_text)
{
    write_file(fx->config_path, config_text);
    rd_error err;
    rd_error_clear(&err);
    rd_aws_config_free(fx->cfg);
    fx->cfg = NULL;
    assert_int_equal(rd_aws_config_load_paths(fx->config_path, NULL, &fx->cfg, &err), RD_OK);
    fx->ctx.cfg = fx->cfg;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->home, sizeof fx->home, "/tmp/rd-creds-remote-XXXXXX");
    assert_non_null(mkdtemp(fx->home));
    snprintf(fx->config_path, sizeof fx->config_path, "%s/config", fx->home);
    for (size_t i = 0; env_vars[i]; i++)
        unsetenv(env_vars[i]);
    setenv("HOME", fx->home, 1);
    /* Nothing here ever reaches a network (the transport is in-process), but keep the rule anyway. */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9", 1);
    setenv("AWS_ENDPOINT_URL_SSO", "http://127.0.0.1:9", 1);
    setenv("AWS_MAX_ATTEMPTS", "1", 1);
    fake_init(&fx->http);
    fixture_load_config(fx, "");
    fx->ctx.http = &fx->http.base;
    fx->ctx.region = "us-west-2";
    fx->ctx.now = fixed_now;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    fake_free(&fx->http);
    rd_aws_config_free(fx->cfg);
    rm_rf(fx->home);
    free(fx);
    return 0;
}

static rd_status get_creds(rd_creds_provider *p, rd_credentials *out, rd_error *err)
{
    rd_credentials_init(out);
    rd_error_clear(err);
    return p->vt->get(p, out, err);
}

#define CONTAINER_JSON                                                                                            \
    "{\"AccessKeyId\":\"ASIACONTAINER\",\"SecretAccessKey\":\"container-secret\",\"Token\":\"container-token\","   \
    "\"Expiration\":\"2030-01-01T00:00:00Z\",\"AccountId\":\"111122223333\"}"

/* --- container ------------------------------------------------------------------------------------------ */

static void test_container_unset_is_not_found(void **state)
{
    fixture *fx = *state;
    rd_creds_provider *p = NULL;
    rd_error err;
    assert_int_equal(rd_creds_container_new(&fx->ctx, &p, &err), RD_OK);
    rd_credentials c;
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);
    assert_int_equal(fx->http.nseen, 0);
    rd_creds_provider_free(p);
}

static void test_container_token_file_wins_and_is_reread(void **state)
{
    fixture *fx = *state;
    char token_path[160];
    snprintf(token_path, sizeof token_path, "%s/token", fx->home);
    write_file(token_path, "file-token-1");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/container/creds", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_path, 1);
    fake_route(&fx->http, "GET", "/container/creds", 200, CONTAINER_JSON);

    rd_creds_provider *p = NULL;
    rd_error err;
    assert_int_equal(rd_creds_container_new(&fx->ctx, &p, &err), RD_OK);
    rd_credentials c;
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "ASIACONTAINER");
    assert_string_equal(c.secret_access_key, "container-secret");
    assert_string_equal(c.session_token, "container-token");
    assert_string_equal(c.provider, "container-role");
    assert_string_equal(c.account_id, "111122223333");
    assert_int_equal(c.expiration, 1893456000); /* 2030-01-01T00:00:00Z */
    rd_credentials_free(&c);
    assert_int_equal(fx->http.nseen, 1);
    assert_string_equal(fx->http.seen[0].url, "http://127.0.0.1:9/container/creds");
    assert_string_equal(rd_headers_get(&fx->http.seen[0].headers, "Authorization"), "file-token-1");
    assert_string_equal(rd_headers_get(&fx->http.seen[0].headers, "Accept"), "application/json");

    write_file(token_path, "file-token-2"); /* rotated by the runtime: read again on the next fetch */
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    rd_credentials_free(&c);
    assert_int_equal(fx->http.nseen, 2);
    assert_string_equal(rd_headers_get(&fx->http.seen[1].headers, "Authorization"), "file-token-2");

    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); /* now the env token is used */
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    rd_credentials_free(&c);
    assert_string_equal(rd_headers_get(&fx->http.seen[2].headers, "Authorization"), "env-token");
    rd_creds_provider_free(p);
}

static void test_container_token_crlf_rejected(void **state)
{
    fixture *fx = *state;
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/container/creds", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "abc\r\nX-Injected: 1", 1);
    fake_route(&fx->http, "GET", "/container/creds", 200, CONTAINER_JSON);
    rd_creds_provider *p = NULL;
    rd_error err;
    assert_int_equal(rd_creds_container_new(&fx->ctx, &p, &err), RD_OK);
    rd_credentials c;
    assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "CR or LF"));
    assert_null(strstr(err.message, "abc"));
    assert_int_equal(fx->http.nseen, 0);

    /* a token file with a trailing newline is refused too (botocore reads it as is) */
    char token_path[160];
    snprintf(token_path, sizeof token_path, "%s/token", fx->home);
    write_file(token_path, "file-token\n");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_path, 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
    assert_int_equal(fx->http.nseen, 0);

    /* a missing token file is an I/O error naming it */
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/nonexistent/rd-token", 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_IO);
    assert_non_null(strstr(err.message, "/nonexistent/rd-token"));
    assert_int_equal(fx->http.nseen, 0);
    rd_creds_provider_free(p);
}

static void test_container_host_allow_list(void **state)
{
    fixture *fx = *state;
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_container_new(&fx->ctx, &p, &err), RD_OK);
    fake_route(&fx->http, "GET", "/c", 200, CONTAINER_JSON);

    static const char *const refused[] = { "http://10.0.0.1/c", "http://169.254.169.254/c", "http://example.com/c",
                                           "http://127.0.0.1.example.com/c", "http://[fd00:ec2::254]/c",
                                           "http://localhost.evil/c", NULL };
    for (size_t i = 0; refused[i]; i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], 1);
        assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG);
        assert_non_null(strstr(err.message, "Unsupported host"));
        assert_int_equal(fx->http.nseen, 0);
    }
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/c", 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "'10.0.0.1'"));
    assert_non_null(strstr(err.message, "AWS_CONTAINER_CREDENTIALS_FULL_URI"));

    /* these are allowed (the fake transport answers; no socket is opened) */
    static const char *const allowed[] = { "http://127.0.0.1:8080/c", "http://127.9.8.7/c", "http://localhost:1/c",
                                           "http://[::1]:80/c", "http://169.254.170.2/c", "http://169.254.170.23/c",
                                           "http://[fd00:ec2::23]/c", "https://creds.example.com/c", NULL };
    size_t n = 0;
    for (size_t i = 0; allowed[i]; i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", allowed[i], 1);
        assert_int_equal(get_creds(p, &c, &err), RD_OK);
        rd_credentials_free(&c);
        assert_int_equal(fx->http.nseen, ++n);
        assert_string_equal(fx->http.seen[n - 1].url, allowed[i]);
    }

    /* RELATIVE_URI wins and goes to 169.254.170.2 */
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/c?id=1", 1);
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    assert_string_equal(c.source, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    rd_credentials_free(&c);
    assert_string_equal(fx->http.seen[n].url, "http://169.254.170.2/c?id=1");
    rd_creds_provider_free(p);
}

static void test_container_incomplete_reply(void **state)
{
    fixture *fx = *state;
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c", 1);
    fake_route(&fx->http, "GET", "/c", 200, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}");
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_container_new(&fx->ctx, &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_E_REMOTE);
    assert_non_null(strstr(err.message, "Token"));
    assert_int_equal(fx->http.nseen, 1);
    rd_creds_provider_free(p);
}

/* --- IMDS ----------------------------------------------------------------------------------------------- */

#define IMDS_CREDS_JSON                                                                                           \
    "{\"Code\":\"Success\",\"LastUpdated\":\"2025-11-24T15:00:00Z\",\"Type\":\"AWS-HMAC\","                       \
    "\"AccessKeyId\":\"ASIAIMDS\",\"SecretAccessKey\":\"imds-secret\",\"Token\":\"imds-token\","                   \
    "\"Expiration\":\"2030-01-01T00:00:00Z\"}"

static void test_imds_disabled_makes_no_request(void **state)
{
    fixture *fx = *state;
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/", 1);
    fake_route(&fx->http, "PUT", "/latest/api/token", 200, "tok");
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_imds_new(&fx->ctx, &p, &err), RD_OK);
    static const char *const values[] = { "true", "TRUE", "True", NULL };
    for (size_t i = 0; values[i]; i++) {
        setenv("AWS_EC2_METADATA_DISABLED", values[i], 1);
        assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);
    }
    assert_int_equal(fx->http.nseen, 0);
    rd_creds_provider_free(p);
}

static void test_imds_v2_token_flow(void **state)
{
    fixture *fx = *state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9", 1); /* no trailing slash: one is added */
    fake_route(&fx->http, "PUT", "/latest/api/token", 200, "imds-session-token");
    fake_route(&fx->http, "GET", "/security-credentials/ec2-role", 200, IMDS_CREDS_JSON);
    fake_route(&fx->http, "GET", "/latest/meta-data/iam/security-credentials/", 200, "ec2-role");
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_imds_new(&fx->ctx, &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "ASIAIMDS");
    assert_string_equal(c.secret_access_key, "imds-secret");
    assert_string_equal(c.session_token, "imds-token");
    assert_string_equal(c.provider, "iam-role");
    assert_non_null(strstr(c.source, "ec2-role"));
    assert_int_equal(c.expiration, 1893456000);
    rd_credentials_free(&c);
    assert_int_equal(fx->http.nseen, 3);
    assert_string_equal(fx->http.seen[0].method, "PUT");
    assert_string_equal(fx->http.seen[0].url, "http://127.0.0.1:9/latest/api/token");
    assert_string_equal(rd_headers_get(&fx->http.seen[0].headers, "x-aws-ec2-metadata-token-ttl-seconds"), "21600");
    assert_string_equal(fx->http.seen[1].url, "http://127.0.0.1:9/latest/meta-data/iam/security-credentials/");
    assert_string_equal(fx->http.seen[2].url,
                        "http://127.0.0.1:9/latest/meta-data/iam/security-credentials/ec2-role");
    for (size_t i = 1; i < 3; i++) {
        assert_string_equal(fx->http.seen[i].method, "GET");
        assert_string_equal(rd_headers_get(&fx->http.seen[i].headers, "x-aws-ec2-metadata-token"),
                            "imds-session-token");
    }
    rd_creds_provider_free(p);
}

static void test_imds_v1_fallback_and_v1_disabled(void **state)
{
    fixture *fx = *state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/", 1);
    fake_route(&fx->http, "PUT", "/latest/api/token", 403, "");
    fake_route(&fx->http, "GET", "/security-credentials/ec2-role", 200, IMDS_CREDS_JSON);
    fake_route(&fx->http, "GET", "/latest/meta-data/iam/security-credentials/", 200, "ec2-role");
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_imds_new(&fx->ctx, &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    rd_credentials_free(&c);
    assert_int_equal(fx->http.nseen, 3);
    assert_null(rd_headers_get(&fx->http.seen[1].headers, "x-aws-ec2-metadata-token"));
    assert_null(rd_headers_get(&fx->http.seen[2].headers, "x-aws-ec2-metadata-token"));

    setenv("AWS_EC2_METADATA_V1_DISABLED", "true", 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_AUTH);
    assert_non_null(strstr(err.message, "IMDSv1 has been disabled"));
    assert_int_equal(fx->http.nseen, 4); /* only the token PUT */
    rd_creds_provider_free(p);
}

static void test_imds_failures_are_not_found(void **state)
{
    fixture *fx = *state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/", 1);
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_imds_new(&fx->ctx, &p, &err), RD_OK);
    /* nothing answers: PUT fails, v1 GET fails → not found (the chain goes on) */
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);
    assert_int_equal(fx->http.nseen, 2);

    /* 400 on the token PUT: stop there */
    fake_route(&fx->http, "PUT", "/latest/api/token", 400, "");
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);
    assert_int_equal(fx->http.nseen, 3);

    /* a role without usable credentials ({"Code": ...} with 200) */
    fake_free(&fx->http);
    fx->http.nroutes = 0;
    fake_route(&fx->http, "PUT", "/latest/api/token", 200, "t");
    fake_route(&fx->http, "GET", "/security-credentials/r", 200,
               "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"EC2 cannot assume the role\"}");
    fake_route(&fx->http, "GET", "/security-credentials/", 200, "r");
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);
    assert_int_equal(fx->http.nseen, 3);

    /* num_attempts from the environment: the empty role list is retried */
    fake_free(&fx->http);
    fx->http.nroutes = 0;
    fake_route(&fx->http, "PUT", "/latest/api/token", 200, "t");
    fake_route(&fx->http, "GET", "/security-credentials/", 200, "");
    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3", 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);
    assert_int_equal(fx->http.nseen, 4); /* 1 PUT + 3 GETs */

    setenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "many", 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG);
    unsetenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv5", 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "ipv5"));
    rd_creds_provider_free(p);
}

static void test_imds_ipv6_mode_and_expiry_extension(void **state)
{
    fixture *fx = *state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6", 1);
    fake_route(&fx->http, "PUT", "/latest/api/token", 200, "t");
    /* expires 5 minutes after NOW: botocore extends it by the refresh window + jitter */
    fake_route(&fx->http, "GET", "/security-credentials/r", 200,
               "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\","
               "\"Expiration\":\"2025-11-24T16:05:00Z\"}");
    fake_route(&fx->http, "GET", "/security-credentials/", 200, "r");
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_imds_new(&fx->ctx, &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    assert_true(c.expiration >= NOW + 15 * 60 + 120);
    assert_true(c.expiration <= NOW + 15 * 60 + 600);
    rd_credentials_free(&c);
    assert_string_equal(fx->http.seen[0].url, "http://[fd00:ec2::254]/latest/api/token");
    rd_creds_provider_free(p);
}

static void test_imds_settings_from_session_profile(void **state)
{
    fixture *fx = *state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    fixture_load_config(fx, "[default]\nec2_metadata_service_endpoint = http://127.0.0.1:1/\n\n"
                            "[profile ec2]\nec2_metadata_service_endpoint = http://127.0.0.2:9/\n"
                            "metadata_service_num_attempts = 2\n");
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_imds_new(&fx->ctx, &p, &err), RD_OK);
    fx->ctx.profile = "ec2"; /* the session's profile (as --profile sets it) */
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND); /* nothing answers */
    assert_int_equal(fx->http.nseen, 4);                      /* 2 PUTs + 2 GETs */
    assert_string_equal(fx->http.seen[0].url, "http://127.0.0.2:9/latest/api/token");
    fx->ctx.profile = NULL; /* AWS_PROFILE unset: [default] */
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);
    assert_string_equal(fx->http.seen[4].url, "http://127.0.0.1:1/latest/api/token");
    /* the environment wins over the profile */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.3:9", 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);
    assert_string_equal(fx->http.seen[6].url, "http://127.0.0.3:9/latest/api/token");
    rd_creds_provider_free(p);
}

/* --- SSO ------------------------------------------------------------------------------------------------ */

#define SSO_REPLY                                                                                                 \
    "{\"roleCredentials\":{\"accessKeyId\":\"ASIASSO\",\"secretAccessKey\":\"sso-secret\","                        \
    "\"sessionToken\":\"sso-session-token\",\"expiration\":1893456000000}}"

static void write_sso_cache(const fixture *fx, const char *key, const char *json)
{
    char path[256];
    snprintf(path, sizeof path, "%s/.aws", fx->home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.aws/sso", fx->home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.aws/sso/cache", fx->home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/.aws/sso/cache/%s.json", fx->home, key);
    write_file(path, json);
}

/* sha1("my-sso") and sha1("https://example.awsapps.com/start"), as `aws sso login` names the files */
#define KEY_SESSION "0ad374308c5a4e22f723adf10145eafad7c4031c"
#define KEY_LEGACY "e8be5486177c5b5392bd9aa76563515b29358e6e"

static void test_sso_session_cache_key_and_call(void **state)
{
    fixture *fx = *state;
    fixture_load_config(fx, "[profile dev]\nsso_session = my-sso\nsso_account_id = 111122223333\n"
                            "sso_role_name = ReadOnly\n\n"
                            "[sso-session my-sso]\nsso_start_url = https://example.awsapps.com/start\n"
                            "sso_region = eu-west-1\nsso_registration_scopes = sso:account:access\n");
    write_sso_cache(fx, KEY_SESSION,
                    "{\"startUrl\": \"https://example.awsapps.com/start\", \"region\": \"eu-west-1\", "
                    "\"accessToken\": \"bearer-session\", \"expiresAt\": \"2030-01-01T00:00:00Z\"}");
    /* the legacy key's file holds another token: it must not be the one used */
    write_sso_cache(fx, KEY_LEGACY,
                    "{\"accessToken\": \"bearer-legacy\", \"expiresAt\": \"2030-01-01T00:00:00Z\"}");
    fake_route(&fx->http, "GET", "/federation/credentials", 200, SSO_REPLY);
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_sso_new(&fx->ctx, "dev", &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "ASIASSO");
    assert_string_equal(c.session_token, "sso-session-token");
    assert_string_equal(c.provider, "sso");
    assert_string_equal(c.account_id, "111122223333");
    assert_int_equal(c.expiration, 1893456000);
    assert_non_null(strstr(c.source, "my-sso"));
    rd_credentials_free(&c);
    assert_int_equal(fx->http.nseen, 1);
    assert_string_equal(fx->http.seen[0].method, "GET");
    assert_non_null(strstr(fx->http.seen[0].url, "account_id=111122223333"));
    assert_non_null(strstr(fx->http.seen[0].url, "role_name=ReadOnly"));
    assert_string_equal(rd_headers_get(&fx->http.seen[0].headers, "x-amz-sso_bearer_token"), "bearer-session");
    assert_null(rd_headers_get(&fx->http.seen[0].headers, "Authorization"));
    rd_creds_provider_free(p);
}

static void test_sso_legacy_cache_key(void **state)
{
    fixture *fx = *state;
    fixture_load_config(fx, "[profile old]\nsso_start_url = https://example.awsapps.com/start\n"
                            "sso_region = us-east-1\nsso_account_id = 444455556666\nsso_role_name = Admin\n");
    write_sso_cache(fx, KEY_LEGACY,
                    "{\"startUrl\": \"https://example.awsapps.com/start\", \"region\": \"us-east-1\", "
                    "\"accessToken\": \"bearer-legacy\", \"expiresAt\": \"2030-01-01T00:00:00UTC\"}");
    fake_route(&fx->http, "GET", "/federation/credentials", 200, SSO_REPLY);
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_sso_new(&fx->ctx, "old", &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    assert_string_equal(c.account_id, "444455556666");
    rd_credentials_free(&c);
    assert_string_equal(rd_headers_get(&fx->http.seen[0].headers, "x-amz-sso_bearer_token"), "bearer-legacy");
    rd_creds_provider_free(p);
}

static void test_sso_expired_or_missing_token(void **state)
{
    fixture *fx = *state;
    const char *expected =
        "The SSO session for profile 'dev' has expired or is missing: run `aws sso login --profile dev`";
    fixture_load_config(fx, "[profile dev]\nsso_session = my-sso\nsso_account_id = 111122223333\n"
                            "sso_role_name = ReadOnly\n\n"
                            "[sso-session my-sso]\nsso_start_url = https://example.awsapps.com/start\n"
                            "sso_region = eu-west-1\n");
    fake_route(&fx->http, "GET", "/federation/credentials", 200, SSO_REPLY);
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_sso_new(&fx->ctx, "dev", &p, &err), RD_OK);
    /* no cache file at all */
    assert_int_equal(get_creds(p, &c, &err), RD_E_AUTH);
    assert_string_equal(err.message, expected);
    /* expired one second before NOW */
    write_sso_cache(fx, KEY_SESSION, "{\"accessToken\": \"bearer-old\", \"expiresAt\": \"2025-11-24T15:59:59Z\"}");
    assert_int_equal(get_creds(p, &c, &err), RD_E_AUTH);
    assert_string_equal(err.message, expected);
    assert_null(strstr(err.message, "bearer-old"));
    /* unreadable JSON and a token without expiresAt */
    write_sso_cache(fx, KEY_SESSION, "{not json");
    assert_int_equal(get_creds(p, &c, &err), RD_E_AUTH);
    write_sso_cache(fx, KEY_SESSION, "{\"accessToken\": \"bearer\"}");
    assert_int_equal(get_creds(p, &c, &err), RD_E_AUTH);
    assert_int_equal(fx->http.nseen, 0);

    /* valid locally, refused by the portal */
    write_sso_cache(fx, KEY_SESSION, "{\"accessToken\": \"bearer-revoked\", \"expiresAt\": \"2030-01-01T00:00:00Z\"}");
    fx->http.nroutes = 0;
    route r = { "GET", "/federation/credentials", 401, "{\"message\":\"Session token not found or invalid\"}",
                "x-amzn-ErrorType", "UnauthorizedException" };
    fx->http.routes[fx->http.nroutes++] = r;
    assert_int_equal(get_creds(p, &c, &err), RD_E_AUTH);
    assert_string_equal(err.message, expected);
    assert_int_equal(fx->http.nseen, 1);
    rd_creds_provider_free(p);
}

static void test_sso_config_errors(void **state)
{
    fixture *fx = *state;
    fixture_load_config(fx, "[profile partial]\nsso_account_id = 111122223333\n\n"
                            "[profile nosso]\nregion = us-east-1\n\n"
                            "[profile dangling]\nsso_session = nope\nsso_account_id = 1\nsso_role_name = R\n\n"
                            "[profile clash]\nsso_session = s\nsso_account_id = 1\nsso_role_name = R\n"
                            "sso_region = us-east-1\n\n"
                            "[sso-session s]\nsso_start_url = https://x.awsapps.com/start\nsso_region = eu-west-1\n");
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_sso_new(&fx->ctx, "partial", &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "\"partial\""));
    assert_non_null(strstr(err.message, "sso_role_name, sso_start_url, sso_region"));
    rd_creds_provider_free(p);

    assert_int_equal(rd_creds_sso_new(&fx->ctx, "nosso", &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);
    rd_creds_provider_free(p);

    assert_int_equal(rd_creds_sso_new(&fx->ctx, "dangling", &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "nope"));
    rd_creds_provider_free(p);

    assert_int_equal(rd_creds_sso_new(&fx->ctx, "clash", &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "inconsistent"));
    rd_creds_provider_free(p);
    assert_int_equal(fx->http.nseen, 0);
}

/* --- web identity --------------------------------------------------------------------------------------- */

#define STS_WEB_REPLY                                                                                             \
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"                     \
    "<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>sub</SubjectFromWebIdentityToken>"            \
    "<AssumedRoleUser><Arn>arn:aws:sts::777788889999:assumed-role/web/s1</Arn>"                                  \
    "<AssumedRoleId>AROAEXAMPLE:s1</AssumedRoleId></AssumedRoleUser>"                                            \
    "<Credentials><SessionToken>web-session-token</SessionToken><SecretAccessKey>web-secret</SecretAccessKey>"   \
    "<Expiration>2030-01-01T00:00:00Z</Expiration><AccessKeyId>ASIAWEB</AccessKeyId></Credentials>"              \
    "</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"            \
    "</AssumeRoleWithWebIdentityResponse>"

static void test_web_identity_env(void **state)
{
    fixture *fx = *state;
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_web_identity_env_new(&fx->ctx, &p, &err), RD_OK);
    assert_int_equal(get_creds(p, &c, &err), RD_E_NOT_FOUND);

    char token_path[160];
    snprintf(token_path, sizeof token_path, "%s/web-token", fx->home);
    write_file(token_path, "jwt-abc");
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token_path, 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_CONFIG); /* no role */
    assert_non_null(strstr(err.message, "AWS_ROLE_ARN"));
    assert_int_equal(fx->http.nseen, 0);

    setenv("AWS_ROLE_ARN", "arn:aws:iam::777788889999:role/web", 1);
    setenv("AWS_ROLE_SESSION_NAME", "s1", 1);
    fake_route(&fx->http, "POST", "127.0.0.1:9", 200, STS_WEB_REPLY);
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "ASIAWEB");
    assert_string_equal(c.secret_access_key, "web-secret");
    assert_string_equal(c.session_token, "web-session-token");
    assert_string_equal(c.provider, "assume-role-with-web-identity");
    assert_string_equal(c.account_id, "777788889999");
    assert_int_equal(c.expiration, 1893456000);
    rd_credentials_free(&c);
    assert_int_equal(fx->http.nseen, 1);
    const char *body = fx->http.seen[0].body;
    assert_non_null(body);
    assert_non_null(strstr(body, "Action=AssumeRoleWithWebIdentity"));
    assert_non_null(strstr(body, "WebIdentityToken=jwt-abc"));
    assert_non_null(strstr(body, "RoleSessionName=s1"));
    assert_null(rd_headers_get(&fx->http.seen[0].headers, "Authorization")); /* unsigned */

    /* the token file is re-read on every fetch */
    write_file(token_path, "jwt-def");
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    rd_credentials_free(&c);
    assert_non_null(strstr(fx->http.seen[1].body, "WebIdentityToken=jwt-def"));

    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/rd-web-token", 1);
    assert_int_equal(get_creds(p, &c, &err), RD_E_IO);
    assert_non_null(strstr(err.message, "/nonexistent/rd-web-token"));
    rd_creds_provider_free(p);
}

static void test_web_identity_profile_and_refusal(void **state)
{
    fixture *fx = *state;
    char token_path[160];
    snprintf(token_path, sizeof token_path, "%s/web-token", fx->home);
    write_file(token_path, "jwt-profile");
    rd_creds_provider *p = NULL;
    rd_error err;
    rd_credentials c;
    assert_int_equal(rd_creds_web_identity_new(&fx->ctx, "web", "arn:aws:iam::777788889999:role/web", token_path,
                                               NULL, &p, &err),
                     RD_OK);
    route r = { "POST", "127.0.0.1:9", 400,
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
                "<Code>InvalidIdentityToken</Code><Message>Incorrect token audience</Message></Error>"
                "<RequestId>r</RequestId></ErrorResponse>",
                NULL, NULL };
    fx->http.routes[fx->http.nroutes++] = r;
    assert_int_equal(get_creds(p, &c, &err), RD_E_REMOTE);
    assert_string_equal(err.aws_code, "InvalidIdentityToken");
    assert_null(strstr(err.message, "jwt-profile"));
    assert_non_null(strstr(fx->http.seen[0].body, "RoleSessionName="));

    fx->http.nroutes = 0;
    fake_route(&fx->http, "POST", "127.0.0.1:9", 200, STS_WEB_REPLY);
    assert_int_equal(get_creds(p, &c, &err), RD_OK);
    assert_string_equal(c.provider, "assume-role-with-web-identity");
    assert_non_null(strstr(fx->http.seen[1].body, "WebIdentityToken=jwt-profile"));
    rd_credentials_free(&c);
    rd_creds_provider_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_container_unset_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_token_file_wins_and_is_reread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_token_crlf_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_host_allow_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_incomplete_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_disabled_makes_no_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_v2_token_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_v1_fallback_and_v1_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_failures_are_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_ipv6_mode_and_expiry_extension, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_settings_from_session_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sso_session_cache_key_and_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sso_legacy_cache_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sso_expired_or_missing_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sso_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity_profile_and_refusal, setup, teardown),
    };
    return cmocka_run_group_tests_name("creds_remote", tests, NULL, NULL);
}
