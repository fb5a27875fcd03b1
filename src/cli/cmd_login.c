/* cmd_login.c — `redduck login` and `redduck logout`: a redduck server's token read from a hidden prompt or
 * stdin (never argv), checked with GET /v1/whoami and kept in ~/.config/redduck/credentials.json (0600);
 * and rd_cli_cloud_open, how every client command of the server opens its connection. The client itself is
 * redduck/cloud.h. Never prints a token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "redduck/buf.h"

static const char login_help[] =
    "usage: redduck login [--server URL] [--token-stdin] [--ca-cert FILE] [--insecure-http] [-v]\n"
    "       redduck logout\n"
    "\n"
    "login asks for a token of the redduck server at URL (default: REDDUCK_SERVER, else the server of the last\n"
    "login) — on the terminal without echo, or one line from stdin when it is not a terminal; --token-stdin\n"
    "reads all of stdin instead. The token is never taken from the command line. It is checked with the\n"
    "server, then kept with the URL (and --ca-cert) in ~/.config/redduck/credentials.json, mode 0600, for\n"
    "`redduck deploy`, `redduck deployments` and `redduck env ... --cloud`. REDDUCK_SERVER and REDDUCK_TOKEN\n"
    "override the file. Plain http:// is refused for a host other than this machine unless --insecure-http\n"
    "(kept for that server).\n"
    "logout removes the file (the token stays valid on the server: revoke it there).\n"
    "\n"
    "  --server URL         https://HOST[:PORT] of the server (http:// for 127.0.0.1, ::1 or localhost)\n"
    "  --token-stdin        read the token from stdin (for scripts: `... | redduck login --token-stdin`)\n"
    "  --ca-cert FILE       trust this CA (PEM) for the server's certificate (default: REDDUCK_CA_BUNDLE)\n"
    "  --insecure-http      allow plain http:// to a host that is not this machine\n"
    "  -v, --verbose        log the request; -vv adds headers (the token is always redacted)\n"
    "\n"
    "Exit codes: 0 ok, 1 failure (server unreachable), 2 usage, 3 token refused.\n";

static const char logout_help[] =
    "usage: redduck logout\n"
    "\n"
    "Removes ~/.config/redduck/credentials.json, the token `redduck login` kept. The token stays valid on the\n"
    "server: revoke it there (`redduck server token revoke USER NAME`).\n"
    "Exit codes: 0 ok (also when not logged in), 1 failure.\n";

static int fail(rd_status st, const rd_error *err)
{
    rd_cli_print_error(err);
    return rd_cli_exit_code(st);
}

rd_cloud *rd_cli_cloud_open(const rd_cli_cloud_flags *f, int *exit_code)
{
    rd_cloud_options o = { 0 };
    o.server = f->server;
    o.ca_bundle = f->ca_cert;
    o.insecure_http = f->insecure_http;
    o.verbose = f->verbose;
    rd_error err;
    rd_error_clear(&err);
    rd_cloud *c = NULL;
    rd_status st = rd_cloud_open(&o, &c, &err);
    if (st != RD_OK) {
        *exit_code = fail(st, &err);
        return NULL;
    }
    return c;
}

/* The token: all of stdin (--token-stdin), else one line from the terminal without echo, else one line from
 * stdin. Surrounding whitespace removed. NULL at the end of input or on a read error. */
static char *read_token(int from_stdin, const char *server)
{
    rd_buf b = RD_BUF_INIT;
    if (from_stdin) {
        char chunk[512];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0 && b.len < 4096)
            rd_buf_append(&b, chunk, n);
        explicit_bzero(chunk, sizeof chunk);
        if (ferror(stdin)) {
            rd_buf_free_secure(&b);
            return NULL;
        }
    } else {
        FILE *in = stdin, *tty = NULL;
        if (isatty(STDIN_FILENO) && (tty = fopen("/dev/tty", "r+")) != NULL)
            in = tty;
        int fd = fileno(in);
        struct termios saved;
        int restore = 0;
        if (isatty(fd) && tcgetattr(fd, &saved) == 0) { /* echo off before the prompt shows */
            struct termios quiet = saved;
            quiet.c_lflag &= (tcflag_t)~ECHO;
            quiet.c_lflag |= ECHONL;
            restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
        }
        fprintf(stderr, "token for %s (hidden): ", server);
        fflush(stderr);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, in);
        if (restore)
            tcsetattr(fd, TCSAFLUSH, &saved);
        if (!restore)
            fputc('\n', stderr);
        if (n > 0)
            rd_buf_append(&b, line, (size_t)n);
        if (line)
            explicit_bzero(line, cap);
        free(line);
        if (tty)
            fclose(tty);
    }
    char *s = rd_buf_detach(&b);
    if (!s)
        return NULL;
    size_t len = strlen(s), start = 0;
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    while (s[start] == ' ' || s[start] == '\t')
        start++;
    memmove(s, s + start, len - start + 1);
    return s;
}

/* 1 when every byte is printable ASCII without spaces (anything else could split the Authorization header). */
static int token_plausible(const char *t, size_t len)
{
    if (!len || len >= 1024)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (t[i] <= 0x20 || t[i] >= 0x7F)
            return 0;
    return 1;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

int rd_cmd_login(int argc, char **argv)
{
    rd_cli_cloud_flags f = { 0 };
    int token_stdin = 0;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_CLOUD(&f),
        RD_CLI_OPT_FLAG("--token-stdin", &token_stdin),
        RD_CLI_OPT_END,
    };
    /* an unknown option may be a token pasted in the wrong place: never repeat it */
    const rd_cli_spec spec = { "login", login_help, opts, RD_CLI_NONEMPTY,
                               "unknown option or argument (the token is never given on the command line: "
                               "login asks for it, or reads it with --token-stdin)" };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    char *path = rd_cloud_credentials_path(&err);
    if (!path)
        return fail(err.code, &err);

    /* which server: --server, REDDUCK_SERVER, the file's */
    rd_cloud_credentials old = { 0 };
    int found = 0;
    rd_status st = rd_cloud_credentials_load(path, &old, &found, &err);
    if (st != RD_OK)
        found = 0; /* a broken or too open file is replaced below */
    const char *server = f.server;
    if (!server && (server = getenv(RD_CLOUD_ENV_SERVER)) != NULL && !*server)
        server = NULL;
    if (!server && found)
        server = old.server;
    if (!server) {
        rd_cloud_credentials_free(&old);
        free(path);
        return rd_cli_usage_error("login", "which server? pass --server URL (or set REDDUCK_SERVER)");
    }
    char *url = NULL;
    int insecure = f.insecure_http;
    if (!insecure && found && old.insecure_http) {
        char *n = NULL;
        if (rd_cloud_check_url(server, 1, &n, NULL) == RD_OK && strcmp(n, old.server) == 0)
            insecure = 1; /* allowed at the last login to this same server */
        free(n);
    }
    rd_cloud_credentials_free(&old);
    st = rd_cloud_check_url(server, insecure, &url, &err);
    if (st != RD_OK) {
        free(path);
        return fail(st, &err);
    }

    char *token = read_token(token_stdin, url);
    if (!token || !token_plausible(token, strlen(token))) {
        int empty = !token || !*token;
        wipe_free(token);
        free(url);
        free(path);
        return rd_cli_usage_error("login", empty ? "no token given (paste it at the prompt, or pipe it to "
                                                   "--token-stdin)"
                                                 : "that is not a token (one word of printable characters, as "
                                                   "`redduck server token create` prints it)");
    }
    char *ca = NULL;
    if (f.ca_cert && !(ca = realpath(f.ca_cert, NULL))) {
        wipe_free(token);
        free(url);
        free(path);
        fprintf(stderr, "redduck: cannot read the CA certificate %s: check the path of --ca-cert\n", f.ca_cert);
        return 1;
    }
    rd_cloud_options o = { 0 };
    o.server = url;
    o.token = token;
    o.ca_bundle = ca;
    o.insecure_http = insecure;
    o.verbose = f.verbose;
    o.no_credentials_file = 1;
    rd_cloud *c = NULL;
    rd_cloud_whoami who = { 0 };
    st = rd_cloud_open(&o, &c, &err);
    if (st == RD_OK)
        st = rd_cloud_get_whoami(c, &who, &err);
    if (st == RD_E_AUTH)
        rd_error_set(&err, RD_E_AUTH, "the server at %s refused the token: check it (`redduck server token create "
                     "USER` makes one) and run `redduck login` again", url);
    if (st == RD_OK) {
        rd_cloud_credentials save = { url, token, ca, insecure && strncmp(url, "http://", 7) == 0 };
        st = rd_cloud_credentials_save(path, &save, &err);
    }
    if (st == RD_OK)
        printf("logged in to %s as %s%s; the token is kept in %s (mode 0600)\n", url, who.user,
               who.server_admin ? " (server admin)" : "", path);
    rd_cloud_whoami_free(&who);
    rd_cloud_free(c);
    wipe_free(token);
    free(ca);
    free(url);
    free(path);
    return st == RD_OK ? 0 : fail(st, &err);
}

int rd_cmd_logout(int argc, char **argv)
{
    const rd_cli_opt opts[] = { RD_CLI_OPT_END };
    const rd_cli_spec spec = { "logout", logout_help, opts, 0, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    char *path = rd_cloud_credentials_path(&err);
    if (!path)
        return fail(err.code, &err);
    rd_cloud_credentials old = { 0 };
    int found = 0;
    if (rd_cloud_credentials_load(path, &old, &found, NULL) != RD_OK)
        found = 0;
    int removed = 0;
    rd_status st = rd_cloud_credentials_remove(path, &removed, &err);
    if (st == RD_OK && removed)
        printf("logged out%s%s: removed %s (the token stays valid on the server until revoked)\n",
               found ? " of " : "", found ? old.server : "", path);
    else if (st == RD_OK)
        printf("not logged in (no %s)\n", path);
    rd_cloud_credentials_free(&old);
    free(path);
    return st == RD_OK ? 0 : fail(st, &err);
}
