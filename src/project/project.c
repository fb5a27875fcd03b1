/* project.c — loads and validates a redduck project folder (see project.h): redduck.yaml, connectors/NAME.yaml,
 * sources/NAME.yaml and .env, parsed with libfyaml's document API. Owns the key tables, the `{{ .env.KEY }}`
 * templates and every "FILE:LINE: ..." message; does not own the .env syntax (dotenv.c) or running sources. */
#include "redduck/project.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libfyaml.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/net.h"
#include "core/utf8.h"
#include "redduck/buf.h"
#include "services/s3.h"
#include "redduck/ingest.h"

#define DEFAULT_DUCKDB "data/redduck.duckdb"
#define DEFAULT_DATABASE "dev"
#define DEFAULT_PARALLEL 2

/* ---- the keys --------------------------------------------------------------------------------------- */

typedef struct str_key {
    const char *key;
    size_t off; /* of a char * in rd_connector */
} str_key;

#define CK(name) { #name, offsetof(rd_connector, name) }
static const str_key connector_str_keys[] = {
    CK(workgroup),       CK(cluster_identifier), CK(database),          CK(db_user),
    CK(secret_arn),      CK(region),             CK(role_arn),          CK(output_location),
    CK(aws_access_key_id), CK(aws_secret_access_key), CK(aws_session_token), CK(profile),
    CK(endpoint_url),
};
#undef CK
#define NCONNECTOR_STR_KEYS (sizeof connector_str_keys / sizeof connector_str_keys[0])

static char **connector_slot(rd_connector *c, size_t i)
{
    return (char **)(void *)((char *)c + connector_str_keys[i].off);
}

static char *const *connector_slot_const(const rd_connector *c, size_t i)
{
    return (char *const *)(const void *)((const char *)c + connector_str_keys[i].off);
}

static const char *const project_keys[] = { "name", "duckdb", "parallel", "refresh", "notify", NULL };
static const char *const connector_keys[] = {
    "type", "driver", "workgroup", "cluster_identifier", "database", "db_user", "secret_arn", "region",
    "role_arn", "output_location", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "profile", "endpoint_url", "allow_host_access", NULL,
};
static const char *const source_keys[] = {
    "type", "connector", "sql", "table", "table_name", "incremental", "iam_role", "kms_key",
    "max_file_size_mb", "concurrency", "part_size_mb", "timeout", "via", "keep_staging", "compression", "refresh", "notify",
    /* and every connector key but type/driver */
    "workgroup", "cluster_identifier", "database", "db_user", "secret_arn", "region", "role_arn",
    "output_location", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile",
    "endpoint_url", "allow_host_access", NULL,
};
static const char *const incremental_keys[] = { "column", "unique_key", NULL };
static const char *const refresh_keys[] = { "cron", "tz", "every", "disabled", "retry", NULL };
static const char *const retry_keys[] = { "attempts", "backoff", NULL };
static const char *const notify_keys[] = { "webhook", "on", NULL };
/* Keys a .env `connector.NAME.KEY` line may set. */
static const char *const connector_env_keys[] = {
    "workgroup", "cluster_identifier", "database", "db_user", "secret_arn", "region", "role_arn",
    "output_location", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile",
    "endpoint_url", "allow_host_access", NULL,
};

/* Optimal string alignment distance (a transposition counts as one edit), capped at 9. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 9;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The closest known key within two edits, or NULL. */
static const char *closest_key(const char *key, const char *const *known)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; known[i]; i++) {
        size_t dist = edit_distance(key, known[i]);
        if (dist < best_d) {
            best_d = dist;
            best = known[i];
        }
    }
    return best;
}

/* Index of key in known, or -1. */
static int key_index(const char *key, const char *const *known)
{
    for (int i = 0; known[i]; i++)
        if (strcmp(key, known[i]) == 0)
            return i;
    return -1;
}

static int key_known(const char *key, const char *const *known)
{
    return key_index(key, known) >= 0;
}

static void list_keys(rd_buf *b, const char *const *known)
{
    for (size_t i = 0; known[i]; i++)
        rd_buf_printf(b, "%s%s", i ? ", " : "", known[i]);
}

/* ---- errors and lines --------------------------------------------------------------------------------- */

/* What is being loaded: the file for messages, the .env for templates. */
typedef struct ctx {
    const char *file;
    const rd_dotenv *env;
    const char *env_path;
    rd_error *err;
} ctx;

static rd_status cfg_error(const ctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static rd_status cfg_error(const ctx *c, int line, const char *fmt, ...)
{
    char msg[RD_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rd_error_set(c->err, RD_E_CONFIG, "%s:%d: %s", c->file, line > 0 ? line : 1, msg);
}

static rd_status oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

/* 1-based line where a node starts (0 when unknown). */
static int node_line(struct fy_node *n)
{
    if (!n)
        return 0;
    if (fy_node_is_scalar(n)) {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
        return m ? m->line + 1 : 0;
    }
    void *it = NULL;
    if (fy_node_is_mapping(n)) {
        struct fy_node_pair *pr = fy_node_mapping_iterate(n, &it);
        return pr ? node_line(fy_node_pair_key(pr)) : 0;
    }
    if (fy_node_is_sequence(n))
        return node_line(fy_node_sequence_iterate(n, &it));
    return 0;
}

/* ---- YAML files --------------------------------------------------------------------------------------- */

static int node_is_null(struct fy_node *v);

typedef struct yaml_file {
    rd_buf text; /* the document points into it */
    struct fy_diag *diag;
    struct fy_parser *parser;
    struct fy_document *doc;
    struct fy_node *root; /* NULL for an empty document */
} yaml_file;

static void yaml_file_free(yaml_file *y)
{
    if (y->doc)
        fy_parse_document_destroy(y->parser, y->doc);
    if (y->parser)
        fy_parser_destroy(y->parser);
    if (y->diag)
        fy_diag_destroy(y->diag);
    rd_buf_free_secure(&y->text); /* may hold secrets */
    memset(y, 0, sizeof *y);
}

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag, (void)user, (void)buf, (void)len;
}

/* Reads path whole; a file larger than RD_PROJECT_FILE_MAX_BYTES is an RD_E_CONFIG error (read no further). */
static rd_status read_file(const char *path, rd_buf *out, rd_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rd_error_set(err, RD_E_IO, "cannot open %s: %s", path, strerror(errno));
    char chunk[8192];
    size_t n;
    rd_status st = RD_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out->len + n > RD_PROJECT_FILE_MAX_BYTES) {
            st = rd_error_set(err, RD_E_CONFIG, "%s: larger than %u KiB; a project file is a few lines of YAML",
                              path, RD_PROJECT_FILE_MAX_BYTES / 1024);
            break;
        }
        if ((st = rd_buf_append(out, chunk, n)) != RD_OK) {
            st = oom(err);
            break;
        }
    }
    if (st == RD_OK && ferror(f))
        st = rd_error_set(err, RD_E_IO, "cannot read %s: %s", path, strerror(errno));
    fclose(f);
    if (st == RD_OK && !out->data && rd_buf_puts(out, "") != RD_OK)
        st = oom(err);
    return st;
}

/* 1-based line of offset at in s. */
static int line_at(const char *s, size_t at)
{
    int line = 1;
    for (size_t i = 0; i < at; i++)
        line += s[i] == '\n';
    return line;
}

/* Refuses what the loader never hands out (see project.h): aliases and anchors, nesting deeper than
 * RD_PROJECT_MAX_DEPTH and NUL characters in keys or values — after this every scalar of the document is a C
 * string of its full length. key: the key holding n, for messages (NULL at the root). */
static rd_status check_tree(const ctx *c, struct fy_node *n, const char *key, int depth)
{
    if (!n)
        return RD_OK;
    if (depth > RD_PROJECT_MAX_DEPTH)
        return cfg_error(c, node_line(n), "nested more than %d levels deep%s%.64s%s (a project file is flat)",
                         RD_PROJECT_MAX_DEPTH, key ? " under `" : "", key ? key : "", key ? "`" : "");
    if (fy_node_is_alias(n))
        return cfg_error(c, node_line(n), "YAML aliases (`*name`) are not allowed in project files%s%.64s%s "
                         "(write the value out)", key ? ": `" : "", key ? key : "", key ? "`" : "");
    if (fy_node_get_anchor(n))
        return cfg_error(c, node_line(n), "YAML anchors (`&name`) are not allowed in project files%s%.64s%s "
                         "(remove the anchor and write values out)", key ? ": `" : "", key ? key : "",
                         key ? "`" : "");
    if (fy_node_is_scalar(n)) {
        size_t len = 0;
        const char *s = fy_node_get_scalar(n, &len);
        if (s && memchr(s, '\0', len))
            return cfg_error(c, node_line(n), "the value of `%.64s` holds a NUL character (a \\0 escape): remove it",
                             key ? key : "(top level)");
        return RD_OK;
    }
    void *it = NULL;
    rd_status st = RD_OK;
    if (fy_node_is_sequence(n)) {
        struct fy_node *item;
        while (st == RD_OK && (item = fy_node_sequence_iterate(n, &it)) != NULL)
            st = check_tree(c, item, key, depth + 1);
        return st;
    }
    struct fy_node_pair *pr;
    while (st == RD_OK && (pr = fy_node_mapping_iterate(n, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pr);
        const char *name = NULL;
        if (k && fy_node_is_scalar(k) && !fy_node_is_alias(k)) {
            size_t len = 0;
            const char *s = fy_node_get_scalar(k, &len);
            if (s && memchr(s, '\0', len))
                return cfg_error(c, node_line(k), "a key holds a NUL character (a \\0 escape): remove it");
            name = fy_node_get_scalar0(k);
        }
        if ((st = check_tree(c, k, key, depth + 1)) == RD_OK)
            st = check_tree(c, fy_node_pair_value(pr), name, depth + 1);
    }
    return st;
}

/* Parses c->file; a YAML syntax error is "FILE:LINE: YAML syntax error: ...", and every limit of project.h
 * is checked here, before any value is read. */
static rd_status yaml_file_load(const ctx *c, yaml_file *y)
{
    memset(y, 0, sizeof *y);
    rd_status st = read_file(c->file, &y->text, c->err);
    if (st != RD_OK)
        return st;
    const char *nul = memchr(y->text.data, '\0', y->text.len);
    if (nul)
        return cfg_error(c, line_at(y->text.data, (size_t)(nul - y->text.data)),
                         "NUL byte in the file (a project file is text; nothing after it would be read)");
    size_t bad = rd_utf8_invalid_at(y->text.data, y->text.len);
    if (bad < y->text.len)
        return cfg_error(c, line_at(y->text.data, bad), "the file is not valid UTF-8 (save it as UTF-8)");
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = diag_discard;
    dcfg.level = FYET_ERROR;
    y->diag = fy_diag_create(&dcfg);
    if (!y->diag)
        return oom(c->err);
    fy_diag_set_collect_errors(y->diag, true);
    /* Not FYPCF_RESOLVE_DOCUMENT: aliases stay aliases, and check_tree refuses them. Duplicate keys are found
     * by check_keys: libfyaml's own check compares each key with every earlier one (quadratic). */
    struct fy_parse_cfg pcfg = { 0 };
    pcfg.flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS;
    pcfg.diag = y->diag;
    if (!(y->parser = fy_parser_create(&pcfg)) || fy_parser_set_string(y->parser, y->text.data, y->text.len) != 0)
        return oom(c->err);
    y->doc = fy_parse_load_document(y->parser);
    int extra_line = 0;
    if (y->doc) {
        struct fy_document *extra = fy_parse_load_document(y->parser);
        if (extra) {
            struct fy_document_state *ds = fy_document_get_document_state(extra);
            const struct fy_mark *m = ds ? fy_document_state_start_mark(ds) : NULL;
            extra_line = m ? m->line + 1 : 1;
            fy_parse_document_destroy(y->parser, extra);
        }
    }
    /* libfyaml's collected errors carry 1-based lines. An empty or comment-only file gives no document and no
     * error: a file without keys. No document with the stream's error flag but no message is a failure
     * (memory), never an empty file. */
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(y->diag, &it)) != NULL)
        if (e->type >= FYET_ERROR)
            return cfg_error(c, e->line, "YAML syntax error: %s", e->msg ? e->msg : "invalid YAML");
    if (fy_parser_get_stream_error(y->parser))
        return rd_error_set(c->err, RD_E_INTERNAL, "%s: the YAML parser failed without saying why (out of memory?)",
                            c->file);
    if (extra_line)
        return cfg_error(c, extra_line, "a second YAML document (`---`): a project file holds one document");
    if (!y->doc)
        return RD_OK;
    y->root = fy_document_root(y->doc);
    if (y->root && fy_node_is_scalar(y->root) && !fy_node_is_alias(y->root) && !fy_node_get_anchor(y->root) &&
        node_is_null(y->root))
        y->root = NULL; /* `---` alone */
    return check_tree(c, y->root, NULL, 1);
}

/* ---- scalar values ------------------------------------------------------------------------------------ */

static const char *node_kind(struct fy_node *v)
{
    return fy_node_is_mapping(v) ? "a mapping" : fy_node_is_sequence(v) ? "a list" : "a value";
}

/* A plain `~`, `null` or empty value: the key is treated as not set. */
static int node_is_null(struct fy_node *v)
{
    if (!v)
        return 1;
    if (!fy_node_is_scalar(v) || fy_node_get_style(v) != FYNS_PLAIN)
        return 0;
    size_t n = 0;
    const char *s = fy_node_get_scalar(v, &n);
    if (!s || n == 0)
        return 1;
    return (n == 1 && s[0] == '~') ||
           (n == 4 && (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 || memcmp(s, "NULL", 4) == 0));
}

static int env_key_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '.' || ch == '-';
}

/* Line of a template at offset `at` of a value whose token starts on `line` (for a block scalar: its first
 * content line; a literal one keeps its line breaks, so they can be counted). */
static int template_line(struct fy_node *v, const char *s, size_t at, int line)
{
    if (fy_node_get_style(v) == FYNS_LITERAL)
        for (size_t i = 0; i < at; i++)
            line += s[i] == '\n';
    return line;
}

/* The one reader of templates: finds the next `{{` in s[from..n). Returns 0 when there is none; else 1 with
 * *at its offset and, when it is a well-formed `{{ .env.KEY }}`, KEY in s[*key_start..*key_end) and *end the
 * offset after its `}}` (*key_end == 0 for anything else). */
static int next_template(const char *s, size_t n, size_t from, size_t *at, size_t *key_start, size_t *key_end,
                         size_t *end)
{
    const char *open = from < n ? memmem(s + from, n - from, "{{", 2) : NULL;
    if (!open)
        return 0;
    *at = (size_t)(open - s);
    *key_start = *key_end = *end = 0;
    size_t j = *at + 2;
    while (j < n && (s[j] == ' ' || s[j] == '\t'))
        j++;
    if (n - j >= 5 && memcmp(s + j, ".env.", 5) == 0) {
        size_t ks = j += 5;
        while (j < n && env_key_char(s[j]))
            j++;
        size_t ke = j;
        while (j < n && (s[j] == ' ' || s[j] == '\t'))
            j++;
        if (ke > ks && j + 1 < n && s[j] == '}' && s[j + 1] == '}') {
            *key_start = ks;
            *key_end = ke;
            *end = j + 2;
        }
    }
    return 1;
}

/* Replaces every `{{ .env.KEY }}` in the scalar v's text; *out is malloc'd. */
static rd_status expand_templates(const ctx *c, struct fy_node *v, char **out)
{
    size_t n = 0;
    const char *s = fy_node_get_scalar(v, &n);
    if (!s)
        s = "";
    int line = node_line(v);
    rd_buf b = RD_BUF_INIT;
    size_t i = 0;
    rd_status st = RD_OK;
    while (i < n && st == RD_OK) {
        size_t at = 0, key_start = 0, key_end = 0, end = 0;
        if (!next_template(s, n, i, &at, &key_start, &key_end, &end)) {
            st = rd_buf_append(&b, s + i, n - i);
            break;
        }
        const char *open = s + at;
        if ((st = rd_buf_append(&b, s + i, at - i)) != RD_OK)
            break;
        if (!key_end) {
            rd_buf_free_secure(&b);
            return cfg_error(c, template_line(v, s, at, line),
                             "unsupported template starting `%.*s` (only `{{ .env.KEY }}` is supported)",
                             (int)((n - at) < 24 ? (n - at) : 24), open);
        }
        char *key = strndup(s + key_start, key_end - key_start);
        if (!key) {
            st = oom(c->err);
            break;
        }
        const char *val = rd_dotenv_get(c->env, key);
        if (!val) {
            st = cfg_error(c, template_line(v, s, at, line),
                           "{{ .env.%s }} is not set in %s (add it with `redduck env set %s ...`)", key, c->env_path,
                           key);
            free(key);
            break;
        }
        free(key);
        st = rd_buf_puts(&b, val);
        i = end;
    }
    if (st == RD_OK && !b.data)
        st = rd_buf_puts(&b, "");
    if (st != RD_OK) {
        rd_buf_free_secure(&b);
        return st == RD_E_CONFIG ? st : oom(c->err);
    }
    *out = rd_buf_detach(&b);
    return *out ? RD_OK : oom(c->err);
}

/* The string value of key; NULL (*out) when null. Mappings and lists are errors. */
static rd_status get_string(const ctx *c, struct fy_node *k, const char *key, struct fy_node *v, char **out)
{
    if (node_is_null(v)) {
        *out = NULL;
        return RD_OK;
    }
    if (!fy_node_is_scalar(v))
        return cfg_error(c, node_line(k), "`%s` must be a string, not %s%s", key, node_kind(v),
                         fy_node_is_mapping(v) ? " (a template must be quoted: \"{{ .env.KEY }}\")" : "");
    return expand_templates(c, v, out);
}

/* As get_string, replacing *slot (freed) when the value is not null. */
static rd_status set_string(const ctx *c, struct fy_node *k, const char *key, struct fy_node *v, char **slot)
{
    char *s = NULL;
    rd_status st = get_string(c, k, key, v, &s);
    if (st != RD_OK)
        return st;
    if (s) {
        free(*slot);
        *slot = s;
    }
    return RD_OK;
}

/* A value for a message: one that came through a template may be a secret from .env, so it is not shown. */
static const char *shown(struct fy_node *v, const char *val)
{
    size_t n = 0;
    const char *raw = v ? fy_node_get_scalar(v, &n) : NULL;
    return raw && memmem(raw, n, "{{", 2) ? "(a value from .env)" : val;
}

static rd_status get_int(const ctx *c, struct fy_node *k, const char *key, struct fy_node *v, long long min,
                         long long max, long long *out, int *set)
{
    *set = 0;
    if (node_is_null(v))
        return RD_OK;
    if (!fy_node_is_scalar(v))
        return cfg_error(c, node_line(k), "`%s` must be an integer, not %s", key, node_kind(v));
    char *s = NULL;
    rd_status st = expand_templates(c, v, &s);
    if (st != RD_OK)
        return st;
    errno = 0;
    char *end = NULL;
    long long x = strtoll(s, &end, 10);
    int bad = errno != 0 || end == s || *end != '\0' || isspace((unsigned char)s[0]);
    if (bad)
        st = cfg_error(c, node_line(k), "`%s` must be an integer, not `%.40s`", key, shown(v, s));
    else if (x < min || x > max)
        st = cfg_error(c, node_line(k), "`%s` must be %lld..%lld, not %s", key, min, max, shown(v, s));
    free(s);
    if (st == RD_OK) {
        *out = x;
        *set = 1;
    }
    return st;
}

/* true/false (also yes/no, on/off, any case); 1/0 in *out, untouched when null. */
static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = { "true", "yes", "on", NULL }, *const no[] = { "false", "no", "off", NULL };
    for (size_t i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static rd_status get_bool(const ctx *c, struct fy_node *k, const char *key, struct fy_node *v, int *out)
{
    if (node_is_null(v))
        return RD_OK;
    if (!fy_node_is_scalar(v))
        return cfg_error(c, node_line(k), "`%s` must be true or false, not %s", key, node_kind(v));
    char *s = NULL;
    rd_status st = expand_templates(c, v, &s);
    if (st != RD_OK)
        return st;
    if (parse_bool(s, out) != 0)
        st = cfg_error(c, node_line(k), "`%s` must be true or false, not `%.40s`", key, shown(v, s));
    free(s);
    return st;
}

/* Checks that map (NULL: an empty file) is a mapping whose keys are all in known, each once; owner is the key
 * that holds map (NULL for a file's root), for the line of messages. Linear: the first unknown key ends it, and
 * duplicates are found by the index of the known key. */
static rd_status check_keys(const ctx *c, struct fy_node *map, struct fy_node *owner, const char *what,
                            const char *const *known)
{
    if (!map)
        return RD_OK;
    if (!fy_node_is_mapping(map))
        return cfg_error(c, owner ? node_line(owner) : node_line(map), "%s must be a mapping of `key: value`, not %s",
                         what, fy_node_is_sequence(map) ? "a list" : "a single value");
    int seen[64] = { 0 }; /* line where known[i] was given */
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pr);
        if (!k || !fy_node_is_scalar(k))
            return cfg_error(c, k ? node_line(k) : node_line(owner), "%s keys must be plain names", what);
        const char *key = fy_node_get_scalar0(k);
        if (!key)
            return oom(c->err);
        int i = key_index(key, known);
        if (i >= 0 && i < 64) {
            int line = node_line(k);
            if (seen[i])
                return cfg_error(c, line, "duplicate key `%s` (also on line %d): keep one", key, seen[i]);
            seen[i] = line > 0 ? line : 1;
            continue;
        }
        const char *hint = closest_key(key, known);
        if (hint)
            return cfg_error(c, node_line(k), "unknown key `%s` (did you mean `%s`?)", key, hint);
        rd_buf b = RD_BUF_INIT;
        list_keys(&b, known);
        rd_status st = cfg_error(c, node_line(k), "unknown key `%s` in %s (known keys: %s)", key, what,
                                 rd_buf_cstr(&b));
        rd_buf_free(&b);
        return st;
    }
    return RD_OK;
}

/* Iteration over a checked mapping: key name, key node and value node. */
typedef struct pair_iter {
    void *it;
    struct fy_node *map;
} pair_iter;

static int next_pair(pair_iter *pi, const char **key, struct fy_node **k, struct fy_node **v)
{
    if (!pi->map)
        return 0;
    struct fy_node_pair *pr = fy_node_mapping_iterate(pi->map, &pi->it);
    if (!pr)
        return 0;
    *k = fy_node_pair_key(pr);
    *v = fy_node_pair_value(pr);
    *key = fy_node_get_scalar0(*k);
    return *key != NULL;
}

/* ---- paths and folders --------------------------------------------------------------------------------- */

static char *path_join(const char *a, const char *b)
{
    rd_buf p = RD_BUF_INIT;
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    if (rd_buf_append(&p, a, la) != RD_OK || rd_buf_printf(&p, "/%s", b) != RD_OK) {
        rd_buf_free(&p);
        return NULL;
    }
    return rd_buf_detach(&p);
}

typedef struct yaml_entry {
    char *file; /* file name in the folder */
    char *name; /* without .yaml / .yml */
} yaml_entry;

static int entry_cmp(const void *a, const void *b)
{
    const yaml_entry *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : strcmp(x->file, y->file);
}

static void entries_free(yaml_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].file);
        free(e[i].name);
    }
    free(e);
}

/* The *.yaml / *.yml regular files of folder, sorted by name; a missing folder has none. Two files with one
 * name (a.yaml and a.yml) are an error. */
static rd_status list_yaml(const char *folder, yaml_entry **out, size_t *count, rd_error *err)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(folder);
    if (!d) {
        if (errno == ENOENT)
            return RD_OK;
        return rd_error_set(err, RD_E_IO, "cannot list %s: %s", folder, strerror(errno));
    }
    yaml_entry *e = NULL;
    size_t n = 0, cap = 0;
    rd_status st = RD_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *f = de->d_name;
        size_t len = strlen(f);
        size_t base = len > 5 && strcmp(f + len - 5, ".yaml") == 0 ? len - 5
                      : len > 4 && strcmp(f + len - 4, ".yml") == 0 ? len - 4
                                                                    : 0;
        if (f[0] == '.' || base == 0)
            continue;
        char *full = path_join(folder, f);
        struct stat sb;
        int regular = full && stat(full, &sb) == 0 && S_ISREG(sb.st_mode);
        free(full);
        if (!regular)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            yaml_entry *ne = realloc(e, ncap * sizeof *ne);
            if (!ne) {
                st = oom(err);
                break;
            }
            e = ne;
            cap = ncap;
        }
        e[n].file = strdup(f);
        e[n].name = strndup(f, base);
        n++;
        if (!e[n - 1].file || !e[n - 1].name) {
            st = oom(err);
            break;
        }
    }
    closedir(d);
    if (st == RD_OK && n > 1)
        qsort(e, n, sizeof *e, entry_cmp);
    for (size_t i = 1; st == RD_OK && i < n; i++)
        if (strcmp(e[i - 1].name, e[i].name) == 0)
            st = rd_error_set(err, RD_E_CONFIG, "%s/%s and %s/%s both define `%s`: keep one", folder, e[i - 1].file,
                              folder, e[i].file, e[i].name);
    if (st != RD_OK) {
        entries_free(e, n);
        return st;
    }
    *out = e;
    *count = n;
    return RD_OK;
}

/* ---- refresh: and notify: ------------------------------------------------------------------------------ */

/* What one file's `refresh:` says (schedule.h); keys not given are marked so a source's override only its
 * own. */
typedef struct refresh_spec {
    int given;                     /* a refresh: mapping that is not null */
    char *cron, *tz;               /* NULL: not given */
    int has_every;
    int64_t every_s;
    int disabled;                  /* -1: not given */
    int attempts;                  /* 0: not given */
    int64_t backoff_s;             /* -1: not given */
    int line, cron_line, tz_line, every_line;
} refresh_spec;

#define RETRY_BACKOFF_MAX_S (24 * 3600)

static void refresh_spec_init(refresh_spec *r)
{
    memset(r, 0, sizeof *r);
    r->disabled = -1;
    r->backoff_s = -1;
}

static void refresh_spec_free(refresh_spec *r)
{
    free(r->cron);
    free(r->tz);
    memset(r, 0, sizeof *r);
}

/* A period key (every, retry.backoff): "FILE:LINE: refresh.every: <the period rule>". zero_ok: "0" allowed. */
static rd_status get_period(const ctx *c, struct fy_node *k, const char *key, struct fy_node *v, int zero_ok,
                            int64_t *out, int *set)
{
    char *text = NULL;
    *set = 0;
    rd_status st = get_string(c, k, key, v, &text);
    if (st != RD_OK || !text)
        return st;
    rd_error e;
    rd_error_clear(&e);
    int64_t secs = 0;
    if (zero_ok && (strcmp(text, "0") == 0 || strcmp(text, "0s") == 0))
        secs = 0;
    else if (rd_schedule_parse_period(text, &secs, &e) != RD_OK)
        st = cfg_error(c, node_line(k), "%s: %s", key,
                       shown(v, text) == text ? e.message : "the value from .env is not a period (30s, 10m, 1h)");
    free(text);
    if (st == RD_OK) {
        *out = secs;
        *set = 1;
    }
    return st;
}

static rd_status load_retry(const ctx *c, struct fy_node *k, struct fy_node *v, refresh_spec *r)
{
    if (node_is_null(v))
        return RD_OK;
    if (!fy_node_is_mapping(v))
        return cfg_error(c, node_line(k), "`refresh.retry` must be a mapping: `retry: {attempts: 3, backoff: 5m}`");
    rd_status st = check_keys(c, v, k, "`refresh.retry`", retry_keys);
    pair_iter pi = { NULL, st == RD_OK ? v : NULL };
    const char *key;
    struct fy_node *rk, *rv;
    while (st == RD_OK && next_pair(&pi, &key, &rk, &rv)) {
        long long x = 0;
        int set = 0;
        if (strcmp(key, "attempts") == 0) {
            st = get_int(c, rk, "refresh.retry.attempts", rv, 1, RD_SCHEDULE_RETRY_MAX, &x, &set);
            if (set)
                r->attempts = (int)x;
        } else if (strcmp(key, "backoff") == 0) {
            int64_t secs = 0;
            st = get_period(c, rk, "refresh.retry.backoff", rv, 1, &secs, &set);
            if (st == RD_OK && set && secs > RETRY_BACKOFF_MAX_S)
                st = cfg_error(c, node_line(rk), "refresh.retry.backoff: at most 1d between attempts");
            if (set)
                r->backoff_s = secs;
        }
    }
    return st;
}

static rd_status load_refresh(const ctx *c, struct fy_node *k, struct fy_node *v, refresh_spec *r)
{
    if (node_is_null(v))
        return RD_OK;
    if (!fy_node_is_mapping(v))
        return cfg_error(c, node_line(k), "`refresh` must be a mapping: `refresh: {cron: \"0 6 * * *\", tz: "
                         "Europe/Berlin}` or `refresh: {every: 1h}`");
    r->given = 1;
    r->line = node_line(k);
    rd_status st = check_keys(c, v, k, "`refresh`", refresh_keys);
    pair_iter pi = { NULL, st == RD_OK ? v : NULL };
    const char *key;
    struct fy_node *rk, *rv;
    while (st == RD_OK && next_pair(&pi, &key, &rk, &rv)) {
        int line = node_line(rk), set = 0;
        if (strcmp(key, "cron") == 0) {
            r->cron_line = line;
            if ((st = set_string(c, rk, "refresh.cron", rv, &r->cron)) == RD_OK && r->cron && !r->cron[0])
                st = cfg_error(c, line, "refresh.cron: empty (5 fields: minute hour day-of-month month "
                               "day-of-week, e.g. \"0 6 * * *\")");
        } else if (strcmp(key, "tz") == 0) {
            r->tz_line = line;
            if ((st = set_string(c, rk, "refresh.tz", rv, &r->tz)) == RD_OK && r->tz && !r->tz[0])
                st = cfg_error(c, line, "refresh.tz: empty (an IANA zone such as Europe/Berlin; default UTC)");
        } else if (strcmp(key, "every") == 0) {
            r->every_line = line;
            st = get_period(c, rk, "refresh.every", rv, 0, &r->every_s, &set);
            r->has_every = set;
        } else if (strcmp(key, "disabled") == 0) {
            int b = -1;
            st = get_bool(c, rk, "refresh.disabled", rv, &b);
            if (b >= 0)
                r->disabled = b;
        } else if (strcmp(key, "retry") == 0)
            st = load_retry(c, rk, rv, r);
    }
    if (st == RD_OK && r->cron && r->has_every)
        st = cfg_error(c, r->cron_line > r->every_line ? r->cron_line : r->every_line,
                       "refresh: set only one of `cron` and `every`, not both");
    if (st == RD_OK && r->tz && r->has_every)
        st = cfg_error(c, r->tz_line, "refresh.tz applies to `cron` only (`every` slots count from the Unix epoch, "
                       "in UTC): remove it or use cron");
    return st;
}

/* cron in tz as a schedule; a cron error names the cron's line, a zone error the tz's. */
static rd_status parse_cron_at(const ctx *c, const char *cron, int cron_line, const char *tz, int tz_line,
                               rd_schedule *out)
{
    rd_error e;
    rd_error_clear(&e);
    rd_schedule probe;
    rd_status st = rd_schedule_parse_cron(cron, NULL, &probe, &e);
    if (st != RD_OK)
        return st == RD_E_CONFIG ? cfg_error(c, cron_line, "refresh.cron: %s", e.message) : rd_error_set(c->err, st, "%s", e.message);
    if (!tz) {
        *out = probe;
        return RD_OK;
    }
    rd_schedule_free(&probe);
    st = rd_schedule_parse_cron(cron, tz, out, &e);
    if (st != RD_OK)
        return st == RD_E_CONFIG ? cfg_error(c, tz_line, "refresh.tz: %s", e.message) : rd_error_set(c->err, st, "%s", e.message);
    return RD_OK;
}

/* The effective schedule: r's keys over base (NULL: the defaults, for redduck.yaml). */
static rd_status build_schedule(const ctx *c, const rd_schedule *base, const refresh_spec *r, rd_schedule *out)
{
    rd_schedule s;
    memset(&s, 0, sizeof s);
    rd_status st = RD_OK;
    if (r->cron)
        st = parse_cron_at(c, r->cron, r->cron_line, r->tz, r->tz_line, &s);
    else if (r->has_every) {
        s.kind = RD_SCHEDULE_EVERY;
        s.every_s = r->every_s;
    } else if (r->tz) {
        if (base && base->kind == RD_SCHEDULE_CRON)
            st = parse_cron_at(c, base->cron, r->tz_line, r->tz, r->tz_line, &s);
        else
            st = cfg_error(c, r->tz_line, "refresh.tz needs a `cron:` (%s)",
                           base ? "here or in redduck.yaml's refresh:" : "in this refresh:");
    } else if (base)
        st = rd_schedule_copy(base, &s, c->err);
    if (st != RD_OK)
        return st;
    if (!base || r->cron || r->has_every || r->tz) { /* a new kind: the rest from base, or the defaults */
        s.disabled = base ? base->disabled : 0;
        s.retry_attempts = base ? base->retry_attempts : 1;
        s.retry_backoff_s = base ? base->retry_backoff_s : 0;
    }
    if (r->given && r->disabled >= 0)
        s.disabled = r->disabled;
    if (r->attempts > 0)
        s.retry_attempts = r->attempts;
    if (r->backoff_s >= 0)
        s.retry_backoff_s = r->backoff_s;
    if (s.retry_attempts < 1)
        s.retry_attempts = 1;
    *out = s;
    return RD_OK;
}

static void notify_free(rd_notify *n)
{
    free(n->webhook);
    memset(n, 0, sizeof *n);
}

/* https://HOST..., or http:// to a loopback host (127.0.0.0/8, [::1], localhost). The URL is never shown. */
static const char *webhook_problem(const char *url)
{
    size_t n = strlen(url);
    if (n > 2048)
        return "is longer than 2048 characters";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return "holds a space or a control character";
    int https = strncasecmp(url, "https://", 8) == 0, http = strncasecmp(url, "http://", 7) == 0;
    if (!https && !http)
        return "must start with https:// (or http:// to 127.0.0.1, [::1] or localhost)";
    const char *auth = url + (https ? 8 : 7);
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0)
        return "has no host";
    if (https)
        return NULL;
    if (memchr(auth, '@', alen))
        return "must not hold a user name (http:// is only for a loopback host)";
    char host[256];
    const char *end = auth + alen, *h = auth, *he;
    if (*h == '[') {
        he = memchr(h, ']', alen);
        if (!he)
            return "has an unterminated [IPv6] host";
        h++;
        if (he + 1 < end && he[1] != ':')
            return "has a malformed host";
    } else {
        he = memchr(h, ':', alen);
        if (!he)
            he = end;
    }
    size_t hlen = (size_t)(he - h);
    if (hlen == 0 || hlen >= sizeof host)
        return "has no host";
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    const char *port = he < end && *he == ']' ? he + 1 : he;
    if (port < end) {
        if (*port != ':' || port + 1 == end)
            return "has a malformed port";
        for (const char *q = port + 1; q < end; q++)
            if (!isdigit((unsigned char)*q))
                return "has a malformed port";
    }
    if (strcasecmp(host, "localhost") != 0 && !rd_ip_is_loopback(host))
        return "uses http:// to a host that is not loopback (use https://; http:// only to 127.0.0.1, [::1] "
               "or localhost)";
    return NULL;
}

static rd_status load_notify_on(const ctx *c, struct fy_node *k, struct fy_node *v, rd_notify *n)
{
    n->on_failure = n->on_recovery = 0;
    if (node_is_null(v))
        return RD_OK;
    if (fy_node_is_mapping(v))
        return cfg_error(c, node_line(k), "`notify.on` must be a list: `on: [failure, recovery]`");
    void *it = NULL;
    struct fy_node *item = fy_node_is_sequence(v) ? fy_node_sequence_iterate(v, &it) : v;
    rd_status st = RD_OK;
    while (st == RD_OK && item) {
        char *ev = NULL;
        if (fy_node_is_sequence(item) || fy_node_is_mapping(item))
            return cfg_error(c, node_line(item), "`notify.on` is a list of events (failure, recovery), not of %s",
                             node_kind(item));
        st = get_string(c, k, "notify.on", item, &ev);
        if (st == RD_OK && ev) {
            if (strcmp(ev, "failure") == 0)
                n->on_failure = 1;
            else if (strcmp(ev, "recovery") == 0)
                n->on_recovery = 1;
            else
                st = cfg_error(c, node_line(item), "notify.on: `%.24s` is not an event (failure, recovery)",
                               shown(item, ev));
        }
        free(ev);
        item = fy_node_is_sequence(v) ? fy_node_sequence_iterate(v, &it) : NULL;
    }
    return st;
}

/* `notify:` into *n (which holds nothing); *given 1 when the key was set to a mapping. */
static rd_status load_notify(const ctx *c, struct fy_node *k, struct fy_node *v, rd_notify *n, int *given)
{
    if (node_is_null(v))
        return RD_OK;
    if (!fy_node_is_mapping(v))
        return cfg_error(c, node_line(k), "`notify` must be a mapping: `notify: {webhook: https://..., on: "
                         "[failure, recovery]}`");
    rd_status st = check_keys(c, v, k, "`notify`", notify_keys);
    *given = 1;
    n->on_failure = n->on_recovery = 1;
    int has_webhook = 0;
    pair_iter pi = { NULL, st == RD_OK ? v : NULL };
    const char *key;
    struct fy_node *nk, *nv;
    while (st == RD_OK && next_pair(&pi, &key, &nk, &nv)) {
        if (strcmp(key, "webhook") == 0) {
            has_webhook = 1;
            st = set_string(c, nk, "notify.webhook", nv, &n->webhook);
            const char *why = st == RD_OK && n->webhook && n->webhook[0] ? webhook_problem(n->webhook) : NULL;
            if (why)
                st = cfg_error(c, node_line(nk), "notify.webhook %s", why);
            if (st == RD_OK && n->webhook && !n->webhook[0]) { /* "": no notifications */
                free(n->webhook);
                n->webhook = NULL;
            }
        } else if (strcmp(key, "on") == 0)
            st = load_notify_on(c, nk, nv, n);
    }
    if (st == RD_OK && !has_webhook)
        st = cfg_error(c, node_line(k), "`notify` needs `webhook:` (an https:// URL; \"\" for no notifications)");
    return st;
}

static rd_status notify_copy(const rd_notify *src, rd_notify *dst, rd_error *err)
{
    *dst = *src;
    if (src->webhook && !(dst->webhook = strdup(src->webhook))) {
        memset(dst, 0, sizeof *dst);
        return oom(err);
    }
    return RD_OK;
}

/* ---- redduck.yaml ------------------------------------------------------------------------------------- */

static char *default_project_name(const char *dir)
{
    char *real = realpath(dir, NULL);
    const char *p = real ? real : dir;
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && p[start - 1] != '/')
        start--;
    char *name = len > start ? strndup(p + start, len - start) : strdup("redduck");
    free(real);
    return name;
}

rd_status rd_project_read_name(const char *dir, char **out, int *from_file, rd_error *err)
{
    char *file = path_join(dir, "redduck.yaml");
    if (!file)
        return oom(err);
    rd_dotenv none = { 0 };
    ctx c = { file, &none, NULL, err };
    char *name = NULL;
    rd_status st = RD_OK;
    struct stat sb;
    if (stat(file, &sb) == 0) {
        yaml_file y;
        st = yaml_file_load(&c, &y);
        pair_iter pi = { NULL, st == RD_OK ? y.root : NULL };
        const char *key;
        struct fy_node *k, *v;
        while (st == RD_OK && next_pair(&pi, &key, &k, &v))
            if (strcmp(key, "name") == 0)
                st = set_string(&c, k, key, v, &name);
        if (st == RD_OK && name && !name[0])
            st = cfg_error(&c, 1, "`name` must not be empty");
        yaml_file_free(&y);
    }
    free(file);
    if (st != RD_OK) {
        free(name);
        return st;
    }
    *from_file = name != NULL;
    if (!name && !(name = default_project_name(dir)))
        return oom(err);
    *out = name;
    return RD_OK;
}

/* redduck.yaml, known to exist; p->env is loaded. */
static rd_status load_project_file(rd_project *p, const char *file, const char *env_path, rd_error *err)
{
    ctx c = { file, &p->env, env_path, err };
    char *duckdb = NULL;
    refresh_spec refresh;
    refresh_spec_init(&refresh);
    int notify_given = 0;
    yaml_file y;
    rd_status st = yaml_file_load(&c, &y);
    if (st == RD_OK)
        st = check_keys(&c, y.root, NULL, "redduck.yaml", project_keys);
    pair_iter pi = { NULL, st == RD_OK ? y.root : NULL };
    const char *key;
    struct fy_node *k, *v;
    while (st == RD_OK && next_pair(&pi, &key, &k, &v)) {
        if (strcmp(key, "name") == 0)
            st = set_string(&c, k, key, v, &p->name);
        else if (strcmp(key, "duckdb") == 0)
            st = set_string(&c, k, key, v, &duckdb);
        else if (strcmp(key, "parallel") == 0) {
            long long x = 0;
            int set = 0;
            st = get_int(&c, k, key, v, 1, RD_PROJECT_PARALLEL_MAX, &x, &set);
            if (set)
                p->parallel = (int)x;
        } else if (strcmp(key, "refresh") == 0)
            st = load_refresh(&c, k, v, &refresh);
        else if (strcmp(key, "notify") == 0)
            st = load_notify(&c, k, v, &p->notify, &notify_given);
    }
    if (st == RD_OK)
        st = build_schedule(&c, NULL, &refresh, &p->refresh);
    refresh_spec_free(&refresh);
    if (st == RD_OK && p->name && !p->name[0])
        st = cfg_error(&c, 1, "`name` must not be empty");
    if (st == RD_OK && duckdb && !duckdb[0])
        st = cfg_error(&c, 1, "`duckdb` must not be empty (default: " DEFAULT_DUCKDB ")");
    if (st == RD_OK && !p->name && !(p->name = default_project_name(p->dir)))
        st = oom(err);
    if (st == RD_OK) {
        const char *rel = duckdb ? duckdb : DEFAULT_DUCKDB;
        p->duckdb_path = rel[0] == '/' ? strdup(rel) : path_join(p->dir, rel);
        if (!p->duckdb_path)
            st = oom(err);
    }
    if (st == RD_OK && !p->parallel)
        p->parallel = DEFAULT_PARALLEL;
    free(duckdb);
    yaml_file_free(&y);
    return st;
}

/* ---- connectors ----------------------------------------------------------------------------------------- */

static void connector_free(rd_connector *c)
{
    free(c->name);
    free(c->file);
    for (size_t i = 0; i < NCONNECTOR_STR_KEYS; i++) {
        char **slot = connector_slot(c, i);
        if (*slot)
            explicit_bzero(*slot, strlen(*slot)); /* secrets */
        free(*slot);
    }
    memset(c, 0, sizeof *c);
}

/* `output_location` must be an S3 location that ingest accepts; the rule is rd_s3_parse_url's, its only home. */
static rd_status check_output_location(const ctx *c, int line, const char *url)
{
    if (!url[0])
        return RD_OK; /* empty: not set */
    char *bucket = NULL, *prefix = NULL;
    rd_error e;
    rd_error_clear(&e);
    rd_status st = rd_s3_parse_url(url, &bucket, &prefix, &e);
    free(bucket);
    free(prefix);
    if (st == RD_E_USAGE)
        return cfg_error(c, line, "`output_location`: %s", e.message);
    return st == RD_OK ? RD_OK : rd_error_set(c->err, st, "%s", e.message);
}

/* Sets a connector key (string or allow_host_access) shared by connector files and sources. Returns 1 when
 * key is one, 0 otherwise. */
static int connector_key(const ctx *c, rd_connector *conn, const char *key, struct fy_node *k, struct fy_node *v,
                         rd_status *st)
{
    if (strcmp(key, "allow_host_access") == 0) {
        *st = get_bool(c, k, key, v, &conn->allow_host_access);
        return 1;
    }
    for (size_t i = 0; i < NCONNECTOR_STR_KEYS; i++) {
        if (strcmp(key, connector_str_keys[i].key) == 0) {
            char **slot = connector_slot(conn, i);
            *st = set_string(c, k, key, v, slot);
            if (*st == RD_OK && *slot && connector_str_keys[i].off == offsetof(rd_connector, output_location))
                *st = check_output_location(c, node_line(k), *slot);
            return 1;
        }
    }
    return 0;
}

static rd_status load_connector(const rd_project *p, const char *file, const char *name, rd_connector *conn,
                                const char *env_path, rd_error *err)
{
    ctx c = { file, &p->env, env_path, err };
    conn->allow_host_access = 1;
    if (!(conn->name = strdup(name)) || !(conn->file = strdup(file)))
        return oom(err);
    yaml_file y;
    rd_status st = yaml_file_load(&c, &y);
    if (st == RD_OK)
        st = check_keys(&c, y.root, NULL, "a connector", connector_keys);
    char *type = NULL, *driver = NULL;
    int type_line = 0, driver_line = 0;
    pair_iter pi = { NULL, st == RD_OK ? y.root : NULL };
    const char *key;
    struct fy_node *k, *v;
    while (st == RD_OK && next_pair(&pi, &key, &k, &v)) {
        if (strcmp(key, "type") == 0) {
            type_line = node_line(k);
            st = set_string(&c, k, key, v, &type);
        } else if (strcmp(key, "driver") == 0) {
            driver_line = node_line(k);
            st = set_string(&c, k, key, v, &driver);
        } else
            connector_key(&c, conn, key, k, v, &st);
    }
    /* `type: redshift`, or Rill's `type: connector` with `driver: redshift`. */
    if (st == RD_OK && !type)
        st = cfg_error(&c, 1, "missing `type: redshift` (the only kind of connector redduck knows)");
    else if (st == RD_OK && strcmp(type, "connector") == 0) {
        if (!driver)
            st = cfg_error(&c, type_line, "`type: connector` needs `driver: redshift`");
        else if (strcmp(driver, "redshift") != 0)
            st = cfg_error(&c, driver_line, "`driver` must be `redshift`, not `%.40s` (redduck only reads Redshift)",
                           driver);
    } else if (st == RD_OK && strcmp(type, "redshift") != 0)
        st = cfg_error(&c, type_line, "`type` must be `redshift`, not `%.40s` (redduck only reads Redshift)", type);
    else if (st == RD_OK && driver && strcmp(driver, "redshift") != 0)
        st = cfg_error(&c, driver_line, "`driver` must be `redshift`, not `%.40s`", driver);
    free(type);
    free(driver);
    yaml_file_free(&y);
    return st;
}

/* .env lines `connector.NAME.KEY=value` (NAME may contain dots; KEY may not). */
static rd_status apply_env_overrides(rd_project *p, const char *env_path, rd_error *err)
{
    static const char prefix[] = "connector.";
    for (size_t i = 0; i < p->env.count; i++) {
        const rd_dotenv_entry *e = &p->env.items[i];
        if (strncmp(e->key, prefix, sizeof prefix - 1) != 0)
            continue;
        ctx c = { env_path, &p->env, env_path, err };
        const char *rest = e->key + sizeof prefix - 1;
        const char *dot = strrchr(rest, '.');
        if (!dot || dot == rest || !dot[1])
            return cfg_error(&c, e->line, "`%s`: connector keys are written connector.NAME.KEY "
                             "(e.g. connector.redshift.workgroup)", e->key);
        const char *key = dot + 1;
        char *name = strndup(rest, (size_t)(dot - rest));
        if (!name)
            return oom(err);
        rd_connector *conn = NULL;
        for (size_t j = 0; j < p->nconnectors; j++)
            if (strcmp(p->connectors[j].name, name) == 0)
                conn = &p->connectors[j];
        if (!conn) {
            rd_buf b = RD_BUF_INIT;
            for (size_t j = 0; j < p->nconnectors; j++)
                rd_buf_printf(&b, "%s%s", j ? ", " : "", p->connectors[j].name);
            rd_status st = cfg_error(&c, e->line, "`%s`: no connector `%s` in %s/connectors (connectors: %s)", e->key,
                                     name, p->dir, p->nconnectors ? rd_buf_cstr(&b) : "none");
            rd_buf_free(&b);
            free(name);
            return st;
        }
        free(name);
        if (!key_known(key, connector_env_keys)) {
            const char *hint = closest_key(key, connector_env_keys);
            if (hint)
                return cfg_error(&c, e->line, "`%s`: unknown connector key `%s` (did you mean `%s`?)", e->key, key,
                                 hint);
            return cfg_error(&c, e->line, "`%s`: unknown connector key `%s`", e->key, key);
        }
        if (strcmp(key, "allow_host_access") == 0) {
            if (parse_bool(e->value, &conn->allow_host_access) != 0)
                return cfg_error(&c, e->line, "`%s` must be true or false", e->key);
            continue;
        }
        for (size_t j = 0; j < NCONNECTOR_STR_KEYS; j++) {
            if (strcmp(key, connector_str_keys[j].key) != 0)
                continue;
            char **slot = connector_slot(conn, j);
            char *val = strdup(e->value);
            if (!val)
                return oom(err);
            if (*slot)
                explicit_bzero(*slot, strlen(*slot));
            free(*slot);
            *slot = val;
            if (connector_str_keys[j].off == offsetof(rd_connector, output_location)) {
                rd_status st = check_output_location(&c, e->line, val);
                if (st != RD_OK)
                    return st;
            }
        }
    }
    return RD_OK;
}

static int nonempty(const char *s)
{
    return s && s[0];
}

/* After .env overrides: exactly one of workgroup / cluster_identifier; database defaults to dev. */
static rd_status finish_connector(rd_connector *conn, const char *env_path, rd_error *err)
{
    ctx c = { conn->file, NULL, env_path, err };
    int wg = nonempty(conn->workgroup), cl = nonempty(conn->cluster_identifier);
    if (wg && cl)
        return cfg_error(&c, 1, "set only one of `workgroup` (Redshift Serverless) and `cluster_identifier` "
                         "(provisioned cluster), not both");
    if (!wg && !cl)
        return cfg_error(&c, 1, "set `workgroup` (Redshift Serverless) or `cluster_identifier` (provisioned "
                         "cluster), here or as connector.%s.workgroup in %s", conn->name, env_path);
    if (!conn->database && !(conn->database = strdup(DEFAULT_DATABASE)))
        return oom(err);
    return RD_OK;
}

/* ---- sources ---------------------------------------------------------------------------------------------- */

static void source_free(rd_source *s)
{
    free(s->name);
    free(s->file);
    free(s->connector);
    free(s->sql);
    free(s->table);
    free(s->table_name);
    free(s->incremental_column);
    free(s->unique_key);
    free(s->iam_role);
    free(s->kms_key);
    free(s->via);
    free(s->compression);
    connector_free(&s->overrides);
    rd_schedule_free(&s->refresh);
    notify_free(&s->notify);
    memset(s, 0, sizeof *s);
}

static int plain_identifier(const char *s)
{
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && s[n] != '_')
            return 0;
    return n <= 127;
}

static rd_status load_incremental(const ctx *c, rd_source *s, struct fy_node *k, struct fy_node *v)
{
    if (node_is_null(v))
        return RD_OK;
    if (!fy_node_is_mapping(v))
        return cfg_error(c, node_line(k), "`incremental` must be a mapping: `incremental: {column: updated_at, "
                         "unique_key: id}`");
    rd_status st = check_keys(c, v, k, "`incremental`", incremental_keys);
    pair_iter pi = { NULL, st == RD_OK ? v : NULL };
    const char *key;
    struct fy_node *ik, *iv;
    while (st == RD_OK && next_pair(&pi, &key, &ik, &iv)) {
        if (strcmp(key, "column") == 0)
            st = set_string(c, ik, key, iv, &s->incremental_column);
        else if (strcmp(key, "unique_key") == 0)
            st = set_string(c, ik, key, iv, &s->unique_key);
    }
    if (st == RD_OK && !nonempty(s->incremental_column))
        st = cfg_error(c, node_line(k), "`incremental` needs `column:` (the column whose maximum marks what was "
                       "already copied)");
    return st;
}

/* A string key whose value one of ingest's parsers accepts (rd_ingest_parse_via, ..._compression): the rule's
 * message is the parser's. */
static rd_status set_ingest_choice(const ctx *c, struct fy_node *k, const char *key, struct fy_node *v,
                                   char **slot)
{
    rd_status st = set_string(c, k, key, v, slot);
    if (st != RD_OK || !*slot)
        return st;
    rd_error rule;
    rd_error_clear(&rule);
    rd_ingest_via via;
    int fast;
    if (strcmp(key, "via") == 0)
        st = rd_ingest_parse_via(*slot, &via, &rule);
    else
        st = rd_ingest_parse_compression(*slot, &fast, &rule);
    if (st == RD_OK)
        return RD_OK;
    return cfg_error(c, node_line(k), "`%s` %s, not `%.40s`", key, rule.message, shown(v, *slot));
}

typedef struct source_lines {
    int connector, sql, table, table_name, workgroup, cluster_identifier;
} source_lines;

static rd_status load_source(rd_project *p, const char *file, const char *name, rd_source *s,
                             const char *env_path, rd_error *err)
{
    ctx c = { file, &p->env, env_path, err };
    s->overrides.allow_host_access = -1;
    if (!(s->name = strdup(name)) || !(s->file = strdup(file)))
        return oom(err);
    yaml_file y;
    rd_status st = yaml_file_load(&c, &y);
    if (st == RD_OK)
        st = check_keys(&c, y.root, NULL, "a source", source_keys);
    source_lines ln = { 0 };
    refresh_spec refresh;
    refresh_spec_init(&refresh);
    int notify_given = 0;
    pair_iter pi = { NULL, st == RD_OK ? y.root : NULL };
    const char *key;
    struct fy_node *k, *v;
    while (st == RD_OK && next_pair(&pi, &key, &k, &v)) {
        int line = node_line(k);
        long long x = 0;
        int set = 0;
        if (strcmp(key, "type") == 0) {
            char *type = NULL;
            st = set_string(&c, k, key, v, &type);
            if (st == RD_OK && type && strcmp(type, "source") != 0)
                st = cfg_error(&c, line, "`type` must be `source` (or left out), not `%.40s`", type);
            free(type);
        } else if (strcmp(key, "connector") == 0) {
            ln.connector = line;
            st = set_string(&c, k, key, v, &s->connector);
        } else if (strcmp(key, "sql") == 0) {
            ln.sql = line;
            st = set_string(&c, k, key, v, &s->sql);
        } else if (strcmp(key, "table") == 0) {
            ln.table = line;
            st = set_string(&c, k, key, v, &s->table);
        } else if (strcmp(key, "table_name") == 0) {
            ln.table_name = line;
            st = set_string(&c, k, key, v, &s->table_name);
        } else if (strcmp(key, "incremental") == 0)
            st = load_incremental(&c, s, k, v);
        else if (strcmp(key, "iam_role") == 0)
            st = set_string(&c, k, key, v, &s->iam_role);
        else if (strcmp(key, "kms_key") == 0)
            st = set_string(&c, k, key, v, &s->kms_key);
        else if (strcmp(key, "via") == 0)
            st = set_ingest_choice(&c, k, key, v, &s->via);
        else if (strcmp(key, "compression") == 0)
            st = set_ingest_choice(&c, k, key, v, &s->compression);
        else if (strcmp(key, "keep_staging") == 0)
            st = get_bool(&c, k, key, v, &s->keep_staging);
        else if (strcmp(key, "max_file_size_mb") == 0) {
            st = get_int(&c, k, key, v, RD_INGEST_MAX_FILE_SIZE_MB_MIN, RD_INGEST_MAX_FILE_SIZE_MB_MAX, &x,
                         &set);
            if (set)
                s->max_file_size_mb = (uint64_t)x;
        } else if (strcmp(key, "concurrency") == 0) {
            st = get_int(&c, k, key, v, 1, RD_INGEST_CONCURRENCY_MAX, &x, &set);
            if (set)
                s->concurrency = (int)x;
        } else if (strcmp(key, "part_size_mb") == 0) {
            st = get_int(&c, k, key, v, (long long)(RD_INGEST_MIN_PART_SIZE >> 20),
                         (long long)(RD_INGEST_MAX_PART_SIZE >> 20), &x, &set);
            if (set)
                s->part_size = (uint64_t)x << 20;
        } else if (strcmp(key, "timeout") == 0) {
            st = get_int(&c, k, key, v, 0, 7 * 24 * 3600, &x, &set);
            if (set)
                s->timeout_s = (long)x;
        } else if (strcmp(key, "refresh") == 0)
            st = load_refresh(&c, k, v, &refresh);
        else if (strcmp(key, "notify") == 0)
            st = load_notify(&c, k, v, &s->notify, &notify_given);
        else {
            if (strcmp(key, "workgroup") == 0)
                ln.workgroup = line;
            else if (strcmp(key, "cluster_identifier") == 0)
                ln.cluster_identifier = line;
            connector_key(&c, &s->overrides, key, k, v, &st);
        }
    }
    yaml_file_free(&y);
    if (st == RD_OK)
        st = build_schedule(&c, &p->refresh, &refresh, &s->refresh);
    refresh_spec_free(&refresh);
    if (st == RD_OK && !notify_given)
        st = notify_copy(&p->notify, &s->notify, err);
    if (st != RD_OK)
        return st;

    int has_sql = nonempty(s->sql), has_table = nonempty(s->table);
    if (has_sql && has_table)
        return cfg_error(&c, ln.sql > ln.table ? ln.sql : ln.table,
                         "set only one of `sql` (a query) and `table` (a whole table), not both");
    if (!has_sql && !has_table)
        return cfg_error(&c, 1, "missing `sql:` (a query to copy) or `table:` (a table to copy whole)");
    if (nonempty(s->overrides.workgroup) && nonempty(s->overrides.cluster_identifier))
        return cfg_error(&c, ln.workgroup > ln.cluster_identifier ? ln.workgroup : ln.cluster_identifier,
                         "set only one of `workgroup` and `cluster_identifier`, not both");

    if (!s->table_name) {
        if (!plain_identifier(s->name))
            return cfg_error(&c, 1, "the table name `%s` (from the file name) is not a plain identifier (letters, "
                             "digits, _): set `table_name:` or rename the file", s->name);
        if (!(s->table_name = strdup(s->name)))
            return oom(err);
    } else if (!plain_identifier(s->table_name))
        return cfg_error(&c, ln.table_name, "`table_name` must be a plain identifier (letters, digits, _; not "
                         "starting with a digit), not `%.64s`", s->table_name);
    rd_error reserved = { 0 };
    if (rd_ingest_check_table_name(s->table_name, &reserved) != RD_OK)
        return cfg_error(&c, ln.table_name ? ln.table_name : 1, "%s%s", reserved.message,
                         ln.table_name ? "" : " (set `table_name:` or rename the file)");

    if (s->connector) {
        if (!rd_project_connector(p, s->connector)) {
            rd_buf b = RD_BUF_INIT;
            for (size_t j = 0; j < p->nconnectors; j++)
                rd_buf_printf(&b, "%s%s", j ? ", " : "", p->connectors[j].name);
            if (p->nconnectors)
                st = cfg_error(&c, ln.connector, "no connector `%s` (connectors: %s)", s->connector,
                               rd_buf_cstr(&b));
            else
                st = cfg_error(&c, ln.connector, "no connector `%s`: the project has no connectors/*.yaml "
                               "(create connectors/%s.yaml)", s->connector, s->connector);
            rd_buf_free(&b);
            return st;
        }
    } else if (p->nconnectors == 1) {
        if (!(s->connector = strdup(p->connectors[0].name)))
            return oom(err);
    } else if (p->nconnectors == 0) {
        return cfg_error(&c, 1, "no connector to run with: the project has no connectors/*.yaml (create "
                         "connectors/redshift.yaml with `type: redshift`)");
    } else {
        rd_buf b = RD_BUF_INIT;
        for (size_t j = 0; j < p->nconnectors; j++)
            rd_buf_printf(&b, "%s%s", j ? ", " : "", p->connectors[j].name);
        st = cfg_error(&c, 1, "set `connector:` (the project has %zu connectors: %s)", p->nconnectors,
                       rd_buf_cstr(&b));
        rd_buf_free(&b);
        return st;
    }
    for (size_t j = 0; p->sources + j < s; j++) {
        if (strcasecmp(p->sources[j].table_name, s->table_name) == 0)
            return cfg_error(&c, ln.table_name, "table `%s` is also written by %s (give each source its own "
                             "`table_name`)", s->table_name, p->sources[j].file);
    }
    return RD_OK;
}

/* ---- the project ------------------------------------------------------------------------------------------- */

static rd_status load_folder(rd_project *p, const char *sub, int sources, const char *env_path, rd_error *err)
{
    char *folder = path_join(p->dir, sub);
    if (!folder)
        return oom(err);
    yaml_entry *e = NULL;
    size_t n = 0;
    rd_status st = list_yaml(folder, &e, &n, err);
    if (st == RD_OK && n) {
        if (sources) {
            if (!(p->sources = calloc(n, sizeof *p->sources)))
                st = oom(err);
        } else if (!(p->connectors = calloc(n, sizeof *p->connectors)))
            st = oom(err);
    }
    for (size_t i = 0; st == RD_OK && i < n; i++) {
        char *file = path_join(folder, e[i].file);
        if (!file) {
            st = oom(err);
            break;
        }
        if (sources) {
            p->nsources++;
            st = load_source(p, file, e[i].name, &p->sources[i], env_path, err);
        } else {
            p->nconnectors++;
            st = load_connector(p, file, e[i].name, &p->connectors[i], env_path, err);
        }
        free(file);
    }
    entries_free(e, n);
    free(folder);
    return st;
}

/* Copies src into an empty dst (entries' lines kept). */
static rd_status dotenv_copy(const rd_dotenv *src, const char *label, rd_dotenv *dst, rd_error *err)
{
    memset(dst, 0, sizeof *dst);
    if (!(dst->path = strdup(label)))
        return oom(err);
    if (src->count && !(dst->items = calloc(src->count, sizeof *dst->items))) {
        rd_dotenv_free(dst);
        return oom(err);
    }
    for (size_t i = 0; i < src->count; i++) {
        rd_dotenv_entry *e = &dst->items[i];
        e->key = strdup(src->items[i].key);
        e->value = strdup(src->items[i].value ? src->items[i].value : "");
        e->line = src->items[i].line;
        if (!e->key || !e->value) {
            free(e->key);
            free(e->value);
            rd_dotenv_free(dst);
            return oom(err);
        }
        dst->count++;
    }
    return RD_OK;
}

/* Server rules: each `{{ .env.KEY }}` the project names that env does not hold (and that is not a connector
 * key) gets the template itself as its value, so validation goes on; the caller lists those keys. */
static rd_status add_template_placeholders(const char *dir, rd_dotenv *env, rd_error *err)
{
    char **keys = NULL;
    size_t n = 0;
    rd_status st = rd_project_env_keys(dir, &keys, &n, err);
    if (st != RD_OK)
        return st;
    for (size_t i = 0; st == RD_OK && i < n; i++) {
        if (strncmp(keys[i], "connector.", 10) == 0 || rd_dotenv_get(env, keys[i]))
            continue;
        rd_dotenv_entry *items = realloc(env->items, (env->count + 1) * sizeof *items);
        if (!items) {
            st = oom(err);
            break;
        }
        env->items = items;
        rd_buf v = RD_BUF_INIT;
        rd_buf_printf(&v, "{{ .env.%s }}", keys[i]);
        rd_dotenv_entry *e = &env->items[env->count];
        e->key = strdup(keys[i]);
        e->value = rd_buf_detach(&v);
        e->line = 0;
        if (!e->key || !e->value) {
            free(e->key);
            free(e->value);
            st = oom(err);
            break;
        }
        env->count++;
    }
    rd_project_keys_free(keys, n);
    return st;
}

rd_status rd_project_load(const char *dir, rd_project *out, rd_error *err)
{
    return rd_project_load_opts(dir, NULL, out, err);
}

rd_status rd_project_load_opts(const char *dir, const rd_project_load_options *o, rd_project *out, rd_error *err)
{
    rd_project p;
    memset(&p, 0, sizeof p);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (!(p.dir = strndup(dir, len)))
        return oom(err);
    const int given = o && o->env;
    char *env_path = given ? strdup(o->env_label ? o->env_label : "the variables") : path_join(p.dir, ".env");
    char *file = path_join(p.dir, "redduck.yaml");
    struct stat sb;
    rd_status st = RD_OK;
    if (!env_path || !file)
        st = oom(err);
    else if (stat(file, &sb) != 0)
        st = rd_error_set(err, RD_E_CONFIG, "no redduck.yaml in %s (create one with `redduck init %s`)", p.dir,
                          p.dir);
    else if ((st = given ? dotenv_copy(o->env, env_path, &p.env, err) : rd_dotenv_load(env_path, &p.env, err)) ==
             RD_OK) {
        if (o && o->missing_templates_ok)
            st = add_template_placeholders(p.dir, &p.env, err);
        if (st == RD_OK)
            st = load_project_file(&p, file, env_path, err);
    }
    if (st == RD_OK)
        st = load_folder(&p, "connectors", 0, env_path, err);
    if (st == RD_OK)
        st = apply_env_overrides(&p, env_path, err);
    for (size_t i = 0; st == RD_OK && i < p.nconnectors; i++)
        st = finish_connector(&p.connectors[i], env_path, err);
    if (st == RD_OK)
        st = load_folder(&p, "sources", 1, env_path, err);
    if (st == RD_OK && o && o->no_host_access) {
        for (size_t i = 0; i < p.nconnectors; i++)
            p.connectors[i].allow_host_access = 0;
        for (size_t i = 0; i < p.nsources; i++)
            p.sources[i].overrides.allow_host_access = 0;
    }
    free(env_path);
    free(file);
    if (st != RD_OK) {
        rd_project_free(&p);
        return st;
    }
    *out = p;
    return RD_OK;
}

void rd_project_free(rd_project *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nconnectors; i++)
        connector_free(&p->connectors[i]);
    free(p->connectors);
    for (size_t i = 0; i < p->nsources; i++)
        source_free(&p->sources[i]);
    free(p->sources);
    free(p->dir);
    free(p->name);
    free(p->duckdb_path);
    rd_schedule_free(&p->refresh);
    notify_free(&p->notify);
    rd_dotenv_free(&p->env);
    memset(p, 0, sizeof *p);
}

const rd_connector *rd_project_connector(const rd_project *p, const char *name)
{
    for (size_t i = 0; p && name && i < p->nconnectors; i++)
        if (strcmp(p->connectors[i].name, name) == 0)
            return &p->connectors[i];
    return NULL;
}

const rd_source *rd_project_source(const rd_project *p, const char *name)
{
    for (size_t i = 0; p && name && i < p->nsources; i++)
        if (strcmp(p->sources[i].name, name) == 0)
            return &p->sources[i];
    return NULL;
}

/* A source setting workgroup or cluster_identifier replaces the connector's pair, so the result still names
 * exactly one endpoint; every other key the source sets replaces the connector's one. */
rd_status rd_project_effective_connector(const rd_project *p, const rd_source *s, rd_connector *out,
                                         rd_error *err)
{
    const rd_connector *c = s->connector ? rd_project_connector(p, s->connector)
                            : p->nconnectors == 1 ? &p->connectors[0]
                                                  : NULL;
    if (!c)
        return rd_error_set(err, RD_E_CONFIG, "%s: no connector `%s` in %s/connectors", s->file ? s->file : "source",
                            s->connector ? s->connector : "(none)", p->dir);
    rd_connector r = *c;
    const rd_connector *o = &s->overrides;
    if (o->workgroup || o->cluster_identifier) {
        r.workgroup = o->workgroup;
        r.cluster_identifier = o->cluster_identifier;
    }
    for (size_t i = 0; i < NCONNECTOR_STR_KEYS; i++) {
        char *const *src = connector_slot_const(o, i);
        if (*src)
            *connector_slot(&r, i) = *src;
    }
    if (o->allow_host_access >= 0)
        r.allow_host_access = o->allow_host_access;
    *out = r;
    return RD_OK;
}

/* ---- the .env keys a project asks for ------------------------------------------------------------------------ */

typedef struct key_list {
    char **items;
    size_t count, cap;
} key_list;

static rd_status key_list_add(key_list *l, const char *key, size_t len)
{
    if (l->count == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        char **n = realloc(l->items, ncap * sizeof *n);
        if (!n)
            return RD_E_INTERNAL;
        l->items = n;
        l->cap = ncap;
    }
    if (!(l->items[l->count] = strndup(key, len)))
        return RD_E_INTERNAL;
    l->count++;
    return RD_OK;
}

/* Every `{{ .env.KEY }}` in the values (not the keys) under n. */
static rd_status collect_templates(struct fy_node *n, key_list *l)
{
    rd_status st = RD_OK;
    void *it = NULL;
    if (!n) {
        return RD_OK;
    } else if (fy_node_is_scalar(n)) {
        size_t len = 0, i = 0, at, ks, ke, end;
        const char *s = fy_node_get_scalar(n, &len);
        while (st == RD_OK && s && next_template(s, len, i, &at, &ks, &ke, &end)) {
            if (ke)
                st = key_list_add(l, s + ks, ke - ks);
            i = ke ? end : at + 2;
        }
    } else if (fy_node_is_sequence(n)) {
        struct fy_node *item;
        while (st == RD_OK && (item = fy_node_sequence_iterate(n, &it)) != NULL)
            st = collect_templates(item, l);
    } else {
        struct fy_node_pair *pr;
        while (st == RD_OK && (pr = fy_node_mapping_iterate(n, &it)) != NULL)
            st = collect_templates(fy_node_pair_value(pr), l);
    }
    return st;
}

static rd_status collect_file(const char *file, key_list *l, rd_error *err)
{
    ctx c = { file, NULL, NULL, err };
    yaml_file y;
    rd_status st = yaml_file_load(&c, &y);
    if (st == RD_OK && (st = collect_templates(y.root, l)) != RD_OK)
        st = oom(err);
    yaml_file_free(&y);
    return st;
}

typedef struct key_rank {
    const char *key;
    size_t pos;
} key_rank;

static int rank_by_key(const void *a, const void *b)
{
    const key_rank *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r ? r : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Drops every repeat of a key, keeping the first one's place (sorting, so hostile files stay n log n). */
static rd_status key_list_unique(key_list *l)
{
    if (l->count < 2)
        return RD_OK;
    key_rank *r = malloc(l->count * sizeof *r);
    if (!r)
        return RD_E_INTERNAL;
    for (size_t i = 0; i < l->count; i++)
        r[i] = (key_rank){ l->items[i], i };
    qsort(r, l->count, sizeof *r, rank_by_key);
    for (size_t i = 1, first = 0; i < l->count; i++) {
        if (strcmp(r[i].key, r[first].key) == 0) {
            free(l->items[r[i].pos]);
            l->items[r[i].pos] = NULL;
        } else {
            first = i;
        }
    }
    free(r);
    size_t o = 0;
    for (size_t i = 0; i < l->count; i++)
        if (l->items[i])
            l->items[o++] = l->items[i];
    l->count = o;
    return RD_OK;
}

rd_status rd_project_env_keys(const char *dir, char ***keys, size_t *count, rd_error *err)
{
    key_list l = { 0 };
    rd_status st = RD_OK;
    const char *const subs[] = { "connectors", "sources" };
    for (size_t d = 0; st == RD_OK && d < 2; d++) {
        char *folder = path_join(dir, subs[d]);
        yaml_entry *e = NULL;
        size_t n = 0;
        st = folder ? list_yaml(folder, &e, &n, err) : oom(err);
        for (size_t i = 0; st == RD_OK && i < n; i++) {
            if (d == 0) {
                rd_buf k = RD_BUF_INIT;
                if (rd_buf_printf(&k, "connector.%s.aws_access_key_id", e[i].name) != RD_OK ||
                    key_list_add(&l, k.data, k.len) != RD_OK)
                    st = oom(err);
                rd_buf_reset(&k);
                if (st == RD_OK && (rd_buf_printf(&k, "connector.%s.aws_secret_access_key", e[i].name) != RD_OK ||
                                    key_list_add(&l, k.data, k.len) != RD_OK))
                    st = oom(err);
                rd_buf_free(&k);
            }
            char *file = st == RD_OK ? path_join(folder, e[i].file) : NULL;
            if (st == RD_OK)
                st = file ? collect_file(file, &l, err) : oom(err);
            free(file);
        }
        entries_free(e, n);
        free(folder);
    }
    char *file = st == RD_OK ? path_join(dir, "redduck.yaml") : NULL;
    struct stat sb;
    if (st == RD_OK)
        st = !file ? oom(err) : stat(file, &sb) == 0 ? collect_file(file, &l, err) : RD_OK;
    free(file);
    if (st == RD_OK && key_list_unique(&l) != RD_OK)
        st = oom(err);
    if (st != RD_OK) {
        rd_project_keys_free(l.items, l.count);
        return st;
    }
    *keys = l.items;
    *count = l.count;
    return RD_OK;
}

void rd_project_keys_free(char **keys, size_t count)
{
    for (size_t i = 0; keys && i < count; i++)
        free(keys[i]);
    free(keys);
}
