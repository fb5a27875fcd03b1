/* httpd.c — libmicrohttpd: the two loopback daemons (127.0.0.1, ::1) or one on a given address, plain or TLS,
 * per-request state, bodies buffered under a cap or streamed to the handler, responses from memory or a file
 * range (optionally cut short for fault injection, delayed or paced for network emulation), and the
 * stop-signal wait. What a request means is the
 * handler's business. */
#include "httpd/httpd.h"
#include "core/net.h"
#include "core/timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_THREADS 8
#define DEFAULT_MAX_BODY ((size_t)8 << 20)
#define DEFAULT_MAX_CONNECTIONS 1000u
#define DEFAULT_PER_IP_CONNECTIONS 256u /* leaves room for 64-way parallel downloads from one client */
#define DEFAULT_IDLE_TIMEOUT_SECONDS 60u
#define CONNECTION_MEMORY ((size_t)128 * 1024) /* headers and read buffer of one connection */
#define TLS_FILE_MAX ((size_t)1 << 20)         /* a PEM certificate chain or key */

struct rd_httpd {
    rd_httpd_handler h;
    size_t max_body;
    int thread_per_connection; /* shaping (delays, pacing) is honoured only then */
    char *server_name;
    struct MHD_Daemon *d4;
    struct MHD_Daemon *d6;
    int port;
    char *tls_cert; /* PEM, NUL-terminated; libmicrohttpd reads them at start and keeps the pointers */
    char *tls_key;
    size_t tls_key_len;
};

struct rd_httpd_request {
    char *uri;
    const char *method; /* libmicrohttpd's, valid for the connection's request */
    rd_headers headers;
    rd_buf body;
    int started;
    rd_httpd_next next;
    int too_large;
    size_t max_body; /* this request's cap: the server's, or what on_headers set */
    void *data;
    char client[INET6_ADDRSTRLEN];
};

void rd_httpd_response_init(rd_httpd_response *r)
{
    r->status = 200;
    rd_headers_init(&r->headers);
    rd_buf_init(&r->body);
    r->fd = -1;
    r->fd_offset = 0;
    r->fd_length = 0;
    r->reset_after = -1;
    r->reset_hard = 0;
    r->pace_bytes_per_second = 0;
    r->first_byte_delay_ms = 0;
}

void rd_httpd_response_free(rd_httpd_response *r)
{
    if (!r)
        return;
    rd_headers_free(&r->headers);
    rd_buf_free_secure(&r->body); /* answers may hold secrets (a variable's value) */
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

void rd_httpd_set_max_body(rd_httpd_request *req, size_t max)
{
    if (max)
        req->max_body = max;
}

size_t rd_httpd_max_body(const rd_httpd_request *req)
{
    return req->max_body;
}

const char *rd_httpd_method(const rd_httpd_request *req)
{
    return req->method;
}

const char *rd_httpd_uri(const rd_httpd_request *req)
{
    return req->uri;
}

const rd_headers *rd_httpd_headers(const rd_httpd_request *req)
{
    return &req->headers;
}

const rd_buf *rd_httpd_body(const rd_httpd_request *req)
{
    return &req->body;
}

const char *rd_httpd_client_address(const rd_httpd_request *req)
{
    return req->client;
}

void rd_httpd_set_data(rd_httpd_request *req, void *data)
{
    req->data = data;
}

void *rd_httpd_data(const rd_httpd_request *req)
{
    return req->data;
}

static void client_address(struct MHD_Connection *con, char *out, size_t n)
{
    out[0] = 0;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)n);
}

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)cls;
    rd_httpd_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    client_address(con, req->client, sizeof req->client);
    req->uri = strdup(uri ? uri : "/");
    rd_buf_init(&req->body);
    rd_headers_init(&req->headers);
    return req;
}

static void request_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)con;
    (void)toe;
    rd_httpd *d = cls;
    rd_httpd_request *req = *con_cls;
    if (!req)
        return;
    if (req->started && d->h.on_done)
        d->h.on_done(d->h.ctx, req);
    free(req->uri);
    rd_buf_free_secure(&req->body); /* request bodies may hold secrets (a variable's value) */
    rd_headers_free(&req->headers);
    free(req);
    *con_cls = NULL;
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    rd_headers_add(cls, key, value ? value : "");
    return MHD_YES;
}

/* A body served through a reader instead of sendfile or MHD's copy: from memory or a file range, cut after
 * `limit` bytes to inject a reset/truncation, and/or paced by a token bucket (the connection's thread sleeps;
 * thread-per-connection servers only). */
typedef struct body_reader {
    int fd;
    uint64_t offset;
    char *mem;
    uint64_t limit; /* bytes served; then the end: an error when cut, else the body's end */
    int cut;
    double rate;    /* bytes per second; 0: unpaced */
    double chunk;   /* the most one call serves when paced */
    double burst;   /* the bucket's size: a thread woken late catches up on this much, no more */
    double tokens;
    double last;    /* rd_monotonic_seconds of the last refill */
    int started;
} body_reader;

#define PACE_MIN 1000u             /* bytes per second */
#define FIRST_BYTE_DELAY_MAX_MS 60000u
#define READER_BLOCK ((size_t)64 * 1024)
#define PACE_BURST_MIN 512.0       /* bytes: at the slowest pace a call sleeps about half a second */
#define PACE_CATCH_UP_S 0.05       /* seconds of a paced connection's data a late thread may catch up on */

static void sleep_seconds(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void bucket_refill(body_reader *br)
{
    double now = rd_monotonic_seconds();
    br->tokens += (now - br->last) * br->rate;
    if (br->tokens > br->burst)
        br->tokens = br->burst;
    br->last = now;
}

/* Takes n tokens, sleeping until the bucket holds them (it starts with one call's worth: no burst at the
 * start, as a real link has none). */
static void bucket_take(body_reader *br, size_t n)
{
    if (!br->started) {
        br->started = 1;
        br->tokens = br->chunk;
        br->last = rd_monotonic_seconds();
    }
    bucket_refill(br);
    if (br->tokens < (double)n) {
        sleep_seconds(((double)n - br->tokens) / br->rate);
        bucket_refill(br);
    }
    br->tokens -= (double)n;
}

static ssize_t body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    body_reader *br = cls;
    if (pos >= br->limit)
        return br->cut ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = max;
    if (br->rate > 0 && (double)n > br->chunk)
        n = (size_t)br->chunk;
    if (pos + n > br->limit)
        n = (size_t)(br->limit - pos);
    if (br->rate > 0)
        bucket_take(br, n);
    if (br->mem) {
        memcpy(buf, br->mem + pos, n);
        return (ssize_t)n;
    }
    ssize_t r = pread(br->fd, buf, n, (off_t)(br->offset + pos));
    return r > 0 ? r : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void body_reader_free(void *cls)
{
    body_reader *br = cls;
    if (br->fd >= 0)
        close(br->fd);
    free(br->mem);
    free(br);
}

static ssize_t never_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

/* A response body MHD sends from our memory and hands back to wiped_mem_free. */
typedef struct wiped_mem {
    size_t n;
    char data[];
} wiped_mem;

static void wiped_mem_free(void *p)
{
    wiped_mem *w = p;
    if (w) {
        explicit_bzero(w->data, w->n);
        free(w);
    }
}

static enum MHD_Result send_response(rd_httpd *d, struct MHD_Connection *con, const char *method,
                                     rd_httpd_response *r)
{
    struct MHD_Response *mr = NULL;
    uint64_t full = r->fd >= 0 ? r->fd_length : r->body.len;
    /* shaping sleeps on the connection's thread: only where each connection has its own */
    if (d->thread_per_connection && r->first_byte_delay_ms)
        sleep_seconds((r->first_byte_delay_ms < FIRST_BYTE_DELAY_MAX_MS ? r->first_byte_delay_ms
                                                                        : FIRST_BYTE_DELAY_MAX_MS) / 1e3);
    uint64_t pace = d->thread_per_connection && r->fd >= 0 ? r->pace_bytes_per_second : 0;
    if (pace && pace < PACE_MIN)
        pace = PACE_MIN;
    int cut = r->reset_after >= 0 && (uint64_t)r->reset_after < full;
    if (cut || (pace && full > 0)) {
        body_reader *br = calloc(1, sizeof *br);
        if (!br)
            return MHD_NO;
        br->fd = r->fd;
        br->offset = r->fd_offset;
        br->cut = cut;
        br->limit = cut ? (uint64_t)r->reset_after : full;
        br->rate = (double)pace;
        br->chunk = br->rate / 20; /* about 50 ms of data per call, at most a block */
        if (br->chunk < PACE_BURST_MIN)
            br->chunk = PACE_BURST_MIN;
        if (br->chunk > (double)READER_BLOCK)
            br->chunk = (double)READER_BLOCK;
        /* The bucket holds PACE_CATCH_UP_S of data: with many paced connections on few cores a thread is
         * often woken late, and a bucket of one call's size would lose that time for good, pacing each
         * connection below its rate. The long-run average stays the rate. */
        br->burst = br->rate * PACE_CATCH_UP_S;
        if (br->burst < br->chunk)
            br->burst = br->chunk;
        if (r->fd < 0) {
            br->mem = malloc(r->body.len + 1);
            if (!br->mem) {
                free(br);
                return MHD_NO;
            }
            memcpy(br->mem, rd_buf_cstr(&r->body), r->body.len);
        }
        r->fd = -1;
        mr = MHD_create_response_from_callback(full, READER_BLOCK, body_read, br, body_reader_free);
        if (!mr) {
            body_reader_free(br);
            return MHD_NO;
        }
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (cut && r->reset_hard && ci) { /* closing with a zero linger time sends RST: a reset, not a short body */
            struct linger lg = { 1, 0 };
            setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
    } else if (r->fd >= 0) {
        mr = MHD_create_response_from_fd_at_offset64(r->fd_length, r->fd, r->fd_offset);
        r->fd = -1; /* MHD closes it */
    } else if (strcmp(method, "HEAD") == 0 && rd_headers_get(&r->headers, "Content-Length")) {
        uint64_t len = strtoull(rd_headers_get(&r->headers, "Content-Length"), NULL, 10);
        mr = MHD_create_response_from_callback(len, 4096, never_read, NULL, NULL);
    } else {
        /* handed to MHD in a block it wipes when done (MHD's own copy would be freed as it is) */
        wiped_mem *w = malloc(sizeof *w + r->body.len + 1);
        if (!w)
            return MHD_NO;
        w->n = r->body.len;
        if (r->body.len)
            memcpy(w->data, r->body.data, r->body.len);
        mr = MHD_create_response_from_buffer_with_free_callback_cls(w->n, w->data, wiped_mem_free, w);
        if (!mr)
            wiped_mem_free(w);
    }
    if (!mr)
        return MHD_NO;
    for (size_t i = 0; i < r->headers.count; i++) {
        if (strcasecmp(r->headers.items[i].name, "Content-Length") == 0)
            continue;
        MHD_add_response_header(mr, r->headers.items[i].name, r->headers.items[i].value);
    }
    if (d->server_name)
        MHD_add_response_header(mr, "Server", d->server_name);
    enum MHD_Result ret = MHD_queue_response(con, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static void too_large(rd_httpd *d, rd_httpd_request *req, int before_body, rd_httpd_response *resp)
{
    if (d->h.on_too_large) {
        d->h.on_too_large(d->h.ctx, req, before_body, req->max_body, resp);
        return;
    }
    resp->status = 413;
    rd_headers_set(&resp->headers, "Content-Type", "text/plain");
    rd_buf_printf(&resp->body, "request body larger than %zu bytes\n", req->max_body);
}

/* 1 if Content-Length is present and above the cap. */
static int declared_too_large(const rd_httpd_request *req, size_t limit)
{
    const char *cl = rd_headers_get(&req->headers, "Content-Length");
    return cl && strtoull(cl, NULL, 10) > limit;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)url;
    (void)version;
    rd_httpd *d = cls;
    rd_httpd_request *req = *con_cls;
    if (!req || !req->uri)
        return MHD_NO;
    rd_httpd_response resp;
    if (!req->started) {
        req->started = 1;
        req->method = method;
        MHD_get_connection_values(con, MHD_HEADER_KIND, collect_header, &req->headers);
        rd_httpd_response_init(&resp);
        req->max_body = d->max_body;
        req->next = d->h.on_headers(d->h.ctx, req, &resp);
        if (req->next == RD_HTTPD_BUFFER && declared_too_large(req, req->max_body)) {
            too_large(d, req, 1, &resp);
            req->next = RD_HTTPD_ANSWER;
        }
        if (req->next != RD_HTTPD_ANSWER) {
            rd_httpd_response_free(&resp);
            return MHD_YES;
        }
        /* answered from the headers: libmicrohttpd discards the body and closes the connection */
        enum MHD_Result r = send_response(d, con, method, &resp);
        rd_httpd_response_free(&resp);
        return r;
    }
    if (*upload_data_size) {
        if (req->next == RD_HTTPD_STREAM) {
            if (d->h.on_body)
                d->h.on_body(d->h.ctx, req, upload_data, *upload_data_size);
        } else if (!req->too_large && req->body.len + *upload_data_size > req->max_body) {
            req->too_large = 1; /* a body without Content-Length ran over: dropped as it comes */
            rd_buf_free_secure(&req->body);
        } else if (!req->too_large) {
            rd_buf_append(&req->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    rd_httpd_response_init(&resp);
    if (req->too_large)
        too_large(d, req, 0, &resp);
    else
        d->h.on_complete(d->h.ctx, req, &resp);
    enum MHD_Result r = send_response(d, con, method, &resp);
    rd_httpd_response_free(&resp);
    return r;
}

/* Connections per listening address: the wanted number, or fewer when the open-files limit is lower (a
 * served file holds its socket and the file). */
static unsigned connection_limit(unsigned wanted)
{
    struct rlimit rl;
    unsigned limit = wanted;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t fit = rl.rlim_cur > 256 ? (rl.rlim_cur - 128) / 3 : 32;
        if (fit < limit)
            limit = (unsigned)fit;
    }
    return limit;
}

/* The address to listen on: loopback of the family when host is NULL, else host (numeric, or "localhost"). */
static int listen_address(const char *host, int family, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)ss;
    if (host && strcmp(host, "localhost") == 0)
        host = family == AF_INET ? "127.0.0.1" : "::1";
    if (family == AF_INET) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        if (!host)
            a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return -1;
    } else {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (!host)
            a6->sin6_addr = in6addr_loopback;
        else if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return -1;
    }
    return 0;
}

static struct MHD_Daemon *start_daemon(rd_httpd *d, const rd_httpd_options *o, const struct sockaddr_storage *ss,
                                       int port, int threads)
{
    /* a pool of epoll threads, each serving many connections; or one thread per connection, so that a handler
     * that blocks (a long poll, a query) holds up its own connection only */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     (o->thread_per_connection ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL : MHD_USE_EPOLL | MHD_USE_TURBO);
    if (o->thread_per_connection)
        threads = 1; /* no pool */
    if (ss->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (d->tls_cert)
        flags |= MHD_USE_TLS;
    unsigned limit = connection_limit(o->max_connections ? o->max_connections : DEFAULT_MAX_CONNECTIONS);
    unsigned per_ip = o->per_ip_connections ? o->per_ip_connections : DEFAULT_PER_IP_CONNECTIONS;
    unsigned idle = o->idle_timeout_seconds ? o->idle_timeout_seconds : DEFAULT_IDLE_TIMEOUT_SECONDS;
    /* the TLS options last: without TLS the list ends before them */
    return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, d, MHD_OPTION_SOCK_ADDR, ss,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_URI_LOG_CALLBACK, uri_logger,
                            NULL, MHD_OPTION_NOTIFY_COMPLETED, request_completed, d, MHD_OPTION_UNESCAPE_CALLBACK,
                            no_unescape, NULL, MHD_OPTION_CONNECTION_TIMEOUT, idle, MHD_OPTION_CONNECTION_LIMIT,
                            limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip < limit ? per_ip : limit,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY,
                            d->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, d->tls_cert,
                            MHD_OPTION_HTTPS_MEM_KEY, d->tls_key, MHD_OPTION_END);
}

/* Reads a PEM file whole (at most TLS_FILE_MAX bytes), NUL-terminated. Messages name the file, never its
 * contents. */
static rd_status read_pem(const char *what, const char *path, char **out, size_t *len, rd_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rd_error_set(err, RD_E_CONFIG, "cannot read the TLS %s %s: %s", what, path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (size_t)sb.st_size > TLS_FILE_MAX) {
        close(fd);
        return rd_error_set(err, RD_E_CONFIG, "the TLS %s %s is not a PEM file of at most %zu bytes", what, path,
                            TLS_FILE_MAX);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    size_t got = 0;
    while (buf && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != n) {
        if (buf) {
            memset(buf, 0, n);
            free(buf);
        }
        return rd_error_set(err, RD_E_CONFIG, "cannot read the TLS %s %s", what, path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return RD_OK;
}

static void wipe_free(char *p, size_t n)
{
    if (!p)
        return;
    volatile char *v = p;
    for (size_t i = 0; i < n; i++)
        v[i] = 0;
    free(p);
}

int rd_httpd_host_is_loopback(const char *host)
{
    return !host || strcmp(host, "localhost") == 0 || rd_ip_is_loopback(host);
}

rd_status rd_httpd_parse_listen(const char *listen, char *host, size_t n, int *port, rd_error *err)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || colon == listen)
        return rd_error_set(err, RD_E_USAGE, "--listen takes HOST:PORT (e.g. 127.0.0.1:8470 or [::1]:8470)");
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return rd_error_set(err, RD_E_USAGE, "--listen: an IPv6 address is written in brackets ([::1]:8470)");
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl)) {
        return rd_error_set(err, RD_E_USAGE, "--listen: an IPv6 address is written in brackets ([::1]:8470)");
    }
    if (hl + 1 > n)
        return rd_error_set(err, RD_E_USAGE, "--listen: the host is too long");
    const char *p = colon + 1;
    long v = 0;
    if (!*p || strlen(p) > 5)
        return rd_error_set(err, RD_E_USAGE, "--listen: the port must be a number from 0 to 65535");
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return rd_error_set(err, RD_E_USAGE, "--listen: the port must be a number from 0 to 65535");
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return rd_error_set(err, RD_E_USAGE, "--listen: the port must be a number from 0 to 65535");
    memcpy(host, h, hl);
    host[hl] = 0;
    struct sockaddr_storage ss;
    if (listen_address(host, strchr(host, ':') ? AF_INET6 : AF_INET, 0, &ss) != 0)
        return rd_error_set(err, RD_E_USAGE, "--listen: '%s' is not a numeric IPv4 or IPv6 address (or localhost)",
                            host);
    *port = (int)v;
    return RD_OK;
}

rd_status rd_httpd_start(const rd_httpd_options *opts, const rd_httpd_handler *handler, rd_httpd **out,
                         rd_error *err)
{
    if (!opts || !handler || !handler->on_headers || !handler->on_complete)
        return rd_error_set(err, RD_E_INTERNAL, "rd_httpd_start: options and a handler are required");
    if (!opts->tls_cert_file != !opts->tls_key_file)
        return rd_error_set(err, RD_E_USAGE, "TLS needs both a certificate and a key file");
    if (opts->tls_cert_file && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return rd_error_set(err, RD_E_CONFIG, "this libmicrohttpd was built without TLS support: "
                            "install one built with GnuTLS, or serve plain HTTP on loopback");
    const char *host = opts->host;
    int family = host && strchr(host, ':') ? AF_INET6 : AF_INET;
    struct sockaddr_storage ss4, ss6;
    if (listen_address(host, family, opts->port, &ss4) != 0)
        return rd_error_set(err, RD_E_USAGE, "'%s' is not a numeric IPv4 or IPv6 address (or localhost)", host);
    rd_httpd *d = calloc(1, sizeof *d);
    if (!d)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    d->h = *handler;
    d->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
    d->thread_per_connection = opts->thread_per_connection != 0;
    d->server_name = opts->server_name ? strdup(opts->server_name) : NULL;
    if (opts->tls_cert_file) {
        size_t cert_len = 0;
        rd_status st = read_pem("certificate", opts->tls_cert_file, &d->tls_cert, &cert_len, err);
        if (st == RD_OK)
            st = read_pem("key", opts->tls_key_file, &d->tls_key, &d->tls_key_len, err);
        if (st != RD_OK) {
            rd_httpd_stop(d);
            return st;
        }
    }
    int threads = opts->threads > 0 ? opts->threads : DEFAULT_THREADS;
    d->d4 = start_daemon(d, opts, &ss4, opts->port, threads);
    if (!d->d4) {
        int e = errno;
        char shown[INET6_ADDRSTRLEN + 2];
        snprintf(shown, sizeof shown, family == AF_INET6 ? "[%s]" : "%s", host ? host : "127.0.0.1");
        rd_status st = d->tls_cert
                           ? rd_error_set(err, RD_E_CONFIG, "cannot listen on %s:%d with TLS (%s): check that "
                                          "the certificate and key are PEM files that match, and the port",
                                          shown, opts->port, strerror(e))
                           : rd_error_set(err, RD_E_IO, "cannot listen on %s:%d (%s): pick another --port", shown,
                                          opts->port, strerror(e));
        rd_httpd_stop(d);
        return st;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d->d4, MHD_DAEMON_INFO_BIND_PORT);
    d->port = di ? di->port : opts->port;
    if (!host && listen_address(NULL, AF_INET6, d->port, &ss6) == 0) /* optional */
        d->d6 = start_daemon(d, opts, &ss6, d->port, threads > 2 ? threads / 2 : 1);
    *out = d;
    return RD_OK;
}

int rd_httpd_port(const rd_httpd *d)
{
    return d->port;
}

int rd_httpd_tls(const rd_httpd *d)
{
    return d->tls_cert != NULL;
}

void rd_httpd_stop(rd_httpd *d)
{
    if (!d)
        return;
    if (d->d6)
        MHD_stop_daemon(d->d6);
    if (d->d4)
        MHD_stop_daemon(d->d4);
    free(d->server_name);
    free(d->tls_cert);
    wipe_free(d->tls_key, d->tls_key_len);
    free(d);
}

void rd_httpd_stop_signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

int rd_httpd_stop_signals_wait(const sigset_t *set, int timeout_seconds)
{
    int sig = 0;
    if (timeout_seconds > 0) {
        struct timespec ts = { timeout_seconds, 0 };
        sig = sigtimedwait(set, NULL, &ts);
        return sig > 0 ? sig : 0;
    }
    if (sigwait(set, &sig) != 0)
        return 0;
    return sig;
}
