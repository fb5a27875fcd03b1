/* s3_test_util.h — the emulator's object store in a fresh temporary directory, for the store and multipart
 * tests (header-only; each test is its own executable), and the assertion of an S3 error. Include cmocka.h
 * before this file. */
#ifndef RD_TEST_S3_UTIL_H
#define RD_TEST_S3_UTIL_H

#include <stdio.h>
#include <string.h>

#include "emulator/s3/s3_store.h"
#include "test_util.h"

/* A store failure: -1 with S3's HTTP status and code in `err` (an rd_emu_error in scope). */
#define assert_s3_error(call, status, code_)                                                                       \
    do {                                                                                                           \
        assert_int_equal((call), -1);                                                                              \
        assert_int_equal(err.http_status, (status));                                                               \
        assert_string_equal(err.code, (code_));                                                                    \
    } while (0)

typedef struct rd_test_store {
    char dir[64];        /* the temporary directory (removed by rd_test_store_close) */
    char store_dir[96];  /* dir/s3: the store's */
    rd_s3_store *st;
} rd_test_store;

/* A store under a fresh $TMPDIR/PREFIX-XXXXXX, with bucket created when not NULL. 0, or -1. */
static inline int rd_test_store_open(rd_test_store *f, const char *prefix, const char *bucket)
{
    memset(f, 0, sizeof *f);
    if (rd_test_mkdtemp(f->dir, sizeof f->dir, prefix) != 0)
        return -1;
    snprintf(f->store_dir, sizeof f->store_dir, "%s/s3", f->dir);
    rd_error err;
    rd_emu_error e;
    if (rd_s3_store_open(f->store_dir, &f->st, &err) != RD_OK)
        return -1;
    return bucket && rd_s3_store_create_bucket(f->st, bucket, NULL, &e) != 0 ? -1 : 0;
}

static inline void rd_test_store_close(rd_test_store *f)
{
    rd_s3_store_close(f->st);
    rd_test_rm_tree(f->dir);
    f->st = NULL;
}

#endif
