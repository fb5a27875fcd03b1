/* api_test_util.h — the in-process server the API and page tests share (header-only; each test is its own
 * executable): a keyring and a real SQLite store in a temporary data dir, users with tokens, the /v1 API
 * behind the real HTTP server on port 0, and one libcurl request helper that keeps the answer's status,
 * headers and body. Test code only: failures are cmocka assertions. Include cmocka.h before this file. */
#ifndef RD_TEST_API_UTIL_H
#define RD_TEST_API_UTIL_H

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "httpd/httpd.h"
#include "redduck/buf.h"
#include "server/api.h"
#include "server/store.h"
#include "test_util.h"

typedef struct rd_test_server {
    char dir[256];  /* the temporary directory (removed by rd_test_server_close) */
    char data[300]; /* dir/data: the server's data dir */
    rd_keyring *kr;
    rd_store *st;
    rd_api *api;
    rd_httpd *d;
    int port;
    char admin[RD_TOKEN_LEN + 1]; /* the bootstrap admin's token */
} rd_test_server;

/* A fresh data dir, keyring and store with the bootstrap admin, and the projects named (NULL-terminated;
 * the audit trail names "test" as who did it). 0, or -1 with the reason on stderr. */
static inline int rd_test_server_open(rd_test_server *s, const char *prefix, const char *const *projects)
{
    memset(s, 0, sizeof *s);
    if (rd_test_mkdtemp(s->dir, sizeof s->dir, prefix) != 0)
        return -1;
    snprintf(s->data, sizeof s->data, "%s/data", s->dir);
    mkdir(s->data, 0700);
    char kp[400];
    snprintf(kp, sizeof kp, "%s/keyring", s->data);
    rd_error err;
    rd_error_clear(&err);
    int created = 0, admin = 0;
    if (rd_keyring_open(kp, RD_KEYRING_CREATE, &s->kr, &created, &err) != RD_OK ||
        rd_store_open_sqlite(s->data, s->kr, NULL, &s->st, &err) != RD_OK ||
        rd_store_bootstrap(s->st, s->admin, &admin, &err) != RD_OK || !admin) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    for (size_t i = 0; projects && projects[i]; i++)
        if (rd_store_project_create(s->st, "test", projects[i], &err) != RD_OK) {
            fprintf(stderr, "%s\n", err.message);
            return -1;
        }
    return 0;
}

/* A user with role on project (RD_ROLE_NONE: no grant; prod: may touch prod) and a token into tok. */
static inline void rd_test_server_user(rd_test_server *s, const char *name, const char *project, rd_role role,
                                       int prod, char tok[RD_TOKEN_LEN + 1])
{
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_store_user_add(s->st, "test", name, 0, &err), RD_OK);
    if (role != RD_ROLE_NONE)
        assert_int_equal(rd_store_role_grant(s->st, "test", name, project, role, prod, &err), RD_OK);
    assert_int_equal(rd_store_token_create(s->st, "test", name, "t", tok, &err), RD_OK);
}

/* The API with options ao (NULL: defaults; data_dir defaults to s->data) behind the HTTP server on port 0. */
static inline int rd_test_server_start(rd_test_server *s, rd_api_options *ao, int threads)
{
    rd_error err;
    rd_error_clear(&err);
    rd_api_options def = { 0 };
    if (!ao)
        ao = &def;
    if (!ao->data_dir)
        ao->data_dir = s->data;
    if (rd_api_new(s->st, ao, &s->api, &err) != RD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    rd_httpd_options ho;
    memset(&ho, 0, sizeof ho);
    rd_api_httpd_options(&ho);
    ho.port = 0;
    ho.threads = threads > 0 ? threads : 4;
    rd_httpd_handler h;
    rd_api_handler(s->api, &h);
    if (rd_httpd_start(&ho, &h, &s->d, &err) != RD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    s->port = rd_httpd_port(s->d);
    return 0;
}

/* Stops the server, frees the API and the store, removes the data dir. */
static inline void rd_test_server_close(rd_test_server *s)
{
    rd_httpd_stop(s->d);
    rd_api_free(s->api);
    rd_store_close(s->st);
    rd_keyring_free(s->kr);
    rd_test_rm_tree(s->dir);
    memset(s, 0, sizeof *s);
}

/* ---- requests ------------------------------------------------------------------------------------------ */

typedef struct rd_test_request {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* with its query */
    const char *token;        /* sent as Authorization: Bearer; NULL: none */
    const char *content_type; /* NULL: none */
    const void *body;         /* NULL: none */
    size_t body_len;          /* 0 with a body: strlen(body) */
    const char *const *extra; /* more header lines, NULL-terminated; may be NULL */
    long timeout_s;           /* 0: 60 */
} rd_test_request;

typedef struct rd_test_answer {
    long status;
    rd_buf body;
    rd_buf headers;             /* every header line as received */
    void (*on_first)(void *ctx); /* called once after the first body bytes; may be NULL */
    void *ctx;
    int first_done;
} rd_test_answer;

static inline size_t rd_test_answer_body_cb(char *p, size_t size, size_t n, void *ud)
{
    rd_test_answer *a = ud;
    rd_buf_append(&a->body, p, size * n);
    if (a->on_first && !a->first_done) {
        a->first_done = 1;
        a->on_first(a->ctx);
    }
    return size * n;
}

/* A libcurl callback that appends to the rd_buf in ud. */
static inline size_t rd_test_collect(char *p, size_t size, size_t n, void *ud)
{
    rd_buf_append(ud, p, size * n);
    return size * n;
}

/* One request to the server; the answer in a (free with rd_test_answer_free; a->on_first/ctx are kept). The
 * status, also returned. */
static inline long rd_test_http(const rd_test_server *s, const rd_test_request *r, rd_test_answer *a)
{
    rd_buf_init(&a->body);
    rd_buf_init(&a->headers);
    a->status = 0;
    a->first_done = 0;
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, r->path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rd_test_answer_body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, rd_test_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &a->headers);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 16384L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, r->timeout_s > 0 ? r->timeout_s : 60L);
    struct curl_slist *hs = NULL;
    char line[256];
    if (r->token) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", r->token);
        hs = curl_slist_append(hs, line);
    }
    if (r->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", r->content_type);
        hs = curl_slist_append(hs, line);
    }
    hs = curl_slist_append(hs, "Expect:");
    for (size_t i = 0; r->extra && r->extra[i]; i++)
        hs = curl_slist_append(hs, r->extra[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    if (r->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(r->body_len ? r->body_len : strlen(r->body)));
    }
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    return a->status;
}

static inline void rd_test_answer_free(rd_test_answer *a)
{
    rd_buf_free(&a->body);
    rd_buf_free(&a->headers);
}

/* The value of the answer's first header called name into out ("" when absent). */
static inline const char *rd_test_answer_header(const rd_test_answer *a, const char *name, char *out, size_t n)
{
    out[0] = 0;
    size_t nl = strlen(name);
    for (const char *p = rd_buf_cstr(&a->headers); p && *p;) {
        const char *e = strstr(p, "\r\n");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)(len - (size_t)(v - p)), v);
            return out;
        }
        p = e ? e + 2 : NULL;
    }
    return out;
}

#endif
