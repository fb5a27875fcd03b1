/* store.c — the rules every store backend shares (store.h): names checked, values sealed with the keyring
 * (associated data project/environment/name), an audit row in the transaction of each change (key names
 * only), the keyring check value. The rows themselves are the backend's (store_sqlite.c). */
#include "server/store.h"

#include "aws/parse.h"
#include "core/utf8.h"
#include "redduck/dotenv.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/crypto.h>

struct rd_store {
    const rd_store_backend *ops;
    void *be;
    rd_keyring *kr;
};

#define KEYRING_CHECK_KEY "keyring_check"
#define KEYRING_CHECK_AAD "redduck-keyring-check-1"
#define KEYRING_CHECK_TEXT "redduck keyring check"

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---- names ------------------------------------------------------------------------------------------- */

static int is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int rd_store_name_valid(const char *s)
{
    if (!s || !is_alnum(s[0]))
        return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= RD_STORE_NAME_MAX || !(is_alnum(s[n]) || s[n] == '.' || s[n] == '_' || s[n] == '-'))
            return 0;
    return 1;
}

int rd_store_variable_name_valid(const char *s)
{
    return rd_dotenv_key_valid(s) && strlen(s) <= RD_STORE_VARIABLE_NAME_MAX;
}

/* The message does not repeat a refused name: it may be a value passed in the wrong place. */
static rd_status check_name(const char *what, const char *s, rd_error *err)
{
    if (rd_store_name_valid(s))
        return RD_OK;
    return rd_error_set(err, RD_E_USAGE,
                        "invalid %s name: use letters, digits, '.', '_' and '-' (starting with a letter or digit), "
                        "at most %d characters",
                        what, RD_STORE_NAME_MAX);
}

static rd_status check_variable(const char *name, rd_env env, rd_error *err)
{
    if (env != RD_ENV_DEV && env != RD_ENV_PROD && env != RD_ENV_SHARED)
        return rd_error_set(err, RD_E_USAGE, "invalid environment: use dev, prod or shared");
    if (!rd_store_variable_name_valid(name))
        return rd_error_set(err, RD_E_USAGE,
                            "invalid variable name: use letters, digits, '_', '.' and '-' (starting with a letter "
                            "or '_'), at most %d characters",
                            RD_STORE_VARIABLE_NAME_MAX);
    return RD_OK;
}

static rd_status check_actor(const char *actor, rd_error *err)
{
    if (!actor || !*actor || strlen(actor) > 256)
        return rd_error_set(err, RD_E_USAGE, "no actor given for the audit log");
    return RD_OK;
}

/* ---- transactions and audit -------------------------------------------------------------------------- */

static rd_status begin(rd_store *st, int write, rd_store_tx **tx, rd_error *err)
{
    return st->ops->begin(st->be, write, tx, err);
}

/* What a call checks before its transaction: the actor (writes), the user and project names (when given);
 * then the transaction. Returns the first failure (no transaction then). */
static rd_status start(rd_store *st, rd_status s, int write, const char *actor, const char *user,
                       const char *project, rd_store_tx **tx, rd_error *err)
{
    if (s == RD_OK && write)
        s = check_actor(actor, err);
    if (s == RD_OK && user)
        s = check_name("user", user, err);
    if (s == RD_OK && project)
        s = check_name("project", project, err);
    return s == RD_OK ? begin(st, write, tx, err) : s;
}

/* A read of one backend call: the checks of start (pre, the user and project names; NULL: none), a read
 * transaction, CALL (an st->ops member applied to its arguments, tx among them), its end. Returns. */
#define READ_ONE(st, pre, user, project, CALL)                                                               \
    do {                                                                                                     \
        rd_store_tx *tx = NULL;                                                                              \
        rd_status s_ = start(st, pre, 0, NULL, user, project, &tx, err);                                     \
        return s_ == RD_OK ? finish(st, tx, st->ops->CALL, err) : s_;                                        \
    } while (0)

/* Commits when status is RD_OK, else rolls back; returns the final status. */
static rd_status finish(rd_store *st, rd_store_tx *tx, rd_status status, rd_error *err)
{
    if (status == RD_OK)
        return st->ops->commit(tx, err);
    st->ops->rollback(tx);
    return status;
}

/* Appends an audit row; detail (may be NULL) is consumed. */
static rd_status audit(rd_store *st, rd_store_tx *tx, const char *actor, const char *action, const char *project,
                       json_t *detail, rd_error *err)
{
    if (!detail)
        detail = json_object();
    char *text = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(detail);
    if (!text)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory writing the audit log");
    rd_status s = st->ops->audit_insert(tx, now_s(), actor, action, project, text, err);
    free(text);
    return s;
}

/* The audit row of a change when s is RD_OK (detail consumed either way), then the end of tx. */
static rd_status audit_finish(rd_store *st, rd_store_tx *tx, rd_status s, const char *actor, const char *action,
                              const char *project, json_t *detail, rd_error *err)
{
    if (s == RD_OK)
        s = audit(st, tx, actor, action, project, detail, err);
    else
        json_decref(detail);
    return finish(st, tx, s, err);
}

/* ---- opening ----------------------------------------------------------------------------------------- */

static rd_status need_keyring(const rd_store *st, rd_error *err)
{
    if (st->kr)
        return RD_OK;
    return rd_error_set(err, RD_E_CONFIG, "the store was opened without a keyring: pass --keyring");
}

static rd_status check_keyring(rd_store *st, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = begin(st, 1, &tx, err);
    if (s != RD_OK)
        return s;
    unsigned char *blob = NULL;
    size_t len = 0;
    s = st->ops->meta_get(tx, KEYRING_CHECK_KEY, &blob, &len, err);
    if (s == RD_E_NOT_FOUND) { /* the first start with a keyring: seal the check value */
        s = rd_keyring_encrypt(st->kr, KEYRING_CHECK_TEXT, strlen(KEYRING_CHECK_TEXT), KEYRING_CHECK_AAD,
                               strlen(KEYRING_CHECK_AAD), &blob, &len, NULL, err);
        if (s == RD_OK)
            s = st->ops->meta_set(tx, KEYRING_CHECK_KEY, blob, len, err);
    } else if (s == RD_OK) {
        char *pt = NULL;
        size_t ptlen = 0;
        s = rd_keyring_decrypt(st->kr, blob, len, KEYRING_CHECK_AAD, strlen(KEYRING_CHECK_AAD), &pt, &ptlen, err);
        if (s == RD_OK && (ptlen != strlen(KEYRING_CHECK_TEXT) || memcmp(pt, KEYRING_CHECK_TEXT, ptlen) != 0))
            s = rd_error_set(err, RD_E_CONFIG, "the check value of the data dir is not redduck's");
        rd_keyring_wipe_free(pt, ptlen);
        if (s == RD_E_CONFIG)
            rd_error_prefix(err, "keyring %s does not open the values of this data dir; pass the keyring it was "
                                 "created with: ",
                            rd_keyring_path(st->kr));
    }
    free(blob);
    return finish(st, tx, s, err);
}

rd_status rd_store_new(const rd_store_backend *ops, void *be, rd_keyring *keyring, rd_store **out, rd_error *err)
{
    /* values pass through jansson in the API (request and reply bodies) and here (audit details) */
    rd_json_wipe_frees();
    rd_store *st = calloc(1, sizeof *st);
    if (!st) {
        ops->close(be);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory opening the store");
    }
    st->ops = ops;
    st->be = be;
    st->kr = keyring;
    if (keyring) {
        rd_status s = check_keyring(st, err);
        if (s != RD_OK) {
            rd_store_close(st);
            return s;
        }
    }
    *out = st;
    return RD_OK;
}

void rd_store_close(rd_store *st)
{
    if (!st)
        return;
    st->ops->close(st->be);
    free(st);
}

/* ---- users and tokens -------------------------------------------------------------------------------- */

void rd_store_user_clear(rd_store_user *u)
{
    if (!u)
        return;
    free(u->name);
    memset(u, 0, sizeof *u);
}

/* Clears each of the n elements of arr with clear, then frees arr (NULL: nothing). */
#define FREE_EACH(arr, n, clear)                                                                             \
    do {                                                                                                     \
        for (size_t i_ = 0; (arr) && i_ < (n); i_++)                                                         \
            clear(&(arr)[i_]);                                                                               \
        free(arr);                                                                                           \
    } while (0)

void rd_store_users_free(rd_store_user *users, size_t n)
{
    FREE_EACH(users, n, rd_store_user_clear);
}

static rd_status user_add_tx(rd_store *st, rd_store_tx *tx, const char *actor, const char *name, int admin,
                             rd_error *err)
{
    rd_store_user u = { 0 };
    rd_status s = st->ops->user_get(tx, name, &u, err);
    rd_store_user_clear(&u);
    if (s == RD_OK)
        return rd_error_set(err, RD_E_USAGE, "user %s exists", name);
    if (s != RD_E_NOT_FOUND)
        return s;
    s = st->ops->user_insert(tx, name, admin ? 1 : 0, now_s(), err);
    if (s == RD_OK)
        s = audit(st, tx, actor, "user.add", NULL, json_pack("{s:s, s:b}", "user", name, "admin", admin ? 1 : 0),
                  err);
    return s;
}

static rd_status token_create_tx(rd_store *st, rd_store_tx *tx, const char *actor, const char *user,
                                 const char *token_name, char token[RD_TOKEN_LEN + 1], rd_error *err)
{
    int live = 0;
    rd_status s = st->ops->token_live(tx, user, token_name, &live, err);
    if (s == RD_OK && live)
        return rd_error_set(err, RD_E_USAGE, "user %s already has a token named %s: revoke it or pick another name",
                            user, token_name);
    char t[RD_TOKEN_LEN + 1], hash[RD_TOKEN_HASH_LEN + 1];
    if (s == RD_OK)
        s = rd_token_new(t, err);
    if (s == RD_OK) {
        rd_token_hash(t, hash);
        s = st->ops->token_insert(tx, user, token_name, hash, now_s(), err);
        rd_token_wipe(hash, sizeof hash);
    }
    if (s == RD_OK)
        s = audit(st, tx, actor, "token.create", NULL, json_pack("{s:s, s:s}", "user", user, "token", token_name),
                  err);
    if (s == RD_OK)
        memcpy(token, t, sizeof t);
    rd_token_wipe(t, sizeof t);
    return s;
}

rd_status rd_store_bootstrap(rd_store *st, char token[RD_TOKEN_LEN + 1], int *created, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = begin(st, 1, &tx, err);
    if (s != RD_OK)
        return s;
    int64_t n = 0;
    int made = 0;
    s = st->ops->user_count(tx, 0, &n, err);
    if (s == RD_OK && n == 0) {
        s = user_add_tx(st, tx, "server", "admin", 1, err);
        if (s == RD_OK)
            s = token_create_tx(st, tx, "server", "admin", "bootstrap", token, err);
        made = 1;
    }
    s = finish(st, tx, s, err);
    if (s != RD_OK) {
        if (made)
            rd_token_wipe(token, RD_TOKEN_LEN + 1);
        return s;
    }
    *created = made;
    return RD_OK;
}

rd_status rd_store_user_add(rd_store *st, const char *actor, const char *name, int admin, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = start(st, RD_OK, 1, actor, name, NULL, &tx, err);
    return s == RD_OK ? finish(st, tx, user_add_tx(st, tx, actor, name, admin, err), err) : s;
}

rd_status rd_store_user_rm(rd_store *st, const char *actor, const char *name, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = start(st, RD_OK, 1, actor, name, NULL, &tx, err);
    if (s != RD_OK)
        return s;
    rd_store_user u = { 0 };
    int64_t admins = 0;
    s = st->ops->user_get(tx, name, &u, err);
    if (s == RD_OK && u.admin)
        s = st->ops->user_count(tx, 1, &admins, err);
    if (s == RD_OK && u.admin && admins <= 1)
        s = rd_error_set(err, RD_E_USAGE, "user %s is the last server admin: add another admin first", name);
    rd_store_user_clear(&u);
    if (s == RD_OK)
        s = st->ops->user_delete(tx, name, err);
    return audit_finish(st, tx, s, actor, "user.rm", NULL, json_pack("{s:s}", "user", name), err);
}

rd_status rd_store_user_get(rd_store *st, const char *name, rd_store_user *out, rd_error *err)
{
    READ_ONE(st, RD_OK, name, NULL, user_get(tx, name, out, err));
}

rd_status rd_store_user_list(rd_store *st, rd_store_user **out, size_t *n, rd_error *err)
{
    READ_ONE(st, RD_OK, NULL, NULL, user_list(tx, out, n, err));
}

rd_status rd_store_token_create(rd_store *st, const char *actor, const char *user, const char *token_name,
                                char token[RD_TOKEN_LEN + 1], rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = start(st, check_name("token", token_name, err), 1, actor, user, NULL, &tx, err);
    if (s != RD_OK)
        return s;
    char t[RD_TOKEN_LEN + 1];
    s = finish(st, tx, token_create_tx(st, tx, actor, user, token_name, t, err), err);
    if (s == RD_OK)
        memcpy(token, t, sizeof t);
    rd_token_wipe(t, sizeof t);
    return s;
}

rd_status rd_store_token_revoke(rd_store *st, const char *actor, const char *user, const char *token_name,
                                rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = start(st, check_name("token", token_name, err), 1, actor, user, NULL, &tx, err);
    if (s != RD_OK)
        return s;
    s = st->ops->token_revoke(tx, user, token_name, now_s(), err);
    return audit_finish(st, tx, s, actor, "token.revoke", NULL,
                        json_pack("{s:s, s:s}", "user", user, "token", token_name), err);
}

rd_status rd_store_token_authenticate(rd_store *st, const char *token, rd_store_user *out, rd_error *err)
{
    char hash[RD_TOKEN_HASH_LEN + 1];
    rd_token_hash(token ? token : "", hash); /* malformed ones take the same path */
    rd_status s = rd_store_token_hash_authenticate(st, hash, out, err);
    rd_token_wipe(hash, sizeof hash);
    return s;
}

rd_status rd_store_token_hash_authenticate(rd_store *st, const char *hash, rd_store_user *out, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = begin(st, 0, &tx, err);
    if (s == RD_OK)
        s = finish(st, tx, st->ops->token_user(tx, hash, out, err), err);
    if (s == RD_E_NOT_FOUND)
        return rd_error_set(err, RD_E_NOT_FOUND, "the token is not valid (unknown or revoked): ask an admin for a "
                                                 "new one (redduck server token create)");
    return s;
}

/* ---- projects and roles ------------------------------------------------------------------------------ */

void rd_store_projects_free(rd_store_project *projects, size_t n)
{
    for (size_t i = 0; projects && i < n; i++)
        free(projects[i].name);
    free(projects);
}

rd_status rd_store_project_create(rd_store *st, const char *actor, const char *name, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = start(st, RD_OK, 1, actor, NULL, name, &tx, err);
    if (s != RD_OK)
        return s;
    rd_store_project p = { 0 };
    s = st->ops->project_get(tx, name, &p, err);
    free(p.name);
    if (s == RD_OK)
        s = rd_error_set(err, RD_E_USAGE, "project %s exists", name);
    else if (s == RD_E_NOT_FOUND)
        s = st->ops->project_insert(tx, name, now_s(), err);
    return audit_finish(st, tx, s, actor, "project.create", name, NULL, err);
}

rd_status rd_store_project_get(rd_store *st, const char *name, rd_store_project *out, rd_error *err)
{
    READ_ONE(st, RD_OK, NULL, name, project_get(tx, name, out, err));
}

rd_status rd_store_project_list(rd_store *st, rd_store_project **out, size_t *n, rd_error *err)
{
    READ_ONE(st, RD_OK, NULL, NULL, project_list(tx, out, n, err));
}

rd_status rd_store_role_grant(rd_store *st, const char *actor, const char *user, const char *project, rd_role role,
                              int prod_access, rd_error *err)
{
    rd_status s = RD_OK;
    if (role != RD_ROLE_ADMIN && role != RD_ROLE_EDITOR && role != RD_ROLE_VIEWER)
        s = rd_error_set(err, RD_E_USAGE, "invalid role: use admin, editor or viewer");
    rd_store_tx *tx = NULL;
    if ((s = start(st, s, 1, actor, user, project, &tx, err)) != RD_OK)
        return s;
    s = st->ops->role_set(tx, user, project, role, prod_access ? 1 : 0, err);
    return audit_finish(st, tx, s, actor, "role.grant", project,
                        json_pack("{s:s, s:s, s:b}", "user", user, "role", rd_role_name(role), "prod_access",
                                  prod_access ? 1 : 0),
                        err);
}

rd_status rd_store_role_revoke(rd_store *st, const char *actor, const char *user, const char *project,
                               rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = start(st, RD_OK, 1, actor, user, project, &tx, err);
    if (s != RD_OK)
        return s;
    s = st->ops->role_delete(tx, user, project, err);
    return audit_finish(st, tx, s, actor, "role.revoke", project, json_pack("{s:s}", "user", user), err);
}

rd_status rd_store_role_get(rd_store *st, const char *user, const char *project, rd_role *role, int *prod_access,
                            rd_error *err)
{
    READ_ONE(st, RD_OK, user, project, role_get(tx, user, project, role, prod_access, err));
}

rd_status rd_store_role_effective(rd_store *st, const char *user, const char *project, rd_role *role,
                                  int *prod_access, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = start(st, RD_OK, 0, NULL, user, project, &tx, err);
    if (s != RD_OK)
        return s;
    rd_store_user u = { 0 };
    rd_store_project p = { 0 };
    rd_role r = RD_ROLE_NONE;
    int prod = 0;
    s = st->ops->user_get(tx, user, &u, err);
    if (s == RD_OK)
        s = st->ops->project_get(tx, project, &p, err);
    if (s == RD_OK && u.admin) {
        r = RD_ROLE_ADMIN;
        prod = 1;
    } else if (s == RD_OK) {
        s = st->ops->role_get(tx, user, project, &r, &prod, err);
        if (s == RD_E_NOT_FOUND) {
            r = RD_ROLE_NONE;
            prod = 0;
            s = RD_OK;
        }
    }
    rd_store_user_clear(&u);
    free(p.name);
    s = finish(st, tx, s, err);
    if (s == RD_OK) {
        *role = r;
        *prod_access = prod;
    }
    return s;
}

/* ---- deployments ------------------------------------------------------------------------------------- */

void rd_store_deployment_clear(rd_store_deployment *d)
{
    if (!d)
        return;
    free(d->created_by);
    free(d->archive_path);
    free(d->archive_sha256);
    memset(d, 0, sizeof *d);
}

void rd_store_deployments_free(rd_store_deployment *d, size_t n)
{
    FREE_EACH(d, n, rd_store_deployment_clear);
}

static int sha256_hex_valid(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

rd_status rd_store_deploy_env(rd_store *st, const char *actor, const char *project, rd_env environment,
                              const char *archive_path, const char *archive_sha256, int64_t *version,
                              rd_error *err)
{
    rd_status s = RD_OK;
    if (environment != RD_ENV_NONE && environment != RD_ENV_DEV && environment != RD_ENV_PROD)
        s = rd_error_set(err, RD_E_USAGE, "a deployment is made for dev or prod");
    if (s == RD_OK && (!archive_path || !*archive_path))
        s = rd_error_set(err, RD_E_USAGE, "no archive path given for the deployment of %s", project);
    if (s == RD_OK && !sha256_hex_valid(archive_sha256))
        s = rd_error_set(err, RD_E_USAGE, "the archive's SHA-256 must be 64 lowercase hex digits");
    rd_store_tx *tx = NULL;
    if ((s = start(st, s, 1, actor, NULL, project, &tx, err)) != RD_OK)
        return s;
    int64_t v = 0;
    s = st->ops->deploy_insert(tx, project, environment, actor, now_s(), archive_path, archive_sha256, &v, err);
    if (s == RD_OK)
        s = st->ops->deploy_activate(tx, project, v, err);
    json_t *detail = json_pack("{s:I, s:s}", "version", (json_int_t)v, "sha256", archive_sha256);
    if (detail && environment != RD_ENV_NONE)
        json_object_set_new(detail, "environment", json_string(rd_env_name(environment)));
    s = audit_finish(st, tx, s, actor, "deploy", project, detail, err);
    if (s == RD_OK && version)
        *version = v;
    return s;
}

rd_status rd_store_deploy(rd_store *st, const char *actor, const char *project, const char *archive_path,
                          const char *archive_sha256, int64_t *version, rd_error *err)
{
    return rd_store_deploy_env(st, actor, project, RD_ENV_NONE, archive_path, archive_sha256, version, err);
}

rd_status rd_store_deploy_activate(rd_store *st, const char *actor, const char *project, int64_t version,
                                   rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = start(st, RD_OK, 1, actor, NULL, project, &tx, err);
    if (s != RD_OK)
        return s;
    s = st->ops->deploy_activate(tx, project, version, err);
    return audit_finish(st, tx, s, actor, "deploy.activate", project,
                        json_pack("{s:I}", "version", (json_int_t)version), err);
}

rd_status rd_store_deploy_list(rd_store *st, const char *project, rd_store_deployment **out, size_t *n,
                               rd_error *err)
{
    READ_ONE(st, RD_OK, NULL, project, deploy_list(tx, project, out, n, err));
}

rd_status rd_store_deploy_active(rd_store *st, const char *project, rd_store_deployment *out, rd_error *err)
{
    READ_ONE(st, RD_OK, NULL, project, deploy_active(tx, project, out, err));
}

/* ---- variables --------------------------------------------------------------------------------------- */

void rd_store_variables_free(rd_store_variable *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].updated_by);
    }
    free(v);
}

void rd_store_sealed_free(rd_store_sealed *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i].project);
        free(s[i].name);
        free(s[i].blob);
    }
    free(s);
}

void rd_store_secret_free(char *value, size_t len)
{
    rd_keyring_wipe_free(value, len + 1);
}

void rd_store_values_free(rd_store_value *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        if (v[i].value)
            rd_store_secret_free(v[i].value, v[i].len);
    }
    free(v);
}

/* Seals a value for (project, env, name) with the active key. */
static rd_status seal(rd_store *st, const char *project, rd_env env, const char *name, const void *value,
                      size_t len, unsigned char **blob, size_t *blob_len, uint32_t *key_id, rd_error *err)
{
    rd_buf aad = RD_BUF_INIT;
    rd_status s = rd_keyring_variable_aad(&aad, project, rd_env_name(env), name) == RD_OK
                      ? rd_keyring_encrypt(st->kr, value, len, aad.data, aad.len, blob, blob_len, key_id, err)
                      : rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_buf_free(&aad);
    return s;
}

/* Opens a blob read from (project, env, name); errors name the variable. */
static rd_status unseal(rd_store *st, const char *project, rd_env environment, const char *name,
                        const unsigned char *blob, size_t blob_len, char **value, size_t *len, rd_error *err)
{
    rd_buf aad = RD_BUF_INIT;
    rd_status s = rd_keyring_variable_aad(&aad, project, rd_env_name(environment), name) == RD_OK
                      ? rd_keyring_decrypt(st->kr, blob, blob_len, aad.data, aad.len, value, len, err)
                      : rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_buf_free(&aad);
    if (s != RD_OK)
        rd_error_prefix(err, "variable %s of %s (%s): ", name, project, rd_env_name(environment));
    return s;
}

/* The checks of one value to set: its name, environment and size. */
static rd_status check_value(const char *name, rd_env env, const void *value, size_t len, rd_error *err)
{
    rd_status s = check_variable(name, env, err);
    if (s == RD_OK && len > RD_STORE_VALUE_MAX)
        s = rd_error_set(err, RD_E_USAGE, "the value of %s is %zu bytes; at most %d are kept", name, len,
                         RD_STORE_VALUE_MAX);
    if (s == RD_OK && !value && len > 0)
        s = rd_error_set(err, RD_E_USAGE, "no value given for %s", name);
    return s;
}

rd_status rd_store_variable_set(rd_store *st, const char *actor, const char *project, rd_env environment,
                                const char *name, const void *value, size_t len, rd_error *err)
{
    rd_status s = check_actor(actor, err);
    if (s == RD_OK)
        s = check_name("project", project, err);
    if (s == RD_OK)
        s = check_value(name, environment, value, len, err);
    if (s == RD_OK)
        s = need_keyring(st, err);
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    uint32_t key_id = 0;
    if (s == RD_OK)
        s = seal(st, project, environment, name, value, len, &blob, &blob_len, &key_id, err);
    rd_store_tx *tx = NULL;
    if (s == RD_OK)
        s = begin(st, 1, &tx, err);
    if (s == RD_OK) {
        s = st->ops->variable_put(tx, project, environment, name, key_id, blob, blob_len, actor, now_s(), err);
        s = audit_finish(st, tx, s, actor, "variable.set", project,
                         json_pack("{s:s, s:s}", "environment", rd_env_name(environment), "name", name), err);
    }
    free(blob);
    return s;
}

rd_status rd_store_variable_get(rd_store *st, const char *project, rd_env environment, const char *name,
                                char **value, size_t *len, rd_error *err)
{
    rd_status s = check_variable(name, environment, err);
    if (s == RD_OK)
        s = need_keyring(st, err);
    rd_store_tx *tx = NULL;
    if ((s = start(st, s, 0, NULL, NULL, project, &tx, err)) != RD_OK)
        return s;
    unsigned char *blob = NULL;
    size_t blob_len = 0;
    s = finish(st, tx, st->ops->variable_get(tx, project, environment, name, &blob, &blob_len, err), err);
    if (s == RD_OK)
        s = unseal(st, project, environment, name, blob, blob_len, value, len, err);
    free(blob);
    return s;
}

rd_status rd_store_variable_delete(rd_store *st, const char *actor, const char *project, rd_env environment,
                                   const char *name, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = start(st, check_variable(name, environment, err), 1, actor, NULL, project, &tx, err);
    if (s != RD_OK)
        return s;
    s = st->ops->variable_delete(tx, project, environment, name, err);
    return audit_finish(st, tx, s, actor, "variable.delete", project,
                        json_pack("{s:s, s:s}", "environment", rd_env_name(environment), "name", name), err);
}

static rd_status check_env_or_none(rd_env environment, rd_error *err)
{
    if (environment != RD_ENV_NONE && environment != RD_ENV_DEV && environment != RD_ENV_PROD &&
        environment != RD_ENV_SHARED)
        return rd_error_set(err, RD_E_USAGE, "invalid environment: use dev, prod or shared");
    return RD_OK;
}

rd_status rd_store_variable_list(rd_store *st, const char *project, rd_env environment, rd_store_variable **out,
                                 size_t *n, rd_error *err)
{
    READ_ONE(st, check_env_or_none(environment, err), NULL, project,
             variable_list(tx, project, environment, out, n, err));
}

rd_status rd_store_variable_values(rd_store *st, const char *project, rd_env environment, int with_shared,
                                   rd_store_value **out, size_t *n_out, rd_error *err)
{
    rd_status s = check_env_or_none(environment, err);
    if (s == RD_OK && environment == RD_ENV_NONE)
        s = rd_error_set(err, RD_E_USAGE, "invalid environment: use dev, prod or shared");
    if (s == RD_OK)
        s = need_keyring(st, err);
    rd_store_tx *tx = NULL;
    if ((s = start(st, s, 0, NULL, NULL, project, &tx, err)) != RD_OK)
        return s;
    rd_store_sealed *rows = NULL;
    size_t n = 0;
    s = finish(st, tx,
               st->ops->variable_values(tx, project, environment, with_shared && environment != RD_ENV_SHARED, &rows,
                                        &n, err),
               err);
    rd_store_value *vals = NULL;
    if (s == RD_OK && n && !(vals = calloc(n, sizeof *vals)))
        s = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    /* opened after the transaction: the rows are one snapshot, the keyring needs no lock of the store */
    for (size_t i = 0; s == RD_OK && i < n; i++) {
        vals[i].environment = rows[i].environment;
        vals[i].name = rows[i].name;
        rows[i].name = NULL;
        s = unseal(st, project, vals[i].environment, vals[i].name, rows[i].blob, rows[i].blob_len, &vals[i].value,
                   &vals[i].len, err);
    }
    rd_store_sealed_free(rows, n);
    if (s != RD_OK) {
        rd_store_values_free(vals, n);
        return s;
    }
    *out = vals;
    *n_out = n;
    return RD_OK;
}

/* The sealed form of one value of a batch. */
typedef struct sealed_item {
    unsigned char *blob;
    size_t len;
    uint32_t key_id;
} sealed_item;

static void sealed_items_free(sealed_item *b, size_t n)
{
    for (size_t i = 0; b && i < n; i++)
        free(b[i].blob);
    free(b);
}

/* Checks a batch: names, sizes, a name both set and unset. */
static rd_status check_patch(rd_env env, const rd_store_set_item *set, size_t nset, const char *const *unset,
                             size_t nunset, rd_error *err)
{
    if ((nset && !set) || (nunset && !unset))
        return rd_error_set(err, RD_E_USAGE, "no variables given");
    rd_status s = RD_OK;
    for (size_t i = 0; s == RD_OK && i < nset; i++)
        s = check_value(set[i].name, env, set[i].value, set[i].len, err);
    for (size_t i = 0; s == RD_OK && i < nunset; i++) {
        s = check_variable(unset[i], env, err);
        for (size_t j = 0; s == RD_OK && j < nset; j++)
            if (strcmp(set[j].name, unset[i]) == 0)
                s = rd_error_set(err, RD_E_USAGE, "%s is both set and unset", unset[i]);
    }
    return s;
}

rd_status rd_store_variable_patch(rd_store *st, const char *actor, const char *project, rd_env environment,
                                  const rd_store_set_item *set, size_t nset, const char *const *unset,
                                  size_t nunset, int *unset_done, rd_error *err)
{
    rd_status s = check_patch(environment, set, nset, unset, nunset, err);
    if (s == RD_OK && nset)
        s = need_keyring(st, err);
    sealed_item *sealed = NULL;
    int *done = NULL;
    if (s == RD_OK && ((nset && !(sealed = calloc(nset, sizeof *sealed))) ||
                       (nunset && !(done = calloc(nunset, sizeof *done)))))
        s = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    for (size_t i = 0; s == RD_OK && i < nset; i++) /* sealed before the write lock is taken */
        s = seal(st, project, environment, set[i].name, set[i].value, set[i].len, &sealed[i].blob, &sealed[i].len,
                 &sealed[i].key_id, err);
    rd_store_tx *tx = NULL;
    if ((s = start(st, s, 1, actor, NULL, project, &tx, err)) != RD_OK) {
        sealed_items_free(sealed, nset);
        free(done);
        return s;
    }
    json_t *names_set = json_array(), *names_unset = json_array();
    int64_t now = now_s();
    for (size_t i = 0; s == RD_OK && i < nset; i++) {
        s = st->ops->variable_put(tx, project, environment, set[i].name, sealed[i].key_id, sealed[i].blob,
                                  sealed[i].len, actor, now, err);
        json_array_append_new(names_set, json_string(set[i].name));
    }
    for (size_t i = 0; s == RD_OK && i < nunset; i++) {
        s = st->ops->variable_delete(tx, project, environment, unset[i], err);
        if (s == RD_E_NOT_FOUND) { /* absent already: nothing to do */
            s = RD_OK;
        } else if (s == RD_OK) {
            done[i] = 1;
            json_array_append_new(names_unset, json_string(unset[i]));
        }
    }
    sealed_items_free(sealed, nset);
    s = audit_finish(st, tx, s, actor, "variable.patch", project,
                     json_pack("{s:s, s:o, s:o}", "environment", rd_env_name(environment), "set", names_set, "unset",
                               names_unset),
                     err);
    if (s == RD_OK && unset_done && nunset)
        memcpy(unset_done, done, nunset * sizeof *done);
    free(done);
    return s;
}

rd_status rd_store_rotate(rd_store *st, const char *actor, size_t *count, rd_error *err)
{
    rd_status s = need_keyring(st, err);
    rd_store_tx *tx = NULL;
    if ((s = start(st, s, 1, actor, NULL, NULL, &tx, err)) != RD_OK)
        return s;
    uint32_t active = rd_keyring_active_id(st->kr);
    rd_store_sealed *rows = NULL;
    size_t n = 0, done = 0;
    s = st->ops->variable_sealed_other(tx, active, &rows, &n, err);
    for (size_t i = 0; s == RD_OK && i < n; i++) {
        char *pt = NULL;
        size_t ptlen = 0;
        unsigned char *blob = NULL;
        size_t blob_len = 0;
        uint32_t key_id = 0;
        s = unseal(st, rows[i].project, rows[i].environment, rows[i].name, rows[i].blob, rows[i].blob_len, &pt,
                   &ptlen, err);
        if (s == RD_OK)
            s = seal(st, rows[i].project, rows[i].environment, rows[i].name, pt, ptlen, &blob, &blob_len, &key_id,
                     err);
        if (pt)
            rd_store_secret_free(pt, ptlen);
        if (s == RD_OK)
            s = st->ops->variable_reseal(tx, &rows[i], key_id, blob, blob_len, err);
        free(blob);
        if (s == RD_OK)
            done++;
    }
    rd_store_sealed_free(rows, n);
    /* the check value follows the active key too, so an older keyring file is told apart at start */
    if (s == RD_OK) {
        unsigned char *blob = NULL;
        size_t blob_len = 0;
        s = rd_keyring_encrypt(st->kr, KEYRING_CHECK_TEXT, strlen(KEYRING_CHECK_TEXT), KEYRING_CHECK_AAD,
                               strlen(KEYRING_CHECK_AAD), &blob, &blob_len, NULL, err);
        if (s == RD_OK)
            s = st->ops->meta_set(tx, KEYRING_CHECK_KEY, blob, blob_len, err);
        free(blob);
    }
    s = audit_finish(st, tx, s, actor, "keyring.rotate", NULL,
                     json_pack("{s:I, s:I}", "key_id", (json_int_t)active, "variables", (json_int_t)done), err);
    if (s == RD_OK && count)
        *count = done;
    return s;
}

/* ---- audit ------------------------------------------------------------------------------------------- */

void rd_store_audit_free(rd_store_audit_entry *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++) {
        free(e[i].actor);
        free(e[i].action);
        free(e[i].project);
        free(e[i].detail_json);
    }
    free(e);
}

rd_status rd_store_audit_append(rd_store *st, const char *actor, const char *action, const char *project,
                                const char *detail_json, rd_error *err)
{
    rd_status s = RD_OK;
    if (!action || !*action || strlen(action) > 64)
        s = rd_error_set(err, RD_E_USAGE, "no audit action given");
    json_t *detail = NULL;
    if (s == RD_OK && detail_json) {
        detail = json_loads(detail_json, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(detail))
            s = rd_error_set(err, RD_E_USAGE, "the audit detail must be a JSON object");
    }
    rd_store_tx *tx = NULL;
    if ((s = start(st, s, 1, actor, NULL, project, &tx, err)) != RD_OK) {
        json_decref(detail);
        return s;
    }
    return finish(st, tx, audit(st, tx, actor, action, project, detail, err), err);
}

rd_status rd_store_audit_list(rd_store *st, const char *project, size_t limit, rd_store_audit_entry **out,
                              size_t *n, rd_error *err)
{
    READ_ONE(st, RD_OK, NULL, project, audit_list(tx, project, limit ? limit : 100, out, n, err));
}

/* ---- runs, their log lines, schedule state and snapshots --------------------------------------------- */

#define ELLIPSIS "\xE2\x80\xA6" /* U+2026 */
#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */
#define SNAPSHOT_PATH_MAX 4096
#define RUN_ABANDONED "the server stopped during the run"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* 1 when s is 1..max bytes of valid UTF-8 with no control character and (without allow_slash) no '/'. */
static int text_valid(const char *s, size_t max, int allow_slash)
{
    if (!s || !*s)
        return 0;
    size_t n = strlen(s);
    if (n > max)
        return 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        size_t len = rd_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (len == 0 || is_control(cp) || (cp == '/' && !allow_slash))
            return 0;
        i += len;
    }
    return 1;
}

int rd_store_source_name_valid(const char *s)
{
    return text_valid(s, RD_STORE_SOURCE_NAME_MAX, 0);
}

/* in as valid UTF-8 of at most max bytes (max > 3): invalid bytes become U+FFFD, control characters spaces
 * (keeping tabs, and newlines with keep_newlines), and a longer text is cut at a character boundary and ends
 * with "…". *out is malloc'd. */
static rd_status text_clean(const char *in, size_t max, int keep_newlines, char **out, rd_error *err)
{
    rd_buf b = RD_BUF_INIT;
    size_t n = strlen(in), keep = max - (sizeof ELLIPSIS - 1); /* the bytes kept when it must be cut */
    size_t cut = 0; /* b.len at the last character boundary within keep */
    int over = 0;
    for (size_t i = 0; i < n && !over;) {
        uint32_t cp = 0;
        size_t len = rd_utf8_next((const unsigned char *)in + i, n - i, &cp);
        if (b.len <= keep)
            cut = b.len;
        if (len == 0) {
            rd_buf_puts(&b, REPLACEMENT);
            len = 1;
        } else if (is_control(cp) && !(cp == '\t' || (cp == '\n' && keep_newlines))) {
            rd_buf_putc(&b, ' ');
        } else {
            rd_buf_append(&b, in + i, len);
        }
        i += len;
        over = b.len > max;
    }
    if (b.len <= keep)
        cut = b.len;
    if (over || b.len > max) {
        b.len = cut;
        rd_buf_puts(&b, ELLIPSIS);
    }
    char *text = rd_buf_failed(&b) ? NULL : rd_buf_detach(&b);
    rd_buf_free(&b);
    if (!text)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    *out = text;
    return RD_OK;
}

static const char *const run_state_names[] = { "queued", "running", "success", "failed", "skipped", "cancelled" };
static const char *const run_trigger_names[] = { "schedule", "manual", "catch-up" };
#define NAMES_N(a) (sizeof(a) / sizeof((a)[0]))

const char *rd_run_state_name(rd_run_state s)
{
    return (unsigned)s < NAMES_N(run_state_names) ? run_state_names[s] : "unknown";
}

int rd_run_state_parse(const char *s, rd_run_state *out)
{
    for (size_t i = 0; s && i < NAMES_N(run_state_names); i++)
        if (strcmp(s, run_state_names[i]) == 0) {
            *out = (rd_run_state)i;
            return 0;
        }
    *out = RD_RUN_QUEUED;
    return -1;
}

const char *rd_run_trigger_name(rd_run_trigger t)
{
    return (unsigned)t < NAMES_N(run_trigger_names) ? run_trigger_names[t] : "unknown";
}

static int run_ended(rd_run_state s)
{
    return s == RD_RUN_SUCCESS || s == RD_RUN_FAILED || s == RD_RUN_SKIPPED || s == RD_RUN_CANCELLED;
}

void rd_store_run_clear(rd_store_run *r)
{
    if (!r)
        return;
    free(r->project);
    free(r->source);
    free(r->table_name);
    free(r->triggered_by);
    free(r->error);
    memset(r, 0, sizeof *r);
}

void rd_store_runs_free(rd_store_run *r, size_t n)
{
    FREE_EACH(r, n, rd_store_run_clear);
}

void rd_store_log_lines_free(rd_store_log_line *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        free(l[i].line);
    free(l);
}

void rd_store_snapshot_clear(rd_store_snapshot *s)
{
    if (!s)
        return;
    free(s->project);
    free(s->path);
    free(s->sha256);
    free(s->tables_json);
    memset(s, 0, sizeof *s);
}

void rd_store_snapshots_free(rd_store_snapshot *s, size_t n)
{
    FREE_EACH(s, n, rd_store_snapshot_clear);
}

static rd_status check_source(const char *source, rd_error *err)
{
    if (rd_store_source_name_valid(source))
        return RD_OK;
    return rd_error_set(err, RD_E_USAGE,
                        "invalid source name: use 1 to %d bytes of UTF-8 with no '/' and no control character",
                        RD_STORE_SOURCE_NAME_MAX);
}

static rd_status check_run_id(int64_t id, rd_error *err)
{
    if (id > 0)
        return RD_OK;
    return rd_error_set(err, RD_E_USAGE, "invalid run id %lld: run ids are positive", (long long)id);
}

/* The checks of a run call (pre; with with_project, project's name), then its transaction (no actor: these
 * rows carry no audit). */
static rd_status run_begin(rd_store *st, rd_status pre, int write, int with_project, const char *project,
                           rd_store_tx **tx, rd_error *err)
{
    if (pre == RD_OK && with_project)
        pre = check_name("project", project, err);
    return pre == RD_OK ? begin(st, write, tx, err) : pre;
}

/* The figures of r as they are written: state checked, finished_at of an ended run filled in, the error
 * cleaned into *error_out (NULL when r has none; the caller frees it). */
static rd_status run_prepare(const rd_store_run *r, rd_store_run *w, char **error_out, rd_error *err)
{
    if ((unsigned)r->state >= NAMES_N(run_state_names))
        return rd_error_set(err, RD_E_USAGE, "invalid run state %d", (int)r->state);
    if (r->attempts < 0)
        return rd_error_set(err, RD_E_USAGE, "invalid attempt count %d", r->attempts);
    *w = *r;
    if (run_ended(w->state) && w->finished_at == 0)
        w->finished_at = now_ms();
    w->error = NULL;
    *error_out = NULL;
    if (r->error) {
        rd_status s = text_clean(r->error, RD_STORE_RUN_ERROR_MAX, 1, error_out, err);
        if (s != RD_OK)
            return s;
        w->error = *error_out;
    }
    return RD_OK;
}

rd_status rd_store_run_insert(rd_store *st, const rd_store_run *r, int64_t *id, rd_error *err)
{
    if (!r)
        return rd_error_set(err, RD_E_USAGE, "no run given");
    rd_status s = check_source(r->source, err);
    if (s == RD_OK && !text_valid(r->table_name, RD_STORE_SOURCE_NAME_MAX, 1))
        s = rd_error_set(err, RD_E_USAGE,
                         "invalid table name for the run of a source: use 1 to %d bytes of UTF-8 with no control "
                         "character",
                         RD_STORE_SOURCE_NAME_MAX);
    if (s == RD_OK && !text_valid(r->triggered_by, 256, 1))
        s = rd_error_set(err, RD_E_USAGE, "no trigger's author given for the run (a user or \"scheduler\")");
    if (s == RD_OK && (unsigned)r->trigger >= NAMES_N(run_trigger_names))
        s = rd_error_set(err, RD_E_USAGE, "invalid run trigger %d", (int)r->trigger);
    rd_store_run w;
    char *error = NULL;
    int64_t newid = 0;
    if (s == RD_OK)
        s = run_prepare(r, &w, &error, err);
    if (s == RD_OK && w.queued_at == 0)
        w.queued_at = now_ms();
    rd_store_tx *tx = NULL;
    if ((s = run_begin(st, s, 1, 1, r->project, &tx, err)) == RD_OK)
        s = finish(st, tx, st->ops->run_insert(tx, &w, &newid, err), err);
    free(error);
    if (s == RD_OK && id)
        *id = newid;
    return s;
}

rd_status rd_store_run_update(rd_store *st, const rd_store_run *r, rd_error *err)
{
    if (!r)
        return rd_error_set(err, RD_E_USAGE, "no run given");
    rd_status s = check_run_id(r->id, err);
    rd_store_run w;
    char *error = NULL;
    if (s == RD_OK)
        s = run_prepare(r, &w, &error, err);
    rd_store_tx *tx = NULL;
    if ((s = run_begin(st, s, 1, 0, NULL, &tx, err)) == RD_OK)
        s = finish(st, tx, st->ops->run_update(tx, &w, err), err);
    free(error);
    return s;
}

rd_status rd_store_run_get(rd_store *st, int64_t id, rd_store_run *out, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = run_begin(st, check_run_id(id, err), 0, 0, NULL, &tx, err);
    return s == RD_OK ? finish(st, tx, st->ops->run_get(tx, id, out, err), err) : s;
}

/* A limit as the header says: 0 gives dflt, more than max gives max. */
static size_t clamp_limit(size_t limit, size_t dflt, size_t max)
{
    return limit == 0 ? dflt : limit > max ? max : limit;
}

rd_status rd_store_run_list(rd_store *st, const char *project, const char *source, int64_t since_ms,
                            size_t limit, rd_store_run **out, size_t *n, rd_error *err)
{
    rd_status s = source ? check_source(source, err) : RD_OK;
    rd_store_tx *tx = NULL;
    if ((s = run_begin(st, s, 0, 1, project, &tx, err)) != RD_OK)
        return s;
    return finish(st, tx,
                  st->ops->run_list(tx, project, source, since_ms, clamp_limit(limit, 100, 1000), out, n, err), err);
}

rd_status rd_store_run_latest(rd_store *st, const char *project, rd_store_run **out, size_t *n, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = run_begin(st, RD_OK, 0, 1, project, &tx, err);
    return s == RD_OK ? finish(st, tx, st->ops->run_latest(tx, project, out, n, err), err) : s;
}

rd_status rd_store_run_abandon(rd_store *st, const char *error, size_t *count, rd_error *err)
{
    char *text = NULL;
    rd_status s = text_clean(error ? error : RUN_ABANDONED, RD_STORE_RUN_ERROR_MAX, 1, &text, err);
    rd_store_tx *tx = NULL;
    size_t done = 0;
    if ((s = run_begin(st, s, 1, 0, NULL, &tx, err)) == RD_OK)
        s = finish(st, tx, st->ops->run_abandon(tx, text, now_ms(), &done, err), err);
    free(text);
    if (s == RD_OK && count)
        *count = done;
    return s;
}

#define PRUNE_BATCH 100

rd_status rd_store_run_prune(rd_store *st, int64_t before_ms, size_t *count, rd_error *err)
{
    size_t total = 0, done = PRUNE_BATCH;
    rd_status s = RD_OK;
    while (s == RD_OK && done == PRUNE_BATCH) {
        rd_store_tx *tx = NULL;
        done = 0;
        if ((s = begin(st, 1, &tx, err)) == RD_OK)
            s = finish(st, tx, st->ops->run_prune(tx, before_ms, PRUNE_BATCH, &done, err), err);
        if (s == RD_OK)
            total += done;
    }
    if (count)
        *count = total; /* what went before a failure is gone too */
    return s;
}

rd_status rd_store_run_log_append(rd_store *st, int64_t run_id, const char *line, rd_error *err)
{
    rd_status s = check_run_id(run_id, err);
    if (s == RD_OK && !line)
        s = rd_error_set(err, RD_E_USAGE, "no log line given for run %lld", (long long)run_id);
    char *text = NULL;
    if (s == RD_OK)
        s = text_clean(line, RD_STORE_LOG_LINE_MAX, 0, &text, err);
    rd_store_tx *tx = NULL;
    if ((s = run_begin(st, s, 1, 0, NULL, &tx, err)) == RD_OK)
        s = finish(st, tx,
                   st->ops->log_append(tx, run_id, now_ms(), text, RD_STORE_RUN_LOG_LINES_MAX, RD_STORE_LOG_TRUNCATED,
                                       err),
                   err);
    free(text);
    return s;
}

rd_status rd_store_run_log_list(rd_store *st, int64_t run_id, int64_t after_seq, size_t limit,
                                rd_store_log_line **out, size_t *n, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = run_begin(st, check_run_id(run_id, err), 0, 0, NULL, &tx, err);
    if (s != RD_OK)
        return s;
    return finish(st, tx,
                  st->ops->log_list(tx, run_id, after_seq < 0 ? 0 : after_seq,
                                    clamp_limit(limit, 1000, RD_STORE_RUN_LOG_LINES_MAX), out, n, err),
                  err);
}

rd_status rd_store_schedule_get(rd_store *st, const char *project, const char *source, int64_t *last_slot_ms,
                                rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = run_begin(st, check_source(source, err), 0, 1, project, &tx, err);
    return s == RD_OK ? finish(st, tx, st->ops->schedule_get(tx, project, source, last_slot_ms, err), err) : s;
}

rd_status rd_store_schedule_set(rd_store *st, const char *project, const char *source, int64_t last_slot_ms,
                                rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = run_begin(st, check_source(source, err), 1, 1, project, &tx, err);
    return s == RD_OK ? finish(st, tx, st->ops->schedule_put(tx, project, source, last_slot_ms, err), err) : s;
}

/* tables_json: a JSON array of at most RD_STORE_TABLES_JSON_MAX bytes. */
static rd_status check_tables_json(const char *text, rd_error *err)
{
    if (!text || strlen(text) > RD_STORE_TABLES_JSON_MAX)
        return rd_error_set(err, RD_E_USAGE, "a snapshot's tables must be a JSON array of at most %d bytes",
                            RD_STORE_TABLES_JSON_MAX);
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    int array = json_is_array(j);
    json_decref(j);
    if (!array)
        return rd_error_set(err, RD_E_USAGE, "a snapshot's tables must be a JSON array ([{\"name\":...,\"rows\":...}])");
    return RD_OK;
}

rd_status rd_store_snapshot_publish(rd_store *st, const rd_store_snapshot *s_in, int64_t *id, rd_error *err)
{
    if (!s_in)
        return rd_error_set(err, RD_E_USAGE, "no snapshot given");
    rd_status s = RD_OK;
    /* absolute as the server makes them; a relative one (a data dir given relative) is kept, not refused
     * after the whole refresh */
    if (!text_valid(s_in->path, SNAPSHOT_PATH_MAX, 1))
        s = rd_error_set(err, RD_E_USAGE,
                         "a snapshot's path must be 1 to %d bytes of UTF-8 with no control character",
                         SNAPSHOT_PATH_MAX);
    if (s == RD_OK && !sha256_hex_valid(s_in->sha256))
        s = rd_error_set(err, RD_E_USAGE, "a snapshot's SHA-256 must be 64 lowercase hex digits");
    if (s == RD_OK && s_in->run_id < 0)
        s = rd_error_set(err, RD_E_USAGE, "invalid run id %lld for the snapshot", (long long)s_in->run_id);
    if (s == RD_OK)
        s = check_tables_json(s_in->tables_json, err);
    rd_store_snapshot w = *s_in;
    if (w.created_at_ms == 0)
        w.created_at_ms = now_ms();
    int64_t newid = 0;
    rd_store_tx *tx = NULL;
    if ((s = run_begin(st, s, 1, 1, s_in->project, &tx, err)) == RD_OK)
        s = finish(st, tx, st->ops->snapshot_insert(tx, &w, &newid, err), err);
    if (s == RD_OK && id)
        *id = newid;
    return s;
}

rd_status rd_store_snapshot_list(rd_store *st, const char *project, size_t limit, rd_store_snapshot **out,
                                 size_t *n, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = run_begin(st, RD_OK, 0, 1, project, &tx, err);
    if (s != RD_OK)
        return s;
    return finish(st, tx, st->ops->snapshot_list(tx, project, clamp_limit(limit, 100, 1000), out, n, err), err);
}

rd_status rd_store_snapshot_delete(rd_store *st, const char *project, int64_t id, rd_error *err)
{
    rd_store_tx *tx = NULL;
    rd_status s = run_begin(st, RD_OK, 1, 1, project, &tx, err);
    return s == RD_OK ? finish(st, tx, st->ops->snapshot_delete(tx, project, id, err), err) : s;
}

rd_status rd_store_snapshot_current(rd_store *st, const char *project, rd_store_snapshot *out, rd_error *err)
{
    rd_store_snapshot *v = NULL;
    size_t n = 0;
    rd_status s = rd_store_snapshot_list(st, project, 1, &v, &n, err);
    if (s == RD_OK && n == 0)
        s = rd_error_set(err, RD_E_NOT_FOUND, "project %s has no snapshot yet: it is published after a successful "
                                              "refresh",
                         project);
    if (s == RD_OK) {
        *out = v[0];
        memset(&v[0], 0, sizeof v[0]);
    }
    rd_store_snapshots_free(v, n);
    return s;
}
