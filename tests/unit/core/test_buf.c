/* test_buf.c — the growable buffer: growth, binary content, printf, detach, and sticky out of memory
 * (a failed append wipes the buffer, later appends are no-ops, cstr is "", reset clears the failure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redduck/buf.h"

/* The huge allocation below must come back as NULL under AddressSanitizer too, not abort the test. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static void test_growth(void **state)
{
    rd_buf b = RD_BUF_INIT;
    assert_string_equal(rd_buf_cstr(&b), "");
    assert_int_equal(rd_buf_failed(&b), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rd_buf_printf(&b, "%03d,", i), RD_OK);
    assert_int_equal(b.len, 4000);
    assert_true(b.cap > b.len);
    assert_int_equal(strlen(rd_buf_cstr(&b)), 4000);
    assert_memory_equal(rd_buf_cstr(&b), "000,001,002,", 12);
    assert_string_equal(rd_buf_cstr(&b) + 3996, "999,");
    assert_int_equal(rd_buf_puts(&b, "x"), RD_OK);
    assert_int_equal(rd_buf_putc(&b, 'y'), RD_OK);
    assert_string_equal(rd_buf_cstr(&b) + 3996, "999,xy");
    rd_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(rd_buf_cstr(&b), "");
    rd_buf_free(&b);
    assert_null(b.data);
    rd_buf_free(NULL);
}

static void test_binary(void **state)
{
    rd_buf b = RD_BUF_INIT;
    const unsigned char bytes[] = { 0, 1, 0xff, 0, 'a', 0x80 };
    for (int i = 0; i < 100; i++)
        assert_int_equal(rd_buf_append(&b, bytes, sizeof bytes), RD_OK);
    assert_int_equal(b.len, 600);
    for (size_t i = 0; i < 600; i += sizeof bytes)
        assert_memory_equal(b.data + i, bytes, sizeof bytes);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(rd_buf_append(&b, NULL, 0), RD_OK);
    assert_int_equal(b.len, 600);
    rd_buf_free_secure(&b);
    assert_null(b.data);
}

static void test_detach(void **state)
{
    rd_buf b = RD_BUF_INIT;
    char *s = rd_buf_detach(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    rd_buf_puts(&b, "hello");
    s = rd_buf_detach(&b);
    assert_string_equal(s, "hello");
    free(s);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

/* A size no buffer may reach: refused before any arithmetic can wrap, and the failure sticks. */
static void check_sticky(size_t huge)
{
    rd_buf b = RD_BUF_INIT;
    assert_int_equal(rd_buf_puts(&b, "secret-part"), RD_OK);
    assert_int_equal(rd_buf_append(&b, "x", huge), RD_E_INTERNAL);
    assert_true(rd_buf_failed(&b));
    assert_string_equal(rd_buf_cstr(&b), "");
    assert_null(b.data); /* the content was wiped and freed */
    assert_int_equal(b.len, 0);

    /* every later append is a no-op returning the error */
    assert_int_equal(rd_buf_puts(&b, "more"), RD_E_INTERNAL);
    assert_int_equal(rd_buf_putc(&b, 'c'), RD_E_INTERNAL);
    assert_int_equal(rd_buf_printf(&b, "%d", 42), RD_E_INTERNAL);
    assert_int_equal(rd_buf_append(&b, "ab", 2), RD_E_INTERNAL);
    assert_true(rd_buf_failed(&b));
    assert_string_equal(rd_buf_cstr(&b), "");
    assert_int_equal(b.len, 0);
    assert_null(rd_buf_detach(&b)); /* out of memory; detach also resets */
    assert_false(rd_buf_failed(&b));

    /* reset clears the failure: the buffer works again */
    assert_int_equal(rd_buf_append(&b, "x", huge), RD_E_INTERNAL);
    assert_true(rd_buf_failed(&b));
    rd_buf_reset(&b);
    assert_false(rd_buf_failed(&b));
    assert_int_equal(rd_buf_puts(&b, "again"), RD_OK);
    assert_string_equal(rd_buf_cstr(&b), "again");

    /* so does free */
    assert_int_equal(rd_buf_append(&b, "x", huge), RD_E_INTERNAL);
    rd_buf_free(&b);
    assert_false(rd_buf_failed(&b));
    assert_int_equal(rd_buf_putc(&b, 'z'), RD_OK);
    assert_string_equal(rd_buf_cstr(&b), "z");
    rd_buf_free(&b);
}

static void test_sticky_failure_overflow(void **state)
{
    check_sticky(SIZE_MAX);
    check_sticky(SIZE_MAX - 5);
    check_sticky(SIZE_MAX / 2);
}

/* A size the arithmetic allows but malloc cannot satisfy (2^60 bytes): the allocation path fails the same way. */
static void test_sticky_failure_malloc(void **state)
{
    check_sticky((size_t)1 << 60);
}

static void test_failure_on_empty_buffer(void **state)
{
    rd_buf b = RD_BUF_INIT;
    assert_int_equal(rd_buf_append(&b, "x", SIZE_MAX / 2), RD_E_INTERNAL);
    assert_true(rd_buf_failed(&b));
    assert_string_equal(rd_buf_cstr(&b), "");
    assert_int_equal(rd_buf_puts(&b, "a"), RD_E_INTERNAL);
    assert_string_equal(rd_buf_cstr(&b), "");
    rd_buf_free_secure(&b);
    assert_false(rd_buf_failed(&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_sticky_failure_overflow),
        cmocka_unit_test(test_sticky_failure_malloc),
        cmocka_unit_test(test_failure_on_empty_buffer),
    };
    return cmocka_run_group_tests_name("core_buf", tests, NULL, NULL);
}
