/* redduck/schedule.h — when a source refreshes: the `refresh:` of redduck.yaml (the project's default) and of a
 * source file (overriding it), in Rill's words:
 *
 *   refresh:
 *     cron: "0 6 * * *"      # 5 fields: minute hour day-of-month month day-of-week (0 or 7 Sunday), with
 *     tz: Europe/Berlin      #   *, lists, ranges, steps and names (jan, mon); in tz (IANA; default UTC)
 *     every: 1h              # or a period: 30s, 10m, 1h, 1d (at most one of cron and every)
 *     disabled: true         # no scheduled runs (manual ones still run)
 *     retry: {attempts: 3, backoff: 5m}   # attempts in all (1..10, default 1); wait between them
 *
 * A cron time that does not exist in tz (the hour skipped when clocks go forward) runs once at the first
 * instant after the gap; one that occurs twice (clocks going back) runs once, at its first occurrence. `every`
 * slots are the multiples of the period since the Unix epoch (UTC), whatever tz says.
 *
 * Ownership: a schedule owns its strings and its compiled form; rd_schedule_free releases them. Thread-safe:
 * the functions only read a schedule (the time zone is read from the system's zoneinfo once, when parsed). */
#ifndef REDDUCK_SCHEDULE_H
#define REDDUCK_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/error.h"

#define RD_SCHEDULE_RETRY_MAX 10

typedef enum rd_schedule_kind { RD_SCHEDULE_NONE = 0, RD_SCHEDULE_CRON, RD_SCHEDULE_EVERY } rd_schedule_kind;

struct rd_schedule_compiled;

typedef struct rd_schedule {
    rd_schedule_kind kind;     /* NONE: no schedule given (only manual runs) */
    char *cron;                /* CRON: the expression as written */
    char *tz;                  /* CRON: the IANA zone; NULL: UTC */
    int64_t every_s;           /* EVERY: the period, > 0 */
    int disabled;              /* no scheduled runs */
    int retry_attempts;        /* >= 1 */
    int64_t retry_backoff_s;   /* >= 0 */
    struct rd_schedule_compiled *compiled; /* owned: the parsed cron fields and the zone's transitions */
} rd_schedule;

/* Parses a 5-field cron expression in zone tz (NULL or "UTC": UTC) into out (kind CRON, retry 1/0).
 * RD_E_CONFIG naming the field that is wrong ("minute", "hour", ...) or the zone that is unknown. */
rd_status rd_schedule_parse_cron(const char *expr, const char *tz, rd_schedule *out, rd_error *err);
/* Parses a period ("30s", "10m", "1h", "2d", "1h30m") into seconds (> 0). RD_E_CONFIG otherwise. */
rd_status rd_schedule_parse_period(const char *text, int64_t *seconds, rd_error *err);

/* The first slot strictly after after_ms (Unix milliseconds), in Unix milliseconds. RD_E_NOT_FOUND when the
 * schedule has none (NONE, disabled, or a cron that never matches such as "0 0 31 2 *"). */
rd_status rd_schedule_next(const rd_schedule *s, int64_t after_ms, int64_t *next_ms, rd_error *err);
/* The last slot at or before at_ms. RD_E_NOT_FOUND when there is none (as rd_schedule_next, or none within
 * the last 4 years). */
rd_status rd_schedule_prev(const rd_schedule *s, int64_t at_ms, int64_t *prev_ms, rd_error *err);

/* "cron 0 6 * * * Europe/Berlin", "every 1h", "disabled", "none" (at most n - 1 bytes). */
void rd_schedule_describe(const rd_schedule *s, char *out, size_t n);
/* A period as rd_schedule_parse_period reads it: "1h30m" for 5400, "0s" for 0 (at most n - 1 bytes). */
void rd_schedule_format_period(int64_t seconds, char *out, size_t n);

/* A deep copy (the compiled form shared or copied). */
rd_status rd_schedule_copy(const rd_schedule *src, rd_schedule *dst, rd_error *err);
/* Frees what s owns and zeroes it. NULL is a no-op. */
void rd_schedule_free(rd_schedule *s);

#endif
