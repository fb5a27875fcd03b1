/* creds_json.h — the one decoder of credentials in a JSON object, for every source that hands them over
 * as JSON: credential_process output, the container endpoint, EC2 instance metadata, SSO
 * GetRoleCredentials. Each source gives its field names and rules; the decoder never writes a message about
 * the content (each source words its own), it says which field is wrong. Does not parse the text (parse.h). */
#ifndef RD_AWS_CREDS_JSON_H
#define RD_AWS_CREDS_JSON_H

#include <jansson.h>

#include "redduck/creds.h"

typedef struct rd_creds_json_names {
    const char *access_key_id;     /* "AccessKeyId", "accessKeyId" */
    const char *secret_access_key; /* "SecretAccessKey", ... */
    const char *session_token;     /* "SessionToken", "Token", "sessionToken" */
    const char *expiration;        /* "Expiration", "expiration" */
    const char *account_id;        /* NULL: not read from the object */
    const char *provider;          /* the rd_credentials provider: "custom-process", "container-role", ... */
    int empty_is_missing;          /* "" counts as absent (keys missing, no token) */
    int token_required;            /* no session token (or one that is not a string) is a MISSING fault */
    int expiration_required;       /* no Expiration string is a MISSING fault */
    int expiration_ms;             /* a number of milliseconds since the epoch (SSO), else an ISO 8601 string */
    int lenient_expiration;        /* an unreadable Expiration gives 0 (no expiry) and RD_OK, fault still set */
} rd_creds_json_names;

typedef enum rd_creds_json_fault_kind {
    RD_CREDS_JSON_OK = 0,
    RD_CREDS_JSON_MISSING,              /* field is absent, not a string, or empty with empty_is_missing */
    RD_CREDS_JSON_BAD_EXPIRATION,       /* the Expiration string is not ISO 8601; text is it */
    RD_CREDS_JSON_EXPIRATION_NOT_STRING /* an optional ISO 8601 Expiration is present but not a string */
} rd_creds_json_fault_kind;

typedef struct rd_creds_json_fault {
    rd_creds_json_fault_kind kind;
    const char *field; /* the field's name (from names) */
    const char *text;  /* BAD_EXPIRATION: the value, borrowed from the object */
} rd_creds_json_fault;

/* Decodes o (may be NULL: everything missing). Checks in this order: access key, secret, token, the
 * Expiration. On success *out (initialised) is replaced by the credentials with names->provider, source
 * (copied, may be NULL) and the account id, and RD_OK is returned. On a fault: RD_E_REMOTE, *fault says
 * what, err untouched, *out unchanged. RD_E_INTERNAL with "out of memory" in err. fault is always written. */
rd_status rd_creds_from_json(const json_t *o, const rd_creds_json_names *names, const char *source,
                             rd_credentials *out, rd_creds_json_fault *fault, rd_error *err);

#endif
