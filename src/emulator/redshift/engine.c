/* engine.c — the emulator's Redshift: warehouses (a DuckDB file per target and database), the statement
 * registry and its state machine, worker threads, cancellation, the per-target cap on active statements and
 * the Data API's sessions (a kept connection per session, closed by the canceller thread once expired).
 * UNLOAD lives in unload.c, sample data in sample.c, the dialect in dialect.c, the JSON API in data_api.c. */
#include "emulator/redshift/engine_internal.h"
#include "emulator/redshift/unload.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "core/fsutil.h"

const char *rd_emu_status_name(rd_emu_status st)
{
    static const char *const names[] = { "SUBMITTED", "PICKED", "STARTED", "FINISHED", "FAILED", "ABORTED" };
    return (unsigned)st < 6 ? names[st] : "FAILED";
}

int rd_emu_status_parse(const char *s)
{
    if (strcmp(s, "ALL") == 0)
        return -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(s, rd_emu_status_name((rd_emu_status)i)) == 0)
            return i;
    return -2;
}

double rd_emu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static __attribute__((unused)) int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static __attribute__((unused)) void make_uuid(char out[48])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (int i = 0; i < 16; i++)
            b[i] = (unsigned char)((ts.tv_nsec >> (i % 8)) ^ (i * 37) ^ rand());
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 48, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static rd_status add_target(rd_emu_engine *eng, int is_cluster, const char *name, rd_error *err)
{
    if (!name || !*name)
        return rd_error_set(err, RD_E_USAGE, "a workgroup or cluster needs a name");
    pthread_mutex_lock(&eng->mu);
    for (size_t i = 0; i < eng->target_count; i++)
        if (eng->targets[i].is_cluster == is_cluster && strcmp(eng->targets[i].name, name) == 0) {
            pthread_mutex_unlock(&eng->mu);
            return RD_OK;
        }
    rd_emu_target *nv = realloc(eng->targets, (eng->target_count + 1) * sizeof *nv);
    char *copy = strdup(name);
    if (!nv || !copy) {
        free(copy);
        if (nv)
            eng->targets = nv;
        pthread_mutex_unlock(&eng->mu);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    eng->targets = nv;
    nv[eng->target_count].is_cluster = is_cluster;
    nv[eng->target_count].name = copy;
    eng->target_count++;
    pthread_mutex_unlock(&eng->mu);
    return RD_OK;
}

rd_status rd_emu_engine_add_workgroup(rd_emu_engine *eng, const char *name, rd_error *err)
{
    return add_target(eng, 0, name, err);
}

rd_status rd_emu_engine_add_cluster(rd_emu_engine *eng, const char *name, rd_error *err)
{
    return add_target(eng, 1, name, err);
}

int rd_emu_engine_has_target(rd_emu_engine *eng, int is_cluster, const char *name)
{
    int found = 0;
    pthread_mutex_lock(&eng->mu);
    for (size_t i = 0; i < eng->target_count && !found; i++)
        found = eng->targets[i].is_cluster == is_cluster && strcmp(eng->targets[i].name, name) == 0;
    pthread_mutex_unlock(&eng->mu);
    return found;
}

void rd_emu_engine_set_limits(rd_emu_engine *eng, int max_active, size_t page_rows)
{
    pthread_mutex_lock(&eng->mu);
    if (max_active > 0)
        eng->max_active = max_active;
    if (page_rows > 0)
        eng->page_rows = page_rows;
    pthread_mutex_unlock(&eng->mu);
}

rd_status rd_emu_engine_set_default_role(rd_emu_engine *eng, const char *role_arn, rd_error *err)
{
    char *copy = role_arn ? strdup(role_arn) : NULL;
    if (role_arn && !copy)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    pthread_mutex_lock(&eng->mu);
    free(eng->default_role);
    eng->default_role = copy;
    pthread_mutex_unlock(&eng->mu);
    return RD_OK;
}

void rd_emu_engine_set_unload_pace(rd_emu_engine *eng, double bytes_per_second)
{
    pthread_mutex_lock(&eng->mu);
    eng->unload_pace = bytes_per_second > 0 ? bytes_per_second : 0;
    pthread_mutex_unlock(&eng->mu);
}

static __attribute__((unused)) void stmt_free(rd_emu_stmt *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->sub_count; i++)
        stmt_free(s->subs[i]);
    free(s->subs);
    free(s->sql);
    free(s->duck_sql);
    free(s->error);
    free(s->target);
    free(s->database);
    free(s->db_user);
    free(s->secret_arn);
    free(s->owner);
    free(s->statement_name);
    free(s->client_token);
    free(s->result_format);
    for (size_t i = 0; i < s->param_count; i++) {
        free(s->param_names[i]);
        free(s->param_values[i]);
    }
    free(s->param_names);
    free(s->param_values);
#ifdef RD_HAVE_DUCKDB
    if (s->has_duck_result)
        duckdb_destroy_result(&s->result);
#endif
    for (size_t i = 0; i < s->column_count; i++)
        free(s->columns[i].name);
    free(s->columns);
    free(s);
}

int rd_emu_owner_eq(const char *a, const char *b)
{
    if (!a || !b)
        return !a && !b;
    return strcmp(a, b) == 0;
}

rd_emu_stmt *rd_emu_engine_find(rd_emu_engine *eng, const char *id, const char *owner)
{
    if (!id)
        return NULL;
    size_t base_len = strcspn(id, ":");
    for (size_t i = 0; i < eng->stmt_count; i++) {
        rd_emu_stmt *s = eng->stmts[i];
        if (strlen(s->id) != base_len || strncmp(s->id, id, base_len) != 0)
            continue;
        if (!rd_emu_owner_eq(s->owner, owner))
            return NULL;
        if (!id[base_len])
            return s;
        char *end;
        long k = strtol(id + base_len + 1, &end, 10);
        if (*end || k < 1 || (size_t)k > s->sub_count)
            return NULL;
        return s->subs[k - 1];
    }
    return NULL;
}

#ifdef RD_HAVE_DUCKDB

/* a macro, not a function, so the format stays a literal rd_log_write can check */
#define log_msg(eng, lvl, ...)                                                                                         \
    do {                                                                                                               \
        if ((eng)->log)                                                                                                \
            rd_log_write((eng)->log, (lvl), __VA_ARGS__);                                                              \
    } while (0)

static int safe_name(const char *s)
{
    if (!s || !*s || strlen(s) > 127)
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '$')
            return 0;
    return 1;
}

rd_status rd_emu_engine_connect(rd_emu_warehouse *wh, duckdb_connection *out, rd_error *err)
{
    duckdb_connection c;
    if (duckdb_connect(wh->db, &c) != DuckDBSuccess)
        return rd_error_set(err, RD_E_INTERNAL, "cannot connect to warehouse %s/%s", wh->target, wh->database);
    duckdb_result r;
    if (duckdb_query(c, "SET search_path='public,main'", &r) != DuckDBSuccess) {
        rd_status st = rd_error_set(err, RD_E_INTERNAL, "warehouse %s/%s: %s", wh->target, wh->database,
                                    duckdb_result_error(&r));
        duckdb_destroy_result(&r);
        duckdb_disconnect(&c);
        return st;
    }
    duckdb_destroy_result(&r);
    *out = c;
    return RD_OK;
}

rd_status rd_emu_engine_warehouse(rd_emu_engine *eng, int is_cluster, const char *target, const char *database,
                                  rd_emu_warehouse **out, rd_error *err)
{
    if (!safe_name(target) || !safe_name(database))
        return rd_error_set(err, RD_E_USAGE, "invalid workgroup, cluster or database name");
    pthread_mutex_lock(&eng->mu);
    for (rd_emu_warehouse *w = eng->warehouses; w; w = w->next)
        if (w->is_cluster == is_cluster && strcmp(w->target, target) == 0 && strcmp(w->database, database) == 0) {
            pthread_mutex_unlock(&eng->mu);
            *out = w;
            return RD_OK;
        }
    /* Opening under the lock keeps two threads from opening the same file twice. */
    rd_status st = RD_OK;
    rd_buf dir = RD_BUF_INIT, path = RD_BUF_INIT;
    rd_emu_warehouse *w = calloc(1, sizeof *w);
    if (!w) {
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        goto done;
    }
    rd_buf_printf(&dir, "%s/warehouses/%s-%s", eng->data_dir, is_cluster ? "cluster" : "workgroup", target);
    if ((st = rd_mkdirs(rd_buf_cstr(&dir), 0700, err)) != RD_OK)
        goto done;
    rd_buf_printf(&path, "%s/%s.duckdb", rd_buf_cstr(&dir), database);
    char *open_err = NULL;
    duckdb_config cfg;
    duckdb_create_config(&cfg);
    duckdb_set_config(cfg, "threads", "2");
    if (duckdb_open_ext(rd_buf_cstr(&path), &w->db, cfg, &open_err) != DuckDBSuccess) {
        st = rd_error_set(err, RD_E_IO, "cannot open warehouse %s: %s", rd_buf_cstr(&path),
                          open_err ? open_err : "unknown error");
        duckdb_free(open_err);
        duckdb_destroy_config(&cfg);
        goto done;
    }
    duckdb_destroy_config(&cfg);
    duckdb_connection c;
    if (duckdb_connect(w->db, &c) != DuckDBSuccess) {
        duckdb_close(&w->db);
        st = rd_error_set(err, RD_E_INTERNAL, "cannot connect to %s", rd_buf_cstr(&path));
        goto done;
    }
    for (const char *const *q = rd_sql_dialect_setup; *q; q++) {
        duckdb_result r;
        if (duckdb_query(c, *q, &r) != DuckDBSuccess) {
            st = rd_error_set(err, RD_E_INTERNAL, "warehouse %s: dialect setup failed: %s", rd_buf_cstr(&path),
                              duckdb_result_error(&r));
            duckdb_destroy_result(&r);
            break;
        }
        duckdb_destroy_result(&r);
    }
    if (st == RD_OK)
        st = rd_emu_register_types(c, err); /* CHAR(n) as the blank-padded "bpchar(n)" */
    duckdb_disconnect(&c);
    if (st != RD_OK) {
        duckdb_close(&w->db);
        goto done;
    }
    w->is_cluster = is_cluster;
    w->target = strdup(target);
    w->database = strdup(database);
    w->path = rd_buf_detach(&path);
    w->next = eng->warehouses;
    eng->warehouses = w;
    *out = w;
    w = NULL;
done:
    pthread_mutex_unlock(&eng->mu);
    free(w);
    rd_buf_free(&dir);
    rd_buf_free(&path);
    return st;
}

/* The result's columns as Redshift describes them; names lowercased unless the session is case sensitive. */
static void set_columns(rd_emu_stmt *s, int case_sensitive)
{
    idx_t n = duckdb_column_count(&s->result);
    s->columns = calloc(n ? n : 1, sizeof *s->columns);
    if (!s->columns)
        return;
    s->column_count = n;
    for (idx_t i = 0; i < n; i++) {
        duckdb_logical_type t = duckdb_column_logical_type(&s->result, i);
        rd_emu_column_describe(t, &s->columns[i]);
        duckdb_destroy_logical_type(&t);
        const char *name = duckdb_column_name(&s->result, i);
        s->columns[i].name = strdup(name ? name : "?column?");
        for (char *p = s->columns[i].name; !case_sensitive && p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
}

static int64_t result_row_count(duckdb_result r, int64_t *bytes)
{
    idx_t chunks = duckdb_result_chunk_count(r);
    int64_t rows = 0, size = 0;
    for (idx_t c = 0; c < chunks; c++) {
        duckdb_data_chunk ch = duckdb_result_get_chunk(r, c);
        if (!ch)
            break;
        idx_t n = duckdb_data_chunk_get_size(ch);
        rows += (int64_t)n;
        idx_t cols = duckdb_data_chunk_get_column_count(ch);
        for (idx_t k = 0; k < cols; k++) {
            duckdb_vector v = duckdb_data_chunk_get_vector(ch, k);
            duckdb_logical_type t = duckdb_vector_get_column_type(v);
            duckdb_type id = duckdb_get_type_id(t);
            duckdb_destroy_logical_type(&t);
            if (id == DUCKDB_TYPE_VARCHAR || id == DUCKDB_TYPE_BLOB) {
                duckdb_string_t *d = (duckdb_string_t *)duckdb_vector_get_data(v);
                uint64_t *valid = duckdb_vector_get_validity(v);
                for (idx_t i = 0; i < n; i++)
                    if (!valid || duckdb_validity_row_is_valid(valid, i))
                        size += duckdb_string_t_length(d[i]);
            } else {
                size += 8 * (int64_t)n;
            }
        }
        duckdb_destroy_data_chunk(&ch);
    }
    *bytes = size;
    return rows;
}

/* UNLOAD's view of the engine (unload.h): the default role and temp-name numbers, under eng->mu. */
static char *unload_default_role(void *ctx)
{
    rd_emu_engine *eng = ctx;
    pthread_mutex_lock(&eng->mu);
    char *role = eng->default_role ? strdup(eng->default_role) : eng->emu ? NULL : strdup("default");
    pthread_mutex_unlock(&eng->mu);
    return role;
}

static unsigned long long unload_next_tmp(void *ctx)
{
    rd_emu_engine *eng = ctx;
    pthread_mutex_lock(&eng->mu);
    unsigned long long n = (unsigned long long)++eng->tmp_counter;
    pthread_mutex_unlock(&eng->mu);
    return n;
}

/* What a paced UNLOAD asks while it waits: whether its statement (or the batch holding it) was cancelled, or
 * the engine is stopping. */
typedef struct unload_cancel {
    rd_emu_engine *eng;
    rd_emu_stmt *s;
} unload_cancel;

static int unload_cancelled(void *ctx)
{
    unload_cancel *c = ctx;
    pthread_mutex_lock(&c->eng->mu);
    int stop = c->eng->stopping || c->s->cancel_requested || (c->s->parent && c->s->parent->cancel_requested);
    pthread_mutex_unlock(&c->eng->mu);
    return stop;
}

/* Runs one SQL text on conn; fills the statement's outcome fields (not its status). */
static rd_status run_duck(rd_emu_engine *eng, rd_emu_stmt *s, duckdb_connection conn, const char *first,
                          const char *duck_sql, int case_sensitive, rd_error *err);

/* Runs one statement on conn. *case_sensitive: the session's (or the batch's) enable_case_sensitive_identifier,
 * which a SET of it changes here (DuckDB has no such setting) and which the statement is rewritten with. */
static rd_status run_sql(rd_emu_engine *eng, rd_emu_stmt *top, rd_emu_stmt *s, duckdb_connection conn,
                         int *case_sensitive, rd_error *err)
{
    char first[32];
    rd_sql_first_word(s->sql, first, sizeof first);
    if (s->fault_fail || (top && top->fault_fail))
        return rd_error_set(err, RD_E_REMOTE, "ERROR: the statement failed (fault injected: data.execute.fail)");
    int setting = rd_sql_case_setting(s->sql);
    if (setting >= 0) {
        *case_sensitive = setting;
        s->result_rows = 0;
        s->result_size = 0;
        s->has_result_set = 0;
        return RD_OK;
    }
    rd_buf cs_sql = RD_BUF_INIT; /* the statement rewritten case sensitive */
    const char *duck_sql = s->duck_sql;
    if (*case_sensitive && strcmp(first, "unload") != 0) {
        char **names = NULL;
        size_t nn = 0;
        rd_error rerr;
        rd_error_clear(&rerr);
        if (rd_sql_rewrite_ex(s->sql, RD_SQL_CASE_SENSITIVE | RD_SQL_BPCHAR, &cs_sql, &names, &nn, &rerr) == RD_OK)
            duck_sql = rd_buf_cstr(&cs_sql);
        for (size_t i = 0; i < nn; i++)
            free(names[i]);
        free(names);
    }
    rd_status st = run_duck(eng, s, conn, first, duck_sql, *case_sensitive, err);
    rd_buf_free(&cs_sql);
    return st;
}

static rd_status run_duck(rd_emu_engine *eng, rd_emu_stmt *s, duckdb_connection conn, const char *first,
                          const char *duck_sql, int case_sensitive, rd_error *err)
{
    if (strcmp(first, "unload") == 0) {
        int64_t rows = 0;
        unload_cancel uc = { eng, s };
        pthread_mutex_lock(&eng->mu);
        double pace = eng->unload_pace;
        pthread_mutex_unlock(&eng->mu);
        rd_emu_unload_env env = { .store = eng->store,
                                  .emu = eng->emu,
                                  .data_dir = eng->data_dir,
                                  .slices = eng->slices,
                                  .is_cluster = s->is_cluster,
                                  .default_role = unload_default_role,
                                  .next_tmp = unload_next_tmp,
                                  .ctx = eng,
                                  .pace_bytes_per_second = pace,
                                  .cancelled = unload_cancelled,
                                  .cancel_ctx = &uc };
        rd_status st = rd_emu_unload_run(&env, conn, s->sql, &rows, err);
        if (st == RD_OK) {
            s->result_rows = rows;
            s->result_size = 0;
            s->has_result_set = 0;
        }
        return st;
    }
    duckdb_result r;
    duckdb_state ok;
    if (s->param_count > 0) {
        duckdb_extracted_statements ex = NULL;
        idx_t n = duckdb_extract_statements(conn, duck_sql, &ex);
        if (n == 0) {
            rd_status st = rd_error_set(err, RD_E_REMOTE, "%s", "");
            char *m = rd_emu_redshift_error(duckdb_extract_statements_error(ex));
            rd_error_set(err, RD_E_REMOTE, "%s", m ? m : "ERROR: syntax error");
            free(m);
            duckdb_destroy_extracted(&ex);
            return st;
        }
        if (n > 1) {
            duckdb_destroy_extracted(&ex);
            return rd_error_set(err, RD_E_REMOTE, "ERROR: cannot insert multiple commands into a prepared statement");
        }
        duckdb_prepared_statement ps = NULL;
        if (duckdb_prepare_extracted_statement(conn, ex, 0, &ps) != DuckDBSuccess) {
            char *m = rd_emu_redshift_error(duckdb_prepare_error(ps));
            rd_error_set(err, RD_E_REMOTE, "%s", m ? m : "ERROR: prepare failed");
            free(m);
            duckdb_destroy_prepare(&ps);
            duckdb_destroy_extracted(&ex);
            return RD_E_REMOTE;
        }
        duckdb_destroy_extracted(&ex);
        for (size_t i = 0; i < s->param_count; i++) {
            idx_t idx;
            if (duckdb_bind_parameter_index(ps, &idx, s->param_names[i]) != DuckDBSuccess)
                continue; /* validated at submit */
            duckdb_bind_varchar(ps, idx, s->param_values[i]);
        }
        ok = duckdb_execute_prepared(ps, &r);
        duckdb_destroy_prepare(&ps);
    } else {
        ok = duckdb_query(conn, duck_sql, &r);
    }
    if (ok != DuckDBSuccess) {
        char *m = rd_emu_redshift_error(duckdb_result_error(&r));
        rd_error_set(err, RD_E_REMOTE, "%s", m ? m : "ERROR: query failed");
        free(m);
        duckdb_destroy_result(&r);
        return RD_E_REMOTE;
    }
    duckdb_result_type rt = duckdb_result_return_type(r);
    if (rt == DUCKDB_RESULT_TYPE_QUERY_RESULT) {
        s->result = r;
        s->has_duck_result = 1;
        s->has_result_set = 1;
        set_columns(s, case_sensitive);
        s->result_rows = result_row_count(r, &s->result_size);
    } else {
        s->result_rows = rt == DUCKDB_RESULT_TYPE_CHANGED_ROWS ? (int64_t)duckdb_rows_changed(&r) : 0;
        s->result_size = 0;
        s->has_result_set = 0;
        duckdb_destroy_result(&r);
    }
    return RD_OK;
}

/* A session's statement has ended: the session is free again and its keep-alive starts. Caller holds eng->mu. */
static void session_release(rd_emu_stmt *s)
{
    rd_emu_session *ss = s->session;
    if (!ss)
        return;
    s->session = NULL;
    ss->busy = 0;
    ss->expires_at = rd_emu_now() + ss->keep_alive;
    if (ss->expires_at > ss->hard_end)
        ss->expires_at = ss->hard_end;
}

static void finish(rd_emu_engine *eng, rd_emu_stmt *s, rd_emu_status st, const char *error)
{
    pthread_mutex_lock(&eng->mu);
    if (!s->parent)
        session_release(s);
    s->status = st;
    free(s->error);
    s->error = error && *error ? strdup(error) : NULL;
    s->updated_at = rd_emu_now();
    if (s->started_ns)
        s->duration_ns = mono_ns() - s->started_ns;
    else
        s->duration_ns = 0;
    pthread_cond_broadcast(&eng->done_cv);
    pthread_mutex_unlock(&eng->mu);
}

static int simple_exec(duckdb_connection c, const char *sql)
{
    duckdb_result r;
    int ok = duckdb_query(c, sql, &r) == DuckDBSuccess;
    duckdb_destroy_result(&r);
    return ok;
}

static void run_statement(rd_emu_engine *eng, rd_emu_stmt *top)
{
    rd_error err;
    rd_error_clear(&err);
    rd_emu_warehouse *wh = NULL;
    duckdb_connection conn = NULL;
    int case_sensitive = 0; /* outside a session: SET lasts for the statement (or batch) */
    /* a session's connection is used only by its one busy statement, so it is read and kept without races */
    pthread_mutex_lock(&eng->mu);
    rd_emu_session *sess = top->session;
    int reuse = sess && sess->has_conn;
    if (reuse)
        conn = sess->conn;
    pthread_mutex_unlock(&eng->mu);
    if (rd_emu_engine_warehouse(eng, top->is_cluster, top->target, top->database, &wh, &err) != RD_OK ||
        (!reuse && rd_emu_engine_connect(wh, &conn, &err) != RD_OK)) {
        char msg[RD_ERROR_MSG_MAX + 16];
        snprintf(msg, sizeof msg, "ERROR: %s", err.message);
        for (size_t i = 0; i < top->sub_count; i++)
            finish(eng, top->subs[i], RD_ST_FAILED, msg);
        finish(eng, top, RD_ST_FAILED, msg);
        return;
    }
    pthread_mutex_lock(&eng->mu);
    top->wh = wh;
    if (sess && !reuse) {
        sess->conn = conn;
        sess->has_conn = 1;
    }
    if (top->cancel_requested) {
        pthread_mutex_unlock(&eng->mu);
        if (!sess)
            duckdb_disconnect(&conn);
        finish(eng, top, RD_ST_ABORTED, NULL);
        return;
    }
    top->status = RD_ST_STARTED;
    top->updated_at = rd_emu_now();
    top->started_ns = mono_ns();
    top->running = conn;
    pthread_mutex_unlock(&eng->mu);

    if (!top->is_batch) {
        rd_status st = run_sql(eng, NULL, top, conn, sess ? &sess->case_sensitive : &case_sensitive, &err);
        pthread_mutex_lock(&eng->mu);
        top->running = NULL;
        int cancelled = top->cancel_requested;
        pthread_mutex_unlock(&eng->mu);
        if (!sess)
            duckdb_disconnect(&conn);
        if (cancelled)
            finish(eng, top, RD_ST_ABORTED, NULL);
        else
            finish(eng, top, st == RD_OK ? RD_ST_FINISHED : RD_ST_FAILED, st == RD_OK ? NULL : err.message);
        return;
    }
    /* A batch runs in one transaction: the first failure rolls everything back. */
    int failed = 0;
    const char *fail_msg = NULL;
    char saved[RD_ERROR_MSG_MAX];
    simple_exec(conn, "BEGIN TRANSACTION");
    for (size_t i = 0; i < top->sub_count; i++) {
        rd_emu_stmt *s = top->subs[i];
        pthread_mutex_lock(&eng->mu);
        int cancelled = top->cancel_requested;
        if (!cancelled && !failed) {
            s->status = RD_ST_STARTED;
            s->started_ns = mono_ns();
            s->updated_at = rd_emu_now();
        }
        pthread_mutex_unlock(&eng->mu);
        if (cancelled || failed) {
            finish(eng, s, RD_ST_ABORTED, NULL);
            continue;
        }
        rd_error_clear(&err);
        s->fault_fail = top->fault_fail && i == top->sub_count - 1;
        if (run_sql(eng, top, s, conn, sess ? &sess->case_sensitive : &case_sensitive, &err) == RD_OK) {
            finish(eng, s, RD_ST_FINISHED, NULL);
        } else {
            pthread_mutex_lock(&eng->mu);
            cancelled = top->cancel_requested;
            pthread_mutex_unlock(&eng->mu);
            finish(eng, s, cancelled ? RD_ST_ABORTED : RD_ST_FAILED, cancelled ? NULL : err.message);
            snprintf(saved, sizeof saved, "%s", err.message);
            fail_msg = cancelled ? NULL : saved;
            failed = 1;
        }
    }
    simple_exec(conn, failed ? "ROLLBACK" : "COMMIT");
    pthread_mutex_lock(&eng->mu);
    top->running = NULL;
    int cancelled = top->cancel_requested;
    int64_t rows = 0, size = 0;
    int has = 0;
    for (size_t i = 0; i < top->sub_count; i++) {
        rows += top->subs[i]->result_rows > 0 ? top->subs[i]->result_rows : 0;
        size += top->subs[i]->result_size;
        has |= top->subs[i]->has_result_set;
    }
    top->result_rows = rows;
    top->result_size = size;
    top->has_result_set = has;
    pthread_mutex_unlock(&eng->mu);
    if (!sess)
        duckdb_disconnect(&conn);
    finish(eng, top, cancelled ? RD_ST_ABORTED : failed ? RD_ST_FAILED : RD_ST_FINISHED, fail_msg);
}

static void *worker_main(void *arg)
{
    rd_emu_engine *eng = arg;
    pthread_mutex_lock(&eng->mu);
    for (;;) {
        while (!eng->stopping && !eng->queue_head)
            pthread_cond_wait(&eng->work_cv, &eng->mu);
        if (eng->stopping)
            break;
        rd_emu_stmt *s = eng->queue_head;
        eng->queue_head = s->queue_next;
        if (!eng->queue_head)
            eng->queue_tail = NULL;
        s->queue_next = NULL;
        if (s->status != RD_ST_SUBMITTED) /* aborted while queued */
            continue;
        s->status = RD_ST_PICKED;
        s->updated_at = rd_emu_now();
        for (size_t i = 0; i < s->sub_count; i++) {
            s->subs[i]->status = RD_ST_PICKED;
            s->subs[i]->updated_at = s->updated_at;
        }
        pthread_mutex_unlock(&eng->mu);
        run_statement(eng, s);
        pthread_mutex_lock(&eng->mu);
    }
    pthread_mutex_unlock(&eng->mu);
    return NULL;
}

/* Closes the sessions of the list (their connections drop the session's temp tables). */
static void sessions_free(rd_emu_session *s)
{
    for (rd_emu_session *n; s; s = n) {
        n = s->next;
        if (s->has_conn)
            duckdb_disconnect(&s->conn);
        free(s->target);
        free(s->database);
        free(s->db_user);
        free(s->secret_arn);
        free(s->owner);
        free(s);
    }
}

/* Closes idle sessions whose keep-alive has passed: their connections (at most max) go to out, for the caller
 * to disconnect without the lock; the sessions stay, closed, so a later use hears that the session is no longer
 * available. Caller holds eng->mu. */
static size_t sessions_close_expired(rd_emu_engine *eng, double now, duckdb_connection *out, size_t max)
{
    size_t n = 0;
    for (rd_emu_session *s = eng->sessions; s && n < max; s = s->next) {
        if (s->busy || s->closed || now < s->expires_at)
            continue;
        s->closed = 1;
        if (s->has_conn) {
            out[n++] = s->conn;
            s->has_conn = 0;
        }
    }
    return n;
}

/* An interrupt that reaches a connection just before its query begins is lost; repeat it while the
 * statement still runs. */
static void *canceller_main(void *arg)
{
    rd_emu_engine *eng = arg;
    pthread_mutex_lock(&eng->mu);
    while (!eng->canceller_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&eng->done_cv, &eng->mu, &ts);
        for (size_t i = 0; i < eng->stmt_count; i++) {
            rd_emu_stmt *s = eng->stmts[i];
            if (s->cancel_requested && s->running && s->status < RD_ST_FINISHED)
                duckdb_interrupt(s->running);
        }
        duckdb_connection ended[32];
        size_t n = sessions_close_expired(eng, rd_emu_now(), ended, sizeof ended / sizeof *ended);
        if (n) {
            pthread_mutex_unlock(&eng->mu);
            for (size_t i = 0; i < n; i++)
                duckdb_disconnect(&ended[i]); /* the session's temp tables go with it */
            pthread_mutex_lock(&eng->mu);
        }
    }
    pthread_mutex_unlock(&eng->mu);
    return NULL;
}


static int sweep_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    if (ftw->level == 0)
        return 0; /* the directory itself stays */
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* The scratch directory holds only the files of UNLOADs in flight; what a crash left there is removed. */
static void sweep_tmp(rd_emu_engine *eng, const char *dir)
{
    if (nftw(dir, sweep_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        log_msg(eng, RD_LOG_WARN, "engine: cannot clean %s: %s", dir, strerror(errno));
}

rd_status rd_emu_engine_open(const char *data_dir, int slices, struct rd_s3_store *store, struct rd_emu *emu,
                             const rd_log *log, rd_emu_engine **out, rd_error *err)
{
    if (!data_dir || !*data_dir)
        return rd_error_set(err, RD_E_USAGE, "the engine needs a data directory");
    rd_emu_engine *eng = calloc(1, sizeof *eng);
    if (!eng)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    eng->data_dir = strdup(data_dir);
    eng->slices = slices > 0 ? slices : 2;
    eng->store = store;
    eng->emu = emu;
    eng->log = log;
    eng->max_active = 200;
    eng->page_rows = 1000;
    eng->next_query_id = 1000;
    pthread_mutex_init(&eng->mu, NULL);
    pthread_cond_init(&eng->work_cv, NULL);
    pthread_cond_init(&eng->done_cv, NULL);
    rd_status st;
    rd_buf dir = RD_BUF_INIT;
    rd_buf_printf(&dir, "%s/warehouses", data_dir);
    if ((st = rd_mkdirs(rd_buf_cstr(&dir), 0700, err)) != RD_OK)
        goto fail;
    rd_buf_reset(&dir);
    rd_buf_printf(&dir, "%s/tmp", data_dir);
    if ((st = rd_mkdirs(rd_buf_cstr(&dir), 0700, err)) != RD_OK)
        goto fail;
    sweep_tmp(eng, rd_buf_cstr(&dir));
    if ((st = add_target(eng, 0, "demo", err)) != RD_OK ||
        (st = add_target(eng, 1, "redshift-cluster-1", err)) != RD_OK)
        goto fail;
    eng->thread_count = 4;
    eng->threads = calloc((size_t)eng->thread_count, sizeof *eng->threads);
    if (!eng->threads) {
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < eng->thread_count; i++) {
        if (pthread_create(&eng->threads[i], NULL, worker_main, eng) != 0) {
            eng->thread_count = i;
            st = rd_error_set(err, RD_E_INTERNAL, "cannot start engine worker threads");
            goto fail;
        }
    }
    if (pthread_create(&eng->canceller, NULL, canceller_main, eng) != 0) {
        st = rd_error_set(err, RD_E_INTERNAL, "cannot start the engine's canceller thread");
        goto fail;
    }
    eng->canceller_started = 1;
    rd_buf_free(&dir);
    log_msg(eng, RD_LOG_INFO, "engine: warehouses under %s%s", data_dir, "/warehouses");
    *out = eng;
    return RD_OK;
fail:
    rd_buf_free(&dir);
    rd_emu_engine_close(eng);
    return st;
}

void rd_emu_engine_close(rd_emu_engine *eng)
{
    if (!eng)
        return;
    pthread_mutex_lock(&eng->mu);
    eng->stopping = 1;
    for (size_t i = 0; i < eng->stmt_count; i++) {
        rd_emu_stmt *s = eng->stmts[i];
        if (s->status < RD_ST_FINISHED) {
            s->cancel_requested = 1;
            if (s->running)
                duckdb_interrupt(s->running);
        }
    }
    pthread_cond_broadcast(&eng->work_cv);
    pthread_mutex_unlock(&eng->mu);
    for (int i = 0; i < eng->thread_count; i++)
        pthread_join(eng->threads[i], NULL);
    free(eng->threads);
    if (eng->canceller_started) {
        pthread_mutex_lock(&eng->mu);
        eng->canceller_stop = 1;
        pthread_cond_broadcast(&eng->done_cv);
        pthread_mutex_unlock(&eng->mu);
        pthread_join(eng->canceller, NULL);
    }
    for (size_t i = 0; i < eng->stmt_count; i++)
        stmt_free(eng->stmts[i]);
    free(eng->stmts);
    sessions_free(eng->sessions);
    eng->sessions = NULL;
    for (rd_emu_warehouse *w = eng->warehouses, *n; w; w = n) {
        n = w->next;
        duckdb_close(&w->db);
        free(w->target);
        free(w->database);
        free(w->path);
        free(w);
    }
    for (size_t i = 0; i < eng->target_count; i++)
        free(eng->targets[i].name);
    free(eng->targets);
    free(eng->default_role);
    free(eng->data_dir);
    pthread_cond_destroy(&eng->work_cv);
    pthread_cond_destroy(&eng->done_cv);
    pthread_mutex_destroy(&eng->mu);
    free(eng);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Rewrites one SQL text and checks its parameters against the given ones. */
static int prepare_sql(rd_emu_stmt *s, const rd_emu_submit *in, rd_emu_error *err)
{
    char first[32];
    rd_sql_first_word(s->sql, first, sizeof first);
    rd_buf out = RD_BUF_INIT;
    char **used = NULL;
    size_t used_n = 0;
    rd_error rerr;
    rd_error_clear(&rerr);
    if (rd_sql_rewrite_ex(s->sql, RD_SQL_BPCHAR, &out, &used, &used_n, &rerr) != 0) {
        /* a syntax problem surfaces when the statement runs, as in Redshift */
        rd_buf_reset(&out);
        rd_buf_puts(&out, s->sql);
    }
    if (strcmp(first, "unload") == 0) {
        free_names(used, used_n);
        used = NULL;
        used_n = 0;
    }
    int st = 0;
    /* every given parameter must be used, every used one given */
    rd_buf unused = RD_BUF_INIT;
    for (size_t i = 0; i < in->param_count; i++) {
        int found = 0;
        for (size_t k = 0; k < used_n && !found; k++)
            found = strcmp(used[k], in->params[i].name) == 0;
        if (!found)
            rd_buf_printf(&unused, "%s%s", unused.len ? ", " : "", in->params[i].name);
    }
    if (unused.len && !in->is_batch) {
        st = rd_emu_error_set(err, 400, "ValidationException",
                              "Parameters list contains unused parameters. Unused parameters: [%s]",
                              rd_buf_cstr(&unused));
    }
    for (size_t k = 0; k < used_n && st == 0; k++) {
        int found = 0;
        for (size_t i = 0; i < in->param_count && !found; i++)
            found = strcmp(used[k], in->params[i].name) == 0;
        if (!found)
            st = rd_emu_error_set(err, 400, "ValidationException", "Parameter %s is not provided in the parameter list",
                                  used[k]);
    }
    rd_buf_free(&unused);
    if (st == 0 && used_n) {
        s->param_names = calloc(used_n, sizeof *s->param_names);
        s->param_values = calloc(used_n, sizeof *s->param_values);
        for (size_t k = 0; k < used_n && s->param_names && s->param_values; k++)
            for (size_t i = 0; i < in->param_count; i++)
                if (strcmp(used[k], in->params[i].name) == 0) {
                    s->param_names[s->param_count] = strdup(used[k]);
                    s->param_values[s->param_count] = strdup(in->params[i].value);
                    s->param_count++;
                    break;
                }
    }
    free_names(used, used_n);
    s->duck_sql = rd_buf_detach(&out);
    return st;
}

static rd_emu_stmt *new_stmt(const rd_emu_submit *in, const char *sql)
{
    rd_emu_stmt *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sql = strdup(sql ? sql : "");
    s->is_cluster = in->is_cluster;
    s->target = strdup(in->target);
    s->database = strdup(in->database);
    s->db_user = dup_or_null(in->db_user);
    s->secret_arn = dup_or_null(in->secret_arn);
    s->owner = dup_or_null(in->owner);
    s->statement_name = dup_or_null(in->statement_name);
    s->client_token = dup_or_null(in->client_token);
    s->result_format = strdup(in->result_format ? in->result_format : "JSON");
    s->result_rows = -1;
    s->result_size = -1;
    s->status = RD_ST_SUBMITTED;
    s->created_at = s->updated_at = rd_emu_now();
    return s;
}

/* The Data API's 400 replies (ValidationException, ResourceNotFoundException, ...). */
static int validation(rd_emu_error *err, const char *code, const char *msg)
{
    return rd_emu_error_set(err, 400, code, "%s", msg);
}

/* An internal failure, still a reply the client reads. */
static int internal(rd_emu_error *err, const char *msg)
{
    return rd_emu_error_set(err, 500, "InternalServerException", "%s", msg);
}

/* A new session for the submission's target (not yet registered). NULL on out of memory. */
static rd_emu_session *session_new(const rd_emu_submit *in)
{
    rd_emu_session *ss = calloc(1, sizeof *ss);
    if (!ss)
        return NULL;
    make_uuid(ss->id);
    ss->is_cluster = in->is_cluster;
    ss->target = strdup(in->target);
    ss->database = strdup(in->database);
    ss->db_user = dup_or_null(in->db_user);
    ss->secret_arn = dup_or_null(in->secret_arn);
    ss->owner = dup_or_null(in->owner);
    ss->keep_alive = in->keep_alive_seconds;
    ss->hard_end = rd_emu_now() + RD_EMU_SESSION_MAX_SECONDS;
    if (!ss->target || !ss->database || (in->db_user && !ss->db_user) || (in->secret_arn && !ss->secret_arn) ||
        (in->owner && !ss->owner)) {
        sessions_free(ss);
        return NULL;
    }
    return ss;
}

/* The live session id names for owner: 0 and *out, else -1 with err (400 ValidationException: unknown or
 * another owner's, or ended). Caller holds eng->mu. */
static int session_find(rd_emu_engine *eng, const char *id, const char *owner, rd_emu_session **out,
                        rd_emu_error *err)
{
    rd_emu_session *ss = eng->sessions;
    while (ss && !(strcmp(ss->id, id) == 0 && rd_emu_owner_eq(ss->owner, owner)))
        ss = ss->next;
    if (!ss)
        return rd_emu_error_set(err, 400, "ValidationException",
                                "Session with Id: %.40s is invalid. Give the SessionId an ExecuteStatement with "
                                "SessionKeepAliveSeconds returned.",
                                id);
    if (ss->closed || (!ss->busy && rd_emu_now() >= ss->expires_at))
        return rd_emu_error_set(err, 400, "ValidationException",
                                "Session is not available: its keep-alive has passed. Run the statement without "
                                "SessionId (with SessionKeepAliveSeconds to open a new session).");
    *out = ss;
    return 0;
}

/* The session a submission names: live, idle, and the target it was opened on. Caller holds eng->mu. */
static int session_check(rd_emu_engine *eng, const rd_emu_submit *in, rd_emu_session **out, rd_emu_error *err)
{
    rd_emu_session *ss = NULL;
    if (session_find(eng, in->session_id, in->owner, &ss, err) != 0)
        return -1;
    if (ss->busy)
        return rd_emu_error_set(err, 400, "ValidationException",
                                "Session %.40s is busy: a statement is still running in it. Wait until that statement "
                                "has finished (DescribeStatement), then run the next one.",
                                ss->id);
    if (ss->is_cluster != in->is_cluster || strcmp(ss->target, in->target) != 0 ||
        strcmp(ss->database, in->database) != 0)
        return rd_emu_error_set(err, 400, "ValidationException",
                                "Session %.40s belongs to %s %.64s, database %.64s: leave WorkgroupName, "
                                "ClusterIdentifier and Database out when giving SessionId.",
                                ss->id, ss->is_cluster ? "cluster" : "workgroup", ss->target, ss->database);
    *out = ss;
    return 0;
}

/* Room for one more session on the submission's target. Caller holds eng->mu. */
static int session_room(rd_emu_engine *eng, const rd_emu_submit *in, rd_emu_error *err)
{
    int n = 0;
    double now = rd_emu_now();
    for (rd_emu_session *ss = eng->sessions; ss; ss = ss->next)
        if (ss->is_cluster == in->is_cluster && strcmp(ss->target, in->target) == 0 && !ss->closed &&
            (ss->busy || now < ss->expires_at))
            n++;
    if (n < RD_EMU_SESSIONS_PER_TARGET)
        return 0;
    return rd_emu_error_set(err, 400, "ActiveSessionsExceededException",
                            "Active sessions exceeded the limit of %d for %s %.64s. Reuse a session (SessionId) or "
                            "wait until one expires.",
                            RD_EMU_SESSIONS_PER_TARGET, in->is_cluster ? "cluster" : "workgroup", in->target);
}

int rd_emu_engine_session_target(rd_emu_engine *eng, const char *session_id, const char *owner, int *is_cluster,
                                 char **target, char **database, char **db_user, char **secret_arn,
                                 rd_emu_error *err)
{
    pthread_mutex_lock(&eng->mu);
    rd_emu_session *ss = NULL;
    if (session_find(eng, session_id ? session_id : "", owner, &ss, err) != 0) {
        pthread_mutex_unlock(&eng->mu);
        return -1;
    }
    char *t = strdup(ss->target), *d = strdup(ss->database), *u = dup_or_null(ss->db_user),
         *a = dup_or_null(ss->secret_arn);
    int cl = ss->is_cluster;
    pthread_mutex_unlock(&eng->mu);
    if (!t || !d) {
        free(t);
        free(d);
        free(u);
        free(a);
        return internal(err, "out of memory");
    }
    *is_cluster = cl;
    *target = t;
    *database = d;
    *db_user = u;
    *secret_arn = a;
    return 0;
}

int rd_emu_engine_submit(rd_emu_engine *eng, const rd_emu_submit *in, char id_out[48], double *created_at,
                               rd_emu_error *err)
{
    if (!in->target || !*in->target)
        return validation(err, "ValidationException", "Either WorkgroupName or ClusterIdentifier must be specified.");
    if (!in->database || !*in->database)
        return validation(err, "ValidationException", "Database is required.");
    if (!rd_emu_engine_has_target(eng, in->is_cluster, in->target)) {
        char msg[256];
        if (in->is_cluster)
            snprintf(msg, sizeof msg, "Cluster %s not found.", in->target);
        else
            snprintf(msg, sizeof msg, "Workgroup %s not found.", in->target);
        return validation(err, in->is_cluster ? "ValidationException" : "ResourceNotFoundException", msg);
    }
    if (!safe_name(in->database))
        return validation(err, "ValidationException", "Database name is not valid.");
    if (in->sql_count == 0 || (in->is_batch && in->sql_count > 40))
        return validation(err, "ValidationException", "Sqls must contain between 1 and 40 statements.");
    for (size_t i = 0; i < in->sql_count; i++)
        if (!in->sqls[i] || !*in->sqls[i])
            return validation(err, "ValidationException", "Sql must not be empty.");

    /* ClientToken idempotency */
    if (in->client_token) {
        pthread_mutex_lock(&eng->mu);
        for (size_t i = 0; i < eng->stmt_count; i++) {
            rd_emu_stmt *s = eng->stmts[i];
            if (s->client_token && strcmp(s->client_token, in->client_token) == 0 &&
                rd_emu_owner_eq(s->owner, in->owner)) {
                snprintf(id_out, 48, "%s", s->id);
                if (in->session_id_out)
                    snprintf(in->session_id_out, 48, "%s", s->session_id);
                *created_at = s->created_at;
                pthread_mutex_unlock(&eng->mu);
                return 0;
            }
        }
        pthread_mutex_unlock(&eng->mu);
    }

    rd_emu_stmt *top = new_stmt(in, in->is_batch ? NULL : in->sqls[0]);
    if (!top)
        return internal(err, "out of memory");
    make_uuid(top->id);
    top->is_batch = in->is_batch;
    top->fault_fail = in->fault_fail;
    int st = 0;
    if (in->is_batch) {
        top->subs = calloc(in->sql_count, sizeof *top->subs);
        if (!top->subs) {
            stmt_free(top);
            return internal(err, "out of memory");
        }
        for (size_t i = 0; i < in->sql_count && st == 0; i++) {
            rd_emu_stmt *s = new_stmt(in, in->sqls[i]);
            if (!s) {
                st = internal(err, "out of memory");
                break;
            }
            snprintf(s->id, sizeof s->id, "%.36s:%u", top->id, (unsigned)(i + 1) % 100u);
            s->parent = top;
            top->subs[top->sub_count++] = s;
            st = prepare_sql(s, in, err);
        }
        if (st == 0 && in->param_count) { /* in a batch, a parameter must be used somewhere */
            for (size_t i = 0; i < in->param_count && st == 0; i++) {
                int found = 0;
                for (size_t k = 0; k < top->sub_count && !found; k++)
                    for (size_t j = 0; j < top->subs[k]->param_count && !found; j++)
                        found = strcmp(top->subs[k]->param_names[j], in->params[i].name) == 0;
                if (!found) {
                    char msg[300];
                    snprintf(msg, sizeof msg, "Parameters list contains unused parameters. Unused parameters: [%s]",
                             in->params[i].name);
                    st = validation(err, "ValidationException", msg);
                }
            }
        }
    } else {
        
        st = prepare_sql(top, in, err);
    }
    if (st != 0) {
        stmt_free(top);
        return st;
    }
    rd_emu_session *fresh = NULL;
    if (!in->session_id && in->keep_alive_seconds > 0) {
        fresh = session_new(in);
        if (!fresh) {
            stmt_free(top);
            return internal(err, "out of memory");
        }
    }
    pthread_mutex_lock(&eng->mu);
    rd_emu_session *sess = NULL;
    if (in->session_id || fresh) {
        st = in->session_id ? session_check(eng, in, &sess, err) : session_room(eng, in, err);
        if (st != 0) {
            pthread_mutex_unlock(&eng->mu);
            sessions_free(fresh);
            stmt_free(top);
            return st;
        }
    }
    int active = 0;
    for (size_t i = 0; i < eng->stmt_count; i++) {
        rd_emu_stmt *s = eng->stmts[i];
        if (s->status < RD_ST_FINISHED && s->is_cluster == in->is_cluster && strcmp(s->target, in->target) == 0)
            active++;
    }
    if (active >= eng->max_active || eng->stopping) {
        pthread_mutex_unlock(&eng->mu);
        sessions_free(fresh);
        stmt_free(top);
        char msg[160];
        snprintf(msg, sizeof msg, "Active statements exceeded the limit of %d for %s %s.", eng->max_active,
                 in->is_cluster ? "cluster" : "workgroup", in->target);
        return validation(err, "ActiveStatementsExceededException", msg);
    }
    if (eng->stmt_count == eng->stmt_cap) {
        size_t cap = eng->stmt_cap ? eng->stmt_cap * 2 : 64;
        rd_emu_stmt **nv = realloc(eng->stmts, cap * sizeof *nv);
        if (!nv) {
            pthread_mutex_unlock(&eng->mu);
            sessions_free(fresh);
            stmt_free(top);
            return internal(err, "out of memory");
        }
        eng->stmts = nv;
        eng->stmt_cap = cap;
    }
    top->query_id = ++eng->next_query_id;
    top->pid = 1073741824 + (top->query_id % 100000);
    for (size_t i = 0; i < top->sub_count; i++) {
        top->subs[i]->query_id = ++eng->next_query_id;
        top->subs[i]->pid = top->pid;
    }
    if (fresh) {
        fresh->next = eng->sessions;
        eng->sessions = fresh;
        sess = fresh;
    }
    if (sess) {
        if (in->keep_alive_seconds >= 0)
            sess->keep_alive = in->keep_alive_seconds;
        sess->busy = 1;
        top->session = sess;
        snprintf(top->session_id, sizeof top->session_id, "%s", sess->id);
    }
    if (in->session_id_out)
        snprintf(in->session_id_out, 48, "%s", top->session_id);
    eng->stmts[eng->stmt_count++] = top;
    if (eng->queue_tail)
        eng->queue_tail->queue_next = top;
    else
        eng->queue_head = top;
    eng->queue_tail = top;
    snprintf(id_out, 48, "%s", top->id);
    *created_at = top->created_at;
    pthread_cond_signal(&eng->work_cv);
    pthread_mutex_unlock(&eng->mu);
    return 0;
}

int rd_emu_engine_cancel(rd_emu_engine *eng, const char *id, const char *owner, rd_emu_error *err)
{
    pthread_mutex_lock(&eng->mu);
    rd_emu_stmt *s = rd_emu_engine_find(eng, id, owner);
    if (s && s->parent)
        s = s->parent;
    if (!s) {
        pthread_mutex_unlock(&eng->mu);
        return validation(err, "ResourceNotFoundException", "Query does not exist.");
    }
    if (s->status >= RD_ST_FINISHED) {
        char msg[128];
        snprintf(msg, sizeof msg, "Could not cancel a query that is already in %s state.",
                 rd_emu_status_name(s->status));
        pthread_mutex_unlock(&eng->mu);
        return validation(err, "ValidationException", msg);
    }
    s->cancel_requested = 1;
    if (s->status == RD_ST_SUBMITTED) {
        session_release(s);
        s->status = RD_ST_ABORTED;
        s->updated_at = rd_emu_now();
        for (size_t i = 0; i < s->sub_count; i++) {
            s->subs[i]->status = RD_ST_ABORTED;
            s->subs[i]->updated_at = s->updated_at;
        }
        pthread_cond_broadcast(&eng->done_cv);
    } else if (s->running) {
        duckdb_interrupt(s->running);
    }
    pthread_mutex_unlock(&eng->mu);
    return 0;
}

int rd_emu_engine_wait(rd_emu_engine *eng, const char *id, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&eng->mu);
    int done = 0;
    for (;;) {
        rd_emu_stmt *s = NULL;
        size_t base_len = strcspn(id, ":");
        for (size_t i = 0; i < eng->stmt_count && !s; i++)
            if (strlen(eng->stmts[i]->id) == base_len && strncmp(eng->stmts[i]->id, id, base_len) == 0)
                s = eng->stmts[i];
        if (!s || s->status >= RD_ST_FINISHED) {
            done = s != NULL;
            break;
        }
        if (pthread_cond_timedwait(&eng->done_cv, &eng->mu, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&eng->mu);
    return done;
}

#else /* no DuckDB: the engine cannot run statements */

rd_status rd_emu_engine_open(const char *data_dir, int slices, struct rd_s3_store *store, struct rd_emu *emu,
                             const rd_log *log, rd_emu_engine **out, rd_error *err)
{
    return rd_error_set(err, RD_E_CONFIG,
                        "the emulator was built without DuckDB: run scripts/bootstrap.sh and rebuild");
}
void rd_emu_engine_close(rd_emu_engine *eng)
{
    (void)eng;
}
int rd_emu_engine_submit(rd_emu_engine *eng, const rd_emu_submit *s, char id_out[48], double *created_at,
                         rd_emu_error *err)
{
    return rd_emu_error_set(err, 500, "InternalServerException", "the emulator was built without DuckDB");
}
int rd_emu_engine_cancel(rd_emu_engine *eng, const char *id, const char *owner, rd_emu_error *err)
{
    return rd_emu_error_set(err, 500, "InternalServerException", "the emulator was built without DuckDB");
}
int rd_emu_engine_wait(rd_emu_engine *eng, const char *id, int timeout_ms)
{
    return 0;
}
int rd_emu_engine_session_target(rd_emu_engine *eng, const char *session_id, const char *owner, int *is_cluster,
                                 char **target, char **database, char **db_user, char **secret_arn,
                                 rd_emu_error *err)
{
    return rd_emu_error_set(err, 500, "InternalServerException", "the emulator was built without DuckDB");
}
rd_status rd_emu_engine_load_sample(rd_emu_engine *eng, const char *spec, unsigned long long seed, rd_error *err)
{
    return rd_error_set(err, RD_E_CONFIG, "the emulator was built without DuckDB");
}
#endif
