/* test_parse.c — the option value syntax (core/parse.h) and ingest's named values (rd_ingest_parse_*),
 * shared by the CLI's flags and the project loader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/parse.h"
#include "redduck/ingest.h"

static void test_uint(void **state)
{
    (void)state;
    uint64_t v = 99;
    assert_int_equal(rd_parse_uint("16", 1, 256, &v), 0);
    assert_int_equal(v, 16);
    assert_int_equal(rd_parse_uint("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    v = 7;
    const char *bad[] = { "", "-1", "+1", " 1", "1 ", "1x", "0x10", "257", "0", "99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rd_parse_uint(bad[i], 1, 256, &v), -1);
    assert_int_equal(v, 7); /* untouched on failure */
}

static void test_size(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(rd_parse_size("512", 1ull << 20, &v), 0);
    assert_int_equal(v, 512ull << 20);
    assert_int_equal(rd_parse_size("512MB", 1, &v), 0);
    assert_int_equal(v, 512ull << 20);
    assert_int_equal(rd_parse_size("1G", 1, &v), 0);
    assert_int_equal(v, 1ull << 30);
    assert_int_equal(rd_parse_size("8kb", 1, &v), 0);
    assert_int_equal(v, 8ull << 10);
    v = 3;
    const char *bad[] = { "", "MB", "-1M", "1T", "1MBB", "1Mx", "99999999999999G" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rd_parse_size(bad[i], 1, &v), -1);
    assert_int_equal(v, 3);
}

static void test_duration(void **state)
{
    (void)state;
    long v = 0;
    assert_int_equal(rd_parse_duration("90", &v), 0);
    assert_int_equal(v, 90);
    assert_int_equal(rd_parse_duration("0s", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(rd_parse_duration("30m", &v), 0);
    assert_int_equal(v, 1800);
    assert_int_equal(rd_parse_duration("24h", &v), 0);
    assert_int_equal(v, 86400);
    assert_int_equal(rd_parse_duration("7d", &v), 0);
    assert_int_equal(v, 7 * 86400);
    const char *bad[] = { "soon", "", "-1s", "1w", "1ms", "40000d" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rd_parse_duration(bad[i], &v), -1);
}

static void test_ingest_names(void **state)
{
    (void)state;
    rd_error err;
    rd_error_clear(&err);
    rd_ingest_via via = RD_VIA_AUTO;
    assert_int_equal(rd_ingest_parse_via("data-api", &via, &err), RD_OK);
    assert_int_equal(via, RD_VIA_DATA_API);
    assert_int_equal(rd_ingest_parse_via("unload", &via, &err), RD_OK);
    assert_int_equal(via, RD_VIA_UNLOAD);
    assert_int_equal(rd_ingest_parse_via("s3", &via, &err), RD_E_USAGE);
    assert_string_equal(err.message, "must be auto, unload or data-api");
    assert_int_equal(via, RD_VIA_UNLOAD);
    int fast = 0;
    assert_int_equal(rd_ingest_parse_compression("fast", &fast, &err), RD_OK);
    assert_int_equal(fast, 1);
    assert_int_equal(rd_ingest_parse_compression("auto", &fast, &err), RD_OK);
    assert_int_equal(fast, 0);
    assert_int_equal(rd_ingest_parse_compression("zstd", &fast, &err), RD_E_USAGE);
    assert_string_equal(err.message, "must be auto or fast");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_ingest_names),
    };
    return cmocka_run_group_tests_name("core_parse", tests, NULL, NULL);
}
