/* cmd_init.c — `redduck init [DIR]`: lays out a new project (redduck.yaml, connectors/redshift.yaml,
 * sources/example.yaml, data/, .gitignore, a 0600 .env) with every option written as a comment. Owns the
 * starter text only; the project's rules live in src/project (project.h). Never overwrites a file without
 * --force, and never overwrites .env at all (it may hold secrets). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "redduck/buf.h"

static const char init_help[] =
    "usage: redduck init [DIR] [--workgroup WG | --cluster-id ID] [--database DB]\n"
    "                    [--staging s3://bucket/prefix] [--region REGION] [--force]\n"
    "\n"
    "Creates a redduck project in DIR (default: the current directory), laid out like a Rill project:\n"
    "  redduck.yaml              the project: its DuckDB file and how many sources run at once\n"
    "  connectors/redshift.yaml  how to reach Redshift (workgroup or cluster, database, staging bucket)\n"
    "  sources/example.yaml      one table to copy (a query or a whole table); add one file per table\n"
    "  data/                     where the DuckDB file goes (git-ignored)\n"
    "  .env                      secrets and per-machine settings, mode 0600 (git-ignored; never\n"
    "                            overwritten)\n"
    "Every option is present in the files as a comment explaining it.\n"
    "\n"
    "Options:\n"
    "  --workgroup WG        Redshift Serverless workgroup\n"
    "  --cluster-id ID       provisioned cluster identifier (instead of --workgroup)\n"
    "  --database DB         database (default: dev)\n"
    "  --staging URL         s3://bucket/prefix/ where UNLOAD stages files (output_location)\n"
    "  --region REGION       AWS region of the workgroup/cluster and the bucket\n"
    "  --force               overwrite redduck.yaml, connectors/redshift.yaml and sources/example.yaml\n"
    "\n"
    "Exit codes: 0 ok, 2 usage, 1 other failure (a file exists, a folder cannot be created).\n";

typedef struct init_options {
    const char *dir, *workgroup, *cluster_id, *database, *staging, *region;
    int force;
} init_options;

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

static void connector_yaml(rd_buf *b, const init_options *o)
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
                "# concurrency: parallel downloads, 1..256 (default: 16)\n"
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

/* mkdir -p */
static rd_status make_dirs(const char *path, rd_error *err)
{
    char *p = strdup(path);
    if (!p)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    rd_status st = RD_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        struct stat sb;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            st = rd_error_set(err, RD_E_IO, "cannot create %s: %s", p, strerror(errno));
        else if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
            st = rd_error_set(err, RD_E_IO, "cannot create %s: a file of that name exists", p);
        *s = saved;
        if (st != RD_OK || saved == '\0')
            break;
    }
    free(p);
    return st;
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

/* ---- the command ------------------------------------------------------------------------------------------ */

typedef struct starter {
    const char *rel; /* relative to the project */
    char *path;
    rd_buf text;
} starter;

static rd_status init_project(const init_options *o, rd_error *err)
{
    starter files[3] = { { "redduck.yaml", NULL, RD_BUF_INIT },
                         { "connectors/redshift.yaml", NULL, RD_BUF_INIT },
                         { "sources/example.yaml", NULL, RD_BUF_INIT } };
    enum { NFILES = sizeof files / sizeof files[0] };
    project_yaml(&files[0].text);
    connector_yaml(&files[1].text, o);
    source_yaml(&files[2].text);
    char *env_path = path_join(o->dir, ".env"), *ignore_path = path_join(o->dir, ".gitignore");
    char *subdirs[3] = { path_join(o->dir, "connectors"), path_join(o->dir, "sources"), path_join(o->dir, "data") };
    rd_status st = env_path && ignore_path && subdirs[0] && subdirs[1] && subdirs[2] ? RD_OK
                   : rd_error_set(err, RD_E_INTERNAL, "out of memory");
    for (size_t i = 0; st == RD_OK && i < NFILES; i++) {
        if (!files[i].text.data || !(files[i].path = path_join(o->dir, files[i].rel)))
            st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    /* Refuse before writing anything. */
    for (size_t i = 0; st == RD_OK && !o->force && i < NFILES; i++) {
        struct stat sb;
        if (lstat(files[i].path, &sb) == 0)
            st = rd_error_set(err, RD_E_CONFIG, "%s already exists (use --force to overwrite it)", files[i].path);
    }
    if (st == RD_OK)
        st = make_dirs(o->dir, err);
    for (size_t i = 0; st == RD_OK && i < 3; i++)
        st = make_dirs(subdirs[i], err);
    for (size_t i = 0; st == RD_OK && i < NFILES; i++)
        st = write_file(files[i].path, rd_buf_cstr(&files[i].text), 0666, o->force, err);
    int env_created = 0, ignore_changed = 0;
    if (st == RD_OK) {
        /* .env may hold secrets: created 0600, never overwritten. */
        int fd = open(env_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            env_created = 1;
            st = write_all(fd, env_path, env_text, sizeof env_text - 1, err);
            if (close(fd) != 0 && st == RD_OK)
                st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", env_path, strerror(errno));
        } else if (errno != EEXIST)
            st = rd_error_set(err, RD_E_IO, "cannot create %s: %s", env_path, strerror(errno));
    }
    if (st == RD_OK)
        st = update_gitignore(ignore_path, &ignore_changed, err);

    if (st == RD_OK) {
        printf("Created a redduck project in %s:\n", o->dir);
        for (size_t i = 0; i < NFILES; i++)
            printf("  %s\n", files[i].path);
        printf("  %s/\n", subdirs[2]);
        printf("  %s%s\n", env_path, env_created ? " (mode 0600)" : " (kept: it already existed)");
        printf("  %s%s\n", ignore_path, ignore_changed == 0   ? " (kept: already ignores .env and data/)"
                                        : ignore_changed == 1 ? ""
                                                              : " (added .env and data/)");
        printf("\nNext steps:\n");
        int step = 1;
        if (strcmp(o->dir, ".") != 0)
            printf("  %d. cd %s\n", step++, o->dir);
        if (!o->workgroup && !o->cluster_id)
            printf("  %d. set workgroup (or cluster_identifier) in connectors/redshift.yaml, or\n"
                   "     REDSHIFT_WORKGROUP in .env and uncomment its line\n", step++);
        if (!o->staging)
            printf("  %d. for large tables, set output_location (an s3:// staging prefix) in "
                   "connectors/redshift.yaml\n", step++);
        printf("  %d. redduck env configure   # AWS keys into .env (skip it to use ~/.aws or the environment)\n",
               step++);
        printf("  %d. redduck run --check     # validate the project and the access it needs\n", step++);
        printf("  %d. redduck run             # copy every source into data/redduck.duckdb\n", step++);
    }
    for (size_t i = 0; i < NFILES; i++) {
        free(files[i].path);
        rd_buf_free(&files[i].text);
    }
    for (size_t i = 0; i < 3; i++)
        free(subdirs[i]);
    free(env_path);
    free(ignore_path);
    return st;
}

int rd_cmd_init(int argc, char **argv)
{
    init_options o = { 0 };
    struct {
        const char *name;
        const char **slot;
    } flags[] = { { "--workgroup", &o.workgroup }, { "--cluster-id", &o.cluster_id }, { "--database", &o.database },
                  { "--staging", &o.staging },     { "--region", &o.region } };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(init_help, stdout);
            return 0;
        }
        if (strcmp(a, "--force") == 0) {
            o.force = 1;
            continue;
        }
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            if (o.dir)
                return rd_cli_usage_error("init", "one project folder only ('%s' and '%s')", o.dir, a);
            o.dir = a;
            continue;
        }
        size_t k = 0, nflags = sizeof flags / sizeof flags[0];
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        while (k < nflags && !(strlen(flags[k].name) == name_len && strncmp(a, flags[k].name, name_len) == 0))
            k++;
        if (k == nflags)
            return rd_cli_usage_error("init", "unknown option '%s'", a);
        if (eq)
            *flags[k].slot = eq + 1;
        else if (i + 1 < argc)
            *flags[k].slot = argv[++i];
        else
            return rd_cli_usage_error("init", "%s needs a value", flags[k].name);
        if (!(*flags[k].slot)[0])
            return rd_cli_usage_error("init", "%s needs a value", flags[k].name);
    }
    if (!o.dir)
        o.dir = ".";
    if (o.workgroup && o.cluster_id)
        return rd_cli_usage_error("init", "give --workgroup (Serverless) or --cluster-id (provisioned), not both");
    if (o.staging && strncmp(o.staging, "s3://", 5) != 0)
        return rd_cli_usage_error("init", "--staging must be an s3://bucket/prefix URL, not '%s'", o.staging);

    rd_error err;
    rd_error_clear(&err);
    rd_status st = init_project(&o, &err);
    if (st != RD_OK)
        rd_cli_print_error(&err);
    return rd_cli_exit_code(st);
}
