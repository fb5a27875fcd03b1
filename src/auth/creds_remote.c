/* creds_remote.c — the credential providers that ask a service: STS AssumeRoleWithWebIdentity (token file),
 * IAM Identity Center (SSO token cache + GetRoleCredentials), the container endpoint (ECS/EKS) and EC2
 * instance metadata (IMDSv2), each as botocore 1.43 does it. Does not own caching/refresh (see
 * rd_creds_cached_new), the chain order, signing or the STS/SSO wire formats (services/sts.c, sso.c). */
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
#include "auth/creds_chain.h"
#include "aws/parse.h"
#include "core/timeutil.h"
#include "services/sso.h"
#include "services/sts.h"

/* --- shared helpers ----------------------------------------------------------------------------------- */

static time_t ctx_now(const rd_creds_ctx *ctx)
{
    return ctx && ctx->now ? ctx->now() : time(NULL);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* botocore reads os.environ[...] with `in`: a variable set to "" counts as set. */
static const char *env_get(const char *name)
{
    return getenv(name);
}

/* Reads a whole (small) file into b. Returns 0 or errno. */
static int read_small_file(const char *path, rd_buf *b)
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
static void url_for_log(const char *url, char *host, size_t hlen, char *path, size_t plen)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    snprintf(host, hlen, "%.*s", (int)n, p);
    p += n;
    size_t m = strcspn(p, "?#");
    snprintf(path, plen, "%.*s", (int)m, m ? p : "/");
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* One plain HTTP exchange (not AWS-signed) with a log line like client.c's; headers are never logged
 * with their values when secret. */
static rd_status plain_send(const rd_creds_ctx *ctx, const char *method, const char *url, const rd_headers *headers,
                            long timeout_ms, rd_http_response *resp, rd_error *err)
{
    rd_http_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.timeout_ms = timeout_ms;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rd_http_response_reset(resp);
    rd_status st = rd_http_send(ctx->http, &req, resp, err);
    if (rd_log_enabled(ctx->log, RD_LOG_INFO)) {
        char host[256], path[512];
        url_for_log(url, host, sizeof host, path, sizeof path);
        if (st == RD_OK)
            rd_log_write(ctx->log, RD_LOG_INFO, "%s %s %s -> %d (%ld ms)", method, host, path, resp->status,
                         elapsed_ms(&t0));
        else
            rd_log_write(ctx->log, RD_LOG_INFO, "%s %s %s -> %s (%ld ms)", method, host, path,
                         err ? err->message : rd_status_str(st), elapsed_ms(&t0));
        if (rd_log_enabled(ctx->log, RD_LOG_DEBUG) && headers)
            for (size_t i = 0; i < headers->count; i++)
                rd_log_write(ctx->log, RD_LOG_DEBUG, "  > %s: %s", headers->items[i].name,
                             rd_header_is_secret(headers->items[i].name) ? "<redacted>" : headers->items[i].value);
    }
    return st;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* An rd_aws_client on the caller's stack for one unsigned STS/SSO call. */
static void stack_client(rd_aws_client *c, const rd_creds_ctx *ctx, const char *profile, const char *region)
{
    memset(c, 0, sizeof *c);
    c->http = ctx->http;
    c->cfg = ctx->cfg;
    c->profile = profile;
    c->region = region;
    c->log = ctx->log;
    c->now = ctx->now;
}

static rd_status oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

static const char *session_profile(const rd_creds_ctx *ctx)
{
    return ctx->profile && *ctx->profile ? ctx->profile : rd_aws_profile_name(NULL);
}

/* A setting as botocore's config chain resolves it: environment variable, then the profile's key. */
static const char *setting(const rd_creds_ctx *ctx, const char *env, const char *key)
{
    const char *v = env ? getenv(env) : NULL;
    if (v)
        return v;
    return ctx->cfg ? rd_aws_config_get(ctx->cfg, session_profile(ctx), key) : NULL;
}

/* --- web identity --------------------------------------------------------------------------------------- */

typedef struct web_identity_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    int from_env;        /* read AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN / AWS_ROLE_SESSION_NAME at get() */
    char *profile;       /* NULL for the env provider: the session's profile */
    char *role_arn;
    char *token_file;
    char *session_name;
} web_identity_provider;

static rd_status web_identity_fetch(const rd_creds_ctx *ctx, const char *profile, const char *role_arn,
                                    const char *token_file, const char *session_name, const char *source,
                                    rd_credentials *out, rd_error *err)
{
    if (!role_arn || !*role_arn)
        return rd_error_set(err, RD_E_CONFIG,
                            "%s is configured to assume a role with a web identity token (%s) but has no role "
                            "ARN: set role_arn in the profile or the AWS_ROLE_ARN environment variable",
                            source, token_file);
    rd_buf token = RD_BUF_INIT;
    int rc = read_small_file(token_file, &token);
    if (rc) {
        rd_buf_free_secure(&token);
        return rd_error_set(err, RD_E_IO,
                            "cannot read the web identity token file '%s' (%s): %s; check the path or re-create "
                            "the token",
                            token_file, source, strerror(rc));
    }
    rd_aws_client c;
    stack_client(&c, ctx, profile, ctx->region && *ctx->region ? ctx->region : "us-east-1");
    rd_credentials cr;
    rd_credentials_init(&cr);
    /* botocore sends the file's content as read (no stripping). */
    rd_status st = rd_sts_assume_role_with_web_identity(&c, role_arn, session_name, rd_buf_cstr(&token), 0, &cr,
                                                        err);
    rd_buf_free_secure(&token);
    if (st != RD_OK) {
        rd_credentials_free(&cr);
        return st;
    }
    if (rd_credentials_set(&cr.provider, "assume-role-with-web-identity") != RD_OK ||
        rd_credentials_set(&cr.source, source) != RD_OK) {
        rd_credentials_free(&cr);
        return oom(err);
    }
    rd_credentials_free(out);
    *out = cr;
    return RD_OK;
}

static rd_status web_identity_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    web_identity_provider *p = (web_identity_provider *)base;
    if (p->from_env) {
        const char *file = env_get("AWS_WEB_IDENTITY_TOKEN_FILE");
        if (!file || !*file)
            return rd_error_set(err, RD_E_NOT_FOUND, "AWS_WEB_IDENTITY_TOKEN_FILE is not set");
        const char *role = env_get("AWS_ROLE_ARN");
        /* botocore takes each key from the environment first, then from the profile. */
        const char *profile = session_profile(p->ctx);
        if (!role && p->ctx->cfg)
            role = rd_aws_config_get(p->ctx->cfg, profile, "role_arn");
        const char *session = env_get("AWS_ROLE_SESSION_NAME");
        if (!session && p->ctx->cfg)
            session = rd_aws_config_get(p->ctx->cfg, profile, "role_session_name");
        return web_identity_fetch(p->ctx, profile, role, file, session, "AWS_WEB_IDENTITY_TOKEN_FILE", out, err);
    }
    char *source = NULL;
    if (p->ctx->cfg)
        source = rd_aws_config_describe(p->ctx->cfg, p->profile, "web_identity_token_file");
    rd_buf fallback = RD_BUF_INIT;
    if (!source) {
        rd_buf_printf(&fallback, "profile '%s'", p->profile);
        source = rd_buf_detach(&fallback);
        if (!source)
            return oom(err);
    }
    rd_status st = web_identity_fetch(p->ctx, p->profile, p->role_arn, p->token_file, p->session_name, source, out,
                                      err);
    free(source);
    return st;
}

static void web_identity_destroy(rd_creds_provider *base)
{
    web_identity_provider *p = (web_identity_provider *)base;
    free(p->profile);
    free(p->role_arn);
    free(p->token_file);
    free(p->session_name);
    free(p);
}

static const rd_creds_provider_vtable web_identity_vtable = { "assume-role-with-web-identity", web_identity_get,
                                                              web_identity_destroy };

rd_status rd_creds_web_identity_new(const rd_creds_ctx *ctx, const char *profile, const char *role_arn,
                                    const char *token_file, const char *session_name, rd_creds_provider **out,
                                    rd_error *err)
{
    if (!token_file || !*token_file)
        return rd_error_set(err, RD_E_CONFIG, "profile '%s': web_identity_token_file is empty",
                            profile ? profile : "default");
    web_identity_provider *p = calloc(1, sizeof *p);
    if (!p)
        return oom(err);
    p->base.vt = &web_identity_vtable;
    p->ctx = ctx;
    p->profile = strdup(profile ? profile : "default");
    p->role_arn = dup_or_null(role_arn);
    p->token_file = strdup(token_file);
    p->session_name = dup_or_null(session_name);
    if (!p->profile || !p->token_file || (role_arn && !p->role_arn) || (session_name && !p->session_name)) {
        web_identity_destroy(&p->base);
        return oom(err);
    }
    *out = &p->base;
    return RD_OK;
}

rd_status rd_creds_web_identity_env_new(const rd_creds_ctx *ctx, rd_creds_provider **out, rd_error *err)
{
    web_identity_provider *p = calloc(1, sizeof *p);
    if (!p)
        return oom(err);
    p->base.vt = &web_identity_vtable;
    p->ctx = ctx;
    p->from_env = 1;
    *out = &p->base;
    return RD_OK;
}

/* --- SSO ------------------------------------------------------------------------------------------------ */

typedef struct sso_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
} sso_provider;

/* Lowercase hex SHA-1 of s into out[41] (the `aws sso login` token cache key). */
static int sha1_hex(const char *s, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return -1;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : NULL;
}

static rd_status sso_expired(const char *profile, rd_error *err)
{
    return rd_error_set(err, RD_E_AUTH,
                        "The SSO session for profile '%s' has expired or is missing: run `aws sso login --profile %s`",
                        profile, profile);
}

static rd_status sso_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    sso_provider *p = (sso_provider *)base;
    const rd_aws_config *cfg = p->ctx->cfg;
    const char *profile = p->profile;
    if (!cfg)
        return rd_error_set(err, RD_E_NOT_FOUND, "no AWS config loaded");
    const char *role = rd_aws_config_get(cfg, profile, "sso_role_name");
    const char *account = rd_aws_config_get(cfg, profile, "sso_account_id");
    if (!role && !account)
        return rd_error_set(err, RD_E_NOT_FOUND, "profile '%s' has no SSO configuration", profile);

    const char *session = rd_aws_config_get(cfg, profile, "sso_session");
    const char *start_url = rd_aws_config_get(cfg, profile, "sso_start_url");
    const char *region = rd_aws_config_get(cfg, profile, "sso_region");
    if (session) {
        const char *s_url = rd_aws_config_section_get(cfg, "sso-session", session, "sso_start_url");
        const char *s_region = rd_aws_config_section_get(cfg, "sso-session", session, "sso_region");
        if (!s_url && !s_region)
            return rd_error_set(err, RD_E_CONFIG,
                                "profile '%s' names sso_session '%s', but %s has no [sso-session %s] section with "
                                "sso_start_url and sso_region: add it or run `aws configure sso-session`",
                                profile, session, rd_aws_config_config_path(cfg) ? rd_aws_config_config_path(cfg)
                                                                                  : "the config file",
                                session);
        /* botocore: a key set in both the profile and the sso-session must agree. */
        if (s_url && start_url && strcmp(s_url, start_url) != 0)
            return rd_error_set(err, RD_E_CONFIG,
                                "The value for sso_start_url is inconsistent between profile (%s) and sso-session "
                                "(%s): profile '%s', fix one of them",
                                start_url, s_url, profile);
        if (s_region && region && strcmp(s_region, region) != 0)
            return rd_error_set(err, RD_E_CONFIG,
                                "The value for sso_region is inconsistent between profile (%s) and sso-session (%s): "
                                "profile '%s', fix one of them",
                                region, s_region, profile);
        if (s_url)
            start_url = s_url;
        if (s_region)
            region = s_region;
    }
    const char *names[] = { "sso_role_name", "sso_account_id", "sso_start_url", "sso_region" };
    const char *values[] = { role, account, start_url, region };
    rd_buf missing = RD_BUF_INIT;
    for (size_t i = 0; i < 4; i++)
        if (!values[i])
            rd_buf_printf(&missing, "%s%s", missing.len ? ", " : "", names[i]);
    if (missing.len) {
        rd_status st = rd_error_set(err, RD_E_CONFIG,
                                    "The profile \"%s\" is configured to use SSO but is missing required "
                                    "configuration: %s; add the missing keys or run `aws configure sso --profile %s`",
                                    profile, rd_buf_cstr(&missing), profile);
        rd_buf_free(&missing);
        return st;
    }
    rd_buf_free(&missing);

    char key[41];
    if (sha1_hex(session ? session : start_url, key) != 0)
        return rd_error_set(err, RD_E_INTERNAL, "SHA-1 is not available from OpenSSL");
    const char *home = home_dir();
    if (!home)
        return rd_error_set(err, RD_E_CONFIG, "cannot find the home directory for the SSO token cache: set HOME");
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "%s/.aws/sso/cache/%s.json", home, key);
    rd_buf text = RD_BUF_INIT;
    int rc = read_small_file(rd_buf_cstr(&path), &text);
    rd_log_write(p->ctx->log, RD_LOG_DEBUG, "SSO token cache %s: %s", rd_buf_cstr(&path), rc ? strerror(rc) : "read");
    json_t *doc = NULL;
    if (!rc) {
        rd_buf what = RD_BUF_INIT;
        rd_buf_printf(&what, "the SSO token cache file %s", rd_buf_cstr(&path));
        rd_error perr;
        rd_error_clear(&perr);
        rd_status pst = rd_json_parse_object(rd_buf_cstr(&text), text.len, RD_E_AUTH, rd_buf_cstr(&what), &doc,
                                             &perr);
        rd_buf_free(&what);
        if (pst != RD_OK) {
            rd_buf_free_secure(&text);
            rd_buf_free(&path);
            return rd_error_set(err, pst, "profile '%s': %s; run `aws sso login --profile %s`", profile,
                                perr.message, profile);
        }
    }
    rd_buf_free(&path);
    rd_buf_free_secure(&text);
    const char *token = json_string_value(json_object_get(doc, "accessToken"));
    const char *expires = json_string_value(json_object_get(doc, "expiresAt"));
    time_t expiry = 0;
    if (!token || !*token || !expires || rd_time_parse_iso8601(expires, &expiry) != 0 ||
        expiry - ctx_now(p->ctx) <= 0) {
        json_decref(doc);
        return sso_expired(profile, err);
    }

    rd_aws_client c;
    stack_client(&c, p->ctx, profile, region);
    rd_credentials cr;
    rd_credentials_init(&cr);
    rd_status st = rd_sso_get_role_credentials(&c, token, account, role, &cr, err);
    json_decref(doc);
    if (st == RD_E_AUTH) {
        rd_credentials_free(&cr);
        return sso_expired(profile, err);
    }
    if (st != RD_OK) {
        rd_credentials_free(&cr);
        return rd_error_prefix(err, "profile '%s': ", profile);
    }
    rd_buf src = RD_BUF_INIT;
    char *where = rd_aws_config_describe(cfg, profile, "sso_role_name");
    rd_buf_puts(&src, where ? where : profile);
    free(where);
    if (session)
        rd_buf_printf(&src, " via sso-session '%s'", session);
    char *source = rd_buf_detach(&src);
    if (!source || rd_credentials_set(&cr.provider, "sso") != RD_OK ||
        rd_credentials_set(&cr.source, source) != RD_OK ||
        (!cr.account_id && rd_credentials_set(&cr.account_id, account) != RD_OK)) {
        free(source);
        rd_credentials_free(&cr);
        return oom(err);
    }
    free(source);
    rd_credentials_free(out);
    *out = cr;
    return RD_OK;
}

static void sso_destroy(rd_creds_provider *base)
{
    sso_provider *p = (sso_provider *)base;
    free(p->profile);
    free(p);
}

static const rd_creds_provider_vtable sso_vtable = { "sso", sso_get, sso_destroy };

rd_status rd_creds_sso_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out, rd_error *err)
{
    sso_provider *p = calloc(1, sizeof *p);
    if (!p)
        return oom(err);
    p->base.vt = &sso_vtable;
    p->ctx = ctx;
    p->profile = strdup(profile ? profile : "default");
    if (!p->profile) {
        free(p);
        return oom(err);
    }
    *out = &p->base;
    return RD_OK;
}

/* --- container endpoint (ECS / EKS Pod Identity) ---------------------------------------------------------- */

#define CONTAINER_IP "169.254.170.2"
#define CONTAINER_TIMEOUT_MS 2000
#define CONTAINER_ATTEMPTS 3
#define CONTAINER_SLEEP_MS 1000

typedef struct container_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
} container_provider;

/* The URL's scheme and hostname as Python's urlparse gives them (hostname lowercased, IPv6 without
 * brackets). Returns 0, or -1 when there is no "scheme://". */
static int url_parts(const char *url, char *scheme, size_t slen, char *host, size_t hlen)
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

/* ipaddress.ip_address(host).is_loopback */
static int host_is_loopback_ip(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static rd_status container_validate_url(const char *url, const char *var, rd_error *err)
{
    static const char *const allowed[] = { CONTAINER_IP, "169.254.170.23", "fd00:ec2::23", "localhost" };
    char scheme[16], host[256];
    if (url_parts(url, scheme, sizeof scheme, host, sizeof host) != 0)
        return rd_error_set(err, RD_E_CONFIG, "%s is not a URL (scheme://host/path): set it to the endpoint's full URL",
                            var);
    if (strcmp(scheme, "https") == 0 || host_is_loopback_ip(host))
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
    const char *file = env_get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *from;
    if (file) {
        rd_buf b = RD_BUF_INIT;
        int rc = read_small_file(file, &b);
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
        const char *v = env_get("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        if (!v)
            return RD_OK;
        *token = strdup(v);
        from = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
    }
    if (!*token)
        return oom(err);
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

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static rd_status container_parse(const json_t *o, rd_credentials *out, const char *source, rd_error *err)
{
    const char *key = json_string_value(json_object_get(o, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(o, "SecretAccessKey"));
    const char *token = json_string_value(json_object_get(o, "Token"));
    const char *exp = json_string_value(json_object_get(o, "Expiration"));
    const char *account = json_string_value(json_object_get(o, "AccountId"));
    rd_status st = RD_OK;
    time_t expiration = 0;
    if (!key || !secret || !token || !exp)
        st = rd_error_set(err, RD_E_REMOTE,
                          "the container credentials endpoint (%s) replied without %s: check the task role / pod "
                          "identity association",
                          source, !key ? "AccessKeyId" : !secret ? "SecretAccessKey" : !token ? "Token" : "Expiration");
    else if (rd_time_parse_iso8601(exp, &expiration) != 0)
        st = rd_error_set(err, RD_E_REMOTE, "the container credentials endpoint (%s) replied with an unreadable "
                          "Expiration '%s'", source, exp);
    if (st == RD_OK) {
        rd_credentials cr;
        rd_credentials_init(&cr);
        cr.expiration = expiration;
        if (rd_credentials_set(&cr.access_key_id, key) != RD_OK ||
            rd_credentials_set(&cr.secret_access_key, secret) != RD_OK ||
            rd_credentials_set(&cr.session_token, token) != RD_OK ||
            rd_credentials_set(&cr.provider, "container-role") != RD_OK ||
            rd_credentials_set(&cr.source, source) != RD_OK ||
            (account && rd_credentials_set(&cr.account_id, account) != RD_OK)) {
            rd_credentials_free(&cr);
            st = oom(err);
        } else {
            rd_credentials_free(out);
            *out = cr;
        }
    }
    return st;
}

static rd_status container_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    container_provider *p = (container_provider *)base;
    const char *rel = env_get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env_get("AWS_CONTAINER_CREDENTIALS_FULL_URI");
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
        return oom(err);
    }

    char *token = NULL;
    rd_status st = container_auth_token(&token, err);
    if (st == RD_OK)
        st = container_validate_url(rd_buf_cstr(&url), var, err);
    if (st != RD_OK) {
        free_secret(token);
        rd_buf_free(&url);
        return st;
    }
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "Accept", "application/json");
    if (token)
        rd_headers_add(&h, "Authorization", token);
    free_secret(token);

    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_error last;
    rd_error_clear(&last);
    char host[256], path[512], target[800];
    url_for_log(rd_buf_cstr(&url), host, sizeof host, path, sizeof path);
    snprintf(target, sizeof target, "%s%s", host, path);
    for (int attempt = 1;; attempt++) {
        rd_error_clear(&last);
        st = plain_send(p->ctx, "GET", rd_buf_cstr(&url), &h, CONTAINER_TIMEOUT_MS, &resp, &last);
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
        sleep_ms(CONTAINER_SLEEP_MS);
    }
    rd_http_response_free(&resp); /* cleanses the body, which held the credentials */
    rd_headers_free(&h);          /* cleanses the values (the Authorization token) */
    rd_buf_free(&url);
    return st;
}

static void container_destroy(rd_creds_provider *base)
{
    free(base);
}

static const rd_creds_provider_vtable container_vtable = { "container-role", container_get, container_destroy };

rd_status rd_creds_container_new(const rd_creds_ctx *ctx, rd_creds_provider **out, rd_error *err)
{
    container_provider *p = calloc(1, sizeof *p);
    if (!p)
        return oom(err);
    p->base.vt = &container_vtable;
    p->ctx = ctx;
    *out = &p->base;
    return RD_OK;
}

/* --- EC2 instance metadata (IMDSv2 with v1 fallback) -------------------------------------------------------- */

#define IMDS_BASE_V4 "http://169.254.169.254/"
#define IMDS_BASE_V6 "http://[fd00:ec2::254]/"
#define IMDS_TOKEN_PATH "latest/api/token"
#define IMDS_CREDS_PATH "latest/meta-data/iam/security-credentials/"
#define IMDS_TOKEN_TTL "21600"
#define IMDS_REFRESH_WINDOW_S (15 * 60) /* botocore's ec2_credential_refresh_window */

typedef struct imds_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
} imds_provider;

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
    const char *v = setting(ctx, "AWS_METADATA_SERVICE_TIMEOUT", "metadata_service_timeout");
    s->timeout_ms = 1000;
    if (v) {
        if (parse_positive_int(v, "AWS_METADATA_SERVICE_TIMEOUT / metadata_service_timeout", &n, err) != RD_OK)
            return err ? err->code : RD_E_CONFIG;
        s->timeout_ms = n * 1000;
    }
    v = setting(ctx, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", "metadata_service_num_attempts");
    s->attempts = 1;
    if (v) {
        if (parse_positive_int(v, "AWS_METADATA_SERVICE_NUM_ATTEMPTS / metadata_service_num_attempts", &n, err) !=
            RD_OK)
            return err ? err->code : RD_E_CONFIG;
        s->attempts = (int)n;
    }
    s->v1_disabled = is_true(setting(ctx, "AWS_EC2_METADATA_V1_DISABLED", "ec2_metadata_v1_disabled"));

    const char *mode = setting(ctx, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ec2_metadata_service_endpoint_mode");
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
        ipv6 = is_true(setting(ctx, "AWS_IMDS_USE_IPV6", "imds_use_ipv6"));
    }
    const char *custom = setting(ctx, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "ec2_metadata_service_endpoint");
    if (custom) {
        char scheme[16], host[256];
        if (url_parts(custom, scheme, sizeof scheme, host, sizeof host) != 0 ||
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
    for (int i = 0; i < s->attempts; i++) {
        rd_error e;
        rd_error_clear(&e);
        if (plain_send(ctx, "PUT", rd_buf_cstr(&url), &h, s->timeout_ms, &resp, &e) != RD_OK)
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
        if (plain_send(ctx, "GET", url, &h, s->timeout_ms, &resp, &e) != RD_OK)
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
    imds_provider *p = (imds_provider *)base;
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
    free_secret(token);
    if (st != RD_OK) {
        rd_buf_free(&url);
        rd_buf_free(&role);
        rd_buf_free_secure(&body);
        return st == RD_E_INTERNAL ? oom(err)
                                   : rd_error_set(err, RD_E_NOT_FOUND,
                                                  "no IAM role credentials from EC2 instance metadata at %s", s.base);
    }
    json_t *o = NULL;
    rd_json_parse_object(body.data, body.len, RD_E_REMOTE, "EC2 metadata's reply", &o, NULL); /* checked above */
    rd_buf_free_secure(&body);
    const char *key = json_string_value(json_object_get(o, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(o, "SecretAccessKey"));
    const char *stoken = json_string_value(json_object_get(o, "Token"));
    const char *exp = json_string_value(json_object_get(o, "Expiration"));
    if (!key || !secret || !stoken || !exp) {
        /* IMDS answers 200 with {"Code": ..., "Message": ...} when the role cannot be used. */
        const char *code = json_string_value(json_object_get(o, "Code"));
        rd_log_write(ctx->log, RD_LOG_DEBUG, "EC2 metadata credentials for role %s are incomplete (Code %s)",
                     rd_buf_cstr(&role), code ? code : "-");
        json_decref(o);
        rd_buf_free(&url);
        rd_buf_free(&role);
        return rd_error_set(err, RD_E_NOT_FOUND, "EC2 instance metadata returned no usable credentials");
    }
    time_t expiration = 0;
    time_t now = ctx_now(ctx);
    if (rd_time_parse_iso8601(exp, &expiration) == 0) {
        /* botocore extends credentials that are about to expire (IMDS outage resilience). */
        long offset = IMDS_REFRESH_WINDOW_S + 120 + (long)((unsigned long)now % 481);
        if (now >= expiration - offset)
            expiration = now + offset;
    } else {
        expiration = 0;
        rd_log_write(ctx->log, RD_LOG_DEBUG, "unable to parse the IMDS Expiration");
    }
    rd_credentials cr;
    rd_credentials_init(&cr);
    cr.expiration = expiration;
    rd_buf src = RD_BUF_INIT;
    rd_buf_printf(&src, "EC2 instance metadata %s (role %s)", s.base, rd_buf_cstr(&role));
    char *source = rd_buf_detach(&src);
    if (!source || rd_credentials_set(&cr.access_key_id, key) != RD_OK ||
        rd_credentials_set(&cr.secret_access_key, secret) != RD_OK ||
        rd_credentials_set(&cr.session_token, stoken) != RD_OK || rd_credentials_set(&cr.provider, "iam-role") != RD_OK ||
        rd_credentials_set(&cr.source, source) != RD_OK) {
        st = oom(err);
        rd_credentials_free(&cr);
    } else {
        rd_log_write(ctx->log, RD_LOG_INFO, "Found credentials from IAM Role: %s", rd_buf_cstr(&role));
        rd_credentials_free(out);
        *out = cr;
        st = RD_OK;
    }
    free(source);
    json_decref(o);
    rd_buf_free(&url);
    rd_buf_free(&role);
    return st;
}

static void imds_destroy(rd_creds_provider *base)
{
    free(base);
}

static const rd_creds_provider_vtable imds_vtable = { "iam-role", imds_get_credentials, imds_destroy };

rd_status rd_creds_imds_new(const rd_creds_ctx *ctx, rd_creds_provider **out, rd_error *err)
{
    imds_provider *p = calloc(1, sizeof *p);
    if (!p)
        return oom(err);
    p->base.vt = &imds_vtable;
    p->ctx = ctx;
    *out = &p->base;
    return RD_OK;
}
