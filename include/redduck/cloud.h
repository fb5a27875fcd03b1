/* redduck/cloud.h — the client of `redduck server` (docs/SERVER_API.md), for `login`, `deploy`, `deployments`
 * and `env … --cloud`: which server and token to use (flags, then REDDUCK_SERVER / REDDUCK_TOKEN /
 * REDDUCK_CA_BUNDLE, then ~/.config/redduck/credentials.json), the plain-http rule, the calls, and replies
 * mapped to rd_status with one line saying what to do. Also the .env comparisons behind `env push` and
 * `env pull`, which need no server.
 *
 * Owns every string it returns. The token is a secret: it is never put in a message or a log line (the
 * Authorization header is redacted at -vv) and is wiped when freed. TLS verification is always on.
 * Thread safety: an rd_cloud is used by one thread at a time. */
#ifndef REDDUCK_CLOUD_H
#define REDDUCK_CLOUD_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/dotenv.h"
#include "redduck/error.h"

#define RD_CLOUD_ENV_SERVER "REDDUCK_SERVER"
#define RD_CLOUD_ENV_TOKEN "REDDUCK_TOKEN"
#define RD_CLOUD_ENV_CA_BUNDLE "REDDUCK_CA_BUNDLE"

struct rd_http_transport; /* src/aws/http.h; tests pass a fake one */

/* ---- which server, which token ------------------------------------------------------------------------ */

/* The logged-in server, as credentials.json keeps it. */
typedef struct rd_cloud_credentials {
    char *server;      /* URL, no trailing '/' */
    char *token;       /* secret */
    char *ca_bundle;   /* absolute path or NULL */
    int insecure_http; /* plain http to a host that is not loopback was allowed at login */
} rd_cloud_credentials;

/* Wipes the token. NULL is a no-op. */
void rd_cloud_credentials_free(rd_cloud_credentials *c);

/* $HOME/.config/redduck/credentials.json (malloc'd); NULL with RD_E_CONFIG when HOME is not set. */
char *rd_cloud_credentials_path(rd_error *err);
/* Reads path. *found 0 (and RD_OK, *out zeroed) when it does not exist. RD_E_CONFIG when group or others may
 * read it ("run `chmod 600 PATH`, or `redduck login` again"), when it is not a regular file, or is not the
 * JSON `redduck login` writes; the message never quotes the file. */
rd_status rd_cloud_credentials_load(const char *path, rd_cloud_credentials *out, int *found, rd_error *err);
/* Writes c to path atomically (a 0600 temporary file renamed over it), its folder created 0700. */
rd_status rd_cloud_credentials_save(const char *path, const rd_cloud_credentials *c, rd_error *err);
/* Removes path. *removed 0 when it did not exist. */
rd_status rd_cloud_credentials_remove(const char *path, int *removed, rd_error *err);

/* What the caller said; every field may be NULL / 0. */
typedef struct rd_cloud_options {
    const char *server;           /* --server: wins over REDDUCK_SERVER and credentials.json */
    const char *token;            /* a token just read (login): wins over REDDUCK_TOKEN and the file */
    const char *ca_bundle;        /* --ca-cert: wins over REDDUCK_CA_BUNDLE and the file's */
    int insecure_http;            /* --insecure-http */
    int verbose;                  /* 1: one log line per request on stderr; 2: headers too (Authorization
                                   * redacted) */
    const char *credentials_path; /* NULL: rd_cloud_credentials_path */
    int no_credentials_file;      /* 1: the file is not read (login checking a new token) */
    struct rd_http_transport *transport; /* NULL: libcurl; else borrowed (tests) */
} rd_cloud_options;

/* Where a setting came from, for messages. */
typedef enum rd_cloud_source { RD_CLOUD_FROM_NONE, RD_CLOUD_FROM_FLAG, RD_CLOUD_FROM_ENV, RD_CLOUD_FROM_FILE } rd_cloud_source;

/* The settings rd_cloud_open uses, resolved from o and the environment. */
typedef struct rd_cloud_resolved {
    rd_cloud_credentials creds;   /* owned */
    rd_cloud_source server_from, token_from, ca_from;
} rd_cloud_resolved;

/* Resolves as above, in that order each. The file's token and CA bundle are used only when the server is the
 * file's own (a token never goes to a server it was not made for). Checks the server URL with
 * rd_cloud_check_url. RD_E_USAGE for no server at all ("pass --server or run `redduck login`") or a bad URL;
 * RD_E_AUTH for no token ("run `redduck login --server URL`, or set REDDUCK_TOKEN"); the file's errors. */
rd_status rd_cloud_resolve(const rd_cloud_options *o, rd_cloud_resolved *out, rd_error *err);
void rd_cloud_resolved_free(rd_cloud_resolved *r);

/* Checks a server URL: http:// or https://, a host, no user name, query or fragment. Plain http:// to a host
 * that is not loopback (127.0.0.0/8, ::1, localhost) is refused, RD_E_USAGE, unless insecure_http: the token
 * would cross the network in clear. On success *normalized (may be NULL) is the URL without trailing '/'. */
rd_status rd_cloud_check_url(const char *url, int insecure_http, char **normalized, rd_error *err);

/* ---- the client -------------------------------------------------------------------------------------- */

typedef struct rd_cloud rd_cloud;

/* rd_cloud_resolve, then the transport (libcurl with the CA bundle, or o->transport). */
rd_status rd_cloud_open(const rd_cloud_options *o, rd_cloud **out, rd_error *err);
void rd_cloud_free(rd_cloud *c);
/* Borrowed from c. */
const char *rd_cloud_server(const rd_cloud *c);
const rd_cloud_resolved *rd_cloud_settings(const rd_cloud *c);

/* 1 when name is a project name the server takes: [a-z0-9][a-z0-9_-]{0,62}. */
int rd_cloud_project_name_valid(const char *name);
/* 1 for "dev", "prod" and "shared". */
int rd_cloud_environment_valid(const char *env);
/* The project name for dir: override when given, else `name:` of DIR/redduck.yaml, else the folder's name
 * (read without loading the project, so a .env that lacks keys does not matter). RD_E_USAGE when it is not a
 * valid project name (the message says to set `name:` or pass --project); RD_E_CONFIG for an unreadable
 * redduck.yaml. */
rd_status rd_cloud_project_name(const char *dir, const char *override, char **out, rd_error *err);

/* Every call below fails with one line saying what to do: RD_E_NETWORK when the server cannot be reached,
 * RD_E_CONFIG for an untrusted certificate, RD_E_AUTH for a refused token (401), RD_E_DENIED naming the role the
 * call needs (403), RD_E_NOT_FOUND for an unknown project (404), RD_E_REMOTE for 409, 429 (with the wait) and
 * 5xx, RD_E_USAGE for 400. Out-parameters are written only on success. */

typedef struct rd_cloud_whoami {
    char *user;
    int server_admin;
} rd_cloud_whoami;
rd_status rd_cloud_get_whoami(rd_cloud *c, rd_cloud_whoami *out, rd_error *err);
void rd_cloud_whoami_free(rd_cloud_whoami *w);

/* What a connector still lacks after a deploy. */
typedef struct rd_cloud_missing {
    char *connector;
    char **keys;
    size_t nkeys;
} rd_cloud_missing;

typedef struct rd_cloud_deploy_result {
    char *project;
    long version;
    char *sha256;
    char *environment;
    rd_cloud_missing *missing;
    size_t nmissing;
    size_t nfiles;        /* files packed */
    size_t archive_bytes; /* bytes uploaded */
    char **skipped;       /* rd_archive_pack's warnings (links, fifos, ... left out) */
    size_t nskipped;
} rd_cloud_deploy_result;

/* Packs dir (rd_archive_pack: .gitignore followed; .env, data/ and *.duckdb never included) and uploads it as
 * a new version of project in environment. 422 is RD_E_CONFIG "project P does not validate on the server:"
 * followed by the server's problems (FILE:LINE: …), one per line (truncated to fit, saying how many more). */
rd_status rd_cloud_deploy(rd_cloud *c, const char *dir, const char *project, const char *environment,
                          rd_cloud_deploy_result *out, rd_error *err);
void rd_cloud_deploy_result_free(rd_cloud_deploy_result *r);

typedef struct rd_cloud_deployment {
    long version;
    int active;
    char *created_at, *created_by, *sha256, *environment;
} rd_cloud_deployment;

/* Newest first. */
rd_status rd_cloud_list_deployments(rd_cloud *c, const char *project, rd_cloud_deployment **out, size_t *n,
                                    rd_error *err);
void rd_cloud_deployments_free(rd_cloud_deployment *d, size_t n);
/* Makes version the active one. */
rd_status rd_cloud_activate(rd_cloud *c, const char *project, long version, rd_error *err);

/* The variables of environment, values in clear (*out's path reads "the ENV variables of P"). */
rd_status rd_cloud_get_variables(rd_cloud *c, const char *project, const char *environment, rd_dotenv *out,
                                 rd_error *err);
/* Their names only (the same permission). */
rd_status rd_cloud_get_variable_names(rd_cloud *c, const char *project, const char *environment, char ***names,
                                      size_t *n, rd_error *err);
void rd_cloud_names_free(char **names, size_t n);
/* Sets the keys of set (its values), all or nothing. */
rd_status rd_cloud_set_variables(rd_cloud *c, const char *project, const char *environment, const rd_dotenv *set,
                                 rd_error *err);
/* Removes one variable; RD_E_NOT_FOUND when it is absent. */
rd_status rd_cloud_delete_variable(rd_cloud *c, const char *project, const char *environment, const char *name,
                                   rd_error *err);

/* ---- .env comparisons (no server) ---------------------------------------------------------------------- */

typedef enum rd_cloud_change_kind {
    RD_CLOUD_ADDED,     /* in from only */
    RD_CLOUD_CHANGED,   /* in both, values differ: from's wins */
    RD_CLOUD_UNCHANGED, /* in both, same value */
    RD_CLOUD_KEPT       /* in to only: left as it is (never deleted) */
} rd_cloud_change_kind;

typedef struct rd_cloud_change {
    const char *key;       /* borrowed from from or to */
    const char *value;     /* from's value (to's for KEPT); borrowed */
    const char *old_value; /* to's value, NULL for ADDED; borrowed */
    rd_cloud_change_kind kind;
} rd_cloud_change;

typedef struct rd_cloud_diff {
    rd_cloud_change *items; /* from's keys in from's order, then to's own keys in to's order */
    size_t count;
    size_t added, changed, unchanged, kept;
} rd_cloud_diff;

/* What copying from's keys over to's would do: `env push` (from the local .env to the cloud) and `env pull`
 * (from the cloud to the local .env) both add and override, and never delete. Borrows from both, which must
 * outlive *out. RD_E_INTERNAL on out of memory. */
rd_status rd_cloud_diff_env(const rd_dotenv *from, const rd_dotenv *to, rd_cloud_diff *out, rd_error *err);
void rd_cloud_diff_free(rd_cloud_diff *d);

/* Writes the ADDED and CHANGED keys of d into the .env at path at once: its other lines are kept, and the new
 * file (0600) replaces the old one by a rename, so a failure leaves it as it was. */
rd_status rd_cloud_env_apply(const char *path, const rd_cloud_diff *d, rd_error *err);

/* Makes dir/.gitignore ignore `.env` (appending a line, or creating the file). *changed: 0 it already did,
 * 1 created, 2 appended to. */
rd_status rd_cloud_gitignore_env(const char *dir, int *changed, rd_error *err);

/* ---- refreshes (`refresh`, `status` and `logs --cloud`; client_runs.c) -------------------------------- */

/* One run of one source, as the server shows it. Times are ISO 8601 UTC text ("2026-12-01T10:00:00Z") or
 * NULL when not set; numbers not known yet are -1. */
typedef struct rd_cloud_run {
    int64_t id;
    char *source, *table;   /* table NULL when the server did not say */
    int64_t version;        /* the deployment it ran; -1 unknown */
    char *trigger;          /* "schedule", "manual", "catch-up" */
    char *triggered_by;     /* a user, or "scheduler"; NULL when not said */
    char *state;            /* "queued", "running", "success", "failed", "skipped", "cancelled" */
    int attempts;
    char *queued_at, *started_at, *finished_at;
    double duration_s;      /* -1: not ended */
    int64_t rows, bytes, files;
    double probe_s, unload_s, download_s, commit_s, cleanup_s; /* the phases; -1: not known */
    char *error;            /* the failure's message, or NULL */
} rd_cloud_run;
/* Frees r's strings (not r). NULL is a no-op. */
void rd_cloud_run_clear(rd_cloud_run *r);
void rd_cloud_runs_free(rd_cloud_run *runs, size_t n);
/* 1 for a state a run does not leave (success, failed, skipped, cancelled). */
int rd_cloud_run_state_ended(const char *state);

/* What a refresh queued: one entry per source, in the server's order. */
typedef struct rd_cloud_queued_run {
    int64_t id;
    char *source;
    int skipped; /* a run of the source was queued or running already: recorded as skipped */
} rd_cloud_queued_run;
typedef struct rd_cloud_refresh_result {
    rd_cloud_queued_run *runs;
    size_t nruns;
} rd_cloud_refresh_result;
/* Queues a manual run of each of sources (n of them; n 0: every source of the active deployment). An unknown
 * source is RD_E_NOT_FOUND naming it (nothing queued); a project without an active deployment RD_E_NOT_FOUND
 * saying to deploy first; a server without a scheduler RD_E_REMOTE. Needs the editor role. */
rd_status rd_cloud_refresh(rd_cloud *c, const char *project, const char *const *sources, size_t n,
                           rd_cloud_refresh_result *out, rd_error *err);
void rd_cloud_refresh_result_free(rd_cloud_refresh_result *r);

/* One source of the active deployment, as `status` shows it. */
typedef struct rd_cloud_source_status {
    char *name, *table;
    char *schedule;      /* "every 1h", "cron 0 6 * * * Europe/Berlin", "disabled", "none"; NULL: not known */
    char *next_run;      /* ISO time or NULL */
    int running;         /* a run is queued or running */
    rd_cloud_run *last_run; /* NULL: none yet */
} rd_cloud_source_status;

typedef struct rd_cloud_project_status {
    char *project;
    int64_t active_version; /* 0: no deployment */
    int has_snapshot;
    int64_t snapshot_id;
    char *snapshot_created_at, *snapshot_sha256; /* NULL without a snapshot */
    uint64_t snapshot_size;
    rd_cloud_source_status *sources;
    size_t nsources;
    char *json; /* the server's answer as it came (`status --json`) */
} rd_cloud_project_status;
/* Needs a role in the project (viewer at least). */
rd_status rd_cloud_status(rd_cloud *c, const char *project, rd_cloud_project_status *out, rd_error *err);
void rd_cloud_project_status_free(rd_cloud_project_status *s);

/* The runs of project, newest first: of source only when not NULL, at most limit (0: the server's 100). */
rd_status rd_cloud_runs(rd_cloud *c, const char *project, const char *source, size_t limit, rd_cloud_run **out,
                        size_t *n, rd_error *err);
/* One run; RD_E_NOT_FOUND when project has no such run. */
rd_status rd_cloud_run_get(rd_cloud *c, const char *project, int64_t run_id, rd_cloud_run *out, rd_error *err);

typedef struct rd_cloud_log_line {
    int64_t seq;
    char *at;   /* ISO time */
    char *line;
} rd_cloud_log_line;
typedef struct rd_cloud_run_log {
    int64_t run_id;
    char *state;             /* the run's state when the lines were read */
    rd_cloud_log_line *lines;
    size_t nlines;
    int done;                /* the run has ended and every line has been given: no need to ask again */
} rd_cloud_run_log;
/* The lines of run_id after seq after; with wait_s (0..30) the server holds the call until a line comes or
 * the run ends, at most that long (a long-poll: what `logs --follow` repeats). RD_E_NOT_FOUND for no such run. */
rd_status rd_cloud_run_logs(rd_cloud *c, const char *project, int64_t run_id, int64_t after, int wait_s,
                            rd_cloud_run_log *out, rd_error *err);
void rd_cloud_run_log_free(rd_cloud_run_log *l);

#endif
