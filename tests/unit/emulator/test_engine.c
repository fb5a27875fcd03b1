/* test_engine.c — the engine: the statement state machine seen by polling, cancellation of a running
 * query, the per-target cap on active statements, lazily created warehouses that persist, and the sample
 * data generator (same seed → same data, another seed → other data). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine_test_util.h"

#define SLOW_SQL "SELECT sum(hash(a.range * b.range)) FROM range(200000) a, range(200000) b"

static int setup(void **state)
{
    *state = env_new(2);
    return 0;
}

static int teardown(void **state)
{
    env_free(*state);
    return 0;
}

static char *submit(test_env *e, const char *sql, int *status)
{
    json_t *r = call(e, "ExecuteStatement", json_pack("{s:s, s:s, s:s}", "Sql", sql, "WorkgroupName", "demo",
                                                      "Database", "dev"), status);
    char *id = *status == 200 ? strdup(jget_str(r, "Id")) : strdup(jget_str(r, "__type"));
    json_decref(r);
    return id;
}

static char *status_of(test_env *e, const char *id)
{
    json_t *d = describe_id(e, id);
    char *s = strdup(jget_str(d, "Status"));
    json_decref(d);
    return s;
}

static void test_states_and_cancel(void **state)
{
    test_env *e = *state;
    int status;
    char *id = submit(e, SLOW_SQL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(strlen(id), 36);
    /* poll until STARTED, passing only through the documented states */
    int started = 0;
    for (int i = 0; i < 500 && !started; i++) {
        char *s = status_of(e, id);
        assert_true(strcmp(s, "SUBMITTED") == 0 || strcmp(s, "PICKED") == 0 || strcmp(s, "STARTED") == 0);
        started = strcmp(s, "STARTED") == 0;
        free(s);
        if (!started)
            usleep(10000);
    }
    assert_true(started);
    json_t *r = call(e, "CancelStatement", json_pack("{s:s}", "Id", id), &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(r, "Status")));
    json_decref(r);
    assert_true(rd_emu_engine_wait(e->eng, id, 30000));
    char *s = status_of(e, id);
    assert_string_equal(s, "ABORTED");
    free(s);
    /* cancelling again: the statement is finished */
    r = call(e, "CancelStatement", json_pack("{s:s}", "Id", id), &status);
    assert_int_equal(status, 400);
    assert_string_equal(jget_str(r, "__type"), "ValidationException");
    json_decref(r);
    free(id);

    /* a quick one ends FINISHED with a duration and timestamps in order */
    char qid[48];
    run_sql_wait(e, "SELECT 1", qid);
    json_t *d = describe_id(e, qid);
    assert_string_equal(jget_str(d, "Status"), "FINISHED");
    assert_true(json_integer_value(json_object_get(d, "Duration")) >= 0);
    assert_true(json_real_value(json_object_get(d, "UpdatedAt")) >= json_real_value(json_object_get(d, "CreatedAt")));
    assert_true(json_integer_value(json_object_get(d, "RedshiftQueryId")) > 0);
    json_decref(d);
}

static void test_active_cap(void **state)
{
    test_env *e = *state;
    rd_emu_engine_set_limits(e->eng, 2, 0);
    int status;
    char *a = submit(e, SLOW_SQL, &status);
    assert_int_equal(status, 200);
    char *b = submit(e, SLOW_SQL, &status);
    assert_int_equal(status, 200);
    char *c = submit(e, "SELECT 1", &status);
    assert_int_equal(status, 400);
    assert_string_equal(c, "ActiveStatementsExceededException");
    /* another target is not affected */
    json_t *r = call(e, "ExecuteStatement", json_pack("{s:s, s:s, s:s}", "Sql", "SELECT 1", "ClusterIdentifier",
                                                      "redshift-cluster-1", "Database", "dev"), &status);
    assert_int_equal(status, 200);
    rd_emu_engine_wait(e->eng, jget_str(r, "Id"), 30000);
    json_decref(r);
    json_decref(call(e, "CancelStatement", json_pack("{s:s}", "Id", a), &status));
    json_decref(call(e, "CancelStatement", json_pack("{s:s}", "Id", b), &status));
    assert_true(rd_emu_engine_wait(e->eng, a, 30000));
    assert_true(rd_emu_engine_wait(e->eng, b, 30000));
    char *d = submit(e, "SELECT 1", &status);
    assert_int_equal(status, 200);
    rd_emu_engine_wait(e->eng, d, 30000);
    free(a);
    free(b);
    free(c);
    free(d);
}

static void test_concurrent_statements(void **state)
{
    test_env *e = *state;
    char id[48];
    run_sql_wait(e, "CREATE TABLE conc (k INT, v INT)", id);
    char *ids[12];
    int status;
    for (int i = 0; i < 12; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO conc SELECT %d, range FROM range(1000)", i);
        ids[i] = submit(e, sql, &status);
        assert_int_equal(status, 200);
    }
    for (int i = 0; i < 12; i++) {
        assert_true(rd_emu_engine_wait(e->eng, ids[i], 60000));
        char *s = status_of(e, ids[i]);
        assert_string_equal(s, "FINISHED");
        free(s);
        free(ids[i]);
    }
    run_sql_wait(e, "SELECT count(*), count(DISTINCT k) FROM conc", id);
    json_t *r = call(e, "GetStatementResult", json_pack("{s:s}", "Id", id), &status);
    json_t *rec = json_array_get(json_object_get(r, "Records"), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rec, 0), "longValue")), 12000);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rec, 1), "longValue")), 12);
    json_decref(r);
}

static char *sample_checksum(test_env *e, const char *table)
{
    char id[48], sql[256];
    snprintf(sql, sizeof sql, "SELECT md5(string_agg(CAST(s AS VARCHAR), '|' ORDER BY sale_id)), count(*) FROM %s s",
             table);
    run_sql_wait(e, sql, id);
    int status;
    json_t *r = call(e, "GetStatementResult", json_pack("{s:s}", "Id", id), &status);
    assert_int_equal(status, 200);
    json_t *rec = json_array_get(json_object_get(r, "Records"), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rec, 1), "longValue")), 5000);
    char *sum = strdup(jget_str(json_array_get(rec, 0), "stringValue"));
    json_decref(r);
    return sum;
}

static void test_sample_determinism(void **state)
{
    test_env *e = *state;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_emu_engine_load_sample(e->eng, "sales:rows=5000", 42, &err), RD_OK);
    char *first = sample_checksum(e, "sales");
    assert_int_equal(rd_emu_engine_load_sample(e->eng, "sales:rows=5000,table=sales_b", 42, &err), RD_OK);
    char *second = sample_checksum(e, "sales_b");
    assert_int_equal(rd_emu_engine_load_sample(e->eng, "sales:rows=5000,table=sales_c", 43, &err), RD_OK);
    char *third = sample_checksum(e, "public.sales_c");
    assert_string_equal(first, second);
    assert_string_not_equal(first, third);
    free(first);
    free(second);
    free(third);
    /* every column has values and NULLs where the generator puts them; UTF-8 survives */
    char id[48];
    run_sql_wait(e, "SELECT count(*) FILTER (WHERE quantity IS NULL) > 0, count(*) FILTER (WHERE updated_at IS NULL) > 0, "
                    "bool_or(customer_name LIKE '%李%'), min(updated_at) < TIMESTAMPTZ '2023-03-12 07:00:00+00', "
                    "max(updated_at) > TIMESTAMPTZ '2024-11-03 06:00:00+00' FROM sales", id);
    int status;
    json_t *r = call(e, "GetStatementResult", json_pack("{s:s}", "Id", id), &status);
    json_t *rec = json_array_get(json_object_get(r, "Records"), 0);
    for (size_t i = 0; i < 5; i++)
        assert_true(json_is_true(json_object_get(json_array_get(rec, i), "booleanValue")));
    json_decref(r);
    assert_int_not_equal(rd_emu_engine_load_sample(e->eng, "nosuch:rows=5", 1, &err), RD_OK);
    assert_int_not_equal(rd_emu_engine_load_sample(e->eng, "sales:rows=abc", 1, &err), RD_OK);
    assert_int_not_equal(rd_emu_engine_load_sample(e->eng, "sales:rows=5,workgroup=missing", 1, &err), RD_OK);
}

static void test_warehouses_persist(void **state)
{
    test_env *e = *state;
    char id[48];
    run_sql_wait(e, "CREATE TABLE keep_me AS SELECT 7 AS x", id);
    char dir[256];
    snprintf(dir, sizeof dir, "%s", e->dir);
    rd_emu_engine_close(e->eng);
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_emu_engine_open(dir, 2, e->store, NULL, NULL, &e->eng, &err), RD_OK);
    run_sql_wait(e, "SELECT x FROM keep_me", id);
    int status;
    json_t *r = call(e, "GetStatementResult", json_pack("{s:s}", "Id", id), &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_array_get(json_object_get(r, "Records"), 0), 0),
                                                        "longValue")), 7);
    json_decref(r);
    /* a new workgroup from the config */
    assert_false(rd_emu_engine_has_target(e->eng, 0, "analytics"));
    assert_int_equal(rd_emu_engine_add_workgroup(e->eng, "analytics", &err), RD_OK);
    assert_true(rd_emu_engine_has_target(e->eng, 0, "analytics"));
    /* closing with a statement still running aborts it */
    int st2;
    char *slow = submit(e, SLOW_SQL, &st2);
    assert_int_equal(st2, 200);
    free(slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_states_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_active_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_statements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warehouses_persist, setup, teardown),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
