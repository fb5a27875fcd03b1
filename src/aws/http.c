/* http.c — the libcurl transport (see http.h): a mutex-protected pool of easy handles so connections are
 * reused across calls and threads; TLS verification always on; proxies from the environment (libcurl's
 * defaults); timeouts; streaming response sinks; rd_http_multi over curl multi for many requests at once. */
#include "aws/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define POOL_MAX 64

typedef struct curl_transport {
    rd_http_transport base;
    pthread_mutex_t lock;
    CURL *pool[POOL_MAX];
    size_t pooled;
    long connect_timeout_ms;
    long timeout_ms;
    char *user_agent;
    char *ca_bundle;
    const rd_log *log;
} curl_transport;

void rd_http_response_init(rd_http_response *r)
{
    r->status = 0;
    rd_headers_init(&r->headers);
    rd_buf_init(&r->body);
}

void rd_http_response_reset(rd_http_response *r)
{
    r->status = 0;
    rd_headers_free(&r->headers);
    /* a failed attempt's body may hold credentials: wipe it, not just forget it */
    if (r->body.data)
        OPENSSL_cleanse(r->body.data, r->body.cap);
    rd_buf_reset(&r->body);
}

void rd_http_response_free(rd_http_response *r)
{
    if (!r)
        return;
    rd_headers_free(&r->headers);
    rd_buf_free_secure(&r->body);
    r->status = 0;
}

typedef struct xfer {
    rd_http_response *resp;
    const rd_http_request *req;
    int sink_failed;
} xfer;

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (x->req->on_body) {
        size_t took = x->req->on_body(x->req->on_body_ctx, data, len);
        if (took != len)
            x->sink_failed = 1;
        return took;
    }
    return rd_buf_append(&x->resp->body, data, len) == RD_OK ? len : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new response (after 100-continue or a redirect): start over; its status is known from here on,
         * before the first body byte reaches a sink */
        rd_headers_free(&x->resp->headers);
        const char *p = memchr(data, ' ', len);
        int status = 0;
        for (p = p ? p + 1 : data + len; p < data + len && *p >= '0' && *p <= '9' && status < 1000; p++)
            status = status * 10 + (*p - '0');
        x->resp->status = status;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1;
    const char *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    char *name = strndup(data, nlen);
    char *value = strndup(v, (size_t)(end - v));
    if (name && value)
        rd_headers_add(&x->resp->headers, name, value);
    free(name);
    free(value);
    return len;
}

static CURL *pool_take(curl_transport *t)
{
    CURL *h = NULL;
    pthread_mutex_lock(&t->lock);
    if (t->pooled)
        h = t->pool[--t->pooled];
    pthread_mutex_unlock(&t->lock);
    if (!h)
        h = curl_easy_init();
    else
        curl_easy_reset(h);
    return h;
}

static void pool_give(curl_transport *t, CURL *h)
{
    pthread_mutex_lock(&t->lock);
    if (t->pooled < POOL_MAX) {
        t->pool[t->pooled++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&t->lock);
    if (h)
        curl_easy_cleanup(h);
}

/* "scheme://host[:port]/..." → host, for messages. */
static void url_host(const char *url, char *out, size_t len)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    snprintf(out, len, "%.*s", (int)n, p);
}

/* The one setup of a redduck libcurl easy handle, for rd_http_send and rd_http_multi alike: request line,
 * headers, User-Agent, callbacks into x, timeouts, TLS (rd_http_apply_tls), protocols, no signals. *hl gets
 * the header list to free after the transfer. RD_E_INTERNAL (err set) if libcurl refuses the TLS settings. */
static rd_status easy_setup(curl_transport *t, CURL *h, const rd_http_request *req, xfer *x,
                            struct curl_slist **hl_out, char *errbuf, rd_error *err)
{
    struct curl_slist *hl = NULL;
    int has_ua = 0;
    for (size_t i = 0; req->headers && i < req->headers->count; i++) {
        const rd_header *hd = &req->headers->items[i];
        if (strcasecmp(hd->name, "User-Agent") == 0)
            has_ua = 1;
        rd_buf line = RD_BUF_INIT;
        if (hd->value[0])
            rd_buf_printf(&line, "%s: %s", hd->name, hd->value);
        else
            rd_buf_printf(&line, "%s;", hd->name); /* curl's way to send an empty value */
        hl = curl_slist_append(hl, rd_buf_cstr(&line));
        rd_buf_free(&line);
    }
    hl = curl_slist_append(hl, "Expect:");
    if (!req->headers || !rd_headers_get(req->headers, "Accept"))
        hl = curl_slist_append(hl, "Accept:");
    if (!req->headers || !rd_headers_get(req->headers, "Content-Type"))
        hl = curl_slist_append(hl, "Content-Type:");
    *hl_out = hl;

    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, has_ua ? NULL : t->user_agent);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : t->timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
    if (rd_http_apply_tls(h, t->ca_bundle) != RD_OK)
        return rd_error_set(err, RD_E_INTERNAL, "libcurl refused the TLS settings (CA bundle %s)",
                            t->ca_bundle ? t->ca_bundle : "of the system");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"); /* proxies: libcurl's defaults (environment) */

    const char *m = req->method ? req->method : "GET";
    if (strcmp(m, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    return RD_OK;
}

/* The error of a transfer that ended with rc != CURLE_OK: RD_E_IO (the sink refused), RD_E_CONFIG (a
 * certificate problem), RD_E_NETWORK otherwise. */
static rd_status transfer_error(const curl_transport *t, CURLcode rc, const rd_http_request *req, const xfer *x,
                                const char *errbuf, rd_error *err)
{
    char host[256];
    url_host(req->url, host, sizeof host);
    char tls[RD_ERROR_MSG_MAX];
    rd_status st;
    if (x->sink_failed || rc == CURLE_WRITE_ERROR)
        st = rd_error_set(err, RD_E_IO, "receiving from %s: the local sink refused the data", host);
    else if (rd_http_tls_failure(rc, req->url, t->ca_bundle, errbuf, tls, sizeof tls))
        st = rd_error_set(err, RD_E_CONFIG, "%s", tls); /* names the host */
    else
        st = rd_error_set(err, RD_E_NETWORK, "%s %s: %s", req->method ? req->method : "GET", host,
                          errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (err)
        err->http_status = 0;
    return st;
}

static rd_status curl_send(rd_http_transport *base, const rd_http_request *req, rd_http_response *resp,
                           rd_error *err)
{
    curl_transport *t = (curl_transport *)base;
    CURL *h = pool_take(t);
    if (!h)
        return rd_error_set(err, RD_E_INTERNAL, "cannot create an HTTP handle (out of memory)");
    xfer x = { resp, req, 0 };
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hl = NULL;
    rd_status st = easy_setup(t, h, req, &x, &hl, errbuf, err);
    if (st != RD_OK) {
        curl_slist_free_all(hl);
        pool_give(t, h);
        return st;
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    resp->status = (int)status;
    curl_slist_free_all(hl);
    if (rc != CURLE_OK)
        st = transfer_error(t, rc, req, &x, errbuf, err);
    pool_give(t, h); /* a broken connection is dropped by curl itself */
    return st;
}

static void curl_destroy(rd_http_transport *base)
{
    curl_transport *t = (curl_transport *)base;
    for (size_t i = 0; i < t->pooled; i++)
        curl_easy_cleanup(t->pool[i]);
    pthread_mutex_destroy(&t->lock);
    free(t->user_agent);
    free(t->ca_bundle);
    free(t);
}

static const rd_http_transport_vtable curl_vtable = { curl_send, curl_destroy };

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_global(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

rd_status rd_http_curl_new(const rd_http_options *opts, rd_http_transport **out, rd_error *err)
{
    pthread_once(&curl_once, curl_global);
    curl_transport *t = calloc(1, sizeof *t);
    if (!t)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    t->base.vt = &curl_vtable;
    pthread_mutex_init(&t->lock, NULL);
    t->connect_timeout_ms = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
    t->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 120000;
    t->user_agent = strdup(opts && opts->user_agent ? opts->user_agent : RD_USER_AGENT_PRODUCT "/" RD_VERSION);
    t->log = opts ? opts->log : NULL;
    if (opts && opts->ca_bundle && !(t->ca_bundle = strdup(opts->ca_bundle))) {
        curl_destroy(&t->base);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    *out = &t->base;
    return RD_OK;
}

rd_status rd_http_send(rd_http_transport *t, const rd_http_request *req, rd_http_response *resp, rd_error *err)
{
    return t->vt->send(t, req, resp, err);
}

void rd_http_transport_free(rd_http_transport *t)
{
    if (t)
        t->vt->destroy(t);
}

/* --- many requests at once (rd_http_multi) ------------------------------------------------------------ */

typedef struct multi_req {
    struct multi_req *next;
    rd_http_request req; /* a copy: url and headers point at the two fields below */
    char *url;
    rd_headers headers;
    rd_http_response *resp;
    void *user;
    CURL *h;             /* NULL on a transport without curl multi */
    struct curl_slist *hl;
    xfer x;
    char errbuf[CURL_ERROR_SIZE];
} multi_req;

struct rd_http_multi {
    rd_http_transport *t;
    curl_transport *curl; /* NULL: served one at a time through t's send */
    CURLM *cm;
    multi_req *head, *tail; /* running (curl) or queued, in the order added */
    size_t running, peak;   /* requests added and not reported done; the most at once */
    size_t connections;     /* new connections the finished requests opened */
};

/* Connections kept alive between requests: at least this many, else twice the most requests run at once. */
#define MULTI_KEEP_MIN 16

static void multi_req_free(rd_http_multi *m, multi_req *r)
{
    if (r->h) {
        curl_multi_remove_handle(m->cm, r->h);
        curl_easy_cleanup(r->h);
    }
    curl_slist_free_all(r->hl);
    rd_headers_free(&r->headers);
    free(r->url);
    free(r);
}

static void multi_unlink(rd_http_multi *m, multi_req *r)
{
    multi_req **pp = &m->head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = r->next;
    if (m->tail == r)
        m->tail = prev;
    r->next = NULL;
}

rd_status rd_http_multi_new(rd_http_transport *t, rd_http_multi **out, rd_error *err)
{
    rd_http_multi *m = calloc(1, sizeof *m);
    if (!m)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    m->t = t;
    if (t->vt == &curl_vtable) {
        m->curl = (curl_transport *)t;
        if (!(m->cm = curl_multi_init())) {
            free(m);
            return rd_error_set(err, RD_E_INTERNAL, "cannot create an HTTP multi handle (out of memory)");
        }
        /* One connection per request, as s3transfer and s5cmd use: a single connection's rate is what ranged
         * downloads spread over many, so HTTP/2 multiplexing onto one connection would defeat them. Any number
         * of connections to one host (CURLMOPT_MAX_HOST_CONNECTIONS stays 0: the caller bounds concurrency).
         * The keep-alive cache: by default curl keeps 4 per handle still added, so after a quiet spell of one
         * request at a time it closes the others and the next burst opens new connections (TLS handshakes
         * again); here it is fixed at MULTI_KEEP_MIN and grows with the most requests run at once. */
        curl_multi_setopt(m->cm, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
        curl_multi_setopt(m->cm, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
        curl_multi_setopt(m->cm, CURLMOPT_MAXCONNECTS, (long)MULTI_KEEP_MIN);
    }
    *out = m;
    return RD_OK;
}

rd_status rd_http_multi_add(rd_http_multi *m, const rd_http_request *req, rd_http_response *resp, void *user,
                            rd_error *err)
{
    multi_req *r = calloc(1, sizeof *r);
    if (!r)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_headers_init(&r->headers);
    r->req = *req;
    r->url = strdup(req->url);
    if (!r->url || (req->headers && rd_headers_copy(&r->headers, req->headers) != RD_OK)) {
        multi_req_free(m, r);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    r->req.url = r->url;
    r->req.headers = &r->headers;
    r->resp = resp;
    r->user = user;
    r->x = (xfer){ resp, &r->req, 0 };
    if (m->curl) {
        if (!(r->h = curl_easy_init())) {
            multi_req_free(m, r);
            return rd_error_set(err, RD_E_INTERNAL, "cannot create an HTTP handle (out of memory)");
        }
        rd_status st = easy_setup(m->curl, r->h, &r->req, &r->x, &r->hl, r->errbuf, err);
        curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
        if (st == RD_OK && curl_multi_add_handle(m->cm, r->h) != CURLM_OK)
            st = rd_error_set(err, RD_E_INTERNAL, "libcurl refused a transfer of %s", r->url);
        if (st != RD_OK) {
            curl_easy_cleanup(r->h);
            r->h = NULL;
            multi_req_free(m, r);
            return st;
        }
    }
    if (m->tail)
        m->tail->next = r;
    else
        m->head = r;
    m->tail = r;
    if (++m->running > m->peak) {
        m->peak = m->running;
        if (m->cm && 2 * m->peak > MULTI_KEEP_MIN)
            curl_multi_setopt(m->cm, CURLMOPT_MAXCONNECTS, (long)(2 * m->peak));
    }
    return RD_OK;
}

int rd_http_multi_next(rd_http_multi *m, void **user, rd_status *st, rd_error *err)
{
    if (!m->curl) {
        multi_req *r = m->head;
        if (!r)
            return 0;
        multi_unlink(m, r);
        *user = r->user;
        *st = rd_http_send(m->t, &r->req, r->resp, err);
        multi_req_free(m, r);
        m->running--;
        return 1;
    }
    int left = 0;
    CURLMsg *msg = curl_multi_info_read(m->cm, &left);
    if (!msg) {
        int running = 0;
        curl_multi_perform(m->cm, &running);
        msg = curl_multi_info_read(m->cm, &left);
    }
    while (msg && msg->msg != CURLMSG_DONE)
        msg = curl_multi_info_read(m->cm, &left);
    if (!msg)
        return 0;
    multi_req *r = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    CURLcode rc = msg->data.result;
    long status = 0, connects = 0;
    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    if (curl_easy_getinfo(r->h, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
        m->connections += (size_t)connects;
    r->resp->status = (int)status;
    *st = rc == CURLE_OK ? RD_OK : transfer_error(m->curl, rc, &r->req, &r->x, r->errbuf, err);
    *user = r->user;
    multi_unlink(m, r);
    multi_req_free(m, r);
    m->running--;
    return 1;
}

size_t rd_http_multi_connections(const rd_http_multi *m)
{
    return m ? m->connections : 0;
}

void rd_http_multi_wait(rd_http_multi *m, long ms)
{
    if (m->curl) {
        curl_multi_poll(m->cm, NULL, 0, (int)ms, NULL);
        return;
    }
    if (m->head || ms <= 0)
        return; /* queued requests run at the next rd_http_multi_next */
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

void rd_http_multi_free(rd_http_multi *m)
{
    if (!m)
        return;
    while (m->head) {
        multi_req *r = m->head;
        multi_unlink(m, r);
        multi_req_free(m, r);
    }
    if (m->cm)
        curl_multi_cleanup(m->cm);
    free(m);
}

rd_status rd_http_apply_tls(CURL *h, const char *ca_bundle)
{
    /* verification is never switched off, whatever the configuration */
    if (curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK)
        return RD_E_INTERNAL;
    if (ca_bundle && *ca_bundle && curl_easy_setopt(h, CURLOPT_CAINFO, ca_bundle) != CURLE_OK)
        return RD_E_INTERNAL;
    return RD_OK;
}

int rd_http_tls_failure(CURLcode rc, const char *url, const char *ca_bundle, const char *detail, char *msg,
                        size_t msg_len)
{
    char host[256];
    url_host(url ? url : "", host, sizeof host);
    const char *why = detail && *detail ? detail : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        if (ca_bundle && *ca_bundle)
            snprintf(msg, msg_len,
                     "the TLS certificate of %s is not trusted by the CA bundle %s (%s): set AWS_CA_BUNDLE (or "
                     "ca_bundle in the profile) to the bundle that holds your CA",
                     host, ca_bundle, why);
        else
            snprintf(msg, msg_len,
                     "the TLS certificate of %s is not trusted (%s): set AWS_CA_BUNDLE (or ca_bundle in the "
                     "profile) to your CA bundle",
                     host, why);
        return 1;
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        snprintf(msg, msg_len,
                 "cannot use the CA bundle %s to check the TLS certificate of %s (%s): set AWS_CA_BUNDLE (or "
                 "ca_bundle in the profile) to a file of PEM certificates",
                 ca_bundle && *ca_bundle ? ca_bundle : "of the system", host, why);
        return 1;
    default:
        return 0;
    }
}

int rd_url_is_loopback(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = strchr(p, '@');
    const char *slash = strpbrk(p, "/?#");
    if (at && (!slash || at < slash))
        p = at + 1;
    if (*p == '[')
        return strncmp(p, "[::1]", 5) == 0;
    size_t n = strcspn(p, ":/?#");
    if (n == 9 && strncasecmp(p, "localhost", 9) == 0)
        return 1;
    if (n >= 4 && strncmp(p, "127.", 4) == 0) {
        for (size_t i = 4; i < n; i++)
            if (!isdigit((unsigned char)p[i]) && p[i] != '.')
                return 0;
        return 1;
    }
    return 0;
}
