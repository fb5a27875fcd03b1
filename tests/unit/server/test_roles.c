/* test_roles.c — the role table: every role, with and without prod access, against every action and
 * environment, compared with the table written out by hand; and the names of roles and environments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/roles.h"

/* One row per (action, environment): what none, viewer, viewer+prod, editor, editor+prod, admin and
 * admin+prod may do, as a string of 0/1 in that order. */
typedef struct row {
    rd_action action;
    rd_env env;
    const char *allowed;
} row;

static const row table[] = {
    { RD_ACTION_STATUS, RD_ENV_NONE, "0111111" },
    { RD_ACTION_READ_DATA, RD_ENV_NONE, "0111111" },
    { RD_ACTION_DEPLOY, RD_ENV_NONE, "0001111" },
    { RD_ACTION_DEPLOY, RD_ENV_DEV, "0001111" },
    { RD_ACTION_DEPLOY, RD_ENV_PROD, "0000111" }, /* a version that runs in prod: prod access */
    { RD_ACTION_REFRESH, RD_ENV_NONE, "0001111" },
    { RD_ACTION_VARIABLES_LIST, RD_ENV_DEV, "0001111" },
    { RD_ACTION_VARIABLES_READ, RD_ENV_DEV, "0001111" },
    { RD_ACTION_VARIABLES_WRITE, RD_ENV_DEV, "0001111" },
    { RD_ACTION_VARIABLES_LIST, RD_ENV_SHARED, "0001111" },
    { RD_ACTION_VARIABLES_READ, RD_ENV_SHARED, "0001111" },
    { RD_ACTION_VARIABLES_WRITE, RD_ENV_SHARED, "0001111" },
    { RD_ACTION_VARIABLES_LIST, RD_ENV_PROD, "0000111" },
    { RD_ACTION_VARIABLES_READ, RD_ENV_PROD, "0000111" },
    { RD_ACTION_VARIABLES_WRITE, RD_ENV_PROD, "0000111" },
    { RD_ACTION_VARIABLES_READ, RD_ENV_NONE, "0000000" }, /* no environment: nobody */
    { RD_ACTION_VARIABLES_WRITE, RD_ENV_NONE, "0000000" },
    { RD_ACTION_MANAGE_MEMBERS, RD_ENV_NONE, "0000011" },
    { RD_ACTION_AUDIT_READ, RD_ENV_NONE, "0000011" },
};

static void test_role_table(void **state)
{
    (void)state;
    const rd_role roles[] = { RD_ROLE_NONE, RD_ROLE_VIEWER, RD_ROLE_VIEWER, RD_ROLE_EDITOR,
                              RD_ROLE_EDITOR, RD_ROLE_ADMIN, RD_ROLE_ADMIN };
    const int prod[] = { 1, 0, 1, 0, 1, 0, 1 };
    for (size_t r = 0; r < sizeof table / sizeof table[0]; r++)
        for (size_t i = 0; i < 7; i++) {
            int want = table[r].allowed[i] == '1';
            int got = rd_role_can(roles[i], prod[i], table[r].action, table[r].env);
            if (got != want)
                fail_msg("row %zu, %s%s: want %d got %d", r, rd_role_name(roles[i]), prod[i] ? "+prod" : "",
                         want, got);
        }
}

static void test_unknown_values_denied(void **state)
{
    (void)state;
    assert_false(rd_role_can((rd_role)7, 1, RD_ACTION_STATUS, RD_ENV_NONE));
    assert_false(rd_role_can(RD_ROLE_ADMIN, 1, (rd_action)99, RD_ENV_DEV));
    assert_false(rd_role_can(RD_ROLE_ADMIN, 1, RD_ACTION_VARIABLES_READ, (rd_env)42));
    assert_false(rd_role_can(RD_ROLE_EDITOR, 2, RD_ACTION_VARIABLES_READ, RD_ENV_PROD)); /* only 1 is prod access */
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(rd_role_parse("admin"), RD_ROLE_ADMIN);
    assert_int_equal(rd_role_parse("editor"), RD_ROLE_EDITOR);
    assert_int_equal(rd_role_parse("viewer"), RD_ROLE_VIEWER);
    assert_int_equal(rd_role_parse("Admin"), RD_ROLE_NONE);
    assert_int_equal(rd_role_parse(""), RD_ROLE_NONE);
    assert_int_equal(rd_role_parse(NULL), RD_ROLE_NONE);
    assert_string_equal(rd_role_name(RD_ROLE_EDITOR), "editor");
    assert_string_equal(rd_role_name(RD_ROLE_NONE), "none");
    assert_int_equal(rd_env_parse("dev"), RD_ENV_DEV);
    assert_int_equal(rd_env_parse("prod"), RD_ENV_PROD);
    assert_int_equal(rd_env_parse("shared"), RD_ENV_SHARED);
    assert_int_equal(rd_env_parse("production"), RD_ENV_NONE);
    assert_int_equal(rd_env_parse("PROD"), RD_ENV_NONE);
    assert_int_equal(rd_env_parse(NULL), RD_ENV_NONE);
    assert_string_equal(rd_env_name(RD_ENV_SHARED), "shared");
    assert_string_equal(rd_env_name(RD_ENV_NONE), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_table),
        cmocka_unit_test(test_unknown_values_denied),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
