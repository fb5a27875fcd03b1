/* auth.h — SigV4 verification of requests the emulator receives, with the project's own signer:
 * the signature is recomputed over exactly the headers the client signed and compared in constant time.
 * Header-signed requests (Authorization) and presigned URLs (X-Amz-Signature in the query) are accepted. */
#ifndef RD_EMULATOR_AUTH_H
#define RD_EMULATOR_AUTH_H

#include <time.h>

#include "emulator/iam/identities.h"
#include "redduck/headers.h"

typedef enum rd_emu_auth_result {
    RD_AUTH_OK = 0,
    RD_AUTH_MISSING,          /* no signature at all */
    RD_AUTH_MALFORMED,        /* Authorization header unparseable */
    RD_AUTH_UNKNOWN_KEY,      /* InvalidAccessKeyId / UnrecognizedClientException / InvalidClientTokenId */
    RD_AUTH_BAD_SIGNATURE,    /* SignatureDoesNotMatch */
    RD_AUTH_SKEWED,           /* RequestTimeTooSkewed (more than 15 minutes) */
    RD_AUTH_BAD_TOKEN,        /* session token missing or wrong */
    RD_AUTH_EXPIRED_TOKEN,    /* ExpiredToken */
    RD_AUTH_EXPIRED_PRESIGN   /* presigned URL past X-Amz-Expires */
} rd_emu_auth_result;

typedef struct rd_emu_auth_info {
    char access_key_id[128];
    char region[64];
    char service[64];
    char signature[65];         /* a header-signed request's Signature, "" otherwise */
    rd_emu_principal principal; /* borrowed from ids */
} rd_emu_auth_info;

/* host: the Host header; raw_target: path?query exactly as received. */
rd_emu_auth_result rd_emu_auth_verify(rd_emu_ids *ids, const char *method, const char *raw_target,
                                      const rd_headers *headers, const char *body, size_t body_len, time_t now,
                                      rd_emu_auth_info *info);

/* What can be checked of a header-signed request before its body arrives: RD_AUTH_MISSING without an
 * Authorization header, else RD_AUTH_MALFORMED, RD_AUTH_UNKNOWN_KEY, RD_AUTH_BAD_TOKEN, RD_AUTH_EXPIRED_TOKEN,
 * RD_AUTH_SKEWED or RD_AUTH_OK (the signature itself is left to rd_emu_auth_verify). For S3 the payload
 * hash is the signed x-amz-content-sha256 header, so rd_emu_auth_verify with no body verifies it fully. */
rd_emu_auth_result rd_emu_auth_precheck(rd_emu_ids *ids, const rd_headers *headers, time_t now,
                                        rd_emu_auth_info *info);

/* 1 when the request is signed with Signature Version 2 — an "AWS <key>:<signature>" Authorization header,
 * or a presigned URL with AWSAccessKeyId and Signature in the query (and no X-Amz-Signature) — which S3
 * refuses with 400 InvalidRequest (RD_EMU_SIGV2_MESSAGE); 0 otherwise. */
#define RD_EMU_SIGV2_MESSAGE                                                                                           \
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
int rd_emu_auth_is_sigv2(const char *raw_target, const rd_headers *headers);
/* The principal of access key `key` into info->principal, and its session token checked against token (NULL:
 * none sent) at now: RD_AUTH_OK, RD_AUTH_UNKNOWN_KEY, RD_AUTH_BAD_TOKEN or RD_AUTH_EXPIRED_TOKEN. The one
 * check of a caller's key, for signatures in headers, in a query and in a POST form. */
rd_emu_auth_result rd_emu_auth_check_principal(rd_emu_ids *ids, const char *key, const char *token, time_t now,
                                               rd_emu_auth_info *info);

/* Reads the credential scope (access key, region, service) without verifying: for routing and errors. */
int rd_emu_auth_scope(const char *raw_target, const rd_headers *headers, rd_emu_auth_info *info);

#endif
