/* duck_redshift.c — DuckDB's answers in Redshift's words: error text and column descriptions. Used by the
 * statement runner (engine.c) and UNLOAD (unload.c); owns no state. */
#include "emulator/redshift/duck_redshift.h"

#ifdef RD_HAVE_DUCKDB

#include <ctype.h>
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
        /* SUPER is kept as DuckDB's JSON (a VARCHAR with that alias) */
        char *alias = duckdb_logical_type_get_alias(t);
        int super = alias && strcmp(alias, "JSON") == 0;
        duckdb_free(alias);
        col->type_name = super ? "super" : "varchar";
        col->precision = super ? 4194304 : 256;
        col->is_case_sensitive = 1;
        break;
    }
    }
}

#endif
