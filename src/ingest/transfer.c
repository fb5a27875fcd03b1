/* transfer.c — parallel, resumable downloads over the transport's rd_http_multi (see transfer.h). Retry
 * decisions come from rd_aws_retry_class, delays from rd_aws_backoff_ms, S3 error codes from
 * rd_aws_parse_error: the downloader has no HTTP or retry policy of its own. */
#include "ingest/transfer.h"

#include "aws/client.h"
#include "aws/endpoints.h"
#include "aws/http.h"
#include "core/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "redduck/buf.h"

#define ERROR_BODY_MAX 4096

typedef enum { ST_PENDING, ST_ACTIVE, ST_DONE, ST_FAILED } item_state;

typedef struct slot {
    const rd_transfer_item *item;
    item_state state;
    FILE *fp;
    uint64_t have;        /* bytes in the local file */
    uint64_t attempt_start;
    int attempts;
    int used_range;
    long long not_before_ms;
    int mode;             /* 0 undecided, 1 file, 2 error body (into resp.body) */
    int write_errno;      /* errno of the local write that failed (the transport then says RD_E_IO) */
    rd_http_response resp;
} slot;

static size_t on_body(void *ctx, const void *data, size_t len)
{
    slot *s = ctx;
    if (s->mode == 0) {
        int code = s->resp.status;
        if (code == 200 || code == 206) {
            s->mode = 1;
            if (code == 200 && s->have > 0) {
                /* the server ignored the Range: start the file over */
                if (fflush(s->fp) != 0 || ftruncate(fileno(s->fp), 0) != 0 || fseeko(s->fp, 0, SEEK_SET) != 0) {
                    s->write_errno = errno;
                    return 0;
                }
                s->have = 0;
            }
        } else {
            s->mode = 2;
        }
    }
    if (s->mode == 2) {
        if (s->resp.body.len < ERROR_BODY_MAX)
            rd_buf_append(&s->resp.body, data, len);
        return len;
    }
    if (fwrite(data, 1, len, s->fp) != len) {
        s->write_errno = errno;
        return 0;
    }
    s->have += len;
    return len;
}

/* A local write error no retry can mend: the disk (or quota) is full, or the file system read-only. */
static int disk_errno(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EROFS;
}

/* RD_E_IO for local write error e on path: "No space left on device on <dir>: <hint>" for a full disk. */
static rd_status local_error(rd_error *err, const rd_transfer_options *o, const char *what, const char *path, int e)
{
    if (!disk_errno(e))
        return rd_error_set(err, RD_E_IO, "%s %s: %s", what, path, strerror(e));
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (slash == path ? 1 : (int)(slash - path)) : 1;
    return rd_error_set(err, RD_E_IO, "%s on %.*s: %s", strerror(e), dirlen, slash ? path : ".",
                        e == EROFS ? "download to a writable directory"
                        : o->disk_full_hint ? o->disk_full_hint : "free space");
}

static rd_status slot_start(slot *s, rd_http_multi *multi, const rd_transfer_options *o, rd_error *err)
{
    if (!s->fp) {
        s->fp = fopen(s->item->local_path, "wb");
        if (!s->fp)
            return local_error(err, o, "cannot create", s->item->local_path, errno);
    }
    char *url = NULL;
    rd_headers h = RD_HEADERS_INIT;
    rd_status st = o->sign(o->sign_ctx, s->item, s->have, &url, &h, err);
    if (st != RD_OK) {
        rd_headers_free(&h);
        return st;
    }
    s->used_range = s->have > 0;
    s->attempts++;
    s->attempt_start = s->have;
    s->mode = 0;
    s->write_errno = 0;
    rd_http_response_reset(&s->resp);
    rd_http_request req = { "GET", url, &h, NULL, 0, o->timeout_ms > 0 ? o->timeout_ms : 300000L, on_body, s };
    st = rd_http_multi_add(multi, &req, &s->resp, s, err);
    free(url);
    rd_headers_free(&h);
    if (st == RD_OK)
        s->state = ST_ACTIVE;
    return st;
}

static long backoff_ms(const rd_transfer_options *o, int attempt)
{
    long base = o->backoff_base_ms > 0 ? o->backoff_base_ms : 100;
    long cap = base * 64 < 5000 ? base * 64 : 5000;
    return rd_aws_backoff_ms(base, cap, attempt, NULL, NULL);
}

rd_status rd_transfer_run(const rd_transfer_item *items, size_t count, const rd_transfer_options *o,
                          rd_transfer_stats *stats, rd_error *err)
{
    rd_transfer_stats local = { 0 };
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (count == 0)
        return RD_OK;
    int conc = o->concurrency > 0 ? o->concurrency : 16;
    int max_attempts = o->max_attempts > 0 ? o->max_attempts : 10;
    rd_http_transport *own = NULL, *http = o->http;
    if (!http) {
        rd_http_options ho = { 0 };
        ho.ca_bundle = o->ca_bundle;
        ho.log = o->log;
        rd_status hst = rd_http_curl_new(&ho, &own, err);
        if (hst != RD_OK)
            return hst;
        http = own;
    }
    rd_http_multi *multi = NULL;
    rd_status st = rd_http_multi_new(http, &multi, err);
    slot *slots = st == RD_OK ? calloc(count, sizeof *slots) : NULL;
    if (!slots) {
        rd_http_multi_free(multi);
        rd_http_transport_free(own);
        return st != RD_OK ? st : rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        slots[i].item = &items[i];
        rd_http_response_init(&slots[i].resp);
    }
    size_t finished = 0, next = 0;
    int active = 0;
    uint64_t bytes_before = 0;
    while (finished < count && st == RD_OK) {
        if (o->cancel && *o->cancel) {
            st = rd_error_set(err, RD_E_CANCELLED, "download cancelled");
            break;
        }
        long long now = rd_monotonic_ms();
        /* start what may start: retries that are due first, then new items in order */
        for (size_t i = 0; i < count && active < conc && st == RD_OK; i++) {
            slot *s = &slots[i];
            if (s->state == ST_PENDING && s->attempts > 0 && s->not_before_ms <= now) {
                if ((st = slot_start(s, multi, o, err)) == RD_OK)
                    active++;
            }
        }
        while (next < count && active < conc && st == RD_OK) {
            if (o->admit && !o->admit(o->admit_ctx, &items[next]))
                break; /* the consumer is behind: start it later */
            slot *s = &slots[next++];
            if ((st = slot_start(s, multi, o, err)) == RD_OK)
                active++;
        }
        if (st != RD_OK)
            break;
        void *user = NULL;
        rd_status xst = RD_OK;
        rd_error xerr;
        rd_error_clear(&xerr);
        while (st == RD_OK && rd_http_multi_next(multi, &user, &xst, &xerr)) {
            slot *s = user;
            int code = s->resp.status;
            active--;
            if (s->attempts > 1)
                stats->retries++;
            if (s->used_range)
                stats->resumes++;
            uint64_t want = s->item->expected_size;
            int complete = xst == RD_OK && (code == 200 || code == 206) &&
                           (want == RD_TRANSFER_SIZE_UNKNOWN || s->have == want);
            if (!complete && want != RD_TRANSFER_SIZE_UNKNOWN && s->have == want && code == 416)
                complete = 1; /* everything had arrived before the reset */
            char why[RD_ERROR_MSG_MAX];
            rd_retry_class rc = RD_RETRY_NEVER;
            if (complete) {
                rd_http_response_free(&s->resp);
                if (fclose(s->fp) != 0) {
                    s->fp = NULL;
                    st = local_error(err, o, "writing", s->item->local_path, errno);
                    break;
                }
                s->fp = NULL;
                s->state = ST_DONE;
                finished++;
                stats->files++;
                if (o->done && (st = o->done(o->done_ctx, s->item, RD_OK, NULL)) != RD_OK) {
                    if (err && err->message[0] == '\0')
                        rd_error_set(err, st, "processing %s failed", s->item->name);
                    break;
                }
                continue;
            }
            if (xst == RD_E_IO && disk_errno(s->write_errno)) {
                /* the local disk, not the network: retrying cannot help */
                s->state = ST_FAILED;
                st = local_error(err, o, "writing", s->item->local_path, s->write_errno);
                if (o->done)
                    o->done(o->done_ctx, s->item, st, err);
                break;
            }
            if (xst != RD_OK) {
                snprintf(why, sizeof why, "%s", xerr.message);
                if (xst == RD_E_IO && s->write_errno)
                    snprintf(why, sizeof why, "writing %s: %s", s->item->local_path, strerror(s->write_errno));
                rc = rd_aws_retry_class(xst, s->write_errno, 0, NULL);
            } else if (code == 200 || code == 206) {
                if (s->have > want) {
                    snprintf(why, sizeof why, "got %llu bytes, the listing says %llu", (unsigned long long)s->have,
                             (unsigned long long)want);
                } else {
                    snprintf(why, sizeof why, "short body: %llu of %llu bytes", (unsigned long long)s->have,
                             (unsigned long long)want);
                    rc = rd_aws_retry_class(RD_E_NETWORK, 0, code, NULL); /* the connection lost the rest */
                }
            } else {
                char code_s[96], message[256];
                rd_aws_parse_error(&rd_svc_s3, &s->resp, code_s, sizeof code_s, message, sizeof message);
                snprintf(why, sizeof why, "HTTP %d%s%s", code, code_s[0] ? " " : "", code_s);
                rc = rd_aws_retry_class(RD_OK, 0, code, code_s);
            }
            rd_error_clear(&xerr);
            if (rc != RD_RETRY_NEVER && s->attempts < max_attempts) {
                if (o->log)
                    rd_log_write(o->log, RD_LOG_INFO, "download %s: %s%s; retrying from byte %llu (attempt %d/%d)",
                                 s->item->name, why, rc == RD_RETRY_THROTTLE ? " (throttled)" : "",
                                 (unsigned long long)s->have, s->attempts + 1, max_attempts);
                s->state = ST_PENDING;
                s->not_before_ms = rd_monotonic_ms() + backoff_ms(o, s->attempts);
                continue;
            }
            s->state = ST_FAILED;
            rd_status fst = code == 403 ? RD_E_DENIED : code == 404 ? RD_E_NOT_FOUND
                            : xst != RD_OK ? RD_E_NETWORK
                                           : RD_E_REMOTE;
            rd_error_set(err, fst, "downloading %s failed after %d attempt%s: %s%s", s->item->name, s->attempts,
                         s->attempts == 1 ? "" : "s", why,
                         code == 403 ? " — the identity needs s3:GetObject on this object" : "");
            if (o->done)
                o->done(o->done_ctx, s->item, fst, err);
            st = fst;
        }
        if (st != RD_OK)
            break;
        uint64_t bytes = 0;
        for (size_t i = 0; i < count; i++)
            bytes += slots[i].have;
        if (o->progress && bytes != bytes_before)
            o->progress(o->progress_ctx, bytes, finished, count);
        bytes_before = bytes;
        if (finished < count)
            rd_http_multi_wait(multi, active ? 100 : 20);
    }
    rd_http_multi_free(multi); /* abandons what still runs, before the slots its sinks write to go */
    for (size_t i = 0; i < count; i++) {
        if (slots[i].fp)
            fclose(slots[i].fp);
        stats->bytes += slots[i].state == ST_DONE ? slots[i].have : 0;
        rd_http_response_free(&slots[i].resp);
    }
    free(slots);
    rd_http_transport_free(own);
    return st;
}
