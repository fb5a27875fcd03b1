/* api_runs.c — the refresh calls of the /v1 API (docs/SERVER_API.md): trigger, status, runs, logs. */
#include "server/api_internal.h"

const rd_api_ext_route rd_api_runs_routes[] = {
    { .method = NULL },
};
