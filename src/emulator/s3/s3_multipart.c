/* s3_multipart.c — the S3 API's multipart uploads over the store's (s3_store.h): CreateMultipartUpload with
 * the object's metadata and checksum algorithm, CompleteMultipartUpload (the part list, per-part checksums
 * and the composite checksum), AbortMultipartUpload, ListParts, ListMultipartUploads, and the checks of an
 * UploadPart. UploadPart's body streams through s3_api.c's upload path; copies are s3_copy.c's. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "emulator/s3/s3_api_internal.h"
#include "redduck/buf.h"

#define MAX_PARTS_LIST 1000

/* partNumber of an UploadPart: 1..10000, else 0 with the reply filled. */
int rd_s3mpu_part_number(s3_call *c)
{
    const char *v = rd_form_get(&c->q, "partNumber");
    char *end = NULL;
    long n = v && *v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || n < 1 || n > RD_S3_MAX_PARTS) {
        rd_s3api_fail(c, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
        return 0;
    }
    return (int)n;
}

/* The checksum an UploadPart (or a part copy) computes: the upload's algorithm; a checksum of another one
 * is refused. *ck_name (may be NULL) names the request's; 0 with the reply filled when refused. */
int rd_s3mpu_part_checksum(s3_call *c, const rd_s3_upload_info *up, const char **ck_name)
{
    int want = rd_s3api_ck_find(up->meta.checksum_algo);
    int have = rd_s3api_ck_find(*ck_name);
    if (want >= 0 && have >= 0 && want != have) {
        rd_buf m = RD_BUF_INIT;
        rd_buf_printf(&m, "Checksum Type mismatch occurred, expected checksum Type: %s, actual checksum Type: %s",
                      rd_s3api_ck_names[want].algo_name, rd_s3api_ck_names[have].algo_name);
        for (char *p = m.data; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
        rd_s3api_fail(c, 400, "InvalidRequest", rd_buf_cstr(&m));
        rd_buf_free(&m);
        return 0;
    }
    if (want >= 0)
        *ck_name = rd_s3api_ck_names[want].name;
    return 1;
}

static void owner_el(s3_xw *x, s3_call *c, const char *name)
{
    rd_s3api_xw_open(x, name);
    rd_s3api_xw_el(x, "ID", c->req->account_id ? c->req->account_id : "000000000000");
    rd_s3api_xw_el(x, "DisplayName", "redduck");
    rd_s3api_xw_close(x);
}

void rd_s3mpu_create(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:PutObject", 1))
        return;
    const rd_headers *h = c->req->headers;
    const char *algo = rd_headers_get(h, "x-amz-checksum-algorithm");
    const char *type = rd_headers_get(h, "x-amz-checksum-type");
    int k = rd_s3api_ck_find(algo);
    if (algo && k < 0) {
        rd_s3api_fail(c, strcasecmp(algo, "CRC64NVME") == 0 ? 501 : 400,
                      strcasecmp(algo, "CRC64NVME") == 0 ? "NotImplemented" : "InvalidRequest",
                      "The emulator's multipart uploads take x-amz-checksum-algorithm CRC32, CRC32C, SHA1 or SHA256");
        return;
    }
    if (type && strcasecmp(type, "COMPOSITE") != 0) {
        rd_s3api_fail(
            c, 501, "NotImplemented",
            "The emulator's multipart uploads keep COMPOSITE checksums (x-amz-checksum-type), not FULL_OBJECT ones");
        return;
    }
    if (type && k < 0) {
        rd_s3api_fail(c, 400, "InvalidRequest",
                      "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.");
        return;
    }
    rd_s3_meta meta;
    if (!rd_s3api_request_meta(c, &meta))
        return;
    if (k >= 0) {
        meta.checksum_algo = strdup(rd_s3api_ck_names[k].algo_name);
        meta.checksum_type = strdup("COMPOSITE");
    }
    const char *ctype = rd_headers_get(h, "Content-Type");
    char id[40];
    rd_emu_error err;
    int rc = rd_s3_store_mpu_create(c->store, c->bucket, c->key, ctype ? ctype : "binary/octet-stream", &meta, id,
                                    &err);
    rd_s3_meta_free(&meta);
    if (rc != 0) {
        rd_s3api_fail_emu(c, &err);
        return;
    }
    s3_xw x;
    rd_s3api_xw_start(&x, "InitiateMultipartUploadResult");
    rd_s3api_xw_el(&x, "Bucket", c->bucket);
    rd_s3api_xw_el(&x, "Key", c->key);
    rd_s3api_xw_el(&x, "UploadId", id);
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
    if (k >= 0) {
        rd_headers_set(&c->resp->headers, "x-amz-checksum-algorithm", rd_s3api_ck_names[k].algo_name);
        rd_headers_set(&c->resp->headers, "x-amz-checksum-type", "COMPOSITE");
    }
}

static int cmp_part_number(const void *key, const void *elem)
{
    return *(const int *)key - ((const rd_s3_part_info *)elem)->number;
}

/* The composite checksum "<base64 of the checksum of the parts' raw checksums>-N" of the named parts, checking
 * the client's per-part values against the stored ones. NULL with the reply filled (InvalidPart) or, when the
 * store will refuse the list anyway, NULL with *defer set. */
static char *composite_checksum(s3_call *c, int k, const rd_s3_part_info *stored, size_t ns, const int *numbers,
                                char *const *client, size_t n, int *defer)
{
    s3_checksum ck;
    rd_s3api_ck_init(&ck, rd_s3api_ck_names[k].name);
    for (size_t i = 0; i < n; i++) {
        const rd_s3_part_info *p = bsearch(&numbers[i], stored, ns, sizeof *stored, cmp_part_number);
        if (!p || !p->checksum) {
            *defer = 1; /* InvalidPart from the store, after its order check */
            free(rd_s3api_ck_final(&ck));
            return NULL;
        }
        size_t rl = 0;
        unsigned char *raw = rd_s3api_b64_decode(p->checksum, &rl);
        if (!raw || (client[i] && strcmp(client[i], p->checksum) != 0)) {
            free(raw);
            free(rd_s3api_ck_final(&ck));
            rd_s3api_fail(
                c, 400, "InvalidPart",
                "One or more of the specified parts could not be found.  The part may not have been uploaded, or the "
                "specified entity tag may not have matched the part's entity tag.");
            return NULL;
        }
        rd_s3api_ck_update(&ck, raw, rl);
        free(raw);
    }
    char *b = rd_s3api_ck_final(&ck);
    rd_buf out = RD_BUF_INIT;
    rd_buf_printf(&out, "%s-%zu", b ? b : "", n);
    free(b);
    return rd_buf_detach(&out);
}

void rd_s3mpu_complete(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:PutObject", 1))
        return;
    const char *id = rd_form_get(&c->q, "uploadId");
    rd_s3_upload_info up;
    rd_emu_error err;
    if (rd_s3_store_mpu_get(c->store, c->bucket, c->key, id, &up, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        return;
    }
    int k = rd_s3api_ck_find(up.meta.checksum_algo);
    rd_s3_upload_info_free(&up);
    xmlDocPtr doc = rd_s3api_parse_body(c, "CompleteMultipartUpload");
    if (!doc)
        return;
    size_t n = 0;
    for (xmlNodePtr p = xmlDocGetRootElement(doc)->children; p; p = p->next)
        if (p->type == XML_ELEMENT_NODE && strcmp((const char *)p->name, "Part") == 0)
            n++;
    rd_s3_complete_part *parts = calloc(n ? n : 1, sizeof *parts);
    int *numbers = calloc(n ? n : 1, sizeof *numbers);
    char **etags = calloc(n ? n : 1, sizeof *etags), **sums = calloc(n ? n : 1, sizeof *sums);
    char *composite = NULL;
    rd_s3_part_info *stored = NULL;
    size_t ns = 0, i = 0;
    int malformed = n == 0 || n > RD_S3_MAX_PARTS || !parts || !numbers || !etags || !sums;
    for (xmlNodePtr p = xmlDocGetRootElement(doc)->children; !malformed && p; p = p->next) {
        if (p->type != XML_ELEMENT_NODE || strcmp((const char *)p->name, "Part") != 0)
            continue;
        char *num = rd_s3api_child_text(p, "PartNumber"), *end = NULL;
        long v = num && *num ? strtol(num, &end, 10) : 0;
        malformed = !num || !*num || *end || v < 1 || v > RD_S3_MAX_PARTS;
        free(num);
        etags[i] = rd_s3api_child_text(p, "ETag");
        sums[i] = k >= 0 ? rd_s3api_child_text(p, rd_s3api_ck_names[k].member) : NULL;
        numbers[i] = (int)v;
        parts[i].number = (int)v;
        parts[i].etag = etags[i];
        malformed |= !etags[i];
        i++;
    }
    xmlFreeDoc(doc);
    if (malformed) {
        rd_s3api_fail(c, 400, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our published schema.");
        goto out;
    }
    for (i = 1; i < n; i++)
        if (numbers[i] <= numbers[i - 1]) {
            rd_s3api_fail(
                c, 400, "InvalidPartOrder",
                "The list of parts was not in ascending order. The parts list must be specified in order by part "
                "number.");
            goto out;
        }
    if (k >= 0) {
        int defer = 0;
        if (rd_s3_store_mpu_parts(c->store, c->bucket, c->key, id, &stored, &ns, &err) != 0) {
            rd_s3api_fail_emu(c, &err);
            goto out;
        }
        composite = composite_checksum(c, k, stored, ns, numbers, sums, n, &defer);
        if (!composite && !defer)
            goto out;
    }
    rd_s3_object_info info;
    memset(&info, 0, sizeof info);
    if (rd_s3_store_mpu_complete(c->store, c->bucket, c->key, id, parts, n, composite, composite ? "COMPOSITE" : NULL,
                                 &info, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        goto out;
    }
    s3_xw x;
    rd_s3api_xw_start(&x, "CompleteMultipartUploadResult");
    rd_buf loc = RD_BUF_INIT;
    const char *host = c->req->host ? c->req->host : "localhost";
    rd_buf_printf(&loc, "http://%s/%s/%s", host, c->bucket, c->key);
    rd_s3api_xw_el(&x, "Location", rd_buf_cstr(&loc));
    rd_buf_free(&loc);
    rd_s3api_xw_el(&x, "Bucket", c->bucket);
    rd_s3api_xw_el(&x, "Key", c->key);
    rd_s3api_xw_el(&x, "ETag", info.etag);
    if (composite) {
        rd_s3api_xw_el(&x, rd_s3api_ck_names[k].member, composite);
        rd_s3api_xw_el(&x, "ChecksumType", "COMPOSITE");
    }
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
    rd_s3_object_info_free(&info);
out:
    for (i = 0; i < n; i++) {
        if (etags)
            free(etags[i]);
        if (sums)
            free(sums[i]);
    }
    free(etags);
    free(sums);
    free(parts);
    free(numbers);
    free(composite);
    rd_s3_parts_free(stored, ns);
}

void rd_s3mpu_abort(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:AbortMultipartUpload", 1))
        return;
    rd_emu_error err;
    if (rd_s3_store_mpu_abort(c->store, c->bucket, c->key, rd_form_get(&c->q, "uploadId"), &err) != 0)
        rd_s3api_fail_emu(c, &err);
    else
        c->resp->status = 204;
}

void rd_s3mpu_list_parts(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:ListMultipartUploadParts", 1))
        return;
    const char *id = rd_form_get(&c->q, "uploadId");
    long max = 0, marker = 0;
    if (!rd_s3api_query_count(c, "max-parts", MAX_PARTS_LIST, MAX_PARTS_LIST, &max) ||
        !rd_s3api_query_count(c, "part-number-marker", 0, RD_S3_MAX_PARTS, &marker))
        return;
    rd_s3_upload_info up;
    rd_s3_part_info *parts = NULL;
    size_t n = 0;
    rd_emu_error err;
    if (rd_s3_store_mpu_get(c->store, c->bucket, c->key, id, &up, &err) != 0 ||
        rd_s3_store_mpu_parts(c->store, c->bucket, c->key, id, &parts, &n, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        return;
    }
    int k = rd_s3api_ck_find(up.meta.checksum_algo);
    char num[32];
    s3_xw x;
    rd_s3api_xw_start(&x, "ListPartsResult");
    rd_s3api_xw_el(&x, "Bucket", c->bucket);
    rd_s3api_xw_el(&x, "Key", c->key);
    rd_s3api_xw_el(&x, "UploadId", id);
    snprintf(num, sizeof num, "%ld", marker);
    rd_s3api_xw_el(&x, "PartNumberMarker", num);
    size_t shown = 0, i = 0;
    int last = 0;
    while (i < n && parts[i].number <= marker)
        i++;
    size_t first = i;
    for (; i < n && shown < (size_t)max; i++, shown++)
        last = parts[i].number;
    int truncated = i < n;
    snprintf(num, sizeof num, "%d", last);
    rd_s3api_xw_el(&x, "NextPartNumberMarker", num);
    snprintf(num, sizeof num, "%ld", max);
    rd_s3api_xw_el(&x, "MaxParts", num);
    rd_s3api_xw_el(&x, "IsTruncated", truncated ? "true" : "false");
    for (i = first; i < first + shown; i++) {
        char date[32], size[32];
        rd_s3api_iso8601(parts[i].last_modified, date);
        snprintf(num, sizeof num, "%d", parts[i].number);
        snprintf(size, sizeof size, "%" PRIu64, parts[i].size);
        rd_s3api_xw_open(&x, "Part");
        rd_s3api_xw_el(&x, "PartNumber", num);
        rd_s3api_xw_el(&x, "LastModified", date);
        rd_s3api_xw_el(&x, "ETag", parts[i].etag);
        rd_s3api_xw_el(&x, "Size", size);
        if (k >= 0 && parts[i].checksum)
            rd_s3api_xw_el(&x, rd_s3api_ck_names[k].member, parts[i].checksum);
        rd_s3api_xw_close(&x);
    }
    owner_el(&x, c, "Initiator");
    owner_el(&x, c, "Owner");
    rd_s3api_xw_el(&x, "StorageClass", "STANDARD");
    if (k >= 0) {
        rd_s3api_xw_el(&x, "ChecksumAlgorithm", rd_s3api_ck_names[k].algo_name);
        rd_s3api_xw_el(&x, "ChecksumType", "COMPOSITE");
    }
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
    rd_s3_upload_info_free(&up);
    rd_s3_parts_free(parts, n);
}

void rd_s3mpu_list_uploads(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:ListBucketMultipartUploads", 0))
        return;
    if (rd_form_get(&c->q, "delimiter")) {
        rd_s3api_fail(c, 501, "NotImplemented", "The emulator's ListMultipartUploads does not take a delimiter");
        return;
    }
    const char *prefix = rd_form_get(&c->q, "prefix"), *km = rd_form_get(&c->q, "key-marker"),
               *im = rd_form_get(&c->q, "upload-id-marker"), *enc = rd_form_get(&c->q, "encoding-type");
    if (enc && strcmp(enc, "url") != 0) {
        rd_s3api_fail(c, 400, "InvalidArgument", "Invalid Encoding Method specified in Request");
        return;
    }
    int encode = enc != NULL;
    long max = 0;
    if (!rd_s3api_query_count(c, "max-uploads", MAX_PARTS_LIST, MAX_PARTS_LIST, &max))
        return;
    rd_s3_upload_info *v = NULL;
    size_t n = 0;
    int truncated = 0;
    rd_emu_error err;
    if (rd_s3_store_mpu_list(c->store, c->bucket, prefix, km, im, (size_t)max, &v, &n, &truncated, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        return;
    }
    char num[32];
    s3_xw x;
    rd_s3api_xw_start(&x, "ListMultipartUploadsResult");
    rd_s3api_xw_el(&x, "Bucket", c->bucket);
    rd_s3api_xw_el_enc(&x, "KeyMarker", km ? km : "", encode);
    rd_s3api_xw_el(&x, "UploadIdMarker", im ? im : "");
    if (truncated && n) {
        rd_s3api_xw_el_enc(&x, "NextKeyMarker", v[n - 1].key, encode);
        rd_s3api_xw_el(&x, "NextUploadIdMarker", v[n - 1].upload_id);
    }
    rd_s3api_xw_el_enc(&x, "Prefix", prefix ? prefix : "", encode);
    if (encode)
        rd_s3api_xw_el(&x, "EncodingType", "url");
    snprintf(num, sizeof num, "%ld", max);
    rd_s3api_xw_el(&x, "MaxUploads", num);
    rd_s3api_xw_el(&x, "IsTruncated", truncated ? "true" : "false");
    for (size_t i = 0; i < n; i++) {
        char date[32];
        rd_s3api_iso8601(v[i].initiated, date);
        rd_s3api_xw_open(&x, "Upload");
        rd_s3api_xw_el_enc(&x, "Key", v[i].key, encode);
        rd_s3api_xw_el(&x, "UploadId", v[i].upload_id);
        owner_el(&x, c, "Initiator");
        owner_el(&x, c, "Owner");
        rd_s3api_xw_el(&x, "StorageClass", "STANDARD");
        rd_s3api_xw_el(&x, "Initiated", date);
        if (v[i].meta.checksum_algo) {
            rd_s3api_xw_el(&x, "ChecksumAlgorithm", v[i].meta.checksum_algo);
            rd_s3api_xw_el(&x, "ChecksumType", "COMPOSITE");
        }
        rd_s3api_xw_close(&x);
        rd_s3_upload_info_free(&v[i]);
    }
    free(v);
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
}
