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

/* Rewrites tokens [from, to) into out (recursive for LISTAGG's arguments). */
static rd_status rewrite_range(const rd_sql_tok *v, size_t from, size_t to, int is_create, rd_buf *out,
                               char ***pnames, size_t *pcount, rd_error *err)
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
        if (t->kind != RD_TOK_WORD || after_dot) {
            st = rd_buf_append(out, t->start, t->len);
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
                st = rewrite_range(v, nx + 1, close, is_create, out, pnames, pcount, err);
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
                    st = rewrite_range(v, o + 1, oclose, is_create, out, pnames, pcount, err);
                i = oclose;
            } else {
                i = close;
            }
            if (st == RD_OK)
                st = rd_buf_putc(out, ')');
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
            st = rd_buf_append(out, t->start, t->len);
        }
    }
    return st == RD_OK || err->code != RD_OK ? st : rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

rd_status rd_sql_rewrite(const char *sql, rd_buf *out, char ***param_names, size_t *param_count, rd_error *err)
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
    st = rewrite_range(v, 0, n, is_create, out, param_names, param_count, &local);
    if (st == RD_OK && !out->data)
        st = rd_buf_append(out, "", 0);
    if (st != RD_OK && err)
        *err = local;
    free(v);
    return st;
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
