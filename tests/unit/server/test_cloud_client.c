/* test_cloud_client.c — the client of redduck server without a server: the push diff and the pull merge, the
 * server/token resolution order and the credentials file's mode, the plain-http rule, project names, and each
 * reply status mapped to its rd_status and one-line message over a scripted transport (which also checks the
 * token goes only in the Authorization header and never into a message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/http.h"
#include "redduck/cloud.h"

#define TOKEN "rdk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* ---- helpers ---------------------------------------------------------------------------------------------- */

static char *make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/rd-cloud-XXXXXX", base && *base ? base : P_tmpdir);
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void rm_rf(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static rd_dotenv parse_env(const char *text)
{
    rd_dotenv e;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_dotenv_parse(text, strlen(text), NULL, &e, &err), RD_OK);
    return e;
}

static const rd_cloud_change *change_of(const rd_cloud_diff *d, const char *key)
{
    for (size_t i = 0; i < d->count; i++)
        if (strcmp(d->items[i].key, key) == 0)
            return &d->items[i];
    return NULL;
}

/* ---- push diff, pull merge -------------------------------------------------------------------------------- */

static void test_push_diff(void **state)
{
    (void)state;
    rd_dotenv local = parse_env("NEW=1\nSAME=x\nCHANGED=new\n");
    rd_dotenv cloud = parse_env("SAME=x\nCHANGED=old\nCLOUD_ONLY=keep\n");
    rd_cloud_diff d;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_cloud_diff_env(&local, &cloud, &d, &err), RD_OK);
    assert_int_equal(d.count, 4);
    assert_int_equal(d.added, 1);
    assert_int_equal(d.changed, 1);
    assert_int_equal(d.unchanged, 1);
    assert_int_equal(d.kept, 1);
    assert_int_equal(change_of(&d, "NEW")->kind, RD_CLOUD_ADDED);
    assert_null(change_of(&d, "NEW")->old_value);
    assert_int_equal(change_of(&d, "SAME")->kind, RD_CLOUD_UNCHANGED);
    const rd_cloud_change *ch = change_of(&d, "CHANGED");
    assert_int_equal(ch->kind, RD_CLOUD_CHANGED);
    assert_string_equal(ch->value, "new");
    assert_string_equal(ch->old_value, "old");
    assert_int_equal(change_of(&d, "CLOUD_ONLY")->kind, RD_CLOUD_KEPT); /* never an unset */
    /* from's keys first, in from's order */
    assert_string_equal(d.items[0].key, "NEW");
    assert_string_equal(d.items[3].key, "CLOUD_ONLY");
    rd_cloud_diff_free(&d);
    rd_dotenv_free(&local);
    rd_dotenv_free(&cloud);
}

static void test_pull_merge(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = join(dir, ".env");
    write_file(path, "# my notes\nLOCAL_ONLY=mine\nREGION=local\nSAME=s\n", 0644);
    rd_dotenv cloud = parse_env("REGION=cloud\nSAME=s\nAPI_SECRET='with spaces # and hash'\n");
    rd_dotenv local;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_dotenv_load(path, &local, &err), RD_OK);
    rd_cloud_diff d;
    assert_int_equal(rd_cloud_diff_env(&cloud, &local, &d, &err), RD_OK);
    assert_int_equal(d.changed, 1); /* the overridden ones are listed */
    assert_string_equal(change_of(&d, "REGION")->old_value, "local");
    assert_int_equal(d.added, 1);
    assert_int_equal(d.kept, 1);
    assert_int_equal(change_of(&d, "LOCAL_ONLY")->kind, RD_CLOUD_KEPT);
    assert_int_equal(rd_cloud_env_apply(path, &d, &err), RD_OK);
    rd_cloud_diff_free(&d);

    rd_dotenv after;
    assert_int_equal(rd_dotenv_load(path, &after, &err), RD_OK);
    assert_string_equal(rd_dotenv_get(&after, "REGION"), "cloud");
    assert_string_equal(rd_dotenv_get(&after, "LOCAL_ONLY"), "mine");
    assert_string_equal(rd_dotenv_get(&after, "SAME"), "s");
    assert_string_equal(rd_dotenv_get(&after, "API_SECRET"), "with spaces # and hash");
    assert_int_equal(after.count, 4);
    char *text = read_text(path);
    assert_non_null(strstr(text, "# my notes\n")); /* other lines kept */
    free(text);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* nothing left beside it */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);

    rd_dotenv_free(&after);
    rd_dotenv_free(&local);
    rd_dotenv_free(&cloud);
    rm_rf(dir);
    free(path);
    free(dir);
}

static void test_pull_merge_failure_keeps_file(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = join(dir, ".env");
    const char *broken = "A=1\nB='unterminated\n";
    write_file(path, broken, 0600);
    rd_dotenv cloud = parse_env("A=2\n");
    rd_dotenv empty = { NULL, 0, NULL };
    rd_cloud_diff d;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_cloud_diff_env(&cloud, &empty, &d, &err), RD_OK);
    assert_int_not_equal(rd_cloud_env_apply(path, &d, &err), RD_OK);
    char *text = read_text(path);
    assert_string_equal(text, broken);
    free(text);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);
    rd_cloud_diff_free(&d);
    rd_dotenv_free(&cloud);
    rm_rf(dir);
    free(path);
    free(dir);
}

static void test_gitignore_env(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *gi = join(dir, ".gitignore");
    rd_error err;
    rd_error_clear(&err);
    int changed = -1;
    assert_int_equal(rd_cloud_gitignore_env(dir, &changed, &err), RD_OK);
    assert_int_equal(changed, 1);
    char *text = read_text(gi);
    assert_string_equal(text, ".env\n");
    free(text);
    assert_int_equal(rd_cloud_gitignore_env(dir, &changed, &err), RD_OK);
    assert_int_equal(changed, 0);
    write_file(gi, "data/\n.env.example", 0644); /* no final newline, and .env.example is another file */
    assert_int_equal(rd_cloud_gitignore_env(dir, &changed, &err), RD_OK);
    assert_int_equal(changed, 2);
    text = read_text(gi);
    assert_string_equal(text, "data/\n.env.example\n.env\n");
    free(text);
    write_file(gi, "/.env  \n", 0644);
    assert_int_equal(rd_cloud_gitignore_env(dir, &changed, &err), RD_OK);
    assert_int_equal(changed, 0);
    rm_rf(dir);
    free(gi);
    free(dir);
}

/* ---- the http rule, names ------------------------------------------------------------------------------- */

static void test_check_url(void **state)
{
    (void)state;
    rd_error err;
    char *n = NULL;
    static const char *const ok[] = { "https://redduck.example.com", "https://10.1.2.3:8470/", "http://127.0.0.1:8470",
                                      "http://localhost:1/", "http://[::1]:9000", "http://127.3.4.5" };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rd_error_clear(&err);
        assert_int_equal(rd_cloud_check_url(ok[i], 0, &n, &err), RD_OK);
        assert_true(n[strlen(n) - 1] != '/');
        free(n);
    }
    static const char *const refused[] = { "http://10.1.2.3:8470", "http://redduck.example.com",
                                           "http://127.0.0.1.example.com", "http://localhost.example.com" };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        rd_error_clear(&err);
        assert_int_equal(rd_cloud_check_url(refused[i], 0, NULL, &err), RD_E_USAGE);
        assert_non_null(strstr(err.message, "--insecure-http"));
        assert_int_equal(rd_cloud_check_url(refused[i], 1, NULL, &err), RD_OK); /* allowed when asked for */
    }
    static const char *const bad[] = { "ftp://x", "redduck.example.com", "https://", "https://u:p@host",
                                       "https://host/?q=1", "https://host/#f", "https://ho st", "https://host\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rd_error_clear(&err);
        assert_int_equal(rd_cloud_check_url(bad[i], 1, NULL, &err), RD_E_USAGE);
    }
}

static void test_project_name(void **state)
{
    (void)state;
    assert_true(rd_cloud_project_name_valid("demo"));
    assert_true(rd_cloud_project_name_valid("0a_b-c"));
    assert_false(rd_cloud_project_name_valid("Demo"));
    assert_false(rd_cloud_project_name_valid("-demo"));
    assert_false(rd_cloud_project_name_valid(""));
    assert_false(rd_cloud_project_name_valid("a/b"));
    char long_name[70];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_false(rd_cloud_project_name_valid(long_name));
    long_name[63] = '\0';
    assert_true(rd_cloud_project_name_valid(long_name));

    char *base = make_tmpdir();
    char *dir = join(base, "my-folder");
    assert_int_equal(mkdir(dir, 0700), 0);
    rd_error err;
    rd_error_clear(&err);
    char *name = NULL;
    /* no redduck.yaml: the folder's name */
    assert_int_equal(rd_cloud_project_name(dir, NULL, &name, &err), RD_OK);
    assert_string_equal(name, "my-folder");
    free(name);
    /* name: wins over the folder; --project over both */
    char *yaml = join(dir, "redduck.yaml");
    write_file(yaml, "# x\nduckdb: data/x.duckdb\nname: sales_eu\n", 0644);
    assert_int_equal(rd_cloud_project_name(dir, NULL, &name, &err), RD_OK);
    assert_string_equal(name, "sales_eu");
    free(name);
    assert_int_equal(rd_cloud_project_name(dir, "other", &name, &err), RD_OK);
    assert_string_equal(name, "other");
    free(name);
    name = NULL;
    assert_int_equal(rd_cloud_project_name(dir, "Not Valid", &name, &err), RD_E_USAGE);
    assert_null(name);
    assert_non_null(strstr(err.message, "--project"));
    write_file(yaml, "name: Sales EU\n", 0644);
    assert_int_equal(rd_cloud_project_name(dir, NULL, &name, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "name:"));
    rm_rf(base);
    free(yaml);
    free(dir);
    free(base);
}

/* ---- resolution and the credentials file ---------------------------------------------------------------- */

static void clear_env(void)
{
    unsetenv(RD_CLOUD_ENV_SERVER);
    unsetenv(RD_CLOUD_ENV_TOKEN);
    unsetenv(RD_CLOUD_ENV_CA_BUNDLE);
}

static void test_credentials_file(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *path = join(dir, "sub/redduck/credentials.json");
    rd_error err;
    rd_error_clear(&err);
    rd_cloud_credentials c = { "http://127.0.0.1:8470", TOKEN, NULL, 0 };
    assert_int_equal(rd_cloud_credentials_save(path, &c, &err), RD_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char *folder = join(dir, "sub/redduck");
    assert_int_equal(stat(folder, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    free(folder);

    rd_cloud_credentials got;
    int found = 0;
    assert_int_equal(rd_cloud_credentials_load(path, &got, &found, &err), RD_OK);
    assert_int_equal(found, 1);
    assert_string_equal(got.server, c.server);
    assert_string_equal(got.token, TOKEN);
    assert_null(got.ca_bundle);
    rd_cloud_credentials_free(&got);

    /* readable by others: refused, without quoting the file */
    assert_int_equal(chmod(path, 0644), 0);
    rd_error_clear(&err);
    assert_int_equal(rd_cloud_credentials_load(path, &got, &found, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "chmod 600"));
    assert_null(strstr(err.message, TOKEN));
    /* saving again makes it private */
    assert_int_equal(rd_cloud_credentials_save(path, &c, &err), RD_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* not the JSON login writes: refused without the content */
    write_file(path, "{\"server\": \"x\", \"tok" TOKEN, 0600);
    rd_error_clear(&err);
    assert_int_equal(rd_cloud_credentials_load(path, &got, &found, &err), RD_E_CONFIG);
    assert_null(strstr(err.message, "rdk_"));

    int removed = 0;
    assert_int_equal(rd_cloud_credentials_remove(path, &removed, &err), RD_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(rd_cloud_credentials_remove(path, &removed, &err), RD_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(rd_cloud_credentials_load(path, &got, &found, &err), RD_OK);
    assert_int_equal(found, 0);
    rm_rf(dir);
    free(path);
    free(dir);
}

static void test_resolution_order(void **state)
{
    (void)state;
    clear_env();
    char *dir = make_tmpdir();
    char *path = join(dir, "credentials.json");
    rd_error err;
    rd_error_clear(&err);
    rd_cloud_credentials file = { "https://file.example.com", "rdk_file", "/etc/file-ca.pem", 0 };
    assert_int_equal(rd_cloud_credentials_save(path, &file, &err), RD_OK);

    rd_cloud_options o = { 0 };
    o.credentials_path = path;
    rd_cloud_resolved r;
    /* the file alone */
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_OK);
    assert_string_equal(r.creds.server, "https://file.example.com");
    assert_string_equal(r.creds.token, "rdk_file");
    assert_string_equal(r.creds.ca_bundle, "/etc/file-ca.pem");
    assert_int_equal(r.server_from, RD_CLOUD_FROM_FILE);
    assert_int_equal(r.token_from, RD_CLOUD_FROM_FILE);
    rd_cloud_resolved_free(&r);

    /* the environment over the file (the same server, with a trailing '/': still the file's CA) */
    setenv(RD_CLOUD_ENV_SERVER, "https://file.example.com/", 1);
    setenv(RD_CLOUD_ENV_TOKEN, "rdk_env", 1);
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_OK);
    assert_string_equal(r.creds.server, "https://file.example.com");
    assert_string_equal(r.creds.token, "rdk_env");
    assert_int_equal(r.server_from, RD_CLOUD_FROM_ENV);
    assert_int_equal(r.token_from, RD_CLOUD_FROM_ENV);
    assert_string_equal(r.creds.ca_bundle, "/etc/file-ca.pem");
    rd_cloud_resolved_free(&r);
    setenv(RD_CLOUD_ENV_CA_BUNDLE, "/etc/env-ca.pem", 1);
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_OK);
    assert_string_equal(r.creds.ca_bundle, "/etc/env-ca.pem");
    assert_int_equal(r.ca_from, RD_CLOUD_FROM_ENV);
    rd_cloud_resolved_free(&r);

    /* flags over the environment */
    o.server = "https://flag.example.com";
    o.token = "rdk_flag";
    o.ca_bundle = "/etc/flag-ca.pem";
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_OK);
    assert_string_equal(r.creds.server, "https://flag.example.com");
    assert_string_equal(r.creds.token, "rdk_flag");
    assert_string_equal(r.creds.ca_bundle, "/etc/flag-ca.pem");
    assert_int_equal(r.server_from, RD_CLOUD_FROM_FLAG);
    assert_int_equal(r.token_from, RD_CLOUD_FROM_FLAG);
    assert_int_equal(r.ca_from, RD_CLOUD_FROM_FLAG);
    rd_cloud_resolved_free(&r);

    /* another server than the file's: the file's token is never sent there */
    clear_env();
    o = (rd_cloud_options){ 0 };
    o.credentials_path = path;
    o.server = "https://other.example.com";
    rd_error_clear(&err);
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_E_AUTH);
    assert_non_null(strstr(err.message, "redduck login --server https://other.example.com"));
    setenv(RD_CLOUD_ENV_TOKEN, "rdk_env", 1);
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_OK);
    assert_string_equal(r.creds.token, "rdk_env");
    assert_null(r.creds.ca_bundle); /* nor its CA */
    rd_cloud_resolved_free(&r);

    /* nothing at all */
    clear_env();
    o = (rd_cloud_options){ 0 };
    char *none = join(dir, "absent.json");
    o.credentials_path = none;
    rd_error_clear(&err);
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "redduck login"));
    /* a plain-http server that is not loopback, from the environment */
    setenv(RD_CLOUD_ENV_SERVER, "http://10.0.0.7:8470", 1);
    setenv(RD_CLOUD_ENV_TOKEN, "rdk_env", 1);
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_E_USAGE);
    o.insecure_http = 1;
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_OK);
    rd_cloud_resolved_free(&r);

    /* login's check of a new token ignores the file */
    clear_env();
    o = (rd_cloud_options){ 0 };
    o.credentials_path = path;
    o.no_credentials_file = 1;
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_E_USAGE);

    /* a file others may read is refused when it is needed */
    assert_int_equal(chmod(path, 0640), 0);
    o.no_credentials_file = 0;
    rd_error_clear(&err);
    assert_int_equal(rd_cloud_resolve(&o, &r, &err), RD_E_CONFIG);
    clear_env();
    rm_rf(dir);
    free(none);
    free(path);
    free(dir);
}

/* ---- replies mapped to statuses ------------------------------------------------------------------------- */

typedef struct script_http {
    rd_http_transport base;
    int status;
    const char *body;
    const char *retry_after;
    rd_status fail; /* RD_OK: answer; else the transport's failure */
    int calls;
    char method[8];
    char url[512];
    char auth[256];
    char *sent; /* the body, owned */
} script_http;

static rd_status script_send(rd_http_transport *t, const rd_http_request *req, rd_http_response *resp,
                             rd_error *err)
{
    script_http *s = (script_http *)t;
    s->calls++;
    snprintf(s->method, sizeof s->method, "%s", req->method);
    snprintf(s->url, sizeof s->url, "%s", req->url);
    const char *a = rd_headers_get(req->headers, "Authorization");
    snprintf(s->auth, sizeof s->auth, "%s", a ? a : "");
    free(s->sent);
    s->sent = calloc(1, req->body_len + 1);
    if (req->body_len)
        memcpy(s->sent, req->body, req->body_len);
    if (s->fail != RD_OK)
        return rd_error_set(err, s->fail, "GET 127.0.0.1: Connection refused");
    resp->status = s->status;
    if (s->retry_after)
        rd_headers_add(&resp->headers, "Retry-After", s->retry_after);
    if (s->body)
        rd_buf_puts(&resp->body, s->body);
    return RD_OK;
}

static void script_destroy(rd_http_transport *t)
{
    (void)t;
}

static const rd_http_transport_vtable script_vt = { script_send, script_destroy };

static rd_cloud *open_scripted(script_http *s)
{
    memset(s, 0, sizeof *s);
    s->base.vt = &script_vt;
    clear_env();
    rd_cloud_options o = { 0 };
    o.server = "http://127.0.0.1:8470/";
    o.token = TOKEN;
    o.no_credentials_file = 1;
    o.transport = &s->base;
    rd_cloud *c = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_cloud_open(&o, &c, &err), RD_OK);
    return c;
}

static void test_calls_and_replies(void **state)
{
    (void)state;
    script_http s;
    rd_cloud *c = open_scripted(&s);
    rd_error err;
    rd_error_clear(&err);

    s.status = 200;
    s.body = "{\"user\":\"alice\",\"server_admin\":false,\"projects\":[]}";
    rd_cloud_whoami w;
    assert_int_equal(rd_cloud_get_whoami(c, &w, &err), RD_OK);
    assert_string_equal(w.user, "alice");
    assert_false(w.server_admin);
    rd_cloud_whoami_free(&w);
    assert_string_equal(s.method, "GET");
    assert_string_equal(s.url, "http://127.0.0.1:8470/v1/whoami");
    assert_string_equal(s.auth, "Bearer " TOKEN);

    /* variables: values in clear, in the server's order */
    s.body = "{\"environment\":\"dev\",\"variables\":{\"B\":\"2\",\"A\":\"1\"}}";
    rd_dotenv vars;
    assert_int_equal(rd_cloud_get_variables(c, "demo", "dev", &vars, &err), RD_OK);
    assert_int_equal(vars.count, 2);
    assert_string_equal(rd_dotenv_get(&vars, "A"), "1");
    assert_string_equal(s.url, "http://127.0.0.1:8470/v1/projects/demo/variables/dev");
    /* a PATCH of set only, never unset */
    s.body = "{\"environment\":\"dev\",\"set\":[\"B\",\"A\"],\"unset\":[]}";
    assert_int_equal(rd_cloud_set_variables(c, "demo", "dev", &vars, &err), RD_OK);
    assert_string_equal(s.method, "PATCH");
    assert_string_equal(s.sent, "{\"set\":{\"B\":\"2\",\"A\":\"1\"},\"unset\":[]}");
    rd_dotenv_free(&vars);

    /* deployments, newest first */
    s.body = "{\"deployments\":[{\"version\":2,\"active\":true,\"created_at\":\"t2\",\"created_by\":\"alice\","
             "\"sha256\":\"ab\",\"environment\":\"prod\"},{\"version\":1,\"active\":false,\"created_at\":\"t1\","
             "\"created_by\":\"bob\",\"sha256\":\"cd\",\"environment\":\"prod\"}]}";
    rd_cloud_deployment *d = NULL;
    size_t n = 0;
    assert_int_equal(rd_cloud_list_deployments(c, "demo", &d, &n, &err), RD_OK);
    assert_int_equal(n, 2);
    assert_int_equal(d[0].version, 2);
    assert_true(d[0].active);
    assert_string_equal(d[1].created_by, "bob");
    rd_cloud_deployments_free(d, n);

    /* names are checked before anything is sent */
    int calls = s.calls;
    assert_int_equal(rd_cloud_get_variables(c, "Demo", "dev", &vars, &err), RD_E_USAGE);
    assert_int_equal(rd_cloud_get_variables(c, "demo", "staging", &vars, &err), RD_E_USAGE);
    assert_int_equal(s.calls, calls);
    rd_cloud_free(c);
    free(s.sent);
}

typedef struct reply_case {
    int status;
    const char *body, *retry_after;
    rd_status want;
    const char *says; /* in the message */
} reply_case;

static void test_error_replies(void **state)
{
    (void)state;
    static const reply_case cases[] = {
        { 401, "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"authentication required\"}}", NULL, RD_E_AUTH,
          "refused the token: run `redduck login`" },
        { 403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"no\"}}", NULL, RD_E_DENIED,
          "the editor role with prod access" },
        { 404, "{\"error\":{\"code\":\"NotFound\",\"message\":\"no project demo (or you are not a member of it)\"}}",
          NULL, RD_E_NOT_FOUND, "no project demo on http://127.0.0.1:8470: deploy it first (`redduck deploy`)" },
        { 404, "{\"error\":{\"code\":\"NotFound\",\"message\":\"project demo has no version 9\"}}", NULL,
          RD_E_NOT_FOUND, "project demo has no version 9 (on http://127.0.0.1:8470)" },
        { 404, "", NULL, RD_E_NOT_FOUND, "no project demo on http://127.0.0.1:8470: deploy it first" },
        { 429, "{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"slow down\"}}", "42", RD_E_REMOTE, "42 s" },
        { 500, "{\"error\":{\"code\":\"Internal\",\"message\":\"disk full\"}}", NULL, RD_E_REMOTE,
          "HTTP 500: disk full" },
        { 503, "<html>bad gateway</html>", NULL, RD_E_REMOTE, "HTTP 503" },
        { 400, "{\"error\":{\"code\":\"InvalidName\",\"message\":\"bad name\"}}", NULL, RD_E_USAGE, "bad name" },
        { 200, "not json", NULL, RD_E_REMOTE, "not JSON" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        script_http s;
        rd_cloud *c = open_scripted(&s);
        s.status = cases[i].status;
        s.body = cases[i].body;
        s.retry_after = cases[i].retry_after;
        rd_error err;
        rd_error_clear(&err);
        rd_dotenv vars;
        rd_status st = rd_cloud_get_variables(c, "demo", "prod", &vars, &err);
        if (st != cases[i].want || !strstr(err.message, cases[i].says))
            fail_msg("HTTP %d: got %s \"%s\"", cases[i].status, rd_status_str(st), err.message);
        assert_null(strstr(err.message, "rdk_"));
        assert_null(strchr(err.message, '\n'));
        rd_cloud_free(c);
        free(s.sent);
    }
    /* unreachable */
    script_http s;
    rd_cloud *c = open_scripted(&s);
    s.fail = RD_E_NETWORK;
    rd_error err;
    rd_error_clear(&err);
    rd_cloud_whoami w;
    assert_int_equal(rd_cloud_get_whoami(c, &w, &err), RD_E_NETWORK);
    assert_string_equal(err.message, "cannot reach the redduck server at http://127.0.0.1:8470: is it running? "
                                     "(check REDDUCK_SERVER or `redduck login --server`)");
    /* a certificate problem says how to trust the CA */
    s.fail = RD_E_CONFIG;
    assert_int_equal(rd_cloud_get_whoami(c, &w, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "--ca-cert"));
    rd_cloud_free(c);
    free(s.sent);
}

static void test_invalid_project_problems(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *yaml = join(dir, "redduck.yaml");
    write_file(yaml, "name: demo\n", 0644);
    script_http s;
    rd_cloud *c = open_scripted(&s);
    s.status = 422;
    s.body = "{\"error\":{\"code\":\"InvalidProject\",\"message\":\"fix it\",\"problems\":[\"redduck.yaml:3: unknown "
             "key 'nme'\",\"sources/a.yaml:1: no connector 'x'\"]}}";
    rd_error err;
    rd_error_clear(&err);
    rd_cloud_deploy_result r;
    assert_int_equal(rd_cloud_deploy(c, dir, "demo", "prod", &r, &err), RD_E_CONFIG);
    assert_string_equal(s.method, "POST");
    assert_string_equal(s.url, "http://127.0.0.1:8470/v1/projects/demo/deployments?environment=prod");
    assert_non_null(strstr(err.message, "\n  redduck.yaml:3: unknown key 'nme'\n  sources/a.yaml:1: no connector 'x'"));

    /* a good deploy: the version and what is missing */
    s.status = 201;
    s.body = "{\"project\":\"demo\",\"version\":3,\"sha256\":\"00ff\",\"environment\":\"prod\",\"missing\":[{"
             "\"connector\":\"rs\",\"keys\":[\"connector.rs.aws_access_key_id\",\"connector.rs.aws_secret_access_key\"]"
             "}]}";
    assert_int_equal(rd_cloud_deploy(c, dir, "demo", "prod", &r, &err), RD_OK);
    assert_int_equal(r.version, 3);
    assert_int_equal(r.nmissing, 1);
    assert_string_equal(r.missing[0].connector, "rs");
    assert_int_equal(r.missing[0].nkeys, 2);
    assert_string_equal(r.missing[0].keys[1], "connector.rs.aws_secret_access_key");
    assert_int_equal(r.nfiles, 1);
    /* what was uploaded is a gzip stream */
    assert_true((unsigned char)s.sent[0] == 0x1f && (unsigned char)s.sent[1] == 0x8b);
    rd_cloud_deploy_result_free(&r);
    rd_cloud_free(c);
    free(s.sent);
    rm_rf(dir);
    free(yaml);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_diff),
        cmocka_unit_test(test_pull_merge),
        cmocka_unit_test(test_pull_merge_failure_keeps_file),
        cmocka_unit_test(test_gitignore_env),
        cmocka_unit_test(test_check_url),
        cmocka_unit_test(test_project_name),
        cmocka_unit_test(test_credentials_file),
        cmocka_unit_test(test_resolution_order),
        cmocka_unit_test(test_calls_and_replies),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_invalid_project_problems),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
