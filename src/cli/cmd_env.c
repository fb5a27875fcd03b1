/* cmd_env.c — `redduck env`: show a project's .env with secrets masked, set one key (the value from stdin so
 * it stays out of argv and shell history), or ask for several keys on the terminal. Reading and writing the
 * file is src/project/dotenv.c; this file only talks to the user. Never prints a secret in clear. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "redduck/dotenv.h"
#include "redduck/project.h"
#include "cli.h"
#include "redduck/buf.h"

static const char env_help[] =
    "usage: redduck env show [DIR] [--json] [--reveal-names-only]\n"
    "       redduck env set [DIR] [--] KEY VALUE|-\n"
    "       redduck env configure [DIR] [--keys K1,K2,...]\n"
    "       redduck env show --cloud [DIR] [--environment ENV] [--reveal] [--json] [--reveal-names-only]\n"
    "       redduck env set --cloud [DIR] KEY [-]\n"
    "       redduck env rm --cloud [DIR] KEY\n"
    "       redduck env configure --cloud [DIR] [--keys K1,K2,...]\n"
    "       redduck env push [DIR] [--environment ENV] [--yes]\n"
    "       redduck env pull [DIR] [--environment ENV]\n"
    "\n"
    "Reads and writes DIR/.env (DIR defaults to the current directory), the file where a Rill project keeps\n"
    "its secrets. The file is read the way python-dotenv reads it; it is written atomically, at mode 0600.\n"
    "\n"
    "  show        list the keys and their values, masked: for a key that looks secret (its name contains\n"
    "              SECRET, TOKEN, PASSWORD, PASSWD or KEY, but not only as KEY_ID) the first 2 characters and\n"
    "              '…' when the value is longer than 8 characters, else '****'; other values in clear.\n"
    "              --json prints {\"KEY\": \"masked value\", ...}; --reveal-names-only prints the keys only.\n"
    "  set         set KEY to VALUE (replacing its line, else appending). With VALUE '-' the value is read\n"
    "              from stdin (one trailing newline removed): use it for secrets, so they stay out of argv,\n"
    "              `ps` and the shell history.\n"
    "  configure   ask for each key of --keys (default: the keys the project needs — connector.NAME.\n"
    "              aws_access_key_id and aws_secret_access_key for each connector, and every {{ .env.KEY }}\n"
    "              its YAML files use) (prompts on stderr; from the terminal, secrets without echo,\n"
    "              or one line per key from stdin when it is not a terminal); an empty answer keeps the key\n"
    "              as it is.\n"
    "\n"
    "With --cloud, the same on the variables a redduck server keeps for the project (`redduck deploy`), in\n"
    "environment ENV (--environment dev, prod or shared; default dev). The project is --project NAME, else\n"
    "`name:` in DIR/redduck.yaml, else the folder's name. show --cloud masks as show does; --reveal prints the\n"
    "values (the server checks your role either way). set --cloud reads the value from stdin ('-', or when\n"
    "stdin is not a terminal) or asks for it without echo: never from the command line. rm --cloud removes one.\n"
    "  push        compare DIR/.env with the server's ENV variables, show the added and changed keys (values\n"
    "              masked), ask, then write them; keys only on the server are never deleted. --yes does not\n"
    "              ask (needed without a terminal).\n"
    "  pull        write the server's ENV variables into DIR/.env: its values win over the local keys of the\n"
    "              same name (listed), local-only keys stay; written at once, mode 0600, and .env added to\n"
    "              DIR/.gitignore.\n"
    "  --project NAME  --environment ENV  and the server options:\n"
    RD_CLI_CLOUD_OPTIONS_HELP
    "\n"
    "Keys: letters, digits, '_', '.' and '-', starting with a letter or '_' (connector.NAME.KEY works).\n"
    "Exit codes: 0 ok, 2 usage, 3 token refused, 4 role not enough, 1 other failure (a malformed .env: the\n"
    "message names the line; the server unreachable).\n";

static int fail(rd_status st, const rd_error *err)
{
    rd_cli_print_error(err);
    return rd_cli_exit_code(st);
}

static char *env_path(const char *dir)
{
    rd_buf b = RD_BUF_INIT;
    size_t n = strlen(dir);
    if (rd_buf_printf(&b, "%s%s.env", dir, n && dir[n - 1] == '/' ? "" : "/") != RD_OK) {
        rd_buf_free(&b);
        return NULL;
    }
    return rd_buf_detach(&b);
}

static int is_valid_key(const char *k)
{
    if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_'))
        return 0;
    for (k++; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_' ||
              *k == '.' || *k == '-'))
            return 0;
    return 1;
}

/* A key whose value should not be shown: SECRET, TOKEN, PASSWORD, PASSWD, or KEY other than in KEY_ID
 * (AWS_ACCESS_KEY_ID names a key, it is not one). Case-insensitive. */
static int key_looks_secret(const char *key)
{
    rd_buf up = RD_BUF_INIT;
    for (const char *p = key; *p; p++)
        rd_buf_putc(&up, (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p));
    const char *u = rd_buf_cstr(&up);
    int secret = strstr(u, "SECRET") || strstr(u, "TOKEN") || strstr(u, "PASSWORD") || strstr(u, "PASSWD");
    for (const char *p = u; !secret && (p = strstr(p, "KEY")) != NULL; p += 3)
        if (strncmp(p, "KEY_ID", 6) != 0)
            secret = 1;
    rd_buf_free(&up);
    return secret;
}

char *rd_cli_mask_value(const char *key, const char *value)
{
    rd_buf b = RD_BUF_INIT;
    if (!key_looks_secret(key) || !*value) {
        rd_buf_puts(&b, value);
        return rd_buf_detach(&b);
    }
    size_t chars = 0, two = 0;
    for (const char *p = value; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) {
            chars++;
            if (chars == 3)
                two = (size_t)(p - value);
        }
    }
    if (chars > 8) {
        rd_buf_append(&b, value, two);
        rd_buf_puts(&b, "…");
    } else {
        rd_buf_puts(&b, "****");
    }
    return rd_buf_detach(&b);
}

/* Prints s on one line: control characters as \n, \t, \xHH. */
static void print_escaped(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\r')
            fputs("\\r", stdout);
        else if (*p == '\t')
            fputs("\\t", stdout);
        else if (*p < 0x20 || *p == 0x7F)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

/* Parses a subcommand's arguments (argv[0] is its name); messages and --help are env's. */
static int env_parse(const rd_cli_opt *opts, unsigned flags, const char *unknown, int argc, char **argv)
{
    const rd_cli_spec spec = { "env", env_help, opts, flags, unknown };
    return rd_cli_parse(&spec, argc, argv);
}

/* Prints env as `env show` does: KEY=value masked (in clear with reveal), or --json, or the names only. */
static void show_entries(const rd_dotenv *env, int json, int names_only, int reveal)
{
    json_t *o = json ? (names_only ? json_array() : json_object()) : NULL;
    for (size_t i = 0; i < env->count; i++) {
        const rd_dotenv_entry *e = &env->items[i];
        if (names_only) {
            if (o)
                json_array_append_new(o, json_string(e->key));
            else
                printf("%s\n", e->key);
            continue;
        }
        char *shown = reveal ? strdup(e->value) : rd_cli_mask_value(e->key, e->value);
        if (o) {
            json_object_set_new(o, e->key, json_string(shown ? shown : ""));
        } else {
            printf("%s=", e->key);
            print_escaped(shown ? shown : "");
            putchar('\n');
        }
        if (shown)
            explicit_bzero(shown, strlen(shown));
        free(shown);
    }
    if (o) {
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        if (text)
            explicit_bzero(text, strlen(text));
        free(text);
        json_decref(o);
    }
}

/* The options of the `--cloud` forms: which server, project and environment. */
typedef struct cloud_args {
    int cloud;
    const char *environment, *project;
    rd_cli_cloud_flags f;
} cloud_args;

#define CLOUD_OPTS(ca)                                                                                                 \
    RD_CLI_OPT_FLAG("--cloud", &(ca)->cloud), RD_CLI_OPT_STRING("--environment", &(ca)->environment),                 \
        RD_CLI_OPT_STRING("--project", &(ca)->project), RD_CLI_OPT_CLOUD(&(ca)->f)

/* 0, or the usage error for a server option given without --cloud. */
static int cloud_only(const cloud_args *ca, int other)
{
    if (ca->cloud)
        return 0;
    if (ca->environment || ca->project || ca->f.server || ca->f.ca_cert || ca->f.insecure_http || ca->f.verbose ||
        other)
        return rd_cli_usage_error("env", "--environment, --project, --reveal and the server options need --cloud "
                                         "(without it, env works on the local .env)");
    return 0;
}

/* The client, the project's name and the environment (default dev) of a --cloud form. 0 or the exit code. */
static int cloud_open(const char *dir, cloud_args *ca, rd_cloud **c, char **project)
{
    if (!ca->environment)
        ca->environment = "dev";
    if (!rd_cloud_environment_valid(ca->environment))
        return rd_cli_usage_error("env", "--environment: '%s' is not dev, prod or shared", ca->environment);
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_cloud_project_name(dir, ca->project, project, &err);
    if (st != RD_OK)
        return fail(st, &err);
    int rc = 1;
    if (!(*c = rd_cli_cloud_open(&ca->f, &rc))) {
        free(*project);
        *project = NULL;
        return rc;
    }
    return 0;
}

static int env_show_cloud(const char *dir, cloud_args *ca, int json, int names_only, int reveal)
{
    rd_cloud *c = NULL;
    char *project = NULL;
    int rc = cloud_open(dir, ca, &c, &project);
    if (rc != 0)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    rd_dotenv vars = { NULL, 0, NULL };
    rd_status st;
    if (names_only) {
        char **names = NULL;
        size_t n = 0;
        st = rd_cloud_get_variable_names(c, project, ca->environment, &names, &n, &err);
        for (size_t i = 0; st == RD_OK && i < n; i++)
            if (rd_dotenv_add(&vars, names[i], "") != RD_OK)
                st = rd_error_set(&err, RD_E_INTERNAL, "out of memory");
        if (names)
            rd_cloud_names_free(names, n);
    } else {
        st = rd_cloud_get_variables(c, project, ca->environment, &vars, &err);
    }
    if (st == RD_OK) {
        show_entries(&vars, json, names_only, reveal);
        if (!vars.count && !json)
            fprintf(stderr, "redduck: no variables in %s of project %s on %s\n", ca->environment, project,
                    rd_cloud_server(c));
    }
    rd_dotenv_free(&vars);
    rd_cloud_free(c);
    free(project);
    return st == RD_OK ? 0 : fail(st, &err);
}

static int env_show(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0, names_only = 0, reveal = 0;
    cloud_args ca = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_DIR(&dir),
        RD_CLI_OPT_FLAG("--json", &json),
        RD_CLI_OPT_FLAG("--reveal-names-only", &names_only),
        RD_CLI_OPT_FLAG("--reveal", &reveal),
        CLOUD_OPTS(&ca),
        RD_CLI_OPT_END,
    };
    int rc = env_parse(opts, 0, NULL, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if ((rc = cloud_only(&ca, reveal)) != 0)
        return rc;
    if (ca.cloud)
        return env_show_cloud(dir ? dir : ".", &ca, json, names_only, reveal);
    char *path = env_path(dir ? dir : ".");
    if (!path)
        return 1;
    rd_error err;
    rd_error_clear(&err);
    rd_dotenv env;
    rd_status st = rd_dotenv_load(path, &env, &err);
    free(path);
    if (st != RD_OK)
        return fail(st, &err);
    show_entries(&env, json, names_only, 0);
    rd_dotenv_free(&env);
    return 0;
}

/* All of stdin, one trailing "\n" removed. NULL on a read error or a NUL byte. */
static char *read_stdin_value(void)
{
    rd_buf b = RD_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        rd_buf_append(&b, chunk, n);
    explicit_bzero(chunk, sizeof chunk);
    if (ferror(stdin)) {
        rd_buf_free_secure(&b);
        return NULL;
    }
    if (b.len && b.data[b.len - 1] == '\n')
        b.data[--b.len] = '\0';
    if (memchr(rd_buf_cstr(&b), '\0', b.len)) {
        rd_buf_free_secure(&b);
        return NULL;
    }
    return rd_buf_detach(&b);
}

/* [DIR] KEY VALUE */
typedef struct set_args {
    const char *pos[3];
    int npos;
} set_args;

static int add_set_arg(const char *value, void *dest)
{
    set_args *sa = dest;
    if (sa->npos == 3)
        return rd_cli_usage_error("env", "set takes [DIR] KEY VALUE: too many arguments (quote the value, or "
                                         "pass '-' and give it on stdin)");
    sa->pos[sa->npos++] = value;
    return 0;
}

static int read_answer(FILE *in, const char *prompt, int hide, char **line, size_t *cap);

/* `env set --cloud [DIR] KEY [-]`: the value from stdin, or the terminal without echo; never from argv. */
static int env_set_cloud(const char **pos, int npos, cloud_args *ca)
{
    const char *dir = ".", *key = NULL;
    int dash = npos >= 2 && strcmp(pos[npos - 1], "-") == 0;
    if (npos == 1 || (npos == 2 && dash)) {
        key = pos[0];
    } else if ((npos == 2 && !dash) || (npos == 3 && dash)) {
        dir = pos[0];
        key = pos[1];
    } else {
        return rd_cli_usage_error("env", "set --cloud takes [DIR] KEY [-]: the value comes from stdin or the prompt, "
                                         "never from the command line");
    }
    if (!is_valid_key(key))
        return rd_cli_usage_error("env", "'%s' is not a valid key (letters, digits, '_', '.', '-'; not starting "
                                         "with a digit)", key);
    char *value = NULL;
    if (!dash && isatty(STDIN_FILENO)) {
        FILE *tty = fopen("/dev/tty", "r");
        size_t cap = 0;
        rd_buf prompt = RD_BUF_INIT;
        rd_buf_printf(&prompt, "%s (hidden): ", key);
        if (!tty || !read_answer(tty, rd_buf_cstr(&prompt), 1, &value, &cap)) {
            if (value)
                explicit_bzero(value, cap);
            free(value);
            value = NULL;
        }
        if (tty)
            fclose(tty);
        rd_buf_free(&prompt);
    } else {
        value = read_stdin_value();
    }
    if (!value) {
        fprintf(stderr, "redduck: cannot read the value of %s from stdin (end of input, a read error or a NUL "
                        "byte)\n", key);
        return 1;
    }
    rd_cloud *c = NULL;
    char *project = NULL;
    int rc = cloud_open(dir, ca, &c, &project);
    if (rc != 0) {
        explicit_bzero(value, strlen(value));
        free(value);
        return rc;
    }
    rd_error err;
    rd_error_clear(&err);
    rd_dotenv one = { NULL, 0, NULL };
    rd_status st = rd_dotenv_add(&one, key, value) == RD_OK ? rd_cloud_set_variables(c, project, ca->environment, &one,
                                                                                   &err)
                                                          : rd_error_set(&err, RD_E_INTERNAL, "out of memory");
    if (st == RD_OK)
        fprintf(stderr, "redduck: set %s in the %s variables of %s on %s\n", key, ca->environment, project,
                rd_cloud_server(c));
    rd_dotenv_free(&one);
    explicit_bzero(value, strlen(value));
    free(value);
    rd_cloud_free(c);
    free(project);
    return st == RD_OK ? 0 : fail(st, &err);
}

static int env_set(int argc, char **argv)
{
    set_args sa = { { NULL, NULL, NULL }, 0 };
    cloud_args ca = { 0 };
    const rd_cli_opt opts[] = { RD_CLI_OPT_ARGS(&sa, add_set_arg), CLOUD_OPTS(&ca), RD_CLI_OPT_END };
    /* never echo these arguments: one may be (part of) a secret */
    int rc = env_parse(opts, RD_CLI_DASH_IS_ARG | RD_CLI_DASH_DASH,
                       "set has no options but --cloud and its own (if the value starts with '-', write `--` before "
                       "KEY, or pass '-' and give the value on stdin)",
                       argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if ((rc = cloud_only(&ca, 0)) != 0)
        return rc;
    const char **pos = sa.pos;
    int npos = sa.npos;
    if (ca.cloud) {
        if (npos < 1)
            return rd_cli_usage_error("env", "set --cloud needs KEY (the value comes from stdin or the prompt)");
        return env_set_cloud(pos, npos, &ca);
    }
    if (npos < 2)
        return rd_cli_usage_error("env", "set needs KEY and VALUE (VALUE '-' reads it from stdin)");
    const char *dir = npos == 3 ? pos[0] : ".";
    const char *key = pos[npos - 2], *value = pos[npos - 1];
    if (!is_valid_key(key))
        return rd_cli_usage_error("env", "'%s' is not a valid key (letters, digits, '_', '.', '-'; not starting "
                                         "with a digit)", key);
    char *from_stdin = NULL;
    if (strcmp(value, "-") == 0) {
        if (!(from_stdin = read_stdin_value())) {
            fprintf(stderr, "redduck: cannot read the value from stdin (read error or a NUL byte)\n");
            return 1;
        }
        value = from_stdin;
    }
    char *path = env_path(dir);
    rd_error err;
    rd_error_clear(&err);
    rd_status st = path ? rd_dotenv_set_in_file(path, key, value, &err)
                        : rd_error_set(&err, RD_E_INTERNAL, "out of memory");
    if (st == RD_OK)
        fprintf(stderr, "redduck: set %s in %s\n", key, path);
    if (from_stdin) {
        explicit_bzero(from_stdin, strlen(from_stdin));
        free(from_stdin);
    }
    free(path);
    return st == RD_OK ? 0 : fail(st, &err);
}

/* Prints prompt on stderr and reads one line from in (without its newline) into line; with echo off when
 * hide and fd is a terminal (turned off before the prompt shows, so nothing typed after it is echoed).
 * Returns 1 for a line, 0 at end of input. */
static int read_answer(FILE *in, const char *prompt, int hide, char **line, size_t *cap)
{
    int fd = fileno(in);
    struct termios saved;
    int restore = 0;
    if (hide && isatty(fd) && tcgetattr(fd, &saved) == 0) {
        struct termios quiet = saved;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        quiet.c_lflag |= ECHONL;
        restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    fputs(prompt, stderr);
    fflush(stderr);
    ssize_t n = getline(line, cap, in);
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &saved);
    if (n < 0)
        return 0;
    while (n > 0 && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r'))
        (*line)[--n] = '\0';
    return 1;
}

rd_status rd_cli_ask_keys(char *const *keys, size_t nkeys, rd_cli_answer_fn fn, void *ctx, int *answered,
                          rd_error *err)
{
    FILE *in = stdin, *tty = NULL;
    if (isatty(STDIN_FILENO)) {
        tty = fopen("/dev/tty", "r");
        if (tty)
            in = tty;
    }
    rd_status st = RD_OK;
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < nkeys && st == RD_OK; i++) {
        const char *k = keys[i];
        int secret = key_looks_secret(k);
        rd_buf prompt = RD_BUF_INIT;
        rd_buf_printf(&prompt, "%s%s (empty: unchanged): ", k, secret ? " (hidden)" : "");
        int got = read_answer(in, rd_buf_cstr(&prompt), secret, &line, &cap);
        rd_buf_free(&prompt);
        if (!got) {
            fputc('\n', stderr);
            break;
        }
        if (line[0] != '\0') {
            st = fn(ctx, k, line, err);
            n += st == RD_OK;
        }
        explicit_bzero(line, cap);
    }
    if (line)
        explicit_bzero(line, cap);
    free(line);
    if (tty)
        fclose(tty);
    *answered = n;
    return st;
}

int rd_cli_confirm(const char *cmd, const char *question, int yes)
{
    if (yes)
        return 0;
    FILE *tty = isatty(STDIN_FILENO) ? fopen("/dev/tty", "r") : NULL;
    if (!tty) {
        fprintf(stderr, "redduck %s: %s: there is no terminal to ask on; pass --yes to confirm\n", cmd, question);
        return 2;
    }
    fprintf(stderr, "%s [y/N] ", question);
    fflush(stderr);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, tty);
    fclose(tty);
    int ok = n > 0 && (strcmp(line, "y\n") == 0 || strcmp(line, "yes\n") == 0 || strcmp(line, "Y\n") == 0);
    free(line);
    if (!ok) {
        fprintf(stderr, "redduck %s: not confirmed: nothing written\n", cmd);
        return 1;
    }
    return 0;
}

/* Splits "K1,K2" in place into an array of pointers into it (*keys malloc'd). 0 on out of memory. */
static int split_keys(char *list, char ***keys, size_t *n)
{
    size_t count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    char **k = calloc(count, sizeof *k);
    if (!k)
        return 0;
    size_t i = 0;
    for (char *p = list; p;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        k[i++] = p;
        p = comma ? comma + 1 : NULL;
    }
    *keys = k;
    *n = i;
    return 1;
}

/* rd_cli_answer_fn of the local `env configure`: each answer written to the .env at ctx at once. */
static rd_status set_in_file(void *ctx, const char *key, const char *value, rd_error *err)
{
    return rd_dotenv_set_in_file(ctx, key, value, err);
}

/* The keys the project asks for (rd_project_env_keys), as "K1,K2" (malloc'd); NULL with err set on failure. */
static char *project_keys(const char *dir, rd_error *err)
{
    char **keys = NULL;
    size_t n = 0;
    if (rd_project_env_keys(dir, &keys, &n, err) != RD_OK)
        return NULL;
    rd_buf out = RD_BUF_INIT;
    rd_status st = rd_buf_puts(&out, "");
    for (size_t i = 0; st == RD_OK && i < n; i++)
        st = rd_buf_printf(&out, "%s%s", i ? "," : "", keys[i]);
    rd_project_keys_free(keys, n);
    if (st != RD_OK) {
        rd_buf_free(&out);
        rd_error_set(err, RD_E_INTERNAL, "out of memory");
        return NULL;
    }
    return rd_buf_detach(&out);
}

/* rd_cli_answer_fn of the --cloud forms: each answer kept in the rd_dotenv at ctx, sent at the end. */
static rd_status collect_answer(void *ctx, const char *key, const char *value, rd_error *err)
{
    return rd_dotenv_add(ctx, key, value) == RD_OK ? RD_OK : rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

/* Asks for the keys of list ("K1,K2", modified) and writes the answers to the server at once. */
static int configure_cloud(const char *dir, cloud_args *ca, char *list)
{
    rd_cloud *c = NULL;
    char *project = NULL;
    int rc = cloud_open(dir, ca, &c, &project);
    if (rc != 0)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    char **karr = NULL;
    size_t nk = 0;
    rd_dotenv answers = { NULL, 0, NULL };
    int n = 0;
    fprintf(stderr, "for the %s variables of %s on %s:\n", ca->environment, project, rd_cloud_server(c));
    rd_status st = split_keys(list, &karr, &nk) ? RD_OK : rd_error_set(&err, RD_E_INTERNAL, "out of memory");
    if (st == RD_OK)
        st = rd_cli_ask_keys(karr, nk, collect_answer, &answers, &n, &err);
    free(karr);
    if (st == RD_OK && answers.count)
        st = rd_cloud_set_variables(c, project, ca->environment, &answers, &err);
    if (st == RD_OK)
        fprintf(stderr, "redduck: wrote %zu key%s to the %s variables of %s on %s\n", answers.count,
                answers.count == 1 ? "" : "s", ca->environment, project, rd_cloud_server(c));
    rd_dotenv_free(&answers);
    rd_cloud_free(c);
    free(project);
    return st == RD_OK ? 0 : fail(st, &err);
}

static int env_configure(int argc, char **argv)
{
    const char *dir = NULL, *keys = NULL;
    cloud_args ca = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_DIR(&dir),
        RD_CLI_OPT_STRING("--keys", &keys),
        CLOUD_OPTS(&ca),
        RD_CLI_OPT_END,
    };
    int rc = env_parse(opts, 0, NULL, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if ((rc = cloud_only(&ca, 0)) != 0)
        return rc;
    char *derived = NULL;
    if (!keys || !*keys) {
        rd_error kerr;
        rd_error_clear(&kerr);
        derived = project_keys(dir ? dir : ".", &kerr);
        if (!derived)
            return fail(kerr.code, &kerr);
        if (!*derived) {
            free(derived);
            return rd_cli_usage_error("env", "no connectors in %s to ask keys for: give --keys K1,K2,...",
                                      dir ? dir : ".");
        }
        keys = derived;
        fprintf(stderr, "keys the project needs: %s\n", keys);
    }

    char *list = strdup(keys);
    free(derived);
    derived = NULL;
    char *path = env_path(dir ? dir : ".");
    if (!list || !path) {
        free(list);
        free(path);
        return 1;
    }
    for (char *k = list; k;) {
        char *comma = strchr(k, ',');
        if (comma)
            *comma = '\0';
        if (!is_valid_key(k)) {
            rc = rd_cli_usage_error("env", "'%s' in --keys is not a valid key", k);
            free(list);
            free(path);
            return rc;
        }
        if (comma)
            *comma = ',';
        k = comma ? comma + 1 : NULL;
    }

    if (ca.cloud) {
        rc = configure_cloud(dir ? dir : ".", &ca, list);
        free(list);
        free(path);
        return rc;
    }
    rd_error err;
    rd_error_clear(&err);
    char **karr = NULL;
    size_t nk = 0;
    rd_status st = split_keys(list, &karr, &nk) ? RD_OK : rd_error_set(&err, RD_E_INTERNAL, "out of memory");
    int written = 0;
    if (st == RD_OK)
        st = rd_cli_ask_keys(karr, nk, set_in_file, path, &written, &err);
    free(karr);
    if (st == RD_OK)
        fprintf(stderr, "redduck: wrote %d key%s to %s\n", written, written == 1 ? "" : "s", path);
    free(list);
    free(path);
    return st == RD_OK ? 0 : fail(st, &err);
}

/* `env rm --cloud [DIR] KEY`. */
typedef struct rm_args {
    const char *pos[2];
    int npos;
} rm_args;

static int add_rm_arg(const char *value, void *dest)
{
    rm_args *ra = dest;
    if (ra->npos == 2)
        return rd_cli_usage_error("env", "rm takes [DIR] KEY: too many arguments");
    ra->pos[ra->npos++] = value;
    return 0;
}

static int env_rm(int argc, char **argv)
{
    rm_args ra = { { NULL, NULL }, 0 };
    cloud_args ca = { 0 };
    const rd_cli_opt opts[] = { RD_CLI_OPT_ARGS(&ra, add_rm_arg), CLOUD_OPTS(&ca), RD_CLI_OPT_END };
    int rc = env_parse(opts, 0, NULL, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if (!ca.cloud)
        return rd_cli_usage_error("env", "rm removes a variable on the server: pass --cloud (to drop a key of the "
                                         "local .env, edit the file)");
    if (ra.npos < 1)
        return rd_cli_usage_error("env", "rm --cloud needs KEY");
    const char *dir = ra.npos == 2 ? ra.pos[0] : ".", *key = ra.pos[ra.npos - 1];
    if (!is_valid_key(key))
        return rd_cli_usage_error("env", "'%s' is not a valid key (letters, digits, '_', '.', '-'; not starting "
                                         "with a digit)", key);
    rd_cloud *c = NULL;
    char *project = NULL;
    if ((rc = cloud_open(dir, &ca, &c, &project)) != 0)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    rd_status st = rd_cloud_delete_variable(c, project, ca.environment, key, &err);
    if (st == RD_OK)
        fprintf(stderr, "redduck: removed %s from the %s variables of %s on %s\n", key, ca.environment, project,
                rd_cloud_server(c));
    rd_cloud_free(c);
    free(project);
    return st == RD_OK ? 0 : fail(st, &err);
}

/* Prints "  SIGN KEY=masked" for one change (and "(was masked)" for a changed one). */
static void print_change(const rd_cloud_change *ch, char sign)
{
    char *v = rd_cli_mask_value(ch->key, ch->value);
    printf("  %c %s=", sign, ch->key);
    print_escaped(v ? v : "");
    free(v);
    if (ch->kind == RD_CLOUD_CHANGED) {
        char *o = rd_cli_mask_value(ch->key, ch->old_value);
        fputs(" (was ", stdout);
        print_escaped(o ? o : "");
        putchar(')');
        free(o);
    }
    putchar('\n');
}

/* Prints the keys of d of one kind on one line: "  LABEL: K1, K2". */
static void print_names(const rd_cloud_diff *d, rd_cloud_change_kind kind, const char *label)
{
    int first = 1;
    for (size_t i = 0; i < d->count; i++) {
        if (d->items[i].kind != kind)
            continue;
        printf("%s%s", first ? "  " : ", ", first ? label : "");
        if (first)
            fputs(": ", stdout);
        fputs(d->items[i].key, stdout);
        first = 0;
    }
    if (!first)
        putchar('\n');
}

/* What env push and pull both start from: DIR's .env, the server's variables of the environment, and the
 * diff from one to the other (push: local → cloud; pull: cloud → local). Freed by sync_free. */
typedef struct env_sync {
    char *path;
    rd_dotenv local, cloud;
    rd_cloud *c;
    char *project;
    rd_cloud_diff d;
} env_sync;

static void sync_free(env_sync *y)
{
    rd_cloud_diff_free(&y->d);
    rd_dotenv_free(&y->cloud);
    rd_dotenv_free(&y->local);
    rd_cloud_free(y->c);
    free(y->project);
    free(y->path);
}

/* 0 with *y filled (also when *st is not RD_OK: err says why, y still to be freed), or an exit code (y freed). */
static int sync_open(const char *dir, cloud_args *ca, int push, env_sync *y, rd_status *st, rd_error *err)
{
    memset(y, 0, sizeof *y);
    if (!(y->path = env_path(dir)))
        return 1;
    if ((*st = rd_dotenv_load(y->path, &y->local, err)) != RD_OK) {
        free(y->path);
        return fail(*st, err);
    }
    int rc = cloud_open(dir, ca, &y->c, &y->project);
    if (rc != 0) {
        rd_dotenv_free(&y->local);
        free(y->path);
        return rc;
    }
    *st = rd_cloud_get_variables(y->c, y->project, ca->environment, &y->cloud, err);
    if (*st == RD_OK)
        *st = push ? rd_cloud_diff_env(&y->local, &y->cloud, &y->d, err)
                   : rd_cloud_diff_env(&y->cloud, &y->local, &y->d, err);
    return 0;
}

/* `env push [DIR] [--environment dev|prod|shared] [--yes]`: the local .env's new and changed keys to the
 * server, after showing them (masked) and asking; keys only in the cloud are never deleted. */
static int env_push(int argc, char **argv)
{
    const char *dir = NULL;
    int yes = 0;
    cloud_args ca = { 0 };
    const rd_cli_opt opts[] = { RD_CLI_OPT_DIR(&dir), RD_CLI_OPT_FLAG("--yes", &yes), CLOUD_OPTS(&ca),
                                RD_CLI_OPT_END };
    int rc = env_parse(opts, 0, NULL, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    rd_error err;
    rd_error_clear(&err);
    env_sync y;
    rd_status st = RD_OK;
    if ((rc = sync_open(dir ? dir : ".", &ca, 1, &y, &st, &err)) != 0)
        return rc;
    const char *path = y.path, *project = y.project;
    rd_cloud *c = y.c;
    const rd_cloud_diff *d = &y.d;
    rd_dotenv set = { NULL, 0, NULL };
    if (st == RD_OK) {
        printf("%s -> the %s variables of %s on %s:\n", path, ca.environment, project, rd_cloud_server(c));
        for (size_t i = 0; i < d->count; i++)
            if (d->items[i].kind == RD_CLOUD_ADDED || d->items[i].kind == RD_CLOUD_CHANGED)
                print_change(&d->items[i], d->items[i].kind == RD_CLOUD_ADDED ? '+' : '~');
        printf("%zu added, %zu changed, %zu unchanged, %zu only in the cloud (kept)\n", d->added, d->changed,
               d->unchanged, d->kept);
        fflush(stdout);
        for (size_t i = 0; st == RD_OK && i < d->count; i++)
            if ((d->items[i].kind == RD_CLOUD_ADDED || d->items[i].kind == RD_CLOUD_CHANGED) &&
                rd_dotenv_add(&set, d->items[i].key, d->items[i].value) != RD_OK)
                st = rd_error_set(&err, RD_E_INTERNAL, "out of memory");
    }
    if (st == RD_OK && set.count == 0) {
        printf("nothing to push\n");
    } else if (st == RD_OK) {
        char q[256];
        snprintf(q, sizeof q, "write %zu key%s to the %s variables of %s?", set.count, set.count == 1 ? "" : "s",
                 ca.environment, project);
        rc = rd_cli_confirm("env", q, yes);
        if (rc == 0) {
            st = rd_cloud_set_variables(c, project, ca.environment, &set, &err);
            if (st == RD_OK)
                printf("pushed %zu key%s\n", set.count, set.count == 1 ? "" : "s");
        }
    }
    rd_dotenv_free(&set);
    sync_free(&y);
    if (st != RD_OK)
        return fail(st, &err);
    return rc;
}

/* `env pull [DIR] [--environment dev]`: the server's values over the local .env's keys of the same names
 * (listed), local-only keys kept; the file written at once, 0600, and .env added to .gitignore. */
static int env_pull(int argc, char **argv)
{
    const char *dir = NULL;
    cloud_args ca = { 0 };
    const rd_cli_opt opts[] = { RD_CLI_OPT_DIR(&dir), CLOUD_OPTS(&ca), RD_CLI_OPT_END };
    int rc = env_parse(opts, 0, NULL, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    const char *d0 = dir ? dir : ".";
    rd_error err;
    rd_error_clear(&err);
    env_sync y;
    rd_status st = RD_OK;
    if ((rc = sync_open(d0, &ca, 0, &y, &st, &err)) != 0)
        return rc;
    const char *path = y.path, *project = y.project;
    rd_cloud *c = y.c;
    const rd_cloud_diff *d = &y.d;
    if (st == RD_OK)
        st = rd_cloud_env_apply(path, d, &err);
    int gi = 0;
    if (st == RD_OK)
        st = rd_cloud_gitignore_env(d0, &gi, &err);
    if (st == RD_OK) {
        printf("the %s variables of %s on %s -> %s: %zu added, %zu overridden, %zu unchanged, %zu only local "
               "(kept)\n",
               ca.environment, project, rd_cloud_server(c), path, d->added, d->changed, d->unchanged, d->kept);
        print_names(d, RD_CLOUD_ADDED, "added");
        print_names(d, RD_CLOUD_CHANGED, "overrode");
        print_names(d, RD_CLOUD_KEPT, "kept (only local)");
        if (gi)
            fprintf(stderr, "redduck: added .env to %s/.gitignore\n", d0);
    }
    sync_free(&y);
    return st == RD_OK ? 0 : fail(st, &err);
}

/* `redduck env dump-json FILE` — for tests only (not in --help): the full parse of FILE, values in clear, as
 * one JSON object, so the oracle test can compare it with python-dotenv. */
static int env_dump_json(int argc, char **argv)
{
    if (argc != 2)
        return rd_cli_usage_error("env", "dump-json takes one FILE");
    rd_error err;
    rd_error_clear(&err);
    rd_dotenv env;
    rd_status st = rd_dotenv_load(argv[1], &env, &err);
    if (st != RD_OK)
        return fail(st, &err);
    json_t *o = json_object();
    for (size_t i = 0; i < env.count; i++)
        json_object_set_new(o, env.items[i].key, json_string(env.items[i].value));
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    int rc = text ? 0 : 1;
    if (text)
        puts(text);
    free(text);
    json_decref(o);
    rd_dotenv_free(&env);
    return rc;
}

int rd_cmd_env(int argc, char **argv)
{
    if (argc < 2)
        return rd_cli_usage_error("env", "needs a subcommand: show, set, configure, rm, push or pull");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(env_help, stdout);
        return 0;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(env_help, stdout);
            return 0;
        }
    /* each subcommand takes argv after "env" (argv[0] is its name) */
    if (strcmp(sub, "show") == 0)
        return env_show(argc - 1, argv + 1);
    if (strcmp(sub, "set") == 0)
        return env_set(argc - 1, argv + 1);
    if (strcmp(sub, "configure") == 0)
        return env_configure(argc - 1, argv + 1);
    if (strcmp(sub, "rm") == 0)
        return env_rm(argc - 1, argv + 1);
    if (strcmp(sub, "push") == 0)
        return env_push(argc - 1, argv + 1);
    if (strcmp(sub, "pull") == 0)
        return env_pull(argc - 1, argv + 1);
    if (strcmp(sub, "dump-json") == 0)
        return env_dump_json(argc - 1, argv + 1);
    return rd_cli_usage_error("env", "unknown subcommand '%s'", sub);
}
