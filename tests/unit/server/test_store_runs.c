/* test_store_runs.c — the store's schema 3 on SQLite: runs (insert, update, get, list by order, since, limit
 * and source; the latest per source without the skipped; abandoned after a crash), their log lines (after_seq,
 * the cap), the schedules' last slots, snapshots (ids per project, the current one), the upgrade of a
 * schema-2 file with its data kept, names and values refused, the rows of a deleted project, retention,
 * and 8 + 8 threads (over two store handles, as two processes) appending log lines and inserting runs with
 * no seq or id lost or doubled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/utf8.h"
#include "server/store.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SHA2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define ODD_SOURCE "<b onclick=\"x\">Bestell übersicht & 'y'" /* a file name the project loader takes */

typedef struct fixture {
    char dir[256];
    char data[300];
    rd_store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (rd_test_mkdtemp(f->dir, sizeof f->dir, "rd-store-runs") != 0)
        return -1;
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    rd_error err;
    if (rd_store_open_sqlite(f->data, NULL, NULL, &f->st, &err) != RD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    if (rd_store_project_create(f->st, "tester", "web", &err) != RD_OK ||
        rd_store_project_create(f->st, "tester", "shop", &err) != RD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_store_close(f->st);
    rd_test_rm_tree(f->dir);
    free(f);
    return 0;
}

static void ok(rd_status s, const rd_error *err)
{
    if (s != RD_OK)
        fail_msg("%s: %s", rd_status_str(s), err->message);
}

static sqlite3 *raw_db_at(const char *data)
{
    char path[400];
    snprintf(path, sizeof path, "%s/store.db", data);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static sqlite3 *raw_db(const fixture *f)
{
    return raw_db_at(f->data);
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A run to insert; the strings are borrowed. */
static rd_store_run run_of(const char *project, const char *source, rd_run_state state, int64_t queued_at)
{
    rd_store_run r = { 0 };
    r.project = (char *)project;
    r.source = (char *)source;
    r.table_name = (char *)"main.t";
    r.version = 3;
    r.trigger = RD_TRIGGER_SCHEDULE;
    r.triggered_by = (char *)"scheduler";
    r.state = state;
    r.queued_at = queued_at;
    return r;
}

static int64_t insert(fixture *f, const char *project, const char *source, rd_run_state state, int64_t queued_at)
{
    rd_error err;
    rd_store_run r = run_of(project, source, state, queued_at);
    int64_t id = 0;
    ok(rd_store_run_insert(f->st, &r, &id, &err), &err);
    assert_true(id > 0);
    return id;
}

static int valid_utf8(const char *s)
{
    return rd_utf8_invalid_at(s, strlen(s)) == strlen(s);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ---- names and enums --------------------------------------------------------------------------------- */

static void test_names_and_enums(void **state)
{
    (void)state;
    const char *good[] = { "orders", ODD_SOURCE, "日本語のテーブル", "a b", "x.yaml", "-", "\xF0\x9F\xA6\x86" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(rd_store_source_name_valid(good[i]));
    const char *bad[] = { "", "a/b", "/", "a\nb", "tab\there", "del\x7f", "c1\xC2\x85", "\xFF", "\xC3",
                          "\xED\xA0\x80" /* a surrogate */, "\xC0\xAF" /* overlong '/' */ };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(rd_store_source_name_valid(bad[i]));
    assert_false(rd_store_source_name_valid(NULL));
    char name[RD_STORE_SOURCE_NAME_MAX + 2];
    memset(name, 'n', RD_STORE_SOURCE_NAME_MAX);
    name[RD_STORE_SOURCE_NAME_MAX] = '\0';
    assert_true(rd_store_source_name_valid(name));
    name[RD_STORE_SOURCE_NAME_MAX] = 'n';
    name[RD_STORE_SOURCE_NAME_MAX + 1] = '\0';
    assert_false(rd_store_source_name_valid(name));

    const char *states[] = { "queued", "running", "success", "failed", "skipped", "cancelled" };
    for (int i = 0; i < 6; i++) {
        assert_string_equal(rd_run_state_name((rd_run_state)i), states[i]);
        rd_run_state st = RD_RUN_FAILED;
        assert_int_equal(rd_run_state_parse(states[i], &st), 0);
        assert_int_equal(st, i);
    }
    rd_run_state st = RD_RUN_FAILED;
    assert_int_equal(rd_run_state_parse("done", &st), -1);
    assert_int_equal(st, RD_RUN_QUEUED);
    st = RD_RUN_FAILED;
    assert_int_equal(rd_run_state_parse(NULL, &st), -1);
    assert_int_equal(st, RD_RUN_QUEUED);
    assert_string_equal(rd_run_state_name((rd_run_state)42), "unknown");
    assert_string_equal(rd_run_trigger_name(RD_TRIGGER_SCHEDULE), "schedule");
    assert_string_equal(rd_run_trigger_name(RD_TRIGGER_MANUAL), "manual");
    assert_string_equal(rd_run_trigger_name(RD_TRIGGER_CATCHUP), "catch-up");
}

/* ---- runs -------------------------------------------------------------------------------------------- */

static void test_run_insert_update_get(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t before = wall_ms();
    rd_store_run r = run_of("web", ODD_SOURCE, RD_RUN_QUEUED, 0);
    r.trigger = RD_TRIGGER_MANUAL;
    r.triggered_by = (char *)"alice";
    r.table_name = (char *)"bestellungen";
    int64_t id = 0;
    ok(rd_store_run_insert(f->st, &r, &id, &err), &err);

    rd_store_run g = { 0 };
    ok(rd_store_run_get(f->st, id, &g, &err), &err);
    assert_int_equal(g.id, id);
    assert_string_equal(g.project, "web");
    assert_string_equal(g.source, ODD_SOURCE);
    assert_string_equal(g.table_name, "bestellungen");
    assert_int_equal(g.version, 3);
    assert_int_equal(g.trigger, RD_TRIGGER_MANUAL);
    assert_string_equal(g.triggered_by, "alice");
    assert_int_equal(g.state, RD_RUN_QUEUED);
    assert_int_equal(g.attempts, 0);
    assert_true(g.queued_at >= before && g.queued_at <= wall_ms()); /* 0 is taken as now */
    assert_int_equal(g.started_at, 0);
    assert_int_equal(g.finished_at, 0);
    assert_null(g.error);
    rd_store_run_clear(&g);

    /* running, then failed with figures and an error */
    r.id = id;
    r.state = RD_RUN_RUNNING;
    r.attempts = 1;
    r.started_at = 1700000000123;
    ok(rd_store_run_update(f->st, &r, &err), &err);
    ok(rd_store_run_get(f->st, id, &g, &err), &err);
    assert_int_equal(g.state, RD_RUN_RUNNING);
    assert_int_equal(g.started_at, 1700000000123);
    rd_store_run_clear(&g);

    r.state = RD_RUN_FAILED;
    r.attempts = 2;
    r.finished_at = 1700000009999;
    r.rows = UINT64_C(12345678901);
    r.bytes = UINT64_C(0xFFFFFFFFFFFFFFF0); /* above INT64_MAX: kept as its bits */
    r.files = 7;
    r.probe_s = 0.25;
    r.unload_s = 1.5;
    r.download_s = 2.75;
    r.commit_s = 0.125;
    r.cleanup_s = 0.0625;
    r.total_s = 4.6875;
    r.error = (char *)"unload failed:\n\tthe cluster said \"no\"";
    r.project = (char *)"shop"; /* not changed by an update */
    r.source = (char *)"other";
    ok(rd_store_run_update(f->st, &r, &err), &err);
    ok(rd_store_run_get(f->st, id, &g, &err), &err);
    assert_int_equal(g.state, RD_RUN_FAILED);
    assert_int_equal(g.attempts, 2);
    assert_int_equal(g.started_at, 1700000000123);
    assert_int_equal(g.finished_at, 1700000009999);
    assert_true(g.rows == UINT64_C(12345678901));
    assert_true(g.bytes == UINT64_C(0xFFFFFFFFFFFFFFF0));
    assert_true(g.files == 7);
    assert_true(g.probe_s == 0.25 && g.unload_s == 1.5 && g.download_s == 2.75 && g.commit_s == 0.125 &&
                g.cleanup_s == 0.0625 && g.total_s == 4.6875);
    assert_string_equal(g.error, "unload failed:\n\tthe cluster said \"no\"");
    assert_string_equal(g.project, "web");
    assert_string_equal(g.source, ODD_SOURCE);
    rd_store_run_clear(&g);

    /* an ended state without finished_at gets now; an update clears the error */
    r.state = RD_RUN_SUCCESS;
    r.finished_at = 0;
    r.error = NULL;
    before = wall_ms();
    ok(rd_store_run_update(f->st, &r, &err), &err);
    ok(rd_store_run_get(f->st, id, &g, &err), &err);
    assert_int_equal(g.state, RD_RUN_SUCCESS);
    assert_true(g.finished_at >= before && g.finished_at <= wall_ms());
    assert_null(g.error);
    rd_store_run_clear(&g);

    /* a skipped run is recorded ended */
    rd_store_run sk = run_of("web", "orders", RD_RUN_SKIPPED, 5000);
    int64_t sid = 0;
    ok(rd_store_run_insert(f->st, &sk, &sid, &err), &err);
    assert_true(sid > id);
    ok(rd_store_run_get(f->st, sid, &g, &err), &err);
    assert_int_equal(g.state, RD_RUN_SKIPPED);
    assert_int_equal(g.queued_at, 5000);
    assert_true(g.finished_at >= before);
    rd_store_run_clear(&g);

    /* what does not exist */
    rd_error_clear(&err);
    assert_int_equal(rd_store_run_get(f->st, sid + 100, &g, &err), RD_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "does not exist"));
    r.id = sid + 100;
    assert_int_equal(rd_store_run_update(f->st, &r, &err), RD_E_NOT_FOUND);
    rd_store_run nop = run_of("nope", "orders", RD_RUN_QUEUED, 0);
    int64_t untouched = -5;
    assert_int_equal(rd_store_run_insert(f->st, &nop, &untouched, &err), RD_E_NOT_FOUND);
    assert_int_equal(untouched, -5);
    rd_store_run_clear(NULL);
}

static void test_run_error_cleaned_and_cut(void **state)
{
    fixture *f = *state;
    rd_error err;
    /* 3000 two-byte characters (6000 bytes) with an invalid byte and a control character in front */
    size_t n = 6000;
    char *long_err = malloc(n + 8);
    assert_non_null(long_err);
    memcpy(long_err, "\xFF\x01x", 3);
    for (size_t i = 3; i + 1 < n; i += 2)
        memcpy(long_err + i, "\xC3\xA9", 2); /* é */
    long_err[n - 1] = '\0';
    rd_store_run r = run_of("web", "orders", RD_RUN_FAILED, 0);
    r.error = long_err;
    int64_t id = 0;
    ok(rd_store_run_insert(f->st, &r, &id, &err), &err);
    free(long_err);
    rd_store_run g = { 0 };
    ok(rd_store_run_get(f->st, id, &g, &err), &err);
    size_t len = strlen(g.error);
    assert_true(len <= RD_STORE_RUN_ERROR_MAX);
    assert_true(len > RD_STORE_RUN_ERROR_MAX - 8);
    assert_true(valid_utf8(g.error));
    assert_true(ends_with(g.error, "\xE2\x80\xA6"));
    assert_memory_equal(g.error, "\xEF\xBF\xBD x\xC3\xA9", 7); /* U+FFFD, a space, then the text */
    rd_store_run_clear(&g);

    /* abandon cuts its error the same way */
    char big[RD_STORE_RUN_ERROR_MAX * 2];
    memset(big, 'e', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    insert(f, "web", "queued-one", RD_RUN_QUEUED, 0);
    size_t count = 0;
    ok(rd_store_run_abandon(f->st, big, &count, &err), &err);
    assert_int_equal(count, 1);
    rd_store_run *runs = NULL;
    size_t nr = 0;
    ok(rd_store_run_list(f->st, "web", "queued-one", 0, 0, &runs, &nr, &err), &err);
    assert_int_equal(nr, 1);
    assert_int_equal(strlen(runs[0].error), RD_STORE_RUN_ERROR_MAX);
    assert_true(ends_with(runs[0].error, "e\xE2\x80\xA6"));
    rd_store_runs_free(runs, nr);
}

static void test_run_list(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t ids[6];
    ids[0] = insert(f, "web", "orders", RD_RUN_SUCCESS, 1000);
    ids[1] = insert(f, "web", ODD_SOURCE, RD_RUN_SUCCESS, 2000);
    ids[2] = insert(f, "shop", "orders", RD_RUN_SUCCESS, 2500);
    ids[3] = insert(f, "web", "orders", RD_RUN_FAILED, 3000);
    ids[4] = insert(f, "web", "orders", RD_RUN_SKIPPED, 4000);
    ids[5] = insert(f, "web", ODD_SOURCE, RD_RUN_QUEUED, 5000);

    rd_store_run *runs = NULL;
    size_t n = 0;
    ok(rd_store_run_list(f->st, "web", NULL, 0, 0, &runs, &n, &err), &err);
    assert_int_equal(n, 5);
    const int64_t web_newest_first[] = { ids[5], ids[4], ids[3], ids[1], ids[0] };
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(runs[i].id, web_newest_first[i]);
        assert_string_equal(runs[i].project, "web");
    }
    rd_store_runs_free(runs, n);

    ok(rd_store_run_list(f->st, "web", "orders", 0, 0, &runs, &n, &err), &err);
    assert_int_equal(n, 3);
    assert_int_equal(runs[0].id, ids[4]);
    assert_int_equal(runs[1].id, ids[3]);
    assert_int_equal(runs[2].id, ids[0]);
    rd_store_runs_free(runs, n);

    ok(rd_store_run_list(f->st, "web", NULL, 3000, 0, &runs, &n, &err), &err); /* since is inclusive */
    assert_int_equal(n, 3);
    assert_int_equal(runs[2].id, ids[3]);
    rd_store_runs_free(runs, n);

    ok(rd_store_run_list(f->st, "web", "orders", 3000, 0, &runs, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(runs[0].id, ids[4]);
    assert_int_equal(runs[1].id, ids[3]);
    rd_store_runs_free(runs, n);
    ok(rd_store_run_list(f->st, "web", "orders", 1, 1, &runs, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_int_equal(runs[0].id, ids[4]);
    rd_store_runs_free(runs, n);

    ok(rd_store_run_list(f->st, "web", NULL, 0, 2, &runs, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(runs[0].id, ids[5]);
    assert_int_equal(runs[1].id, ids[4]);
    rd_store_runs_free(runs, n);

    ok(rd_store_run_list(f->st, "shop", "orders", 0, 0, &runs, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_int_equal(runs[0].id, ids[2]);
    rd_store_runs_free(runs, n);

    ok(rd_store_run_list(f->st, "shop", "none-such", 0, 0, &runs, &n, &err), &err);
    assert_int_equal(n, 0);
    rd_store_runs_free(runs, n);

    assert_int_equal(rd_store_run_list(f->st, "nope", NULL, 0, 0, &runs, &n, &err), RD_E_NOT_FOUND);

    /* the limits: 0 gives 100, more than 1000 gives 1000 */
    sqlite3 *db = raw_db(f);
    raw_exec(db, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 1100)"
                 " INSERT INTO runs (project_id, source, table_name, version, \"trigger\", triggered_by, state,"
                 " queued_at) SELECT (SELECT id FROM projects WHERE name = 'shop'), 'bulk', 't', 1, 'schedule',"
                 " 'scheduler', 'success', 10000 + i FROM k");
    sqlite3_close(db);
    ok(rd_store_run_list(f->st, "shop", "bulk", 0, 0, &runs, &n, &err), &err);
    assert_int_equal(n, 100);
    assert_int_equal(runs[0].queued_at, 11100);
    rd_store_runs_free(runs, n);
    ok(rd_store_run_list(f->st, "shop", "bulk", 0, 5000, &runs, &n, &err), &err);
    assert_int_equal(n, 1000);
    assert_int_equal(runs[999].queued_at, 10101);
    rd_store_runs_free(runs, n);
}

static void test_run_latest_ignores_skipped(void **state)
{
    fixture *f = *state;
    rd_error err;
    insert(f, "web", "orders", RD_RUN_SUCCESS, 1);
    int64_t orders_failed = insert(f, "web", "orders", RD_RUN_FAILED, 2);
    insert(f, "web", "orders", RD_RUN_SKIPPED, 3);
    insert(f, "web", "only-skipped", RD_RUN_SKIPPED, 4);
    int64_t b_old = insert(f, "web", "b", RD_RUN_SUCCESS, 5);
    int64_t b_running = insert(f, "web", "b", RD_RUN_RUNNING, 6);
    int64_t odd = insert(f, "web", ODD_SOURCE, RD_RUN_CANCELLED, 7);
    insert(f, "shop", "orders", RD_RUN_SUCCESS, 8); /* another project's */
    (void)b_old;

    rd_store_run *runs = NULL;
    size_t n = 0;
    ok(rd_store_run_latest(f->st, "web", &runs, &n, &err), &err);
    assert_int_equal(n, 3);
    /* sorted by source, bytewise: "<b>..." < "b" < "orders" */
    assert_string_equal(runs[0].source, ODD_SOURCE);
    assert_int_equal(runs[0].id, odd);
    assert_string_equal(runs[1].source, "b");
    assert_int_equal(runs[1].id, b_running);
    assert_int_equal(runs[1].state, RD_RUN_RUNNING);
    assert_string_equal(runs[2].source, "orders");
    assert_int_equal(runs[2].id, orders_failed);
    assert_int_equal(runs[2].state, RD_RUN_FAILED);
    rd_store_runs_free(runs, n);

    ok(rd_store_run_latest(f->st, "shop", &runs, &n, &err), &err);
    assert_int_equal(n, 1);
    rd_store_runs_free(runs, n);

    rd_store_project_create(f->st, "tester", "empty", &err);
    ok(rd_store_run_latest(f->st, "empty", &runs, &n, &err), &err);
    assert_int_equal(n, 0);
    rd_store_runs_free(runs, n);
    assert_int_equal(rd_store_run_latest(f->st, "nope", &runs, &n, &err), RD_E_NOT_FOUND);
}

static void test_run_abandon(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t q = insert(f, "web", "a", RD_RUN_QUEUED, 1);
    int64_t r = insert(f, "shop", "b", RD_RUN_RUNNING, 2);
    int64_t done = insert(f, "web", "c", RD_RUN_SUCCESS, 3);
    int64_t failed = insert(f, "web", "d", RD_RUN_FAILED, 4);
    rd_store_run g = { 0 };
    ok(rd_store_run_get(f->st, done, &g, &err), &err);
    int64_t done_finished = g.finished_at;
    rd_store_run_clear(&g);

    int64_t before = wall_ms();
    size_t count = 0;
    ok(rd_store_run_abandon(f->st, "the server restarted during the run", &count, &err), &err);
    assert_int_equal(count, 2);
    const int64_t abandoned[] = { q, r };
    for (size_t i = 0; i < 2; i++) {
        ok(rd_store_run_get(f->st, abandoned[i], &g, &err), &err);
        assert_int_equal(g.state, RD_RUN_CANCELLED);
        assert_string_equal(g.error, "the server restarted during the run");
        assert_true(g.finished_at >= before && g.finished_at <= wall_ms());
        rd_store_run_clear(&g);
    }
    ok(rd_store_run_get(f->st, done, &g, &err), &err);
    assert_int_equal(g.state, RD_RUN_SUCCESS);
    assert_int_equal(g.finished_at, done_finished);
    assert_null(g.error);
    rd_store_run_clear(&g);
    ok(rd_store_run_get(f->st, failed, &g, &err), &err);
    assert_int_equal(g.state, RD_RUN_FAILED);
    rd_store_run_clear(&g);

    ok(rd_store_run_abandon(f->st, NULL, &count, &err), &err);
    assert_int_equal(count, 0);
    int64_t q2 = insert(f, "web", "a", RD_RUN_QUEUED, 9);
    ok(rd_store_run_abandon(f->st, NULL, NULL, &err), &err);
    ok(rd_store_run_get(f->st, q2, &g, &err), &err);
    assert_int_equal(g.state, RD_RUN_CANCELLED);
    assert_non_null(strstr(g.error, "stopped"));
    rd_store_run_clear(&g);
}

/* A run that ended at finished_at. */
static int64_t insert_ended(fixture *f, const char *project, const char *source, rd_run_state state,
                            int64_t finished_at)
{
    rd_error err;
    rd_store_run r = run_of(project, source, state, finished_at - 10);
    r.finished_at = finished_at;
    int64_t id = 0;
    ok(rd_store_run_insert(f->st, &r, &id, &err), &err);
    return id;
}

static void test_run_prune(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t a_old = insert_ended(f, "web", "a", RD_RUN_SUCCESS, 100);
    int64_t a_newest = insert_ended(f, "web", "a", RD_RUN_FAILED, 200);
    int64_t a_skipped = insert_ended(f, "web", "a", RD_RUN_SKIPPED, 300);
    int64_t b_only = insert_ended(f, "web", "b", RD_RUN_SUCCESS, 100);
    int64_t c_old = insert_ended(f, "shop", "c", RD_RUN_CANCELLED, 100);
    int64_t c_recent = insert_ended(f, "shop", "c", RD_RUN_SUCCESS, 5000);
    int64_t running = insert(f, "web", "a", RD_RUN_RUNNING, 50);
    int64_t queued = insert(f, "shop", "c", RD_RUN_QUEUED, 50);
    ok(rd_store_run_log_append(f->st, a_old, "gone with its run", &err), &err);
    ok(rd_store_run_log_append(f->st, a_newest, "kept", &err), &err);

    size_t count = 0;
    ok(rd_store_run_prune(f->st, 1000, &count, &err), &err);
    assert_int_equal(count, 3);
    const int64_t gone[] = { a_old, a_skipped, c_old };
    const int64_t kept[] = { a_newest, b_only, c_recent, running, queued };
    rd_store_run g = { 0 };
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(rd_store_run_get(f->st, gone[i], &g, &err), RD_E_NOT_FOUND);
    for (size_t i = 0; i < 5; i++) {
        ok(rd_store_run_get(f->st, kept[i], &g, &err), &err);
        rd_store_run_clear(&g);
    }
    sqlite3 *db = raw_db(f);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM run_logs"), 1);
    sqlite3_close(db);
    ok(rd_store_run_prune(f->st, 1000, &count, &err), &err);
    assert_int_equal(count, 0);

    /* more than one batch */
    for (int i = 0; i < 250; i++)
        insert_ended(f, "web", "bulk", RD_RUN_SKIPPED, 10 + i);
    ok(rd_store_run_prune(f->st, 1000, &count, &err), &err);
    assert_int_equal(count, 250);
    ok(rd_store_run_prune(f->st, 1000, NULL, &err), &err);
}

/* ---- log lines --------------------------------------------------------------------------------------- */

static void test_log_append_list(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t id = insert(f, "web", "orders", RD_RUN_RUNNING, 1);
    int64_t other = insert(f, "web", "orders", RD_RUN_RUNNING, 2);
    int64_t before = wall_ms();
    char line[32];
    for (int i = 1; i <= 5; i++) {
        snprintf(line, sizeof line, "line %d", i);
        ok(rd_store_run_log_append(f->st, id, line, &err), &err);
    }
    ok(rd_store_run_log_append(f->st, other, "the other run's", &err), &err);

    rd_store_log_line *l = NULL;
    size_t n = 0;
    ok(rd_store_run_log_list(f->st, id, 0, 0, &l, &n, &err), &err);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        snprintf(line, sizeof line, "line %zu", i + 1);
        assert_int_equal(l[i].seq, (int64_t)i + 1);
        assert_string_equal(l[i].line, line);
        assert_true(l[i].at_ms >= before && l[i].at_ms <= wall_ms());
    }
    rd_store_log_lines_free(l, n);

    ok(rd_store_run_log_list(f->st, id, 3, 0, &l, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(l[0].seq, 4);
    assert_string_equal(l[1].line, "line 5");
    rd_store_log_lines_free(l, n);
    ok(rd_store_run_log_list(f->st, id, 1, 2, &l, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(l[0].seq, 2);
    assert_int_equal(l[1].seq, 3);
    rd_store_log_lines_free(l, n);
    ok(rd_store_run_log_list(f->st, id, 5, 0, &l, &n, &err), &err);
    assert_int_equal(n, 0);
    rd_store_log_lines_free(l, n);
    ok(rd_store_run_log_list(f->st, other, 0, 0, &l, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_int_equal(l[0].seq, 1);
    rd_store_log_lines_free(l, n);

    /* one line stays one line, valid UTF-8 and cut */
    ok(rd_store_run_log_append(f->st, other, "two\nlines\r\tand \xFE", &err), &err);
    char big[RD_STORE_LOG_LINE_MAX + 100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ok(rd_store_run_log_append(f->st, other, big, &err), &err);
    ok(rd_store_run_log_list(f->st, other, 1, 0, &l, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].line, "two lines \tand \xEF\xBF\xBD");
    assert_int_equal(strlen(l[1].line), RD_STORE_LOG_LINE_MAX);
    assert_true(ends_with(l[1].line, "x\xE2\x80\xA6"));
    rd_store_log_lines_free(l, n);

    /* no such run */
    rd_error_clear(&err);
    assert_int_equal(rd_store_run_log_append(f->st, other + 50, "x", &err), RD_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "does not exist"));
    assert_int_equal(rd_store_run_log_list(f->st, other + 50, 0, 0, &l, &n, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_run_log_append(f->st, id, NULL, &err), RD_E_USAGE);
    assert_int_equal(rd_store_run_log_append(f->st, 0, "x", &err), RD_E_USAGE);
}

/* Random bytes in, always valid UTF-8 of one line within the bound out (what the page and the API print). */
static void test_log_lines_always_clean(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t id = insert(f, "web", "orders", RD_RUN_RUNNING, 1);
    uint32_t x = 12345;
    const char *pieces[] = { "\xC3\xA9", "\xE2\x80\xA6", "\xF0\x9F\xA6\x86", "\xC3", "\xE2\x80", "\xFF", "\n", "\t", "a" };
    char buf[5000];
    for (int k = 0; k < 120; k++) {
        x = x * 1103515245u + 12345u;
        size_t target = 1 + (x >> 8) % (k % 3 ? 300 : sizeof buf - 8), len = 0;
        while (len < target) {
            x = x * 1103515245u + 12345u;
            const char *piece = pieces[(x >> 16) % (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(piece);
            if (len + pl >= sizeof buf)
                break;
            memcpy(buf + len, piece, pl);
            len += pl;
        }
        buf[len] = '\0';
        ok(rd_store_run_log_append(f->st, id, buf, &err), &err);
    }
    rd_store_log_line *l = NULL;
    size_t n = 0;
    ok(rd_store_run_log_list(f->st, id, 0, 0, &l, &n, &err), &err);
    assert_int_equal(n, 120);
    size_t cut = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(l[i].line);
        cut += len > RD_STORE_LOG_LINE_MAX - 8 && ends_with(l[i].line, "\xE2\x80\xA6");
        assert_true(len > 0 && len <= RD_STORE_LOG_LINE_MAX);
        assert_true(valid_utf8(l[i].line));
        for (size_t j = 0; j < len; j++)
            assert_true((unsigned char)l[i].line[j] >= 0x20 || l[i].line[j] == '\t');
    }
    assert_true(cut >= 10); /* the long ones were cut at a character boundary */
    rd_store_log_lines_free(l, n);
}

static void test_log_cap(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t id = insert(f, "web", "orders", RD_RUN_RUNNING, 1);
    char sql[512];
    /* RD_STORE_RUN_LOG_LINES_MAX - 1 lines at once, then the store's appends */
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %d)"
             " INSERT INTO run_logs (run_id, seq, at_ms, line) SELECT %lld, i, 1, 'bulk ' || i FROM k",
             RD_STORE_RUN_LOG_LINES_MAX - 1, (long long)id);
    sqlite3 *db = raw_db(f);
    raw_exec(db, sql);
    sqlite3_close(db);

    ok(rd_store_run_log_append(f->st, id, "the last kept", &err), &err);
    ok(rd_store_run_log_append(f->st, id, "one too many", &err), &err);
    ok(rd_store_run_log_append(f->st, id, "and another", &err), &err);
    ok(rd_store_run_log_append(f->st, id, "and more", &err), &err);

    rd_store_log_line *l = NULL;
    size_t n = 0;
    ok(rd_store_run_log_list(f->st, id, RD_STORE_RUN_LOG_LINES_MAX - 2, 0, &l, &n, &err), &err);
    assert_int_equal(n, 3);
    assert_int_equal(l[0].seq, RD_STORE_RUN_LOG_LINES_MAX - 1);
    assert_int_equal(l[1].seq, RD_STORE_RUN_LOG_LINES_MAX);
    assert_string_equal(l[1].line, "the last kept");
    assert_int_equal(l[2].seq, RD_STORE_RUN_LOG_LINES_MAX + 1);
    assert_string_equal(l[2].line, RD_STORE_LOG_TRUNCATED);
    rd_store_log_lines_free(l, n);

    /* a list's limit: 0 gives 1000, more than the cap gives the cap */
    ok(rd_store_run_log_list(f->st, id, 0, 0, &l, &n, &err), &err);
    assert_int_equal(n, 1000);
    assert_int_equal(l[999].seq, 1000);
    rd_store_log_lines_free(l, n);
    ok(rd_store_run_log_list(f->st, id, 0, 50000, &l, &n, &err), &err);
    assert_int_equal(n, RD_STORE_RUN_LOG_LINES_MAX);
    rd_store_log_lines_free(l, n);

    /* another run is not capped */
    int64_t other = insert(f, "web", "orders", RD_RUN_RUNNING, 2);
    ok(rd_store_run_log_append(f->st, other, "fresh", &err), &err);
    ok(rd_store_run_log_list(f->st, other, 0, 0, &l, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_string_equal(l[0].line, "fresh");
    rd_store_log_lines_free(l, n);
}

/* ---- schedule state ---------------------------------------------------------------------------------- */

static void test_schedule_state(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t v = -1;
    rd_error_clear(&err);
    assert_int_equal(rd_store_schedule_get(f->st, "web", "orders", &v, &err), RD_E_NOT_FOUND);
    assert_int_equal(v, -1);
    assert_non_null(strstr(err.message, "orders"));

    ok(rd_store_schedule_set(f->st, "web", "orders", 1700000000000, &err), &err);
    ok(rd_store_schedule_get(f->st, "web", "orders", &v, &err), &err);
    assert_int_equal(v, 1700000000000);
    ok(rd_store_schedule_set(f->st, "web", "orders", 1700000060000, &err), &err);
    ok(rd_store_schedule_get(f->st, "web", "orders", &v, &err), &err);
    assert_int_equal(v, 1700000060000);

    /* per source and per project */
    ok(rd_store_schedule_set(f->st, "web", ODD_SOURCE, 5, &err), &err);
    ok(rd_store_schedule_get(f->st, "web", ODD_SOURCE, &v, &err), &err);
    assert_int_equal(v, 5);
    ok(rd_store_schedule_get(f->st, "web", "orders", &v, &err), &err);
    assert_int_equal(v, 1700000060000);
    assert_int_equal(rd_store_schedule_get(f->st, "shop", "orders", &v, &err), RD_E_NOT_FOUND);
    ok(rd_store_schedule_set(f->st, "shop", "orders", 9, &err), &err);
    ok(rd_store_schedule_get(f->st, "shop", "orders", &v, &err), &err);
    assert_int_equal(v, 9);
    ok(rd_store_schedule_get(f->st, "web", "orders", &v, &err), &err);
    assert_int_equal(v, 1700000060000);

    assert_int_equal(rd_store_schedule_set(f->st, "nope", "orders", 1, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_schedule_get(f->st, "nope", "orders", &v, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_schedule_set(f->st, "web", "a/b", 1, &err), RD_E_USAGE);
    assert_int_equal(rd_store_schedule_get(f->st, "web", "", &v, &err), RD_E_USAGE);
}

/* ---- snapshots --------------------------------------------------------------------------------------- */

static rd_store_snapshot snapshot_of(const char *project, const char *path, const char *sha, int64_t run_id,
                                     const char *tables)
{
    rd_store_snapshot s = { 0 };
    s.project = (char *)project;
    s.path = (char *)path;
    s.sha256 = (char *)sha;
    s.size = 4096;
    s.run_id = run_id;
    s.tables_json = (char *)tables;
    return s;
}

static void test_snapshots(void **state)
{
    fixture *f = *state;
    rd_error err;
    rd_store_snapshot cur = { 0 };
    rd_error_clear(&err);
    assert_int_equal(rd_store_snapshot_current(f->st, "web", &cur, &err), RD_E_NOT_FOUND);
    assert_null(cur.path);
    assert_non_null(strstr(err.message, "web"));
    int64_t run = insert(f, "web", "orders", RD_RUN_SUCCESS, 1);

    int64_t before = wall_ms();
    rd_store_snapshot s = snapshot_of("web", "/data/projects/web/snapshots/1.duckdb", SHA, run,
                                      "[{\"name\":\"orders\",\"rows\":123}]");
    s.id = 77; /* ignored */
    int64_t id = 0;
    ok(rd_store_snapshot_publish(f->st, &s, &id, &err), &err);
    assert_int_equal(id, 1);
    ok(rd_store_snapshot_current(f->st, "web", &cur, &err), &err);
    assert_int_equal(cur.id, 1);
    assert_string_equal(cur.project, "web");
    assert_string_equal(cur.path, "/data/projects/web/snapshots/1.duckdb");
    assert_string_equal(cur.sha256, SHA);
    assert_true(cur.size == 4096);
    assert_int_equal(cur.run_id, run);
    assert_true(cur.created_at_ms >= before && cur.created_at_ms <= wall_ms());
    assert_string_equal(cur.tables_json, "[{\"name\":\"orders\",\"rows\":123}]");
    rd_store_snapshot_clear(&cur);
    assert_null(cur.path);

    s = snapshot_of("web", "/data/projects/web/snapshots/2.duckdb", SHA2, run, "[]");
    s.created_at_ms = 42;
    s.size = UINT64_C(5000000000);
    ok(rd_store_snapshot_publish(f->st, &s, &id, &err), &err);
    assert_int_equal(id, 2);
    ok(rd_store_snapshot_current(f->st, "web", &cur, &err), &err);
    assert_int_equal(cur.id, 2);
    assert_string_equal(cur.sha256, SHA2);
    assert_int_equal(cur.created_at_ms, 42);
    assert_true(cur.size == UINT64_C(5000000000));
    assert_string_equal(cur.tables_json, "[]");
    rd_store_snapshot_clear(&cur);

    /* ids are per project */
    assert_int_equal(rd_store_snapshot_current(f->st, "shop", &cur, &err), RD_E_NOT_FOUND);
    s = snapshot_of("shop", "/data/projects/shop/snapshots/1.duckdb", SHA, 0, "[]");
    ok(rd_store_snapshot_publish(f->st, &s, NULL, &err), &err);
    ok(rd_store_snapshot_current(f->st, "shop", &cur, &err), &err);
    assert_int_equal(cur.id, 1);
    rd_store_snapshot_clear(&cur);
    s = snapshot_of("web", "/data/projects/web/snapshots/3.duckdb", SHA, run, "[]");
    ok(rd_store_snapshot_publish(f->st, &s, &id, &err), &err);
    assert_int_equal(id, 3);

    rd_store_snapshot *list = NULL;
    size_t n = 0;
    ok(rd_store_snapshot_list(f->st, "web", 0, &list, &n, &err), &err);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].id, 3);
    assert_int_equal(list[1].id, 2);
    assert_int_equal(list[2].id, 1);
    rd_store_snapshots_free(list, n);
    ok(rd_store_snapshot_list(f->st, "web", 1, &list, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, 3);
    rd_store_snapshots_free(list, n);

    /* an older one may go, the current one stays */
    rd_error_clear(&err);
    assert_int_equal(rd_store_snapshot_delete(f->st, "web", 3, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "current"));
    ok(rd_store_snapshot_delete(f->st, "web", 1, &err), &err);
    assert_int_equal(rd_store_snapshot_delete(f->st, "web", 1, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_snapshot_delete(f->st, "nope", 1, &err), RD_E_NOT_FOUND);
    ok(rd_store_snapshot_list(f->st, "web", 0, &list, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(list[1].id, 2);
    rd_store_snapshots_free(list, n);

    /* refused: nothing recorded */
    const char *bad_tables[] = { "{}", "not json", "[1,", "\"[]\"", NULL };
    for (size_t i = 0; i < sizeof bad_tables / sizeof bad_tables[0]; i++) {
        s = snapshot_of("web", "/x/4.duckdb", SHA, run, bad_tables[i]);
        assert_int_equal(rd_store_snapshot_publish(f->st, &s, &id, &err), RD_E_USAGE);
    }
    s = snapshot_of("web", "", SHA, run, "[]");
    assert_int_equal(rd_store_snapshot_publish(f->st, &s, &id, &err), RD_E_USAGE);
    s = snapshot_of("web", "/x/4\n.duckdb", SHA, run, "[]");
    assert_int_equal(rd_store_snapshot_publish(f->st, &s, &id, &err), RD_E_USAGE);
    s = snapshot_of("web", NULL, SHA, run, "[]");
    assert_int_equal(rd_store_snapshot_publish(f->st, &s, &id, &err), RD_E_USAGE);
    s = snapshot_of("web", "/x/4.duckdb", "ABC", run, "[]");
    assert_int_equal(rd_store_snapshot_publish(f->st, &s, &id, &err), RD_E_USAGE);
    s = snapshot_of("web", "/x/4.duckdb", SHA, -1, "[]");
    assert_int_equal(rd_store_snapshot_publish(f->st, &s, &id, &err), RD_E_USAGE);
    s = snapshot_of("nope", "/x/4.duckdb", SHA, run, "[]");
    assert_int_equal(rd_store_snapshot_publish(f->st, &s, &id, &err), RD_E_NOT_FOUND);
    s = snapshot_of("../web", "/x/4.duckdb", SHA, run, "[]");
    assert_int_equal(rd_store_snapshot_publish(f->st, &s, &id, &err), RD_E_USAGE);
    ok(rd_store_snapshot_current(f->st, "web", &cur, &err), &err);
    assert_int_equal(cur.id, 3);
    rd_store_snapshot_clear(&cur);
}

/* ---- upgrade, refusals, deletion --------------------------------------------------------------------- */

/* The schema of migrations 1 and 2 as the servers before schema 3 made it (a copy: the store's own may not
 * change). */
static const char *const SCHEMA_2 =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER);"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE UNIQUE INDEX tokens_live_name ON tokens(user_id, name) WHERE revoked_at IS NULL;"
    "CREATE TABLE projects ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  next_version INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE memberships ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),"
    "  prod_access INTEGER NOT NULL DEFAULT 0 CHECK (prod_access IN (0, 1)),"
    "  PRIMARY KEY (user_id, project_id));"
    "CREATE INDEX memberships_project ON memberships(project_id);"
    "CREATE TABLE deployments ("
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),"
    "  archive_path TEXT NOT NULL,"
    "  archive_sha256 TEXT NOT NULL,"
    "  PRIMARY KEY (project_id, version));"
    "CREATE UNIQUE INDEX deployments_one_active ON deployments(project_id) WHERE active = 1;"
    "CREATE TABLE variables ("
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  environment TEXT NOT NULL CHECK (environment IN ('dev', 'prod', 'shared')),"
    "  name TEXT NOT NULL,"
    "  key_id INTEGER NOT NULL,"
    "  blob BLOB NOT NULL,"
    "  updated_by TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (project_id, environment, name));"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  project TEXT,"
    "  detail_json TEXT NOT NULL);"
    "CREATE INDEX audit_project ON audit(project, id);"
    "ALTER TABLE deployments ADD COLUMN environment TEXT CHECK (environment IN ('dev', 'prod'));";

static void test_schema_2_upgraded_data_kept(void **state)
{
    fixture *f = *state;
    char data[400], path[500];
    snprintf(data, sizeof data, "%s/old", f->dir);
    assert_int_equal(mkdir(data, 0700), 0);
    snprintf(path, sizeof path, "%s/store.db", data);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
    assert_int_equal(chmod(path, 0600), 0);
    raw_exec(db, "PRAGMA journal_mode = WAL");
    raw_exec(db, SCHEMA_2);
    raw_exec(db, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);"
                 "INSERT INTO schema_version VALUES (1, 1), (2, 2);"
                 "INSERT INTO users (name, admin, created_at) VALUES ('admin', 1, 10);"
                 "INSERT INTO projects (name, created_at, next_version) VALUES ('web', 11, 2);"
                 "INSERT INTO deployments VALUES (1, 1, 'admin', 12, 1, 'projects/web/v1', '" SHA "', 'prod');"
                 "INSERT INTO audit (at, actor, action, project, detail_json)"
                 " VALUES (12, 'admin', 'deploy', 'web', '{}');");
    sqlite3_close(db);

    rd_store *st = NULL;
    rd_error err;
    ok(rd_store_open_sqlite(data, NULL, NULL, &st, &err), &err);
    rd_store_user u = { 0 };
    ok(rd_store_user_get(st, "admin", &u, &err), &err);
    assert_true(u.admin);
    assert_int_equal(u.created_at, 10);
    rd_store_user_clear(&u);
    rd_store_deployment d = { 0 };
    ok(rd_store_deploy_active(st, "web", &d, &err), &err);
    assert_int_equal(d.version, 1);
    assert_int_equal(d.environment, RD_ENV_PROD);
    assert_string_equal(d.archive_path, "projects/web/v1");
    rd_store_deployment_clear(&d);
    rd_store_audit_entry *log = NULL;
    size_t n = 0;
    ok(rd_store_audit_list(st, "web", 0, &log, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_string_equal(log[0].action, "deploy");
    rd_store_audit_free(log, n);

    /* the new tables are there and work */
    rd_store_run r = run_of("web", "orders", RD_RUN_QUEUED, 0);
    int64_t id = 0;
    ok(rd_store_run_insert(st, &r, &id, &err), &err);
    ok(rd_store_run_log_append(st, id, "queued", &err), &err);
    ok(rd_store_schedule_set(st, "web", "orders", 60000, &err), &err);
    rd_store_snapshot s = snapshot_of("web", "/d/1.duckdb", SHA, id, "[]");
    ok(rd_store_snapshot_publish(st, &s, NULL, &err), &err);
    rd_store_close(st);

    db = raw_db_at(data);
    assert_int_equal(raw_int(db, "SELECT max(version) FROM schema_version"), 3);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM schema_version"), 3);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('runs',"
                                 " 'run_logs', 'schedule_state', 'snapshots')"),
                     4);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN"
                                 " ('runs_source', 'runs_queued')"),
                     2);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM run_logs"), 1);
    sqlite3_close(db);

    /* reopened at schema 3: nothing applied again, the rows stay; still private */
    ok(rd_store_open_sqlite(data, NULL, NULL, &st, &err), &err);
    rd_store_run g = { 0 };
    ok(rd_store_run_get(st, id, &g, &err), &err);
    assert_string_equal(g.source, "orders");
    rd_store_run_clear(&g);
    rd_store_close(st);
    db = raw_db_at(data);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM schema_version"), 3);
    sqlite3_close(db);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_invalid_refused(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t id = 0;
    rd_store_run r;
    const char *bad_projects[] = { "../web", "", "web/x", "we b", NULL };
    for (size_t i = 0; i < sizeof bad_projects / sizeof bad_projects[0]; i++) {
        r = run_of(bad_projects[i], "orders", RD_RUN_QUEUED, 0);
        assert_int_equal(rd_store_run_insert(f->st, &r, &id, &err), RD_E_USAGE);
    }
    const char *bad_sources[] = { "", "a/b", "x\ny", "\xFF", NULL };
    for (size_t i = 0; i < sizeof bad_sources / sizeof bad_sources[0]; i++) {
        r = run_of("web", bad_sources[i], RD_RUN_QUEUED, 0);
        assert_int_equal(rd_store_run_insert(f->st, &r, &id, &err), RD_E_USAGE);
    }
    r = run_of("web", "orders", RD_RUN_QUEUED, 0);
    r.table_name = (char *)"";
    assert_int_equal(rd_store_run_insert(f->st, &r, &id, &err), RD_E_USAGE);
    r.table_name = NULL;
    assert_int_equal(rd_store_run_insert(f->st, &r, &id, &err), RD_E_USAGE);
    r = run_of("web", "orders", RD_RUN_QUEUED, 0);
    r.triggered_by = (char *)"";
    assert_int_equal(rd_store_run_insert(f->st, &r, &id, &err), RD_E_USAGE);
    r = run_of("web", "orders", (rd_run_state)99, 0);
    assert_int_equal(rd_store_run_insert(f->st, &r, &id, &err), RD_E_USAGE);
    r = run_of("web", "orders", RD_RUN_QUEUED, 0);
    r.trigger = (rd_run_trigger)7;
    assert_int_equal(rd_store_run_insert(f->st, &r, &id, &err), RD_E_USAGE);
    r = run_of("web", "orders", RD_RUN_QUEUED, 0);
    r.attempts = -1;
    assert_int_equal(rd_store_run_insert(f->st, &r, &id, &err), RD_E_USAGE);
    assert_int_equal(rd_store_run_insert(f->st, NULL, &id, &err), RD_E_USAGE);

    /* the message does not repeat the refused name */
    r = run_of("web", "<script>/x", RD_RUN_QUEUED, 0);
    rd_error_clear(&err);
    assert_int_equal(rd_store_run_insert(f->st, &r, &id, &err), RD_E_USAGE);
    assert_null(strstr(err.message, "<script>"));
    assert_non_null(strstr(err.message, "source name"));

    int64_t good = insert(f, "web", "orders", RD_RUN_QUEUED, 0);
    r = run_of("web", "orders", (rd_run_state)-1, 0);
    r.id = good;
    assert_int_equal(rd_store_run_update(f->st, &r, &err), RD_E_USAGE);
    r.state = RD_RUN_RUNNING;
    r.id = 0;
    assert_int_equal(rd_store_run_update(f->st, &r, &err), RD_E_USAGE);
    assert_int_equal(rd_store_run_update(f->st, NULL, &err), RD_E_USAGE);
    rd_store_run g = { 0 };
    assert_int_equal(rd_store_run_get(f->st, -3, &g, &err), RD_E_USAGE);

    rd_store_run *runs = NULL;
    size_t n = 0;
    assert_int_equal(rd_store_run_list(f->st, "../web", NULL, 0, 0, &runs, &n, &err), RD_E_USAGE);
    assert_int_equal(rd_store_run_list(f->st, NULL, NULL, 0, 0, &runs, &n, &err), RD_E_USAGE);
    assert_int_equal(rd_store_run_list(f->st, "web", "a/b", 0, 0, &runs, &n, &err), RD_E_USAGE);
    assert_int_equal(rd_store_run_latest(f->st, "", &runs, &n, &err), RD_E_USAGE);
    int64_t v = 0;
    assert_int_equal(rd_store_schedule_set(f->st, "we/b", "orders", 1, &err), RD_E_USAGE);
    assert_int_equal(rd_store_schedule_get(f->st, "web", NULL, &v, &err), RD_E_USAGE);
    rd_store_snapshot cur = { 0 };
    assert_int_equal(rd_store_snapshot_current(f->st, NULL, &cur, &err), RD_E_USAGE);

    /* only the one good run was written; still queued */
    sqlite3 *db = raw_db(f);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs WHERE state = 'queued'"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM schedule_state"), 0);
    sqlite3_close(db);
}

/* The store has no call that removes a project; the schema removes its rows with it (foreign keys). */
static void test_project_deleted_rows_go(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t web_run = insert(f, "web", "orders", RD_RUN_SUCCESS, 1);
    int64_t shop_run = insert(f, "shop", "orders", RD_RUN_SUCCESS, 2);
    ok(rd_store_run_log_append(f->st, web_run, "web's", &err), &err);
    ok(rd_store_run_log_append(f->st, shop_run, "shop's", &err), &err);
    ok(rd_store_schedule_set(f->st, "web", "orders", 1, &err), &err);
    ok(rd_store_schedule_set(f->st, "shop", "orders", 1, &err), &err);
    rd_store_snapshot s = snapshot_of("web", "/d/1.duckdb", SHA, web_run, "[]");
    ok(rd_store_snapshot_publish(f->st, &s, NULL, &err), &err);
    s.project = (char *)"shop";
    ok(rd_store_snapshot_publish(f->st, &s, NULL, &err), &err);

    sqlite3 *db = raw_db(f);
    raw_exec(db, "PRAGMA foreign_keys = ON; DELETE FROM projects WHERE name = 'web'");
    assert_int_equal(raw_int(db, "SELECT count(*) FROM runs"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM run_logs"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM schedule_state"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM snapshots"), 1);
    sqlite3_close(db);

    rd_store_run g = { 0 };
    assert_int_equal(rd_store_run_get(f->st, web_run, &g, &err), RD_E_NOT_FOUND);
    ok(rd_store_run_get(f->st, shop_run, &g, &err), &err);
    rd_store_run_clear(&g);
    /* a run id is not reused after the newest runs went */
    ok(rd_store_project_create(f->st, "tester", "web", &err), &err);
    int64_t next = insert(f, "web", "orders", RD_RUN_QUEUED, 3);
    assert_true(next > shop_run && next > web_run);
    rd_store_snapshot cur = { 0 };
    assert_int_equal(rd_store_snapshot_current(f->st, "web", &cur, &err), RD_E_NOT_FOUND);
}

/* ---- concurrency ------------------------------------------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 25

typedef struct worker {
    rd_store *st;
    int64_t run_id; /* appenders: the run; inserters: 0 */
    int index;
    int64_t ids[PER_THREAD];
    rd_status status;
    char message[sizeof(((rd_error *)0)->message)];
} worker;

static void *append_lines(void *p)
{
    worker *w = p;
    rd_error err;
    for (int i = 0; i < PER_THREAD && w->status == RD_OK; i++) {
        char line[64];
        snprintf(line, sizeof line, "t%d-%d", w->index, i);
        w->status = rd_store_run_log_append(w->st, w->run_id, line, &err);
    }
    if (w->status != RD_OK)
        snprintf(w->message, sizeof w->message, "%s", err.message);
    return NULL;
}

static void *insert_runs(void *p)
{
    worker *w = p;
    rd_error err;
    char source[32];
    snprintf(source, sizeof source, "s%d", w->index);
    for (int i = 0; i < PER_THREAD && w->status == RD_OK; i++) {
        rd_store_run r = run_of(w->index % 2 ? "web" : "shop", source, RD_RUN_QUEUED, 0);
        w->status = rd_store_run_insert(w->st, &r, &w->ids[i], &err);
    }
    if (w->status != RD_OK)
        snprintf(w->message, sizeof w->message, "%s", err.message);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_concurrent_appends_and_inserts(void **state)
{
    fixture *f = *state;
    rd_error err;
    int64_t run = insert(f, "web", "busy", RD_RUN_RUNNING, 1);
    /* a second store on the same file stands for another process: its writers do not share our lock */
    rd_store *other = NULL;
    ok(rd_store_open_sqlite(f->data, NULL, NULL, &other, &err), &err);
    worker *w = calloc(2 * THREADS, sizeof *w);
    assert_non_null(w);
    pthread_t th[2 * THREADS];
    for (int i = 0; i < 2 * THREADS; i++) {
        w[i].st = i % 2 ? other : f->st;
        w[i].index = i % THREADS;
        w[i].run_id = i < THREADS ? run : 0;
        assert_int_equal(pthread_create(&th[i], NULL, i < THREADS ? append_lines : insert_runs, &w[i]), 0);
    }
    for (int i = 0; i < 2 * THREADS; i++)
        pthread_join(th[i], NULL);
    rd_store_close(other);
    for (int i = 0; i < 2 * THREADS; i++)
        if (w[i].status != RD_OK)
            fail_msg("thread %d: %s", i, w[i].message);

    /* every line once, seqs 1..N with no gap, each thread's lines in its own order */
    rd_store_log_line *l = NULL;
    size_t n = 0;
    ok(rd_store_run_log_list(f->st, run, 0, 10000, &l, &n, &err), &err);
    assert_int_equal(n, THREADS * PER_THREAD);
    int seen[THREADS][PER_THREAD] = { { 0 } };
    int next_of[THREADS] = { 0 };
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(l[i].seq, (int64_t)i + 1);
        int t = -1, k = -1;
        assert_int_equal(sscanf(l[i].line, "t%d-%d", &t, &k), 2);
        assert_true(t >= 0 && t < THREADS && k >= 0 && k < PER_THREAD);
        assert_int_equal(seen[t][k], 0);
        seen[t][k] = 1;
        assert_int_equal(k, next_of[t]);
        next_of[t]++;
    }
    rd_store_log_lines_free(l, n);

    /* every run id distinct and recorded */
    int64_t all[THREADS * PER_THREAD];
    for (int i = 0; i < THREADS; i++)
        memcpy(all + i * PER_THREAD, w[THREADS + i].ids, sizeof w[THREADS + i].ids);
    qsort(all, THREADS * PER_THREAD, sizeof all[0], cmp_i64);
    for (int i = 0; i < THREADS * PER_THREAD; i++) {
        assert_true(all[i] > run);
        if (i)
            assert_true(all[i] > all[i - 1]);
    }
    rd_store_run *runs = NULL;
    size_t nr = 0, total = 0;
    const char *projects[] = { "web", "shop" };
    for (int p = 0; p < 2; p++) {
        ok(rd_store_run_list(f->st, projects[p], NULL, 0, 1000, &runs, &nr, &err), &err);
        total += nr;
        rd_store_runs_free(runs, nr);
    }
    assert_int_equal(total, THREADS * PER_THREAD + 1);
    for (int i = 0; i < THREADS; i++) {
        char source[32];
        snprintf(source, sizeof source, "s%d", i);
        ok(rd_store_run_list(f->st, i % 2 ? "web" : "shop", source, 0, 1000, &runs, &nr, &err), &err);
        assert_int_equal(nr, PER_THREAD);
        for (size_t k = 0; k < nr; k++) /* newest first: the thread's ids backwards */
            assert_int_equal(runs[k].id, w[THREADS + i].ids[PER_THREAD - 1 - k]);
        rd_store_runs_free(runs, nr);
    }
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_enums),
        cmocka_unit_test_setup_teardown(test_run_insert_update_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_error_cleaned_and_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_latest_ignores_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_abandon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_append_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_lines_always_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_2_upgraded_data_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_project_deleted_rows_go, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends_and_inserts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
