/* data_catalog.h — the pure part of the Data API's catalog calls: the LIKE patterns of SchemaPattern and
 * TablePattern. Thread safe, no allocation. (The calls themselves are in data_catalog.c, entered through
 * data_api_internal.h.) */
#ifndef RD_EMULATOR_DATA_CATALOG_H
#define RD_EMULATOR_DATA_CATALOG_H

/* 1 if s matches the SQL LIKE pattern: '%' any run of characters (also none), '_' exactly one character
 * (a whole UTF-8 sequence), '\' makes the next character literal; everything else compares byte for byte
 * (case-sensitive, as Redshift's LIKE). A NULL pattern matches everything; a NULL s nothing. */
int rd_emu_like_match(const char *pattern, const char *s);

#endif
