/* creds_chain.c — a provider made of providers (asked in order), and the default chain in the AWS CLI's
 * order (see creds_chain.h), as botocore's credentials.py builds it: explicit keys, the environment, the
 * profile (creds_profile.c), container, IMDS, behind the cache. The profile rules live in creds_profile.c. */
#include "auth/creds_chain.h"
#include "auth/creds_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

time_t rd_creds_ctx_now(const rd_creds_ctx *ctx)
{
    return ctx && ctx->now ? ctx->now() : time(NULL);
}

/* --- the chain ------------------------------------------------------------------------------------------ */

typedef struct chain_provider {
    rd_creds_provider base;
    rd_creds_provider **items;
    size_t count;
    char *profile;
    int top;             /* the default chain: exhausted → RD_E_AUTH; nested chains pass with NOT_FOUND */
    char *missing_message;
} chain_provider;

static rd_status chain_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    chain_provider *p = (chain_provider *)base;
    if (p->missing_message)
        return rd_error_set(err, RD_E_CONFIG, "%s", p->missing_message);
    for (size_t i = 0; i < p->count; i++) {
        rd_error e;
        rd_error_clear(&e);
        rd_credentials_free(out);
        rd_status st = p->items[i]->vt->get(p->items[i], out, &e);
        if (st == RD_OK)
            return RD_OK;
        if (st != RD_E_NOT_FOUND) {
            if (err)
                *err = e;
            return st;
        }
    }
    if (!p->top)
        return rd_error_set(err, RD_E_NOT_FOUND, "the profile '%s' has no credentials (no keys, web identity, SSO or "
                                                 "credential_process)",
                            p->profile);
    return rd_error_set(err, RD_E_AUTH,
                        "unable to locate credentials for profile '%s': configure them with `aws configure%s%s`, set "
                        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use `aws sso login`",
                        p->profile, strcmp(p->profile, "default") ? " --profile " : "",
                        strcmp(p->profile, "default") ? p->profile : "");
}

static void chain_destroy(rd_creds_provider *base)
{
    chain_provider *p = (chain_provider *)base;
    for (size_t i = 0; i < p->count; i++)
        rd_creds_provider_free(p->items[i]);
    free(p->items);
    free(p->profile);
    free(p->missing_message);
    free(p);
}

static const rd_creds_provider_vtable chain_vtable = { "chain", chain_get, chain_destroy };

rd_status rd_creds_chain_add(rd_creds_provider *chain, rd_creds_provider *p)
{
    chain_provider *c = (chain_provider *)chain;
    rd_creds_provider **a = realloc(c->items, (c->count + 1) * sizeof *a);
    if (!a) {
        rd_creds_provider_free(p);
        return RD_E_INTERNAL;
    }
    c->items = a;
    c->items[c->count++] = p;
    return RD_OK;
}

static chain_provider *chain_alloc(const char *profile)
{
    chain_provider *c = calloc(1, sizeof *c);
    if (!c || !(c->profile = strdup(profile))) {
        free(c);
        return NULL;
    }
    c->base.vt = &chain_vtable;
    return c;
}

static rd_status chain_add(chain_provider *c, rd_creds_provider *p)
{
    return rd_creds_chain_add(&c->base, p);
}

rd_creds_provider *rd_creds_chain_alloc(const char *profile)
{
    chain_provider *c = chain_alloc(profile);
    return c ? &c->base : NULL;
}

/* --- the default chain ------------------------------------------------------------------------------------ */

rd_status rd_creds_chain_new(const rd_creds_ctx *ctx, const rd_creds_chain_options *opts, rd_creds_provider **out,
                             rd_error *err)
{
    rd_creds_chain_options none = { 0 };
    if (!opts)
        opts = &none;
    const char *profile = rd_aws_profile_name(opts->profile);
    /* A profile named by --profile or AWS_PROFILE must exist (botocore's ProfileNotFound). */
    int named = rd_creds_nonempty(opts->profile) || rd_creds_nonempty(getenv("AWS_PROFILE")) || rd_creds_nonempty(getenv("AWS_DEFAULT_PROFILE"));
    chain_provider *c = chain_alloc(profile);
    if (!c)
        return rd_creds_oom(err);
    c->top = 1;
    rd_creds_provider *p = NULL;
    rd_status st = RD_OK;
    if (rd_creds_nonempty(opts->access_key_id) || rd_creds_nonempty(opts->secret_access_key)) {
        if ((st = rd_creds_static_new(opts->access_key_id, opts->secret_access_key, opts->session_token, "explicit",
                                      "explicit keys", &p, err)) == RD_OK)
            st = chain_add(c, p);
    }
    if (st == RD_OK && named && !rd_aws_config_has_profile(ctx->cfg, profile)) {
        /* botocore refuses a named profile that exists nowhere, even when the environment has keys;
         * explicit keys (flags, project) still win because they come first */
        rd_error e;
        rd_error_clear(&e);
        rd_creds_profile_new(ctx, profile, 1, &p, &e);
        chain_provider *missing = chain_alloc(profile);
        if (!missing || !(missing->missing_message = strdup(e.message))) {
            if (missing)
                chain_destroy(&missing->base);
            st = RD_E_INTERNAL;
        } else {
            st = chain_add(c, &missing->base);
        }
    } else if (st == RD_OK) {
        /* botocore: an explicitly passed profile negates the environment provider */
        if (!rd_creds_nonempty(opts->profile) && (st = rd_creds_env_new(&p, err)) == RD_OK)
            st = chain_add(c, p);
        /* role_arn profiles, web identity (env, then profile), SSO, credentials file, process, config file */
        if (st == RD_OK && (st = rd_creds_profile_role_new(ctx, profile, &p, err)) == RD_OK)
            st = chain_add(c, p);
        if (st == RD_OK && (st = rd_creds_web_identity_env_new(ctx, &p, err)) == RD_OK)
            st = chain_add(c, p);
        /* the profile's own web_identity_token_file, SSO, credentials file, process, config file */
        rd_creds_provider *rest = NULL;
        if (st == RD_OK && (st = rd_creds_profile_sources_new(ctx, profile, &rest, err)) == RD_OK)
            st = chain_add(c, rest);
        if (st == RD_OK && (st = rd_creds_container_new(ctx, &p, err)) == RD_OK)
            st = chain_add(c, p);
        if (st == RD_OK && (st = rd_creds_imds_new(ctx, &p, err)) == RD_OK)
            st = chain_add(c, p);
    }
    if (st != RD_OK) {
        chain_destroy(&c->base);
        return st == RD_E_INTERNAL ? rd_creds_oom(err) : st;
    }
    return rd_creds_cached_new(ctx, &c->base, out, err);
}
