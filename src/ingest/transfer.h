/* transfer.h — parallel downloads through the HTTP transport's rd_http_multi (curl multi on the real
 * transport): many files at once, and a file larger than the part size as ranged GETs of that size spread
 * over the connection pool, each range written at its offset and retried alone (resumed from where it
 * broke) per rd_aws_retry_class (throttling, 5xx, resets) with rd_aws_backoff_ms. Every request of a file
 * after its first carries If-Match with the file's ETag (the listing's, else the first response's), so a
 * file replaced mid-download fails instead of mixing two versions; each file's total length is checked.
 * Items may be added while the transfer runs (rd_transfer_add between rd_transfer_step calls): ingest adds
 * UNLOAD part files as they appear in S3.
 * Owns the transfer loop and the local files' descriptors; does not own the HTTP handles (aws/http.c),
 * signing (a callback makes each request's URL and headers, so every attempt is signed afresh with its
 * Range) nor what happens to a finished file (a callback on the calling thread).
 * Single-threaded: every call on one rd_transfer from one thread at a time; callbacks run on it. */
#ifndef RD_INGEST_TRANSFER_H
#define RD_INGEST_TRANSFER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/http.h"
#include "core/log.h"
#include "redduck/error.h"
#include "redduck/headers.h"

#define RD_TRANSFER_SIZE_UNKNOWN UINT64_MAX
/* Default range size (see README "Download tuning" for the measurements behind it). */
#define RD_TRANSFER_DEFAULT_PART_SIZE (32ull << 20)
#define RD_TRANSFER_MIN_PART_SIZE (1ull << 20)
#define RD_TRANSFER_SPREAD_MIN_PART (8ull << 20) /* the smallest range of a file spread over idle connections */

typedef struct rd_transfer_item {
    const char *name;        /* for messages (the S3 key) */
    uint64_t expected_size;  /* RD_TRANSFER_SIZE_UNKNOWN when not known */
    const char *local_path;  /* created/truncated by the transfer */
    const char *etag;        /* the object's ETag as listed (quotes included), or NULL: sent as If-Match on
                                every request of the item; NULL: the first response's ETag is used for the
                                item's later requests (a 412 then means the object changed: fails for good) */
    void *user;
} rd_transfer_item;

/* Makes the request for `length` bytes of item from byte `offset`: length RD_TRANSFER_SIZE_UNKNOWN means
 * to the end, and offset 0 with an unknown length the whole object (no Range). if_match: NULL or the ETag
 * to send as If-Match. *url malloc'd; headers filled (Range and If-Match included, signed if the signer
 * wants). */
typedef rd_status (*rd_transfer_sign_fn)(void *ctx, const rd_transfer_item *item, uint64_t offset, uint64_t length,
                                         const char *if_match, char **url, rd_headers *headers, rd_error *err);
/* Called once per item when it is complete (RD_OK) or has failed for good. A non-OK return from the
 * callback stops the whole transfer with that error. */
typedef rd_status (*rd_transfer_done_fn)(void *ctx, const rd_transfer_item *item, rd_status st, const rd_error *err);
/* Progress: bytes received so far in total, files done. */
typedef void (*rd_transfer_progress_fn)(void *ctx, uint64_t bytes, size_t files_done, size_t files_total);

typedef struct rd_transfer_options {
    rd_http_transport *http;     /* borrowed; NULL: a libcurl transport for this run, trusting ca_bundle */
    int concurrency;             /* parallel requests (ranges of one file count one each); 0: 16 */
    uint64_t part_size;          /* files of a known size above it go as ranges of this size (the last item
                                    added, when that would leave connections idle: one range per
                                    idle connection, at least RD_TRANSFER_SPREAD_MIN_PART); 0:
                                    RD_TRANSFER_DEFAULT_PART_SIZE; UINT64_MAX: never split; below
                                    RD_TRANSFER_MIN_PART_SIZE: that */
    int max_attempts;            /* per range (or per unsplit item); 0: 10 */
    long timeout_ms;             /* per attempt; 0: 300000; idle limit 30 s */
    rd_transfer_sign_fn sign;
    void *sign_ctx;
    rd_transfer_done_fn done;
    void *done_ctx;
    /* Asked before a new item's first request (not for its other ranges, nor a retry); 0 postpones it
     * (asked again shortly). Lets a consumer bound local disk use. NULL: always start. */
    int (*admit)(void *ctx, const rd_transfer_item *item);
    void *admit_ctx;
    rd_transfer_progress_fn progress;
    void *progress_ctx;
    const volatile sig_atomic_t *cancel; /* non-zero: stop, RD_E_CANCELLED */
    const rd_log *log;
    long backoff_base_ms;        /* retry delay base (doubles per attempt up to 64 times the base, at most 5 s,
                                  * full jitter); 0: 100 */
    const char *disk_full_hint;  /* what to do when the local disk is full (ends the message); NULL: "free space" */
    const char *ca_bundle;       /* only when http is NULL: CA bundle file for TLS; NULL: the system's CAs */
} rd_transfer_options;

typedef struct rd_transfer_stats {
    uint64_t bytes;      /* bytes written to local files */
    size_t files;        /* items completed */
    size_t retries;      /* attempts beyond the first */
    size_t resumes;      /* attempts that continued a broken request from where it stopped */
    size_t ranged_files; /* items fetched as more than one range */
    size_t requests;     /* GET requests sent, retries included */
} rd_transfer_stats;

typedef struct rd_transfer rd_transfer;

/* A transfer with no items yet; o is copied (what it points to stays borrowed until rd_transfer_free). */
rd_status rd_transfer_new(const rd_transfer_options *o, rd_transfer **out, rd_error *err);
/* Adds an item: the struct is copied, its strings and user stay borrowed until rd_transfer_free. Items
 * start in the order added. */
rd_status rd_transfer_add(rd_transfer *t, const rd_transfer_item *item, rd_error *err);
/* Drives the transfer for about wait_ms (less when nothing is pending): starts what may start, takes what
 * finished, calls the callbacks. RD_OK while nothing failed; the first item that fails for good stops the
 * transfer (the others are abandoned) with an error naming it, and every later call returns that error. A
 * local write failing with ENOSPC, EDQUOT or EROFS is not retried: RD_E_IO at once, "No space left on
 * device on <dir>: <disk_full_hint>". Cancel: RD_E_CANCELLED. */
rd_status rd_transfer_step(rd_transfer *t, long wait_ms, rd_error *err);
/* Items added and not yet done (or failed). */
size_t rd_transfer_pending(const rd_transfer *t);
/* Steps until every item added is done: RD_OK when all completed. */
rd_status rd_transfer_finish(rd_transfer *t, rd_error *err);
/* Counts so far (bytes: of completed items). */
void rd_transfer_get_stats(const rd_transfer *t, rd_transfer_stats *out);
/* Abandons what still runs, closes the local files (left as they are), frees. NULL is a no-op. */
void rd_transfer_free(rd_transfer *t);

/* The whole cycle for a fixed list: new, add each, finish, stats, free. */
rd_status rd_transfer_run(const rd_transfer_item *items, size_t count, const rd_transfer_options *opts,
                          rd_transfer_stats *stats, rd_error *err);

#endif
