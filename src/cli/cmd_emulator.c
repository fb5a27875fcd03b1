/* cmd_emulator.c — `redduck emulator`: runs the local Redshift Data API + S3 (+ STS/SSO) emulator in the
 * foreground until SIGINT/SIGTERM (or --lifetime). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "httpd/httpd.h"
#include "redduck/emulator.h"

static const char emulator_help[] =
    "usage: redduck emulator [--port N] [--data-dir DIR] [--config FILE] [--slices N] [--faults SPEC]\n"
    "                        [--seed N] [--sample NAME:rows=N]... [--threads N] [--lifetime SECONDS] [-v]\n"
    "\n"
    "Runs a local emulator of the Redshift Data API, Redshift / Redshift Serverless credentials, STS, SSO\n"
    "and S3, backed by DuckDB, on 127.0.0.1 (and ::1) only. Every request is SigV4-verified. State lives in\n"
    "--data-dir and survives a restart. The AWS CLI and boto3 work against it with --endpoint-url.\n"
    "\n"
    "Options:\n"
    "  --port N          port to listen on (0 picks a free one; default 4566)\n"
    "  --data-dir DIR    where S3 objects and DuckDB warehouses live (default .redduck/emulator)\n"
    "  --config FILE     identities JSON: users, roles, allowed actions, workgroups, clusters, buckets\n"
    "                    (default: access key `test`, secret `test`, account 000000000000, us-east-1)\n"
    "  --slices N        files per UNLOAD, as Redshift slices (default 2)\n"
    "  --faults SPEC     seeded faults, e.g. s3.get.reset=0.05,s3.get.slowdown=0.02,s3.get.truncate=0.01,\n"
    "                    data.describe.throttle=0.1,data.execute.fail=0,latency.ms=20\n"
    "  --seed N          seed for faults and sample data (default 1)\n"
    "  --sample SPEC     create a sample table, e.g. sales:rows=1000000 (workgroup demo, database dev)\n"
    "  --threads N       HTTP worker threads (default 8)\n"
    "  --lifetime SECS   stop by itself after SECS seconds (for scripts and tests)\n"
    "  -v                log each request\n";

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

int rd_cmd_emulator(int argc, char **argv)
{
    rd_emulator_options o;
    memset(&o, 0, sizeof o);
    o.port = 4566;
    o.data_dir = ".redduck/emulator";
    o.seed = 1;
    long lifetime = 0, v;
    const char **samples = calloc((size_t)argc + 1, sizeof *samples);
    size_t nsamples = 0;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                  \
    do {                                                                              \
        if (!val) {                                                                   \
            rd_cli_usage_error("emulator", "%s needs a value", a);                    \
            goto out;                                                                 \
        }                                                                             \
        i++;                                                                          \
    } while (0)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(emulator_help, stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o.verbose = 1;
        } else if (strcmp(a, "--port") == 0) {
            NEED_VALUE();
            if (!parse_int(val, 0, 65535, &v)) {
                rd_cli_usage_error("emulator", "--port takes a number from 0 to 65535, not '%s'", val);
                goto out;
            }
            o.port = (int)v;
        } else if (strcmp(a, "--data-dir") == 0) {
            NEED_VALUE();
            o.data_dir = val;
        } else if (strcmp(a, "--config") == 0) {
            NEED_VALUE();
            o.config_path = val;
        } else if (strcmp(a, "--slices") == 0) {
            NEED_VALUE();
            if (!parse_int(val, 1, 128, &v)) {
                rd_cli_usage_error("emulator", "--slices takes a number from 1 to 128, not '%s'", val);
                goto out;
            }
            o.slices = (int)v;
        } else if (strcmp(a, "--threads") == 0) {
            NEED_VALUE();
            if (!parse_int(val, 1, 256, &v)) {
                rd_cli_usage_error("emulator", "--threads takes a number from 1 to 256, not '%s'", val);
                goto out;
            }
            o.threads = (int)v;
        } else if (strcmp(a, "--faults") == 0) {
            NEED_VALUE();
            o.faults = val;
        } else if (strcmp(a, "--seed") == 0) {
            NEED_VALUE();
            if (!parse_int(val, 0, 0x7fffffffL, &v)) {
                rd_cli_usage_error("emulator", "--seed takes a non-negative number, not '%s'", val);
                goto out;
            }
            o.seed = (unsigned long long)v;
        } else if (strcmp(a, "--sample") == 0) {
            NEED_VALUE();
            samples[nsamples++] = val;
        } else if (strcmp(a, "--lifetime") == 0) {
            NEED_VALUE();
            if (!parse_int(val, 1, 7L * 24 * 3600, &lifetime)) {
                rd_cli_usage_error("emulator", "--lifetime takes a number of seconds, not '%s'", val);
                goto out;
            }
        } else {
            rd_cli_usage_error("emulator", "unknown option '%s'", a);
            goto out;
        }
#undef NEED_VALUE
    }
    o.samples = samples;
    o.sample_count = nsamples;

    /* Block the stop signals before any thread starts, then wait for them here. */
    sigset_t set;
    rd_httpd_stop_signals_block(&set);

    rd_error err;
    rd_error_clear(&err);
    rd_emulator *emu = NULL;
    rd_status st = rd_emulator_start(&o, &emu, &err);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        rc = rd_cli_exit_code(st);
        goto out;
    }
    printf("redduck emulator: listening on http://127.0.0.1:%d\n", rd_emulator_port(emu));
    if (!o.config_path)
        printf("redduck emulator: default identity: AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
               "AWS_REGION=us-east-1 (account 000000000000)\n");
    fflush(stdout);

    rd_httpd_stop_signals_wait(&set, lifetime > 0 ? (int)lifetime : 0);
    fprintf(stderr, "redduck emulator: stopping\n");
    rd_emulator_stop(emu);
    rc = 0;
out:
    free(samples);
    return rc;
}
