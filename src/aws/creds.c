/* creds.c — the credentials value type and the provider entry points (see include/redduck/creds.h). */
#include "redduck/creds.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void rd_credentials_init(rd_credentials *c)
{
    memset(c, 0, sizeof *c);
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void rd_credentials_free(rd_credentials *c)
{
    if (!c)
        return;
    free(c->access_key_id);
    free_secret(c->secret_access_key);
    free_secret(c->session_token);
    free(c->provider);
    free(c->source);
    free(c->account_id);
    rd_credentials_init(c);
}

rd_status rd_credentials_set(char **field, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = strdup(s)))
        return RD_E_INTERNAL;
    if (*field)
        OPENSSL_cleanse(*field, strlen(*field));
    free(*field);
    *field = copy;
    return RD_OK;
}

rd_status rd_credentials_copy(rd_credentials *dst, const rd_credentials *src)
{
    rd_credentials_init(dst);
    dst->expiration = src->expiration;
    if (rd_credentials_set(&dst->access_key_id, src->access_key_id) != RD_OK ||
        rd_credentials_set(&dst->secret_access_key, src->secret_access_key) != RD_OK ||
        rd_credentials_set(&dst->session_token, src->session_token) != RD_OK ||
        rd_credentials_set(&dst->provider, src->provider) != RD_OK ||
        rd_credentials_set(&dst->source, src->source) != RD_OK ||
        rd_credentials_set(&dst->account_id, src->account_id) != RD_OK) {
        rd_credentials_free(dst);
        return RD_E_INTERNAL;
    }
    return RD_OK;
}

rd_status rd_creds_provider_get(rd_creds_provider *p, rd_credentials *out, rd_error *err)
{
    rd_credentials_init(out);
    if (!p)
        return rd_error_set(err, RD_E_AUTH, "no credentials provider");
    rd_status st = p->vt->get(p, out, err);
    if (st != RD_OK)
        rd_credentials_free(out);
    return st;
}

void rd_creds_provider_free(rd_creds_provider *p)
{
    if (p)
        p->vt->destroy(p);
}

void rd_identity_free(rd_identity *id)
{
    if (!id)
        return;
    free(id->account);
    free(id->arn);
    free(id->user_id);
    id->account = id->arn = id->user_id = NULL;
}
