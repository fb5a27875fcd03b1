/* redduck/creds.h — AWS credentials, found the way the AWS CLI finds them.
 * Owns: the credentials value type, the provider interface (a tiny vtable, as in aws-c-auth) and the
 * default chain. Does not own: signing (sigv4.h) or HTTP.
 * Chain order (AWS CLI v2): explicit keys → environment → profile with role_arn (assume role) →
 * web identity (env) → SSO profile → shared credentials file → credential_process → config file keys →
 * container endpoint → EC2 instance metadata (IMDSv2). */
#ifndef REDDUCK_CREDS_H
#define REDDUCK_CREDS_H

#include <time.h>

#include "redduck/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rd_credentials {
    char *access_key_id;     /* owned */
    char *secret_access_key; /* owned; never logged */
    char *session_token;     /* owned; NULL when none; never logged */
    time_t expiration;       /* 0: does not expire */
    char *provider;          /* owned: "explicit", "env", "shared-credentials-file", "config-file",
                                "assume-role", "assume-role-with-web-identity", "sso", "custom-process",
                                "container-role", "iam-role" */
    char *source;            /* owned, may be NULL: "/home/u/.aws/credentials [profile dev]", "AWS_ACCESS_KEY_ID" */
    char *account_id;        /* owned, may be NULL (when the source says) */
} rd_credentials;

void rd_credentials_init(rd_credentials *c);
/* Frees and zeroes the secret strings first. NULL is a no-op. */
void rd_credentials_free(rd_credentials *c);
/* Deep copy into dst (initialised by the call). */
rd_status rd_credentials_copy(rd_credentials *dst, const rd_credentials *src);
/* Sets a string field, freeing the old value (copy of s; s may be NULL). */
rd_status rd_credentials_set(char **field, const char *s);

typedef struct rd_creds_provider rd_creds_provider;
typedef struct rd_creds_provider_vtable {
    const char *name;
    /* Fills *out (initialised by the caller) on success. Returns RD_E_NOT_FOUND when this provider has
     * nothing to offer (the chain goes on); any other error stops the chain with its message. */
    rd_status (*get)(rd_creds_provider *p, rd_credentials *out, rd_error *err);
    void (*destroy)(rd_creds_provider *p);
} rd_creds_provider_vtable;

struct rd_creds_provider {
    const rd_creds_provider_vtable *vt;
};

/* Calls p->vt->get (initialising *out first). */
rd_status rd_creds_provider_get(rd_creds_provider *p, rd_credentials *out, rd_error *err);
void rd_creds_provider_free(rd_creds_provider *p);

/* Who a set of credentials is (STS GetCallerIdentity). All fields owned; rd_identity_free frees them and
 * NULLs them (NULL is a no-op). */
typedef struct rd_identity {
    char *account; /* owned */
    char *arn;     /* owned */
    char *user_id; /* owned */
} rd_identity;
void rd_identity_free(rd_identity *id);

#ifdef __cplusplus
}
#endif
#endif
