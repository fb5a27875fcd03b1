/* init.c — rd_project_init (see project.h): lays out a new project folder (redduck.yaml,
 * connectors/redshift.yaml, sources/example.yaml, data/, .gitignore, a 0600 .env) with every option written
 * as a comment. Owns the starter text; does not print anything or parse arguments (src/cli does). */
#include "redduck/project.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "redduck/buf.h"

/* ---- the starter files -------------------------------------------------------------------------------- */

/* value as a double-quoted YAML scalar. */
static void yaml_quoted(rd_buf *b, const char *value)
{
    rd_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\')
            rd_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            rd_buf_puts(b, "\\n");
        else if (*p == '\t')
            rd_buf_puts(b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            rd_buf_printf(b, "\\x%02x", *p);
        else
            rd_buf_putc(b, (char)*p);
    }
    rd_buf_putc(b, '"');
}

/* `key: "value"` when the flag was given, else the commented placeholder line. */
static void yaml_setting(rd_buf *b, const char *key, const char *value, const char *placeholder)
{
    if (value) {
        rd_buf_printf(b, "%s: ", key);
        yaml_quoted(b, value);
        rd_buf_putc(b, '\n');
    } else
        rd_buf_printf(b, "# %s: %s\n", key, placeholder);
}

static void project_yaml(rd_buf *b)
{
    rd_buf_puts(b,
                "# redduck.yaml — this folder is a redduck project: each sources/*.yaml is copied from Redshift\n"
                "# (through a connectors/*.yaml) into one local DuckDB file. `{{ .env.KEY }}` in any value is\n"
                "# replaced by KEY from .env (quote it: \"{{ .env.KEY }}\").\n"
                "\n"
                "# name: the project's name (default: the folder's name)\n"
                "# name: my_project\n"
                "\n"
                "# duckdb: the DuckDB file every source is written to, relative to this folder\n"
                "duckdb: data/redduck.duckdb\n"
                "\n"
                "# parallel: how many sources are copied at once (1..32)\n"
                "parallel: 2\n");
}

static void connector_yaml(rd_buf *b, const rd_project_init_options *o)
{
    rd_buf_puts(b,
                "# connectors/redshift.yaml — how to reach Redshift. The connector's name is the file's name\n"
                "# (`redshift`); sources name it with `connector: redshift`. Every key can also be set in .env as\n"
                "# connector.redshift.KEY=value (it wins over this file): keep secrets and per-machine values there.\n"
                "type: redshift\n"
                "\n"
                "# Exactly one of:\n"
                "#   workgroup: a Redshift Serverless workgroup\n"
                "#   cluster_identifier: a provisioned cluster\n");
    if (o->workgroup || o->cluster_id) {
        yaml_setting(b, "workgroup", o->workgroup, "\"{{ .env.REDSHIFT_WORKGROUP }}\"");
        yaml_setting(b, "cluster_identifier", o->cluster_id, "\"{{ .env.REDSHIFT_CLUSTER_ID }}\"");
    } else
        rd_buf_puts(b, "# workgroup: \"{{ .env.REDSHIFT_WORKGROUP }}\"\n"
                       "# cluster_identifier: \"{{ .env.REDSHIFT_CLUSTER_ID }}\"\n");
    rd_buf_puts(b, "\n# database: the database to read (default: dev)\n");
    yaml_setting(b, "database", o->database, "dev");
    rd_buf_puts(b,
                "\n"
                "# output_location: the S3 prefix UNLOAD stages Parquet files under (a unique folder per run,\n"
                "#   deleted afterwards). Without it results come through the Data API (fine for small ones).\n");
    yaml_setting(b, "output_location", o->staging, "\"{{ .env.REDSHIFT_STAGING }}\"  # s3://bucket/prefix/");
    rd_buf_puts(b, "\n# region: the AWS region of the workgroup/cluster and of the bucket (default: AWS_REGION,\n"
                   "#   then the profile's region)\n");
    yaml_setting(b, "region", o->region, "us-east-1");
    rd_buf_puts(b,
                "\n"
                "# role_arn: the IAM role Redshift assumes to write the UNLOAD files (default: the\n"
                "#   workgroup's/cluster's default IAM role)\n"
                "# role_arn: arn:aws:iam::123456789012:role/redshift-unload\n"
                "\n"
                "# Database identity (default: your IAM identity, through GetCredentials /\n"
                "#   GetClusterCredentialsWithIAM):\n"
                "# db_user: a database user (provisioned clusters: GetClusterCredentials)\n"
                "# secret_arn: a Secrets Manager secret holding the database user and password\n"
                "\n"
                "# AWS credentials (default: the AWS CLI's chain: environment, ~/.aws profiles, SSO, instance role):\n"
                "# profile: a profile from ~/.aws/config\n"
                "# Explicit keys instead of that chain. Never write them in this file: `redduck env configure`\n"
                "# stores them in .env as connector.redshift.KEY=value.\n"
                "# aws_access_key_id: the access key id (AKIA...)\n"
                "# aws_secret_access_key: its secret\n"
                "# aws_session_token: the session token of temporary keys\n"
                "# allow_host_access: false to refuse credentials found on this machine (then explicit keys are\n"
                "#   required; default: true)\n"
                "# allow_host_access: true\n"
                "\n"
                "# endpoint_url: send every AWS request to this URL (a VPC endpoint, an emulator)\n"
                "# endpoint_url: http://127.0.0.1:4566\n");
}

static void source_yaml(rd_buf *b)
{
    rd_buf_puts(b,
                "# sources/example.yaml — one table copied from Redshift into the project's DuckDB file. The\n"
                "# source's name is the file's name (`example`); add one file per table. `redduck run` copies\n"
                "# them all, `redduck run example` only this one.\n"
                "type: source\n"
                "\n"
                "# connector: the connectors/NAME.yaml to read through (may be left out while there is one)\n"
                "connector: redshift\n"
                "\n"
                "# Exactly one of:\n"
                "#   sql: a query whose result is copied (any SELECT; multi-line with `sql: |`)\n"
                "#   table: a whole table, `name` or `schema.name`\n"
                "sql: select current_date as today, 'hello from redshift' as greeting\n"
                "# table: public.orders\n"
                "\n"
                "# table_name: the DuckDB table written (default: the file's name)\n"
                "# table_name: example\n"
                "\n"
                "# incremental: copy only rows whose `column` is past its largest value already copied; with\n"
                "#   unique_key, rows that come again replace the old ones (upsert) instead of being appended.\n"
                "#   Without it every run replaces the whole table (atomically).\n"
                "# incremental:\n"
                "#   column: updated_at\n"
                "#   unique_key: id\n"
                "\n"
                "# How to copy (defaults are usually right):\n"
                "# via: auto | unload | data-api    (auto: UNLOAD through S3 when output_location is set)\n"
                "# iam_role: the role UNLOAD writes to S3 with (default: the connector's role_arn)\n"
                "# kms_key: encrypt the staged files with this KMS key\n"
                "# max_file_size_mb: UNLOAD MAXFILESIZE, 5..6200\n"
                "# concurrency: parallel GET requests, 1..256 (default: 16)\n"
                "# part_size_mb: files larger than this are fetched as ranged GETs of this size (default: 32)\n"
                "# timeout: seconds before the Redshift statement is cancelled (default: no limit)\n"
                "# keep_staging: true to keep the staged S3 files (default: false)\n"
                "# compression: auto | fast    (fast: loads about a third faster, the file is larger)\n"
                "\n"
                "# Any connector key (workgroup, database, output_location, region, ...) set here overrides the\n"
                "# connector's for this source only.\n");
}

static const char env_text[] =
    "# .env — per-machine settings and secrets for this project (mode 0600; keep it out of git).\n"
    "# KEY=value lines: `{{ .env.KEY }}` in the YAML files is replaced by the value, and\n"
    "# connector.NAME.KEY=value sets connector NAME's KEY. `redduck env set KEY VALUE` edits this file;\n"
    "# `redduck env configure` asks for the usual keys.\n"
    "#\n"
    "# REDSHIFT_WORKGROUP=my-workgroup\n"
    "# REDSHIFT_CLUSTER_ID=my-cluster\n"
    "# REDSHIFT_STAGING=s3://my-bucket/redduck/\n"
    "#\n"
    "# Explicit AWS keys (otherwise the AWS CLI's chain is used: environment, ~/.aws, SSO, instance role):\n"
    "# connector.redshift.aws_access_key_id=AKIA...\n"
    "# connector.redshift.aws_secret_access_key=...\n"
    "# connector.redshift.aws_session_token=...\n"
    "# connector.redshift.profile=my-profile\n"
    "# ... or under the usual names, referenced from connectors/redshift.yaml as\n"
    "# aws_access_key_id: \"{{ .env.AWS_ACCESS_KEY_ID }}\" (and so on):\n"
    "# AWS_ACCESS_KEY_ID=AKIA...\n"
    "# AWS_SECRET_ACCESS_KEY=...\n";

/* ---- files ---------------------------------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
    rd_buf b = RD_BUF_INIT;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (rd_buf_append(&b, dir, n) != RD_OK || rd_buf_printf(&b, "/%s", name) != RD_OK) {
        rd_buf_free(&b);
        return NULL;
    }
    return rd_buf_detach(&b);
}

static rd_status write_all(int fd, const char *path, const char *data, size_t len, rd_error *err)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return rd_error_set(err, RD_E_IO, "cannot write %s: %s", path, strerror(errno));
        data += n;
        len -= (size_t)n;
    }
    return RD_OK;
}

/* Creates path with content (mode & ~umask); an existing file is an error unless overwrite. */
static rd_status write_file(const char *path, const char *content, mode_t mode, int overwrite, rd_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL), mode);
    if (fd < 0 && errno == EEXIST)
        return rd_error_set(err, RD_E_CONFIG, "%s already exists (use --force to overwrite it)", path);
    if (fd < 0)
        return rd_error_set(err, RD_E_IO, "cannot create %s: %s", path, strerror(errno));
    rd_status st = write_all(fd, path, content, strlen(content), err);
    if (close(fd) != 0 && st == RD_OK)
        st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", path, strerror(errno));
    return st;
}

static int has_line(const char *text, const char *const *variants)
{
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r' || line[n - 1] == '\t'))
            n--;
        for (size_t i = 0; variants[i]; i++)
            if (strlen(variants[i]) == n && memcmp(line, variants[i], n) == 0)
                return 1;
        if (!end)
            break;
        line = end + 1;
    }
    return 0;
}

/* Adds `.env` and `data/` to path unless it already ignores them. *changed: 0 kept, 1 created, 2 appended. */
static rd_status update_gitignore(const char *path, int *changed, rd_error *err)
{
    static const char *const env_lines[] = { ".env", "/.env", NULL };
    static const char *const data_lines[] = { "data/", "/data/", "data", "/data", NULL };
    rd_buf old = RD_BUF_INIT, add = RD_BUF_INIT;
    rd_status st = RD_OK;
    *changed = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            rd_buf_append(&old, chunk, n);
        fclose(f);
    } else if (errno != ENOENT) {
        return rd_error_set(err, RD_E_IO, "cannot read %s: %s", path, strerror(errno));
    }
    const char *text = rd_buf_cstr(&old);
    if (old.len > 0 && text[old.len - 1] != '\n')
        rd_buf_putc(&add, '\n');
    size_t prefix = add.len;
    if (!has_line(text, env_lines))
        rd_buf_puts(&add, ".env\n");
    if (!has_line(text, data_lines))
        rd_buf_puts(&add, "data/\n");
    if (add.len > prefix) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
        if (fd < 0)
            st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", path, strerror(errno));
        else {
            st = write_all(fd, path, add.data, add.len, err);
            if (close(fd) != 0 && st == RD_OK)
                st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", path, strerror(errno));
        }
        *changed = old.data ? 2 : 1;
    }
    rd_buf_free(&old);
    rd_buf_free(&add);
    return st;
}

/* ---- the project ------------------------------------------------------------------------------------------ */

void rd_project_init_result_free(rd_project_init_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < RD_PROJECT_INIT_NFILES; i++)
        free(r->files[i]);
    free(r->data_dir);
    free(r->env_path);
    free(r->gitignore_path);
    memset(r, 0, sizeof *r);
}

rd_status rd_project_init(const rd_project_init_options *o, rd_project_init_result *out, rd_error *err)
{
    if (!o || !o->dir || !o->dir[0])
        return rd_error_set(err, RD_E_USAGE, "no project folder given");
    if (o->workgroup && o->cluster_id)
        return rd_error_set(err, RD_E_USAGE,
                            "give --workgroup (Serverless) or --cluster-id (provisioned), not both");
    if (o->staging && strncmp(o->staging, "s3://", 5) != 0)
        return rd_error_set(err, RD_E_USAGE, "--staging must be an s3://bucket/prefix URL, not '%s'", o->staging);
    static const char *const rels[RD_PROJECT_INIT_NFILES] = { "redduck.yaml", "connectors/redshift.yaml",
                                                              "sources/example.yaml" };
    rd_buf text[RD_PROJECT_INIT_NFILES] = { RD_BUF_INIT, RD_BUF_INIT, RD_BUF_INIT };
    rd_project_init_result r = { 0 };
    project_yaml(&text[0]);
    connector_yaml(&text[1], o);
    source_yaml(&text[2]);
    r.env_path = path_join(o->dir, ".env");
    r.gitignore_path = path_join(o->dir, ".gitignore");
    char *subdirs[3] = { path_join(o->dir, "connectors"), path_join(o->dir, "sources"), path_join(o->dir, "data") };
    rd_status st = r.env_path && r.gitignore_path && subdirs[0] && subdirs[1] && subdirs[2]
                       ? RD_OK
                       : rd_error_set(err, RD_E_INTERNAL, "out of memory");
    for (size_t i = 0; st == RD_OK && i < RD_PROJECT_INIT_NFILES; i++) {
        if (!text[i].data || !(r.files[i] = path_join(o->dir, rels[i])))
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    /* Refuse before writing anything. */
    for (size_t i = 0; st == RD_OK && !o->force && i < RD_PROJECT_INIT_NFILES; i++) {
        struct stat sb;
        if (lstat(r.files[i], &sb) == 0)
            st = rd_error_set(err, RD_E_CONFIG, "%s already exists (use --force to overwrite it)", r.files[i]);
    }
    if (st == RD_OK)
        st = rd_mkdirs(o->dir, 0777, err);
    for (size_t i = 0; st == RD_OK && i < 3; i++)
        st = rd_mkdirs(subdirs[i], 0777, err);
    for (size_t i = 0; st == RD_OK && i < RD_PROJECT_INIT_NFILES; i++)
        st = write_file(r.files[i], rd_buf_cstr(&text[i]), 0666, o->force, err);
    if (st == RD_OK) {
        /* .env may hold secrets: created 0600, never overwritten. */
        int fd = open(r.env_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            r.env_created = 1;
            st = write_all(fd, r.env_path, env_text, sizeof env_text - 1, err);
            if (close(fd) != 0 && st == RD_OK)
                st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", r.env_path, strerror(errno));
        } else if (errno != EEXIST)
            st = rd_error_set(err, RD_E_IO, "cannot create %s: %s", r.env_path, strerror(errno));
    }
    if (st == RD_OK)
        st = update_gitignore(r.gitignore_path, &r.gitignore_changed, err);
    for (size_t i = 0; i < RD_PROJECT_INIT_NFILES; i++)
        rd_buf_free(&text[i]);
    free(subdirs[0]);
    free(subdirs[1]);
    if (st == RD_OK && out) {
        r.data_dir = subdirs[2];
        *out = r;
    } else {
        free(subdirs[2]);
        rd_project_init_result_free(&r);
    }
    return st;
}
