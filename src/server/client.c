/* client.c — the client of `redduck server` (include/redduck/cloud.h): server and token resolution, the
 * credentials file, the plain-http rule, the /v1 calls over the one HTTP transport (aws/http.h) with their
 * replies mapped to rd_status and one line saying what to do, and the .env diff and merge of `env push|pull`.
 * Does not own prompting or printing (the CLI does) nor the archive's layout (project/archive.c). */
#include "redduck/cloud.h"
#include "redduck/project.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/http.h"
#include "core/fsutil.h"
#include "project/archive.h"
#include "redduck/buf.h"
#include "redduck/headers.h"
#include "server/client_internal.h"

#define CREDENTIALS_MAX_BYTES (64u << 10)

static rd_status oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* ---- credentials.json ---------------------------------------------------------------------------------- */

void rd_cloud_credentials_free(rd_cloud_credentials *c)
{
    if (!c)
        return;
    free(c->server);
    wipe_free(c->token);
    free(c->ca_bundle);
    memset(c, 0, sizeof *c);
}

char *rd_cloud_credentials_path(rd_error *err)
{
    const char *home = getenv("HOME");
    if (!home || !*home) {
        rd_error_set(err, RD_E_CONFIG, "HOME is not set: cannot find ~/.config/redduck/credentials.json (set HOME, "
                                       "or REDDUCK_SERVER and REDDUCK_TOKEN)");
        return NULL;
    }
    rd_buf b = RD_BUF_INIT;
    size_t n = strlen(home);
    rd_buf_printf(&b, "%s%s.config/redduck/credentials.json", home, home[n - 1] == '/' ? "" : "/");
    char *p = rd_buf_detach(&b);
    if (!p)
        oom(err);
    return p;
}

static void strip_slashes(char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
}

rd_status rd_cloud_credentials_load(const char *path, rd_cloud_credentials *out, int *found, rd_error *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            memset(out, 0, sizeof *out);
            *found = 0;
            return RD_OK;
        }
        return rd_error_set(err, RD_E_CONFIG, "cannot read %s: %s (run `redduck login` again)", path, strerror(errno));
    }
    struct stat sb;
    rd_status st = RD_OK;
    if (fstat(fd, &sb) != 0)
        st = rd_error_set(err, RD_E_CONFIG, "cannot read %s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = rd_error_set(err, RD_E_CONFIG, "%s is not a regular file: remove it and run `redduck login`", path);
    else if (sb.st_uid != geteuid())
        st = rd_error_set(err, RD_E_CONFIG, "%s belongs to another user: remove it and run `redduck login`", path);
    else if (sb.st_mode & 077)
        st = rd_error_set(err, RD_E_CONFIG,
                          "%s may be read by others (mode %04o) and holds a token: run `chmod 600 %s`, or "
                          "`redduck login` again (and revoke the token if others could read it)",
                          path, (unsigned)(sb.st_mode & 07777), path);
    else if (sb.st_size > (off_t)CREDENTIALS_MAX_BYTES)
        st = rd_error_set(err, RD_E_CONFIG, "%s is larger than redduck writes it: run `redduck login` again", path);
    rd_buf text = RD_BUF_INIT;
    char chunk[4096];
    while (st == RD_OK) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            st = rd_error_set(err, RD_E_CONFIG, "cannot read %s: %s", path, strerror(errno));
        if (r <= 0)
            break;
        rd_buf_append(&text, chunk, (size_t)r);
        if (text.len > CREDENTIALS_MAX_BYTES)
            st = rd_error_set(err, RD_E_CONFIG, "%s is larger than redduck writes it: run `redduck login` again",
                              path);
    }
    OPENSSL_cleanse(chunk, sizeof chunk);
    close(fd);
    if (st == RD_OK && rd_buf_failed(&text))
        st = oom(err);
    json_t *o = NULL;
    if (st == RD_OK) {
        json_error_t je; /* its text may quote the file: never shown */
        o = json_loadb(text.data ? text.data : "", text.len, JSON_REJECT_DUPLICATES, &je);
        OPENSSL_cleanse(&je, sizeof je);
    }
    rd_buf_free_secure(&text);
    if (st != RD_OK)
        return st;
    const char *server = json_string_value(json_object_get(o, "server"));
    const char *token = json_string_value(json_object_get(o, "token"));
    const json_t *ca = json_object_get(o, "ca_bundle");
    const json_t *insecure = json_object_get(o, "insecure_http");
    if (!json_is_object(o) || !server || !*server || !token || !*token || (ca && !json_is_string(ca) && !json_is_null(ca)) ||
        (insecure && !json_is_boolean(insecure))) {
        json_decref(o);
        return rd_error_set(err, RD_E_CONFIG, "%s is not the file `redduck login` writes: run `redduck login` again",
                            path);
    }
    rd_cloud_credentials c = { 0 };
    c.server = strdup(server);
    c.token = strdup(token);
    c.ca_bundle = json_is_string(ca) && json_string_value(ca)[0] ? strdup(json_string_value(ca)) : NULL;
    c.insecure_http = insecure && json_is_true(insecure);
    int ok = c.server && c.token && (!json_is_string(ca) || !json_string_value(ca)[0] || c.ca_bundle);
    /* the token's copy inside the JSON tree */
    char *t = (char *)json_string_value(json_object_get(o, "token"));
    if (t)
        OPENSSL_cleanse(t, strlen(t));
    json_decref(o);
    if (!ok) {
        rd_cloud_credentials_free(&c);
        return oom(err);
    }
    strip_slashes(c.server);
    *out = c;
    *found = 1;
    return RD_OK;
}

/* Writes data to a new 0600 file beside path, synced, renamed over path. */
static rd_status write_private_atomically(const char *path, const char *data, size_t len, rd_error *err)
{
    rd_buf tmp = RD_BUF_INIT;
    if (rd_buf_printf(&tmp, "%s.tmp-XXXXXX", path) != RD_OK)
        return oom(err);
    int fd = mkstemp(tmp.data); /* O_EXCL, 0600 */
    if (fd < 0) {
        rd_status st = rd_error_set(err, RD_E_IO, "cannot create a file beside %s: %s", path, strerror(errno));
        rd_buf_free(&tmp);
        return st;
    }
    rd_status st = RD_OK;
    if (fchmod(fd, 0600) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot chmod %s: %s", tmp.data, strerror(errno));
    for (size_t off = 0; st == RD_OK && off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", tmp.data, strerror(errno));
        else
            off += (size_t)w;
    }
    if (st == RD_OK && fsync(fd) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", tmp.data, strerror(errno));
    if (close(fd) != 0 && st == RD_OK)
        st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", tmp.data, strerror(errno));
    if (st == RD_OK && rename(tmp.data, path) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot replace %s: %s", path, strerror(errno));
    if (st != RD_OK)
        unlink(tmp.data);
    rd_buf_free(&tmp);
    return st;
}

rd_status rd_cloud_credentials_save(const char *path, const rd_cloud_credentials *c, rd_error *err)
{
    if (!c || !c->server || !c->token)
        return rd_error_set(err, RD_E_USAGE, "rd_cloud_credentials_save: server and token are required");
    char *dir = rd_path_dirname(path);
    if (!dir)
        return oom(err);
    rd_status st = rd_mkdirs(dir, 0700, err);
    free(dir);
    if (st != RD_OK)
        return st;
    json_t *o = json_object();
    json_object_set_new(o, "server", json_string(c->server));
    json_object_set_new(o, "token", json_string(c->token));
    if (c->ca_bundle)
        json_object_set_new(o, "ca_bundle", json_string(c->ca_bundle));
    if (c->insecure_http)
        json_object_set_new(o, "insecure_http", json_true());
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *t = (char *)json_string_value(json_object_get(o, "token"));
    if (t)
        OPENSSL_cleanse(t, strlen(t));
    json_decref(o);
    if (!text)
        return oom(err);
    size_t n = strlen(text);
    rd_buf b = RD_BUF_INIT;
    rd_buf_append(&b, text, n);
    rd_buf_putc(&b, '\n');
    OPENSSL_cleanse(text, n);
    free(text);
    st = rd_buf_failed(&b) ? oom(err) : write_private_atomically(path, b.data, b.len, err);
    rd_buf_free_secure(&b);
    return st;
}

rd_status rd_cloud_credentials_remove(const char *path, int *removed, rd_error *err)
{
    if (unlink(path) == 0) {
        *removed = 1;
        return RD_OK;
    }
    if (errno == ENOENT) {
        *removed = 0;
        return RD_OK;
    }
    return rd_error_set(err, RD_E_IO, "cannot remove %s: %s", path, strerror(errno));
}

/* ---- resolution ---------------------------------------------------------------------------------------- */

rd_status rd_cloud_check_url(const char *url, int insecure_http, char **normalized, rd_error *err)
{
    if (!url || !*url)
        return rd_error_set(err, RD_E_USAGE, "no server URL given");
    int https = strncasecmp(url, "https://", 8) == 0, http = strncasecmp(url, "http://", 7) == 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7F)
            return rd_error_set(err, RD_E_USAGE, "the server URL holds a space or a control character");
    const char *host = https ? url + 8 : http ? url + 7 : NULL;
    if (!host)
        return rd_error_set(err, RD_E_USAGE, "the server URL must start with https:// (or http:// on this machine)");
    size_t hostlen = strcspn(host, "/");
    if (hostlen == 0 || host[0] == ':')
        return rd_error_set(err, RD_E_USAGE, "the server URL has no host");
    if (memchr(host, '@', hostlen))
        return rd_error_set(err, RD_E_USAGE, "the server URL must not hold a user name (the token is asked for "
                                             "by `redduck login`)");
    if (strpbrk(url, "?#"))
        return rd_error_set(err, RD_E_USAGE, "the server URL must not have a query or a fragment");
    if (http && !insecure_http && !rd_url_is_loopback(url))
        return rd_error_set(err, RD_E_USAGE,
                            "refusing plain http:// to %.*s: the token would cross the network unencrypted (use "
                            "https://, or pass --insecure-http on a network you trust)",
                            (int)(hostlen > 200 ? 200 : hostlen), host);
    if (normalized) {
        char *n = strdup(url);
        if (!n)
            return oom(err);
        strip_slashes(n);
        *normalized = n;
    }
    return RD_OK;
}

void rd_cloud_resolved_free(rd_cloud_resolved *r)
{
    if (r)
        rd_cloud_credentials_free(&r->creds);
}

static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

rd_status rd_cloud_resolve(const rd_cloud_options *o, rd_cloud_resolved *out, rd_error *err)
{
    static const rd_cloud_options none = { 0 };
    if (!o)
        o = &none;
    const char *server = o->server, *token = o->token, *ca = o->ca_bundle;
    rd_cloud_source sfrom = server ? RD_CLOUD_FROM_FLAG : RD_CLOUD_FROM_NONE;
    rd_cloud_source tfrom = token ? RD_CLOUD_FROM_FLAG : RD_CLOUD_FROM_NONE;
    rd_cloud_source cfrom = ca ? RD_CLOUD_FROM_FLAG : RD_CLOUD_FROM_NONE;
    if (!server && (server = env_value(RD_CLOUD_ENV_SERVER)))
        sfrom = RD_CLOUD_FROM_ENV;
    if (!token && (token = env_value(RD_CLOUD_ENV_TOKEN)))
        tfrom = RD_CLOUD_FROM_ENV;
    if (!ca && (ca = env_value(RD_CLOUD_ENV_CA_BUNDLE)))
        cfrom = RD_CLOUD_FROM_ENV;

    rd_cloud_credentials file = { 0 };
    int found = 0;
    /* the file is read only when something is still unknown (or it could allow plain http) */
    if (!o->no_credentials_file && (!server || !token || !ca || !o->insecure_http)) {
        char *path = o->credentials_path ? strdup(o->credentials_path) : rd_cloud_credentials_path(NULL);
        if (!path && (!server || !token))
            return o->credentials_path ? oom(err) : rd_error_set(err, RD_E_USAGE, "no redduck server: pass --server, "
                                                                                   "set REDDUCK_SERVER or run `redduck "
                                                                                   "login` (HOME is not set)");
        if (path) {
            rd_status st = rd_cloud_credentials_load(path, &file, &found, err);
            free(path);
            /* a broken file matters only when it is needed */
            if (st != RD_OK && (!server || !token))
                return st;
        }
    }
    char *norm = NULL;
    if (!server && found) {
        server = file.server;
        sfrom = RD_CLOUD_FROM_FILE;
    }
    if (!server) {
        rd_cloud_credentials_free(&file);
        return rd_error_set(err, RD_E_USAGE, "no redduck server: run `redduck login --server URL` (or pass --server, "
                                             "or set REDDUCK_SERVER)");
    }
    /* the file's settings belong to the file's server only */
    char *want = strdup(server);
    if (!want) {
        rd_cloud_credentials_free(&file);
        return oom(err);
    }
    strip_slashes(want);
    int same = found && strcmp(want, file.server) == 0;
    free(want);
    int insecure = o->insecure_http || (same && file.insecure_http);
    rd_status st = rd_cloud_check_url(server, insecure, &norm, err);
    if (st != RD_OK) {
        rd_cloud_credentials_free(&file);
        return st;
    }
    if (!token && same) {
        token = file.token;
        tfrom = RD_CLOUD_FROM_FILE;
    }
    if (!ca && same && file.ca_bundle) {
        ca = file.ca_bundle;
        cfrom = RD_CLOUD_FROM_FILE;
    }
    if (!token) {
        st = rd_error_set(err, RD_E_AUTH, "no token for %s: run `redduck login --server %s` (or set REDDUCK_TOKEN)",
                          norm, norm);
        free(norm);
        rd_cloud_credentials_free(&file);
        return st;
    }
    rd_cloud_resolved r = { { 0 }, sfrom, tfrom, cfrom };
    r.creds.server = norm;
    r.creds.token = strdup(token);
    r.creds.ca_bundle = ca ? strdup(ca) : NULL;
    r.creds.insecure_http = insecure;
    rd_cloud_credentials_free(&file);
    if (!r.creds.token || (ca && !r.creds.ca_bundle)) {
        rd_cloud_credentials_free(&r.creds);
        return oom(err);
    }
    *out = r;
    return RD_OK;
}

/* ---- names ----------------------------------------------------------------------------------------------- */

int rd_cloud_project_name_valid(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
        return 0;
    size_t n = 1;
    for (const char *p = s + 1; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return n <= 63;
}

int rd_cloud_environment_valid(const char *env)
{
    return env && (strcmp(env, "dev") == 0 || strcmp(env, "prod") == 0 || strcmp(env, "shared") == 0);
}

rd_status rd_cloud_project_name(const char *dir, const char *override, char **out, rd_error *err)
{
    char *name = NULL;
    const char *from = "--project";
    if (override) {
        if (!(name = strdup(override)))
            return oom(err);
    } else {
        int from_file = 0;
        rd_status st = rd_project_read_name(dir, &name, &from_file, err);
        if (st != RD_OK)
            return st;
        from = from_file ? "`name:` in redduck.yaml" : "the folder's name";
    }
    if (!rd_cloud_project_name_valid(name)) {
        rd_buf shown = RD_BUF_INIT;
        for (const unsigned char *p = (const unsigned char *)name; *p && shown.len < 64; p++)
            rd_buf_putc(&shown, *p >= 0x20 && *p < 0x7F ? (char)*p : '?');
        rd_status st = rd_error_set(err, RD_E_USAGE,
                                    "'%s' (%s) is not a project name the server takes (lower-case letters, digits, "
                                    "'_' and '-', at most 63, starting with a letter or digit): set `name:` in "
                                    "redduck.yaml or pass --project NAME",
                                    rd_buf_cstr(&shown), from);
        rd_buf_free(&shown);
        free(name);
        return st;
    }
    *out = name;
    return RD_OK;
}

/* ---- the client and its requests ----------------------------------------------------------------------- */


rd_status rd_cloud_open(const rd_cloud_options *o, rd_cloud **out, rd_error *err)
{
    rd_cloud *c = calloc(1, sizeof *c);
    if (!c)
        return oom(err);
    rd_status st = rd_cloud_resolve(o, &c->settings, err);
    if (st != RD_OK) {
        free(c);
        return st;
    }
    c->verbose = o ? o->verbose : 0;
    if (o && o->transport) {
        c->http = o->transport;
    } else {
        rd_http_options ho = { 0 };
        ho.ca_bundle = c->settings.creds.ca_bundle;
        st = rd_http_curl_new(&ho, &c->http, err);
        if (st != RD_OK) {
            rd_cloud_resolved_free(&c->settings);
            free(c);
            return st;
        }
        c->own_http = 1;
    }
    *out = c;
    return RD_OK;
}

void rd_cloud_free(rd_cloud *c)
{
    if (!c)
        return;
    if (c->own_http)
        rd_http_transport_free(c->http);
    rd_cloud_resolved_free(&c->settings);
    free(c);
}

const char *rd_cloud_server(const rd_cloud *c)
{
    return c->settings.creds.server;
}

const rd_cloud_resolved *rd_cloud_settings(const rd_cloud *c)
{
    return &c->settings;
}

typedef rd_cloud_call_info call_info;

/* The server's error message, one printable line (NULL when there is none). */
static void server_message(const json_t *reply, char *out, size_t n)
{
    const char *m = json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)(m ? m : ""); *p && j + 1 < n; p++)
        out[j++] = *p >= 0x20 && *p != 0x7F ? (char)*p : ' ';
    out[j] = '\0';
}

/* 422's problems into the message, one per line, as many as fit. */
static rd_status invalid_project(const call_info *ci, const json_t *reply, rd_error *err)
{
    const json_t *problems = json_object_get(json_object_get(reply, "error"), "problems");
    if (!problems)
        problems = json_object_get(reply, "problems");
    rd_buf b = RD_BUF_INIT;
    rd_buf_printf(&b, "project %s does not validate on the server (fix it and deploy again):", ci->project);
    size_t n = json_array_size(problems), shown = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = json_string_value(json_array_get(problems, i));
        if (!p)
            continue;
        if (b.len + strlen(p) + 64 >= RD_ERROR_MSG_MAX)
            break;
        rd_buf_puts(&b, "\n  ");
        for (const unsigned char *q = (const unsigned char *)p; *q; q++)
            rd_buf_putc(&b, *q >= 0x20 && *q != 0x7F ? (char)*q : ' ');
        shown++;
    }
    if (shown < n)
        rd_buf_printf(&b, "\n  … and %zu more", n - shown);
    if (n == 0) {
        char msg[512];
        server_message(reply, msg, sizeof msg);
        rd_buf_printf(&b, "\n  %s", msg[0] ? msg : "(the server gave no details)");
    }
    rd_status st = rd_error_set(err, RD_E_CONFIG, "%s", rd_buf_cstr(&b));
    rd_buf_free(&b);
    return st;
}

/* The status and error of a reply that is not 2xx. */
rd_status rd_cloud_reply_error(const rd_cloud *c, const call_info *ci, const rd_http_response *resp,
                             const json_t *reply, rd_error *err)
{
    const char *url = rd_cloud_server(c);
    char msg[512];
    server_message(reply, msg, sizeof msg);
    int s = resp->status;
    rd_status st;
    if (s == 401)
        st = rd_error_set(err, RD_E_AUTH, "the server at %s refused the token: run `redduck login`", url);
    else if (s == 403)
        st = rd_error_set(err, RD_E_DENIED, "your user may not %s%s%s on %s: that needs %s (ask an admin of the "
                          "project)", ci->doing, ci->project ? " of project " : "", ci->project ? ci->project : "",
                          url, ci->role);
    else if (s == 404 && ci->project && msg[0] && strncmp(msg, "no project ", 11) != 0)
        st = rd_error_set(err, RD_E_NOT_FOUND, "%s (on %s)", msg, url); /* something inside the project */
    else if (s == 404 && ci->project)
        st = rd_error_set(err, RD_E_NOT_FOUND, "no project %s on %s: deploy it first (`redduck deploy`)", ci->project,
                          url);
    else if (s == 404)
        st = rd_error_set(err, RD_E_NOT_FOUND, "%s: not found on %s (is it a redduck server?)", ci->path, url);
    else if (s == 409)
        st = rd_error_set(err, RD_E_REMOTE, "the server at %s refused to %s: %s", url, ci->doing,
                          msg[0] ? msg : "a conflict (try again)");
    else if (s == 413)
        st = rd_error_set(err, RD_E_CONFIG, "the server at %s refused to %s: the request (%zu bytes) is over its "
                          "limit (64 MiB for a deployment, 1 MiB of variables)", url, ci->doing, ci->body_len);
    else if (s == 422)
        st = invalid_project(ci, reply, err);
    else if (s == 429) {
        const char *ra = rd_headers_get(&resp->headers, "Retry-After");
        long secs = ra ? strtol(ra, NULL, 10) : 0;
        st = rd_error_set(err, RD_E_REMOTE, "the server at %s refuses this address for %ld s after too many failed "
                          "authentications: wait, then check the token (`redduck login`)", url, secs > 0 ? secs : 60);
    } else if (s == 400)
        st = rd_error_set(err, RD_E_USAGE, "the server at %s refused to %s: %s", url, ci->doing,
                          msg[0] ? msg : "a bad request");
    else if (s >= 500)
        st = rd_error_set(err, RD_E_REMOTE, "the redduck server at %s failed to %s (HTTP %d%s%s): see its log, then "
                          "try again", url, ci->doing, s, msg[0] ? ": " : "", msg);
    else
        st = rd_error_set(err, RD_E_REMOTE, "unexpected HTTP %d from %s for %s %s (is it a redduck server?)", s, url,
                          ci->method, ci->path);
    if (err)
        err->http_status = s;
    return st;
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

static void log_headers(const char *dir, const rd_headers *h)
{
    for (size_t i = 0; i < h->count; i++)
        fprintf(stderr, "redduck: %s %s: %s\n", dir, h->items[i].name,
                rd_header_is_secret(h->items[i].name) ? "<redacted>" : h->items[i].value);
}

rd_status rd_cloud_send(rd_cloud *c, const call_info *ci, const char *const *extra, long timeout_ms,
                        size_t (*on_body)(void *, const void *, size_t), void *ctx, rd_http_response *resp,
                        rd_error *err)
{
    rd_buf url = RD_BUF_INIT, auth = RD_BUF_INIT;
    rd_buf_printf(&url, "%s%s", rd_cloud_server(c), ci->path);
    rd_buf_printf(&auth, "Bearer %s", c->settings.creds.token);
    rd_headers h = RD_HEADERS_INIT;
    rd_status st = rd_buf_failed(&url) || rd_buf_failed(&auth) ? oom(err) : RD_OK;
    if (st == RD_OK)
        st = rd_headers_add(&h, "Authorization", auth.data);
    if (st == RD_OK && ci->ctype)
        st = rd_headers_add(&h, "Content-Type", ci->ctype);
    for (size_t i = 0; st == RD_OK && extra && extra[i] && extra[i + 1]; i += 2)
        st = rd_headers_add(&h, extra[i], extra[i + 1]);
    rd_buf_free_secure(&auth);
    if (st != RD_OK) {
        for (size_t i = 0; i < h.count; i++)
            OPENSSL_cleanse(h.items[i].value, strlen(h.items[i].value));
        rd_headers_free(&h);
        rd_buf_free(&url);
        return oom(err);
    }
    rd_http_request req = { 0 };
    req.method = ci->method;
    req.url = url.data;
    req.headers = &h;
    req.body = ci->body;
    req.body_len = ci->body_len;
    req.timeout_ms = timeout_ms;
    req.on_body = on_body;
    req.on_body_ctx = ctx;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (c->verbose >= 2)
        log_headers(">", &h);
    rd_error terr;
    rd_error_clear(&terr);
    st = rd_http_send(c->http, &req, resp, &terr);
    for (size_t i = 0; i < h.count; i++)
        OPENSSL_cleanse(h.items[i].value, strlen(h.items[i].value));
    rd_headers_free(&h);
    if (c->verbose >= 1)
        fprintf(stderr, "redduck: %s %s -> %d (%ld ms)\n", ci->method, url.data, st == RD_OK ? resp->status : 0,
                elapsed_ms(&t0));
    if (c->verbose >= 2 && st == RD_OK)
        log_headers("<", &resp->headers);
    rd_buf_free(&url);
    if (st == RD_E_CONFIG)
        st = rd_error_set(err, RD_E_CONFIG, "the TLS certificate of the redduck server at %s is not trusted: pass "
                          "--ca-cert FILE (or set REDDUCK_CA_BUNDLE) with your CA's certificate", rd_cloud_server(c));
    else if (st != RD_OK && err)
        *err = terr;
    return st;
}

/* Sends the call; on a 2xx reply *reply is its JSON (NULL for an empty body) and *status its status. */
rd_status rd_cloud_call(rd_cloud *c, const call_info *ci, json_t **reply, int *status, rd_error *err)
{
    static const char *const accept[] = { "Accept", "application/json", NULL };
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_status st = rd_cloud_send(c, ci, accept, 0, NULL, NULL, &resp, err);
    if (st != RD_OK) {
        if (st == RD_E_NETWORK)
            st = rd_error_set(err, RD_E_NETWORK, "cannot reach the redduck server at %s: is it running? (check "
                              "REDDUCK_SERVER or `redduck login --server`)", rd_cloud_server(c));
        rd_http_response_free(&resp);
        return st;
    }
    json_t *j = NULL;
    if (resp.body.len) {
        json_error_t je;
        j = json_loadb(resp.body.data, resp.body.len, 0, &je);
    }
    int s = resp.status;
    if (s >= 200 && s < 300) {
        if (resp.body.len && !j) {
            st = rd_error_set(err, RD_E_REMOTE, "the server at %s answered %s %s with something that is not JSON (is "
                              "it a redduck server?)", rd_cloud_server(c), ci->method, ci->path);
        } else {
            *reply = j;
            *status = s;
            j = NULL;
        }
    } else {
        st = rd_cloud_reply_error(c, ci, &resp, j, err);
    }
    json_decref(j);
    rd_http_response_free(&resp);
    return st;
}

/* A 2xx reply that must be a JSON object. */
rd_status rd_cloud_call_object(rd_cloud *c, const call_info *ci, json_t **reply, rd_error *err)
{
    int status = 0;
    json_t *j = NULL;
    rd_status st = rd_cloud_call(c, ci, &j, &status, err);
    if (st != RD_OK)
        return st;
    if (!json_is_object(j)) {
        json_decref(j);
        return rd_error_set(err, RD_E_REMOTE, "the server at %s gave an empty or unexpected reply to %s %s",
                            rd_cloud_server(c), ci->method, ci->path);
    }
    *reply = j;
    return RD_OK;
}

rd_status rd_cloud_bad_reply(const rd_cloud *c, const call_info *ci, rd_error *err)
{
    return rd_error_set(err, RD_E_REMOTE, "the server at %s gave a reply to %s %s that this client does not read "
                        "(are both the same version?)", rd_cloud_server(c), ci->method, ci->path);
}

rd_status rd_cloud_check_names(const char *project, const char *environment, rd_error *err)
{
    if (project && !rd_cloud_project_name_valid(project))
        return rd_error_set(err, RD_E_USAGE, "'%.64s' is not a project name (lower-case letters, digits, '_' and '-')",
                            project);
    if (environment && !rd_cloud_environment_valid(environment))
        return rd_error_set(err, RD_E_USAGE, "'%.32s' is not an environment: dev, prod or shared", environment);
    return RD_OK;
}

static const char *variables_role(const char *environment)
{
    return strcmp(environment, "prod") == 0 ? "the editor role with prod access, or admin"
                                            : "the editor or admin role";
}

rd_status rd_cloud_get_whoami(rd_cloud *c, rd_cloud_whoami *out, rd_error *err)
{
    call_info ci = { "GET", "/v1/whoami", NULL, "read who you are", "a token", NULL, NULL, 0 };
    json_t *j = NULL;
    rd_status st = rd_cloud_call_object(c, &ci, &j, err);
    if (st != RD_OK)
        return st;
    const char *user = json_string_value(json_object_get(j, "user"));
    if (!user) {
        json_decref(j);
        return rd_cloud_bad_reply(c, &ci, err);
    }
    rd_cloud_whoami w = { strdup(user), json_is_true(json_object_get(j, "server_admin")) };
    json_decref(j);
    if (!w.user)
        return oom(err);
    *out = w;
    return RD_OK;
}

void rd_cloud_whoami_free(rd_cloud_whoami *w)
{
    if (w) {
        free(w->user);
        w->user = NULL;
    }
}

static void strings_free(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

/* A JSON array of strings, copied; NULL for an array that holds something else (or out of memory). */
static char **strings_of(const json_t *a, size_t *n)
{
    size_t k = json_array_size(a);
    char **out = calloc(k ? k : 1, sizeof *out);
    if (!out || !json_is_array(a)) {
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < k; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s || !(out[i] = strdup(s))) {
            strings_free(out, i);
            return NULL;
        }
    }
    *n = k;
    return out;
}

void rd_cloud_deploy_result_free(rd_cloud_deploy_result *r)
{
    if (!r)
        return;
    free(r->project);
    free(r->sha256);
    free(r->environment);
    for (size_t i = 0; i < r->nmissing; i++) {
        free(r->missing[i].connector);
        strings_free(r->missing[i].keys, r->missing[i].nkeys);
    }
    free(r->missing);
    strings_free(r->skipped, r->nskipped);
    memset(r, 0, sizeof *r);
}

static rd_status read_deploy_reply(const json_t *j, const char *environment, rd_cloud_deploy_result *r)
{
    const char *project = json_string_value(json_object_get(j, "project"));
    const json_t *version = json_object_get(j, "version");
    const char *sha = json_string_value(json_object_get(j, "sha256"));
    const char *env = json_string_value(json_object_get(j, "environment"));
    const json_t *missing = json_object_get(j, "missing");
    if (!project || !json_is_integer(version) || (missing && !json_is_array(missing)))
        return RD_E_REMOTE;
    r->project = strdup(project);
    r->version = (long)json_integer_value(version);
    r->sha256 = strdup(sha ? sha : "");
    r->environment = strdup(env ? env : environment);
    size_t n = json_array_size(missing);
    r->missing = calloc(n ? n : 1, sizeof *r->missing);
    if (!r->project || !r->sha256 || !r->environment || !r->missing)
        return RD_E_INTERNAL;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(missing, i);
        const char *conn = json_string_value(json_object_get(m, "connector"));
        rd_cloud_missing *out = &r->missing[r->nmissing];
        out->keys = strings_of(json_object_get(m, "keys"), &out->nkeys);
        if (!out->keys)
            return RD_E_REMOTE;
        if (!(out->connector = strdup(conn ? conn : ""))) {
            strings_free(out->keys, out->nkeys);
            return RD_E_INTERNAL;
        }
        r->nmissing++;
    }
    return RD_OK;
}

rd_status rd_cloud_deploy(rd_cloud *c, const char *dir, const char *project, const char *environment,
                          rd_cloud_deploy_result *out, rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, environment, err);
    if (st != RD_OK)
        return st;
    rd_buf archive = RD_BUF_INIT;
    rd_archive_pack_result pr = { 0 };
    if ((st = rd_archive_pack(dir, NULL, &archive, &pr, err)) != RD_OK) {
        rd_buf_free(&archive);
        return st;
    }
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/deployments?environment=%s", project, environment);
    rd_buf doing = RD_BUF_INIT;
    rd_buf_printf(&doing, "deploy to %s", environment);
    call_info ci = { "POST", rd_buf_cstr(&path), project, rd_buf_cstr(&doing),
                     strcmp(environment, "prod") == 0 ? "the editor role with prod access, or admin"
                                                      : "the editor or admin role",
                     "application/gzip", archive.data, archive.len };
    json_t *j = NULL;
    st = rd_buf_failed(&path) || rd_buf_failed(&doing) ? oom(err) : rd_cloud_call_object(c, &ci, &j, err);
    rd_cloud_deploy_result r = { 0 };
    if (st == RD_OK) {
        rd_status rs = read_deploy_reply(j, environment, &r);
        if (rs == RD_E_REMOTE)
            st = rd_cloud_bad_reply(c, &ci, err);
        else if (rs != RD_OK)
            st = oom(err);
    }
    json_decref(j);
    if (st == RD_OK) {
        r.nfiles = pr.nfiles;
        r.archive_bytes = archive.len;
        r.skipped = pr.skipped;
        r.nskipped = pr.nskipped;
        pr.skipped = NULL;
        pr.nskipped = 0;
        *out = r;
    } else {
        rd_cloud_deploy_result_free(&r);
    }
    rd_archive_pack_result_free(&pr);
    rd_buf_free(&archive);
    rd_buf_free(&path);
    rd_buf_free(&doing);
    return st;
}

void rd_cloud_deployments_free(rd_cloud_deployment *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        free(d[i].created_at);
        free(d[i].created_by);
        free(d[i].sha256);
        free(d[i].environment);
    }
    free(d);
}

static char *dup_or_empty(const json_t *v)
{
    const char *s = json_string_value(v);
    return strdup(s ? s : "");
}

rd_status rd_cloud_list_deployments(rd_cloud *c, const char *project, rd_cloud_deployment **out, size_t *n,
                                    rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, NULL, err);
    if (st != RD_OK)
        return st;
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/deployments", project);
    call_info ci = { "GET", rd_buf_cstr(&path), project, "list the deployments", "a role in the project (viewer "
                     "at least)", NULL, NULL, 0 };
    json_t *j = NULL;
    st = rd_buf_failed(&path) ? oom(err) : rd_cloud_call_object(c, &ci, &j, err);
    const json_t *a = json_object_get(j, "deployments");
    if (st == RD_OK && !json_is_array(a))
        st = rd_cloud_bad_reply(c, &ci, err);
    size_t k = json_array_size(a);
    rd_cloud_deployment *d = st == RD_OK ? calloc(k ? k : 1, sizeof *d) : NULL;
    if (st == RD_OK && !d)
        st = oom(err);
    for (size_t i = 0; st == RD_OK && i < k; i++) {
        const json_t *e = json_array_get(a, i);
        const json_t *v = json_object_get(e, "version");
        if (!json_is_integer(v)) {
            st = rd_cloud_bad_reply(c, &ci, err);
            break;
        }
        d[i].version = (long)json_integer_value(v);
        d[i].active = json_is_true(json_object_get(e, "active"));
        d[i].created_at = dup_or_empty(json_object_get(e, "created_at"));
        d[i].created_by = dup_or_empty(json_object_get(e, "created_by"));
        d[i].sha256 = dup_or_empty(json_object_get(e, "sha256"));
        d[i].environment = dup_or_empty(json_object_get(e, "environment"));
        if (!d[i].created_at || !d[i].created_by || !d[i].sha256 || !d[i].environment)
            st = oom(err);
    }
    json_decref(j);
    rd_buf_free(&path);
    if (st != RD_OK) {
        rd_cloud_deployments_free(d, k);
        return st;
    }
    *out = d;
    *n = k;
    return RD_OK;
}

rd_status rd_cloud_activate(rd_cloud *c, const char *project, long version, rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, NULL, err);
    if (st != RD_OK)
        return st;
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/deployments/%ld/activate", project, version);
    call_info ci = { "POST", rd_buf_cstr(&path), project, "roll back", "the editor or admin role",
                     "application/json", "{}", 2 };
    json_t *j = NULL;
    st = rd_buf_failed(&path) ? oom(err) : rd_cloud_call_object(c, &ci, &j, err);
    json_decref(j);
    rd_buf_free(&path);
    return st;
}

/* An rd_dotenv holding the pairs of a JSON object (values wiped when freed by the caller). */
static rd_status dotenv_of(const json_t *vars, const char *label, rd_dotenv *out)
{
    size_t n = json_object_size(vars);
    rd_dotenv e = { calloc(n ? n : 1, sizeof(rd_dotenv_entry)), 0, strdup(label) };
    if (!e.items || !e.path) {
        free(e.items);
        free(e.path);
        return RD_E_INTERNAL;
    }
    const char *k;
    json_t *v;
    rd_status st = RD_OK;
    json_object_foreach((json_t *)vars, k, v) {
        if (!json_is_string(v) || !rd_dotenv_key_valid(k)) {
            st = RD_E_REMOTE;
            break;
        }
        rd_dotenv_entry *it = &e.items[e.count];
        it->key = strdup(k);
        it->value = strdup(json_string_value(v));
        it->line = (int)e.count + 1;
        e.count++;
        if (!it->key || !it->value) {
            st = RD_E_INTERNAL;
            break;
        }
    }
    if (st != RD_OK) {
        for (size_t i = 0; i < e.count; i++)
            if (e.items[i].value)
                OPENSSL_cleanse(e.items[i].value, strlen(e.items[i].value));
        rd_dotenv_free(&e);
        return st;
    }
    *out = e;
    return RD_OK;
}

static void wipe_json_strings(json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (json_is_string(v)) {
            char *s = (char *)json_string_value(v);
            OPENSSL_cleanse(s, strlen(s));
        }
    }
}

rd_status rd_cloud_get_variables(rd_cloud *c, const char *project, const char *environment, rd_dotenv *out,
                                 rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, environment, err);
    if (st != RD_OK)
        return st;
    rd_buf path = RD_BUF_INIT, doing = RD_BUF_INIT, label = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/variables/%s", project, environment);
    rd_buf_printf(&doing, "read the variables of %s", environment);
    rd_buf_printf(&label, "the %s variables of %s on %s", environment, project, rd_cloud_server(c));
    call_info ci = { "GET", rd_buf_cstr(&path), project, rd_buf_cstr(&doing), variables_role(environment), NULL,
                     NULL, 0 };
    json_t *j = NULL;
    st = rd_buf_failed(&path) || rd_buf_failed(&doing) || rd_buf_failed(&label) ? oom(err)
                                                                                 : rd_cloud_call_object(c, &ci, &j, err);
    json_t *vars = json_object_get(j, "variables");
    if (st == RD_OK && !json_is_object(vars))
        st = rd_cloud_bad_reply(c, &ci, err);
    if (st == RD_OK) {
        rd_status ds = dotenv_of(vars, rd_buf_cstr(&label), out);
        if (ds == RD_E_REMOTE)
            st = rd_cloud_bad_reply(c, &ci, err);
        else if (ds != RD_OK)
            st = oom(err);
    }
    if (json_is_object(vars))
        wipe_json_strings(vars);
    json_decref(j);
    rd_buf_free(&path);
    rd_buf_free(&doing);
    rd_buf_free(&label);
    return st;
}

void rd_cloud_names_free(char **names, size_t n)
{
    strings_free(names, n);
}

rd_status rd_cloud_get_variable_names(rd_cloud *c, const char *project, const char *environment, char ***names,
                                      size_t *n, rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, environment, err);
    if (st != RD_OK)
        return st;
    rd_buf path = RD_BUF_INIT, doing = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/variables/%s?names=1", project, environment);
    rd_buf_printf(&doing, "list the variables of %s", environment);
    call_info ci = { "GET", rd_buf_cstr(&path), project, rd_buf_cstr(&doing), variables_role(environment), NULL,
                     NULL, 0 };
    json_t *j = NULL;
    st = rd_buf_failed(&path) || rd_buf_failed(&doing) ? oom(err) : rd_cloud_call_object(c, &ci, &j, err);
    size_t k = 0;
    char **s = st == RD_OK ? strings_of(json_object_get(j, "names"), &k) : NULL;
    if (st == RD_OK && !s)
        st = json_is_array(json_object_get(j, "names")) ? oom(err) : rd_cloud_bad_reply(c, &ci, err);
    json_decref(j);
    rd_buf_free(&path);
    rd_buf_free(&doing);
    if (st == RD_OK) {
        *names = s;
        *n = k;
    }
    return st;
}

rd_status rd_cloud_set_variables(rd_cloud *c, const char *project, const char *environment, const rd_dotenv *set,
                                 rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, environment, err);
    if (st != RD_OK)
        return st;
    for (size_t i = 0; i < set->count; i++)
        if (!rd_dotenv_key_valid(set->items[i].key))
            return rd_error_set(err, RD_E_USAGE, "'%.64s' is not a variable name (a .env key)", set->items[i].key);
    json_t *vars = json_object();
    for (size_t i = 0; vars && i < set->count; i++)
        if (json_object_set_new(vars, set->items[i].key, json_string(set->items[i].value)) != 0) {
            wipe_json_strings(vars);
            json_decref(vars);
            /* json_string refuses text that is not UTF-8: never quote it */
            return rd_error_set(err, RD_E_USAGE, "the value of %s is not UTF-8 text: the server keeps text only",
                                set->items[i].key);
        }
    json_t *body = json_pack("{s:o,s:[]}", "set", vars, "unset");
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body) {
        wipe_json_strings(json_object_get(body, "set"));
        json_decref(body);
    }
    if (!text)
        return oom(err);
    rd_buf path = RD_BUF_INIT, doing = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/variables/%s", project, environment);
    rd_buf_printf(&doing, "write the variables of %s", environment);
    call_info ci = { "PATCH", rd_buf_cstr(&path), project, rd_buf_cstr(&doing), variables_role(environment),
                     "application/json", text, strlen(text) };
    json_t *j = NULL;
    st = rd_buf_failed(&path) || rd_buf_failed(&doing) ? oom(err) : rd_cloud_call_object(c, &ci, &j, err);
    json_decref(j);
    wipe_free(text);
    rd_buf_free(&path);
    rd_buf_free(&doing);
    return st;
}

rd_status rd_cloud_delete_variable(rd_cloud *c, const char *project, const char *environment, const char *name,
                                   rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, environment, err);
    if (st != RD_OK)
        return st;
    if (!rd_dotenv_key_valid(name))
        return rd_error_set(err, RD_E_USAGE, "'%.64s' is not a variable name (a .env key)", name);
    /* a 404 here means either the project or the variable: ask for the names first */
    char **names = NULL;
    size_t n = 0;
    if ((st = rd_cloud_get_variable_names(c, project, environment, &names, &n, err)) != RD_OK)
        return st;
    int present = 0;
    for (size_t i = 0; i < n; i++)
        present |= strcmp(names[i], name) == 0;
    rd_cloud_names_free(names, n);
    if (!present)
        return rd_error_set(err, RD_E_NOT_FOUND, "no variable %s in the %s variables of %s (see `redduck env show "
                            "--cloud --environment %s`)", name, environment, project, environment);
    rd_buf path = RD_BUF_INIT, doing = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/variables/%s/%s", project, environment, name);
    rd_buf_printf(&doing, "write the variables of %s", environment);
    call_info ci = { "DELETE", rd_buf_cstr(&path), project, rd_buf_cstr(&doing), variables_role(environment), NULL,
                     NULL, 0 };
    json_t *j = NULL;
    int status = 0;
    st = rd_buf_failed(&path) || rd_buf_failed(&doing) ? oom(err) : rd_cloud_call(c, &ci, &j, &status, err);
    json_decref(j);
    rd_buf_free(&path);
    rd_buf_free(&doing);
    return st;
}

/* ---- .env comparisons ---------------------------------------------------------------------------------- */

rd_status rd_cloud_diff_env(const rd_dotenv *from, const rd_dotenv *to, rd_cloud_diff *out, rd_error *err)
{
    size_t cap = from->count + to->count;
    rd_cloud_diff d = { calloc(cap ? cap : 1, sizeof(rd_cloud_change)), 0, 0, 0, 0, 0 };
    if (!d.items)
        return oom(err);
    for (size_t i = 0; i < from->count; i++) {
        const rd_dotenv_entry *e = &from->items[i];
        const char *old = rd_dotenv_get(to, e->key);
        rd_cloud_change ch = { e->key, e->value, old, RD_CLOUD_ADDED };
        if (!old)
            d.added++;
        else if (strcmp(old, e->value) != 0) {
            ch.kind = RD_CLOUD_CHANGED;
            d.changed++;
        } else {
            ch.kind = RD_CLOUD_UNCHANGED;
            d.unchanged++;
        }
        d.items[d.count++] = ch;
    }
    for (size_t i = 0; i < to->count; i++) {
        const rd_dotenv_entry *e = &to->items[i];
        if (rd_dotenv_get(from, e->key))
            continue;
        rd_cloud_change ch = { e->key, e->value, e->value, RD_CLOUD_KEPT };
        d.items[d.count++] = ch;
        d.kept++;
    }
    *out = d;
    return RD_OK;
}

void rd_cloud_diff_free(rd_cloud_diff *d)
{
    if (d) {
        free(d->items);
        memset(d, 0, sizeof *d);
    }
}

rd_status rd_cloud_env_apply(const char *path, const rd_cloud_diff *d, rd_error *err)
{
    if (d->added + d->changed == 0)
        return RD_OK;
    /* the current file, copied into a 0600 file beside it; the keys set there; then renamed over it */
    rd_buf text = RD_BUF_INIT;
    FILE *f = fopen(path, "rb");
    if (!f && errno != ENOENT)
        return rd_error_set(err, RD_E_IO, "cannot read %s: %s", path, strerror(errno));
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            rd_buf_append(&text, chunk, n);
        OPENSSL_cleanse(chunk, sizeof chunk);
        int bad = ferror(f);
        fclose(f);
        if (bad) {
            rd_buf_free_secure(&text);
            return rd_error_set(err, RD_E_IO, "cannot read %s", path);
        }
    }
    if (rd_buf_failed(&text)) {
        rd_buf_free_secure(&text);
        return oom(err);
    }
    rd_buf tmp = RD_BUF_INIT;
    rd_buf_printf(&tmp, "%s.pull-XXXXXX", path);
    if (rd_buf_failed(&tmp)) {
        rd_buf_free_secure(&text);
        return oom(err);
    }
    int fd = mkstemp(tmp.data);
    rd_status st = RD_OK;
    if (fd < 0)
        st = rd_error_set(err, RD_E_IO, "cannot create a file beside %s: %s", path, strerror(errno));
    if (fd >= 0) {
        if (fchmod(fd, 0600) != 0)
            st = rd_error_set(err, RD_E_IO, "cannot chmod %s: %s", tmp.data, strerror(errno));
        for (size_t off = 0; st == RD_OK && off < text.len;) {
            ssize_t w = write(fd, text.data + off, text.len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", tmp.data, strerror(errno));
            else
                off += (size_t)w;
        }
        if (close(fd) != 0 && st == RD_OK)
            st = rd_error_set(err, RD_E_IO, "cannot write %s: %s", tmp.data, strerror(errno));
    }
    rd_buf_free_secure(&text);
    for (size_t i = 0; st == RD_OK && i < d->count; i++) {
        const rd_cloud_change *ch = &d->items[i];
        if (ch->kind != RD_CLOUD_ADDED && ch->kind != RD_CLOUD_CHANGED)
            continue;
        st = rd_dotenv_set_in_file(tmp.data, ch->key, ch->value, err);
    }
    if (st == RD_OK && rename(tmp.data, path) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot replace %s: %s", path, strerror(errno));
    if (st != RD_OK && fd >= 0)
        unlink(tmp.data);
    rd_buf_free(&tmp);
    return st;
}

/* 1 when a .gitignore line (trailing spaces and CR off) ignores the project's .env. */
static int ignores_env(const char *line, size_t n)
{
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r' || line[n - 1] == '\t'))
        n--;
    static const char *const pats[] = { ".env", "/.env", ".env*", "/.env*" };
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++)
        if (strlen(pats[i]) == n && memcmp(pats[i], line, n) == 0)
            return 1;
    return 0;
}

rd_status rd_cloud_gitignore_env(const char *dir, int *changed, rd_error *err)
{
    rd_buf path = RD_BUF_INIT, text = RD_BUF_INIT;
    rd_buf_printf(&path, "%s/.gitignore", dir);
    if (rd_buf_failed(&path))
        return oom(err);
    FILE *f = fopen(path.data, "rb");
    int existed = f != NULL;
    if (!f && errno != ENOENT) {
        rd_status st = rd_error_set(err, RD_E_IO, "cannot read %s: %s", path.data, strerror(errno));
        rd_buf_free(&path);
        return st;
    }
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            rd_buf_append(&text, chunk, n);
        fclose(f);
    }
    const char *s = rd_buf_cstr(&text);
    int found = 0;
    for (size_t i = 0; i < text.len && !found;) {
        const char *nl = memchr(s + i, '\n', text.len - i);
        size_t n = nl ? (size_t)(nl - (s + i)) : text.len - i;
        found = ignores_env(s + i, n);
        i += n + 1;
    }
    rd_status st = RD_OK;
    if (found) {
        *changed = 0;
    } else {
        int fd = open(path.data, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
        const char *add = text.len && s[text.len - 1] != '\n' ? "\n.env\n" : ".env\n";
        if (fd < 0 || write(fd, add, strlen(add)) != (ssize_t)strlen(add))
            st = rd_error_set(err, RD_E_IO, "cannot add .env to %s: %s", path.data, strerror(errno));
        if (fd >= 0)
            close(fd);
        if (st == RD_OK)
            *changed = existed ? 2 : 1;
    }
    rd_buf_free(&text);
    rd_buf_free(&path);
    return st;
}
