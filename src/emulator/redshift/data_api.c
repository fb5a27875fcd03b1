/* data_api.c — the Redshift Data API (JSON 1.1, redshift-data 2019-12-20) over the engine: request
 * validation, authorisation, statement ownership, sessions (SessionKeepAliveSeconds, SessionId), the response
 * shapes of botocore's model, and the rendering of results as typed Records (GetStatementResult) or CSV text
 * (GetStatementResultV2) in Redshift's text formats. The catalog calls are data_catalog.c's. Does not run SQL
 * itself. */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/emu_error.h"
#include "emulator/emulator.h"
#include "emulator/redshift/data_api_internal.h"
#include "emulator/redshift/engine_internal.h"
#include "emulator/replies.h"

#ifdef RD_HAVE_DUCKDB

#define DATA_API_PREFIX "redshift-data:"

static void reply_error(rd_emu_response *resp, const rd_emu_request *req, const char *type, const char *msg,
                        const char *resource_id)
{
    if (!resource_id) {
        rd_emu_reply_json_error(resp, 400, type, msg, req ? req->request_id : NULL);
        return;
    }
    /* ResourceNotFoundException and the statement exceptions carry an extra member */
    json_t *o = json_pack("{s:s, s:s, s:s}", "__type", type, "message", msg,
                          strcmp(type, "ResourceNotFoundException") == 0 ? "ResourceId" : "StatementId", resource_id);
    rd_emu_reply_json(resp, o, req ? req->request_id : NULL);
    resp->status = 400;
}

/* The engine's error as the reply (ResourceNotFoundException names the resource). */
static void reply_engine_error(rd_emu_response *resp, const rd_emu_request *req, const rd_emu_error *e,
                               const char *rid)
{
    reply_error(resp, req, e->code, e->message, strcmp(e->code, "ResourceNotFoundException") == 0 ? rid : NULL);
    if (e->http_status)
        resp->status = e->http_status;
}

static const char *jstr(json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int wrong_type(json_t *body, const char *key, int want_string)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    return want_string ? !json_is_string(v) : 0;
}

static const char *owner_of(const rd_emu_request *req)
{
    return req ? req->principal_arn : NULL;
}

static void target_arn(rd_buf *b, const rd_emu_request *req, int is_cluster, const char *name)
{
    const char *region = req && req->region ? req->region : "us-east-1";
    const char *account = req && req->account_id ? req->account_id : "000000000000";
    if (is_cluster)
        rd_buf_printf(b, "arn:aws:redshift:%s:%s:cluster:%s", region, account, name);
    else
        rd_buf_printf(b, "arn:aws:redshift-serverless:%s:%s:workgroup/%s", region, account, name);
}

static int authorise(rd_emu *emu, const rd_emu_request *req, rd_emu_response *resp, const char *op, int is_cluster,
                     const char *name)
{
    rd_buf arn = RD_BUF_INIT, action = RD_BUF_INIT;
    if (name)
        target_arn(&arn, req, is_cluster, name);
    else
        rd_buf_puts(&arn, "*");
    rd_buf_printf(&action, DATA_API_PREFIX "%s", op);
    int ok = rd_emu_allowed(emu, req, rd_buf_cstr(&action), rd_buf_cstr(&arn));
    if (!ok) {
        char msg[768];
        snprintf(msg, sizeof msg, "User: %s is not authorized to perform: %s on resource: %s",
                 req && req->principal_arn ? req->principal_arn : "anonymous", rd_buf_cstr(&action), rd_buf_cstr(&arn));
        reply_error(resp, req, "AccessDeniedException", msg, NULL);
    }
    rd_buf_free(&arn);
    rd_buf_free(&action);
    return ok;
}

static json_t *params_json(char **names, char **values, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s}", "name", names[i], "value", values[i]));
    return a;
}

/* Common target members of the request, validated. Returns 0 after replying with an error. */
typedef rd_emu_data_target target_in;

static int read_target(json_t *body, const rd_emu_request *req, rd_emu_response *resp, target_in *t)
{
    const char *wg = jstr(body, "WorkgroupName"), *cl = jstr(body, "ClusterIdentifier");
    t->database = jstr(body, "Database");
    t->db_user = jstr(body, "DbUser");
    t->secret_arn = jstr(body, "SecretArn");
    if (wrong_type(body, "WorkgroupName", 1) || wrong_type(body, "ClusterIdentifier", 1) ||
        wrong_type(body, "Database", 1) || wrong_type(body, "DbUser", 1) || wrong_type(body, "SecretArn", 1)) {
        reply_error(resp, req, "ValidationException", "A string member has a value of the wrong type.", NULL);
        return 0;
    }
    if (wg && cl) {
        reply_error(resp, req, "ValidationException",
                    "Either WorkgroupName or ClusterIdentifier must be specified, but not both.", NULL);
        return 0;
    }
    if (!wg && !cl) {
        reply_error(resp, req, "ValidationException", "Either WorkgroupName or ClusterIdentifier must be specified.",
                    NULL);
        return 0;
    }
    if (t->db_user && t->secret_arn) {
        reply_error(resp, req, "ValidationException", "Either DbUser or SecretArn can be specified, but not both.",
                    NULL);
        return 0;
    }
    if (wg && t->db_user) {
        reply_error(resp, req, "ValidationException", "DbUser is not supported for a serverless workgroup.", NULL);
        return 0;
    }
    t->is_cluster = cl != NULL;
    t->name = cl ? cl : wg;
    if (!t->database && !t->secret_arn) {
        reply_error(resp, req, "ValidationException", "Database is required.", NULL);
        return 0;
    }
    if (!t->database)
        t->database = "dev";
    return 1;
}

/* The Data API fetches database credentials as the caller: GetCredentials (Serverless),
 * GetClusterCredentialsWithIAM (cluster, IAM identity), GetClusterCredentials (cluster + DbUser) or the
 * secret (SecretArn). Denied → AccessDeniedException naming that action and resource. */
static int authorise_db_credentials(rd_emu *emu, const rd_emu_request *req, rd_emu_response *resp,
                                    const target_in *t)
{
    const char *region = req && req->region ? req->region : "us-east-1";
    const char *account = req && req->account_id ? req->account_id : "000000000000";
    rd_buf arn = RD_BUF_INIT;
    const char *action;
    if (t->secret_arn) {
        action = "secretsmanager:GetSecretValue";
        rd_buf_puts(&arn, t->secret_arn);
    } else if (!t->is_cluster) {
        action = "redshift-serverless:GetCredentials";
        rd_buf_printf(&arn, "arn:aws:redshift-serverless:%s:%s:workgroup/%s", region, account, t->name);
    } else if (t->db_user) {
        action = "redshift:GetClusterCredentials";
        rd_buf_printf(&arn, "arn:aws:redshift:%s:%s:dbuser:%s/%s", region, account, t->name, t->db_user);
    } else {
        action = "redshift:GetClusterCredentialsWithIAM";
        rd_buf_printf(&arn, "arn:aws:redshift:%s:%s:dbname:%s/%s", region, account, t->name, t->database);
    }
    int ok = rd_emu_allowed(emu, req, action, rd_buf_cstr(&arn));
    if (!ok) {
        char msg[768];
        snprintf(msg, sizeof msg, "User: %s is not authorized to perform: %s on resource: %s",
                 req && req->principal_arn ? req->principal_arn : "anonymous", action, rd_buf_cstr(&arn));
        reply_error(resp, req, "AccessDeniedException", msg, NULL);
    }
    rd_buf_free(&arn);
    return ok;
}

/* What data_catalog.c shares (data_api_internal.h). */
void rd_emu_data_reply_error(rd_emu_response *resp, const rd_emu_request *req, const char *type, const char *msg,
                             const char *resource_id)
{
    reply_error(resp, req, type, msg, resource_id);
}

const char *rd_emu_data_jstr(json_t *body, const char *key)
{
    return jstr(body, key);
}

int rd_emu_data_read_target(json_t *body, const rd_emu_request *req, rd_emu_response *resp, rd_emu_data_target *t)
{
    return read_target(body, req, resp, t);
}

int rd_emu_data_authorise(rd_emu *emu, const rd_emu_request *req, rd_emu_response *resp, const char *op,
                          int is_cluster, const char *name)
{
    return authorise(emu, req, resp, op, is_cluster, name);
}

int rd_emu_data_authorise_db(rd_emu *emu, const rd_emu_request *req, rd_emu_response *resp,
                             const rd_emu_data_target *t)
{
    return authorise_db_credentials(emu, req, resp, t);
}

static int valid_id(const char *id);

static void free_session_target(char *target, char *database, char *db_user, char *secret_arn)
{
    free(target);
    free(database);
    free(db_user);
    free(secret_arn);
}

static void execute(rd_emu *emu, rd_emu_engine *eng, int batch, json_t *body, const rd_emu_request *req,
                    rd_emu_response *resp)
{
    const char *op = batch ? "BatchExecuteStatement" : "ExecuteStatement";
    const char **sqls = NULL;
    size_t nsql = 0;
    if (batch) {
        json_t *a = json_object_get(body, "Sqls");
        if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 40) {
            reply_error(resp, req, "ValidationException",
                        "1 validation error detected: Value at 'sqls' failed to satisfy constraint: Member must have "
                        "length between 1 and 40",
                        NULL);
            return;
        }
        nsql = json_array_size(a);
        sqls = calloc(nsql, sizeof *sqls);
        for (size_t i = 0; sqls && i < nsql; i++) {
            sqls[i] = json_string_value(json_array_get(a, i));
            if (!sqls[i]) {
                free(sqls);
                reply_error(resp, req, "ValidationException", "Sqls must be a list of strings.", NULL);
                return;
            }
        }
    } else {
        const char *sql = jstr(body, "Sql");
        if (!sql) {
            reply_error(resp, req, "ValidationException",
                        "1 validation error detected: Value null at 'sql' failed to satisfy constraint: Member must "
                        "not be null",
                        NULL);
            return;
        }
        sqls = calloc(1, sizeof *sqls);
        if (sqls)
            sqls[0] = sql;
        nsql = 1;
    }
    if (!sqls) {
        reply_error(resp, req, "InternalServerException", "out of memory", NULL);
        return;
    }
    /* a session decides the target; what the request names besides must be the same (the engine checks) */
    const char *session_id = jstr(body, "SessionId");
    json_t *ka = json_object_get(body, "SessionKeepAliveSeconds");
    int keep_alive = -1;
    if (ka && !json_is_null(ka)) {
        json_int_t v = json_is_integer(ka) ? json_integer_value(ka) : -1;
        if (v < 0 || v > RD_EMU_SESSION_MAX_SECONDS) {
            free(sqls);
            reply_error(resp, req, "ValidationException",
                        "1 validation error detected: Value at 'sessionKeepAliveSeconds' failed to satisfy "
                        "constraint: Member must have value between 0 and 86400",
                        NULL);
            return;
        }
        keep_alive = (int)v;
    }
    if (wrong_type(body, "SessionId", 1) || (session_id && !valid_id(session_id))) {
        free(sqls);
        reply_error(resp, req, "ValidationException",
                    "1 validation error detected: Value at 'sessionId' failed to satisfy constraint: Member must "
                    "satisfy regular expression pattern: [a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\\d{0,2})?",
                    NULL);
        return;
    }
    target_in t;
    char *ss_target = NULL, *ss_db = NULL, *ss_user = NULL, *ss_secret = NULL;
    if (session_id) {
        rd_emu_error serr;
        memset(&t, 0, sizeof t);
        if (rd_emu_engine_session_target(eng, session_id, owner_of(req), &t.is_cluster, &ss_target, &ss_db, &ss_user,
                                         &ss_secret, &serr) != 0) {
            free(sqls);
            reply_engine_error(resp, req, &serr, session_id);
            return;
        }
        const char *wg = jstr(body, "WorkgroupName"), *cl = jstr(body, "ClusterIdentifier");
        t.is_cluster = cl ? 1 : wg ? 0 : t.is_cluster;
        t.name = cl ? cl : wg ? wg : ss_target;
        t.database = jstr(body, "Database") ? jstr(body, "Database") : ss_db;
        t.db_user = ss_user;
        t.secret_arn = ss_secret;
    }
    if ((!session_id && !read_target(body, req, resp, &t)) || !authorise(emu, req, resp, op, t.is_cluster, t.name) ||
        !authorise_db_credentials(emu, req, resp, &t)) {
        free(ss_target);
        free(ss_db);
        free(ss_user);
        free(ss_secret);
        free(sqls);
        return;
    }
    json_t *pl = json_object_get(body, "Parameters");
    rd_emu_param *params = NULL;
    size_t np = 0;
    if (pl && !json_is_null(pl)) {
        if (!json_is_array(pl) || json_array_size(pl) == 0) {
            free(sqls);
            free_session_target(ss_target, ss_db, ss_user, ss_secret);
            reply_error(resp, req, "ValidationException",
                        "1 validation error detected: Value '[]' at 'parameters' failed to satisfy constraint: Member "
                        "must have length greater than or equal to 1",
                        NULL);
            return;
        }
        np = json_array_size(pl);
        params = calloc(np, sizeof *params);
        for (size_t i = 0; params && i < np; i++) {
            json_t *p = json_array_get(pl, i);
            params[i].name = jstr(p, "name");
            params[i].value = jstr(p, "value");
            if (!params[i].name || !params[i].value || !*params[i].value) {
                free(params);
                free(sqls);
                free_session_target(ss_target, ss_db, ss_user, ss_secret);
                reply_error(resp, req, "ValidationException",
                            "A parameter needs a name and a non-empty value (SqlParameter: name, value).", NULL);
                return;
            }
            for (const char *c = params[i].name; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_')) {
                    free(params);
                    free(sqls);
                    free_session_target(ss_target, ss_db, ss_user, ss_secret);
                    reply_error(resp, req, "ValidationException",
                                "Parameter names may contain only letters, digits and '_'.", NULL);
                    return;
                }
        }
    }
    const char *rf = jstr(body, "ResultFormat");
    if (rf && strcmp(rf, "JSON") != 0 && strcmp(rf, "CSV") != 0) {
        free(params);
        free(sqls);
        free_session_target(ss_target, ss_db, ss_user, ss_secret);
        reply_error(resp, req, "ValidationException",
                    "1 validation error detected: Value at 'resultFormat' failed to satisfy constraint: Member must "
                    "satisfy enum value set: [JSON, CSV]",
                    NULL);
        return;
    }
    const char *token = jstr(body, "ClientToken");
    if (token && (strlen(token) < 1 || strlen(token) > 64)) {
        free(params);
        free(sqls);
        free_session_target(ss_target, ss_db, ss_user, ss_secret);
        reply_error(resp, req, "ValidationException", "ClientToken must be between 1 and 64 characters.", NULL);
        return;
    }
    rd_emu_submit s;
    memset(&s, 0, sizeof s);
    s.is_cluster = t.is_cluster;
    s.target = t.name;
    s.database = t.database;
    s.db_user = t.db_user;
    s.secret_arn = t.secret_arn;
    s.sqls = sqls;
    s.sql_count = nsql;
    s.is_batch = batch;
    s.params = params;
    s.param_count = np;
    s.statement_name = jstr(body, "StatementName");
    s.client_token = token;
    s.owner = owner_of(req);
    s.result_format = rf;
    s.with_event = json_is_true(json_object_get(body, "WithEvent"));
    s.fault_fail = req ? req->fault_fail : 0;
    char session_out[48] = "";
    s.session_id = session_id;
    s.keep_alive_seconds = keep_alive;
    s.session_id_out = session_out;
    rd_buf iam_user = RD_BUF_INIT;
    if (t.is_cluster && !t.db_user && !t.secret_arn && req && req->principal_arn) {
        const char *slash = strrchr(req->principal_arn, '/');
        rd_buf_printf(&iam_user, "IAM:%s", slash ? slash + 1 : req->principal_arn);
        s.db_user = rd_buf_cstr(&iam_user);
    }
    char id[48];
    double created = 0;
    rd_emu_error err;
    if (rd_emu_engine_submit(eng, &s, id, &created, &err) != 0) {
        reply_engine_error(resp, req, &err, t.name);
    } else {
        json_t *o = json_pack("{s:s, s:f, s:s}", "Id", id, "CreatedAt", created, "Database", t.database);
        json_object_set_new(o, t.is_cluster ? "ClusterIdentifier" : "WorkgroupName", json_string(t.name));
        if (s.db_user)
            json_object_set_new(o, "DbUser", json_string(s.db_user));
        if (t.secret_arn)
            json_object_set_new(o, "SecretArn", json_string(t.secret_arn));
        if (t.is_cluster)
            json_object_set_new(o, "DbGroups", json_array());
        if (session_out[0])
            json_object_set_new(o, "SessionId", json_string(session_out));
        rd_emu_reply_json(resp, o, req ? req->request_id : NULL);
    }
    rd_buf_free(&iam_user);
    free(params);
    free(sqls);
    free_session_target(ss_target, ss_db, ss_user, ss_secret);
}

static void set_common(json_t *o, const rd_emu_stmt *s)
{
    json_object_set_new(o, "Id", json_string(s->id));
    json_object_set_new(o, "Status", json_string(rd_emu_status_name(s->status)));
    json_object_set_new(o, "CreatedAt", json_real(s->created_at));
    json_object_set_new(o, "UpdatedAt", json_real(s->updated_at));
}

static json_t *describe_json(const rd_emu_stmt *s)
{
    json_t *o = json_object();
    set_common(o, s);
    if (!s->is_batch)
        json_object_set_new(o, "QueryString", json_string(s->sql));
    json_object_set_new(o, "Database", json_string(s->database));
    json_object_set_new(o, s->is_cluster ? "ClusterIdentifier" : "WorkgroupName", json_string(s->target));
    if (s->db_user)
        json_object_set_new(o, "DbUser", json_string(s->db_user));
    if (s->secret_arn)
        json_object_set_new(o, "SecretArn", json_string(s->secret_arn));
    json_object_set_new(o, "Duration", json_integer(s->status >= RD_ST_FINISHED ? s->duration_ns : -1));
    if (s->error)
        json_object_set_new(o, "Error", json_string(s->error));
    json_object_set_new(o, "HasResultSet", json_boolean(s->has_result_set));
    json_object_set_new(o, "ResultRows", json_integer(s->status == RD_ST_FINISHED ? s->result_rows : -1));
    json_object_set_new(o, "ResultSize", json_integer(s->status == RD_ST_FINISHED ? s->result_size : -1));
    json_object_set_new(o, "RedshiftQueryId", json_integer(s->status >= RD_ST_STARTED ? s->query_id : 0));
    json_object_set_new(o, "RedshiftPid", json_integer(s->pid));
    json_object_set_new(o, "ResultFormat", json_string(s->result_format ? s->result_format : "JSON"));
    if (s->session_id[0])
        json_object_set_new(o, "SessionId", json_string(s->session_id));
    if (s->param_count)
        json_object_set_new(o, "QueryParameters", params_json(s->param_names, s->param_values, s->param_count));
    if (s->is_batch) {
        json_t *subs = json_array();
        for (size_t i = 0; i < s->sub_count; i++) {
            const rd_emu_stmt *c = s->subs[i];
            json_t *e = json_object();
            set_common(e, c);
            json_object_set_new(e, "QueryString", json_string(c->sql));
            json_object_set_new(e, "Duration", json_integer(c->status >= RD_ST_FINISHED ? c->duration_ns : -1));
            if (c->error)
                json_object_set_new(e, "Error", json_string(c->error));
            json_object_set_new(e, "HasResultSet", json_boolean(c->has_result_set));
            json_object_set_new(e, "ResultRows", json_integer(c->status == RD_ST_FINISHED ? c->result_rows : -1));
            json_object_set_new(e, "ResultSize", json_integer(c->status == RD_ST_FINISHED ? c->result_size : -1));
            json_object_set_new(e, "RedshiftQueryId", json_integer(c->status >= RD_ST_STARTED ? c->query_id : 0));
            json_array_append_new(subs, e);
        }
        json_object_set_new(o, "SubStatements", subs);
    }
    return o;
}

static int valid_id(const char *id)
{
    if (!id)
        return 0;
    size_t n = strlen(id);
    if (n < 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        char c = id[i];
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return 0;
    }
    if (n == 36)
        return 1;
    if (id[36] != ':' || n > 39)
        return 0;
    for (size_t i = 37; i < n; i++)
        if (id[i] < '0' || id[i] > '9')
            return 0;
    return n > 37;
}

static const char *read_id(json_t *body, const rd_emu_request *req, rd_emu_response *resp)
{
    const char *id = jstr(body, "Id");
    if (!id) {
        reply_error(resp, req, "ValidationException",
                    "1 validation error detected: Value null at 'id' failed to satisfy constraint: Member must not be "
                    "null",
                    NULL);
        return NULL;
    }
    if (!valid_id(id)) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "1 validation error detected: Value '%.60s' at 'id' failed to satisfy constraint: Member must "
                 "satisfy regular expression pattern: [a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\\d{0,2})?",
                 id);
        reply_error(resp, req, "ValidationException", msg, NULL);
        return NULL;
    }
    return id;
}

static void describe(rd_emu *emu, rd_emu_engine *eng, json_t *body, const rd_emu_request *req, rd_emu_response *resp)
{
    const char *id = read_id(body, req, resp);
    if (!id)
        return;
    pthread_mutex_lock(&eng->mu);
    rd_emu_stmt *s = rd_emu_engine_find(eng, id, owner_of(req));
    json_t *o = s && !s->parent ? describe_json(s) : NULL;
    int is_cluster = s ? s->is_cluster : 0;
    char *target = s ? strdup(s->target) : NULL;
    pthread_mutex_unlock(&eng->mu);
    if (!o) {
        free(target);
        reply_error(resp, req, "ResourceNotFoundException", "Query does not exist.", id);
        return;
    }
    if (authorise(emu, req, resp, "DescribeStatement", is_cluster, target))
        rd_emu_reply_json(resp, o, req ? req->request_id : NULL);
    else
        json_decref(o);
    free(target);
}

static void cancel(rd_emu *emu, rd_emu_engine *eng, json_t *body, const rd_emu_request *req, rd_emu_response *resp)
{
    const char *id = read_id(body, req, resp);
    if (!id || !authorise(emu, req, resp, "CancelStatement", 0, NULL))
        return;
    rd_emu_error err;
    if (rd_emu_engine_cancel(eng, id, owner_of(req), &err) != 0)
        reply_engine_error(resp, req, &err, id);
    else
        rd_emu_reply_json(resp, json_pack("{s:b}", "Status", 1), req ? req->request_id : NULL);
}

static void list(rd_emu *emu, rd_emu_engine *eng, json_t *body, const rd_emu_request *req, rd_emu_response *resp)
{
    if (!authorise(emu, req, resp, "ListStatements", 0, NULL))
        return;
    const char *status = jstr(body, "Status"), *name = jstr(body, "StatementName"), *token = jstr(body, "NextToken");
    const char *db = jstr(body, "Database"), *wg = jstr(body, "WorkgroupName"), *cl = jstr(body, "ClusterIdentifier");
    json_t *mr = json_object_get(body, "MaxResults");
    json_int_t max = json_is_integer(mr) ? json_integer_value(mr) : 100;
    if (max < 0 || max > 100) {
        reply_error(resp, req, "ValidationException",
                    "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must "
                    "have value less than or equal to 100",
                    NULL);
        return;
    }
    if (max == 0)
        max = 100;
    int want = status ? rd_emu_status_parse(status) : -1;
    if (want == -2) {
        reply_error(resp, req, "ValidationException",
                    "1 validation error detected: Value at 'status' failed to satisfy constraint: Member must satisfy "
                    "enum value set: [ABORTED, ALL, FAILED, FINISHED, PICKED, STARTED, SUBMITTED]",
                    NULL);
        return;
    }
    size_t skip = 0;
    if (token) {
        char *end;
        unsigned long long v = strncmp(token, "rdl1-", 5) == 0 ? strtoull(token + 5, &end, 10) : 0;
        if (strncmp(token, "rdl1-", 5) != 0 || *end) {
            reply_error(resp, req, "ValidationException", "The NextToken is not valid.", NULL);
            return;
        }
        skip = (size_t)v;
    }
    json_t *arr = json_array();
    size_t matched = 0, emitted = 0;
    int more = 0;
    pthread_mutex_lock(&eng->mu);
    for (size_t k = eng->stmt_count; k-- > 0;) { /* newest first */
        const rd_emu_stmt *s = eng->stmts[k];
        if (!rd_emu_owner_eq(s->owner, owner_of(req)))
            continue;
        if (want >= 0 && (int)s->status != want)
            continue;
        if (name && (!s->statement_name || strncmp(s->statement_name, name, strlen(name)) != 0))
            continue;
        if (db && strcmp(s->database, db) != 0)
            continue;
        if ((wg && (s->is_cluster || strcmp(s->target, wg) != 0)) ||
            (cl && (!s->is_cluster || strcmp(s->target, cl) != 0)))
            continue;
        if (matched++ < skip)
            continue;
        if ((json_int_t)emitted == max) {
            more = 1;
            break;
        }
        json_t *e = json_object();
        set_common(e, s);
        if (s->is_batch) {
            json_t *qs = json_array();
            for (size_t i = 0; i < s->sub_count; i++)
                json_array_append_new(qs, json_string(s->subs[i]->sql));
            json_object_set_new(e, "QueryStrings", qs);
        } else {
            json_object_set_new(e, "QueryString", json_string(s->sql));
        }
        json_object_set_new(e, "IsBatchStatement", json_boolean(s->is_batch));
        if (s->statement_name)
            json_object_set_new(e, "StatementName", json_string(s->statement_name));
        if (s->secret_arn)
            json_object_set_new(e, "SecretArn", json_string(s->secret_arn));
        if (s->param_count)
            json_object_set_new(e, "QueryParameters", params_json(s->param_names, s->param_values, s->param_count));
        json_object_set_new(e, "ResultFormat", json_string(s->result_format ? s->result_format : "JSON"));
        if (s->session_id[0])
            json_object_set_new(e, "SessionId", json_string(s->session_id));
        json_array_append_new(arr, e);
        emitted++;
    }
    pthread_mutex_unlock(&eng->mu);
    json_t *o = json_pack("{s:o}", "Statements", arr);
    if (more) {
        char next[64];
        snprintf(next, sizeof next, "rdl1-%zu", skip + emitted);
        json_object_set_new(o, "NextToken", json_string(next));
    }
    rd_emu_reply_json(resp, o, req ? req->request_id : NULL);
}

/* ---------------------------------------------------------------- result rendering */

static void fmt_time_part(rd_buf *b, int h, int m, int s, int32_t micros)
{
    rd_buf_printf(b, "%02d:%02d:%02d", h, m, s);
    if (micros) {
        char frac[8];
        snprintf(frac, sizeof frac, "%06d", (int)micros);
        size_t n = 6;
        while (n > 0 && frac[n - 1] == '0')
            n--;
        frac[n] = '\0';
        rd_buf_printf(b, ".%s", frac);
    }
}

static void fmt_date(rd_buf *b, duckdb_date_struct d)
{
    if (d.year <= 0)
        rd_buf_printf(b, "%04d-%02d-%02d BC", 1 - d.year, d.month, d.day);
    else
        rd_buf_printf(b, "%04d-%02d-%02d", d.year, d.month, d.day);
}

static void fmt_i128(rd_buf *b, __int128 v, int scale)
{
    char digits[64];
    int n = 0, neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
    do {
        digits[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    while (n <= scale)
        digits[n++] = '0';
    if (neg)
        rd_buf_putc(b, '-');
    for (int i = n - 1; i >= 0; i--) {
        rd_buf_putc(b, digits[i]);
        if (i == scale && scale > 0)
            rd_buf_putc(b, '.');
    }
}

static json_t *field_string(rd_buf *b)
{
    json_t *f = json_pack("{s:s%}", "stringValue", b->data ? b->data : "", b->len);
    rd_buf_free(b);
    return f;
}

static json_t *render_field(duckdb_vector vec, duckdb_logical_type lt, duckdb_type t, idx_t row)
{
    uint64_t *valid = duckdb_vector_get_validity(vec);
    if (valid && !duckdb_validity_row_is_valid(valid, row))
        return json_pack("{s:b}", "isNull", 1);
    void *data = duckdb_vector_get_data(vec);
    rd_buf b = RD_BUF_INIT;
    switch (t) {
    case DUCKDB_TYPE_BOOLEAN: return json_pack("{s:b}", "booleanValue", ((bool *)data)[row]);
    case DUCKDB_TYPE_TINYINT: return json_pack("{s:I}", "longValue", (json_int_t)((int8_t *)data)[row]);
    case DUCKDB_TYPE_SMALLINT: return json_pack("{s:I}", "longValue", (json_int_t)((int16_t *)data)[row]);
    case DUCKDB_TYPE_INTEGER: return json_pack("{s:I}", "longValue", (json_int_t)((int32_t *)data)[row]);
    case DUCKDB_TYPE_BIGINT: return json_pack("{s:I}", "longValue", (json_int_t)((int64_t *)data)[row]);
    case DUCKDB_TYPE_UTINYINT: return json_pack("{s:I}", "longValue", (json_int_t)((uint8_t *)data)[row]);
    case DUCKDB_TYPE_USMALLINT: return json_pack("{s:I}", "longValue", (json_int_t)((uint16_t *)data)[row]);
    case DUCKDB_TYPE_UINTEGER: return json_pack("{s:I}", "longValue", (json_int_t)((uint32_t *)data)[row]);
    case DUCKDB_TYPE_UBIGINT:
        rd_buf_printf(&b, "%llu", (unsigned long long)((uint64_t *)data)[row]);
        return field_string(&b);
    case DUCKDB_TYPE_HUGEINT: {
        duckdb_hugeint h = ((duckdb_hugeint *)data)[row];
        fmt_i128(&b, (__int128)(((unsigned __int128)(uint64_t)h.upper << 64) | h.lower), 0);
        return field_string(&b);
    }
    case DUCKDB_TYPE_FLOAT: {
        float f = ((float *)data)[row];
        if (!isfinite(f))
            return json_pack("{s:s}", "stringValue", isnan(f) ? "NaN" : f > 0 ? "Infinity" : "-Infinity");
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.*g", FLT_DIG + 1, (double)f);
        return json_pack("{s:f}", "doubleValue", strtod(tmp, NULL));
    }
    case DUCKDB_TYPE_DOUBLE: {
        double d = ((double *)data)[row];
        if (!isfinite(d))
            return json_pack("{s:s}", "stringValue", isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
        return json_pack("{s:f}", "doubleValue", d);
    }
    case DUCKDB_TYPE_DECIMAL: {
        int scale = duckdb_decimal_scale(lt);
        __int128 v;
        switch (duckdb_decimal_internal_type(lt)) {
        case DUCKDB_TYPE_SMALLINT: v = ((int16_t *)data)[row]; break;
        case DUCKDB_TYPE_INTEGER: v = ((int32_t *)data)[row]; break;
        case DUCKDB_TYPE_BIGINT: v = ((int64_t *)data)[row]; break;
        default: {
            duckdb_hugeint h = ((duckdb_hugeint *)data)[row];
            v = (__int128)(((unsigned __int128)(uint64_t)h.upper << 64) | h.lower);
        }
        }
        fmt_i128(&b, v, scale);
        return field_string(&b);
    }
    case DUCKDB_TYPE_VARCHAR: {
        duckdb_string_t *s = &((duckdb_string_t *)data)[row];
        rd_buf_append(&b, duckdb_string_t_data(s), duckdb_string_t_length(*s));
        return field_string(&b);
    }
    case DUCKDB_TYPE_BLOB: {
        duckdb_string_t *s = &((duckdb_string_t *)data)[row];
        const unsigned char *p = (const unsigned char *)duckdb_string_t_data(s);
        uint32_t n = duckdb_string_t_length(*s);
        for (uint32_t i = 0; i < n; i++)
            rd_buf_printf(&b, "%02x", p[i]);
        return field_string(&b);
    }
    case DUCKDB_TYPE_DATE: {
        fmt_date(&b, duckdb_from_date(((duckdb_date *)data)[row]));
        return field_string(&b);
    }
    case DUCKDB_TYPE_TIME: {
        duckdb_time_struct ts = duckdb_from_time(((duckdb_time *)data)[row]);
        fmt_time_part(&b, ts.hour, ts.min, ts.sec, ts.micros);
        return field_string(&b);
    }
    case DUCKDB_TYPE_TIME_TZ: {
        duckdb_time_tz_struct tz = duckdb_from_time_tz(((duckdb_time_tz *)data)[row]);
        int64_t us = (int64_t)tz.time.hour * 3600000000LL + (int64_t)tz.time.min * 60000000LL +
                     (int64_t)tz.time.sec * 1000000LL + tz.time.micros - (int64_t)tz.offset * 1000000LL;
        const int64_t day = 86400000000LL;
        us = ((us % day) + day) % day; /* Redshift keeps TIMETZ in UTC */
        fmt_time_part(&b, (int)(us / 3600000000LL), (int)(us / 60000000LL % 60), (int)(us / 1000000 % 60),
                      (int32_t)(us % 1000000));
        rd_buf_puts(&b, "+00");
        return field_string(&b);
    }
    case DUCKDB_TYPE_TIMESTAMP:
    case DUCKDB_TYPE_TIMESTAMP_TZ: {
        duckdb_timestamp ts = ((duckdb_timestamp *)data)[row];
        duckdb_timestamp_struct s = duckdb_from_timestamp(ts);
        fmt_date(&b, s.date);
        rd_buf_putc(&b, ' ');
        fmt_time_part(&b, s.time.hour, s.time.min, s.time.sec, s.time.micros);
        if (t == DUCKDB_TYPE_TIMESTAMP_TZ)
            rd_buf_puts(&b, "+00");
        return field_string(&b);
    }
    case DUCKDB_TYPE_TIMESTAMP_S:
    case DUCKDB_TYPE_TIMESTAMP_MS:
    case DUCKDB_TYPE_TIMESTAMP_NS: {
        int64_t raw = ((int64_t *)data)[row];
        duckdb_timestamp ts = { t == DUCKDB_TYPE_TIMESTAMP_S    ? raw * 1000000
                                : t == DUCKDB_TYPE_TIMESTAMP_MS ? raw * 1000
                                                                : raw / 1000 };
        duckdb_timestamp_struct s = duckdb_from_timestamp(ts);
        fmt_date(&b, s.date);
        rd_buf_putc(&b, ' ');
        fmt_time_part(&b, s.time.hour, s.time.min, s.time.sec, s.time.micros);
        return field_string(&b);
    }
    default: {
        char *name = duckdb_logical_type_get_alias(lt);
        rd_buf_printf(&b, "(value of type %d not rendered by the emulator)", (int)t);
        duckdb_free(name);
        return field_string(&b);
    }
    }
}

static json_t *column_metadata(const rd_emu_stmt *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->column_count; i++) {
        const rd_emu_column *c = &s->columns[i];
        json_array_append_new(a, json_pack("{s:b, s:b, s:b, s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:s, s:i}",
                                           "isCaseSensitive", c->is_case_sensitive, "isCurrency", 0, "isSigned",
                                           c->is_signed, "label", c->name, "name", c->name, "nullable", 1, "precision",
                                           c->precision, "scale", c->scale, "schemaName", "", "tableName", "",
                                           "typeName", c->type_name, "length", 0));
    }
    return a;
}

/* A Field union as one CSV field: NULL empty, an empty string "" (so the two differ), booleans t / f as
 * Redshift prints them, doubles in their shortest exact form; quoted when it holds , " CR or LF. */
static void csv_field(rd_buf *b, json_t *f)
{
    json_t *v;
    if (json_is_true(json_object_get(f, "isNull")))
        return;
    if ((v = json_object_get(f, "booleanValue"))) {
        rd_buf_putc(b, json_is_true(v) ? 't' : 'f');
    } else if ((v = json_object_get(f, "longValue"))) {
        rd_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if ((v = json_object_get(f, "doubleValue"))) {
        double d = json_number_value(v);
        char tmp[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
        rd_buf_puts(b, tmp);
    } else {
        const char *str = json_string_value(json_object_get(f, "stringValue"));
        size_t n = json_string_length(json_object_get(f, "stringValue"));
        int quote = n == 0;
        for (size_t i = 0; i < n && !quote; i++)
            quote = str[i] == ',' || str[i] == '"' || str[i] == '\n' || str[i] == '\r';
        if (!quote) {
            rd_buf_append(b, str, n);
            return;
        }
        rd_buf_putc(b, '"');
        for (size_t i = 0; i < n; i++) {
            if (str[i] == '"')
                rd_buf_putc(b, '"');
            rd_buf_putc(b, str[i]);
        }
        rd_buf_putc(b, '"');
    }
}

/* One CSV line of the column names (the first page of a CSV result starts with it). */
static void csv_header(rd_buf *b, const rd_emu_stmt *s)
{
    for (size_t i = 0; i < s->column_count; i++) {
        json_t *f = json_pack("{s:s}", "stringValue", s->columns[i].name ? s->columns[i].name : "");
        if (i)
            rd_buf_putc(b, ',');
        csv_field(b, f);
        json_decref(f);
    }
    rd_buf_putc(b, '\n');
}

/* GetStatementResult (v2 0: JSON Records) and GetStatementResultV2 (v2 1: CSVRecords). Each serves only the
 * ResultFormat it is for, as the Data API does. */
static void get_result(rd_emu *emu, rd_emu_engine *eng, int v2, json_t *body, const rd_emu_request *req,
                       rd_emu_response *resp)
{
    const char *id = read_id(body, req, resp);
    if (!id)
        return;
    const char *token = jstr(body, "NextToken");
    pthread_mutex_lock(&eng->mu);
    rd_emu_stmt *s = rd_emu_engine_find(eng, id, owner_of(req));
    int ok = s && s->status == RD_ST_FINISHED && s->has_duck_result && !s->is_batch;
    int is_batch = s && s->is_batch;
    int is_csv = s && s->result_format && strcmp(s->result_format, "CSV") == 0;
    int is_cluster = s ? s->is_cluster : 0;
    char *target = s ? strdup(s->target) : NULL;
    size_t page = eng->page_rows;
    pthread_mutex_unlock(&eng->mu);
    if (!s || !ok) {
        free(target);
        if (is_batch)
            reply_error(resp, req, "ValidationException",
                        "Query does not have result. For a batch, get the result of a sub-statement (Id:N).", NULL);
        else
            reply_error(resp, req, "ResourceNotFoundException",
                        s ? "Query does not have result. Please check query status with DescribeStatement."
                          : "Query does not exist.",
                        id);
        return;
    }
    if (!authorise(emu, req, resp, v2 ? "GetStatementResultV2" : "GetStatementResult", is_cluster, target)) {
        free(target);
        return;
    }
    free(target);
    if (is_csv != v2) {
        reply_error(resp, req, "ValidationException",
                    v2 ? "The result format of the query is JSON. Use GetStatementResult to fetch the result."
                       : "The result format of the query is CSV. Use GetStatementResultV2 to fetch the result.",
                    NULL);
        return;
    }
    int64_t offset = 0;
    if (token) {
        char *end;
        long long v = strncmp(token, "rdr1-", 5) == 0 ? strtoll(token + 5, &end, 10) : -1;
        if (v < 0 || *end || v > s->result_rows) {
            reply_error(resp, req, "ValidationException", "The NextToken is not valid.", NULL);
            return;
        }
        offset = v;
    }
    /* a FINISHED statement's result is immutable: read without the lock */
    json_t *records = json_array();
    rd_buf csv = RD_BUF_INIT;
    if (v2 && offset == 0)
        csv_header(&csv, s);
    idx_t chunks = duckdb_result_chunk_count(s->result);
    int64_t base = 0, emitted = 0;
    for (idx_t c = 0; c < chunks && emitted < (int64_t)page; c++) {
        duckdb_data_chunk ch = duckdb_result_get_chunk(s->result, c);
        if (!ch)
            break;
        int64_t n = (int64_t)duckdb_data_chunk_get_size(ch);
        if (base + n <= offset) {
            base += n;
            duckdb_destroy_data_chunk(&ch);
            continue;
        }
        idx_t ncol = duckdb_data_chunk_get_column_count(ch);
        duckdb_vector *vecs = calloc(ncol ? ncol : 1, sizeof *vecs);
        duckdb_logical_type *types = calloc(ncol ? ncol : 1, sizeof *types);
        for (idx_t k = 0; vecs && types && k < ncol; k++) {
            vecs[k] = duckdb_data_chunk_get_vector(ch, k);
            types[k] = duckdb_vector_get_column_type(vecs[k]);
        }
        for (int64_t r = offset > base ? offset - base : 0; r < n && emitted < (int64_t)page && vecs && types; r++) {
            json_t *rec = json_array();
            for (idx_t k = 0; k < ncol; k++)
                json_array_append_new(rec, render_field(vecs[k], types[k], duckdb_get_type_id(types[k]), (idx_t)r));
            if (v2) {
                for (idx_t k = 0; k < ncol; k++) {
                    if (k)
                        rd_buf_putc(&csv, ',');
                    csv_field(&csv, json_array_get(rec, k));
                }
                rd_buf_putc(&csv, '\n');
                json_decref(rec);
            } else {
                json_array_append_new(records, rec);
            }
            emitted++;
        }
        for (idx_t k = 0; types && k < ncol; k++)
            duckdb_destroy_logical_type(&types[k]);
        free(vecs);
        free(types);
        base += n;
        duckdb_destroy_data_chunk(&ch);
    }
    if (v2) {
        json_array_append_new(records, json_pack("{s:s%}", "CSVRecords", csv.data ? csv.data : "", csv.len));
        rd_buf_free(&csv);
    }
    json_t *o = json_pack("{s:o, s:I}", "Records", records, "TotalNumRows", (json_int_t)s->result_rows);
    if (v2)
        json_object_set_new(o, "ResultFormat", json_string("CSV"));
    if (offset == 0)
        json_object_set_new(o, "ColumnMetadata", column_metadata(s));
    if (offset + emitted < s->result_rows) {
        char next[48];
        snprintf(next, sizeof next, "rdr1-%lld", (long long)(offset + emitted));
        json_object_set_new(o, "NextToken", json_string(next));
    }
    rd_emu_reply_json(resp, o, req ? req->request_id : NULL);
}

void rd_emu_data_api_handle(rd_emu *emu, struct rd_emu_engine *eng, const char *operation, const rd_emu_request *req,
                            rd_emu_response *resp)
{
    if (!eng) {
        reply_error(resp, req, "InternalServerException", "The emulator's Redshift engine is not running.", NULL);
        return;
    }
    json_error_t jerr;
    json_t *body = req && req->body_len ? json_loadb(req->body, req->body_len, 0, &jerr) : json_object();
    if (!json_is_object(body)) {
        json_decref(body);
        rd_emu_reply_json_error(resp, 400, "SerializationException", "The request body is not a JSON object.",
                                req ? req->request_id : NULL);
        return;
    }
    if (strcmp(operation, "ExecuteStatement") == 0)
        execute(emu, eng, 0, body, req, resp);
    else if (strcmp(operation, "BatchExecuteStatement") == 0)
        execute(emu, eng, 1, body, req, resp);
    else if (strcmp(operation, "DescribeStatement") == 0)
        describe(emu, eng, body, req, resp);
    else if (strcmp(operation, "GetStatementResult") == 0)
        get_result(emu, eng, 0, body, req, resp);
    else if (strcmp(operation, "GetStatementResultV2") == 0)
        get_result(emu, eng, 1, body, req, resp);
    else if (strcmp(operation, "CancelStatement") == 0)
        cancel(emu, eng, body, req, resp);
    else if (strcmp(operation, "ListStatements") == 0)
        list(emu, eng, body, req, resp);
    else if (rd_emu_data_catalog_handle(emu, eng, operation, body, req, resp))
        ;
    else {
        char msg[200];
        snprintf(msg, sizeof msg, "The emulator does not implement RedshiftData.%.100s", operation);
        rd_emu_reply_json_error(resp, 400, "UnknownOperationException", msg, req ? req->request_id : NULL);
    }
    json_decref(body);
}

#else

void rd_emu_data_api_handle(rd_emu *emu, struct rd_emu_engine *eng, const char *operation, const rd_emu_request *req,
                            rd_emu_response *resp)
{
    rd_emu_reply_json_error(resp, 400, "InternalServerException",
                            "The emulator was built without DuckDB: run scripts/bootstrap.sh and rebuild.",
                            req ? req->request_id : NULL);
}
#endif
