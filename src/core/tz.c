/* tz.c — TZif reading (RFC 8536) and the POSIX TZ rules of its footer, for UTC offsets at any instant; and
 * the calendar arithmetic (days from civil dates and back). Owns no cron logic and never calls tzset or
 * localtime: the process's TZ is left alone, so any thread may use any zone. */
#include "core/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ABS_OFFSET (26 * 3600)    /* RFC 8536: -89999..93599; with room */
#define MAX_RULE_TIME (167 * 3600)    /* RFC 8536 extension of the POSIX rule time: -167..167 hours */

typedef enum rule_kind { RULE_JULIAN1 = 0, RULE_JULIAN0, RULE_MONTH } rule_kind;

typedef struct tz_rule_day {
    rule_kind kind;
    int a, b, c;  /* J: a = 1..365; n: a = 0..365; M: a month 1..12, b week 1..5, c weekday 0..6 */
    int32_t time; /* seconds after local midnight the change happens (local time before the change) */
} tz_rule_day;

typedef struct tz_rule {
    int32_t std_off, dst_off; /* UTC offsets (local = UTC + off) */
    int has_dst;
    tz_rule_day start, end;
} tz_rule;

struct rd_tz {
    char *name;
    size_t ntrans;
    int64_t *trans;   /* ascending */
    uint8_t *idx;     /* type of each transition */
    size_t ntypes;
    int32_t *utoff;   /* per type */
    int has_rule;
    tz_rule rule;
};

/* ---- calendar ----------------------------------------------------------------------------------------- */

/* Howard Hinnant's algorithms (public domain), in 64-bit arithmetic. */
int64_t rd_tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void rd_tz_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int rd_tz_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int rd_tz_month_days(int64_t y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : days[(m - 1) % 12];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ---- the POSIX TZ rule (the footer) -------------------------------------------------------------------- */

typedef struct cursor {
    const char *s;
} cursor;

/* A zone abbreviation: 3+ letters, or <...> of letters, digits, '+', '-'. */
static int parse_abbr(cursor *c)
{
    const char *s = c->s;
    size_t n = 0;
    if (*s == '<') {
        s++;
        while (s[n] && s[n] != '>') {
            char ch = s[n];
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
                  ch == '-'))
                return -1;
            n++;
        }
        if (s[n] != '>' || n < 3)
            return -1;
        c->s = s + n + 1;
        return 0;
    }
    while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
        n++;
    if (n < 3)
        return -1;
    c->s = s + n;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh at most max_h; into seconds. */
static int parse_hms(cursor *c, int max_h, int32_t *out)
{
    const char *s = c->s;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int32_t parts[3] = { 0, 0, 0 };
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        if (*s < '0' || *s > '9')
            return -1;
        int v = 0, digits = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            if (++digits > 3)
                return -1;
        }
        if ((i == 0 && v > max_h) || (i > 0 && v > 59))
            return -1;
        parts[i] = v;
    }
    *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
    c->s = s;
    return 0;
}

static int parse_num(cursor *c, int min, int max, int *out)
{
    const char *s = c->s;
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (++digits > 3)
            return -1;
    }
    if (!digits || v < min || v > max)
        return -1;
    *out = v;
    c->s = s;
    return 0;
}

static int parse_rule_day(cursor *c, tz_rule_day *d)
{
    memset(d, 0, sizeof *d);
    if (*c->s == 'J') {
        c->s++;
        d->kind = RULE_JULIAN1;
        if (parse_num(c, 1, 365, &d->a) != 0)
            return -1;
    } else if (*c->s == 'M') {
        c->s++;
        d->kind = RULE_MONTH;
        if (parse_num(c, 1, 12, &d->a) != 0 || *c->s++ != '.' || parse_num(c, 1, 5, &d->b) != 0 ||
            *c->s++ != '.' || parse_num(c, 0, 6, &d->c) != 0)
            return -1;
    } else {
        d->kind = RULE_JULIAN0;
        if (parse_num(c, 0, 365, &d->a) != 0)
            return -1;
    }
    d->time = 7200; /* default 02:00 */
    if (*c->s == '/') {
        c->s++;
        if (parse_hms(c, 167, &d->time) != 0)
            return -1;
    }
    return 0;
}

/* Parses a POSIX TZ string (the footer, without its newlines). 0 on success; an empty string gives no rule
 * (*has 0). */
static int parse_rule(const char *text, tz_rule *r, int *has)
{
    memset(r, 0, sizeof *r);
    *has = 0;
    if (!text[0])
        return 0;
    cursor c = { text };
    int32_t off = 0;
    if (parse_abbr(&c) != 0 || parse_hms(&c, 24, &off) != 0)
        return -1;
    r->std_off = -off; /* POSIX offsets are west-positive */
    r->dst_off = r->std_off;
    *has = 1;
    if (!*c.s)
        return 0;
    if (parse_abbr(&c) != 0)
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*c.s && *c.s != ',') {
        if (parse_hms(&c, 24, &off) != 0)
            return -1;
        r->dst_off = -off;
    }
    if (!*c.s) { /* no rule: the US rule of 2007, as glibc does */
        r->start = (tz_rule_day){ RULE_MONTH, 3, 2, 0, 7200 };
        r->end = (tz_rule_day){ RULE_MONTH, 11, 1, 0, 7200 };
        return 0;
    }
    if (*c.s++ != ',' || parse_rule_day(&c, &r->start) != 0 || *c.s++ != ',' || parse_rule_day(&c, &r->end) != 0)
        return -1;
    return *c.s ? -1 : 0;
}

/* Local seconds (since the epoch, as if UTC) of the start of the rule's day in year y, plus its time. */
static int64_t rule_local(const tz_rule_day *d, int64_t y)
{
    int64_t day;
    if (d->kind == RULE_JULIAN1) { /* 1..365, February 29 never counted */
        day = rd_tz_days_from_civil(y, 1, 1) + d->a - 1;
        if (is_leap(y) && d->a >= 60)
            day++;
    } else if (d->kind == RULE_JULIAN0) {
        day = rd_tz_days_from_civil(y, 1, 1) + d->a;
    } else {
        int64_t first = rd_tz_days_from_civil(y, d->a, 1);
        int wd = rd_tz_weekday(first);
        int64_t dd = (d->c - wd + 7) % 7; /* first such weekday */
        dd += 7 * (d->b - 1);
        int mdays = rd_tz_month_days(y, d->a);
        while (dd >= mdays) /* week 5: the last one */
            dd -= 7;
        day = first + dd;
    }
    return day * 86400 + d->time;
}

static int32_t rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y;
    int m, d;
    rd_tz_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    /* The year of t in standard time; check this year's change and its neighbours' (a rule time may spill
     * over the year's end by up to a week). */
    int32_t result = r->std_off;
    int64_t best = INT64_MIN;
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t start = rule_local(&r->start, yy) - r->std_off; /* the change to DST, in standard time */
        int64_t end = rule_local(&r->end, yy) - r->dst_off;     /* and back, in DST */
        if (start <= t && start > best) {
            best = start;
            result = r->dst_off;
        }
        if (end <= t && end > best) {
            best = end;
            result = r->std_off;
        }
    }
    return result;
}

/* ---- TZif ------------------------------------------------------------------------------------------------- */

static rd_status bad(rd_error *err, const char *name, const char *what)
{
    return rd_error_set(err, RD_E_CONFIG, "time zone %.255s: %s (not a valid TZif file; reinstall tzdata)",
                        name, what);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_header {
    int version; /* 0 (v1), '2', '3', '4' */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_header;

static int read_header(const unsigned char *p, size_t len, tzif_header *h)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return -1;
    h->version = p[4];
    if (h->version != 0 && (h->version < '2' || h->version > '9'))
        return -1;
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return 0;
}

/* Size of the data block after a header; 0 when the counts cannot be (or overflow). */
static size_t block_size(const tzif_header *h, size_t tsize, size_t limit)
{
    if (h->timecnt > limit || h->typecnt > 256 || h->typecnt == 0 || h->charcnt > limit || h->leapcnt > limit ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) || (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        h->charcnt == 0)
        return 0;
    uint64_t n = (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
                 (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
    return n > limit ? 0 : (size_t)n;
}

void rd_tz_free(rd_tz *tz)
{
    if (!tz)
        return;
    free(tz->name);
    free(tz->trans);
    free(tz->idx);
    free(tz->utoff);
    free(tz);
}

static rd_tz *tz_new(const char *name)
{
    rd_tz *tz = calloc(1, sizeof *tz);
    if (tz && !(tz->name = strdup(name))) {
        free(tz);
        return NULL;
    }
    return tz;
}

rd_status rd_tz_parse(const void *data, size_t len, const char *name, rd_tz **out, rd_error *err)
{
    const unsigned char *p = data;
    if (!name)
        name = "(data)";
    if (!p || len > RD_TZ_FILE_MAX_BYTES)
        return bad(err, name, len ? "too large" : "empty");
    tzif_header h;
    if (read_header(p, len, &h) != 0)
        return bad(err, name, "no TZif header");
    size_t tsize = 4, at = 44;
    size_t n1 = block_size(&h, 4, len - at);
    if (!n1)
        return bad(err, name, "counts out of range");
    if (h.version != 0) { /* skip the 32-bit block: the 64-bit one follows */
        at += n1;
        if (read_header(p + at, len - at, &h) != 0 || h.version == 0)
            return bad(err, name, "no second (64-bit) header");
        at += 44;
        tsize = 8;
        if (!block_size(&h, 8, len - at))
            return bad(err, name, "counts out of range or truncated");
    }
    rd_tz *tz = tz_new(name);
    if (!tz)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    tz->ntrans = h.timecnt;
    tz->ntypes = h.typecnt;
    if ((h.timecnt && (!(tz->trans = malloc(h.timecnt * sizeof *tz->trans)) ||
                       !(tz->idx = malloc(h.timecnt)))) ||
        !(tz->utoff = malloc(h.typecnt * sizeof *tz->utoff))) {
        rd_tz_free(tz);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    const unsigned char *q = p + at;
    const char *why = NULL;
    for (size_t i = 0; i < h.timecnt; i++, q += tsize) {
        tz->trans[i] = tsize == 8 ? be64(q) : (int64_t)(int32_t)be32(q);
        if (i && tz->trans[i] <= tz->trans[i - 1])
            why = "transitions out of order";
    }
    for (size_t i = 0; i < h.timecnt; i++, q++) {
        tz->idx[i] = *q;
        if (*q >= h.typecnt)
            why = "a transition names a missing type";
    }
    for (size_t i = 0; i < h.typecnt; i++, q += 6) {
        int32_t off = (int32_t)be32(q);
        if (off < -MAX_ABS_OFFSET || off > MAX_ABS_OFFSET)
            why = "a UTC offset out of range";
        if (q[4] > 1 || q[5] >= h.charcnt)
            why = "a malformed type";
        tz->utoff[i] = off;
    }
    q += h.charcnt + (size_t)h.leapcnt * (tsize + 4) + h.isstdcnt + h.isutcnt;
    at = (size_t)(q - p);
    if (!why && tsize == 8) { /* the footer: \nTZ\n */
        if (at >= len || p[at] != '\n')
            why = "no footer";
        else {
            const unsigned char *nl = memchr(p + at + 1, '\n', len - at - 1);
            size_t flen = nl ? (size_t)(nl - (p + at + 1)) : 0;
            char rule[128];
            if (!nl || flen >= sizeof rule || memchr(p + at + 1, '\0', flen))
                why = "a malformed footer";
            else {
                memcpy(rule, p + at + 1, flen);
                rule[flen] = '\0';
                if (parse_rule(rule, &tz->rule, &tz->has_rule) != 0)
                    why = "a malformed TZ rule in the footer";
            }
        }
    }
    if (why) {
        rd_tz_free(tz);
        return bad(err, name, why);
    }
    *out = tz;
    return RD_OK;
}

int rd_tz_name_valid(const char *name)
{
    if (!name || !name[0] || name[0] == '/' || strlen(name) > RD_TZ_NAME_MAX || strstr(name, ".."))
        return 0;
    for (const char *s = name; *s; s++) {
        char ch = *s;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '/' ||
              ch == '_' || ch == '-' || ch == '+'))
            return 0;
    }
    return 1;
}

rd_status rd_tz_load(const char *name, rd_tz **out, rd_error *err)
{
    if (name && strcmp(name, "UTC") == 0) {
        rd_tz *tz = tz_new("UTC");
        if (!tz || !(tz->utoff = calloc(1, sizeof *tz->utoff))) {
            rd_tz_free(tz);
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
        }
        tz->ntypes = 1;
        *out = tz;
        return RD_OK;
    }
    if (!rd_tz_name_valid(name))
        return rd_error_set(err, RD_E_CONFIG, "`%.64s%s` is not a time zone name (an IANA name such as "
                            "Europe/Berlin: letters, digits, / _ - +)", name ? name : "",
                            name && strlen(name) > 64 ? "..." : "");
    const char *dir = getenv("TZDIR");
    if (!dir || !dir[0])
        dir = RD_TZ_ZONEINFO_DIR;
    size_t plen = strlen(dir) + 1 + strlen(name) + 1;
    char *path = malloc(plen);
    if (!path)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    snprintf(path, plen, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return rd_error_set(err, RD_E_NOT_FOUND, "unknown time zone `%s` (an IANA name such as Europe/Berlin "
                                "or America/New_York; the zones are read from %s)", name, dir);
        return rd_error_set(err, RD_E_IO, "cannot open time zone %s in %s: %s", name, dir, strerror(errno));
    }
    struct stat sb;
    rd_status st = RD_OK;
    unsigned char *buf = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        st = rd_error_set(err, RD_E_NOT_FOUND, "unknown time zone `%s` (not a zone file in %s)", name, dir);
    else if (sb.st_size > (off_t)RD_TZ_FILE_MAX_BYTES)
        st = bad(err, name, "larger than 512 KiB");
    else if (!(buf = malloc(sb.st_size ? (size_t)sb.st_size : 1)))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    size_t got = 0;
    while (st == RD_OK && got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            st = rd_error_set(err, RD_E_IO, "cannot read time zone %s: %s", name, n < 0 ? strerror(errno) : "short");
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (st == RD_OK)
        st = rd_tz_parse(buf, got, name, out, err);
    free(buf);
    return st;
}

const char *rd_tz_name(const rd_tz *tz)
{
    return tz ? tz->name : "UTC";
}

int32_t rd_tz_offset(const rd_tz *tz, int64_t t)
{
    if (!tz)
        return 0;
    if (tz->ntrans == 0 || t < tz->trans[0]) {
        if (tz->ntrans == 0 && tz->has_rule)
            return rule_offset(&tz->rule, t);
        return tz->utoff[0];
    }
    if (t >= tz->trans[tz->ntrans - 1] && tz->has_rule)
        return rule_offset(&tz->rule, t);
    size_t lo = 0, hi = tz->ntrans; /* the last transition <= t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->utoff[tz->idx[lo]];
}
