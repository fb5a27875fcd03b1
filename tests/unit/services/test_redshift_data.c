/* test_redshift_data.c — the Redshift Data API client (services/redshift_data.c) over a scripted
 * transport: ExecuteStatement's request and Id, DescribeStatement's fields, the wait loop (finished, failed,
 * a cancel flag that sends CancelStatement and waits for the end, the nap hook), stopping another process's
 * statement, and GetStatementResult paging.
 * (emulator/test_data_api.c tests the emulator's Data API handler, not this client.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "fake_transport.h"
#include "services/redshift_data.h"

static json_t *sent_json(const fake_http *f, int i)
{
    json_t *j = json_loads(f->body[i], 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_execute(void **state)
{
    fake_env *e = *state;
    fake_script(&e->f, 200, NULL, NULL, "{\"Id\":\"stmt-1\",\"Database\":\"dev\"}");
    rd_rsd_target t = { .workgroup = "wg", .database = "dev" };
    char id[64] = "";
    assert_int_equal(rd_rsd_execute(&e->c, &t, "select 1", "tok-1", id, &e->err), RD_OK);
    assert_string_equal(id, "stmt-1");
    assert_string_equal(e->f.target[0], "RedshiftData.ExecuteStatement");
    assert_non_null(strstr(e->f.url[0], "redshift-data.us-east-1."));
    json_t *in = sent_json(&e->f, 0);
    assert_string_equal(json_string_value(json_object_get(in, "Sql")), "select 1");
    assert_string_equal(json_string_value(json_object_get(in, "WorkgroupName")), "wg");
    assert_string_equal(json_string_value(json_object_get(in, "Database")), "dev");
    assert_string_equal(json_string_value(json_object_get(in, "ClientToken")), "tok-1");
    assert_null(json_object_get(in, "ClusterIdentifier"));
    json_decref(in);
    /* a reply without an Id is an error, not an empty id */
    fake_script(&e->f, 200, NULL, NULL, "{}");
    assert_int_equal(rd_rsd_execute(&e->c, &t, "select 1", NULL, id, &e->err), RD_E_REMOTE);
    assert_non_null(strstr(e->err.message, "no statement Id"));
}

static void test_describe(void **state)
{
    fake_env *e = *state;
    fake_script(&e->f, 200, NULL, NULL,
                "{\"Id\":\"s\",\"Status\":\"FINISHED\",\"HasResultSet\":true,\"ResultRows\":42,\"Duration\":1500}");
    rd_rsd_description d = { 0 };
    assert_int_equal(rd_rsd_describe(&e->c, "s", &d, &e->err), RD_OK);
    assert_string_equal(e->f.target[0], "RedshiftData.DescribeStatement");
    assert_string_equal(d.status, "FINISHED");
    assert_int_equal(d.has_result_set, 1);
    assert_int_equal(d.result_rows, 42);
    assert_null(d.error);
    rd_rsd_description_free(&d);
    fake_script(&e->f, 200, NULL, NULL, "{\"Id\":\"s\"}");
    assert_int_equal(rd_rsd_describe(&e->c, "s", &d, &e->err), RD_E_REMOTE);
    assert_non_null(strstr(e->err.message, "no Status"));
}

static void test_wait_finished_and_failed(void **state)
{
    fake_env *e = *state;
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"SUBMITTED\"}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"STARTED\"}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"FINISHED\",\"ResultRows\":3}");
    rd_rsd_wait_options o = { .first_poll_ms = 1, .max_poll_ms = 2 };
    rd_rsd_cancel_outcome oc = RD_RSD_CANCELLED;
    o.outcome = &oc;
    rd_rsd_description d = { 0 };
    assert_int_equal(rd_rsd_wait(&e->c, "s", &o, &d, &e->err), RD_OK);
    assert_int_equal(e->f.calls, 3);
    assert_int_equal(d.result_rows, 3);
    assert_int_equal(oc, RD_RSD_NOT_CANCELLED);
    rd_rsd_description_free(&d);

    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"FAILED\",\"Error\":\"relation \\\"nope\\\" does not exist\"}");
    assert_int_equal(rd_rsd_wait(&e->c, "s", &o, &d, &e->err), RD_E_REMOTE);
    assert_string_equal(e->err.message, "Redshift: relation \"nope\" does not exist");
    assert_int_equal(e->f.calls, 4); /* a failed statement is not cancelled */
    assert_int_equal(oc, RD_RSD_NOT_CANCELLED);
    rd_rsd_description_free(&d);
}

static volatile sig_atomic_t g_cancel;

static void raise_cancel(void *ctx, const char *status, long elapsed_ms)
{
    (void)ctx;
    (void)elapsed_ms;
    if (strcmp(status, "STARTED") == 0)
        g_cancel = 1;
}

static void test_wait_cancel_flag_sends_cancel_statement(void **state)
{
    fake_env *e = *state;
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"STARTED\"}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":true}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"ABORTED\"}");
    g_cancel = 0;
    rd_rsd_cancel_outcome oc = RD_RSD_NOT_CANCELLED;
    rd_rsd_wait_options o = { .first_poll_ms = 1000, .cancel = &g_cancel, .tick = raise_cancel, .outcome = &oc };
    rd_rsd_description d = { 0 };
    assert_int_equal(rd_rsd_wait(&e->c, "stmt-9", &o, &d, &e->err), RD_E_CANCELLED);
    assert_int_equal(e->f.calls, 3);
    assert_string_equal(e->f.target[0], "RedshiftData.DescribeStatement");
    assert_string_equal(e->f.target[1], "RedshiftData.CancelStatement");
    json_t *in = sent_json(&e->f, 1);
    assert_string_equal(json_string_value(json_object_get(in, "Id")), "stmt-9");
    json_decref(in);
    assert_string_equal(e->f.target[2], "RedshiftData.DescribeStatement"); /* waits for the end */
    assert_int_equal(oc, RD_RSD_CANCELLED);
    assert_non_null(strstr(e->err.message, "interrupted while statement stmt-9 ran"));
    assert_non_null(strstr(e->err.message, "the statement was cancelled"));
    rd_rsd_description_free(&d);

    /* CancelStatement refused because the statement already ended */
    fake_script(&e->f, 400, NULL, NULL,
                "{\"__type\":\"ValidationException\",\"message\":\"Could not cancel a query that is already in "
                "FINISHED state.\"}");
    g_cancel = 1;
    assert_int_equal(rd_rsd_wait(&e->c, "stmt-9", &o, &d, &e->err), RD_E_CANCELLED);
    assert_int_equal(e->f.calls, 4);
    assert_string_equal(e->f.target[3], "RedshiftData.CancelStatement");
    assert_int_equal(oc, RD_RSD_CANCEL_ENDED);
    assert_non_null(strstr(e->err.message, "had already ended"));
    rd_rsd_description_free(&d);
}

/* rd_rsd_stop: a statement already ended (or unknown to the Data API) is left alone; one that runs is
 * cancelled and seen to end; a refused cancel says it may still run. */
static void test_stop(void **state)
{
    fake_env *e = *state;
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"FINISHED\"}");
    assert_int_equal(rd_rsd_stop(&e->c, "s1", &e->err), RD_RSD_STOP_ENDED);
    assert_int_equal(e->f.calls, 1);
    fake_script(&e->f, 400, NULL, NULL, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Query does not "
                                        "exist.\"}");
    assert_int_equal(rd_rsd_stop(&e->c, "s2", &e->err), RD_RSD_STOP_ENDED);
    assert_int_equal(e->f.calls, 2);
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"STARTED\"}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":true}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"ABORTED\"}");
    assert_int_equal(rd_rsd_stop(&e->c, "s3", &e->err), RD_RSD_STOP_CANCELLED);
    assert_int_equal(e->f.calls, 5);
    assert_string_equal(e->f.target[3], "RedshiftData.CancelStatement");
    assert_string_equal(e->f.target[4], "RedshiftData.DescribeStatement");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"PICKED\"}");
    fake_script(&e->f, 400, NULL, NULL, "{\"__type\":\"AccessDeniedException\",\"message\":\"not allowed\"}");
    assert_int_equal(rd_rsd_stop(&e->c, "s4", &e->err), RD_RSD_STOP_RUNNING);
    assert_int_equal(e->f.calls, 7);
    assert_non_null(strstr(e->err.message, "CancelStatement"));
}

typedef struct nap_log {
    int calls;
    long total_ms;
    int fail_at;   /* the call that fails (1-based); 0: none */
} nap_log;

static rd_status nap_hook(void *ctx, long ms, rd_error *err)
{
    nap_log *n = ctx;
    n->calls++;
    n->total_ms += ms;
    if (n->fail_at && n->calls == n->fail_at)
        return rd_error_set(err, RD_E_NETWORK, "downloading while the UNLOAD ran: part 3 failed");
    return RD_OK;
}

/* The nap hook spends the time between polls (no sleep of the wait's own: the hook returns at once here),
 * and its failure ends the wait: the statement is cancelled and the hook's error comes back. */
static void test_wait_nap_hook(void **state)
{
    fake_env *e = *state;
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"SUBMITTED\"}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"STARTED\"}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"FINISHED\",\"ResultRows\":3}");
    nap_log n = { 0 };
    rd_rsd_wait_options o = { .first_poll_ms = 5000, .max_poll_ms = 5000, .nap = nap_hook, .nap_ctx = &n };
    rd_rsd_description d = { 0 };
    assert_int_equal(rd_rsd_wait(&e->c, "s", &o, &d, &e->err), RD_OK);
    assert_int_equal(e->f.calls, 3);
    assert_int_equal(n.calls, 2);          /* between the three polls */
    assert_int_equal(n.total_ms, 10000);   /* the delays it was handed, not slept by the wait */
    rd_rsd_description_free(&d);

    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"STARTED\"}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":true}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Status\":\"ABORTED\"}");
    n = (nap_log){ .fail_at = 1 };
    rd_rsd_cancel_outcome oc = RD_RSD_NOT_CANCELLED;
    o.outcome = &oc;
    assert_int_equal(rd_rsd_wait(&e->c, "stmt-7", &o, &d, &e->err), RD_E_NETWORK);
    assert_int_equal(e->f.calls, 6);
    assert_string_equal(e->f.target[4], "RedshiftData.CancelStatement");
    assert_int_equal(oc, RD_RSD_CANCELLED);
    assert_non_null(strstr(e->err.message, "part 3 failed"));
    assert_non_null(strstr(e->err.message, "the statement was cancelled"));
    rd_rsd_description_free(&d);
}

static void test_get_result_paging(void **state)
{
    fake_env *e = *state;
    fake_script(&e->f, 200, NULL, NULL,
                "{\"Records\":[[{\"longValue\":1}],[{\"longValue\":2}]],\"TotalNumRows\":3,\"NextToken\":\"page-2\"}");
    fake_script(&e->f, 200, NULL, NULL, "{\"Records\":[[{\"longValue\":3}]],\"TotalNumRows\":3}");
    const char *token = NULL;
    json_t *pages[2] = { NULL, NULL };
    size_t rows = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rd_rsd_get_result(&e->c, "s", token, &pages[i], &e->err), RD_OK);
        rows += json_array_size(json_object_get(pages[i], "Records"));
        token = json_string_value(json_object_get(pages[i], "NextToken"));
    }
    assert_null(token);
    assert_int_equal(rows, 3);
    assert_string_equal(e->f.target[0], "RedshiftData.GetStatementResult");
    json_t *in0 = sent_json(&e->f, 0), *in1 = sent_json(&e->f, 1);
    assert_string_equal(json_string_value(json_object_get(in0, "Id")), "s");
    assert_null(json_object_get(in0, "NextToken"));
    assert_string_equal(json_string_value(json_object_get(in1, "NextToken")), "page-2");
    json_decref(in0);
    json_decref(in1);
    json_decref(pages[0]);
    json_decref(pages[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FAKE_TEST(test_execute),
        FAKE_TEST(test_describe),
        FAKE_TEST(test_wait_finished_and_failed),
        FAKE_TEST(test_wait_cancel_flag_sends_cancel_statement),
        FAKE_TEST(test_wait_nap_hook),
        FAKE_TEST(test_stop),
        FAKE_TEST(test_get_result_paging),
    };
    return cmocka_run_group_tests_name("services_redshift_data", tests, NULL, NULL);
}
