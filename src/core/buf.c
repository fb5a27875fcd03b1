/* buf.c — growable byte buffer (see buf.h). */
#include "redduck/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void rd_buf_init(rd_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}

/* Out of memory: wipe and drop the content, and mark the buffer failed (see buf.h). */
static rd_status buf_fail(rd_buf *b)
{
    if (b->data) {
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    }
    rd_buf_init(b);
    b->failed = 1;
    return RD_E_INTERNAL;
}

/* Room for extra more bytes plus the NUL. Never more than PTRDIFF_MAX in all (no object may be larger). */
static rd_status buf_reserve(rd_buf *b, size_t extra)
{
    if (b->failed)
        return RD_E_INTERNAL;
    if (extra > (size_t)PTRDIFF_MAX - b->len - 1)
        return buf_fail(b);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return RD_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > (size_t)PTRDIFF_MAX / 2 ? need : cap * 2;
    /* not realloc: a moved block would leave the old bytes (maybe a secret) in freed memory */
    char *p = malloc(cap);
    if (!p)
        return buf_fail(b);
    if (b->data) {
        memcpy(p, b->data, b->len + 1);
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    }
    b->data = p;
    b->cap = cap;
    return RD_OK;
}

rd_status rd_buf_append(rd_buf *b, const void *p, size_t n)
{
    rd_status st = buf_reserve(b, n);
    if (st != RD_OK)
        return st;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return RD_OK;
}

rd_status rd_buf_puts(rd_buf *b, const char *s)
{
    return rd_buf_append(b, s, strlen(s));
}

rd_status rd_buf_putc(rd_buf *b, char c)
{
    return rd_buf_append(b, &c, 1);
}

rd_status rd_buf_vprintf(rd_buf *b, const char *fmt, va_list ap)
{
    if (b->failed)
        return RD_E_INTERNAL;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return buf_fail(b); /* a piece is missing: the text is as unusable as after out of memory */
    rd_status st = buf_reserve(b, (size_t)n);
    if (st != RD_OK)
        return st;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return RD_OK;
}

rd_status rd_buf_printf(rd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rd_status st = rd_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return st;
}

int rd_buf_failed(const rd_buf *b)
{
    return b->failed;
}

const char *rd_buf_cstr(const rd_buf *b)
{
    return b->data && !b->failed ? b->data : "";
}

void rd_buf_reset(rd_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *rd_buf_detach(rd_buf *b)
{
    char *s = b->data;
    if (b->failed)
        s = NULL;
    else if (!s)
        s = calloc(1, 1);
    rd_buf_init(b);
    return s;
}

void rd_buf_free(rd_buf *b)
{
    if (!b)
        return;
    free(b->data);
    rd_buf_init(b);
}

void rd_buf_free_secure(rd_buf *b)
{
    if (!b)
        return;
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    rd_buf_free(b);
}
