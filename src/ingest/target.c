/* target.c — the DuckDB file's lock and configuration, private file modes, the incremental maximum and the
 * run history (redduck/target.h), the leftovers ledger and its sweep, and the staging garbage collector
 * (see target.h and redduck/gc.h). */
#include "ingest/target.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "auth/session_internal.h"
#include "core/timeutil.h"
#include "ingest/plan.h"
#include "ingest/sink.h"
#include "redduck/gc.h"
#include "services/s3.h"

/* ---- private modes through the umask ------------------------------------------------------------------
 * DuckDB creates the database file and, at each first write after a checkpoint, its WAL with mode 0666
 * less the umask, and rejects a pre-created empty file; so the only way to have them born private (no
 * chmod window) is the umask, for as long as the database is open. The umask is process-wide: it is
 * counted here so that concurrent targets in one process restore it only when the last one closes. */

static pthread_mutex_t g_mask_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_mask_users;
static mode_t g_mask_saved;

static void mask_acquire(unsigned bits)
{
    pthread_mutex_lock(&g_mask_mu);
    mode_t cur = umask(0);
    if (g_mask_users++ == 0)
        g_mask_saved = cur;
    umask(cur | (mode_t)bits);
    pthread_mutex_unlock(&g_mask_mu);
}

static void mask_release(void)
{
    pthread_mutex_lock(&g_mask_mu);
    if (g_mask_users > 0 && --g_mask_users == 0)
        umask(g_mask_saved);
    pthread_mutex_unlock(&g_mask_mu);
}

/* ---- the lock ------------------------------------------------------------------------------------------ */

/* From DuckDB's "... Conflicting lock is held in /usr/bin/prog (PID 123) by user ...": the program and PID. */
static int lock_holder(const char *msg, char *prog, size_t len, long *pid)
{
    static const char held[] = "Conflicting lock is held in ";
    const char *p = strstr(msg, held);
    if (!p)
        return 0;
    p += sizeof held - 1;
    const char *q = strstr(p, " (PID ");
    *pid = q ? strtol(q + 6, NULL, 10) : 0;
    size_t n = q ? (size_t)(q - p) : strcspn(p, " ");
    snprintf(prog, len, "%.*s", (int)(n < len ? n : len - 1), p);
    return 1;
}

struct rd_target {
    duckdb_database db;            /* open for writing: this process holds the file's lock */
    unsigned mask;                 /* permission bits withheld from files created while open (see above) */
    char *path;
    char *memory;
};

void rd_target_configure(duckdb_config cfg, int threads, const char *memory, const char *temp_dir)
{
    if (threads >= 0) {
        char n[16];
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        snprintf(n, sizeof n, "%ld", threads > 0 ? (long)threads : ncpu < 1 ? 1 : ncpu > 8 ? 8 : ncpu);
        duckdb_set_config(cfg, "threads", n);
    }
    duckdb_set_config(cfg, "memory_limit", memory ? memory : RD_TARGET_DEFAULT_MEMORY);
    duckdb_set_config(cfg, "preserve_insertion_order", "false");
    if (temp_dir)
        duckdb_set_config(cfg, "temp_directory", temp_dir);
}

duckdb_database rd_target_database(rd_target *t)
{
    return t->db;
}

const char *rd_target_memory(const rd_target *t)
{
    return t->memory;
}

const char *rd_target_path(const rd_target *t)
{
    return t->path;
}

rd_status rd_target_open(const rd_target_options *o, rd_target **out, rd_error *err)
{
    rd_target *t = calloc(1, sizeof *t);
    if (t) {
        t->path = strdup(o->path);
        t->memory = strdup(o->memory ? o->memory : RD_TARGET_DEFAULT_MEMORY);
    }
    if (!t || !t->path || !t->memory) {
        if (t) {
            free(t->path);
            free(t->memory);
        }
        free(t);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    duckdb_config cfg;
    duckdb_create_config(&cfg);
    rd_target_configure(cfg, o->threads, o->memory, NULL);
    struct stat sb;
    unsigned mask = 077;
    if (stat(o->path, &sb) == 0)
        mask = 077u & ~(unsigned)sb.st_mode; /* an existing file keeps its mode; its WAL gets no more */
    if (mask)
        mask_acquire(mask);
    long timeout = o->lock_timeout_s == 0 ? RD_TARGET_DEFAULT_LOCK_TIMEOUT : o->lock_timeout_s;
    double deadline = rd_monotonic_seconds() + (double)(timeout > 0 ? timeout : 0);
    int told = 0;
    for (;;) {
        duckdb_database db = NULL;
        char *msg = NULL;
        if (duckdb_open_ext(o->path, &db, cfg, &msg) == DuckDBSuccess) {
            duckdb_free(msg);
            duckdb_destroy_config(&cfg);
            t->db = db;
            t->mask = mask;
            *out = t;
            return RD_OK;
        }
        char prog[256] = "";
        long pid = 0;
        rd_status st = RD_OK;
        if (!lock_holder(msg ? msg : "", prog, sizeof prog, &pid)) {
            st = rd_error_set(err, RD_E_IO, "cannot open DuckDB file %s: %s", o->path, msg ? msg : "failed");
        } else if (o->cancel && *o->cancel) {
            st = rd_error_set(err, RD_E_CANCELLED, "interrupted while waiting for %s (in use by PID %ld)", o->path,
                              pid);
        } else if (rd_monotonic_seconds() >= deadline) {
            st = rd_error_set(err, RD_E_IO, "%s is in use by PID %ld (%s): close it or raise --lock-timeout "
                              "(waited %lds)", o->path, pid, prog, timeout > 0 ? timeout : 0);
        } else if (!told) {
            told = 1;
            if (o->waiting) {
                rd_buf m = RD_BUF_INIT;
                rd_buf_printf(&m, "%s is in use by PID %ld (%s): waiting up to %lds for it to be closed "
                              "(--lock-timeout)", o->path, pid, prog, timeout);
                o->waiting(o->waiting_ctx, rd_buf_cstr(&m));
                rd_buf_free(&m);
            }
        }
        duckdb_free(msg);
        if (st != RD_OK) {
            if (mask)
                mask_release();
            duckdb_destroy_config(&cfg);
            free(t->path);
            free(t->memory);
            free(t);
            return st;
        }
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

void rd_target_close(rd_target *t)
{
    if (!t)
        return;
    duckdb_close(&t->db);
    if (t->mask)
        mask_release();
    free(t->path);
    free(t->memory);
    free(t);
}

/* ---- what the project runner asks of the file ------------------------------------------------------------ */

rd_status rd_target_table_max(rd_target *t, const char *table, const char *column, char **text, rd_error *err)
{
    *text = NULL;
    duckdb_connection c;
    if (duckdb_connect(t->db, &c) != DuckDBSuccess)
        return rd_error_set(err, RD_E_IO, "cannot connect to %s", t->path);
    rd_buf sql = RD_BUF_INIT;
    int exists = 0;
    rd_status st = rd_sink_table_exists(c, table, &exists, err);
    if (st == RD_OK && exists) {
        rd_buf_puts(&sql, "SELECT CAST(max(");
        rd_plan_quote_ident(&sql, column);
        rd_buf_puts(&sql, ") AS VARCHAR) FROM ");
        rd_plan_quote_ident(&sql, table);
        if (rd_buf_failed(&sql)) {
            duckdb_disconnect(&c);
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
        }
        duckdb_result r;
        if (duckdb_query(c, rd_buf_cstr(&sql), &r) != DuckDBSuccess) {
            st = rd_error_set(err, RD_E_CONFIG, "incremental column \"%s\" of table %s: %s", column, table,
                              duckdb_result_error(&r));
        } else {
            char *v = duckdb_value_varchar(&r, 0, 0);
            if (v && *v && !(*text = strdup(v)))
                st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
            duckdb_free(v);
        }
        duckdb_destroy_result(&r);
    }
    rd_buf_free(&sql);
    duckdb_disconnect(&c);
    return st;
}

static const char runs_ddl[] =
    "CREATE TABLE IF NOT EXISTS _redduck_runs (source VARCHAR, table_name VARCHAR, started_at TIMESTAMPTZ, "
    "finished_at TIMESTAMPTZ, status VARCHAR, rows BIGINT, bytes BIGINT, files INTEGER, seconds DOUBLE, "
    "incremental BOOLEAN, watermark VARCHAR, error VARCHAR)";

rd_status rd_target_runs_init(rd_target *t, rd_error *err)
{
    duckdb_connection c;
    if (duckdb_connect(t->db, &c) != DuckDBSuccess)
        return rd_error_set(err, RD_E_IO, "cannot connect to %s", t->path);
    duckdb_result r;
    rd_status st = RD_OK;
    if (duckdb_query(c, runs_ddl, &r) != DuckDBSuccess)
        st = rd_error_set(err, RD_E_IO, "DuckDB: %s", duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    return st;
}

rd_status rd_target_record_run(rd_target *t, const rd_run_record *rec, rd_error *err)
{
    duckdb_connection c;
    if (duckdb_connect(t->db, &c) != DuckDBSuccess)
        return rd_error_set(err, RD_E_IO, "cannot connect to %s to record the run", t->path);
    duckdb_prepared_statement ps;
    rd_status st = RD_OK;
    if (duckdb_prepare(c, "INSERT INTO _redduck_runs VALUES ($1, $2, to_timestamp($3), now(), $4, $5, $6, $7, $8, "
                          "$9, $10, $11)", &ps) != DuckDBSuccess) {
        st = rd_error_set(err, RD_E_IO, "recording the run in _redduck_runs of %s: %s", t->path,
                          duckdb_prepare_error(ps));
    } else {
        duckdb_bind_varchar(ps, 1, rec->source);
        duckdb_bind_varchar(ps, 2, rec->table);
        duckdb_bind_int64(ps, 3, (int64_t)rec->started);
        duckdb_bind_varchar(ps, 4, rec->status == RD_OK ? "ok" : rec->status == RD_E_CANCELLED ? "cancelled" : "failed");
        duckdb_bind_int64(ps, 5, (int64_t)rec->rows);
        duckdb_bind_int64(ps, 6, (int64_t)rec->bytes);
        duckdb_bind_int32(ps, 7, (int32_t)rec->files);
        duckdb_bind_double(ps, 8, rec->seconds);
        duckdb_bind_boolean(ps, 9, rec->incremental);
        if (rec->watermark)
            duckdb_bind_varchar(ps, 10, rec->watermark);
        else
            duckdb_bind_null(ps, 10);
        if (rec->status != RD_OK && rec->error)
            duckdb_bind_varchar(ps, 11, rec->error);
        else
            duckdb_bind_null(ps, 11);
        duckdb_result r;
        if (duckdb_execute_prepared(ps, &r) != DuckDBSuccess)
            st = rd_error_set(err, RD_E_IO, "recording the run in _redduck_runs of %s: %s", t->path,
                              duckdb_result_error(&r));
        duckdb_destroy_result(&r);
    }
    duckdb_destroy_prepare(&ps);
    duckdb_disconnect(&c);
    return st;
}

/* ---- snapshots ---------------------------------------------------------------------------------------- */

static void quote_literal(rd_buf *out, const char *s)
{
    rd_buf_putc(out, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            rd_buf_putc(out, '\'');
        rd_buf_putc(out, *s);
    }
    rd_buf_putc(out, '\'');
}

static rd_status snap_query(duckdb_connection c, const char *sql, duckdb_result *r, const char *what,
                            const char *dest, rd_error *err)
{
    if (duckdb_query(c, sql, r) == DuckDBSuccess)
        return RD_OK;
    rd_status st = rd_error_set(err, RD_E_IO, "snapshot to %s: %s: %s", dest, what, duckdb_result_error(r));
    duckdb_destroy_result(r);
    return st;
}

static int by_table_name(const void *a, const void *b)
{
    return strcmp(((const rd_target_table_count *)a)->name, ((const rd_target_table_count *)b)->name);
}

void rd_target_table_counts_free(rd_target_table_count *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].name);
    free(v);
}

/* The tables of the attached copy `alias` but _redduck*, with their counts. */
static rd_status snap_count(duckdb_connection c, const char *alias, const char *dest, rd_target_table_count **out,
                            size_t *nout, rd_error *err)
{
    rd_buf sql = RD_BUF_INIT;
    rd_buf_puts(&sql, "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ");
    quote_literal(&sql, alias);
    rd_buf_puts(&sql, " AND lower(table_name) NOT LIKE '\\_redduck%' ESCAPE '\\' ORDER BY table_name");
    duckdb_result r;
    rd_status st = rd_buf_failed(&sql) ? rd_error_set(err, RD_E_INTERNAL, "out of memory")
                                       : snap_query(c, rd_buf_cstr(&sql), &r, "listing the tables", dest, err);
    rd_buf_free(&sql);
    if (st != RD_OK)
        return st;
    idx_t n = duckdb_row_count(&r);
    rd_target_table_count *v = calloc(n ? n : 1, sizeof *v);
    size_t k = 0;
    if (!v)
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    for (idx_t i = 0; st == RD_OK && i < n; i++) {
        char *schema = duckdb_value_varchar(&r, 0, i), *name = duckdb_value_varchar(&r, 1, i);
        rd_buf q = RD_BUF_INIT;
        rd_buf_puts(&q, "SELECT count(*) FROM ");
        rd_plan_quote_ident(&q, alias);
        rd_buf_putc(&q, '.');
        rd_plan_quote_ident(&q, schema ? schema : "main");
        rd_buf_putc(&q, '.');
        rd_plan_quote_ident(&q, name ? name : "");
        duckdb_result cr;
        if (!name || rd_buf_failed(&q)) {
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        } else if ((st = snap_query(c, rd_buf_cstr(&q), &cr, "counting rows", dest, err)) == RD_OK) {
            v[k].rows = (uint64_t)duckdb_value_int64(&cr, 0, 0);
            if (!(v[k].name = strdup(name)))
                st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
            else
                k++;
            duckdb_destroy_result(&cr);
        }
        rd_buf_free(&q);
        duckdb_free(schema);
        duckdb_free(name);
    }
    duckdb_destroy_result(&r);
    if (st != RD_OK) {
        rd_target_table_counts_free(v, k);
        return st;
    }
    qsort(v, k, sizeof *v, by_table_name);
    *out = v;
    *nout = k;
    return RD_OK;
}

rd_status rd_target_snapshot_counted(rd_target *t, const char *dest_path, rd_target_table_count **tables,
                                     size_t *ntables, rd_error *err)
{
    if (!dest_path || !*dest_path)
        return rd_error_set(err, RD_E_USAGE, "a snapshot needs a file name");
    for (const char *p = dest_path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return rd_error_set(err, RD_E_USAGE, "the snapshot's file name has a control character");
    struct stat sb;
    if (lstat(dest_path, &sb) == 0)
        return rd_error_set(err, RD_E_IO, "snapshot to %s: the file exists", dest_path);
    duckdb_connection c;
    if (duckdb_connect(t->db, &c) != DuckDBSuccess)
        return rd_error_set(err, RD_E_IO, "cannot connect to %s for a snapshot", t->path);
    /* the copy's catalog name: unique in the process (several snapshots may run at once) */
    static atomic_uint_fast64_t seq;
    char alias[64];
    snprintf(alias, sizeof alias, "rd_snapshot_%ld_%llu", (long)getpid(),
             (unsigned long long)atomic_fetch_add(&seq, 1));
    duckdb_result r;
    rd_buf sql = RD_BUF_INIT;
    rd_status st = snap_query(c, "SELECT current_database()", &r, "naming the database", dest_path, err);
    if (st == RD_OK) {
        char *db = duckdb_value_varchar(&r, 0, 0);
        duckdb_destroy_result(&r);
        rd_buf_puts(&sql, "ATTACH ");
        quote_literal(&sql, dest_path);
        rd_buf_puts(&sql, " AS ");
        rd_plan_quote_ident(&sql, alias);
        rd_buf_puts(&sql, "; COPY FROM DATABASE ");
        rd_plan_quote_ident(&sql, db ? db : "");
        rd_buf_puts(&sql, " TO ");
        rd_plan_quote_ident(&sql, alias);
        duckdb_free(db);
        if (!db || rd_buf_failed(&sql))
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    int attached = 0;
    if (st == RD_OK && (st = snap_query(c, rd_buf_cstr(&sql), &r, "copying the database", dest_path, err)) == RD_OK)
        duckdb_destroy_result(&r);
    {
        /* attached unless ATTACH itself failed: asked rather than guessed */
        rd_buf q = RD_BUF_INIT;
        rd_buf_puts(&q, "SELECT count(*) FROM duckdb_databases() WHERE database_name = ");
        quote_literal(&q, alias);
        duckdb_result ar;
        if (!rd_buf_failed(&q) && duckdb_query(c, rd_buf_cstr(&q), &ar) == DuckDBSuccess) {
            attached = duckdb_value_int64(&ar, 0, 0) > 0;
            duckdb_destroy_result(&ar);
        } else {
            duckdb_destroy_result(&ar);
        }
        rd_buf_free(&q);
    }
    rd_target_table_count *v = NULL;
    size_t nv = 0;
    if (st == RD_OK && tables)
        st = snap_count(c, alias, dest_path, &v, &nv, err);
    if (attached) {
        rd_buf d = RD_BUF_INIT;
        rd_buf_puts(&d, "DETACH ");
        rd_plan_quote_ident(&d, alias);
        rd_error derr;
        rd_error_clear(&derr);
        rd_status ds = rd_buf_failed(&d) ? RD_E_INTERNAL
                                         : snap_query(c, rd_buf_cstr(&d), &r, "detaching the copy", dest_path, &derr);
        if (ds == RD_OK)
            duckdb_destroy_result(&r);
        else if (st == RD_OK)
            st = ds, *err = derr;
        rd_buf_free(&d);
    }
    rd_buf_free(&sql);
    duckdb_disconnect(&c);
    if (st == RD_OK)
        chmod(dest_path, 0600); /* born so through the umask while t is open (see above); made sure of */
    if (st != RD_OK) {
        rd_target_table_counts_free(v, nv);
        unlink(dest_path);
        rd_buf w = RD_BUF_INIT;
        rd_buf_printf(&w, "%s.wal", dest_path);
        if (!rd_buf_failed(&w))
            unlink(rd_buf_cstr(&w));
        rd_buf_free(&w);
        return st;
    }
    if (tables) {
        *tables = v;
        *ntables = nv;
    }
    return RD_OK;
}

rd_status rd_target_snapshot(rd_target *t, const char *dest_path, rd_error *err)
{
    return rd_target_snapshot_counted(t, dest_path, NULL, NULL, err);
}

/* ---- the ledger -------------------------------------------------------------------------------------- */

static pthread_mutex_t g_ledger_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_token_once = PTHREAD_ONCE_INIT;
static char g_token[33];

static void make_token(void)
{
    unsigned char r[16] = { 0 };
    if (RAND_bytes(r, sizeof r) != 1) {
        /* still one token per process: the PID and the clock */
        snprintf(g_token, sizeof g_token, "p%08lx%015.0f", (unsigned long)getpid(), rd_monotonic_seconds() * 1e6);
        return;
    }
    for (int i = 0; i < 16; i++)
        snprintf(g_token + 2 * i, 3, "%02x", r[i]);
}

static const char *token(void)
{
    pthread_once(&g_token_once, make_token);
    return g_token;
}

static char *ledger_path(const char *db_path, const char *suffix)
{
    rd_buf p = RD_BUF_INIT;
    rd_buf_printf(&p, "%s.redduck-ledger%s", db_path, suffix);
    return rd_buf_detach(&p);
}

/* Every readable entry of the ledger (a torn last line from a crash is skipped). Caller holds the mutex. */
static json_t *ledger_read(const char *db_path)
{
    json_t *all = json_array();
    char *path = ledger_path(db_path, "");
    FILE *f = path ? fopen(path, "r") : NULL;
    free(path);
    if (!f)
        return all;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *e = json_loads(line, 0, NULL);
        if (json_is_object(e) && json_is_string(json_object_get(e, "location")))
            json_array_append_new(all, e);
        else
            json_decref(e);
    }
    free(line);
    fclose(f);
    return all;
}

/* Replaces the ledger by entries (atomically, by rename; on a full disk, where the new file cannot be
 * written, in place: the shorter text fits in the old one's blocks), or removes it when there are none. */
static void ledger_write(const char *db_path, json_t *entries)
{
    char *path = ledger_path(db_path, ""), *tmp = ledger_path(db_path, ".tmp");
    if (!path || !tmp) {
        free(path);
        free(tmp);
        return;
    }
    if (json_array_size(entries) == 0) {
        unlink(path);
    } else {
        rd_buf b = RD_BUF_INIT;
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e) {
            char *txt = json_dumps(e, JSON_COMPACT);
            if (txt)
                rd_buf_printf(&b, "%s\n", txt);
            free(txt);
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int ok = fd >= 0 && write(fd, b.data, b.len) == (ssize_t)b.len;
        ok = fd >= 0 && fsync(fd) == 0 && ok;
        if (fd >= 0)
            close(fd);
        if (!ok || rename(tmp, path) != 0) {
            unlink(tmp);
            fd = open(path, O_WRONLY | O_CLOEXEC);
            if (fd >= 0) {
                if (write(fd, b.data, b.len) == (ssize_t)b.len && ftruncate(fd, (off_t)b.len) == 0)
                    fsync(fd);
                close(fd);
            }
        }
        rd_buf_free(&b);
    }
    free(path);
    free(tmp);
}

/* Appends entry e (taken) to db_path's ledger, synced. */
static rd_status ledger_append(const char *db_path, json_t *e, const char *location, rd_error *err)
{
    char *txt = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    char *path = ledger_path(db_path, "");
    if (!txt || !path) {
        free(txt);
        free(path);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    rd_buf line = RD_BUF_INIT;
    rd_buf_printf(&line, "%s\n", txt);
    free(txt);
    pthread_mutex_lock(&g_ledger_mu);
    rd_status st = RD_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line.data, line.len) != (ssize_t)line.len || fsync(fd) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot record %s in %s (where redduck notes what to clean up after a "
                          "crash): %s", location, path, strerror(errno));
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&g_ledger_mu);
    rd_buf_free(&line);
    free(path);
    return st;
}

rd_status rd_target_ledger_add(const char *db_path, rd_target_kind kind, const char *location, rd_error *err)
{
    json_t *e = json_pack("{s:s, s:I, s:I, s:s, s:s}", "run", token(), "pid", (json_int_t)getpid(), "started",
                          (json_int_t)time(NULL), "kind", kind == RD_TARGET_PREFIX ? "s3" : "dir", "location",
                          location);
    return ledger_append(db_path, e, location, err);
}

rd_status rd_target_ledger_add_statement(const char *db_path, const char *location, const char *statement_id,
                                         rd_error *err)
{
    json_t *e = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "run", token(), "pid", (json_int_t)getpid(), "started",
                          (json_int_t)time(NULL), "kind", "statement", "location", location, "statement",
                          statement_id);
    return ledger_append(db_path, e, location, err);
}

static int is_mine(json_t *e)
{
    return strcmp(json_string_value(json_object_get(e, "run")) ? json_string_value(json_object_get(e, "run")) : "",
                  token()) == 0;
}

void rd_target_ledger_remove(const char *db_path, const char *location)
{
    pthread_mutex_lock(&g_ledger_mu);
    json_t *all = ledger_read(db_path), *keep = json_array();
    size_t i;
    json_t *e;
    int dropped = 0;
    json_array_foreach(all, i, e) {
        const char *loc = json_string_value(json_object_get(e, "location"));
        if (is_mine(e) && loc && strcmp(loc, location) == 0)
            dropped = 1;
        else
            json_array_append(keep, e);
    }
    if (dropped)
        ledger_write(db_path, keep);
    json_decref(all);
    json_decref(keep);
    pthread_mutex_unlock(&g_ledger_mu);
}

static const char *base_name(const char *p)
{
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/')
        n--;
    while (n > 0 && p[n - 1] != '/')
        n--;
    return p + n;
}

/* Removes a download directory (its files; it has no subdirectories): 1 removed, 0 it was not there. */
static int remove_download_dir(const char *dir)
{
    if (strncmp(base_name(dir), ".redduck-tmp-", 13) != 0)
        return -1; /* not one of ours: a ledger entry never names anything else */
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rd_buf p = RD_BUF_INIT;
        rd_buf_printf(&p, "%s/%s", dir, de->d_name);
        unlink(rd_buf_cstr(&p));
        rd_buf_free(&p);
    }
    closedir(d);
    return rmdir(dir) == 0 ? 1 : errno == ENOENT ? 0 : -1;
}

/* 1 when location (an "s3://bucket/…/redduck-…/" entry's) is in bucket and one of ours to sweep; then
 * *prefix (when not NULL) is its key prefix, which the caller frees. */
static int sweepable(const char *location, const char *bucket, char **prefix)
{
    char *b = NULL, *p = NULL;
    rd_error pe;
    rd_error_clear(&pe);
    int ok = location && rd_s3_parse_url(location, &b, &p, &pe) == RD_OK && strcmp(b, bucket ? bucket : "") == 0 &&
             strncmp(base_name(p), "redduck-", 8) == 0;
    free(b);
    if (ok && prefix)
        *prefix = p;
    else
        free(p);
    return ok;
}

/* 1 when list (an array of strings) holds s. */
static int listed(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (s && json_string_value(v) && strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

void rd_target_sweep(const char *db_path, rd_aws_client *s3, const char *bucket, rd_target_stop_fn stop,
                     void *stop_ctx, const rd_log *log, rd_target_sweep_result *r)
{
    pthread_mutex_lock(&g_ledger_mu);
    json_t *all = ledger_read(db_path);
    pthread_mutex_unlock(&g_ledger_mu);
    json_t *done = json_array();
    json_t *running = json_array(); /* the locations a statement may still write to: they stay */
    size_t i;
    json_t *e;
    /* first the statements: an UNLOAD of a killed run may still be writing its files */
    json_array_foreach(all, i, e) {
        const char *kind = json_string_value(json_object_get(e, "kind"));
        const char *loc = json_string_value(json_object_get(e, "location"));
        const char *id = json_string_value(json_object_get(e, "statement"));
        if (is_mine(e) || !kind || strcmp(kind, "statement") != 0 || !s3 || !sweepable(loc, bucket, NULL))
            continue;
        if (id && stop && stop(stop_ctx, id)) {
            json_array_append(done, e);
        } else {
            json_array_append_new(running, json_string(loc));
            r->failed++;
            rd_log_write(log, RD_LOG_WARN, "an earlier run's UNLOAD (statement %s) may still write to %s: its "
                         "files stay for a later run (or `redduck gc`)", id ? id : "?", loc);
        }
    }
    json_array_foreach(all, i, e) {
        if (is_mine(e))
            continue;
        const char *kind = json_string_value(json_object_get(e, "kind"));
        const char *loc = json_string_value(json_object_get(e, "location"));
        if (kind && strcmp(kind, "dir") == 0) {
            int gone = remove_download_dir(loc);
            if (gone >= 0) {
                r->dirs += (size_t)gone;
                json_array_append(done, e);
            } else {
                r->failed++;
                rd_log_write(log, RD_LOG_WARN, "could not remove %s, left by an earlier run: %s", loc,
                             strerror(errno));
            }
            continue;
        }
        char *p = NULL;
        if (!s3 || !kind || strcmp(kind, "s3") != 0 || listed(running, loc) || !sweepable(loc, bucket, &p))
            continue; /* another bucket's: a run staging there (or `redduck gc`) takes it */
        rd_error pe;
        rd_error_clear(&pe);
        size_t objects = 0;
        uint64_t bytes = 0;
        if (rd_s3_delete_prefix(s3, bucket, p, &objects, &bytes, &pe) == RD_OK) {
            r->prefixes += objects > 0;
            r->objects += objects;
            r->bytes += bytes;
            json_array_append(done, e);
        } else {
            r->failed++;
            rd_log_write(log, RD_LOG_WARN, "could not delete %s, left by an earlier run (delete it by hand, or "
                         "`redduck gc`): %s", loc, pe.message);
        }
        free(p);
    }
    json_decref(all);
    json_decref(running);
    if (json_array_size(done)) {
        pthread_mutex_lock(&g_ledger_mu);
        all = ledger_read(db_path);
        json_t *keep = json_array();
        json_array_foreach(all, i, e) {
            size_t k;
            json_t *d;
            int gone = 0;
            json_array_foreach(done, k, d) gone = gone || json_equal(d, e);
            if (!gone)
                json_array_append(keep, e);
        }
        ledger_write(db_path, keep);
        json_decref(keep);
        json_decref(all);
        pthread_mutex_unlock(&g_ledger_mu);
    }
    if (r->prefixes || r->dirs) /* what was really there (a run killed after its own cleanup left nothing) */
        rd_log_write(log, RD_LOG_WARN, "cleaned up after an interrupted earlier run of %s: %zu staging prefix%s "
                     "(%zu objects, %.1f MB), %zu download director%s", db_path, r->prefixes,
                     r->prefixes == 1 ? "" : "es", r->objects, (double)r->bytes / 1e6, r->dirs,
                     r->dirs == 1 ? "y" : "ies");
    json_decref(done);
}

/* ---- gc ------------------------------------------------------------------------------------------------ */

typedef struct gc_group {
    char *name;      /* "redduck-<uuid>/" */
    size_t objects;
    uint64_t bytes;
    int64_t newest;
} gc_group;

rd_status rd_gc_staging(rd_session *s, const rd_gc_options *o, rd_gc_result *r, rd_error *err)
{
    memset(r, 0, sizeof *r);
    char *bucket = NULL, *base = NULL;
    rd_status st = rd_s3_parse_url(o->staging, &bucket, &base, err);
    if (st != RD_OK)
        return rd_error_prefix(err, "--staging: ");
    rd_buf pre = RD_BUF_INIT;
    rd_buf_puts(&pre, base);
    if (pre.len && rd_buf_cstr(&pre)[pre.len - 1] != '/')
        rd_buf_putc(&pre, '/');
    free(base);
    const char *region = NULL, *src = NULL;
    rd_aws_client c, s3c;
    char bucket_region[64] = "";
    st = rd_session_region(s, &region, &src, err);
    if (st == RD_OK) {
        rd_session_client(s, region, &c);
        st = rd_s3_head_bucket(&c, bucket, bucket_region, sizeof bucket_region, err);
        if (st != RD_OK)
            rd_error_prefix(err, "checking the staging bucket %s: ", bucket);
    }
    rd_s3_object_list l = { 0 };
    if (st == RD_OK) {
        rd_session_client(s, bucket_region, &s3c);
        st = rd_s3_list(&s3c, bucket, rd_buf_cstr(&pre), &l, err);
        if (st != RD_OK)
            rd_error_prefix(err, "listing s3://%s/%s: ", bucket, rd_buf_cstr(&pre));
    }
    gc_group *g = NULL;
    size_t ng = 0;
    for (size_t i = 0; st == RD_OK && i < l.count; i++) {
        const char *rest = l.items[i].key + pre.len;
        const char *slash = strchr(rest, '/');
        if (strncmp(rest, "redduck-", 8) != 0 || !slash)
            continue;
        size_t n = (size_t)(slash - rest) + 1, k = 0;
        for (; k < ng; k++)
            if (strlen(g[k].name) == n && strncmp(g[k].name, rest, n) == 0)
                break;
        if (k == ng) {
            gc_group *ng2 = realloc(g, (ng + 1) * sizeof *g);
            if (!ng2) {
                st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
                break;
            }
            g = ng2;
            g[ng] = (gc_group){ strndup(rest, n), 0, 0, 0 };
            ng++;
        }
        g[k].objects++;
        g[k].bytes += l.items[i].size;
        if (l.items[i].last_modified > g[k].newest)
            g[k].newest = l.items[i].last_modified;
    }
    int64_t now = (int64_t)time(NULL);
    for (size_t k = 0; st == RD_OK && k < ng; k++) {
        rd_buf url = RD_BUF_INIT, prefix = RD_BUF_INIT;
        rd_buf_printf(&prefix, "%s%s", rd_buf_cstr(&pre), g[k].name);
        rd_buf_printf(&url, "s3://%s/%s", bucket, rd_buf_cstr(&prefix));
        rd_gc_prefix info = { rd_buf_cstr(&url), g[k].objects, g[k].bytes, g[k].newest, 0,
                              now - g[k].newest >= o->older_than_s };
        if (info.eligible && !o->dry_run) {
            size_t deleted = 0;
            uint64_t bytes = 0;
            st = rd_s3_delete_prefix(&s3c, bucket, rd_buf_cstr(&prefix), &deleted, &bytes, err);
            if (st != RD_OK)
                rd_error_prefix(err, "deleting %s: ", rd_buf_cstr(&url));
            info.deleted = st == RD_OK;
        }
        if (st == RD_OK && info.eligible) {
            r->prefixes++;
            r->objects += g[k].objects;
            r->bytes += g[k].bytes;
        } else if (st == RD_OK) {
            r->kept++;
        }
        if (st == RD_OK && o->on_prefix)
            o->on_prefix(o->on_prefix_ctx, &info);
        rd_buf_free(&url);
        rd_buf_free(&prefix);
    }
    for (size_t k = 0; k < ng; k++)
        free(g[k].name);
    free(g);
    rd_s3_object_list_free(&l);
    rd_buf_free(&pre);
    free(bucket);
    return st;
}
