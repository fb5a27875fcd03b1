/* doctor.c — permission checks for a connector (see doctor.h). */
#include "redduck/doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "ingest/unload_sql.h"
#include "services/redshift_data.h"
#include "services/s3.h"
#include "services/sts.h"

rd_doctor_check *rd_doctor_report_add(rd_doctor_report *r, const char *what, const char *action,
                                      const char *resource)
{
    rd_doctor_check *c = &r->spare;
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        rd_doctor_check *items = realloc(r->items, cap * sizeof *items);
        if (items) {
            r->items = items;
            r->cap = cap;
        }
    }
    if (r->count < r->cap) {
        c = &r->items[r->count++];
    } else {
        r->out_of_memory = 1;
        r->failed++;
    }
    memset(c, 0, sizeof *c);
    snprintf(c->what, sizeof c->what, "%s", what);
    snprintf(c->action, sizeof c->action, "%s", action);
    snprintf(c->resource, sizeof c->resource, "%s", resource);
    return c;
}

void rd_doctor_report_free(rd_doctor_report *r)
{
    free(r->items);
    memset(r, 0, sizeof *r);
}

static rd_doctor_check *add(rd_doctor_report *r, const char *what, const char *action, const char *resource)
{
    return rd_doctor_report_add(r, what, action, resource);
}

static void verdict(rd_doctor_report *r, rd_doctor_check *c, rd_status st, const rd_error *err, const char *ok)
{
    c->ok = st == RD_OK;
    snprintf(c->detail, sizeof c->detail, "%.500s", st == RD_OK ? ok : err->message);
    if (st != RD_OK)
        r->failed++;
}

static void skip(rd_doctor_report *r, const char *what, const char *action, const char *resource, const char *why)
{
    rd_doctor_check *c = add(r, what, action, resource);
    c->ok = -1;
    snprintf(c->detail, sizeof c->detail, "skipped: %s", why);
}

void rd_doctor_run(rd_session *s, const rd_connector *con, rd_doctor_report *out)
{
    memset(out, 0, sizeof *out);
    rd_error err;
    rd_error_clear(&err);
    const char *region = NULL, *src = NULL;
    rd_doctor_check *c = add(out, "credentials + region", "sts:GetCallerIdentity", "*");
    rd_status st = rd_session_region(s, &region, &src, &err);
    rd_identity id = { 0 };
    if (st == RD_OK)
        st = rd_session_whoami(s, &id, &err);
    char who[300] = "";
    if (st == RD_OK)
        snprintf(who, sizeof who, "%s in %s", id.arn, region);
    verdict(out, c, st, &err, who);
    char account[32] = "*";
    if (id.account)
        snprintf(account, sizeof account, "%s", id.account);
    rd_identity_free(&id);
    if (st != RD_OK)
        return; /* nothing else can be tried without credentials */
    rd_aws_client cl;
    rd_session_client(s, region, &cl);
    rd_rsd_target t = { con->workgroup, con->cluster_identifier, con->db_user, con->secret_arn,
                        con->database ? con->database : "dev" };
    char res[256];

    /* database credentials, as the Data API gets them for this caller */
    const char *cred_action = rd_rsd_target_credentials_action(&t);
    if (con->workgroup) {
        snprintf(res, sizeof res, "arn:aws:redshift-serverless:%s:%s:workgroup/%s", region, account, con->workgroup);
        c = add(out, "database credentials", cred_action, res);
        rd_error_clear(&err);
        st = rd_rsd_try_credentials(&cl, &t, &err);
        verdict(out, c, st, &err, "temporary database credentials issued");
    } else if (!con->secret_arn) {
        int iam = !con->db_user;
        if (iam)
            snprintf(res, sizeof res, "arn:aws:redshift:%s:%s:dbname:%s/%s", region, account,
                     con->cluster_identifier, t.database);
        else
            snprintf(res, sizeof res, "arn:aws:redshift:%s:%s:dbuser:%s/%s", region, account,
                     con->cluster_identifier, con->db_user);
        c = add(out, "database credentials", cred_action, res);
        rd_error_clear(&err);
        st = rd_rsd_try_credentials(&cl, &t, &err);
        verdict(out, c, st, &err, "temporary database credentials issued");
    } else {
        skip(out, "database credentials", cred_action, con->secret_arn, "a Secrets Manager secret is used");
    }

    /* the Data API */
    const char *target = con->workgroup ? con->workgroup : con->cluster_identifier;
    snprintf(res, sizeof res, "arn:aws:%s:%s:%s:%s%s", con->workgroup ? "redshift-serverless" : "redshift", region,
             account, con->workgroup ? "workgroup/" : "cluster:", target ? target : "?");
    char id1[64] = "";
    c = add(out, "ExecuteStatement", "redshift-data:ExecuteStatement", res);
    rd_error_clear(&err);
    st = rd_rsd_execute(&cl, &t, "select 1 as redduck_doctor", NULL, id1, &err);
    verdict(out, c, st, &err, "select 1 submitted");
    if (st == RD_OK) {
        c = add(out, "DescribeStatement", "redshift-data:DescribeStatement", res);
        rd_rsd_description d = { 0 };
        rd_rsd_wait_options wo = { .timeout_ms = 60000 };
        rd_error_clear(&err);
        st = rd_rsd_wait(&cl, id1, &wo, &d, &err);
        rd_rsd_description_free(&d);
        verdict(out, c, st, &err, "select 1 finished");
        c = add(out, "GetStatementResult", "redshift-data:GetStatementResult", res);
        json_t *page = NULL;
        rd_error_clear(&err);
        rd_status gst = st == RD_OK ? rd_rsd_get_result(&cl, id1, NULL, &page, &err) : st;
        json_decref(page);
        if (st == RD_OK)
            verdict(out, c, gst, &err, "result read");
        else {
            c->ok = -1;
            snprintf(c->detail, sizeof c->detail, "skipped: the statement did not finish");
        }
        /* CancelStatement on a finished statement: AWS answers ValidationException when allowed */
        c = add(out, "CancelStatement", "redshift-data:CancelStatement", res);
        rd_error_clear(&err);
        rd_status cst = rd_rsd_cancel(&cl, id1, &err);
        if (cst != RD_OK && cst != RD_E_DENIED && strcmp(err.aws_code, "ValidationException") == 0)
            cst = RD_OK;
        verdict(out, c, cst, &err, "allowed (the statement had already finished)");
    } else {
        skip(out, "DescribeStatement", "redshift-data:DescribeStatement", res, "ExecuteStatement failed");
        skip(out, "GetStatementResult", "redshift-data:GetStatementResult", res, "ExecuteStatement failed");
        skip(out, "CancelStatement", "redshift-data:CancelStatement", res, "ExecuteStatement failed");
    }

    /* the staging location */
    if (!con->output_location) {
        skip(out, "staging bucket", "s3:ListBucket", "(output_location not set)",
             "no output_location: ingest will use the Data API result path");
        return;
    }
    char *bucket = NULL, *prefix = NULL;
    rd_error_clear(&err);
    if (rd_s3_parse_url(con->output_location, &bucket, &prefix, &err) != RD_OK) {
        c = add(out, "staging location", "-", con->output_location);
        verdict(out, c, RD_E_CONFIG, &err, "");
        return;
    }
    char bregion[64] = "";
    snprintf(res, sizeof res, "arn:aws:s3:::%s", bucket);
    c = add(out, "staging bucket (HeadBucket, ListObjectsV2)", "s3:ListBucket", res);
    rd_error_clear(&err);
    st = rd_s3_head_bucket(&cl, bucket, bregion, sizeof bregion, &err);
    rd_aws_client s3c;
    rd_session_client(s, st == RD_OK ? bregion : region, &s3c);
    rd_s3_object_list l = { 0 };
    if (st == RD_OK)
        st = rd_s3_list(&s3c, bucket, prefix, &l, &err);
    rd_s3_object_list_free(&l);
    char ok[128];
    snprintf(ok, sizeof ok, "bucket in %s", bregion);
    verdict(out, c, st, &err, ok);

    /* a one-row UNLOAD: the role's PutObject; then our GetObject and DeleteObject of what it wrote */
    unsigned char u[8];
    if (RAND_bytes(u, sizeof u) != 1) {
        c = add(out, "UNLOAD writes (the cluster's role)", "-", con->output_location);
        rd_error_clear(&err);
        verdict(out, c, rd_error_set(&err, RD_E_INTERNAL, "no random bytes from OpenSSL"), &err, "");
        free(bucket);
        free(prefix);
        return;
    }
    char sub[512];
    snprintf(sub, sizeof sub, "%s%sredduck-doctor-%02x%02x%02x%02x%02x%02x%02x%02x/", prefix,
             *prefix && prefix[strlen(prefix) - 1] != '/' ? "/" : "", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7]);
    snprintf(res, sizeof res, "arn:aws:s3:::%.63s/%.170s*", bucket, sub);
    char role[160];
    snprintf(role, sizeof role, "s3:PutObject (granted to %s)", con->role_arn ? con->role_arn : "the default IAM role");
    c = add(out, "UNLOAD writes (the cluster's role)", role, res);
    rd_buf sql = RD_BUF_INIT, dest = RD_BUF_INIT;
    rd_buf_printf(&dest, "s3://%s/%s", bucket, sub);
    rd_unload_request ur = { 0 };
    ur.sql = "select 1 as redduck_doctor";
    ur.destination = rd_buf_cstr(&dest);
    ur.iam_role = con->role_arn;
    ur.region = strcmp(bregion, region) != 0 && bregion[0] ? bregion : NULL;
    rd_error_clear(&err);
    st = rd_unload_sql_build(&ur, &sql, &err);
    char id2[64] = "";
    if (st == RD_OK)
        st = rd_rsd_execute(&cl, &t, rd_buf_cstr(&sql), NULL, id2, &err);
    if (st == RD_OK) {
        rd_rsd_description d = { 0 };
        rd_rsd_wait_options wo = { .timeout_ms = 120000 };
        st = rd_rsd_wait(&cl, id2, &wo, &d, &err);
        rd_rsd_description_free(&d);
    }
    rd_buf_free(&sql);
    rd_buf_free(&dest);
    verdict(out, c, st, &err, "UNLOAD wrote its files");
    int unloaded = st == RD_OK;
    rd_s3_object_list files = { 0 };
    rd_error le;
    rd_error_clear(&le);
    rd_s3_list(&s3c, bucket, sub, &files, &le);
    c = add(out, "download the staged files", "s3:GetObject", res);
    if (unloaded && files.count) {
        rd_buf body = RD_BUF_INIT;
        rd_error_clear(&err);
        st = rd_s3_get(&s3c, bucket, files.items[0].key, 64u << 20, &body, &err);
        rd_buf_free(&body);
        verdict(out, c, st, &err, "read back");
    } else {
        c->ok = -1;
        snprintf(c->detail, sizeof c->detail, "skipped: the UNLOAD wrote nothing to read");
    }
    c = add(out, "delete the staged files", "s3:DeleteObject", res);
    if (files.count) {
        const char *keys[64];
        size_t n = files.count < 64 ? files.count : 64, deleted = 0;
        for (size_t i = 0; i < n; i++)
            keys[i] = files.items[i].key;
        rd_error_clear(&err);
        st = rd_s3_delete_keys(&s3c, bucket, keys, n, &deleted, &err);
        verdict(out, c, st, &err, "cleaned up");
    } else {
        c->ok = -1;
        snprintf(c->detail, sizeof c->detail, "skipped: nothing was written");
    }
    rd_s3_object_list_free(&files);
    free(bucket);
    free(prefix);
}
