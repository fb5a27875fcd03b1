/* creds_assume_role.c — STS AssumeRole with the credentials of a source provider (botocore's
 * AssumeRoleProvider). The source_profile / credential_source resolution is in creds_chain.c. */
#include "auth/creds_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/parse.h"
#include "core/timeutil.h"
#include "redduck/buf.h"
#include "services/sts.h"

/* --- assume role ---------------------------------------------------------------------------------------- */

typedef struct assume_role_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
    rd_creds_provider *source;
    char *role_arn, *session_name, *external_id;
    int duration_seconds;
} assume_role_provider;

static rd_status assume_role_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    assume_role_provider *p = (assume_role_provider *)base;
    rd_aws_client c;
    memset(&c, 0, sizeof c);
    c.http = p->ctx->http;
    c.creds = p->source;
    c.cfg = p->ctx->cfg;
    c.profile = p->profile;
    const char *region = rd_aws_config_get(p->ctx->cfg, p->profile, "region");
    c.region = p->ctx->region ? p->ctx->region : region ? region : "us-east-1";
    c.log = p->ctx->log;
    c.now = p->ctx->now;
    rd_sts_assume_role_input in = { p->role_arn, p->session_name, p->external_id, p->duration_seconds, NULL, NULL };
    rd_status st = rd_sts_assume_role(&c, &in, out, err);
    if (st == RD_E_NOT_FOUND && err && !err->http_status) {
        /* the source had nothing (botocore: InvalidConfigError) */
        err->code = st = RD_E_CONFIG;
    }
    if (st != RD_OK) {
        rd_error_prefix(err, "profile '%s': ", p->profile);
        if (st == RD_E_NOT_FOUND)
            st = err ? (err->code = RD_E_REMOTE) : RD_E_REMOTE;
        return st;
    }
    rd_buf src = RD_BUF_INIT;
    rd_buf_printf(&src, "role %s (profile %s)", p->role_arn, p->profile);
    rd_credentials_set(&out->source, rd_buf_cstr(&src));
    rd_buf_free(&src);
    return RD_OK;
}

static void assume_role_destroy(rd_creds_provider *base)
{
    assume_role_provider *p = (assume_role_provider *)base;
    rd_creds_provider_free(p->source);
    free(p->profile);
    free(p->role_arn);
    free(p->session_name);
    free(p->external_id);
    free(p);
}

static const rd_creds_provider_vtable assume_role_vtable = { "assume-role", assume_role_get, assume_role_destroy };

rd_status rd_creds_assume_role_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider *source,
                                   const char *role_arn, const char *session_name, const char *external_id,
                                   int duration_seconds, rd_creds_provider **out, rd_error *err)
{
    assume_role_provider *p = calloc(1, sizeof *p);
    if (!p) {
        rd_creds_provider_free(source);
        return rd_creds_oom(err);
    }
    p->base.vt = &assume_role_vtable;
    p->ctx = ctx;
    p->source = source;
    p->profile = strdup(profile);
    p->role_arn = strdup(role_arn);
    p->session_name = session_name ? strdup(session_name) : NULL;
    p->external_id = external_id ? strdup(external_id) : NULL;
    p->duration_seconds = duration_seconds;
    if (!p->profile || !p->role_arn) {
        assume_role_destroy(&p->base);
        return rd_creds_oom(err);
    }
    *out = &p->base;
    return RD_OK;
}
