/* creds_profile.c — the providers a profile gives (botocore's ProfileProviderBuilder): its role (role_arn
 * with source_profile chains, cycle detection and credential_source; built lazily), its web identity token
 * file, SSO, the credentials file's keys, credential_process and the config file's keys; and the named
 * profile's provider with botocore's explicit-profile rule. */
#include "auth/creds_chain.h"
#include "auth/creds_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redduck/buf.h"

#define MAX_ROLE_CHAIN 16

/* The providers a source profile is resolved with (botocore's ProfileProviderBuilder, env disabled):
 * web identity, SSO, credentials file, credential_process, config file. */
rd_status rd_creds_profile_sources_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out,
                                       rd_error *err)
{
    rd_creds_provider *c = rd_creds_chain_alloc(profile);
    if (!c)
        return rd_creds_oom(err);
    rd_creds_provider *p;
    rd_status st = RD_OK;
    const char *token_file = rd_creds_nonempty(rd_aws_config_get(ctx->cfg, profile, "web_identity_token_file"));
    const char *role = rd_creds_nonempty(rd_aws_config_get(ctx->cfg, profile, "role_arn"));
    if (token_file && role) {
        if ((st = rd_creds_web_identity_new(ctx, profile, role, token_file,
                                            rd_aws_config_get(ctx->cfg, profile, "role_session_name"), &p, err)) ==
            RD_OK)
            st = rd_creds_chain_add(c, p);
    }
    if (st == RD_OK && (st = rd_creds_sso_new(ctx, profile, &p, err)) == RD_OK)
        st = rd_creds_chain_add(c, p);
    if (st == RD_OK && (st = rd_creds_file_keys_new(ctx, profile, 1, &p, err)) == RD_OK)
        st = rd_creds_chain_add(c, p);
    if (st == RD_OK && (st = rd_creds_profile_process_new(ctx, profile, &p, err)) == RD_OK)
        st = rd_creds_chain_add(c, p);
    if (st == RD_OK && (st = rd_creds_file_keys_new(ctx, profile, 0, &p, err)) == RD_OK)
        st = rd_creds_chain_add(c, p);
    if (st != RD_OK) {
        rd_creds_provider_free(c);
        return st;
    }
    *out = c;
    return RD_OK;
}

static int has_static(const rd_creds_ctx *ctx, const char *profile)
{
    return rd_aws_config_get(ctx->cfg, profile, "aws_access_key_id") ||
           rd_aws_config_get(ctx->cfg, profile, "aws_secret_access_key");
}

/* Builds the assume-role provider for `profile` (which has role_arn), resolving source_profile chains.
 * visited holds the profiles already on the chain (cycle detection). */
static rd_status build_assume_role(const rd_creds_ctx *ctx, const char *profile, const char **visited,
                                   size_t nvisited, rd_creds_provider **out, rd_error *err)
{
    const rd_aws_config *cfg = ctx->cfg;
    const char *role = rd_aws_config_get(cfg, profile, "role_arn");
    const char *source_profile = rd_creds_nonempty(rd_aws_config_get(cfg, profile, "source_profile"));
    const char *credential_source = rd_creds_nonempty(rd_aws_config_get(cfg, profile, "credential_source"));
    const char *path = rd_aws_config_config_path(cfg);
    if (rd_creds_nonempty(rd_aws_config_get(cfg, profile, "mfa_serial")))
        return rd_error_set(err, RD_E_CONFIG,
                            "profile '%s' needs an MFA code (mfa_serial), and redduck cannot prompt for one: get "
                            "temporary credentials first (`aws sts get-session-token` or a credential_process) and "
                            "use those",
                            profile);
    if (source_profile && credential_source)
        return rd_error_set(err, RD_E_CONFIG,
                            "profile '%s' in %s has both source_profile and credential_source: keep only one", profile,
                            path ? path : "the config file");
    if (!source_profile && !credential_source)
        return rd_error_set(err, RD_E_CONFIG,
                            "profile '%s' in %s has role_arn but neither source_profile nor credential_source: add "
                            "one of them",
                            profile, path ? path : "the config file");
    rd_creds_provider *source = NULL;
    rd_status st = RD_OK;
    if (credential_source) {
        if (strcmp(credential_source, "Environment") == 0)
            st = rd_creds_env_new(&source, err);
        else if (strcmp(credential_source, "Ec2InstanceMetadata") == 0)
            st = rd_creds_imds_new(ctx, &source, err);
        else if (strcmp(credential_source, "EcsContainer") == 0)
            st = rd_creds_container_new(ctx, &source, err);
        else
            return rd_error_set(err, RD_E_CONFIG,
                                "profile '%s': credential_source '%s' is not one of Environment, Ec2InstanceMetadata, "
                                "EcsContainer",
                                profile, credential_source);
    } else {
        if (!rd_aws_config_has_profile(cfg, source_profile))
            return rd_error_set(err, RD_E_CONFIG,
                                "the source_profile '%s' named by profile '%s' does not exist in %s or %s", source_profile,
                                profile, path ? path : "the config file",
                                rd_aws_config_credentials_path(cfg) ? rd_aws_config_credentials_path(cfg)
                                                                    : "the credentials file");
        int seen = 0;
        for (size_t i = 0; i < nvisited; i++)
            if (strcmp(visited[i], source_profile) == 0)
                seen = 1;
        if (seen && (strcmp(source_profile, profile) != 0 || !has_static(ctx, source_profile))) {
            rd_buf chain = RD_BUF_INIT;
            for (size_t i = 0; i < nvisited; i++)
                rd_buf_printf(&chain, "%s -> ", visited[i]);
            rd_buf_puts(&chain, source_profile);
            st = rd_error_set(err, RD_E_CONFIG, "source_profile loop in %s: %s — break the cycle",
                              path ? path : "the config file", rd_buf_cstr(&chain));
            rd_buf_free(&chain);
            return st;
        }
        if (nvisited >= MAX_ROLE_CHAIN)
            return rd_error_set(err, RD_E_CONFIG, "profile '%s': the source_profile chain is longer than %d", profile,
                                MAX_ROLE_CHAIN);
        int source_is_role = rd_creds_nonempty(rd_aws_config_get(cfg, source_profile, "role_arn")) != NULL;
        if (has_static(ctx, source_profile) || !source_is_role || seen) {
            /* static keys (or web identity, SSO, credential_process) of the source profile */
            rd_creds_provider *sc = NULL;
            if ((st = rd_creds_profile_sources_new(ctx, source_profile, &sc, err)) != RD_OK)
                return st;
            source = sc;
        } else {
            visited[nvisited] = source_profile;
            st = build_assume_role(ctx, source_profile, visited, nvisited + 1, &source, err);
        }
    }
    if (st != RD_OK)
        return st;
    const char *duration = rd_aws_config_get(cfg, profile, "duration_seconds");
    int dur = 0;
    if (duration) {
        char *end = NULL;
        long v = strtol(duration, &end, 10);
        if (!*duration || *end || v <= 0 || v > 43200) {
            rd_creds_provider_free(source);
            return rd_error_set(err, RD_E_CONFIG, "profile '%s': duration_seconds '%s' is not a number of seconds",
                                profile, duration);
        }
        dur = (int)v;
    }
    rd_creds_provider *ar = NULL;
    st = rd_creds_assume_role_new(ctx, profile, source, role, rd_aws_config_get(cfg, profile, "role_session_name"),
                                  rd_aws_config_get(cfg, profile, "external_id"), dur, &ar, err);
    if (st != RD_OK)
        return st;
    /* every link of a role chain caches its own temporary credentials */
    return rd_creds_cached_new(ctx, ar, out, err);
}

/* The profile's role (NOT_FOUND when it has no role_arn), built lazily so a broken role config only
 * matters when the chain reaches it. */
typedef struct profile_role_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
    rd_creds_provider *built;
    pthread_mutex_t lock;
} profile_role_provider;

static rd_status profile_role_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    profile_role_provider *p = (profile_role_provider *)base;
    if (!rd_creds_nonempty(rd_aws_config_get(p->ctx->cfg, p->profile, "role_arn")))
        return rd_error_set(err, RD_E_NOT_FOUND, "profile '%s' has no role_arn", p->profile);
    /* a role profile with a web identity token file is the web-identity provider's */
    if (rd_creds_nonempty(rd_aws_config_get(p->ctx->cfg, p->profile, "web_identity_token_file")) &&
        !rd_aws_config_get(p->ctx->cfg, p->profile, "source_profile") &&
        !rd_aws_config_get(p->ctx->cfg, p->profile, "credential_source"))
        return rd_error_set(err, RD_E_NOT_FOUND, "profile '%s' uses a web identity token", p->profile);
    pthread_mutex_lock(&p->lock);
    rd_status st = RD_OK;
    if (!p->built) {
        const char *visited[MAX_ROLE_CHAIN + 1] = { p->profile };
        st = build_assume_role(p->ctx, p->profile, visited, 1, &p->built, err);
    }
    pthread_mutex_unlock(&p->lock);
    if (st != RD_OK)
        return st;
    return p->built->vt->get(p->built, out, err);
}

static void profile_role_destroy(rd_creds_provider *base)
{
    profile_role_provider *p = (profile_role_provider *)base;
    rd_creds_provider_free(p->built);
    pthread_mutex_destroy(&p->lock);
    free(p->profile);
    free(p);
}

static const rd_creds_provider_vtable profile_role_vtable = { "assume-role", profile_role_get, profile_role_destroy };

rd_status rd_creds_profile_role_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out,
                                    rd_error *err)
{
    profile_role_provider *r = calloc(1, sizeof *r);
    if (!r || !(r->profile = strdup(profile))) {
        free(r);
        return rd_creds_oom(err);
    }
    r->base.vt = &profile_role_vtable;
    r->ctx = ctx;
    pthread_mutex_init(&r->lock, NULL);
    *out = &r->base;
    return RD_OK;
}

rd_status rd_creds_profile_new(const rd_creds_ctx *ctx, const char *profile, int explicit_profile,
                               rd_creds_provider **out, rd_error *err)
{
    if (explicit_profile && !rd_aws_config_has_profile(ctx->cfg, profile))
        return rd_error_set(err, RD_E_CONFIG, "the config profile (%s) could not be found in %s or %s", profile,
                            rd_aws_config_config_path(ctx->cfg) ? rd_aws_config_config_path(ctx->cfg) : "-",
                            rd_aws_config_credentials_path(ctx->cfg) ? rd_aws_config_credentials_path(ctx->cfg) : "-");
    rd_creds_provider *c = rd_creds_chain_alloc(profile), *role = NULL;
    if (!c)
        return rd_creds_oom(err);
    rd_status st = rd_creds_profile_role_new(ctx, profile, &role, err);
    if (st == RD_OK)
        st = rd_creds_chain_add(c, role);
    rd_creds_provider *rest = NULL;
    if (st == RD_OK && (st = rd_creds_profile_sources_new(ctx, profile, &rest, err)) == RD_OK)
        st = rd_creds_chain_add(c, rest);
    if (st != RD_OK) {
        rd_creds_provider_free(c);
        return st == RD_E_INTERNAL ? rd_creds_oom(err) : st;
    }
    *out = c;
    return RD_OK;
}

