/* cmd_whoami.c — `redduck whoami`: the check the Rill docs do with `aws iam get-user`. Resolves
 * credentials as every other command would, calls STS GetCallerIdentity (unless --local) and says which
 * identity, region and credential source are in use. Never prints a secret. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "redduck/creds.h"
#include "redduck/session.h"

static const char whoami_help[] =
    "usage: redduck whoami [--json] [--local] [AWS options]\n"
    "\n"
    "Shows the AWS account, ARN and user id behind the credentials redduck finds (STS GetCallerIdentity),\n"
    "the region, and which provider supplied the credentials (for a profile: which file and section).\n"
    "\n"
    "Credentials are looked up in the AWS CLI's order: environment (AWS_ACCESS_KEY_ID, ...), the profile's\n"
    "role_arn (assume role), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), SSO (`aws sso login`), the shared\n"
    "credentials file, credential_process, keys in the config file, the container endpoint, EC2 instance\n"
    "metadata.\n"
    "\n"
    "Options:\n"
    "  --json     print one JSON object (account, arn, user_id, region, region_source, profile, provider,\n"
    "             source, access_key_id, expiration)\n"
    "  --local    do not call AWS: only resolve and describe the credentials\n"
    RD_CLI_AWS_OPTIONS_HELP
    "\n"
    "Exit codes: 0 ok, 2 usage, 3 no credentials found, 4 refused by AWS, 1 other failure.\n";

/* "****************ABCD": the key id is an identifier, but humans only need its tail. */
static void mask_key(const char *key, char *out, size_t outlen)
{
    size_t n = strlen(key);
    size_t keep = n > 4 ? 4 : 0;
    size_t i = 0;
    for (; i + keep < n && i + 1 < outlen; i++)
        out[i] = '*';
    snprintf(out + i, outlen - i, "%s", key + (n - keep));
}

static void format_time(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int rd_cmd_whoami(int argc, char **argv)
{
    rd_session_options sopts = { 0 };
    int json = 0, local = 0;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_AWS(&sopts),
        RD_CLI_OPT_FLAG("--json", &json),
        RD_CLI_OPT_FLAG("--local", &local),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "whoami", whoami_help, opts, 0, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;

    rd_session *s = rd_cli_session_open(&sopts, &rc);
    if (!s)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    rd_credentials creds;
    rd_credentials_init(&creds);
    rd_identity id = { 0 };
    const char *region = NULL, *region_source = NULL;
    rd_error region_err;
    rd_error_clear(&region_err);
    int have_region = rd_session_region(s, &region, &region_source, &region_err) == RD_OK;

    rd_status st = rd_session_credentials(s, &creds, &err);
    if (st == RD_OK && !local)
        st = rd_session_whoami(s, &id, &err);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        goto out;
    }

    char expiry[32] = "";
    if (creds.expiration)
        format_time(creds.expiration, expiry, sizeof expiry);
    if (json) {
        json_t *o = json_object();
        if (!local) {
            json_object_set_new(o, "account", json_string(id.account ? id.account : ""));
            json_object_set_new(o, "arn", json_string(id.arn ? id.arn : ""));
            json_object_set_new(o, "user_id", json_string(id.user_id ? id.user_id : ""));
        }
        json_object_set_new(o, "region", have_region ? json_string(region) : json_null());
        json_object_set_new(o, "region_source", have_region && region_source ? json_string(region_source) : json_null());
        json_object_set_new(o, "profile", json_string(rd_session_profile(s)));
        json_object_set_new(o, "provider", json_string(creds.provider ? creds.provider : ""));
        json_object_set_new(o, "source", creds.source ? json_string(creds.source) : json_null());
        json_object_set_new(o, "access_key_id", json_string(creds.access_key_id ? creds.access_key_id : ""));
        json_object_set_new(o, "expiration", creds.expiration ? json_string(expiry) : json_null());
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        free(text);
        json_decref(o);
    } else {
        char masked[128];
        mask_key(creds.access_key_id ? creds.access_key_id : "", masked, sizeof masked);
        if (!local) {
            printf("Account:      %s\n", id.account ? id.account : "");
            printf("ARN:          %s\n", id.arn ? id.arn : "");
            printf("UserId:       %s\n", id.user_id ? id.user_id : "");
        }
        if (have_region)
            printf("Region:       %s (from %s)\n", region, region_source ? region_source : "?");
        else
            printf("Region:       (not set: pass --region, set AWS_REGION or the profile's region)\n");
        printf("Profile:      %s\n", rd_session_profile(s));
        printf("Credentials:  %s%s%s%s\n", creds.provider ? creds.provider : "?", creds.source ? " (" : "",
               creds.source ? creds.source : "", creds.source ? ")" : "");
        printf("Access key:   %s\n", masked);
        if (creds.expiration)
            printf("Expires:      %s\n", expiry);
    }
out:
    rd_identity_free(&id);
    rd_credentials_free(&creds);
    rd_session_free(s);
    return rd_cli_exit_code(st);
}
