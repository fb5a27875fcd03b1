/* test_s3_store.c — the emulator's object store: buckets, atomic puts, metadata, odd keys, persistence and
 * crash leftovers, listing against a brute-force model, and concurrent writers/readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
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
    if (!f || rd_test_store_open(f, "rd-s3store", NULL) != 0)
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

static void md5_etag(const void *data, size_t len, char out[35])
{
    unsigned char md[16];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_md5(), NULL);
    out[0] = '"';
    for (int i = 0; i < 16; i++)
        sprintf(out + 1 + 2 * i, "%02x", md[i]);
    out[33] = '"';
    out[34] = 0;
}

/* Reads the whole object through open_object; malloc'd, *len set. */
static char *read_object(rd_s3_store *st, const char *bucket, const char *key, size_t *len)
{
    int fd = -1;
    rd_s3_object_info info;
    rd_emu_error err;
    assert_int_equal(rd_s3_store_open_object(st, bucket, key, &fd, &info, &err), 0);
    char *buf = malloc(info.size + 1);
    size_t got = 0;
    ssize_t n;
    while (got < info.size && (n = pread(fd, buf + got, info.size - got, (off_t)got)) > 0)
        got += (size_t)n;
    assert_int_equal(got, info.size);
    assert_string_equal(info.key, key);
    close(fd);
    *len = got;
    rd_s3_object_info_free(&info);
    return buf;
}

static size_t count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void test_buckets(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    assert_s3_error(rd_s3_store_head_bucket(f->st, "alpha", NULL, &err), 404, "NoSuchBucket");
    assert_string_equal(err.message, "The specified bucket does not exist");
    assert_int_equal(rd_s3_store_create_bucket(f->st, "zeta-1", "eu-west-1", &err), 0);
    assert_int_equal(rd_s3_store_create_bucket(f->st, "alpha", NULL, &err), 0);
    assert_s3_error(rd_s3_store_create_bucket(f->st, "alpha", NULL, &err), 409, "BucketAlreadyOwnedByYou");
    const char *bad[] = { "ab", "Upper", "under_score", "-dash", "dash-", "a..b", "192.168.1.1", ".hidden", "a/b" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_s3_error(rd_s3_store_create_bucket(f->st, bad[i], NULL, &err), 400, "InvalidBucketName");
    }
    char *region = NULL;
    assert_int_equal(rd_s3_store_head_bucket(f->st, "zeta-1", &region, &err), 0);
    assert_string_equal(region, "eu-west-1");
    free(region);
    assert_int_equal(rd_s3_store_head_bucket(f->st, "alpha", &region, &err), 0);
    assert_string_equal(region, "us-east-1");
    free(region);

    char **names;
    time_t *created;
    size_t n;
    assert_int_equal(rd_s3_store_list_buckets(f->st, &names, &created, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "alpha");
    assert_string_equal(names[1], "zeta-1");
    assert_true(created[0] > 0 && labs((long)(created[0] - time(NULL))) < 60);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(created);

    /* delete: not empty, then empty; survives a restart */
    assert_int_equal(rd_s3_store_put_data(f->st, "alpha", "k", "v", 1, NULL, NULL, &err), 0);
    assert_s3_error(rd_s3_store_delete_bucket(f->st, "alpha", &err), 409, "BucketNotEmpty");
    assert_int_equal(rd_s3_store_delete(f->st, "alpha", "k", &err), 0);
    assert_int_equal(rd_s3_store_delete_bucket(f->st, "alpha", &err), 0);
    assert_s3_error(rd_s3_store_delete_bucket(f->st, "alpha", &err), 404, "NoSuchBucket");
    reopen(f);
    assert_s3_error(rd_s3_store_head_bucket(f->st, "alpha", NULL, &err), 404, "NoSuchBucket");
    assert_int_equal(rd_s3_store_head_bucket(f->st, "zeta-1", &region, &err), 0);
    assert_string_equal(region, "eu-west-1");
    free(region);
}

static void test_put_get_odd_keys_and_persistence(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    assert_int_equal(rd_s3_store_create_bucket(f->st, "data", NULL, &err), 0);
    char long_key[1025];
    memset(long_key, 'k', 1024);
    long_key[1024] = 0;
    const char *keys[] = { "plain.txt", "dir/sub/file", "../../escape", "..", ".", "/leading", "trailing/",
                           "a//b", "ütf8 näme ☃.bin", "with%25percent+plus&amp", "sp ace", long_key };
    size_t nk = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < nk; i++) {
        char body[64];
        int len = snprintf(body, sizeof body, "body-%zu-%s", i, i % 2 ? "odd" : "even");
        rd_s3_object_info info;
        assert_int_equal(rd_s3_store_put_data(f->st, "data", keys[i], body, (size_t)len, i % 2 ? "text/plain" : NULL,
                                         &info, &err),
                         0);
        char etag[35];
        md5_etag(body, (size_t)len, etag);
        assert_string_equal(info.etag, etag);
        assert_int_equal(info.size, (uint64_t)len);
        assert_string_equal(info.key, keys[i]);
        rd_s3_object_info_free(&info);
    }
    /* nothing escaped the bucket's directory */
    char path[256];
    snprintf(path, sizeof path, "%s/escape", f->dir);
    assert_int_not_equal(access(path, F_OK), 0);

    char too_long[1026];
    memset(too_long, 'x', 1025);
    too_long[1025] = 0;
    assert_s3_error(rd_s3_store_put_data(f->st, "data", too_long, "x", 1, NULL, NULL, &err), 400, "KeyTooLongError");
    assert_s3_error(rd_s3_store_put_data(f->st, "data", "", "x", 1, NULL, NULL, &err), 400, "InvalidArgument");
    assert_s3_error(rd_s3_store_put_data(f->st, "nobucket", "k", "x", 1, NULL, NULL, &err), 404, "NoSuchBucket");

    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < nk; i++) {
            char body[64];
            int len = snprintf(body, sizeof body, "body-%zu-%s", i, i % 2 ? "odd" : "even");
            size_t got_len;
            char *got = read_object(f->st, "data", keys[i], &got_len);
            assert_int_equal(got_len, (size_t)len);
            assert_memory_equal(got, body, got_len);
            free(got);
            rd_s3_object_info info;
            assert_int_equal(rd_s3_store_head(f->st, "data", keys[i], &info, &err), 0);
            if (i % 2)
                assert_string_equal(info.content_type, "text/plain");
            else
                assert_null(info.content_type);
            assert_true(labs((long)(info.last_modified - time(NULL))) < 60);
            rd_s3_object_info_free(&info);
        }
        reopen(f); /* second round reads what the restart loaded */
    }
    rd_s3_object_info info;
    assert_s3_error(rd_s3_store_head(f->st, "data", "missing", &info, &err), 404, "NoSuchKey");
    int fd = -1;
    assert_s3_error(rd_s3_store_open_object(f->st, "nobucket", "k", &fd, &info, &err), 404, "NoSuchBucket");
    assert_int_equal(fd, -1);
}

static void test_overwrite_delete_and_crash_leftovers(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    assert_int_equal(rd_s3_store_create_bucket(f->st, "own", NULL, &err), 0);
    char objdir[160];
    snprintf(objdir, sizeof objdir, "%s/own/objects", f->store_dir);
    assert_int_equal(rd_s3_store_put_data(f->st, "own", "k", "first", 5, NULL, NULL, &err), 0);
    /* a reader holding the old version keeps reading it after an overwrite */
    int fd = -1;
    rd_s3_object_info info;
    assert_int_equal(rd_s3_store_open_object(f->st, "own", "k", &fd, &info, &err), 0);
    rd_s3_object_info_free(&info);
    assert_int_equal(rd_s3_store_put_data(f->st, "own", "k", "second!", 7, NULL, NULL, &err), 0);
    char buf[16] = { 0 };
    assert_int_equal(pread(fd, buf, sizeof buf, 0), 5);
    assert_string_equal(buf, "first");
    close(fd);
    size_t len;
    char *got = read_object(f->st, "own", "k", &len);
    assert_int_equal(len, 7);
    assert_memory_equal(got, "second!", 7);
    free(got);
    assert_int_equal(count_files(objdir, "d-"), 1); /* the old data file is gone */
    assert_int_equal(count_files(objdir, "tmp-"), 0);

    /* leftovers of an interrupted put: a temp file, an orphan data file, a broken sidecar */
    char p[300];
    snprintf(p, sizeof p, "%s/tmp-0123", objdir);
    FILE *fp = fopen(p, "w");
    fputs("junk", fp);
    fclose(fp);
    snprintf(p, sizeof p, "%s/d-orphan", objdir);
    fp = fopen(p, "w");
    fputs("junk", fp);
    fclose(fp);
    snprintf(p, sizeof p, "%s/%064d.json", objdir, 0);
    fp = fopen(p, "w");
    fputs("{not json", fp);
    fclose(fp);
    reopen(f);
    assert_int_equal(count_files(objdir, "d-"), 1);
    assert_int_equal(count_files(objdir, "tmp-"), 0);
    assert_int_equal(access(p, F_OK), -1);
    got = read_object(f->st, "own", "k", &len);
    assert_memory_equal(got, "second!", 7);
    free(got);

    assert_int_equal(rd_s3_store_delete(f->st, "own", "k", &err), 0);
    assert_int_equal(rd_s3_store_delete(f->st, "own", "k", &err), 0); /* missing key: fine, as S3 */
    assert_s3_error(rd_s3_store_head(f->st, "own", "k", &info, &err), 404, "NoSuchKey");
    assert_int_equal(count_files(objdir, "d-"), 0);
    reopen(f);
    assert_s3_error(rd_s3_store_head(f->st, "own", "k", &info, &err), 404, "NoSuchKey");
    assert_s3_error(rd_s3_store_delete(f->st, "nobucket", "k", &err), 404, "NoSuchBucket");
}

static void test_writer_and_put_file(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    assert_int_equal(rd_s3_store_create_bucket(f->st, "wri", NULL, &err), 0);
    rd_s3_put *w = NULL;
    assert_int_equal(rd_s3_store_put_begin(f->st, "wri", "streamed", "application/x-test", &w, &err), 0);
    assert_int_equal(rd_s3_put_write(w, "hello ", 6, &err), 0);
    assert_int_equal(rd_s3_put_write(w, "world", 5, &err), 0);
    unsigned char md[16];
    unsigned int n;
    EVP_Digest("hello world", 11, md, &n, EVP_md5(), NULL);
    rd_s3_object_info info;
    assert_int_equal(rd_s3_put_commit(w, md, &info, &err), 0);
    assert_string_equal(info.etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    assert_string_equal(info.content_type, "application/x-test");
    rd_s3_object_info_free(&info);

    /* a wrong digest stores nothing */
    assert_int_equal(rd_s3_store_put_begin(f->st, "wri", "bad", NULL, &w, &err), 0);
    assert_int_equal(rd_s3_put_write(w, "hello", 5, &err), 0);
    assert_s3_error(rd_s3_put_commit(w, md, NULL, &err), 400, "BadDigest");
    assert_s3_error(rd_s3_store_head(f->st, "wri", "bad", &info, &err), 404, "NoSuchKey");
    /* abort leaves nothing */
    assert_int_equal(rd_s3_store_put_begin(f->st, "wri", "aborted", NULL, &w, &err), 0);
    rd_s3_put_abort(w);
    char objdir[160];
    snprintf(objdir, sizeof objdir, "%s/wri/objects", f->store_dir);
    assert_int_equal(count_files(objdir, "tmp-"), 0);

    /* put_file consumes a local file */
    char src[128];
    snprintf(src, sizeof src, "%s/unload.parquet", f->dir);
    FILE *fp = fopen(src, "w");
    for (int i = 0; i < 100000; i++)
        fprintf(fp, "%d,", i);
    fclose(fp);
    struct stat sb;
    assert_int_equal(stat(src, &sb), 0);
    assert_int_equal(rd_s3_store_put_file(f->st, "wri", "unload/part-0000.parquet", src, NULL, &info, &err), 0);
    assert_int_equal(info.size, (uint64_t)sb.st_size);
    rd_s3_object_info_free(&info);
    assert_int_equal(access(src, F_OK), -1);
    size_t len;
    char *got = read_object(f->st, "wri", "unload/part-0000.parquet", &len);
    assert_int_equal(len, (size_t)sb.st_size);
    assert_memory_equal(got, "0,1,2,3,", 8);
    char etag[35];
    md5_etag(got, len, etag);
    assert_int_equal(rd_s3_store_head(f->st, "wri", "unload/part-0000.parquet", &info, &err), 0);
    assert_string_equal(info.etag, etag);
    rd_s3_object_info_free(&info);
    free(got);
}

/* ---- listing against a brute-force model ---- */

typedef struct item {
    char *s;
    int is_prefix;
} item;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const item *)a)->s, ((const item *)b)->s);
}

/* What a full listing must return: keys > start_after with the prefix, rolled up at the delimiter, a prefix
 * equal to start_after left out. keys sorted. */
static size_t expected_items(char **keys, size_t nk, const char *prefix, const char *delim, const char *start_after,
                             item *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nk; i++) {
        if (strncmp(keys[i], prefix, strlen(prefix)) != 0)
            continue;
        if (start_after && strcmp(keys[i], start_after) <= 0)
            continue;
        const char *d = delim ? strstr(keys[i] + strlen(prefix), delim) : NULL;
        if (d) {
            size_t cl = (size_t)(d - keys[i]) + strlen(delim);
            if (start_after && strlen(start_after) == cl && strncmp(start_after, keys[i], cl) == 0)
                continue;
            if (n && out[n - 1].is_prefix && strlen(out[n - 1].s) == cl && strncmp(out[n - 1].s, keys[i], cl) == 0)
                continue;
            out[n].s = strndup(keys[i], cl);
            out[n++].is_prefix = 1;
        } else {
            out[n].s = strdup(keys[i]);
            out[n++].is_prefix = 0;
        }
    }
    return n;
}

static void check_paged_listing(rd_s3_store *st, char **keys, size_t nk, const char *prefix, const char *delim,
                                const char *start_after, size_t page)
{
    item *want = calloc(nk + 1, sizeof *want);
    size_t nw = expected_items(keys, nk, prefix, delim, start_after, want);
    item *got = calloc(nk + 1, sizeof *got);
    size_t ng = 0;
    char *after = start_after ? strdup(start_after) : NULL;
    rd_emu_error err;
    for (int pages = 0;; pages++) {
        assert_true(pages <= (int)(nk / page) + 2);
        rd_s3_listing l;
        assert_int_equal(rd_s3_store_list(st, "list", prefix, delim, after, page, &l, &err), 0);
        size_t this_page = l.object_count + l.prefix_count;
        assert_true(this_page <= page);
        size_t first = ng;
        for (size_t i = 0; i < l.object_count; i++) {
            got[ng].s = strdup(l.objects[i].key);
            got[ng++].is_prefix = 0;
        }
        for (size_t i = 0; i < l.prefix_count; i++) {
            got[ng].s = strdup(l.common_prefixes[i]);
            got[ng++].is_prefix = 1;
        }
        qsort(got + first, ng - first, sizeof *got, cmp_item);
        free(after);
        after = NULL;
        if (!l.truncated) {
            rd_s3_listing_free(&l);
            break;
        }
        assert_int_equal(this_page, page);
        assert_non_null(l.next_after);
        assert_string_equal(l.next_after, got[ng - 1].s);
        after = strdup(l.next_after);
        rd_s3_listing_free(&l);
    }
    assert_int_equal(ng, nw);
    for (size_t i = 0; i < nw; i++) {
        assert_string_equal(got[i].s, want[i].s);
        assert_int_equal(got[i].is_prefix, want[i].is_prefix);
        free(got[i].s);
        free(want[i].s);
    }
    free(got);
    free(want);
}

static void test_listing_matches_model(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    assert_int_equal(rd_s3_store_create_bucket(f->st, "list", NULL, &err), 0);
    /* 2500 keys over a small alphabet with '/', '-', a multi-byte character and '~' (above '/' and letters) */
    static const char *const parts[] = { "a", "b", "/", "-", "\xc3\xa9", "~", "ab/", "0" };
    size_t nk = 2500;
    char **keys = calloc(nk, sizeof *keys);
    unsigned seed = 12345;
    for (size_t i = 0; i < nk; i++) {
        for (;;) {
            char k[64] = { 0 };
            int len = 1 + (int)(rand_r(&seed) % 7);
            for (int j = 0; j < len; j++)
                strcat(k, parts[rand_r(&seed) % (sizeof parts / sizeof parts[0])]);
            int dup = 0;
            for (size_t q = 0; q < i && !dup; q++)
                dup = strcmp(keys[q], k) == 0;
            if (!dup) {
                keys[i] = strdup(k);
                break;
            }
        }
        char body[16];
        int bl = snprintf(body, sizeof body, "%zu", i);
        assert_int_equal(rd_s3_store_put_data(f->st, "list", keys[i], body, (size_t)bl, NULL, NULL, &err), 0);
    }
    qsort(keys, nk, sizeof *keys, cmp_str);

    /* whole listing, unpaged: exactly the sorted keys */
    rd_s3_listing l;
    assert_int_equal(rd_s3_store_list(f->st, "list", NULL, NULL, NULL, nk + 10, &l, &err), 0);
    assert_int_equal(l.object_count, nk);
    assert_false(l.truncated);
    for (size_t i = 0; i < nk; i++)
        assert_string_equal(l.objects[i].key, keys[i]);
    rd_s3_listing_free(&l);
    assert_int_equal(rd_s3_store_list(f->st, "list", NULL, NULL, NULL, 0, &l, &err), 0);
    assert_int_equal(l.object_count + l.prefix_count, 0);
    rd_s3_listing_free(&l);
    assert_s3_error(rd_s3_store_list(f->st, "nobucket", NULL, NULL, NULL, 10, &l, &err), 404, "NoSuchBucket");

    const char *prefixes[] = { "", "a", "a/", "ab/", "\xc3\xa9", "b-", "zzz" };
    const char *delims[] = { NULL, "/", "-", "ab" };
    const size_t pagesz[] = { 1, 7, 100, 1000 };
    for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++)
        for (size_t d = 0; d < sizeof delims / sizeof *delims; d++)
            for (size_t s = 0; s < sizeof pagesz / sizeof *pagesz; s++) {
                if (pagesz[s] == 1 && p == 0 && !delims[d])
                    continue; /* 2500 single-key pages add nothing the other sizes don't cover */
                check_paged_listing(f->st, keys, nk, prefixes[p], delims[d], NULL, pagesz[s]);
            }
    /* an explicit start-after, inside and outside the prefix */
    check_paged_listing(f->st, keys, nk, "", "/", "a/b", 50);
    check_paged_listing(f->st, keys, nk, "a", NULL, keys[nk / 2], 33);
    check_paged_listing(f->st, keys, nk, "b", "/", "a", 10);
    reopen(f);
    check_paged_listing(f->st, keys, nk, "", "/", NULL, 13);
    for (size_t i = 0; i < nk; i++)
        free(keys[i]);
    free(keys);
}

/* ---- concurrency ---- */

typedef struct worker {
    rd_s3_store *st;
    int id;
    int failures;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    rd_emu_error err;
    for (int i = 0; i < 60; i++) {
        char key[64], body[64];
        snprintf(key, sizeof key, "t%02d/k%04d", w->id, i);
        int bl = snprintf(body, sizeof body, "worker %d item %d", w->id, i);
        if (rd_s3_store_put_data(w->st, "conc", key, body, (size_t)bl, NULL, NULL, &err) != 0)
            w->failures++;
        /* everyone also rewrites one shared key */
        if (rd_s3_store_put_data(w->st, "conc", "shared", body, (size_t)bl, NULL, NULL, &err) != 0)
            w->failures++;
        if (i % 10 == 0) {
            rd_s3_listing l;
            if (rd_s3_store_list(w->st, "conc", NULL, "/", NULL, 1000, &l, &err) != 0) {
                w->failures++;
                continue;
            }
            for (size_t j = 1; j < l.prefix_count; j++)
                if (strcmp(l.common_prefixes[j - 1], l.common_prefixes[j]) >= 0)
                    w->failures++;
            rd_s3_listing_free(&l);
            int fd;
            rd_s3_object_info info;
            if (rd_s3_store_open_object(w->st, "conc", "shared", &fd, &info, &err) == 0) {
                char buf[64] = { 0 };
                ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
                if (n != (ssize_t)info.size || strncmp(buf, "worker ", 7) != 0)
                    w->failures++;
                close(fd);
                rd_s3_object_info_free(&info);
            } else {
                w->failures++;
            }
        }
    }
    return NULL;
}

static void test_concurrent_puts_and_lists(void **state)
{
    fixture *f = *state;
    rd_emu_error err;
    assert_int_equal(rd_s3_store_create_bucket(f->st, "conc", NULL, &err), 0);
    enum { NT = 8 };
    pthread_t th[NT];
    worker w[NT];
    for (int i = 0; i < NT; i++) {
        w[i] = (worker){ f->st, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    rd_s3_listing l;
    assert_int_equal(rd_s3_store_list(f->st, "conc", NULL, NULL, NULL, 5000, &l, &err), 0);
    assert_int_equal(l.object_count, NT * 60 + 1);
    rd_s3_listing_free(&l);
    char objdir[160];
    snprintf(objdir, sizeof objdir, "%s/conc/objects", f->store_dir);
    assert_int_equal(count_files(objdir, "d-"), NT * 60 + 1); /* no data file leaked by racing rewrites */
    reopen(f);
    assert_int_equal(rd_s3_store_list(f->st, "conc", "t03/", NULL, NULL, 5000, &l, &err), 0);
    assert_int_equal(l.object_count, 60);
    rd_s3_listing_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_get_odd_keys_and_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_delete_and_crash_leftovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_and_put_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_matches_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_puts_and_lists, setup, teardown),
    };
    return cmocka_run_group_tests_name("s3_store", tests, NULL, NULL);
}
