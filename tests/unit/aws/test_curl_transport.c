/* test_curl_transport.c — the libcurl transport against a loopback libmicrohttpd server: headers and bodies both
 * ways, the User-Agent, connection reuse, streaming sinks, a reset connection and a timeout reported as
 * network errors, several requests at once through rd_http_multi (16 connections to one host at once, kept
 * alive through a quiet spell), and loopback detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/http.h"

typedef struct server_state {
    char last_ua[128];
    char last_custom[128];
    char last_body[256];
    int client_ports[8];
    int requests;
    /* /gate: each request waits until gate_want of them are in at once (at most 3 s) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int gate_in, gate_peak, gate_want;
} server_state;

typedef struct conn {
    char body[256];
    size_t len;
    int started;
} conn;

static ssize_t reset_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= 10)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = max < 10 - pos ? max : (size_t)(10 - pos);
    memset(buf, 'x', n);
    return (ssize_t)n;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)method;
    (void)version;
    server_state *st = cls;
    conn *cn = *con_cls;
    if (!cn) {
        cn = calloc(1, sizeof *cn);
        *con_cls = cn;
        return MHD_YES;
    }
    if (*size) {
        size_t n = *size < sizeof cn->body - 1 - cn->len ? *size : sizeof cn->body - 1 - cn->len;
        memcpy(cn->body + cn->len, data, n);
        cn->len += n;
        *size = 0;
        return MHD_YES;
    }
    const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
    const char *custom = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Custom");
    snprintf(st->last_ua, sizeof st->last_ua, "%s", ua ? ua : "");
    snprintf(st->last_custom, sizeof st->last_custom, "%s", custom ? custom : "");
    snprintf(st->last_body, sizeof st->last_body, "%.*s", (int)cn->len, cn->body);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    int n = __atomic_fetch_add(&st->requests, 1, __ATOMIC_SEQ_CST); /* handlers run on several threads */
    if (n < 8 && ci)
        st->client_ports[n] = ntohs(((const struct sockaddr_in *)ci->client_addr)->sin_port);
    struct MHD_Response *r;
    if (strcmp(url, "/gate") == 0) {
        pthread_mutex_lock(&st->mu);
        if (++st->gate_in > st->gate_peak)
            st->gate_peak = st->gate_in;
        pthread_cond_broadcast(&st->cv);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 3;
        while (st->gate_in < st->gate_want && pthread_cond_timedwait(&st->cv, &st->mu, &until) == 0)
            ;
        pthread_mutex_unlock(&st->mu);
    }
    if (strcmp(url, "/reset") == 0) {
        r = MHD_create_response_from_callback(1000, 16, reset_reader, NULL, NULL);
    } else if (strcmp(url, "/slow") == 0) {
        sleep(2);
        r = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer(5, (void *)"hello", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "X-Reply", "  spaced value ");
    }
    enum MHD_Result ret = MHD_queue_response(c, strcmp(url, "/missing") == 0 ? 404 : 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static struct MHD_Daemon *start(server_state *st, int *port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                                            NULL, handler, st, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_NOTIFY_COMPLETED,
                                            completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                            MHD_OPTION_END);
    assert_non_null(d);
    *port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return d;
}

static size_t sink(void *ctx, const void *data, size_t len)
{
    rd_buf_append(ctx, data, len);
    return len;
}

static void test_round_trip_and_reuse(void **state)
{
    (void)state;
    server_state st;
    memset(&st, 0, sizeof st);
    int port;
    struct MHD_Daemon *d = start(&st, &port);
    rd_http_transport *t;
    rd_error err;
    rd_http_options o = { 0 };
    assert_int_equal(rd_http_curl_new(&o, &t, &err), RD_OK);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", port);
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "X-Custom", "value 1");
    rd_http_request req = { "POST", url, &h, "payload", 7, 0, NULL, NULL };
    rd_http_response resp;
    rd_http_response_init(&resp);
    assert_int_equal(rd_http_send(t, &req, &resp, &err), RD_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(rd_buf_cstr(&resp.body), "hello");
    assert_string_equal(rd_headers_get(&resp.headers, "x-reply"), "spaced value");
    assert_string_equal(st.last_custom, "value 1");
    assert_string_equal(st.last_body, "payload");
    assert_string_equal(st.last_ua, "redduck/" RD_VERSION);
    /* a second request reuses the connection (same client port) */
    rd_http_response_reset(&resp);
    rd_buf streamed = RD_BUF_INIT;
    rd_http_request req2 = { "GET", url, NULL, NULL, 0, 0, sink, &streamed };
    assert_int_equal(rd_http_send(t, &req2, &resp, &err), RD_OK);
    assert_string_equal(rd_buf_cstr(&streamed), "hello"); /* went to the sink */
    assert_int_equal(resp.body.len, 0);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.client_ports[0], st.client_ports[1]);
    /* HTTP errors are answers, not transport failures */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/missing", port);
    rd_http_response_reset(&resp);
    rd_http_request req3 = { "GET", url, NULL, NULL, 0, 0, NULL, NULL };
    assert_int_equal(rd_http_send(t, &req3, &resp, &err), RD_OK);
    assert_int_equal(resp.status, 404);
    rd_buf_free(&streamed);
    rd_http_response_free(&resp);
    rd_headers_free(&h);
    rd_http_transport_free(t);
    MHD_stop_daemon(d);
}

static void test_reset_and_timeout_are_network_errors(void **state)
{
    (void)state;
    server_state st;
    memset(&st, 0, sizeof st);
    int port;
    struct MHD_Daemon *d = start(&st, &port);
    rd_http_transport *t;
    rd_error err;
    rd_http_options o = { 0 };
    assert_int_equal(rd_http_curl_new(&o, &t, &err), RD_OK);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/reset", port);
    rd_http_request req = { "GET", url, NULL, NULL, 0, 0, NULL, NULL };
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_error_clear(&err);
    assert_int_equal(rd_http_send(t, &req, &resp, &err), RD_E_NETWORK);
    assert_non_null(strstr(err.message, "127.0.0.1"));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", port);
    rd_http_request slow = { "GET", url, NULL, NULL, 0, 300, NULL, NULL };
    rd_http_response_reset(&resp);
    assert_int_equal(rd_http_send(t, &slow, &resp, &err), RD_E_NETWORK);
    /* nothing listens on port 1 */
    rd_http_request refused = { "GET", "http://127.0.0.1:1/", NULL, NULL, 0, 0, NULL, NULL };
    rd_http_response_reset(&resp);
    assert_int_equal(rd_http_send(t, &refused, &resp, &err), RD_E_NETWORK);
    rd_http_response_free(&resp);
    rd_http_transport_free(t);
    MHD_stop_daemon(d);
}

typedef struct status_sink {
    rd_buf body;
    const rd_http_response *resp;
    int status_at_first_byte;
} status_sink;

static size_t sink_with_status(void *ctx, const void *data, size_t len)
{
    status_sink *ss = ctx;
    if (!ss->body.len)
        ss->status_at_first_byte = ss->resp->status;
    rd_buf_append(&ss->body, data, len);
    return len;
}

/* rd_http_multi on the libcurl transport: several requests at once, each answered as rd_http_send would
 * (the status known before the first body byte reaches a sink, an error status an answer, a reset a
 * network error naming the host). */
static void test_multi_runs_requests_at_once(void **state)
{
    (void)state;
    server_state st;
    memset(&st, 0, sizeof st);
    int port;
    struct MHD_Daemon *d = start(&st, &port);
    rd_http_transport *t;
    rd_error err;
    rd_http_options o = { 0 };
    assert_int_equal(rd_http_curl_new(&o, &t, &err), RD_OK);
    rd_http_multi *m = NULL;
    assert_int_equal(rd_http_multi_new(t, &m, &err), RD_OK);
    static const char *const paths[3] = { "/echo", "/missing", "/reset" };
    rd_http_response resp[3];
    status_sink ss[3];
    int done[3] = { 0 };
    rd_status got[3];
    char errors[3][RD_ERROR_MSG_MAX];
    for (int i = 0; i < 3; i++) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, paths[i]);
        rd_http_response_init(&resp[i]);
        rd_buf_init(&ss[i].body);
        ss[i].resp = &resp[i];
        ss[i].status_at_first_byte = -1;
        rd_http_request req = { "GET", url, NULL, NULL, 0, 5000, sink_with_status, &ss[i] };
        assert_int_equal(rd_http_multi_add(m, &req, &resp[i], &ss[i], &err), RD_OK);
    }
    for (int finished = 0, rounds = 0; finished < 3; rounds++) {
        assert_true(rounds < 1000);
        void *user = NULL;
        rd_status xs = RD_OK;
        rd_error_clear(&err);
        while (rd_http_multi_next(m, &user, &xs, &err)) {
            int i = (int)((status_sink *)user - ss);
            assert_true(i >= 0 && i < 3 && !done[i]);
            done[i] = 1;
            got[i] = xs;
            snprintf(errors[i], sizeof errors[i], "%s", err.message);
            finished++;
            rd_error_clear(&err);
        }
        rd_http_multi_wait(m, 50);
    }
    assert_int_equal(got[0], RD_OK);
    assert_int_equal(resp[0].status, 200);
    assert_int_equal(ss[0].status_at_first_byte, 200);
    assert_string_equal(rd_buf_cstr(&ss[0].body), "hello");
    assert_string_equal(rd_headers_get(&resp[0].headers, "x-reply"), "spaced value");
    assert_int_equal(got[1], RD_OK);
    assert_int_equal(resp[1].status, 404);
    assert_int_equal(got[2], RD_E_NETWORK);
    assert_non_null(strstr(errors[2], "127.0.0.1"));
    rd_http_multi_free(m);
    for (int i = 0; i < 3; i++) {
        rd_buf_free(&ss[i].body);
        rd_http_response_free(&resp[i]);
    }
    rd_http_transport_free(t);
    MHD_stop_daemon(d);
}

/* Runs every request added to m to its end; each must succeed with a 200. */
static void multi_drain(rd_http_multi *m, int n)
{
    rd_error err;
    for (int finished = 0, rounds = 0; finished < n; rounds++) {
        assert_true(rounds < 1000);
        void *user = NULL;
        rd_status xs = RD_OK;
        rd_error_clear(&err);
        while (rd_http_multi_next(m, &user, &xs, &err)) {
            if (xs != RD_OK)
                fail_msg("request: %s", err.message);
            assert_int_equal(((rd_http_response *)user)->status, 200);
            finished++;
        }
        rd_http_multi_wait(m, 50);
    }
}

static void multi_wave(rd_http_multi *m, int port, const char *path, int n)
{
    rd_http_response resp[16];
    rd_error err;
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
        rd_http_response_init(&resp[i]);
        rd_http_request req = { "GET", url, NULL, NULL, 0, 5000, NULL, NULL };
        assert_int_equal(rd_http_multi_add(m, &req, &resp[i], &resp[i], &err), RD_OK);
    }
    multi_drain(m, n);
    for (int i = 0; i < n; i++)
        rd_http_response_free(&resp[i]);
}

/* The downloader's pattern: 16 requests at once to one host get 16 connections at once (no per-host limit,
 * no HTTP/2-style sharing); then one request at a time for a while (an ingest waiting for UNLOAD's next
 * file); then 16 at once again, on the same 16 connections: none was closed in the quiet spell (curl's
 * default cache would have kept 4 of them). */
static void test_multi_many_connections_to_one_host_kept_alive(void **state)
{
    (void)state;
    server_state st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    st.gate_want = 16;
    int port;
    struct MHD_Daemon *d = start(&st, &port);
    rd_http_transport *t;
    rd_error err;
    rd_http_options o = { 0 };
    assert_int_equal(rd_http_curl_new(&o, &t, &err), RD_OK);
    rd_http_multi *m = NULL;
    assert_int_equal(rd_http_multi_new(t, &m, &err), RD_OK);
    multi_wave(m, port, "/gate", 16);
    assert_int_equal(st.gate_peak, 16); /* all in at once */
    assert_int_equal(rd_http_multi_connections(m), 16);
    for (int i = 0; i < 13; i++)
        multi_wave(m, port, "/echo", 1);
    assert_int_equal(rd_http_multi_connections(m), 16); /* each reused one */
    pthread_mutex_lock(&st.mu);
    st.gate_in = st.gate_peak = 0;
    pthread_mutex_unlock(&st.mu);
    multi_wave(m, port, "/gate", 16);
    assert_int_equal(st.gate_peak, 16);
    assert_int_equal(rd_http_multi_connections(m), 16); /* the same 16 connections */
    assert_int_equal(__atomic_load_n(&st.requests, __ATOMIC_SEQ_CST), 16 + 13 + 16);
    rd_http_multi_free(m);
    rd_http_transport_free(t);
    MHD_stop_daemon(d);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(rd_url_is_loopback("http://127.0.0.1:4566/x"));
    assert_true(rd_url_is_loopback("http://127.1.2.3/"));
    assert_true(rd_url_is_loopback("http://localhost:9000"));
    assert_true(rd_url_is_loopback("http://[::1]:80/"));
    assert_false(rd_url_is_loopback("http://169.254.169.254/latest"));
    assert_false(rd_url_is_loopback("https://s3.amazonaws.com/"));
    assert_false(rd_url_is_loopback("http://127.0.0.1.evil.com/"));
    assert_false(rd_url_is_loopback("http://user@10.0.0.1/"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_reuse),
        cmocka_unit_test(test_reset_and_timeout_are_network_errors),
        cmocka_unit_test(test_multi_runs_requests_at_once),
        cmocka_unit_test(test_multi_many_connections_to_one_host_kept_alive),
        cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
