/* transfer.c — parallel, resumable downloads over curl multi (see transfer.h). */
#include "ingest/transfer.h"

#include "aws/http.h"
#include "core/timeutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "redduck/buf.h"

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
    CURL *easy;
    struct curl_slist *hl;
    int mode;             /* 0 undecided, 1 file, 2 error body */
    int write_errno;      /* errno of the local write that failed (curl then says CURLE_WRITE_ERROR) */
    rd_buf errbody;
    char errbuf[CURL_ERROR_SIZE];
} slot;

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
    slot *s = ud;
    size_t len = size * n;
    if (s->mode == 0) {
        long code = 0;
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
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
        if (s->errbody.len < 4096)
            rd_buf_append(&s->errbody, data, len);
        return len;
    }
    if (fwrite(data, 1, len, s->fp) != len) {
        s->write_errno = errno;
        return 0;
    }
    s->have += len;
    return len;
}

static void slot_release(slot *s, CURLM *multi)
{
    if (s->easy) {
        curl_multi_remove_handle(multi, s->easy);
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
    }
    curl_slist_free_all(s->hl);
    s->hl = NULL;
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

static rd_status slot_start(slot *s, CURLM *multi, const rd_transfer_options *o, rd_error *err)
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
    rd_buf_reset(&s->errbody);
    s->errbuf[0] = '\0';
    s->easy = curl_easy_init();
    for (size_t i = 0; i < h.count; i++) {
        rd_buf line = RD_BUF_INIT;
        rd_buf_printf(&line, "%s: %s", h.items[i].name, h.items[i].value);
        s->hl = curl_slist_append(s->hl, rd_buf_cstr(&line));
        rd_buf_free(&line);
    }
    s->hl = curl_slist_append(s->hl, "Expect:");
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hl);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "redduck/" RD_VERSION);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 300000L);
    curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(s->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(s->easy, CURLOPT_LOW_SPEED_TIME, 30L);
    rd_http_apply_tls(s->easy, o->ca_bundle); /* verification on; AWS_CA_BUNDLE / the profile's ca_bundle */
    curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    free(url);
    rd_headers_free(&h);
    curl_multi_add_handle(multi, s->easy);
    s->state = ST_ACTIVE;
    return RD_OK;
}

/* S3 error code from an error body, for messages. */
static void s3_code(const rd_buf *body, char *out, size_t len)
{
    const char *b = rd_buf_cstr(body), *c = strstr(b, "<Code>");
    const char *e = c ? strstr(c, "</Code>") : NULL;
    if (c && e)
        snprintf(out, len, "%.*s", (int)(e - c - 6), c + 6);
    else
        out[0] = '\0';
}

static long backoff_ms(const rd_transfer_options *o, int attempt)
{
    long base = o->backoff_base_ms > 0 ? o->backoff_base_ms : 100;
    long cap = base << (attempt > 6 ? 6 : attempt - 1);
    if (cap > 5000)
        cap = 5000;
    unsigned r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        return cap / 2; /* no jitter without random bytes: the middle of the window */
    return (long)(r % (unsigned)(cap + 1));
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
    slot *slots = calloc(count, sizeof *slots);
    CURLM *multi = curl_multi_init();
    if (!slots || !multi) {
        free(slots);
        if (multi)
            curl_multi_cleanup(multi);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        slots[i].item = &items[i];
        rd_buf_init(&slots[i].errbody);
    }
    rd_status st = RD_OK;
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
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)) != NULL && st == RD_OK) {
            if (m->msg != CURLMSG_DONE)
                continue;
            slot *s = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            CURLcode rc = m->data.result;
            long code = 0;
            curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
            char tls[512];
            const char *eff_url = NULL;
            curl_easy_getinfo(s->easy, CURLINFO_EFFECTIVE_URL, &eff_url);
            /* a certificate problem fails at once: a retry would fail the same way */
            int tls_failed = rd_http_tls_failure(rc, eff_url, o->ca_bundle, s->errbuf, tls, sizeof tls);
            slot_release(s, multi);
            active--;
            if (s->attempts > 1)
                stats->retries++;
            if (s->used_range)
                stats->resumes++;
            uint64_t want = s->item->expected_size;
            int complete = rc == CURLE_OK && (code == 200 || code == 206) &&
                           (want == RD_TRANSFER_SIZE_UNKNOWN || s->have == want);
            if (!complete && want != RD_TRANSFER_SIZE_UNKNOWN && s->have == want && code == 416)
                complete = 1; /* everything had arrived before the reset */
            char why[512];
            int retry = 0;
            if (complete) {
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
            if (rc == CURLE_WRITE_ERROR && disk_errno(s->write_errno)) {
                /* the local disk, not the network: retrying cannot help */
                s->state = ST_FAILED;
                st = local_error(err, o, "writing", s->item->local_path, s->write_errno);
                if (o->done)
                    o->done(o->done_ctx, s->item, st, err);
                break;
            }
            if (rc != CURLE_OK) {
                snprintf(why, sizeof why, "%s", s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
                if (rc == CURLE_WRITE_ERROR && s->write_errno)
                    snprintf(why, sizeof why, "writing %s: %s", s->item->local_path, strerror(s->write_errno));
                retry = !tls_failed;
                if (tls_failed)
                    memcpy(why, tls, sizeof why);
            } else if (code == 200 || code == 206) {
                if (s->have > want) {
                    snprintf(why, sizeof why, "got %llu bytes, the listing says %llu", (unsigned long long)s->have,
                             (unsigned long long)want);
                } else {
                    snprintf(why, sizeof why, "short body: %llu of %llu bytes", (unsigned long long)s->have,
                             (unsigned long long)want);
                    retry = 1;
                }
            } else {
                char code_s[64];
                s3_code(&s->errbody, code_s, sizeof code_s);
                snprintf(why, sizeof why, "HTTP %ld%s%s", code, code_s[0] ? " " : "", code_s);
                retry = code >= 500 || code == 429 || strcmp(code_s, "SlowDown") == 0 ||
                        strcmp(code_s, "RequestTimeout") == 0;
            }
            if (retry && s->attempts < max_attempts) {
                if (o->log)
                    rd_log_write(o->log, RD_LOG_INFO, "download %s: %s; retrying from byte %llu (attempt %d/%d)",
                                 s->item->name, why, (unsigned long long)s->have, s->attempts + 1, max_attempts);
                s->state = ST_PENDING;
                s->not_before_ms = rd_monotonic_ms() + backoff_ms(o, s->attempts);
                continue;
            }
            s->state = ST_FAILED;
            rd_status fst = code == 403 ? RD_E_DENIED : code == 404 ? RD_E_NOT_FOUND
                            : rc != CURLE_OK ? RD_E_NETWORK
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
            curl_multi_poll(multi, NULL, 0, active ? 100 : 20, NULL);
    }
    for (size_t i = 0; i < count; i++) {
        slot_release(&slots[i], multi);
        if (slots[i].fp)
            fclose(slots[i].fp);
        stats->bytes += slots[i].state == ST_DONE ? slots[i].have : 0;
        rd_buf_free(&slots[i].errbody);
    }
    curl_multi_cleanup(multi);
    free(slots);
    return st;
}
