/* cmd_doctor.c — `redduck doctor [DIR]`: a ✓/✗ table per connector of every permission an ingest needs,
 * each ✗ with the exact IAM action and resource to grant. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "redduck/doctor.h"
#include "redduck/project.h"
#include "redduck/runner.h"

static const char doctor_help[] =
    "usage: redduck doctor [DIR] [--connector NAME] [--json] [--endpoint-url URL] [-v]\n"
    "\n"
    "Checks, for each connector of the project in DIR (default: the current directory), every permission an\n"
    "ingest needs, with real but harmless calls: who the credentials belong to (STS GetCallerIdentity), the\n"
    "database credentials the Data API gets for you (redshift-serverless:GetCredentials, or\n"
    "redshift:GetClusterCredentialsWithIAM / GetClusterCredentials), ExecuteStatement, DescribeStatement,\n"
    "GetStatementResult and CancelStatement on `select 1`, ListBucket on the staging location, a one-row\n"
    "UNLOAD there (s3:PutObject by the cluster's role), GetObject and DeleteObject of what it wrote.\n"
    "Prints a table: ✓ allowed, ✗ refused (with the IAM action and resource to grant), - skipped.\n"
    "No password or secret is ever printed.\n"
    "\n"
    "Exit codes: 0 every check passed, 1 some check failed, 2 usage.\n";

int rd_cmd_doctor(int argc, char **argv)
{
    const char *dir = NULL, *only = NULL, *endpoint = NULL;
    int json = 0, verbose = 0;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_DIR(&dir),
        RD_CLI_OPT_FLAG("--json", &json),
        RD_CLI_OPT_FLAG("-v", &verbose),
        RD_CLI_OPT_STRING("--connector", &only),
        RD_CLI_OPT_STRING("--endpoint-url", &endpoint),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "doctor", doctor_help, opts, 0, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if (!dir)
        dir = ".";
    rd_error err;
    rd_error_clear(&err);
    rd_project p;
    if (rd_project_load(dir, &p, &err) != RD_OK) {
        rd_cli_print_error(&err);
        return 1;
    }
    if (only && !rd_project_connector(&p, only)) {
        fprintf(stderr, "redduck doctor: no connector named '%s' in %s\n", only, p.dir);
        rd_project_free(&p);
        return 2;
    }
    size_t failed = 0;
    json_t *all = json_array();
    for (size_t k = 0; k < p.nconnectors; k++) {
        const rd_connector *c = &p.connectors[k];
        if (only && strcmp(only, c->name) != 0)
            continue;
        rd_doctor_report rep;
        memset(&rep, 0, sizeof rep);
        rd_session *s = NULL;
        rd_error_clear(&err);
        if (rd_project_session(&p, c, endpoint, verbose, &s, &err) != RD_OK) {
            rd_doctor_check *ch = rd_doctor_report_add(&rep, "credentials", "-", c->file);
            snprintf(ch->detail, sizeof ch->detail, "%.500s", err.message);
            rep.failed = 1;
        } else {
            rd_doctor_run(s, c, &rep);
        }
        rd_session_free(s);
        failed += rep.failed;
        json_t *checks = json_array();
        if (!json)
            printf("connector %s (%s %s)\n", c->name, c->workgroup ? "workgroup" : "cluster",
                   c->workgroup ? c->workgroup : c->cluster_identifier ? c->cluster_identifier : "?");
        for (size_t i = 0; i < rep.count; i++) {
            rd_doctor_check *ch = &rep.items[i];
            const char *mark = ch->ok == 1 ? "✓" : ch->ok == 0 ? "✗" : "-";
            if (!json) {
                printf("  %s %-42s %s\n", mark, ch->what, ch->detail);
                if (ch->ok == 0 && strcmp(ch->action, "-") != 0)
                    printf("      grant: %s on %s\n", ch->action, ch->resource);
            }
            json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:s, s:s}", "check", ch->what, "result",
                                                    ch->ok == 1 ? "ok" : ch->ok == 0 ? "failed" : "skipped",
                                                    "action", ch->action, "resource", ch->resource, "detail",
                                                    ch->detail));
        }
        if (rep.out_of_memory)
            fprintf(stderr, "redduck doctor: out of memory: some checks of connector %s are not shown\n", c->name);
        rd_doctor_report_free(&rep);
        json_array_append_new(all, json_pack("{s:s, s:o}", "connector", c->name, "checks", checks));
    }
    if (json) {
        char *txt = json_dumps(all, JSON_COMPACT);
        printf("%s\n", txt ? txt : "[]");
        free(txt);
    } else {
        printf(failed ? "%zu check%s failed: grant the actions above, then run `redduck doctor` again\n"
                      : "all checks passed\n",
               failed, failed == 1 ? "" : "s");
    }
    json_decref(all);
    rd_project_free(&p);
    return failed ? 1 : 0;
}
