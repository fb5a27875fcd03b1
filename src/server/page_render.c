/* page_render.c — the status page's HTML: one document shape with one inline <style> (no script), the login
 * form, the dashboard (each visible project's deployment, sources with their schedule and last run, failures
 * with their error text, the current snapshot, and charts of the last 30 days' run durations and rows drawn
 * server-side as inline SVG), a project's page with its recent runs. Reads the store and the scheduler;
 * owns nothing. Every value from them is escaped here and nowhere is markup taken from them. */
#include "server/page_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/scheduler.h"

/* ---- escaping -------------------------------------------------------------------------------------------- */

static void escape_n(rd_buf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            rd_buf_append(b, s + start, i - start);
            rd_buf_puts(b, rep);
            start = i + 1;
        }
    }
    rd_buf_append(b, s + start, n - start);
}

void rd_page_escape(rd_buf *b, const char *s)
{
    if (s)
        escape_n(b, s, strlen(s));
}

/* s escaped, cut at max bytes (at a UTF-8 character's start) with an ellipsis. */
static void escape_max(rd_buf *b, const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n <= max) {
        escape_n(b, s ? s : "", n);
        return;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    escape_n(b, s, max);
    rd_buf_puts(b, "\xe2\x80\xa6");
}

void rd_page_url_segment(rd_buf *b, const char *s)
{
    static const char digits[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            rd_buf_putc(b, (char)c);
        } else {
            char e[3] = { '%', digits[c >> 4], digits[c & 15] };
            rd_buf_append(b, e, 3);
        }
    }
}

/* ---- formatting ------------------------------------------------------------------------------------------ */

/* Unix milliseconds as <time datetime="…">2026-12-02 03:55:00 UTC</time>; "—" for 0. */
static void put_time(rd_buf *b, int64_t ms)
{
    if (ms <= 0) {
        rd_buf_puts(b, "\xe2\x80\x94");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char iso[32], shown[40];
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    strftime(shown, sizeof shown, "%Y-%m-%d %H:%M:%S UTC", &tm);
    rd_buf_printf(b, "<time datetime=\"%s\">%s</time>", iso, shown);
}

static void put_count(rd_buf *b, uint64_t v)
{
    char d[32];
    int n = snprintf(d, sizeof d, "%" PRIu64, v);
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            rd_buf_putc(b, ',');
        rd_buf_putc(b, d[i]);
    }
}

static void put_duration(rd_buf *b, double s)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        rd_buf_printf(b, "%.1f s", s);
    else if (s < 3600)
        rd_buf_printf(b, "%dm %02ds", (int)(s / 60), (int)s % 60);
    else
        rd_buf_printf(b, "%dh %02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

static void put_bytes(rd_buf *b, uint64_t v)
{
    if (v < 1024)
        rd_buf_printf(b, "%" PRIu64 " B", v);
    else if (v < 1024 * 1024)
        rd_buf_printf(b, "%.1f KiB", (double)v / 1024);
    else if (v < (uint64_t)1024 * 1024 * 1024)
        rd_buf_printf(b, "%.1f MiB", (double)v / (1024 * 1024));
    else
        rd_buf_printf(b, "%.2f GiB", (double)v / (1024.0 * 1024 * 1024));
}

/* A run's duration: the last attempt's total, else its wall time. */
static double run_seconds(const rd_store_run *r)
{
    if (r->total_s > 0)
        return r->total_s;
    if (r->started_at > 0 && r->finished_at >= r->started_at)
        return (double)(r->finished_at - r->started_at) / 1000.0;
    return 0;
}

/* The moment that stands for a run: when it ended, else started, else was queued. */
static int64_t run_when(const rd_store_run *r)
{
    return r->finished_at > 0 ? r->finished_at : r->started_at > 0 ? r->started_at : r->queued_at;
}

static void put_state(rd_buf *b, rd_run_state s)
{
    const char *n = rd_run_state_name(s);
    rd_buf_printf(b, "<span class=\"state %s\">%s</span>", n, n);
}

static void project_href(rd_buf *b, const char *project)
{
    rd_buf_puts(b, "/projects/");
    rd_page_url_segment(b, project);
}

/* Marks out failed (its content lost), as an append that ran out of memory would. */
static void fail_buf(rd_buf *out)
{
    rd_buf_free(out);
    out->failed = 1;
}

/* ---- the document ---------------------------------------------------------------------------------------- */

static const char STYLE[] =
    ":root{--fg:#1d232a;--muted:#5f6b76;--line:#d9dee3;--bg:#f6f7f9;--card:#fff;--accent:#2563eb;"
    "--ok:#15803d;--bad:#b91c1c;--warn:#a16207}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);"
    "background:var(--bg)}"
    "header{display:flex;align-items:center;gap:1rem;padding:.6rem 1.5rem;background:#111827;color:#e5e7eb}"
    "header .brand{color:#fff;font-weight:700;text-decoration:none;font-size:1.1rem}"
    "header .who{margin-left:auto;color:#cbd5e1}"
    "header form{margin:0}"
    "main{max-width:1100px;margin:0 auto;padding:1.2rem 1.5rem 3rem}"
    "h1{font-size:1.4rem;margin:.4rem 0 1rem}"
    "h2{font-size:1.15rem;margin:0;display:flex;align-items:center;gap:.6rem}"
    "h3{font-size:.95rem;margin:1.1rem 0 .4rem;color:var(--muted)}"
    "a{color:var(--accent)}"
    ".project{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.2rem;"
    "margin:0 0 1.2rem}"
    ".project .top{display:flex;align-items:center;gap:1rem;flex-wrap:wrap}"
    ".project .top form{margin-left:auto}"
    ".meta{color:var(--muted);margin:.3rem 0}"
    ".role{font-size:.75rem;font-weight:600;border:1px solid var(--line);border-radius:999px;padding:0 .5rem;"
    "color:var(--muted)}"
    "table{border-collapse:collapse;width:100%;margin:.4rem 0}"
    "th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}"
    "th{font-size:.8rem;color:var(--muted);font-weight:600}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "td.source{font-weight:600;overflow-wrap:anywhere}td time{white-space:nowrap}"
    ".state{font-size:.8rem;font-weight:600;padding:.05rem .45rem;border-radius:4px;background:#eef1f4}"
    ".state.success{color:var(--ok);background:#e7f6ec}"
    ".state.failed{color:var(--bad);background:#fdecec}"
    ".state.running,.state.queued{color:var(--accent);background:#e8effd}"
    ".state.skipped,.state.cancelled{color:var(--warn);background:#fbf3e1}"
    "pre.error{white-space:pre-wrap;word-break:break-word;margin:0;color:var(--bad);font-size:.8rem}"
    ".failures li{margin:.2rem 0}"
    ".charts{display:flex;gap:1rem;flex-wrap:wrap}"
    ".chart{background:#fbfcfd;border:1px solid var(--line);border-radius:6px}"
    ".chart .axis{stroke:#9aa5b1;stroke-width:1}"
    ".chart .grid{stroke:#e5e9ed;stroke-width:1}"
    ".chart .lbl{font-size:10px;fill:#5f6b76}"
    ".chart .ttl{font-size:11px;fill:#1d232a;font-weight:600}"
    ".chart polyline{fill:none;stroke:var(--accent);stroke-width:1.5}"
    ".chart circle{fill:var(--accent)}"
    ".chart circle.failed{fill:var(--bad)}"
    "button{font:inherit;padding:.35rem .9rem;border-radius:6px;border:1px solid #1e40af;background:var(--accent);"
    "color:#fff;cursor:pointer}"
    "header button{background:transparent;border-color:#64748b;color:#e5e7eb;padding:.2rem .7rem}"
    ".login{display:flex;flex-direction:column;gap:.6rem;max-width:420px;background:var(--card);"
    "border:1px solid var(--line);border-radius:8px;padding:1.2rem}"
    ".login input{font:inherit;padding:.45rem;border:1px solid var(--line);border-radius:6px}"
    ".msg{color:var(--bad);font-weight:600}"
    ".empty{color:var(--muted);font-style:italic}";

static void logout_form(rd_buf *out, const char *csrf)
{
    rd_buf_puts(out, "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"");
    rd_page_escape(out, csrf);
    rd_buf_puts(out, "\"><button type=\"submit\" id=\"logout\">Log out</button></form>");
}

void rd_page_document(rd_buf *out, const rd_page_viewer *v, const char *title, const char *body_html)
{
    rd_buf_puts(out, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    rd_page_escape(out, title);
    rd_buf_puts(out, " \xe2\x80\x94 redduck</title><style>");
    rd_buf_puts(out, STYLE);
    rd_buf_puts(out, "</style></head>\n<body><header><a class=\"brand\" href=\"/\">redduck</a>");
    if (v && v->user) {
        rd_buf_puts(out, "<span class=\"who\">");
        rd_page_escape(out, v->user->name);
        if (v->user->admin)
            rd_buf_puts(out, " (server admin)");
        rd_buf_puts(out, "</span>");
        logout_form(out, v->csrf);
    }
    rd_buf_puts(out, "</header>\n<main>");
    rd_buf_puts(out, body_html);
    rd_buf_puts(out, "</main></body></html>\n");
}

void rd_page_render_login(rd_buf *out, const char *message)
{
    rd_buf body = RD_BUF_INIT;
    rd_buf_puts(&body, "<h1>Sign in</h1>");
    if (message) {
        rd_buf_puts(&body, "<p class=\"msg\" id=\"message\">");
        rd_page_escape(&body, message);
        rd_buf_puts(&body, "</p>");
    }
    rd_buf_puts(&body, "<form class=\"login\" method=\"post\" action=\"/login\" id=\"login\">"
                       "<label for=\"token\">API token</label>"
                       "<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" "
                       "required autofocus><button type=\"submit\">Sign in</button></form>"
                       "<p class=\"meta\">A token comes from <code>redduck server token create USER</code>. "
                       "The session lasts 8 hours.</p>");
    rd_page_document(out, NULL, "Sign in", rd_buf_cstr(&body));
    if (rd_buf_failed(&body))
        fail_buf(out);
    rd_buf_free(&body);
}

void rd_page_render_message(rd_buf *out, const rd_page_viewer *v, const char *title, const char *text)
{
    rd_buf body = RD_BUF_INIT;
    rd_buf_puts(&body, "<h1>");
    rd_page_escape(&body, title);
    rd_buf_puts(&body, "</h1><p id=\"message\">");
    rd_page_escape(&body, text);
    rd_buf_puts(&body, "</p><p><a href=\"/\">Back to the dashboard</a></p>");
    rd_page_document(out, v, title, rd_buf_cstr(&body));
    if (rd_buf_failed(&body))
        fail_buf(out);
    rd_buf_free(&body);
}

/* ---- the charts ------------------------------------------------------------------------------------------ */

#define CW 480 /* the SVG's size */
#define CH 180
#define ML 62 /* margins: left (the y labels), right, top (the title), bottom (the x labels) */
#define MR 14
#define MT 22
#define MB 24

/* 1 for a run the charts show: one that ended (success or failed) within the window. */
static int charted(const rd_store_run *r, int64_t since)
{
    return (r->state == RD_RUN_SUCCESS || r->state == RD_RUN_FAILED) && r->finished_at >= since;
}

static void axis_label(rd_buf *b, int rows_metric, double v)
{
    if (rows_metric)
        put_count(b, (uint64_t)(v + 0.5));
    else
        put_duration(b, v);
}

static int by_finish(const void *x, const void *y)
{
    const rd_store_run *a = *(const rd_store_run *const *)x, *b = *(const rd_store_run *const *)y;
    if (a->finished_at != b->finished_at)
        return a->finished_at < b->finished_at ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* One chart of runs (newest first, n of them) over [since, now]: rows (rows_metric) or durations; a point
 * per run that ended, the newest RD_PAGE_MAX_POINTS, in the order they ended. */
static void chart(rd_buf *b, const rd_store_run *runs, size_t n, int64_t since, int64_t now, int rows_metric)
{
    const char *metric = rows_metric ? "rows" : "duration";
    const rd_store_run *pts[RD_PAGE_MAX_POINTS];
    size_t k = 0;
    for (size_t i = 0; i < n && k < RD_PAGE_MAX_POINTS; i++)
        if (charted(&runs[i], since))
            pts[k++] = &runs[i];
    qsort(pts, k, sizeof *pts, by_finish);
    double max = 0;
    for (size_t i = 0; i < k; i++) {
        double v = rows_metric ? (double)pts[i]->rows : run_seconds(pts[i]);
        if (v > max)
            max = v;
    }
    if (max <= 0)
        max = rows_metric ? 10 : 1;
    double pw = CW - ML - MR, ph = CH - MT - MB, span = (double)(now > since ? now - since : 1);
    rd_buf_printf(b, "<svg class=\"chart\" data-metric=\"%s\" data-points=\"%zu\" width=\"%d\" height=\"%d\" "
                     "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s of the runs of the last %d days\" "
                     "xmlns=\"http://www.w3.org/2000/svg\">",
                  metric, k, CW, CH, CW, CH, rows_metric ? "Rows" : "Durations", RD_PAGE_CHART_DAYS);
    rd_buf_printf(b, "<title>%s of the runs of the last %d days</title>", rows_metric ? "Rows" : "Durations",
                  RD_PAGE_CHART_DAYS);
    rd_buf_printf(b, "<text class=\"ttl\" x=\"%d\" y=\"14\">%s, last %d days</text>", ML,
                  rows_metric ? "Rows loaded" : "Run duration", RD_PAGE_CHART_DAYS);
    /* grid and y labels: 0, half, max */
    for (int g = 0; g <= 2; g++) {
        double y = MT + ph - ph * g / 2.0;
        rd_buf_printf(b, "<line class=\"%s\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", g ? "grid" : "axis", ML,
                      y, CW - MR, y);
        rd_buf_printf(b, "<text class=\"lbl\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", ML - 6, y + 3);
        axis_label(b, rows_metric, max * g / 2.0);
        rd_buf_puts(b, "</text>");
    }
    rd_buf_printf(b, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%.1f\"/>", ML, MT, ML, MT + ph);
    /* x labels: the window's start, its middle and now */
    for (int g = 0; g <= 2; g++) {
        time_t t = (time_t)((since + (now - since) * g / 2) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char d[16];
        strftime(d, sizeof d, "%b %d", &tm);
        rd_buf_printf(b, "<text class=\"lbl\" x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">%s</text>", ML + pw * g / 2.0,
                      CH - 8, g == 0 ? "start" : g == 1 ? "middle" : "end", g == 2 ? "now" : d);
    }
    if (!k) {
        rd_buf_printf(b, "<text class=\"lbl\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no runs yet</text>",
                      ML + pw / 2, MT + ph / 2);
        rd_buf_puts(b, "</svg>");
        return;
    }
    rd_buf_puts(b, "<polyline points=\"");
    for (size_t i = 0; i < k; i++) {
        const rd_store_run *r = pts[i];
        double v = rows_metric ? (double)r->rows : run_seconds(r);
        double x = ML + pw * (double)(r->finished_at - since) / span, y = MT + ph - ph * v / max;
        rd_buf_printf(b, "%s%.1f,%.1f", i ? " " : "", x, y);
    }
    rd_buf_puts(b, "\"/>");
    for (size_t i = 0; i < k; i++) {
        const rd_store_run *r = pts[i];
        double v = rows_metric ? (double)r->rows : run_seconds(r);
        double x = ML + pw * (double)(r->finished_at - since) / span, y = MT + ph - ph * v / max;
        rd_buf_printf(b, "<circle class=\"pt %s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\"><title>",
                      rd_run_state_name(r->state), x, y);
        rd_page_escape(b, r->source);
        rd_buf_printf(b, " \xc2\xb7 run %" PRId64 " \xc2\xb7 %s \xc2\xb7 ", r->id, rd_run_state_name(r->state));
        if (rows_metric) {
            put_count(b, r->rows);
            rd_buf_puts(b, " rows");
        } else {
            put_duration(b, v);
        }
        time_t t = (time_t)(r->finished_at / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char d[40];
        strftime(d, sizeof d, " \xc2\xb7 %Y-%m-%d %H:%M UTC", &tm);
        rd_buf_printf(b, "%s</title></circle>", d);
    }
    rd_buf_puts(b, "</svg>");
}

/* ---- a project's block ----------------------------------------------------------------------------------- */

/* One row of the sources table: what the scheduler says and the newest run. */
typedef struct source_row {
    const char *name;
    const rd_scheduler_source *sched; /* NULL: not in the active deployment, or no scheduler */
    const rd_store_run *last;         /* NULL: never ran */
} source_row;

static int row_cmp(const void *x, const void *y)
{
    return strcmp(((const source_row *)x)->name, ((const source_row *)y)->name);
}

static void put_snapshot(rd_buf *b, rd_api *a, const char *project)
{
    rd_store_snapshot s;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_snapshot_current(a->st, project, &s, &err);
    rd_buf_puts(b, "<p class=\"meta snapshot\">");
    if (st == RD_E_NOT_FOUND) {
        rd_buf_puts(b, "Snapshot: none published yet.</p>");
        return;
    }
    if (st != RD_OK) {
        rd_buf_puts(b, "Snapshot: cannot be read (");
        rd_page_escape(b, err.message);
        rd_buf_puts(b, ").</p>");
        return;
    }
    rd_buf_printf(b, "Snapshot %" PRId64 " of ", s.id);
    put_time(b, s.created_at_ms);
    rd_buf_printf(b, " (run %" PRId64 ", ", s.run_id);
    put_bytes(b, s.size);
    rd_buf_puts(b, ")");
    json_t *tables = s.tables_json ? json_loads(s.tables_json, 0, NULL) : NULL;
    if (json_is_array(tables) && json_array_size(tables)) {
        rd_buf_puts(b, ": ");
        size_t i;
        json_t *t;
        json_array_foreach(tables, i, t) {
            if (i == RD_PAGE_MAX_SOURCES) {
                rd_buf_printf(b, ", \xe2\x80\xa6 %zu more", json_array_size(tables) - i);
                break;
            }
            rd_buf_puts(b, i ? ", " : "");
            rd_buf_puts(b, "<span class=\"table\">");
            rd_page_escape(b, json_string_value(json_object_get(t, "name")));
            rd_buf_puts(b, "</span> (");
            json_int_t rows = json_integer_value(json_object_get(t, "rows"));
            put_count(b, (uint64_t)rows);
            rd_buf_puts(b, rows == 1 ? " row)" : " rows)");
        }
    }
    json_decref(tables);
    rd_buf_puts(b, "</p>");
    rd_store_snapshot_clear(&s);
}

static void put_deployment(rd_buf *b, rd_api *a, const char *project)
{
    rd_store_deployment d;
    rd_error err;
    rd_error_clear(&err);
    rd_buf_puts(b, "<p class=\"meta deployment\">");
    if (rd_store_deploy_active(a->st, project, &d, &err) != RD_OK) {
        rd_buf_puts(b, "Not deployed yet.</p>");
        return;
    }
    rd_buf_printf(b, "Version %" PRId64, d.version);
    if (d.environment != RD_ENV_NONE)
        rd_buf_printf(b, " (%s)", rd_env_name(d.environment));
    rd_buf_puts(b, ", deployed ");
    put_time(b, d.created_at * 1000);
    rd_buf_puts(b, " by ");
    rd_page_escape(b, d.created_by);
    rd_buf_puts(b, "</p>");
    rd_store_deployment_clear(&d);
}

static void refresh_form(rd_buf *b, const rd_page_viewer *v, const char *project)
{
    rd_buf_puts(b, "<form method=\"post\" class=\"refresh\" action=\"");
    project_href(b, project);
    rd_buf_puts(b, "/refresh\"><input type=\"hidden\" name=\"csrf\" value=\"");
    rd_page_escape(b, v->csrf);
    rd_buf_puts(b, "\"><button type=\"submit\" class=\"refresh-now\">Refresh now</button></form>");
}

static void sources_table(rd_buf *b, const source_row *rows, size_t n, size_t total, int64_t now_ms)
{
    if (!n) {
        rd_buf_puts(b, "<p class=\"empty\">No sources have run yet.</p>");
        return;
    }
    rd_buf_puts(b, "<table class=\"sources\"><thead><tr><th>Source</th><th>Schedule</th><th>Next run</th>"
                   "<th>Last run</th><th>Trigger</th><th>When</th><th>Rows</th><th>Duration</th></tr></thead><tbody>");
    for (size_t i = 0; i < n; i++) {
        const source_row *r = &rows[i];
        rd_buf_puts(b, "<tr><td class=\"source\">");
        rd_page_escape(b, r->name);
        rd_buf_puts(b, "</td><td>");
        if (r->sched)
            rd_page_escape(b, r->sched->schedule);
        else
            rd_buf_puts(b, "\xe2\x80\x94");
        rd_buf_puts(b, "</td><td>");
        if (r->sched && r->sched->running)
            rd_buf_puts(b, "<span class=\"state running\">running</span>");
        else if (r->sched && r->sched->next_run_ms > 0)
            put_time(b, r->sched->next_run_ms);
        else
            rd_buf_puts(b, "\xe2\x80\x94");
        rd_buf_puts(b, "</td>");
        if (r->last) {
            rd_buf_puts(b, "<td>");
            put_state(b, r->last->state);
            rd_buf_printf(b, "</td><td>%s", rd_run_trigger_name(r->last->trigger));
            if (r->last->trigger == RD_TRIGGER_MANUAL && r->last->triggered_by) {
                rd_buf_puts(b, " by ");
                rd_page_escape(b, r->last->triggered_by);
            }
            rd_buf_puts(b, "</td><td>");
            put_time(b, run_when(r->last));
            rd_buf_puts(b, "</td><td class=\"num\">");
            put_count(b, r->last->rows);
            rd_buf_puts(b, "</td><td class=\"num\">");
            if (r->last->finished_at > 0)
                put_duration(b, run_seconds(r->last));
            else
                rd_buf_puts(b, "\xe2\x80\x94");
            rd_buf_puts(b, "</td></tr>");
            if (r->last->state == RD_RUN_FAILED && r->last->error) {
                rd_buf_puts(b, "<tr class=\"error\"><td colspan=\"8\"><pre class=\"error\">");
                escape_max(b, r->last->error, RD_PAGE_MAX_ERROR_TEXT);
                rd_buf_puts(b, "</pre></td></tr>");
            }
        } else {
            rd_buf_puts(b, "<td colspan=\"5\" class=\"empty\">never ran</td></tr>");
        }
    }
    rd_buf_puts(b, "</tbody></table>");
    if (total > n)
        rd_buf_printf(b, "<p class=\"meta\">%zu more sources not shown.</p>", total - n);
    (void)now_ms;
}

static void failures_list(rd_buf *b, const rd_store_run *runs, size_t n)
{
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < RD_PAGE_MAX_FAILURES; i++) {
        const rd_store_run *r = &runs[i];
        if (r->state != RD_RUN_FAILED)
            continue;
        if (!shown++)
            rd_buf_puts(b, "<h3>Recent failures</h3><ul class=\"failures\">");
        rd_buf_puts(b, "<li><strong>");
        rd_page_escape(b, r->source);
        rd_buf_printf(b, "</strong>, run %" PRId64 ", ", r->id);
        put_time(b, run_when(r));
        rd_buf_puts(b, ": <pre class=\"error\">");
        escape_max(b, r->error ? r->error : "(no message)", RD_PAGE_MAX_ERROR_TEXT);
        rd_buf_puts(b, "</pre></li>");
    }
    if (shown)
        rd_buf_puts(b, "</ul>");
}

static void runs_table(rd_buf *b, const rd_store_run *runs, size_t n)
{
    rd_buf_puts(b, "<h3>Recent runs</h3>");
    if (!n) {
        rd_buf_puts(b, "<p class=\"empty\">No runs yet.</p>");
        return;
    }
    rd_buf_puts(b, "<table class=\"runs\"><thead><tr><th>Run</th><th>Source</th><th>State</th><th>Trigger</th>"
                   "<th>Queued</th><th>Finished</th><th>Attempts</th><th>Rows</th><th>Bytes</th><th>Files</th>"
                   "<th>Duration</th></tr></thead><tbody>");
    for (size_t i = 0; i < n && i < RD_PAGE_MAX_RUNS; i++) {
        const rd_store_run *r = &runs[i];
        rd_buf_printf(b, "<tr><td class=\"num\">%" PRId64 "</td><td class=\"source\">", r->id);
        rd_page_escape(b, r->source);
        rd_buf_puts(b, "</td><td>");
        put_state(b, r->state);
        rd_buf_printf(b, "</td><td>%s", rd_run_trigger_name(r->trigger));
        if (r->triggered_by && r->trigger == RD_TRIGGER_MANUAL) {
            rd_buf_puts(b, " by ");
            rd_page_escape(b, r->triggered_by);
        }
        rd_buf_puts(b, "</td><td>");
        put_time(b, r->queued_at);
        rd_buf_puts(b, "</td><td>");
        put_time(b, r->finished_at);
        rd_buf_printf(b, "</td><td class=\"num\">%d</td><td class=\"num\">", r->attempts);
        put_count(b, r->rows);
        rd_buf_puts(b, "</td><td class=\"num\">");
        put_bytes(b, r->bytes);
        rd_buf_puts(b, "</td><td class=\"num\">");
        put_count(b, r->files);
        rd_buf_puts(b, "</td><td class=\"num\">");
        if (r->finished_at > 0)
            put_duration(b, run_seconds(r));
        else
            rd_buf_puts(b, "\xe2\x80\x94");
        rd_buf_puts(b, "</td></tr>");
        if (r->state == RD_RUN_FAILED && r->error) {
            rd_buf_puts(b, "<tr class=\"error\"><td colspan=\"11\"><pre class=\"error\">");
            escape_max(b, r->error, RD_PAGE_MAX_ERROR_TEXT);
            rd_buf_puts(b, "</pre></td></tr>");
        }
    }
    rd_buf_puts(b, "</tbody></table>");
}

/* The block of one project the viewer has role in; with detail, its recent runs too. */
static rd_status project_block(rd_api *a, const rd_page_viewer *v, const char *project, rd_role role, int prod,
                               int detail, rd_buf *b, rd_error *err)
{
    rd_store_run *latest = NULL, *runs = NULL;
    size_t nlatest = 0, nruns = 0, nsched = 0;
    rd_scheduler_source *sched = NULL;
    int64_t since = v->now_ms - (int64_t)RD_PAGE_CHART_DAYS * 86400 * 1000;
    rd_status st = rd_store_run_latest(a->st, project, &latest, &nlatest, err);
    if (st == RD_OK)
        st = rd_store_run_list(a->st, project, NULL, since, 1000, &runs, &nruns, err);
    if (st != RD_OK) {
        rd_store_runs_free(latest, nlatest);
        return st;
    }
    int sched_failed = 0;
    if (a->sched) {
        rd_error serr;
        rd_error_clear(&serr);
        rd_status s2 = rd_scheduler_sources(a->sched, project, &sched, &nsched, &serr);
        if (s2 != RD_OK) {
            sched = NULL;
            nsched = 0;
            sched_failed = s2 != RD_E_NOT_FOUND;
        }
    }
    /* the rows: the scheduler's sources, then those only runs know (no longer deployed, or no scheduler) */
    size_t cap = nsched + nlatest, nrows = 0;
    source_row *rows = calloc(cap ? cap : 1, sizeof *rows);
    if (!rows) {
        rd_store_runs_free(latest, nlatest);
        rd_store_runs_free(runs, nruns);
        rd_scheduler_sources_free(sched, nsched);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < nsched; i++)
        rows[nrows++] = (source_row){ .name = sched[i].name, .sched = &sched[i] };
    for (size_t i = 0; i < nlatest; i++) {
        size_t j = 0;
        while (j < nsched && strcmp(rows[j].name, latest[i].source) != 0)
            j++;
        if (j < nsched)
            rows[j].last = &latest[i];
        else
            rows[nrows++] = (source_row){ .name = latest[i].source, .last = &latest[i] };
    }
    qsort(rows, nrows, sizeof *rows, row_cmp);

    rd_buf_puts(b, "<section class=\"project\" data-project=\"");
    rd_page_escape(b, project);
    rd_buf_puts(b, "\"><div class=\"top\"><h2>");
    if (detail) {
        rd_page_escape(b, project);
    } else {
        rd_buf_puts(b, "<a href=\"");
        project_href(b, project);
        rd_buf_puts(b, "\">");
        rd_page_escape(b, project);
        rd_buf_puts(b, "</a>");
    }
    rd_buf_printf(b, " <span class=\"role\">%s%s</span></h2>", rd_role_name(role), prod ? ", prod" : "");
    if (rd_role_can(role, prod, RD_ACTION_REFRESH, RD_ENV_NONE))
        refresh_form(b, v, project);
    rd_buf_puts(b, "</div>");
    put_deployment(b, a, project);
    put_snapshot(b, a, project);
    if (sched_failed)
        rd_buf_puts(b, "<p class=\"msg\">The scheduler could not list this project's sources.</p>");
    sources_table(b, rows, nrows < RD_PAGE_MAX_SOURCES ? nrows : RD_PAGE_MAX_SOURCES, nrows, v->now_ms);
    failures_list(b, runs, nruns);
    rd_buf_puts(b, "<div class=\"charts\">");
    chart(b, runs, nruns, since, v->now_ms, 0);
    chart(b, runs, nruns, since, v->now_ms, 1);
    rd_buf_puts(b, "</div>");
    if (detail) {
        rd_store_run *recent = NULL;
        size_t nrecent = 0;
        st = rd_store_run_list(a->st, project, NULL, 0, RD_PAGE_MAX_RUNS, &recent, &nrecent, err);
        if (st == RD_OK)
            runs_table(b, recent, nrecent);
        rd_store_runs_free(recent, nrecent);
    }
    rd_buf_puts(b, "</section>");
    free(rows);
    rd_store_runs_free(latest, nlatest);
    rd_store_runs_free(runs, nruns);
    rd_scheduler_sources_free(sched, nsched);
    return st;
}

/* ---- the pages ------------------------------------------------------------------------------------------- */

rd_status rd_page_render_dashboard(rd_api *a, const rd_page_viewer *v, rd_buf *out, rd_error *err)
{
    rd_store_project *ps = NULL;
    size_t n = 0;
    rd_status st = rd_store_project_list(a->st, &ps, &n, err);
    if (st != RD_OK)
        return st;
    rd_buf body = RD_BUF_INIT;
    rd_buf_puts(&body, "<h1>Projects</h1>");
    size_t shown = 0, more = 0;
    for (size_t i = 0; i < n && st == RD_OK; i++) {
        rd_role role = RD_ROLE_NONE;
        int prod = 0;
        rd_status rs = rd_store_role_effective(a->st, v->user->name, ps[i].name, &role, &prod, err);
        if (rs == RD_E_NOT_FOUND || (rs == RD_OK && role == RD_ROLE_NONE))
            continue;
        if (rs != RD_OK) {
            st = rs;
            break;
        }
        if (shown == RD_PAGE_MAX_PROJECTS) {
            more++;
            continue;
        }
        shown++;
        st = project_block(a, v, ps[i].name, role, prod, 0, &body, err);
    }
    rd_store_projects_free(ps, n);
    if (st == RD_OK) {
        if (!shown)
            rd_buf_puts(&body, "<p class=\"empty\">You are a member of no project yet.</p>");
        if (more)
            rd_buf_printf(&body, "<p class=\"meta\">%zu more projects not shown.</p>", more);
        rd_page_document(out, v, "Projects", rd_buf_cstr(&body));
        if (rd_buf_failed(&body))
            fail_buf(out);
    }
    rd_buf_free(&body);
    return st;
}

rd_status rd_page_render_project(rd_api *a, const rd_page_viewer *v, const char *project, rd_buf *out,
                                 rd_error *err)
{
    rd_role role = RD_ROLE_NONE;
    int prod = 0;
    rd_status st = rd_store_role_effective(a->st, v->user->name, project, &role, &prod, err);
    if (st == RD_OK && role == RD_ROLE_NONE)
        st = rd_error_set(err, RD_E_NOT_FOUND, "no project %s (or you are not a member of it)", project);
    if (st != RD_OK)
        return st;
    rd_buf body = RD_BUF_INIT;
    rd_buf_puts(&body, "<p><a href=\"/\">\xe2\x86\x90 All projects</a></p>");
    st = project_block(a, v, project, role, prod, 1, &body, err);
    if (st == RD_OK) {
        rd_page_document(out, v, project, rd_buf_cstr(&body));
        if (rd_buf_failed(&body))
            fail_buf(out);
    }
    rd_buf_free(&body);
    return st;
}
