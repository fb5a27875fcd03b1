/* creds_container.c — the container credentials endpoint (ECS task role, EKS Pod Identity): the URL
 * rules, the authorization token and botocore's attempt rules. */
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
#include "core/net.h"
#include "core/timeutil.h"

/* --- container endpoint (ECS / EKS Pod Identity) ---------------------------------------------------------- */

#define CONTAINER_IP "169.254.170.2"
#define CONTAINER_TIMEOUT_MS 2000
#define CONTAINER_ATTEMPTS 3
#define CONTAINER_SLEEP_MS 1000



static rd_status container_validate_url(const char *url, const char *var, rd_error *err)
{
    static const char *const allowed[] = { CONTAINER_IP, "169.254.170.23", "fd00:ec2::23", "localhost" };
    char scheme[16], host[256];
    if (rd_creds_url_parts(url, scheme, sizeof scheme, host, sizeof host) != 0)
        return rd_error_set(err, RD_E_CONFIG, "%s is not a URL (scheme://host/path): set it to the endpoint's full URL",
                            var);
    if (strcmp(scheme, "https") == 0 || rd_ip_is_loopback(host) /* ipaddress.ip_address(host).is_loopback */)
        return RD_OK;
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        if (strcmp(host, allowed[i]) == 0)
            return RD_OK;
    return rd_error_set(err, RD_E_CONFIG,
                        "Unsupported host '%s' in %s. Can only retrieve metadata from a loopback address or one of "
                        "these hosts: %s, 169.254.170.23, fd00:ec2::23, localhost (or use https)",
                        host, var, CONTAINER_IP);
}

/* The Authorization value: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read each time) wins over
 * AWS_CONTAINER_AUTHORIZATION_TOKEN. *token is NULL when neither is set. */
static rd_status container_auth_token(char **token, rd_error *err)
{
    *token = NULL;
    const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *from;
    if (file) {
        rd_buf b = RD_BUF_INIT;
        int rc = rd_creds_read_small_file(file, &b);
        if (rc) {
            rd_buf_free_secure(&b);
            return rd_error_set(err, RD_E_IO,
                                "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '%s': %s; check the path the "
                                "container runtime mounted",
                                file, strerror(rc));
        }
        /* botocore reads the file as is: no stripping, so a trailing newline is refused below. */
        *token = rd_buf_detach(&b);
        from = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
    } else {
        const char *v = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        if (!v)
            return RD_OK;
        *token = strdup(v);
        from = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
    }
    if (!*token)
        return rd_creds_oom(err);
    if (strpbrk(*token, "\r\n")) {
        OPENSSL_cleanse(*token, strlen(*token));
        free(*token);
        *token = NULL;
        return rd_error_set(err, RD_E_CONFIG,
                            "the container authorization token from %s contains a CR or LF character, which is not "
                            "a legal header value: remove line breaks (and any trailing newline)",
                            from);
    }
    return RD_OK;
}

static rd_status container_parse(const json_t *o, rd_credentials *out, const char *source, rd_error *err)
{
    static const rd_creds_json_names names = { .access_key_id = "AccessKeyId",
                                               .secret_access_key = "SecretAccessKey",
                                               .session_token = "Token",
                                               .expiration = "Expiration",
                                               .account_id = "AccountId",
                                               .provider = "container-role",
                                               .token_required = 1,
                                               .expiration_required = 1 };
    rd_creds_json_fault fault;
    rd_status st = rd_creds_from_json(o, &names, source, out, &fault, err);
    if (fault.kind == RD_CREDS_JSON_MISSING)
        st = rd_error_set(err, RD_E_REMOTE,
                          "the container credentials endpoint (%s) replied without %s: check the task role / pod "
                          "identity association",
                          source, fault.field);
    else if (fault.kind == RD_CREDS_JSON_BAD_EXPIRATION)
        st = rd_error_set(err, RD_E_REMOTE, "the container credentials endpoint (%s) replied with an unreadable "
                          "Expiration '%s'", source, fault.text);
    return st;
}

static rd_status container_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    rd_creds_ctx_provider *p = (rd_creds_ctx_provider *)base;
    const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return rd_error_set(err, RD_E_NOT_FOUND, "no container credentials endpoint configured");
    if (!p->ctx->http)
        return rd_error_set(err, RD_E_INTERNAL, "container credentials: no HTTP transport");
    const char *var = rel ? "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" : "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    rd_buf url = RD_BUF_INIT;
    if (rel)
        rd_buf_printf(&url, "http://%s%s", CONTAINER_IP, rel);
    else
        rd_buf_puts(&url, full);
    if (!url.data) {
        rd_buf_free(&url);
        return rd_creds_oom(err);
    }

    char *token = NULL;
    rd_status st = container_auth_token(&token, err);
    if (st == RD_OK)
        st = container_validate_url(rd_buf_cstr(&url), var, err);
    if (st != RD_OK) {
        rd_creds_free_secret(token);
        rd_buf_free(&url);
        return st;
    }
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "Accept", "application/json");
    if (token)
        rd_headers_add(&h, "Authorization", token);
    rd_creds_free_secret(token);

    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_error last;
    rd_error_clear(&last);
    char host[256], path[512], target[800];
    rd_creds_url_for_log(rd_buf_cstr(&url), host, sizeof host, path, sizeof path);
    snprintf(target, sizeof target, "%s%s", host, path);
    /* botocore's ContainerMetadataFetcher: every failure (a non-200 reply too) is tried again, up to
     * CONTAINER_ATTEMPTS, CONTAINER_SLEEP_MS apart; only a TLS certificate verdict stops at once. That is not
     * the standard retry mode, so this loop does not use rd_aws_retry_class / rd_aws_backoff_ms. */
    for (int attempt = 1;; attempt++) {
        rd_error_clear(&last);
        st = rd_creds_remote_send(p->ctx, "GET", rd_buf_cstr(&url), &h, CONTAINER_TIMEOUT_MS, &resp, &last);
        if (st == RD_OK) {
            if (resp.status == 200) {
                char what[900];
                snprintf(what, sizeof what, "the reply of %s", target);
                json_t *o = NULL;
                st = rd_json_parse_object(resp.body.data, resp.body.len, RD_E_REMOTE, what, &o, &last);
                if (st == RD_OK) {
                    st = container_parse(o, out, var, err);
                    json_decref(o);
                    break;
                }
                rd_error_prefix(&last, "Unable to parse JSON returned from container metadata services: ");
            } else {
                int refused = resp.status == 401 || resp.status == 403;
                st = rd_error_set(&last, refused ? RD_E_DENIED : RD_E_REMOTE,
                                  "Received non 200 response %d from container metadata (%s)%s", resp.status, target,
                                  refused ? "; check AWS_CONTAINER_AUTHORIZATION_TOKEN / _TOKEN_FILE" : "");
                last.http_status = resp.status;
            }
        } else if (st == RD_E_CONFIG) {
            /* the transport's certificate verdict (rd_http_tls_failure): another attempt cannot help */
            if (err)
                *err = last;
            break;
        } else {
            rd_error_prefix(&last, "Received error when attempting to retrieve container metadata: ");
        }
        if (attempt >= CONTAINER_ATTEMPTS) {
            if (err)
                *err = last;
            rd_error_prefix(err, "Error retrieving credentials from container metadata (%s) after %d attempts: ",
                            var, attempt);
            st = last.code ? last.code : RD_E_REMOTE;
            break;
        }
        rd_sleep_ms(CONTAINER_SLEEP_MS);
    }
    rd_http_response_free(&resp); /* cleanses the body, which held the credentials */
    rd_headers_free(&h);          /* cleanses the values (the Authorization token) */
    rd_buf_free(&url);
    return st;
}

static const rd_creds_provider_vtable container_vtable = {
    "container-role", container_get, rd_creds_ctx_provider_destroy
};

rd_status rd_creds_container_new(const rd_creds_ctx *ctx, rd_creds_provider **out, rd_error *err)
{
    return rd_creds_ctx_provider_new(ctx, &container_vtable, out, err);
}
