/* s3_store_internal.h — what the object store's files share: s3_store.c (buckets, objects, writers, open) and
 * s3_store_mpu.c (multipart uploads). Not for use outside src/emulator/s3. Paths returned are malloc'd. */
#ifndef RD_EMULATOR_S3_STORE_INTERNAL_H
#define RD_EMULATOR_S3_STORE_INTERNAL_H

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "emulator/s3/s3_store.h"

#define RD_S3ST_KEY_MAX_BYTES 1024

/* A writer (rd_s3_store_put_begin / rd_s3_store_part_begin): a temp file, its MD5 as it is written. */
struct rd_s3_put {
    rd_s3_store *st;
    char *bucket;
    char *key;
    char *content_type;
    char *objdir;
    char *tmp_path;
    int fd;
    EVP_MD_CTX *md5;
    uint64_t size;
    rd_s3_meta meta;
    char *upload_dir; /* a part writer: the upload's directory, and the part's number */
    int part_number;
};

/* The store's directory, and the lock of multipart uploads' files (taken before the index lock, never after). */
const char *rd_s3st_dir(const rd_s3_store *st);
pthread_mutex_t *rd_s3st_mpu_lock(rd_s3_store *st);

void rd_s3st_hex_encode(const unsigned char *in, size_t n, char *out);
int rd_s3st_hex_val(char c);
/* Hex into a malloc'd NUL-terminated string; NULL when malformed. */
char *rd_s3st_hex_decode(const char *s);
/* prefix + 32 random hex digits; -1 without randomness. */
int rd_s3st_random_name(const char *prefix, char out[40]);
/* "a/b[/c]". */
char *rd_s3st_path_join(const char *a, const char *b, const char *c);
char *rd_s3st_objects_dir(const rd_s3_store *st, const char *bucket);
/* Writes data to path (created exclusively, 0600). */
int rd_s3st_write_file(const char *path, const void *data, size_t len, rd_emu_error *err);
/* The JSON document in the small file a/b[/c]; NULL when missing or not JSON. */
json_t *rd_s3st_read_json_file(const char *a, const char *b, const char *c);
void rd_s3st_remove_tree(const char *path);
/* InvalidArgument (empty) or KeyTooLongError. */
int rd_s3st_check_key(const char *key, rd_emu_error *err);
/* *dst = strdup(src) (NULL stays NULL); -1 out of memory. */
int rd_s3st_dup_opt(char **dst, const char *src);
/* Metadata fields into (from) a sidecar document. */
int rd_s3st_meta_to_json(const rd_s3_meta *m, json_t *j);
void rd_s3st_meta_from_json(json_t *j, rd_s3_meta *m);
/* Publishes the synced file tmp_path (inside the bucket's objects dir) as bucket/key. */
int rd_s3st_commit_file(rd_s3_store *st, const char *bucket, const char *key, const char *content_type,
                        const rd_s3_meta *meta, const char *objdir, const char *tmp_path, uint64_t size,
                        const char *etag, rd_s3_object_info *info_out, rd_emu_error *err);

/* s3_store_mpu.c: a part writer's commit; the sweep of a bucket's uploads at open. */
int rd_s3st_commit_part(rd_s3_put *w, const char *etag, rd_s3_object_info *info_out, rd_emu_error *err);
void rd_s3st_sweep_uploads(const char *dir, const char *bucket);

#endif
