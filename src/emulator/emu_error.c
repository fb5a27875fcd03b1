/* emu_error.c — AWS error replies as values (emu_error.h). */
#include "emulator/emu_error.h"

#include <stdarg.h>
#include <stdio.h>

int rd_emu_error_set(rd_emu_error *e, int http_status, const char *code, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->http_status = http_status;
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}
