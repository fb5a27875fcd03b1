/* redshift_data.h — the Redshift Data API calls ingest needs: ExecuteStatement, DescribeStatement (and a
 * wait loop polling it with capped backoff, a timeout and a cancel flag that sends CancelStatement),
 * CancelStatement and GetStatementResult pages. Owns request shapes and reply parsing; transport, signing
 * and retries are aws/client.h's. */
#ifndef RD_SERVICES_REDSHIFT_DATA_H
#define RD_SERVICES_REDSHIFT_DATA_H

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

#include "aws/client.h"

/* Where statements run: a Serverless workgroup, or a provisioned cluster with temporary IAM credentials
 * (neither db_user nor secret_arn), a database user (GetClusterCredentials) or a Secrets Manager secret. */
typedef struct rd_rsd_target {
    const char *workgroup;   /* or NULL */
    const char *cluster_id;  /* or NULL */
    const char *db_user;     /* cluster only, or NULL */
    const char *secret_arn;  /* or NULL */
    const char *database;    /* required */
} rd_rsd_target;

/* RD_E_USAGE unless exactly one of workgroup/cluster_id is set, database is set, and db_user is only
 * given with a cluster and not with secret_arn. */
rd_status rd_rsd_target_check(const rd_rsd_target *t, rd_error *err);

/* The IAM action the Data API performs for the caller to get database credentials for t:
 * "redshift-serverless:GetCredentials", "redshift:GetClusterCredentialsWithIAM",
 * "redshift:GetClusterCredentials" or "secretsmanager:GetSecretValue". */
const char *rd_rsd_target_credentials_action(const rd_rsd_target *t);

/* Asks Redshift for the temporary database credentials the Data API gets for the caller on t
 * (redshift-serverless:GetCredentials, or redshift:GetClusterCredentials[WithIAM]), as `redduck doctor` does
 * to test that permission; the password in the reply is dropped unread. RD_E_USAGE for a secret_arn target
 * (Secrets Manager, not asked here). */
rd_status rd_rsd_try_credentials(rd_aws_client *c, const rd_rsd_target *t, rd_error *err);

/* ExecuteStatement. client_token may be NULL (it makes a retried submission idempotent). id: 64 bytes. */
rd_status rd_rsd_execute(rd_aws_client *c, const rd_rsd_target *t, const char *sql, const char *client_token,
                         char id[64], rd_error *err);

typedef struct rd_rsd_description {
    char status[16];       /* SUBMITTED PICKED STARTED FINISHED ABORTED FAILED */
    char *error;           /* owned; Redshift's message when FAILED, or NULL */
    int has_result_set;
    int64_t result_rows;   /* -1 when not reported */
    int64_t duration_ns;   /* -1 when not reported */
} rd_rsd_description;
void rd_rsd_description_free(rd_rsd_description *d);

rd_status rd_rsd_describe(rd_aws_client *c, const char *id, rd_rsd_description *out, rd_error *err);
rd_status rd_rsd_cancel(rd_aws_client *c, const char *id, rd_error *err);

/* What the wait did about a statement it gave up on before seeing it end. */
typedef enum rd_rsd_cancel_outcome {
    RD_RSD_NOT_CANCELLED = 0, /* the wait saw the statement end: nothing to cancel */
    RD_RSD_CANCELLED,         /* CancelStatement was accepted */
    RD_RSD_CANCEL_ENDED,      /* CancelStatement answered that the statement had already ended */
    RD_RSD_CANCEL_FAILED      /* CancelStatement failed: the statement may still run */
} rd_rsd_cancel_outcome;

/* Stops a statement another process started (an earlier, killed run's): DescribeStatement, and when it still
 * runs CancelStatement and the settling wait of rd_rsd_wait's cancels (RD_RSD_SETTLE_MS, 10 s). */
typedef enum rd_rsd_stop_outcome {
    RD_RSD_STOP_ENDED,     /* it had ended (or the Data API no longer knows it) */
    RD_RSD_STOP_CANCELLED, /* it ran: cancelled, and seen to end */
    RD_RSD_STOP_RUNNING    /* it may still run: err says why */
} rd_rsd_stop_outcome;
rd_rsd_stop_outcome rd_rsd_stop(rd_aws_client *c, const char *id, rd_error *err);

typedef struct rd_rsd_wait_options {
    long timeout_ms;                      /* 0: no limit */
    long first_poll_ms;                   /* 0: 25 */
    long max_poll_ms;                     /* 0: 1000 (the cap) */
    const volatile sig_atomic_t *cancel;  /* non-zero: CancelStatement, then RD_E_CANCELLED */
    void (*tick)(void *ctx, const char *status, long elapsed_ms); /* after each poll, or NULL */
    void *tick_ctx;
    const char *still_running;            /* ends the message when CancelStatement fails (what the statement
                                             may still do, what to do about it); NULL: "it may still run" */
    rd_rsd_cancel_outcome *outcome;       /* out, or NULL: set on every return */
    /* Spends the ms between two polls instead of sleeping (ingest downloads the part files an UNLOAD has
     * finished meanwhile): returns within about ms, at once when cancel is raised. A non-OK return (err
     * set) ends the wait as a failed DescribeStatement does: the statement is cancelled, that error is
     * returned with the outcome. NULL: sleep. */
    rd_status (*nap)(void *ctx, long ms, rd_error *err);
    void *nap_ctx;
} rd_rsd_wait_options;

/* Polls DescribeStatement (delay doubling from first_poll_ms to max_poll_ms) until the statement ends.
 * FINISHED → RD_OK with *out filled. FAILED → RD_E_REMOTE "Redshift: <error>"; ABORTED → RD_E_REMOTE
 * "the statement was aborted" (plus Redshift's message when it gave one).
 * Every other way out cancels the statement, which was started and not seen to end: timeout →
 * RD_E_REMOTE naming the limit; cancel flag → RD_E_CANCELLED; a DescribeStatement that fails for good (its
 * retries spent, denied, network down) → its error. After an accepted CancelStatement the wait polls
 * DescribeStatement (single attempts, at most 10 s) until the statement reports an end, so that clean-up
 * after it does not race its last writes. The message says whether the statement was cancelled, had
 * already ended, or could not be cancelled (CancelStatement's error, then `still_running`); the code stays
 * that of the first failure, except that a denied CancelStatement after a timeout is RD_E_DENIED. */
rd_status rd_rsd_wait(rd_aws_client *c, const char *id, const rd_rsd_wait_options *o, rd_rsd_description *out,
                      rd_error *err);

/* One GetStatementResult page: *page is the reply (caller json_decref); next_token NULL for the first. */
rd_status rd_rsd_get_result(rd_aws_client *c, const char *id, const char *next_token, json_t **page,
                            rd_error *err);

#endif
