/* server.c — the emulator on the HTTP server (src/httpd): what can be decided from a request's headers
 * (the signature where the body is not part of it, body limits, a streamed PutObject) and the rd_emu life
 * cycle. Whole requests go to the router (router.c); the APIs live in s3/, redshift/ and iam/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "emulator/replies.h"
#include "emulator/router.h"
#include "emulator/s3/s3_store.h"
#include "httpd/httpd.h"
#include "redduck/emulator.h"

/* Limits that keep the emulator responsive when a client misbehaves. Bodies of the JSON and query APIs (and
 * small S3 ones: CreateBucket, DeleteObjects) are buffered up to MAX_BUFFERED_BODY; S3 PutObject bodies stream
 * to a temp file (up to S3's own 5 GiB). Nothing is read before what the headers show has been checked. */
#define MAX_BUFFERED_BODY ((size_t)8 << 20)
#define MAX_PUT_BODY ((uint64_t)5 << 30)

/* Per-request state, hung on the HTTP request from its headers to its end. */
typedef struct conn_state {
    rd_emu_api api;
    char request_id[40];
    /* a streamed PutObject: the request (strings borrowed from this state) and its upload */
    rd_emu_s3_upload *upload;
    char *path;
    rd_emu_request req;
    rd_emu_auth_info info;
} conn_state;

/* Everything the headers allow to decide before a body is read: the signature where it does not depend on
 * the body (S3: the payload hash is a signed header), otherwise what can be checked of it (a well-formed
 * Authorization, a known key, the clock). Starts a streamed PutObject. RD_HTTPD_ANSWER with resp filled:
 * answer now (the body is never read); otherwise read the body (buffered up to MAX_BUFFERED_BODY, or
 * streamed into the upload) and answer then. */
static rd_httpd_next preflight(rd_emu *emu, const char *method, const char *raw, const rd_headers *h,
                               conn_state *cs, rd_emu_response *resp)
{
    const char *qmark = strchr(raw, '?');
    cs->path = qmark ? strndup(raw, (size_t)(qmark - raw)) : strdup(raw);
    if (!cs->path)
        return RD_HTTPD_BUFFER;
    rd_emu_auth_info scope;
    memset(&scope, 0, sizeof scope);
    int have_scope = rd_emu_auth_scope(raw, h, &scope);
    cs->api = rd_emu_sniff_headers(method, cs->path, h, &scope, have_scope);
    const char *auth = rd_headers_get(h, "Authorization");
    const char *cl = rd_headers_get(h, "Content-Length");
    uint64_t length = cl ? strtoull(cl, NULL, 10) : 0;
    time_t now = time(NULL);
    rd_emu_auth_result ar = RD_AUTH_OK;
    if (cs->api == RD_EMU_API_S3) {
        if (rd_emu_auth_is_sigv2(raw, h)) {
            rd_emu_reply_s3_error(resp, 400, "InvalidRequest", RD_EMU_SIGV2_MESSAGE, cs->path, cs->request_id);
            return RD_HTTPD_ANSWER;
        }
        if (!auth && !strstr(raw, "X-Amz-Signature="))
            ar = RD_AUTH_MISSING;
        else if (auth && !rd_headers_get(h, "x-amz-content-sha256"))
            ar = rd_emu_auth_precheck(emu->ids, h, now, &cs->info); /* the body is signed */
        else if ((ar = rd_emu_auth_verify(emu->ids, method, raw, h, NULL, 0, now, &cs->info)) == RD_AUTH_OK &&
                 strcmp(method, "PUT") == 0) {
            if (length > MAX_PUT_BODY) {
                rd_emu_reply_too_large(RD_EMU_API_S3, MAX_PUT_BODY, cs->path, cs->request_id, resp);
                return RD_HTTPD_ANSWER;
            }
            rd_emu_request *req = &cs->req;
            req->method = method;
            req->path = cs->path;
            req->query = qmark ? qmark + 1 : "";
            req->headers = h;
            req->body = "";
            req->request_id = cs->request_id;
            req->host = rd_headers_get(h, "Host");
            rd_emu_request_set_caller(emu, req, &cs->info);
            rd_emu_s3_route route = rd_emu_s3_upload_begin(emu, emu->store, req, resp, &cs->upload);
            if (route == RD_EMU_S3_STREAM && rd_emu_faults_draw(emu->faults, "s3.put.slowdown")) {
                rd_emu_s3_upload_abort(cs->upload);
                cs->upload = NULL;
                rd_emu_response_free(resp);
                rd_emu_response_init(resp);
                rd_emu_reply_slow_down(resp, cs->path, cs->request_id);
                return RD_HTTPD_ANSWER;
            }
            if (route == RD_EMU_S3_REPLIED)
                return RD_HTTPD_ANSWER;
            if (route == RD_EMU_S3_STREAM)
                return RD_HTTPD_STREAM;
        }
    } else if (auth) {
        ar = rd_emu_auth_precheck(emu->ids, h, now, &cs->info);
    } else if (cs->api != RD_EMU_API_SSO && cs->api != RD_EMU_API_QUERY) { /* the query API has an unsigned action */
        ar = RD_AUTH_MISSING;
    }
    if (ar != RD_AUTH_OK) {
        rd_emu_reply_auth_error(cs->api, ar, cs->path, cs->request_id, resp);
        return RD_HTTPD_ANSWER;
    }
    return RD_HTTPD_BUFFER; /* the server refuses a Content-Length over MAX_BUFFERED_BODY (on_too_large) */
}

static rd_httpd_next on_headers(void *ctx, rd_httpd_request *hr, rd_emu_response *resp)
{
    rd_emu *emu = ctx;
    conn_state *cs = calloc(1, sizeof *cs);
    if (!cs) {
        resp->status = 503;
        return RD_HTTPD_ANSWER;
    }
    rd_httpd_set_data(hr, cs);
    rd_emu_make_request_id(emu, cs->request_id);
    const char *method = rd_httpd_method(hr), *raw = rd_httpd_uri(hr);
    const rd_headers *h = rd_httpd_headers(hr);
    rd_httpd_next next = preflight(emu, method, raw, h, cs, resp);
    if (next == RD_HTTPD_ANSWER) {
        rd_emu_apply_latency(emu);
        rd_emu_log_request(emu, method, raw, h, resp);
    }
    return next;
}

static void on_body(void *ctx, rd_httpd_request *hr, const char *data, size_t len)
{
    (void)ctx;
    conn_state *cs = rd_httpd_data(hr);
    rd_emu_s3_upload_write(cs->upload, data, len);
}

static void on_too_large(void *ctx, rd_httpd_request *hr, int before_body, size_t limit, rd_emu_response *resp)
{
    rd_emu *emu = ctx;
    conn_state *cs = rd_httpd_data(hr);
    /* a form upload (PostObject) passes the header check as a query-API form, but is S3's to refuse */
    rd_emu_api api = cs->api == RD_EMU_API_QUERY && rd_emu_is_form_upload(rd_httpd_method(hr), rd_httpd_headers(hr))
                         ? RD_EMU_API_S3
                         : cs->api;
    rd_emu_reply_too_large(api, limit, cs->path, cs->request_id, resp);
    if (before_body)
        rd_emu_apply_latency(emu);
    rd_emu_log_request(emu, rd_httpd_method(hr), rd_httpd_uri(hr), rd_httpd_headers(hr), resp);
}

static void on_complete(void *ctx, rd_httpd_request *hr, rd_emu_response *resp)
{
    rd_emu *emu = ctx;
    conn_state *cs = rd_httpd_data(hr);
    const char *method = rd_httpd_method(hr), *raw = rd_httpd_uri(hr);
    const rd_headers *h = rd_httpd_headers(hr);
    if (cs->upload) {
        rd_emu_apply_latency(emu);
        rd_emu_s3_upload_finish(cs->upload, resp);
        cs->upload = NULL;
        rd_emu_log_request(emu, method, raw, h, resp);
        return;
    }
    const rd_buf *body = rd_httpd_body(hr);
    rd_emu_route_request(emu, method, raw, h, rd_buf_cstr(body), body->len, cs->request_id, resp);
}

static void on_done(void *ctx, rd_httpd_request *hr)
{
    (void)ctx;
    conn_state *cs = rd_httpd_data(hr);
    if (!cs)
        return;
    rd_emu_s3_upload_abort(cs->upload); /* the client went away mid-body */
    free(cs->path);
    free(cs);
    rd_httpd_set_data(hr, NULL);
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
        rd_emu_error e;
        if (rd_s3_store_head_bucket(emu->store, buckets[i], NULL, NULL) != 0 &&
            rd_s3_store_create_bucket(emu->store, buckets[i], rd_emu_ids_region(emu->ids), &e) != 0) {
            /* the emulator's own start fails: said to its caller as an rd_error */
            if (strcmp(e.code, "InvalidBucketName") == 0)
                st = rd_error_set(err, RD_E_USAGE, "'%s' is not a valid bucket name: use 3-63 lowercase letters, "
                                  "digits, '-' and '.'", buckets[i]);
            else
                st = rd_error_set(err, RD_E_IO, "%s", e.message);
            goto fail;
        }
    }
    if ((st = rd_emu_engine_setup(emu, opts, err)) != RD_OK)
        goto fail;

    /* shaped answers sleep on their connection's thread: a thread per connection then (up to the server's
     * 1000 connections and 256 per client, far above the 16-64 a parallel download opens) */
    rd_httpd_options ho = { .port = opts->port,
                            .threads = opts->threads > 0 ? opts->threads : 8,
                            .thread_per_connection = rd_emu_faults_shaping(emu->faults),
                            .max_body = MAX_BUFFERED_BODY,
                            .server_name = "redduck-emulator" };
    rd_httpd_handler handler = { .on_headers = on_headers,
                                 .on_body = on_body,
                                 .on_complete = on_complete,
                                 .on_too_large = on_too_large,
                                 .on_done = on_done,
                                 .ctx = emu };
    if ((st = rd_httpd_start(&ho, &handler, &emu->httpd, err)) != RD_OK)
        goto fail;
    emu->port = rd_httpd_port(emu->httpd);
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
    rd_httpd_stop(emu->httpd);
    rd_emu_engine_teardown(emu);
    if (emu->store)
        rd_s3_store_close(emu->store);
    rd_emu_faults_free(emu->faults);
    rd_emu_ids_free(emu->ids);
    free(emu->data_dir);
    free(emu);
}
