/* test_opts.c — the CLI's option parser (src/cli/opts.c, compiled in here: the unit tests link the libraries,
 * not the tool): both spellings of a value, a missing value, unknown options, flags, the shared AWS options,
 * positional arguments, "-" and "--", --help, and the exact text of each usage message. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../../src/cli/opts.c"

static const char help[] = "usage: redduck t [options]\n";

/* What one rd_cli_parse call returned and printed. */
typedef struct parsed {
    int rc;
    char out[1024], err[1024];
} parsed;

/* Reads what fd wrote into tmp since the redirect, then puts fd back. */
static void restore(int fd, int saved, FILE *tmp, char *text, size_t cap)
{
    fflush(fd == 1 ? stdout : stderr);
    dup2(saved, fd);
    close(saved);
    rewind(tmp);
    size_t n = fread(text, 1, cap - 1, tmp);
    text[n] = '\0';
    fclose(tmp);
}

/* Runs rd_cli_parse on the NULL-terminated words (argv[0] = "t"), capturing stdout and stderr. */
static parsed run(const rd_cli_spec *spec, const char *const *words)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"t";
    for (; words[argc - 1]; argc++)
        argv[argc] = (char *)words[argc - 1];
    argv[argc] = NULL;
    FILE *out = tmpfile(), *err = tmpfile();
    assert_non_null(out);
    assert_non_null(err);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(fileno(out), 1);
    dup2(fileno(err), 2);
    parsed p;
    p.rc = rd_cli_parse(spec, argc, argv);
    restore(1, saved_out, out, p.out, sizeof p.out);
    restore(2, saved_err, err, p.err, sizeof p.err);
    return p;
}

#define RUN(spec, ...) run(spec, (const char *const[]){ __VA_ARGS__, NULL })

/* The options of a command like gc: a value, a flag and the AWS options. */
typedef struct vals {
    const char *staging;
    int dry_run;
    rd_session_options aws;
} vals;

#define VALS_SPEC(v, flags)                                                                                            \
    const rd_cli_opt opts[] = {                                                                                        \
        RD_CLI_OPT_AWS(&(v).aws),                                                                                      \
        RD_CLI_OPT_STRING("--staging", &(v).staging),                                                                  \
        RD_CLI_OPT_FLAG("--dry-run", &(v).dry_run),                                                                    \
        RD_CLI_OPT_END,                                                                                                \
    };                                                                                                                 \
    const rd_cli_spec spec = { "t", help, opts, flags, NULL }

static void test_value_spellings(void **state)
{
    (void)state;
    vals v = { 0 };
    VALS_SPEC(v, 0);
    parsed p = RUN(&spec, "--staging", "s3://b/p");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_string_equal(v.staging, "s3://b/p");
    assert_string_equal(p.err, "");
    p = RUN(&spec, "--staging=s3://b/q");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_string_equal(v.staging, "s3://b/q");
    p = RUN(&spec, "--staging=a=b"); /* only the first '=' splits */
    assert_string_equal(v.staging, "a=b");
    p = RUN(&spec, "--staging", "--dry-run"); /* the next word is the value, whatever it looks like */
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_string_equal(v.staging, "--dry-run");
    assert_int_equal(v.dry_run, 0);
    p = RUN(&spec, "--staging=");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_string_equal(v.staging, "");
    p = RUN(&spec, "--staging", "x", "--staging", "y"); /* the last one counts */
    assert_string_equal(v.staging, "y");
}

static void test_missing_value(void **state)
{
    (void)state;
    vals v = { 0 };
    VALS_SPEC(v, 0);
    parsed p = RUN(&spec, "--dry-run", "--staging");
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "redduck t: --staging needs a value (see `redduck t --help`)\n");
    assert_null(v.staging);
}

/* RD_CLI_NONEMPTY (init): an empty value is a missing one, in both spellings */
static void test_empty_value(void **state)
{
    (void)state;
    vals v = { 0 };
    VALS_SPEC(v, RD_CLI_NONEMPTY);
    parsed p = RUN(&spec, "--staging=");
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "redduck t: --staging needs a value (see `redduck t --help`)\n");
    p = RUN(&spec, "--staging", "");
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "redduck t: --staging needs a value (see `redduck t --help`)\n");
    assert_null(v.staging);
}

static void test_unknown_option(void **state)
{
    (void)state;
    vals v = { 0 };
    VALS_SPEC(v, 0);
    const char *cases[][2] = {
        { "--bogus", "redduck t: unknown option '--bogus' (see `redduck t --help`)\n" },
        { "--bogus=x", "redduck t: unknown option '--bogus=x' (see `redduck t --help`)\n" },
        { "--dry-run=1",
          "redduck t: unknown option '--dry-run=1' (see `redduck t --help`)\n" }, /* a flag has no value */
        { "-v=1", "redduck t: unknown option '-v=1' (see `redduck t --help`)\n" },
        { "--help=1", "redduck t: unknown option '--help=1' (see `redduck t --help`)\n" },
        { "--stag", "redduck t: unknown option '--stag' (see `redduck t --help`)\n" }, /* no abbreviations */
        { "pos", "redduck t: unknown option 'pos' (see `redduck t --help`)\n" },       /* no positional taken */
        { "-", "redduck t: unknown option '-' (see `redduck t --help`)\n" },
        { "--", "redduck t: unknown option '--' (see `redduck t --help`)\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parsed p = RUN(&spec, cases[i][0], "--dry-run");
        assert_int_equal(p.rc, 2);
        assert_string_equal(p.err, cases[i][1]);
        assert_int_equal(v.dry_run, 0); /* nothing after the mistake is read */
    }
}

static void test_flags(void **state)
{
    (void)state;
    vals v = { 0 };
    VALS_SPEC(v, 0);
    parsed p = RUN(&spec, "--dry-run");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_int_equal(v.dry_run, 1);
    p = RUN(&spec, "--dry-run", "--dry-run");
    assert_int_equal(v.dry_run, 1);

    int verbose = 0, json = 0;
    const rd_cli_opt opts2[] = {
        RD_CLI_OPT_VERBOSE("-v", &verbose),
        RD_CLI_OPT_DEBUG("-vv", &verbose),
        RD_CLI_OPT_FLAG("--json", &json),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec2 = { "t", help, opts2, 0, NULL };
    p = RUN(&spec2, "-v", "-v", "-v");
    assert_int_equal(verbose, 3);
    verbose = 0;
    p = RUN(&spec2, "-v", "-vv");
    assert_int_equal(verbose, 2);
    assert_int_equal(json, 0);
}

static void test_aws_options(void **state)
{
    (void)state;
    vals v = { 0 };
    VALS_SPEC(v, 0);
    parsed p = RUN(&spec, "--profile", "dev", "--region=eu-west-1", "--endpoint-url", "http://127.0.0.1:9", "-v");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_string_equal(v.aws.profile, "dev");
    assert_string_equal(v.aws.region, "eu-west-1");
    assert_string_equal(v.aws.endpoint_url, "http://127.0.0.1:9");
    assert_int_equal(v.aws.verbose, 1);
    const char *twice[][3] = { { "-v", "--verbose", NULL }, { "-vv", NULL, NULL }, { "--debug", NULL, NULL } };
    for (size_t i = 0; i < 3; i++) {
        v.aws.verbose = 0;
        p = run(&spec, twice[i]);
        assert_int_equal(p.rc, RD_CLI_CONTINUE);
        assert_int_equal(v.aws.verbose, 2);
    }
    p = RUN(&spec, "--profile=");
    assert_string_equal(v.aws.profile, "");
    p = RUN(&spec, "--region");
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "redduck t: --region needs a value (see `redduck t --help`)\n");
    p = RUN(&spec, "--debug=1");
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "redduck t: unknown option '--debug=1' (see `redduck t --help`)\n");

    /* a command without the AWS entry does not take them */
    const char *endpoint = NULL;
    const rd_cli_opt opts2[] = { RD_CLI_OPT_STRING("--endpoint-url", &endpoint), RD_CLI_OPT_END };
    const rd_cli_spec spec2 = { "u", help, opts2, 0, NULL };
    p = RUN(&spec2, "--endpoint-url=http://x", "--profile", "dev");
    assert_int_equal(p.rc, 2);
    assert_string_equal(endpoint, "http://x");
    assert_string_equal(p.err, "redduck u: unknown option '--profile' (see `redduck u --help`)\n");
}

static void test_help(void **state)
{
    (void)state;
    vals v = { 0 };
    VALS_SPEC(v, 0);
    parsed p = RUN(&spec, "--dry-run", "--help", "--bogus");
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.out, help);
    assert_string_equal(p.err, "");
    p = RUN(&spec, "-h");
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.out, help);
    p = RUN(&spec, "--bogus", "--help"); /* in order: the mistake comes first */
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.out, "");
    p = RUN(&spec, "--staging", "--help"); /* a value, not a request for help */
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_string_equal(v.staging, "--help");
}

/* Positional arguments as run takes them: collected in order. */
typedef struct words {
    const char *items[8];
    size_t count;
} words;

static int add_word(const char *value, void *dest)
{
    words *w = dest;
    if (w->count == 2)
        return rd_cli_usage_error("t", "unexpected argument '%s'", value);
    w->items[w->count++] = value;
    return 0;
}

static void test_positional(void **state)
{
    (void)state;
    words w = { { NULL }, 0 };
    int json = 0;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_ARGS(&w, add_word),
        RD_CLI_OPT_FLAG("--json", &json),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "t", help, opts, 0, NULL };
    parsed p = RUN(&spec, "a", "--json", "");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_int_equal(w.count, 2);
    assert_string_equal(w.items[0], "a");
    assert_string_equal(w.items[1], "");
    assert_int_equal(json, 1);
    w.count = 0;
    p = RUN(&spec, "a", "b", "c", "--json");
    assert_int_equal(p.rc, 2); /* the callback's message and code */
    assert_string_equal(p.err, "redduck t: unexpected argument 'c' (see `redduck t --help`)\n");
    w.count = 0;
    p = RUN(&spec, "-"); /* an option unless RD_CLI_DASH_IS_ARG */
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "redduck t: unknown option '-' (see `redduck t --help`)\n");
    assert_int_equal(w.count, 0);

    /* query's way: "-" is an argument and "--" ends the options */
    json = 0;
    const rd_cli_spec dashes = { "t", help, opts, RD_CLI_DASH_IS_ARG | RD_CLI_DASH_DASH, NULL };
    p = RUN(&dashes, "-", "--", "--json");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_int_equal(w.count, 2);
    assert_string_equal(w.items[0], "-");
    assert_string_equal(w.items[1], "--json");
    assert_int_equal(json, 0);
    w.count = 0;
    p = RUN(&dashes, "--", "--", "--help"); /* only the first "--" is special; --help after it is an argument */
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_string_equal(w.items[0], "--");
    assert_string_equal(w.items[1], "--help");
    assert_string_equal(p.out, "");
}

static void test_dir(void **state)
{
    (void)state;
    const char *dir = NULL;
    const rd_cli_opt opts[] = { RD_CLI_OPT_DIR(&dir), RD_CLI_OPT_END };
    const rd_cli_spec spec = { "t", help, opts, 0, NULL };
    parsed p = RUN(&spec, "proj");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_string_equal(dir, "proj");
    dir = NULL;
    p = RUN(&spec, "a", "b");
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "redduck t: one project folder only ('a' and 'b') (see `redduck t --help`)\n");
}

/* A value read by a parse function, as gc's --older-than: checked where it stands in argv. */
static int parse_even(const char *value, void *dest)
{
    long n = strtol(value, NULL, 10);
    if (n % 2)
        return rd_cli_usage_error("t", "--even takes an even number, not '%s'", value);
    *(long *)dest = n;
    return 0;
}

static int set_csv(const char *value, void *dest)
{
    assert_null(value); /* a flag's function gets no value */
    *(int *)dest = 'c';
    return 0;
}

static void test_parse_functions(void **state)
{
    (void)state;
    long even = -1;
    int format = 0;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_PARSE("--even", &even, parse_even),
        RD_CLI_OPT_CALL("--csv", &format, set_csv),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "t", help, opts, 0, NULL };
    parsed p = RUN(&spec, "--even=4", "--csv");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_int_equal(even, 4);
    assert_int_equal(format, 'c');
    p = RUN(&spec, "--even", "3", "--even", "6"); /* the first bad value stops it: 6 is never read */
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "redduck t: --even takes an even number, not '3' (see `redduck t --help`)\n");
    assert_int_equal(even, 4);
    p = RUN(&spec, "--even");
    assert_string_equal(p.err, "redduck t: --even needs a value (see `redduck t --help`)\n");
}

/* env set's arguments may be secrets: its message for an option never repeats it. */
static void test_quiet_unknown(void **state)
{
    (void)state;
    words w = { { NULL }, 0 };
    const rd_cli_opt opts[] = { RD_CLI_OPT_ARGS(&w, add_word), RD_CLI_OPT_END };
    const rd_cli_spec spec = { "t", help, opts, RD_CLI_DASH_IS_ARG | RD_CLI_DASH_DASH, "set has no options" };
    parsed p = RUN(&spec, "KEY", "-s3cr3t");
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "redduck t: set has no options (see `redduck t --help`)\n");
    assert_null(strstr(p.err, "s3cr3t"));
    w.count = 0;
    p = RUN(&spec, "--", "KEY", "-s3cr3t");
    assert_int_equal(p.rc, RD_CLI_CONTINUE);
    assert_string_equal(w.items[1], "-s3cr3t");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_spellings),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_empty_value),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_aws_options),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_positional),
        cmocka_unit_test(test_dir),
        cmocka_unit_test(test_parse_functions),
        cmocka_unit_test(test_quiet_unknown),
    };
    return cmocka_run_group_tests_name("cli_opts", tests, NULL, NULL);
}
