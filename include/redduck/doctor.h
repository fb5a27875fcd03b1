/* redduck/doctor.h — `redduck doctor`: for one connector, tries every permission an ingest needs with real but
 * harmless calls (STS GetCallerIdentity; Serverless GetCredentials or GetClusterCredentials[WithIAM];
 * ExecuteStatement/DescribeStatement/GetStatementResult of `select 1`; CancelStatement of a statement that
 * has just run; HeadBucket/ListObjectsV2 on the staging location; a one-row UNLOAD there (the role's
 * s3:PutObject), GetObject of its file, DeleteObject of what it wrote). Database passwords returned by the
 * credential calls are discarded, never printed. Owns its report. */
#ifndef REDDUCK_DOCTOR_H
#define REDDUCK_DOCTOR_H

#include <stddef.h>

#include "redduck/project.h"
#include "redduck/session.h"

typedef struct rd_doctor_check {
    char what[64];        /* "ExecuteStatement" */
    char action[192];     /* the IAM action ("redshift-data:ExecuteStatement"), and whose when not the caller's */
    char resource[256];   /* the resource to grant it on */
    int ok;               /* 1 ✓, 0 ✗, -1 skipped (an earlier check it depends on failed) */
    char detail[512];     /* what happened (AWS's message on ✗) */
} rd_doctor_check;

typedef struct rd_doctor_report {
    rd_doctor_check *items;   /* owned, count of them, in the order they were added */
    size_t count, cap;
    size_t failed;
    int out_of_memory;        /* 1 when a check could not be stored (counted in failed) */
    rd_doctor_check spare;    /* what rd_doctor_report_add hands out when out of memory */
} rd_doctor_report;

/* A zeroed report is empty. Appends a check (what, action, resource copied, truncated to the fields; ok 0,
 * detail ""), growing the list: no check is ever lost. Out of memory: out_of_memory set, failed counted, and
 * the returned check (the spare) is not kept. Never NULL. */
rd_doctor_check *rd_doctor_report_add(rd_doctor_report *r, const char *what, const char *action,
                                      const char *resource);
/* Frees the items; the report is empty again. */
void rd_doctor_report_free(rd_doctor_report *r);

/* Runs the checks for connector c with session s (its region must resolve) into out (initialised here; the
 * caller frees it). Never fails as a whole: every problem is a ✗ row. Not thread-safe on one report. */
void rd_doctor_run(rd_session *s, const rd_connector *c, rd_doctor_report *out);

#endif
