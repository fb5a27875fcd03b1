/* emulator.h — the local emulator of the Redshift Data API, Redshift, Redshift Serverless, STS, SSO and S3
 * (`redduck emulator`). Internal interfaces between its parts:
 *   server.c   — libmicrohttpd on loopback, routing, SigV4 verification, identities and authorisation,
 *                fault injection, the STS/SSO/credential APIs;
 *   s3_store.c — the object store on disk (atomic writes, listing), used by the S3 API and by UNLOAD;
 *   s3_api.c   — the S3 REST XML API over the store;
 *   engine.c   — DuckDB warehouses, the Redshift dialect, statements on worker threads, UNLOAD;
 *   data_api.c — the Redshift Data API (JSON 1.1) over the engine.
 * Handlers receive a parsed request and fill a response; they never write to the socket themselves. */
#ifndef RD_EMULATOR_H
#define RD_EMULATOR_H

#include <stdint.h>
#include <sys/types.h>

#include "httpd/httpd.h"
#include "redduck/buf.h"
#include "redduck/error.h"
#include "redduck/headers.h"

typedef struct rd_emu rd_emu;

/* One received request, after authentication. Strings are borrowed for the duration of the handler. */
typedef struct rd_emu_request {
    const char *method;
    const char *path;         /* raw (still percent-encoded) path, e.g. "/bucket/some%20key" */
    const char *query;        /* raw query without '?', "" when none */
    const rd_headers *headers;
    const char *body;
    size_t body_len;
    /* who is calling (filled by the server after SigV4 verification) */
    const char *account_id;   /* "000000000000" */
    const char *principal_arn;/* "arn:aws:iam::000000000000:user/test" or an assumed-role ARN */
    const char *access_key_id;
    const char *region;       /* from the credential scope */
    const char *signature;    /* a header-signed request's verified signature (64 hex), else NULL: the seed of
                                 a signed aws-chunked body's chunk signatures */
    const char *secret_access_key; /* with signature: the caller's secret, to verify those chunks */
    const char *request_id;   /* generated per request */
    const char *host;         /* Host header (virtual-hosted S3 addressing) */
    int fault_fail;           /* fault injection: data.execute.fail drew this request (statement ends FAILED) */
} rd_emu_request;

/* The reply: the HTTP server's response (httpd.h) — body in memory or a file range (fd >= 0: served without
 * copying; the server closes fd when the response is done), and the fault-injection cut. */
typedef rd_httpd_response rd_emu_response;

void rd_emu_response_init(rd_emu_response *r);
void rd_emu_response_free(rd_emu_response *r);

/* 1 if the caller may perform `action` ("s3:GetObject") on `resource` ("arn:aws:s3:::bucket/key").
 * Implemented by server.c from the identities config; the default identity may do everything. */
int rd_emu_allowed(rd_emu *emu, const rd_emu_request *req, const char *action, const char *resource);

/* 1 if the IAM role ARN exists in the config and may perform `action` on `resource` (UNLOAD's role). */
int rd_emu_role_allowed(rd_emu *emu, const char *role_arn, const char *action, const char *resource);

/* Handlers (each fills resp completely, including AWS-shaped errors). */
struct rd_s3_store;
struct rd_emu_engine;
/* S3 REST: bucket from the path (path-style) or the Host (virtual-hosted "bucket.s3.<region>.<domain>" or
 * "bucket.localhost"). */
void rd_emu_s3_handle(rd_emu *emu, struct rd_s3_store *store, const rd_emu_request *req, rd_emu_response *resp);
/* PutObject and UploadPart with a streamed body (the server feeds it as it arrives, so bodies never sit in memory):
 * begin, after the request's headers are authenticated, says how to go on: RD_EMU_S3_STREAM — *out is an
 * upload: rd_emu_s3_upload_write each piece of the body (data goes to a temp file; x-amz-content-sha256,
 * Content-MD5 and flexible checksums are computed as it comes), then rd_emu_s3_upload_finish publishes it or
 * answers the error (XAmzContentSHA256Mismatch, BadDigest, IncompleteBody, …), storing nothing; it frees the
 * upload (abort frees it unfinished; NULL is a no-op). RD_EMU_S3_REPLIED — resp holds the answer (an error
 * found before the body). RD_EMU_S3_BUFFER — not a PutObject or UploadPart (CopyObject and UploadPartCopy
 * included: they carry no body): buffer the (small) body and call rd_emu_s3_handle. req must outlive the
 * upload. */
typedef struct rd_emu_s3_upload rd_emu_s3_upload;
typedef enum rd_emu_s3_route { RD_EMU_S3_BUFFER, RD_EMU_S3_STREAM, RD_EMU_S3_REPLIED } rd_emu_s3_route;
rd_emu_s3_route rd_emu_s3_upload_begin(rd_emu *emu, struct rd_s3_store *store, const rd_emu_request *req,
                                       rd_emu_response *resp, rd_emu_s3_upload **out);
void rd_emu_s3_upload_write(rd_emu_s3_upload *u, const void *data, size_t len);
void rd_emu_s3_upload_finish(rd_emu_s3_upload *u, rd_emu_response *resp);
void rd_emu_s3_upload_abort(rd_emu_s3_upload *u);
/* The operation a request names, for fault injection: "ListBuckets", "ListObjects", "GetObject" (GET/HEAD of
 * an object), "PutObject", "UploadPart", "CopyObject", "UploadPartCopy", "CreateMultipartUpload",
 * "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts", "ListMultipartUploads" or "Other". */
const char *rd_emu_s3_operation(const rd_emu_request *req);
/* Redshift Data API JSON 1.1: operation is the part after "RedshiftData." in X-Amz-Target. */
void rd_emu_data_api_handle(rd_emu *emu, struct rd_emu_engine *eng, const char *operation,
                            const rd_emu_request *req, rd_emu_response *resp);

#endif
