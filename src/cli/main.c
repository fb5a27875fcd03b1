/* main.c — the redduck command line: global flags, subcommand dispatch, exit codes and the one place
 * errors are printed. Subcommands live in cmd_*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli.h"

int rd_cli_exit_code(rd_status st)
{
    switch (st) {
    case RD_OK: return 0;
    case RD_E_USAGE: return 2;
    case RD_E_AUTH: return 3;
    case RD_E_DENIED: return 4;
    case RD_E_CANCELLED: return 130;
    default: return 1;
    }
}

void rd_cli_print_error(const rd_error *err)
{
    const char *msg = err && err->message[0] ? err->message : "failed";
    fprintf(stderr, "redduck: %s\n", msg);
}

rd_session *rd_cli_session_open(const rd_session_options *opts, int *exit_code)
{
    rd_error err;
    rd_error_clear(&err);
    rd_session *s = NULL;
    rd_status st = rd_session_new(opts, &s, &err);
    if (st != RD_OK) {
        rd_cli_print_error(&err);
        *exit_code = rd_cli_exit_code(st);
        return NULL;
    }
    return s;
}

static const char usage[] =
    "usage: redduck <command> [options]\n"
    "\n"
    "redduck copies Amazon Redshift query results into a local DuckDB file, through the Redshift Data API\n"
    "and S3 (UNLOAD to Parquet), finding AWS credentials the way the AWS CLI does.\n"
    "\n"
    "Commands:\n"
    "  init       create a project folder (redduck.yaml, connectors/, sources/, .env)\n"
    "  run        ingest a project's sources into its DuckDB file (`--check` validates only)\n"
    "  doctor     check every AWS permission a project's connectors need, and say what to grant\n"
    "  env        show, set or ask for the keys of a project's .env (secrets masked)\n"
    "  whoami     show which AWS identity, region and credential source redduck uses\n"
    "  sign       print how redduck signs a request (SigV4 canonical request, string to sign)\n"
    "  ingest     run a query on Redshift and load its result into a local DuckDB file (or Parquet files)\n"
    "  query      print a query's result on a local DuckDB file\n"
    "  gc         delete staging prefixes that interrupted ingest runs left in S3\n"
    "  emulator   run the local Redshift Data API + S3 emulator (for tests, demos, offline work)\n"
    "  server     run the team server projects are deployed to (encrypted credentials, roles, audit)\n"
    "  login      sign in to a redduck server with a token (stored 0600 in ~/.config/redduck)\n"
    "  logout     forget the stored token\n"
    "  deploy     upload a project to a redduck server as a new version, then ask for the keys it lacks\n"
    "  deployments  list a project's versions on the server, or roll back to one (--rollback N)\n"
    "  refresh    ask the server to refresh a deployed project's sources now (--cloud; --wait)\n"
    "  status     each source of a deployed project: last run, status, rows, duration, next run (--cloud)\n"
    "  logs       a run's log lines on the server (--cloud SOURCE; --run ID, --follow)\n"
    "  pull       download a deployed project's latest data into a local DuckDB file (no AWS needed)\n"
    "\n"
    "Run `redduck <command> --help` for a command's options.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 no credentials found, 4 refused by AWS.\n";

/* A core dump (or a debugger attached by another user) would hold the secret keys, session tokens and
 * passwords in memory: redduck is not dumpable unless REDDUCK_ALLOW_CORE_DUMPS=1. */
static void disable_core_dumps(void)
{
    const char *allow = getenv("REDDUCK_ALLOW_CORE_DUMPS");
    if (allow && strcmp(allow, "1") == 0)
        return;
    struct rlimit none = { 0, 0 };
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    disable_core_dumps();
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("redduck %s\n", RD_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {
        { "whoami", rd_cmd_whoami },
        { "sign", rd_cmd_sign },
        { "emulator", rd_cmd_emulator },
        { "ingest", rd_cmd_ingest },
        { "query", rd_cmd_query },
        { "init", rd_cmd_init },
        { "run", rd_cmd_run },
        { "env", rd_cmd_env },
        { "doctor", rd_cmd_doctor },
        { "gc", rd_cmd_gc },
        { "server", rd_cmd_server },
        { "login", rd_cmd_login },
        { "logout", rd_cmd_logout },
        { "deploy", rd_cmd_deploy },
        { "deployments", rd_cmd_deployments },
        { "refresh", rd_cmd_refresh },
        { "status", rd_cmd_status },
        { "logs", rd_cmd_logs },
        { "pull", rd_cmd_pull },
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "redduck: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
