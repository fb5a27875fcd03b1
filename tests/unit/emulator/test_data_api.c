/* test_data_api.c — the Redshift Data API handler over a real engine: typed records for every Redshift
 * type, column metadata, paging, parameters, ClientToken idempotency, batches, ownership, error shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine_test_util.h"

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

static json_t *result_of(test_env *e, const char *id, const char *token, int *status)
{
    json_t *b = json_pack("{s:s}", "Id", id);
    if (token)
        json_object_set_new(b, "NextToken", json_string(token));
    return call(e, "GetStatementResult", b, status);
}

static void test_typed_records(void **state)
{
    test_env *e = *state;
    char id[48];
    run_sql_wait(e, "CREATE TABLE typed (i2 SMALLINT, i4 INTEGER, i8 BIGINT, d DECIMAL(38,10), r REAL, "
                    "f DOUBLE PRECISION, b BOOLEAN, c CHAR(3), v VARCHAR(20), dt DATE, t TIME, tz TIMETZ, "
                    "ts TIMESTAMP, tstz TIMESTAMPTZ, vb VARBYTE(8), s SUPER)", id);
    json_t *d = describe_id(e, id);
    assert_string_equal(jget_str(d, "Status"), "FINISHED");
    json_decref(d);
    run_sql_wait(e, "INSERT INTO typed VALUES (-7, 2147483647, 9007199254740993, 12345678901234567890.0123456789, "
                    "1.5, 0.1, true, 'abc', 'héllo ✓', '2024-02-29', '12:34:56.5', '12:34:56+02', "
                    "'2024-03-10 02:30:00.123456', '2024-01-01 10:00:00+05', 'ab'::VARBYTE, '{\"k\":[1,2]}'), "
                    "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
                 id);
    d = describe_id(e, id);
    assert_string_equal(jget_str(d, "Status"), "FINISHED");
    assert_int_equal(json_integer_value(json_object_get(d, "ResultRows")), 2);
    assert_false(json_is_true(json_object_get(d, "HasResultSet")));
    json_decref(d);
    run_sql_wait(e, "SELECT * FROM typed ORDER BY i2 NULLS LAST", id);
    d = describe_id(e, id);
    assert_string_equal(jget_str(d, "Status"), "FINISHED");
    assert_true(json_is_true(json_object_get(d, "HasResultSet")));
    assert_int_equal(json_integer_value(json_object_get(d, "ResultRows")), 2);
    assert_true(json_is_real(json_object_get(d, "CreatedAt")));
    json_decref(d);
    int status;
    json_t *r = result_of(e, id, NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(r, "TotalNumRows")), 2);
    json_t *rec = json_array_get(json_object_get(r, "Records"), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rec, 0), "longValue")), -7);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rec, 1), "longValue")), 2147483647);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rec, 2), "longValue")), 9007199254740993LL);
    assert_string_equal(jget_str(json_array_get(rec, 3), "stringValue"), "12345678901234567890.0123456789");
    assert_true(json_real_value(json_object_get(json_array_get(rec, 4), "doubleValue")) == 1.5);
    assert_true(json_real_value(json_object_get(json_array_get(rec, 5), "doubleValue")) == 0.1);
    assert_true(json_is_true(json_object_get(json_array_get(rec, 6), "booleanValue")));
    assert_string_equal(jget_str(json_array_get(rec, 7), "stringValue"), "abc");
    assert_string_equal(jget_str(json_array_get(rec, 8), "stringValue"), "héllo ✓");
    assert_string_equal(jget_str(json_array_get(rec, 9), "stringValue"), "2024-02-29");
    assert_string_equal(jget_str(json_array_get(rec, 10), "stringValue"), "12:34:56.5");
    assert_string_equal(jget_str(json_array_get(rec, 11), "stringValue"), "10:34:56+00");
    assert_string_equal(jget_str(json_array_get(rec, 12), "stringValue"), "2024-03-10 02:30:00.123456");
    assert_string_equal(jget_str(json_array_get(rec, 13), "stringValue"), "2024-01-01 05:00:00+00");
    assert_string_equal(jget_str(json_array_get(rec, 14), "stringValue"), "6162");
    assert_string_equal(jget_str(json_array_get(rec, 15), "stringValue"), "{\"k\":[1,2]}");
    json_t *nulls = json_array_get(json_object_get(r, "Records"), 1);
    for (size_t i = 0; i < 16; i++)
        assert_true(json_is_true(json_object_get(json_array_get(nulls, i), "isNull")));
    const char *types[] = { "int2", "int4", "int8", "numeric", "float4", "float8", "bool", "bpchar", "varchar",
                            "date", "time", "timetz", "timestamp", "timestamptz", "varbyte", "super" };
    json_t *meta = json_object_get(r, "ColumnMetadata");
    assert_int_equal(json_array_size(meta), 16);
    for (size_t i = 0; i < 16; i++)
        assert_string_equal(jget_str(json_array_get(meta, i), "typeName"), types[i]);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(meta, 3), "precision")), 38);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(meta, 3), "scale")), 10);
    assert_string_equal(jget_str(json_array_get(meta, 0), "name"), "i2");
    json_decref(r);
}

static void test_paging(void **state)
{
    test_env *e = *state;
    rd_emu_engine_set_limits(e->eng, 0, 100);
    char id[48];
    run_sql_wait(e, "SELECT range AS n FROM range(250) ORDER BY n", id);
    int status;
    const char *token = NULL;
    char saved[64];
    int64_t expect = 0;
    int pages = 0;
    do {
        json_t *r = result_of(e, id, token, &status);
        assert_int_equal(status, 200);
        json_t *recs = json_object_get(r, "Records");
        for (size_t i = 0; i < json_array_size(recs); i++)
            assert_int_equal(json_integer_value(json_object_get(json_array_get(json_array_get(recs, i), 0),
                                                                "longValue")), expect++);
        assert_int_equal(json_object_get(r, "ColumnMetadata") != NULL, pages == 0);
        const char *next = jget_str(r, "NextToken");
        if (next) {
            snprintf(saved, sizeof saved, "%s", next);
            token = saved;
        } else {
            token = NULL;
        }
        pages++;
        json_decref(r);
    } while (token);
    assert_int_equal(expect, 250);
    assert_int_equal(pages, 3);
    json_t *r = result_of(e, id, "garbage", &status);
    assert_int_equal(status, 400);
    assert_string_equal(jget_str(r, "__type"), "ValidationException");
    json_decref(r);
    rd_emu_engine_set_limits(e->eng, 0, 1000);
}

static void test_parameters(void **state)
{
    test_env *e = *state;
    int status;
    json_t *params = json_pack("[{s:s, s:s}, {s:s, s:s}]", "name", "lo", "value", "3", "name", "word", "value", "x'y");
    json_t *r = call(e, "ExecuteStatement",
                     json_pack("{s:s, s:s, s:s, s:o}", "Sql", "SELECT range AS n, :word AS w FROM range(10) WHERE range > :lo",
                               "WorkgroupName", "demo", "Database", "dev", "Parameters", params),
                     &status);
    assert_int_equal(status, 200);
    char id[48];
    snprintf(id, sizeof id, "%s", jget_str(r, "Id"));
    json_decref(r);
    assert_true(rd_emu_engine_wait(e->eng, id, 30000));
    r = result_of(e, id, NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(r, "TotalNumRows")), 6);
    assert_string_equal(jget_str(json_array_get(json_array_get(json_object_get(r, "Records"), 0), 1), "stringValue"),
                        "x'y");
    json_decref(r);
    json_t *d = describe_id(e, id);
    assert_int_equal(json_array_size(json_object_get(d, "QueryParameters")), 2);
    json_decref(d);
    /* an unused parameter is refused at once */
    r = call(e, "ExecuteStatement",
             json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}]}", "Sql", "SELECT 1", "WorkgroupName", "demo", "Database", "dev",
                       "Parameters", "name", "id", "value", "1"),
             &status);
    assert_int_equal(status, 400);
    assert_string_equal(jget_str(r, "__type"), "ValidationException");
    assert_non_null(strstr(jget_str(r, "message"), "Unused parameters: [id]"));
    json_decref(r);
}

static void test_client_token(void **state)
{
    test_env *e = *state;
    int status;
    json_t *a = call(e, "ExecuteStatement", json_pack("{s:s, s:s, s:s, s:s}", "Sql", "SELECT 1", "WorkgroupName", "demo",
                                                      "Database", "dev", "ClientToken", "tok-1"), &status);
    json_t *b = call(e, "ExecuteStatement", json_pack("{s:s, s:s, s:s, s:s}", "Sql", "SELECT 1", "WorkgroupName", "demo",
                                                      "Database", "dev", "ClientToken", "tok-1"), &status);
    json_t *c = call(e, "ExecuteStatement", json_pack("{s:s, s:s, s:s, s:s}", "Sql", "SELECT 1", "WorkgroupName", "demo",
                                                      "Database", "dev", "ClientToken", "tok-2"), &status);
    assert_string_equal(jget_str(a, "Id"), jget_str(b, "Id"));
    assert_string_not_equal(jget_str(a, "Id"), jget_str(c, "Id"));
    assert_string_equal(jget_str(a, "WorkgroupName"), "demo");
    rd_emu_engine_wait(e->eng, jget_str(a, "Id"), 30000);
    rd_emu_engine_wait(e->eng, jget_str(c, "Id"), 30000);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_batch(void **state)
{
    test_env *e = *state;
    int status;
    json_t *r = call(e, "BatchExecuteStatement",
                     json_pack("{s:[s,s,s], s:s, s:s, s:s}", "Sqls", "CREATE TABLE bt (a INT)", "INSERT INTO bt VALUES (1), (2)",
                               "SELECT count(*) AS c FROM bt", "WorkgroupName", "demo", "Database", "dev",
                               "StatementName", "my-batch"),
                     &status);
    assert_int_equal(status, 200);
    char id[48], sub[64];
    snprintf(id, sizeof id, "%s", jget_str(r, "Id"));
    json_decref(r);
    assert_true(rd_emu_engine_wait(e->eng, id, 30000));
    json_t *d = describe_id(e, id);
    assert_string_equal(jget_str(d, "Status"), "FINISHED");
    json_t *subs = json_object_get(d, "SubStatements");
    assert_int_equal(json_array_size(subs), 3);
    snprintf(sub, sizeof sub, "%s:3", id);
    assert_string_equal(jget_str(json_array_get(subs, 2), "Id"), sub);
    assert_true(json_is_true(json_object_get(json_array_get(subs, 2), "HasResultSet")));
    json_decref(d);
    r = result_of(e, sub, NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_array_get(json_object_get(r, "Records"), 0), 0),
                                                        "longValue")), 2);
    json_decref(r);
    /* a failing batch rolls back and aborts what follows */
    r = call(e, "BatchExecuteStatement",
             json_pack("{s:[s,s,s], s:s, s:s}", "Sqls", "INSERT INTO bt VALUES (3)", "SELECT * FROM nope",
                       "INSERT INTO bt VALUES (4)", "WorkgroupName", "demo", "Database", "dev"),
             &status);
    snprintf(id, sizeof id, "%s", jget_str(r, "Id"));
    json_decref(r);
    assert_true(rd_emu_engine_wait(e->eng, id, 30000));
    d = describe_id(e, id);
    assert_string_equal(jget_str(d, "Status"), "FAILED");
    assert_string_equal(jget_str(d, "Error"), "ERROR: relation \"nope\" does not exist");
    subs = json_object_get(d, "SubStatements");
    assert_string_equal(jget_str(json_array_get(subs, 0), "Status"), "FINISHED");
    assert_string_equal(jget_str(json_array_get(subs, 1), "Status"), "FAILED");
    assert_string_equal(jget_str(json_array_get(subs, 2), "Status"), "ABORTED");
    json_decref(d);
    char cid[48];
    run_sql_wait(e, "SELECT count(*) FROM bt", cid);
    r = result_of(e, cid, NULL, &status);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_array_get(json_object_get(r, "Records"), 0), 0),
                                                        "longValue")), 2);
    json_decref(r);
    /* ListStatements finds the named batch */
    r = call(e, "ListStatements", json_pack("{s:s}", "StatementName", "my-"), &status);
    assert_int_equal(status, 200);
    json_t *list = json_object_get(r, "Statements");
    assert_int_equal(json_array_size(list), 1);
    assert_true(json_is_true(json_object_get(json_array_get(list, 0), "IsBatchStatement")));
    assert_int_equal(json_array_size(json_object_get(json_array_get(list, 0), "QueryStrings")), 3);
    json_decref(r);
}

static void test_error_shapes(void **state)
{
    test_env *e = *state;
    int status;
    json_t *r = call(e, "ExecuteStatement", json_pack("{s:s, s:s}", "WorkgroupName", "demo", "Database", "dev"), &status);
    assert_int_equal(status, 400);
    assert_string_equal(jget_str(r, "__type"), "ValidationException");
    json_decref(r);
    r = call(e, "ExecuteStatement", json_pack("{s:s, s:s}", "Sql", "SELECT 1", "Database", "dev"), &status);
    assert_string_equal(jget_str(r, "__type"), "ValidationException");
    json_decref(r);
    r = call(e, "ExecuteStatement", json_pack("{s:s, s:s, s:s}", "Sql", "SELECT 1", "WorkgroupName", "nope", "Database", "dev"),
             &status);
    assert_int_equal(status, 400);
    assert_string_equal(jget_str(r, "__type"), "ResourceNotFoundException");
    json_decref(r);
    r = call(e, "ExecuteStatement",
             json_pack("{s:s, s:s, s:s}", "Sql", "SELECT 1", "ClusterIdentifier", "other-cluster", "Database", "dev"), &status);
    assert_string_equal(jget_str(r, "__type"), "ValidationException");
    json_decref(r);
    r = call(e, "DescribeStatement", json_pack("{s:s}", "Id", "00000000-0000-0000-0000-000000000000"), &status);
    assert_int_equal(status, 400);
    assert_string_equal(jget_str(r, "__type"), "ResourceNotFoundException");
    assert_string_equal(jget_str(r, "ResourceId"), "00000000-0000-0000-0000-000000000000");
    json_decref(r);
    r = call(e, "DescribeStatement", json_pack("{s:s}", "Id", "not-an-id"), &status);
    assert_string_equal(jget_str(r, "__type"), "ValidationException");
    json_decref(r);
    /* a failed statement: FAILED with Redshift's error text; no result */
    char id[48];
    run_sql_wait(e, "SELEC 1", id);
    json_t *d = describe_id(e, id);
    assert_string_equal(jget_str(d, "Status"), "FAILED");
    assert_non_null(strstr(jget_str(d, "Error"), "ERROR: syntax error at or near"));
    json_decref(d);
    r = result_of(e, id, NULL, &status);
    assert_string_equal(jget_str(r, "__type"), "ResourceNotFoundException");
    json_decref(r);
    /* another principal does not see the statement */
    r = call_as(e, "arn:aws:iam::000000000000:user/other", "DescribeStatement", json_pack("{s:s}", "Id", id), &status);
    assert_string_equal(jget_str(r, "__type"), "ResourceNotFoundException");
    json_decref(r);
    /* the cluster path with a DbUser */
    r = call(e, "ExecuteStatement", json_pack("{s:s, s:s, s:s, s:s}", "Sql", "SELECT 42 AS answer", "ClusterIdentifier",
                                              "redshift-cluster-1", "Database", "dev", "DbUser", "awsuser"), &status);
    assert_int_equal(status, 200);
    assert_string_equal(jget_str(r, "ClusterIdentifier"), "redshift-cluster-1");
    assert_string_equal(jget_str(r, "DbUser"), "awsuser");
    json_decref(r);
    r = call(e, "NoSuchOperation", json_object(), &status);
    assert_int_equal(status, 400);
    json_decref(r);
}

static void test_fault_fail(void **state)
{
    test_env *e = *state;
    rd_emu_submit s;
    memset(&s, 0, sizeof s);
    const char *sql = "SELECT 1";
    s.target = "demo";
    s.database = "dev";
    s.sqls = &sql;
    s.sql_count = 1;
    s.fault_fail = 1;
    char id[48];
    double created;
    rd_emu_error err;
    assert_int_equal(rd_emu_engine_submit(e->eng, &s, id, &created, &err), 0);
    assert_true(rd_emu_engine_wait(e->eng, id, 30000));
    pthread_mutex_lock(&e->eng->mu);
    rd_emu_stmt *st = rd_emu_engine_find(e->eng, id, NULL);
    assert_int_equal(st->status, RD_ST_FAILED);
    assert_non_null(strstr(st->error, "data.execute.fail"));
    pthread_mutex_unlock(&e->eng->mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_typed_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_fail, setup, teardown),
    };
    return cmocka_run_group_tests_name("data_api", tests, NULL, NULL);
}
