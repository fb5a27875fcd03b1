/* query.h — the server's read-only SQL over a project's published snapshots (the query API), and the parser of
 * the snapshot download's Range header. An engine keeps one read-only DuckDB instance per (project, snapshot)
 * with reference counts: a query uses the project's current snapshot; a newer snapshot gets a new instance and
 * the old one is closed when its last query ends; at most RD_QUERY_CACHE_MAX instances are kept idle. Each
 * instance is opened access_mode=READ_ONLY, enable_external_access=false (no files, no network: read_csv,
 * read_text, glob, ATTACH of a path… fail), no extension installed or loaded, the memory and thread limits,
 * then lock_configuration=true so that no SET can undo any of it. A query is one statement whose prepared type
 * is SELECT; anything else is refused before it runs.
 *
 * Ownership: the engine is the caller's (rd_query_engine_free after the last query); results are freed with
 * rd_query_result_free. Strings passed in are borrowed for the call.
 * Threads: rd_query_run may be called from many threads at once on one engine (its cache has a lock; each
 * query has its own DuckDB connection and a watchdog thread for the timeout). */
#ifndef RD_SERVER_QUERY_H
#define RD_SERVER_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/buf.h"
#include "redduck/error.h"
#include "server/store.h"

#define RD_QUERY_SQL_MAX (64 * 1024)           /* bytes of one query's SQL text */
#define RD_QUERY_CACHE_MAX 4                   /* idle instances kept (several projects) */
#define RD_QUERY_MAX_ANSWER ((size_t)64 << 20) /* bytes of an answer: past it the rows are truncated */

typedef struct rd_query_engine rd_query_engine;

typedef enum rd_query_format { RD_QUERY_JSON, RD_QUERY_CSV } rd_query_format;

#define RD_QUERY_QUEUE_MS 500   /* how long a query waits for a free slot before 429 */
#define RD_QUERY_QUEUE_FACTOR 8 /* waiting queries at most, per slot */

typedef struct rd_query_limits {
    uint64_t max_rows;      /* rows returned; more: truncated (0: 10000) */
    long timeout_ms;        /* the statement is interrupted after this long (0: 30000) */
    const char *max_memory; /* DuckDB memory_limit of an instance (NULL: "256MB"); nothing spills to disk */
    int max_concurrent;     /* queries running at once on the engine; a query over it waits up to
                               RD_QUERY_QUEUE_MS for a slot (at most RD_QUERY_QUEUE_FACTOR × max_concurrent
                               waiting), else RD_QUERY_BUSY (0: 8) */
    int threads;            /* DuckDB threads of an instance (0: 2) */
} rd_query_limits;

/* Why a query did not answer: the API's error code for each. */
typedef enum rd_query_failure {
    RD_QUERY_OK = 0,
    RD_QUERY_BAD_REQUEST,   /* 400 BadRequest: empty SQL, NUL, too long, a syntax or binder error */
    RD_QUERY_REFUSED,       /* 400 Refused: not one SELECT, or external access (files, network) */
    RD_QUERY_TIMEOUT,       /* 408 Timeout: interrupted after timeout_ms */
    RD_QUERY_OUT_OF_MEMORY, /* 400 OutOfMemory: over max_memory */
    RD_QUERY_BUSY,          /* 429 TooManyRequests: max_concurrent queries are running */
    RD_QUERY_NO_DATA,       /* 404 NotFound: the project has no snapshot yet */
    RD_QUERY_INTERNAL       /* 500 Internal: the store failed, the snapshot cannot be opened */
} rd_query_failure;

typedef struct rd_query_result {
    rd_buf body;          /* JSON: {"columns":[{"name","type"}],"rows":[[…]],"row_count","truncated",
                           * "elapsed_ms","snapshot_id"}; CSV: a header row and the rows (LF-ended) */
    uint64_t row_count;   /* rows in body */
    int truncated;        /* rows were left out (max_rows or RD_QUERY_MAX_ANSWER) */
    int64_t snapshot_id;  /* the snapshot the query read */
    long elapsed_ms;
} rd_query_result;

void rd_query_result_free(rd_query_result *r);

rd_status rd_query_engine_new(rd_query_engine **out, rd_error *err);
/* Closes every instance. No query may be running. NULL is a no-op. */
void rd_query_engine_free(rd_query_engine *e);

/* Runs sql (sql_len bytes, no NUL) on project's current snapshot (rd_store_snapshot_current of st). On
 * success *out is filled (rd_query_result_free it) and *why is RD_QUERY_OK. On failure *why says which kind
 * and err's message is one line for the caller (DuckDB's message for SQL errors, never a file path of the
 * server); RD_E_USAGE for BAD_REQUEST/REFUSED/OUT_OF_MEMORY, RD_E_CANCELLED for TIMEOUT, RD_E_REMOTE for BUSY,
 * RD_E_NOT_FOUND for NO_DATA, else the store's or RD_E_IO. */
rd_status rd_query_run(rd_query_engine *e, rd_store *st, const char *project, const char *sql, size_t sql_len,
                       rd_query_format format, const rd_query_limits *limits, rd_query_result *out,
                       rd_query_failure *why, rd_error *err);

/* Instances open now (idle ones included), for tests. */
size_t rd_query_engine_instances(rd_query_engine *e);

/* ---- the Range header of the snapshot download ---------------------------------------------------------- */

typedef enum rd_range_kind {
    RD_RANGE_NONE,         /* absent or malformed (several ranges, a suffix range, junk): the whole file, 200 */
    RD_RANGE_OK,           /* one satisfiable range: 206 with *first..*last */
    RD_RANGE_UNSATISFIABLE /* bytes=N- or N-M with N >= size: 416 */
} rd_range_kind;

/* Parses "bytes=N-" or "bytes=N-M" (one range, decimal, no sign, spaces around allowed) against a file of size
 * bytes. M past the end is clipped to size - 1; M < N is malformed. A pure function of its input. */
rd_range_kind rd_range_parse(const char *header, uint64_t size, uint64_t *first, uint64_t *last);

#endif
