/* fuzz_tzif.c — libFuzzer target over the TZif reader (core/tz.h): arbitrary bytes into rd_tz_parse, then
 * offsets at instants spread over +-10^12 seconds (transitions, footer rules). Must never crash, leak or read
 * out of bounds; a parsed zone's offsets stay within the range a file may hold. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd_tz *tz = NULL;
    rd_error err;
    if (rd_tz_parse(data, size, "fuzz", &tz, &err) != RD_OK)
        return 0;
    static const int64_t at[] = { INT64_MIN / 4, -1000000000000LL, -2147483648LL, -1, 0, 1, 1000000000,
                                  1774746000, 2147483647LL, 3786825600LL, 1000000000000LL, INT64_MAX / 4 };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        int32_t off = rd_tz_offset(tz, at[i]);
        if (off < -200 * 3600 || off > 200 * 3600)
            abort();
    }
    rd_tz_free(tz);
    return 0;
}
