/* ini.h — the INI dialect of the AWS shared config files, parsed the way botocore parses it (Python's
 * configparser, raw): "[section]" headers, "key = value" or "key: value" (keys lowercased), full-line
 * comments starting with '#' or ';', indented continuation lines (a value whose first line is empty and
 * whose lines are "k = v" is a nested section, as `s3 =\n  max_concurrent_requests = 20`), [DEFAULT]
 * keys inherited by every section, duplicate sections or keys refused. Owns the parsed tree. */
#ifndef RD_AWS_INI_H
#define RD_AWS_INI_H

#include <stddef.h>

#include "redduck/error.h"

typedef struct rd_ini_entry {
    char *key;   /* lowercased */
    char *value; /* stripped; continuation lines joined with '\n' */
    int line;
} rd_ini_entry;

typedef struct rd_ini_section {
    char *name; /* as written between the brackets */
    int line;
    rd_ini_entry *entries;
    size_t count;
} rd_ini_section;

typedef struct rd_ini {
    char *path; /* for messages */
    rd_ini_section *sections;
    size_t count;
} rd_ini;

/* Parses text (len bytes, need not be NUL-terminated). Errors are RD_E_CONFIG "path:line: what is wrong". */
rd_status rd_ini_parse(const char *text, size_t len, const char *path, rd_ini **out, rd_error *err);
/* Reads and parses a file: a missing file is RD_E_NOT_FOUND (the caller decides), an unreadable one
 * RD_E_CONFIG. */
rd_status rd_ini_load(const char *path, rd_ini **out, rd_error *err);
void rd_ini_free(rd_ini *ini);

const rd_ini_section *rd_ini_find(const rd_ini *ini, const char *section);
/* The value of key (lowercase) in a section, or NULL. */
const rd_ini_entry *rd_ini_get(const rd_ini_section *s, const char *key);
/* A nested value: the entry `parent` holds "k = v" lines; returns v for key (malloc'd) or NULL. */
char *rd_ini_nested_get(const rd_ini_entry *parent, const char *key);

#endif
