/* timeutil.h — ISO 8601 / RFC 3339 timestamps as AWS writes them ("2026-11-24T21:00:00Z",
 * "2026-11-24T21:00:00.123Z", "2026-11-24T21:00:00+00:00", "2026-11-24T21:00:00UTC"), to and from time_t;
 * the monotonic clock every elapsed-time measurement uses, and a sleep. */
#ifndef RD_CORE_TIMEUTIL_H
#define RD_CORE_TIMEUTIL_H

#include <time.h>

/* Returns 0 and sets *out (UTC seconds) on success, -1 if s is not such a timestamp. */
int rd_time_parse_iso8601(const char *s, time_t *out);
/* "YYYY-MM-DDTHH:MM:SSZ" into out[21]. */
void rd_time_format_iso8601(time_t t, char out[21]);

/* The monotonic clock (CLOCK_MONOTONIC), for durations and deadlines: milliseconds, and seconds. */
long long rd_monotonic_ms(void);
double rd_monotonic_seconds(void);

/* Sleeps ms milliseconds, resuming after a signal. */
void rd_sleep_ms(long ms);

#endif
