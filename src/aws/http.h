/* http.h — the HTTP transport: one request in, one response out. A small vtable so tests and the
 * emulator can swap the real libcurl transport for a fake.
 * Owns: connection reuse, connect/idle timeouts, proxies (libcurl honours http_proxy/https_proxy/no_proxy),
 * TLS (verification always on; a custom CA bundle from AWS_CA_BUNDLE / the profile's ca_bundle), the
 * User-Agent. Every libcurl easy handle of redduck (single requests and the parallel downloader's, which
 * come through rd_http_multi) is set up in one place in http.c: User-Agent, timeouts, TLS through
 * rd_http_apply_tls, protocols, no signals; certificate errors are read with rd_http_tls_failure.
 * Does not own: signing, retries (see aws/client.h), AWS error parsing. HTTP error statuses are not errors
 * here: a 500 is a successful exchange with status 500. */
#ifndef RD_AWS_HTTP_H
#define RD_AWS_HTTP_H

#include <curl/curl.h>
#include <stddef.h>

#include "core/log.h"
#include "redduck/buf.h"
#include "redduck/error.h"
#include "redduck/headers.h"

#define RD_USER_AGENT_PRODUCT "redduck"

typedef struct rd_http_request {
    const char *method;        /* "GET", "PUT", ... */
    const char *url;           /* full URL, already encoded */
    const rd_headers *headers; /* sent as given (the transport adds User-Agent if absent) */
    const void *body;          /* may be NULL */
    size_t body_len;
    long timeout_ms;           /* 0: the transport's default */
    /* Optional streaming sink: when set, body bytes go here instead of response->body. Return the number of
     * bytes taken; anything else aborts the transfer (RD_E_IO). response->status is set before the first
     * call, so a sink can tell a 2xx body from an error body. */
    size_t (*on_body)(void *ctx, const void *data, size_t len);
    void *on_body_ctx;
} rd_http_request;

typedef struct rd_http_response {
    int status;         /* HTTP status, 0 until a response arrived */
    rd_headers headers; /* response headers, names as received */
    rd_buf body;        /* unless request->on_body was set */
} rd_http_response;

void rd_http_response_init(rd_http_response *r);
/* Both wipe the body first (OPENSSL_cleanse): replies carry credentials and tokens. */
void rd_http_response_reset(rd_http_response *r); /* empties for a retry */
void rd_http_response_free(rd_http_response *r);

typedef struct rd_http_transport rd_http_transport;
typedef struct rd_http_transport_vtable {
    /* Thread-safe: may be called from several threads at once. Connection failures, resets and timeouts
     * return RD_E_NETWORK with curl's message (host named, no secrets). */
    rd_status (*send)(rd_http_transport *t, const rd_http_request *req, rd_http_response *resp, rd_error *err);
    void (*destroy)(rd_http_transport *t);
} rd_http_transport_vtable;

struct rd_http_transport {
    const rd_http_transport_vtable *vt;
};

typedef struct rd_http_options {
    long connect_timeout_ms; /* 0: 10000 */
    long timeout_ms;         /* whole-request default, 0: 120000; low-speed (idle) limit 30 s */
    const char *user_agent;  /* NULL: "redduck/<version>" */
    const rd_log *log;       /* not owned; may be NULL */
    const char *ca_bundle;   /* CA certificates (PEM file) to trust instead of the system's; NULL: system. Copied */
} rd_http_options;

/* The libcurl transport. Caller frees with rd_http_transport_free. A certificate problem (see
 * rd_http_tls_failure) is RD_E_CONFIG, not RD_E_NETWORK: it is fixed by configuration, never by a retry. */
rd_status rd_http_curl_new(const rd_http_options *opts, rd_http_transport **out, rd_error *err);

rd_status rd_http_send(rd_http_transport *t, const rd_http_request *req, rd_http_response *resp, rd_error *err);
void rd_http_transport_free(rd_http_transport *t);

/* Many requests at once, driven from one thread (the parallel downloader). On the libcurl transport they
 * run in parallel on curl multi, each handle set up as rd_http_send's, each on its own connection (no HTTP/2
 * multiplexing), any number to one host, connections kept alive for reuse (at least 16, and twice the most
 * requests run at once); any other transport (the test fake) serves them one at a time through its send, so
 * downloads are tested without a server.
 * Not thread-safe: one thread adds, drives and frees. The transport is borrowed and must outlive it. */
typedef struct rd_http_multi rd_http_multi;

rd_status rd_http_multi_new(rd_http_transport *t, rd_http_multi **out, rd_error *err);
/* Starts req (URL and headers copied; body borrowed until the request is reported done). resp is borrowed,
 * filled as by rd_http_send; user is handed back by rd_http_multi_next. */
rd_status rd_http_multi_add(rd_http_multi *m, const rd_http_request *req, rd_http_response *resp, void *user,
                            rd_error *err);
/* Moves the transfers on without blocking. 1 when a request is finished: *user set, *st the result as
 * rd_http_send returns it (err filled when not RD_OK); 0 when none finished. */
int rd_http_multi_next(rd_http_multi *m, void **user, rd_status *st, rd_error *err);
/* New connections the finished requests opened (libcurl's CURLINFO_NUM_CONNECTS): fewer than the requests
 * when connections were reused. 0 on a transport without curl multi. NULL: 0. */
size_t rd_http_multi_connections(const rd_http_multi *m);
/* Waits up to ms for network activity (or simply ms when nothing runs). */
void rd_http_multi_wait(rd_http_multi *m, long ms);
/* Abandons what is still running. NULL is a no-op. */
void rd_http_multi_free(rd_http_multi *m);

/* TLS settings for any libcurl easy handle: peer and host verification on (always), ca_bundle (a PEM file,
 * may be NULL: the system store) as the trusted CAs. RD_E_INTERNAL if libcurl refuses an option. */
rd_status rd_http_apply_tls(CURL *h, const char *ca_bundle);

/* 1 when rc is a certificate problem (untrusted or mismatched server certificate, unreadable CA bundle):
 * not retryable, since it will fail again. Then msg gets "the TLS certificate of HOST is not trusted (...):
 * set AWS_CA_BUNDLE (or ca_bundle in the profile) to your CA bundle" (or names the bad bundle file).
 * detail is curl's error buffer (may be NULL or ""). 0 otherwise (msg untouched). */
int rd_http_tls_failure(CURLcode rc, const char *url, const char *ca_bundle, const char *detail, char *msg,
                        size_t msg_len);

/* 1 if the URL's host is 127.0.0.0/8, ::1 or "localhost". */
int rd_url_is_loopback(const char *url);

#endif
