/* client.c — the one AWS request path (see client.h): endpoint, SigV4, the "standard" retry mode as
 * botocore implements it (retries/standard.py), verbose logging with secrets redacted, AWS error parsing.
 * The JSON 1.1 and query encoders sit on top of rd_aws_send; S3 calls rd_aws_send directly. */
#include "aws/client.h"

#include <errno.h>
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "aws/parse.h"
#include "redduck/sigv4.h"

static const char *const throttling_codes[] = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
    "PriorRequestNotComplete", "EC2ThrottledException",
};
static const char *const transient_codes[] = { "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete" };
static const char *const denied_codes[] = {
    "AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
    "ExpiredTokenException", "UnrecognizedClientException", "InvalidAccessKeyId", "RequestTimeTooSkewed",
    "InvalidSignatureException", "IncompleteSignatureException", "MissingAuthenticationToken",
    "MissingAuthenticationTokenException", "InvalidToken", "AuthFailure", "UnauthorizedException",
    "Forbidden", "AllAccessDisabled",
};

static int in_list(const char *code, const char *const *list, size_t n)
{
    for (size_t i = 0; code && i < n; i++)
        if (strcmp(code, list[i]) == 0)
            return 1;
    return 0;
}
#define IN(code, list) in_list(code, list, sizeof list / sizeof list[0])

int rd_aws_client_max_attempts(const rd_aws_client *c)
{
    if (c->max_attempts > 0)
        return c->max_attempts;
    const char *v = c->no_environment ? NULL : getenv("AWS_MAX_ATTEMPTS");
    if ((!v || !*v) && c->cfg && c->profile)
        v = rd_aws_config_profile_get(c->cfg, c->profile, "max_attempts");
    if (v && *v) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (end && !*end && n >= 1 && n <= 100)
            return (int)n;
    }
    return RD_RETRY_DEFAULT_MAX_ATTEMPTS;
}

static time_t client_now(const rd_aws_client *c)
{
    return c->now ? c->now() : time(NULL);
}

static void sleep_ms(const rd_aws_client *c, long ms)
{
    if (ms <= 0)
        return;
    if (c->sleep_ms) {
        c->sleep_ms(c->sleep_ctx, ms);
        return;
    }
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

long rd_aws_backoff_ms(long base_ms, long cap_ms, int attempt, unsigned (*jitter)(void *ctx, unsigned bound),
                       void *jitter_ctx)
{
    long window = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < attempt && window < cap_ms; i++)
        window *= 2;
    if (window > cap_ms)
        window = cap_ms;
    if (window <= 0)
        return 0;
    unsigned bound = (unsigned)window + 1;
    if (jitter)
        return (long)jitter(jitter_ctx, bound);
    unsigned r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        r = (unsigned)rand();
    return (long)(r % bound);
}

/* Full jitter: random(0, 1) * 2^(attempt-1) seconds, at most 20 s (botocore's ExponentialBackoff). */
static long backoff_ms(const rd_aws_client *c, int attempt)
{
    return rd_aws_backoff_ms(1000, RD_RETRY_MAX_BACKOFF_MS, attempt, c->jitter, c->jitter_ctx);
}

rd_retry_class rd_aws_retry_class(rd_status transport_st, int local_errno, int http_status, const char *aws_code)
{
    switch (transport_st) {
    case RD_OK:
        break;
    case RD_E_NETWORK:
        return RD_RETRY_TRANSIENT;
    case RD_E_IO:
        return local_errno == 0 || local_errno == ENOSPC || local_errno == EDQUOT || local_errno == EROFS
                   ? RD_RETRY_NEVER
                   : RD_RETRY_TRANSIENT;
    default:
        return RD_RETRY_NEVER; /* RD_E_CONFIG: a certificate problem fails the same way again */
    }
    if ((aws_code && IN(aws_code, throttling_codes)) || http_status == 429)
        return RD_RETRY_THROTTLE;
    if ((aws_code && IN(aws_code, transient_codes)) || http_status == 500 || http_status == 502 ||
        http_status == 503 || http_status == 504)
        return RD_RETRY_TRANSIENT;
    return RD_RETRY_NEVER;
}

/* --- error parsing ---------------------------------------------------------------------------------- */

static xmlNodePtr find_node(xmlNodePtr n, const char *name)
{
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
            return n;
        xmlNodePtr c = find_node(n->children, name);
        if (c)
            return c;
    }
    return NULL;
}

char *rd_xml_find_text(xmlNodePtr root, const char *name)
{
    xmlNodePtr n = find_node(root, name);
    if (!n)
        return NULL;
    xmlChar *t = xmlNodeGetContent(n);
    char *s = strdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}

static const char *status_code_name(int status)
{
    switch (status) {
    case 301: return "PermanentRedirect";
    case 304: return "NotModified";
    case 400: return "BadRequest";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 412: return "PreconditionFailed";
    default: return status >= 500 ? "InternalError" : "UnknownError";
    }
}

void rd_aws_parse_error(const rd_aws_service *svc, const rd_http_response *resp, char *code, size_t code_len,
                        char *message, size_t msg_len)
{
    code[0] = '\0';
    message[0] = '\0';
    const char *body = rd_buf_cstr(&resp->body);
    size_t len = resp->body.len;
    if (svc->protocol == RD_PROTO_JSON11 || svc->protocol == RD_PROTO_REST_JSON) {
        const char *et = rd_headers_get(&resp->headers, "x-amzn-ErrorType");
        json_t *o = NULL;
        if (len)
            rd_json_parse_object(body, len, RD_E_REMOTE, "the error reply", &o, NULL); /* no JSON: no code */
        const char *type = json_string_value(json_object_get(o, "__type"));
        if (!type)
            type = json_string_value(json_object_get(o, "code"));
        if (!type)
            type = et;
        if (type) {
            const char *hash = strrchr(type, '#');
            if (hash)
                type = hash + 1;
            size_t n = strcspn(type, ":");
            snprintf(code, code_len, "%.*s", (int)n, type);
        }
        const char *m = json_string_value(json_object_get(o, "message"));
        if (!m)
            m = json_string_value(json_object_get(o, "Message"));
        if (m)
            snprintf(message, msg_len, "%s", m);
        json_decref(o);
    } else {
        xmlDocPtr doc = NULL;
        if (len && rd_xml_parse(body, len, RD_E_REMOTE, "the error reply", &doc, NULL) == RD_OK) {
            xmlNodePtr root = xmlDocGetRootElement(doc);
            char *c = rd_xml_find_text(root, "Code");
            char *m = rd_xml_find_text(root, "Message");
            if (c)
                snprintf(code, code_len, "%s", c);
            if (m)
                snprintf(message, msg_len, "%s", m);
            free(c);
            free(m);
            xmlFreeDoc(doc);
        }
    }
    if (!code[0])
        snprintf(code, code_len, "%s", status_code_name(resp->status));
}

static const char *hint_for(const char *code)
{
    if (!code)
        return "";
    if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "ExpiredTokenException") == 0)
        return " — the credentials have expired: refresh them (for SSO: `aws sso login`)";
    if (strcmp(code, "SignatureDoesNotMatch") == 0 || strcmp(code, "InvalidSignatureException") == 0)
        return " — check the secret access key, and that this machine's clock is right";
    if (strcmp(code, "RequestTimeTooSkewed") == 0)
        return " — this machine's clock is off by more than 15 minutes: fix the time (NTP)";
    if (strcmp(code, "InvalidClientTokenId") == 0 || strcmp(code, "UnrecognizedClientException") == 0 ||
        strcmp(code, "InvalidAccessKeyId") == 0)
        return " — the access key id is unknown to AWS: check which credentials are used with `redduck whoami --local`";
    return "";
}

/* The hint for a denial: AWS usually names the action ("not authorized to perform: x:Y"); S3 often not. */
static const char *deny_hint(const char *code, const char *message)
{
    if (!code || !(strncmp(code, "AccessDenied", 12) == 0 || strcmp(code, "Forbidden") == 0))
        return "";
    return strstr(message, "not authorized to perform") ? " — grant the IAM action named above to this identity"
                                                         : " — this identity lacks a permission for this call";
}

static rd_status classify(const char *code, int status)
{
    if (IN(code, denied_codes) || status == 401)
        return RD_E_DENIED;
    if ((code && (strncmp(code, "NoSuch", 6) == 0 || strcmp(code, "ResourceNotFoundException") == 0 ||
                  strcmp(code, "NotFound") == 0)) ||
        status == 404)
        return RD_E_NOT_FOUND;
    return RD_E_REMOTE;
}

/* --- logging ---------------------------------------------------------------------------------------- */

/* Path and query for the log, with presigned secrets removed. */
static void loggable_target(const char *path, const char *query, rd_buf *out)
{
    rd_buf_puts(out, path);
    if (!query || !*query)
        return;
    rd_buf_putc(out, '?');
    const char *p = query;
    int first = 1;
    while (*p) {
        size_t n = strcspn(p, "&");
        if (!first)
            rd_buf_putc(out, '&');
        first = 0;
        if (strncasecmp(p, "X-Amz-Signature=", 16) == 0 || strncasecmp(p, "X-Amz-Security-Token=", 21) == 0 ||
            strncasecmp(p, "X-Amz-Credential=", 17) == 0) {
            const char *eq = memchr(p, '=', n);
            rd_buf_append(out, p, (size_t)(eq - p) + 1);
            rd_buf_puts(out, "<redacted>");
        } else {
            rd_buf_append(out, p, n);
        }
        p += n;
        if (*p == '&')
            p++;
    }
}

static void log_headers(const rd_log *log, const char *dir, const rd_headers *h)
{
    for (size_t i = 0; i < h->count; i++)
        rd_log_write(log, RD_LOG_DEBUG, "  %s %s: %s", dir, h->items[i].name,
                     rd_header_is_secret(h->items[i].name) ? "<redacted>" : h->items[i].value);
}

/* --- the request path ------------------------------------------------------------------------------- */

static int bucket_virtual_ok(const char *bucket)
{
    size_t n = strlen(bucket);
    if (n < 3 || n > 63)
        return 0;
    for (const char *p = bucket; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return 0;
    return 1;
}

static rd_status build_url(const rd_aws_request *req, const rd_endpoint *ep, rd_buf *url)
{
    if (req->bucket && *req->bucket) {
        const char *path = req->path && *req->path ? req->path : "/";
        if (!ep->custom && bucket_virtual_ok(req->bucket)) {
            const char *host = strstr(ep->url, "://") + 3;
            rd_buf_append(url, ep->url, (size_t)(host - ep->url));
            rd_buf_printf(url, "%s.%s%s", req->bucket, host, path);
        } else {
            rd_buf_printf(url, "%s/", ep->url);
            rd_sigv4_uri_encode(url, req->bucket, strlen(req->bucket), 0);
            if (strcmp(path, "/") != 0)
                rd_buf_puts(url, path);
        }
    } else {
        rd_buf_printf(url, "%s%s", ep->url, req->path && *req->path ? req->path : "/");
    }
    if (req->query && *req->query)
        rd_buf_printf(url, "?%s", req->query);
    return rd_buf_failed(url) ? RD_E_INTERNAL : RD_OK;
}

/* Copies req's headers into *headers and signs them for url (unless the request is unsigned). */
static rd_status sign_into(rd_aws_client *c, const rd_aws_request *req, const char *url, rd_headers *headers,
                           rd_error *err)
{
    if (req->headers)
        rd_headers_copy(headers, req->headers);
    if (req->no_auth)
        return RD_OK;
    if (!c->creds)
        return rd_error_set(err, RD_E_AUTH, "no credentials provider for a signed %s request", req->svc->id);
    rd_credentials creds;
    rd_credentials_init(&creds);
    rd_status st = rd_creds_provider_get(c->creds, &creds, err);
    if (st != RD_OK)
        return st;
    rd_sigv4_params sp = { req->svc->signing_name, c->region, client_now(c), creds.access_key_id,
                           creds.secret_access_key, creds.session_token, req->svc->s3_rules, 0, 0, 0 };
    rd_sigv4_request sr = { req->method, url, headers, req->body, req->body_len,
                            req->unsigned_payload ? RD_SIGV4_UNSIGNED_PAYLOAD : NULL };
    st = rd_sigv4_sign_headers(&sp, &sr, NULL, err);
    rd_credentials_free(&creds);
    return st;
}

rd_status rd_aws_prepare(rd_aws_client *c, const rd_aws_request *req, rd_buf *url, rd_headers *headers,
                         rd_error *err)
{
    rd_endpoint ep;
    rd_status st = rd_endpoint_resolve(req->svc, c->region, c->endpoint_url, c->cfg, c->profile, !c->no_environment, &ep, err);
    if (st != RD_OK)
        return st;
    if (build_url(req, &ep, url) != RD_OK)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    return sign_into(c, req, rd_buf_cstr(url), headers, err);
}

rd_status rd_aws_send(rd_aws_client *c, const rd_aws_request *req, rd_http_response *resp, rd_error *err)
{
    rd_endpoint ep;
    rd_status st = rd_endpoint_resolve(req->svc, c->region, c->endpoint_url, c->cfg, c->profile, !c->no_environment, &ep, err);
    if (st != RD_OK)
        return st;
    rd_buf url = RD_BUF_INIT;
    if (build_url(req, &ep, &url) != RD_OK) {
        rd_buf_free(&url);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    const char *host_start = strstr(rd_buf_cstr(&url), "://") + 3;
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)strcspn(host_start, "/?"), host_start);
    rd_buf target = RD_BUF_INIT;
    const char *p = host_start + strcspn(host_start, "/?");
    char *log_path = *p == '/' ? strndup(p, strcspn(p, "?")) : strdup("/");
    loggable_target(log_path ? log_path : "/", req->query, &target);
    free(log_path);

    int max_attempts = rd_aws_client_max_attempts(c);
    rd_error last;
    rd_error_clear(&last);
    for (int attempt = 1;; attempt++) {
        rd_http_response_reset(resp);
        rd_headers headers = RD_HEADERS_INIT;
        st = sign_into(c, req, rd_buf_cstr(&url), &headers, err);
        if (st != RD_OK) {
            rd_headers_free(&headers);
            break;
        }
        rd_http_request hr = { req->method, rd_buf_cstr(&url), &headers, req->body, req->body_len, 0,
                               req->on_body, req->on_body_ctx };
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rd_error_clear(&last);
        st = rd_http_send(c->http, &hr, resp, &last);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (rd_log_enabled(c->log, RD_LOG_INFO)) {
            if (st == RD_OK)
                rd_log_write(c->log, RD_LOG_INFO, "%s %s %s -> %d (attempt %d/%d, %ld ms)", req->method, host,
                             rd_buf_cstr(&target), resp->status, attempt, max_attempts, ms);
            else
                rd_log_write(c->log, RD_LOG_INFO, "%s %s %s -> %s (attempt %d/%d, %ld ms)", req->method, host,
                             rd_buf_cstr(&target), last.message, attempt, max_attempts, ms);
            if (rd_log_enabled(c->log, RD_LOG_DEBUG)) {
                log_headers(c->log, ">", &headers);
                log_headers(c->log, "<", &resp->headers);
            }
        }
        rd_headers_free(&headers);

        int retryable = 0;
        char code[96] = "", message[512] = "";
        if (st != RD_OK) {
            /* resets and timeouts are retried; a certificate problem (RD_E_CONFIG from the transport, see
             * rd_http_tls_failure) or a refusing sink fails at once: it would fail the same way again */
            retryable = rd_aws_retry_class(st, 0, 0, NULL) != RD_RETRY_NEVER;
        } else if (resp->status >= 200 && resp->status < 300) {
            st = RD_OK;
            break;
        } else {
            rd_aws_parse_error(req->svc, resp, code, sizeof code, message, sizeof message);
            retryable = rd_aws_retry_class(RD_OK, 0, resp->status, code) != RD_RETRY_NEVER;
            st = classify(code, resp->status);
            rd_error_set(&last, st, "%s %s: %s%s%s (HTTP %d)%s", req->svc->id, req->method, code,
                         message[0] ? ": " : "", message, resp->status, *hint_for(code) ? hint_for(code)
                                                                                 : deny_hint(code, message));
            rd_error_set_aws_code(&last, code);
            last.http_status = resp->status;
        }
        /* A streamed body that reached a sink cannot be replayed. */
        if (!retryable || attempt >= max_attempts || !req->body_replayable) {
            if (err)
                *err = last;
            if (st == RD_OK)
                st = last.code ? last.code : RD_E_REMOTE;
            if (retryable && attempt >= max_attempts && err && max_attempts > 1)
                rd_error_prefix(err, "after %d attempts: ", attempt);
            break;
        }
        sleep_ms(c, backoff_ms(c, attempt));
    }
    rd_buf_free(&target);
    rd_buf_free(&url);
    return st;
}

/* POST / with a replayable body: the JSON and query protocols' one exchange. resp is initialised here and
 * freed by the caller; `what` names the reply for parse errors; a failure is prefixed with the operation. */
static rd_status post_root(rd_aws_client *c, const rd_aws_service *svc, const char *operation, rd_headers *h,
                           const char *body, size_t body_len, int no_auth, rd_http_response *resp, char *what,
                           size_t what_len, rd_error *err)
{
    rd_aws_request req = { 0 };
    req.svc = svc;
    req.method = "POST";
    req.path = "/";
    req.headers = h;
    req.body = body;
    req.body_len = body_len;
    req.body_replayable = 1;
    req.no_auth = no_auth;
    rd_http_response_init(resp);
    snprintf(what, what_len, "the %s %s reply", svc->id, operation);
    rd_status st = rd_aws_send(c, &req, resp, err);
    if (st != RD_OK && err)
        rd_error_prefix(err, "%s: ", operation);
    return st;
}

rd_status rd_aws_json_call(rd_aws_client *c, const rd_aws_service *svc, const char *operation, json_t *input,
                           json_t **output, rd_error *err)
{
    char *body = input ? json_dumps(input, JSON_COMPACT) : strdup("{}");
    if (!body)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_headers h = RD_HEADERS_INIT;
    char target[160];
    snprintf(target, sizeof target, "%s.%s", svc->target_prefix, operation);
    rd_headers_add(&h, "Content-Type", "application/x-amz-json-1.1");
    rd_headers_add(&h, "X-Amz-Target", target);
    rd_http_response resp;
    char what[160];
    rd_status st = post_root(c, svc, operation, &h, body, strlen(body), 0, &resp, what, sizeof what, err);
    if (st == RD_OK) {
        json_t *o = NULL;
        if (!resp.body.len)
            *output = json_object();
        else if ((st = rd_json_parse_object(resp.body.data, resp.body.len, RD_E_REMOTE, what, &o, err)) == RD_OK)
            *output = o;
    }
    rd_http_response_free(&resp);
    rd_headers_free(&h);
    free(body);
    return st;
}

rd_status rd_aws_query_call(rd_aws_client *c, const rd_aws_service *svc, const char *action,
                            const char *const *params, int no_auth, xmlDocPtr *output, rd_error *err)
{
    rd_buf body = RD_BUF_INIT;
    rd_buf_puts(&body, "Action=");
    rd_sigv4_uri_encode(&body, action, strlen(action), 0);
    rd_buf_puts(&body, "&Version=");
    rd_sigv4_uri_encode(&body, svc->api_version, strlen(svc->api_version), 0);
    for (size_t i = 0; params && params[i] && params[i + 1]; i += 2) {
        rd_buf_putc(&body, '&');
        rd_sigv4_uri_encode(&body, params[i], strlen(params[i]), 0);
        rd_buf_putc(&body, '=');
        rd_sigv4_uri_encode(&body, params[i + 1], strlen(params[i + 1]), 0);
    }
    if (rd_buf_failed(&body))
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    rd_http_response resp;
    char what[160];
    rd_status st = post_root(c, svc, action, &h, body.data, body.len, no_auth, &resp, what, sizeof what, err);
    if (st == RD_OK) {
        xmlDocPtr doc = NULL;
        if ((st = rd_xml_parse(resp.body.data, resp.body.len, RD_E_REMOTE, what, &doc, err)) == RD_OK)
            *output = doc;
    }
    rd_http_response_free(&resp);
    rd_headers_free(&h);
    rd_buf_free_secure(&body);
    return st;
}
