/* tz.h — IANA time zones read from TZif files (RFC 8536) without touching the process's TZ: the transitions
 * of the 64-bit section (v2+; the 32-bit one of a v1 file) and the POSIX TZ footer ("CET-1CEST,M3.5.0,
 * M10.5.0/3") for instants after the last transition; and the proleptic Gregorian calendar arithmetic the
 * schedules use. Does not own cron or any local-time search (project/schedule.c).
 *
 * Ownership: rd_tz_load / rd_tz_parse return an rd_tz the caller frees with rd_tz_free (NULL is a no-op).
 * Thread safety: an rd_tz is immutable once made; any thread may read it (rd_tz_offset) at the same time. */
#ifndef RD_CORE_TZ_H
#define RD_CORE_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/error.h"

#define RD_TZ_NAME_MAX 255
#define RD_TZ_FILE_MAX_BYTES (512u * 1024u)
#define RD_TZ_ZONEINFO_DIR "/usr/share/zoneinfo" /* the env TZDIR, when set, replaces it (as in glibc) */

typedef struct rd_tz rd_tz;

/* 1 when name is an acceptable zone name: 1..RD_TZ_NAME_MAX chars of letters, digits, '/', '_', '-', '+',
 * not starting with '/', no "..". */
int rd_tz_name_valid(const char *name);

/* Loads zone name ("Europe/Berlin") from TZDIR or RD_TZ_ZONEINFO_DIR. "UTC" needs no file. RD_E_CONFIG for
 * a name rd_tz_name_valid refuses or a file that is not TZif (or larger than RD_TZ_FILE_MAX_BYTES);
 * RD_E_NOT_FOUND when there is no such zone. */
rd_status rd_tz_load(const char *name, rd_tz **out, rd_error *err);
/* Parses TZif data (len bytes, copied as needed) into a zone called name (NULL: "(data)"). RD_E_CONFIG for
 * anything malformed or truncated. */
rd_status rd_tz_parse(const void *data, size_t len, const char *name, rd_tz **out, rd_error *err);
void rd_tz_free(rd_tz *tz);

/* The zone's name as loaded ("UTC" for NULL). */
const char *rd_tz_name(const rd_tz *tz);
/* The UTC offset in seconds (local = UTC + offset) at the instant utc_s (Unix seconds). NULL: UTC (0). */
int32_t rd_tz_offset(const rd_tz *tz, int64_t utc_s);

/* Days since 1970-01-01 of y-m-d (proleptic Gregorian; m 1..12, d 1..31), and back. Exact for any year
 * a int64_t of days can hold without overflow in the caller's use (|y| < 2^40). */
int64_t rd_tz_days_from_civil(int64_t y, int m, int d);
void rd_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Day of the week of a day count: 0 Sunday .. 6 Saturday. */
int rd_tz_weekday(int64_t days);
/* Days in month m of year y. */
int rd_tz_month_days(int64_t y, int m);

#endif
