/* redshift_data.c — Redshift Data API client (see redshift_data.h). JSON 1.1 over rd_aws_json_call. */
#include "services/redshift_data.h"

#include "aws/endpoints.h"
#include "core/timeutil.h"
#include "redduck/buf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

rd_status rd_rsd_target_check(const rd_rsd_target *t, rd_error *err)
{
    int wg = t->workgroup && *t->workgroup, cl = t->cluster_id && *t->cluster_id;
    if (wg == cl)
        return rd_error_set(err, RD_E_USAGE, "give exactly one of --workgroup (Redshift Serverless) or "
                                             "--cluster-id (provisioned cluster)");
    if (!t->database || !*t->database)
        return rd_error_set(err, RD_E_USAGE, "no database given: pass --database (often 'dev')");
    if (t->db_user && *t->db_user && !cl)
        return rd_error_set(err, RD_E_USAGE, "--db-user applies to provisioned clusters only (use --cluster-id)");
    if (t->db_user && *t->db_user && t->secret_arn && *t->secret_arn)
        return rd_error_set(err, RD_E_USAGE, "give --db-user or --secret-arn, not both");
    return RD_OK;
}

const char *rd_rsd_target_credentials_action(const rd_rsd_target *t)
{
    if (t->secret_arn && *t->secret_arn)
        return "secretsmanager:GetSecretValue";
    if (t->workgroup && *t->workgroup)
        return "redshift-serverless:GetCredentials";
    if (t->db_user && *t->db_user)
        return "redshift:GetClusterCredentials";
    return "redshift:GetClusterCredentialsWithIAM";
}

rd_status rd_rsd_try_credentials(rd_aws_client *c, const rd_rsd_target *t, rd_error *err)
{
    if (t->secret_arn && *t->secret_arn)
        return rd_error_set(err, RD_E_USAGE, "a Secrets Manager secret gives the database credentials");
    if (t->workgroup && *t->workgroup) {
        json_t *in = json_pack("{s:s, s:s, s:i}", "workgroupName", t->workgroup, "dbName", t->database,
                               "durationSeconds", 900),
               *out = NULL;
        rd_status st = rd_aws_json_call(c, &rd_svc_redshift_serverless, "GetCredentials", in, &out, err);
        json_decref(in);
        json_decref(out); /* holds a database password: dropped unread */
        return st;
    }
    int iam = !(t->db_user && *t->db_user);
    const char *params[] = { "ClusterIdentifier", t->cluster_id, "DbName", t->database, "DurationSeconds", "900",
                             iam ? NULL : "DbUser", t->db_user, NULL };
    xmlDocPtr doc = NULL;
    rd_status st = rd_aws_query_call(c, &rd_svc_redshift, iam ? "GetClusterCredentialsWithIAM" : "GetClusterCredentials",
                                     params, 0, &doc, err);
    if (doc)
        xmlFreeDoc(doc); /* holds a database password: dropped unread */
    return st;
}

static void set_target(json_t *in, const rd_rsd_target *t)
{
    if (t->workgroup && *t->workgroup)
        json_object_set_new(in, "WorkgroupName", json_string(t->workgroup));
    if (t->cluster_id && *t->cluster_id)
        json_object_set_new(in, "ClusterIdentifier", json_string(t->cluster_id));
    if (t->db_user && *t->db_user)
        json_object_set_new(in, "DbUser", json_string(t->db_user));
    if (t->secret_arn && *t->secret_arn)
        json_object_set_new(in, "SecretArn", json_string(t->secret_arn));
    json_object_set_new(in, "Database", json_string(t->database));
}

rd_status rd_rsd_execute(rd_aws_client *c, const rd_rsd_target *t, const char *sql, const char *client_token,
                         char id[64], rd_error *err)
{
    rd_status st = rd_rsd_target_check(t, err);
    if (st != RD_OK)
        return st;
    json_t *in = json_object();
    set_target(in, t);
    json_object_set_new(in, "Sql", json_string(sql));
    if (client_token)
        json_object_set_new(in, "ClientToken", json_string(client_token));
    json_t *out = NULL;
    st = rd_aws_json_call(c, &rd_svc_redshift_data, "ExecuteStatement", in, &out, err);
    json_decref(in);
    if (st != RD_OK)
        return st;
    const char *s = json_string_value(json_object_get(out, "Id"));
    if (!s || strlen(s) >= 64)
        st = rd_error_set(err, RD_E_REMOTE, "ExecuteStatement reply has no statement Id");
    else
        snprintf(id, 64, "%s", s);
    json_decref(out);
    return st;
}

void rd_rsd_description_free(rd_rsd_description *d)
{
    free(d->error);
    d->error = NULL;
}

rd_status rd_rsd_describe(rd_aws_client *c, const char *id, rd_rsd_description *out, rd_error *err)
{
    json_t *in = json_pack("{s:s}", "Id", id), *r = NULL;
    rd_status st = rd_aws_json_call(c, &rd_svc_redshift_data, "DescribeStatement", in, &r, err);
    json_decref(in);
    if (st != RD_OK)
        return st;
    rd_rsd_description_free(out);
    memset(out, 0, sizeof *out);
    const char *status = json_string_value(json_object_get(r, "Status"));
    if (!status) {
        json_decref(r);
        return rd_error_set(err, RD_E_REMOTE, "DescribeStatement reply has no Status");
    }
    snprintf(out->status, sizeof out->status, "%s", status);
    const char *e = json_string_value(json_object_get(r, "Error"));
    out->error = e && *e ? strdup(e) : NULL;
    out->has_result_set = json_is_true(json_object_get(r, "HasResultSet"));
    json_t *rows = json_object_get(r, "ResultRows");
    out->result_rows = json_is_integer(rows) ? (int64_t)json_integer_value(rows) : -1;
    json_t *dur = json_object_get(r, "Duration");
    out->duration_ns = json_is_integer(dur) ? (int64_t)json_integer_value(dur) : -1;
    json_decref(r);
    return RD_OK;
}

rd_status rd_rsd_cancel(rd_aws_client *c, const char *id, rd_error *err)
{
    json_t *in = json_pack("{s:s}", "Id", id), *r = NULL;
    rd_status st = rd_aws_json_call(c, &rd_svc_redshift_data, "CancelStatement", in, &r, err);
    json_decref(in);
    json_decref(r);
    return st;
}

/* Sleeps up to ms, waking early (every 20 ms) when the cancel flag is raised. */
static void nap(long ms, const volatile sig_atomic_t *cancel)
{
    while (ms > 0 && !(cancel && *cancel)) {
        long step = ms < 20 ? ms : 20;
        struct timespec ts = { step / 1000, (step % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static int terminal(const char *status)
{
    return strcmp(status, "FINISHED") == 0 || strcmp(status, "FAILED") == 0 || strcmp(status, "ABORTED") == 0;
}

#define RD_RSD_SETTLE_MS 10000

/* CancelStatement for a statement the wait gives up on; once accepted, polls (one attempt per call: the
 * describe may be what is failing) until the statement reports an end or RD_RSD_SETTLE_MS pass. *ended
 * (when not NULL): 1 when an end was seen. */
static rd_rsd_cancel_outcome cancel_statement(rd_aws_client *c, const char *id, rd_error *ce, int *ended)
{
    rd_error_clear(ce);
    if (ended)
        *ended = 0;
    if (rd_rsd_cancel(c, id, ce) != RD_OK) /* "Could not cancel a query that is already in FINISHED state." */
        return strcmp(ce->aws_code, "ValidationException") == 0 ? RD_RSD_CANCEL_ENDED : RD_RSD_CANCEL_FAILED;
    rd_aws_client once = *c;
    once.max_attempts = 1;
    long long t0 = rd_monotonic_ms();
    for (long delay = 25; rd_monotonic_ms() - t0 < RD_RSD_SETTLE_MS; delay = delay * 2 > 500 ? 500 : delay * 2) {
        rd_rsd_description d = { 0 };
        rd_error e;
        rd_error_clear(&e);
        rd_status st = rd_rsd_describe(&once, id, &d, &e);
        int end = st == RD_OK && terminal(d.status);
        rd_rsd_description_free(&d);
        if (end && ended)
            *ended = 1;
        if (st != RD_OK || end)
            break;
        nap(delay, NULL);
    }
    return RD_RSD_CANCELLED;
}

rd_rsd_stop_outcome rd_rsd_stop(rd_aws_client *c, const char *id, rd_error *err)
{
    rd_rsd_description d = { 0 };
    rd_status st = rd_rsd_describe(c, id, &d, err);
    int ended = st == RD_OK && terminal(d.status);
    rd_rsd_description_free(&d);
    if (st == RD_E_NOT_FOUND)
        return RD_RSD_STOP_ENDED; /* the Data API keeps statements for 24 hours: long ended */
    if (st != RD_OK)
        return RD_RSD_STOP_RUNNING;
    if (ended)
        return RD_RSD_STOP_ENDED;
    rd_error ce;
    rd_rsd_cancel_outcome oc = cancel_statement(c, id, &ce, &ended);
    if (oc == RD_RSD_CANCEL_ENDED)
        return RD_RSD_STOP_ENDED;
    if (oc == RD_RSD_CANCEL_FAILED) {
        rd_error_set(err, ce.code, "CancelStatement: %s", ce.message);
        return RD_RSD_STOP_RUNNING;
    }
    if (!ended) {
        rd_error_set(err, RD_E_REMOTE, "cancelled, but not seen to end within %d s", RD_RSD_SETTLE_MS / 1000);
        return RD_RSD_STOP_RUNNING;
    }
    return RD_RSD_STOP_CANCELLED;
}

/* Appends to err's message what became of the statement after a cancel; keeps err's code. */
static void say_cancelled(rd_error *err, rd_rsd_cancel_outcome oc, const rd_error *ce, const char *still_running)
{
    if (!err)
        return;
    rd_buf msg = RD_BUF_INIT;
    rd_buf_puts(&msg, err->message);
    if (oc == RD_RSD_CANCELLED)
        rd_buf_puts(&msg, "; the statement was cancelled");
    else if (oc == RD_RSD_CANCEL_ENDED)
        rd_buf_puts(&msg, "; the statement had already ended");
    else
        rd_buf_printf(&msg, ", and CancelStatement failed too (%s): %s", ce->message,
                      still_running ? still_running : "it may still run");
    if (!rd_buf_failed(&msg)) /* else err keeps its message, without the outcome */
        rd_error_set(err, err->code, "%s", rd_buf_cstr(&msg));
    rd_buf_free(&msg);
}

rd_status rd_rsd_wait(rd_aws_client *c, const char *id, const rd_rsd_wait_options *o, rd_rsd_description *out,
                      rd_error *err)
{
    long delay = o && o->first_poll_ms > 0 ? o->first_poll_ms : 25;
    long cap = o && o->max_poll_ms > 0 ? o->max_poll_ms : 1000;
    const volatile sig_atomic_t *cancel = o ? o->cancel : NULL;
    const char *still = o ? o->still_running : NULL;
    rd_rsd_cancel_outcome dummy, *oc = o && o->outcome ? o->outcome : &dummy;
    *oc = RD_RSD_NOT_CANCELLED;
    rd_error ce;
    long long t0 = rd_monotonic_ms();
    for (;;) {
        if (cancel && *cancel) {
            *oc = cancel_statement(c, id, &ce, NULL);
            rd_error_set(err, RD_E_CANCELLED, "interrupted while statement %s ran", id);
            say_cancelled(err, *oc, &ce, still);
            return RD_E_CANCELLED;
        }
        rd_status st = rd_rsd_describe(c, id, out, err);
        if (st != RD_OK) {
            rd_error_prefix(err, "waiting for statement %s: ", id);
            *oc = cancel_statement(c, id, &ce, NULL);
            say_cancelled(err, *oc, &ce, still);
            return st;
        }
        long elapsed = (long)(rd_monotonic_ms() - t0);
        if (o && o->tick)
            o->tick(o->tick_ctx, out->status, elapsed);
        if (strcmp(out->status, "FINISHED") == 0)
            return RD_OK;
        if (strcmp(out->status, "FAILED") == 0)
            return rd_error_set(err, RD_E_REMOTE, "Redshift: %s", out->error ? out->error : "the statement failed");
        if (strcmp(out->status, "ABORTED") == 0)
            return rd_error_set(err, RD_E_REMOTE, "the statement was aborted%s%s", out->error ? ": " : "",
                                out->error ? out->error : " (cancelled by someone else, or by Redshift)");
        if (o && o->timeout_ms > 0 && elapsed >= o->timeout_ms) {
            *oc = cancel_statement(c, id, &ce, NULL);
            if (*oc == RD_RSD_CANCEL_FAILED) {
                rd_error_set(err, ce.code, "the statement did not finish within %ld s", o->timeout_ms / 1000);
                say_cancelled(err, *oc, &ce, still);
                return ce.code;
            }
            return rd_error_set(err, RD_E_REMOTE, "the statement did not finish within %ld s and %s (raise "
                                "--timeout)", o->timeout_ms / 1000,
                                *oc == RD_RSD_CANCELLED ? "was cancelled" : "ended as it was being cancelled");
        }
        long d = delay;
        if (o && o->timeout_ms > 0 && elapsed + d > o->timeout_ms)
            d = o->timeout_ms - elapsed;
        if (o && o->nap) {
            if ((st = o->nap(o->nap_ctx, d, err)) != RD_OK && !(cancel && *cancel)) {
                *oc = cancel_statement(c, id, &ce, NULL);
                say_cancelled(err, *oc, &ce, still);
                return st;
            }
        } else {
            nap(d, cancel);
        }
        delay = delay * 2 > cap ? cap : delay * 2;
    }
}

rd_status rd_rsd_get_result(rd_aws_client *c, const char *id, const char *next_token, json_t **page,
                            rd_error *err)
{
    json_t *in = json_pack("{s:s}", "Id", id);
    if (next_token)
        json_object_set_new(in, "NextToken", json_string(next_token));
    rd_status st = rd_aws_json_call(c, &rd_svc_redshift_data, "GetStatementResult", in, page, err);
    json_decref(in);
    return st;
}
