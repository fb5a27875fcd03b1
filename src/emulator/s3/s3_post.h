/* s3_post.h — S3's browser-based upload (PostObject: an HTML form POSTed to a bucket, authorised by a signed
 * policy document in the form's fields, SigV4 only). Owns the multipart/form-data reading, the policy's
 * verification (signature, expiration, conditions) and the reply S3 gives. Does not own the object store
 * (s3_store.c) nor the REST API's other operations (s3_api.c); the caller (the router) lets such a request in
 * without a header signature, since its signature is in the form.
 * Thread-safe: no state of its own. */
#ifndef RD_EMULATOR_S3_POST_H
#define RD_EMULATOR_S3_POST_H

#include <stddef.h>
#include <time.h>

#include "emulator/emu_error.h"
#include "emulator/emulator.h"

struct rd_s3_store;

/* Bounds of what a form may hold (S3: the fields before the file at most 20 KB). */
#define RD_EMU_S3_POST_MAX_FIELDS 256
#define RD_EMU_S3_POST_MAX_PRE_DATA 20480

/* One text field of the form, in the order sent. name and value are NUL-terminated copies (value may hold
 * NULs of its own: value_len is its length). */
typedef struct rd_emu_s3_post_field {
    char *name;
    char *value;
    size_t value_len;
} rd_emu_s3_post_field;

/* A parsed form: its text fields (those before the file; S3 ignores what follows it) and the file. */
typedef struct rd_emu_s3_post_form {
    rd_emu_s3_post_field *fields;
    size_t count;
    int has_file;
    char *filename;          /* the file part's filename ("" when it gave none) */
    const char *file_data;   /* borrowed from the parsed body */
    size_t file_len;
} rd_emu_s3_post_form;

/* 1 if req is a form upload to a bucket (POST, Content-Type multipart/form-data). */
int rd_emu_s3_is_post_object(const rd_emu_request *req);

/* Parses a multipart/form-data body (content_type: the request's Content-Type, which names the boundary)
 * into *out (rd_emu_s3_post_form_free it; file_data points into body, which must outlive it). 0, or -1 with
 * err in S3's words: 400 MalformedPOSTRequest (not well-formed multipart/form-data, a field without a name,
 * more than RD_EMU_S3_POST_MAX_FIELDS fields), 400 MaxPostPreDataLengthExceeded (more than
 * RD_EMU_S3_POST_MAX_PRE_DATA bytes before the file), 400 InvalidArgument (no file field). *out is
 * written only on success. */
int rd_emu_s3_post_form_parse(const char *content_type, const char *body, size_t body_len,
                              rd_emu_s3_post_form *out, rd_emu_error *err);
void rd_emu_s3_post_form_free(rd_emu_s3_post_form *f);
/* The first field named name (field names compare without case), or NULL. Borrowed. */
const char *rd_emu_s3_post_form_get(const rd_emu_s3_post_form *f, const char *name);

/* The object key the form names: its key field with "${filename}" replaced by the file's name (malloc'd),
 * or NULL without a key field. */
char *rd_emu_s3_post_key(const rd_emu_s3_post_form *f);

/* Checks the decoded policy document (JSON) against the form at time now: bucket is the request's bucket,
 * key the object key (rd_emu_s3_post_key). 0 when the form satisfies it, else -1 with err as S3 answers:
 * 400 InvalidPolicyDocument (not JSON, no expiration or conditions), 403 AccessDenied "Invalid according to
 * Policy: Policy expired." / "…: Policy Condition failed: [\"eq\", \"$key\", \"…\"]" / "…: Extra input
 * fields: NAME" (every field but x-amz-signature, file, policy and x-ignore-* must be named by a condition),
 * 400 EntityTooSmall / EntityTooLarge (content-length-range). */
int rd_emu_s3_post_policy_check(const char *policy_json, size_t len, const rd_emu_s3_post_form *f,
                                const char *bucket, const char *key, time_t now, rd_emu_error *err);

/* The SigV4 signature of a POST policy: lowercase hex HMAC-SHA256 of policy_b64 under the signing key of
 * secret and the scope date8 ("YYYYMMDD"), region, service. Writes out[65]. */
void rd_emu_s3_post_signature(const char *secret, const char *date8, const char *region, const char *service,
                              const char *policy_b64, char out[65]);

/* Answers a PostObject to bucket (decoded) into resp: verifies the form's signature against the identities
 * (InvalidAccessKeyId, SignatureDoesNotMatch, InvalidToken, ExpiredToken), its policy (above) and the
 * credential's s3:PutObject on the key, stores the file with its Content-Type, x-amz-meta-* fields and the
 * REST headers a form may set (Cache-Control, Content-Disposition, Content-Encoding, Content-Language,
 * Expires; 400 MetadataTooLarge past S3's 2 KB of x-amz-meta-*; a Content-MD5 field checked: InvalidDigest,
 * BadDigest), then answers as the form asks (success_action_redirect: 303 to it with bucket, key and etag in
 * its query; success_action_status 200, 201 with PostResponse XML, default 204), or S3's error. */
void rd_emu_s3_post_object(rd_emu *emu, struct rd_s3_store *store, const char *bucket, const rd_emu_request *req,
                           rd_emu_response *resp);

#endif
