/* fuzz_ini.c — libFuzzer target: arbitrary bytes into the AWS config-file INI parser and the nested-value
 * reader. Must never crash, leak or read out of bounds; errors are fine. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aws/ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd_ini *ini = NULL;
    rd_error err;
    if (rd_ini_parse((const char *)data, size, "fuzz", &ini, &err) == RD_OK) {
        for (size_t i = 0; i < ini->count; i++)
            for (size_t j = 0; j < ini->sections[i].count; j++) {
                char *v = rd_ini_nested_get(&ini->sections[i].entries[j], "endpoint_url");
                free(v);
            }
        rd_ini_free(ini);
    }
    return 0;
}
