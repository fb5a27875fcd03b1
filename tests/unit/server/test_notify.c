/* test_notify.c — the webhook notifier (server/notify.h) against a real loopback receiver (src/httpd on port
 * 0): the event arrives as JSON with its fields, Content-Type and User-Agent, and nothing else (no token of
 * the URL in the body or the log, which names scheme://host only); a 500 is retried until a 2xx; three 500s
 * are given up; stopping with a queue of undeliverable events returns within a bounded time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "httpd/httpd.h"
#include "server/notify.h"
#include "test_util.h"

#define MAX_SEEN 64

typedef struct seen {
    char uri[256];
    char content_type[128];
    char user_agent[128];
    char *body;
} seen;

static struct {
    pthread_mutex_t mu;
    seen req[MAX_SEEN];
    int n;
    int fail_first; /* answer 500 to this many requests first */
    rd_httpd *d;
    int port;
    char dir[256];
} g = { .mu = PTHREAD_MUTEX_INITIALIZER };

static rd_httpd_next on_headers(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    (void)ctx;
    (void)req;
    (void)resp;
    return RD_HTTPD_BUFFER;
}

static void on_complete(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    (void)ctx;
    pthread_mutex_lock(&g.mu);
    int i = g.n < MAX_SEEN ? g.n++ : -1;
    int fail = g.fail_first > 0;
    if (fail)
        g.fail_first--;
    if (i >= 0) {
        seen *s = &g.req[i];
        snprintf(s->uri, sizeof s->uri, "%s %s", rd_httpd_method(req), rd_httpd_uri(req));
        const char *ct = rd_headers_get(rd_httpd_headers(req), "Content-Type");
        const char *ua = rd_headers_get(rd_httpd_headers(req), "User-Agent");
        snprintf(s->content_type, sizeof s->content_type, "%s", ct ? ct : "");
        snprintf(s->user_agent, sizeof s->user_agent, "%s", ua ? ua : "");
        const rd_buf *b = rd_httpd_body(req);
        s->body = strndup(b->data ? (const char *)b->data : "", b->len);
    }
    pthread_mutex_unlock(&g.mu);
    resp->status = fail ? 500 : 204;
}

static int setup(void **state)
{
    (void)state;
    unsetenv("REDDUCK_CA_BUNDLE");
    rd_httpd_options o = { .port = 0, .threads = 2, .host = "127.0.0.1" };
    rd_httpd_handler h = { .on_headers = on_headers, .on_complete = on_complete };
    rd_error err;
    rd_error_clear(&err);
    if (rd_httpd_start(&o, &h, &g.d, &err) != RD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    g.port = rd_httpd_port(g.d);
    return rd_test_mkdtemp(g.dir, sizeof g.dir, "rd-notify");
}

static int teardown(void **state)
{
    (void)state;
    rd_httpd_stop(g.d);
    for (int i = 0; i < g.n; i++)
        free(g.req[i].body);
    rd_test_rm_tree(g.dir);
    return 0;
}

static void reset(int fail_first)
{
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < g.n; i++) {
        free(g.req[i].body);
        g.req[i].body = NULL;
    }
    g.n = 0;
    g.fail_first = fail_first;
    pthread_mutex_unlock(&g.mu);
}

static int seen_count(void)
{
    pthread_mutex_lock(&g.mu);
    int n = g.n;
    pthread_mutex_unlock(&g.mu);
    return n;
}

/* Waits until delivered + failed reaches n. */
static void wait_counts(rd_notify *nt, uint64_t n, uint64_t *delivered, uint64_t *failed)
{
    for (int i = 0; i < 1000; i++) {
        rd_notify_counts(nt, delivered, failed);
        if (*delivered + *failed >= n)
            return;
        rd_sleep_ms(10);
    }
    fail_msg("the notifier did not finish %llu events", (unsigned long long)n);
}

static char *read_all(FILE *f)
{
    fflush(f);
    long len = ftell(f);
    char *t = calloc(1, (size_t)len + 1);
    rewind(f);
    size_t got = fread(t, 1, (size_t)len, f);
    t[got] = '\0';
    return t;
}

static const rd_notify_event EVENT = { .event = "failure",
                                       .project = "shop",
                                       .source = "orders",
                                       .table = "orders",
                                       .run_id = 42,
                                       .state = "failed",
                                       .error = "source orders: schema probe: Redshift: ERROR: relation \"x\" does not exist",
                                       .attempts = 3,
                                       .version = 7,
                                       .trigger = "schedule",
                                       .at_ms = 1800000000000LL };

static void test_event_delivered_as_json(void **state)
{
    (void)state;
    reset(0);
    char logp[400], url[256];
    snprintf(logp, sizeof logp, "%s/log1", g.dir);
    FILE *log = fopen(logp, "w+");
    rd_notify_options o = { .log = log, .user_agent = "redduck-server/9.9" };
    rd_notify *nt = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_notify_new(&o, &nt, &err), RD_OK);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/T0KENPATH?sig=QUERYSECRET", g.port);
    assert_int_equal(rd_notify_send(nt, url, &EVENT, &err), RD_OK);
    uint64_t d = 0, f = 0;
    wait_counts(nt, 1, &d, &f);
    assert_int_equal(d, 1);
    assert_int_equal(f, 0);
    rd_notify_free(nt);
    assert_int_equal(seen_count(), 1);
    seen *s = &g.req[0];
    assert_string_equal(s->uri, "POST /hooks/T0KENPATH?sig=QUERYSECRET");
    assert_non_null(strstr(s->content_type, "application/json"));
    assert_string_equal(s->user_agent, "redduck-server/9.9");
    json_error_t je;
    json_t *j = json_loads(s->body, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "failure");
    assert_string_equal(json_string_value(json_object_get(j, "project")), "shop");
    assert_string_equal(json_string_value(json_object_get(j, "source")), "orders");
    assert_string_equal(json_string_value(json_object_get(j, "table")), "orders");
    assert_int_equal(json_integer_value(json_object_get(j, "run_id")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "error")), EVENT.error);
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "trigger")), "schedule");
    assert_string_equal(json_string_value(json_object_get(j, "at")), "2027-01-15T08:00:00Z");
    assert_int_equal(json_object_size(j), 11); /* those fields, nothing more */
    json_decref(j);
    /* the URL's token is in neither the body nor the log; the log names the host */
    assert_null(strstr(s->body, "T0KENPATH"));
    assert_null(strstr(s->body, "QUERYSECRET"));
    char *text = read_all(log);
    char host[64];
    snprintf(host, sizeof host, "http://127.0.0.1:%d", g.port);
    assert_non_null(strstr(text, host));
    assert_non_null(strstr(text, "delivered"));
    assert_null(strstr(text, "T0KENPATH"));
    assert_null(strstr(text, "QUERYSECRET"));
    free(text);
    fclose(log);
}

static void test_retried_after_500(void **state)
{
    (void)state;
    reset(2);
    rd_notify_options o = { .backoff_ms = 20 };
    rd_notify *nt = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_notify_new(&o, &nt, &err), RD_OK);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/flaky", g.port);
    rd_notify_event e = EVENT;
    e.event = "recovery";
    e.state = "success";
    e.error = NULL;
    assert_int_equal(rd_notify_send(nt, url, &e, &err), RD_OK);
    uint64_t d = 0, f = 0;
    wait_counts(nt, 1, &d, &f);
    assert_int_equal(d, 1);
    assert_int_equal(seen_count(), 3); /* 500, 500, 204 */
    json_t *j = json_loads(g.req[2].body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "recovery");
    assert_true(json_is_null(json_object_get(j, "error")));
    json_decref(j);
    assert_string_equal(g.req[0].body, g.req[2].body); /* the same event each time */

    /* three 500s: given up after the third attempt */
    reset(3);
    assert_int_equal(rd_notify_send(nt, url, &e, &err), RD_OK);
    wait_counts(nt, 2, &d, &f);
    assert_int_equal(d, 1);
    assert_int_equal(f, 1);
    rd_sleep_ms(100);
    assert_int_equal(seen_count(), 3);
    rd_notify_free(nt);
}

static void test_stop_bounded_and_refusals(void **state)
{
    (void)state;
    reset(1000);
    rd_notify_options o = { .backoff_ms = 2000, .drain_ms = 200, .timeout_ms = 1000 };
    rd_notify *nt = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_notify_new(&o, &nt, &err), RD_OK);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/down", g.port);
    for (int i = 0; i < 20; i++)
        assert_int_equal(rd_notify_send(nt, url, &EVENT, &err), RD_OK);
    assert_int_equal(rd_notify_send(nt, "ftp://127.0.0.1/x", &EVENT, &err), RD_E_USAGE);
    rd_sleep_ms(50);
    double t0 = rd_monotonic_seconds();
    rd_notify_free(nt);
    assert_true(rd_monotonic_seconds() - t0 < 2.0);
    assert_true(seen_count() < 20);

    char out[128];
    rd_notify_redact_url("https://user:pw@hooks.example.com:8443/a/b?t=1#x", out, sizeof out);
    assert_string_equal(out, "https://hooks.example.com:8443");
    rd_notify_redact_url("http://127.0.0.1:9?token=1", out, sizeof out);
    assert_string_equal(out, "http://127.0.0.1:9");

    /* a queue that is full drops (and says so) */
    reset(1000);
    rd_notify_options small = { .queue_max = 1, .backoff_ms = 2000, .drain_ms = 50 };
    assert_int_equal(rd_notify_new(&small, &nt, &err), RD_OK);
    rd_status last = RD_OK;
    for (int i = 0; i < 5 && last == RD_OK; i++)
        last = rd_notify_send(nt, url, &EVENT, &err);
    assert_int_equal(last, RD_E_IO);
    rd_notify_free(nt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_delivered_as_json),
        cmocka_unit_test(test_retried_after_500),
        cmocka_unit_test(test_stop_bounded_and_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
