/* redduck/error.h — the one error model of redduck.
 * Owns: rd_status (the small enum every fallible function returns) and rd_error (the message a caller
 * passes down so the CLI can print what failed and what to do next). Does not own logging. */
#ifndef REDDUCK_ERROR_H
#define REDDUCK_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rd_status {
    RD_OK = 0,
    RD_E_USAGE = -1,     /* bad flags or arguments */
    RD_E_CONFIG = -2,    /* malformed or inconsistent configuration (files, profiles, .env, YAML) */
    RD_E_AUTH = -3,      /* no credentials could be found / resolved */
    RD_E_DENIED = -4,    /* AWS (or the emulator) refused: signature, expired token, access denied */
    RD_E_NOT_FOUND = -5, /* a named thing does not exist (profile, bucket, key, statement) */
    RD_E_NETWORK = -6,   /* connect / reset / timeout / DNS */
    RD_E_REMOTE = -7,    /* the service answered with another error */
    RD_E_IO = -8,        /* local file or process I/O */
    RD_E_CANCELLED = -9, /* interrupted by the user */
    RD_E_INTERNAL = -10  /* out of memory or a bug */
} rd_status;

#define RD_ERROR_MSG_MAX 1024

/* What failed. Callers own it (usually on the stack); functions write it only when they fail.
 * `aws_code` holds the service's error code ("AccessDenied", "ExpiredToken", ...) when there is one;
 * `http_status` the HTTP status (0 when no response was received). */
typedef struct rd_error {
    rd_status code;
    int http_status;
    char aws_code[96];
    char message[RD_ERROR_MSG_MAX];
} rd_error;

/* Resets to RD_OK with empty strings. NULL is a no-op. */
void rd_error_clear(rd_error *err);

/* Sets code and printf-style message (truncated to fit); returns `code` so callers can
 * `return rd_error_set(err, RD_E_CONFIG, "...")`. err may be NULL. */
rd_status rd_error_set(rd_error *err, rd_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends context ("profile 'dev': ") to the existing message; keeps code. Returns err->code
 * (RD_E_INTERNAL if err is NULL). */
rd_status rd_error_prefix(rd_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies the AWS error code into err->aws_code (truncated). */
void rd_error_set_aws_code(rd_error *err, const char *aws_code);

/* Static name of a status: "ok", "usage", "config", "auth", "denied", "not found", ... */
const char *rd_status_str(rd_status st);

#ifdef __cplusplus
}
#endif
#endif
