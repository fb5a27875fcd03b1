/* creds_web_identity.c — STS AssumeRoleWithWebIdentity from a token file re-read at each refresh, from a
 * profile or the AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN environment (botocore 1.43). */
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
#include "services/sts.h"

/* --- web identity --------------------------------------------------------------------------------------- */

typedef struct web_identity_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    int from_env;        /* read AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN / AWS_ROLE_SESSION_NAME at get() */
    char *profile;       /* NULL for the env provider: the session's profile */
    char *role_arn;
    char *token_file;
    char *session_name;
} web_identity_provider;

static rd_status web_identity_fetch(const rd_creds_ctx *ctx, const char *profile, const char *role_arn,
                                    const char *token_file, const char *session_name, const char *source,
                                    rd_credentials *out, rd_error *err)
{
    if (!role_arn || !*role_arn)
        return rd_error_set(err, RD_E_CONFIG,
                            "%s is configured to assume a role with a web identity token (%s) but has no role "
                            "ARN: set role_arn in the profile or the AWS_ROLE_ARN environment variable",
                            source, token_file);
    rd_buf token = RD_BUF_INIT;
    int rc = rd_creds_read_small_file(token_file, &token);
    if (rc) {
        rd_buf_free_secure(&token);
        return rd_error_set(err, RD_E_IO,
                            "cannot read the web identity token file '%s' (%s): %s; check the path or re-create "
                            "the token",
                            token_file, source, strerror(rc));
    }
    rd_aws_client c;
    rd_creds_stack_client(&c, ctx, profile, ctx->region && *ctx->region ? ctx->region : "us-east-1");
    rd_credentials cr;
    rd_credentials_init(&cr);
    /* botocore sends the file's content as read (no stripping). */
    rd_status st = rd_sts_assume_role_with_web_identity(&c, role_arn, session_name, rd_buf_cstr(&token), 0, &cr,
                                                        err);
    rd_buf_free_secure(&token);
    if (st != RD_OK) {
        rd_credentials_free(&cr);
        return st;
    }
    if (rd_credentials_set(&cr.provider, "assume-role-with-web-identity") != RD_OK ||
        rd_credentials_set(&cr.source, source) != RD_OK) {
        rd_credentials_free(&cr);
        return rd_creds_oom(err);
    }
    rd_credentials_free(out);
    *out = cr;
    return RD_OK;
}

static rd_status web_identity_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    web_identity_provider *p = (web_identity_provider *)base;
    if (p->from_env) {
        const char *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
        if (!file || !*file)
            return rd_error_set(err, RD_E_NOT_FOUND, "AWS_WEB_IDENTITY_TOKEN_FILE is not set");
        const char *role = getenv("AWS_ROLE_ARN");
        /* botocore takes each key from the environment first, then from the profile. */
        const char *profile = rd_creds_session_profile(p->ctx);
        if (!role && p->ctx->cfg)
            role = rd_aws_config_get(p->ctx->cfg, profile, "role_arn");
        const char *session = getenv("AWS_ROLE_SESSION_NAME");
        if (!session && p->ctx->cfg)
            session = rd_aws_config_get(p->ctx->cfg, profile, "role_session_name");
        return web_identity_fetch(p->ctx, profile, role, file, session, "AWS_WEB_IDENTITY_TOKEN_FILE", out, err);
    }
    char *source = NULL;
    if (p->ctx->cfg)
        source = rd_aws_config_describe(p->ctx->cfg, p->profile, "web_identity_token_file");
    rd_buf fallback = RD_BUF_INIT;
    if (!source) {
        rd_buf_printf(&fallback, "profile '%s'", p->profile);
        source = rd_buf_detach(&fallback);
        if (!source)
            return rd_creds_oom(err);
    }
    rd_status st = web_identity_fetch(p->ctx, p->profile, p->role_arn, p->token_file, p->session_name, source, out,
                                      err);
    free(source);
    return st;
}

static void web_identity_destroy(rd_creds_provider *base)
{
    web_identity_provider *p = (web_identity_provider *)base;
    free(p->profile);
    free(p->role_arn);
    free(p->token_file);
    free(p->session_name);
    free(p);
}

static const rd_creds_provider_vtable web_identity_vtable = { "assume-role-with-web-identity", web_identity_get,
                                                              web_identity_destroy };

rd_status rd_creds_web_identity_new(const rd_creds_ctx *ctx, const char *profile, const char *role_arn,
                                    const char *token_file, const char *session_name, rd_creds_provider **out,
                                    rd_error *err)
{
    if (!token_file || !*token_file)
        return rd_error_set(err, RD_E_CONFIG, "profile '%s': web_identity_token_file is empty",
                            profile ? profile : "default");
    web_identity_provider *p = calloc(1, sizeof *p);
    if (!p)
        return rd_creds_oom(err);
    p->base.vt = &web_identity_vtable;
    p->ctx = ctx;
    p->profile = strdup(profile ? profile : "default");
    p->role_arn = rd_creds_dup_or_null(role_arn);
    p->token_file = strdup(token_file);
    p->session_name = rd_creds_dup_or_null(session_name);
    if (!p->profile || !p->token_file || (role_arn && !p->role_arn) || (session_name && !p->session_name)) {
        web_identity_destroy(&p->base);
        return rd_creds_oom(err);
    }
    *out = &p->base;
    return RD_OK;
}

rd_status rd_creds_web_identity_env_new(const rd_creds_ctx *ctx, rd_creds_provider **out, rd_error *err)
{
    web_identity_provider *p = calloc(1, sizeof *p);
    if (!p)
        return rd_creds_oom(err);
    p->base.vt = &web_identity_vtable;
    p->ctx = ctx;
    p->from_env = 1;
    *out = &p->base;
    return RD_OK;
}
