/* s3_copy.c — the S3 API's CopyObject and UploadPartCopy: x-amz-copy-source (URL-encoded, an optional leading
 * '/', versionId=null), the metadata directive, the x-amz-copy-source-if-* conditions, x-amz-copy-source-range,
 * s3:GetObject on the source and s3:PutObject on the destination, and the CopyObjectResult / CopyPartResult
 * replies. The bytes are read from the source's data file and written through a store writer. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "emulator/s3/s3_api_internal.h"
#include "redduck/buf.h"

/* x-amz-copy-source ("[/]bucket/key[?versionId=null]", the key URL-encoded) into *bucket and *key
 * (malloc'd); 0 with the reply filled when unusable. */
static int copy_source(s3_call *c, char **bucket, char **key)
{
    const char *raw = rd_headers_get(c->req->headers, "x-amz-copy-source");
    if (raw && raw[0] == '/')
        raw++;
    const char *q = raw ? strstr(raw, "?versionId=") : NULL;
    size_t len = raw ? (q ? (size_t)(q - raw) : strlen(raw)) : 0;
    char *src = raw && !rd_s3api_has_nul_escape(raw) ? rd_percent_decode(raw, len, 0) : NULL;
    char *slash = src ? strchr(src, '/') : NULL;
    if (!slash || slash == src || !slash[1]) {
        free(src);
        rd_s3api_fail(c, 400, "InvalidArgument",
                      "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
        return 0;
    }
    if (q && strcmp(q + 11, "null") != 0) {
        const char *v = q + 11;
        size_t vl = strlen(v), ok = vl > 0 && vl <= 1024;
        for (size_t i = 0; ok && i < vl; i++)
            ok = isalnum((unsigned char)v[i]) || v[i] == '.' || v[i] == '_' || v[i] == '-';
        free(src);
        if (ok)
            rd_s3api_fail(c, 404, "NoSuchVersion", "The specified version does not exist.");
        else
            rd_s3api_fail(c, 400, "InvalidArgument", "Invalid version id specified");
        return 0;
    }
    *slash = '\0';
    *bucket = strdup(src);
    *key = strdup(slash + 1);
    free(src);
    if (!*bucket || !*key) {
        free(*bucket);
        free(*key);
        rd_s3api_fail(c, 500, "InternalError", rd_s3api_internal_message);
        return 0;
    }
    return 1;
}

/* x-amz-copy-source-if-*: 0 with 412 PreconditionFailed filled when they do not hold for the source. */
static int copy_preconditions(s3_call *c, const rd_s3_object_info *src)
{
    const rd_headers *h = c->req->headers;
    const char *im = rd_headers_get(h, "x-amz-copy-source-if-match"),
               *inm = rd_headers_get(h, "x-amz-copy-source-if-none-match"),
               *ius = rd_headers_get(h, "x-amz-copy-source-if-unmodified-since"),
               *ims = rd_headers_get(h, "x-amz-copy-source-if-modified-since");
    time_t t;
    int failed = im ? !rd_s3api_etag_matches(im, src->etag)
                    : ius && (t = rd_s3api_parse_http_date(ius)) >= 0 && src->last_modified > t;
    failed |= inm ? rd_s3api_etag_matches(inm, src->etag)
                  : ims && (t = rd_s3api_parse_http_date(ims)) >= 0 && src->last_modified <= t;
    if (failed)
        rd_s3api_fail(c, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
    return !failed;
}

/* The copy's source opened (GetObject checked on it): fd and info filled; 0 with the reply filled. */
static int open_copy_source(s3_call *c, char **sbucket, char **skey, int *fd, rd_s3_object_info *info)
{
    if (!copy_source(c, sbucket, skey))
        return 0;
    rd_buf arn = RD_BUF_INIT;
    rd_buf_printf(&arn, "arn:aws:s3:::%s/%s", *sbucket, *skey);
    int ok = rd_emu_allowed(c->emu, c->req, "s3:GetObject", rd_buf_cstr(&arn));
    rd_buf_free(&arn);
    rd_emu_error err;
    memset(info, 0, sizeof *info);
    if (!ok) {
        rd_s3api_fail(c, 403, "AccessDenied", "Access Denied");
    } else if (rd_s3_store_open_object(c->store, *sbucket, *skey, fd, info, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        ok = 0;
    } else if (!(ok = copy_preconditions(c, info))) {
        close(*fd);
    }
    if (!ok) {
        rd_s3_object_info_free(info);
        free(*sbucket);
        free(*skey);
        *sbucket = *skey = NULL;
    }
    return ok;
}

/* Copies [first, first+len) of fd into w, updating ck when its algorithm is set. */
static int copy_bytes(int fd, uint64_t first, uint64_t len, rd_s3_put *w, s3_checksum *ck, rd_emu_error *err)
{
    char *buf = malloc(1 << 20);
    if (!buf)
        return rd_emu_error_set(err, 500, "InternalError", "out of memory");
    int rc = 0;
    while (rc == 0 && len) {
        ssize_t n = pread(fd, buf, len < (1u << 20) ? (size_t)len : (size_t)1 << 20, (off_t)first);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = rd_emu_error_set(err, 500, "InternalError", "cannot read the copy's source: %s",
                                  n < 0 ? strerror(errno) : "shorter than its size");
            break;
        }
        rd_s3api_ck_update(ck, buf, (size_t)n);
        rc = rd_s3_put_write(w, buf, (size_t)n, err);
        first += (uint64_t)n;
        len -= (uint64_t)n;
    }
    free(buf);
    return rc;
}

static void copy_result(s3_call *c, const char *root, const rd_s3_object_info *info, int k, const char *sum)
{
    char date[32];
    rd_s3api_iso8601(info->last_modified, date);
    s3_xw x;
    rd_s3api_xw_start(&x, root);
    rd_s3api_xw_el(&x, "LastModified", date);
    rd_s3api_xw_el(&x, "ETag", info->etag);
    if (k >= 0 && sum)
        rd_s3api_xw_el(&x, rd_s3api_ck_names[k].member, sum);
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
}

void rd_s3copy_object(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:PutObject", 1))
        return;
    const rd_headers *h = c->req->headers;
    const char *directive = rd_headers_get(h, "x-amz-metadata-directive");
    int replace = directive && strcmp(directive, "REPLACE") == 0;
    if (directive && !replace && strcmp(directive, "COPY") != 0) {
        rd_s3api_fail(c, 400, "InvalidArgument", "Unknown metadata directive.");
        return;
    }
    const char *algo = rd_headers_get(h, "x-amz-checksum-algorithm");
    if (algo && rd_s3api_ck_find(algo) < 0) {
        rd_s3api_fail(c, 400, "InvalidRequest",
                      "The emulator copies with x-amz-checksum-algorithm CRC32, CRC32C, SHA1 or SHA256");
        return;
    }
    rd_s3_meta meta;
    memset(&meta, 0, sizeof meta);
    if (replace && !rd_s3api_request_meta(c, &meta))
        return;
    char *sbucket = NULL, *skey = NULL;
    int fd = -1;
    rd_s3_object_info src;
    if (!open_copy_source(c, &sbucket, &skey, &fd, &src)) {
        rd_s3_meta_free(&meta);
        return;
    }
    rd_s3_put *w = NULL;
    rd_emu_error err;
    char *sum = NULL;
    int k = rd_s3api_ck_find(algo ? algo : src.meta.checksum_algo);
    s3_checksum ck;
    rd_s3api_ck_init(&ck, k >= 0 ? rd_s3api_ck_names[k].name : NULL);
    if (strcmp(sbucket, c->bucket) == 0 && strcmp(skey, c->key) == 0 && !replace) {
        rd_s3api_fail(
            c, 400, "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the "
            "object's metadata, storage class, website redirect location or encryption attributes.");
        goto out;
    }
    const char *ctype = replace ? rd_headers_get(h, "Content-Type") : src.content_type;
    if (!replace) {
        rd_s3_meta_free(&meta);
        if (rd_s3_meta_copy(&meta, &src.meta) != 0) {
            rd_s3api_fail(c, 500, "InternalError", rd_s3api_internal_message);
            goto out;
        }
        free(meta.checksum_algo);
        free(meta.checksum);
        free(meta.checksum_type);
        meta.checksum_algo = meta.checksum = meta.checksum_type = NULL;
    }
    rd_s3_object_info info;
    memset(&info, 0, sizeof info);
    if (rd_s3_store_put_begin(c->store, c->bucket, c->key, ctype ? ctype : "binary/octet-stream", &w, &err) != 0 ||
        copy_bytes(fd, 0, src.size, w, &ck, &err) != 0) {
        rd_s3_put_abort(w);
        rd_s3api_fail_emu(c, &err);
        goto out;
    }
    sum = rd_s3api_ck_final(&ck);
    if (sum) {
        meta.checksum_algo = strdup(rd_s3api_ck_names[k].algo_name);
        meta.checksum = strdup(sum);
        meta.checksum_type = strdup("FULL_OBJECT");
    }
    if (rd_s3_put_set_meta(w, &meta, &err) != 0) {
        rd_s3_put_abort(w);
        rd_s3api_fail_emu(c, &err);
        goto out;
    }
    if (rd_s3_put_commit(w, NULL, &info, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        goto out;
    }
    copy_result(c, "CopyObjectResult", &info, k, sum);
    rd_s3_object_info_free(&info);
out:
    free(rd_s3api_ck_final(&ck));
    free(sum);
    close(fd);
    rd_s3_object_info_free(&src);
    rd_s3_meta_free(&meta);
    free(sbucket);
    free(skey);
}

/* x-amz-copy-source-range "bytes=first-last" within size; 0 with the reply filled when invalid. */
static int copy_range(s3_call *c, uint64_t size, uint64_t *first, uint64_t *len)
{
    const char *r = rd_headers_get(c->req->headers, "x-amz-copy-source-range");
    *first = 0;
    *len = size;
    if (!r)
        return 1;
    unsigned long long a = 0, b = 0;
    char tail = 0;
    if (strncmp(r, "bytes=", 6) != 0 || !isdigit((unsigned char)r[6]) ||
        sscanf(r + 6, "%llu-%llu%c", &a, &b, &tail) != 2 || strchr(r, ' ')) {
        rd_s3api_fail(
            c, 400, "InvalidArgument",
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the "
            "zero-based offsets of the first and last bytes to copy");
        return 0;
    }
    if (a > b || b >= size) {
        rd_buf m = RD_BUF_INIT;
        rd_buf_printf(&m, "Range specified is not valid for source object of size: %" PRIu64, size);
        rd_s3api_fail(c, 400, "InvalidArgument", rd_buf_cstr(&m));
        rd_buf_free(&m);
        return 0;
    }
    *first = a;
    *len = b - a + 1;
    return 1;
}

void rd_s3copy_part(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:PutObject", 1))
        return;
    int part = rd_s3mpu_part_number(c);
    if (!part)
        return;
    const char *id = rd_form_get(&c->q, "uploadId");
    rd_s3_upload_info up;
    rd_emu_error err;
    if (rd_s3_store_mpu_get(c->store, c->bucket, c->key, id, &up, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        return;
    }
    int k = rd_s3api_ck_find(up.meta.checksum_algo);
    rd_s3_upload_info_free(&up);
    char *sbucket = NULL, *skey = NULL, *sum = NULL;
    int fd = -1;
    rd_s3_object_info src;
    if (!open_copy_source(c, &sbucket, &skey, &fd, &src))
        return;
    uint64_t first = 0, len = 0;
    rd_s3_put *w = NULL;
    s3_checksum ck;
    rd_s3api_ck_init(&ck, k >= 0 ? rd_s3api_ck_names[k].name : NULL);
    rd_s3_object_info info;
    memset(&info, 0, sizeof info);
    if (!copy_range(c, src.size, &first, &len))
        goto out;
    if (rd_s3_store_part_begin(c->store, c->bucket, c->key, id, part, &w, &err) != 0 ||
        copy_bytes(fd, first, len, w, &ck, &err) != 0) {
        rd_s3_put_abort(w);
        rd_s3api_fail_emu(c, &err);
        goto out;
    }
    sum = rd_s3api_ck_final(&ck);
    rd_s3_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.checksum = sum;
    int rc = rd_s3_put_set_meta(w, &meta, &err);
    if (rc != 0)
        rd_s3_put_abort(w);
    else
        rc = rd_s3_put_commit(w, NULL, &info, &err);
    if (rc != 0) {
        rd_s3api_fail_emu(c, &err);
        goto out;
    }
    copy_result(c, "CopyPartResult", &info, k, sum);
    rd_s3_object_info_free(&info);
out:
    free(rd_s3api_ck_final(&ck));
    free(sum);
    close(fd);
    rd_s3_object_info_free(&src);
    free(sbucket);
    free(skey);
}
