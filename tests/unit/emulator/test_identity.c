/* test_identity.c — the emulator's identities/policy, fault draws, the shaping entries of the fault spec and form
 * parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emulator/faults.h"
#include "emulator/form.h"
#include "emulator/iam/identities.h"

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/rd-ids-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_default_identity(void **state)
{
    (void)state;
    rd_emu_ids *ids = NULL;
    rd_error err;
    assert_int_equal(rd_emu_ids_load(NULL, &ids, &err), RD_OK);
    assert_string_equal(rd_emu_ids_account(ids), "000000000000");
    assert_string_equal(rd_emu_ids_region(ids), "us-east-1");
    rd_emu_principal p;
    assert_true(rd_emu_ids_find_key(ids, "test", &p));
    assert_string_equal(p.secret, "test");
    assert_null(p.session_token);
    assert_true(rd_emu_ids_allowed(ids, p.arn, "s3:GetObject", "arn:aws:s3:::b/k"));
    assert_false(rd_emu_ids_find_key(ids, "nope", &p));
    assert_non_null(rd_emu_ids_role_arn(ids, "default"));
    size_t n;
    const char *const *wg = rd_emu_ids_workgroups(ids, &n);
    assert_int_equal(n, 1);
    assert_string_equal(wg[0], "demo");
    rd_emu_ids_free(ids);
}

static const char config[] =
    "{\"account\":\"123456789012\",\"region\":\"eu-west-1\",\n"
    " \"users\":[{\"name\":\"alice\",\"access_key_id\":\"AKIDALICE\",\"secret_access_key\":\"s1\",\n"
    "            \"allow\":[\"s3:*\",\"redshift-data:*\",\"sts:AssumeRole\"],\"deny\":[\"s3:DeleteObject\"]},\n"
    "           {\"name\":\"bob\",\"access_key_id\":\"AKIDBOB\",\"secret_access_key\":\"s2\",\n"
    "            \"allow\":[\"s3:GetObject arn:aws:s3:::public/*\"]}],\n"
    " \"roles\":[{\"name\":\"reader\",\"allow\":[\"s3:GetObject\"],\"web_identity_tokens\":[\"tok-1\"]},\n"
    "           {\"name\":\"unload\",\"allow\":[\"s3:PutObject\"],\"default\":true}],\n"
    " \"sso\":[{\"access_token\":\"sso-tok\",\"account_id\":\"123456789012\",\"role_name\":\"Admin\",\"role\":\"reader\"}]}\n";

static void test_policy_and_sessions(void **state)
{
    (void)state;
    char *path = write_temp(config);
    rd_emu_ids *ids = NULL;
    rd_error err;
    assert_int_equal(rd_emu_ids_load(path, &ids, &err), RD_OK);
    const char *alice = "arn:aws:iam::123456789012:user/alice";
    assert_true(rd_emu_ids_allowed(ids, alice, "s3:GetObject", "arn:aws:s3:::x/y"));
    assert_true(rd_emu_ids_allowed(ids, alice, "S3:putobject", "arn:aws:s3:::x/y")); /* actions are case-blind */
    assert_false(rd_emu_ids_allowed(ids, alice, "s3:DeleteObject", "arn:aws:s3:::x/y")); /* deny wins */
    assert_false(rd_emu_ids_allowed(ids, alice, "redshift-serverless:GetCredentials", "arn:x"));
    const char *bob = "arn:aws:iam::123456789012:user/bob";
    assert_true(rd_emu_ids_allowed(ids, bob, "s3:GetObject", "arn:aws:s3:::public/a/b"));
    assert_false(rd_emu_ids_allowed(ids, bob, "s3:GetObject", "arn:aws:s3:::private/a"));
    /* the default role comes first, whatever its position in the file */
    assert_string_equal(rd_emu_ids_role_arn(ids, "default"), "arn:aws:iam::123456789012:role/unload");
    assert_true(rd_emu_ids_web_token_ok(ids, "arn:aws:iam::123456789012:role/reader", "tok-1"));
    assert_false(rd_emu_ids_web_token_ok(ids, "arn:aws:iam::123456789012:role/reader", "tok-2"));
    assert_string_equal(rd_emu_ids_sso_role(ids, "sso-tok", "123456789012", "Admin"),
                        "arn:aws:iam::123456789012:role/reader");
    assert_null(rd_emu_ids_sso_role(ids, "bad", "123456789012", "Admin"));

    char *key, *secret, *token, *arn, *id;
    time_t exp;
    rd_emu_error ierr;
    assert_int_equal(rd_emu_ids_issue_session(ids, "reader", "s1", 900, 1000, &key, &secret, &token, &arn, &id, &exp,
                                              &ierr),
                     0);
    assert_int_equal(exp, 1900);
    assert_int_equal(strncmp(key, "ASIA", 4), 0);
    assert_string_equal(arn, "arn:aws:sts::123456789012:assumed-role/reader/s1");
    rd_emu_principal p;
    assert_true(rd_emu_ids_find_key(ids, key, &p));
    assert_string_equal(p.secret, secret);
    assert_string_equal(p.session_token, token);
    assert_true(rd_emu_ids_allowed(ids, arn, "s3:GetObject", "arn:aws:s3:::b/k"));
    assert_false(rd_emu_ids_allowed(ids, arn, "s3:PutObject", "arn:aws:s3:::b/k"));
    assert_int_equal(rd_emu_ids_issue_session(ids, "ghost", "s", 900, 1000, &key, &secret, &token, &arn, &id, &exp,
                                              &ierr),
                     -1);
    assert_int_equal(ierr.http_status, 500);
    assert_string_equal(ierr.code, "InternalFailure");
    assert_string_equal(ierr.message, "role ghost does not exist in the emulator config");
    free(key);
    free(secret);
    free(token);
    free(arn);
    free(id);
    rd_emu_ids_free(ids);
    unlink(path);
    free(path);
}

static void test_bad_configs(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"users\": 3}",
        "{\"users\":[{\"name\":\"x\"}]}",
        "{\"users\":[{\"name\":\"x\",\"access_key_id\":\"a\",\"secret_access_key\":\"b\",\"allow\":[1]}]}",
        "{\"sso\":[{\"access_token\":\"t\",\"role_name\":\"r\",\"role\":\"missing\"}]}",
        "[1,2]",
        "{ not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = write_temp(bad[i]);
        rd_emu_ids *ids = NULL;
        rd_error err;
        rd_error_clear(&err);
        assert_int_equal(rd_emu_ids_load(path, &ids, &err), RD_E_CONFIG);
        assert_null(ids);
        assert_non_null(strstr(err.message, path)); /* the message names the file */
        unlink(path);
        free(path);
    }
}

static void test_faults_reproducible(void **state)
{
    (void)state;
    rd_emu_faults *a = NULL, *b = NULL, *c = NULL;
    rd_error err;
    assert_int_equal(rd_emu_faults_parse("s3.get.reset=0.3, latency.ms=20", 7, &a, &err), RD_OK);
    assert_int_equal(rd_emu_faults_parse("s3.get.reset=0.3,latency.ms=20", 7, &b, &err), RD_OK);
    assert_int_equal(rd_emu_faults_parse("s3.get.reset=0.3", 8, &c, &err), RD_OK);
    assert_int_equal(rd_emu_faults_latency_ms(a), 20);
    int fired = 0, same_other_seed = 0;
    for (int i = 0; i < 2000; i++) {
        int x = rd_emu_faults_draw(a, "s3.get.reset");
        assert_int_equal(x, rd_emu_faults_draw(b, "s3.get.reset"));
        same_other_seed += x == rd_emu_faults_draw(c, "s3.get.reset");
        fired += x;
        assert_false(rd_emu_faults_draw(a, "s3.get.slowdown")); /* not configured */
    }
    assert_in_range(fired, 500, 700); /* ~30% */
    assert_true(same_other_seed < 2000);
    rd_emu_faults_free(a);
    rd_emu_faults_free(b);
    rd_emu_faults_free(c);
    assert_int_equal(rd_emu_faults_parse("s3.get.nothing=0.1", 1, &a, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "s3.get.nothing"));
    assert_int_equal(rd_emu_faults_parse("s3.get.reset=2", 1, &a, &err), RD_E_USAGE);
    assert_int_equal(rd_emu_faults_parse("s3.get.reset", 1, &a, &err), RD_E_USAGE);
    /* only plain decimals within bounds: strtod's nan, inf and exponents are refused, naming the entry */
    static const char *const bad[] = { "s3.get.reset=nan", "s3.get.reset=inf", "s3.get.reset=1e-1",
                                       "s3.get.reset=-0.1", "s3.get.reset=0x1", "s3.get.reset= 0.1",
                                       "latency.ms=nan", "latency.ms=inf", "latency.ms=1e30", "latency.ms=60001",
                                       "latency.ms=2.5", "latency.ms=-1", "latency.ms=" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = NULL;
        if (rd_emu_faults_parse(bad[i], 1, &a, &err) != RD_E_USAGE)
            fail_msg("accepted --faults %s", bad[i]);
        assert_null(a);
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(strchr(bad[i], '=') - bad[i]), bad[i]);
        assert_non_null(strstr(err.message, name));
    }
    assert_int_equal(rd_emu_faults_parse("latency.ms=60000,s3.get.reset=1,s3.put.slowdown=0", 1, &a, &err), RD_OK);
    assert_int_equal(rd_emu_faults_latency_ms(a), 60000);
    assert_int_equal(rd_emu_faults_draw(a, "s3.get.reset"), 1);
    rd_emu_faults_free(a);
    assert_int_equal(rd_emu_faults_draw(NULL, "s3.get.reset"), 0);
}

/* Shaping entries: units in steps of 10^3 and 2^10, an optional "/s", their bounds, and refusals that name the
 * entry. */
static void test_faults_shaping(void **state)
{
    (void)state;
    rd_emu_faults *f = NULL;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_emu_faults_parse(NULL, 1, &f, &err), RD_OK);
    assert_false(rd_emu_faults_shaping(f));
    assert_int_equal(rd_emu_faults_get_bandwidth(f), 0);
    assert_true(rd_emu_faults_unload_bytes_per_second(f) == 0);
    rd_emu_faults_free(f);
    assert_false(rd_emu_faults_shaping(NULL));

    static const struct {
        const char *value;
        uint64_t bytes;
    } rates[] = { { "50MB", 50000000u },     { "1.5GB", 1500000000u }, { "800KB/s", 800000u },
                  { "64KiB", 65536u },        { "2MiB", 2097152u },     { "1GiB", 1073741824u },
                  { "1000", 1000u },          { "1000B", 1000u },       { "1KB", 1000u },
                  { "100GB", 100000000000u }, { "3kB", 3000u } };
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "s3.get.bandwidth=%s", rates[i].value);
        assert_int_equal(rd_emu_faults_parse(spec, 1, &f, &err), RD_OK);
        assert_int_equal(rd_emu_faults_get_bandwidth(f), rates[i].bytes);
        assert_true(rd_emu_faults_shaping(f));
        rd_emu_faults_free(f);
    }
    static const char *const bad_rates[] = { "999B", "101GB", "0", "50Mb", "50 MB", "MB", "-5MB", "1e6",
                                             "inf",  "nan",   "50MBs", "1.2.3MB", "50mb", "0x100000", "" };
    for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "s3.get.reset=0.1,s3.get.bandwidth=%s", bad_rates[i]);
        f = NULL;
        assert_int_equal(rd_emu_faults_parse(spec, 1, &f, &err), RD_E_USAGE);
        assert_null(f);
        assert_non_null(strstr(err.message, "s3.get.bandwidth"));
        assert_non_null(strstr(err.message, "1KB to 100GB"));
    }

    assert_int_equal(rd_emu_faults_parse("s3.get.latency.ms=30,unload.mbps=200,latency.ms=5", 1, &f, &err), RD_OK);
    assert_int_equal(rd_emu_faults_get_latency_ms(f), 30);
    assert_int_equal(rd_emu_faults_latency_ms(f), 5); /* the other delay stays its own */
    assert_true(rd_emu_faults_unload_bytes_per_second(f) == 200e6);
    assert_true(rd_emu_faults_shaping(f));
    assert_int_equal(rd_emu_faults_get_bandwidth(f), 0);
    rd_emu_faults_free(f);
    assert_int_equal(rd_emu_faults_parse("unload.mbps=0.5", 1, &f, &err), RD_OK);
    assert_true(rd_emu_faults_unload_bytes_per_second(f) == 0.5e6);
    assert_false(rd_emu_faults_shaping(f)); /* UNLOAD's pace needs no thread per connection */
    rd_emu_faults_free(f);
    assert_int_equal(rd_emu_faults_parse("s3.get.latency.ms=0,s3.get.latency.ms=60000", 1, &f, &err), RD_OK);
    assert_int_equal(rd_emu_faults_get_latency_ms(f), 60000);
    rd_emu_faults_free(f);

    static const char *const bad_latency[] = { "60001", "-1", "1.5", "30ms", "", "1e3" };
    for (size_t i = 0; i < sizeof bad_latency / sizeof bad_latency[0]; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "s3.get.latency.ms=%s", bad_latency[i]);
        assert_int_equal(rd_emu_faults_parse(spec, 1, &f, &err), RD_E_USAGE);
        assert_non_null(strstr(err.message, "s3.get.latency.ms"));
        assert_non_null(strstr(err.message, "0 to 60000"));
    }
    static const char *const bad_mbps[] = { "0", "0.001", "100001", "-3", "fast", "200MB", "" };
    for (size_t i = 0; i < sizeof bad_mbps / sizeof bad_mbps[0]; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "unload.mbps=%s", bad_mbps[i]);
        assert_int_equal(rd_emu_faults_parse(spec, 1, &f, &err), RD_E_USAGE);
        assert_non_null(strstr(err.message, "unload.mbps"));
    }
    /* an unknown name's message lists the shaping names too */
    assert_int_equal(rd_emu_faults_parse("s3.get.bandwith=5MB", 1, &f, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "s3.get.bandwidth, s3.get.latency.ms, unload.mbps"));
}

static void test_form(void **state)
{
    (void)state;
    const char *body = "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=a+b&Empty=&Flag";
    rd_form f;
    assert_int_equal(rd_form_parse(body, strlen(body), 1, &f), RD_OK);
    assert_int_equal(f.count, 5);
    assert_string_equal(rd_form_get(&f, "Action"), "AssumeRole");
    assert_string_equal(rd_form_get(&f, "RoleArn"), "arn:aws:iam::1:role/r");
    assert_string_equal(rd_form_get(&f, "RoleSessionName"), "a b");
    assert_string_equal(rd_form_get(&f, "Empty"), "");
    assert_true(rd_form_has(&f, "Flag"));
    assert_null(rd_form_get(&f, "Missing"));
    rd_form_free(&f);
    assert_int_equal(rd_form_parse("k=a+b%2", 7, 0, &f), RD_OK);
    assert_string_equal(rd_form_get(&f, "k"), "a+b%2"); /* query strings keep '+'; a bad escape stays */
    rd_form_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_identity), cmocka_unit_test(test_policy_and_sessions),
        cmocka_unit_test(test_bad_configs),      cmocka_unit_test(test_faults_reproducible),
        cmocka_unit_test(test_faults_shaping),   cmocka_unit_test(test_form),
    };
    return cmocka_run_group_tests_name("emulator identities", tests, NULL, NULL);
}
