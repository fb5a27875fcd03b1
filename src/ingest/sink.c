/* sink.c — the sink vtable's two implementations (see sink.h): the DuckDB table (staging table, loads and
 * the atomic swap) and the Parquet directory (files staged inside it, renamed into place at the commit). */
#include "ingest/sink.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/writeback.h"
#include "duckdb.h"
#include "ingest/target.h"
#include "redduck/ingest.h"

/* ---- the vtable, called ----------------------------------------------------------------------------- */

rd_status rd_sink_load(rd_sink *s, const rd_sink_file *files, size_t n, uint64_t *rows, rd_error *err)
{
    return s->vt->load(s, files, n, rows, err);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

rd_status rd_sink_load_parquet(rd_sink *s, const char *const *paths, size_t n, uint64_t *rows, rd_error *err)
{
    rd_sink_file *files = calloc(n ? n : 1, sizeof *files);
    if (!files)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++)
        files[i] = (rd_sink_file){ paths[i], base_name(paths[i]), RD_SINK_ROWS_UNKNOWN };
    rd_status st = rd_sink_load(s, files, n, rows, err);
    free(files);
    return st;
}

rd_status rd_sink_append_records(rd_sink *s, json_t *records, uint64_t *rows, rd_error *err)
{
    return s->vt->append_records(s, records, rows, err);
}

rd_status rd_sink_commit(rd_sink *s, uint64_t expected_rows, rd_error *err)
{
    return s->vt->commit(s, expected_rows, err);
}

void rd_sink_close(rd_sink *s)
{
    if (s)
        s->vt->close(s);
}

uint64_t rd_sink_rows(const rd_sink *s)
{
    return s->rows;
}

static rd_status random_hex(char *out, size_t bytes, rd_error *err)
{
    unsigned char rnd[16];
    if (bytes > sizeof rnd || RAND_bytes(rnd, (int)bytes) != 1)
        return rd_error_set(err, RD_E_INTERNAL, "no random bytes from OpenSSL");
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    return RD_OK;
}

/* ---- the DuckDB table ---------------------------------------------------------------------------------- */

typedef struct duck_sink {
    rd_sink base;
    duckdb_database db;
    duckdb_connection conn;
    const rd_plan *plan;
    char *table;
    char *staging;
    int staging_made;
    int committed;
    int in_tx;
    char *path;
    int owns_db;
    int append;
    char *unique_key;
    char *spill_dir;          /* where DuckDB writes besides the file: temp_directory, else the file's dir */
    char *memory_limit;
    char *disk_full_hint;
    char *commit_step;
    const volatile sig_atomic_t *cancel;
    const rd_log *log;
    rd_writeback *writeback;  /* the file's blocks sent to the disk during the loads, not all at COMMIT */
} duck_sink;

/* DuckDB's message m in one line. A full disk (temporary files DuckDB spills to, the file, its WAL) and
 * running out of memory each become one sentence naming the directory or the limit and the way out, where
 * DuckDB's own text runs to nine lines of generic advice; any other message keeps its first paragraph. */
static void duck_text(const duck_sink *s, const char *m, rd_buf *out)
{
    if (!m || !*m) {
        rd_buf_puts(out, "failed");
        return;
    }
    if (strstr(m, "No space left on device") || strstr(m, "Disk quota exceeded") ||
        strstr(m, "max_temp_directory_size")) {
        rd_buf_printf(out, "No space left on device on %s: %s", s->spill_dir,
                      s->disk_full_hint ? s->disk_full_hint : "free space");
        return;
    }
    if (strstr(m, "Out of Memory") || strstr(m, "could not allocate block") || strstr(m, "failed to pin block")) {
        rd_buf_printf(out, "DuckDB ran out of memory (memory limit %s): raise --memory-limit or lower --threads",
                      s->memory_limit);
        return;
    }
    const char *para = strstr(m, "\n\n");
    size_t n = para ? (size_t)(para - m) : strlen(m);
    for (size_t i = 0; i < n; i++)
        rd_buf_putc(out, m[i] == '\n' ? ' ' : m[i]);
}

static rd_status run(duck_sink *s, const char *sql, duckdb_result *keep, rd_error *err, const char *what)
{
    duckdb_result r;
    if (duckdb_query(s->conn, sql, &r) != DuckDBSuccess) {
        rd_buf m = RD_BUF_INIT;
        duck_text(s, duckdb_result_error(&r), &m);
        rd_status st = rd_error_set(err, RD_E_IO, "DuckDB %s (%s): %s", what, s->path, rd_buf_cstr(&m));
        rd_buf_free(&m);
        duckdb_destroy_result(&r);
        return st;
    }
    if (keep)
        *keep = r;
    else
        duckdb_destroy_result(&r);
    return RD_OK;
}

/* run() on SQL built in a buffer: a buffer that ran out of memory is not run (its text is lost). */
static rd_status run_built(duck_sink *s, const rd_buf *sql, duckdb_result *keep, rd_error *err, const char *what)
{
    if (rd_buf_failed(sql))
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    return run(s, rd_buf_cstr(sql), keep, err, what);
}

static int ident_ok(const char *t)
{
    if (!t || !*t || strlen(t) > 120)
        return 0;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p < 0x20 || *p == '"')
            return 0;
    return 1;
}

rd_status rd_ingest_check_table_name(const char *table, rd_error *err)
{
    static const char reserved[] = "_redduck";
    if (table && strncasecmp(table, reserved, sizeof reserved - 1) == 0)
        return rd_error_set(err, RD_E_USAGE,
                            "the table name '%.64s' is reserved: names starting with _redduck hold redduck's own "
                            "records (run history, staging); choose another name",
                            table);
    return RD_OK;
}

rd_status rd_sink_parse_into(const char *into, const char *default_table, char **path, char **table,
                             rd_error *err)
{
    *path = *table = NULL;
    if (!into || !*into)
        return rd_error_set(err, RD_E_USAGE, "no target given: pass --into FILE.duckdb[:table]");
    const char *colon = strrchr(into, ':');
    if (colon && strchr(colon, '/'))
        colon = NULL;
    if (colon == into)
        return rd_error_set(err, RD_E_USAGE, "no file name in --into '%s' (write FILE.duckdb:table)", into);
    const char *t = colon ? colon + 1 : default_table;
    if (!ident_ok(t))
        return rd_error_set(err, RD_E_USAGE, "'%s' is not a usable table name (write FILE.duckdb:table)",
                            t ? t : "");
    rd_status st = rd_ingest_check_table_name(t, err);
    if (st != RD_OK)
        return st;
    *path = colon ? strndup(into, (size_t)(colon - into)) : strdup(into);
    *table = strdup(t);
    if (!*path || !*table || !**path) {
        free(*path);
        free(*table);
        *path = *table = NULL;
        return rd_error_set(err, RD_E_USAGE, "no file name in --into '%s'", into);
    }
    return RD_OK;
}

static rd_status duck_load(rd_sink *b, const rd_sink_file *files, size_t n, uint64_t *rows, rd_error *err);
static rd_status duck_append_records(rd_sink *b, json_t *records, uint64_t *rows, rd_error *err);
static rd_status duck_commit(rd_sink *b, uint64_t expected_rows, rd_error *err);
static void duck_close(rd_sink *b);
static const rd_sink_vtable duck_vtable = { duck_load, duck_append_records, duck_commit, duck_close };

rd_status rd_sink_open(const rd_sink_options *o, const rd_plan *plan, rd_sink **out, rd_error *err)
{
    *out = NULL;
    duck_sink *s = calloc(1, sizeof *s);
    if (!s)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    s->base.vt = &duck_vtable;
    s->base.download_hint = "free space or lower --max-local-bytes";
    s->base.committed_note = "the new table was committed";
    s->base.load_step = "loading into DuckDB: ";
    rd_buf step = RD_BUF_INIT;
    rd_buf_printf(&step, "replacing table %s", o->table);
    s->commit_step = rd_buf_detach(&step);
    s->base.commit_step = s->commit_step ? s->commit_step : "replacing the table";
    s->plan = plan;
    s->path = strdup(o->path);
    s->table = strdup(o->table);
    if (o->temp_dir) {
        s->spill_dir = strdup(o->temp_dir);
    } else {
        const char *slash = strrchr(o->path, '/');
        s->spill_dir = !slash ? strdup(".") : slash == o->path ? strdup("/")
                                            : strndup(o->path, (size_t)(slash - o->path));
    }
    s->memory_limit = strdup(o->memory ? o->memory : RD_TARGET_DEFAULT_MEMORY);
    s->disk_full_hint = o->disk_full_hint ? strdup(o->disk_full_hint) : NULL;
    s->cancel = o->cancel;
    s->log = o->log;
    char rnd[9];
    if (random_hex(rnd, 4, err) != RD_OK) {
        duck_close(&s->base);
        return RD_E_INTERNAL;
    }
    char staging[200];
    snprintf(staging, sizeof staging, "%s__redduck_staging_%s", o->table, rnd);
    s->staging = strdup(staging);

    duckdb_config cfg;
    duckdb_create_config(&cfg);
    rd_target_configure(cfg, o->threads, o->memory, o->temp_dir);
    char *msg = NULL;
    s->append = o->append;
    s->unique_key = o->unique_key ? strdup(o->unique_key) : NULL;
    if (o->shared_db) {
        s->db = (duckdb_database)o->shared_db;
    } else if (duckdb_open_ext(o->path, &s->db, cfg, &msg) != DuckDBSuccess) {
        rd_status st = rd_error_set(err, RD_E_IO, "cannot open DuckDB file %s: %s", o->path, msg ? msg : "failed");
        duckdb_free(msg);
        duckdb_destroy_config(&cfg);
        duck_close(&s->base);
        return st;
    } else {
        s->owns_db = 1;
    }
    duckdb_destroy_config(&cfg);
    if (duckdb_connect(s->db, &s->conn) != DuckDBSuccess) {
        duck_close(&s->base);
        return rd_error_set(err, RD_E_IO, "cannot connect to DuckDB file %s", o->path);
    }
    duckdb_result r;
    duckdb_query(s->conn, "SET TimeZone='UTC'", &r); /* without ICU there is only UTC: ignore a refusal */
    duckdb_destroy_result(&r);
    if (o->fast_compression &&
        run(s, "SET disabled_compression_methods='fsst,dict_fsst,dictionary'", NULL, err, "setting compression") !=
            RD_OK) {
        duck_close(&s->base);
        return RD_E_IO;
    }

    /* One transaction from the staging table to the swap: a crash or failure leaves no trace. */
    rd_status st = run(s, "BEGIN TRANSACTION", NULL, err, "starting a transaction");
    if (st != RD_OK) {
        duck_close(&s->base);
        return st;
    }
    s->in_tx = 1;
    /* DuckDB writes a big load's blocks into the file as they fill, and COMMIT fsyncs them all: left to the
     * kernel they stay dirty until then, and the COMMIT waits for the whole load's writes (about 1.5 s for
     * 1.5 GB here). Written as they come, the disk works during the loads instead. An optimisation only. */
    rd_error wb_err;
    rd_error_clear(&wb_err);
    if (rd_writeback_start(o->path, 0, &s->writeback, &wb_err) != RD_OK && s->log)
        rd_log_write(s->log, RD_LOG_DEBUG, "DuckDB: no early writeback: %s", wb_err.message);
    rd_buf sql = RD_BUF_INIT;
    rd_buf_puts(&sql, "CREATE TABLE ");
    rd_plan_quote_ident(&sql, s->staging);
    rd_buf_puts(&sql, " (");
    rd_plan_create_columns(plan, &sql);
    rd_buf_puts(&sql, ")");
    st = run_built(s, &sql, NULL, err, "creating the staging table");
    rd_buf_free(&sql);
    if (st != RD_OK) {
        duck_close(&s->base);
        return st;
    }
    s->staging_made = 1;
    *out = &s->base;
    return RD_OK;
}

static void sql_string(rd_buf *b, const char *s)
{
    rd_buf_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            rd_buf_putc(b, '\'');
        rd_buf_putc(b, *s);
    }
    rd_buf_putc(b, '\'');
}

static rd_status duck_load(rd_sink *b, const rd_sink_file *files, size_t n, uint64_t *rows, rd_error *err)
{
    duck_sink *s = (duck_sink *)b;
    rd_buf sql = RD_BUF_INIT;
    rd_buf_puts(&sql, "INSERT INTO ");
    rd_plan_quote_ident(&sql, s->staging);
    rd_buf_puts(&sql, " SELECT ");
    rd_plan_decode_select(s->plan, &sql);
    rd_buf_puts(&sql, " FROM read_parquet([");
    for (size_t i = 0; i < n; i++) {
        if (i)
            rd_buf_putc(&sql, ',');
        sql_string(&sql, files[i].path);
    }
    rd_buf_puts(&sql, "])");
    duckdb_result r;
    rd_status st = run_built(s, &sql, &r, err, "loading Parquet files");
    rd_buf_free(&sql);
    if (st != RD_OK)
        return st;
    uint64_t got = (uint64_t)duckdb_rows_changed(&r);
    duckdb_destroy_result(&r);
    s->base.rows += got;
    if (rows)
        *rows = got;
    return RD_OK;
}

static int b64_decode(const char *in, unsigned char **out, size_t *len)
{
    size_t n = strlen(in);
    *out = malloc(n / 4 * 3 + 3);
    if (!*out)
        return -1;
    int m = EVP_DecodeBlock(*out, (const unsigned char *)in, (int)n);
    if (m < 0) {
        free(*out);
        return -1;
    }
    size_t pad = n >= 2 && in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
    *len = (size_t)m - pad;
    return 0;
}

static int hex_decode(const char *in, unsigned char **out, size_t *len)
{
    size_t n = strlen(in);
    if (n >= 2 && in[0] == '\\' && in[1] == 'x')
        in += 2, n -= 2;
    if (n % 2)
        return -1;
    *out = malloc(n / 2 + 1);
    if (!*out)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        if (sscanf(in + 2 * i, "%2x", &v) != 1) {
            free(*out);
            return -1;
        }
        (*out)[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

static duckdb_state append_field(duckdb_appender a, const rd_plan_column *c, json_t *f)
{
    json_t *v;
    if (json_is_true(json_object_get(f, "isNull")))
        return duckdb_append_null(a);
    if ((v = json_object_get(f, "longValue")) != NULL)
        return duckdb_append_int64(a, (int64_t)json_integer_value(v));
    if ((v = json_object_get(f, "doubleValue")) != NULL)
        return duckdb_append_double(a, json_number_value(v));
    if ((v = json_object_get(f, "booleanValue")) != NULL)
        return duckdb_append_bool(a, json_is_true(v));
    unsigned char *bytes = NULL;
    size_t len = 0;
    if ((v = json_object_get(f, "blobValue")) != NULL) {
        if (!json_is_string(v) || b64_decode(json_string_value(v), &bytes, &len) != 0)
            return DuckDBError;
        duckdb_state st = duckdb_append_blob(a, bytes, len);
        free(bytes);
        return st;
    }
    if ((v = json_object_get(f, "stringValue")) != NULL && json_is_string(v)) {
        if (c->kind == RD_COL_HEX) {
            if (hex_decode(json_string_value(v), &bytes, &len) != 0)
                return DuckDBError;
            duckdb_state st = duckdb_append_blob(a, bytes, len);
            free(bytes);
            return st;
        }
        return duckdb_append_varchar_length(a, json_string_value(v), json_string_length(v));
    }
    return DuckDBError;
}

static rd_status duck_append_records(rd_sink *b, json_t *records, uint64_t *rows, rd_error *err)
{
    duck_sink *s = (duck_sink *)b;
    duckdb_appender a;
    if (duckdb_appender_create(s->conn, NULL, s->staging, &a) != DuckDBSuccess) {
        duckdb_appender_destroy(&a);
        return rd_error_set(err, RD_E_IO, "DuckDB: cannot append to the staging table in %s", s->path);
    }
    rd_status st = RD_OK;
    size_t n = json_array_size(records);
    for (size_t i = 0; i < n && st == RD_OK; i++) {
        json_t *rec = json_array_get(records, i);
        if (json_array_size(rec) != s->plan->ncols) {
            st = rd_error_set(err, RD_E_REMOTE, "result row %zu has %zu fields, expected %zu", i + 1,
                              json_array_size(rec), s->plan->ncols);
            break;
        }
        for (size_t j = 0; j < s->plan->ncols && st == RD_OK; j++)
            if (append_field(a, &s->plan->cols[j], json_array_get(rec, j)) != DuckDBSuccess) {
                const char *m = duckdb_appender_error(a);
                rd_buf t = RD_BUF_INIT;
                duck_text(s, m ? m : "bad value", &t);
                st = rd_error_set(err, RD_E_IO, "DuckDB: cannot store row %zu column \"%s\" (%s): %s", i + 1,
                                  s->plan->cols[j].name, s->plan->cols[j].duck_type, rd_buf_cstr(&t));
                rd_buf_free(&t);
            }
        if (st == RD_OK && duckdb_appender_end_row(a) != DuckDBSuccess) {
            rd_buf t = RD_BUF_INIT;
            duck_text(s, duckdb_appender_error(a), &t);
            st = rd_error_set(err, RD_E_IO, "DuckDB: cannot store row %zu: %s", i + 1, rd_buf_cstr(&t));
            rd_buf_free(&t);
        }
    }
    if (st == RD_OK && duckdb_appender_close(a) != DuckDBSuccess) {
        rd_buf t = RD_BUF_INIT;
        duck_text(s, duckdb_appender_error(a), &t);
        st = rd_error_set(err, RD_E_IO, "DuckDB: cannot store the rows: %s", rd_buf_cstr(&t));
        rd_buf_free(&t);
    }
    duckdb_appender_destroy(&a);
    if (st == RD_OK) {
        s->base.rows += n;
        if (rows)
            *rows = n;
    }
    return st;
}

rd_status rd_sink_table_exists(duckdb_connection conn, const char *table, int *exists, rd_error *err)
{
    *exists = 0;
    duckdb_prepared_statement ps;
    rd_status st = RD_OK;
    if (duckdb_prepare(conn, "SELECT count(*) FROM information_schema.tables WHERE table_catalog = "
                             "current_database() AND table_schema = 'main' AND table_name = $1",
                       &ps) != DuckDBSuccess ||
        duckdb_bind_varchar(ps, 1, table) != DuckDBSuccess) {
        st = rd_error_set(err, RD_E_IO, "DuckDB looking for table %s: %s", table, duckdb_prepare_error(ps));
    } else {
        duckdb_result r;
        if (duckdb_execute_prepared(ps, &r) == DuckDBSuccess)
            *exists = duckdb_value_int64(&r, 0, 0) > 0;
        else
            st = rd_error_set(err, RD_E_IO, "DuckDB looking for table %s: %s", table, duckdb_result_error(&r));
        duckdb_destroy_result(&r);
    }
    duckdb_destroy_prepare(&ps);
    return st;
}

static rd_status duck_commit(rd_sink *b, uint64_t expected_rows, rd_error *err)
{
    duck_sink *s = (duck_sink *)b;
    rd_buf sql = RD_BUF_INIT;
    rd_buf_puts(&sql, "SELECT count(*) FROM ");
    rd_plan_quote_ident(&sql, s->staging);
    duckdb_result r;
    rd_status st = run_built(s, &sql, &r, err, "counting rows");
    rd_buf_free(&sql);
    if (st != RD_OK)
        return st;
    uint64_t have = (uint64_t)duckdb_value_int64(&r, 0, 0);
    duckdb_destroy_result(&r);
    if (have != expected_rows)
        return rd_error_set(err, RD_E_REMOTE,
                            "loaded %llu rows but Redshift reported %llu: the table was not replaced (run again; "
                            "if it repeats, report it)",
                            (unsigned long long)have, (unsigned long long)expected_rows);
    int exists = 0;
    if (s->append && (st = rd_sink_table_exists(s->conn, s->table, &exists, err)) != RD_OK) {
        rd_buf_free(&sql);
        return st;
    }
    if (exists) {
        if (s->unique_key) {
            rd_buf_puts(&sql, "DELETE FROM ");
            rd_plan_quote_ident(&sql, s->table);
            rd_buf_puts(&sql, " WHERE ");
            rd_plan_quote_ident(&sql, s->unique_key);
            rd_buf_puts(&sql, " IN (SELECT ");
            rd_plan_quote_ident(&sql, s->unique_key);
            rd_buf_puts(&sql, " FROM ");
            rd_plan_quote_ident(&sql, s->staging);
            rd_buf_puts(&sql, "); ");
        }
        rd_buf_puts(&sql, "INSERT INTO ");
        rd_plan_quote_ident(&sql, s->table);
        rd_buf_puts(&sql, " BY NAME SELECT * FROM ");
        rd_plan_quote_ident(&sql, s->staging);
        rd_buf_puts(&sql, "; DROP TABLE ");
        rd_plan_quote_ident(&sql, s->staging);
    } else {
        rd_buf_puts(&sql, "DROP TABLE IF EXISTS ");
        rd_plan_quote_ident(&sql, s->table);
        rd_buf_puts(&sql, "; ALTER TABLE ");
        rd_plan_quote_ident(&sql, s->staging);
        rd_buf_puts(&sql, " RENAME TO ");
        rd_plan_quote_ident(&sql, s->table);
    }
    st = run_built(s, &sql, NULL, err, exists ? "adding the rows to the table" : "replacing the table");
    rd_buf_free(&sql);
    /* the last moment to stop: once COMMIT is issued it runs to its end */
    if (st == RD_OK && s->cancel && *s->cancel)
        st = rd_error_set(err, RD_E_CANCELLED, "interrupted during commit: rolled back: the old table is unchanged");
    if (st == RD_OK && s->log)
        rd_log_write(s->log, RD_LOG_INFO, "DuckDB: COMMIT (table %s of %s)", s->table, s->path);
    if (st == RD_OK)
        st = run(s, "COMMIT", NULL, err, "committing");
    if (st != RD_OK) {
        duckdb_query(s->conn, "ROLLBACK", &r);
        duckdb_destroy_result(&r);
        return st;
    }
    s->committed = 1;
    rd_writeback_stop(s->writeback);
    s->writeback = NULL;
    return RD_OK;
}

static void duck_close(rd_sink *b)
{
    duck_sink *s = (duck_sink *)b;
    rd_writeback_stop(s->writeback);
    s->writeback = NULL;
    if (s->conn && s->in_tx && !s->committed) {
        duckdb_result r;
        duckdb_query(s->conn, "ROLLBACK", &r);
        duckdb_destroy_result(&r);
    }
    if (s->conn && s->staging_made && !s->committed) {
        rd_buf sql = RD_BUF_INIT;
        rd_buf_puts(&sql, "DROP TABLE IF EXISTS ");
        rd_plan_quote_ident(&sql, s->staging);
        duckdb_result r;
        duckdb_query(s->conn, rd_buf_cstr(&sql), &r);
        duckdb_destroy_result(&r);
        /* The rolled-back rows' blocks (DuckDB writes large loads into the file before COMMIT) are marked free
         * but stay in the file, and DuckDB skips a checkpoint with nothing to write: a throwaway table gives it
         * something, and that checkpoint frees and truncates them. Declined while another connection of a
         * shared database writes: the next checkpoint (at the latest, closing) does it then. */
        rd_buf_reset(&sql);
        rd_buf_puts(&sql, "CREATE TABLE ");
        rd_plan_quote_ident(&sql, s->staging);
        rd_buf_puts(&sql, " (reclaim INTEGER); DROP TABLE ");
        rd_plan_quote_ident(&sql, s->staging);
        rd_buf_puts(&sql, "; CHECKPOINT");
        duckdb_query(s->conn, rd_buf_cstr(&sql), &r);
        duckdb_destroy_result(&r);
        rd_buf_free(&sql);
    }
    if (s->conn)
        duckdb_disconnect(&s->conn);
    if (s->db && s->owns_db)
        duckdb_close(&s->db);
    free(s->unique_key);
    free(s->spill_dir);
    free(s->memory_limit);
    free(s->disk_full_hint);
    free(s->commit_step);
    free(s->table);
    free(s->staging);
    free(s->path);
    free(s);
}

/* ---- the Parquet directory ------------------------------------------------------------------------------ */

typedef struct dir_sink {
    rd_sink base;
    char *dir;
    char *staging;     /* dir/.redduck-staging-<hex> */
    char **names;      /* staged files, by their names in dir */
    size_t count;
    int rows_unknown;  /* a file came without a row count: the commit cannot check it */
    int committed;
    char *note;
} dir_sink;

static rd_status dir_load(rd_sink *b, const rd_sink_file *files, size_t n, uint64_t *rows, rd_error *err)
{
    dir_sink *s = (dir_sink *)b;
    char **names = realloc(s->names, (s->count + n + 1) * sizeof *names);
    if (!names)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    s->names = names;
    uint64_t got = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = files[i].name;
        if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            return rd_error_set(err, RD_E_REMOTE, "'%s' is not a usable file name in %s", name ? name : "", s->dir);
        rd_buf to = RD_BUF_INIT;
        rd_buf_printf(&to, "%s/%s", s->staging, name);
        char *keep = strdup(name);
        if (!keep || rename(files[i].path, rd_buf_cstr(&to)) != 0) {
            rd_status st = keep ? rd_error_set(err, RD_E_IO, "cannot move %s to %s: %s", files[i].path,
                                               rd_buf_cstr(&to), strerror(errno))
                                : rd_error_set(err, RD_E_INTERNAL, "out of memory");
            free(keep);
            rd_buf_free(&to);
            return st;
        }
        rd_buf_free(&to);
        s->names[s->count++] = keep;
        if (files[i].rows == RD_SINK_ROWS_UNKNOWN)
            s->rows_unknown = 1;
        else
            got += files[i].rows;
    }
    s->base.rows += got;
    if (rows)
        *rows = got;
    return RD_OK;
}

static rd_status dir_append_records(rd_sink *b, json_t *records, uint64_t *rows, rd_error *err)
{
    (void)records;
    (void)rows;
    dir_sink *s = (dir_sink *)b;
    return rd_error_set(err, RD_E_USAGE, "--format parquet needs the UNLOAD path: no Parquet files for %s", s->dir);
}

static rd_status dir_commit(rd_sink *b, uint64_t expected_rows, rd_error *err)
{
    dir_sink *s = (dir_sink *)b;
    if (!s->rows_unknown && s->base.rows != expected_rows)
        return rd_error_set(err, RD_E_REMOTE,
                            "the files hold %llu rows but Redshift reported %llu: nothing was written to %s (run "
                            "again; if it repeats, report it)",
                            (unsigned long long)s->base.rows, (unsigned long long)expected_rows, s->dir);
    rd_status st = RD_OK;
    size_t i = 0;
    for (; i < s->count && st == RD_OK; i++) {
        rd_buf from = RD_BUF_INIT, to = RD_BUF_INIT;
        rd_buf_printf(&from, "%s/%s", s->staging, s->names[i]);
        rd_buf_printf(&to, "%s/%s", s->dir, s->names[i]);
        if (rename(rd_buf_cstr(&from), rd_buf_cstr(&to)) != 0)
            st = rd_error_set(err, RD_E_IO, "cannot move %s into %s: %s", rd_buf_cstr(&from), s->dir, strerror(errno));
        rd_buf_free(&from);
        rd_buf_free(&to);
    }
    if (st != RD_OK)
        return st;
    s->committed = 1;
    rmdir(s->staging);
    return RD_OK;
}

static void dir_close(rd_sink *b)
{
    dir_sink *s = (dir_sink *)b;
    for (size_t i = 0; i < s->count; i++) {
        if (!s->committed) {
            rd_buf p = RD_BUF_INIT;
            rd_buf_printf(&p, "%s/%s", s->staging, s->names[i]);
            unlink(rd_buf_cstr(&p));
            rd_buf_free(&p);
        }
        free(s->names[i]);
    }
    if (s->staging)
        rmdir(s->staging);
    free(s->names);
    free(s->staging);
    free(s->dir);
    free(s->note);
    free(s);
}

static const rd_sink_vtable dir_vtable = { dir_load, dir_append_records, dir_commit, dir_close };

rd_status rd_sink_open_dir(const char *dir, rd_sink **out, rd_error *err)
{
    *out = NULL;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return rd_error_set(err, RD_E_IO, "cannot create %s: %s", dir, strerror(errno));
    dir_sink *s = calloc(1, sizeof *s);
    if (!s)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    s->base.vt = &dir_vtable;
    s->base.download_hint = "free space";
    s->base.load_step = "keeping the Parquet files: ";
    s->base.commit_step = "moving the files into place";
    s->dir = strdup(dir);
    rd_buf b = RD_BUF_INIT;
    rd_buf_printf(&b, "the files in %s are complete", dir);
    s->note = rd_buf_detach(&b);
    s->base.committed_note = s->note;
    rd_buf_printf(&b, "%s/.redduck-staging-XXXXXX", dir);
    s->staging = rd_buf_detach(&b);
    if (!s->dir || !s->note || !s->staging) {
        dir_close(&s->base);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    if (!mkdtemp(s->staging)) {
        rd_status st = rd_error_set(err, RD_E_IO, "cannot create a staging directory in %s: %s", dir, strerror(errno));
        free(s->staging);
        s->staging = NULL;
        dir_close(&s->base);
        return st;
    }
    *out = &s->base;
    return RD_OK;
}
