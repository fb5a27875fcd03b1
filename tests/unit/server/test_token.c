/* test_token.c — API tokens: shape (prefix, length, hex), uniqueness, and the stored hash being SHA-256
 * (checked against a known vector) rather than the token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/token.h"

static void test_new_token_is_well_formed_and_unique(void **state)
{
    (void)state;
    char a[RD_TOKEN_LEN + 1], b[RD_TOKEN_LEN + 1];
    rd_error err;
    assert_int_equal(rd_token_new(a, &err), RD_OK);
    assert_int_equal(rd_token_new(b, &err), RD_OK);
    assert_int_equal(strlen(a), RD_TOKEN_LEN);
    assert_memory_equal(a, "rdk_", 4);
    assert_true(rd_token_well_formed(a));
    assert_string_not_equal(a, b);
}

static void test_well_formed_refuses_other_shapes(void **state)
{
    (void)state;
    char t[RD_TOKEN_LEN + 1];
    rd_error err;
    assert_int_equal(rd_token_new(t, &err), RD_OK);
    assert_false(rd_token_well_formed(NULL));
    assert_false(rd_token_well_formed(""));
    assert_false(rd_token_well_formed("rdk_"));
    char bad[RD_TOKEN_LEN + 2];
    memcpy(bad, t, sizeof t);
    bad[0] = 'x';
    assert_false(rd_token_well_formed(bad));          /* prefix */
    memcpy(bad, t, sizeof t);
    bad[10] = 'A';
    assert_false(rd_token_well_formed(bad));          /* uppercase hex */
    memcpy(bad, t, sizeof t);
    bad[RD_TOKEN_LEN - 1] = '\0';
    assert_false(rd_token_well_formed(bad));          /* one short */
    memcpy(bad, t, sizeof t);
    bad[RD_TOKEN_LEN] = 'a';
    bad[RD_TOKEN_LEN + 1] = '\0';
    assert_false(rd_token_well_formed(bad));          /* one long */
}

static void test_hash_is_sha256_hex(void **state)
{
    (void)state;
    char h[RD_TOKEN_HASH_LEN + 1];
    rd_token_hash("abc", h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char t[RD_TOKEN_LEN + 1];
    rd_error err;
    assert_int_equal(rd_token_new(t, &err), RD_OK);
    rd_token_hash(t, h);
    assert_int_equal(strlen(h), RD_TOKEN_HASH_LEN);
    assert_null(strstr(h, t + 4));
    rd_token_wipe(t, sizeof t);
    for (size_t i = 0; i < sizeof t; i++)
        assert_int_equal(t[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_token_is_well_formed_and_unique),
        cmocka_unit_test(test_well_formed_refuses_other_shapes),
        cmocka_unit_test(test_hash_is_sha256_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
