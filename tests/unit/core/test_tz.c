/* test_tz.c — time zones from TZif files (core/tz.h): UTC offsets in Europe/Berlin, America/New_York,
 * Australia/Lord_Howe (a 30-minute DST) and Asia/Kathmandu (+05:45) on both sides of their transitions, far
 * in the future where only the footer's POSIX rule answers (2090), files built here (v1, v2, footers, the
 * TZDIR override), every truncation of a real file and corrupted ones refused, and names that could leave the
 * zone folder refused. Expected offsets are the published rules' (each transition's instant written out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/tz.h"
#include "test_util.h"

static int64_t at(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_int_equal(sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                            &tm.tm_min, &tm.tm_sec), 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static rd_tz *load(const char *name)
{
    rd_tz *tz = NULL;
    rd_error err;
    rd_error_clear(&err);
    if (rd_tz_load(name, &tz, &err) != RD_OK)
        fail_msg("%s: %s", name, err.message);
    assert_string_equal(rd_tz_name(tz), name);
    return tz;
}

typedef struct offset_case {
    const char *when;
    int32_t offset;
} offset_case;

static void expect_offsets(const char *zone, const offset_case *cases, size_t n)
{
    rd_tz *tz = load(zone);
    for (size_t i = 0; i < n; i++) {
        int32_t got = rd_tz_offset(tz, at(cases[i].when));
        if (got != cases[i].offset)
            fail_msg("%s at %s: offset %d, want %d", zone, cases[i].when, got, cases[i].offset);
    }
    rd_tz_free(tz);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_zones(void **state)
{
    (void)state;
    static const offset_case berlin[] = {
        { "2026-03-29T00:59:59", 3600 }, { "2026-03-29T01:00:00", 7200 },  /* last Sunday of March, 01:00 UTC */
        { "2026-10-25T00:59:59", 7200 }, { "2026-10-25T01:00:00", 3600 },  /* last Sunday of October */
        { "1979-07-01T00:00:00", 3600 },                                   /* no DST in West Germany 1950-1979 */
        { "2090-03-26T00:59:59", 3600 }, { "2090-03-26T01:00:00", 7200 },  /* the footer's rule */
        { "2090-10-29T00:59:59", 7200 }, { "2090-10-29T01:00:00", 3600 },
    };
    expect_offsets("Europe/Berlin", berlin, N(berlin));
    static const offset_case new_york[] = {
        { "2026-03-08T06:59:59", -18000 }, { "2026-03-08T07:00:00", -14400 }, /* second Sunday of March, 2:00 */
        { "2026-11-01T05:59:59", -14400 }, { "2026-11-01T06:00:00", -18000 }, /* first Sunday of November */
        { "2090-03-12T06:59:59", -18000 }, { "2090-03-12T07:00:00", -14400 },
        { "2090-11-05T05:59:59", -14400 }, { "2090-11-05T06:00:00", -18000 },
    };
    expect_offsets("America/New_York", new_york, N(new_york));
    static const offset_case lord_howe[] = {
        /* +10:30, +11:00 in summer: ends first Sunday of April 02:00, starts first Sunday of October 02:00 */
        { "2026-04-04T14:59:59", 39600 }, { "2026-04-04T15:00:00", 37800 },
        { "2026-10-03T15:29:59", 37800 }, { "2026-10-03T15:30:00", 39600 },
        { "2090-01-01T00:00:00", 39600 }, { "2090-07-01T00:00:00", 37800 },
    };
    expect_offsets("Australia/Lord_Howe", lord_howe, N(lord_howe));
    static const offset_case kathmandu[] = {
        { "1985-12-31T18:29:59", 19800 }, { "1985-12-31T18:30:00", 20700 }, /* +05:30 until 1986, then +05:45 */
        { "2026-06-01T00:00:00", 20700 }, { "2090-01-01T00:00:00", 20700 },
    };
    expect_offsets("Asia/Kathmandu", kathmandu, N(kathmandu));

    rd_tz *utc = load("UTC");
    assert_int_equal(rd_tz_offset(utc, at("2026-06-01T00:00:00")), 0);
    rd_tz_free(utc);
    assert_int_equal(rd_tz_offset(NULL, 12345), 0);
    assert_string_equal(rd_tz_name(NULL), "UTC");
    rd_tz_free(NULL);
}

static void test_names(void **state)
{
    (void)state;
    const char *bad[] = { "", "../etc/passwd", "Europe/../../etc/passwd", "/etc/localtime", "Europe/Ber lin",
                          "Europe\\Berlin", "Europe/Berlin\n", "Europe/..", "$HOME" };
    for (size_t i = 0; i < N(bad); i++) {
        rd_tz *tz = NULL;
        rd_error err;
        rd_error_clear(&err);
        assert_false(rd_tz_name_valid(bad[i]));
        if (rd_tz_load(bad[i], &tz, &err) != RD_E_CONFIG)
            fail_msg("name `%s` accepted", bad[i]);
        assert_null(tz);
    }
    char longer[300];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_false(rd_tz_name_valid(longer));
    assert_false(rd_tz_name_valid(NULL));
    assert_true(rd_tz_name_valid("Etc/GMT+5"));
    assert_true(rd_tz_name_valid("America/Port-au-Prince"));
    rd_tz *tz = NULL;
    rd_error err;
    assert_int_equal(rd_tz_load("Europe/Atlantis", &tz, &err), RD_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "Europe/Atlantis"));
    assert_int_equal(rd_tz_load("Europe", &tz, &err), RD_E_NOT_FOUND); /* a folder */
    /* POSIX's sign: Etc/GMT+5 is five hours behind UTC */
    tz = load("Etc/GMT+5");
    assert_int_equal(rd_tz_offset(tz, 0), -5 * 3600);
    rd_tz_free(tz);
}

/* ---- files built here ------------------------------------------------------------------------------------ */

typedef struct tzif_spec {
    int version;              /* 1 or 2 */
    size_t ntrans;
    const int64_t *trans;
    const uint8_t *idx;
    size_t ntypes;
    const int32_t *offsets;
    const char *footer;       /* v2: the TZ string */
} tzif_spec;

static size_t put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
    return 4;
}

static size_t put64(unsigned char *p, int64_t v)
{
    put32(p, (uint32_t)((uint64_t)v >> 32));
    return 4 + put32(p + 4, (uint32_t)v);
}

static size_t block(unsigned char *p, const tzif_spec *s, int wide)
{
    size_t n = 0;
    memcpy(p, "TZif", 4);
    p[4] = s->version == 1 ? 0 : '2';
    memset(p + 5, 0, 15);
    n = 20;
    n += put32(p + n, 0);                 /* isutcnt */
    n += put32(p + n, 0);                 /* isstdcnt */
    n += put32(p + n, 0);                 /* leapcnt */
    n += put32(p + n, (uint32_t)s->ntrans);
    n += put32(p + n, (uint32_t)s->ntypes);
    n += put32(p + n, 4);                 /* charcnt: "ABC\0" */
    for (size_t i = 0; i < s->ntrans; i++)
        n += wide ? put64(p + n, s->trans[i]) : put32(p + n, (uint32_t)(int32_t)s->trans[i]);
    for (size_t i = 0; i < s->ntrans; i++)
        p[n++] = s->idx[i];
    for (size_t i = 0; i < s->ntypes; i++) {
        n += put32(p + n, (uint32_t)s->offsets[i]);
        p[n++] = 0; /* isdst */
        p[n++] = 0; /* abbreviation index */
    }
    memcpy(p + n, "ABC", 4);
    return n + 4;
}

static size_t build(unsigned char *p, const tzif_spec *s)
{
    size_t n = block(p, s, 0);
    if (s->version == 1)
        return n;
    n += block(p + n, s, 1);
    n += (size_t)sprintf((char *)p + n, "\n%s\n", s->footer ? s->footer : "");
    return n;
}

static rd_status parse(const unsigned char *p, size_t n, rd_tz **tz)
{
    rd_error err;
    rd_error_clear(&err);
    *tz = NULL;
    rd_status st = rd_tz_parse(p, n, "Test/Zone", tz, &err);
    if (st != RD_OK)
        assert_non_null(strstr(err.message, "Test/Zone"));
    return st;
}

static void test_built_files(void **state)
{
    (void)state;
    unsigned char buf[4096];
    rd_tz *tz;
    const int64_t trans[] = { 1000, 2000 };
    const uint8_t idx[] = { 1, 0 };
    const int32_t offs[] = { 3600, 7200 };
    tzif_spec s = { 2, 2, trans, idx, 2, offs, "" };
    size_t n = build(buf, &s);
    assert_int_equal(parse(buf, n, &tz), RD_OK);
    assert_int_equal(rd_tz_offset(tz, 999), 3600);  /* before the first transition: type 0 */
    assert_int_equal(rd_tz_offset(tz, 1000), 7200);
    assert_int_equal(rd_tz_offset(tz, 1999), 7200);
    assert_int_equal(rd_tz_offset(tz, 2000), 3600);
    assert_int_equal(rd_tz_offset(tz, INT64_MAX / 2), 3600); /* no footer rule: the last type */
    rd_tz_free(tz);

    /* a footer with its own offsets answers after the last transition */
    s.footer = "<+0530>-5:30";
    n = build(buf, &s);
    assert_int_equal(parse(buf, n, &tz), RD_OK);
    assert_int_equal(rd_tz_offset(tz, 1500), 7200);
    assert_int_equal(rd_tz_offset(tz, 5000), 19800);
    rd_tz_free(tz);
    /* a southern rule (Julian days, times over 24h): DST from day J300 to J60 */
    s.footer = "XST-10XDT,J300/26,J60";
    n = build(buf, &s);
    assert_int_equal(parse(buf, n, &tz), RD_OK);
    assert_int_equal(rd_tz_offset(tz, at("2050-01-15T00:00:00")), 11 * 3600);
    assert_int_equal(rd_tz_offset(tz, at("2050-06-15T00:00:00")), 10 * 3600);
    /* J300 of 2050 is October 27; 26:00 local standard time is 2050-10-28T02:00+10 = 10-27T16:00Z */
    assert_int_equal(rd_tz_offset(tz, at("2050-10-27T15:59:59")), 10 * 3600);
    assert_int_equal(rd_tz_offset(tz, at("2050-10-27T16:00:00")), 11 * 3600);
    rd_tz_free(tz);

    /* v1: 32-bit times, no footer */
    tzif_spec v1 = { 1, 2, trans, idx, 2, offs, NULL };
    n = build(buf, &v1);
    assert_int_equal(parse(buf, n, &tz), RD_OK);
    assert_int_equal(rd_tz_offset(tz, 1500), 7200);
    rd_tz_free(tz);

    /* refused: bad magic, version, a transition to a missing type, out-of-order transitions, a bad offset,
     * bad or missing footers, trailing garbage-free truncations */
    n = build(buf, &s);
    unsigned char bad[4096];
    memcpy(bad, buf, n);
    bad[0] = 'X';
    assert_int_equal(parse(bad, n, &tz), RD_E_CONFIG);
    memcpy(bad, buf, n);
    bad[4] = '1';
    assert_int_equal(parse(bad, n, &tz), RD_E_CONFIG);
    const uint8_t bad_idx[] = { 1, 5 };
    tzif_spec t = s;
    t.idx = bad_idx;
    assert_int_equal(parse(buf, build(buf, &t), &tz), RD_E_CONFIG);
    const int64_t backwards[] = { 2000, 1000 };
    t = s;
    t.trans = backwards;
    assert_int_equal(parse(buf, build(buf, &t), &tz), RD_E_CONFIG);
    const int32_t huge[] = { 3600, 40 * 3600 };
    t = s;
    t.offsets = huge;
    assert_int_equal(parse(buf, build(buf, &t), &tz), RD_E_CONFIG);
    const char *footers[] = { "CET", "C-1", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0",
                              "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,J0,J365", "CET-1CEST,M3.5.0/200,M10.5.0",
                              "CET-99", "<AB>-1", "CET-1CEST,M3.5.0,M10.5.0x" };
    for (size_t i = 0; i < N(footers); i++) {
        t = s;
        t.footer = footers[i];
        if (parse(buf, build(buf, &t), &tz) != RD_E_CONFIG)
            fail_msg("footer `%s` accepted", footers[i]);
    }
    t = s;
    t.ntypes = 0;
    t.ntrans = 0;
    assert_int_equal(parse(buf, build(buf, &t), &tz), RD_E_CONFIG);
    n = build(buf, &s);
    for (size_t cut = 0; cut < n; cut++)
        if (parse(buf, cut, &tz) != RD_E_CONFIG)
            fail_msg("a file cut to %zu of %zu bytes accepted", cut, n);
    assert_int_equal(parse(NULL, 0, &tz), RD_E_CONFIG);
}

/* Every truncation of a real zone file is refused, never half-read. */
static void test_truncated_real_file(void **state)
{
    (void)state;
    FILE *f = fopen(RD_TZ_ZONEINFO_DIR "/Europe/Berlin", "rb");
    assert_non_null(f);
    static unsigned char data[RD_TZ_FILE_MAX_BYTES];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    assert_true(n > 44);
    rd_tz *tz;
    assert_int_equal(parse(data, n, &tz), RD_OK);
    rd_tz_free(tz);
    for (size_t cut = 0; cut < n; cut++)
        if (parse(data, cut, &tz) != RD_E_CONFIG)
            fail_msg("Europe/Berlin cut to %zu of %zu bytes accepted", cut, n);
}

/* TZDIR replaces the zone folder, as in glibc. */
static void test_tzdir(void **state)
{
    (void)state;
    char dir[4096];
    assert_int_equal(rd_test_mkdtemp(dir, sizeof dir, "rd_test_tz"), 0);
    char sub[4200], file[4300];
    snprintf(sub, sizeof sub, "%s/Test", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(file, sizeof file, "%s/Zone", sub);
    unsigned char buf[1024];
    const int32_t offs[] = { -3 * 3600 };
    tzif_spec s = { 2, 0, NULL, NULL, 1, offs, "<-03>3" };
    size_t n = build(buf, &s);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    const char *old = getenv("TZDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TZDIR", dir, 1);
    rd_tz *tz = load("Test/Zone");
    assert_int_equal(rd_tz_offset(tz, at("2026-06-01T00:00:00")), -3 * 3600);
    rd_tz_free(tz);
    rd_error err;
    assert_int_equal(rd_tz_load("Europe/Berlin", &tz, &err), RD_E_NOT_FOUND); /* not in this folder */
    if (saved) {
        setenv("TZDIR", saved, 1);
        free(saved);
    } else
        unsetenv("TZDIR");
    rd_test_rm_tree(dir);
}

static void test_calendar(void **state)
{
    (void)state;
    assert_int_equal(rd_tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(rd_tz_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(rd_tz_days_from_civil(1969, 12, 31), -1);
    for (int64_t d = -800000; d < 800000; d += 997) {
        int64_t y;
        int m, dd;
        rd_tz_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(rd_tz_days_from_civil(y, m, dd), d);
        assert_true(m >= 1 && m <= 12 && dd >= 1 && dd <= rd_tz_month_days(y, m));
    }
    assert_int_equal(rd_tz_weekday(0), 4);                                   /* Thursday */
    assert_int_equal(rd_tz_weekday(rd_tz_days_from_civil(2026, 12, 2)), 3);  /* Wednesday */
    assert_int_equal(rd_tz_weekday(-1), 3);
    assert_int_equal(rd_tz_month_days(2028, 2), 29);
    assert_int_equal(rd_tz_month_days(2100, 2), 28);
    assert_int_equal(rd_tz_month_days(2000, 2), 29);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zones),      cmocka_unit_test(test_names),
        cmocka_unit_test(test_built_files), cmocka_unit_test(test_truncated_real_file),
        cmocka_unit_test(test_tzdir),      cmocka_unit_test(test_calendar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
