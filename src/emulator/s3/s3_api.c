/* s3_api.c — the emulator's S3 REST XML API over the object store (s3_store.c): bucket/key addressing
 * (path-style and virtual-hosted), routing, the bucket and object operations the AWS CLI, boto3 and redduck
 * use, stored metadata on GET and HEAD, AWS's XML replies and errors, per-operation authorisation
 * (rd_emu_allowed), streamed PutObject and UploadPart bodies (aws-chunked, digests, checksums) and zero-copy
 * GETs (the reply carries an fd range). The other multipart operations are s3_multipart.c's, copies
 * s3_copy.c's (shared pieces: s3_api_internal.h). Does not own the HTTP server, SigV4 verification or fault
 * injection (server.c). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "emulator/s3/aws_chunked.h"
#include "emulator/s3/s3_api_internal.h"
#include "emulator/emu_error.h"
#include "emulator/emulator.h"
#include "emulator/emulator_internal.h"
#include "emulator/form.h"
#include "emulator/replies.h"
#include "emulator/s3/s3_post.h"
#include "emulator/s3/s3_store.h"
#include "redduck/sigv4.h"

#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define MAX_KEYS_LIMIT 1000
#define DELETE_OBJECTS_LIMIT 1000
#define USER_METADATA_LIMIT 2048 /* bytes of x-amz-meta-* names (without the prefix) and values */

/* ---- replies ---------------------------------------------------------------------------------------- */

static void common_headers(s3_call *c)
{
    if (c->req->request_id) {
        rd_headers_set(&c->resp->headers, "x-amz-request-id", c->req->request_id);
        rd_headers_set(&c->resp->headers, "x-amz-id-2", c->req->request_id);
    }
}

void rd_s3api_fail(s3_call *c, int status, const char *code, const char *message)
{
    rd_headers_free(&c->resp->headers);
    rd_headers_init(&c->resp->headers);
    if (c->resp->fd >= 0)
        close(c->resp->fd);
    c->resp->fd = -1;
    rd_emu_reply_s3_error(c->resp, status, code, message, c->resource, c->req->request_id);
    common_headers(c);
    if (c->head) /* HEAD replies carry no body */
        rd_buf_reset(&c->resp->body);
}

const char rd_s3api_internal_message[] = "We encountered an internal error. Please try again.";

/* A part's error as the reply; a 500's message says what failed inside, so it goes to the log and the client
 * reads S3's own words. */
void rd_s3api_fail_emu(s3_call *c, const rd_emu_error *e)
{
    if (e->http_status >= 500) {
        if (c->emu)
            rd_log_write(&c->emu->log, RD_LOG_WARN, "s3: %s %s: %s", e->code, c->resource ? c->resource : "/",
                         e->message);
        rd_s3api_fail(c, e->http_status, e->code, rd_s3api_internal_message);
        return;
    }
    rd_s3api_fail(c, e->http_status, e->code, e->message);
}

int rd_s3api_allowed(s3_call *c, const char *action, int with_key)
{
    rd_buf arn = RD_BUF_INIT;
    if (!c->bucket)
        rd_buf_puts(&arn, "arn:aws:s3:::*");
    else
        rd_buf_printf(&arn, "arn:aws:s3:::%s%s%s", c->bucket, with_key ? "/" : "", with_key ? c->key : "");
    int ok = rd_emu_allowed(c->emu, c->req, action, rd_buf_cstr(&arn));
    rd_buf_free(&arn);
    if (!ok)
        rd_s3api_fail(c, 403, "AccessDenied", "Access Denied");
    return ok;
}

void rd_s3api_xw_start(s3_xw *x, const char *root)
{
    x->buf = xmlBufferCreate();
    x->w = xmlNewTextWriterMemory(x->buf, 0);
    xmlTextWriterStartDocument(x->w, NULL, "UTF-8", NULL);
    xmlTextWriterStartElement(x->w, BAD_CAST root);
    xmlTextWriterWriteAttribute(x->w, BAD_CAST "xmlns", BAD_CAST S3_XMLNS);
}

void rd_s3api_xw_el(s3_xw *x, const char *name, const char *value)
{
    xmlTextWriterWriteElement(x->w, BAD_CAST name, BAD_CAST(value ? value : ""));
}

void rd_s3api_xw_open(s3_xw *x, const char *name)
{
    xmlTextWriterStartElement(x->w, BAD_CAST name);
}

void rd_s3api_xw_close(s3_xw *x)
{
    xmlTextWriterEndElement(x->w);
}

void rd_s3api_xw_finish(s3_xw *x, s3_call *c)
{
    xmlTextWriterEndDocument(x->w);
    xmlFreeTextWriter(x->w);
    rd_buf_reset(&c->resp->body);
    rd_buf_append(&c->resp->body, xmlBufferContent(x->buf), (size_t)xmlBufferLength(x->buf));
    xmlBufferFree(x->buf);
    c->resp->status = 200;
    rd_headers_set(&c->resp->headers, "Content-Type", "application/xml");
}

void rd_s3api_iso8601(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static void http_date(time_t t, char out[40])
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* -1 when unparsable. */
time_t rd_s3api_parse_http_date(const char *s)
{
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    char mon[4] = { 0 };
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *comma = strchr(s, ',');
    if (!comma || sscanf(comma + 1, " %d %3s %d %d:%d:%d", &tm.tm_mday, mon, &tm.tm_year, &tm.tm_hour, &tm.tm_min,
                         &tm.tm_sec) != 6)
        return -1;
    tm.tm_mon = -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(mon, months[i]) == 0)
            tm.tm_mon = i;
    if (tm.tm_mon < 0)
        return -1;
    tm.tm_year -= 1900;
    return timegm(&tm);
}

/* S3's encoding-type=url: percent-encode all but unreserved characters and '/'. */
static char *url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    rd_buf b = RD_BUF_INIT;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == '/') {
            rd_buf_putc(&b, (char)*p);
        } else {
            char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };
            rd_buf_append(&b, esc, 3);
        }
    }
    return rd_buf_detach(&b);
}

void rd_s3api_xw_el_enc(s3_xw *x, const char *name, const char *value, int encode)
{
    if (!encode) {
        rd_s3api_xw_el(x, name, value);
        return;
    }
    char *e = url_encode(value ? value : "");
    rd_s3api_xw_el(x, name, e);
    free(e);
}

/* ---- base64 and checksums --------------------------------------------------------------------------- */

static char *b64_encode(const unsigned char *in, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return out;
}

/* Strict base64 decode into a malloc'd buffer; NULL when malformed. */
unsigned char *rd_s3api_b64_decode(const char *s, size_t *out_len)
{
    size_t n = strlen(s);
    if (n == 0 || n % 4)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(isalnum((unsigned char)ch) || ch == '+' || ch == '/' || (ch == '=' && i >= n - 2)))
            return NULL;
    }
    if (s[n - 2] == '=' && s[n - 1] != '=')
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (r < 0) {
        free(out);
        return NULL;
    }
    size_t len = (size_t)r - (s[n - 1] == '=') - (s[n - 2] == '=');
    out[len] = 0;
    *out_len = len;
    return out;
}

const s3_ck_name rd_s3api_ck_names[RD_S3API_CK_COUNT] = {
    { "x-amz-checksum-crc32", CK_CRC32, "CRC32", "ChecksumCRC32" },
    { "x-amz-checksum-crc32c", CK_CRC32C, "CRC32C", "ChecksumCRC32C" },
    { "x-amz-checksum-sha1", CK_SHA1, "SHA1", "ChecksumSHA1" },
    { "x-amz-checksum-sha256", CK_SHA256, "SHA256", "ChecksumSHA256" }
};

/* The rd_s3api_ck_names row of an algorithm name ("CRC32", any case) or of a header name; -1 when unknown. */
int rd_s3api_ck_find(const char *algo_or_header)
{
    for (size_t i = 0; algo_or_header && i < sizeof rd_s3api_ck_names / sizeof rd_s3api_ck_names[0]; i++)
        if (strcasecmp(algo_or_header, rd_s3api_ck_names[i].algo_name) == 0 ||
            strcasecmp(algo_or_header, rd_s3api_ck_names[i].name) == 0)
            return (int)i;
    return -1;
}

void rd_s3api_ck_init(s3_checksum *ck, const char *header_name)
{
    memset(ck, 0, sizeof *ck);
    for (size_t i = 0; i < sizeof rd_s3api_ck_names / sizeof rd_s3api_ck_names[0]; i++)
        if (header_name && strcasecmp(header_name, rd_s3api_ck_names[i].name) == 0) {
            ck->algo = rd_s3api_ck_names[i].algo;
            ck->name = rd_s3api_ck_names[i].name;
        }
    if (ck->algo == CK_CRC32 || ck->algo == CK_CRC32C) {
        uint32_t poly = ck->algo == CK_CRC32 ? 0xEDB88320u : 0x82F63B78u;
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t r = i;
            for (int k = 0; k < 8; k++)
                r = r & 1 ? (r >> 1) ^ poly : r >> 1;
            ck->table[i] = r;
        }
        ck->crc = 0xFFFFFFFFu;
    } else if (ck->algo != CK_NONE) {
        ck->md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(ck->md, ck->algo == CK_SHA1 ? EVP_sha1() : EVP_sha256(), NULL);
    }
}

void rd_s3api_ck_update(s3_checksum *ck, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (ck->algo == CK_CRC32 || ck->algo == CK_CRC32C) {
        uint32_t crc = ck->crc;
        for (size_t i = 0; i < len; i++)
            crc = ck->table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
        ck->crc = crc;
    } else if (ck->md) {
        EVP_DigestUpdate(ck->md, data, len);
    }
}

/* The base64 value (malloc'd), or NULL for CK_NONE. Frees the state. */
char *rd_s3api_ck_final(s3_checksum *ck)
{
    unsigned char out[32];
    size_t n = 0;
    if (ck->algo == CK_CRC32 || ck->algo == CK_CRC32C) {
        uint32_t v = ck->crc ^ 0xFFFFFFFFu;
        out[0] = (unsigned char)(v >> 24);
        out[1] = (unsigned char)(v >> 16);
        out[2] = (unsigned char)(v >> 8);
        out[3] = (unsigned char)v;
        n = 4;
    } else if (ck->md) {
        unsigned int l = 0;
        EVP_DigestFinal_ex(ck->md, out, &l);
        n = l;
    }
    EVP_MD_CTX_free(ck->md);
    ck->md = NULL;
    return n ? b64_encode(out, n) : NULL;
}

/* The first x-amz-checksum-<algo> header the request carries (its name), or NULL. */
static const char *checksum_header(const rd_headers *h)
{
    for (size_t i = 0; i < sizeof rd_s3api_ck_names / sizeof rd_s3api_ck_names[0]; i++)
        if (rd_headers_get(h, rd_s3api_ck_names[i].name))
            return rd_s3api_ck_names[i].name;
    return NULL;
}

/* Parses Content-MD5 into md (16 bytes). 0 absent, 1 present and valid, -1 malformed. */
static int content_md5(const rd_headers *h, unsigned char md[16])
{
    const char *v = rd_headers_get(h, "Content-MD5");
    if (!v)
        return 0;
    size_t n = 0;
    unsigned char *raw = rd_s3api_b64_decode(v, &n);
    int ok = raw && n == 16;
    if (ok)
        memcpy(md, raw, 16);
    free(raw);
    return ok ? 1 : -1;
}

/* ---- addressing ------------------------------------------------------------------------------------- */

/* The bucket named by a virtual-hosted Host ("b.s3.amazonaws.com", "b.s3.<region>.amazonaws.com",
 * "b.localhost[:port]"), malloc'd, or NULL for path-style. */
static char *host_bucket(const char *host)
{
    if (!host || !*host)
        return NULL;
    size_t n = strcspn(host, ":");
    if (host[0] == '[')
        return NULL;
    char *h = strndup(host, n);
    if (!h)
        return NULL;
    for (char *p = h; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    char *bucket = NULL;
    static const char local[] = ".localhost", aws[] = ".amazonaws.com";
    if (n > sizeof local - 1 && strcmp(h + n - (sizeof local - 1), local) == 0) {
        bucket = strndup(h, n - (sizeof local - 1));
    } else if (n > sizeof aws - 1 && strcmp(h + n - (sizeof aws - 1), aws) == 0) {
        h[n - (sizeof aws - 1)] = '\0'; /* "b.s3" or "b.s3.<region>" */
        size_t m = strlen(h);
        if (m > 3 && strcmp(h + m - 3, ".s3") == 0) {
            bucket = strndup(h, m - 3);
        } else {
            char *dot = strrchr(h, '.'); /* before the region */
            if (dot && dot - h > 3 && strncmp(dot - 3, ".s3", 3) == 0 && dot[1])
                bucket = strndup(h, (size_t)(dot - 3 - h));
        }
    }
    free(h);
    if (bucket && !*bucket) {
        free(bucket);
        bucket = NULL;
    }
    return bucket;
}

int rd_s3api_has_nul_escape(const char *s)
{
    for (; *s; s++)
        if (s[0] == '%' && s[1] == '0' && s[2] == '0')
            return 1;
    return 0;
}

/* Fills bucket, key and resource. 0 when the path is unusable (reply filled). */
static int address(s3_call *c)
{
    const char *path = c->req->path && *c->req->path ? c->req->path : "/";
    if (path[0] == '/')
        path++;
    if (rd_s3api_has_nul_escape(path)) {
        c->resource = strdup("/");
        rd_s3api_fail(c, 400, "InvalidArgument", "Object keys must not contain NUL characters.");
        return 0;
    }
    c->bucket = host_bucket(c->req->host);
    const char *key_raw = NULL;
    if (c->bucket) {
        key_raw = path;
    } else if (*path) {
        const char *slash = strchr(path, '/');
        c->bucket = rd_percent_decode(path, slash ? (size_t)(slash - path) : strlen(path), 0);
        key_raw = slash ? slash + 1 : "";
    }
    if (key_raw && *key_raw)
        c->key = rd_percent_decode(key_raw, strlen(key_raw), 0);
    rd_buf r = RD_BUF_INIT;
    rd_buf_printf(&r, "/%s%s%s", c->bucket ? c->bucket : "", c->key ? "/" : "", c->key ? c->key : "");
    c->resource = rd_buf_detach(&r);
    return 1;
}

/* ---- service and bucket operations ------------------------------------------------------------------ */

static void list_buckets(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:ListAllMyBuckets", 0))
        return;
    char **names = NULL;
    time_t *created = NULL;
    size_t n = 0;
    rd_emu_error err;
    if (rd_s3_store_list_buckets(c->store, &names, &created, &n, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        return;
    }
    s3_xw x;
    rd_s3api_xw_start(&x, "ListAllMyBucketsResult");
    rd_s3api_xw_open(&x, "Owner");
    rd_s3api_xw_el(&x, "ID", c->req->account_id ? c->req->account_id : "000000000000");
    rd_s3api_xw_el(&x, "DisplayName", "redduck");
    rd_s3api_xw_close(&x);
    rd_s3api_xw_open(&x, "Buckets");
    for (size_t i = 0; i < n; i++) {
        char date[32];
        rd_s3api_iso8601(created[i], date);
        rd_s3api_xw_open(&x, "Bucket");
        rd_s3api_xw_el(&x, "Name", names[i]);
        rd_s3api_xw_el(&x, "CreationDate", date);
        rd_s3api_xw_close(&x);
        free(names[i]);
    }
    rd_s3api_xw_close(&x);
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
    free(names);
    free(created);
}

/* Parses an XML request body; NULL (reply MalformedXML filled) when it is not well-formed or the root is not
 * `root`. */
xmlDocPtr rd_s3api_parse_body(s3_call *c, const char *root)
{
    xmlDocPtr doc = NULL;
    if (c->req->body_len && c->req->body_len < (size_t)INT32_MAX)
        doc = xmlReadMemory(c->req->body, (int)c->req->body_len, "body.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr r = doc ? xmlDocGetRootElement(doc) : NULL;
    /* S3 bodies never carry a document type declaration: refusing it keeps entities out entirely */
    if (!r || doc->intSubset || doc->extSubset || strcmp((const char *)r->name, root) != 0) {
        xmlFreeDoc(doc);
        rd_s3api_fail(c, 400, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our published schema.");
        return NULL;
    }
    return doc;
}

char *rd_s3api_child_text(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr n = parent->children; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0) {
            xmlChar *t = xmlNodeGetContent(n);
            char *s = strdup(t ? (const char *)t : "");
            xmlFree(t);
            return s;
        }
    return NULL;
}

static void create_bucket(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:CreateBucket", 0))
        return;
    char *region = NULL;
    if (c->req->body_len) {
        xmlDocPtr doc = rd_s3api_parse_body(c, "CreateBucketConfiguration");
        if (!doc)
            return;
        region = rd_s3api_child_text(xmlDocGetRootElement(doc), "LocationConstraint");
        xmlFreeDoc(doc);
    }
    /* S3's rules: the us-east-1 endpoint takes any other constraint (none means us-east-1); a regional endpoint
     * only its own region's */
    const char *endpoint = c->req->region && *c->req->region ? c->req->region : "us-east-1";
    int global = strcmp(endpoint, "us-east-1") == 0;
    if (region && strcmp(region, "us-east-1") == 0) {
        free(region);
        rd_s3api_fail(c, 400, "InvalidLocationConstraint", "The specified location-constraint is not valid");
        return;
    }
    if ((region && *region && !global && strcmp(region, endpoint) != 0) || (!(region && *region) && !global)) {
        rd_buf m = RD_BUF_INIT;
        rd_buf_printf(&m,
                      "The %s location constraint is incompatible for the region specific endpoint this request "
                      "was sent to.",
                      region && *region ? region : "unspecified");
        rd_s3api_fail(c, 400, "IllegalLocationConstraintException", rd_buf_cstr(&m));
        rd_buf_free(&m);
        free(region);
        return;
    }
    const char *use = region && *region ? region : "us-east-1";
    rd_emu_error err;
    if (rd_s3_store_create_bucket(c->store, c->bucket, use, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
    } else {
        c->resp->status = 200;
        rd_buf r = RD_BUF_INIT;
        rd_buf_printf(&r, "/%s", c->bucket);
        rd_headers_set(&c->resp->headers, "Location", rd_buf_cstr(&r));
        rd_buf_free(&r);
    }
    free(region);
}

/* The bucket's region (malloc'd) after the action is checked; NULL with the reply filled when refused or absent. */
static char *bucket_region(s3_call *c, const char *action)
{
    if (!rd_s3api_allowed(c, action, 0))
        return NULL;
    char *region = NULL;
    rd_emu_error err;
    if (rd_s3_store_head_bucket(c->store, c->bucket, &region, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        return NULL;
    }
    return region;
}

static void head_bucket(s3_call *c)
{
    char *region = bucket_region(c, "s3:ListBucket");
    if (!region)
        return;
    c->resp->status = 200;
    rd_headers_set(&c->resp->headers, "x-amz-bucket-region", region);
    rd_headers_set(&c->resp->headers, "x-amz-access-point-alias", "false");
    free(region);
}

static void delete_bucket(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:DeleteBucket", 0))
        return;
    rd_emu_error err;
    if (rd_s3_store_delete_bucket(c->store, c->bucket, &err) != 0)
        rd_s3api_fail_emu(c, &err);
    else
        c->resp->status = 204;
}

static void get_bucket_location(s3_call *c)
{
    char *region = bucket_region(c, "s3:GetBucketLocation");
    if (!region)
        return;
    s3_xw x;
    rd_s3api_xw_start(&x, "LocationConstraint");
    if (strcmp(region, "us-east-1") != 0)
        xmlTextWriterWriteString(x.w, BAD_CAST region);
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
    free(region);
}

static void get_bucket_versioning(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:GetBucketVersioning", 0))
        return;
    rd_emu_error err;
    if (rd_s3_store_head_bucket(c->store, c->bucket, NULL, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
        return;
    }
    s3_xw x;
    rd_s3api_xw_start(&x, "VersioningConfiguration");
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
}

/* A non-negative integer query parameter (default def, capped at cap); 0 with the reply filled when invalid. */
int rd_s3api_query_count(s3_call *c, const char *name, long def, long cap, long *out)
{
    const char *v = rd_form_get(&c->q, name);
    *out = def;
    if (!v)
        return 1;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < 0) {
        rd_buf m = RD_BUF_INIT;
        rd_buf_printf(&m, "Provided %s not an integer or within integer range", name);
        rd_s3api_fail(c, 400, "InvalidArgument", rd_buf_cstr(&m));
        rd_buf_free(&m);
        return 0;
    }
    *out = n > cap ? cap : n;
    return 1;
}

/* Parses max-keys; 0 and the reply filled when invalid. */
static int parse_max_keys(s3_call *c, size_t *out)
{
    long v = 0;
    if (!rd_s3api_query_count(c, "max-keys", MAX_KEYS_LIMIT, MAX_KEYS_LIMIT, &v))
        return 0;
    *out = (size_t)v;
    return 1;
}

static void write_contents(s3_xw *x, const rd_s3_listing *l, int encode, int v1)
{
    for (size_t i = 0; i < l->object_count; i++) {
        const rd_s3_object_info *o = &l->objects[i];
        char date[32], size[32];
        rd_s3api_iso8601(o->last_modified, date);
        snprintf(size, sizeof size, "%" PRIu64, o->size);
        rd_s3api_xw_open(x, "Contents");
        rd_s3api_xw_el_enc(x, "Key", o->key, encode);
        rd_s3api_xw_el(x, "LastModified", date);
        rd_s3api_xw_el(x, "ETag", o->etag);
        rd_s3api_xw_el(x, "Size", size);
        rd_s3api_xw_el(x, "StorageClass", "STANDARD");
        if (v1) {
            rd_s3api_xw_open(x, "Owner");
            rd_s3api_xw_el(x, "ID", "000000000000");
            rd_s3api_xw_el(x, "DisplayName", "redduck");
            rd_s3api_xw_close(x);
        }
        rd_s3api_xw_close(x);
    }
    for (size_t i = 0; i < l->prefix_count; i++) {
        rd_s3api_xw_open(x, "CommonPrefixes");
        rd_s3api_xw_el_enc(x, "Prefix", l->common_prefixes[i], encode);
        rd_s3api_xw_close(x);
    }
}

static void list_objects(s3_call *c, int v2)
{
    if (!rd_s3api_allowed(c, "s3:ListBucket", 0))
        return;
    const char *prefix = rd_form_get(&c->q, "prefix");
    const char *delimiter = rd_form_get(&c->q, "delimiter");
    const char *enc = rd_form_get(&c->q, "encoding-type");
    const char *token = v2 ? rd_form_get(&c->q, "continuation-token") : NULL;
    const char *start_after = v2 ? rd_form_get(&c->q, "start-after") : rd_form_get(&c->q, "marker");
    size_t max_keys;
    if (!parse_max_keys(c, &max_keys))
        return;
    if (enc && strcmp(enc, "url") != 0) {
        rd_s3api_fail(c, 400, "InvalidArgument", "Invalid Encoding Method specified in Request");
        return;
    }
    int encode = enc != NULL;
    char *after = NULL;
    if (token) {
        size_t n = 0;
        after = (char *)rd_s3api_b64_decode(token, &n);
        if (!after || n == 0 || strlen(after) != n) {
            free(after);
            rd_s3api_fail(c, 400, "InvalidArgument", "The continuation token provided is incorrect");
            return;
        }
    }
    rd_s3_listing l;
    rd_emu_error err;
    if (rd_s3_store_list(c->store, c->bucket, prefix, delimiter, after ? after : start_after, max_keys, &l, &err) != 0) {
        free(after);
        rd_s3api_fail_emu(c, &err);
        return;
    }
    free(after);
    char num[32];
    s3_xw x;
    rd_s3api_xw_start(&x, "ListBucketResult");
    rd_s3api_xw_el(&x, "Name", c->bucket);
    rd_s3api_xw_el_enc(&x, "Prefix", prefix ? prefix : "", encode);
    if (v2) {
        if (token)
            rd_s3api_xw_el(&x, "ContinuationToken", token);
        if (start_after)
            rd_s3api_xw_el_enc(&x, "StartAfter", start_after, encode);
        snprintf(num, sizeof num, "%zu", l.object_count + l.prefix_count);
        rd_s3api_xw_el(&x, "KeyCount", num);
    } else {
        rd_s3api_xw_el_enc(&x, "Marker", start_after ? start_after : "", encode);
        if (l.truncated && l.next_after)
            rd_s3api_xw_el_enc(&x, "NextMarker", l.next_after, encode);
    }
    snprintf(num, sizeof num, "%zu", max_keys);
    rd_s3api_xw_el(&x, "MaxKeys", num);
    if (delimiter)
        rd_s3api_xw_el_enc(&x, "Delimiter", delimiter, encode);
    rd_s3api_xw_el(&x, "IsTruncated", l.truncated ? "true" : "false");
    if (v2 && l.truncated && l.next_after) {
        char *t = b64_encode((const unsigned char *)l.next_after, strlen(l.next_after));
        rd_s3api_xw_el(&x, "NextContinuationToken", t);
        free(t);
    }
    if (encode)
        rd_s3api_xw_el(&x, "EncodingType", "url");
    write_contents(&x, &l, encode, !v2);
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
    rd_s3_listing_free(&l);
}

/* Verifies Content-MD5 or a flexible checksum header of an in-memory body. 0 and the reply filled when
 * missing (and required), malformed or wrong. */
static int verify_body_digest(s3_call *c, int required)
{
    unsigned char md[16];
    int have_md5 = content_md5(c->req->headers, md);
    if (have_md5 < 0) {
        rd_s3api_fail(c, 400, "InvalidDigest", "The Content-MD5 you specified was invalid.");
        return 0;
    }
    if (have_md5) {
        unsigned char got[16];
        unsigned int n = 0;
        EVP_Digest(c->req->body, c->req->body_len, got, &n, EVP_md5(), NULL);
        if (memcmp(got, md, 16) != 0) {
            rd_s3api_fail(c, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
            return 0;
        }
        return 1;
    }
    const char *name = checksum_header(c->req->headers);
    if (name) {
        s3_checksum ck;
        rd_s3api_ck_init(&ck, name);
        rd_s3api_ck_update(&ck, c->req->body, c->req->body_len);
        char *got = rd_s3api_ck_final(&ck);
        int ok = got && strcmp(got, rd_headers_get(c->req->headers, name)) == 0;
        free(got);
        if (!ok)
            rd_s3api_fail(c, 400, "BadDigest", "The checksum you specified did not match the calculated checksum.");
        return ok;
    }
    if (required)
        rd_s3api_fail(c, 400, "InvalidRequest", "Missing required header for this request: Content-MD5");
    return !required;
}

static void delete_objects(s3_call *c)
{
    if (!verify_body_digest(c, 1))
        return;
    xmlDocPtr doc = rd_s3api_parse_body(c, "Delete");
    if (!doc)
        return;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    char *quiet_s = rd_s3api_child_text(root, "Quiet");
    int quiet = quiet_s && strcasecmp(quiet_s, "true") == 0;
    free(quiet_s);
    size_t count = 0;
    int malformed = 0;
    for (xmlNodePtr n = root->children; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "Object") == 0) {
            count++;
            char *k = rd_s3api_child_text(n, "Key");
            if (!k)
                malformed = 1;
            free(k);
        }
    if (malformed || count == 0 || count > DELETE_OBJECTS_LIMIT) {
        xmlFreeDoc(doc);
        rd_s3api_fail(c, 400, "MalformedXML",
                      "The XML you provided was not well-formed or did not validate against our published schema.");
        return;
    }
    rd_emu_error err;
    if (rd_s3_store_head_bucket(c->store, c->bucket, NULL, &err) != 0) {
        xmlFreeDoc(doc);
        rd_s3api_fail_emu(c, &err);
        return;
    }
    s3_xw x;
    rd_s3api_xw_start(&x, "DeleteResult");
    rd_buf arn = RD_BUF_INIT;
    for (xmlNodePtr n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "Object") != 0)
            continue;
        char *k = rd_s3api_child_text(n, "Key");
        rd_buf_reset(&arn);
        rd_buf_printf(&arn, "arn:aws:s3:::%s/%s", c->bucket, k);
        const char *code = NULL, *msg = NULL;
        if (!rd_emu_allowed(c->emu, c->req, "s3:DeleteObject", rd_buf_cstr(&arn))) {
            code = "AccessDenied";
            msg = "Access Denied";
        } else if (rd_s3_store_delete(c->store, c->bucket, k, &err) != 0) {
            code = err.code;
            msg = err.http_status >= 500 ? rd_s3api_internal_message : err.message;
        }
        if (code) {
            rd_s3api_xw_open(&x, "Error");
            rd_s3api_xw_el(&x, "Key", k);
            rd_s3api_xw_el(&x, "Code", code);
            rd_s3api_xw_el(&x, "Message", msg);
            rd_s3api_xw_close(&x);
        } else if (!quiet) {
            rd_s3api_xw_open(&x, "Deleted");
            rd_s3api_xw_el(&x, "Key", k);
            rd_s3api_xw_close(&x);
        }
        free(k);
    }
    rd_buf_free(&arn);
    rd_s3api_xw_close(&x);
    rd_s3api_xw_finish(&x, c);
    xmlFreeDoc(doc);
}

/* ---- object operations ------------------------------------------------------------------------------ */

/* 1 when the entity tag list (comma separated, or "*") matches etag. */
int rd_s3api_etag_matches(const char *list, const char *etag)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        size_t n = (size_t)(t - p);
        if (n >= 2 && p[0] == 'W' && p[1] == '/') {
            p += 2;
            n -= 2;
        }
        if (n == 1 && *p == '*')
            return 1;
        if (n == strlen(etag) && strncmp(p, etag, n) == 0)
            return 1;
        if (n == strlen(etag) - 2 && strncmp(p, etag + 1, n) == 0) /* unquoted */
            return 1;
        p = e;
    }
    return 0;
}

/* Parses Range against size. 0 → serve everything, 1 → [*first, *last], -1 → unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *p = h + 6;
    char *end;
    if (*p == '-') {
        if (!isdigit((unsigned char)p[1]))
            return 0;
        errno = 0;
        uint64_t n = strtoull(p + 1, &end, 10);
        if (*end || errno)
            return 0;
        if (n == 0 || size == 0)
            return -1;
        *first = n >= size ? 0 : size - n;
        *last = size - 1;
        return 1;
    }
    if (!isdigit((unsigned char)*p))
        return 0;
    errno = 0;
    uint64_t a = strtoull(p, &end, 10);
    if (*end != '-' || errno)
        return 0;
    p = end + 1;
    uint64_t b = UINT64_MAX;
    if (*p) {
        if (!isdigit((unsigned char)*p))
            return 0;
        b = strtoull(p, &end, 10);
        if (*end || errno || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 1;
}

static void not_found_object(s3_call *c, const rd_emu_error *err)
{
    /* without s3:ListBucket, S3 does not reveal that a key is missing */
    if (strcmp(err->code, "NoSuchKey") == 0) {
        rd_buf arn = RD_BUF_INIT;
        rd_buf_printf(&arn, "arn:aws:s3:::%s", c->bucket);
        int may_list = rd_emu_allowed(c->emu, c->req, "s3:ListBucket", rd_buf_cstr(&arn));
        rd_buf_free(&arn);
        if (!may_list) {
            rd_s3api_fail(c, 403, "AccessDenied", "Access Denied");
            return;
        }
    }
    rd_s3api_fail_emu(c, err);
}

/* The stored metadata as headers of a GET or HEAD; the checksum (whole-object reads only) when the request
 * has x-amz-checksum-mode: ENABLED; then GET's response-* overrides. */
static void reply_meta(s3_call *c, const rd_s3_object_info *info, int whole)
{
    rd_headers *out = &c->resp->headers;
    for (size_t i = 0; i < info->meta.headers.count; i++)
        rd_headers_add(out, info->meta.headers.items[i].name, info->meta.headers.items[i].value);
    const char *mode = rd_headers_get(c->req->headers, "x-amz-checksum-mode");
    int k = rd_s3api_ck_find(info->meta.checksum_algo);
    if (whole && mode && strcasecmp(mode, "ENABLED") == 0 && k >= 0 && info->meta.checksum) {
        rd_headers_set(out, rd_s3api_ck_names[k].name, info->meta.checksum);
        if (info->meta.checksum_type)
            rd_headers_set(out, "x-amz-checksum-type", info->meta.checksum_type);
    }
    static const char *const overrides[][2] = { { "response-content-type", "Content-Type" },
                                                { "response-content-language", "Content-Language" },
                                                { "response-expires", "Expires" },
                                                { "response-cache-control", "Cache-Control" },
                                                { "response-content-disposition", "Content-Disposition" },
                                                { "response-content-encoding", "Content-Encoding" } };
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
        const char *v = rd_form_get(&c->q, overrides[i][0]);
        if (v)
            rd_headers_set(out, overrides[i][1], v);
    }
}

/* The metadata a write asks the object to keep (x-amz-meta-*, Cache-Control, Content-Disposition,
 * Content-Encoding but aws-chunked, Content-Language, Expires) into m; 0 with the reply filled when the user
 * metadata is over S3's 2 KB. */
int rd_s3api_request_meta(s3_call *c, rd_s3_meta *m)
{
    memset(m, 0, sizeof *m);
    rd_headers_init(&m->headers);
    const rd_headers *h = c->req->headers;
    size_t user = 0;
    for (size_t i = 0; i < h->count; i++) {
        const char *n = h->items[i].name;
        if (strncasecmp(n, "x-amz-meta-", 11) != 0)
            continue;
        char *lower = strdup(n);
        for (char *p = lower; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (lower)
            rd_headers_add(&m->headers, lower, h->items[i].value);
        free(lower);
        user += strlen(n) - 11 + strlen(h->items[i].value);
    }
    static const char *const kept[] = { "Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language",
                                        "Expires" };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        const char *v = rd_headers_get(h, kept[i]);
        if (!v)
            continue;
        if (strcasecmp(kept[i], "Content-Encoding") == 0) {
            /* aws-chunked describes the transfer, not the object: S3 drops it */
            rd_buf enc = RD_BUF_INIT;
            const char *p = v;
            while (*p) {
                while (*p == ' ' || *p == ',')
                    p++;
                size_t n = strcspn(p, ",");
                size_t t = n;
                while (t && p[t - 1] == ' ')
                    t--;
                if (t && !(t == 11 && strncasecmp(p, "aws-chunked", 11) == 0)) {
                    if (enc.len)
                        rd_buf_putc(&enc, ',');
                    rd_buf_append(&enc, p, t);
                }
                p += n;
            }
            if (enc.len)
                rd_headers_add(&m->headers, kept[i], rd_buf_cstr(&enc));
            rd_buf_free(&enc);
            continue;
        }
        rd_headers_add(&m->headers, kept[i], v);
    }
    if (user > USER_METADATA_LIMIT) {
        rd_s3_meta_free(m);
        rd_s3api_fail(c, 400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.");
        return 0;
    }
    return 1;
}

static void get_object(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:GetObject", 1))
        return;
    rd_s3_object_info info;
    memset(&info, 0, sizeof info);
    rd_emu_error err;
    int fd = -1;
    int st = c->head ? rd_s3_store_head(c->store, c->bucket, c->key, &info, &err)
                     : rd_s3_store_open_object(c->store, c->bucket, c->key, &fd, &info, &err);
    if (st != 0) {
        not_found_object(c, &err);
        return;
    }
    c->resp->fd = fd; /* closed by rd_s3api_fail() or the server */
    const rd_headers *h = c->req->headers;
    char lm[40];
    http_date(info.last_modified, lm);
    const char *im = rd_headers_get(h, "If-Match"), *inm = rd_headers_get(h, "If-None-Match");
    const char *ius = rd_headers_get(h, "If-Unmodified-Since"), *ims = rd_headers_get(h, "If-Modified-Since");
    time_t t;
    int precondition_failed = im ? !rd_s3api_etag_matches(im, info.etag)
                                 : ius && (t = rd_s3api_parse_http_date(ius)) >= 0 && info.last_modified > t;
    int not_modified = inm ? rd_s3api_etag_matches(inm, info.etag)
                           : ims && (t = rd_s3api_parse_http_date(ims)) >= 0 && info.last_modified <= t;
    if (precondition_failed) {
        rd_s3api_fail(c, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
        goto out;
    }
    if (not_modified) {
        if (c->resp->fd >= 0)
            close(c->resp->fd);
        c->resp->fd = -1;
        c->resp->status = 304;
        rd_headers_set(&c->resp->headers, "ETag", info.etag);
        rd_headers_set(&c->resp->headers, "Last-Modified", lm);
        goto out;
    }
    uint64_t first = 0, last = info.size ? info.size - 1 : 0;
    int range = parse_range(rd_headers_get(h, "Range"), info.size, &first, &last);
    if (range < 0) {
        rd_s3api_fail(c, 416, "InvalidRange", "The requested range is not satisfiable");
        char cr[48];
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, info.size);
        rd_headers_set(&c->resp->headers, "Content-Range", cr);
        goto out;
    }
    uint64_t len = info.size ? last - first + 1 : 0;
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, len);
    c->resp->status = range ? 206 : 200;
    rd_headers_set(&c->resp->headers, "Content-Length", num);
    rd_headers_set(&c->resp->headers, "ETag", info.etag);
    rd_headers_set(&c->resp->headers, "Last-Modified", lm);
    rd_headers_set(&c->resp->headers, "Accept-Ranges", "bytes");
    rd_headers_set(&c->resp->headers, "Content-Type", info.content_type ? info.content_type : "binary/octet-stream");
    reply_meta(c, &info, !range);
    if (range) {
        char cr[80];
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, info.size);
        rd_headers_set(&c->resp->headers, "Content-Range", cr);
    }
    if (c->resp->fd >= 0 && len == 0) {
        close(c->resp->fd);
        c->resp->fd = -1;
    }
    c->resp->fd_offset = first;
    c->resp->fd_length = len;
out:
    rd_s3_object_info_free(&info);
}

/* ---- PutObject: the body streams through an upload (temp file, hashes as it comes) ------------------ */

struct rd_emu_s3_upload {
    s3_call c;            /* owns bucket, key, resource and the parsed query */
    rd_s3_put *w;
    s3_checksum ck;
    EVP_MD_CTX *sha;      /* SHA-256 of the body as received, when x-amz-content-sha256 is a digest */
    char expected_sha[65];
    unsigned char md5[16];
    int have_md5;
    rd_emu_chunked *dec;  /* aws-chunked: decoded (and signed chunks verified) as it arrives; else NULL */
    rd_emu_error err;
    int failed;           /* the store refused a write: err says why */
    rd_s3_meta meta;      /* what the object keeps (PutObject); the checksum is added at the end */
    int part;             /* an UploadPart: the part's number */
};

/* x-amz-content-sha256: 1 and out filled for a hex digest, 0 for UNSIGNED-PAYLOAD / STREAMING-* / absent,
 * -1 for anything else. */
static int payload_digest(const rd_headers *h, char out[65])
{
    const char *v = rd_headers_get(h, "x-amz-content-sha256");
    if (!v || strcmp(v, "UNSIGNED-PAYLOAD") == 0 || strncmp(v, "STREAMING-", 10) == 0)
        return 0;
    if (strlen(v) != 64)
        return -1;
    for (int i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)v[i]))
            return -1;
        out[i] = (char)tolower((unsigned char)v[i]);
    }
    out[64] = '\0';
    return 1;
}

static void fail_sha_mismatch(s3_call *c)
{
    rd_s3api_fail(c, 400, "XAmzContentSHA256Mismatch",
                  "The provided 'x-amz-content-sha256' header does not match what was computed.");
}

static void fail_bad_sha(s3_call *c)
{
    rd_s3api_fail(
        c, 400, "InvalidArgument",
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.");
}

/* Checks an in-memory body against x-amz-content-sha256. 0 and the reply filled when it does not match. */
static int payload_hash_ok(s3_call *c)
{
    char want[65], got[65];
    int d = payload_digest(c->req->headers, want);
    if (d < 0) {
        fail_bad_sha(c);
        return 0;
    }
    if (d == 0)
        return 1;
    rd_sha256_hex(c->req->body, c->req->body_len, got);
    if (strcmp(got, want) != 0) {
        fail_sha_mismatch(c);
        return 0;
    }
    return 1;
}

static void upload_store(rd_emu_s3_upload *u, const char *p, size_t n)
{
    if (u->failed || !n)
        return;
    if (rd_s3_put_write(u->w, p, n, &u->err) != 0) {
        u->failed = 1;
        return;
    }
    rd_s3api_ck_update(&u->ck, p, n);
}

/* The decoder's sink: decoded data to the temp file. */
static int upload_sink(void *ctx, const void *p, size_t n, rd_emu_error *err)
{
    rd_emu_s3_upload *u = ctx;
    upload_store(u, p, n);
    if (!u->failed)
        return 0;
    *err = u->err;
    return -1;
}

void rd_emu_s3_upload_write(rd_emu_s3_upload *u, const void *data, size_t len)
{
    if (!u || !len)
        return;
    if (u->sha)
        EVP_DigestUpdate(u->sha, data, len);
    if (u->dec)
        rd_emu_chunked_feed(u->dec, data, len, NULL); /* a failure sticks: upload_close reports it */
    else
        upload_store(u, data, len);
}

void rd_emu_s3_upload_abort(rd_emu_s3_upload *u)
{
    if (!u)
        return;
    free(rd_s3api_ck_final(&u->ck));
    EVP_MD_CTX_free(u->sha);
    rd_s3_put_abort(u->w);
    rd_emu_chunked_free(u->dec);
    rd_s3_meta_free(&u->meta);
    rd_form_free(&u->c.q);
    free(u->c.bucket);
    free(u->c.key);
    free(u->c.resource);
    free(u);
}

/* x-amz-decoded-content-length: its value, -1 when absent, -2 when not a number. */
static int64_t decoded_length(const rd_headers *h)
{
    const char *v = rd_headers_get(h, "x-amz-decoded-content-length");
    if (!v)
        return -1;
    int64_t n = 0;
    if (!*v || strlen(v) > 15)
        return -2;
    for (const char *p = v; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -2;
        n = n * 10 + (*p - '0');
    }
    return n;
}

/* The aws-chunked decoder of an upload: unsigned, or signed with STREAMING-AWS4-HMAC-SHA256-PAYLOAD and
 * verified chunk by chunk from the request's signature. 0 with the reply filled when it cannot start. */
static int chunked_open(s3_call *c, rd_emu_s3_upload *u, const char *sha)
{
    const rd_headers *h = c->req->headers;
    int is_signed = sha && strcmp(sha, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == 0;
    if (sha && strncmp(sha, "STREAMING-", 10) == 0 && !is_signed &&
        strcmp(sha, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") != 0) {
        /* signed trailers and ECDSA (SigV4a) chunks */
        rd_s3api_fail(
            c, 501, "NotImplemented",
            "The emulator accepts x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD and "
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER aws-chunked uploads, not signed trailers or ECDSA signatures");
        return 0;
    }
    int64_t dlen = decoded_length(h);
    if (dlen == -2) {
        rd_s3api_fail(c, 400, "InvalidArgument", "x-amz-decoded-content-length must be the object's length in bytes");
        return 0;
    }
    rd_sigv4_params signer;
    memset(&signer, 0, sizeof signer);
    if (is_signed) {
        if (dlen < 0) {
            rd_s3api_fail(c, 411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
            return 0;
        }
        const char *date = rd_headers_get(h, "X-Amz-Date");
        if (!c->req->signature || !c->req->secret_access_key || !c->req->region || !date ||
            rd_sigv4_parse_amz_date(date, &signer.when) != 0) {
            rd_s3api_fail(c, 400, "InvalidRequest",
                          "A signed aws-chunked upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) must be signed in the "
                          "Authorization header, with X-Amz-Date");
            return 0;
        }
        signer.service = "s3";
        signer.region = c->req->region;
        signer.access_key_id = c->req->access_key_id ? c->req->access_key_id : "-";
        signer.secret_access_key = c->req->secret_access_key;
    }
    rd_emu_error err;
    if (rd_emu_chunked_new(is_signed ? &signer : NULL, c->req->signature, dlen, upload_sink, u, &u->dec, &err) !=
        0) {
        rd_s3api_fail(c, 500, "InternalError", rd_s3api_internal_message);
        return 0;
    }
    return 1;
}

/* Everything PutObject and UploadPart check before the body; NULL with the reply filled when the request
 * fails. */
static rd_emu_s3_upload *upload_open(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:PutObject", 1))
        return NULL;
    const rd_headers *h = c->req->headers;
    int part = 0;
    if (rd_form_has(&c->q, "uploadId") && !(part = rd_s3mpu_part_number(c)))
        return NULL;
    rd_emu_s3_upload *u = calloc(1, sizeof *u);
    if (!u) {
        rd_s3api_fail(c, 500, "InternalError", rd_s3api_internal_message);
        return NULL;
    }
    u->part = part;
    if (!part && !rd_s3api_request_meta(c, &u->meta)) {
        free(u);
        return NULL;
    }
    u->have_md5 = content_md5(h, u->md5);
    if (u->have_md5 < 0) {
        rd_s3api_fail(c, 400, "InvalidDigest", "The Content-MD5 you specified was invalid.");
        goto fail_u;
    }
    const char *sha = rd_headers_get(h, "x-amz-content-sha256");
    const char *cenc = rd_headers_get(h, "Content-Encoding");
    int chunked = (sha && strncmp(sha, "STREAMING-", 10) == 0) || (cenc && strstr(cenc, "aws-chunked"));
    if (chunked && !chunked_open(c, u, sha))
        goto fail_u;
    int d = payload_digest(h, u->expected_sha);
    if (d < 0) {
        fail_bad_sha(c);
        goto fail_u;
    }
    const char *ck_name = checksum_header(h);
    if (!ck_name && u->dec)
        ck_name = rd_headers_get(h, "x-amz-trailer");
    rd_emu_error err;
    if (part) {
        rd_s3_upload_info up;
        if (rd_s3_store_mpu_get(c->store, c->bucket, c->key, rd_form_get(&c->q, "uploadId"), &up, &err) != 0) {
            rd_s3api_fail_emu(c, &err);
            goto fail_u;
        }
        int ok = rd_s3mpu_part_checksum(c, &up, &ck_name);
        rd_s3_upload_info_free(&up);
        if (!ok)
            goto fail_u;
        if (rd_s3_store_part_begin(c->store, c->bucket, c->key, rd_form_get(&c->q, "uploadId"), part, &u->w, &err) !=
            0) {
            rd_s3api_fail_emu(c, &err);
            goto fail_u;
        }
    } else {
        const char *ctype = rd_headers_get(h, "Content-Type");
        if (rd_s3_store_put_begin(c->store, c->bucket, c->key, ctype ? ctype : "binary/octet-stream", &u->w, &err) !=
            0) {
            rd_s3api_fail_emu(c, &err);
            goto fail_u;
        }
    }
    if (d > 0) {
        u->sha = EVP_MD_CTX_new();
        EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL);
    }
    rd_s3api_ck_init(&u->ck, ck_name);
    u->c = *c; /* takes bucket, key, resource and query */
    memset(&c->q, 0, sizeof c->q);
    c->bucket = c->key = c->resource = NULL;
    return u;
fail_u:
    rd_emu_chunked_free(u->dec);
    rd_s3_meta_free(&u->meta);
    free(u);
    return NULL;
}

/* Verifies and publishes (or discards) the upload, fills resp and frees u. */
static void upload_close(rd_emu_s3_upload *u, rd_emu_response *resp)
{
    s3_call *c = &u->c;
    c->resp = resp;
    const rd_headers *h = c->req->headers;
    char *computed = NULL;
    rd_emu_error derr;
    int dst = u->dec ? rd_emu_chunked_finish(u->dec, &derr) : 0;
    if (u->failed) {
        rd_s3api_fail_emu(c, &u->err);
        goto abort;
    }
    if (u->sha) {
        unsigned char md[32];
        unsigned int n = 0;
        char got[65];
        EVP_DigestFinal_ex(u->sha, md, &n);
        for (unsigned i = 0; i < 32; i++)
            snprintf(got + 2 * i, 3, "%02x", md[i]);
        if (strcmp(got, u->expected_sha) != 0) {
            fail_sha_mismatch(c);
            goto abort;
        }
    }
    if (dst != 0) {
        rd_s3api_fail_emu(c, &derr);
        goto abort;
    }
    computed = rd_s3api_ck_final(&u->ck);
    const char *trailer = rd_emu_chunked_trailer_value(u->dec);
    const char *expected = trailer ? trailer : u->ck.name ? rd_headers_get(h, u->ck.name) : NULL;
    if (computed && expected && strcmp(computed, expected) != 0) {
        rd_s3api_fail(c, 400, "BadDigest", "The checksum you specified did not match the calculated checksum.");
        goto abort;
    }
    rd_s3_object_info info;
    memset(&info, 0, sizeof info);
    rd_emu_error err;
    rd_s3_put *w = u->w;
    u->w = NULL; /* commit frees the writer whatever the outcome */
    if (computed && u->ck.name) {
        int k = rd_s3api_ck_find(u->ck.name);
        u->meta.checksum_algo = strdup(rd_s3api_ck_names[k].algo_name);
        u->meta.checksum = strdup(computed);
        u->meta.checksum_type = strdup("FULL_OBJECT");
    }
    if (rd_s3_put_set_meta(w, &u->meta, &err) != 0) {
        rd_s3_put_abort(w);
        rd_s3api_fail_emu(c, &err);
    } else if (rd_s3_put_commit(w, u->have_md5 ? u->md5 : NULL, &info, &err) != 0) {
        rd_s3api_fail_emu(c, &err);
    } else {
        resp->status = 200;
        rd_headers_set(&resp->headers, "ETag", info.etag);
        if (computed && u->ck.name)
            rd_headers_set(&resp->headers, u->ck.name, computed);
        rd_s3_object_info_free(&info);
    }
abort:
    common_headers(c);
    free(computed);
    rd_emu_s3_upload_abort(u);
}

void rd_emu_s3_upload_finish(rd_emu_s3_upload *u, rd_emu_response *resp)
{
    resp->status = 200;
    upload_close(u, resp);
}

static void put_object(s3_call *c)
{
    rd_emu_s3_upload *u = upload_open(c);
    if (!u)
        return;
    rd_emu_s3_upload_write(u, c->req->body, c->req->body_len);
    upload_close(u, c->resp);
}

static void delete_object(s3_call *c)
{
    if (!rd_s3api_allowed(c, "s3:DeleteObject", 1))
        return;
    rd_emu_error err;
    if (rd_s3_store_delete(c->store, c->bucket, c->key, &err) != 0)
        rd_s3api_fail_emu(c, &err);
    else
        c->resp->status = 204;
}

/* ---- routing ---------------------------------------------------------------------------------------- */

/* 1 when the request names a subresource the emulator does not serve (for the multipart ones: on another
 * method or resource than their operations'). */
static int has_unsupported_subresource(const rd_form *q, const char *method, int has_key)
{
    static const char *const names[] = { "acl",
                                         "policy",
                                         "tagging",
                                         "cors",
                                         "lifecycle",
                                         "website",
                                         "versions",
                                         "encryption",
                                         "logging",
                                         "notification",
                                         "replication",
                                         "accelerate",
                                         "ownershipControls",
                                         "publicAccessBlock",
                                         "object-lock",
                                         "retention",
                                         "legal-hold",
                                         "restore",
                                         "select",
                                         "torrent",
                                         "attributes",
                                         "requestPayment",
                                         "analytics",
                                         "inventory",
                                         "metrics" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (rd_form_has(q, names[i]))
            return 1;
    int uploads = rd_form_has(q, "uploads"), id = rd_form_has(q, "uploadId"), part = rd_form_has(q, "partNumber");
    int put = strcmp(method, "PUT") == 0, post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0,
        del = strcmp(method, "DELETE") == 0;
    if (uploads && !(has_key ? post && !id : get))
        return 1;
    if (id && !(has_key && (put ? part : post || get || del)))
        return 1;
    if (part && !(put && id))
        return 1; /* GetObject / HeadObject of one part */
    return 0;
}

static void call_init(s3_call *c, rd_emu *emu, struct rd_s3_store *store, const rd_emu_request *req,
                      rd_emu_response *resp)
{
    memset(c, 0, sizeof *c);
    c->emu = emu;
    c->store = store;
    c->req = req;
    c->resp = resp;
}

void rd_emu_s3_handle(rd_emu *emu, struct rd_s3_store *store, const rd_emu_request *req, rd_emu_response *resp)
{
    s3_call c;
    call_init(&c, emu, store, req, resp);
    c.head = req->method && strcmp(req->method, "HEAD") == 0;
    const char *m = req->method ? req->method : "";
    if (!address(&c))
        goto out;
    if (rd_form_parse(req->query ? req->query : "", req->query ? strlen(req->query) : 0, 0, &c.q) != RD_OK) {
        rd_s3api_fail(&c, 500, "InternalError", rd_s3api_internal_message);
        goto out;
    }
    resp->status = 200;
    int is_get = strcmp(m, "GET") == 0, is_put = strcmp(m, "PUT") == 0, is_del = strcmp(m, "DELETE") == 0,
        is_post = strcmp(m, "POST") == 0;
    if (is_post && c.bucket && *c.bucket && !c.key && rd_emu_s3_is_post_object(req)) {
        rd_emu_s3_post_object(emu, store, c.bucket, req, resp); /* authorised by its own signed policy */
    } else if (!(is_put && c.key) && !payload_hash_ok(&c)) {
        /* reply filled; PutObject checks its hash as the body streams through */
    } else if (has_unsupported_subresource(&c.q, m, c.key != NULL)) {
        rd_s3api_fail(&c, 501, "NotImplemented",
                      "A header or query parameter you provided implies functionality that is not "
                      "implemented by the emulator");
    } else if (!c.bucket || !*c.bucket) {
        if (is_get)
            list_buckets(&c);
        else
            rd_s3api_fail(&c, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    } else if (!c.key) {
        if (is_put)
            create_bucket(&c);
        else if (c.head)
            head_bucket(&c);
        else if (is_del)
            delete_bucket(&c);
        else if (is_get && rd_form_has(&c.q, "location"))
            get_bucket_location(&c);
        else if (is_get && rd_form_has(&c.q, "versioning"))
            get_bucket_versioning(&c);
        else if (is_get && rd_form_has(&c.q, "uploads"))
            rd_s3mpu_list_uploads(&c);
        else if (is_get)
            list_objects(&c, rd_form_get(&c.q, "list-type") && strcmp(rd_form_get(&c.q, "list-type"), "2") == 0);
        else if (is_post && rd_form_has(&c.q, "delete"))
            delete_objects(&c);
        else
            rd_s3api_fail(&c, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    } else {
        int mpu = rd_form_has(&c.q, "uploadId"), copy = rd_headers_get(req->headers, "x-amz-copy-source") != NULL;
        if (is_get && mpu)
            rd_s3mpu_list_parts(&c);
        else if (is_get || c.head)
            get_object(&c);
        else if (is_put && copy)
            mpu ? rd_s3copy_part(&c) : rd_s3copy_object(&c);
        else if (is_put)
            put_object(&c); /* PutObject or UploadPart */
        else if (is_del && mpu)
            rd_s3mpu_abort(&c);
        else if (is_del)
            delete_object(&c);
        else if (is_post && rd_form_has(&c.q, "uploads"))
            rd_s3mpu_create(&c);
        else if (is_post && mpu)
            rd_s3mpu_complete(&c);
        else
            rd_s3api_fail(&c, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
    }
out:
    common_headers(&c);
    rd_form_free(&c.q);
    free(c.bucket);
    free(c.key);
    free(c.resource);
}

rd_emu_s3_route rd_emu_s3_upload_begin(rd_emu *emu, struct rd_s3_store *store, const rd_emu_request *req,
                                       rd_emu_response *resp, rd_emu_s3_upload **out)
{
    *out = NULL;
    if (!req->method || strcmp(req->method, "PUT") != 0)
        return RD_EMU_S3_BUFFER;
    s3_call c;
    call_init(&c, emu, store, req, resp);
    rd_emu_s3_route route = RD_EMU_S3_REPLIED;
    if (!address(&c))
        goto out;
    if (!c.bucket || !*c.bucket || !c.key) {
        route = RD_EMU_S3_BUFFER; /* CreateBucket and other small bodies */
        goto out;
    }
    if (rd_form_parse(req->query ? req->query : "", req->query ? strlen(req->query) : 0, 0, &c.q) != RD_OK) {
        rd_s3api_fail(&c, 500, "InternalError", rd_s3api_internal_message);
        goto out;
    }
    if (rd_headers_get(req->headers, "x-amz-copy-source")) {
        route = RD_EMU_S3_BUFFER; /* CopyObject and UploadPartCopy carry no body */
        goto out;
    }
    if (has_unsupported_subresource(&c.q, "PUT", 1)) {
        rd_s3api_fail(&c, 501, "NotImplemented",
                      "A header or query parameter you provided implies functionality that is not "
                      "implemented by the emulator");
        goto out;
    }
    resp->status = 200;
    if ((*out = upload_open(&c)) != NULL)
        route = RD_EMU_S3_STREAM;
out:
    if (route == RD_EMU_S3_REPLIED)
        common_headers(&c);
    rd_form_free(&c.q);
    free(c.bucket);
    free(c.key);
    free(c.resource);
    return route;
}

const char *rd_emu_s3_operation(const rd_emu_request *req)
{
    s3_call c;
    memset(&c, 0, sizeof c);
    c.req = req;
    rd_emu_response scratch;
    rd_emu_response_init(&scratch);
    c.resp = &scratch;
    const char *m = req->method ? req->method : "";
    const char *op = "Other";
    if (address(&c) && rd_form_parse(req->query ? req->query : "", req->query ? strlen(req->query) : 0, 0, &c.q) ==
                           RD_OK) {
        int bucket = c.bucket && *c.bucket, get = strcmp(m, "GET") == 0, head = strcmp(m, "HEAD") == 0;
        int mpu = rd_form_has(&c.q, "uploadId"), copy = rd_headers_get(req->headers, "x-amz-copy-source") != NULL;
        if (!bucket && get)
            op = "ListBuckets";
        else if (bucket && !c.key && get && rd_form_has(&c.q, "uploads"))
            op = "ListMultipartUploads";
        else if (bucket && !c.key && get && !rd_form_has(&c.q, "location") && !rd_form_has(&c.q, "versioning"))
            op = "ListObjects";
        else if (bucket && c.key && get && mpu)
            op = "ListParts";
        else if (bucket && c.key && (get || head))
            op = "GetObject";
        else if (bucket && c.key && strcmp(m, "PUT") == 0)
            op = copy ? (mpu ? "UploadPartCopy" : "CopyObject") : mpu ? "UploadPart" : "PutObject";
        else if (bucket && c.key && strcmp(m, "POST") == 0 && rd_form_has(&c.q, "uploads"))
            op = "CreateMultipartUpload";
        else if (bucket && c.key && strcmp(m, "POST") == 0 && mpu)
            op = "CompleteMultipartUpload";
        else if (bucket && c.key && strcmp(m, "DELETE") == 0 && mpu)
            op = "AbortMultipartUpload";
    }
    rd_form_free(&c.q);
    free(c.bucket);
    free(c.key);
    free(c.resource);
    rd_emu_response_free(&scratch);
    return op;
}
