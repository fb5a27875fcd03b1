/* client_data.c — the client of the data calls (redduck/pull.h): `redduck pull` (the snapshot streamed into
 * FILE.part, resumed with Range/If-Range, its SHA-256 checked, --tables copied out with DuckDB, FILE replaced by
 * a rename, the changes since the last pull from FILE.pull.json) and `redduck query --cloud`. */
#include "redduck/pull.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "redduck/value.h"
#include "server/client_internal.h"

#define PULL_TIMEOUT_MS (24L * 3600 * 1000) /* a whole download; a stalled one stops at the transport's idle limit */
#define ERROR_BODY_MAX (64 * 1024)

typedef rd_cloud_call_info call_info;

static rd_status oom(rd_error *err)
{
    return rd_error_set(err, RD_E_INTERNAL, "out of memory");
}

/* ---- one request with extra headers, a body sink and the raw answer ------------------------------------ */

/* rd_cloud_send, with what a broken connection means for a data call. */
static rd_status send_raw(rd_cloud *c, const call_info *ci, const char *const *extra, long timeout_ms,
                          size_t (*on_body)(void *, const void *, size_t), void *ctx, rd_http_response *resp,
                          rd_error *err)
{
    rd_error terr;
    rd_error_clear(&terr);
    rd_status st = rd_cloud_send(c, ci, extra, timeout_ms, on_body, ctx, resp, &terr);
    if (st == RD_E_NETWORK)
        return rd_error_set(err, RD_E_NETWORK, "the connection to the redduck server at %s broke or cannot be "
                            "made: is it running? (%s)", rd_cloud_server(c), terr.message);
    if (st != RD_OK && err)
        *err = terr;
    return st;
}

/* The server's message of an error answer, one printable line ("" when none). */
static void server_message(const char *body, size_t len, char *out, size_t n)
{
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)(m ? m : ""); *p && k + 1 < n; p++)
        out[k++] = *p >= 0x20 && *p != 0x7F ? (char)*p : ' ';
    out[k] = 0;
    json_decref(j);
}

/* The error of a data call's answer that is not 2xx: the data calls' own cases, else rd_cloud_reply_error's. */
static rd_status data_error(rd_cloud *c, const call_info *ci, const rd_http_response *resp, const char *body,
                            size_t len, rd_error *err)
{
    char msg[512];
    server_message(body, len, msg, sizeof msg);
    int s = resp->status;
    rd_status st;
    if (s == 404 && strstr(msg, "no data yet"))
        st = rd_error_set(err, RD_E_NOT_FOUND, "project %s on %s has %s", ci->project, rd_cloud_server(c), msg);
    else if (s == 400 || s == 408)
        st = rd_error_set(err, RD_E_REMOTE, "the server at %s refused the query: %s", rd_cloud_server(c),
                          msg[0] ? msg : "a bad request");
    else if (s == 429 && ci->body)
        st = rd_error_set(err, RD_E_REMOTE, "the server at %s is running as many queries as it allows: retry in a "
                          "moment (%s)", rd_cloud_server(c), msg);
    else {
        json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
        st = rd_cloud_reply_error(c, ci, resp, j, err);
        json_decref(j);
    }
    if (err)
        err->http_status = s;
    return st;
}

/* ---- files ------------------------------------------------------------------------------------------------ */

static char *path_with(const char *base, const char *suffix)
{
    rd_buf b = RD_BUF_INIT;
    rd_buf_printf(&b, "%s%s", base, suffix);
    return rd_buf_detach(&b);
}

static json_t *load_json_file(const char *path)
{
    json_error_t je;
    return json_load_file(path, JSON_REJECT_DUPLICATES, &je);
}

/* Writes j to path atomically (0600 temporary, fsync, rename). */
static rd_status save_json_file(const char *path, json_t *j, rd_error *err)
{
    char *tmp = path_with(path, ".tmp");
    char *text = json_dumps(j, JSON_COMPACT);
    if (!tmp || !text) {
        free(tmp);
        free(text);
        return oom(err);
    }
    rd_status st = RD_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t n = strlen(text);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        st = rd_error_set(err, RD_E_IO, "writing %s: %s", tmp, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (st == RD_OK && rename(tmp, path) != 0)
        st = rd_error_set(err, RD_E_IO, "renaming %s to %s: %s", tmp, path, strerror(errno));
    if (st != RD_OK)
        unlink(tmp);
    free(tmp);
    free(text);
    return st;
}

static void fsync_dir_of(const char *path)
{
    char *dir = rd_path_dirname(path);
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

static rd_status sha256_file(const char *path, char out[65], rd_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return rd_error_set(err, RD_E_IO, "reading %s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(1 << 20);
    rd_status st = RD_OK;
    if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        st = oom(err);
    } else {
        ssize_t n;
        while ((n = read(fd, buf, 1 << 20)) > 0)
            EVP_DigestUpdate(ctx, buf, (size_t)n);
        if (n < 0)
            st = rd_error_set(err, RD_E_IO, "reading %s: %s", path, strerror(errno));
        unsigned char md[32];
        unsigned int len = 0;
        if (st == RD_OK && EVP_DigestFinal_ex(ctx, md, &len) == 1)
            for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    free(buf);
    EVP_MD_CTX_free(ctx);
    close(fd);
    return st;
}

/* ---- the download ----------------------------------------------------------------------------------------- */

typedef struct sink {
    rd_http_response *resp;
    int fd;
    const char *part_json;
    uint64_t have, total, got;
    int started, failed_io, other;
    int64_t id;
    char sha[65];
    rd_buf error_body;
    const rd_cloud_pull_options *o;
    int saved_errno;
} sink;

/* The first bytes of an answer: 200 starts the part over, 206 goes on after it; FILE.part.json says which
 * snapshot the part is, before any byte of it is written. */
static int sink_start(sink *k)
{
    const rd_headers *h = &k->resp->headers;
    const char *sha = rd_headers_get(h, "X-Redduck-Sha256"), *id = rd_headers_get(h, "X-Redduck-Snapshot-Id");
    const char *cr = rd_headers_get(h, "Content-Range"), *cl = rd_headers_get(h, "Content-Length");
    if (!sha || strlen(sha) != 64 || !id)
        return -1;
    snprintf(k->sha, sizeof k->sha, "%s", sha);
    k->id = strtoll(id, NULL, 10);
    if (k->resp->status == 206) {
        const char *slash = cr ? strchr(cr, '/') : NULL;
        uint64_t first = cr && strncmp(cr, "bytes ", 6) == 0 ? strtoull(cr + 6, NULL, 10) : UINT64_MAX;
        if (!slash || first != k->have)
            return -1;
        k->total = strtoull(slash + 1, NULL, 10);
    } else {
        if (ftruncate(k->fd, 0) != 0 || lseek(k->fd, 0, SEEK_SET) != 0)
            return -1;
        k->have = 0;
        k->total = cl ? strtoull(cl, NULL, 10) : 0;
    }
    json_t *j = json_pack("{s:I, s:s, s:I}", "snapshot_id", (json_int_t)k->id, "sha256", k->sha, "size",
                          (json_int_t)k->total);
    rd_error e;
    rd_error_clear(&e);
    int rc = j && save_json_file(k->part_json, j, &e) == RD_OK ? 0 : -1;
    json_decref(j);
    return rc;
}

static size_t sink_write(void *ud, const void *data, size_t len)
{
    sink *k = ud;
    int s = k->resp->status;
    if (s != 200 && s != 206) {
        k->other = 1;
        if (k->error_body.len < ERROR_BODY_MAX)
            rd_buf_append(&k->error_body, data, len);
        return len;
    }
    if (!k->started) {
        k->started = 1;
        if (sink_start(k) != 0) {
            k->failed_io = 1;
            k->saved_errno = errno;
            return 0;
        }
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(k->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            k->failed_io = 1;
            k->saved_errno = errno;
            return 0;
        }
        p += w;
        left -= (size_t)w;
    }
    k->have += len;
    k->got += len;
    if (k->o->progress)
        k->o->progress(k->o->progress_ctx, k->have, k->total);
    return len;
}

/* Downloads into part (resuming what part_json says it holds). On success *id and sha are the snapshot's. */
static rd_status download(rd_cloud *c, const rd_cloud_pull_options *o, const char *part, const char *part_json,
                          rd_cloud_pull_result *out, int64_t *id, char sha[65], rd_error *err)
{
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/snapshot", o->project);
    call_info ci = { .method = "GET", .path = path.data, .project = o->project, .doing = "download the data",
                     .role = "viewer" };
    struct stat sb;
    uint64_t have = 0;
    char range[48], if_range[80];
    const char *extra[5] = { NULL };
    json_t *pj = load_json_file(part_json);
    const char *psha = json_string_value(json_object_get(pj, "sha256"));
    if (psha && strlen(psha) == 64 && lstat(part, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        have = (uint64_t)sb.st_size;
        snprintf(range, sizeof range, "bytes=%" PRIu64 "-", have);
        snprintf(if_range, sizeof if_range, "\"%s\"", psha);
        extra[0] = "Range";
        extra[1] = range;
        extra[2] = "If-Range";
        extra[3] = if_range;
    } else {
        unlink(part);
    }
    json_decref(pj);
    int fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || lseek(fd, (off_t)have, SEEK_SET) < 0) {
        rd_status st = rd_error_set(err, RD_E_IO, "creating %s: %s", part, strerror(errno));
        if (fd >= 0)
            close(fd);
        rd_buf_free(&path);
        return st;
    }
    rd_http_response resp;
    rd_http_response_init(&resp);
    sink k = { .resp = &resp, .fd = fd, .part_json = part_json, .have = have, .o = o, .error_body = RD_BUF_INIT };
    rd_status st = rd_buf_failed(&path) ? oom(err) : send_raw(c, &ci, extra, PULL_TIMEOUT_MS, sink_write, &k, &resp, err);
    if (close(fd) != 0 && st == RD_OK && !k.failed_io) {
        k.failed_io = 1;
        k.saved_errno = errno;
    }
    if (k.failed_io)
        st = rd_error_set(err, RD_E_IO, "writing %s: %s (the part is kept: free space, then run `redduck pull` again)",
                          part, k.saved_errno ? strerror(k.saved_errno) : "the server's answer was not a snapshot");
    else if (st == RD_E_NETWORK)
        st = rd_error_set(err, RD_E_NETWORK, "the download from %s broke after %" PRIu64 " of %" PRIu64 " bytes: %s "
                          "is kept, run `redduck pull` again to resume", rd_cloud_server(c), k.have, k.total, part);
    else if (st == RD_OK && resp.status == 416) {
        unlink(part); /* the part is not a prefix of this snapshot */
        unlink(part_json);
        st = rd_error_set(err, RD_E_REMOTE, "the part downloaded before did not fit the snapshot: it was removed, run "
                          "`redduck pull` again");
    } else if (st == RD_OK && resp.status != 200 && resp.status != 206) {
        st = data_error(c, &ci, &resp, k.error_body.data, k.error_body.len, err);
    } else if (st == RD_OK && (!k.started || k.have != k.total)) {
        if (!k.started && resp.status == 206) /* nothing was left to send */
            st = rd_error_set(err, RD_E_REMOTE, "the server sent an empty range: run `redduck pull` again");
        else if (!k.started) /* an empty snapshot */
            st = sink_start(&k) == 0 ? RD_OK : rd_error_set(err, RD_E_REMOTE, "the server's answer was not a snapshot");
        else
            st = rd_error_set(err, RD_E_NETWORK, "the download ended after %" PRIu64 " of %" PRIu64 " bytes: run "
                              "`redduck pull` again to resume", k.have, k.total);
    }
    if (st == RD_OK) {
        out->downloaded = k.got;
        out->resumed_from = resp.status == 206 ? have : 0;
        out->size = k.total;
        *id = k.id;
        memcpy(sha, k.sha, 65);
    }
    rd_buf_free(&k.error_body);
    rd_http_response_free(&resp);
    rd_buf_free(&path);
    return st;
}

/* ---- what changed --------------------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const rd_cloud_table_change *)a)->name, ((const rd_cloud_table_change *)b)->name);
}

/* Now's tables against the last pull's (prev: its "tables" array, may be NULL). */
static rd_status changes_of(const rd_value_table *now, size_t n, const json_t *prev, rd_cloud_pull_result *out,
                            rd_error *err)
{
    size_t np = json_array_size(prev);
    rd_cloud_table_change *ch = calloc(n + np + 1, sizeof *ch);
    if (!ch)
        return oom(err);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        ch[k].name = strdup(now[i].name);
        ch[k].rows_after = now[i].rows;
        ch[k].kind = RD_CLOUD_TABLE_NEW;
        for (size_t j = 0; j < np; j++) {
            const json_t *t = json_array_get(prev, j);
            const char *pn = json_string_value(json_object_get(t, "name"));
            if (pn && strcmp(pn, now[i].name) == 0) {
                ch[k].rows_before = (uint64_t)json_integer_value(json_object_get(t, "rows"));
                ch[k].kind = ch[k].rows_before == now[i].rows ? RD_CLOUD_TABLE_SAME : RD_CLOUD_TABLE_ROWS;
            }
        }
        if (!ch[k++].name)
            goto fail;
    }
    for (size_t j = 0; j < np; j++) {
        const json_t *t = json_array_get(prev, j);
        const char *pn = json_string_value(json_object_get(t, "name"));
        int found = 0;
        for (size_t i = 0; pn && i < n; i++)
            found |= strcmp(pn, now[i].name) == 0;
        if (!pn || found)
            continue;
        ch[k].name = strdup(pn);
        ch[k].rows_before = (uint64_t)json_integer_value(json_object_get(t, "rows"));
        ch[k].kind = RD_CLOUD_TABLE_REMOVED;
        if (!ch[k++].name)
            goto fail;
    }
    qsort(ch, k, sizeof *ch, by_name);
    out->changes = ch;
    out->nchanges = k;
    return RD_OK;
fail:
    for (size_t i = 0; i < k; i++)
        free(ch[i].name);
    free(ch);
    return oom(err);
}

static json_t *tables_json(const rd_value_table *t, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:I}", "name", t[i].name, "rows", (json_int_t)t[i].rows));
    return a;
}

/* "a,b" of the --tables selection, sorted ("" for all). */
static char *selection_of(const rd_cloud_pull_options *o)
{
    rd_buf b = RD_BUF_INIT;
    rd_buf_puts(&b, "");
    const char **s = calloc(o->ntables + 1, sizeof *s);
    if (!s)
        return NULL;
    for (size_t i = 0; i < o->ntables; i++)
        s[i] = o->tables[i];
    for (size_t i = 0; i < o->ntables; i++)
        for (size_t j = i + 1; j < o->ntables; j++)
            if (strcmp(s[j], s[i]) < 0) {
                const char *x = s[i];
                s[i] = s[j];
                s[j] = x;
            }
    for (size_t i = 0; i < o->ntables; i++)
        rd_buf_printf(&b, "%s%s", i ? "," : "", s[i]);
    free(s);
    return rd_buf_detach(&b);
}

/* The current snapshot's id and sha256 (GET snapshot/info), to know whether FILE holds it already. */
static rd_status current_info(rd_cloud *c, const char *project, int64_t *id, char sha[65], rd_error *err)
{
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/snapshot/info", project);
    call_info ci = { .method = "GET", .path = path.data, .project = project, .doing = "read the data's description",
                     .role = "viewer" };
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_status st = rd_buf_failed(&path) ? oom(err) : send_raw(c, &ci, NULL, 0, NULL, NULL, &resp, err);
    if (st == RD_OK && resp.status != 200) {
        st = data_error(c, &ci, &resp, resp.body.data, resp.body.len, err);
    } else if (st == RD_OK) {
        json_t *j = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
        const char *s = json_string_value(json_object_get(j, "sha256"));
        if (!json_is_integer(json_object_get(j, "id")) || !s || strlen(s) != 64) {
            st = rd_cloud_bad_reply(c, &ci, err);
        } else {
            *id = json_integer_value(json_object_get(j, "id"));
            memcpy(sha, s, 65);
        }
        json_decref(j);
    }
    rd_http_response_free(&resp);
    rd_buf_free(&path);
    return st;
}

rd_status rd_cloud_pull(rd_cloud *c, const rd_cloud_pull_options *o, rd_cloud_pull_result *out, rd_error *err)
{
    if (!o || !o->into || !*o->into)
        return rd_error_set(err, RD_E_USAGE, "pull needs the file to write");
    rd_status st = rd_cloud_check_names(o->project, NULL, err);
    if (st != RD_OK)
        return st;
    rd_cloud_pull_result r;
    memset(&r, 0, sizeof r);
    char *part = path_with(o->into, ".part"), *part_json = path_with(o->into, ".part.json");
    char *side = path_with(o->into, ".pull.json"), *subset = path_with(o->into, ".tables.tmp");
    char *wal = path_with(o->into, ".wal"), *sel = selection_of(o);
    json_t *prev = NULL, *now_json = NULL;
    rd_value_table *tables = NULL;
    size_t ntables = 0;
    int64_t id = 0;
    char sha[65] = "";
    if (!part || !part_json || !side || !subset || !wal || !sel) {
        st = oom(err);
        goto out;
    }
    prev = load_json_file(side);
    r.previous_id = json_integer_value(json_object_get(prev, "snapshot_id"));
    const char *prev_sha = json_string_value(json_object_get(prev, "sha256"));
    const char *prev_sel = json_string_value(json_object_get(prev, "tables_selected"));
    struct stat sb;
    if ((st = current_info(c, o->project, &id, sha, err)) != RD_OK)
        goto out;
    if (prev && id == r.previous_id && prev_sha && strcmp(prev_sha, sha) == 0 && prev_sel &&
        strcmp(prev_sel, sel) == 0 && lstat(o->into, &sb) == 0 && S_ISREG(sb.st_mode)) {
        r.up_to_date = 1; /* FILE holds it: the last pull's tables stand */
        r.snapshot_id = id;
        r.size = (uint64_t)json_integer_value(json_object_get(prev, "size"));
        json_t *pt = json_object_get(prev, "tables");
        size_t i;
        json_t *t;
        tables = calloc(json_array_size(pt) + 1, sizeof *tables);
        if (!tables) {
            st = oom(err);
            goto out;
        }
        json_array_foreach(pt, i, t) {
            const char *name = json_string_value(json_object_get(t, "name"));
            if (!(tables[ntables].name = strdup(name ? name : ""))) {
                st = oom(err);
                goto out;
            }
            tables[ntables++].rows = (uint64_t)json_integer_value(json_object_get(t, "rows"));
        }
    } else {
        if ((st = download(c, o, part, part_json, &r, &id, sha, err)) != RD_OK)
            goto out;
        char got[65] = "";
        if ((st = sha256_file(part, got, err)) != RD_OK)
            goto out;
        if (strcmp(got, sha) != 0) {
            unlink(part);
            unlink(part_json);
            st = rd_error_set(err, RD_E_REMOTE, "the downloaded data does not match the server's SHA-256 (snapshot %"
                              PRId64 "): the part was deleted, run `redduck pull` again", id);
            goto out;
        }
        const char *src = part;
        if (o->ntables) {
            if ((st = rd_value_copy_tables(part, subset, o->tables, o->ntables, err)) != RD_OK)
                goto out;
            src = subset;
        }
        int fd = open(src, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
        unlink(wal); /* a WAL of the old file would be replayed onto the new one */
        if (rename(src, o->into) != 0) {
            st = rd_error_set(err, RD_E_IO, "replacing %s: %s", o->into, strerror(errno));
            goto out;
        }
        fsync_dir_of(o->into);
        unlink(part);
        unlink(part_json);
        r.snapshot_id = id;
        if ((st = rd_value_file_tables(o->into, &tables, &ntables, err)) != RD_OK)
            goto out;
        now_json = json_pack("{s:I, s:s, s:I, s:s, s:o}", "snapshot_id", (json_int_t)id, "sha256", sha, "size",
                             (json_int_t)r.size, "tables_selected", sel, "tables", tables_json(tables, ntables));
        if (!now_json) {
            st = oom(err);
            goto out;
        }
        if ((st = save_json_file(side, now_json, err)) != RD_OK)
            goto out;
    }
    if ((st = changes_of(tables, ntables, json_object_get(prev, "tables"), &r, err)) != RD_OK)
        goto out;
    if (!(r.sha256 = strdup(sha))) {
        st = oom(err);
        goto out;
    }
    *out = r;
    memset(&r, 0, sizeof r);
out:
    rd_cloud_pull_result_free(&r);
    rd_value_tables_free(tables, ntables);
    json_decref(prev);
    json_decref(now_json);
    free(part);
    free(part_json);
    free(side);
    free(subset);
    free(wal);
    free(sel);
    return st;
}

void rd_cloud_pull_result_free(rd_cloud_pull_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nchanges; i++)
        free(r->changes[i].name);
    free(r->changes);
    free(r->sha256);
    memset(r, 0, sizeof *r);
}

/* ---- the query API ---------------------------------------------------------------------------------------- */

/* A JSON value as the table shows it: strings as they are, numbers as sent, nested values as JSON. */
static char *cell_text(const json_t *v)
{
    if (json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_real(v)) {
        char b[64];
        double d = json_real_value(v);
        for (int p = 1; p <= 17; p++) { /* the shortest text that reads back the same */
            snprintf(b, sizeof b, "%.*g", p, d);
            if (strtod(b, NULL) == d)
                break;
        }
        if (!strpbrk(b, ".en"))
            strcat(b, ".0");
        return strdup(b);
    }
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int type_is_numeric(const char *t)
{
    static const char *const nums[] = { "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                                        "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", NULL };
    if (!t)
        return 0;
    if (strncmp(t, "DECIMAL", 7) == 0)
        return 1;
    for (size_t i = 0; nums[i]; i++)
        if (strcmp(t, nums[i]) == 0)
            return 1;
    return 0;
}

static rd_status read_json_answer(rd_cloud *c, const call_info *ci, rd_cloud_query_result *r, rd_error *err)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *cols = json_object_get(j, "columns"), *rows = json_object_get(j, "rows");
    if (!json_is_array(cols) || !json_is_array(rows)) {
        json_decref(j);
        return rd_cloud_bad_reply(c, ci, err);
    }
    r->ncols = json_array_size(cols);
    r->nrows = json_array_size(rows);
    r->names = calloc(r->ncols + 1, sizeof *r->names);
    r->numeric = calloc(r->ncols + 1, sizeof *r->numeric);
    r->cells = calloc(r->ncols * r->nrows + 1, sizeof *r->cells);
    rd_buf objs = RD_BUF_INIT;
    rd_status st = r->names && r->numeric && r->cells ? RD_OK : oom(err);
    for (size_t i = 0; st == RD_OK && i < r->ncols; i++) {
        json_t *col = json_array_get(cols, i);
        const char *n = json_string_value(json_object_get(col, "name"));
        r->names[i] = strdup(n ? n : "");
        r->numeric[i] = type_is_numeric(json_string_value(json_object_get(col, "type")));
        if (!r->names[i])
            st = oom(err);
    }
    rd_buf_puts(&objs, "[");
    for (size_t y = 0; st == RD_OK && y < r->nrows; y++) {
        json_t *row = json_array_get(rows, y), *o = json_object();
        for (size_t x = 0; x < r->ncols; x++) {
            json_t *v = json_array_get(row, x);
            r->cells[y * r->ncols + x] = v ? cell_text(v) : NULL;
            json_object_set(o, r->names[x], v ? v : json_null());
        }
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!line) {
            st = oom(err);
            break;
        }
        rd_buf_printf(&objs, "%s\n%s", y ? "," : "", line);
        free(line);
    }
    rd_buf_puts(&objs, r->nrows ? "\n]\n" : "]\n");
    r->row_count = (uint64_t)json_integer_value(json_object_get(j, "row_count"));
    r->truncated = json_is_true(json_object_get(j, "truncated"));
    r->snapshot_id = json_integer_value(json_object_get(j, "snapshot_id"));
    json_decref(j);
    if (st == RD_OK && !(r->objects_json = rd_buf_detach(&objs)))
        st = oom(err);
    rd_buf_free(&objs);
    return st;
}

rd_status rd_cloud_query(rd_cloud *c, const char *project, const char *sql, int csv, rd_cloud_query_result *out,
                         rd_error *err)
{
    rd_status st = rd_cloud_check_names(project, NULL, err);
    if (st != RD_OK)
        return st;
    json_t *req = json_pack("{s:s, s:s}", "sql", sql ? sql : "", "format", csv ? "csv" : "json");
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    rd_buf path = RD_BUF_INIT;
    rd_buf_printf(&path, "/v1/projects/%s/query", project);
    if (!body || rd_buf_failed(&path)) {
        free(body);
        rd_buf_free(&path);
        return oom(err);
    }
    call_info ci = { .method = "POST", .path = path.data, .project = project, .doing = "query the data",
                     .role = "viewer", .ctype = "application/json", .body = body, .body_len = strlen(body) };
    rd_http_response resp;
    rd_http_response_init(&resp);
    rd_cloud_query_result r;
    memset(&r, 0, sizeof r);
    st = send_raw(c, &ci, NULL, 0, NULL, NULL, &resp, err);
    if (st == RD_OK && resp.status != 200) {
        st = data_error(c, &ci, &resp, resp.body.data, resp.body.len, err);
    } else if (st == RD_OK) {
        r.body_len = resp.body.len;
        r.body = malloc(resp.body.len + 1);
        if (!r.body) {
            st = oom(err);
        } else {
            memcpy(r.body, resp.body.data ? resp.body.data : "", resp.body.len);
            r.body[resp.body.len] = 0;
            const char *id = rd_headers_get(&resp.headers, "X-Redduck-Snapshot-Id");
            r.snapshot_id = id ? strtoll(id, NULL, 10) : 0;
            if (csv) {
                const char *t = rd_headers_get(&resp.headers, "X-Redduck-Truncated");
                const char *n = rd_headers_get(&resp.headers, "X-Redduck-Row-Count");
                r.truncated = t && strcmp(t, "true") == 0;
                r.row_count = n ? strtoull(n, NULL, 10) : 0;
            } else {
                st = read_json_answer(c, &ci, &r, err);
            }
        }
    }
    if (st == RD_OK) {
        *out = r;
        memset(&r, 0, sizeof r);
    }
    rd_cloud_query_result_free(&r);
    rd_http_response_free(&resp);
    rd_buf_free(&path);
    free(body);
    return st;
}

void rd_cloud_query_result_free(rd_cloud_query_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->cells && i < r->ncols * r->nrows; i++)
        free(r->cells[i]);
    for (size_t i = 0; r->names && i < r->ncols; i++)
        free(r->names[i]);
    free(r->cells);
    free(r->names);
    free(r->numeric);
    free(r->body);
    free(r->objects_json);
    memset(r, 0, sizeof *r);
}
