/* sigv4.c — AWS Signature Version 4 (see include/redduck/sigv4.h). Canonicalisation follows botocore's
 * SigV4Auth / S3SigV4Auth / SigV4QueryAuth byte for byte: non-S3 paths have dot segments and empty
 * segments removed and are URI-encoded again; query pairs are decoded then encoded per SigV4 and sorted by
 * key then value; header values are trimmed with inner whitespace runs folded; repeated headers joined
 * with ','. */
#include "redduck/sigv4.h"
#include "core/parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

/* Headers botocore never signs. */
static const char *const unsigned_headers[] = {
    "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
};

void rd_sigv4_debug_init(rd_sigv4_debug *dbg)
{
    rd_buf_init(&dbg->canonical_request);
    rd_buf_init(&dbg->string_to_sign);
    dbg->signature[0] = '\0';
    dbg->signed_headers_list[0] = '\0';
}

void rd_sigv4_debug_free(rd_sigv4_debug *dbg)
{
    if (!dbg)
        return;
    rd_buf_free_secure(&dbg->canonical_request); /* holds X-Amz-Security-Token */
    rd_buf_free(&dbg->string_to_sign);
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void rd_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data ? data : (const void *)"", len, md);
    to_hex(md, sizeof md, out);
}

static int hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen, unsigned char out[32])
{
    unsigned int len = 32;
    return HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &len) != NULL;
}

static int is_unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

rd_status rd_sigv4_uri_encode(rd_buf *out, const char *s, size_t len, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        rd_status st;
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            st = rd_buf_putc(out, (char)c);
        } else {
            char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
            st = rd_buf_append(out, esc, 3);
        }
        if (st != RD_OK)
            return st;
    }
    return RD_OK;
}

void rd_sigv4_amz_date(time_t when, char out[17])
{
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int rd_sigv4_parse_amz_date(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)s[i]))
            return -1;
    if (sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec) != 6)
        return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = timegm(&tm);
    return 0;
}

/* --- URL pieces ------------------------------------------------------------------------------------- */

typedef struct url_parts {
    const char *host;  /* host[:port] */
    size_t host_len;
    const char *path;  /* up to '?' or '#' */
    size_t path_len;
    const char *query; /* after '?', up to '#' */
    size_t query_len;
    int https;
} url_parts;

static int split_url(const char *url, url_parts *u)
{
    memset(u, 0, sizeof *u);
    const char *p = strstr(url, "://");
    if (!p)
        return 0;
    u->https = (size_t)(p - url) == 5 && strncasecmp(url, "https", 5) == 0;
    p += 3;
    u->host = p;
    while (*p && *p != '/' && *p != '?' && *p != '#')
        p++;
    u->host_len = (size_t)(p - u->host);
    if (u->host_len == 0)
        return 0;
    u->path = p;
    while (*p && *p != '?' && *p != '#')
        p++;
    u->path_len = (size_t)(p - u->path);
    if (*p == '?') {
        p++;
        u->query = p;
        while (*p && *p != '#')
            p++;
        u->query_len = (size_t)(p - u->query);
    }
    return 1;
}

/* Host header value from the URL: default ports dropped, as botocore's _host_from_url. */
static rd_status host_from_url(const url_parts *u, rd_buf *out)
{
    size_t n = u->host_len;
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--) {
        if (u->host[i - 1] == ':') {
            colon = u->host + i - 1;
            break;
        }
        if (u->host[i - 1] == ']')
            break;
    }
    if (colon) {
        size_t plen = n - (size_t)(colon - u->host) - 1;
        if ((plen == 2 && strncmp(colon + 1, "80", 2) == 0 && !u->https) ||
            (plen == 3 && strncmp(colon + 1, "443", 3) == 0 && u->https))
            n = (size_t)(colon - u->host);
    }
    return rd_buf_append(out, u->host, n);
}

/* Percent-decodes then SigV4-encodes s[0..len). */
static rd_status reencode(rd_buf *out, const char *s, size_t len)
{
    rd_buf raw = RD_BUF_INIT;
    rd_status st = RD_OK;
    for (size_t i = 0; i < len && st == RD_OK; i++) {
        if (s[i] == '%' && i + 2 < len && rd_parse_hex_digit(s[i + 1]) >= 0 && rd_parse_hex_digit(s[i + 2]) >= 0) {
            st = rd_buf_putc(&raw, (char)(rd_parse_hex_digit(s[i + 1]) * 16 + rd_parse_hex_digit(s[i + 2])));
            i += 2;
        } else {
            st = rd_buf_putc(&raw, s[i]);
        }
    }
    if (st == RD_OK)
        st = rd_sigv4_uri_encode(out, rd_buf_cstr(&raw), raw.len, 0);
    rd_buf_free(&raw);
    return st;
}

/* Canonical path: S3 as sent; others normalised (RFC 3986 dot segments, empty segments dropped) then
 * encoded again (double encoding), as botocore. */
static rd_status canonical_path(const url_parts *u, int s3_rules, rd_buf *out)
{
    if (u->path_len == 0)
        return rd_buf_putc(out, '/');
    if (s3_rules)
        return rd_buf_append(out, u->path, u->path_len);
    /* split on '/', drop "" and ".", pop on ".." */
    size_t nseg = 0, cap = 8;
    const char **seg = malloc(cap * sizeof *seg);
    size_t *seglen = malloc(cap * sizeof *seglen);
    if (!seg || !seglen) {
        free(seg);
        free(seglen);
        return RD_E_INTERNAL;
    }
    size_t i = 0;
    while (i <= u->path_len) {
        size_t start = i;
        while (i < u->path_len && u->path[i] != '/')
            i++;
        size_t len = i - start;
        const char *s = u->path + start;
        if (len == 0 || (len == 1 && s[0] == '.')) {
            /* skip */
        } else if (len == 2 && s[0] == '.' && s[1] == '.') {
            if (nseg)
                nseg--;
        } else {
            if (nseg == cap) {
                cap *= 2;
                const char **ns = realloc(seg, cap * sizeof *seg);
                size_t *nl = ns ? realloc(seglen, cap * sizeof *seglen) : NULL;
                if (!ns || !nl) {
                    free(ns ? ns : seg);
                    free(seglen);
                    return RD_E_INTERNAL;
                }
                seg = ns;
                seglen = nl;
            }
            seg[nseg] = s;
            seglen[nseg++] = len;
        }
        i++;
    }
    rd_buf norm = RD_BUF_INIT;
    if (u->path[0] == '/')
        rd_buf_putc(&norm, '/');
    for (size_t k = 0; k < nseg; k++) {
        if (k)
            rd_buf_putc(&norm, '/');
        rd_buf_append(&norm, seg[k], seglen[k]);
    }
    if (u->path[u->path_len - 1] == '/' && nseg)
        rd_buf_putc(&norm, '/');
    free(seg);
    free(seglen);
    rd_status st = rd_sigv4_uri_encode(out, rd_buf_cstr(&norm), norm.len, 1);
    rd_buf_free(&norm);
    return st;
}

typedef struct kv {
    char *k;
    char *v;
} kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

static void kvs_free(kv *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].k);
        free(p[i].v);
    }
    free(p);
}

/* Parses a raw query into pairs, each part percent-decoded then SigV4-encoded. */
static rd_status parse_query(const char *q, size_t len, kv **out, size_t *count)
{
    size_t n = 0, cap = 0;
    kv *items = NULL;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && q[i] != '&')
            i++;
        size_t end = i++;
        if (end == start)
            continue;
        const char *eq = memchr(q + start, '=', end - start);
        size_t klen = eq ? (size_t)(eq - (q + start)) : end - start;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            kv *p = realloc(items, cap * sizeof *p);
            if (!p) {
                kvs_free(items, n);
                return RD_E_INTERNAL;
            }
            items = p;
        }
        rd_buf k = RD_BUF_INIT, v = RD_BUF_INIT;
        reencode(&k, q + start, klen);
        if (eq)
            reencode(&v, eq + 1, (size_t)(q + end - eq - 1));
        items[n].k = rd_buf_detach(&k);
        items[n].v = rd_buf_detach(&v);
        n++;
    }
    *out = items;
    *count = n;
    return RD_OK;
}

static rd_status canonical_query(kv *items, size_t n, rd_buf *out)
{
    if (n > 1)
        qsort(items, n, sizeof *items, kv_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            rd_buf_putc(out, '&');
        rd_buf_puts(out, items[i].k);
        rd_buf_putc(out, '=');
        rd_buf_puts(out, items[i].v);
    }
    return RD_OK;
}

/* --- headers ---------------------------------------------------------------------------------------- */

static int header_is_signed(const char *name)
{
    for (size_t i = 0; i < sizeof unsigned_headers / sizeof unsigned_headers[0]; i++)
        if (strcasecmp(name, unsigned_headers[i]) == 0)
            return 0;
    return 1;
}

/* Python's str.split() whitespace: folds runs, trims both ends. */
static int py_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}

static void append_trimmed(rd_buf *out, const char *v)
{
    int pending = 0, any = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (py_space(*p)) {
            pending = any;
            continue;
        }
        if (pending)
            rd_buf_putc(out, ' ');
        pending = 0;
        any = 1;
        rd_buf_putc(out, (char)*p);
    }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Builds canonical headers and the signed-headers list from hs (with host ensured). */
static rd_status canonical_headers(const rd_headers *hs, rd_buf *canon, rd_buf *signed_list)
{
    char **names = calloc(hs->count + 1, sizeof *names);
    size_t n = 0;
    if (!names)
        return RD_E_INTERNAL;
    for (size_t i = 0; i < hs->count; i++) {
        if (!header_is_signed(hs->items[i].name))
            continue;
        char *lower = strdup(hs->items[i].name);
        for (char *p = lower; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        /* trim like botocore's n.lower().strip() */
        int dup = 0;
        for (size_t j = 0; j < n; j++)
            if (strcmp(names[j], lower) == 0)
                dup = 1;
        if (dup)
            free(lower);
        else
            names[n++] = lower;
    }
    qsort(names, n, sizeof *names, str_cmp);
    for (size_t i = 0; i < n; i++) {
        rd_buf_puts(canon, names[i]);
        rd_buf_putc(canon, ':');
        int first = 1;
        for (size_t j = 0; j < hs->count; j++) {
            if (strcasecmp(hs->items[j].name, names[i]) != 0)
                continue;
            if (!first)
                rd_buf_putc(canon, ',');
            append_trimmed(canon, hs->items[j].value);
            first = 0;
        }
        rd_buf_putc(canon, '\n');
        if (i)
            rd_buf_putc(signed_list, ';');
        rd_buf_puts(signed_list, names[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return RD_OK;
}

/* --- signing core ----------------------------------------------------------------------------------- */

static rd_status check_params(const rd_sigv4_params *p, const char *method, const char *url, rd_error *err)
{
    if (!p || !p->service || !*p->service || !p->region || !*p->region)
        return rd_error_set(err, RD_E_USAGE, "signing needs a service and a region");
    if (!p->access_key_id || !*p->access_key_id || !p->secret_access_key)
        return rd_error_set(err, RD_E_USAGE, "signing needs an access key id and a secret access key");
    if (!method || !*method || !url)
        return rd_error_set(err, RD_E_USAGE, "signing needs a method and a URL");
    return RD_OK;
}

static void signing_key(const rd_sigv4_params *p, const char *date8, unsigned char out[32])
{
    rd_buf k = RD_BUF_INIT;
    rd_buf_printf(&k, "AWS4%s", p->secret_access_key);
    unsigned char kd[32], kr[32], ks[32];
    hmac_sha256(k.data, k.len, date8, 8, kd);
    hmac_sha256(kd, 32, p->region, strlen(p->region), kr);
    hmac_sha256(kr, 32, p->service, strlen(p->service), ks);
    hmac_sha256(ks, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(kd, sizeof kd);
    OPENSSL_cleanse(kr, sizeof kr);
    OPENSSL_cleanse(ks, sizeof ks);
    rd_buf_free_secure(&k);
}

void rd_sigv4_sign_string(const char *secret, const char *date8, const char *region, const char *service,
                          const void *msg, size_t len, char out[65])
{
    rd_sigv4_params p = { 0 };
    p.secret_access_key = secret;
    p.region = region;
    p.service = service;
    unsigned char key[32], sig[32];
    signing_key(&p, date8, key);
    hmac_sha256(key, 32, msg, len, sig);
    OPENSSL_cleanse(key, sizeof key);
    to_hex(sig, 32, out);
}

/* canonical request → string to sign → signature (hex). */
static void finish_signature(const rd_sigv4_params *p, const char *amz_date, const rd_buf *canonical, rd_buf *sts,
                             char sig_hex[65])
{
    char cr_hash[65];
    rd_sha256_hex(canonical->data, canonical->len, cr_hash);
    rd_buf_printf(sts, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date, amz_date, p->region, p->service,
                  cr_hash);
    unsigned char key[32], sig[32];
    signing_key(p, amz_date, key);
    hmac_sha256(key, 32, sts->data, sts->len, sig);
    OPENSSL_cleanse(key, sizeof key);
    to_hex(sig, 32, sig_hex);
}

rd_status rd_sigv4_chunk_signature(const rd_sigv4_params *params, const char *prev_signature,
                                   const char *chunk_sha256, char out[65], rd_error *err)
{
    rd_status st = check_params(params, "PUT", "", err);
    if (st != RD_OK)
        return st;
    if (!prev_signature || !chunk_sha256)
        return rd_error_set(err, RD_E_USAGE, "a chunk signature needs the previous signature and the chunk's hash");
    char amz_date[17];
    rd_sigv4_amz_date(params->when, amz_date);
    rd_buf sts = RD_BUF_INIT;
    rd_buf_printf(&sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%.8s/%s/%s/aws4_request\n%s\n%s\n%s", amz_date, amz_date,
                  params->region, params->service, prev_signature, RD_SIGV4_EMPTY_SHA256, chunk_sha256);
    unsigned char key[32], sig[32];
    signing_key(params, amz_date, key);
    hmac_sha256(key, 32, sts.data, sts.len, sig);
    OPENSSL_cleanse(key, sizeof key);
    rd_buf_free(&sts);
    to_hex(sig, 32, out);
    return RD_OK;
}

/* METHOD \n path \n query \n headers \n signed-headers \n payload-hash (sorts q in place). */
static rd_status assemble_canonical(rd_buf *canon, const char *method, const url_parts *u, int path_as_is, kv *q,
                                    size_t nq, const rd_buf *hdrs, const rd_buf *signed_list, const char *payload)
{
    rd_buf_puts(canon, method);
    for (char *p = canon->data; p && *p; p++)
        *p = (char)toupper((unsigned char)*p);
    rd_buf_putc(canon, '\n');
    rd_status st = canonical_path(u, path_as_is, canon);
    if (st != RD_OK)
        return st;
    rd_buf_putc(canon, '\n');
    canonical_query(q, nq, canon);
    rd_buf_putc(canon, '\n');
    rd_buf_append(canon, hdrs->data, hdrs->len);
    rd_buf_putc(canon, '\n');
    rd_buf_append(canon, signed_list->data, signed_list->len);
    rd_buf_putc(canon, '\n');
    return rd_buf_puts(canon, payload);
}

static void fill_debug(rd_sigv4_debug *dbg, const rd_buf *canon, const rd_buf *sts, const char sig[65],
                       const rd_buf *signed_list)
{
    if (!dbg)
        return;
    rd_buf_reset(&dbg->canonical_request);
    rd_buf_append(&dbg->canonical_request, canon->data, canon->len);
    rd_buf_reset(&dbg->string_to_sign);
    rd_buf_append(&dbg->string_to_sign, sts->data, sts->len);
    memcpy(dbg->signature, sig, 65);
    snprintf(dbg->signed_headers_list, sizeof dbg->signed_headers_list, "%s", rd_buf_cstr(signed_list));
}

static void rfc1123(time_t t, char out[40])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

rd_status rd_sigv4_sign_headers(const rd_sigv4_params *params, rd_sigv4_request *req, rd_sigv4_debug *dbg,
                                rd_error *err)
{
    rd_status st = check_params(params, req ? req->method : NULL, req ? req->url : NULL, err);
    if (st != RD_OK)
        return st;
    url_parts u;
    if (!split_url(req->url, &u))
        return rd_error_set(err, RD_E_USAGE, "cannot sign '%s': not an absolute http(s) URL", req->url);
    rd_headers *hs = req->headers;
    char amz_date[17];
    rd_sigv4_amz_date(params->when, amz_date);

    /* Modify the request as botocore does before signing. */
    rd_headers_remove(hs, "Authorization");
    if (rd_headers_get(hs, "Date")) {
        char d[40];
        rfc1123(params->when, d);
        rd_headers_set(hs, "Date", d);
        rd_headers_remove(hs, "X-Amz-Date");
    } else {
        rd_headers_set(hs, "X-Amz-Date", amz_date);
    }
    int token = params->session_token && *params->session_token;
    if (token && !params->omit_session_token)
        rd_headers_set(hs, "X-Amz-Security-Token", params->session_token);
    else
        rd_headers_remove(hs, "X-Amz-Security-Token");

    char body_hash[65];
    const char *payload = req->payload_hash;
    if (!payload) {
        rd_sha256_hex(req->body, req->body_len, body_hash);
        payload = body_hash;
    }
    if (params->s3_rules || params->sign_content_sha256)
        rd_headers_set(hs, "X-Amz-Content-SHA256", payload);
    else if (rd_headers_get(hs, "X-Amz-Content-SHA256"))
        payload = rd_headers_get(hs, "X-Amz-Content-SHA256");
    if (!rd_headers_get(hs, "Host")) {
        rd_buf host = RD_BUF_INIT;
        host_from_url(&u, &host);
        rd_headers_add(hs, "Host", rd_buf_cstr(&host));
        rd_buf_free(&host);
    }

    rd_buf canon = RD_BUF_INIT, sts = RD_BUF_INIT, hdrs = RD_BUF_INIT, signed_list = RD_BUF_INIT;
    kv *q = NULL;
    size_t nq = 0;
    if ((st = parse_query(u.query ? u.query : "", u.query_len, &q, &nq)) != RD_OK)
        goto out;
    canonical_headers(hs, &hdrs, &signed_list);
    if ((st = assemble_canonical(&canon, req->method, &u, params->s3_rules || params->path_as_is, q, nq, &hdrs,
                                 &signed_list, payload)) != RD_OK)
        goto out;

    char sig[65];
    finish_signature(params, amz_date, &canon, &sts, sig);
    rd_buf auth = RD_BUF_INIT;
    rd_buf_printf(&auth, "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                  params->access_key_id, amz_date, params->region, params->service, rd_buf_cstr(&signed_list), sig);
    if (rd_buf_failed(&hdrs) || rd_buf_failed(&signed_list) || rd_buf_failed(&canon) || rd_buf_failed(&sts) ||
        rd_buf_failed(&auth)) {
        rd_buf_free(&auth);
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        goto out;
    }
    rd_headers_set(hs, "Authorization", rd_buf_cstr(&auth));
    rd_buf_free(&auth);
    if (token && params->omit_session_token)
        rd_headers_set(hs, "X-Amz-Security-Token", params->session_token);
    fill_debug(dbg, &canon, &sts, sig, &signed_list);
out:
    kvs_free(q, nq);
    rd_buf_free_secure(&canon); /* canonical headers include X-Amz-Security-Token */
    rd_buf_free(&sts);
    rd_buf_free_secure(&hdrs);
    rd_buf_free(&signed_list);
    return st;
}

rd_status rd_sigv4_presign_url(const rd_sigv4_params *params, const rd_sigv4_request *req, int expires_seconds,
                               char **out_url, rd_sigv4_debug *dbg, rd_error *err)
{
    rd_status st = check_params(params, req ? req->method : NULL, req ? req->url : NULL, err);
    if (st != RD_OK)
        return st;
    url_parts u;
    if (!split_url(req->url, &u))
        return rd_error_set(err, RD_E_USAGE, "cannot presign '%s': not an absolute http(s) URL", req->url);
    if (expires_seconds <= 0)
        expires_seconds = 3600;
    char amz_date[17];
    rd_sigv4_amz_date(params->when, amz_date);

    rd_headers hs = RD_HEADERS_INIT;
    if (req->headers)
        rd_headers_copy(&hs, req->headers);
    rd_headers_remove(&hs, "Authorization");
    if (!rd_headers_get(&hs, "Host")) {
        rd_buf host = RD_BUF_INIT;
        host_from_url(&u, &host);
        rd_headers_add(&hs, "Host", rd_buf_cstr(&host));
        rd_buf_free(&host);
    }
    rd_buf hdrs = RD_BUF_INIT, signed_list = RD_BUF_INIT, canon = RD_BUF_INIT, sts = RD_BUF_INIT, query = RD_BUF_INIT,
           url = RD_BUF_INIT, scope = RD_BUF_INIT;
    canonical_headers(&hs, &hdrs, &signed_list);

    /* The request's own query (re-encoded, first value of each key as botocore's dict), then ours. */
    kv *q = NULL;
    size_t nq = 0;
    if ((st = parse_query(u.query ? u.query : "", u.query_len, &q, &nq)) != RD_OK)
        goto out;
    for (size_t i = 0; i < nq; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(q[j].k, q[i].k) == 0)
                seen = 1;
        if (seen)
            continue;
        if (query.len)
            rd_buf_putc(&query, '&');
        rd_buf_printf(&query, "%s=%s", q[i].k, q[i].v);
    }
    rd_buf_printf(&scope, "%s/%.8s/%s/%s/aws4_request", params->access_key_id, amz_date, params->region,
                  params->service);
    if (query.len)
        rd_buf_putc(&query, '&');
    rd_buf_puts(&query, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    rd_sigv4_uri_encode(&query, scope.data, scope.len, 0);
    rd_buf_printf(&query, "&X-Amz-Date=%s&X-Amz-Expires=%d&X-Amz-SignedHeaders=", amz_date, expires_seconds);
    rd_sigv4_uri_encode(&query, signed_list.data, signed_list.len, 0);
    if (params->session_token && *params->session_token && !params->omit_session_token) {
        rd_buf_puts(&query, "&X-Amz-Security-Token=");
        rd_sigv4_uri_encode(&query, params->session_token, strlen(params->session_token), 0);
    }

    kv *q2 = NULL;
    size_t nq2 = 0;
    if ((st = parse_query(query.data, query.len, &q2, &nq2)) != RD_OK)
        goto out;
    char body_hash[65];
    const char *payload = req->payload_hash;
    if (!payload) {
        if (params->s3_rules) {
            payload = RD_SIGV4_UNSIGNED_PAYLOAD;
        } else {
            rd_sha256_hex(req->body, req->body_len, body_hash);
            payload = body_hash;
        }
    }
    st = assemble_canonical(&canon, req->method, &u, params->s3_rules || params->path_as_is, q2, nq2, &hdrs,
                            &signed_list, payload);
    kvs_free(q2, nq2);
    if (st != RD_OK)
        goto out;

    char sig[65];
    finish_signature(params, amz_date, &canon, &sts, sig);
    rd_buf_append(&url, req->url, (size_t)(u.path - req->url) + u.path_len);
    rd_buf_printf(&url, "?%s&X-Amz-Signature=%s", rd_buf_cstr(&query), sig);
    if (params->session_token && *params->session_token && params->omit_session_token) {
        rd_buf_puts(&url, "&X-Amz-Security-Token=");
        rd_sigv4_uri_encode(&url, params->session_token, strlen(params->session_token), 0);
    }
    if (rd_buf_failed(&hdrs) || rd_buf_failed(&signed_list) || rd_buf_failed(&scope) || rd_buf_failed(&query) ||
        rd_buf_failed(&canon) || rd_buf_failed(&sts) || rd_buf_failed(&url)) {
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        goto out;
    }
    *out_url = rd_buf_detach(&url);
    fill_debug(dbg, &canon, &sts, sig, &signed_list);
out:
    kvs_free(q, nq);
    rd_headers_free(&hs);
    rd_buf_free(&hdrs);
    rd_buf_free(&signed_list);
    rd_buf_free(&canon);
    rd_buf_free(&sts);
    rd_buf_free(&query);
    rd_buf_free(&url);
    rd_buf_free(&scope);
    return st;
}
