/* auth.c — SigV4 verification for the emulator (see auth.h). Uses the one signer (redduck/sigv4.h). */
#include "emulator/iam/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "emulator/form.h"
#include "redduck/buf.h"
#include "redduck/sigv4.h"

#define MAX_SKEW_SECONDS (15 * 60)

typedef struct parsed_auth {
    char key[128], date[16], region[64], service[64];
    char signed_headers[1024];
    char signature[80];
} parsed_auth;

/* "AKID/20150830/us-east-1/iam/aws4_request" */
static int parse_credential(const char *cred, size_t len, parsed_auth *a)
{
    char buf[512];
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, cred, len);
    buf[len] = '\0';
    char *parts[5];
    char *save = NULL;
    int n = 0;
    for (char *t = strtok_r(buf, "/", &save); t && n < 5; t = strtok_r(NULL, "/", &save))
        parts[n++] = t;
    if (n != 5 || strcmp(parts[4], "aws4_request") != 0)
        return 0;
    snprintf(a->key, sizeof a->key, "%s", parts[0]);
    snprintf(a->date, sizeof a->date, "%s", parts[1]);
    snprintf(a->region, sizeof a->region, "%s", parts[2]);
    snprintf(a->service, sizeof a->service, "%s", parts[3]);
    return 1;
}

/* Finds "Name=value" in the Authorization header's comma-separated list. */
static int auth_field(const char *h, const char *name, const char **val, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = h;
    while ((p = strstr(p, name)) != NULL) {
        if ((p == h || p[-1] == ' ' || p[-1] == ',') && p[nl] == '=') {
            *val = p + nl + 1;
            const char *end = strchr(*val, ',');
            *len = end ? (size_t)(end - *val) : strlen(*val);
            while (*len && (*val)[*len - 1] == ' ')
                (*len)--;
            return 1;
        }
        p += nl;
    }
    return 0;
}

static int parse_header_auth(const char *h, parsed_auth *a)
{
    if (strncmp(h, "AWS4-HMAC-SHA256 ", 17) != 0)
        return 0;
    const char *v;
    size_t len;
    if (!auth_field(h, "Credential", &v, &len) || !parse_credential(v, len, a))
        return 0;
    if (!auth_field(h, "SignedHeaders", &v, &len) || len >= sizeof a->signed_headers)
        return 0;
    memcpy(a->signed_headers, v, len);
    a->signed_headers[len] = '\0';
    if (!auth_field(h, "Signature", &v, &len) || len != 64)
        return 0;
    memcpy(a->signature, v, len);
    a->signature[len] = '\0';
    return 1;
}

static const char *query_of(const char *raw_target)
{
    const char *q = strchr(raw_target, '?');
    return q ? q + 1 : "";
}

int rd_emu_auth_scope(const char *raw_target, const rd_headers *headers, rd_emu_auth_info *info)
{
    parsed_auth a;
    memset(&a, 0, sizeof a);
    const char *h = rd_headers_get(headers, "Authorization");
    int ok = 0;
    if (h) {
        ok = parse_header_auth(h, &a);
    } else {
        rd_form q;
        const char *qs = query_of(raw_target);
        if (rd_form_parse(qs, strlen(qs), 0, &q) == RD_OK) {
            const char *cred = rd_form_get(&q, "X-Amz-Credential");
            ok = cred && parse_credential(cred, strlen(cred), &a);
            rd_form_free(&q);
        }
    }
    if (!ok)
        return 0;
    snprintf(info->access_key_id, sizeof info->access_key_id, "%s", a.key);
    snprintf(info->region, sizeof info->region, "%s", a.region);
    snprintf(info->service, sizeof info->service, "%s", a.service);
    return 1;
}

/* Copies the headers named in the ';'-separated list (every value of each). */
static int pick_signed_headers(const rd_headers *in, const char *list, rd_headers *out)
{
    char names[1024];
    snprintf(names, sizeof names, "%s", list);
    char *save = NULL;
    rd_headers_init(out);
    for (char *n = strtok_r(names, ";", &save); n; n = strtok_r(NULL, ";", &save)) {
        int found = 0;
        for (size_t i = 0; i < in->count; i++) {
            if (strcasecmp(in->items[i].name, n) == 0) {
                rd_headers_add(out, in->items[i].name, in->items[i].value);
                found = 1;
            }
        }
        if (!found)
            return 0;
    }
    return 1;
}

rd_emu_auth_result rd_emu_auth_check_principal(rd_emu_ids *ids, const char *key, const char *token, time_t now,
                                               rd_emu_auth_info *info)
{
    if (!rd_emu_ids_find_key(ids, key, &info->principal))
        return RD_AUTH_UNKNOWN_KEY;
    if (info->principal.session_token) {
        if (!token || strcmp(token, info->principal.session_token) != 0)
            return RD_AUTH_BAD_TOKEN;
        if (info->principal.expiration && now > info->principal.expiration)
            return RD_AUTH_EXPIRED_TOKEN;
    }
    return RD_AUTH_OK;
}

static int skewed(time_t when, time_t now)
{
    return when > now + MAX_SKEW_SECONDS || when < now - MAX_SKEW_SECONDS;
}

/* Rebuilds raw_target without the presign parameters (keeping the others in order). */
static char *strip_presign_params(const char *raw_target)
{
    rd_buf b = RD_BUF_INIT;
    const char *q = strchr(raw_target, '?');
    rd_buf_append(&b, raw_target, q ? (size_t)(q - raw_target) : strlen(raw_target));
    if (!q)
        return rd_buf_detach(&b);
    int first = 1;
    const char *p = q + 1;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (strncmp(p, "X-Amz-", 6) != 0) {
            rd_buf_putc(&b, first ? '?' : '&');
            rd_buf_append(&b, p, len);
            first = 0;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return rd_buf_detach(&b);
}

static rd_emu_auth_result verify_presigned(rd_emu_ids *ids, const char *method, const char *raw_target,
                                           const rd_headers *headers, time_t now, rd_emu_auth_info *info)
{
    rd_form q;
    const char *qs = query_of(raw_target);
    if (rd_form_parse(qs, strlen(qs), 0, &q) != RD_OK)
        return RD_AUTH_MALFORMED;
    rd_emu_auth_result res = RD_AUTH_MALFORMED;
    parsed_auth a;
    memset(&a, 0, sizeof a);
    const char *alg = rd_form_get(&q, "X-Amz-Algorithm"), *cred = rd_form_get(&q, "X-Amz-Credential"),
               *date = rd_form_get(&q, "X-Amz-Date"), *expires = rd_form_get(&q, "X-Amz-Expires"),
               *sh = rd_form_get(&q, "X-Amz-SignedHeaders"), *sig = rd_form_get(&q, "X-Amz-Signature"),
               *token = rd_form_get(&q, "X-Amz-Security-Token");
    time_t when;
    if (!alg || strcmp(alg, "AWS4-HMAC-SHA256") != 0 || !cred || !parse_credential(cred, strlen(cred), &a) || !date ||
        rd_sigv4_parse_amz_date(date, &when) != 0 || !sh || !sig || !expires)
        goto out;
    snprintf(info->access_key_id, sizeof info->access_key_id, "%s", a.key);
    snprintf(info->region, sizeof info->region, "%s", a.region);
    snprintf(info->service, sizeof info->service, "%s", a.service);
    if ((res = rd_emu_auth_check_principal(ids, a.key, token, now, info)) != RD_AUTH_OK)
        goto out;
    if (now > when + atol(expires)) {
        res = RD_AUTH_EXPIRED_PRESIGN;
        goto out;
    }
    rd_headers signed_h;
    if (!pick_signed_headers(headers, sh, &signed_h)) {
        rd_headers_free(&signed_h);
        res = RD_AUTH_BAD_SIGNATURE;
        goto out;
    }
    const char *host = rd_headers_get(headers, "Host");
    char *stripped = strip_presign_params(raw_target);
    rd_buf url = RD_BUF_INIT;
    rd_buf_printf(&url, "http://%s%s", host ? host : "localhost", stripped);
    free(stripped);
    rd_sigv4_params params = { a.service, a.region, when, a.key, info->principal.secret, token,
                               strcmp(a.service, "s3") == 0, 0, 0, 0 };
    rd_sigv4_request req = { method, rd_buf_cstr(&url), &signed_h, NULL, 0, NULL };
    char *out_url = NULL;
    rd_error err;
    res = RD_AUTH_BAD_SIGNATURE;
    if (rd_sigv4_presign_url(&params, &req, atoi(expires), &out_url, NULL, &err) == RD_OK) {
        const char *p = strstr(out_url, "X-Amz-Signature=");
        if (p && strlen(p + 16) >= 64 && strlen(sig) == 64 && CRYPTO_memcmp(p + 16, sig, 64) == 0)
            res = RD_AUTH_OK;
    }
    free(out_url);
    rd_buf_free(&url);
    rd_headers_free(&signed_h);
out:
    rd_form_free(&q);
    return res;
}

/* What a header-signed request shows before its signature: a well-formed Authorization, a known key with its
 * session token, an X-Amz-Date within the allowed skew. */
static rd_emu_auth_result check_header_auth(rd_emu_ids *ids, const rd_headers *headers, time_t now,
                                            rd_emu_auth_info *info, parsed_auth *a, time_t *when)
{
    const char *h = rd_headers_get(headers, "Authorization");
    memset(a, 0, sizeof *a);
    if (!parse_header_auth(h, a))
        return RD_AUTH_MALFORMED;
    snprintf(info->access_key_id, sizeof info->access_key_id, "%s", a->key);
    snprintf(info->region, sizeof info->region, "%s", a->region);
    snprintf(info->service, sizeof info->service, "%s", a->service);
    memcpy(info->signature, a->signature, sizeof info->signature);
    rd_emu_auth_result res =
        rd_emu_auth_check_principal(ids, a->key, rd_headers_get(headers, "X-Amz-Security-Token"), now, info);
    if (res != RD_AUTH_OK)
        return res;
    const char *date = rd_headers_get(headers, "X-Amz-Date");
    if (!date || rd_sigv4_parse_amz_date(date, when) != 0)
        return RD_AUTH_MALFORMED;
    if (skewed(*when, now))
        return RD_AUTH_SKEWED;
    return RD_AUTH_OK;
}

rd_emu_auth_result rd_emu_auth_precheck(rd_emu_ids *ids, const rd_headers *headers, time_t now,
                                        rd_emu_auth_info *info)
{
    memset(info, 0, sizeof *info);
    if (!rd_headers_get(headers, "Authorization"))
        return RD_AUTH_MISSING;
    parsed_auth a;
    time_t when;
    return check_header_auth(ids, headers, now, info, &a, &when);
}

rd_emu_auth_result rd_emu_auth_verify(rd_emu_ids *ids, const char *method, const char *raw_target,
                                      const rd_headers *headers, const char *body, size_t body_len, time_t now,
                                      rd_emu_auth_info *info)
{
    memset(info, 0, sizeof *info);
    const char *h = rd_headers_get(headers, "Authorization");
    if (!h) {
        if (strstr(raw_target, "X-Amz-Signature="))
            return verify_presigned(ids, method, raw_target, headers, now, info);
        return RD_AUTH_MISSING;
    }
    parsed_auth a;
    time_t when;
    rd_emu_auth_result res = check_header_auth(ids, headers, now, info, &a, &when);
    if (res != RD_AUTH_OK)
        return res;
    rd_headers signed_h;
    if (!pick_signed_headers(headers, a.signed_headers, &signed_h)) {
        rd_headers_free(&signed_h);
        return RD_AUTH_BAD_SIGNATURE;
    }
    const char *host = rd_headers_get(headers, "Host");
    rd_buf url = RD_BUF_INIT;
    rd_buf_printf(&url, "http://%s%s", host ? host : "localhost", raw_target);
    int s3 = strcmp(a.service, "s3") == 0;
    /* the token is re-signed only when the client signed it */
    const char *signed_token =
        strstr(a.signed_headers, "x-amz-security-token") ? rd_headers_get(headers, "X-Amz-Security-Token") : NULL;
    rd_sigv4_params params = { a.service, a.region, when, a.key, info->principal.secret, signed_token, s3, 0, 0, 0 };
    rd_sigv4_request req = { method, rd_buf_cstr(&url), &signed_h, body, body_len,
                             s3 ? rd_headers_get(headers, "x-amz-content-sha256") : NULL };
    rd_sigv4_debug dbg;
    rd_sigv4_debug_init(&dbg);
    rd_error err;
    res = RD_AUTH_BAD_SIGNATURE;
    if (rd_sigv4_sign_headers(&params, &req, &dbg, &err) == RD_OK && CRYPTO_memcmp(dbg.signature, a.signature, 64) == 0)
        res = RD_AUTH_OK;
    rd_sigv4_debug_free(&dbg);
    rd_buf_free(&url);
    rd_headers_free(&signed_h);
    return res;
}

int rd_emu_auth_is_sigv2(const char *raw_target, const rd_headers *headers)
{
    const char *h = rd_headers_get(headers, "Authorization");
    if (h)
        return strncmp(h, "AWS ", 4) == 0 && strchr(h + 4, ':') != NULL;
    rd_form q;
    const char *qs = query_of(raw_target);
    if (rd_form_parse(qs, strlen(qs), 0, &q) != RD_OK)
        return 0;
    int v2 = rd_form_has(&q, "AWSAccessKeyId") && rd_form_has(&q, "Signature") && !rd_form_has(&q, "X-Amz-Signature");
    rd_form_free(&q);
    return v2;
}
