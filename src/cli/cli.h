/* cli.h — the subcommands of the redduck tool and the one option parser they share. Each subcommand takes
 * argv after the subcommand name (argv[0] is the subcommand) and returns the process exit code: 0 ok,
 * 2 usage, 3 no credentials, 4 refused by AWS, 130 interrupted, 1 any other failure. Uses the public headers
 * (include/redduck) and src/core only. */
#ifndef RD_CLI_H
#define RD_CLI_H

#include "redduck/cloud.h"
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
int rd_cmd_server(int argc, char **argv);
int rd_cmd_login(int argc, char **argv);
int rd_cmd_logout(int argc, char **argv);
int rd_cmd_deploy(int argc, char **argv);
int rd_cmd_deployments(int argc, char **argv);
int rd_cmd_refresh(int argc, char **argv); /* cmd_refresh.c: refresh --cloud */
int rd_cmd_status(int argc, char **argv);  /* cmd_status.c: status --cloud */
int rd_cmd_logs(int argc, char **argv);    /* cmd_logs.c: logs --cloud */
int rd_cmd_pull(int argc, char **argv);    /* cmd_pull.c: pull a project's snapshot */

/* Maps a status to the exit code above. */
int rd_cli_exit_code(rd_status st);
/* Prints "redduck: <message>" once on stderr. */
void rd_cli_print_error(const rd_error *err);
/* rd_session_new for the shared AWS options. NULL after printing the error, *exit_code then its exit code. */
rd_session *rd_cli_session_open(const rd_session_options *opts, int *exit_code);
/* Prints "redduck <cmd>: <message> (see `redduck <cmd> --help`)" on stderr and returns 2 (usage). */
int rd_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the option parser (opts.c) ----------------------------------------------------------------------
 * A command describes its options in a table and rd_cli_parse walks argv once, in order:
 *   --name V and --name=V for an option with a value (V may start with '-'; "--name" last: "needs a value"),
 *   --name alone for the others ("--name=V" for them is an unknown option),
 *   --help or -h prints the command's help on stdout and stops (exit 0),
 *   an argument not starting with '-' is positional (RD_CLI_ARGS, RD_CLI_DIR), else an unknown option.
 * Every usage message is printed by rd_cli_usage_error, so each mistake reads the same in every command. */

typedef enum rd_cli_opt_kind {
    RD_CLI_END = 0, /* ends a table */
    RD_CLI_FLAG,    /* --name: *(int *)dest = 1, or parse(NULL, dest) when parse is set */
    RD_CLI_VERBOSE, /* -v: *(int *)dest += 1 (-v -v is -vv) */
    RD_CLI_DEBUG,   /* -vv: *(int *)dest = 2 */
    RD_CLI_VALUE,   /* --name V: *(const char **)dest = V (a pointer into argv), or parse(V, dest) */
    RD_CLI_AWS,     /* no name: the AWS options every command shares, into the rd_session_options *dest:
                     * --profile P, --region R, --endpoint-url U, -v/--verbose, -vv/--debug */
    RD_CLI_ARGS,    /* no name: each positional argument goes to parse(arg, dest) */
    RD_CLI_DIR,     /* no name: the one positional argument, a project folder: *(const char **)dest; a second
                     * one is "one project folder only ('a' and 'b')" */
} rd_cli_opt_kind;

/* Reads value (NULL for a flag) into dest. Returns 0, or the exit code after printing a usage message
 * (return rd_cli_usage_error(...)). */
typedef int (*rd_cli_parse_fn)(const char *value, void *dest);

typedef struct rd_cli_opt {
    const char *name; /* "--staging", "-v"; NULL for RD_CLI_AWS, RD_CLI_ARGS, RD_CLI_DIR and RD_CLI_END */
    rd_cli_opt_kind kind;
    void *dest;
    rd_cli_parse_fn parse; /* NULL: store as the kind says */
} rd_cli_opt;

/* Table entries; the _Generic makes a dest of the wrong type a compile error. */
#define RD_CLI_OPT_FLAG(name, dest) { name, RD_CLI_FLAG, _Generic((dest), int *: (dest)), NULL }
#define RD_CLI_OPT_VERBOSE(name, dest) { name, RD_CLI_VERBOSE, _Generic((dest), int *: (dest)), NULL }
#define RD_CLI_OPT_DEBUG(name, dest) { name, RD_CLI_DEBUG, _Generic((dest), int *: (dest)), NULL }
#define RD_CLI_OPT_STRING(name, dest) { name, RD_CLI_VALUE, _Generic((dest), const char **: (dest)), NULL }
#define RD_CLI_OPT_PARSE(name, dest, fn) { name, RD_CLI_VALUE, dest, fn }
#define RD_CLI_OPT_CALL(name, dest, fn) { name, RD_CLI_FLAG, dest, fn }
#define RD_CLI_OPT_AWS(sopts) { NULL, RD_CLI_AWS, _Generic((sopts), rd_session_options *: (sopts)), NULL }
#define RD_CLI_OPT_ARGS(dest, fn) { NULL, RD_CLI_ARGS, dest, fn }
#define RD_CLI_OPT_DIR(dest) { NULL, RD_CLI_DIR, _Generic((dest), const char **: (dest)), NULL }
#define RD_CLI_OPT_END { NULL, RD_CLI_END, NULL, NULL }

/* rd_cli_spec.flags */
#define RD_CLI_DASH_IS_ARG 1u /* "-" alone is a positional argument (it is an unknown option otherwise) */
#define RD_CLI_DASH_DASH 2u   /* "--" ends the options: every later argument is positional */
#define RD_CLI_NONEMPTY 4u    /* an empty value ("--name=" or "--name ''") is a missing one */

typedef struct rd_cli_spec {
    const char *cmd;        /* "gc": messages read "redduck gc: ..." */
    const char *help;       /* printed for --help and -h */
    const rd_cli_opt *opts; /* ends with RD_CLI_OPT_END */
    unsigned flags;         /* RD_CLI_* above */
    const char *unknown;    /* NULL: "unknown option '<arg>'"; else this message, which never repeats the
                             * argument (for commands whose arguments may be secrets) */
} rd_cli_spec;

#define RD_CLI_CONTINUE (-1)
/* Parses argv[1..argc-1] as spec says. Returns RD_CLI_CONTINUE when the command goes on, else the exit code to
 * return: 0 after --help, 2 (or what a parse function returned) after a usage message. Values are pointers
 * into argv. */
int rd_cli_parse(const rd_cli_spec *spec, int argc, char **argv);

/* Help text for the shared AWS options, for the --help of the commands that take them. */
#define RD_CLI_AWS_OPTIONS_HELP                                                                                        \
    "AWS options:\n"                                                                                                   \
    "  --profile NAME       profile from ~/.aws/config and ~/.aws/credentials (default: AWS_PROFILE or\n"              \
    "                       'default')\n"                                                                              \
    "  --region REGION      AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region)\n"              \
    "  --endpoint-url URL   send this command's requests to URL (an emulator, a VPC endpoint)\n"                       \
    "  -v, --verbose        log each request (method, host, path, status, attempt, ms); -vv adds headers\n"            \
    "                       (secrets are always redacted)\n"

/* ---- the client commands of `redduck server` (cmd_login.c, cmd_env.c) ---------------------------------
 * Every one takes --server URL, --ca-cert FILE, --insecure-http and -v/-vv; never a token (prompt or stdin
 * only, so it stays out of argv). */
typedef struct rd_cli_cloud_flags {
    const char *server, *ca_cert;
    int insecure_http, verbose;
} rd_cli_cloud_flags;

#define RD_CLI_OPT_CLOUD(f)                                                                                            \
    RD_CLI_OPT_STRING("--server", &(f)->server), RD_CLI_OPT_STRING("--ca-cert", &(f)->ca_cert),                       \
        RD_CLI_OPT_FLAG("--insecure-http", &(f)->insecure_http), RD_CLI_OPT_VERBOSE("-v", &(f)->verbose),            \
        RD_CLI_OPT_VERBOSE("--verbose", &(f)->verbose), RD_CLI_OPT_DEBUG("-vv", &(f)->verbose),                      \
        RD_CLI_OPT_DEBUG("--debug", &(f)->verbose)

#define RD_CLI_CLOUD_OPTIONS_HELP                                                                                      \
    "Server options:\n"                                                                                               \
    "  --server URL         the redduck server (default: REDDUCK_SERVER, else the one of `redduck login`)\n"           \
    "  --ca-cert FILE       trust this CA (PEM) for the server's certificate (default: REDDUCK_CA_BUNDLE)\n"          \
    "  --insecure-http      allow plain http:// to a host that is not this machine (the token crosses in clear)\n"   \
    "  -v, --verbose        log each request; -vv adds headers (the token is always redacted)\n"                      \
    "The token comes from REDDUCK_TOKEN, else from `redduck login` (~/.config/redduck/credentials.json).\n"

/* rd_cloud_open for these flags. NULL after printing the error, *exit_code then its exit code. */
rd_cloud *rd_cli_cloud_open(const rd_cli_cloud_flags *f, int *exit_code);

/* Called with each non-empty answer of rd_cli_ask_keys. */
typedef rd_status (*rd_cli_answer_fn)(void *ctx, const char *key, const char *value, rd_error *err);
/* Asks for each key on stderr ("KEY (hidden) (empty: unchanged): "): from the terminal, keys that look secret
 * without echo; one line per key from stdin when it is not a terminal. Stops at the end of input or when fn
 * fails (its status returned). *answered counts the answers fn took. The answers are wiped after fn. */
rd_status rd_cli_ask_keys(char *const *keys, size_t nkeys, rd_cli_answer_fn fn, void *ctx, int *answered,
                          rd_error *err);
/* Asks "QUESTION [y/N]" on the terminal. 0 when yes is set or the user said yes; else the exit code after a
 * message: 1 declined, 2 when there is no terminal to ask on ("pass --yes"). */
int rd_cli_confirm(const char *cmd, const char *question, int yes);
/* A value as `env show` shows it (malloc'd): the first 2 characters and '…' for a long secret, else '****';
 * other values in clear. */
char *rd_cli_mask_value(const char *key, const char *value);

#endif
