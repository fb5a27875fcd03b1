/* creds_internal.h — what the credential provider files of src/auth share and nothing outside src/auth
 * uses: the out-of-memory error, a credentials value filled from parts, the providers the chain builds
 * from a profile, and the plumbing of the providers that ask a remote endpoint (creds_remote.c). */
#ifndef RD_AUTH_CREDS_INTERNAL_H
#define RD_AUTH_CREDS_INTERNAL_H

#include <stddef.h>
#include <string.h>

#include "auth/creds_chain.h"
#include "aws/client.h"
#include "redduck/buf.h"

static inline rd_status rd_creds_oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

static inline const char *rd_creds_nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

static inline char *rd_creds_dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Fills a credentials value from parts (copies; an empty token counts as none). */
rd_status rd_creds_fill(rd_credentials *out, const char *key, const char *secret, const char *token, time_t exp,
                        const char *provider, const char *source, rd_error *err);

/* The keys of `profile` in the credentials file (credentials_file = 1) or the config file (0);
 * NOT_FOUND at get() when it has none (creds_static.c). */
rd_status rd_creds_file_keys_new(const rd_creds_ctx *ctx, const char *profile, int credentials_file,
                                 rd_creds_provider **out, rd_error *err);
/* The profile's credential_process, read at get(); NOT_FOUND when it has none (creds_process.c). */
rd_status rd_creds_profile_process_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out,
                                       rd_error *err);

/* A provider made of providers (creds_chain.c), asked in order: the first answer other than NOT_FOUND
 * wins; exhausted → NOT_FOUND naming the profile. NULL when out of memory. */
rd_creds_provider *rd_creds_chain_alloc(const char *profile);
/* Appends p (the chain owns it from now on; on failure p is freed and RD_E_INTERNAL returned). */
rd_status rd_creds_chain_add(rd_creds_provider *chain, rd_creds_provider *p);

/* creds_profile.c: the profile's role (role_arn; NOT_FOUND at get() when it has none, built on first
 * use), and the providers a source profile is resolved with (web identity, SSO, credentials file,
 * credential_process, config file). */
rd_status rd_creds_profile_role_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out,
                                    rd_error *err);
rd_status rd_creds_profile_sources_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out,
                                       rd_error *err);

/* --- creds_remote.c ---------------------------------------------------------------------------------- */

/* A provider whose only state is the context it reads its settings from (container, IMDS). vt->destroy
 * is rd_creds_ctx_provider_destroy. */
typedef struct rd_creds_ctx_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx; /* borrowed */
} rd_creds_ctx_provider;
rd_status rd_creds_ctx_provider_new(const rd_creds_ctx *ctx, const rd_creds_provider_vtable *vt,
                                    rd_creds_provider **out, rd_error *err);
void rd_creds_ctx_provider_destroy(rd_creds_provider *base);

/* Reads a whole small file (at most 1 MiB) into b. Returns 0 or an errno value. */
int rd_creds_read_small_file(const char *path, rd_buf *b);
/* "host[:port]" and the path without the query (it could carry secrets) of url, for log lines. */
void rd_creds_url_for_log(const char *url, char *host, size_t hlen, char *path, size_t plen);
/* The scheme and hostname of url as Python's urlparse gives them (lowercased, IPv6 without brackets).
 * Returns 0, or -1 when url has no "://" or the scheme does not fit. */
int rd_creds_url_parts(const char *url, char *scheme, size_t slen, char *host, size_t hlen);
/* Cleanses and frees a secret string; NULL is a no-op. */
void rd_creds_free_secret(char *s);
/* One plain (unsigned) HTTP exchange through ctx->http, with a log line like client.c's; secret header
 * values are never logged. resp is reset first. */
rd_status rd_creds_remote_send(const rd_creds_ctx *ctx, const char *method, const char *url,
                               const rd_headers *headers, long timeout_ms, rd_http_response *resp, rd_error *err);
/* Fills *c (on the caller's stack) for one unsigned STS/SSO call; borrows everything from ctx. */
void rd_creds_stack_client(rd_aws_client *c, const rd_creds_ctx *ctx, const char *profile, const char *region);
/* The session's profile, or AWS_PROFILE / AWS_DEFAULT_PROFILE / "default". */
const char *rd_creds_session_profile(const rd_creds_ctx *ctx);
/* A setting as botocore's config chain resolves it: the environment variable, then the profile's key. */
const char *rd_creds_setting(const rd_creds_ctx *ctx, const char *env, const char *key);

#endif
