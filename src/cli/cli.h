/* cli.h — the subcommands of the redduck tool. Each takes argv after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit code: 0 ok, 2 usage, 3 no credentials, 4 refused by AWS,
 * 130 interrupted, 1 any other failure. Uses the public headers (include/redduck) only. */
#ifndef RD_CLI_H
#define RD_CLI_H

#include "redduck/error.h"
#include "redduck/session.h"

int rd_cmd_sign(int argc, char **argv);
int rd_cmd_whoami(int argc, char **argv);
int rd_cmd_emulator(int argc, char **argv);
int rd_cmd_ingest(int argc, char **argv);
int rd_cmd_query(int argc, char **argv);
int rd_cmd_init(int argc, char **argv);
int rd_cmd_run(int argc, char **argv);
int rd_cmd_env(int argc, char **argv);
int rd_cmd_doctor(int argc, char **argv);
int rd_cmd_gc(int argc, char **argv);

/* Maps a status to the exit code above. */
int rd_cli_exit_code(rd_status st);
/* Prints "redduck: <message>" once on stderr. */
void rd_cli_print_error(const rd_error *err);
/* Prints "redduck <cmd>: <message>" and returns 2 (usage). */
int rd_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The AWS options every command shares: --profile P, --region R, --endpoint-url U, -v/-vv/--verbose,
 * --debug. If argv[*i] is one of them, fills opts (pointers into argv), advances *i past its value and
 * returns 1; returns 0 if not an AWS option; returns -1 (message printed) if the value is missing. */
int rd_cli_aws_option(int argc, char **argv, int *i, rd_session_options *opts);

/* Help text for the shared AWS options, for each command's --help. */
extern const char rd_cli_aws_options_help[];

#endif
