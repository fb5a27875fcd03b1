/* redduck/dotenv.h — a project's `.env` file: KEY=value lines read the way python-dotenv reads them (comments,
 * `export ` prefixes, single quotes literal, double quotes with escapes \n \t \" \\ and multi-line values,
 * unquoted values trimmed with inline ` #` comments removed, `${VAR}` expansion NOT done), and written back
 * (one key set or replaced, every other line kept as is, the file created or kept at mode 0600).
 * Owns the parsed entries. Values may be secrets: never log them. */
#ifndef REDDUCK_DOTENV_H
#define REDDUCK_DOTENV_H

#include <stddef.h>

#include "redduck/error.h"

#define RD_DOTENV_MAX_BYTES (1u << 20) /* a larger .env is refused, not read */

typedef struct rd_dotenv_entry {
    char *key;    /* owned */
    char *value;  /* owned; "" for `KEY=` */
    int line;     /* 1-based line where the entry starts */
} rd_dotenv_entry;

typedef struct rd_dotenv {
    rd_dotenv_entry *items; /* owned; in file order; a key given twice keeps its last value (one entry) */
    size_t count;
    char *path;             /* owned; for messages ("<memory>" when parsed from a string) */
} rd_dotenv;

/* Parses text. A syntax error (unterminated quote, a line without '=' that is not blank/comment, a bad key)
 * is RD_E_CONFIG "PATH:LINE: what is wrong", as is a NUL byte (no escape decodes to NUL: values are whole C
 * strings) and text longer than RD_DOTENV_MAX_BYTES. n log n in the number of keys. path may be NULL. */
rd_status rd_dotenv_parse(const char *text, size_t len, const char *path, rd_dotenv *out, rd_error *err);
/* Reads and parses a file; a missing file is RD_OK with no entries. */
rd_status rd_dotenv_load(const char *path, rd_dotenv *out, rd_error *err);
/* The value of key, or NULL. */
const char *rd_dotenv_get(const rd_dotenv *e, const char *key);
void rd_dotenv_free(rd_dotenv *e);

/* Sets key=value in the file at path (replacing the key's line, else appending), quoting the value when
 * needed so that rd_dotenv_parse reads it back exactly; creates the file with mode 0600 and leaves an
 * existing file's other lines untouched. */
/* 1 when key is a .env key redduck reads and writes: letters, digits, '_', '.' and '-', starting with a letter
 * or '_' (`connector.NAME.aws_secret_access_key` is one); 0 otherwise (NULL included). */
int rd_dotenv_key_valid(const char *key);

/* Appends key=value (both copied) to e, as line count+1; no check for an existing key. RD_E_INTERNAL when
 * out of memory (e unchanged). */
rd_status rd_dotenv_add(rd_dotenv *e, const char *key, const char *value);

rd_status rd_dotenv_set_in_file(const char *path, const char *key, const char *value, rd_error *err);

#endif
