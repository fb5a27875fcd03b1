/* fuzz_s3_copy.c — libFuzzer target: arbitrary bytes as what a client sends the emulator's copies and
 * multipart completion — x-amz-copy-source, x-amz-copy-source-range, x-amz-metadata-directive, partNumber and
 * a CompleteMultipartUpload body (the input's lines, in that order) — against a store on disk holding a
 * source object and an upload. Must never crash, leak or answer without a status; a 200 to UploadPartCopy
 * must come with a CopyPartResult body. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/emulator.h"
#include "emulator/s3/s3_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */

static rd_s3_store *g_store;
static char g_upload[40];

static void ensure_store(void)
{
    if (g_store)
        return;
    char dir[] = "/tmp/rd-fuzz-s3copy-XXXXXX";
    rd_error err;
    rd_emu_error e;
    if (!mkdtemp(dir) || rd_s3_store_open(dir, &g_store, &err) != RD_OK ||
        rd_s3_store_create_bucket(g_store, "bkt", NULL, &e) != 0 ||
        rd_s3_store_put_data(g_store, "bkt", "src key", "0123456789abcdef", 16, "text/plain", NULL, &e) != 0)
        abort();
}

static void ensure_upload(void)
{
    rd_s3_upload_info up;
    rd_emu_error e;
    if (g_upload[0] && rd_s3_store_mpu_get(g_store, "bkt", "dst", g_upload, &up, &e) == 0) {
        rd_s3_upload_info_free(&up);
        return;
    }
    if (rd_s3_store_mpu_create(g_store, "bkt", "dst", NULL, NULL, g_upload, &e) != 0)
        abort();
}

/* The next line of the input (malloc'd, NUL-terminated); advances *p. */
static char *next_line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = 0;
    *p += nl ? n + 1 : n;
    return s;
}

static void call(const char *method, const char *query, const rd_headers *h, const char *body, size_t len,
                 const char *want_root)
{
    rd_emu_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.path = "/bkt/dst";
    req.query = query;
    req.headers = h;
    req.body = body;
    req.body_len = len;
    req.account_id = "000000000000";
    req.region = "us-east-1";
    req.request_id = "REQ";
    req.host = "localhost";
    rd_emu_response resp;
    rd_emu_response_init(&resp);
    rd_emu_s3_handle(NULL, g_store, &req, &resp);
    if (resp.status < 200 || resp.status > 599)
        abort();
    if (want_root && resp.status == 200 && !strstr(resp.body.data ? resp.body.data : "", want_root))
        abort();
    rd_emu_response_free(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ensure_store();
    ensure_upload();
    const uint8_t *p = data, *end = data + size;
    char *source = next_line(&p, end), *range = next_line(&p, end), *directive = next_line(&p, end),
         *part = next_line(&p, end);
    rd_headers h;
    rd_headers_init(&h);
    rd_headers_add(&h, "x-amz-copy-source", source);
    if (*directive)
        rd_headers_add(&h, "x-amz-metadata-directive", directive);
    call("PUT", "", &h, "", 0, "CopyObjectResult");
    if (*range)
        rd_headers_add(&h, "x-amz-copy-source-range", range);
    char query[160];
    snprintf(query, sizeof query, "partNumber=%.32s&uploadId=%s", part, g_upload);
    call("PUT", query, &h, "", 0, "CopyPartResult");
    rd_headers_free(&h);
    rd_headers_init(&h);
    snprintf(query, sizeof query, "uploadId=%s", g_upload);
    call("POST", query, &h, (const char *)p, (size_t)(end - p), "CompleteMultipartUploadResult");
    rd_headers_free(&h);
    free(source);
    free(range);
    free(directive);
    free(part);
    return 0;
}
