/* router.c — one buffered request through the emulator: sniff (which API), authenticate (SigV4, or the
 * operations without a header signature: the SSO portal, STS AssumeRoleWithWebIdentity, S3 PostObject),
 * draw the request's faults, route to the API's handler, then the response's faults.
 * Does not touch the socket (server.c) nor implement the APIs (s3/, redshift/, iam/). */
#include "emulator/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "emulator/replies.h"

#define STS_XMLNS "https://sts.amazonaws.com/doc/2011-06-15/"

/* A request on its way through the router. */
typedef struct emu_call {
    rd_emu_api api;
    const char *query_service; /* RD_EMU_API_QUERY: "sts" or "redshift" */
    const char *target;        /* X-Amz-Target */
    const char *raw_uri;
    char *path;
    rd_form form;              /* RD_EMU_API_QUERY: the form body */
    int is_unsigned;           /* an operation AWS serves without a signature */
    rd_emu_request req;
    rd_emu_auth_info info;
    rd_emu_auth_info scope;    /* the credential scope as sent (query_service may point into it) */
} emu_call;

rd_emu_api rd_emu_sniff_headers(const char *method, const char *path, const rd_headers *h,
                                const rd_emu_auth_info *scope, int have_scope)
{
    const char *target = rd_headers_get(h, "X-Amz-Target");
    const char *ctype = rd_headers_get(h, "Content-Type");
    if (target)
        return strncmp(target, "RedshiftData.", 13) == 0         ? RD_EMU_API_JSON_DATA
               : strncmp(target, "RedshiftServerless.", 19) == 0 ? RD_EMU_API_JSON_SERVERLESS
                                                                 : RD_EMU_API_JSON_OTHER;
    if (strcmp(method, "GET") == 0 && strcmp(path, "/federation/credentials") == 0)
        return RD_EMU_API_SSO;
    if (strcmp(method, "POST") == 0 && ctype && strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0 &&
        (!have_scope || strcmp(scope->service, "s3") != 0))
        return RD_EMU_API_QUERY;
    if (!have_scope && rd_emu_is_form_upload(method, h))
        return RD_EMU_API_QUERY; /* a form whose fields carry the signature: the body decides (route_request) */
    return RD_EMU_API_S3;
}

int rd_emu_is_form_upload(const char *method, const rd_headers *h)
{
    const char *ctype = rd_headers_get(h, "Content-Type");
    return strcmp(method, "POST") == 0 && ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0 &&
           !rd_headers_get(h, "Authorization");
}

void rd_emu_reply_auth_error(rd_emu_api api, rd_emu_auth_result res, const char *resource, const char *request_id,
                             rd_emu_response *resp)
{
    const int s3 = api == RD_EMU_API_S3, query = api == RD_EMU_API_QUERY;
    const char *code = "AccessDenied", *msg = "Access Denied";
    int status = 403;
    switch (res) {
    case RD_AUTH_MISSING:
        code = s3 ? "AccessDenied" : query ? "MissingAuthenticationToken" : "MissingAuthenticationTokenException";
        msg = "Request is missing Authentication Token";
        status = s3 ? 403 : 400;
        break;
    case RD_AUTH_MALFORMED:
        code = s3 ? "AuthorizationHeaderMalformed" : "IncompleteSignatureException";
        msg = "The authorization header is malformed";
        status = 400;
        break;
    case RD_AUTH_UNKNOWN_KEY:
        code = s3 ? "InvalidAccessKeyId" : query ? "InvalidClientTokenId" : "UnrecognizedClientException";
        msg = s3 ? "The AWS Access Key Id you provided does not exist in our records."
                 : "The security token included in the request is invalid.";
        break;
    case RD_AUTH_BAD_SIGNATURE:
        code = s3 || query ? "SignatureDoesNotMatch" : "InvalidSignatureException";
        msg = "The request signature we calculated does not match the signature you provided. Check your AWS "
              "Secret Access Key and signing method.";
        break;
    case RD_AUTH_SKEWED:
        code = s3 ? "RequestTimeTooSkewed" : query ? "SignatureDoesNotMatch" : "InvalidSignatureException";
        msg = s3 ? "The difference between the request time and the current time is too large."
                 : "Signature expired: the request time is more than 15 minutes from the server time.";
        break;
    case RD_AUTH_BAD_TOKEN:
        code = s3 ? "InvalidToken" : query ? "InvalidClientTokenId" : "UnrecognizedClientException";
        msg = "The security token included in the request is invalid.";
        break;
    case RD_AUTH_EXPIRED_TOKEN:
        code = api == RD_EMU_API_JSON_DATA || api == RD_EMU_API_JSON_SERVERLESS ? "ExpiredTokenException"
                                                                                : "ExpiredToken";
        msg = "The security token included in the request is expired";
        status = s3 ? 400 : 403;
        break;
    case RD_AUTH_EXPIRED_PRESIGN:
        code = "AccessDenied";
        msg = "Request has expired";
        break;
    case RD_AUTH_OK:
        break;
    }
    if (s3)
        rd_emu_reply_s3_error(resp, status, code, msg, resource, request_id);
    else if (query)
        rd_emu_reply_query_error(resp, status, STS_XMLNS, code, msg, request_id);
    else
        rd_emu_reply_json_error(resp, status == 403 ? 400 : status, code, msg, request_id);
}

void rd_emu_reply_too_large(rd_emu_api api, uint64_t limit, const char *resource, const char *request_id,
                            rd_emu_response *resp)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "The request body is larger than the emulator accepts for this API (%llu MiB); send a smaller request",
             (unsigned long long)(limit >> 20));
    if (api == RD_EMU_API_S3)
        rd_emu_reply_s3_error(resp, 400, "EntityTooLarge", msg, resource, request_id);
    else if (api == RD_EMU_API_QUERY)
        rd_emu_reply_query_error(resp, 413, STS_XMLNS, "RequestEntityTooLarge", msg, request_id);
    else
        rd_emu_reply_json_error(resp, 413, "RequestEntityTooLarge", msg, request_id);
}

void rd_emu_reply_slow_down(rd_emu_response *resp, const char *resource, const char *request_id)
{
    rd_emu_reply_s3_error(resp, 503, "SlowDown", "Please reduce your request rate.", resource, request_id);
}

void rd_emu_make_request_id(rd_emu *emu, char out[40])
{
    unsigned long n = atomic_fetch_add(&emu->request_counter, 1) + 1;
    snprintf(out, 40, "%08lX-RDEMU-%012lX", (unsigned long)(time(NULL) & 0xffffffff), n);
}

void rd_emu_apply_latency(rd_emu *emu)
{
    int latency = rd_emu_faults_latency_ms(emu->faults);
    if (latency > 0) {
        struct timespec ts = { latency / 1000, (long)(latency % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

void rd_emu_log_request(rd_emu *emu, const char *method, const char *raw, const rd_headers *h,
                        const rd_emu_response *resp)
{
    if (!rd_log_enabled(&emu->log, RD_LOG_INFO))
        return;
    const char *target = rd_headers_get(h, "X-Amz-Target");
    size_t plen = strcspn(raw, "?");
    rd_log_write(&emu->log, RD_LOG_INFO, "%s %.*s%s%s -> %d%s", method, (int)plen, raw, target ? " " : "",
                 target ? target : "", resp->status, resp->reset_after >= 0 ? " (fault: cut)" : "");
}

void rd_emu_request_set_caller(rd_emu *emu, rd_emu_request *req, const rd_emu_auth_info *info)
{
    req->account_id = rd_emu_ids_account(emu->ids);
    req->principal_arn = info->principal.arn;
    req->access_key_id = info->access_key_id;
    req->region = info->region;
    req->signature = info->signature[0] ? info->signature : NULL;
    req->secret_access_key = info->principal.secret;
}

/* Which API, from the headers and, for a form POST, whether the body names an Action. */
static void sniff(emu_call *c, const char *method, const rd_headers *h, const char *body, size_t body_len)
{
    int have_scope = rd_emu_auth_scope(c->raw_uri, h, &c->scope);
    c->api = rd_emu_sniff_headers(method, c->path, h, &c->scope, have_scope);
    c->target = rd_headers_get(h, "X-Amz-Target");
    if (c->api == RD_EMU_API_QUERY && !have_scope && rd_emu_is_form_upload(method, h)) {
        /* S3 PostObject: the signature is in the form, which s3_post.c verifies */
        c->api = RD_EMU_API_S3;
        c->is_unsigned = 1;
        return;
    }
    if (c->api == RD_EMU_API_QUERY) {
        rd_form_parse(body, body_len, 1, &c->form);
        if (rd_form_has(&c->form, "Action")) {
            c->query_service = have_scope ? c->scope.service : "sts";
            const char *version = rd_form_get(&c->form, "Version");
            if (!have_scope && version && strcmp(version, "2012-12-01") == 0)
                c->query_service = "redshift";
        } else {
            c->api = RD_EMU_API_S3;
        }
    }
    const char *action = rd_form_get(&c->form, "Action");
    /* Unsigned operations: SSO portal, STS AssumeRoleWithWebIdentity (and S3 PostObject, above). */
    c->is_unsigned = c->api == RD_EMU_API_SSO ||
                     (c->api == RD_EMU_API_QUERY && action && strcmp(action, "AssumeRoleWithWebIdentity") == 0);
}

/* 0: the caller is known (or needs not be); 1: resp holds the refusal. */
static int authenticate(rd_emu *emu, emu_call *c, rd_emu_response *resp)
{
    if (c->is_unsigned) {
        c->req.region = rd_emu_ids_region(emu->ids);
        return 0;
    }
    rd_emu_auth_result ar = rd_emu_auth_verify(emu->ids, c->req.method, c->raw_uri, c->req.headers, c->req.body,
                                               c->req.body_len, time(NULL), &c->info);
    if (ar != RD_AUTH_OK) {
        rd_emu_reply_auth_error(c->api, ar, c->path, c->req.request_id, resp);
        return 1;
    }
    rd_emu_request_set_caller(emu, &c->req, &c->info);
    return 0;
}

/* The seeded faults a request draws before its handler runs. 1: resp holds the injected error. */
static int request_faults(rd_emu *emu, emu_call *c, rd_emu_response *resp)
{
    if (c->api == RD_EMU_API_JSON_DATA) {
        const char *op = c->target + 13;
        if ((strcmp(op, "DescribeStatement") == 0 && rd_emu_faults_draw(emu->faults, "data.describe.throttle")) ||
            (strcmp(op, "ExecuteStatement") == 0 && rd_emu_faults_draw(emu->faults, "data.execute.throttle")) ||
            ((strcmp(op, "GetStatementResult") == 0 || strcmp(op, "GetStatementResultV2") == 0) &&
             rd_emu_faults_draw(emu->faults, "data.result.throttle"))) {
            rd_emu_reply_json_error(resp, 400, "ThrottlingException", "Rate exceeded", c->req.request_id);
            return 1;
        }
        if (strcmp(op, "ExecuteStatement") == 0 || strcmp(op, "BatchExecuteStatement") == 0)
            c->req.fault_fail = rd_emu_faults_draw(emu->faults, "data.execute.fail");
    } else if (c->api == RD_EMU_API_S3) {
        const char *op = rd_emu_s3_operation(&c->req);
        int is_get = strcmp(c->req.method, "GET") == 0, is_put = strcmp(c->req.method, "PUT") == 0;
        if ((is_get && strcmp(op, "GetObject") == 0 && rd_emu_faults_draw(emu->faults, "s3.get.slowdown")) ||
            (is_put && rd_emu_faults_draw(emu->faults, "s3.put.slowdown")) ||
            ((strcmp(op, "ListObjects") == 0 || strcmp(op, "ListBuckets") == 0) &&
             rd_emu_faults_draw(emu->faults, "s3.list.slowdown"))) {
            rd_emu_reply_slow_down(resp, c->path, c->req.request_id);
            return 1;
        }
    }
    return 0;
}

/* The faults drawn on an answer: a GetObject body cut short, by a reset or a clean close. */
static void response_faults(rd_emu *emu, const emu_call *c, rd_emu_response *resp)
{
    if (c->api != RD_EMU_API_S3 || strcmp(c->req.method, "GET") != 0 ||
        strcmp(rd_emu_s3_operation(&c->req), "GetObject") != 0 || resp->status / 100 != 2)
        return;
    uint64_t len = resp->fd >= 0 ? resp->fd_length : resp->body.len;
    int reset = 0;
    if (len > 1 && ((reset = rd_emu_faults_draw(emu->faults, "s3.get.reset")) ||
                    rd_emu_faults_draw(emu->faults, "s3.get.truncate"))) {
        /* at least one byte: a body cut before its first byte left the client waiting */
        resp->reset_after = 1 + (int64_t)rd_emu_faults_uniform(emu->faults, "s3.get.cut", len - 1);
        resp->reset_hard = reset;
    }
}

/* Network shaping of a GetObject answer (whatever its status): the first-byte delay, and the body's pace
 * (the server honours both on a thread per connection, which the emulator runs when shaping is on). */
static void response_shaping(rd_emu *emu, const emu_call *c, rd_emu_response *resp)
{
    if (!rd_emu_faults_shaping(emu->faults) || c->api != RD_EMU_API_S3 || strcmp(c->req.method, "GET") != 0 ||
        strcmp(rd_emu_s3_operation(&c->req), "GetObject") != 0)
        return;
    resp->first_byte_delay_ms = (unsigned)rd_emu_faults_get_latency_ms(emu->faults);
    resp->pace_bytes_per_second = rd_emu_faults_get_bandwidth(emu->faults);
}

/* The handler of the API. */
static void route(rd_emu *emu, emu_call *c, rd_emu_response *resp)
{
    switch (c->api) {
    case RD_EMU_API_SSO: {
        rd_form q;
        rd_form_parse(c->req.query, strlen(c->req.query), 0, &q);
        rd_emu_sso_handle(emu, &q, &c->req, resp);
        rd_form_free(&q);
        break;
    }
    case RD_EMU_API_QUERY:
        rd_emu_query_api_handle(emu, c->query_service, &c->form, &c->req, resp);
        break;
    case RD_EMU_API_JSON_SERVERLESS:
        rd_emu_serverless_handle(emu, c->target + 19, &c->req, resp);
        break;
    case RD_EMU_API_JSON_DATA:
        rd_emu_data_api_handle(emu, emu->engine, c->target + 13, &c->req, resp);
        break;
    case RD_EMU_API_JSON_OTHER: {
        char msg[256];
        snprintf(msg, sizeof msg, "The emulator does not implement %s", c->target);
        rd_emu_reply_json_error(resp, 400, "UnknownOperationException", msg, c->req.request_id);
        break;
    }
    case RD_EMU_API_S3:
        rd_emu_s3_handle(emu, emu->store, &c->req, resp);
        break;
    }
}

void rd_emu_route_request(rd_emu *emu, const char *method, const char *raw, const rd_headers *headers,
                          const char *body, size_t body_len, const char *request_id, rd_emu_response *resp)
{
    emu_call c;
    memset(&c, 0, sizeof c);
    const char *qmark = strchr(raw, '?');
    c.raw_uri = raw;
    c.path = qmark ? strndup(raw, (size_t)(qmark - raw)) : strdup(raw);
    c.req.method = method;
    c.req.path = c.path;
    c.req.query = qmark ? qmark + 1 : "";
    c.req.headers = headers;
    c.req.body = body;
    c.req.body_len = body_len;
    c.req.request_id = request_id;
    c.req.host = rd_headers_get(headers, "Host");

    if (c.path) {
        sniff(&c, method, headers, body, body_len);
        rd_emu_apply_latency(emu);
        if (!authenticate(emu, &c, resp)) {
            if (!request_faults(emu, &c, resp)) {
                route(emu, &c, resp);
                response_faults(emu, &c, resp);
            }
            response_shaping(emu, &c, resp);
        }
    }
    rd_emu_log_request(emu, method, raw, headers, resp);
    rd_form_free(&c.form);
    free(c.path);
}
