/* s3_store.h — the emulator's object store: buckets and objects as files under <data-dir>/s3/.
 * Owns: on-disk layout, atomic writes (temp file, fsync, rename), ETags (MD5 hex), listing in key order.
 * Thread-safe: every function may be called from several threads; writers of the same key serialise.
 * Used by the S3 REST API (s3_api.c) and by UNLOAD (engine.c). */
#ifndef RD_EMULATOR_S3_STORE_H
#define RD_EMULATOR_S3_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "emulator/emu_error.h"
#include "redduck/error.h"

typedef struct rd_s3_store rd_s3_store;

/* Opens (creating) the store under dir. The store remembers buckets and objects across restarts. A failure
 * here is the emulator's own (reported to rd_emulator_start's caller), hence an rd_error. */
rd_status rd_s3_store_open(const char *dir, rd_s3_store **out, rd_error *err);
void rd_s3_store_close(rd_s3_store *st);

typedef struct rd_s3_object_info {
    char *key;          /* owned */
    uint64_t size;
    char etag[35];      /* "\"<md5 hex>\"" with quotes, as S3 sends it */
    time_t last_modified;
    char *content_type; /* owned, may be NULL */
} rd_s3_object_info;
void rd_s3_object_info_free(rd_s3_object_info *info);

/* Every function below returns 0, or -1 with err filled in S3's words (err may be NULL):
 * 404 NoSuchBucket, 404 NoSuchKey, 409 BucketAlreadyOwnedByYou, 409 BucketNotEmpty, 400 InvalidBucketName,
 * 400 KeyTooLongError, 400 InvalidArgument (an empty key), 400 BadDigest, or 500 InternalError (I/O, out of
 * memory) whose message says what failed (not for an S3 reply: S3 answers with its own generic words). */

/* Bucket names follow S3 rules (3-63 chars, lowercase, digits, '-', '.'): InvalidBucketName otherwise.
 * Creating an existing bucket: BucketAlreadyOwnedByYou. */
int rd_s3_store_create_bucket(rd_s3_store *st, const char *bucket, const char *region, rd_emu_error *err);
/* NoSuchBucket when absent. region_out may be NULL; else malloc'd. */
int rd_s3_store_head_bucket(rd_s3_store *st, const char *bucket, char **region_out, rd_emu_error *err);
/* Names in order; *names malloc'd array of malloc'd strings. created_out: parallel array of times (may be NULL). */
int rd_s3_store_list_buckets(rd_s3_store *st, char ***names, time_t **created, size_t *count, rd_emu_error *err);
/* NoSuchBucket, BucketNotEmpty. */
int rd_s3_store_delete_bucket(rd_s3_store *st, const char *bucket, rd_emu_error *err);

/* Writes an object atomically from memory. */
int rd_s3_store_put_data(rd_s3_store *st, const char *bucket, const char *key, const void *data, size_t len,
                         const char *content_type, rd_s3_object_info *info_out, rd_emu_error *err);
/* Moves a finished local file into the store atomically (rename when on the same filesystem, else copy);
 * used by UNLOAD. The source file is consumed. */
int rd_s3_store_put_file(rd_s3_store *st, const char *bucket, const char *key, const char *path,
                         const char *content_type, rd_s3_object_info *info_out, rd_emu_error *err);
/* Streaming writes (additive): begin creates a temp file in the bucket (NoSuchBucket, KeyTooLongError,
 * InvalidArgument); write appends; commit fsyncs and publishes atomically (the writer is freed whatever the
 * outcome). expected_md5 (16 raw bytes) may be NULL; a mismatch is BadDigest and nothing is stored. abort
 * discards (NULL is a no-op). One writer per thread. */
typedef struct rd_s3_put rd_s3_put;
int rd_s3_store_put_begin(rd_s3_store *st, const char *bucket, const char *key, const char *content_type,
                          rd_s3_put **out, rd_emu_error *err);
int rd_s3_put_write(rd_s3_put *w, const void *data, size_t len, rd_emu_error *err);
int rd_s3_put_commit(rd_s3_put *w, const unsigned char *expected_md5, rd_s3_object_info *info_out,
                     rd_emu_error *err);
void rd_s3_put_abort(rd_s3_put *w);

/* Metadata; NoSuchKey / NoSuchBucket. */
int rd_s3_store_head(rd_s3_store *st, const char *bucket, const char *key, rd_s3_object_info *info,
                     rd_emu_error *err);
/* Opens the object's data file read-only (caller closes fd); fills info. */
int rd_s3_store_open_object(rd_s3_store *st, const char *bucket, const char *key, int *fd,
                            rd_s3_object_info *info, rd_emu_error *err);
/* Deleting a missing key is 0 (as S3). */
int rd_s3_store_delete(rd_s3_store *st, const char *bucket, const char *key, rd_emu_error *err);

/* Keys > start_after (if set) beginning with prefix, in byte order, at most max_keys (0 → none).
 * With a delimiter, keys containing it after the prefix roll up into common prefixes (each counted once
 * toward max_keys). *truncated set when more remain; next_after receives the last key or prefix returned
 * (malloc'd) for continuation. Arrays malloc'd; free with rd_s3_listing_free. */
typedef struct rd_s3_listing {
    rd_s3_object_info *objects;
    size_t object_count;
    char **common_prefixes;
    size_t prefix_count;
    int truncated;
    char *next_after;
} rd_s3_listing;
int rd_s3_store_list(rd_s3_store *st, const char *bucket, const char *prefix, const char *delimiter,
                     const char *start_after, size_t max_keys, rd_s3_listing *out, rd_emu_error *err);
void rd_s3_listing_free(rd_s3_listing *l);

#endif
