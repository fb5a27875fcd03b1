/* scheduler.c — the server's refreshes (scheduler.h): one clock thread that reads the projects' active
 * deployments and their schedules and queues the runs that are due, worker threads that run them (one
 * source each, through rd_project_run on the project's one open target, with the variables of prod only),
 * retries as re-queued jobs with a not-before time, snapshots after successes and the notifications. The
 * run history and the schedule state are the store's; this file keeps only what the clock needs. */
#include "server/scheduler.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/fsutil.h"
#include "redduck/buf.h"
#include "redduck/project.h"
#include "redduck/runner.h"
#include "redduck/target.h"
#include "server/api.h"
#include "server/notify.h"

#define ENV_LABEL "the variables of prod (and shared)"
#define DATA_FILE "data.duckdb"
#define SNAPSHOTS_KEPT 3
#define TARGET_MEMORY "256MB"

/* One source of a project's active deployment, as the clock sees it. */
typedef struct src_state {
    char *name, *table;
    rd_schedule sched;
    char schedule[160];  /* rd_schedule_describe */
    int64_t next_ms;     /* the next slot; 0: none */
    int catchup;         /* the slot next_ms was missed while no server ran */
    int busy;            /* a run is queued or running */
} src_state;

typedef struct proj_state {
    char *name;
    int64_t version;     /* the active version the sources are of; 0: none */
    int load_failed;     /* that version's schedules could not be read (logged once) */
    src_state *src;
    size_t nsrc;
    rd_target *target;   /* DATA_DIR/projects/P/data.duckdb, opened at the first run; under target_mu */
    pthread_mutex_t target_mu;
    /* successful runs waiting for a snapshot that includes them (under the scheduler's mu); each is
     * recorded a success (run_end) by the thread that publishes it */
    struct job **snap_jobs;
    size_t nsnap, capsnap;
    int snap_busy;
} proj_state;

typedef struct job {
    struct job *next;
    struct rd_scheduler *s;
    proj_state *proj;
    rd_store_run run;     /* the store's row as it stands (owned strings) */
    int max_attempts;     /* from the first attempt's deployment */
    int64_t backoff_ms;
    int64_t not_before_ms;
    int phase;            /* the last phase logged; -1: none */
    char *webhook;        /* the source's notify: (owned), or NULL */
    int on_failure, on_recovery;
} job;

struct rd_scheduler {
    char *data_dir;
    rd_store *st;
    int max_runs, tick_ms;
    int keep_runs_days;      /* < 0: never prune */
    int64_t pruned_at;       /* when runs were last pruned (the clock thread's; 0: not yet) */
    int64_t (*now_fn)(void *ctx);
    void *now_ctx;
    FILE *log;
    pthread_mutex_t log_mu;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* a job was queued, the clock ticked, or stop */
    pthread_cond_t done_cv;  /* a run ended */
    pthread_cond_t clock_cv; /* stop */
    int stopping;
    volatile sig_atomic_t cancel;
    int started_ticks;       /* ticks done: the first one records catch-up runs */
    proj_state **projects;
    size_t nproj;
    job *head, *tail;

    pthread_t clock_th;
    int clock_started;
    pthread_t *workers;
    int nworkers;
    rd_notify *notify;
};

/* ---- small things ----------------------------------------------------------------------------------------- */

static int64_t now_ms(const rd_scheduler *s)
{
    if (s->now_fn)
        return s->now_fn(s->now_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void slog(rd_scheduler *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void slog(rd_scheduler *s, const char *fmt, ...)
{
    if (!s->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&s->log_mu);
    fputs("redduck server: scheduler: ", s->log);
    vfprintf(s->log, fmt, ap);
    fputc('\n', s->log);
    fflush(s->log);
    pthread_mutex_unlock(&s->log_mu);
    va_end(ap);
}

/* A line of run id's log in the store (a failure to write it goes to the server log). */
static void runlog(rd_scheduler *s, int64_t id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void runlog(rd_scheduler *s, int64_t id, const char *fmt, ...)
{
    rd_buf b = RD_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    char tmp[2048];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    rd_buf_puts(&b, tmp);
    rd_error err;
    rd_error_clear(&err);
    if (rd_buf_failed(&b) || rd_store_run_log_append(s->st, id, rd_buf_cstr(&b), &err) != RD_OK)
        slog(s, "run %" PRId64 ": cannot write its log: %s", id, err.message);
    rd_buf_free(&b);
}

static char *xstrdup(const char *v)
{
    return v ? strdup(v) : NULL;
}

/* DATA_DIR/projects/P[/rest]. */
static char *project_path(const rd_scheduler *s, const char *project, const char *rest)
{
    rd_buf b = RD_BUF_INIT;
    rd_buf_printf(&b, "%s/projects/%s%s%s", s->data_dir, project, rest ? "/" : "", rest ? rest : "");
    return rd_buf_detach(&b);
}

static const char *phase_name(rd_ingest_phase p)
{
    switch (p) {
    case RD_PHASE_PROBE: return "probe";
    case RD_PHASE_UNLOAD: return "unload";
    case RD_PHASE_DOWNLOAD: return "download";
    case RD_PHASE_FETCH: return "fetch";
    case RD_PHASE_COMMIT: return "commit";
    case RD_PHASE_CLEANUP: return "cleanup";
    }
    return "?";
}

/* ---- a deployment, loaded with the variables of prod over shared ------------------------------------------- */

/* The variables of prod over shared as a .env for the loader (rd_dotenv_free wipes the values). */
static rd_status prod_variables(rd_scheduler *s, const char *project, rd_dotenv *out, rd_error *err)
{
    memset(out, 0, sizeof *out);
    rd_store_value *vs = NULL;
    size_t n = 0;
    rd_status st = rd_store_variable_values(s->st, project, RD_ENV_PROD, 1, &vs, &n, err);
    if (st != RD_OK)
        return st;
    if (n && !(out->items = calloc(n, sizeof *out->items)))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    for (int pass = 0; pass < 2 && st == RD_OK; pass++) { /* shared first, then prod's own, which win */
        for (size_t i = 0; i < n && st == RD_OK; i++) {
            if ((vs[i].environment == RD_ENV_SHARED) != (pass == 0))
                continue;
            size_t j = 0;
            while (j < out->count && strcmp(out->items[j].key, vs[i].name) != 0)
                j++;
            rd_dotenv_entry *e = &out->items[j];
            if (j == out->count) {
                if (!(e->key = strdup(vs[i].name))) {
                    st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
                    break;
                }
                e->line = (int)j + 1;
                out->count++;
            }
            if (e->value) {
                OPENSSL_cleanse(e->value, strlen(e->value));
                free(e->value);
            }
            e->value = vs[i].value; /* handed over: rd_dotenv_free wipes it */
            vs[i].value = NULL;
        }
    }
    rd_store_values_free(vs, n);
    if (st != RD_OK)
        rd_dotenv_free(out);
    return st;
}

/* Loads project's active deployment (*version written) as the server runs it: prod's variables, host access
 * off. missing_ok: templates naming a missing variable left as written (for reading schedules only). */
static rd_status load_active(rd_scheduler *s, const char *project, int missing_ok, rd_project *out,
                             int64_t *version, rd_error *err)
{
    rd_store_deployment d;
    memset(&d, 0, sizeof d);
    rd_status st = rd_store_deploy_active(s->st, project, &d, err);
    if (st != RD_OK)
        return st;
    rd_buf dir = RD_BUF_INIT;
    if (d.archive_path && d.archive_path[0] == '/')
        rd_buf_puts(&dir, d.archive_path);
    else
        rd_buf_printf(&dir, "%s/%s", s->data_dir, d.archive_path ? d.archive_path : "");
    rd_dotenv vars;
    if ((st = prod_variables(s, project, &vars, err)) == RD_OK) {
        rd_project_load_options lo = { .env = &vars, .env_label = ENV_LABEL, .missing_templates_ok = missing_ok,
                                       .no_host_access = 1 };
        st = rd_project_load_opts(rd_buf_cstr(&dir), &lo, out, err);
        rd_dotenv_free(&vars);
    }
    if (st == RD_OK)
        *version = d.version;
    rd_buf_free(&dir);
    rd_store_deployment_clear(&d);
    return st;
}

/* ---- the clock's view of the projects (under s->mu) ------------------------------------------------------- */

static void sources_free(src_state *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].table);
        rd_schedule_free(&v[i].sched);
    }
    free(v);
}

static proj_state *project_find(rd_scheduler *s, const char *name)
{
    for (size_t i = 0; i < s->nproj; i++)
        if (strcmp(s->projects[i]->name, name) == 0)
            return s->projects[i];
    return NULL;
}

static proj_state *project_get(rd_scheduler *s, const char *name)
{
    proj_state *p = project_find(s, name);
    if (p)
        return p;
    proj_state **grown = realloc(s->projects, (s->nproj + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    s->projects = grown;
    p = calloc(1, sizeof *p);
    if (!p || !(p->name = strdup(name))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->target_mu, NULL);
    s->projects[s->nproj++] = p;
    return p;
}

static src_state *source_find(proj_state *p, const char *name)
{
    for (size_t i = 0; i < p->nsrc; i++)
        if (strcmp(p->src[i].name, name) == 0)
            return &p->src[i];
    return NULL;
}

static int has_schedule(const rd_schedule *r)
{
    return r->kind != RD_SCHEDULE_NONE && !r->disabled;
}

/* The sources of version of p and their next slots: a source seen for the first time records the last slot
 * before now (its first run is at the next one); one whose recorded slot is followed by a slot already past
 * is due at once (a catch-up run when the server just started). */
static void schedules_load(rd_scheduler *s, proj_state *p, int64_t version, int64_t now)
{
    rd_project proj;
    int64_t loaded = 0;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = load_active(s, p->name, 1, &proj, &loaded, &err);
    if (st != RD_OK || loaded != version) {
        if (st == RD_OK)
            rd_project_free(&proj);
        if (!p->load_failed || p->version != version)
            slog(s, "project %s version %" PRId64 ": cannot read its schedules: %s", p->name, version,
                 st == RD_OK ? "the active version changed meanwhile" : err.message);
        if (st == RD_OK) /* read again at the next tick */
            return;
        sources_free(p->src, p->nsrc);
        p->src = NULL;
        p->nsrc = 0;
        p->version = version;
        p->load_failed = 1;
        return;
    }
    src_state *v = calloc(proj.nsources ? proj.nsources : 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; v && i < proj.nsources; i++) {
        const rd_source *src = &proj.sources[i];
        src_state *x = &v[n];
        x->name = strdup(src->name);
        x->table = strdup(src->table_name ? src->table_name : src->name);
        if (!x->name || !x->table || rd_schedule_copy(&src->refresh, &x->sched, &err) != RD_OK) {
            free(x->name);
            free(x->table);
            continue;
        }
        n++;
        rd_schedule_describe(&x->sched, x->schedule, sizeof x->schedule);
        const src_state *old = source_find(p, x->name);
        x->busy = old ? old->busy : 0;
        if (!has_schedule(&x->sched))
            continue;
        int64_t last = 0, next = 0;
        rd_error e;
        rd_error_clear(&e);
        rd_status gs = rd_store_schedule_get(s->st, p->name, x->name, &last, &e);
        if (gs == RD_E_NOT_FOUND) {
            /* new: nothing runs on deploy; the first run is at the next slot */
            if (rd_schedule_prev(&x->sched, now, &last, &e) != RD_OK)
                last = now;
            rd_error_clear(&e);
            if (rd_store_schedule_set(s->st, p->name, x->name, last, &e) != RD_OK)
                slog(s, "project %s source %s: cannot record its schedule: %s", p->name, x->name, e.message);
        } else if (gs != RD_OK) {
            slog(s, "project %s source %s: cannot read its schedule: %s", p->name, x->name, e.message);
            last = now;
        }
        rd_error_clear(&e);
        if (rd_schedule_next(&x->sched, last, &next, &e) == RD_OK) {
            x->next_ms = next;
            x->catchup = next <= now && s->started_ticks == 0;
        }
    }
    if (!v)
        slog(s, "project %s: out of memory reading its schedules", p->name);
    rd_project_free(&proj);
    sources_free(p->src, p->nsrc);
    p->src = v;
    p->nsrc = n;
    p->version = version;
    p->load_failed = 0;
}

/* Reads project's active version and, when it changed, its sources. The project's state, or NULL (out of
 * memory). *active: it has an active version. */
static proj_state *project_refresh(rd_scheduler *s, const char *name, int64_t now, int *active)
{
    proj_state *p = project_get(s, name);
    *active = 0;
    if (!p)
        return NULL;
    rd_store_deployment d;
    memset(&d, 0, sizeof d);
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_store_deploy_active(s->st, name, &d, &err);
    int64_t version = st == RD_OK ? d.version : 0;
    if (st == RD_OK)
        rd_store_deployment_clear(&d);
    else if (st != RD_E_NOT_FOUND)
        return p; /* the store failed: keep what is known */
    if (version != p->version) {
        if (version == 0) {
            sources_free(p->src, p->nsrc);
            p->src = NULL;
            p->nsrc = 0;
            p->version = 0;
        } else {
            schedules_load(s, p, version, now);
        }
    }
    *active = p->version != 0;
    return p;
}

/* ---- queueing (under s->mu) ------------------------------------------------------------------------------ */

static void job_free(job *j)
{
    if (!j)
        return;
    rd_store_run_clear(&j->run);
    free(j->webhook);
    free(j);
}

static void queue_push(rd_scheduler *s, job *j)
{
    j->next = NULL;
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    pthread_cond_broadcast(&s->work_cv);
}

/* A run of source x of p: queued, or recorded as skipped when one is queued or running. *id (may be NULL) is
 * the run's id. */
static rd_status enqueue(rd_scheduler *s, proj_state *p, src_state *x, rd_run_trigger trigger, const char *by,
                         int64_t now, int64_t *id, rd_error *err)
{
    rd_store_run r;
    memset(&r, 0, sizeof r);
    r.project = p->name;
    r.source = x->name;
    r.table_name = x->table;
    r.version = p->version;
    r.trigger = trigger;
    r.triggered_by = (char *)(by ? by : "scheduler");
    r.queued_at = now;
    r.state = x->busy ? RD_RUN_SKIPPED : RD_RUN_QUEUED;
    if (x->busy) {
        r.finished_at = now;
        r.error = "a run of this source was queued or running";
    }
    int64_t rid = 0;
    rd_status st = rd_store_run_insert(s->st, &r, &rid, err);
    if (st != RD_OK) {
        slog(s, "project %s source %s: cannot record a run: %s", p->name, x->name, err->message);
        return st;
    }
    if (id)
        *id = rid;
    if (x->busy) {
        runlog(s, rid, "skipped (%s%s%s): a run of this source is queued or running", rd_run_trigger_name(trigger),
               trigger == RD_TRIGGER_MANUAL ? ", by " : "", trigger == RD_TRIGGER_MANUAL ? r.triggered_by : "");
        slog(s, "run %" PRId64 " %s/%s skipped (%s): a run of it is queued or running", rid, p->name, x->name,
             rd_run_trigger_name(trigger));
        pthread_cond_broadcast(&s->done_cv);
        return RD_OK;
    }
    job *j = calloc(1, sizeof *j);
    if (j) {
        j->s = s;
        j->proj = p;
        j->run = r;
        j->run.id = rid;
        j->run.project = strdup(p->name);
        j->run.source = strdup(x->name);
        j->run.table_name = strdup(x->table);
        j->run.triggered_by = strdup(r.triggered_by);
        j->run.error = NULL;
        j->phase = -1;
        j->max_attempts = 1;
    }
    if (!j || !j->run.project || !j->run.source || !j->run.table_name || !j->run.triggered_by) {
        job_free(j);
        r.id = rid;
        r.state = RD_RUN_FAILED;
        r.finished_at = now;
        r.error = "out of memory";
        rd_store_run_update(s->st, &r, err);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    char when[32] = "";
    if (trigger == RD_TRIGGER_CATCHUP)
        iso_time(x->next_ms, when);
    if (trigger == RD_TRIGGER_MANUAL)
        runlog(s, rid, "queued (manual, by %s)", r.triggered_by);
    else if (trigger == RD_TRIGGER_CATCHUP)
        runlog(s, rid, "queued (catch-up: the slot of %s passed while no server ran)", when);
    else
        runlog(s, rid, "queued (schedule %s)", x->schedule);
    x->busy = 1;
    queue_push(s, j);
    return RD_OK;
}

/* ---- the clock ----------------------------------------------------------------------------------------------- */

static void tick(rd_scheduler *s)
{
    int64_t now = now_ms(s);
    rd_store_project *ps = NULL;
    size_t np = 0;
    rd_error err;
    rd_error_clear(&err);
    if (rd_store_project_list(s->st, &ps, &np, &err) != RD_OK) {
        slog(s, "cannot list the projects: %s", err.message);
        return;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < np && !s->stopping; i++) {
        int active = 0;
        proj_state *p = project_refresh(s, ps[i].name, now, &active);
        for (size_t k = 0; p && active && k < p->nsrc && !s->stopping; k++) {
            src_state *x = &p->src[k];
            if (!x->next_ms || x->next_ms > now)
                continue;
            /* one run for however many slots passed (a late clock, downtime): the latest one */
            int64_t slot = x->next_ms, next = 0;
            rd_error e;
            rd_error_clear(&e);
            if (rd_schedule_prev(&x->sched, now, &slot, &e) != RD_OK)
                slot = x->next_ms;
            rd_error_clear(&e);
            if (rd_store_schedule_set(s->st, p->name, x->name, slot, &e) != RD_OK)
                slog(s, "project %s source %s: cannot record its slot: %s", p->name, x->name, e.message);
            rd_error_clear(&e);
            enqueue(s, p, x, x->catchup ? RD_TRIGGER_CATCHUP : RD_TRIGGER_SCHEDULE, NULL, now, NULL, &e);
            x->catchup = 0;
            rd_error_clear(&e);
            x->next_ms = rd_schedule_next(&x->sched, slot > now ? now : slot, &next, &e) == RD_OK ? next : 0;
            if (x->next_ms && x->next_ms <= now) /* never due twice in one tick */
                x->next_ms = rd_schedule_next(&x->sched, now, &next, &e) == RD_OK ? next : 0;
        }
    }
    s->started_ticks++;
    pthread_cond_broadcast(&s->work_cv); /* workers waiting for a retry's time look again */
    pthread_mutex_unlock(&s->mu);
    rd_store_projects_free(ps, np);
}

#define PRUNE_EVERY_MS (3600LL * 1000)

/* Retention: at start and hourly, the runs that ended more than keep_runs_days ago go (rd_store_run_prune). */
static void prune_runs(rd_scheduler *s)
{
    int64_t now = now_ms(s);
    if (s->keep_runs_days < 0 || (s->pruned_at && now - s->pruned_at < PRUNE_EVERY_MS))
        return;
    s->pruned_at = now;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    if (rd_store_run_prune(s->st, now - (int64_t)s->keep_runs_days * 86400 * 1000, &n, &err) != RD_OK)
        slog(s, "removing the runs older than %d days failed (retried in an hour): %s", s->keep_runs_days,
             err.message);
    else if (n)
        slog(s, "removed %zu run%s that ended more than %d days ago", n, n == 1 ? "" : "s", s->keep_runs_days);
}

static void *clock_main(void *arg)
{
    rd_scheduler *s = arg;
    for (;;) {
        tick(s);
        prune_runs(s);
        pthread_mutex_lock(&s->mu);
        if (!s->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long long ns = (long long)ts.tv_nsec + (long long)s->tick_ms * 1000000LL;
            ts.tv_sec += (time_t)(ns / 1000000000LL);
            ts.tv_nsec = (long)(ns % 1000000000LL);
            pthread_cond_timedwait(&s->clock_cv, &s->mu, &ts);
        }
        int stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
    }
    return NULL;
}

/* ---- snapshots ---------------------------------------------------------------------------------------------- */

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static rd_status file_sha256(const char *path, char hex[65], uint64_t *size, rd_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rd_error_set(err, RD_E_IO, "cannot read the snapshot %s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    rd_status st = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
                       ? RD_OK
                       : rd_error_set(err, RD_E_INTERNAL, "SHA-256 is not available");
    uint64_t total = 0;
    unsigned char buf[65536];
    while (st == RD_OK) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            st = rd_error_set(err, RD_E_IO, "cannot read the snapshot %s: %s", path, strerror(errno));
        if (n <= 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)n);
        total += (uint64_t)n;
    }
    unsigned char d[32];
    unsigned dl = 0;
    if (st == RD_OK && EVP_DigestFinal_ex(md, d, &dl) == 1 && dl == 32) {
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        *size = total;
    } else if (st == RD_OK) {
        st = rd_error_set(err, RD_E_INTERNAL, "SHA-256 failed");
    }
    EVP_MD_CTX_free(md);
    close(fd);
    return st;
}

static int by_name_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

/* Deletes all but the newest SNAPSHOTS_KEPT published files of dir (names sort by time). A reader holding one
 * open keeps reading it. */
static void snapshots_prune(rd_scheduler *s, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 8 || strcmp(e->d_name + len - 7, ".duckdb") != 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **g = realloc(names, nc * sizeof *g);
            if (!g)
                break;
            names = g;
            cap = nc;
        }
        if ((names[n] = strdup(e->d_name)))
            n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name_desc);
    for (size_t i = 0; i < n; i++) {
        if (i >= SNAPSHOTS_KEPT) {
            rd_buf p = RD_BUF_INIT;
            rd_buf_printf(&p, "%s/%s", dir, names[i]);
            if (!rd_buf_failed(&p) && unlink(rd_buf_cstr(&p)) != 0 && errno != ENOENT)
                slog(s, "cannot delete the old snapshot %s: %s", rd_buf_cstr(&p), strerror(errno));
            rd_buf_free(&p);
        }
        free(names[i]);
    }
    free(names);
}

/* One snapshot of p's file covering the runs runs[0..n) (all committed before it started). */
static void snapshot_publish(rd_scheduler *s, proj_state *p, const int64_t *runs, size_t n)
{
    int64_t run_id = 0;
    for (size_t i = 0; i < n; i++)
        if (runs[i] > run_id)
            run_id = runs[i];
    char *dir = project_path(s, p->name, "snapshots");
    rd_buf tmp = RD_BUF_INIT, fin = RD_BUF_INIT;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = RD_OK;
    int64_t created = now_ms(s);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!dir)
        st = rd_error_set(&err, RD_E_INTERNAL, "out of memory");
    else if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        st = rd_error_set(&err, RD_E_IO, "cannot create %s: %s", dir, strerror(errno));
    if (st == RD_OK) {
        rd_buf_printf(&tmp, "%s/.tmp-%" PRId64 "-%ld.duckdb", dir, run_id, (long)ts.tv_nsec);
        rd_buf_printf(&fin, "%s/%013" PRId64 "-%09" PRId64 ".duckdb", dir, created, run_id);
        if (rd_buf_failed(&tmp) || rd_buf_failed(&fin))
            st = rd_error_set(&err, RD_E_INTERNAL, "out of memory");
    }
    rd_target_table_count *tables = NULL;
    size_t nt = 0;
    pthread_mutex_lock(&p->target_mu);
    rd_target *t = p->target;
    if (st == RD_OK && !t)
        st = rd_error_set(&err, RD_E_INTERNAL, "the project's DuckDB file is not open");
    if (st == RD_OK)
        st = rd_target_snapshot_counted(t, rd_buf_cstr(&tmp), &tables, &nt, &err);
    pthread_mutex_unlock(&p->target_mu);
    char sha[65] = "";
    uint64_t size = 0;
    if (st == RD_OK && fsync_path(rd_buf_cstr(&tmp), 0) != 0)
        st = rd_error_set(&err, RD_E_IO, "cannot fsync %s: %s", rd_buf_cstr(&tmp), strerror(errno));
    if (st == RD_OK)
        st = file_sha256(rd_buf_cstr(&tmp), sha, &size, &err);
    if (st == RD_OK && rename(rd_buf_cstr(&tmp), rd_buf_cstr(&fin)) != 0)
        st = rd_error_set(&err, RD_E_IO, "cannot rename the snapshot to %s: %s", rd_buf_cstr(&fin), strerror(errno));
    if (st == RD_OK)
        fsync_path(dir, 1);
    if (st != RD_OK && tmp.len)
        unlink(rd_buf_cstr(&tmp));
    json_t *tj = json_array();
    for (size_t i = 0; tj && i < nt; i++)
        json_array_append_new(tj, json_pack("{s:s, s:I}", "name", tables[i].name, "rows", (json_int_t)tables[i].rows));
    char *tables_json = tj ? json_dumps(tj, JSON_COMPACT) : NULL;
    json_decref(tj);
    int64_t sid = 0;
    if (st == RD_OK) {
        rd_store_snapshot snap = { .project = p->name,
                                   .path = (char *)rd_buf_cstr(&fin),
                                   .sha256 = sha,
                                   .size = size,
                                   .created_at_ms = created,
                                   .run_id = run_id,
                                   .tables_json = tables_json ? tables_json : "[]" };
        st = rd_store_snapshot_publish(s->st, &snap, &sid, &err);
        if (st != RD_OK)
            unlink(rd_buf_cstr(&fin));
    }
    for (size_t i = 0; i < n; i++) {
        if (st == RD_OK)
            runlog(s, runs[i], "snapshot %" PRId64 " published (%zu table%s, %" PRIu64 " bytes, sha256 %.12s...)",
                   sid, nt, nt == 1 ? "" : "s", size, sha);
        else
            runlog(s, runs[i], "snapshot failed: %s", err.message);
    }
    if (st == RD_OK) {
        slog(s, "project %s: snapshot %" PRId64 " published (after run %" PRId64 ")", p->name, sid, run_id);
        snapshots_prune(s, dir);
    } else {
        slog(s, "project %s: snapshot after run %" PRId64 " failed: %s", p->name, run_id, err.message);
    }
    free(tables_json);
    rd_target_table_counts_free(tables, nt);
    rd_buf_free(&tmp);
    rd_buf_free(&fin);
    free(dir);
}

static void run_end(rd_scheduler *s, job *j);

/* After a successful ingest: a snapshot that includes it, then the run recorded a success — so a run is a
 * success only once the data it loaded can be pulled (`refresh --wait` then `pull` gets it). Successes of p
 * that end while one is being written are covered by one more after it (coalesced): the thread writing it
 * publishes for them and ends their runs, and their workers go on with other work meanwhile. Takes j. */
static void snapshot_after(rd_scheduler *s, proj_state *p, job *j)
{
    pthread_mutex_lock(&s->mu);
    if (p->nsnap == p->capsnap) {
        size_t nc = p->capsnap ? p->capsnap * 2 : 8;
        job **g = realloc(p->snap_jobs, nc * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&s->mu);
            slog(s, "project %s: out of memory queueing a snapshot", p->name);
            run_end(s, j);
            job_free(j);
            return;
        }
        p->snap_jobs = g;
        p->capsnap = nc;
    }
    p->snap_jobs[p->nsnap++] = j;
    if (p->snap_busy) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    p->snap_busy = 1;
    while (p->nsnap) {
        job **jobs = p->snap_jobs;
        size_t n = p->nsnap;
        p->snap_jobs = NULL;
        p->nsnap = p->capsnap = 0;
        pthread_mutex_unlock(&s->mu);
        int64_t *runs = malloc(n * sizeof *runs);
        if (runs) {
            for (size_t i = 0; i < n; i++)
                runs[i] = jobs[i]->run.id;
            snapshot_publish(s, p, runs, n);
        } else {
            slog(s, "project %s: out of memory writing a snapshot", p->name);
        }
        free(runs);
        for (size_t i = 0; i < n; i++) {
            run_end(s, jobs[i]);
            job_free(jobs[i]);
        }
        free(jobs);
        pthread_mutex_lock(&s->mu);
    }
    p->snap_busy = 0;
    pthread_mutex_unlock(&s->mu);
}

/* ---- one attempt of a run ------------------------------------------------------------------------------------ */

static void on_progress(void *ctx, const char *source, const rd_ingest_progress *pr)
{
    (void)source;
    job *j = ctx;
    if ((int)pr->phase == j->phase)
        return;
    j->phase = (int)pr->phase;
    runlog(j->s, j->run.id, "phase %s", phase_name(pr->phase));
}

/* The project's target, opened once. */
static rd_status project_target(rd_scheduler *s, proj_state *p, rd_target **out, rd_error *err)
{
    pthread_mutex_lock(&p->target_mu);
    rd_status st = RD_OK;
    if (!p->target) {
        char *path = project_path(s, p->name, DATA_FILE);
        rd_target_options to = { .path = path, .lock_timeout_s = 10, .cancel = &s->cancel, .threads = 0,
                                 .memory = TARGET_MEMORY };
        st = path ? rd_target_open(&to, &p->target, err) : rd_error_set(err, RD_E_INTERNAL, "out of memory");
        if (st == RD_OK && (st = rd_target_runs_init(p->target, err)) != RD_OK) {
            rd_target_close(p->target);
            p->target = NULL;
        }
        free(path);
    }
    *out = p->target;
    pthread_mutex_unlock(&p->target_mu);
    return st;
}

/* Runs attempt j->run.attempts + 1. Fills j->run's figures and error; returns the item's status. */
static rd_status attempt(rd_scheduler *s, job *j)
{
    proj_state *p = j->proj;
    j->run.attempts++;
    j->phase = -1;
    int64_t t0 = now_ms(s);
    if (!j->run.started_at)
        j->run.started_at = t0;
    j->run.state = RD_RUN_RUNNING;
    free(j->run.error);
    j->run.error = NULL;
    rd_error err;
    rd_error_clear(&err);
    rd_project proj;
    int64_t version = 0;
    rd_status st = load_active(s, p->name, 0, &proj, &version, &err);
    int loaded = st == RD_OK;
    if (loaded)
        j->run.version = version;
    const rd_source *src = st == RD_OK ? rd_project_source(&proj, j->run.source) : NULL;
    if (st == RD_OK && !src)
        st = rd_error_set(&err, RD_E_NOT_FOUND, "source %s is not in version %" PRId64 " of %s", j->run.source,
                          version, p->name);
    if (src && j->run.attempts == 1) {
        j->max_attempts = src->refresh.retry_attempts > 0 ? src->refresh.retry_attempts : 1;
        j->backoff_ms = src->refresh.retry_backoff_s > 0 ? src->refresh.retry_backoff_s * 1000 : 0;
        if (src->notify.webhook) {
            j->webhook = strdup(src->notify.webhook);
            j->on_failure = src->notify.on_failure;
            j->on_recovery = src->notify.on_recovery;
        }
    }
    if (src) {
        free(j->run.table_name);
        j->run.table_name = strdup(src->table_name ? src->table_name : src->name);
    }
    runlog(s, j->run.id, "attempt %d of %d started (version %" PRId64 ")", j->run.attempts, j->max_attempts,
           j->run.version);
    rd_error uerr;
    rd_error_clear(&uerr);
    if (rd_store_run_update(s->st, &j->run, &uerr) != RD_OK)
        slog(s, "run %" PRId64 ": cannot record it: %s", j->run.id, uerr.message);
    if (j->run.attempts == 1)
        slog(s, "run %" PRId64 " %s/%s started (%s, version %" PRId64 ")", j->run.id, p->name, j->run.source,
             rd_run_trigger_name(j->run.trigger), j->run.version);
    rd_target *t = NULL;
    if (st == RD_OK)
        st = project_target(s, p, &t, &err);
    if (st == RD_OK) {
        char *path = project_path(s, p->name, DATA_FILE);
        if (path) {
            free(proj.duckdb_path); /* the server's file, whatever redduck.yaml says */
            proj.duckdb_path = path;
        }
        const char *only[1] = { src->name };
        rd_run_options o = { 0 };
        o.only = only;
        o.nonly = 1;
        o.parallel = 1;
        o.cancel = &s->cancel;
        o.lock_timeout_s = -1;
        o.target = t;
        o.no_host_environment = 1;
        o.env_label = ENV_LABEL;
        o.on_progress = on_progress;
        o.on_progress_ctx = j;
        rd_run_report rep;
        st = rd_project_run(&proj, &o, &rep, &err);
        if (st == RD_OK && rep.count == 1) {
            const rd_run_item *it = &rep.items[0];
            st = it->status;
            if (st != RD_OK)
                err = it->error;
            j->run.rows = it->rows;
            j->run.bytes = it->bytes;
            j->run.files = it->files;
            j->run.probe_s = it->probe_s;
            j->run.unload_s = it->unload_s;
            j->run.download_s = it->download_s;
            j->run.commit_s = it->commit_s;
            j->run.cleanup_s = it->cleanup_s;
            j->run.total_s = it->seconds;
        } else if (st == RD_OK) {
            st = rd_error_set(&err, RD_E_INTERNAL, "the run of %s reported nothing", src->name);
        }
        rd_run_report_free(&rep);
    }
    if (st != RD_OK && !j->run.total_s)
        j->run.total_s = (double)(now_ms(s) - t0) / 1000.0;
    if (loaded)
        rd_project_free(&proj);
    if (st != RD_OK)
        j->run.error = strdup(err.message[0] ? err.message : "failed");
    return st;
}

/* 1 when the newest finished run of the source before j (success or failed) failed. */
static int previous_failed(rd_scheduler *s, const job *j)
{
    rd_store_run *rs = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    int failed = 0;
    if (rd_store_run_list(s->st, j->run.project, j->run.source, 0, 50, &rs, &n, &err) != RD_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (rs[i].id == j->run.id || (rs[i].state != RD_RUN_SUCCESS && rs[i].state != RD_RUN_FAILED))
            continue;
        failed = rs[i].state == RD_RUN_FAILED;
        break;
    }
    rd_store_runs_free(rs, n);
    return failed;
}

static void notify_run(rd_scheduler *s, const job *j, const char *event)
{
    if (!s->notify || !j->webhook)
        return;
    rd_notify_event e = { .event = event,
                          .project = j->run.project,
                          .source = j->run.source,
                          .table = j->run.table_name,
                          .run_id = j->run.id,
                          .state = rd_run_state_name(j->run.state),
                          .error = j->run.error,
                          .attempts = j->run.attempts,
                          .version = j->run.version,
                          .trigger = rd_run_trigger_name(j->run.trigger),
                          .at_ms = j->run.finished_at };
    rd_error err;
    rd_error_clear(&err);
    if (rd_notify_send(s->notify, j->webhook, &e, &err) != RD_OK)
        runlog(s, j->run.id, "notification (%s) not sent: %s", event, err.message);
    else {
        char host[256];
        rd_notify_redact_url(j->webhook, host, sizeof host);
        runlog(s, j->run.id, "notification (%s) queued for %s", event, host);
    }
}

/* The run ended (any final state): logged, stored, the source free again; waiters woken. Every log line of
 * the run (its notifications included) is written before its end is stored, so a reader that sees the run
 * ended has all of its lines. */
static void run_end(rd_scheduler *s, job *j)
{
    j->run.finished_at = now_ms(s);
    int recovered = j->run.state == RD_RUN_SUCCESS && j->webhook && j->on_recovery && previous_failed(s, j);
    if (j->run.state == RD_RUN_FAILED && j->on_failure)
        notify_run(s, j, "failure");
    if (recovered)
        notify_run(s, j, "recovery");
    rd_error err;
    rd_error_clear(&err);
    if (rd_store_run_update(s->st, &j->run, &err) != RD_OK)
        slog(s, "run %" PRId64 ": cannot record its end: %s", j->run.id, err.message);
    slog(s, "run %" PRId64 " %s/%s %s: %" PRIu64 " rows in %.1f s (attempt %d)%s%s", j->run.id, j->run.project,
         j->run.source, rd_run_state_name(j->run.state), j->run.rows, j->run.total_s, j->run.attempts,
         j->run.error ? ": " : "", j->run.error ? j->run.error : "");
    pthread_mutex_lock(&s->mu);
    src_state *x = source_find(j->proj, j->run.source);
    if (x)
        x->busy = 0;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
}

/* The run ends cancelled because the server stops (before it started, during a retry wait or its ingest). */
static void run_cancel(rd_scheduler *s, job *j, const char *why)
{
    j->run.state = RD_RUN_CANCELLED;
    if (!j->run.error || j->run.attempts == 0 || strstr(why, "wait")) {
        free(j->run.error);
        j->run.error = strdup(why);
    }
    runlog(s, j->run.id, "cancelled: %s", why);
    run_end(s, j);
}

/* One attempt and what follows: the end, or a retry queued for later. */
static void run_job(rd_scheduler *s, job *j)
{
    rd_status st = attempt(s, j);
    proj_state *p = j->proj;
    if (st == RD_OK) {
        j->run.state = RD_RUN_SUCCESS;
        runlog(s, j->run.id, "success: %" PRIu64 " rows, %" PRIu64 " bytes, %" PRIu64 " files in %.2f s (probe %.2f, "
               "unload %.2f, download %.2f, commit %.2f, cleanup %.2f)", j->run.rows, j->run.bytes, j->run.files,
               j->run.total_s, j->run.probe_s, j->run.unload_s, j->run.download_s, j->run.commit_s, j->run.cleanup_s);
        snapshot_after(s, p, j); /* records the success once a snapshot holds it */
        return;
    }
    if (st == RD_E_CANCELLED || s->cancel) {
        runlog(s, j->run.id, "attempt %d cancelled: %s", j->run.attempts, j->run.error);
        run_cancel(s, j, "the server stopped during the run (the previous table is unchanged)");
        job_free(j);
        return;
    }
    runlog(s, j->run.id, "attempt %d failed: %s", j->run.attempts, j->run.error);
    if (j->run.attempts < j->max_attempts) {
        j->run.state = RD_RUN_QUEUED;
        j->not_before_ms = now_ms(s) + j->backoff_ms;
        rd_error err;
        rd_error_clear(&err);
        if (rd_store_run_update(s->st, &j->run, &err) != RD_OK)
            slog(s, "run %" PRId64 ": cannot record it: %s", j->run.id, err.message);
        runlog(s, j->run.id, "retrying in %.1f s (attempt %d of %d)", (double)j->backoff_ms / 1000.0,
               j->run.attempts + 1, j->max_attempts);
        pthread_mutex_lock(&s->mu);
        if (!s->stopping) {
            queue_push(s, j);
            pthread_mutex_unlock(&s->mu);
            return;
        }
        pthread_mutex_unlock(&s->mu);
        run_cancel(s, j, "the server stopped during the wait before the next attempt");
        job_free(j);
        return;
    }
    j->run.state = RD_RUN_FAILED;
    run_end(s, j);
    job_free(j);
}

static void *worker_main(void *arg)
{
    rd_scheduler *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        int64_t now = now_ms(s);
        job *prev = NULL, *j = s->head;
        while (j && j->not_before_ms > now) {
            prev = j;
            j = j->next;
        }
        if (!j) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long long ns = (long long)ts.tv_nsec + (long long)s->tick_ms * 1000000LL;
            ts.tv_sec += (time_t)(ns / 1000000000LL);
            ts.tv_nsec = (long)(ns % 1000000000LL);
            pthread_cond_timedwait(&s->work_cv, &s->mu, &ts);
            continue;
        }
        if (prev)
            prev->next = j->next;
        else
            s->head = j->next;
        if (s->tail == j)
            s->tail = prev;
        j->next = NULL;
        pthread_mutex_unlock(&s->mu);
        run_job(s, j);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the interface ------------------------------------------------------------------------------------------ */

static void scheduler_free(rd_scheduler *s)
{
    for (size_t i = 0; i < s->nproj; i++) {
        proj_state *p = s->projects[i];
        rd_target_close(p->target);
        pthread_mutex_destroy(&p->target_mu);
        sources_free(p->src, p->nsrc);
        free(p->snap_jobs);
        free(p->name);
        free(p);
    }
    free(s->projects);
    free(s->workers);
    rd_notify_free(s->notify);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->log_mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_cond_destroy(&s->clock_cv);
    free(s->data_dir);
    free(s);
}

rd_status rd_scheduler_start(const rd_scheduler_options *o, rd_scheduler **out, rd_error *err)
{
    if (!o || !o->data_dir || !*o->data_dir || !o->store)
        return rd_error_set(err, RD_E_USAGE, "the scheduler needs the data dir and the store");
    rd_scheduler *s = calloc(1, sizeof *s);
    if (!s || !(s->data_dir = strdup(o->data_dir))) {
        free(s);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    s->st = o->store;
    s->max_runs = o->max_concurrent_runs > 0 ? o->max_concurrent_runs : 4;
    s->tick_ms = o->tick_ms > 0 ? o->tick_ms : 200;
    s->keep_runs_days = o->keep_runs_days ? o->keep_runs_days : RD_SCHEDULER_KEEP_RUNS_DAYS;
    s->now_fn = o->now_ms;
    s->now_ctx = o->now_ctx;
    s->log = o->log;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    pthread_cond_init(&s->clock_cv, NULL);
    size_t abandoned = 0;
    rd_status st = rd_store_run_abandon(s->st, "the server stopped while this run was queued or running", &abandoned,
                                        err);
    if (st == RD_OK && abandoned)
        slog(s, "%zu run%s left queued or running by the previous server recorded as cancelled", abandoned,
             abandoned == 1 ? "" : "s");
    rd_notify_options no = { .log = o->log, .user_agent = "redduck-server/" RD_API_VERSION };
    if (st == RD_OK)
        st = rd_notify_new(&no, &s->notify, err);
    if (st == RD_OK && !(s->workers = calloc((size_t)s->max_runs, sizeof *s->workers)))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (st != RD_OK) {
        scheduler_free(s);
        return st;
    }
    /* the first tick (catch-up runs) before any worker takes a job, so the counts below are the start's */
    tick(s);
    for (int i = 0; i < s->max_runs; i++)
        if (pthread_create(&s->workers[i], NULL, worker_main, s) == 0)
            s->nworkers++;
    if (pthread_create(&s->clock_th, NULL, clock_main, s) == 0)
        s->clock_started = 1;
    if (!s->nworkers || !s->clock_started) {
        rd_scheduler_stop(s);
        return rd_error_set(err, RD_E_INTERNAL, "cannot start the scheduler's threads");
    }
    *out = s;
    return RD_OK;
}

void rd_scheduler_counts(rd_scheduler *s, size_t *projects, size_t *scheduled)
{
    size_t np = 0, ns = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nproj; i++) {
        if (!s->projects[i]->version)
            continue;
        np++;
        for (size_t k = 0; k < s->projects[i]->nsrc; k++)
            ns += has_schedule(&s->projects[i]->src[k].sched);
    }
    pthread_mutex_unlock(&s->mu);
    if (projects)
        *projects = np;
    if (scheduled)
        *scheduled = ns;
}

void rd_scheduler_stop(rd_scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    s->cancel = 1;
    job *q = s->head;
    s->head = s->tail = NULL;
    pthread_cond_broadcast(&s->work_cv);
    pthread_cond_broadcast(&s->clock_cv);
    pthread_mutex_unlock(&s->mu);
    while (q) {
        job *next = q->next;
        run_cancel(s, q, q->run.attempts ? "the server stopped during the wait before the next attempt"
                                         : "the server stopped before the run started");
        job_free(q);
        q = next;
    }
    if (s->clock_started)
        pthread_join(s->clock_th, NULL);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    scheduler_free(s);
}

rd_status rd_scheduler_trigger(rd_scheduler *s, const char *project, const char *actor,
                               const char *const *sources, size_t n, int64_t **ids, size_t *nids, rd_error *err)
{
    if (!s || !project)
        return rd_error_set(err, RD_E_USAGE, "no project to refresh");
    int64_t now = now_ms(s);
    pthread_mutex_lock(&s->mu);
    rd_status st = RD_OK;
    int active = 0;
    proj_state *p = s->stopping ? NULL : project_refresh(s, project, now, &active);
    if (s->stopping)
        st = rd_error_set(err, RD_E_CANCELLED, "the server is stopping");
    else if (!p)
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    else if (!active)
        st = rd_error_set(err, RD_E_NOT_FOUND, "project %s has no active deployment", project);
    else if (p->load_failed)
        st = rd_error_set(err, RD_E_CONFIG, "version %" PRId64 " of %s cannot be read: see the server log",
                          p->version, project);
    size_t count = st == RD_OK ? (n ? n : p->nsrc) : 0;
    for (size_t i = 0; st == RD_OK && i < n; i++)
        if (!sources[i] || !source_find(p, sources[i]))
            st = rd_error_set(err, RD_E_NOT_FOUND, "version %" PRId64 " of %s has no source %s", p->version, project,
                              sources[i] ? sources[i] : "(null)");
    int64_t *v = st == RD_OK ? calloc(count ? count : 1, sizeof *v) : NULL;
    if (st == RD_OK && !v)
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    for (size_t i = 0; st == RD_OK && i < count; i++) {
        src_state *x = n ? source_find(p, sources[i]) : &p->src[i];
        st = enqueue(s, p, x, RD_TRIGGER_MANUAL, actor ? actor : "unknown", now, &v[i], err);
    }
    pthread_mutex_unlock(&s->mu);
    if (st != RD_OK) {
        free(v);
        return st;
    }
    if (ids)
        *ids = v;
    else
        free(v);
    if (nids)
        *nids = count;
    return RD_OK;
}

void rd_scheduler_sources_free(rd_scheduler_source *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].table);
        free(v[i].schedule);
    }
    free(v);
}

rd_status rd_scheduler_sources(rd_scheduler *s, const char *project, rd_scheduler_source **out, size_t *n,
                               rd_error *err)
{
    int64_t now = now_ms(s);
    pthread_mutex_lock(&s->mu);
    int active = 0;
    proj_state *p = project ? project_refresh(s, project, now, &active) : NULL;
    rd_status st = RD_OK;
    if (!p || !active) {
        pthread_mutex_unlock(&s->mu);
        return rd_error_set(err, RD_E_NOT_FOUND, "project %s has no active deployment", project ? project : "");
    }
    rd_scheduler_source *v = calloc(p->nsrc ? p->nsrc : 1, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; v && i < p->nsrc; i++, k++) {
        v[k].name = xstrdup(p->src[i].name);
        v[k].table = xstrdup(p->src[i].table);
        v[k].schedule = xstrdup(p->src[i].schedule);
        v[k].next_run_ms = has_schedule(&p->src[i].sched) ? p->src[i].next_ms : 0;
        v[k].running = p->src[i].busy;
        if (!v[k].name || !v[k].table || !v[k].schedule) {
            k++;
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!v)
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (st != RD_OK) {
        rd_scheduler_sources_free(v, k);
        return st;
    }
    *out = v;
    *n = k;
    return RD_OK;
}

static int state_ended(rd_run_state st)
{
    return st == RD_RUN_SUCCESS || st == RD_RUN_FAILED || st == RD_RUN_SKIPPED || st == RD_RUN_CANCELLED;
}

rd_status rd_scheduler_wait(rd_scheduler *s, int64_t run_id, long timeout_ms, int *ended, rd_error *err)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    long long ns = (long long)deadline.tv_nsec + (long long)(timeout_ms > 0 ? timeout_ms : 0) * 1000000LL;
    deadline.tv_sec += (time_t)(ns / 1000000000LL);
    deadline.tv_nsec = (long)(ns % 1000000000LL);
    for (;;) {
        rd_store_run r;
        memset(&r, 0, sizeof r);
        rd_status st = rd_store_run_get(s->st, run_id, &r, err);
        if (st != RD_OK)
            return st;
        int done = state_ended(r.state);
        rd_store_run_clear(&r);
        if (done) {
            *ended = 1;
            return RD_OK;
        }
        pthread_mutex_lock(&s->mu);
        /* woken by a run's end; a short bound covers an end recorded just before the wait began */
        struct timespec now, until;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec > deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) {
            pthread_mutex_unlock(&s->mu);
            *ended = 0;
            return RD_OK;
        }
        until = now;
        long long un = (long long)until.tv_nsec + 100LL * 1000000LL;
        until.tv_sec += (time_t)(un / 1000000000LL);
        until.tv_nsec = (long)(un % 1000000000LL);
        if (until.tv_sec > deadline.tv_sec || (until.tv_sec == deadline.tv_sec && until.tv_nsec > deadline.tv_nsec))
            until = deadline;
        pthread_cond_timedwait(&s->done_cv, &s->mu, &until);
        pthread_mutex_unlock(&s->mu);
    }
}
