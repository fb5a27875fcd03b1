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
    "                    data.describe.throttle=0.1,data.execute.fail=0,latency.ms=20; and network shaping:\n"
    "                    s3.get.bandwidth=50MB (each connection's GetObject bodies, per second; B, KB, MB,\n"
    "                    GB, KiB, MiB, GiB), s3.get.latency.ms=30 (before each GetObject answer),\n"
    "                    unload.mbps=100 (UNLOAD's output, MB per second: part files appear at that pace)\n"
    "  --seed N          seed for faults and sample data (default 1)\n"
    "  --sample SPEC     create a sample table, e.g. sales:rows=1000000 (workgroup demo, database dev)\n"
    "  --threads N       HTTP worker threads (default 8; with s3.get shaping a thread per connection)\n"
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

/* A number option: its range and how its message says it. */
typedef struct number_opt {
    const char *name, *takes; /* "--port", "a number from 0 to 65535" */
    long lo, hi;
    long value;
} number_opt;

static int parse_number(const char *value, void *dest)
{
    number_opt *n = dest;
    if (!parse_int(value, n->lo, n->hi, &n->value))
        return rd_cli_usage_error("emulator", "%s takes %s, not '%s'", n->name, n->takes, value);
    return 0;
}

typedef struct sample_list {
    const char **items; /* room for argc */
    size_t count;
} sample_list;

static int add_sample(const char *value, void *dest)
{
    sample_list *l = dest;
    l->items[l->count++] = value;
    return 0;
}

int rd_cmd_emulator(int argc, char **argv)
{
    rd_emulator_options o;
    memset(&o, 0, sizeof o);
    o.data_dir = ".redduck/emulator";
    number_opt port = { "--port", "a number from 0 to 65535", 0, 65535, 4566 };
    number_opt slices = { "--slices", "a number from 1 to 128", 1, 128, 0 };
    number_opt threads = { "--threads", "a number from 1 to 256", 1, 256, 0 };
    number_opt seed = { "--seed", "a non-negative number", 0, 0x7fffffffL, 1 };
    number_opt lifetime = { "--lifetime", "a number of seconds", 1, 7L * 24 * 3600, 0 };
    sample_list samples = { calloc((size_t)argc + 1, sizeof *samples.items), 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_PARSE("--port", &port, parse_number),
        RD_CLI_OPT_STRING("--data-dir", &o.data_dir),
        RD_CLI_OPT_STRING("--config", &o.config_path),
        RD_CLI_OPT_PARSE("--slices", &slices, parse_number),
        RD_CLI_OPT_PARSE("--threads", &threads, parse_number),
        RD_CLI_OPT_STRING("--faults", &o.faults),
        RD_CLI_OPT_PARSE("--seed", &seed, parse_number),
        RD_CLI_OPT_PARSE("--sample", &samples, add_sample),
        RD_CLI_OPT_PARSE("--lifetime", &lifetime, parse_number),
        RD_CLI_OPT_FLAG("-v", &o.verbose),
        RD_CLI_OPT_FLAG("--verbose", &o.verbose),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "emulator", emulator_help, opts, 0, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        goto out;
    o.port = (int)port.value;
    o.slices = (int)slices.value;
    o.threads = (int)threads.value;
    o.seed = (unsigned long long)seed.value;
    o.samples = samples.items;
    o.sample_count = samples.count;

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

    rd_httpd_stop_signals_wait(&set, lifetime.value > 0 ? (int)lifetime.value : 0);
    fprintf(stderr, "redduck emulator: stopping\n");
    rd_emulator_stop(emu);
    rc = 0;
out:
    free(samples.items);
    return rc;
}
