/* log.c — leveled logging (see log.h). */
#include "core/log.h"

#include <stdarg.h>

#include "redduck/buf.h"

int rd_log_enabled(const rd_log *log, rd_log_level level)
{
    return log && log->out && level <= log->level;
}

void rd_log_write(const rd_log *log, rd_log_level level, const char *fmt, ...)
{
    if (!rd_log_enabled(log, level))
        return;
    static const char *const names[] = { "error", "warn", "info", "debug" };
    rd_buf line = RD_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    rd_buf_printf(&line, "redduck: %s: ", names[level]);
    rd_buf_vprintf(&line, fmt, ap);
    va_end(ap);
    rd_buf_putc(&line, '\n');
    fputs(rd_buf_cstr(&line), log->out);
    fflush(log->out);
    rd_buf_free(&line);
}
