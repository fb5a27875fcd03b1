/* emu_error.h — an AWS error the emulator answers with: HTTP status, the service's error code and message.
 * rd_status/rd_error stay for the emulator's own failures (I/O, out of memory); where a part reports a
 * server meaning through rd_error.aws_code (the store's NoSuchBucket, the engine's ValidationException, the
 * aws-chunked decoder's IncompleteBody), the reply path turns it into an rd_emu_error first. Plain value,
 * no allocation. */
#ifndef RD_EMULATOR_EMU_ERROR_H
#define RD_EMULATOR_EMU_ERROR_H

#include "redduck/error.h"

typedef struct rd_emu_error {
    int http_status;  /* 0: the API's default for errors */
    char code[96];    /* "NoSuchBucket", "ValidationException", ... */
    char message[RD_ERROR_MSG_MAX];
} rd_emu_error;

void rd_emu_error_set(rd_emu_error *e, int http_status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* From a part's rd_error: its aws_code and http_status when set, else default_code / default_status; its
 * message. */
void rd_emu_error_from_rd(rd_emu_error *e, const rd_error *err, int default_status, const char *default_code);

/* The S3 reply a store failure stands for, in S3's own words (clients matching on messages see what AWS
 * says): NoSuchBucket 404, NoSuchKey 404, BucketAlreadyOwnedByYou 409, BucketNotEmpty 409, InvalidBucketName,
 * KeyTooLongError, BadDigest, InvalidArgument 400; anything else (I/O, memory) 500 InternalError. */
void rd_emu_error_from_store(rd_emu_error *e, const rd_error *err);

#endif
