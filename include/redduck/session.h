/* redduck/session.h — what one redduck invocation knows about AWS: the profile, the region, the endpoint
 * override, the logger, the HTTP transport and the credential chain, built once from flags, environment
 * and the shared config files. The CLI and the project runner create one per run.
 * Ownership: rd_session_new returns a session the caller frees; strings returned by accessors are
 * borrowed from it. Thread-safe after creation (credential refresh is locked). */
#ifndef REDDUCK_SESSION_H
#define REDDUCK_SESSION_H

#include <stdio.h>

#include "redduck/creds.h"
#include "redduck/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rd_session rd_session;

typedef struct rd_session_options {
    const char *profile;           /* --profile, or NULL (AWS_PROFILE / default) */
    const char *region;            /* --region, or NULL */
    const char *region_source;     /* where `region` came from, for messages ("connector dev"); NULL: "--region" */
    const char *endpoint_url;      /* --endpoint-url, or NULL */
    const char *access_key_id;     /* explicit keys (flags, project .env), or NULL */
    const char *secret_access_key;
    const char *session_token;
    int verbose;                   /* 0 quiet, 1 requests (-v), 2 debug (-vv) */
    FILE *log_stream;              /* NULL: stderr */
    int no_host_environment;       /* read nothing of the host: no config or credentials file, no AWS_REGION /
                                      AWS_DEFAULT_REGION, no AWS_PROFILE, no AWS_CA_BUNDLE, and credentials
                                      from the explicit keys only (none: RD_E_AUTH on first use, never the
                                      environment, a profile, a container or IMDS). For `redduck server`'s
                                      runs, whose keys, region and endpoint are the deployment's variables. */
} rd_session_options;

/* Reads the config files (a malformed one is RD_E_CONFIG naming file and line) and builds the chain.
 * Does not contact AWS. A region that is not a valid region name (whichever source it came from) is
 * RD_E_USAGE naming the source; a CA bundle (AWS_CA_BUNDLE, the profile's ca_bundle) that does not exist
 * is RD_E_CONFIG naming the file. */
rd_status rd_session_new(const rd_session_options *opts, rd_session **out, rd_error *err);
void rd_session_free(rd_session *s);

/* The profile in use ("default" when none was named). */
const char *rd_session_profile(const rd_session *s);

/* Region: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`. Missing → RD_E_CONFIG with
 * what to set. *source names where it came from ("--region", "AWS_REGION", "~/.aws/config [profile x]"). */
rd_status rd_session_region(rd_session *s, const char **region, const char **source, rd_error *err);

/* Resolves credentials through the chain (cached; refreshed before expiry). *out is initialised by the call
 * and owned by the caller (rd_credentials_free). */
rd_status rd_session_credentials(rd_session *s, rd_credentials *out, rd_error *err);

/* An AWS client for `region` with the session's transport, credentials, config, profile, endpoint override
 * and logger, for the library's service calls (doctor): struct rd_aws_client is the aws layer's
 * (aws/client.h). The client borrows everything from the session and must not outlive it. */
struct rd_aws_client;
void rd_session_client(rd_session *s, const char *region, struct rd_aws_client *out);

/* STS GetCallerIdentity with the session's credentials. RD_E_AUTH when no credentials, RD_E_DENIED when
 * AWS refuses them. */
rd_status rd_session_whoami(rd_session *s, rd_identity *out, rd_error *err);

#ifdef __cplusplus
}
#endif
#endif
