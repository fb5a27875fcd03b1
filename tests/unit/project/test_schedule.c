/* test_schedule.c — refresh schedules (schedule.h): cron parsing and its errors per field, steps, ranges,
 * names and the day-of-month / day-of-week OR rule, next and prev in UTC and in Europe/Berlin across the DST
 * gap and overlap, `every` slots, a cron that never matches, describe strings, copies; and the loader's
 * `refresh:` and `notify:` in redduck.yaml and sources (overrides, errors naming FILE:LINE). Expected instants
 * are written out by hand from the calendar (timegm only turns them into numbers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "redduck/project.h"
#include "redduck/schedule.h"

/* ---- helpers ------------------------------------------------------------------------------------------- */

/* "2026-03-29T01:00:00Z" in Unix milliseconds. */
static int64_t ms(const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                   &tm.tm_sec);
    assert_int_equal(n, 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000;
}

static void iso(int64_t t_ms, char out[32])
{
    time_t t = (time_t)(t_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void cron_ok(const char *expr, const char *tz, rd_schedule *s)
{
    rd_error err;
    rd_error_clear(&err);
    if (rd_schedule_parse_cron(expr, tz, s, &err) != RD_OK)
        fail_msg("cron `%s` refused: %s", expr, err.message);
}

/* The next n slots after `after`, each compared with want[i]. */
static void expect_next(const rd_schedule *s, const char *after, const char *const *want, size_t n)
{
    int64_t t = ms(after);
    for (size_t i = 0; i < n; i++) {
        rd_error err;
        rd_error_clear(&err);
        int64_t next = 0;
        if (rd_schedule_next(s, t, &next, &err) != RD_OK)
            fail_msg("no next after %s: %s", after, err.message);
        char got[32];
        iso(next, got);
        if (strcmp(got, want[i]) != 0)
            fail_msg("slot %zu after %s: got %s, want %s", i, after, got, want[i]);
        t = next;
    }
}

static void expect_prev(const rd_schedule *s, const char *at, const char *want)
{
    rd_error err;
    rd_error_clear(&err);
    int64_t prev = 0;
    if (rd_schedule_prev(s, ms(at), &prev, &err) != RD_OK)
        fail_msg("no prev at %s: %s", at, err.message);
    char got[32];
    iso(prev, got);
    if (strcmp(got, want) != 0)
        fail_msg("prev at %s: got %s, want %s", at, got, want);
}

static void cron_bad(const char *expr, const char *want_in_message)
{
    rd_error err;
    rd_error_clear(&err);
    rd_schedule s;
    memset(&s, 0x5a, sizeof s);
    rd_status st = rd_schedule_parse_cron(expr, NULL, &s, &err);
    if (st != RD_E_CONFIG)
        fail_msg("cron `%s` accepted (status %d)", expr, st);
    if (!strstr(err.message, want_in_message))
        fail_msg("cron `%s`: message `%s` lacks `%s`", expr, err.message, want_in_message);
}

/* ---- cron parsing ---------------------------------------------------------------------------------------- */

static void test_cron_errors(void **state)
{
    (void)state;
    cron_bad("60 * * * *", "minute");
    cron_bad("* 24 * * *", "hour");
    cron_bad("* * 0 * *", "day-of-month");
    cron_bad("* * 32 * *", "day-of-month");
    cron_bad("* * * 13 *", "month");
    cron_bad("* * * foo *", "month");
    cron_bad("* * * * 8", "day-of-week");
    cron_bad("* * * * mon-", "day-of-week");
    cron_bad("*/0 * * * *", "minute `*/0`");
    cron_bad("5-1 * * * *", "backwards");
    cron_bad("1,,2 * * * *", "minute");
    cron_bad("1, * * * *", "minute");
    cron_bad("* * * *", "day-of-week is missing");
    cron_bad("* * * * * *", "more than 5 fields");
    cron_bad("", "needs 5");
    cron_bad("* * * januar *", "month");
    cron_bad("1x * * * *", "minute");
    /* a long expression: refused without being echoed */
    char longer[400];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    cron_bad(longer, "longer than");
    /* a long field: the message quotes at most 40 characters of it */
    char field[200] = "1";
    for (int i = 0; i < 40; i++)
        strcat(field, ",1");
    strcat(field, ",99 * * * *");
    rd_error err;
    rd_error_clear(&err);
    rd_schedule s;
    assert_int_equal(rd_schedule_parse_cron(field, NULL, &s, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "minute"));
    assert_null(strstr(err.message, "99"));
    /* an unknown zone, and a name that climbs out of the zone folder */
    assert_int_equal(rd_schedule_parse_cron("0 6 * * *", "Mars/Olympus_Mons", &s, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "Mars/Olympus_Mons"));
    assert_int_equal(rd_schedule_parse_cron("0 6 * * *", "../../etc/passwd", &s, &err), RD_E_CONFIG);
    assert_int_equal(rd_schedule_parse_cron(NULL, NULL, &s, &err), RD_E_CONFIG);
}

static void test_cron_fields(void **state)
{
    (void)state;
    rd_schedule s;
    /* steps */
    cron_ok("*/15 * * * *", NULL, &s);
    expect_next(&s, "2026-05-01T10:07:00Z",
                (const char *const[]){ "2026-05-01T10:15:00Z", "2026-05-01T10:30:00Z", "2026-05-01T10:45:00Z",
                                       "2026-05-01T11:00:00Z" }, 4);
    rd_schedule_free(&s);
    cron_ok("10-50/20 3 * * *", NULL, &s);
    expect_next(&s, "2026-05-01T00:00:00Z",
                (const char *const[]){ "2026-05-01T03:10:00Z", "2026-05-01T03:30:00Z", "2026-05-01T03:50:00Z",
                                       "2026-05-02T03:10:00Z" }, 4);
    rd_schedule_free(&s);
    /* "a/n": from a to the end */
    cron_ok("45/10 0 * * *", NULL, &s);
    expect_next(&s, "2026-05-01T00:00:00Z",
                (const char *const[]){ "2026-05-01T00:45:00Z", "2026-05-01T00:55:00Z", "2026-05-02T00:45:00Z" }, 3);
    rd_schedule_free(&s);
    /* lists, ranges, month names, any case */
    cron_ok("0 8,17 * JAN-Feb,dec *", NULL, &s);
    expect_next(&s, "2026-02-28T18:00:00Z",
                (const char *const[]){ "2026-12-01T08:00:00Z", "2026-12-01T17:00:00Z", "2026-12-02T08:00:00Z" }, 3);
    rd_schedule_free(&s);
    /* weekday names; 7 is Sunday as 0 is. 2026-05-01 is a Friday. */
    cron_ok("30 9 * * mon-fri", NULL, &s);
    expect_next(&s, "2026-05-01T10:00:00Z",
                (const char *const[]){ "2026-05-04T09:30:00Z", "2026-05-05T09:30:00Z" }, 2);
    rd_schedule_free(&s);
    cron_ok("0 0 * * 7", NULL, &s);
    expect_next(&s, "2026-05-01T10:00:00Z", (const char *const[]){ "2026-05-03T00:00:00Z", "2026-05-10T00:00:00Z" },
                2);
    rd_schedule_free(&s);
    cron_ok("0 0 * * 5-7", NULL, &s); /* Friday to Sunday */
    expect_next(&s, "2026-05-01T10:00:00Z",
                (const char *const[]){ "2026-05-02T00:00:00Z", "2026-05-03T00:00:00Z", "2026-05-08T00:00:00Z" }, 3);
    rd_schedule_free(&s);
    /* both day fields restricted: either matches (the 13th, or any Friday) */
    cron_ok("0 12 13 * fri", NULL, &s);
    expect_next(&s, "2026-05-01T13:00:00Z",
                (const char *const[]){ "2026-05-08T12:00:00Z", "2026-05-13T12:00:00Z", "2026-05-15T12:00:00Z" }, 3);
    rd_schedule_free(&s);
    /* one of them `*`: the other decides alone */
    cron_ok("0 12 13 * *", NULL, &s);
    expect_next(&s, "2026-05-01T13:00:00Z", (const char *const[]){ "2026-05-13T12:00:00Z", "2026-06-13T12:00:00Z" },
                2);
    rd_schedule_free(&s);
    /* leap days: next in 2028 */
    cron_ok("0 0 29 2 *", NULL, &s);
    expect_next(&s, "2026-01-01T00:00:00Z", (const char *const[]){ "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z" },
                2);
    expect_prev(&s, "2031-01-01T00:00:00Z", "2028-02-29T00:00:00Z");
    rd_schedule_free(&s);
    /* macros */
    cron_ok("@daily", NULL, &s);
    expect_next(&s, "2026-05-01T13:00:00Z", (const char *const[]){ "2026-05-02T00:00:00Z" }, 1);
    rd_schedule_free(&s);
}

static void test_cron_next_prev_utc(void **state)
{
    (void)state;
    rd_schedule s;
    cron_ok("0 6 * * *", "UTC", &s);
    /* strictly after: a slot itself is not its own next */
    expect_next(&s, "2026-12-01T06:00:00Z",
                (const char *const[]){ "2026-12-02T06:00:00Z", "2026-12-03T06:00:00Z", "2026-12-04T06:00:00Z" }, 3);
    /* across the year's end */
    expect_next(&s, "2026-12-31T07:00:00Z", (const char *const[]){ "2027-01-01T06:00:00Z" }, 1);
    /* at or before */
    expect_prev(&s, "2026-12-02T06:00:00Z", "2026-12-02T06:00:00Z");
    expect_prev(&s, "2026-12-02T05:59:59Z", "2026-12-01T06:00:00Z");
    expect_prev(&s, "2027-01-01T00:00:00Z", "2026-12-31T06:00:00Z");
    /* milliseconds: 06:00:00.001 is after the slot */
    int64_t next = 0, prev = 0;
    rd_error err;
    assert_int_equal(rd_schedule_next(&s, ms("2026-12-02T05:59:59Z") + 999, &next, &err), RD_OK);
    assert_int_equal(next, ms("2026-12-02T06:00:00Z"));
    assert_int_equal(rd_schedule_prev(&s, ms("2026-12-02T06:00:00Z") + 1, &prev, &err), RD_OK);
    assert_int_equal(prev, ms("2026-12-02T06:00:00Z"));
    rd_schedule_free(&s);

    cron_ok("59 23 31 12 *", NULL, &s);
    expect_prev(&s, "2026-12-31T23:58:00Z", "2025-12-31T23:59:00Z");
    expect_next(&s, "2026-12-31T23:58:00Z", (const char *const[]){ "2026-12-31T23:59:00Z" }, 1);
    rd_schedule_free(&s);

    /* before the epoch too */
    cron_ok("0 0 1 1 *", NULL, &s);
    expect_prev(&s, "1969-06-01T00:00:00Z", "1969-01-01T00:00:00Z");
    rd_schedule_free(&s);
}

static void test_cron_never(void **state)
{
    (void)state;
    rd_schedule s;
    cron_ok("0 0 31 2 *", NULL, &s);
    rd_error err;
    rd_error_clear(&err);
    int64_t t = 0;
    assert_int_equal(rd_schedule_next(&s, ms("2026-01-01T00:00:00Z"), &t, &err), RD_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "0 0 31 2 *"));
    assert_int_equal(rd_schedule_prev(&s, ms("2026-01-01T00:00:00Z"), &t, &err), RD_E_NOT_FOUND);
    rd_schedule_free(&s);
    cron_ok("0 0 30 2 *", "Europe/Berlin", &s);
    assert_int_equal(rd_schedule_next(&s, ms("2026-01-01T00:00:00Z"), &t, &err), RD_E_NOT_FOUND);
    rd_schedule_free(&s);
    /* none and disabled have no slots */
    rd_schedule none;
    memset(&none, 0, sizeof none);
    assert_int_equal(rd_schedule_next(&none, 0, &t, &err), RD_E_NOT_FOUND);
    cron_ok("* * * * *", NULL, &s);
    s.disabled = 1;
    assert_int_equal(rd_schedule_next(&s, 0, &t, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_schedule_prev(&s, 0, &t, &err), RD_E_NOT_FOUND);
    rd_schedule_free(&s);
}

/* ---- time zones and DST ----------------------------------------------------------------------------------- */

static void test_cron_berlin_dst(void **state)
{
    (void)state;
    rd_schedule s;
    /* 02:30 does not exist on 2026-03-29 (02:00 CET -> 03:00 CEST at 01:00 UTC): it runs once, at 01:00 UTC */
    cron_ok("30 2 * * *", "Europe/Berlin", &s);
    expect_next(&s, "2026-03-27T12:00:00Z",
                (const char *const[]){ "2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z" }, 3);
    expect_prev(&s, "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z");
    expect_prev(&s, "2026-03-29T00:59:59Z", "2026-03-28T01:30:00Z");
    /* 02:30 happens twice on 2026-10-25 (03:00 CEST -> 02:00 CET at 01:00 UTC): once, the first (00:30 UTC) */
    expect_next(&s, "2026-10-24T12:00:00Z",
                (const char *const[]){ "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z" }, 2);
    expect_prev(&s, "2026-10-25T01:30:00Z", "2026-10-25T00:30:00Z");
    rd_schedule_free(&s);

    /* every 15 minutes through the gap: 01:45 CET, then 03:00 CEST (the skipped times collapse into it) */
    cron_ok("*/15 * * * *", "Europe/Berlin", &s);
    expect_next(&s, "2026-03-29T00:40:00Z",
                (const char *const[]){ "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z" }, 3);
    /* and through the overlap: 02:45 CEST (00:45 UTC), then 02:00..02:45 CET are repeats, then 03:00 CET */
    expect_next(&s, "2026-10-25T00:40:00Z",
                (const char *const[]){ "2026-10-25T00:45:00Z", "2026-10-25T02:00:00Z", "2026-10-25T02:15:00Z" }, 3);
    rd_schedule_free(&s);

    /* a winter and a summer morning */
    cron_ok("0 6 * * *", "Europe/Berlin", &s);
    expect_next(&s, "2026-12-01T12:00:00Z", (const char *const[]){ "2026-12-02T05:00:00Z" }, 1);
    expect_next(&s, "2026-07-01T12:00:00Z", (const char *const[]){ "2026-07-02T04:00:00Z" }, 1);
    /* far in the future: the footer's rule (Berlin 2090-07-01 is CEST) */
    expect_next(&s, "2090-07-01T12:00:00Z", (const char *const[]){ "2090-07-02T04:00:00Z" }, 1);
    rd_schedule_free(&s);

    /* a 45-minute zone: Kathmandu is +05:45 */
    cron_ok("0 9 * * *", "Asia/Kathmandu", &s);
    expect_next(&s, "2026-05-01T00:00:00Z", (const char *const[]){ "2026-05-01T03:15:00Z" }, 1);
    rd_schedule_free(&s);
}

/* ---- every -------------------------------------------------------------------------------------------------- */

static void test_every(void **state)
{
    (void)state;
    rd_error err;
    rd_error_clear(&err);
    int64_t secs = 0;
    struct {
        const char *text;
        int64_t secs;
    } good[] = { { "30s", 30 }, { "10m", 600 }, { "1h", 3600 }, { "2d", 172800 }, { "1h30m", 5400 },
                 { "1d2h3m4s", 93784 }, { "366d", 366 * 86400 }, { "1s", 1 } };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (rd_schedule_parse_period(good[i].text, &secs, &err) != RD_OK)
            fail_msg("%s refused: %s", good[i].text, err.message);
        assert_int_equal(secs, good[i].secs);
    }
    const char *bad[] = { "", "0s", "10", "h", "1x", "1h1h", "-1h", "367d", " 1h", "1h ", "99999999999999d" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (rd_schedule_parse_period(bad[i], &secs, &err) != RD_E_CONFIG)
            fail_msg("period `%s` accepted", bad[i]);

    rd_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = RD_SCHEDULE_EVERY;
    s.every_s = 3600;
    s.retry_attempts = 1;
    expect_next(&s, "2026-05-01T10:20:00Z",
                (const char *const[]){ "2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z" }, 2);
    expect_prev(&s, "2026-05-01T10:20:00Z", "2026-05-01T10:00:00Z");
    expect_prev(&s, "2026-05-01T10:00:00Z", "2026-05-01T10:00:00Z");
    s.every_s = 7 * 60; /* multiples of 7 minutes since the epoch, not of the hour */
    int64_t next = 0;
    assert_int_equal(rd_schedule_next(&s, ms("2026-05-01T10:20:00Z"), &next, &err), RD_OK);
    assert_int_equal(next % (420 * 1000), 0);
    assert_true(next > ms("2026-05-01T10:20:00Z") && next <= ms("2026-05-01T10:27:00Z"));
    s.every_s = 2;
    assert_int_equal(rd_schedule_next(&s, 1001, &next, &err), RD_OK);
    assert_int_equal(next, 2000);
    assert_int_equal(rd_schedule_next(&s, -1, &next, &err), RD_OK);
    assert_int_equal(next, 0);
}

/* ---- describe and copy ---------------------------------------------------------------------------------------- */

static void test_describe_copy(void **state)
{
    (void)state;
    char d[128];
    rd_schedule s, c;
    rd_error err;
    memset(&s, 0, sizeof s);
    rd_schedule_describe(&s, d, sizeof d);
    assert_string_equal(d, "none");
    rd_schedule_describe(NULL, d, sizeof d);
    assert_string_equal(d, "none");
    s.kind = RD_SCHEDULE_EVERY;
    s.every_s = 5400;
    rd_schedule_describe(&s, d, sizeof d);
    assert_string_equal(d, "every 1h30m");
    s.disabled = 1;
    rd_schedule_describe(&s, d, sizeof d);
    assert_string_equal(d, "disabled");
    cron_ok("0 6 * * *", "Europe/Berlin", &s);
    rd_schedule_describe(&s, d, sizeof d);
    assert_string_equal(d, "cron 0 6 * * * Europe/Berlin");
    rd_schedule_describe(&s, d, 8); /* truncated, terminated */
    assert_string_equal(d, "cron 0 ");
    assert_int_equal(rd_schedule_copy(&s, &c, &err), RD_OK);
    rd_schedule_free(&s);
    assert_null(s.cron);
    rd_schedule_free(&s); /* twice: a no-op */
    rd_schedule_describe(&c, d, sizeof d);
    assert_string_equal(d, "cron 0 6 * * * Europe/Berlin");
    expect_next(&c, "2026-12-01T12:00:00Z", (const char *const[]){ "2026-12-02T05:00:00Z" }, 1);
    rd_schedule_free(&c);
    rd_schedule_format_period(0, d, sizeof d);
    assert_string_equal(d, "0s");
    rd_schedule_format_period(86400 + 61, d, sizeof d);
    assert_string_equal(d, "1d1m1s");
    cron_ok("*/5 * * * *", NULL, &s);
    rd_schedule_describe(&s, d, sizeof d);
    assert_string_equal(d, "cron */5 * * * *");
    assert_int_equal(s.retry_attempts, 1);
    rd_schedule_free(&s);
    rd_schedule_free(NULL);
}

/* ---- the loader ------------------------------------------------------------------------------------------------ */

static char *make_dir(void)
{
    char tmpl[] = "/tmp/rd_test_schedule_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *copy = strdup(d);
    assert_non_null(copy);
    return copy;
}

static void put(const char *dir, const char *rel, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *s = path + strlen(dir) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(path, 0755);
            *s = '/';
        }
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_dir(char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

#define CONNECTOR "type: redshift\nworkgroup: wg\n"

static void test_load_refresh_overrides(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "redduck.yaml",
        "name: shop\n"
        "refresh:\n"
        "  cron: \"0 6 * * *\"\n"
        "  tz: Europe/Berlin\n"
        "  retry: {attempts: 3, backoff: 5m}\n"
        "notify:\n"
        "  webhook: \"{{ .env.HOOK }}\"\n");
    put(dir, ".env", "HOOK=https://hooks.example.com/T000/B000\n");
    put(dir, "connectors/c.yaml", CONNECTOR);
    /* inherits everything */
    put(dir, "sources/a.yaml", "table: public.a\n");
    /* every replaces the cron (and its zone); retry inherited; notify replaced, only failures */
    put(dir, "sources/b.yaml",
        "table: public.b\nrefresh:\n  every: 2s\nnotify:\n  webhook: http://127.0.0.1:9/hook\n  on: [failure]\n");
    /* only tz: the project's cron in another zone */
    put(dir, "sources/c.yaml", "table: public.c\nrefresh: {tz: America/New_York, disabled: true}\n");
    /* its own cron: UTC unless it says; attempts overridden, backoff inherited */
    put(dir, "sources/d.yaml", "table: public.d\nrefresh: {cron: '*/10 * * * *', retry: {attempts: 2}}\n"
                               "notify: {webhook: \"\"}\n");
    put(dir, "sources/e.yaml", "table: public.e\nrefresh:\nnotify: {webhook: 'http://[::1]:8080/x', on: "
                               "[recovery, failure]}\n");
    rd_project p;
    rd_error err;
    rd_error_clear(&err);
    if (rd_project_load(dir, &p, &err) != RD_OK)
        fail_msg("load: %s", err.message);
    char d[128];
    rd_schedule_describe(&p.refresh, d, sizeof d);
    assert_string_equal(d, "cron 0 6 * * * Europe/Berlin");
    assert_int_equal(p.refresh.retry_attempts, 3);
    assert_int_equal(p.refresh.retry_backoff_s, 300);
    assert_string_equal(p.notify.webhook, "https://hooks.example.com/T000/B000");
    assert_true(p.notify.on_failure && p.notify.on_recovery);

    const rd_source *a = rd_project_source(&p, "a");
    rd_schedule_describe(&a->refresh, d, sizeof d);
    assert_string_equal(d, "cron 0 6 * * * Europe/Berlin");
    assert_int_equal(a->refresh.retry_attempts, 3);
    assert_ptr_not_equal(a->refresh.cron, p.refresh.cron); /* a copy */
    assert_string_equal(a->notify.webhook, p.notify.webhook);
    assert_ptr_not_equal(a->notify.webhook, p.notify.webhook);
    expect_next(&a->refresh, "2026-12-01T12:00:00Z", (const char *const[]){ "2026-12-02T05:00:00Z" }, 1);

    const rd_source *b = rd_project_source(&p, "b");
    rd_schedule_describe(&b->refresh, d, sizeof d);
    assert_string_equal(d, "every 2s");
    assert_null(b->refresh.tz);
    assert_int_equal(b->refresh.retry_attempts, 3);
    assert_int_equal(b->refresh.retry_backoff_s, 300);
    assert_string_equal(b->notify.webhook, "http://127.0.0.1:9/hook");
    assert_true(b->notify.on_failure);
    assert_false(b->notify.on_recovery);

    const rd_source *c = rd_project_source(&p, "c");
    assert_int_equal(c->refresh.kind, RD_SCHEDULE_CRON);
    assert_string_equal(c->refresh.cron, "0 6 * * *");
    assert_string_equal(c->refresh.tz, "America/New_York");
    assert_true(c->refresh.disabled);
    rd_schedule_describe(&c->refresh, d, sizeof d);
    assert_string_equal(d, "disabled");
    rd_schedule enabled;
    assert_int_equal(rd_schedule_copy(&c->refresh, &enabled, &err), RD_OK);
    enabled.disabled = 0; /* 06:00 EST is 11:00 UTC */
    expect_next(&enabled, "2026-12-01T12:00:00Z", (const char *const[]){ "2026-12-02T11:00:00Z" }, 1);
    rd_schedule_free(&enabled);

    const rd_source *dd = rd_project_source(&p, "d");
    rd_schedule_describe(&dd->refresh, d, sizeof d);
    assert_string_equal(d, "cron */10 * * * *");
    assert_int_equal(dd->refresh.retry_attempts, 2);
    assert_int_equal(dd->refresh.retry_backoff_s, 300);
    assert_null(dd->notify.webhook);

    const rd_source *e = rd_project_source(&p, "e");
    rd_schedule_describe(&e->refresh, d, sizeof d); /* `refresh:` null: the project's */
    assert_string_equal(d, "cron 0 6 * * * Europe/Berlin");
    assert_string_equal(e->notify.webhook, "http://[::1]:8080/x");
    assert_true(e->notify.on_failure && e->notify.on_recovery);
    rd_project_free(&p);

    /* no refresh anywhere: manual only; a source alone may set one */
    put(dir, "redduck.yaml", "name: shop\n");
    put(dir, "sources/b.yaml", "table: public.b\n");
    put(dir, "sources/c.yaml", "table: public.c\nrefresh: {every: 1h30m}\n");
    put(dir, "sources/d.yaml", "table: public.d\n");
    put(dir, "sources/e.yaml", "table: public.e\nrefresh: {retry: {attempts: 4, backoff: 0}}\n");
    if (rd_project_load(dir, &p, &err) != RD_OK)
        fail_msg("load: %s", err.message);
    assert_int_equal(p.refresh.kind, RD_SCHEDULE_NONE);
    assert_int_equal(p.refresh.retry_attempts, 1);
    assert_null(p.notify.webhook);
    assert_int_equal(rd_project_source(&p, "a")->refresh.kind, RD_SCHEDULE_NONE);
    rd_schedule_describe(&rd_project_source(&p, "c")->refresh, d, sizeof d);
    assert_string_equal(d, "every 1h30m");
    assert_int_equal(rd_project_source(&p, "e")->refresh.kind, RD_SCHEDULE_NONE);
    assert_int_equal(rd_project_source(&p, "e")->refresh.retry_attempts, 4);
    assert_int_equal(rd_project_source(&p, "e")->refresh.retry_backoff_s, 0);
    rd_project_free(&p);
    remove_dir(dir);
}

/* Loads a project whose redduck.yaml is project_yaml and whose one source is source_yaml; expects RD_E_CONFIG
 * with a message containing FILE:LINE (file "redduck.yaml" or "sources/s.yaml") and want. */
static void load_bad(const char *project_yaml, const char *source_yaml, const char *file_line, const char *want)
{
    char *dir = make_dir();
    put(dir, "redduck.yaml", project_yaml);
    put(dir, "connectors/c.yaml", CONNECTOR);
    put(dir, "sources/s.yaml", source_yaml);
    put(dir, ".env", "SECRET_HOOK=http://hooks.example.com/secret-token-123\nLONG=1h\n");
    rd_project p;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_project_load(dir, &p, &err);
    if (st == RD_OK) {
        rd_project_free(&p);
        fail_msg("loaded: %s / %s", project_yaml, source_yaml);
    }
    assert_int_equal(st, RD_E_CONFIG);
    char where[4200];
    snprintf(where, sizeof where, "%s/%s: ", dir, file_line);
    if (!strstr(err.message, where) || !strstr(err.message, want))
        fail_msg("message `%s` lacks `%s` or `%s`", err.message, where, want);
    assert_null(strstr(err.message, "secret-token-123"));
    remove_dir(dir);
}

static void test_load_errors(void **state)
{
    (void)state;
    const char *src = "table: public.s\n";
    load_bad("name: x\nrefresh:\n  cron: \"0 25 * * *\"\n", src, "redduck.yaml:3", "refresh.cron: hour");
    load_bad("name: x\nrefresh:\n  crn: \"0 5 * * *\"\n", src, "redduck.yaml:3", "unknown key `crn` (did you mean "
                                                                               "`cron`?)");
    load_bad("name: x\nrefresh:\n  cron: \"0 5 * * *\"\n  every: 1h\n", src, "redduck.yaml:4",
             "only one of `cron` and `every`");
    load_bad("name: x\nrefresh:\n  cron: \"0 5 * * *\"\n  tz: Europe/Nowhere\n", src, "redduck.yaml:4",
             "refresh.tz: unknown time zone `Europe/Nowhere`");
    load_bad("name: x\nrefresh:\n  tz: Europe/Berlin\n", src, "redduck.yaml:3", "refresh.tz needs a `cron:`");
    load_bad("name: x\nrefresh:\n  every: 1h\n  tz: Europe/Berlin\n", src, "redduck.yaml:4", "`cron` only");
    load_bad("name: x\nrefresh:\n  every: 90\n", src, "redduck.yaml:3", "refresh.every: ");
    load_bad("name: x\nrefresh:\n  every: 0s\n", src, "redduck.yaml:3", "at least 1s");
    load_bad("name: x\nrefresh: hourly\n", src, "redduck.yaml:2", "`refresh` must be a mapping");
    load_bad("name: x\nrefresh:\n  retry: {attempts: 11}\n", src, "redduck.yaml:3", "refresh.retry.attempts");
    load_bad("name: x\nrefresh:\n  retry:\n    backof: 1m\n", src, "redduck.yaml:4", "did you mean `backoff`");
    load_bad("name: x\nrefresh:\n  retry: {backoff: 2d}\n", src, "redduck.yaml:3", "at most 1d");
    load_bad("name: x\nrefresh:\n  disabled: maybe\n", src, "redduck.yaml:3", "true or false");
    load_bad("name: x\n", "table: public.s\nrefresh:\n  cron: '* * * * mon-sun'\n", "sources/s.yaml:3",
             "refresh.cron: day-of-week");
    load_bad("name: x\n", "table: public.s\nrefresh: {tz: UTC}\n", "sources/s.yaml:2",
             "here or in redduck.yaml's refresh:");
    load_bad("name: x\nrefresh: {every: 1h}\n", "table: public.s\nrefresh: {tz: Asia/Tokyo}\n", "sources/s.yaml:2",
             "refresh.tz needs a `cron:`");
    load_bad("name: x\nrefresh: {cron: '0 6 * * *'}\n", "table: public.s\nrefresh:\n  tz: '../../../etc/passwd'\n",
             "sources/s.yaml:3", "refresh.tz: `../../../etc/passwd` is not a time zone name");
    load_bad("name: x\nrefresh: {every: '{{ .env.LONG }}x'}\n", src, "redduck.yaml:2",
             "the value from .env is not a period");
    /* notify */
    load_bad("name: x\nnotify:\n  webhook: http://hooks.example.com/x\n", src, "redduck.yaml:3",
             "notify.webhook uses http:// to a host that is not loopback");
    load_bad("name: x\nnotify:\n  webhook: \"{{ .env.SECRET_HOOK }}\"\n", src, "redduck.yaml:3", "not loopback");
    load_bad("name: x\nnotify:\n  webhook: ftp://x/\n", src, "redduck.yaml:3", "must start with https://");
    load_bad("name: x\nnotify:\n  webhook: http://127.0.0.1@evil.example/\n", src, "redduck.yaml:3", "user name");
    load_bad("name: x\nnotify:\n  webhook: http://127.0.0.1.evil.example/\n", src, "redduck.yaml:3", "not loopback");
    load_bad("name: x\nnotify:\n  webhook: https://h/x\n  on: [failure, success]\n", src, "redduck.yaml:4",
             "notify.on: `success` is not an event");
    load_bad("name: x\nnotify:\n  on: [failure]\n", src, "redduck.yaml:2", "needs `webhook:`");
    load_bad("name: x\nnotify:\n  webhok: https://h/\n", src, "redduck.yaml:3", "did you mean `webhook`");
    load_bad("name: x\n", "table: public.s\nnotify: [https://h/]\n", "sources/s.yaml:2", "`notify` must be a mapping");
    load_bad("name: x\n", "table: public.s\nrefresh: {every: 1h}\nrefrsh: {}\n", "sources/s.yaml:3",
             "did you mean `refresh`");
    /* the loader's old rules still hold under refresh: */
    load_bad("name: x\nrefresh: &a {every: 1h}\n", src, "redduck.yaml:2", "anchors");
}

/* `redduck env configure` finds the templates under refresh: and notify: too. */
static void test_env_keys_see_schedules(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "redduck.yaml", "name: x\nrefresh:\n  retry: {backoff: \"{{ .env.BACKOFF }}\"}\n"
                             "notify: {webhook: \"{{ .env.HOOK }}\", on: [\"{{ .env.EVENT }}\"]}\n");
    put(dir, "connectors/c.yaml", CONNECTOR);
    put(dir, "sources/s.yaml", "table: public.s\nrefresh: {cron: \"{{ .env.CRON }}\"}\n");
    char **keys = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_project_env_keys(dir, &keys, &n, &err), RD_OK);
    const char *want[] = { "connector.c.aws_access_key_id", "connector.c.aws_secret_access_key", "CRON", "BACKOFF",
                           "HOOK", "EVENT" };
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(keys[i], want[i]);
    rd_project_keys_free(keys, n);
    /* and the values from .env are read as the schedule */
    put(dir, ".env", "BACKOFF=30s\nHOOK=https://h.example/x\nEVENT=recovery\nCRON=0 7 * * sat\n");
    rd_project p;
    if (rd_project_load(dir, &p, &err) != RD_OK)
        fail_msg("load: %s", err.message);
    const rd_source *s = rd_project_source(&p, "s");
    assert_string_equal(s->refresh.cron, "0 7 * * sat");
    assert_int_equal(s->refresh.retry_backoff_s, 30);
    assert_false(s->notify.on_failure);
    assert_true(s->notify.on_recovery);
    expect_next(&s->refresh, "2026-05-01T00:00:00Z", (const char *const[]){ "2026-05-02T07:00:00Z" }, 1);
    rd_project_free(&p);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cron_errors),       cmocka_unit_test(test_cron_fields),
        cmocka_unit_test(test_cron_next_prev_utc), cmocka_unit_test(test_cron_never),
        cmocka_unit_test(test_cron_berlin_dst),   cmocka_unit_test(test_every),
        cmocka_unit_test(test_describe_copy),     cmocka_unit_test(test_load_refresh_overrides),
        cmocka_unit_test(test_load_errors),       cmocka_unit_test(test_env_keys_see_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
