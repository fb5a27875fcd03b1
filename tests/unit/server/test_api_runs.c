/* test_api_runs.c — the refresh calls of the /v1 API in-process (port 0, a real store over a temporary data
 * dir, driven with libcurl), with runs, log lines and a snapshot written straight into the store as the
 * scheduler would: the JSON shapes of status, runs, one run and logs (ISO times, nulls where not set, newest
 * first), source/limit/since filters, a viewer reading but refused a refresh (403), a run of another project
 * answering 404, bad query parameters answering 400 naming the parameter and never echoing a long value, the
 * logs long-poll returning as soon as another thread appends a line or ends the run (and after the wait when
 * nothing comes), and 503 for a refresh on an API without a scheduler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api_test_util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "httpd/httpd.h"
#include "server/api.h"
#include "server/store.h"

typedef struct fixture {
    rd_test_server s;
    char viewer[RD_TOKEN_LEN + 1], editor[RD_TOKEN_LEN + 1], outsider[RD_TOKEN_LEN + 1];
    int64_t sales_old, sales_new, orders, running, other; /* run ids */
    int64_t t0;                                          /* Unix ms the runs were queued from */
} fixture;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A run as the scheduler leaves it: inserted queued, then updated to its state with its figures. */
static int64_t add_run(fixture *f, const char *project, const char *source, rd_run_state state, int64_t queued_at,
                       uint64_t rows, const char *error)
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
    r.triggered_by = (char *)"ed";
    r.state = RD_RUN_QUEUED;
    r.queued_at = queued_at;
    int64_t id = 0;
    assert_int_equal(rd_store_run_insert(f->s.st, &r, &id, &err), RD_OK);
    if (state == RD_RUN_QUEUED)
        return id;
    r.id = id;
    r.state = state;
    r.attempts = 1;
    r.started_at = queued_at + 1000;
    if (state != RD_RUN_RUNNING) {
        r.finished_at = queued_at + 3500;
        r.rows = rows;
        r.bytes = rows * 10;
        r.files = 2;
        r.probe_s = 0.5;
        r.unload_s = 1.0;
        r.download_s = 0.5;
        r.commit_s = 0.25;
        r.cleanup_s = 0.25;
        r.total_s = 2.5;
        r.error = (char *)error;
    }
    assert_int_equal(rd_store_run_update(f->s.st, &r, &err), RD_OK);
    return id;
}

static void append_line(fixture *f, int64_t run, const char *line)
{
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_store_run_log_append(f->s.st, run, line, &err), RD_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    static const char *const projects[] = { "demo", "other", NULL };
    if (!f || rd_test_server_open(&f->s, "rd-api-runs", projects) != 0)
        return -1;
    *state = f;
    rd_test_server_user(&f->s, "vera", "demo", RD_ROLE_VIEWER, 0, f->viewer);
    rd_test_server_user(&f->s, "ed", "demo", RD_ROLE_EDITOR, 0, f->editor);
    rd_test_server_user(&f->s, "otto", "demo", RD_ROLE_NONE, 0, f->outsider);
    rd_error err;
    rd_error_clear(&err);
    static const char sha[] = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";
    if (rd_store_deploy(f->s.st, "ed", "demo", "projects/demo/v1", sha, NULL, &err) != RD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    f->t0 = now_ms() - 600000; /* ten minutes ago, whole seconds apart */
    f->t0 -= f->t0 % 1000;
    f->sales_old = add_run(f, "demo", "sales", RD_RUN_SUCCESS, f->t0, 150, NULL);
    f->orders = add_run(f, "demo", "orders", RD_RUN_FAILED, f->t0 + 60000, 0, "Redshift said no: try again");
    f->sales_new = add_run(f, "demo", "sales", RD_RUN_SUCCESS, f->t0 + 120000, 200, NULL);
    f->running = add_run(f, "demo", "live", RD_RUN_RUNNING, f->t0 + 180000, 0, NULL);
    f->other = add_run(f, "other", "sales", RD_RUN_SUCCESS, f->t0 + 240000, 7, NULL);
    rd_store_snapshot s;
    memset(&s, 0, sizeof s);
    char path[400];
    snprintf(path, sizeof path, "%s/projects/demo/snapshots/1.duckdb", f->s.data);
    s.project = (char *)"demo";
    s.path = path;
    s.sha256 = (char *)"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    s.size = 12288;
    s.created_at_ms = f->t0 + 125000;
    s.run_id = f->sales_new;
    s.tables_json = (char *)"[{\"name\":\"sales\",\"rows\":200}]";
    assert_int_equal(rd_store_snapshot_publish(f->s.st, &s, NULL, &err), RD_OK);
    return rd_test_server_start(&f->s, NULL, 4);
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_test_server_close(&f->s);
    free(f);
    return 0;
}

/* ---- requests ------------------------------------------------------------------------------------------ */

typedef rd_test_answer answer;

/* One call (body may be NULL); the answer's body in a->body (freed by the caller). */
static long call(const fixture *f, const char *method, const char *path, const char *token, const char *body,
                 answer *a)
{
    memset(a, 0, sizeof *a);
    rd_test_request r = { .method = method, .path = path, .token = token, .content_type = "application/json",
                          .body = body };
    long st = rd_test_http(&f->s, &r, a);
    rd_buf_free(&a->headers);
    return st;
}

/* The JSON of a call expected to answer want. */
static json_t *get_json(const fixture *f, const char *method, const char *path, const char *token,
                        const char *body, long want)
{
    answer a;
    long s = call(f, method, path, token, body, &a);
    if (s != want)
        fprintf(stderr, "%s %s: %ld %s\n", method, path, s, rd_buf_cstr(&a.body));
    assert_int_equal(s, want);
    json_t *j = json_loadb(a.body.data ? a.body.data : "", a.body.len, 0, NULL);
    rd_buf_free(&a.body);
    assert_non_null(j);
    return j;
}

/* The error message of a call expected to fail with want and code. */
static void expect_error(const fixture *f, const char *method, const char *path, const char *token,
                         const char *body, long want, const char *code, const char *in_message)
{
    json_t *j = get_json(f, method, path, token, body, want);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    const char *m = json_string_value(json_object_get(e, "message"));
    assert_non_null(m);
    if (in_message && !strstr(m, in_message)) {
        fprintf(stderr, "%s %s: message \"%s\" lacks \"%s\"\n", method, path, m, in_message);
        fail();
    }
    json_decref(j);
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    assert_true(json_is_integer(v));
    return (int64_t)json_integer_value(v);
}

static void iso_of(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Every field of a run object, with the values add_run gave a finished run. */
static void check_finished_run(const json_t *r, int64_t id, const char *source, int64_t queued_at, int64_t rows,
                               const char *state)
{
    static const char *const keys[] = { "id", "source", "table", "version", "trigger", "triggered_by", "state",
                                        "attempts", "queued_at", "started_at", "finished_at", "duration_s", "rows",
                                        "bytes", "files", "phases", "error" };
    assert_int_equal(json_object_size(r), sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(json_object_get(r, keys[i]));
    assert_int_equal(num(r, "id"), id);
    assert_string_equal(str(r, "source"), source);
    assert_string_equal(str(r, "table"), source);
    assert_int_equal(num(r, "version"), 1);
    assert_string_equal(str(r, "trigger"), "manual");
    assert_string_equal(str(r, "triggered_by"), "ed");
    assert_string_equal(str(r, "state"), state);
    assert_int_equal(num(r, "attempts"), 1);
    char t[32];
    iso_of(queued_at, t);
    assert_string_equal(str(r, "queued_at"), t);
    iso_of(queued_at + 1000, t);
    assert_string_equal(str(r, "started_at"), t);
    iso_of(queued_at + 3500, t);
    assert_string_equal(str(r, "finished_at"), t);
    assert_true(json_is_number(json_object_get(r, "duration_s")));
    assert_true(json_number_value(json_object_get(r, "duration_s")) > 2.4 &&
                json_number_value(json_object_get(r, "duration_s")) < 2.6);
    assert_int_equal(num(r, "rows"), rows);
    assert_int_equal(num(r, "bytes"), rows * 10);
    assert_int_equal(num(r, "files"), 2);
    const json_t *ph = json_object_get(r, "phases");
    assert_int_equal(json_object_size(ph), 5);
    assert_true(json_number_value(json_object_get(ph, "unload_s")) > 0.99 &&
                json_number_value(json_object_get(ph, "unload_s")) < 1.01);
    assert_true(json_is_number(json_object_get(ph, "probe_s")) && json_is_number(json_object_get(ph, "download_s")) &&
                json_is_number(json_object_get(ph, "commit_s")) && json_is_number(json_object_get(ph, "cleanup_s")));
}

/* ---- tests --------------------------------------------------------------------------------------------- */

static void test_status_shape(void **state)
{
    fixture *f = *state;
    json_t *j = get_json(f, "GET", "/v1/projects/demo/status", f->viewer, NULL, 200);
    assert_string_equal(str(j, "project"), "demo");
    assert_int_equal(num(j, "active_version"), 1);
    json_t *s = json_object_get(j, "snapshot");
    assert_true(json_is_integer(json_object_get(s, "id")));
    char t[32];
    iso_of(f->t0 + 125000, t);
    assert_string_equal(str(s, "created_at"), t);
    assert_string_equal(str(s, "sha256"), "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_int_equal(num(s, "size"), 12288);
    /* no scheduler: the sources that have run, sorted, each with its newest run */
    json_t *src = json_object_get(j, "sources");
    assert_int_equal(json_array_size(src), 3);
    const char *names[] = { "live", "orders", "sales" };
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_array_get(src, i);
        assert_string_equal(str(x, "name"), names[i]);
        assert_string_equal(str(x, "table"), names[i]);
        assert_true(json_is_null(json_object_get(x, "schedule")));
        assert_true(json_is_null(json_object_get(x, "next_run")));
        assert_true(json_is_boolean(json_object_get(x, "running")));
    }
    json_t *live = json_array_get(src, 0), *orders = json_array_get(src, 1), *sales = json_array_get(src, 2);
    assert_true(json_is_true(json_object_get(live, "running")));
    json_t *lr = json_object_get(live, "last_run");
    assert_string_equal(str(lr, "state"), "running");
    /* a running run: no end, no figures yet */
    assert_true(json_is_null(json_object_get(lr, "finished_at")));
    assert_true(json_is_null(json_object_get(lr, "duration_s")));
    assert_true(json_is_null(json_object_get(lr, "rows")));
    assert_true(json_is_null(json_object_get(json_object_get(lr, "phases"), "unload_s")));
    assert_true(json_is_null(json_object_get(lr, "error")));
    assert_true(json_is_string(json_object_get(lr, "started_at")));
    assert_false(json_is_true(json_object_get(sales, "running")));
    check_finished_run(json_object_get(sales, "last_run"), f->sales_new, "sales", f->t0 + 120000, 200, "success");
    assert_true(json_is_null(json_object_get(json_object_get(sales, "last_run"), "error")));
    json_t *or = json_object_get(orders, "last_run");
    check_finished_run(or, f->orders, "orders", f->t0 + 60000, 0, "failed");
    assert_string_equal(str(or, "error"), "Redshift said no: try again");
    json_decref(j);

    /* another project: its own sources only; a project without snapshot or deployment gives nulls */
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_store_role_grant(f->s.st, "test", "vera", "other", RD_ROLE_VIEWER, 0, &err), RD_OK);
    j = get_json(f, "GET", "/v1/projects/other/status", f->viewer, NULL, 200);
    assert_true(json_is_null(json_object_get(j, "active_version")));
    assert_true(json_is_null(json_object_get(j, "snapshot")));
    assert_int_equal(json_array_size(json_object_get(j, "sources")), 1);
    assert_int_equal(num(json_object_get(json_array_get(json_object_get(j, "sources"), 0), "last_run"), "rows"), 7);
    json_decref(j);
}

static void test_runs_list_and_filters(void **state)
{
    fixture *f = *state;
    json_t *j = get_json(f, "GET", "/v1/projects/demo/runs", f->viewer, NULL, 200);
    json_t *runs = json_object_get(j, "runs");
    int64_t want[] = { f->running, f->sales_new, f->orders, f->sales_old }; /* newest first, no other project's */
    assert_int_equal(json_array_size(runs), 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(num(json_array_get(runs, i), "id"), want[i]);
    check_finished_run(json_array_get(runs, 3), f->sales_old, "sales", f->t0, 150, "success");
    json_decref(j);

    j = get_json(f, "GET", "/v1/projects/demo/runs?source=sales", f->viewer, NULL, 200);
    runs = json_object_get(j, "runs");
    assert_int_equal(json_array_size(runs), 2);
    assert_int_equal(num(json_array_get(runs, 0), "id"), f->sales_new);
    assert_int_equal(num(json_array_get(runs, 1), "id"), f->sales_old);
    json_decref(j);

    j = get_json(f, "GET", "/v1/projects/demo/runs?source=sales&limit=1", f->viewer, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 1);
    assert_int_equal(num(json_array_get(json_object_get(j, "runs"), 0), "id"), f->sales_new);
    json_decref(j);

    /* since: queued at or after; the colons may come percent-encoded */
    char t[32], path[200];
    iso_of(f->t0 + 60000, t);
    snprintf(path, sizeof path, "/v1/projects/demo/runs?since=%s", t);
    j = get_json(f, "GET", path, f->viewer, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 3);
    json_decref(j);
    char enc[64];
    size_t k = 0;
    for (const char *p = t; *p; p++)
        k += (size_t)snprintf(enc + k, sizeof enc - k, *p == ':' ? "%%3A" : "%c", *p);
    snprintf(path, sizeof path, "/v1/projects/demo/runs?since=%s&source=orders", enc);
    j = get_json(f, "GET", path, f->viewer, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 1);
    json_decref(j);
    j = get_json(f, "GET", "/v1/projects/demo/runs?since=2999-01-01T00:00:00Z", f->viewer, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 0);
    json_decref(j);
    j = get_json(f, "GET", "/v1/projects/demo/runs?source=nosuch", f->viewer, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 0);
    json_decref(j);
}

static void test_run_get_and_other_projects_run(void **state)
{
    fixture *f = *state;
    char path[200];
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld", (long long)f->orders);
    json_t *j = get_json(f, "GET", path, f->viewer, NULL, 200);
    check_finished_run(j, f->orders, "orders", f->t0 + 60000, 0, "failed");
    json_decref(j);
    /* the run of another project is not told apart from no run at all */
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld", (long long)f->other);
    expect_error(f, "GET", path, f->viewer, NULL, 404, "NotFound", "has no run");
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs", (long long)f->other);
    expect_error(f, "GET", path, f->viewer, NULL, 404, "NotFound", "has no run");
    expect_error(f, "GET", "/v1/projects/demo/runs/99999999", f->viewer, NULL, 404, "NotFound", "has no run");
    expect_error(f, "GET", "/v1/projects/demo/runs/abc", f->viewer, NULL, 404, "NotFound", NULL);
    expect_error(f, "GET", "/v1/projects/demo/runs/0", f->viewer, NULL, 404, "NotFound", NULL);
    /* a member of no project learns nothing */
    expect_error(f, "GET", "/v1/projects/demo/status", f->outsider, NULL, 404, "NotFound", NULL);
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld", (long long)f->orders);
    expect_error(f, "GET", path, f->outsider, NULL, 404, "NotFound", NULL);
}

static void test_bad_query_parameters(void **state)
{
    fixture *f = *state;
    char path[300];
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs", (long long)f->orders);
    const struct {
        const char *q;
        const char *names;
    } runs_bad[] = {
        { "limit=0", "limit" },     { "limit=1001", "limit" }, { "limit=abc", "limit" },  { "limit=-1", "limit" },
        { "limit=", "limit" },      { "since=yesterday", "since" }, { "since=2026-13-01T00:00:00Z", "since" },
        { "since=", "since" },      { "source=", "source" },   { "source=a%2Fb", "source" }, { "source=%zz", "source" },
        { "bogus=1", "bogus" },
    };
    for (size_t i = 0; i < sizeof runs_bad / sizeof runs_bad[0]; i++) {
        char p[200];
        snprintf(p, sizeof p, "/v1/projects/demo/runs?%s", runs_bad[i].q);
        expect_error(f, "GET", p, f->viewer, NULL, 400, "BadRequest", runs_bad[i].names);
    }
    const struct {
        const char *q;
        const char *names;
    } logs_bad[] = { { "after=-1", "after" }, { "after=x", "after" }, { "wait=31", "wait" },
                     { "wait=1.5", "wait" },  { "source=a", "source" } };
    for (size_t i = 0; i < sizeof logs_bad / sizeof logs_bad[0]; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s?%s", path, logs_bad[i].q);
        expect_error(f, "GET", p, f->viewer, NULL, 400, "BadRequest", logs_bad[i].names);
    }
    /* a long value is never echoed back */
    char longp[900];
    int n = snprintf(longp, sizeof longp, "/v1/projects/demo/runs?since=");
    for (int i = 0; i < 500; i++)
        longp[n++] = 'Q';
    longp[n] = 0;
    answer a;
    assert_int_equal(call(f, "GET", longp, f->viewer, NULL, &a), 400);
    assert_null(strstr(rd_buf_cstr(&a.body), "QQQQ"));
    rd_buf_free(&a.body);
    snprintf(longp, sizeof longp, "/v1/projects/demo/runs?limit=");
    n = (int)strlen(longp);
    for (int i = 0; i < 300; i++)
        longp[n++] = '7';
    longp[n] = 0;
    assert_int_equal(call(f, "GET", longp, f->viewer, NULL, &a), 400);
    assert_null(strstr(rd_buf_cstr(&a.body), "7777"));
    rd_buf_free(&a.body);
}

static void test_refresh_roles_body_and_503(void **state)
{
    fixture *f = *state;
    /* a viewer reads everything but may not refresh */
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->viewer, "{}", 403, "Forbidden", "viewer");
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->outsider, "{}", 404, "NotFound", NULL);
    /* a bad body is a 400 before anything else */
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->editor, "{\"sources\":\"sales\"}", 400, "BadRequest",
                 "sources");
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->editor, "{\"bogus\":[]}", 400, "BadRequest", "bogus");
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->editor, "[1]", 400, "BadRequest", NULL);
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->editor, "{\"sources\":[\"a\",\"a\"]}", 400, "BadRequest",
                 "twice");
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->editor, "{\"sources\":[\"a/b\"]}", 400, "BadRequest",
                 "sources[0]");
    /* a long name (multi-byte letters) is shown cut at a character boundary, never whole */
    char body[600], name[260];
    size_t k = 0;
    while (k + 2 < 200) {
        memcpy(name + k, "\xc3\xa9", 2); /* é */
        k += 2;
    }
    name[k] = 0;
    snprintf(body, sizeof body, "{\"sources\":[\"%s\",\"%s\"]}", name, name);
    json_t *j = get_json(f, "POST", "/v1/projects/demo/refresh", f->editor, body, 400);
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    assert_non_null(m);
    assert_non_null(strstr(m, "named twice"));
    assert_non_null(strstr(m, "..."));
    assert_null(strstr(m, name));
    json_decref(j);
    /* this API has no scheduler: 503, for every form of the body */
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->editor, NULL, 503, "Unavailable", "scheduler");
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->editor, "{}", 503, "Unavailable", "scheduler");
    expect_error(f, "POST", "/v1/projects/demo/refresh", f->s.admin, "{\"sources\":[\"sales\"]}", 503, "Unavailable",
                 NULL);
    /* the other calls answer without one */
    expect_error(f, "GET", "/v1/projects/demo/refresh", f->editor, NULL, 405, "MethodNotAllowed", NULL);
    expect_error(f, "POST", "/v1/projects/demo/status", f->editor, "{}", 405, "MethodNotAllowed", NULL);
}

/* ---- logs ------------------------------------------------------------------------------------------------ */

typedef struct later {
    fixture *f;
    int64_t run;
    long delay_ms;
    const char *line; /* appended after delay_ms; NULL: the run is ended (success) instead */
} later;

static void *do_later(void *arg)
{
    later *l = arg;
    struct timespec ts = { l->delay_ms / 1000, (l->delay_ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    rd_error err;
    rd_error_clear(&err);
    if (l->line) {
        if (rd_store_run_log_append(l->f->s.st, l->run, l->line, &err) != RD_OK)
            fprintf(stderr, "append: %s\n", err.message);
    } else {
        rd_store_run r;
        memset(&r, 0, sizeof r);
        if (rd_store_run_get(l->f->s.st, l->run, &r, &err) == RD_OK) {
            r.state = RD_RUN_SUCCESS;
            r.finished_at = now_ms();
            r.rows = 5;
            if (rd_store_run_update(l->f->s.st, &r, &err) != RD_OK)
                fprintf(stderr, "update: %s\n", err.message);
            rd_store_run_clear(&r);
        }
    }
    return NULL;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_logs_and_long_poll(void **state)
{
    fixture *f = *state;
    /* a finished run: its lines in order, done */
    append_line(f, f->orders, "orders: started");
    append_line(f, f->orders, "orders: failed: Redshift said no");
    char path[300];
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs", (long long)f->orders);
    json_t *j = get_json(f, "GET", path, f->viewer, NULL, 200);
    json_t *run = json_object_get(j, "run");
    assert_int_equal(num(run, "id"), f->orders);
    assert_string_equal(str(run, "state"), "failed");
    json_t *lines = json_object_get(j, "lines");
    assert_int_equal(json_array_size(lines), 2);
    assert_int_equal(num(json_array_get(lines, 0), "seq"), 1);
    assert_string_equal(str(json_array_get(lines, 0), "line"), "orders: started");
    assert_int_equal(num(json_array_get(lines, 1), "seq"), 2);
    assert_true(json_is_string(json_object_get(json_array_get(lines, 1), "at")));
    assert_int_equal(strlen(str(json_array_get(lines, 1), "at")), 20);
    assert_true(json_is_true(json_object_get(j, "done")));
    json_decref(j);
    /* after the last one: nothing, still done, at once even when asked to wait */
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs?after=2&wait=10", (long long)f->orders);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    j = get_json(f, "GET", path, f->viewer, NULL, 200);
    assert_true(seconds_since(&t0) < 2.0);
    assert_int_equal(json_array_size(json_object_get(j, "lines")), 0);
    assert_true(json_is_true(json_object_get(j, "done")));
    json_decref(j);

    /* a running run: what is there, not done */
    append_line(f, f->running, "live: started");
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs?after=0", (long long)f->running);
    j = get_json(f, "GET", path, f->viewer, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "lines")), 1);
    assert_false(json_is_true(json_object_get(j, "done")));
    assert_string_equal(str(json_object_get(j, "run"), "state"), "running");
    json_decref(j);
    /* no wait: answers at once with nothing new */
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs?after=1", (long long)f->running);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    j = get_json(f, "GET", path, f->viewer, NULL, 200);
    assert_true(seconds_since(&t0) < 1.0);
    assert_int_equal(json_array_size(json_object_get(j, "lines")), 0);
    assert_false(json_is_true(json_object_get(j, "done")));
    json_decref(j);
    /* a wait with nothing coming: the answer after about that long */
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs?after=1&wait=1", (long long)f->running);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    j = get_json(f, "GET", path, f->viewer, NULL, 200);
    double took = seconds_since(&t0);
    assert_true(took >= 0.9 && took < 3.0);
    assert_int_equal(json_array_size(json_object_get(j, "lines")), 0);
    json_decref(j);

    /* the long-poll returns as soon as another thread appends a line */
    later l = { f, f->running, 400, "live: unloading" };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, do_later, &l), 0);
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs?after=1&wait=20", (long long)f->running);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    j = get_json(f, "GET", path, f->viewer, NULL, 200);
    took = seconds_since(&t0);
    pthread_join(th, NULL);
    assert_true(took >= 0.3 && took < 5.0);
    lines = json_object_get(j, "lines");
    assert_int_equal(json_array_size(lines), 1);
    assert_int_equal(num(json_array_get(lines, 0), "seq"), 2);
    assert_string_equal(str(json_array_get(lines, 0), "line"), "live: unloading");
    assert_false(json_is_true(json_object_get(j, "done")));
    json_decref(j);

    /* ... and as soon as the run ends, with done */
    later e = { f, f->running, 400, NULL };
    assert_int_equal(pthread_create(&th, NULL, do_later, &e), 0);
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs?after=2&wait=20", (long long)f->running);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    j = get_json(f, "GET", path, f->viewer, NULL, 200);
    took = seconds_since(&t0);
    pthread_join(th, NULL);
    assert_true(took >= 0.3 && took < 5.0);
    assert_int_equal(json_array_size(json_object_get(j, "lines")), 0);
    assert_true(json_is_true(json_object_get(j, "done")));
    assert_string_equal(str(json_object_get(j, "run"), "state"), "success");
    json_decref(j);
}

/* A long poll holds up only its own connection: more waiting followers than the server has threads, and
 * a health check still answers at once. */
typedef struct poller {
    fixture *f;
    long status;
} poller;

static void *poll_main(void *arg)
{
    poller *p = arg;
    char path[300];
    snprintf(path, sizeof path, "/v1/projects/demo/runs/%lld/logs?after=100&wait=5", (long long)p->f->running);
    answer a;
    p->status = call(p->f, "GET", path, p->f->viewer, NULL, &a);
    rd_buf_free(&a.body);
    return NULL;
}

static void test_long_polls_do_not_hold_up_others(void **state)
{
    fixture *f = *state;
    enum { POLLERS = 12 }; /* three times the fixture's thread count (a pool would serve 4 at once) */
    pthread_t th[POLLERS];
    poller p[POLLERS];
    for (int i = 0; i < POLLERS; i++) {
        p[i].f = f;
        p[i].status = 0;
        assert_int_equal(pthread_create(&th[i], NULL, poll_main, &p[i]), 0);
    }
    struct timespec pause = { 0, 500 * 1000000L }; /* the polls are in and waiting */
    nanosleep(&pause, NULL);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 8; i++) {
        answer a;
        assert_int_equal(call(f, "GET", "/v1/health", NULL, NULL, &a), 200);
        rd_buf_free(&a.body);
    }
    double took = seconds_since(&t0);
    if (took >= 2.5)
        fail_msg("8 health checks took %.1f s behind %d long polls", took, POLLERS);
    for (int i = 0; i < POLLERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(p[i].status, 200);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_list_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_get_and_other_projects_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_query_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_roles_body_and_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_and_long_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_polls_do_not_hold_up_others, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
