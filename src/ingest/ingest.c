/* ingest.c — the pipeline behind rd_ingest (see redduck/ingest.h): probe → UNLOAD, during which the
 * staging prefix is listed about once a second and every part file that has appeared is downloaded (big
 * ones as ranged GETs) and appended by a loader thread to the DuckDB staging table (local disk bounded by
 * admission) → the manifest settles what counts: files it does not name are dropped (one already loaded
 * makes the staging table start over from the manifest), those no listing saw are fetched, per-batch row
 * counts are checked against it → verify + swap → delete the staged objects. Or the Data API path. Owns
 * the job's temporary directory, the transfer and the loader thread; everything else is borrowed from the
 * session. Threads: the caller's (statements, listings, the transfer and its callbacks) and the loader;
 * what they share is under the job's mutex. */
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
    uint64_t records;     /* from the manifest; 0 until it is read */
    char *local;
    char etag[80];        /* as listed ("" when only the manifest named it) */
    int in_manifest;      /* named by the manifest (once read) */
    int queued;           /* added to the transfer */
    /* under the job's mu: */
    int excluded;         /* not in the manifest: never loaded (dropped when it arrives) */
    int taken;            /* taken into a load batch by the loader */
    size_t batch;         /* 1 + the index of the batch that loaded it; 0: none */
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
    file_entry **files;       /* every part file seen (listed during the UNLOAD, or in the manifest); the
                                 entries stay put: the transfer and the loader hold pointers to them */
    size_t nfiles, files_cap;
    file_entry **by_key;      /* the same, sorted by key */
    uint64_t manifest_rows;
    int have_manifest;
    char tmpdir[PATH_MAX];
    rd_sink *sink;            /* the DuckDB table or the Parquet directory: the pipeline only calls its vtable */
    rd_target *tgt;           /* the DuckDB file, opened first to hold its lock (unless the caller shares one) */
    int ledger_prefix, ledger_dir; /* 1 while the staging prefix / tmpdir is recorded in the target's ledger */
    int staging_cleaned;      /* 1 when cleanup_staging emptied the prefix */
    int unload_done;          /* 1 once the UNLOAD statement ended */
    char unload_status[32];   /* its last status, for progress */
    double t0, phase_t0;      /* monotonic seconds: job start, phase start */

    rd_transfer *xfer;        /* the downloads, driven from this thread (during the UNLOAD by its nap) */
    uint64_t xfer_total;      /* bytes of the files added to it */
    long long next_list_ms;   /* when to list the staging prefix again while the UNLOAD runs */
    int loader_started;
    pthread_t loader;

    /* loader thread (DuckDB side); everything below under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    file_entry **queue;       /* finished files, in the order they finished */
    size_t qhead, qtail, qcap;
    uint64_t *batch_rows;     /* rows each load batch took */
    size_t nbatches, batches_cap;
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

static rd_status overlap_nap(void *ctx, long ms, rd_error *err);
#define OVERLAP_POLL_MS 250

/* ---- Redshift statements ---------------------------------------------------------------------------- */

typedef struct tick_ctx {
    job *j;
    rd_ingest_phase phase;
} tick_ctx;

static void on_tick(void *ctx, const char *status, long elapsed_ms)
{
    (void)elapsed_ms;
    tick_ctx *t = ctx;
    if (t->phase == RD_PHASE_UNLOAD)
        snprintf(t->j->unload_status, sizeof t->j->unload_status, "%s", status ? status : "");
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
    if (phase == RD_PHASE_UNLOAD && j->ledger_prefix) { /* so that a next run stops it before its sweep */
        rd_error le;
        rd_error_clear(&le);
        if (rd_target_ledger_add_statement(j->db_path, j->r->staging_url, id, &le) != RD_OK)
            rd_log_write(j->log, RD_LOG_WARN, "%s", le.message);
    }
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
        if (j->xfer && !j->o->no_overlap) {
            wo.nap = overlap_nap;
            wo.nap_ctx = j;
            /* the last part files are waiting to be fetched when the statement ends: see it sooner than
             * the 1 s cap (4 DescribeStatement calls a second, well within the Data API's rate) */
            wo.max_poll_ms = OVERLAP_POLL_MS;
        }
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
        free(j->files[i]->key);
        free(j->files[i]->local);
        free(j->files[i]);
    }
    free(j->files);
    free(j->by_key);
    j->files = j->by_key = NULL;
    j->nfiles = j->files_cap = 0;
}

/* Index in by_key of the first key >= key. */
static size_t key_slot(const job *j, const char *key)
{
    size_t lo = 0, hi = j->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(j->by_key[mid]->key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static file_entry *find_file(const job *j, const char *key)
{
    size_t k = key_slot(j, key);
    return k < j->nfiles && strcmp(j->by_key[k]->key, key) == 0 ? j->by_key[k] : NULL;
}

/* A new part file (key not seen before); NULL when out of memory. */
static file_entry *add_file(job *j, const char *key, uint64_t size, const char *etag)
{
    if (j->nfiles == j->files_cap) {
        size_t cap = j->files_cap ? j->files_cap * 2 : 64;
        file_entry **f = realloc(j->files, cap * sizeof *f);
        if (!f)
            return NULL;
        j->files = f;
        file_entry **k = realloc(j->by_key, cap * sizeof *k);
        if (!k)
            return NULL;
        j->by_key = k;
        j->files_cap = cap;
    }
    file_entry *f = calloc(1, sizeof *f);
    char *local = NULL;
    if (f && j->tmpdir[0]) {
        rd_buf p = RD_BUF_INIT;
        rd_buf_printf(&p, "%s/%06zu.parquet", j->tmpdir, j->nfiles);
        local = rd_buf_detach(&p);
    }
    if (!f || !(f->key = strdup(key)) || (j->tmpdir[0] && !local)) {
        if (f)
            free(f->key);
        free(f);
        free(local);
        return NULL;
    }
    f->local = local;
    f->size = size;
    snprintf(f->etag, sizeof f->etag, "%s", etag ? etag : "");
    size_t k = key_slot(j, key);
    memmove(j->by_key + k + 1, j->by_key + k, (j->nfiles - k) * sizeof *j->by_key);
    j->by_key[k] = f;
    j->files[j->nfiles++] = f;
    return f;
}

static int is_manifest_key(const char *key)
{
    size_t n = strlen(key);
    return n >= 8 && strcmp(key + n - 8, "manifest") == 0;
}

/* One entry of the UNLOAD manifest. */
typedef struct manifest_entry {
    const char *key;      /* borrowed from the parsed manifest */
    uint64_t size, records;
} manifest_entry;

/* Reads <prefix>manifest into *m (json) and its entries; RD_E_NOT_FOUND when there is none (an empty result
 * writes none). */
static rd_status read_manifest(job *j, json_t **m, manifest_entry **out, size_t *n, rd_error *err)
{
    *m = NULL;
    *out = NULL;
    *n = 0;
    rd_buf key = RD_BUF_INIT, body = RD_BUF_INIT;
    rd_buf_printf(&key, "%smanifest", j->prefix);
    rd_status st = rd_s3_get(&j->s3c, j->bucket, rd_buf_cstr(&key), MANIFEST_MAX, &body, err);
    rd_buf_free(&key);
    if (st != RD_OK) {
        rd_buf_free(&body);
        return st;
    }
    json_error_t je;
    *m = json_loadb(body.data ? body.data : "", body.len, 0, &je);
    rd_buf_free(&body);
    json_t *entries = json_object_get(*m, "entries");
    if (!json_is_array(entries))
        return rd_error_set(err, RD_E_REMOTE, "the UNLOAD manifest s3://%s/%smanifest is not readable", j->bucket,
                            j->prefix);
    size_t count = json_array_size(entries);
    *out = calloc(count ? count : 1, sizeof **out);
    if (!*out)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    size_t blen = strlen(j->bucket);
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(entries, i);
        const char *url = json_string_value(json_object_get(e, "url"));
        json_t *meta = json_object_get(e, "meta");
        json_t *len = json_object_get(meta, "content_length"), *rc = json_object_get(meta, "record_count");
        if (!url || strncmp(url, "s3://", 5) != 0 || strncmp(url + 5, j->bucket, blen) != 0 ||
            url[5 + blen] != '/' || !json_is_integer(len) || json_integer_value(len) < 0 ||
            (rc && (!json_is_integer(rc) || json_integer_value(rc) < 0)))
            return rd_error_set(err, RD_E_REMOTE, "manifest entry %zu has no usable url/content_length", i + 1);
        (*out)[i] = (manifest_entry){ url + 6 + blen, (uint64_t)json_integer_value(len),
                                      rc ? (uint64_t)json_integer_value(rc) : 0 };
    }
    *n = count;
    return RD_OK;
}

/* Adds f to the transfer (it starts when admitted). */
static rd_status enqueue_download(job *j, file_entry *f, rd_error *err)
{
    rd_transfer_item it = { .name = f->key, .expected_size = f->size, .local_path = f->local,
                            .etag = f->etag[0] ? f->etag : NULL, .user = f };
    rd_status st = rd_transfer_add(j->xfer, &it, err);
    if (st == RD_OK) {
        j->xfer_total += f->size;
        f->queued = 1;
    }
    return st;
}

/* Lists the staging prefix; every part file not seen before is added (and, with a transfer, queued for
 * download). Objects appear in S3 whole, so a listed file is complete. */
static rd_status list_new_files(job *j, rd_error *err)
{
    rd_s3_object_list l = { 0 };
    rd_status st = rd_s3_list(&j->s3c, j->bucket, j->prefix, &l, err);
    for (size_t i = 0; st == RD_OK && i < l.count; i++) {
        if (is_manifest_key(l.items[i].key) || find_file(j, l.items[i].key))
            continue;
        file_entry *f = add_file(j, l.items[i].key, l.items[i].size, l.items[i].etag);
        if (!f)
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        else if (j->xfer)
            st = enqueue_download(j, f, err);
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
 * file at a time would use one core), appends them to the staging table, deletes them. A file found not to
 * be in the manifest (excluded) is dropped instead. */
static void *loader_main(void *arg)
{
    job *j = arg;
    rd_sink_file batch[LOAD_BATCH_MAX];
    file_entry *fs[LOAD_BATCH_MAX];
    pthread_mutex_lock(&j->mu);
    for (;;) {
        /* wait for a batch worth loading: enough files for DuckDB's threads, or a quarter of the disk budget
         * (one big file: waiting for a second would hold up the downloads the budget admits), or everything
         * admitted has arrived (nothing else can come until we make room), or the end */
        for (;;) {
            size_t queued = j->qtail - j->qhead;
            uint64_t queued_bytes = 0;
            for (size_t k = j->qhead; k < j->qtail; k++)
                queued_bytes += j->queue[k]->size;
            if (j->loader_failed || j->producer_done || queued >= j->batch_files ||
                queued_bytes * 4 >= j->budget || (queued > 0 && queued_bytes >= j->outstanding))
                break;
            pthread_cond_wait(&j->cv, &j->mu);
        }
        if (j->loader_failed || (j->qhead == j->qtail && j->producer_done))
            break;
        size_t n = 0;
        uint64_t bytes = 0;
        while (j->qhead < j->qtail && n < LOAD_BATCH_MAX) {
            file_entry *f = j->queue[j->qhead++];
            bytes += f->size;
            if (f->excluded) {
                unlink(f->local);
                continue;
            }
            f->taken = 1;
            fs[n] = f;
            batch[n] = (rd_sink_file){ f->local, base_name(f->key),
                                       f->in_manifest ? f->records : RD_SINK_ROWS_UNKNOWN };
            n++;
        }
        size_t b = j->nbatches;
        if (n > 0 && j->nbatches == j->batches_cap) {
            size_t cap = j->batches_cap ? j->batches_cap * 2 : 64;
            uint64_t *nb = realloc(j->batch_rows, cap * sizeof *nb);
            if (nb) {
                j->batch_rows = nb;
                j->batches_cap = cap;
            }
        }
        int room = j->nbatches < j->batches_cap;
        if (n > 0 && room) {
            j->batch_rows[b] = 0;
            j->nbatches++;
            for (size_t k = 0; k < n; k++)
                fs[k]->batch = b + 1;
        }
        pthread_mutex_unlock(&j->mu);
        uint64_t rows = 0;
        rd_error e;
        rd_error_clear(&e);
        rd_status st = RD_OK;
        if (n > 0)
            st = !room ? rd_error_set(&e, RD_E_INTERNAL, "out of memory")
                 : cancelled(j) ? rd_error_set(&e, RD_E_CANCELLED, "interrupted")
                                : rd_sink_load(j->sink, batch, n, &rows, &e);
        for (size_t k = 0; k < n; k++)
            unlink(batch[k].path); /* what the sink did not take */
        pthread_mutex_lock(&j->mu);
        j->outstanding -= bytes;
        j->rows_loaded += rows;
        if (n > 0 && room)
            j->batch_rows[b] = rows;
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
    if (cancelled(j) == 0 && j->unload_done == 0)
        j->r->early_files++;
    pthread_mutex_lock(&j->mu);
    rd_status out = RD_OK;
    if (j->loader_failed) {
        out = j->loader_st;
    } else if (f->excluded) {
        unlink(f->local);
        j->outstanding -= f->size;
    } else {
        if (j->qtail == j->qcap) {
            size_t cap = j->qcap ? j->qcap * 2 : 64;
            file_entry **q = realloc(j->queue, cap * sizeof *q);
            if (!q)
                out = RD_E_INTERNAL;
            else {
                j->queue = q;
                j->qcap = cap;
            }
        }
        if (out == RD_OK)
            j->queue[j->qtail++] = f;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return out;
}

static void on_progress(void *ctx, uint64_t bytes, size_t done, size_t total)
{
    job *j = ctx;
    pthread_mutex_lock(&j->mu);
    uint64_t rows = j->rows_loaded;
    pthread_mutex_unlock(&j->mu);
    report(j,
           (rd_ingest_progress){ .phase = j->unload_done ? RD_PHASE_DOWNLOAD : RD_PHASE_UNLOAD,
                                 .status = j->unload_done ? NULL : j->unload_status, .files_done = done,
                                 .files_total = total, .bytes_done = bytes, .bytes_total = j->xfer_total,
                                 .rows_loaded = rows },
           0);
}

static rd_status on_sign(void *ctx, const rd_transfer_item *item, uint64_t offset, uint64_t length,
                         const char *if_match, char **url, rd_headers *h, rd_error *err)
{
    job *j = ctx;
    file_entry *f = item->user;
    return rd_s3_prepare_get(&j->s3c, j->bucket, f->key, offset, length, if_match, url, h, err);
}

/* The transfer (empty) and the loader thread, before anything is downloaded. */
static rd_status start_downloads(job *j, rd_error *err)
{
    rd_transfer_options to = { 0 };
    to.concurrency = j->o->concurrency > 0 ? j->o->concurrency : RD_INGEST_DEFAULT_CONCURRENCY;
    to.part_size = j->o->part_size > 0 ? j->o->part_size : RD_INGEST_DEFAULT_PART_SIZE;
    to.sign = on_sign;
    to.sign_ctx = j;
    to.done = on_done;
    to.done_ctx = j;
    to.admit = on_admit;
    to.admit_ctx = j;
    to.progress = on_progress;
    to.progress_ctx = j;
    to.cancel = j->o->cancel;
    to.log = j->log;
    to.http = j->s3c.http; /* the session's transport: its TLS settings, user agent and proxies */
    to.disk_full_hint = j->sink->download_hint;
    rd_status st = rd_transfer_new(&to, &j->xfer, err);
    if (st != RD_OK)
        return st;
    /* (again after a reload: nothing of the first round counts) */
    j->xfer_total = 0;
    j->qhead = j->qtail = 0;
    j->nbatches = 0;
    j->outstanding = 0;
    j->rows_loaded = 0;
    j->producer_done = 0;
    j->loader_failed = 0;
    j->loader_st = RD_OK;
    if (pthread_create(&j->loader, NULL, loader_main, j) != 0)
        return rd_error_set(err, RD_E_INTERNAL, "cannot start the loader thread");
    j->loader_started = 1;
    return RD_OK;
}

/* Tells the loader nothing more comes (abandon: nor load what is queued) and waits for it to end. */
static void join_loader(job *j, int abandon)
{
    if (!j->loader_started)
        return;
    pthread_mutex_lock(&j->mu);
    j->producer_done = 1;
    if (abandon)
        j->loader_failed = 1; /* stop loading what is queued */
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->loader, NULL);
    j->loader_started = 0;
}

/* Ends the loader (after what is queued, unless abandon) and the transfer; the result's counts. */
static void stop_downloads(job *j, int abandon)
{
    join_loader(j, abandon);
    if (j->xfer) {
        rd_transfer_stats ts = { 0 };
        rd_transfer_get_stats(j->xfer, &ts);
        j->r->bytes += ts.bytes;
        j->r->files += ts.files;
        j->r->retries += ts.retries;
        j->r->resumes += ts.resumes;
        j->r->ranged_files += ts.ranged_files;
        j->r->requests += ts.requests;
        rd_transfer_free(j->xfer);
        j->xfer = NULL;
    }
    for (size_t i = 0; i < j->nfiles; i++)
        if (j->files[i]->local)
            unlink(j->files[i]->local);
}

/* The loader's failure, if any (under mu). */
static rd_status loader_status(job *j, rd_error *err)
{
    pthread_mutex_lock(&j->mu);
    rd_status st = j->loader_failed && j->loader_st != RD_OK ? j->loader_st : RD_OK;
    if (st != RD_OK && err)
        *err = j->loader_err;
    pthread_mutex_unlock(&j->mu);
    return st;
}

#define LIST_INTERVAL_MS 1000

/* rd_rsd_wait's nap while the UNLOAD runs: downloads (and, through the loader, loads) the part files
 * that have appeared, listing the prefix about once a second. */
static rd_status overlap_nap(void *ctx, long ms, rd_error *err)
{
    job *j = ctx;
    long long end = rd_monotonic_ms() + ms;
    rd_status st = RD_OK;
    for (;;) {
        long long now = rd_monotonic_ms();
        if (now >= end || cancelled(j))
            break;
        if (now >= j->next_list_ms) {
            rd_error le;
            rd_error_clear(&le);
            /* a listing that fails here is not fatal: the manifest settles everything at the end */
            if (list_new_files(j, &le) != RD_OK && j->log && le.code != RD_E_INTERNAL)
                rd_log_write(j->log, RD_LOG_DEBUG, "%s", le.message);
            j->next_list_ms = rd_monotonic_ms() + LIST_INTERVAL_MS;
        }
        long left = (long)(end - rd_monotonic_ms());
        if (left <= 0)
            break;
        if (rd_transfer_pending(j->xfer) > 0) {
            if ((st = rd_transfer_step(j->xfer, left < 100 ? left : 100, err)) != RD_OK)
                break;
        } else {
            rd_sleep_ms(left < 20 ? left : 20);
        }
        if ((st = loader_status(j, err)) != RD_OK)
            break;
    }
    if (st != RD_OK && st != RD_E_CANCELLED)
        rd_error_prefix(err, "downloading while the UNLOAD ran: ");
    return st;
}

/* After the UNLOAD: what the manifest names is what gets loaded. Files seen during the UNLOAD that it does
 * not name are excluded; those it names that were not seen are added. *reload = 1 when a file already
 * loaded is not in the manifest, or one differs from it in size: the staging table must be rebuilt from
 * the manifest alone. */
static rd_status reconcile(job *j, const manifest_entry *m, size_t n, int *reload, rd_error *err)
{
    *reload = 0;
    rd_status st = RD_OK;
    pthread_mutex_lock(&j->mu); /* the loader reads in_manifest, records and excluded */
    for (size_t i = 0; i < j->nfiles; i++)
        j->files[i]->in_manifest = 0;
    j->manifest_rows = 0;
    for (size_t i = 0; i < n && st == RD_OK; i++) {
        file_entry *f = find_file(j, m[i].key);
        if (f && f->in_manifest) {
            st = rd_error_set(err, RD_E_REMOTE, "the UNLOAD manifest names s3://%s/%s twice", j->bucket, m[i].key);
            break;
        }
        if (f && f->size != m[i].size) {
            if (j->log)
                rd_log_write(j->log, RD_LOG_WARN, "s3://%s/%s has %llu bytes, its manifest entry says %llu: "
                             "everything is loaded again from the manifest", j->bucket, f->key,
                             (unsigned long long)f->size, (unsigned long long)m[i].size);
            f->size = m[i].size;
            f->etag[0] = '\0';
            *reload = 1;
        }
        if (!f && !(f = add_file(j, m[i].key, m[i].size, NULL))) {
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
            break;
        }
        f->in_manifest = 1;
        f->records = m[i].records;
        j->manifest_rows += m[i].records;
    }
    for (size_t i = 0; i < j->nfiles && st == RD_OK; i++) {
        file_entry *f = j->files[i];
        if (f->in_manifest)
            continue;
        f->excluded = 1;
        if (f->taken)
            *reload = 1;
        if (j->log)
            rd_log_write(j->log, RD_LOG_WARN, "s3://%s/%s is not in the UNLOAD manifest: %s", j->bucket, f->key,
                         f->taken ? "it was loaded already, so everything is loaded again from the manifest"
                                  : "it is not loaded");
    }
    j->have_manifest = st == RD_OK;
    pthread_mutex_unlock(&j->mu);
    return st;
}

/* The rows each load batch took against the manifest's counts of its files. */
static rd_status verify_batches(job *j, rd_error *err)
{
    if (!j->have_manifest || j->o->format_parquet) /* the directory sink counts nothing but the manifest */
        return RD_OK;
    for (size_t b = 0; b < j->nbatches; b++) {
        uint64_t expect = 0;
        size_t n = 0;
        const file_entry *first = NULL;
        for (size_t i = 0; i < j->nfiles; i++) {
            const file_entry *f = j->files[i];
            if (f->batch != b + 1)
                continue;
            expect += f->records;
            if (!first || strcmp(f->key, first->key) < 0)
                first = f;
            n++;
        }
        if (first && j->batch_rows[b] != expect)
            return rd_error_set(err, RD_E_REMOTE, "%zu file%s starting with s3://%s/%s hold %llu rows, the manifest "
                                "says %llu", n, n == 1 ? "" : "s", j->bucket, first->key,
                                (unsigned long long)j->batch_rows[b], (unsigned long long)expect);
    }
    return RD_OK;
}

/* Downloads what is left and waits for the loader to take it all. */
static rd_status finish_downloads(job *j, rd_error *err)
{
    double t0 = rd_monotonic_seconds();
    rd_status st = rd_transfer_finish(j->xfer, err);
    join_loader(j, st != RD_OK);
    rd_status lst = j->loader_st;
    if (lst != RD_OK && (st == RD_OK || lst != RD_E_CANCELLED)) {
        st = lst; /* the loader's error is the cause the transfer stopped for */
        if (err)
            *err = j->loader_err;
    } else if (st != RD_OK && st != RD_E_CANCELLED) {
        rd_error_prefix(err, "downloading the staged files: ");
    }
    stop_downloads(j, 1);
    j->r->download_s += rd_monotonic_seconds() - t0;
    report(j,
           (rd_ingest_progress){ .phase = RD_PHASE_DOWNLOAD, .files_done = j->r->files, .files_total = j->nfiles,
                                 .bytes_done = j->r->bytes, .bytes_total = j->xfer_total,
                                 .rows_loaded = j->rows_loaded },
           1);
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
    rd_target_sweep(j->db_path, NULL, NULL, NULL, NULL, j->log, &sr);
    return RD_OK;
}

/* The sweep's rd_target_stop_fn: an earlier (killed) run's UNLOAD that still runs is cancelled and seen to
 * end (rd_rsd_stop), so that deleting its prefix does not race its last files. */
static int stop_earlier_unload(void *ctx, const char *id)
{
    job *j = ctx;
    rd_error e;
    rd_error_clear(&e);
    rd_rsd_stop_outcome oc = rd_rsd_stop(&j->data, id, &e);
    if (oc == RD_RSD_STOP_CANCELLED)
        rd_log_write(j->log, RD_LOG_WARN, "an earlier run's UNLOAD (statement %s) still ran: cancelled it before "
                     "deleting its files", id);
    else if (oc == RD_RSD_STOP_RUNNING)
        rd_log_write(j->log, RD_LOG_WARN, "an earlier run's UNLOAD (statement %s): %s", id, e.message);
    return oc != RD_RSD_STOP_RUNNING;
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
        rd_target_sweep(j->db_path, &j->s3c, j->bucket, stop_earlier_unload, j, j->log, &sr);
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
    /* the sink, the download directory, the transfer and the loader come first: part files are fetched
     * and loaded as they appear, while the UNLOAD runs */
    if (st == RD_OK)
        st = open_sink(j, err);
    if (st == RD_OK)
        st = make_tmpdir(j, err);
    if (st == RD_OK && j->db_path)
        st = record(j, RD_TARGET_DIR, j->tmpdir, &j->ledger_dir, err);
    if (st == RD_OK)
        st = start_downloads(j, err);
    if (st == RD_OK) {
        j->staged = 1;
        if (j->log)
            rd_log_write(j->log, RD_LOG_INFO, "UNLOAD to %s", j->r->staging_url);
        st = run_statement(j, rd_buf_cstr(&sql), RD_PHASE_UNLOAD, "UNLOAD", id, &d, err);
    }
    j->unload_done = 1;
    rd_buf_free(&sql);
    int64_t unloaded = d.result_rows;
    rd_rsd_description_free(&d);
    j->r->unload_s = secs_since(j->phase_t0);
    if (st != RD_OK)
        return st; /* rd_ingest stops the downloads, aborts the sink and empties the prefix */
    report(j, (rd_ingest_progress){ .phase = RD_PHASE_UNLOAD, .status = "FINISHED" }, 1);
    phase_start(j);

    json_t *mj = NULL;
    manifest_entry *me = NULL;
    size_t mn = 0;
    int reload = 0;
    st = read_manifest(j, &mj, &me, &mn, err);
    if (st == RD_OK) {
        st = reconcile(j, me, mn, &reload, err);
    } else if (st == RD_E_NOT_FOUND) {
        /* no manifest (an empty result writes none): the final listing is the truth */
        rd_error_clear(err);
        st = list_new_files(j, err);
    } else {
        rd_error_prefix(err, "reading the UNLOAD manifest: ");
    }
    free(me);
    json_decref(mj);
    if (st != RD_OK)
        return st;
    uint64_t expected = j->have_manifest ? j->manifest_rows : unloaded >= 0 ? (uint64_t)unloaded : 0;
    if (!j->have_manifest && j->nfiles > 0 && unloaded < 0)
        return rd_error_set(err, RD_E_REMOTE, "UNLOAD wrote no manifest and reported no row count: cannot verify");
    if (reload) {
        /* a loaded file is not what the manifest says: start the staging table over from the manifest */
        stop_downloads(j, 1);
        rd_sink_close(j->sink);
        j->sink = NULL;
        j->r->reloaded = 1;
        for (size_t i = 0; i < j->nfiles; i++)
            j->files[i]->taken = 0, j->files[i]->batch = 0, j->files[i]->queued = 0;
        if ((st = open_sink(j, err)) != RD_OK || (st = start_downloads(j, err)) != RD_OK)
            return st;
    }
    /* what is still to fetch: with a manifest the files it names that no listing saw (reconcile added them),
     * or all of them after a reload or without overlap; without one, the final listing's */
    for (size_t i = 0; i < j->nfiles && st == RD_OK; i++)
        if (!j->files[i]->queued && (!j->have_manifest || j->files[i]->in_manifest))
            st = enqueue_download(j, j->files[i], err);
    if (st != RD_OK)
        return st;
    if ((st = finish_downloads(j, err)) != RD_OK || (st = verify_batches(j, err)) != RD_OK)
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
    stop_downloads(&j, 1);
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
    free(j.batch_rows);
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
