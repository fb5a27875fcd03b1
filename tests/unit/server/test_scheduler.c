/* test_scheduler.c — the server's scheduler (server/scheduler.h) on a real emulator started in-process on
 * loopback and a real store in a temp data dir, the clock injected: a deployment laid out under
 * DATA_DIR/projects/P/v1 and recorded in the store with prod variables holding the emulator's keys and
 * endpoint (dev's hold keys it refuses; the process's own AWS_* are bogus). A due source runs once and
 * publishes a snapshot whose sha256 and tables are the file's; a manual run while one is queued is skipped;
 * a retry after a failed attempt succeeds once its table exists; a gap gives one catch-up run; a failing
 * source beside passing ones; a connector without keys or region fails naming the variables; a stop cancels
 * a running ingest leaving the previous table; rd_target_snapshot copies committed data only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/fsutil.h"
#include "core/timeutil.h"
#include "duckdb.h"
#include "ingest/target.h"
#include "redduck/emulator.h"
#include "redduck/project.h"
#include "redduck/runner.h"
#include "redduck/session.h"
#include "redduck/target.h"
#include "server/keyring.h"
#include "server/scheduler.h"
#include "server/store.h"
#include "services/redshift_data.h"
#include "aws/client.h"
#include "test_util.h"

#define SALES_ROWS 200
#define STR_(x) #x
#define STR(x) STR_(x)
#define T0 1800000001000LL /* 1 s past a multiple of 10 s */
#define ZERO_SHA "0000000000000000000000000000000000000000000000000000000000000000"

static struct {
    char root[256];
    rd_emulator *emu;
    char endpoint[64];
    int seq;
} g;

static _Atomic int64_t g_now = T0;

static int64_t fake_now(void *ctx)
{
    (void)ctx;
    return atomic_load(&g_now);
}

/* ---- the world: an emulator, and per test a data dir with a store ------------------------------------ */

static int world_setup(void **state)
{
    (void)state;
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    /* the server's own environment, bogus: a run that used any of it fails */
    setenv("AWS_ACCESS_KEY_ID", "AKIDHOSTONLY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "host-only-secret", 1);
    setenv("AWS_PROFILE", "no-such-profile", 1);
    setenv("AWS_REGION", "eu-bogus-9", 1);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 1);
    if (rd_test_mkdtemp(g.root, sizeof g.root, "rd-sched") != 0)
        return -1;
    char path[400];
    snprintf(path, sizeof path, "%s/aws-config", g.root);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("[profile no-such-profile]\nregion = eu-bogus-9\n[default]\nregion = eu-bogus-9\n", f);
    fclose(f);
    setenv("AWS_CONFIG_FILE", path, 1);
    char data[400];
    snprintf(data, sizeof data, "%s/emulator", g.root);
    const char *samples[] = { "sales:rows=" STR(SALES_ROWS) };
    rd_emulator_options o = { .data_dir = data, .slices = 2, .seed = 3, .samples = samples, .sample_count = 1,
                              .threads = 4 };
    rd_error err;
    rd_error_clear(&err);
    if (rd_emulator_start(&o, &g.emu, &err) != RD_OK) {
        fprintf(stderr, "emulator: %s\n", err.message);
        return -1;
    }
    snprintf(g.endpoint, sizeof g.endpoint, "http://127.0.0.1:%d", rd_emulator_port(g.emu));
    return 0;
}

static int world_teardown(void **state)
{
    (void)state;
    rd_emulator_stop(g.emu);
    rd_test_rm_tree(g.root);
    return 0;
}

typedef struct fx {
    char data[400];
    rd_keyring *kr;
    rd_store *st;
    rd_scheduler *s;
    FILE *log;
    char log_path[450];
} fx;

static void fx_open(fx *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->data, sizeof f->data, "%s/data%d", g.root, ++g.seq);
    char kr[450];
    snprintf(kr, sizeof kr, "%s-keyring", f->data);
    rd_error err;
    rd_error_clear(&err);
    if (rd_keyring_open(kr, RD_KEYRING_CREATE, &f->kr, NULL, &err) != RD_OK ||
        rd_store_open_sqlite(f->data, f->kr, NULL, &f->st, &err) != RD_OK)
        fail_msg("store: %s", err.message);
    snprintf(f->log_path, sizeof f->log_path, "%s-server.log", f->data);
    f->log = fopen(f->log_path, "w+");
    assert_non_null(f->log);
    atomic_store(&g_now, T0);
}

static int g_max_runs = 3;
static int g_keep_days = 0;

static void sched_start(fx *f)
{
    rd_scheduler_options o = { .data_dir = f->data, .store = f->st, .max_concurrent_runs = g_max_runs, .tick_ms = 10,
                               .now_ms = fake_now, .log = f->log, .keep_runs_days = g_keep_days };
    rd_error err;
    rd_error_clear(&err);
    if (rd_scheduler_start(&o, &f->s, &err) != RD_OK)
        fail_msg("scheduler: %s", err.message);
}

static void sched_stop(fx *f)
{
    rd_scheduler_stop(f->s);
    f->s = NULL;
}

static void fx_close(fx *f)
{
    sched_stop(f);
    rd_store_close(f->st);
    rd_keyring_free(f->kr);
    fclose(f->log);
}

static void put(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rd_error err;
    rd_error_clear(&err);
    if (rd_mkdirs(path, 0700, &err) != RD_OK)
        fail_msg("%s", err.message);
    *slash = '/';
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        fail_msg("cannot write %s", path);
}

static void var(fx *f, const char *project, rd_env env, const char *name, const char *value)
{
    rd_error err;
    rd_error_clear(&err);
    if (rd_store_variable_set(f->st, "admin", project, env, name, value, strlen(value), &err) != RD_OK)
        fail_msg("variable %s: %s", name, err.message);
}

/* Deploys version `version` of project: connector wh (no keys, no endpoint in the YAML; region unless
 * no_region), the sources as pairs of a name and its YAML ended by NULL. The first version creates the
 * project and its variables: prod the emulator's keys and endpoint (keys 0: none), dev keys it refuses. */
static void deploy(fx *f, const char *project, int version, int keys, int no_region, ...)
{
    char dir[600], rel[128], text[1024];
    snprintf(rel, sizeof rel, "projects/%s/v%d", project, version);
    snprintf(dir, sizeof dir, "%s/%s", f->data, rel);
    snprintf(text, sizeof text, "name: %s\n", project);
    put(dir, "redduck.yaml", text);
    snprintf(text, sizeof text,
             "type: redshift\nworkgroup: demo\ndatabase: dev\n%soutput_location: s3://redduck-staging/%s/\n",
             no_region ? "" : "region: us-east-1\n", project);
    put(dir, "connectors/wh.yaml", text);
    va_list ap;
    va_start(ap, no_region);
    for (const char *src; (src = va_arg(ap, const char *));) {
        char name[128];
        snprintf(name, sizeof name, "sources/%s.yaml", src);
        put(dir, name, va_arg(ap, const char *));
    }
    va_end(ap);
    rd_error err;
    rd_error_clear(&err);
    if (version == 1) {
        if (rd_store_project_create(f->st, "admin", project, &err) != RD_OK)
            fail_msg("project: %s", err.message);
        if (keys) {
            var(f, project, RD_ENV_PROD, "connector.wh.aws_access_key_id", "test");
            var(f, project, RD_ENV_PROD, "connector.wh.aws_secret_access_key", "test");
        }
        var(f, project, RD_ENV_SHARED, "connector.wh.endpoint_url", g.endpoint);
        var(f, project, RD_ENV_DEV, "connector.wh.aws_access_key_id", "AKIDDEVONLY");
        var(f, project, RD_ENV_DEV, "connector.wh.aws_secret_access_key", "dev-only-secret");
        var(f, project, RD_ENV_DEV, "connector.wh.endpoint_url", "http://127.0.0.1:9");
    }
    int64_t v = 0;
    if (rd_store_deploy_env(f->st, "admin", project, RD_ENV_PROD, rel, ZERO_SHA, &v, &err) != RD_OK)
        fail_msg("deploy: %s", err.message);
    assert_int_equal(v, version);
}

/* ---- reading back ------------------------------------------------------------------------------------ */

static size_t runs_of(fx *f, const char *project, const char *source, rd_store_run **out)
{
    rd_store_run *rs = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    if (rd_store_run_list(f->st, project, source, 0, 100, &rs, &n, &err) != RD_OK)
        fail_msg("runs: %s", err.message);
    if (out)
        *out = rs;
    else
        rd_store_runs_free(rs, n);
    return n;
}

/* Waits (real time) until project/source has at least n runs; the newest's id. */
static int64_t wait_runs(fx *f, const char *project, const char *source, size_t n)
{
    for (int i = 0; i < 2000; i++) {
        rd_store_run *rs = NULL;
        size_t k = runs_of(f, project, source, &rs);
        int64_t id = k ? rs[0].id : 0;
        rd_store_runs_free(rs, k);
        if (k >= n)
            return id;
        rd_sleep_ms(5);
    }
    fail_msg("%s/%s: fewer than %zu runs", project, source, n);
    return 0;
}

static void wait_ended(fx *f, int64_t id, rd_store_run *out)
{
    int ended = 0;
    rd_error err;
    rd_error_clear(&err);
    if (rd_scheduler_wait(f->s, id, 30000, &ended, &err) != RD_OK)
        fail_msg("wait: %s", err.message);
    assert_true(ended);
    if (rd_store_run_get(f->st, id, out, &err) != RD_OK)
        fail_msg("run: %s", err.message);
}

/* 1 when a line of run id's log contains text. */
static int log_has(fx *f, int64_t id, const char *text)
{
    rd_store_log_line *l = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    if (rd_store_run_log_list(f->st, id, 0, 0, &l, &n, &err) != RD_OK)
        fail_msg("log: %s", err.message);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++)
        found = strstr(l[i].line, text) != NULL;
    rd_store_log_lines_free(l, n);
    return found;
}

static void wait_log(fx *f, int64_t id, const char *text)
{
    for (int i = 0; i < 4000; i++) {
        if (log_has(f, id, text))
            return;
        rd_sleep_ms(5);
    }
    fail_msg("run %lld: no log line with '%s'", (long long)id, text);
}

static void expect_state(const rd_store_run *r, rd_run_state st)
{
    if (r->state != st)
        fail_msg("run %lld of %s: %s, expected %s (%s)", (long long)r->id, r->source, rd_run_state_name(r->state),
                 rd_run_state_name(st), r->error ? r->error : "no error");
}

static long long db_count(const char *path, const char *table)
{
    duckdb_database db;
    duckdb_connection c;
    duckdb_result r;
    duckdb_config cfg;
    duckdb_create_config(&cfg);
    duckdb_set_config(cfg, "access_mode", "READ_ONLY");
    if (duckdb_open_ext(path, &db, cfg, NULL) != DuckDBSuccess)
        fail_msg("cannot open %s", path);
    duckdb_destroy_config(&cfg);
    assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
    char sql[256];
    snprintf(sql, sizeof sql, "select count(*) from \"%s\"", table);
    long long n = -1;
    if (duckdb_query(c, sql, &r) == DuckDBSuccess)
        n = duckdb_value_int64(&r, 0, 0);
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    duckdb_close(&db);
    return n;
}

static void sha256_file(const char *path, char hex[65])
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    unsigned char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0)
        EVP_DigestUpdate(md, buf, n);
    fclose(fp);
    unsigned char d[32];
    unsigned dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* Runs sql in the emulator's warehouse with the emulator's keys. */
static void warehouse_sql(const char *sql)
{
    rd_session_options so = { .region = "us-east-1", .endpoint_url = g.endpoint, .access_key_id = "test",
                              .secret_access_key = "test", .no_host_environment = 1 };
    rd_session *s = NULL;
    rd_error err;
    rd_error_clear(&err);
    if (rd_session_new(&so, &s, &err) != RD_OK)
        fail_msg("session: %s", err.message);
    rd_aws_client c;
    rd_session_client(s, "us-east-1", &c);
    rd_rsd_target t = { .workgroup = "demo", .database = "dev" };
    char id[64];
    if (rd_rsd_execute(&c, &t, sql, NULL, id, &err) != RD_OK)
        fail_msg("execute: %s", err.message);
    rd_rsd_wait_options wo = { .timeout_ms = 60000, .first_poll_ms = 5, .max_poll_ms = 50 };
    rd_rsd_description d = { 0 };
    if (rd_rsd_wait(&c, id, &wo, &d, &err) != RD_OK)
        fail_msg("%s: %s", sql, err.message);
    rd_rsd_description_free(&d);
    rd_session_free(s);
}

static const char SALES[] = "sql: select sale_id, quantity from sales\ntable_name: sales_copy\n";

/* ---- the tests ---------------------------------------------------------------------------------------- */

/* A source seen for the first time does not run on deploy; at its slot it runs once (prod's keys, not the
 * host's or dev's), and a snapshot of the file follows with the file's sha256 and tables. */
static void test_due_source_runs_once_then_snapshot(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    deploy(&f, "p1", 1, 1, 0, "orders", "refresh: {every: 10s}\nsql: select sale_id, quantity from sales\n", NULL);
    sched_start(&f);
    rd_sleep_ms(100); /* ten ticks before the slot: nothing */
    assert_int_equal(runs_of(&f, "p1", "orders", NULL), 0);
    rd_scheduler_source *src = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_scheduler_sources(f.s, "p1", &src, &n, &err), RD_OK);
    assert_int_equal(n, 1);
    assert_string_equal(src[0].name, "orders");
    assert_string_equal(src[0].schedule, "every 10s");
    assert_int_equal(src[0].next_run_ms, T0 + 9000);
    rd_scheduler_sources_free(src, n);

    atomic_store(&g_now, T0 + 9000);
    int64_t id = wait_runs(&f, "p1", "orders", 1);
    rd_store_run r;
    wait_ended(&f, id, &r);
    expect_state(&r, RD_RUN_SUCCESS);
    assert_int_equal(r.trigger, RD_TRIGGER_SCHEDULE);
    assert_string_equal(r.triggered_by, "scheduler");
    assert_int_equal(r.rows, SALES_ROWS);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.version, 1);
    assert_true(r.total_s > 0);
    rd_store_run_clear(&r);
    assert_true(log_has(&f, id, "attempt 1 of 1 started (version 1)"));
    assert_true(log_has(&f, id, "phase "));
    assert_true(log_has(&f, id, "success: " STR(SALES_ROWS) " rows"));
    rd_sleep_ms(100); /* more ticks at the same time: still one run */
    assert_int_equal(runs_of(&f, "p1", "orders", NULL), 1);

    wait_log(&f, id, "snapshot ");
    rd_store_snapshot snap;
    memset(&snap, 0, sizeof snap);
    assert_int_equal(rd_store_snapshot_current(f.st, "p1", &snap, &err), RD_OK);
    assert_int_equal(snap.run_id, id);
    char hex[65];
    sha256_file(snap.path, hex);
    assert_string_equal(hex, snap.sha256);
    struct stat sb;
    assert_int_equal(stat(snap.path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, snap.size);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_string_equal(snap.tables_json, "[{\"name\":\"orders\",\"rows\":" STR(SALES_ROWS) "}]");
    assert_int_equal(db_count(snap.path, "orders"), SALES_ROWS);
    rd_store_snapshot_clear(&snap);

    /* the next slot: one more run */
    atomic_store(&g_now, T0 + 19500);
    id = wait_runs(&f, "p1", "orders", 2);
    wait_ended(&f, id, &r);
    expect_state(&r, RD_RUN_SUCCESS);
    rd_store_run_clear(&r);
    sched_stop(&f);
    char db[600];
    snprintf(db, sizeof db, "%s/projects/p1/data.duckdb", f.data);
    assert_int_equal(stat(db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(db_count(db, "orders"), SALES_ROWS);
    /* the server log has the run's start and end, and no value */
    fflush(f.log);
    char text[8192] = "";
    rewind(f.log);
    size_t len = fread(text, 1, sizeof text - 1, f.log);
    text[len] = '\0';
    assert_non_null(strstr(text, "p1/orders success: " STR(SALES_ROWS) " rows"));
    assert_null(strstr(text, "dev-only-secret"));
    assert_null(strstr(text, "secret"));
    fx_close(&f);
}

/* A manual run while one is queued or running is recorded as skipped; unknown names are refused before
 * anything is queued. */
static void test_overlap_skipped(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    deploy(&f, "p2", 1, 1, 0, "a", SALES, NULL);
    sched_start(&f);
    const char *names[] = { "a" };
    int64_t *ids = NULL, *ids2 = NULL;
    size_t n = 0, n2 = 0;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_scheduler_trigger(f.s, "p2", "alice", names, 1, &ids, &n, &err), RD_OK);
    assert_int_equal(rd_scheduler_trigger(f.s, "p2", "bob", names, 1, &ids2, &n2, &err), RD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(n2, 1);
    rd_store_run r;
    wait_ended(&f, ids2[0], &r);
    expect_state(&r, RD_RUN_SKIPPED);
    assert_string_equal(r.triggered_by, "bob");
    rd_store_run_clear(&r);
    wait_ended(&f, ids[0], &r);
    expect_state(&r, RD_RUN_SUCCESS);
    assert_int_equal(r.trigger, RD_TRIGGER_MANUAL);
    assert_string_equal(r.triggered_by, "alice");
    rd_store_run_clear(&r);
    free(ids);
    free(ids2);
    const char *bad[] = { "a", "nope" };
    assert_int_equal(rd_scheduler_trigger(f.s, "p2", "alice", bad, 2, NULL, NULL, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_scheduler_trigger(f.s, "nosuch", "alice", NULL, 0, NULL, NULL, &err), RD_E_NOT_FOUND);
    assert_int_equal(runs_of(&f, "p2", "a", NULL), 2);
    fx_close(&f);
}

/* A first attempt failing (its table does not exist yet) is retried after the backoff, on the scheduler's
 * clock, and succeeds: one run, two attempts. */
static void test_retry_then_success(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    deploy(&f, "p3", 1, 1, 0, "late", "refresh: {retry: {attempts: 3, backoff: 60s}}\nsql: select * from late_tbl\n",
           NULL);
    sched_start(&f);
    int64_t *ids = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_scheduler_trigger(f.s, "p3", "alice", NULL, 0, &ids, &n, &err), RD_OK);
    assert_int_equal(n, 1);
    int64_t id = ids[0];
    free(ids);
    wait_log(&f, id, "retrying in 60.0 s (attempt 2 of 3)");
    rd_store_run r;
    memset(&r, 0, sizeof r);
    assert_int_equal(rd_store_run_get(f.st, id, &r, &err), RD_OK);
    expect_state(&r, RD_RUN_QUEUED);
    assert_int_equal(r.attempts, 1);
    assert_non_null(r.error);
    rd_store_run_clear(&r);
    /* still waiting: the clock has not moved (no worker sleeps: a manual run of it now is skipped) */
    rd_sleep_ms(50);
    assert_false(log_has(&f, id, "attempt 2 of 3 started"));
    int64_t *ids2 = NULL;
    assert_int_equal(rd_scheduler_trigger(f.s, "p3", "bob", NULL, 0, &ids2, &n, &err), RD_OK);
    wait_ended(&f, ids2[0], &r);
    expect_state(&r, RD_RUN_SKIPPED);
    rd_store_run_clear(&r);
    free(ids2);
    warehouse_sql("create table late_tbl as select sale_id from sales where sale_id <= 7");
    atomic_store(&g_now, T0 + 60000);
    wait_ended(&f, id, &r);
    expect_state(&r, RD_RUN_SUCCESS);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.rows, 7);
    assert_null(r.error);
    rd_store_run_clear(&r);
    assert_true(log_has(&f, id, "attempt 1 failed: "));
    fx_close(&f);
}

/* After a gap of several slots with no scheduler: one catch-up run, not one per slot. */
static void test_catch_up_once_after_gap(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    deploy(&f, "p4", 1, 1, 0, "a", "refresh: {every: 10s}\nsql: select sale_id from sales where sale_id < 5\n",
           "b", "refresh: {every: 10s}\nsql: select sale_id from sales where sale_id < 9\n", NULL);
    sched_start(&f);
    rd_sleep_ms(50);
    sched_stop(&f);
    assert_int_equal(runs_of(&f, "p4", "a", NULL), 0);
    atomic_store(&g_now, T0 + 45000); /* four slots passed while "down" */
    sched_start(&f);
    const char *srcs[] = { "a", "b" };
    for (int i = 0; i < 2; i++) {
        int64_t id = wait_runs(&f, "p4", srcs[i], 1);
        rd_store_run r;
        wait_ended(&f, id, &r);
        expect_state(&r, RD_RUN_SUCCESS);
        assert_int_equal(r.trigger, RD_TRIGGER_CATCHUP);
        rd_store_run_clear(&r);
        assert_true(log_has(&f, id, "catch-up"));
    }
    rd_sleep_ms(100);
    assert_int_equal(runs_of(&f, "p4", "a", NULL), 1);
    assert_int_equal(runs_of(&f, "p4", "b", NULL), 1);
    /* the next slot is a scheduled run again */
    atomic_store(&g_now, T0 + 50000);
    int64_t id = wait_runs(&f, "p4", "a", 2);
    rd_store_run r;
    wait_ended(&f, id, &r);
    assert_int_equal(r.trigger, RD_TRIGGER_SCHEDULE);
    rd_store_run_clear(&r);
    fx_close(&f);
}

/* A failing source beside passing ones: its run fails with the error, theirs succeed. A project without prod
 * keys fails naming the variables to set (the host's AWS_ACCESS_KEY_ID notwithstanding), and one whose
 * connector has no region names connector.wh.region (AWS_REGION is not read). */
static void test_failures_named(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    deploy(&f, "p5", 1, 1, 0, "bad", "sql: select * from no_such_table\n", "good1", SALES,
           "good2", "sql: select sale_id from sales\n", NULL);
    deploy(&f, "p6", 1, 0, 0, "a", SALES, NULL);
    deploy(&f, "p7", 1, 1, 1, "a", SALES, NULL);
    sched_start(&f);
    int64_t *ids = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_scheduler_trigger(f.s, "p5", "alice", NULL, 0, &ids, &n, &err), RD_OK);
    assert_int_equal(n, 3); /* sorted by name: bad, good1, good2 */
    rd_store_run r;
    wait_ended(&f, ids[0], &r);
    expect_state(&r, RD_RUN_FAILED);
    assert_non_null(strstr(r.error, "no_such_table"));
    rd_store_run_clear(&r);
    assert_true(log_has(&f, ids[0], "attempt 1 failed: "));
    for (int i = 1; i < 3; i++) {
        wait_ended(&f, ids[i], &r);
        expect_state(&r, RD_RUN_SUCCESS);
        assert_int_equal(r.rows, SALES_ROWS);
        rd_store_run_clear(&r);
    }
    free(ids);

    assert_int_equal(rd_scheduler_trigger(f.s, "p6", "alice", NULL, 0, &ids, &n, &err), RD_OK);
    wait_ended(&f, ids[0], &r);
    expect_state(&r, RD_RUN_FAILED);
    assert_non_null(strstr(r.error, "connector.wh.aws_access_key_id"));
    assert_non_null(strstr(r.error, "the variables of prod"));
    rd_store_run_clear(&r);
    free(ids);

    assert_int_equal(rd_scheduler_trigger(f.s, "p7", "alice", NULL, 0, &ids, &n, &err), RD_OK);
    wait_ended(&f, ids[0], &r);
    expect_state(&r, RD_RUN_FAILED);
    assert_non_null(strstr(r.error, "connector.wh.region"));
    rd_store_run_clear(&r);
    free(ids);
    fx_close(&f);
}

/* A stop during an ingest ends it cancelled; the previous table (of version 1) is intact; a new version's
 * source takes effect at its next run. */
static void test_stop_cancels_running_ingest(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    deploy(&f, "p8", 1, 1, 0, "t", SALES, NULL);
    sched_start(&f);
    int64_t *ids = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_scheduler_trigger(f.s, "p8", "alice", NULL, 0, &ids, &n, &err), RD_OK);
    rd_store_run r;
    wait_ended(&f, ids[0], &r);
    expect_state(&r, RD_RUN_SUCCESS);
    rd_store_run_clear(&r);
    free(ids);
    /* version 2: the same table from a statement that runs for minutes */
    deploy(&f, "p8", 2, 1, 0, "t",
           "sql: select a.sale_id from sales a, sales b, sales c, sales d where a.sale_id + b.sale_id + "
           "c.sale_id + d.sale_id = -3\ntable_name: sales_copy\n",
           NULL);
    assert_int_equal(rd_scheduler_trigger(f.s, "p8", "alice", NULL, 0, &ids, &n, &err), RD_OK);
    int64_t id = ids[0];
    free(ids);
    wait_log(&f, id, "phase unload");
    double t0 = rd_monotonic_seconds();
    sched_stop(&f);
    assert_true(rd_monotonic_seconds() - t0 < 20);
    memset(&r, 0, sizeof r);
    assert_int_equal(rd_store_run_get(f.st, id, &r, &err), RD_OK);
    expect_state(&r, RD_RUN_CANCELLED);
    assert_int_equal(r.version, 2);
    rd_store_run_clear(&r);
    char db[600];
    snprintf(db, sizeof db, "%s/projects/p8/data.duckdb", f.data);
    assert_int_equal(db_count(db, "sales_copy"), SALES_ROWS);
    fx_close(&f);
}

/* An ended run of project/source, finished at finished_ms. Its id. */
static int64_t ended_run(fx *f, const char *project, const char *source, int64_t finished_ms)
{
    rd_error err;
    rd_error_clear(&err);
    rd_store_run r;
    memset(&r, 0, sizeof r);
    r.project = (char *)project;
    r.source = (char *)source;
    r.table_name = (char *)source;
    r.version = 1;
    r.trigger = RD_TRIGGER_MANUAL;
    r.triggered_by = (char *)"alice";
    r.state = RD_RUN_QUEUED;
    r.queued_at = finished_ms - 2000;
    int64_t id = 0;
    if (rd_store_run_insert(f->st, &r, &id, &err) != RD_OK)
        fail_msg("run: %s", err.message);
    r.id = id;
    r.state = RD_RUN_SUCCESS;
    r.attempts = 1;
    r.started_at = finished_ms - 1000;
    r.finished_at = finished_ms;
    r.rows = 1;
    if (rd_store_run_update(f->st, &r, &err) != RD_OK)
        fail_msg("run: %s", err.message);
    if (rd_store_run_log_append(f->st, id, "a line of an old run", &err) != RD_OK)
        fail_msg("log: %s", err.message);
    return id;
}

static int run_exists(fx *f, int64_t id)
{
    rd_store_run r;
    memset(&r, 0, sizeof r);
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_run_get(f->st, id, &r, &err);
    rd_store_run_clear(&r);
    if (st != RD_OK && st != RD_E_NOT_FOUND)
        fail_msg("run: %s", err.message);
    return st == RD_OK;
}

static void wait_gone(fx *f, int64_t id)
{
    for (int i = 0; i < 2000 && run_exists(f, id); i++)
        rd_sleep_ms(5);
    if (run_exists(f, id))
        fail_msg("run %lld was not removed", (long long)id);
}

/* Retention: runs older than keep_runs_days go at start and then hourly, except each source's newest. */
static void test_old_runs_pruned(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    deploy(&f, "p9", 1, 1, 0, "a", "sql: select 1 as x\n", NULL);
    const int64_t day = 86400LL * 1000;
    int64_t a = ended_run(&f, "p9", "old", T0 - 3 * day), b = ended_run(&f, "p9", "old", T0 - 2 * day),
            c = ended_run(&f, "p9", "old", T0 - 3600 * 1000);
    int64_t lone = ended_run(&f, "p9", "lone", T0 - 5 * day); /* its source's only run: kept */
    g_keep_days = 1;
    sched_start(&f);
    wait_gone(&f, a);
    wait_gone(&f, b);
    assert_true(run_exists(&f, c));
    assert_true(run_exists(&f, lone));
    /* two days on: c is old now, but still its source's newest; once a newer one ends, the next hourly pass
     * takes it */
    atomic_store(&g_now, T0 + 2 * day);
    int64_t d = ended_run(&f, "p9", "old", T0 + 2 * day - 60000);
    atomic_store(&g_now, T0 + 2 * day + 3600 * 1000);
    wait_gone(&f, c);
    assert_true(run_exists(&f, d));
    assert_true(run_exists(&f, lone));
    sched_stop(&f);
    g_keep_days = 0;
    fflush(f.log);
    fx_close(&f);
}

/* max_concurrent_runs 1: the runs of two projects, all queued at once, run one after the other. */
static void test_at_most_max_concurrent_runs(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    deploy(&f, "q1", 1, 1, 0, "a", SALES, "b", "sql: select sale_id from sales\n", NULL);
    deploy(&f, "q2", 1, 1, 0, "a", SALES, NULL);
    g_max_runs = 1;
    sched_start(&f);
    g_max_runs = 3;
    int64_t *i1 = NULL, *i2 = NULL;
    size_t n1 = 0, n2 = 0;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_scheduler_trigger(f.s, "q1", "alice", NULL, 0, &i1, &n1, &err), RD_OK);
    assert_int_equal(rd_scheduler_trigger(f.s, "q2", "alice", NULL, 0, &i2, &n2, &err), RD_OK);
    rd_store_run r[3];
    int64_t ids[3] = { i1[0], i1[1], i2[0] };
    for (int i = 0; i < 3; i++) {
        wait_ended(&f, ids[i], &r[i]);
        expect_state(&r[i], RD_RUN_SUCCESS);
    }
    /* the log lines' times are the store's real clock: the attempts' spans [started, ended] do not overlap */
    int64_t from[3], to[3];
    for (int i = 0; i < 3; i++) {
        rd_store_log_line *l = NULL;
        size_t n = 0;
        assert_int_equal(rd_store_run_log_list(f.st, ids[i], 0, 0, &l, &n, &err), RD_OK);
        from[i] = to[i] = -1;
        for (size_t k = 0; k < n; k++) {
            if (strstr(l[k].line, "attempt 1 of 1 started"))
                from[i] = l[k].at_ms;
            if (strncmp(l[k].line, "success: ", 9) == 0)
                to[i] = l[k].at_ms;
        }
        rd_store_log_lines_free(l, n);
        assert_true(from[i] >= 0 && to[i] >= from[i]);
    }
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            if (i != k)
                assert_true(to[i] <= from[k] || to[k] <= from[i]);
    for (int i = 0; i < 3; i++)
        rd_store_run_clear(&r[i]);
    free(i1);
    free(i2);
    fx_close(&f);
}

/* rd_target_snapshot: a copy of the committed tables, refusing an existing file or a control character. */
static void test_target_snapshot(void **state)
{
    (void)state;
    char dir[600], path[700], dest[700];
    snprintf(dir, sizeof dir, "%s/snap", g.root);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/t'x.duckdb", dir);
    rd_target_options to = { .path = path, .lock_timeout_s = -1 };
    rd_target *t = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_target_open(&to, &t, &err), RD_OK);
    assert_int_equal(rd_target_runs_init(t, &err), RD_OK);
    duckdb_connection c, c2;
    duckdb_result r;
    assert_int_equal(duckdb_connect(rd_target_database(t), &c), DuckDBSuccess);
    assert_int_equal(duckdb_query(c, "create table \"we\"\"ird\" as select range as i from range(5)", &r), DuckDBSuccess);
    duckdb_destroy_result(&r);
    assert_int_equal(duckdb_query(c, "create table b as select range as i from range(3)", &r), DuckDBSuccess);
    duckdb_destroy_result(&r);
    /* an open transaction on another connection: its rows are not in the copy */
    assert_int_equal(duckdb_connect(rd_target_database(t), &c2), DuckDBSuccess);
    assert_int_equal(duckdb_query(c2, "begin; insert into b select range from range(100)", &r), DuckDBSuccess);
    duckdb_destroy_result(&r);
    snprintf(dest, sizeof dest, "%s/copy 'one'.duckdb", dir);
    rd_target_table_count *tc = NULL;
    size_t n = 0;
    assert_int_equal(rd_target_snapshot_counted(t, dest, &tc, &n, &err), RD_OK);
    assert_int_equal(n, 2);
    assert_string_equal(tc[0].name, "b");
    assert_int_equal(tc[0].rows, 3);
    assert_string_equal(tc[1].name, "we\"ird");
    assert_int_equal(tc[1].rows, 5);
    rd_target_table_counts_free(tc, n);
    assert_int_equal(duckdb_query(c2, "rollback", &r), DuckDBSuccess);
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c2);
    duckdb_disconnect(&c);
    assert_int_equal(rd_target_snapshot(t, dest, &err), RD_E_IO); /* exists */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/a\nb.duckdb", dir);
    assert_int_equal(rd_target_snapshot(t, bad, &err), RD_E_USAGE);
    rd_target_close(t);
    struct stat sb;
    assert_int_equal(stat(dest, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(db_count(dest, "b"), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_snapshot),
        cmocka_unit_test(test_due_source_runs_once_then_snapshot),
        cmocka_unit_test(test_overlap_skipped),
        cmocka_unit_test(test_retry_then_success),
        cmocka_unit_test(test_catch_up_once_after_gap),
        cmocka_unit_test(test_failures_named),
        cmocka_unit_test(test_stop_cancels_running_ingest),
        cmocka_unit_test(test_at_most_max_concurrent_runs),
        cmocka_unit_test(test_old_runs_pruned),
    };
    return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
