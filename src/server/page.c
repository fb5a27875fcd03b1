/* page.c — the status page: server-rendered HTML outside /v1/. */
#include <stdlib.h>

#include "server/api_internal.h"

struct rd_page {
    rd_api *api;
};

rd_status rd_page_new(rd_api *a, struct rd_page **out, rd_error *err)
{
    struct rd_page *p = calloc(1, sizeof *p);
    if (!p)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    p->api = a;
    *out = p;
    return RD_OK;
}

void rd_page_free(struct rd_page *p)
{
    free(p);
}

rd_httpd_next rd_page_on_headers(rd_api_call *c, rd_httpd_request *req, rd_httpd_response *resp)
{
    (void)req;
    rd_api_reply_error(c, resp, 404, "NotFound", "no such page");
    return RD_HTTPD_ANSWER;
}

void rd_page_on_complete(rd_api_call *c, const rd_buf *body, rd_httpd_response *resp)
{
    (void)body;
    rd_api_reply_error(c, resp, 404, "NotFound", "no such page");
}

void rd_page_on_done(rd_api_call *c)
{
    (void)c;
}
