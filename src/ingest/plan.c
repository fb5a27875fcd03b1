/* plan.c — Redshift ↔ DuckDB column planning (see plan.h). */
#include "ingest/plan.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void rd_plan_quote_ident(rd_buf *out, const char *name)
{
    rd_buf_putc(out, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            rd_buf_putc(out, '"');
        rd_buf_putc(out, *p);
    }
    rd_buf_putc(out, '"');
}

static int is(const char *t, const char *a)
{
    return strcasecmp(t, a) == 0;
}

static void classify(rd_plan_column *c)
{
    const char *t = c->rs_type;
    c->kind = RD_COL_PLAIN;
    const char *d = "VARCHAR";
    if (is(t, "int2") || is(t, "smallint"))
        d = "SMALLINT";
    else if (is(t, "int4") || is(t, "integer") || is(t, "int"))
        d = "INTEGER";
    else if (is(t, "int8") || is(t, "bigint"))
        d = "BIGINT";
    else if (is(t, "float4") || is(t, "real"))
        d = "REAL";
    else if (is(t, "float8") || is(t, "float") || is(t, "double precision"))
        d = "DOUBLE";
    else if (is(t, "bool") || is(t, "boolean"))
        d = "BOOLEAN";
    else if (is(t, "date"))
        d = "DATE";
    else if (is(t, "timestamp") || is(t, "timestamp without time zone"))
        d = "TIMESTAMP";
    else if (is(t, "timestamptz") || is(t, "timestamp with time zone"))
        d = "TIMESTAMPTZ";
    else if (is(t, "time") || is(t, "time without time zone")) {
        d = "TIME";
        c->kind = RD_COL_TIME;
    } else if (is(t, "timetz") || is(t, "time with time zone")) {
        d = "TIMETZ";
        c->kind = RD_COL_TIMETZ;
    } else if (is(t, "varbyte") || is(t, "varbinary") || is(t, "binary varying") || is(t, "geometry") ||
               is(t, "geography")) {
        d = "BLOB";
        c->kind = RD_COL_HEX;
    } else if (is(t, "super")) {
        d = "JSON";
        c->kind = RD_COL_JSON;
    }
    if (is(t, "numeric") || is(t, "decimal")) {
        int p = c->precision > 0 && c->precision <= 38 ? c->precision : 38;
        int s = c->scale >= 0 && c->scale <= p ? c->scale : 0;
        snprintf(c->duck_type, sizeof c->duck_type, "DECIMAL(%d,%d)", p, s);
    } else {
        snprintf(c->duck_type, sizeof c->duck_type, "%s", d);
    }
}

rd_status rd_plan_from_metadata(json_t *md, rd_plan *out, rd_error *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_array(md) || json_array_size(md) == 0)
        return rd_error_set(err, RD_E_REMOTE, "the query's result has no column metadata");
    out->ncols = json_array_size(md);
    out->cols = calloc(out->ncols, sizeof *out->cols);
    if (!out->cols)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < out->ncols; i++) {
        json_t *m = json_array_get(md, i);
        const char *name = json_string_value(json_object_get(m, "name"));
        if (!name || !*name)
            name = json_string_value(json_object_get(m, "label"));
        const char *type = json_string_value(json_object_get(m, "typeName"));
        if (!name || !*name || !type) {
            rd_plan_free(out);
            return rd_error_set(err, RD_E_REMOTE, "column %zu of the result has no name or type", i + 1);
        }
        rd_plan_column *c = &out->cols[i];
        c->name = strdup(name);
        c->rs_type = strdup(type);
        c->precision = (int)json_integer_value(json_object_get(m, "precision"));
        c->scale = (int)json_integer_value(json_object_get(m, "scale"));
        if (!c->name || !c->rs_type) {
            rd_plan_free(out);
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
        }
        classify(c);
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->cols[j].name, c->name) == 0) {
                rd_status st = rd_error_set(err, RD_E_USAGE,
                                            "the query returns two columns named \"%s\": give them distinct "
                                            "aliases",
                                            c->name);
                rd_plan_free(out);
                return st;
            }
        if (c->kind != RD_COL_PLAIN && c->kind != RD_COL_JSON)
            out->needs_encoding = 1;
    }
    return RD_OK;
}

void rd_plan_free(rd_plan *p)
{
    for (size_t i = 0; p->cols && i < p->ncols; i++) {
        free(p->cols[i].name);
        free(p->cols[i].rs_type);
    }
    free(p->cols);
    memset(p, 0, sizeof *p);
}

int rd_plan_unload_select(const rd_plan *p, rd_buf *out)
{
    if (!p->needs_encoding)
        return 0;
    for (size_t i = 0; i < p->ncols; i++) {
        const rd_plan_column *c = &p->cols[i];
        if (i)
            rd_buf_puts(out, ", ");
        switch (c->kind) {
        case RD_COL_TIME:
        case RD_COL_TIMETZ:
            rd_buf_puts(out, "cast(");
            rd_plan_quote_ident(out, c->name);
            rd_buf_puts(out, " as varchar)");
            break;
        case RD_COL_HEX:
            rd_buf_puts(out, is(c->rs_type, "geometry") || is(c->rs_type, "geography") ? "st_ashexewkb(" : "to_hex(");
            rd_plan_quote_ident(out, c->name);
            rd_buf_puts(out, ")");
            break;
        default:
            rd_plan_quote_ident(out, c->name);
            continue;
        }
        rd_buf_puts(out, " as ");
        rd_plan_quote_ident(out, c->name);
    }
    return 1;
}

void rd_plan_decode_select(const rd_plan *p, rd_buf *out)
{
    for (size_t i = 0; i < p->ncols; i++) {
        const rd_plan_column *c = &p->cols[i];
        if (i)
            rd_buf_puts(out, ", ");
        switch (c->kind) {
        case RD_COL_HEX:
            rd_buf_puts(out, "unhex(");
            rd_plan_quote_ident(out, c->name);
            rd_buf_puts(out, ")");
            break;
        default:
            rd_buf_puts(out, "CAST(");
            rd_plan_quote_ident(out, c->name);
            rd_buf_printf(out, " AS %s)", c->duck_type);
            break;
        }
        rd_buf_puts(out, " AS ");
        rd_plan_quote_ident(out, c->name);
    }
}

void rd_plan_create_columns(const rd_plan *p, rd_buf *out)
{
    for (size_t i = 0; i < p->ncols; i++) {
        if (i)
            rd_buf_puts(out, ", ");
        rd_plan_quote_ident(out, p->cols[i].name);
        rd_buf_printf(out, " %s", p->cols[i].duck_type);
    }
}
