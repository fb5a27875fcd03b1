/* creds_process.c — credential_process: runs the profile's command without a shell (botocore's
 * ProcessProvider: shlex split, 60 s, 1 MiB of stdout), and decodes its JSON output (Version 1). */
#include "auth/creds_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/creds_json.h"
#include "aws/parse.h"
#include "core/timeutil.h"
#include "redduck/buf.h"

#define PROCESS_TIMEOUT_MS 60000
#define PROCESS_MAX_OUTPUT (1024 * 1024)

/* --- credential_process --------------------------------------------------------------------------------- */

/* Python shlex.split (POSIX mode) of a command line. Returns NULL-terminated argv (malloc'd strings) or
 * NULL on unbalanced quotes. */
static char **shell_split(const char *s)
{
    size_t cap = 8, n = 0;
    char **argv = calloc(cap, sizeof *argv);
    const char *p = s;
    while (argv && *p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        rd_buf tok = RD_BUF_INIT;
        rd_buf_append(&tok, "", 0);
        while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
            if (*p == '\'') {
                p++;
                while (*p && *p != '\'')
                    rd_buf_putc(&tok, *p++);
                if (!*p)
                    goto bad;
                p++;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
                        p++;
                    rd_buf_putc(&tok, *p++);
                }
                if (!*p)
                    goto bad;
                p++;
            } else if (*p == '\\') {
                p++;
                if (*p)
                    rd_buf_putc(&tok, *p++);
            } else {
                rd_buf_putc(&tok, *p++);
            }
        }
        if (n + 2 > cap) {
            cap *= 2;
            char **a = realloc(argv, cap * sizeof *a);
            if (!a) {
                rd_buf_free(&tok);
                goto bad;
            }
            argv = a;
        }
        argv[n++] = rd_buf_detach(&tok);
        argv[n] = NULL;
        continue;
    bad:
        rd_buf_free(&tok);
        for (size_t i = 0; i < n; i++)
            free(argv[i]);
        free(argv);
        return NULL;
    }
    return argv;
}

static void free_argv(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

rd_status rd_creds_parse_process_output(const char *json, size_t len, rd_credentials *out, rd_error *err)
{
    json_t *o = NULL;
    rd_status st = rd_json_parse_object(json, len, RD_E_AUTH, "the output", &o, err);
    if (st != RD_OK)
        goto out;
    json_t *version = json_object_get(o, "Version");
    if (!json_is_integer(version) || json_integer_value(version) != 1) {
        st = rd_error_set(err, RD_E_AUTH, "unsupported Version in the output (supported: 1)");
        goto out;
    }
    static const rd_creds_json_names names = { .access_key_id = "AccessKeyId",
                                               .secret_access_key = "SecretAccessKey",
                                               .session_token = "SessionToken",
                                               .expiration = "Expiration",
                                               .provider = "custom-process",
                                               .empty_is_missing = 1 };
    rd_creds_json_fault fault;
    st = rd_creds_from_json(o, &names, NULL, out, &fault, err);
    if (fault.kind == RD_CREDS_JSON_MISSING)
        st = rd_error_set(err, RD_E_AUTH, "the output lacks %s", fault.field);
    else if (fault.kind == RD_CREDS_JSON_BAD_EXPIRATION)
        st = rd_error_set(err, RD_E_AUTH, "the output's Expiration is not an ISO 8601 time");
    else if (fault.kind == RD_CREDS_JSON_EXPIRATION_NOT_STRING)
        st = rd_error_set(err, RD_E_AUTH, "the output's Expiration must be a string");
out:
    json_decref(o);
    return st;
}

typedef struct process_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
    char *command;
} process_provider;

/* Runs argv without a shell; stdout captured (bounded), stderr captured for the message. */
static rd_status run_process(char **argv, rd_buf *out, rd_buf *errout, int *exit_code, rd_error *err)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0)
        return rd_error_set(err, RD_E_IO, "pipe: %s", strerror(errno));
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return rd_error_set(err, RD_E_IO, "pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        return rd_error_set(err, RD_E_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
    int open_fds = 2;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rd_status st = RD_OK;
    char chunk[4096];
    while (open_fds > 0) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = PROCESS_TIMEOUT_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) {
            kill(pid, SIGKILL);
            st = rd_error_set(err, RD_E_AUTH, "did not finish within %d s", PROCESS_TIMEOUT_MS / 1000);
            break;
        }
        if (poll(fds, 2, (int)left) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(fds[i].fd, chunk, sizeof chunk);
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            rd_buf *b = i == 0 ? out : errout;
            if (b->len + (size_t)r <= PROCESS_MAX_OUTPUT)
                rd_buf_append(b, chunk, (size_t)r);
        }
    }
    OPENSSL_cleanse(chunk, sizeof chunk); /* the last read of stdout may hold the secret */
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return st;
}

static rd_status process_fetch(const char *profile, const char *command, rd_credentials *out, rd_error *err)
{
    char **argv = shell_split(command);
    if (!argv || !argv[0]) {
        free_argv(argv);
        return rd_error_set(err, RD_E_CONFIG,
                            "credential_process of profile '%s' cannot be split into a command (check its quotes)",
                            profile);
    }
    rd_buf sout = RD_BUF_INIT, serr = RD_BUF_INIT;
    int code = 0;
    rd_status st = run_process(argv, &sout, &serr, &code, err);
    if (st == RD_OK && code != 0) {
        /* stderr is the process's own message; stdout may hold secrets and is never shown */
        size_t n = serr.len;
        while (n && (serr.data[n - 1] == '\n' || serr.data[n - 1] == '\r'))
            n--;
        st = rd_error_set(err, RD_E_AUTH, "credential_process of profile '%s' (%s) exited with %d%s%.*s", profile,
                          argv[0], code, n ? ": " : "", (int)(n > 300 ? 300 : n), n ? serr.data : "");
    } else if (st == RD_OK) {
        st = rd_creds_parse_process_output(rd_buf_cstr(&sout), sout.len, out, err);
        if (st != RD_OK)
            rd_error_prefix(err, "credential_process of profile '%s' (%s): ", profile, argv[0]);
    } else {
        rd_error_prefix(err, "credential_process of profile '%s' (%s) ", profile, argv[0]);
    }
    if (st == RD_OK) {
        rd_buf src = RD_BUF_INIT;
        rd_buf_printf(&src, "credential_process of profile %s", profile);
        rd_credentials_set(&out->source, rd_buf_cstr(&src));
        rd_buf_free(&src);
    }
    rd_buf_free_secure(&sout);
    rd_buf_free(&serr);
    free_argv(argv);
    return st;
}

static rd_status process_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    process_provider *p = (process_provider *)base;
    return process_fetch(p->profile, p->command, out, err);
}

static void process_destroy(rd_creds_provider *base)
{
    process_provider *p = (process_provider *)base;
    free(p->profile);
    free(p->command);
    free(p);
}

static const rd_creds_provider_vtable process_vtable = { "custom-process", process_get, process_destroy };

rd_status rd_creds_process_new(const rd_creds_ctx *ctx, const char *profile, const char *command,
                               rd_creds_provider **out, rd_error *err)
{
    process_provider *p = calloc(1, sizeof *p);
    if (!p || !(p->profile = strdup(profile)) || !(p->command = strdup(command))) {
        if (p)
            free(p->profile);
        free(p);
        return rd_creds_oom(err);
    }
    p->base.vt = &process_vtable;
    p->ctx = ctx;
    *out = &p->base;
    return RD_OK;
}

/* The profile's credential_process, read at get() (NOT_FOUND when the profile has none). */
typedef struct profile_process_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
} profile_process_provider;

static rd_status profile_process_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    profile_process_provider *p = (profile_process_provider *)base;
    const char *cmd = rd_creds_nonempty(rd_aws_config_get(p->ctx->cfg, p->profile, "credential_process"));
    if (!cmd)
        return rd_error_set(err, RD_E_NOT_FOUND, "profile '%s' has no credential_process", p->profile);
    return process_fetch(p->profile, cmd, out, err);
}

static void profile_process_destroy(rd_creds_provider *base)
{
    profile_process_provider *p = (profile_process_provider *)base;
    free(p->profile);
    free(p);
}

static const rd_creds_provider_vtable profile_process_vtable = { "custom-process", profile_process_get,
                                                                 profile_process_destroy };

rd_status rd_creds_profile_process_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out,
                                     rd_error *err)
{
    profile_process_provider *p = calloc(1, sizeof *p);
    if (!p || !(p->profile = strdup(profile))) {
        free(p);
        return rd_creds_oom(err);
    }
    p->base.vt = &profile_process_vtable;
    p->ctx = ctx;
    *out = &p->base;
    return RD_OK;
}
