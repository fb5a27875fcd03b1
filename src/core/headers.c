/* headers.c — header list (see headers.h). */
#include "redduck/headers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

void rd_headers_init(rd_headers *h)
{
    h->items = NULL;
    h->count = 0;
    h->cap = 0;
}

/* Values can be secrets (Authorization, session and bearer tokens): overwritten before they are freed. */
static void free_value(char *v)
{
    if (v) {
        OPENSSL_cleanse(v, strlen(v));
        free(v);
    }
}

rd_status rd_headers_add(rd_headers *h, const char *name, const char *value)
{
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        rd_header *p = realloc(h->items, cap * sizeof *p);
        if (!p)
            return RD_E_INTERNAL;
        h->items = p;
        h->cap = cap;
    }
    char *n = strdup(name);
    char *v = strdup(value ? value : "");
    if (!n || !v) {
        free(n);
        free(v);
        return RD_E_INTERNAL;
    }
    h->items[h->count].name = n;
    h->items[h->count].value = v;
    h->count++;
    return RD_OK;
}

void rd_headers_remove(rd_headers *h, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < h->count; i++) {
        if (strcasecmp(h->items[i].name, name) == 0) {
            free(h->items[i].name);
            free_value(h->items[i].value);
        } else {
            h->items[j++] = h->items[i];
        }
    }
    h->count = j;
}

rd_status rd_headers_set(rd_headers *h, const char *name, const char *value)
{
    rd_headers_remove(h, name);
    return rd_headers_add(h, name, value);
}

const char *rd_headers_get(const rd_headers *h, const char *name)
{
    for (size_t i = 0; i < h->count; i++)
        if (strcasecmp(h->items[i].name, name) == 0)
            return h->items[i].value;
    return NULL;
}

rd_status rd_headers_copy(rd_headers *dst, const rd_headers *src)
{
    rd_headers_init(dst);
    for (size_t i = 0; i < src->count; i++) {
        if (rd_headers_add(dst, src->items[i].name, src->items[i].value) != RD_OK) {
            rd_headers_free(dst);
            return RD_E_INTERNAL;
        }
    }
    return RD_OK;
}

void rd_headers_free(rd_headers *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++) {
        free(h->items[i].name);
        free_value(h->items[i].value);
    }
    free(h->items);
    rd_headers_init(h);
}

int rd_header_is_secret(const char *name)
{
    static const char *const secret[] = {
        "authorization", "x-amz-security-token", "x-amz-sso_bearer_token", "x-aws-ec2-metadata-token",
        "cookie", "set-cookie", "proxy-authorization",
    };
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
        if (strcasecmp(name, secret[i]) == 0)
            return 1;
    return 0;
}

int rd_header_value_is_token(const char *v, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++, n++)
        if (*p < 0x20 || *p > 0x7E || n >= max)
            return 0;
    return n > 0;
}
