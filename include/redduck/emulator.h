/* redduck/emulator.h — the local emulator of the Redshift Data API, Redshift, Redshift Serverless, STS,
 * SSO and S3 (`redduck emulator`), as a library call so tests and the demo can embed it.
 * Listens on loopback only (127.0.0.1, and ::1 on the same port when available). Every request is SigV4
 * verified. State (S3 objects, DuckDB warehouses) lives under data_dir and survives a restart.
 * Ownership: rd_emulator_start returns a running emulator; rd_emulator_stop stops and frees it. */
#ifndef REDDUCK_EMULATOR_H
#define REDDUCK_EMULATOR_H

#include <stddef.h>
#include <stdio.h>

#include "redduck/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rd_emu rd_emulator;

typedef struct rd_emulator_options {
    int port;                   /* 0: pick a free port */
    const char *data_dir;       /* required: where state lives */
    const char *config_path;    /* identities JSON, or NULL for the LocalStack-style default (test/test) */
    int slices;                 /* UNLOAD files per statement (Redshift slices); 0: 2 */
    const char *faults;         /* "s3.get.reset=0.05,data.describe.throttle=0.1,latency.ms=20" or NULL */
    unsigned long long seed;    /* fault and sample-data seed */
    const char *const *samples; /* sample tables to create: "sales:rows=1000000" */
    size_t sample_count;
    int threads;                /* HTTP worker threads; 0: 8 */
    int verbose;                /* 1: log each request */
    FILE *log_stream;           /* NULL: stderr */
} rd_emulator_options;

rd_status rd_emulator_start(const rd_emulator_options *opts, rd_emulator **out, rd_error *err);
int rd_emulator_port(const rd_emulator *emu);
/* Stops listening, waits for running requests and statements, frees. NULL is a no-op. */
void rd_emulator_stop(rd_emulator *emu);

#ifdef __cplusplus
}
#endif
#endif
