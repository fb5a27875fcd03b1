/* creds_json.c — credentials from a JSON object, by the source's field names and rules (see creds_json.h). */
#include "aws/creds_json.h"

#include <string.h>

#include "core/timeutil.h"

static const char *field_string(const json_t *o, const char *name, int empty_is_missing)
{
    const char *v = name ? json_string_value(json_object_get(o, name)) : NULL;
    return v && empty_is_missing && !*v ? NULL : v;
}

static rd_status fault_at(rd_creds_json_fault *fault, rd_creds_json_fault_kind kind, const char *field,
                          const char *text)
{
    fault->kind = kind;
    fault->field = field;
    fault->text = text;
    return RD_E_REMOTE;
}

rd_status rd_creds_from_json(const json_t *o, const rd_creds_json_names *names, const char *source,
                             rd_credentials *out, rd_creds_json_fault *fault, rd_error *err)
{
    fault->kind = RD_CREDS_JSON_OK;
    fault->field = NULL;
    fault->text = NULL;
    const char *key = field_string(o, names->access_key_id, names->empty_is_missing);
    const char *secret = field_string(o, names->secret_access_key, names->empty_is_missing);
    const char *token = field_string(o, names->session_token, names->empty_is_missing);
    const char *account = names->account_id ? json_string_value(json_object_get(o, names->account_id)) : NULL;
    if (!key)
        return fault_at(fault, RD_CREDS_JSON_MISSING, names->access_key_id, NULL);
    if (!secret)
        return fault_at(fault, RD_CREDS_JSON_MISSING, names->secret_access_key, NULL);
    if (!token && names->token_required)
        return fault_at(fault, RD_CREDS_JSON_MISSING, names->session_token, NULL);
    time_t expiration = 0;
    const json_t *exp = names->expiration ? json_object_get(o, names->expiration) : NULL;
    if (names->expiration_ms) {
        if (!json_is_number(exp) && names->expiration_required)
            return fault_at(fault, RD_CREDS_JSON_MISSING, names->expiration, NULL);
        expiration = (time_t)(json_number_value(exp) / 1000.0);
    } else {
        const char *text = json_string_value(exp);
        if (!text && names->expiration_required)
            return fault_at(fault, RD_CREDS_JSON_MISSING, names->expiration, NULL);
        if (text && rd_time_parse_iso8601(text, &expiration) != 0) {
            expiration = 0;
            fault_at(fault, RD_CREDS_JSON_BAD_EXPIRATION, names->expiration, text);
            if (!names->lenient_expiration)
                return RD_E_REMOTE;
        }
        if (exp && !text)
            return fault_at(fault, RD_CREDS_JSON_EXPIRATION_NOT_STRING, names->expiration, NULL);
    }
    rd_credentials cr;
    rd_credentials_init(&cr);
    cr.expiration = expiration;
    if (rd_credentials_set(&cr.access_key_id, key) != RD_OK ||
        rd_credentials_set(&cr.secret_access_key, secret) != RD_OK ||
        rd_credentials_set(&cr.session_token, token) != RD_OK ||
        rd_credentials_set(&cr.provider, names->provider) != RD_OK ||
        rd_credentials_set(&cr.source, source) != RD_OK ||
        (account && rd_credentials_set(&cr.account_id, account) != RD_OK)) {
        rd_credentials_free(&cr);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    rd_credentials_free(out);
    *out = cr;
    return RD_OK;
}
