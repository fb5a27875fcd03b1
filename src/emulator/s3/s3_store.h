/* s3_store.h — the emulator's object store: buckets and objects as files under <data-dir>/s3/.
 * Owns: on-disk layout, atomic writes (temp file, rename; never fsynced: survives the emulator's crashes,
 * not a power loss), ETags (MD5 hex; "<md5 of part md5s>-N" for
 * multipart), listing in key order, stored object metadata and checksums, multipart uploads (parts on disk
 * until completed or aborted, invisible to object reads and listings).
 * Thread-safe: every function may be called from several threads; writers of the same key serialise.
 * Used by the S3 REST API (s3_api.c) and by UNLOAD (engine.c). */
#ifndef RD_EMULATOR_S3_STORE_H
#define RD_EMULATOR_S3_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "emulator/emu_error.h"
#include "redduck/error.h"
#include "redduck/headers.h"

typedef struct rd_s3_store rd_s3_store;

/* Opens (creating) the store under dir. The store remembers buckets and objects across restarts. A failure
 * here is the emulator's own (reported to rd_emulator_start's caller), hence an rd_error. */
rd_status rd_s3_store_open(const char *dir, rd_s3_store **out, rd_error *err);
void rd_s3_store_close(rd_s3_store *st);

/* What an object keeps beside its bytes and content type. Every string owned; a zeroed struct is empty.
 * headers: replayed as they are on GET and HEAD, in order — x-amz-meta-<name> (names lowercased),
 * Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires (the API chooses them; the
 * store keeps any). checksum_algo ("CRC32", "CRC32C", "SHA1", "SHA256") with checksum (base64, "<b64>-N" for
 * a composite) and checksum_type ("FULL_OBJECT" or "COMPOSITE"): the flexible checksum of the upload, or
 * all NULL. On a multipart upload's record, checksum_algo is the upload's algorithm (checksum NULL). */
typedef struct rd_s3_meta {
    rd_headers headers;
    char *checksum_algo;
    char *checksum;
    char *checksum_type;
} rd_s3_meta;
void rd_s3_meta_free(rd_s3_meta *m); /* empties m (NULL is a no-op) */
/* Deep copy into dst (overwritten, not freed first); -1 out of memory (dst then empty). src NULL → empty. */
int rd_s3_meta_copy(rd_s3_meta *dst, const rd_s3_meta *src);

typedef struct rd_s3_object_info {
    char *key;          /* owned */
    uint64_t size;
    char etag[48]; /* "\"<md5 hex>\"" with quotes as S3 sends it, or "\"<md5 hex>-<parts>\"" */
    time_t last_modified;
    char *content_type; /* owned, may be NULL */
    rd_s3_meta meta;    /* owned; filled by head, open_object and the writers (empty in listings) */
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
 * InvalidArgument); write appends; commit publishes atomically (the writer is freed whatever the
 * outcome). expected_md5 (16 raw bytes) may be NULL; a mismatch is BadDigest and nothing is stored. abort
 * discards (NULL is a no-op). One writer per thread. */
typedef struct rd_s3_put rd_s3_put;
int rd_s3_store_put_begin(rd_s3_store *st, const char *bucket, const char *key, const char *content_type,
                          rd_s3_put **out, rd_emu_error *err);
int rd_s3_put_write(rd_s3_put *w, const void *data, size_t len, rd_emu_error *err);
int rd_s3_put_commit(rd_s3_put *w, const unsigned char *expected_md5, rd_s3_object_info *info_out,
                     rd_emu_error *err);
void rd_s3_put_abort(rd_s3_put *w);
/* Sets what the object keeps beside its bytes (copied; replaces an earlier call's), any time before commit:
 *     rd_s3_meta m = { 0 }; rd_headers_add(&m.headers, "x-amz-meta-owner", "ana");
 *     rd_s3_put_set_meta(w, &m, &err); rd_s3_meta_free(&m); ... rd_s3_put_commit(w, NULL, &info, &err);
 * 500 InternalError when out of memory (the writer stays usable; abort or commit it). On a part writer only
 * the checksum fields count. */
int rd_s3_put_set_meta(rd_s3_put *w, const rd_s3_meta *meta, rd_emu_error *err);

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

/* ---- multipart uploads ----------------------------------------------------------------------------------
 * An upload lives under the bucket until completed (its parts become one object atomically: the object is
 * whole or absent, an old one under the key stays until then) or aborted (its storage released). Errors add
 * 404 NoSuchUpload (unknown id, or an id of another key), 400 InvalidPart, 400 InvalidPartOrder,
 * 400 EntityTooSmall and 400 InvalidArgument (part numbers outside 1..10000). */
#define RD_S3_MAX_PARTS 10000
#define RD_S3_MIN_PART_SIZE ((uint64_t)5 << 20)

typedef struct rd_s3_upload_info {
    char upload_id[40];
    char *key; /* owned */
    time_t initiated;
    char *content_type; /* owned, may be NULL */
    rd_s3_meta meta;    /* owned: the object's metadata, applied at completion; checksum_algo the upload's */
} rd_s3_upload_info;
void rd_s3_upload_info_free(rd_s3_upload_info *u);

typedef struct rd_s3_part_info {
    int number;
    uint64_t size;
    char etag[35];
    time_t last_modified;
    char *checksum; /* owned base64 of the part's checksum in the upload's algorithm, or NULL */
} rd_s3_part_info;
void rd_s3_parts_free(rd_s3_part_info *parts, size_t n);

/* Starts an upload of bucket/key; meta (may be NULL) is copied. id_out receives the new upload id. */
int rd_s3_store_mpu_create(rd_s3_store *st, const char *bucket, const char *key, const char *content_type,
                           const rd_s3_meta *meta, char id_out[40], rd_emu_error *err);
/* The upload's record (NoSuchUpload unless it is an upload of key). */
int rd_s3_store_mpu_get(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                        rd_s3_upload_info *out, rd_emu_error *err);
/* A writer of one part (rd_s3_put_write / rd_s3_put_set_meta / rd_s3_put_commit / rd_s3_put_abort as for an
 * object): commit stores the part (replacing, and releasing, an earlier part of that number) and fills
 * info_out's size and etag (key NULL); NoSuchUpload if the upload went away meanwhile. */
int rd_s3_store_part_begin(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id, int part_number,
                           rd_s3_put **out, rd_emu_error *err);
/* The parts uploaded so far, by number (*parts malloc'd, free with rd_s3_parts_free). */
int rd_s3_store_mpu_parts(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                          rd_s3_part_info **parts, size_t *n, rd_emu_error *err);
/* The parts a CompleteMultipartUpload names, in its order. */
typedef struct rd_s3_complete_part {
    int number;
    const char *etag; /* as the client sent it, quoted or not */
} rd_s3_complete_part;
/* Publishes the named parts as bucket/key with the upload's metadata, checksum / checksum_type (may be NULL)
 * as the object's checksum, and removes the upload. InvalidPartOrder (numbers not ascending), InvalidPart (a
 * part missing or its ETag different), EntityTooSmall (a part but the last under RD_S3_MIN_PART_SIZE). */
int rd_s3_store_mpu_complete(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                             const rd_s3_complete_part *parts, size_t n, const char *checksum,
                             const char *checksum_type, rd_s3_object_info *info_out, rd_emu_error *err);
/* Removes the upload and its parts. */
int rd_s3_store_mpu_abort(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                          rd_emu_error *err);
/* The bucket's uploads in progress ordered by key then initiation, those with key beginning with prefix and
 * after (key_marker, upload_id_marker) — S3's ListMultipartUploads order — at most max (*out malloc'd; free
 * each with rd_s3_upload_info_free, then the array). *truncated when more remain. */
int rd_s3_store_mpu_list(rd_s3_store *st, const char *bucket, const char *prefix, const char *key_marker,
                         const char *upload_id_marker, size_t max, rd_s3_upload_info **out, size_t *n, int *truncated,
                         rd_emu_error *err);

#endif
