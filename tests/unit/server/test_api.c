/* test_api.c — the /v1 API in-process on port 0 over a temporary data dir, driven with libcurl: 401 without
 * detail, 429 after repeated failures (also with a good token), each role against each call as the contract's
 * table says, bad JSON / unknown fields / duplicates / depth refused with 400, bodies over the limit refused
 * with 413 from their Content-Length before a byte is sent, deployments (versions 1, 2, rollback, the keys still
 * missing, 422 with FILE:LINE, allow_host_access refused under server rules, concurrent deploys serialised),
 * hostile archives refused with nothing new under the data dir, variables round trip, a tampered ciphertext
 * giving a clear error and never the value, and audit rows holding names, never values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api_test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd/httpd.h"
#include "project/archive.h"
#include "redduck/project.h"
#include "server/api.h"
#include "server/store.h"

#define SECRET "planted-SECRET-value-4f1c2b9a7e"

typedef struct fixture {
    rd_test_server s;
    char proj[300];
    char viewer[RD_TOKEN_LEN + 1], editor[RD_TOKEN_LEN + 1], prodeditor[RD_TOKEN_LEN + 1],
        padmin[RD_TOKEN_LEN + 1], outsider[RD_TOKEN_LEN + 1];
} fixture;

static void write_file(const char *dir, const char *rel, const char *text)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    mkdir(p, 0755);
    *slash = '/';
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *CONNECTOR = "type: redshift\n"
                               "workgroup: wg\n"
                               "database: \"{{ .env.DB_NAME }}\"\n"
                               "region: us-east-1\n"
                               "output_location: s3://bucket/stage/\n";

static void make_project(const char *dir, const char *connector)
{
    rd_test_rm_tree(dir);
    mkdir(dir, 0755);
    write_file(dir, "redduck.yaml", "name: t\n");
    write_file(dir, "connectors/rs.yaml", connector);
    write_file(dir, "sources/s.yaml", "connector: rs\nsql: select 1\n");
}

static void pack(const char *dir, rd_buf *out)
{
    rd_error err;
    rd_error_clear(&err);
    rd_buf_free(out);
    assert_int_equal(rd_archive_pack(dir, NULL, out, NULL, &err), RD_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    static const char *const projects[] = { "demo", NULL };
    if (!f || rd_test_server_open(&f->s, "rd-api", projects) != 0)
        return -1;
    snprintf(f->proj, sizeof f->proj, "%s/proj", f->s.dir);
    *state = f;
    rd_test_server_user(&f->s, "vera", "demo", RD_ROLE_VIEWER, 0, f->viewer);
    rd_test_server_user(&f->s, "ed", "demo", RD_ROLE_EDITOR, 0, f->editor);
    rd_test_server_user(&f->s, "pat", "demo", RD_ROLE_EDITOR, 1, f->prodeditor);
    rd_test_server_user(&f->s, "ada", "demo", RD_ROLE_ADMIN, 0, f->padmin);
    rd_test_server_user(&f->s, "otto", "demo", RD_ROLE_NONE, 0, f->outsider);
    return rd_test_server_start(&f->s, NULL, 4);
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_test_server_close(&f->s);
    free(f);
    return 0;
}

/* ---- requests -------------------------------------------------------------------------------------------- */

typedef rd_test_answer answer;

/* One call; body (may be NULL) sent as is, as ctype (NULL: JSON). The answer's body is in a->body (free it). */
static long call(const fixture *f, const char *method, const char *path, const char *token, const void *body,
                 size_t len, const char *ctype, answer *a)
{
    memset(a, 0, sizeof *a);
    rd_test_request r = { .method = method, .path = path, .token = token,
                          .content_type = ctype ? ctype : "application/json", .body = body, .body_len = len };
    long st = rd_test_http(&f->s, &r, a);
    rd_buf_free(&a->headers);
    return st;
}

static long jcall(const fixture *f, const char *method, const char *path, const char *token, const char *json,
                  answer *a)
{
    return call(f, method, path, token, json, json ? strlen(json) : 0, NULL, a);
}

static long status_of(const fixture *f, const char *method, const char *path, const char *token, const char *json)
{
    answer a;
    long s = jcall(f, method, path, token, json, &a);
    rd_buf_free(&a.body);
    return s;
}

static json_t *json_of(const answer *a)
{
    json_t *j = json_loadb(a->body.data ? a->body.data : "", a->body.len, 0, NULL);
    assert_non_null(j);
    return j;
}

static const char *error_code(const answer *a, char out[64])
{
    json_t *j = json_of(a);
    snprintf(out, 64, "%s", json_string_value(json_object_get(json_object_get(j, "error"), "code")));
    json_decref(j);
    return out;
}

static long deploy(const fixture *f, const char *token, const char *env, const rd_buf *archive, answer *a)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/projects/demo/deployments?environment=%s", env);
    return call(f, "POST", path, token, archive->data, archive->len, "application/gzip", a);
}

/* ---- tests ----------------------------------------------------------------------------------------------- */

static void test_health_and_401_without_detail(void **state)
{
    fixture *f = *state;
    answer a;
    assert_int_equal(jcall(f, "GET", "/v1/health", NULL, NULL, &a), 200);
    assert_non_null(strstr(rd_buf_cstr(&a.body), "\"ok\":true"));
    rd_buf_free(&a.body);
    const char *bad[] = { NULL, "rdk_0000000000000000000000000000000000000000000000000000000000000000", "nonsense" };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(jcall(f, "GET", "/v1/whoami", bad[i], NULL, &a), 401);
        assert_string_equal(rd_buf_cstr(&a.body),
                            "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"authentication required\"}}\n");
        rd_buf_free(&a.body);
    }
    /* an unknown path is 401 too before authentication: the route table does not leak */
    assert_int_equal(status_of(f, "GET", "/v1/nothing", NULL, NULL), 401);
    assert_int_equal(jcall(f, "GET", "/v1/whoami", f->editor, NULL, &a), 200);
    json_t *j = json_of(&a);
    assert_string_equal(json_string_value(json_object_get(j, "user")), "ed");
    assert_false(json_is_true(json_object_get(j, "server_admin")));
    json_t *p0 = json_array_get(json_object_get(j, "projects"), 0);
    assert_string_equal(json_string_value(json_object_get(p0, "name")), "demo");
    assert_string_equal(json_string_value(json_object_get(p0, "role")), "editor");
    json_decref(j);
    rd_buf_free(&a.body);
    assert_int_equal(jcall(f, "GET", "/v1/whoami", f->outsider, NULL, &a), 200);
    j = json_of(&a);
    assert_int_equal(json_array_size(json_object_get(j, "projects")), 0);
    json_decref(j);
    rd_buf_free(&a.body);
}

static void test_429_after_repeated_failures(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < RD_API_AUTH_FAILURES; i++)
        assert_int_equal(status_of(f, "GET", "/v1/whoami", "rdk_wrong", NULL), 401);
    answer a = { 0 };
    rd_test_request r = { .method = "GET", .path = "/v1/whoami", .token = f->s.admin };
    assert_int_equal(rd_test_http(&f->s, &r, &a), 429); /* even with a good token */
    char v[16];
    int retry = atoi(rd_test_answer_header(&a, "Retry-After", v, sizeof v));
    assert_true(retry >= 1 && retry <= RD_API_AUTH_WINDOW_SECONDS);
    char code[64];
    assert_string_equal(error_code(&a, code), "TooManyRequests");
    rd_test_answer_free(&a);
    assert_int_equal(status_of(f, "GET", "/v1/health", NULL, NULL), 200); /* health needs no token */
}

static void test_429_window_passes(void **state)
{
    fixture *f = *state;
    rd_httpd_stop(f->s.d);
    rd_api_free(f->s.api);
    rd_api_options ao = { .auth_failures = 2, .auth_window_seconds = 1 };
    assert_int_equal(rd_test_server_start(&f->s, &ao, 4), 0);
    assert_int_equal(status_of(f, "GET", "/v1/whoami", "x", NULL), 401);
    assert_int_equal(status_of(f, "GET", "/v1/whoami", f->s.admin, NULL), 200); /* one failure: not yet */
    assert_int_equal(status_of(f, "GET", "/v1/whoami", "x", NULL), 401);
    assert_int_equal(status_of(f, "GET", "/v1/whoami", f->s.admin, NULL), 429);
    sleep(2);
    assert_int_equal(status_of(f, "GET", "/v1/whoami", f->s.admin, NULL), 200);
}

/* Each role against each call, as docs/SERVER_API.md's table says. */
static void test_roles_matrix(void **state)
{
    fixture *f = *state;
    make_project(f->proj, CONNECTOR);
    rd_buf archive = RD_BUF_INIT;
    pack(f->proj, &archive);
    enum { VIEWER, EDITOR, PRODEDITOR, PADMIN, SADMIN, OUTSIDER, NROLES };
    const char *tok[NROLES] = { f->viewer, f->editor, f->prodeditor, f->padmin, f->s.admin, f->outsider };
    answer a;
    assert_int_equal(deploy(f, f->s.admin, "dev", &archive, &a), 201); /* version 1 to read and activate */
    rd_buf_free(&a.body);
    static const struct {
        const char *method, *path, *body;
        long want[NROLES];
    } cases[] = {
        { "GET", "/v1/projects/demo", NULL, { 200, 200, 200, 200, 200, 404 } },
        { "GET", "/v1/projects/demo/deployments", NULL, { 200, 200, 200, 200, 200, 404 } },
        { "POST", "/v1/projects/demo/deployments/1/activate", NULL, { 403, 200, 200, 200, 200, 404 } },
        { "GET", "/v1/projects/demo/variables/dev", NULL, { 403, 200, 200, 200, 200, 404 } },
        { "GET", "/v1/projects/demo/variables/dev?names=1", NULL, { 403, 200, 200, 200, 200, 404 } },
        { "GET", "/v1/projects/demo/variables/shared", NULL, { 403, 200, 200, 200, 200, 404 } },
        { "PUT", "/v1/projects/demo/variables/dev/K", "{\"value\":\"v\"}", { 403, 200, 200, 200, 200, 404 } },
        { "PATCH", "/v1/projects/demo/variables/shared", "{\"set\":{\"S\":\"v\"}}", { 403, 200, 200, 200, 200, 404 } },
        { "GET", "/v1/projects/demo/variables/prod", NULL, { 403, 403, 200, 200, 200, 404 } },
        { "GET", "/v1/projects/demo/variables/prod?names=1", NULL, { 403, 403, 200, 200, 200, 404 } },
        { "PUT", "/v1/projects/demo/variables/prod/K", "{\"value\":\"v\"}", { 403, 403, 200, 200, 200, 404 } },
        { "PATCH", "/v1/projects/demo/variables/prod", "{\"unset\":[\"NOPE\"]}", { 403, 403, 200, 200, 200, 404 } },
        { "GET", "/v1/projects/demo/audit?limit=5", NULL, { 403, 403, 403, 200, 200, 404 } },
        { "GET", "/v1/projects/nosuch", NULL, { 404, 404, 404, 404, 404, 404 } },
        { "POST", "/v1/projects", "{\"name\":\"made\"}", { 403, 403, 403, 403, 201, 403 } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int r = 0; r < NROLES; r++) {
            long got = status_of(f, cases[i].method, cases[i].path, tok[r], cases[i].body);
            if (got != cases[i].want[r])
                fail_msg("%s %s as role %d: %ld, want %ld", cases[i].method, cases[i].path, r, got,
                         cases[i].want[r]);
        }
    }
    /* deploy: editors and admins; prod needs prod access (validation reads prod's variables) */
    const long want_dev[NROLES] = { 403, 201, 201, 201, 201, 404 };
    const long want_prod[NROLES] = { 403, 403, 201, 201, 201, 404 };
    for (int r = 0; r < NROLES; r++) {
        assert_int_equal(deploy(f, tok[r], "dev", &archive, &a), want_dev[r]);
        rd_buf_free(&a.body);
        assert_int_equal(deploy(f, tok[r], "prod", &archive, &a), want_prod[r]);
        rd_buf_free(&a.body);
    }
    assert_int_equal(status_of(f, "POST", "/v1/projects", f->s.admin, "{\"name\":\"made\"}"), 409);
    assert_int_equal(status_of(f, "POST", "/v1/projects", f->s.admin, "{\"name\":\"Bad Name\"}"), 400);
    /* a 403 names the role, never more */
    assert_int_equal(jcall(f, "GET", "/v1/projects/demo/variables/prod", f->editor, NULL, &a), 403);
    char code[64];
    assert_string_equal(error_code(&a, code), "Forbidden");
    rd_buf_free(&a.body);
    rd_buf_free(&archive);
}

static void test_bad_requests(void **state)
{
    fixture *f = *state;
    const char *put = "/v1/projects/demo/variables/dev/K";
    static const struct {
        const char *body;
        const char *needle;
    } cases[] = {
        { "{\"value\":", "not valid JSON" },
        { "{\"value\":\"a\",\"extra\":1}", "unknown field \"extra\"" },
        { "{\"value\":\"a\",\"value\":\"b\"}", "not valid JSON" },
        { "{\"value\":1}", "must be a string" },
        { "{}", "\"value\" is required" },
        { "[\"value\"]", "must be a JSON object" },
        { "{\"value\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}", "deeper than 16" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        answer a;
        assert_int_equal(jcall(f, "PUT", put, f->editor, cases[i].body, &a), 400);
        json_t *j = json_of(&a);
        json_t *e = json_object_get(j, "error");
        assert_string_equal(json_string_value(json_object_get(e, "code")), "BadRequest");
        if (!strstr(json_string_value(json_object_get(e, "message")), cases[i].needle))
            fail_msg("%s: %s", cases[i].body, rd_buf_cstr(&a.body));
        json_decref(j);
        rd_buf_free(&a.body);
    }
    /* the parser never quotes a value, even a broken one */
    answer a;
    assert_int_equal(jcall(f, "PUT", put, f->editor, "{\"value\":\"" SECRET, &a), 400);
    assert_null(strstr(rd_buf_cstr(&a.body), SECRET));
    rd_buf_free(&a.body);
    assert_int_equal(jcall(f, "PATCH", "/v1/projects/demo/variables/dev", f->editor,
                           "{\"set\":{\"1bad\":\"" SECRET "\"}}", &a), 400);
    char code[64];
    assert_string_equal(error_code(&a, code), "InvalidName");
    assert_null(strstr(rd_buf_cstr(&a.body), SECRET));
    rd_buf_free(&a.body);
    assert_int_equal(status_of(f, "GET", "/v1/projects/demo/variables/staging", f->editor, NULL), 400);
    assert_int_equal(status_of(f, "PUT", "/v1/projects/demo/variables/dev/9x", f->editor, "{\"value\":\"v\"}"), 400);
    assert_int_equal(status_of(f, "GET", "/v1/projects/demo/variables/dev?bogus=1", f->editor, NULL), 400);
    assert_int_equal(status_of(f, "GET", "/v1/projects/demo/audit?limit=0", f->padmin, NULL), 400);
    assert_int_equal(status_of(f, "DELETE", "/v1/projects/demo", f->s.admin, NULL), 405);
    assert_int_equal(status_of(f, "GET", "/v1/projects/demo/nothing", f->s.admin, NULL), 404);
    /* a value over the store's limit */
    size_t big = RD_STORE_VALUE_MAX + 16;
    char *body = malloc(big + 32);
    int n = snprintf(body, 32, "{\"value\":\"");
    memset(body + n, 'x', big);
    memcpy(body + n + big, "\"}", 3);
    assert_int_equal(status_of(f, "PUT", put, f->editor, body), 400);
    free(body);
}

/* Headers announcing too much, without a byte of the body: the 413 comes anyway. */
static long raw_status(const fixture *f, const char *head)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)f->s.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = { 10, 0 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(send(s, head, strlen(head), 0), (ssize_t)strlen(head));
    char buf[2048];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = recv(s, buf + got, sizeof buf - 1 - got, 0)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    close(s);
    long status = 0;
    sscanf(buf, "HTTP/1.1 %ld", &status);
    return status;
}

static void test_413_before_reading(void **state)
{
    fixture *f = *state;
    char head[512];
    snprintf(head, sizeof head,
             "PUT /v1/projects/demo/variables/dev/K HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             f->editor, RD_API_MAX_JSON_BODY + 1);
    assert_int_equal(raw_status(f, head), 413);
    snprintf(head, sizeof head,
             "POST /v1/projects/demo/deployments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/gzip\r\nContent-Length: %zu\r\n\r\n",
             f->editor, RD_API_MAX_ARCHIVE_BODY + 1);
    assert_int_equal(raw_status(f, head), 413);
    /* without a token the body is not read either: 401 first */
    snprintf(head, sizeof head,
             "POST /v1/projects/demo/deployments HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    assert_int_equal(raw_status(f, head), 401);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            n += count_entries(p);
    }
    closedir(d);
    return n;
}

static void test_deploy_versions_missing_and_rollback(void **state)
{
    fixture *f = *state;
    make_project(f->proj, CONNECTOR);
    rd_buf archive = RD_BUF_INIT;
    pack(f->proj, &archive);
    answer a;
    assert_int_equal(deploy(f, f->editor, "dev", &archive, &a), 201);
    json_t *j = json_of(&a);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "sha256"))), 64);
    /* missing: the connector's two keys, and the template's key (no connector) */
    char *m = json_dumps(json_object_get(j, "missing"), JSON_COMPACT);
    assert_string_equal(m, "[{\"connector\":\"rs\",\"keys\":[\"connector.rs.aws_access_key_id\","
                           "\"connector.rs.aws_secret_access_key\"]},{\"connector\":null,\"keys\":[\"DB_NAME\"]}]");
    free(m);
    json_decref(j);
    rd_buf_free(&a.body);
    /* the unpacked version is in its folder */
    char p[800];
    snprintf(p, sizeof p, "%s/projects/demo/v1/connectors/rs.yaml", f->s.data);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);

    /* shared and dev hold the keys now: none missing */
    assert_int_equal(status_of(f, "PATCH", "/v1/projects/demo/variables/shared", f->editor,
                               "{\"set\":{\"connector.rs.aws_access_key_id\":\"AKIDEXAMPLE\",\"DB_NAME\":\"dev\"}}"),
                     200);
    assert_int_equal(status_of(f, "PUT", "/v1/projects/demo/variables/dev/connector.rs.aws_secret_access_key",
                               f->editor, "{\"value\":\"" SECRET "\"}"),
                     200);
    assert_int_equal(deploy(f, f->editor, "dev", &archive, &a), 201);
    j = json_of(&a);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "missing")), 0);
    assert_null(strstr(rd_buf_cstr(&a.body), SECRET));
    json_decref(j);
    rd_buf_free(&a.body);
    /* prod lacks them */
    assert_int_equal(deploy(f, f->prodeditor, "prod", &archive, &a), 201);
    assert_non_null(strstr(rd_buf_cstr(&a.body), "connector.rs.aws_secret_access_key"));
    assert_null(strstr(rd_buf_cstr(&a.body), "DB_NAME")); /* shared holds it */
    rd_buf_free(&a.body);

    assert_int_equal(jcall(f, "GET", "/v1/projects/demo/deployments", f->viewer, NULL, &a), 200);
    j = json_of(&a);
    json_t *ds = json_object_get(j, "deployments");
    assert_int_equal(json_array_size(ds), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ds, 0), "version")), 3);
    assert_true(json_is_true(json_object_get(json_array_get(ds, 0), "active")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(ds, 0), "environment")), "prod");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ds, 2), "environment")), "dev");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ds, 0), "created_by")), "pat");
    json_decref(j);
    rd_buf_free(&a.body);
    /* the environment is the store's: no sidecar file beside the deployment's folder */
    char side[500];
    snprintf(side, sizeof side, "%s/projects/demo/v1.json", f->s.data);
    struct stat ssb;
    assert_int_not_equal(stat(side, &ssb), 0);

    assert_int_equal(status_of(f, "POST", "/v1/projects/demo/deployments/1/activate", f->editor, NULL), 200);
    assert_int_equal(jcall(f, "GET", "/v1/projects/demo", f->viewer, NULL, &a), 200);
    j = json_of(&a);
    assert_int_equal(json_integer_value(json_object_get(j, "active_version")), 1);
    json_decref(j);
    rd_buf_free(&a.body);
    assert_int_equal(status_of(f, "POST", "/v1/projects/demo/deployments/9/activate", f->editor, NULL), 404);

    /* an invalid project: 422 with FILE:LINE, nothing activated, no version used */
    make_project(f->proj, "type: redshift\nworkgroup: wg\nbogus_key: 1\n");
    pack(f->proj, &archive);
    int before = count_entries(f->s.data);
    assert_int_equal(deploy(f, f->editor, "dev", &archive, &a), 422);
    j = json_of(&a);
    json_t *err = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "InvalidProject");
    const char *problem = json_string_value(json_array_get(json_object_get(err, "problems"), 0));
    assert_non_null(problem);
    assert_non_null(strstr(problem, "connectors/rs.yaml:3:"));
    assert_null(strstr(problem, f->s.data)); /* paths relative to the project */
    json_decref(j);
    rd_buf_free(&a.body);
    assert_int_equal(count_entries(f->s.data), before);
    /* server rules: a connector's allow_host_access is off, so a connector without keys still lacks them */
    make_project(f->proj, "type: redshift\nworkgroup: wg\nallow_host_access: true\n");
    pack(f->proj, &archive);
    assert_int_equal(deploy(f, f->prodeditor, "prod", &archive, &a), 201);
    j = json_of(&a);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 4);
    assert_non_null(strstr(rd_buf_cstr(&a.body), "connector.rs.aws_secret_access_key"));
    json_decref(j);
    rd_buf_free(&a.body);
    char v4[700];
    snprintf(v4, sizeof v4, "%s/projects/demo/v4", f->s.data);
    rd_project proj;
    rd_error lerr;
    rd_error_clear(&lerr);
    assert_int_equal(rd_project_load(v4, &proj, &lerr), RD_OK);
    assert_int_equal(proj.connectors[0].allow_host_access, 1); /* as the file says */
    rd_project_free(&proj);
    rd_project_load_options lo = { .no_host_access = 1 };
    assert_int_equal(rd_project_load_opts(v4, &lo, &proj, &lerr), RD_OK);
    assert_int_equal(proj.connectors[0].allow_host_access, 0); /* the server's rule */
    rd_project_free(&proj);
    /* a server admin's deploy creates a project that does not exist */
    assert_int_equal(call(f, "POST", "/v1/projects/fresh/deployments", f->s.admin, archive.data, archive.len,
                          "application/gzip", &a),
                     201);
    rd_buf_free(&a.body);
    assert_int_equal(call(f, "POST", "/v1/projects/other/deployments", f->editor, archive.data, archive.len,
                          "application/gzip", &a),
                     404);
    rd_buf_free(&a.body);
    rd_buf_free(&archive);
}

/* A tar (plain) of one entry, as a hostile client would make it. */
static void hostile_tar(rd_buf *out, const char *name, int type, const char *link)
{
    struct archive *w = archive_write_new();
    archive_write_set_format_pax_restricted(w);
    size_t cap = 1 << 16, used = 0;
    char *mem = calloc(1, cap);
    assert_int_equal(archive_write_open_memory(w, mem, cap, &used), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, (unsigned)type);
    archive_entry_set_perm(e, 0644);
    if (link)
        archive_entry_set_symlink(e, link);
    const char *data = "name: evil\n";
    if (type == AE_IFREG)
        archive_entry_set_size(e, (la_int64_t)strlen(data));
    if (type == AE_IFCHR)
        archive_entry_set_rdevmajor(e, 1);
    archive_write_header(w, e);
    if (type == AE_IFREG)
        archive_write_data(w, data, strlen(data));
    archive_entry_free(e);
    archive_write_close(w);
    archive_write_free(w);
    rd_buf_free(out);
    rd_buf_append(out, mem, used);
    free(mem);
}

static void test_hostile_archives_refused(void **state)
{
    fixture *f = *state;
    make_project(f->proj, CONNECTOR);
    rd_buf archive = RD_BUF_INIT;
    pack(f->proj, &archive);
    answer a;
    assert_int_equal(deploy(f, f->editor, "dev", &archive, &a), 201);
    rd_buf_free(&a.body);
    int before = count_entries(f->s.dir);
    static const struct {
        const char *name;
        int type;
        const char *link;
    } cases[] = {
        { "../evil.yaml", AE_IFREG, NULL },       { "/tmp/evil.yaml", AE_IFREG, NULL },
        { "a/../../evil.yaml", AE_IFREG, NULL },  { "link", AE_IFLNK, "/etc/passwd" },
        { "dev", AE_IFCHR, NULL },               { "fifo", AE_IFIFO, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hostile_tar(&archive, cases[i].name, cases[i].type, cases[i].link);
        assert_int_equal(deploy(f, f->editor, "dev", &archive, &a), 400);
        char code[64];
        assert_string_equal(error_code(&a, code), "BadRequest");
        assert_non_null(strstr(rd_buf_cstr(&a.body), "archive was refused"));
        rd_buf_free(&a.body);
        assert_int_equal(count_entries(f->s.dir), before);
    }
    /* not an archive at all */
    assert_int_equal(call(f, "POST", "/v1/projects/demo/deployments?environment=dev", f->editor, "garbage", 7,
                          "application/gzip", &a),
                     400);
    rd_buf_free(&a.body);
    assert_int_equal(count_entries(f->s.dir), before);
    char evil[700];
    snprintf(evil, sizeof evil, "%s/projects/evil.yaml", f->s.data);
    struct stat sb;
    assert_int_not_equal(stat(evil, &sb), 0);
    /* the next good deploy is version 2: refusals used no version */
    pack(f->proj, &archive);
    assert_int_equal(deploy(f, f->editor, "dev", &archive, &a), 201);
    assert_non_null(strstr(rd_buf_cstr(&a.body), "\"version\":2"));
    rd_buf_free(&a.body);
    rd_buf_free(&archive);
}

typedef struct deployer {
    const fixture *f;
    const rd_buf *archive;
    long version;
} deployer;

static void *deploy_thread(void *p)
{
    deployer *d = p;
    answer a;
    if (deploy(d->f, d->f->editor, "dev", d->archive, &a) == 201) {
        json_t *j = json_loadb(a.body.data, a.body.len, 0, NULL);
        d->version = (long)json_integer_value(json_object_get(j, "version"));
        json_decref(j);
    }
    rd_buf_free(&a.body);
    return NULL;
}

static void test_concurrent_deploys_serialised(void **state)
{
    fixture *f = *state;
    make_project(f->proj, CONNECTOR);
    rd_buf archive = RD_BUF_INIT;
    pack(f->proj, &archive);
    enum { N = 6 };
    pthread_t t[N];
    deployer d[N];
    for (int i = 0; i < N; i++) {
        d[i] = (deployer){ f, &archive, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, deploy_thread, &d[i]), 0);
    }
    int seen[N + 1] = { 0 };
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_true(d[i].version >= 1 && d[i].version <= N);
        seen[d[i].version]++;
    }
    for (int v = 1; v <= N; v++)
        assert_int_equal(seen[v], 1);
    rd_buf_free(&archive);
}

static void test_variables_round_trip_tamper_and_audit(void **state)
{
    fixture *f = *state;
    answer a;
    assert_int_equal(jcall(f, "PATCH", "/v1/projects/demo/variables/dev", f->editor,
                           "{\"set\":{\"A\":\"" SECRET "\",\"B.x-y\":\"two\",\"C\":\"three\"}}", &a),
                     200);
    assert_null(strstr(rd_buf_cstr(&a.body), SECRET));
    rd_buf_free(&a.body);
    assert_int_equal(jcall(f, "PATCH", "/v1/projects/demo/variables/dev", f->editor,
                           "{\"set\":{\"D\":\"four\"},\"unset\":[\"C\",\"ABSENT\"]}", &a),
                     200);
    json_t *j = json_of(&a);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"environment\":\"dev\",\"set\":[\"D\"],\"unset\":[\"C\"]}");
    free(s);
    json_decref(j);
    rd_buf_free(&a.body);
    /* all or nothing: one bad name and nothing changes */
    assert_int_equal(status_of(f, "PATCH", "/v1/projects/demo/variables/dev", f->editor,
                               "{\"set\":{\"E\":\"five\",\"-bad\":\"x\"}}"),
                     400);
    assert_int_equal(jcall(f, "GET", "/v1/projects/demo/variables/dev", f->editor, NULL, &a), 200);
    j = json_of(&a);
    s = json_dumps(json_object_get(j, "variables"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"A\":\"" SECRET "\",\"B.x-y\":\"two\",\"D\":\"four\"}");
    free(s);
    json_decref(j);
    rd_buf_free(&a.body);
    assert_int_equal(jcall(f, "GET", "/v1/projects/demo/variables/dev?names=1", f->editor, NULL, &a), 200);
    assert_string_equal(rd_buf_cstr(&a.body), "{\"environment\":\"dev\",\"names\":[\"A\",\"B.x-y\",\"D\"]}\n");
    rd_buf_free(&a.body);
    assert_int_equal(jcall(f, "PUT", "/v1/projects/demo/variables/dev/B.x-y", f->editor, "{\"value\":\"2\"}", &a), 200);
    j = json_of(&a);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "B.x-y");
    assert_non_null(json_string_value(json_object_get(j, "updated_at")));
    json_decref(j);
    rd_buf_free(&a.body);
    assert_int_equal(status_of(f, "DELETE", "/v1/projects/demo/variables/dev/D", f->editor, NULL), 204);
    assert_int_equal(status_of(f, "DELETE", "/v1/projects/demo/variables/dev/D", f->editor, NULL), 404);
    /* environments are apart */
    assert_int_equal(jcall(f, "GET", "/v1/projects/demo/variables/shared?names=1", f->editor, NULL, &a), 200);
    assert_string_equal(rd_buf_cstr(&a.body), "{\"environment\":\"shared\",\"names\":[]}\n");
    rd_buf_free(&a.body);

    /* audit: names, never values */
    assert_int_equal(jcall(f, "GET", "/v1/projects/demo/audit", f->padmin, NULL, &a), 200);
    assert_null(strstr(rd_buf_cstr(&a.body), SECRET));
    assert_null(strstr(rd_buf_cstr(&a.body), "four"));
    j = json_of(&a);
    json_t *ev = json_object_get(j, "events");
    assert_true(json_array_size(ev) >= 5);
    int saw_set = 0, saw_delete = 0;
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        const char *action = json_string_value(json_object_get(e, "action"));
        assert_string_equal(json_string_value(json_object_get(e, "project")), "demo");
        assert_non_null(json_string_value(json_object_get(e, "at")));
        if (strcmp(action, "variable.set") == 0) {
            saw_set = 1;
            assert_string_equal(json_string_value(json_object_get(e, "actor")), "ed");
        }
        if (strcmp(action, "variable.delete") == 0)
            saw_delete = 1;
    }
    assert_true(saw_set && saw_delete);
    assert_non_null(strstr(rd_buf_cstr(&a.body), "\"B.x-y\""));
    json_decref(j);
    rd_buf_free(&a.body);

    /* one byte of A's ciphertext flipped in store.db: a clear error, never garbage, never the value */
    char db_path[400];
    snprintf(db_path, sizeof db_path, "%s/" RD_STORE_FILE, f->s.data);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT blob FROM variables WHERE name = 'A'", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    size_t blen = (size_t)sqlite3_column_bytes(stmt, 0);
    unsigned char *blob = malloc(blen);
    memcpy(blob, sqlite3_column_blob(stmt, 0), blen);
    sqlite3_finalize(stmt);
    blob[RD_KEYRING_HEADER_LEN + 2] ^= 0x01;
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE variables SET blob = ?1 WHERE name = 'A'", -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(stmt, 1, blob, (int)blen, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    free(blob);
    assert_int_equal(jcall(f, "GET", "/v1/projects/demo/variables/dev", f->editor, NULL, &a), 500);
    char code[64];
    assert_string_equal(error_code(&a, code), "Internal");
    assert_non_null(strstr(rd_buf_cstr(&a.body), "A"));
    assert_null(strstr(rd_buf_cstr(&a.body), SECRET));
    assert_null(strstr(rd_buf_cstr(&a.body), "two"));
    rd_buf_free(&a.body);
    /* names still list: they are not sealed */
    assert_int_equal(status_of(f, "GET", "/v1/projects/demo/variables/dev?names=1", f->editor, NULL), 200);
}

static void test_parse_json_body(void **state)
{
    (void)state;
    static const rd_api_field schema[] = {
        { "set", RD_API_STRING_MAP, 0 }, { "unset", RD_API_STRING_LIST, 0 }, { "v", RD_API_STRING, 1 }, { NULL, 0, 0 }
    };
    char msg[256];
    json_t *o = NULL;
    const char *good = "{\"v\":\"x\",\"set\":{\"a\":\"b\"},\"unset\":[\"c\"]}";
    assert_int_equal(rd_api_parse_json_body(good, strlen(good), schema, &o, msg, sizeof msg), 0);
    json_decref(o);
    const char *bad[] = { "{\"v\":\"x\",\"set\":{\"a\":1}}", "{\"v\":\"x\",\"unset\":[1]}", "{\"v\":\"\\u0000\"}",
                          "{\"v\":\"x\"} trailing", "", "{\"v\":\"\xff\"}", "{\"v\":\"x\",\"set\":[]}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = (json_t *)0x1;
        assert_int_equal(rd_api_parse_json_body(bad[i], strlen(bad[i]), schema, &o, msg, sizeof msg), -1);
        assert_ptr_equal(o, (json_t *)0x1);
        assert_true(msg[0] != 0);
    }
    /* exactly 16 deep passes; brackets inside strings do not count */
    rd_buf deep = RD_BUF_INIT;
    rd_buf_puts(&deep, "{\"v\":\"[[[[[[[[[[[[[[[[[[[[\",\"set\":{}}");
    assert_int_equal(rd_api_parse_json_body(deep.data, deep.len, schema, &o, msg, sizeof msg), 0);
    json_decref(o);
    rd_buf_free(&deep);
    assert_true(rd_api_project_name_valid("demo"));
    assert_true(rd_api_project_name_valid("0a_b-c"));
    assert_false(rd_api_project_name_valid("Demo"));
    assert_false(rd_api_project_name_valid("-a"));
    assert_false(rd_api_project_name_valid(""));
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = 0;
    assert_false(rd_api_project_name_valid(longname));
    longname[63] = 0;
    assert_true(rd_api_project_name_valid(longname));
}

/* ---- a chunked JSON body over the limit ---------------------------------------------------------------- */

typedef struct spy {
    rd_httpd_handler api;
    pthread_mutex_t mu;
    int too_large, before_body, completed;
    size_t limit, largest_body;
} spy;

static rd_httpd_next spy_headers(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    spy *s = ctx;
    return s->api.on_headers(s->api.ctx, req, resp);
}

static void spy_complete(void *ctx, rd_httpd_request *req, rd_httpd_response *resp)
{
    spy *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->completed++;
    if (rd_httpd_body(req)->len > s->largest_body)
        s->largest_body = rd_httpd_body(req)->len;
    pthread_mutex_unlock(&s->mu);
    s->api.on_complete(s->api.ctx, req, resp);
}

static void spy_too_large(void *ctx, rd_httpd_request *req, int before_body, size_t limit, rd_httpd_response *resp)
{
    spy *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->too_large++;
    s->before_body = before_body;
    s->limit = limit;
    if (rd_httpd_body(req)->len > s->largest_body)
        s->largest_body = rd_httpd_body(req)->len;
    pthread_mutex_unlock(&s->mu);
    s->api.on_too_large(s->api.ctx, req, before_body, limit, resp);
}

static void spy_done(void *ctx, rd_httpd_request *req)
{
    spy *s = ctx;
    s->api.on_done(s->api.ctx, req);
}

typedef struct chunked_body {
    size_t total, sent;
} chunked_body;

/* {"value":"xxxx...x"} of total bytes, in pieces as curl asks */
static size_t chunked_read(char *buf, size_t size, size_t nitems, void *ud)
{
    chunked_body *b = ud;
    size_t room = size * nitems, n = 0;
    static const char head[] = "{\"value\":\"";
    while (n < room && b->sent < b->total) {
        size_t i = b->sent;
        char ch = i < sizeof head - 1 ? head[i] : i == b->total - 2 ? '"' : i == b->total - 1 ? '}' : 'x';
        buf[n++] = ch;
        b->sent++;
    }
    return n;
}

static long chunked_put(const fixture *f, int port, const char *path, size_t total, answer *a)
{
    memset(a, 0, sizeof *a);
    rd_buf_init(&a->body);
    char url[512], auth[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", f->editor);
    chunked_body b = { total, 0 };
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *hs = curl_slist_append(NULL, auth);
    hs = curl_slist_append(hs, "Content-Type: application/json");
    hs = curl_slist_append(hs, "Transfer-Encoding: chunked");
    hs = curl_slist_append(hs, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, chunked_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &b);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, rd_test_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a->body);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    /* the server may answer and close before curl has sent it all */
    assert_true(rc == CURLE_OK || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR);
    return a->status;
}

static void test_chunked_json_body_stops_at_1_mib(void **state)
{
    fixture *f = *state;
    spy s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    rd_api_handler(f->s.api, &s.api);
    rd_httpd_handler h = { .on_headers = spy_headers, .on_complete = spy_complete, .on_too_large = spy_too_large,
                           .on_done = spy_done, .ctx = &s };
    rd_httpd_options ho;
    memset(&ho, 0, sizeof ho);
    rd_api_httpd_options(&ho);
    ho.port = 0;
    ho.threads = 2;
    rd_httpd *d = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_httpd_start(&ho, &h, &d, &err), RD_OK);
    int port = rd_httpd_port(d);

    answer a;
    assert_int_equal(chunked_put(f, port, "/v1/projects/demo/variables/dev/BIG", (size_t)2 << 20, &a), 413);
    char code[64];
    assert_string_equal(error_code(&a, code), "PayloadTooLarge");
    rd_buf_free(&a.body);
    pthread_mutex_lock(&s.mu);
    /* refused by httpd as the body came (not after buffering it): the 1 MiB limit, never more kept */
    assert_int_equal(s.too_large, 1);
    assert_int_equal(s.before_body, 0);
    assert_int_equal(s.limit, RD_API_MAX_JSON_BODY);
    assert_int_equal(s.completed, 0);
    assert_true(s.largest_body <= RD_API_MAX_JSON_BODY);
    pthread_mutex_unlock(&s.mu);
    /* a chunked body under the limit goes through */
    assert_int_equal(chunked_put(f, port, "/v1/projects/demo/variables/dev/SMALL", 1000, &a), 200);
    rd_buf_free(&a.body);
    assert_int_equal(s.completed, 1);
    rd_httpd_stop(d);
    pthread_mutex_destroy(&s.mu);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_json_body),
        cmocka_unit_test_setup_teardown(test_health_and_401_without_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_after_repeated_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_window_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_413_before_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_json_body_stops_at_1_mib, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deploy_versions_missing_and_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_archives_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_deploys_serialised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_variables_round_trip_tamper_and_audit, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("server.api", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
