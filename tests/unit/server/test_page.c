/* test_page.c — the status page in-process (rd_httpd on port 0 with the API's handler over a real store in a
 * temporary data dir), driven with libcurl: the login form with a good and a bad token (percent-decoding, the
 * cookie's attributes, no Secure over plain HTTP, the failure counter's 429), the security headers, the
 * dashboard listing each member's projects with their sources, runs, failures, snapshot and charts (one point
 * per ended run of the last 30 days), names and errors from the store escaped, the refresh form's CSRF and
 * role checks (403 without or with a wrong token, for a viewer, from another origin; 503 without a
 * scheduler), expired, unknown and malformed sessions, a removed user's session, logout, 404 and 405. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api_test_util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "httpd/httpd.h"
#include "server/api.h"
#include "server/api_internal.h"
#include "server/page_internal.h"
#include "server/scheduler.h"
#include "server/store.h"

#define XSS_SOURCE "<img src=x onerror=alert(1)>"
#define XSS_ESCAPED "&lt;img src=x onerror=alert(1)&gt;"

typedef struct fixture {
    rd_test_server s;
    rd_scheduler *sched;
    int64_t clock; /* the page's clock (Unix seconds) when set */
    char editor[RD_TOKEN_LEN + 1], viewer[RD_TOKEN_LEN + 1], outsider[RD_TOKEN_LEN + 1];
} fixture;

static int64_t test_clock(void *ctx)
{
    return ((fixture *)ctx)->clock;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup_with(void **state, int use_clock, int use_scheduler)
{
    fixture *f = calloc(1, sizeof *f);
    static const char *const projects[] = { "demo", "other", NULL };
    if (!f || rd_test_server_open(&f->s, "rd-page", projects) != 0)
        return -1;
    *state = f;
    rd_test_server_user(&f->s, "ed", "demo", RD_ROLE_EDITOR, 0, f->editor);
    rd_test_server_user(&f->s, "vera", "demo", RD_ROLE_VIEWER, 0, f->viewer);
    rd_test_server_user(&f->s, "otto", "demo", RD_ROLE_NONE, 0, f->outsider);
    rd_error err;
    rd_error_clear(&err);
    if (use_scheduler) {
        rd_scheduler_options so = { .data_dir = f->s.data, .store = f->s.st, .max_concurrent_runs = 1 };
        assert_int_equal(rd_scheduler_start(&so, &f->sched, &err), RD_OK);
    }
    rd_api_options ao = { .auth_failures = 3, .scheduler = f->sched };
    if (rd_test_server_start(&f->s, &ao, 2) != 0)
        return -1;
    if (use_clock) {
        f->clock = 1800000000;
        rd_page_set_clock(f->s.api->page, test_clock, f);
    }
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0, 0);
}

static int setup_clock(void **state)
{
    return setup_with(state, 1, 0);
}

static int setup_scheduler(void **state)
{
    return setup_with(state, 0, 1);
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_httpd_stop(f->s.d); /* no request reaches the scheduler once it stops */
    f->s.d = NULL;
    rd_scheduler_stop(f->sched);
    rd_test_server_close(&f->s);
    free(f);
    return 0;
}

/* ---- requests -------------------------------------------------------------------------------------------- */

typedef rd_test_answer answer;
#define header rd_test_answer_header
#define answer_free rd_test_answer_free

/* One request. cookie: the rd_session value or NULL; form: an urlencoded body or NULL; extra: one more header
 * line or NULL. */
static long request(const fixture *f, const char *method, const char *path, const char *cookie, const char *form,
                    const char *extra, answer *a)
{
    memset(a, 0, sizeof *a);
    char ck[256];
    const char *lines[3] = { NULL, NULL, NULL };
    size_t n = 0;
    if (cookie) {
        snprintf(ck, sizeof ck, "Cookie: theme=dark; rd_session=%s", cookie);
        lines[n++] = ck;
    }
    if (extra)
        lines[n++] = extra;
    rd_test_request r = { .method = method, .path = path, .body = form, .extra = lines,
                          .content_type = form ? "application/x-www-form-urlencoded" : NULL };
    return rd_test_http(&f->s, &r, a);
}

static const char *body(const answer *a)
{
    return rd_buf_cstr(&a->body);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Logs in with token (sent percent-encoded, every byte as %XX); the session id into id (65 bytes). */
static void login(const fixture *f, const char *token, char id[65])
{
    char form[512] = "token=";
    size_t o = strlen(form);
    for (const unsigned char *p = (const unsigned char *)token; *p; p++)
        o += (size_t)snprintf(form + o, sizeof form - o, "%%%02X", *p);
    answer a;
    assert_int_equal(request(f, "POST", "/login", NULL, form, NULL, &a), 303);
    char sc[256], loc[64];
    header(&a, "Set-Cookie", sc, sizeof sc);
    assert_string_equal(header(&a, "Location", loc, sizeof loc), "/");
    assert_int_equal(strncmp(sc, "rd_session=", 11), 0);
    const char *semi = strchr(sc, ';');
    assert_non_null(semi);
    assert_int_equal(semi - sc - 11, 64);
    memcpy(id, sc + 11, 64);
    id[64] = 0;
    answer_free(&a);
}

/* The session's CSRF token as the page puts it into its forms (the logout form is on every page). */
static void csrf_of(const fixture *f, const char *id, char out[65])
{
    answer a;
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    const char *p = strstr(body(&a), "name=\"csrf\" value=\"");
    assert_non_null(p);
    p += strlen("name=\"csrf\" value=\"");
    const char *q = strchr(p, '"');
    assert_non_null(q);
    assert_int_equal(q - p, 64);
    memcpy(out, p, 64);
    out[64] = 0;
    answer_free(&a);
}

static int is_login_page(const answer *a)
{
    return strstr(body(a), "action=\"/login\"") != NULL && strstr(body(a), "name=\"token\"") != NULL;
}

/* A run of project demo, inserted and then given its end. */
static int64_t add_run(fixture *f, const char *source, rd_run_state state, int64_t finished_ms, uint64_t rows,
                       double seconds, const char *error)
{
    rd_error err;
    rd_error_clear(&err);
    rd_store_run r;
    memset(&r, 0, sizeof r);
    r.project = "demo";
    r.source = (char *)source;
    r.table_name = "t";
    r.version = 1;
    r.trigger = RD_TRIGGER_SCHEDULE;
    r.triggered_by = "scheduler";
    r.state = RD_RUN_QUEUED;
    r.queued_at = finished_ms - (int64_t)(seconds * 1000) - 10;
    int64_t id = 0;
    assert_int_equal(rd_store_run_insert(f->s.st, &r, &id, &err), RD_OK);
    r.id = id;
    r.state = state;
    r.attempts = 1;
    if (state != RD_RUN_QUEUED) {
        r.started_at = finished_ms - (int64_t)(seconds * 1000);
        if (state != RD_RUN_RUNNING)
            r.finished_at = finished_ms;
    }
    r.rows = rows;
    r.total_s = seconds;
    r.error = (char *)error;
    assert_int_equal(rd_store_run_update(f->s.st, &r, &err), RD_OK);
    return id;
}

/* The part of html from the chart of metric ("duration", "rows") to its end. */
static char *chart_of(const char *html, const char *metric)
{
    char key[64];
    snprintf(key, sizeof key, "data-metric=\"%s\"", metric);
    const char *p = strstr(html, key);
    assert_non_null(p);
    const char *e = strstr(p, "</svg>");
    assert_non_null(e);
    return strndup(p, (size_t)(e - p));
}

/* ---- the tests ------------------------------------------------------------------------------------------- */

static void test_login_page_and_headers(void **state)
{
    fixture *f = *state;
    answer a;
    assert_int_equal(request(f, "GET", "/", NULL, NULL, NULL, &a), 200);
    assert_true(is_login_page(&a));
    char v[512];
    assert_string_equal(header(&a, "Content-Type", v, sizeof v), "text/html; charset=utf-8");
    assert_string_equal(header(&a, "Content-Security-Policy", v, sizeof v),
                        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
                        "frame-ancestors 'none'; base-uri 'none'");
    assert_string_equal(header(&a, "X-Content-Type-Options", v, sizeof v), "nosniff");
    assert_string_equal(header(&a, "Referrer-Policy", v, sizeof v), "no-referrer");
    assert_string_equal(header(&a, "Cache-Control", v, sizeof v), "no-store");
    assert_string_equal(header(&a, "Set-Cookie", v, sizeof v), ""); /* no cookie sent, none cleared */
    assert_null(strstr(body(&a), "<script"));
    answer_free(&a);
}

static void test_login_good_and_bad_token(void **state)
{
    fixture *f = *state;
    answer a;
    char v[512];
    /* a wrong token: the login page again with a message, no cookie */
    assert_int_equal(request(f, "POST", "/login", NULL, "token=rdk_wrong", NULL, &a), 401);
    assert_true(is_login_page(&a));
    assert_non_null(strstr(body(&a), "not accepted"));
    assert_null(strstr(body(&a), "rdk_wrong"));
    assert_string_equal(header(&a, "Set-Cookie", v, sizeof v), "");
    answer_free(&a);
    /* a NUL inside the value, a broken escape: refused */
    assert_int_equal(request(f, "POST", "/login", NULL, "token=rdk_%00x", NULL, &a), 401);
    answer_free(&a);
    /* not a form */
    assert_int_equal(request(f, "POST", "/login", NULL, NULL, "Content-Type: application/json", &a), 400);
    answer_free(&a);
    /* the good token, every byte percent-encoded, among other fields */
    char form[512] = "x=1&token=";
    size_t o = strlen(form);
    for (const unsigned char *p = (const unsigned char *)f->editor; *p; p++)
        o += (size_t)snprintf(form + o, sizeof form - o, "%%%02x", *p);
    snprintf(form + o, sizeof form - o, "&y=%%41+b");
    assert_int_equal(request(f, "POST", "/login", NULL, form, NULL, &a), 303);
    header(&a, "Set-Cookie", v, sizeof v);
    assert_int_equal(strncmp(v, "rd_session=", 11), 0);
    const char *attrs = strchr(v, ';');
    assert_non_null(attrs);
    assert_int_equal(attrs - v - 11, 64);
    for (const char *p = v + 11; p < attrs; p++)
        assert_non_null(strchr("0123456789abcdef", *p));
    assert_string_equal(attrs, "; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800");
    assert_null(strstr(v, "Secure"));
    assert_null(strstr(rd_buf_cstr(&a.headers), f->editor)); /* the token is not echoed */
    char id[65];
    snprintf(id, sizeof id, "%.64s", v + 11);
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    assert_false(is_login_page(&a));
    assert_non_null(strstr(body(&a), ">ed</span>"));
    assert_non_null(strstr(body(&a), "data-project=\"demo\""));
    assert_null(strstr(body(&a), "data-project=\"other\"")); /* not a member */
    answer_free(&a);
    /* two logins, two sessions */
    char id2[65];
    login(f, f->editor, id2);
    assert_string_not_equal(id, id2);
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    assert_false(is_login_page(&a));
    answer_free(&a);
    /* a login sent with a session's cookie replaces that session */
    snprintf(form, sizeof form, "token=%s", f->viewer);
    assert_int_equal(request(f, "POST", "/login", id2, form, NULL, &a), 303);
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/", id2, NULL, NULL, &a), 200);
    assert_true(is_login_page(&a));
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    assert_false(is_login_page(&a));
    answer_free(&a);
}

static void test_failed_logins_are_counted(void **state)
{
    fixture *f = *state;
    answer a;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(request(f, "POST", "/login", NULL, "token=nope", NULL, &a), 401);
        answer_free(&a);
    }
    char form[256];
    snprintf(form, sizeof form, "token=%s", f->s.admin);
    assert_int_equal(request(f, "POST", "/login", NULL, form, NULL, &a), 429); /* even a good token */
    char v[64];
    assert_true(atoi(header(&a, "Retry-After", v, sizeof v)) > 0);
    assert_string_equal(header(&a, "Set-Cookie", v, sizeof v), "");
    answer_free(&a);
    /* the counter is the API's: bearer calls from this address are refused too */
    assert_int_equal(request(f, "GET", "/v1/whoami", NULL, NULL, NULL, &a), 429);
    answer_free(&a);
}

static void test_dashboard_lists_runs_escaped(void **state)
{
    fixture *f = *state;
    int64_t now = now_ms();
    add_run(f, "sales", RD_RUN_SUCCESS, now - 3600 * 1000, 1234567, 2.5, NULL);
    add_run(f, XSS_SOURCE, RD_RUN_FAILED, now - 60 * 1000, 0, 1.0, "the query failed: <b>bad</b> & \"worse\"");
    add_run(f, "sales", RD_RUN_SKIPPED, now - 30 * 1000, 0, 0, NULL); /* the newest, but skipped */
    rd_error err;
    rd_error_clear(&err);
    rd_store_snapshot s;
    memset(&s, 0, sizeof s);
    s.project = "demo";
    s.path = "/nowhere/snap-1.duckdb";
    s.sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    s.size = 4096;
    s.run_id = 1;
    s.tables_json = "[{\"name\":\"<script>alert(2)</script>\",\"rows\":7},{\"name\":\"sales\",\"rows\":1234567}]";
    int64_t sid = 0;
    assert_int_equal(rd_store_snapshot_publish(f->s.st, &s, &sid, &err), RD_OK);

    char id[65];
    login(f, f->s.admin, id);
    answer a;
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    const char *h = body(&a);
    assert_non_null(strstr(h, "(server admin)"));
    assert_non_null(strstr(h, "data-project=\"demo\""));
    assert_non_null(strstr(h, "data-project=\"other\"")); /* a server admin sees every project */
    assert_non_null(strstr(h, "href=\"/projects/demo\""));
    /* the sources, each with its last run that was not skipped */
    assert_non_null(strstr(h, "<td class=\"source\">sales</td>"));
    assert_non_null(strstr(h, "<td class=\"source\">" XSS_ESCAPED "</td>"));
    assert_non_null(strstr(h, "1,234,567"));
    assert_non_null(strstr(h, "<span class=\"state success\">success</span>"));
    assert_non_null(strstr(h, "<span class=\"state failed\">failed</span>"));
    assert_null(strstr(h, "state skipped"));
    assert_non_null(strstr(h, "2.5 s"));
    /* the failure's text, escaped */
    assert_non_null(strstr(h, "the query failed: &lt;b&gt;bad&lt;/b&gt; &amp; &quot;worse&quot;"));
    assert_non_null(strstr(h, "Recent failures"));
    /* the snapshot and its tables, escaped */
    assert_non_null(strstr(h, "Snapshot 1 of"));
    assert_non_null(strstr(h, "&lt;script&gt;alert(2)&lt;/script&gt;"));
    /* nothing from the store got through as markup */
    assert_null(strstr(h, "<img"));
    assert_null(strstr(h, "<b>bad"));
    assert_null(strstr(h, "<script"));
    /* no scheduler: no schedule known, the refresh form still there for an admin */
    assert_non_null(strstr(h, "action=\"/projects/demo/refresh\""));
    answer_free(&a);

    /* the project's page: its runs table */
    assert_int_equal(request(f, "GET", "/projects/demo", id, NULL, NULL, &a), 200);
    assert_non_null(strstr(body(&a), "Recent runs"));
    assert_int_equal(count(body(&a), "<td class=\"source\">sales</td>"), 3); /* sources table + two runs */
    assert_non_null(strstr(body(&a), "state skipped"));
    assert_null(strstr(body(&a), "<img"));
    answer_free(&a);
}

static void test_charts_have_one_point_per_ended_run(void **state)
{
    fixture *f = *state;
    int64_t now = now_ms(), day = 86400 * 1000;
    for (int i = 0; i < 7; i++) /* 7 successes over the last week, growing */
        add_run(f, "sales", RD_RUN_SUCCESS, now - (7 - i) * day, 100 * (uint64_t)(i + 1), 1.0 + i, NULL);
    add_run(f, "orders", RD_RUN_FAILED, now - 2 * day, 0, 0.5, "boom");
    add_run(f, "orders", RD_RUN_SKIPPED, now - day, 0, 0, NULL);         /* not a point */
    add_run(f, "orders", RD_RUN_RUNNING, now - 1000, 0, 0, NULL);        /* not ended: not a point */
    add_run(f, "sales", RD_RUN_SUCCESS, now - 40 * day, 999999, 9, NULL); /* older than 30 days */
    char id[65];
    login(f, f->viewer, id);
    answer a;
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    char *dur = chart_of(body(&a), "duration"), *rows = chart_of(body(&a), "rows");
    assert_non_null(strstr(dur, "data-points=\"8\""));
    assert_int_equal(count(dur, "<circle"), 8);
    assert_int_equal(count(dur, "<polyline"), 1);
    assert_int_equal(count(rows, "<circle"), 8);
    assert_int_equal(count(rows, "circle class=\"pt failed\""), 1);
    assert_non_null(strstr(rows, "<title>sales \xc2\xb7 run 7 \xc2\xb7 success \xc2\xb7 700 rows"));
    assert_null(strstr(rows, "999,999"));
    /* the polyline has 8 points, left to right */
    char *pl = strstr(dur, "<polyline points=\"");
    assert_non_null(pl);
    pl += strlen("<polyline points=\"");
    double lastx = -1;
    int pts = 0;
    char *p = pl;
    while (*p && *p != '"') {
        double x = strtod(p, &p);
        assert_true(x >= lastx);
        lastx = x;
        assert_int_equal(*p, ',');
        strtod(p + 1, &p);
        pts++;
        while (*p == ' ')
            p++;
    }
    assert_int_equal(pts, 8);
    free(dur);
    free(rows);
    answer_free(&a);
}

static void test_refresh_checks_csrf_and_role(void **state)
{
    fixture *f = *state;
    char ed[65], ed_csrf[65], vera[65], vera_csrf[65], otto[65], otto_csrf[65];
    login(f, f->editor, ed);
    login(f, f->viewer, vera);
    login(f, f->outsider, otto);
    csrf_of(f, ed, ed_csrf);
    csrf_of(f, vera, vera_csrf);
    csrf_of(f, otto, otto_csrf);
    assert_string_not_equal(ed_csrf, vera_csrf);
    answer a;
    char form[128];
    /* an editor sees the button */
    assert_int_equal(request(f, "GET", "/", ed, NULL, NULL, &a), 200);
    assert_non_null(strstr(body(&a), "Refresh now"));
    answer_free(&a);
    /* no session, no token, a wrong token, another session's token: 403 */
    snprintf(form, sizeof form, "csrf=%s", ed_csrf);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", NULL, form, NULL, &a), 403);
    answer_free(&a);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, "x=1", NULL, &a), 403);
    assert_non_null(strstr(body(&a), "CSRF"));
    answer_free(&a);
    char wrong[65];
    snprintf(wrong, sizeof wrong, "%s", ed_csrf);
    wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
    snprintf(form, sizeof form, "csrf=%s", wrong);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, NULL, &a), 403);
    answer_free(&a);
    snprintf(form, sizeof form, "csrf=%s", vera_csrf);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, NULL, &a), 403);
    answer_free(&a);
    /* the right token from another site: 403 */
    snprintf(form, sizeof form, "csrf=%s", ed_csrf);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, "Origin: http://evil.example", &a), 403);
    answer_free(&a);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, "Sec-Fetch-Site: cross-site", &a), 403);
    answer_free(&a);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, "Sec-Fetch-Site: same-site", &a), 403);
    answer_free(&a);
    /* the right token: past every check, and no scheduler runs here: 503 (this origin named, or "null" as a
     * browser sends under Referrer-Policy: no-referrer, or no Origin at all) */
    char origin[64];
    snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%d", f->s.port);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, origin, &a), 503);
    answer_free(&a);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, "Origin: null", &a), 503);
    answer_free(&a);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, "Sec-Fetch-Site: same-origin", &a), 503);
    answer_free(&a);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, NULL, &a), 503);
    assert_non_null(strstr(body(&a), "no scheduler"));
    answer_free(&a);
    /* a viewer: no button, and 403 when posting anyway with their own token */
    assert_int_equal(request(f, "GET", "/", vera, NULL, NULL, &a), 200);
    assert_non_null(strstr(body(&a), "data-project=\"demo\""));
    assert_null(strstr(body(&a), "Refresh now"));
    assert_null(strstr(body(&a), "/refresh"));
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/projects/demo", vera, NULL, NULL, &a), 200);
    assert_null(strstr(body(&a), "Refresh now"));
    answer_free(&a);
    snprintf(form, sizeof form, "csrf=%s", vera_csrf);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", vera, form, NULL, &a), 403);
    answer_free(&a);
    /* a non-member: the project does not exist for them */
    snprintf(form, sizeof form, "csrf=%s", otto_csrf);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", otto, form, NULL, &a), 404);
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/projects/demo", otto, NULL, NULL, &a), 404);
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/", otto, NULL, NULL, &a), 200);
    assert_null(strstr(body(&a), "data-project="));
    answer_free(&a);
}

/* With a scheduler: the right form reaches it, which has nothing to run for a project never deployed (409);
 * the dashboard still lists the sources the runs know. */
static void test_refresh_reaches_the_scheduler(void **state)
{
    fixture *f = *state;
    add_run(f, "sales", RD_RUN_SUCCESS, now_ms() - 1000, 5, 0.5, NULL);
    char ed[65], csrf[65], form[128];
    login(f, f->editor, ed);
    csrf_of(f, ed, csrf);
    answer a;
    assert_int_equal(request(f, "GET", "/", ed, NULL, NULL, &a), 200);
    assert_non_null(strstr(body(&a), "<td class=\"source\">sales</td>"));
    answer_free(&a);
    snprintf(form, sizeof form, "csrf=%s", csrf);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", ed, form, NULL, &a), 409);
    assert_non_null(strstr(body(&a), "no active deployment"));
    answer_free(&a);
}

static void test_expired_unknown_and_removed_sessions(void **state)
{
    fixture *f = *state;
    char id[65];
    login(f, f->editor, id);
    answer a;
    char v[256];
    f->clock += RD_PAGE_SESSION_SECONDS - 1;
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    assert_false(is_login_page(&a));
    answer_free(&a);
    f->clock += 1; /* 8 hours after the login: over, whatever was done meanwhile */
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    assert_true(is_login_page(&a));
    assert_string_equal(header(&a, "Set-Cookie", v, sizeof v),
                        "rd_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    answer_free(&a);
    f->clock -= 10; /* gone for good, even if the clock goes back */
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    assert_true(is_login_page(&a));
    answer_free(&a);
    /* unknown and malformed ids */
    const char *bad[] = { "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                          "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "short", "" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(request(f, "GET", "/projects/demo", bad[i], NULL, NULL, &a), 200);
        assert_true(is_login_page(&a));
        answer_free(&a);
    }
    /* a revoked token's session ends (the user's other tokens and sessions stay) */
    char ed2[RD_TOKEN_LEN + 1], by_first[65], by_second[65];
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_store_token_create(f->s.st, "test", "ed", "second", ed2, &err), RD_OK);
    login(f, f->editor, by_first);
    login(f, ed2, by_second);
    assert_int_equal(rd_store_token_revoke(f->s.st, "test", "ed", "second", &err), RD_OK);
    assert_int_equal(request(f, "GET", "/", by_second, NULL, NULL, &a), 200);
    assert_true(is_login_page(&a));
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/", by_first, NULL, NULL, &a), 200);
    assert_false(is_login_page(&a));
    answer_free(&a);
    /* a removed user's session ends */
    char vera[65];
    login(f, f->viewer, vera);
    assert_int_equal(rd_store_user_rm(f->s.st, "test", "vera", &err), RD_OK);
    assert_int_equal(request(f, "GET", "/", vera, NULL, NULL, &a), 200);
    assert_true(is_login_page(&a));
    answer_free(&a);
}

static void test_logout(void **state)
{
    fixture *f = *state;
    char id[65], csrf[65], form[128];
    login(f, f->editor, id);
    csrf_of(f, id, csrf);
    answer a;
    assert_int_equal(request(f, "POST", "/logout", id, "csrf=0", NULL, &a), 403);
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    assert_false(is_login_page(&a)); /* still logged in */
    answer_free(&a);
    snprintf(form, sizeof form, "csrf=%s", csrf);
    assert_int_equal(request(f, "POST", "/logout", id, form, NULL, &a), 303);
    char v[256];
    assert_string_equal(header(&a, "Set-Cookie", v, sizeof v),
                        "rd_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/", id, NULL, NULL, &a), 200);
    assert_true(is_login_page(&a));
    answer_free(&a);
    assert_int_equal(request(f, "POST", "/projects/demo/refresh", id, form, NULL, &a), 403);
    answer_free(&a);
}

static void test_not_found_and_methods(void **state)
{
    fixture *f = *state;
    char id[65];
    login(f, f->s.admin, id);
    answer a;
    char v[64];
    const char *missing[] = { "/nope", "/favicon.ico", "/projects/", "/projects/Demo", "/projects/demo/x",
                              "/projects/a%2Fb", "/projects/demo/refresh/x" };
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
        assert_int_equal(request(f, "GET", missing[i], id, NULL, NULL, &a), 404);
        assert_string_equal(header(&a, "Content-Type", v, sizeof v), "text/html; charset=utf-8");
        assert_string_equal(header(&a, "X-Content-Type-Options", v, sizeof v), "nosniff");
        answer_free(&a);
    }
    assert_int_equal(request(f, "GET", "/projects/nosuch", id, NULL, NULL, &a), 404);
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/login", NULL, NULL, NULL, &a), 405);
    assert_string_equal(header(&a, "Allow", v, sizeof v), "POST");
    answer_free(&a);
    assert_int_equal(request(f, "DELETE", "/", id, NULL, NULL, &a), 405);
    assert_string_equal(header(&a, "Allow", v, sizeof v), "GET");
    answer_free(&a);
    assert_int_equal(request(f, "GET", "/projects/demo/refresh", id, NULL, NULL, &a), 405);
    answer_free(&a);
    assert_int_equal(request(f, "PUT", "/logout", id, NULL, NULL, &a), 405);
    answer_free(&a);
    /* a form larger than 4 KiB is refused before it is read */
    char *big = malloc(8192);
    memset(big, 'a', 8191);
    memcpy(big, "token=", 6);
    big[8191] = 0;
    assert_int_equal(request(f, "POST", "/login", NULL, big, NULL, &a), 413);
    answer_free(&a);
    free(big);
}

static void test_escape_and_url_segment(void **state)
{
    (void)state;
    rd_buf b = RD_BUF_INIT;
    rd_page_escape(&b, "a&b<c>d\"e'f\xc3\xa9");
    assert_string_equal(rd_buf_cstr(&b), "a&amp;b&lt;c&gt;d&quot;e&#39;f\xc3\xa9");
    rd_buf_reset(&b);
    rd_page_url_segment(&b, "a b/c?d%e\xc3\xa9-_.~");
    assert_string_equal(rd_buf_cstr(&b), "a%20b%2Fc%3Fd%25e%C3%A9-_.~");
    rd_buf_free(&b);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_and_url_segment),
        cmocka_unit_test_setup_teardown(test_login_page_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_good_and_bad_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_logins_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dashboard_lists_runs_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_charts_have_one_point_per_ended_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_checks_csrf_and_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_reaches_the_scheduler, setup_scheduler, teardown),
        cmocka_unit_test_setup_teardown(test_expired_unknown_and_removed_sessions, setup_clock, teardown),
        cmocka_unit_test_setup_teardown(test_logout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_methods, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
