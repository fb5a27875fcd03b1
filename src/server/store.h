/* store.h — the server's state: users, API tokens, projects, members' roles, deployments, encrypted
 * variables and the audit log. Owns the rules every backend shares (names checked, values sealed with the
 * keyring bound to project/environment/name, one audit row in the same transaction as each change, key
 * names in the audit and never values); a backend (a vtable, below) only keeps rows. SQLite is the one
 * backend now (store_sqlite.c); a PostgreSQL one, for several server replicas, implements the same vtable.
 *
 * Errors: every function returns rd_status and fills err; messages name the operation and the user,
 * project, environment or variable name, never a value or token. Lookups of what does not exist give
 * RD_E_NOT_FOUND, names or values that are refused RD_E_USAGE, a keyring that cannot open the stored values
 * RD_E_CONFIG.
 *
 * Ownership: strings passed in are copied; out-parameters are written only on success, and lists are
 * freed with the rd_store_*_free function of their type. A value read back (rd_store_variable_get) is a
 * secret: release it with rd_store_secret_free.
 *
 * Threads: one rd_store may be used by many threads at once. The SQLite backend keeps a small pool of
 * connections (each opened SQLITE_OPEN_FULLMUTEX and used by one thread at a time): readers run side by
 * side under WAL; writers of this process queue on a lock and then BEGIN IMMEDIATE, so writes (and version
 * numbers) are serialised, and busy_timeout waits out other processes (the offline commands on the same
 * data dir). rd_store_close must not race other calls. */
#ifndef RD_SERVER_STORE_H
#define RD_SERVER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/error.h"
#include "server/keyring.h"
#include "server/roles.h"
#include "server/token.h"

#define RD_STORE_NAME_MAX 64           /* users, projects, token names */
#define RD_STORE_VARIABLE_NAME_MAX 256
#define RD_STORE_VALUE_MAX (64 * 1024) /* bytes of one variable's value */
#define RD_STORE_FILE "store.db"

typedef struct rd_store rd_store;

typedef struct rd_store_user {
    char *name;
    int admin; /* a server admin: admin of every project, manages users */
    int64_t created_at; /* Unix seconds */
} rd_store_user;

typedef struct rd_store_project {
    char *name;
    int64_t created_at;
} rd_store_project;

typedef struct rd_store_deployment {
    int64_t version; /* 1, 2, ... per project; never reused */
    char *created_by;
    int64_t created_at;
    int active;
    char *archive_path;
    char *archive_sha256;
    rd_env environment; /* dev or prod; RD_ENV_NONE when not recorded (deployed before schema 2) */
} rd_store_deployment;

typedef struct rd_store_variable {
    char *name;
    rd_env environment;
    uint32_t key_id; /* the keyring key its value is sealed with */
    char *updated_by;
    int64_t updated_at;
} rd_store_variable;

/* One variable with its value (a secret), as rd_store_variable_values reads them. */
typedef struct rd_store_value {
    char *name;
    rd_env environment;
    char *value; /* NUL-terminated after its len bytes */
    size_t len;
} rd_store_value;

/* One value to set in a batch (rd_store_variable_patch); borrowed. */
typedef struct rd_store_set_item {
    const char *name;
    const void *value;
    size_t len;
} rd_store_set_item;

typedef struct rd_store_audit_entry {
    int64_t id; /* grows with every entry */
    int64_t at; /* Unix seconds */
    char *actor;
    char *action;      /* "user.add", "variable.set", "deploy", ... */
    char *project;     /* NULL for server-wide actions */
    char *detail_json; /* an object; names (users, variables, tokens), never values */
} rd_store_audit_entry;

typedef struct rd_store_options {
    int busy_timeout_ms; /* waiting for another process's write lock; 0: 10000 */
    int max_connections; /* the SQLite pool; 0: 8 */
} rd_store_options;

/* ---- opening ----------------------------------------------------------------------------------------- */

/* Opens (creating) DATA_DIR/store.db: the directory made 0700 when missing, the file created 0600 and
 * refused (RD_E_CONFIG, "chmod 600") when group or others may access it; WAL, foreign keys, secure_delete
 * and busy_timeout on every connection; the numbered migrations not yet applied run in one transaction
 * (RD_E_CONFIG when the file is newer than this redduck). keyring (borrowed; must outlive the store) may be
 * NULL for commands that touch no variable (variable calls then fail with RD_E_CONFIG); when given, it must
 * open the check value sealed at the data dir's first start (RD_E_CONFIG naming the keyring otherwise).
 * opts may be NULL. */
rd_status rd_store_open_sqlite(const char *data_dir, rd_keyring *keyring, const rd_store_options *opts,
                               rd_store **out, rd_error *err);

/* Closes the backend. NULL is a no-op. */
void rd_store_close(rd_store *st);

/* ---- names ------------------------------------------------------------------------------------------- */

/* 1 when s is a user, project or token name: [A-Za-z0-9][A-Za-z0-9._-]*, at most RD_STORE_NAME_MAX. */
int rd_store_name_valid(const char *s);
/* 1 when s is a variable name: a .env key (rd_dotenv_key_valid: letters, digits, '_', '.', '-', starting with
 * a letter or '_'), at most RD_STORE_VARIABLE_NAME_MAX characters. */
int rd_store_variable_name_valid(const char *s);

/* ---- users and tokens -------------------------------------------------------------------------------- */

/* The first start: when there is no user yet, creates the server admin "admin" with a token named
 * "bootstrap", writes it into token (to be printed once; the caller wipes it) and sets *created to 1;
 * otherwise *created is 0 and token is untouched. Two servers starting at once create one admin. */
rd_status rd_store_bootstrap(rd_store *st, char token[RD_TOKEN_LEN + 1], int *created, rd_error *err);

/* RD_E_USAGE for an invalid name or one that exists. */
rd_status rd_store_user_add(rd_store *st, const char *actor, const char *name, int admin, rd_error *err);
/* Removes the user, their tokens and memberships. RD_E_NOT_FOUND; RD_E_USAGE for the last server admin. */
rd_status rd_store_user_rm(rd_store *st, const char *actor, const char *name, rd_error *err);
rd_status rd_store_user_get(rd_store *st, const char *name, rd_store_user *out, rd_error *err);
/* Sorted by name. */
rd_status rd_store_user_list(rd_store *st, rd_store_user **out, size_t *n, rd_error *err);
void rd_store_user_clear(rd_store_user *u);
void rd_store_users_free(rd_store_user *users, size_t n);

/* A new token for user, named token_name (unique among the user's live tokens): written into token once
 * (the store keeps its SHA-256 only; the caller wipes it). */
rd_status rd_store_token_create(rd_store *st, const char *actor, const char *user, const char *token_name,
                                char token[RD_TOKEN_LEN + 1], rd_error *err);
/* Revokes the user's live token of that name. RD_E_NOT_FOUND when there is none. */
rd_status rd_store_token_revoke(rd_store *st, const char *actor, const char *user, const char *token_name,
                                rd_error *err);
/* The user a presented token belongs to. RD_E_NOT_FOUND for a token unknown, revoked, malformed or of a
 * removed user (one message for all, naming no token). */
rd_status rd_store_token_authenticate(rd_store *st, const char *token, rd_store_user *out, rd_error *err);
/* The same from the token's hash (rd_token_hash), for what was made from a token once checked (the status
 * page's sessions): RD_E_NOT_FOUND once the token is revoked or its user removed. */
rd_status rd_store_token_hash_authenticate(rd_store *st, const char *hash, rd_store_user *out, rd_error *err);

/* ---- projects and roles ------------------------------------------------------------------------------ */

rd_status rd_store_project_create(rd_store *st, const char *actor, const char *name, rd_error *err);
rd_status rd_store_project_get(rd_store *st, const char *name, rd_store_project *out, rd_error *err);
rd_status rd_store_project_list(rd_store *st, rd_store_project **out, size_t *n, rd_error *err);
void rd_store_projects_free(rd_store_project *projects, size_t n);

/* Makes user a member of project with role (not RD_ROLE_NONE) and prod_access (0 or 1), replacing a role
 * held before. */
rd_status rd_store_role_grant(rd_store *st, const char *actor, const char *user, const char *project, rd_role role,
                              int prod_access, rd_error *err);
rd_status rd_store_role_revoke(rd_store *st, const char *actor, const char *user, const char *project,
                               rd_error *err);
/* The membership as stored. RD_E_NOT_FOUND when user is not a member. */
rd_status rd_store_role_get(rd_store *st, const char *user, const char *project, rd_role *role, int *prod_access,
                            rd_error *err);
/* What to ask rd_role_can with: a server admin is admin with prod access; a non-member is RD_ROLE_NONE
 * (RD_OK). RD_E_NOT_FOUND when the user or the project does not exist. */
rd_status rd_store_role_effective(rd_store *st, const char *user, const char *project, rd_role *role,
                                  int *prod_access, rd_error *err);

/* ---- deployments ------------------------------------------------------------------------------------- */

/* Records a deployed archive (already in place at archive_path) made for environment (dev or prod) as the
 * project's next version and makes it the active one, in one write transaction: versions only grow (never
 * reused, also after a failed call) and concurrent deploys of a project are serialised. *version (may be
 * NULL) is written on success. RD_E_USAGE for another environment. */
rd_status rd_store_deploy_env(rd_store *st, const char *actor, const char *project, rd_env environment,
                              const char *archive_path, const char *archive_sha256, int64_t *version,
                              rd_error *err);
/* rd_store_deploy_env with no environment recorded (RD_ENV_NONE). */
rd_status rd_store_deploy(rd_store *st, const char *actor, const char *project, const char *archive_path,
                          const char *archive_sha256, int64_t *version, rd_error *err);
/* Makes an earlier (or any recorded) version the active one (rollback). RD_E_NOT_FOUND for no such version. */
rd_status rd_store_deploy_activate(rd_store *st, const char *actor, const char *project, int64_t version,
                                   rd_error *err);
/* Newest first. */
rd_status rd_store_deploy_list(rd_store *st, const char *project, rd_store_deployment **out, size_t *n,
                               rd_error *err);
/* RD_E_NOT_FOUND when the project has no active version. */
rd_status rd_store_deploy_active(rd_store *st, const char *project, rd_store_deployment *out, rd_error *err);
void rd_store_deployment_clear(rd_store_deployment *d);
void rd_store_deployments_free(rd_store_deployment *d, size_t n);

/* ---- variables --------------------------------------------------------------------------------------- */

/* Seals value (len bytes, at most RD_STORE_VALUE_MAX) with the keyring's active key and stores it under
 * (project, environment, name), replacing an older value. RD_E_USAGE for an invalid name, environment or
 * size; RD_E_NOT_FOUND for no such project. The audit row names the variable, not the value. */
rd_status rd_store_variable_set(rd_store *st, const char *actor, const char *project, rd_env environment,
                                const char *name, const void *value, size_t len, rd_error *err);
/* The value, NUL-terminated after its *len bytes; release with rd_store_secret_free. RD_E_NOT_FOUND;
 * RD_E_CONFIG when the keyring cannot open it (the message names the variable). */
rd_status rd_store_variable_get(rd_store *st, const char *project, rd_env environment, const char *name,
                                char **value, size_t *len, rd_error *err);
/* RD_E_NOT_FOUND when there is no such variable. */
rd_status rd_store_variable_delete(rd_store *st, const char *actor, const char *project, rd_env environment,
                                   const char *name, rd_error *err);
/* The names (no values) of one environment, or of all with RD_ENV_NONE; sorted by environment and name. */
rd_status rd_store_variable_list(rd_store *st, const char *project, rd_env environment, rd_store_variable **out,
                                 size_t *n, rd_error *err);
void rd_store_variables_free(rd_store_variable *v, size_t n);
/* Every variable of environment with its value, read in one transaction and opened with the keyring; with
 * with_shared (and environment not shared) those of shared too. Sorted by environment and name. RD_E_CONFIG
 * when the keyring cannot open one (the message names it; nothing is returned then). Release with
 * rd_store_values_free (it wipes the values). */
rd_status rd_store_variable_values(rd_store *st, const char *project, rd_env environment, int with_shared,
                                   rd_store_value **out, size_t *n, rd_error *err);
void rd_store_values_free(rd_store_value *v, size_t n);
/* Sets nset values and removes nunset names of one environment in one write transaction, with one audit
 * row ("variable.patch", detail {"environment", "set": [names], "unset": [names removed]}): all of it or,
 * on any failure, nothing. Every name and size is checked before anything is written (RD_E_USAGE); a name
 * both set and unset is refused. A name to unset that does not exist is no error: unset_done[i] (may be
 * NULL; nunset entries) is 1 for the names removed, 0 for those absent. */
rd_status rd_store_variable_patch(rd_store *st, const char *actor, const char *project, rd_env environment,
                                  const rd_store_set_item *set, size_t nset, const char *const *unset,
                                  size_t nunset, int *unset_done, rd_error *err);
/* OPENSSL_cleanse and free. NULL is a no-op. */
void rd_store_secret_free(char *value, size_t len);

/* Re-seals, in one transaction, every value not sealed with the keyring's active key (after
 * rd_keyring_add_key: all of them) with that key; the values and their updated_by/_at stay. *count (may be
 * NULL) is how many were re-sealed. RD_E_CONFIG when one cannot be opened (nothing is changed then). */
rd_status rd_store_rotate(rd_store *st, const char *actor, size_t *count, rd_error *err);

/* ---- audit ------------------------------------------------------------------------------------------- */

/* Appends an entry for something that is not a change the store makes itself (a refresh triggered, a
 * login refused). detail_json: a JSON object or NULL ("{}"); it must not hold values or tokens. */
rd_status rd_store_audit_append(rd_store *st, const char *actor, const char *action, const char *project,
                                const char *detail_json, rd_error *err);
/* Newest first, at most limit (0: 100) entries, of one project or of all with project NULL. */
rd_status rd_store_audit_list(rd_store *st, const char *project, size_t limit, rd_store_audit_entry **out,
                              size_t *n, rd_error *err);
void rd_store_audit_free(rd_store_audit_entry *e, size_t n);

/* ---- runs, their log lines, schedule state and snapshots (schema 3) ------------------------------------ */

/* These rows are written often (the scheduler records each state change and log line): each call is one
 * short write transaction with no audit row (runs are their own history; the scheduler audits manual
 * triggers itself with rd_store_audit_append). Text from outside (errors, log lines) is stored as valid
 * UTF-8: invalid bytes become U+FFFD, control characters spaces (an error keeps its newlines and tabs, a
 * log line its tabs), and what is too long is cut at a character boundary and ends with "…". */

#define RD_STORE_SOURCE_NAME_MAX 255     /* bytes of a source's (or a table's) name */
#define RD_STORE_RUN_ERROR_MAX 4096      /* bytes of a run's error as stored, "…" included */
#define RD_STORE_LOG_LINE_MAX 2048       /* bytes of one log line as stored, "…" included */
#define RD_STORE_RUN_LOG_LINES_MAX 10000 /* log lines kept per run; then one "(log truncated)" line */
#define RD_STORE_LOG_TRUNCATED "(log truncated)"
#define RD_STORE_TABLES_JSON_MAX (1024 * 1024) /* bytes of a snapshot's tables_json */

/* 1 when s is a source name as the project loader accepts a file name in sources/: non-empty, at most
 * RD_STORE_SOURCE_NAME_MAX bytes of valid UTF-8, no control character (C0, DEL, C1) and no '/'. It may hold
 * '<', '>', quotes, spaces and any letter: escape it wherever it is shown. */
int rd_store_source_name_valid(const char *s);

typedef enum rd_run_state {
    RD_RUN_QUEUED = 0,
    RD_RUN_RUNNING,
    RD_RUN_SUCCESS,
    RD_RUN_FAILED,
    RD_RUN_SKIPPED,  /* due (or asked for) while a run of the source was queued or running */
    RD_RUN_CANCELLED /* the server stopped during it */
} rd_run_state;
/* "queued", "running", "success", "failed", "skipped", "cancelled" ("unknown" for another value). parse:
 * 0 with *out set, or -1 for an unknown name (NULL included) with *out set to RD_RUN_QUEUED. */
const char *rd_run_state_name(rd_run_state s);
int rd_run_state_parse(const char *s, rd_run_state *out);

typedef enum rd_run_trigger { RD_TRIGGER_SCHEDULE = 0, RD_TRIGGER_MANUAL, RD_TRIGGER_CATCHUP } rd_run_trigger;
/* "schedule", "manual", "catch-up" ("unknown" for another value). */
const char *rd_run_trigger_name(rd_run_trigger t);

/* One run of one source (its last attempt's figures; attempts counts them). Times are Unix milliseconds
 * (0: not yet). */
typedef struct rd_store_run {
    int64_t id;                 /* grows over the whole store */
    char *project, *source, *table_name;
    int64_t version;            /* the deployment it ran */
    rd_run_trigger trigger;
    char *triggered_by;         /* a user for manual runs, "scheduler" otherwise */
    rd_run_state state;
    int attempts;               /* 0 while queued */
    int64_t queued_at, started_at, finished_at;
    uint64_t rows, bytes;
    uint64_t files;
    double probe_s, unload_s, download_s, commit_s, cleanup_s, total_s; /* the phases of the last attempt */
    char *error;                /* the failure's message (never a secret: errors carry none), or NULL */
} rd_store_run;

/* Records a new run (state queued, or skipped with its finished_at set; any state is taken) and writes its
 * id (r->id is ignored). project must exist (RD_E_NOT_FOUND); its name, the source's (and the table's, as
 * rd_store_source_name_valid) and triggered_by (1 to 256 bytes) are checked (RD_E_USAGE), as are the state
 * and the trigger. queued_at 0 is taken as now, and so is finished_at 0 of a run that has ended (success,
 * failed, skipped, cancelled). The error is cleaned and cut as the section says. */
rd_status rd_store_run_insert(rd_store *st, const rd_store_run *r, int64_t *id, rd_error *err);
/* Replaces the run's state, attempts, started_at, finished_at, figures and error (by r->id; its project,
 * source, table, version, trigger and queued_at stay). finished_at 0 of a run that has ended is taken as
 * now. RD_E_NOT_FOUND for no such run. */
rd_status rd_store_run_update(rd_store *st, const rd_store_run *r, rd_error *err);
/* RD_E_NOT_FOUND for no such run. Release with rd_store_run_clear. */
rd_status rd_store_run_get(rd_store *st, int64_t id, rd_store_run *out, rd_error *err);
/* Newest (highest id) first: the runs of project (and of source when not NULL) with queued_at >= since_ms
 * (0: all), at most limit (0: 100; more than 1000: 1000). RD_E_NOT_FOUND for no such project. */
rd_status rd_store_run_list(rd_store *st, const char *project, const char *source, int64_t since_ms,
                            size_t limit, rd_store_run **out, size_t *n, rd_error *err);
/* The newest run of each source of project that is not skipped (one per source, sorted by source name
 * bytewise). RD_E_NOT_FOUND for no such project. */
rd_status rd_store_run_latest(rd_store *st, const char *project, rd_store_run **out, size_t *n, rd_error *err);
/* Runs still queued or running (after a crash): each becomes cancelled with that error (NULL: "the server
 * stopped during the run") and finished_at now, in one transaction. *count (may be NULL) is how many. */
rd_status rd_store_run_abandon(rd_store *st, const char *error, size_t *count, rd_error *err);
/* Retention: removes the runs (and their log lines) that ended before before_ms, except each source's
 * newest ended run that is not skipped (so what rd_store_run_latest shows stays, and the last result of a
 * source whose next run is under way). Queued and running runs stay. Removes them in batches, each its own
 * short write transaction, so the writers of runs are not held up. *count (may be NULL) is how many. */
rd_status rd_store_run_prune(rd_store *st, int64_t before_ms, size_t *count, rd_error *err);
/* Frees the strings and zeroes r. NULL is a no-op. */
void rd_store_run_clear(rd_store_run *r);
void rd_store_runs_free(rd_store_run *r, size_t n);

/* One line of a run's log: what the scheduler did and the ingest's phases, never a value. */
typedef struct rd_store_log_line {
    int64_t seq;     /* grows within the run: 1, 2, ... */
    int64_t at_ms;
    char *line;
} rd_store_log_line;
/* Appends line (cleaned and cut to RD_STORE_LOG_LINE_MAX) as the run's next line, seq = max(seq) + 1 taken
 * in the write transaction (concurrent appends get distinct, gapless seqs), at_ms now. After
 * RD_STORE_RUN_LOG_LINES_MAX lines one more line RD_STORE_LOG_TRUNCATED is kept and later appends are
 * no-ops returning RD_OK. RD_E_NOT_FOUND for no such run. */
rd_status rd_store_run_log_append(rd_store *st, int64_t run_id, const char *line, rd_error *err);
/* The lines of run_id with seq > after_seq, in order, at most limit (0: 1000; more than 10000: 10000).
 * RD_E_NOT_FOUND for no such run. */
rd_status rd_store_run_log_list(rd_store *st, int64_t run_id, int64_t after_seq, size_t limit,
                                rd_store_log_line **out, size_t *n, rd_error *err);
void rd_store_log_lines_free(rd_store_log_line *l, size_t n);

/* The slot a source's schedule last ran (or was skipped) for: how the scheduler knows, after downtime,
 * that a slot was missed. RD_E_NOT_FOUND when never recorded (or no such project). */
rd_status rd_store_schedule_get(rd_store *st, const char *project, const char *source, int64_t *last_slot_ms,
                                rd_error *err);
/* Records (or replaces) it. RD_E_NOT_FOUND for no such project. */
rd_status rd_store_schedule_set(rd_store *st, const char *project, const char *source, int64_t last_slot_ms,
                                rd_error *err);

/* A published snapshot of a project's DuckDB file: an immutable file under DATA_DIR/projects/P/snapshots/. */
typedef struct rd_store_snapshot {
    int64_t id;            /* grows per project */
    char *project;
    char *path;            /* absolute (when the data dir was given so) */
    char *sha256;          /* hex of the file's bytes */
    uint64_t size;
    int64_t created_at_ms;
    int64_t run_id;        /* the run that made it */
    char *tables_json;     /* [{"name":"orders","rows":123},...] of the snapshot, sorted by name */
} rd_store_snapshot;
/* Records a new snapshot (s->id is ignored; *id, may be NULL, written) as project's current one: its id is
 * one more than the project's highest. The path (absolute when the data dir is) must be 1 to 4096 bytes of
 * UTF-8 with no control character, sha256 64 lowercase hex digits, tables_json a JSON array (at most
 * RD_STORE_TABLES_JSON_MAX bytes; stored as given) and run_id >= 0 (RD_E_USAGE otherwise); created_at_ms 0
 * is taken as now. RD_E_NOT_FOUND for no such project. */
rd_status rd_store_snapshot_publish(rd_store *st, const rd_store_snapshot *s, int64_t *id, rd_error *err);
/* The project's current snapshot (the highest id). RD_E_NOT_FOUND when none has been published yet. */
rd_status rd_store_snapshot_current(rd_store *st, const char *project, rd_store_snapshot *out, rd_error *err);
/* The project's snapshots, newest first, at most limit (0: 100; more than 1000: 1000): for pruning older
 * files (never the first one, the current). RD_E_NOT_FOUND for no such project. */
rd_status rd_store_snapshot_list(rd_store *st, const char *project, size_t limit, rd_store_snapshot **out,
                                 size_t *n, rd_error *err);
/* Forgets an older snapshot of project (after its file was removed). RD_E_NOT_FOUND for no such snapshot;
 * RD_E_USAGE for the current one (it is never removed: publish a newer one first). */
rd_status rd_store_snapshot_delete(rd_store *st, const char *project, int64_t id, rd_error *err);
/* Frees the strings and zeroes s. NULL is a no-op. */
void rd_store_snapshot_clear(rd_store_snapshot *s);
void rd_store_snapshots_free(rd_store_snapshot *s, size_t n);

/* ---- backends ---------------------------------------------------------------------------------------- */

/* One transaction on one connection of a backend. */
typedef struct rd_store_tx rd_store_tx;

/* One variable's stored form, as rotate reads it. */
typedef struct rd_store_sealed {
    char *project;
    rd_env environment;
    char *name;
    uint32_t key_id;
    unsigned char *blob;
    size_t blob_len;
} rd_store_sealed;
void rd_store_sealed_free(rd_store_sealed *s, size_t n);

/* What a backend implements. Every data call runs inside a transaction from begin (write: the only writer
 * until commit or rollback); the shared rules live in store.c, so a call does exactly what it says. Users
 * and projects are named; RD_E_NOT_FOUND when a named row does not exist. The backend owns `be`. */
typedef struct rd_store_backend {
    const char *name;
    rd_status (*begin)(void *be, int write, rd_store_tx **tx, rd_error *err);
    rd_status (*commit)(rd_store_tx *tx, rd_error *err); /* ends the transaction also when it fails */
    void (*rollback)(rd_store_tx *tx);
    void (*close)(void *be);

    rd_status (*meta_get)(rd_store_tx *tx, const char *key, unsigned char **value, size_t *len, rd_error *err);
    rd_status (*meta_set)(rd_store_tx *tx, const char *key, const void *value, size_t len, rd_error *err);

    rd_status (*user_insert)(rd_store_tx *tx, const char *name, int admin, int64_t now, rd_error *err);
    rd_status (*user_delete)(rd_store_tx *tx, const char *name, rd_error *err);
    rd_status (*user_get)(rd_store_tx *tx, const char *name, rd_store_user *out, rd_error *err);
    rd_status (*user_list)(rd_store_tx *tx, rd_store_user **out, size_t *n, rd_error *err);
    rd_status (*user_count)(rd_store_tx *tx, int admins_only, int64_t *n, rd_error *err);

    rd_status (*token_insert)(rd_store_tx *tx, const char *user, const char *name, const char *hash, int64_t now,
                              rd_error *err);
    rd_status (*token_revoke)(rd_store_tx *tx, const char *user, const char *name, int64_t now, rd_error *err);
    /* The user of a live token with that hash. */
    rd_status (*token_user)(rd_store_tx *tx, const char *hash, rd_store_user *out, rd_error *err);
    /* 1 in *live when the user holds a live token of that name. */
    rd_status (*token_live)(rd_store_tx *tx, const char *user, const char *name, int *live, rd_error *err);

    rd_status (*project_insert)(rd_store_tx *tx, const char *name, int64_t now, rd_error *err);
    rd_status (*project_get)(rd_store_tx *tx, const char *name, rd_store_project *out, rd_error *err);
    rd_status (*project_list)(rd_store_tx *tx, rd_store_project **out, size_t *n, rd_error *err);

    rd_status (*role_set)(rd_store_tx *tx, const char *user, const char *project, rd_role role, int prod_access,
                          rd_error *err);
    rd_status (*role_get)(rd_store_tx *tx, const char *user, const char *project, rd_role *role,
                          int *prod_access, rd_error *err);
    rd_status (*role_delete)(rd_store_tx *tx, const char *user, const char *project, rd_error *err);

    /* Takes the project's next version number (a counter that only grows) and records it, inactive; env
     * may be RD_ENV_NONE (not recorded). */
    rd_status (*deploy_insert)(rd_store_tx *tx, const char *project, rd_env env, const char *created_by,
                               int64_t now, const char *archive_path, const char *archive_sha256,
                               int64_t *version, rd_error *err);
    /* Makes version the only active one. */
    rd_status (*deploy_activate)(rd_store_tx *tx, const char *project, int64_t version, rd_error *err);
    rd_status (*deploy_list)(rd_store_tx *tx, const char *project, rd_store_deployment **out, size_t *n,
                             rd_error *err);
    rd_status (*deploy_active)(rd_store_tx *tx, const char *project, rd_store_deployment *out, rd_error *err);

    /* Inserts or replaces. */
    rd_status (*variable_put)(rd_store_tx *tx, const char *project, rd_env env, const char *name, uint32_t key_id,
                              const unsigned char *blob, size_t blob_len, const char *updated_by, int64_t now,
                              rd_error *err);
    rd_status (*variable_get)(rd_store_tx *tx, const char *project, rd_env env, const char *name,
                              unsigned char **blob, size_t *blob_len, rd_error *err);
    rd_status (*variable_delete)(rd_store_tx *tx, const char *project, rd_env env, const char *name,
                                 rd_error *err);
    rd_status (*variable_list)(rd_store_tx *tx, const char *project, rd_env env, rd_store_variable **out,
                               size_t *n, rd_error *err);
    /* The sealed variables of one environment of project (and of shared with with_shared), sorted by
     * environment and name. */
    rd_status (*variable_values)(rd_store_tx *tx, const char *project, rd_env env, int with_shared,
                                 rd_store_sealed **out, size_t *n, rd_error *err);
    /* Every variable of every project not sealed with key_id. */
    rd_status (*variable_sealed_other)(rd_store_tx *tx, uint32_t key_id, rd_store_sealed **out, size_t *n,
                                       rd_error *err);
    /* Replaces the blob, keeping updated_by/_at. */
    rd_status (*variable_reseal)(rd_store_tx *tx, const rd_store_sealed *s, uint32_t key_id,
                                 const unsigned char *blob, size_t blob_len, rd_error *err);

    rd_status (*audit_insert)(rd_store_tx *tx, int64_t at, const char *actor, const char *action,
                              const char *project, const char *detail_json, rd_error *err);
    rd_status (*audit_list)(rd_store_tx *tx, const char *project, size_t limit, rd_store_audit_entry **out,
                            size_t *n, rd_error *err);

    /* Runs (schema 3); the strings are already checked and cleaned, the times filled in. */
    rd_status (*run_insert)(rd_store_tx *tx, const rd_store_run *r, int64_t *id, rd_error *err);
    /* By r->id: state, attempts, started_at, finished_at, figures, error. */
    rd_status (*run_update)(rd_store_tx *tx, const rd_store_run *r, rd_error *err);
    rd_status (*run_get)(rd_store_tx *tx, int64_t id, rd_store_run *out, rd_error *err);
    /* source may be NULL (all); limit >= 1; newest first. */
    rd_status (*run_list)(rd_store_tx *tx, const char *project, const char *source, int64_t since_ms,
                          size_t limit, rd_store_run **out, size_t *n, rd_error *err);
    rd_status (*run_latest)(rd_store_tx *tx, const char *project, rd_store_run **out, size_t *n, rd_error *err);
    /* Every queued or running run: cancelled, error, finished_at = now_ms. */
    rd_status (*run_abandon)(rd_store_tx *tx, const char *error, int64_t now_ms, size_t *count, rd_error *err);
    /* Appends line as seq max(seq) + 1 of the run; when the run holds max_lines lines already, appends
     * truncated_line instead, and nothing once it holds more. */
    rd_status (*log_append)(rd_store_tx *tx, int64_t run_id, int64_t at_ms, const char *line, int64_t max_lines,
                            const char *truncated_line, rd_error *err);
    rd_status (*log_list)(rd_store_tx *tx, int64_t run_id, int64_t after_seq, size_t limit,
                          rd_store_log_line **out, size_t *n, rd_error *err);
    rd_status (*schedule_get)(rd_store_tx *tx, const char *project, const char *source, int64_t *last_slot_ms,
                              rd_error *err);
    /* Inserts or replaces. */
    rd_status (*schedule_put)(rd_store_tx *tx, const char *project, const char *source, int64_t last_slot_ms,
                              rd_error *err);
    /* Takes the project's next snapshot id (one more than its highest) and records s under it. */
    rd_status (*snapshot_insert)(rd_store_tx *tx, const rd_store_snapshot *s, int64_t *id, rd_error *err);
    /* Removes at most max_runs ended runs that finished before before_ms, oldest first, keeping each source's
     * newest ended run that is not skipped; *count how many. */
    rd_status (*run_prune)(rd_store_tx *tx, int64_t before_ms, size_t max_runs, size_t *count, rd_error *err);
    /* Removes snapshot id of project unless it is the current one (RD_E_USAGE). */
    rd_status (*snapshot_delete)(rd_store_tx *tx, const char *project, int64_t id, rd_error *err);
    /* Newest first; limit >= 1. */
    rd_status (*snapshot_list)(rd_store_tx *tx, const char *project, size_t limit, rd_store_snapshot **out,
                               size_t *n, rd_error *err);
} rd_store_backend;

/* Wraps an opened backend into a store (on failure the backend is closed): checks the keyring against the
 * data dir's check value (sealing one on the first start). For backends' open functions. */
rd_status rd_store_new(const rd_store_backend *ops, void *be, rd_keyring *keyring, rd_store **out, rd_error *err);

#endif
