/* fuzz_dotenv.c — libFuzzer target: arbitrary bytes into the project `.env` parser. Must never crash, leak
 * or read out of bounds; errors are fine, and a parsed file's keys must all be findable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "redduck/dotenv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd_dotenv env;
    rd_error err;
    if (rd_dotenv_parse((const char *)data, size, "fuzz", &env, &err) == RD_OK) {
        for (size_t i = 0; i < env.count; i++)
            if (!rd_dotenv_get(&env, env.items[i].key))
                abort();
        rd_dotenv_free(&env);
    }
    return 0;
}
