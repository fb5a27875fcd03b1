/* transfer.c — parallel, resumable, ranged downloads over the transport's rd_http_multi (see transfer.h).
 * Retry decisions come from rd_aws_retry_class, delays from rd_aws_backoff_ms, S3 error codes from
 * rd_aws_parse_error: the downloader has no HTTP or retry policy of its own. The unit of work is a part: a
 * byte range of a split item, or the whole of an unsplit one; each has its own attempts and writes at its
 * offset with pwrite on the item's one descriptor. Parts exist only while started and not done, so memory
 * follows what is in flight, not the size of the objects. */
#include "ingest/transfer.h"

#include "aws/client.h"
#include "aws/endpoints.h"
#include "aws/http.h"
#include "core/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "redduck/buf.h"

#define ERROR_BODY_MAX 4096
#define ETAG_MAX 255          /* longer ETags (S3's are under 40 bytes) are treated as absent */
#define ADMIT_RETRY_MS 20     /* how soon a postponed item is asked about again */

typedef enum { IT_QUEUED, IT_RUNNING, IT_DONE, IT_FAILED } item_state;

typedef struct xitem {
    rd_transfer_item item; /* the caller's copy; its strings stay borrowed */
    size_t seq;            /* order added: earlier items' parts go first */
    item_state state;
    int fd;                /* -1 until started and after closing */
    int split;             /* fetched as ranges of part_size */
    uint64_t part_size;    /* the range size when split */
    uint64_t nparts, next_part, parts_done;
    char *etag;            /* owned: the listing's, else the first response's (NULL: the server sent none) */
    int etag_known;        /* etag is settled: later requests carry it as If-Match */
    uint64_t received;     /* bytes in the local file */
} xitem;

typedef enum { BODY_UNDECIDED, BODY_FILE, BODY_ERROR, BODY_REFUSED } body_mode;

typedef struct part {
    struct rd_transfer *t;
    xitem *it;
    uint64_t index;
    uint64_t start, end;   /* [start, end); end RD_TRANSFER_SIZE_UNKNOWN for an unsplit item of unknown size */
    uint64_t have;         /* bytes of the part in the file */
    int active;            /* a request runs; else it waits for not_before_ms */
    int attempts;
    long long not_before_ms;
    /* the running attempt */
    uint64_t asked;        /* its first byte (start + have when it started) */
    int sent_if_match;
    body_mode mode;
    int write_errno;       /* errno of the local write that failed (the transport then says RD_E_IO) */
    rd_status refuse_st;   /* BODY_REFUSED: why, and whether another attempt may help */
    int refuse_retry;
    int refuse_whole;      /* refuse_msg is the whole message, not a reason after "failed after ..." */
    char refuse_msg[512];
    rd_http_response resp;
} part;

struct rd_transfer {
    rd_transfer_options o;
    int conc, max_attempts;
    uint64_t part_size;
    rd_http_transport *own, *http;
    rd_http_multi *multi;
    xitem **items;
    size_t count, cap;
    size_t first_open;     /* items before it are done or failed */
    size_t finished;       /* items done */
    part **open;           /* parts started and not done */
    size_t nopen, capopen;
    int active;            /* requests running */
    int kick;              /* something may start now (an item's ETag became known) */
    uint64_t received, reported_bytes;
    size_t reported_files;
    rd_transfer_stats stats;
    rd_status failed;      /* sticky: the first failure */
    rd_error fail_err;
};

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

static long backoff_ms(const rd_transfer_options *o, int attempt)
{
    long base = o->backoff_base_ms > 0 ? o->backoff_base_ms : 100;
    long cap = base * 64 < 5000 ? base * 64 : 5000;
    return rd_aws_backoff_ms(base, cap, attempt, NULL, NULL);
}

/* The reply's ETag when it is one we may compare and send back: printable ASCII of at most ETAG_MAX bytes.
 * NULL otherwise (absent, or hostile). */
static const char *reply_etag(const rd_http_response *r)
{
    const char *v = rd_headers_get(&r->headers, "ETag");
    return v && rd_header_value_is_token(v, ETAG_MAX) ? v : NULL;
}

/* "bytes FIRST-LAST/TOTAL" → 0 and the numbers; -1 when it is not that shape (a "*" total included). */
static int parse_content_range(const char *v, uint64_t *first, uint64_t *last, uint64_t *total)
{
    if (!v || strncasecmp(v, "bytes ", 6) != 0)
        return -1;
    const char *p = v + 6;
    uint64_t n[3];
    for (int i = 0; i < 3; i++) {
        if (*p < '0' || *p > '9')
            return -1;
        uint64_t x = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                return -1;
            x = x * 10 + (uint64_t)(*p - '0');
        }
        n[i] = x;
        if (i < 2 && *p++ != (i == 0 ? '-' : '/'))
            return -1;
    }
    if (*p || n[1] < n[0] || n[1] >= n[2])
        return -1;
    *first = n[0];
    *last = n[1];
    *total = n[2];
    return 0;
}

/* Marks the running attempt refused by on_body: the transport then ends it (RD_E_IO) and the completion
 * reports this instead. */
static void refuse(part *p, rd_status st, int retry, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void refuse(part *p, rd_status st, int retry, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->refuse_msg, sizeof p->refuse_msg, fmt, ap);
    va_end(ap);
    p->mode = BODY_REFUSED;
    p->refuse_st = st;
    p->refuse_retry = retry;
    p->refuse_whole = 0;
}

/* The object's ETag changed between two requests of one item: it was replaced while downloading. */
static void refuse_changed(part *p, const char *now)
{
    refuse(p, RD_E_REMOTE, 0, "s3 object %s changed while it was downloading (ETag was %s, now %s): run again",
           p->it->item.name, p->it->etag, now ? now : "a different one");
    p->refuse_whole = 1;
}

/* The first body byte (or the end of a bodiless 2xx reply): decides where the body goes, checking the reply
 * against what was asked: the ETag, the Content-Range of a 206, a 200 to a ranged request. */
static void decide(part *p)
{
    xitem *it = p->it;
    int code = p->resp.status;
    if (code != 200 && code != 206) {
        p->mode = BODY_ERROR;
        return;
    }
    const char *etag = reply_etag(&p->resp);
    if (it->etag_known && it->etag && etag && strcmp(etag, it->etag) != 0) {
        refuse_changed(p, etag);
        return;
    }
    if (!it->etag_known) {
        /* the item's first response: its ETag goes with every later request as If-Match */
        it->etag_known = 1;
        p->t->kick = it->split && it->next_part < it->nparts; /* its other ranges may start */
        if (etag && !(it->etag = strdup(etag))) {
            refuse(p, RD_E_INTERNAL, 0, "out of memory");
            return;
        }
    }
    uint64_t want = it->item.expected_size;
    if (it->split && code == 200) {
        refuse(p, RD_E_REMOTE, 0, "the server ignored the Range header");
        return;
    }
    if (code == 206) {
        uint64_t first, last, total;
        uint64_t want_last = p->end != RD_TRANSFER_SIZE_UNKNOWN ? p->end - 1 : 0;
        if (parse_content_range(rd_headers_get(&p->resp.headers, "Content-Range"), &first, &last, &total) != 0) {
            refuse(p, RD_E_REMOTE, 1, "a 206 reply without a readable Content-Range (asked for bytes %" PRIu64 "-)",
                   p->asked);
            return;
        }
        if (want != RD_TRANSFER_SIZE_UNKNOWN && total != want) {
            refuse(p, RD_E_REMOTE, 0, "the object is %" PRIu64 " bytes, the listing says %" PRIu64, total, want);
            return;
        }
        if (first != p->asked || (p->end != RD_TRANSFER_SIZE_UNKNOWN ? last != want_last : last + 1 != total)) {
            refuse(p, RD_E_REMOTE, 1, "the reply holds bytes %" PRIu64 "-%" PRIu64 ", not the bytes %" PRIu64 "-%" PRIu64
                   " asked for", first, last, p->asked, p->end != RD_TRANSFER_SIZE_UNKNOWN ? want_last : total - 1);
            return;
        }
    }
    if (code == 200 && p->have > 0) {
        /* an unsplit item whose resume the server answered in full: start the file over */
        if (ftruncate(it->fd, 0) != 0) {
            p->write_errno = errno;
            refuse(p, RD_E_IO, 0, "truncating %s: %s", it->item.local_path, strerror(errno));
            return;
        }
        it->received -= p->have;
        p->t->received -= p->have;
        p->have = 0;
    }
    p->mode = BODY_FILE;
}

static size_t on_body(void *ctx, const void *data, size_t len)
{
    part *p = ctx;
    if (p->mode == BODY_UNDECIDED)
        decide(p);
    if (p->mode == BODY_ERROR) {
        if (p->resp.body.len < ERROR_BODY_MAX)
            rd_buf_append(&p->resp.body, data, len);
        return len;
    }
    if (p->mode != BODY_FILE)
        return 0;
    xitem *it = p->it;
    if (p->end != RD_TRANSFER_SIZE_UNKNOWN && len > p->end - p->start - p->have) {
        if (it->split)
            refuse(p, RD_E_REMOTE, 0, "the reply is longer than the %" PRIu64 " bytes asked for", p->end - p->asked);
        else
            refuse(p, RD_E_REMOTE, 0, "got more than the %" PRIu64 " bytes the listing says", it->item.expected_size);
        return 0;
    }
    const char *d = data;
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(it->fd, d + done, len - done, (off_t)(p->start + p->have + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            p->write_errno = n < 0 ? errno : EIO;
            return 0;
        }
        done += (size_t)n;
    }
    p->have += len;
    it->received += len;
    p->t->received += len;
    return len;
}

/* Ends the transfer with the failure of it (st, message in err): the item's done callback, then every
 * request abandoned. Later calls return the same error. */
static rd_status fail(rd_transfer *t, xitem *it, rd_status st, const rd_error *err)
{
    if (t->failed != RD_OK)
        return t->failed;
    t->failed = st;
    if (err)
        t->fail_err = *err;
    else
        rd_error_set(&t->fail_err, st, "download failed");
    t->fail_err.code = st;
    if (it && it->state != IT_FAILED) {
        it->state = IT_FAILED;
        if (t->o.done)
            t->o.done(t->o.done_ctx, &it->item, st, &t->fail_err);
    }
    rd_http_multi_free(t->multi); /* abandons what still runs: nothing writes to the files any more */
    t->multi = NULL;
    t->active = 0;
    return st;
}

static rd_status failed(rd_transfer *t, rd_error *err)
{
    if (err)
        *err = t->fail_err;
    return t->failed;
}

static void open_remove(rd_transfer *t, part *p)
{
    for (size_t i = 0; i < t->nopen; i++) {
        if (t->open[i] == p) {
            memmove(&t->open[i], &t->open[i + 1], (t->nopen - i - 1) * sizeof *t->open);
            t->nopen--;
            return;
        }
    }
}

static void part_free(part *p)
{
    if (!p)
        return;
    rd_http_response_free(&p->resp);
    free(p);
}

/* Starts an attempt of p: signs the request for the rest of its range and hands it to the multi. */
static rd_status attempt_start(rd_transfer *t, part *p)
{
    xitem *it = p->it;
    uint64_t offset = p->start + p->have;
    uint64_t length = it->split ? p->end - offset : RD_TRANSFER_SIZE_UNKNOWN;
    const char *if_match = it->etag_known ? it->etag : NULL;
    char *url = NULL;
    rd_headers h = RD_HEADERS_INIT;
    rd_error e;
    rd_error_clear(&e);
    rd_status st = t->o.sign(t->o.sign_ctx, &it->item, offset, length, if_match, &url, &h, &e);
    if (st == RD_OK) {
        p->attempts++;
        p->asked = offset;
        p->sent_if_match = if_match != NULL;
        p->mode = BODY_UNDECIDED;
        p->write_errno = 0;
        p->refuse_msg[0] = '\0';
        rd_http_response_reset(&p->resp);
        rd_http_request req = { "GET", url, &h, NULL, 0, t->o.timeout_ms > 0 ? t->o.timeout_ms : 300000L, on_body,
                                p };
        st = rd_http_multi_add(t->multi, &req, &p->resp, p, &e);
    }
    free(url);
    rd_headers_free(&h);
    if (st != RD_OK)
        return fail(t, it, st, &e);
    p->active = 1;
    t->active++;
    t->stats.requests++;
    if (p->attempts > 1)
        t->stats.retries++;
    if (p->have > 0)
        t->stats.resumes++;
    return RD_OK;
}

/* Creates the next part of it and starts its first attempt. */
static rd_status part_start_next(rd_transfer *t, xitem *it)
{
    if (t->nopen == t->capopen) {
        size_t cap = t->capopen ? t->capopen * 2 : 32;
        part **open = realloc(t->open, cap * sizeof *open);
        if (!open) {
            rd_error e;
            return fail(t, it, rd_error_set(&e, RD_E_INTERNAL, "out of memory"), &e);
        }
        t->open = open;
        t->capopen = cap;
    }
    part *p = calloc(1, sizeof *p);
    if (!p) {
        rd_error e;
        return fail(t, it, rd_error_set(&e, RD_E_INTERNAL, "out of memory"), &e);
    }
    p->t = t;
    p->it = it;
    p->index = it->next_part++;
    uint64_t size = it->item.expected_size;
    if (it->split) {
        p->start = p->index * it->part_size;
        p->end = size - p->start > it->part_size ? p->start + it->part_size : size;
    } else {
        p->start = 0;
        p->end = size;
    }
    rd_http_response_init(&p->resp);
    t->open[t->nopen++] = p;
    return attempt_start(t, p);
}

/* Starts item it (admitted): creates its file, decides whether it is split, takes the listing's ETag. */
static rd_status item_start(rd_transfer *t, xitem *it)
{
    rd_error e;
    rd_error_clear(&e);
    it->fd = open(it->item.local_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (it->fd < 0)
        return fail(t, it, local_error(&e, &t->o, "cannot create", it->item.local_path, errno), &e);
    it->state = IT_RUNNING;
    uint64_t size = it->item.expected_size;
    if (size != RD_TRANSFER_SIZE_UNKNOWN && size > t->part_size) {
        it->split = 1;
        it->part_size = t->part_size;
        /* The last file known (of an UNLOAD, fetched alone) that would leave connections idle goes as one
         * range per idle connection instead, each no smaller than RD_TRANSFER_SPREAD_MIN_PART. Not a file
         * that others wait behind: they fill the connections it leaves, in whole parts. */
        uint64_t idle = t->active < t->conc ? (uint64_t)(t->conc - t->active) : 0;
        if (t->items[t->count - 1] == it && idle > 1 && size / t->part_size < idle &&
            t->part_size > RD_TRANSFER_SPREAD_MIN_PART) {
            uint64_t spread = size / idle + (size % idle != 0);
            it->part_size = spread < RD_TRANSFER_SPREAD_MIN_PART ? RD_TRANSFER_SPREAD_MIN_PART : spread;
        }
        it->nparts = size / it->part_size + (size % it->part_size != 0);
        t->stats.ranged_files++;
    } else {
        it->nparts = 1;
    }
    if (it->item.etag && it->item.etag[0]) { /* "": a listing without ETags, as NULL */
        if (!(it->etag = strdup(it->item.etag)))
            return fail(t, it, rd_error_set(&e, RD_E_INTERNAL, "out of memory"), &e);
        it->etag_known = 1;
    }
    return RD_OK;
}

/* Starts what may start, while fewer than conc requests run: retries that are due first (earlier items
 * first), then the next ranges of started items in the order added, then new items the consumer admits.
 * Sets *next_ms to how soon something not due yet may start (-1: nothing waits). */
static rd_status start_work(rd_transfer *t, long *next_ms)
{
    long long now = rd_monotonic_ms();
    *next_ms = -1;
    while (t->active < t->conc) {
        part *best = NULL;
        for (size_t i = 0; i < t->nopen; i++) {
            part *p = t->open[i];
            if (p->active)
                continue;
            if (p->not_before_ms > now) {
                long wait = (long)(p->not_before_ms - now);
                if (*next_ms < 0 || wait < *next_ms)
                    *next_ms = wait;
                continue;
            }
            if (!best || p->it->seq < best->it->seq || (p->it == best->it && p->index < best->index))
                best = p;
        }
        if (!best)
            break;
        rd_status st = attempt_start(t, best);
        if (st != RD_OK)
            return st;
    }
    for (size_t i = t->first_open; i < t->count && t->active < t->conc; i++) {
        xitem *it = t->items[i];
        if (it->state == IT_QUEUED) {
            if (t->o.admit && !t->o.admit(t->o.admit_ctx, &it->item)) {
                if (*next_ms < 0 || *next_ms > ADMIT_RETRY_MS)
                    *next_ms = ADMIT_RETRY_MS;
                break; /* the consumer is behind: items start in order, later */
            }
            rd_status st = item_start(t, it);
            if (st != RD_OK)
                return st;
        }
        if (it->state != IT_RUNNING)
            continue;
        /* with no ETag from the listing, the item's first response gives it: its other ranges wait for it,
         * so that they all carry If-Match */
        while (t->active < t->conc && it->next_part < it->nparts && (it->etag_known || it->next_part == 0)) {
            rd_status st = part_start_next(t, it);
            if (st != RD_OK)
                return st;
        }
    }
    return RD_OK;
}

/* Every part of it arrived: the file is closed, then the consumer told. */
static rd_status item_done(rd_transfer *t, xitem *it)
{
    int fd = it->fd;
    it->fd = -1;
    if (close(fd) != 0) {
        rd_error e;
        return fail(t, it, local_error(&e, &t->o, "writing", it->item.local_path, errno), &e);
    }
    it->state = IT_DONE;
    t->finished++;
    t->stats.files++;
    t->stats.bytes += it->received;
    while (t->first_open < t->count && t->items[t->first_open]->state == IT_DONE)
        t->first_open++;
    if (t->o.done) {
        rd_error e;
        rd_error_clear(&e);
        rd_status st = t->o.done(t->o.done_ctx, &it->item, RD_OK, &e);
        if (st != RD_OK) {
            if (e.message[0] == '\0')
                rd_error_set(&e, st, "processing %s failed", it->item.name);
            it->state = IT_DONE; /* done once: the callback is not called again for the failure */
            return fail(t, NULL, st, &e);
        }
    }
    return RD_OK;
}

/* A request of p ended (xst, xerr as the transport says): the part is complete, retried or failed. */
static rd_status attempt_end(rd_transfer *t, part *p, rd_status xst, const rd_error *xerr)
{
    xitem *it = p->it;
    p->active = 0;
    t->active--;
    int code = p->resp.status;
    if (p->mode == BODY_UNDECIDED && code / 100 == 2)
        decide(p); /* a reply without a body */
    uint64_t want = it->item.expected_size;
    int complete;
    if (p->mode == BODY_REFUSED)
        complete = 0;
    else if (it->split)
        complete = p->mode == BODY_FILE && p->have == p->end - p->start; /* every byte in, even if the
                                                                            connection broke after */
    else
        complete = (xst == RD_OK && (code == 200 || code == 206) && (want == RD_TRANSFER_SIZE_UNKNOWN || p->have == want)) ||
                   (want != RD_TRANSFER_SIZE_UNKNOWN && p->have == want && code == 416); /* all in before a reset */
    if (complete) {
        rd_http_response_free(&p->resp);
        open_remove(t, p);
        part_free(p);
        if (++it->parts_done < it->nparts)
            return RD_OK;
        return item_done(t, it);
    }

    char range[64] = "";
    if (it->split)
        snprintf(range, sizeof range, " (bytes %" PRIu64 "-%" PRIu64 ")", p->start, p->end - 1);
    rd_error e;
    rd_error_clear(&e);
    if (p->mode == BODY_REFUSED && p->refuse_whole)
        return fail(t, it, rd_error_set(&e, p->refuse_st, "%s", p->refuse_msg), &e);
    if (code == 412 && p->sent_if_match) {
        refuse_changed(p, reply_etag(&p->resp));
        return fail(t, it, rd_error_set(&e, RD_E_REMOTE, "%s", p->refuse_msg), &e);
    }
    if (p->mode != BODY_REFUSED && xst == RD_E_IO && disk_errno(p->write_errno))
        /* the local disk, not the network: retrying cannot help */
        return fail(t, it, local_error(&e, &t->o, "writing", it->item.local_path, p->write_errno), &e);

    char why[RD_ERROR_MSG_MAX];
    rd_retry_class rc = RD_RETRY_NEVER;
    rd_status fst;
    if (p->mode == BODY_REFUSED) {
        snprintf(why, sizeof why, "%s", p->refuse_msg);
        rc = p->refuse_retry ? RD_RETRY_TRANSIENT : RD_RETRY_NEVER;
        fst = p->refuse_st;
    } else if (xst != RD_OK) {
        if (xst == RD_E_IO && p->write_errno)
            snprintf(why, sizeof why, "writing %s: %s", it->item.local_path, strerror(p->write_errno));
        else
            snprintf(why, sizeof why, "%s", xerr ? xerr->message : "the request failed");
        rc = rd_aws_retry_class(xst, p->write_errno, 0, NULL);
        fst = RD_E_NETWORK;
    } else if (code == 200 || code == 206) {
        uint64_t len = it->split ? p->end - p->start : want;
        snprintf(why, sizeof why, "short body: %" PRIu64 " of %" PRIu64 " bytes", p->have, len);
        rc = rd_aws_retry_class(RD_E_NETWORK, 0, code, NULL); /* the connection lost the rest */
        fst = RD_E_REMOTE;
    } else {
        char code_s[96], message[256];
        rd_aws_parse_error(&rd_svc_s3, &p->resp, code_s, sizeof code_s, message, sizeof message);
        snprintf(why, sizeof why, "HTTP %d%s%s", code, code_s[0] ? " " : "", code_s);
        rc = rd_aws_retry_class(RD_OK, 0, code, code_s);
        fst = code == 403 ? RD_E_DENIED : code == 404 ? RD_E_NOT_FOUND : RD_E_REMOTE;
        rd_error_set_aws_code(&e, code_s);
    }
    if (rc != RD_RETRY_NEVER && p->attempts < t->max_attempts) {
        if (t->o.log)
            rd_log_write(t->o.log, RD_LOG_INFO, "download %s%s: %s%s; retrying from byte %" PRIu64 " (attempt %d/%d)",
                         it->item.name, range, why, rc == RD_RETRY_THROTTLE ? " (throttled)" : "",
                         p->start + p->have, p->attempts + 1, t->max_attempts);
        p->not_before_ms = rd_monotonic_ms() + backoff_ms(&t->o, p->attempts);
        rd_http_response_reset(&p->resp);
        return RD_OK;
    }
    char aws_code[sizeof e.aws_code];
    snprintf(aws_code, sizeof aws_code, "%s", e.aws_code);
    rd_error_set(&e, fst, "downloading %s%s failed after %d attempt%s: %s%s", it->item.name, range, p->attempts,
                 p->attempts == 1 ? "" : "s", why,
                 code == 403 ? " — the identity needs s3:GetObject on this object" : "");
    rd_error_set_aws_code(&e, aws_code);
    e.http_status = code;
    return fail(t, it, fst, &e);
}

/* Takes every request that finished. *any set when one did. */
static rd_status collect(rd_transfer *t, int *any)
{
    void *user = NULL;
    rd_status xst = RD_OK;
    rd_error xerr;
    rd_error_clear(&xerr);
    while (t->failed == RD_OK && t->multi && rd_http_multi_next(t->multi, &user, &xst, &xerr)) {
        *any = 1;
        rd_status st = attempt_end(t, user, xst, &xerr);
        if (st != RD_OK)
            return st;
        rd_error_clear(&xerr);
    }
    return t->failed;
}

static void report_progress(rd_transfer *t)
{
    if (!t->o.progress || (t->received == t->reported_bytes && t->finished == t->reported_files))
        return;
    t->reported_bytes = t->received;
    t->reported_files = t->finished;
    t->o.progress(t->o.progress_ctx, t->received, t->finished, t->count);
}

rd_status rd_transfer_new(const rd_transfer_options *o, rd_transfer **out, rd_error *err)
{
    if (!o || !o->sign)
        return rd_error_set(err, RD_E_USAGE, "a transfer needs a sign callback");
    rd_transfer *t = calloc(1, sizeof *t);
    if (!t)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    t->o = *o;
    t->conc = o->concurrency > 0 ? o->concurrency : 16;
    t->max_attempts = o->max_attempts > 0 ? o->max_attempts : 10;
    t->part_size = o->part_size == 0 ? RD_TRANSFER_DEFAULT_PART_SIZE
                   : o->part_size < RD_TRANSFER_MIN_PART_SIZE ? RD_TRANSFER_MIN_PART_SIZE
                                                              : o->part_size;
    rd_error_clear(&t->fail_err);
    t->http = o->http;
    if (!t->http) {
        rd_http_options ho = { 0 };
        ho.ca_bundle = o->ca_bundle;
        ho.log = o->log;
        rd_status st = rd_http_curl_new(&ho, &t->own, err);
        if (st != RD_OK) {
            free(t);
            return st;
        }
        t->http = t->own;
    }
    rd_status st = rd_http_multi_new(t->http, &t->multi, err);
    if (st != RD_OK) {
        rd_http_transport_free(t->own);
        free(t);
        return st;
    }
    *out = t;
    return RD_OK;
}

rd_status rd_transfer_add(rd_transfer *t, const rd_transfer_item *item, rd_error *err)
{
    if (t->failed != RD_OK)
        return failed(t, err);
    if (!item || !item->name || !item->local_path)
        return rd_error_set(err, RD_E_USAGE, "a transfer item needs a name and a local path");
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        xitem **items = realloc(t->items, cap * sizeof *items);
        if (!items)
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
        t->items = items;
        t->cap = cap;
    }
    xitem *it = calloc(1, sizeof *it);
    if (!it)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    it->item = *item;
    it->seq = t->count;
    it->state = IT_QUEUED;
    it->fd = -1;
    t->items[t->count++] = it;
    return RD_OK;
}

size_t rd_transfer_pending(const rd_transfer *t)
{
    size_t n = 0;
    for (size_t i = t->first_open; i < t->count; i++)
        n += t->items[i]->state == IT_QUEUED || t->items[i]->state == IT_RUNNING;
    return n;
}

rd_status rd_transfer_step(rd_transfer *t, long wait_ms, rd_error *err)
{
    if (t->failed != RD_OK)
        return failed(t, err);
    long long deadline = rd_monotonic_ms() + (wait_ms > 0 ? wait_ms : 0);
    for (;;) {
        if (t->o.cancel && *t->o.cancel) {
            rd_error e;
            fail(t, NULL, rd_error_set(&e, RD_E_CANCELLED, "download cancelled"), &e);
            return failed(t, err);
        }
        long next_ms = -1;
        int any = 0;
        if (start_work(t, &next_ms) != RD_OK || collect(t, &any) != RD_OK)
            return failed(t, err);
        int refill = any || t->kick;
        t->kick = 0;
        /* slots that came free are filled before returning, so requests keep running between steps */
        if (refill && start_work(t, &next_ms) != RD_OK)
            return failed(t, err);
        report_progress(t);
        if (t->finished == t->count)
            return RD_OK;
        long long left = deadline - rd_monotonic_ms();
        if (left <= 0)
            return RD_OK;
        if (refill)
            continue;
        long ms = t->active ? 100 : ADMIT_RETRY_MS;
        if (next_ms >= 0 && next_ms < ms)
            ms = next_ms > 0 ? next_ms : 1;
        rd_http_multi_wait(t->multi, ms < left ? ms : (long)left);
    }
}

rd_status rd_transfer_finish(rd_transfer *t, rd_error *err)
{
    while (t->failed == RD_OK && t->finished < t->count) {
        rd_status st = rd_transfer_step(t, 100, err);
        if (st != RD_OK)
            return st;
    }
    if (t->failed != RD_OK)
        return failed(t, err);
    if (t->o.log)
        rd_log_write(t->o.log, RD_LOG_INFO, "downloaded %zu file%s (%zu in ranges), %" PRIu64 " bytes: %zu requests "
                     "(%zu retries, %zu resumed) over %zu new connections", t->stats.files,
                     t->stats.files == 1 ? "" : "s", t->stats.ranged_files, t->stats.bytes, t->stats.requests,
                     t->stats.retries, t->stats.resumes, rd_http_multi_connections(t->multi));
    return RD_OK;
}

void rd_transfer_get_stats(const rd_transfer *t, rd_transfer_stats *out)
{
    *out = t->stats;
}

void rd_transfer_free(rd_transfer *t)
{
    if (!t)
        return;
    rd_http_multi_free(t->multi); /* abandons what still runs, before the parts its sinks write to go */
    for (size_t i = 0; i < t->nopen; i++)
        part_free(t->open[i]);
    free(t->open);
    for (size_t i = 0; i < t->count; i++) {
        if (t->items[i]->fd >= 0)
            close(t->items[i]->fd);
        free(t->items[i]->etag);
        free(t->items[i]);
    }
    free(t->items);
    rd_http_transport_free(t->own);
    free(t);
}

rd_status rd_transfer_run(const rd_transfer_item *items, size_t count, const rd_transfer_options *o,
                          rd_transfer_stats *stats, rd_error *err)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (count == 0)
        return RD_OK;
    rd_transfer *t = NULL;
    rd_status st = rd_transfer_new(o, &t, err);
    for (size_t i = 0; st == RD_OK && i < count; i++)
        st = rd_transfer_add(t, &items[i], err);
    if (st == RD_OK)
        st = rd_transfer_finish(t, err);
    if (t && stats)
        rd_transfer_get_stats(t, stats);
    rd_transfer_free(t);
    return st;
}
