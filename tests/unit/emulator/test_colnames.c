/* test_colnames.c — the names Redshift gives result columns, as the dialect rewrite spells them out: each
 * rule of PostgreSQL's FigureColname that Redshift follows (column, function, cast, CASE, "?column?"),
 * Redshift's own names (NVL → coalesce, GETDATE()/SYSDATE → timestamp, CURRENT_DATE → date, DATE_PART →
 * pgdate_part), lowercased identifiers (quoted too, unless the session is case sensitive), duplicates kept,
 * and the names DuckDB then reports for the rewritten SQL (the witness: DuckDB's own labels never show). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duckdb.h"
#include "emulator/redshift/dialect.h"
#include "emulator/redshift/duck_redshift.h"

static char *rewrite_flags(const char *sql, unsigned flags)
{
    rd_buf out = RD_BUF_INIT;
    rd_error err;
    rd_error_clear(&err);
    char **names = NULL;
    size_t n = 0;
    assert_int_equal(rd_sql_rewrite_ex(sql, flags, &out, &names, &n, &err), RD_OK);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rd_buf_detach(&out);
}

typedef struct fixture {
    duckdb_database db;
    duckdb_connection c;
} fixture;

static void exec_ok(duckdb_connection c, const char *sql)
{
    duckdb_result r;
    if (duckdb_query(c, sql, &r) != DuckDBSuccess)
        fail_msg("%s: %s", sql, duckdb_result_error(&r));
    duckdb_destroy_result(&r);
}

/* Rewrites sql, runs it on DuckDB and compares the result's column names with want ("a|b|c"). */
static void check_names_flags(fixture *f, const char *sql, unsigned flags, const char *want)
{
    char *duck = rewrite_flags(sql, flags);
    duckdb_result r;
    if (duckdb_query(f->c, duck, &r) != DuckDBSuccess)
        fail_msg("%s\n-> %s\n: %s", sql, duck, duckdb_result_error(&r));
    rd_buf got = RD_BUF_INIT;
    for (idx_t i = 0; i < duckdb_column_count(&r); i++)
        rd_buf_printf(&got, "%s%s", i ? "|" : "", duckdb_column_name(&r, i));
    duckdb_destroy_result(&r);
    if (strcmp(rd_buf_cstr(&got), want) != 0)
        fail_msg("%s\n-> %s\nnames %s, want %s", sql, duck, rd_buf_cstr(&got), want);
    rd_buf_free(&got);
    free(duck);
}

static void check_names(fixture *f, const char *sql, const char *want)
{
    check_names_flags(f, sql, 0, want);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(duckdb_open(NULL, &f->db), DuckDBSuccess);
    assert_int_equal(duckdb_connect(f->db, &f->c), DuckDBSuccess);
    for (const char *const *q = rd_sql_dialect_setup; *q; q++)
        exec_ok(f->c, *q);
    exec_ok(f->c, "SET search_path='public,main'"); /* as the engine's connections */
    /* created through the rewrite, as a client's CREATE TABLE is */
    char *ddl = rewrite_flags("CREATE TABLE T (X INT, A INT, \"B\" INT, D DATE, S VARCHAR(10))", 0);
    exec_ok(f->c, ddl);
    free(ddl);
    exec_ok(f->c, "insert into t values (1, 10, 100, '2024-01-02', 'p'), (2, null, 200, '2024-01-03', 'q')");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    duckdb_disconnect(&f->c);
    duckdb_close(&f->db);
    free(f);
    return 0;
}

static void test_aggregates_operators_aliases(void **state)
{
    fixture *f = *state;
    check_names(f, "select count(*), sum(x), 1+1, max(x) as \"MyMax\", min(x) lo, avg(x) AS Mean from t",
                "count|sum|?column?|mymax|lo|mean");
    check_names(f, "select count(*), count(*), count(x) as count from t", "count|count|count"); /* duplicates */
    check_names(f, "select -x, 'abc', x || 'a', x is null, x + 1 > 2, not true, x between 1 and 2, x in (1, 2), "
                   "1, null, true from t",
                "?column?|?column?|?column?|?column?|?column?|?column?|?column?|?column?|?column?|?column?|?column?");
    check_names(f, "select count(distinct x), public.len(s), COALESCE(a, b), nvl(a, b), NVL2(a, 1, 2) from t "
                   "group by s, a, b",
                "count|len|coalesce|coalesce|nvl2"); /* a qualified call: the function's own name */
}

static void test_columns_and_identifiers(void **state)
{
    fixture *f = *state;
    check_names(f, "select X, T.A, t.\"B\", \"X\", (x), ((a)) from t", "x|a|b|x|x|a");
    check_names(f, "select * from t", "x|a|b|d|s"); /* created as T (X, A, "B", ...): stored lowercased */
    check_names(f, "select t.*, x from t", "x|a|b|d|s|x");
    check_names(f, "select * exclude (d, s), t.* exclude (a, b, d, s) from t", "x|a|b|x");
    /* a bare alias, and words that end an expression without naming it */
    check_names(f, "select a b, x is not null, x::double precision, d::timestamp with time zone from t",
                "b|?column?|x|d");
    /* the session keeps the case of quoted identifiers; unquoted ones are still lowercased */
    check_names_flags(f, "select x as \"MyX\", \"B\", B, X as \"Q\" from t", RD_SQL_CASE_SENSITIVE, "MyX|B|b|Q");
    check_names_flags(f, "select x as \"MyX\", \"B\", B from t", 0, "myx|b|b");
}

static void test_casts(void **state)
{
    fixture *f = *state;
    /* a cast of something with a name keeps the name; otherwise the type's (PostgreSQL's internal) name */
    check_names(f, "select x::varchar, '1'::int, cast(x as bigint), cast('1' as char(3)), (x + 1)::numeric(5,2), "
                   "x::int::text, '1'::smallint, '1'::real, '1'::float, 'true'::boolean, 'a'::character varying(3), "
                   "'2024-01-01'::date, '2024-01-01'::timestamp, (case when x > 1 then 1 end)::int8 from t",
                "x|int4|x|bpchar|numeric|x|int2|float4|float8|bool|varchar|date|timestamp|int8");
    check_names(f, "select date '2024-01-01', timestamp '2024-01-01 00:00:00', interval '1 day' from t",
                "date|timestamp|interval");
}

static void test_case_windows_redshift_functions(void **state)
{
    fixture *f = *state;
    check_names(f, "select case when x > 1 then 'big' else 'small' end, CASE x WHEN 1 THEN 'one' END from t",
                "case|case");
    check_names(f, "select row_number() over (partition by a order by x), sum(x) over (), "
                   "listagg(s, ',') within group (order by s) over (partition by a) from t",
                "row_number|sum|listagg");
    check_names(f, "select getdate(), sysdate, current_date, round(x), date_part(year, d), "
                   "dateadd(day, 1, d), datediff(day, d, d), extract(year from d) from t",
                "timestamp|timestamp|date|round|pgdate_part|date_add|date_diff|date_part");
}

static void test_scopes(void **state)
{
    fixture *f = *state;
    /* UNION: the first arm's names */
    check_names(f, "select 1 union all select 2 as y", "?column?");
    check_names(f, "(select x from t) union (select a from t) order by 1", "x");
    check_names(f, "select distinct on (a) a, x + 0 from t order by a", "a|?column?");
    /* the names inside a subquery or a CTE show through * outside, as in Redshift */
    check_names(f, "select * from (select count(*), max(x) from t) s", "count|max");
    check_names(f, "select s.count from (select count(*) from t) s", "count");
    check_names(f, "with c as (select count(*), 1 + 1 from t) select * from c", "count|?column?");
    check_names(f, "select (select max(x) from t), exists (select 1 from t) from t", "?column?|?column?");
    /* keywords in strings, comments and quoted names are text, not syntax */
    check_names(f, "select 'from', /* from t, */ x -- , y\n , $$select$$, \"from\" from (select 1 as \"from\") q, t",
                "?column?|x|?column?|from");
    /* CREATE TABLE AS takes the same names */
    exec_ok(f->c, "drop table if exists ctas");
    char *duck = rewrite_flags("create table ctas as select count(*), max(x), x::varchar from t group by x", 0);
    exec_ok(f->c, duck);
    free(duck);
    check_names(f, "select * from ctas", "count|max|x");
}

static void test_rewrite_text(void **state)
{
    (void)state;
    char *s = rewrite_flags("SELECT COUNT(*) FROM T", 0);
    assert_string_equal(s, "select count(*) AS \"count\" from t");
    free(s);
    s = rewrite_flags("select decode(x, 1, 'one', 'other'), decode(x, 1, 'a')::varchar from t", 0);
    assert_string_equal(s, "select decode(x, 1, 'one', 'other') AS \"case\", decode(x, 1, 'a')::varchar AS \"varchar\" "
                           "from t"); /* DECODE is a CASE: a cast of it is named by the type */
    free(s);
    s = rewrite_flags("select top 5 x, 1 from t", 0);
    assert_string_equal(s, "select top 5 x AS \"x\", 1 AS \"?column?\" from t");
    free(s);
    s = rewrite_flags("select a as \"A\" from t", 0);
    assert_string_equal(s, "select a as \"a\" from t");
    free(s);
    s = rewrite_flags("select a as \"A\" from t", RD_SQL_CASE_SENSITIVE);
    assert_string_equal(s, "select a as \"A\" from t");
    free(s);
    s = rewrite_flags("select \"we\"\"ird\" from t", 0); /* a quote inside a quoted name stays doubled */
    assert_string_equal(s, "select \"we\"\"ird\" AS \"we\"\"ird\" from t");
    free(s);
    s = rewrite_flags("select * from t where x = 'ABC' and y = :P", 0); /* literals and parameters as they are */
    assert_string_equal(s, "select * from t where x = 'ABC' and y = $P");
    free(s);
    /* deep nesting: past a bound the name is "?column?" (and the work stays linear) */
    rd_buf deep = RD_BUF_INIT;
    rd_buf_puts(&deep, "select ");
    for (int i = 0; i < 200; i++)
        rd_buf_putc(&deep, '(');
    rd_buf_putc(&deep, 'x');
    for (int i = 0; i < 200; i++)
        rd_buf_putc(&deep, ')');
    rd_buf_puts(&deep, ", ((x))::int::text::varchar from t");
    s = rewrite_flags(rd_buf_cstr(&deep), 0);
    assert_non_null(strstr(s, ") AS \"?column?\", ((x))::int::text::varchar AS \"x\" from t"));
    free(s);
    rd_buf_free(&deep);
    s = rewrite_flags("insert into t (x) values (1)", 0);
    assert_string_equal(s, "insert into t (x) values (1)");
    free(s);
}

/* One value of a query run through the rewrite (RD_SQL_BPCHAR on), with the column's Redshift description. */
static char *value_of(fixture *f, const char *sql, rd_emu_column *col)
{
    char *duck = rewrite_flags(sql, RD_SQL_BPCHAR);
    duckdb_result r;
    if (duckdb_query(f->c, duck, &r) != DuckDBSuccess)
        fail_msg("%s\n-> %s\n: %s", sql, duck, duckdb_result_error(&r));
    free(duck);
    duckdb_logical_type t = duckdb_column_logical_type(&r, 0);
    rd_emu_column_describe(t, col);
    duckdb_destroy_logical_type(&t);
    char *v = duckdb_value_varchar(&r, 0, 0);
    char *out = v ? strdup(v) : NULL;
    duckdb_free(v);
    duckdb_destroy_result(&r);
    return out;
}

static void test_char_and_super(void **state)
{
    fixture *f = *state;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_emu_register_types(f->c, &err), RD_OK);
    assert_int_equal(rd_emu_register_types(f->c, &err), RD_OK); /* again: a no-op */
    char *ddl = rewrite_flags("create table c (c5 CHAR(5), c1 char, n character(3), v character varying(4), j SUPER, "
                              "big char(300))", RD_SQL_BPCHAR);
    assert_non_null(strstr(ddl, "c5 \"bpchar(5)\""));
    assert_non_null(strstr(ddl, "c1 \"bpchar(1)\""));
    assert_non_null(strstr(ddl, "v character varying(4)"));
    assert_non_null(strstr(ddl, "big VARCHAR(300)")); /* past the registered lengths: VARCHAR */
    exec_ok(f->c, ddl);
    free(ddl);
    char *plain = rewrite_flags("create table p (c5 char(5))", 0);
    assert_null(strstr(plain, "bpchar")); /* without the flag: DuckDB's CHAR, a VARCHAR */
    free(plain);
    exec_ok(f->c, "insert into c values ('ab', 'x', 'abc', 'ab', json('{\"a\": 1}'), 'z')");
    rd_emu_column col;
    char *v = value_of(f, "select c5 from c", &col);
    assert_string_equal(v, "ab   "); /* padded to 5, as Redshift stores bpchar */
    assert_string_equal(col.type_name, "bpchar");
    assert_int_equal(col.precision, 5);
    free(v);
    v = value_of(f, "select c5 || '|' from c", &col);
    assert_string_equal(v, "ab   |");
    assert_string_equal(col.type_name, "varchar");
    free(v);
    v = value_of(f, "select count(*) from c where c5 = 'ab' and c5 = 'ab   ' and c1 = 'x'", &col);
    assert_string_equal(v, "1"); /* trailing blanks do not matter in comparisons */
    free(v);
    v = value_of(f, "select 'q'::char(3)", &col);
    assert_string_equal(v, "q  ");
    assert_string_equal(col.type_name, "bpchar");
    free(v);
    v = value_of(f, "select j from c", &col);
    assert_string_equal(col.type_name, "super");
    free(v);
    v = value_of(f, "select v from c", &col);
    assert_string_equal(col.type_name, "varchar");
    free(v);
    /* too long for CHAR(5): refused (trailing blanks beyond 5 are fine) */
    char *ins = rewrite_flags("insert into c (c5) values ('abcdef')", RD_SQL_BPCHAR);
    duckdb_result r;
    assert_int_equal(duckdb_query(f->c, ins, &r), DuckDBError);
    assert_non_null(strstr(duckdb_result_error(&r), "value too long for type character(5)"));
    duckdb_destroy_result(&r);
    free(ins);
    exec_ok(f->c, "insert into c (c5) values ('abcde   ')");
    /* a table made from it keeps the type */
    exec_ok(f->c, "create table c2 as select c5 from c");
    v = value_of(f, "select c5 from c2 order by c5 limit 1", &col);
    assert_string_equal(v, "ab   ");
    assert_string_equal(col.type_name, "bpchar");
    free(v);
}

static void test_case_setting(void **state)
{
    (void)state;
    assert_int_equal(rd_sql_case_setting("SET enable_case_sensitive_identifier TO true"), 1);
    assert_int_equal(rd_sql_case_setting("set session enable_case_sensitive_identifier = 'on';"), 1);
    assert_int_equal(rd_sql_case_setting("set enable_case_sensitive_identifier to false"), 0);
    assert_int_equal(rd_sql_case_setting("RESET enable_case_sensitive_identifier"), 0);
    assert_int_equal(rd_sql_case_setting("set search_path to public"), -1);
    assert_int_equal(rd_sql_case_setting("select 'set enable_case_sensitive_identifier to true'"), -1);
    assert_int_equal(rd_sql_case_setting("set enable_case_sensitive_identifier to maybe"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aggregates_operators_aliases),
        cmocka_unit_test(test_columns_and_identifiers),
        cmocka_unit_test(test_casts),
        cmocka_unit_test(test_case_windows_redshift_functions),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_rewrite_text),
        cmocka_unit_test(test_case_setting),
        cmocka_unit_test(test_char_and_super),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
