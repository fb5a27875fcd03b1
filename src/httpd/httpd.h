/* httpd.h — an HTTP/1.1 server over libmicrohttpd, for the emulator and `redduck server`: listens on
 * 127.0.0.1 and ::1 by default (one port, or 0 for any free one) or on one given address, in plain HTTP or
 * TLS (libmicrohttpd's GnuTLS, from PEM files), a thread pool, connection limits and an
 * idle timeout, a cap on buffered request bodies checked before a byte of the body is read, and the
 * SIGINT/SIGTERM wait of a foreground server. It knows nothing of AWS: a handler (three or four callbacks)
 * decides what each request means.
 *
 * Threads: callbacks run on the pool's threads, several at once for different requests; the callbacks of
 * one request are called in order, never at the same time. rd_httpd_stop waits for running callbacks. */
#ifndef RD_HTTPD_H
#define RD_HTTPD_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "redduck/buf.h"
#include "redduck/error.h"
#include "redduck/headers.h"

typedef struct rd_httpd rd_httpd;
/* One request; owned by the server from its first line until on_done returns. */
typedef struct rd_httpd_request rd_httpd_request;

/* The answer. Either body (in memory, copied when sent) or a file range (fd >= 0: sent without copying;
 * the server closes fd, also when the response is never sent). Content-Length in headers is ignored (the
 * server computes it), except for HEAD with an empty body, where it is the length announced.
 * Shaping (network emulation; honoured by a thread_per_connection server only, since it sleeps on the
 * connection's thread; a pooled server sends such answers unshaped): first_byte_delay_ms holds the whole
 * answer back (status line included); pace_bytes_per_second > 0 sends a file range's body through a reader
 * (pread) at that pace, a token bucket per connection, instead of sendfile. */
typedef struct rd_httpd_response {
    int status;
    rd_headers headers;
    rd_buf body;
    int fd;
    uint64_t fd_offset;
    uint64_t fd_length;
    int64_t reset_after; /* >= 0: close the connection after this many body bytes (fault injection) */
    int reset_hard;      /* with reset_after: end with a TCP reset (RST), not a clean close */
    uint64_t pace_bytes_per_second; /* fd responses: 0 unpaced (sendfile); else at least 1000 (raised to it) */
    unsigned first_byte_delay_ms;   /* 0: none; at most 60000 (lowered to it) */
} rd_httpd_response;

void rd_httpd_response_init(rd_httpd_response *r);
/* Frees headers and body and closes fd (if >= 0); leaves r initialised. */
void rd_httpd_response_free(rd_httpd_response *r);

/* What on_headers wants done with the body. */
typedef enum rd_httpd_next {
    RD_HTTPD_ANSWER, /* resp is the answer now; the body is never read (the connection is closed after it) */
    RD_HTTPD_BUFFER, /* read the body into memory, up to the body limit, then call on_complete */
    RD_HTTPD_STREAM  /* hand each piece of the body to on_body, then call on_complete */
} rd_httpd_next;

typedef struct rd_httpd_handler {
    /* The request line and headers are in (rd_httpd_method, _uri, _headers). */
    rd_httpd_next (*on_headers)(void *ctx, rd_httpd_request *req, rd_httpd_response *resp);
    /* RD_HTTPD_STREAM only: one piece of the body (borrowed for the call). */
    void (*on_body)(void *ctx, rd_httpd_request *req, const char *data, size_t len);
    /* The whole body is in (rd_httpd_body for RD_HTTPD_BUFFER): fill resp. */
    void (*on_complete)(void *ctx, rd_httpd_request *req, rd_httpd_response *resp);
    /* RD_HTTPD_BUFFER over the body limit: fill resp with the refusal. before_body is 1 when Content-Length
     * said so and nothing was read, 0 when a body without a length ran over (the rest was dropped).
     * NULL: a plain 413. */
    void (*on_too_large)(void *ctx, rd_httpd_request *req, int before_body, size_t limit, rd_httpd_response *resp);
    /* The request is over: answered, or the client went away (then on_complete may never have run). May be
     * NULL. Frees what the handler hung on the request with rd_httpd_set_data. */
    void (*on_done)(void *ctx, rd_httpd_request *req);
    void *ctx; /* borrowed; must outlive the server */
} rd_httpd_handler;

typedef struct rd_httpd_options {
    int port;                /* 0: any free port (rd_httpd_port says which) */
    int threads;             /* pool size on 127.0.0.1 (::1 gets half); <= 0: 8 */
    int thread_per_connection; /* 1: no pool, one thread per connection (bounded by max_connections), for
                                  handlers that block: a slow callback holds up its own connection only; also
                                  what shaped responses (pace, first-byte delay) need */
    size_t max_body;         /* cap of a buffered body; 0: 8 MiB */
    unsigned max_connections;/* per address, also bounded by the open-files limit; 0: 1000 */
    unsigned per_ip_connections; /* 0: 256 */
    unsigned idle_timeout_seconds; /* 0: 60 */
    const char *server_name; /* the Server header, or NULL for none; borrowed until rd_httpd_stop */
    const char *host;        /* NULL: 127.0.0.1 and ::1; else one numeric IPv4 or IPv6 address ("0.0.0.0",
                              * "::", "10.0.0.5") or "localhost" (127.0.0.1), the only one listened on */
    const char *tls_cert_file; /* both set: TLS (PEM certificate chain and private key, read at start; the */
    const char *tls_key_file;  /* key is wiped from memory at stop); both NULL: plain HTTP */
} rd_httpd_options;

/* Starts listening on 127.0.0.1 (required) and ::1 (if the host has IPv6), or on opts->host only. handler is
 * copied. On failure *out is untouched and: RD_E_IO with the address in the message (cannot listen);
 * RD_E_USAGE for a host that is not a numeric address, or only one of the two TLS files; RD_E_CONFIG when
 * libmicrohttpd was built without TLS or a TLS file cannot be read or is refused. */
rd_status rd_httpd_start(const rd_httpd_options *opts, const rd_httpd_handler *handler, rd_httpd **out,
                         rd_error *err);
/* The port listened on. */
int rd_httpd_port(const rd_httpd *d);
/* 1 when the server speaks TLS. */
int rd_httpd_tls(const rd_httpd *d);
/* 1 when host (as rd_httpd_options.host takes it; NULL too) is a loopback address: 127.0.0.0/8, ::1,
 * "localhost". 0 for any other, malformed included. */
int rd_httpd_host_is_loopback(const char *host);
/* Splits "HOST:PORT" ("127.0.0.1:8470", "[::1]:8470", "0.0.0.0:0") into host (written into host, n bytes,
 * brackets removed) and *port (0..65535). RD_E_USAGE naming the problem (never the whole text beyond what
 * it is) when malformed. */
rd_status rd_httpd_parse_listen(const char *listen, char *host, size_t n, int *port, rd_error *err);
/* Stops accepting, ends the connections, waits for running callbacks, frees d. NULL is a no-op. */
void rd_httpd_stop(rd_httpd *d);

/* Request accessors; strings are borrowed until on_done. */
const char *rd_httpd_method(const rd_httpd_request *req);
const char *rd_httpd_uri(const rd_httpd_request *req); /* as sent: path and query, not percent-decoded */
const rd_headers *rd_httpd_headers(const rd_httpd_request *req);
const rd_buf *rd_httpd_body(const rd_httpd_request *req); /* the buffered body (RD_HTTPD_BUFFER) */
/* The client's address, numeric ("127.0.0.1", "::1"; "" when unknown): a peer's IP without the port. */
const char *rd_httpd_client_address(const rd_httpd_request *req);
void rd_httpd_set_data(rd_httpd_request *req, void *data);
/* This request's cap of a buffered body, instead of the server's max_body (0 keeps it): call it from
 * on_headers, before the body is read. Content-Length above it is refused before the body; a body without
 * a length stops being kept (and is dropped as it comes) once it passes it; on_too_large gets this limit.
 * Request and answer bodies are wiped from memory when freed. */
void rd_httpd_set_max_body(rd_httpd_request *req, size_t max);
size_t rd_httpd_max_body(const rd_httpd_request *req);
void *rd_httpd_data(const rd_httpd_request *req);

/* Graceful stop of a foreground server: block SIGINT and SIGTERM in the calling thread (call it before any
 * thread starts, so every thread inherits the mask), then wait for one. wait returns the signal, or 0 when
 * timeout_seconds (> 0) passed first; timeout_seconds <= 0 waits for ever. */
void rd_httpd_stop_signals_block(sigset_t *set);
int rd_httpd_stop_signals_wait(const sigset_t *set, int timeout_seconds);

#endif
