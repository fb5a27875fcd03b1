/* api_internal.h — what the files of the API share (api.c, api_runs.c, api_data.c, page.c): the API object,
 * one request's state (rd_api_call), the answers, and the table a file adds its calls under
 * /v1/projects/{p}/ with. api.c authenticates, routes, checks the role (rd_role_can with the route's action)
 * and the query parameters, then calls the route's complete callback with the buffered body; a module never
 * re-checks what api.c has checked. Not installed; only src/server includes it.
 *
 * Threads: as api.h — callbacks run on the httpd pool, several at once; a call's state is its own. */
#ifndef RD_SERVER_API_INTERNAL_H
#define RD_SERVER_API_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "httpd/httpd.h"
#include "redduck/error.h"
#include "server/api.h"
#include "server/roles.h"
#include "server/store.h"

#define RD_API_MSG_MAX 512
#define RD_API_ARG_MAX 128 /* a captured path segment ("*" in a route's tail) */

struct rd_scheduler;
struct rd_page;

typedef struct rd_api_failures {
    char addr[48];
    int64_t window_start; /* seconds, monotonic */
    unsigned count;
} rd_api_failures;

struct rd_api {
    rd_store *st;
    char *data_dir;
    unsigned max_failures;
    unsigned window;
    FILE *log;
    pthread_mutex_t lock; /* the failure counters */
    rd_api_failures *fail;
    size_t nfail;
    pthread_mutex_t deploy_lock; /* deploys of this process, one at a time (flock serialises processes) */
    struct rd_scheduler *sched;  /* borrowed (rd_api_options.scheduler); NULL: refresh calls answer 503 */
    rd_api_query_limits query;   /* the query API's limits (defaults filled in) */
    int tls;                     /* the server speaks TLS (the page's cookies are Secure) */
    struct rd_page *page;        /* owned: the status page's sessions (page.c) */
    struct rd_query_engine *queries; /* owned: the query API's open snapshots and admission (query.h) */
};

typedef enum rd_api_route_id {
    R_NONE,
    R_HEALTH,
    R_WHOAMI,
    R_PROJECT_CREATE,
    R_PROJECT_GET,
    R_DEPLOY,
    R_DEPLOY_LIST,
    R_ACTIVATE,
    R_VARS_GET,
    R_VARS_PATCH,
    R_VAR_PUT,
    R_VAR_DELETE,
    R_AUDIT,
    R_EXT, /* a route of an rd_api_ext_route table (call.ext) */
    R_PAGE /* not under /v1/: the status page (page.c) */
} rd_api_route_id;

struct rd_api_ext_route;

/* One request's state, from its headers to on_done. */
typedef struct rd_api_call {
    rd_api *api;
    rd_api_route_id r;
    const struct rd_api_ext_route *ext; /* with R_EXT */
    char arg[RD_API_ARG_MAX];           /* the segment a route's "*" matched ("" when none) */
    char *path;                         /* without the query */
    char *query;
    char project[RD_STORE_NAME_MAX + 1];
    char var[RD_STORE_VARIABLE_NAME_MAX + 1];
    rd_env env;
    int64_t version;
    rd_store_user user;
    int authed;
    rd_role role;
    int prod_access;
    int project_exists;
    int status;
    struct timespec start;
    rd_httpd_request *req;              /* the request (its headers), valid until on_done */
    void *data;                         /* a module's own state for this call; freed by its done callback */
} rd_api_call;

/* A call a module adds under /v1/projects/{p}/. tail is matched against the path after the project, segment
 * by segment: a literal segment, or "*" for any one segment (at most one "*"; what it matched is copied into
 * c->arg, at most RD_API_ARG_MAX - 1 bytes, else 404). Tables end with an entry whose method is NULL. */
typedef struct rd_api_ext_route {
    const char *method;        /* "GET", "POST", ... */
    const char *tail;          /* "refresh", "runs", "runs/ * /logs" without the spaces, "snapshot", ... */
    rd_action action;          /* what rd_role_can is asked (with RD_ENV_NONE) */
    const char *const *query;  /* the query parameters allowed (NULL-terminated), NULL for none */
    size_t max_body;           /* 0: RD_API_MAX_JSON_BODY */
    /* Optional: after authentication, routing and the role check, before the body is read (a GET that
     * answers from a file fills resp here and returns RD_HTTPD_ANSWER). NULL: RD_HTTPD_BUFFER. */
    rd_httpd_next (*headers)(rd_api_call *c, rd_httpd_request *req, rd_httpd_response *resp);
    /* The body is in: fill resp (with rd_api_reply or by hand, setting c->status). */
    void (*complete)(rd_api_call *c, const rd_buf *body, rd_httpd_response *resp);
    /* Optional: frees c->data. */
    void (*done)(rd_api_call *c);
} rd_api_ext_route;

extern const rd_api_ext_route rd_api_runs_routes[]; /* api_runs.c: refresh, status, runs, logs */
extern const rd_api_ext_route rd_api_data_routes[]; /* api_data.c: snapshot, query */

/* ---- answers ------------------------------------------------------------------------------------------ */

/* Sets the answer to obj (stolen) with status (application/json, no-store); the dump is wiped once copied. */
void rd_api_reply(rd_api_call *c, rd_httpd_response *resp, int status, json_t *obj);
/* {"error":{"code","message"}} with status; the message is made one line. */
void rd_api_reply_error(rd_api_call *c, rd_httpd_response *resp, int status, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 5, 6)));
/* The answer for a store failure: 404 NotFound, 400 BadRequest, else 500 Internal, with err's message. */
void rd_api_reply_store(rd_api_call *c, rd_httpd_response *resp, rd_status st, const rd_error *err);

/* The raw value of query parameter name (at most n - 1 bytes, "" for a bare name), or NULL when absent. */
const char *rd_api_query_get(const char *q, const char *name, char *out, size_t n);
/* Unix seconds as "2026-12-01T10:00:00Z". */
void rd_api_iso_time(int64_t t, char out[32]);
json_t *rd_api_json_time(int64_t t);

/* ---- the failed-authentication counter (shared by the API and the page's login) ------------------------ */

/* Seconds the address must still wait (0: none) after max_failures failures within the window. */
int64_t rd_api_auth_blocked(rd_api *a, const char *addr);
/* Counts one failed authentication from addr. */
void rd_api_auth_failed(rd_api *a, const char *addr);

/* ---- the status page (page.c) --------------------------------------------------------------------------- */

/* The page's state (sessions); rd_api_new/free call these. */
rd_status rd_page_new(rd_api *a, struct rd_page **out, rd_error *err);
void rd_page_free(struct rd_page *p);
/* A request outside /v1/ (c->r is R_PAGE, nothing authenticated yet): the page authenticates it itself
 * (its session cookie) and answers, or asks for the body (a form) with RD_HTTPD_BUFFER. */
rd_httpd_next rd_page_on_headers(rd_api_call *c, rd_httpd_request *req, rd_httpd_response *resp);
void rd_page_on_complete(rd_api_call *c, const rd_buf *body, rd_httpd_response *resp);
void rd_page_on_done(rd_api_call *c);

#endif
