/* dotenv.c — a project's .env, read exactly as python-dotenv 1.x reads a file (its parser.py grammar, on text
 * opened with universal newlines) and written back one key at a time, atomically, at mode 0600.
 * Does not expand ${VAR}, does not touch the process environment, never puts a value in a message. */
#include "redduck/dotenv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/utf8.h"
#include "redduck/buf.h"

/* Deliberate differences from python-dotenv, each where python-dotenv warns, crashes or guesses:
 *  - a statement python-dotenv cannot parse (it logs a warning and skips it) is an RD_E_CONFIG error naming the
 *    line where the statement starts (python-dotenv names the line after the previous statement);
 *  - a key without `=` (python-dotenv: value None) is an error "`KEY` has no `=`";
 *  - text that is not UTF-8 (python-dotenv: UnicodeDecodeError) or holds a NUL byte is an error;
 *  - a UTF-8 byte order mark at the start is skipped (python-dotenv would make it part of the first key). */

/* ---- text: Python's idea of whitespace (UTF-8 decoding is core/utf8.h) -------------------------------------- */

/* Python's str.isspace(), which is what `\s` matches in python-dotenv's regular expressions. */
static int py_isspace(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ---- the scanner over normalized text (newlines are "\n" only, valid UTF-8, no NUL) ------------------------ */

typedef struct scanner {
    const char *s;
    size_t n;
    size_t pos;
    int line;
    const char *path;
} scanner;

/* Byte length of the whitespace character at p (0 if none). `\n` counts only when newline_ok. */
static size_t space_at(const scanner *sc, size_t p, int newline_ok)
{
    if (p >= sc->n)
        return 0;
    uint32_t cp = 0;
    size_t len = rd_utf8_next((const unsigned char *)sc->s + p, sc->n - p, &cp);
    if (len == 0 || !py_isspace(cp) || (cp == '\n' && !newline_ok))
        return 0;
    return len;
}

/* Advances over whitespace (`\s*` when newline_ok, else `[^\S\r\n]*`), counting lines. */
static void skip_space(scanner *sc, int newline_ok)
{
    size_t len;
    while ((len = space_at(sc, sc->pos, newline_ok)) > 0) {
        if (sc->s[sc->pos] == '\n')
            sc->line++;
        sc->pos += len;
    }
}

static int count_newlines(const char *s, size_t n)
{
    int lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    return lines;
}

/* Only names that look like keys appear in messages: a secret pasted on a line of its own must not be echoed. */
int rd_dotenv_key_valid(const char *key)
{
    if (!key || !((key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= 'a' && key[0] <= 'z') || key[0] == '_'))
        return 0;
    for (const char *p = key + 1; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '.' || *p == '-'))
            return 0;
    return 1;
}

static const char *key_for_message(const char *key)
{
    return key && strlen(key) <= 64 && rd_dotenv_key_valid(key) ? key : NULL;
}

static rd_status scan_error(const scanner *sc, int line, rd_error *err, const char *what, const char *key)
{
    const char *shown = key_for_message(key);
    if (shown)
        return rd_error_set(err, RD_E_CONFIG, "%s:%d: %s `%s`", sc->path, line, what, shown);
    return rd_error_set(err, RD_E_CONFIG, "%s:%d: %s a key", sc->path, line, what);
}

static char *dup_range(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/* The end of a quoted value opened at s[start - 1], as python-dotenv's regex '((?:\\'|[^'])*)' finds it: a
 * backslash before the quote character pairs with it; if the text ends with no unpaired quote, the regex
 * backtracks so that the last pair's quote closes the value. Returns the index of the closing quote, or
 * (size_t)-1 when there is none. */
static size_t quoted_end(const char *s, size_t n, size_t start, char quote)
{
    size_t last_pair = (size_t)-1;
    size_t i = start;
    while (i < n) {
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == quote) {
            last_pair = i;
            i += 2;
        } else if (s[i] == quote) {
            return i;
        } else {
            i++;
        }
    }
    return last_pair == (size_t)-1 ? (size_t)-1 : last_pair + 1;
}

/* python-dotenv's escape decoding: in single quotes \\ and \' only; in double quotes \\ \' \" \a \b \f \n \r \t
 * \v. Any other backslash stays as it is. */
static char *decode_quoted(const char *s, size_t n, char quote)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[i + 1], d = 0;
            if (e == '\\' || e == '\'')
                d = e;
            else if (quote == '"') {
                switch (e) {
                case '"': d = '"'; break;
                case 'a': d = '\a'; break;
                case 'b': d = '\b'; break;
                case 'f': d = '\f'; break;
                case 'n': d = '\n'; break;
                case 'r': d = '\r'; break;
                case 't': d = '\t'; break;
                case 'v': d = '\v'; break;
                default: break;
                }
            }
            if (d) {
                out[o++] = d;
                i++;
                continue;
            }
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

/* An unquoted value: the rest of the line, cut at the first whitespace run followed by '#', right-trimmed. */
static char *unquoted_value(scanner *sc)
{
    size_t start = sc->pos, end = start;
    while (end < sc->n && sc->s[end] != '\n')
        end++;
    size_t cut = end, run = (size_t)-1, last_text_end = start;
    for (size_t p = start; p < end;) {
        size_t sp = space_at(sc, p, 0);
        if (sp) {
            if (run == (size_t)-1)
                run = p;
            p += sp;
            continue;
        }
        if (sc->s[p] == '#' && run != (size_t)-1) {
            cut = run;
            break;
        }
        run = (size_t)-1;
        uint32_t cp = 0;
        size_t len = rd_utf8_next((const unsigned char *)sc->s + p, end - p, &cp);
        p += len ? len : 1;
        last_text_end = p;
    }
    if (last_text_end > cut)
        last_text_end = cut;
    sc->pos = end;
    return dup_range(sc->s + start, last_text_end - start);
}

/* One statement of the file (python-dotenv's Binding). */
typedef struct binding {
    char *key;      /* NULL for blank lines and comments */
    char *value;    /* always set when key is (a key without '=' is an error) */
    int first_line; /* line of the key */
    int last_line;  /* line holding the statement's end */
    int exported;   /* written as `export KEY=...` */
} binding;

static void binding_clear(binding *b)
{
    free(b->key);
    if (b->value) {
        explicit_bzero(b->value, strlen(b->value));
        free(b->value);
    }
    memset(b, 0, sizeof *b);
}

static rd_status oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

/* Reads the next statement; returns RD_OK with sc->pos == sc->n and b->key == NULL at the end. */
static rd_status next_binding(scanner *sc, binding *b, rd_error *err)
{
    memset(b, 0, sizeof *b);
    skip_space(sc, 1);
    if (sc->pos >= sc->n)
        return RD_OK;
    int line = sc->line;
    b->first_line = line;

    if (sc->n - sc->pos > 6 && memcmp(sc->s + sc->pos, "export", 6) == 0 && space_at(sc, sc->pos + 6, 0)) {
        sc->pos += 6;
        skip_space(sc, 0);
        b->exported = 1;
    }

    char c = sc->pos < sc->n ? sc->s[sc->pos] : '\0';
    if (c == '\'') {
        const char *close = memchr(sc->s + sc->pos + 1, '\'', sc->n - sc->pos - 1);
        if (!close)
            return rd_error_set(err, RD_E_CONFIG, "%s:%d: unterminated quoted key (no closing `'`)", sc->path,
                                line);
        size_t klen = (size_t)(close - (sc->s + sc->pos + 1));
        if (klen == 0)
            return rd_error_set(err, RD_E_CONFIG, "%s:%d: empty quoted key ''", sc->path, line);
        if (!(b->key = dup_range(sc->s + sc->pos + 1, klen)))
            return oom(err);
        sc->line += count_newlines(b->key, klen);
        sc->pos += klen + 2;
    } else if (c != '#') {
        size_t start = sc->pos;
        while (sc->pos < sc->n && sc->s[sc->pos] != '=' && sc->s[sc->pos] != '#' && !space_at(sc, sc->pos, 1)) {
            uint32_t cp = 0;
            size_t len = rd_utf8_next((const unsigned char *)sc->s + sc->pos, sc->n - sc->pos, &cp);
            sc->pos += len ? len : 1;
        }
        if (sc->pos == start) {
            if (c == '=')
                return rd_error_set(err, RD_E_CONFIG, "%s:%d: `=` with no key before it", sc->path, line);
            return rd_error_set(err, RD_E_CONFIG, "%s:%d: `export` is not followed by a key", sc->path, line);
        }
        if (!(b->key = dup_range(sc->s + start, sc->pos - start)))
            return oom(err);
    }

    skip_space(sc, 0);
    int has_value = 0, quoted = 0;
    if (b->key && sc->pos < sc->n && sc->s[sc->pos] == '=') {
        has_value = 1;
        sc->pos++;
        skip_space(sc, 0);
        char q = sc->pos < sc->n ? sc->s[sc->pos] : '\0';
        if (q == '\'' || q == '"') {
            size_t close = quoted_end(sc->s, sc->n, sc->pos + 1, q);
            if (close == (size_t)-1)
                return scan_error(sc, line, err,
                                  q == '"' ? "unterminated double-quoted value (no closing `\"`) for"
                                           : "unterminated single-quoted value (no closing `'`) for",
                                  b->key);
            if (!(b->value = decode_quoted(sc->s + sc->pos + 1, close - sc->pos - 1, q)))
                return oom(err);
            sc->line += count_newlines(sc->s + sc->pos, close - sc->pos);
            sc->pos = close + 1;
            quoted = 1;
        } else if (q == '\0' || q == '\n') {
            if (!(b->value = dup_range("", 0)))
                return oom(err);
        } else if (!(b->value = unquoted_value(sc))) {
            return oom(err);
        }
    }

    /* an optional comment, then the end of the line */
    size_t before = sc->pos;
    skip_space(sc, 0);
    if (sc->pos < sc->n && sc->s[sc->pos] == '#') {
        while (sc->pos < sc->n && sc->s[sc->pos] != '\n')
            sc->pos++;
    } else {
        sc->pos = before;
    }
    skip_space(sc, 0);
    if (sc->pos < sc->n && sc->s[sc->pos] != '\n') {
        if (!b->key)
            return rd_error_set(err, RD_E_CONFIG, "%s:%d: cannot parse this line", sc->path, line);
        if (quoted)
            return scan_error(sc, line, err, "unexpected text after the closing quote of the value of", b->key);
        return scan_error(sc, line, err, "expected `=` after", b->key);
    }
    b->last_line = sc->line;
    if (sc->pos < sc->n) {
        sc->pos++;
        sc->line++;
    }
    if (b->key && !has_value) {
        if (key_for_message(b->key))
            return rd_error_set(err, RD_E_CONFIG, "%s:%d: `%s` has no `=` (write `%s=` for an empty value)",
                                sc->path, line, b->key, b->key);
        return rd_error_set(err, RD_E_CONFIG, "%s:%d: this line has no `=` (its text is not shown)", sc->path,
                            line);
    }
    return RD_OK;
}

/* Copies text into normalized (BOM skipped, "\r\n" and "\r" turned into "\n", as Python's universal newlines
 * do), rejecting NUL bytes and text that is not UTF-8. */
static rd_status normalize(const char *text, size_t len, const char *path, rd_buf *out, rd_error *err)
{
    size_t i = 0;
    int line = 1;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        size_t step = 1;
        rd_status st;
        if (c == '\r') {
            st = rd_buf_putc(out, '\n');
            if (i + 1 < len && text[i + 1] == '\n')
                step = 2;
            line++;
        } else if (c == '\0') {
            return rd_error_set(err, RD_E_CONFIG, "%s:%d: NUL byte in the file", path, line);
        } else if (c < 0x80) {
            st = rd_buf_putc(out, (char)c);
            line += c == '\n';
        } else {
            uint32_t cp = 0;
            step = rd_utf8_next((const unsigned char *)text + i, len - i, &cp);
            if (step == 0)
                return rd_error_set(err, RD_E_CONFIG, "%s:%d: the file is not valid UTF-8", path, line);
            st = rd_buf_append(out, text + i, step);
        }
        if (st != RD_OK)
            return oom(err);
        i += step;
    }
    return RD_OK;
}

typedef rd_status (*binding_fn)(binding *b, void *ctx, rd_error *err);

/* Calls fn for every key of text, in order; fn may take b->key / b->value (set them to NULL). */
static rd_status scan_all(const char *text, size_t len, const char *path, binding_fn fn, void *ctx, rd_error *err)
{
    rd_buf norm = RD_BUF_INIT;
    rd_status st = normalize(text, len, path, &norm, err);
    scanner sc = { rd_buf_cstr(&norm), norm.len, 0, 1, path };
    while (st == RD_OK && sc.pos < sc.n) {
        binding b;
        st = next_binding(&sc, &b, err);
        if (st == RD_OK && b.key)
            st = fn(&b, ctx, err);
        binding_clear(&b);
    }
    rd_buf_free_secure(&norm);
    return st;
}

/* ---- rd_dotenv ------------------------------------------------------------------------------------------- */

typedef struct entry_builder {
    rd_dotenv *e;
    size_t cap;
} entry_builder;

/* Appends every binding; merge_duplicates runs once at the end (a scan per key made big files quadratic). */
static rd_status add_entry(binding *b, void *ctx, rd_error *err)
{
    entry_builder *eb = ctx;
    rd_dotenv *e = eb->e;
    if (e->count == eb->cap) {
        size_t ncap = eb->cap ? eb->cap * 2 : 16;
        rd_dotenv_entry *items = realloc(e->items, ncap * sizeof *items);
        if (!items)
            return oom(err);
        e->items = items;
        eb->cap = ncap;
    }
    e->items[e->count++] = (rd_dotenv_entry){ b->key, b->value, b->first_line };
    b->key = b->value = NULL;
    return RD_OK;
}

typedef struct key_place {
    const char *key;
    size_t place;
} key_place;

static int by_key_then_place(const void *a, const void *b)
{
    const key_place *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r ? r : x->place < y->place ? -1 : x->place > y->place;
}

/* A key given twice keeps its first place and takes its last value and line (a Python dict). */
static rd_status merge_duplicates(rd_dotenv *e, rd_error *err)
{
    if (e->count < 2)
        return RD_OK;
    key_place *order = malloc(e->count * sizeof *order);
    if (!order)
        return oom(err);
    for (size_t i = 0; i < e->count; i++)
        order[i] = (key_place){ e->items[i].key, i };
    qsort(order, e->count, sizeof *order, by_key_then_place);
    for (size_t g = 0; g < e->count;) {
        size_t end = g + 1;
        while (end < e->count && strcmp(order[end].key, order[g].key) == 0)
            end++;
        if (end - g > 1) {
            rd_dotenv_entry *first = &e->items[order[g].place], *last = &e->items[order[end - 1].place];
            explicit_bzero(first->value, strlen(first->value));
            free(first->value);
            first->value = last->value;
            first->line = last->line;
            last->value = NULL;
            for (size_t k = g + 1; k < end; k++) {
                rd_dotenv_entry *it = &e->items[order[k].place];
                if (it->value) {
                    explicit_bzero(it->value, strlen(it->value));
                    free(it->value);
                }
                free(it->key);
                it->key = it->value = NULL;
            }
        }
        g = end;
    }
    free(order);
    size_t o = 0;
    for (size_t i = 0; i < e->count; i++)
        if (e->items[i].key)
            e->items[o++] = e->items[i];
    e->count = o;
    return RD_OK;
}

rd_status rd_dotenv_parse(const char *text, size_t len, const char *path, rd_dotenv *out, rd_error *err)
{
    rd_dotenv e = { NULL, 0, strdup(path ? path : "<memory>") };
    if (!e.path)
        return oom(err);
    entry_builder eb = { &e, 0 };
    rd_status st = text && len > RD_DOTENV_MAX_BYTES
                       ? rd_error_set(err, RD_E_CONFIG, "%s: larger than %u KiB; a .env holds a few keys", e.path,
                                      RD_DOTENV_MAX_BYTES / 1024)
                       : scan_all(text ? text : "", text ? len : 0, e.path, add_entry, &eb, err);
    if (st == RD_OK)
        st = merge_duplicates(&e, err);
    if (st != RD_OK) {
        rd_dotenv_free(&e);
        return st;
    }
    *out = e;
    return RD_OK;
}

/* Reads a whole file into b. Sets *missing (and returns RD_OK) when it does not exist. */
static rd_status read_file(const char *path, rd_buf *b, int *missing, rd_error *err)
{
    *missing = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) {
            *missing = 1;
            return RD_OK;
        }
        return rd_error_set(err, RD_E_IO, "cannot read %s: %s", path, strerror(errno));
    }
    char chunk[4096];
    size_t n;
    rd_status st = RD_OK;
    while (st == RD_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b->len > RD_DOTENV_MAX_BYTES) /* enough for rd_dotenv_parse to refuse it */
            break;
        if (rd_buf_append(b, chunk, n) != RD_OK)
            st = oom(err);
    }
    if (st == RD_OK && ferror(f))
        st = rd_error_set(err, RD_E_IO, "cannot read %s: %s", path, strerror(errno));
    explicit_bzero(chunk, sizeof chunk);
    fclose(f);
    return st;
}

rd_status rd_dotenv_load(const char *path, rd_dotenv *out, rd_error *err)
{
    rd_buf b = RD_BUF_INIT;
    int missing = 0;
    rd_status st = read_file(path, &b, &missing, err);
    if (st == RD_OK)
        st = rd_dotenv_parse(b.data, b.len, path, out, err);
    rd_buf_free_secure(&b);
    return st;
}

const char *rd_dotenv_get(const rd_dotenv *e, const char *key)
{
    if (!e || !key)
        return NULL;
    for (size_t i = 0; i < e->count; i++)
        if (strcmp(e->items[i].key, key) == 0)
            return e->items[i].value;
    return NULL;
}

void rd_dotenv_free(rd_dotenv *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->count; i++) {
        free(e->items[i].key);
        explicit_bzero(e->items[i].value, strlen(e->items[i].value));
        free(e->items[i].value);
    }
    free(e->items);
    free(e->path);
    e->items = NULL;
    e->count = 0;
    e->path = NULL;
}

/* ---- writing --------------------------------------------------------------------------------------------- */

/* Plain enough to stay unquoted and obviously so. */
static int value_is_plain(const char *v)
{
    if (!*v)
        return 1;
    for (const char *p = v; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("_./:@%+,=~-", *p)))
            return 0;
    return 1;
}

/* Whether python-dotenv reads `KEY=v` back as exactly v (the only way to write a value that needs quoting
 * and ends with a backslash: in quotes, that backslash would escape the closing quote). */
static int value_survives_unquoted(const char *v)
{
    scanner sc = { v, strlen(v), 0, 1, "" };
    if (sc.n == 0 || v[0] == '\'' || v[0] == '"' || space_at(&sc, 0, 1))
        return 0;
    int after_space = 0;
    for (size_t p = 0; p < sc.n;) {
        size_t sp = space_at(&sc, p, 1);
        if (v[p] == '\n' || v[p] == '\r' || (v[p] == '#' && after_space))
            return 0;
        after_space = sp > 0;
        if (sp) {
            p += sp;
        } else {
            uint32_t cp = 0;
            size_t len = rd_utf8_next((const unsigned char *)v + p, sc.n - p, &cp);
            p += len ? len : 1;
        }
    }
    return !after_space; /* no trailing whitespace */
}

/* Appends the value as python-dotenv (and rd_dotenv_parse) will read it back exactly. */
static rd_status encode_value(rd_buf *out, const char *key, const char *v, rd_error *err)
{
    size_t n = strlen(v);
    uint32_t cp = 0;
    for (size_t i = 0; i < n;) {
        size_t len = rd_utf8_next((const unsigned char *)v + i, n - i, &cp);
        if (len == 0)
            return rd_error_set(err, RD_E_USAGE, "the value for %s is not valid UTF-8", key);
        i += len;
    }
    rd_status st = RD_OK;
    if (value_is_plain(v))
        return rd_buf_puts(out, v) == RD_OK ? RD_OK : oom(err);
    if (!strpbrk(v, "'\\\r\n")) {
        st = rd_buf_printf(out, "'%s'", v);
    } else if (v[n - 1] != '\\') {
        st = rd_buf_putc(out, '"');
        for (size_t i = 0; st == RD_OK && i < n; i++) {
            switch (v[i]) {
            case '\\': st = rd_buf_puts(out, "\\\\"); break;
            case '"': st = rd_buf_puts(out, "\\\""); break;
            case '\n': st = rd_buf_puts(out, "\\n"); break;
            case '\r': st = rd_buf_puts(out, "\\r"); break;
            case '\t': st = rd_buf_puts(out, "\\t"); break;
            default: st = rd_buf_putc(out, v[i]); break;
            }
        }
        if (st == RD_OK)
            st = rd_buf_putc(out, '"');
    } else if (value_survives_unquoted(v)) {
        st = rd_buf_puts(out, v);
    } else {
        return rd_error_set(err, RD_E_USAGE,
                            "the value for %s ends with a backslash and needs quotes: a .env file cannot hold it "
                            "(python-dotenv would read the backslash as escaping the closing quote)",
                            key);
    }
    return st == RD_OK ? RD_OK : oom(err);
}

typedef struct key_span {
    int first_line, last_line, exported;
} key_span;

typedef struct span_list {
    const char *key;
    key_span *items;
    size_t count;
} span_list;

static rd_status collect_spans(binding *b, void *ctx, rd_error *err)
{
    span_list *l = ctx;
    if (strcmp(b->key, l->key) != 0)
        return RD_OK;
    key_span *items = realloc(l->items, (l->count + 1) * sizeof *items);
    if (!items)
        return oom(err);
    l->items = items;
    items[l->count++] = (key_span){ b->first_line, b->last_line, b->exported };
    return RD_OK;
}

/* Writes data to a temporary file beside path (mode 0600), fsyncs it and renames it over path. */
static rd_status write_atomically(const char *path, const char *data, size_t len, rd_error *err)
{
    rd_buf tmp = RD_BUF_INIT;
    if (rd_buf_printf(&tmp, "%s.tmp-XXXXXX", path) != RD_OK)
        return oom(err);
    char *tmp_path = tmp.data;
    int fd = mkstemp(tmp_path); /* O_EXCL, mode 0600 */
    if (fd < 0) {
        rd_status st = rd_error_set(err, RD_E_IO, "cannot create a temporary file beside %s: %s", path,
                                    strerror(errno));
        rd_buf_free(&tmp);
        return st;
    }
    rd_status st = RD_OK;
    if (fchmod(fd, 0600) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot chmod %s: %s", tmp_path, strerror(errno));
    for (size_t off = 0; st == RD_OK && off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", tmp_path, strerror(errno));
        else
            off += (size_t)w;
    }
    if (st == RD_OK && fsync(fd) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot sync %s: %s", tmp_path, strerror(errno));
    if (close(fd) != 0 && st == RD_OK)
        st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", tmp_path, strerror(errno));
    if (st == RD_OK && rename(tmp_path, path) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot replace %s: %s", path, strerror(errno));
    if (st != RD_OK) {
        unlink(tmp_path);
    } else { /* make the rename itself durable; best effort */
        char *slash = strrchr(tmp_path, '/');
        const char *dir = ".";
        if (slash == tmp_path)
            dir = "/";
        else if (slash) {
            *slash = '\0';
            dir = tmp_path;
        }
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    rd_buf_free(&tmp);
    return st;
}

rd_status rd_dotenv_set_in_file(const char *path, const char *key, const char *value, rd_error *err)
{
    if (!path || !key || !value)
        return rd_error_set(err, RD_E_USAGE, "rd_dotenv_set_in_file: path, key and value are required");
    if (!rd_dotenv_key_valid(key))
        return rd_error_set(err, RD_E_USAGE,
                            "not a valid .env key (use letters, digits, `_`, `.` and `-`, starting with a letter "
                            "or `_`)");

    /* a symlinked .env is updated where it points */
    char *real = NULL;
    struct stat lst;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        real = realpath(path, NULL);
        if (!real)
            return rd_error_set(err, RD_E_IO, "cannot follow the link %s: %s", path, strerror(errno));
        path = real;
    }

    rd_buf old = RD_BUF_INIT, line = RD_BUF_INIT, out = RD_BUF_INIT;
    span_list spans = { key, NULL, 0 };
    int missing = 0;
    rd_status st = read_file(path, &old, &missing, err);
    if (st == RD_OK && !missing) {
        st = scan_all(old.data ? old.data : "", old.len, path, collect_spans, &spans, err);
        if (st != RD_OK)
            rd_error_prefix(err, "not changing %s: ", path);
    }
    if (st == RD_OK) {
        st = rd_buf_printf(&line, "%s%s=", spans.count && spans.items[0].exported ? "export " : "", key) == RD_OK
                 ? RD_OK
                 : oom(err);
        if (st == RD_OK)
            st = encode_value(&line, key, value, err);
    }

    if (st == RD_OK) {
        const char *s = old.data ? old.data : "";
        size_t n = old.len;
        const char *eol = "\n";
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '\r' || s[i] == '\n') {
                if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
                    eol = "\r\n";
                break;
            }
        }
        int lineno = 1;
        size_t i = 0;
        while (st == RD_OK && i < n) {
            size_t end = i;
            while (end < n && s[end] != '\r' && s[end] != '\n')
                end++;
            if (end < n)
                end += s[end] == '\r' && end + 1 < n && s[end + 1] == '\n' ? 2 : 1;
            int replaced = 0;
            for (size_t k = 0; k < spans.count; k++) {
                if (lineno >= spans.items[k].first_line && lineno <= spans.items[k].last_line) {
                    replaced = 1;
                    if (k == 0 && lineno == spans.items[0].first_line)
                        st = rd_buf_printf(&out, "%s%s", rd_buf_cstr(&line), eol);
                }
            }
            if (!replaced)
                st = rd_buf_append(&out, s + i, end - i);
            i = end;
            lineno++;
        }
        if (st == RD_OK && spans.count == 0) {
            if (n > 0 && s[n - 1] != '\n' && s[n - 1] != '\r')
                st = rd_buf_puts(&out, eol);
            if (st == RD_OK)
                st = rd_buf_printf(&out, "%s%s", rd_buf_cstr(&line), eol);
        }
        if (st != RD_OK || rd_buf_failed(&line) || rd_buf_failed(&out))
            st = oom(err);
        else
            st = write_atomically(path, rd_buf_cstr(&out), out.len, err);
    }

    free(spans.items);
    rd_buf_free_secure(&old);
    rd_buf_free_secure(&line);
    rd_buf_free_secure(&out);
    free(real);
    return st;
}

rd_status rd_dotenv_add(rd_dotenv *e, const char *key, const char *value)
{
    rd_dotenv_entry *items = realloc(e->items, (e->count + 1) * sizeof *items);
    if (!items)
        return RD_E_INTERNAL;
    e->items = items;
    rd_dotenv_entry *it = &items[e->count];
    it->key = strdup(key);
    it->value = strdup(value);
    it->line = (int)e->count + 1;
    if (!it->key || !it->value) {
        free(it->key);
        free(it->value);
        return RD_E_INTERNAL;
    }
    e->count++;
    return RD_OK;
}
