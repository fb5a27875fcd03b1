/* query.c — the query API's engine (query.h): read-only DuckDB instances over published snapshots, cached per
 * (project, snapshot) with reference counts, statements checked before they run, limits (rows, time, memory,
 * concurrency) and the answer as JSON or CSV through redduck/value.h. Also the Range parser of the download. */
#define DUCKDB_API_NO_DEPRECATED 1
#include "server/query.h"

#include <duckdb.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redduck/value.h"

/* One read-only instance of one snapshot. */
typedef struct instance {
    char project[RD_STORE_NAME_MAX + 1];
    int64_t snapshot_id;
    char *path;
    duckdb_database db;
    unsigned refs;    /* queries using it */
    int stale;        /* a newer snapshot of the project was opened: closed when refs reaches 0 */
    uint64_t used;    /* the engine's clock at its last use (LRU) */
    struct instance *next;
} instance;

struct rd_query_engine {
    pthread_mutex_t lock;
    instance *list;
    uint64_t clock;
    int running;          /* queries between admission and their end */
    int waiting;          /* queries waiting for a slot */
    pthread_cond_t slot;  /* a query ended */
};

void rd_query_result_free(rd_query_result *r)
{
    if (!r)
        return;
    rd_buf_free(&r->body);
    memset(r, 0, sizeof *r);
}

rd_status rd_query_engine_new(rd_query_engine **out, rd_error *err)
{
    rd_query_engine *e = calloc(1, sizeof *e);
    if (!e)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->slot, NULL);
    *out = e;
    return RD_OK;
}

static void instance_close(instance *in)
{
    duckdb_close(&in->db);
    free(in->path);
    free(in);
}

void rd_query_engine_free(rd_query_engine *e)
{
    if (!e)
        return;
    for (instance *in = e->list, *next; in; in = next) {
        next = in->next;
        instance_close(in);
    }
    pthread_cond_destroy(&e->slot);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

size_t rd_query_engine_instances(rd_query_engine *e)
{
    size_t n = 0;
    pthread_mutex_lock(&e->lock);
    for (instance *in = e->list; in; in = in->next)
        n++;
    pthread_mutex_unlock(&e->lock);
    return n;
}

/* Closes idle stale instances and, beyond RD_QUERY_CACHE_MAX, the least recently used idle ones. Under lock. */
static void cache_trim(rd_query_engine *e)
{
    for (instance **p = &e->list; *p;) {
        instance *in = *p;
        if (in->stale && in->refs == 0) {
            *p = in->next;
            instance_close(in);
        } else {
            p = &in->next;
        }
    }
    for (;;) {
        size_t n = 0;
        instance **oldest = NULL;
        for (instance **p = &e->list; *p; p = &(*p)->next) {
            n++;
            if ((*p)->refs == 0 && (!oldest || (*p)->used < (*oldest)->used))
                oldest = p;
        }
        if (n <= RD_QUERY_CACHE_MAX || !oldest)
            return;
        instance *in = *oldest;
        *oldest = in->next;
        instance_close(in);
    }
}

static rd_status set_config(duckdb_config cfg, const char *name, const char *value, rd_error *err)
{
    if (duckdb_set_config(cfg, name, value) != DuckDBSuccess)
        return rd_error_set(err, RD_E_INTERNAL, "DuckDB refused the setting %s=%s of the query API", name, value);
    return RD_OK;
}

/* Opens the snapshot file read-only with the query API's settings, lock_configuration last. */
static rd_status instance_open(const rd_store_snapshot *s, const rd_query_limits *lim, duckdb_database *db,
                               rd_error *err)
{
    duckdb_config cfg = NULL;
    if (duckdb_create_config(&cfg) != DuckDBSuccess)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    char threads[16];
    snprintf(threads, sizeof threads, "%d", lim->threads);
    rd_status st = RD_OK;
    const char *const settings[][2] = {
        { "access_mode", "READ_ONLY" },
        { "enable_external_access", "false" },
        { "autoinstall_known_extensions", "false" },
        { "autoload_known_extensions", "false" },
        { "allow_community_extensions", "false" },
        { "allow_unsigned_extensions", "false" },
        { "memory_limit", lim->max_memory },
        { "threads", threads },
        { "max_temp_directory_size", "0KB" }, /* nothing spills next to the snapshots: past memory_limit is an error */
        { "lock_configuration", "true" },
    };
    for (size_t i = 0; st == RD_OK && i < sizeof settings / sizeof *settings; i++)
        st = set_config(cfg, settings[i][0], settings[i][1], err);
    char *open_err = NULL;
    if (st == RD_OK && duckdb_open_ext(s->path, db, cfg, &open_err) != DuckDBSuccess)
        st = rd_error_set(err, RD_E_IO, "cannot open snapshot %" PRId64 " of %s: %s", s->id, s->project,
                          open_err ? open_err : "DuckDB failed");
    duckdb_free(open_err);
    duckdb_destroy_config(&cfg);
    return st;
}

/* The instance of s, opened if needed, with one more reference. Older instances of the project become stale. */
static rd_status instance_acquire(rd_query_engine *e, const rd_store_snapshot *s, const rd_query_limits *lim,
                                  instance **out, rd_error *err)
{
    pthread_mutex_lock(&e->lock);
    instance *found = NULL;
    for (instance *in = e->list; in; in = in->next) {
        if (strcmp(in->project, s->project) != 0)
            continue;
        if (in->snapshot_id == s->id && strcmp(in->path, s->path) == 0 && !in->stale)
            found = in;
        else if (in->snapshot_id < s->id)
            in->stale = 1;
    }
    rd_status st = RD_OK;
    if (!found) {
        instance *in = calloc(1, sizeof *in);
        if (!in || !(in->path = strdup(s->path))) {
            free(in);
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        } else if ((st = instance_open(s, lim, &in->db, err)) != RD_OK) {
            free(in->path);
            free(in);
        } else {
            snprintf(in->project, sizeof in->project, "%s", s->project);
            in->snapshot_id = s->id;
            in->next = e->list;
            e->list = in;
            found = in;
        }
    }
    if (found) {
        found->refs++;
        found->used = ++e->clock;
        *out = found;
    }
    cache_trim(e);
    pthread_mutex_unlock(&e->lock);
    return st;
}

static void instance_release(rd_query_engine *e, instance *in)
{
    pthread_mutex_lock(&e->lock);
    in->refs--;
    cache_trim(e);
    pthread_mutex_unlock(&e->lock);
}

/* ---- the watchdog -------------------------------------------------------------------------------------- */

typedef struct watchdog {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    duckdb_connection conn;
    struct timespec deadline; /* CLOCK_MONOTONIC */
    int done, fired;
} watchdog;

static void *watchdog_main(void *arg)
{
    watchdog *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->done) {
        int rc = pthread_cond_timedwait(&w->cond, &w->lock, &w->deadline);
        if (rc == ETIMEDOUT && !w->done) {
            w->fired = 1;
            duckdb_interrupt(w->conn);
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static int watchdog_start(watchdog *w, duckdb_connection conn, long timeout_ms)
{
    memset(w, 0, sizeof *w);
    w->conn = conn;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &w->deadline);
    w->deadline.tv_sec += timeout_ms / 1000;
    w->deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (w->deadline.tv_nsec >= 1000000000L) {
        w->deadline.tv_sec++;
        w->deadline.tv_nsec -= 1000000000L;
    }
    if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        return -1;
    }
    return 0;
}

/* Stops the watchdog; 1 when it interrupted the query. */
static int watchdog_stop(watchdog *w)
{
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    return w->fired;
}

/* ---- checks and errors --------------------------------------------------------------------------------- */

static const char *statement_type_name(duckdb_statement_type t)
{
    switch (t) {
    case DUCKDB_STATEMENT_TYPE_SELECT: return "SELECT";
    case DUCKDB_STATEMENT_TYPE_INSERT: return "INSERT";
    case DUCKDB_STATEMENT_TYPE_UPDATE: return "UPDATE";
    case DUCKDB_STATEMENT_TYPE_EXPLAIN: return "EXPLAIN";
    case DUCKDB_STATEMENT_TYPE_DELETE: return "DELETE";
    case DUCKDB_STATEMENT_TYPE_PREPARE: return "PREPARE";
    case DUCKDB_STATEMENT_TYPE_CREATE: return "CREATE";
    case DUCKDB_STATEMENT_TYPE_EXECUTE: return "EXECUTE";
    case DUCKDB_STATEMENT_TYPE_ALTER: return "ALTER";
    case DUCKDB_STATEMENT_TYPE_TRANSACTION: return "a transaction statement (BEGIN, COMMIT, ROLLBACK)";
    case DUCKDB_STATEMENT_TYPE_COPY: return "COPY";
    case DUCKDB_STATEMENT_TYPE_ANALYZE: return "ANALYZE";
    case DUCKDB_STATEMENT_TYPE_VARIABLE_SET: return "SET VARIABLE";
    case DUCKDB_STATEMENT_TYPE_CREATE_FUNC: return "CREATE FUNCTION";
    case DUCKDB_STATEMENT_TYPE_DROP: return "DROP";
    case DUCKDB_STATEMENT_TYPE_EXPORT: return "EXPORT";
    case DUCKDB_STATEMENT_TYPE_PRAGMA: return "PRAGMA (or CHECKPOINT)";
    case DUCKDB_STATEMENT_TYPE_VACUUM: return "VACUUM";
    case DUCKDB_STATEMENT_TYPE_CALL: return "CALL";
    case DUCKDB_STATEMENT_TYPE_SET: return "SET/RESET";
    case DUCKDB_STATEMENT_TYPE_LOAD: return "INSTALL/LOAD";
    case DUCKDB_STATEMENT_TYPE_RELATION: return "a relation";
    case DUCKDB_STATEMENT_TYPE_EXTENSION: return "an extension statement";
    case DUCKDB_STATEMENT_TYPE_LOGICAL_PLAN: return "a logical plan";
    case DUCKDB_STATEMENT_TYPE_ATTACH: return "ATTACH";
    case DUCKDB_STATEMENT_TYPE_DETACH: return "DETACH";
    case DUCKDB_STATEMENT_TYPE_MULTI: return "a multi-statement";
    default: return "an unknown statement";
    }
}

/* The first keyword of sql, upper-cased (at most n - 1 letters), for statements DuckDB will not prepare. */
static void first_keyword(const char *sql, char *out, size_t n)
{
    size_t j = 0;
    const char *p = sql;
    for (;;) { /* blanks and comments */
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '(')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            p = end ? end + 2 : p + strlen(p);
        } else {
            break;
        }
    }
    for (; *p && j + 1 < n && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')); p++)
        out[j++] = (char)(*p >= 'a' ? *p - 32 : *p);
    out[j] = 0;
}

/* 1 when a statement starting with this keyword reads only (DuckDB prepares them as SELECT). */
static int keyword_reads(const char *kw)
{
    static const char *const reads[] = { "SELECT", "WITH", "FROM", "VALUES", "TABLE", "DESCRIBE", "SHOW",
                                         "SUMMARIZE", "PIVOT", "UNPIVOT", NULL };
    for (size_t i = 0; reads[i]; i++)
        if (strcmp(kw, reads[i]) == 0)
            return 1;
    return 0;
}

/* One line of DuckDB's message (at most 400 bytes). */
static void one_line(const char *m, char *out, size_t n)
{
    size_t j = 0;
    for (const char *p = m ? m : "DuckDB failed"; *p && j + 1 < n && j < 400; p++)
        out[j++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    out[j] = 0;
}

static int is_permission_error(duckdb_error_type t, const char *m)
{
    return t == DUCKDB_ERROR_PERMISSION || (m && (strstr(m, "disabled by configuration") || strstr(m, "Permission Error")));
}

/* The failure of a DuckDB error: refused (external access), out of memory, timeout, else a bad request. */
static rd_status duckdb_failure(duckdb_error_type t, const char *m, int timed_out, const rd_query_limits *lim,
                                rd_query_failure *why, rd_error *err)
{
    char msg[512];
    one_line(m, msg, sizeof msg);
    if (timed_out || t == DUCKDB_ERROR_INTERRUPT) {
        *why = RD_QUERY_TIMEOUT;
        return rd_error_set(err, RD_E_CANCELLED, "the query ran longer than %g s and was stopped: narrow it (a WHERE, "
                            "a LIMIT) or ask for less", (double)lim->timeout_ms / 1000.0);
    }
    if (t == DUCKDB_ERROR_OUT_OF_MEMORY || (m && strstr(m, "Out of Memory"))) {
        *why = RD_QUERY_OUT_OF_MEMORY;
        return rd_error_set(err, RD_E_USAGE, "the query needs more memory than the server allows a query (%s): "
                            "aggregate or filter more, or select fewer columns (%s)", lim->max_memory, msg);
    }
    if (is_permission_error(t, m)) {
        *why = RD_QUERY_REFUSED;
        return rd_error_set(err, RD_E_USAGE, "refused: the query API reads the project's tables only, never files or "
                            "the network (%s)", msg);
    }
    *why = RD_QUERY_BAD_REQUEST;
    return rd_error_set(err, RD_E_USAGE, "%s", msg);
}

/* ---- the answer ---------------------------------------------------------------------------------------- */

static void type_name(rd_buf *b, duckdb_logical_type t)
{
    char *alias = duckdb_logical_type_get_alias(t);
    if (alias) {
        rd_buf_puts(b, alias);
        duckdb_free(alias);
        return;
    }
    duckdb_type id = duckdb_get_type_id(t);
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN: rd_buf_puts(b, "BOOLEAN"); break;
    case DUCKDB_TYPE_TINYINT: rd_buf_puts(b, "TINYINT"); break;
    case DUCKDB_TYPE_SMALLINT: rd_buf_puts(b, "SMALLINT"); break;
    case DUCKDB_TYPE_INTEGER: rd_buf_puts(b, "INTEGER"); break;
    case DUCKDB_TYPE_BIGINT: rd_buf_puts(b, "BIGINT"); break;
    case DUCKDB_TYPE_UTINYINT: rd_buf_puts(b, "UTINYINT"); break;
    case DUCKDB_TYPE_USMALLINT: rd_buf_puts(b, "USMALLINT"); break;
    case DUCKDB_TYPE_UINTEGER: rd_buf_puts(b, "UINTEGER"); break;
    case DUCKDB_TYPE_UBIGINT: rd_buf_puts(b, "UBIGINT"); break;
    case DUCKDB_TYPE_HUGEINT: rd_buf_puts(b, "HUGEINT"); break;
    case DUCKDB_TYPE_UHUGEINT: rd_buf_puts(b, "UHUGEINT"); break;
    case DUCKDB_TYPE_FLOAT: rd_buf_puts(b, "FLOAT"); break;
    case DUCKDB_TYPE_DOUBLE: rd_buf_puts(b, "DOUBLE"); break;
    case DUCKDB_TYPE_DECIMAL:
        rd_buf_printf(b, "DECIMAL(%u,%u)", (unsigned)duckdb_decimal_width(t), (unsigned)duckdb_decimal_scale(t));
        break;
    case DUCKDB_TYPE_VARCHAR: rd_buf_puts(b, "VARCHAR"); break;
    case DUCKDB_TYPE_BLOB: rd_buf_puts(b, "BLOB"); break;
    case DUCKDB_TYPE_BIT: rd_buf_puts(b, "BIT"); break;
    case DUCKDB_TYPE_DATE: rd_buf_puts(b, "DATE"); break;
    case DUCKDB_TYPE_TIME: rd_buf_puts(b, "TIME"); break;
    case DUCKDB_TYPE_TIME_TZ: rd_buf_puts(b, "TIME WITH TIME ZONE"); break;
    case DUCKDB_TYPE_TIMESTAMP: rd_buf_puts(b, "TIMESTAMP"); break;
    case DUCKDB_TYPE_TIMESTAMP_TZ: rd_buf_puts(b, "TIMESTAMP WITH TIME ZONE"); break;
    case DUCKDB_TYPE_TIMESTAMP_S: rd_buf_puts(b, "TIMESTAMP_S"); break;
    case DUCKDB_TYPE_TIMESTAMP_MS: rd_buf_puts(b, "TIMESTAMP_MS"); break;
    case DUCKDB_TYPE_TIMESTAMP_NS: rd_buf_puts(b, "TIMESTAMP_NS"); break;
    case DUCKDB_TYPE_INTERVAL: rd_buf_puts(b, "INTERVAL"); break;
    case DUCKDB_TYPE_UUID: rd_buf_puts(b, "UUID"); break;
    case DUCKDB_TYPE_ENUM: rd_buf_puts(b, "ENUM"); break;
    case DUCKDB_TYPE_LIST: {
        duckdb_logical_type c = duckdb_list_type_child_type(t);
        type_name(b, c);
        rd_buf_puts(b, "[]");
        duckdb_destroy_logical_type(&c);
        break;
    }
    case DUCKDB_TYPE_ARRAY: {
        duckdb_logical_type c = duckdb_array_type_child_type(t);
        type_name(b, c);
        rd_buf_printf(b, "[%llu]", (unsigned long long)duckdb_array_type_array_size(t));
        duckdb_destroy_logical_type(&c);
        break;
    }
    case DUCKDB_TYPE_STRUCT: rd_buf_puts(b, "STRUCT"); break;
    case DUCKDB_TYPE_MAP: rd_buf_puts(b, "MAP"); break;
    case DUCKDB_TYPE_UNION: rd_buf_puts(b, "UNION"); break;
    default: rd_buf_printf(b, "TYPE%d", (int)id); break;
    }
}

static void csv_field(rd_buf *b, const char *s, size_t n)
{
    if (n > 0 && !memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\r', n) && !memchr(s, '\n', n)) {
        rd_buf_append(b, s, n);
        return;
    }
    /* quoted: fields with separators, and the empty string (so that it differs from NULL, an empty field) */
    rd_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            rd_buf_putc(b, '"');
        rd_buf_putc(b, s[i]);
    }
    rd_buf_putc(b, '"');
}

typedef struct answer {
    rd_query_format format;
    idx_t ncols;
    duckdb_logical_type *types;
    rd_buf *out;
    rd_buf tmp;
    uint64_t rows;
} answer;

static rd_status answer_head(answer *a, duckdb_result *res, rd_error *err)
{
    a->ncols = duckdb_column_count(res);
    a->types = calloc(a->ncols ? a->ncols : 1, sizeof *a->types);
    if (!a->types)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (a->format == RD_QUERY_JSON)
        rd_buf_puts(a->out, "{\"columns\":[");
    for (idx_t c = 0; c < a->ncols; c++) {
        const char *name = duckdb_column_name(res, c);
        a->types[c] = duckdb_column_logical_type(res, c);
        if (!name)
            name = "";
        if (a->format == RD_QUERY_CSV) {
            if (c)
                rd_buf_putc(a->out, ',');
            csv_field(a->out, name, strlen(name));
            continue;
        }
        rd_buf_puts(a->out, c ? ",{\"name\":" : "{\"name\":");
        rd_status st = rd_value_json_string(a->out, name, strlen(name), err);
        if (st != RD_OK)
            return st;
        rd_buf_reset(&a->tmp);
        type_name(&a->tmp, a->types[c]);
        rd_buf_puts(a->out, ",\"type\":");
        if ((st = rd_value_json_string(a->out, rd_buf_cstr(&a->tmp), a->tmp.len, err)) != RD_OK)
            return st;
        rd_buf_putc(a->out, '}');
    }
    rd_buf_puts(a->out, a->format == RD_QUERY_CSV ? "\n" : "],\"rows\":[");
    return RD_OK;
}

static rd_status answer_row(answer *a, duckdb_data_chunk chunk, idx_t row, rd_error *err)
{
    if (a->format == RD_QUERY_JSON)
        rd_buf_puts(a->out, a->rows ? ",[" : "[");
    for (idx_t c = 0; c < a->ncols; c++) {
        duckdb_vector v = duckdb_data_chunk_get_vector(chunk, c);
        if (c)
            rd_buf_putc(a->out, ',');
        if (a->format == RD_QUERY_JSON) {
            rd_status st = rd_value_json(a->out, v, a->types[c], row, RD_VALUE_JSON_API, err);
            if (st != RD_OK)
                return st;
        } else if (rd_value_is_valid(v, row)) {
            rd_buf_reset(&a->tmp);
            rd_value_text(&a->tmp, v, a->types[c], row);
            csv_field(a->out, rd_buf_cstr(&a->tmp), a->tmp.len);
        }
    }
    rd_buf_puts(a->out, a->format == RD_QUERY_JSON ? "]" : "\n");
    a->rows++;
    return rd_buf_failed(a->out) ? rd_error_set(err, RD_E_INTERNAL, "out of memory") : RD_OK;
}

static void answer_free(answer *a)
{
    for (idx_t c = 0; a->types && c < a->ncols; c++)
        duckdb_destroy_logical_type(&a->types[c]);
    free(a->types);
    rd_buf_free(&a->tmp);
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/* Runs the one prepared SELECT and writes the answer. */
static rd_status execute(duckdb_connection conn, duckdb_prepared_statement ps, const rd_query_limits *lim,
                         rd_query_format format, rd_query_result *r, rd_query_failure *why, rd_error *err)
{
    watchdog w;
    if (watchdog_start(&w, conn, lim->timeout_ms) != 0) {
        *why = RD_QUERY_INTERNAL;
        return rd_error_set(err, RD_E_INTERNAL, "cannot start the query's watchdog thread");
    }
    duckdb_result res;
    answer a = { .format = format, .out = &r->body, .tmp = RD_BUF_INIT };
    rd_status st = RD_OK;
    int have_res = 1;
    if (duckdb_execute_prepared(ps, &res) != DuckDBSuccess) {
        int fired = watchdog_stop(&w);
        st = duckdb_failure(duckdb_result_error_type(&res), duckdb_result_error(&res), fired, lim, why, err);
        duckdb_destroy_result(&res);
        return st;
    }
    st = answer_head(&a, &res, err);
    duckdb_data_chunk chunk;
    while (st == RD_OK && !r->truncated && (chunk = duckdb_fetch_chunk(res)) != NULL) {
        idx_t n = duckdb_data_chunk_get_size(chunk);
        for (idx_t i = 0; i < n && st == RD_OK; i++) {
            if (a.rows >= lim->max_rows || r->body.len >= RD_QUERY_MAX_ANSWER) {
                r->truncated = 1;
                break;
            }
            st = answer_row(&a, chunk, i, err);
        }
        duckdb_destroy_data_chunk(&chunk);
    }
    int fired = watchdog_stop(&w);
    const char *m = duckdb_result_error(&res);
    if (st == RD_OK && (m || fired) && !r->truncated)
        st = duckdb_failure(duckdb_result_error_type(&res), m, fired, lim, why, err);
    else if (st != RD_OK)
        *why = st == RD_E_CONFIG ? RD_QUERY_BAD_REQUEST : RD_QUERY_INTERNAL;
    if (st == RD_E_CONFIG)
        st = RD_E_USAGE;
    if (have_res)
        duckdb_destroy_result(&res);
    r->row_count = a.rows;
    answer_free(&a);
    return st;
}

static void limits_of(const rd_query_limits *in, rd_query_limits *out)
{
    *out = in ? *in : (rd_query_limits){ 0 };
    if (!out->max_rows)
        out->max_rows = 10000;
    if (out->timeout_ms <= 0)
        out->timeout_ms = 30000;
    if (!out->max_memory || !*out->max_memory)
        out->max_memory = "256MB";
    if (out->max_concurrent <= 0)
        out->max_concurrent = 8;
    if (out->threads <= 0)
        out->threads = 2;
}

/* The SELECT sql with at most max_rows + 1 rows (one more tells that rows were left out), so a large result is
 * never made whole (a result is materialised: DuckDB's streaming calls are deprecated): sql inside
 * SELECT * FROM (…) LIMIT n. NULL when DuckDB will not take that form (a statement that is no subquery, such
 * as SHOW): the statement then runs as it is. The wrapped text is one SELECT or nothing. */
static duckdb_prepared_statement limit_rows(duckdb_connection conn, const char *sql, uint64_t max_rows)
{
    size_t n = strlen(sql);
    while (n && (sql[n - 1] == ';' || sql[n - 1] == ' ' || sql[n - 1] == '\t' || sql[n - 1] == '\n' ||
                 sql[n - 1] == '\r'))
        n--;
    rd_buf b = RD_BUF_INIT;
    rd_buf_puts(&b, "SELECT * FROM (\n");
    rd_buf_append(&b, sql, n);
    rd_buf_printf(&b, "\n) AS rd_query LIMIT %" PRIu64, max_rows + 1);
    duckdb_prepared_statement ps = NULL;
    if (rd_buf_failed(&b) || duckdb_prepare(conn, rd_buf_cstr(&b), &ps) != DuckDBSuccess ||
        duckdb_prepared_statement_type(ps) != DUCKDB_STATEMENT_TYPE_SELECT)
        duckdb_destroy_prepare(&ps);
    rd_buf_free(&b);
    return ps;
}

/* Checks and runs sql on an instance's new connection. */
static rd_status run_on(instance *in, const char *sql, const rd_query_limits *lim, rd_query_format format,
                        rd_query_result *r, rd_query_failure *why, rd_error *err)
{
    duckdb_connection conn = NULL;
    if (duckdb_connect(in->db, &conn) != DuckDBSuccess) {
        *why = RD_QUERY_INTERNAL;
        return rd_error_set(err, RD_E_IO, "cannot connect to snapshot %" PRId64 " of %s", in->snapshot_id, in->project);
    }
    duckdb_extracted_statements ex = NULL;
    duckdb_prepared_statement ps = NULL;
    rd_status st = RD_OK;
    char msg[512], kw[24];
    idx_t n = duckdb_extract_statements(conn, sql, &ex);
    if (n == 0) {
        one_line(duckdb_extract_statements_error(ex), msg, sizeof msg);
        *why = RD_QUERY_BAD_REQUEST;
        st = rd_error_set(err, RD_E_USAGE, "%s", msg[0] ? msg : "no SQL statement in the text");
    } else if (n > 1) {
        *why = RD_QUERY_REFUSED;
        st = rd_error_set(err, RD_E_USAGE, "refused: %llu statements: the query API runs one SELECT at a time",
                          (unsigned long long)n);
    } else if (duckdb_prepare_extracted_statement(conn, ex, 0, &ps) != DuckDBSuccess) {
        const char *m = duckdb_prepare_error(ps);
        first_keyword(sql, kw, sizeof kw);
        if (kw[0] && !keyword_reads(kw)) {
            /* DuckDB will not prepare some statements here (COPY TO a file, ATTACH in read-only mode, …):
             * refused by their first word */
            *why = RD_QUERY_REFUSED;
            st = rd_error_set(err, RD_E_USAGE, "refused: %s statements: the query API is read-only (one SELECT)", kw);
        } else {
            st = duckdb_failure(DUCKDB_ERROR_INVALID, m, 0, lim, why, err);
        }
    } else if (duckdb_prepared_statement_type(ps) != DUCKDB_STATEMENT_TYPE_SELECT) {
        *why = RD_QUERY_REFUSED;
        st = rd_error_set(err, RD_E_USAGE, "refused: %s statements: the query API is read-only (one SELECT)",
                          statement_type_name(duckdb_prepared_statement_type(ps)));
    } else if (first_keyword(sql, kw, sizeof kw), !keyword_reads(kw)) {
        /* DuckDB prepares some statements as a SELECT (PRAGMA table_info is a table function): by their word */
        *why = RD_QUERY_REFUSED;
        st = rd_error_set(err, RD_E_USAGE, "refused: %s statements: the query API is read-only (one SELECT)",
                          kw[0] ? kw : "these");
    } else {
        duckdb_prepared_statement limited = limit_rows(conn, sql, lim->max_rows);
        st = execute(conn, limited ? limited : ps, lim, format, r, why, err);
        duckdb_destroy_prepare(&limited);
    }
    duckdb_destroy_prepare(&ps);
    duckdb_destroy_extracted(&ex);
    duckdb_disconnect(&conn);
    return st;
}

rd_status rd_query_run(rd_query_engine *e, rd_store *store, const char *project, const char *sql, size_t sql_len,
                       rd_query_format format, const rd_query_limits *limits, rd_query_result *out,
                       rd_query_failure *why, rd_error *err)
{
    rd_query_limits lim;
    limits_of(limits, &lim);
    *why = RD_QUERY_BAD_REQUEST;
    if (!sql || !sql_len)
        return rd_error_set(err, RD_E_USAGE, "the SQL text is empty: send {\"sql\":\"SELECT …\"}");
    if (sql_len > RD_QUERY_SQL_MAX)
        return rd_error_set(err, RD_E_USAGE, "the SQL text is %zu bytes: at most %d are taken", sql_len, RD_QUERY_SQL_MAX);
    if (memchr(sql, 0, sql_len) || strlen(sql) != sql_len)
        return rd_error_set(err, RD_E_USAGE, "the SQL text contains a NUL character");

    pthread_mutex_lock(&e->lock);
    /* a full engine: wait a little for a slot (a burst queues instead of failing), with a bounded queue */
    if (e->running >= lim.max_concurrent && e->waiting < RD_QUERY_QUEUE_FACTOR * lim.max_concurrent) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long long ns = (long long)until.tv_nsec + (long long)RD_QUERY_QUEUE_MS * 1000000LL;
        until.tv_sec += (time_t)(ns / 1000000000LL);
        until.tv_nsec = (long)(ns % 1000000000LL);
        e->waiting++;
        while (e->running >= lim.max_concurrent && pthread_cond_timedwait(&e->slot, &e->lock, &until) == 0)
            ;
        e->waiting--;
    }
    int admitted = e->running < lim.max_concurrent;
    if (admitted)
        e->running++;
    pthread_mutex_unlock(&e->lock);
    if (!admitted) {
        *why = RD_QUERY_BUSY;
        return rd_error_set(err, RD_E_REMOTE, "%d queries are running, the most the server runs at once: retry in a "
                            "moment", lim.max_concurrent);
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rd_store_snapshot snap;
    memset(&snap, 0, sizeof snap);
    rd_error serr;
    rd_error_clear(&serr);
    rd_status st = rd_store_snapshot_current(store, project, &snap, &serr);
    instance *in = NULL;
    rd_query_result r;
    memset(&r, 0, sizeof r);
    rd_buf_init(&r.body);
    if (st == RD_E_NOT_FOUND) {
        *why = RD_QUERY_NO_DATA;
        st = rd_error_set(err, RD_E_NOT_FOUND, "no data yet: project %s has not refreshed successfully (run `redduck "
                          "refresh --cloud`)", project);
    } else if (st != RD_OK) {
        *why = RD_QUERY_INTERNAL;
        if (err)
            *err = serr;
    } else if ((st = instance_acquire(e, &snap, &lim, &in, err)) != RD_OK) {
        *why = RD_QUERY_INTERNAL;
    } else {
        st = run_on(in, sql, &lim, format, &r, why, err);
        instance_release(e, in);
    }
    if (st == RD_OK) {
        r.snapshot_id = snap.id;
        r.elapsed_ms = ms_since(&t0);
        if (format == RD_QUERY_JSON)
            rd_buf_printf(&r.body, "],\"row_count\":%" PRIu64 ",\"truncated\":%s,\"elapsed_ms\":%ld,\"snapshot_id\":%" PRId64
                          "}", r.row_count, r.truncated ? "true" : "false", r.elapsed_ms, r.snapshot_id);
        if (rd_buf_failed(&r.body)) {
            *why = RD_QUERY_INTERNAL;
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        }
    }
    if (st == RD_OK) {
        *why = RD_QUERY_OK;
        *out = r;
    } else {
        rd_query_result_free(&r);
    }
    rd_store_snapshot_clear(&snap);
    pthread_mutex_lock(&e->lock);
    e->running--;
    pthread_cond_signal(&e->slot);
    pthread_mutex_unlock(&e->lock);
    return st;
}

/* ---- Range --------------------------------------------------------------------------------------------- */

/* A decimal number at *p (no sign), advancing *p; -1 when there is none or it overflows. */
static int parse_u64(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *p = s;
    *v = x;
    return 0;
}

rd_range_kind rd_range_parse(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!h)
        return RD_RANGE_NONE;
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncmp(h, "bytes", 5) != 0)
        return RD_RANGE_NONE;
    h += 5;
    while (*h == ' ' || *h == '\t')
        h++;
    if (*h++ != '=')
        return RD_RANGE_NONE;
    while (*h == ' ' || *h == '\t')
        h++;
    uint64_t a = 0, b = UINT64_MAX;
    if (parse_u64(&h, &a) != 0)
        return RD_RANGE_NONE; /* a suffix range (bytes=-N) or junk */
    while (*h == ' ' || *h == '\t')
        h++;
    if (*h++ != '-')
        return RD_RANGE_NONE;
    while (*h == ' ' || *h == '\t')
        h++;
    if (*h >= '0' && *h <= '9') {
        if (parse_u64(&h, &b) != 0)
            return RD_RANGE_NONE;
        if (b < a)
            return RD_RANGE_NONE;
    }
    while (*h == ' ' || *h == '\t')
        h++;
    if (*h) /* several ranges, or junk after the one */
        return RD_RANGE_NONE;
    if (a >= size)
        return RD_RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return RD_RANGE_OK;
}
