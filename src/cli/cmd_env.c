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
    "Keys: letters, digits, '_', '.' and '-', starting with a letter or '_' (connector.NAME.KEY works).\n"
    "Exit codes: 0 ok, 2 usage, 1 other failure (a malformed .env: the message names the line).\n";

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

/* Masked form of a value (malloc'd). */
static char *mask_value(const char *key, const char *value)
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

static int env_show(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0, names_only = 0;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_DIR(&dir),
        RD_CLI_OPT_FLAG("--json", &json),
        RD_CLI_OPT_FLAG("--reveal-names-only", &names_only),
        RD_CLI_OPT_END,
    };
    int rc = env_parse(opts, 0, NULL, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
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

    json_t *o = json ? (names_only ? json_array() : json_object()) : NULL;
    for (size_t i = 0; i < env.count; i++) {
        const rd_dotenv_entry *e = &env.items[i];
        if (names_only) {
            if (o)
                json_array_append_new(o, json_string(e->key));
            else
                printf("%s\n", e->key);
            continue;
        }
        char *shown = mask_value(e->key, e->value);
        if (o) {
            json_object_set_new(o, e->key, json_string(shown ? shown : ""));
        } else {
            printf("%s=", e->key);
            print_escaped(shown ? shown : "");
            putchar('\n');
        }
        free(shown);
    }
    if (o) {
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text)
            puts(text);
        free(text);
        json_decref(o);
    }
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

static int env_set(int argc, char **argv)
{
    set_args sa = { { NULL, NULL, NULL }, 0 };
    const rd_cli_opt opts[] = { RD_CLI_OPT_ARGS(&sa, add_set_arg), RD_CLI_OPT_END };
    /* never echo these arguments: one may be (part of) a secret */
    int rc = env_parse(opts, RD_CLI_DASH_IS_ARG | RD_CLI_DASH_DASH,
                       "set has no options (if the value starts with '-', write `--` before KEY, or pass '-' and "
                       "give the value on stdin)",
                       argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    const char **pos = sa.pos;
    int npos = sa.npos;
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

/* Reads one line from in (without its newline) into line; with echo off when hide and fd is a terminal.
 * Returns 1 for a line, 0 at end of input. */
static int read_answer(FILE *in, int hide, char **line, size_t *cap)
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
    ssize_t n = getline(line, cap, in);
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &saved);
    if (n < 0)
        return 0;
    while (n > 0 && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r'))
        (*line)[--n] = '\0';
    return 1;
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

static int env_configure(int argc, char **argv)
{
    const char *dir = NULL, *keys = NULL;
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_DIR(&dir),
        RD_CLI_OPT_STRING("--keys", &keys),
        RD_CLI_OPT_END,
    };
    int rc = env_parse(opts, 0, NULL, argc, argv);
    if (rc != RD_CLI_CONTINUE)
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

    FILE *in = stdin, *tty = NULL;
    if (isatty(STDIN_FILENO)) {
        tty = fopen("/dev/tty", "r");
        if (tty)
            in = tty;
    }
    rd_error err;
    rd_error_clear(&err);
    rd_status st = RD_OK;
    int written = 0;
    char *line = NULL;
    size_t cap = 0;
    for (char *k = list; k && st == RD_OK;) {
        char *comma = strchr(k, ',');
        if (comma)
            *comma = '\0';
        int secret = key_looks_secret(k);
        fprintf(stderr, "%s%s (empty: unchanged): ", k, secret ? " (hidden)" : "");
        fflush(stderr);
        if (!read_answer(in, secret, &line, &cap)) {
            fputc('\n', stderr);
            break;
        }
        if (line[0] != '\0') {
            st = rd_dotenv_set_in_file(path, k, line, &err);
            written += st == RD_OK;
        }
        explicit_bzero(line, cap);
        k = comma ? comma + 1 : NULL;
    }
    if (line)
        explicit_bzero(line, cap);
    free(line);
    if (tty)
        fclose(tty);
    if (st == RD_OK)
        fprintf(stderr, "redduck: wrote %d key%s to %s\n", written, written == 1 ? "" : "s", path);
    free(list);
    free(path);
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
        return rd_cli_usage_error("env", "needs a subcommand: show, set or configure");
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
    if (strcmp(sub, "dump-json") == 0)
        return env_dump_json(argc - 1, argv + 1);
    return rd_cli_usage_error("env", "unknown subcommand '%s'", sub);
}
