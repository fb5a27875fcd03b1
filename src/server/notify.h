/* notify.h — the server's outgoing webhooks (`notify:` of a deployed project): a run that failed, a source
 * that succeeded again after failing. Events are queued (bounded) and POSTed as JSON by one notifier thread
 * through the one curl transport (aws/http.h; TLS verification on, a custom CA bundle from
 * REDDUCK_CA_BUNDLE), each up to 3 attempts (0.5 s, 1 s, 2 s apart, 5 s timeout each); a 2xx answer is
 * delivered. A webhook's path and query may hold a token: logs name it by scheme://host only, and the event
 * holds no variable value (errors never carry one).
 *
 * Ownership: rd_notify_new returns a notifier freed by rd_notify_free; events and URLs are copied.
 * Threads: rd_notify_send may be called from any thread; rd_notify_free must not race it. */
#ifndef RD_SERVER_NOTIFY_H
#define RD_SERVER_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "redduck/error.h"

#define RD_NOTIFY_QUEUE_MAX 256 /* events waiting; more are dropped (and logged) */
#define RD_NOTIFY_ATTEMPTS 3

typedef struct rd_notify rd_notify;

typedef struct rd_notify_options {
    FILE *log;             /* one line per event delivered, retried or given up (borrowed); NULL: none */
    const char *user_agent; /* NULL: "redduck-server" */
    long timeout_ms;       /* per attempt; 0: 5000 */
    long backoff_ms;       /* before the second attempt, doubled after; 0: 500 */
    size_t queue_max;      /* 0: RD_NOTIFY_QUEUE_MAX */
    long drain_ms;         /* how long rd_notify_free keeps delivering what is queued; 0: 3000 */
} rd_notify_options;

/* One event (borrowed for the call). Fields NULL or 0 are left out of the JSON but event, project, source. */
typedef struct rd_notify_event {
    const char *event;   /* "failure" or "recovery" */
    const char *project, *source, *table;
    int64_t run_id;
    const char *state;   /* the run's: "failed", "success" */
    const char *error;   /* the failure's message, or NULL */
    int attempts;
    int64_t version;
    const char *trigger; /* "schedule", "manual", "catch-up" */
    int64_t at_ms;       /* when the run ended (Unix ms): "at" in RFC 3339 UTC */
} rd_notify_event;

/* Starts the notifier thread. RD_E_CONFIG when REDDUCK_CA_BUNDLE names a file that cannot be read. */
rd_status rd_notify_new(const rd_notify_options *o, rd_notify **out, rd_error *err);
/* Keeps delivering what is queued for at most drain_ms (an attempt under way may take its timeout more),
 * drops the rest (logged), joins the thread and frees. NULL is a no-op. */
void rd_notify_free(rd_notify *n);

/* Queues e for webhook (http:// or https://). RD_E_USAGE for another scheme; RD_E_IO when the queue is full
 * or the notifier stops (the event is dropped). */
rd_status rd_notify_send(rd_notify *n, const char *webhook, const rd_notify_event *e, rd_error *err);

/* The event as the JSON body sent (malloc'd, UTF-8), for the notifier and tests. NULL on out of memory. */
char *rd_notify_event_json(const rd_notify_event *e);
/* webhook as "scheme://host[:port]" (path, query, user info dropped) into out (n bytes). */
void rd_notify_redact_url(const char *webhook, char *out, size_t n);

/* Counters, for tests and the log: events delivered, and given up (after the last attempt, or dropped). */
void rd_notify_counts(rd_notify *n, uint64_t *delivered, uint64_t *failed);

#endif
