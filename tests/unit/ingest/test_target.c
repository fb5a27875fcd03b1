/* test_target.c — the target's local lifecycle with a real DuckDB: a failed load (staging table filled, then
 * closed without commit) gives its space back, in its own database and in a shared one; a new file is 0600
 * (and the umask private while it is open), an existing one keeps its mode; the ledger sweeps a dead run's
 * download directory and keeps this process's entries. (The lock between processes: test_target.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duckdb.h"
#include "ingest/plan.h"
#include "ingest/sink.h"
#include "ingest/target.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rd-target-XXXXXX");
    assert_non_null(mkdtemp(dir));
    /* 200k rows: more than a DuckDB row group, so the load is written into the file before COMMIT */
    duckdb_database db;
    duckdb_connection c;
    assert_int_equal(duckdb_open(NULL, &db), DuckDBSuccess);
    assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
    char sql[256];
    snprintf(sql, sizeof sql, "COPY (SELECT range AS id, md5(range::VARCHAR) AS s FROM range(200000)) TO "
                              "'%s/rows.parquet' (FORMAT parquet)", dir);
    duckdb_result r;
    assert_int_equal(duckdb_query(c, sql, &r), DuckDBSuccess);
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    duckdb_close(&db);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void plan(rd_plan *p)
{
    json_t *md = json_loads("[{\"name\":\"id\",\"typeName\":\"int8\"},{\"name\":\"s\",\"typeName\":\"varchar\"}]", 0,
                            NULL);
    rd_error err;
    assert_int_equal(rd_plan_from_metadata(md, p, &err), RD_OK);
    json_decref(md);
}

static off_t size_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Opens a sink on path (or the shared db), loads the Parquet file, commits or not, closes. */
static void load(const char *path, duckdb_database shared, int commit)
{
    rd_plan p;
    plan(&p);
    rd_sink_options so = { .path = path, .table = "t", .threads = 2, .shared_db = shared };
    rd_sink *s = NULL;
    rd_error err;
    assert_int_equal(rd_sink_open(&so, &p, &s, &err), RD_OK);
    char parquet[128];
    snprintf(parquet, sizeof parquet, "%s/rows.parquet", dir);
    const char *paths[] = { parquet };
    uint64_t rows = 0;
    assert_int_equal(rd_sink_load_parquet(s, paths, 1, &rows, &err), RD_OK);
    assert_int_equal(rows, 200000);
    if (commit)
        assert_int_equal(rd_sink_commit(s, rows, &err), RD_OK);
    rd_sink_close(s);
    rd_plan_free(&p);
}

static void test_failed_loads_give_their_space_back(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/own.duckdb", dir);
    load(path, NULL, 1);
    off_t clean = size_of(path);
    load(path, NULL, 0);
    assert_true(size_of(path) <= clean + clean / 10);
    /* one database shared by several loads (the project runner): failures must not pile up */
    snprintf(path, sizeof path, "%s/shared.duckdb", dir);
    rd_target *t = NULL;
    rd_target_options to = { .path = path, .lock_timeout_s = -1 };
    rd_error err;
    assert_int_equal(rd_target_open(&to, &t, &err), RD_OK);
    load(path, rd_target_database(t), 1);
    duckdb_connection c;
    duckdb_result r;
    assert_int_equal(duckdb_connect(rd_target_database(t), &c), DuckDBSuccess);
    duckdb_query(c, "CHECKPOINT", &r);
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    clean = size_of(path);
    for (int i = 0; i < 2; i++)
        load(path, rd_target_database(t), 0);
    assert_true(size_of(path) <= clean + clean / 10);
    rd_target_close(t);
}

static void test_modes(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/mode.duckdb", dir);
    mode_t orig = umask(0);
    umask(orig);
    rd_target *t = NULL;
    rd_target_options to = { .path = path, .lock_timeout_s = -1 };
    rd_error err;
    assert_int_equal(rd_target_open(&to, &t, &err), RD_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    mode_t now = umask(0);
    umask(now);
    assert_int_equal(now & 077, 077); /* while open, new files (the WAL) are private too */
    rd_target_close(t);
    now = umask(0);
    umask(now);
    assert_int_equal(now, orig); /* given back */

    /* an existing 0644 file keeps its mode */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(rd_target_open(&to, &t, &err), RD_OK);
    rd_target_close(t);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
}

static void test_ledger_sweeps_only_dead_runs(void **state)
{
    (void)state;
    char path[128], ledger[160], dead[128], mine[128], file[160];
    snprintf(path, sizeof path, "%s/led.duckdb", dir);
    snprintf(ledger, sizeof ledger, "%s.redduck-ledger", path);
    snprintf(dead, sizeof dead, "%s/.redduck-tmp-dead", dir);
    snprintf(mine, sizeof mine, "%s/.redduck-tmp-mine", dir);
    assert_int_equal(mkdir(dead, 0700), 0);
    assert_int_equal(mkdir(mine, 0700), 0);
    snprintf(file, sizeof file, "%s/000000.parquet", dead);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    rd_error err;
    assert_int_equal(rd_target_ledger_add(path, RD_TARGET_DIR, mine, &err), RD_OK);
    struct stat st;
    assert_int_equal(stat(ledger, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a dead run's entry, as another process wrote it, and a line torn by a crash */
    f = fopen(ledger, "a");
    assert_non_null(f);
    fprintf(f, "{\"run\":\"0123\",\"pid\":1,\"started\":1,\"kind\":\"dir\",\"location\":\"%s\"}\n{\"torn", dead);
    fclose(f);
    rd_target_sweep_result r = { 0 };
    rd_target_sweep(path, NULL, NULL, NULL, NULL, NULL, &r);
    assert_int_equal(r.dirs, 1);
    assert_int_equal(stat(dead, &st), -1);
    assert_int_equal(stat(mine, &st), 0); /* this process's own entry is alive */
    rd_target_ledger_remove(path, mine);
    assert_int_equal(stat(ledger, &st), -1); /* empty: removed */
    rmdir(mine);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_loads_give_their_space_back),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_ledger_sweeps_only_dead_runs),
    };
    return cmocka_run_group_tests_name("target", tests, setup, teardown);
}
