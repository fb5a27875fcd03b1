/* test_s3_multipart.c — the object store's metadata and multipart uploads: metadata kept across a restart,
 * an upload's life (parts, listing, completion into one object with the "<md5 of md5s>-N" ETag and the
 * upload's metadata), the part rules, storage released by re-uploads and aborts, an abort racing a part,
 * and the leftovers of a crash swept at open while uploads in progress survive it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3_test_util.h"

typedef rd_test_store fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || rd_test_store_open(f, "rd-s3mpu", "bkt") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_test_store_close(f);
    free(f);
    return 0;
}

static void reopen(fixture *f)
{
    rd_s3_store_close(f->st);
    f->st = NULL;
    rd_error err;
    assert_int_equal(rd_s3_store_open(f->store_dir, &f->st, &err), RD_OK);
}

static char *read_object(rd_s3_store *st, const char *key, size_t *len)
{
    int fd = -1;
    rd_s3_object_info info;
    rd_emu_error err;
    assert_int_equal(rd_s3_store_open_object(st, "bkt", key, &fd, &info, &err), 0);
    char *buf = malloc(info.size + 1);
    size_t got = 0;
    ssize_t n;
    while (got < info.size && (n = pread(fd, buf + got, info.size - got, (off_t)got)) > 0)
        got += (size_t)n;
    assert_int_equal(got, info.size);
    close(fd);
    *len = got;
    rd_s3_object_info_free(&info);
    return buf;
}

/* Files under dir (recursively) whose name begins with prefix. */
static size_t count_prefix;
static const char *count_what;
static int count_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    if (flag == FTW_F && strncmp(p + ftw->base, count_what, strlen(count_what)) == 0)
        count_prefix++;
    return 0;
}

static size_t count_files(const char *dir, const char *prefix)
{
    count_prefix = 0;
    count_what = prefix;
    nftw(dir, count_cb, 16, FTW_PHYS);
    return count_prefix;
}

static char *uploads_dir(fixture *f)
{
    char *p = malloc(strlen(f->store_dir) + 32);
    sprintf(p, "%s/bkt/uploads", f->store_dir);
    return p;
}

static void put_part(rd_s3_store *st, const char *key, const char *id, int number, const void *data, size_t len,
                     const char *checksum, char etag_out[48])
{
    rd_s3_put *w = NULL;
    rd_emu_error err;
    rd_s3_object_info info;
    assert_int_equal(rd_s3_store_part_begin(st, "bkt", key, id, number, &w, &err), 0);
    assert_int_equal(rd_s3_put_write(w, data, len, &err), 0);
    if (checksum) {
        rd_s3_meta m;
        memset(&m, 0, sizeof m);
        m.checksum = (char *)checksum;
        assert_int_equal(rd_s3_put_set_meta(w, &m, &err), 0);
    }
    assert_int_equal(rd_s3_put_commit(w, NULL, &info, &err), 0);
    assert_int_equal(info.size, len);
    assert_null(info.key);
    strcpy(etag_out, info.etag);
    rd_s3_object_info_free(&info);
}

static void md5_of(const void *data, size_t len, unsigned char out[16])
{
    unsigned int n = 0;
    EVP_Digest(data, len, out, &n, EVP_md5(), NULL);
}

static void test_metadata_persists(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    rd_s3_put *w = NULL;
    rd_s3_meta m;
    memset(&m, 0, sizeof m);
    rd_headers_init(&m.headers);
    rd_headers_add(&m.headers, "x-amz-meta-owner", "ana");
    rd_headers_add(&m.headers, "Cache-Control", "max-age=60");
    m.checksum_algo = strdup("CRC32");
    m.checksum = strdup("AAAAAA==");
    m.checksum_type = strdup("FULL_OBJECT");
    assert_int_equal(rd_s3_store_put_begin(f->st, "bkt", "m.txt", "text/plain", &w, &err), 0);
    assert_int_equal(rd_s3_put_write(w, "hello", 5, &err), 0);
    assert_int_equal(rd_s3_put_set_meta(w, &m, &err), 0);
    rd_s3_meta_free(&m);
    rd_s3_object_info info;
    assert_int_equal(rd_s3_put_commit(w, NULL, &info, &err), 0);
    assert_string_equal(rd_headers_get(&info.meta.headers, "x-amz-meta-owner"), "ana");
    rd_s3_object_info_free(&info);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(rd_s3_store_head(f->st, "bkt", "m.txt", &info, &err), 0);
        assert_int_equal(info.meta.headers.count, 2);
        assert_string_equal(info.meta.headers.items[0].name, "x-amz-meta-owner");
        assert_string_equal(info.meta.headers.items[0].value, "ana");
        assert_string_equal(rd_headers_get(&info.meta.headers, "Cache-Control"), "max-age=60");
        assert_string_equal(info.meta.checksum_algo, "CRC32");
        assert_string_equal(info.meta.checksum, "AAAAAA==");
        assert_string_equal(info.meta.checksum_type, "FULL_OBJECT");
        assert_string_equal(info.content_type, "text/plain");
        rd_s3_object_info_free(&info);
        reopen(f);
    }
    /* a plain put keeps none */
    assert_int_equal(rd_s3_store_put_data(f->st, "bkt", "m.txt", "x", 1, NULL, NULL, &err), 0);
    assert_int_equal(rd_s3_store_head(f->st, "bkt", "m.txt", &info, &err), 0);
    assert_int_equal(info.meta.headers.count, 0);
    assert_null(info.meta.checksum);
    rd_s3_object_info_free(&info);
}

static void test_upload_lifecycle(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    size_t big = (size_t)RD_S3_MIN_PART_SIZE;
    char *p1 = malloc(big);
    for (size_t i = 0; i < big; i++)
        p1[i] = (char)(i * 7 + 3);
    assert_int_equal(rd_s3_store_put_data(f->st, "bkt", "obj", "old", 3, NULL, NULL, &err), 0);

    rd_s3_meta m;
    memset(&m, 0, sizeof m);
    rd_headers_init(&m.headers);
    rd_headers_add(&m.headers, "x-amz-meta-team", "data");
    m.checksum_algo = strdup("SHA256");
    char id[40], other[40];
    assert_int_equal(rd_s3_store_mpu_create(f->st, "bkt", "obj", "application/x-parquet", &m, id, &err), 0);
    rd_s3_meta_free(&m);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(rd_s3_store_mpu_create(f->st, "bkt", "another", NULL, NULL, other, &err), 0);
    assert_s3_error(rd_s3_store_mpu_create(f->st, "nobucket", "obj", NULL, NULL, other, &err), 404, "NoSuchBucket");

    rd_s3_upload_info up;
    assert_int_equal(rd_s3_store_mpu_get(f->st, "bkt", "obj", id, &up, &err), 0);
    assert_string_equal(up.key, "obj");
    assert_string_equal(up.meta.checksum_algo, "SHA256");
    rd_s3_upload_info_free(&up);
    assert_s3_error(rd_s3_store_mpu_get(f->st, "bkt", "another", id, &up, &err), 404, "NoSuchUpload");
    assert_s3_error(rd_s3_store_mpu_get(f->st, "bkt", "obj", "../../../etc", &up, &err), 404, "NoSuchUpload");

    char e1[48], e2[48], e3[48];
    put_part(f->st, "obj", id, 1, p1, big, "c1", e1);
    put_part(f->st, "obj", id, 2, "tail", 4, "c2", e2);
    put_part(f->st, "obj", id, 3, "xx", 2, NULL, e3);
    rd_s3_put *w = NULL;
    assert_s3_error(rd_s3_store_part_begin(f->st, "bkt", "obj", id, 0, &w, &err), 400, "InvalidArgument");
    assert_s3_error(rd_s3_store_part_begin(f->st, "bkt", "obj", id, 10001, &w, &err), 400, "InvalidArgument");

    rd_s3_part_info *parts = NULL;
    size_t n = 0;
    assert_int_equal(rd_s3_store_mpu_parts(f->st, "bkt", "obj", id, &parts, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(parts[0].number, 1);
    assert_int_equal(parts[0].size, big);
    assert_string_equal(parts[0].checksum, "c1");
    assert_string_equal(parts[1].etag, e2);
    assert_null(parts[2].checksum);
    rd_s3_parts_free(parts, n);

    /* in progress: listed as an upload, not as an object; the old object stays */
    rd_s3_upload_info *ups = NULL;
    int truncated = 0;
    assert_int_equal(rd_s3_store_mpu_list(f->st, "bkt", NULL, NULL, NULL, 1, &ups, &n, &truncated, &err), 0);
    assert_int_equal(n, 1);
    assert_true(truncated);
    assert_string_equal(ups[0].key, "another");
    rd_s3_upload_info_free(&ups[0]);
    free(ups);
    assert_int_equal(rd_s3_store_mpu_list(f->st, "bkt", NULL, "another", NULL, 10, &ups, &n, &truncated, &err), 0);
    assert_int_equal(n, 1);
    assert_false(truncated);
    assert_string_equal(ups[0].upload_id, id);
    rd_s3_upload_info_free(&ups[0]);
    free(ups);
    rd_s3_listing l;
    assert_int_equal(rd_s3_store_list(f->st, "bkt", NULL, NULL, NULL, 100, &l, &err), 0);
    assert_int_equal(l.object_count, 1);
    rd_s3_listing_free(&l);
    size_t len;
    char *got = read_object(f->st, "obj", &len);
    assert_int_equal(len, 3);
    free(got);

    /* the rules */
    rd_s3_complete_part order[] = { { 2, e2 }, { 1, e1 } };
    assert_s3_error(rd_s3_store_mpu_complete(f->st, "bkt", "obj", id, order, 2, NULL, NULL, NULL, &err), 400,
                    "InvalidPartOrder");
    rd_s3_complete_part missing[] = { { 1, e1 }, { 4, e2 } };
    assert_s3_error(rd_s3_store_mpu_complete(f->st, "bkt", "obj", id, missing, 2, NULL, NULL, NULL, &err), 400,
                    "InvalidPart");
    rd_s3_complete_part wrong[] = { { 1, e1 }, { 2, e1 } };
    assert_s3_error(rd_s3_store_mpu_complete(f->st, "bkt", "obj", id, wrong, 2, NULL, NULL, NULL, &err), 400,
                    "InvalidPart");
    rd_s3_complete_part small[] = { { 2, e2 }, { 3, e3 } };
    assert_s3_error(rd_s3_store_mpu_complete(f->st, "bkt", "obj", id, small, 2, NULL, NULL, NULL, &err), 400,
                    "EntityTooSmall");
    assert_s3_error(rd_s3_store_mpu_complete(f->st, "bkt", "another", id, small, 2, NULL, NULL, NULL, &err), 404,
                    "NoSuchUpload");

    /* survives a restart, then completes: parts 1 and 2 (3 dropped); the ETag unquoted as clients may send it */
    reopen(f);
    char unquoted[48];
    snprintf(unquoted, sizeof unquoted, "%.*s", (int)strlen(e1) - 2, e1 + 1);
    rd_s3_complete_part ok[] = { { 1, unquoted }, { 2, e2 } };
    rd_s3_object_info info;
    assert_int_equal(rd_s3_store_mpu_complete(f->st, "bkt", "obj", id, ok, 2, "composite-2", "COMPOSITE", &info, &err),
                     0);
    unsigned char md[32], mm[16];
    md5_of(p1, big, md);
    md5_of("tail", 4, md + 16);
    md5_of(md, 32, mm);
    char want[48];
    want[0] = '"';
    for (int i = 0; i < 16; i++)
        sprintf(want + 1 + 2 * i, "%02x", mm[i]);
    strcat(want, "-2\"");
    assert_string_equal(info.etag, want);
    assert_int_equal(info.size, big + 4);
    rd_s3_object_info_free(&info);
    reopen(f);
    assert_int_equal(rd_s3_store_head(f->st, "bkt", "obj", &info, &err), 0);
    assert_string_equal(info.etag, want);
    assert_string_equal(info.content_type, "application/x-parquet");
    assert_string_equal(rd_headers_get(&info.meta.headers, "x-amz-meta-team"), "data");
    assert_string_equal(info.meta.checksum_algo, "SHA256");
    assert_string_equal(info.meta.checksum, "composite-2");
    assert_string_equal(info.meta.checksum_type, "COMPOSITE");
    rd_s3_object_info_free(&info);
    got = read_object(f->st, "obj", &len);
    assert_int_equal(len, big + 4);
    assert_memory_equal(got, p1, big);
    assert_memory_equal(got + big, "tail", 4);
    free(got);
    assert_s3_error(rd_s3_store_mpu_parts(f->st, "bkt", "obj", id, &parts, &n, &err), 404, "NoSuchUpload");
    assert_s3_error(rd_s3_store_mpu_complete(f->st, "bkt", "obj", id, ok, 2, NULL, NULL, NULL, &err), 404,
                    "NoSuchUpload");
    /* nothing of the upload is left but the other upload */
    char *ud = uploads_dir(f);
    assert_int_equal(count_files(ud, "d-"), 0);
    assert_int_equal(count_files(ud, "upload.json"), 1);
    free(ud);
    free(p1);
}

static void test_reupload_abort_and_races(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    char id[40], e[48];
    assert_int_equal(rd_s3_store_mpu_create(f->st, "bkt", "k", NULL, NULL, id, &err), 0);
    char *ud = uploads_dir(f);
    put_part(f->st, "k", id, 7, "first", 5, NULL, e);
    put_part(f->st, "k", id, 7, "second", 6, NULL, e);
    assert_int_equal(count_files(ud, "d-"), 1); /* the first part's bytes are gone */
    rd_s3_part_info *parts = NULL;
    size_t n = 0;
    assert_int_equal(rd_s3_store_mpu_parts(f->st, "bkt", "k", id, &parts, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(parts[0].size, 6);
    rd_s3_parts_free(parts, n);

    /* an abort while a part streams: the part's commit finds no upload */
    rd_s3_put *w = NULL;
    assert_int_equal(rd_s3_store_part_begin(f->st, "bkt", "k", id, 8, &w, &err), 0);
    assert_int_equal(rd_s3_put_write(w, "late", 4, &err), 0);
    assert_int_equal(rd_s3_store_mpu_abort(f->st, "bkt", "k", id, &err), 0);
    assert_s3_error(rd_s3_put_commit(w, NULL, NULL, &err), 404, "NoSuchUpload");
    assert_int_equal(count_files(ud, ""), 0); /* storage released */
    assert_s3_error(rd_s3_store_mpu_abort(f->st, "bkt", "k", id, &err), 404, "NoSuchUpload");
    assert_s3_error(rd_s3_store_part_begin(f->st, "bkt", "k", id, 1, &w, &err), 404, "NoSuchUpload");
    rd_s3_object_info info;
    assert_s3_error(rd_s3_store_head(f->st, "bkt", "k", &info, &err), 404, "NoSuchKey");

    /* a writer aborted leaves nothing */
    assert_int_equal(rd_s3_store_mpu_create(f->st, "bkt", "k", NULL, NULL, id, &err), 0);
    assert_int_equal(rd_s3_store_part_begin(f->st, "bkt", "k", id, 1, &w, &err), 0);
    assert_int_equal(rd_s3_put_write(w, "gone", 4, &err), 0);
    rd_s3_put_abort(w);
    assert_int_equal(count_files(ud, "tmp-"), 0);
    assert_int_equal(count_files(ud, "d-"), 0);
    free(ud);
}

static void touch(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "junk", 4), 4);
    close(fd);
}

static void test_crash_leftovers_swept(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    char id[40], e[48];
    assert_int_equal(rd_s3_store_put_data(f->st, "bkt", "k", "old", 3, NULL, NULL, &err), 0);
    assert_int_equal(rd_s3_store_mpu_create(f->st, "bkt", "k", NULL, NULL, id, &err), 0);
    put_part(f->st, "k", id, 1, "part", 4, NULL, e);
    char *ud = uploads_dir(f), path[512];
    snprintf(path, sizeof path, "%s/%s", ud, id);
    touch(path, "tmp-0123456789abcdef0123456789abcdef");                           /* a part interrupted mid-body */
    touch(path, "d-0123456789abcdef0123456789abcdef");                             /* renamed, sidecar never written */
    snprintf(path, sizeof path, "%s/.trash-0123456789abcdef0123456789abcdef", ud); /* an interrupted abort */
    assert_int_equal(mkdir(path, 0700), 0);
    touch(path, "d-x");
    snprintf(path, sizeof path, "%s/0123456789abcdef0123456789abcdef", ud); /* a create interrupted */
    assert_int_equal(mkdir(path, 0700), 0);
    touch(path, "d-y");
    snprintf(path, sizeof path, "%s/bkt/objects", f->store_dir); /* a completion interrupted before commit */
    touch(path, "tmp-00000000000000000000000000000000");
    reopen(f);
    assert_int_equal(count_files(ud, "tmp-"), 0);
    assert_int_equal(count_files(ud, "d-"), 1);
    assert_int_equal(count_files(path, "tmp-"), 0);
    rd_s3_part_info *parts = NULL;
    size_t n = 0;
    assert_int_equal(rd_s3_store_mpu_parts(f->st, "bkt", "k", id, &parts, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(parts[0].etag, e);
    rd_s3_parts_free(parts, n);
    rd_s3_upload_info *ups = NULL;
    int truncated = 0;
    assert_int_equal(rd_s3_store_mpu_list(f->st, "bkt", NULL, NULL, NULL, 10, &ups, &n, &truncated, &err), 0);
    assert_int_equal(n, 1);
    rd_s3_upload_info_free(&ups[0]);
    free(ups);
    size_t len;
    char *got = read_object(f->st, "k", &len); /* the old object, whole */
    assert_int_equal(len, 3);
    assert_memory_equal(got, "old", 3);
    free(got);
    rd_s3_complete_part one[] = { { 1, e } };
    assert_int_equal(rd_s3_store_mpu_complete(f->st, "bkt", "k", id, one, 1, NULL, NULL, NULL, &err), 0);
    got = read_object(f->st, "k", &len);
    assert_int_equal(len, 4);
    assert_memory_equal(got, "part", 4);
    free(got);
    free(ud);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metadata_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reupload_abort_and_races, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_leftovers_swept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
