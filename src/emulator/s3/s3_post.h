/* s3_post.h — S3's browser-based upload (PostObject: an HTML form POSTed to a bucket, authorised by a signed
 * policy document in the form's fields). Owns the multipart/form-data reading and the policy's verification.
 * Does not own the object store (s3_store.c) nor the REST API's other operations (s3_api.c).
 * Thread-safe: no state of its own. */
#ifndef RD_EMULATOR_S3_POST_H
#define RD_EMULATOR_S3_POST_H

#include "emulator/emulator.h"

struct rd_s3_store;

/* 1 if req is a form upload to a bucket (POST, Content-Type multipart/form-data). */
int rd_emu_s3_is_post_object(const rd_emu_request *req);

/* Answers a PostObject to bucket (decoded) into resp: S3's reply (204 by default, or as the form's
 * success_action_status / success_action_redirect ask), or S3's error. */
void rd_emu_s3_post_object(rd_emu *emu, struct rd_s3_store *store, const char *bucket, const rd_emu_request *req,
                           rd_emu_response *resp);

#endif
