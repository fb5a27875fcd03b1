/* creds_remote.c — what the providers that ask a remote endpoint share: small file reads, the unsigned
 * exchange with the container / instance metadata endpoints through the session's transport (logged as
 * client.c logs), the stack rd_aws_client of an STS/SSO call, settings as botocore resolves them. */
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
#include "aws/parse.h"
#include "core/timeutil.h"

/* --- shared helpers ----------------------------------------------------------------------------------- */

/* Reads a whole (small) file into b. Returns 0 or errno. */
int rd_creds_read_small_file(const char *path, rd_buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno ? errno : EIO;
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (rd_buf_append(b, chunk, n) != RD_OK) {
            rc = ENOMEM;
            break;
        }
        if (b->len > (1u << 20)) { /* tokens are small; refuse a runaway file */
            rc = EFBIG;
            break;
        }
    }
    if (!rc && ferror(f))
        rc = EIO;
    fclose(f);
    if (!rc && !b->data)
        rc = rd_buf_puts(b, "") == RD_OK ? 0 : ENOMEM;
    return rc;
}

/* "host[:port]" and the path without query, for log lines as client.c writes them (no query: it could
 * carry secrets). */
void rd_creds_url_for_log(const char *url, char *host, size_t hlen, char *path, size_t plen)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    snprintf(host, hlen, "%.*s", (int)n, p);
    p += n;
    size_t m = strcspn(p, "?#");
    snprintf(path, plen, "%.*s", (int)m, m ? p : "/");
}

/* One plain HTTP exchange (not AWS-signed) with a log line like client.c's; headers are never logged
 * with their values when secret. */
rd_status rd_creds_remote_send(const rd_creds_ctx *ctx, const char *method, const char *url, const rd_headers *headers,
                            long timeout_ms, rd_http_response *resp, rd_error *err)
{
    rd_http_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.timeout_ms = timeout_ms;
    long long t0 = rd_monotonic_ms();
    rd_http_response_reset(resp);
    rd_status st = rd_http_send(ctx->http, &req, resp, err);
    if (rd_log_enabled(ctx->log, RD_LOG_INFO)) {
        char host[256], path[512];
        rd_creds_url_for_log(url, host, sizeof host, path, sizeof path);
        if (st == RD_OK)
            rd_log_write(ctx->log, RD_LOG_INFO, "%s %s %s -> %d (%ld ms)", method, host, path, resp->status,
                         (long)(rd_monotonic_ms() - t0));
        else
            rd_log_write(ctx->log, RD_LOG_INFO, "%s %s %s -> %s (%ld ms)", method, host, path,
                         err ? err->message : rd_status_str(st), (long)(rd_monotonic_ms() - t0));
        if (rd_log_enabled(ctx->log, RD_LOG_DEBUG) && headers)
            for (size_t i = 0; i < headers->count; i++)
                rd_log_write(ctx->log, RD_LOG_DEBUG, "  > %s: %s", headers->items[i].name,
                             rd_header_is_secret(headers->items[i].name) ? "<redacted>" : headers->items[i].value);
    }
    return st;
}

/* An rd_aws_client on the caller's stack for one unsigned STS/SSO call. */
void rd_creds_stack_client(rd_aws_client *c, const rd_creds_ctx *ctx, const char *profile, const char *region)
{
    memset(c, 0, sizeof *c);
    c->http = ctx->http;
    c->cfg = ctx->cfg;
    c->profile = profile;
    c->region = region;
    c->log = ctx->log;
    c->now = ctx->now;
}

const char *rd_creds_session_profile(const rd_creds_ctx *ctx)
{
    return ctx->profile && *ctx->profile ? ctx->profile : rd_aws_profile_name(NULL);
}

/* A setting as botocore's config chain resolves it: environment variable, then the profile's key. */
const char *rd_creds_setting(const rd_creds_ctx *ctx, const char *env, const char *key)
{
    const char *v = env ? getenv(env) : NULL;
    if (v)
        return v;
    return ctx->cfg ? rd_aws_config_get(ctx->cfg, rd_creds_session_profile(ctx), key) : NULL;
}

/* The URL's scheme and hostname as Python's urlparse gives them (hostname lowercased, IPv6 without
 * brackets). Returns 0, or -1 when there is no "scheme://". */
int rd_creds_url_parts(const char *url, char *scheme, size_t slen, char *host, size_t hlen)
{
    const char *sep = strstr(url, "://");
    if (!sep || (size_t)(sep - url) >= slen)
        return -1;
    for (size_t i = 0; url + i < sep; i++)
        scheme[i] = (char)tolower((unsigned char)url[i]);
    scheme[sep - url] = '\0';
    const char *p = sep + 3;
    size_t netloc = strcspn(p, "/?#");
    const char *end = p + netloc;
    for (const char *q = end; q > p; q--)
        if (q[-1] == '@') {
            p = q;
            break;
        }
    size_t n;
    if (*p == '[') {
        p++;
        const char *close = memchr(p, ']', (size_t)(end - p));
        n = close ? (size_t)(close - p) : (size_t)(end - p);
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        n = colon ? (size_t)(colon - p) : (size_t)(end - p);
    }
    if (n >= hlen)
        n = hlen - 1;
    for (size_t i = 0; i < n; i++)
        host[i] = (char)tolower((unsigned char)p[i]);
    host[n] = '\0';
    return 0;
}

void rd_creds_free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

rd_status rd_creds_ctx_provider_new(const rd_creds_ctx *ctx, const rd_creds_provider_vtable *vt,
                                    rd_creds_provider **out, rd_error *err)
{
    rd_creds_ctx_provider *p = calloc(1, sizeof *p);
    if (!p)
        return rd_creds_oom(err);
    p->base.vt = vt;
    p->ctx = ctx;
    *out = &p->base;
    return RD_OK;
}

void rd_creds_ctx_provider_destroy(rd_creds_provider *base)
{
    free(base);
}
