/* ingest.c — the pipeline behind rd_ingest (see redduck/ingest.h): probe → UNLOAD → manifest → parallel
 * download with a loader thread appending each finished file to the DuckDB staging table (local disk
 * bounded by admission) → verify + swap → delete the staged objects. Or the Data API path. Owns the job's
 * temporary directory and the loader thread; everything else is borrowed from the session. */
#include "redduck/ingest.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
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
#include "ingest/target.h"
#include "ingest/transfer.h"
#include "ingest/unload_sql.h"
#include "services/redshift_data.h"
#include "services/s3.h"

#define MANIFEST_MAX (64u << 20)
#define RD_INGEST_MIN_ATTEMPTS 6

typedef struct file_entry {
    char *key;
    uint64_t size;
    uint64_t records;     /* from the manifest; 0 when listed */
    char *local;
} file_entry;

typedef struct job {
    rd_session *s;
    const rd_ingest_options *o;
    rd_ingest_result *r;
    const rd_log *log;
    rd_aws_client data;       /* Data API, in the session's region */
    rd_aws_client s3c;        /* S3, in the bucket's region */
    const char *region;
    char bucket_region[64];
    rd_rsd_target target;
    rd_plan plan;
    char *db_path, *table;
    char *bucket, *prefix;    /* the unique staging prefix, ending in '/' */
    int staged;               /* 1 once the UNLOAD was submitted: the prefix may hold objects */
    int unload_may_run;       /* 1 when cancelling the UNLOAD failed: it may still write under the prefix */
    file_entry *files;
    size_t nfiles;
    uint64_t manifest_rows;
    int have_manifest;
    char tmpdir[PATH_MAX];
    rd_sink *sink;            /* the DuckDB table or the Parquet directory: the pipeline only calls its vtable */
    rd_target *tgt;           /* the DuckDB file, opened first to hold its lock (unless the caller shares one) */
    int ledger_prefix, ledger_dir; /* 1 while the staging prefix / tmpdir is recorded in the target's ledger */
    int staging_cleaned;      /* 1 when cleanup_staging emptied the prefix */
    double t0, phase_t0;      /* monotonic seconds: job start, phase start */

    /* loader thread (DuckDB side); everything below under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t *queue;            /* indexes into files */
    size_t qhead, qtail;
    int producer_done;
    int loader_failed;
    rd_error loader_err;
    rd_status loader_st;
    uint64_t outstanding;     /* bytes admitted and not yet loaded and deleted */
    uint64_t budget;          /* max_local_bytes */
    size_t batch_files;       /* files per load that keep DuckDB's threads busy */
    uint64_t rows_loaded;
    double last_progress;
} job;

static double secs_since(double t)
{
    return rd_monotonic_seconds() - t;
}

static void phase_start(job *j)
{
    j->phase_t0 = rd_monotonic_seconds();
}

/* Hands p to the caller's progress callback (elapsed_s filled in here), at most every 0.2 s unless forced. */
static void report(job *j, rd_ingest_progress p, int force)
{
    if (!j->o->progress)
        return;
    if (!force && secs_since(j->last_progress) < 0.2)
        return;
    j->last_progress = rd_monotonic_seconds();
    p.elapsed_s = secs_since(j->phase_t0);
    j->o->progress(j->o->progress_ctx, &p);
}

static int cancelled(const job *j)
{
    return j->o->cancel && *j->o->cancel;
}

/* ---- Redshift statements ---------------------------------------------------------------------------- */

typedef struct tick_ctx {
    job *j;
    rd_ingest_phase phase;
} tick_ctx;

static void on_tick(void *ctx, const char *status, long elapsed_ms)
{
    (void)elapsed_ms;
    tick_ctx *t = ctx;
    report(t->j, (rd_ingest_progress){ .phase = t->phase, .status = status }, 0);
}

static rd_status run_statement(job *j, const char *sql, rd_ingest_phase phase, const char *step, char id[64],
                               rd_rsd_description *d, rd_error *err)
{
    char token[40];
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return rd_error_set(err, RD_E_INTERNAL, "%s: no random bytes from OpenSSL", step);
    for (int i = 0; i < 16; i++)
        snprintf(token + 2 * i, 3, "%02x", rnd[i]);
    rd_status st = rd_rsd_execute(&j->data, &j->target, sql, token, id, err);
    if (st != RD_OK) {
        if (st == RD_E_DENIED && !strstr(err->message, "redshift-data:"))
            rd_error_prefix(err, "(%s is needed too) ", rd_rsd_target_credentials_action(&j->target));
        return rd_error_prefix(err, "%s: ExecuteStatement failed: ", step);
    }
    if (phase == RD_PHASE_UNLOAD || phase == RD_PHASE_FETCH)
        snprintf(j->r->statement_id, sizeof j->r->statement_id, "%s", id);
    tick_ctx t = { j, phase };
    rd_rsd_wait_options wo = { 0 };
    wo.timeout_ms = j->o->timeout_s > 0 ? j->o->timeout_s * 1000 : 0;
    wo.cancel = j->o->cancel;
    wo.tick = on_tick;
    wo.tick_ctx = &t;
    rd_buf still = RD_BUF_INIT;
    rd_rsd_cancel_outcome oc = RD_RSD_NOT_CANCELLED;
    wo.outcome = &oc;
    if (phase == RD_PHASE_UNLOAD) {
        rd_buf_printf(&still, "the UNLOAD may still write to %s; delete it when it stops", j->r->staging_url);
        wo.still_running = rd_buf_cstr(&still);
    }
    st = rd_rsd_wait(&j->data, id, &wo, d, err);
    rd_buf_free(&still);
    if (phase == RD_PHASE_UNLOAD && oc == RD_RSD_CANCEL_FAILED)
        j->unload_may_run = 1;
    if (st != RD_OK && st != RD_E_CANCELLED)
        rd_error_prefix(err, "%s: ", step);
    return st;
}

static rd_status get_page(job *j, const char *id, const char *token, json_t **page, const char *step, rd_error *err)
{
    rd_status st = rd_rsd_get_result(&j->data, id, token, page, err);
    if (st != RD_OK)
        rd_error_prefix(err, "%s: GetStatementResult failed: ", step);
    return st;
}

/* Schema probe: the query with `where 1=0`, its ColumnMetadata planned. */
/* Runs the user's query (or table) as a SELECT with the source's filter and waits for it; probe: with no
 * rows (`1=0`), for the column metadata only. Writes the statement id and, when rows_out is not NULL, its
 * row count. */
static rd_status run_select(job *j, int probe, char id[64], int64_t *rows_out, rd_error *err)
{
    rd_buf suffix = RD_BUF_INIT, sql = RD_BUF_INIT;
    int filtered = j->o->filter && *j->o->filter;
    if (filtered && probe)
        rd_buf_printf(&suffix, " where (%s) and 1=0", j->o->filter);
    else if (filtered)
        rd_buf_printf(&suffix, " where %s", j->o->filter);
    else if (probe)
        rd_buf_puts(&suffix, " where 1=0");
    rd_status st = rd_buf_failed(&suffix) ? rd_error_set(err, RD_E_INTERNAL, "out of memory")
                   : rd_unload_sql_select(j->o->sql, j->o->table, NULL, suffix.len ? rd_buf_cstr(&suffix) : NULL,
                                          &sql, err);
    rd_buf_free(&suffix);
    rd_rsd_description d = { 0 };
    if (st == RD_OK)
        st = run_statement(j, rd_buf_cstr(&sql), probe ? RD_PHASE_PROBE : RD_PHASE_FETCH,
                           probe ? "schema probe" : "query", id, &d, err);
    rd_buf_free(&sql);
    if (rows_out)
        *rows_out = d.result_rows;
    rd_rsd_description_free(&d);
    return st;
}

static rd_status probe(job *j, rd_error *err)
{
    phase_start(j);
    char id[64] = "";
    rd_status st = run_select(j, 1, id, NULL, err);
    json_t *page = NULL;
    if (st == RD_OK)
        st = get_page(j, id, NULL, &page, "schema probe", err);
    if (st == RD_OK) {
        st = rd_plan_from_metadata(json_object_get(page, "ColumnMetadata"), &j->plan, err);
        if (st != RD_OK)
            rd_error_prefix(err, "schema probe: ");
    }
    json_decref(page);
    j->r->probe_s = secs_since(j->phase_t0);
    return st;
}

/* ---- staging in S3 ----------------------------------------------------------------------------------- */

static rd_status make_prefix(job *j, rd_error *err)
{
    char *base = NULL;
    rd_status st = rd_s3_parse_url(j->o->staging, &j->bucket, &base, err);
    if (st != RD_OK)
        return rd_error_prefix(err, "--staging: ");
    unsigned char u[16];
    if (RAND_bytes(u, sizeof u) != 1) {
        free(base);
        return rd_error_set(err, RD_E_INTERNAL, "no random bytes from OpenSSL");
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    rd_buf p = RD_BUF_INIT;
    rd_buf_puts(&p, base);
    if (p.len && rd_buf_cstr(&p)[p.len - 1] != '/')
        rd_buf_putc(&p, '/');
    rd_buf_puts(&p, "redduck-");
    for (int i = 0; i < 16; i++)
        rd_buf_printf(&p, "%02x%s", u[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
    rd_buf_putc(&p, '/');
    free(base);
    j->prefix = rd_buf_detach(&p);
    snprintf(j->r->staging_url, sizeof j->r->staging_url, "s3://%s/%s", j->bucket, j->prefix);
    return j->prefix ? RD_OK : rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

static rd_status bucket_region(job *j, rd_error *err)
{
    rd_status st = rd_s3_head_bucket(&j->data, j->bucket, j->bucket_region, sizeof j->bucket_region, err);
    if (st == RD_E_DENIED) {
        /* HeadBucket needs s3:ListBucket, which ingest needs anyway; say so */
        return rd_error_prefix(err, "checking the staging bucket (HeadBucket, needs s3:ListBucket on %s): ",
                               j->bucket);
    }
    if (st != RD_OK)
        return rd_error_prefix(err, "checking the staging bucket %s: ", j->bucket);
    rd_session_client(j->s, j->bucket_region, &j->s3c);
    j->s3c.max_attempts = j->data.max_attempts;
    return RD_OK;
}

static void files_free(job *j)
{
    for (size_t i = 0; i < j->nfiles; i++) {
        free(j->files[i].key);
        free(j->files[i].local);
    }
    free(j->files);
    j->files = NULL;
    j->nfiles = 0;
}

static rd_status add_file(job *j, const char *key, uint64_t size, uint64_t records)
{
    file_entry *f = realloc(j->files, (j->nfiles + 1) * sizeof *f);
    if (!f)
        return RD_E_INTERNAL;
    j->files = f;
    f[j->nfiles].key = strdup(key);
    f[j->nfiles].size = size;
    f[j->nfiles].records = records;
    f[j->nfiles].local = NULL;
    j->nfiles++;
    return RD_OK;
}

/* Reads <prefix>manifest; RD_E_NOT_FOUND when there is none (an empty result writes none). */
static rd_status read_manifest(job *j, rd_error *err)
{
    rd_buf key = RD_BUF_INIT, body = RD_BUF_INIT;
    rd_buf_printf(&key, "%smanifest", j->prefix);
    rd_status st = rd_s3_get(&j->s3c, j->bucket, rd_buf_cstr(&key), MANIFEST_MAX, &body, err);
    rd_buf_free(&key);
    if (st != RD_OK) {
        rd_buf_free(&body);
        return st;
    }
    json_error_t je;
    json_t *m = json_loadb(body.data ? body.data : "", body.len, 0, &je);
    rd_buf_free(&body);
    json_t *entries = json_object_get(m, "entries");
    if (!json_is_array(entries)) {
        json_decref(m);
        return rd_error_set(err, RD_E_REMOTE, "the UNLOAD manifest s3://%s/%smanifest is not readable", j->bucket,
                            j->prefix);
    }
    size_t blen = strlen(j->bucket);
    for (size_t i = 0; i < json_array_size(entries) && st == RD_OK; i++) {
        json_t *e = json_array_get(entries, i);
        const char *url = json_string_value(json_object_get(e, "url"));
        json_t *meta = json_object_get(e, "meta");
        json_t *len = json_object_get(meta, "content_length"), *rc = json_object_get(meta, "record_count");
        if (!url || strncmp(url, "s3://", 5) != 0 || strncmp(url + 5, j->bucket, blen) != 0 ||
            url[5 + blen] != '/' || !json_is_integer(len)) {
            st = rd_error_set(err, RD_E_REMOTE, "manifest entry %zu has no usable url/content_length", i + 1);
            break;
        }
        uint64_t records = json_is_integer(rc) ? (uint64_t)json_integer_value(rc) : 0;
        j->manifest_rows += records;
        if (add_file(j, url + 6 + blen, (uint64_t)json_integer_value(len), records) != RD_OK)
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    json_decref(m);
    j->have_manifest = st == RD_OK;
    return st;
}

static rd_status list_files(job *j, rd_error *err)
{
    rd_s3_object_list l = { 0 };
    rd_status st = rd_s3_list(&j->s3c, j->bucket, j->prefix, &l, err);
    for (size_t i = 0; st == RD_OK && i < l.count; i++) {
        size_t n = strlen(l.items[i].key);
        if (n >= 8 && strcmp(l.items[i].key + n - 8, "manifest") == 0)
            continue;
        if (add_file(j, l.items[i].key, l.items[i].size, 0) != RD_OK)
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    rd_s3_object_list_free(&l);
    if (st != RD_OK)
        rd_error_prefix(err, "listing the staged files (ListObjectsV2, needs s3:ListBucket): ");
    return st;
}

/* Deletes everything under the unique prefix. */
static rd_status cleanup_staging(job *j, rd_error *err)
{
    if (!j->staged || !j->prefix || j->o->keep_staging)
        return RD_OK;
    double t = rd_monotonic_seconds();
    size_t deleted = 0;
    rd_status st = rd_s3_delete_prefix(&j->s3c, j->bucket, j->prefix, &deleted, NULL, err);
    j->r->staged_deleted += deleted;
    j->r->cleanup_s = secs_since(t);
    j->staging_cleaned = st == RD_OK;
    return st;
}

/* ---- download + load ---------------------------------------------------------------------------------- */

#define LOAD_BATCH_MAX 256

static const char *base_name(const char *key)
{
    const char *s = strrchr(key, '/');
    return s ? s + 1 : key;
}

/* The loader thread: takes every finished file queued so far (DuckDB reads a batch in parallel, where one
 * file at a time would use one core), appends them to the staging table, deletes them. */
static void *loader_main(void *arg)
{
    job *j = arg;
    rd_sink_file batch[LOAD_BATCH_MAX];
    size_t idx[LOAD_BATCH_MAX];
    pthread_mutex_lock(&j->mu);
    for (;;) {
        /* wait for a batch worth loading: enough files for DuckDB's threads, or half the disk budget, or
         * everything admitted has arrived (nothing else can come until we make room), or the end */
        for (;;) {
            size_t queued = j->qtail - j->qhead;
            uint64_t queued_bytes = 0;
            for (size_t k = j->qhead; k < j->qtail; k++)
                queued_bytes += j->files[j->queue[k]].size;
            if (j->loader_failed || j->producer_done || queued >= j->batch_files ||
                queued_bytes * 2 >= j->budget || (queued > 0 && queued_bytes >= j->outstanding))
                break;
            pthread_cond_wait(&j->cv, &j->mu);
        }
        if (j->loader_failed || (j->qhead == j->qtail && j->producer_done))
            break;
        size_t n = 0;
        uint64_t expect = 0, bytes = 0;
        while (j->qhead < j->qtail && n < LOAD_BATCH_MAX) {
            idx[n] = j->queue[j->qhead++];
            const file_entry *f = &j->files[idx[n]];
            batch[n] = (rd_sink_file){ f->local, base_name(f->key),
                                       j->have_manifest ? f->records : RD_SINK_ROWS_UNKNOWN };
            expect += j->files[idx[n]].records;
            bytes += j->files[idx[n]].size;
            n++;
        }
        pthread_mutex_unlock(&j->mu);
        uint64_t rows = 0;
        rd_error e;
        rd_error_clear(&e);
        rd_status st = cancelled(j) ? rd_error_set(&e, RD_E_CANCELLED, "interrupted")
                                    : rd_sink_load(j->sink, batch, n, &rows, &e);
        if (st == RD_OK && j->have_manifest && rows != expect)
            st = rd_error_set(&e, RD_E_REMOTE, "%zu file%s starting with s3://%s/%s hold %llu rows, the manifest "
                              "says %llu", n, n == 1 ? "" : "s", j->bucket, j->files[idx[0]].key,
                              (unsigned long long)rows, (unsigned long long)expect);
        for (size_t k = 0; k < n; k++)
            unlink(batch[k].path); /* what the sink did not take */
        pthread_mutex_lock(&j->mu);
        j->outstanding -= bytes;
        j->rows_loaded += rows;
        if (st != RD_OK) {
            j->loader_failed = 1;
            j->loader_st = st;
            j->loader_err = e;
            if (st != RD_E_CANCELLED)
                rd_error_prefix(&j->loader_err, "%s", j->sink->load_step);
        }
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static int on_admit(void *ctx, const rd_transfer_item *item)
{
    job *j = ctx;
    file_entry *f = item->user;
    pthread_mutex_lock(&j->mu);
    int ok = j->outstanding == 0 || j->outstanding + f->size <= j->budget;
    if (ok)
        j->outstanding += f->size;
    pthread_mutex_unlock(&j->mu);
    return ok;
}

static rd_status on_done(void *ctx, const rd_transfer_item *item, rd_status st, const rd_error *err)
{
    (void)err;
    job *j = ctx;
    if (st != RD_OK)
        return st;
    file_entry *f = item->user;
    pthread_mutex_lock(&j->mu);
    rd_status out = RD_OK;
    if (j->loader_failed)
        out = j->loader_st;
    else
        j->queue[j->qtail++] = (size_t)(f - j->files);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return out;
}

typedef struct prog_ctx {
    job *j;
    uint64_t total;
} prog_ctx;

static void on_progress(void *ctx, uint64_t bytes, size_t done, size_t total)
{
    prog_ctx *p = ctx;
    pthread_mutex_lock(&p->j->mu);
    uint64_t rows = p->j->rows_loaded;
    pthread_mutex_unlock(&p->j->mu);
    report(p->j,
           (rd_ingest_progress){ .phase = RD_PHASE_DOWNLOAD, .files_done = done, .files_total = total,
                                 .bytes_done = bytes, .bytes_total = p->total, .rows_loaded = rows },
           0);
}

static rd_status on_sign(void *ctx, const rd_transfer_item *item, uint64_t offset, uint64_t length,
                         const char *if_match, char **url, rd_headers *h, rd_error *err)
{
    job *j = ctx;
    file_entry *f = item->user;
    /* RD_TRANSFER_SIZE_UNKNOWN is UINT64_MAX, the S3 client's "to the end" */
    return rd_s3_prepare_get(&j->s3c, j->bucket, f->key, offset, length, if_match, url, h, err);
}

static rd_status download_all(job *j, const char *dir, rd_error *err)
{
    phase_start(j);
    rd_transfer_item *items = calloc(j->nfiles ? j->nfiles : 1, sizeof *items);
    j->queue = calloc(j->nfiles ? j->nfiles : 1, sizeof *j->queue);
    if (!items || !j->queue) {
        free(items);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    uint64_t total = 0;
    for (size_t i = 0; i < j->nfiles; i++) {
        rd_buf p = RD_BUF_INIT;
        rd_buf_printf(&p, "%s/%06zu.parquet", dir, i);
        j->files[i].local = rd_buf_detach(&p);
        items[i].name = j->files[i].key;
        items[i].expected_size = j->files[i].size;
        items[i].local_path = j->files[i].local;
        items[i].user = &j->files[i];
        total += j->files[i].size;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, loader_main, j) != 0) {
        free(items);
        return rd_error_set(err, RD_E_INTERNAL, "cannot start the loader thread");
    }
    prog_ctx pc = { j, total };
    rd_transfer_options to = { 0 };
    to.concurrency = j->o->concurrency > 0 ? j->o->concurrency : RD_INGEST_DEFAULT_CONCURRENCY;
    to.sign = on_sign;
    to.sign_ctx = j;
    to.done = on_done;
    to.done_ctx = j;
    to.admit = on_admit;
    to.admit_ctx = j;
    to.progress = on_progress;
    to.progress_ctx = &pc;
    to.cancel = j->o->cancel;
    to.log = j->log;
    to.http = j->s3c.http; /* the session's transport: its TLS settings, user agent and proxies */
    to.disk_full_hint = j->sink->download_hint;
    rd_transfer_stats ts = { 0 };
    rd_status st = rd_transfer_run(items, j->nfiles, &to, &ts, err);
    pthread_mutex_lock(&j->mu);
    j->producer_done = 1;
    if (st != RD_OK)
        j->loader_failed = 1; /* stop loading what is queued */
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(th, NULL);
    if (st == RD_OK && j->loader_st != RD_OK) {
        st = j->loader_st;
        if (err)
            *err = j->loader_err;
    } else if (st != RD_OK && j->loader_st != RD_OK && j->loader_st != RD_E_CANCELLED && err) {
        *err = j->loader_err; /* the loader's error is the cause the transfer stopped for */
        st = j->loader_st;
    }
    if (st != RD_OK && st != RD_E_CANCELLED && j->loader_st == RD_OK)
        rd_error_prefix(err, "downloading the staged files: ");
    for (size_t i = 0; i < j->nfiles; i++)
        unlink(j->files[i].local);
    j->r->bytes = ts.bytes;
    j->r->files = ts.files;
    j->r->retries = ts.retries;
    j->r->resumes = ts.resumes;
    j->r->download_s = secs_since(j->phase_t0);
    report(j,
           (rd_ingest_progress){ .phase = RD_PHASE_DOWNLOAD, .files_done = ts.files, .files_total = j->nfiles,
                                 .bytes_done = ts.bytes, .bytes_total = total, .rows_loaded = j->rows_loaded },
           1);
    free(items);
    return st;
}

/* ---- the two paths -------------------------------------------------------------------------------------- */

/* After rd_sink_commit: a signal that came once COMMIT was issued let it finish; say so, exit as interrupted. */
static rd_status committed(job *j, rd_status st, rd_error *err)
{
    if (st == RD_OK && cancelled(j))
        return rd_error_set(err, RD_E_CANCELLED, "interrupted during commit: %s", j->sink->committed_note);
    return st;
}

/* The sink for the job: the Parquet directory (--format parquet), else the DuckDB table in the target. */
static rd_status open_sink(job *j, rd_error *err)
{
    if (j->o->format_parquet)
        return rd_sink_open_dir(j->o->into, &j->sink, err);
    rd_target *t = j->o->target ? j->o->target : j->tgt;
    rd_sink_options so = { .path = j->db_path,
                           .table = j->table,
                           .threads = j->o->duckdb_threads,
                           .memory = rd_target_memory(t),
                           .shared_db = rd_target_database(t),
                           .append = j->o->append,
                           .unique_key = j->o->unique_key,
                           .fast_compression = j->o->fast_compression,
                           .disk_full_hint = j->r->via_data_api ? "free space, or raise --memory-limit (DuckDB "
                                                                  "spills beyond it)"
                                                                : "free space or lower --max-local-bytes",
                           .cancel = j->o->cancel,
                           .log = j->log };
    rd_status st = rd_sink_open(&so, &j->plan, &j->sink, err);
    return st;
}

/* The download directory: next to the DuckDB file, or inside the Parquet directory (so that the sink's
 * moves are renames on one file system). */
static rd_status make_tmpdir(job *j, rd_error *err)
{
    char dir[PATH_MAX - 32];
    if (j->db_path) {
        snprintf(dir, sizeof dir, "%s", j->db_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[1] = '\0';
        else
            dir[0] = '\0';
    } else {
        snprintf(dir, sizeof dir, "%s/", j->o->into);
    }
    snprintf(j->tmpdir, sizeof j->tmpdir, "%s.redduck-tmp-XXXXXX", dir);
    if (!mkdtemp(j->tmpdir)) {
        rd_status st = rd_error_set(err, RD_E_IO, "cannot create a download directory %s %s: %s",
                                    j->db_path ? "next to" : "in", j->db_path ? j->db_path : j->o->into,
                                    strerror(errno));
        j->tmpdir[0] = '\0';
        return st;
    }
    return RD_OK;
}

static void on_lock_wait(void *ctx, const char *message)
{
    job *j = ctx;
    rd_log_write(j->log, RD_LOG_WARN, "%s", message);
}

/* Before any Redshift work: the DuckDB file's lock (held by another process, it would fail the job only
 * after the whole UNLOAD), then the download directories dead runs of this target left. */
static rd_status lock_target(job *j, rd_error *err)
{
    if (!j->o->target) {
        rd_target_options to = { .path = j->db_path,
                                 .lock_timeout_s = j->o->lock_timeout_s,
                                 .waiting = on_lock_wait,
                                 .waiting_ctx = j,
                                 .cancel = j->o->cancel,
                                 .threads = j->o->duckdb_threads,
                                 .memory = j->o->duckdb_memory };
        rd_status st = rd_target_open(&to, &j->tgt, err);
        if (st != RD_OK)
            return st;
    }
    rd_target_sweep_result sr = { 0 };
    rd_target_sweep(j->db_path, NULL, NULL, j->log, &sr);
    return RD_OK;
}

/* Notes location in the target's ledger, so that the next run sweeps it if this one dies. */
static rd_status record(job *j, rd_target_kind kind, const char *location, int *recorded, rd_error *err)
{
    rd_status st = rd_target_ledger_add(j->db_path, kind, location, err);
    if (st == RD_OK)
        *recorded = 1;
    return st;
}

static rd_status via_unload(job *j, rd_error *err)
{
    rd_status st = make_prefix(j, err);
    if (st == RD_OK)
        st = bucket_region(j, err);
    if (st == RD_OK && j->db_path) {
        rd_target_sweep_result sr = { 0 };
        rd_target_sweep(j->db_path, &j->s3c, j->bucket, j->log, &sr);
    }
    if (st == RD_OK)
        st = probe(j, err);
    if (st != RD_OK)
        return st;
    /* the UNLOAD */
    phase_start(j);
    rd_buf sel = RD_BUF_INIT, sql = RD_BUF_INIT;
    int encoded = rd_plan_unload_select(&j->plan, &sel);
    rd_buf dest = RD_BUF_INIT;
    rd_buf_printf(&dest, "s3://%s/%s", j->bucket, j->prefix);
    rd_unload_request ur = { 0 };
    ur.sql = j->o->sql;
    ur.table = j->o->table;
    ur.select_list = encoded ? rd_buf_cstr(&sel) : NULL;
    ur.destination = rd_buf_cstr(&dest);
    ur.iam_role = j->o->iam_role;
    ur.max_file_size_mb = j->o->max_file_size_mb;
    ur.kms_key_id = j->o->kms_key;
    ur.region = strcmp(j->bucket_region, j->region) != 0 ? j->bucket_region : NULL;
    ur.where = j->o->filter;
    st = rd_unload_sql_build(&ur, &sql, err);
    if (st == RD_OK && (rd_buf_failed(&sel) || rd_buf_failed(&dest)))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_buf_free(&sel);
    rd_buf_free(&dest);
    rd_rsd_description d = { 0 };
    char id[64] = "";
    if (st == RD_OK && j->db_path && !j->o->keep_staging)
        st = record(j, RD_TARGET_PREFIX, j->r->staging_url, &j->ledger_prefix, err);
    if (st == RD_OK) {
        j->staged = 1;
        if (j->log)
            rd_log_write(j->log, RD_LOG_INFO, "UNLOAD to %s", j->r->staging_url);
        st = run_statement(j, rd_buf_cstr(&sql), RD_PHASE_UNLOAD, "UNLOAD", id, &d, err);
    }
    rd_buf_free(&sql);
    int64_t unloaded = d.result_rows;
    rd_rsd_description_free(&d);
    j->r->unload_s = secs_since(j->phase_t0);
    if (st != RD_OK)
        return st;
    report(j, (rd_ingest_progress){ .phase = RD_PHASE_UNLOAD, .status = "FINISHED" }, 1);

    st = read_manifest(j, err);
    if (st == RD_E_NOT_FOUND) {
        rd_error_clear(err);
        files_free(j);
        st = list_files(j, err);
    } else if (st != RD_OK) {
        rd_error_prefix(err, "reading the UNLOAD manifest: ");
    }
    if (st != RD_OK)
        return st;
    uint64_t expected = j->have_manifest ? j->manifest_rows : unloaded >= 0 ? (uint64_t)unloaded : 0;
    if (!j->have_manifest && j->nfiles > 0 && unloaded < 0)
        return rd_error_set(err, RD_E_REMOTE, "UNLOAD wrote no manifest and reported no row count: cannot verify");

    if ((st = open_sink(j, err)) != RD_OK || (st = make_tmpdir(j, err)) != RD_OK ||
        (j->db_path && (st = record(j, RD_TARGET_DIR, j->tmpdir, &j->ledger_dir, err)) != RD_OK))
        return st;
    st = download_all(j, j->tmpdir, err);
    if (st != RD_OK)
        return st;
    phase_start(j);
    report(j, (rd_ingest_progress){ .phase = RD_PHASE_COMMIT, .rows_loaded = rd_sink_rows(j->sink) }, 1);
    if (j->log)
        rd_log_write(j->log, RD_LOG_INFO, "commit: verifying %llu rows, then %s",
                     (unsigned long long)rd_sink_rows(j->sink), j->sink->commit_step);
    st = rd_sink_commit(j->sink, expected, err);
    j->r->commit_s = secs_since(j->phase_t0);
    if (st == RD_OK)
        j->r->rows = expected;
    return committed(j, st, err);
}

static rd_status via_data_api(job *j, rd_error *err)
{
    j->r->via_data_api = 1;
    phase_start(j);
    char id[64] = "";
    int64_t total = 0;
    rd_status st = run_select(j, 0, id, &total, err);
    if (st != RD_OK)
        return st;
    uint64_t max = j->o->data_api_max_rows ? j->o->data_api_max_rows : 1000000;
    if (total > 0 && (uint64_t)total > max)
        return rd_error_set(err, RD_E_USAGE,
                            "the result has %lld rows, more than the Data API path takes (%llu): give a staging "
                            "location (--staging s3://bucket/prefix) to UNLOAD it instead",
                            (long long)total, (unsigned long long)max);
    j->r->unload_s = secs_since(j->phase_t0);
    phase_start(j);
    char *token = NULL;
    uint64_t reported = 0;
    int first = 1;
    do {
        json_t *page = NULL;
        st = get_page(j, id, token, &page, "fetching the result", err);
        free(token);
        token = NULL;
        if (st != RD_OK)
            break;
        if (first) {
            first = 0;
            json_t *n = json_object_get(page, "TotalNumRows");
            reported = json_is_integer(n) ? (uint64_t)json_integer_value(n) : (total > 0 ? (uint64_t)total : 0);
            st = rd_plan_from_metadata(json_object_get(page, "ColumnMetadata"), &j->plan, err);
            if (st == RD_OK)
                st = open_sink(j, err);
        }
        uint64_t rows = 0;
        if (st == RD_OK)
            st = rd_sink_append_records(j->sink, json_object_get(page, "Records"), &rows, err);
        const char *nt = json_string_value(json_object_get(page, "NextToken"));
        if (st == RD_OK && nt && *nt)
            token = strdup(nt);
        json_decref(page);
        if (st == RD_OK)
            report(j, (rd_ingest_progress){ .phase = RD_PHASE_FETCH, .rows_loaded = rd_sink_rows(j->sink) }, 0);
        if (st == RD_OK && cancelled(j))
            st = rd_error_set(err, RD_E_CANCELLED, "interrupted");
    } while (st == RD_OK && token);
    free(token);
    j->r->download_s = secs_since(j->phase_t0);
    if (st != RD_OK)
        return st;
    phase_start(j);
    st = rd_sink_commit(j->sink, reported, err);
    j->r->commit_s = secs_since(j->phase_t0);
    if (st == RD_OK)
        j->r->rows = reported;
    return committed(j, st, err);
}

void rd_ingest_filter_after(rd_buf *out, const char *column, const char *value)
{
    rd_plan_quote_ident(out, column);
    rd_buf_puts(out, " > '");
    rd_unload_sql_quote_literal(out, value);
    rd_buf_putc(out, '\'');
}

static const char *default_table(const rd_ingest_options *o)
{
    if (o->table) {
        const char *dot = strrchr(o->table, '.');
        return dot ? dot + 1 : o->table;
    }
    return "result";
}

rd_status rd_ingest(rd_session *s, const rd_ingest_options *o, rd_ingest_result *r, rd_error *err)
{
    memset(r, 0, sizeof *r);
    job j;
    memset(&j, 0, sizeof j);
    j.s = s;
    j.o = o;
    j.r = r;
    j.log = rd_session_log(s);
    j.budget = o->max_local_bytes ? o->max_local_bytes : (1ull << 30);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->duckdb_threads > 0 ? o->duckdb_threads : ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
    j.batch_files = threads * 2 < 4 ? 4 : (size_t)threads * 2;
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.cv, NULL);
    j.t0 = rd_monotonic_seconds();

    rd_status st = RD_OK;
    rd_ingest_via via = o->via;
    if (via == RD_VIA_AUTO)
        via = o->staging && *o->staging ? RD_VIA_UNLOAD : RD_VIA_DATA_API;
    if ((!o->sql) == (!o->table))
        st = rd_error_set(err, RD_E_USAGE, "give either --sql 'select ...' or --table schema.name");
    else if (!o->into || !*o->into)
        st = rd_error_set(err, RD_E_USAGE, "no target given: pass --into FILE.duckdb[:table]");
    else if (via == RD_VIA_UNLOAD && (!o->staging || !*o->staging))
        st = rd_error_set(err, RD_E_USAGE, "UNLOAD needs a staging location: pass --staging s3://bucket/prefix");
    else if (o->format_parquet && via != RD_VIA_UNLOAD)
        st = rd_error_set(err, RD_E_USAGE, "--format parquet needs the UNLOAD path (--staging s3://bucket/prefix)");
    j.target.workgroup = o->workgroup;
    j.target.cluster_id = o->cluster_id;
    j.target.db_user = o->db_user;
    j.target.secret_arn = o->secret_arn;
    j.target.database = o->database && *o->database ? o->database : "dev";
    if (st == RD_OK)
        st = rd_rsd_target_check(&j.target, err);
    if (st == RD_OK && !o->format_parquet) {
        st = rd_sink_parse_into(o->into, default_table(o), &j.db_path, &j.table, err);
        if (st == RD_OK)
            snprintf(r->table, sizeof r->table, "%s", j.table);
    }
    if (st == RD_OK && !o->format_parquet)
        st = lock_target(&j, err);
    const char *src = NULL;
    if (st == RD_OK)
        st = rd_session_region(s, &j.region, &src, err);
    if (st == RD_OK) {
        rd_session_client(s, j.region, &j.data);
        /* a long job rides out more throttling than one CLI call: at least RD_INGEST_MIN_ATTEMPTS */
        int attempts = rd_aws_client_max_attempts(&j.data);
        j.data.max_attempts = attempts < RD_INGEST_MIN_ATTEMPTS ? RD_INGEST_MIN_ATTEMPTS : attempts;
        st = via == RD_VIA_UNLOAD ? via_unload(&j, err) : via_data_api(&j, err);
    }

    /* cleanup, whatever happened */
    if (j.staged && !o->keep_staging) {
        phase_start(&j);
        report(&j, (rd_ingest_progress){ .phase = RD_PHASE_CLEANUP }, 1);
        rd_error ce;
        rd_error_clear(&ce);
        if (cleanup_staging(&j, &ce) != RD_OK) {
            if (st == RD_OK) {
                st = ce.code;
                *err = ce;
                rd_error_prefix(err, "the data is loaded, but deleting the staged files failed (delete %s by hand): ",
                                r->staging_url);
            } else if (j.log) {
                rd_log_write(j.log, RD_LOG_WARN, "could not delete the staged files under %s: %s", r->staging_url,
                             ce.message);
            }
        }
    }
    if (st == RD_OK && cancelled(&j)) /* the job was done when the signal came: exit as interrupted all the same */
        st = o->format_parquet ? rd_error_set(err, RD_E_CANCELLED, "interrupted at the end: the files in %s are "
                                              "complete", o->into)
                               : rd_error_set(err, RD_E_CANCELLED, "interrupted after the commit: the new table "
                                              "was committed");
    if (st == RD_E_CANCELLED && err && strncmp(err->message, "interrupted", 11) != 0)
        rd_error_prefix(err, "interrupted: ");
    if (st == RD_E_CANCELLED && err && j.staged && !o->keep_staging && r->staged_deleted > 0 && !j.unload_may_run) {
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "%s", err->message);
        rd_error_set(err, RD_E_CANCELLED, "%s; the staged files were deleted", msg);
    }
    rd_sink_close(j.sink);
    /* a prefix not emptied (or that an UNLOAD whose cancel failed may still write to), or a directory not
     * removed, stays in the ledger for the next run to sweep */
    if (j.ledger_prefix && (!j.staged || j.staging_cleaned) && !j.unload_may_run)
        rd_target_ledger_remove(j.db_path, r->staging_url);
    if (j.tmpdir[0] && (rmdir(j.tmpdir) == 0 || errno == ENOENT) && j.ledger_dir)
        rd_target_ledger_remove(j.db_path, j.tmpdir);
    rd_target_close(j.tgt);
    files_free(&j);
    free(j.queue);
    rd_plan_free(&j.plan);
    free(j.db_path);
    free(j.table);
    free(j.bucket);
    free(j.prefix);
    pthread_mutex_destroy(&j.mu);
    pthread_cond_destroy(&j.cv);
    r->total_s = secs_since(j.t0);
    return st;
}
