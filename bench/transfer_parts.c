/* transfer_parts.c — the downloader (rd_transfer_run) against the in-process emulator on loopback, by part
 * size: FILES objects of SIZE_MB MiB each, fetched with CONCURRENCY requests at once, once per part size in
 * PARTS (MiB, comma-separated; 0 = never split: one stream per file), REPEAT times each (median). Prints
 * seconds, MB/s, requests and new connections per part size. FAULTS (environment): the emulator's faults, e.g.
 * "latency.ms=30" for S3's first-byte latency. Built and run by bench/transfer_parts.sh. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "emulator/emulator_internal.h"
#include "emulator/s3/s3_store.h"
#include "ingest/transfer.h"
#include "redduck/emulator.h"
#include "redduck/sigv4.h"

typedef struct bench {
    char base[128];
} bench;

static rd_status presign(void *ctx, const rd_transfer_item *item, uint64_t offset, uint64_t length,
                         const char *if_match, char **url, rd_headers *h, rd_error *err)
{
    bench *b = ctx;
    char u[512];
    snprintf(u, sizeof u, "%s/redduck-staging/%s", b->base, item->name);
    rd_sigv4_params p = { "s3", "us-east-1", time(NULL), "test", "test", NULL, 1, 0, 0, 0 };
    rd_sigv4_request r = { "GET", u, NULL, NULL, 0, NULL };
    rd_status st = rd_sigv4_presign_url(&p, &r, 3600, url, NULL, err);
    char range[64] = "";
    if (length != RD_TRANSFER_SIZE_UNKNOWN)
        snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, offset, offset + length - 1);
    else if (offset > 0)
        snprintf(range, sizeof range, "bytes=%" PRIu64 "-", offset);
    if (st == RD_OK && range[0])
        rd_headers_add(h, "Range", range);
    if (st == RD_OK && if_match)
        rd_headers_add(h, "If-Match", if_match);
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A file of size bytes of pseudo-random data (xorshift: fast, not compressible). */
static int make_file(const char *path, uint64_t size, uint64_t seed)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    enum { CHUNK = 1 << 20 };
    uint64_t *buf = malloc(CHUNK);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (uint64_t done = 0; done < size;) {
        for (size_t i = 0; i < CHUNK / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        size_t n = size - done < CHUNK ? (size_t)(size - done) : CHUNK;
        if (fwrite(buf, 1, n, fp) != n) {
            free(buf);
            fclose(fp);
            return -1;
        }
        done += n;
    }
    free(buf);
    return fclose(fp);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s WORKDIR SIZE_MB FILES CONCURRENCY PARTS_MB [REPEAT]\n", argv[0]);
        return 2;
    }
    const char *work = argv[1];
    uint64_t size = strtoull(argv[2], NULL, 10) << 20;
    int files = atoi(argv[3]), conc = atoi(argv[4]);
    const char *parts = argv[5];
    int repeat = argc > 6 ? atoi(argv[6]) : 3;
    if (files < 1 || files > 64 || conc < 1 || repeat < 1 || size == 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    char data[512], dl[512];
    snprintf(data, sizeof data, "%s/data", work);
    snprintf(dl, sizeof dl, "%s/dl", work);
    mkdir(dl, 0700);
    rd_emulator_options eo = { 0 };
    eo.data_dir = data;
    eo.threads = 16;
    eo.faults = getenv("FAULTS");
    rd_emulator *emu = NULL;
    rd_error err;
    rd_error_clear(&err);
    if (rd_emulator_start(&eo, &emu, &err) != RD_OK) {
        fprintf(stderr, "emulator: %s\n", err.message);
        return 1;
    }
    bench b;
    snprintf(b.base, sizeof b.base, "http://127.0.0.1:%d", rd_emulator_port(emu));
    char names[64][64], paths[64][600];
    rd_transfer_item items[64];
    memset(items, 0, sizeof items);
    for (int i = 0; i < files; i++) {
        char src[600];
        snprintf(src, sizeof src, "%s/src-%d", work, i);
        snprintf(names[i], sizeof names[i], "bench/%04d_part_00.parquet", i);
        if (make_file(src, size, (uint64_t)i + 1) != 0 ||
            rd_s3_store_put_file(emu->store, "redduck-staging", names[i], src, NULL, NULL, NULL) != 0) {
            fprintf(stderr, "cannot store %s\n", names[i]);
            rd_emulator_stop(emu);
            return 1;
        }
        snprintf(paths[i], sizeof paths[i], "%s/f%d", dl, i);
        items[i].name = names[i];
        items[i].expected_size = size;
        items[i].local_path = paths[i];
    }
    printf("transfer_parts: %d x %" PRIu64 " MiB, concurrency %d, median of %d (loopback, in-process emulator%s%s)\n",
           files, size >> 20, conc, repeat, eo.faults ? ", faults " : "", eo.faults ? eo.faults : "");
    printf("part_MiB  seconds    MB/s  requests  connections\n");
    char *list = strdup(parts);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        uint64_t mib = strtoull(tok, NULL, 10);
        double secs[32];
        size_t requests = 0, connections = 0;
        int runs = repeat < 32 ? repeat : 32;
        for (int r = 0; r < runs; r++) {
            char *logbuf = NULL;
            size_t loglen = 0;
            FILE *logf = open_memstream(&logbuf, &loglen);
            rd_log log = { RD_LOG_INFO, logf };
            rd_transfer_options o = { 0 };
            o.concurrency = conc;
            o.part_size = mib ? mib << 20 : UINT64_MAX;
            o.sign = presign;
            o.sign_ctx = &b;
            o.log = &log;
            rd_transfer_stats stats;
            long long t0 = rd_monotonic_ms();
            rd_status st = rd_transfer_run(items, (size_t)files, &o, &stats, &err);
            long long t1 = rd_monotonic_ms();
            fclose(logf);
            if (st != RD_OK) {
                fprintf(stderr, "transfer: %s\n", err.message);
                free(logbuf);
                rd_emulator_stop(emu);
                return 1;
            }
            const char *over = logbuf ? strstr(logbuf, " over ") : NULL;
            connections = over ? strtoull(over + 6, NULL, 10) : 0;
            free(logbuf);
            requests = stats.requests;
            secs[r] = (double)(t1 - t0) / 1000.0;
            for (int i = 0; i < files; i++) {
                struct stat sb;
                if (stat(paths[i], &sb) != 0 || (uint64_t)sb.st_size != size) {
                    fprintf(stderr, "%s: wrong size\n", paths[i]);
                    rd_emulator_stop(emu);
                    return 1;
                }
                unlink(paths[i]);
            }
        }
        qsort(secs, (size_t)runs, sizeof secs[0], cmp_double);
        double med = secs[runs / 2];
        printf("%8s  %7.2f  %6.0f  %8zu  %11zu\n", mib ? tok : "whole", med,
               (double)size * files / 1e6 / med, requests, connections);
        fflush(stdout);
    }
    free(list);
    rd_emulator_stop(emu);
    return 0;
}
