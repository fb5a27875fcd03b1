/* client_internal.h — what the client's files share (client.c: login, deploy, variables; client_runs.c:
 * refresh, status, logs; client_data.c: pull and the remote query): the client object and its one request
 * path. Not installed; only src/server includes it. Threads: as cloud.h (one thread at a time per rd_cloud). */
#ifndef RD_SERVER_CLIENT_INTERNAL_H
#define RD_SERVER_CLIENT_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "aws/http.h"
#include "redduck/cloud.h"
#include "redduck/error.h"

struct rd_cloud {
    rd_cloud_resolved settings;
    rd_http_transport *http;
    int own_http;
    int verbose;
};

/* What a call is, for the messages of its failures. */
typedef struct rd_cloud_call_info {
    const char *method;
    const char *path;    /* under the server, starting "/v1/" (with its query, already encoded) */
    const char *project; /* NULL for calls outside a project */
    const char *doing;   /* "deploy", "read the variables of dev", ... */
    const char *role;    /* what 403 says is needed */
    const char *ctype;   /* the body's Content-Type */
    const void *body;
    size_t body_len;
} rd_cloud_call_info;

/* Sends the call with the token and extra request headers (NULL-terminated "Name", "value" pairs; may be
 * NULL); the whole answer in *resp whatever its status (the body through on_body when set, else in resp).
 * timeout_ms 0: the transport's. Failures: RD_E_CONFIG (TLS not trusted, worded for the user),
 * RD_E_NETWORK with the transport's reason (the caller says what it means), RD_E_INTERNAL. */
rd_status rd_cloud_send(rd_cloud *c, const rd_cloud_call_info *ci, const char *const *extra, long timeout_ms,
                        size_t (*on_body)(void *, const void *, size_t), void *ctx, rd_http_response *resp,
                        rd_error *err);
/* Sends the call with the token; on a 2xx reply *reply is its JSON (NULL for an empty body) and *status its
 * status. Failures: RD_E_NETWORK (server unreachable), RD_E_CONFIG (TLS not trusted), and the server's
 * error through rd_cloud_reply_error. */
rd_status rd_cloud_call(rd_cloud *c, const rd_cloud_call_info *ci, json_t **reply, int *status, rd_error *err);
/* rd_cloud_call for a reply that must be a JSON object. */
rd_status rd_cloud_call_object(rd_cloud *c, const rd_cloud_call_info *ci, json_t **reply, rd_error *err);
/* The error for a non-2xx reply (j: its parsed body or NULL): 401 → log in again, 403 → ci->role needed,
 * 404, 422 problems, ... each a message saying what to do. */
rd_status rd_cloud_reply_error(const rd_cloud *c, const rd_cloud_call_info *ci, const rd_http_response *resp,
                               const json_t *j, rd_error *err);
/* RD_E_REMOTE: a reply this client does not read. */
rd_status rd_cloud_bad_reply(const rd_cloud *c, const rd_cloud_call_info *ci, rd_error *err);
/* RD_E_USAGE for an invalid project name or environment (either may be NULL). */
rd_status rd_cloud_check_names(const char *project, const char *environment, rd_error *err);

#endif
