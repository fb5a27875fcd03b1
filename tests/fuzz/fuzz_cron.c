/* fuzz_cron.c — libFuzzer target over the schedule parsers (schedule.h): byte 0 picks a zone (UTC, Berlin,
 * New York, Lord Howe, Kathmandu), bytes 1..8 an instant (within +-300 years of the epoch), the rest is a
 * cron expression (and, as well, a period for rd_schedule_parse_period). Must never crash, leak, read out of
 * bounds or hang; a parsed cron's slots must agree: next(t) > t, prev(t) <= t, and each found slot is its
 * own prev. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redduck/schedule.h"

static const char *const zones[] = { NULL, "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                                     "Asia/Kathmandu" };

#define SPAN_MS (300LL * 366 * 86400 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9 || size > 400)
        return 0;
    const char *tz = zones[data[0] % (sizeof zones / sizeof zones[0])];
    uint64_t raw = 0;
    for (int i = 1; i <= 8; i++)
        raw = raw << 8 | data[i];
    int64_t t = (int64_t)(raw % (uint64_t)(2 * SPAN_MS)) - SPAN_MS;
    char *text = malloc(size - 9 + 1);
    if (!text)
        return 0;
    memcpy(text, data + 9, size - 9);
    text[size - 9] = '\0';
    rd_error err;
    int64_t secs = 0;
    if (rd_schedule_parse_period(text, &secs, &err) == RD_OK && (secs < 1 || secs > 366LL * 86400))
        abort();
    rd_schedule s;
    if (rd_schedule_parse_cron(text, tz, &s, &err) == RD_OK) {
        char d[600];
        rd_schedule_describe(&s, d, sizeof d);
        int64_t next = 0, prev = 0, again = 0;
        if (rd_schedule_next(&s, t, &next, &err) == RD_OK) {
            if (next <= t || next % 1000 != 0)
                abort();
            if (rd_schedule_prev(&s, next, &again, &err) != RD_OK || again != next)
                abort();
        }
        if (rd_schedule_prev(&s, t, &prev, &err) == RD_OK) {
            if (prev > t)
                abort();
            if (rd_schedule_next(&s, prev - 1, &again, &err) != RD_OK || again != prev)
                abort();
        }
        rd_schedule copy;
        if (rd_schedule_copy(&s, &copy, &err) == RD_OK)
            rd_schedule_free(&copy);
        rd_schedule_free(&s);
    }
    free(text);
    return 0;
}
