/* options.c — the values of ingest's named options (see ingest.h), parsed once for the CLI and projects.
 * Owns the accepted words and the rule's text; not the ranges' callers' messages. */
#include <string.h>

#include "redduck/ingest.h"

rd_status rd_ingest_parse_via(const char *s, rd_ingest_via *out, rd_error *err)
{
    static const struct {
        const char *name;
        rd_ingest_via via;
    } vias[] = { { "auto", RD_VIA_AUTO }, { "unload", RD_VIA_UNLOAD }, { "data-api", RD_VIA_DATA_API } };
    for (size_t i = 0; s && i < sizeof vias / sizeof vias[0]; i++)
        if (strcmp(s, vias[i].name) == 0) {
            *out = vias[i].via;
            return RD_OK;
        }
    return rd_error_set(err, RD_E_USAGE, "must be auto, unload or data-api");
}

rd_status rd_ingest_parse_compression(const char *s, int *fast, rd_error *err)
{
    if (s && (strcmp(s, "auto") == 0 || strcmp(s, "fast") == 0)) {
        *fast = strcmp(s, "fast") == 0;
        return RD_OK;
    }
    return rd_error_set(err, RD_E_USAGE, "must be auto or fast");
}
