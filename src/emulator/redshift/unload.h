/* unload.h — UNLOAD, seen from the statement runner. The runner (engine.c) fills an rd_emu_unload_env with
 * what UNLOAD needs from it; unload.c never sees the engine's registry, so the two do not include each other. */
#ifndef RD_EMULATOR_UNLOAD_H
#define RD_EMULATOR_UNLOAD_H

#include <stdint.h>

#include "redduck/error.h"

struct rd_s3_store;
struct rd_emu;

typedef struct rd_emu_unload_env {
    struct rd_s3_store *store; /* where files are published (borrowed); NULL: UNLOAD is refused */
    struct rd_emu *emu;        /* role policies (borrowed); NULL: every role may write */
    const char *data_dir;      /* scratch files go under data_dir/tmp */
    int slices;                /* files per UNLOAD without PARALLEL OFF */
    int is_cluster;            /* words the "no default IAM role" error */
    /* the role for IAM_ROLE default, or NULL if none is set; malloc'd by the call, freed by UNLOAD */
    char *(*default_role)(void *ctx);
    /* a number never returned before, for temp table and file names; thread safe */
    unsigned long long (*next_tmp)(void *ctx);
    void *ctx;
    /* > 0: the output's pace in bytes per second (the unload.mbps fault): each data file is published no
     * sooner than (the bytes of the files before it and its own) / pace after the UNLOAD began, so the
     * statement lasts at least total / pace; 0: as fast as the files are written */
    double pace_bytes_per_second;
    /* with a pace: asked while waiting (every 50 ms or so); 1 ends the UNLOAD with RD_E_CANCELLED. May be NULL */
    int (*cancelled)(void *cancel_ctx);
    void *cancel_ctx;
} rd_emu_unload_env;

#ifdef RD_HAVE_DUCKDB
#include "duckdb.h"

/* Runs an UNLOAD statement on conn. Sets *rows to the rows unloaded. Errors are RD_E_REMOTE with Redshift's
 * message. env is borrowed for the call. */
rd_status rd_emu_unload_run(const rd_emu_unload_env *env, duckdb_connection conn, const char *sql, int64_t *rows,
                            rd_error *err);
#endif

#endif
