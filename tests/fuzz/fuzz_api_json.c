/* fuzz_api_json.c — libFuzzer target: arbitrary bytes as a request body of the server's API, parsed with each
 * call's schema (rd_api_parse_json_body): it accepts or refuses, never crashes, leaks or reads past len, and a
 * refusal always says why. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const rd_api_field patch[] = {
        { "set", RD_API_STRING_MAP, 0 }, { "unset", RD_API_STRING_LIST, 0 }, { NULL, RD_API_STRING, 0 }
    };
    static const rd_api_field put[] = { { "value", RD_API_STRING, 1 }, { NULL, RD_API_STRING, 0 } };
    static const rd_api_field create[] = { { "name", RD_API_STRING, 1 }, { NULL, RD_API_STRING, 0 } };
    const rd_api_field *schemas[] = { patch, put, create };
    /* a copy of exactly size bytes, so reading past the end is caught */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    for (size_t i = 0; i < 3; i++) {
        json_t *o = NULL;
        char msg[256];
        msg[0] = 0;
        if (rd_api_parse_json_body(copy, size, schemas[i], &o, msg, sizeof msg) == 0) {
            if (!json_is_object(o))
                abort();
            json_decref(o);
        } else if (!msg[0] || o) {
            abort();
        }
    }
    free(copy);
    return 0;
}
