/* ini.c — configparser-compatible INI parsing (see ini.h). */
#include "aws/ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "redduck/buf.h"

#define MAX_FILE_BYTES (16u * 1024 * 1024)

/* Python's str.isspace for ASCII plus str.strip's set. */
static int ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char *strip_dup(const char *s, size_t len)
{
    while (len && ws((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && ws((unsigned char)s[len - 1]))
        len--;
    return strndup(s, len);
}

typedef struct builder {
    rd_ini *ini;
    rd_ini_section *cur;
    rd_buf value;      /* value being accumulated */
    rd_ini_entry *open; /* entry whose value is accumulating */
    size_t pending_blank;
    int indent;        /* indent of the option line */
} builder;

/* Values can be secrets (aws_secret_access_key, aws_session_token): overwritten before they are freed. */
static void free_value(char *v)
{
    if (v) {
        OPENSSL_cleanse(v, strlen(v));
        free(v);
    }
}

static void free_section(rd_ini_section *s)
{
    for (size_t i = 0; i < s->count; i++) {
        free(s->entries[i].key);
        free_value(s->entries[i].value);
    }
    free(s->entries);
    free(s->name);
}

void rd_ini_free(rd_ini *ini)
{
    if (!ini)
        return;
    for (size_t i = 0; i < ini->count; i++)
        free_section(&ini->sections[i]);
    free(ini->sections);
    free(ini->path);
    free(ini);
}

static void close_value(builder *b)
{
    if (!b->open)
        return;
    /* '\n'.join(lines).rstrip() */
    size_t n = b->value.len;
    while (n && ws((unsigned char)b->value.data[n - 1]))
        n--;
    free_value(b->open->value);
    b->open->value = strndup(b->value.data ? b->value.data : "", n);
    b->open = NULL;
    if (b->value.data)
        OPENSSL_cleanse(b->value.data, b->value.cap);
    rd_buf_reset(&b->value);
}

/* 1 for a key that reads as a setting name (letters, digits, '_', '-', '.'), short enough to be one. */
static int plain_name(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > 64)
        return 0;
    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
            return 0;
    return 1;
}

/* Errors name the file and line and say what is wrong in fixed words: a line's text is never echoed (a
 * credentials file line can hold aws_secret_access_key). */
static rd_status fail(rd_error *err, const char *path, int line, const char *what)
{
    return rd_error_set(err, RD_E_CONFIG, "%s:%d: %s — fix or remove that line", path, line, what);
}

rd_status rd_ini_parse(const char *text, size_t len, const char *path, rd_ini **out, rd_error *err)
{
    rd_ini *ini = calloc(1, sizeof *ini);
    if (!ini)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    ini->path = strdup(path ? path : "<config>");
    builder b = { ini, NULL, RD_BUF_INIT, NULL, 0, 0 };
    rd_status st = RD_OK;
    size_t cap = 0;
    int lineno = 0;
    size_t pos = 0;
    while (pos < len && st == RD_OK) {
        size_t start = pos;
        while (pos < len && text[pos] != '\n')
            pos++;
        size_t end = pos;
        if (pos < len)
            pos++;
        lineno++;
        if (end > start && text[end - 1] == '\r')
            end--;
        const char *line = text + start;
        size_t llen = end - start;
        if (memchr(line, '\0', llen)) {
            st = fail(err, ini->path, lineno, "the line contains a NUL byte");
            break;
        }
        size_t indent = 0;
        while (indent < llen && ws((unsigned char)line[indent]))
            indent++;
        const char *content = line + indent;
        size_t clen = llen - indent;
        while (clen && ws((unsigned char)content[clen - 1]))
            clen--;
        int comment = clen && (content[0] == '#' || content[0] == ';');
        if (clen == 0 || comment) {
            /* blank lines belong to an open multi-line value; comments never do */
            if (!comment && b.open)
                rd_buf_putc(&b.value, '\n');
            continue;
        }
        if (b.open && (int)indent > b.indent) {
            /* continuation line */
            rd_buf_putc(&b.value, '\n');
            rd_buf_append(&b.value, content, clen);
            continue;
        }
        b.indent = (int)indent;
        close_value(&b);
        if (content[0] == '[') {
            const char *close = NULL;
            for (size_t i = clen; i > 1; i--)
                if (content[i - 1] == ']') {
                    close = content + i - 1;
                    break;
                }
            if (!close || close == content + 1) {
                st = fail(err, ini->path, lineno, "a section header must look like [name]");
                break;
            }
            char *name = strndup(content + 1, (size_t)(close - content - 1));
            for (size_t i = 0; i < ini->count; i++)
                if (strcmp(ini->sections[i].name, name) == 0) {
                    char msg[300];
                    snprintf(msg, sizeof msg, "section [%s] appears twice (first on line %d)", name,
                             ini->sections[i].line);
                    st = fail(err, ini->path, lineno, msg);
                }
            if (st != RD_OK) {
                free(name);
                break;
            }
            if (ini->count == cap) {
                cap = cap ? cap * 2 : 8;
                rd_ini_section *p = realloc(ini->sections, cap * sizeof *p);
                if (!p) {
                    free(name);
                    st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
                    break;
                }
                ini->sections = p;
            }
            b.cur = &ini->sections[ini->count++];
            memset(b.cur, 0, sizeof *b.cur);
            b.cur->name = name;
            b.cur->line = lineno;
            continue;
        }
        if (!b.cur) {
            st = fail(err, ini->path, lineno, "a setting appears before any [section] header");
            break;
        }
        size_t d = 0;
        while (d < clen && content[d] != '=' && content[d] != ':')
            d++;
        if (d == clen) {
            st = fail(err, ini->path, lineno, "expected `key = value`");
            break;
        }
        char *key = strip_dup(content, d);
        if (!*key) {
            free(key);
            st = fail(err, ini->path, lineno, "a setting has no name before '='");
            break;
        }
        for (char *p = key; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        for (size_t i = 0; i < b.cur->count; i++)
            if (strcmp(b.cur->entries[i].key, key) == 0) {
                char msg[300];
                /* a "key" that is not a name may be a pasted secret: then it is not echoed */
                snprintf(msg, sizeof msg, "%s%s%s is set twice in [%s] (first on line %d)",
                         plain_name(key) ? "'" : "", plain_name(key) ? key : "a setting", plain_name(key) ? "'" : "",
                         b.cur->name, b.cur->entries[i].line);
                st = fail(err, ini->path, lineno, msg);
            }
        if (st != RD_OK) {
            free(key);
            break;
        }
        rd_ini_entry *e = realloc(b.cur->entries, (b.cur->count + 1) * sizeof *e);
        if (!e) {
            free(key);
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
            break;
        }
        b.cur->entries = e;
        e = &b.cur->entries[b.cur->count++];
        e->key = key;
        e->value = NULL;
        e->line = lineno;
        char *v = strip_dup(content + d + 1, clen - d - 1);
        rd_buf_puts(&b.value, v);
        free(v);
        b.open = e;
    }
    close_value(&b);
    rd_buf_free_secure(&b.value);
    if (st != RD_OK) {
        rd_ini_free(ini);
        return st;
    }
    /* [DEFAULT] keys are inherited by every other section (configparser semantics). */
    const rd_ini_section *def = rd_ini_find(ini, "DEFAULT");
    if (def) {
        for (size_t i = 0; i < ini->count; i++) {
            rd_ini_section *s = &ini->sections[i];
            if (s == def)
                continue;
            for (size_t j = 0; j < def->count; j++) {
                if (rd_ini_get(s, def->entries[j].key))
                    continue;
                rd_ini_entry *e = realloc(s->entries, (s->count + 1) * sizeof *e);
                if (!e)
                    break;
                s->entries = e;
                e[s->count].key = strdup(def->entries[j].key);
                e[s->count].value = strdup(def->entries[j].value);
                e[s->count].line = def->entries[j].line;
                s->count++;
            }
        }
    }
    *out = ini;
    return RD_OK;
}

rd_status rd_ini_load(const char *path, rd_ini **out, rd_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return rd_error_set(err, RD_E_NOT_FOUND, "%s does not exist", path);
        return rd_error_set(err, RD_E_CONFIG, "cannot read %s: %s — check its permissions", path, strerror(errno));
    }
    rd_buf b = RD_BUF_INIT;
    char chunk[8192];
    size_t n;
    rd_status st = RD_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > MAX_FILE_BYTES) {
            st = rd_error_set(err, RD_E_CONFIG, "%s is larger than 16 MiB: is it really an AWS config file?", path);
            break;
        }
        rd_buf_append(&b, chunk, n);
    }
    OPENSSL_cleanse(chunk, sizeof chunk);
    if (st == RD_OK && ferror(f))
        st = rd_error_set(err, RD_E_CONFIG, "cannot read %s: %s", path, strerror(errno));
    fclose(f);
    if (st == RD_OK)
        st = rd_ini_parse(rd_buf_cstr(&b), b.len, path, out, err);
    rd_buf_free_secure(&b);
    return st;
}

const rd_ini_section *rd_ini_find(const rd_ini *ini, const char *section)
{
    for (size_t i = 0; ini && i < ini->count; i++)
        if (strcmp(ini->sections[i].name, section) == 0)
            return &ini->sections[i];
    return NULL;
}

const rd_ini_entry *rd_ini_get(const rd_ini_section *s, const char *key)
{
    for (size_t i = 0; s && i < s->count; i++)
        if (strcmp(s->entries[i].key, key) == 0)
            return &s->entries[i];
    return NULL;
}

char *rd_ini_nested_get(const rd_ini_entry *parent, const char *key)
{
    if (!parent || !parent->value || parent->value[0] != '\n')
        return NULL;
    const char *p = parent->value;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq) {
            char *k = strip_dup(p, (size_t)(eq - p));
            int match = strcmp(k, key) == 0;
            free(k);
            if (match)
                return strip_dup(eq + 1, n - (size_t)(eq - p) - 1);
        }
        p += n;
        if (*p == '\n')
            p++;
    }
    return NULL;
}
