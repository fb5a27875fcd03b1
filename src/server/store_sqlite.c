/* store_sqlite.c — the SQLite backend of the store (store.h): DATA_DIR/store.db (0600, WAL, foreign keys,
 * secure_delete), the numbered migrations, a pool of connections, and one prepared statement with bound
 * parameters per row operation. Owns no rule of the store: names, sealing and audit are store.c's. */
#include "server/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/fsutil.h"

/* The migrations, applied in order; migration i + 1 is migrations[i]. Never edit one that shipped: add one. */
static const char *const migrations[] = {
    /* 1: every table */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER);"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE UNIQUE INDEX tokens_live_name ON tokens(user_id, name) WHERE revoked_at IS NULL;"
    "CREATE TABLE projects ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  next_version INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE memberships ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),"
    "  prod_access INTEGER NOT NULL DEFAULT 0 CHECK (prod_access IN (0, 1)),"
    "  PRIMARY KEY (user_id, project_id));"
    "CREATE INDEX memberships_project ON memberships(project_id);"
    "CREATE TABLE deployments ("
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),"
    "  archive_path TEXT NOT NULL,"
    "  archive_sha256 TEXT NOT NULL,"
    "  PRIMARY KEY (project_id, version));"
    "CREATE UNIQUE INDEX deployments_one_active ON deployments(project_id) WHERE active = 1;"
    "CREATE TABLE variables ("
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  environment TEXT NOT NULL CHECK (environment IN ('dev', 'prod', 'shared')),"
    "  name TEXT NOT NULL,"
    "  key_id INTEGER NOT NULL,"
    "  blob BLOB NOT NULL,"
    "  updated_by TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (project_id, environment, name));"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  project TEXT,"
    "  detail_json TEXT NOT NULL);"
    "CREATE INDEX audit_project ON audit(project, id);",
    /* 2: the environment a deployment was made for (NULL for the deployments recorded before) */
    "ALTER TABLE deployments ADD COLUMN environment TEXT CHECK (environment IN ('dev', 'prod'));",
    /* 3: runs and their log lines, the schedules' last slots, the published snapshots */
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  source TEXT NOT NULL,"
    "  table_name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  \"trigger\" TEXT NOT NULL CHECK (\"trigger\" IN ('schedule', 'manual', 'catch-up')),"
    "  triggered_by TEXT NOT NULL,"
    "  state TEXT NOT NULL"
    "    CHECK (state IN ('queued', 'running', 'success', 'failed', 'skipped', 'cancelled')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  queued_at INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL DEFAULT 0,"
    "  finished_at INTEGER NOT NULL DEFAULT 0,"
    "  \"rows\" INTEGER NOT NULL DEFAULT 0,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  files INTEGER NOT NULL DEFAULT 0,"
    "  probe_s REAL NOT NULL DEFAULT 0,"
    "  unload_s REAL NOT NULL DEFAULT 0,"
    "  download_s REAL NOT NULL DEFAULT 0,"
    "  commit_s REAL NOT NULL DEFAULT 0,"
    "  cleanup_s REAL NOT NULL DEFAULT 0,"
    "  total_s REAL NOT NULL DEFAULT 0,"
    "  error TEXT);"
    "CREATE INDEX runs_project ON runs(project_id, id);"
    "CREATE INDEX runs_source ON runs(project_id, source, id);"
    "CREATE INDEX runs_queued ON runs(project_id, queued_at);"
    "CREATE INDEX runs_open ON runs(state) WHERE state IN ('queued', 'running');"
    "CREATE TABLE run_logs ("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  seq INTEGER NOT NULL,"
    "  at_ms INTEGER NOT NULL,"
    "  line TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE schedule_state ("
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  source TEXT NOT NULL,"
    "  last_slot_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (project_id, source));"
    "CREATE TABLE snapshots ("
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  id INTEGER NOT NULL,"
    "  path TEXT NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  created_at_ms INTEGER NOT NULL,"
    "  run_id INTEGER NOT NULL,"
    "  tables_json TEXT NOT NULL,"
    "  PRIMARY KEY (project_id, id));",
};
#define MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

typedef struct sq_be {
    char *path;
    int busy_ms;
    size_t max;
    pthread_mutex_t mu; /* guards the pool */
    pthread_cond_t cv;
    sqlite3 **idle;
    size_t nidle;
    size_t nopen;
    pthread_mutex_t write_mu; /* one writer of this process at a time; held from begin to commit/rollback */
} sq_be;

struct rd_store_tx {
    sq_be *be;
    sqlite3 *db;
    int write;
};

/* ---- errors ------------------------------------------------------------------------------------------ */

static rd_status sq_fail(sq_be *be, sqlite3 *db, int rc, const char *op, rd_error *err)
{
    int prim = rc & 0xff;
    const char *what = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (prim) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return rd_error_set(err, RD_E_IO,
                            "store %s: cannot %s: another process held the database for more than %d ms: try again",
                            be->path, op, be->busy_ms);
    case SQLITE_FULL:
        return rd_error_set(err, RD_E_IO, "store %s: cannot %s: the disk is full", be->path, op);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return rd_error_set(err, RD_E_CONFIG,
                            "store %s: cannot %s: the file is damaged or not a redduck store: restore it from a "
                            "backup",
                            be->path, op);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
        return rd_error_set(err, RD_E_IO, "store %s: cannot %s (%s): check the data dir's owner and permissions",
                            be->path, op, what);
    case SQLITE_NOMEM:
        return rd_error_set(err, RD_E_INTERNAL, "store %s: cannot %s: out of memory", be->path, op);
    default:
        return rd_error_set(err, RD_E_IO, "store %s: cannot %s (sqlite: %s)", be->path, op, what);
    }
}

/* ---- connections ------------------------------------------------------------------------------------- */

static rd_status conn_open(sq_be *be, sqlite3 **out, rd_error *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(be->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
                             NULL);
    if (rc != SQLITE_OK) {
        rd_status s = sq_fail(be, db, rc, "open the database", err);
        sqlite3_close(db);
        return s;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, be->busy_ms);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    rc = sqlite3_exec(db,
                      "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA synchronous = FULL;"
                      "PRAGMA trusted_schema = OFF;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rd_status s = sq_fail(be, db, rc, "set up a connection", err);
        sqlite3_close(db);
        return s;
    }
    *out = db;
    return RD_OK;
}

static rd_status conn_acquire(sq_be *be, sqlite3 **out, rd_error *err)
{
    pthread_mutex_lock(&be->mu);
    for (;;) {
        if (be->nidle > 0) {
            *out = be->idle[--be->nidle];
            pthread_mutex_unlock(&be->mu);
            return RD_OK;
        }
        if (be->nopen < be->max)
            break;
        pthread_cond_wait(&be->cv, &be->mu);
    }
    be->nopen++;
    pthread_mutex_unlock(&be->mu);
    rd_status s = conn_open(be, out, err);
    if (s != RD_OK) {
        pthread_mutex_lock(&be->mu);
        be->nopen--;
        pthread_cond_signal(&be->cv);
        pthread_mutex_unlock(&be->mu);
    }
    return s;
}

static void conn_release(sq_be *be, sqlite3 *db)
{
    pthread_mutex_lock(&be->mu);
    be->idle[be->nidle++] = db;
    pthread_cond_signal(&be->cv);
    pthread_mutex_unlock(&be->mu);
}

static void sq_close(void *p)
{
    sq_be *be = p;
    if (!be)
        return;
    for (size_t i = 0; i < be->nidle; i++)
        sqlite3_close(be->idle[i]);
    free(be->idle);
    pthread_mutex_destroy(&be->mu);
    pthread_cond_destroy(&be->cv);
    pthread_mutex_destroy(&be->write_mu);
    free(be->path);
    free(be);
}

/* ---- transactions ------------------------------------------------------------------------------------ */

static rd_status sq_begin(void *p, int write, rd_store_tx **out, rd_error *err)
{
    sq_be *be = p;
    rd_store_tx *tx = calloc(1, sizeof *tx);
    if (!tx)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    /* the write lock first, so queued writers do not hold connections that readers could use */
    if (write)
        pthread_mutex_lock(&be->write_mu);
    rd_status s = conn_acquire(be, &tx->db, err);
    if (s != RD_OK) {
        if (write)
            pthread_mutex_unlock(&be->write_mu);
        free(tx);
        return s;
    }
    tx->be = be;
    tx->write = write;
    int rc = sqlite3_exec(tx->db, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        s = sq_fail(be, tx->db, rc, write ? "start a write transaction" : "start a read transaction", err);
        if (write)
            pthread_mutex_unlock(&be->write_mu);
        conn_release(be, tx->db);
        free(tx);
        return s;
    }
    *out = tx;
    return RD_OK;
}

static void tx_end(rd_store_tx *tx)
{
    if (tx->write)
        pthread_mutex_unlock(&tx->be->write_mu);
    conn_release(tx->be, tx->db);
    free(tx);
}

static void sq_rollback(rd_store_tx *tx)
{
    if (!sqlite3_get_autocommit(tx->db))
        sqlite3_exec(tx->db, "ROLLBACK", NULL, NULL, NULL);
    tx_end(tx);
}

static rd_status sq_commit(rd_store_tx *tx, rd_error *err)
{
    int rc = sqlite3_exec(tx->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rd_status s = sq_fail(tx->be, tx->db, rc, "commit", err);
        sq_rollback(tx);
        return s;
    }
    tx_end(tx);
    return RD_OK;
}

/* ---- statements -------------------------------------------------------------------------------------- */

/* One bound parameter (?1, ?2, ... in order). */
typedef struct sq_arg {
    enum { A_INT, A_TEXT, A_BLOB, A_REAL } kind;
    int64_t i;
    const void *p; /* text (NUL-terminated; NULL binds NULL) or blob */
    size_t n;      /* blob bytes */
    double d;
} sq_arg;

#define A_I(x) { A_INT, (int64_t)(x), NULL, 0, 0.0 }
#define A_T(x) { A_TEXT, 0, (x), 0, 0.0 }
#define A_B(b, len) { A_BLOB, 0, (b), (len), 0.0 }
#define A_D(x) { A_REAL, 0, NULL, 0, (x) }
/* The parameters of one statement: ARGS(A_I(pid), A_T(name)) is the array and its length. */
#define ARGS(...) (const sq_arg[]){ __VA_ARGS__ }, sizeof((const sq_arg[]){ __VA_ARGS__ }) / sizeof(sq_arg)

/* Reads the current row of a query into row (an element of the caller's type); on failure the row may hold
 * partial allocations, which the matching clear function frees. */
typedef rd_status (*read_fn)(sqlite3_stmt *stmt, void *row, rd_error *err);
typedef void (*clear_fn)(void *row);

static rd_status prep(rd_store_tx *tx, const char *sql, const sq_arg *args, size_t nargs, sqlite3_stmt **stmt,
                      const char *op, rd_error *err)
{
    int rc = sqlite3_prepare_v2(tx->db, sql, -1, stmt, NULL);
    if (rc != SQLITE_OK) {
        *stmt = NULL;
        return sq_fail(tx->be, tx->db, rc, op, err);
    }
    for (size_t k = 0; k < nargs; k++) {
        int i = (int)k + 1;
        const sq_arg *a = &args[k];
        if (a->kind == A_INT)
            rc = sqlite3_bind_int64(*stmt, i, a->i);
        else if (a->kind == A_REAL)
            rc = sqlite3_bind_double(*stmt, i, a->d);
        else if (a->kind == A_BLOB)
            rc = sqlite3_bind_blob(*stmt, i, a->p, (int)a->n, SQLITE_TRANSIENT);
        else if (a->p)
            rc = sqlite3_bind_text(*stmt, i, a->p, -1, SQLITE_TRANSIENT);
        else
            rc = sqlite3_bind_null(*stmt, i);
        if (rc != SQLITE_OK) {
            rd_status s = sq_fail(tx->be, tx->db, rc, op, err);
            sqlite3_finalize(*stmt);
            *stmt = NULL;
            return s;
        }
    }
    return RD_OK;
}

/* Runs a statement that returns no row; *changes (may be NULL) the rows changed. */
static rd_status exec_sql(rd_store_tx *tx, const char *sql, const sq_arg *args, size_t nargs, const char *op,
                          int *changes, rd_error *err)
{
    sqlite3_stmt *stmt;
    rd_status s = prep(tx, sql, args, nargs, &stmt, op, err);
    if (s != RD_OK)
        return s;
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        s = sq_fail(tx->be, tx->db, rc, op, err);
    else if (changes)
        *changes = sqlite3_changes(tx->db);
    sqlite3_finalize(stmt);
    return s;
}

/* One step of a query: RD_OK with *row 1 or 0, or the error. */
static rd_status step(rd_store_tx *tx, sqlite3_stmt *stmt, const char *op, int *row, rd_error *err)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *row = 1;
        return RD_OK;
    }
    *row = 0;
    if (rc == SQLITE_DONE)
        return RD_OK;
    return sq_fail(tx->be, tx->db, rc, op, err);
}

static rd_status oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory reading the store");
}

/* Makes room for one more element of size elem in *arr (of *cap), zeroed; 0 on out of memory. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 1;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return 0;
    memset((char *)p + *cap * elem, 0, (ncap - *cap) * elem);
    *arr = p;
    *cap = ncap;
    return 1;
}

/* Every row of a query, read with read_row into a new array of elements of elem bytes (*out, *n_out; NULL
 * and 0 for none). On failure what was read is cleared with clear_row (may be NULL) and freed. */
static rd_status query_rows(rd_store_tx *tx, const char *sql, const sq_arg *args, size_t nargs, const char *op,
                            size_t elem, read_fn read_row, clear_fn clear_row, void **out, size_t *n_out,
                            rd_error *err)
{
    sqlite3_stmt *stmt;
    rd_status s = prep(tx, sql, args, nargs, &stmt, op, err);
    if (s != RD_OK)
        return s;
    char *arr = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        int row = 0;
        s = step(tx, stmt, op, &row, err);
        if (s != RD_OK || !row)
            break;
        if (!grow((void **)&arr, &cap, n, elem)) {
            s = oom(err);
            break;
        }
        s = read_row(stmt, arr + n * elem, err);
        n++; /* a row read in part is cleared below */
        if (s != RD_OK)
            break;
    }
    sqlite3_finalize(stmt);
    if (s != RD_OK) {
        for (size_t i = 0; clear_row && i < n; i++)
            clear_row(arr + i * elem);
        free(arr);
        return s;
    }
    *out = arr;
    *n_out = n;
    return RD_OK;
}

/* The first row of a query into out (elem bytes, written only on success). RD_E_NOT_FOUND, with err
 * untouched, when there is none: the caller says what is missing. */
static rd_status query_one(rd_store_tx *tx, const char *sql, const sq_arg *args, size_t nargs, const char *op,
                           size_t elem, read_fn read_row, clear_fn clear_row, void *out, rd_error *err)
{
    sqlite3_stmt *stmt;
    rd_status s = prep(tx, sql, args, nargs, &stmt, op, err);
    if (s != RD_OK)
        return s;
    int row = 0;
    s = step(tx, stmt, op, &row, err);
    if (s == RD_OK && !row)
        s = RD_E_NOT_FOUND;
    void *tmp = NULL;
    if (s == RD_OK && !(tmp = calloc(1, elem)))
        s = oom(err);
    if (s == RD_OK) {
        s = read_row(stmt, tmp, err);
        if (s == RD_OK)
            memcpy(out, tmp, elem);
        else if (clear_row)
            clear_row(tmp);
    }
    free(tmp);
    sqlite3_finalize(stmt);
    return s;
}

/* A text column, strdup'd; NULL for SQL NULL. Sets *oom_flag when strdup fails. */
static char *col_dup(sqlite3_stmt *stmt, int i, int *oom_flag)
{
    if (sqlite3_column_type(stmt, i) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(stmt, i);
    char *s = strdup(t ? (const char *)t : "");
    if (!s)
        *oom_flag = 1;
    return s;
}

/* A blob column, copied (never NULL on success). */
static unsigned char *col_blob(sqlite3_stmt *stmt, int i, size_t *len)
{
    size_t n = (size_t)sqlite3_column_bytes(stmt, i);
    unsigned char *copy = malloc(n ? n : 1);
    if (copy && n)
        memcpy(copy, sqlite3_column_blob(stmt, i), n);
    *len = n;
    return copy;
}

static rd_env col_env(sqlite3_stmt *stmt, int i)
{
    return rd_env_parse((const char *)sqlite3_column_text(stmt, i));
}

typedef struct blob_row {
    unsigned char *b;
    size_t n;
} blob_row;

static rd_status read_blob(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    blob_row *r = row;
    r->b = col_blob(stmt, 0, &r->n);
    return r->b ? RD_OK : oom(err);
}

static rd_status read_int(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    (void)err;
    *(int64_t *)row = sqlite3_column_int64(stmt, 0);
    return RD_OK;
}

/* The first column of the first row as an integer; RD_E_NOT_FOUND (err untouched) for no row. */
static rd_status query_int(rd_store_tx *tx, const char *sql, const sq_arg *args, size_t nargs, const char *op,
                           int64_t *v, rd_error *err)
{
    return query_one(tx, sql, args, nargs, op, sizeof *v, read_int, NULL, v, err);
}

/* 1 in *found when the query returns a row. */
static rd_status query_exists(rd_store_tx *tx, const char *sql, const sq_arg *args, size_t nargs, const char *op,
                              int *found, rd_error *err)
{
    int64_t v = 0;
    rd_status s = query_int(tx, sql, args, nargs, op, &v, err);
    *found = s == RD_OK;
    return s == RD_E_NOT_FOUND ? RD_OK : s;
}

/* The row of the user or project (what) named name, by sql with ?1 the name: RD_E_NOT_FOUND "WHAT NAME does
 * not exist" when there is none. */
static rd_status named_row(rd_store_tx *tx, const char *sql, const char *what, const char *name, size_t elem,
                           read_fn read_row, clear_fn clear_row, void *out, rd_error *err)
{
    char op[48];
    snprintf(op, sizeof op, "read a %s", what);
    rd_status s = query_one(tx, sql, ARGS(A_T(name)), op, elem, read_row, clear_row, out, err);
    if (s == RD_E_NOT_FOUND)
        return rd_error_set(err, RD_E_NOT_FOUND, "%s %s does not exist", what, name);
    return s;
}

static rd_status project_id(rd_store_tx *tx, const char *name, int64_t *id, rd_error *err)
{
    return named_row(tx, "SELECT id FROM projects WHERE name = ?1", "project", name, sizeof *id, read_int, NULL, id,
                     err);
}

static rd_status user_id(rd_store_tx *tx, const char *name, int64_t *id, rd_error *err)
{
    return named_row(tx, "SELECT id FROM users WHERE name = ?1", "user", name, sizeof *id, read_int, NULL, id, err);
}

/* The ids of a user and a project, both of which must exist. */
static rd_status member_ids(rd_store_tx *tx, const char *user, const char *project, int64_t *uid, int64_t *pid,
                            rd_error *err)
{
    rd_status s = user_id(tx, user, uid, err);
    return s == RD_OK ? project_id(tx, project, pid, err) : s;
}

/* ---- meta -------------------------------------------------------------------------------------------- */

static rd_status sq_meta_get(rd_store_tx *tx, const char *key, unsigned char **value, size_t *len, rd_error *err)
{
    blob_row r;
    rd_status s = query_one(tx, "SELECT value FROM meta WHERE key = ?1", ARGS(A_T(key)), "read the store's settings",
                            sizeof r, read_blob, NULL, &r, err);
    if (s == RD_OK) {
        *value = r.b;
        *len = r.n;
    }
    return s;
}

static rd_status sq_meta_set(rd_store_tx *tx, const char *key, const void *value, size_t len, rd_error *err)
{
    return exec_sql(tx,
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    ARGS(A_T(key), A_B(value, len)), "write the store's settings", NULL, err);
}

/* ---- users and tokens -------------------------------------------------------------------------------- */

static rd_status sq_user_insert(rd_store_tx *tx, const char *name, int admin, int64_t now, rd_error *err)
{
    return exec_sql(tx, "INSERT INTO users (name, admin, created_at) VALUES (?1, ?2, ?3)",
                    ARGS(A_T(name), A_I(admin), A_I(now)), "add a user", NULL, err);
}

static rd_status sq_user_delete(rd_store_tx *tx, const char *name, rd_error *err)
{
    int changes = 0;
    rd_status s = exec_sql(tx, "DELETE FROM users WHERE name = ?1", ARGS(A_T(name)), "remove a user", &changes, err);
    if (s == RD_OK && changes == 0)
        return rd_error_set(err, RD_E_NOT_FOUND, "user %s does not exist", name);
    return s;
}

static rd_status read_user(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    rd_store_user *u = row;
    int o = 0;
    u->name = col_dup(stmt, 0, &o);
    u->admin = sqlite3_column_int(stmt, 1);
    u->created_at = sqlite3_column_int64(stmt, 2);
    return o || !u->name ? oom(err) : RD_OK;
}

static void clear_user(void *row)
{
    rd_store_user_clear(row);
}

static rd_status sq_user_get(rd_store_tx *tx, const char *name, rd_store_user *out, rd_error *err)
{
    return named_row(tx, "SELECT name, admin, created_at FROM users WHERE name = ?1", "user", name, sizeof *out,
                     read_user, clear_user, out, err);
}

static rd_status sq_user_count(rd_store_tx *tx, int admins_only, int64_t *n, rd_error *err)
{
    return query_int(tx, "SELECT count(*) FROM users WHERE admin = 1 OR ?1 = 0", ARGS(A_I(admins_only ? 1 : 0)),
                     "count users", n, err);
}

static rd_status sq_user_list(rd_store_tx *tx, rd_store_user **out, size_t *n_out, rd_error *err)
{
    return query_rows(tx, "SELECT name, admin, created_at FROM users ORDER BY name", NULL, 0, "list users",
                      sizeof **out, read_user, clear_user, (void **)out, n_out, err);
}

static rd_status sq_token_insert(rd_store_tx *tx, const char *user, const char *name, const char *hash,
                                 int64_t now, rd_error *err)
{
    int64_t uid = 0;
    rd_status s = user_id(tx, user, &uid, err);
    if (s == RD_OK)
        s = exec_sql(tx, "INSERT INTO tokens (hash, user_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                     ARGS(A_T(hash), A_I(uid), A_T(name), A_I(now)), "create a token", NULL, err);
    return s;
}

static rd_status sq_token_revoke(rd_store_tx *tx, const char *user, const char *name, int64_t now, rd_error *err)
{
    int64_t uid = 0;
    int changes = 0;
    rd_status s = user_id(tx, user, &uid, err);
    if (s == RD_OK)
        s = exec_sql(tx, "UPDATE tokens SET revoked_at = ?3 WHERE user_id = ?1 AND name = ?2 AND revoked_at IS NULL",
                     ARGS(A_I(uid), A_T(name), A_I(now)), "revoke a token", &changes, err);
    if (s == RD_OK && changes == 0)
        return rd_error_set(err, RD_E_NOT_FOUND, "user %s has no live token named %s", user, name);
    return s;
}

static rd_status sq_token_user(rd_store_tx *tx, const char *hash, rd_store_user *out, rd_error *err)
{
    return query_one(tx,
                     "SELECT u.name, u.admin, u.created_at FROM tokens t JOIN users u ON u.id = t.user_id"
                     " WHERE t.hash = ?1 AND t.revoked_at IS NULL",
                     ARGS(A_T(hash)), "check a token", sizeof *out, read_user, clear_user, out, err);
}

static rd_status sq_token_live(rd_store_tx *tx, const char *user, const char *name, int *live, rd_error *err)
{
    int64_t uid = 0;
    rd_status s = user_id(tx, user, &uid, err);
    if (s == RD_OK)
        s = query_exists(tx, "SELECT 1 FROM tokens WHERE user_id = ?1 AND name = ?2 AND revoked_at IS NULL",
                         ARGS(A_I(uid), A_T(name)), "read tokens", live, err);
    return s;
}

/* ---- projects and roles ------------------------------------------------------------------------------ */

static rd_status sq_project_insert(rd_store_tx *tx, const char *name, int64_t now, rd_error *err)
{
    return exec_sql(tx, "INSERT INTO projects (name, created_at) VALUES (?1, ?2)", ARGS(A_T(name), A_I(now)),
                    "create a project", NULL, err);
}

static rd_status read_project(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    rd_store_project *p = row;
    int o = 0;
    p->name = col_dup(stmt, 0, &o);
    p->created_at = sqlite3_column_int64(stmt, 1);
    return o || !p->name ? oom(err) : RD_OK;
}

static void clear_project(void *row)
{
    rd_store_project *p = row;
    free(p->name);
    p->name = NULL;
}

static rd_status sq_project_get(rd_store_tx *tx, const char *name, rd_store_project *out, rd_error *err)
{
    return named_row(tx, "SELECT name, created_at FROM projects WHERE name = ?1", "project", name, sizeof *out,
                     read_project, clear_project, out, err);
}

static rd_status sq_project_list(rd_store_tx *tx, rd_store_project **out, size_t *n_out, rd_error *err)
{
    return query_rows(tx, "SELECT name, created_at FROM projects ORDER BY name", NULL, 0, "list projects",
                      sizeof **out, read_project, clear_project, (void **)out, n_out, err);
}

static rd_status sq_role_set(rd_store_tx *tx, const char *user, const char *project, rd_role role, int prod_access,
                             rd_error *err)
{
    int64_t uid = 0, pid = 0;
    rd_status s = member_ids(tx, user, project, &uid, &pid, err);
    if (s == RD_OK)
        s = exec_sql(tx,
                     "INSERT INTO memberships (user_id, project_id, role, prod_access) VALUES (?1, ?2, ?3, ?4)"
                     " ON CONFLICT (user_id, project_id) DO UPDATE SET role = excluded.role,"
                     " prod_access = excluded.prod_access",
                     ARGS(A_I(uid), A_I(pid), A_T(rd_role_name(role)), A_I(prod_access)), "grant a role", NULL, err);
    return s;
}

typedef struct role_row {
    rd_role role;
    int prod;
} role_row;

static rd_status read_role(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    (void)err;
    role_row *r = row;
    r->role = rd_role_parse((const char *)sqlite3_column_text(stmt, 0));
    r->prod = sqlite3_column_int(stmt, 1) ? 1 : 0;
    return RD_OK;
}

static rd_status not_member(const char *user, const char *project, rd_error *err)
{
    return rd_error_set(err, RD_E_NOT_FOUND, "user %s is not a member of project %s", user, project);
}

static rd_status sq_role_get(rd_store_tx *tx, const char *user, const char *project, rd_role *role,
                             int *prod_access, rd_error *err)
{
    int64_t uid = 0, pid = 0;
    role_row r;
    rd_status s = member_ids(tx, user, project, &uid, &pid, err);
    if (s == RD_OK)
        s = query_one(tx, "SELECT role, prod_access FROM memberships WHERE user_id = ?1 AND project_id = ?2",
                      ARGS(A_I(uid), A_I(pid)), "read a role", sizeof r, read_role, NULL, &r, err);
    if (s == RD_E_NOT_FOUND && uid && pid)
        return not_member(user, project, err);
    if (s == RD_OK) {
        *role = r.role;
        *prod_access = r.prod;
    }
    return s;
}

static rd_status sq_role_delete(rd_store_tx *tx, const char *user, const char *project, rd_error *err)
{
    int64_t uid = 0, pid = 0;
    int changes = 0;
    rd_status s = member_ids(tx, user, project, &uid, &pid, err);
    if (s == RD_OK)
        s = exec_sql(tx, "DELETE FROM memberships WHERE user_id = ?1 AND project_id = ?2", ARGS(A_I(uid), A_I(pid)),
                     "revoke a role", &changes, err);
    if (s == RD_OK && changes == 0)
        return not_member(user, project, err);
    return s;
}

/* ---- deployments ------------------------------------------------------------------------------------- */

typedef struct version_row {
    int64_t pid, version;
} version_row;

static rd_status read_version(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    (void)err;
    version_row *r = row;
    r->pid = sqlite3_column_int64(stmt, 0);
    r->version = sqlite3_column_int64(stmt, 1);
    return RD_OK;
}

static rd_status sq_deploy_insert(rd_store_tx *tx, const char *project, rd_env env, const char *created_by,
                                  int64_t now, const char *archive_path, const char *archive_sha256,
                                  int64_t *version, rd_error *err)
{
    version_row r;
    /* the counter, and never below what is recorded (a restored or hand-edited file) */
    rd_status s = query_one(tx,
                            "SELECT p.id, max(p.next_version,"
                            " coalesce((SELECT max(d.version) + 1 FROM deployments d WHERE d.project_id = p.id), 1))"
                            " FROM projects p WHERE p.name = ?1",
                            ARGS(A_T(project)), "allocate a version", sizeof r, read_version, NULL, &r, err);
    if (s == RD_E_NOT_FOUND)
        return rd_error_set(err, RD_E_NOT_FOUND, "project %s does not exist", project);
    if (s == RD_OK)
        s = exec_sql(tx, "UPDATE projects SET next_version = ?2 WHERE id = ?1", ARGS(A_I(r.pid), A_I(r.version + 1)),
                     "allocate a version", NULL, err);
    if (s == RD_OK)
        s = exec_sql(tx,
                     "INSERT INTO deployments (project_id, version, created_by, created_at, active, archive_path,"
                     " archive_sha256, environment) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)",
                     ARGS(A_I(r.pid), A_I(r.version), A_T(created_by), A_I(now), A_T(archive_path),
                          A_T(archive_sha256), A_T(env == RD_ENV_NONE ? NULL : rd_env_name(env))),
                     "record a deployment", NULL, err);
    if (s == RD_OK)
        *version = r.version;
    return s;
}

static rd_status sq_deploy_activate(rd_store_tx *tx, const char *project, int64_t version, rd_error *err)
{
    int64_t pid = 0;
    int found = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_exists(tx, "SELECT 1 FROM deployments WHERE project_id = ?1 AND version = ?2",
                         ARGS(A_I(pid), A_I(version)), "activate a version", &found, err);
    if (s == RD_OK && !found)
        return rd_error_set(err, RD_E_NOT_FOUND, "project %s has no version %lld: see the list of deployments",
                            project, (long long)version);
    if (s == RD_OK)
        s = exec_sql(tx, "UPDATE deployments SET active = 0 WHERE project_id = ?1 AND active = 1", ARGS(A_I(pid)),
                     "activate a version", NULL, err);
    if (s == RD_OK)
        s = exec_sql(tx, "UPDATE deployments SET active = 1 WHERE project_id = ?1 AND version = ?2",
                     ARGS(A_I(pid), A_I(version)), "activate a version", NULL, err);
    return s;
}

#define DEPLOY_COLUMNS \
    "d.version, d.created_by, d.created_at, d.active, d.archive_path, d.archive_sha256, d.environment"

static rd_status read_deployment(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    rd_store_deployment *d = row;
    int o = 0;
    d->version = sqlite3_column_int64(stmt, 0);
    d->created_by = col_dup(stmt, 1, &o);
    d->created_at = sqlite3_column_int64(stmt, 2);
    d->active = sqlite3_column_int(stmt, 3);
    d->archive_path = col_dup(stmt, 4, &o);
    d->archive_sha256 = col_dup(stmt, 5, &o);
    d->environment = col_env(stmt, 6);
    return o ? oom(err) : RD_OK;
}

static void clear_deployment(void *row)
{
    rd_store_deployment_clear(row);
}

static rd_status sq_deploy_list(rd_store_tx *tx, const char *project, rd_store_deployment **out, size_t *n_out,
                                rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_rows(tx, "SELECT " DEPLOY_COLUMNS " FROM deployments d WHERE d.project_id = ?1 ORDER BY d.version DESC",
                       ARGS(A_I(pid)), "list deployments", sizeof **out, read_deployment, clear_deployment,
                       (void **)out, n_out, err);
    return s;
}

static rd_status sq_deploy_active(rd_store_tx *tx, const char *project, rd_store_deployment *out, rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_one(tx, "SELECT " DEPLOY_COLUMNS " FROM deployments d WHERE d.project_id = ?1 AND d.active = 1",
                      ARGS(A_I(pid)), "read the active deployment", sizeof *out, read_deployment, clear_deployment,
                      out, err);
    if (s == RD_E_NOT_FOUND && pid)
        return rd_error_set(err, RD_E_NOT_FOUND, "project %s has no active deployment: deploy it first", project);
    return s;
}

/* ---- variables --------------------------------------------------------------------------------------- */

static rd_status no_variable(const char *project, rd_env env, const char *name, rd_error *err)
{
    return rd_error_set(err, RD_E_NOT_FOUND, "project %s has no %s variable %s", project, rd_env_name(env), name);
}

static rd_status sq_variable_put(rd_store_tx *tx, const char *project, rd_env env, const char *name,
                                 uint32_t key_id, const unsigned char *blob, size_t blob_len,
                                 const char *updated_by, int64_t now, rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = exec_sql(tx,
                     "INSERT INTO variables (project_id, environment, name, key_id, blob, updated_by, updated_at)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                     " ON CONFLICT (project_id, environment, name) DO UPDATE SET key_id = excluded.key_id,"
                     " blob = excluded.blob, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                     ARGS(A_I(pid), A_T(rd_env_name(env)), A_T(name), A_I(key_id), A_B(blob, blob_len),
                          A_T(updated_by), A_I(now)),
                     "set a variable", NULL, err);
    return s;
}

static rd_status sq_variable_get(rd_store_tx *tx, const char *project, rd_env env, const char *name,
                                 unsigned char **blob, size_t *blob_len, rd_error *err)
{
    int64_t pid = 0;
    blob_row r;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_one(tx, "SELECT blob FROM variables WHERE project_id = ?1 AND environment = ?2 AND name = ?3",
                      ARGS(A_I(pid), A_T(rd_env_name(env)), A_T(name)), "read a variable", sizeof r, read_blob, NULL,
                      &r, err);
    if (s == RD_E_NOT_FOUND && pid)
        return no_variable(project, env, name, err);
    if (s == RD_OK) {
        *blob = r.b;
        *blob_len = r.n;
    }
    return s;
}

static rd_status sq_variable_delete(rd_store_tx *tx, const char *project, rd_env env, const char *name,
                                    rd_error *err)
{
    int64_t pid = 0;
    int changes = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = exec_sql(tx, "DELETE FROM variables WHERE project_id = ?1 AND environment = ?2 AND name = ?3",
                     ARGS(A_I(pid), A_T(rd_env_name(env)), A_T(name)), "delete a variable", &changes, err);
    if (s == RD_OK && changes == 0)
        return no_variable(project, env, name, err);
    return s;
}

static rd_status read_variable(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    rd_store_variable *v = row;
    int o = 0;
    v->name = col_dup(stmt, 0, &o);
    v->environment = col_env(stmt, 1);
    v->key_id = (uint32_t)sqlite3_column_int64(stmt, 2);
    v->updated_by = col_dup(stmt, 3, &o);
    v->updated_at = sqlite3_column_int64(stmt, 4);
    return o ? oom(err) : RD_OK;
}

static void clear_variable(void *row)
{
    rd_store_variable *v = row;
    free(v->name);
    free(v->updated_by);
}

static rd_status sq_variable_list(rd_store_tx *tx, const char *project, rd_env env, rd_store_variable **out,
                                  size_t *n_out, rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_rows(tx,
                       "SELECT name, environment, key_id, updated_by, updated_at FROM variables"
                       " WHERE project_id = ?1 AND (?2 IS NULL OR environment = ?2) ORDER BY environment, name",
                       ARGS(A_I(pid), A_T(env == RD_ENV_NONE ? NULL : rd_env_name(env))), "list variables",
                       sizeof **out, read_variable, clear_variable, (void **)out, n_out, err);
    return s;
}

#define SEALED_COLUMNS "p.name, v.environment, v.name, v.key_id, v.blob"

static rd_status read_sealed(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    rd_store_sealed *v = row;
    int o = 0;
    v->project = col_dup(stmt, 0, &o);
    v->environment = col_env(stmt, 1);
    v->name = col_dup(stmt, 2, &o);
    v->key_id = (uint32_t)sqlite3_column_int64(stmt, 3);
    v->blob = col_blob(stmt, 4, &v->blob_len);
    return o || !v->blob ? oom(err) : RD_OK;
}

static void clear_sealed(void *row)
{
    rd_store_sealed *v = row;
    free(v->project);
    free(v->name);
    free(v->blob);
}

static rd_status sq_variable_values(rd_store_tx *tx, const char *project, rd_env env, int with_shared,
                                    rd_store_sealed **out, size_t *n_out, rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_rows(tx,
                       "SELECT " SEALED_COLUMNS " FROM variables v JOIN projects p ON p.id = v.project_id"
                       " WHERE v.project_id = ?1 AND v.environment IN (?2, ?3) ORDER BY v.environment, v.name",
                       ARGS(A_I(pid), A_T(rd_env_name(env)), A_T(with_shared ? "shared" : rd_env_name(env))),
                       "read variables", sizeof **out, read_sealed, clear_sealed, (void **)out, n_out, err);
    return s;
}

static rd_status sq_variable_sealed_other(rd_store_tx *tx, uint32_t key_id, rd_store_sealed **out, size_t *n_out,
                                          rd_error *err)
{
    return query_rows(tx,
                      "SELECT " SEALED_COLUMNS " FROM variables v JOIN projects p ON p.id = v.project_id"
                      " WHERE v.key_id <> ?1 ORDER BY p.name, v.environment, v.name",
                      ARGS(A_I(key_id)), "read variables to re-encrypt", sizeof **out, read_sealed, clear_sealed,
                      (void **)out, n_out, err);
}

static rd_status sq_variable_reseal(rd_store_tx *tx, const rd_store_sealed *v, uint32_t key_id,
                                    const unsigned char *blob, size_t blob_len, rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, v->project, &pid, err);
    if (s == RD_OK)
        s = exec_sql(tx,
                     "UPDATE variables SET key_id = ?4, blob = ?5"
                     " WHERE project_id = ?1 AND environment = ?2 AND name = ?3",
                     ARGS(A_I(pid), A_T(rd_env_name(v->environment)), A_T(v->name), A_I(key_id),
                          A_B(blob, blob_len)),
                     "re-encrypt a variable", NULL, err);
    return s;
}

/* ---- audit ------------------------------------------------------------------------------------------- */

static rd_status sq_audit_insert(rd_store_tx *tx, int64_t at, const char *actor, const char *action,
                                 const char *project, const char *detail_json, rd_error *err)
{
    return exec_sql(tx, "INSERT INTO audit (at, actor, action, project, detail_json) VALUES (?1, ?2, ?3, ?4, ?5)",
                    ARGS(A_I(at), A_T(actor), A_T(action), A_T(project), A_T(detail_json)), "write the audit log",
                    NULL, err);
}

static rd_status read_audit(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    rd_store_audit_entry *e = row;
    int o = 0;
    e->id = sqlite3_column_int64(stmt, 0);
    e->at = sqlite3_column_int64(stmt, 1);
    e->actor = col_dup(stmt, 2, &o);
    e->action = col_dup(stmt, 3, &o);
    e->project = col_dup(stmt, 4, &o);
    e->detail_json = col_dup(stmt, 5, &o);
    return o ? oom(err) : RD_OK;
}

static void clear_audit(void *row)
{
    rd_store_audit_entry *e = row;
    free(e->actor);
    free(e->action);
    free(e->project);
    free(e->detail_json);
}

static rd_status sq_audit_list(rd_store_tx *tx, const char *project, size_t limit, rd_store_audit_entry **out,
                               size_t *n_out, rd_error *err)
{
    return query_rows(tx,
                      "SELECT id, at, actor, action, project, detail_json FROM audit"
                      " WHERE ?1 IS NULL OR project = ?1 ORDER BY id DESC LIMIT ?2",
                      ARGS(A_T(project), A_I(limit)), "read the audit log", sizeof **out, read_audit, clear_audit,
                      (void **)out, n_out, err);
}

/* ---- runs, log lines, schedule state, snapshots ------------------------------------------------------ */

static rd_status no_run(int64_t id, rd_error *err)
{
    return rd_error_set(err, RD_E_NOT_FOUND, "run %lld does not exist: see the project's list of runs",
                        (long long)id);
}

static rd_status sq_run_insert(rd_store_tx *tx, const rd_store_run *r, int64_t *id, rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, r->project, &pid, err);
    if (s == RD_OK)
        s = exec_sql(tx,
                     "INSERT INTO runs (project_id, source, table_name, version, \"trigger\", triggered_by, state,"
                     " attempts, queued_at, started_at, finished_at, \"rows\", bytes, files, probe_s, unload_s,"
                     " download_s, commit_s, cleanup_s, total_s, error)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,"
                     " ?20, ?21)",
                     ARGS(A_I(pid), A_T(r->source), A_T(r->table_name), A_I(r->version),
                          A_T(rd_run_trigger_name(r->trigger)), A_T(r->triggered_by), A_T(rd_run_state_name(r->state)),
                          A_I(r->attempts), A_I(r->queued_at), A_I(r->started_at), A_I(r->finished_at),
                          A_I(r->rows), A_I(r->bytes), A_I(r->files), A_D(r->probe_s), A_D(r->unload_s),
                          A_D(r->download_s), A_D(r->commit_s), A_D(r->cleanup_s), A_D(r->total_s), A_T(r->error)),
                     "record a run", NULL, err);
    if (s == RD_OK)
        *id = (int64_t)sqlite3_last_insert_rowid(tx->db);
    return s;
}

static rd_status sq_run_update(rd_store_tx *tx, const rd_store_run *r, rd_error *err)
{
    int changes = 0;
    rd_status s = exec_sql(tx,
                           "UPDATE runs SET state = ?2, attempts = ?3, started_at = ?4, finished_at = ?5,"
                           " \"rows\" = ?6, bytes = ?7, files = ?8, probe_s = ?9, unload_s = ?10, download_s = ?11,"
                           " commit_s = ?12, cleanup_s = ?13, total_s = ?14, error = ?15 WHERE id = ?1",
                           ARGS(A_I(r->id), A_T(rd_run_state_name(r->state)), A_I(r->attempts), A_I(r->started_at),
                                A_I(r->finished_at), A_I(r->rows), A_I(r->bytes), A_I(r->files), A_D(r->probe_s),
                                A_D(r->unload_s), A_D(r->download_s), A_D(r->commit_s), A_D(r->cleanup_s),
                                A_D(r->total_s), A_T(r->error)),
                           "update a run", &changes, err);
    if (s == RD_OK && changes == 0)
        return no_run(r->id, err);
    return s;
}

#define RUN_COLUMNS                                                                                          \
    "r.id, p.name, r.source, r.table_name, r.version, r.\"trigger\", r.triggered_by, r.state, r.attempts,"   \
    " r.queued_at, r.started_at, r.finished_at, r.\"rows\", r.bytes, r.files, r.probe_s, r.unload_s,"        \
    " r.download_s, r.commit_s, r.cleanup_s, r.total_s, r.error"
#define RUN_FROM " FROM runs r JOIN projects p ON p.id = r.project_id"

static rd_run_trigger col_trigger(sqlite3_stmt *stmt, int i)
{
    const char *t = (const char *)sqlite3_column_text(stmt, i);
    for (int k = RD_TRIGGER_SCHEDULE; k <= RD_TRIGGER_CATCHUP; k++)
        if (t && strcmp(t, rd_run_trigger_name((rd_run_trigger)k)) == 0)
            return (rd_run_trigger)k;
    return RD_TRIGGER_SCHEDULE;
}

static rd_status read_run(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    rd_store_run *r = row;
    int o = 0;
    r->id = sqlite3_column_int64(stmt, 0);
    r->project = col_dup(stmt, 1, &o);
    r->source = col_dup(stmt, 2, &o);
    r->table_name = col_dup(stmt, 3, &o);
    r->version = sqlite3_column_int64(stmt, 4);
    r->trigger = col_trigger(stmt, 5);
    r->triggered_by = col_dup(stmt, 6, &o);
    rd_run_state_parse((const char *)sqlite3_column_text(stmt, 7), &r->state);
    r->attempts = sqlite3_column_int(stmt, 8);
    r->queued_at = sqlite3_column_int64(stmt, 9);
    r->started_at = sqlite3_column_int64(stmt, 10);
    r->finished_at = sqlite3_column_int64(stmt, 11);
    r->rows = (uint64_t)sqlite3_column_int64(stmt, 12);
    r->bytes = (uint64_t)sqlite3_column_int64(stmt, 13);
    r->files = (uint64_t)sqlite3_column_int64(stmt, 14);
    r->probe_s = sqlite3_column_double(stmt, 15);
    r->unload_s = sqlite3_column_double(stmt, 16);
    r->download_s = sqlite3_column_double(stmt, 17);
    r->commit_s = sqlite3_column_double(stmt, 18);
    r->cleanup_s = sqlite3_column_double(stmt, 19);
    r->total_s = sqlite3_column_double(stmt, 20);
    r->error = col_dup(stmt, 21, &o);
    return o || !r->project || !r->source || !r->table_name || !r->triggered_by ? oom(err) : RD_OK;
}

static void clear_run(void *row)
{
    rd_store_run_clear(row);
}

static rd_status sq_run_get(rd_store_tx *tx, int64_t id, rd_store_run *out, rd_error *err)
{
    rd_status s = query_one(tx, "SELECT " RUN_COLUMNS RUN_FROM " WHERE r.id = ?1", ARGS(A_I(id)), "read a run",
                            sizeof *out, read_run, clear_run, out, err);
    return s == RD_E_NOT_FOUND ? no_run(id, err) : s;
}

static rd_status sq_run_list(rd_store_tx *tx, const char *project, const char *source, int64_t since_ms,
                             size_t limit, rd_store_run **out, size_t *n_out, rd_error *err)
{
    /* one statement per case, so each walks its index newest first (runs_project, runs_source) or, with a
     * since, sorts only the runs queued since (runs_queued) */
    static const char *const sql[2][2] = {
        { "SELECT " RUN_COLUMNS RUN_FROM " WHERE r.project_id = ?1 AND ?2 IS NULL AND ?3 <= 0"
          " ORDER BY r.id DESC LIMIT ?4",
          "SELECT " RUN_COLUMNS RUN_FROM " WHERE r.project_id = ?1 AND ?2 IS NULL AND r.queued_at >= ?3"
          " ORDER BY r.id DESC LIMIT ?4" },
        { "SELECT " RUN_COLUMNS RUN_FROM " WHERE r.project_id = ?1 AND r.source = ?2 AND ?3 <= 0"
          " ORDER BY r.id DESC LIMIT ?4",
          "SELECT " RUN_COLUMNS RUN_FROM " WHERE r.project_id = ?1 AND r.source = ?2 AND r.queued_at >= ?3"
          " ORDER BY r.id DESC LIMIT ?4" },
    };
    int64_t pid = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_rows(tx, sql[source != NULL][since_ms > 0], ARGS(A_I(pid), A_T(source), A_I(since_ms), A_I(limit)),
                       "list runs", sizeof **out, read_run, clear_run, (void **)out, n_out, err);
    return s;
}

static rd_status sq_run_latest(rd_store_tx *tx, const char *project, rd_store_run **out, size_t *n_out,
                               rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, project, &pid, err);
    /* the project's sources one index step each (src), then each one's newest run not skipped */
    if (s == RD_OK)
        s = query_rows(tx,
                       "WITH RECURSIVE src(name) AS (SELECT min(source) FROM runs WHERE project_id = ?1"
                       " UNION ALL SELECT (SELECT min(source) FROM runs WHERE project_id = ?1 AND source > src.name)"
                       " FROM src WHERE src.name IS NOT NULL)"
                       " SELECT " RUN_COLUMNS " FROM src JOIN runs r ON r.id = (SELECT r2.id FROM runs r2"
                       " WHERE r2.project_id = ?1 AND r2.source = src.name AND r2.state <> 'skipped'"
                       " ORDER BY r2.id DESC LIMIT 1) JOIN projects p ON p.id = r.project_id ORDER BY r.source",
                       ARGS(A_I(pid)), "read the latest runs", sizeof **out, read_run, clear_run, (void **)out, n_out,
                       err);
    return s;
}

static rd_status sq_run_abandon(rd_store_tx *tx, const char *error, int64_t now_ms, size_t *count, rd_error *err)
{
    int changes = 0;
    rd_status s = exec_sql(tx,
                           "UPDATE runs SET state = 'cancelled', error = ?1, finished_at = ?2"
                           " WHERE state IN ('queued', 'running')",
                           ARGS(A_T(error), A_I(now_ms)), "cancel the runs left over", &changes, err);
    if (s == RD_OK)
        *count = (size_t)changes;
    return s;
}

static rd_status sq_run_prune(rd_store_tx *tx, int64_t before_ms, size_t max_runs, size_t *count, rd_error *err)
{
    int changes = 0;
    rd_status s = exec_sql(tx,
                           "DELETE FROM runs WHERE id IN (SELECT r.id FROM runs r"
                           " WHERE r.state IN ('success', 'failed', 'skipped', 'cancelled') AND r.finished_at < ?1"
                           " AND (r.state = 'skipped' OR EXISTS (SELECT 1 FROM runs n WHERE n.project_id = r.project_id"
                           " AND n.source = r.source AND n.id > r.id AND n.state IN ('success', 'failed', 'cancelled')))"
                           " ORDER BY r.id LIMIT ?2)",
                           ARGS(A_I(before_ms), A_I(max_runs)), "remove old runs", &changes, err);
    if (s == RD_OK)
        *count = (size_t)changes;
    return s;
}

static rd_status run_exists(rd_store_tx *tx, int64_t id, rd_error *err)
{
    int found = 0;
    rd_status s = query_exists(tx, "SELECT 1 FROM runs WHERE id = ?1", ARGS(A_I(id)), "read a run", &found, err);
    return s == RD_OK && !found ? no_run(id, err) : s;
}

static rd_status sq_log_append(rd_store_tx *tx, int64_t run_id, int64_t at_ms, const char *line, int64_t max_lines,
                               const char *truncated_line, rd_error *err)
{
    rd_status s = run_exists(tx, run_id, err);
    if (s == RD_OK)
        s = exec_sql(tx,
                     "INSERT INTO run_logs (run_id, seq, at_ms, line)"
                     " SELECT ?1, n + 1, ?2, CASE WHEN n >= ?4 THEN ?5 ELSE ?3 END"
                     " FROM (SELECT coalesce(max(seq), 0) AS n FROM run_logs WHERE run_id = ?1) WHERE n <= ?4",
                     ARGS(A_I(run_id), A_I(at_ms), A_T(line), A_I(max_lines), A_T(truncated_line)),
                     "append to a run's log", NULL, err);
    return s;
}

static rd_status read_log_line(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    rd_store_log_line *l = row;
    int o = 0;
    l->seq = sqlite3_column_int64(stmt, 0);
    l->at_ms = sqlite3_column_int64(stmt, 1);
    l->line = col_dup(stmt, 2, &o);
    return o || !l->line ? oom(err) : RD_OK;
}

static void clear_log_line(void *row)
{
    rd_store_log_line *l = row;
    free(l->line);
    l->line = NULL;
}

static rd_status sq_log_list(rd_store_tx *tx, int64_t run_id, int64_t after_seq, size_t limit,
                             rd_store_log_line **out, size_t *n_out, rd_error *err)
{
    rd_status s = run_exists(tx, run_id, err);
    if (s == RD_OK)
        s = query_rows(tx,
                       "SELECT seq, at_ms, line FROM run_logs WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                       ARGS(A_I(run_id), A_I(after_seq), A_I(limit)), "read a run's log", sizeof **out,
                       read_log_line, clear_log_line, (void **)out, n_out, err);
    return s;
}

static rd_status sq_schedule_get(rd_store_tx *tx, const char *project, const char *source, int64_t *last_slot_ms,
                                 rd_error *err)
{
    int64_t pid = 0, v = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_int(tx, "SELECT last_slot_ms FROM schedule_state WHERE project_id = ?1 AND source = ?2",
                      ARGS(A_I(pid), A_T(source)), "read a schedule's state", &v, err);
    if (s == RD_E_NOT_FOUND && pid)
        return rd_error_set(err, RD_E_NOT_FOUND, "no schedule slot recorded for source %s of project %s", source,
                            project);
    if (s == RD_OK)
        *last_slot_ms = v;
    return s;
}

static rd_status sq_schedule_put(rd_store_tx *tx, const char *project, const char *source, int64_t last_slot_ms,
                                 rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = exec_sql(tx,
                     "INSERT INTO schedule_state (project_id, source, last_slot_ms) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (project_id, source) DO UPDATE SET last_slot_ms = excluded.last_slot_ms",
                     ARGS(A_I(pid), A_T(source), A_I(last_slot_ms)), "record a schedule's state", NULL, err);
    return s;
}

static rd_status sq_snapshot_insert(rd_store_tx *tx, const rd_store_snapshot *sn, int64_t *id, rd_error *err)
{
    int64_t pid = 0, next = 0;
    rd_status s = project_id(tx, sn->project, &pid, err);
    if (s == RD_OK)
        s = query_int(tx, "SELECT coalesce(max(id), 0) + 1 FROM snapshots WHERE project_id = ?1", ARGS(A_I(pid)),
                      "allocate a snapshot id", &next, err);
    if (s == RD_OK)
        s = exec_sql(tx,
                     "INSERT INTO snapshots (project_id, id, path, sha256, size, created_at_ms, run_id, tables_json)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                     ARGS(A_I(pid), A_I(next), A_T(sn->path), A_T(sn->sha256), A_I(sn->size), A_I(sn->created_at_ms),
                          A_I(sn->run_id), A_T(sn->tables_json)),
                     "record a snapshot", NULL, err);
    if (s == RD_OK)
        *id = next;
    return s;
}

static rd_status sq_snapshot_delete(rd_store_tx *tx, const char *project, int64_t id, rd_error *err)
{
    int64_t pid = 0, current = 0;
    int changes = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_int(tx, "SELECT coalesce(max(id), 0) FROM snapshots WHERE project_id = ?1", ARGS(A_I(pid)),
                      "read the current snapshot", &current, err);
    if (s == RD_OK && current > 0 && id == current)
        return rd_error_set(err, RD_E_USAGE,
                            "snapshot %lld is the current one of project %s: publish a newer one before removing it",
                            (long long)id, project);
    if (s == RD_OK)
        s = exec_sql(tx, "DELETE FROM snapshots WHERE project_id = ?1 AND id = ?2", ARGS(A_I(pid), A_I(id)),
                     "remove a snapshot", &changes, err);
    if (s == RD_OK && changes == 0)
        return rd_error_set(err, RD_E_NOT_FOUND, "project %s has no snapshot %lld", project, (long long)id);
    return s;
}

static rd_status read_snapshot(sqlite3_stmt *stmt, void *row, rd_error *err)
{
    rd_store_snapshot *sn = row;
    int o = 0;
    sn->id = sqlite3_column_int64(stmt, 0);
    sn->project = col_dup(stmt, 1, &o);
    sn->path = col_dup(stmt, 2, &o);
    sn->sha256 = col_dup(stmt, 3, &o);
    sn->size = (uint64_t)sqlite3_column_int64(stmt, 4);
    sn->created_at_ms = sqlite3_column_int64(stmt, 5);
    sn->run_id = sqlite3_column_int64(stmt, 6);
    sn->tables_json = col_dup(stmt, 7, &o);
    return o || !sn->project || !sn->path || !sn->sha256 || !sn->tables_json ? oom(err) : RD_OK;
}

static void clear_snapshot(void *row)
{
    rd_store_snapshot_clear(row);
}

static rd_status sq_snapshot_list(rd_store_tx *tx, const char *project, size_t limit, rd_store_snapshot **out,
                                  size_t *n_out, rd_error *err)
{
    int64_t pid = 0;
    rd_status s = project_id(tx, project, &pid, err);
    if (s == RD_OK)
        s = query_rows(tx,
                       "SELECT s.id, p.name, s.path, s.sha256, s.size, s.created_at_ms, s.run_id, s.tables_json"
                       " FROM snapshots s JOIN projects p ON p.id = s.project_id WHERE s.project_id = ?1"
                       " ORDER BY s.id DESC LIMIT ?2",
                       ARGS(A_I(pid), A_I(limit)), "list snapshots", sizeof **out, read_snapshot, clear_snapshot,
                       (void **)out, n_out, err);
    return s;
}

/* ---- opening ----------------------------------------------------------------------------------------- */

static const rd_store_backend sqlite_backend = {
    .name = "sqlite",
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .close = sq_close,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .user_insert = sq_user_insert,
    .user_delete = sq_user_delete,
    .user_get = sq_user_get,
    .user_list = sq_user_list,
    .user_count = sq_user_count,
    .token_insert = sq_token_insert,
    .token_revoke = sq_token_revoke,
    .token_user = sq_token_user,
    .token_live = sq_token_live,
    .project_insert = sq_project_insert,
    .project_get = sq_project_get,
    .project_list = sq_project_list,
    .role_set = sq_role_set,
    .role_get = sq_role_get,
    .role_delete = sq_role_delete,
    .deploy_insert = sq_deploy_insert,
    .deploy_activate = sq_deploy_activate,
    .deploy_list = sq_deploy_list,
    .deploy_active = sq_deploy_active,
    .variable_put = sq_variable_put,
    .variable_get = sq_variable_get,
    .variable_delete = sq_variable_delete,
    .variable_list = sq_variable_list,
    .variable_values = sq_variable_values,
    .variable_sealed_other = sq_variable_sealed_other,
    .variable_reseal = sq_variable_reseal,
    .audit_insert = sq_audit_insert,
    .audit_list = sq_audit_list,
    .run_insert = sq_run_insert,
    .run_update = sq_run_update,
    .run_get = sq_run_get,
    .run_list = sq_run_list,
    .run_latest = sq_run_latest,
    .run_abandon = sq_run_abandon,
    .log_append = sq_log_append,
    .log_list = sq_log_list,
    .schedule_get = sq_schedule_get,
    .schedule_put = sq_schedule_put,
    .snapshot_insert = sq_snapshot_insert,
    .snapshot_list = sq_snapshot_list,
    .run_prune = sq_run_prune,
    .snapshot_delete = sq_snapshot_delete,
};

/* Creates the file 0600 when missing (so the -wal and -shm SQLite makes beside it are 0600 too) and refuses
 * one that group or others may access. */
static rd_status prepare_file(const char *path, rd_error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return rd_error_set(err, RD_E_IO, "cannot open store %s: %s", path, strerror(errno));
    struct stat sb;
    rd_status s = RD_OK;
    if (fstat(fd, &sb) != 0)
        s = rd_error_set(err, RD_E_IO, "cannot stat store %s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        s = rd_error_set(err, RD_E_CONFIG, "store %s is not a regular file", path);
    else if (sb.st_mode & 077)
        s = rd_error_set(err, RD_E_CONFIG, "store %s may be accessed by others (mode %04o): run `chmod 600 %s`",
                         path, (unsigned)(sb.st_mode & 07777), path);
    close(fd);
    return s;
}

/* WAL (persistent in the file), then the migrations not yet applied, in one write transaction. */
static rd_status migrate(sq_be *be, sqlite3 *db, rd_error *err)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(stmt, 0);
        if (!mode || strcmp(mode, "wal") != 0) {
            sqlite3_finalize(stmt);
            return rd_error_set(err, RD_E_IO, "store %s: cannot use WAL mode (the file system may not support it)",
                                be->path);
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK)
        return sq_fail(be, db, rc, "switch to WAL mode", err);

    pthread_mutex_lock(&be->write_mu);
    rd_status s = RD_OK;
    rc = sqlite3_exec(db,
                      "BEGIN IMMEDIATE;"
                      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                      " applied_at INTEGER NOT NULL);",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        s = sq_fail(be, db, rc, "read the schema version", err);
    int current = 0;
    if (s == RD_OK) {
        rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &stmt, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            current = sqlite3_column_int(stmt, 0);
            rc = SQLITE_OK;
        }
        sqlite3_finalize(stmt);
        if (rc != SQLITE_OK)
            s = sq_fail(be, db, rc, "read the schema version", err);
    }
    if (s == RD_OK && current > MIGRATIONS)
        s = rd_error_set(err, RD_E_CONFIG,
                         "store %s has schema version %d, newer than this redduck knows (%d): run a newer redduck",
                         be->path, current, MIGRATIONS);
    for (int v = current + 1; s == RD_OK && v <= MIGRATIONS; v++) {
        rc = sqlite3_exec(db, migrations[v - 1], NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_prepare_v2(db, "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)", -1,
                                    &stmt, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int(stmt, 1, v);
            sqlite3_bind_int64(stmt, 2, (sqlite3_int64)time(NULL));
            rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
            sqlite3_finalize(stmt);
        }
        if (rc != SQLITE_OK) {
            char op[64];
            snprintf(op, sizeof op, "apply migration %d", v);
            s = sq_fail(be, db, rc, op, err);
        }
    }
    if (s == RD_OK && (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
        s = sq_fail(be, db, rc, "commit the migrations", err);
    if (s != RD_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&be->write_mu);
    return s;
}

rd_status rd_store_open_sqlite(const char *data_dir, rd_keyring *keyring, const rd_store_options *opts,
                               rd_store **out, rd_error *err)
{
    if (!data_dir || !*data_dir)
        return rd_error_set(err, RD_E_USAGE, "no data dir given: pass --data-dir");
    rd_status s = rd_mkdirs(data_dir, 0700, err);
    if (s != RD_OK)
        return s;
    sq_be *be = calloc(1, sizeof *be);
    size_t plen = strlen(data_dir) + sizeof "/" RD_STORE_FILE;
    if (!be || !(be->path = malloc(plen))) {
        free(be);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory opening the store");
    }
    snprintf(be->path, plen, "%s/%s", data_dir, RD_STORE_FILE);
    be->busy_ms = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
    be->max = opts && opts->max_connections > 0 ? (size_t)opts->max_connections : 8;
    pthread_mutex_init(&be->mu, NULL);
    pthread_cond_init(&be->cv, NULL);
    pthread_mutex_init(&be->write_mu, NULL);
    be->idle = calloc(be->max, sizeof *be->idle);
    if (!be->idle) {
        sq_close(be);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory opening the store");
    }
    s = prepare_file(be->path, err);
    sqlite3 *db = NULL;
    if (s == RD_OK)
        s = conn_acquire(be, &db, err);
    if (s == RD_OK) {
        s = migrate(be, db, err);
        conn_release(be, db);
    }
    if (s != RD_OK) {
        sq_close(be);
        return s;
    }
    return rd_store_new(&sqlite_backend, be, keyring, out, err);
}
