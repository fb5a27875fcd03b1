/* log.h — leveled logging to a stream the caller owns (main creates the logger; nothing global).
 * A NULL logger is silent. Callers must redact secrets before logging (see rd_header_is_secret). */
#ifndef RD_CORE_LOG_H
#define RD_CORE_LOG_H

#include <stdio.h>

typedef enum rd_log_level { RD_LOG_ERROR = 0, RD_LOG_WARN = 1, RD_LOG_INFO = 2, RD_LOG_DEBUG = 3 } rd_log_level;

typedef struct rd_log {
    rd_log_level level; /* messages above this level are dropped */
    FILE *out;          /* usually stderr; not owned */
} rd_log;

/* Thread-safe (one fprintf per line). */
void rd_log_write(const rd_log *log, rd_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int rd_log_enabled(const rd_log *log, rd_log_level level);

#endif
