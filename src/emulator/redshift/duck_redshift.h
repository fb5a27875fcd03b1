/* duck_redshift.h — DuckDB's error text and column types as Redshift states them. Pure functions, thread
 * safe; shared by the statement runner and UNLOAD so that neither includes the other. */
#ifndef RD_EMULATOR_DUCK_REDSHIFT_H
#define RD_EMULATOR_DUCK_REDSHIFT_H

/* One column of a result, as Redshift describes it. */
typedef struct rd_emu_column {
    char *name;
    const char *type_name; /* static: "int4", "varchar", ... */
    int duck_type;         /* duckdb_type */
    int precision, scale;
    int is_signed, is_case_sensitive;
} rd_emu_column;

#ifdef RD_HAVE_DUCKDB
#include "duckdb.h"

/* DuckDB's error text as Redshift words it ("ERROR: relation \"x\" does not exist"); malloc'd, NULL on OOM. */
char *rd_emu_redshift_error(const char *duck);
/* Describes a DuckDB column the way Redshift does (type_name is static). */
void rd_emu_column_describe(duckdb_logical_type t, rd_emu_column *col);
#endif

#endif
