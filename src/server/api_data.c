/* api_data.c — the data calls of the /v1 API (docs/SERVER_API.md): the snapshot download (the whole file or one
 * range, straight from an fd opened once, so a download that started keeps its snapshot whole even when a newer
 * one replaces and unlinks it), the snapshot's description, and the query API (query.h). api.c has
 * authenticated, routed and checked the role (viewer and up) before any of these runs. */
#include "server/api_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/query.h"

#define NO_DATA_MSG "no data yet: the project has not refreshed successfully (run `redduck refresh --cloud`)"

/* ---- the snapshot ---------------------------------------------------------------------------------------- */

/* The current snapshot's row and its file opened: *fd >= 0 on success. A snapshot replaced (and unlinked)
 * between reading the row and opening the file is read again, a few times. Answers the failure itself. */
static int open_current(rd_api_call *c, rd_httpd_response *resp, rd_store_snapshot *s, int *fd, struct stat *sb)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        rd_error err;
        rd_error_clear(&err);
        memset(s, 0, sizeof *s);
        rd_status st = rd_store_snapshot_current(c->api->st, c->project, s, &err);
        if (st == RD_E_NOT_FOUND) {
            rd_api_reply_error(c, resp, 404, "NotFound", NO_DATA_MSG);
            return -1;
        }
        if (st != RD_OK) {
            rd_api_reply_store(c, resp, st, &err);
            return -1;
        }
        *fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (*fd >= 0 && fstat(*fd, sb) == 0 && S_ISREG(sb->st_mode))
            return 0;
        int e = *fd >= 0 ? EINVAL : errno;
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        int64_t id = s->id;
        rd_store_snapshot_clear(s);
        if (e != ENOENT) {
            rd_api_reply_error(c, resp, 500, "Internal", "cannot open snapshot %" PRId64 " of %s: %s", id, c->project,
                               e == EINVAL ? "not a regular file" : strerror(e));
            return -1;
        }
    }
    rd_api_reply_error(c, resp, 503, "Unavailable", "the snapshots of %s are being replaced quickly: try again",
                       c->project);
    return -1;
}

static rd_httpd_next snapshot_headers(rd_api_call *c, rd_httpd_request *req, rd_httpd_response *resp)
{
    rd_store_snapshot s;
    int fd = -1;
    struct stat sb;
    if (open_current(c, resp, &s, &fd, &sb) != 0)
        return RD_HTTPD_ANSWER;
    uint64_t size = (uint64_t)sb.st_size, first = 0, last = size ? size - 1 : 0;
    char etag[80], num[32];
    snprintf(etag, sizeof etag, "\"%s\"", s.sha256 ? s.sha256 : "");
    const rd_headers *h = rd_httpd_headers(req);
    const char *range = rd_headers_get(h, "Range"), *if_range = rd_headers_get(h, "If-Range");
    rd_range_kind kind = rd_range_parse(range, size, &first, &last);
    if (kind != RD_RANGE_NONE && if_range && strcmp(if_range, etag) != 0)
        kind = RD_RANGE_NONE; /* another snapshot than the client's part: the whole new one */
    rd_headers_set(&resp->headers, "Accept-Ranges", "bytes");
    rd_headers_set(&resp->headers, "ETag", etag);
    rd_headers_set(&resp->headers, "Cache-Control", "no-store");
    snprintf(num, sizeof num, "%" PRId64, s.id);
    rd_headers_set(&resp->headers, "X-Redduck-Snapshot-Id", num);
    if (s.sha256)
        rd_headers_set(&resp->headers, "X-Redduck-Sha256", s.sha256);
    char cr[96];
    if (kind == RD_RANGE_UNSATISFIABLE) {
        close(fd);
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
        rd_headers_set(&resp->headers, "Content-Range", cr);
        rd_api_reply_error(c, resp, 416, "RangeNotSatisfiable", "the snapshot has %" PRIu64 " bytes: nothing at the "
                           "range asked for", size);
        rd_store_snapshot_clear(&s);
        return RD_HTTPD_ANSWER;
    }
    rd_headers_set(&resp->headers, "Content-Type", "application/vnd.duckdb");
    resp->fd = fd;
    if (kind == RD_RANGE_OK) {
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
        rd_headers_set(&resp->headers, "Content-Range", cr);
        resp->fd_offset = first;
        resp->fd_length = last - first + 1;
        resp->status = c->status = 206;
    } else {
        resp->fd_offset = 0;
        resp->fd_length = size;
        resp->status = c->status = 200;
    }
    rd_store_snapshot_clear(&s);
    return RD_HTTPD_ANSWER;
}

static void snapshot_info(rd_api_call *c, const rd_buf *body, rd_httpd_response *resp)
{
    (void)body;
    rd_store_snapshot s;
    memset(&s, 0, sizeof s);
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_snapshot_current(c->api->st, c->project, &s, &err);
    if (st == RD_E_NOT_FOUND) {
        rd_api_reply_error(c, resp, 404, "NotFound", NO_DATA_MSG);
        return;
    }
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    json_t *tables = s.tables_json ? json_loads(s.tables_json, 0, NULL) : NULL;
    if (!json_is_array(tables)) {
        json_decref(tables);
        tables = json_array();
    }
    rd_api_reply(c, resp, 200,
                 json_pack("{s:I, s:o, s:s, s:I, s:o}", "id", (json_int_t)s.id, "created_at",
                           rd_api_json_time(s.created_at_ms / 1000), "sha256", s.sha256 ? s.sha256 : "", "size",
                           (json_int_t)s.size, "tables", tables));
    rd_store_snapshot_clear(&s);
}

/* ---- the query API ---------------------------------------------------------------------------------------- */

static void query_complete(rd_api_call *c, const rd_buf *body, rd_httpd_response *resp)
{
    static const rd_api_field schema[] = {
        { "sql", RD_API_STRING, 1 }, { "format", RD_API_STRING, 0 }, { NULL, RD_API_STRING, 0 }
    };
    json_t *o = NULL;
    char msg[RD_API_MSG_MAX];
    if (rd_api_parse_json_body(body->data, body->len, schema, &o, msg, sizeof msg) != 0) {
        rd_api_reply_error(c, resp, 400, "BadRequest", "%s", msg);
        return;
    }
    const char *fmt = json_string_value(json_object_get(o, "format"));
    rd_query_format format = RD_QUERY_JSON;
    if (fmt && strcmp(fmt, "csv") == 0) {
        format = RD_QUERY_CSV;
    } else if (fmt && strcmp(fmt, "json") != 0) {
        json_decref(o);
        rd_api_reply_error(c, resp, 400, "BadRequest", "format must be json or csv");
        return;
    }
    json_t *sqlv = json_object_get(o, "sql");
    const rd_api_query_limits *ql = &c->api->query;
    rd_query_limits lim = { .max_rows = ql->max_rows, .timeout_ms = ql->timeout_ms, .max_memory = ql->max_memory,
                            .max_concurrent = ql->max_concurrent };
    rd_query_result r;
    rd_query_failure why = RD_QUERY_OK;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_query_run(c->api->queries, c->api->st, c->project, json_string_value(sqlv), json_string_length(sqlv),
                                format, &lim, &r, &why, &err);
    json_decref(o);
    if (st != RD_OK) {
        switch (why) {
        case RD_QUERY_REFUSED: rd_api_reply_error(c, resp, 400, "Refused", "%s", err.message); break;
        case RD_QUERY_TIMEOUT: rd_api_reply_error(c, resp, 408, "Timeout", "%s", err.message); break;
        case RD_QUERY_OUT_OF_MEMORY: rd_api_reply_error(c, resp, 400, "OutOfMemory", "%s", err.message); break;
        case RD_QUERY_BUSY:
            rd_headers_set(&resp->headers, "Retry-After", "1");
            rd_api_reply_error(c, resp, 429, "TooManyRequests", "%s", err.message);
            break;
        case RD_QUERY_NO_DATA: rd_api_reply_error(c, resp, 404, "NotFound", NO_DATA_MSG); break;
        case RD_QUERY_BAD_REQUEST: rd_api_reply_error(c, resp, 400, "BadRequest", "%s", err.message); break;
        default: rd_api_reply_error(c, resp, 500, "Internal", "%s", err.message); break;
        }
        return;
    }
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, r.snapshot_id);
    rd_headers_set(&resp->headers, "X-Redduck-Snapshot-Id", num);
    rd_headers_set(&resp->headers, "Cache-Control", "no-store");
    if (format == RD_QUERY_CSV) {
        rd_headers_set(&resp->headers, "Content-Type", "text/csv; charset=utf-8");
        if (r.truncated)
            rd_headers_set(&resp->headers, "X-Redduck-Truncated", "true");
        snprintf(num, sizeof num, "%" PRIu64, r.row_count);
        rd_headers_set(&resp->headers, "X-Redduck-Row-Count", num);
    } else {
        rd_headers_set(&resp->headers, "Content-Type", "application/json");
        rd_buf_putc(&r.body, '\n');
    }
    rd_buf_free(&resp->body);
    resp->body = r.body; /* moved */
    rd_buf_init(&r.body);
    resp->status = c->status = 200;
    rd_query_result_free(&r);
}

const rd_api_ext_route rd_api_data_routes[] = {
    { .method = "GET", .tail = "snapshot", .action = RD_ACTION_READ_DATA, .headers = snapshot_headers },
    { .method = "GET", .tail = "snapshot/info", .action = RD_ACTION_READ_DATA, .complete = snapshot_info },
    { .method = "POST", .tail = "query", .action = RD_ACTION_READ_DATA, .complete = query_complete },
    { .method = NULL },
};
