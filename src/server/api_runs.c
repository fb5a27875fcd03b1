/* api_runs.c — the refresh calls of the /v1 API (docs/SERVER_API.md, "Refreshes"): a manual refresh through
 * the scheduler, a project's status (its sources, their schedules and last runs, the current snapshot), the
 * runs and one run, and a run's log lines with a bounded long-poll. Reads runs and lines from the store, where
 * the scheduler writes them; owns no state of its own. api.c has authenticated, routed and checked the role
 * and the query parameters' names before any of these runs. */
#include "server/api_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/parse.h"
#include "core/timeutil.h"
#include "server/scheduler.h"

#define RUNS_LIMIT_DEFAULT 100
#define RUNS_LIMIT_MAX 1000
#define LOG_LINES_MAX 1000 /* lines in one answer; more: "done" stays false and the client asks again */
#define LOG_WAIT_MAX_S 30
#define LOG_POLL_MS 200
typedef rd_api_call call;

/* ---- small helpers ---------------------------------------------------------------------------------- */

static json_t *time_ms_or_null(int64_t ms)
{
    return ms > 0 ? rd_api_json_time(ms / 1000) : json_null();
}

static int run_ended(rd_run_state s)
{
    return s == RD_RUN_SUCCESS || s == RD_RUN_FAILED || s == RD_RUN_SKIPPED || s == RD_RUN_CANCELLED;
}

/* 1 when s (n bytes) is a source name as the store keeps them (rd_store_source_name_valid: UTF-8, no control
 * character, no '/', at most RD_STORE_SOURCE_NAME_MAX bytes) and holds no NUL. */
static int source_name_ok(const char *s, size_t n)
{
    return s && n && n <= RD_STORE_SOURCE_NAME_MAX && strlen(s) == n && rd_store_source_name_valid(s);
}

/* A source name for a message: at most 64 bytes, cut at a UTF-8 character boundary ("..." after a cut). */
static const char *shown_name(const char *s, char out[72])
{
    size_t n = strlen(s);
    if (n <= 64)
        return s;
    n = 64;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) /* s[n] continues a character: cut before it */
        n--;
    memcpy(out, s, n);
    memcpy(out + n, "...", 4);
    return out;
}

/* Percent-decodes in place ("+" is a space); -1 for a bad escape or a NUL. */
static int percent_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%') {
            int hi = rd_parse_hex_digit(r[1]), lo = hi < 0 ? -1 : rd_parse_hex_digit(r[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r == '+' ? ' ' : *r;
        }
    }
    *w = 0;
    return 0;
}

/* A whole number from min to max in a query parameter: 1 found (*out set), 0 absent, -1 after a 400. */
static int query_number(call *c, rd_httpd_response *resp, const char *name, uint64_t min, uint64_t max,
                        uint64_t *out)
{
    char v[24];
    if (!rd_api_query_get(c->query, name, v, sizeof v))
        return 0;
    uint64_t x = 0;
    if (rd_parse_uint(v, min, max, &x) != 0 || strlen(v) >= sizeof v - 1) {
        rd_api_reply_error(c, resp, 400, "BadRequest", "%s must be a whole number from %" PRIu64 " to %" PRIu64,
                           name, min, max);
        return -1;
    }
    *out = x;
    return 1;
}

/* The run id of the path's "*" (a positive number), or 0 after a 404. */
static int64_t path_run_id(call *c, rd_httpd_response *resp)
{
    uint64_t id = 0;
    if (rd_parse_uint(c->arg, 1, INT64_MAX, &id) != 0) {
        rd_api_reply_error(c, resp, 404, "NotFound", "no such run in %s: a run id is a number (see GET "
                           "/v1/projects/%s/runs)", c->project, c->project);
        return 0;
    }
    return (int64_t)id;
}

/* The run of this call's project, or 404 (a run of another project is not told apart from none). */
static rd_status project_run(call *c, rd_httpd_response *resp, int64_t id, rd_store_run *out)
{
    rd_error err;
    rd_error_clear(&err);
    rd_store_run r;
    memset(&r, 0, sizeof r);
    rd_status st = rd_store_run_get(c->api->st, id, &r, &err);
    if (st == RD_OK && (!r.project || strcmp(r.project, c->project) != 0)) {
        rd_store_run_clear(&r);
        st = RD_E_NOT_FOUND;
    }
    if (st == RD_E_NOT_FOUND)
        rd_api_reply_error(c, resp, 404, "NotFound", "project %s has no run %" PRId64 " (see GET /v1/projects/%s/runs)",
                           c->project, id, c->project);
    else if (st != RD_OK)
        rd_api_reply_store(c, resp, st, &err);
    else
        *out = r;
    return st;
}

/* Seconds to the millisecond (the figures are measured with more digits than they mean). */
static json_t *seconds_json(double s)
{
    return json_real(s > 0 ? (double)(long long)(s * 1000.0 + 0.5) / 1000.0 : 0.0);
}

/* A run as the contract shows it. */
static json_t *run_json(const rd_store_run *r)
{
    int ended = run_ended(r->state) && r->state != RD_RUN_SKIPPED;
    int figures = ended && r->started_at > 0; /* rows, bytes, phases: known once an attempt has ended */
    json_t *duration = json_null();
    if (figures) {
        double d = r->total_s > 0 ? r->total_s
                   : r->finished_at > r->started_at ? (double)(r->finished_at - r->started_at) / 1000.0 : 0.0;
        duration = seconds_json(d);
    }
    json_t *phases = json_object();
    const struct {
        const char *name;
        double v;
    } ph[] = { { "probe_s", r->probe_s },
               { "unload_s", r->unload_s },
               { "download_s", r->download_s },
               { "commit_s", r->commit_s },
               { "cleanup_s", r->cleanup_s } };
    for (size_t i = 0; i < sizeof ph / sizeof ph[0]; i++)
        json_object_set_new(phases, ph[i].name, figures ? seconds_json(ph[i].v) : json_null());
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)r->id));
    json_object_set_new(o, "source", json_string(r->source ? r->source : ""));
    json_object_set_new(o, "table", r->table_name ? json_string(r->table_name) : json_null());
    json_object_set_new(o, "version", r->version > 0 ? json_integer((json_int_t)r->version) : json_null());
    json_object_set_new(o, "trigger", json_string(rd_run_trigger_name(r->trigger)));
    json_object_set_new(o, "triggered_by", r->triggered_by ? json_string(r->triggered_by) : json_null());
    json_object_set_new(o, "state", json_string(rd_run_state_name(r->state)));
    json_object_set_new(o, "attempts", json_integer(r->attempts));
    json_object_set_new(o, "queued_at", time_ms_or_null(r->queued_at));
    json_object_set_new(o, "started_at", time_ms_or_null(r->started_at));
    json_object_set_new(o, "finished_at", time_ms_or_null(r->finished_at));
    json_object_set_new(o, "duration_s", duration);
    json_object_set_new(o, "rows", figures ? json_integer((json_int_t)r->rows) : json_null());
    json_object_set_new(o, "bytes", figures ? json_integer((json_int_t)r->bytes) : json_null());
    json_object_set_new(o, "files", figures ? json_integer((json_int_t)r->files) : json_null());
    json_object_set_new(o, "phases", phases);
    json_object_set_new(o, "error", r->error && r->error[0] ? json_string(r->error) : json_null());
    return o;
}

/* ---- POST refresh ------------------------------------------------------------------------------------ */

/* Fills names (borrowed from body) with the body's "sources"; *n 0 for all. 0, or -1 after a 400. */
static int refresh_sources(call *c, const rd_buf *body, rd_httpd_response *resp, json_t **root,
                           const char ***names, size_t *n)
{
    static const rd_api_field schema[] = { { "sources", RD_API_STRING_LIST, 0 }, { NULL, RD_API_STRING, 0 } };
    *root = NULL;
    *names = NULL;
    *n = 0;
    if (!body->len)
        return 0;
    char msg[RD_API_MSG_MAX];
    if (rd_api_parse_json_body(body->data, body->len, schema, root, msg, sizeof msg) != 0) {
        rd_api_reply_error(c, resp, 400, "BadRequest", "%s", msg);
        return -1;
    }
    json_t *a = json_object_get(*root, "sources");
    size_t k = json_array_size(a);
    if (!k)
        return 0;
    if (!(*names = calloc(k, sizeof **names))) {
        rd_api_reply_error(c, resp, 500, "Internal", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < k; i++) {
        json_t *v = json_array_get(a, i);
        const char *s = json_string_value(v);
        if (!source_name_ok(s, json_string_length(v))) {
            rd_api_reply_error(c, resp, 400, "BadRequest", "sources[%zu] is not a source name (UTF-8 text, no "
                               "control character or '/', at most %d bytes)", i, RD_STORE_SOURCE_NAME_MAX);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp((*names)[j], s) == 0) {
                char shown[72];
                rd_api_reply_error(c, resp, 400, "BadRequest", "source %s is named twice", shown_name(s, shown));
                return -1;
            }
        (*names)[i] = s;
    }
    *n = k;
    return 0;
}

static void do_refresh(call *c, const rd_buf *body, rd_httpd_response *resp)
{
    json_t *root = NULL;
    const char **names = NULL;
    size_t n = 0;
    rd_scheduler_source *srcs = NULL;
    size_t nsrcs = 0;
    int64_t *ids = NULL;
    size_t nids = 0;
    json_t *runs = NULL, *detail = NULL;
    rd_error err;
    rd_error_clear(&err);
    if (refresh_sources(c, body, resp, &root, &names, &n) != 0)
        goto out;
    if (!c->api->sched) {
        rd_api_reply_error(c, resp, 503, "Unavailable", "this server runs no scheduler: refreshes are not available "
                           "(start `redduck server` with its scheduler)");
        goto out;
    }
    rd_store_deployment d;
    rd_status st = rd_store_deploy_active(c->api->st, c->project, &d, &err);
    if (st == RD_E_NOT_FOUND) {
        rd_api_reply_error(c, resp, 404, "NotFound", "project %s has no active deployment: deploy first (`redduck "
                           "deploy`)", c->project);
        goto out;
    }
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        goto out;
    }
    rd_store_deployment_clear(&d);
    /* every name is checked before anything is queued, so a 404 names the unknown source */
    st = rd_scheduler_sources(c->api->sched, c->project, &srcs, &nsrcs, &err);
    if (st == RD_E_NOT_FOUND) {
        rd_api_reply_error(c, resp, 404, "NotFound", "project %s has no deployment the scheduler runs: deploy first "
                           "(`redduck deploy`)", c->project);
        goto out;
    }
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < nsrcs && strcmp(srcs[j].name, names[i]) != 0)
            j++;
        if (j == nsrcs) {
            rd_buf known = RD_BUF_INIT;
            for (size_t k = 0; k < nsrcs && known.len < 300; k++)
                rd_buf_printf(&known, "%s%s", k ? ", " : "", srcs[k].name);
            char shown[72];
            rd_api_reply_error(c, resp, 404, "NotFound", "project %s has no source %s (its sources: %s)", c->project,
                               shown_name(names[i], shown), known.len ? rd_buf_cstr(&known) : "none");
            rd_buf_free(&known);
            goto out;
        }
    }
    st = rd_scheduler_trigger(c->api->sched, c->project, c->user.name, names, n, &ids, &nids, &err);
    if (st == RD_E_CANCELLED) {
        rd_api_reply_error(c, resp, 503, "Unavailable", "the server is stopping: refresh again once it is back");
        goto out;
    }
    if (st == RD_E_CONFIG) { /* the active version cannot be loaded */
        rd_api_reply_error(c, resp, 409, "Conflict", "%s", err.message);
        goto out;
    }
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        goto out;
    }
    runs = json_array();
    json_t *done = json_array();
    for (size_t i = 0; i < nids; i++) {
        rd_store_run r;
        memset(&r, 0, sizeof r);
        rd_error rerr;
        rd_error_clear(&rerr);
        const char *source = i < n ? names[i] : NULL;
        int skipped = 0;
        if (rd_store_run_get(c->api->st, ids[i], &r, &rerr) == RD_OK) {
            skipped = r.state == RD_RUN_SKIPPED;
            if (r.source)
                source = r.source;
        }
        json_array_append_new(runs, json_pack("{s:I, s:s?, s:s}", "id", (json_int_t)ids[i], "source", source, "state",
                                              skipped ? "skipped" : "queued"));
        if (source)
            json_array_append_new(done, json_string(source));
        rd_store_run_clear(&r);
    }
    detail = json_pack("{s:o}", "sources", done);
    char *dj = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    rd_error aerr;
    rd_error_clear(&aerr);
    st = dj ? rd_store_audit_append(c->api->st, c->user.name, "refresh", c->project, dj, &aerr) : RD_E_INTERNAL;
    free(dj);
    if (st != RD_OK && c->api->log) { /* the runs are queued already: the answer stays 202 */
        fprintf(c->api->log, "redduck server: the audit row of a refresh of %s was not written: %s\n", c->project,
                aerr.message);
        fflush(c->api->log);
    }
    rd_api_reply(c, resp, 202, json_pack("{s:o}", "runs", runs));
    runs = NULL;
out:
    json_decref(runs);
    json_decref(detail);
    free(ids);
    rd_scheduler_sources_free(srcs, nsrcs);
    free(names);
    json_decref(root);
}

/* ---- GET status -------------------------------------------------------------------------------------- */

static void do_status(call *c, const rd_buf *body, rd_httpd_response *resp)
{
    (void)body;
    rd_error err;
    rd_error_clear(&err);
    json_t *out = json_object();
    json_object_set_new(out, "project", json_string(c->project));
    rd_store_deployment d;
    rd_status st = rd_store_deploy_active(c->api->st, c->project, &d, &err);
    if (st == RD_OK) {
        json_object_set_new(out, "active_version", json_integer((json_int_t)d.version));
        rd_store_deployment_clear(&d);
    } else if (st == RD_E_NOT_FOUND) {
        json_object_set_new(out, "active_version", json_null());
    } else {
        json_decref(out);
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    rd_store_snapshot s;
    memset(&s, 0, sizeof s);
    rd_error_clear(&err);
    st = rd_store_snapshot_current(c->api->st, c->project, &s, &err);
    if (st == RD_OK) {
        json_object_set_new(out, "snapshot",
                            json_pack("{s:I, s:o, s:s, s:I}", "id", (json_int_t)s.id, "created_at",
                                      time_ms_or_null(s.created_at_ms), "sha256", s.sha256 ? s.sha256 : "", "size",
                                      (json_int_t)s.size));
        rd_store_snapshot_clear(&s);
    } else if (st == RD_E_NOT_FOUND) {
        json_object_set_new(out, "snapshot", json_null());
    } else {
        json_decref(out);
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    rd_store_run *latest = NULL;
    size_t nl = 0;
    rd_error_clear(&err);
    if ((st = rd_store_run_latest(c->api->st, c->project, &latest, &nl, &err)) != RD_OK) {
        json_decref(out);
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    rd_scheduler_source *srcs = NULL;
    size_t ns = 0;
    int from_scheduler = 0;
    if (c->api->sched) {
        rd_error_clear(&err);
        st = rd_scheduler_sources(c->api->sched, c->project, &srcs, &ns, &err);
        if (st == RD_OK)
            from_scheduler = 1;
        else if (st != RD_E_NOT_FOUND) {
            rd_store_runs_free(latest, nl);
            json_decref(out);
            rd_api_reply_store(c, resp, st, &err);
            return;
        }
    }
    json_t *list = json_array();
    if (from_scheduler) {
        for (size_t i = 0; i < ns; i++) {
            const rd_store_run *last = NULL;
            for (size_t j = 0; j < nl && !last; j++)
                if (latest[j].source && strcmp(latest[j].source, srcs[i].name) == 0)
                    last = &latest[j];
            json_array_append_new(
                list, json_pack("{s:s, s:s?, s:s?, s:o, s:b, s:o}", "name", srcs[i].name, "table", srcs[i].table,
                                "schedule", srcs[i].schedule, "next_run", time_ms_or_null(srcs[i].next_run_ms),
                                "running", srcs[i].running, "last_run", last ? run_json(last) : json_null()));
        }
    } else {
        /* no scheduler (or it runs no deployment of this project): the sources that have run, as the store has
         * them, with no schedule known */
        for (size_t j = 0; j < nl; j++)
            json_array_append_new(
                list, json_pack("{s:s, s:s?, s:n, s:n, s:b, s:o}", "name", latest[j].source ? latest[j].source : "",
                                "table", latest[j].table_name, "schedule", "next_run", "running",
                                !run_ended(latest[j].state), "last_run", run_json(&latest[j])));
    }
    json_object_set_new(out, "sources", list);
    rd_scheduler_sources_free(srcs, ns);
    rd_store_runs_free(latest, nl);
    rd_api_reply(c, resp, 200, out);
}

/* ---- GET runs, runs/{id} ----------------------------------------------------------------------------- */

static void do_runs(call *c, const rd_buf *body, rd_httpd_response *resp)
{
    (void)body;
    uint64_t limit = RUNS_LIMIT_DEFAULT;
    if (query_number(c, resp, "limit", 1, RUNS_LIMIT_MAX, &limit) < 0)
        return;
    char source[RD_STORE_SOURCE_NAME_MAX * 3 + 2];
    const char *src = rd_api_query_get(c->query, "source", source, sizeof source);
    if (src) {
        size_t raw = strlen(source);
        if (raw >= sizeof source - 1 || percent_decode(source) != 0 || !source_name_ok(source, strlen(source))) {
            rd_api_reply_error(c, resp, 400, "BadRequest", "source must be a source name (UTF-8 text, no control "
                               "character or '/', at most %d bytes)", RD_STORE_SOURCE_NAME_MAX);
            return;
        }
    }
    int64_t since_ms = 0;
    char since[40];
    if (rd_api_query_get(c->query, "since", since, sizeof since)) {
        time_t t = 0;
        if (strlen(since) >= sizeof since - 1 || percent_decode(since) != 0 || rd_time_parse_iso8601(since, &t) != 0 ||
            t < 0) {
            rd_api_reply_error(c, resp, 400, "BadRequest", "since must be a time such as 2026-12-01T10:00:00Z (UTC)");
            return;
        }
        since_ms = (int64_t)t * 1000;
        if (since_ms == 0)
            since_ms = 1; /* 0 would mean no bound; the epoch itself is no bound either way */
    }
    rd_store_run *rs = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    rd_status st =
        rd_store_run_list(c->api->st, c->project, src ? source : NULL, since_ms, (size_t)limit, &rs, &n, &err);
    if (st != RD_OK) {
        rd_api_reply_store(c, resp, st, &err);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, run_json(&rs[i]));
    rd_store_runs_free(rs, n);
    rd_api_reply(c, resp, 200, json_pack("{s:o}", "runs", list));
}

static void do_run_get(call *c, const rd_buf *body, rd_httpd_response *resp)
{
    (void)body;
    int64_t id = path_run_id(c, resp);
    rd_store_run r;
    if (!id || project_run(c, resp, id, &r) != RD_OK)
        return;
    rd_api_reply(c, resp, 200, run_json(&r));
    rd_store_run_clear(&r);
}

/* ---- GET runs/{id}/logs ------------------------------------------------------------------------------ */

static void do_run_logs(call *c, const rd_buf *body, rd_httpd_response *resp)
{
    (void)body;
    uint64_t after = 0, wait_s = 0;
    if (query_number(c, resp, "after", 0, INT64_MAX, &after) < 0 ||
        query_number(c, resp, "wait", 0, LOG_WAIT_MAX_S, &wait_s) < 0)
        return;
    int64_t id = path_run_id(c, resp);
    if (!id)
        return;
    long long deadline = rd_monotonic_ms() + (long long)wait_s * 1000;
    int woken = 0;
    for (;;) {
        rd_store_run r;
        if (project_run(c, resp, id, &r) != RD_OK)
            return;
        /* the state before the lines: a run that had ended then has written all of its lines (the scheduler
         * writes every line, the snapshot's and the notifications' included, before it stores the end) */
        rd_run_state state = r.state;
        int settled = run_ended(state);
        rd_store_run_clear(&r);
        rd_store_log_line *lines = NULL;
        size_t n = 0;
        rd_error err;
        rd_error_clear(&err);
        rd_status st = rd_store_run_log_list(c->api->st, id, (int64_t)after, LOG_LINES_MAX, &lines, &n, &err);
        if (st != RD_OK) {
            rd_api_reply_store(c, resp, st, &err);
            return;
        }
        int done = settled && n < LOG_LINES_MAX;
        long long left = deadline - rd_monotonic_ms();
        if (n || done || left <= 0) {
            json_t *list = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(list, json_pack("{s:I, s:o, s:s}", "seq", (json_int_t)lines[i].seq, "at",
                                                      time_ms_or_null(lines[i].at_ms), "line",
                                                      lines[i].line ? lines[i].line : ""));
            rd_store_log_lines_free(lines, n);
            rd_api_reply(c, resp, 200,
                         json_pack("{s:{s:I, s:s}, s:o, s:b}", "run", "id", (json_int_t)id, "state",
                                   rd_run_state_name(state), "lines", list, "done", done));
            return;
        }
        rd_store_log_lines_free(lines, n);
        long step = left < LOG_POLL_MS ? (long)left : LOG_POLL_MS;
        /* the scheduler wakes this at the run's end; new lines are seen at the next poll */
        int ended = 0;
        rd_error werr;
        rd_error_clear(&werr);
        if (woken || !c->api->sched || rd_scheduler_wait(c->api->sched, id, step, &ended, &werr) != RD_OK)
            rd_sleep_ms(step);
        woken |= ended; /* once told, polling only (the store's row may trail the scheduler's word) */
    }
}

/* ---- the table --------------------------------------------------------------------------------------- */

static const char *const runs_query[] = { "source", "limit", "since", NULL };
static const char *const logs_query[] = { "after", "wait", NULL };

const rd_api_ext_route rd_api_runs_routes[] = {
    { .method = "POST", .tail = "refresh", .action = RD_ACTION_REFRESH, .complete = do_refresh },
    { .method = "GET", .tail = "status", .action = RD_ACTION_STATUS, .complete = do_status },
    { .method = "GET", .tail = "runs", .action = RD_ACTION_STATUS, .query = runs_query, .complete = do_runs },
    { .method = "GET", .tail = "runs/*", .action = RD_ACTION_STATUS, .complete = do_run_get },
    { .method = "GET", .tail = "runs/*/logs", .action = RD_ACTION_STATUS, .query = logs_query,
      .complete = do_run_logs },
    { .method = NULL },
};
