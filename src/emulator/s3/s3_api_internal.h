/* s3_api_internal.h — what the S3 REST API's files share: s3_api.c (addressing, routing, buckets, objects,
 * PutObject and UploadPart bodies), s3_multipart.c (the other multipart operations) and s3_copy.c
 * (CopyObject, UploadPartCopy). Not for use outside src/emulator/s3. Every reply helper fills c->resp; a
 * handler returns with the reply complete. Nothing here keeps state between requests (thread-safe). */
#ifndef RD_EMULATOR_S3_API_INTERNAL_H
#define RD_EMULATOR_S3_API_INTERNAL_H

#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <time.h>

#include "emulator/emu_error.h"
#include "emulator/emulator.h"
#include "emulator/form.h"
#include "emulator/s3/s3_store.h"

/* One request being answered. bucket, key and resource are owned (freed by the router's caller). */
typedef struct s3_call {
    rd_emu *emu;
    rd_s3_store *store;
    const rd_emu_request *req;
    rd_emu_response *resp;
    int head;
    char *bucket;   /* decoded; NULL for the service (ListBuckets) */
    char *key;      /* decoded; NULL for bucket operations */
    char *resource; /* "/bucket/key" for errors */
    rd_form q;
} s3_call;

/* An XML reply being written (rd_s3api_xw_start … rd_s3api_xw_finish, which makes it the 200 body). */
typedef struct s3_xw {
    xmlBufferPtr buf;
    xmlTextWriterPtr w;
} s3_xw;

typedef enum ck_algo { CK_NONE, CK_CRC32, CK_CRC32C, CK_SHA1, CK_SHA256 } ck_algo;

/* The flexible checksum of an upload (x-amz-checksum-<algo>, as header or aws-chunked trailer). */
typedef struct s3_checksum {
    ck_algo algo;
    const char *name; /* header name, e.g. "x-amz-checksum-crc32" */
    uint32_t crc;
    uint32_t table[256];
    EVP_MD_CTX *md;
} s3_checksum;

/* The checksum algorithms S3 names: header, algorithm (x-amz-checksum-algorithm) and XML member names. */
typedef struct s3_ck_name {
    const char *name;
    ck_algo algo;
    const char *algo_name;
    const char *member;
} s3_ck_name;
#define RD_S3API_CK_COUNT 4
extern const s3_ck_name rd_s3api_ck_names[RD_S3API_CK_COUNT];
/* The row of an algorithm name ("CRC32", any case) or of a header name; -1 when unknown (or NULL). */
int rd_s3api_ck_find(const char *algo_or_header);
/* header_name NULL or unknown: CK_NONE (updates do nothing, final gives NULL). */
void rd_s3api_ck_init(s3_checksum *ck, const char *header_name);
void rd_s3api_ck_update(s3_checksum *ck, const void *data, size_t len);
/* The base64 value (malloc'd), or NULL for CK_NONE. Frees the state. */
char *rd_s3api_ck_final(s3_checksum *ck);

/* S3's words for a 500. */
extern const char rd_s3api_internal_message[];
/* A non-negative integer query parameter name (default def, capped at cap) into *out; 0 with S3's
 * InvalidArgument reply filled when it is not one. */
int rd_s3api_query_count(s3_call *c, const char *name, long def, long cap, long *out);
/* Replaces the reply with an S3 error document. */
void rd_s3api_fail(s3_call *c, int status, const char *code, const char *message);
/* The store's error as the reply (a 500's details go to the log; the client reads S3's words). */
void rd_s3api_fail_emu(s3_call *c, const rd_emu_error *e);
/* 1 if the caller may do action on the call's bucket (with_key: its object); else 0 with 403 filled. */
int rd_s3api_allowed(s3_call *c, const char *action, int with_key);

void rd_s3api_xw_start(s3_xw *x, const char *root);
void rd_s3api_xw_el(s3_xw *x, const char *name, const char *value);
/* encode: S3's encoding-type=url. */
void rd_s3api_xw_el_enc(s3_xw *x, const char *name, const char *value, int encode);
void rd_s3api_xw_open(s3_xw *x, const char *name);
void rd_s3api_xw_close(s3_xw *x);
void rd_s3api_xw_finish(s3_xw *x, s3_call *c);

void rd_s3api_iso8601(time_t t, char out[32]);
/* -1 when unparsable. */
time_t rd_s3api_parse_http_date(const char *s);
/* 1 when the entity tag list (comma separated, or "*") matches etag. */
int rd_s3api_etag_matches(const char *list, const char *etag);
/* Strict base64 decode into a malloc'd buffer; NULL when malformed. */
unsigned char *rd_s3api_b64_decode(const char *s, size_t *out_len);
/* 1 when a raw (percent-encoded) string holds an encoded NUL. */
int rd_s3api_has_nul_escape(const char *s);
/* The request body parsed as XML with this root; NULL with 400 MalformedXML filled. Free with xmlFreeDoc. */
xmlDocPtr rd_s3api_parse_body(s3_call *c, const char *root);
/* The text of parent's first child element called name (malloc'd), or NULL. */
char *rd_s3api_child_text(xmlNodePtr parent, const char *name);
/* The metadata a write asks the object to keep into m (emptied by rd_s3_meta_free); 0 with the reply filled
 * (MetadataTooLarge). */
int rd_s3api_request_meta(s3_call *c, rd_s3_meta *m);

/* s3_multipart.c: CreateMultipartUpload (POST ?uploads), CompleteMultipartUpload (POST ?uploadId),
 * AbortMultipartUpload (DELETE ?uploadId), ListParts (GET ?uploadId), ListMultipartUploads (GET bucket
 * ?uploads); and what UploadPart (s3_api.c) checks: partNumber (1..10000, else 0 with the reply filled)
 * and the part's checksum against the upload's algorithm (*ck_name becomes the one to compute; 0 with the
 * reply filled on a mismatch). */
void rd_s3mpu_create(s3_call *c);
void rd_s3mpu_complete(s3_call *c);
void rd_s3mpu_abort(s3_call *c);
void rd_s3mpu_list_parts(s3_call *c);
void rd_s3mpu_list_uploads(s3_call *c);
int rd_s3mpu_part_number(s3_call *c);
int rd_s3mpu_part_checksum(s3_call *c, const rd_s3_upload_info *up, const char **ck_name);

/* s3_copy.c: CopyObject (PUT with x-amz-copy-source) and UploadPartCopy (the same with ?partNumber&uploadId). */
void rd_s3copy_object(s3_call *c);
void rd_s3copy_part(s3_call *c);

#endif
