/* test_cache_and_local_providers.c — the credential cache (refresh window, keeping still-valid credentials when a refresh
 * fails, one refresh at a time across threads), the static and environment providers, and
 * credential_process output parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/creds_chain.h"
#include "aws/parse.h"

static time_t clock_now;
static time_t fake_now(void)
{
    return clock_now;
}

typedef struct counting {
    rd_creds_provider base;
    atomic_int calls;
    int fail;
    time_t lifetime;
} counting;

static rd_status counting_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    counting *c = (counting *)base;
    int n = atomic_fetch_add(&c->calls, 1) + 1;
    usleep(2000); /* widen the window for concurrent callers */
    if (c->fail)
        return rd_error_set(err, RD_E_NETWORK, "refresh failed");
    char key[32];
    snprintf(key, sizeof key, "KEY%d", n);
    rd_credentials_set(&out->access_key_id, key);
    rd_credentials_set(&out->secret_access_key, "s");
    out->expiration = clock_now + c->lifetime;
    return RD_OK;
}

static void counting_destroy(rd_creds_provider *base)
{
    (void)base;
}

static const rd_creds_provider_vtable counting_vt = { "counting", counting_get, counting_destroy };

static void test_cache_refresh_window(void **state)
{
    (void)state;
    counting inner = { { &counting_vt }, 0, 0, 3600 };
    rd_creds_ctx ctx = { 0 };
    ctx.now = fake_now;
    clock_now = 1000000;
    rd_creds_provider *cache;
    rd_error err;
    assert_int_equal(rd_creds_cached_new(&ctx, &inner.base, &cache, &err), RD_OK);
    rd_credentials c;
    assert_int_equal(rd_creds_provider_get(cache, &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "KEY1");
    rd_credentials_free(&c);
    clock_now += 3600 - RD_CREDS_REFRESH_WINDOW_S - 1; /* still fresh */
    assert_int_equal(rd_creds_provider_get(cache, &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "KEY1");
    rd_credentials_free(&c);
    clock_now += 2; /* inside the refresh window */
    assert_int_equal(rd_creds_provider_get(cache, &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "KEY2");
    rd_credentials_free(&c);
    /* a failed refresh keeps credentials that are still good beyond the mandatory window */
    inner.fail = 1;
    clock_now += 3600 - RD_CREDS_REFRESH_WINDOW_S + 1;
    assert_int_equal(rd_creds_provider_get(cache, &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "KEY2");
    rd_credentials_free(&c);
    clock_now += RD_CREDS_REFRESH_WINDOW_S; /* now within 10 minutes of expiry: the failure surfaces */
    rd_error_clear(&err);
    assert_int_equal(rd_creds_provider_get(cache, &c, &err), RD_E_NETWORK);
    assert_string_equal(err.message, "refresh failed");
    assert_null(c.access_key_id);
    rd_creds_provider_free(cache); /* destroys inner through its (no-op) vtable */
}

typedef struct thread_arg {
    rd_creds_provider *cache;
    int ok;
} thread_arg;

static void *hammer(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 50; i++) {
        rd_credentials c;
        rd_error err;
        if (rd_creds_provider_get(a->cache, &c, &err) == RD_OK && c.access_key_id)
            a->ok++;
        rd_credentials_free(&c);
    }
    return NULL;
}

static void test_cache_threads_refresh_once(void **state)
{
    (void)state;
    counting inner = { { &counting_vt }, 0, 0, 0 };
    rd_creds_ctx ctx = { 0 };
    ctx.now = fake_now;
    clock_now = 5000000;
    inner.lifetime = 7200;
    rd_creds_provider *cache;
    rd_error err;
    assert_int_equal(rd_creds_cached_new(&ctx, &inner.base, &cache, &err), RD_OK);
    pthread_t t[8];
    thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i].cache = cache;
        args[i].ok = 0;
        pthread_create(&t[i], NULL, hammer, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].ok, 50);
    }
    assert_int_equal(atomic_load(&inner.calls), 1);
    rd_creds_provider_free(cache);
}

static void test_static_and_env(void **state)
{
    (void)state;
    rd_creds_provider *p;
    rd_error err;
    assert_int_equal(rd_creds_static_new("AK", NULL, NULL, "explicit", NULL, &p, &err), RD_E_CONFIG);
    assert_int_equal(rd_creds_env_new(&p, &err), RD_OK);
    rd_credentials c;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_SECURITY_TOKEN");
    assert_int_equal(rd_creds_provider_get(p, &c, &err), RD_E_NOT_FOUND);
    setenv("AWS_ACCESS_KEY_ID", "ENVAK", 1);
    assert_int_equal(rd_creds_provider_get(p, &c, &err), RD_E_CONFIG); /* partial */
    assert_non_null(strstr(err.message, "AWS_SECRET_ACCESS_KEY"));
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSK", 1);
    setenv("AWS_SECURITY_TOKEN", "legacy", 1);
    assert_int_equal(rd_creds_provider_get(p, &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "ENVAK");
    assert_string_equal(c.session_token, "legacy");
    assert_string_equal(c.provider, "env");
    rd_credentials_free(&c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SECURITY_TOKEN");
    rd_creds_provider_free(p);
}

/* Parser errors say where (line, column), never what: jansson's and libxml2's own texts quote the input. */
static void test_parse_errors_do_not_quote_input(void **state)
{
    (void)state;
    rd_credentials c;
    rd_credentials_init(&c);
    rd_error err;
    rd_error_clear(&err);
    const char *process = "{\"Version\": 1, \"AccessKeyId\": \"AKID\", \"SecretAccessKey\": wJalrXUtnFEMI/K7MDENG}";
    assert_int_equal(rd_creds_parse_process_output(process, strlen(process), &c, &err), RD_E_AUTH);
    assert_null(strstr(err.message, "wJalr"));
    assert_null(strstr(err.message, "near"));
    assert_non_null(strstr(err.message, "line 1, column"));
    static const char *const json[] = {
        "{\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG", /* ends inside the string */
        "{\"Token\": \"wJalrXUtnFEMI\"\n \"AccessKeyId\" x}",
        "{\"a\": 1} wJalrXUtnFEMI",
        "\"wJalrXUtnFEMI\"",
        "[\"wJalrXUtnFEMI\"]",
    };
    for (size_t i = 0; i < sizeof json / sizeof *json; i++) {
        json_t *o = NULL;
        rd_error_clear(&err);
        assert_int_not_equal(rd_json_parse_object(json[i], strlen(json[i]), RD_E_REMOTE, "the reply", &o, &err),
                             RD_OK);
        assert_null(o);
        assert_int_equal(err.code, RD_E_REMOTE);
        assert_null(strstr(err.message, "wJalr"));
        assert_non_null(strstr(err.message, "the reply"));
    }
    rd_error_clear(&err);
    json_t *o = NULL;
    assert_int_equal(rd_json_parse_object(json[1], strlen(json[1]), RD_E_REMOTE, "x", &o, &err), RD_E_REMOTE);
    assert_non_null(strstr(err.message, "line 2, column"));
    static const char *const xml[] = {
        "<Credentials><SecretAccessKey>wJalrXUtnFEMI</SecretAccessKey><wJalrXUtnFEMI></Credentials>",
        "<Credentials><SessionToken>wJalrXUtnFEMI&wJalr;</SessionToken></Credentials>",
        "<Credentials>\n<SecretAccessKey>wJalrXUtnFEMI",
        "wJalrXUtnFEMI",
    };
    for (size_t i = 0; i < sizeof xml / sizeof *xml; i++) {
        xmlDocPtr doc = NULL;
        rd_error_clear(&err);
        assert_int_equal(rd_xml_parse(xml[i], strlen(xml[i]), RD_E_REMOTE, "the STS reply", &doc, &err),
                         RD_E_REMOTE);
        assert_null(doc);
        assert_null(strstr(err.message, "wJalr"));
        assert_non_null(strstr(err.message, "the STS reply is not valid XML (line "));
    }
    xmlDocPtr doc = NULL;
    assert_int_equal(rd_xml_parse("<a>ok</a>", 9, RD_E_REMOTE, "x", &doc, &err), RD_OK);
    xmlFreeDoc(doc);
}

static void test_process_output(void **state)
{
    (void)state;
    rd_credentials c;
    rd_credentials_init(&c);
    rd_error err;
    const char *ok = "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRETX\",\"SessionToken\":\"T\","
                     "\"Expiration\":\"2030-01-01T00:00:00Z\"}";
    assert_int_equal(rd_creds_parse_process_output(ok, strlen(ok), &c, &err), RD_OK);
    assert_string_equal(c.access_key_id, "A");
    assert_int_equal(c.expiration, 1893456000);
    rd_credentials_free(&c);
    static const char *const bad[] = {
        "", "[]", "{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRETX\"}",
        "{\"Version\":\"1\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRETX\"}",
        "{\"Version\":1,\"SecretAccessKey\":\"SECRETX\"}",
        "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRETX\",\"Expiration\":\"tomorrow\"}",
        "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"SECRETX\",\"Expiration\":5}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rd_credentials_init(&c);
        rd_error_clear(&err);
        assert_int_equal(rd_creds_parse_process_output(bad[i], strlen(bad[i]), &c, &err), RD_E_AUTH);
        assert_null(strstr(err.message, "SECRETX")); /* the output is never echoed */
        rd_credentials_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_refresh_window),
        cmocka_unit_test(test_cache_threads_refresh_once),
        cmocka_unit_test(test_static_and_env),
        cmocka_unit_test(test_process_output),
        cmocka_unit_test(test_parse_errors_do_not_quote_input),
    };
    return cmocka_run_group_tests_name("credentials", tests, NULL, NULL);
}
