/* client.h — the one request/response path for every AWS service: endpoint, signing, the "standard"
 * retry mode, verbose logging (secrets redacted), and AWS error parsing into rd_error.
 * JSON 1.1, query/XML and S3 REST are thin encoders over rd_aws_send.
 * Owns: retry policy and backoff. Borrows: transport, credentials provider, config, logger.
 * Thread-safe: one rd_aws_client may be used by several threads at once. */
#ifndef RD_AWS_CLIENT_H
#define RD_AWS_CLIENT_H

#include <jansson.h>
#include <libxml/tree.h>
#include <time.h>

#include "aws/config.h"
#include "aws/endpoints.h"
#include "aws/http.h"
#include "core/log.h"
#include "redduck/creds.h"

#define RD_RETRY_DEFAULT_MAX_ATTEMPTS 3
#define RD_RETRY_MAX_BACKOFF_MS 20000

typedef struct rd_aws_client {
    rd_http_transport *http;       /* borrowed, required */
    rd_creds_provider *creds;      /* borrowed; NULL only for unsigned calls */
    const rd_aws_config *cfg;      /* borrowed; may be NULL */
    const char *profile;           /* borrowed; for endpoint and settings lookup */
    const char *region;            /* borrowed, required */
    const char *endpoint_url;      /* borrowed; the --endpoint-url flag or NULL */
    int max_attempts;              /* 0: AWS_MAX_ATTEMPTS, profile max_attempts, else 3 */
    int no_environment;            /* 1: read no AWS_* variable (AWS_ENDPOINT_URL*, AWS_MAX_ATTEMPTS, ...): a
                                      session without the host (rd_session_options.no_host_environment) */
    const rd_log *log;             /* borrowed; may be NULL */
    time_t (*now)(void);           /* NULL: time(); tests set a fixed clock */
    unsigned (*jitter)(void *ctx, unsigned bound); /* NULL: random; tests make backoff deterministic */
    void *jitter_ctx;
    void (*sleep_ms)(void *ctx, long ms);          /* NULL: nanosleep; tests record sleeps */
    void *sleep_ctx;
} rd_aws_client;

typedef struct rd_aws_request {
    const rd_aws_service *svc;
    const char *method;        /* "POST" */
    const char *path;          /* encoded path starting with '/', e.g. "/" or "/bucket/key" */
    const char *query;         /* encoded query without '?', or NULL */
    const rd_headers *headers; /* extra headers (Content-Type, X-Amz-Target, ...); may be NULL */
    const void *body;
    size_t body_len;
    int body_replayable;       /* 0: never retried once sent (a streamed body) */
    int unsigned_payload;      /* S3: x-amz-content-sha256: UNSIGNED-PAYLOAD */
    int no_auth;               /* send unsigned (AssumeRoleWithWebIdentity, SSO portal) */
    size_t (*on_body)(void *ctx, const void *data, size_t len); /* as rd_http_request */
    void *on_body_ctx;
    const char *bucket;        /* S3 only: addressing (virtual-host for AWS, path-style for custom) */
} rd_aws_request;

/* Resolves the endpoint, signs (fresh signature per attempt), sends, retries per the standard mode
 * (throttling codes, 5xx, connection reset/timeout; exponential backoff with full jitter, max 20 s;
 * attempts from client->max_attempts). A 2xx response returns RD_OK with *resp filled. Otherwise the AWS
 * error is parsed (JSON __type/message, query <Error><Code>, S3 <Error><Code>) into err:
 * err->aws_code set, err->http_status set, code RD_E_DENIED for auth/permission errors (AccessDenied*,
 * InvalidClientTokenId, SignatureDoesNotMatch, ExpiredToken*, UnrecognizedClientException,
 * InvalidAccessKeyId, RequestTimeTooSkewed), RD_E_NOT_FOUND for NoSuch* / ResourceNotFoundException / 404,
 * RD_E_REMOTE otherwise; RD_E_NETWORK when no response came. resp is still filled for non-2xx. */
rd_status rd_aws_send(rd_aws_client *c, const rd_aws_request *req, rd_http_response *resp, rd_error *err);

/* One signed attempt prepared for a caller that sends it itself (the parallel downloader): the URL of req
 * appended to url, req->headers copied into headers and signed now. Does not send, log or retry. */
rd_status rd_aws_prepare(rd_aws_client *c, const rd_aws_request *req, rd_buf *url, rd_headers *headers,
                         rd_error *err);

/* JSON 1.1: POST / with X-Amz-Target: <svc->target_prefix>.<operation>. `input` is borrowed (NULL = {}).
 * *output is a new reference on success (caller json_decref). */
rd_status rd_aws_json_call(rd_aws_client *c, const rd_aws_service *svc, const char *operation, json_t *input,
                           json_t **output, rd_error *err);

/* Query protocol: params are name/value pairs (encoded by the call); NULL-terminated array
 * {"RoleArn", "arn:...", "RoleSessionName", "x", NULL}. Action and Version are added. *output is the parsed
 * XML reply (caller xmlFreeDoc). no_auth for unsigned operations. */
rd_status rd_aws_query_call(rd_aws_client *c, const rd_aws_service *svc, const char *action,
                            const char *const *params, int no_auth, xmlDocPtr *output, rd_error *err);

/* Effective max attempts for this client (flag/env/profile/default). */
int rd_aws_client_max_attempts(const rd_aws_client *c);

/* The AWS error code and message of a non-2xx reply (JSON __type/x-amzn-ErrorType, query or S3 XML
 * <Code>/<Message>; a bodiless reply gets a code from its status: NotFound, Forbidden, ...). Never fails;
 * exposed for tests and the fuzzer. */
void rd_aws_parse_error(const rd_aws_service *svc, const rd_http_response *resp, char *code, size_t code_len,
                        char *message, size_t msg_len);

/* How a failed exchange may be retried. Both retryable classes wait the same full-jitter backoff. */
typedef enum rd_retry_class {
    RD_RETRY_NEVER = 0,  /* fails the same way again: 4xx, a TLS certificate problem, a full local disk */
    RD_RETRY_THROTTLE,   /* the service asks to slow down */
    RD_RETRY_TRANSIENT,  /* a reset, a timeout, a short body, a 5xx */
} rd_retry_class;

/* The one retry classifier, botocore's standard mode, for rd_aws_send and the parallel downloader.
 * transport_st is what the exchange returned: RD_OK (a response came: http_status and aws_code decide),
 * RD_E_NETWORK (reset, timeout, a body cut short: transient), RD_E_CONFIG (a certificate problem: never),
 * RD_E_IO (a local write failed with local_errno: never for ENOSPC, EDQUOT, EROFS or 0, a sink that refused
 * without saying why; transient otherwise); anything else never. A response: throttle for the throttling
 * codes (SlowDown, Throttling, ThrottlingException, ...) and 429; transient for RequestTimeout(Exception)
 * and 500, 502, 503, 504; never otherwise. aws_code may be NULL. */
rd_retry_class rd_aws_retry_class(rd_status transport_st, int local_errno, int http_status, const char *aws_code);

/* Full jitter: a random delay in [0, min(cap_ms, base_ms * 2^(attempt-1))] for the retry after attempt
 * (1-based). jitter(ctx, bound) returns a number below bound; NULL: random bytes. */
long rd_aws_backoff_ms(long base_ms, long cap_ms, int attempt, unsigned (*jitter)(void *ctx, unsigned bound),
                       void *jitter_ctx);

/* XML helpers for service clients: text of the first descendant element named `name` (namespace ignored),
 * malloc'd, or NULL. */
char *rd_xml_find_text(xmlNodePtr root, const char *name);

#endif
