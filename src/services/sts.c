/* sts.c — STS client (see sts.h): GetCallerIdentity, AssumeRole, AssumeRoleWithWebIdentity. */
#include "services/sts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/timeutil.h"

rd_status rd_sts_get_caller_identity(rd_aws_client *c, rd_identity *out, rd_error *err)
{
    xmlDocPtr doc = NULL;
    rd_status st = rd_aws_query_call(c, &rd_svc_sts, "GetCallerIdentity", NULL, 0, &doc, err);
    if (st != RD_OK)
        return st;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    rd_identity id = { rd_xml_find_text(root, "Account"), rd_xml_find_text(root, "Arn"),
                           rd_xml_find_text(root, "UserId") };
    xmlFreeDoc(doc);
    if (!id.account || !id.arn) {
        rd_identity_free(&id);
        return rd_error_set(err, RD_E_REMOTE, "GetCallerIdentity: the reply has no Account/Arn");
    }
    *out = id;
    return RD_OK;
}

/* Account id from "arn:aws:sts::123456789012:assumed-role/..." (5th field). */
static char *account_from_arn(const char *arn)
{
    if (!arn)
        return NULL;
    const char *p = arn;
    for (int i = 0; i < 4; i++) {
        p = strchr(p, ':');
        if (!p)
            return NULL;
        p++;
    }
    size_t n = strcspn(p, ":");
    return n ? strndup(p, n) : NULL;
}

rd_status rd_sts_parse_credentials(xmlDocPtr doc, const char *provider, rd_credentials *out, rd_error *err)
{
    xmlNodePtr root = xmlDocGetRootElement(doc);
    char *key = rd_xml_find_text(root, "AccessKeyId"), *secret = rd_xml_find_text(root, "SecretAccessKey"),
         *token = rd_xml_find_text(root, "SessionToken"), *exp = rd_xml_find_text(root, "Expiration");
    char *arn = NULL;
    /* the Arn inside AssumedRoleUser */
    xmlNodePtr stack[64];
    int sp = 0;
    if (root)
        stack[sp++] = root;
    while (sp && !arn) {
        xmlNodePtr n = stack[--sp];
        for (xmlNodePtr ch = n->children; ch; ch = ch->next) {
            if (ch->type != XML_ELEMENT_NODE)
                continue;
            if (strcmp((const char *)ch->name, "AssumedRoleUser") == 0) {
                arn = rd_xml_find_text(ch->children, "Arn");
                break;
            }
            if (sp < 64)
                stack[sp++] = ch;
        }
    }
    rd_status st = RD_OK;
    time_t expiration = 0;
    if (!key || !secret || !*key || !*secret) {
        st = rd_error_set(err, RD_E_REMOTE, "STS replied without AccessKeyId/SecretAccessKey");
    } else if (exp && rd_time_parse_iso8601(exp, &expiration) != 0) {
        st = rd_error_set(err, RD_E_REMOTE, "STS replied with an unreadable Expiration '%s'", exp);
    } else {
        rd_credentials cr;
        rd_credentials_init(&cr);
        cr.access_key_id = key;
        cr.secret_access_key = secret;
        cr.session_token = token;
        cr.expiration = expiration;
        cr.provider = strdup(provider);
        cr.account_id = account_from_arn(arn);
        key = secret = token = NULL;
        rd_credentials_free(out);
        *out = cr;
    }
    free(key);
    free(secret);
    free(token);
    free(exp);
    free(arn);
    return st;
}

static void default_session_name(char out[64])
{
    snprintf(out, 64, "redduck-session-%ld", (long)time(NULL));
}

rd_status rd_sts_assume_role(rd_aws_client *c, const rd_sts_assume_role_input *in, rd_credentials *out, rd_error *err)
{
    char session[64], duration[16];
    const char *params[16];
    int n = 0;
    if (!in->session_name || !*in->session_name)
        default_session_name(session);
    params[n++] = "RoleArn";
    params[n++] = in->role_arn;
    params[n++] = "RoleSessionName";
    params[n++] = in->session_name && *in->session_name ? in->session_name : session;
    if (in->duration_seconds > 0) {
        snprintf(duration, sizeof duration, "%d", in->duration_seconds);
        params[n++] = "DurationSeconds";
        params[n++] = duration;
    }
    if (in->external_id && *in->external_id) {
        params[n++] = "ExternalId";
        params[n++] = in->external_id;
    }
    if (in->serial_number && *in->serial_number) {
        params[n++] = "SerialNumber";
        params[n++] = in->serial_number;
        params[n++] = "TokenCode";
        params[n++] = in->token_code ? in->token_code : "";
    }
    params[n] = NULL;
    xmlDocPtr doc = NULL;
    rd_status st = rd_aws_query_call(c, &rd_svc_sts, "AssumeRole", params, 0, &doc, err);
    if (st != RD_OK)
        return rd_error_prefix(err, "assuming role %s: ", in->role_arn), st;
    st = rd_sts_parse_credentials(doc, "assume-role", out, err);
    xmlFreeDoc(doc);
    return st;
}

rd_status rd_sts_assume_role_with_web_identity(rd_aws_client *c, const char *role_arn, const char *session_name,
                                               const char *web_identity_token, int duration_seconds,
                                               rd_credentials *out, rd_error *err)
{
    char session[64], duration[16];
    const char *params[10];
    int n = 0;
    if (!session_name || !*session_name)
        default_session_name(session);
    params[n++] = "RoleArn";
    params[n++] = role_arn;
    params[n++] = "RoleSessionName";
    params[n++] = session_name && *session_name ? session_name : session;
    params[n++] = "WebIdentityToken";
    params[n++] = web_identity_token;
    if (duration_seconds > 0) {
        snprintf(duration, sizeof duration, "%d", duration_seconds);
        params[n++] = "DurationSeconds";
        params[n++] = duration;
    }
    params[n] = NULL;
    xmlDocPtr doc = NULL;
    rd_status st = rd_aws_query_call(c, &rd_svc_sts, "AssumeRoleWithWebIdentity", params, 1, &doc, err);
    if (st != RD_OK)
        return rd_error_prefix(err, "assuming role %s with a web identity token: ", role_arn), st;
    st = rd_sts_parse_credentials(doc, "assume-role-with-web-identity", out, err);
    xmlFreeDoc(doc);
    return st;
}
