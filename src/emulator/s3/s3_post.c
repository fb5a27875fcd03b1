/* s3_post.c — PostObject (see s3_post.h): the multipart/form-data reader, the POST policy (signature,
 * expiration, conditions) and the upload into the store. The policy is JSON read with jansson, base64 is
 * OpenSSL's; the identities (keys, sessions, permissions) come from iam/. */
#include "emulator/s3/s3_post.h"

#include <ctype.h>
#include <jansson.h>
#include <libxml/xmlwriter.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/timeutil.h"
#include "emulator/replies.h"
#include "emulator/router.h"
#include "emulator/s3/s3_store.h"
#include "redduck/buf.h"
#include "redduck/sigv4.h"

#define MAX_BOUNDARY 70
#define MAX_PART_HEADERS 8192
#define USER_METADATA_LIMIT 2048 /* S3's: bytes of x-amz-meta-* names (without the prefix) and values */

static const char malformed_message[] = "The body of your POST request is not well-formed multipart/form-data.";
static const char policy_prefix[] = "Invalid according to Policy: ";

int rd_emu_s3_is_post_object(const rd_emu_request *req)
{
    const char *ct = req->headers ? rd_headers_get(req->headers, "Content-Type") : NULL;
    return req->method && strcmp(req->method, "POST") == 0 && ct &&
           strncasecmp(ct, "multipart/form-data", strlen("multipart/form-data")) == 0;
}

/* ---- multipart/form-data ---------------------------------------------------------------------------- */

static int malformed(rd_emu_error *err)
{
    return rd_emu_error_set(err, 400, "MalformedPOSTRequest", "%s", malformed_message);
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* A parameter's value at *p: a token (up to ';' or blank) or a quoted string, read as HTML forms write it
 * (no escapes: a browser sends a quote inside as %22 and a backslash as it is). malloc'd, NULL when
 * unterminated or out of memory; *p moves past it. */
static char *param_value(const char **p, const char *end)
{
    rd_buf b = RD_BUF_INIT;
    const char *s = *p;
    if (s < end && *s == '"') {
        for (s++; s < end && *s != '"'; s++)
            rd_buf_putc(&b, *s);
        if (s >= end) {
            rd_buf_free(&b);
            return NULL;
        }
        s++;
    } else {
        while (s < end && *s != ';' && *s != ' ' && *s != '\t')
            rd_buf_putc(&b, *s++);
    }
    *p = s;
    return rd_buf_detach(&b);
}

/* Walks "; name=value" parameters after a header's first token, calling back for each. 0, or -1 when
 * malformed. */
typedef int (*param_fn)(void *ctx, const char *name, size_t name_len, char *value);
static int each_param(const char *p, const char *end, param_fn fn, void *ctx)
{
    for (;;) {
        p = skip_space(p, end);
        if (p == end)
            return 0;
        if (*p != ';')
            return -1;
        p = skip_space(p + 1, end);
        if (p == end)
            return 0; /* a trailing ';' */
        const char *name = p;
        while (p < end && *p != '=' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t name_len = (size_t)(p - name);
        p = skip_space(p, end);
        if (name_len == 0 || p == end || *p != '=')
            return -1;
        p = skip_space(p + 1, end);
        char *value = param_value(&p, end);
        if (!value)
            return -1;
        int rc = fn(ctx, name, name_len, value); /* takes value */
        if (rc != 0)
            return rc;
    }
}

typedef struct boundary_ctx {
    char *boundary;
} boundary_ctx;

static int boundary_param(void *ctx, const char *name, size_t name_len, char *value)
{
    boundary_ctx *b = ctx;
    if (name_len == 8 && strncasecmp(name, "boundary", 8) == 0 && !b->boundary) {
        b->boundary = value;
        return 0;
    }
    free(value);
    return 0;
}

/* The boundary a Content-Type names (malloc'd), or NULL. */
static char *boundary_of(const char *ct)
{
    static const char type[] = "multipart/form-data";
    if (!ct || strncasecmp(ct, type, sizeof type - 1) != 0)
        return NULL;
    boundary_ctx b = { NULL };
    const char *p = ct + sizeof type - 1;
    if (each_param(p, p + strlen(p), boundary_param, &b) != 0 || !b.boundary || !*b.boundary ||
        strlen(b.boundary) > MAX_BOUNDARY) {
        free(b.boundary);
        return NULL;
    }
    return b.boundary;
}

typedef struct disposition {
    char *name;
    char *filename;
    int has_filename;
} disposition;

static int disposition_param(void *ctx, const char *name, size_t name_len, char *value)
{
    disposition *d = ctx;
    char **slot = NULL;
    if (name_len == 4 && strncasecmp(name, "name", 4) == 0)
        slot = &d->name;
    else if (name_len == 8 && strncasecmp(name, "filename", 8) == 0) {
        slot = &d->filename;
        d->has_filename = 1;
    }
    if (!slot) {
        free(value);
        return 0;
    }
    if (*slot) { /* the same parameter twice */
        free(value);
        return -1;
    }
    *slot = value;
    return 0;
}

/* Reads a part's headers [p, end) (CRLF-separated lines): its Content-Disposition must be form-data with a
 * name. 0 with *d filled, or -1. */
static int part_headers(const char *p, const char *end, disposition *d)
{
    memset(d, 0, sizeof *d);
    int seen = 0;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (!colon || colon == p)
            goto bad;
        size_t nlen = (size_t)(colon - p);
        const char *v = skip_space(colon + 1, line_end);
        if (nlen == 19 && strncasecmp(p, "Content-Disposition", 19) == 0) {
            static const char fd[] = "form-data";
            if (seen || (size_t)(line_end - v) < sizeof fd - 1 || strncasecmp(v, fd, sizeof fd - 1) != 0)
                goto bad;
            seen = 1;
            if (each_param(v + sizeof fd - 1, line_end, disposition_param, d) != 0)
                goto bad;
        }
        p = eol ? eol + 2 : end;
    }
    if (!seen || !d->name || !*d->name)
        goto bad;
    return 0;
bad:
    free(d->name);
    free(d->filename);
    memset(d, 0, sizeof *d);
    return -1;
}

void rd_emu_s3_post_form_free(rd_emu_s3_post_form *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++) {
        free(f->fields[i].name);
        free(f->fields[i].value);
    }
    free(f->fields);
    free(f->filename);
    memset(f, 0, sizeof *f);
}

/* The file's name as S3 substitutes it: what follows the last '/' or '\\' (a browser may send a path). */
static char *base_name(const char *s)
{
    const char *b = s;
    for (const char *p = s; *p; p++)
        if (*p == '/' || *p == '\\')
            b = p + 1;
    return strdup(b);
}

int rd_emu_s3_post_form_parse(const char *content_type, const char *body, size_t body_len,
                              rd_emu_s3_post_form *out, rd_emu_error *err)
{
    char *boundary = boundary_of(content_type);
    if (!boundary)
        return malformed(err);
    rd_emu_s3_post_form f;
    memset(&f, 0, sizeof f);
    rd_buf delim = RD_BUF_INIT; /* "\r\n--boundary" */
    rd_buf_printf(&delim, "\r\n--%s", boundary);
    free(boundary);
    if (rd_buf_failed(&delim))
        return rd_emu_error_set(err, 500, "InternalError", "out of memory reading a form");
    const char *d = rd_buf_cstr(&delim);
    const size_t dlen = delim.len;
    const char *end = body + body_len;
    int rc = -1;
    /* the body opens with the delimiter (without its leading CRLF) */
    if (!body || body_len < dlen - 2 || memcmp(body, d + 2, dlen - 2) != 0) {
        malformed(err);
        goto out;
    }
    const char *p = body + dlen - 2;
    size_t pre_data = 0;
    for (;;) {
        /* after a delimiter: "--" closes the body, CRLF opens a part */
        if ((size_t)(end - p) >= 2 && p[0] == '-' && p[1] == '-')
            break;
        if ((size_t)(end - p) < 2 || p[0] != '\r' || p[1] != '\n') {
            malformed(err);
            goto out;
        }
        p += 2;
        size_t room = (size_t)(end - p) < MAX_PART_HEADERS + 4 ? (size_t)(end - p) : MAX_PART_HEADERS + 4;
        const char *hend = memmem(p, room, "\r\n\r\n", 4);
        if (!hend) {
            malformed(err);
            goto out;
        }
        disposition disp;
        if (part_headers(p, hend, &disp) != 0) {
            malformed(err);
            goto out;
        }
        const char *data = hend + 4;
        const char *next = data <= end ? memmem(data, (size_t)(end - data), d, dlen) : NULL;
        if (!next) {
            free(disp.name);
            free(disp.filename);
            malformed(err);
            goto out;
        }
        size_t data_len = (size_t)(next - data);
        if (strcasecmp(disp.name, "file") == 0) {
            free(disp.name);
            f.has_file = 1;
            f.filename = disp.filename ? base_name(disp.filename) : strdup("");
            free(disp.filename);
            f.file_data = data;
            f.file_len = data_len;
            const char *after = next + dlen; /* the fields after the file are ignored, the framing is not */
            if ((size_t)(end - after) < 2 || !((after[0] == '-' && after[1] == '-') ||
                                               (after[0] == '\r' && after[1] == '\n'))) {
                malformed(err);
                goto out;
            }
            if (!f.filename) {
                rd_emu_error_set(err, 500, "InternalError", "out of memory reading a form");
                goto out;
            }
            break;
        }
        free(disp.filename);
        pre_data += (size_t)(next + dlen - p);
        if (pre_data > RD_EMU_S3_POST_MAX_PRE_DATA) {
            free(disp.name);
            rd_emu_error_set(err, 400, "MaxPostPreDataLengthExceeded",
                             "Your POST request fields preceding the upload file were too large.");
            goto out;
        }
        if (f.count >= RD_EMU_S3_POST_MAX_FIELDS) {
            free(disp.name);
            malformed(err);
            goto out;
        }
        rd_emu_s3_post_field *grown = realloc(f.fields, (f.count + 1) * sizeof *grown);
        char *value = malloc(data_len + 1);
        if (!grown || !value) {
            if (grown)
                f.fields = grown;
            free(value);
            free(disp.name);
            rd_emu_error_set(err, 500, "InternalError", "out of memory reading a form");
            goto out;
        }
        f.fields = grown;
        memcpy(value, data, data_len);
        value[data_len] = '\0';
        f.fields[f.count++] = (rd_emu_s3_post_field){ disp.name, value, data_len };
        p = next + dlen;
    }
    if (!f.has_file) {
        rd_emu_error_set(err, 400, "InvalidArgument", "POST requires exactly one file upload per request.");
        goto out;
    }
    rc = 0;
    *out = f;
out:
    if (rc != 0)
        rd_emu_s3_post_form_free(&f);
    rd_buf_free(&delim);
    return rc;
}

const char *rd_emu_s3_post_form_get(const rd_emu_s3_post_form *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcasecmp(f->fields[i].name, name) == 0)
            return f->fields[i].value;
    return NULL;
}

char *rd_emu_s3_post_key(const rd_emu_s3_post_form *f)
{
    const char *key = rd_emu_s3_post_form_get(f, "key");
    if (!key)
        return NULL;
    static const char var[] = "${filename}";
    rd_buf b = RD_BUF_INIT;
    const char *hit = strstr(key, var);
    if (hit) {
        rd_buf_append(&b, key, (size_t)(hit - key));
        rd_buf_puts(&b, f->filename ? f->filename : "");
        rd_buf_puts(&b, hit + sizeof var - 1);
    } else {
        rd_buf_puts(&b, key);
    }
    return rd_buf_detach(&b);
}

/* ---- the policy ------------------------------------------------------------------------------------- */

/* ISO 8601 UTC as S3 reads a policy's expiration: "YYYY-MM-DDTHH:MM:SSZ", optionally with fractions of a
 * second. 0 on success. */
static int parse_expiration(const char *s, time_t *out)
{
    size_t n = strlen(s);
    /* S3's form only: "YYYY-MM-DDTHH:MM:SS[.fff]Z" */
    if (n < 20 || s[10] != 'T' || s[n - 1] != 'Z')
        return -1;
    return rd_time_parse_iso8601(s, out);
}

/* The fields a policy's conditions have named (lowercase), for the extra-fields check. */
typedef struct covered {
    char **names;
    size_t count;
} covered;

static int cover(covered *c, const char *name)
{
    char **grown = realloc(c->names, (c->count + 1) * sizeof *grown);
    if (!grown)
        return -1;
    c->names = grown;
    c->names[c->count] = strdup(name);
    if (!c->names[c->count])
        return -1;
    for (char *q = c->names[c->count]; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    c->count++;
    return 0;
}

static int is_covered(const covered *c, const char *name)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcasecmp(c->names[i], name) == 0)
            return 1;
    return 0;
}

static int condition_failed(rd_emu_error *err, const char *op, const char *name, const char *value)
{
    json_t *a = json_pack("[s, s+, s]", op, "$", name, value);
    char *text = a ? json_dumps(a, JSON_ENCODE_ANY) : NULL;
    rd_emu_error_set(err, 403, "AccessDenied", "%sPolicy Condition failed: %s", policy_prefix,
                     text ? text : "[]");
    free(text);
    json_decref(a);
    return -1;
}

/* A condition S3 cannot read: reported as failed, echoing it. */
static int condition_unreadable(rd_emu_error *err, json_t *cond)
{
    char *text = json_dumps(cond, JSON_ENCODE_ANY);
    rd_emu_error_set(err, 403, "AccessDenied", "%sPolicy Condition failed: %s", policy_prefix, text ? text : "");
    free(text);
    return -1;
}

/* The value a condition checks: the request's bucket, the (substituted) key, or the form's field. */
static const char *field_value(const rd_emu_s3_post_form *f, const char *name, const char *bucket,
                               const char *key)
{
    if (strcasecmp(name, "bucket") == 0)
        return bucket;
    if (strcasecmp(name, "key") == 0)
        return key;
    return rd_emu_s3_post_form_get(f, name);
}

/* starts-with: for Content-Type, a comma-separated list whose every member starts with prefix. */
static int starts_with(const char *name, const char *value, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strcasecmp(name, "Content-Type") != 0 || !strchr(value, ','))
        return strncmp(value, prefix, pl) == 0;
    const char *p = value;
    for (;;) {
        while (*p == ' ')
            p++;
        if (strncmp(p, prefix, pl) != 0)
            return 0;
        const char *comma = strchr(p, ',');
        if (!comma)
            return 1;
        p = comma + 1;
    }
}

static int json_length(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return *out >= 0;
    }
    if (json_is_string(v)) { /* S3 also reads numbers written as strings */
        const char *s = json_string_value(v);
        char *end = NULL;
        if (!*s || !isdigit((unsigned char)*s))
            return 0;
        long long n = strtoll(s, &end, 10);
        *out = (int64_t)n;
        return *end == '\0' && n >= 0;
    }
    return 0;
}

/* Field names no condition needs to name. */
static int exempt_field(const char *name)
{
    return strcasecmp(name, "x-amz-signature") == 0 || strcasecmp(name, "file") == 0 ||
           strcasecmp(name, "policy") == 0 || strncasecmp(name, "x-ignore-", 9) == 0;
}

int rd_emu_s3_post_policy_check(const char *policy_json, size_t len, const rd_emu_s3_post_form *f,
                                const char *bucket, const char *key, time_t now, rd_emu_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(policy_json, len, 0, &jerr);
    covered cov = { NULL, 0 };
    int rc = -1, have_range = 0;
    int64_t range_min = 0, range_max = 0;
    if (!json_is_object(root)) {
        rd_emu_error_set(err, 400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.");
        goto out;
    }
    json_t *exp = json_object_get(root, "expiration"), *conds = json_object_get(root, "conditions");
    time_t expires;
    if (!exp) {
        rd_emu_error_set(err, 400, "InvalidPolicyDocument", "Invalid Policy: Policy missing expiration.");
        goto out;
    }
    if (!json_is_string(exp) || parse_expiration(json_string_value(exp), &expires) != 0) {
        rd_emu_error_set(err, 400, "InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value.");
        goto out;
    }
    if (!json_is_array(conds)) {
        rd_emu_error_set(err, 400, "InvalidPolicyDocument", "Invalid Policy: Policy missing conditions.");
        goto out;
    }
    if (now > expires) {
        rd_emu_error_set(err, 403, "AccessDenied", "%sPolicy expired.", policy_prefix);
        goto out;
    }
    size_t i;
    json_t *cond;
    json_array_foreach(conds, i, cond) {
        if (json_is_object(cond)) { /* {"name": "value"}: exact match */
            const char *name;
            json_t *v;
            if (json_object_size(cond) == 0) {
                condition_unreadable(err, cond);
                goto out;
            }
            json_object_foreach(cond, name, v) {
                if (!json_is_string(v)) {
                    condition_unreadable(err, cond);
                    goto out;
                }
                const char *have = field_value(f, name, bucket, key);
                if (!have || strcmp(have, json_string_value(v)) != 0) {
                    condition_failed(err, "eq", name, json_string_value(v));
                    goto out;
                }
                if (cover(&cov, name) != 0)
                    goto oom;
            }
            continue;
        }
        const char *op = json_is_array(cond) ? json_string_value(json_array_get(cond, 0)) : NULL;
        if (!op || json_array_size(cond) != 3) {
            condition_unreadable(err, cond);
            goto out;
        }
        if (strcasecmp(op, "content-length-range") == 0) {
            int64_t lo, hi;
            if (!json_length(json_array_get(cond, 1), &lo) || !json_length(json_array_get(cond, 2), &hi)) {
                condition_unreadable(err, cond);
                goto out;
            }
            if (!have_range || lo > range_min) /* several ranges: the tightest */
                range_min = lo;
            if (!have_range || hi < range_max)
                range_max = hi;
            have_range = 1;
            continue;
        }
        const char *ref = json_string_value(json_array_get(cond, 1));
        const char *want = json_string_value(json_array_get(cond, 2));
        int eq = strcasecmp(op, "eq") == 0, sw = strcasecmp(op, "starts-with") == 0;
        if ((!eq && !sw) || !ref || ref[0] != '$' || !ref[1] || !want) {
            condition_unreadable(err, cond);
            goto out;
        }
        const char *name = ref + 1;
        const char *have = field_value(f, name, bucket, key);
        if (!have || (eq ? strcmp(have, want) != 0 : !starts_with(name, have, want))) {
            condition_failed(err, eq ? "eq" : "starts-with", name, want);
            goto out;
        }
        if (cover(&cov, name) != 0)
            goto oom;
    }
    for (size_t k = 0; k < f->count; k++) {
        if (!exempt_field(f->fields[k].name) && !is_covered(&cov, f->fields[k].name)) {
            rd_emu_error_set(err, 403, "AccessDenied", "%sExtra input fields: %s", policy_prefix, f->fields[k].name);
            goto out;
        }
    }
    if (have_range && (int64_t)f->file_len < range_min) {
        rd_emu_error_set(err, 400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size");
        goto out;
    }
    if (have_range && (uint64_t)f->file_len > (uint64_t)range_max) {
        rd_emu_error_set(err, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
        goto out;
    }
    rc = 0;
    goto out;
oom:
    rd_emu_error_set(err, 500, "InternalError", "out of memory checking a POST policy");
out:
    for (size_t k = 0; k < cov.count; k++)
        free(cov.names[k]);
    free(cov.names);
    json_decref(root);
    return rc;
}

/* ---- the signature ---------------------------------------------------------------------------------- */

void rd_emu_s3_post_signature(const char *secret, const char *date8, const char *region, const char *service,
                              const char *policy_b64, char out[65])
{
    rd_sigv4_sign_string(secret, date8, region, service, policy_b64, strlen(policy_b64), out);
}

/* Decodes base64 (OpenSSL's decoder: padding and line breaks as MIME allows). malloc'd, NUL-terminated, or
 * NULL when not base64. */
static char *base64_decode(const char *in, size_t len, size_t *out_len)
{
    if (len > INT32_MAX)
        return NULL;
    unsigned char *out = malloc(len + 80); /* decoding never grows; the decoder's own slack */
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int n = 0, m = 0, ok = out && ctx;
    if (ok) {
        EVP_DecodeInit(ctx);
        ok = EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *)in, (int)len) >= 0 &&
             EVP_DecodeFinal(ctx, out + n, &m) >= 0;
    }
    EVP_ENCODE_CTX_free(ctx);
    if (!ok) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)(n + m);
    out[*out_len] = '\0';
    return (char *)out;
}

/* "AKID/YYYYMMDD/region/service/aws4_request" into its parts (copies in buf). 1 when well-formed. */
static int split_credential(const char *cred, char *buf, size_t cap, char *parts[5])
{
    if (strlen(cred) >= cap)
        return 0;
    strcpy(buf, cred);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == 5)
            return 0;
        parts[n++] = t;
    }
    return n == 5 && strlen(parts[1]) == 8 && strcmp(parts[4], "aws4_request") == 0;
}

/* ---- the operation ---------------------------------------------------------------------------------- */

static void missing_field(rd_emu_response *resp, const char *name, const char *bucket, const char *request_id)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "Bucket POST must contain a field named '%s'.  If it is specified, please check the order of the "
             "fields.",
             name);
    rd_emu_reply_s3_error(resp, 400, "InvalidArgument", msg, bucket, request_id);
}

static void reply_emu_error(rd_emu *emu, rd_emu_response *resp, const rd_emu_error *e, const char *bucket,
                            const char *request_id)
{
    if (e->http_status >= 500) { /* what failed goes to the log; the client reads S3's words */
        rd_log_write(&emu->log, RD_LOG_WARN, "s3: PostObject to %s: %s", bucket, e->message);
        rd_emu_reply_s3_error(resp, e->http_status, e->code, "We encountered an internal error. Please try again.",
                              bucket, request_id);
        return;
    }
    rd_emu_reply_s3_error(resp, e->http_status ? e->http_status : 400, e->code, e->message, bucket, request_id);
}

/* The object's URL for Location, addressed as the request was: virtual-hosted when the Host names the bucket
 * ("bucket.s3…", "bucket.localhost"), else path-style. */
static void object_url(rd_buf *out, const rd_emu_request *req, const char *bucket, const char *key)
{
    const char *host = req->host ? req->host : "localhost";
    size_t bl = strlen(bucket);
    rd_buf_printf(out, "http://%s/", host);
    if (!(strncmp(host, bucket, bl) == 0 && host[bl] == '.')) {
        rd_sigv4_uri_encode(out, bucket, bl, 0);
        rd_buf_putc(out, '/');
    }
    rd_sigv4_uri_encode(out, key, strlen(key), 0); /* S3 encodes the key's slashes here too */
}

static void reply_success(const rd_emu_s3_post_form *f, const rd_emu_request *req, const char *bucket,
                          const char *key, const rd_s3_object_info *info, rd_emu_response *resp)
{
    rd_buf url = RD_BUF_INIT;
    object_url(&url, req, bucket, key);
    rd_headers_set(&resp->headers, "ETag", info->etag);
    const char *redirect = rd_emu_s3_post_form_get(f, "success_action_redirect");
    if (!redirect)
        redirect = rd_emu_s3_post_form_get(f, "redirect");
    if (redirect && (strncmp(redirect, "http://", 7) == 0 || strncmp(redirect, "https://", 8) == 0)) {
        rd_buf loc = RD_BUF_INIT;
        rd_buf_printf(&loc, "%s%sbucket=", redirect, strchr(redirect, '?') ? "&" : "?");
        rd_sigv4_uri_encode(&loc, bucket, strlen(bucket), 0);
        rd_buf_puts(&loc, "&key=");
        rd_sigv4_uri_encode(&loc, key, strlen(key), 0);
        rd_buf_puts(&loc, "&etag=");
        rd_sigv4_uri_encode(&loc, info->etag, strlen(info->etag), 0);
        resp->status = 303;
        rd_headers_set(&resp->headers, "Location", rd_buf_cstr(&loc));
        rd_buf_free(&loc);
        rd_buf_free(&url);
        return;
    }
    const char *status = rd_emu_s3_post_form_get(f, "success_action_status");
    rd_headers_set(&resp->headers, "Location", rd_buf_cstr(&url));
    if (status && strcmp(status, "201") == 0) {
        xmlBufferPtr buf = xmlBufferCreate();
        xmlTextWriterPtr w = xmlNewTextWriterMemory(buf, 0);
        xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL);
        xmlTextWriterStartElement(w, BAD_CAST "PostResponse");
        xmlTextWriterWriteElement(w, BAD_CAST "Location", BAD_CAST rd_buf_cstr(&url));
        xmlTextWriterWriteElement(w, BAD_CAST "Bucket", BAD_CAST bucket);
        xmlTextWriterWriteElement(w, BAD_CAST "Key", BAD_CAST key);
        xmlTextWriterWriteElement(w, BAD_CAST "ETag", BAD_CAST info->etag);
        xmlTextWriterEndElement(w);
        xmlTextWriterEndDocument(w);
        xmlFreeTextWriter(w);
        rd_buf_reset(&resp->body);
        rd_buf_append(&resp->body, xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
        xmlBufferFree(buf);
        rd_headers_set(&resp->headers, "Content-Type", "application/xml");
        resp->status = 201;
    } else {
        rd_buf_reset(&resp->body);
        resp->status = status && strcmp(status, "200") == 0 ? 200 : 204;
    }
    rd_buf_free(&url);
}

/* What the object keeps from the form: its x-amz-meta-* fields (names lowercased) and the REST headers a
 * form may set. */
static int set_meta(rd_s3_put *w, const rd_emu_s3_post_form *f, rd_emu_error *err)
{
    static const char *const kept[] = { "Cache-Control", "Content-Disposition", "Content-Encoding",
                                        "Content-Language", "Expires" };
    rd_s3_meta m;
    memset(&m, 0, sizeof m);
    rd_headers_init(&m.headers);
    size_t user = 0;
    for (size_t i = 0; i < f->count; i++) {
        const char *name = f->fields[i].name;
        if (strncasecmp(name, "x-amz-meta-", 11) == 0 && name[11]) {
            user += strlen(name + 11) + strlen(f->fields[i].value);
            char *lower = strdup(name);
            if (!lower) {
                rd_s3_meta_free(&m);
                return rd_emu_error_set(err, 500, "InternalError", "out of memory keeping a form's metadata");
            }
            for (char *q = lower; *q; q++)
                *q = (char)tolower((unsigned char)*q);
            if (!rd_headers_get(&m.headers, lower))
                rd_headers_add(&m.headers, lower, f->fields[i].value);
            free(lower);
        }
    }
    if (user > USER_METADATA_LIMIT) {
        rd_s3_meta_free(&m);
        return rd_emu_error_set(err, 400, "MetadataTooLarge",
                                "Your metadata headers exceed the maximum allowed metadata size.");
    }
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        const char *v = rd_emu_s3_post_form_get(f, kept[i]);
        if (v)
            rd_headers_add(&m.headers, kept[i], v);
    }
    int rc = rd_s3_put_set_meta(w, &m, err);
    rd_s3_meta_free(&m);
    return rc;
}

/* Verifies the form's credential and signature. 0 with *info filled (the caller), or 1 with resp answered. */
static int verify_signature(rd_emu *emu, const rd_emu_s3_post_form *f, const char *bucket, const char *request_id,
                            rd_emu_auth_info *info, rd_emu_response *resp)
{
    if (!rd_emu_s3_post_form_get(f, "x-amz-algorithm") && rd_emu_s3_post_form_get(f, "AWSAccessKeyId")) {
        /* a signature version 2 form, which S3 refuses in its newer regions in these words */
        rd_emu_reply_s3_error(resp, 400, "InvalidRequest",
                              "The authorization mechanism you have provided is not supported. Please use "
                              "AWS4-HMAC-SHA256.",
                              bucket, request_id);
        return 1;
    }
    static const char *const required[] = { "x-amz-algorithm", "x-amz-credential", "x-amz-date",
                                            "x-amz-signature" };
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        if (!rd_emu_s3_post_form_get(f, required[i])) {
            missing_field(resp, required[i], bucket, request_id);
            return 1;
        }
    }
    if (strcmp(rd_emu_s3_post_form_get(f, "x-amz-algorithm"), "AWS4-HMAC-SHA256") != 0) {
        rd_emu_reply_s3_error(resp, 400, "InvalidArgument",
                              "The x-amz-algorithm field must be AWS4-HMAC-SHA256 (the emulator accepts only SigV4 "
                              "POST policies)",
                              bucket, request_id);
        return 1;
    }
    char buf[512], *parts[5];
    if (!split_credential(rd_emu_s3_post_form_get(f, "x-amz-credential"), buf, sizeof buf, parts)) {
        rd_emu_reply_s3_error(resp, 400, "InvalidArgument",
                              "The x-amz-credential field is malformed: expected "
                              "ACCESS_KEY/YYYYMMDD/REGION/s3/aws4_request",
                              bucket, request_id);
        return 1;
    }
    memset(info, 0, sizeof *info);
    snprintf(info->access_key_id, sizeof info->access_key_id, "%s", parts[0]);
    snprintf(info->region, sizeof info->region, "%s", parts[2]);
    snprintf(info->service, sizeof info->service, "%s", parts[3]);
    const char *token = rd_emu_s3_post_form_get(f, "x-amz-security-token");
    rd_emu_auth_result res = rd_emu_auth_check_principal(emu->ids, parts[0], token && *token ? token : NULL,
                                                         time(NULL), info);
    if (res == RD_AUTH_OK) {
        char want[65];
        const char *sig = rd_emu_s3_post_form_get(f, "x-amz-signature");
        rd_emu_s3_post_signature(info->principal.secret, parts[1], parts[2], parts[3],
                                 rd_emu_s3_post_form_get(f, "policy"), want);
        if (strlen(sig) != 64 || CRYPTO_memcmp(want, sig, 64) != 0)
            res = RD_AUTH_BAD_SIGNATURE;
        OPENSSL_cleanse(want, sizeof want);
    }
    if (res != RD_AUTH_OK) {
        rd_emu_reply_auth_error(RD_EMU_API_S3, res, bucket, request_id, resp);
        return 1;
    }
    return 0;
}

void rd_emu_s3_post_object(rd_emu *emu, struct rd_s3_store *store, const char *bucket, const rd_emu_request *req,
                           rd_emu_response *resp)
{
    rd_emu_s3_post_form f;
    rd_emu_error e;
    char *key = NULL, *policy = NULL;
    rd_s3_put *w = NULL;
    rd_buf arn = RD_BUF_INIT;
    if (!emu || !emu->ids) {
        rd_emu_reply_s3_error(resp, 500, "InternalError", "We encountered an internal error. Please try again.",
                              bucket, req->request_id);
        return;
    }
    if (rd_emu_s3_post_form_parse(rd_headers_get(req->headers, "Content-Type"), req->body, req->body_len, &f, &e) !=
        0) {
        reply_emu_error(emu, resp, &e, bucket, req->request_id);
        return;
    }
    const char *policy_b64 = rd_emu_s3_post_form_get(&f, "policy");
    if (!(key = rd_emu_s3_post_key(&f))) {
        missing_field(resp, "key", bucket, req->request_id);
        goto out;
    }
    if (!policy_b64) { /* an anonymous upload: the emulator's buckets are never public */
        rd_emu_reply_s3_error(resp, 403, "AccessDenied", "Access Denied", bucket, req->request_id);
        goto out;
    }
    rd_emu_auth_info info;
    if (verify_signature(emu, &f, bucket, req->request_id, &info, resp))
        goto out;
    size_t policy_len = 0;
    if (!(policy = base64_decode(policy_b64, strlen(policy_b64), &policy_len))) {
        rd_emu_reply_s3_error(resp, 400, "InvalidPolicyDocument", "Invalid Policy: Invalid Base64 Encoding.", bucket,
                              req->request_id);
        goto out;
    }
    if (rd_emu_s3_post_policy_check(policy, policy_len, &f, bucket, key, time(NULL), &e) != 0) {
        reply_emu_error(emu, resp, &e, bucket, req->request_id);
        goto out;
    }
    rd_emu_request caller = *req;
    rd_emu_request_set_caller(emu, &caller, &info);
    rd_buf_printf(&arn, "arn:aws:s3:::%s/%s", bucket, key);
    if (!rd_emu_allowed(emu, &caller, "s3:PutObject", rd_buf_cstr(&arn))) {
        rd_emu_reply_s3_error(resp, 403, "AccessDenied", "Access Denied", bucket, req->request_id);
        goto out;
    }
    unsigned char md5[16];
    size_t md5_len = 0;
    const char *content_md5 = rd_emu_s3_post_form_get(&f, "Content-MD5");
    if (content_md5) {
        char *raw = base64_decode(content_md5, strlen(content_md5), &md5_len);
        if (!raw || md5_len != sizeof md5) {
            free(raw);
            rd_emu_reply_s3_error(resp, 400, "InvalidDigest", "The Content-MD5 you specified was not valid.", bucket,
                                  req->request_id);
            goto out;
        }
        memcpy(md5, raw, sizeof md5);
        free(raw);
    }
    rd_s3_object_info oi;
    memset(&oi, 0, sizeof oi);
    if (rd_s3_store_put_begin(store, bucket, key, rd_emu_s3_post_form_get(&f, "Content-Type"), &w, &e) != 0 ||
        rd_s3_put_write(w, f.file_data, f.file_len, &e) != 0) {
        reply_emu_error(emu, resp, &e, bucket, req->request_id);
        goto out;
    }
    if (set_meta(w, &f, &e) != 0) {
        reply_emu_error(emu, resp, &e, bucket, req->request_id);
        goto out;
    }
    rd_s3_put *committing = w;
    w = NULL; /* commit frees the writer whatever the outcome */
    if (rd_s3_put_commit(committing, md5_len ? md5 : NULL, &oi, &e) != 0) {
        reply_emu_error(emu, resp, &e, bucket, req->request_id);
        goto out;
    }
    reply_success(&f, req, bucket, key, &oi, resp);
    rd_s3_object_info_free(&oi);
out:
    rd_s3_put_abort(w);
    rd_buf_free(&arn);
    free(policy);
    free(key);
    rd_emu_s3_post_form_free(&f);
}
