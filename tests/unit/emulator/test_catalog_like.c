/* test_catalog_like.c — the LIKE patterns of the Data API's catalog calls (SchemaPattern, TablePattern):
 * '%' and '_' (one UTF-8 character), the backslash escape, case sensitivity, backtracking, NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emulator/redshift/data_catalog.h"

static void test_literal_and_case(void **state)
{
    (void)state;
    assert_true(rd_emu_like_match("sales", "sales"));
    assert_false(rd_emu_like_match("sales", "Sales"));
    assert_false(rd_emu_like_match("sales", "sale"));
    assert_false(rd_emu_like_match("sale", "sales"));
    assert_true(rd_emu_like_match("", ""));
    assert_false(rd_emu_like_match("", "x"));
}

static void test_percent(void **state)
{
    (void)state;
    assert_true(rd_emu_like_match("%", ""));
    assert_true(rd_emu_like_match("%", "anything"));
    assert_true(rd_emu_like_match("sa%", "sales"));
    assert_true(rd_emu_like_match("sa%", "sa"));
    assert_false(rd_emu_like_match("sa%", "xsales"));
    assert_true(rd_emu_like_match("%les", "sales"));
    assert_true(rd_emu_like_match("%a%e%", "sales"));
    assert_true(rd_emu_like_match("%%s", "s"));
    /* backtracking: the first 'ab' is not the one that ends the string */
    assert_true(rd_emu_like_match("%ab", "abab"));
    assert_true(rd_emu_like_match("a%b%c", "aXbYbZc"));
    assert_false(rd_emu_like_match("a%b%c", "aXbYbZ"));
}

static void test_underscore(void **state)
{
    (void)state;
    assert_true(rd_emu_like_match("s_les", "sales"));
    assert_false(rd_emu_like_match("s_les", "sles"));
    assert_false(rd_emu_like_match("s_les", "saales"));
    assert_true(rd_emu_like_match("___", "abc"));
    assert_false(rd_emu_like_match("___", "ab"));
    /* one '_' is one character, whatever its UTF-8 length */
    assert_true(rd_emu_like_match("caf_", "caf\xc3\xa9"));
    assert_true(rd_emu_like_match("_", "\xe2\x82\xac"));
    assert_false(rd_emu_like_match("__", "\xe2\x82\xac"));
    assert_true(rd_emu_like_match("%_", "x"));
    assert_false(rd_emu_like_match("%_", ""));
}

static void test_escape(void **state)
{
    (void)state;
    assert_true(rd_emu_like_match("my\\_t", "my_t"));
    assert_false(rd_emu_like_match("my\\_t", "myxt"));
    assert_true(rd_emu_like_match("100\\%", "100%"));
    assert_false(rd_emu_like_match("100\\%", "1000"));
    assert_true(rd_emu_like_match("a\\\\b", "a\\b"));
    assert_true(rd_emu_like_match("%\\_%", "a_b"));
    assert_false(rd_emu_like_match("%\\_%", "ab"));
}

static void test_null(void **state)
{
    (void)state;
    assert_true(rd_emu_like_match(NULL, "whatever"));
    assert_true(rd_emu_like_match(NULL, ""));
    assert_false(rd_emu_like_match("%", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_case),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_underscore),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
