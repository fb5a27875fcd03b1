/* schedule.c — refresh schedules (schedule.h): 5-field cron expressions compiled to bit sets and searched over
 * local wall-clock times of their zone (whole months, days and hours that cannot match are skipped), and
 * `every` periods on multiples since the epoch. Owns the DST rules (a skipped local time runs at the end of
 * the gap, a repeated one at its first occurrence); the zones themselves are core/tz.c's. */
#include "redduck/project.h" /* redduck/schedule.h: the project module's public header brings it */

#include <ctype.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/tz.h"

#define CRON_MAX_LEN 256
#define PERIOD_MAX_LEN 64
#define PERIOD_MAX_S (366LL * 86400)
#define SEARCH_DAYS (5 * 366 + 2)         /* a cron with no slot in 5 years has none ("0 0 29 2 1" has) */
#define ZONE_SLACK_S (27 * 3600)          /* more than any UTC offset */
#define DST_SLACK_S (3 * 3600)            /* more than any DST shift: where a search starts before its instant */

struct rd_schedule_compiled {
    atomic_int refs;
    uint64_t minute; /* bit n: minute n (0..59) */
    uint32_t hour;   /* 0..23 */
    uint32_t dom;    /* 1..31 */
    uint32_t month;  /* 1..12 */
    uint32_t dow;    /* 0..6, Sunday 0 */
    int dom_star, dow_star; /* the field starts with `*`: the other one alone decides the day */
    rd_tz *tz;       /* NULL: UTC */
};

static rd_status oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

static void compiled_release(struct rd_schedule_compiled *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        rd_tz_free(c->tz);
        free(c);
    }
}

/* ---- cron parsing --------------------------------------------------------------------------------------- */

typedef struct cron_field {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is value min + i */
} cron_field;

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                           "nov", "dec", NULL };
static const char *const dow_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const cron_field fields[5] = {
    { "minute", 0, 59, NULL },     { "hour", 0, 23, NULL },        { "day-of-month", 1, 31, NULL },
    { "month", 1, 12, month_names }, { "day-of-week", 0, 7, dow_names },
};

/* A number or (for month and day-of-week) a name at *s; advances *s. -1 when there is neither. */
static int field_value(const cron_field *f, const char **s)
{
    const char *p = *s;
    if (isdigit((unsigned char)*p)) {
        int v = 0, digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (++digits > 3)
                return -2; /* too large for any field */
            v = v * 10 + (*p++ - '0');
        }
        *s = p;
        return v;
    }
    for (int i = 0; f->names && f->names[i]; i++) {
        if (strncasecmp(p, f->names[i], 3) == 0 && !isalpha((unsigned char)p[3])) {
            *s = p + 3;
            return f->min + i;
        }
    }
    return -1;
}

static rd_status field_error(rd_error *err, const cron_field *f, const char *text, size_t len, const char *what)
{
    return rd_error_set(err, RD_E_CONFIG, "%s `%.*s`: %s", f->name, (int)(len > 40 ? 40 : len), text, what);
}

/* One field (text[0..len), no spaces) into bits. */
static rd_status parse_field(const cron_field *f, const char *text, size_t len, uint64_t *bits, int *star,
                             rd_error *err)
{
    char buf[CRON_MAX_LEN + 1];
    memcpy(buf, text, len);
    buf[len] = '\0';
    *bits = 0;
    *star = buf[0] == '*';
    const char *s = buf;
    char range_text[64];
    for (;;) {
        int lo, hi, step = 1, single = 0;
        if (*s == '*') {
            s++;
            lo = f->min;
            hi = f->max == 7 ? 6 : f->max;
        } else {
            lo = field_value(f, &s);
            if (lo < 0)
                return field_error(err, f, text, len,
                                   lo == -2 ? "a number out of range"
                                   : f->names ? "expected a number, a name (such as jan or mon), `*`, a range a-b, "
                                                "a list a,b or a step */n"
                                              : "expected a number, `*`, a range a-b, a list a,b or a step */n");
            hi = lo;
            single = *s != '-';
            if (*s == '-') {
                s++;
                hi = field_value(f, &s);
                if (hi < 0)
                    return field_error(err, f, text, len, "a range needs an end (a-b)");
            }
        }
        if (*s == '/') {
            s++;
            const char *before = s;
            step = field_value(&(cron_field){ f->name, 0, 0, NULL }, &s);
            if (step <= 0 || s == before)
                return field_error(err, f, text, len, "a step must be a positive number (*/15)");
            if (single) /* "5/15": from 5 to the end */
                hi = f->max == 7 ? 6 : f->max;
        }
        if (lo < f->min || lo > f->max || hi < f->min || hi > f->max) {
            snprintf(range_text, sizeof range_text, "out of range %d-%d", f->min, f->max);
            return field_error(err, f, text, len, range_text);
        }
        if (hi < lo)
            return field_error(err, f, text, len, "a range runs backwards (write the smaller value first)");
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ull << (f->max == 7 && v == 7 ? 0 : v);
        if (*s == '\0')
            break;
        if (*s != ',' || s[1] == '\0')
            return field_error(err, f, text, len, *s == ',' ? "a list must not end with `,`"
                                                             : "unexpected character (expected `,`, `-` or `/`)");
        s++;
    }
    return RD_OK;
}

static const struct {
    const char *name, *expr;
} macros[] = {
    { "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
    { "@weekly", "0 0 * * 0" },  { "@daily", "0 0 * * *" },    { "@midnight", "0 0 * * *" },
    { "@hourly", "0 * * * *" },
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

rd_status rd_schedule_parse_cron(const char *expr, const char *tz, rd_schedule *out, rd_error *err)
{
    if (!expr)
        return rd_error_set(err, RD_E_CONFIG, "empty cron expression (5 fields: minute hour day-of-month month "
                            "day-of-week, e.g. \"0 6 * * *\")");
    size_t elen = strlen(expr);
    if (elen > CRON_MAX_LEN)
        return rd_error_set(err, RD_E_CONFIG, "the cron expression is longer than %d characters", CRON_MAX_LEN);
    const char *text = expr;
    while (isspace((unsigned char)*text))
        text++;
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
        size_t n = strlen(macros[i].name);
        if (strncasecmp(text, macros[i].name, n) == 0) {
            const char *rest = text + n;
            while (isspace((unsigned char)*rest))
                rest++;
            if (!*rest) {
                text = macros[i].expr;
                break;
            }
        }
    }
    struct rd_schedule_compiled *c = calloc(1, sizeof *c);
    if (!c)
        return oom(err);
    atomic_init(&c->refs, 1);
    uint64_t bits[5] = { 0 };
    int stars[5] = { 0 };
    const char *s = text;
    rd_status st = RD_OK;
    int nfields = 0;
    while (st == RD_OK) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        const char *start = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        if (nfields == 5) {
            st = rd_error_set(err, RD_E_CONFIG, "more than 5 fields (minute hour day-of-month month day-of-week; "
                              "seconds and years are not supported)");
            break;
        }
        st = parse_field(&fields[nfields], start, (size_t)(s - start), &bits[nfields], &stars[nfields], err);
        nfields++;
    }
    if (st == RD_OK && nfields < 5)
        st = rd_error_set(err, RD_E_CONFIG, "%d field%s where cron needs 5 (minute hour day-of-month month "
                          "day-of-week, e.g. \"0 6 * * *\"); %s is missing", nfields, nfields == 1 ? "" : "s",
                          fields[nfields].name);
    if (st == RD_OK && tz && strcmp(tz, "UTC") != 0) {
        rd_error e;
        rd_error_clear(&e);
        st = rd_tz_load(tz, &c->tz, &e);
        if (st != RD_OK)
            st = rd_error_set(err, st == RD_E_INTERNAL ? st : RD_E_CONFIG, "%s", e.message);
    }
    if (st != RD_OK) {
        compiled_release(c);
        return st;
    }
    c->minute = bits[0];
    c->hour = (uint32_t)bits[1];
    c->dom = (uint32_t)bits[2];
    c->month = (uint32_t)bits[3];
    c->dow = (uint32_t)bits[4];
    c->dom_star = stars[2];
    c->dow_star = stars[4];
    rd_schedule r;
    memset(&r, 0, sizeof r);
    r.kind = RD_SCHEDULE_CRON;
    r.retry_attempts = 1;
    r.compiled = c;
    if (!(r.cron = strdup(expr)) || (tz && !(r.tz = strdup(tz)))) {
        rd_schedule_free(&r);
        return oom(err);
    }
    *out = r;
    return RD_OK;
}

rd_status rd_schedule_parse_period(const char *text, int64_t *seconds, rd_error *err)
{
    static const char usage[] = "a period is a number and a unit (s, m, h, d), e.g. 30s, 10m, 1h, 1d or 1h30m";
    if (!text || !text[0])
        return rd_error_set(err, RD_E_CONFIG, "empty period: %s", usage);
    if (strlen(text) > PERIOD_MAX_LEN)
        return rd_error_set(err, RD_E_CONFIG, "the period is longer than %d characters: %s", PERIOD_MAX_LEN, usage);
    int64_t total = 0;
    const char *s = text;
    int seen = 0; /* units used, so "1h1h" is refused */
    while (*s) {
        if (!isdigit((unsigned char)*s))
            return rd_error_set(err, RD_E_CONFIG, "`%.32s` is not a period: %s", text, usage);
        int64_t n = 0;
        while (isdigit((unsigned char)*s)) {
            n = n * 10 + (*s++ - '0');
            if (n > PERIOD_MAX_S)
                return rd_error_set(err, RD_E_CONFIG, "`%.32s` is longer than 366d", text);
        }
        int64_t unit;
        int bit;
        switch (*s) {
        case 's': unit = 1, bit = 1; break;
        case 'm': unit = 60, bit = 2; break;
        case 'h': unit = 3600, bit = 4; break;
        case 'd': unit = 86400, bit = 8; break;
        default:
            return rd_error_set(err, RD_E_CONFIG, "`%.32s` is not a period (a unit is missing after %" PRId64 "): %s",
                                text, n, usage);
        }
        if (seen & bit)
            return rd_error_set(err, RD_E_CONFIG, "`%.32s` is not a period (a unit given twice): %s", text, usage);
        seen |= bit;
        s++;
        total += n * unit;
        if (total > PERIOD_MAX_S)
            return rd_error_set(err, RD_E_CONFIG, "`%.32s` is longer than 366d", text);
    }
    if (total < 1)
        return rd_error_set(err, RD_E_CONFIG, "the period must be at least 1s");
    *seconds = total;
    return RD_OK;
}

/* ---- local wall-clock search ------------------------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

typedef struct civil {
    int64_t days; /* since the epoch, local */
    int64_t y;
    int m, d, h, mi;
} civil;

static civil civil_of(int64_t local)
{
    civil c;
    c.days = floor_div(local, 86400);
    int64_t sod = local - c.days * 86400;
    rd_tz_civil_from_days(c.days, &c.y, &c.m, &c.d);
    c.h = (int)(sod / 3600);
    c.mi = (int)(sod % 3600 / 60);
    return c;
}

static int day_matches(const struct rd_schedule_compiled *c, const civil *t)
{
    int dom = (c->dom >> t->d) & 1, dow = (c->dow >> rd_tz_weekday(t->days)) & 1;
    if (c->dom_star || c->dow_star)
        return dom && dow;
    return dom || dow;
}

/* The first matching local minute >= local (seconds, rounded up to a minute), or INT64_MAX past limit. */
static int64_t next_local(const struct rd_schedule_compiled *c, int64_t local, int64_t limit)
{
    local = floor_div(local + 59, 60) * 60;
    while (local <= limit) {
        civil t = civil_of(local);
        int64_t day_start = t.days * 86400;
        if (!((c->month >> t.m) & 1)) {
            int64_t y = t.y + (t.m == 12), m = t.m == 12 ? 1 : t.m + 1;
            local = rd_tz_days_from_civil(y, (int)m, 1) * 86400;
            continue;
        }
        if (!day_matches(c, &t)) {
            local = day_start + 86400;
            continue;
        }
        if (!((c->hour >> t.h) & 1)) {
            int h = t.h + 1;
            while (h < 24 && !((c->hour >> h) & 1))
                h++;
            local = h < 24 ? day_start + h * 3600 : day_start + 86400;
            continue;
        }
        int mi = t.mi;
        while (mi < 60 && !((c->minute >> mi) & 1))
            mi++;
        if (mi < 60)
            return day_start + t.h * 3600 + mi * 60;
        local = day_start + (t.h + 1) * 3600;
    }
    return INT64_MAX;
}

/* The last matching local minute <= local, or INT64_MIN before limit. */
static int64_t prev_local(const struct rd_schedule_compiled *c, int64_t local, int64_t limit)
{
    local = floor_div(local, 60) * 60;
    while (local >= limit) {
        civil t = civil_of(local);
        int64_t day_start = t.days * 86400;
        if (!((c->month >> t.m) & 1)) {
            local = rd_tz_days_from_civil(t.y, t.m, 1) * 86400 - 60;
            continue;
        }
        if (!day_matches(c, &t)) {
            local = day_start - 60;
            continue;
        }
        if (!((c->hour >> t.h) & 1)) {
            int h = t.h - 1;
            while (h >= 0 && !((c->hour >> h) & 1))
                h--;
            local = h >= 0 ? day_start + h * 3600 + 59 * 60 : day_start - 60;
            continue;
        }
        int mi = t.mi;
        while (mi >= 0 && !((c->minute >> mi) & 1))
            mi--;
        if (mi >= 0)
            return day_start + t.h * 3600 + mi * 60;
        local = day_start + t.h * 3600 - 60;
    }
    return INT64_MIN;
}

/* The instant a local wall-clock time runs at in tz: its only occurrence; the first of two (clocks going
 * back); or, for a time the clocks skip, the first instant after the gap (the transition). The mapping never
 * decreases as local grows, so the searches below may walk local times in order. */
static int64_t local_to_utc(const rd_tz *tz, int64_t local)
{
    if (!tz)
        return local;
    int32_t early = rd_tz_offset(tz, local - ZONE_SLACK_S), late = rd_tz_offset(tz, local + ZONE_SLACK_S);
    int32_t cand[4] = { early, late, rd_tz_offset(tz, local - early), rd_tz_offset(tz, local - late) };
    int64_t best = INT64_MAX;
    int32_t lo_off = cand[0], hi_off = cand[0];
    for (int i = 0; i < 4; i++) {
        int64_t u = local - cand[i];
        if (rd_tz_offset(tz, u) == cand[i] && u < best)
            best = u;
        if (cand[i] < lo_off)
            lo_off = cand[i];
        if (cand[i] > hi_off)
            hi_off = cand[i];
    }
    if (best != INT64_MAX)
        return best;
    /* In a gap: the transition lies in (local - hi_off, local - lo_off]; find the first instant whose offset
     * differs from the one before the gap. */
    int64_t lo = local - hi_off, hi = local - lo_off;
    int32_t before = rd_tz_offset(tz, lo);
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (rd_tz_offset(tz, mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

static rd_status cron_next(const struct rd_schedule_compiled *c, int64_t after_s, int64_t *out)
{
    /* The first local time that may map past after_s: the wall clock at after_s, or a lower one a day on
     * (clocks set back), less a DST shift. */
    int32_t o1 = rd_tz_offset(c->tz, after_s), o2 = rd_tz_offset(c->tz, after_s + ZONE_SLACK_S);
    int64_t local = after_s + (o1 < o2 ? o1 : o2) - (c->tz ? DST_SLACK_S : 0);
    int64_t limit = local + (int64_t)SEARCH_DAYS * 86400;
    for (;;) {
        local = next_local(c, local, limit);
        if (local == INT64_MAX)
            return RD_E_NOT_FOUND;
        int64_t u = local_to_utc(c->tz, local);
        if (u > after_s) {
            *out = u;
            return RD_OK;
        }
        local += 60;
    }
}

static rd_status cron_prev(const struct rd_schedule_compiled *c, int64_t at_s, int64_t *out)
{
    int32_t o1 = rd_tz_offset(c->tz, at_s), o2 = rd_tz_offset(c->tz, at_s - ZONE_SLACK_S);
    int64_t local = at_s + (o1 > o2 ? o1 : o2) + (c->tz ? DST_SLACK_S : 0);
    int64_t limit = local - (int64_t)SEARCH_DAYS * 86400;
    for (;;) {
        local = prev_local(c, local, limit);
        if (local == INT64_MIN)
            return RD_E_NOT_FOUND;
        int64_t u = local_to_utc(c->tz, local);
        if (u <= at_s) {
            *out = u;
            return RD_OK;
        }
        local -= 60;
    }
}

/* Instants far outside any schedule's use are refused rather than overflowed: +-10^15 ms (~31700 years). */
#define MS_LIMIT 1000000000000000LL

static rd_status none_error(const rd_schedule *s, rd_error *err)
{
    if (!s || s->kind == RD_SCHEDULE_NONE)
        return rd_error_set(err, RD_E_NOT_FOUND, "no schedule (no `refresh:`): only manual runs");
    if (s->disabled)
        return rd_error_set(err, RD_E_NOT_FOUND, "the schedule is disabled (`refresh: {disabled: true}`)");
    return RD_OK;
}

rd_status rd_schedule_next(const rd_schedule *s, int64_t after_ms, int64_t *next_ms, rd_error *err)
{
    rd_status st = none_error(s, err);
    if (st != RD_OK)
        return st;
    if (after_ms < -MS_LIMIT || after_ms > MS_LIMIT)
        return rd_error_set(err, RD_E_NOT_FOUND, "no slot: the time is out of range");
    if (s->kind == RD_SCHEDULE_EVERY) {
        if (s->every_s <= 0)
            return rd_error_set(err, RD_E_INTERNAL, "every: the period is not set");
        int64_t p = s->every_s * 1000;
        *next_ms = (floor_div(after_ms, p) + 1) * p;
        return RD_OK;
    }
    if (!s->compiled)
        return rd_error_set(err, RD_E_INTERNAL, "the cron schedule was not parsed (use rd_schedule_parse_cron)");
    int64_t u = 0;
    if (cron_next(s->compiled, floor_div(after_ms, 1000), &u) != RD_OK)
        return rd_error_set(err, RD_E_NOT_FOUND, "cron `%.64s` has no time in the next 5 years (check the day of "
                            "the month and the month)", s->cron ? s->cron : "");
    *next_ms = u * 1000;
    return RD_OK;
}

rd_status rd_schedule_prev(const rd_schedule *s, int64_t at_ms, int64_t *prev_ms, rd_error *err)
{
    rd_status st = none_error(s, err);
    if (st != RD_OK)
        return st;
    if (at_ms < -MS_LIMIT || at_ms > MS_LIMIT)
        return rd_error_set(err, RD_E_NOT_FOUND, "no slot: the time is out of range");
    if (s->kind == RD_SCHEDULE_EVERY) {
        if (s->every_s <= 0)
            return rd_error_set(err, RD_E_INTERNAL, "every: the period is not set");
        int64_t p = s->every_s * 1000;
        *prev_ms = floor_div(at_ms, p) * p;
        return RD_OK;
    }
    if (!s->compiled)
        return rd_error_set(err, RD_E_INTERNAL, "the cron schedule was not parsed (use rd_schedule_parse_cron)");
    int64_t u = 0;
    if (cron_prev(s->compiled, floor_div(at_ms, 1000), &u) != RD_OK)
        return rd_error_set(err, RD_E_NOT_FOUND, "cron `%.64s` has no time in the last 5 years",
                            s->cron ? s->cron : "");
    *prev_ms = u * 1000;
    return RD_OK;
}

/* ---- the rest -------------------------------------------------------------------------------------------- */

/* "1h30m" for 5400 (d, h, m, s; zero parts left out). */
void rd_schedule_format_period(int64_t s, char *out, size_t n)
{
    if (!out || n == 0)
        return;
    if (s <= 0) {
        snprintf(out, n, "0s");
        return;
    }
    static const struct {
        int64_t secs;
        char unit;
    } units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 4 && at < n; i++) {
        if (s >= units[i].secs) {
            int w = snprintf(out + at, n - at, "%" PRId64 "%c", s / units[i].secs, units[i].unit);
            if (w < 0)
                break;
            at += (size_t)w;
            s %= units[i].secs;
        }
    }
}

void rd_schedule_describe(const rd_schedule *s, char *out, size_t n)
{
    if (!out || n == 0)
        return;
    if (!s || s->kind == RD_SCHEDULE_NONE)
        snprintf(out, n, "%s", s && s->disabled ? "disabled" : "none");
    else if (s->disabled)
        snprintf(out, n, "disabled");
    else if (s->kind == RD_SCHEDULE_EVERY) {
        char p[64];
        rd_schedule_format_period(s->every_s, p, sizeof p);
        snprintf(out, n, "every %s", p);
    } else
        snprintf(out, n, "cron %s%s%s", s->cron ? s->cron : "", s->tz ? " " : "", s->tz ? s->tz : "");
}

rd_status rd_schedule_copy(const rd_schedule *src, rd_schedule *dst, rd_error *err)
{
    rd_schedule r = *src;
    r.cron = r.tz = NULL;
    r.compiled = NULL;
    if ((src->cron && !(r.cron = dup_or_null(src->cron))) || (src->tz && !(r.tz = dup_or_null(src->tz)))) {
        free(r.cron);
        free(r.tz);
        return oom(err);
    }
    if (src->compiled) {
        atomic_fetch_add(&src->compiled->refs, 1);
        r.compiled = src->compiled;
    }
    *dst = r;
    return RD_OK;
}

void rd_schedule_free(rd_schedule *s)
{
    if (!s)
        return;
    free(s->cron);
    free(s->tz);
    compiled_release(s->compiled);
    memset(s, 0, sizeof *s);
}
