/* opts.c — the CLI's one option parser (declared in cli.h) and its usage message: the spellings every
 * command accepts (--name V, --name=V, --help, the shared AWS options) and the text of each mistake.
 * What a value means (numbers, durations, sizes: core/parse.h) is the command's business. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int rd_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "redduck %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see `redduck %s --help`)\n", cmd);
    va_end(ap);
    return 2;
}

/* The shared AWS options, as offsets into rd_session_options. */
static const struct {
    const char *name;
    rd_cli_opt_kind kind;
    size_t offset;
} aws_opts[] = {
    { "--profile", RD_CLI_VALUE, offsetof(rd_session_options, profile) },
    { "--region", RD_CLI_VALUE, offsetof(rd_session_options, region) },
    { "--endpoint-url", RD_CLI_VALUE, offsetof(rd_session_options, endpoint_url) },
    { "-v", RD_CLI_VERBOSE, offsetof(rd_session_options, verbose) },
    { "--verbose", RD_CLI_VERBOSE, offsetof(rd_session_options, verbose) },
    { "-vv", RD_CLI_DEBUG, offsetof(rd_session_options, verbose) },
    { "--debug", RD_CLI_DEBUG, offsetof(rd_session_options, verbose) },
};

static int name_is(const char *want, const char *name, size_t len)
{
    return want && strlen(want) == len && strncmp(want, name, len) == 0;
}

/* The entry named name[0..len) in opts (an AWS option resolved into *tmp), or NULL. */
static const rd_cli_opt *find_opt(const rd_cli_opt *opts, const char *name, size_t len, rd_cli_opt *tmp)
{
    for (const rd_cli_opt *o = opts; o->kind != RD_CLI_END; o++) {
        if (o->kind == RD_CLI_AWS) {
            for (size_t k = 0; k < sizeof aws_opts / sizeof aws_opts[0]; k++)
                if (name_is(aws_opts[k].name, name, len)) {
                    *tmp = (rd_cli_opt){ aws_opts[k].name, aws_opts[k].kind, (char *)o->dest + aws_opts[k].offset,
                                         NULL };
                    return tmp;
                }
        } else if (name_is(o->name, name, len)) { /* the unnamed kinds never match */
            return o;
        }
    }
    return NULL;
}

static int unknown_option(const rd_cli_spec *spec, const char *arg)
{
    if (spec->unknown)
        return rd_cli_usage_error(spec->cmd, "%s", spec->unknown);
    return rd_cli_usage_error(spec->cmd, "unknown option '%s'", arg);
}

/* A positional argument, for the RD_CLI_ARGS or RD_CLI_DIR entry. */
static int positional(const rd_cli_spec *spec, const char *arg)
{
    for (const rd_cli_opt *o = spec->opts; o->kind != RD_CLI_END; o++) {
        if (o->kind == RD_CLI_ARGS)
            return o->parse(arg, o->dest);
        if (o->kind == RD_CLI_DIR) {
            const char **dir = o->dest;
            if (*dir)
                return rd_cli_usage_error(spec->cmd, "one project folder only ('%s' and '%s')", *dir, arg);
            *dir = arg;
            return 0;
        }
    }
    return unknown_option(spec, arg);
}

/* Applies one matched option; value is NULL for the kinds without one. */
static int apply(const rd_cli_opt *o, const char *value)
{
    if (o->parse)
        return o->parse(value, o->dest);
    switch (o->kind) {
    case RD_CLI_FLAG:
        *(int *)o->dest = 1;
        break;
    case RD_CLI_VERBOSE:
        *(int *)o->dest += 1;
        break;
    case RD_CLI_DEBUG:
        *(int *)o->dest = 2;
        break;
    case RD_CLI_VALUE:
        *(const char **)o->dest = value;
        break;
    default:
        break;
    }
    return 0;
}

int rd_cli_parse(const rd_cli_spec *spec, int argc, char **argv)
{
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && (spec->flags & RD_CLI_DASH_DASH) && strcmp(a, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (options_done || a[0] != '-' || (a[1] == '\0' && (spec->flags & RD_CLI_DASH_IS_ARG))) {
            int rc = positional(spec, a);
            if (rc != 0)
                return rc;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(spec->help, stdout);
            return 0;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        rd_cli_opt aws;
        const rd_cli_opt *o = find_opt(spec->opts, a, len, &aws);
        if (!o || (eq && o->kind != RD_CLI_VALUE))
            return unknown_option(spec, a);
        const char *value = NULL;
        if (o->kind == RD_CLI_VALUE) {
            value = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!value || (!value[0] && (spec->flags & RD_CLI_NONEMPTY)))
                return rd_cli_usage_error(spec->cmd, "%s needs a value", o->name);
        }
        int rc = apply(o, value);
        if (rc != 0)
            return rc;
    }
    return RD_CLI_CONTINUE;
}
