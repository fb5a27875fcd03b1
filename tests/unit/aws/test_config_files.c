/* test_config_files.c — the INI dialect of the AWS files (configparser rules), profile mapping, nested values,
 * errors naming file and line, and endpoint resolution precedence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/config.h"
#include "aws/endpoints.h"
#include "aws/ini.h"

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/rd-cfg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_ini_rules(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "; another\n"
                       "[default]\n"
                       "  Region =  eu-west-1  \n"
                       "output: json\n"
                       "s3 =\n"
                       "    max_concurrent_requests = 20\n"
                       "\n"
                       "    endpoint_url = http://127.0.0.1:9000\n"
                       "note = a # not a comment\n"
                       "multi = first\n"
                       "   second\n"
                       "[profile dev]\r\n"
                       "region=us-west-2\r\n";
    rd_ini *ini = NULL;
    rd_error err;
    assert_int_equal(rd_ini_parse(text, strlen(text), "cfg", &ini, &err), RD_OK);
    assert_int_equal(ini->count, 2);
    const rd_ini_section *d = rd_ini_find(ini, "default");
    assert_non_null(d);
    assert_string_equal(rd_ini_get(d, "region")->value, "eu-west-1"); /* keys lowercased, values stripped */
    assert_string_equal(rd_ini_get(d, "output")->value, "json");
    assert_string_equal(rd_ini_get(d, "note")->value, "a # not a comment");
    assert_string_equal(rd_ini_get(d, "multi")->value, "first\nsecond");
    const rd_ini_entry *s3 = rd_ini_get(d, "s3");
    char *v = rd_ini_nested_get(s3, "endpoint_url");
    assert_string_equal(v, "http://127.0.0.1:9000");
    free(v);
    v = rd_ini_nested_get(s3, "max_concurrent_requests");
    assert_string_equal(v, "20");
    free(v);
    assert_null(rd_ini_nested_get(s3, "nope"));
    assert_string_equal(rd_ini_get(rd_ini_find(ini, "profile dev"), "region")->value, "us-west-2");
    rd_ini_free(ini);
}

static void test_ini_errors_name_file_and_line(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int line;
        const char *what;
    } bad[] = {
        { "key = before section\n[default]\n", 1, "before any [section]" },
        { "[default]\nnot a setting\n", 2, "expected `key = value`" },
        { "[default]\na = 1\n[x]\n[default]\n", 4, "appears twice" },
        { "[default]\na = 1\nA = 2\n", 3, "set twice" },
        { "[default]\n= value\n", 2, "no name" },
        { "[]\n", 1, "section header" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rd_ini *ini = NULL;
        rd_error err;
        rd_error_clear(&err);
        assert_int_equal(rd_ini_parse(bad[i].text, strlen(bad[i].text), "/home/u/.aws/config", &ini, &err),
                         RD_E_CONFIG);
        assert_null(ini);
        char where[64];
        snprintf(where, sizeof where, "/home/u/.aws/config:%d:", bad[i].line);
        if (!strstr(err.message, where) || !strstr(err.message, bad[i].what))
            fail_msg("case %zu: %s", i, err.message);
    }
    rd_ini *ini = NULL;
    rd_error err;
    assert_int_equal(rd_ini_load("/nonexistent/dir/config", &ini, &err), RD_E_NOT_FOUND);
    if (geteuid() != 0) { /* root reads anything */
        char *path = write_temp("[default]\n");
        chmod(path, 0);
        assert_int_equal(rd_ini_load(path, &ini, &err), RD_E_CONFIG);
        assert_non_null(strstr(err.message, path));
        unlink(path);
        free(path);
    }
}

static void test_profiles(void **state)
{
    (void)state;
    char *config = write_temp("[default]\nregion = eu-west-1\n"
                              "[profile dev]\nregion = us-west-2\nservices = local\nendpoint_url = http://global:1\n"
                              "[profile \"my team\"]\nregion = ap-south-1\n"
                              "[plain]\nregion = nowhere\n"
                              "[sso-session corp]\nsso_region = eu-central-1\n"
                              "[services local]\ns3 =\n  endpoint_url = http://127.0.0.1:4566\n"
                              "redshift_data =\n  endpoint_url = http://127.0.0.1:4567/\n");
    char *creds = write_temp("[dev]\naws_access_key_id = AKID\nregion = override\n[profile x]\nregion = no\n");
    rd_aws_config *cfg = NULL;
    rd_error err;
    assert_int_equal(rd_aws_config_load_paths(config, creds, &cfg, &err), RD_OK);
    assert_true(rd_aws_config_has_profile(cfg, "default"));
    assert_true(rd_aws_config_has_profile(cfg, "dev"));
    assert_true(rd_aws_config_has_profile(cfg, "my team"));
    assert_false(rd_aws_config_has_profile(cfg, "plain")); /* [plain] in the config file is not a profile */
    assert_false(rd_aws_config_has_profile(cfg, "x"));     /* [profile x] in credentials is not profile x */
    assert_string_equal(rd_aws_config_profile_get(cfg, "dev", "region"), "us-west-2");
    assert_string_equal(rd_aws_config_get(cfg, "dev", "region"), "override"); /* credentials file wins */
    assert_string_equal(rd_aws_config_credentials_get(cfg, "dev", "aws_access_key_id"), "AKID");
    assert_string_equal(rd_aws_config_profile_get(cfg, "my team", "region"), "ap-south-1");
    assert_string_equal(rd_aws_config_section_get(cfg, "sso-session", "corp", "sso_region"), "eu-central-1");
    assert_string_equal(rd_aws_config_nested_get(cfg, "services", "local", "s3", "endpoint_url"),
                        "http://127.0.0.1:4566");
    char *d = rd_aws_config_describe(cfg, "dev", "aws_access_key_id");
    char want[512];
    snprintf(want, sizeof want, "%s [dev]", creds);
    assert_string_equal(d, want);
    free(d);

    /* endpoint precedence: flag, service env, global env, services section, profile endpoint_url, AWS */
    rd_endpoint ep;
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    assert_int_equal(rd_endpoint_resolve(&rd_svc_s3, "us-west-2", NULL, cfg, "dev", 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "http://127.0.0.1:4566");
    assert_true(ep.custom);
    assert_int_equal(rd_endpoint_resolve(&rd_svc_redshift_data, "us-west-2", NULL, cfg, "dev", 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "http://127.0.0.1:4567"); /* trailing slash dropped */
    assert_int_equal(rd_endpoint_resolve(&rd_svc_sts, "us-west-2", NULL, cfg, "dev", 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "http://global:1");
    setenv("AWS_ENDPOINT_URL", "http://env-global:2", 1);
    assert_int_equal(rd_endpoint_resolve(&rd_svc_s3, "us-west-2", NULL, cfg, "dev", 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "http://env-global:2");
    setenv("AWS_ENDPOINT_URL_S3", "http://env-s3:3", 1);
    assert_int_equal(rd_endpoint_resolve(&rd_svc_s3, "us-west-2", NULL, cfg, "dev", 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "http://env-s3:3");
    assert_string_equal(ep.source, "AWS_ENDPOINT_URL_S3");
    /* without the host's environment (a server's run): neither variable, only the configuration given */
    assert_int_equal(rd_endpoint_resolve(&rd_svc_s3, "us-west-2", NULL, NULL, NULL, 0, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "https://s3.us-west-2.amazonaws.com");
    assert_false(ep.custom);
    assert_int_equal(rd_endpoint_resolve(&rd_svc_sts, "us-west-2", NULL, cfg, "dev", 0, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "http://global:1");
    assert_int_equal(rd_endpoint_resolve(&rd_svc_s3, "us-west-2", "http://flag:4", cfg, "dev", 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "http://flag:4");
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    assert_int_equal(rd_endpoint_resolve(&rd_svc_s3, "us-west-2", NULL, cfg, "dev", 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "https://s3.us-west-2.amazonaws.com");
    assert_false(ep.custom);
    assert_int_equal(rd_endpoint_resolve(&rd_svc_s3, "us-west-2", "http://flag:4", cfg, "dev", 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "http://flag:4"); /* the flag always applies */
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    unsetenv("AWS_ENDPOINT_URL_S3");
    unsetenv("AWS_ENDPOINT_URL");
    assert_int_equal(rd_endpoint_resolve(&rd_svc_redshift_data, "cn-north-1", NULL, cfg, "default", 1, &ep, &err),
                     RD_OK);
    assert_string_equal(ep.url, "https://redshift-data.cn-north-1.amazonaws.com.cn");
    assert_int_equal(rd_endpoint_resolve(&rd_svc_sso, "eu-west-1", NULL, cfg, "default", 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "https://portal.sso.eu-west-1.amazonaws.com");
    assert_int_equal(rd_endpoint_resolve(&rd_svc_sts, NULL, NULL, cfg, "default", 1, &ep, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "region"));
    setenv("AWS_ENDPOINT_URL_STS", "ftp://bad", 1);
    assert_int_equal(rd_endpoint_resolve(&rd_svc_sts, "us-east-1", NULL, cfg, "default", 1, &ep, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "AWS_ENDPOINT_URL_STS"));
    unsetenv("AWS_ENDPOINT_URL_STS");
    rd_aws_config_free(cfg);
    unlink(config);
    unlink(creds);
    free(config);
    free(creds);
}

/* botocore's region rule: a region becomes part of a hostname, so anything else is refused before a
 * URL is built, naming where it came from. */
static void test_region_names(void **state)
{
    (void)state;
    rd_error err;
    static const char *const good[] = { "us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1", "a", "A1",
                                        "x0123456789012345678901234567890123456789012345678901234567890y" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(rd_aws_region_check(good[i], "--region", &err), RD_OK);
    static const char *const bad[] = { "evil.example/#", "", "-us-east-1", "us-east-1-", "us east 1", "us_east_1",
                                       "a.b", "us-east-1/", "x@y", "us-east-1\n",
                                       "x01234567890123456789012345678901234567890123456789012345678901y" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rd_error_clear(&err);
        assert_int_equal(rd_aws_region_check(bad[i], "AWS_REGION", &err), RD_E_USAGE);
        assert_non_null(strstr(err.message, "AWS_REGION"));
    }
    /* the resolver refuses it too, whether the default or a configured endpoint would be used */
    rd_endpoint ep;
    rd_error_clear(&err);
    assert_int_equal(rd_endpoint_resolve(&rd_svc_sts, "evil.example/#", NULL, NULL, NULL, 1, &ep, &err), RD_E_USAGE);
    assert_null(strstr(ep.url, "evil"));
    assert_int_equal(rd_endpoint_resolve(&rd_svc_sts, "evil.example/#", "http://127.0.0.1:1", NULL, NULL, 1, &ep, &err),
                     RD_E_USAGE);
    assert_int_equal(rd_endpoint_resolve(&rd_svc_sts, "eu-west-1", NULL, NULL, NULL, 1, &ep, &err), RD_OK);
    assert_string_equal(ep.url, "https://sts.eu-west-1.amazonaws.com");
}

/* AWS_CA_BUNDLE wins over the profile's ca_bundle; "~" is expanded; a missing file is named. */
static void test_ca_bundle(void **state)
{
    (void)state;
    char *home = strdup("/tmp/rd-home-XXXXXX");
    assert_non_null(mkdtemp(home));
    char bundle[512], config[512];
    snprintf(bundle, sizeof bundle, "%s/ca.pem", home);
    FILE *f = fopen(bundle, "w");
    assert_non_null(f);
    fputs("not checked here\n", f);
    fclose(f);
    snprintf(config, sizeof config, "%s/config", home);
    f = fopen(config, "w");
    assert_non_null(f);
    fputs("[profile dev]\nca_bundle = ~/ca.pem\n[profile gone]\nca_bundle = ~/missing.pem\n", f);
    fclose(f);
    const char *old_home = getenv("HOME");
    char *saved_home = old_home ? strdup(old_home) : NULL;
    setenv("HOME", home, 1);
    unsetenv("AWS_CA_BUNDLE");
    rd_aws_config *cfg = NULL;
    rd_error err;
    assert_int_equal(rd_aws_config_load_paths(config, NULL, &cfg, &err), RD_OK);
    char *path = NULL;
    assert_int_equal(rd_aws_ca_bundle(cfg, "default", &path, &err), RD_OK);
    assert_null(path);
    assert_int_equal(rd_aws_ca_bundle(cfg, "dev", &path, &err), RD_OK);
    assert_string_equal(path, bundle);
    free(path);
    assert_int_equal(rd_aws_ca_bundle(cfg, "gone", &path, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "missing.pem"));
    assert_non_null(strstr(err.message, "gone"));
    setenv("AWS_CA_BUNDLE", "/nonexistent/corp-ca.pem", 1);
    assert_int_equal(rd_aws_ca_bundle(cfg, "dev", &path, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "/nonexistent/corp-ca.pem"));
    assert_non_null(strstr(err.message, "AWS_CA_BUNDLE"));
    setenv("AWS_CA_BUNDLE", "~/ca.pem", 1);
    assert_int_equal(rd_aws_ca_bundle(cfg, "gone", &path, &err), RD_OK);
    assert_string_equal(path, bundle);
    free(path);
    unsetenv("AWS_CA_BUNDLE");
    rd_aws_config_free(cfg);
    if (saved_home)
        setenv("HOME", saved_home, 1);
    free(saved_home);
    unlink(bundle);
    unlink(config);
    rmdir(home);
    free(home);
}

/* An INI error names file and line, never the line's text: credentials files hold secrets. */
static void test_ini_errors_do_not_echo_secrets(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "[default]\nwJalrXUtnFEMI/K7MDENG\n",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n",
        "[default]\nwJalrXUtnFEMI/K7MDENG: a\nwJalrXUtnFEMI/K7MDENG: b\n",
        "[wJalrXUtnFEMI/K7MDENG\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        rd_ini *ini = NULL;
        rd_error err;
        rd_error_clear(&err);
        assert_int_equal(rd_ini_parse(texts[i], strlen(texts[i]), "creds", &ini, &err), RD_E_CONFIG);
        assert_null(strstr(err.message, "wJalr"));
        assert_non_null(strstr(err.message, "creds:"));
    }
}

static void test_profile_name_order(void **state)
{
    (void)state;
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_DEFAULT_PROFILE");
    assert_string_equal(rd_aws_profile_name(NULL), "default");
    setenv("AWS_PROFILE", "p", 1);
    assert_string_equal(rd_aws_profile_name(NULL), "p");
    setenv("AWS_DEFAULT_PROFILE", "d", 1);
    assert_string_equal(rd_aws_profile_name(NULL), "d");
    assert_string_equal(rd_aws_profile_name("flag"), "flag");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_DEFAULT_PROFILE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini_rules),
        cmocka_unit_test(test_ini_errors_name_file_and_line),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_profile_name_order),
        cmocka_unit_test(test_region_names),
        cmocka_unit_test(test_ca_bundle),
        cmocka_unit_test(test_ini_errors_do_not_echo_secrets),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
