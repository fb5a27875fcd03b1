/* server.c — the emulator's HTTP server: libmicrohttpd on loopback (127.0.0.1 and ::1), one port, a thread
 * pool; routes each request by X-Amz-Target, the query protocol's Action and otherwise S3; verifies SigV4;
 * applies seeded faults; serves file-backed bodies without copying. Owns the rd_emu life cycle.
 * Does not own the APIs themselves (s3_api.c, data_api.c, creds_api.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emulator/iam/auth.h"
#include "emulator/emulator_internal.h"
#include "emulator/replies.h"
#include "emulator/s3/s3_store.h"
#include "redduck/emulator.h"

/* Limits that keep the emulator responsive when a client misbehaves. Bodies of the JSON and query APIs (and
 * small S3 ones: CreateBucket, DeleteObjects) are buffered up to MAX_BUFFERED_BODY; S3 PutObject bodies stream
 * to a temp file (up to S3's own 5 GiB). Nothing is read before what the headers show has been checked. */
#define MAX_BUFFERED_BODY ((size_t)8 << 20)
#define MAX_PUT_BODY ((uint64_t)5 << 30)
#define PER_IP_CONNECTIONS 256u  /* leaves room for 64-way parallel downloads from one client */
#define MAX_CONNECTIONS 1000u    /* per listening address, bounded below by the open-files limit */
#define IDLE_TIMEOUT_SECONDS 60u
#define CONNECTION_MEMORY ((size_t)128 * 1024) /* headers and read buffer of one connection */

typedef enum api_kind { API_S3, API_QUERY, API_JSON_DATA, API_JSON_SERVERLESS, API_JSON_OTHER, API_SSO } api_kind;

/* Per-connection request state, created by the URI log callback. */
typedef struct conn_state {
    char *raw_uri;
    rd_buf body;
    rd_headers headers;
    int started;
    int too_large;
    api_kind kind;
    char request_id[40];
    /* a streamed PutObject: the request (strings borrowed from this state) and its upload */
    rd_emu_s3_upload *upload;
    char *path;
    rd_emu_request req;
    rd_emu_auth_info info;
} conn_state;

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)cls;
    (void)con;
    conn_state *cs = calloc(1, sizeof *cs);
    if (!cs)
        return NULL;
    cs->raw_uri = strdup(uri ? uri : "/");
    rd_buf_init(&cs->body);
    rd_headers_init(&cs->headers);
    return cs;
}

static void request_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)con;
    (void)toe;
    conn_state *cs = *con_cls;
    if (!cs)
        return;
    rd_emu_s3_upload_abort(cs->upload); /* the client went away mid-body */
    free(cs->raw_uri);
    free(cs->path);
    rd_buf_free(&cs->body);
    rd_headers_free(&cs->headers);
    free(cs);
    *con_cls = NULL;
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    rd_headers_add(cls, key, value ? value : "");
    return MHD_YES;
}

/* A body served from memory or a file, cut after `limit` bytes to inject a reset/truncation. */
typedef struct cut_body {
    int fd;
    uint64_t offset;
    char *mem;
    uint64_t limit;
} cut_body;

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    cut_body *cb = cls;
    if (pos >= cb->limit)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = max;
    if (pos + n > cb->limit)
        n = (size_t)(cb->limit - pos);
    if (cb->mem) {
        memcpy(buf, cb->mem + pos, n);
        return (ssize_t)n;
    }
    ssize_t r = pread(cb->fd, buf, n, (off_t)(cb->offset + pos));
    return r > 0 ? r : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void cut_free(void *cls)
{
    cut_body *cb = cls;
    if (cb->fd >= 0)
        close(cb->fd);
    free(cb->mem);
    free(cb);
}

static ssize_t never_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result send_response(struct MHD_Connection *con, const char *method, rd_emu_response *r)
{
    struct MHD_Response *mr = NULL;
    uint64_t full = r->fd >= 0 ? r->fd_length : r->body.len;
    if (r->reset_after >= 0 && (uint64_t)r->reset_after < full) {
        cut_body *cb = calloc(1, sizeof *cb);
        cb->fd = r->fd;
        cb->offset = r->fd_offset;
        cb->limit = (uint64_t)r->reset_after;
        if (r->fd < 0) {
            cb->mem = malloc(r->body.len + 1);
            memcpy(cb->mem, rd_buf_cstr(&r->body), r->body.len);
        }
        r->fd = -1;
        mr = MHD_create_response_from_callback(full, 64 * 1024, cut_reader, cb, cut_free);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (r->reset_hard && ci) { /* closing with a zero linger time sends RST: a reset, not a short body */
            struct linger lg = { 1, 0 };
            setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
    } else if (r->fd >= 0) {
        mr = MHD_create_response_from_fd_at_offset64(r->fd_length, r->fd, r->fd_offset);
        r->fd = -1; /* MHD closes it */
    } else if (strcmp(method, "HEAD") == 0 && rd_headers_get(&r->headers, "Content-Length")) {
        uint64_t len = strtoull(rd_headers_get(&r->headers, "Content-Length"), NULL, 10);
        mr = MHD_create_response_from_callback(len, 4096, never_read, NULL, NULL);
    } else {
        mr = MHD_create_response_from_buffer(r->body.len, r->body.data ? r->body.data : (void *)"",
                                             MHD_RESPMEM_MUST_COPY);
    }
    if (!mr)
        return MHD_NO;
    for (size_t i = 0; i < r->headers.count; i++) {
        if (strcasecmp(r->headers.items[i].name, "Content-Length") == 0)
            continue;
        MHD_add_response_header(mr, r->headers.items[i].name, r->headers.items[i].value);
    }
    MHD_add_response_header(mr, "Server", "redduck-emulator");
    enum MHD_Result ret = MHD_queue_response(con, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void auth_error(api_kind kind, rd_emu_auth_result res, const char *service, const char *raw_target,
                       const char *request_id, rd_emu_response *resp)
{
    const char *code = "AccessDenied", *msg = "Access Denied";
    int status = 403;
    switch (res) {
    case RD_AUTH_MISSING:
        code = kind == API_S3 ? "AccessDenied" : kind == API_QUERY ? "MissingAuthenticationToken"
                                                                   : "MissingAuthenticationTokenException";
        msg = "Request is missing Authentication Token";
        status = kind == API_S3 ? 403 : 400;
        break;
    case RD_AUTH_MALFORMED:
        code = kind == API_S3 ? "AuthorizationHeaderMalformed" : "IncompleteSignatureException";
        msg = "The authorization header is malformed";
        status = 400;
        break;
    case RD_AUTH_UNKNOWN_KEY:
        code = kind == API_S3 ? "InvalidAccessKeyId" : kind == API_QUERY ? "InvalidClientTokenId"
                                                                         : "UnrecognizedClientException";
        msg = kind == API_S3 ? "The AWS Access Key Id you provided does not exist in our records."
                             : "The security token included in the request is invalid.";
        break;
    case RD_AUTH_BAD_SIGNATURE:
        code = kind == API_S3 || kind == API_QUERY ? "SignatureDoesNotMatch" : "InvalidSignatureException";
        msg = "The request signature we calculated does not match the signature you provided. Check your AWS "
              "Secret Access Key and signing method.";
        break;
    case RD_AUTH_SKEWED:
        code = kind == API_S3 ? "RequestTimeTooSkewed" : kind == API_QUERY ? "SignatureDoesNotMatch"
                                                                           : "InvalidSignatureException";
        msg = kind == API_S3 ? "The difference between the request time and the current time is too large."
                             : "Signature expired: the request time is more than 15 minutes from the server time.";
        break;
    case RD_AUTH_BAD_TOKEN:
        code = kind == API_S3 ? "InvalidToken" : kind == API_QUERY ? "InvalidClientTokenId"
                                                                   : "UnrecognizedClientException";
        msg = "The security token included in the request is invalid.";
        break;
    case RD_AUTH_EXPIRED_TOKEN:
        code = kind == API_JSON_DATA || kind == API_JSON_SERVERLESS ? "ExpiredTokenException" : "ExpiredToken";
        msg = "The security token included in the request is expired";
        status = kind == API_S3 ? 400 : 403;
        break;
    case RD_AUTH_EXPIRED_PRESIGN:
        code = "AccessDenied";
        msg = "Request has expired";
        break;
    case RD_AUTH_OK:
        break;
    }
    (void)service;
    if (kind == API_S3)
        rd_emu_reply_s3_error(resp, status, code, msg, raw_target, request_id);
    else if (kind == API_QUERY)
        rd_emu_reply_query_error(resp, status, "https://sts.amazonaws.com/doc/2011-06-15/", code, msg, request_id);
    else
        rd_emu_reply_json_error(resp, status == 403 && kind != API_S3 ? 400 : status, code, msg, request_id);
}

static void make_request_id(rd_emu *emu, char out[40])
{
    unsigned long n = atomic_fetch_add(&emu->request_counter, 1) + 1;
    snprintf(out, 40, "%08lX-RDEMU-%012lX", (unsigned long)(time(NULL) & 0xffffffff), n);
}

/* The API a request is for, from its headers alone. A form POST (not to S3) is API_QUERY here: whether it
 * names an Action is known once its (bounded) body is read. */
static api_kind classify(const char *method, const char *path, const rd_headers *h, const rd_emu_auth_info *scope,
                         int have_scope)
{
    const char *target = rd_headers_get(h, "X-Amz-Target");
    const char *ctype = rd_headers_get(h, "Content-Type");
    if (target)
        return strncmp(target, "RedshiftData.", 13) == 0         ? API_JSON_DATA
               : strncmp(target, "RedshiftServerless.", 19) == 0 ? API_JSON_SERVERLESS
                                                                 : API_JSON_OTHER;
    if (strcmp(method, "GET") == 0 && strcmp(path, "/federation/credentials") == 0)
        return API_SSO;
    if (strcmp(method, "POST") == 0 && ctype && strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0 &&
        (!have_scope || strcmp(scope->service, "s3") != 0))
        return API_QUERY;
    return API_S3;
}

static void apply_latency(rd_emu *emu)
{
    int latency = rd_emu_faults_latency_ms(emu->faults);
    if (latency > 0) {
        struct timespec ts = { latency / 1000, (long)(latency % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static void log_request(rd_emu *emu, const char *method, const char *raw, const rd_headers *h,
                        const rd_emu_response *resp)
{
    if (!rd_log_enabled(&emu->log, RD_LOG_INFO))
        return;
    const char *target = rd_headers_get(h, "X-Amz-Target");
    size_t plen = strcspn(raw, "?");
    rd_log_write(&emu->log, RD_LOG_INFO, "%s %.*s%s%s -> %d%s", method, (int)plen, raw, target ? " " : "",
                 target ? target : "", resp->status, resp->reset_after >= 0 ? " (fault: cut)" : "");
}

static void slow_down(rd_emu_response *resp, const char *path, const char *request_id)
{
    rd_emu_reply_s3_error(resp, 503, "SlowDown", "Please reduce your request rate.", path, request_id);
}

static void dispatch(rd_emu *emu, const char *method, conn_state *cs, rd_emu_response *resp)
{
    const char *request_id = cs->request_id;
    const char *raw = cs->raw_uri;
    const char *qmark = strchr(raw, '?');
    char *path = qmark ? strndup(raw, (size_t)(qmark - raw)) : strdup(raw);
    const char *query = qmark ? qmark + 1 : "";
    const char *target = rd_headers_get(&cs->headers, "X-Amz-Target");

    rd_form form = { 0 };
    const char *query_service = NULL;
    rd_emu_auth_info scope;
    memset(&scope, 0, sizeof scope);
    int have_scope = rd_emu_auth_scope(raw, &cs->headers, &scope);
    api_kind kind = classify(method, path, &cs->headers, &scope, have_scope);
    if (kind == API_QUERY) {
        rd_form_parse(rd_buf_cstr(&cs->body), cs->body.len, 1, &form);
        if (rd_form_has(&form, "Action")) {
            query_service = have_scope ? scope.service : "sts";
            const char *version = rd_form_get(&form, "Version");
            if (!have_scope && version && strcmp(version, "2012-12-01") == 0)
                query_service = "redshift";
        } else {
            kind = API_S3;
        }
    }

    rd_emu_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.path = path;
    req.query = query;
    req.headers = &cs->headers;
    req.body = rd_buf_cstr(&cs->body);
    req.body_len = cs->body.len;
    req.request_id = request_id;
    req.host = rd_headers_get(&cs->headers, "Host");

    apply_latency(emu);

    /* Unsigned operations: SSO portal, STS AssumeRoleWithWebIdentity. */
    int unsigned_ok = kind == API_SSO ||
                      (kind == API_QUERY && rd_form_get(&form, "Action") &&
                       strcmp(rd_form_get(&form, "Action"), "AssumeRoleWithWebIdentity") == 0);
    rd_emu_auth_info info;
    memset(&info, 0, sizeof info);
    rd_emu_auth_result ar = unsigned_ok ? RD_AUTH_OK
                                        : rd_emu_auth_verify(emu->ids, method, raw, &cs->headers, req.body,
                                                             req.body_len, time(NULL), &info);
    if (ar != RD_AUTH_OK) {
        auth_error(kind, ar, scope.service, path, request_id, resp);
        goto out;
    }
    if (!unsigned_ok) {
        req.account_id = rd_emu_ids_account(emu->ids);
        req.principal_arn = info.principal.arn;
        req.access_key_id = info.access_key_id;
        req.region = info.region;
        req.signature = info.signature[0] ? info.signature : NULL;
        req.secret_access_key = info.principal.secret;
    } else {
        req.region = rd_emu_ids_region(emu->ids);
    }

    switch (kind) {
    case API_SSO: {
        rd_form q;
        rd_form_parse(query, strlen(query), 0, &q);
        rd_emu_sso_handle(emu, &q, &req, resp);
        rd_form_free(&q);
        break;
    }
    case API_QUERY:
        rd_emu_query_api_handle(emu, query_service, &form, &req, resp);
        break;
    case API_JSON_SERVERLESS:
        rd_emu_serverless_handle(emu, target + 19, &req, resp);
        break;
    case API_JSON_DATA: {
        const char *op = target + 13;
        if ((strcmp(op, "DescribeStatement") == 0 && rd_emu_faults_draw(emu->faults, "data.describe.throttle")) ||
            (strcmp(op, "ExecuteStatement") == 0 && rd_emu_faults_draw(emu->faults, "data.execute.throttle")) ||
            (strcmp(op, "GetStatementResult") == 0 && rd_emu_faults_draw(emu->faults, "data.result.throttle"))) {
            rd_emu_reply_json_error(resp, 400, "ThrottlingException", "Rate exceeded", request_id);
            break;
        }
        if (strcmp(op, "ExecuteStatement") == 0 || strcmp(op, "BatchExecuteStatement") == 0)
            req.fault_fail = rd_emu_faults_draw(emu->faults, "data.execute.fail");
        rd_emu_data_api_handle(emu, emu->engine, op, &req, resp);
        break;
    }
    case API_JSON_OTHER: {
        char msg[256];
        snprintf(msg, sizeof msg, "The emulator does not implement %s", target);
        rd_emu_reply_json_error(resp, 400, "UnknownOperationException", msg, request_id);
        break;
    }
    case API_S3: {
        const char *op = rd_emu_s3_operation(&req);
        int is_get = strcmp(method, "GET") == 0, is_put = strcmp(method, "PUT") == 0;
        int get_object = is_get && strcmp(op, "GetObject") == 0;
        if ((get_object && rd_emu_faults_draw(emu->faults, "s3.get.slowdown")) ||
            (is_put && rd_emu_faults_draw(emu->faults, "s3.put.slowdown")) ||
            ((strcmp(op, "ListObjects") == 0 || strcmp(op, "ListBuckets") == 0) &&
             rd_emu_faults_draw(emu->faults, "s3.list.slowdown"))) {
            slow_down(resp, path, request_id);
            break;
        }
        rd_emu_s3_handle(emu, emu->store, &req, resp);
        if (get_object && resp->status / 100 == 2) {
            uint64_t len = resp->fd >= 0 ? resp->fd_length : resp->body.len;
            int reset = 0;
            if (len > 1 && ((reset = rd_emu_faults_draw(emu->faults, "s3.get.reset")) ||
                            rd_emu_faults_draw(emu->faults, "s3.get.truncate"))) {
                /* at least one byte: a body cut before its first byte left the client waiting */
                resp->reset_after = 1 + (int64_t)rd_emu_faults_uniform(emu->faults, "s3.get.cut", len - 1);
                resp->reset_hard = reset;
            }
        }
        break;
    }
    }
out:
    log_request(emu, method, raw, &cs->headers, resp);
    rd_form_free(&form);
    free(path);
}

static void too_large(api_kind kind, uint64_t limit, const char *resource, const char *request_id,
                      rd_emu_response *resp)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "The request body is larger than the emulator accepts for this API (%llu MiB); send a smaller request",
             (unsigned long long)(limit >> 20));
    if (kind == API_S3)
        rd_emu_reply_s3_error(resp, 400, "EntityTooLarge", msg, resource, request_id);
    else if (kind == API_QUERY)
        rd_emu_reply_query_error(resp, 413, "https://sts.amazonaws.com/doc/2011-06-15/", "RequestEntityTooLarge",
                                 msg, request_id);
    else
        rd_emu_reply_json_error(resp, 413, "RequestEntityTooLarge", msg, request_id);
}

/* Everything the headers allow to decide before a body is read: the signature where it does not depend on
 * the body (S3: the payload hash is a signed header), otherwise what can be checked of it (a well-formed
 * Authorization, a known key, the clock), and the body's size. Starts a streamed PutObject. 1 with resp
 * filled: answer now (the body is never read); 0: read the body (buffered or streamed) and answer then. */
static int preflight(rd_emu *emu, const char *method, conn_state *cs, rd_emu_response *resp)
{
    const char *raw = cs->raw_uri;
    const char *qmark = strchr(raw, '?');
    cs->path = qmark ? strndup(raw, (size_t)(qmark - raw)) : strdup(raw);
    if (!cs->path)
        return 0;
    rd_emu_auth_info scope;
    memset(&scope, 0, sizeof scope);
    int have_scope = rd_emu_auth_scope(raw, &cs->headers, &scope);
    cs->kind = classify(method, cs->path, &cs->headers, &scope, have_scope);
    const char *auth = rd_headers_get(&cs->headers, "Authorization");
    const char *cl = rd_headers_get(&cs->headers, "Content-Length");
    uint64_t length = cl ? strtoull(cl, NULL, 10) : 0;
    time_t now = time(NULL);
    rd_emu_auth_result ar = RD_AUTH_OK;
    if (cs->kind == API_S3) {
        if (!auth && !strstr(raw, "X-Amz-Signature="))
            ar = RD_AUTH_MISSING;
        else if (auth && !rd_headers_get(&cs->headers, "x-amz-content-sha256"))
            ar = rd_emu_auth_precheck(emu->ids, &cs->headers, now, &cs->info); /* the body is signed */
        else if ((ar = rd_emu_auth_verify(emu->ids, method, raw, &cs->headers, NULL, 0, now, &cs->info)) ==
                     RD_AUTH_OK &&
                 strcmp(method, "PUT") == 0) {
            if (length > MAX_PUT_BODY) {
                too_large(API_S3, MAX_PUT_BODY, cs->path, cs->request_id, resp);
                return 1;
            }
            rd_emu_request *req = &cs->req;
            req->method = method;
            req->path = cs->path;
            req->query = qmark ? qmark + 1 : "";
            req->headers = &cs->headers;
            req->body = "";
            req->request_id = cs->request_id;
            req->host = rd_headers_get(&cs->headers, "Host");
            req->account_id = rd_emu_ids_account(emu->ids);
            req->principal_arn = cs->info.principal.arn;
            req->access_key_id = cs->info.access_key_id;
            req->region = cs->info.region;
            req->signature = cs->info.signature[0] ? cs->info.signature : NULL;
            req->secret_access_key = cs->info.principal.secret;
            rd_emu_s3_route route = rd_emu_s3_upload_begin(emu, emu->store, req, resp, &cs->upload);
            if (route == RD_EMU_S3_STREAM && rd_emu_faults_draw(emu->faults, "s3.put.slowdown")) {
                rd_emu_s3_upload_abort(cs->upload);
                cs->upload = NULL;
                rd_emu_response_free(resp);
                rd_emu_response_init(resp);
                slow_down(resp, cs->path, cs->request_id);
                return 1;
            }
            if (route != RD_EMU_S3_BUFFER)
                return route == RD_EMU_S3_REPLIED;
        }
    } else if (auth) {
        ar = rd_emu_auth_precheck(emu->ids, &cs->headers, now, &cs->info);
    } else if (cs->kind != API_SSO && cs->kind != API_QUERY) { /* the query API has an unsigned action */
        ar = RD_AUTH_MISSING;
    }
    if (ar != RD_AUTH_OK) {
        auth_error(cs->kind, ar, scope.service, cs->path, cs->request_id, resp);
        return 1;
    }
    if (length > MAX_BUFFERED_BODY) {
        too_large(cs->kind, MAX_BUFFERED_BODY, cs->path, cs->request_id, resp);
        return 1;
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)url;
    (void)version;
    rd_emu *emu = cls;
    conn_state *cs = *con_cls;
    if (!cs)
        return MHD_NO;
    rd_emu_response resp;
    if (!cs->started) {
        cs->started = 1;
        MHD_get_connection_values(con, MHD_HEADER_KIND, collect_header, &cs->headers);
        make_request_id(emu, cs->request_id);
        rd_emu_response_init(&resp);
        if (!preflight(emu, method, cs, &resp)) {
            rd_emu_response_free(&resp);
            return MHD_YES;
        }
        /* answered from the headers: libmicrohttpd discards the body and closes the connection */
        apply_latency(emu);
        log_request(emu, method, cs->raw_uri, &cs->headers, &resp);
        enum MHD_Result r = send_response(con, method, &resp);
        rd_emu_response_free(&resp);
        return r;
    }
    if (*upload_data_size) {
        if (cs->upload) {
            rd_emu_s3_upload_write(cs->upload, upload_data, *upload_data_size);
        } else if (!cs->too_large && cs->body.len + *upload_data_size > MAX_BUFFERED_BODY) {
            cs->too_large = 1; /* a body without Content-Length ran over: dropped as it comes */
            rd_buf_free(&cs->body);
        } else if (!cs->too_large) {
            rd_buf_append(&cs->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    rd_emu_response_init(&resp);
    if (cs->upload) {
        apply_latency(emu);
        rd_emu_s3_upload_finish(cs->upload, &resp);
        cs->upload = NULL;
        log_request(emu, method, cs->raw_uri, &cs->headers, &resp);
    } else if (cs->too_large) {
        too_large(cs->kind, MAX_BUFFERED_BODY, cs->path, cs->request_id, &resp);
        log_request(emu, method, cs->raw_uri, &cs->headers, &resp);
    } else {
        dispatch(emu, method, cs, &resp);
    }
    enum MHD_Result r = send_response(con, method, &resp);
    rd_emu_response_free(&resp);
    return r;
}

/* Connections per listening address: MAX_CONNECTIONS, or fewer when the open-files limit is lower (a served
 * GET holds its socket and the object's file). */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    unsigned limit = MAX_CONNECTIONS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t fit = rl.rlim_cur > 256 ? (rl.rlim_cur - 128) / 3 : 32;
        if (fit < limit)
            limit = (unsigned)fit;
    }
    return limit;
}

static struct MHD_Daemon *start_daemon(rd_emu *emu, int family, int port, int threads)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO;
    if (family == AF_INET) {
        memset(&a4, 0, sizeof a4);
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa = (struct sockaddr *)&a4;
    } else {
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        a6.sin6_addr = in6addr_loopback;
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    }
    unsigned limit = connection_limit();
    return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, emu, MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_URI_LOG_CALLBACK, uri_logger,
                            NULL, MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK,
                            no_unescape, NULL, MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_SECONDS,
                            MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            PER_IP_CONNECTIONS < limit ? PER_IP_CONNECTIONS : limit,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, MHD_OPTION_END);
}

static rd_status make_dir(const char *path, rd_error *err)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return rd_error_set(err, RD_E_IO, "cannot create %s: %s", path, strerror(errno));
    return RD_OK;
}

rd_status rd_emulator_start(const rd_emulator_options *opts, rd_emulator **out, rd_error *err)
{
    if (!opts || !opts->data_dir)
        return rd_error_set(err, RD_E_USAGE, "the emulator needs a data directory (--data-dir)");
    rd_emu *emu = calloc(1, sizeof *emu);
    if (!emu)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    atomic_init(&emu->request_counter, 0);
    emu->log.out = opts->log_stream ? opts->log_stream : stderr;
    emu->log.level = opts->verbose ? RD_LOG_INFO : RD_LOG_WARN;
    emu->data_dir = strdup(opts->data_dir);
    rd_status st;
    rd_buf path = RD_BUF_INIT;
    if ((st = make_dir(opts->data_dir, err)) != RD_OK)
        goto fail;
    if ((st = rd_emu_ids_load(opts->config_path, &emu->ids, err)) != RD_OK)
        goto fail;
    if ((st = rd_emu_faults_parse(opts->faults, opts->seed, &emu->faults, err)) != RD_OK)
        goto fail;
    rd_buf_printf(&path, "%s/s3", opts->data_dir);
    if ((st = rd_s3_store_open(rd_buf_cstr(&path), &emu->store, err)) != RD_OK)
        goto fail;
    size_t nb;
    const char *const *buckets = rd_emu_ids_buckets(emu->ids, &nb);
    for (size_t i = 0; i < nb; i++) {
        rd_error berr;
        rd_error_clear(&berr);
        if (rd_s3_store_head_bucket(emu->store, buckets[i], NULL, &berr) != RD_OK &&
            (st = rd_s3_store_create_bucket(emu->store, buckets[i], rd_emu_ids_region(emu->ids), err)) != RD_OK)
            goto fail;
    }
    if ((st = rd_emu_engine_setup(emu, opts, err)) != RD_OK)
        goto fail;

    int threads = opts->threads > 0 ? opts->threads : 8;
    emu->d4 = start_daemon(emu, AF_INET, opts->port, threads);
    if (!emu->d4) {
        st = rd_error_set(err, RD_E_IO, "cannot listen on 127.0.0.1:%d (%s): pick another --port", opts->port,
                          strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(emu->d4, MHD_DAEMON_INFO_BIND_PORT);
    emu->port = di ? di->port : opts->port;
    emu->d6 = start_daemon(emu, AF_INET6, emu->port, threads > 2 ? threads / 2 : 1); /* optional */
    rd_buf_free(&path);
    *out = emu;
    return RD_OK;
fail:
    rd_buf_free(&path);
    rd_emulator_stop(emu);
    return st;
}

int rd_emulator_port(const rd_emulator *emu)
{
    return emu->port;
}

void rd_emulator_stop(rd_emulator *emu)
{
    if (!emu)
        return;
    if (emu->d6)
        MHD_stop_daemon(emu->d6);
    if (emu->d4)
        MHD_stop_daemon(emu->d4);
    rd_emu_engine_teardown(emu);
    if (emu->store)
        rd_s3_store_close(emu->store);
    rd_emu_faults_free(emu->faults);
    rd_emu_ids_free(emu->ids);
    free(emu->data_dir);
    free(emu);
}
