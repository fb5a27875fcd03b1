/* config.c — the shared config and credentials files (see config.h), mapped to profiles as botocore's
 * configloader does: in the config file "[profile NAME]" (shell-quoted names allowed) and "[default]";
 * "[sso-session NAME]", "[services NAME]"; in the credentials file every section is a profile. */
#include "aws/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/ini.h"
#include "redduck/buf.h"

struct rd_aws_config {
    rd_ini *config;
    rd_ini *creds;
    char *config_path;
    char *creds_path;
};

static rd_status flatten_nested(rd_ini *ini);

/* Python's os.path.expanduser for "~" and "~/…" (HOME). */
static char *expand_user(const char *path)
{
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
        const char *home = getenv("HOME");
        if (home && *home) {
            rd_buf b = RD_BUF_INIT;
            rd_buf_printf(&b, "%s%s", home, path + 1);
            return rd_buf_detach(&b);
        }
    }
    return strdup(path);
}

rd_status rd_aws_ca_bundle(const rd_aws_config *cfg, const char *profile, char **path, rd_error *err)
{
    *path = NULL;
    const char *v = getenv("AWS_CA_BUNDLE");
    char source[300] = "AWS_CA_BUNDLE";
    if (!v || !*v) {
        v = cfg && profile ? rd_aws_config_profile_get(cfg, profile, "ca_bundle") : NULL;
        if (!v || !*v)
            return RD_OK;
        snprintf(source, sizeof source, "ca_bundle of profile '%s' in %s", profile,
                 cfg->config_path ? cfg->config_path : "the config file");
    }
    char *file = expand_user(v);
    if (!file)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (access(file, R_OK) != 0) {
        int e = errno;
        rd_status st = rd_error_set(err, RD_E_CONFIG,
                                    "the CA bundle %s (from %s) %s: fix the path, or unset it to use the system's "
                                    "certificates",
                                    file, source, e == ENOENT || e == ENOTDIR ? "does not exist" : strerror(e));
        free(file);
        return st;
    }
    *path = file;
    return RD_OK;
}

static rd_status load_one(const char *path, rd_ini **out, rd_error *err)
{
    *out = NULL;
    if (!path)
        return RD_OK;
    rd_error e;
    rd_error_clear(&e);
    rd_status st = rd_ini_load(path, out, &e);
    if (st == RD_E_NOT_FOUND)
        return RD_OK;
    if (st != RD_OK && err)
        *err = e;
    return st;
}

rd_status rd_aws_config_load_paths(const char *config_path, const char *credentials_path, rd_aws_config **out,
                                   rd_error *err)
{
    rd_aws_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    cfg->config_path = config_path ? strdup(config_path) : NULL;
    cfg->creds_path = credentials_path ? strdup(credentials_path) : NULL;
    rd_status st = load_one(cfg->config_path, &cfg->config, err);
    if (st == RD_OK)
        st = load_one(cfg->creds_path, &cfg->creds, err);
    if (st == RD_OK && (flatten_nested(cfg->config) != RD_OK || flatten_nested(cfg->creds) != RD_OK))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory");
    if (st != RD_OK) {
        rd_aws_config_free(cfg);
        return st;
    }
    *out = cfg;
    return RD_OK;
}

rd_status rd_aws_config_load(rd_aws_config **out, rd_error *err)
{
    const char *c = getenv("AWS_CONFIG_FILE");
    const char *k = getenv("AWS_SHARED_CREDENTIALS_FILE");
    char *cp = expand_user(c && *c ? c : "~/.aws/config");
    char *kp = expand_user(k && *k ? k : "~/.aws/credentials");
    rd_status st = rd_aws_config_load_paths(cp, kp, out, err);
    free(cp);
    free(kp);
    return st;
}

void rd_aws_config_free(rd_aws_config *cfg)
{
    if (!cfg)
        return;
    rd_ini_free(cfg->config);
    rd_ini_free(cfg->creds);
    free(cfg->config_path);
    free(cfg->creds_path);
    free(cfg);
}

const char *rd_aws_profile_name(const char *flag)
{
    if (flag && *flag)
        return flag;
    /* botocore looks at AWS_DEFAULT_PROFILE before AWS_PROFILE */
    const char *v = getenv("AWS_DEFAULT_PROFILE");
    if (v && *v)
        return v;
    v = getenv("AWS_PROFILE");
    if (v && *v)
        return v;
    return "default";
}

/* Python shlex.split of a section header into at most 3 parts; returns the part count (3 = "more"),
 * -1 on unbalanced quotes. parts[1] is malloc'd when count >= 2. */
static int split_header(const char *s, char **second, char **first)
{
    int count = 0;
    *second = NULL;
    *first = NULL;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        rd_buf tok = RD_BUF_INIT;
        while (*p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
            if (*p == '"' || *p == '\'') {
                char q = *p++;
                while (*p && *p != q) {
                    if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    rd_buf_putc(&tok, *p++);
                }
                if (!*p) {
                    rd_buf_free(&tok);
                    free(*first);
                    free(*second);
                    *first = *second = NULL;
                    return -1;
                }
                p++;
            } else if (*p == '\\' && p[1]) {
                rd_buf_putc(&tok, p[1]);
                p += 2;
            } else {
                rd_buf_putc(&tok, *p++);
            }
        }
        count++;
        if (count == 1)
            *first = rd_buf_detach(&tok);
        else if (count == 2)
            *second = rd_buf_detach(&tok);
        else
            rd_buf_free(&tok);
    }
    return count;
}

/* The config-file section for a named section kind ("profile", "sso-session", "services"); the last one
 * wins, as botocore's dict assignment. */
static const rd_ini_section *config_section(const rd_aws_config *cfg, const char *kind, const char *name)
{
    const rd_ini_section *found = NULL;
    if (!cfg || !cfg->config || !name)
        return NULL;
    size_t klen = strlen(kind);
    for (size_t i = 0; i < cfg->config->count; i++) {
        const rd_ini_section *s = &cfg->config->sections[i];
        if (strcmp(kind, "profile") == 0 && strcmp(s->name, "default") == 0) {
            if (strcmp(name, "default") == 0)
                found = s;
            continue;
        }
        if (strncmp(s->name, kind, klen) != 0)
            continue;
        char *first, *second;
        int n = split_header(s->name, &second, &first);
        if (n == 2 && strcmp(second, name) == 0)
            found = s;
        free(first);
        free(second);
    }
    return found;
}

int rd_aws_config_has_profile(const rd_aws_config *cfg, const char *profile)
{
    return config_section(cfg, "profile", profile) != NULL || (cfg && rd_ini_find(cfg->creds, profile) != NULL);
}

const char *rd_aws_config_profile_get(const rd_aws_config *cfg, const char *profile, const char *key)
{
    const rd_ini_entry *e = rd_ini_get(config_section(cfg, "profile", profile), key);
    return e ? e->value : NULL;
}

const char *rd_aws_config_credentials_get(const rd_aws_config *cfg, const char *profile, const char *key)
{
    if (!cfg || !profile)
        return NULL;
    const rd_ini_entry *e = rd_ini_get(rd_ini_find(cfg->creds, profile), key);
    return e ? e->value : NULL;
}

const char *rd_aws_config_get(const rd_aws_config *cfg, const char *profile, const char *key)
{
    const char *v = rd_aws_config_credentials_get(cfg, profile, key);
    return v ? v : rd_aws_config_profile_get(cfg, profile, key);
}

const char *rd_aws_config_section_get(const rd_aws_config *cfg, const char *kind, const char *name, const char *key)
{
    const rd_ini_entry *e = rd_ini_get(config_section(cfg, kind, name), key);
    return e ? e->value : NULL;
}

const char *rd_aws_config_nested_get(const rd_aws_config *cfg, const char *kind, const char *name,
                                     const char *parent_key, const char *key)
{
    char flat[256];
    snprintf(flat, sizeof flat, "%s.%s", parent_key, key);
    const rd_ini_entry *e = rd_ini_get(config_section(cfg, kind, name), flat);
    return e ? e->value : NULL;
}

/* Flattens nested values ("s3 =\n  endpoint_url = x") into "s3.endpoint_url" entries once, at load, so
 * the config stays immutable afterwards. */
static rd_status flatten_nested(rd_ini *ini)
{
    for (size_t i = 0; ini && i < ini->count; i++) {
        rd_ini_section *s = &ini->sections[i];
        size_t n = s->count;
        for (size_t j = 0; j < n; j++) {
            const char *v = s->entries[j].value;
            if (!v || v[0] != '\n')
                continue;
            const char *p = v + 1;
            while (*p) {
                size_t len = strcspn(p, "\n");
                const char *eq = memchr(p, '=', len);
                if (eq) {
                    const char *k = p, *ke = eq;
                    while (k < ke && (*k == ' ' || *k == '\t'))
                        k++;
                    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
                        ke--;
                    char *key = strndup(k, (size_t)(ke - k));
                    rd_buf flat = RD_BUF_INIT;
                    rd_buf_printf(&flat, "%s.%s", s->entries[j].key, key);
                    free(key);
                    char *val = rd_ini_nested_get(&s->entries[j], rd_buf_cstr(&flat) + strlen(s->entries[j].key) + 1);
                    rd_ini_entry *e = realloc(s->entries, (s->count + 1) * sizeof *e);
                    if (!e) {
                        rd_buf_free(&flat);
                        free(val);
                        return RD_E_INTERNAL;
                    }
                    s->entries = e;
                    e[s->count].key = rd_buf_detach(&flat);
                    e[s->count].value = val ? val : strdup("");
                    e[s->count].line = e[j].line;
                    s->count++;
                    v = s->entries[j].value;
                }
                p += len;
                if (*p == '\n')
                    p++;
            }
        }
    }
    return RD_OK;
}

char *rd_aws_config_describe(const rd_aws_config *cfg, const char *profile, const char *key)
{
    if (!cfg || !profile)
        return NULL;
    rd_buf b = RD_BUF_INIT;
    if (rd_aws_config_credentials_get(cfg, profile, key)) {
        rd_buf_printf(&b, "%s [%s]", cfg->creds_path, profile);
        return rd_buf_detach(&b);
    }
    const rd_ini_section *s = config_section(cfg, "profile", profile);
    if (s && rd_ini_get(s, key)) {
        rd_buf_printf(&b, "%s [%s]", cfg->config_path, s->name);
        return rd_buf_detach(&b);
    }
    return NULL;
}

const char *rd_aws_config_config_path(const rd_aws_config *cfg)
{
    return cfg ? cfg->config_path : NULL;
}

const char *rd_aws_config_credentials_path(const rd_aws_config *cfg)
{
    return cfg ? cfg->creds_path : NULL;
}
