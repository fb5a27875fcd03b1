/* test_transfer.c — parallel resumable downloads against the real emulator (in-process, loopback) with
 * seeded faults: connection resets mid-body, truncated bodies and SlowDown answers must all end with
 * byte-identical files, big files fetched as ranges each retried alone; an object replaced mid-download
 * fails through If-Match; items added while the transfer runs complete; a missing object fails with an
 * error naming it. Against a small range server: at most `concurrency` requests at once, and that many
 * reached. And the same downloader on a scripted fake transport (no server): a reset resumed with a Range
 * request, SlowDown retried, a 403 not retried and named, ranges with If-Match, a wrong Content-Range, a
 * 200 to a ranged request, a 412. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "emulator/emulator_internal.h"
#include "emulator/s3/s3_store.h"
#include "ingest/transfer.h"
#include "redduck/buf.h"
#include "redduck/emulator.h"
#include "redduck/sigv4.h"

#define NFILES 24
#define MIB (1024ull * 1024)
/* with big files (setup_sized(.., 1)): two files are split into 1 MiB ranges, the others are smaller */
#define BIG_A 5
#define BIG_B 15
#define SIZE_A 7500000ull            /* 8 ranges, the last one short */
#define SIZE_B (5 * MIB + 123)        /* 6 ranges */
#define MAX_SIGNED 2048

typedef struct signed_req {
    int file;
    uint64_t offset, length;
    int if_match;
} signed_req;

typedef struct fixture {
    char dir[64];
    rd_emulator *emu;
    char base[128];
    unsigned char digests[NFILES][32];
    uint64_t sizes[NFILES];
    char names[NFILES][64];
    char paths[NFILES][128];
    int index[NFILES];
    rd_transfer_item items[NFILES];
    int done_calls, failed_calls;
    signed_req reqs[MAX_SIGNED];
    int nreqs;
    uint64_t progress_bytes;
} fixture;

static void sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

/* Range and If-Match as the S3 client sends them (rd_s3_prepare_get). */
static void add_range(rd_headers *h, uint64_t offset, uint64_t length, const char *if_match)
{
    char range[64] = "";
    if (length != RD_TRANSFER_SIZE_UNKNOWN)
        snprintf(range, sizeof range, "bytes=%" PRIu64 "-%" PRIu64, offset, offset + length - 1);
    else if (offset > 0)
        snprintf(range, sizeof range, "bytes=%" PRIu64 "-", offset);
    if (range[0])
        rd_headers_add(h, "Range", range);
    if (if_match)
        rd_headers_add(h, "If-Match", if_match);
}

static rd_status presign(void *ctx, const rd_transfer_item *item, uint64_t offset, uint64_t length,
                         const char *if_match, char **url, rd_headers *h, rd_error *err)
{
    fixture *f = ctx;
    if (f->nreqs < MAX_SIGNED)
        f->reqs[f->nreqs++] = (signed_req){ *(const int *)item->user, offset, length, if_match != NULL };
    char u[512];
    snprintf(u, sizeof u, "%s/redduck-staging/%s", f->base, item->name);
    rd_sigv4_params p = { "s3", "us-east-1", time(NULL), "test", "test", NULL, 1, 0, 0, 0 };
    rd_sigv4_request r = { "GET", u, NULL, NULL, 0, NULL };
    rd_status st = rd_sigv4_presign_url(&p, &r, 300, url, NULL, err);
    if (st == RD_OK)
        add_range(h, offset, length, if_match);
    return st;
}

static rd_status on_done(void *ctx, const rd_transfer_item *item, rd_status st, const rd_error *err)
{
    (void)item;
    (void)err;
    fixture *f = ctx;
    if (st == RD_OK)
        f->done_calls++;
    else
        f->failed_calls++;
    return RD_OK;
}

static void on_progress(void *ctx, uint64_t bytes, size_t done, size_t total)
{
    (void)done;
    (void)total;
    fixture *f = ctx;
    f->progress_bytes = bytes;
}

static void fill(unsigned char *buf, size_t size)
{
    for (size_t j = 0; j < size; j++)
        buf[j] = (unsigned char)rand();
}

static fixture *setup_sized(const char *faults, int big)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/rd-transfer-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char data[128];
    snprintf(data, sizeof data, "%s/data", f->dir);
    rd_emulator_options o = { 0 };
    o.data_dir = data;
    o.faults = faults;
    o.seed = 7;
    o.threads = 4;
    o.log_stream = stderr;
    rd_error err;
    rd_error_clear(&err);
    if (rd_emulator_start(&o, &f->emu, &err) != RD_OK)
        fail_msg("emulator: %s", err.message);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", rd_emulator_port(f->emu));
    srand(11);
    for (int i = 0; i < NFILES; i++) {
        /* with big files, the others stay under the 1 MiB part size */
        size_t size = i == 0 ? 0 : (size_t)(rand() % (big ? 1024 * 1024 : 3 * 1024 * 1024));
        if (big && i == BIG_A)
            size = SIZE_A;
        else if (big && i == BIG_B)
            size = SIZE_B;
        unsigned char *buf = malloc(size + 1);
        fill(buf, size);
        snprintf(f->names[i], sizeof f->names[i], "stage/0%03d_part_00.parquet", i);
        assert_int_equal(rd_s3_store_put_data(f->emu->store, "redduck-staging", f->names[i], buf, size, NULL, NULL, NULL),
                         0);
        sha256(buf, size, f->digests[i]);
        f->sizes[i] = size;
        free(buf);
        snprintf(f->paths[i], sizeof f->paths[i], "%s/file-%d", f->dir, i);
        f->index[i] = i;
        f->items[i].name = f->names[i];
        f->items[i].expected_size = size;
        f->items[i].local_path = f->paths[i];
        f->items[i].user = &f->index[i];
    }
    return f;
}

static fixture *setup(const char *faults)
{
    return setup_sized(faults, 0);
}

static void teardown(fixture *f)
{
    rd_emulator_stop(f->emu);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

static void check_file(fixture *f, int i)
{
    FILE *fp = fopen(f->paths[i], "rb");
    assert_non_null(fp);
    unsigned char *buf = malloc(f->sizes[i] + 1);
    assert_int_equal(fread(buf, 1, f->sizes[i] + 1, fp), f->sizes[i]);
    fclose(fp);
    unsigned char d[32];
    sha256(buf, f->sizes[i], d);
    free(buf);
    if (memcmp(d, f->digests[i], 32) != 0)
        fail_msg("file %d differs", i);
    struct stat sb;
    assert_int_equal(stat(f->paths[i], &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void check_files(fixture *f)
{
    for (int i = 0; i < NFILES; i++)
        check_file(f, i);
}

static rd_transfer_options emu_options(fixture *f, int concurrency)
{
    rd_transfer_options o = { 0 };
    o.concurrency = concurrency;
    o.sign = presign;
    o.sign_ctx = f;
    o.done = on_done;
    o.done_ctx = f;
    o.progress = on_progress;
    o.progress_ctx = f;
    return o;
}

static uint64_t ranges_of(uint64_t size, uint64_t ps)
{
    return size > ps ? (size + ps - 1) / ps : 1;
}

static void test_clean_transfer(void **state)
{
    (void)state;
    fixture *f = setup(NULL);
    rd_transfer_options o = emu_options(f, 8);
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(f->items, NFILES, &o, &stats, &err), RD_OK);
    assert_int_equal(stats.files, NFILES);
    assert_int_equal(f->done_calls, NFILES);
    assert_int_equal(stats.retries, 0);
    assert_int_equal(stats.ranged_files, 0); /* all under the default 32 MiB */
    assert_int_equal(stats.requests, NFILES);
    uint64_t total = 0;
    for (int i = 0; i < NFILES; i++)
        total += f->sizes[i];
    assert_int_equal(stats.bytes, total);
    assert_int_equal(f->progress_bytes, total);
    /* unsplit items ask for the whole object (no Range, length unknown) and, without a listing ETag, no
     * If-Match on their only request */
    assert_int_equal(f->nreqs, NFILES);
    for (int i = 0; i < f->nreqs; i++) {
        assert_int_equal(f->reqs[i].offset, 0);
        assert_true(f->reqs[i].length == RD_TRANSFER_SIZE_UNKNOWN);
        assert_false(f->reqs[i].if_match);
    }
    check_files(f);
    teardown(f);
}

static void test_faults_resume_to_identical_files(void **state)
{
    (void)state;
    fixture *f = setup("s3.get.reset=0.3,s3.get.truncate=0.2,s3.get.slowdown=0.15");
    rd_transfer_options o = emu_options(f, 8);
    o.max_attempts = 40;
    o.backoff_base_ms = 5;
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(f->items, NFILES, &o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(stats.files, NFILES);
    assert_true(stats.retries > 0);
    assert_true(stats.resumes > 0); /* broken bodies continued with Range requests */
    assert_int_equal(stats.requests, NFILES + stats.retries);
    check_files(f);
    teardown(f);
}

/* The requests made for the split files: each asks for the rest of one range, never across two; only the
 * first range's attempts go before the ETag is known, every other request carries If-Match. Returns how
 * many continued a range from inside it. */
static int check_split_requests(fixture *f, uint64_t ps)
{
    int inside = 0, split_reqs = 0;
    for (int i = 0; i < f->nreqs; i++) {
        const signed_req *r = &f->reqs[i];
        uint64_t size = f->sizes[r->file];
        if (size <= ps) {
            assert_true(r->length == RD_TRANSFER_SIZE_UNKNOWN);
            continue;
        }
        split_reqs++;
        assert_true(r->length != RD_TRANSFER_SIZE_UNKNOWN && r->length > 0);
        uint64_t k = r->offset / ps;
        uint64_t end = (k + 1) * ps < size ? (k + 1) * ps : size;
        assert_int_equal(r->offset + r->length, end);
        if (r->offset % ps)
            inside++;
        if (!r->if_match)
            assert_true(r->offset < ps);
    }
    assert_true(split_reqs >= (int)(ranges_of(SIZE_A, ps) + ranges_of(SIZE_B, ps)));
    return inside;
}

static void test_split_files_arrive_identical(void **state)
{
    (void)state;
    fixture *f = setup_sized(NULL, 1);
    rd_transfer_options o = emu_options(f, 8);
    o.part_size = MIB;
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(f->items, NFILES, &o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(stats.files, NFILES);
    assert_int_equal(f->done_calls, NFILES);
    assert_int_equal(stats.ranged_files, 2);
    assert_int_equal(stats.retries, 0);
    assert_int_equal(stats.requests, NFILES - 2 + ranges_of(SIZE_A, MIB) + ranges_of(SIZE_B, MIB));
    assert_int_equal(check_split_requests(f, MIB), 0);
    /* exactly one request of each split file went without If-Match: its first */
    int without = 0;
    for (int i = 0; i < f->nreqs; i++)
        without += (f->reqs[i].file == BIG_A || f->reqs[i].file == BIG_B) && !f->reqs[i].if_match;
    assert_int_equal(without, 2);
    check_files(f);
    teardown(f);
}

static void test_split_files_with_faults_retry_ranges_alone(void **state)
{
    (void)state;
    fixture *f = setup_sized("s3.get.reset=0.3,s3.get.truncate=0.2,s3.get.slowdown=0.15", 1);
    rd_transfer_options o = emu_options(f, 8);
    o.part_size = 1; /* raised to RD_TRANSFER_MIN_PART_SIZE */
    o.max_attempts = 40;
    o.backoff_base_ms = 5;
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(f->items, NFILES, &o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(stats.files, NFILES);
    assert_int_equal(stats.ranged_files, 2);
    assert_true(stats.retries > 0);
    assert_true(stats.resumes > 0);
    /* one request per unit of work, plus one per retry: a broken range was asked again alone */
    assert_int_equal(stats.requests, NFILES - 2 + ranges_of(SIZE_A, MIB) + ranges_of(SIZE_B, MIB) + stats.retries);
    assert_true(f->nreqs < MAX_SIGNED);
    assert_true(check_split_requests(f, MIB) > 0); /* ranges continued from where they broke */
    check_files(f);
    teardown(f);
}

/* The listing's ETag goes as If-Match from the first request on; a stale one fails at once, naming it. */
static void test_listing_etag_is_matched(void **state)
{
    (void)state;
    fixture *f = setup_sized(NULL, 1);
    rd_s3_object_info info;
    memset(&info, 0, sizeof info);
    assert_int_equal(rd_s3_store_head(f->emu->store, "redduck-staging", f->names[BIG_A], &info, NULL), 0);
    rd_transfer_item item = f->items[BIG_A];
    item.etag = info.etag;
    rd_transfer_options o = emu_options(f, 4);
    o.part_size = MIB;
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(&item, 1, &o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(stats.requests, ranges_of(SIZE_A, MIB));
    for (int i = 0; i < f->nreqs; i++)
        assert_true(f->reqs[i].if_match);
    check_file(f, BIG_A);
    rd_s3_object_info_free(&info);

    item.etag = "\"0123456789abcdef0123456789abcdef\"";
    f->nreqs = 0;
    assert_int_equal(rd_transfer_run(&item, 1, &o, &stats, &err), RD_E_REMOTE);
    assert_string_equal(err.message, "s3 object stage/0005_part_00.parquet changed while it was downloading (ETag was "
                                     "\"0123456789abcdef0123456789abcdef\", now a different one): run again");
    assert_int_equal(f->failed_calls, 1);
    teardown(f);
}

/* The object is overwritten between two steps: the ranges asked after carry the first response's ETag as
 * If-Match, the emulator answers 412 and the item fails for good instead of mixing two versions. */
static void test_object_replaced_mid_transfer_fails(void **state)
{
    (void)state;
    fixture *f = setup_sized(NULL, 1);
    rd_s3_object_info info;
    memset(&info, 0, sizeof info);
    assert_int_equal(rd_s3_store_head(f->emu->store, "redduck-staging", f->names[BIG_A], &info, NULL), 0);
    char old_etag[48];
    snprintf(old_etag, sizeof old_etag, "%s", info.etag);
    rd_s3_object_info_free(&info);

    rd_transfer_options o = emu_options(f, 2);
    o.part_size = MIB;
    rd_transfer *t = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_new(&o, &t, &err), RD_OK);
    assert_int_equal(rd_transfer_add(t, &f->items[BIG_A], &err), RD_OK);
    for (int i = 0; f->progress_bytes == 0; i++) {
        assert_true(i < 10000);
        assert_int_equal(rd_transfer_step(t, 0, &err), RD_OK);
        if (f->progress_bytes == 0)
            usleep(500);
    }
    assert_true(f->progress_bytes < SIZE_A / 2); /* at most two ranges in, four running or done */
    unsigned char *other = malloc(SIZE_A);
    fill(other, SIZE_A);
    assert_int_equal(
        rd_s3_store_put_data(f->emu->store, "redduck-staging", f->names[BIG_A], other, SIZE_A, NULL, NULL, NULL), 0);
    free(other);
    assert_int_equal(rd_transfer_finish(t, &err), RD_E_REMOTE);
    /* a 412 names no ETag: the new object never answered a request of this item */
    char want[256];
    snprintf(want, sizeof want, "s3 object stage/0005_part_00.parquet changed while it was downloading (ETag was %s, "
             "now a different one): run again", old_etag);
    assert_string_equal(err.message, want);
    assert_int_equal(f->failed_calls, 1);
    assert_int_equal(f->done_calls, 0);
    /* sticky: later calls say the same */
    rd_error again;
    rd_error_clear(&again);
    assert_int_equal(rd_transfer_step(t, 0, &again), RD_E_REMOTE);
    assert_string_equal(again.message, err.message);
    assert_int_equal(rd_transfer_pending(t), 0);
    rd_transfer_free(t);
    teardown(f);
}

/* Items added while the transfer runs (as ingest adds UNLOAD's files as they appear) complete; pending
 * counts what is not done; a transfer that ran dry takes new items. */
static void test_items_added_while_running(void **state)
{
    (void)state;
    fixture *f = setup_sized(NULL, 1);
    rd_transfer_options o = emu_options(f, 4);
    o.part_size = MIB;
    rd_transfer *t = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_new(&o, &t, &err), RD_OK);
    assert_int_equal(rd_transfer_pending(t), 0);
    assert_int_equal(rd_transfer_step(t, 0, &err), RD_OK); /* nothing to do */
    for (int i = 0; i < 10; i++)
        assert_int_equal(rd_transfer_add(t, &f->items[i], &err), RD_OK);
    assert_int_equal(rd_transfer_pending(t), 10);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rd_transfer_step(t, 5, &err), RD_OK);
    for (int i = 10; i < NFILES; i++) {
        assert_int_equal(rd_transfer_add(t, &f->items[i], &err), RD_OK);
        assert_int_equal(rd_transfer_pending(t), (size_t)(i + 1 - f->done_calls));
        assert_int_equal(rd_transfer_step(t, 1, &err), RD_OK);
    }
    size_t last = rd_transfer_pending(t);
    for (int i = 0; rd_transfer_pending(t) > 0; i++) {
        assert_true(i < 100000);
        assert_int_equal(rd_transfer_step(t, 20, &err), RD_OK);
        size_t now = rd_transfer_pending(t);
        assert_true(now <= last);
        assert_int_equal(now, (size_t)(NFILES - f->done_calls));
        last = now;
    }
    assert_int_equal(f->done_calls, NFILES);
    check_files(f);
    /* ran dry, then one more */
    rd_transfer_item again = f->items[BIG_B];
    char path[sizeof f->paths[0]];
    snprintf(path, sizeof path, "%.64s/again", f->dir);
    again.local_path = path;
    assert_int_equal(rd_transfer_add(t, &again, &err), RD_OK);
    assert_int_equal(rd_transfer_pending(t), 1);
    assert_int_equal(rd_transfer_finish(t, &err), RD_OK);
    assert_int_equal(rd_transfer_pending(t), 0);
    rd_transfer_stats stats;
    rd_transfer_get_stats(t, &stats);
    assert_int_equal(stats.files, NFILES + 1);
    assert_int_equal(stats.ranged_files, 3);
    rd_transfer_free(t);
    snprintf(f->paths[BIG_B], sizeof f->paths[BIG_B], "%s", path);
    check_file(f, BIG_B);
    teardown(f);
}

static void test_missing_object_fails_naming_it(void **state)
{
    (void)state;
    fixture *f = setup(NULL);
    f->items[5].name = "stage/nope.parquet";
    rd_transfer_options o = emu_options(f, 4);
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(f->items, NFILES, &o, NULL, &err), RD_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "stage/nope.parquet"));
    assert_non_null(strstr(err.message, "NoSuchKey"));
    assert_int_equal(f->failed_calls, 1);
    teardown(f);
}

/* A full disk is not the network: the first ENOSPC ends the transfer, naming the directory and the way out,
 * instead of ten retries reported as curl's "Failure writing output to destination". */
static void test_full_disk_fails_at_once(void **state)
{
    (void)state;
    fixture *f = setup(NULL);
    int big = 1;
    while (f->sizes[big] < 65536)
        big++;
    f->items[big].local_path = "/dev/full"; /* every write: ENOSPC */
    rd_transfer_options o = emu_options(f, 1);
    o.backoff_base_ms = 5;
    o.disk_full_hint = "free space or lower --max-local-bytes";
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(&f->items[big], 1, &o, &stats, &err), RD_E_IO);
    assert_string_equal(err.message, "No space left on device on /dev: free space or lower --max-local-bytes");
    assert_int_equal(stats.retries, 0);
    teardown(f);
}

/* --- a small range server: how many requests run at once ----------------------------------------------- */

#define RS_BIG (12 * MIB)
#define RS_SMALL 100000

typedef struct range_server {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight, peak, gated, gate_want, requests;
    unsigned char *data;
    struct MHD_Daemon *d;
    int port;
} range_server;

typedef struct rs_body {
    range_server *rs;
    uint64_t first, len;
    int counted; /* still counted in flight */
} rs_body;

static void rs_leave(rs_body *b)
{
    if (!b->counted)
        return;
    b->counted = 0;
    pthread_mutex_lock(&b->rs->mu);
    b->rs->inflight--;
    pthread_mutex_unlock(&b->rs->mu);
}

/* The last bytes leave the request's count before they are sent: the client cannot have started its next
 * request before, so the count never runs ahead of the client's. */
static ssize_t rs_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    rs_body *b = cls;
    if (pos >= b->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = max < b->len - pos ? max : (size_t)(b->len - pos);
    memcpy(buf, b->rs->data + b->first + pos, n);
    if (pos + n == b->len)
        rs_leave(b);
    return (ssize_t)n;
}

static void rs_free(void *cls)
{
    rs_leave(cls);
    free(cls);
}

static enum MHD_Result rs_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)method;
    (void)version;
    (void)data;
    (void)size;
    range_server *rs = cls;
    if (!*con_cls) {
        *con_cls = rs;
        return MHD_YES;
    }
    uint64_t total = strcmp(url, "/big") == 0 ? RS_BIG : RS_SMALL;
    uint64_t first = 0, last = total - 1;
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    if (range) {
        unsigned long long a = 0, b = 0;
        int n = sscanf(range, "bytes=%llu-%llu", &a, &b);
        assert_true(n >= 1);
        first = a;
        if (n == 2)
            last = b;
        assert_true(first <= last && last < total);
    }
    rs_body *body = calloc(1, sizeof *body);
    body->rs = rs;
    body->first = first;
    body->len = last - first + 1;
    body->counted = 1;
    pthread_mutex_lock(&rs->mu);
    rs->requests++;
    if (++rs->inflight > rs->peak)
        rs->peak = rs->inflight;
    pthread_cond_broadcast(&rs->cv);
    if (rs->gated < rs->gate_want) {
        /* the first ones wait until gate_want are in at once (at most 3 s): the downloader must have them
         * all running together */
        rs->gated++;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 3;
        while (rs->inflight < rs->gate_want && pthread_cond_timedwait(&rs->cv, &rs->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&rs->mu);
    struct MHD_Response *r = MHD_create_response_from_callback(body->len, 65536, rs_read, body, rs_free);
    MHD_add_response_header(r, "ETag", "\"range-server\"");
    if (range) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, total);
        MHD_add_response_header(r, "Content-Range", cr);
    }
    enum MHD_Result ret = MHD_queue_response(c, range ? 206 : 200, r);
    MHD_destroy_response(r);
    return ret;
}

static rd_status rs_sign(void *ctx, const rd_transfer_item *item, uint64_t offset, uint64_t length,
                         const char *if_match, char **url, rd_headers *h, rd_error *err)
{
    (void)err;
    range_server *rs = ctx;
    rd_buf u = RD_BUF_INIT;
    rd_buf_printf(&u, "http://127.0.0.1:%d/%s", rs->port, item->expected_size == RS_BIG ? "big" : "small");
    *url = rd_buf_detach(&u);
    add_range(h, offset, length, if_match);
    return RD_OK;
}

static void test_concurrency_is_respected(void **state)
{
    (void)state;
    range_server rs;
    memset(&rs, 0, sizeof rs);
    pthread_mutex_init(&rs.mu, NULL);
    pthread_cond_init(&rs.cv, NULL);
    rs.gate_want = 4;
    rs.data = malloc(RS_BIG);
    srand(5);
    fill(rs.data, RS_BIG);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rs.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, rs_handler,
                            &rs, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    assert_non_null(rs.d);
    rs.port = MHD_get_daemon_info(rs.d, MHD_DAEMON_INFO_BIND_PORT)->port;

    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/rd-transfer-conc-XXXXXX");
    assert_non_null(mkdtemp(dir));
    enum { N = 7 };
    char paths[N][96];
    rd_transfer_item items[N];
    memset(items, 0, sizeof items);
    for (int i = 0; i < N; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/f%d", dir, i);
        items[i].name = i == 1 ? "big" : "small";
        items[i].expected_size = i == 1 ? RS_BIG : RS_SMALL;
        items[i].local_path = paths[i];
    }
    rd_transfer_options o = { 0 };
    o.concurrency = 4;
    o.part_size = MIB;
    o.sign = rs_sign;
    o.sign_ctx = &rs;
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(items, N, &o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    MHD_stop_daemon(rs.d);
    assert_int_equal(rs.peak, 4); /* never more than asked, and that many reached */
    assert_int_equal(rs.requests, N - 1 + RS_BIG / MIB);
    assert_int_equal(stats.requests, N - 1 + RS_BIG / MIB);
    assert_int_equal(stats.ranged_files, 1);
    for (int i = 0; i < N; i++) {
        uint64_t size = items[i].expected_size;
        unsigned char *got = malloc(size + 1);
        FILE *fp = fopen(paths[i], "rb");
        assert_non_null(fp);
        assert_int_equal(fread(got, 1, size + 1, fp), size);
        fclose(fp);
        assert_memory_equal(got, rs.data, size);
        free(got);
        unlink(paths[i]);
    }
    rmdir(dir);
    free(rs.data);
    pthread_cond_destroy(&rs.cv);
    pthread_mutex_destroy(&rs.mu);
}

/* --- the downloader on a scripted fake transport ------------------------------------------------------ */

enum fake_action {
    FAKE_FULL,             /* what was asked: 200, or 206 with its Content-Range */
    FAKE_RESET_AT_1000,    /* 1000 bytes of what was asked, then a reset */
    FAKE_RESET_AT_END,     /* all of it, then a reset */
    FAKE_SLOWDOWN,
    FAKE_FORBIDDEN,
    FAKE_PRECONDITION,     /* 412 */
    FAKE_416,
    FAKE_IGNORE_RANGE,     /* 200 with the whole object, whatever the Range */
    FAKE_WRONG_TOTAL,      /* 206 whose Content-Range says the object is a byte longer */
    FAKE_WRONG_START,      /* 206 of the bytes from one further on, saying so */
    FAKE_NO_CONTENT_RANGE, /* 206 without a Content-Range */
    FAKE_OTHER_ETAG,       /* FAKE_FULL with another ETag */
};
#define FAKE_CALLS 16
#define FAKE_SIZE 4000
#define FAKE_ETAG "\"fake-1\""

typedef struct fake_s3 {
    rd_http_transport base;
    unsigned char *object;
    size_t size;
    enum fake_action script[FAKE_CALLS];
    int n, calls;
    char range[FAKE_CALLS][64];    /* the Range header of each call, "" without */
    char if_match[FAKE_CALLS][64]; /* the If-Match header of each call, "" without */
    char url[FAKE_CALLS][256];
} fake_s3;

/* Hands data to the request's sink as libcurl does. */
static rd_status fake_deliver(const rd_http_request *req, rd_http_response *resp, const void *data, size_t len,
                              rd_error *err)
{
    if (!req->on_body)
        return rd_buf_append(&resp->body, data, len);
    if (len && req->on_body(req->on_body_ctx, data, len) != len)
        return rd_error_set(err, RD_E_IO, "receiving from fake: the local sink refused the data");
    return RD_OK;
}

static rd_status fake_error(const rd_http_request *req, rd_http_response *resp, int status, const char *code,
                            rd_error *err)
{
    char body[256];
    snprintf(body, sizeof body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
             "<Message>no</Message></Error>", code);
    resp->status = status;
    return fake_deliver(req, resp, body, strlen(body), err);
}

static rd_status fake_send(rd_http_transport *t, const rd_http_request *req, rd_http_response *resp, rd_error *err)
{
    fake_s3 *f = (fake_s3 *)t;
    int i = f->calls++;
    assert_true(i < f->n);
    assert_string_equal(req->method, "GET");
    const char *range = rd_headers_get(req->headers, "Range");
    const char *im = rd_headers_get(req->headers, "If-Match");
    snprintf(f->range[i], sizeof f->range[i], "%s", range ? range : "");
    snprintf(f->if_match[i], sizeof f->if_match[i], "%s", im ? im : "");
    snprintf(f->url[i], sizeof f->url[i], "%s", req->url);
    size_t from = 0, to = f->size ? f->size - 1 : 0;
    if (range) {
        assert_true(sscanf(range, "bytes=%zu-%zu", &from, &to) >= 1);
        if (to >= f->size)
            to = f->size - 1;
    }
    enum fake_action a = f->script[i];
    switch (a) {
    case FAKE_SLOWDOWN:
        return fake_error(req, resp, 503, "SlowDown", err);
    case FAKE_FORBIDDEN:
        return fake_error(req, resp, 403, "AccessDenied", err);
    case FAKE_PRECONDITION:
        return fake_error(req, resp, 412, "PreconditionFailed", err);
    case FAKE_416:
        assert_true(from >= f->size);
        return fake_error(req, resp, 416, "InvalidRange", err);
    case FAKE_IGNORE_RANGE:
        resp->status = 200;
        rd_headers_add(&resp->headers, "ETag", FAKE_ETAG);
        return fake_deliver(req, resp, f->object, f->size, err);
    default:
        break;
    }
    assert_true(from <= to && to < f->size);
    if (a == FAKE_WRONG_START)
        from++;
    size_t len = to - from + 1;
    resp->status = range ? 206 : 200;
    rd_headers_add(&resp->headers, "ETag", a == FAKE_OTHER_ETAG ? "\"fake-2\"" : FAKE_ETAG);
    if (range && a != FAKE_NO_CONTENT_RANGE) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", from, to, f->size + (a == FAKE_WRONG_TOTAL));
        rd_headers_add(&resp->headers, "Content-Range", cr);
    }
    if (a == FAKE_RESET_AT_1000 || a == FAKE_RESET_AT_END) {
        size_t n = a == FAKE_RESET_AT_END ? len : len < 1000 ? len : 1000;
        if (fake_deliver(req, resp, f->object + from, n, err) != RD_OK)
            return RD_E_IO;
        return rd_error_set(err, RD_E_NETWORK, "GET fake: Connection reset by peer");
    }
    return fake_deliver(req, resp, f->object + from, len, err);
}

static void fake_destroy(rd_http_transport *t)
{
    (void)t;
}

static const rd_http_transport_vtable fake_vt = { fake_send, fake_destroy };

static rd_status fake_sign(void *ctx, const rd_transfer_item *item, uint64_t offset, uint64_t length,
                           const char *if_match, char **url, rd_headers *h, rd_error *err)
{
    (void)ctx;
    (void)err;
    rd_buf u = RD_BUF_INIT;
    rd_buf_printf(&u, "https://bucket.s3.us-east-1.amazonaws.com/%s", item->name);
    *url = rd_buf_detach(&u);
    add_range(h, offset, length, if_match);
    return RD_OK;
}

typedef struct fake_fixture {
    fake_s3 http;
    char dir[64];
    char path[128];
    rd_transfer_item item;
    rd_transfer_options o;
    int done_ok, done_failed;
    int complete_at_done; /* the file held the whole object when its done callback ran */
} fake_fixture;

static rd_status fake_done(void *ctx, const rd_transfer_item *item, rd_status st, const rd_error *err)
{
    (void)err;
    fake_fixture *f = ctx;
    if (st != RD_OK) {
        f->done_failed++;
        return RD_OK;
    }
    f->done_ok++;
    FILE *fp = fopen(item->local_path, "rb");
    assert_non_null(fp);
    unsigned char *buf = malloc(f->http.size + 1);
    f->complete_at_done = fread(buf, 1, f->http.size + 1, fp) == f->http.size &&
                          memcmp(buf, f->http.object, f->http.size) == 0;
    free(buf);
    fclose(fp);
    return RD_OK;
}

static fake_fixture *fake_setup_sized(const enum fake_action *script, int n, size_t size)
{
    fake_fixture *f = calloc(1, sizeof *f);
    f->http.base.vt = &fake_vt;
    f->http.size = size;
    f->http.object = malloc(size + 1);
    for (size_t i = 0; i < size; i++)
        f->http.object[i] = (unsigned char)(i * 7 + 3 + i / 65536);
    assert_true(n <= FAKE_CALLS);
    memcpy(f->http.script, script, (size_t)n * sizeof *script);
    f->http.n = n;
    snprintf(f->dir, sizeof f->dir, "/tmp/rd-transfer-fake-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/obj", f->dir);
    f->item.name = "stage/0000_part_00.parquet";
    f->item.expected_size = size;
    f->item.local_path = f->path;
    f->o.http = &f->http.base;
    f->o.backoff_base_ms = 1;
    f->o.sign = fake_sign;
    f->o.done = fake_done;
    f->o.done_ctx = f;
    f->o.part_size = MIB;
    return f;
}

static fake_fixture *fake_setup(const enum fake_action *script, int n)
{
    return fake_setup_sized(script, n, FAKE_SIZE);
}

static void fake_teardown(fake_fixture *f)
{
    unlink(f->path);
    rmdir(f->dir);
    free(f->http.object);
    free(f);
}

static void fake_check_file(const fake_fixture *f)
{
    unsigned char *buf = malloc(f->http.size + 1);
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(buf, 1, f->http.size + 1, fp), f->http.size);
    fclose(fp);
    assert_memory_equal(buf, f->http.object, f->http.size);
    free(buf);
}

static void test_fake_reset_resumes_with_range(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_RESET_AT_1000, FAKE_FULL };
    fake_fixture *f = fake_setup(script, 2);
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(f->http.calls, 2);
    assert_string_equal(f->http.range[0], "");
    assert_string_equal(f->http.range[1], "bytes=1000-"); /* continued, not started over */
    assert_string_equal(f->http.url[1], "https://bucket.s3.us-east-1.amazonaws.com/stage/0000_part_00.parquet");
    /* the first response's ETag goes with the resume */
    assert_string_equal(f->http.if_match[0], "");
    assert_string_equal(f->http.if_match[1], FAKE_ETAG);
    assert_int_equal(stats.files, 1);
    assert_int_equal(stats.retries, 1);
    assert_int_equal(stats.resumes, 1);
    assert_int_equal(stats.requests, 2);
    assert_int_equal(stats.ranged_files, 0);
    assert_int_equal(stats.bytes, FAKE_SIZE);
    fake_check_file(f);
    fake_teardown(f);
}

static void test_fake_slowdown_is_retried(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_SLOWDOWN, FAKE_SLOWDOWN, FAKE_FULL };
    fake_fixture *f = fake_setup(script, 3);
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(f->http.calls, 3);
    assert_string_equal(f->http.range[2], ""); /* the error bodies did not reach the file */
    assert_int_equal(stats.retries, 2); /* attempts 2 and 3 */
    assert_int_equal(stats.resumes, 0);
    fake_check_file(f);
    fake_teardown(f);
}

static void test_fake_slowdown_gives_up_after_max_attempts(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_SLOWDOWN, FAKE_SLOWDOWN, FAKE_SLOWDOWN };
    fake_fixture *f = fake_setup(script, 3);
    f->o.max_attempts = 3;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_REMOTE);
    assert_int_equal(f->http.calls, 3);
    assert_string_equal(err.message,
                        "downloading stage/0000_part_00.parquet failed after 3 attempts: HTTP 503 SlowDown");
    assert_int_equal(f->done_failed, 1);
    assert_int_equal(f->done_ok, 0);
    fake_teardown(f);
}

static void test_fake_forbidden_is_not_retried(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_FORBIDDEN, FAKE_FULL };
    fake_fixture *f = fake_setup(script, 2);
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_DENIED);
    assert_int_equal(f->http.calls, 1);
    assert_string_equal(err.message, "downloading stage/0000_part_00.parquet failed after 1 attempt: HTTP 403 "
                                     "AccessDenied — the identity needs s3:GetObject on this object");
    fake_teardown(f);
}

/* An unsplit item whose resume is answered with the whole object starts the file over; one whose bytes had
 * all arrived before a reset is complete when the resume gets 416. */
static void test_fake_unsplit_restart_and_416(void **state)
{
    (void)state;
    const enum fake_action restart[] = { FAKE_RESET_AT_1000, FAKE_IGNORE_RANGE };
    fake_fixture *f = fake_setup(restart, 2);
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_string_equal(f->http.range[1], "bytes=1000-");
    assert_int_equal(stats.bytes, FAKE_SIZE);
    fake_check_file(f);
    fake_teardown(f);

    const enum fake_action all_in[] = { FAKE_RESET_AT_END, FAKE_416 };
    f = fake_setup(all_in, 2);
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_string_equal(f->http.range[1], "bytes=4000-");
    assert_int_equal(f->done_ok, 1);
    fake_check_file(f);
    fake_teardown(f);
}

#define SPLIT_SIZE (2 * MIB + MIB / 2)

/* A file above the part size goes as ranges of it: the first alone (its response gives the ETag), then the
 * others, each with If-Match; the done callback runs once, on the whole file. */
static void test_fake_split_ranges_carry_if_match(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_FULL, FAKE_FULL, FAKE_FULL };
    fake_fixture *f = fake_setup_sized(script, 3, SPLIT_SIZE);
    f->o.concurrency = 4;
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(f->http.calls, 3);
    assert_string_equal(f->http.range[0], "bytes=0-1048575");
    assert_string_equal(f->http.range[1], "bytes=1048576-2097151");
    assert_string_equal(f->http.range[2], "bytes=2097152-2621439");
    assert_string_equal(f->http.if_match[0], "");
    assert_string_equal(f->http.if_match[1], FAKE_ETAG);
    assert_string_equal(f->http.if_match[2], FAKE_ETAG);
    assert_int_equal(stats.ranged_files, 1);
    assert_int_equal(stats.requests, 3);
    assert_int_equal(stats.files, 1);
    assert_int_equal(stats.bytes, SPLIT_SIZE);
    assert_int_equal(f->done_ok, 1);
    assert_true(f->complete_at_done);
    fake_check_file(f);
    fake_teardown(f);

    /* the listing's ETag: If-Match from the first request on */
    f = fake_setup_sized(script, 3, SPLIT_SIZE);
    f->item.etag = FAKE_ETAG;
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    for (int i = 0; i < 3; i++)
        assert_string_equal(f->http.if_match[i], FAKE_ETAG);
    fake_check_file(f);
    fake_teardown(f);

    /* an empty listing ETag is none: the first response's is used */
    f = fake_setup_sized(script, 3, SPLIT_SIZE);
    f->item.etag = "";
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_string_equal(f->http.if_match[0], "");
    assert_string_equal(f->http.if_match[2], FAKE_ETAG);
    fake_teardown(f);

    /* a part size of UINT64_MAX never splits */
    const enum fake_action one[] = { FAKE_FULL };
    f = fake_setup_sized(one, 1, SPLIT_SIZE);
    f->o.part_size = UINT64_MAX;
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_string_equal(f->http.range[0], "");
    assert_int_equal(stats.ranged_files, 0);
    fake_check_file(f);
    fake_teardown(f);
}

/* A fixture for the spread tests: size bytes, parts of part_mib MiB, 4 connections, the listing's ETag. */
static fake_fixture *spread_fixture(const enum fake_action *script, int n, size_t size, uint64_t part_mib)
{
    fake_fixture *f = fake_setup_sized(script, n, size);
    f->o.part_size = part_mib * MIB;
    f->o.concurrency = 4;
    f->item.etag = FAKE_ETAG;
    return f;
}

/* Runs the transfer of items (NULL: the fixture's one item) and fails the test if it fails. */
static void spread_run(fake_fixture *f, const rd_transfer_item *items, size_t n, rd_transfer_stats *stats)
{
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(items ? items : &f->item, items ? n : 1, &f->o, stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
}

/* The last file known, when its ranges would leave connections idle (the last file of an UNLOAD, fetched
 * alone), goes as one range per idle connection, none smaller than RD_TRANSFER_SPREAD_MIN_PART; a file that
 * another waits behind keeps whole parts; a spread range that breaks resumes alone. */
static void test_fake_a_lone_file_is_spread_over_the_idle_connections(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_FULL, FAKE_FULL, FAKE_FULL, FAKE_FULL };
    rd_transfer_stats stats;
    /* 36 MiB with 32 MiB parts and 4 connections: 4 ranges of 9 MiB, not 32 + 4 */
    fake_fixture *f = spread_fixture(script, 4, 36 * MIB, 32);
    spread_run(f, NULL, 1, &stats);
    assert_int_equal(stats.requests, 4);
    assert_string_equal(f->http.range[0], "bytes=0-9437183");
    assert_string_equal(f->http.range[1], "bytes=9437184-18874367");
    assert_string_equal(f->http.range[2], "bytes=18874368-28311551");
    assert_string_equal(f->http.range[3], "bytes=28311552-37748735");
    fake_check_file(f);
    fake_teardown(f);

    /* 20 MiB with 16 MiB parts and 4 connections: ranges of 8 MiB at least, so 3 of them */
    f = spread_fixture(script, 3, 20 * MIB, 16);
    spread_run(f, NULL, 1, &stats);
    assert_int_equal(stats.requests, 3);
    assert_string_equal(f->http.range[0], "bytes=0-8388607");
    assert_string_equal(f->http.range[2], "bytes=16777216-20971519");
    fake_check_file(f);
    fake_teardown(f);

    /* a spread range that breaks resumes alone, from where it broke to its own end */
    const enum fake_action broken[] = { FAKE_FULL, FAKE_RESET_AT_1000, FAKE_FULL, FAKE_FULL, FAKE_FULL };
    f = spread_fixture(broken, 5, 36 * MIB, 32);
    spread_run(f, NULL, 1, &stats);
    assert_int_equal(stats.requests, 5);
    assert_int_equal(stats.resumes, 1);
    assert_string_equal(f->http.range[1], "bytes=9437184-18874367");
    assert_string_equal(f->http.range[4], "bytes=9438184-18874367");
    fake_check_file(f);
    fake_teardown(f);

    /* a file that another waits behind keeps whole parts; the last one is spread over what is left idle */
    f = spread_fixture(script, 4, 36 * MIB, 32);
    char second_path[sizeof f->path + 8];
    snprintf(second_path, sizeof second_path, "%s.2", f->path);
    rd_transfer_item two[2] = { f->item, f->item };
    two[1].local_path = second_path;
    spread_run(f, two, 2, &stats);
    assert_int_equal(stats.requests, 4);
    assert_string_equal(f->http.range[0], "bytes=0-33554431");
    assert_string_equal(f->http.range[1], "bytes=33554432-37748735");
    assert_string_equal(f->http.range[2], "bytes=0-18874367");
    assert_string_equal(f->http.range[3], "bytes=18874368-37748735");
    fake_check_file(f);
    unlink(second_path);
    fake_teardown(f);
}

/* A range that breaks is asked again alone, from where it broke to its own end. */
static void test_fake_broken_range_resumes_alone(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_FULL, FAKE_RESET_AT_1000, FAKE_FULL, FAKE_FULL };
    fake_fixture *f = fake_setup_sized(script, 4, SPLIT_SIZE);
    rd_transfer_stats stats;
    rd_error err;
    rd_error_clear(&err);
    if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
        fail_msg("transfer: %s", err.message);
    assert_int_equal(f->http.calls, 4);
    assert_string_equal(f->http.range[1], "bytes=1048576-2097151");
    assert_string_equal(f->http.range[3], "bytes=1049576-2097151");
    assert_string_equal(f->http.if_match[3], FAKE_ETAG);
    assert_int_equal(stats.retries, 1);
    assert_int_equal(stats.resumes, 1);
    assert_int_equal(stats.requests, 4);
    fake_check_file(f);
    fake_teardown(f);
}

/* A 206 whose Content-Range says another total: the object is not what the listing said; not retried. On
 * an unsplit item's resume too. */
static void test_fake_wrong_content_range_total_fails(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_WRONG_TOTAL, FAKE_FULL, FAKE_FULL };
    fake_fixture *f = fake_setup_sized(script, 3, SPLIT_SIZE);
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_REMOTE);
    assert_int_equal(f->http.calls, 1);
    assert_string_equal(err.message, "downloading stage/0000_part_00.parquet (bytes 0-1048575) failed after 1 attempt: "
                                     "the object is 2621441 bytes, the listing says 2621440");
    assert_int_equal(f->done_failed, 1);
    fake_teardown(f);

    const enum fake_action resume[] = { FAKE_RESET_AT_1000, FAKE_WRONG_TOTAL, FAKE_FULL };
    f = fake_setup(resume, 3);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_REMOTE);
    assert_int_equal(f->http.calls, 2);
    assert_string_equal(err.message, "downloading stage/0000_part_00.parquet failed after 2 attempts: the object is "
                                     "4001 bytes, the listing says 4000");
    fake_teardown(f);
}

/* A 206 of other bytes than asked, or without a Content-Range, is not written at the range's offset: the
 * range is asked again. */
static void test_fake_wrong_range_is_retried(void **state)
{
    (void)state;
    const enum fake_action bad[] = { FAKE_WRONG_START, FAKE_NO_CONTENT_RANGE };
    for (int k = 0; k < 2; k++) {
        const enum fake_action script[] = { bad[k], FAKE_FULL, FAKE_FULL, FAKE_FULL };
        fake_fixture *f = fake_setup_sized(script, 4, SPLIT_SIZE);
        rd_transfer_stats stats;
        rd_error err;
        rd_error_clear(&err);
        if (rd_transfer_run(&f->item, 1, &f->o, &stats, &err) != RD_OK)
            fail_msg("transfer: %s", err.message);
        assert_int_equal(f->http.calls, 4);
        assert_int_equal(stats.retries, 1);
        fake_check_file(f);
        fake_teardown(f);
    }
}

/* A 200 to a ranged GET of a split file: the server ignored the Range; writing the whole object at the
 * range's offset would corrupt the file, retrying would not help. */
static void test_fake_ignored_range_fails_split_file(void **state)
{
    (void)state;
    const enum fake_action script[] = { FAKE_IGNORE_RANGE, FAKE_FULL, FAKE_FULL };
    fake_fixture *f = fake_setup_sized(script, 3, SPLIT_SIZE);
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_REMOTE);
    assert_int_equal(f->http.calls, 1);
    assert_string_equal(err.message, "downloading stage/0000_part_00.parquet (bytes 0-1048575) failed after 1 attempt: "
                                     "the server ignored the Range header");
    fake_teardown(f);
}

/* The object changed between two requests of one item: a 412 to If-Match, or another ETag. Fails for good. */
static void test_fake_changed_object_fails(void **state)
{
    (void)state;
    const enum fake_action precondition[] = { FAKE_FULL, FAKE_PRECONDITION, FAKE_FULL };
    fake_fixture *f = fake_setup_sized(precondition, 3, SPLIT_SIZE);
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_REMOTE);
    assert_int_equal(f->http.calls, 2);
    assert_string_equal(err.message, "s3 object stage/0000_part_00.parquet changed while it was downloading (ETag was "
                                     "\"fake-1\", now a different one): run again");
    assert_int_equal(f->done_failed, 1);
    fake_teardown(f);

    const enum fake_action other[] = { FAKE_FULL, FAKE_OTHER_ETAG, FAKE_FULL };
    f = fake_setup_sized(other, 3, SPLIT_SIZE);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_REMOTE);
    assert_int_equal(f->http.calls, 2);
    assert_string_equal(err.message, "s3 object stage/0000_part_00.parquet changed while it was downloading (ETag was "
                                     "\"fake-1\", now \"fake-2\"): run again");
    fake_teardown(f);

    /* an unsplit item's resume too */
    const enum fake_action resume[] = { FAKE_RESET_AT_1000, FAKE_PRECONDITION };
    f = fake_setup(resume, 2);
    assert_int_equal(rd_transfer_run(&f->item, 1, &f->o, NULL, &err), RD_E_REMOTE);
    assert_string_equal(f->http.if_match[1], FAKE_ETAG);
    assert_non_null(strstr(err.message, "changed while it was downloading"));
    fake_teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_transfer),
        cmocka_unit_test(test_faults_resume_to_identical_files),
        cmocka_unit_test(test_split_files_arrive_identical),
        cmocka_unit_test(test_split_files_with_faults_retry_ranges_alone),
        cmocka_unit_test(test_listing_etag_is_matched),
        cmocka_unit_test(test_object_replaced_mid_transfer_fails),
        cmocka_unit_test(test_items_added_while_running),
        cmocka_unit_test(test_missing_object_fails_naming_it),
        cmocka_unit_test(test_full_disk_fails_at_once),
        cmocka_unit_test(test_concurrency_is_respected),
        cmocka_unit_test(test_fake_reset_resumes_with_range),
        cmocka_unit_test(test_fake_slowdown_is_retried),
        cmocka_unit_test(test_fake_slowdown_gives_up_after_max_attempts),
        cmocka_unit_test(test_fake_forbidden_is_not_retried),
        cmocka_unit_test(test_fake_unsplit_restart_and_416),
        cmocka_unit_test(test_fake_split_ranges_carry_if_match),
        cmocka_unit_test(test_fake_a_lone_file_is_spread_over_the_idle_connections),
        cmocka_unit_test(test_fake_broken_range_resumes_alone),
        cmocka_unit_test(test_fake_wrong_content_range_total_fails),
        cmocka_unit_test(test_fake_wrong_range_is_retried),
        cmocka_unit_test(test_fake_ignored_range_fails_split_file),
        cmocka_unit_test(test_fake_changed_object_fails),
    };
    return cmocka_run_group_tests_name("transfer", tests, NULL, NULL);
}
