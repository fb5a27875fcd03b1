/* cmd_server.c — `redduck server`: runs the server (rd_server_run), and its offline commands on a data dir
 * (users, tokens, rotate-key). The work is redduck/server.h's; this file parses flags and prints. A token is
 * printed once, on stdout, and never taken from argv. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/parse.h"
#include "redduck/server.h"

static const char server_help[] =
    "usage: redduck server [--listen HOST:PORT] [--data-dir DIR] [--keyring FILE]\n"
    "                      [--tls-cert FILE --tls-key FILE] [--insecure-http] [--max-concurrent-runs N]\n"
    "                      [--keep-runs-days N]\n"
    "                      [--query-max-rows N] [--query-timeout SECONDS] [--query-max-memory SIZE]\n"
    "                      [--query-max-concurrent N]\n"
    "       redduck server user add NAME [--server-admin] [--project P --role viewer|editor|admin [--prod]]\n"
    "       redduck server user rm NAME\n"
    "       redduck server user list\n"
    "       redduck server token create USER [--name NAME]\n"
    "       redduck server token revoke USER NAME\n"
    "       redduck server rotate-key\n"
    "(each with --data-dir DIR; rotate-key also --keyring FILE)\n"
    "\n"
    "Runs the redduck server: a team deploys projects to it (`redduck deploy`) and keeps their explicit\n"
    "credentials in it, encrypted (`redduck env push|pull --cloud`). JSON API under /v1/ (docs/SERVER_API.md).\n"
    "It prints its URL and a ready line, and stops cleanly on SIGINT or SIGTERM. The first start creates the\n"
    "keyring (0600) and the server admin \"admin\", whose token is printed that once.\n"
    "\n"
    "Deployed projects refresh by themselves: each source on its `refresh:` schedule (cron or every), with the\n"
    "variables of prod (over shared) only, never the server's own AWS_* variables or ~/.aws; one catch-up run\n"
    "for a slot missed while the server was down; a due run while one of the source runs is recorded as\n"
    "skipped; retries as `refresh: {retry: ...}` says. After each success a snapshot of the project's DuckDB\n"
    "file is published; `notify:` webhooks hear of failures and recoveries. A stop cancels running refreshes\n"
    "(their previous tables stay).\n"
    "\n"
    "Options:\n"
    "  --listen HOST:PORT   the address (default " RD_SERVER_DEFAULT_LISTEN "; port 0: any free one). An address\n"
    "                       that is not loopback needs TLS, or --insecure-http\n"
    "  --data-dir DIR       the server's state (default ./redduck-server): store.db, keyring, projects/\n"
    "  --keyring FILE       the encryption keys (default DIR/keyring); refused when others may read it\n"
    "  --tls-cert FILE      serve HTTPS with this PEM certificate (chain) ...\n"
    "  --tls-key FILE       ... and this PEM private key\n"
    "  --insecure-http      allow plain HTTP on an address that is not loopback (a warning is printed)\n"
    "  --max-concurrent-runs N  refreshes at once, across projects (default 4)\n"
    "  --keep-runs-days N   runs and their logs are kept this long (default 90; each source's last run stays)\n"
    "  --query-max-rows N   rows a query returns at most (default 10000; more: truncated)\n"
    "  --query-timeout SECONDS  a query is interrupted after this long (default 30)\n"
    "  --query-max-memory SIZE  DuckDB memory limit of a query, e.g. 256MB (default 256MB)\n"
    "  --query-max-concurrent N queries at once (default 8; more get 429)\n"
    "\n"
    "Offline commands (they work on the data dir, the server running or not; stop it for rotate-key):\n"
    "  user add NAME        add a user; --server-admin for one who manages users and every project;\n"
    "                       --project P --role R [--prod] makes them a member of P (with prod access)\n"
    "  user rm NAME         remove a user, their tokens and roles\n"
    "  user list            list the users\n"
    "  token create USER    make a token for USER (printed once; --name NAME, default token-<time>)\n"
    "  token revoke USER NAME  revoke USER's token NAME\n"
    "  rotate-key           add a key to the keyring and re-encrypt every value with it\n"
    "\n"
    "Exit codes: 0 ok, 1 failure, 2 usage.\n";

#define DEFAULT_DATA_DIR "redduck-server"

typedef struct positionals {
    const char *cmd;
    const char *v[2];
    int n, max;
} positionals;

static int positional(const char *value, void *dest)
{
    positionals *p = dest;
    if (p->n == p->max)
        return rd_cli_usage_error(p->cmd, "unexpected argument '%s'", value);
    p->v[p->n++] = value;
    return 0;
}

static int fail(rd_status st, const rd_error *err)
{
    rd_cli_print_error(err);
    return rd_cli_exit_code(st);
}

static int parse_count(const char *value, void *dest, const char *flag, uint64_t max)
{
    uint64_t v = 0;
    if (rd_parse_uint(value, 1, max, &v) != 0)
        return rd_cli_usage_error("server", "%s: '%s' is not a number from 1 to %llu", flag, value,
                                  (unsigned long long)max);
    *(uint64_t *)dest = v;
    return 0;
}

static int parse_runs(const char *value, void *dest)
{
    return parse_count(value, dest, "--max-concurrent-runs", 256);
}

static int parse_keep_days(const char *value, void *dest)
{
    return parse_count(value, dest, "--keep-runs-days", 36500);
}

static int parse_rows(const char *value, void *dest)
{
    return parse_count(value, dest, "--query-max-rows", 100000000);
}

static int parse_queries(const char *value, void *dest)
{
    return parse_count(value, dest, "--query-max-concurrent", 1024);
}

static int parse_seconds(const char *value, void *dest)
{
    long v = 0;
    if (rd_parse_duration(value, &v) != 0 || v < 1 || v > 86400)
        return rd_cli_usage_error("server", "--query-timeout: '%s' is not a number of seconds from 1 to 86400",
                                  value);
    *(long *)dest = v;
    return 0;
}

static int parse_memory(const char *value, void *dest)
{
    uint64_t v = 0;
    if (rd_parse_size(value, 1, &v) != 0 || v < ((uint64_t)16 << 20))
        return rd_cli_usage_error("server", "--query-max-memory: '%s' is not a size of at least 16MB (e.g. 256MB)",
                                  value);
    static char normalized[32]; /* as DuckDB's memory_limit takes it, whichever unit was written */
    snprintf(normalized, sizeof normalized, "%lluMiB", (unsigned long long)(v >> 20));
    *(const char **)dest = normalized;
    return 0;
}

static int run_server(int argc, char **argv)
{
    rd_server_options o;
    memset(&o, 0, sizeof o);
    uint64_t runs = 0, rows = 0, queries = 0, keep_days = 0;
    long timeout_s = 0;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_STRING("--listen", &o.listen),
        RD_CLI_OPT_STRING("--data-dir", &o.data_dir),
        RD_CLI_OPT_STRING("--keyring", &o.keyring),
        RD_CLI_OPT_STRING("--tls-cert", &o.tls_cert_file),
        RD_CLI_OPT_STRING("--tls-key", &o.tls_key_file),
        RD_CLI_OPT_FLAG("--insecure-http", &o.insecure_http),
        RD_CLI_OPT_PARSE("--max-concurrent-runs", &runs, parse_runs),
        RD_CLI_OPT_PARSE("--keep-runs-days", &keep_days, parse_keep_days),
        RD_CLI_OPT_PARSE("--query-max-rows", &rows, parse_rows),
        RD_CLI_OPT_PARSE("--query-timeout", &timeout_s, parse_seconds),
        RD_CLI_OPT_PARSE("--query-max-memory", &o.query_max_memory, parse_memory),
        RD_CLI_OPT_PARSE("--query-max-concurrent", &queries, parse_queries),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "server", server_help, opts, RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    o.max_concurrent_runs = (int)runs;
    o.keep_runs_days = (int)keep_days;
    o.query_max_rows = rows;
    o.query_timeout_ms = timeout_s * 1000;
    o.query_max_concurrent = (int)queries;
    if (!o.data_dir)
        o.data_dir = DEFAULT_DATA_DIR;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_server_run(&o, &err);
    if (st == RD_E_USAGE) {
        fprintf(stderr, "redduck server: %s (see `redduck server --help`)\n", err.message);
        return 2;
    }
    return st == RD_OK ? 0 : fail(st, &err);
}

static int user_cmd(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : NULL;
    if (!what || (strcmp(what, "add") != 0 && strcmp(what, "rm") != 0 && strcmp(what, "list") != 0))
        return rd_cli_usage_error("server user", "say add, rm or list");
    const char *data_dir = DEFAULT_DATA_DIR, *project = NULL, *role = NULL;
    int admin = 0, prod = 0;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "server user %s", what);
    positionals pos = { cmd, { NULL, NULL }, 0, strcmp(what, "list") == 0 ? 0 : 1 };
    const rd_cli_opt add_opts[] = {
        RD_CLI_OPT_STRING("--data-dir", &data_dir), RD_CLI_OPT_FLAG("--server-admin", &admin),
        RD_CLI_OPT_STRING("--project", &project),   RD_CLI_OPT_STRING("--role", &role),
        RD_CLI_OPT_FLAG("--prod", &prod),           RD_CLI_OPT_ARGS(&pos, positional),
        RD_CLI_OPT_END,
    };
    const rd_cli_opt other_opts[] = {
        RD_CLI_OPT_STRING("--data-dir", &data_dir),
        RD_CLI_OPT_ARGS(&pos, positional),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { cmd, server_help, strcmp(what, "add") == 0 ? add_opts : other_opts, RD_CLI_NONEMPTY,
                               NULL };
    int rc = rd_cli_parse(&spec, argc - 1, argv + 1);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if (pos.n < pos.max)
        return rd_cli_usage_error(cmd, "the user's NAME is required");
    rd_error err;
    rd_error_clear(&err);
    rd_status st;
    if (strcmp(what, "add") == 0) {
        if (project && !role)
            return rd_cli_usage_error(cmd, "--project needs --role viewer, editor or admin");
        st = rd_server_user_add(data_dir, pos.v[0], admin, project, role, prod, &err);
        if (st == RD_OK)
            printf("redduck server: added user %s%s%s%s%s%s\n", pos.v[0], admin ? " (server admin)" : "",
                   project ? " as " : "", project ? role : "", project ? " of " : "", project ? project : "");
    } else if (strcmp(what, "rm") == 0) {
        st = rd_server_user_rm(data_dir, pos.v[0], &err);
        if (st == RD_OK)
            printf("redduck server: removed user %s (and their tokens)\n", pos.v[0]);
    } else {
        st = rd_server_user_list(data_dir, stdout, &err);
    }
    if (st == RD_E_USAGE) {
        fprintf(stderr, "redduck %s: %s\n", cmd, err.message);
        return 2;
    }
    return st == RD_OK ? 0 : fail(st, &err);
}

static int token_cmd(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : NULL;
    if (!what || (strcmp(what, "create") != 0 && strcmp(what, "revoke") != 0))
        return rd_cli_usage_error("server token", "say create or revoke");
    int create = strcmp(what, "create") == 0;
    const char *data_dir = DEFAULT_DATA_DIR, *name = NULL;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "server token %s", what);
    positionals pos = { cmd, { NULL, NULL }, 0, create ? 1 : 2 };
    const rd_cli_opt create_opts[] = {
        RD_CLI_OPT_STRING("--data-dir", &data_dir),
        RD_CLI_OPT_STRING("--name", &name),
        RD_CLI_OPT_ARGS(&pos, positional),
        RD_CLI_OPT_END,
    };
    const rd_cli_opt revoke_opts[] = {
        RD_CLI_OPT_STRING("--data-dir", &data_dir),
        RD_CLI_OPT_ARGS(&pos, positional),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { cmd, server_help, create ? create_opts : revoke_opts, RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc - 1, argv + 1);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if (pos.n < pos.max)
        return rd_cli_usage_error(cmd, create ? "USER is required" : "USER and the token's NAME are required");
    rd_error err;
    rd_error_clear(&err);
    rd_status st;
    if (create) {
        char token[RD_SERVER_TOKEN_MAX], used[80];
        st = rd_server_token_create(data_dir, pos.v[0], name, token, used, sizeof used, &err);
        if (st == RD_OK) {
            printf("redduck server: token %s for %s, shown only this once: %s\n", used, pos.v[0], token);
            fflush(stdout);
            rd_server_wipe(token, sizeof token);
        }
    } else {
        st = rd_server_token_revoke(data_dir, pos.v[0], pos.v[1], &err);
        if (st == RD_OK)
            printf("redduck server: revoked %s's token %s\n", pos.v[0], pos.v[1]);
    }
    if (st == RD_E_USAGE) {
        fprintf(stderr, "redduck %s: %s\n", cmd, err.message);
        return 2;
    }
    return st == RD_OK ? 0 : fail(st, &err);
}

static int rotate_cmd(int argc, char **argv)
{
    const char *data_dir = DEFAULT_DATA_DIR, *keyring = NULL;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_STRING("--data-dir", &data_dir),
        RD_CLI_OPT_STRING("--keyring", &keyring),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "server rotate-key", server_help, opts, RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    uint32_t id = 0;
    size_t n = 0;
    rd_status st = rd_server_rotate_key(data_dir, keyring, &id, &n, &err);
    if (st == RD_E_USAGE) {
        fprintf(stderr, "redduck server rotate-key: %s\n", err.message);
        return 2;
    }
    if (st != RD_OK)
        return fail(st, &err);
    printf("redduck server: key %u added; %zu value%s re-encrypted with it\n", (unsigned)id, n, n == 1 ? "" : "s");
    return 0;
}

int rd_cmd_server(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "user") == 0)
        return user_cmd(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return token_cmd(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "rotate-key") == 0)
        return rotate_cmd(argc - 1, argv + 1);
    return run_server(argc, argv);
}
