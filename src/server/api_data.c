/* api_data.c — the data calls of the /v1 API (docs/SERVER_API.md): the snapshot download and the query API. */
#include "server/api_internal.h"

const rd_api_ext_route rd_api_data_routes[] = {
    { .method = NULL },
};
