/* test_unload_sql.c — the UNLOAD statement redduck builds: tricky user queries survive quoting exactly
 * (checked by parsing the statement back with the emulator's Redshift-style UNLOAD parser), options, and
 * usage errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/redshift/dialect.h"
#include "ingest/unload_sql.h"

static void test_tricky_queries_round_trip(void **state)
{
    (void)state;
    static const char *const queries[] = {
        "select 'it''s' as a",
        "select 'O''Brien', '''' as q from t",
        "select 'back\\slash', E'\\\\n' as b",
        "select 1 -- trailing comment",
        "select /* a 'quoted' comment */ 2;",
        "select $$dollar 'quoted'$$ as d;;  ",
        "select $$a'b$$ as x",
        "select $tag$it's $$ inside$tag$ as t, $1",
        "select \"ünïcødé\" from \"schéma\".\"tåble\" where x = 'a;b'",
        "select * from t limit 10",
        "  \n select 1 \n",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        rd_unload_request r = { queries[i], NULL, NULL, "s3://bkt/stage/redduck-1/", NULL, 64, NULL, NULL, 0, NULL };
        rd_buf sql = RD_BUF_INIT;
        rd_error err;
        assert_int_equal(rd_unload_sql_build(&r, &sql, &err), RD_OK);
        rd_unload_spec spec;
        memset(&spec, 0, sizeof spec);
        rd_error_clear(&err);
        if (rd_unload_parse(rd_buf_cstr(&sql), &spec, &err) != RD_OK)
            fail_msg("query %zu: %s\n%s", i, err.message, rd_buf_cstr(&sql));
        /* the parsed inner query is the wrapper around the user's text, byte for byte */
        const char *q = queries[i];
        while (*q == ' ' || *q == '\n')
            q++;
        size_t n = strlen(q);
        while (n && (q[n - 1] == ' ' || q[n - 1] == '\n' || q[n - 1] == ';'))
            n--;
        char want[512];
        snprintf(want, sizeof want, "select * from (\n%.*s\n) as redduck_q", (int)n, q);
        assert_string_equal(spec.query, want);
        /* and the emulator's engine can read the query the parse gives back (as Redshift would) */
        rd_buf duck = RD_BUF_INIT;
        char **params = NULL;
        size_t nparams = 0;
        if (rd_sql_rewrite(spec.query, &duck, &params, &nparams, &err) != RD_OK)
            fail_msg("query %zu: %s\n%s", i, err.message, spec.query);
        if (strstr(q, "$$a'b$$"))
            assert_non_null(strstr(rd_buf_cstr(&duck), "'a''b' as x"));
        for (size_t k = 0; k < nparams; k++)
            free(params[k]);
        free(params);
        rd_buf_free(&duck);
        assert_string_equal(spec.bucket, "bkt");
        assert_string_equal(spec.prefix, "stage/redduck-1/");
        assert_int_equal(spec.format, RD_UNLOAD_PARQUET);
        assert_true(spec.manifest && spec.manifest_verbose);
        assert_int_equal(spec.max_file_size, 64ull * 1024 * 1024);
        assert_string_equal(spec.iam_role, "default");
        rd_unload_spec_free(&spec);
        rd_buf_free(&sql);
    }
}

static void test_table_and_options(void **state)
{
    (void)state;
    rd_unload_request r = { NULL, "sales.\"odd\"name", "a, to_hex(b) as b", "s3://b/p/",
                            "arn:aws:iam::1:role/x", 0, "key-'1", "eu-west-1", 1, NULL };
    rd_buf sql = RD_BUF_INIT;
    rd_error err;
    assert_int_equal(rd_unload_sql_build(&r, &sql, &err), RD_OK);
    rd_unload_spec spec;
    memset(&spec, 0, sizeof spec);
    assert_int_equal(rd_unload_parse(rd_buf_cstr(&sql), &spec, &err), RD_OK);
    assert_string_equal(spec.query, "select a, to_hex(b) as b from \"sales\".\"\"\"odd\"\"name\"");
    assert_string_equal(spec.iam_role, "arn:aws:iam::1:role/x");
    assert_string_equal(spec.kms_key_id, "key-'1");
    assert_true(spec.encrypted);
    assert_string_equal(spec.region, "eu-west-1");
    assert_int_equal(spec.parallel, 0);
    rd_unload_spec_free(&spec);
    rd_buf_free(&sql);

    rd_unload_request bad[] = {
        { NULL, NULL, NULL, "s3://b/p/", NULL, 0, NULL, NULL, 0, NULL },
        { "select 1", "t", NULL, "s3://b/p/", NULL, 0, NULL, NULL, 0, NULL },
        { " ;; ", NULL, NULL, "s3://b/p/", NULL, 0, NULL, NULL, 0, NULL },
        { "select 1", NULL, NULL, "https://b/p/", NULL, 0, NULL, NULL, 0, NULL },
        { NULL, "a.b.c", NULL, "s3://b/p/", NULL, 0, NULL, NULL, 0, NULL },
        { NULL, ".b", NULL, "s3://b/p/", NULL, 0, NULL, NULL, 0, NULL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rd_buf_reset(&sql);
        assert_int_equal(rd_unload_sql_build(&bad[i], &sql, &err), RD_E_USAGE);
    }
    rd_buf_free(&sql);
}

static void test_where_filter(void **state)
{
    (void)state;
    rd_unload_request r = { "select * from t -- c", NULL, NULL, "s3://b/p/", NULL, 0, NULL, NULL, 0,
                            "\"updated_at\" > '2024-01-01 00:00:00'" };
    rd_buf sql = RD_BUF_INIT;
    rd_error err;
    assert_int_equal(rd_unload_sql_build(&r, &sql, &err), RD_OK);
    rd_unload_spec spec;
    memset(&spec, 0, sizeof spec);
    if (rd_unload_parse(rd_buf_cstr(&sql), &spec, &err) != RD_OK)
        fail_msg("%s\n%s", err.message, rd_buf_cstr(&sql));
    assert_string_equal(spec.query, "select * from (\nselect * from t -- c\n) as redduck_q where \"updated_at\" > "
                                    "'2024-01-01 00:00:00'");
    rd_unload_spec_free(&spec);
    rd_buf_free(&sql);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_where_filter),
        cmocka_unit_test(test_tricky_queries_round_trip),
        cmocka_unit_test(test_table_and_options),
    };
    return cmocka_run_group_tests_name("unload sql", tests, NULL, NULL);
}
