/* redduck/pull.h — the team's data from `redduck server` (docs/SERVER_API.md): `redduck pull` downloads a
 * project's current snapshot into a local DuckDB file (resuming a broken download, checking its SHA-256,
 * replacing the file atomically, saying what changed since the last pull), and `redduck query --cloud` runs one
 * read-only SELECT on it through the server's query API. Needs no AWS credentials: only the server's token
 * (redduck/cloud.h resolves it).
 *
 * Files beside FILE: FILE.part (the download, 0600) and FILE.part.json (which snapshot it is: id, sha256, size)
 * while a download is unfinished; FILE.pull.json (the last pull: snapshot id, its tables and rows) after one.
 * Ownership: results own their strings (freed with their _free). Threads: as cloud.h (one rd_cloud per thread). */
#ifndef REDDUCK_PULL_H
#define REDDUCK_PULL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "redduck/cloud.h"
#include "redduck/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rd_cloud_pull_options {
    const char *project;          /* required */
    const char *into;             /* required: the DuckDB file written */
    const char *const *tables;    /* keep only these tables (ntables > 0); NULL: all */
    size_t ntables;
    /* called as bytes arrive (have of total, the whole snapshot's size); may be NULL */
    void (*progress)(void *ctx, uint64_t have, uint64_t total);
    void *progress_ctx;
} rd_cloud_pull_options;

typedef enum rd_cloud_table_change_kind {
    RD_CLOUD_TABLE_SAME,    /* rows unchanged */
    RD_CLOUD_TABLE_ROWS,    /* rows changed */
    RD_CLOUD_TABLE_NEW,     /* not in the last pull */
    RD_CLOUD_TABLE_REMOVED  /* in the last pull, not now */
} rd_cloud_table_change_kind;

typedef struct rd_cloud_table_change {
    char *name;
    rd_cloud_table_change_kind kind;
    uint64_t rows_before, rows_after;
} rd_cloud_table_change;

typedef struct rd_cloud_pull_result {
    int64_t snapshot_id;
    int64_t previous_id;     /* the last pull's snapshot, 0 for a first pull */
    char *sha256;
    uint64_t size;           /* bytes of the snapshot */
    uint64_t downloaded;     /* bytes that came over the network this time */
    uint64_t resumed_from;   /* > 0: the download went on from this offset of a FILE.part */
    int up_to_date;          /* the file already held this snapshot: nothing was downloaded */
    rd_cloud_table_change *changes; /* every table of now and of the last pull, by name */
    size_t nchanges;
} rd_cloud_pull_result;

/* Pulls as described above. RD_E_NOT_FOUND for an unknown project or no snapshot yet (the message says to run
 * `redduck refresh --cloud`) and for a --tables name the snapshot lacks (naming the tables it has); RD_E_REMOTE
 * when the bytes do not match the server's SHA-256 (FILE.part is deleted); RD_E_NETWORK for a broken transfer
 * (FILE.part is kept: the next pull resumes); RD_E_IO for local files. FILE is replaced only on success. */
rd_status rd_cloud_pull(rd_cloud *c, const rd_cloud_pull_options *o, rd_cloud_pull_result *out, rd_error *err);
void rd_cloud_pull_result_free(rd_cloud_pull_result *r);

typedef struct rd_cloud_query_result {
    char *body;          /* the server's answer as it came: JSON ({"columns","rows",...}) or CSV */
    size_t body_len;
    size_t ncols;
    char **names;        /* ncols column names */
    int *numeric;        /* ncols: 1 for number columns (JSON answers only) */
    size_t nrows;
    char **cells;        /* nrows * ncols texts (NULL for SQL NULL; nested values as JSON); JSON answers only */
    char *objects_json;  /* the rows as a JSON array of objects, one per line (JSON answers only) */
    uint64_t row_count;
    int truncated;       /* the server left rows out (its row limit) */
    int64_t snapshot_id;
} rd_cloud_query_result;

/* Runs sql on project's current snapshot (csv: ask for CSV). A refusal is RD_E_REMOTE with the server's message
 * (not one SELECT, files or network, a SQL error, a timeout, memory; 429: busy), RD_E_DENIED for 403,
 * RD_E_NOT_FOUND for an unknown project or no data yet. */
rd_status rd_cloud_query(rd_cloud *c, const char *project, const char *sql, int csv, rd_cloud_query_result *out,
                         rd_error *err);
void rd_cloud_query_result_free(rd_cloud_query_result *r);

#ifdef __cplusplus
}
#endif
#endif
