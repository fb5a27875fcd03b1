/* dialect.h — the Redshift SQL dialect on DuckDB: a tokenizer for Redshift SQL (string literals with ''
 * and backslash escapes, dollar-quoted strings $$…$$ and $tag$…$tag$, quoted identifiers, comments, :name
 * parameters), the rewrite of Redshift-only syntax into DuckDB SQL, and the parse of UNLOAD. Pure text work:
 * no DuckDB calls. Thread-safe. */
#ifndef RD_EMULATOR_DIALECT_H
#define RD_EMULATOR_DIALECT_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/buf.h"
#include "redduck/error.h"

typedef enum rd_sql_tok_kind {
    RD_TOK_END = 0,
    RD_TOK_WORD,    /* identifier or keyword (unquoted) */
    RD_TOK_QIDENT,  /* "quoted identifier" */
    RD_TOK_STRING,  /* 'literal', E'literal', $$literal$$ or $tag$literal$tag$ */
    RD_TOK_NUMBER,
    RD_TOK_PARAM,   /* :name */
    RD_TOK_OP,      /* punctuation / operator, "::" as one token */
    RD_TOK_SPACE    /* whitespace and comments */
} rd_sql_tok_kind;

typedef struct rd_sql_tok {
    rd_sql_tok_kind kind;
    const char *start; /* points into the source text */
    size_t len;
} rd_sql_tok;

/* Splits sql into tokens (malloc'd array in *toks, free()). An unterminated string, quoted identifier
 * or comment is RD_E_USAGE with a Redshift-style message ("unterminated quoted string at or near ..."). */
rd_status rd_sql_tokenize(const char *sql, rd_sql_tok **toks, size_t *count, rd_error *err);

/* The value of a RD_TOK_STRING token: '' → ', and backslash escapes as Redshift reads them
 * (\' → ', \\ → \, \n \t \r \b \f, any other \c → c); a dollar-quoted string's text as it is.
 * Appends to out. */
rd_status rd_sql_string_value(const rd_sql_tok *tok, rd_buf *out);
/* Appends s as a standard SQL literal ('…' with ' doubled, no backslash escapes). */
rd_status rd_sql_quote_literal(rd_buf *out, const char *s, size_t len);

/* Rewrites Redshift SQL into DuckDB SQL: Redshift string literals, NVL, NVL2, GETDATE(), SYSDATE,
 * DATEADD/DATEDIFF/DATE_PART with bare date parts, LISTAGG … WITHIN GROUP, Redshift type names
 * (VARBYTE, SUPER, …), CREATE TABLE attributes (DISTKEY, SORTKEY, ENCODE, DISTSTYLE, BACKUP), and
 * :name parameters into $name. The names of the parameters used are appended to *param_names
 * (malloc'd array of malloc'd strings, duplicates once). Appends to out. */
rd_status rd_sql_rewrite(const char *sql, rd_buf *out, char ***param_names, size_t *param_count, rd_error *err);

/* rd_sql_rewrite, and the names Redshift gives result columns: each unnamed item of every select list
 * (the statement's, each UNION arm's, CTE bodies' and subqueries', whose names show through "*") gets an
 * explicit alias —
 * count(*) AS "count", 1+1 AS "?column?", x::varchar AS "x", '1'::int AS "int4", CASE … AS "case",
 * NVL(…) AS "coalesce" — and identifiers are lowercased (quoted ones too, unless flags has
 * RD_SQL_CASE_SENSITIVE: the session ran SET enable_case_sensitive_identifier TO true). `*` and `t.*`
 * keep the table's names. rd_sql_rewrite is rd_sql_rewrite_ex with flags 0. */
#define RD_SQL_CASE_SENSITIVE 1u
/* CHAR(n), CHARACTER(n), NCHAR(n), BPCHAR(n) (1 <= n <= RD_SQL_BPCHAR_MAX) become the DuckDB type
 * "bpchar(n)", which the caller has registered (rd_emu_register_types); without this flag, VARCHAR. */
#define RD_SQL_BPCHAR 2u
#define RD_SQL_BPCHAR_MAX 256
rd_status rd_sql_rewrite_ex(const char *sql, unsigned flags, rd_buf *out, char ***param_names, size_t *param_count,
                            rd_error *err);

/* For SET [SESSION] enable_case_sensitive_identifier TO|= true|false|on|off and RESET …: the value the
 * statement sets (1 or 0); -1 for any other statement. DuckDB knows no such setting: the caller keeps it
 * per session and passes RD_SQL_CASE_SENSITIVE to rd_sql_rewrite_ex. */
int rd_sql_case_setting(const char *sql);

/* The first keyword of a statement, lowercased into out (size >= 32); "" when none. */
void rd_sql_first_word(const char *sql, char *out, size_t size);

/* 1 if the (DuckDB or Redshift) query has a LIMIT at its outermost level. */
int rd_sql_has_outer_limit(const char *sql);

/* The DuckDB statements that create the helper macros and types of the dialect (run once per database). */
extern const char *const rd_sql_dialect_setup[];

/* UNLOAD ('query') TO 's3://bucket/prefix' authorization [options]. */
typedef enum rd_unload_format { RD_UNLOAD_TEXT = 0, RD_UNLOAD_CSV, RD_UNLOAD_PARQUET, RD_UNLOAD_JSON } rd_unload_format;

typedef struct rd_unload_spec {
    char *query;            /* the unescaped query text (Redshift SQL) */
    char *bucket;
    char *prefix;           /* key prefix, may be "" */
    char *iam_role;         /* first role ARN, or "default" */
    rd_unload_format format;
    int parallel;           /* 1 (default) or 0 */
    uint64_t max_file_size; /* bytes; 0 = default (6.2 GB) */
    int manifest, manifest_verbose;
    int allow_overwrite, clean_path, header, encrypted, add_quotes, escape;
    int gzip, bzip2, zstd;
    char *kms_key_id, *region, *delimiter, *null_as, *extension;
    char **partition_by;    /* column names (lowercased) */
    size_t partition_count;
    int partition_include;
    uint64_t row_group_size;
} rd_unload_spec;

/* Parses an UNLOAD statement. RD_E_USAGE with the Redshift error text on bad syntax or options. */
rd_status rd_unload_parse(const char *sql, rd_unload_spec *out, rd_error *err);
void rd_unload_spec_free(rd_unload_spec *spec);

#endif
