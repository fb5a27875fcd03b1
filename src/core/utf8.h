/* utf8.h — strict UTF-8 decoding, as Python's utf-8 codec: no overlong forms, no surrogates, nothing above
 * U+10FFFF. The one decoder for text read from outside (.env files, project YAML). No state, thread-safe. */
#ifndef RD_CORE_UTF8_H
#define RD_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (n bytes available) with its code point in *cp; 0 if invalid. */
size_t rd_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
/* Offset of the first byte of s[0..n) that does not start a valid sequence; n when all of it is valid. */
size_t rd_utf8_invalid_at(const char *s, size_t n);

#endif
