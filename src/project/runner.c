/* runner.c — the project runner (see runner.h): picks the sources, runs them on worker threads through
 * rd_ingest into one shared rd_target, and records each run there. Uses only the public APIs below it. */
#include "redduck/runner.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/fsutil.h"
#include "core/timeutil.h"
#include "redduck/ingest.h"
#include "redduck/session.h"
#include "redduck/target.h"

/* The runner's DuckDB instance is shared by every source: a larger memory limit than one ingest's, and
 * DuckDB's own thread count. */
#define RD_RUN_MEMORY "256MB"
#define RD_RUN_THREADS (-1)

typedef struct runner {
    const rd_project *p;
    const rd_run_options *o;
    rd_target *target;
    const rd_source **selected;
    rd_run_item *items;
    size_t count;
    size_t next;
    pthread_mutex_t mu;
} runner;

void rd_run_report_free(rd_run_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->items && i < r->count; i++)
        free(r->items[i].watermark);
    free(r->items);
    r->items = NULL;
    r->count = r->failed = 0;
}

/* Appends the run to _redduck_runs. A failure is returned (never swallowed): the caller reports it. */
static rd_status record(runner *rn, const rd_source *s, const rd_run_item *it, time_t started, rd_error *err)
{
    rd_run_record rec = { .source = s->name,
                          .table = it->table,
                          .started = started,
                          .status = it->status,
                          .error = it->error.message,
                          .rows = it->rows,
                          .bytes = it->bytes,
                          .files = it->files,
                          .seconds = it->seconds,
                          .incremental = it->incremental,
                          .watermark = it->watermark };
    return rd_target_record_run(rn->target, &rec, err);
}

static int nonempty(const char *s)
{
    return s && *s;
}

rd_status rd_project_session_opts(const rd_project *p, const rd_connector *c, const rd_run_options *o,
                                  rd_session **out, rd_error *err)
{
    *out = NULL;
    int explicit_keys = nonempty(c->aws_access_key_id) && nonempty(c->aws_secret_access_key);
    const char *name = c->name ? c->name : "?";
    rd_buf where = RD_BUF_INIT;
    if (o->env_label)
        rd_buf_puts(&where, o->env_label);
    else
        rd_buf_printf(&where, "%s/.env (`redduck env configure`)", p->dir);
    rd_status st = RD_OK;
    if (!c->allow_host_access && !explicit_keys)
        st = rd_error_set(err, RD_E_CONFIG,
                          "connector %s has allow_host_access: false and no explicit keys: set "
                          "connector.%s.aws_access_key_id and connector.%s.aws_secret_access_key in %s%s",
                          name, name, name, rd_buf_cstr(&where),
                          o->no_host_environment ? "" : ", or allow host credentials");
    else if (nonempty(c->aws_access_key_id) != nonempty(c->aws_secret_access_key))
        st = rd_error_set(err, RD_E_CONFIG,
                          "connector %s sets only one of aws_access_key_id and aws_secret_access_key: set both",
                          name);
    else if (o->no_host_environment && !explicit_keys)
        st = rd_error_set(err, RD_E_CONFIG,
                          "connector %s has no explicit keys and the host's credentials are not used: set "
                          "connector.%s.aws_access_key_id and connector.%s.aws_secret_access_key in %s",
                          name, name, name, rd_buf_cstr(&where));
    else if (o->no_host_environment && !nonempty(c->region))
        st = rd_error_set(err, RD_E_CONFIG,
                          "connector %s has no region and the host's AWS_REGION is not used: set region: in its "
                          "YAML or connector.%s.region in %s",
                          name, name, rd_buf_cstr(&where));
    rd_buf_free(&where);
    if (st != RD_OK)
        return st;
    rd_session_options so = { 0 };
    so.profile = explicit_keys ? NULL : c->profile;
    so.region = c->region;
    char region_source[512];
    snprintf(region_source, sizeof region_source, "connector %s (%s)", name, c->file ? c->file : p->dir);
    so.region_source = region_source;
    so.endpoint_url = o->endpoint_url ? o->endpoint_url : c->endpoint_url;
    if (explicit_keys) {
        so.access_key_id = c->aws_access_key_id;
        so.secret_access_key = c->aws_secret_access_key;
        so.session_token = c->aws_session_token;
    }
    so.verbose = o->verbose;
    so.no_host_environment = o->no_host_environment;
    return rd_session_new(&so, out, err);
}

rd_status rd_project_session(const rd_project *p, const rd_connector *c, const char *endpoint_url, int verbose,
                             rd_session **out, rd_error *err)
{
    rd_run_options o = { 0 };
    o.endpoint_url = endpoint_url;
    o.verbose = verbose;
    return rd_project_session_opts(p, c, &o, out, err);
}

/* The ingest's progress, handed to on_progress with the source's name. */
typedef struct progress_ctx {
    const rd_run_options *o;
    const char *source;
} progress_ctx;

static void on_ingest_progress(void *ctx, const rd_ingest_progress *pr)
{
    progress_ctx *pc = ctx;
    pc->o->on_progress(pc->o->on_progress_ctx, pc->source, pr);
}

static void run_one(runner *rn, const rd_source *s, rd_run_item *it)
{
    const rd_project *p = rn->p;
    double t0 = rd_monotonic_seconds();
    time_t started = time(NULL);
    rd_error *err = &it->error;
    rd_connector c;
    rd_status st = rd_project_effective_connector(p, s, &c, err);
    rd_session *sess = NULL;
    if (st == RD_OK)
        st = rd_project_session_opts(p, &c, rn->o, &sess, err);
    rd_buf into = RD_BUF_INIT, filter = RD_BUF_INIT;
    if (st == RD_OK && s->incremental_column) {
        it->incremental = 1;
        st = rd_target_table_max(rn->target, it->table, s->incremental_column, &it->watermark, err);
        if (st == RD_OK && it->watermark)
            rd_ingest_filter_after(&filter, s->incremental_column, it->watermark);
    }
    rd_ingest_result res;
    memset(&res, 0, sizeof res);
    if (st == RD_OK) {
        rd_buf_printf(&into, "%s:%s", rd_target_path(rn->target), it->table);
        rd_ingest_options io = { 0 };
        io.sql = s->sql;
        io.table = s->table;
        io.into = rd_buf_cstr(&into);
        io.workgroup = c.workgroup;
        io.cluster_id = c.cluster_identifier;
        io.db_user = c.db_user;
        io.secret_arn = c.secret_arn;
        io.database = c.database;
        io.staging = c.output_location;
        io.iam_role = s->iam_role ? s->iam_role : c.role_arn;
        io.kms_key = s->kms_key;
        io.max_file_size_mb = s->max_file_size_mb;
        io.concurrency = s->concurrency;
        io.part_size = s->part_size;
        io.keep_staging = s->keep_staging;
        io.timeout_s = s->timeout_s;
        /* the loader checked both words with the same parsers; absent: auto */
        if (s->via && rd_ingest_parse_via(s->via, &io.via, err) != RD_OK)
            st = rd_error_prefix(err, "`via` ");
        if (st == RD_OK && s->compression && rd_ingest_parse_compression(s->compression, &io.fast_compression,
                                                                          err) != RD_OK)
            st = rd_error_prefix(err, "`compression` ");
        io.filter = filter.len ? rd_buf_cstr(&filter) : NULL;
        io.append = it->incremental;
        io.unique_key = s->unique_key;
        io.target = rn->target;
        io.cancel = rn->o->cancel;
        progress_ctx pc = { rn->o, s->name };
        if (rn->o->on_progress) {
            io.progress = on_ingest_progress;
            io.progress_ctx = &pc;
        }
        if (st == RD_OK)
            st = rd_ingest(sess, &io, &res, err);
    }
    rd_session_free(sess);
    rd_buf_free(&into);
    rd_buf_free(&filter);
    if (st != RD_OK)
        rd_error_prefix(err, "source %s (%s): ", s->name, s->file);
    it->status = st;
    it->rows = res.rows;
    it->bytes = res.bytes;
    it->files = res.files;
    it->probe_s = res.probe_s;
    it->unload_s = res.unload_s;
    it->download_s = res.download_s;
    it->commit_s = res.commit_s;
    it->cleanup_s = res.cleanup_s;
    it->seconds = rd_monotonic_seconds() - t0;
    rd_error rec_err = { 0 };
    if (record(rn, s, it, started, &rec_err) != RD_OK) {
        /* the history is part of the result: a run that cannot be recorded is reported as failed */
        if (st == RD_OK) {
            it->status = rec_err.code;
            rd_error_set(err, rec_err.code, "source %s (%s): loaded %llu rows into %s, but %s", s->name, s->file,
                         (unsigned long long)res.rows, it->table, rec_err.message);
        } else {
            char first[RD_ERROR_MSG_MAX];
            snprintf(first, sizeof first, "%s", err->message);
            rd_error_set(err, st, "%s; and %s", first, rec_err.message);
        }
    }
}

static void *worker(void *arg)
{
    runner *rn = arg;
    for (;;) {
        pthread_mutex_lock(&rn->mu);
        size_t i = rn->next < rn->count ? rn->next++ : SIZE_MAX;
        pthread_mutex_unlock(&rn->mu);
        if (i == SIZE_MAX)
            break;
        rd_run_item *it = &rn->items[i];
        if (rn->o->cancel && *rn->o->cancel) {
            it->status = rd_error_set(&it->error, RD_E_CANCELLED, "source %s: not started (interrupted)",
                                      rn->selected[i]->name);
        } else {
            run_one(rn, rn->selected[i], it);
        }
        if (rn->o->on_done) {
            pthread_mutex_lock(&rn->mu);
            rn->o->on_done(rn->o->on_done_ctx, it);
            pthread_mutex_unlock(&rn->mu);
        }
    }
    return NULL;
}

rd_status rd_project_run(const rd_project *p, const rd_run_options *o, rd_run_report *report, rd_error *err)
{
    memset(report, 0, sizeof *report);
    runner rn;
    memset(&rn, 0, sizeof rn);
    rn.p = p;
    rn.o = o;
    size_t n = o->only && o->nonly ? o->nonly : p->nsources;
    rn.selected = calloc(n ? n : 1, sizeof *rn.selected);
    rn.items = calloc(n ? n : 1, sizeof *rn.items);
    if (!rn.selected || !rn.items) {
        free(rn.selected);
        free(rn.items);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    rd_status st = RD_OK;
    size_t nsel = 0; /* a source named twice runs once (two runs at once would race for its table) */
    for (size_t i = 0; i < n && st == RD_OK; i++) {
        const rd_source *s = o->only && o->nonly ? rd_project_source(p, o->only[i]) : &p->sources[i];
        if (!s) {
            rd_buf known = RD_BUF_INIT;
            for (size_t k = 0; k < p->nsources; k++)
                rd_buf_printf(&known, "%s%s", k ? ", " : "", p->sources[k].name);
            st = rd_error_set(err, RD_E_USAGE, "no source named '%s' in %s (sources: %s)", o->only[i], p->dir,
                              known.len ? rd_buf_cstr(&known) : "none");
            rd_buf_free(&known);
            break;
        }
        size_t j = 0;
        while (j < nsel && rn.selected[j] != s)
            j++;
        if (j < nsel)
            continue;
        rn.selected[nsel] = s;
        rn.items[nsel].source = s->name;
        rn.items[nsel].table = s->table_name ? s->table_name : s->name;
        nsel++;
    }
    n = nsel;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", p->duckdb_path);
    if (st == RD_OK && !o->target && strchr(dir, '/'))
        st = rd_mkdirs(dirname(dir), 0755, err);
    if (st == RD_OK && o->target) {
        rn.target = o->target; /* the caller's, kept open */
    } else if (st == RD_OK) {
        /* the file's lock, before any source starts (redduck/target.h) */
        rd_target_options to = { .path = p->duckdb_path,
                                 .lock_timeout_s = o->lock_timeout_s,
                                 .waiting = o->on_lock_wait,
                                 .waiting_ctx = o->on_lock_wait_ctx,
                                 .cancel = o->cancel,
                                 .threads = RD_RUN_THREADS,
                                 .memory = RD_RUN_MEMORY };
        st = rd_target_open(&to, &rn.target, err);
    }
    if (st == RD_OK)
        st = rd_target_runs_init(rn.target, err);
    if (st != RD_OK) {
        if (!o->target)
            rd_target_close(rn.target);
        free(rn.selected);
        free(rn.items);
        return st;
    }
    rn.count = n;
    pthread_mutex_init(&rn.mu, NULL);
    int par = o->parallel > 0 ? o->parallel : p->parallel > 0 ? p->parallel : 2;
    if ((size_t)par > n)
        par = (int)(n ? n : 1);
    pthread_t th[32];
    int started = 0;
    for (int i = 0; i < par && i < 32; i++)
        if (pthread_create(&th[i], NULL, worker, &rn) == 0)
            started++;
    if (started == 0)
        worker(&rn);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&rn.mu);
    if (!o->target)
        rd_target_close(rn.target);
    free(rn.selected);
    report->items = rn.items;
    report->count = n;
    for (size_t i = 0; i < n; i++)
        if (rn.items[i].status != RD_OK)
            report->failed++;
    return RD_OK;
}
