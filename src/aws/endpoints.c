/* endpoints.c — the service table and endpoint resolution (see endpoints.h), in botocore's order:
 * --endpoint-url; AWS_ENDPOINT_URL_<SERVICE>; AWS_ENDPOINT_URL; the profile's services section; the
 * profile's endpoint_url; else the regional AWS endpoint. */
#include "aws/endpoints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/config.h"

const rd_aws_service rd_svc_s3 = { "s3", "S3", "s3", "s3", "s3", NULL, NULL, RD_PROTO_REST_XML, 1 };
const rd_aws_service rd_svc_sts = { "sts", "STS", "sts", "sts", "sts", NULL, "2011-06-15", RD_PROTO_QUERY, 0 };
const rd_aws_service rd_svc_sso = { "sso", "SSO", "sso", "awsssoportal", "portal.sso", NULL, NULL, RD_PROTO_REST_JSON, 0 };
const rd_aws_service rd_svc_redshift_data = { "redshift-data", "REDSHIFT_DATA", "redshift_data", "redshift-data",
                                              "redshift-data", "RedshiftData", NULL, RD_PROTO_JSON11, 0 };
const rd_aws_service rd_svc_redshift = { "redshift", "REDSHIFT", "redshift", "redshift", "redshift", NULL,
                                         "2012-12-01", RD_PROTO_QUERY, 0 };
const rd_aws_service rd_svc_redshift_serverless = { "redshift-serverless", "REDSHIFT_SERVERLESS", "redshift_serverless",
                                                    "redshift-serverless", "redshift-serverless", "RedshiftServerless",
                                                    NULL, RD_PROTO_JSON11, 0 };

const rd_aws_service *rd_aws_service_find(const char *id)
{
    const rd_aws_service *all[] = { &rd_svc_s3, &rd_svc_sts, &rd_svc_sso, &rd_svc_redshift_data, &rd_svc_redshift,
                                    &rd_svc_redshift_serverless };
    for (size_t i = 0; id && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(all[i]->id, id) == 0)
            return all[i];
    return NULL;
}

static int truthy(const char *v)
{
    return v && strcasecmp(v, "true") == 0;
}

static rd_status set_custom(rd_endpoint *out, const char *url, const char *source, rd_error *err)
{
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return rd_error_set(err, RD_E_CONFIG,
                            "endpoint URL '%s' from %s must start with http:// or https:// (e.g. http://127.0.0.1:4566)",
                            url, source);
    size_t n = strlen(url);
    while (n > 8 && url[n - 1] == '/')
        n--;
    if (n >= sizeof out->url)
        return rd_error_set(err, RD_E_CONFIG, "endpoint URL from %s is too long", source);
    memcpy(out->url, url, n);
    out->url[n] = '\0';
    const char *host = strstr(out->url, "://") + 3;
    if (!*host || *host == '/')
        return rd_error_set(err, RD_E_CONFIG, "endpoint URL '%s' from %s has no host", url, source);
    out->custom = 1;
    snprintf(out->source, sizeof out->source, "%s", source);
    return RD_OK;
}

rd_status rd_aws_region_check(const char *region, const char *source, rd_error *err)
{
    size_t n = region ? strlen(region) : 0;
    int ok = n >= 1 && n <= 63;
    for (size_t i = 0; ok && i < n; i++) {
        char c = region[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i + 1 < n))
            ok = 0;
    }
    if (ok)
        return RD_OK;
    /* quoted with non-printing bytes as '?', so the message cannot forge terminal output */
    char shown[68];
    size_t m = 0;
    for (size_t i = 0; region && region[i] && m < 64; i++)
        shown[m++] = region[i] >= 0x20 && region[i] < 0x7f ? region[i] : '?';
    shown[m] = '\0';
    return rd_error_set(err, RD_E_USAGE,
                        "the region '%s%s' from %s is not a valid AWS region name: use letters, digits and '-' "
                        "only, e.g. us-east-1",
                        shown, region && strlen(region) > m ? "..." : "", source ? source : "the configuration");
}

rd_status rd_endpoint_resolve(const rd_aws_service *svc, const char *region, const char *cli_endpoint_url,
                              const rd_aws_config *cfg, const char *profile, int use_environment, rd_endpoint *out,
                              rd_error *err)
{
    memset(out, 0, sizeof *out);
    /* the region also reaches the signature's scope, so it is checked whichever endpoint is used */
    if (region && *region) {
        rd_status st = rd_aws_region_check(region, "the request", err);
        if (st != RD_OK)
            return st;
    }
    if (cli_endpoint_url && *cli_endpoint_url)
        return set_custom(out, cli_endpoint_url, "--endpoint-url", err);

    const char *ignore = use_environment ? getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") : NULL;
    if (!ignore && cfg && profile)
        ignore = rd_aws_config_profile_get(cfg, profile, "ignore_configured_endpoint_urls");
    if (!truthy(ignore)) {
        char env[96];
        snprintf(env, sizeof env, "AWS_ENDPOINT_URL_%s", svc->env_suffix);
        const char *v = use_environment ? getenv(env) : NULL;
        if (v && *v)
            return set_custom(out, v, env, err);
        v = use_environment ? getenv("AWS_ENDPOINT_URL") : NULL;
        if (v && *v)
            return set_custom(out, v, "AWS_ENDPOINT_URL", err);
        if (cfg && profile) {
            const char *services = rd_aws_config_profile_get(cfg, profile, "services");
            if (services && *services) {
                v = rd_aws_config_nested_get(cfg, "services", services, svc->config_key, "endpoint_url");
                if (v && *v) {
                    char src[160];
                    snprintf(src, sizeof src, "[services %s] %s.endpoint_url", services, svc->config_key);
                    return set_custom(out, v, src, err);
                }
            }
            v = rd_aws_config_profile_get(cfg, profile, "endpoint_url");
            if (v && *v) {
                char src[160];
                snprintf(src, sizeof src, "profile %s endpoint_url", profile);
                return set_custom(out, v, src, err);
            }
        }
    }
    if (!region || !*region)
        return rd_error_set(err, RD_E_CONFIG,
                            "no AWS region to reach %s: pass --region, set AWS_REGION, or run "
                            "`aws configure set region us-east-1`",
                            svc->id);
    const char *domain = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
    snprintf(out->url, sizeof out->url, "https://%s.%s.%s", svc->endpoint_prefix, region, domain);
    snprintf(out->source, sizeof out->source, "AWS %s endpoint for %s", svc->id, region);
    return RD_OK;
}
