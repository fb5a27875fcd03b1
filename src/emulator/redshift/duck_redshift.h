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
/* Describes a DuckDB column the way Redshift does (type_name is static): a JSON column is "super", a
 * column of the type "bpchar(n)" (see below) "bpchar" with precision n. */
void rd_emu_column_describe(duckdb_logical_type t, rd_emu_column *col);

/* CHAR(n) — Redshift's bpchar — as a DuckDB type named "bpchar(n)": a VARCHAR whose alias keeps n (in
 * the database file too), with a cast from VARCHAR that pads values with blanks to n (so INSERT, COPY and
 * comparisons with text pad as Redshift stores them; trailing blanks then do not matter in comparisons)
 * and refuses longer ones ("value too long for type character(n)"), and a cast back to VARCHAR.
 * rd_emu_register_char_type registers one length (again: a no-op); rd_emu_register_types lengths 1 to
 * RD_EMU_CHAR_REGISTERED. A type registered through one connection serves the whole database; it must be
 * registered on each open of the database before SQL names it (rd_sql_rewrite_ex with RD_SQL_BPCHAR). */
#include "emulator/redshift/dialect.h"
#include "redduck/error.h"
#define RD_EMU_CHAR_MAX 4096
#define RD_EMU_CHAR_REGISTERED RD_SQL_BPCHAR_MAX
rd_status rd_emu_register_char_type(duckdb_connection c, int n, rd_error *err);
rd_status rd_emu_register_types(duckdb_connection c, rd_error *err);
#endif

#endif
