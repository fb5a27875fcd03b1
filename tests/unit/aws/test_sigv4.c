/* test_sigv4.c — SigV4 against the official AWS test suite (embedded, and read from the shared folder
 * when it is beside the project), plus the encoder, dates, S3 rules and presigning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redduck/sigv4.h"
#include "sigv4_suite_cases.h"

#define SUITE_KEY "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME 1440938160 /* 2015-08-30T12:36:00Z */

typedef struct parsed_request {
    char method[16];
    rd_buf url;
    rd_headers headers;
    rd_buf body;
} parsed_request;

/* Parses the suite's request.txt: "METHOD target HTTP/1.1", "Name:value" lines (a line starting with
 * whitespace continues the previous value), a blank line, the body. */
static void parse_request(const char *text, int normalize, parsed_request *r)
{
    memset(r, 0, sizeof *r);
    rd_buf_init(&r->url);
    rd_buf_init(&r->body);
    rd_headers_init(&r->headers);
    const char *eol = strchr(text, '\n');
    assert_non_null(eol);
    const char *sp = strchr(text, ' ');
    const char *proto = NULL;
    for (const char *p = eol; p > sp; p--)
        if (strncmp(p, " HTTP/", 6) == 0) {
            proto = p;
            break;
        }
    assert_non_null(proto);
    snprintf(r->method, sizeof r->method, "%.*s", (int)(sp - text), text);
    rd_buf target = RD_BUF_INIT;
    rd_buf_append(&target, sp + 1, (size_t)(proto - sp - 1));
    const char *p = eol + 1;
    rd_buf name = RD_BUF_INIT, value = RD_BUF_INIT;
    while (*p && *p != '\n') {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (*p == ' ' || *p == '\t') {
            rd_buf_putc(&value, '\n');
            rd_buf_append(&value, p, len);
        } else {
            if (name.len)
                rd_headers_add(&r->headers, rd_buf_cstr(&name), rd_buf_cstr(&value));
            rd_buf_reset(&name);
            rd_buf_reset(&value);
            const char *colon = memchr(p, ':', len);
            assert_non_null(colon);
            rd_buf_append(&name, p, (size_t)(colon - p));
            rd_buf_append(&value, colon + 1, len - (size_t)(colon - p) - 1);
        }
        p += len + (e ? 1 : 0);
    }
    if (name.len)
        rd_headers_add(&r->headers, rd_buf_cstr(&name), rd_buf_cstr(&value));
    if (*p == '\n')
        rd_buf_puts(&r->body, p + 1);
    /* URL: the suite's raw target; without normalisation the path is sent encoded once, as-is. */
    const char *t = rd_buf_cstr(&target);
    const char *q = strchr(t, '?');
    size_t plen = q ? (size_t)(q - t) : strlen(t);
    rd_buf_printf(&r->url, "https://%s", rd_headers_get(&r->headers, "Host"));
    if (normalize)
        rd_buf_append(&r->url, t, plen);
    else
        rd_sigv4_uri_encode(&r->url, t, plen, 1);
    if (q)
        rd_buf_puts(&r->url, q);
    rd_buf_free(&target);
    rd_buf_free(&name);
    rd_buf_free(&value);
}

static void free_request(parsed_request *r)
{
    rd_buf_free(&r->url);
    rd_buf_free(&r->body);
    rd_headers_free(&r->headers);
}

static void run_case(const suite_case *c)
{
    rd_sigv4_params p = { "service", "us-east-1", SUITE_TIME, SUITE_KEY, SUITE_SECRET, c->token, 0, 0, 0, 0 };
    p.path_as_is = !c->normalize;
    p.sign_content_sha256 = c->sign_body;
    p.omit_session_token = c->omit_session_token;

    parsed_request r;
    parse_request(c->request, c->normalize, &r);
    rd_sigv4_request req = { r.method, rd_buf_cstr(&r.url), &r.headers, r.body.data, r.body.len, NULL };
    rd_sigv4_debug dbg;
    rd_sigv4_debug_init(&dbg);
    rd_error err;
    assert_int_equal(rd_sigv4_sign_headers(&p, &req, &dbg, &err), RD_OK);
    if (strcmp(rd_buf_cstr(&dbg.canonical_request), c->header_canonical) != 0)
        fail_msg("%s: canonical request\n--- got\n%s\n--- want\n%s", c->name, rd_buf_cstr(&dbg.canonical_request),
                 c->header_canonical);
    assert_string_equal(rd_buf_cstr(&dbg.string_to_sign), c->header_string_to_sign);
    assert_string_equal(dbg.signature, c->header_signature);
    char alone[65]; /* the official string to sign, signed on its own (as an S3 POST policy is) */
    rd_sigv4_sign_string(SUITE_SECRET, "20150830", "us-east-1", "service", c->header_string_to_sign,
                         strlen(c->header_string_to_sign), alone);
    assert_string_equal(alone, c->header_signature);
    const char *auth = rd_headers_get(&r.headers, "Authorization");
    assert_non_null(auth);
    assert_non_null(strstr(auth, c->header_signature));
    assert_non_null(strstr(auth, "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"));
    if (c->token) /* sent in every case; signed unless omit_session_token */
        assert_string_equal(rd_headers_get(&r.headers, "X-Amz-Security-Token"), c->token);
    free_request(&r);

    /* Query (presigned URL) signing of the same request. */
    parse_request(c->request, c->normalize, &r);
    rd_sigv4_request qreq = { r.method, rd_buf_cstr(&r.url), &r.headers, r.body.data, r.body.len, NULL };
    p.sign_content_sha256 = 0;
    char *url = NULL;
    rd_sigv4_debug_free(&dbg);
    rd_sigv4_debug_init(&dbg);
    assert_int_equal(rd_sigv4_presign_url(&p, &qreq, 3600, &url, &dbg, &err), RD_OK);
    if (strcmp(rd_buf_cstr(&dbg.canonical_request), c->query_canonical) != 0)
        fail_msg("%s: query canonical request\n--- got\n%s\n--- want\n%s", c->name,
                 rd_buf_cstr(&dbg.canonical_request), c->query_canonical);
    assert_string_equal(dbg.signature, c->query_signature);
    assert_non_null(strstr(url, c->query_signature));
    free(url);
    rd_sigv4_debug_free(&dbg);
    free_request(&r);
}

static void test_suite_embedded(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof suite_cases / sizeof suite_cases[0]; i++)
        run_case(&suite_cases[i]);
}

static char *slurp(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    rd_buf b = RD_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rd_buf_append(&b, chunk, n);
    fclose(f);
    return rd_buf_detach(&b);
}

static char *trimmed(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
    return s;
}

/* The shared conformance folder, when present: every case in it, read from the files themselves. */
static void test_suite_from_shared_folder(void **state)
{
    (void)state;
    const char *shared = getenv("RD_SHARED_DIR");
    char root[1024];
    snprintf(root, sizeof root, "%s/testdata/aws-signing-test-suite/v4", shared ? shared : "../shared");
    DIR *d = opendir(root);
    if (!d) {
        printf("sigv4 conformance folder absent (%s): only the embedded cases ran\n", root);
        return;
    }
    struct dirent *e;
    int ran = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char dir[2048];
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        char *ctx_text = slurp(dir, "context.json");
        if (!ctx_text)
            continue;
        json_error_t jerr;
        json_t *ctx = json_loads(ctx_text, 0, &jerr);
        assert_non_null(ctx);
        json_t *creds = json_object_get(ctx, "credentials");
        suite_case c;
        c.name = e->d_name;
        c.normalize = json_is_true(json_object_get(ctx, "normalize"));
        c.sign_body = json_is_true(json_object_get(ctx, "sign_body"));
        c.omit_session_token = json_is_true(json_object_get(ctx, "omit_session_token"));
        c.token = json_string_value(json_object_get(creds, "token"));
        assert_string_equal(json_string_value(json_object_get(creds, "secret_access_key")), SUITE_SECRET);
        char *request = slurp(dir, "request.txt"), *hc = slurp(dir, "header-canonical-request.txt"),
             *hs = slurp(dir, "header-string-to-sign.txt"), *hsig = slurp(dir, "header-signature.txt"),
             *qc = slurp(dir, "query-canonical-request.txt"), *qsig = slurp(dir, "query-signature.txt");
        assert_true(request && hc && hs && hsig && qc && qsig);
        c.request = request;
        c.header_canonical = hc;
        c.header_string_to_sign = hs;
        c.header_signature = trimmed(hsig);
        c.query_canonical = qc;
        c.query_signature = trimmed(qsig);
        run_case(&c);
        ran++;
        free(request);
        free(hc);
        free(hs);
        free(hsig);
        free(qc);
        free(qsig);
        json_decref(ctx);
        free(ctx_text);
    }
    closedir(d);
    assert_true(ran >= (int)(sizeof suite_cases / sizeof suite_cases[0]));
    printf("sigv4 conformance folder: %d cases passed\n", ran);
}

static void test_uri_encode(void **state)
{
    (void)state;
    rd_buf b = RD_BUF_INIT;
    const char *s = "a b/c~d_e.f-g+h=i&\xe1\x88\xb4%";
    rd_sigv4_uri_encode(&b, s, strlen(s), 0);
    assert_string_equal(rd_buf_cstr(&b), "a%20b%2Fc~d_e.f-g%2Bh%3Di%26%E1%88%B4%25");
    rd_buf_reset(&b);
    rd_sigv4_uri_encode(&b, s, strlen(s), 1);
    assert_string_equal(rd_buf_cstr(&b), "a%20b/c~d_e.f-g%2Bh%3Di%26%E1%88%B4%25");
    rd_buf_free(&b);
}

static void test_dates(void **state)
{
    (void)state;
    char d[17];
    rd_sigv4_amz_date(SUITE_TIME, d);
    assert_string_equal(d, "20150830T123600Z");
    time_t t;
    assert_int_equal(rd_sigv4_parse_amz_date("20150830T123600Z", &t), 0);
    assert_int_equal(t, SUITE_TIME);
    assert_int_not_equal(rd_sigv4_parse_amz_date("2015-08-30T12:36:00Z", &t), 0);
    assert_int_not_equal(rd_sigv4_parse_amz_date("20151330T123600Z", &t), 0);
    assert_int_not_equal(rd_sigv4_parse_amz_date("20150830T123600", &t), 0);
    assert_int_not_equal(rd_sigv4_parse_amz_date(NULL, &t), 0);
    char h[65];
    rd_sha256_hex("", 0, h);
    assert_string_equal(h, RD_SIGV4_EMPTY_SHA256);
}

static void test_s3_rules(void **state)
{
    (void)state;
    rd_sigv4_params p = { "s3", "eu-west-1", SUITE_TIME, "AKID", "secret", "tok", 1, 0, 0, 0 };
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "User-Agent", "redduck/0"); /* never signed */
    rd_sigv4_request req = { "GET", "https://bkt.s3.eu-west-1.amazonaws.com/a%20b/../c//d?list-type=2&prefix=x%2Fy",
                             &h, NULL, 0, RD_SIGV4_UNSIGNED_PAYLOAD };
    rd_sigv4_debug dbg;
    rd_sigv4_debug_init(&dbg);
    rd_error err;
    assert_int_equal(rd_sigv4_sign_headers(&p, &req, &dbg, &err), RD_OK);
    const char *cr = rd_buf_cstr(&dbg.canonical_request);
    /* S3: the path is used exactly as sent (no normalising, no second encoding) */
    assert_int_equal(strncmp(cr, "GET\n/a%20b/../c//d\nlist-type=2&prefix=x%2Fy\n", 43), 0);
    assert_string_equal(rd_headers_get(&h, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    assert_string_equal(rd_headers_get(&h, "X-Amz-Security-Token"), "tok");
    assert_string_equal(dbg.signed_headers_list, "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
    assert_non_null(strstr(cr, "\nUNSIGNED-PAYLOAD"));
    assert_null(strstr(cr, "user-agent"));
    rd_sigv4_debug_free(&dbg);

    /* Other services: the same path is normalised and encoded again. */
    rd_headers_free(&h);
    rd_sigv4_params p2 = { "redshift-data", "eu-west-1", SUITE_TIME, "AKID", "secret", NULL, 0, 0, 0, 0 };
    rd_sigv4_request req2 = { "POST", "https://redshift-data.eu-west-1.amazonaws.com/a%20b/../c//d", &h, "{}", 2,
                              NULL };
    rd_sigv4_debug_init(&dbg);
    assert_int_equal(rd_sigv4_sign_headers(&p2, &req2, &dbg, &err), RD_OK);
    cr = rd_buf_cstr(&dbg.canonical_request);
    assert_int_equal(strncmp(cr, "POST\n/c/d\n\n", 11), 0);
    assert_null(rd_headers_get(&h, "x-amz-content-sha256"));
    assert_null(rd_headers_get(&h, "X-Amz-Security-Token"));
    char body_hash[65];
    rd_sha256_hex("{}", 2, body_hash);
    assert_non_null(strstr(cr, body_hash));
    rd_sigv4_debug_free(&dbg);
    rd_headers_free(&h);

    /* Missing pieces are usage errors with a message. */
    rd_sigv4_params bad = { "s3", NULL, SUITE_TIME, "AKID", "secret", NULL, 1, 0, 0, 0 };
    rd_sigv4_request req3 = { "GET", "https://x/", &h, NULL, 0, NULL };
    rd_error_clear(&err);
    assert_int_equal(rd_sigv4_sign_headers(&bad, &req3, NULL, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "region"));
    rd_sigv4_request req4 = { "GET", "not a url", &h, NULL, 0, NULL };
    assert_int_equal(rd_sigv4_sign_headers(&p, &req4, NULL, &err), RD_E_USAGE);
    rd_headers_free(&h);
}

static void test_presign_s3(void **state)
{
    (void)state;
    rd_sigv4_params p = { "s3", "us-east-1", SUITE_TIME, "AKID", "secret", "to/ken+", 1, 0, 0, 0 };
    rd_sigv4_request req = { "GET", "http://127.0.0.1:9000/bucket/key%20x?versionId=3", NULL, NULL, 0, NULL };
    char *url = NULL;
    rd_sigv4_debug dbg;
    rd_sigv4_debug_init(&dbg);
    rd_error err;
    assert_int_equal(rd_sigv4_presign_url(&p, &req, 600, &url, &dbg, &err), RD_OK);
    assert_int_equal(strncmp(url, "http://127.0.0.1:9000/bucket/key%20x?versionId=3&X-Amz-Algorithm=AWS4-HMAC-SHA256"
                                  "&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fs3%2Faws4_request",
                             134),
                     0);
    assert_non_null(strstr(url, "&X-Amz-Expires=600&"));
    assert_non_null(strstr(url, "&X-Amz-Security-Token=to%2Fken%2B"));
    assert_non_null(strstr(url, "&X-Amz-Signature="));
    /* the non-default port stays in the signed host */
    assert_non_null(strstr(rd_buf_cstr(&dbg.canonical_request), "host:127.0.0.1:9000\n"));
    assert_non_null(strstr(rd_buf_cstr(&dbg.canonical_request), "\nUNSIGNED-PAYLOAD"));
    free(url);
    rd_sigv4_debug_free(&dbg);
}

/* AWS's "Transferring Payload in Multiple Chunks" example (sigv4-streaming): the seed (the request's own
 * signature over STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and the chain of three chunk signatures, 64 KiB and
 * 1 KiB of 'a' then the empty final chunk. */
static void test_chunk_signatures(void **state)
{
    (void)state;
    rd_sigv4_params p = { "s3", "us-east-1", 1369353600 /* 20130524T000000Z */, "AKIAIOSFODNN7EXAMPLE",
                          "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL, 1, 0, 0, 0 };
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "Host", "s3.amazonaws.com");
    rd_headers_add(&h, "x-amz-storage-class", "REDUCED_REDUNDANCY");
    rd_headers_add(&h, "Content-Encoding", "aws-chunked");
    rd_headers_add(&h, "x-amz-decoded-content-length", "66560");
    rd_headers_add(&h, "Content-Length", "66824");
    rd_sigv4_request req = { "PUT", "https://s3.amazonaws.com/examplebucket/chunkObject.txt", &h, NULL, 0,
                             "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" };
    rd_sigv4_debug dbg;
    rd_sigv4_debug_init(&dbg);
    rd_error err;
    assert_int_equal(rd_sigv4_sign_headers(&p, &req, &dbg, &err), RD_OK);
    assert_string_equal(dbg.signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
    rd_sigv4_debug_free(&dbg);
    rd_headers_free(&h);

    static char data[65536];
    memset(data, 'a', sizeof data);
    char hash[65], sig1[65], sig2[65], sig3[65];
    rd_sha256_hex(data, 65536, hash);
    assert_int_equal(rd_sigv4_chunk_signature(&p, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
                                              hash, sig1, &err),
                     RD_OK);
    assert_string_equal(sig1, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
    rd_sha256_hex(data, 1024, hash);
    assert_int_equal(rd_sigv4_chunk_signature(&p, sig1, hash, sig2, &err), RD_OK);
    assert_string_equal(sig2, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
    assert_int_equal(rd_sigv4_chunk_signature(&p, sig2, RD_SIGV4_EMPTY_SHA256, sig3, &err), RD_OK);
    assert_string_equal(sig3, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9");
    /* the chain: another previous signature gives another signature */
    assert_int_equal(rd_sigv4_chunk_signature(&p, sig1, RD_SIGV4_EMPTY_SHA256, sig3, &err), RD_OK);
    assert_string_not_equal(sig3, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9");
    p.secret_access_key = NULL;
    assert_int_equal(rd_sigv4_chunk_signature(&p, sig1, hash, sig3, &err), RD_E_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_embedded), cmocka_unit_test(test_suite_from_shared_folder),
        cmocka_unit_test(test_uri_encode),     cmocka_unit_test(test_dates),
        cmocka_unit_test(test_s3_rules),       cmocka_unit_test(test_presign_s3),
        cmocka_unit_test(test_chunk_signatures),
    };
    return cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);
}
