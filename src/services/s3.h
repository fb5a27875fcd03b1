/* s3.h — the S3 calls ingest needs: HeadBucket (the bucket's region), ListObjectsV2 (paged), GetObject into
 * memory (the manifest), DeleteObjects (1000 keys a call, Content-MD5) and a signed GetObject request for
 * the parallel downloader. Owns S3 request shapes and XML reply parsing; transport and retries are
 * aws/client.h's. Every key and bucket is passed unencoded; this module encodes them. */
#ifndef RD_SERVICES_S3_H
#define RD_SERVICES_S3_H

#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"
#include "redduck/buf.h"
#include "redduck/headers.h"

#define RD_S3_DELETE_BATCH 1000

/* "s3://bucket/some/prefix" → bucket and prefix (both malloc'd; prefix may be ""). The one validator of S3
 * locations (ingest --staging, a project's output_location): the bucket follows S3's naming rules, the prefix
 * has no "." or ".." segment, the URL no control character. RD_E_USAGE with the expected form otherwise. */
rd_status rd_s3_parse_url(const char *url, char **bucket, char **prefix, rd_error *err);

/* HeadBucket: the bucket's region (x-amz-bucket-region, also read from a 301 reply) into region. */
rd_status rd_s3_head_bucket(rd_aws_client *c, const char *bucket, char *region, size_t region_len, rd_error *err);

typedef struct rd_s3_object {
    char *key;     /* owned */
    uint64_t size;
    int64_t last_modified; /* UTC seconds (LastModified), 0 when the reply has none */
    char etag[80]; /* the listing's <ETag>, quotes kept (as If-Match wants it); "" when absent, longer than
                      79 bytes or holding anything but printable ASCII */
} rd_s3_object;

typedef struct rd_s3_object_list {
    rd_s3_object *items; /* owned */
    size_t count;
} rd_s3_object_list;
void rd_s3_object_list_free(rd_s3_object_list *l);

/* ListObjectsV2 under prefix, following continuation tokens; appends to out (in key order per page). */
rd_status rd_s3_list(rd_aws_client *c, const char *bucket, const char *prefix, rd_s3_object_list *out,
                     rd_error *err);

/* GetObject of a small object (at most max_bytes, else RD_E_REMOTE) into out. */
rd_status rd_s3_get(rd_aws_client *c, const char *bucket, const char *key, size_t max_bytes, rd_buf *out,
                    rd_error *err);

/* DeleteObjects in batches of RD_S3_DELETE_BATCH (Quiet, Content-MD5). *deleted counts keys removed (or
 * already absent). A per-key <Error> in a reply fails the call naming the key and the S3 code. */
rd_status rd_s3_delete_keys(rd_aws_client *c, const char *bucket, const char *const *keys, size_t count,
                            size_t *deleted, rd_error *err);

/* Lists bucket/prefix and deletes every object under it (rd_s3_delete_keys); *objects and *bytes are
 * increased by what was deleted. A failed listing is prefixed "listing s3://BUCKET/PREFIX: ". */
rd_status rd_s3_delete_prefix(rd_aws_client *c, const char *bucket, const char *prefix, size_t *objects,
                              uint64_t *bytes, rd_error *err);

/* A signed GetObject of `length` bytes of bucket/key from byte `offset`, ready to send: *url (malloc'd) and
 * headers (signed, with Range and If-Match). length UINT64_MAX means to the end: Range "bytes=offset-", none
 * for offset 0; else Range "bytes=offset-(offset+length-1)" (length 0, or a range past 2^64, is RD_E_USAGE).
 * if_match (an ETag, quotes included; printable ASCII, else RD_E_USAGE) or NULL. For rd_transfer's sign
 * callback. */
rd_status rd_s3_prepare_get(rd_aws_client *c, const char *bucket, const char *key, uint64_t offset, uint64_t length,
                            const char *if_match, char **url, rd_headers *headers, rd_error *err);

/* Appends key as an S3 path: "/" followed by the key URI-encoded with '/' kept. */
rd_status rd_s3_key_path(rd_buf *out, const char *key);

#endif
