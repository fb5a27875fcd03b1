/* server.c — `redduck server` (include/redduck/server.h): the data dir, the keyring's first start, the store,
 * the one-time admin token, the API on httpd until SIGINT/SIGTERM, and the offline commands on the data dir.
 * The HTTP calls are api.c's; the state is the store's. */
#include "redduck/server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "httpd/httpd.h"
#include "server/api.h"
#include "server/keyring.h"
#include "server/scheduler.h"
#include "server/store.h"

#define KEYRING_FILE "keyring"
#define LOCK_FILE "server.lock"

void rd_server_wipe(void *p, size_t n)
{
    rd_token_wipe(p, n);
}

/* DATA_DIR/name, or other when given. */
static char *data_path(const char *data_dir, const char *name)
{
    rd_buf b = RD_BUF_INIT;
    rd_buf_printf(&b, "%s/%s", data_dir, name);
    return rd_buf_detach(&b);
}

/* "offline:USER": the actor of the offline commands in the audit log. */
static void offline_actor(char out[96])
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_name)
        snprintf(out, 96, "offline:%s", res->pw_name);
    else
        snprintf(out, 96, "offline:uid%u", (unsigned)getuid());
}

static rd_status need_store_file(const char *data_dir, rd_error *err)
{
    if (!data_dir || !*data_dir)
        return rd_error_set(err, RD_E_USAGE, "--data-dir is required");
    char *p = data_path(data_dir, RD_STORE_FILE);
    struct stat sb;
    int ok = p && stat(p, &sb) == 0;
    free(p);
    if (!ok)
        return rd_error_set(err, RD_E_NOT_FOUND,
                            "no store in %s: start `redduck server --data-dir %s` once first (it creates the "
                            "server admin)",
                            data_dir, data_dir);
    return RD_OK;
}

static rd_status open_offline(const char *data_dir, rd_store **st, rd_error *err)
{
    rd_status s = need_store_file(data_dir, err);
    return s == RD_OK ? rd_store_open_sqlite(data_dir, NULL, NULL, st, err) : s;
}

/* Takes DATA_DIR/server.lock (one server per data dir; rotate-key refuses while it is held). */
static rd_status take_lock(const char *data_dir, int *fd_out, const char *busy, rd_error *err)
{
    char *p = data_path(data_dir, LOCK_FILE);
    if (!p)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rd_status s = rd_error_set(err, RD_E_IO, "cannot open %s: %s", p, strerror(errno));
        free(p);
        return s;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        rd_status s = rd_error_set(err, RD_E_USAGE, "%s holds a lock: %s", p, busy);
        free(p);
        return s;
    }
    free(p);
    *fd_out = fd;
    return RD_OK;
}

/* Opens the keyring: created 0600 on the first start of a data dir (no store yet), else it must exist. */
static rd_status open_keyring(const char *data_dir, const char *path, int may_create, rd_keyring **kr, int *created,
                              rd_error *err)
{
    char *def = path ? NULL : data_path(data_dir, KEYRING_FILE);
    const char *file = path ? path : def;
    if (!file)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_status s = rd_keyring_open(file, may_create ? RD_KEYRING_CREATE : 0, kr, created, err);
    if (s == RD_E_NOT_FOUND)
        s = rd_error_set(err, RD_E_CONFIG,
                         "the keyring %s does not exist, but %s holds a store sealed with one: pass the data dir's "
                         "keyring with --keyring (a new one could not open the stored values)",
                         file, data_dir);
    free(def);
    return s;
}


rd_status rd_server_run(const rd_server_options *o, rd_error *err)
{
    if (!o || !o->data_dir || !*o->data_dir)
        return rd_error_set(err, RD_E_USAGE, "--data-dir is required");
    FILE *out = o->out ? o->out : stdout, *log = o->log ? o->log : stderr;
    char host[128];
    int port = 0;
    rd_status s = rd_httpd_parse_listen(o->listen ? o->listen : RD_SERVER_DEFAULT_LISTEN, host, sizeof host, &port,
                                        err);
    if (s != RD_OK)
        return s;
    int tls = o->tls_cert_file || o->tls_key_file;
    if (!o->tls_cert_file != !o->tls_key_file)
        return rd_error_set(err, RD_E_USAGE, "--tls-cert and --tls-key go together");
    if (!tls && !rd_httpd_host_is_loopback(host) && !o->insecure_http)
        return rd_error_set(err, RD_E_USAGE,
                            "listening on %s needs TLS (--tls-cert FILE --tls-key FILE): tokens and values would "
                            "cross the network in clear (--insecure-http allows it anyway)",
                            host);
    sigset_t set, old;
    pthread_sigmask(SIG_BLOCK, NULL, &old);
    rd_httpd_stop_signals_block(&set);

    rd_keyring *kr = NULL;
    rd_store *st = NULL;
    rd_scheduler *sched = NULL;
    rd_api *api = NULL;
    rd_httpd *d = NULL;
    int lockfd = -1;
    if (mkdir(o->data_dir, 0700) != 0 && errno != EEXIST) {
        s = rd_error_set(err, RD_E_IO, "cannot create the data dir %s: %s", o->data_dir, strerror(errno));
        goto done;
    }
    if ((s = take_lock(o->data_dir, &lockfd, "another redduck server runs on this data dir", err)) != RD_OK)
        goto done;
    char *dbp = data_path(o->data_dir, RD_STORE_FILE);
    struct stat sb;
    int fresh = dbp && stat(dbp, &sb) != 0;
    free(dbp);
    int created = 0;
    if ((s = open_keyring(o->data_dir, o->keyring, fresh, &kr, &created, err)) != RD_OK)
        goto done;
    if ((s = rd_store_open_sqlite(o->data_dir, kr, NULL, &st, err)) != RD_OK)
        goto done;
    char token[RD_TOKEN_LEN + 1];
    int admin_created = 0;
    if ((s = rd_store_bootstrap(st, token, &admin_created, err)) != RD_OK)
        goto done;
    if (created)
        fprintf(log, "redduck server: created the keyring %s%s (0600; back it up: without it the stored values "
                "cannot be read)\n", o->keyring ? o->keyring : o->data_dir, o->keyring ? "" : "/" KEYRING_FILE);
    if (admin_created) {
        fprintf(out, "redduck server: first start: created the server admin \"admin\". Its token, shown only this "
                "once: %s\n", token);
        fflush(out);
        rd_token_wipe(token, sizeof token);
    }
    rd_scheduler_options so = { .data_dir = o->data_dir, .store = st, .max_concurrent_runs = o->max_concurrent_runs,
                                .keep_runs_days = o->keep_runs_days > 0 ? o->keep_runs_days : 0,
                                .log = log };
    if ((s = rd_scheduler_start(&so, &sched, err)) != RD_OK)
        goto done;
    rd_api_options ao = { .data_dir = o->data_dir, .log = log, .scheduler = sched, .tls = tls };
    ao.query.max_rows = o->query_max_rows;
    ao.query.timeout_ms = o->query_timeout_ms;
    ao.query.max_memory = o->query_max_memory;
    ao.query.max_concurrent = o->query_max_concurrent;
    if ((s = rd_api_new(st, &ao, &api, err)) != RD_OK)
        goto done;
    rd_httpd_options ho;
    memset(&ho, 0, sizeof ho);
    rd_api_httpd_options(&ho);
    ho.port = port;
    ho.host = host;
    ho.tls_cert_file = o->tls_cert_file;
    ho.tls_key_file = o->tls_key_file;
    rd_httpd_handler h;
    rd_api_handler(api, &h);
    if ((s = rd_httpd_start(&ho, &h, &d, err)) != RD_OK)
        goto done;
    if (!tls && !rd_httpd_host_is_loopback(host))
        fprintf(log, "redduck server: WARNING: plain HTTP on %s (--insecure-http): tokens and values cross the "
                "network in clear; use --tls-cert and --tls-key\n", host);
    int v6 = strchr(host, ':') != NULL;
    fprintf(out, "redduck server: listening on %s://%s%s%s:%d\n", tls ? "https" : "http", v6 ? "[" : "", host,
            v6 ? "]" : "", rd_httpd_port(d));
    size_t nproj = 0, nsched = 0;
    rd_scheduler_counts(sched, &nproj, &nsched);
    fprintf(out, "redduck server: scheduler: %zu project%s, %zu scheduled source%s\n", nproj, nproj == 1 ? "" : "s",
            nsched, nsched == 1 ? "" : "s");
    fprintf(out, "redduck server: ready\n");
    fflush(out);
    int sig = rd_httpd_stop_signals_wait(&set, 0);
    fprintf(log, "redduck server: %s: stopping\n", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal");
    fflush(log);
    s = RD_OK;
done:
    rd_httpd_stop(d);
    rd_api_free(api);
    rd_scheduler_stop(sched);
    rd_store_close(st);
    rd_keyring_free(kr);
    if (lockfd >= 0)
        close(lockfd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return s;
}

/* ---- offline ------------------------------------------------------------------------------------------ */

/* What an offline command acts on. */
typedef struct offline_args {
    const char *name;       /* the user */
    const char *project;    /* user add --project, or NULL */
    const char *token_name;
    rd_role role;
    int admin, prod;
    FILE *out;
    char token[RD_TOKEN_LEN + 1]; /* token create's; wiped by the caller */
} offline_args;

typedef rd_status (*offline_fn)(rd_store *st, const char *actor, offline_args *a, rd_error *err);

/* Runs fn on the data dir's store (opened without a keyring: no offline command reads a value), as
 * "offline:UNIXUSER" in the audit log. */
static rd_status offline(const char *data_dir, offline_fn fn, offline_args *a, rd_error *err)
{
    rd_store *st = NULL;
    rd_status s = open_offline(data_dir, &st, err);
    if (s != RD_OK)
        return s;
    char actor[96];
    offline_actor(actor);
    s = fn(st, actor, a, err);
    rd_store_close(st);
    return s;
}

static rd_status do_user_add(rd_store *st, const char *actor, offline_args *a, rd_error *err)
{
    rd_store_project p;
    rd_status s = RD_OK;
    if (a->project && (s = rd_store_project_get(st, a->project, &p, err)) == RD_OK)
        free(p.name);
    if (s == RD_OK)
        s = rd_store_user_add(st, actor, a->name, a->admin, err);
    if (s == RD_OK && a->project)
        s = rd_store_role_grant(st, actor, a->name, a->project, a->role, a->prod, err);
    return s;
}

static rd_status do_user_rm(rd_store *st, const char *actor, offline_args *a, rd_error *err)
{
    return rd_store_user_rm(st, actor, a->name, err);
}

static rd_status do_user_list(rd_store *st, const char *actor, offline_args *a, rd_error *err)
{
    (void)actor;
    rd_store_user *us = NULL;
    size_t n = 0;
    rd_status s = rd_store_user_list(st, &us, &n, err);
    for (size_t i = 0; s == RD_OK && i < n; i++) {
        char when[32];
        time_t t = (time_t)us[i].created_at;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(a->out, "%s\t%s\t%s\n", us[i].name, us[i].admin ? "server-admin" : "-", when);
    }
    rd_store_users_free(us, n);
    return s;
}

static rd_status do_token_create(rd_store *st, const char *actor, offline_args *a, rd_error *err)
{
    return rd_store_token_create(st, actor, a->name, a->token_name, a->token, err);
}

static rd_status do_token_revoke(rd_store *st, const char *actor, offline_args *a, rd_error *err)
{
    return rd_store_token_revoke(st, actor, a->name, a->token_name, err);
}

rd_status rd_server_user_add(const char *data_dir, const char *name, int server_admin, const char *project,
                             const char *role, int prod_access, rd_error *err)
{
    offline_args a = { .name = name, .project = project, .admin = server_admin, .prod = prod_access };
    if (project && (a.role = rd_role_parse(role)) == RD_ROLE_NONE)
        return rd_error_set(err, RD_E_USAGE, "--role must be viewer, editor or admin");
    if (!project && (role || prod_access))
        return rd_error_set(err, RD_E_USAGE, "--role and --prod go with --project");
    return offline(data_dir, do_user_add, &a, err);
}

rd_status rd_server_user_rm(const char *data_dir, const char *name, rd_error *err)
{
    offline_args a = { .name = name };
    return offline(data_dir, do_user_rm, &a, err);
}

rd_status rd_server_user_list(const char *data_dir, FILE *out, rd_error *err)
{
    offline_args a = { .out = out };
    return offline(data_dir, do_user_list, &a, err);
}

rd_status rd_server_token_create(const char *data_dir, const char *user, const char *token_name,
                                 char token[RD_SERVER_TOKEN_MAX], char *name_out, size_t name_out_len,
                                 rd_error *err)
{
    char def[64];
    if (!token_name) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(def, sizeof def, "token-%Y%m%dT%H%M%SZ", &tm);
        token_name = def;
    }
    offline_args a = { .name = user, .token_name = token_name };
    rd_status s = offline(data_dir, do_token_create, &a, err);
    if (s == RD_OK) {
        snprintf(token, RD_SERVER_TOKEN_MAX, "%s", a.token);
        if (name_out && name_out_len)
            snprintf(name_out, name_out_len, "%s", token_name);
    }
    rd_token_wipe(a.token, sizeof a.token);
    return s;
}

rd_status rd_server_token_revoke(const char *data_dir, const char *user, const char *token_name, rd_error *err)
{
    offline_args a = { .name = user, .token_name = token_name };
    return offline(data_dir, do_token_revoke, &a, err);
}

rd_status rd_server_rotate_key(const char *data_dir, const char *keyring, uint32_t *new_key_id, size_t *resealed,
                               rd_error *err)
{
    rd_status s = need_store_file(data_dir, err);
    int lockfd = -1;
    if (s == RD_OK)
        s = take_lock(data_dir, &lockfd, "stop the server first (it keeps the keyring it read at start)", err);
    if (s != RD_OK)
        return s;
    rd_keyring *kr = NULL;
    rd_store *st = NULL;
    uint32_t id = 0;
    size_t count = 0;
    char actor[96];
    offline_actor(actor);
    if ((s = open_keyring(data_dir, keyring, 0, &kr, NULL, err)) == RD_OK &&
        (s = rd_store_open_sqlite(data_dir, kr, NULL, &st, err)) == RD_OK &&
        (s = rd_keyring_add_key(kr, &id, err)) == RD_OK)
        s = rd_store_rotate(st, actor, &count, err);
    rd_store_close(st);
    rd_keyring_free(kr);
    close(lockfd);
    if (s == RD_OK) {
        if (new_key_id)
            *new_key_id = id;
        if (resealed)
            *resealed = count;
    }
    return s;
}
