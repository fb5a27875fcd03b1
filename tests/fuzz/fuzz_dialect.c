/* fuzz_dialect.c — libFuzzer target: arbitrary text as the SQL a Data API client sends the emulator — the
 * Redshift tokenizer (quotes, E'' escapes, dollar quoting, comments, :params), every string token's value,
 * the rewrite into DuckDB SQL (with the result column names and each flag), the SET of
 * enable_case_sensitive_identifier, the outer-LIMIT check and the UNLOAD parse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/redshift/dialect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (64u << 10))
        return 0;
    char *sql = malloc(size + 1);
    if (!sql)
        return 0;
    memcpy(sql, data, size);
    sql[size] = '\0'; /* the Data API's Sql is a JSON string: text up to its first NUL */

    rd_error err;
    rd_sql_tok *toks = NULL;
    size_t n = 0;
    if (rd_sql_tokenize(sql, &toks, &n, &err) == RD_OK) {
        for (size_t i = 0; i < n; i++) {
            if (toks[i].kind != RD_TOK_STRING)
                continue;
            rd_buf v = RD_BUF_INIT;
            rd_sql_string_value(&toks[i], &v);
            rd_buf q = RD_BUF_INIT;
            rd_sql_quote_literal(&q, v.data ? v.data : "", v.len);
            rd_buf_free(&q);
            rd_buf_free(&v);
        }
    }
    free(toks);

    /* the rewrite with each set of flags (the output names, lowercasing, CHAR as bpchar) */
    for (unsigned flags = 0; flags <= (RD_SQL_CASE_SENSITIVE | RD_SQL_BPCHAR); flags++) {
        rd_buf out = RD_BUF_INIT;
        char **names = NULL;
        size_t nnames = 0;
        rd_sql_rewrite_ex(sql, flags, &out, &names, &nnames, &err);
        for (size_t i = 0; i < nnames; i++)
            free(names[i]);
        free(names);
        rd_buf_free(&out);
    }
    (void)rd_sql_case_setting(sql);

    char word[32];
    rd_sql_first_word(sql, word, sizeof word);
    (void)rd_sql_has_outer_limit(sql);

    rd_unload_spec spec;
    memset(&spec, 0, sizeof spec);
    if (rd_unload_parse(sql, &spec, &err) == RD_OK)
        rd_unload_spec_free(&spec);
    free(sql);
    return 0;
}
