/* transfer.h — parallel downloads through the HTTP transport's rd_http_multi (curl multi on the real
 * transport): many files at once, each resumed with a Range request after a reset or a short body, retried
 * per rd_aws_retry_class (throttling, 5xx, resets) with rd_aws_backoff_ms, its length checked. Owns the
 * transfer loop; does not own the HTTP handles (aws/http.c), signing (a callback makes each request's URL and headers,
 * so every attempt is signed afresh and may carry its Range) nor what happens to a finished file (a
 * callback on the calling thread). Single-threaded: everything runs on the caller's thread. */
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

typedef struct rd_transfer_item {
    const char *name;        /* for messages (the S3 key) */
    uint64_t expected_size;  /* RD_TRANSFER_SIZE_UNKNOWN when not known */
    const char *local_path;  /* created/truncated by the transfer */
    void *user;
} rd_transfer_item;

/* Makes the request for item starting at byte `offset` (0 = whole object): *url malloc'd; headers
 * filled (including Range when offset > 0, signed if the signer wants). */
typedef rd_status (*rd_transfer_sign_fn)(void *ctx, const rd_transfer_item *item, uint64_t offset, char **url,
                                         rd_headers *headers, rd_error *err);
/* Called once per item when it is complete (RD_OK) or has failed for good. A non-OK return from the
 * callback stops the whole transfer with that error. */
typedef rd_status (*rd_transfer_done_fn)(void *ctx, const rd_transfer_item *item, rd_status st, const rd_error *err);
/* Progress: bytes received so far in total, files done. */
typedef void (*rd_transfer_progress_fn)(void *ctx, uint64_t bytes, size_t files_done, size_t files_total);

typedef struct rd_transfer_options {
    rd_http_transport *http;     /* borrowed; NULL: a libcurl transport for this run, trusting ca_bundle */
    int concurrency;             /* parallel transfers; 0: 16 */
    int max_attempts;            /* per item; 0: 10 */
    long timeout_ms;             /* per attempt; 0: 300000; idle limit 30 s */
    rd_transfer_sign_fn sign;
    void *sign_ctx;
    rd_transfer_done_fn done;
    void *done_ctx;
    /* Asked before a new item starts (not before a retry); 0 postpones it (asked again shortly). Lets a
     * consumer bound local disk use. NULL: always start. */
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
    size_t resumes;      /* attempts that continued with a Range request */
} rd_transfer_stats;

/* Downloads every item; returns RD_OK when all completed. The first item that fails for good stops the
 * transfer (the others are abandoned) with an error naming it. A local write failing with ENOSPC, EDQUOT or
 * EROFS is not retried: RD_E_IO at once, "No space left on device on <dir>: <disk_full_hint>". */
rd_status rd_transfer_run(const rd_transfer_item *items, size_t count, const rd_transfer_options *opts,
                          rd_transfer_stats *stats, rd_error *err);

#endif
