/* test_dotenv.c — the .env reader (python-dotenv's grammar: export, quotes, escapes, multi-line values, inline
 * comments, CRLF, UTF-8, duplicates), its errors (file:line, never a value) and rd_dotenv_set_in_file (mode 0600,
 * lines replaced in place, other lines kept, every value read back exactly). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "redduck/dotenv.h"
#include "redduck/buf.h"

static rd_dotenv parse_ok(const char *text)
{
    rd_dotenv e;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_dotenv_parse(text, strlen(text), "t.env", &e, &err);
    if (st != RD_OK)
        fail_msg("parse failed: %s", err.message);
    return e;
}

/* Parses text that must fail with RD_E_CONFIG and a message starting with "t.env:LINE: " and containing want. */
static void parse_fails(const char *text, size_t len, int line, const char *want)
{
    rd_dotenv e = { (rd_dotenv_entry *)0x1, 7, NULL }; /* must stay untouched */
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_dotenv_parse(text, len, "t.env", &e, &err), RD_E_CONFIG);
    assert_int_equal(e.count, 7);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "t.env:%d: ", line);
    if (strncmp(err.message, prefix, strlen(prefix)) != 0 || !strstr(err.message, want))
        fail_msg("want '%s...%s', got '%s'", prefix, want, err.message);
}

#define FAILS(text, line, want) parse_fails(text, sizeof(text) - 1, line, want)

static void test_basic(void **state)
{
    (void)state;
    rd_dotenv e = parse_ok("# a comment\n"
                           "\n"
                           "AWS_REGION=us-east-1\n"
                           "export  PROFILE=dev   \n"
                           "  INDENTED = spaced value  # a comment\n"
                           "HASH=a#b\n"
                           "HASH_AFTER_EQ= #x\n"
                           "EMPTY=\n"
                           "EMPTY_COMMENT= # nothing\n"
                           "connector.rs.workgroup=wg-1\n"
                           "   # indented comment\n"
                           "exportX=1\n"
                           "export=2\n"
                           "LAST=end");
    assert_int_equal(e.count, 11);
    assert_string_equal(e.path, "t.env");
    assert_string_equal(rd_dotenv_get(&e, "AWS_REGION"), "us-east-1");
    assert_int_equal(e.items[0].line, 3);
    assert_string_equal(rd_dotenv_get(&e, "PROFILE"), "dev");
    assert_int_equal(e.items[1].line, 4);
    assert_string_equal(rd_dotenv_get(&e, "INDENTED"), "spaced value");
    assert_string_equal(rd_dotenv_get(&e, "HASH"), "a#b");
    assert_string_equal(rd_dotenv_get(&e, "HASH_AFTER_EQ"), "#x"); /* as python-dotenv */
    assert_string_equal(rd_dotenv_get(&e, "EMPTY"), "");
    assert_string_equal(rd_dotenv_get(&e, "EMPTY_COMMENT"), "# nothing"); /* `=` eats the space: no comment */
    assert_string_equal(rd_dotenv_get(&e, "connector.rs.workgroup"), "wg-1");
    assert_string_equal(rd_dotenv_get(&e, "exportX"), "1");
    assert_string_equal(rd_dotenv_get(&e, "export"), "2");
    assert_string_equal(rd_dotenv_get(&e, "LAST"), "end");
    assert_int_equal(e.items[10].line, 14);
    assert_null(rd_dotenv_get(&e, "MISSING"));
    assert_null(rd_dotenv_get(&e, "#"));
    rd_dotenv_free(&e);
    rd_dotenv_free(&e); /* idempotent */
    rd_dotenv_free(NULL);
}

static void test_quotes(void **state)
{
    (void)state;
    rd_dotenv e = parse_ok("S1='lit \\n $HOME ${X} \"dq\"'\n"
                           "S2='it\\'s a \\\\ back'\n"
                           "S3='a\\tb'\n"
                           "S4='# not a comment' # a comment\n"
                           "S5='multi\n"
                           "line'\n"
                           "D1=\"tab\\there\\nnew \\\"q\\\" \\\\ \\' \\a\\b\\f\\r\\v\"\n"
                           "D2=\"unknown \\x41 \\u00e9 \\$ stays\"\n"
                           "D3=\"first\n"
                           "  second\n"
                           "\"#c\n"
                           "D4=\"literal\\\\nnot newline\"\n"
                           "D5=\"\"\n"
                           "S6=''\n"
                           "'quoted key'=v\n"
                           "\"DQKEY\"=v\n"
                           "AFTER=\"x\" \n");
    assert_string_equal(rd_dotenv_get(&e, "S1"), "lit \\n $HOME ${X} \"dq\"");
    assert_string_equal(rd_dotenv_get(&e, "S2"), "it's a \\ back");
    assert_string_equal(rd_dotenv_get(&e, "S3"), "a\\tb");
    assert_string_equal(rd_dotenv_get(&e, "S4"), "# not a comment");
    assert_string_equal(rd_dotenv_get(&e, "S5"), "multi\nline");
    assert_string_equal(rd_dotenv_get(&e, "D1"), "tab\there\nnew \"q\" \\ ' \a\b\f\r\v");
    assert_string_equal(rd_dotenv_get(&e, "D2"), "unknown \\x41 \\u00e9 \\$ stays");
    assert_string_equal(rd_dotenv_get(&e, "D3"), "first\n  second\n");
    assert_string_equal(rd_dotenv_get(&e, "D4"), "literal\\nnot newline");
    assert_string_equal(rd_dotenv_get(&e, "D5"), "");
    assert_string_equal(rd_dotenv_get(&e, "S6"), "");
    assert_string_equal(rd_dotenv_get(&e, "quoted key"), "v");
    assert_string_equal(rd_dotenv_get(&e, "\"DQKEY\""), "v"); /* double quotes are not special in keys */
    assert_string_equal(rd_dotenv_get(&e, "AFTER"), "x");
    /* line numbers follow multi-line values */
    for (size_t i = 0; i < e.count; i++) {
        if (strcmp(e.items[i].key, "D1") == 0)
            assert_int_equal(e.items[i].line, 7);
        if (strcmp(e.items[i].key, "D4") == 0)
            assert_int_equal(e.items[i].line, 12);
        if (strcmp(e.items[i].key, "AFTER") == 0)
            assert_int_equal(e.items[i].line, 17);
    }
    rd_dotenv_free(&e);
}

/* python-dotenv's regex backtracking: with no unescaped closing quote left in the file, the last \' closes. */
static void test_python_quirks(void **state)
{
    (void)state;
    rd_dotenv e = parse_ok("A='x\\'\nB=2\n");
    assert_string_equal(rd_dotenv_get(&e, "A"), "x\\");
    assert_string_equal(rd_dotenv_get(&e, "B"), "2");
    rd_dotenv_free(&e);

    e = parse_ok("A=\"a\\\\\"\nB=1\n"); /* "a\\" then no other double quote: closes at EOF backtrack */
    assert_string_equal(rd_dotenv_get(&e, "A"), "a\\");
    rd_dotenv_free(&e);

    e = parse_ok("A='it\\'s'\nB='x'\n");
    assert_string_equal(rd_dotenv_get(&e, "A"), "it's");
    assert_string_equal(rd_dotenv_get(&e, "B"), "x");
    rd_dotenv_free(&e);

    e = parse_ok("A=C:\\path\\\n"); /* unquoted: backslashes are literal */
    assert_string_equal(rd_dotenv_get(&e, "A"), "C:\\path\\");
    rd_dotenv_free(&e);

    e = parse_ok("A=x\t#tab comment\nB=y\t\n");
    assert_string_equal(rd_dotenv_get(&e, "A"), "x");
    assert_string_equal(rd_dotenv_get(&e, "B"), "y");
    rd_dotenv_free(&e);

    e = parse_ok("export # only a comment\nA=1");
    assert_int_equal(e.count, 1);
    rd_dotenv_free(&e);
}

static void test_crlf(void **state)
{
    (void)state;
    rd_dotenv e = parse_ok("A=1\r\n"
                           "B=\"x\r\ny\"\r\n"
                           "\r\n"
                           "C='p\rq'\r"
                           "D=plain  \r\n"
                           "E=\"esc\\r\"\r\n");
    assert_string_equal(rd_dotenv_get(&e, "A"), "1");
    assert_string_equal(rd_dotenv_get(&e, "B"), "x\ny"); /* universal newlines, as python reads files */
    assert_string_equal(rd_dotenv_get(&e, "C"), "p\nq");
    assert_string_equal(rd_dotenv_get(&e, "D"), "plain");
    assert_string_equal(rd_dotenv_get(&e, "E"), "esc\r");
    assert_int_equal(e.items[2].line, 5);
    assert_int_equal(e.items[3].line, 7);
    assert_int_equal(e.items[4].line, 8);
    rd_dotenv_free(&e);

    FAILS("A=1\r\n\r\nB\r\n", 3, "`B` has no `=`");
}

static void test_utf8(void **state)
{
    (void)state;
    rd_dotenv e = parse_ok("\xEF\xBB\xBF" /* byte order mark: skipped */
                           "NAME=caf\xC3\xA9 \xE2\x98\x95\n"
                           "NBSP=x\xC2\xA0\n"                      /* U+00A0 is whitespace to Python: trimmed */
                           "IDEO=v\xE3\x80\x80#cmt\n"              /* U+3000 then # starts a comment */
                           "CL\xC3\x89=\xE6\x97\xA5\xE6\x9C\xAC\n" /* a non-ASCII key */
                           "Q='\xF0\x9F\x98\x80'\n");
    assert_string_equal(rd_dotenv_get(&e, "NAME"), "caf\xC3\xA9 \xE2\x98\x95");
    assert_string_equal(rd_dotenv_get(&e, "NBSP"), "x");
    assert_string_equal(rd_dotenv_get(&e, "IDEO"), "v");
    assert_string_equal(rd_dotenv_get(&e, "CL\xC3\x89"), "\xE6\x97\xA5\xE6\x9C\xAC");
    assert_string_equal(rd_dotenv_get(&e, "Q"), "\xF0\x9F\x98\x80");
    rd_dotenv_free(&e);

    FAILS("A=1\nB=\xFF\n", 2, "not valid UTF-8");
    FAILS("A=\xC0\xAF\n", 1, "not valid UTF-8");      /* overlong */
    FAILS("A=\xED\xA0\x80\n", 1, "not valid UTF-8"); /* surrogate */
    FAILS("A=1\n\nB=x\0y\n", 3, "NUL byte");
}

static void test_duplicates(void **state)
{
    (void)state;
    rd_dotenv e = parse_ok("A=first\nB=b\nA=second\n'A'=third\n");
    assert_int_equal(e.count, 2);
    assert_string_equal(e.items[0].key, "A"); /* keeps its first place, takes the last value */
    assert_string_equal(e.items[0].value, "third");
    assert_int_equal(e.items[0].line, 4);
    assert_string_equal(e.items[1].key, "B");
    rd_dotenv_free(&e);

    e = parse_ok("");
    assert_int_equal(e.count, 0);
    rd_dotenv_free(&e);
    e = parse_ok("\n  \n# c\n\t\n");
    assert_int_equal(e.count, 0);
    rd_dotenv_free(&e);
}

static void test_errors(void **state)
{
    (void)state;
    FAILS("A=1\n\nB\n", 3, "`B` has no `=`");
    FAILS("A=1\nB # comment\n", 2, "`B` has no `=`");
    FAILS("A=1\nB='abc\nC=2\n", 2, "unterminated single-quoted value");
    FAILS("A=1\n\n  C=\"abc\nD=2\n", 3, "unterminated double-quoted value");
    FAILS("=x\n", 1, "`=` with no key");
    FAILS("A=1\n   = x\n", 2, "`=` with no key");
    FAILS("A='x' y\n", 1, "unexpected text after the closing quote");
    FAILS("A=\"x\"y\n", 1, "unexpected text after the closing quote");
    FAILS("A=1\nFOO BAR=1\n", 2, "expected `=` after `FOO`");
    FAILS("A=1\nexport \nB=2\n", 2, "`export` is not followed by a key");
    FAILS("export =1\n", 1, "`=` with no key");
    FAILS("A=1\n''=2\n", 2, "empty quoted key");
    FAILS("A=1\n\n'KEY=2\n", 3, "unterminated quoted key");
    FAILS("A='x\n\nB=\"y\n", 1, "unterminated single-quoted value");
}

/* Neither values nor lines that do not look like keys appear in messages. */
static void test_errors_hide_secrets(void **state)
{
    (void)state;
    const char *cases[] = {
        "PASSWORD='hunter2 and more\n",
        "TOKEN=\"hunter2\nX=1\n",
        "A=1\nhunter2/abc+def=\n",
        "A=1\nhunter2/abc+def\n",
        "A=1\nhunter2\n",
        "A='hunter2' extra\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rd_dotenv e;
        rd_error err;
        rd_error_clear(&err);
        rd_status st = rd_dotenv_parse(cases[i], strlen(cases[i]), "t.env", &e, &err);
        if (st == RD_OK) {
            rd_dotenv_free(&e);
            if (i == 2)
                continue; /* a strange key with an empty value is valid */
            fail_msg("case %zu parsed", i);
        }
        if (i == 4) /* looks like a key: named */
            assert_non_null(strstr(err.message, "`hunter2` has no `=`"));
        else if (strstr(err.message, "hunter2"))
            fail_msg("case %zu leaks: %s", i, err.message);
    }
}

/* ---- files ---- */

typedef struct tmpdir {
    char dir[64];
    char path[96];
} tmpdir;

static void tmpdir_make(tmpdir *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/rd-dotenv-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/.env", t->dir);
}

static void tmpdir_remove(tmpdir *t)
{
    unlink(t->path);
    assert_int_equal(rmdir(t->dir), 0); /* fails if a temporary file was left behind */
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    rd_buf b = RD_BUF_INIT;
    char chunk[512];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rd_buf_append(&b, chunk, n);
    fclose(f);
    return rd_buf_detach(&b);
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void set_ok(const char *path, const char *key, const char *value)
{
    rd_error err;
    rd_error_clear(&err);
    if (rd_dotenv_set_in_file(path, key, value, &err) != RD_OK)
        fail_msg("set %s failed: %s", key, err.message);
}

static void assert_file(const char *path, const char *want)
{
    char *got = read_text(path);
    assert_string_equal(got, want);
    free(got);
}

static void test_load(void **state)
{
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    rd_dotenv e;
    rd_error err;
    assert_int_equal(rd_dotenv_load(t.path, &e, &err), RD_OK); /* missing: empty */
    assert_int_equal(e.count, 0);
    rd_dotenv_free(&e);
    write_text(t.path, "A=1\nB='x\n", 0600);
    assert_int_equal(rd_dotenv_load(t.path, &e, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, t.path));
    assert_non_null(strstr(err.message, ":2: "));
    tmpdir_remove(&t);
}

static void test_set_new_file(void **state)
{
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    set_ok(t.path, "AWS_REGION", "us-east-1");
    assert_int_equal(file_mode(t.path), 0600);
    set_ok(t.path, "connector.rs.aws_secret_access_key", "wJalr/XUtn+FEMI");
    set_ok(t.path, "EMPTY", "");
    assert_file(t.path, "AWS_REGION=us-east-1\nconnector.rs.aws_secret_access_key=wJalr/XUtn+FEMI\nEMPTY=\n");
    assert_int_equal(file_mode(t.path), 0600);
    tmpdir_remove(&t);
}

static void test_set_replaces_in_place(void **state)
{
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    write_text(t.path,
               "# Redshift\n"
               "A=1\n"
               "export TOKEN=\"old\n"
               "multi line\n"
               "secret\" # the old one\n"
               "\n"
               "  # keep me\n"
               "B='b'\n"
               "TOKEN=dup\n"
               "C=c",
               0644);
    set_ok(t.path, "TOKEN", "new value");
    assert_file(t.path, "# Redshift\n"
                        "A=1\n"
                        "export TOKEN='new value'\n"
                        "\n"
                        "  # keep me\n"
                        "B='b'\n"
                        "C=c");
    assert_int_equal(file_mode(t.path), 0600); /* an existing file is tightened */
    set_ok(t.path, "D", "d"); /* appended after a last line without newline */
    set_ok(t.path, "A", "x\ny");
    assert_file(t.path, "# Redshift\n"
                        "A=\"x\\ny\"\n"
                        "export TOKEN='new value'\n"
                        "\n"
                        "  # keep me\n"
                        "B='b'\n"
                        "C=c\n"
                        "D=d\n");
    tmpdir_remove(&t);
}

static void test_set_keeps_crlf(void **state)
{
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    write_text(t.path, "A=1\r\nB=2\r\n", 0600);
    set_ok(t.path, "A", "one");
    set_ok(t.path, "C", "3");
    assert_file(t.path, "A=one\r\nB=2\r\nC=3\r\n");
    tmpdir_remove(&t);
}

static void test_set_round_trips(void **state)
{
    (void)state;
    const char *values[] = {
        "",
        "plain",
        "with space",
        " leading and trailing ",
        "has # hash",
        "a #b",
        "#start",
        "it's",
        "say \"hi\"",
        "both ' and \"",
        "back\\slash",
        "C:\\dir\\",             /* ends with a backslash: written unquoted */
        "\\",
        "back\\'quote",
        "\\\"",
        "line1\nline2\n",
        "cr\rlf\r\n",
        "tab\tsep",
        "\\n literal",
        "$HOME ${X}",
        "caf\xC3\xA9 \xE2\x98\x95 \xC2\xA0",
        "'",
        "\"",
        "=",
        "'quoted'",
        "\x07\x0b\x0c",
    };
    tmpdir t;
    tmpdir_make(&t);
    write_text(t.path, "# header\nOTHER=\"x\"\n", 0600);
    char key[16];
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        snprintf(key, sizeof key, "K%zu", i);
        set_ok(t.path, key, values[i]);
    }
    for (int pass = 0; pass < 2; pass++) {
        rd_dotenv e;
        rd_error err;
        if (rd_dotenv_load(t.path, &e, &err) != RD_OK)
            fail_msg("reload: %s", err.message);
        assert_int_equal(e.count, 1 + sizeof values / sizeof values[0]);
        assert_string_equal(rd_dotenv_get(&e, "OTHER"), "x");
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            snprintf(key, sizeof key, "K%zu", i);
            assert_string_equal(rd_dotenv_get(&e, key), values[i]);
        }
        rd_dotenv_free(&e);
        /* second pass: every value rewritten over itself */
        for (size_t i = 0; pass == 0 && i < sizeof values / sizeof values[0]; i++) {
            snprintf(key, sizeof key, "K%zu", i);
            set_ok(t.path, key, values[sizeof values / sizeof values[0] - 1 - i]);
            set_ok(t.path, key, values[i]);
        }
    }
    tmpdir_remove(&t);
}

static void test_set_refuses(void **state)
{
    (void)state;
    tmpdir t;
    tmpdir_make(&t);
    rd_error err;
    const char *bad_keys[] = { "", "1A", "A B", "A=B", "A#", "é", "A'" };
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
        assert_int_equal(rd_dotenv_set_in_file(t.path, bad_keys[i], "v", &err), RD_E_USAGE);
    assert_int_equal(access(t.path, F_OK), -1); /* nothing created */
    /* a value that needs quotes and ends with a backslash cannot be written */
    assert_int_equal(rd_dotenv_set_in_file(t.path, "A", " x\\", &err), RD_E_USAGE);
    assert_null(strstr(err.message, " x\\"));
    assert_int_equal(rd_dotenv_set_in_file(t.path, "A", "a\nb\\", &err), RD_E_USAGE);
    assert_int_equal(rd_dotenv_set_in_file(t.path, "A", "bad \xFF utf8", &err), RD_E_USAGE);
    assert_int_equal(access(t.path, F_OK), -1);
    /* a malformed file is left alone */
    write_text(t.path, "A=1\nB='open\n", 0644);
    assert_int_equal(rd_dotenv_set_in_file(t.path, "A", "2", &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, ":2: unterminated single-quoted value"));
    assert_file(t.path, "A=1\nB='open\n");
    assert_int_equal(file_mode(t.path), 0644);
    tmpdir_remove(&t);
}

/* No escape decodes to NUL (python-dotenv knows \\ \' \" \a \b \f \n \r \t \v only), so a value is a whole C
 * string; a NUL byte is refused; so is a file over RD_DOTENV_MAX_BYTES. */
static void test_hostile(void **state)
{
    (void)state;
    rd_dotenv e = parse_ok("A=\"x\\0y\"\nB=\"\\x00\"\nC='\\0'\nD=\\0\n");
    assert_string_equal(rd_dotenv_get(&e, "A"), "x\\0y");
    assert_string_equal(rd_dotenv_get(&e, "B"), "\\x00");
    assert_string_equal(rd_dotenv_get(&e, "C"), "\\0");
    assert_string_equal(rd_dotenv_get(&e, "D"), "\\0");
    rd_dotenv_free(&e);
    FAILS("A=\"x\0y\"\n", 1, "NUL byte");

    size_t big = RD_DOTENV_MAX_BYTES + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, '#', big);
    rd_error err;
    rd_error_clear(&err);
    rd_dotenv t = { (rd_dotenv_entry *)0x1, 7, NULL };
    assert_int_equal(rd_dotenv_parse(text, big, "t.env", &t, &err), RD_E_CONFIG);
    assert_string_equal(err.message, "t.env: larger than 1024 KiB; a .env holds a few keys");
    assert_int_equal(t.count, 7);
    char path[] = "/tmp/rd_test_dotenv_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, big), (ssize_t)big);
    close(fd);
    rd_error_clear(&err);
    assert_int_equal(rd_dotenv_load(path, &t, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "larger than 1024 KiB"));
    unlink(path);

    /* 100k keys, each given twice: one entry each, in first-seen order, with the last value and line */
    size_t len = 0;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 50000; i++)
            len += (size_t)snprintf(text + len, big - len, "K%d=%d\n", i, round);
    assert_true(len < big);
    rd_error_clear(&err);
    assert_int_equal(rd_dotenv_parse(text, len, "t.env", &e, &err), RD_OK);
    assert_int_equal(e.count, 50000);
    assert_string_equal(e.items[0].key, "K0");
    assert_string_equal(e.items[49999].key, "K49999");
    assert_string_equal(e.items[49999].value, "1");
    assert_int_equal(e.items[49999].line, 100000);
    rd_dotenv_free(&e);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_python_quirks),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_hide_secrets),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_set_new_file),
        cmocka_unit_test(test_set_replaces_in_place),
        cmocka_unit_test(test_set_keeps_crlf),
        cmocka_unit_test(test_set_round_trips),
        cmocka_unit_test(test_set_refuses),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests_name("dotenv", tests, NULL, NULL);
}
