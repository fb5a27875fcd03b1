/* api.c — the /v1 API over rd_httpd: each request is authenticated, routed, checked against the role table and
 * refused by size from its headers (on_headers), then answered from the buffered body (on_complete) and
 * logged (on_done). Deployments: unpacked under DATA_DIR/projects/<p>/v<N>, validated with the project loader
 * under server rules, then recorded; the store keeps users, roles, versions, variables and the audit. */
#include "server/api.h"
#include "server/api_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "project/archive.h"
#include "redduck/dotenv.h"
#include "redduck/project.h"
#include "server/query.h"

#define MAX_ADDRESSES 4096 /* failure counters kept; the oldest is dropped beyond */
#define AUDIT_LIMIT_MAX 1000
#define MSG_MAX RD_API_MSG_MAX

typedef rd_api_call call;
typedef rd_api_route_id route;

/* ---- small helpers ---------------------------------------------------------------------------------- */

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

void rd_api_iso_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *rd_api_json_time(int64_t t)
{
    char b[32];
    rd_api_iso_time(t, b);
    return json_string(b);
}

/* Copies s for a message or a log line: printable ASCII only, at most max characters (out: max + 4 bytes). */
static void shown_max(const char *s, size_t n, char *out, size_t max)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j < max; i++)
        out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (n > max) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = 0;
}

static void shown(const char *s, size_t n, char out[80])
{
    shown_max(s, n, out, 64);
}

int rd_api_project_name_valid(const char *s)
{
    if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    size_t n = 1;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n <= 63;
}

/* ---- JSON bodies ------------------------------------------------------------------------------------ */

/* The deepest nesting of arrays and objects in data, strings skipped; stops counting past limit. */
static int json_depth_over(const char *d, size_t n, int limit)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > limit)
                return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

static const char *type_name(rd_api_field_type t)
{
    switch (t) {
    case RD_API_STRING: return "a string";
    case RD_API_STRING_MAP: return "an object of strings";
    default: return "a list of strings";
    }
}

static int field_ok(const json_t *v, rd_api_field_type t)
{
    size_t i;
    const char *k;
    json_t *x;
    switch (t) {
    case RD_API_STRING: return json_is_string(v);
    case RD_API_STRING_MAP:
        if (!json_is_object(v))
            return 0;
        json_object_foreach((json_t *)v, k, x)
            if (!json_is_string(x))
                return 0;
        return 1;
    case RD_API_STRING_LIST:
        if (!json_is_array(v))
            return 0;
        json_array_foreach(v, i, x)
            if (!json_is_string(x))
                return 0;
        return 1;
    }
    return 0;
}

int rd_api_parse_json_body(const void *data, size_t len, const rd_api_field *schema, json_t **out, char *msg,
                           size_t msg_len)
{
    const char *d = data;
    if (len > RD_API_MAX_JSON_BODY) {
        snprintf(msg, msg_len, "the body is larger than %zu bytes", RD_API_MAX_JSON_BODY);
        return -1;
    }
    if (!len || !d) {
        snprintf(msg, msg_len, "a JSON object is required as the body");
        return -1;
    }
    if (json_depth_over(d, len, RD_API_MAX_JSON_DEPTH)) {
        snprintf(msg, msg_len, "the body nests arrays and objects deeper than %d", RD_API_MAX_JSON_DEPTH);
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb(d, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        /* jansson's text may quote the input (a value): only the position is given */
        snprintf(msg, msg_len, "the body is not valid JSON (line %d, column %d)", je.line, je.column);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(msg, msg_len, "the body must be a JSON object");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        const rd_api_field *f = schema;
        while (f && f->name && strcmp(f->name, k) != 0)
            f++;
        char name[80];
        shown(k, strlen(k), name);
        if (!f || !f->name) {
            rd_buf known = RD_BUF_INIT;
            for (const rd_api_field *g = schema; g && g->name; g++)
                rd_buf_printf(&known, "%s%s", g == schema ? "" : ", ", g->name);
            snprintf(msg, msg_len, "unknown field \"%s\" (fields: %s)", name, known.len ? rd_buf_cstr(&known) : "none");
            rd_buf_free(&known);
            json_decref(root);
            return -1;
        }
        if (!field_ok(v, f->type)) {
            snprintf(msg, msg_len, "field \"%s\" must be %s", name, type_name(f->type));
            json_decref(root);
            return -1;
        }
    }
    for (const rd_api_field *f = schema; f && f->name; f++) {
        if (f->required && !json_object_get(root, f->name)) {
            snprintf(msg, msg_len, "field \"%s\" is required", f->name);
            json_decref(root);
            return -1;
        }
    }
    *out = root;
    return 0;
}

/* ---- answers ---------------------------------------------------------------------------------------- */

/* Sets the answer to obj (stolen) with status. Values may be in obj: the dump is wiped once copied. */
void rd_api_reply(call *c, rd_httpd_response *resp, int status, json_t *obj)
{
    c->status = status;
    resp->status = status;
    rd_buf_free(&resp->body);
    if (status == 204) {
        json_decref(obj);
        return;
    }
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!s) {
        c->status = resp->status = 500;
        s = strdup("{\"error\":{\"code\":\"Internal\",\"message\":\"out of memory\"}}");
        if (!s)
            return;
    }
    rd_headers_set(&resp->headers, "Content-Type", "application/json");
    rd_headers_set(&resp->headers, "Cache-Control", "no-store");
    size_t n = strlen(s);
    rd_buf_append(&resp->body, s, n);
    rd_buf_puts(&resp->body, "\n");
    OPENSSL_cleanse(s, n);
    free(s);
}

void rd_api_reply_error(call *c, rd_httpd_response *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    rd_api_reply(c, resp, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

/* The answer for a store failure. */
void rd_api_reply_store(call *c, rd_httpd_response *resp, rd_status st, const rd_error *err)
{
    switch (st) {
    case RD_E_NOT_FOUND: rd_api_reply_error(c, resp, 404, "NotFound", "%s", err->message); break;
    case RD_E_USAGE: rd_api_reply_error(c, resp, 400, "BadRequest", "%s", err->message); break;
    default: rd_api_reply_error(c, resp, 500, "Internal", "%s", err->message); break;
    }
}

static void reply_unauthorized(call *c, rd_httpd_response *resp)
{
    rd_headers_set(&resp->headers, "WWW-Authenticate", "Bearer");
    rd_api_reply_error(c, resp, 401, "Unauthorized", "authentication required");
}

/* ---- the failure counters ----------------------------------------------------------------------------- */

/* Seconds the address must wait (0: none). */
int64_t rd_api_auth_blocked(rd_api *a, const char *addr)
{
    int64_t now = mono_s(), wait = 0;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->nfail; i++) {
        rd_api_failures *f = &a->fail[i];
        if (strcmp(f->addr, addr) != 0)
            continue;
        int64_t end = f->window_start + a->window;
        if (now >= end) {
            a->fail[i] = a->fail[--a->nfail];
        } else if (f->count >= a->max_failures) {
            wait = end - now;
        }
        break;
    }
    pthread_mutex_unlock(&a->lock);
    return wait;
}

void rd_api_auth_failed(rd_api *a, const char *addr)
{
    int64_t now = mono_s();
    pthread_mutex_lock(&a->lock);
    size_t i = 0;
    for (; i < a->nfail; i++)
        if (strcmp(a->fail[i].addr, addr) == 0)
            break;
    if (i < a->nfail && now >= a->fail[i].window_start + a->window) {
        a->fail[i].window_start = now;
        a->fail[i].count = 0;
    }
    if (i == a->nfail) {
        if (a->nfail == MAX_ADDRESSES) { /* drop the oldest window */
            size_t old = 0;
            for (size_t j = 1; j < a->nfail; j++)
                if (a->fail[j].window_start < a->fail[old].window_start)
                    old = j;
            a->fail[old] = a->fail[--a->nfail];
            i = a->nfail;
        }
        snprintf(a->fail[i].addr, sizeof a->fail[i].addr, "%s", addr);
        a->fail[i].window_start = now;
        a->fail[i].count = 0;
        a->nfail++;
    }
    a->fail[i].count++;
    pthread_mutex_unlock(&a->lock);
}

/* ---- routing ------------------------------------------------------------------------------------------ */

/* Splits path into at most max segments (copies into buf); -1 for an empty segment or too many. */
static int split_path(const char *path, char *buf, size_t bufn, char **seg, int max)
{
    size_t n = strlen(path);
    if (n + 1 > bufn || path[0] != '/')
        return -1;
    memcpy(buf, path + 1, n);
    int k = 0;
    char *p = buf;
    if (!*p)
        return 0;
    for (;;) {
        if (k == max)
            return -1;
        seg[k++] = p;
        char *sl = strchr(p, '/');
        if (!sl)
            break;
        *sl = 0;
        p = sl + 1;
        if (!*p)
            break; /* a trailing slash */
    }
    for (int i = 0; i < k; i++)
        if (!seg[i][0])
            return -1;
    return k;
}

/* The query parameter name's value (raw), or NULL. */
const char *rd_api_query_get(const char *q, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl + 1 > n)
                vl = n - 1;
            memcpy(out, p + nl + 1, vl);
            out[vl] = 0;
            return out;
        }
        if (len == nl && strncmp(p, name, nl) == 0) {
            out[0] = 0;
            return out;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* 0, or -1 with the first parameter not in allowed (NULL-terminated) written into bad. */
static int query_check(const char *q, const char *const *allowed, char bad[80])
{
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t kl = eq ? (size_t)(eq - p) : len;
        int ok = 0;
        for (size_t i = 0; allowed && allowed[i]; i++)
            if (strlen(allowed[i]) == kl && strncmp(allowed[i], p, kl) == 0)
                ok = 1;
        if (!ok && len) {
            shown(p, kl, bad);
            return -1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

typedef enum route_result { ROUTE_OK, ROUTE_NOT_FOUND, ROUTE_METHOD, ROUTE_NAME } route_result;

static const rd_api_ext_route *const ext_tables[] = { rd_api_runs_routes, rd_api_data_routes };

/* 1 when tail ("runs/STAR/logs") matches seg[0..n), copying what a "*" matched into arg; 0 otherwise. */
static int tail_match(const char *tail, char **seg, int n, char arg[RD_API_ARG_MAX])
{
    int k = 0;
    const char *t = tail;
    arg[0] = 0;
    while (*t) {
        const char *sl = strchr(t, '/');
        size_t len = sl ? (size_t)(sl - t) : strlen(t);
        if (k == n)
            return 0;
        if (len == 1 && t[0] == '*') {
            if (strlen(seg[k]) >= RD_API_ARG_MAX)
                return 0;
            snprintf(arg, RD_API_ARG_MAX, "%s", seg[k]);
        } else if (strlen(seg[k]) != len || strncmp(seg[k], t, len) != 0) {
            return 0;
        }
        k++;
        t = sl ? sl + 1 : t + len;
    }
    return k == n;
}

/* The modules' calls under /v1/projects/{p}/ (seg: the segments after the project). */
static route_result route_ext(call *c, const char *method, char **seg, int n)
{
    int path_known = 0;
    char arg[RD_API_ARG_MAX];
    for (size_t t = 0; t < sizeof ext_tables / sizeof *ext_tables; t++)
        for (const rd_api_ext_route *e = ext_tables[t]; e->method; e++) {
            if (!tail_match(e->tail, seg, n, arg))
                continue;
            path_known = 1;
            if (strcmp(e->method, method) != 0)
                continue;
            c->r = R_EXT;
            c->ext = e;
            memcpy(c->arg, arg, sizeof arg);
            return ROUTE_OK;
        }
    return path_known ? ROUTE_METHOD : ROUTE_NOT_FOUND;
}

static route_result route_of(call *c, const char *method, char what[96])
{
    char buf[1024];
    char *seg[8];
    int n = split_path(c->path, buf, sizeof buf, seg, 8);
    what[0] = 0;
    if (n < 2 || strcmp(seg[0], "v1") != 0)
        return ROUTE_NOT_FOUND;
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (n == 2 && strcmp(seg[1], "health") == 0)
        return get ? (c->r = R_HEALTH, ROUTE_OK) : ROUTE_METHOD;
    if (n == 2 && strcmp(seg[1], "whoami") == 0)
        return get ? (c->r = R_WHOAMI, ROUTE_OK) : ROUTE_METHOD;
    if (strcmp(seg[1], "projects") != 0)
        return ROUTE_NOT_FOUND;
    if (n == 2)
        return post ? (c->r = R_PROJECT_CREATE, ROUTE_OK) : ROUTE_METHOD;
    if (!rd_api_project_name_valid(seg[2])) {
        snprintf(what, 96, "project");
        return ROUTE_NAME;
    }
    snprintf(c->project, sizeof c->project, "%s", seg[2]);
    if (n == 3)
        return get ? (c->r = R_PROJECT_GET, ROUTE_OK) : ROUTE_METHOD;
    if (strcmp(seg[3], "deployments") == 0) {
        if (n == 4) {
            if (post)
                c->r = R_DEPLOY;
            else if (get)
                c->r = R_DEPLOY_LIST;
            else
                return ROUTE_METHOD;
            return ROUTE_OK;
        }
        if (n == 6 && strcmp(seg[5], "activate") == 0) {
            char *end = NULL;
            errno = 0;
            long long v = strtoll(seg[4], &end, 10);
            if (errno || !end || *end || v <= 0 || seg[4][0] < '1' || seg[4][0] > '9')
                return ROUTE_NOT_FOUND;
            c->version = v;
            return post ? (c->r = R_ACTIVATE, ROUTE_OK) : ROUTE_METHOD;
        }
        return ROUTE_NOT_FOUND;
    }
    if (strcmp(seg[3], "variables") == 0 && (n == 5 || n == 6)) {
        c->env = rd_env_parse(seg[4]);
        if (c->env == RD_ENV_NONE) {
            snprintf(what, 96, "environment (dev, prod or shared)");
            return ROUTE_NAME;
        }
        if (n == 5) {
            if (get)
                c->r = R_VARS_GET;
            else if (strcmp(method, "PATCH") == 0)
                c->r = R_VARS_PATCH;
            else
                return ROUTE_METHOD;
            return ROUTE_OK;
        }
        if (!rd_store_variable_name_valid(seg[5])) {
            snprintf(what, 96, "variable name (letters, digits, _ . -, starting with a letter or _)");
            return ROUTE_NAME;
        }
        snprintf(c->var, sizeof c->var, "%s", seg[5]);
        if (strcmp(method, "PUT") == 0)
            c->r = R_VAR_PUT;
        else if (strcmp(method, "DELETE") == 0)
            c->r = R_VAR_DELETE;
        else
            return ROUTE_METHOD;
        return ROUTE_OK;
    }
    if (n == 4 && strcmp(seg[3], "audit") == 0)
        return get ? (c->r = R_AUDIT, ROUTE_OK) : ROUTE_METHOD;
    return route_ext(c, method, seg + 3, n - 3);
}

/* What each route asks rd_role_can for. */
static rd_action route_action(const call *c, const char *query)
{
    char v[8];
    switch (c->r) {
    case R_DEPLOY:
    case R_ACTIVATE: return RD_ACTION_DEPLOY;
    case R_VARS_GET:
        return rd_api_query_get(query, "names", v, sizeof v) ? RD_ACTION_VARIABLES_LIST : RD_ACTION_VARIABLES_READ;
    case R_VARS_PATCH:
    case R_VAR_PUT:
    case R_VAR_DELETE: return RD_ACTION_VARIABLES_WRITE;
    case R_AUDIT: return RD_ACTION_AUDIT_READ;
    case R_EXT: return c->ext->action;
    default: return RD_ACTION_STATUS;
    }
}

static const char *const *route_query(const call *c)
{
    route r = c->r;
    if (r == R_EXT)
        return c->ext->query;
    static const char *const deploy[] = { "environment", NULL };
    static const char *const vars[] = { "names", NULL };
    static const char *const audit[] = { "limit", NULL };
    switch (r) {
    case R_DEPLOY: return deploy;
    case R_VARS_GET: return vars;
    case R_AUDIT: return audit;
    default: return NULL;
    }
}

/* ---- on_headers: authentication, routing, roles, sizes ------------------------------------------------ */

static const char *bearer(const rd_httpd_request *req)
{
    const char *h = rd_headers_get(rd_httpd_headers(req), "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return h;
}

static rd_httpd_next on_headers(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    rd_api *a = ctx;
    call *c = calloc(1, sizeof *c);
    if (!c) {
        resp->status = 500;
        return RD_HTTPD_ANSWER;
    }
    clock_gettime(CLOCK_MONOTONIC, &c->start);
    c->api = a;
    rd_httpd_set_data(req, c);
    const char *uri = rd_httpd_uri(req);
    const char *q = strchr(uri, '?');
    c->path = q ? strndup(uri, (size_t)(q - uri)) : strdup(uri);
    c->query = strdup(q ? q + 1 : "");
    if (!c->path || !c->query) {
        rd_api_reply_error(c, resp, 500, "Internal", "out of memory");
        return RD_HTTPD_ANSWER;
    }
    const char *method = rd_httpd_method(req);
    c->req = req;
    /* JSON bodies stop at 1 MiB however they arrive (a chunked one too); only a deploy's archive is larger */
    rd_httpd_set_max_body(req, RD_API_MAX_JSON_BODY);
    if (strncmp(c->path, "/v1/", 4) != 0 && strcmp(c->path, "/v1") != 0) {
        c->r = R_PAGE;
        return rd_page_on_headers(c, req, resp);
    }
    if (strcmp(c->path, "/v1/health") == 0 && strcmp(method, "GET") == 0) {
        c->r = R_HEALTH;
        return RD_HTTPD_BUFFER;
    }
    const char *addr = rd_httpd_client_address(req);
    int64_t wait = rd_api_auth_blocked(a, addr);
    if (wait > 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%" PRId64, wait);
        rd_headers_set(&resp->headers, "Retry-After", ra);
        rd_api_reply_error(c, resp, 429, "TooManyRequests",
                    "too many failed authentications from this address: retry in %" PRId64 " s", wait);
        return RD_HTTPD_ANSWER;
    }
    const char *tok = bearer(req);
    rd_error err;
    rd_error_clear(&err);
    if (!tok || rd_store_token_authenticate(a->st, tok, &c->user, &err) != RD_OK) {
        rd_api_auth_failed(a, addr);
        reply_unauthorized(c, resp);
        return RD_HTTPD_ANSWER;
    }
    c->authed = 1;
    char what[96];
    switch (route_of(c, method, what)) {
    case ROUTE_NOT_FOUND:
        rd_api_reply_error(c, resp, 404, "NotFound", "no such call: see the API's calls in docs/SERVER_API.md");
        return RD_HTTPD_ANSWER;
    case ROUTE_METHOD:
        rd_headers_set(&resp->headers, "Allow", "GET, POST, PUT, PATCH, DELETE");
        rd_api_reply_error(c, resp, 405, "MethodNotAllowed", "%s is not a method of this call", method);
        return RD_HTTPD_ANSWER;
    case ROUTE_NAME: rd_api_reply_error(c, resp, 400, "InvalidName", "invalid %s in the path", what); return RD_HTTPD_ANSWER;
    case ROUTE_OK: break;
    }
    char bad[80];
    if (query_check(c->query, route_query(c), bad) != 0) {
        rd_api_reply_error(c, resp, 400, "BadRequest", "unknown query parameter \"%s\"", bad);
        return RD_HTTPD_ANSWER;
    }
    if (c->project[0]) {
        rd_status st = rd_store_role_effective(a->st, c->user.name, c->project, &c->role, &c->prod_access, &err);
        if (st == RD_OK) {
            c->project_exists = 1;
        } else if (st == RD_E_NOT_FOUND) {
            c->role = c->user.admin ? RD_ROLE_ADMIN : RD_ROLE_NONE; /* a server admin may deploy a new one */
            c->prod_access = c->user.admin;
        } else {
            rd_api_reply_store(c, resp, st, &err);
            return RD_HTTPD_ANSWER;
        }
        if (c->role == RD_ROLE_NONE || (!c->project_exists && c->r != R_DEPLOY)) {
            rd_api_reply_error(c, resp, 404, "NotFound", "no project %s (or you are not a member of it)", c->project);
            return RD_HTTPD_ANSWER;
        }
        rd_env env = c->env != RD_ENV_NONE ? c->env : RD_ENV_NONE;
        if (!rd_role_can(c->role, c->prod_access, route_action(c, c->query), env)) {
            rd_api_reply_error(c, resp, 403, "Forbidden", "your role in %s (%s%s) does not allow this", c->project,
                        rd_role_name(c->role), c->prod_access ? ", prod access" : "");
            return RD_HTTPD_ANSWER;
        }
    } else if (c->r == R_PROJECT_CREATE && !c->user.admin) {
        rd_api_reply_error(c, resp, 403, "Forbidden", "only a server admin may create projects");
        return RD_HTTPD_ANSWER;
    }
    /* Content-Length over the limit is refused by httpd before the body is read (on_too_large) */
    if (c->r == R_DEPLOY)
        rd_httpd_set_max_body(req, RD_API_MAX_ARCHIVE_BODY);
    if (c->r == R_EXT) {
        if (c->ext->max_body)
            rd_httpd_set_max_body(req, c->ext->max_body);
        if (c->ext->headers)
            return c->ext->headers(c, req, resp);
    }
    return RD_HTTPD_BUFFER;
}

/* ---- the calls ---------------------------------------------------------------------------------------- */

static void do_whoami(call *c, rd_httpd_response *resp)
{
    rd_store_project *ps = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_project_list(c->api->st, &ps, &n, &err);
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        rd_role role = RD_ROLE_NONE;
        int prod = 0;
        if (rd_store_role_effective(c->api->st, c->user.name, ps[i].name, &role, &prod, &err) != RD_OK ||
            role == RD_ROLE_NONE)
            continue;
        json_array_append_new(list, json_pack("{s:s, s:s, s:b}", "name", ps[i].name, "role", rd_role_name(role),
                                              "prod_access", prod));
    }
    rd_store_projects_free(ps, n);
    rd_api_reply(c, resp, 200,
          json_pack("{s:s, s:b, s:o}", "user", c->user.name, "server_admin", c->user.admin, "projects", list));
}

static void do_project_create(call *c, const rd_buf *body, rd_httpd_response *resp)
{
    static const rd_api_field schema[] = { { "name", RD_API_STRING, 1 }, { NULL, RD_API_STRING, 0 } };
    json_t *o = NULL;
    char msg[MSG_MAX];
    if (rd_api_parse_json_body(body->data, body->len, schema, &o, msg, sizeof msg) != 0) {
        rd_api_reply_error(c, resp, 400, "BadRequest", "%s", msg);
        return;
    }
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!rd_api_project_name_valid(name)) {
        json_decref(o);
        rd_api_reply_error(c, resp, 400, "InvalidName", "a project name is [a-z0-9][a-z0-9_-]{0,62}");
        return;
    }
    rd_error err;
    rd_error_clear(&err);
    rd_store_project p;
    if (rd_store_project_get(c->api->st, name, &p, &err) == RD_OK) {
        free(p.name);
        rd_api_reply_error(c, resp, 409, "Conflict", "project %s exists", name);
        json_decref(o);
        return;
    }
    rd_status st = rd_store_project_create(c->api->st, c->user.name, name, &err);
    if (st == RD_OK)
        rd_api_reply(c, resp, 201, json_pack("{s:s}", "name", name));
    else if (st == RD_E_USAGE) /* created meanwhile */
        rd_api_reply_error(c, resp, 409, "Conflict", "project %s exists", name);
    else
        rd_api_reply_store(c, resp, st, &err);
    json_decref(o);
}

static void do_project_get(call *c, rd_httpd_response *resp)
{
    rd_store_deployment d;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_deploy_active(c->api->st, c->project, &d, &err);
    if (st == RD_E_NOT_FOUND) {
        rd_api_reply(c, resp, 200,
              json_pack("{s:s, s:n, s:n, s:n}", "name", c->project, "active_version", "deployed_at", "deployed_by"));
        return;
    }
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    rd_api_reply(c, resp, 200,
          json_pack("{s:s, s:I, s:o, s:s}", "name", c->project, "active_version", (json_int_t)d.version,
                    "deployed_at", rd_api_json_time(d.created_at), "deployed_by", d.created_by));
    rd_store_deployment_clear(&d);
}

static void do_deploy_list(call *c, rd_httpd_response *resp)
{
    rd_store_deployment *ds = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_deploy_list(c->api->st, c->project, &ds, &n, &err);
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        rd_env env = ds[i].environment;
        json_array_append_new(list, json_pack("{s:I, s:b, s:o, s:s, s:s, s:o}", "version", (json_int_t)ds[i].version,
                                              "active", ds[i].active, "created_at", rd_api_json_time(ds[i].created_at),
                                              "created_by", ds[i].created_by, "sha256", ds[i].archive_sha256,
                                              "environment",
                                              env != RD_ENV_NONE ? json_string(rd_env_name(env)) : json_null()));
    }
    rd_store_deployments_free(ds, n);
    rd_api_reply(c, resp, 200, json_pack("{s:o}", "deployments", list));
}

static void do_activate(call *c, rd_httpd_response *resp)
{
    rd_error err;
    rd_error_clear(&err);
    /* rolling back to a prod version is a prod deploy: prod access, as for deploying it (a version with no
     * recorded environment counts as prod) */
    rd_store_deployment *ds = NULL;
    size_t n = 0;
    rd_status st = rd_store_deploy_list(c->api->st, c->project, &ds, &n, &err);
    rd_env env = RD_ENV_NONE;
    int known = 0;
    for (size_t i = 0; st == RD_OK && i < n; i++)
        if (ds[i].version == c->version) {
            env = ds[i].environment;
            known = 1;
        }
    rd_store_deployments_free(ds, n);
    if (st == RD_OK && known && !rd_role_can(c->role, c->prod_access, RD_ACTION_DEPLOY,
                                             env == RD_ENV_DEV ? RD_ENV_DEV : RD_ENV_PROD)) {
        rd_api_reply_error(c, resp, 403, "Forbidden",
                    "version %" PRId64 " of %s runs in prod: activating it needs prod access", c->version, c->project);
        return;
    }
    if (st == RD_OK)
        st = rd_store_deploy_activate(c->api->st, c->user.name, c->project, c->version, &err);
    if (st == RD_E_NOT_FOUND) {
        rd_api_reply_error(c, resp, 404, "NotFound", "project %s has no version %" PRId64, c->project, c->version);
        return;
    }
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    rd_api_reply(c, resp, 200, json_pack("{s:I, s:b}", "version", (json_int_t)c->version, "active", 1));
}

/* ---- variables ---------------------------------------------------------------------------------------- */

/* The variables of env over shared, as a .env for the loader (values are secrets: rd_dotenv_free wipes), read
 * in one transaction. */
static rd_status merged_variables(call *c, rd_env env, rd_dotenv *out, rd_error *err)
{
    memset(out, 0, sizeof *out);
    rd_store_value *vs = NULL;
    size_t n = 0;
    rd_status st = rd_store_variable_values(c->api->st, c->project, env, 1, &vs, &n, err);
    if (st != RD_OK)
        return st;
    if (n && !(out->items = calloc(n, sizeof *out->items)))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    /* shared first, then env's own, which win */
    for (int pass = 0; pass < 2 && st == RD_OK; pass++) {
        for (size_t i = 0; i < n && st == RD_OK; i++) {
            if ((vs[i].environment == RD_ENV_SHARED) != (pass == 0))
                continue;
            size_t j = 0;
            while (j < out->count && strcmp(out->items[j].key, vs[i].name) != 0)
                j++;
            rd_dotenv_entry *e = &out->items[j];
            if (j == out->count) {
                if (!(e->key = strdup(vs[i].name))) {
                    st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
                    break;
                }
                out->count++;
            }
            if (e->value) {
                OPENSSL_cleanse(e->value, strlen(e->value));
                free(e->value);
            }
            e->value = vs[i].value; /* handed over: rd_dotenv_free wipes it */
            vs[i].value = NULL;
        }
    }
    rd_store_values_free(vs, n);
    if (st != RD_OK)
        rd_dotenv_free(out);
    return st;
}

static void do_vars_get(call *c, rd_httpd_response *resp)
{
    char v[8];
    int names_only = rd_api_query_get(c->query, "names", v, sizeof v) != NULL;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = RD_OK;
    json_t *out = NULL;
    if (names_only) {
        rd_store_variable *vs = NULL;
        size_t n = 0;
        st = rd_store_variable_list(c->api->st, c->project, c->env, &vs, &n, &err);
        out = json_array();
        for (size_t i = 0; st == RD_OK && i < n; i++)
            json_array_append_new(out, json_string(vs[i].name));
        rd_store_variables_free(vs, n);
    } else {
        rd_store_value *vs = NULL;
        size_t n = 0;
        st = rd_store_variable_values(c->api->st, c->project, c->env, 0, &vs, &n, &err);
        out = json_object();
        for (size_t i = 0; st == RD_OK && i < n; i++) {
            json_t *js = json_stringn(vs[i].value, vs[i].len); /* jansson's copy is wiped when freed */
            if (!js)
                st = rd_error_set(&err, RD_E_INTERNAL, "the value of %s is not UTF-8 text", vs[i].name);
            else
                json_object_set_new(out, vs[i].name, js);
        }
        rd_store_values_free(vs, n);
    }
    if (st != RD_OK) {
        json_decref(out);
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    rd_api_reply(c, resp, 200,
          json_pack("{s:s, s:o}", "environment", rd_env_name(c->env), names_only ? "names" : "variables", out));
}

static void do_vars_patch(call *c, const rd_buf *body, rd_httpd_response *resp)
{
    static const rd_api_field schema[] = {
        { "set", RD_API_STRING_MAP, 0 }, { "unset", RD_API_STRING_LIST, 0 }, { NULL, RD_API_STRING, 0 }
    };
    json_t *o = NULL;
    char msg[MSG_MAX];
    if (rd_api_parse_json_body(body->data, body->len, schema, &o, msg, sizeof msg) != 0) {
        rd_api_reply_error(c, resp, 400, "BadRequest", "%s", msg);
        return;
    }
    json_t *set = json_object_get(o, "set"), *unset = json_object_get(o, "unset");
    const char *k;
    json_t *v;
    size_t i;
    /* everything is checked before anything changes */
    json_object_foreach(set, k, v) {
        char nm[80];
        shown(k, strlen(k), nm);
        if (!rd_store_variable_name_valid(k)) {
            rd_api_reply_error(c, resp, 400, "InvalidName", "\"%s\" is not a variable name (letters, digits, _ . -, "
                        "starting with a letter or _, at most %d)", nm, RD_STORE_VARIABLE_NAME_MAX);
            json_decref(o);
            return;
        }
        if (json_string_length(v) > RD_STORE_VALUE_MAX) {
            rd_api_reply_error(c, resp, 400, "BadRequest", "the value of %s is over %d bytes", nm, RD_STORE_VALUE_MAX);
            json_decref(o);
            return;
        }
    }
    json_array_foreach(unset, i, v) {
        const char *name = json_string_value(v);
        char nm[80];
        shown(name, strlen(name), nm);
        if (!rd_store_variable_name_valid(name)) {
            rd_api_reply_error(c, resp, 400, "InvalidName", "\"%s\" is not a variable name", nm);
            json_decref(o);
            return;
        }
        if (json_object_get(set, name)) {
            rd_api_reply_error(c, resp, 400, "BadRequest", "%s is both set and unset", nm);
            json_decref(o);
            return;
        }
    }
    size_t nset = json_object_size(set), nunset = json_array_size(unset), k_set = 0;
    rd_store_set_item *items = calloc(nset ? nset : 1, sizeof *items);
    const char **names = calloc(nunset ? nunset : 1, sizeof *names);
    int *removed = calloc(nunset ? nunset : 1, sizeof *removed);
    if (!items || !names || !removed) {
        free(items);
        free(names);
        free(removed);
        json_decref(o);
        rd_api_reply_error(c, resp, 500, "Internal", "out of memory");
        return;
    }
    json_object_foreach(set, k, v) {
        items[k_set].name = k;
        items[k_set].value = json_string_value(v);
        items[k_set].len = json_string_length(v);
        k_set++;
    }
    json_array_foreach(unset, i, v)
        names[i] = json_string_value(v);
    rd_error err;
    rd_error_clear(&err);
    /* one transaction: all of it or nothing */
    rd_status st = rd_store_variable_patch(c->api->st, c->user.name, c->project, c->env, items, nset, names, nunset,
                                           removed, &err);
    json_t *done_set = json_array(), *done_unset = json_array();
    for (size_t j = 0; st == RD_OK && j < nset; j++)
        json_array_append_new(done_set, json_string(items[j].name));
    for (size_t j = 0; st == RD_OK && j < nunset; j++)
        if (removed[j])
            json_array_append_new(done_unset, json_string(names[j]));
    free(items);
    free(names);
    free(removed);
    json_decref(o);
    if (st != RD_OK) {
        json_decref(done_set);
        json_decref(done_unset);
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    rd_api_reply(c, resp, 200,
          json_pack("{s:s, s:o, s:o}", "environment", rd_env_name(c->env), "set", done_set, "unset", done_unset));
}

static void do_var_put(call *c, const rd_buf *body, rd_httpd_response *resp)
{
    static const rd_api_field schema[] = { { "value", RD_API_STRING, 1 }, { NULL, RD_API_STRING, 0 } };
    json_t *o = NULL;
    char msg[MSG_MAX];
    if (rd_api_parse_json_body(body->data, body->len, schema, &o, msg, sizeof msg) != 0) {
        rd_api_reply_error(c, resp, 400, "BadRequest", "%s", msg);
        return;
    }
    json_t *v = json_object_get(o, "value");
    rd_error err;
    rd_error_clear(&err);
    if (json_string_length(v) > RD_STORE_VALUE_MAX) {
        json_decref(o);
        rd_api_reply_error(c, resp, 400, "BadRequest", "the value of %s is over %d bytes", c->var, RD_STORE_VALUE_MAX);
        return;
    }
    rd_status st = rd_store_variable_set(c->api->st, c->user.name, c->project, c->env, c->var, json_string_value(v),
                                         json_string_length(v), &err);
    json_decref(o);
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    rd_api_reply(c, resp, 200,
          json_pack("{s:s, s:s, s:o}", "name", c->var, "environment", rd_env_name(c->env), "updated_at",
                    rd_api_json_time((int64_t)time(NULL))));
}

static void do_var_delete(call *c, rd_httpd_response *resp)
{
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_variable_delete(c->api->st, c->user.name, c->project, c->env, c->var, &err);
    if (st == RD_E_NOT_FOUND) {
        rd_api_reply_error(c, resp, 404, "NotFound", "no variable %s in %s of %s", c->var, rd_env_name(c->env), c->project);
        return;
    }
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    rd_api_reply(c, resp, 204, NULL);
}

static void do_audit(call *c, rd_httpd_response *resp)
{
    char v[16];
    size_t limit = 100;
    if (rd_api_query_get(c->query, "limit", v, sizeof v)) {
        char *end = NULL;
        unsigned long x = strtoul(v, &end, 10);
        if (!v[0] || *end || x < 1 || x > AUDIT_LIMIT_MAX || v[0] < '0' || v[0] > '9') {
            rd_api_reply_error(c, resp, 400, "BadRequest", "limit must be a number from 1 to %d", AUDIT_LIMIT_MAX);
            return;
        }
        limit = x;
    }
    rd_store_audit_entry *es = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_audit_list(c->api->st, c->project, limit, &es, &n, &err);
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *detail = es[i].detail_json ? json_loads(es[i].detail_json, 0, NULL) : NULL;
        json_array_append_new(list, json_pack("{s:o, s:s, s:s, s:s?, s:o}", "at", rd_api_json_time(es[i].at), "actor",
                                              es[i].actor, "action", es[i].action, "project", es[i].project,
                                              "detail", detail ? detail : json_object()));
    }
    rd_store_audit_free(es, n);
    rd_api_reply(c, resp, 200, json_pack("{s:o}", "events", list));
}

/* ---- deployments -------------------------------------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int mkdir_0700(const char *p)
{
    return mkdir(p, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* problems: the loader's message with the deployment's folder taken off its paths. */
static json_t *problems_of(const char *msg, const char *dir)
{
    rd_buf b = RD_BUF_INIT;
    size_t dl = strlen(dir);
    for (const char *p = msg; *p;) {
        if (strncmp(p, dir, dl) == 0 && p[dl] == '/') {
            p += dl + 1;
            continue;
        }
        rd_buf_append(&b, p, 1);
        p++;
    }
    json_t *a = json_array();
    json_array_append_new(a, json_string(rd_buf_cstr(&b)));
    rd_buf_free(&b);
    return a;
}

/* missing: the project's keys neither env nor shared holds, per connector (connector.NAME.* keys; the others
 * under connector null). A connector's aws_access_key_id / aws_secret_access_key set in its file counts. */
static json_t *missing_of(char **keys, size_t nkeys, const rd_dotenv *vars, const rd_project *p)
{
    json_t *groups = json_array();
    for (size_t i = 0; i < nkeys; i++) {
        if (rd_dotenv_get(vars, keys[i]))
            continue;
        json_t *conn = json_null();
        if (strncmp(keys[i], "connector.", 10) == 0) {
            const char *rest = keys[i] + 10, *dot = strrchr(rest, '.');
            if (dot && dot > rest) {
                char *name = strndup(rest, (size_t)(dot - rest));
                const rd_connector *cn = name ? rd_project_connector(p, name) : NULL;
                if (cn && ((strcmp(dot + 1, "aws_access_key_id") == 0 && cn->aws_access_key_id) ||
                           (strcmp(dot + 1, "aws_secret_access_key") == 0 && cn->aws_secret_access_key))) {
                    free(name);
                    continue;
                }
                json_decref(conn);
                conn = name ? json_string(name) : json_null();
                free(name);
            }
        }
        json_t *g = NULL;
        size_t j;
        json_t *x;
        json_array_foreach(groups, j, x)
            if (json_equal(json_object_get(x, "connector"), conn))
                g = x;
        if (!g) {
            g = json_pack("{s:O, s:[]}", "connector", conn, "keys");
            json_array_append_new(groups, g);
        }
        json_array_append_new(json_object_get(g, "keys"), json_string(keys[i]));
        json_decref(conn);
    }
    return groups;
}

static void do_deploy(call *c, const rd_buf *body, rd_httpd_response *resp)
{
    rd_api *a = c->api;
    char envq[16];
    rd_env env = RD_ENV_PROD;
    if (rd_api_query_get(c->query, "environment", envq, sizeof envq)) {
        env = rd_env_parse(envq);
        if (env == RD_ENV_NONE || env == RD_ENV_SHARED) {
            rd_api_reply_error(c, resp, 400, "InvalidName", "environment must be dev or prod");
            return;
        }
    }
    if (!rd_role_can(c->role, c->prod_access, RD_ACTION_VARIABLES_LIST, env)) {
        /* validation reads the environment's variables (and `missing` names them): prod needs prod access */
        rd_api_reply_error(c, resp, 403, "Forbidden", "deploying %s to prod needs prod access", c->project);
        return;
    }
    if (body->len > RD_API_MAX_ARCHIVE_BODY) {
        rd_api_reply_error(c, resp, 413, "PayloadTooLarge", "the archive is larger than %zu bytes", RD_API_MAX_ARCHIVE_BODY);
        return;
    }
    if (!body->len) {
        rd_api_reply_error(c, resp, 400, "BadRequest", "the body must be the project's archive (redduck deploy makes it)");
        return;
    }
    rd_error err;
    rd_error_clear(&err);
    rd_status st = RD_OK;
    if (!c->project_exists) {
        st = rd_store_project_create(a->st, c->user.name, c->project, &err);
        if (st == RD_E_USAGE) /* created meanwhile */
            st = RD_OK;
        if (st != RD_OK) {
            rd_api_reply_store(c, resp, st, &err);
            return;
        }
    }
    char sha[65];
    sha256_hex(body->data, body->len, sha);
    rd_buf projdir = RD_BUF_INIT, rel = RD_BUF_INIT, dest = RD_BUF_INIT, lockp = RD_BUF_INIT;
    rd_buf_printf(&projdir, "%s/projects", a->data_dir);
    mkdir_0700(rd_buf_cstr(&projdir));
    rd_buf_printf(&projdir, "/%s", c->project);
    mkdir_0700(rd_buf_cstr(&projdir));
    rd_buf_printf(&lockp, "%s/.deploy.lock", rd_buf_cstr(&projdir));

    pthread_mutex_lock(&a->deploy_lock);
    int lockfd = open(rd_buf_cstr(&lockp), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
        rd_api_reply_error(c, resp, 500, "Internal", "cannot lock the deployments of %s: %s", c->project, strerror(errno));
        goto out;
    }
    rd_store_deployment *ds = NULL;
    size_t nd = 0;
    if ((st = rd_store_deploy_list(a->st, c->project, &ds, &nd, &err)) != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        goto out;
    }
    int64_t next = 1;
    for (size_t i = 0; i < nd; i++)
        if (ds[i].version >= next)
            next = ds[i].version + 1;
    rd_store_deployments_free(ds, nd);
    rd_buf_printf(&rel, "projects/%s/v%" PRId64, c->project, next);
    rd_buf_printf(&dest, "%s/%s", a->data_dir, rd_buf_cstr(&rel));
    rm_tree(rd_buf_cstr(&dest)); /* a folder an interrupted deploy left, never recorded */
    if ((st = rd_archive_unpack(body->data, body->len, rd_buf_cstr(&dest), NULL, &err)) != RD_OK) {
        if (st == RD_E_CONFIG)
            rd_api_reply_error(c, resp, 400, "BadRequest", "the archive was refused: %s", err.message);
        else
            rd_api_reply_store(c, resp, st, &err);
        goto out;
    }
    rd_dotenv vars;
    if ((st = merged_variables(c, env, &vars, &err)) != RD_OK) {
        rm_tree(rd_buf_cstr(&dest));
        rd_api_reply_store(c, resp, st, &err);
        goto out;
    }
    char label[64];
    snprintf(label, sizeof label, "the variables of %s%s", rd_env_name(env), " (and shared)");
    rd_project_load_options lo = { .env = &vars, .env_label = label, .missing_templates_ok = 1, .no_host_access = 1 };
    rd_project proj;
    st = rd_project_load_opts(rd_buf_cstr(&dest), &lo, &proj, &err);
    if (st != RD_OK) {
        rd_dotenv_free(&vars);
        rm_tree(rd_buf_cstr(&dest));
        if (st == RD_E_CONFIG)
            rd_api_reply(c, resp, 422,
                  json_pack("{s:{s:s, s:s, s:o}}", "error", "code", "InvalidProject", "message",
                            "the project does not validate under the server's rules: fix the problems and deploy again",
                            "problems", problems_of(err.message, rd_buf_cstr(&dest))));
        else
            rd_api_reply_store(c, resp, st, &err);
        goto out;
    }
    char **keys = NULL;
    size_t nkeys = 0;
    json_t *missing = NULL;
    if ((st = rd_project_env_keys(rd_buf_cstr(&dest), &keys, &nkeys, &err)) == RD_OK)
        missing = missing_of(keys, nkeys, &vars, &proj);
    rd_project_keys_free(keys, nkeys);
    rd_project_free(&proj);
    rd_dotenv_free(&vars);
    int64_t version = 0;
    if (st == RD_OK)
        st = rd_store_deploy_env(a->st, c->user.name, c->project, env, rd_buf_cstr(&rel), sha, &version, &err);
    if (st != RD_OK) {
        json_decref(missing);
        rm_tree(rd_buf_cstr(&dest));
        rd_api_reply_store(c, resp, st, &err);
        goto out;
    }
    if (version != next) { /* the store's counter and the folders disagree: the folder is not the version's */
        json_decref(missing);
        rd_api_reply_error(c, resp, 500, "Internal",
                    "the store gave version %" PRId64 " for the folder of version %" PRId64 " of %s", version, next,
                    c->project);
        goto out;
    }
    rd_api_reply(c, resp, 201,
          json_pack("{s:s, s:I, s:s, s:s, s:o}", "project", c->project, "version", (json_int_t)version, "sha256", sha,
                    "environment", rd_env_name(env), "missing", missing ? missing : json_array()));
out:
    if (lockfd >= 0)
        close(lockfd);
    pthread_mutex_unlock(&a->deploy_lock);
    rd_buf_free(&projdir);
    rd_buf_free(&rel);
    rd_buf_free(&dest);
    rd_buf_free(&lockp);
}

/* ---- on_complete, on_done ----------------------------------------------------------------------------- */

static void on_complete(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    (void)ctx;
    call *c = rd_httpd_data(req);
    const rd_buf *body = rd_httpd_body(req);
    if (c->r == R_PAGE) {
        rd_page_on_complete(c, body, resp);
        return;
    }
    if (c->r == R_EXT) {
        c->ext->complete(c, body, resp);
        return;
    }
    if (c->r != R_DEPLOY && c->r != R_HEALTH && body->len > RD_API_MAX_JSON_BODY) {
        rd_api_reply_error(c, resp, 413, "PayloadTooLarge", "the body is larger than %zu bytes", RD_API_MAX_JSON_BODY);
        return;
    }
    switch (c->r) {
    case R_HEALTH: rd_api_reply(c, resp, 200, json_pack("{s:b, s:s}", "ok", 1, "version", RD_API_VERSION)); break;
    case R_WHOAMI: do_whoami(c, resp); break;
    case R_PROJECT_CREATE: do_project_create(c, body, resp); break;
    case R_PROJECT_GET: do_project_get(c, resp); break;
    case R_DEPLOY: do_deploy(c, body, resp); break;
    case R_DEPLOY_LIST: do_deploy_list(c, resp); break;
    case R_ACTIVATE: do_activate(c, resp); break;
    case R_VARS_GET: do_vars_get(c, resp); break;
    case R_VARS_PATCH: do_vars_patch(c, body, resp); break;
    case R_VAR_PUT: do_var_put(c, body, resp); break;
    case R_VAR_DELETE: do_var_delete(c, resp); break;
    case R_AUDIT: do_audit(c, resp); break;
    default: rd_api_reply_error(c, resp, 404, "NotFound", "no such call"); break;
    }
}

static void on_too_large(void *ctx, rd_httpd_request *req, int before_body, size_t limit, rd_httpd_response *resp)
{
    (void)ctx;
    (void)before_body;
    call *c = rd_httpd_data(req);
    if (c && c->r == R_PAGE) { /* a page's form: plain text, not the API's JSON */
        resp->status = c->status = 413;
        rd_headers_set(&resp->headers, "Content-Type", "text/plain; charset=utf-8");
        rd_buf_puts(&resp->body, "The form is too large.\n");
        return;
    }
    if (c)
        rd_api_reply_error(c, resp, 413, "PayloadTooLarge", "the body is larger than %zu bytes", limit);
    else
        resp->status = 413;
}

static void on_done(void *ctx, rd_httpd_request *req)
{
    rd_api *a = ctx;
    call *c = rd_httpd_data(req);
    if (!c)
        return;
    if (a->log) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (long)((now.tv_sec - c->start.tv_sec) * 1000 + (now.tv_nsec - c->start.tv_nsec) / 1000000);
        char path[RD_STORE_VARIABLE_NAME_MAX + 128];
        shown_max(c->path ? c->path : "", c->path ? strlen(c->path) : 0, path, sizeof path - 4);
        fprintf(a->log, "redduck server: %s %s %d %ld ms user=%s\n", rd_httpd_method(req), path,
                c->status ? c->status : 499, ms, c->authed ? c->user.name : "-");
        fflush(a->log);
    }
    if (c->r == R_PAGE)
        rd_page_on_done(c);
    else if (c->r == R_EXT && c->ext->done)
        c->ext->done(c);
    rd_store_user_clear(&c->user);
    free(c->path);
    free(c->query);
    free(c);
    rd_httpd_set_data(req, NULL);
}

/* ---- the API object ----------------------------------------------------------------------------------- */

rd_status rd_api_new(rd_store *st, const rd_api_options *o, rd_api **out, rd_error *err)
{
    if (!st || !o || !o->data_dir || !*o->data_dir)
        return rd_error_set(err, RD_E_USAGE, "the API needs a store and a data dir");
    rd_api *a = calloc(1, sizeof *a);
    if (!a || !(a->data_dir = strdup(o->data_dir)) || !(a->fail = calloc(MAX_ADDRESSES, sizeof *a->fail))) {
        if (a)
            free(a->data_dir);
        free(a);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    a->st = st;
    a->max_failures = o->auth_failures ? o->auth_failures : RD_API_AUTH_FAILURES;
    a->window = o->auth_window_seconds ? o->auth_window_seconds : RD_API_AUTH_WINDOW_SECONDS;
    a->log = o->log;
    a->sched = o->scheduler;
    a->tls = o->tls;
    a->query = o->query;
    if (!a->query.max_rows)
        a->query.max_rows = 10000;
    if (!a->query.timeout_ms)
        a->query.timeout_ms = 30000;
    if (!a->query.max_memory)
        a->query.max_memory = "256MB";
    if (!a->query.max_concurrent)
        a->query.max_concurrent = 8;
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->deploy_lock, NULL);
    rd_status s = rd_page_new(a, &a->page, err);
    if (s == RD_OK)
        s = rd_query_engine_new(&a->queries, err);
    if (s != RD_OK) {
        rd_api_free(a);
        return s;
    }
    *out = a;
    return RD_OK;
}

void rd_api_free(rd_api *api)
{
    if (!api)
        return;
    rd_page_free(api->page);
    rd_query_engine_free(api->queries);
    pthread_mutex_destroy(&api->lock);
    pthread_mutex_destroy(&api->deploy_lock);
    free(api->fail);
    free(api->data_dir);
    free(api);
}

void rd_api_handler(rd_api *api, rd_httpd_handler *h)
{
    memset(h, 0, sizeof *h);
    h->on_headers = on_headers;
    h->on_complete = on_complete;
    h->on_too_large = on_too_large;
    h->on_done = on_done;
    h->ctx = api;
}

void rd_api_httpd_options(rd_httpd_options *o)
{
    o->max_body = RD_API_MAX_ARCHIVE_BODY;
    o->max_connections = 1000;
    o->thread_per_connection = 1; /* long polls and queries block their callbacks */
    o->idle_timeout_seconds = 30;
    o->server_name = "redduck-server/" RD_API_VERSION;
}
