/* sts.h — AWS STS client: GetCallerIdentity, AssumeRole, AssumeRoleWithWebIdentity (query protocol).
 * Owns the STS request parameters and reply parsing. Uses aws/client.h for transport. */
#ifndef RD_SERVICES_STS_H
#define RD_SERVICES_STS_H

#include "aws/client.h"
#include "redduck/creds.h"

/* *out (redduck/creds.h) is written only on success; the caller frees it with rd_identity_free. */
rd_status rd_sts_get_caller_identity(rd_aws_client *c, rd_identity *out, rd_error *err);

typedef struct rd_sts_assume_role_input {
    const char *role_arn;
    const char *session_name;   /* NULL: "redduck-session-<epoch>" (botocore: botocore-session-<epoch>) */
    const char *external_id;    /* may be NULL */
    int duration_seconds;       /* 0: omit (AWS default 3600) */
    const char *serial_number;  /* MFA, may be NULL */
    const char *token_code;     /* MFA, may be NULL */
} rd_sts_assume_role_input;

/* On success *out holds the temporary credentials with expiration, provider "assume-role" and
 * account_id parsed from the AssumedRoleUser ARN. */
rd_status rd_sts_assume_role(rd_aws_client *c, const rd_sts_assume_role_input *in, rd_credentials *out,
                             rd_error *err);

/* Unsigned call (no credentials needed). provider "assume-role-with-web-identity". */
rd_status rd_sts_assume_role_with_web_identity(rd_aws_client *c, const char *role_arn, const char *session_name,
                                               const char *web_identity_token, int duration_seconds,
                                               rd_credentials *out, rd_error *err);

/* Parses the Credentials (and AssumedRoleUser Arn → account id) of an AssumeRole* reply into *out
 * (freed first); provider names the source. Exposed for the fuzzer and tests. */
rd_status rd_sts_parse_credentials(xmlDocPtr doc, const char *provider, rd_credentials *out, rd_error *err);

#endif
