/* emu_error.h — an AWS error the emulator answers with: HTTP status, the service's error code and message.
 * Every part that produces a meaning a client sees (the S3 store and its aws-chunked decoder, the engine,
 * UNLOAD, the identities) fills one where the meaning is known, in the service's own words; internal failures
 * (I/O, out of memory) are the service's 500 (S3 InternalError, Data API InternalServerException) with what
 * failed as the message. rd_status/rd_error stay where the emulator meets the layers below it and its own
 * caller (rd_emulator_start). Plain value, no allocation. */
#ifndef RD_EMULATOR_EMU_ERROR_H
#define RD_EMULATOR_EMU_ERROR_H

#include "redduck/error.h"

typedef struct rd_emu_error {
    int http_status;  /* 0: the API's default for errors */
    char code[96];    /* "NoSuchBucket", "ValidationException", ... */
    char message[RD_ERROR_MSG_MAX];
} rd_emu_error;

/* Fills e (NULL: nothing) and returns -1, so a failing function can `return rd_emu_error_set(err, ...)`. */
int rd_emu_error_set(rd_emu_error *e, int http_status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
