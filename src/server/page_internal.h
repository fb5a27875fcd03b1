/* page_internal.h — what the status page's two files share: page.c (HTTP: routes, the login form, sessions,
 * CSRF, the answers' headers) and page_render.c (the HTML: escaping, the dashboard, a project's page, the
 * run charts as inline SVG, read from the store and the scheduler). Not installed; only src/server and the
 * page's unit test include it.
 *
 * Every renderer appends to an rd_buf (out of memory is checked once by the caller, rd_buf_failed), escapes
 * every value read from the store or the scheduler (& < > " '), builds URLs from percent-encoded path
 * segments, and shows at most the RD_PAGE_MAX_* below. Renderers own no state and are thread-safe (the store
 * and the scheduler are). */
#ifndef RD_SERVER_PAGE_INTERNAL_H
#define RD_SERVER_PAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/buf.h"
#include "server/api_internal.h"
#include "server/store.h"

#define RD_PAGE_SESSION_SECONDS (8 * 3600) /* a session's lifetime from its login (not sliding) */
#define RD_PAGE_MAX_SESSIONS 10000         /* sessions kept; the oldest is dropped beyond */
#define RD_PAGE_MAX_FORM 4096              /* bytes of a form body */
#define RD_PAGE_MAX_PROJECTS 100           /* projects on the dashboard */
#define RD_PAGE_MAX_SOURCES 100            /* sources shown per project */
#define RD_PAGE_MAX_RUNS 50                /* rows of a project's recent runs table */
#define RD_PAGE_MAX_FAILURES 10            /* recent failures listed per project */
#define RD_PAGE_MAX_POINTS 300             /* points per chart (the newest runs) */
#define RD_PAGE_MAX_ERROR_TEXT 2000        /* characters of one error message shown */
#define RD_PAGE_CHART_DAYS 30

/* Who is looking, as page.c resolved it from the session. */
typedef struct rd_page_viewer {
    const rd_store_user *user; /* re-read from the store on every request */
    const char *csrf;          /* the session's CSRF token (hex), put in every form */
    int64_t now_ms;            /* Unix milliseconds, for "next run" and the charts' window */
} rd_page_viewer;

/* Appends s HTML-escaped (& < > " ' and nothing else changed): safe in text and in quoted attributes. */
void rd_page_escape(rd_buf *b, const char *s);
/* Appends s percent-encoded as one URL path segment (only A-Z a-z 0-9 - . _ ~ kept). */
void rd_page_url_segment(rd_buf *b, const char *s);

/* A whole document: <!doctype html>, the one <style>, a header (with the user and a logout form when v is
 * not NULL), title (escaped) and body_html (already HTML, inserted as is). */
void rd_page_document(rd_buf *out, const rd_page_viewer *v, const char *title, const char *body_html);
/* The login page, with message (escaped; NULL for none) above the form. */
void rd_page_render_login(rd_buf *out, const char *message);
/* A page saying what went wrong (title and text escaped) and linking back to /. */
void rd_page_render_message(rd_buf *out, const rd_page_viewer *v, const char *title, const char *text);
/* The dashboard: each project the user may see (a server admin: all), at most RD_PAGE_MAX_PROJECTS. RD_OK, or
 * the store's failure (out then holds nothing useful). */
rd_status rd_page_render_dashboard(rd_api *a, const rd_page_viewer *v, rd_buf *out, rd_error *err);
/* One project's page with its recent runs. RD_E_NOT_FOUND for a project that does not exist or that the user
 * is no member of (the same answer for both). */
rd_status rd_page_render_project(rd_api *a, const rd_page_viewer *v, const char *project, rd_buf *out,
                                 rd_error *err);

/* For tests: the sessions' clock in Unix seconds (NULL: the real one). Call before the server starts. */
void rd_page_set_clock(struct rd_page *p, int64_t (*now_s)(void *ctx), void *ctx);

#endif
