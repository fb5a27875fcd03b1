/* fuzz_manifest_plan.c — libFuzzer target: arbitrary bytes as the Data API's ColumnMetadata (JSON) into the
 * Redshift → DuckDB type plan and the SQL it generates. Must never crash, leak or read out of bounds. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *md = json_loadb((const char *)data, size, 0, &je);
    if (!md)
        return 0;
    rd_plan p;
    rd_error err;
    if (rd_plan_from_metadata(md, &p, &err) == RD_OK) {
        rd_buf b = RD_BUF_INIT;
        rd_plan_unload_select(&p, &b);
        rd_plan_decode_select(&p, &b);
        rd_plan_create_columns(&p, &b);
        rd_buf_free(&b);
        rd_plan_free(&p);
    }
    json_decref(md);
    return 0;
}
