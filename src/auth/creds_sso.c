/* creds_sso.c — IAM Identity Center: the SSO token cache (~/.aws/sso/cache, keyed by sha1 of the
 * sso_session name or the legacy start URL) and GetRoleCredentials (botocore 1.43). */
#include "auth/creds_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/parse.h"
#include "core/timeutil.h"
#include "services/sso.h"

/* --- SSO ------------------------------------------------------------------------------------------------ */

typedef struct sso_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
} sso_provider;

/* Lowercase hex SHA-1 of s into out[41] (the `aws sso login` token cache key). */
static int sha1_hex(const char *s, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return -1;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : NULL;
}

static rd_status sso_expired(const char *profile, rd_error *err)
{
    return rd_error_set(err, RD_E_AUTH,
                        "The SSO session for profile '%s' has expired or is missing: run `aws sso login --profile %s`",
                        profile, profile);
}

static rd_status sso_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    sso_provider *p = (sso_provider *)base;
    const rd_aws_config *cfg = p->ctx->cfg;
    const char *profile = p->profile;
    if (!cfg)
        return rd_error_set(err, RD_E_NOT_FOUND, "no AWS config loaded");
    const char *role = rd_aws_config_get(cfg, profile, "sso_role_name");
    const char *account = rd_aws_config_get(cfg, profile, "sso_account_id");
    if (!role && !account)
        return rd_error_set(err, RD_E_NOT_FOUND, "profile '%s' has no SSO configuration", profile);

    const char *session = rd_aws_config_get(cfg, profile, "sso_session");
    const char *start_url = rd_aws_config_get(cfg, profile, "sso_start_url");
    const char *region = rd_aws_config_get(cfg, profile, "sso_region");
    if (session) {
        const char *s_url = rd_aws_config_section_get(cfg, "sso-session", session, "sso_start_url");
        const char *s_region = rd_aws_config_section_get(cfg, "sso-session", session, "sso_region");
        if (!s_url && !s_region)
            return rd_error_set(err, RD_E_CONFIG,
                                "profile '%s' names sso_session '%s', but %s has no [sso-session %s] section with "
                                "sso_start_url and sso_region: add it or run `aws configure sso-session`",
                                profile, session, rd_aws_config_config_path(cfg) ? rd_aws_config_config_path(cfg)
                                                                                  : "the config file",
                                session);
        /* botocore: a key set in both the profile and the sso-session must agree. */
        if (s_url && start_url && strcmp(s_url, start_url) != 0)
            return rd_error_set(err, RD_E_CONFIG,
                                "The value for sso_start_url is inconsistent between profile (%s) and sso-session "
                                "(%s): profile '%s', fix one of them",
                                start_url, s_url, profile);
        if (s_region && region && strcmp(s_region, region) != 0)
            return rd_error_set(err, RD_E_CONFIG,
                                "The value for sso_region is inconsistent between profile (%s) and sso-session (%s): "
                                "profile '%s', fix one of them",
                                region, s_region, profile);
        if (s_url)
            start_url = s_url;
        if (s_region)
            region = s_region;
    }
    const char *names[] = { "sso_role_name", "sso_account_id", "sso_start_url", "sso_region" };
    const char *values[] = { role, account, start_url, region };
    rd_buf missing = RD_BUF_INIT;
    for (size_t i = 0; i < 4; i++)
        if (!values[i])
            rd_buf_printf(&missing, "%s%s", missing.len ? ", " : "", names[i]);
    if (missing.len) {
        rd_status st = rd_error_set(err, RD_E_CONFIG,
                                    "The profile \"%s\" is configured to use SSO but is missing required "
                                    "configuration: %s; add the missing keys or run `aws configure sso --profile %s`",
                                    profile, rd_buf_cstr(&missing), profile);
        rd_buf_free(&missing);
        return st;
    }
    rd_buf_free(&missing);

    char key[41];
    if (sha1_hex(session ? session : start_url, key) != 0)
        return rd_error_set(err, RD_E_INTERNAL, "SHA-1 is not available from OpenSSL");
    const char *home = home_dir();
    if (!home)
        return rd_error_set(err, RD_E_CONFIG, "cannot find the home directory for the SSO token cache: set HOME");
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "%s/.aws/sso/cache/%s.json", home, key);
    rd_buf text = RD_BUF_INIT;
    int rc = rd_creds_read_small_file(rd_buf_cstr(&path), &text);
    rd_log_write(p->ctx->log, RD_LOG_DEBUG, "SSO token cache %s: %s", rd_buf_cstr(&path), rc ? strerror(rc) : "read");
    json_t *doc = NULL;
    if (!rc) {
        rd_buf what = RD_BUF_INIT;
        rd_buf_printf(&what, "the SSO token cache file %s", rd_buf_cstr(&path));
        rd_error perr;
        rd_error_clear(&perr);
        rd_status pst = rd_json_parse_object(rd_buf_cstr(&text), text.len, RD_E_AUTH, rd_buf_cstr(&what), &doc,
                                             &perr);
        rd_buf_free(&what);
        if (pst != RD_OK) {
            rd_buf_free_secure(&text);
            rd_buf_free(&path);
            return rd_error_set(err, pst, "profile '%s': %s; run `aws sso login --profile %s`", profile,
                                perr.message, profile);
        }
    }
    rd_buf_free(&path);
    rd_buf_free_secure(&text);
    const char *token = json_string_value(json_object_get(doc, "accessToken"));
    const char *expires = json_string_value(json_object_get(doc, "expiresAt"));
    time_t expiry = 0;
    if (!token || !*token || !expires || rd_time_parse_iso8601(expires, &expiry) != 0 ||
        expiry - rd_creds_ctx_now(p->ctx) <= 0) {
        json_decref(doc);
        return sso_expired(profile, err);
    }

    rd_aws_client c;
    rd_creds_stack_client(&c, p->ctx, profile, region);
    rd_credentials cr;
    rd_credentials_init(&cr);
    rd_status st = rd_sso_get_role_credentials(&c, token, account, role, &cr, err);
    json_decref(doc);
    if (st == RD_E_AUTH) {
        rd_credentials_free(&cr);
        return sso_expired(profile, err);
    }
    if (st != RD_OK) {
        rd_credentials_free(&cr);
        return rd_error_prefix(err, "profile '%s': ", profile);
    }
    rd_buf src = RD_BUF_INIT;
    char *where = rd_aws_config_describe(cfg, profile, "sso_role_name");
    rd_buf_puts(&src, where ? where : profile);
    free(where);
    if (session)
        rd_buf_printf(&src, " via sso-session '%s'", session);
    char *source = rd_buf_detach(&src);
    if (!source || rd_credentials_set(&cr.provider, "sso") != RD_OK ||
        rd_credentials_set(&cr.source, source) != RD_OK ||
        (!cr.account_id && rd_credentials_set(&cr.account_id, account) != RD_OK)) {
        free(source);
        rd_credentials_free(&cr);
        return rd_creds_oom(err);
    }
    free(source);
    rd_credentials_free(out);
    *out = cr;
    return RD_OK;
}

static void sso_destroy(rd_creds_provider *base)
{
    sso_provider *p = (sso_provider *)base;
    free(p->profile);
    free(p);
}

static const rd_creds_provider_vtable sso_vtable = { "sso", sso_get, sso_destroy };

rd_status rd_creds_sso_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out, rd_error *err)
{
    sso_provider *p = calloc(1, sizeof *p);
    if (!p)
        return rd_creds_oom(err);
    p->base.vt = &sso_vtable;
    p->ctx = ctx;
    p->profile = strdup(profile ? profile : "default");
    if (!p->profile) {
        free(p);
        return rd_creds_oom(err);
    }
    *out = &p->base;
    return RD_OK;
}
