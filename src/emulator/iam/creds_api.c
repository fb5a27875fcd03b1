/* creds_api.c — the credential-issuing APIs of the emulator: STS (GetCallerIdentity, AssumeRole,
 * AssumeRoleWithWebIdentity, GetSessionToken), Redshift (GetClusterCredentials, GetClusterCredentialsWithIAM;
 * DescribeClusters), Redshift Serverless (GetCredentials; GetWorkgroup, ListWorkgroups) and the SSO portal
 * (GetRoleCredentials). Shapes follow botocore's
 * service models. Temporary credentials come from identities.c. */
#include <jansson.h>
#include <libxml/xmlwriter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "emulator/emulator_internal.h"
#include "emulator/replies.h"

#define STS_NS "https://sts.amazonaws.com/doc/2011-06-15/"
#define REDSHIFT_NS "http://redshift.amazonaws.com/doc/2012-12-01/"

static void iso8601(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *random_password(void)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[32];
    char *s = malloc(sizeof raw + 1);
    if (!s || RAND_bytes(raw, sizeof raw) != 1) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        s[i] = alphabet[raw[i] % (sizeof alphabet - 1)];
    s[sizeof raw] = '\0';
    return s;
}

/* Starts <OpResponse xmlns><OpResult>; the caller writes the result members. */
static xmlTextWriterPtr query_reply_start(xmlBufferPtr buf, const char *op, const char *ns)
{
    xmlTextWriterPtr w = xmlNewTextWriterMemory(buf, 0);
    char name[96];
    xmlTextWriterStartDocument(w, NULL, NULL, NULL);
    snprintf(name, sizeof name, "%sResponse", op);
    xmlTextWriterStartElement(w, BAD_CAST name);
    xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns", BAD_CAST ns);
    snprintf(name, sizeof name, "%sResult", op);
    xmlTextWriterStartElement(w, BAD_CAST name);
    return w;
}

static void query_reply_end(xmlTextWriterPtr w, xmlBufferPtr buf, const rd_emu_request *req, rd_emu_response *resp)
{
    xmlTextWriterEndElement(w); /* Result */
    xmlTextWriterStartElement(w, BAD_CAST "ResponseMetadata");
    xmlTextWriterWriteElement(w, BAD_CAST "RequestId", BAD_CAST req->request_id);
    xmlTextWriterEndElement(w);
    xmlTextWriterEndElement(w); /* Response */
    xmlTextWriterEndDocument(w);
    xmlFreeTextWriter(w);
    resp->status = 200;
    rd_buf_reset(&resp->body);
    rd_buf_append(&resp->body, xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
    xmlBufferFree(buf);
    rd_headers_set(&resp->headers, "Content-Type", "text/xml");
    rd_headers_set(&resp->headers, "x-amzn-RequestId", req->request_id);
}

static void write_credentials(xmlTextWriterPtr w, const char *key, const char *secret, const char *token, time_t exp)
{
    char when[32];
    iso8601(exp, when);
    xmlTextWriterStartElement(w, BAD_CAST "Credentials");
    xmlTextWriterWriteElement(w, BAD_CAST "AccessKeyId", BAD_CAST key);
    xmlTextWriterWriteElement(w, BAD_CAST "SecretAccessKey", BAD_CAST secret);
    xmlTextWriterWriteElement(w, BAD_CAST "SessionToken", BAD_CAST token);
    xmlTextWriterWriteElement(w, BAD_CAST "Expiration", BAD_CAST when);
    xmlTextWriterEndElement(w);
}

static int parse_duration(const rd_form *form, int *out, rd_emu_response *resp, const rd_emu_request *req)
{
    const char *d = rd_form_get(form, "DurationSeconds");
    *out = 3600;
    if (!d)
        return 1;
    char *end = NULL;
    long v = strtol(d, &end, 10);
    if (!*d || *end || v < 900 || v > 43200) {
        rd_emu_reply_query_error(resp, 400, STS_NS, "ValidationError",
                                 "1 validation error detected: Value at 'durationSeconds' failed to satisfy "
                                 "constraint: Member must have value between 900 and 43200",
                                 req->request_id);
        return 0;
    }
    *out = (int)v;
    return 1;
}

/* A query API's MissingParameter reply for the first required parameter the request lacks. */
static void missing_parameter(rd_emu_response *resp, const char *ns, const char *name, const rd_emu_request *req)
{
    char msg[160];
    snprintf(msg, sizeof msg, "The request must contain the parameter %s", name);
    rd_emu_reply_query_error(resp, 400, ns, "MissingParameter", msg, req->request_id);
}

static void sts_assume(rd_emu *emu, const rd_form *form, const rd_emu_request *req, rd_emu_response *resp,
                       int web_identity)
{
    const char *op = web_identity ? "AssumeRoleWithWebIdentity" : "AssumeRole";
    const char *role = rd_form_get(form, "RoleArn");
    const char *session = rd_form_get(form, "RoleSessionName");
    if (!role || !session || !*session) {
        missing_parameter(resp, STS_NS, !role ? "RoleArn" : "RoleSessionName", req);
        return;
    }
    int duration;
    if (!parse_duration(form, &duration, resp, req))
        return;
    const char *role_arn = rd_emu_ids_role_arn(emu->ids, role);
    if (web_identity) {
        const char *token = rd_form_get(form, "WebIdentityToken");
        if (!role_arn || !rd_emu_ids_web_token_ok(emu->ids, role_arn, token)) {
            rd_emu_reply_query_error(resp, 403, STS_NS, "AccessDenied",
                                     "Not authorized to perform sts:AssumeRoleWithWebIdentity", req->request_id);
            return;
        }
    } else if (!role_arn || !rd_emu_allowed(emu, req, "sts:AssumeRole", role_arn)) {
        char msg[512];
        snprintf(msg, sizeof msg, "User: %s is not authorized to perform: sts:AssumeRole on resource: %s",
                 req->principal_arn ? req->principal_arn : "anonymous", role);
        rd_emu_reply_query_error(resp, 403, STS_NS, "AccessDenied", msg, req->request_id);
        return;
    }
    char *key = NULL, *secret = NULL, *token = NULL, *arn = NULL, *id = NULL;
    time_t exp = 0;
    rd_emu_error err;
    if (rd_emu_ids_issue_session(emu->ids, role_arn, session, duration, time(NULL), &key, &secret, &token, &arn,
                                 &id, &exp, &err) != 0) {
        rd_emu_reply_query_error(resp, err.http_status, STS_NS, err.code, err.message, req->request_id);
        return;
    }
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = query_reply_start(buf, op, STS_NS);
    write_credentials(w, key, secret, token, exp);
    if (web_identity) {
        xmlTextWriterWriteElement(w, BAD_CAST "SubjectFromWebIdentityToken", BAD_CAST "redduck-emulator-subject");
        xmlTextWriterWriteElement(w, BAD_CAST "Audience", BAD_CAST "sts.amazonaws.com");
        xmlTextWriterWriteElement(w, BAD_CAST "Provider", BAD_CAST "redduck-emulator");
    }
    xmlTextWriterStartElement(w, BAD_CAST "AssumedRoleUser");
    xmlTextWriterWriteElement(w, BAD_CAST "AssumedRoleId", BAD_CAST id);
    xmlTextWriterWriteElement(w, BAD_CAST "Arn", BAD_CAST arn);
    xmlTextWriterEndElement(w);
    query_reply_end(w, buf, req, resp);
    free(key);
    free(secret);
    free(token);
    free(arn);
    free(id);
}

/* GetSessionToken: credentials that act as the calling user (900..129600 s, default 12 h); a caller already on
 * session credentials is refused, as STS refuses it. No policy governs it (STS's rule). */
static void sts_session_token(rd_emu *emu, const rd_form *form, const rd_emu_request *req, rd_emu_response *resp)
{
    const char *d = rd_form_get(form, "DurationSeconds");
    long duration = 43200;
    if (d) {
        char *end = NULL;
        duration = strtol(d, &end, 10);
        if (!*d || *end || duration < 900 || duration > 129600) {
            rd_emu_reply_query_error(resp, 400, STS_NS, "ValidationError",
                                     "1 validation error detected: Value at 'durationSeconds' failed to satisfy "
                                     "constraint: Member must have value between 900 and 129600",
                                     req->request_id);
            return;
        }
    }
    char *key = NULL, *secret = NULL, *token = NULL;
    time_t exp = 0;
    rd_emu_error err;
    if (rd_emu_ids_issue_user_session(emu->ids, req->access_key_id, (int)duration, time(NULL), &key, &secret, &token,
                                      &exp, &err) != 0) {
        rd_emu_reply_query_error(resp, err.http_status, STS_NS, err.code, err.message, req->request_id);
        return;
    }
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = query_reply_start(buf, "GetSessionToken", STS_NS);
    write_credentials(w, key, secret, token, exp);
    query_reply_end(w, buf, req, resp);
    free(key);
    free(secret);
    free(token);
}

static void sts_handle(rd_emu *emu, const char *action, const rd_form *form, const rd_emu_request *req,
                       rd_emu_response *resp)
{
    if (rd_emu_faults_draw(emu->faults, "sts.throttle")) {
        rd_emu_reply_query_error(resp, 400, STS_NS, "Throttling", "Rate exceeded", req->request_id);
        return;
    }
    if (strcmp(action, "GetCallerIdentity") == 0) {
        rd_emu_principal p;
        const char *user_id = req->access_key_id && rd_emu_ids_find_key(emu->ids, req->access_key_id, &p)
                                  ? p.user_id
                                  : "";
        xmlBufferPtr buf = xmlBufferCreate();
        xmlTextWriterPtr w = query_reply_start(buf, action, STS_NS);
        xmlTextWriterWriteElement(w, BAD_CAST "Arn", BAD_CAST(req->principal_arn ? req->principal_arn : ""));
        xmlTextWriterWriteElement(w, BAD_CAST "UserId", BAD_CAST user_id);
        xmlTextWriterWriteElement(w, BAD_CAST "Account", BAD_CAST rd_emu_ids_account(emu->ids));
        query_reply_end(w, buf, req, resp);
    } else if (strcmp(action, "AssumeRole") == 0) {
        sts_assume(emu, form, req, resp, 0);
    } else if (strcmp(action, "AssumeRoleWithWebIdentity") == 0) {
        sts_assume(emu, form, req, resp, 1);
    } else if (strcmp(action, "GetSessionToken") == 0) {
        sts_session_token(emu, form, req, resp);
    } else {
        char msg[256];
        snprintf(msg, sizeof msg, "Could not find operation %s for version 2011-06-15", action);
        rd_emu_reply_query_error(resp, 400, STS_NS, "InvalidAction", msg, req->request_id);
    }
}

/* DbUser for IAM-authenticated database credentials: IAM:<user> or IAMR:<role>. */
static void iam_db_user(const rd_emu_request *req, char *out, size_t len)
{
    const char *arn = req->principal_arn ? req->principal_arn : "";
    const char *ar = strstr(arn, ":assumed-role/");
    if (ar) {
        ar += strlen(":assumed-role/");
        const char *slash = strchr(ar, '/');
        snprintf(out, len, "IAMR:%.*s", (int)(slash ? slash - ar : (long)strlen(ar)), ar);
        return;
    }
    const char *slash = strrchr(arn, '/');
    const char *colon = strrchr(arn, ':');
    snprintf(out, len, "IAM:%s", slash ? slash + 1 : colon ? colon + 1 : arn);
}

static int list_has(const char *const *items, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (name && strcmp(items[i], name) == 0)
            return 1;
    return 0;
}

/* Where the emulator says its warehouses listen: loopback and Redshift's port (it speaks only the HTTP APIs, so
 * a client that connects there fails at once, locally, instead of reaching a real address). */
#define WAREHOUSE_ADDRESS "127.0.0.1"
#define WAREHOUSE_PORT "5439"
#define WAREHOUSE_CREATED "2024-01-01T00:00:00Z"

/* A page of a list: MaxRecords / maxResults (lo..hi, 0 = hi) and the Marker / nextToken "rdm1-N". */
static int page_from(const char *max, const char *marker, long lo, long hi, size_t *offset, size_t *count)
{
    char *end = NULL;
    long m = max ? strtol(max, &end, 10) : hi;
    if (max && (!*max || *end || m < lo || m > hi))
        return 0;
    *count = (size_t)m;
    *offset = 0;
    if (marker) {
        unsigned long long v = strncmp(marker, "rdm1-", 5) == 0 ? strtoull(marker + 5, &end, 10) : 0;
        if (strncmp(marker, "rdm1-", 5) != 0 || !marker[5] || *end)
            return 0;
        *offset = (size_t)v;
    }
    return 1;
}

/* DescribeClusters: the configured clusters, each available (the cluster-available waiter's condition). */
static void describe_clusters(rd_emu *emu, const rd_form *form, const rd_emu_request *req, rd_emu_response *resp)
{
    const char *only = rd_form_get(form, "ClusterIdentifier");
    size_t n, offset, count;
    const char *const *clusters = rd_emu_ids_clusters(emu->ids, &n);
    if (!page_from(rd_form_get(form, "MaxRecords"), rd_form_get(form, "Marker"), 20, 100, &offset, &count)) {
        rd_emu_reply_query_error(resp, 400, REDSHIFT_NS, "InvalidParameterValue",
                                 "MaxRecords must be between 20 and 100, and Marker one this API returned.",
                                 req->request_id);
        return;
    }
    if (only && !list_has(clusters, n, only)) {
        char msg[256];
        snprintf(msg, sizeof msg, "Cluster %.200s not found.", only);
        rd_emu_reply_query_error(resp, 404, REDSHIFT_NS, "ClusterNotFound", msg, req->request_id);
        return;
    }
    const char *region = rd_emu_ids_region(emu->ids), *account = rd_emu_ids_account(emu->ids);
    char resource[512];
    if (only)
        snprintf(resource, sizeof resource, "arn:aws:redshift:%s:%s:cluster:%s", region, account, only);
    else
        snprintf(resource, sizeof resource, "*");
    if (!rd_emu_allowed(emu, req, "redshift:DescribeClusters", resource)) {
        char msg[768];
        snprintf(msg, sizeof msg, "User: %s is not authorized to perform: redshift:DescribeClusters on resource: %s",
                 req->principal_arn ? req->principal_arn : "anonymous", resource);
        rd_emu_reply_query_error(resp, 403, REDSHIFT_NS, "AccessDenied", msg, req->request_id);
        return;
    }
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = query_reply_start(buf, "DescribeClusters", REDSHIFT_NS);
    xmlTextWriterStartElement(w, BAD_CAST "Clusters");
    size_t listed = 0, seen = 0;
    for (size_t i = 0; i < n && listed < count; i++) {
        if (only && strcmp(clusters[i], only) != 0)
            continue;
        if (seen++ < offset)
            continue;
        listed++;
        char ns_arn[512];
        snprintf(ns_arn, sizeof ns_arn, "arn:aws:redshift:%s:%s:namespace:%s", region, account, clusters[i]);
        xmlTextWriterStartElement(w, BAD_CAST "Cluster");
        xmlTextWriterWriteElement(w, BAD_CAST "ClusterIdentifier", BAD_CAST clusters[i]);
        xmlTextWriterWriteElement(w, BAD_CAST "NodeType", BAD_CAST "ra3.xlplus");
        xmlTextWriterWriteElement(w, BAD_CAST "ClusterStatus", BAD_CAST "available");
        xmlTextWriterWriteElement(w, BAD_CAST "ClusterAvailabilityStatus", BAD_CAST "Available");
        xmlTextWriterWriteElement(w, BAD_CAST "MasterUsername", BAD_CAST "awsuser");
        xmlTextWriterWriteElement(w, BAD_CAST "DBName", BAD_CAST "dev");
        xmlTextWriterStartElement(w, BAD_CAST "Endpoint");
        xmlTextWriterWriteElement(w, BAD_CAST "Address", BAD_CAST WAREHOUSE_ADDRESS);
        xmlTextWriterWriteElement(w, BAD_CAST "Port", BAD_CAST WAREHOUSE_PORT);
        xmlTextWriterEndElement(w);
        xmlTextWriterWriteElement(w, BAD_CAST "ClusterCreateTime", BAD_CAST WAREHOUSE_CREATED);
        xmlTextWriterWriteElement(w, BAD_CAST "AutomatedSnapshotRetentionPeriod", BAD_CAST "1");
        xmlTextWriterWriteElement(w, BAD_CAST "NumberOfNodes", BAD_CAST "1");
        xmlTextWriterWriteElement(w, BAD_CAST "PubliclyAccessible", BAD_CAST "false");
        xmlTextWriterWriteElement(w, BAD_CAST "Encrypted", BAD_CAST "true");
        xmlTextWriterWriteElement(w, BAD_CAST "ClusterVersion", BAD_CAST "1.0");
        xmlTextWriterWriteElement(w, BAD_CAST "AllowVersionUpgrade", BAD_CAST "true");
        xmlTextWriterWriteElement(w, BAD_CAST "EnhancedVpcRouting", BAD_CAST "false");
        xmlTextWriterWriteElement(w, BAD_CAST "AvailabilityZone", BAD_CAST "us-east-1a");
        xmlTextWriterWriteElement(w, BAD_CAST "ClusterNamespaceArn", BAD_CAST ns_arn);
        xmlTextWriterEndElement(w);
    }
    xmlTextWriterEndElement(w); /* Clusters */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += !only || strcmp(clusters[i], only) == 0;
    if (offset + listed < total) {
        char next[48];
        snprintf(next, sizeof next, "rdm1-%zu", offset + listed);
        xmlTextWriterWriteElement(w, BAD_CAST "Marker", BAD_CAST next);
    }
    query_reply_end(w, buf, req, resp);
}

static void redshift_handle(rd_emu *emu, const char *action, const rd_form *form, const rd_emu_request *req,
                            rd_emu_response *resp)
{
    if (strcmp(action, "DescribeClusters") == 0) {
        describe_clusters(emu, form, req, resp);
        return;
    }
    int with_iam = strcmp(action, "GetClusterCredentialsWithIAM") == 0;
    if (!with_iam && strcmp(action, "GetClusterCredentials") != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "The action %s is not valid for this web service.", action);
        rd_emu_reply_query_error(resp, 400, REDSHIFT_NS, "InvalidAction", msg, req->request_id);
        return;
    }
    const char *cluster = rd_form_get(form, "ClusterIdentifier");
    const char *db = rd_form_get(form, "DbName");
    const char *dbuser = rd_form_get(form, "DbUser");
    if (!cluster || (!with_iam && !dbuser)) {
        missing_parameter(resp, REDSHIFT_NS, !cluster ? "ClusterIdentifier" : "DbUser", req);
        return;
    }
    size_t n;
    const char *const *clusters = rd_emu_ids_clusters(emu->ids, &n);
    if (!list_has(clusters, n, cluster)) {
        char msg[256];
        snprintf(msg, sizeof msg, "Cluster %s not found.", cluster);
        rd_emu_reply_query_error(resp, 404, REDSHIFT_NS, "ClusterNotFound", msg, req->request_id);
        return;
    }
    char resource[512], user[256];
    if (with_iam) {
        iam_db_user(req, user, sizeof user);
        snprintf(resource, sizeof resource, "arn:aws:redshift:%s:%s:dbname:%s/%s", rd_emu_ids_region(emu->ids),
                 rd_emu_ids_account(emu->ids), cluster, db ? db : "*");
    } else {
        snprintf(user, sizeof user, "%s", dbuser);
        snprintf(resource, sizeof resource, "arn:aws:redshift:%s:%s:dbuser:%s/%s", rd_emu_ids_region(emu->ids),
                 rd_emu_ids_account(emu->ids), cluster, dbuser);
    }
    char action_name[96];
    snprintf(action_name, sizeof action_name, "redshift:%s", action);
    if (!rd_emu_allowed(emu, req, action_name, resource)) {
        char msg[768];
        snprintf(msg, sizeof msg, "User: %s is not authorized to perform: %s on resource: %s",
                 req->principal_arn ? req->principal_arn : "anonymous", action_name, resource);
        rd_emu_reply_query_error(resp, 403, REDSHIFT_NS, "AccessDenied", msg, req->request_id);
        return;
    }
    int duration = 900;
    const char *d = rd_form_get(form, "DurationSeconds");
    if (d)
        duration = atoi(d);
    char *password = random_password();
    char exp[32], next[32];
    iso8601(time(NULL) + duration, exp);
    iso8601(time(NULL) + duration - 60, next);
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = query_reply_start(buf, action, REDSHIFT_NS);
    char full_user[300];
    snprintf(full_user, sizeof full_user, "%s%s", with_iam ? "" : "IAM:", user);
    xmlTextWriterWriteElement(w, BAD_CAST "DbUser", BAD_CAST full_user);
    xmlTextWriterWriteElement(w, BAD_CAST "DbPassword", BAD_CAST(password ? password : ""));
    xmlTextWriterWriteElement(w, BAD_CAST "Expiration", BAD_CAST exp);
    if (with_iam)
        xmlTextWriterWriteElement(w, BAD_CAST "NextRefreshTime", BAD_CAST next);
    query_reply_end(w, buf, req, resp);
    free(password);
}

void rd_emu_query_api_handle(rd_emu *emu, const char *service, const rd_form *form, const rd_emu_request *req,
                             rd_emu_response *resp)
{
    const char *action = rd_form_get(form, "Action");
    if (!action) {
        rd_emu_reply_query_error(resp, 400, strcmp(service, "sts") == 0 ? STS_NS : REDSHIFT_NS,
                                 "MissingAction", "Missing Action", req->request_id);
        return;
    }
    if (strcmp(service, "sts") == 0)
        sts_handle(emu, action, form, req, resp);
    else
        redshift_handle(emu, action, form, req, resp);
}

/* A workgroup as GetWorkgroup / ListWorkgroups describe it: AVAILABLE, a stable id made from its name. */
static json_t *workgroup_json(rd_emu *emu, const char *name)
{
    unsigned long long h = 1469598103934665603ULL; /* FNV-1a of the name, spread over a UUID's digits */
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    unsigned long long h2 = h * 0x9e3779b97f4a7c15ULL;
    char id[40], arn[512];
    snprintf(id, sizeof id, "%08llx-%04llx-4%03llx-8%03llx-%012llx", h >> 32, (h >> 16) & 0xffff, h & 0xfff,
             (h2 >> 52) & 0xfff, h2 & 0xffffffffffffULL);
    snprintf(arn, sizeof arn, "arn:aws:redshift-serverless:%s:%s:workgroup/%s", rd_emu_ids_region(emu->ids),
             rd_emu_ids_account(emu->ids), id);
    json_t *endpoint = json_pack("{s:s, s:i, s:[]}", "address", WAREHOUSE_ADDRESS, "port", atoi(WAREHOUSE_PORT),
                                 "vpcEndpoints");
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:i, s:i, s:i, s:s, s:b, s:b, s:[], s:[], s:[], s:s, s:s, s:s}",
                     "workgroupName", name, "workgroupId", id, "workgroupArn", arn, "namespaceName", "default",
                     "status", "AVAILABLE", "endpoint", endpoint, "port", atoi(WAREHOUSE_PORT), "baseCapacity", 128,
                     "maxCapacity", 512, "creationDate", WAREHOUSE_CREATED, "enhancedVpcRouting", 0,
                     "publiclyAccessible", 0, "configParameters", "securityGroupIds", "subnetIds", "workgroupVersion",
                     "1.0", "patchVersion", "patch 1.0", "trackName", "current");
}

static int serverless_allowed(rd_emu *emu, const rd_emu_request *req, rd_emu_response *resp, const char *action,
                              const char *resource)
{
    if (rd_emu_allowed(emu, req, action, resource))
        return 1;
    char msg[768];
    snprintf(msg, sizeof msg, "User: %s is not authorized to perform: %s on resource: %s",
             req->principal_arn ? req->principal_arn : "anonymous", action, resource);
    rd_emu_reply_json_error(resp, 400, "AccessDeniedException", msg, req->request_id);
    return 0;
}

/* GetWorkgroup and ListWorkgroups over the configured workgroups. */
static void serverless_workgroups(rd_emu *emu, int list, json_t *in, const rd_emu_request *req, rd_emu_response *resp)
{
    size_t n;
    const char *const *wgs = rd_emu_ids_workgroups(emu->ids, &n);
    if (!list) {
        const char *wg = json_string_value(json_object_get(in, "workgroupName"));
        char resource[512];
        /* the emulator's policies name a workgroup as GetCredentials does: workgroup/<name> */
        snprintf(resource, sizeof resource, "arn:aws:redshift-serverless:%s:%s:workgroup/%.200s",
                 rd_emu_ids_region(emu->ids), rd_emu_ids_account(emu->ids), wg ? wg : "");
        if (!wg) {
            rd_emu_reply_json_error(resp, 400, "ValidationException",
                                    "1 validation error detected: Value null at 'workgroupName' failed to satisfy "
                                    "constraint: Member must not be null",
                                    req->request_id);
        } else if (serverless_allowed(emu, req, resp, "redshift-serverless:GetWorkgroup", resource)) {
            if (!list_has(wgs, n, wg)) {
                char msg[256];
                snprintf(msg, sizeof msg, "Workgroup %.200s not found.", wg);
                rd_emu_reply_json_error(resp, 400, "ResourceNotFoundException", msg, req->request_id);
            } else {
                rd_emu_reply_json(resp, json_pack("{s:o}", "workgroup", workgroup_json(emu, wg)), req->request_id);
            }
        }
        return;
    }
    json_t *mr = json_object_get(in, "maxResults"), *nt = json_object_get(in, "nextToken");
    char max[24];
    snprintf(max, sizeof max, "%lld", json_is_integer(mr) ? (long long)json_integer_value(mr) : 100LL);
    size_t offset, count;
    if ((mr && !json_is_integer(mr)) || (nt && !json_is_string(nt)) ||
        !page_from(max, json_string_value(nt), 1, 100, &offset, &count)) {
        rd_emu_reply_json_error(resp, 400, "ValidationException",
                                "maxResults must be between 1 and 100, and nextToken one this API returned.",
                                req->request_id);
        return;
    }
    if (!serverless_allowed(emu, req, resp, "redshift-serverless:ListWorkgroups", "*"))
        return;
    json_t *arr = json_array();
    for (size_t i = offset; i < n && i < offset + count; i++)
        json_array_append_new(arr, workgroup_json(emu, wgs[i]));
    json_t *o = json_pack("{s:o}", "workgroups", arr);
    if (offset + count < n) {
        char next[48];
        snprintf(next, sizeof next, "rdm1-%zu", offset + count);
        json_object_set_new(o, "nextToken", json_string(next));
    }
    rd_emu_reply_json(resp, o, req->request_id);
}

void rd_emu_serverless_handle(rd_emu *emu, const char *operation, const rd_emu_request *req, rd_emu_response *resp)
{
    int workgroups = strcmp(operation, "GetWorkgroup") == 0 || strcmp(operation, "ListWorkgroups") == 0;
    if (!workgroups && strcmp(operation, "GetCredentials") != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "The emulator does not implement RedshiftServerless.%s", operation);
        rd_emu_reply_json_error(resp, 400, "UnknownOperationException", msg, req->request_id);
        return;
    }
    json_error_t jerr;
    json_t *in = json_loadb(req->body ? req->body : "{}", req->body_len ? req->body_len : 2, 0, &jerr);
    if (!json_is_object(in)) {
        json_decref(in);
        rd_emu_reply_json_error(resp, 400, "SerializationException",
                                "Start of structure or map found where not expected", req->request_id);
        return;
    }
    if (workgroups) {
        serverless_workgroups(emu, strcmp(operation, "ListWorkgroups") == 0, in, req, resp);
        json_decref(in);
        return;
    }
    const char *wg = json_string_value(json_object_get(in, "workgroupName"));
    const char *db = json_string_value(json_object_get(in, "dbName"));
    json_int_t duration = json_integer_value(json_object_get(in, "durationSeconds"));
    if (!duration)
        duration = 900;
    size_t n;
    const char *const *wgs = rd_emu_ids_workgroups(emu->ids, &n);
    if (!wg) {
        rd_emu_reply_json_error(resp, 400, "ValidationException",
                                "You must provide a workgroupName or customDomainName.", req->request_id);
    } else if (!list_has(wgs, n, wg)) {
        char msg[256];
        snprintf(msg, sizeof msg, "Workgroup %s not found.", wg);
        rd_emu_reply_json_error(resp, 400, "ResourceNotFoundException", msg, req->request_id);
    } else {
        char resource[512];
        snprintf(resource, sizeof resource, "arn:aws:redshift-serverless:%s:%s:workgroup/%s",
                 rd_emu_ids_region(emu->ids), rd_emu_ids_account(emu->ids), wg);
        if (!rd_emu_allowed(emu, req, "redshift-serverless:GetCredentials", resource)) {
            char msg[768];
            snprintf(msg, sizeof msg,
                     "User: %s is not authorized to perform: redshift-serverless:GetCredentials on resource: %s",
                     req->principal_arn ? req->principal_arn : "anonymous", resource);
            rd_emu_reply_json_error(resp, 400, "AccessDeniedException", msg, req->request_id);
        } else {
            char user[256];
            iam_db_user(req, user, sizeof user);
            char *password = random_password();
            time_t now = time(NULL);
            json_t *o = json_object();
            json_object_set_new(o, "dbUser", json_string(user));
            json_object_set_new(o, "dbPassword", json_string(password ? password : ""));
            json_object_set_new(o, "expiration", json_integer((json_int_t)now + duration));
            json_object_set_new(o, "nextRefreshTime", json_integer((json_int_t)now + duration - 60));
            (void)db;
            rd_emu_reply_json(resp, o, req->request_id);
            free(password);
        }
    }
    json_decref(in);
}

void rd_emu_sso_handle(rd_emu *emu, const rd_form *query, const rd_emu_request *req, rd_emu_response *resp)
{
    const char *token = rd_headers_get(req->headers, "x-amz-sso_bearer_token");
    const char *role_name = rd_form_get(query, "role_name");
    const char *account = rd_form_get(query, "account_id");
    if (!role_name || !account) {
        rd_emu_reply_json_error(resp, 400, "InvalidRequestException", "role_name and account_id are required",
                                req->request_id);
        return;
    }
    const char *role_arn = rd_emu_ids_sso_role(emu->ids, token, account, role_name);
    if (!role_arn) {
        rd_emu_reply_json_error(resp, 401, "UnauthorizedException", "Session token not found or invalid",
                                req->request_id);
        return;
    }
    char *key = NULL, *secret = NULL, *tok = NULL, *arn = NULL, *id = NULL;
    time_t exp = 0;
    rd_emu_error err;
    if (rd_emu_ids_issue_session(emu->ids, role_arn, "sso", 3600, time(NULL), &key, &secret, &tok, &arn, &id, &exp,
                                 &err) != 0) {
        /* the portal's name for the same internal failure */
        rd_emu_reply_json_error(resp, err.http_status, "InternalServerException", err.message, req->request_id);
        return;
    }
    json_t *rc = json_object();
    json_object_set_new(rc, "accessKeyId", json_string(key));
    json_object_set_new(rc, "secretAccessKey", json_string(secret));
    json_object_set_new(rc, "sessionToken", json_string(tok));
    json_object_set_new(rc, "expiration", json_integer((json_int_t)exp * 1000));
    json_t *o = json_object();
    json_object_set_new(o, "roleCredentials", rc);
    rd_emu_reply_json(resp, o, req->request_id);
    rd_headers_set(&resp->headers, "Content-Type", "application/json");
    free(key);
    free(secret);
    free(tok);
    free(arn);
    free(id);
}
