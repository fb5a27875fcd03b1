/* redduck/sigv4.h — AWS Signature Version 4: header signing, query (presigned URL) signing, and the
 * debugging view (canonical request, string to sign) printed by `redduck sign`.
 * Owns: canonicalisation and signing. Does not own: credentials lookup, HTTP, clocks (callers pass time).
 * All functions are reentrant; nothing global. */
#ifndef REDDUCK_SIGV4_H
#define REDDUCK_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "redduck/buf.h"
#include "redduck/error.h"
#include "redduck/headers.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RD_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define RD_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct rd_sigv4_params {
    const char *service;           /* signing name: "s3", "sts", "redshift-data", ... */
    const char *region;            /* "us-east-1" */
    time_t when;                   /* signing time, UTC seconds */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;     /* NULL or "" when none */
    int s3_rules;                  /* 1: S3 — path used as sent (single-encoded, not normalised) and
                                      x-amz-content-sha256 added; 0: other services — path segments
                                      re-encoded (double encoding) and normalised (./, ../, //) */
    /* Less common variants (zero for the AWS SDK behaviour): */
    int path_as_is;                /* 1: path used as sent even without s3_rules */
    int sign_content_sha256;       /* 1: add and sign x-amz-content-sha256 even without s3_rules */
    int omit_session_token;        /* 1: add the session token after signing (not signed), as IoT needs */
} rd_sigv4_params;

/* The request to sign. `url` is the full URL as it goes on the wire
 * (scheme://host[:port]/path?query, path and query already percent-encoded by the caller).
 * `headers` is read and then amended in place: Host (if absent), X-Amz-Date, X-Amz-Security-Token
 * (when a session token is set), x-amz-content-sha256 (S3), Authorization.
 * `payload_hash`: NULL → SHA-256 of body (empty body: RD_SIGV4_EMPTY_SHA256); or a precomputed lowercase
 * hex digest, or RD_SIGV4_UNSIGNED_PAYLOAD. */
typedef struct rd_sigv4_request {
    const char *method;
    const char *url;
    rd_headers *headers;
    const void *body;
    size_t body_len;
    const char *payload_hash;
} rd_sigv4_request;

/* Optional debug output; caller owns and frees the buffers (rd_sigv4_debug_free). */
typedef struct rd_sigv4_debug {
    rd_buf canonical_request;
    rd_buf string_to_sign;
    char signature[65];
    char signed_headers_list[512]; /* "host;x-amz-date" (truncated if longer; the signature is not) */
} rd_sigv4_debug;

void rd_sigv4_debug_init(rd_sigv4_debug *dbg);
void rd_sigv4_debug_free(rd_sigv4_debug *dbg);

/* Signs in the Authorization header. dbg may be NULL. Errors: RD_E_USAGE for a malformed URL or
 * missing parameter (message says which). */
rd_status rd_sigv4_sign_headers(const rd_sigv4_params *params, rd_sigv4_request *req, rd_sigv4_debug *dbg,
                                rd_error *err);

/* Presigns: returns in *out_url (malloc'd, caller frees) the URL with X-Amz-Algorithm, X-Amz-Credential,
 * X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, [X-Amz-Security-Token], X-Amz-Signature appended.
 * Signs the Host header plus any headers in req->headers (which is not modified). Payload hash defaults to
 * UNSIGNED-PAYLOAD for s3_rules, else as for header signing. */
rd_status rd_sigv4_presign_url(const rd_sigv4_params *params, const rd_sigv4_request *req, int expires_seconds,
                               char **out_url, rd_sigv4_debug *dbg, rd_error *err);

/* The signature of one chunk of a signed aws-chunked body (x-amz-content-sha256:
 * STREAMING-AWS4-HMAC-SHA256-PAYLOAD): HMAC-SHA256 with the request's signing key (params: secret, region,
 * service, when) over "AWS4-HMAC-SHA256-PAYLOAD\n" amz-date "\n" scope "\n" prev_signature "\n"
 * sha256("") "\n" chunk_sha256. prev_signature is the request's signature for the first chunk, then the
 * previous chunk's; chunk_sha256 the lowercase hex SHA-256 of the chunk's data. Writes out[65] (hex).
 * RD_E_USAGE for a missing parameter. */
rd_status rd_sigv4_chunk_signature(const rd_sigv4_params *params, const char *prev_signature,
                                   const char *chunk_sha256, char out[65], rd_error *err);

/* HMAC-SHA256 of msg with the signing key of the scope date8 ("YYYYMMDD") / region / service / aws4_request
 * of secret, as lowercase hex into out[65]: a string to sign's signature, or an S3 POST policy's (msg: the
 * policy as base64). The key itself never leaves. */
void rd_sigv4_sign_string(const char *secret, const char *date8, const char *region, const char *service,
                          const void *msg, size_t len, char out[65]);

/* Helpers shared with the verifier and other modules. */
/* Lowercase hex SHA-256 of data into out[65]. */
void rd_sha256_hex(const void *data, size_t len, char out[65]);
/* URI-encodes per SigV4 (unreserved A-Za-z0-9-._~ kept; everything else %XX uppercase);
 * keep_slash keeps '/'. Appends to out. */
rd_status rd_sigv4_uri_encode(rd_buf *out, const char *s, size_t len, int keep_slash);
/* Formats `when` as "YYYYMMDDTHHMMSSZ" (out[17]). */
void rd_sigv4_amz_date(time_t when, char out[17]);
/* Parses "YYYYMMDDTHHMMSSZ"; returns 0 on success. */
int rd_sigv4_parse_amz_date(const char *s, time_t *out);

#ifdef __cplusplus
}
#endif
#endif
