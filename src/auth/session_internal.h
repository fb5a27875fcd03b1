/* session_internal.h — what library modules (ingest, the project runner) take from an rd_session beyond
 * the public accessors: a ready rd_aws_client for a region, and the session's logger. The client borrows
 * everything from the session and must not outlive it. */
#ifndef RD_AUTH_SESSION_INTERNAL_H
#define RD_AUTH_SESSION_INTERNAL_H

#include "aws/client.h"
#include "redduck/session.h"

/* Fills *out to talk to AWS in `region` with the session's transport, credentials, config, profile,
 * endpoint override and logger. region is borrowed. */
void rd_session_client(rd_session *s, const char *region, rd_aws_client *out);
const rd_log *rd_session_log(rd_session *s);
/* The --endpoint-url override, or NULL. */
const char *rd_session_endpoint_url(const rd_session *s);
/* The CA bundle file every HTTPS connection of the session trusts (AWS_CA_BUNDLE / the profile's
 * ca_bundle), or NULL for the system's. For libcurl handles outside the transport (rd_http_apply_tls). */
const char *rd_session_ca_bundle(const rd_session *s);

#endif
