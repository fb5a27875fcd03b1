/* test_doctor.c — the doctor report's list: more checks than the old fixed table of 16 are all kept, in
 * order, with their fields; the report frees to empty. (The checks themselves: test_project_run.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "redduck/doctor.h"

static void test_report_keeps_every_check(void **state)
{
    (void)state;
    rd_doctor_report r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 40; i++) {
        char what[32], res[32];
        snprintf(what, sizeof what, "check %d", i);
        snprintf(res, sizeof res, "arn:aws:s3:::b%d", i);
        rd_doctor_check *c = rd_doctor_report_add(&r, what, "s3:GetObject", res);
        assert_non_null(c);
        c->ok = i % 2;
    }
    assert_int_equal(r.count, 40);
    assert_int_equal(r.out_of_memory, 0);
    assert_int_equal(r.failed, 0);
    for (int i = 0; i < 40; i++) {
        char what[32], res[32];
        snprintf(what, sizeof what, "check %d", i);
        snprintf(res, sizeof res, "arn:aws:s3:::b%d", i);
        assert_string_equal(r.items[i].what, what);
        assert_string_equal(r.items[i].resource, res);
        assert_string_equal(r.items[i].action, "s3:GetObject");
        assert_string_equal(r.items[i].detail, "");
        assert_int_equal(r.items[i].ok, i % 2);
    }
    rd_doctor_report_free(&r);
    assert_null(r.items);
    assert_int_equal(r.count, 0);
}

static void test_long_fields_are_truncated(void **state)
{
    (void)state;
    rd_doctor_report r;
    memset(&r, 0, sizeof r);
    char longer[400];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    rd_doctor_check *c = rd_doctor_report_add(&r, longer, longer, longer);
    assert_int_equal(strlen(c->what), sizeof c->what - 1);
    assert_int_equal(strlen(c->action), sizeof c->action - 1);
    assert_int_equal(strlen(c->resource), sizeof c->resource - 1);
    rd_doctor_report_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_keeps_every_check),
        cmocka_unit_test(test_long_fields_are_truncated),
    };
    return cmocka_run_group_tests_name("doctor", tests, NULL, NULL);
}
