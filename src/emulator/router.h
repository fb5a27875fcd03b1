/* router.h — how the emulator reads a request: which API it is for (sniff), who sends it (authenticate),
 * which seeded faults it draws, and which handler answers it (route). server.c feeds it from the HTTP
 * server; the helpers below are shared with server.c's header-time checks. Thread safe (the emulator's
 * parts are). */
#ifndef RD_EMULATOR_ROUTER_H
#define RD_EMULATOR_ROUTER_H

#include <stdint.h>

#include "emulator/emulator_internal.h"
#include "emulator/iam/auth.h"

typedef enum rd_emu_api {
    RD_EMU_API_S3,
    RD_EMU_API_QUERY,
    RD_EMU_API_JSON_DATA,
    RD_EMU_API_JSON_SERVERLESS,
    RD_EMU_API_JSON_OTHER,
    RD_EMU_API_SSO
} rd_emu_api;

/* The API a request is for, from its headers alone. A form POST (not to S3) is RD_EMU_API_QUERY here: whether
 * it names an Action is known once its (bounded) body is read. So is an unsigned multipart/form-data POST:
 * S3's form upload (PostObject), whose signature is in its fields, so it gets in without one in its headers;
 * rd_emu_route_request then hands it to S3 unauthenticated, and s3_post.c verifies the form's policy. */
rd_emu_api rd_emu_sniff_headers(const char *method, const char *path, const rd_headers *h,
                                const rd_emu_auth_info *scope, int have_scope);
/* 1 if the request is a form upload without a header signature (POST, multipart/form-data, no
 * Authorization): what rd_emu_sniff_headers lets in as above. */
int rd_emu_is_form_upload(const char *method, const rd_headers *h);

/* Answers a whole buffered request (raw_uri as sent: path and query, still percent-encoded). */
void rd_emu_route_request(rd_emu *emu, const char *method, const char *raw_uri, const rd_headers *headers,
                          const char *body, size_t body_len, const char *request_id, rd_emu_response *resp);

/* The AWS error a failed authentication gets, worded for the API. */
void rd_emu_reply_auth_error(rd_emu_api api, rd_emu_auth_result res, const char *resource, const char *request_id,
                             rd_emu_response *resp);
/* The refusal of a body above `limit` bytes, worded for the API. */
void rd_emu_reply_too_large(rd_emu_api api, uint64_t limit, const char *resource, const char *request_id,
                            rd_emu_response *resp);
/* S3's 503 SlowDown. */
void rd_emu_reply_slow_down(rd_emu_response *resp, const char *resource, const char *request_id);
/* The seeded latency fault (sleeps). */
void rd_emu_apply_latency(rd_emu *emu);
/* One INFO line per answered request. */
void rd_emu_log_request(rd_emu *emu, const char *method, const char *raw_uri, const rd_headers *h,
                        const rd_emu_response *resp);
/* A request id unique to this emulator run. */
void rd_emu_make_request_id(rd_emu *emu, char out[40]);
/* The identity fields of req from a verified signature. */
void rd_emu_request_set_caller(rd_emu *emu, rd_emu_request *req, const rd_emu_auth_info *info);

#endif
