/* creds_chain.c — the local credential providers (static, environment, profile files, credential_process,
 * assume role), the cache, and the default chain in the AWS CLI's order (see creds_chain.h). Behaviour
 * follows botocore's credentials.py: the explicit-profile rule, source_profile chains with cycle
 * detection, credential_source, partial-credential errors, the refresh windows. */
#include "auth/creds_chain.h"

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
#include "aws/parse.h"
#include "core/timeutil.h"
#include "redduck/buf.h"
#include "services/sts.h"

#define PROCESS_TIMEOUT_MS 60000
#define PROCESS_MAX_OUTPUT (1024 * 1024)
#define MANDATORY_REFRESH_S (10 * 60)
#define MAX_ROLE_CHAIN 16

time_t rd_creds_ctx_now(const rd_creds_ctx *ctx)
{
    return ctx && ctx->now ? ctx->now() : time(NULL);
}

static rd_status oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* Fills a credentials value from parts (copies). */
static rd_status fill(rd_credentials *out, const char *key, const char *secret, const char *token, time_t exp,
                      const char *provider, const char *source, rd_error *err)
{
    if (rd_credentials_set(&out->access_key_id, key) != RD_OK ||
        rd_credentials_set(&out->secret_access_key, secret) != RD_OK ||
        rd_credentials_set(&out->session_token, nonempty(token)) != RD_OK ||
        rd_credentials_set(&out->provider, provider) != RD_OK || rd_credentials_set(&out->source, source) != RD_OK)
        return oom(err);
    out->expiration = exp;
    return RD_OK;
}

/* --- static ------------------------------------------------------------------------------------------- */

typedef struct static_provider {
    rd_creds_provider base;
    rd_credentials creds;
} static_provider;

static rd_status static_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    static_provider *p = (static_provider *)base;
    rd_credentials_free(out);
    return rd_credentials_copy(out, &p->creds) == RD_OK ? RD_OK : oom(err);
}

static void static_destroy(rd_creds_provider *base)
{
    static_provider *p = (static_provider *)base;
    rd_credentials_free(&p->creds);
    free(p);
}

static const rd_creds_provider_vtable static_vtable = { "static", static_get, static_destroy };

rd_status rd_creds_static_new(const char *access_key_id, const char *secret_access_key, const char *session_token,
                              const char *provider_name, const char *source, rd_creds_provider **out, rd_error *err)
{
    if (!nonempty(access_key_id) || !nonempty(secret_access_key))
        return rd_error_set(err, RD_E_CONFIG, "%s: an access key id needs its secret access key (and vice versa)",
                            provider_name ? provider_name : "explicit credentials");
    static_provider *p = calloc(1, sizeof *p);
    if (!p)
        return oom(err);
    p->base.vt = &static_vtable;
    rd_credentials_init(&p->creds);
    if (fill(&p->creds, access_key_id, secret_access_key, session_token, 0, provider_name ? provider_name : "explicit",
             source, err) != RD_OK) {
        static_destroy(&p->base);
        return RD_E_INTERNAL;
    }
    *out = &p->base;
    return RD_OK;
}

/* --- environment -------------------------------------------------------------------------------------- */

static rd_status env_fetch(rd_credentials *out, rd_error *err)
{
    const char *key = nonempty(getenv("AWS_ACCESS_KEY_ID"));
    const char *secret = nonempty(getenv("AWS_SECRET_ACCESS_KEY"));
    const char *token = nonempty(getenv("AWS_SESSION_TOKEN"));
    if (!token)
        token = nonempty(getenv("AWS_SECURITY_TOKEN"));
    if (!key)
        return rd_error_set(err, RD_E_NOT_FOUND, "AWS_ACCESS_KEY_ID is not set");
    if (!secret)
        return rd_error_set(err, RD_E_CONFIG,
                            "partial credentials in the environment: AWS_ACCESS_KEY_ID is set but "
                            "AWS_SECRET_ACCESS_KEY is not — set both, or unset AWS_ACCESS_KEY_ID");
    return fill(out, key, secret, token, 0, "env", "AWS_ACCESS_KEY_ID", err);
}

static rd_status env_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    (void)base;
    return env_fetch(out, err);
}

static void plain_destroy(rd_creds_provider *base)
{
    free(base);
}

static const rd_creds_provider_vtable env_vtable = { "env", env_get, plain_destroy };

rd_status rd_creds_env_new(rd_creds_provider **out, rd_error *err)
{
    rd_creds_provider *p = calloc(1, sizeof *p);
    if (!p)
        return oom(err);
    p->vt = &env_vtable;
    *out = p;
    return RD_OK;
}

/* --- keys in one of the two files --------------------------------------------------------------------- */

typedef struct file_keys_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
    int credentials_file; /* 1: the shared credentials file, 0: the config file */
} file_keys_provider;

static rd_status file_keys_fetch(const rd_creds_ctx *ctx, const char *profile, int credentials_file,
                                 rd_credentials *out, rd_error *err)
{
    const char *(*get)(const rd_aws_config *, const char *, const char *) =
        credentials_file ? rd_aws_config_credentials_get : rd_aws_config_profile_get;
    const char *key = nonempty(get(ctx->cfg, profile, "aws_access_key_id"));
    const char *secret = nonempty(get(ctx->cfg, profile, "aws_secret_access_key"));
    const char *token = nonempty(get(ctx->cfg, profile, "aws_session_token"));
    if (!token)
        token = nonempty(get(ctx->cfg, profile, "aws_security_token"));
    const char *path = credentials_file ? rd_aws_config_credentials_path(ctx->cfg) : rd_aws_config_config_path(ctx->cfg);
    if (!key && !secret)
        return rd_error_set(err, RD_E_NOT_FOUND, "no keys for profile '%s' in %s", profile, path ? path : "?");
    if (!key || !secret)
        return rd_error_set(err, RD_E_CONFIG,
                            "partial credentials for profile '%s' in %s: %s is missing — add it or remove the other key",
                            profile, path ? path : "?", key ? "aws_secret_access_key" : "aws_access_key_id");
    char *source = rd_aws_config_describe(ctx->cfg, profile, "aws_access_key_id");
    if (!credentials_file) {
        free(source);
        rd_buf b = RD_BUF_INIT;
        rd_buf_printf(&b, "%s [%s%s]", path ? path : "?", strcmp(profile, "default") == 0 ? "" : "profile ", profile);
        source = rd_buf_detach(&b);
    }
    rd_status st = fill(out, key, secret, token, 0, credentials_file ? "shared-credentials-file" : "config-file",
                        source, err);
    free(source);
    return st;
}

static rd_status file_keys_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    file_keys_provider *p = (file_keys_provider *)base;
    return file_keys_fetch(p->ctx, p->profile, p->credentials_file, out, err);
}

static void named_destroy(rd_creds_provider *base)
{
    file_keys_provider *p = (file_keys_provider *)base;
    free(p->profile);
    free(p);
}

static const rd_creds_provider_vtable file_keys_vtable = { "file-keys", file_keys_get, named_destroy };

static rd_status file_keys_new(const rd_creds_ctx *ctx, const char *profile, int credentials_file,
                               rd_creds_provider **out, rd_error *err)
{
    file_keys_provider *p = calloc(1, sizeof *p);
    if (!p || !(p->profile = strdup(profile))) {
        free(p);
        return oom(err);
    }
    p->base.vt = &file_keys_vtable;
    p->ctx = ctx;
    p->credentials_file = credentials_file;
    *out = &p->base;
    return RD_OK;
}

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
    const char *key = json_string_value(json_object_get(o, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(o, "SecretAccessKey"));
    const char *token = json_string_value(json_object_get(o, "SessionToken"));
    const char *exp = json_string_value(json_object_get(o, "Expiration"));
    if (!nonempty(key) || !nonempty(secret)) {
        st = rd_error_set(err, RD_E_AUTH, "the output lacks %s", !nonempty(key) ? "AccessKeyId" : "SecretAccessKey");
        goto out;
    }
    time_t expiration = 0;
    if (exp && rd_time_parse_iso8601(exp, &expiration) != 0) {
        st = rd_error_set(err, RD_E_AUTH, "the output's Expiration is not an ISO 8601 time");
        goto out;
    }
    if (json_object_get(o, "Expiration") && !exp) {
        st = rd_error_set(err, RD_E_AUTH, "the output's Expiration must be a string");
        goto out;
    }
    st = fill(out, key, secret, token, expiration, "custom-process", NULL, err);
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
        return oom(err);
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
    const char *cmd = nonempty(rd_aws_config_get(p->ctx->cfg, p->profile, "credential_process"));
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

static rd_status profile_process_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out,
                                     rd_error *err)
{
    profile_process_provider *p = calloc(1, sizeof *p);
    if (!p || !(p->profile = strdup(profile))) {
        free(p);
        return oom(err);
    }
    p->base.vt = &profile_process_vtable;
    p->ctx = ctx;
    *out = &p->base;
    return RD_OK;
}

/* --- assume role ---------------------------------------------------------------------------------------- */

typedef struct assume_role_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
    rd_creds_provider *source;
    char *role_arn, *session_name, *external_id;
    int duration_seconds;
} assume_role_provider;

static rd_status assume_role_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    assume_role_provider *p = (assume_role_provider *)base;
    rd_aws_client c;
    memset(&c, 0, sizeof c);
    c.http = p->ctx->http;
    c.creds = p->source;
    c.cfg = p->ctx->cfg;
    c.profile = p->profile;
    const char *region = rd_aws_config_get(p->ctx->cfg, p->profile, "region");
    c.region = p->ctx->region ? p->ctx->region : region ? region : "us-east-1";
    c.log = p->ctx->log;
    c.now = p->ctx->now;
    rd_sts_assume_role_input in = { p->role_arn, p->session_name, p->external_id, p->duration_seconds, NULL, NULL };
    rd_status st = rd_sts_assume_role(&c, &in, out, err);
    if (st == RD_E_NOT_FOUND && err && !err->http_status) {
        /* the source had nothing (botocore: InvalidConfigError) */
        err->code = st = RD_E_CONFIG;
    }
    if (st != RD_OK) {
        rd_error_prefix(err, "profile '%s': ", p->profile);
        if (st == RD_E_NOT_FOUND)
            st = err ? (err->code = RD_E_REMOTE) : RD_E_REMOTE;
        return st;
    }
    rd_buf src = RD_BUF_INIT;
    rd_buf_printf(&src, "role %s (profile %s)", p->role_arn, p->profile);
    rd_credentials_set(&out->source, rd_buf_cstr(&src));
    rd_buf_free(&src);
    return RD_OK;
}

static void assume_role_destroy(rd_creds_provider *base)
{
    assume_role_provider *p = (assume_role_provider *)base;
    rd_creds_provider_free(p->source);
    free(p->profile);
    free(p->role_arn);
    free(p->session_name);
    free(p->external_id);
    free(p);
}

static const rd_creds_provider_vtable assume_role_vtable = { "assume-role", assume_role_get, assume_role_destroy };

rd_status rd_creds_assume_role_new(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider *source,
                                   const char *role_arn, const char *session_name, const char *external_id,
                                   int duration_seconds, rd_creds_provider **out, rd_error *err)
{
    assume_role_provider *p = calloc(1, sizeof *p);
    if (!p) {
        rd_creds_provider_free(source);
        return oom(err);
    }
    p->base.vt = &assume_role_vtable;
    p->ctx = ctx;
    p->source = source;
    p->profile = strdup(profile);
    p->role_arn = strdup(role_arn);
    p->session_name = session_name ? strdup(session_name) : NULL;
    p->external_id = external_id ? strdup(external_id) : NULL;
    p->duration_seconds = duration_seconds;
    if (!p->profile || !p->role_arn) {
        assume_role_destroy(&p->base);
        return oom(err);
    }
    *out = &p->base;
    return RD_OK;
}

/* --- the chain ------------------------------------------------------------------------------------------ */

typedef struct chain_provider {
    rd_creds_provider base;
    rd_creds_provider **items;
    size_t count;
    char *profile;
    int top;             /* the default chain: exhausted → RD_E_AUTH; nested chains pass with NOT_FOUND */
    char *missing_message;
} chain_provider;

static rd_status chain_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    chain_provider *p = (chain_provider *)base;
    if (p->missing_message)
        return rd_error_set(err, RD_E_CONFIG, "%s", p->missing_message);
    for (size_t i = 0; i < p->count; i++) {
        rd_error e;
        rd_error_clear(&e);
        rd_credentials_free(out);
        rd_status st = p->items[i]->vt->get(p->items[i], out, &e);
        if (st == RD_OK)
            return RD_OK;
        if (st != RD_E_NOT_FOUND) {
            if (err)
                *err = e;
            return st;
        }
    }
    if (!p->top)
        return rd_error_set(err, RD_E_NOT_FOUND, "the profile '%s' has no credentials (no keys, web identity, SSO or "
                                                 "credential_process)",
                            p->profile);
    return rd_error_set(err, RD_E_AUTH,
                        "unable to locate credentials for profile '%s': configure them with `aws configure%s%s`, set "
                        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use `aws sso login`",
                        p->profile, strcmp(p->profile, "default") ? " --profile " : "",
                        strcmp(p->profile, "default") ? p->profile : "");
}

static void chain_destroy(rd_creds_provider *base)
{
    chain_provider *p = (chain_provider *)base;
    for (size_t i = 0; i < p->count; i++)
        rd_creds_provider_free(p->items[i]);
    free(p->items);
    free(p->profile);
    free(p->missing_message);
    free(p);
}

static const rd_creds_provider_vtable chain_vtable = { "chain", chain_get, chain_destroy };

static rd_status chain_add(chain_provider *c, rd_creds_provider *p)
{
    rd_creds_provider **a = realloc(c->items, (c->count + 1) * sizeof *a);
    if (!a) {
        rd_creds_provider_free(p);
        return RD_E_INTERNAL;
    }
    c->items = a;
    c->items[c->count++] = p;
    return RD_OK;
}

static chain_provider *chain_alloc(const char *profile)
{
    chain_provider *c = calloc(1, sizeof *c);
    if (!c || !(c->profile = strdup(profile))) {
        free(c);
        return NULL;
    }
    c->base.vt = &chain_vtable;
    return c;
}

/* The providers a source profile is resolved with (botocore's ProfileProviderBuilder, env disabled):
 * web identity, SSO, credentials file, credential_process, config file. */
static rd_status profile_source_chain(const rd_creds_ctx *ctx, const char *profile, rd_creds_provider **out,
                                      rd_error *err)
{
    chain_provider *c = chain_alloc(profile);
    if (!c)
        return oom(err);
    rd_creds_provider *p;
    rd_status st = RD_OK;
    const char *token_file = nonempty(rd_aws_config_get(ctx->cfg, profile, "web_identity_token_file"));
    const char *role = nonempty(rd_aws_config_get(ctx->cfg, profile, "role_arn"));
    if (token_file && role) {
        if ((st = rd_creds_web_identity_new(ctx, profile, role, token_file,
                                            rd_aws_config_get(ctx->cfg, profile, "role_session_name"), &p, err)) ==
            RD_OK)
            st = chain_add(c, p);
    }
    if (st == RD_OK && (st = rd_creds_sso_new(ctx, profile, &p, err)) == RD_OK)
        st = chain_add(c, p);
    if (st == RD_OK && (st = file_keys_new(ctx, profile, 1, &p, err)) == RD_OK)
        st = chain_add(c, p);
    if (st == RD_OK && (st = profile_process_new(ctx, profile, &p, err)) == RD_OK)
        st = chain_add(c, p);
    if (st == RD_OK && (st = file_keys_new(ctx, profile, 0, &p, err)) == RD_OK)
        st = chain_add(c, p);
    if (st != RD_OK) {
        chain_destroy(&c->base);
        return st;
    }
    *out = &c->base;
    return RD_OK;
}

static int has_static(const rd_creds_ctx *ctx, const char *profile)
{
    return rd_aws_config_get(ctx->cfg, profile, "aws_access_key_id") ||
           rd_aws_config_get(ctx->cfg, profile, "aws_secret_access_key");
}

/* Builds the assume-role provider for `profile` (which has role_arn), resolving source_profile chains.
 * visited holds the profiles already on the chain (cycle detection). */
static rd_status build_assume_role(const rd_creds_ctx *ctx, const char *profile, const char **visited,
                                   size_t nvisited, rd_creds_provider **out, rd_error *err)
{
    const rd_aws_config *cfg = ctx->cfg;
    const char *role = rd_aws_config_get(cfg, profile, "role_arn");
    const char *source_profile = nonempty(rd_aws_config_get(cfg, profile, "source_profile"));
    const char *credential_source = nonempty(rd_aws_config_get(cfg, profile, "credential_source"));
    const char *path = rd_aws_config_config_path(cfg);
    if (nonempty(rd_aws_config_get(cfg, profile, "mfa_serial")))
        return rd_error_set(err, RD_E_CONFIG,
                            "profile '%s' needs an MFA code (mfa_serial), and redduck cannot prompt for one: get "
                            "temporary credentials first (`aws sts get-session-token` or a credential_process) and "
                            "use those",
                            profile);
    if (source_profile && credential_source)
        return rd_error_set(err, RD_E_CONFIG,
                            "profile '%s' in %s has both source_profile and credential_source: keep only one", profile,
                            path ? path : "the config file");
    if (!source_profile && !credential_source)
        return rd_error_set(err, RD_E_CONFIG,
                            "profile '%s' in %s has role_arn but neither source_profile nor credential_source: add "
                            "one of them",
                            profile, path ? path : "the config file");
    rd_creds_provider *source = NULL;
    rd_status st = RD_OK;
    if (credential_source) {
        if (strcmp(credential_source, "Environment") == 0)
            st = rd_creds_env_new(&source, err);
        else if (strcmp(credential_source, "Ec2InstanceMetadata") == 0)
            st = rd_creds_imds_new(ctx, &source, err);
        else if (strcmp(credential_source, "EcsContainer") == 0)
            st = rd_creds_container_new(ctx, &source, err);
        else
            return rd_error_set(err, RD_E_CONFIG,
                                "profile '%s': credential_source '%s' is not one of Environment, Ec2InstanceMetadata, "
                                "EcsContainer",
                                profile, credential_source);
    } else {
        if (!rd_aws_config_has_profile(cfg, source_profile))
            return rd_error_set(err, RD_E_CONFIG,
                                "the source_profile '%s' named by profile '%s' does not exist in %s or %s", source_profile,
                                profile, path ? path : "the config file",
                                rd_aws_config_credentials_path(cfg) ? rd_aws_config_credentials_path(cfg)
                                                                    : "the credentials file");
        int seen = 0;
        for (size_t i = 0; i < nvisited; i++)
            if (strcmp(visited[i], source_profile) == 0)
                seen = 1;
        if (seen && (strcmp(source_profile, profile) != 0 || !has_static(ctx, source_profile))) {
            rd_buf chain = RD_BUF_INIT;
            for (size_t i = 0; i < nvisited; i++)
                rd_buf_printf(&chain, "%s -> ", visited[i]);
            rd_buf_puts(&chain, source_profile);
            st = rd_error_set(err, RD_E_CONFIG, "source_profile loop in %s: %s — break the cycle",
                              path ? path : "the config file", rd_buf_cstr(&chain));
            rd_buf_free(&chain);
            return st;
        }
        if (nvisited >= MAX_ROLE_CHAIN)
            return rd_error_set(err, RD_E_CONFIG, "profile '%s': the source_profile chain is longer than %d", profile,
                                MAX_ROLE_CHAIN);
        int source_is_role = nonempty(rd_aws_config_get(cfg, source_profile, "role_arn")) != NULL;
        if (has_static(ctx, source_profile) || !source_is_role || seen) {
            /* static keys (or web identity, SSO, credential_process) of the source profile */
            rd_creds_provider *sc = NULL;
            if ((st = profile_source_chain(ctx, source_profile, &sc, err)) != RD_OK)
                return st;
            source = sc;
        } else {
            visited[nvisited] = source_profile;
            st = build_assume_role(ctx, source_profile, visited, nvisited + 1, &source, err);
        }
    }
    if (st != RD_OK)
        return st;
    const char *duration = rd_aws_config_get(cfg, profile, "duration_seconds");
    int dur = 0;
    if (duration) {
        char *end = NULL;
        long v = strtol(duration, &end, 10);
        if (!*duration || *end || v <= 0 || v > 43200) {
            rd_creds_provider_free(source);
            return rd_error_set(err, RD_E_CONFIG, "profile '%s': duration_seconds '%s' is not a number of seconds",
                                profile, duration);
        }
        dur = (int)v;
    }
    rd_creds_provider *ar = NULL;
    st = rd_creds_assume_role_new(ctx, profile, source, role, rd_aws_config_get(cfg, profile, "role_session_name"),
                                  rd_aws_config_get(cfg, profile, "external_id"), dur, &ar, err);
    if (st != RD_OK)
        return st;
    /* every link of a role chain caches its own temporary credentials */
    return rd_creds_cached_new(ctx, ar, out, err);
}

/* The profile's role (NOT_FOUND when it has no role_arn), built lazily so a broken role config only
 * matters when the chain reaches it. */
typedef struct profile_role_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    char *profile;
    rd_creds_provider *built;
    pthread_mutex_t lock;
} profile_role_provider;

static rd_status profile_role_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    profile_role_provider *p = (profile_role_provider *)base;
    if (!nonempty(rd_aws_config_get(p->ctx->cfg, p->profile, "role_arn")))
        return rd_error_set(err, RD_E_NOT_FOUND, "profile '%s' has no role_arn", p->profile);
    /* a role profile with a web identity token file is the web-identity provider's */
    if (nonempty(rd_aws_config_get(p->ctx->cfg, p->profile, "web_identity_token_file")) &&
        !rd_aws_config_get(p->ctx->cfg, p->profile, "source_profile") &&
        !rd_aws_config_get(p->ctx->cfg, p->profile, "credential_source"))
        return rd_error_set(err, RD_E_NOT_FOUND, "profile '%s' uses a web identity token", p->profile);
    pthread_mutex_lock(&p->lock);
    rd_status st = RD_OK;
    if (!p->built) {
        const char *visited[MAX_ROLE_CHAIN + 1] = { p->profile };
        st = build_assume_role(p->ctx, p->profile, visited, 1, &p->built, err);
    }
    pthread_mutex_unlock(&p->lock);
    if (st != RD_OK)
        return st;
    return p->built->vt->get(p->built, out, err);
}

static void profile_role_destroy(rd_creds_provider *base)
{
    profile_role_provider *p = (profile_role_provider *)base;
    rd_creds_provider_free(p->built);
    pthread_mutex_destroy(&p->lock);
    free(p->profile);
    free(p);
}

static const rd_creds_provider_vtable profile_role_vtable = { "assume-role", profile_role_get, profile_role_destroy };

rd_status rd_creds_profile_new(const rd_creds_ctx *ctx, const char *profile, int explicit_profile,
                               rd_creds_provider **out, rd_error *err)
{
    if (explicit_profile && !rd_aws_config_has_profile(ctx->cfg, profile))
        return rd_error_set(err, RD_E_CONFIG, "the config profile (%s) could not be found in %s or %s", profile,
                            rd_aws_config_config_path(ctx->cfg) ? rd_aws_config_config_path(ctx->cfg) : "-",
                            rd_aws_config_credentials_path(ctx->cfg) ? rd_aws_config_credentials_path(ctx->cfg) : "-");
    chain_provider *c = chain_alloc(profile);
    profile_role_provider *r = calloc(1, sizeof *r);
    if (!c || !r || !(r->profile = strdup(profile))) {
        if (c)
            chain_destroy(&c->base);
        free(r);
        return oom(err);
    }
    r->base.vt = &profile_role_vtable;
    r->ctx = ctx;
    pthread_mutex_init(&r->lock, NULL);
    rd_status st = chain_add(c, &r->base);
    rd_creds_provider *rest = NULL;
    if (st == RD_OK && (st = profile_source_chain(ctx, profile, &rest, err)) == RD_OK)
        st = chain_add(c, rest);
    if (st != RD_OK) {
        chain_destroy(&c->base);
        return st == RD_E_INTERNAL ? oom(err) : st;
    }
    *out = &c->base;
    return RD_OK;
}

/* --- cache ---------------------------------------------------------------------------------------------- */

typedef struct cached_provider {
    rd_creds_provider base;
    const rd_creds_ctx *ctx;
    rd_creds_provider *inner;
    pthread_mutex_t lock;
    rd_credentials current;
    int have;
} cached_provider;

static rd_status cached_get(rd_creds_provider *base, rd_credentials *out, rd_error *err)
{
    cached_provider *p = (cached_provider *)base;
    pthread_mutex_lock(&p->lock);
    time_t now = rd_creds_ctx_now(p->ctx);
    rd_status st = RD_OK;
    int fresh = p->have && (p->current.expiration == 0 || p->current.expiration - now > RD_CREDS_REFRESH_WINDOW_S);
    if (!fresh) {
        rd_credentials next;
        rd_credentials_init(&next);
        st = p->inner->vt->get(p->inner, &next, err);
        if (st == RD_OK) {
            rd_credentials_free(&p->current);
            p->current = next;
            p->have = 1;
        } else {
            rd_credentials_free(&next);
            /* botocore: a failed advisory refresh keeps credentials valid beyond the mandatory window */
            if (p->have && p->current.expiration - now > MANDATORY_REFRESH_S)
                st = RD_OK;
        }
    }
    if (st == RD_OK) {
        rd_credentials_free(out);
        if (rd_credentials_copy(out, &p->current) != RD_OK)
            st = oom(err);
    }
    pthread_mutex_unlock(&p->lock);
    return st;
}

static void cached_destroy(rd_creds_provider *base)
{
    cached_provider *p = (cached_provider *)base;
    rd_creds_provider_free(p->inner);
    rd_credentials_free(&p->current);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static const rd_creds_provider_vtable cached_vtable = { "cached", cached_get, cached_destroy };

rd_status rd_creds_cached_new(const rd_creds_ctx *ctx, rd_creds_provider *inner, rd_creds_provider **out,
                              rd_error *err)
{
    cached_provider *p = calloc(1, sizeof *p);
    if (!p) {
        rd_creds_provider_free(inner);
        return oom(err);
    }
    p->base.vt = &cached_vtable;
    p->ctx = ctx;
    p->inner = inner;
    pthread_mutex_init(&p->lock, NULL);
    rd_credentials_init(&p->current);
    *out = &p->base;
    return RD_OK;
}

/* --- the default chain ------------------------------------------------------------------------------------ */

rd_status rd_creds_chain_new(const rd_creds_ctx *ctx, const rd_creds_chain_options *opts, rd_creds_provider **out,
                             rd_error *err)
{
    rd_creds_chain_options none = { 0 };
    if (!opts)
        opts = &none;
    const char *profile = rd_aws_profile_name(opts->profile);
    /* A profile named by --profile or AWS_PROFILE must exist (botocore's ProfileNotFound). */
    int named = nonempty(opts->profile) || nonempty(getenv("AWS_PROFILE")) || nonempty(getenv("AWS_DEFAULT_PROFILE"));
    chain_provider *c = chain_alloc(profile);
    if (!c)
        return oom(err);
    c->top = 1;
    rd_creds_provider *p = NULL;
    rd_status st = RD_OK;
    if (nonempty(opts->access_key_id) || nonempty(opts->secret_access_key)) {
        if ((st = rd_creds_static_new(opts->access_key_id, opts->secret_access_key, opts->session_token, "explicit",
                                      "explicit keys", &p, err)) == RD_OK)
            st = chain_add(c, p);
    }
    if (st == RD_OK && named && !rd_aws_config_has_profile(ctx->cfg, profile)) {
        /* botocore refuses a named profile that exists nowhere, even when the environment has keys;
         * explicit keys (flags, project) still win because they come first */
        rd_error e;
        rd_error_clear(&e);
        rd_creds_profile_new(ctx, profile, 1, &p, &e);
        chain_provider *missing = chain_alloc(profile);
        if (!missing || !(missing->missing_message = strdup(e.message))) {
            if (missing)
                chain_destroy(&missing->base);
            st = RD_E_INTERNAL;
        } else {
            st = chain_add(c, &missing->base);
        }
    } else if (st == RD_OK) {
        /* botocore: an explicitly passed profile negates the environment provider */
        if (!nonempty(opts->profile) && (st = rd_creds_env_new(&p, err)) == RD_OK)
            st = chain_add(c, p);
        /* role_arn profiles, web identity (env, then profile), SSO, credentials file, process, config file */
        profile_role_provider *r = calloc(1, sizeof *r);
        if (!r || !(r->profile = strdup(profile))) {
            free(r);
            st = RD_E_INTERNAL;
        } else {
            r->base.vt = &profile_role_vtable;
            r->ctx = ctx;
            pthread_mutex_init(&r->lock, NULL);
            if (st == RD_OK)
                st = chain_add(c, &r->base);
            else
                profile_role_destroy(&r->base);
        }
        if (st == RD_OK && (st = rd_creds_web_identity_env_new(ctx, &p, err)) == RD_OK)
            st = chain_add(c, p);
        /* the profile's own web_identity_token_file, SSO, credentials file, process, config file */
        rd_creds_provider *rest = NULL;
        if (st == RD_OK && (st = profile_source_chain(ctx, profile, &rest, err)) == RD_OK)
            st = chain_add(c, rest);
        if (st == RD_OK && (st = rd_creds_container_new(ctx, &p, err)) == RD_OK)
            st = chain_add(c, p);
        if (st == RD_OK && (st = rd_creds_imds_new(ctx, &p, err)) == RD_OK)
            st = chain_add(c, p);
    }
    if (st != RD_OK) {
        chain_destroy(&c->base);
        return st == RD_E_INTERNAL ? oom(err) : st;
    }
    return rd_creds_cached_new(ctx, &c->base, out, err);
}
