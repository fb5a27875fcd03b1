/* notify.c — the webhook notifier (notify.h): a bounded queue, one thread, rd_http_send with retries. */
#include "server/notify.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aws/http.h"
#include "redduck/buf.h"
#include "redduck/headers.h"

typedef struct item {
    struct item *next;
    char *url;
    char *body;
    char host[256]; /* scheme://host for the log */
    int64_t run_id;
} item;

struct rd_notify {
    FILE *log;
    char *user_agent;
    long timeout_ms, backoff_ms, drain_ms;
    size_t queue_max, queued;
    rd_http_transport *http;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item *head, *tail;
    int stopping;
    struct timespec drain_until; /* set by rd_notify_free */
    uint64_t delivered, failed;
    pthread_t th;
    int started;
};

static void nlog(rd_notify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void nlog(rd_notify *n, const char *fmt, ...)
{
    if (!n->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    flockfile(n->log);
    fputs("redduck server: notify: ", n->log);
    vfprintf(n->log, fmt, ap);
    fputc('\n', n->log);
    fflush(n->log);
    funlockfile(n->log);
    va_end(ap);
}

void rd_notify_redact_url(const char *webhook, char *out, size_t n)
{
    if (!n)
        return;
    out[0] = '\0';
    if (!webhook)
        return;
    const char *p = strstr(webhook, "://");
    if (!p) {
        snprintf(out, n, "(not a URL)");
        return;
    }
    const char *host = p + 3;
    size_t hl = strcspn(host, "/?#");
    const char *at = memchr(host, '@', hl); /* user info may hold a password */
    if (at) {
        hl -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    snprintf(out, n, "%.*s://%.*s", (int)(p - webhook), webhook, (int)hl, host);
}

char *rd_notify_event_json(const rd_notify_event *e)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    char at[32] = "";
    if (e->at_ms) {
        time_t t = (time_t)(e->at_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    json_object_set_new(o, "event", json_string(e->event ? e->event : ""));
    json_object_set_new(o, "project", json_string(e->project ? e->project : ""));
    json_object_set_new(o, "source", json_string(e->source ? e->source : ""));
    if (e->table)
        json_object_set_new(o, "table", json_string(e->table));
    json_object_set_new(o, "run_id", json_integer((json_int_t)e->run_id));
    if (e->state)
        json_object_set_new(o, "state", json_string(e->state));
    json_object_set_new(o, "error", e->error ? json_string(e->error) : json_null());
    json_object_set_new(o, "attempts", json_integer(e->attempts));
    json_object_set_new(o, "version", json_integer((json_int_t)e->version));
    if (e->trigger)
        json_object_set_new(o, "trigger", json_string(e->trigger));
    if (at[0])
        json_object_set_new(o, "at", json_string(at));
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    return s;
}

static void item_free(item *it)
{
    if (!it)
        return;
    free(it->url);
    free(it->body);
    free(it);
}

static struct timespec after_ms(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)ts.tv_nsec + (long long)ms * 1000000LL;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}

static int past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Sleeps ms unless the drain deadline passes first (under n->mu). 0 when it did. */
static int wait_backoff(rd_notify *n, long ms)
{
    struct timespec until = after_ms(ms);
    pthread_mutex_lock(&n->mu);
    while (!past(&until)) {
        if (n->stopping && past(&n->drain_until)) {
            pthread_mutex_unlock(&n->mu);
            return 0;
        }
        struct timespec w = until;
        if (n->stopping && (n->drain_until.tv_sec < w.tv_sec ||
                            (n->drain_until.tv_sec == w.tv_sec && n->drain_until.tv_nsec < w.tv_nsec)))
            w = n->drain_until;
        pthread_cond_timedwait(&n->cv, &n->mu, &w);
    }
    pthread_mutex_unlock(&n->mu);
    return 1;
}

static void deliver(rd_notify *n, item *it)
{
    rd_headers h;
    rd_headers_init(&h);
    rd_headers_add(&h, "Content-Type", "application/json; charset=utf-8");
    rd_headers_add(&h, "User-Agent", n->user_agent);
    long backoff = n->backoff_ms;
    char last[256] = "";
    for (int a = 1; a <= RD_NOTIFY_ATTEMPTS; a++) {
        rd_http_request req = { .method = "POST", .url = it->url, .headers = &h, .body = it->body,
                                .body_len = strlen(it->body), .timeout_ms = n->timeout_ms };
        rd_http_response resp;
        rd_http_response_init(&resp);
        rd_error err;
        rd_error_clear(&err);
        rd_status st = rd_http_send(n->http, &req, &resp, &err);
        int status = resp.status;
        rd_http_response_free(&resp);
        if (st == RD_OK && status / 100 == 2) {
            pthread_mutex_lock(&n->mu);
            n->delivered++;
            pthread_mutex_unlock(&n->mu);
            nlog(n, "run %lld: delivered to %s (HTTP %d, attempt %d)", (long long)it->run_id, it->host, status, a);
            rd_headers_free(&h);
            return;
        }
        /* the transport's message names the URL: only the status or the kind of failure is kept */
        if (st == RD_OK)
            snprintf(last, sizeof last, "HTTP %d", status);
        else
            snprintf(last, sizeof last, "%s", st == RD_E_CONFIG ? "a TLS certificate problem" : "no answer");
        if (a < RD_NOTIFY_ATTEMPTS) {
            nlog(n, "run %lld: %s answered %s (attempt %d of %d): retrying in %ld ms", (long long)it->run_id,
                 it->host, last, a, RD_NOTIFY_ATTEMPTS, backoff);
            if (!wait_backoff(n, backoff))
                break;
            backoff *= 2;
        }
    }
    pthread_mutex_lock(&n->mu);
    n->failed++;
    pthread_mutex_unlock(&n->mu);
    nlog(n, "run %lld: gave up on %s: %s", (long long)it->run_id, it->host, last[0] ? last : "the server stopped");
    rd_headers_free(&h);
}

static void *notify_main(void *arg)
{
    rd_notify *n = arg;
    pthread_mutex_lock(&n->mu);
    for (;;) {
        while (!n->head && !n->stopping)
            pthread_cond_wait(&n->cv, &n->mu);
        if (!n->head || (n->stopping && past(&n->drain_until)))
            break;
        item *it = n->head;
        n->head = it->next;
        if (!n->head)
            n->tail = NULL;
        n->queued--;
        pthread_mutex_unlock(&n->mu);
        deliver(n, it);
        item_free(it);
        pthread_mutex_lock(&n->mu);
    }
    /* what is left is dropped */
    while (n->head) {
        item *it = n->head;
        n->head = it->next;
        n->failed++;
        n->queued--;
        nlog(n, "run %lld: dropped (the server stopped before %s was notified)", (long long)it->run_id, it->host);
        item_free(it);
    }
    n->tail = NULL;
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

rd_status rd_notify_new(const rd_notify_options *o, rd_notify **out, rd_error *err)
{
    rd_notify_options none = { 0 };
    if (!o)
        o = &none;
    rd_notify *n = calloc(1, sizeof *n);
    if (!n || !(n->user_agent = strdup(o->user_agent ? o->user_agent : "redduck-server"))) {
        free(n);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    n->log = o->log;
    n->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    n->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 500;
    n->drain_ms = o->drain_ms > 0 ? o->drain_ms : 3000;
    n->queue_max = o->queue_max ? o->queue_max : RD_NOTIFY_QUEUE_MAX;
    const char *ca = getenv("REDDUCK_CA_BUNDLE");
    if (ca && *ca && access(ca, R_OK) != 0) {
        int e = errno;
        free(n->user_agent);
        free(n);
        return rd_error_set(err, RD_E_CONFIG, "REDDUCK_CA_BUNDLE %s cannot be read (%s): fix or unset it", ca,
                            strerror(e));
    }
    rd_http_options ho = { 0 };
    ho.timeout_ms = n->timeout_ms;
    ho.connect_timeout_ms = n->timeout_ms;
    ho.ca_bundle = ca && *ca ? ca : NULL;
    rd_status st = rd_http_curl_new(&ho, &n->http, err);
    if (st != RD_OK) {
        free(n->user_agent);
        free(n);
        return st;
    }
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    if (pthread_create(&n->th, NULL, notify_main, n) != 0) {
        rd_http_transport_free(n->http);
        pthread_mutex_destroy(&n->mu);
        pthread_cond_destroy(&n->cv);
        free(n->user_agent);
        free(n);
        return rd_error_set(err, RD_E_INTERNAL, "cannot start the notifier's thread");
    }
    n->started = 1;
    *out = n;
    return RD_OK;
}

void rd_notify_free(rd_notify *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stopping = 1;
    n->drain_until = after_ms(n->drain_ms);
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    if (n->started)
        pthread_join(n->th, NULL);
    rd_http_transport_free(n->http);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n->user_agent);
    free(n);
}

rd_status rd_notify_send(rd_notify *n, const char *webhook, const rd_notify_event *e, rd_error *err)
{
    if (!webhook || (strncasecmp(webhook, "https://", 8) != 0 && strncasecmp(webhook, "http://", 7) != 0))
        return rd_error_set(err, RD_E_USAGE, "a webhook must be an http:// or https:// URL");
    item *it = calloc(1, sizeof *it);
    if (it) {
        it->url = strdup(webhook);
        it->body = rd_notify_event_json(e);
        it->run_id = e->run_id;
        rd_notify_redact_url(webhook, it->host, sizeof it->host);
    }
    if (!it || !it->url || !it->body) {
        item_free(it);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    pthread_mutex_lock(&n->mu);
    if (n->stopping || n->queued >= n->queue_max) {
        int stopping = n->stopping;
        n->failed++;
        pthread_mutex_unlock(&n->mu);
        item_free(it);
        return rd_error_set(err, RD_E_IO, stopping ? "the notifier is stopping" : "the notification queue is full");
    }
    if (n->tail)
        n->tail->next = it;
    else
        n->head = it;
    n->tail = it;
    n->queued++;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    return RD_OK;
}

void rd_notify_counts(rd_notify *n, uint64_t *delivered, uint64_t *failed)
{
    pthread_mutex_lock(&n->mu);
    if (delivered)
        *delivered = n->delivered;
    if (failed)
        *failed = n->failed;
    pthread_mutex_unlock(&n->mu);
}
