/* creds_cache.c — the caching provider: keeps an inner provider's credentials and refreshes them before
 * they expire (botocore's advisory 15 min / mandatory 10 min windows); one refresh at a time. */
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

#define MANDATORY_REFRESH_S (10 * 60)

/* --- cache ---------------------------------------------------------------------------------------------- */

typedef struct cached_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    rd_creds_provider *inner;
    pthread_mutex_t lock;
    rd_credentials current;
    int have;
} cached_provider;

static rd_status cached_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    cached_provider *p = (cached_provider *)base;
    pthread_mutex_lock(&p->lock);
    time_t now = rd_creds_ctx_now(p->ctx);
    rd_status st = RD_OK;
    int fresh = p->have && (p->current.expiration == 0 || p->current.expiration - now > RD_CREDS_REFRESH_WINDOW_S);
    if (!fresh) {
        rd_credentials next;
        rd_credentials_init(&next);
        st = p->inner->vt->get(p->inner, &next, err);
        if (st == RD_OK) {
            rd_credentials_free(&p->current);
            p->current = next;
            p->have = 1;
        } else {
            rd_credentials_free(&next);
            /* botocore: a failed advisory refresh keeps credentials valid beyond the mandatory window */
            if (p->have && p->current.expiration - now > MANDATORY_REFRESH_S)
                st = RD_OK;
        }
    }
    if (st == RD_OK) {
        rd_credentials_free(out);
        if (rd_credentials_copy(out, &p->current) != RD_OK)
            st = rd_creds_oom(err);
    }
    pthread_mutex_unlock(&p->lock);
    return st;
}

static void cached_destroy(rd_creds_provider *base)
{
    cached_provider *p = (cached_provider *)base;
    rd_creds_provider_free(p->inner);
    rd_credentials_free(&p->current);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static const rd_creds_provider_vtable cached_vtable = { "cached", cached_get, cached_destroy };

rd_status rd_creds_cached_new(const rd_creds_ctx *ctx, rd_creds_provider *inner, rd_creds_provider **out,
                              rd_error *err)
{
    cached_provider *p = calloc(1, sizeof *p);
    if (!p) {
        rd_creds_provider_free(inner);
        return rd_creds_oom(err);
    }
    p->base.vt = &cached_vtable;
    p->ctx = ctx;
    p->inner = inner;
    pthread_mutex_init(&p->lock, NULL);
    rd_credentials_init(&p->current);
    *out = &p->base;
    return RD_OK;
}
