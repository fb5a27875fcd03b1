/* emu_error.c — AWS error replies as values (emu_error.h). */
#include "emulator/emu_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rd_emu_error_set(rd_emu_error *e, int http_status, const char *code, const char *fmt, ...)
{
    e->http_status = http_status;
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void rd_emu_error_from_rd(rd_emu_error *e, const rd_error *err, int default_status, const char *default_code)
{
    rd_emu_error_set(e, err->http_status ? err->http_status : default_status,
                     err->aws_code[0] ? err->aws_code : default_code, "%s", err->message);
}

void rd_emu_error_from_store(rd_emu_error *e, const rd_error *err)
{
    static const struct {
        const char *code;
        int status;
        const char *message;
    } map[] = {
        { "NoSuchBucket", 404, "The specified bucket does not exist" },
        { "NoSuchKey", 404, "The specified key does not exist." },
        { "BucketAlreadyOwnedByYou", 409,
          "Your previous request to create the named bucket succeeded and you already own it." },
        { "BucketNotEmpty", 409, "The bucket you tried to delete is not empty" },
        { "InvalidBucketName", 400, "The specified bucket is not valid." },
        { "KeyTooLongError", 400, "Your key is too long" },
        { "BadDigest", 400, "The Content-MD5 you specified did not match what we received." },
        { "InvalidArgument", 400, NULL },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(err->aws_code, map[i].code) == 0) {
            rd_emu_error_set(e, map[i].status, map[i].code, "%s", map[i].message ? map[i].message : err->message);
            return;
        }
    rd_emu_error_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
}
