/* buf.h — the one growable byte buffer (string building, request bodies, responses).
 * Owns its heap memory; data is always NUL-terminated after a successful append (len excludes it).
 * Not thread-safe: one owner at a time.
 *
 * Out of memory is sticky: when an append cannot grow the buffer, the buffer wipes and frees what it
 * held and is marked failed; every later append is a no-op returning RD_E_INTERNAL, rd_buf_cstr gives
 * "" (never NULL, never a half string) and rd_buf_detach gives NULL. So code building text may ignore
 * the status of each append and check rd_buf_failed once, where the text is consumed (sent as a
 * request, written to a file, run as SQL). rd_buf_reset and rd_buf_free clear the failure. */
#ifndef REDDUCK_BUF_H
#define REDDUCK_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "redduck/error.h"

typedef struct rd_buf {
    char *data; /* NULL until the first append, and after a failure */
    size_t len;
    size_t cap;
    int failed; /* an append ran out of memory; see above */
} rd_buf;

#define RD_BUF_INIT { NULL, 0, 0, 0 }

void rd_buf_init(rd_buf *b);
/* Appends n bytes (may contain NULs). RD_E_INTERNAL on out of memory (the buffer is then failed) or
 * when the buffer already failed. */
rd_status rd_buf_append(rd_buf *b, const void *p, size_t n);
rd_status rd_buf_puts(rd_buf *b, const char *s);
rd_status rd_buf_putc(rd_buf *b, char c);
rd_status rd_buf_printf(rd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
rd_status rd_buf_vprintf(rd_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Nonzero when an append failed since the last init/reset/free: the content is lost. */
int rd_buf_failed(const rd_buf *b);
/* The content as a C string: "" when empty or failed (never NULL). Valid until the next modification. */
const char *rd_buf_cstr(const rd_buf *b);
/* len = 0, keeps the allocation, clears the failure. */
void rd_buf_reset(rd_buf *b);
/* Hands the heap string to the caller (free() it) and resets b; returns a malloc'd "" when empty,
 * NULL only on out of memory (including a failed buffer). */
char *rd_buf_detach(rd_buf *b);
/* Frees memory; b is reusable as empty. NULL is a no-op. Overwrites content with zeros first when
 * rd_buf_free_secure is used (for buffers that held secrets). */
void rd_buf_free(rd_buf *b);
void rd_buf_free_secure(rd_buf *b);

#endif
