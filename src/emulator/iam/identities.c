/* identities.c — the emulator's principals and policy (see identities.h). */
#include "emulator/iam/identities.h"

#include <fnmatch.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "redduck/buf.h"

typedef struct emu_rule {
    char *action;
    char *resource; /* NULL: any */
} emu_rule;

typedef struct emu_entity {
    char *name;
    char *arn;
    char *user_id;
    char *key;    /* users only */
    char *secret; /* users only */
    emu_rule *allow;
    size_t nallow;
    emu_rule *deny;
    size_t ndeny;
    char **web_tokens;
    size_t nweb;
} emu_entity;

typedef struct emu_session {
    char *key, *secret, *token, *arn, *user_id, *role_arn;
    time_t expiration;
} emu_session;

static void session_clear(emu_session *s)
{
    free(s->key);
    free(s->secret);
    free(s->token);
    free(s->arn);
    free(s->user_id);
    free(s->role_arn);
}

typedef struct emu_sso {
    char *token, *account_id, *role_name, *role_arn;
} emu_sso;

typedef struct str_list {
    char **items;
    size_t count;
} str_list;

struct rd_emu_ids {
    char *account;
    char *region;
    emu_entity *users;
    size_t nusers;
    emu_entity *roles;
    size_t nroles;
    emu_sso *sso;
    size_t nsso;
    str_list workgroups, clusters, buckets;
    pthread_mutex_t lock; /* guards sessions */
    emu_session *sessions;
    size_t nsessions, capsessions;
};

static const char default_config[] =
    "{\"account\":\"000000000000\",\"region\":\"us-east-1\","
    "\"users\":[{\"name\":\"test\",\"access_key_id\":\"test\",\"secret_access_key\":\"test\",\"allow\":[\"*\"],"
    "\"arn\":\"arn:aws:iam::000000000000:root\",\"user_id\":\"000000000000\"}],"
    "\"roles\":[{\"name\":\"redshift-unload\",\"allow\":[\"*\"],\"default\":true}],"
    "\"workgroups\":[\"demo\"],\"clusters\":[\"redshift-cluster-1\"],\"buckets\":[\"redduck-staging\"]}";

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void rules_free(emu_rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].action);
        free(r[i].resource);
    }
    free(r);
}

static void entity_free(emu_entity *e)
{
    free(e->name);
    free(e->arn);
    free(e->user_id);
    free(e->key);
    if (e->secret)
        OPENSSL_cleanse(e->secret, strlen(e->secret));
    free(e->secret);
    rules_free(e->allow, e->nallow);
    rules_free(e->deny, e->ndeny);
    for (size_t i = 0; i < e->nweb; i++)
        free(e->web_tokens[i]);
    free(e->web_tokens);
}

static void list_free(str_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
}

void rd_emu_ids_free(rd_emu_ids *ids)
{
    if (!ids)
        return;
    for (size_t i = 0; i < ids->nusers; i++)
        entity_free(&ids->users[i]);
    free(ids->users);
    for (size_t i = 0; i < ids->nroles; i++)
        entity_free(&ids->roles[i]);
    free(ids->roles);
    for (size_t i = 0; i < ids->nsso; i++) {
        free(ids->sso[i].token);
        free(ids->sso[i].account_id);
        free(ids->sso[i].role_name);
        free(ids->sso[i].role_arn);
    }
    free(ids->sso);
    for (size_t i = 0; i < ids->nsessions; i++)
        session_clear(&ids->sessions[i]);
    free(ids->sessions);
    list_free(&ids->workgroups);
    list_free(&ids->clusters);
    list_free(&ids->buckets);
    free(ids->account);
    free(ids->region);
    pthread_mutex_destroy(&ids->lock);
    free(ids);
}

static rd_status parse_rules(json_t *arr, const char *where, emu_rule **out, size_t *n, rd_error *err)
{
    *out = NULL;
    *n = 0;
    if (!arr)
        return RD_OK;
    if (!json_is_array(arr))
        return rd_error_set(err, RD_E_CONFIG, "%s must be a list of \"action [resource]\" strings", where);
    *out = calloc(json_array_size(arr) + 1, sizeof **out);
    if (!*out)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        if (!s || !*s)
            return rd_error_set(err, RD_E_CONFIG, "%s[%zu] must be a string like \"s3:GetObject\"", where, i);
        const char *sp = strchr(s, ' ');
        emu_rule *r = &(*out)[(*n)++];
        r->action = sp ? strndup(s, (size_t)(sp - s)) : strdup(s);
        if (sp) {
            while (*sp == ' ')
                sp++;
            r->resource = *sp ? strdup(sp) : NULL;
        }
    }
    return RD_OK;
}

static rd_status parse_list(json_t *arr, const char *where, str_list *out, rd_error *err)
{
    if (!arr)
        return RD_OK;
    if (!json_is_array(arr))
        return rd_error_set(err, RD_E_CONFIG, "%s must be a list of strings", where);
    out->items = calloc(json_array_size(arr) + 1, sizeof *out->items);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v))
            return rd_error_set(err, RD_E_CONFIG, "%s[%zu] must be a string", where, i);
        out->items[out->count++] = strdup(json_string_value(v));
    }
    return RD_OK;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static rd_status parse_entity(rd_emu_ids *ids, json_t *o, int is_role, size_t idx, emu_entity *e, rd_error *err)
{
    char where[96];
    snprintf(where, sizeof where, "%s[%zu]", is_role ? "roles" : "users", idx);
    if (!json_is_object(o))
        return rd_error_set(err, RD_E_CONFIG, "%s must be an object", where);
    const char *name = jstr(o, "name");
    if (!name || !*name)
        return rd_error_set(err, RD_E_CONFIG, "%s needs a \"name\"", where);
    e->name = strdup(name);
    rd_buf b = RD_BUF_INIT;
    if (jstr(o, "arn"))
        rd_buf_puts(&b, jstr(o, "arn"));
    else
        rd_buf_printf(&b, "arn:aws:iam::%s:%s/%s", ids->account, is_role ? "role" : "user", name);
    e->arn = rd_buf_detach(&b);
    if (jstr(o, "user_id"))
        e->user_id = strdup(jstr(o, "user_id"));
    else {
        rd_buf_printf(&b, "%s%s", is_role ? "AROA" : "AIDA", name);
        for (char *p = b.data; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 32);
        e->user_id = rd_buf_detach(&b);
    }
    if (!is_role) {
        const char *k = jstr(o, "access_key_id"), *s = jstr(o, "secret_access_key");
        if (!k || !s)
            return rd_error_set(err, RD_E_CONFIG, "%s needs \"access_key_id\" and \"secret_access_key\"", where);
        e->key = strdup(k);
        e->secret = strdup(s);
    }
    char w2[128];
    snprintf(w2, sizeof w2, "%s.allow", where);
    rd_status st = parse_rules(json_object_get(o, "allow"), w2, &e->allow, &e->nallow, err);
    if (st != RD_OK)
        return st;
    snprintf(w2, sizeof w2, "%s.deny", where);
    if ((st = parse_rules(json_object_get(o, "deny"), w2, &e->deny, &e->ndeny, err)) != RD_OK)
        return st;
    str_list toks = { 0 };
    snprintf(w2, sizeof w2, "%s.web_identity_tokens", where);
    if ((st = parse_list(json_object_get(o, "web_identity_tokens"), w2, &toks, err)) != RD_OK) {
        list_free(&toks);
        return st;
    }
    e->web_tokens = toks.items;
    e->nweb = toks.count;
    return RD_OK;
}

static rd_status ids_from_json(json_t *root, const char *path, rd_emu_ids *ids, rd_error *err)
{
    if (!json_is_object(root))
        return rd_error_set(err, RD_E_CONFIG, "%s: the emulator config must be a JSON object", path);
    ids->account = strdup(jstr(root, "account") ? jstr(root, "account") : "000000000000");
    ids->region = strdup(jstr(root, "region") ? jstr(root, "region") : "us-east-1");
    json_t *users = json_object_get(root, "users"), *roles = json_object_get(root, "roles");
    if (users && !json_is_array(users))
        return rd_error_set(err, RD_E_CONFIG, "%s: \"users\" must be a list", path);
    if (roles && !json_is_array(roles))
        return rd_error_set(err, RD_E_CONFIG, "%s: \"roles\" must be a list", path);
    ids->users = calloc(json_array_size(users) + 1, sizeof *ids->users);
    ids->roles = calloc(json_array_size(roles) + 1, sizeof *ids->roles);
    rd_status st;
    size_t i;
    json_t *v;
    json_array_foreach(users, i, v) {
        ids->nusers++;
        if ((st = parse_entity(ids, v, 0, i, &ids->users[i], err)) != RD_OK)
            return rd_error_prefix(err, "%s: ", path);
    }
    int default_seen = 0;
    json_array_foreach(roles, i, v) {
        ids->nroles++;
        if ((st = parse_entity(ids, v, 1, i, &ids->roles[i], err)) != RD_OK)
            return rd_error_prefix(err, "%s: ", path);
        if (json_is_true(json_object_get(v, "default")) && !default_seen && i > 0) {
            /* keep the default role first: IAM_ROLE default resolves to roles[0] */
            emu_entity tmp = ids->roles[0];
            ids->roles[0] = ids->roles[i];
            ids->roles[i] = tmp;
        }
        if (json_is_true(json_object_get(v, "default")))
            default_seen = 1;
    }
    json_t *sso = json_object_get(root, "sso");
    if (sso && !json_is_array(sso))
        return rd_error_set(err, RD_E_CONFIG, "%s: \"sso\" must be a list", path);
    ids->sso = calloc(json_array_size(sso) + 1, sizeof *ids->sso);
    json_array_foreach(sso, i, v) {
        const char *tok = jstr(v, "access_token"), *acct = jstr(v, "account_id"), *rn = jstr(v, "role_name"),
                   *role = jstr(v, "role");
        if (!tok || !rn || !role)
            return rd_error_set(err, RD_E_CONFIG, "%s: sso[%zu] needs access_token, role_name and role", path, i);
        const char *arn = rd_emu_ids_role_arn(ids, role);
        if (!arn)
            return rd_error_set(err, RD_E_CONFIG, "%s: sso[%zu] names role '%s', which is not in \"roles\"", path,
                                i, role);
        emu_sso *s = &ids->sso[ids->nsso++];
        s->token = strdup(tok);
        s->account_id = strdup(acct ? acct : ids->account);
        s->role_name = strdup(rn);
        s->role_arn = strdup(arn);
    }
    if ((st = parse_list(json_object_get(root, "workgroups"), "workgroups", &ids->workgroups, err)) != RD_OK ||
        (st = parse_list(json_object_get(root, "clusters"), "clusters", &ids->clusters, err)) != RD_OK ||
        (st = parse_list(json_object_get(root, "buckets"), "buckets", &ids->buckets, err)) != RD_OK)
        return rd_error_prefix(err, "%s: ", path);
    return RD_OK;
}

rd_status rd_emu_ids_load(const char *path, rd_emu_ids **out, rd_error *err)
{
    json_error_t jerr;
    json_t *root = path ? json_load_file(path, 0, &jerr) : json_loads(default_config, 0, &jerr);
    if (!root)
        return rd_error_set(err, RD_E_CONFIG, "%s:%d: %s — fix the emulator config (JSON)", path ? path : "default",
                            jerr.line, jerr.text);
    rd_emu_ids *ids = calloc(1, sizeof *ids);
    if (!ids) {
        json_decref(root);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    pthread_mutex_init(&ids->lock, NULL);
    rd_status st = ids_from_json(root, path ? path : "default config", ids, err);
    json_decref(root);
    if (st != RD_OK) {
        rd_emu_ids_free(ids);
        return st;
    }
    *out = ids;
    return RD_OK;
}

const char *rd_emu_ids_account(const rd_emu_ids *ids)
{
    return ids->account;
}

const char *rd_emu_ids_region(const rd_emu_ids *ids)
{
    return ids->region;
}

int rd_emu_ids_find_key(rd_emu_ids *ids, const char *key, rd_emu_principal *p)
{
    if (!key)
        return 0;
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < ids->nusers; i++) {
        emu_entity *u = &ids->users[i];
        if (strcmp(u->key, key) == 0) {
            p->arn = u->arn;
            p->user_id = u->user_id;
            p->secret = u->secret;
            return 1;
        }
    }
    int found = 0;
    pthread_mutex_lock(&ids->lock);
    for (size_t i = 0; i < ids->nsessions; i++) {
        emu_session *s = &ids->sessions[i];
        if (strcmp(s->key, key) == 0) {
            p->arn = s->arn;
            p->user_id = s->user_id;
            p->secret = s->secret;
            p->session_token = s->token;
            p->expiration = s->expiration;
            p->role_arn = s->role_arn;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&ids->lock);
    return found;
}

static emu_entity *find_role(rd_emu_ids *ids, const char *arn_or_name)
{
    if (!arn_or_name)
        return NULL;
    if (strcmp(arn_or_name, "default") == 0)
        return ids->nroles ? &ids->roles[0] : NULL;
    for (size_t i = 0; i < ids->nroles; i++)
        if (strcmp(ids->roles[i].arn, arn_or_name) == 0 || strcmp(ids->roles[i].name, arn_or_name) == 0)
            return &ids->roles[i];
    return NULL;
}

const char *rd_emu_ids_role_arn(rd_emu_ids *ids, const char *arn_or_name)
{
    emu_entity *r = find_role(ids, arn_or_name);
    return r ? r->arn : NULL;
}

int rd_emu_ids_web_token_ok(rd_emu_ids *ids, const char *role_arn, const char *token)
{
    emu_entity *r = find_role(ids, role_arn);
    if (!r || !token)
        return 0;
    for (size_t i = 0; i < r->nweb; i++)
        if (strcmp(r->web_tokens[i], token) == 0)
            return 1;
    return 0;
}

const char *rd_emu_ids_sso_role(rd_emu_ids *ids, const char *token, const char *account_id, const char *role_name)
{
    for (size_t i = 0; i < ids->nsso; i++) {
        emu_sso *s = &ids->sso[i];
        if (token && strcmp(s->token, token) == 0 && account_id && strcmp(s->account_id, account_id) == 0 &&
            role_name && strcmp(s->role_name, role_name) == 0)
            return s->role_arn;
    }
    return NULL;
}

static char *random_string(const char *prefix, const char *alphabet, size_t n)
{
    size_t plen = strlen(prefix), alen = strlen(alphabet);
    char *s = malloc(plen + n + 1);
    unsigned char raw[128];
    if (!s || n > sizeof raw || RAND_bytes(raw, (int)n) != 1) {
        free(s);
        return NULL;
    }
    memcpy(s, prefix, plen);
    for (size_t i = 0; i < n; i++)
        s[plen + i] = alphabet[raw[i] % alen];
    s[plen + n] = '\0';
    return s;
}

/* Fresh random key, secret and token for s (arn, user_id, role_arn already set). 0 on out of memory. */
static int session_keys(emu_session *s)
{
    static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    s->key = random_string("ASIA", upper, 16);
    s->secret = random_string("", b64, 40);
    s->token = random_string("FwoGZXIvYXdzE", b64, 100);
    return s->key && s->secret && s->token;
}

static int store_session(rd_emu_ids *ids, emu_session s, rd_emu_error *err);

int rd_emu_ids_issue_user_session(rd_emu_ids *ids, const char *user_key, int duration_seconds, time_t now,
                                  char **access_key_id, char **secret, char **token, time_t *expiration,
                                  rd_emu_error *err)
{
    emu_entity *u = NULL;
    for (size_t i = 0; user_key && i < ids->nusers && !u; i++)
        if (strcmp(ids->users[i].key, user_key) == 0)
            u = &ids->users[i];
    if (!u)
        return rd_emu_error_set(err, 403, "AccessDenied", "Cannot call GetSessionToken with session credentials");
    emu_session s = { 0 };
    s.arn = strdup(u->arn);
    s.user_id = strdup(u->user_id);
    s.expiration = now + (duration_seconds > 0 ? duration_seconds : 43200);
    if (!s.arn || !s.user_id || !session_keys(&s)) {
        session_clear(&s);
        return rd_emu_error_set(err, 500, "InternalFailure", "out of memory");
    }
    /* stored sessions live as long as ids and never change: their strings may be read after the lock */
    const char *k = s.key, *sec = s.secret, *tok = s.token;
    if (store_session(ids, s, err) != 0)
        return -1;
    char *ko = xstrdup(k), *so = xstrdup(sec), *to = xstrdup(tok);
    if (!ko || !so || !to) {
        free(ko);
        free(so);
        free(to);
        return rd_emu_error_set(err, 500, "InternalFailure", "out of memory");
    }
    *access_key_id = ko;
    *secret = so;
    *token = to;
    *expiration = s.expiration;
    return 0;
}

int rd_emu_ids_issue_session(rd_emu_ids *ids, const char *role_arn, const char *session_name, int duration_seconds,
                             time_t now, char **access_key_id, char **secret, char **token, char **assumed_arn,
                             char **assumed_id, time_t *expiration, rd_emu_error *err)
{
    emu_entity *r = find_role(ids, role_arn);
    if (!r)
        return rd_emu_error_set(err, 500, "InternalFailure", "role %s does not exist in the emulator config",
                                role_arn);
    emu_session s = { 0 };
    session_keys(&s);
    rd_buf b = RD_BUF_INIT;
    rd_buf_printf(&b, "arn:aws:sts::%s:assumed-role/%s/%s", ids->account, r->name, session_name);
    s.arn = rd_buf_detach(&b);
    rd_buf_printf(&b, "%s:%s", r->user_id, session_name);
    s.user_id = rd_buf_detach(&b);
    s.role_arn = strdup(r->arn);
    s.expiration = now + (duration_seconds > 0 ? duration_seconds : 3600);
    if (!s.key || !s.secret || !s.token || !s.arn || !s.user_id || !s.role_arn)
        goto oom;
    *access_key_id = xstrdup(s.key);
    *secret = xstrdup(s.secret);
    *token = xstrdup(s.token);
    *assumed_arn = xstrdup(s.arn);
    *assumed_id = xstrdup(s.user_id);
    *expiration = s.expiration;
    return store_session(ids, s, err);
oom:
    session_clear(&s);
    return rd_emu_error_set(err, 500, "InternalFailure", "out of memory");
}

/* Adds s to the live sessions (s's strings move in; freed here on failure). */
static int store_session(rd_emu_ids *ids, emu_session s, rd_emu_error *err)
{
    pthread_mutex_lock(&ids->lock);
    if (ids->nsessions == ids->capsessions) {
        size_t cap = ids->capsessions ? ids->capsessions * 2 : 16;
        emu_session *p = realloc(ids->sessions, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&ids->lock);
            goto oom;
        }
        ids->sessions = p;
        ids->capsessions = cap;
    }
    ids->sessions[ids->nsessions++] = s;
    pthread_mutex_unlock(&ids->lock);
    return 0;
oom:
    session_clear(&s);
    return rd_emu_error_set(err, 500, "InternalFailure", "out of memory");
}

static int rule_matches(const emu_rule *r, const char *action, const char *resource)
{
    if (fnmatch(r->action, action, FNM_CASEFOLD) != 0)
        return 0;
    return !r->resource || (resource && fnmatch(r->resource, resource, 0) == 0);
}

static int entity_allows(const emu_entity *e, const char *action, const char *resource)
{
    for (size_t i = 0; i < e->ndeny; i++)
        if (rule_matches(&e->deny[i], action, resource))
            return 0;
    for (size_t i = 0; i < e->nallow; i++)
        if (rule_matches(&e->allow[i], action, resource))
            return 1;
    return 0;
}

int rd_emu_ids_allowed(rd_emu_ids *ids, const char *principal_arn, const char *action, const char *resource)
{
    if (!principal_arn)
        return 0;
    for (size_t i = 0; i < ids->nusers; i++)
        if (strcmp(ids->users[i].arn, principal_arn) == 0)
            return entity_allows(&ids->users[i], action, resource);
    /* assumed-role ARN: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION */
    const char *ar = strstr(principal_arn, ":assumed-role/");
    if (ar) {
        ar += strlen(":assumed-role/");
        const char *slash = strchr(ar, '/');
        size_t n = slash ? (size_t)(slash - ar) : strlen(ar);
        for (size_t i = 0; i < ids->nroles; i++)
            if (strlen(ids->roles[i].name) == n && strncmp(ids->roles[i].name, ar, n) == 0)
                return entity_allows(&ids->roles[i], action, resource);
        return 0;
    }
    emu_entity *r = find_role(ids, principal_arn);
    return r ? entity_allows(r, action, resource) : 0;
}

const char *const *rd_emu_ids_workgroups(const rd_emu_ids *ids, size_t *count)
{
    *count = ids->workgroups.count;
    return (const char *const *)ids->workgroups.items;
}

const char *const *rd_emu_ids_clusters(const rd_emu_ids *ids, size_t *count)
{
    *count = ids->clusters.count;
    return (const char *const *)ids->clusters.items;
}

const char *const *rd_emu_ids_buckets(const rd_emu_ids *ids, size_t *count)
{
    *count = ids->buckets.count;
    return (const char *const *)ids->buckets.items;
}
