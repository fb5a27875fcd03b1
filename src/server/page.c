/* page.c — the status page's HTTP side: every request outside /v1/ (api.c hands them over, unauthenticated).
 * Owns the routes (GET /, POST /login, POST /logout, GET /projects/{p}, POST /projects/{p}/refresh), the
 * login form (a token checked with the store, failures counted with the API's counter), the sessions (in
 * memory, by the SHA-256 of their id only), the CSRF checks and the answers' security headers. The HTML is
 * page_render.c's.
 *
 * Sessions: a 256-bit random id in the cookie rd_session (HttpOnly, SameSite=Strict, Path=/, Max-Age of the
 * lifetime, Secure over TLS); the server keeps its SHA-256, the user's name, the login time and a per-session
 * CSRF token. A session lasts RD_PAGE_SESSION_SECONDS from its login (not sliding); its token (by the hash the
 * store keeps) and user are checked with the store on every request, so a revoked token's or a removed user's
 * sessions stop at once. At most RD_PAGE_MAX_SESSIONS: the
 * oldest is dropped for a new one. A login replaces the session the browser sent, logout ends it, and a server
 * restart ends them all. Every POST but the login needs the
 * session's CSRF token (a hidden field, compared in constant time); every POST is refused when its Origin
 * (or Sec-Fetch-Site) says another site sent it. Tokens, session ids and CSRF tokens are never logged. */
#include "server/page_internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/scheduler.h"

#define ID_BYTES 32
#define HEX_LEN (2 * ID_BYTES)
#define TOKEN_FIELD_MAX 256
#define COOKIE "rd_session"

typedef struct session {
    unsigned char id_hash[32]; /* SHA-256 of the id's bytes */
    char token_hash[RD_TOKEN_HASH_LEN + 1]; /* of the token the session was made from (as the store keeps it) */
    char csrf[HEX_LEN + 1];
    int64_t created; /* Unix seconds (the page's clock) */
    uint64_t serial; /* order of creation: the oldest is dropped first */
} session;

struct rd_page {
    rd_api *api;
    pthread_mutex_t lock; /* sessions, nsessions, serial */
    session *sessions;    /* RD_PAGE_MAX_SESSIONS slots */
    size_t nsessions;
    uint64_t serial;
    int64_t (*now_s)(void *ctx);
    void *now_ctx;
};

typedef enum page_route { P_ROOT, P_LOGIN, P_LOGOUT, P_PROJECT, P_REFRESH, P_NOT_FOUND } page_route;

/* One request's state (c->data). */
typedef struct page_call {
    page_route route;
    char project[RD_STORE_NAME_MAX + 1];
} page_call;

/* ---- the object ------------------------------------------------------------------------------------------ */

rd_status rd_page_new(rd_api *a, struct rd_page **out, rd_error *err)
{
    struct rd_page *p = calloc(1, sizeof *p);
    if (!p || !(p->sessions = calloc(RD_PAGE_MAX_SESSIONS, sizeof *p->sessions))) {
        free(p);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    p->api = a;
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return RD_OK;
}

void rd_page_free(struct rd_page *p)
{
    if (!p)
        return;
    OPENSSL_cleanse(p->sessions, RD_PAGE_MAX_SESSIONS * sizeof *p->sessions);
    free(p->sessions);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void rd_page_set_clock(struct rd_page *p, int64_t (*now_s)(void *ctx), void *ctx)
{
    p->now_s = now_s;
    p->now_ctx = ctx;
}

static int64_t page_now(const struct rd_page *p)
{
    if (p->now_s)
        return p->now_s(p->now_ctx);
    return (int64_t)time(NULL);
}

/* ---- sessions -------------------------------------------------------------------------------------------- */

static void hex_of(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A hex digit of either case, or -1. */
static int hex_any(char c)
{
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : hex_val(c);
}

static void sha256(const void *data, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    EVP_Digest(data, n, out, &len, EVP_sha256(), NULL);
}

/* A new session made from the token of that hash: its id (hex) into id_hex. -1 when no random bytes could be
 * had. */
static int session_create(struct rd_page *p, const char *token_hash, char id_hex[HEX_LEN + 1])
{
    unsigned char id[ID_BYTES], csrf[ID_BYTES];
    if (RAND_bytes(id, sizeof id) != 1 || RAND_bytes(csrf, sizeof csrf) != 1)
        return -1;
    session s;
    memset(&s, 0, sizeof s);
    sha256(id, sizeof id, s.id_hash);
    snprintf(s.token_hash, sizeof s.token_hash, "%s", token_hash);
    hex_of(csrf, sizeof csrf, s.csrf);
    s.created = page_now(p);
    hex_of(id, sizeof id, id_hex);
    OPENSSL_cleanse(id, sizeof id);
    OPENSSL_cleanse(csrf, sizeof csrf);

    pthread_mutex_lock(&p->lock);
    int64_t now = s.created;
    for (size_t i = 0; i < p->nsessions;) { /* the expired ones go first */
        if (now - p->sessions[i].created >= RD_PAGE_SESSION_SECONDS)
            p->sessions[i] = p->sessions[--p->nsessions];
        else
            i++;
    }
    if (p->nsessions == RD_PAGE_MAX_SESSIONS) {
        size_t old = 0;
        for (size_t i = 1; i < p->nsessions; i++)
            if (p->sessions[i].serial < p->sessions[old].serial)
                old = i;
        p->sessions[old] = p->sessions[--p->nsessions];
    }
    s.serial = ++p->serial;
    p->sessions[p->nsessions++] = s;
    pthread_mutex_unlock(&p->lock);
    OPENSSL_cleanse(&s, sizeof s);
    return 0;
}

/* The session of the id in the Cookie header: its token's hash and CSRF token copied out; 0, or -1 for none
 * (no cookie, malformed, unknown or expired: an expired one is removed). */
static int session_find(struct rd_page *p, const unsigned char hash[32], char token_hash[RD_TOKEN_HASH_LEN + 1],
                        char csrf[HEX_LEN + 1])
{
    int found = -1;
    int64_t now = page_now(p);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->nsessions; i++) {
        session *s = &p->sessions[i];
        if (memcmp(s->id_hash, hash, 32) != 0)
            continue;
        if (now - s->created >= RD_PAGE_SESSION_SECONDS || now < s->created - 300) {
            p->sessions[i] = p->sessions[--p->nsessions];
            break;
        }
        memcpy(token_hash, s->token_hash, sizeof s->token_hash);
        memcpy(csrf, s->csrf, sizeof s->csrf);
        found = 0;
        break;
    }
    pthread_mutex_unlock(&p->lock);
    return found;
}

static void session_remove(struct rd_page *p, const unsigned char hash[32])
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->nsessions; i++)
        if (memcmp(p->sessions[i].id_hash, hash, 32) == 0) {
            p->sessions[i] = p->sessions[--p->nsessions];
            break;
        }
    pthread_mutex_unlock(&p->lock);
}

/* The SHA-256 of the rd_session cookie's id into hash: 0, or -1 when there is no well-formed one. */
static int cookie_session_hash(const rd_httpd_request *req, unsigned char hash[32])
{
    const char *h = rd_headers_get(rd_httpd_headers(req), "Cookie");
    for (const char *q = h; q && *q;) {
        while (*q == ' ' || *q == '\t' || *q == ';')
            q++;
        const char *end = strchr(q, ';');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        size_t nl = sizeof COOKIE - 1;
        if (len == nl + 1 + HEX_LEN && strncmp(q, COOKIE "=", nl + 1) == 0) {
            unsigned char id[ID_BYTES];
            const char *v = q + nl + 1;
            int ok = 1;
            for (size_t i = 0; i < ID_BYTES && ok; i++) {
                int hi = hex_val(v[2 * i]), lo = hex_val(v[2 * i + 1]);
                if (hi < 0 || lo < 0)
                    ok = 0;
                else
                    id[i] = (unsigned char)(hi << 4 | lo);
            }
            if (ok)
                sha256(id, sizeof id, hash);
            OPENSSL_cleanse(id, sizeof id);
            if (ok)
                return 0;
        }
        q = end ? end + 1 : NULL;
    }
    return -1;
}

/* ---- forms ----------------------------------------------------------------------------------------------- */

/* The value of field name in an application/x-www-form-urlencoded body, decoded ('+' is a space, %XX a byte)
 * into out (n bytes, NUL-terminated). 0; 1 when the field is absent; -1 when the body or the value is
 * malformed (a bad %-escape, a NUL, a value of n bytes or more, the field twice). */
static int form_field(const rd_buf *body, const char *name, char *out, size_t n)
{
    const char *d = body->data ? body->data : "";
    size_t len = body->len, nl = strlen(name);
    int found = 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && d[j] != '&')
            j++;
        const char *eq = memchr(d + i, '=', j - i);
        size_t kl = eq ? (size_t)(eq - (d + i)) : j - i;
        if (kl == nl && memcmp(d + i, name, nl) == 0) {
            if (found)
                return -1;
            found = 1;
            size_t o = 0;
            for (size_t k = eq ? (size_t)(eq - d) + 1 : j; k < j; k++) {
                char ch = d[k];
                if (ch == '+') {
                    ch = ' ';
                } else if (ch == '%') {
                    int hi = -1;
                    if (k + 2 < j) { /* two characters follow within the field */
                        int x = hex_any(d[k + 1]), y = hex_any(d[k + 2]);
                        if (x >= 0 && y >= 0)
                            hi = x << 4 | y;
                    }
                    if (hi < 0)
                        return -1;
                    ch = (char)hi;
                    k += 2;
                }
                if (ch == 0 || o + 1 >= n)
                    return -1;
                out[o++] = ch;
            }
            out[o] = 0;
        }
        i = j + 1;
    }
    return found ? 0 : 1;
}

/* ---- answers --------------------------------------------------------------------------------------------- */

static void security_headers(rd_httpd_response *resp)
{
    rd_headers_set(&resp->headers, "Content-Security-Policy",
                   "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
                   "frame-ancestors 'none'; base-uri 'none'");
    rd_headers_set(&resp->headers, "X-Content-Type-Options", "nosniff");
    rd_headers_set(&resp->headers, "Referrer-Policy", "no-referrer");
    rd_headers_set(&resp->headers, "X-Frame-Options", "DENY");
    rd_headers_set(&resp->headers, "Cache-Control", "no-store");
}

/* The answer: html (moved into resp) with status and the page's headers. */
static void send_html(rd_api_call *c, rd_httpd_response *resp, int status, rd_buf *html)
{
    rd_buf_free(&resp->body);
    if (rd_buf_failed(html)) {
        rd_buf_free(html);
        status = 500;
        rd_buf_puts(html, "<!doctype html><title>redduck</title><p>The server ran out of memory: retry.</p>\n");
    }
    c->status = resp->status = status;
    security_headers(resp);
    rd_headers_set(&resp->headers, "Content-Type", "text/html; charset=utf-8");
    resp->body = *html;
    rd_buf_init(html);
}

static void send_message(rd_api_call *c, rd_httpd_response *resp, const rd_page_viewer *v, int status,
                         const char *title, const char *text)
{
    rd_buf html = RD_BUF_INIT;
    rd_page_render_message(&html, v, title, text);
    send_html(c, resp, status, &html);
}

static void send_redirect(rd_api_call *c, rd_httpd_response *resp, const char *location)
{
    rd_buf html = RD_BUF_INIT;
    rd_buf_puts(&html, "<!doctype html><title>redduck</title><p><a href=\"");
    rd_page_escape(&html, location);
    rd_buf_puts(&html, "\">Continue</a></p>\n");
    send_html(c, resp, 303, &html);
    rd_headers_set(&resp->headers, "Location", location);
}

/* Set-Cookie for id (NULL: the cookie removed). */
static void set_cookie(rd_api_call *c, rd_httpd_response *resp, const char *id)
{
    char v[256];
    snprintf(v, sizeof v, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", id ? id : "",
             id ? RD_PAGE_SESSION_SECONDS : 0, c->api->tls ? "; Secure" : "");
    rd_headers_add(&resp->headers, "Set-Cookie", v);
    OPENSSL_cleanse(v, sizeof v);
}

static void send_login(rd_api_call *c, rd_httpd_response *resp, int status, const char *message)
{
    rd_buf html = RD_BUF_INIT;
    rd_page_render_login(&html, message);
    send_html(c, resp, status, &html);
}

/* ---- routing --------------------------------------------------------------------------------------------- */

/* The route of path; the project of /projects/{p}... into project. */
static page_route route_of(const char *path, char project[RD_STORE_NAME_MAX + 1])
{
    if (strcmp(path, "/") == 0)
        return P_ROOT;
    if (strcmp(path, "/login") == 0)
        return P_LOGIN;
    if (strcmp(path, "/logout") == 0)
        return P_LOGOUT;
    if (strncmp(path, "/projects/", 10) != 0)
        return P_NOT_FOUND;
    const char *p = path + 10, *sl = strchr(p, '/');
    size_t n = sl ? (size_t)(sl - p) : strlen(p);
    if (!n || n > RD_STORE_NAME_MAX)
        return P_NOT_FOUND;
    memcpy(project, p, n);
    project[n] = 0;
    if (!rd_api_project_name_valid(project))
        return P_NOT_FOUND;
    if (!sl || strcmp(sl, "/") == 0)
        return P_PROJECT;
    if (strcmp(sl, "/refresh") == 0)
        return P_REFRESH;
    return P_NOT_FOUND;
}

static const char *route_method(page_route r)
{
    switch (r) {
    case P_ROOT:
    case P_PROJECT: return "GET";
    case P_LOGIN:
    case P_LOGOUT:
    case P_REFRESH: return "POST";
    default: return NULL;
    }
}

/* 1 when a POST comes from another site: Sec-Fetch-Site (sent by current browsers) other than same-origin
 * (or none: the user's own action), else an Origin header naming another server than scheme://Host. A
 * browser sends "Origin: null" under Referrer-Policy: no-referrer, so null is not refused; neither header:
 * not refused either (a client that is no browser). The CSRF token decides then. */
static int cross_site(const rd_httpd_request *req)
{
    const rd_headers *h = rd_httpd_headers(req);
    const char *site = rd_headers_get(h, "Sec-Fetch-Site");
    if (site)
        return strcasecmp(site, "same-origin") != 0 && strcasecmp(site, "none") != 0;
    const char *origin = rd_headers_get(h, "Origin");
    if (!origin || strcmp(origin, "null") == 0)
        return 0;
    const char *host = rd_headers_get(h, "Host");
    const char *rest = NULL;
    if (strncasecmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    return !rest || !host || !*host || strcasecmp(rest, host) != 0;
}

rd_httpd_next rd_page_on_headers(rd_api_call *c, rd_httpd_request *req, rd_httpd_response *resp)
{
    page_call *pc = calloc(1, sizeof *pc);
    if (!pc) {
        send_message(c, resp, NULL, 500, "Out of memory", "The server ran out of memory: retry.");
        return RD_HTTPD_ANSWER;
    }
    c->data = pc;
    pc->route = route_of(c->path, pc->project);
    const char *method = rd_httpd_method(req), *want = route_method(pc->route);
    if (!want) {
        send_message(c, resp, NULL, 404, "Not found", "There is no such page.");
        return RD_HTTPD_ANSWER;
    }
    if (strcmp(method, want) != 0) {
        rd_headers_set(&resp->headers, "Allow", want);
        send_message(c, resp, NULL, 405, "Method not allowed", "This page does not take that method.");
        return RD_HTTPD_ANSWER;
    }
    if (strcmp(method, "POST") == 0 && cross_site(req)) {
        send_message(c, resp, NULL, 403, "Forbidden", "This form was sent from another site.");
        return RD_HTTPD_ANSWER;
    }
    if (pc->route == P_LOGIN) {
        int64_t wait = rd_api_auth_blocked(c->api, rd_httpd_client_address(req));
        if (wait > 0) {
            char ra[24], text[160];
            snprintf(ra, sizeof ra, "%" PRId64, wait);
            snprintf(text, sizeof text,
                     "Too many failed logins from this address: retry in %" PRId64 " seconds.", wait);
            send_message(c, resp, NULL, 429, "Too many attempts", text);
            rd_headers_set(&resp->headers, "Retry-After", ra);
            return RD_HTTPD_ANSWER;
        }
    }
    /* forms are small; a GET has no body worth keeping */
    rd_httpd_set_max_body(req, strcmp(method, "POST") == 0 ? RD_PAGE_MAX_FORM : 1);
    return RD_HTTPD_BUFFER;
}

/* ---- the requests ---------------------------------------------------------------------------------------- */

static void do_login(rd_api_call *c, const rd_buf *body, rd_httpd_response *resp)
{
    rd_api *a = c->api;
    const char *addr = rd_httpd_client_address(c->req);
    const char *ct = rd_headers_get(rd_httpd_headers(c->req), "Content-Type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        send_login(c, resp, 400, "The login form was not sent as a form: use the form below.");
        return;
    }
    char token[TOKEN_FIELD_MAX];
    int got = form_field(body, "token", token, sizeof token);
    rd_store_user u = { 0 };
    rd_error err;
    rd_error_clear(&err);
    int ok = got == 0 && token[0] && rd_store_token_authenticate(a->st, token, &u, &err) == RD_OK;
    char token_hash[RD_TOKEN_HASH_LEN + 1] = "";
    if (ok)
        rd_token_hash(token, token_hash);
    OPENSSL_cleanse(token, sizeof token);
    if (!ok) {
        rd_api_auth_failed(a, addr);
        send_login(c, resp, 401, "That token was not accepted: paste a token from `redduck server token create`.");
        return;
    }
    char id[HEX_LEN + 1];
    int made = session_create(a->page, token_hash, id);
    rd_token_wipe(token_hash, sizeof token_hash);
    if (made != 0) {
        rd_store_user_clear(&u);
        send_login(c, resp, 500, "The server could not make a session (no random bytes): retry.");
        return;
    }
    unsigned char old[32];
    if (cookie_session_hash(c->req, old) == 0) /* a login replaces the browser's earlier session */
        session_remove(a->page, old);
    rd_store_user_clear(&c->user);
    c->user = u; /* the request's log line names the user */
    c->authed = 1;
    send_redirect(c, resp, "/");
    set_cookie(c, resp, id);
    OPENSSL_cleanse(id, sizeof id);
}

/* 1 when the form's csrf field is the session's token (constant time). */
static int csrf_ok(const rd_buf *body, const char *want)
{
    char got[HEX_LEN + 8];
    if (form_field(body, "csrf", got, sizeof got) != 0 || strlen(got) != HEX_LEN) {
        OPENSSL_cleanse(got, sizeof got);
        return 0;
    }
    int ok = CRYPTO_memcmp(got, want, HEX_LEN) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return ok;
}

static void do_refresh(rd_api_call *c, const rd_page_viewer *v, const char *project, rd_httpd_response *resp)
{
    rd_api *a = c->api;
    rd_role role = RD_ROLE_NONE;
    int prod = 0;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_role_effective(a->st, c->user.name, project, &role, &prod, &err);
    if (st == RD_E_NOT_FOUND || (st == RD_OK && role == RD_ROLE_NONE)) {
        send_message(c, resp, v, 404, "Not found", "There is no such project, or you are not a member of it.");
        return;
    }
    if (st != RD_OK) {
        send_message(c, resp, v, 500, "Error", err.message);
        return;
    }
    if (!rd_role_can(role, prod, RD_ACTION_REFRESH, RD_ENV_NONE)) {
        send_message(c, resp, v, 403, "Forbidden", "Your role in this project does not allow a refresh.");
        return;
    }
    if (!a->sched) {
        send_message(c, resp, v, 503, "Refreshes are off", "This server runs no scheduler: refreshes are off.");
        return;
    }
    int64_t *ids = NULL;
    size_t nids = 0;
    st = rd_scheduler_trigger(a->sched, project, c->user.name, NULL, 0, &ids, &nids, &err);
    free(ids);
    if (st == RD_E_NOT_FOUND) {
        send_message(c, resp, v, 409, "Nothing to refresh", "The project has no active deployment: deploy it first.");
        return;
    }
    if (st != RD_OK) {
        send_message(c, resp, v, 500, "Error", err.message);
        return;
    }
    send_redirect(c, resp, "/");
}

void rd_page_on_complete(rd_api_call *c, const rd_buf *body, rd_httpd_response *resp)
{
    page_call *pc = c->data;
    rd_api *a = c->api;
    if (pc->route == P_LOGIN) {
        do_login(c, body, resp);
        return;
    }
    /* every other page needs a session */
    unsigned char hash[32];
    char token_hash[RD_TOKEN_HASH_LEN + 1], csrf[HEX_LEN + 1];
    int have = cookie_session_hash(c->req, hash) == 0 && session_find(a->page, hash, token_hash, csrf) == 0;
    rd_error err;
    rd_error_clear(&err);
    if (have) {
        rd_store_user_clear(&c->user);
        rd_status st = rd_store_token_hash_authenticate(a->st, token_hash, &c->user, &err);
        rd_token_wipe(token_hash, sizeof token_hash);
        if (st == RD_E_NOT_FOUND) { /* the token was revoked, or its user removed */
            session_remove(a->page, hash);
            have = 0;
        } else if (st != RD_OK) {
            send_message(c, resp, NULL, 500, "Error", err.message);
            return;
        } else {
            c->authed = 1;
        }
    }
    int post = pc->route == P_LOGOUT || pc->route == P_REFRESH;
    if (!have) {
        if (post) {
            send_message(c, resp, NULL, 403, "Forbidden", "Log in first.");
        } else {
            send_login(c, resp, 200, NULL);
            if (rd_headers_get(rd_httpd_headers(c->req), "Cookie"))
                set_cookie(c, resp, NULL);
        }
        return;
    }
    rd_page_viewer v = { .user = &c->user, .csrf = csrf, .now_ms = page_now(a->page) * 1000 };
    struct timespec ts;
    if (!a->page->now_s && clock_gettime(CLOCK_REALTIME, &ts) == 0)
        v.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (post && !csrf_ok(body, csrf)) {
        send_message(c, resp, &v, 403, "Forbidden", "The form's CSRF token is missing or wrong: reload the page.");
        OPENSSL_cleanse(csrf, sizeof csrf);
        return;
    }
    rd_buf html = RD_BUF_INIT;
    rd_status st;
    switch (pc->route) {
    case P_LOGOUT:
        session_remove(a->page, hash);
        send_redirect(c, resp, "/");
        set_cookie(c, resp, NULL);
        break;
    case P_REFRESH: do_refresh(c, &v, pc->project, resp); break;
    case P_ROOT:
        if ((st = rd_page_render_dashboard(a, &v, &html, &err)) != RD_OK)
            send_message(c, resp, &v, 500, "Error", err.message);
        else
            send_html(c, resp, 200, &html);
        break;
    case P_PROJECT:
        st = rd_page_render_project(a, &v, pc->project, &html, &err);
        if (st == RD_E_NOT_FOUND)
            send_message(c, resp, &v, 404, "Not found", "There is no such project, or you are not a member of it.");
        else if (st != RD_OK)
            send_message(c, resp, &v, 500, "Error", err.message);
        else
            send_html(c, resp, 200, &html);
        break;
    default: send_message(c, resp, &v, 404, "Not found", "There is no such page."); break;
    }
    rd_buf_free(&html);
    OPENSSL_cleanse(csrf, sizeof csrf);
}

void rd_page_on_done(rd_api_call *c)
{
    free(c->data);
    c->data = NULL;
}
