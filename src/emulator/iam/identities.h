/* identities.h — who may call the emulator: users (access keys), roles (assumable through STS, usable by
 * UNLOAD's IAM_ROLE), web-identity and SSO tokens, and the temporary sessions STS has issued.
 * Loaded from the emulator's JSON config (or the LocalStack-style default: key `test`, secret `test`,
 * account 000000000000, allowed everything). Thread-safe: sessions are added under a lock.
 *
 * Config shape:
 *   { "account": "000000000000", "region": "us-east-1",
 *     "users": [ { "name": "test", "access_key_id": "test", "secret_access_key": "test",
 *                  "allow": ["*"], "deny": ["s3:DeleteObject"] } ],
 *     "roles": [ { "name": "unload", "allow": ["s3:*"], "web_identity_tokens": ["tok"] } ],
 *     "sso":   [ { "access_token": "t", "account_id": "000000000000", "role_name": "Admin", "role": "unload" } ],
 *     "workgroups": ["demo"], "clusters": ["redshift-cluster-1"], "buckets": ["redduck-staging"] }
 * An allow/deny entry is "action" or "action resource", both with '*' wildcards; deny wins. */
#ifndef RD_EMULATOR_IDENTITIES_H
#define RD_EMULATOR_IDENTITIES_H

#include <stddef.h>
#include <time.h>

#include "emulator/emu_error.h"
#include "redduck/error.h"

typedef struct rd_emu_ids rd_emu_ids;

typedef struct rd_emu_principal {
    const char *arn;         /* user ARN, or assumed-role ARN for sessions */
    const char *user_id;     /* GetCallerIdentity UserId */
    const char *secret;      /* secret access key */
    const char *session_token; /* NULL for users */
    time_t expiration;       /* 0 for users */
    const char *role_arn;    /* for sessions: the role */
} rd_emu_principal;

/* path NULL → the default identity. RD_E_CONFIG naming the file and what is wrong. */
rd_status rd_emu_ids_load(const char *path, rd_emu_ids **out, rd_error *err);
void rd_emu_ids_free(rd_emu_ids *ids);

const char *rd_emu_ids_account(const rd_emu_ids *ids);
const char *rd_emu_ids_region(const rd_emu_ids *ids);

/* Looks up an access key (user or live session). Fills *p with borrowed strings valid while ids lives.
 * Returns 0 when unknown. */
int rd_emu_ids_find_key(rd_emu_ids *ids, const char *access_key_id, rd_emu_principal *p);

/* Role by ARN or name: returns its ARN (borrowed) or NULL. */
const char *rd_emu_ids_role_arn(rd_emu_ids *ids, const char *arn_or_name);
/* Role allowed to be assumed by web identity token: returns role ARN or NULL. */
int rd_emu_ids_web_token_ok(rd_emu_ids *ids, const char *role_arn, const char *token);
/* SSO token → role ARN (borrowed) for account/role_name, or NULL. */
const char *rd_emu_ids_sso_role(rd_emu_ids *ids, const char *access_token, const char *account_id,
                                const char *role_name);

/* Issues temporary credentials for role_arn (AssumeRole etc.): malloc'd strings into the out params. 0, or -1
 * with err: 500 InternalFailure (STS's word; an unknown role, out of memory). */
int rd_emu_ids_issue_session(rd_emu_ids *ids, const char *role_arn, const char *session_name, int duration_seconds,
                             time_t now, char **access_key_id, char **secret, char **token, char **assumed_arn,
                             char **assumed_id, time_t *expiration, rd_emu_error *err);

/* Issues GetSessionToken credentials for the user whose long-term key user_key is: they act as that user (same
 * ARN, same policy) until they expire (duration_seconds; 0 → 43200). malloc'd strings into the out params. 0, or
 * -1 with err: 403 AccessDenied (user_key is not a user's long-term key: session credentials cannot call
 * GetSessionToken), 500 InternalFailure (out of memory). */
int rd_emu_ids_issue_user_session(rd_emu_ids *ids, const char *user_key, int duration_seconds, time_t now,
                                  char **access_key_id, char **secret, char **token, time_t *expiration,
                                  rd_emu_error *err);

/* Policy: 1 if the principal (user ARN or assumed-role ARN, or role ARN) may do action on resource. */
int rd_emu_ids_allowed(rd_emu_ids *ids, const char *principal_arn, const char *action, const char *resource);

/* Lists from the config (borrowed arrays of borrowed strings; count may be 0). */
const char *const *rd_emu_ids_workgroups(const rd_emu_ids *ids, size_t *count);
const char *const *rd_emu_ids_clusters(const rd_emu_ids *ids, size_t *count);
const char *const *rd_emu_ids_buckets(const rd_emu_ids *ids, size_t *count);

#endif
