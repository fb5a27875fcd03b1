/* fuzz_like_pattern.c — libFuzzer target: arbitrary bytes as a catalog call's SchemaPattern / TablePattern and
 * a name (split at the first NUL), through the LIKE matcher; and two properties that must hold for every
 * name: '%' matches it, and the name with its '%', '_' and '\' escaped matches itself and only itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/redshift/data_catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (16u << 10))
        return 0;
    char *buf = malloc(size + 2);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    const char *pattern = buf;
    const char *name = buf + strlen(buf) + 1;
    if (name > buf + size)
        name = buf + size;
    (void)rd_emu_like_match(pattern, name);
    if (!rd_emu_like_match("%", name))
        abort();
    size_t n = strlen(name);
    char *lit = malloc(2 * n + 1);
    if (lit) {
        char *o = lit;
        for (const char *p = name; *p; p++) {
            if (*p == '%' || *p == '_' || *p == '\\')
                *o++ = '\\';
            *o++ = *p;
        }
        *o = '\0';
        if (!rd_emu_like_match(lit, name))
            abort();
        if (n > 0 && rd_emu_like_match(lit, pattern) != (strcmp(pattern, name) == 0))
            abort();
        free(lit);
    }
    free(buf);
    return 0;
}
