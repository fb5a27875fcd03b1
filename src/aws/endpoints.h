/* endpoints.h — which URL each AWS service is reached at, resolved as the AWS CLI does:
 * --endpoint-url, AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, `services` section of the profile
 * (`[services NAME]` with `<service_key> =\n  endpoint_url = …`), profile `endpoint_url`, otherwise the
 * regional AWS endpoint. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS / ignore_configured_endpoint_urls honoured.
 * Owns the table of services redduck speaks to. */
#ifndef RD_AWS_ENDPOINTS_H
#define RD_AWS_ENDPOINTS_H

#include "redduck/error.h"

struct rd_aws_config;

typedef enum rd_aws_protocol {
    RD_PROTO_JSON11,   /* POST /, X-Amz-Target */
    RD_PROTO_QUERY,    /* form POST Action=&Version=, XML reply */
    RD_PROTO_REST_XML, /* S3 */
    RD_PROTO_REST_JSON /* SSO portal */
} rd_aws_protocol;

typedef struct rd_aws_service {
    const char *id;             /* "s3", "sts", "sso", "redshift-data", "redshift", "redshift-serverless" */
    const char *env_suffix;     /* "S3", "STS", "SSO", "REDSHIFT_DATA", "REDSHIFT", "REDSHIFT_SERVERLESS" */
    const char *config_key;     /* key in a services section: "s3", "sts", "sso", "redshift_data", ... */
    const char *signing_name;   /* "s3", "sts", "awsssoportal", "redshift-data", ... */
    const char *endpoint_prefix;/* "s3", "sts", "portal.sso", "redshift-data", ... */
    const char *target_prefix;  /* JSON 1.1 X-Amz-Target prefix ("RedshiftData"), else NULL */
    const char *api_version;    /* query protocol Version=, else NULL */
    rd_aws_protocol protocol;
    int s3_rules;               /* sigv4 S3 rules */
} rd_aws_service;

extern const rd_aws_service rd_svc_s3, rd_svc_sts, rd_svc_sso, rd_svc_redshift_data, rd_svc_redshift,
    rd_svc_redshift_serverless;

/* Looks a service up by id; NULL if unknown. */
const rd_aws_service *rd_aws_service_find(const char *id);

typedef struct rd_endpoint {
    char url[512];       /* scheme://host[:port][/base-path], no trailing slash */
    int custom;          /* 1 when configured (not the AWS default): S3 then uses path-style addressing */
    char source[160];    /* where it came from: "--endpoint-url", "AWS_ENDPOINT_URL_S3", "profile dev", ... */
} rd_endpoint;

/* A region goes into hostnames (https://sts.REGION.amazonaws.com): it must be a name as botocore accepts
 * it, ^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$, or a request could be signed and sent (session token
 * included) to another host. RD_E_USAGE naming `source` ("--region", "AWS_REGION", ...) otherwise. */
rd_status rd_aws_region_check(const char *region, const char *source, rd_error *err);

/* cli_endpoint_url: the --endpoint-url flag or NULL. cfg/profile may be NULL. region is required for the
 * AWS default. use_environment 0 reads no AWS_ENDPOINT_URL* / AWS_IGNORE_CONFIGURED_ENDPOINT_URLS variable. RD_E_CONFIG for a malformed configured URL (names where it came from); RD_E_USAGE for a
 * region that is not a valid name (rd_aws_region_check), whichever endpoint is chosen. */
rd_status rd_endpoint_resolve(const rd_aws_service *svc, const char *region, const char *cli_endpoint_url,
                              const struct rd_aws_config *cfg, const char *profile, int use_environment,
                              rd_endpoint *out,
                              rd_error *err);

#endif
