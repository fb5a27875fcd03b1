/* test_store.c — the store on SQLite: migrations once across reopenings, private files, the keyring check,
 * tokens, versions under concurrent deploys, 50 threads setting and reading variables, a planted secret
 * never in store.db / -wal / -shm, tampered or moved blobs refused, rotation, names refused, roles, audit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"
#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "server/store.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYplantedSECRET"
#define SECRET2 "second-planted-VALUE-9f8e7d6c5b4a"
#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct fixture {
    char dir[256];
    char data[300];
    char keyring[300];
    rd_keyring *kr;
    rd_store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (rd_test_mkdtemp(f->dir, sizeof f->dir, "rd-store") != 0)
        return -1;
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    snprintf(f->keyring, sizeof f->keyring, "%s/keyring", f->dir);
    rd_error err;
    if (rd_keyring_open(f->keyring, RD_KEYRING_CREATE, &f->kr, NULL, &err) != RD_OK)
        return -1;
    if (rd_store_open_sqlite(f->data, f->kr, NULL, &f->st, &err) != RD_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rd_store_close(f->st);
    rd_keyring_free(f->kr);
    rd_test_rm_tree(f->dir);
    free(f);
    return 0;
}

static void ok(rd_status s, const rd_error *err)
{
    if (s != RD_OK)
        fail_msg("%s: %s", rd_status_str(s), err->message);
}

static sqlite3 *raw_db(const fixture *f)
{
    char path[400];
    snprintf(path, sizeof path, "%s/store.db", f->data);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

static void test_migrations_once_and_files_private(void **state)
{
    fixture *f = *state;
    rd_error err;
    ok(rd_store_project_create(f->st, "tester", "p1", &err), &err);
    const char *files[] = { "store.db", "store.db-wal", "store.db-shm" };
    for (size_t i = 0; i < 3; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s", f->data, files[i]);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
    }
    struct stat sb;
    assert_int_equal(stat(f->data, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);

    for (int round = 0; round < 2; round++) {
        rd_store_close(f->st);
        f->st = NULL;
        ok(rd_store_open_sqlite(f->data, f->kr, NULL, &f->st, &err), &err);
    }
    rd_store_project p = { 0 };
    ok(rd_store_project_get(f->st, "p1", &p, &err), &err);
    assert_string_equal(p.name, "p1");
    free(p.name);

    sqlite3 *db = raw_db(f);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM schema_version"), 3);
    assert_int_equal(raw_int(db, "SELECT max(version) FROM schema_version"), 3);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('users',"
                                 " 'tokens', 'projects', 'memberships', 'deployments', 'variables', 'audit')"),
                     7);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);

    /* a file from a newer redduck is refused, not migrated down */
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99, 0)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    rd_store_close(f->st);
    f->st = NULL;
    rd_error_clear(&err);
    assert_int_equal(rd_store_open_sqlite(f->data, f->kr, NULL, &f->st, &err), RD_E_CONFIG);
    assert_null(f->st);
    assert_non_null(strstr(err.message, "newer"));
    db = raw_db(f);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM schema_version WHERE version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* a store.db others may read is refused */
    char path[400];
    snprintf(path, sizeof path, "%s/store.db", f->data);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(rd_store_open_sqlite(f->data, f->kr, NULL, &f->st, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);
    ok(rd_store_open_sqlite(f->data, f->kr, NULL, &f->st, &err), &err);
}

static void test_other_keyring_refused_at_open(void **state)
{
    fixture *f = *state;
    rd_error err;
    char other[400];
    snprintf(other, sizeof other, "%s/other-keyring", f->dir);
    rd_keyring *kr2 = NULL;
    ok(rd_keyring_open(other, RD_KEYRING_CREATE, &kr2, NULL, &err), &err);
    rd_store *st2 = NULL;
    rd_error_clear(&err);
    assert_int_equal(rd_store_open_sqlite(f->data, kr2, NULL, &st2, &err), RD_E_CONFIG);
    assert_null(st2);
    assert_non_null(strstr(err.message, other));
    assert_non_null(strstr(err.message, "integrity check"));
    rd_keyring_free(kr2);

    /* without a keyring: users work, variables say what is missing */
    ok(rd_store_open_sqlite(f->data, NULL, NULL, &st2, &err), &err);
    ok(rd_store_user_add(st2, "local", "bob", 0, &err), &err);
    ok(rd_store_project_create(st2, "local", "p", &err), &err);
    assert_int_equal(rd_store_variable_set(st2, "local", "p", RD_ENV_DEV, "K", "v", 1, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "--keyring"));
    rd_store_close(st2);
}

static void test_tokens(void **state)
{
    fixture *f = *state;
    rd_error err;
    char admin_tok[RD_TOKEN_LEN + 1] = "", again[RD_TOKEN_LEN + 1] = "untouched";
    int created = -1;
    ok(rd_store_bootstrap(f->st, admin_tok, &created, &err), &err);
    assert_int_equal(created, 1);
    assert_true(rd_token_well_formed(admin_tok));
    ok(rd_store_bootstrap(f->st, again, &created, &err), &err);
    assert_int_equal(created, 0);
    assert_string_equal(again, "untouched");

    rd_store_user u = { 0 };
    ok(rd_store_token_authenticate(f->st, admin_tok, &u, &err), &err);
    assert_string_equal(u.name, "admin");
    assert_int_equal(u.admin, 1);
    rd_store_user_clear(&u);

    ok(rd_store_user_add(f->st, "admin", "alice", 0, &err), &err);
    assert_int_equal(rd_store_user_add(f->st, "admin", "alice", 0, &err), RD_E_USAGE);
    char t1[RD_TOKEN_LEN + 1], t2[RD_TOKEN_LEN + 1];
    ok(rd_store_token_create(f->st, "admin", "alice", "ci", t1, &err), &err);
    assert_int_equal(rd_store_token_create(f->st, "admin", "alice", "ci", t2, &err), RD_E_USAGE);
    assert_int_equal(rd_store_token_create(f->st, "admin", "nobody", "ci", t2, &err), RD_E_NOT_FOUND);
    ok(rd_store_token_authenticate(f->st, t1, &u, &err), &err);
    assert_string_equal(u.name, "alice");
    assert_int_equal(u.admin, 0);
    rd_store_user_clear(&u);

    /* only the hash is kept */
    sqlite3 *db = raw_db(f);
    char hash[RD_TOKEN_HASH_LEN + 1];
    rd_token_hash(t1, hash);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM tokens WHERE hash = ?1", -1, &stmt, NULL), SQLITE_OK);
    sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), 1);
    sqlite3_finalize(stmt);
    sqlite3_close(db);

    /* revoked, unknown, malformed */
    ok(rd_store_token_revoke(f->st, "admin", "alice", "ci", &err), &err);
    rd_error_clear(&err);
    assert_int_equal(rd_store_token_authenticate(f->st, t1, &u, &err), RD_E_NOT_FOUND);
    assert_null(strstr(err.message, t1 + 4));
    assert_int_equal(rd_store_token_revoke(f->st, "admin", "alice", "ci", &err), RD_E_NOT_FOUND);
    char unknown[RD_TOKEN_LEN + 1];
    ok(rd_token_new(unknown, &err), &err);
    assert_int_equal(rd_store_token_authenticate(f->st, unknown, &u, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_token_authenticate(f->st, "rdk_short", &u, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_token_authenticate(f->st, NULL, &u, &err), RD_E_NOT_FOUND);

    /* the name is free again after a revoke; removing the user ends their tokens */
    ok(rd_store_token_create(f->st, "admin", "alice", "ci", t2, &err), &err);
    ok(rd_store_token_authenticate(f->st, t2, &u, &err), &err);
    rd_store_user_clear(&u);
    ok(rd_store_user_rm(f->st, "admin", "alice", &err), &err);
    assert_int_equal(rd_store_token_authenticate(f->st, t2, &u, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_user_rm(f->st, "admin", "alice", &err), RD_E_NOT_FOUND);

    /* the last server admin stays */
    assert_int_equal(rd_store_user_rm(f->st, "admin", "admin", &err), RD_E_USAGE);
    ok(rd_store_user_add(f->st, "admin", "root2", 1, &err), &err);
    ok(rd_store_user_rm(f->st, "root2", "admin", &err), &err);
    assert_int_equal(rd_store_token_authenticate(f->st, admin_tok, &u, &err), RD_E_NOT_FOUND);
    rd_store_user *users = NULL;
    size_t n = 0;
    ok(rd_store_user_list(f->st, &users, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_string_equal(users[0].name, "root2");
    rd_store_users_free(users, n);
}

typedef struct deploy_arg {
    rd_store *st;
    int64_t versions[10];
    rd_status status;
} deploy_arg;

static void *deploy_thread(void *p)
{
    deploy_arg *a = p;
    a->status = RD_OK;
    for (int i = 0; i < 10 && a->status == RD_OK; i++) {
        rd_error err;
        a->status = rd_store_deploy(a->st, "ci", "web", "archives/x.tar.gz", SHA, &a->versions[i], &err);
    }
    return NULL;
}

static void test_versions_grow_under_concurrent_deploys(void **state)
{
    fixture *f = *state;
    rd_error err;
    ok(rd_store_project_create(f->st, "admin", "web", &err), &err);
    rd_store *second = NULL; /* as another process would: its own connections, no shared lock */
    ok(rd_store_open_sqlite(f->data, f->kr, NULL, &second, &err), &err);
    enum { THREADS = 4 };
    pthread_t th[THREADS];
    deploy_arg args[THREADS];
    memset(args, 0, sizeof args);
    for (int i = 0; i < THREADS; i++) {
        args[i].st = i % 2 ? second : f->st;
        assert_int_equal(pthread_create(&th[i], NULL, deploy_thread, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    int seen[THREADS * 10 + 1] = { 0 };
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(args[i].status, RD_OK);
        for (int j = 0; j < 10; j++) {
            int64_t v = args[i].versions[j];
            assert_true(v >= 1 && v <= THREADS * 10);
            seen[v]++;
            if (j > 0)
                assert_true(v > args[i].versions[j - 1]);
        }
    }
    for (int v = 1; v <= THREADS * 10; v++)
        assert_int_equal(seen[v], 1);
    rd_store_close(second);

    rd_store_deployment *list = NULL;
    size_t n = 0;
    ok(rd_store_deploy_list(f->st, "web", &list, &n, &err), &err);
    assert_int_equal(n, THREADS * 10);
    int active = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(list[i].version, (int64_t)(THREADS * 10 - i)); /* newest first */
        active += list[i].active;
    }
    assert_int_equal(active, 1);
    assert_true(list[0].active);
    assert_string_equal(list[0].created_by, "ci");
    assert_string_equal(list[0].archive_sha256, SHA);
    rd_store_deployments_free(list, n);

    /* rollback, and a redeploy after it takes the next number */
    ok(rd_store_deploy_activate(f->st, "admin", "web", 3, &err), &err);
    rd_store_deployment d = { 0 };
    ok(rd_store_deploy_active(f->st, "web", &d, &err), &err);
    assert_int_equal(d.version, 3);
    rd_store_deployment_clear(&d);
    assert_int_equal(rd_store_deploy_activate(f->st, "admin", "web", 99, &err), RD_E_NOT_FOUND);
    ok(rd_store_deploy_active(f->st, "web", &d, &err), &err);
    assert_int_equal(d.version, 3); /* the failed rollback changed nothing */
    rd_store_deployment_clear(&d);
    int64_t v = 0;
    ok(rd_store_deploy(f->st, "ci", "web", "archives/y.tar.gz", SHA, &v, &err), &err);
    assert_int_equal(v, THREADS * 10 + 1);
    ok(rd_store_deploy_active(f->st, "web", &d, &err), &err);
    assert_int_equal(d.version, v);
    assert_string_equal(d.archive_path, "archives/y.tar.gz");
    rd_store_deployment_clear(&d);

    assert_int_equal(rd_store_deploy(f->st, "ci", "nope", "a", SHA, &v, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_deploy(f->st, "ci", "web", "a", "XYZ", &v, &err), RD_E_USAGE);
    ok(rd_store_project_create(f->st, "admin", "empty", &err), &err);
    assert_int_equal(rd_store_deploy_active(f->st, "empty", &d, &err), RD_E_NOT_FOUND);
}

enum { VAR_THREADS = 50, VARS_EACH = 8 };

typedef struct var_arg {
    rd_store *st;
    int index;
    int failures;
    char message[RD_ERROR_MSG_MAX + 128];
} var_arg;

static rd_env env_of(int t, int j)
{
    static const rd_env envs[] = { RD_ENV_DEV, RD_ENV_PROD, RD_ENV_SHARED };
    return envs[(t + j) % 3];
}

static void *var_thread(void *p)
{
    var_arg *a = p;
    for (int j = 0; j < VARS_EACH; j++) {
        char name[64], value[96];
        snprintf(name, sizeof name, "VAR_%d_%d", a->index, j);
        for (int round = 0; round < 2; round++) { /* insert, then update */
            snprintf(value, sizeof value, "value-%d-%d-round-%d", a->index, j, round);
            rd_error err;
            rd_status s = rd_store_variable_set(a->st, "t", "p", env_of(a->index, j), name, value, strlen(value), &err);
            char *got = NULL;
            size_t len = 0;
            if (s == RD_OK)
                s = rd_store_variable_get(a->st, "p", env_of(a->index, j), name, &got, &len, &err);
            if (s != RD_OK || len != strlen(value) || memcmp(got, value, len) != 0) {
                a->failures++;
                snprintf(a->message, sizeof a->message, "%s %s", name, s != RD_OK ? err.message : "wrong value");
            }
            rd_store_secret_free(got, len);
        }
        rd_error err;
        char common[32];
        snprintf(common, sizeof common, "%d", a->index);
        if (rd_store_variable_set(a->st, "t", "p", RD_ENV_SHARED, "COMMON", common, strlen(common), &err) != RD_OK) {
            a->failures++;
            snprintf(a->message, sizeof a->message, "COMMON: %s", err.message);
        }
    }
    return NULL;
}

static void test_fifty_threads_nothing_lost(void **state)
{
    fixture *f = *state;
    rd_error err;
    ok(rd_store_project_create(f->st, "admin", "p", &err), &err);
    rd_store *second = NULL;
    ok(rd_store_open_sqlite(f->data, f->kr, NULL, &second, &err), &err);
    pthread_t th[VAR_THREADS];
    var_arg args[VAR_THREADS];
    memset(args, 0, sizeof args);
    for (int i = 0; i < VAR_THREADS; i++) {
        args[i].st = i % 5 == 0 ? second : f->st;
        args[i].index = i;
        assert_int_equal(pthread_create(&th[i], NULL, var_thread, &args[i]), 0);
    }
    for (int i = 0; i < VAR_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < VAR_THREADS; i++)
        if (args[i].failures)
            fail_msg("thread %d: %d failures, last: %s", i, args[i].failures, args[i].message);
    rd_store_close(second);

    rd_store_variable *vars = NULL;
    size_t n = 0;
    ok(rd_store_variable_list(f->st, "p", RD_ENV_NONE, &vars, &n, &err), &err);
    assert_int_equal(n, VAR_THREADS * VARS_EACH + 1);
    rd_store_variables_free(vars, n);
    for (int t = 0; t < VAR_THREADS; t++)
        for (int j = 0; j < VARS_EACH; j++) {
            char name[64], want[96];
            snprintf(name, sizeof name, "VAR_%d_%d", t, j);
            snprintf(want, sizeof want, "value-%d-%d-round-1", t, j);
            char *got = NULL;
            size_t len = 0;
            ok(rd_store_variable_get(f->st, "p", env_of(t, j), name, &got, &len, &err), &err);
            assert_string_equal(got, want);
            rd_store_secret_free(got, len);
        }
    char *got = NULL;
    size_t len = 0;
    ok(rd_store_variable_get(f->st, "p", RD_ENV_SHARED, "COMMON", &got, &len, &err), &err);
    int last = atoi(got);
    assert_true(last >= 0 && last < VAR_THREADS);
    rd_store_secret_free(got, len);

    /* every change audited */
    rd_store_audit_entry *log = NULL;
    size_t nlog = 0;
    ok(rd_store_audit_list(f->st, "p", 100000, &log, &nlog, &err), &err);
    assert_int_equal(nlog, 1 + VAR_THREADS * VARS_EACH * 3);
    rd_store_audit_free(log, nlog);
}

/* 1 when needle is in any of the store's files. */
static int on_disk(const fixture *f, const char *needle)
{
    const char *files[] = { "store.db", "store.db-wal", "store.db-shm" };
    int found = 0;
    for (size_t i = 0; i < 3 && !found; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s", f->data, files[i]);
        FILE *fp = fopen(path, "rb");
        if (!fp)
            continue;
        size_t cap = 1 << 20, len = 0;
        char *buf = malloc(cap);
        assert_non_null(buf);
        size_t r;
        while ((r = fread(buf + len, 1, cap - len, fp)) > 0) {
            len += r;
            if (len == cap) {
                cap *= 2;
                buf = realloc(buf, cap);
                assert_non_null(buf);
            }
        }
        fclose(fp);
        found = memmem(buf, len, needle, strlen(needle)) != NULL;
        free(buf);
    }
    return found;
}

static void test_planted_secret_never_on_disk(void **state)
{
    fixture *f = *state;
    rd_error err;
    char tok[RD_TOKEN_LEN + 1];
    int created = 0;
    ok(rd_store_bootstrap(f->st, tok, &created, &err), &err);
    ok(rd_store_project_create(f->st, "admin", "p", &err), &err);

    ok(rd_store_variable_set(f->st, "admin", "p", RD_ENV_PROD, "AWS_SECRET_ACCESS_KEY", SECRET, strlen(SECRET), &err),
       &err);
    assert_true(on_disk(f, "AWS_SECRET_ACCESS_KEY")); /* the files are read, and hold what was written */
    assert_false(on_disk(f, SECRET));
    assert_false(on_disk(f, tok));
    assert_false(on_disk(f, tok + 4));

    ok(rd_store_variable_set(f->st, "admin", "p", RD_ENV_PROD, "AWS_SECRET_ACCESS_KEY", SECRET2, strlen(SECRET2),
                             &err),
       &err);
    assert_false(on_disk(f, SECRET));
    assert_false(on_disk(f, SECRET2));

    ok(rd_store_variable_delete(f->st, "admin", "p", RD_ENV_PROD, "AWS_SECRET_ACCESS_KEY", &err), &err);
    assert_false(on_disk(f, SECRET));
    assert_false(on_disk(f, SECRET2));
    char *v = NULL;
    size_t len = 0;
    assert_int_equal(rd_store_variable_get(f->st, "p", RD_ENV_PROD, "AWS_SECRET_ACCESS_KEY", &v, &len, &err),
                     RD_E_NOT_FOUND);
    assert_int_equal(rd_store_variable_delete(f->st, "admin", "p", RD_ENV_PROD, "AWS_SECRET_ACCESS_KEY", &err),
                     RD_E_NOT_FOUND);

    /* after the WAL is checkpointed into the file at close */
    rd_store_close(f->st);
    f->st = NULL;
    assert_false(on_disk(f, SECRET));
    assert_false(on_disk(f, SECRET2));
    assert_false(on_disk(f, tok));
    ok(rd_store_open_sqlite(f->data, f->kr, NULL, &f->st, &err), &err);

    /* the audit log names the key, not the value */
    rd_store_audit_entry *log = NULL;
    size_t n = 0;
    ok(rd_store_audit_list(f->st, NULL, 0, &log, &n, &err), &err);
    int sets = 0;
    for (size_t i = 0; i < n; i++) {
        assert_null(strstr(log[i].detail_json, SECRET));
        assert_null(strstr(log[i].detail_json, SECRET2));
        if (strcmp(log[i].action, "variable.set") == 0) {
            sets++;
            assert_non_null(strstr(log[i].detail_json, "\"name\":\"AWS_SECRET_ACCESS_KEY\""));
            assert_non_null(strstr(log[i].detail_json, "\"environment\":\"prod\""));
            assert_string_equal(log[i].actor, "admin");
            assert_string_equal(log[i].project, "p");
        }
        if (i > 0)
            assert_true(log[i].id < log[i - 1].id);
    }
    assert_int_equal(sets, 2);
    assert_string_equal(log[0].action, "variable.delete");
    rd_store_audit_free(log, n);
    rd_token_wipe(tok, sizeof tok);
}

static void test_tampered_or_moved_blob_refused(void **state)
{
    fixture *f = *state;
    rd_error err;
    ok(rd_store_project_create(f->st, "admin", "p", &err), &err);
    ok(rd_store_project_create(f->st, "admin", "q", &err), &err);
    ok(rd_store_variable_set(f->st, "admin", "p", RD_ENV_PROD, "KEY_A", SECRET, strlen(SECRET), &err), &err);
    ok(rd_store_variable_set(f->st, "admin", "p", RD_ENV_DEV, "KEY_B", SECRET, strlen(SECRET), &err), &err);
    ok(rd_store_variable_set(f->st, "admin", "p", RD_ENV_DEV, "KEY_C", SECRET, strlen(SECRET), &err), &err);

    sqlite3 *db = raw_db(f);
    /* one byte of the ciphertext flipped */
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT blob FROM variables WHERE name = 'KEY_A'", -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    size_t blen = (size_t)sqlite3_column_bytes(stmt, 0);
    unsigned char *blob = malloc(blen);
    assert_non_null(blob);
    memcpy(blob, sqlite3_column_blob(stmt, 0), blen);
    sqlite3_finalize(stmt);
    blob[RD_KEYRING_HEADER_LEN + 3] ^= 0x10;
    assert_int_equal(sqlite3_prepare_v2(db, "UPDATE variables SET blob = ?1 WHERE name = 'KEY_A'", -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(stmt, 1, blob, (int)blen, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    free(blob);
    /* a blob moved to another environment, and one to another project */
    assert_int_equal(sqlite3_exec(db, "UPDATE variables SET environment = 'prod' WHERE name = 'KEY_B'", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE variables SET project_id = (SELECT id FROM projects WHERE name = 'q')"
                                  " WHERE name = 'KEY_C'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    const struct { const char *project; rd_env env; const char *name; } cases[] = {
        { "p", RD_ENV_PROD, "KEY_A" }, { "p", RD_ENV_PROD, "KEY_B" }, { "q", RD_ENV_DEV, "KEY_C" } };
    for (size_t i = 0; i < 3; i++) {
        char *v = (char *)0x1;
        size_t len = 7;
        rd_error_clear(&err);
        assert_int_equal(rd_store_variable_get(f->st, cases[i].project, cases[i].env, cases[i].name, &v, &len, &err),
                         RD_E_CONFIG);
        assert_ptr_equal(v, (char *)0x1);
        assert_non_null(strstr(err.message, "integrity check"));
        assert_non_null(strstr(err.message, cases[i].name));
        assert_null(strstr(err.message, SECRET));
    }
    /* a rotation that meets a value it cannot open changes nothing */
    uint32_t id = 0;
    ok(rd_keyring_add_key(f->kr, &id, &err), &err);
    assert_int_equal(rd_store_rotate(f->st, "admin", NULL, &err), RD_E_CONFIG);
    rd_store_variable *vars = NULL;
    size_t n = 0;
    ok(rd_store_variable_list(f->st, "p", RD_ENV_NONE, &vars, &n, &err), &err);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(vars[i].key_id, 1);
    rd_store_variables_free(vars, n);
}

static void test_rotate_reencrypts(void **state)
{
    fixture *f = *state;
    rd_error err;
    char old_copy[400];
    snprintf(old_copy, sizeof old_copy, "%s/keyring-before", f->dir);
    ok(rd_store_project_create(f->st, "admin", "p", &err), &err);
    ok(rd_store_project_create(f->st, "admin", "q", &err), &err);
    const char *names[] = { "A", "B", "C" };
    for (int i = 0; i < 3; i++) {
        char value[64];
        snprintf(value, sizeof value, "%s-%s", SECRET, names[i]);
        ok(rd_store_variable_set(f->st, "admin", i == 2 ? "q" : "p", (rd_env)(RD_ENV_DEV + i), names[i], value,
                                 strlen(value), &err),
           &err);
    }
    ok(rd_store_variable_set(f->st, "admin", "q", RD_ENV_DEV, "EMPTY", "", 0, &err), &err);
    /* keep the keyring as it was, to open later as a stale copy */
    assert_int_equal(link(f->keyring, old_copy), 0);
    rd_store_variable *vars = NULL;
    size_t n = 0;
    ok(rd_store_variable_list(f->st, "p", RD_ENV_NONE, &vars, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(vars[0].key_id, 1);
    rd_store_variables_free(vars, n);

    uint32_t id = 0;
    ok(rd_keyring_add_key(f->kr, &id, &err), &err);
    assert_int_equal(id, 2);
    size_t count = 0;
    ok(rd_store_rotate(f->st, "admin", &count, &err), &err);
    assert_int_equal(count, 4);
    const char *projects[] = { "p", "q" };
    for (int k = 0; k < 2; k++) {
        ok(rd_store_variable_list(f->st, projects[k], RD_ENV_NONE, &vars, &n, &err), &err);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(vars[i].key_id, 2);
            assert_string_equal(vars[i].updated_by, "admin");
        }
        rd_store_variables_free(vars, n);
    }
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s-%s", SECRET, names[i]);
        char *v = NULL;
        size_t len = 0;
        ok(rd_store_variable_get(f->st, i == 2 ? "q" : "p", (rd_env)(RD_ENV_DEV + i), names[i], &v, &len, &err), &err);
        assert_string_equal(v, want);
        rd_store_secret_free(v, len);
    }
    count = 99;
    ok(rd_store_rotate(f->st, "admin", &count, &err), &err);
    assert_int_equal(count, 0);

    /* the rewritten keyring opens the store; the copy from before the new key does not */
    rd_store_close(f->st);
    f->st = NULL;
    rd_keyring_free(f->kr);
    f->kr = NULL;
    ok(rd_keyring_open(f->keyring, 0, &f->kr, NULL, &err), &err);
    ok(rd_store_open_sqlite(f->data, f->kr, NULL, &f->st, &err), &err);
    rd_keyring *stale = NULL;
    ok(rd_keyring_open(old_copy, 0, &stale, NULL, &err), &err);
    rd_store *st2 = NULL;
    rd_error_clear(&err);
    assert_int_equal(rd_store_open_sqlite(f->data, stale, NULL, &st2, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "does not hold key 2"));
    rd_keyring_free(stale);

    rd_store_audit_entry *log = NULL;
    size_t nlog = 0;
    ok(rd_store_audit_list(f->st, NULL, 1, &log, &nlog, &err), &err);
    assert_int_equal(nlog, 1);
    assert_string_equal(log[0].action, "keyring.rotate");
    assert_null(log[0].project);
    rd_store_audit_free(log, nlog);
}

static void test_invalid_names_refused(void **state)
{
    fixture *f = *state;
    rd_error err;
    ok(rd_store_project_create(f->st, "admin", "p", &err), &err);
    char long_name[RD_STORE_VARIABLE_NAME_MAX + 2];
    memset(long_name, 'A', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    const char *bad[] = { "", "1ABC", "-AB", ".AB", "A B", "A=B", "A/B", "\xc3\x84X", "A\nB", long_name, "SECRET$VALUE" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rd_error_clear(&err);
        assert_false(rd_store_variable_name_valid(bad[i]));
        assert_int_equal(rd_store_variable_set(f->st, "admin", "p", RD_ENV_DEV, bad[i], "v", 1, &err), RD_E_USAGE);
        assert_non_null(strstr(err.message, "invalid variable name"));
        if (*bad[i])
            assert_null(strstr(err.message, bad[i]));
    }
    assert_false(rd_store_variable_name_valid(NULL));
    long_name[RD_STORE_VARIABLE_NAME_MAX] = '\0'; /* exactly the longest */
    const char *good[] = { "_", "_A", "a1", "A-B", "A.B", "AWS_SECRET_ACCESS_KEY", "connector.rs.aws_secret_access_key", long_name };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_true(rd_store_variable_name_valid(good[i]));
        ok(rd_store_variable_set(f->st, "admin", "p", RD_ENV_DEV, good[i], "v", 1, &err), &err);
    }
    assert_int_equal(rd_store_variable_set(f->st, "admin", "p", RD_ENV_NONE, "K", "v", 1, &err), RD_E_USAGE);
    assert_non_null(strstr(err.message, "environment"));
    assert_int_equal(rd_store_variable_set(f->st, "admin", "p", (rd_env)9, "K", "v", 1, &err), RD_E_USAGE);
    char *big = calloc(1, RD_STORE_VALUE_MAX + 1);
    assert_int_equal(rd_store_variable_set(f->st, "admin", "p", RD_ENV_DEV, "K", big, RD_STORE_VALUE_MAX + 1, &err),
                     RD_E_USAGE);
    ok(rd_store_variable_set(f->st, "admin", "p", RD_ENV_DEV, "K", big, RD_STORE_VALUE_MAX, &err), &err);
    free(big);
    assert_int_equal(rd_store_variable_set(f->st, "admin", "nope", RD_ENV_DEV, "K", "v", 1, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_variable_set(f->st, "admin", "../p", RD_ENV_DEV, "K", "v", 1, &err), RD_E_USAGE);
    assert_int_equal(rd_store_variable_set(f->st, "", "p", RD_ENV_DEV, "K", "v", 1, &err), RD_E_USAGE);
    assert_int_equal(rd_store_user_add(f->st, "admin", "bad name", 0, &err), RD_E_USAGE);
    assert_int_equal(rd_store_user_add(f->st, "admin", "-x", 0, &err), RD_E_USAGE);
    assert_int_equal(rd_store_project_create(f->st, "admin", "p;DROP", &err), RD_E_USAGE);
    assert_int_equal(rd_store_project_create(f->st, "admin", "p", &err), RD_E_USAGE); /* exists */
    assert_int_equal(rd_store_audit_append(f->st, "admin", "x", NULL, "[1]", &err), RD_E_USAGE);
    ok(rd_store_audit_append(f->st, "admin", "refresh", "p", "{\"source\":\"orders\"}", &err), &err);
}

static void test_roles(void **state)
{
    fixture *f = *state;
    rd_error err;
    ok(rd_store_user_add(f->st, "admin", "root", 1, &err), &err);
    ok(rd_store_user_add(f->st, "root", "ed", 0, &err), &err);
    ok(rd_store_user_add(f->st, "root", "vi", 0, &err), &err);
    ok(rd_store_project_create(f->st, "root", "p", &err), &err);
    ok(rd_store_role_grant(f->st, "root", "ed", "p", RD_ROLE_EDITOR, 0, &err), &err);
    ok(rd_store_role_grant(f->st, "root", "vi", "p", RD_ROLE_VIEWER, 1, &err), &err);
    rd_role r = RD_ROLE_NONE;
    int prod = -1;
    ok(rd_store_role_get(f->st, "ed", "p", &r, &prod, &err), &err);
    assert_int_equal(r, RD_ROLE_EDITOR);
    assert_int_equal(prod, 0);
    assert_false(rd_role_can(r, prod, RD_ACTION_VARIABLES_READ, RD_ENV_PROD));
    assert_true(rd_role_can(r, prod, RD_ACTION_VARIABLES_WRITE, RD_ENV_DEV));
    ok(rd_store_role_grant(f->st, "root", "ed", "p", RD_ROLE_EDITOR, 1, &err), &err); /* replaced */
    ok(rd_store_role_get(f->st, "ed", "p", &r, &prod, &err), &err);
    assert_int_equal(prod, 1);
    assert_true(rd_role_can(r, prod, RD_ACTION_VARIABLES_READ, RD_ENV_PROD));
    ok(rd_store_role_effective(f->st, "vi", "p", &r, &prod, &err), &err);
    assert_int_equal(r, RD_ROLE_VIEWER);
    assert_false(rd_role_can(r, prod, RD_ACTION_VARIABLES_READ, RD_ENV_PROD));
    ok(rd_store_role_effective(f->st, "root", "p", &r, &prod, &err), &err);
    assert_int_equal(r, RD_ROLE_ADMIN);
    assert_int_equal(prod, 1);
    ok(rd_store_role_revoke(f->st, "root", "vi", "p", &err), &err);
    assert_int_equal(rd_store_role_get(f->st, "vi", "p", &r, &prod, &err), RD_E_NOT_FOUND);
    ok(rd_store_role_effective(f->st, "vi", "p", &r, &prod, &err), &err);
    assert_int_equal(r, RD_ROLE_NONE);
    assert_int_equal(rd_store_role_effective(f->st, "ghost", "p", &r, &prod, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_role_grant(f->st, "root", "ed", "nope", RD_ROLE_VIEWER, 0, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_role_grant(f->st, "root", "ed", "p", RD_ROLE_NONE, 0, &err), RD_E_USAGE);
    /* removing the user removes the membership */
    ok(rd_store_user_rm(f->st, "root", "ed", &err), &err);
    ok(rd_store_user_add(f->st, "root", "ed", 0, &err), &err);
    assert_int_equal(rd_store_role_get(f->st, "ed", "p", &r, &prod, &err), RD_E_NOT_FOUND);

    rd_store_audit_entry *log = NULL;
    size_t n = 0;
    ok(rd_store_audit_list(f->st, "p", 0, &log, &n, &err), &err);
    assert_int_equal(n, 5); /* project.create, 3 grants, 1 revoke */
    assert_string_equal(log[0].action, "role.revoke");
    assert_string_equal(log[1].action, "role.grant");
    assert_non_null(strstr(log[1].detail_json, "\"prod_access\":true"));
    rd_store_audit_free(log, n);
}

/* The schema of migration 1, as the first servers made it (a copy: the store's own may not change). */
static const char *const SCHEMA_1 =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER);"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE UNIQUE INDEX tokens_live_name ON tokens(user_id, name) WHERE revoked_at IS NULL;"
    "CREATE TABLE projects ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  next_version INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE memberships ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),"
    "  prod_access INTEGER NOT NULL DEFAULT 0 CHECK (prod_access IN (0, 1)),"
    "  PRIMARY KEY (user_id, project_id));"
    "CREATE INDEX memberships_project ON memberships(project_id);"
    "CREATE TABLE deployments ("
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),"
    "  archive_path TEXT NOT NULL,"
    "  archive_sha256 TEXT NOT NULL,"
    "  PRIMARY KEY (project_id, version));"
    "CREATE UNIQUE INDEX deployments_one_active ON deployments(project_id) WHERE active = 1;"
    "CREATE TABLE variables ("
    "  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
    "  environment TEXT NOT NULL CHECK (environment IN ('dev', 'prod', 'shared')),"
    "  name TEXT NOT NULL,"
    "  key_id INTEGER NOT NULL,"
    "  blob BLOB NOT NULL,"
    "  updated_by TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (project_id, environment, name));"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  project TEXT,"
    "  detail_json TEXT NOT NULL);"
    "CREATE INDEX audit_project ON audit(project, id);";

static void test_schema_1_upgraded_data_intact(void **state)
{
    fixture *f = *state;
    rd_store_close(f->st);
    f->st = NULL;
    char data[400], path[500];
    snprintf(data, sizeof data, "%s/old", f->dir);
    assert_int_equal(mkdir(data, 0700), 0);
    snprintf(path, sizeof path, "%s/store.db", data);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, SCHEMA_1, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES (1, 1);"
                                  "INSERT INTO users (name, admin, created_at) VALUES ('admin', 1, 10);"
                                  "INSERT INTO projects (name, created_at, next_version) VALUES ('web', 11, 3);"
                                  "INSERT INTO deployments VALUES (1, 1, 'admin', 12, 0, 'projects/web/v1', '" SHA "');"
                                  "INSERT INTO deployments VALUES (1, 2, 'admin', 13, 1, 'projects/web/v2', '" SHA "');"
                                  "INSERT INTO audit (at, actor, action, project, detail_json)"
                                  " VALUES (12, 'admin', 'deploy', 'web', '{}');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    rd_error err;
    ok(rd_store_open_sqlite(data, f->kr, NULL, &f->st, &err), &err);
    rd_store_user u = { 0 };
    ok(rd_store_user_get(f->st, "admin", &u, &err), &err);
    assert_true(u.admin);
    assert_int_equal(u.created_at, 10);
    rd_store_user_clear(&u);
    rd_store_deployment *ds = NULL;
    size_t n = 0;
    ok(rd_store_deploy_list(f->st, "web", &ds, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(ds[0].version, 2);
    assert_true(ds[0].active);
    assert_string_equal(ds[0].archive_path, "projects/web/v2");
    assert_int_equal(ds[0].environment, RD_ENV_NONE); /* not recorded before schema 2 */
    assert_int_equal(ds[1].version, 1);
    rd_store_deployments_free(ds, n);
    rd_store_audit_entry *log = NULL;
    ok(rd_store_audit_list(f->st, "web", 0, &log, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_string_equal(log[0].action, "deploy");
    rd_store_audit_free(log, n);

    /* schema 2 in place: the next deployment keeps its environment, the counter goes on */
    int64_t v = 0;
    ok(rd_store_deploy_env(f->st, "ci", "web", RD_ENV_DEV, "projects/web/v3", SHA, &v, &err), &err);
    assert_int_equal(v, 3);
    rd_store_deployment d = { 0 };
    ok(rd_store_deploy_active(f->st, "web", &d, &err), &err);
    assert_int_equal(d.version, 3);
    assert_int_equal(d.environment, RD_ENV_DEV);
    rd_store_deployment_clear(&d);
    assert_int_equal(rd_store_deploy_env(f->st, "ci", "web", RD_ENV_SHARED, "p", SHA, &v, &err), RD_E_USAGE);

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(raw_int(db, "SELECT max(version) FROM schema_version"), 3);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM deployments WHERE environment IS NULL"), 2);
    sqlite3_close(db);
    /* reopened at schema 2: nothing applied again */
    rd_store_close(f->st);
    f->st = NULL;
    ok(rd_store_open_sqlite(data, f->kr, NULL, &f->st, &err), &err);
}

static void set_var(fixture *f, rd_env env, const char *name, const char *value)
{
    rd_error err;
    ok(rd_store_variable_set(f->st, "ed", "web", env, name, value, strlen(value), &err), &err);
}

static void expect_var(fixture *f, rd_env env, const char *name, const char *value)
{
    rd_error err;
    char *v = NULL;
    size_t len = 0;
    rd_status s = rd_store_variable_get(f->st, "web", env, name, &v, &len, &err);
    if (!value) {
        assert_int_equal(s, RD_E_NOT_FOUND);
        return;
    }
    ok(s, &err);
    assert_string_equal(v, value);
    rd_store_secret_free(v, len);
}

static void test_values_of_an_environment(void **state)
{
    fixture *f = *state;
    rd_error err;
    ok(rd_store_project_create(f->st, "tester", "web", &err), &err);
    set_var(f, RD_ENV_DEV, "B", "dev-b");
    set_var(f, RD_ENV_DEV, "A", SECRET);
    set_var(f, RD_ENV_SHARED, "A", "shared-a");
    set_var(f, RD_ENV_SHARED, "C", "shared-c");
    set_var(f, RD_ENV_PROD, "P", "prod-p");
    rd_store_value *vs = NULL;
    size_t n = 0;
    ok(rd_store_variable_values(f->st, "web", RD_ENV_DEV, 0, &vs, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_string_equal(vs[0].name, "A");
    assert_string_equal(vs[0].value, SECRET);
    assert_int_equal(vs[0].len, strlen(SECRET));
    assert_string_equal(vs[1].name, "B");
    assert_string_equal(vs[1].value, "dev-b");
    rd_store_values_free(vs, n);
    ok(rd_store_variable_values(f->st, "web", RD_ENV_DEV, 1, &vs, &n, &err), &err);
    assert_int_equal(n, 4); /* dev's A and B, then shared's A and C */
    const char *want[][3] = { { "dev", "A", SECRET }, { "dev", "B", "dev-b" }, { "shared", "A", "shared-a" },
                              { "shared", "C", "shared-c" } };
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(rd_env_name(vs[i].environment), want[i][0]);
        assert_string_equal(vs[i].name, want[i][1]);
        assert_string_equal(vs[i].value, want[i][2]);
    }
    rd_store_values_free(vs, n);
    ok(rd_store_variable_values(f->st, "web", RD_ENV_SHARED, 1, &vs, &n, &err), &err);
    assert_int_equal(n, 2);
    rd_store_values_free(vs, n);
    assert_int_equal(rd_store_variable_values(f->st, "nope", RD_ENV_DEV, 0, &vs, &n, &err), RD_E_NOT_FOUND);
    assert_int_equal(rd_store_variable_values(f->st, "web", RD_ENV_NONE, 0, &vs, &n, &err), RD_E_USAGE);
    /* one value the keyring cannot open: an error naming it, no values */
    sqlite3 *db = raw_db(f);
    assert_int_equal(sqlite3_exec(db, "UPDATE variables SET blob = x'00' WHERE name = 'B'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    vs = NULL;
    assert_int_equal(rd_store_variable_values(f->st, "web", RD_ENV_DEV, 0, &vs, &n, &err), RD_E_CONFIG);
    assert_null(vs);
    assert_non_null(strstr(err.message, "variable B"));
    assert_null(strstr(err.message, SECRET));
}

static int64_t audit_count(fixture *f)
{
    sqlite3 *db = raw_db(f);
    int64_t n = raw_int(db, "SELECT count(*) FROM audit");
    sqlite3_close(db);
    return n;
}

static void test_patch_all_or_nothing(void **state)
{
    fixture *f = *state;
    rd_error err;
    ok(rd_store_project_create(f->st, "tester", "web", &err), &err);
    set_var(f, RD_ENV_DEV, "A", "old-a");
    set_var(f, RD_ENV_DEV, "B", "old-b");
    set_var(f, RD_ENV_DEV, "U", "keep-u");
    int64_t before = audit_count(f);

    /* the third write fails (a trigger planted in the file): the two before it are undone */
    sqlite3 *db = raw_db(f);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER fail_last BEFORE INSERT ON variables WHEN NEW.name = 'Z_LAST'"
                                  " BEGIN SELECT RAISE(ABORT, 'forced failure'); END;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    rd_store_set_item set[] = { { "A", "new-a", 5 }, { "B", SECRET, strlen(SECRET) }, { "Z_LAST", "z", 1 } };
    const char *unset[] = { "U" };
    int done[1] = { 7 };
    rd_error_clear(&err);
    rd_status s = rd_store_variable_patch(f->st, "ed", "web", RD_ENV_DEV, set, 3, unset, 1, done, &err);
    assert_int_not_equal(s, RD_OK);
    assert_null(strstr(err.message, SECRET));
    assert_int_equal(done[0], 7); /* untouched on failure */
    expect_var(f, RD_ENV_DEV, "A", "old-a");
    expect_var(f, RD_ENV_DEV, "B", "old-b");
    expect_var(f, RD_ENV_DEV, "U", "keep-u");
    expect_var(f, RD_ENV_DEV, "Z_LAST", NULL);
    assert_int_equal(audit_count(f), before);
    db = raw_db(f);
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER fail_last", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* a value over the limit as the last item: refused before anything is written */
    char *big = malloc(RD_STORE_VALUE_MAX + 1);
    memset(big, 'x', RD_STORE_VALUE_MAX + 1);
    rd_store_set_item set2[] = { { "A", "new-a", 5 }, { "BIG", big, RD_STORE_VALUE_MAX + 1 } };
    assert_int_equal(rd_store_variable_patch(f->st, "ed", "web", RD_ENV_DEV, set2, 2, NULL, 0, NULL, &err),
                     RD_E_USAGE);
    free(big);
    expect_var(f, RD_ENV_DEV, "A", "old-a");
    /* a name both set and unset, an invalid name: refused, nothing written */
    const char *unset_a[] = { "A" };
    assert_int_equal(rd_store_variable_patch(f->st, "ed", "web", RD_ENV_DEV, set, 1, unset_a, 1, NULL, &err),
                     RD_E_USAGE);
    const char *unset_bad[] = { "U", "1bad" };
    assert_int_equal(rd_store_variable_patch(f->st, "ed", "web", RD_ENV_DEV, set, 2, unset_bad, 2, NULL, &err),
                     RD_E_USAGE);
    expect_var(f, RD_ENV_DEV, "A", "old-a");
    expect_var(f, RD_ENV_DEV, "U", "keep-u");
    assert_int_equal(audit_count(f), before);

    /* the whole batch: one audit row with the names, never the values; an absent name is no error */
    const char *unset3[] = { "U", "NOPE" };
    int done3[2] = { 0, 0 };
    ok(rd_store_variable_patch(f->st, "ed", "web", RD_ENV_DEV, set, 2, unset3, 2, done3, &err), &err);
    assert_int_equal(done3[0], 1);
    assert_int_equal(done3[1], 0);
    expect_var(f, RD_ENV_DEV, "A", "new-a");
    expect_var(f, RD_ENV_DEV, "B", SECRET);
    expect_var(f, RD_ENV_DEV, "U", NULL);
    assert_int_equal(audit_count(f), before + 1);
    rd_store_audit_entry *log = NULL;
    size_t n = 0;
    ok(rd_store_audit_list(f->st, "web", 1, &log, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_string_equal(log[0].action, "variable.patch");
    assert_string_equal(log[0].actor, "ed");
    assert_string_equal(log[0].detail_json, "{\"environment\":\"dev\",\"set\":[\"A\",\"B\"],\"unset\":[\"U\"]}");
    rd_store_audit_free(log, n);
}

/* The store turns on jansson's wiping free (the values of requests and answers pass through jansson). */
static void test_json_frees_wiped(void **state)
{
    (void)state;
    json_malloc_t m = NULL;
    json_free_t fr = NULL;
    json_get_alloc_funcs(&m, &fr);
    assert_non_null(fr);
    assert_true(fr != free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_once_and_files_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_keyring_refused_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions_grow_under_concurrent_deploys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifty_threads_nothing_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planted_secret_never_on_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_or_moved_blob_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_reencrypts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_names_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_1_upgraded_data_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_of_an_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_frees_wiped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
