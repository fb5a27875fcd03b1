/* creds_imds.c — EC2 instance metadata (IMDSv2 with the v1 fallback), with botocore's settings,
 * attempt rules and refresh window. */
#include "auth/creds_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/creds_json.h"
#include "aws/parse.h"
#include "core/timeutil.h"

/* --- EC2 instance metadata (IMDSv2 with v1 fallback) -------------------------------------------------------- */

#define IMDS_BASE_V4 "http://169.254.169.254/"
#define IMDS_BASE_V6 "http://[fd00:ec2::254]/"
#define IMDS_TOKEN_PATH "latest/api/token"
#define IMDS_CREDS_PATH "latest/meta-data/iam/security-credentials/"
#define IMDS_TOKEN_TTL "21600"
#define IMDS_REFRESH_WINDOW_S (15 * 60) /* botocore's ec2_credential_refresh_window */


typedef struct imds_settings {
    const char *base;   /* borrowed */
    long timeout_ms;
    int attempts;
    int v1_disabled;
} imds_settings;

static int is_true(const char *v)
{
    return v && strcasecmp(v, "true") == 0;
}

static rd_status parse_positive_int(const char *v, const char *what, long *out, rd_error *err)
{
    char *end = NULL;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    while (end && isspace((unsigned char)*end))
        end++;
    if (!v || !*v || errno || !end || *end || n < 0 || n > 3600)
        return rd_error_set(err, RD_E_CONFIG, "%s must be a whole number of seconds or attempts, not '%s'", what,
                            v ? v : "");
    *out = n;
    return RD_OK;
}

static rd_status imds_settings_load(const rd_creds_ctx *ctx, imds_settings *s, rd_error *err)
{
    long n;
    const char *v = rd_creds_setting(ctx, "AWS_METADATA_SERVICE_TIMEOUT", "metadata_service_timeout");
    s->timeout_ms = 1000;
    if (v) {
        if (parse_positive_int(v, "AWS_METADATA_SERVICE_TIMEOUT / metadata_service_timeout", &n, err) != RD_OK)
            return err ? err->code : RD_E_CONFIG;
        s->timeout_ms = n * 1000;
    }
    v = rd_creds_setting(ctx, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", "metadata_service_num_attempts");
    s->attempts = 1;
    if (v) {
        if (parse_positive_int(v, "AWS_METADATA_SERVICE_NUM_ATTEMPTS / metadata_service_num_attempts", &n, err) !=
            RD_OK)
            return err ? err->code : RD_E_CONFIG;
        s->attempts = (int)n;
    }
    s->v1_disabled = is_true(rd_creds_setting(ctx, "AWS_EC2_METADATA_V1_DISABLED", "ec2_metadata_v1_disabled"));

    const char *mode = rd_creds_setting(ctx, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ec2_metadata_service_endpoint_mode");
    int ipv6 = 0;
    if (mode) {
        if (strcasecmp(mode, "ipv6") == 0)
            ipv6 = 1;
        else if (strcasecmp(mode, "ipv4") != 0)
            return rd_error_set(err, RD_E_CONFIG,
                                "invalid EC2 metadata endpoint mode '%s' (AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE / "
                                "ec2_metadata_service_endpoint_mode): use ipv4 or ipv6",
                                mode);
    } else {
        ipv6 = is_true(rd_creds_setting(ctx, "AWS_IMDS_USE_IPV6", "imds_use_ipv6"));
    }
    const char *custom = rd_creds_setting(ctx, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "ec2_metadata_service_endpoint");
    if (custom) {
        char scheme[16], host[256];
        if (rd_creds_url_parts(custom, scheme, sizeof scheme, host, sizeof host) != 0 ||
            (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) || !host[0])
            return rd_error_set(err, RD_E_CONFIG,
                                "invalid EC2 metadata endpoint '%s' (AWS_EC2_METADATA_SERVICE_ENDPOINT / "
                                "ec2_metadata_service_endpoint): use http://host[:port]",
                                custom);
        s->base = custom;
    } else {
        s->base = ipv6 ? IMDS_BASE_V6 : IMDS_BASE_V4;
    }
    return RD_OK;
}

static void imds_url(rd_buf *url, const char *base, const char *path, const char *tail)
{
    rd_buf_reset(url);
    rd_buf_puts(url, base);
    if (url->len && url->data[url->len - 1] != '/')
        rd_buf_putc(url, '/');
    rd_buf_puts(url, path);
    if (tail)
        rd_buf_puts(url, tail);
}

/* IMDSv2 token: 200 → token; 400 → RD_E_NOT_FOUND (bad request: give up); anything else → no token
 * (RD_OK with *token NULL, botocore then tries IMDSv1). */
static rd_status imds_fetch_token(const rd_creds_ctx *ctx, const imds_settings *s, char **token)
{
    *token = NULL;
    rd_buf url = RD_BUF_INIT;
    imds_url(&url, s->base, IMDS_TOKEN_PATH, NULL);
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "x-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL);
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_status st = RD_OK;
    /* botocore's IMDSFetcher: metadata_service_num_attempts tries with no wait between them and its own
     * status rules (below); not the standard retry mode, so not rd_aws_retry_class / rd_aws_backoff_ms. */
    for (int i = 0; i < s->attempts; i++) {
        rd_error e;
        rd_error_clear(&e);
        if (rd_creds_remote_send(ctx, "PUT", rd_buf_cstr(&url), &h, s->timeout_ms, &resp, &e) != RD_OK)
            continue; /* connection errors and timeouts: try again, then fall back to IMDSv1 */
        if (resp.status == 200) {
            *token = rd_buf_detach(&resp.body);
            break;
        }
        if (resp.status == 404 || resp.status == 403 || resp.status == 405)
            break;
        if (resp.status == 400) {
            rd_log_write(ctx->log, RD_LOG_DEBUG, "EC2 metadata: bad IMDS token request (HTTP 400)");
            st = RD_E_NOT_FOUND;
            break;
        }
    }
    rd_http_response_free(&resp);
    rd_headers_free(&h);
    rd_buf_free(&url);
    return st;
}

/* GET with retries on network errors, non-200, empty bodies (and invalid JSON when want_json).
 * RD_OK with *body filled, or RD_E_NOT_FOUND when the attempts ran out. */
static rd_status imds_get(const rd_creds_ctx *ctx, const imds_settings *s, const char *url, const char *token,
                          int want_json, rd_buf *body)
{
    rd_headers h = RD_HEADERS_INIT;
    if (token)
        rd_headers_add(&h, "x-aws-ec2-metadata-token", token);
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_status st = RD_E_NOT_FOUND;
    for (int i = 0; i < s->attempts; i++) {
        rd_error e;
        rd_error_clear(&e);
        if (rd_creds_remote_send(ctx, "GET", url, &h, s->timeout_ms, &resp, &e) != RD_OK)
            continue;
        if (resp.status != 200 || resp.body.len == 0) {
            rd_log_write(ctx->log, RD_LOG_DEBUG, "EC2 metadata returned HTTP %d with %zu bytes", resp.status,
                         resp.body.len);
            continue;
        }
        if (want_json) {
            json_t *probe = NULL;
            rd_error perr;
            rd_error_clear(&perr);
            if (rd_json_parse_object(resp.body.data, resp.body.len, RD_E_REMOTE, "EC2 metadata's reply", &probe,
                                     &perr) != RD_OK) {
                rd_log_write(ctx->log, RD_LOG_DEBUG, "%s", perr.message);
                continue;
            }
            json_decref(probe);
        }
        rd_buf_reset(body);
        if (rd_buf_append(body, resp.body.data, resp.body.len) != RD_OK)
            st = RD_E_INTERNAL;
        else
            st = RD_OK;
        break;
    }
    rd_http_response_free(&resp);
    rd_headers_free(&h); /* cleanses the IMDS token */
    return st;
}

static rd_status imds_get_credentials(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    rd_creds_ctx_provider *p = (rd_creds_ctx_provider *)base;
    const rd_creds_ctx *ctx = p->ctx;
    const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
    if (disabled && strcasecmp(disabled, "true") == 0)
        return rd_error_set(err, RD_E_NOT_FOUND, "EC2 instance metadata is disabled (AWS_EC2_METADATA_DISABLED)");
    if (!ctx->http)
        return rd_error_set(err, RD_E_INTERNAL, "EC2 instance metadata: no HTTP transport");
    imds_settings s;
    memset(&s, 0, sizeof s);
    rd_status st = imds_settings_load(ctx, &s, err);
    if (st != RD_OK)
        return st;

    char *token = NULL;
    if (imds_fetch_token(ctx, &s, &token) != RD_OK)
        return rd_error_set(err, RD_E_NOT_FOUND, "EC2 instance metadata refused the token request");
    if (!token && s.v1_disabled)
        return rd_error_set(err, RD_E_AUTH,
                            "Unable to retrieve token for use in IMDSv2 call and IMDSv1 has been disabled "
                            "(AWS_EC2_METADATA_V1_DISABLED / ec2_metadata_v1_disabled): check the instance's metadata "
                            "options or %s",
                            s.base);
    rd_buf url = RD_BUF_INIT, role = RD_BUF_INIT, body = RD_BUF_INIT;
    imds_url(&url, s.base, IMDS_CREDS_PATH, NULL);
    st = imds_get(ctx, &s, rd_buf_cstr(&url), token, 0, &role);
    if (st == RD_OK) {
        imds_url(&url, s.base, IMDS_CREDS_PATH, rd_buf_cstr(&role));
        st = imds_get(ctx, &s, rd_buf_cstr(&url), token, 1, &body);
    }
    rd_creds_free_secret(token);
    if (st != RD_OK) {
        rd_buf_free(&url);
        rd_buf_free(&role);
        rd_buf_free_secure(&body);
        return st == RD_E_INTERNAL ? rd_creds_oom(err)
                                   : rd_error_set(err, RD_E_NOT_FOUND,
                                                  "no IAM role credentials from EC2 instance metadata at %s", s.base);
    }
    json_t *o = NULL;
    rd_json_parse_object(body.data, body.len, RD_E_REMOTE, "EC2 metadata's reply", &o, NULL); /* checked above */
    rd_buf_free_secure(&body);
    static const rd_creds_json_names names = { .access_key_id = "AccessKeyId",
                                               .secret_access_key = "SecretAccessKey",
                                               .session_token = "Token",
                                               .expiration = "Expiration",
                                               .provider = "iam-role",
                                               .token_required = 1,
                                               .expiration_required = 1,
                                               .lenient_expiration = 1 };
    rd_buf src = RD_BUF_INIT;
    rd_buf_printf(&src, "EC2 instance metadata %s (role %s)", s.base, rd_buf_cstr(&role));
    char *source = rd_buf_detach(&src);
    rd_creds_json_fault fault = { RD_CREDS_JSON_OK, NULL, NULL };
    st = source ? rd_creds_from_json(o, &names, source, out, &fault, err) : rd_creds_oom(err);
    if (fault.kind == RD_CREDS_JSON_MISSING) {
        /* IMDS answers 200 with {"Code": ..., "Message": ...} when the role cannot be used. */
        const char *code = json_string_value(json_object_get(o, "Code"));
        rd_log_write(ctx->log, RD_LOG_DEBUG, "EC2 metadata credentials for role %s are incomplete (Code %s)",
                     rd_buf_cstr(&role), code ? code : "-");
        free(source);
        json_decref(o);
        rd_buf_free(&url);
        rd_buf_free(&role);
        return rd_error_set(err, RD_E_NOT_FOUND, "EC2 instance metadata returned no usable credentials");
    }
    if (st == RD_OK) {
        if (fault.kind == RD_CREDS_JSON_BAD_EXPIRATION) {
            rd_log_write(ctx->log, RD_LOG_DEBUG, "unable to parse the IMDS Expiration");
        } else {
            /* botocore extends credentials that are about to expire (IMDS outage resilience). */
            time_t now = rd_creds_ctx_now(ctx);
            long offset = IMDS_REFRESH_WINDOW_S + 120 + (long)((unsigned long)now % 481);
            if (now >= out->expiration - offset)
                out->expiration = now + offset;
        }
        rd_log_write(ctx->log, RD_LOG_INFO, "Found credentials from IAM Role: %s", rd_buf_cstr(&role));
    }
    free(source);
    json_decref(o);
    rd_buf_free(&url);
    rd_buf_free(&role);
    return st;
}

static const rd_creds_provider_vtable imds_vtable = {
    "iam-role", imds_get_credentials, rd_creds_ctx_provider_destroy
};

rd_status rd_creds_imds_new(const rd_creds_ctx *ctx, rd_creds_provider **out, rd_error *err)
{
    return rd_creds_ctx_provider_new(ctx, &imds_vtable, out, err);
}
