/* engine.h — the emulator's Redshift: one DuckDB database per (workgroup | cluster, database) under
 * <data_dir>/warehouses/, the Redshift dialect, statements run asynchronously on worker threads
 * (SUBMITTED → PICKED → STARTED → FINISHED | FAILED | ABORTED), results kept for paging, UNLOAD into the
 * S3 store, and the built-in sample data. Thread-safe: every function may be called from any thread.
 * Does not own the S3 store, the emulator context or the logger (all borrowed for the engine's life). */
#ifndef RD_EMULATOR_ENGINE_H
#define RD_EMULATOR_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "emulator/emu_error.h"
#include "redduck/error.h"

struct rd_s3_store;
struct rd_emu;
typedef struct rd_emu_engine rd_emu_engine;

/* Opens the engine: slices = UNLOAD files per statement (0 → 2); store may be NULL (UNLOAD then fails);
 * emu may be NULL (every role allowed); log may be NULL. Registers the default targets: workgroup "demo"
 * and cluster "redshift-cluster-1" (databases are created on first use, "dev" is the usual one). */
rd_status rd_emu_engine_open(const char *data_dir, int slices, struct rd_s3_store *store, struct rd_emu *emu,
                             const rd_log *log, rd_emu_engine **out, rd_error *err);
/* Aborts running statements, waits for the workers, closes the databases, frees. NULL is a no-op. */
void rd_emu_engine_close(rd_emu_engine *eng);

/* Known targets (from the emulator config). Adding an existing one is RD_OK. Names are copied. */
rd_status rd_emu_engine_add_workgroup(rd_emu_engine *eng, const char *name, rd_error *err);
rd_status rd_emu_engine_add_cluster(rd_emu_engine *eng, const char *name, rd_error *err);
/* 1 if the workgroup (is_cluster 0) or cluster (1) is known. */
int rd_emu_engine_has_target(rd_emu_engine *eng, int is_cluster, const char *name);

/* Limits: max_active = statements SUBMITTED/PICKED/STARTED per target before
 * ActiveStatementsExceededException (default 200); page_rows = rows per GetStatementResult page
 * (default 1000). 0 leaves a value unchanged. */
void rd_emu_engine_set_limits(rd_emu_engine *eng, int max_active, size_t page_rows);
/* The role UNLOAD's "IAM_ROLE default" stands for (copied; NULL: none, such an UNLOAD fails). */
rd_status rd_emu_engine_set_default_role(rd_emu_engine *eng, const char *role_arn, rd_error *err);
/* UNLOAD's output pace in bytes per second (the unload.mbps fault; see unload.h); 0 (the default): unpaced.
 * For UNLOADs that start after the call. */
void rd_emu_engine_set_unload_pace(rd_emu_engine *eng, double bytes_per_second);

/* Creates a sample table, deterministic for (spec, seed): spec "sales:rows=1000000" with optional
 * ",workgroup=demo", ",cluster=NAME", ",database=dev", ",table=sales" (defaults shown). Replaces an
 * existing table of that name. RD_E_USAGE on an unknown sample or bad spec. */
rd_status rd_emu_engine_load_sample(rd_emu_engine *eng, const char *spec, unsigned long long seed, rd_error *err);

/* ---- statements (used by data_api.c) ---- */

typedef struct rd_emu_param {
    const char *name;
    const char *value;
} rd_emu_param;

typedef struct rd_emu_submit {
    int is_cluster;           /* 0: workgroup, 1: cluster */
    const char *target;       /* workgroup or cluster name */
    const char *database;
    const char *db_user;      /* may be NULL */
    const char *secret_arn;   /* may be NULL */
    const char *const *sqls;  /* 1 for ExecuteStatement, 1..40 for BatchExecuteStatement */
    size_t sql_count;
    int is_batch;
    const rd_emu_param *params;
    size_t param_count;
    const char *statement_name; /* may be NULL */
    const char *client_token;   /* may be NULL */
    const char *owner;          /* principal ARN (NULL: anonymous, sees only anonymous statements) */
    const char *result_format;  /* "JSON" (NULL) or "CSV" */
    int with_event;
    int fault_fail;             /* 1: the statement ends FAILED (fault injection) */
    const char *session_id;     /* may be NULL: run in this session (it decides target and database, which must
                                   then name its own) */
    int keep_alive_seconds;     /* SessionKeepAliveSeconds (0..86400), -1 when not given: > 0 without session_id
                                   opens a session; with session_id, the session's new keep-alive */
    char *session_id_out;       /* may be NULL: a char[48] receiving the statement's SessionId ("" if none) */
} rd_emu_submit;

/* Sessions: a statement with a session runs on the session's own DuckDB connection (temp tables and settings
 * survive), one statement at a time; the session ends keep_alive_seconds after its last statement ends (at
 * most 24 h after it began), and its connection is closed. */
#define RD_EMU_SESSION_MAX_SECONDS 86400
#define RD_EMU_SESSIONS_PER_TARGET 500

/* The target of a live session the owner may use: 0 and malloc'd copies (db_user / secret_arn may be NULL).
 * Else -1 with err: 400 ValidationException (unknown, another owner's or expired). */
int rd_emu_engine_session_target(rd_emu_engine *eng, const char *session_id, const char *owner, int *is_cluster,
                                 char **target, char **database, char **db_user, char **secret_arn,
                                 rd_emu_error *err);

/* Queues a statement. Writes the id (UUID) and creation time on success: 0. Else -1 with err, the Data API's
 * reply: 400 ValidationException (bad parameters, unknown cluster), ResourceNotFoundException (unknown
 * workgroup, unknown / expired / busy session), ActiveStatementsExceededException, ActiveSessionsExceededException;
 * 500 InternalServerException (out of memory). A ClientToken seen before (same owner) returns the first id. */
int rd_emu_engine_submit(rd_emu_engine *eng, const rd_emu_submit *s, char id_out[48], double *created_at,
                         rd_emu_error *err);
/* Cancels a statement that is not finished: 0. Else -1 with err: 400 ResourceNotFoundException (unknown / not
 * the owner's) or ValidationException (already finished). */
int rd_emu_engine_cancel(rd_emu_engine *eng, const char *id, const char *owner, rd_emu_error *err);
/* Waits until the statement is finished (FINISHED/FAILED/ABORTED) or timeout_ms passes; 1 if finished. */
int rd_emu_engine_wait(rd_emu_engine *eng, const char *id, int timeout_ms);

#endif
