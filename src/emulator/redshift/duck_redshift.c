/* duck_redshift.c — DuckDB's answers in Redshift's words: error text and column descriptions. Used by the
 * statement runner (engine.c) and UNLOAD (unload.c); owns no state. */
#include "emulator/redshift/duck_redshift.h"

#ifdef RD_HAVE_DUCKDB

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redduck/buf.h"

/* DuckDB's error text as Redshift would word it: "ERROR: relation "x" does not exist". */
char *rd_emu_redshift_error(const char *duck)
{
    rd_buf b = RD_BUF_INIT;
    if (!duck)
        duck = "unknown error";
    if (strncmp(duck, "ERROR: ", 7) == 0) {
        rd_buf_append(&b, duck, strcspn(duck, "\n"));
        return rd_buf_detach(&b);
    }
    const char *msg = duck;
    const char *colon = strstr(duck, " Error: ");
    if (colon && (size_t)(colon - duck) < 40)
        msg = colon + 8;
    size_t len = strcspn(msg, "\n");
    const char *tn = "Table with name ";
    if (strncmp(msg, tn, strlen(tn)) == 0 && strstr(msg, " does not exist")) {
        const char *name = msg + strlen(tn);
        size_t nlen = (size_t)(strstr(name, " does not exist") - name);
        rd_buf_puts(&b, "ERROR: relation \"");
        for (size_t i = 0; i < nlen; i++)
            rd_buf_putc(&b, (char)tolower((unsigned char)name[i]));
        rd_buf_puts(&b, "\" does not exist");
    } else {
        rd_buf_puts(&b, "ERROR: ");
        rd_buf_append(&b, msg, len);
    }
    return rd_buf_detach(&b);
}

void rd_emu_column_describe(duckdb_logical_type t, rd_emu_column *col)
{
    duckdb_type id = duckdb_get_type_id(t);
    col->duck_type = (int)id;
    col->precision = 0;
    col->scale = 0;
    col->is_signed = 0;
    col->is_case_sensitive = 0;
    switch (id) {
    case DUCKDB_TYPE_BOOLEAN: col->type_name = "bool"; col->precision = 1; break;
    case DUCKDB_TYPE_TINYINT:
    case DUCKDB_TYPE_SMALLINT:
    case DUCKDB_TYPE_UTINYINT: col->type_name = "int2"; col->precision = 5; col->is_signed = 1; break;
    case DUCKDB_TYPE_INTEGER:
    case DUCKDB_TYPE_USMALLINT: col->type_name = "int4"; col->precision = 10; col->is_signed = 1; break;
    case DUCKDB_TYPE_BIGINT:
    case DUCKDB_TYPE_UINTEGER: col->type_name = "int8"; col->precision = 19; col->is_signed = 1; break;
    case DUCKDB_TYPE_UBIGINT:
    case DUCKDB_TYPE_HUGEINT:
    case DUCKDB_TYPE_UHUGEINT: col->type_name = "numeric"; col->precision = 38; col->is_signed = 1; break;
    case DUCKDB_TYPE_DECIMAL:
        col->type_name = "numeric";
        col->precision = duckdb_decimal_width(t);
        col->scale = duckdb_decimal_scale(t);
        col->is_signed = 1;
        break;
    case DUCKDB_TYPE_FLOAT: col->type_name = "float4"; col->precision = 8; col->scale = 8; col->is_signed = 1; break;
    case DUCKDB_TYPE_DOUBLE: col->type_name = "float8"; col->precision = 17; col->scale = 17; col->is_signed = 1; break;
    case DUCKDB_TYPE_DATE: col->type_name = "date"; col->precision = 13; break;
    case DUCKDB_TYPE_TIME: col->type_name = "time"; col->precision = 15; col->scale = 6; break;
    case DUCKDB_TYPE_TIME_TZ: col->type_name = "timetz"; col->precision = 21; col->scale = 6; break;
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS: col->type_name = "timestamp"; col->precision = 29; col->scale = 6; break;
    case DUCKDB_TYPE_TIMESTAMP_TZ: col->type_name = "timestamptz"; col->precision = 35; col->scale = 6; break;
    case DUCKDB_TYPE_BLOB: col->type_name = "varbyte"; col->precision = 64000; break;
    case DUCKDB_TYPE_VARCHAR:
    default: {
        /* SUPER is kept as DuckDB's JSON (a VARCHAR with that alias), CHAR(n) as the type "bpchar(n)" */
        char *alias = duckdb_logical_type_get_alias(t);
        int super = alias && strcmp(alias, "JSON") == 0;
        int n = 0;
        char tail = 0;
        if (alias && sscanf(alias, "bpchar(%d%c", &n, &tail) == 2 && tail == ')' && n > 0) {
            col->type_name = "bpchar";
            col->precision = n;
        } else {
            col->type_name = super ? "super" : "varchar";
            col->precision = super ? 4194304 : 256;
        }
        duckdb_free(alias);
        col->is_case_sensitive = 1;
        break;
    }
    }
}

/* CHAR(n): VARCHAR values blank-padded to n on the way in (a cast from VARCHAR, which INSERT, COPY and
 * comparisons with text use), longer ones refused as Redshift does; back to VARCHAR as they are. */
static void set_null(duckdb_vector out, idx_t row)
{
    duckdb_vector_ensure_validity_writable(out);
    duckdb_validity_set_row_invalid(duckdb_vector_get_validity(out), row);
}

static bool char_pad(duckdb_function_info info, idx_t count, duckdb_vector in, duckdb_vector out)
{
    size_t n = (size_t)(uintptr_t)duckdb_cast_function_get_extra_info(info);
    duckdb_string_t *src = (duckdb_string_t *)duckdb_vector_get_data(in);
    uint64_t *valid = duckdb_vector_get_validity(in);
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        duckdb_cast_function_set_error(info, "out of memory");
        return false;
    }
    bool ok = true;
    for (idx_t i = 0; i < count && ok; i++) {
        if (valid && !duckdb_validity_row_is_valid(valid, i)) {
            set_null(out, i);
            continue;
        }
        size_t len = duckdb_string_t_length(src[i]);
        const char *p = duckdb_string_t_data(&src[i]);
        while (len > n && p[len - 1] == ' ') /* trailing blanks beyond n do not count */
            len--;
        if (len > n) {
            char msg[96];
            snprintf(msg, sizeof msg, "value too long for type character(%zu)", n);
            duckdb_cast_function_set_row_error(info, msg, i, out);
            ok = false;
            break;
        }
        memcpy(buf, p, len);
        memset(buf + len, ' ', n - len);
        duckdb_vector_assign_string_element_len(out, i, buf, n);
    }
    free(buf);
    return ok;
}

static bool char_copy(duckdb_function_info info, idx_t count, duckdb_vector in, duckdb_vector out)
{
    (void)info;
    duckdb_string_t *src = (duckdb_string_t *)duckdb_vector_get_data(in);
    uint64_t *valid = duckdb_vector_get_validity(in);
    for (idx_t i = 0; i < count; i++) {
        if (valid && !duckdb_validity_row_is_valid(valid, i))
            set_null(out, i);
        else
            duckdb_vector_assign_string_element_len(out, i, duckdb_string_t_data(&src[i]),
                                                    duckdb_string_t_length(src[i]));
    }
    return true;
}

static int register_cast(duckdb_connection c, duckdb_logical_type from, duckdb_logical_type to,
                         duckdb_cast_function_t fn, size_t n)
{
    duckdb_cast_function f = duckdb_create_cast_function();
    duckdb_cast_function_set_source_type(f, from);
    duckdb_cast_function_set_target_type(f, to);
    duckdb_cast_function_set_implicit_cast_cost(f, 1);
    duckdb_cast_function_set_function(f, fn);
    duckdb_cast_function_set_extra_info(f, (void *)(uintptr_t)n, NULL);
    int ok = duckdb_register_cast_function(c, f) == DuckDBSuccess;
    duckdb_destroy_cast_function(&f);
    return ok;
}

rd_status rd_emu_register_char_type(duckdb_connection c, int n, rd_error *err)
{
    if (n < 1 || n > RD_EMU_CHAR_MAX)
        return rd_error_set(err, RD_E_USAGE, "ERROR: length for type char must be between 1 and %d", RD_EMU_CHAR_MAX);
    char name[32];
    snprintf(name, sizeof name, "bpchar(%d)", n);
    duckdb_logical_type t = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    duckdb_logical_type v = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    duckdb_logical_type_set_alias(t, name);
    rd_status st = RD_OK;
    /* a second registration of the same name fails: the type and its casts are there already */
    if (duckdb_register_logical_type(c, t, NULL) == DuckDBSuccess &&
        (!register_cast(c, v, t, char_pad, (size_t)n) || !register_cast(c, t, v, char_copy, 0)))
        st = rd_error_set(err, RD_E_INTERNAL, "cannot register the type %s", name);
    duckdb_destroy_logical_type(&t);
    duckdb_destroy_logical_type(&v);
    return st;
}

rd_status rd_emu_register_types(duckdb_connection c, rd_error *err)
{
    for (int n = 1; n <= RD_EMU_CHAR_REGISTERED; n++) {
        rd_status st = rd_emu_register_char_type(c, n, err);
        if (st != RD_OK)
            return st;
    }
    return RD_OK;
}

#endif
