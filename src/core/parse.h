/* parse.h — the number, size and duration syntax of option values, shared by the CLI's flags and the
 * project loader. Owns the syntax only: each caller states its own range and message. */
#ifndef RD_CORE_PARSE_H
#define RD_CORE_PARSE_H

#include <stdint.h>

/* Decimal digits only (no sign, no spaces), min..max → *out; -1 (out untouched) otherwise. */
int rd_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* "N" (times unit), "NK", "NM", "NG" (KiB, MiB, GiB; either case; an optional trailing B or b) → bytes in
 * *out; -1 (out untouched) if not such a size or it overflows. */
int rd_parse_size(const char *s, uint64_t unit, uint64_t *out);

/* "90", "90s", "30m", "24h", "7d" → seconds in *out, at most 100 years; -1 (out untouched) otherwise. */
int rd_parse_duration(const char *s, long *out);

/* The value of one hexadecimal digit (0-9, a-f, A-F), or -1. */
int rd_parse_hex_digit(char c);

#endif
