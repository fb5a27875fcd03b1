/* redduck/project.h — a redduck project folder, as Rill lays one out:
 *   redduck.yaml          name:, duckdb: (default "data/redduck.duckdb", relative to the project), parallel:
 *   connectors/NAME.yaml  type: redshift, workgroup | cluster_identifier, database, db_user, secret_arn,
 *                         region, role_arn, output_location, aws_access_key_id, aws_secret_access_key,
 *                         aws_session_token, profile, endpoint_url, allow_host_access
 *   sources/NAME.yaml     connector:, sql: | table:, table_name: (target; default NAME), incremental:
 *                         {column:, unique_key:}, ingest options (iam_role, kms_key, max_file_size_mb,
 *                         concurrency, part_size_mb, timeout, via, keep_staging, compression) and any connector key
 *                         (overrides the connector's, as in Rill)
 *   .env                  KEY=value; `{{ .env.KEY }}` in any YAML value is replaced by it, and keys named
 *                         `connector.NAME.KEY` set connector NAME's KEY (they win over the YAML)
 * Loading validates everything without touching AWS: unknown keys, wrong types, missing required keys, a
 * source naming a missing connector, two sources writing one table, a template naming a missing .env key —
 * each an RD_E_CONFIG error "FILE:LINE: what is wrong (what to do)". Owns every string it returns.
 * Hostile files are refused, never half-read: a YAML file larger than RD_PROJECT_FILE_MAX_BYTES, a NUL byte
 * in it or text that is not UTF-8, a second YAML document (`---`), nesting deeper than RD_PROJECT_MAX_DEPTH, any YAML anchor (`&a`) or
 * alias (`*a`) — refused outright, not expanded, so an alias bomb costs nothing — and a NUL character in any
 * key or value (a "\0" escape), named by FILE:LINE and key, never by value. A parser failure without a
 * message (out of memory) is an error too, never an empty file. Loading is linear in the files' size. */
#ifndef REDDUCK_PROJECT_H
#define REDDUCK_PROJECT_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/dotenv.h"
#include "redduck/error.h"
#include "redduck/schedule.h"

#define RD_PROJECT_FILE_MAX_BYTES (1u << 20) /* per YAML file; .env: RD_DOTENV_MAX_BYTES */
#define RD_PROJECT_MAX_DEPTH 32             /* mappings/lists inside one another */
#define RD_PROJECT_PARALLEL_MAX 32          /* `parallel:` and `redduck run --parallel`: 1..this */

typedef struct rd_connector {
    char *name;                   /* from the file name */
    char *file;                   /* path for messages */
    char *workgroup, *cluster_identifier, *database, *db_user, *secret_arn, *region, *role_arn,
        *output_location, *aws_access_key_id, *aws_secret_access_key, *aws_session_token, *profile,
        *endpoint_url;            /* NULL when not set */
    int allow_host_access;        /* default 1 */
} rd_connector;

/* `notify:` in redduck.yaml (the default) or a source file: a JSON event POSTed to webhook (https://, or
 * http:// to a loopback address) when a run fails and when a source succeeds again after failing. */
typedef struct rd_notify {
    char *webhook;                /* NULL: no notifications */
    int on_failure, on_recovery;  /* `on: [failure, recovery]`; both 1 when `on` is not given */
} rd_notify;

typedef struct rd_source {
    char *name;                   /* from the file name */
    char *file;
    char *connector;              /* required unless the project has exactly one connector */
    char *sql, *table;            /* exactly one */
    char *table_name;             /* target table in the project's DuckDB file; default: name */
    char *incremental_column;     /* NULL: full refresh */
    char *unique_key;             /* NULL: append only */
    char *iam_role, *kms_key, *via, *compression; /* NULL: defaults */
    uint64_t max_file_size_mb;    /* 0: default */
    int concurrency;              /* 0: default */
    uint64_t part_size;           /* bytes (part_size_mb); 0: default */
    long timeout_s;               /* 0: none */
    int keep_staging;
    rd_connector overrides;       /* connector keys set in the source file (name/file NULL); others NULL,
                                     allow_host_access -1 when not set */
    rd_schedule refresh;          /* effective: the source's `refresh:` keys over the project's */
    rd_notify notify;             /* effective: the source's `notify:` if it has one, else the project's */
} rd_source;

typedef struct rd_project {
    char *dir;                    /* the project folder */
    char *name;
    char *duckdb_path;            /* absolute, or relative to the current directory (dir joined) */
    int parallel;                 /* sources ingested at once; default 2 */
    rd_schedule refresh;          /* redduck.yaml's `refresh:` (kind NONE when absent) */
    rd_notify notify;             /* redduck.yaml's `notify:` */
    rd_connector *connectors;
    size_t nconnectors;
    rd_source *sources;           /* sorted by name */
    size_t nsources;
    rd_dotenv env;                /* the project's .env (empty when absent) */
} rd_project;

/* Loads and validates dir (redduck.yaml must exist: RD_E_CONFIG "no redduck.yaml in DIR (run `redduck init`)"). */
rd_status rd_project_load(const char *dir, rd_project *out, rd_error *err);
/* The project's name as rd_project_load finds it — `name:` of DIR/redduck.yaml (read with the loader's rules;
 * templates see no .env), else the folder's name — without loading the rest. *out is malloc'd; *from_file
 * says whether it came from redduck.yaml. RD_E_CONFIG (FILE:LINE) for a file the loader would refuse. */
rd_status rd_project_read_name(const char *dir, char **out, int *from_file, rd_error *err);

/* How rd_project_load_opts loads (a zeroed struct, or NULL, is rd_project_load). */
typedef struct rd_project_load_options {
    const rd_dotenv *env;     /* not NULL: these keys and values (copied) instead of DIR/.env, which is not read */
    const char *env_label;    /* with env: what messages call it instead of DIR/.env ("the variables of prod") */
    int missing_templates_ok; /* a `{{ .env.KEY }}` naming a key the .env lacks is left as written (the value
                               * is the template's text) instead of refused; connector.* keys excepted */
    int no_host_access;       /* allow_host_access is 0 on every connector and source, whatever the files or
                               * the .env say (the server's rule: a deployment never uses the host's AWS
                               * credentials) */
} rd_project_load_options;

/* rd_project_load as o says; the same errors. */
rd_status rd_project_load_opts(const char *dir, const rd_project_load_options *o, rd_project *out,
                               rd_error *err);
void rd_project_free(rd_project *p);

const rd_connector *rd_project_connector(const rd_project *p, const char *name);
const rd_source *rd_project_source(const rd_project *p, const char *name);

/* The connector a source runs with: its connector's keys, overridden by the source's. *out's strings are
 * borrowed from p (do not free; valid while p lives). RD_E_CONFIG if the connector is missing. */
rd_status rd_project_effective_connector(const rd_project *p, const rd_source *s, rd_connector *out,
                                         rd_error *err);

/* The .env keys a project asks for (what `redduck env configure` prompts for): connector.NAME.
 * aws_access_key_id and connector.NAME.aws_secret_access_key for each connectors/NAME.yaml, then every KEY a
 * `{{ .env.KEY }}` template names in a YAML value (comments are not read), each key once, in the order:
 * connectors (each file's two keys, then its templates), sources, redduck.yaml. Parses the files with the
 * loader's limits but needs no .env and checks nothing else. On success *keys is an array of *count malloc'd
 * strings, freed with rd_project_keys_free. */
rd_status rd_project_env_keys(const char *dir, char ***keys, size_t *count, rd_error *err);
void rd_project_keys_free(char **keys, size_t count);

/* What `redduck init` lays out in dir (created with its parents, like mkdir -p): redduck.yaml,
 * connectors/redshift.yaml, sources/example.yaml (each option written as a comment; the given values filled
 * in), data/, a .env created 0600 with O_EXCL (never overwritten: it may hold secrets) and a .gitignore that
 * ignores .env and data/ (created, or appended to when it does not already). The three YAML files are
 * refused before anything is written if one exists (RD_E_CONFIG "PATH already exists (use --force to
 * overwrite it)") unless force. RD_E_USAGE for workgroup and cluster_id both set or a staging that is not
 * s3://; RD_E_IO naming the path that could not be created or written. The strings are copied. */
typedef struct rd_project_init_options {
    const char *dir;              /* required */
    const char *workgroup, *cluster_id, *database, *staging, *region; /* NULL: a commented placeholder */
    int force;                    /* overwrite the three YAML files */
} rd_project_init_options;

#define RD_PROJECT_INIT_NFILES 3
typedef struct rd_project_init_result {
    char *files[RD_PROJECT_INIT_NFILES]; /* redduck.yaml, connectors/redshift.yaml, sources/example.yaml */
    char *data_dir, *env_path, *gitignore_path;
    int env_created;              /* 0: .env existed and was kept */
    int gitignore_changed;        /* 0 kept (already ignores both), 1 created, 2 appended to */
} rd_project_init_result;

/* On success fills *out (may be NULL), its paths owned by it: free with rd_project_init_result_free. */
rd_status rd_project_init(const rd_project_init_options *o, rd_project_init_result *out, rd_error *err);
void rd_project_init_result_free(rd_project_init_result *r);

#endif
