/* unload_sql.c — the UNLOAD statement (see unload_sql.h). */
#include "ingest/unload_sql.h"

#include <inttypes.h>
#include <string.h>

rd_status rd_unload_sql_quote_literal(rd_buf *out, const char *s)
{
    for (const char *p = s; *p; p++) {
        rd_status st = *p == '\'' ? rd_buf_puts(out, "''") : *p == '\\' ? rd_buf_puts(out, "\\\\") : rd_buf_putc(out, *p);
        if (st != RD_OK)
            return st;
    }
    return RD_OK;
}

rd_status rd_unload_sql_quote_table(rd_buf *out, const char *dotted, rd_error *err)
{
    const char *dot = strchr(dotted, '.');
    if (!*dotted || (dot && (dot == dotted || !dot[1] || strchr(dot + 1, '.'))))
        return rd_error_set(err, RD_E_USAGE, "table '%s' must be 'name' or 'schema.name'", dotted);
    const char *p = dotted;
    for (int part = 0; part < 2 && p; part++) {
        const char *end = part == 0 && dot ? dot : p + strlen(p);
        rd_buf_putc(out, '"');
        for (const char *c = p; c < end; c++) {
            if (*c == '"')
                rd_buf_putc(out, '"');
            rd_buf_putc(out, *c);
        }
        rd_buf_putc(out, '"');
        if (part == 0 && dot) {
            rd_buf_putc(out, '.');
            p = dot + 1;
        } else {
            p = NULL;
        }
    }
    return RD_OK;
}

/* The user's query without surrounding whitespace and trailing semicolons. */
static void trimmed_query(const char *sql, const char **start, size_t *len)
{
    const char *s = sql;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ';'))
        n--;
    *start = s;
    *len = n;
}

rd_status rd_unload_sql_select(const char *sql, const char *table, const char *select_list, const char *suffix,
                               rd_buf *out, rd_error *err)
{
    if ((!sql) == (!table))
        return rd_error_set(err, RD_E_USAGE, "give either a query (--sql) or a table (--table)");
    if (sql) {
        const char *q;
        size_t n;
        trimmed_query(sql, &q, &n);
        if (n == 0)
            return rd_error_set(err, RD_E_USAGE, "the query is empty");
        /* newlines keep a trailing `--` comment from swallowing the closing parenthesis */
        rd_buf_printf(out, "select %s from (\n%.*s\n) as redduck_q", select_list ? select_list : "*", (int)n, q);
    } else {
        rd_buf_printf(out, "select %s from ", select_list ? select_list : "*");
        rd_status st = rd_unload_sql_quote_table(out, table, err);
        if (st != RD_OK)
            return st;
    }
    if (suffix)
        rd_buf_puts(out, suffix);
    return rd_buf_failed(out) ? rd_error_set(err, RD_E_INTERNAL, "out of memory") : RD_OK;
}

rd_status rd_unload_sql_build(const rd_unload_request *req, rd_buf *out, rd_error *err)
{
    if ((!req->sql) == (!req->table))
        return rd_error_set(err, RD_E_USAGE, "give either a query (--sql) or a table (--table)");
    if (!req->destination || strncmp(req->destination, "s3://", 5) != 0 || !req->destination[5])
        return rd_error_set(err, RD_E_USAGE, "the staging location must be an s3://bucket/prefix URL");
    rd_buf inner = RD_BUF_INIT;
    rd_buf where = RD_BUF_INIT;
    if (req->where && *req->where)
        rd_buf_printf(&where, " where %s", req->where);
    rd_status st = rd_unload_sql_select(req->sql, req->table, req->select_list, where.len ? rd_buf_cstr(&where) : NULL,
                                        &inner, err);
    if (st == RD_OK && rd_buf_failed(&where))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_buf_free(&where);
    if (st != RD_OK) {
        rd_buf_free(&inner);
        return st;
    }
    rd_buf_puts(out, "UNLOAD ('");
    rd_unload_sql_quote_literal(out, rd_buf_cstr(&inner));
    rd_buf_puts(out, "')\nTO '");
    rd_unload_sql_quote_literal(out, req->destination);
    rd_buf_puts(out, "'\nIAM_ROLE ");
    if (!req->iam_role || !*req->iam_role || strcmp(req->iam_role, "default") == 0) {
        rd_buf_puts(out, "default");
    } else {
        rd_buf_putc(out, '\'');
        rd_unload_sql_quote_literal(out, req->iam_role);
        rd_buf_putc(out, '\'');
    }
    rd_buf_puts(out, "\nFORMAT AS PARQUET\nMANIFEST VERBOSE");
    if (req->max_file_size_mb)
        rd_buf_printf(out, "\nMAXFILESIZE %" PRIu64 " MB", req->max_file_size_mb);
    if (req->parallel_off)
        rd_buf_puts(out, "\nPARALLEL OFF");
    if (req->kms_key_id && *req->kms_key_id) {
        rd_buf_puts(out, "\nKMS_KEY_ID '");
        rd_unload_sql_quote_literal(out, req->kms_key_id);
        rd_buf_puts(out, "' ENCRYPTED");
    }
    if (req->region && *req->region) {
        rd_buf_puts(out, "\nREGION AS '");
        rd_unload_sql_quote_literal(out, req->region);
        rd_buf_putc(out, '\'');
    }
    rd_buf_free(&inner);
    return rd_buf_failed(out) ? rd_error_set(err, RD_E_INTERNAL, "out of memory") : RD_OK;
}
