/* sample.c — the built-in sample data: a deterministic generator (DuckDB SQL over range(N), every value a
 * hash of (row, seed, column)) so the demo and benchmarks need nothing downloaded. The same spec and seed
 * give the same table on any machine with the pinned DuckDB. */
#include "emulator/redshift/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef RD_HAVE_DUCKDB

typedef struct sample_spec {
    char name[32];
    unsigned long long rows;
    int is_cluster;
    char target[128];
    char database[128];
    char table[128];
} sample_spec;

static rd_status parse_spec(const char *spec, sample_spec *out, rd_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->target, sizeof out->target, "demo");
    snprintf(out->database, sizeof out->database, "dev");
    out->rows = 1000;
    size_t nlen = strcspn(spec, ":");
    if (nlen == 0 || nlen >= sizeof out->name)
        return rd_error_set(err, RD_E_USAGE, "sample '%s': expected NAME:rows=N (e.g. sales:rows=1000000)", spec);
    memcpy(out->name, spec, nlen);
    if (strcmp(out->name, "sales") != 0)
        return rd_error_set(err, RD_E_USAGE, "sample '%s': unknown sample '%s' (known: sales)", spec, out->name);
    snprintf(out->table, sizeof out->table, "%s", out->name);
    const char *p = spec[nlen] ? spec + nlen + 1 : spec + nlen;
    while (*p) {
        size_t len = strcspn(p, ",:");
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return rd_error_set(err, RD_E_USAGE, "sample '%s': expected key=value in '%.*s'", spec, (int)len, p);
        size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
        char val[128];
        if (vlen == 0 || vlen >= sizeof val)
            return rd_error_set(err, RD_E_USAGE, "sample '%s': bad value for '%.*s'", spec, (int)klen, p);
        memcpy(val, eq + 1, vlen);
        val[vlen] = '\0';
        if (klen == 4 && strncmp(p, "rows", 4) == 0) {
            char *end;
            out->rows = strtoull(val, &end, 10);
            if (*end || out->rows == 0)
                return rd_error_set(err, RD_E_USAGE, "sample '%s': rows must be a positive number", spec);
        } else if (klen == 9 && strncmp(p, "workgroup", 9) == 0) {
            out->is_cluster = 0;
            snprintf(out->target, sizeof out->target, "%s", val);
        } else if (klen == 7 && strncmp(p, "cluster", 7) == 0) {
            out->is_cluster = 1;
            snprintf(out->target, sizeof out->target, "%s", val);
        } else if (klen == 8 && strncmp(p, "database", 8) == 0) {
            snprintf(out->database, sizeof out->database, "%s", val);
        } else if (klen == 5 && strncmp(p, "table", 5) == 0) {
            snprintf(out->table, sizeof out->table, "%s", val);
        } else {
            return rd_error_set(err, RD_E_USAGE, "sample '%s': unknown option '%.*s' (rows, workgroup, cluster, "
                                "database, table)", spec, (int)klen, p);
        }
        p += len;
        if (*p)
            p++;
    }
    for (const char *c = out->table; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return rd_error_set(err, RD_E_USAGE, "sample '%s': table names are lowercase letters, digits and '_'",
                                spec);
    return RD_OK;
}

/* H(k): a 64-bit hash of (row, seed, k). */
#define H(k) "hash(i, $seed, " #k ")"

/* Receipts are 1 to 16 bytes cut from this constant (the md5s of 0..15) at a hashed offset: a substring is
 * several times cheaper per row than hashing a string. */
#define RECEIPT_HEX                                                         \
    "'cfcd208495d565ef66e7dff9f98764dac4ca4238a0b923820dcc509a6f75849b"     \
    "c81e728d9d4c2f636f067f89cc14862ceccbc87e4b5ce2fe28308fd9f2a7baf3"      \
    "a87ff679a2f3e71d9181a67b7542122ce4da3b7fbbce2345d7772b0674a318d5"      \
    "1679091c5a880faf6fb5e6087eb1b2dc8f14e45fceea167a5a36dedd4bea2543"      \
    "c9f0f895fb98ab9159f51fd0297e236d45c48cce2e2d7fbdea1afc51c7c6ad26"      \
    "d3d9446802a44259755d38e6d163e8206512bd43d9caa6e02c990b0a82652dca"      \
    "c20ad4d76fe97759aa27a0c99bff6710c51ce410c124a10e0db5e4b97fc2af39"      \
    "aab3238922bcc25a6f606eb525ffdc569bf31c7ff062936a96d3c8bd1f8f2ff3'"

/* The generator's cost matters (the emulator is the benchmark ground): every value is arithmetic, a cast or a
 * short list lookup on hashes (no per-row string parsing, hashing of strings or time zone conversion), and the
 * rows come from a materialised id table, whose scan DuckDB runs on every thread while keeping the insertion
 * order (a scan of range() runs on one thread). */

static const char sales_sql[] =
    "CREATE OR REPLACE TABLE public.%s (\n"
    "  sale_id BIGINT NOT NULL, store_id SMALLINT, quantity INTEGER, unit_price DECIMAL(12,2),\n"
    "  total_amount DECIMAL(38,10), discount REAL, tax_rate DOUBLE, is_online BOOLEAN, currency VARCHAR,\n"
    "  customer_name VARCHAR, sale_date DATE, sale_time TIME, sale_timetz TIMETZ, created_at TIMESTAMP,\n"
    "  updated_at TIMESTAMPTZ, receipt BLOB, attributes VARCHAR, note VARCHAR);\n"
    "CREATE OR REPLACE TEMP TABLE rd_sample_ids AS SELECT range AS i FROM range(%llu);\n"
    "INSERT INTO public.%s SELECT\n"
    "  i + 1,\n"
    "  CAST(" H(1) " %% 500 AS SMALLINT),\n"
    "  CASE WHEN " H(2) " %% 20 = 0 THEN NULL ELSE CAST(" H(3) " %% 100 + 1 AS INTEGER) END,\n"
    "  CAST(CAST(" H(4) " %% 10000000 AS DECIMAL(12,0)) / 100 AS DECIMAL(12,2)),\n"
    "  CASE WHEN " H(5) " %% 25 = 0 THEN NULL ELSE CAST((CASE WHEN " H(8) " %% 2 = 0 THEN -1 ELSE 1 END) *\n"
    "       (CAST(" H(6) " %% 1000000000000000000 AS DECIMAL(38,10)) +\n"
    "        CAST(" H(7) " %% 10000000000 AS DECIMAL(20,0)) * CAST(0.0000000001 AS DECIMAL(11,10))) AS DECIMAL(38,10)) END,\n"
    "  CAST((" H(9) " %% 1000) / 1000.0 AS REAL),\n"
    "  CASE WHEN " H(10) " %% 40 = 0 THEN NULL ELSE CAST((" H(11) " %% 1000000) / 1000000.0 AS DOUBLE) END,\n"
    "  CASE WHEN " H(12) " %% 30 = 0 THEN NULL ELSE " H(13) " %% 2 = 0 END,\n"
    "  ['USD','EUR','JPY','GBP','BRL'][CAST(" H(14) " %% 5 AS INTEGER) + 1],\n"
    "  CASE WHEN " H(15) " %% 50 = 0 THEN NULL ELSE\n"
    "    ['José','Zoë','Łukasz','Søren','François','Müller','山田 太郎','李小龙','Ахмед','Αλέξης','محمد','Ana 😀',\n"
    "     'O''Brien','Nguyễn']\n"
    "    [CAST(" H(16) " %% 14 AS INTEGER) + 1] || ' ' ||\n"
    "    ['Smith','García','Øster','Dvořák','Björk','García-Márquez','Ünal','佐藤'][CAST(" H(17) " %% 8 AS INTEGER) + 1] END,\n"
    "  DATE '2023-01-01' + CAST(" H(18) " %% 730 AS INTEGER),\n"
    "  CASE WHEN " H(19) " %% 33 = 0 THEN NULL ELSE TIME '00:00:00' + to_microseconds(CAST(" H(20) " %% 86400000000 AS BIGINT)) END,\n"
    "  CAST(TIME '00:00:00' + to_seconds(CAST(" H(21) " %% 86400 AS BIGINT)) AS TIMETZ),\n"
    "  TIMESTAMP '2023-01-01 00:00:00' + to_microseconds(CAST(" H(22) " %% 63072000000000 AS BIGINT)),\n"
    "  CASE WHEN " H(23) " %% 45 = 0 THEN NULL ELSE to_timestamp(CAST(\n"
    "    [1678597200000000, 1699160400000000, 1710046800000000, 1730610000000000][CAST(" H(24) " %% 4 AS INTEGER) + 1]\n"
    "    + " H(25) " %% 21600000000 AS BIGINT) / 1000000.0) END,\n"
    "  CASE WHEN " H(26) " %% 20 = 0 THEN NULL ELSE unhex(substr(" RECEIPT_HEX ",\n"
    "    1 + 2 * CAST(" H(27) " %% 240 AS INTEGER), 2 * CAST(" H(28) " %% 16 + 1 AS INTEGER))) END,\n"
    "  CASE WHEN " H(29) " %% 15 = 0 THEN NULL ELSE '{\"channel\":\"' || ['web','store','app'][CAST(" H(30) " %% 3 AS INTEGER) + 1]\n"
    "    || '\",\"items\":' || CAST(" H(31) " %% 9 + 1 AS VARCHAR) || ',\"tags\":[\"a\",\"b\"]}' END,\n"
    "  ['plain', 'with \"double quotes\"', 'comma, separated', 'pipe | separated', 'back\\\\slash',\n"
    "   'line one' || chr(10) || 'line two', '', 'tab' || chr(9) || 'bed'][CAST(" H(32) " %% 8 AS INTEGER) + 1]\n"
    "FROM rd_sample_ids;\n"
    "DROP TABLE rd_sample_ids";

rd_status rd_emu_engine_load_sample(rd_emu_engine *eng, const char *spec, unsigned long long seed, rd_error *err)
{
    sample_spec s;
    rd_status st = parse_spec(spec ? spec : "", &s, err);
    if (st != RD_OK)
        return st;
    if (!rd_emu_engine_has_target(eng, s.is_cluster, s.target))
        return rd_error_set(err, RD_E_USAGE, "sample '%s': %s '%s' is not configured", spec,
                            s.is_cluster ? "cluster" : "workgroup", s.target);
    rd_emu_warehouse *wh;
    if ((st = rd_emu_engine_warehouse(eng, s.is_cluster, s.target, s.database, &wh, err)) != RD_OK)
        return st;
    duckdb_connection c;
    if ((st = rd_emu_engine_connect(wh, &c, err)) != RD_OK)
        return st;
    /* the seed enters the SQL as a literal (a 64-bit number, so no quoting concerns) */
    rd_buf seed_lit = RD_BUF_INIT, sql = RD_BUF_INIT, fmt = RD_BUF_INIT;
    rd_buf_printf(&seed_lit, "CAST(%llu AS UBIGINT)", seed);
    const char *p = sales_sql;
    while (*p) { /* replace $seed */
        const char *m = strstr(p, "$seed");
        if (!m) {
            rd_buf_puts(&fmt, p);
            break;
        }
        rd_buf_append(&fmt, p, (size_t)(m - p));
        rd_buf_puts(&fmt, rd_buf_cstr(&seed_lit));
        p = m + 5;
    }
    /* the format is sales_sql above with $seed filled in: this file's own constant, not outside input */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    rd_buf_printf(&sql, rd_buf_cstr(&fmt), s.table, s.rows, s.table);
#pragma GCC diagnostic pop
    duckdb_result r;
    if (duckdb_query(c, rd_buf_cstr(&sql), &r) != DuckDBSuccess)
        st = rd_error_set(err, RD_E_INTERNAL, "sample '%s': %s", spec, duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    duckdb_disconnect(&c);
    rd_buf_free(&seed_lit);
    rd_buf_free(&sql);
    rd_buf_free(&fmt);
    return st;
}

#endif
