/* client_runs.c — the refresh calls of the client of `redduck server` (redduck/cloud.h, "refreshes"): refresh,
 * status, runs, one run and a run's log lines, over the one request path of client.c (rd_cloud_call). Reads
 * the server's JSON into structs the caller frees; a 404 is told apart (the project, its deployment, a source,
 * a run) so each message says what to do. Does not print (the CLI does). */
#include "redduck/cloud.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redduck/buf.h"
#include "redduck/sigv4.h"
#include "server/client_internal.h"

#define VIEWER_ROLE "a role in the project (viewer at least)"
#define EDITOR_ROLE "the editor or admin role"

typedef rd_cloud_call_info call_info;

static rd_status oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

/* NULL for null or a value that is no string; else a copy (*bad set when out of memory). */
static char *str_or_null(const json_t *v, int *bad)
{
    const char *s = json_string_value(v);
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *bad = 1;
    return d;
}

static int64_t int_or(const json_t *v, int64_t dflt)
{
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static double num_or(const json_t *v, double dflt)
{
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* ---- runs ------------------------------------------------------------------------------------------- */

void rd_cloud_run_clear(rd_cloud_run *r)
{
    if (!r)
        return;
    free(r->source);
    free(r->table);
    free(r->trigger);
    free(r->triggered_by);
    free(r->state);
    free(r->queued_at);
    free(r->started_at);
    free(r->finished_at);
    free(r->error);
    memset(r, 0, sizeof *r);
}

void rd_cloud_runs_free(rd_cloud_run *runs, size_t n)
{
    for (size_t i = 0; runs && i < n; i++)
        rd_cloud_run_clear(&runs[i]);
    free(runs);
}

int rd_cloud_run_state_ended(const char *s)
{
    return s && (strcmp(s, "success") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "skipped") == 0 ||
                 strcmp(s, "cancelled") == 0);
}

/* A run object of the server into *r: RD_E_REMOTE when it is not one, RD_E_INTERNAL out of memory. */
static rd_status run_of(const json_t *o, rd_cloud_run *r)
{
    memset(r, 0, sizeof *r);
    const json_t *id = json_object_get(o, "id");
    if (!json_is_object(o) || !json_is_integer(id) || !json_is_string(json_object_get(o, "source")) ||
        !json_is_string(json_object_get(o, "state")))
        return RD_E_REMOTE;
    int bad = 0;
    const json_t *ph = json_object_get(o, "phases");
    r->id = (int64_t)json_integer_value(id);
    r->source = str_or_null(json_object_get(o, "source"), &bad);
    r->table = str_or_null(json_object_get(o, "table"), &bad);
    r->version = int_or(json_object_get(o, "version"), -1);
    r->trigger = str_or_null(json_object_get(o, "trigger"), &bad);
    r->triggered_by = str_or_null(json_object_get(o, "triggered_by"), &bad);
    r->state = str_or_null(json_object_get(o, "state"), &bad);
    r->attempts = (int)int_or(json_object_get(o, "attempts"), 0);
    r->queued_at = str_or_null(json_object_get(o, "queued_at"), &bad);
    r->started_at = str_or_null(json_object_get(o, "started_at"), &bad);
    r->finished_at = str_or_null(json_object_get(o, "finished_at"), &bad);
    r->duration_s = num_or(json_object_get(o, "duration_s"), -1);
    r->rows = int_or(json_object_get(o, "rows"), -1);
    r->bytes = int_or(json_object_get(o, "bytes"), -1);
    r->files = int_or(json_object_get(o, "files"), -1);
    r->probe_s = num_or(json_object_get(ph, "probe_s"), -1);
    r->unload_s = num_or(json_object_get(ph, "unload_s"), -1);
    r->download_s = num_or(json_object_get(ph, "download_s"), -1);
    r->commit_s = num_or(json_object_get(ph, "commit_s"), -1);
    r->cleanup_s = num_or(json_object_get(ph, "cleanup_s"), -1);
    r->error = str_or_null(json_object_get(o, "error"), &bad);
    if (bad) {
        rd_cloud_run_clear(r);
        return RD_E_INTERNAL;
    }
    return RD_OK;
}

/* ---- 404s ------------------------------------------------------------------------------------------- */

/* After a 404 of a call inside project: when the project itself is unknown (or not the caller's), its message
 * (deploy it first); else fmt's, RD_E_NOT_FOUND. */
static rd_status not_found(rd_cloud *c, const char *project, rd_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rd_status not_found(rd_cloud *c, const char *project, rd_error *err, const char *fmt, ...)
{
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s", project);
    call_info ci = { "GET", rd_buf_cstr(&path), project, "read the project", VIEWER_ROLE, NULL, NULL, 0 };
    json_t *j = NULL;
    rd_error perr;
    rd_error_clear(&perr);
    rd_status st = rd_buf_failed(&path) ? oom(&perr) : rd_cloud_call_object(c, &ci, &j, &perr);
    json_decref(j);
    rd_buf_free(&path);
    if (st != RD_OK) {
        if (err)
            *err = perr;
        return st;
    }
    char msg[RD_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st = rd_error_set(err, RD_E_NOT_FOUND, "%s", msg);
    if (err)
        err->http_status = 404;
    return st;
}

static int was_404(rd_status st, const rd_error *err)
{
    return st == RD_E_NOT_FOUND && err && err->http_status == 404;
}

/* ---- refresh ---------------------------------------------------------------------------------------- */

void rd_cloud_refresh_result_free(rd_cloud_refresh_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nruns; i++)
        free(r->runs[i].source);
    free(r->runs);
    memset(r, 0, sizeof *r);
}

/* Why a refresh got 404: no project, no deployment, or which source is unknown. */
static rd_status refresh_not_found(rd_cloud *c, const char *project, const char *const *sources, size_t n,
                                   rd_error *err)
{
    rd_cloud_project_status s;
    rd_error serr;
    rd_error_clear(&serr);
    rd_status st = rd_cloud_status(c, project, &s, &serr);
    if (st != RD_OK) {
        if (err)
            *err = serr;
        return st;
    }
    const char *url = rd_cloud_server(c);
    if (!s.active_version) {
        st = rd_error_set(err, RD_E_NOT_FOUND, "project %s has no active deployment on %s: deploy it first "
                          "(`redduck deploy`)", project, url);
    } else {
        const char *unknown = NULL;
        for (size_t i = 0; i < n && !unknown; i++) {
            size_t j = 0;
            while (j < s.nsources && strcmp(s.sources[j].name, sources[i]) != 0)
                j++;
            if (j == s.nsources)
                unknown = sources[i];
        }
        rd_buf known = RD_BUF_INIT;
        for (size_t j = 0; j < s.nsources && known.len < 300; j++)
            rd_buf_printf(&known, "%s%s", j ? ", " : "", s.sources[j].name);
        if (unknown)
            st = rd_error_set(err, RD_E_NOT_FOUND, "project %s has no source %.128s on %s (its sources: %s)", project,
                              unknown, url, known.len ? rd_buf_cstr(&known) : "none");
        else
            st = rd_error_set(err, RD_E_NOT_FOUND, "the server at %s does not run version %" PRId64 " of %s yet: try "
                              "again in a moment", url, s.active_version, project);
        rd_buf_free(&known);
    }
    rd_cloud_project_status_free(&s);
    return st;
}

rd_status rd_cloud_refresh(rd_cloud *c, const char *project, const char *const *sources, size_t n,
                           rd_cloud_refresh_result *out, rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, NULL, err);
    if (st != RD_OK)
        return st;
    json_t *body = json_object(), *names = json_array();
    for (size_t i = 0; body && names && i < n; i++)
        if (json_array_append_new(names, json_string(sources[i])) != 0) {
            json_decref(body);
            json_decref(names);
            return rd_error_set(err, RD_E_USAGE, "a source name must be UTF-8 text");
        }
    if (n && body && names)
        json_object_set(body, "sources", names);
    json_decref(names);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/refresh", project);
    if (!text || rd_buf_failed(&path)) {
        free(text);
        rd_buf_free(&path);
        return oom(err);
    }
    call_info ci = { "POST", rd_buf_cstr(&path), project, "refresh the sources", EDITOR_ROLE, "application/json", text,
                     strlen(text) };
    json_t *j = NULL;
    st = rd_cloud_call_object(c, &ci, &j, err);
    if (was_404(st, err))
        st = refresh_not_found(c, project, sources, n, err);
    const json_t *runs = json_object_get(j, "runs");
    if (st == RD_OK && !json_is_array(runs))
        st = rd_cloud_bad_reply(c, &ci, err);
    rd_cloud_refresh_result r = { 0 };
    size_t k = json_array_size(runs);
    if (st == RD_OK && !(r.runs = calloc(k ? k : 1, sizeof *r.runs)))
        st = oom(err);
    for (size_t i = 0; st == RD_OK && i < k; i++) {
        const json_t *e = json_array_get(runs, i);
        const char *src = json_string_value(json_object_get(e, "source"));
        const char *state = json_string_value(json_object_get(e, "state"));
        if (!json_is_integer(json_object_get(e, "id")) || !src || !state) {
            st = rd_cloud_bad_reply(c, &ci, err);
            break;
        }
        rd_cloud_queued_run *q = &r.runs[r.nruns];
        q->id = (int64_t)json_integer_value(json_object_get(e, "id"));
        q->skipped = strcmp(state, "skipped") == 0;
        if (!(q->source = strdup(src)))
            st = oom(err);
        else
            r.nruns++;
    }
    json_decref(j);
    free(text);
    rd_buf_free(&path);
    if (st != RD_OK) {
        rd_cloud_refresh_result_free(&r);
        return st;
    }
    *out = r;
    return RD_OK;
}

/* ---- status ----------------------------------------------------------------------------------------- */

void rd_cloud_project_status_free(rd_cloud_project_status *s)
{
    if (!s)
        return;
    free(s->project);
    free(s->snapshot_created_at);
    free(s->snapshot_sha256);
    for (size_t i = 0; s->sources && i < s->nsources; i++) {
        rd_cloud_source_status *x = &s->sources[i];
        free(x->name);
        free(x->table);
        free(x->schedule);
        free(x->next_run);
        if (x->last_run) {
            rd_cloud_run_clear(x->last_run);
            free(x->last_run);
        }
    }
    free(s->sources);
    free(s->json);
    memset(s, 0, sizeof *s);
}

static rd_status status_of(const json_t *j, rd_cloud_project_status *s)
{
    const json_t *srcs = json_object_get(j, "sources"), *snap = json_object_get(j, "snapshot");
    if (!json_is_string(json_object_get(j, "project")) || !json_is_array(srcs))
        return RD_E_REMOTE;
    int bad = 0;
    s->project = str_or_null(json_object_get(j, "project"), &bad);
    s->active_version = int_or(json_object_get(j, "active_version"), 0);
    if (json_is_object(snap)) {
        s->has_snapshot = 1;
        s->snapshot_id = int_or(json_object_get(snap, "id"), 0);
        s->snapshot_created_at = str_or_null(json_object_get(snap, "created_at"), &bad);
        s->snapshot_sha256 = str_or_null(json_object_get(snap, "sha256"), &bad);
        int64_t size = int_or(json_object_get(snap, "size"), 0);
        s->snapshot_size = size > 0 ? (uint64_t)size : 0;
    }
    size_t n = json_array_size(srcs);
    if (!(s->sources = calloc(n ? n : 1, sizeof *s->sources)) || bad)
        return RD_E_INTERNAL;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(srcs, i), *last = json_object_get(e, "last_run");
        if (!json_is_string(json_object_get(e, "name")))
            return RD_E_REMOTE;
        rd_cloud_source_status *x = &s->sources[s->nsources++];
        x->name = str_or_null(json_object_get(e, "name"), &bad);
        x->table = str_or_null(json_object_get(e, "table"), &bad);
        x->schedule = str_or_null(json_object_get(e, "schedule"), &bad);
        x->next_run = str_or_null(json_object_get(e, "next_run"), &bad);
        x->running = json_is_true(json_object_get(e, "running"));
        if (bad)
            return RD_E_INTERNAL;
        if (json_is_object(last)) {
            if (!(x->last_run = calloc(1, sizeof *x->last_run)))
                return RD_E_INTERNAL;
            rd_status rs = run_of(last, x->last_run);
            if (rs != RD_OK)
                return rs;
        }
    }
    return RD_OK;
}

rd_status rd_cloud_status(rd_cloud *c, const char *project, rd_cloud_project_status *out, rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, NULL, err);
    if (st != RD_OK)
        return st;
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/status", project);
    call_info ci = { "GET", rd_buf_cstr(&path), project, "read the status", VIEWER_ROLE, NULL, NULL, 0 };
    json_t *j = NULL;
    st = rd_buf_failed(&path) ? oom(err) : rd_cloud_call_object(c, &ci, &j, err);
    rd_cloud_project_status s;
    memset(&s, 0, sizeof s);
    if (st == RD_OK) {
        rd_status rs = status_of(j, &s);
        if (rs == RD_OK && !(s.json = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
            rs = RD_E_INTERNAL;
        if (rs == RD_E_REMOTE)
            st = rd_cloud_bad_reply(c, &ci, err);
        else if (rs != RD_OK)
            st = oom(err);
    }
    json_decref(j);
    rd_buf_free(&path);
    if (st != RD_OK) {
        rd_cloud_project_status_free(&s);
        return st;
    }
    *out = s;
    return RD_OK;
}

/* ---- runs, one run ---------------------------------------------------------------------------------- */

rd_status rd_cloud_runs(rd_cloud *c, const char *project, const char *source, size_t limit, rd_cloud_run **out,
                        size_t *n, rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, NULL, err);
    if (st != RD_OK)
        return st;
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/runs", project);
    char sep = '?';
    if (source) {
        rd_buf_printf(&path, "%csource=", sep);
        sep = '&';
        if ((st = rd_sigv4_uri_encode(&path, source, strlen(source), 0)) != RD_OK) {
            rd_buf_free(&path);
            return oom(err);
        }
    }
    if (limit)
        rd_buf_printf(&path, "%climit=%zu", sep, limit);
    call_info ci = { "GET", rd_buf_cstr(&path), project, "list the runs", VIEWER_ROLE, NULL, NULL, 0 };
    json_t *j = NULL;
    st = rd_buf_failed(&path) ? oom(err) : rd_cloud_call_object(c, &ci, &j, err);
    const json_t *a = json_object_get(j, "runs");
    if (st == RD_OK && !json_is_array(a))
        st = rd_cloud_bad_reply(c, &ci, err);
    size_t k = json_array_size(a), got = 0;
    rd_cloud_run *runs = st == RD_OK ? calloc(k ? k : 1, sizeof *runs) : NULL;
    if (st == RD_OK && !runs)
        st = oom(err);
    for (size_t i = 0; st == RD_OK && i < k; i++) {
        rd_status rs = run_of(json_array_get(a, i), &runs[i]);
        if (rs == RD_E_REMOTE)
            st = rd_cloud_bad_reply(c, &ci, err);
        else if (rs != RD_OK)
            st = oom(err);
        else
            got++;
    }
    json_decref(j);
    rd_buf_free(&path);
    if (st != RD_OK) {
        rd_cloud_runs_free(runs, got);
        return st;
    }
    *out = runs;
    *n = got;
    return RD_OK;
}

rd_status rd_cloud_run_get(rd_cloud *c, const char *project, int64_t run_id, rd_cloud_run *out, rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, NULL, err);
    if (st != RD_OK)
        return st;
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/runs/%" PRId64, project, run_id);
    call_info ci = { "GET", rd_buf_cstr(&path), project, "read a run", VIEWER_ROLE, NULL, NULL, 0 };
    json_t *j = NULL;
    st = rd_buf_failed(&path) ? oom(err) : rd_cloud_call_object(c, &ci, &j, err);
    if (was_404(st, err))
        st = not_found(c, project, err, "project %s has no run %" PRId64 " on %s (see `redduck status --cloud`)",
                       project, run_id, rd_cloud_server(c));
    rd_cloud_run r;
    memset(&r, 0, sizeof r);
    if (st == RD_OK) {
        rd_status rs = run_of(j, &r);
        if (rs == RD_E_REMOTE)
            st = rd_cloud_bad_reply(c, &ci, err);
        else if (rs != RD_OK)
            st = oom(err);
    }
    json_decref(j);
    rd_buf_free(&path);
    if (st != RD_OK)
        return st;
    *out = r;
    return RD_OK;
}

/* ---- logs ------------------------------------------------------------------------------------------- */

void rd_cloud_run_log_free(rd_cloud_run_log *l)
{
    if (!l)
        return;
    for (size_t i = 0; l->lines && i < l->nlines; i++) {
        free(l->lines[i].at);
        free(l->lines[i].line);
    }
    free(l->lines);
    free(l->state);
    memset(l, 0, sizeof *l);
}

static rd_status log_of(const json_t *j, rd_cloud_run_log *l)
{
    const json_t *run = json_object_get(j, "run"), *lines = json_object_get(j, "lines");
    if (!json_is_object(run) || !json_is_array(lines) || !json_is_string(json_object_get(run, "state")))
        return RD_E_REMOTE;
    int bad = 0;
    l->run_id = int_or(json_object_get(run, "id"), 0);
    l->state = str_or_null(json_object_get(run, "state"), &bad);
    l->done = json_is_true(json_object_get(j, "done"));
    size_t n = json_array_size(lines);
    if (!(l->lines = calloc(n ? n : 1, sizeof *l->lines)) || bad)
        return RD_E_INTERNAL;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(lines, i);
        if (!json_is_integer(json_object_get(e, "seq")) || !json_is_string(json_object_get(e, "line")))
            return RD_E_REMOTE;
        rd_cloud_log_line *x = &l->lines[l->nlines++];
        x->seq = (int64_t)json_integer_value(json_object_get(e, "seq"));
        x->at = str_or_null(json_object_get(e, "at"), &bad);
        x->line = str_or_null(json_object_get(e, "line"), &bad);
        if (bad)
            return RD_E_INTERNAL;
    }
    return RD_OK;
}

rd_status rd_cloud_run_logs(rd_cloud *c, const char *project, int64_t run_id, int64_t after, int wait_s,
                            rd_cloud_run_log *out, rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, NULL, err);
    if (st != RD_OK)
        return st;
    if (after < 0 || wait_s < 0 || wait_s > 30)
        return rd_error_set(err, RD_E_USAGE, "rd_cloud_run_logs: after is 0 or more, wait_s 0 to 30");
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/runs/%" PRId64 "/logs?after=%" PRId64, project, run_id, after);
    if (wait_s)
        rd_buf_printf(&path, "&wait=%d", wait_s);
    call_info ci = { "GET", rd_buf_cstr(&path), project, "read a run's log", VIEWER_ROLE, NULL, NULL, 0 };
    json_t *j = NULL;
    st = rd_buf_failed(&path) ? oom(err) : rd_cloud_call_object(c, &ci, &j, err);
    if (was_404(st, err))
        st = not_found(c, project, err, "project %s has no run %" PRId64 " on %s (see `redduck status --cloud`)",
                       project, run_id, rd_cloud_server(c));
    rd_cloud_run_log l;
    memset(&l, 0, sizeof l);
    if (st == RD_OK) {
        rd_status rs = log_of(j, &l);
        if (rs == RD_E_REMOTE)
            st = rd_cloud_bad_reply(c, &ci, err);
        else if (rs != RD_OK)
            st = oom(err);
    }
    json_decref(j);
    rd_buf_free(&path);
    if (st != RD_OK) {
        rd_cloud_run_log_free(&l);
        return st;
    }
    *out = l;
    return RD_OK;
}
