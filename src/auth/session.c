/* session.c — one invocation's AWS context (see include/redduck/session.h): config files, region,
 * logger, HTTP transport and the credential chain, wired together once. Owns those objects; does not own
 * any policy of its own beyond region precedence. */
#include "redduck/session.h"

#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "aws/config.h"
#include "auth/creds_chain.h"
#include "aws/http.h"
#include "auth/session_internal.h"
#include "core/log.h"
#include "services/sts.h"

struct rd_session {
    rd_log log;
    rd_aws_config *cfg;
    rd_http_transport *http;
    rd_creds_ctx ctx;
    rd_creds_provider *chain;
    char *profile;
    char *region;        /* NULL when none configured */
    char *region_source;
    char *endpoint_url;
    char *ca_bundle;     /* NULL: the system's CAs */
    int no_host;         /* rd_session_options.no_host_environment */
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Region precedence as the AWS CLI: flag, AWS_REGION, AWS_DEFAULT_REGION, profile `region`. */
static rd_status session_find_region(rd_session *s, const char *flag, const char *flag_source, rd_error *err)
{
    const char *region = NULL;
    char *source = NULL;
    if (flag && *flag) {
        region = flag;
        source = strdup(flag_source && *flag_source ? flag_source : "--region");
    } else if ((region = env_nonempty("AWS_REGION"))) {
        source = strdup("AWS_REGION");
    } else if ((region = env_nonempty("AWS_DEFAULT_REGION"))) {
        source = strdup("AWS_DEFAULT_REGION");
    } else if ((region = rd_aws_config_profile_get(s->cfg, s->profile, "region")) && *region) {
        source = rd_aws_config_describe(s->cfg, s->profile, "region");
        if (!source)
            source = strdup("config file");
    } else {
        region = NULL;
    }
    if (region) {
        s->region = strdup(region);
        s->region_source = source;
        if (!s->region || !s->region_source)
            return rd_error_set(err, RD_E_INTERNAL, "out of memory");
        /* checked here, before anything is sent: every request of the session uses this region */
        return rd_aws_region_check(s->region, s->region_source, err);
    }
    return RD_OK;
}

rd_status rd_session_new(const rd_session_options *opts, rd_session **out, rd_error *err)
{
    rd_session_options none = { 0 };
    if (!opts)
        opts = &none;
    rd_session *s = calloc(1, sizeof *s);
    if (!s)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    s->log.out = opts->log_stream ? opts->log_stream : stderr;
    s->log.level = opts->verbose >= 2 ? RD_LOG_DEBUG : opts->verbose == 1 ? RD_LOG_INFO : RD_LOG_WARN;

    int host = !opts->no_host_environment;
    s->no_host = !host;
    /* without the host: empty config files (no ~/.aws, no AWS_CONFIG_FILE) and the literal default profile */
    rd_status st = host ? rd_aws_config_load(&s->cfg, err) : rd_aws_config_load_paths(NULL, NULL, &s->cfg, err);
    if (st != RD_OK)
        goto fail;
    s->profile = strdup(host ? rd_aws_profile_name(opts->profile) : "default");
    s->endpoint_url = dup_or_null(opts->endpoint_url);
    if (!s->profile || (opts->endpoint_url && !s->endpoint_url)) {
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        goto fail;
    }
    if (host)
        st = session_find_region(s, opts->region, opts->region_source, err);
    else if (opts->region && *opts->region) /* the flag (the connector's region) only, never AWS_REGION */
        st = session_find_region(s, opts->region, opts->region_source, err);
    if (st != RD_OK)
        goto fail;

    if (host && (st = rd_aws_ca_bundle(s->cfg, s->profile, &s->ca_bundle, err)) != RD_OK)
        goto fail;
    rd_http_options hopts = { 0 };
    hopts.log = &s->log;
    hopts.ca_bundle = s->ca_bundle;
    if ((st = rd_http_curl_new(&hopts, &s->http, err)) != RD_OK)
        goto fail;

    s->ctx.cfg = s->cfg;
    s->ctx.http = s->http;
    s->ctx.log = &s->log;
    s->ctx.region = s->region;
    s->ctx.profile = s->profile;
    s->ctx.now = NULL;

    if (!host) {
        /* the explicit keys only: never the environment, a profile, a container or IMDS */
        if (!opts->access_key_id || !*opts->access_key_id)
            st = rd_error_set(err, RD_E_CONFIG,
                              "no explicit AWS keys, and the host's credentials are not used here: set the "
                              "connector's aws_access_key_id and aws_secret_access_key");
        else
            st = rd_creds_static_new(opts->access_key_id, opts->secret_access_key, opts->session_token, "explicit",
                                     "explicit keys", &s->chain, err);
        if (st != RD_OK)
            goto fail;
        *out = s;
        return RD_OK;
    }
    rd_creds_chain_options copts = { 0 };
    copts.profile = opts->profile;
    copts.access_key_id = opts->access_key_id;
    copts.secret_access_key = opts->secret_access_key;
    copts.session_token = opts->session_token;
    if ((st = rd_creds_chain_new(&s->ctx, &copts, &s->chain, err)) != RD_OK)
        goto fail;
    *out = s;
    return RD_OK;
fail:
    rd_session_free(s);
    return st;
}

void rd_session_free(rd_session *s)
{
    if (!s)
        return;
    rd_creds_provider_free(s->chain);
    rd_http_transport_free(s->http);
    rd_aws_config_free(s->cfg);
    free(s->profile);
    free(s->region);
    free(s->region_source);
    free(s->endpoint_url);
    free(s->ca_bundle);
    free(s);
}

const char *rd_session_profile(const rd_session *s)
{
    return s->profile;
}

rd_status rd_session_region(rd_session *s, const char **region, const char **source, rd_error *err)
{
    if (!s->region)
        return rd_error_set(err, RD_E_CONFIG,
                            "no AWS region configured for profile '%s': pass --region, set AWS_REGION, or run "
                            "`aws configure set region us-east-1 --profile %s`",
                            s->profile, s->profile);
    if (region)
        *region = s->region;
    if (source)
        *source = s->region_source;
    return RD_OK;
}

rd_status rd_session_credentials(rd_session *s, rd_credentials *out, rd_error *err)
{
    return rd_creds_provider_get(s->chain, out, err);
}

void rd_session_client(rd_session *s, const char *region, rd_aws_client *out)
{
    memset(out, 0, sizeof *out);
    out->http = s->http;
    out->creds = s->chain;
    out->cfg = s->cfg;
    out->profile = s->profile;
    out->region = region;
    out->endpoint_url = s->endpoint_url;
    out->no_environment = s->no_host;
    out->log = &s->log;
}

const rd_log *rd_session_log(rd_session *s)
{
    return &s->log;
}

const char *rd_session_endpoint_url(const rd_session *s)
{
    return s->endpoint_url;
}

const char *rd_session_ca_bundle(const rd_session *s)
{
    return s->ca_bundle;
}

rd_status rd_session_whoami(rd_session *s, rd_identity *out, rd_error *err)
{
    rd_aws_client c;
    /* STS answers GetCallerIdentity in every region; without a configured one, ask us-east-1. */
    rd_session_client(s, s->region ? s->region : "us-east-1", &c);
    return rd_sts_get_caller_identity(&c, out, err);
}
