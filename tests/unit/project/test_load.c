/* test_load.c — loading a project folder (project.h): a project using every key, the defaults, `{{ .env.KEY }}`
 * templates, .env `connector.NAME.KEY` overrides, a source's connector keys through
 * rd_project_effective_connector, and bad inputs, each reported as "FILE:LINE: ..." with the first error in
 * file order and never a secret. Folders are made under /tmp and removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "redduck/project.h"
#include "services/s3.h"

/* ---- folders ------------------------------------------------------------------------------------------ */

static char *make_dir(void)
{
    char tmpl[] = "/tmp/rd_test_project_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *copy = strdup(d);
    assert_non_null(copy);
    return copy;
}

/* Writes dir/rel (creating its folders). */
static void put(const char *dir, const char *rel, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *s = path + strlen(dir) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(path, 0755);
            *s = '/';
        }
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Writes dir/rel with exactly these bytes (NULs included); the folder exists. */
static void put_bytes(const char *dir, const char *rel, const char *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_dir(char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static void load_ok(const char *dir, rd_project *p)
{
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_project_load(dir, p, &err);
    if (st != RD_OK)
        fail_msg("load failed: %s", err.message);
}

/* ---- valid projects --------------------------------------------------------------------------------------- */

static void test_full_project(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "redduck.yaml", "# the shop\nname: shop\nduckdb: out/shop.duckdb\nparallel: 4\n");
    put(dir, "connectors/main.yaml",
        "type: redshift\n"
        "workgroup: wg-main\n"
        "database: analytics\n"
        "db_user: reader\n"
        "secret_arn: arn:aws:secretsmanager:us-east-1:1:secret:x\n"
        "region: eu-west-1\n"
        "role_arn: arn:aws:iam::1:role/unload\n"
        "output_location: s3://bucket/stage/\n"
        "aws_access_key_id: AKIDEXAMPLE\n"
        "aws_secret_access_key: secret-value\n"
        "aws_session_token: token-value\n"
        "profile: dev\n"
        "endpoint_url: http://127.0.0.1:1234\n"
        "allow_host_access: false\n");
    /* Rill's spelling of a connector */
    put(dir, "connectors/warehouse.yml", "type: connector\ndriver: redshift\ncluster_identifier: prod-1\n");
    put(dir, "sources/orders.yaml",
        "type: source\n"
        "connector: main\n"
        "sql: |\n"
        "  select *\n"
        "  from public.orders\n"
        "table_name: all_orders\n"
        "incremental:\n"
        "  column: updated_at\n"
        "  unique_key: id\n"
        "iam_role: arn:aws:iam::1:role/other\n"
        "kms_key: alias/k\n"
        "max_file_size_mb: 256\n"
        "concurrency: 8\n"
        "timeout: 600\n"
        "via: unload\n"
        "keep_staging: yes\n"
        "compression: fast\n"
        "database: other_db\n"
        "allow_host_access: true\n");
    put(dir, "sources/customers.yaml", "connector: warehouse\ntable: sales.customers\nvia: data-api\n");
    put(dir, "sources/README.md", "not a source\n");

    rd_project p;
    load_ok(dir, &p);
    assert_string_equal(p.name, "shop");
    char want[4096];
    snprintf(want, sizeof want, "%s/out/shop.duckdb", dir);
    assert_string_equal(p.duckdb_path, want);
    assert_int_equal(p.parallel, 4);

    assert_int_equal(p.nconnectors, 2);
    const rd_connector *m = rd_project_connector(&p, "main");
    assert_non_null(m);
    assert_string_equal(m->name, "main");
    snprintf(want, sizeof want, "%s/connectors/main.yaml", dir);
    assert_string_equal(m->file, want);
    assert_string_equal(m->workgroup, "wg-main");
    assert_null(m->cluster_identifier);
    assert_string_equal(m->database, "analytics");
    assert_string_equal(m->db_user, "reader");
    assert_string_equal(m->secret_arn, "arn:aws:secretsmanager:us-east-1:1:secret:x");
    assert_string_equal(m->region, "eu-west-1");
    assert_string_equal(m->role_arn, "arn:aws:iam::1:role/unload");
    assert_string_equal(m->output_location, "s3://bucket/stage/");
    assert_string_equal(m->aws_access_key_id, "AKIDEXAMPLE");
    assert_string_equal(m->aws_secret_access_key, "secret-value");
    assert_string_equal(m->aws_session_token, "token-value");
    assert_string_equal(m->profile, "dev");
    assert_string_equal(m->endpoint_url, "http://127.0.0.1:1234");
    assert_int_equal(m->allow_host_access, 0);
    const rd_connector *w = rd_project_connector(&p, "warehouse");
    assert_non_null(w);
    assert_string_equal(w->cluster_identifier, "prod-1");
    assert_string_equal(w->database, "dev");
    assert_null(rd_project_connector(&p, "nope"));

    assert_int_equal(p.nsources, 2);
    assert_string_equal(p.sources[0].name, "customers"); /* sorted by name */
    assert_string_equal(p.sources[1].name, "orders");
    const rd_source *o = rd_project_source(&p, "orders");
    assert_non_null(o);
    assert_string_equal(o->connector, "main");
    assert_string_equal(o->sql, "select *\nfrom public.orders\n");
    assert_null(o->table);
    assert_string_equal(o->table_name, "all_orders");
    assert_string_equal(o->incremental_column, "updated_at");
    assert_string_equal(o->unique_key, "id");
    assert_string_equal(o->iam_role, "arn:aws:iam::1:role/other");
    assert_string_equal(o->kms_key, "alias/k");
    assert_int_equal(o->max_file_size_mb, 256);
    assert_int_equal(o->concurrency, 8);
    assert_int_equal(o->timeout_s, 600);
    assert_string_equal(o->via, "unload");
    assert_int_equal(o->keep_staging, 1);
    assert_string_equal(o->compression, "fast");
    assert_string_equal(o->overrides.database, "other_db");
    assert_int_equal(o->overrides.allow_host_access, 1);
    assert_null(o->overrides.workgroup);
    const rd_source *c = rd_project_source(&p, "customers");
    assert_string_equal(c->table, "sales.customers");
    assert_string_equal(c->table_name, "customers");
    assert_string_equal(c->via, "data-api");
    assert_null(rd_project_source(&p, "README"));

    rd_project_free(&p);
    rd_project_free(&p); /* cleared: a second free is harmless */
    remove_dir(dir);
}

static void test_defaults(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "redduck.yaml", "# nothing set\n");
    put(dir, "connectors/redshift.yaml", "type: redshift\nworkgroup: wg\n");
    put(dir, "sources/events.yaml", "sql: select 1\n");
    rd_project p;
    load_ok(dir, &p);
    const char *base = strrchr(dir, '/') + 1;
    assert_string_equal(p.name, base);
    char want[4096];
    snprintf(want, sizeof want, "%s/data/redduck.duckdb", dir);
    assert_string_equal(p.duckdb_path, want);
    assert_int_equal(p.parallel, 2);
    assert_string_equal(p.dir, dir);
    assert_int_equal(p.env.count, 0);

    const rd_connector *c = &p.connectors[0];
    assert_string_equal(c->database, "dev");
    assert_int_equal(c->allow_host_access, 1);
    assert_null(c->region);
    assert_null(c->profile);

    const rd_source *s = &p.sources[0];
    assert_string_equal(s->connector, "redshift"); /* the only connector */
    assert_string_equal(s->table_name, "events");
    assert_null(s->incremental_column);
    assert_null(s->unique_key);
    assert_null(s->via);
    assert_null(s->compression);
    assert_int_equal(s->max_file_size_mb, 0);
    assert_int_equal(s->concurrency, 0);
    assert_int_equal(s->timeout_s, 0);
    assert_int_equal(s->keep_staging, 0);
    assert_int_equal(s->overrides.allow_host_access, -1);
    assert_null(s->overrides.database);
    rd_project_free(&p);

    /* an empty redduck.yaml, an absolute duckdb path, a trailing slash on the folder */
    put(dir, "redduck.yaml", "");
    put(dir, "connectors/redshift.yaml", "type: redshift\ncluster_identifier: c1\n");
    char slash[4096];
    snprintf(slash, sizeof slash, "%s/", dir);
    load_ok(slash, &p);
    assert_string_equal(p.dir, dir);
    assert_string_equal(p.name, base);
    rd_project_free(&p);
    put(dir, "redduck.yaml", "duckdb: /var/tmp/x.duckdb\nname: ~\n");
    load_ok(dir, &p);
    assert_string_equal(p.duckdb_path, "/var/tmp/x.duckdb");
    assert_string_equal(p.name, base);
    rd_project_free(&p);
    remove_dir(dir);
}

static void test_templates(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, ".env", "WG=wg-from-env\nschema.name=sales\nPAR=3\nHOST_OK=false\n");
    put(dir, "redduck.yaml", "name: \"proj-{{.env.WG}}\"\nparallel: \"{{ .env.PAR }}\"\n");
    put(dir, "connectors/redshift.yaml",
        "type: redshift\nworkgroup: \"{{ .env.WG }}\"\nallow_host_access: \"{{ .env.HOST_OK }}\"\n");
    put(dir, "sources/t.yaml", "sql: |\n  select * from {{ .env.schema.name }}.t\n  -- {{  .env.WG  }} {{.env.WG}}\n");
    rd_project p;
    load_ok(dir, &p);
    assert_string_equal(p.name, "proj-wg-from-env");
    assert_int_equal(p.parallel, 3);
    assert_string_equal(p.connectors[0].workgroup, "wg-from-env");
    assert_int_equal(p.connectors[0].allow_host_access, 0);
    assert_string_equal(p.sources[0].sql, "select * from sales.t\n-- wg-from-env wg-from-env\n");
    assert_string_equal(rd_dotenv_get(&p.env, "PAR"), "3");
    rd_project_free(&p);
    remove_dir(dir);
}

static void test_env_connector_overrides(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, ".env",
        "# keys for this machine\n"
        "connector.redshift.workgroup=wg-env\n"
        "connector.redshift.aws_access_key_id=AKIDENV\n"
        "connector.redshift.aws_secret_access_key=\"s3cr3t\"\n"
        "connector.redshift.allow_host_access=false\n"
        "connector.my.conn.region=ap-south-1\n");
    put(dir, "redduck.yaml", "name: p\n");
    /* .env supplies the workgroup the YAML leaves out, and wins over the YAML's database */
    put(dir, "connectors/redshift.yaml", "type: redshift\nworkgroup: wg-yaml\ndatabase: yaml_db\n");
    put(dir, "connectors/my.conn.yaml", "type: redshift\ncluster_identifier: c\nregion: us-east-1\n");
    put(dir, "sources/a.yaml", "connector: redshift\nsql: select 1\n");
    rd_project p;
    load_ok(dir, &p);
    const rd_connector *c = rd_project_connector(&p, "redshift");
    assert_string_equal(c->workgroup, "wg-env");
    assert_string_equal(c->database, "yaml_db");
    assert_string_equal(c->aws_access_key_id, "AKIDENV");
    assert_string_equal(c->aws_secret_access_key, "s3cr3t");
    assert_int_equal(c->allow_host_access, 0);
    assert_string_equal(rd_project_connector(&p, "my.conn")->region, "ap-south-1");
    rd_project_free(&p);

    /* a connector whose endpoint comes only from .env */
    put(dir, "connectors/redshift.yaml", "type: redshift\n");
    load_ok(dir, &p);
    assert_string_equal(rd_project_connector(&p, "redshift")->workgroup, "wg-env");
    rd_project_free(&p);
    remove_dir(dir);
}

static void test_effective_connector(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "redduck.yaml", "name: p\n");
    put(dir, "connectors/redshift.yaml",
        "type: redshift\nworkgroup: wg\ndatabase: main_db\nregion: us-east-1\noutput_location: s3://bucket/p/\n");
    put(dir, "sources/plain.yaml", "sql: select 1\n");
    put(dir, "sources/moved.yaml",
        "sql: select 2\ncluster_identifier: other-cluster\ndatabase: other_db\nallow_host_access: false\n");
    rd_project p;
    load_ok(dir, &p);
    rd_error err;
    rd_error_clear(&err);
    rd_connector e;
    assert_int_equal(rd_project_effective_connector(&p, rd_project_source(&p, "plain"), &e, &err), RD_OK);
    assert_string_equal(e.name, "redshift");
    assert_string_equal(e.workgroup, "wg");
    assert_null(e.cluster_identifier);
    assert_string_equal(e.database, "main_db");
    assert_int_equal(e.allow_host_access, 1);

    assert_int_equal(rd_project_effective_connector(&p, rd_project_source(&p, "moved"), &e, &err), RD_OK);
    assert_string_equal(e.name, "redshift");
    assert_null(e.workgroup); /* the source's cluster replaces the connector's workgroup */
    assert_string_equal(e.cluster_identifier, "other-cluster");
    assert_string_equal(e.database, "other_db");
    assert_string_equal(e.region, "us-east-1");
    assert_string_equal(e.output_location, "s3://bucket/p/");
    assert_int_equal(e.allow_host_access, 0);
    /* borrowed, not copied */
    assert_ptr_equal(e.region, rd_project_connector(&p, "redshift")->region);

    /* a source whose connector is not in the project */
    rd_source ghost = { 0 };
    ghost.name = "ghost";
    ghost.file = "sources/ghost.yaml";
    ghost.connector = "nope";
    ghost.overrides.allow_host_access = -1;
    assert_int_equal(rd_project_effective_connector(&p, &ghost, &e, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "nope"));
    rd_project_free(&p);
    remove_dir(dir);
}

/* ---- bad inputs ------------------------------------------------------------------------------------------- */

#define PROJ "redduck.yaml", "name: t\n"
#define CONN "connectors/redshift.yaml", "type: redshift\nworkgroup: wg\n"
#define CONN2 "connectors/other.yaml", "type: redshift\nworkgroup: wg2\n"

typedef struct bad_case {
    const char *files[12]; /* path, text, ...; NULL-terminated */
    const char *where;     /* "FILE:LINE: " relative to the folder */
    const char *phrase;    /* in the message */
    const char *secret;    /* never in the message */
} bad_case;

static const bad_case bad_cases[] = {
    /* redduck.yaml */
    { { "redduck.yaml", "name: t\nparallel: [1, 2\n" }, "redduck.yaml:3: ", "YAML syntax error", NULL },
    { { "redduck.yaml", "name: t\nparallel: 'two\n" }, "redduck.yaml:2: ", "YAML syntax error: single-quoted scalar",
      NULL },
    { { "redduck.yaml", "name: a\nparallel: 2\nname: b\n" }, "redduck.yaml:3: ", "duplicate key", NULL },
    { { "redduck.yaml", "name: t\nparalel: 3\n" }, "redduck.yaml:2: ",
      "unknown key `paralel` (did you mean `parallel`?)",
      NULL },
    { { "redduck.yaml", "parallel: two\n" }, "redduck.yaml:1: ", "`parallel` must be an integer, not `two`", NULL },
    { { "redduck.yaml", "name: t\nparallel: 64\n" }, "redduck.yaml:2: ", "`parallel` must be 1..32", NULL },
    { { "redduck.yaml", "# project\nname:\n  first: a\n" }, "redduck.yaml:2: ",
      "`name` must be a string, not a mapping",
      NULL },
    { { "redduck.yaml", "- name\n" }, "redduck.yaml:1: ", "redduck.yaml must be a mapping", NULL },
    /* connectors */
    { { PROJ, "connectors/redshift.yaml", "type: redshift\nworkgroup: wg\nwrkgroup: x\n" },
      "connectors/redshift.yaml:3: ", "unknown key `wrkgroup` (did you mean `workgroup`?)", NULL },
    { { PROJ, "connectors/redshift.yaml", "workgroup: wg\n" }, "connectors/redshift.yaml:1: ",
      "missing `type: redshift`", NULL },
    { { PROJ, "connectors/redshift.yaml", "workgroup: wg\ntype: postgres\n" }, "connectors/redshift.yaml:2: ",
      "`type` must be `redshift`, not `postgres`", NULL },
    { { PROJ, "connectors/redshift.yaml", "type: redshift\nworkgroup: wg\ncluster_identifier: c\n" },
      "connectors/redshift.yaml:1: ", "not both", NULL },
    { { PROJ, "connectors/redshift.yaml", "type: redshift\ndatabase: dev\n" }, "connectors/redshift.yaml:1: ",
      "set `workgroup` (Redshift Serverless) or `cluster_identifier`", NULL },
    { { PROJ, "connectors/redshift.yaml",
        "type: redshift\nworkgroup: wg\naws_secret_access_key: SUPERSECRET123\nallow_host_access: 7\n" },
      "connectors/redshift.yaml:4: ", "`allow_host_access` must be true or false, not `7`", "SUPERSECRET123" },
    { { PROJ, "connectors/redshift.yaml", "type: redshift\nworkgroup: \"{{ .env.WG }}\"\n" },
      "connectors/redshift.yaml:2: ", "{{ .env.WG }} is not set in ", NULL },
    { { PROJ, "connectors/redshift.yaml", "type: redshift\nworkgroup:\n  - a\n" }, "connectors/redshift.yaml:2: ",
      "`workgroup` must be a string, not a list", NULL },
    { { PROJ, "connectors/redshift.yaml", "type: redshift\nworkgroup: {{ .env.WG }}\n" },
      "connectors/redshift.yaml:2: ",
      "`workgroup` must be a string, not a mapping (a template must be quoted", NULL },
    /* .env */
    { { PROJ, CONN, ".env", "A=1\nconnector.redshift.wrkgroup=x\n" }, ".env:2: ",
      "unknown connector key `wrkgroup` (did you mean `workgroup`?)", NULL },
    { { PROJ, CONN, ".env", "connector.nope.workgroup=x\n" }, ".env:1: ", "no connector `nope`", NULL },
    { { PROJ, CONN, ".env", "connector.redshift.allow_host_access=SUPERSECRET123\n" }, ".env:1: ",
      "must be true or false", "SUPERSECRET123" },
    /* sources */
    { { PROJ, CONN, "sources/a.yaml", "table_name: a\n" }, "sources/a.yaml:1: ", "missing `sql:`", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\ntable: public.t\n" }, "sources/a.yaml:2: ",
      "only one of `sql` (a query) and `table`", NULL },
    { { PROJ, CONN, CONN2, "sources/a.yaml", "connector: nope\nsql: select 1\n" }, "sources/a.yaml:1: ",
      "no connector `nope` (connectors: other, redshift)", NULL },
    { { PROJ, CONN, CONN2, "sources/a.yaml", "sql: select 1\n" }, "sources/a.yaml:1: ",
      "set `connector:` (the project has 2 connectors: other, redshift)", NULL },
    { { PROJ, "sources/a.yaml", "sql: select 1\n" }, "sources/a.yaml:1: ", "no connector to run with", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\ntable_name: t\n", "sources/b.yaml",
        "sql: select 2\n\ntable_name: T\n" },
      "sources/b.yaml:3: ", "table `T` is also written by ", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\ntable_name: my-table\n" }, "sources/a.yaml:2: ",
      "`table_name` must be a plain identifier", NULL },
    { { PROJ, CONN, "sources/my-source.yaml", "sql: select 1\n" }, "sources/my-source.yaml:1: ",
      "`my-source` (from the file name) is not a plain identifier", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: |\n  select *\n  from t\n  where x = '{{ .env.MISSING }}'\n" },
      "sources/a.yaml:4: ", "{{ .env.MISSING }} is not set in ", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: \"select {{ vars.x }}\"\n" }, "sources/a.yaml:1: ",
      "unsupported template", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nincremental:\n  unique_key: id\n" }, "sources/a.yaml:2: ",
      "`incremental` needs `column:`", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nincremental:\n  column: a\n  uniq_key: id\n" },
      "sources/a.yaml:4: ", "did you mean `unique_key`?", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nincremental: updated_at\n" }, "sources/a.yaml:2: ",
      "`incremental` must be a mapping", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nvia: s3\n" }, "sources/a.yaml:2: ",
      "`via` must be auto, unload or data-api, not `s3`", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\ncompression: zstd\n" }, "sources/a.yaml:2: ",
      "`compression` must be auto or fast", NULL },
    { { PROJ, CONN, "sources/a.yaml", "type: model\nsql: select 1\n" }, "sources/a.yaml:1: ",
      "`type` must be `source`", NULL },
    { { PROJ, CONN, "sources/a.yaml", "- a\n- b\n" }, "sources/a.yaml:1: ", "a source must be a mapping", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nconcurrency: 0\n" }, "sources/a.yaml:2: ",
      "`concurrency` must be 1..256", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nmax_file_size_mb: 1.5\n" }, "sources/a.yaml:2: ",
      "`max_file_size_mb` must be an integer", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nkeep_staging: [1]\n" }, "sources/a.yaml:2: ",
      "`keep_staging` must be true or false, not a list", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\ncolour: red\n" }, "sources/a.yaml:2: ",
      "unknown key `colour` in a source (known keys: type, connector, sql", NULL },
    { { PROJ, CONN, ".env", "S=SUPERSECRET123\n", "sources/a.yaml", "sql: select 1\ntimeout: \"{{ .env.S }}\"\n" },
      "sources/a.yaml:2: ", "`timeout` must be an integer", "SUPERSECRET123" },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nworkgroup: w\ncluster_identifier: c\n" }, "sources/a.yaml:3: ",
      "only one of `workgroup` and `cluster_identifier`", NULL },
    /* hostile YAML: anchors and aliases refused outright (an alias bomb is a few lines), wherever they are */
    { { "redduck.yaml", "# x\nname: &n shop\nduckdb: *n\n" }, "redduck.yaml:2: ",
      "YAML anchors (`&name`) are not allowed in project files: `name`", NULL },
    { { "redduck.yaml", "name: t\nduckdb: *n\n" }, "redduck.yaml:2: ",
      "YAML aliases (`*name`) are not allowed in project files: `duckdb`", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nincremental:\n  <<: *base\n  column: a\n" },
      "sources/a.yaml:3: ", "YAML aliases (`*name`) are not allowed", NULL },
    { { "redduck.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nname: *c\n" },
      "redduck.yaml:1: ", "YAML anchors (`&name`) are not allowed", NULL },
    /* NUL characters: the key is named, never the value */
    { { PROJ, CONN, "sources/a.yaml", "table_name: a\nsql: \"select 1 \\0 and SUPERSECRET123\"\n" },
      "sources/a.yaml:2: ", "the value of `sql` holds a NUL character", "SUPERSECRET123" },
    { { PROJ, "connectors/redshift.yaml", "type: redshift\nworkgroup: \"wg\\x00SUPERSECRET123\"\n" },
      "connectors/redshift.yaml:2: ", "the value of `workgroup` holds a NUL character", "SUPERSECRET123" },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\nincremental:\n  column: \"a\\0b\"\n" },
      "sources/a.yaml:3: ", "the value of `column` holds a NUL character", NULL },
    { { "redduck.yaml", "name: t\n\"par\\0allel\": 2\n" }, "redduck.yaml:2: ", "a key holds a NUL character",
      NULL },
    /* UTF-8 only (libfyaml loops forever on a directive holding an invalid sequence) */
    { { "redduck.yaml", "name: t\nduckdb: caf\xC3(\n" }, "redduck.yaml:2: ", "the file is not valid UTF-8", NULL },
    { { "redduck.yaml", "%m\xC2\xC2" "A" }, "redduck.yaml:1: ", "the file is not valid UTF-8", NULL },
    /* one document per file */
    { { "redduck.yaml", "name: t\n---\nname: u\n" }, "redduck.yaml:2: ", "a second YAML document (`---`)", NULL },
    { { PROJ, CONN, "sources/a.yaml", "---\nsql: select 1\n...\n---\n" }, "sources/a.yaml:4: ",
      "a second YAML document", NULL },
    /* nesting: RD_PROJECT_MAX_DEPTH levels (the file's mapping is one) are read, one more is refused */
    { { "redduck.yaml", "name: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n" }, "redduck.yaml:1: ",
      "`name` must be a string, not a list", NULL },
    { { "redduck.yaml", "name: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n" }, "redduck.yaml:1: ",
      "nested more than 32 levels deep under `name`", NULL },
    /* output_location is checked by the one S3 location validator (services/s3.c) */
    { { PROJ, "connectors/redshift.yaml", "type: redshift\nworkgroup: wg\noutput_location: s3://bucket/a/../b/\n" },
      "connectors/redshift.yaml:3: ", "`output_location`: 's3://bucket/a/../b/' has a '..' segment", NULL },
    { { PROJ, "connectors/redshift.yaml", "type: redshift\nworkgroup: wg\noutput_location: s3://My_Bucket/x\n" },
      "connectors/redshift.yaml:3: ", "has no valid bucket name (3-63 characters", NULL },
    { { PROJ, "connectors/redshift.yaml", "type: redshift\nworkgroup: wg\noutput_location: bucket/x\n" },
      "connectors/redshift.yaml:3: ", "is not an S3 location", NULL },
    { { PROJ, CONN, ".env", "A=1\nconnector.redshift.output_location=s3://bucket/./x\n" }, ".env:2: ",
      "has a '.' segment", NULL },
    { { PROJ, CONN, "sources/a.yaml", "sql: select 1\noutput_location: \"s3://bucket/x\\ty\"\n" },
      "sources/a.yaml:2: ", "`output_location`: the S3 location holds a control character", NULL },
    /* the first error in file order: sources/a before sources/b */
    { { PROJ, CONN, "sources/b.yaml", "sql: select 1\nbogus: 1\n", "sources/a.yaml", "sql: select 1\n\nbogus2: 1\n" },
      "sources/a.yaml:3: ", "unknown key `bogus2`", NULL },
};

static void test_bad_inputs(void **state)
{
    (void)state;
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    assert_true(n >= 15);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        const bad_case *bc = &bad_cases[i];
        char *dir = make_dir();
        for (size_t f = 0; bc->files[f]; f += 2)
            put(dir, bc->files[f], bc->files[f + 1]);
        rd_project p;
        memset(&p, 0x5a, sizeof p);
        rd_error err;
        rd_error_clear(&err);
        rd_status st = rd_project_load(dir, &p, &err);
        char prefix[4096];
        snprintf(prefix, sizeof prefix, "%s/%s", dir, bc->where);
        if (st != RD_E_CONFIG || strncmp(err.message, prefix, strlen(prefix)) != 0 ||
            !strstr(err.message, bc->phrase) || (bc->secret && strstr(err.message, bc->secret))) {
            print_error("case %zu: status %d, message:\n  %s\nwanted prefix %s and phrase %s\n", i, (int)st,
                        err.message, bc->where, bc->phrase);
            failed++;
        }
        if (((const unsigned char *)&p)[0] != 0x5a) { /* out is written only on success */
            print_error("case %zu: the project was written on failure\n", i);
            failed++;
        }
        remove_dir(dir);
    }
    assert_int_equal(failed, 0);
}

static void test_missing_project_file(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "connectors/redshift.yaml", "type: redshift\nworkgroup: wg\n");
    rd_project p;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_project_load(dir, &p, &err), RD_E_CONFIG);
    char want[4096];
    snprintf(want, sizeof want, "no redduck.yaml in %s (create one with `redduck init %s`)", dir, dir);
    assert_string_equal(err.message, want);

    /* a broken .env is reported with its line */
    put(dir, "redduck.yaml", "name: t\n");
    put(dir, ".env", "A=1\nB='unterminated\n");
    rd_error_clear(&err);
    assert_int_equal(rd_project_load(dir, &p, &err), RD_E_CONFIG);
    snprintf(want, sizeof want, "%s/.env:", dir);
    assert_true(strncmp(err.message, want, strlen(want)) == 0);
    remove_dir(dir);

    rd_error_clear(&err);
    assert_int_equal(rd_project_load("/nonexistent/redduck-project", &p, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "no redduck.yaml in /nonexistent/redduck-project"));
}

/* Bytes a text editor would not write: a NUL byte, a file over the limit, 100k keys (read in linear time). */
static void test_hostile_files(void **state)
{
    (void)state;
    char *dir = make_dir();
    rd_project p;
    rd_error err;
    char want[4096];

    /* a NUL byte used to end the file silently: everything after it was dropped */
    static const char nul[] = "name: t\nparallel: 2\0\nbogus: 1\n";
    put_bytes(dir, "redduck.yaml", nul, sizeof nul - 1);
    rd_error_clear(&err);
    assert_int_equal(rd_project_load(dir, &p, &err), RD_E_CONFIG);
    snprintf(want, sizeof want, "%s/redduck.yaml:2: NUL byte in the file", dir);
    assert_non_null(strstr(err.message, want));

    /* larger than RD_PROJECT_FILE_MAX_BYTES: refused before parsing */
    size_t big = RD_PROJECT_FILE_MAX_BYTES + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, '#', big);
    put_bytes(dir, "redduck.yaml", text, big);
    rd_error_clear(&err);
    assert_int_equal(rd_project_load(dir, &p, &err), RD_E_CONFIG);
    snprintf(want, sizeof want, "%s/redduck.yaml: larger than 1024 KiB", dir);
    assert_non_null(strstr(err.message, want));
    put_bytes(dir, "redduck.yaml", text, big - 1); /* at the limit: a comment-only file */
    load_ok(dir, &p);
    rd_project_free(&p);

    /* 100k keys: the first unknown key is reported (libfyaml's duplicate check made this quadratic) */
    size_t len = 0;
    len += (size_t)snprintf(text + len, big - len, "name: t\n");
    for (int i = 0; i < 100000; i++)
        len += (size_t)snprintf(text + len, big - len, "k%d: 1\n", i);
    assert_true(len < big - 1);
    put_bytes(dir, "redduck.yaml", text, len);
    rd_error_clear(&err);
    assert_int_equal(rd_project_load(dir, &p, &err), RD_E_CONFIG);
    snprintf(want, sizeof want, "%s/redduck.yaml:2: unknown key `k0`", dir);
    assert_non_null(strstr(err.message, want));
    /* and 80k known keys, all duplicates: the second one is reported */
    len = 0;
    for (int i = 0; i < 80000; i++)
        len += (size_t)snprintf(text + len, big - len, "parallel: %d\n", i % 9 + 1);
    assert_true(len < big - 1);
    put_bytes(dir, "redduck.yaml", text, len);
    rd_error_clear(&err);
    assert_int_equal(rd_project_load(dir, &p, &err), RD_E_CONFIG);
    snprintf(want, sizeof want, "%s/redduck.yaml:2: duplicate key `parallel` (also on line 1)", dir);
    assert_non_null(strstr(err.message, want));
    free(text);
    remove_dir(dir);
}

/* The one S3 location validator, used by output_location and ingest --staging. */
static void test_s3_locations(void **state)
{
    (void)state;
    static const char *const good[] = { "s3://bucket", "s3://bucket/", "s3://my.bucket-1/a/b/", "s3://abc/a..b/.x/",
                                        "s3://123/x" };
    static const char *const bad[] = { "s3://ab/x", "s3://Bucket/x", "s3://bu_cket/x", "s3://-bucket/x",
                                       "s3://bucket-/x", "s3://my..bucket/x", "s3://bucket/..", "s3://bucket/a/../b",
                                       "s3://bucket/./a", "s3://bucket/a/.", "s3://bucket/a\nb", "s3://bucket/a\x7f",
                                       "bucket/x", "s3:/bucket/x" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *b = NULL, *pre = NULL;
        rd_error err;
        rd_error_clear(&err);
        if (rd_s3_parse_url(good[i], &b, &pre, &err) != RD_OK)
            fail_msg("%s refused: %s", good[i], err.message);
        free(b);
        free(pre);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *b = (char *)0x1, *pre = (char *)0x1;
        rd_error err;
        rd_error_clear(&err);
        if (rd_s3_parse_url(bad[i], &b, &pre, &err) != RD_E_USAGE)
            fail_msg("%s accepted", bad[i]);
        assert_null(b);
        assert_null(pre);
        assert_non_null(strstr(err.message, "s3://bucket/"));
    }
}

static int has_key(char **keys, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], k) == 0)
            return 1;
    return 0;
}

/* The keys `env configure` asks for come from the parsed YAML: a template in a comment is not one. */
static void test_env_keys(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "redduck.yaml", "# name: \"{{ .env.IN_COMMENT }}\"\nname: \"{{ .env.PROJECT_NAME }}\"\n");
    put(dir, "connectors/main.yaml",
        "type: redshift\n"
        "# workgroup: \"{{ .env.REDSHIFT_WORKGROUP }}\"\n"
        "workgroup: \"{{ .env.WG }}-{{ .env.WG }}\"\n"
        "region: eu-west-1 # {{ .env.TRAILING_COMMENT }}\n");
    put(dir, "sources/a.yaml",
        "sql: |\n"
        "  select * from t -- {{ .env.IN_SQL }}\n"
        "  where a = '{{.env.A}}' and b = '{{ vars.x }}'\n"
        "database: \"{{ .env.WG }}\"\n"
        "#sql: {{ .env.COMMENTED }}\n");
    char **keys = NULL;
    size_t n = 0;
    rd_error err;
    rd_error_clear(&err);
    assert_int_equal(rd_project_env_keys(dir, &keys, &n, &err), RD_OK);
    static const char *const want[] = { "connector.main.aws_access_key_id", "connector.main.aws_secret_access_key",
                                        "WG", "IN_SQL", "A", "PROJECT_NAME" };
    for (size_t i = 0; i < n && i < 6; i++)
        assert_string_equal(keys[i], want[i]);
    assert_int_equal(n, 6);
    assert_false(has_key(keys, n, "IN_COMMENT") || has_key(keys, n, "REDSHIFT_WORKGROUP") ||
                 has_key(keys, n, "TRAILING_COMMENT") || has_key(keys, n, "COMMENTED"));
    rd_project_keys_free(keys, n);

    /* the loader's limits hold here too */
    put(dir, "sources/a.yaml", "sql: &s \"{{ .env.A }}\"\n");
    rd_error_clear(&err);
    assert_int_equal(rd_project_env_keys(dir, &keys, &n, &err), RD_E_CONFIG);
    assert_non_null(strstr(err.message, "sources/a.yaml:1: YAML anchors"));
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_project),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_env_connector_overrides),
        cmocka_unit_test(test_effective_connector),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_missing_project_file),
        cmocka_unit_test(test_hostile_files),
        cmocka_unit_test(test_s3_locations),
        cmocka_unit_test(test_env_keys),
    };
    return cmocka_run_group_tests_name("project", tests, NULL, NULL);
}
