/* sso.c — the IAM Identity Center portal client (see sso.h): GetRoleCredentials, unsigned, bearer token. */
#include "services/sso.h"

#include <stdlib.h>
#include <string.h>

#include "aws/creds_json.h"
#include "aws/parse.h"
#include "redduck/sigv4.h"

rd_status rd_sso_get_role_credentials(rd_aws_client *c, const char *access_token, const char *account_id,
                                      const char *role_name, rd_credentials *out, rd_error *err)
{
    rd_buf query = RD_BUF_INIT;
    rd_buf_puts(&query, "account_id=");
    rd_sigv4_uri_encode(&query, account_id, strlen(account_id), 0);
    rd_buf_puts(&query, "&role_name=");
    rd_sigv4_uri_encode(&query, role_name, strlen(role_name), 0);
    if (rd_buf_failed(&query))
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_headers h = RD_HEADERS_INIT;
    rd_headers_add(&h, "x-amz-sso_bearer_token", access_token);
    rd_aws_request req = { 0 };
    req.svc = &rd_svc_sso;
    req.method = "GET";
    req.path = "/federation/credentials";
    req.query = query.data;
    req.headers = &h;
    req.body_replayable = 1;
    req.no_auth = 1;
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_status st = rd_aws_send(c, &req, &resp, err);
    if (st != RD_OK) {
        if (err && (strcmp(err->aws_code, "UnauthorizedException") == 0 || resp.status == 401)) {
            err->code = st = RD_E_AUTH;
            rd_error_prefix(err, "the SSO access token was refused (expired or revoked): run `aws sso login` — ");
        } else {
            rd_error_prefix(err, "SSO GetRoleCredentials for role %s in account %s: ", role_name, account_id);
        }
        goto out;
    }
    json_t *o = NULL;
    if ((st = rd_json_parse_object(resp.body.data, resp.body.len, RD_E_REMOTE, "the SSO GetRoleCredentials reply", &o,
                                   err)) != RD_OK)
        goto out;
    static const rd_creds_json_names names = { .access_key_id = "accessKeyId",
                                               .secret_access_key = "secretAccessKey",
                                               .session_token = "sessionToken",
                                               .expiration = "expiration",
                                               .provider = "sso",
                                               .expiration_ms = 1 };
    rd_creds_json_fault fault;
    rd_credentials cr;
    rd_credentials_init(&cr);
    st = rd_creds_from_json(json_object_get(o, "roleCredentials"), &names, NULL, &cr, &fault, err);
    if (fault.kind != RD_CREDS_JSON_OK)
        st = rd_error_set(err, RD_E_REMOTE, "SSO GetRoleCredentials: the reply has no roleCredentials");
    else if (st == RD_OK && rd_credentials_set(&cr.account_id, account_id) != RD_OK)
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (st == RD_OK) {
        rd_credentials_free(out);
        *out = cr;
    } else {
        rd_credentials_free(&cr);
    }
    json_decref(o);
out:
    rd_http_response_free(&resp); /* cleanses the body (the role credentials) */
    rd_headers_free(&h);          /* cleanses the bearer token */
    rd_buf_free(&query);
    return st;
}
