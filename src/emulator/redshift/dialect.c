/* dialect.c — the Redshift SQL dialect on DuckDB: tokenizer, rewrite into DuckDB SQL, UNLOAD parse.
 * Owns only text transformations; executing the SQL is engine.c's job, writing UNLOAD files unload.c's. */
#include "emulator/redshift/dialect.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- tokenizer */

static int is_ident_start(unsigned char c)
{
    return isalpha(c) || c == '_' || c >= 0x80;
}

static int is_ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

static void near_text(const char *p, char *out, size_t size)
{
    size_t n = 0;
    while (p[n] && n + 1 < size && n < 20 && p[n] != '\n')
        n++;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* The length of the opening delimiter of a dollar-quoted string at p ("$$" or "$tag$", the tag an identifier
 * without '$'), or 0 when p does not start one ($1 is a parameter, not a quote). */
static size_t dollar_tag_len(const char *p)
{
    if (p[0] != '$')
        return 0;
    if (p[1] == '$')
        return 2;
    if (!is_ident_start((unsigned char)p[1]))
        return 0;
    size_t i = 2;
    while (p[i] && p[i] != '$' && is_ident_char((unsigned char)p[i]))
        i++;
    return p[i] == '$' ? i + 1 : 0;
}

rd_status rd_sql_tokenize(const char *sql, rd_sql_tok **toks, size_t *count, rd_error *err)
{
    size_t cap = 64, n = 0;
    rd_sql_tok *v = malloc(cap * sizeof *v);
    if (!v)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    const char *p = sql;
    while (*p) {
        rd_sql_tok t = { RD_TOK_OP, p, 0 };
        const unsigned char c = (unsigned char)*p;
        const char *q = p;
        if (isspace(c)) {
            while (*q && isspace((unsigned char)*q))
                q++;
            t.kind = RD_TOK_SPACE;
        } else if (c == '-' && q[1] == '-') {
            while (*q && *q != '\n')
                q++;
            t.kind = RD_TOK_SPACE;
        } else if (c == '/' && q[1] == '*') {
            const char *e = strstr(q + 2, "*/");
            if (!e) {
                free(v);
                return rd_error_set(err, RD_E_USAGE, "ERROR: unterminated /* comment");
            }
            q = e + 2;
            t.kind = RD_TOK_SPACE;
        } else if (c == '\'' || ((c == 'E' || c == 'e') && q[1] == '\'')) {
            if (c != '\'')
                q++;
            q++;
            for (;;) {
                if (!*q) {
                    char near[32];
                    near_text(p, near, sizeof near);
                    free(v);
                    return rd_error_set(err, RD_E_USAGE, "ERROR: unterminated quoted string at or near \"%s\"", near);
                }
                if (*q == '\\' && q[1]) {
                    q += 2;
                    continue;
                }
                if (*q == '\'') {
                    if (q[1] == '\'') {
                        q += 2;
                        continue;
                    }
                    q++;
                    break;
                }
                q++;
            }
            t.kind = RD_TOK_STRING;
        } else if (c == '$' && dollar_tag_len(q) > 0) {
            /* $$…$$ or $tag$…$tag$: the text between is taken as it is (no escapes) */
            size_t tl = dollar_tag_len(q);
            const char *e = q + tl;
            while ((e = strchr(e, '$')) != NULL && strncmp(e, q, tl) != 0)
                e++;
            if (!e) {
                char near[32];
                near_text(p, near, sizeof near);
                free(v);
                return rd_error_set(err, RD_E_USAGE, "ERROR: unterminated dollar-quoted string at or near \"%s\"",
                                    near);
            }
            q = e + tl;
            t.kind = RD_TOK_STRING;
        } else if (c == '"') {
            q++;
            for (;;) {
                if (!*q) {
                    free(v);
                    return rd_error_set(err, RD_E_USAGE, "ERROR: unterminated quoted identifier");
                }
                if (*q == '"') {
                    if (q[1] == '"') {
                        q += 2;
                        continue;
                    }
                    q++;
                    break;
                }
                q++;
            }
            t.kind = RD_TOK_QIDENT;
        } else if (is_ident_start(c)) {
            while (*q && is_ident_char((unsigned char)*q))
                q++;
            t.kind = RD_TOK_WORD;
        } else if (isdigit(c) || (c == '.' && isdigit((unsigned char)q[1]))) {
            while (*q && (isalnum((unsigned char)*q) || *q == '.'))
                q++;
            t.kind = RD_TOK_NUMBER;
        } else if (c == ':' && q[1] == ':') {
            q += 2;
        } else if (c == ':' && is_ident_start((unsigned char)q[1])) {
            q++;
            while (*q && (isalnum((unsigned char)*q) || *q == '_'))
                q++;
            t.kind = RD_TOK_PARAM;
        } else if ((c == '<' || c == '>' || c == '!' || c == '|') && (q[1] == '=' || q[1] == '>' || q[1] == '|')) {
            q += 2;
        } else {
            q++;
        }
        t.len = (size_t)(q - p);
        if (n == cap) {
            rd_sql_tok *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                free(v);
                return rd_error_set(err, RD_E_INTERNAL, "out of memory");
            }
            v = nv;
            cap *= 2;
        }
        v[n++] = t;
        p = q;
    }
    *toks = v;
    *count = n;
    return RD_OK;
}

rd_status rd_sql_string_value(const rd_sql_tok *tok, rd_buf *out)
{
    const char *p = tok->start, *end = tok->start + tok->len - 1; /* end: closing quote */
    if (*p == '$') {
        size_t tl = dollar_tag_len(p);
        rd_status dst = rd_buf_append(out, p + tl, tok->len - 2 * tl);
        if (dst == RD_OK && !out->data)
            dst = rd_buf_append(out, "", 0);
        return dst;
    }
    if (*p == 'E' || *p == 'e')
        p++;
    p++;
    rd_status st = RD_OK;
    while (p < end && st == RD_OK) {
        if (*p == '\'' && p + 1 < end && p[1] == '\'') {
            st = rd_buf_putc(out, '\'');
            p += 2;
        } else if (*p == '\\' && p + 1 < end) {
            char c = p[1];
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            default: break;
            }
            st = rd_buf_putc(out, c);
            p += 2;
        } else {
            st = rd_buf_putc(out, *p++);
        }
    }
    if (st == RD_OK && !out->data)
        st = rd_buf_append(out, "", 0);
    return st;
}

rd_status rd_sql_quote_literal(rd_buf *out, const char *s, size_t len)
{
    rd_status st = rd_buf_putc(out, '\'');
    for (size_t i = 0; i < len && st == RD_OK; i++)
        st = s[i] == '\'' ? rd_buf_puts(out, "''") : rd_buf_putc(out, s[i]);
    return st == RD_OK ? rd_buf_putc(out, '\'') : st;
}

/* ---------------------------------------------------------------- rewrite */

static int tok_is(const rd_sql_tok *t, const char *word)
{
    return t->kind == RD_TOK_WORD && strlen(word) == t->len && strncasecmp(t->start, word, t->len) == 0;
}

static int tok_op(const rd_sql_tok *t, const char *op)
{
    return t->kind == RD_TOK_OP && strlen(op) == t->len && strncmp(t->start, op, t->len) == 0;
}

/* Index of the next non-space token at or after i (count when none). */
static size_t next_sig(const rd_sql_tok *v, size_t n, size_t i)
{
    while (i < n && v[i].kind == RD_TOK_SPACE)
        i++;
    return i;
}

/* Index of the ')' matching the '(' at i (n when unbalanced). */
static size_t match_paren(const rd_sql_tok *v, size_t n, size_t i)
{
    int depth = 0;
    for (size_t k = i; k < n; k++) {
        if (tok_op(&v[k], "("))
            depth++;
        else if (tok_op(&v[k], ")") && --depth == 0)
            return k;
    }
    return n;
}

static const char *datepart_name(const char *s, size_t len)
{
    static const struct {
        const char *alias, *name;
    } map[] = {
        { "year", "year" }, { "years", "year" }, { "y", "year" }, { "yr", "year" }, { "yrs", "year" },
        { "yy", "year" }, { "yyyy", "year" }, { "quarter", "quarter" }, { "quarters", "quarter" },
        { "qtr", "quarter" }, { "qtrs", "quarter" }, { "q", "quarter" }, { "month", "month" },
        { "months", "month" }, { "mon", "month" }, { "mons", "month" }, { "mm", "month" },
        { "week", "week" }, { "weeks", "week" }, { "w", "week" }, { "wk", "week" }, { "day", "day" },
        { "days", "day" }, { "d", "day" }, { "dd", "day" }, { "hour", "hour" }, { "hours", "hour" },
        { "h", "hour" }, { "hh", "hour" }, { "hr", "hour" }, { "hrs", "hour" }, { "minute", "minute" },
        { "minutes", "minute" }, { "m", "minute" }, { "mi", "minute" }, { "min", "minute" },
        { "mins", "minute" }, { "second", "second" }, { "seconds", "second" }, { "s", "second" },
        { "sec", "second" }, { "secs", "second" }, { "millisecond", "millisecond" },
        { "milliseconds", "millisecond" }, { "ms", "millisecond" }, { "msec", "millisecond" },
        { "microsecond", "microsecond" }, { "microseconds", "microsecond" }, { "us", "microsecond" },
        { "usec", "microsecond" }, { "dow", "dow" }, { "dayofweek", "dow" }, { "doy", "doy" },
        { "dayofyear", "doy" }, { "epoch", "epoch" }, { "decade", "decade" }, { "century", "century" },
        { "millennium", "millennium" },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i].alias) == len && strncasecmp(map[i].alias, s, len) == 0)
            return map[i].name;
    return NULL;
}

static rd_status add_param(char ***names, size_t *count, const char *s, size_t len)
{
    for (size_t i = 0; i < *count; i++)
        if (strlen((*names)[i]) == len && strncmp((*names)[i], s, len) == 0)
            return RD_OK;
    char **nv = realloc(*names, (*count + 1) * sizeof *nv);
    if (!nv)
        return RD_E_INTERNAL;
    *names = nv;
    nv[*count] = strndup(s, len);
    if (!nv[*count])
        return RD_E_INTERNAL;
    (*count)++;
    return RD_OK;
}

/* ---------------------------------------------------------------- output names
 * Redshift (PostgreSQL 8.0's FigureColname) names an unnamed select-list item: a column reference by the
 * column, a function call by the function, a CAST by its operand's name or else the type's, CASE "case",
 * anything else (operators, literals, subqueries) "?column?". The rewrite spells each such name out as an
 * alias so that DuckDB's own labels ("count_star()", "(1 + 1)") never reach a client. */

/* The significant tokens of [from, to). */
typedef struct sig_list {
    const rd_sql_tok *v;
    size_t *ix; /* indexes into v */
    size_t n;
} sig_list;

static const rd_sql_tok *sg(const sig_list *s, size_t k)
{
    return &s->v[s->ix[k]];
}

static int sg_word(const sig_list *s, size_t k, const char *w)
{
    return k < s->n && tok_is(sg(s, k), w);
}

static int sg_op(const sig_list *s, size_t k, const char *o)
{
    return k < s->n && tok_op(sg(s, k), o);
}

/* The position of the token closing the one at k: ')' for '(', ']' for '[', END for CASE; b when none. */
static size_t sg_close(const sig_list *s, size_t k, size_t b)
{
    int depth = 0;
    for (size_t i = k; i < b; i++) {
        const rd_sql_tok *t = sg(s, i);
        if (tok_op(t, "(") || tok_op(t, "[") || tok_is(t, "case"))
            depth++;
        else if ((tok_op(t, ")") || tok_op(t, "]") || tok_is(t, "end")) && --depth == 0)
            return i;
    }
    return b;
}

static void put_lower(rd_buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        rd_buf_putc(out, (char)tolower((unsigned char)s[i]));
}

/* An identifier's name: unquoted text lowercased; a quoted one unquoted ("" → "), lowercased unless the
 * session keeps the case of quoted identifiers. */
static void ident_name(const rd_sql_tok *t, unsigned flags, rd_buf *out)
{
    if (t->kind != RD_TOK_QIDENT) {
        put_lower(out, t->start, t->len);
        return;
    }
    for (size_t i = 1; i + 1 < t->len; i++) {
        char c = t->start[i];
        if (c == '"')
            i++; /* "" inside: one quote */
        rd_buf_putc(out, (flags & RD_SQL_CASE_SENSITIVE) ? c : (char)tolower((unsigned char)c));
    }
}

/* The name PostgreSQL gives a type written at [a, b) ("int" → int4, "character varying" → varchar). */
static void type_name(const sig_list *s, size_t a, size_t b, rd_buf *out)
{
    static const struct {
        const char *word, *name;
    } map[] = {
        { "int", "int4" },          { "integer", "int4" },   { "int4", "int4" },       { "smallint", "int2" },
        { "int2", "int2" },         { "bigint", "int8" },    { "int8", "int8" },       { "real", "float4" },
        { "float4", "float4" },     { "float", "float8" },   { "float8", "float8" },   { "double", "float8" },
        { "decimal", "numeric" },   { "numeric", "numeric" }, { "dec", "numeric" },    { "boolean", "bool" },
        { "bool", "bool" },         { "varchar", "varchar" }, { "nvarchar", "varchar" }, { "char", "bpchar" },
        { "character", "bpchar" },  { "nchar", "bpchar" },   { "bpchar", "bpchar" },   { "timestamptz", "timestamptz" },
        { "timetz", "timetz" },
    };
    if (a >= b) {
        rd_buf_puts(out, "?column?");
        return;
    }
    const rd_sql_tok *t = sg(s, a);
    int varying = sg_word(s, a + 1, "varying");
    int with_tz = 0;
    for (size_t k = a + 1; k + 2 < b; k++)
        if (sg_word(s, k, "with") && sg_word(s, k + 1, "time") && sg_word(s, k + 2, "zone"))
            with_tz = 1;
    if ((tok_is(t, "character") || tok_is(t, "char") || tok_is(t, "nchar")) && varying) {
        rd_buf_puts(out, "varchar");
        return;
    }
    if (tok_is(t, "timestamp") || tok_is(t, "time")) {
        rd_buf_puts(out, tok_is(t, "time") ? (with_tz ? "timetz" : "time") : (with_tz ? "timestamptz" : "timestamp"));
        return;
    }
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (tok_is(t, map[i].word)) {
            rd_buf_puts(out, map[i].name);
            return;
        }
    if (t->kind == RD_TOK_WORD || t->kind == RD_TOK_QIDENT) {
        size_t k = a; /* a qualified type: its last part */
        while (k + 2 < b && sg_op(s, k + 1, ".") &&
               (sg(s, k + 2)->kind == RD_TOK_WORD || sg(s, k + 2)->kind == RD_TOK_QIDENT))
            k += 2;
        ident_name(sg(s, k), 0, out);
        return;
    }
    rd_buf_puts(out, "?column?");
}

/* Words that can end an expression (so that a word after them is not a bare alias). */
static int ends_value_word(const rd_sql_tok *t)
{
    static const char *const ops[] = { "and", "or", "not", "is", "in", "like", "ilike", "similar", "between",
                                       "escape", "as", "distinct", "all", "select", "case", "when", "then",
                                       "else", "over", "any", "some", "exists", "time", "double", "character",
                                       "char", "nchar", "interval", "with", "at", "collate", "top", "on",
                                       "from", "by", NULL };
    if (t->kind != RD_TOK_WORD)
        return t->kind == RD_TOK_QIDENT || t->kind == RD_TOK_STRING || t->kind == RD_TOK_NUMBER ||
               t->kind == RD_TOK_PARAM || tok_op(t, ")") || tok_op(t, "]");
    for (size_t i = 0; ops[i]; i++)
        if (tok_is(t, ops[i]))
            return 0;
    return 1;
}

/* Words that are values or type words, never a bare alias at the end of an item. */
static int never_alias(const rd_sql_tok *t)
{
    static const char *const words[] = { "null", "true", "false", "end", "zone", "precision", "varying",
                                         "unknown", "sysdate", "current_date", "current_time",
                                         "current_timestamp", "localtime", "localtimestamp", "current_user",
                                         "session_user", "user", "nulls", "first", "last", NULL };
    for (size_t i = 0; words[i]; i++)
        if (tok_is(t, words[i]))
            return 1;
    return 0;
}

/* Keyword operators: an item holding one at its top level is an expression ("?column?"). */
static int is_keyword_op(const rd_sql_tok *t)
{
    static const char *const ops[] = { "and", "or", "not", "is", "in", "like", "ilike", "similar", "between",
                                       "isnull", "notnull", "at", "collate", "escape", NULL };
    for (size_t i = 0; ops[i]; i++)
        if (tok_is(t, ops[i]))
            return 1;
    return 0;
}

/* Writes the name of the expression at [a, b) into out; returns PostgreSQL's strength of the name
 * (0: "?column?", 1: a type's name or "case", 2: a column's or a function's name). */
static int figure_colname_at(const sig_list *s, size_t a, size_t b, unsigned flags, int depth, rd_buf *out);

static int figure_colname(const sig_list *s, size_t a, size_t b, unsigned flags, rd_buf *out)
{
    return figure_colname_at(s, a, b, flags, 0, out);
}

/* (depth: of nested parentheses and casts; past 32 the item is "?column?", which bounds the work) */
static int figure_colname_at(const sig_list *s, size_t a, size_t b, unsigned flags, int depth, rd_buf *out)
{
    if (a >= b || depth > 32) {
        rd_buf_puts(out, "?column?");
        return 0;
    }
    /* ( expr ) — a parenthesised subquery is a sublink: "?column?" as in PostgreSQL 8.0 */
    if (sg_op(s, a, "(") && sg_close(s, a, b) == b - 1) {
        if (sg_word(s, a + 1, "select") || sg_word(s, a + 1, "with")) {
            rd_buf_puts(out, "?column?");
            return 0;
        }
        return figure_colname_at(s, a + 1, b - 1, flags, depth + 1, out);
    }
    /* top level: the last "::" and any operator */
    size_t cast_at = b;
    for (size_t k = a; k < b; k++) {
        const rd_sql_tok *t = sg(s, k);
        if (tok_op(t, "(") || tok_op(t, "[") || tok_is(t, "case")) {
            k = sg_close(s, k, b);
            continue;
        }
        if (tok_op(t, "::")) {
            cast_at = k;
            continue;
        }
        if ((t->kind == RD_TOK_OP && !tok_op(t, ".")) || (t->kind == RD_TOK_WORD && is_keyword_op(t))) {
            rd_buf_puts(out, "?column?");
            return 0;
        }
    }
    if (cast_at < b) {
        rd_buf inner = RD_BUF_INIT;
        int strength = figure_colname_at(s, a, cast_at, flags, depth + 1, &inner);
        if (strength >= 2) {
            rd_buf_puts(out, rd_buf_cstr(&inner));
        } else {
            strength = 1;
            type_name(s, cast_at + 1, b, out);
        }
        rd_buf_free(&inner);
        return strength;
    }
    const rd_sql_tok *t = sg(s, a);
    if (tok_is(t, "case") && sg_close(s, a, b) == b - 1) {
        rd_buf_puts(out, "case");
        return 1;
    }
    if (t->kind == RD_TOK_WORD && a + 1 < b && sg(s, a + 1)->kind == RD_TOK_STRING) { /* date '…', interval '…' */
        type_name(s, a, a + 1, out);
        return 1;
    }
    if (t->kind != RD_TOK_WORD && t->kind != RD_TOK_QIDENT) {
        rd_buf_puts(out, "?column?");
        return 0;
    }
    /* a dotted name, perhaps a call: name [. name]* [( args )] [subscripts] [OVER …|WITHIN GROUP …|FILTER …] */
    size_t last = a;
    while (last + 2 < b && sg_op(s, last + 1, ".") &&
           (sg(s, last + 2)->kind == RD_TOK_WORD || sg(s, last + 2)->kind == RD_TOK_QIDENT))
        last += 2;
    const rd_sql_tok *nm = sg(s, last);
    if (last + 1 < b && sg_op(s, last + 1, "(") && nm->kind == RD_TOK_WORD) {
        size_t close = sg_close(s, last + 1, b);
        if (tok_is(nm, "cast") && last == a && close == b - 1) {
            size_t as = b;
            for (size_t k = last + 2; k < close; k++) {
                if (sg_op(s, k, "(") || sg_op(s, k, "[") || sg_word(s, k, "case"))
                    k = sg_close(s, k, close);
                else if (sg_word(s, k, "as"))
                    as = k;
            }
            if (as < close) {
                rd_buf inner = RD_BUF_INIT;
                int strength = figure_colname_at(s, last + 2, as, flags, depth + 1, &inner);
                if (strength >= 2)
                    rd_buf_puts(out, rd_buf_cstr(&inner));
                else
                    type_name(s, as + 1, close, out);
                rd_buf_free(&inner);
                return strength >= 2 ? strength : 1;
            }
        }
        if (tok_is(nm, "exists")) {
            rd_buf_puts(out, "?column?");
            return 0;
        }
        static const struct {
            const char *fn, *name;
        } renamed[] = {
            /* Redshift's own names for these calls (its documentation's examples) */
            { "nvl", "coalesce" },      { "getdate", "timestamp" }, { "date_part", "pgdate_part" },
            { "dateadd", "date_add" },  { "datediff", "date_diff" }, { "extract", "date_part" },
            { "trim", "btrim" },        { "decode", "case" },
        };
        const char *fixed = NULL;
        if (last == a)
            for (size_t i = 0; i < sizeof renamed / sizeof renamed[0]; i++)
                if (tok_is(nm, renamed[i].fn))
                    fixed = renamed[i].name;
        if (fixed)
            rd_buf_puts(out, fixed);
        else
            ident_name(nm, 0, out);
        return fixed && !strcmp(fixed, "case") ? 1 : 2; /* DECODE is a CASE */
    }
    if (last + 1 != b && !sg_op(s, last + 1, "[")) {
        rd_buf_puts(out, "?column?");
        return 0;
    }
    if (last == a && t->kind == RD_TOK_WORD) {
        static const struct {
            const char *word, *name;
        } values[] = {
            { "sysdate", "timestamp" },       { "current_date", "date" },          { "current_time", "timetz" },
            { "current_timestamp", "timestamptz" }, { "localtime", "time" },      { "localtimestamp", "timestamp" },
            { "current_user", "current_user" }, { "user", "current_user" },       { "session_user", "session_user" },
        };
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
            if (tok_is(t, values[i].word)) {
                rd_buf_puts(out, values[i].name);
                return 1;
            }
        if (tok_is(t, "null") || tok_is(t, "true") || tok_is(t, "false")) {
            rd_buf_puts(out, "?column?");
            return 0;
        }
    }
    ident_name(nm, flags, out);
    return 2;
}

/* 1 if the select-list item [a, b) names itself (AS name, or a bare alias after an expression). */
static int item_has_alias(const sig_list *s, size_t a, size_t b)
{
    if (b - a < 2)
        return 0;
    const rd_sql_tok *last = sg(s, b - 1), *prev = sg(s, b - 2);
    if (last->kind != RD_TOK_WORD && last->kind != RD_TOK_QIDENT)
        return 0;
    if (tok_is(prev, "as"))
        return 1;
    if (last->kind == RD_TOK_WORD && never_alias(last))
        return 0;
    if (tok_op(prev, ".") || tok_op(prev, "::"))
        return 0;
    return ends_value_word(prev);
}

static int ends_select_list(const rd_sql_tok *t)
{
    static const char *const words[] = { "from", "into", "where", "group", "having", "window", "qualify", "order",
                                         "limit", "offset", "fetch", "union", "intersect", "except", "minus", "for",
                                         "select", NULL };
    if (tok_op(t, ";"))
        return 1;
    for (size_t i = 0; words[i]; i++)
        if (tok_is(t, words[i]))
            return 1;
    return 0;
}

/* One alias to add: after token v[after], the text name. */
typedef struct colname_alias {
    size_t after;
    char *name;
} colname_alias;

static rd_status add_alias(colname_alias **list, size_t *n, size_t after, rd_buf *name)
{
    colname_alias *nv = *list;
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4, …: the array doubles */
        nv = realloc(*list, (*n ? 2 * *n : 1) * sizeof *nv);
        if (!nv)
            return RD_E_INTERNAL;
        *list = nv;
    }
    nv[*n].after = after;
    nv[*n].name = rd_buf_detach(name);
    if (!nv[*n].name)
        return RD_E_INTERNAL;
    (*n)++;
    return RD_OK;
}

/* Finds the unnamed items of every select list of tokens v[0, n) (the statement's SELECT, each UNION arm,
 * CTE bodies and subqueries: Redshift names them all, and a name inside shows through "*" outside) and
 * their Redshift names, in the order of the text. */
static rd_status find_aliases(const rd_sql_tok *v, size_t n, unsigned flags, colname_alias **list, size_t *count)
{
    sig_list s = { v, malloc((n ? n : 1) * sizeof(size_t)), 0 };
    if (!s.ix)
        return RD_E_INTERNAL;
    for (size_t i = 0; i < n; i++)
        if (v[i].kind != RD_TOK_SPACE)
            s.ix[s.n++] = i;
    rd_status st = RD_OK;
    for (size_t k = 0; k < s.n && st == RD_OK; k++) {
        if (!sg_word(&s, k, "select"))
            continue;
        size_t i = k + 1;
        if (sg_word(&s, i, "all"))
            i++;
        else if (sg_word(&s, i, "distinct")) {
            i++;
            if (sg_word(&s, i, "on") && sg_op(&s, i + 1, "("))
                i = sg_close(&s, i + 1, s.n) + 1;
        }
        if (sg_word(&s, i, "top") && i + 1 < s.n && sg(&s, i + 1)->kind == RD_TOK_NUMBER)
            i += 2;
        /* the items, to the first word that ends the list at its own level */
        size_t start = i;
        int d = 0;
        for (; i <= s.n && st == RD_OK; i++) {
            int end = i == s.n;
            if (!end) {
                const rd_sql_tok *u = sg(&s, i);
                if (tok_op(u, "(") || tok_op(u, "[") || tok_is(u, "case"))
                    d++;
                else if (tok_op(u, ")") || tok_op(u, "]") || tok_is(u, "end"))
                    d--;
                if (d < 0 || (d == 0 && ends_select_list(u) && !(tok_is(u, "group") && sg_word(&s, i - 1, "within"))))
                    end = 1;
                else if (d > 0 || !tok_op(u, ","))
                    continue;
            }
            if (i > start) { /* an item [start, i) */
                /* "*" or "t.*", perhaps with EXCLUDE (…): the table's own names */
                size_t q = start;
                while (q + 2 < i && (sg(&s, q)->kind == RD_TOK_WORD || sg(&s, q)->kind == RD_TOK_QIDENT) &&
                       sg_op(&s, q + 1, "."))
                    q += 2;
                int star = sg_op(&s, q, "*") && (q == start || sg_op(&s, q - 1, "."));
                if (!star && !item_has_alias(&s, start, i)) {
                    rd_buf name = RD_BUF_INIT;
                    figure_colname(&s, start, i, flags, &name);
                    if (rd_buf_failed(&name) || add_alias(list, count, s.ix[i - 1], &name) != RD_OK)
                        st = RD_E_INTERNAL;
                    rd_buf_free(&name);
                }
            }
            start = i + 1;
            if (end)
                break;
        }
        /* the scan goes on at k + 1: the selects nested in these items have lists of their own */
    }
    /* nested lists were found after the items around them: into text order */
    for (size_t a = 1; a < *count; a++)
        for (size_t b = a; b > 0 && (*list)[b - 1].after > (*list)[b].after; b--) {
            colname_alias tmp = (*list)[b - 1];
            (*list)[b - 1] = (*list)[b];
            (*list)[b] = tmp;
        }
    free(s.ix);
    return st;
}

/* Rewrites tokens [from, to) into out (recursive for LISTAGG's arguments). */
static rd_status rewrite_range(const rd_sql_tok *v, size_t from, size_t to, int is_create, unsigned flags,
                               rd_buf *out, char ***pnames, size_t *pcount, rd_error *err)
{
    rd_status st = RD_OK;
    for (size_t i = from; i < to && st == RD_OK; i++) {
        const rd_sql_tok *t = &v[i];
        size_t prev = i; /* previous significant token */
        while (prev > from && v[prev - 1].kind == RD_TOK_SPACE)
            prev--;
        int after_dot = prev > from && tok_op(&v[prev - 1], ".");
        if (t->kind == RD_TOK_STRING) {
            rd_buf val = RD_BUF_INIT;
            st = rd_sql_string_value(t, &val);
            if (st == RD_OK)
                st = rd_sql_quote_literal(out, val.data ? val.data : "", val.len);
            rd_buf_free(&val);
            continue;
        }
        if (t->kind == RD_TOK_PARAM) {
            if (add_param(pnames, pcount, t->start + 1, t->len - 1) != RD_OK)
                return rd_error_set(err, RD_E_INTERNAL, "out of memory");
            st = rd_buf_putc(out, '$');
            if (st == RD_OK)
                st = rd_buf_append(out, t->start + 1, t->len - 1);
            continue;
        }
        if (t->kind == RD_TOK_QIDENT && !(flags & RD_SQL_CASE_SENSITIVE)) {
            /* Redshift folds quoted identifiers to lowercase too, unless the session keeps their case */
            put_lower(out, t->start, t->len);
            st = rd_buf_failed(out) ? RD_E_INTERNAL : RD_OK;
            continue;
        }
        if (t->kind != RD_TOK_WORD || after_dot) {
            if (t->kind == RD_TOK_WORD)
                put_lower(out, t->start, t->len); /* names are stored lowercased, as Redshift does */
            else
                rd_buf_append(out, t->start, t->len);
            st = rd_buf_failed(out) ? RD_E_INTERNAL : RD_OK;
            continue;
        }
        size_t nx = next_sig(v, to, i + 1);
        int call = nx < to && tok_op(&v[nx], "(");
        if (tok_is(t, "nvl")) {
            st = rd_buf_puts(out, "coalesce");
        } else if (tok_is(t, "sysdate") && !call) {
            st = rd_buf_puts(out, "rd_sysdate()");
        } else if (tok_is(t, "getdate") && call) {
            st = rd_buf_puts(out, "rd_getdate");
        } else if (call && (tok_is(t, "dateadd") || tok_is(t, "datediff") || tok_is(t, "date_diff") ||
                            tok_is(t, "date_add") || tok_is(t, "date_part") || tok_is(t, "date_trunc"))) {
            /* FN ( part , ... ): quote and normalise the date part. */
            size_t a = next_sig(v, to, nx + 1);
            size_t comma = a < to ? next_sig(v, to, a + 1) : to;
            const char *name = NULL;
            if (a < to && comma < to && tok_op(&v[comma], ",")) {
                if (v[a].kind == RD_TOK_WORD || v[a].kind == RD_TOK_QIDENT)
                    name = v[a].kind == RD_TOK_WORD ? datepart_name(v[a].start, v[a].len)
                                                    : datepart_name(v[a].start + 1, v[a].len - 2);
                else if (v[a].kind == RD_TOK_STRING && v[a].len >= 2 && v[a].start[0] == '\'')
                    name = datepart_name(v[a].start + 1, v[a].len - 2);
            }
            if (tok_is(t, "dateadd") || tok_is(t, "date_add"))
                st = rd_buf_puts(out, name ? "rd_dateadd" : "date_add");
            else if (tok_is(t, "datediff") || tok_is(t, "date_diff"))
                st = rd_buf_puts(out, "datediff");
            else
                st = rd_buf_append(out, t->start, t->len);
            if (name && st == RD_OK) {
                st = rd_buf_printf(out, "('%s'", name);
                i = a; /* the loop continues after the part; the comma follows */
            }
        } else if (tok_is(t, "listagg") && call) {
            size_t close = match_paren(v, to, nx);
            if (close >= to)
                return rd_error_set(err, RD_E_USAGE, "ERROR: syntax error at end of input");
            st = rd_buf_puts(out, "string_agg(");
            if (st == RD_OK)
                st = rewrite_range(v, nx + 1, close, is_create, flags, out, pnames, pcount, err);
            size_t w = next_sig(v, to, close + 1);
            size_t g = w < to ? next_sig(v, to, w + 1) : to;
            size_t o = g < to ? next_sig(v, to, g + 1) : to;
            if (st == RD_OK && w < to && tok_is(&v[w], "within") && g < to && tok_is(&v[g], "group") && o < to &&
                tok_op(&v[o], "(")) {
                size_t oclose = match_paren(v, to, o);
                if (oclose >= to)
                    return rd_error_set(err, RD_E_USAGE, "ERROR: syntax error at end of input");
                st = rd_buf_putc(out, ' ');
                if (st == RD_OK)
                    st = rewrite_range(v, o + 1, oclose, is_create, flags, out, pnames, pcount, err);
                i = oclose;
            } else {
                i = close;
            }
            if (st == RD_OK)
                st = rd_buf_putc(out, ')');
        } else if ((flags & RD_SQL_BPCHAR) && (tok_is(t, "char") || tok_is(t, "character") || tok_is(t, "nchar") ||
                                               tok_is(t, "bpchar")) && !(nx < to && tok_is(&v[nx], "varying"))) {
            /* CHAR(n): the registered type "bpchar(n)" (blank-padded); bare CHAR is CHAR(1), BPCHAR CHAR(256) */
            long len = tok_is(t, "bpchar") ? 256 : 1;
            size_t num = call ? next_sig(v, to, nx + 1) : to;
            size_t close = num < to ? next_sig(v, to, num + 1) : to;
            int sized = call && num < to && v[num].kind == RD_TOK_NUMBER && close < to && tok_op(&v[close], ")");
            if (sized) {
                char digits[16];
                size_t dl = v[num].len < sizeof digits - 1 ? v[num].len : sizeof digits - 1;
                memcpy(digits, v[num].start, dl);
                digits[dl] = '\0';
                char *end;
                len = strtol(digits, &end, 10);
                if (*end)
                    len = 0;
            }
            if (len >= 1 && len <= RD_SQL_BPCHAR_MAX && (sized || !call)) {
                st = rd_buf_printf(out, "\"bpchar(%ld)\"", len);
                if (sized)
                    i = close;
            } else {
                st = rd_buf_puts(out, "VARCHAR"); /* a length past the registered ones: the (n) follows */
            }
        } else if (tok_is(t, "varbyte") || tok_is(t, "varbinary") || tok_is(t, "binary") ||
                   tok_is(t, "geometry") || tok_is(t, "super") || tok_is(t, "nvarchar") || tok_is(t, "bpchar") ||
                   tok_is(t, "nchar")) {
            size_t skip = i;
            if (tok_is(t, "binary")) { /* BINARY VARYING */
                size_t vy = next_sig(v, to, i + 1);
                if (vy < to && tok_is(&v[vy], "varying"))
                    skip = vy;
                else {
                    st = rd_buf_append(out, t->start, t->len);
                    continue;
                }
            }
            st = rd_buf_puts(out, tok_is(t, "super")                                                ? "JSON"
                                  : tok_is(t, "nvarchar") || tok_is(t, "bpchar") || tok_is(t, "nchar") ? "VARCHAR"
                                                                                                       : "BLOB");
            size_t p2 = next_sig(v, to, skip + 1);
            if (p2 < to && tok_op(&v[p2], "(") && !tok_is(t, "nvarchar") && !tok_is(t, "bpchar") &&
                !tok_is(t, "nchar")) {
                size_t c2 = match_paren(v, to, p2);
                skip = c2 < to ? c2 : skip;
            }
            i = skip;
        } else if (is_create && (tok_is(t, "encode") || tok_is(t, "diststyle") || tok_is(t, "backup"))) {
            i = next_sig(v, to, i + 1); /* drop the attribute and its word */
        } else if (is_create && (tok_is(t, "distkey") || tok_is(t, "sortkey") || tok_is(t, "compound") ||
                                 tok_is(t, "interleaved"))) {
            size_t k = i;
            if (tok_is(t, "compound") || tok_is(t, "interleaved"))
                k = next_sig(v, to, k + 1);
            size_t p2 = next_sig(v, to, k + 1);
            if (p2 < to && tok_op(&v[p2], "(")) {
                size_t c2 = match_paren(v, to, p2);
                k = c2 < to ? c2 : k;
            }
            i = k;
        } else {
            put_lower(out, t->start, t->len);
            st = rd_buf_failed(out) ? RD_E_INTERNAL : RD_OK;
        }
    }
    return st == RD_OK || err->code != RD_OK ? st : rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

rd_status rd_sql_rewrite_ex(const char *sql, unsigned flags, rd_buf *out, char ***param_names, size_t *param_count,
                            rd_error *err)
{
    rd_sql_tok *v;
    size_t n;
    rd_status st = rd_sql_tokenize(sql, &v, &n, err);
    if (st != RD_OK)
        return st;
    size_t f = next_sig(v, n, 0);
    int is_create = f < n && tok_is(&v[f], "create");
    rd_error local;
    rd_error_clear(&local);
    colname_alias *aliases = NULL;
    size_t nalias = 0;
    if (find_aliases(v, n, flags, &aliases, &nalias) != RD_OK)
        st = rd_error_set(&local, RD_E_INTERNAL, "out of memory");
    /* the text up to each unnamed item's end, then its name */
    size_t from = 0;
    for (size_t a = 0; a < nalias && st == RD_OK; a++) {
        if (a > 0 && aliases[a].after == aliases[a - 1].after)
            continue; /* one name per item */
        st = rewrite_range(v, from, aliases[a].after + 1, is_create, flags, out, param_names, param_count, &local);
        if (st == RD_OK) {
            rd_buf_puts(out, " AS \"");
            for (const char *c = aliases[a].name; *c; c++)
                rd_buf_puts(out, *c == '"' ? "\"\"" : (char[]){ *c, 0 });
            st = rd_buf_putc(out, '"');
        }
        from = aliases[a].after + 1;
    }
    if (st == RD_OK)
        st = rewrite_range(v, from, n, is_create, flags, out, param_names, param_count, &local);
    if (st == RD_OK && !out->data)
        st = rd_buf_append(out, "", 0);
    if (st != RD_OK && local.code == RD_OK)
        rd_error_set(&local, RD_E_INTERNAL, "out of memory");
    if (st != RD_OK && err)
        *err = local;
    for (size_t a = 0; a < nalias; a++)
        free(aliases[a].name);
    free(aliases);
    free(v);
    return st;
}

rd_status rd_sql_rewrite(const char *sql, rd_buf *out, char ***param_names, size_t *param_count, rd_error *err)
{
    return rd_sql_rewrite_ex(sql, 0, out, param_names, param_count, err);
}

int rd_sql_case_setting(const char *sql)
{
    rd_sql_tok *v;
    size_t n;
    if (rd_sql_tokenize(sql, &v, &n, NULL) != RD_OK)
        return -1;
    int result = -1;
    size_t k = next_sig(v, n, 0);
    int is_set = k < n && tok_is(&v[k], "set"), is_reset = k < n && tok_is(&v[k], "reset");
    k = k < n ? next_sig(v, n, k + 1) : n;
    if (is_set && k < n && tok_is(&v[k], "session"))
        k = next_sig(v, n, k + 1);
    if ((is_set || is_reset) && k < n && tok_is(&v[k], "enable_case_sensitive_identifier")) {
        k = next_sig(v, n, k + 1);
        if (is_reset) {
            result = 0; /* the default */
        } else if (k < n && (tok_is(&v[k], "to") || tok_op(&v[k], "="))) {
            k = next_sig(v, n, k + 1);
            rd_buf val = RD_BUF_INIT;
            if (k < n && v[k].kind == RD_TOK_STRING)
                rd_sql_string_value(&v[k], &val);
            else if (k < n && (v[k].kind == RD_TOK_WORD || v[k].kind == RD_TOK_NUMBER))
                rd_buf_append(&val, v[k].start, v[k].len);
            const char *w = rd_buf_cstr(&val);
            if (!strcasecmp(w, "true") || !strcasecmp(w, "on") || !strcmp(w, "1"))
                result = 1;
            else if (!strcasecmp(w, "false") || !strcasecmp(w, "off") || !strcmp(w, "0") ||
                     !strcasecmp(w, "default"))
                result = 0;
            rd_buf_free(&val);
        }
    }
    free(v);
    return result;
}

void rd_sql_first_word(const char *sql, char *out, size_t size)
{
    out[0] = '\0';
    rd_sql_tok *v;
    size_t n;
    if (rd_sql_tokenize(sql, &v, &n, NULL) != RD_OK)
        return;
    size_t f = next_sig(v, n, 0);
    while (f < n && tok_op(&v[f], "("))
        f = next_sig(v, n, f + 1);
    if (f < n && v[f].kind == RD_TOK_WORD) {
        size_t k = v[f].len < size - 1 ? v[f].len : size - 1;
        for (size_t i = 0; i < k; i++)
            out[i] = (char)tolower((unsigned char)v[f].start[i]);
        out[k] = '\0';
    }
    free(v);
}

int rd_sql_has_outer_limit(const char *sql)
{
    rd_sql_tok *v;
    size_t n;
    if (rd_sql_tokenize(sql, &v, &n, NULL) != RD_OK)
        return 0;
    int depth = 0, found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        if (tok_op(&v[i], "("))
            depth++;
        else if (tok_op(&v[i], ")"))
            depth--;
        else if (depth == 0 && (tok_is(&v[i], "limit") || tok_is(&v[i], "top")))
            found = 1;
    }
    free(v);
    return found;
}

const char *const rd_sql_dialect_setup[] = {
    "CREATE SCHEMA IF NOT EXISTS public",
    "CREATE OR REPLACE MACRO public.rd_getdate() AS date_trunc('second', get_current_timestamp()::TIMESTAMP)",
    "CREATE OR REPLACE MACRO public.rd_sysdate() AS get_current_timestamp()::TIMESTAMP",
    "CREATE OR REPLACE MACRO public.nvl2(e, a, b) AS CASE WHEN e IS NULL THEN b ELSE a END",
    "CREATE OR REPLACE MACRO public.rd_dateadd(part, n, t) AS CASE part "
    "WHEN 'quarter' THEN CAST(t AS TIMESTAMP) + to_months(CAST(n AS INTEGER) * 3) "
    "WHEN 'millisecond' THEN CAST(t AS TIMESTAMP) + to_microseconds(CAST(n AS BIGINT) * 1000) "
    "WHEN 'microsecond' THEN CAST(t AS TIMESTAMP) + to_microseconds(CAST(n AS BIGINT)) "
    "ELSE CAST(t AS TIMESTAMP) + CAST(CAST(n AS VARCHAR) || ' ' || part AS INTERVAL) END",
    "CREATE OR REPLACE MACRO public.len(s) AS length(s)",
    "CREATE OR REPLACE MACRO public.charindex(a, b) AS strpos(b, a)",
    /* SUPER is stored as its JSON text */
    "CREATE OR REPLACE MACRO public.json_parse(s) AS CAST(json(s) AS VARCHAR)",
    "CREATE OR REPLACE MACRO public.json_serialize(s) AS CAST(s AS VARCHAR)",
    NULL
};

/* ---------------------------------------------------------------- UNLOAD */

void rd_unload_spec_free(rd_unload_spec *s)
{
    if (!s)
        return;
    free(s->query);
    free(s->bucket);
    free(s->prefix);
    free(s->iam_role);
    free(s->kms_key_id);
    free(s->region);
    free(s->delimiter);
    free(s->null_as);
    free(s->extension);
    for (size_t i = 0; i < s->partition_count; i++)
        free(s->partition_by[i]);
    free(s->partition_by);
    memset(s, 0, sizeof *s);
}

typedef struct unload_parser {
    rd_sql_tok *v;
    size_t n, i;
    rd_error *err;
} unload_parser;

static const rd_sql_tok *up_peek(unload_parser *p)
{
    p->i = next_sig(p->v, p->n, p->i);
    while (p->i < p->n && tok_op(&p->v[p->i], ";") && next_sig(p->v, p->n, p->i + 1) >= p->n)
        p->i = p->n;
    return p->i < p->n ? &p->v[p->i] : NULL;
}

static rd_status up_syntax(unload_parser *p)
{
    const rd_sql_tok *t = up_peek(p);
    if (!t)
        return rd_error_set(p->err, RD_E_USAGE, "ERROR: syntax error at end of input");
    return rd_error_set(p->err, RD_E_USAGE, "ERROR: syntax error at or near \"%.*s\"", (int)(t->len > 60 ? 60 : t->len),
                        t->start);
}

static int up_word(unload_parser *p, const char *w)
{
    const rd_sql_tok *t = up_peek(p);
    if (t && tok_is(t, w)) {
        p->i++;
        return 1;
    }
    return 0;
}

static int up_op(unload_parser *p, const char *o)
{
    const rd_sql_tok *t = up_peek(p);
    if (t && tok_op(t, o)) {
        p->i++;
        return 1;
    }
    return 0;
}

static rd_status up_string(unload_parser *p, char **out)
{
    const rd_sql_tok *t = up_peek(p);
    if (!t || t->kind != RD_TOK_STRING)
        return up_syntax(p);
    rd_buf b = RD_BUF_INIT;
    if (rd_sql_string_value(t, &b) != RD_OK) {
        rd_buf_free(&b);
        return rd_error_set(p->err, RD_E_INTERNAL, "out of memory");
    }
    p->i++;
    free(*out);
    *out = rd_buf_detach(&b);
    return RD_OK;
}

static rd_status parse_target(unload_parser *p, const char *url, rd_unload_spec *s)
{
    if (strncasecmp(url, "s3://", 5) != 0)
        return rd_error_set(p->err, RD_E_USAGE, "ERROR: Invalid S3 path: %s. The path must start with s3://", url);
    const char *b = url + 5, *slash = strchr(b, '/');
    size_t blen = slash ? (size_t)(slash - b) : strlen(b);
    if (blen == 0)
        return rd_error_set(p->err, RD_E_USAGE, "ERROR: Invalid S3 path: %s. The bucket name is missing", url);
    s->bucket = strndup(b, blen);
    s->prefix = strdup(slash ? slash + 1 : "");
    return s->bucket && s->prefix ? RD_OK : rd_error_set(p->err, RD_E_INTERNAL, "out of memory");
}

static rd_status parse_size(unload_parser *p, rd_unload_spec *s)
{
    up_word(p, "as");
    const rd_sql_tok *t = up_peek(p);
    if (!t || t->kind != RD_TOK_NUMBER)
        return up_syntax(p);
    char num[64];
    size_t len = t->len < sizeof num - 1 ? t->len : sizeof num - 1;
    memcpy(num, t->start, len);
    num[len] = '\0';
    char *end;
    errno = 0;
    double val = strtod(num, &end);
    if (errno || *end)
        return up_syntax(p);
    p->i++;
    double mult = 1024.0 * 1024.0;
    if (up_word(p, "gb"))
        mult = 1024.0 * 1024.0 * 1024.0;
    else
        up_word(p, "mb");
    double bytes = val * mult;
    if (bytes < 5.0 * 1024 * 1024 || bytes > 6.2 * 1024 * 1024 * 1024)
        return rd_error_set(p->err, RD_E_USAGE,
                            "ERROR: MAXFILESIZE is out of range. Specify a value between 5 MB and 6.2 GB.");
    s->max_file_size = (uint64_t)bytes;
    return RD_OK;
}

rd_status rd_unload_parse(const char *sql, rd_unload_spec *out, rd_error *err)
{
    unload_parser p = { NULL, 0, 0, err };
    rd_unload_spec s;
    memset(&s, 0, sizeof s);
    s.parallel = 1;
    rd_status st = rd_sql_tokenize(sql, &p.v, &p.n, err);
    if (st != RD_OK)
        return st;
    char *target = NULL;
    if (!up_word(&p, "unload") || !up_op(&p, "(")) {
        st = up_syntax(&p);
        goto done;
    }
    if ((st = up_string(&p, &s.query)) != RD_OK)
        goto done;
    if (!up_op(&p, ")") || !up_word(&p, "to")) {
        st = up_syntax(&p);
        goto done;
    }
    if ((st = up_string(&p, &target)) != RD_OK || (st = parse_target(&p, target, &s)) != RD_OK)
        goto done;
    int have_auth = 0, have_format = 0;
    unsigned seen = 0;
    while (up_peek(&p)) {
        const rd_sql_tok *t = up_peek(&p);
        if (up_word(&p, "with"))
            continue;
        if (up_word(&p, "iam_role")) {
            if (up_word(&p, "default")) {
                free(s.iam_role);
                s.iam_role = strdup("default");
            } else if ((st = up_string(&p, &s.iam_role)) != RD_OK) {
                goto done;
            }
            char *comma = s.iam_role ? strchr(s.iam_role, ',') : NULL; /* chained roles: the first one */
            if (comma)
                *comma = '\0';
            have_auth = 1;
        } else if (up_word(&p, "credentials")) {
            up_word(&p, "as");
            char *cred = NULL;
            if ((st = up_string(&p, &cred)) != RD_OK)
                goto done;
            const char *r = strstr(cred, "aws_iam_role=");
            free(s.iam_role);
            s.iam_role = r ? strndup(r + 13, strcspn(r + 13, ";,")) : strdup("credentials");
            free(cred);
            have_auth = 1;
        } else if (up_word(&p, "format")) {
            up_word(&p, "as");
            continue; /* the format word follows */
        } else if (tok_is(t, "parquet") || tok_is(t, "csv") || tok_is(t, "json")) {
            if (have_format) {
                st = rd_error_set(err, RD_E_USAGE, "ERROR: conflicting or redundant options");
                goto done;
            }
            s.format = tok_is(t, "parquet") ? RD_UNLOAD_PARQUET : tok_is(t, "csv") ? RD_UNLOAD_CSV : RD_UNLOAD_JSON;
            have_format = 1;
            p.i++;
        } else if (up_word(&p, "parallel")) {
            if (up_word(&p, "off") || up_word(&p, "false"))
                s.parallel = 0;
            else if (up_word(&p, "on") || up_word(&p, "true"))
                s.parallel = 1;
        } else if (up_word(&p, "maxfilesize")) {
            if ((st = parse_size(&p, &s)) != RD_OK)
                goto done;
        } else if (up_word(&p, "rowgroupsize")) {
            if ((st = parse_size(&p, &s)) != RD_OK)
                goto done;
            s.row_group_size = s.max_file_size;
            s.max_file_size = 0;
        } else if (up_word(&p, "manifest")) {
            s.manifest = 1;
            if (up_word(&p, "verbose"))
                s.manifest_verbose = 1;
        } else if (up_word(&p, "allowoverwrite")) {
            s.allow_overwrite = 1;
        } else if (up_word(&p, "cleanpath")) {
            s.clean_path = 1;
        } else if (up_word(&p, "header")) {
            s.header = 1;
        } else if (up_word(&p, "addquotes")) {
            s.add_quotes = 1;
        } else if (up_word(&p, "escape")) {
            s.escape = 1;
        } else if (up_word(&p, "gzip")) {
            s.gzip = 1;
        } else if (up_word(&p, "bzip2")) {
            s.bzip2 = 1;
        } else if (up_word(&p, "zstd")) {
            s.zstd = 1;
        } else if (up_word(&p, "encrypted")) {
            s.encrypted = 1;
            up_word(&p, "auto");
        } else if (up_word(&p, "kms_key_id")) {
            if ((st = up_string(&p, &s.kms_key_id)) != RD_OK)
                goto done;
        } else if (up_word(&p, "region")) {
            up_word(&p, "as");
            if ((st = up_string(&p, &s.region)) != RD_OK)
                goto done;
        } else if (up_word(&p, "delimiter")) {
            up_word(&p, "as");
            if ((st = up_string(&p, &s.delimiter)) != RD_OK)
                goto done;
        } else if (up_word(&p, "null")) {
            up_word(&p, "as");
            if ((st = up_string(&p, &s.null_as)) != RD_OK)
                goto done;
        } else if (up_word(&p, "extension")) {
            if ((st = up_string(&p, &s.extension)) != RD_OK)
                goto done;
        } else if (up_word(&p, "partition")) {
            if (!up_word(&p, "by") || !up_op(&p, "(")) {
                st = up_syntax(&p);
                goto done;
            }
            do {
                const rd_sql_tok *c = up_peek(&p);
                if (!c || (c->kind != RD_TOK_WORD && c->kind != RD_TOK_QIDENT)) {
                    st = up_syntax(&p);
                    goto done;
                }
                char **nv = realloc(s.partition_by, (s.partition_count + 1) * sizeof *nv);
                if (!nv) {
                    st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
                    goto done;
                }
                s.partition_by = nv;
                char *name = c->kind == RD_TOK_QIDENT ? strndup(c->start + 1, c->len - 2) : strndup(c->start, c->len);
                for (char *q = name; q && *q; q++)
                    *q = (char)tolower((unsigned char)*q);
                s.partition_by[s.partition_count++] = name;
                p.i++;
            } while (up_op(&p, ","));
            if (!up_op(&p, ")")) {
                st = up_syntax(&p);
                goto done;
            }
            if (up_word(&p, "include"))
                s.partition_include = 1;
        } else {
            st = up_syntax(&p);
            goto done;
        }
        (void)seen;
    }
    if (!have_auth) {
        st = rd_error_set(err, RD_E_USAGE, "ERROR: IAM_ROLE or CREDENTIALS must be specified for UNLOAD");
        goto done;
    }
    if (s.allow_overwrite && s.clean_path) {
        st = rd_error_set(err, RD_E_USAGE, "ERROR: Cannot use both ALLOWOVERWRITE and CLEANPATH options");
        goto done;
    }
    if (s.format == RD_UNLOAD_PARQUET) {
        const char *bad = s.delimiter ? "DELIMITER" : s.header ? "HEADER" : s.add_quotes ? "ADDQUOTES"
                        : s.escape ? "ESCAPE" : s.null_as ? "NULL AS" : s.gzip ? "GZIP" : s.bzip2 ? "BZIP2"
                        : s.zstd ? "ZSTD" : NULL;
        if (bad) {
            st = rd_error_set(err, RD_E_USAGE, "ERROR: %s option is not supported with PARQUET format", bad);
            goto done;
        }
    }
    if (s.partition_count && !s.partition_include && s.format != RD_UNLOAD_PARQUET && s.format != RD_UNLOAD_CSV &&
        s.format != RD_UNLOAD_TEXT) {
        st = rd_error_set(err, RD_E_USAGE, "ERROR: PARTITION BY is not supported with this format");
        goto done;
    }
done:
    free(target);
    free(p.v);
    if (st == RD_OK)
        *out = s;
    else
        rd_unload_spec_free(&s);
    return st;
}
