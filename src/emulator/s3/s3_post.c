/* s3_post.c — PostObject (see s3_post.h). */
#include "emulator/s3/s3_post.h"

#include <string.h>
#include <strings.h>

#include "emulator/replies.h"

int rd_emu_s3_is_post_object(const rd_emu_request *req)
{
    const char *ct = req->headers ? rd_headers_get(req->headers, "Content-Type") : NULL;
    return req->method && strcmp(req->method, "POST") == 0 && ct &&
           strncasecmp(ct, "multipart/form-data", strlen("multipart/form-data")) == 0;
}

void rd_emu_s3_post_object(rd_emu *emu, struct rd_s3_store *store, const char *bucket, const rd_emu_request *req,
                           rd_emu_response *resp)
{
    (void)emu;
    (void)store;
    rd_emu_reply_s3_error(resp, 501, "NotImplemented", "The emulator does not implement PostObject yet", bucket,
                          req->request_id);
}
