/* creds_static.c — the providers of fixed keys: explicit keys, the AWS_* environment variables, and the
 * keys of a profile in the credentials or config file (botocore's EnvProvider, SharedCredentialProvider,
 * ConfigProvider, partial-credential errors included). */
#include "auth/creds_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/parse.h"
#include "core/timeutil.h"
#include "redduck/buf.h"

/* Fills a credentials value from parts (copies). */
rd_status rd_creds_fill(rd_credentials *out, const char *key, const char *secret, const char *token, time_t exp,
                             const char *provider, const char *source, rd_error *err)
{
    if (rd_credentials_set(&out->access_key_id, key) != RD_OK ||
        rd_credentials_set(&out->secret_access_key, secret) != RD_OK ||
        rd_credentials_set(&out->session_token, rd_creds_nonempty(token)) != RD_OK ||
        rd_credentials_set(&out->provider, provider) != RD_OK || rd_credentials_set(&out->source, source) != RD_OK)
        return rd_creds_oom(err);
    out->expiration = exp;
    return RD_OK;
}

/* --- static ------------------------------------------------------------------------------------------- */

typedef struct static_provider {
    rd_creds_provider base;
    rd_credentials creds;
} static_provider;

static rd_status static_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    static_provider *p = (static_provider *)base;
    rd_credentials_free(out);
    return rd_credentials_copy(out, &p->creds) == RD_OK ? RD_OK : rd_creds_oom(err);
}

static void static_destroy(rd_creds_provider *base)
{
    static_provider *p = (static_provider *)base;
    rd_credentials_free(&p->creds);
    free(p);
}

static const rd_creds_provider_vtable static_vtable = { "static", static_get, static_destroy };

rd_status rd_creds_static_new(const char *access_key_id, const char *secret_access_key, const char *session_token,
                              const char *provider_name, const char *source, rd_creds_provider **out, rd_error *err)
{
    if (!rd_creds_nonempty(access_key_id) || !rd_creds_nonempty(secret_access_key))
        return rd_error_set(err, RD_E_CONFIG, "%s: an access key id needs its secret access key (and vice versa)",
                            provider_name ? provider_name : "explicit credentials");
    static_provider *p = calloc(1, sizeof *p);
    if (!p)
        return rd_creds_oom(err);
    p->base.vt = &static_vtable;
    rd_credentials_init(&p->creds);
    if (rd_creds_fill(&p->creds, access_key_id, secret_access_key, session_token, 0, provider_name ? provider_name : "explicit",
             source, err) != RD_OK) {
        static_destroy(&p->base);
        return RD_E_INTERNAL;
    }
    *out = &p->base;
    return RD_OK;
}

/* --- environment -------------------------------------------------------------------------------------- */

static rd_status env_fetch(rd_credentials *out, rd_error *err)
{
    const char *key = rd_creds_nonempty(getenv("AWS_ACCESS_KEY_ID"));
    const char *secret = rd_creds_nonempty(getenv("AWS_SECRET_ACCESS_KEY"));
    const char *token = rd_creds_nonempty(getenv("AWS_SESSION_TOKEN"));
    if (!token)
        token = rd_creds_nonempty(getenv("AWS_SECURITY_TOKEN"));
    if (!key)
        return rd_error_set(err, RD_E_NOT_FOUND, "AWS_ACCESS_KEY_ID is not set");
    if (!secret)
        return rd_error_set(err, RD_E_CONFIG,
                            "partial credentials in the environment: AWS_ACCESS_KEY_ID is set but "
                            "AWS_SECRET_ACCESS_KEY is not — set both, or unset AWS_ACCESS_KEY_ID");
    return rd_creds_fill(out, key, secret, token, 0, "env", "AWS_ACCESS_KEY_ID", err);
}

static rd_status env_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    (void)base;
    return env_fetch(out, err);
}

static void plain_destroy(rd_creds_provider *base)
{
    free(base);
}

static const rd_creds_provider_vtable env_vtable = { "env", env_get, plain_destroy };

rd_status rd_creds_env_new(rd_creds_provider **out, rd_error *err)
{
    rd_creds_provider *p = calloc(1, sizeof *p);
    if (!p)
        return rd_creds_oom(err);
    p->vt = &env_vtable;
    *out = p;
    return RD_OK;
}

/* --- keys in one of the two files --------------------------------------------------------------------- */

typedef struct file_keys_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
    int credentials_file; /* 1: the shared credentials file, 0: the config file */
} file_keys_provider;

static rd_status file_keys_fetch(const rd_creds_ctx *ctx, const char *profile, int credentials_file,
                                 rd_credentials *out, rd_error *err)
{
    const char *(*get)(const rd_aws_config *, const char *, const char *) =
        credentials_file ? rd_aws_config_credentials_get : rd_aws_config_profile_get;
    const char *key = rd_creds_nonempty(get(ctx->cfg, profile, "aws_access_key_id"));
    const char *secret = rd_creds_nonempty(get(ctx->cfg, profile, "aws_secret_access_key"));
    const char *token = rd_creds_nonempty(get(ctx->cfg, profile, "aws_session_token"));
    if (!token)
        token = rd_creds_nonempty(get(ctx->cfg, profile, "aws_security_token"));
    const char *path = credentials_file ? rd_aws_config_credentials_path(ctx->cfg) : rd_aws_config_config_path(ctx->cfg);
    if (!key && !secret)
        return rd_error_set(err, RD_E_NOT_FOUND, "no keys for profile '%s' in %s", profile, path ? path : "?");
    if (!key || !secret)
        return rd_error_set(err, RD_E_CONFIG,
                            "partial credentials for profile '%s' in %s: %s is missing — add it or remove the other key",
                            profile, path ? path : "?", key ? "aws_secret_access_key" : "aws_access_key_id");
    char *source = rd_aws_config_describe(ctx->cfg, profile, "aws_access_key_id");
    if (!credentials_file) {
        free(source);
        rd_buf b = RD_BUF_INIT;
        rd_buf_printf(&b, "%s [%s%s]", path ? path : "?", strcmp(profile, "default") == 0 ? "" : "profile ", profile);
        source = rd_buf_detach(&b);
    }
    rd_status st = rd_creds_fill(out, key, secret, token, 0, credentials_file ? "shared-credentials-file" : "config-file",
                        source, err);
    free(source);
    return st;
}

static rd_status file_keys_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    file_keys_provider *p = (file_keys_provider *)base;
    return file_keys_fetch(p->ctx, p->profile, p->credentials_file, out, err);
}

static void named_destroy(rd_creds_provider *base)
{
    file_keys_provider *p = (file_keys_provider *)base;
    free(p->profile);
    free(p);
}

static const rd_creds_provider_vtable file_keys_vtable = { "file-keys", file_keys_get, named_destroy };

rd_status rd_creds_file_keys_new(const rd_creds_ctx *ctx, const char *profile, int credentials_file,
                               rd_creds_provider **out, rd_error *err)
{
    file_keys_provider *p = calloc(1, sizeof *p);
    if (!p || !(p->profile = strdup(profile))) {
        free(p);
        return rd_creds_oom(err);
    }
    p->base.vt = &file_keys_vtable;
    p->ctx = ctx;
    p->credentials_file = credentials_file;
    *out = &p->base;
    return RD_OK;
}
