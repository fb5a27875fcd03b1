/* redduck/gc.h — `redduck gc`: deletes the staging prefixes (redduck-<uuid>/) that ingest runs left under a
 * staging location, those whose newest object is older than a bound (a run that is still going keeps
 * writing, so its prefix stays young). The next run of the same target sweeps its own dead runs' leftovers
 * by itself; gc is for prefixes whose target is gone or stages elsewhere now.
 * Ownership: options borrowed for the call; the result is filled by value. */
#ifndef REDDUCK_GC_H
#define REDDUCK_GC_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/error.h"
#include "redduck/session.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rd_gc_prefix {
    const char *url;        /* s3://bucket/prefix/redduck-<uuid>/ */
    size_t objects;
    uint64_t bytes;
    int64_t newest;         /* UTC seconds of its newest object */
    int deleted;            /* 1 deleted, 0 listed only (dry run, or too young: see eligible) */
    int eligible;           /* 1 old enough */
} rd_gc_prefix;

typedef struct rd_gc_options {
    const char *staging;    /* "s3://bucket/prefix", as given to ingest --staging */
    long older_than_s;      /* only prefixes whose newest object is at least this many seconds old */
    int dry_run;            /* 1: list what would be deleted, delete nothing */
    void (*on_prefix)(void *ctx, const rd_gc_prefix *p); /* each redduck-* prefix found; may be NULL */
    void *on_prefix_ctx;
} rd_gc_options;

typedef struct rd_gc_result {
    size_t prefixes, objects; /* deleted (or, with dry_run, that would be) */
    uint64_t bytes;
    size_t kept;              /* redduck-* prefixes younger than the bound */
} rd_gc_result;

/* RD_E_USAGE for a bad staging URL; S3 errors name the action (s3:ListBucket, s3:DeleteObject). */
rd_status rd_gc_staging(rd_session *s, const rd_gc_options *o, rd_gc_result *r, rd_error *err);

#ifdef __cplusplus
}
#endif
#endif
