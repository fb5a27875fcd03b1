/* redduck/server.h — `redduck server`: the self-hosted service a team deploys projects to and keeps their
 * explicit credentials in, encrypted (docs/SERVER_API.md is its HTTP contract), and the offline commands that
 * manage it on its data dir. Owns the data dir's layout:
 *
 *   DATA_DIR/            0700
 *     store.db           0600, SQLite (with store.db-wal, store.db-shm): users, token hashes, projects, roles,
 *                        deployments, variables sealed with the keyring, the audit log
 *     keyring            0600, the AES-256-GCM keys (elsewhere with --keyring; refused when group or others
 *                        may read it); created on the first start, never printed
 *     projects/P/vN/     version N of project P, the uploaded archive unpacked (immutable)
 *     projects/P/vN.json the deployment's environment and the archive's SHA-256
 *     projects/P/data.duckdb    0600, the project's tables, refreshed by the scheduler (open while it runs)
 *     projects/P/snapshots/     0700, the newest 3 published copies of data.duckdb (0600, read-only)
 *     projects/P/.deploy.lock  serialises deploys of P across processes
 *
 * Nothing a user or client sends is written outside DATA_DIR/projects; no variable value, token or key is ever
 * written in clear under DATA_DIR, printed (but the one-time tokens below, on stdout) or logged.
 * Errors: rd_status and a message naming the data dir, file, user or project, never a secret. */
#ifndef REDDUCK_SERVER_H
#define REDDUCK_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "redduck/error.h"

#define RD_SERVER_DEFAULT_LISTEN "127.0.0.1:8470"
#define RD_SERVER_TOKEN_MAX 128 /* room for a token and its NUL */

typedef struct rd_server_options {
    const char *data_dir;      /* required; created 0700 when missing */
    const char *keyring;       /* NULL: DATA_DIR/keyring */
    const char *listen;        /* HOST:PORT; NULL: RD_SERVER_DEFAULT_LISTEN; port 0 picks a free one */
    const char *tls_cert_file; /* both or neither: HTTPS */
    const char *tls_key_file;
    int insecure_http;         /* allow plain HTTP on an address that is not loopback (a warning is printed) */
    FILE *out;                 /* the URL, the ready line and the first start's admin token; NULL: stdout */
    FILE *log;                 /* one line per request and the warnings; NULL: stderr */
    int max_concurrent_runs;   /* scheduled and manual refreshes at once, across projects; <= 0: 4 */
    int keep_runs_days;        /* runs that ended longer ago are removed (each source's newest ended run stays);
                                  <= 0: 90 */
    /* The query API's limits; 0 / NULL: its defaults (10000 rows, 30 s, "256MB", 8 at once). */
    uint64_t query_max_rows;
    long query_timeout_ms;
    const char *query_max_memory;
    int query_max_concurrent;
} rd_server_options;

/* Runs the server in the foreground until SIGINT or SIGTERM (blocked in the calling thread first: call it
 * before starting other threads). On the first start (an empty store) creates the keyring and the server
 * admin "admin" and prints its token once on out. Starts the scheduler (the deployed projects' refreshes,
 * with their prod variables only: the AWS_* variables of the server's own environment are removed from it
 * first, so that no run can use them) after the store and before the API. Prints "redduck server: listening
 * on http(s)://HOST:PORT", "redduck server: scheduler: N projects, M scheduled sources", then
 * "redduck server: ready". On a stop signal: the API stops, then the scheduler (running refreshes end
 * cancelled, their previous tables intact), then the store closes. Returns RD_OK after a clean stop; RD_E_USAGE for bad options (plain HTTP
 * on an address that is not loopback without insecure_http, one TLS file only, a bad --listen); RD_E_CONFIG
 * for a keyring that others may read, that is missing while the store exists, or that does not open the
 * store; RD_E_IO when it cannot listen. */
rd_status rd_server_run(const rd_server_options *o, rd_error *err);

/* ---- offline commands on the data dir (the server may be running: SQLite serialises the writes) ---------- */

/* Adds a user (a server admin with server_admin), and when project is given makes them a member of it with role
 * ("viewer", "editor", "admin") and prod access (0 or 1). RD_E_NOT_FOUND when the data dir has no store yet
 * (start the server once first) or the project does not exist; RD_E_USAGE for a bad name or role or a user
 * who exists. */
rd_status rd_server_user_add(const char *data_dir, const char *name, int server_admin, const char *project,
                             const char *role, int prod_access, rd_error *err);
/* Removes a user, their tokens and roles. RD_E_USAGE for the last server admin. */
rd_status rd_server_user_rm(const char *data_dir, const char *name, rd_error *err);
/* Prints the users on out, one a line: NAME, "server-admin" or "-", the creation time (UTC). */
rd_status rd_server_user_list(const char *data_dir, FILE *out, rd_error *err);
/* A new token for user, named token_name (NULL: "token-<UTC time>"), written into token (RD_SERVER_TOKEN_MAX
 * bytes) for the caller to print once and wipe; the name used goes into name_out (at least 65 bytes). */
rd_status rd_server_token_create(const char *data_dir, const char *user, const char *token_name,
                                 char token[RD_SERVER_TOKEN_MAX], char *name_out, size_t name_out_len,
                                 rd_error *err);
/* Revokes the user's live token of that name. RD_E_NOT_FOUND when there is none. */
rd_status rd_server_token_revoke(const char *data_dir, const char *user, const char *token_name, rd_error *err);
/* Adds a key to the keyring (keyring NULL: DATA_DIR/keyring) and re-seals every value with it, in one
 * transaction. *new_key_id and *resealed (either may be NULL) say what was done. Stop the server first: a
 * running server keeps the keyring it read at start and could not open values sealed with the new key. */
rd_status rd_server_rotate_key(const char *data_dir, const char *keyring, uint32_t *new_key_id, size_t *resealed,
                               rd_error *err);

/* Wipes n bytes (a token). */
void rd_server_wipe(void *p, size_t n);

#endif
