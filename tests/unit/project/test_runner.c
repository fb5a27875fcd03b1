/* test_runner.c — the project runner (runner.h) against a real emulator started in-process on loopback:
 * every source ingested with report items matching the emulator's table and the DuckDB file, `only` and an
 * unknown name refused before anything runs, a source named twice run once, a failing source beside passing
 * ones keeping its previous table, the _redduck_runs history, an incremental source's second run moving only
 * newer rows, `parallel` giving the same result, on_done once per source, a cancel flag set before the run,
 * and rd_project_session's key rules. Projects are written under a temp folder removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/client.h"
#include "core/fsutil.h"
#include "duckdb.h"
#include "redduck/creds.h"
#include "redduck/emulator.h"
#include "redduck/project.h"
#include "redduck/runner.h"
#include "redduck/session.h"
#include "services/redshift_data.h"
#include "services/s3.h"

#define SALES_ROWS 300
#define SLICES 3
#define STR_(x) #x
#define STR(x) STR_(x)

static struct {
    char root[256];
    rd_emulator *emu;
    char endpoint[64];
} g;

/* ---- the emulator and project folders ---------------------------------------------------------------- */

static int world_teardown(void **state)
{
    (void)state;
    rd_emulator_stop(g.emu);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g.root);
    return system(cmd) == 0 ? 0 : -1;
}

static int world_setup(void **state)
{
    (void)state;
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    /* host keys the emulator refuses (it knows only test/test): a run that used them instead of the
     * project's explicit keys fails */
    setenv("AWS_ACCESS_KEY_ID", "AKIDHOSTONLY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "host-only-secret", 1);
    const char *unset[] = { "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION",
                            "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                            "AWS_ENDPOINT_URL_REDSHIFT_DATA", "AWS_ENDPOINT_URL_STS", "AWS_MAX_ATTEMPTS" };
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : P_tmpdir;
    snprintf(g.root, sizeof g.root, "%s/rd-runner-XXXXXX", tmp);
    if (!mkdtemp(g.root))
        return -1;
    char path[400];
    snprintf(path, sizeof path, "%s/no-aws-config", g.root);
    setenv("AWS_CONFIG_FILE", path, 1);
    snprintf(path, sizeof path, "%s/no-aws-credentials", g.root);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    char data[400];
    snprintf(data, sizeof data, "%s/emulator", g.root);
    const char *samples[] = { "sales:rows=" STR(SALES_ROWS) };
    rd_emulator_options o = {
        .data_dir = data, .slices = SLICES, .seed = 5, .samples = samples, .sample_count = 1, .threads = 4
    };
    rd_error err;
    rd_error_clear(&err);
    if (rd_emulator_start(&o, &g.emu, &err) != RD_OK) {
        fprintf(stderr, "emulator: %s\n", err.message);
        world_teardown(state);
        return -1;
    }
    snprintf(g.endpoint, sizeof g.endpoint, "http://127.0.0.1:%d", rd_emulator_port(g.emu));
    return 0;
}

/* Writes dir/rel, creating its folder. */
static void put(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rd_error err;
    rd_error_clear(&err);
    if (rd_mkdirs(path, 0755, &err) != RD_OK)
        fail_msg("%s", err.message);
    *slash = '/';
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        fail_msg("cannot write %s", path);
}

typedef struct proj {
    char name[64];
    char dir[512];
    rd_project p;
    int loaded;
} proj;

static void project_load(proj *pj);

/* Writes and loads project NAME: connector wh (the emulator's workgroup, host access off, the keys in .env)
 * staging under s3://redduck-staging/NAME/, and the sources given as pairs of a source name and its YAML,
 * ended by NULL. */
static void project_new(proj *pj, const char *name, ...)
{
    memset(pj, 0, sizeof *pj);
    snprintf(pj->name, sizeof pj->name, "%s", name);
    snprintf(pj->dir, sizeof pj->dir, "%s/%s", g.root, name);
    assert_int_equal(mkdir(pj->dir, 0755), 0);
    char text[512];
    snprintf(text, sizeof text, "name: %s\nduckdb: data/t.duckdb\nparallel: 2\n", name);
    put(pj->dir, "redduck.yaml", text);
    snprintf(text, sizeof text,
             "type: redshift\nworkgroup: demo\ndatabase: dev\nregion: us-east-1\n"
             "output_location: s3://redduck-staging/%s/\nallow_host_access: false\n",
             name);
    put(pj->dir, "connectors/wh.yaml", text);
    put(pj->dir, ".env", "connector.wh.aws_access_key_id=test\nconnector.wh.aws_secret_access_key=test\n");
    va_list ap;
    va_start(ap, name);
    for (const char *source; (source = va_arg(ap, const char *));) {
        char rel[128];
        snprintf(rel, sizeof rel, "sources/%s.yaml", source);
        put(pj->dir, rel, va_arg(ap, const char *));
    }
    va_end(ap);
    project_load(pj);
}

static void project_load(proj *pj)
{
    if (pj->loaded)
        rd_project_free(&pj->p);
    rd_error err;
    rd_error_clear(&err);
    if (rd_project_load(pj->dir, &pj->p, &err) != RD_OK)
        fail_msg("load %s: %s", pj->name, err.message);
    pj->loaded = 1;
}

static void project_free(proj *pj)
{
    if (pj->loaded)
        rd_project_free(&pj->p);
    pj->loaded = 0;
}

static rd_run_options run_options(void)
{
    rd_run_options o = { 0 };
    o.endpoint_url = g.endpoint;
    o.lock_timeout_s = -1;
    return o;
}

/* Runs and asserts the run happened (RD_OK); sources may still have failed. */
static void run_ok(proj *pj, const rd_run_options *o, rd_run_report *rep)
{
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_project_run(&pj->p, o, rep, &err);
    if (st != RD_OK)
        fail_msg("run %s: %s", pj->name, err.message);
}

static const rd_run_item *item_of(const rd_run_report *rep, const char *source)
{
    for (size_t i = 0; i < rep->count; i++)
        if (strcmp(rep->items[i].source, source) == 0)
            return &rep->items[i];
    fail_msg("no item for source %s", source);
    return NULL;
}

static void expect_ok(const rd_run_item *it)
{
    if (it->status != RD_OK)
        fail_msg("source %s failed: %s", it->source, it->error.message);
}

/* ---- reading the project's DuckDB file (closed by the runner when it returns) ---------------------------- */

/* The first cell of sql's result as text (NULL for SQL NULL), malloc'd. */
static char *db_text(const proj *pj, const char *sql)
{
    duckdb_database db;
    duckdb_connection c;
    duckdb_result r;
    if (duckdb_open(pj->p.duckdb_path, &db) != DuckDBSuccess)
        fail_msg("cannot open %s", pj->p.duckdb_path);
    assert_int_equal(duckdb_connect(db, &c), DuckDBSuccess);
    if (duckdb_query(c, sql, &r) != DuckDBSuccess)
        fail_msg("%s: %s", sql, duckdb_result_error(&r));
    char *out = NULL;
    if (duckdb_row_count(&r) > 0 && !duckdb_value_is_null(&r, 0, 0)) {
        char *v = duckdb_value_varchar(&r, 0, 0);
        out = strdup(v);
        duckdb_free(v);
    }
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    duckdb_close(&db);
    return out;
}

static long long db_int(const proj *pj, const char *sql)
{
    char *t = db_text(pj, sql);
    if (!t)
        fail_msg("%s: NULL", sql);
    long long v = strtoll(t, NULL, 10);
    free(t);
    return v;
}

static void expect_db_text(const proj *pj, const char *sql, const char *expected)
{
    char *t = db_text(pj, sql);
    if (!t || strcmp(t, expected) != 0)
        fail_msg("%s: expected %s, got %s", sql, expected, t ? t : "NULL");
    free(t);
}

/* The history, one "source:table:status:rows:files:incremental:watermark:error" a run, by source then time. */
#define HISTORY_SQL                                                                                                    \
    "select string_agg(source || ':' || table_name || ':' || status || ':' || rows || ':' || files || ':' || "         \
    "incremental || ':' || coalesce(watermark, '-') || ':' || coalesce(error, '-'), ' ' "                              \
    "order by source, finished_at) from _redduck_runs"

static int db_has_table(const proj *pj, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof sql, "select count(*) from information_schema.tables where table_name = '%s'", table);
    return db_int(pj, sql) > 0;
}

/* ---- the emulator through the product's own clients, with the project's connector (its explicit keys) - */

static rd_session *connector_session(const proj *pj, rd_aws_client *c)
{
    rd_session *s = NULL;
    rd_error err;
    rd_error_clear(&err);
    if (rd_project_session(&pj->p, rd_project_connector(&pj->p, "wh"), g.endpoint, 0, &s, &err) != RD_OK)
        fail_msg("session: %s", err.message);
    rd_session_client(s, "us-east-1", c);
    return s;
}

/* Data files (not the manifest) kept under s3://redduck-staging/NAME/ (sources with keep_staging). */
static size_t staged_files(const proj *pj)
{
    rd_aws_client c;
    rd_session *s = connector_session(pj, &c);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s/", pj->name);
    rd_s3_object_list l = { 0 };
    rd_error err;
    rd_error_clear(&err);
    if (rd_s3_list(&c, "redduck-staging", prefix, &l, &err) != RD_OK)
        fail_msg("list: %s", err.message);
    size_t n = 0;
    for (size_t i = 0; i < l.count; i++) {
        size_t len = strlen(l.items[i].key);
        if (len < 8 || strcmp(l.items[i].key + len - 8, "manifest") != 0)
            n++;
    }
    rd_s3_object_list_free(&l);
    rd_session_free(s);
    return n;
}

/* Runs sql in the emulator's warehouse (workgroup demo, database dev) and waits for it to finish. */
static void warehouse_sql(const proj *pj, const char *sql)
{
    rd_aws_client c;
    rd_session *s = connector_session(pj, &c);
    rd_rsd_target t = { .workgroup = "demo", .database = "dev" };
    char id[64];
    rd_error err;
    rd_error_clear(&err);
    if (rd_rsd_execute(&c, &t, sql, NULL, id, &err) != RD_OK)
        fail_msg("execute: %s", err.message);
    rd_rsd_wait_options wo = { .timeout_ms = 60000, .first_poll_ms = 5, .max_poll_ms = 50 };
    rd_rsd_description d = { 0 };
    if (rd_rsd_wait(&c, id, &wo, &d, &err) != RD_OK)
        fail_msg("%s: %s", sql, err.message);
    rd_rsd_description_free(&d);
    rd_session_free(s);
}

/* Inserts events ids from..to (store_id = id % 7). */
static void insert_events(const proj *pj, int from, int to)
{
    char sql[4096];
    size_t n = (size_t)snprintf(sql, sizeof sql, "insert into events values ");
    for (int i = from; i <= to && n < sizeof sql; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s(%d, %d)", i > from ? ", " : "", i, i % 7);
    assert_true(n < sizeof sql);
    warehouse_sql(pj, sql);
}

/* ---- on_done ----------------------------------------------------------------------------------------- */

#define MAX_DONE 8
typedef struct done_log {
    int calls;
    const rd_run_item *items[MAX_DONE];
    rd_status status[MAX_DONE];
    uint64_t rows[MAX_DONE];
    atomic_int inside; /* callers at once: the runner serialises them */
    int overlapped;
} done_log;

static void on_done(void *ctx, const rd_run_item *it)
{
    done_log *d = ctx;
    if (atomic_fetch_add(&d->inside, 1) > 0)
        d->overlapped = 1;
    if (d->calls < MAX_DONE) {
        d->items[d->calls] = it;
        d->status[d->calls] = it->status;
        d->rows[d->calls] = it->rows;
    }
    usleep(20000); /* widens the window a second, unserialised caller would land in */
    d->calls++;
    atomic_fetch_sub(&d->inside, 1);
}

/* ---- tests ------------------------------------------------------------------------------------------- */

static void test_every_source_is_ingested_and_recorded(void **state)
{
    (void)state;
    proj pj;
    project_new(&pj, "all", "sales", "connector: wh\nsql: select * from sales\nkeep_staging: true\n", "stores",
                "sql: select store_id, count(*) as n from sales group by store_id\nvia: data-api\n"
                "table_name: store_counts\n",
                NULL);
    rd_run_options o = run_options();
    rd_run_report rep;
    run_ok(&pj, &o, &rep);
    assert_int_equal(rep.count, 2);
    assert_int_equal(rep.failed, 0);
    /* in the order selected: all sources, sorted by name */
    assert_string_equal(rep.items[0].source, "sales");
    assert_string_equal(rep.items[0].table, "sales");
    assert_string_equal(rep.items[1].source, "stores");
    assert_string_equal(rep.items[1].table, "store_counts");
    const rd_run_item *sales = &rep.items[0], *stores = &rep.items[1];
    expect_ok(sales);
    expect_ok(stores);
    /* UNLOAD: every row of the emulator's table, in the files it staged (kept, so they can be counted) */
    assert_int_equal(sales->rows, SALES_ROWS);
    assert_int_equal(sales->files, staged_files(&pj));
    assert_int_equal(sales->files, SLICES);
    assert_true(sales->bytes > 0);
    assert_int_equal(sales->incremental, 0);
    assert_null(sales->watermark);
    assert_int_equal(db_int(&pj, "select count(*) from sales"), SALES_ROWS);
    assert_int_equal(db_int(&pj, "select count(distinct sale_id) from sales"), SALES_ROWS);
    assert_int_equal(db_int(&pj, "select max(sale_id) from sales"), SALES_ROWS);
    /* the Data API: no files; one row per store, adding up to the whole table */
    assert_int_equal(stores->files, 0);
    assert_true(stores->rows > 1);
    assert_int_equal(db_int(&pj, "select count(*) from store_counts"), (long long)stores->rows);
    assert_int_equal(db_int(&pj, "select sum(n) from store_counts"), SALES_ROWS);
    /* one history row per source, saying what the report says */
    assert_int_equal(db_int(&pj, "select count(*) from _redduck_runs"), 2);
    char expected[256];
    snprintf(expected, sizeof expected, "sales:sales:ok:%d:%d:false:-:- stores:store_counts:ok:%llu:0:false:-:-",
             SALES_ROWS, SLICES, (unsigned long long)stores->rows);
    expect_db_text(&pj, HISTORY_SQL, expected);
    rd_run_report_free(&rep);
    assert_null(rep.items);
    assert_int_equal(rep.count, 0);
    rd_run_report_free(NULL);
    project_free(&pj);
}

static void test_only_selects_and_an_unknown_name_fails_before_anything_runs(void **state)
{
    (void)state;
    proj pj;
    project_new(&pj, "only", "sales", "sql: select sale_id from sales\n", "stores",
                "sql: select store_id, count(*) as n from sales group by store_id\nvia: data-api\n", NULL);
    done_log d = { 0 };
    rd_run_options o = run_options();
    o.on_done = on_done;
    o.on_done_ctx = &d;
    /* an unknown name among known ones: nothing runs, not even the file is created */
    const char *bad[] = { "stores", "nope" };
    o.only = bad;
    o.nonly = 2;
    rd_run_report rep;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_project_run(&pj.p, &o, &rep, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "no source named 'nope'"));
    assert_non_null(strstr(err.message, "(sources: sales, stores)"));
    assert_int_equal(rep.count, 0);
    assert_null(rep.items);
    assert_int_equal(d.calls, 0);
    struct stat sb;
    assert_int_not_equal(stat(pj.p.duckdb_path, &sb), 0);
    /* the named one only */
    const char *one[] = { "stores" };
    o.only = one;
    o.nonly = 1;
    run_ok(&pj, &o, &rep);
    assert_int_equal(rep.count, 1);
    assert_int_equal(rep.failed, 0);
    assert_string_equal(rep.items[0].source, "stores");
    expect_ok(&rep.items[0]);
    assert_int_equal(d.calls, 1);
    assert_true(db_has_table(&pj, "stores"));
    assert_false(db_has_table(&pj, "sales"));
    expect_db_text(&pj, "select string_agg(source, ',') from _redduck_runs", "stores");
    rd_run_report_free(&rep);
    project_free(&pj);
}

static void test_a_source_named_twice_runs_once(void **state)
{
    (void)state;
    proj pj;
    project_new(&pj, "twice", "sales", "sql: select sale_id from sales\n", "stores",
                "sql: select store_id from sales\nvia: data-api\n", NULL);
    /* two runs of one source at once would race for its table (a DuckDB write-write conflict) */
    const char *names[] = { "stores", "sales", "stores", "sales" };
    rd_run_options o = run_options();
    o.only = names;
    o.nonly = 4;
    o.parallel = 4;
    rd_run_report rep;
    run_ok(&pj, &o, &rep);
    assert_int_equal(rep.count, 2);
    assert_int_equal(rep.failed, 0);
    assert_string_equal(rep.items[0].source, "stores"); /* in the order first named */
    assert_string_equal(rep.items[1].source, "sales");
    expect_ok(&rep.items[0]);
    expect_ok(&rep.items[1]);
    expect_db_text(&pj, "select string_agg(source, ',' order by source) from _redduck_runs", "sales,stores");
    assert_int_equal(db_int(&pj, "select count(*) from sales"), SALES_ROWS);
    rd_run_report_free(&rep);
    project_free(&pj);
}

static void test_a_failing_source_keeps_its_table_and_does_not_stop_the_others(void **state)
{
    (void)state;
    proj pj;
    project_new(&pj, "failing", "flaky", "sql: select sale_id from sales where sale_id <= 50\n", "sales",
                "sql: select sale_id, store_id from sales\n", NULL);
    rd_run_options o = run_options();
    rd_run_report rep;
    run_ok(&pj, &o, &rep);
    assert_int_equal(rep.failed, 0);
    rd_run_report_free(&rep);
    assert_int_equal(db_int(&pj, "select count(*) from flaky"), 50);
    /* flaky now asks for a table the warehouse lacks; one worker, flaky first: sales runs after it failed */
    put(pj.dir, "sources/flaky.yaml", "sql: select * from no_such_table\n");
    project_load(&pj);
    o.parallel = 1;
    run_ok(&pj, &o, &rep);
    assert_int_equal(rep.count, 2);
    assert_int_equal(rep.failed, 1);
    const rd_run_item *flaky = item_of(&rep, "flaky"), *sales = item_of(&rep, "sales");
    assert_int_not_equal(flaky->status, RD_OK);
    assert_int_equal(flaky->error.code, flaky->status);
    assert_non_null(strstr(flaky->error.message, "source flaky ("));
    assert_non_null(strstr(flaky->error.message, "no_such_table"));
    assert_int_equal(flaky->rows, 0);
    expect_ok(sales);
    assert_int_equal(sales->rows, SALES_ROWS);
    /* the previous table is intact */
    assert_int_equal(db_int(&pj, "select count(*) from flaky"), 50);
    assert_int_equal(db_int(&pj, "select max(sale_id) from flaky"), 50);
    assert_int_equal(db_int(&pj, "select count(*) from sales"), SALES_ROWS);
    /* every run recorded, the failure with its error */
    assert_int_equal(db_int(&pj, "select count(*) from _redduck_runs"), 4);
    expect_db_text(&pj,
                   "select string_agg(source || ':' || status, ' ' order by source, finished_at) from _redduck_runs",
                   "flaky:ok flaky:failed sales:ok sales:ok");
    char *e = db_text(&pj, "select error from _redduck_runs where status = 'failed'");
    assert_non_null(e);
    assert_non_null(strstr(e, "no_such_table"));
    free(e);
    rd_run_report_free(&rep);
    project_free(&pj);
}

static long long expected_store_sum(int n)
{
    long long sum = 0;
    for (int i = 1; i <= n; i++)
        sum += i % 7;
    return sum;
}

static void test_incremental_second_run_appends_only_newer_rows(void **state)
{
    (void)state;
    proj pj;
    project_new(&pj, "incremental", "events",
                "sql: select sale_id, store_id from events\nincremental:\n  column: sale_id\n", NULL);
    warehouse_sql(&pj, "create table events (sale_id bigint, store_id integer)");
    insert_events(&pj, 1, 40);
    rd_run_options o = run_options();
    rd_run_report rep;
    run_ok(&pj, &o, &rep);
    expect_ok(&rep.items[0]);
    assert_int_equal(rep.items[0].incremental, 1);
    assert_null(rep.items[0].watermark); /* no table yet */
    assert_int_equal(rep.items[0].rows, 40);
    rd_run_report_free(&rep);
    insert_events(&pj, 41, 55);
    run_ok(&pj, &o, &rep);
    expect_ok(&rep.items[0]);
    assert_non_null(rep.items[0].watermark);
    assert_string_equal(rep.items[0].watermark, "40");
    assert_int_equal(rep.items[0].rows, 15);
    rd_run_report_free(&rep);
    assert_int_equal(db_int(&pj, "select count(*) from events"), 55);
    assert_int_equal(db_int(&pj, "select count(distinct sale_id) from events"), 55);
    assert_int_equal(db_int(&pj, "select sum(store_id) from events"), expected_store_sum(55));
    /* nothing newer: nothing moves */
    run_ok(&pj, &o, &rep);
    expect_ok(&rep.items[0]);
    assert_string_equal(rep.items[0].watermark, "55");
    assert_int_equal(rep.items[0].rows, 0);
    rd_run_report_free(&rep);
    assert_int_equal(db_int(&pj, "select count(*) from events"), 55);
    expect_db_text(&pj, HISTORY_SQL,
                   "events:events:ok:40:" STR(SLICES) ":true:-:- events:events:ok:15:" STR(SLICES)
                   ":true:40:- events:events:ok:0:0:true:55:-");
    project_free(&pj);
}

/* Three sources into a fresh project NAME (*pj, freed by the caller after the report: its items borrow the
 * names) with `parallel` workers; the report and a digest of each table. */
static void run_three(proj *pj, const char *name, int parallel, done_log *d, rd_run_report *rep, char *digest[3])
{
    project_new(pj, name, "a_sales", "sql: select * from sales\ntable_name: sales\n", "b_stores",
                "sql: select store_id, count(*) as n from sales group by store_id\nvia: data-api\ntable_name: stores\n",
                "c_small", "sql: select sale_id, currency from sales where store_id < 100\ntable_name: small\n", NULL);
    rd_run_options o = run_options();
    o.parallel = parallel;
    o.on_done = on_done;
    o.on_done_ctx = d;
    run_ok(pj, &o, rep);
    digest[0] = db_text(pj, "select count(*) || ':' || md5(string_agg(t::varchar, '|' order by sale_id)) "
                            "from sales t");
    digest[1] = db_text(pj, "select count(*) || ':' || md5(string_agg(t::varchar, '|' order by store_id)) "
                            "from stores t");
    digest[2] = db_text(pj, "select count(*) || ':' || md5(string_agg(t::varchar, '|' order by sale_id)) "
                            "from small t");
}

static void test_parallel_gives_the_same_result_and_on_done_once_per_source(void **state)
{
    (void)state;
    done_log d1 = { 0 }, d3 = { 0 };
    rd_run_report r1, r3;
    char *g1[3], *g3[3];
    proj p1, p3; /* the items borrow their names from the projects */
    run_three(&p1, "serial", 1, &d1, &r1, g1);
    run_three(&p3, "parallel", 3, &d3, &r3, g3);
    assert_int_equal(r1.count, 3);
    assert_int_equal(r3.count, 3);
    assert_int_equal(r1.failed, 0);
    assert_int_equal(r3.failed, 0);
    for (size_t i = 0; i < 3; i++) {
        expect_ok(&r1.items[i]);
        expect_ok(&r3.items[i]);
        assert_string_equal(r1.items[i].source, r3.items[i].source);
        assert_string_equal(r1.items[i].table, r3.items[i].table);
        assert_int_equal(r1.items[i].rows, r3.items[i].rows);
        assert_int_equal(r1.items[i].files, r3.items[i].files);
        assert_non_null(g1[i]);
        assert_non_null(g3[i]);
        assert_string_equal(g1[i], g3[i]);
        free(g1[i]);
        free(g3[i]);
    }
    assert_int_equal(r3.items[0].rows, SALES_ROWS);
    assert_true(r3.items[2].rows > 0 && r3.items[2].rows < SALES_ROWS);
    /* on_done: once per source, with the report's own item, already final; never two at once */
    done_log *logs[] = { &d1, &d3 };
    rd_run_report *reps[] = { &r1, &r3 };
    for (int k = 0; k < 2; k++) {
        assert_int_equal(logs[k]->calls, 3);
        assert_int_equal(logs[k]->overlapped, 0);
        int seen[3] = { 0 };
        for (int c = 0; c < 3; c++) {
            const rd_run_item *it = logs[k]->items[c];
            assert_true(it >= reps[k]->items && it < reps[k]->items + 3);
            size_t i = (size_t)(it - reps[k]->items);
            seen[i]++;
            assert_int_equal(logs[k]->status[c], it->status);
            assert_int_equal(logs[k]->rows[c], it->rows);
        }
        assert_int_equal(seen[0], 1);
        assert_int_equal(seen[1], 1);
        assert_int_equal(seen[2], 1);
    }
    rd_run_report_free(&r1);
    rd_run_report_free(&r3);
    project_free(&p1);
    project_free(&p3);
}

static void test_cancel_before_the_run_starts_no_source(void **state)
{
    (void)state;
    proj pj;
    project_new(&pj, "cancelled", "sales", "sql: select sale_id from sales\n", "stores",
                "sql: select store_id from sales\nvia: data-api\n", NULL);
    volatile sig_atomic_t cancel = 1;
    done_log d = { 0 };
    rd_run_options o = run_options();
    o.cancel = &cancel;
    o.on_done = on_done;
    o.on_done_ctx = &d;
    rd_run_report rep;
    /* the run happens (RD_OK): each source is reported cancelled, not started */
    run_ok(&pj, &o, &rep);
    assert_int_equal(rep.count, 2);
    assert_int_equal(rep.failed, 2);
    for (size_t i = 0; i < rep.count; i++) {
        assert_int_equal(rep.items[i].status, RD_E_CANCELLED);
        assert_non_null(strstr(rep.items[i].error.message, "not started (interrupted)"));
        assert_non_null(strstr(rep.items[i].error.message, rep.items[i].source));
        assert_int_equal(rep.items[i].rows, 0);
    }
    assert_int_equal(d.calls, 2);
    /* nothing loaded, nothing recorded, nothing staged */
    assert_false(db_has_table(&pj, "sales"));
    assert_false(db_has_table(&pj, "stores"));
    assert_int_equal(db_int(&pj, "select count(*) from _redduck_runs"), 0);
    assert_int_equal(staged_files(&pj), 0);
    rd_run_report_free(&rep);
    project_free(&pj);
}

static void test_session_needs_explicit_keys_without_host_access(void **state)
{
    (void)state;
    proj pj;
    project_new(&pj, "session", "s", "sql: select 1\n", NULL);
    put(pj.dir, ".env", ""); /* no keys */
    project_load(&pj);
    const rd_connector *wh = rd_project_connector(&pj.p, "wh");
    assert_non_null(wh);
    assert_int_equal(wh->allow_host_access, 0);
    rd_session *s = (rd_session *)&pj; /* must be reset to NULL on failure */
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_project_session(&pj.p, wh, g.endpoint, 0, &s, &err), RD_E_CONFIG);
    assert_null(s);
    assert_non_null(strstr(err.message, "connector.wh.aws_access_key_id"));
    assert_non_null(strstr(err.message, "connector.wh.aws_secret_access_key"));
    assert_non_null(strstr(err.message, pj.dir));
    /* a run with it fails that source with the same message, before any AWS call */
    rd_run_options o = run_options();
    rd_run_report rep;
    run_ok(&pj, &o, &rep);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.items[0].status, RD_E_CONFIG);
    assert_non_null(strstr(rep.items[0].error.message, "connector.wh.aws_access_key_id"));
    rd_run_report_free(&rep);

    rd_connector c = *wh;
    /* one key of the two is no explicit keys; with host access on, it is refused too (not mixed with the
     * host's) */
    c.aws_access_key_id = "test";
    assert_int_equal(rd_project_session(&pj.p, &c, g.endpoint, 0, &s, &err), RD_E_CONFIG);
    assert_null(s);
    assert_non_null(strstr(err.message, "connector.wh.aws_secret_access_key"));
    c.allow_host_access = 1;
    assert_int_equal(rd_project_session(&pj.p, &c, g.endpoint, 0, &s, &err), RD_E_CONFIG);
    assert_null(s);
    assert_non_null(strstr(err.message, "only one of aws_access_key_id and aws_secret_access_key"));

    /* both: the explicit keys, not the host's; endpoint_url wins over the connector's (a closed port) */
    c.aws_secret_access_key = "test";
    c.endpoint_url = "http://127.0.0.1:9";
    assert_int_equal(rd_project_session(&pj.p, &c, g.endpoint, 0, &s, &err), RD_OK);
    assert_non_null(s);
    rd_credentials cr;
    assert_int_equal(rd_session_credentials(s, &cr, &err), RD_OK);
    assert_string_equal(cr.provider, "explicit");
    assert_string_equal(cr.access_key_id, "test");
    rd_credentials_free(&cr);
    rd_identity id = { 0 };
    if (rd_session_whoami(s, &id, &err) != RD_OK)
        fail_msg("whoami: %s", err.message);
    assert_non_null(id.account);
    assert_string_equal(id.account, "000000000000");
    rd_identity_free(&id);
    rd_session_free(s);

    /* host access on and no keys: the host's chain (here the environment's keys) */
    c.aws_access_key_id = c.aws_secret_access_key = NULL;
    assert_int_equal(rd_project_session(&pj.p, &c, NULL, 0, &s, &err), RD_OK);
    assert_int_equal(rd_session_credentials(s, &cr, &err), RD_OK);
    assert_string_equal(cr.provider, "env");
    assert_string_equal(cr.access_key_id, "AKIDHOSTONLY");
    rd_credentials_free(&cr);
    rd_session_free(s);
    project_free(&pj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_source_is_ingested_and_recorded),
        cmocka_unit_test(test_only_selects_and_an_unknown_name_fails_before_anything_runs),
        cmocka_unit_test(test_a_source_named_twice_runs_once),
        cmocka_unit_test(test_a_failing_source_keeps_its_table_and_does_not_stop_the_others),
        cmocka_unit_test(test_incremental_second_run_appends_only_newer_rows),
        cmocka_unit_test(test_parallel_gives_the_same_result_and_on_done_once_per_source),
        cmocka_unit_test(test_cancel_before_the_run_starts_no_source),
        cmocka_unit_test(test_session_needs_explicit_keys_without_host_access),
    };
    return cmocka_run_group_tests_name("project_runner", tests, world_setup, world_teardown);
}
