/* fuzz_process_json.c — libFuzzer target: arbitrary bytes as credential_process output (JSON). */
#include <stddef.h>
#include <stdint.h>

#include "auth/creds_chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd_credentials c;
    rd_credentials_init(&c);
    rd_error err;
    rd_creds_parse_process_output((const char *)data, size, &c, &err);
    rd_credentials_free(&c);
    return 0;
}
