/* test_dialect.c — the Redshift dialect: tokenizer (quotes, escapes, comments, parameters), the rewrite
 * into DuckDB SQL, and the UNLOAD parse (quoting, options in any order and case, bad options). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/redshift/dialect.h"

static char *rewrite(const char *sql, char ***names, size_t *n)
{
    rd_buf out = RD_BUF_INIT;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_sql_rewrite(sql, &out, names, n, &err), RD_OK);
    return rd_buf_detach(&out);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void test_tokenize_strings_and_comments(void **state)
{
    (void)state;
    rd_sql_tok *v;
    size_t n;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_sql_tokenize("select 'it''s', 'a\\'b' -- c 'x\n/* d ' */ x::int", &v, &n, &err), RD_OK);
    int strings = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == RD_TOK_STRING) {
            rd_buf b = RD_BUF_INIT;
            rd_sql_string_value(&v[i], &b);
            assert_string_equal(rd_buf_cstr(&b), strings == 0 ? "it's" : "a'b");
            rd_buf_free(&b);
            strings++;
        }
    assert_int_equal(strings, 2);
    free(v);
    assert_int_equal(rd_sql_tokenize("select 'open", &v, &n, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "unterminated quoted string"));
}

static void test_dollar_quoting(void **state)
{
    (void)state;
    rd_sql_tok *v;
    size_t n;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_sql_tokenize("select $$a'b$$, $t$x $$ y$t$, $$$$, $1, a$b, $_9$\\n$_9$", &v, &n, &err), RD_OK);
    const char *want[] = { "a'b", "x $$ y", "", "\\n" };
    size_t strings = 0, words = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].kind == RD_TOK_STRING) {
            rd_buf b = RD_BUF_INIT;
            rd_sql_string_value(&v[i], &b);
            assert_true(strings < 4);
            assert_string_equal(rd_buf_cstr(&b), want[strings]);
            rd_buf_free(&b);
            strings++;
        } else if (v[i].kind == RD_TOK_WORD && v[i].len == 3 && memcmp(v[i].start, "a$b", 3) == 0) {
            words++; /* '$' inside an identifier opens nothing */
        }
    }
    assert_int_equal(strings, 4);
    assert_int_equal(words, 1);
    free(v);
    assert_int_equal(rd_sql_tokenize("select $x$open$y$", &v, &n, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "unterminated dollar-quoted string"));
    /* rewritten as a standard literal for DuckDB */
    rd_buf out = RD_BUF_INIT;
    char **names = NULL;
    size_t count = 0;
    assert_int_equal(rd_sql_rewrite("select $$a'b$$ as x", &out, &names, &count, &err), RD_OK);
    assert_string_equal(rd_buf_cstr(&out), "select 'a''b' as x");
    rd_buf_free(&out);
    free(names);
    /* and as UNLOAD's query */
    rd_unload_spec spec;
    memset(&spec, 0, sizeof spec);
    assert_int_equal(rd_unload_parse("UNLOAD ($q$select 'it''s', $$x$$$q$) TO 's3://b/p/' IAM_ROLE default", &spec,
                                     &err),
                     RD_OK);
    assert_string_equal(spec.query, "select 'it''s', $$x$$");
    rd_unload_spec_free(&spec);
}

static void test_rewrite_functions_and_types(void **state)
{
    (void)state;
    char **names = NULL;
    size_t n = 0;
    char *s = rewrite("SELECT NVL(a, 0), GETDATE(), SYSDATE, DATEADD(day, 3, d), DATEDIFF(mins, a, b), "
                      "x.nvl FROM t WHERE s = 'it\\'s'", &names, &n);
    assert_non_null(strstr(s, "coalesce(a, 0)"));
    assert_non_null(strstr(s, "rd_getdate()"));
    assert_non_null(strstr(s, "rd_sysdate()"));
    assert_non_null(strstr(s, "rd_dateadd('day', 3, d)"));
    assert_non_null(strstr(s, "datediff('minute', a, b)"));
    assert_non_null(strstr(s, "x.nvl")); /* qualified names are left alone */
    assert_non_null(strstr(s, "'it''s'"));
    assert_int_equal(n, 0);
    free(s);
    s = rewrite("SELECT LISTAGG(name, ',') WITHIN GROUP (ORDER BY name) FROM t", &names, &n);
    assert_non_null(strstr(s, "string_agg(name, ',' order by name)")); /* words lowercased, as Redshift stores names */
    free(s);
    s = rewrite("CREATE TABLE t (a VARBYTE(16) ENCODE zstd, b SUPER, c CHAR(3), d BINARY VARYING(8)) "
                "DISTSTYLE KEY DISTKEY(a) COMPOUND SORTKEY(a, c)", &names, &n);
    assert_non_null(strstr(s, "a BLOB"));
    assert_non_null(strstr(s, "b JSON")); /* SUPER: DuckDB JSON, reported back as super */
    assert_non_null(strstr(s, "d BLOB"));
    assert_null(strstr(s, "ENCODE"));
    assert_null(strstr(s, "SORTKEY"));
    assert_null(strstr(s, "DISTKEY"));
    free(s);
}

static void test_rewrite_parameters(void **state)
{
    (void)state;
    char **names = NULL;
    size_t n = 0;
    char *s = rewrite("SELECT * FROM t WHERE id = :id AND x::int = :id OR name = ':notparam' OR y = :other", &names, &n);
    assert_non_null(strstr(s, "id = $id"));
    assert_non_null(strstr(s, "x::int"));
    assert_non_null(strstr(s, "':notparam'"));
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "id");
    assert_string_equal(names[1], "other");
    free_names(names, n);
    free(s);
}

static void test_outer_limit(void **state)
{
    (void)state;
    assert_true(rd_sql_has_outer_limit("select * from t limit 10"));
    assert_false(rd_sql_has_outer_limit("select * from (select * from t limit 10)"));
    assert_false(rd_sql_has_outer_limit("select 'limit 1' from t"));
}

static void test_unload_parse_basic(void **state)
{
    (void)state;
    rd_unload_spec s;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_unload_parse("UNLOAD ('select * from t where c = ''NV'' and d = \\'x\\'') "
                                     "TO 's3://bucket/some/prefix_' IAM_ROLE 'arn:aws:iam::000000000000:role/unload' "
                                     "FORMAT AS PARQUET PARALLEL OFF MAXFILESIZE AS 10 MB MANIFEST VERBOSE "
                                     "ALLOWOVERWRITE REGION AS 'us-east-1' ENCRYPTED KMS_KEY_ID 'k';",
                                     &s, &err),
                     RD_OK);
    assert_string_equal(s.query, "select * from t where c = 'NV' and d = 'x'");
    assert_string_equal(s.bucket, "bucket");
    assert_string_equal(s.prefix, "some/prefix_");
    assert_string_equal(s.iam_role, "arn:aws:iam::000000000000:role/unload");
    assert_int_equal(s.format, RD_UNLOAD_PARQUET);
    assert_int_equal(s.parallel, 0);
    assert_int_equal(s.max_file_size, 10ull * 1024 * 1024);
    assert_true(s.manifest && s.manifest_verbose && s.allow_overwrite && s.encrypted);
    assert_string_equal(s.region, "us-east-1");
    assert_string_equal(s.kms_key_id, "k");
    rd_unload_spec_free(&s);
}

static void test_unload_parse_permutations(void **state)
{
    (void)state;
    const char *variants[] = {
        "unload ('select 1') to 's3://b/p' iam_role default csv cleanpath partition by (A, b) include maxfilesize 1 gb",
        "UNLOAD('select 1')TO's3://b/p'PARTITION BY (a,b) INCLUDE FORMAT CSV MAXFILESIZE 1 GB IAM_ROLE DEFAULT CLEANPATH",
        "Unload ('select 1') To 's3://b/p' MaxFileSize As 1024 mb Cleanpath Format Csv Iam_Role Default Partition By (a, B) Include",
    };
    for (size_t i = 0; i < 3; i++) {
        rd_unload_spec s;
        rd_error err;
        rd_error_clear(&err);
        assert_int_equal(rd_unload_parse(variants[i], &s, &err), RD_OK);
        assert_string_equal(s.iam_role, "default");
        assert_int_equal(s.format, RD_UNLOAD_CSV);
        assert_true(s.clean_path);
        assert_int_equal(s.partition_count, 2);
        assert_string_equal(s.partition_by[0], "a");
        assert_string_equal(s.partition_by[1], "b");
        assert_true(s.partition_include);
        assert_int_equal(s.max_file_size, 1024ull * 1024 * 1024);
        rd_unload_spec_free(&s);
    }
}

static void test_unload_parse_backslashes(void **state)
{
    (void)state;
    rd_unload_spec s;
    rd_error err;
    rd_error_clear(&err);
    /* the query's own backslash is doubled inside UNLOAD's literal */
    assert_int_equal(rd_unload_parse("UNLOAD ('select ''a\\\\b''') TO 's3://b/' IAM_ROLE 'r'", &s, &err), RD_OK);
    assert_string_equal(s.query, "select 'a\\b'");
    assert_string_equal(s.prefix, "");
    rd_unload_spec_free(&s);
}

static void test_unload_parse_errors(void **state)
{
    (void)state;
    struct {
        const char *sql, *needle;
    } bad[] = {
        { "UNLOAD ('select 1') TO 's3://b/p' IAM_ROLE 'r' BOGUS", "syntax error at or near \"BOGUS\"" },
        { "UNLOAD ('select 1') TO 's3://b/p'", "IAM_ROLE" },
        { "UNLOAD ('select 1') TO 'http://b/p' IAM_ROLE 'r'", "s3://" },
        { "UNLOAD ('select 1') TO 's3://b/p' IAM_ROLE 'r' ALLOWOVERWRITE CLEANPATH", "ALLOWOVERWRITE and CLEANPATH" },
        { "UNLOAD ('select 1') TO 's3://b/p' IAM_ROLE 'r' PARQUET DELIMITER ','", "DELIMITER" },
        { "UNLOAD ('select 1') TO 's3://b/p' IAM_ROLE 'r' MAXFILESIZE 1 MB", "MAXFILESIZE" },
        { "UNLOAD ('select 1) TO 's3://b/p' IAM_ROLE 'r'", "ERROR" },
        { "UNLOAD 'select 1' TO 's3://b/p' IAM_ROLE 'r'", "syntax error" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rd_unload_spec s;
        rd_error err;
        rd_error_clear(&err);
        assert_int_not_equal(rd_unload_parse(bad[i].sql, &s, &err), RD_OK);
        if (!strstr(err.message, bad[i].needle))
            fail_msg("%s: got '%s'", bad[i].sql, err.message);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_strings_and_comments),
        cmocka_unit_test(test_dollar_quoting),
        cmocka_unit_test(test_rewrite_functions_and_types),
        cmocka_unit_test(test_rewrite_parameters),
        cmocka_unit_test(test_outer_limit),
        cmocka_unit_test(test_unload_parse_basic),
        cmocka_unit_test(test_unload_parse_permutations),
        cmocka_unit_test(test_unload_parse_backslashes),
        cmocka_unit_test(test_unload_parse_errors),
    };
    return cmocka_run_group_tests_name("dialect", tests, NULL, NULL);
}
