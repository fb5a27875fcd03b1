/* engine_internal.h — the engine's statement and session registry, shared by engine.c, sample.c, data_api.c
 * and data_catalog.c (unload.c sees only unload.h). Fields of a statement or session change only under eng->mu;
 * a FINISHED statement's result is immutable and may be read without the lock. */
#ifndef RD_EMULATOR_ENGINE_INTERNAL_H
#define RD_EMULATOR_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "emulator/redshift/dialect.h"
#include "emulator/redshift/duck_redshift.h"
#include "emulator/redshift/engine.h"
#include "redduck/buf.h"

#ifdef RD_HAVE_DUCKDB
#include "duckdb.h"
#endif

typedef enum rd_emu_status {
    RD_ST_SUBMITTED = 0,
    RD_ST_PICKED,
    RD_ST_STARTED,
    RD_ST_FINISHED,
    RD_ST_FAILED,
    RD_ST_ABORTED
} rd_emu_status;

const char *rd_emu_status_name(rd_emu_status st);
/* "ALL" → -1, unknown → -2. */
int rd_emu_status_parse(const char *s);

typedef struct rd_emu_warehouse {
    int is_cluster;
    char *target;
    char *database;
    char *path;
#ifdef RD_HAVE_DUCKDB
    duckdb_database db;
#endif
    struct rd_emu_warehouse *next;
} rd_emu_warehouse;

/* A Data API session (SessionKeepAliveSeconds): its connection is opened by its first statement's worker and
 * used only by the one statement running on it (busy); fields change under eng->mu. */
typedef struct rd_emu_session {
    char id[48];
    int is_cluster;
    char *target, *database, *db_user, *secret_arn, *owner;
#ifdef RD_HAVE_DUCKDB
    duckdb_connection conn;
    int has_conn;
#endif
    int busy;              /* a statement of it is not finished */
    int closed;            /* its keep-alive passed and its connection is gone; kept to answer later uses */
    int keep_alive;        /* seconds after a statement ends */
    int case_sensitive;    /* SET enable_case_sensitive_identifier TO true ran in it (read and written only by
                              the worker running its one statement) */
    double expires_at;     /* rd_emu_now() time; meaningful while not busy */
    double hard_end;       /* begin + RD_EMU_SESSION_MAX_SECONDS */
    struct rd_emu_session *next;
} rd_emu_session;

typedef struct rd_emu_stmt {
    char id[48];
    char session_id[48];        /* "" when the statement runs outside a session */
    rd_emu_session *session;    /* top-level statements of a session, until they finish */
    struct rd_emu_stmt *parent; /* batch sub-statement: the batch */
    struct rd_emu_stmt **subs;
    size_t sub_count;
    char *sql;                  /* as submitted */
    char *duck_sql;             /* rewritten (NULL for UNLOAD / not yet) */
    rd_emu_status status;
    char *error;
    double created_at, updated_at;
    int64_t started_ns, duration_ns;
    int64_t result_rows, result_size;
    int has_result_set;
    int64_t query_id, pid;
    rd_emu_warehouse *wh;
    int is_cluster;
    char *target, *database, *db_user, *secret_arn, *owner, *statement_name, *client_token, *result_format;
    char **param_names, **param_values;
    size_t param_count;
    int is_batch, fault_fail, cancel_requested;
#ifdef RD_HAVE_DUCKDB
    duckdb_connection running; /* set while STARTED */
    duckdb_result result;
    int has_duck_result;
#endif
    rd_emu_column *columns;
    size_t column_count;
    struct rd_emu_stmt *queue_next;
} rd_emu_stmt;

typedef struct rd_emu_target {
    int is_cluster;
    char *name;
} rd_emu_target;

struct rd_emu_engine {
    char *data_dir;
    int slices;
    struct rd_s3_store *store;
    struct rd_emu *emu;
    const rd_log *log;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    pthread_cond_t done_cv;
    rd_emu_stmt **stmts; /* top-level statements in creation order */
    size_t stmt_count, stmt_cap;
    rd_emu_stmt *queue_head, *queue_tail;
    rd_emu_warehouse *warehouses;
    rd_emu_session *sessions;
    rd_emu_target *targets;
    size_t target_count;
    pthread_t *threads;
    pthread_t canceller;     /* re-sends interrupts until cancelled statements stop */
    int canceller_started, canceller_stop;
    int thread_count;
    int stopping;
    int64_t next_query_id;
    int max_active;
    size_t page_rows;
    char *default_role;
    uint64_t tmp_counter;
    double unload_pace; /* bytes per second; 0: unpaced */
};

/* Finds a statement by id ("uuid" or "uuid:N" for a batch part) visible to owner; NULL if none.
 * Caller holds eng->mu. */
rd_emu_stmt *rd_emu_engine_find(rd_emu_engine *eng, const char *id, const char *owner);

double rd_emu_now(void);
/* 1 if both owners are the same principal (NULL matches only NULL). */
int rd_emu_owner_eq(const char *a, const char *b);

#ifdef RD_HAVE_DUCKDB
/* Opens (creating) the warehouse's database. Caller does NOT hold eng->mu. */
rd_status rd_emu_engine_warehouse(rd_emu_engine *eng, int is_cluster, const char *target, const char *database,
                                  rd_emu_warehouse **out, rd_error *err);
/* A new connection with the session settings (UTC, search_path public). */
rd_status rd_emu_engine_connect(rd_emu_warehouse *wh, duckdb_connection *out, rd_error *err);
/* Renders a page of a finished statement's result as Data API records / column metadata (data_api.c). */
#endif

#endif
