/* form.h — application/x-www-form-urlencoded and query-string parsing for the emulator (the query
 * protocol's bodies, S3's query parameters). Values are percent-decoded ('+' is a space in forms). */
#ifndef RD_EMULATOR_FORM_H
#define RD_EMULATOR_FORM_H

#include <stddef.h>

#include "redduck/error.h"

typedef struct rd_form_pair {
    char *name;
    char *value; /* "" when the pair had no '=' */
} rd_form_pair;

typedef struct rd_form {
    rd_form_pair *pairs;
    size_t count;
} rd_form;

/* plus_is_space: 1 for form bodies, 0 for URL query strings as S3 treats them. */
rd_status rd_form_parse(const char *text, size_t len, int plus_is_space, rd_form *out);
/* First value of name (exact match), or NULL. Borrowed. */
const char *rd_form_get(const rd_form *f, const char *name);
/* 1 if present (even without a value). */
int rd_form_has(const rd_form *f, const char *name);
void rd_form_free(rd_form *f);
/* Percent-decodes len bytes of s into a new string (malloc'd). */
char *rd_percent_decode(const char *s, size_t len, int plus_is_space);

#endif
