/* headers.h — an ordered list of HTTP header name/value pairs (duplicates allowed, names compared
 * case-insensitively). Owns copies of every string. Used by sigv4, http and the services. */
#ifndef REDDUCK_HEADERS_H
#define REDDUCK_HEADERS_H

#include <stddef.h>

#include "redduck/error.h"

typedef struct rd_header {
    char *name;
    char *value;
} rd_header;

typedef struct rd_headers {
    rd_header *items;
    size_t count;
    size_t cap;
} rd_headers;

#define RD_HEADERS_INIT { NULL, 0, 0 }

void rd_headers_init(rd_headers *h);
/* Appends a copy (keeps existing entries of the same name). */
rd_status rd_headers_add(rd_headers *h, const char *name, const char *value);
/* Removes every entry named `name` (any case), then appends. */
rd_status rd_headers_set(rd_headers *h, const char *name, const char *value);
/* First value named `name` (any case), or NULL. Borrowed. */
const char *rd_headers_get(const rd_headers *h, const char *name);
void rd_headers_remove(rd_headers *h, const char *name);
rd_status rd_headers_copy(rd_headers *dst, const rd_headers *src);
void rd_headers_free(rd_headers *h);

/* True for headers whose value is a secret and must be redacted in logs and errors:
 * Authorization, X-Amz-Security-Token, x-amz-sso_bearer_token, X-aws-ec2-metadata-token, Cookie, ... */
int rd_header_is_secret(const char *name);

/* True when v is a value that may be compared and sent back in a header (an ETag from a reply, an If-Match):
 * 1 to max bytes of printable ASCII, no control character (a CR or LF from a hostile reply must never reach a
 * request's header block). */
int rd_header_value_is_token(const char *v, size_t max);

#endif
