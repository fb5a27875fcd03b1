/* sso.h — the AWS IAM Identity Center (SSO) portal client: GetRoleCredentials
 * (GET /federation/credentials?role_name=&account_id=, header x-amz-sso_bearer_token, unsigned).
 * The client's region must be the sso_region. */
#ifndef RD_SERVICES_SSO_H
#define RD_SERVICES_SSO_H

#include "aws/client.h"
#include "redduck/creds.h"

/* On success *out holds the role credentials (expiration from the reply's milliseconds), provider "sso".
 * An UnauthorizedException (expired or revoked token) is RD_E_AUTH. */
rd_status rd_sso_get_role_credentials(rd_aws_client *c, const char *access_token, const char *account_id,
                                      const char *role_name, rd_credentials *out, rd_error *err);

#endif
