/* fuzz_post_policy.c — libFuzzer target: S3 PostObject's readers on arbitrary bytes. Byte 0 picks the mode:
 * even — the input is a multipart/form-data body (boundary "BnD"), parsed; odd — up to the first newline is
 * the Content-Type, the rest the body. A form that parses is then checked against a policy: a fixed one
 * naming the usual fields, and the form's own "policy" field read as JSON. Whatever the input, the readers
 * must end cleanly, the file must lie inside the body, and an error must carry an S3 status and code. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/s3/s3_post.h"

static const char fixed_policy[] =
    "{\"expiration\": \"2030-01-01T00:00:00Z\", \"conditions\": [{\"bucket\": \"bkt\"}, [\"starts-with\", "
    "\"$key\", \"u/\"], [\"starts-with\", \"$Content-Type\", \"image/\"], [\"content-length-range\", 1, 64], "
    "{\"x-amz-meta-a\": \"b\"}]}";

static void check_error(int rc, const rd_emu_error *e)
{
    if (rc != 0 && (e->http_status < 400 || e->http_status > 599 || !e->code[0]))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int custom_type = data[0] & 1;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *ct = NULL;
    if (custom_type) {
        const char *nl = memchr(body, '\n', len);
        if (!nl)
            return 0;
        ct = strndup(body, (size_t)(nl - body));
        len -= (size_t)(nl - body) + 1;
        body = nl + 1;
    }
    rd_emu_s3_post_form f;
    rd_emu_error e;
    memset(&e, 0, sizeof e);
    int rc = rd_emu_s3_post_form_parse(ct ? ct : "multipart/form-data; boundary=BnD", body, len, &f, &e);
    check_error(rc, &e);
    if (rc == 0) {
        if (!f.has_file || f.file_data < body || f.file_data + f.file_len > body + len)
            abort();
        char *key = rd_emu_s3_post_key(&f);
        memset(&e, 0, sizeof e);
        rc = rd_emu_s3_post_policy_check(fixed_policy, sizeof fixed_policy - 1, &f, "bkt", key ? key : "",
                                         1700000000, &e);
        check_error(rc, &e);
        const char *own = rd_emu_s3_post_form_get(&f, "policy");
        if (own) {
            memset(&e, 0, sizeof e);
            rc = rd_emu_s3_post_policy_check(own, strlen(own), &f, "bkt", key ? key : "", 1700000000, &e);
            check_error(rc, &e);
        }
        free(key);
        rd_emu_s3_post_form_free(&f);
    }
    free(ct);
    return 0;
}
