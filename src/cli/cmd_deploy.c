/* cmd_deploy.c — `redduck deploy [DIR]`: checks the project locally, uploads it to a redduck server as a new
 * version (redduck/cloud.h packs it: .gitignore followed, .env, data/ and *.duckdb never included), optionally
 * pushes the local .env, asks for the explicit keys the server says are still missing (hidden input, as
 * `env configure`), and prints the project, its version and what is still missing. Never prints a value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "redduck/buf.h"
#include "redduck/project.h"

static const char deploy_help[] =
    "usage: redduck deploy [DIR] [--project NAME] [--environment prod|dev] [--push-env] [--no-prompt]\n"
    "                      [--yes] [--server URL] [--ca-cert FILE] [--insecure-http] [-v]\n"
    "\n"
    "Checks the project in DIR (default: the current directory) as `redduck run --check` does (keys the local\n"
    ".env lacks are left to the server), packs its files (.gitignore followed; .env, data/ and *.duckdb are\n"
    "never included) and uploads them to the redduck server as a new version of the project, which becomes the\n"
    "active one at once (earlier versions stay: `redduck deployments`). The server checks the project again\n"
    "under its rules (allow_host_access off) and answers with the explicit keys each connector still lacks in\n"
    "the environment's variables (and `shared`): deploy then asks for them, secrets without echo, or one line\n"
    "per key from stdin when it is not a terminal (an empty answer skips a key).\n"
    "\n"
    "  --project NAME       the project on the server (default: `name:` in redduck.yaml, else the folder's name)\n"
    "  --environment ENV    the variables the deployment runs with: prod (default) or dev (each over `shared`)\n"
    "  --push-env           also write the local .env's new and changed keys to ENV (shown masked, confirmed)\n"
    "  --no-prompt          do not ask for the missing keys: only list them\n"
    "  --yes                do not ask for confirmation (needed with --push-env without a terminal)\n"
    RD_CLI_CLOUD_OPTIONS_HELP
    "\n"
    "Exit codes: 0 ok (keys may still be missing: they are listed), 1 failure (an invalid project: its\n"
    "FILE:LINE problems), 2 usage, 3 token refused, 4 role not enough.\n";

static int fail(rd_status st, const rd_error *err)
{
    rd_cli_print_error(err);
    return rd_cli_exit_code(st);
}

/* The missing keys, flattened, without those set holds. */
typedef struct key_list {
    char **keys; /* borrowed from the deploy result */
    size_t n;
} key_list;

static int key_in(const rd_dotenv *e, const char *key)
{
    return rd_dotenv_get(e, key) != NULL;
}

static void drop_keys(key_list *k, const rd_dotenv *set)
{
    size_t j = 0;
    for (size_t i = 0; i < k->n; i++)
        if (!key_in(set, k->keys[i]))
            k->keys[j++] = k->keys[i];
    k->n = j;
}

static rd_status collect(void *ctx, const char *key, const char *value, rd_error *err)
{
    return rd_dotenv_add(ctx, key, value) == RD_OK ? RD_OK : rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

/* --push-env: the local .env's added and changed keys into env, shown masked and confirmed. Adds what was
 * written to *pushed. Returns 0 or an exit code (*st, *err set on a failure of the server). */
static int push_env(rd_cloud *c, const char *dir, const char *project, const char *env, int yes, rd_dotenv *pushed,
                    rd_status *st, rd_error *err)
{
    rd_buf pb = RD_BUF_INIT;
    rd_buf_printf(&pb, "%s/.env", dir);
    const char *path = rd_buf_cstr(&pb);
    rd_dotenv local, cloud = { NULL, 0, NULL };
    if ((*st = rd_buf_failed(&pb) ? rd_error_set(err, RD_E_INTERNAL, "out of memory")
                                  : rd_dotenv_load(path, &local, err)) != RD_OK) {
        rd_buf_free(&pb);
        return 1;
    }
    rd_cloud_diff d = { 0 };
    *st = rd_cloud_get_variables(c, project, env, &cloud, err);
    if (*st == RD_OK)
        *st = rd_cloud_diff_env(&local, &cloud, &d, err);
    int rc = 0;
    if (*st == RD_OK) {
        rd_dotenv set = { NULL, 0, NULL };
        printf("--push-env: %s -> the %s variables of %s:\n", path, env, project);
        for (size_t i = 0; i < d.count && *st == RD_OK; i++) {
            const rd_cloud_change *ch = &d.items[i];
            if (ch->kind != RD_CLOUD_ADDED && ch->kind != RD_CLOUD_CHANGED)
                continue;
            char *v = rd_cli_mask_value(ch->key, ch->value);
            printf("  %c %s=%s\n", ch->kind == RD_CLOUD_ADDED ? '+' : '~', ch->key, v ? v : "");
            free(v);
            if (rd_dotenv_add(&set, ch->key, ch->value) != RD_OK)
                *st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        }
        printf("  %zu added, %zu changed, %zu unchanged, %zu only in the cloud (kept)\n", d.added, d.changed,
               d.unchanged, d.kept);
        fflush(stdout);
        if (*st == RD_OK && set.count) {
            char q[256];
            snprintf(q, sizeof q, "write %zu key%s to the %s variables of %s?", set.count, set.count == 1 ? "" : "s",
                     env, project);
            rc = rd_cli_confirm("deploy", q, yes);
            if (rc == 0)
                *st = rd_cloud_set_variables(c, project, env, &set, err);
            for (size_t i = 0; rc == 0 && *st == RD_OK && i < set.count; i++)
                if (rd_dotenv_add(pushed, set.items[i].key, set.items[i].value) != RD_OK)
                    *st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
        }
        rd_dotenv_free(&set);
    }
    rd_cloud_diff_free(&d);
    rd_dotenv_free(&cloud);
    rd_dotenv_free(&local);
    rd_buf_free(&pb);
    return *st != RD_OK ? 1 : rc;
}

int rd_cmd_deploy(int argc, char **argv)
{
    const char *dir = NULL, *project_flag = NULL, *env = NULL;
    int push = 0, no_prompt = 0, yes = 0;
    rd_cli_cloud_flags f = { 0 };
    const rd_cli_opt opts[] = {
        RD_CLI_OPT_DIR(&dir),
        RD_CLI_OPT_STRING("--project", &project_flag),
        RD_CLI_OPT_STRING("--environment", &env),
        RD_CLI_OPT_FLAG("--push-env", &push),
        RD_CLI_OPT_FLAG("--no-prompt", &no_prompt),
        RD_CLI_OPT_FLAG("--yes", &yes),
        RD_CLI_OPT_CLOUD(&f),
        RD_CLI_OPT_END,
    };
    const rd_cli_spec spec = { "deploy", deploy_help, opts, RD_CLI_NONEMPTY, NULL };
    int rc = rd_cli_parse(&spec, argc, argv);
    if (rc != RD_CLI_CONTINUE)
        return rc;
    if (!dir)
        dir = ".";
    if (!env)
        env = "prod";
    if (strcmp(env, "prod") != 0 && strcmp(env, "dev") != 0) /* shared only holds variables */
        return rd_cli_usage_error("deploy", "--environment: '%s' is not prod or dev", env);

    rd_error err;
    rd_error_clear(&err);
    /* `run --check`, but keys the local .env lacks are the server's business */
    rd_project p;
    rd_project_load_options lo = { 0 };
    lo.missing_templates_ok = 1;
    rd_status st = rd_project_load_opts(dir, &lo, &p, &err);
    if (st != RD_OK)
        return fail(st, &err);
    printf("%s: ok locally — %zu connector%s, %zu source%s\n", p.name, p.nconnectors,
            p.nconnectors == 1 ? "" : "s", p.nsources, p.nsources == 1 ? "" : "s");
    rd_project_free(&p);
    fflush(stdout);

    char *project = NULL;
    if ((st = rd_cloud_project_name(dir, project_flag, &project, &err)) != RD_OK)
        return fail(st, &err);
    rd_cloud *c = rd_cli_cloud_open(&f, &rc);
    if (!c) {
        free(project);
        return rc;
    }
    rd_cloud_deploy_result r = { 0 };
    st = rd_cloud_deploy(c, dir, project, env, &r, &err);
    if (st != RD_OK) {
        rd_cloud_free(c);
        free(project);
        return fail(st, &err);
    }
    for (size_t i = 0; i < r.nskipped; i++)
        fprintf(stderr, "redduck: warning: %s\n", r.skipped[i]);
    printf("deployed %s version %ld to %s (environment %s; %zu file%s, %zu bytes, sha256 %.12s)\n", r.project,
           r.version, rd_cloud_server(c), r.environment, r.nfiles, r.nfiles == 1 ? "" : "s", r.archive_bytes,
           r.sha256);
    fflush(stdout);

    key_list missing = { NULL, 0 };
    size_t total = 0;
    for (size_t i = 0; i < r.nmissing; i++)
        total += r.missing[i].nkeys;
    missing.keys = calloc(total ? total : 1, sizeof *missing.keys);
    if (!missing.keys)
        st = rd_error_set(&err, RD_E_INTERNAL, "out of memory");
    for (size_t i = 0; st == RD_OK && i < r.nmissing; i++)
        for (size_t k = 0; k < r.missing[i].nkeys; k++)
            missing.keys[missing.n++] = r.missing[i].keys[k];

    rd_dotenv written = { NULL, 0, NULL };
    rc = 0;
    if (st == RD_OK && push) {
        rc = push_env(c, dir, r.project, r.environment, yes, &written, &st, &err);
        drop_keys(&missing, &written);
    }
    if (st == RD_OK && rc == 0 && missing.n && !no_prompt) {
        fprintf(stderr, "the %s variables of %s lack %zu key%s the connectors need (empty answer: skip):\n",
                r.environment, r.project, missing.n, missing.n == 1 ? "" : "s");
        rd_dotenv answers = { NULL, 0, NULL };
        int n = 0;
        st = rd_cli_ask_keys(missing.keys, missing.n, collect, &answers, &n, &err);
        if (st == RD_OK && answers.count)
            st = rd_cloud_set_variables(c, r.project, r.environment, &answers, &err);
        if (st == RD_OK) {
            if (answers.count)
                fprintf(stderr, "redduck: wrote %zu key%s to the %s variables of %s\n", answers.count,
                        answers.count == 1 ? "" : "s", r.environment, r.project);
            drop_keys(&missing, &answers);
        }
        rd_dotenv_free(&answers);
    }
    if (st == RD_OK) {
        if (!missing.n) {
            printf("nothing missing: every connector has its keys in %s\n", r.environment);
        } else {
            printf("still missing in %s:", r.environment);
            for (size_t i = 0; i < missing.n; i++)
                printf("%s %s", i ? "," : "", missing.keys[i]);
            printf(" (set them with `redduck env configure --cloud --environment %s`)\n", r.environment);
        }
    }
    free(missing.keys);
    rd_dotenv_free(&written);
    rd_cloud_deploy_result_free(&r);
    rd_cloud_free(c);
    free(project);
    if (st != RD_OK)
        return fail(st, &err);
    return rc;
}
