/* fuzz_range.c — libFuzzer target: arbitrary bytes as the snapshot download's Range header (rd_range_parse), the
 * first 8 bytes choosing the file's size. Must never crash or read past the header; a range it takes must lie
 * inside the file (first <= last < size), and an unsatisfiable one must start at or past the end. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t file = 0;
    if (size >= 8) {
        memcpy(&file, data, 8);
        data += 8;
        size -= 8;
        if (file & 1) /* small sizes half of the time, so that ranges meet the end */
            file %= 4096;
    }
    char *h = malloc(size + 1);
    if (!h)
        return 0;
    memcpy(h, data, size);
    h[size] = 0;
    uint64_t first = 0, last = 0;
    rd_range_kind k = rd_range_parse(h, file, &first, &last);
    if (k == RD_RANGE_OK && !(first <= last && last < file))
        abort();
    if (k == RD_RANGE_UNSATISFIABLE && strstr(h, "bytes") == NULL)
        abort();
    free(h);
    return 0;
}
