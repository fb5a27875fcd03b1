/* api.h — the /v1 HTTP API of `redduck server` (docs/SERVER_API.md) as an rd_httpd handler: routing, bearer
 * authentication, the per-address slow-down of failed authentications, JSON requests parsed strictly, the
 * role checks (roles.h through the store), deployments unpacked and validated under server rules, variables,
 * the audit log, and one log line per request (method, path without query, status, ms, user: never a body,
 * a token or a value). Owns no state on disk but the deployments' folders; the store owns the rest.
 *
 * Threads: the handler's callbacks run on the httpd pool, several at once; the store is thread-safe and the
 * API's own state (the failure counters, the deploy lock) has locks. */
#ifndef RD_SERVER_API_H
#define RD_SERVER_API_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "httpd/httpd.h"
#include "redduck/error.h"
#include "server/store.h"

#define RD_API_VERSION "0.1.0"
#define RD_API_MAX_JSON_BODY ((size_t)1 << 20)     /* bytes of a JSON request body */
#define RD_API_MAX_ARCHIVE_BODY ((size_t)64 << 20) /* bytes of an uploaded deployment */
#define RD_API_MAX_JSON_DEPTH 16                   /* arrays and objects inside one another */
#define RD_API_AUTH_FAILURES 10                    /* failed authentications from one address ... */
#define RD_API_AUTH_WINDOW_SECONDS 60              /* ... within this many seconds: 429 until it has passed */

typedef struct rd_api rd_api;
struct rd_scheduler;

/* The query API's limits (server flags); 0 in a field: its default. */
typedef struct rd_api_query_limits {
    uint64_t max_rows;      /* rows returned (more: "truncated": true); default 10000 */
    long timeout_ms;        /* a statement is interrupted after this long; default 30000 */
    const char *max_memory; /* DuckDB memory_limit of a query; default "256MB" */
    int max_concurrent;     /* queries at once (more: 429); default 8 */
} rd_api_query_limits;

typedef struct rd_api_options {
    const char *data_dir;         /* required: deployments go to DATA_DIR/projects/<p>/v<N>/ (copied) */
    unsigned auth_failures;       /* 0: RD_API_AUTH_FAILURES */
    unsigned auth_window_seconds; /* 0: RD_API_AUTH_WINDOW_SECONDS */
    FILE *log;                    /* one line per request; NULL: none (borrowed) */
    struct rd_scheduler *scheduler; /* runs refreshes (borrowed; must outlive the API); NULL: refresh calls 503 */
    rd_api_query_limits query;    /* the query API's limits */
    int tls;                      /* the server speaks TLS (the status page's cookies are Secure) */
} rd_api_options;

/* st is borrowed and must outlive the API. RD_E_USAGE without a data dir; RD_E_INTERNAL on out of memory. */
rd_status rd_api_new(rd_store *st, const rd_api_options *o, rd_api **out, rd_error *err);
/* NULL is a no-op. The httpd server using the handler must be stopped first. */
void rd_api_free(rd_api *api);
/* The handler to give rd_httpd_start (ctx is api), with rd_api_httpd_options' limits. */
void rd_api_handler(rd_api *api, rd_httpd_handler *h);
/* The httpd limits the contract names (bodies, connections, idle timeout) and one thread per connection (a
 * long poll or a query holds up only its own connection), over *o's other fields. */
void rd_api_httpd_options(rd_httpd_options *o);

/* ---- request bodies ----------------------------------------------------------------------------------- */

typedef enum rd_api_field_type {
    RD_API_STRING,      /* "value" */
    RD_API_STRING_MAP,  /* {"KEY":"value",...} */
    RD_API_STRING_LIST  /* ["KEY",...] */
} rd_api_field_type;

typedef struct rd_api_field {
    const char *name; /* NULL ends a schema */
    rd_api_field_type type;
    int required;
} rd_api_field;

/* Parses a JSON request body: at most RD_API_MAX_JSON_BODY bytes, UTF-8, no NUL, depth at most
 * RD_API_MAX_JSON_DEPTH (checked before parsing, so deep input costs nothing), no duplicate keys, an object
 * whose fields are all in schema with the type given and the required ones present. On success *out is the
 * object (json_decref it) and 0 is returned; else -1 and msg (msg_len bytes, NUL-terminated) says what is
 * wrong, naming a field or a position but never quoting a value. */
int rd_api_parse_json_body(const void *data, size_t len, const rd_api_field *schema, json_t **out, char *msg,
                           size_t msg_len);

/* 1 when s is a project name as the contract has it: [a-z0-9][a-z0-9_-]{0,62}. */
int rd_api_project_name_valid(const char *s);

#endif
