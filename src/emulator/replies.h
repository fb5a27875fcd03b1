/* replies.h — the three AWS error/answer shapes the emulator speaks, built with libxml2 / jansson:
 * S3 REST XML errors, query-protocol (STS, Redshift) XML errors, and JSON 1.1 errors. One place for each. */
#ifndef RD_EMULATOR_REPLIES_H
#define RD_EMULATOR_REPLIES_H

#include "emulator/emulator.h"

/* <Error><Code/><Message/>[<Resource/>]<RequestId/></Error>, Content-Type application/xml. */
void rd_emu_reply_s3_error(rd_emu_response *resp, int status, const char *code, const char *message,
                           const char *resource, const char *request_id);
/* <ErrorResponse xmlns=…><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>. */
void rd_emu_reply_query_error(rd_emu_response *resp, int status, const char *xmlns, const char *code,
                              const char *message, const char *request_id);
/* {"__type": type, "message": message}, Content-Type application/x-amz-json-1.1, x-amzn-RequestId. */
void rd_emu_reply_json_error(rd_emu_response *resp, int status, const char *type, const char *message,
                             const char *request_id);
/* Sets status 200, the JSON body (json_dumps of obj, which is consumed) and the JSON content type. */
struct json_t;
void rd_emu_reply_json(rd_emu_response *resp, struct json_t *obj, const char *request_id);

#endif
