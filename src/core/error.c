/* error.c — rd_error helpers (see include/redduck/error.h). */
#include "redduck/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rd_error_clear(rd_error *err)
{
    if (!err)
        return;
    err->code = RD_OK;
    err->http_status = 0;
    err->aws_code[0] = '\0';
    err->message[0] = '\0';
}

rd_status rd_error_set(rd_error *err, rd_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

rd_status rd_error_prefix(rd_error *err, const char *fmt, ...)
{
    if (!err)
        return RD_E_INTERNAL;
    char prefix[RD_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), mlen = strlen(err->message);
    if (plen >= sizeof err->message)
        plen = sizeof err->message - 1;
    if (plen + mlen >= sizeof err->message)
        mlen = sizeof err->message - 1 - plen;
    memmove(err->message + plen, err->message, mlen);
    memcpy(err->message, prefix, plen);
    err->message[plen + mlen] = '\0';
    return err->code;
}

void rd_error_set_aws_code(rd_error *err, const char *aws_code)
{
    if (!err)
        return;
    snprintf(err->aws_code, sizeof err->aws_code, "%s", aws_code ? aws_code : "");
}

const char *rd_status_str(rd_status st)
{
    switch (st) {
    case RD_OK: return "ok";
    case RD_E_USAGE: return "usage";
    case RD_E_CONFIG: return "config";
    case RD_E_AUTH: return "no credentials";
    case RD_E_DENIED: return "denied";
    case RD_E_NOT_FOUND: return "not found";
    case RD_E_NETWORK: return "network";
    case RD_E_REMOTE: return "remote";
    case RD_E_IO: return "io";
    case RD_E_CANCELLED: return "cancelled";
    case RD_E_INTERNAL: return "internal";
    }
    return "unknown";
}
