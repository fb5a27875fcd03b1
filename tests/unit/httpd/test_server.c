/* test_server.c — the HTTP server (src/httpd): started on port 0 with a trivial handler, a request through
 * libcurl, a body over the limit refused from its Content-Length before any of it is sent, a body without a
 * length that runs over, a clean stop; the client's address, one given listen address, HOST:PORT parsing,
 * loopback recognised, TLS with a self-signed certificate (verified against it as CA, refused without), and
 * shaping on a thread-per-connection server: a paced file range (lower bound of its time, bytes intact, a cut
 * still cutting) and a first-byte delay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpd/httpd.h"

#define LIMIT 1024

typedef struct counts {
    atomic_int completed, too_large_early, too_large_late, done;
} counts;

static rd_httpd_next on_headers(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    (void)ctx;
    if (strcmp(rd_httpd_uri(req), "/refuse") == 0) {
        resp->status = 403;
        rd_buf_puts(&resp->body, "no");
        return RD_HTTPD_ANSWER;
    }
    if (strncmp(rd_httpd_uri(req), "/small", 6) == 0) /* this request's own, lower cap */
        rd_httpd_set_max_body(req, LIMIT / 4);
    return RD_HTTPD_BUFFER;
}

static void on_complete(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    counts *c = ctx;
    atomic_fetch_add(&c->completed, 1);
    resp->status = 200;
    rd_headers_set(&resp->headers, "Content-Type", "text/plain");
    if (strcmp(rd_httpd_uri(req), "/addr") == 0)
        rd_buf_printf(&resp->body, "%s", rd_httpd_client_address(req));
    else
        rd_buf_printf(&resp->body, "%s %s %zu", rd_httpd_method(req), rd_httpd_uri(req), rd_httpd_body(req)->len);
}

static void on_too_large(void *ctx, rd_httpd_request *req, int before_body, size_t limit, rd_httpd_response *resp)
{
    (void)req;
    counts *c = ctx;
    atomic_fetch_add(before_body ? &c->too_large_early : &c->too_large_late, 1);
    resp->status = 413;
    rd_buf_printf(&resp->body, "over %zu", limit);
}

static void on_done(void *ctx, rd_httpd_request *req)
{
    (void)req;
    counts *c = ctx;
    atomic_fetch_add(&c->done, 1);
}

typedef struct fixture {
    counts c;
    rd_httpd *d;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    rd_httpd_options o = { .port = 0, .threads = 2, .max_body = LIMIT, .server_name = "test" };
    rd_httpd_handler h = { .on_headers = on_headers,
                           .on_complete = on_complete,
                           .on_too_large = on_too_large,
                           .on_done = on_done,
                           .ctx = &f->c };
    rd_error err;
    rd_error_clear(&err);
    if (rd_httpd_start(&o, &h, &f->d, &err) != RD_OK) {
        fprintf(stderr, "%s\n", err.message);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_httpd_stop(f->d);
    free(f);
    return 0;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    rd_buf_append(ud, p, size * n);
    return size * n;
}

typedef struct feed {
    size_t left;
} feed;

static size_t feed_bytes(char *p, size_t size, size_t n, void *ud)
{
    feed *fd = ud;
    size_t k = size * n < fd->left ? size * n : fd->left;
    memset(p, 'x', k);
    fd->left -= k;
    return k;
}

/* One request through libcurl; returns the status, fills body. upload_len > 0: a chunked POST of that many
 * bytes (no Content-Length). */
static long fetch_url(const char *url, const char *ca, rd_buf *body, CURLcode *code)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    long status = 0;
    *code = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static long curl_request(int port, const char *path, const char *post, size_t upload_len, rd_buf *body)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    struct curl_slist *hs = NULL;
    feed fd = { upload_len };
    if (post) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    } else if (upload_len) {
        hs = curl_slist_append(hs, "Transfer-Encoding: chunked");
        hs = curl_slist_append(hs, "Expect:");
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, feed_bytes);
        curl_easy_setopt(c, CURLOPT_READDATA, &fd);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    }
    long status = 0;
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    return status;
}

static void test_get_and_post(void **state)
{
    fixture *f = *state;
    int port = rd_httpd_port(f->d);
    assert_true(port > 0);
    rd_buf b = RD_BUF_INIT;
    assert_int_equal(curl_request(port, "/a%20b?x=1", NULL, 0, &b), 200);
    assert_string_equal(rd_buf_cstr(&b), "GET /a%20b?x=1 0"); /* the URI as sent, not decoded */
    rd_buf_free(&b);
    assert_int_equal(curl_request(port, "/p", "hello", 0, &b), 200);
    assert_string_equal(rd_buf_cstr(&b), "POST /p 5");
    rd_buf_free(&b);
    assert_int_equal(curl_request(port, "/refuse", NULL, 0, &b), 403);
    assert_string_equal(rd_buf_cstr(&b), "no");
    rd_buf_free(&b);
    assert_int_equal(atomic_load(&f->c.completed), 2);
}

/* Headers announcing a body over the limit, and not a byte of the body: the answer comes anyway. */
static void test_declared_body_over_limit_refused_before_read(void **state)
{
    fixture *f = *state;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)rd_httpd_port(f->d));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = { 10, 0 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char *req = "POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\n";
    assert_int_equal(send(s, req, strlen(req), 0), (ssize_t)strlen(req));
    char buf[1024];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = recv(s, buf + got, sizeof buf - 1 - got, 0)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    close(s);
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    assert_non_null(strstr(buf, "over 1024"));
    assert_non_null(strstr(buf, "Server: test"));
    assert_int_equal(atomic_load(&f->c.too_large_early), 1);
    assert_int_equal(atomic_load(&f->c.completed), 0);
}

static void test_unannounced_body_over_limit_dropped(void **state)
{
    fixture *f = *state;
    rd_buf b = RD_BUF_INIT;
    assert_int_equal(curl_request(rd_httpd_port(f->d), "/chunked", NULL, 4 * LIMIT, &b), 413);
    rd_buf_free(&b);
    assert_int_equal(atomic_load(&f->c.too_large_late), 1);
    assert_int_equal(curl_request(rd_httpd_port(f->d), "/chunked", NULL, LIMIT / 2, &b), 200);
    assert_string_equal(rd_buf_cstr(&b), "POST /chunked 512");
    rd_buf_free(&b);
}

/* A cap set in on_headers for one request: bodies with and without Content-Length stop there, other
 * requests keep the server's. */
static void test_per_request_limit(void **state)
{
    fixture *f = *state;
    int port = rd_httpd_port(f->d);
    rd_buf b = RD_BUF_INIT;
    assert_int_equal(curl_request(port, "/small", NULL, LIMIT / 2, &b), 413); /* chunked */
    assert_string_equal(rd_buf_cstr(&b), "over 256");
    rd_buf_free(&b);
    assert_int_equal(atomic_load(&f->c.too_large_late), 1);
    char big[LIMIT / 2 + 1];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(curl_request(port, "/small", big, 0, &b), 413); /* Content-Length */
    rd_buf_free(&b);
    assert_int_equal(atomic_load(&f->c.too_large_early), 1);
    assert_int_equal(curl_request(port, "/small", NULL, LIMIT / 8, &b), 200);
    assert_string_equal(rd_buf_cstr(&b), "POST /small 128");
    rd_buf_free(&b);
    assert_int_equal(curl_request(port, "/other", NULL, LIMIT / 2, &b), 200);
    assert_string_equal(rd_buf_cstr(&b), "POST /other 512");
    rd_buf_free(&b);
    assert_int_equal(atomic_load(&f->c.completed), 2);
}

static void test_stop_is_clean(void **state)
{
    (void)state;
    rd_httpd_stop(NULL);
    sigset_t set;
    rd_httpd_stop_signals_block(&set);
    assert_int_equal(rd_httpd_stop_signals_wait(&set, 1), 0); /* no signal: the timeout */
    raise(SIGTERM);
    assert_int_equal(rd_httpd_stop_signals_wait(&set, 1), SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void test_client_address(void **state)
{
    fixture *f = *state;
    rd_buf b = RD_BUF_INIT;
    assert_int_equal(curl_request(rd_httpd_port(f->d), "/addr", NULL, 0, &b), 200);
    assert_string_equal(rd_buf_cstr(&b), "127.0.0.1");
    rd_buf_free(&b);
}

static void test_parse_listen_and_loopback(void **state)
{
    (void)state;
    char host[64];
    int port = -1;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_httpd_parse_listen("127.0.0.1:8470", host, sizeof host, &port, &err), RD_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8470);
    assert_int_equal(rd_httpd_parse_listen("[::1]:0", host, sizeof host, &port, &err), RD_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(rd_httpd_parse_listen("0.0.0.0:65535", host, sizeof host, &port, &err), RD_OK);
    assert_int_equal(rd_httpd_parse_listen("127.0.0.1:65536", host, sizeof host, &port, &err), RD_E_USAGE);
    assert_int_equal(rd_httpd_parse_listen("127.0.0.1", host, sizeof host, &port, &err), RD_E_USAGE);
    assert_int_equal(rd_httpd_parse_listen("::1:80", host, sizeof host, &port, &err), RD_E_USAGE);
    assert_int_equal(rd_httpd_parse_listen("example.com:80", host, sizeof host, &port, &err), RD_E_USAGE);
    assert_int_equal(rd_httpd_parse_listen("1.2.3.4:8x", host, sizeof host, &port, &err), RD_E_USAGE);
    assert_true(rd_httpd_host_is_loopback(NULL));
    assert_true(rd_httpd_host_is_loopback("127.0.0.1"));
    assert_true(rd_httpd_host_is_loopback("127.8.9.10"));
    assert_true(rd_httpd_host_is_loopback("::1"));
    assert_true(rd_httpd_host_is_loopback("localhost"));
    assert_false(rd_httpd_host_is_loopback("0.0.0.0"));
    assert_false(rd_httpd_host_is_loopback("::"));
    assert_false(rd_httpd_host_is_loopback("10.0.0.1"));
    assert_false(rd_httpd_host_is_loopback("not an address"));
}

static void test_one_host(void **state)
{
    (void)state;
    counts c;
    memset(&c, 0, sizeof c);
    rd_httpd_options o = { .port = 0, .threads = 1, .host = "127.0.0.1" };
    rd_httpd_handler h = { .on_headers = on_headers, .on_complete = on_complete, .ctx = &c };
    rd_httpd *d = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_httpd_start(&o, &h, &d, &err), RD_OK);
    assert_false(rd_httpd_tls(d));
    rd_buf b = RD_BUF_INIT;
    assert_int_equal(curl_request(rd_httpd_port(d), "/x", NULL, 0, &b), 200);
    rd_buf_free(&b);
    /* only that address: nothing on ::1 */
    char url[64];
    snprintf(url, sizeof url, "http://[::1]:%d/x", rd_httpd_port(d));
    CURLcode code;
    fetch_url(url, NULL, &b, &code);
    assert_int_not_equal(code, CURLE_OK);
    rd_buf_free(&b);
    rd_httpd_stop(d);
    o.host = "example.com";
    assert_int_equal(rd_httpd_start(&o, &h, &d, &err), RD_E_USAGE);
    o.host = NULL;
    o.tls_cert_file = "/nonexistent/cert.pem";
    assert_int_equal(rd_httpd_start(&o, &h, &d, &err), RD_E_USAGE); /* without the key */
}

static void test_tls(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/rd-httpd-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    char cert[300], key[300], cmd[1200];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout '%s' -out '%s' >/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    counts c;
    memset(&c, 0, sizeof c);
    rd_httpd_options o = { .port = 0, .threads = 1, .host = "127.0.0.1", .tls_cert_file = cert, .tls_key_file = key };
    rd_httpd_handler h = { .on_headers = on_headers, .on_complete = on_complete, .ctx = &c };
    rd_httpd *d = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_httpd_start(&o, &h, &d, &err), RD_OK);
    assert_true(rd_httpd_tls(d));
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/secure", rd_httpd_port(d));
    rd_buf b = RD_BUF_INIT;
    CURLcode code;
    assert_int_equal(fetch_url(url, cert, &b, &code), 200);
    assert_int_equal(code, CURLE_OK);
    assert_string_equal(rd_buf_cstr(&b), "GET /secure 0");
    rd_buf_free(&b);
    fetch_url(url, NULL, &b, &code); /* the system's CAs do not know it: verification fails */
    assert_int_not_equal(code, CURLE_OK);
    rd_buf_free(&b);
    rd_httpd_stop(d);
    /* a key that is not a key: refused at start */
    o.tls_key_file = cert;
    assert_int_not_equal(rd_httpd_start(&o, &h, &d, &err), RD_OK);
    o.tls_key_file = "/nonexistent/key.pem";
    assert_int_equal(rd_httpd_start(&o, &h, &d, &err), RD_E_CONFIG);
    assert_null(strstr(err.message, "PRIVATE"));
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

/* ---- shaping: a paced file range and a first-byte delay, on a thread-per-connection server ---- */

#define SHAPED_LEN ((size_t)2 << 20)
#define SHAPED_OFFSET 1000u

typedef struct shaped_ctx {
    int fd;                /* a file of SHAPED_OFFSET + SHAPED_LEN pseudo-random bytes */
    unsigned char *content;
} shaped_ctx;

static rd_httpd_next shaped_headers(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    (void)ctx;
    (void)req;
    (void)resp;
    return RD_HTTPD_BUFFER;
}

/* /paced: the range [SHAPED_OFFSET, +SHAPED_LEN) at 4 MB/s; /paced-cut: the same, cut after half of it;
 * /delayed: a short body held back 300 ms. */
static void shaped_complete(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    shaped_ctx *c = ctx;
    const char *uri = rd_httpd_uri(req);
    resp->status = 200;
    if (strcmp(uri, "/delayed") == 0) {
        resp->first_byte_delay_ms = 300;
        rd_buf_puts(&resp->body, "late");
        return;
    }
    resp->fd = dup(c->fd);
    resp->fd_offset = SHAPED_OFFSET;
    resp->fd_length = SHAPED_LEN;
    resp->pace_bytes_per_second = 4000000;
    if (strcmp(uri, "/paced-cut") == 0)
        resp->reset_after = SHAPED_LEN / 2;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_shaped_responses(void **state)
{
    (void)state;
    shaped_ctx c;
    const char *tmp = getenv("TMPDIR");
    char path[256];
    snprintf(path, sizeof path, "%s/rd-httpd-shaped-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    c.fd = mkstemp(path);
    assert_true(c.fd >= 0);
    unlink(path);
    c.content = malloc(SHAPED_OFFSET + SHAPED_LEN);
    assert_non_null(c.content);
    uint32_t x = 12345;
    for (size_t i = 0; i < SHAPED_OFFSET + SHAPED_LEN; i++) {
        x = x * 1103515245u + 12345u;
        c.content[i] = (unsigned char)(x >> 16);
    }
    assert_int_equal(write(c.fd, c.content, SHAPED_OFFSET + SHAPED_LEN), (ssize_t)(SHAPED_OFFSET + SHAPED_LEN));
    rd_httpd_options o = { .port = 0, .thread_per_connection = 1, .host = "127.0.0.1" };
    rd_httpd_handler h = { .on_headers = shaped_headers, .on_complete = shaped_complete, .ctx = &c };
    rd_httpd *d = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_httpd_start(&o, &h, &d, &err), RD_OK);
    char url[64];
    CURLcode code;

    /* 2 MB at 4 MB/s: at least about half a second (the bucket starts with one 64 KiB burst), every byte
     * from the range's offset */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/paced", rd_httpd_port(d));
    rd_buf b = RD_BUF_INIT;
    double t0 = now_seconds();
    assert_int_equal(fetch_url(url, NULL, &b, &code), 200);
    double took = now_seconds() - t0;
    assert_int_equal(code, CURLE_OK);
    assert_int_equal(b.len, SHAPED_LEN);
    assert_memory_equal(b.data, c.content + SHAPED_OFFSET, SHAPED_LEN);
    assert_true(took >= 0.45);
    rd_buf_free(&b);

    /* a cut (fault) on a paced body still ends it early: a short body, the bytes before the cut intact */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/paced-cut", rd_httpd_port(d));
    fetch_url(url, NULL, &b, &code);
    assert_int_not_equal(code, CURLE_OK);
    assert_true(b.len <= SHAPED_LEN / 2);
    assert_true(b.len > 0);
    assert_memory_equal(b.data, c.content + SHAPED_OFFSET, b.len);
    rd_buf_free(&b);

    /* the delay comes before the status line: curl's time to the first byte includes it */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/delayed", rd_httpd_port(d));
    CURL *cu = curl_easy_init();
    assert_non_null(cu);
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(cu, CURLOPT_NOPROXY, "*");
    assert_int_equal(curl_easy_perform(cu), CURLE_OK);
    double ttfb = 0;
    curl_easy_getinfo(cu, CURLINFO_STARTTRANSFER_TIME, &ttfb);
    curl_easy_cleanup(cu);
    assert_string_equal(rd_buf_cstr(&b), "late");
    assert_true(ttfb >= 0.3);
    rd_buf_free(&b);

    rd_httpd_stop(d);
    close(c.fd);
    free(c.content);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_and_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declared_body_over_limit_refused_before_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unannounced_body_over_limit_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_request_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_address, setup, teardown),
        cmocka_unit_test(test_parse_listen_and_loopback),
        cmocka_unit_test(test_one_host),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_stop_is_clean),
        cmocka_unit_test(test_shaped_responses),
    };
    int rc = cmocka_run_group_tests_name("httpd", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
