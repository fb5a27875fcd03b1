/* s3_store_mpu.c — the object store's multipart uploads (see s3_store.h).
 * <bucket>/uploads/<upload id>/ holds upload.json (key in hex, initiation time, content type, metadata), per
 * part a sidecar "p-<number, 5 digits>.json" (data file, size, etag, checksum) and its data "d-<random>".
 * A part is written to "tmp-<random>", renamed to a fresh data file, then its sidecar renamed over the old
 * one (the commit point; the old data is unlinked). Abort and completion rename the directory to
 * "uploads/.trash-<random>" and remove it. mpu_lock serialises these renames; open sweeps the leftovers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emulator/emu_error.h"
#include "emulator/s3/s3_store_internal.h"
#include "redduck/buf.h"

/* An I/O or memory failure: S3's 500, with what failed as the message (the S3 reply says AWS's own words). */
#define internal(err, ...) rd_emu_error_set((err), 500, "InternalError", __VA_ARGS__)

static int no_such_upload(rd_emu_error *err)
{
    return rd_emu_error_set(err, 404, "NoSuchUpload",
                            "The specified upload does not exist. The upload ID may be invalid, or the upload may "
                            "have been aborted or completed.");
}

static int invalid_part(rd_emu_error *err)
{
    return rd_emu_error_set(err, 400, "InvalidPart",
                            "One or more of the specified parts could not be found.  The part may not have been "
                            "uploaded, or the specified entity tag may not have matched the part's entity tag.");
}

/* Upload ids are 32 lowercase hex digits (they name a directory: nothing else may pass). */
static int valid_upload_id(const char *id)
{
    if (!id || strlen(id) != 32)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static char *upload_dir_path(const rd_s3_store *st, const char *bucket, const char *id)
{
    rd_buf p = RD_BUF_INIT;
    rd_buf_printf(&p, "%s/%s/uploads/%s", rd_s3st_dir(st), bucket, id);
    return rd_buf_detach(&p);
}

void rd_s3_upload_info_free(rd_s3_upload_info *u)
{
    if (!u)
        return;
    free(u->key);
    free(u->content_type);
    rd_s3_meta_free(&u->meta);
    u->key = u->content_type = NULL;
}

void rd_s3_parts_free(rd_s3_part_info *parts, size_t n)
{
    for (size_t i = 0; parts && i < n; i++)
        free(parts[i].checksum);
    free(parts);
}

/* Reads updir/upload.json into out (id from the directory name). -1 when missing or broken. */
static int read_upload(const char *updir, const char *id, rd_s3_upload_info *out)
{
    json_t *j = rd_s3st_read_json_file(updir, "upload.json", NULL);
    const char *kh = json_string_value(json_object_get(j, "key_hex"));
    memset(out, 0, sizeof *out);
    if (!j || !kh || !(out->key = rd_s3st_hex_decode(kh))) {
        json_decref(j);
        return -1;
    }
    snprintf(out->upload_id, sizeof out->upload_id, "%s", id);
    out->initiated = (time_t)json_integer_value(json_object_get(j, "initiated"));
    rd_s3st_dup_opt(&out->content_type, json_string_value(json_object_get(j, "content_type")));
    rd_s3st_meta_from_json(j, &out->meta);
    json_decref(j);
    return 0;
}

/* The upload of bucket/key named id: 0 with *updir (malloc'd) and info (may be NULL) filled, else an error. */
static int find_upload(rd_s3_store *st, const char *bucket, const char *key, const char *id, char **updir,
                       rd_s3_upload_info *info, rd_emu_error *err)
{
    int rc = rd_s3_store_head_bucket(st, bucket, NULL, err);
    if (rc != 0)
        return rc;
    if (!valid_upload_id(id))
        return no_such_upload(err);
    char *d = upload_dir_path(st, bucket, id);
    rd_s3_upload_info u;
    if (!d || read_upload(d, id, &u) != 0) {
        free(d);
        return no_such_upload(err);
    }
    if (key && strcmp(u.key, key) != 0) {
        rd_s3_upload_info_free(&u);
        free(d);
        return no_such_upload(err);
    }
    if (info)
        *info = u;
    else
        rd_s3_upload_info_free(&u);
    *updir = d;
    return 0;
}

int rd_s3_store_mpu_create(rd_s3_store *st, const char *bucket, const char *key, const char *content_type,
                           const rd_s3_meta *meta, char id_out[40], rd_emu_error *err)
{
    int rc = rd_s3st_check_key(key, err);
    if (rc != 0 || (rc = rd_s3_store_head_bucket(st, bucket, NULL, err)) != 0)
        return rc;
    unsigned char r[16];
    char id[40], tmpname[40];
    if (RAND_bytes(r, sizeof r) != 1 || rd_s3st_random_name(".tmp-", tmpname) != 0)
        return internal(err, "no randomness available");
    rd_s3st_hex_encode(r, sizeof r, id);
    char *uploads = rd_s3st_path_join(rd_s3st_dir(st), bucket, "uploads");
    char *tmpdir = uploads ? rd_s3st_path_join(uploads, tmpname, NULL) : NULL;
    char *final = uploads ? rd_s3st_path_join(uploads, id, NULL) : NULL;
    char *text = NULL;
    if (!final || !tmpdir) {
        rc = internal(err, "out of memory");
        goto out;
    }
    if ((mkdir(uploads, 0700) != 0 && errno != EEXIST) || mkdir(tmpdir, 0700) != 0) {
        rc = internal(err, "cannot create %s: %s", tmpdir, strerror(errno));
        goto out;
    }
    char kh[2 * RD_S3ST_KEY_MAX_BYTES + 1];
    rd_s3st_hex_encode((const unsigned char *)key, strlen(key), kh);
    json_t *j = json_pack("{s:s, s:I}", "key_hex", kh, "initiated", (json_int_t)time(NULL));
    if (j && content_type)
        json_object_set_new(j, "content_type", json_string(content_type));
    if (j && rd_s3st_meta_to_json(meta, j) != 0) {
        json_decref(j);
        j = NULL;
    }
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char *doc = rd_s3st_path_join(tmpdir, "upload.json", NULL);
    rc = !text || !doc ? internal(err, "out of memory (or metadata is not UTF-8)")
                       : rd_s3st_write_file(doc, text, strlen(text), err);
    free(doc);
    if (rc == 0) {
        if (rename(tmpdir, final) != 0)
            rc = internal(err, "cannot create %s: %s", final, strerror(errno));
    }
    if (rc != 0)
        rd_s3st_remove_tree(tmpdir);
    else
        memcpy(id_out, id, 33);
out:
    free(text);
    free(uploads);
    free(tmpdir);
    free(final);
    return rc;
}

int rd_s3_store_mpu_get(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                        rd_s3_upload_info *out, rd_emu_error *err)
{
    char *d = NULL;
    int rc = find_upload(st, bucket, key, upload_id, &d, out, err);
    free(d);
    return rc;
}

int rd_s3_store_part_begin(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id, int part_number,
                           rd_s3_put **out, rd_emu_error *err)
{
    if (part_number < 1 || part_number > RD_S3_MAX_PARTS)
        return rd_emu_error_set(err, 400, "InvalidArgument",
                                "Part number must be an integer between 1 and 10000, inclusive");
    char *d = NULL;
    int rc = find_upload(st, bucket, key, upload_id, &d, NULL, err);
    if (rc != 0)
        return rc;
    rd_s3_put *w = calloc(1, sizeof *w);
    char tmpname[40];
    if (!w || rd_s3st_random_name("tmp-", tmpname) != 0) {
        free(w);
        free(d);
        return internal(err, "out of memory");
    }
    w->st = st;
    w->fd = -1;
    w->upload_dir = d;
    w->part_number = part_number;
    w->bucket = strdup(bucket);
    w->key = strdup(key);
    w->md5 = EVP_MD_CTX_new();
    w->tmp_path = rd_s3st_path_join(d, tmpname, NULL);
    if (!w->bucket || !w->key || !w->md5 || !w->tmp_path || EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1) {
        rd_s3_put_abort(w);
        return internal(err, "out of memory");
    }
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        rc = errno == ENOENT ? no_such_upload(err) /* aborted meanwhile */
                             : internal(err, "cannot create %s: %s", w->tmp_path, strerror(errno));
        free(w->tmp_path);
        w->tmp_path = NULL;
        rd_s3_put_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

static void part_sidecar_name(int number, char out[16])
{
    snprintf(out, 16, "p-%05d.json", number);
}

/* Stores the synced part file w->tmp_path as part w->part_number. */
int rd_s3st_commit_part(rd_s3_put *w, const char *etag, rd_s3_object_info *info_out, rd_emu_error *err)
{
    char data_name[40], side_tmp[40], side[16];
    if (rd_s3st_random_name("d-", data_name) != 0 || rd_s3st_random_name("tmp-", side_tmp) != 0)
        return internal(err, "no randomness available");
    part_sidecar_name(w->part_number, side);
    json_t *j = json_pack("{s:s, s:I, s:s, s:I}", "data", data_name, "size", (json_int_t)w->size, "etag", etag, "mtime",
                          (json_int_t)time(NULL));
    if (j && w->meta.checksum)
        json_object_set_new(j, "checksum", json_string(w->meta.checksum));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char *data_path = rd_s3st_path_join(w->upload_dir, data_name, NULL),
         *tmp_side = rd_s3st_path_join(w->upload_dir, side_tmp, NULL),
         *side_path = rd_s3st_path_join(w->upload_dir, side, NULL), *old_data = NULL;
    int rc = 0;
    if (!text || !data_path || !tmp_side || !side_path) {
        rc = internal(err, "out of memory");
        goto out;
    }
    pthread_mutex_lock(rd_s3st_mpu_lock(w->st));
    char *doc = rd_s3st_path_join(w->upload_dir, "upload.json", NULL);
    int alive = doc && access(doc, F_OK) == 0;
    free(doc);
    if (!alive) {
        rc = no_such_upload(err);
    } else if (rename(w->tmp_path, data_path) != 0) {
        rc = internal(err, "cannot store part %d of s3://%s/%s (%s): %s", w->part_number, w->bucket, w->key, data_path,
                      strerror(errno));
    } else if ((rc = rd_s3st_write_file(tmp_side, text, strlen(text), err)) != 0) {
        unlink(data_path);
    } else {
        json_t *old = rd_s3st_read_json_file(w->upload_dir, side, NULL);
        const char *od = json_string_value(json_object_get(old, "data"));
        old_data = od && strncmp(od, "d-", 2) == 0 && !strchr(od, '/') ? strdup(od) : NULL;
        json_decref(old);
        if (rename(tmp_side, side_path) != 0) {
            rc = internal(err, "cannot store part %d of s3://%s/%s (%s): %s", w->part_number, w->bucket, w->key,
                          side_path, strerror(errno));
            unlink(tmp_side);
            unlink(data_path);
        }
    }
    pthread_mutex_unlock(rd_s3st_mpu_lock(w->st));
    if (rc == 0) {
        if (old_data) {
            char *p = rd_s3st_path_join(w->upload_dir, old_data, NULL);
            unlink(p);
            free(p);
        }
        if (info_out) {
            memset(info_out, 0, sizeof *info_out);
            info_out->size = w->size;
            snprintf(info_out->etag, sizeof info_out->etag, "%s", etag);
            info_out->last_modified = time(NULL);
            rd_s3_meta_copy(&info_out->meta, &w->meta);
        }
    }
out:
    free(old_data);
    free(text);
    free(data_path);
    free(tmp_side);
    free(side_path);
    return rc;
}

/* One part's sidecar: 0 and p (and data_out, malloc'd, when not NULL) filled; -1 when missing or broken. */
static int read_part(const char *updir, int number, rd_s3_part_info *p, char **data_out)
{
    char side[16];
    part_sidecar_name(number, side);
    json_t *j = rd_s3st_read_json_file(updir, side, NULL);
    const char *data = json_string_value(json_object_get(j, "data"));
    const char *etag = json_string_value(json_object_get(j, "etag"));
    if (!j || !data || strncmp(data, "d-", 2) != 0 || strchr(data, '/') || !etag || strlen(etag) != 34) {
        json_decref(j);
        return -1;
    }
    memset(p, 0, sizeof *p);
    p->number = number;
    p->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
    memcpy(p->etag, etag, 35);
    p->last_modified = (time_t)json_integer_value(json_object_get(j, "mtime"));
    rd_s3st_dup_opt(&p->checksum, json_string_value(json_object_get(j, "checksum")));
    if (data_out)
        *data_out = strdup(data);
    json_decref(j);
    return 0;
}

static int cmp_part(const void *a, const void *b)
{
    return ((const rd_s3_part_info *)a)->number - ((const rd_s3_part_info *)b)->number;
}

/* The part numbers with a sidecar in updir, ascending (*nums malloc'd). */
static int list_part_numbers(const char *updir, int **nums, size_t *n)
{
    DIR *d = opendir(updir);
    if (!d)
        return -1;
    int *v = NULL;
    size_t k = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int num = 0;
        char tail[8] = { 0 };
        if (strlen(de->d_name) == 12 && sscanf(de->d_name, "p-%5d%6s", &num, tail) == 2 && strcmp(tail, ".json") == 0 &&
            num >= 1 && num <= RD_S3_MAX_PARTS) {
            if (k == cap) {
                cap = cap ? cap * 2 : 64;
                int *nv = realloc(v, cap * sizeof *nv);
                if (!nv)
                    break;
                v = nv;
            }
            v[k++] = num;
        }
    }
    closedir(d);
    *nums = v;
    *n = k;
    return 0;
}

int rd_s3_store_mpu_parts(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                          rd_s3_part_info **parts, size_t *n, rd_emu_error *err)
{
    char *d = NULL;
    int rc = find_upload(st, bucket, key, upload_id, &d, NULL, err);
    if (rc != 0)
        return rc;
    int *nums = NULL;
    size_t k = 0;
    pthread_mutex_lock(rd_s3st_mpu_lock(st));
    if (list_part_numbers(d, &nums, &k) != 0) {
        pthread_mutex_unlock(rd_s3st_mpu_lock(st));
        free(d);
        return no_such_upload(err);
    }
    rd_s3_part_info *v = calloc(k ? k : 1, sizeof *v);
    size_t got = 0;
    for (size_t i = 0; v && i < k; i++)
        if (read_part(d, nums[i], &v[got], NULL) == 0)
            got++;
    pthread_mutex_unlock(rd_s3st_mpu_lock(st));
    free(nums);
    free(d);
    if (!v)
        return internal(err, "out of memory");
    qsort(v, got, sizeof *v, cmp_part);
    *parts = v;
    *n = got;
    return 0;
}

/* Renames the upload's directory away and removes it (mpu_lock held by the caller). */
static int drop_upload(rd_s3_store *st, const char *bucket, const char *updir, char **trash_out, rd_emu_error *err)
{
    char trash[40];
    if (rd_s3st_random_name(".trash-", trash) != 0)
        return internal(err, "no randomness available");
    char *uploads = rd_s3st_path_join(rd_s3st_dir(st), bucket, "uploads");
    char *to = uploads ? rd_s3st_path_join(uploads, trash, NULL) : NULL;
    int rc = 0;
    if (!to)
        rc = internal(err, "out of memory");
    else if (rename(updir, to) != 0)
        rc = errno == ENOENT ? no_such_upload(err) : internal(err, "cannot remove %s: %s", updir, strerror(errno));
    free(uploads);
    if (rc != 0) {
        free(to);
        return rc;
    }
    *trash_out = to;
    return 0;
}

int rd_s3_store_mpu_abort(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                          rd_emu_error *err)
{
    char *d = NULL, *trash = NULL;
    int rc = find_upload(st, bucket, key, upload_id, &d, NULL, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(rd_s3st_mpu_lock(st));
    rc = drop_upload(st, bucket, d, &trash, err);
    pthread_mutex_unlock(rd_s3st_mpu_lock(st));
    if (trash)
        rd_s3st_remove_tree(trash);
    free(trash);
    free(d);
    return rc;
}

/* Appends the whole of fd to out (copy_file_range where it works). */
static int append_fd(int out, int fd, uint64_t size)
{
    off_t off = 0;
    while ((uint64_t)off < size) {
        ssize_t n = copy_file_range(fd, &off, out, NULL, (size_t)(size - (uint64_t)off), 0);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return -1; /* shorter than its sidecar says */
        /* no copy_file_range between these files: read and write */
        char *buf = malloc(1 << 20);
        if (!buf)
            return -1;
        while ((uint64_t)off < size) {
            ssize_t r = pread(fd, buf, 1 << 20, off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                free(buf);
                return -1;
            }
            for (ssize_t w = 0; w < r;) {
                ssize_t k = write(out, buf + w, (size_t)(r - w));
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0) {
                    free(buf);
                    return -1;
                }
                w += k;
            }
            off += r;
        }
        free(buf);
    }
    return 0;
}

/* 1 when the client's ETag (quoted or not) names the stored one. */
static int etag_equal(const char *client, const char *stored)
{
    size_t n = strlen(client);
    if (n >= 2 && client[0] == '"' && client[n - 1] == '"')
        return n == strlen(stored) && strncmp(client, stored, n) == 0;
    return n + 2 == strlen(stored) && strncmp(client, stored + 1, n) == 0;
}

int rd_s3_store_mpu_complete(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                             const rd_s3_complete_part *parts, size_t n, const char *checksum,
                             const char *checksum_type, rd_s3_object_info *info_out, rd_emu_error *err)
{
    for (size_t i = 1; i < n; i++)
        if (parts[i].number <= parts[i - 1].number)
            return rd_emu_error_set(err, 400, "InvalidPartOrder",
                                    "The list of parts was not in ascending order. The parts list must be specified "
                                    "in order by part number.");
    char *d = NULL, *trash = NULL, *objdir = rd_s3st_objects_dir(st, bucket), *tmp_path = NULL;
    rd_s3_upload_info up;
    memset(&up, 0, sizeof up);
    int rc = find_upload(st, bucket, key, upload_id, &d, &up, err);
    if (rc != 0) {
        free(objdir);
        return rc;
    }
    int *fds = calloc(n ? n : 1, sizeof *fds);
    uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    size_t opened = 0;
    EVP_MD_CTX *md5 = EVP_MD_CTX_new();
    if (!fds || !sizes || !md5 || !objdir || EVP_DigestInit_ex(md5, EVP_md5(), NULL) != 1) {
        rc = internal(err, "out of memory");
        goto out;
    }
    /* the named parts, opened under the lock: a part replaced later keeps these bytes */
    pthread_mutex_lock(rd_s3st_mpu_lock(st));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rd_s3_part_info p;
        char *data = NULL;
        if (parts[i].number < 1 || parts[i].number > RD_S3_MAX_PARTS || read_part(d, parts[i].number, &p, &data) != 0) {
            rc = invalid_part(err);
            break;
        }
        if (!parts[i].etag || !etag_equal(parts[i].etag, p.etag)) {
            rc = invalid_part(err);
        } else if (i + 1 < n && p.size < RD_S3_MIN_PART_SIZE) {
            rc = rd_emu_error_set(err, 400, "EntityTooSmall",
                                  "Your proposed upload is smaller than the minimum allowed object size.");
        } else {
            char *path = data ? rd_s3st_path_join(d, data, NULL) : NULL;
            int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
            free(path);
            if (fd < 0) {
                rc = invalid_part(err);
            } else {
                fds[opened++] = fd;
                sizes[i] = p.size;
                unsigned char raw[16];
                for (int k = 0; k < 16; k++)
                    raw[k] = (unsigned char)(rd_s3st_hex_val(p.etag[1 + 2 * k]) << 4 |
                                             rd_s3st_hex_val(p.etag[2 + 2 * k]));
                EVP_DigestUpdate(md5, raw, 16);
            }
        }
        free(data);
        free(p.checksum);
    }
    pthread_mutex_unlock(rd_s3st_mpu_lock(st));
    if (rc != 0)
        goto out;

    /* the object's bytes, outside the lock */
    char tmpname[40];
    if (rd_s3st_random_name("tmp-", tmpname) != 0 || !(tmp_path = rd_s3st_path_join(objdir, tmpname, NULL))) {
        rc = internal(err, "no randomness available");
        goto out;
    }
    int out_fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out_fd < 0) {
        rc = internal(err, "cannot create %s: %s", tmp_path, strerror(errno));
        goto out;
    }
    uint64_t total = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (append_fd(out_fd, fds[i], sizes[i]) != 0)
            rc = internal(err, "cannot assemble s3://%s/%s in %s: %s (is the disk full?)", bucket, key, tmp_path,
                          strerror(errno));
        total += sizes[i];
    }
    if (close(out_fd) != 0 && rc == 0)
        rc = internal(err, "cannot flush %s: %s", tmp_path, strerror(errno));
    if (rc != 0)
        goto out;
    unsigned char md[16];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(md5, md, &mdlen);
    char etag[48];
    etag[0] = '"';
    rd_s3st_hex_encode(md, 16, etag + 1);
    snprintf(etag + 33, sizeof etag - 33, "-%zu\"", n);
    free(up.meta.checksum);
    free(up.meta.checksum_type);
    up.meta.checksum = checksum ? strdup(checksum) : NULL;
    up.meta.checksum_type = checksum_type ? strdup(checksum_type) : NULL;
    if (!checksum) {
        free(up.meta.checksum_algo);
        up.meta.checksum_algo = NULL;
    }

    /* the commit point: the object replaces any older one, then the upload goes (both under the lock, so an
     * abort racing with this either wins before it or finds no upload) */
    pthread_mutex_lock(rd_s3st_mpu_lock(st));
    char *doc = rd_s3st_path_join(d, "upload.json", NULL);
    int alive = doc && access(doc, F_OK) == 0;
    free(doc);
    if (!alive)
        rc = no_such_upload(err);
    else if ((rc = rd_s3st_commit_file(st, bucket, key, up.content_type, &up.meta, objdir, tmp_path, total, etag,
                                       info_out, err)) == 0)
        drop_upload(st, bucket, d, &trash, NULL);
    pthread_mutex_unlock(rd_s3st_mpu_lock(st));
    if (trash)
        rd_s3st_remove_tree(trash);
out:
    if (tmp_path)
        unlink(tmp_path); /* gone when committed */
    for (size_t i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    free(sizes);
    EVP_MD_CTX_free(md5);
    rd_s3_upload_info_free(&up);
    free(trash);
    free(tmp_path);
    free(objdir);
    free(d);
    return rc;
}

static int cmp_upload(const void *a, const void *b)
{
    const rd_s3_upload_info *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->initiated != y->initiated)
        return x->initiated < y->initiated ? -1 : 1;
    return strcmp(x->upload_id, y->upload_id);
}

int rd_s3_store_mpu_list(rd_s3_store *st, const char *bucket, const char *prefix, const char *key_marker,
                         const char *upload_id_marker, size_t max, rd_s3_upload_info **out, size_t *n, int *truncated,
                         rd_emu_error *err)
{
    int rc = rd_s3_store_head_bucket(st, bucket, NULL, err);
    if (rc != 0)
        return rc;
    char *uploads = rd_s3st_path_join(rd_s3st_dir(st), bucket, "uploads");
    rd_s3_upload_info *v = NULL;
    size_t k = 0, cap = 0;
    pthread_mutex_lock(rd_s3st_mpu_lock(st));
    DIR *dir = uploads ? opendir(uploads) : NULL;
    struct dirent *de;
    while (dir && (de = readdir(dir)) != NULL) {
        if (!valid_upload_id(de->d_name))
            continue;
        char *ud = rd_s3st_path_join(uploads, de->d_name, NULL);
        rd_s3_upload_info u;
        if (ud && read_upload(ud, de->d_name, &u) == 0) {
            int keep = !prefix || strncmp(u.key, prefix, strlen(prefix)) == 0;
            if (keep && key_marker && *key_marker) {
                int c = strcmp(u.key, key_marker);
                keep = c > 0 ||
                       (c == 0 && upload_id_marker && *upload_id_marker && strcmp(u.upload_id, upload_id_marker) > 0);
            }
            if (keep && k == cap) {
                cap = cap ? cap * 2 : 16;
                rd_s3_upload_info *nv = realloc(v, cap * sizeof *nv);
                if (!nv)
                    keep = 0;
                else
                    v = nv;
            }
            if (keep)
                v[k++] = u;
            else
                rd_s3_upload_info_free(&u);
        }
        free(ud);
    }
    if (dir)
        closedir(dir);
    pthread_mutex_unlock(rd_s3st_mpu_lock(st));
    free(uploads);
    if (k)
        qsort(v, k, sizeof *v, cmp_upload);
    *truncated = k > max;
    for (size_t i = max; i < k; i++)
        rd_s3_upload_info_free(&v[i]);
    *n = k > max ? max : k;
    *out = v;
    return 0;
}

/* At open: uploads' temp files, data no sidecar names, broken uploads and removals a crash interrupted. */
void rd_s3st_sweep_uploads(const char *dir, const char *bucket)
{
    char *uploads = rd_s3st_path_join(dir, bucket, "uploads");
    DIR *d = uploads ? opendir(uploads) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        char *ud = rd_s3st_path_join(uploads, n, NULL);
        rd_s3_upload_info u;
        if (!ud) {
            continue;
        } else if (!valid_upload_id(n) || read_upload(ud, n, &u) != 0) {
            rd_s3st_remove_tree(ud);
        } else {
            rd_s3_upload_info_free(&u);
            int *nums = NULL;
            size_t k = 0;
            list_part_numbers(ud, &nums, &k);
            char **refs = calloc(k ? k : 1, sizeof *refs);
            size_t nr = 0;
            for (size_t i = 0; refs && i < k; i++) {
                rd_s3_part_info p;
                char *data = NULL;
                if (read_part(ud, nums[i], &p, &data) == 0) {
                    refs[nr++] = data;
                    free(p.checksum);
                }
            }
            DIR *pd = refs ? opendir(ud) : NULL;
            struct dirent *pe;
            while (pd && (pe = readdir(pd)) != NULL) {
                int keep = strncmp(pe->d_name, "d-", 2) != 0 && strncmp(pe->d_name, "tmp-", 4) != 0;
                for (size_t i = 0; !keep && i < nr; i++)
                    keep = refs[i] && strcmp(refs[i], pe->d_name) == 0;
                if (!keep)
                    unlinkat(dirfd(pd), pe->d_name, 0);
            }
            if (pd)
                closedir(pd);
            for (size_t i = 0; i < nr; i++)
                free(refs[i]);
            free(refs);
            free(nums);
        }
        free(ud);
    }
    if (d)
        closedir(d);
    free(uploads);
}
