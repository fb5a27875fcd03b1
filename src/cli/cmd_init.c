/* cmd_init.c — `redduck init [DIR]`: parses the flags, calls rd_project_init (src/project/init.c owns the
 * starter files and the rules: never overwrite without --force, never overwrite .env) and prints what was
 * created and the next steps. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "redduck/project.h"

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

/* The files written and the next steps. */
static void print_created(const rd_project_init_options *o, const rd_project_init_result *r)
{
    printf("Created a redduck project in %s:\n", o->dir);
    for (size_t i = 0; i < RD_PROJECT_INIT_NFILES; i++)
        printf("  %s\n", r->files[i]);
    printf("  %s/\n", r->data_dir);
    printf("  %s%s\n", r->env_path, r->env_created ? " (mode 0600)" : " (kept: it already existed)");
    printf("  %s%s\n", r->gitignore_path, r->gitignore_changed == 0   ? " (kept: already ignores .env and data/)"
                                         : r->gitignore_changed == 1 ? ""
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

int rd_cmd_init(int argc, char **argv)
{
    rd_project_init_options o = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_DIR(&o.dir),
        RD_CLI_OPT_STRING("--workgroup", &o.workgroup),
        RD_CLI_OPT_STRING("--cluster-id", &o.cluster_id),
        RD_CLI_OPT_STRING("--database", &o.database),
        RD_CLI_OPT_STRING("--staging", &o.staging),
        RD_CLI_OPT_STRING("--region", &o.region),
        RD_CLI_OPT_FLAG("--force", &o.force),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "init", init_help, opts, RD_CLI_DASH_IS_ARG | RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if (!o.dir)
        o.dir = ".";

    rd_error err;
    rd_error_clear(&err);
    rd_project_init_result r;
    rd_status st = rd_project_init(&o, &r, &err);
    if (st == RD_E_USAGE)
        return rd_cli_usage_error("init", "%s", err.message);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        return rd_cli_exit_code(st);
    }
    print_created(&o, &r);
    rd_project_init_result_free(&r);
    return 0;
}
