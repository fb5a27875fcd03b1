/* creds_chain.h — the credential providers behind include/redduck/creds.h and the AWS-CLI default chain.
 * Each provider is a small vtable object (rd_creds_provider); the chain is a provider made of providers.
 * Ownership: every *_new returns a provider the caller frees with rd_creds_provider_free; a constructor
 * that takes another provider takes ownership of it. Providers borrow the rd_creds_ctx, which must outlive
 * them. get() of a cached provider is thread-safe; the others are called under its lock. */
#ifndef RD_AUTH_CREDS_CHAIN_H
#define RD_AUTH_CREDS_CHAIN_H

#include <time.h>

#include "aws/config.h"
#include "aws/http.h"
#include "core/log.h"
#include "redduck/creds.h"

typedef struct rd_creds_ctx {
    const rd_aws_config *cfg;  /* borrowed; required */
    rd_http_transport *http;   /* borrowed; required for STS/SSO/container/IMDS */
    const rd_log *log;         /* borrowed; may be NULL */
    const char *region;        /* borrowed; region of the session (STS calls), may be NULL */
    time_t (*now)(void);       /* NULL: time() */
    const char *profile;       /* borrowed; the session's profile for settings (IMDS, env web identity); NULL:
                                  AWS_PROFILE / AWS_DEFAULT_PROFILE / "default" */
} rd_creds_ctx;

time_t rd_creds_ctx_now(const rd_creds_ctx *ctx);

/* Refresh temporary credentials this long before they expire (botocore: 15 min advisory, 10 mandatory). */
#define RD_CREDS_REFRESH_WINDOW_S (15 * 60)

typedef struct rd_creds_chain_options {
    const char *profile;          /* --profile flag (explicit: removes the env provider as botocore does); NULL: AWS_PROFILE/default */
    const char *access_key_id;    /* explicit keys (flags or project .env); all NULL when not given */
    const char *secret_access_key;
    const char *session_token;
} rd_creds_chain_options;

/* The default chain (see creds.h for the order), wrapped in the cache. When nothing yields credentials:
 * RD_E_AUTH "Unable to locate credentials ..." naming what was tried and how to configure. */
rd_status rd_creds_chain_new(const rd_creds_ctx *ctx, const rd_creds_chain_options *opts, rd_creds_provider **out,
                             rd_error *err);

/* Fixed keys. provider_name/source are copied (source may be NULL). */
rd_status rd_creds_static_new(const char *access_key_id, const char *secret_access_key, const char *session_token,
                              const char *provider_name, const char *source, rd_creds_provider **out, rd_error *err);
/* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (AWS_SECURITY_TOKEN), read at get(). */
rd_status rd_creds_env_new(rd_creds_provider **out, rd_error *err);
/* Everything a named profile can say: role_arn (+ source_profile | credential_source, cycle detection,
 * external_id, role_session_name, duration_seconds, mfa_serial → clear error), web_identity_token_file,
 * sso_session / sso_* keys, aws_access_key_id in the credentials file, credential_process, keys in the
 * config file. NOT_FOUND when the profile yields nothing; RD_E_CONFIG when the profile is unknown but was
 * asked for explicitly. */
rd_status rd_creds_profile_new(const rd_creds_ctx *ctx, const char *profile, int explicit_profile,
                               rd_creds_provider **out, rd_error *err);
/* credential_process: runs the command (no shell interpolation of secrets; stdout JSON Version 1:
 * AccessKeyId, SecretAccessKey, SessionToken, Expiration), profile named in errors. */
rd_status rd_creds_process_new(const rd_creds_ctx *ctx, const char *profile, const char *command,
                               rd_creds_provider **out, rd_error *err);
/* STS AssumeRole with credentials from `source` (owned). `profile` names the profile in errors and gives
 * the region / sts endpoint settings. */
rd_status rd_creds_assume_role_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider *source,
                                   const char *role_arn, const char *session_name, const char *external_id,
                                   int duration_seconds, rd_creds_provider **out, rd_error *err);
/* AssumeRoleWithWebIdentity from a token file (re-read at each refresh). */
rd_status rd_creds_web_identity_new(const rd_creds_ctx *ctx, const char *profile, const char *role_arn,
                                    const char *token_file, const char *session_name, rd_creds_provider **out,
                                    rd_error *err);
/* AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN [+ AWS_ROLE_SESSION_NAME]; NOT_FOUND when unset. */
rd_status rd_creds_web_identity_env_new(const rd_creds_ctx *ctx, rd_creds_provider **out, rd_error *err);
/* SSO: sso_session section (token cache key sha1(session name)) or legacy sso_start_url (key sha1(url));
 * cache dir ~/.aws/sso/cache; expired token → RD_E_AUTH "run aws sso login --profile X". */
rd_status rd_creds_sso_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out, rd_error *err);
/* AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (169.254.170.2) / _FULL_URI (loopback, ECS/EKS addresses, https),
 * AWS_CONTAINER_AUTHORIZATION_TOKEN / _TOKEN_FILE. NOT_FOUND when unset. */
rd_status rd_creds_container_new(const rd_creds_ctx *ctx, rd_creds_provider **out, rd_error *err);
/* IMDSv2: PUT /latest/api/token, GET /latest/meta-data/iam/security-credentials/[role].
 * AWS_EC2_METADATA_DISABLED=true → NOT_FOUND without any traffic. AWS_EC2_METADATA_SERVICE_ENDPOINT
 * overrides http://169.254.169.254. Short timeouts (1 s, 1 attempt each as botocore). */
rd_status rd_creds_imds_new(const rd_creds_ctx *ctx, rd_creds_provider **out, rd_error *err);
/* Parses credential_process output (JSON, Version 1) into *out (provider "custom-process"). Messages never
 * contain the output itself. Exposed for tests and the fuzzer. */
rd_status rd_creds_parse_process_output(const char *json, size_t len, rd_credentials *out, rd_error *err);

/* Caches `inner`'s credentials (owned) and refreshes them RD_CREDS_REFRESH_WINDOW_S before expiry;
 * thread-safe (mutex), one refresh at a time. */
rd_status rd_creds_cached_new(const rd_creds_ctx *ctx, rd_creds_provider *inner, rd_creds_provider **out,
                              rd_error *err);

#endif
