/* test_keyring.c — the keyring file (created 0600, refused when others may read it, malformed lines named
 * without their content, atomic add of a key) and sealing (round trip, a flipped byte in each part of a
 * blob, other associated data, a key the keyring does not hold, old blobs after a new key). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/keyring.h"

#define SECRET "AKIAplanted/secret+value=42"

typedef struct fixture {
    char dir[256];
    char path[300];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (rd_test_mkdtemp(f->dir, sizeof f->dir, "rd-keyring") != 0)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/keyring", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static rd_keyring *open_new(fixture *f)
{
    rd_keyring *kr = NULL;
    int created = -1;
    rd_error err;
    assert_int_equal(rd_keyring_open(f->path, RD_KEYRING_CREATE, &kr, &created, &err), RD_OK);
    assert_non_null(kr);
    return kr;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *data = malloc(1024 * 1024);
    assert_non_null(data);
    *len = fread(data, 1, 1024 * 1024, fp);
    fclose(fp);
    return data;
}

static int contains(const void *hay, size_t n, const void *needle, size_t m)
{
    return memmem(hay, n, needle, m) != NULL;
}

static void seal(rd_keyring *kr, const char *project, const char *env, const char *name, const char *value,
                 unsigned char **blob, size_t *len, uint32_t *key_id)
{
    rd_buf aad = RD_BUF_INIT;
    rd_error err;
    assert_int_equal(rd_keyring_variable_aad(&aad, project, env, name), RD_OK);
    assert_int_equal(rd_keyring_encrypt(kr, value, strlen(value), aad.data, aad.len, blob, len, key_id, &err),
                     RD_OK);
    rd_buf_free(&aad);
}

/* Opens blob with the associated data of (project, env, name): the status, the message in err. */
static rd_status unseal(rd_keyring *kr, const char *project, const char *env, const char *name,
                        const unsigned char *blob, size_t len, char **pt, size_t *ptlen, rd_error *err)
{
    rd_buf aad = RD_BUF_INIT;
    assert_int_equal(rd_keyring_variable_aad(&aad, project, env, name), RD_OK);
    rd_status st = rd_keyring_decrypt(kr, blob, len, aad.data, aad.len, pt, ptlen, err);
    rd_buf_free(&aad);
    return st;
}

static void test_created_0600_and_reopened(void **state)
{
    fixture *f = *state;
    rd_keyring *kr = NULL;
    rd_error err;
    int created = -1;
    assert_int_equal(rd_keyring_open(f->path, 0, &kr, &created, &err), RD_E_NOT_FOUND);
    assert_null(kr);
    assert_int_equal(rd_keyring_open(f->path, RD_KEYRING_CREATE, &kr, &created, &err), RD_OK);
    assert_int_equal(created, 1);
    assert_int_equal(rd_keyring_active_id(kr), 1);
    assert_int_equal(rd_keyring_count(kr), 1);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    unsigned char *blob = NULL;
    size_t blen = 0;
    seal(kr, "p", "dev", "K", SECRET, &blob, &blen, NULL);
    rd_keyring_free(kr);

    rd_keyring *again = NULL;
    assert_int_equal(rd_keyring_open(f->path, RD_KEYRING_CREATE, &again, &created, &err), RD_OK);
    assert_int_equal(created, 0);
    assert_int_equal(rd_keyring_active_id(again), 1);
    char *pt = NULL;
    size_t ptlen = 0;
    assert_int_equal(unseal(again, "p", "dev", "K", blob, blen, &pt, &ptlen, &err), RD_OK); /* same key */
    assert_string_equal(pt, SECRET);
    rd_keyring_wipe_free(pt, ptlen);
    free(blob);
    rd_keyring_free(again);
}

static void test_refuses_group_or_other_access(void **state)
{
    fixture *f = *state;
    rd_keyring_free(open_new(f));
    const mode_t modes[] = { 0644, 0640, 0604, 0660 };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(f->path, modes[i]), 0);
        rd_keyring *kr = NULL;
        rd_error err;
        rd_error_clear(&err);
        assert_int_equal(rd_keyring_open(f->path, RD_KEYRING_CREATE, &kr, NULL, &err), RD_E_CONFIG);
        assert_null(kr);
        assert_non_null(strstr(err.message, "chmod 600"));
        assert_non_null(strstr(err.message, f->path));
    }
    assert_int_equal(chmod(f->path, 0600), 0);
    rd_keyring *kr = NULL;
    rd_error err;
    assert_int_equal(rd_keyring_open(f->path, 0, &kr, NULL, &err), RD_OK);
    rd_keyring_free(kr);
}

static void test_malformed_line_named_not_echoed(void **state)
{
    fixture *f = *state;
    int fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    const char *text = "# comment\n\n1 " SECRET "\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    rd_keyring *kr = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_keyring_open(f->path, 0, &kr, NULL, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "line 3"));
    assert_null(strstr(err.message, SECRET));
    assert_null(strstr(err.message, "AKIA"));

    /* a well-formed line whose id repeats is refused too */
    unlink(f->path);
    fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    const char *dup = "1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                      "2 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                      "2 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    assert_int_equal(write(fd, dup, strlen(dup)), (ssize_t)strlen(dup));
    close(fd);
    rd_error_clear(&err);
    assert_int_equal(rd_keyring_open(f->path, 0, &kr, NULL, &err), RD_E_CONFIG);
    assert_null(kr);
    assert_non_null(strstr(err.message, "line 3"));
}

static void test_round_trip(void **state)
{
    fixture *f = *state;
    rd_keyring *kr = open_new(f);
    unsigned char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    uint32_t id = 0;
    seal(kr, "proj", "prod", "AWS_SECRET_ACCESS_KEY", SECRET, &a, &alen, &id);
    seal(kr, "proj", "prod", "AWS_SECRET_ACCESS_KEY", SECRET, &b, &blen, NULL);
    assert_int_equal(id, 1);
    assert_int_equal(alen, strlen(SECRET) + RD_KEYRING_OVERHEAD);
    assert_int_equal(alen, rd_keyring_blob_len(strlen(SECRET)));
    assert_memory_not_equal(a, b, alen); /* a fresh nonce each time */
    assert_false(contains(a, alen, SECRET, strlen(SECRET)));
    assert_false(contains(a, alen, "AKIA", 4));
    char *pt = NULL;
    size_t ptlen = 0;
    rd_error err;
    assert_int_equal(unseal(kr, "proj", "prod", "AWS_SECRET_ACCESS_KEY", a, alen, &pt, &ptlen, &err), RD_OK);
    assert_int_equal(ptlen, strlen(SECRET));
    assert_string_equal(pt, SECRET);
    rd_keyring_wipe_free(pt, ptlen);
    uint32_t named = 0;
    assert_int_equal(rd_keyring_blob_key_id(a, alen, &named, &err), RD_OK);
    assert_int_equal(named, 1);

    /* the empty value */
    unsigned char *e = NULL;
    size_t elen = 0;
    seal(kr, "proj", "dev", "EMPTY", "", &e, &elen, NULL);
    assert_int_equal(elen, RD_KEYRING_OVERHEAD);
    assert_int_equal(unseal(kr, "proj", "dev", "EMPTY", e, elen, &pt, &ptlen, &err), RD_OK);
    assert_int_equal(ptlen, 0);
    assert_string_equal(pt, "");
    rd_keyring_wipe_free(pt, ptlen);

    /* the keyring file holds keys, not values */
    size_t flen = 0;
    char *file = read_file(f->path, &flen);
    assert_false(contains(file, flen, SECRET, strlen(SECRET)));
    free(file);
    free(a);
    free(b);
    free(e);
    rd_keyring_free(kr);
}

static void test_flipped_byte_in_each_part(void **state)
{
    fixture *f = *state;
    rd_keyring *kr = open_new(f);
    unsigned char *blob = NULL;
    size_t len = 0;
    seal(kr, "proj", "dev", "NAME", SECRET, &blob, &len, NULL);
    size_t ct_end = len - RD_KEYRING_TAG_LEN;
    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit += 7) {
            blob[i] ^= (unsigned char)(1u << bit);
            char *pt = (char *)0x1;
            size_t ptlen = 12345;
            rd_error err;
            rd_error_clear(&err);
            rd_status st = unseal(kr, "proj", "dev", "NAME", blob, len, &pt, &ptlen, &err);
            assert_int_equal(st, RD_E_CONFIG);
            assert_ptr_equal(pt, (char *)0x1); /* nothing written */
            assert_int_equal(ptlen, 12345);
            const char *want = i == 0 ? "format version"
                               : i < 5 ? "does not hold key"
                                       : "failed its integrity check";
            if (!strstr(err.message, want))
                fail_msg("byte %zu (%s): %s", i, i < RD_KEYRING_HEADER_LEN ? "header" : i < ct_end ? "ciphertext" : "tag",
                         err.message);
            assert_null(strstr(err.message, SECRET));
            blob[i] ^= (unsigned char)(1u << bit);
        }
    }
    /* truncated blobs, one byte and everything but the header */
    char *pt = NULL;
    size_t ptlen = 0;
    rd_error err;
    assert_int_equal(unseal(kr, "proj", "dev", "NAME", blob, len - 1, &pt, &ptlen, &err), RD_E_CONFIG);
    assert_int_equal(unseal(kr, "proj", "dev", "NAME", blob, RD_KEYRING_HEADER_LEN, &pt, &ptlen, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "truncated"));
    /* and the untouched blob still opens */
    assert_int_equal(unseal(kr, "proj", "dev", "NAME", blob, len, &pt, &ptlen, &err), RD_OK);
    assert_string_equal(pt, SECRET);
    rd_keyring_wipe_free(pt, ptlen);
    free(blob);
    rd_keyring_free(kr);
}

static void test_other_associated_data_refused(void **state)
{
    fixture *f = *state;
    rd_keyring *kr = open_new(f);
    unsigned char *blob = NULL;
    size_t len = 0;
    seal(kr, "ab", "dev", "NAME", SECRET, &blob, &len, NULL);
    const char *others[][3] = {
        { "ab", "prod", "NAME" }, { "ab", "shared", "NAME" }, { "ab", "dev", "NAME2" }, { "abc", "dev", "NAME" },
        { "a", "bdev", "NAME" },  { "ab", "de", "vNAME" },    { "", "abdev", "NAME" },
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char *pt = NULL;
        size_t ptlen = 0;
        rd_error err;
        rd_error_clear(&err);
        assert_int_equal(unseal(kr, others[i][0], others[i][1], others[i][2], blob, len, &pt, &ptlen, &err),
                         RD_E_CONFIG);
        assert_non_null(strstr(err.message, "integrity check"));
        assert_null(pt);
    }
    /* the associated data itself tells the triples apart */
    rd_buf x = RD_BUF_INIT, y = RD_BUF_INIT;
    assert_int_equal(rd_keyring_variable_aad(&x, "ab", "c", "d"), RD_OK);
    assert_int_equal(rd_keyring_variable_aad(&y, "a", "bc", "d"), RD_OK);
    assert_true(x.len != y.len || memcmp(x.data, y.data, x.len) != 0);
    rd_buf_free(&x);
    rd_buf_free(&y);
    free(blob);
    rd_keyring_free(kr);
}

static void test_unknown_key_and_other_keyring(void **state)
{
    fixture *f = *state;
    rd_keyring *kr = open_new(f);
    uint32_t id = 0;
    rd_error err;
    assert_int_equal(rd_keyring_add_key(kr, &id, &err), RD_OK);
    assert_int_equal(id, 2);
    unsigned char *blob2 = NULL, *blob1 = NULL;
    size_t len2 = 0, len1 = 0;
    seal(kr, "p", "dev", "K", SECRET, &blob2, &len2, NULL);
    rd_keyring_free(kr);

    /* another keyring (one key, id 1, other bytes) */
    char other[320];
    snprintf(other, sizeof other, "%s/other", f->dir);
    rd_keyring *ok = NULL;
    assert_int_equal(rd_keyring_open(other, RD_KEYRING_CREATE, &ok, NULL, &err), RD_OK);
    char *pt = NULL;
    size_t ptlen = 0;
    rd_error_clear(&err);
    assert_int_equal(unseal(ok, "p", "dev", "K", blob2, len2, &pt, &ptlen, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "does not hold key 2"));
    assert_non_null(strstr(err.message, "--keyring"));
    assert_null(pt);
    /* same id, other key: the integrity check fails */
    kr = NULL;
    assert_int_equal(rd_keyring_open(other, 0, &kr, NULL, &err), RD_OK);
    rd_keyring_free(ok);
    ok = kr;
    rd_keyring *mine = NULL;
    assert_int_equal(rd_keyring_open(f->path, 0, &mine, NULL, &err), RD_OK);
    seal(ok, "p", "dev", "K", SECRET, &blob1, &len1, NULL);
    assert_int_equal(unseal(mine, "p", "dev", "K", blob1, len1, &pt, &ptlen, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "integrity check"));
    free(blob1);
    free(blob2);
    rd_keyring_free(ok);
    rd_keyring_free(mine);
}

static void test_add_key_keeps_old_blobs(void **state)
{
    fixture *f = *state;
    rd_keyring *kr = open_new(f);
    unsigned char *old = NULL, *fresh = NULL;
    size_t oldlen = 0, freshlen = 0;
    uint32_t oid = 0, nid = 0, added = 0;
    seal(kr, "p", "prod", "K", SECRET, &old, &oldlen, &oid);
    rd_error err;
    assert_int_equal(rd_keyring_add_key(kr, &added, &err), RD_OK);
    assert_int_equal(added, 2);
    assert_int_equal(rd_keyring_active_id(kr), 2);
    assert_true(rd_keyring_has(kr, 1) && rd_keyring_has(kr, 2) && !rd_keyring_has(kr, 3));
    seal(kr, "p", "prod", "K", SECRET "2", &fresh, &freshlen, &nid);
    assert_int_equal(oid, 1);
    assert_int_equal(nid, 2);

    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    DIR *d = opendir(f->dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1); /* no temporary file left */

    rd_keyring *again = NULL;
    assert_int_equal(rd_keyring_open(f->path, 0, &again, NULL, &err), RD_OK);
    assert_int_equal(rd_keyring_count(again), 2);
    assert_int_equal(rd_keyring_active_id(again), 2);
    char *pt = NULL;
    size_t ptlen = 0;
    assert_int_equal(unseal(again, "p", "prod", "K", old, oldlen, &pt, &ptlen, &err), RD_OK);
    assert_string_equal(pt, SECRET);
    rd_keyring_wipe_free(pt, ptlen);
    assert_int_equal(unseal(again, "p", "prod", "K", fresh, freshlen, &pt, &ptlen, &err), RD_OK);
    assert_string_equal(pt, SECRET "2");
    rd_keyring_wipe_free(pt, ptlen);

    /* `kr` read the file before `again` added a key: its add is refused rather than dropping key 3 */
    assert_int_equal(rd_keyring_add_key(again, &added, &err), RD_OK);
    assert_int_equal(added, 3);
    rd_error_clear(&err);
    assert_int_equal(rd_keyring_add_key(kr, &added, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "changed by another process"));
    assert_int_equal(rd_keyring_active_id(kr), 2);
    rd_keyring *third = NULL;
    assert_int_equal(rd_keyring_open(f->path, 0, &third, NULL, &err), RD_OK);
    assert_int_equal(rd_keyring_count(third), 3);
    rd_keyring_free(third);

    free(old);
    free(fresh);
    rd_keyring_free(again);
    rd_keyring_free(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_created_0600_and_reopened, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_group_or_other_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_line_named_not_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_in_each_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_associated_data_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_and_other_keyring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_key_keeps_old_blobs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
