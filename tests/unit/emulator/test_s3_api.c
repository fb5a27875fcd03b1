/* test_s3_api.c — the emulator's S3 REST API driven directly (no server): addressing, every operation and
 * error code, ranges and conditionals, digests and checksums, aws-chunked uploads, listing pages against a
 * brute-force model, URL encoding, DeleteObjects, and authorisation with a real identities config. Replies are
 * parsed with libxml2. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emulator/emulator.h"
#include "emulator/emulator_internal.h"
#include "emulator/form.h"
#include "emulator/iam/identities.h"
#include "emulator/s3/s3_store.h"
#include "redduck/sigv4.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

typedef struct fixture {
    char dir[64];
    rd_s3_store *st;
    rd_emu *emu; /* NULL: everything allowed */
} fixture;

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return f == FTW_DP ? rmdir(p) : unlink(p);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/rd-s3api-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    rd_error err;
    if (rd_s3_store_open(f->dir, &f->st, &err) != RD_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_s3_store_close(f->st);
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* One call: method, path (raw), query, body, then header name/value pairs ending with NULL. */
typedef struct call {
    rd_emu_response resp;
    xmlDocPtr doc;
} call;

static const char *g_principal = "arn:aws:iam::000000000000:user/test";

static void do_call_v(fixture *f, call *c, const char *host, const char *method, const char *path, const char *query,
                      const char *body, size_t body_len, va_list ap)
{
    rd_headers h;
    rd_headers_init(&h);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL)
        rd_headers_add(&h, name, va_arg(ap, const char *));
    rd_emu_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.path = path;
    req.query = query ? query : "";
    req.headers = &h;
    req.body = body ? body : "";
    req.body_len = body_len;
    req.account_id = "000000000000";
    req.principal_arn = g_principal;
    req.region = "us-east-1";
    req.request_id = "REQ-1";
    req.host = host;
    rd_emu_response_init(&c->resp);
    rd_emu_s3_handle(f->emu, f->st, &req, &c->resp);
    rd_headers_free(&h);
    c->doc = c->resp.body.len ? xmlReadMemory(c->resp.body.data, (int)c->resp.body.len, "r.xml", NULL, XML_PARSE_NONET)
                              : NULL;
    if (c->resp.body.len)
        assert_non_null(c->doc);
    /* every reply names its request */
    assert_string_equal(rd_headers_get(&c->resp.headers, "x-amz-request-id"), "REQ-1");
}

static void do_call(fixture *f, call *c, const char *method, const char *path, const char *query, const char *body,
                    ...)
{
    va_list ap;
    va_start(ap, body);
    do_call_v(f, c, "localhost:9000", method, path, query, body, body ? strlen(body) : 0, ap);
    va_end(ap);
}

static void do_call_host(fixture *f, call *c, const char *host, const char *method, const char *path, ...)
{
    va_list ap;
    va_start(ap, path);
    do_call_v(f, c, host, method, path, "", NULL, 0, ap);
    va_end(ap);
}

static void do_call_bin(fixture *f, call *c, const char *method, const char *path, const char *query,
                        const char *body, size_t len, ...)
{
    va_list ap;
    va_start(ap, len);
    do_call_v(f, c, "localhost:9000", method, path, query, body, len, ap);
    va_end(ap);
}

static void call_free(call *c)
{
    xmlFreeDoc(c->doc);
    c->doc = NULL;
    rd_emu_response_free(&c->resp);
}

static void collect(xmlNodePtr n, const char *name, char ***out, size_t *count)
{
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0) {
            xmlChar *t = xmlNodeGetContent(n);
            *out = realloc(*out, (*count + 1) * sizeof **out);
            (*out)[(*count)++] = strdup((const char *)t);
            xmlFree(t);
        }
        collect(n->children, name, out, count);
    }
}

/* Text of the first element named `name` anywhere in the reply (malloc'd), NULL when absent. */
static char *xml_text(const call *c, const char *name)
{
    if (!c->doc)
        return NULL;
    char **all = NULL;
    size_t n = 0;
    collect(xmlDocGetRootElement(c->doc), name, &all, &n);
    char *r = n ? all[0] : NULL;
    for (size_t i = 1; i < n; i++)
        free(all[i]);
    free(all);
    return r;
}

static void assert_xml_text(const call *c, const char *name, const char *want)
{
    char *t = xml_text(c, name);
    if (!t)
        fail_msg("no <%s> in reply: %s", name, rd_buf_cstr(&c->resp.body));
    assert_string_equal(t, want);
    free(t);
}

/* The elements named `name` directly below elements named `parent` (e.g. Contents/Key). */
static size_t xml_list(const call *c, const char *parent, const char *name, char ***out)
{
    *out = NULL;
    size_t n = 0;
    for (xmlNodePtr p = xmlDocGetRootElement(c->doc)->children; p; p = p->next)
        if (p->type == XML_ELEMENT_NODE && strcmp((const char *)p->name, parent) == 0)
            for (xmlNodePtr k = p->children; k; k = k->next)
                if (k->type == XML_ELEMENT_NODE && strcmp((const char *)k->name, name) == 0) {
                    xmlChar *t = xmlNodeGetContent(k);
                    *out = realloc(*out, (n + 1) * sizeof **out);
                    (*out)[n++] = strdup((const char *)t);
                    xmlFree(t);
                }
    return n;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static void assert_error(const call *c, int status, const char *code)
{
    if (c->resp.status != status)
        fail_msg("status %d, wanted %d: %s", c->resp.status, status, rd_buf_cstr(&c->resp.body));
    xmlNodePtr root = xmlDocGetRootElement(c->doc);
    assert_string_equal((const char *)root->name, "Error");
    assert_xml_text(c, "Code", code);
    assert_xml_text(c, "RequestId", "REQ-1");
    char *msg = xml_text(c, "Message");
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    free(msg);
    assert_int_equal(c->resp.fd, -1);
}

static void assert_ok_root(const call *c, int status, const char *root)
{
    if (c->resp.status != status)
        fail_msg("status %d, wanted %d: %s", c->resp.status, status, rd_buf_cstr(&c->resp.body));
    if (root) {
        xmlNodePtr r = xmlDocGetRootElement(c->doc);
        assert_string_equal((const char *)r->name, root);
        assert_non_null(r->ns);
        assert_string_equal((const char *)r->ns->href, S3_NS);
    }
}

/* The bytes the reply serves: the fd range or the in-memory body (malloc'd). */
static char *served(const call *c, size_t *len)
{
    if (c->resp.fd < 0) {
        *len = c->resp.body.len;
        char *b = malloc(*len + 1);
        memcpy(b, rd_buf_cstr(&c->resp.body), *len);
        return b;
    }
    assert_int_equal(c->resp.body.len, 0);
    char *b = malloc(c->resp.fd_length + 1);
    ssize_t n = pread(c->resp.fd, b, c->resp.fd_length, (off_t)c->resp.fd_offset);
    assert_int_equal(n, (ssize_t)c->resp.fd_length);
    *len = (size_t)n;
    return b;
}

static void md5_b64(const void *d, size_t n, char out[32])
{
    unsigned char md[16];
    unsigned int l;
    EVP_Digest(d, n, md, &l, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, 16);
}

static void put_simple(fixture *f, const char *path, const char *body)
{
    call c;
    do_call(f, &c, "PUT", path, "", body, NULL);
    assert_ok_root(&c, 200, NULL);
    call_free(&c);
}

/* ---- tests ---- */

static void test_buckets(void **state)
{
    fixture *f = *state;
    call c;
    do_call(f, &c, "GET", "/", "", NULL, NULL);
    assert_ok_root(&c, 200, "ListAllMyBucketsResult");
    char **names;
    assert_int_equal(xml_list(&c, "Buckets", "Bucket", &names), 0);
    call_free(&c);

    do_call(f, &c, "PUT", "/bkt-one", "", NULL, NULL);
    assert_ok_root(&c, 200, NULL);
    assert_string_equal(rd_headers_get(&c.resp.headers, "Location"), "/bkt-one");
    call_free(&c);
    do_call(f, &c, "PUT", "/bkt-eu", "",
            "<CreateBucketConfiguration xmlns=\"" S3_NS "\"><LocationConstraint>eu-west-1</LocationConstraint>"
            "</CreateBucketConfiguration>",
            NULL);
    assert_ok_root(&c, 200, NULL);
    call_free(&c);
    do_call(f, &c, "PUT", "/bkt-one", "", NULL, NULL);
    assert_error(&c, 409, "BucketAlreadyOwnedByYou");
    assert_xml_text(&c, "Resource", "/bkt-one");
    call_free(&c);
    do_call(f, &c, "PUT", "/Bad_Name", "", NULL, NULL);
    assert_error(&c, 400, "InvalidBucketName");
    call_free(&c);
    do_call(f, &c, "PUT", "/bkt-x", "", "<CreateBucketConfiguration><Loc", NULL);
    assert_error(&c, 400, "MalformedXML");
    call_free(&c);

    do_call(f, &c, "GET", "/", "", NULL, NULL);
    assert_ok_root(&c, 200, "ListAllMyBucketsResult");
    size_t n = xml_list(&c, "Buckets", "Bucket", &names);
    assert_int_equal(n, 2);
    free_list(names, n);
    char **bn = NULL;
    size_t nb = 0;
    collect(xmlDocGetRootElement(c.doc), "Name", &bn, &nb);
    assert_int_equal(nb, 2);
    assert_string_equal(bn[0], "bkt-eu");
    assert_string_equal(bn[1], "bkt-one");
    free_list(bn, nb);
    char *date = xml_text(&c, "CreationDate");
    assert_int_equal(strlen(date), 24); /* 2024-01-02T03:04:05.000Z */
    assert_int_equal(date[10], 'T');
    free(date);
    call_free(&c);

    /* HeadBucket: region header, no body; 404 without a body */
    do_call(f, &c, "HEAD", "/bkt-eu", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(rd_headers_get(&c.resp.headers, "x-amz-bucket-region"), "eu-west-1");
    call_free(&c);
    do_call(f, &c, "HEAD", "/bkt-one/", "", NULL, NULL);
    assert_string_equal(rd_headers_get(&c.resp.headers, "x-amz-bucket-region"), "us-east-1");
    call_free(&c);
    do_call(f, &c, "HEAD", "/nope-bucket", "", NULL, NULL);
    assert_int_equal(c.resp.status, 404);
    assert_int_equal(c.resp.body.len, 0);
    call_free(&c);

    /* GetBucketLocation: empty for us-east-1 */
    do_call(f, &c, "GET", "/bkt-eu", "location", NULL, NULL);
    assert_ok_root(&c, 200, "LocationConstraint");
    assert_xml_text(&c, "LocationConstraint", "eu-west-1");
    call_free(&c);
    do_call(f, &c, "GET", "/bkt-one", "location=", NULL, NULL);
    assert_ok_root(&c, 200, "LocationConstraint");
    assert_xml_text(&c, "LocationConstraint", "");
    call_free(&c);
    do_call(f, &c, "GET", "/nope-bucket", "location", NULL, NULL);
    assert_error(&c, 404, "NoSuchBucket");
    call_free(&c);

    /* DeleteBucket */
    put_simple(f, "/bkt-one/k", "v");
    do_call(f, &c, "DELETE", "/bkt-one", "", NULL, NULL);
    assert_error(&c, 409, "BucketNotEmpty");
    call_free(&c);
    do_call(f, &c, "DELETE", "/bkt-one/k", "", NULL, NULL);
    assert_int_equal(c.resp.status, 204);
    call_free(&c);
    do_call(f, &c, "DELETE", "/bkt-one", "", NULL, NULL);
    assert_int_equal(c.resp.status, 204);
    call_free(&c);
    do_call(f, &c, "DELETE", "/bkt-one", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchBucket");
    call_free(&c);

    /* unsupported things say so */
    do_call(f, &c, "GET", "/bkt-eu", "acl", NULL, NULL);
    assert_error(&c, 501, "NotImplemented");
    call_free(&c);
    do_call(f, &c, "POST", "/", "", NULL, NULL);
    assert_error(&c, 405, "MethodNotAllowed");
    call_free(&c);
}

static void test_put_get_head_delete(void **state)
{
    fixture *f = *state;
    put_simple(f, "/data", NULL);
    const char body[] = "0123456789abcdefghij";
    call c;
    do_call(f, &c, "PUT", "/data/dir/%C3%BCtf8%20name%2Bplus.bin", "", body, "Content-Type", "text/x-test", NULL);
    assert_int_equal(c.resp.status, 200);
    char etag[40];
    snprintf(etag, sizeof etag, "%s", rd_headers_get(&c.resp.headers, "ETag"));
    call_free(&c);
    {
        unsigned char md[16];
        unsigned int l;
        EVP_Digest(body, strlen(body), md, &l, EVP_md5(), NULL);
        char want[40] = "\"";
        for (int i = 0; i < 16; i++)
            sprintf(want + 1 + 2 * i, "%02x", md[i]);
        strcat(want, "\"");
        assert_string_equal(etag, want);
    }
    /* the key is the decoded path: reachable under its other spelling too */
    do_call(f, &c, "GET", "/data/dir/\xc3\xbctf8%20name+plus.bin", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    assert_true(c.resp.fd >= 0);
    size_t len;
    char *got = served(&c, &len);
    assert_int_equal(len, strlen(body));
    assert_memory_equal(got, body, len);
    free(got);
    assert_string_equal(rd_headers_get(&c.resp.headers, "ETag"), etag);
    assert_string_equal(rd_headers_get(&c.resp.headers, "Content-Length"), "20");
    assert_string_equal(rd_headers_get(&c.resp.headers, "Content-Type"), "text/x-test");
    assert_string_equal(rd_headers_get(&c.resp.headers, "Accept-Ranges"), "bytes");
    const char *lm = rd_headers_get(&c.resp.headers, "Last-Modified");
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_non_null(strptime(lm, "%a, %d %b %Y %H:%M:%S GMT", &tm));
    assert_true(labs((long)(timegm(&tm) - time(NULL))) < 60);
    call_free(&c);

    /* HEAD: same headers, nothing served */
    do_call(f, &c, "HEAD", "/data/dir/%C3%BCtf8%20name%2Bplus.bin", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    assert_int_equal(c.resp.fd, -1);
    assert_int_equal(c.resp.body.len, 0);
    assert_string_equal(rd_headers_get(&c.resp.headers, "Content-Length"), "20");
    assert_string_equal(rd_headers_get(&c.resp.headers, "ETag"), etag);
    call_free(&c);
    do_call(f, &c, "HEAD", "/data/missing", "", NULL, NULL);
    assert_int_equal(c.resp.status, 404);
    assert_int_equal(c.resp.body.len, 0);
    call_free(&c);

    /* errors */
    do_call(f, &c, "GET", "/data/missing", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    assert_xml_text(&c, "Resource", "/data/missing");
    call_free(&c);
    do_call(f, &c, "GET", "/no-bucket/x", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchBucket");
    call_free(&c);
    do_call(f, &c, "PUT", "/no-bucket/x", "", "x", NULL);
    assert_error(&c, 404, "NoSuchBucket");
    call_free(&c);
    do_call(f, &c, "PUT", "/data/a%00b", "", "x", NULL);
    assert_error(&c, 400, "InvalidArgument");
    call_free(&c);
    char *long_path = malloc(1100);
    strcpy(long_path, "/data/");
    memset(long_path + 6, 'k', 1025);
    long_path[6 + 1025] = 0;
    do_call(f, &c, "PUT", long_path, "", "x", NULL);
    assert_error(&c, 400, "KeyTooLongError");
    call_free(&c);
    free(long_path);
    do_call(f, &c, "PUT", "/data/copy", "", NULL, "x-amz-copy-source", "/data/x", NULL); /* a copy of nothing */
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);

    /* empty object */
    put_simple(f, "/data/empty", NULL);
    do_call(f, &c, "GET", "/data/empty", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(rd_headers_get(&c.resp.headers, "Content-Length"), "0");
    assert_string_equal(rd_headers_get(&c.resp.headers, "ETag"), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    got = served(&c, &len);
    assert_int_equal(len, 0);
    free(got);
    call_free(&c);

    /* delete, then gone; deleting again is fine */
    for (int i = 0; i < 2; i++) {
        do_call(f, &c, "DELETE", "/data/dir/%C3%BCtf8%20name%2Bplus.bin", "", NULL, NULL);
        assert_int_equal(c.resp.status, 204);
        call_free(&c);
    }
    do_call(f, &c, "GET", "/data/dir/%C3%BCtf8%20name%2Bplus.bin", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);
}

static void check_range(fixture *f, const char *range, int status, uint64_t first, uint64_t last,
                        const char *content_range)
{
    call c;
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "Range", range, NULL);
    if (status == 416) {
        assert_error(&c, 416, "InvalidRange");
        assert_string_equal(rd_headers_get(&c.resp.headers, "Content-Range"), "bytes */100");
        call_free(&c);
        return;
    }
    assert_int_equal(c.resp.status, status);
    assert_int_equal(c.resp.fd_offset, first);
    assert_int_equal(c.resp.fd_length, last - first + 1);
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)(last - first + 1));
    assert_string_equal(rd_headers_get(&c.resp.headers, "Content-Length"), num);
    size_t len;
    char *got = served(&c, &len);
    for (size_t i = 0; i < len; i++)
        assert_int_equal((unsigned char)got[i], (unsigned char)(first + i));
    free(got);
    if (content_range)
        assert_string_equal(rd_headers_get(&c.resp.headers, "Content-Range"), content_range);
    else
        assert_null(rd_headers_get(&c.resp.headers, "Content-Range"));
    call_free(&c);
}

static void test_ranges_and_conditionals(void **state)
{
    fixture *f = *state;
    put_simple(f, "/rng", NULL);
    char body[100];
    for (int i = 0; i < 100; i++)
        body[i] = (char)i;
    call c;
    do_call_bin(f, &c, "PUT", "/rng/obj", "", body, sizeof body, NULL);
    assert_int_equal(c.resp.status, 200);
    char etag[40];
    snprintf(etag, sizeof etag, "%s", rd_headers_get(&c.resp.headers, "ETag"));
    call_free(&c);

    check_range(f, "bytes=2-5", 206, 2, 5, "bytes 2-5/100");
    check_range(f, "bytes=0-0", 206, 0, 0, "bytes 0-0/100");
    check_range(f, "bytes=90-", 206, 90, 99, "bytes 90-99/100");
    check_range(f, "bytes=95-200", 206, 95, 99, "bytes 95-99/100");
    check_range(f, "bytes=-10", 206, 90, 99, "bytes 90-99/100");
    check_range(f, "bytes=-500", 206, 0, 99, "bytes 0-99/100");
    check_range(f, "bytes=100-", 416, 0, 0, NULL);
    check_range(f, "bytes=100-200", 416, 0, 0, NULL);
    check_range(f, "bytes=-0", 416, 0, 0, NULL);
    /* not a usable range: the whole object */
    check_range(f, "bytes=abc", 200, 0, 99, NULL);
    check_range(f, "bytes=5-2", 200, 0, 99, NULL);
    check_range(f, "items=0-1", 200, 0, 99, NULL);
    check_range(f, "bytes=0-1,5-6", 200, 0, 99, NULL);

    /* conditionals */
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "If-Match", etag, NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "If-Match", "\"0000\", *", NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "If-Match", "\"00000000000000000000000000000000\"", NULL);
    assert_error(&c, 412, "PreconditionFailed");
    call_free(&c);
    /* with a Range, as the downloader asks for the later ranges of a file: the range when the ETag holds,
     * 412 (not the bytes) when the object changed */
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "Range", "bytes=2-5", "If-Match", etag, NULL);
    assert_int_equal(c.resp.status, 206);
    assert_string_equal(rd_headers_get(&c.resp.headers, "Content-Range"), "bytes 2-5/100");
    assert_string_equal(rd_headers_get(&c.resp.headers, "ETag"), etag);
    call_free(&c);
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "Range", "bytes=2-5", "If-Match",
            "\"00000000000000000000000000000000\"", NULL);
    assert_error(&c, 412, "PreconditionFailed");
    assert_null(rd_headers_get(&c.resp.headers, "Content-Range"));
    call_free(&c);
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "If-None-Match", etag, NULL);
    assert_int_equal(c.resp.status, 304);
    assert_int_equal(c.resp.fd, -1);
    assert_int_equal(c.resp.body.len, 0);
    assert_string_equal(rd_headers_get(&c.resp.headers, "ETag"), etag);
    call_free(&c);
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "If-None-Match", "\"other\"", NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT", NULL);
    assert_int_equal(c.resp.status, 304);
    call_free(&c);
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "If-Modified-Since", "Thu, 01 Jan 2015 00:00:00 GMT", NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "If-Unmodified-Since", "Thu, 01 Jan 2015 00:00:00 GMT", NULL);
    assert_error(&c, 412, "PreconditionFailed");
    call_free(&c);
    /* If-Match that holds wins over a failing If-Unmodified-Since, as S3 */
    do_call(f, &c, "GET", "/rng/obj", "", NULL, "If-Match", etag, "If-Unmodified-Since",
            "Thu, 01 Jan 2015 00:00:00 GMT", NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    /* HEAD with a failing precondition: no body */
    do_call(f, &c, "HEAD", "/rng/obj", "", NULL, "If-Match", "\"nope\"", NULL);
    assert_int_equal(c.resp.status, 412);
    assert_int_equal(c.resp.body.len, 0);
    call_free(&c);
}

static void test_digests_and_checksums(void **state)
{
    fixture *f = *state;
    put_simple(f, "/dig", NULL);
    call c;
    char md5[32];
    md5_b64("hello world", 11, md5);
    do_call(f, &c, "PUT", "/dig/k", "", "hello world", "Content-MD5", md5, NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    do_call(f, &c, "PUT", "/dig/k", "", "hello WORLD", "Content-MD5", md5, NULL);
    assert_error(&c, 400, "BadDigest");
    call_free(&c);
    do_call(f, &c, "PUT", "/dig/k", "", "hello WORLD", "Content-MD5", "not-base64!", NULL);
    assert_error(&c, 400, "InvalidDigest");
    call_free(&c);
    do_call(f, &c, "PUT", "/dig/k", "", "hello WORLD", "Content-MD5", "aGVsbG8=", NULL); /* 5 bytes */
    assert_error(&c, 400, "InvalidDigest");
    call_free(&c);
    /* flexible checksums: crc32, crc32c, sha256; echoed back */
    do_call(f, &c, "PUT", "/dig/c1", "", "hello world", "x-amz-checksum-crc32", "DUoRhQ==", NULL);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(rd_headers_get(&c.resp.headers, "x-amz-checksum-crc32"), "DUoRhQ==");
    call_free(&c);
    do_call(f, &c, "PUT", "/dig/c2", "", "hello world", "x-amz-checksum-crc32c", "yZRlqg==", NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    do_call(f, &c, "PUT", "/dig/c3", "", "hello world", "x-amz-checksum-sha256",
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    do_call(f, &c, "PUT", "/dig/c4", "", "hello worle", "x-amz-checksum-crc32", "DUoRhQ==", NULL);
    assert_error(&c, 400, "BadDigest");
    call_free(&c);
    /* the failed writes stored nothing and left the old value */
    do_call(f, &c, "GET", "/dig/c4", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);
    do_call(f, &c, "GET", "/dig/k", "", NULL, NULL);
    size_t len;
    char *got = served(&c, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(got, "hello world", 11);
    free(got);
    call_free(&c);
}

static void test_aws_chunked(void **state)
{
    fixture *f = *state;
    put_simple(f, "/chk", NULL);
    call c;
    /* signed chunks need the request's signature (a header-signed request), else refused; nothing is stored */
    const char signed_body[] = "5;chunk-signature=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
                               "hello\r\n"
                               "0;chunk-signature=cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\r\n"
                               "\r\n";
    do_call(f, &c, "PUT", "/chk/signed", "", signed_body, "x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "Content-Encoding", "aws-chunked", "x-amz-decoded-content-length", "5", NULL);
    assert_error(&c, 400, "InvalidRequest");
    call_free(&c);
    do_call(f, &c, "GET", "/chk/signed", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);
    /* signed trailers are not implemented */
    do_call(f, &c, "PUT", "/chk/signed", "", signed_body, "x-amz-content-sha256",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "x-amz-decoded-content-length", "5", NULL);
    assert_error(&c, 501, "NotImplemented");
    call_free(&c);

    /* unsigned, two chunks with extensions */
    const char two_chunks[] = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    do_call(f, &c, "PUT", "/chk/two", "", two_chunks, "x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "Content-Encoding", "aws-chunked", "x-amz-decoded-content-length", "11", NULL);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(rd_headers_get(&c.resp.headers, "ETag"), "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    call_free(&c);
    do_call(f, &c, "GET", "/chk/two", "", NULL, NULL);
    size_t len;
    char *got = served(&c, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(got, "hello world", 11);
    free(got);
    call_free(&c);

    /* unsigned with a checksum trailer (newer SDKs) */
    const char trailer_body[] = "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
    do_call(f, &c, "PUT", "/chk/trailer", "", trailer_body, "x-amz-content-sha256",
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-trailer", "x-amz-checksum-crc32",
            "x-amz-decoded-content-length", "11", NULL);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(rd_headers_get(&c.resp.headers, "x-amz-checksum-crc32"), "DUoRhQ==");
    call_free(&c);
    /* ... also when the body ends without the last CRLFs */
    do_call(f, &c, "PUT", "/chk/trailer2", "", "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==",
            "x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-trailer", "x-amz-checksum-crc32",
            NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    const char bad_trailer[] = "b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
    do_call(f, &c, "PUT", "/chk/badtrailer", "", bad_trailer, "x-amz-content-sha256",
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-trailer", "x-amz-checksum-crc32", NULL);
    assert_error(&c, 400, "BadDigest");
    call_free(&c);
    /* malformed encodings and a length that disagrees */
    const char *bad[] = { "zz\r\nhello\r\n0\r\n\r\n", "5\r\nhel", "5\r\nhelloXX0\r\n\r\n", "5\r\nhello\r\n" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        do_call(f, &c, "PUT", "/chk/bad", "", bad[i], "x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                NULL);
        assert_error(&c, 400, "IncompleteBody");
        call_free(&c);
    }
    do_call(f, &c, "PUT", "/chk/bad", "", "5\r\nhello\r\n0\r\n\r\n", "x-amz-content-sha256",
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length", "6", NULL);
    assert_error(&c, 400, "IncompleteBody");
    call_free(&c);
    do_call(f, &c, "GET", "/chk/bad", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* A body that is not the one whose hash was signed is refused, and nothing is stored. */
static void test_payload_hash(void **state)
{
    fixture *f = *state;
    put_simple(f, "/sha", NULL);
    call c;
    char h[65];
    sha256_hex("signed body", h);
    do_call(f, &c, "PUT", "/sha/k", "", "signed body", "x-amz-content-sha256", h, NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    do_call(f, &c, "PUT", "/sha/k", "", "tampered!!!", "x-amz-content-sha256", h, NULL);
    assert_error(&c, 400, "XAmzContentSHA256Mismatch");
    char *msg = xml_text(&c, "Message");
    assert_string_equal(msg, "The provided 'x-amz-content-sha256' header does not match what was computed.");
    free(msg);
    call_free(&c);
    do_call(f, &c, "PUT", "/sha/new", "", "tampered!!!", "x-amz-content-sha256", h, NULL);
    assert_error(&c, 400, "XAmzContentSHA256Mismatch");
    call_free(&c);
    do_call(f, &c, "PUT", "/sha/new", "", "x", "x-amz-content-sha256", "not-a-digest", NULL);
    assert_error(&c, 400, "InvalidArgument");
    call_free(&c);
    /* the old value stays; the new key was never created */
    do_call(f, &c, "GET", "/sha/k", "", NULL, NULL);
    size_t len;
    char *got = served(&c, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(got, "signed body", 11);
    free(got);
    call_free(&c);
    do_call(f, &c, "GET", "/sha/new", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);
    /* UNSIGNED-PAYLOAD and an upper-case digest are accepted */
    do_call(f, &c, "PUT", "/sha/u", "", "anything", "x-amz-content-sha256", "UNSIGNED-PAYLOAD", NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    for (char *p = h; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    do_call(f, &c, "PUT", "/sha/upper", "", "signed body", "x-amz-content-sha256", h, NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    /* bodies of other operations too (DeleteObjects) */
    const char del[] = "<Delete><Object><Key>k</Key></Object></Delete>";
    char md5[32];
    md5_b64(del, strlen(del), md5);
    sha256_hex("<Delete></Delete>", h);
    do_call(f, &c, "POST", "/sha", "delete", del, "Content-MD5", md5, "x-amz-content-sha256", h, NULL);
    assert_error(&c, 400, "XAmzContentSHA256Mismatch");
    call_free(&c);
    do_call(f, &c, "HEAD", "/sha/k", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
}

/* The server's path: the body arrives in pieces (here one byte at a time, across every chunk boundary). */
static void stream_put(fixture *f, call *c, const char *path, const char *body, const char *sha, const char *trailer)
{
    rd_headers h;
    rd_headers_init(&h);
    rd_headers_add(&h, "x-amz-content-sha256", sha);
    if (trailer)
        rd_headers_add(&h, "x-amz-trailer", trailer);
    rd_emu_request req;
    memset(&req, 0, sizeof req);
    req.method = "PUT";
    req.path = path;
    req.query = "";
    req.headers = &h;
    req.body = "";
    req.account_id = "000000000000";
    req.principal_arn = g_principal;
    req.region = "us-east-1";
    req.request_id = "REQ-1";
    req.host = "localhost:9000";
    rd_emu_response_init(&c->resp);
    rd_emu_s3_upload *u = NULL;
    assert_int_equal(rd_emu_s3_upload_begin(f->emu, f->st, &req, &c->resp, &u), RD_EMU_S3_STREAM);
    for (size_t i = 0; body[i]; i++)
        rd_emu_s3_upload_write(u, body + i, 1);
    rd_emu_s3_upload_finish(u, &c->resp);
    rd_headers_free(&h);
    c->doc = c->resp.body.len ? xmlReadMemory(c->resp.body.data, (int)c->resp.body.len, "r.xml", NULL, XML_PARSE_NONET)
                              : NULL;
    assert_string_equal(rd_headers_get(&c->resp.headers, "x-amz-request-id"), "REQ-1");
}

static void test_streamed_upload(void **state)
{
    fixture *f = *state;
    put_simple(f, "/stream", NULL);
    call c;
    char h[65];
    sha256_hex("hello world", h);
    stream_put(f, &c, "/stream/plain", "hello world", h, NULL);
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(rd_headers_get(&c.resp.headers, "ETag"), "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
    call_free(&c);
    stream_put(f, &c, "/stream/tampered", "hello WORLD", h, NULL);
    assert_error(&c, 400, "XAmzContentSHA256Mismatch");
    call_free(&c);
    stream_put(f, &c, "/stream/chunked", "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
               "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-checksum-crc32");
    assert_int_equal(c.resp.status, 200);
    assert_string_equal(rd_headers_get(&c.resp.headers, "x-amz-checksum-crc32"), "DUoRhQ==");
    call_free(&c);
    stream_put(f, &c, "/stream/cut", "5\r\nhel", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", NULL);
    assert_error(&c, 400, "IncompleteBody");
    call_free(&c);
    do_call(f, &c, "GET", "/stream/chunked", "", NULL, NULL);
    size_t len;
    char *got = served(&c, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(got, "hello world", 11);
    free(got);
    call_free(&c);
    const char *gone[] = { "/stream/tampered", "/stream/cut" };
    for (size_t i = 0; i < 2; i++) {
        do_call(f, &c, "GET", gone[i], "", NULL, NULL);
        assert_error(&c, 404, "NoSuchKey");
        call_free(&c);
    }
    /* not PutObject: buffered; an error before the body: answered at once */
    rd_emu_request req;
    memset(&req, 0, sizeof req);
    rd_headers none;
    rd_headers_init(&none);
    req.method = "PUT";
    req.path = "/newbucket";
    req.query = "";
    req.headers = &none;
    req.request_id = "REQ-1";
    req.principal_arn = g_principal;
    rd_emu_response_init(&c.resp);
    rd_emu_s3_upload *u = NULL;
    assert_int_equal(rd_emu_s3_upload_begin(f->emu, f->st, &req, &c.resp, &u), RD_EMU_S3_BUFFER);
    req.path = "/nosuchbucket/k";
    assert_int_equal(rd_emu_s3_upload_begin(f->emu, f->st, &req, &c.resp, &u), RD_EMU_S3_REPLIED);
    assert_null(u);
    assert_int_equal(c.resp.status, 404);
    rd_emu_response_free(&c.resp);
    rd_headers_free(&none);
}

/* AWS's chunked upload example (sigv4-streaming): secret, time, scope and seed signature. */
#define EX_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EX_SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"

/* The documented body: 64 KiB and 1 KiB of 'a' and the final chunk, with the documented signatures. */
static void example_body(rd_buf *b)
{
    static const char *const sigs[] = { "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                                        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                                        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9" };
    static const size_t sizes[] = { 65536, 1024, 0 };
    rd_buf_init(b);
    for (int i = 0; i < 3; i++) {
        rd_buf_printf(b, "%zx;chunk-signature=%s\r\n", sizes[i], sigs[i]);
        for (size_t k = 0; k < sizes[i]; k++)
            rd_buf_putc(b, 'a');
        rd_buf_puts(b, "\r\n");
    }
    assert_int_equal(b->len, 66824); /* the example's Content-Length */
}

/* A body signed with the example's key from `seed`: chunks of the given sizes (of 'x'), then the final one. */
static void signed_body(rd_buf *b, const size_t *sizes, size_t n, const char *seed)
{
    rd_sigv4_params p = { "s3", "us-east-1", 1369353600, "AKIAIOSFODNN7EXAMPLE", EX_SECRET, NULL, 1, 0, 0, 0 };
    char prev[65], sig[65], hash[65];
    snprintf(prev, sizeof prev, "%s", seed);
    rd_buf_init(b);
    rd_error err;
    for (size_t i = 0; i <= n; i++) {
        size_t sz = i < n ? sizes[i] : 0;
        char *data = malloc(sz + 1);
        memset(data, 'x', sz);
        rd_sha256_hex(data, sz, hash);
        assert_int_equal(rd_sigv4_chunk_signature(&p, prev, hash, sig, &err), RD_OK);
        rd_buf_printf(b, "%zx;chunk-signature=%s\r\n", sz, sig);
        rd_buf_append(b, data, sz);
        rd_buf_puts(b, "\r\n");
        memcpy(prev, sig, 65);
        free(data);
    }
}

/* PutObject of a signed aws-chunked body as the server streams it: pieces of `piece` bytes, or (0) of sizes
 * cycling through odd lengths that cut headers, signatures, data and CRLFs anywhere. */
static void signed_put(fixture *f, call *c, const char *path, const char *body, size_t len, size_t piece,
                       const char *decoded_len, const char *seed)
{
    rd_headers h;
    rd_headers_init(&h);
    rd_headers_add(&h, "x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    rd_headers_add(&h, "Content-Encoding", "aws-chunked");
    rd_headers_add(&h, "X-Amz-Date", "20130524T000000Z");
    if (decoded_len)
        rd_headers_add(&h, "x-amz-decoded-content-length", decoded_len);
    rd_emu_request req;
    memset(&req, 0, sizeof req);
    req.method = "PUT";
    req.path = path;
    req.query = "";
    req.headers = &h;
    req.body = "";
    req.account_id = "000000000000";
    req.principal_arn = g_principal;
    req.access_key_id = "AKIAIOSFODNN7EXAMPLE";
    req.region = "us-east-1";
    req.request_id = "REQ-1";
    req.host = "localhost:9000";
    req.signature = seed;
    req.secret_access_key = EX_SECRET;
    rd_emu_response_init(&c->resp);
    rd_emu_s3_upload *u = NULL;
    rd_emu_s3_route route = rd_emu_s3_upload_begin(f->emu, f->st, &req, &c->resp, &u);
    if (route == RD_EMU_S3_STREAM) {
        static const size_t odd[] = { 1, 7, 90, 3, 4099, 2, 65, 13, 20000, 1, 1, 31 };
        for (size_t i = 0, k = 0; i < len; k++) {
            size_t n = piece ? piece : odd[k % (sizeof odd / sizeof *odd)];
            if (n > len - i)
                n = len - i;
            rd_emu_s3_upload_write(u, body + i, n);
            i += n;
        }
        rd_emu_s3_upload_finish(u, &c->resp);
    }
    rd_headers_free(&h);
    c->doc = c->resp.body.len ? xmlReadMemory(c->resp.body.data, (int)c->resp.body.len, "r.xml", NULL, XML_PARSE_NONET)
                              : NULL;
    assert_string_equal(rd_headers_get(&c->resp.headers, "x-amz-request-id"), "REQ-1");
}

static void assert_gone(fixture *f, const char *path)
{
    call c;
    do_call(f, &c, "GET", path, "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);
}

/* Signed aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): every chunk's signature is verified as the body
 * streams; any bad chunk, bad framing or short body is refused and nothing is stored. */
static void test_signed_aws_chunked(void **state)
{
    fixture *f = *state;
    put_simple(f, "/sig", NULL);
    call c;
    rd_buf ex;
    example_body(&ex);
    char want_md5[40];
    {
        unsigned char md[16];
        unsigned int n = 0;
        char *a = malloc(66560);
        memset(a, 'a', 66560);
        EVP_Digest(a, 66560, md, &n, EVP_md5(), NULL);
        free(a);
        want_md5[0] = '"';
        for (int i = 0; i < 16; i++)
            sprintf(want_md5 + 1 + 2 * i, "%02x", md[i]);
        strcpy(want_md5 + 33, "\"");
    }
    /* the documented body, one byte at a time and in odd pieces */
    const size_t pieces[] = { 1, 0, 66824 };
    for (size_t i = 0; i < 3; i++) {
        signed_put(f, &c, "/sig/chunkObject.txt", ex.data, ex.len, pieces[i], "66560", EX_SEED);
        assert_int_equal(c.resp.status, 200);
        assert_string_equal(rd_headers_get(&c.resp.headers, "ETag"), want_md5);
        call_free(&c);
    }
    do_call(f, &c, "GET", "/sig/chunkObject.txt", "", NULL, NULL);
    size_t len;
    char *got = served(&c, &len);
    assert_int_equal(len, 66560);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(got[i], 'a');
    free(got);
    call_free(&c);

    /* an object that is there stays when a new body is refused */
    put_simple(f, "/sig/keep", "old");
    const char *keys[] = { "/sig/keep", "/sig/new" };
    for (size_t k = 0; k < 2; k++) {
        /* one data byte flipped (first chunk, then second) */
        size_t at[] = { 200, 65536 + 100 + 90 };
        for (size_t i = 0; i < 2; i++) {
            ex.data[at[i]] ^= 1;
            signed_put(f, &c, keys[k], ex.data, ex.len, 0, "66560", EX_SEED);
            assert_error(&c, 403, "SignatureDoesNotMatch");
            call_free(&c);
            ex.data[at[i]] ^= 1;
        }
        /* a wrong final signature */
        ex.data[ex.len - 10] = ex.data[ex.len - 10] == '0' ? '1' : '0';
        signed_put(f, &c, keys[k], ex.data, ex.len, 0, "66560", EX_SEED);
        assert_error(&c, 403, "SignatureDoesNotMatch");
        call_free(&c);
        memcpy(ex.data + ex.len - 68, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9", 64);
        /* another seed (the chain starts from the request's signature) */
        signed_put(f, &c, keys[k], ex.data, ex.len, 0, "66560",
                   "0000000000000000000000000000000000000000000000000000000000000000");
        assert_error(&c, 403, "SignatureDoesNotMatch");
        call_free(&c);
        /* truncated: before the final chunk, inside it, without its last CRLF */
        size_t cuts[] = { 65536 + 90, ex.len - 40, ex.len - 2, ex.len - 1 };
        for (size_t i = 0; i < 4; i++) {
            signed_put(f, &c, keys[k], ex.data, cuts[i], 0, "66560", EX_SEED);
            assert_error(&c, 400, "IncompleteBody");
            call_free(&c);
        }
        /* a decoded length that disagrees (more or less data than declared), or none */
        signed_put(f, &c, keys[k], ex.data, ex.len, 0, "66561", EX_SEED);
        assert_error(&c, 400, "IncompleteBody");
        call_free(&c);
        signed_put(f, &c, keys[k], ex.data, ex.len, 0, "65536", EX_SEED);
        assert_error(&c, 400, "IncompleteBody");
        call_free(&c);
        signed_put(f, &c, keys[k], ex.data, ex.len, 0, NULL, EX_SEED);
        assert_error(&c, 411, "MissingContentLength");
        call_free(&c);
    }
    do_call(f, &c, "GET", "/sig/keep", "", NULL, NULL);
    got = served(&c, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "old", 3);
    free(got);
    call_free(&c);
    assert_gone(f, "/sig/new");

    /* framing: a chunk without its signature, bytes after the end, a chunk over 16 MiB, a header line over
     * the cap */
    rd_buf b;
    const size_t two[] = { 8192, 5 };
    signed_body(&b, two, 2, EX_SEED);
    signed_put(f, &c, "/sig/two", b.data, b.len, 0, "8197", EX_SEED);
    assert_int_equal(c.resp.status, 200); /* the last data chunk may be small */
    call_free(&c);
    rd_buf_puts(&b, "x");
    signed_put(f, &c, "/sig/bad", b.data, b.len, 0, "8197", EX_SEED);
    assert_error(&c, 400, "IncompleteBody");
    call_free(&c);
    rd_buf_free(&b);
    const char *bad[] = { "5\r\nhello\r\n0\r\n\r\n",
                          "1000001;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n",
                          "5;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a2886\r\nhello" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        signed_put(f, &c, "/sig/bad", bad[i], strlen(bad[i]), 0, "5", EX_SEED);
        assert_error(&c, 400, "IncompleteBody");
        call_free(&c);
    }
    char *long_line = malloc(5001);
    memset(long_line, '0', 5000);
    long_line[5000] = '\0';
    signed_put(f, &c, "/sig/bad", long_line, 5000, 0, "5", EX_SEED);
    assert_error(&c, 400, "IncompleteBody");
    call_free(&c);
    free(long_line);
    /* S3: only the last chunk may hold less than 8 KiB */
    const size_t small[] = { 5, 5 };
    signed_body(&b, small, 2, EX_SEED);
    signed_put(f, &c, "/sig/bad", b.data, b.len, 0, "10", EX_SEED);
    assert_error(&c, 403, "InvalidChunkSizeError");
    call_free(&c);
    rd_buf_free(&b);
    assert_gone(f, "/sig/bad");
    rd_buf_free(&ex);
}

static void test_virtual_hosted(void **state)
{
    fixture *f = *state;
    put_simple(f, "/vhost", NULL);
    put_simple(f, "/my.dotted.bucket", NULL);
    call c;
    const char *hosts[] = { "vhost.s3.us-east-1.amazonaws.com", "vhost.s3.amazonaws.com", "vhost.localhost:4566",
                            "VHOST.S3.EU-WEST-1.AMAZONAWS.COM" };
    for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++) {
        char path[64];
        snprintf(path, sizeof path, "/k%zu/x", i);
        do_call_host(f, &c, hosts[i], "HEAD", "/", NULL); /* HeadBucket on the host's bucket */
        assert_int_equal(c.resp.status, 200);
        call_free(&c);
        do_call_host(f, &c, hosts[i], "GET", path, NULL);
        assert_error(&c, 404, "NoSuchKey");
        char res[96];
        snprintf(res, sizeof res, "/vhost%s", path);
        assert_xml_text(&c, "Resource", res);
        call_free(&c);
    }
    do_call_host(f, &c, "my.dotted.bucket.s3.amazonaws.com", "GET", "/", NULL);
    assert_ok_root(&c, 200, "ListBucketResult");
    assert_xml_text(&c, "Name", "my.dotted.bucket");
    call_free(&c);
    /* path-style hosts */
    const char *path_hosts[] = { "s3.amazonaws.com", "s3.us-east-1.amazonaws.com", "127.0.0.1:9000", "localhost",
                                 "[::1]:9000" };
    for (size_t i = 0; i < sizeof path_hosts / sizeof *path_hosts; i++) {
        do_call_host(f, &c, path_hosts[i], "GET", "/vhost", NULL);
        assert_ok_root(&c, 200, "ListBucketResult");
        assert_xml_text(&c, "Name", "vhost");
        call_free(&c);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Pages through ListObjectsV2 and compares keys + common prefixes with a brute-force model. */
static void check_v2_listing(fixture *f, char **keys, size_t nk, const char *prefix, const char *delim, int page)
{
    char **want = calloc(nk + 1, sizeof *want);
    size_t nw = 0;
    for (size_t i = 0; i < nk; i++) {
        if (strncmp(keys[i], prefix, strlen(prefix)) != 0)
            continue;
        const char *d = delim ? strstr(keys[i] + strlen(prefix), delim) : NULL;
        char *item = d ? strndup(keys[i], (size_t)(d - keys[i]) + strlen(delim)) : strdup(keys[i]);
        if (nw && strcmp(want[nw - 1], item) == 0)
            free(item);
        else
            want[nw++] = item;
    }
    char **got = calloc(nk + 1, sizeof *got);
    size_t ng = 0;
    char *token = NULL;
    for (int pages = 0;; pages++) {
        assert_true(pages < 1000);
        rd_buf q = RD_BUF_INIT;
        rd_buf_printf(&q, "list-type=2&max-keys=%d&prefix=", page);
        for (const char *p = prefix; *p; p++)
            rd_buf_printf(&q, "%%%02X", (unsigned char)*p);
        if (delim) {
            rd_buf_puts(&q, "&delimiter=");
            for (const char *p = delim; *p; p++)
                rd_buf_printf(&q, "%%%02X", (unsigned char)*p);
        }
        if (token) {
            rd_buf_puts(&q, "&continuation-token=");
            for (const char *p = token; *p; p++)
                rd_buf_printf(&q, "%%%02X", (unsigned char)*p);
        }
        call c;
        do_call(f, &c, "GET", "/lst", rd_buf_cstr(&q), NULL, NULL);
        rd_buf_free(&q);
        assert_ok_root(&c, 200, "ListBucketResult");
        char **ks, **ps;
        size_t nks = xml_list(&c, "Contents", "Key", &ks), nps = xml_list(&c, "CommonPrefixes", "Prefix", &ps);
        char *kc = xml_text(&c, "KeyCount"), *tr = xml_text(&c, "IsTruncated");
        assert_int_equal(atoi(kc), (int)(nks + nps));
        if (token) {
            assert_xml_text(&c, "ContinuationToken", token);
            free(token);
            token = NULL;
        }
        size_t first = ng;
        for (size_t i = 0; i < nks; i++)
            got[ng++] = ks[i];
        for (size_t i = 0; i < nps; i++)
            got[ng++] = ps[i];
        free(ks);
        free(ps);
        qsort(got + first, ng - first, sizeof *got, cmp_str);
        int truncated = strcmp(tr, "true") == 0;
        free(kc);
        free(tr);
        if (truncated) {
            assert_int_equal((int)(ng - first), page);
            token = xml_text(&c, "NextContinuationToken");
            assert_non_null(token);
        } else {
            assert_null(xml_text(&c, "NextContinuationToken"));
        }
        call_free(&c);
        if (!truncated)
            break;
    }
    assert_int_equal(ng, nw);
    for (size_t i = 0; i < nw; i++) {
        assert_string_equal(got[i], want[i]);
        free(got[i]);
        free(want[i]);
    }
    free(got);
    free(want);
}

static void test_list_objects(void **state)
{
    fixture *f = *state;
    put_simple(f, "/lst", NULL);
    size_t nk = 2100;
    char **keys = calloc(nk, sizeof *keys);
    for (size_t i = 0; i < nk; i++) {
        char k[64];
        /* a/NNNN, b/x/NNN, top-level "c-NNN", multi-byte and space */
        if (i < 1205)
            snprintf(k, sizeof k, "a/%04zu", i);
        else if (i < 1700)
            snprintf(k, sizeof k, "b/%zu/%03zu", i % 7, i);
        else if (i < 2000)
            snprintf(k, sizeof k, "c-%03zu", i);
        else
            snprintf(k, sizeof k, "\xc3\xa9t\xc3\xa9 %zu/x", i);
        keys[i] = strdup(k);
        assert_int_equal(rd_s3_store_put_data(f->st, "lst", k, "x", 1, NULL, NULL, NULL), 0);
    }
    qsort(keys, nk, sizeof *keys, cmp_str);
    check_v2_listing(f, keys, nk, "", NULL, 1000);
    check_v2_listing(f, keys, nk, "a/", NULL, 333);
    check_v2_listing(f, keys, nk, "", "/", 3);
    check_v2_listing(f, keys, nk, "b/", "/", 2);
    check_v2_listing(f, keys, nk, "", "-", 250);
    check_v2_listing(f, keys, nk, "\xc3\xa9", "/", 40);

    call c;
    /* defaults: MaxKeys 1000, truncated */
    do_call(f, &c, "GET", "/lst", "list-type=2", NULL, NULL);
    assert_ok_root(&c, 200, "ListBucketResult");
    assert_xml_text(&c, "MaxKeys", "1000");
    assert_xml_text(&c, "KeyCount", "1000");
    assert_xml_text(&c, "IsTruncated", "true");
    assert_xml_text(&c, "Name", "lst");
    char *lm = xml_text(&c, "LastModified");
    assert_int_equal(strlen(lm), 24);
    free(lm);
    assert_xml_text(&c, "Size", "1");
    assert_xml_text(&c, "ETag", "\"9dd4e461268c8034f5c8564e155c67a6\"");
    assert_xml_text(&c, "StorageClass", "STANDARD");
    call_free(&c);
    do_call(f, &c, "GET", "/lst", "list-type=2&max-keys=5000&prefix=c-", NULL, NULL);
    assert_xml_text(&c, "MaxKeys", "1000");
    assert_xml_text(&c, "KeyCount", "300");
    assert_xml_text(&c, "IsTruncated", "false");
    call_free(&c);
    /* start-after */
    do_call(f, &c, "GET", "/lst", "list-type=2&start-after=c-1998", NULL, NULL);
    assert_xml_text(&c, "StartAfter", "c-1998");
    char **ks;
    size_t n = xml_list(&c, "Contents", "Key", &ks);
    assert_true(n >= 1);
    assert_string_equal(ks[0], "c-1999");
    assert_string_equal(ks[1], "\xc3\xa9t\xc3\xa9 2000/x");
    free_list(ks, n);
    call_free(&c);
    /* max-keys=0 */
    do_call(f, &c, "GET", "/lst", "list-type=2&max-keys=0", NULL, NULL);
    assert_xml_text(&c, "KeyCount", "0");
    call_free(&c);
    /* bad parameters */
    do_call(f, &c, "GET", "/lst", "list-type=2&max-keys=abc", NULL, NULL);
    assert_error(&c, 400, "InvalidArgument");
    call_free(&c);
    do_call(f, &c, "GET", "/lst", "list-type=2&max-keys=-1", NULL, NULL);
    assert_error(&c, 400, "InvalidArgument");
    call_free(&c);
    do_call(f, &c, "GET", "/lst", "list-type=2&continuation-token=%21%21notbase64", NULL, NULL);
    assert_error(&c, 400, "InvalidArgument");
    call_free(&c);
    do_call(f, &c, "GET", "/lst", "list-type=2&encoding-type=base64", NULL, NULL);
    assert_error(&c, 400, "InvalidArgument");
    call_free(&c);
    do_call(f, &c, "GET", "/nobucket", "list-type=2", NULL, NULL);
    assert_error(&c, 404, "NoSuchBucket");
    call_free(&c);

    /* ListObjects (V1) with a marker */
    do_call(f, &c, "GET", "/lst", "prefix=b%2F&delimiter=%2F&max-keys=3", NULL, NULL);
    assert_ok_root(&c, 200, "ListBucketResult");
    char **ps;
    n = xml_list(&c, "CommonPrefixes", "Prefix", &ps);
    assert_int_equal(n, 3);
    assert_string_equal(ps[0], "b/0/");
    assert_string_equal(ps[2], "b/2/");
    free_list(ps, n);
    assert_xml_text(&c, "IsTruncated", "true");
    assert_xml_text(&c, "NextMarker", "b/2/");
    call_free(&c);
    do_call(f, &c, "GET", "/lst", "prefix=b%2F&delimiter=%2F&marker=b%2F2%2F", NULL, NULL);
    n = xml_list(&c, "CommonPrefixes", "Prefix", &ps);
    assert_int_equal(n, 4);
    assert_string_equal(ps[0], "b/3/");
    free_list(ps, n);
    assert_xml_text(&c, "Marker", "b/2/");
    assert_xml_text(&c, "IsTruncated", "false");
    call_free(&c);
    for (size_t i = 0; i < nk; i++)
        free(keys[i]);
    free(keys);
}

static void test_encoding_type_url(void **state)
{
    fixture *f = *state;
    put_simple(f, "/enc", NULL);
    const char *keys[] = { "a b+c/d", "\xc3\xa9t\xc3\xa9/x", "percent%25/y", "amp&lt;", "tab\there" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(rd_s3_store_put_data(f->st, "enc", keys[i], "x", 1, NULL, NULL, NULL), 0);
    call c;
    do_call(f, &c, "GET", "/enc", "list-type=2&encoding-type=url", NULL, NULL);
    assert_ok_root(&c, 200, "ListBucketResult");
    assert_xml_text(&c, "EncodingType", "url");
    char **ks;
    size_t n = xml_list(&c, "Contents", "Key", &ks);
    assert_int_equal(n, 5);
    /* decoding each (as botocore does) gives back the keys, in byte order */
    const char *sorted[] = { "a b+c/d", "amp&lt;", "percent%25/y", "tab\there", "\xc3\xa9t\xc3\xa9/x" };
    for (size_t i = 0; i < n; i++) {
        for (const char *p = ks[i]; *p; p++)
            assert_true(*p > ' ' && *p < 127 && *p != '+' && *p != '&' && *p != '<');
        char *dec = rd_percent_decode(ks[i], strlen(ks[i]), 1);
        assert_string_equal(dec, sorted[i]);
        free(dec);
    }
    assert_string_equal(ks[0], "a%20b%2Bc/d");
    free_list(ks, n);
    call_free(&c);
    do_call(f, &c, "GET", "/enc", "list-type=2&encoding-type=url&delimiter=%2F&prefix=%C3%A9", NULL, NULL);
    assert_xml_text(&c, "Prefix", "%C3%A9");
    char **ps;
    n = xml_list(&c, "CommonPrefixes", "Prefix", &ps);
    assert_int_equal(n, 1);
    assert_string_equal(ps[0], "%C3%A9t%C3%A9/");
    free_list(ps, n);
    assert_xml_text(&c, "Delimiter", "/");
    call_free(&c);
}

static void test_delete_objects(void **state)
{
    fixture *f = *state;
    put_simple(f, "/del", NULL);
    for (int i = 0; i < 10; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(rd_s3_store_put_data(f->st, "del", k, "x", 1, NULL, NULL, NULL), 0);
    }
    const char body[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                        "<Delete xmlns=\"" S3_NS "\"><Object><Key>k0</Key></Object><Object><Key>k1</Key></Object>"
                        "<Object><Key>never-existed</Key></Object></Delete>";
    char md5[32];
    md5_b64(body, strlen(body), md5);
    call c;
    /* wrong, malformed and missing digests refuse the whole request */
    do_call(f, &c, "POST", "/del", "delete", body, "Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==", NULL);
    assert_error(&c, 400, "BadDigest");
    call_free(&c);
    do_call(f, &c, "POST", "/del", "delete", body, "Content-MD5", "###", NULL);
    assert_error(&c, 400, "InvalidDigest");
    call_free(&c);
    do_call(f, &c, "POST", "/del", "delete", body, NULL);
    assert_error(&c, 400, "InvalidRequest");
    call_free(&c);
    do_call(f, &c, "GET", "/del/k0", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);

    do_call(f, &c, "POST", "/del", "delete=", body, "Content-MD5", md5, NULL);
    assert_ok_root(&c, 200, "DeleteResult");
    char **ks;
    size_t n = xml_list(&c, "Deleted", "Key", &ks);
    assert_int_equal(n, 3); /* a missing key counts as deleted, as S3 */
    assert_string_equal(ks[0], "k0");
    assert_string_equal(ks[2], "never-existed");
    free_list(ks, n);
    call_free(&c);
    do_call(f, &c, "GET", "/del/k0", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);

    /* quiet, with a crc32 checksum instead of Content-MD5 (botocore >= 1.36) */
    const char quiet[] = "<Delete><Quiet>true</Quiet><Object><Key>k2</Key></Object></Delete>";
    /* crc32 of the body, computed here bitwise */
    uint32_t crc = 0xFFFFFFFFu;
    for (const unsigned char *p = (const unsigned char *)quiet; *p; p++) {
        crc ^= *p;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    crc ^= 0xFFFFFFFFu;
    unsigned char be[4] = { (unsigned char)(crc >> 24), (unsigned char)(crc >> 16), (unsigned char)(crc >> 8),
                            (unsigned char)crc };
    char crc_b64[16];
    EVP_EncodeBlock((unsigned char *)crc_b64, be, 4);
    do_call(f, &c, "POST", "/del", "delete", quiet, "x-amz-checksum-crc32", crc_b64, NULL);
    assert_ok_root(&c, 200, "DeleteResult");
    assert_int_equal(xml_list(&c, "Deleted", "Key", &ks), 0);
    call_free(&c);
    do_call(f, &c, "GET", "/del/k2", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);

    /* malformed XML, no objects, too many objects */
    const char *bad[] = { "<Delete><Object><Key>k3</Key></Object>", "<Delete></Delete>", "<Other/>",
                          "<Delete><Object><VersionId>1</VersionId></Object></Delete>" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        md5_b64(bad[i], strlen(bad[i]), md5);
        do_call(f, &c, "POST", "/del", "delete", bad[i], "Content-MD5", md5, NULL);
        assert_error(&c, 400, "MalformedXML");
        call_free(&c);
    }
    rd_buf big = RD_BUF_INIT;
    rd_buf_puts(&big, "<Delete>");
    for (int i = 0; i < 1001; i++)
        rd_buf_printf(&big, "<Object><Key>x%d</Key></Object>", i);
    rd_buf_puts(&big, "</Delete>");
    md5_b64(big.data, big.len, md5);
    do_call(f, &c, "POST", "/del", "delete", rd_buf_cstr(&big), "Content-MD5", md5, NULL);
    assert_error(&c, 400, "MalformedXML");
    call_free(&c);
    rd_buf_free(&big);
    /* a document type declaration (entities) is refused, nothing is deleted */
    const char xxe[] = "<!DOCTYPE d [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Delete><Object><Key>k3&e;</Key>"
                       "</Object></Delete>";
    md5_b64(xxe, strlen(xxe), md5);
    do_call(f, &c, "POST", "/del", "delete", xxe, "Content-MD5", md5, NULL);
    assert_error(&c, 400, "MalformedXML");
    call_free(&c);
    do_call(f, &c, "GET", "/del/k3", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    md5_b64(body, strlen(body), md5);
    do_call(f, &c, "POST", "/nobucket", "delete", body, "Content-MD5", md5, NULL);
    assert_error(&c, 404, "NoSuchBucket");
    call_free(&c);
}

static void test_persistence_through_api(void **state)
{
    fixture *f = *state;
    put_simple(f, "/keep", NULL);
    put_simple(f, "/keep/a/b%20c", "persisted");
    rd_s3_store_close(f->st);
    rd_error err;
    assert_int_equal(rd_s3_store_open(f->dir, &f->st, &err), RD_OK);
    call c;
    do_call(f, &c, "GET", "/keep/a/b%20c", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    size_t len;
    char *got = served(&c, &len);
    assert_int_equal(len, 9);
    assert_memory_equal(got, "persisted", 9);
    free(got);
    call_free(&c);
}

static const char ids_config[] =
    "{\"account\":\"000000000000\",\"region\":\"us-east-1\",\n"
    " \"users\":[{\"name\":\"reader\",\"access_key_id\":\"AKIDREADER\",\"secret_access_key\":\"s1\",\n"
    "            \"allow\":[\"s3:GetObject arn:aws:s3:::authz/*\"]},\n"
    "           {\"name\":\"lister\",\"access_key_id\":\"AKIDLISTER\",\"secret_access_key\":\"s2\",\n"
    "            \"allow\":[\"s3:GetObject\",\"s3:ListBucket\",\"s3:DeleteObject arn:aws:s3:::authz/tmp/*\"]}]}\n";

static void test_authorisation(void **state)
{
    fixture *f = *state;
    put_simple(f, "/authz", NULL);
    put_simple(f, "/authz/obj", "secret data");
    put_simple(f, "/authz/tmp/x", "x");
    char cfg[128];
    snprintf(cfg, sizeof cfg, "%s/ids.json", f->dir);
    FILE *fp = fopen(cfg, "w");
    fputs(ids_config, fp);
    fclose(fp);
    rd_emu emu;
    memset(&emu, 0, sizeof emu);
    rd_error err;
    assert_int_equal(rd_emu_ids_load(cfg, &emu.ids, &err), RD_OK);
    rd_emu_principal reader, lister;
    assert_true(rd_emu_ids_find_key(emu.ids, "AKIDREADER", &reader));
    assert_true(rd_emu_ids_find_key(emu.ids, "AKIDLISTER", &lister));
    f->emu = &emu;
    call c;

    g_principal = reader.arn;
    do_call(f, &c, "GET", "/authz/obj", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);
    do_call(f, &c, "PUT", "/authz/obj", "", "overwrite", NULL);
    assert_error(&c, 403, "AccessDenied");
    call_free(&c);
    do_call(f, &c, "GET", "/authz", "list-type=2", NULL, NULL);
    assert_error(&c, 403, "AccessDenied");
    call_free(&c);
    do_call(f, &c, "GET", "/", "", NULL, NULL);
    assert_error(&c, 403, "AccessDenied");
    call_free(&c);
    do_call(f, &c, "PUT", "/new-bucket", "", NULL, NULL);
    assert_error(&c, 403, "AccessDenied");
    call_free(&c);
    /* without s3:ListBucket a missing key is AccessDenied, not NoSuchKey (as S3) */
    do_call(f, &c, "GET", "/authz/missing", "", NULL, NULL);
    assert_error(&c, 403, "AccessDenied");
    call_free(&c);
    do_call(f, &c, "HEAD", "/authz/missing", "", NULL, NULL);
    assert_int_equal(c.resp.status, 403);
    assert_int_equal(c.resp.body.len, 0);
    call_free(&c);

    g_principal = lister.arn;
    do_call(f, &c, "GET", "/authz/missing", "", NULL, NULL);
    assert_error(&c, 404, "NoSuchKey");
    call_free(&c);
    /* DeleteObjects: per-key AccessDenied in the result */
    const char body[] = "<Delete><Object><Key>tmp/x</Key></Object><Object><Key>obj</Key></Object></Delete>";
    char md5[32];
    md5_b64(body, strlen(body), md5);
    do_call(f, &c, "POST", "/authz", "delete", body, "Content-MD5", md5, NULL);
    assert_ok_root(&c, 200, "DeleteResult");
    char **ks;
    size_t n = xml_list(&c, "Deleted", "Key", &ks);
    assert_int_equal(n, 1);
    assert_string_equal(ks[0], "tmp/x");
    free_list(ks, n);
    n = xml_list(&c, "Error", "Key", &ks);
    assert_int_equal(n, 1);
    assert_string_equal(ks[0], "obj");
    free_list(ks, n);
    n = xml_list(&c, "Error", "Code", &ks);
    assert_string_equal(ks[0], "AccessDenied");
    free_list(ks, n);
    call_free(&c);
    do_call(f, &c, "GET", "/authz/obj", "", NULL, NULL);
    assert_int_equal(c.resp.status, 200);
    call_free(&c);

    f->emu = NULL;
    g_principal = "arn:aws:iam::000000000000:user/test";
    rd_emu_ids_free(emu.ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_get_head_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges_and_conditionals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digests_and_checksums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aws_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streamed_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signed_aws_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_virtual_hosted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoding_type_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence_through_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authorisation, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("s3_api", tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
