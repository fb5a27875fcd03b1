/* engine_test_util.h — shared helpers of the engine / Data API / UNLOAD tests: a temp data dir, an engine
 * with a real S3 store, and a Data API call that returns the parsed JSON reply. */
#ifndef RD_TEST_ENGINE_UTIL_H
#define RD_TEST_ENGINE_UTIL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emulator/emulator.h"
#include "emulator/redshift/engine.h"
#include "emulator/redshift/engine_internal.h"
#include "emulator/s3/s3_store.h"

typedef struct test_env {
    char dir[256];
    rd_s3_store *store;
    rd_emu_engine *eng;
} test_env;

static void rm_rf(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static test_env *env_new(int slices)
{
    test_env *e = calloc(1, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "%s/rd-engine-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(e->dir))
        abort();
    rd_error err;
    rd_error_clear(&err);
    char s3dir[300];
    snprintf(s3dir, sizeof s3dir, "%s/s3", e->dir);
    if (rd_s3_store_open(s3dir, &e->store, &err) != RD_OK) {
        fprintf(stderr, "store: %s\n", err.message);
        abort();
    }
    if (rd_s3_store_create_bucket(e->store, "unload-bucket", "us-east-1", NULL) != 0)
        abort();
    if (rd_emu_engine_open(e->dir, slices, e->store, NULL, NULL, &e->eng, &err) != RD_OK) {
        fprintf(stderr, "engine: %s\n", err.message);
        abort();
    }
    return e;
}

static void env_free(test_env *e)
{
    rd_emu_engine_close(e->eng);
    rd_s3_store_close(e->store);
    rm_rf(e->dir);
    free(e);
}

/* Calls the Data API; returns the parsed reply (caller decrefs) and the status in *status. */
static json_t *call_as(test_env *e, const char *principal, const char *op, json_t *body, int *status)
{
    char *text = json_dumps(body, 0);
    json_decref(body);
    rd_emu_request req;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.path = "/";
    req.query = "";
    req.body = text;
    req.body_len = strlen(text);
    req.account_id = "000000000000";
    req.principal_arn = principal;
    req.region = "us-east-1";
    req.request_id = "test-request";
    rd_emu_response resp;
    rd_emu_response_init(&resp);
    rd_emu_data_api_handle(NULL, e->eng, op, &req, &resp);
    free(text);
    json_error_t jerr;
    json_t *out = json_loadb(resp.body.data ? resp.body.data : "{}", resp.body.len, 0, &jerr);
    if (status)
        *status = resp.status;
    rd_emu_response_free(&resp);
    return out;
}

static json_t *call(test_env *e, const char *op, json_t *body, int *status)
{
    return call_as(e, "arn:aws:iam::000000000000:user/test", op, body, status);
}

/* Runs sql on the demo workgroup; waits; returns the statement id (static buffer per call site). */
static const char *run_sql_wait(test_env *e, const char *sql, char id[48])
{
    int status;
    json_t *r = call(e, "ExecuteStatement", json_pack("{s:s, s:s, s:s}", "Sql", sql, "WorkgroupName", "demo",
                                                      "Database", "dev"), &status);
    if (status != 200) {
        fprintf(stderr, "ExecuteStatement(%s): %s\n", sql, json_dumps(r, 0));
        abort();
    }
    snprintf(id, 48, "%s", json_string_value(json_object_get(r, "Id")));
    json_decref(r);
    rd_emu_engine_wait(e->eng, id, 60000);
    return id;
}

static json_t *describe_id(test_env *e, const char *id)
{
    int status;
    json_t *r = call(e, "DescribeStatement", json_pack("{s:s}", "Id", id), &status);
    return r;
}

static const char *jget_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

#endif
