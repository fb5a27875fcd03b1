/* fake_transport.h — a scripted HTTP transport for the service clients' unit tests: each call takes the
 * next scripted reply (status, one optional header, body) and records the method, URL, X-Amz-Target and
 * body it was sent; and fake_env, the client on it that each FAKE_TEST gets as its state. No network. */
#ifndef RD_TEST_FAKE_TRANSPORT_H
#define RD_TEST_FAKE_TRANSPORT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "auth/creds_chain.h"

#define FAKE_MAX 16

typedef struct fake_reply {
    int status;
    const char *header, *value; /* one reply header, or NULL */
    const char *body;           /* or NULL */
} fake_reply;

typedef struct fake_http {
    rd_http_transport base;
    fake_reply replies[FAKE_MAX];
    int n, calls;
    char method[FAKE_MAX][8];
    char url[FAKE_MAX][1024];
    char target[FAKE_MAX][128];
    char *body[FAKE_MAX]; /* owned */
} fake_http;

static inline rd_status fake_send(rd_http_transport *t, const rd_http_request *req, rd_http_response *resp,
                                  rd_error *err)
{
    fake_http *f = (fake_http *)t;
    if (f->calls >= f->n)
        return rd_error_set(err, RD_E_NETWORK, "fake transport: no reply scripted for call %d (%s %s)",
                            f->calls + 1, req->method, req->url);
    int i = f->calls++;
    snprintf(f->method[i], sizeof f->method[i], "%s", req->method);
    snprintf(f->url[i], sizeof f->url[i], "%s", req->url);
    const char *target = rd_headers_get(req->headers, "X-Amz-Target");
    snprintf(f->target[i], sizeof f->target[i], "%s", target ? target : "");
    free(f->body[i]);
    f->body[i] = calloc(1, req->body_len + 1);
    if (f->body[i] && req->body_len)
        memcpy(f->body[i], req->body, req->body_len);
    const fake_reply *r = &f->replies[i];
    resp->status = r->status;
    rd_headers_add(&resp->headers, "x-amzn-RequestId", "req-1");
    if (r->header)
        rd_headers_add(&resp->headers, r->header, r->value);
    if (r->body) {
        if (req->on_body) {
            if (req->on_body(req->on_body_ctx, r->body, strlen(r->body)) != strlen(r->body))
                return rd_error_set(err, RD_E_IO, "fake transport: sink refused the body");
        } else
            rd_buf_puts(&resp->body, r->body);
    }
    return RD_OK;
}

static inline void fake_destroy(rd_http_transport *t)
{
    (void)t;
}

static const rd_http_transport_vtable fake_vt = { fake_send, fake_destroy };

static inline void fake_no_sleep(void *ctx, long ms)
{
    (void)ctx;
    (void)ms;
}

static inline time_t fake_now(void)
{
    return 1764000000;
}

/* c talks to f with static credentials (*creds, freed by fake_client_done). */
static inline void fake_client_init(rd_aws_client *c, fake_http *f, rd_creds_provider **creds)
{
    memset(f, 0, sizeof *f);
    f->base.vt = &fake_vt;
    memset(c, 0, sizeof *c);
    rd_error err;
    rd_error_clear(&err);
    if (rd_creds_static_new("AKIDTEST", "secret", NULL, "explicit", NULL, creds, &err) != RD_OK)
        abort();
    c->http = &f->base;
    c->creds = *creds;
    c->region = "us-east-1";
    c->now = fake_now;
    c->sleep_ms = fake_no_sleep;
    const char *unset[] = { "AWS_MAX_ATTEMPTS", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                            "AWS_ENDPOINT_URL_REDSHIFT_DATA" };
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
}

static inline void fake_client_done(fake_http *f, rd_creds_provider *creds)
{
    for (int i = 0; i < FAKE_MAX; i++)
        free(f->body[i]);
    rd_creds_provider_free(creds);
}

/* One test's client on a fresh fake transport, with an error to pass it: FAKE_TEST(fn) runs fn with it as
 * *state (cmocka setup and teardown). */
typedef struct fake_env {
    rd_aws_client c;
    fake_http f;
    rd_creds_provider *creds;
    rd_error err;
} fake_env;

static inline int fake_setup(void **state)
{
    fake_env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    fake_client_init(&e->c, &e->f, &e->creds);
    rd_error_clear(&e->err);
    *state = e;
    return 0;
}

static inline int fake_teardown(void **state)
{
    fake_env *e = *state;
    fake_client_done(&e->f, e->creds);
    free(e);
    return 0;
}

#define FAKE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fake_setup, fake_teardown)

static inline void fake_script(fake_http *f, int status, const char *header, const char *value, const char *body)
{
    fake_reply r = { status, header, value, body };
    f->replies[f->n++] = r;
}

#endif
