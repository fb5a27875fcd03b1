/* s3_store.c — the emulator's object store on disk (see s3_store.h).
 * Layout under <dir>: one directory per bucket, <bucket>/bucket.json (region, creation time) and
 * <bucket>/objects/ holding, per key, a sidecar "<sha256(key) hex>.json" (key in hex, size, etag, mtime,
 * content type, data file name) and a data file "d-<random>". A put writes "tmp-<random>", fsyncs, renames it
 * to a fresh data file, then renames a new sidecar over the old one (the commit point) and unlinks the old
 * data file; leftovers of a crash are swept at open. An in-memory index per bucket (sorted by key bytes)
 * serves listing and lookups; one rwlock guards the whole index. Does not own the S3 REST API (s3_api.c). */
#include "emulator/s3/s3_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emulator/emu_error.h"
#include "redduck/buf.h"

#define KEY_MAX_BYTES 1024
#define DEFAULT_REGION "us-east-1"

/* An I/O or memory failure: S3's 500, with what failed as the message (the S3 reply says AWS's own words). */
#define internal(err, ...) rd_emu_error_set((err), 500, "InternalError", __VA_ARGS__)

typedef struct s3_entry {
    char *key;
    uint64_t size;
    char etag[48];
    time_t mtime;
    char *content_type;
    rd_s3_meta meta;
    char data[40]; /* "d-<32 hex>" */
} s3_entry;

typedef struct s3_bucket {
    char *name;
    char *region;
    time_t created;
    s3_entry **v; /* sorted by key (byte order) */
    size_t n, cap;
} s3_bucket;

struct rd_s3_store {
    char *dir;
    pthread_rwlock_t lock;
    pthread_mutex_t mpu_lock; /* multipart uploads' files (taken before lock, never after) */
    s3_bucket **b; /* sorted by name */
    size_t nb, cap;
};

/* ---- small helpers ---------------------------------------------------------------------------------- */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_val(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes hex into a malloc'd NUL-terminated string; NULL when malformed. */
static char *hex_decode(const char *s)
{
    size_t n = strlen(s);
    if (n % 2)
        return NULL;
    char *out = malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[i] = (char)(hi << 4 | lo);
    }
    out[n / 2] = '\0';
    return out;
}

static int random_name(const char *prefix, char out[40])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        return -1;
    size_t pl = strlen(prefix);
    memcpy(out, prefix, pl);
    hex_encode(r, sizeof r, out + pl);
    return 0;
}

static void key_file_name(const char *key, char out[70])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, 32, out);
    memcpy(out + 64, ".json", 6);
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static char *path_join(const char *a, const char *b, const char *c)
{
    rd_buf p = RD_BUF_INIT;
    rd_buf_printf(&p, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return rd_buf_detach(&p);
}

static char *objects_dir(const rd_s3_store *st, const char *bucket)
{
    return path_join(st->dir, bucket, "objects");
}

/* Writes data to path (created exclusively, 0600) and fsyncs it. */
static int write_file_synced(const char *path, const void *data, size_t len, rd_emu_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return internal(err, "cannot create %s: %s", path, strerror(errno));
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(path);
            return internal(err, "cannot write %s: %s (is the disk full?)", path, strerror(e));
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(path);
        return internal(err, "cannot flush %s: %s", path, strerror(errno));
    }
    return 0;
}

/* The JSON document in the small file a/b[/c] (a sidecar, bucket.json); NULL when missing or not JSON. */
static json_t *read_json_file(const char *a, const char *b, const char *c)
{
    char *path = path_join(a, b, c);
    FILE *f = path ? fopen(path, "rb") : NULL;
    free(path);
    if (!f)
        return NULL;
    rd_buf text = RD_BUF_INIT;
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        rd_buf_append(&text, tmp, n);
    fclose(f);
    json_t *j = text.data ? json_loads(rd_buf_cstr(&text), 0, NULL) : NULL;
    rd_buf_free(&text);
    return j;
}

static void entry_free(s3_entry *e)
{
    if (!e)
        return;
    free(e->key);
    free(e->content_type);
    rd_s3_meta_free(&e->meta);
    free(e);
}

static void bucket_free(s3_bucket *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        entry_free(b->v[i]);
    free(b->v);
    free(b->name);
    free(b->region);
    free(b);
}

/* Index of the first of n sorted names (name_at(set, i)) that is >= name: the one binary search of the
 * bucket list and of a bucket's keys. */
static size_t lower_bound_name(const void *set, size_t n, const char *(*name_at)(const void *set, size_t i),
                               const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(name_at(set, mid), name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const char *entry_key_at(const void *bucket, size_t i)
{
    return ((const s3_bucket *)bucket)->v[i]->key;
}

static const char *bucket_name_at(const void *store, size_t i)
{
    return ((const rd_s3_store *)store)->b[i]->name;
}

/* Index of the first entry with key >= key. */
static size_t lower_bound(const s3_bucket *b, const char *key)
{
    return lower_bound_name(b, b->n, entry_key_at, key);
}

static s3_entry *find_entry(const s3_bucket *b, const char *key)
{
    size_t i = lower_bound(b, key);
    return i < b->n && strcmp(b->v[i]->key, key) == 0 ? b->v[i] : NULL;
}

/* Index of the first entry at or after `from` whose key does not begin with prefix (plen bytes). */
static size_t prefix_end(const s3_bucket *b, size_t from, const char *prefix, size_t plen)
{
    size_t lo = from, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strncmp(b->v[mid]->key, prefix, plen) <= 0) /* keys with the prefix compare equal on plen bytes */
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static s3_bucket *find_bucket(const rd_s3_store *st, const char *name, size_t *pos)
{
    size_t lo = lower_bound_name(st, st->nb, bucket_name_at, name);
    if (pos)
        *pos = lo;
    return lo < st->nb && strcmp(st->b[lo]->name, name) == 0 ? st->b[lo] : NULL;
}

/* S3's replies, in S3's words (clients matching on messages see what AWS says) */
static int no_such_bucket(rd_emu_error *err)
{
    return rd_emu_error_set(err, 404, "NoSuchBucket", "The specified bucket does not exist");
}

static int no_such_key(rd_emu_error *err)
{
    return rd_emu_error_set(err, 404, "NoSuchKey", "The specified key does not exist.");
}

static int check_key(const char *key, rd_emu_error *err)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0)
        return rd_emu_error_set(err, 400, "InvalidArgument", "an object key must not be empty");
    if (n > KEY_MAX_BYTES)
        return rd_emu_error_set(err, 400, "KeyTooLongError", "Your key is too long");
    return 0;
}

static int valid_bucket_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 63)
        return 0;
    int all_digits_dots = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.')
            return 0;
        if ((i == 0 || i == n - 1) && !alnum)
            return 0;
        if (c == '.' && (s[i + 1] == '.' || s[i + 1] == '-' || (i > 0 && s[i - 1] == '-')))
            return 0;
        if (!((c >= '0' && c <= '9') || c == '.'))
            all_digits_dots = 0;
    }
    return !all_digits_dots; /* "192.168.5.4"-like names are refused */
}

static void entry_copy_info(const s3_entry *e, rd_s3_object_info *info, int with_meta)
{
    memset(info, 0, sizeof *info);
    info->key = strdup(e->key);
    info->size = e->size;
    memcpy(info->etag, e->etag, sizeof info->etag);
    info->last_modified = e->mtime;
    info->content_type = e->content_type ? strdup(e->content_type) : NULL;
    if (with_meta)
        rd_s3_meta_copy(&info->meta, &e->meta);
}

void rd_s3_object_info_free(rd_s3_object_info *info)
{
    if (!info)
        return;
    free(info->key);
    free(info->content_type);
    info->key = NULL;
    info->content_type = NULL;
    rd_s3_meta_free(&info->meta);
}

/* ---- metadata --------------------------------------------------------------------------------------- */

void rd_s3_meta_free(rd_s3_meta *m)
{
    if (!m)
        return;
    rd_headers_free(&m->headers);
    free(m->checksum_algo);
    free(m->checksum);
    free(m->checksum_type);
    memset(m, 0, sizeof *m);
}

static int dup_opt(char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return src && !*dst ? -1 : 0;
}

int rd_s3_meta_copy(rd_s3_meta *dst, const rd_s3_meta *src)
{
    memset(dst, 0, sizeof *dst);
    if (!src)
        return 0;
    rd_headers_init(&dst->headers);
    int bad = 0;
    for (size_t i = 0; i < src->headers.count; i++)
        if (rd_headers_add(&dst->headers, src->headers.items[i].name, src->headers.items[i].value) != RD_OK)
            bad = 1;
    bad |= dup_opt(&dst->checksum_algo, src->checksum_algo) | dup_opt(&dst->checksum, src->checksum) |
           dup_opt(&dst->checksum_type, src->checksum_type);
    if (bad) {
        rd_s3_meta_free(dst);
        return -1;
    }
    return 0;
}

/* The metadata's fields into a sidecar document j. -1 when out of memory or not UTF-8. */
static int meta_to_json(const rd_s3_meta *m, json_t *j)
{
    if (!m)
        return 0;
    int bad = 0;
    if (m->headers.count) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < m->headers.count; i++) {
            json_t *pair = json_pack("[s,s]", m->headers.items[i].name, m->headers.items[i].value);
            if (!pair || json_array_append_new(a, pair) != 0)
                bad = 1;
        }
        if (!a || json_object_set_new(j, "headers", a) != 0)
            bad = 1;
    }
    if (m->checksum_algo)
        bad |= json_object_set_new(j, "checksum_algo", json_string(m->checksum_algo));
    if (m->checksum)
        bad |= json_object_set_new(j, "checksum", json_string(m->checksum));
    if (m->checksum_type)
        bad |= json_object_set_new(j, "checksum_type", json_string(m->checksum_type));
    return bad ? -1 : 0;
}

static void meta_from_json(json_t *j, rd_s3_meta *m)
{
    memset(m, 0, sizeof *m);
    rd_headers_init(&m->headers);
    json_t *a = json_object_get(j, "headers");
    size_t i;
    json_t *pair;
    json_array_foreach(a, i, pair)
    {
        const char *n = json_string_value(json_array_get(pair, 0)), *v = json_string_value(json_array_get(pair, 1));
        if (n && v)
            rd_headers_add(&m->headers, n, v);
    }
    dup_opt(&m->checksum_algo, json_string_value(json_object_get(j, "checksum_algo")));
    dup_opt(&m->checksum, json_string_value(json_object_get(j, "checksum")));
    dup_opt(&m->checksum_type, json_string_value(json_object_get(j, "checksum_type")));
}

/* ---- open / close ----------------------------------------------------------------------------------- */

static s3_entry *load_sidecar(int dfd, const char *objdir, const char *name)
{
    json_t *j = read_json_file(objdir, name, NULL);
    if (!j)
        return NULL;
    s3_entry *e = calloc(1, sizeof *e);
    const char *kh = json_string_value(json_object_get(j, "key_hex"));
    const char *etag = json_string_value(json_object_get(j, "etag"));
    const char *data = json_string_value(json_object_get(j, "data"));
    const char *ctype = json_string_value(json_object_get(j, "content_type"));
    json_t *size = json_object_get(j, "size"), *mtime = json_object_get(j, "mtime");
    char expect[70];
    struct stat sb;
    if (!e || !kh || !etag || strlen(etag) < 34 || strlen(etag) >= sizeof e->etag || !data ||
        strlen(data) >= sizeof e->data || strncmp(data, "d-", 2) != 0 || !json_is_integer(size) ||
        !json_is_integer(mtime) || !(e->key = hex_decode(kh)))
        goto bad;
    key_file_name(e->key, expect);
    if (strcmp(expect, name) != 0 || fstatat(dfd, data, &sb, 0) != 0 ||
        (uint64_t)sb.st_size != (uint64_t)json_integer_value(size))
        goto bad;
    e->size = (uint64_t)json_integer_value(size);
    e->mtime = (time_t)json_integer_value(mtime);
    strcpy(e->etag, etag);
    strcpy(e->data, data);
    e->content_type = ctype ? strdup(ctype) : NULL;
    meta_from_json(j, &e->meta);
    json_decref(j);
    return e;
bad:
    json_decref(j);
    entry_free(e);
    return NULL;
}

static int cmp_entry_ptr(const void *a, const void *b)
{
    return strcmp((*(s3_entry *const *)a)->key, (*(s3_entry *const *)b)->key);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int push_ptr(void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        void **na = realloc(*arr, nc * sizeof *na);
        if (!na)
            return -1;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

static void remove_tree(const char *path);
static void sweep_uploads(const char *dir, const char *bucket);

/* Loads <dir>/<name>: bucket.json, every sidecar; sweeps temp files, orphan data and broken sidecars. */
static s3_bucket *load_bucket(const char *dir, const char *name)
{
    json_t *j = read_json_file(dir, name, "bucket.json");
    const char *region = json_string_value(json_object_get(j, "region"));
    if (!j || !region) {
        json_decref(j);
        return NULL;
    }
    s3_bucket *b = calloc(1, sizeof *b);
    b->name = strdup(name);
    b->region = strdup(region);
    b->created = (time_t)json_integer_value(json_object_get(j, "created"));
    json_decref(j);

    char *objdir = path_join(dir, name, "objects");
    int dfd = open(objdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        free(objdir);
        bucket_free(b);
        return NULL;
    }
    char **others = NULL;
    size_t no = 0, capo = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        if (len == 69 && strcmp(n + 64, ".json") == 0) {
            s3_entry *e = load_sidecar(dfd, objdir, n);
            if (e)
                push_ptr((void ***)&b->v, &b->n, &b->cap, e);
            else
                unlinkat(dfd, n, 0);
        } else if (strncmp(n, "tmp-", 4) == 0 || strncmp(n, "d-", 2) == 0) {
            push_ptr((void ***)&others, &no, &capo, strdup(n));
        }
    }
    closedir(d);
    if (b->n)
        qsort(b->v, b->n, sizeof *b->v, cmp_entry_ptr);
    /* data files referenced by a sidecar stay; temp files and orphans of an interrupted put go */
    char **refs = malloc((b->n ? b->n : 1) * sizeof *refs);
    for (size_t i = 0; refs && i < b->n; i++)
        refs[i] = b->v[i]->data;
    if (refs && b->n)
        qsort(refs, b->n, sizeof *refs, cmp_str_ptr);
    for (size_t i = 0; i < no; i++) {
        if (refs && strncmp(others[i], "d-", 2) == 0 && bsearch(&others[i], refs, b->n, sizeof *refs, cmp_str_ptr))
            ;
        else if (refs)
            unlinkat(dfd, others[i], 0);
        free(others[i]);
    }
    free(others);
    free(refs);
    close(dfd);
    free(objdir);
    sweep_uploads(dir, name);
    return b;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void remove_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

rd_status rd_s3_store_open(const char *dir, rd_s3_store **out, rd_error *err)
{
    if (!dir || !*dir)
        return rd_error_set(err, RD_E_USAGE, "the S3 store needs a directory");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return rd_error_set(err, RD_E_IO, "cannot create the S3 store directory %s: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d)
        return rd_error_set(err, RD_E_IO, "cannot open the S3 store directory %s: %s", dir, strerror(errno));
    rd_s3_store *st = calloc(1, sizeof *st);
    if (!st) {
        closedir(d);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory");
    }
    st->dir = strdup(dir);
    pthread_rwlock_init(&st->lock, NULL);
    pthread_mutex_init(&st->mpu_lock, NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strncmp(n, ".tmp-", 5) == 0 || strncmp(n, ".trash-", 7) == 0) {
            char *p = path_join(dir, n, NULL);
            remove_tree(p);
            free(p);
            continue;
        }
        if (n[0] == '.' || !valid_bucket_name(n))
            continue;
        s3_bucket *b = load_bucket(dir, n);
        if (b)
            push_ptr((void ***)&st->b, &st->nb, &st->cap, b);
    }
    closedir(d);
    if (st->nb) {
        /* sort buckets by name */
        for (size_t i = 1; i < st->nb; i++)
            for (size_t k = i; k > 0 && strcmp(st->b[k - 1]->name, st->b[k]->name) > 0; k--) {
                s3_bucket *t = st->b[k];
                st->b[k] = st->b[k - 1];
                st->b[k - 1] = t;
            }
    }
    *out = st;
    return RD_OK;
}

void rd_s3_store_close(rd_s3_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nb; i++)
        bucket_free(st->b[i]);
    free(st->b);
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->mpu_lock);
    free(st->dir);
    free(st);
}

/* ---- buckets ---------------------------------------------------------------------------------------- */

int rd_s3_store_create_bucket(rd_s3_store *st, const char *bucket, const char *region, rd_emu_error *err)
{
    if (!bucket || !valid_bucket_name(bucket))
        return rd_emu_error_set(err, 400, "InvalidBucketName", "The specified bucket is not valid.");
    if (!region || !*region)
        region = DEFAULT_REGION;
    int rc = 0;
    char tmpname[40];
    char *tmpdir = NULL, *sub = NULL, *meta = NULL, *final = NULL;
    pthread_rwlock_wrlock(&st->lock);
    size_t pos;
    if (find_bucket(st, bucket, &pos)) {
        rc = rd_emu_error_set(err, 409, "BucketAlreadyOwnedByYou",
                              "Your previous request to create the named bucket succeeded and you already own it.");
        goto out;
    }
    if (random_name(".tmp-", tmpname) != 0) {
        rc = internal(err, "no randomness available");
        goto out;
    }
    tmpdir = path_join(st->dir, tmpname, NULL);
    sub = path_join(st->dir, tmpname, "objects");
    meta = path_join(st->dir, tmpname, "bucket.json");
    final = path_join(st->dir, bucket, NULL);
    if (mkdir(tmpdir, 0700) != 0 || mkdir(sub, 0700) != 0) {
        rc = internal(err, "cannot create %s: %s", tmpdir, strerror(errno));
        goto fail;
    }
    time_t now = time(NULL);
    json_t *j = json_pack("{s:s, s:I}", "region", region, "created", (json_int_t)now);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    rc = text ? write_file_synced(meta, text, strlen(text), err) : internal(err, "out of memory");
    free(text);
    if (rc != 0)
        goto fail;
    fsync_path(sub);
    fsync_path(tmpdir);
    if (rename(tmpdir, final) != 0) {
        rc = internal(err, "cannot create bucket directory %s: %s", final, strerror(errno));
        goto fail;
    }
    fsync_path(st->dir);
    s3_bucket *b = calloc(1, sizeof *b);
    if (!b || push_ptr((void ***)&st->b, &st->nb, &st->cap, b) != 0) {
        free(b);
        rc = internal(err, "out of memory");
        goto out;
    }
    memmove(st->b + pos + 1, st->b + pos, (st->nb - 1 - pos) * sizeof *st->b);
    st->b[pos] = b;
    b->name = strdup(bucket);
    b->region = strdup(region);
    b->created = now;
    goto out;
fail:
    remove_tree(tmpdir);
out:
    pthread_rwlock_unlock(&st->lock);
    free(tmpdir);
    free(sub);
    free(meta);
    free(final);
    return rc;
}

int rd_s3_store_head_bucket(rd_s3_store *st, const char *bucket, char **region_out, rd_emu_error *err)
{
    pthread_rwlock_rdlock(&st->lock);
    s3_bucket *b = find_bucket(st, bucket, NULL);
    char *region = b ? strdup(b->region) : NULL;
    pthread_rwlock_unlock(&st->lock);
    if (!b)
        return no_such_bucket(err);
    if (!region)
        return internal(err, "out of memory");
    if (region_out)
        *region_out = region;
    else
        free(region);
    return 0;
}

int rd_s3_store_list_buckets(rd_s3_store *st, char ***names, time_t **created, size_t *count, rd_emu_error *err)
{
    pthread_rwlock_rdlock(&st->lock);
    size_t n = st->nb;
    char **nm = calloc(n ? n : 1, sizeof *nm);
    time_t *cr = calloc(n ? n : 1, sizeof *cr);
    for (size_t i = 0; nm && cr && i < n; i++) {
        nm[i] = strdup(st->b[i]->name);
        cr[i] = st->b[i]->created;
    }
    pthread_rwlock_unlock(&st->lock);
    if (!nm || !cr) {
        free(nm);
        free(cr);
        return internal(err, "out of memory");
    }
    *names = nm;
    *count = n;
    if (created)
        *created = cr;
    else
        free(cr);
    return 0;
}

int rd_s3_store_delete_bucket(rd_s3_store *st, const char *bucket, rd_emu_error *err)
{
    char trash[40];
    if (random_name(".trash-", trash) != 0)
        return internal(err, "no randomness available");
    char *from = path_join(st->dir, bucket, NULL), *to = path_join(st->dir, trash, NULL);
    int rc = 0;
    pthread_rwlock_wrlock(&st->lock);
    size_t pos;
    s3_bucket *b = find_bucket(st, bucket, &pos);
    if (!b) {
        rc = no_such_bucket(err);
    } else if (b->n) {
        rc = rd_emu_error_set(err, 409, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    } else if (rename(from, to) != 0) {
        rc = internal(err, "cannot remove bucket directory %s: %s", from, strerror(errno));
    } else {
        memmove(st->b + pos, st->b + pos + 1, (st->nb - pos - 1) * sizeof *st->b);
        st->nb--;
        bucket_free(b);
    }
    pthread_rwlock_unlock(&st->lock);
    if (rc == 0) {
        fsync_path(st->dir);
        remove_tree(to);
    }
    free(from);
    free(to);
    return rc;
}

/* ---- writes ----------------------------------------------------------------------------------------- */

struct rd_s3_put {
    rd_s3_store *st;
    char *bucket;
    char *key;
    char *content_type;
    char *objdir;
    char *tmp_path;
    int fd;
    EVP_MD_CTX *md5;
    uint64_t size;
    rd_s3_meta meta;
    char *upload_dir; /* a part writer: the upload's directory, and the part's number */
    int part_number;
};

void rd_s3_put_abort(rd_s3_put *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path)
        unlink(w->tmp_path);
    EVP_MD_CTX_free(w->md5);
    free(w->bucket);
    free(w->key);
    free(w->content_type);
    free(w->objdir);
    free(w->tmp_path);
    free(w->upload_dir);
    rd_s3_meta_free(&w->meta);
    free(w);
}

int rd_s3_store_put_begin(rd_s3_store *st, const char *bucket, const char *key, const char *content_type,
                          rd_s3_put **out, rd_emu_error *err)
{
    int rc = check_key(key, err);
    if (rc != 0)
        return rc;
    if ((rc = rd_s3_store_head_bucket(st, bucket, NULL, err)) != 0)
        return rc;
    rd_s3_put *w = calloc(1, sizeof *w);
    if (!w)
        return internal(err, "out of memory");
    w->st = st;
    w->fd = -1;
    w->bucket = strdup(bucket);
    w->key = strdup(key);
    w->content_type = content_type ? strdup(content_type) : NULL;
    w->objdir = objects_dir(st, bucket);
    w->md5 = EVP_MD_CTX_new();
    char tmpname[40];
    if (!w->bucket || !w->key || !w->objdir || !w->md5 || random_name("tmp-", tmpname) != 0 ||
        EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1) {
        rd_s3_put_abort(w);
        return internal(err, "out of memory");
    }
    w->tmp_path = path_join(w->objdir, tmpname, NULL);
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        rc = internal(err, "cannot create %s: %s", w->tmp_path, strerror(errno));
        free(w->tmp_path);
        w->tmp_path = NULL;
        rd_s3_put_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

int rd_s3_put_write(rd_s3_put *w, const void *data, size_t len, rd_emu_error *err)
{
    EVP_DigestUpdate(w->md5, data, len);
    w->size += len;
    const char *p = data;
    while (len) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return internal(err, "cannot write %s: %s (is the disk full?)", w->tmp_path,
                                strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Publishes the synced file tmp_path (inside the bucket's objects dir) as bucket/key. */
static int commit_file(rd_s3_store *st, const char *bucket, const char *key, const char *content_type,
                       const rd_s3_meta *meta, const char *objdir, const char *tmp_path, uint64_t size,
                       const char *etag, rd_s3_object_info *info_out, rd_emu_error *err)
{
    int rc = 0;
    char data_name[40], meta_tmp_name[40], meta_name[70];
    char *data_path = NULL, *meta_tmp = NULL, *meta_path = NULL, *text = NULL, *old_data = NULL;
    if (random_name("d-", data_name) != 0 || random_name("tmp-", meta_tmp_name) != 0)
        return internal(err, "no randomness available");
    key_file_name(key, meta_name);
    data_path = path_join(objdir, data_name, NULL);
    meta_tmp = path_join(objdir, meta_tmp_name, NULL);
    meta_path = path_join(objdir, meta_name, NULL);
    s3_entry *e = calloc(1, sizeof *e);
    if (!e || !data_path || !meta_tmp || !meta_path) {
        rc = internal(err, "out of memory");
        goto fail;
    }
    e->key = strdup(key);
    e->size = size;
    snprintf(e->etag, sizeof e->etag, "%s", etag);
    e->mtime = time(NULL);
    e->content_type = content_type ? strdup(content_type) : NULL;
    strcpy(e->data, data_name);
    if (rd_s3_meta_copy(&e->meta, meta) != 0) {
        rc = internal(err, "out of memory");
        goto fail;
    }
    if (rename(tmp_path, data_path) != 0) {
        rc = internal(err, "cannot store s3://%s/%s (%s): %s", bucket, key, data_path, strerror(errno));
        goto fail;
    }
    /* sidecar */
    char kh[2 * KEY_MAX_BYTES + 1];
    hex_encode((const unsigned char *)key, strlen(key), kh);
    json_t *j = json_pack("{s:s, s:I, s:s, s:I, s:s}", "key_hex", kh, "size", (json_int_t)size, "etag", etag,
                          "mtime", (json_int_t)e->mtime, "data", data_name);
    if (j && content_type)
        json_object_set_new(j, "content_type", json_string(content_type));
    if (j && meta_to_json(meta, j) != 0) {
        json_decref(j);
        j = NULL;
    }
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        rc = internal(err, "out of memory (or content type is not UTF-8)");
        goto fail_data;
    }
    if ((rc = write_file_synced(meta_tmp, text, strlen(text), err)) != 0)
        goto fail_data;
    fsync_path(objdir); /* the data file's name is durable before the sidecar points at it */

    pthread_rwlock_wrlock(&st->lock);
    size_t pos;
    s3_bucket *b = find_bucket(st, bucket, NULL);
    if (!b) {
        pthread_rwlock_unlock(&st->lock);
        rc = no_such_bucket(err);
        unlink(meta_tmp);
        goto fail_data;
    }
    if (rename(meta_tmp, meta_path) != 0) {
        pthread_rwlock_unlock(&st->lock);
        rc = internal(err, "cannot store s3://%s/%s (%s): %s", bucket, key, meta_path, strerror(errno));
        unlink(meta_tmp);
        goto fail_data;
    }
    pos = lower_bound(b, key);
    if (pos < b->n && strcmp(b->v[pos]->key, key) == 0) {
        old_data = strdup(b->v[pos]->data);
        entry_free(b->v[pos]);
        b->v[pos] = e;
    } else if (push_ptr((void ***)&b->v, &b->n, &b->cap, e) == 0) {
        memmove(b->v + pos + 1, b->v + pos, (b->n - 1 - pos) * sizeof *b->v);
        b->v[pos] = e;
    } else {
        pthread_rwlock_unlock(&st->lock);
        entry_free(e);
        rc = internal(err, "out of memory");
        goto out; /* on disk but not indexed: visible after a restart */
    }
    if (info_out)
        entry_copy_info(e, info_out, 1);
    pthread_rwlock_unlock(&st->lock);
    fsync_path(objdir);
    if (old_data) {
        char *p = path_join(objdir, old_data, NULL);
        unlink(p);
        free(p);
    }
    goto out;
fail_data:
    unlink(data_path);
fail:
    entry_free(e);
out:
    free(old_data);
    free(text);
    free(data_path);
    free(meta_tmp);
    free(meta_path);
    return rc;
}

static int commit_part(rd_s3_put *w, const char *etag, rd_s3_object_info *info_out, rd_emu_error *err);

int rd_s3_put_set_meta(rd_s3_put *w, const rd_s3_meta *meta, rd_emu_error *err)
{
    rd_s3_meta copy;
    if (rd_s3_meta_copy(&copy, meta) != 0)
        return internal(err, "out of memory");
    rd_s3_meta_free(&w->meta);
    w->meta = copy;
    return 0;
}

static void md5_etag(const unsigned char md[16], char etag[35])
{
    etag[0] = '"';
    hex_encode(md, 16, etag + 1);
    etag[33] = '"';
    etag[34] = '\0';
}

int rd_s3_put_commit(rd_s3_put *w, const unsigned char *expected_md5, rd_s3_object_info *info_out, rd_emu_error *err)
{
    unsigned char md[16];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(w->md5, md, &mdlen);
    int rc;
    if (expected_md5 && memcmp(md, expected_md5, 16) != 0) {
        rd_s3_put_abort(w);
        return rd_emu_error_set(err, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
    }
    if (fsync(w->fd) != 0 || close(w->fd) != 0) {
        w->fd = -1;
        rc = internal(err, "cannot flush %s: %s", w->tmp_path, strerror(errno));
        rd_s3_put_abort(w);
        return rc;
    }
    w->fd = -1;
    char etag[35];
    md5_etag(md, etag);
    if (w->upload_dir)
        rc = commit_part(w, etag, info_out, err);
    else
        rc = commit_file(w->st, w->bucket, w->key, w->content_type, &w->meta, w->objdir, w->tmp_path, w->size, etag,
                         info_out, err);
    rd_s3_put_abort(w); /* frees; the temp file is gone (renamed) or must go */
    return rc;
}

int rd_s3_store_put_data(rd_s3_store *st, const char *bucket, const char *key, const void *data, size_t len,
                         const char *content_type, rd_s3_object_info *info_out, rd_emu_error *err)
{
    rd_s3_put *w = NULL;
    int rc = rd_s3_store_put_begin(st, bucket, key, content_type, &w, err);
    if (rc != 0)
        return rc;
    if (len && (rc = rd_s3_put_write(w, data, len, err)) != 0) {
        rd_s3_put_abort(w);
        return rc;
    }
    return rd_s3_put_commit(w, NULL, info_out, err);
}

int rd_s3_store_put_file(rd_s3_store *st, const char *bucket, const char *key, const char *path,
                         const char *content_type, rd_s3_object_info *info_out, rd_emu_error *err)
{
    int rc = check_key(key, err);
    if (rc != 0)
        return rc;
    if ((rc = rd_s3_store_head_bucket(st, bucket, NULL, err)) != 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return internal(err, "cannot open %s: %s", path, strerror(errno));
    EVP_MD_CTX *md5 = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md5, EVP_md5(), NULL);
    uint64_t size = 0;
    char *chunk = malloc(1 << 20);
    ssize_t n = 0;
    while (chunk && (n = read(fd, chunk, 1 << 20)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        EVP_DigestUpdate(md5, chunk, (size_t)n);
        size += (uint64_t)n;
    }
    free(chunk);
    int sync_ok = n == 0 && fsync(fd) == 0;
    close(fd);
    unsigned char md[16];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(md5, md, &mdlen);
    EVP_MD_CTX_free(md5);
    if (!sync_ok)
        return internal(err, "cannot read %s: %s", path, strerror(errno));

    char tmpname[40];
    if (random_name("tmp-", tmpname) != 0)
        return internal(err, "no randomness available");
    char *objdir = objects_dir(st, bucket);
    char *tmp_path = path_join(objdir, tmpname, NULL);
    if (rename(path, tmp_path) == 0) {
        char etag[35];
        md5_etag(md, etag);
        rc = commit_file(st, bucket, key, content_type, NULL, objdir, tmp_path, size, etag, info_out, err);
        if (rc != 0)
            unlink(tmp_path);
    } else if (errno == EXDEV) {
        /* another filesystem: copy through a writer, then drop the source */
        rd_s3_put *w = NULL;
        if ((rc = rd_s3_store_put_begin(st, bucket, key, content_type, &w, err)) == 0) {
            fd = open(path, O_RDONLY | O_CLOEXEC);
            char *buf = malloc(1 << 20);
            rc = fd >= 0 && buf ? 0 : internal(err, "cannot open %s: %s", path, strerror(errno));
            while (rc == 0 && (n = read(fd, buf, 1 << 20)) != 0) {
                if (n < 0 && errno == EINTR)
                    continue;
                rc = n < 0 ? internal(err, "cannot read %s: %s", path, strerror(errno))
                           : rd_s3_put_write(w, buf, (size_t)n, err);
            }
            free(buf);
            if (fd >= 0)
                close(fd);
            if (rc == 0)
                rc = rd_s3_put_commit(w, md, info_out, err);
            else
                rd_s3_put_abort(w);
            if (rc == 0)
                unlink(path);
        }
    } else {
        rc = internal(err, "cannot move %s into the store: %s", path, strerror(errno));
    }
    free(objdir);
    free(tmp_path);
    return rc;
}

/* ---- reads ------------------------------------------------------------------------------------------ */

int rd_s3_store_head(rd_s3_store *st, const char *bucket, const char *key, rd_s3_object_info *info,
                     rd_emu_error *err)
{
    pthread_rwlock_rdlock(&st->lock);
    s3_bucket *b = find_bucket(st, bucket, NULL);
    s3_entry *e = b && key ? find_entry(b, key) : NULL;
    if (e)
        entry_copy_info(e, info, 1);
    pthread_rwlock_unlock(&st->lock);
    if (!b)
        return no_such_bucket(err);
    if (!e)
        return no_such_key(err);
    return 0;
}

int rd_s3_store_open_object(rd_s3_store *st, const char *bucket, const char *key, int *fd,
                            rd_s3_object_info *info, rd_emu_error *err)
{
    char *objdir = objects_dir(st, bucket);
    int f = -1, e_errno = 0;
    pthread_rwlock_rdlock(&st->lock);
    s3_bucket *b = find_bucket(st, bucket, NULL);
    s3_entry *e = b && key ? find_entry(b, key) : NULL;
    if (e) {
        /* opened under the lock: a concurrent put unlinks the old data only after replacing the entry */
        char *p = path_join(objdir, e->data, NULL);
        f = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
        e_errno = errno;
        free(p);
        if (f >= 0)
            entry_copy_info(e, info, 1);
    }
    pthread_rwlock_unlock(&st->lock);
    free(objdir);
    if (!b)
        return no_such_bucket(err);
    if (!e)
        return no_such_key(err);
    if (f < 0)
        return internal(err, "cannot open the data of s3://%s/%s: %s", bucket, key, strerror(e_errno));
    *fd = f;
    return 0;
}

int rd_s3_store_delete(rd_s3_store *st, const char *bucket, const char *key, rd_emu_error *err)
{
    int rc = check_key(key, err);
    if (rc != 0)
        return rc;
    char meta_name[70];
    key_file_name(key, meta_name);
    char *objdir = objects_dir(st, bucket);
    char *meta_path = path_join(objdir, meta_name, NULL);
    char *data_path = NULL;
    pthread_rwlock_wrlock(&st->lock);
    s3_bucket *b = find_bucket(st, bucket, NULL);
    if (!b) {
        rc = no_such_bucket(err);
    } else {
        size_t pos = lower_bound(b, key);
        if (pos < b->n && strcmp(b->v[pos]->key, key) == 0) {
            if (unlink(meta_path) != 0 && errno != ENOENT) {
                rc = internal(err, "cannot delete s3://%s/%s (%s): %s", bucket, key, meta_path,
                                  strerror(errno));
            } else {
                data_path = path_join(objdir, b->v[pos]->data, NULL);
                entry_free(b->v[pos]);
                memmove(b->v + pos, b->v + pos + 1, (b->n - pos - 1) * sizeof *b->v);
                b->n--;
            }
        }
    }
    pthread_rwlock_unlock(&st->lock);
    if (data_path) {
        unlink(data_path);
        fsync_path(objdir);
    }
    free(data_path);
    free(meta_path);
    free(objdir);
    return rc;
}

/* ---- listing ---------------------------------------------------------------------------------------- */

void rd_s3_listing_free(rd_s3_listing *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->object_count; i++)
        rd_s3_object_info_free(&l->objects[i]);
    free(l->objects);
    for (size_t i = 0; i < l->prefix_count; i++)
        free(l->common_prefixes[i]);
    free(l->common_prefixes);
    free(l->next_after);
    memset(l, 0, sizeof *l);
}

int rd_s3_store_list(rd_s3_store *st, const char *bucket, const char *prefix, const char *delimiter,
                     const char *start_after, size_t max_keys, rd_s3_listing *out, rd_emu_error *err)
{
    if (!prefix)
        prefix = "";
    if (delimiter && !*delimiter)
        delimiter = NULL;
    if (start_after && !*start_after)
        start_after = NULL;
    size_t plen = strlen(prefix), dlen = delimiter ? strlen(delimiter) : 0;
    rd_s3_listing l;
    memset(&l, 0, sizeof l);
    size_t cap_o = 0, cap_p = 0;
    int rc = 0;

    pthread_rwlock_rdlock(&st->lock);
    s3_bucket *b = find_bucket(st, bucket, NULL);
    if (!b) {
        pthread_rwlock_unlock(&st->lock);
        return no_such_bucket(err);
    }
    size_t i = lower_bound(b, prefix);
    if (start_after && strcmp(start_after, prefix) >= 0) {
        i = lower_bound(b, start_after);
        if (i < b->n && strcmp(b->v[i]->key, start_after) == 0)
            i++;
    }
    const char *last = NULL; /* last key or prefix returned (borrowed from the index or l) */
    size_t taken = 0;
    while (i < b->n) {
        const s3_entry *e = b->v[i];
        if (strncmp(e->key, prefix, plen) != 0)
            break;
        const char *d = delimiter ? strstr(e->key + plen, delimiter) : NULL;
        if (d) {
            size_t cplen = (size_t)(d - e->key) + dlen;
            /* keys under a prefix already returned by the previous page (start_after == that prefix) */
            if (start_after && strlen(start_after) == cplen && strncmp(start_after, e->key, cplen) == 0) {
                i = prefix_end(b, i, e->key, cplen);
                continue;
            }
            if (taken == max_keys) {
                l.truncated = 1;
                break;
            }
            char *cp = strndup(e->key, cplen);
            if (!cp || push_ptr((void ***)&l.common_prefixes, &l.prefix_count, &cap_p, cp) != 0) {
                free(cp);
                rc = internal(err, "out of memory");
                break;
            }
            last = cp;
            taken++;
            i = prefix_end(b, i, cp, cplen);
            continue;
        }
        if (taken == max_keys) {
            l.truncated = 1;
            break;
        }
        if (l.object_count == cap_o) {
            size_t nc = cap_o ? cap_o * 2 : 64;
            rd_s3_object_info *no = realloc(l.objects, nc * sizeof *no);
            if (!no) {
                rc = internal(err, "out of memory");
                break;
            }
            l.objects = no;
            cap_o = nc;
        }
        entry_copy_info(e, &l.objects[l.object_count++], 0);
        last = e->key;
        taken++;
        i++;
    }
    if (rc == 0 && l.truncated && last)
        l.next_after = strdup(last);
    pthread_rwlock_unlock(&st->lock);
    if (max_keys == 0)
        l.truncated = 0;
    if (rc != 0) {
        rd_s3_listing_free(&l);
        return rc;
    }
    *out = l;
    return 0;
}

/* ---- multipart uploads -------------------------------------------------------------------------------
 * <bucket>/uploads/<upload id>/ holds upload.json (key in hex, initiation time, content type, metadata), per
 * part a sidecar "p-<number, 5 digits>.json" (data file, size, etag, checksum) and its data "d-<random>".
 * A part is written to "tmp-<random>", renamed to a fresh data file, then its sidecar renamed over the old
 * one (the commit point; the old data is unlinked). Abort and completion rename the directory to
 * "uploads/.trash-<random>" and remove it. mpu_lock serialises these renames; open sweeps the leftovers. */

static int no_such_upload(rd_emu_error *err)
{
    return rd_emu_error_set(err, 404, "NoSuchUpload",
                            "The specified upload does not exist. The upload ID may be invalid, or the upload may "
                            "have been aborted or completed.");
}

static int invalid_part(rd_emu_error *err)
{
    return rd_emu_error_set(err, 400, "InvalidPart",
                            "One or more of the specified parts could not be found.  The part may not have been "
                            "uploaded, or the specified entity tag may not have matched the part's entity tag.");
}

/* Upload ids are 32 lowercase hex digits (they name a directory: nothing else may pass). */
static int valid_upload_id(const char *id)
{
    if (!id || strlen(id) != 32)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static char *upload_dir_path(const rd_s3_store *st, const char *bucket, const char *id)
{
    rd_buf p = RD_BUF_INIT;
    rd_buf_printf(&p, "%s/%s/uploads/%s", st->dir, bucket, id);
    return rd_buf_detach(&p);
}

void rd_s3_upload_info_free(rd_s3_upload_info *u)
{
    if (!u)
        return;
    free(u->key);
    free(u->content_type);
    rd_s3_meta_free(&u->meta);
    u->key = u->content_type = NULL;
}

void rd_s3_parts_free(rd_s3_part_info *parts, size_t n)
{
    for (size_t i = 0; parts && i < n; i++)
        free(parts[i].checksum);
    free(parts);
}

/* Reads updir/upload.json into out (id from the directory name). -1 when missing or broken. */
static int read_upload(const char *updir, const char *id, rd_s3_upload_info *out)
{
    json_t *j = read_json_file(updir, "upload.json", NULL);
    const char *kh = json_string_value(json_object_get(j, "key_hex"));
    memset(out, 0, sizeof *out);
    if (!j || !kh || !(out->key = hex_decode(kh))) {
        json_decref(j);
        return -1;
    }
    snprintf(out->upload_id, sizeof out->upload_id, "%s", id);
    out->initiated = (time_t)json_integer_value(json_object_get(j, "initiated"));
    dup_opt(&out->content_type, json_string_value(json_object_get(j, "content_type")));
    meta_from_json(j, &out->meta);
    json_decref(j);
    return 0;
}

/* The upload of bucket/key named id: 0 with *updir (malloc'd) and info (may be NULL) filled, else an error. */
static int find_upload(rd_s3_store *st, const char *bucket, const char *key, const char *id, char **updir,
                       rd_s3_upload_info *info, rd_emu_error *err)
{
    int rc = rd_s3_store_head_bucket(st, bucket, NULL, err);
    if (rc != 0)
        return rc;
    if (!valid_upload_id(id))
        return no_such_upload(err);
    char *d = upload_dir_path(st, bucket, id);
    rd_s3_upload_info u;
    if (!d || read_upload(d, id, &u) != 0) {
        free(d);
        return no_such_upload(err);
    }
    if (key && strcmp(u.key, key) != 0) {
        rd_s3_upload_info_free(&u);
        free(d);
        return no_such_upload(err);
    }
    if (info)
        *info = u;
    else
        rd_s3_upload_info_free(&u);
    *updir = d;
    return 0;
}

int rd_s3_store_mpu_create(rd_s3_store *st, const char *bucket, const char *key, const char *content_type,
                           const rd_s3_meta *meta, char id_out[40], rd_emu_error *err)
{
    int rc = check_key(key, err);
    if (rc != 0 || (rc = rd_s3_store_head_bucket(st, bucket, NULL, err)) != 0)
        return rc;
    unsigned char r[16];
    char id[40], tmpname[40];
    if (RAND_bytes(r, sizeof r) != 1 || random_name(".tmp-", tmpname) != 0)
        return internal(err, "no randomness available");
    hex_encode(r, sizeof r, id);
    char *uploads = path_join(st->dir, bucket, "uploads");
    char *tmpdir = uploads ? path_join(uploads, tmpname, NULL) : NULL;
    char *final = uploads ? path_join(uploads, id, NULL) : NULL;
    char *text = NULL;
    if (!final || !tmpdir) {
        rc = internal(err, "out of memory");
        goto out;
    }
    if ((mkdir(uploads, 0700) != 0 && errno != EEXIST) || mkdir(tmpdir, 0700) != 0) {
        rc = internal(err, "cannot create %s: %s", tmpdir, strerror(errno));
        goto out;
    }
    char kh[2 * KEY_MAX_BYTES + 1];
    hex_encode((const unsigned char *)key, strlen(key), kh);
    json_t *j = json_pack("{s:s, s:I}", "key_hex", kh, "initiated", (json_int_t)time(NULL));
    if (j && content_type)
        json_object_set_new(j, "content_type", json_string(content_type));
    if (j && meta_to_json(meta, j) != 0) {
        json_decref(j);
        j = NULL;
    }
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char *doc = path_join(tmpdir, "upload.json", NULL);
    rc = !text || !doc ? internal(err, "out of memory (or metadata is not UTF-8)")
                       : write_file_synced(doc, text, strlen(text), err);
    free(doc);
    if (rc == 0) {
        fsync_path(tmpdir);
        if (rename(tmpdir, final) != 0)
            rc = internal(err, "cannot create %s: %s", final, strerror(errno));
        else
            fsync_path(uploads);
    }
    if (rc != 0)
        remove_tree(tmpdir);
    else
        memcpy(id_out, id, 33);
out:
    free(text);
    free(uploads);
    free(tmpdir);
    free(final);
    return rc;
}

int rd_s3_store_mpu_get(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                        rd_s3_upload_info *out, rd_emu_error *err)
{
    char *d = NULL;
    int rc = find_upload(st, bucket, key, upload_id, &d, out, err);
    free(d);
    return rc;
}

int rd_s3_store_part_begin(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id, int part_number,
                           rd_s3_put **out, rd_emu_error *err)
{
    if (part_number < 1 || part_number > RD_S3_MAX_PARTS)
        return rd_emu_error_set(err, 400, "InvalidArgument",
                                "Part number must be an integer between 1 and 10000, inclusive");
    char *d = NULL;
    int rc = find_upload(st, bucket, key, upload_id, &d, NULL, err);
    if (rc != 0)
        return rc;
    rd_s3_put *w = calloc(1, sizeof *w);
    char tmpname[40];
    if (!w || random_name("tmp-", tmpname) != 0) {
        free(w);
        free(d);
        return internal(err, "out of memory");
    }
    w->st = st;
    w->fd = -1;
    w->upload_dir = d;
    w->part_number = part_number;
    w->bucket = strdup(bucket);
    w->key = strdup(key);
    w->md5 = EVP_MD_CTX_new();
    w->tmp_path = path_join(d, tmpname, NULL);
    if (!w->bucket || !w->key || !w->md5 || !w->tmp_path || EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1) {
        rd_s3_put_abort(w);
        return internal(err, "out of memory");
    }
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        rc = errno == ENOENT ? no_such_upload(err) /* aborted meanwhile */
                             : internal(err, "cannot create %s: %s", w->tmp_path, strerror(errno));
        free(w->tmp_path);
        w->tmp_path = NULL;
        rd_s3_put_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

static void part_sidecar_name(int number, char out[16])
{
    snprintf(out, 16, "p-%05d.json", number);
}

/* Stores the synced part file w->tmp_path as part w->part_number. */
static int commit_part(rd_s3_put *w, const char *etag, rd_s3_object_info *info_out, rd_emu_error *err)
{
    char data_name[40], side_tmp[40], side[16];
    if (random_name("d-", data_name) != 0 || random_name("tmp-", side_tmp) != 0)
        return internal(err, "no randomness available");
    part_sidecar_name(w->part_number, side);
    json_t *j = json_pack("{s:s, s:I, s:s, s:I}", "data", data_name, "size", (json_int_t)w->size, "etag", etag, "mtime",
                          (json_int_t)time(NULL));
    if (j && w->meta.checksum)
        json_object_set_new(j, "checksum", json_string(w->meta.checksum));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char *data_path = path_join(w->upload_dir, data_name, NULL), *tmp_side = path_join(w->upload_dir, side_tmp, NULL),
         *side_path = path_join(w->upload_dir, side, NULL), *old_data = NULL;
    int rc = 0;
    if (!text || !data_path || !tmp_side || !side_path) {
        rc = internal(err, "out of memory");
        goto out;
    }
    pthread_mutex_lock(&w->st->mpu_lock);
    char *doc = path_join(w->upload_dir, "upload.json", NULL);
    int alive = doc && access(doc, F_OK) == 0;
    free(doc);
    if (!alive) {
        rc = no_such_upload(err);
    } else if (rename(w->tmp_path, data_path) != 0) {
        rc = internal(err, "cannot store part %d of s3://%s/%s (%s): %s", w->part_number, w->bucket, w->key, data_path,
                      strerror(errno));
    } else if ((rc = write_file_synced(tmp_side, text, strlen(text), err)) != 0) {
        unlink(data_path);
    } else {
        json_t *old = read_json_file(w->upload_dir, side, NULL);
        const char *od = json_string_value(json_object_get(old, "data"));
        old_data = od && strncmp(od, "d-", 2) == 0 && !strchr(od, '/') ? strdup(od) : NULL;
        json_decref(old);
        fsync_path(w->upload_dir);
        if (rename(tmp_side, side_path) != 0) {
            rc = internal(err, "cannot store part %d of s3://%s/%s (%s): %s", w->part_number, w->bucket, w->key,
                          side_path, strerror(errno));
            unlink(tmp_side);
            unlink(data_path);
        }
    }
    pthread_mutex_unlock(&w->st->mpu_lock);
    if (rc == 0) {
        fsync_path(w->upload_dir);
        if (old_data) {
            char *p = path_join(w->upload_dir, old_data, NULL);
            unlink(p);
            free(p);
        }
        if (info_out) {
            memset(info_out, 0, sizeof *info_out);
            info_out->size = w->size;
            snprintf(info_out->etag, sizeof info_out->etag, "%s", etag);
            info_out->last_modified = time(NULL);
            rd_s3_meta_copy(&info_out->meta, &w->meta);
        }
    }
out:
    free(old_data);
    free(text);
    free(data_path);
    free(tmp_side);
    free(side_path);
    return rc;
}

/* One part's sidecar: 0 and p (and data_out, malloc'd, when not NULL) filled; -1 when missing or broken. */
static int read_part(const char *updir, int number, rd_s3_part_info *p, char **data_out)
{
    char side[16];
    part_sidecar_name(number, side);
    json_t *j = read_json_file(updir, side, NULL);
    const char *data = json_string_value(json_object_get(j, "data"));
    const char *etag = json_string_value(json_object_get(j, "etag"));
    if (!j || !data || strncmp(data, "d-", 2) != 0 || strchr(data, '/') || !etag || strlen(etag) != 34) {
        json_decref(j);
        return -1;
    }
    memset(p, 0, sizeof *p);
    p->number = number;
    p->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
    memcpy(p->etag, etag, 35);
    p->last_modified = (time_t)json_integer_value(json_object_get(j, "mtime"));
    dup_opt(&p->checksum, json_string_value(json_object_get(j, "checksum")));
    if (data_out)
        *data_out = strdup(data);
    json_decref(j);
    return 0;
}

static int cmp_part(const void *a, const void *b)
{
    return ((const rd_s3_part_info *)a)->number - ((const rd_s3_part_info *)b)->number;
}

/* The part numbers with a sidecar in updir, ascending (*nums malloc'd). */
static int list_part_numbers(const char *updir, int **nums, size_t *n)
{
    DIR *d = opendir(updir);
    if (!d)
        return -1;
    int *v = NULL;
    size_t k = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int num = 0;
        char tail[8] = { 0 };
        if (strlen(de->d_name) == 12 && sscanf(de->d_name, "p-%5d%6s", &num, tail) == 2 && strcmp(tail, ".json") == 0 &&
            num >= 1 && num <= RD_S3_MAX_PARTS) {
            if (k == cap) {
                cap = cap ? cap * 2 : 64;
                int *nv = realloc(v, cap * sizeof *nv);
                if (!nv)
                    break;
                v = nv;
            }
            v[k++] = num;
        }
    }
    closedir(d);
    *nums = v;
    *n = k;
    return 0;
}

int rd_s3_store_mpu_parts(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                          rd_s3_part_info **parts, size_t *n, rd_emu_error *err)
{
    char *d = NULL;
    int rc = find_upload(st, bucket, key, upload_id, &d, NULL, err);
    if (rc != 0)
        return rc;
    int *nums = NULL;
    size_t k = 0;
    pthread_mutex_lock(&st->mpu_lock);
    if (list_part_numbers(d, &nums, &k) != 0) {
        pthread_mutex_unlock(&st->mpu_lock);
        free(d);
        return no_such_upload(err);
    }
    rd_s3_part_info *v = calloc(k ? k : 1, sizeof *v);
    size_t got = 0;
    for (size_t i = 0; v && i < k; i++)
        if (read_part(d, nums[i], &v[got], NULL) == 0)
            got++;
    pthread_mutex_unlock(&st->mpu_lock);
    free(nums);
    free(d);
    if (!v)
        return internal(err, "out of memory");
    qsort(v, got, sizeof *v, cmp_part);
    *parts = v;
    *n = got;
    return 0;
}

/* Renames the upload's directory away and removes it (mpu_lock held by the caller). */
static int drop_upload(rd_s3_store *st, const char *bucket, const char *updir, char **trash_out, rd_emu_error *err)
{
    char trash[40];
    if (random_name(".trash-", trash) != 0)
        return internal(err, "no randomness available");
    char *uploads = path_join(st->dir, bucket, "uploads");
    char *to = uploads ? path_join(uploads, trash, NULL) : NULL;
    int rc = 0;
    if (!to)
        rc = internal(err, "out of memory");
    else if (rename(updir, to) != 0)
        rc = errno == ENOENT ? no_such_upload(err) : internal(err, "cannot remove %s: %s", updir, strerror(errno));
    else
        fsync_path(uploads);
    free(uploads);
    if (rc != 0) {
        free(to);
        return rc;
    }
    *trash_out = to;
    return 0;
}

int rd_s3_store_mpu_abort(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                          rd_emu_error *err)
{
    char *d = NULL, *trash = NULL;
    int rc = find_upload(st, bucket, key, upload_id, &d, NULL, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&st->mpu_lock);
    rc = drop_upload(st, bucket, d, &trash, err);
    pthread_mutex_unlock(&st->mpu_lock);
    if (trash)
        remove_tree(trash);
    free(trash);
    free(d);
    return rc;
}

/* Appends the whole of fd to out (copy_file_range where it works). */
static int append_fd(int out, int fd, uint64_t size)
{
    off_t off = 0;
    while ((uint64_t)off < size) {
        ssize_t n = copy_file_range(fd, &off, out, NULL, (size_t)(size - (uint64_t)off), 0);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return -1; /* shorter than its sidecar says */
        /* no copy_file_range between these files: read and write */
        char *buf = malloc(1 << 20);
        if (!buf)
            return -1;
        while ((uint64_t)off < size) {
            ssize_t r = pread(fd, buf, 1 << 20, off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                free(buf);
                return -1;
            }
            for (ssize_t w = 0; w < r;) {
                ssize_t k = write(out, buf + w, (size_t)(r - w));
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0) {
                    free(buf);
                    return -1;
                }
                w += k;
            }
            off += r;
        }
        free(buf);
    }
    return 0;
}

/* 1 when the client's ETag (quoted or not) names the stored one. */
static int etag_equal(const char *client, const char *stored)
{
    size_t n = strlen(client);
    if (n >= 2 && client[0] == '"' && client[n - 1] == '"')
        return n == strlen(stored) && strncmp(client, stored, n) == 0;
    return n + 2 == strlen(stored) && strncmp(client, stored + 1, n) == 0;
}

int rd_s3_store_mpu_complete(rd_s3_store *st, const char *bucket, const char *key, const char *upload_id,
                             const rd_s3_complete_part *parts, size_t n, const char *checksum,
                             const char *checksum_type, rd_s3_object_info *info_out, rd_emu_error *err)
{
    for (size_t i = 1; i < n; i++)
        if (parts[i].number <= parts[i - 1].number)
            return rd_emu_error_set(err, 400, "InvalidPartOrder",
                                    "The list of parts was not in ascending order. The parts list must be specified "
                                    "in order by part number.");
    char *d = NULL, *trash = NULL, *objdir = objects_dir(st, bucket), *tmp_path = NULL;
    rd_s3_upload_info up;
    memset(&up, 0, sizeof up);
    int rc = find_upload(st, bucket, key, upload_id, &d, &up, err);
    if (rc != 0) {
        free(objdir);
        return rc;
    }
    int *fds = calloc(n ? n : 1, sizeof *fds);
    uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    size_t opened = 0;
    EVP_MD_CTX *md5 = EVP_MD_CTX_new();
    if (!fds || !sizes || !md5 || !objdir || EVP_DigestInit_ex(md5, EVP_md5(), NULL) != 1) {
        rc = internal(err, "out of memory");
        goto out;
    }
    /* the named parts, opened under the lock: a part replaced later keeps these bytes */
    pthread_mutex_lock(&st->mpu_lock);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rd_s3_part_info p;
        char *data = NULL;
        if (parts[i].number < 1 || parts[i].number > RD_S3_MAX_PARTS || read_part(d, parts[i].number, &p, &data) != 0) {
            rc = invalid_part(err);
            break;
        }
        if (!parts[i].etag || !etag_equal(parts[i].etag, p.etag)) {
            rc = invalid_part(err);
        } else if (i + 1 < n && p.size < RD_S3_MIN_PART_SIZE) {
            rc = rd_emu_error_set(err, 400, "EntityTooSmall",
                                  "Your proposed upload is smaller than the minimum allowed object size.");
        } else {
            char *path = data ? path_join(d, data, NULL) : NULL;
            int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
            free(path);
            if (fd < 0) {
                rc = invalid_part(err);
            } else {
                fds[opened++] = fd;
                sizes[i] = p.size;
                unsigned char raw[16];
                for (int k = 0; k < 16; k++)
                    raw[k] = (unsigned char)(hex_val(p.etag[1 + 2 * k]) << 4 | hex_val(p.etag[2 + 2 * k]));
                EVP_DigestUpdate(md5, raw, 16);
            }
        }
        free(data);
        free(p.checksum);
    }
    pthread_mutex_unlock(&st->mpu_lock);
    if (rc != 0)
        goto out;

    /* the object's bytes, outside the lock */
    char tmpname[40];
    if (random_name("tmp-", tmpname) != 0 || !(tmp_path = path_join(objdir, tmpname, NULL))) {
        rc = internal(err, "no randomness available");
        goto out;
    }
    int out_fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out_fd < 0) {
        rc = internal(err, "cannot create %s: %s", tmp_path, strerror(errno));
        goto out;
    }
    uint64_t total = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (append_fd(out_fd, fds[i], sizes[i]) != 0)
            rc = internal(err, "cannot assemble s3://%s/%s in %s: %s (is the disk full?)", bucket, key, tmp_path,
                          strerror(errno));
        total += sizes[i];
    }
    if (rc == 0 && fsync(out_fd) != 0)
        rc = internal(err, "cannot flush %s: %s", tmp_path, strerror(errno));
    close(out_fd);
    if (rc != 0)
        goto out;
    unsigned char md[16];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(md5, md, &mdlen);
    char etag[48];
    etag[0] = '"';
    hex_encode(md, 16, etag + 1);
    snprintf(etag + 33, sizeof etag - 33, "-%zu\"", n);
    free(up.meta.checksum);
    free(up.meta.checksum_type);
    up.meta.checksum = checksum ? strdup(checksum) : NULL;
    up.meta.checksum_type = checksum_type ? strdup(checksum_type) : NULL;
    if (!checksum) {
        free(up.meta.checksum_algo);
        up.meta.checksum_algo = NULL;
    }

    /* the commit point: the object replaces any older one, then the upload goes (both under the lock, so an
     * abort racing with this either wins before it or finds no upload) */
    pthread_mutex_lock(&st->mpu_lock);
    char *doc = path_join(d, "upload.json", NULL);
    int alive = doc && access(doc, F_OK) == 0;
    free(doc);
    if (!alive)
        rc = no_such_upload(err);
    else if ((rc = commit_file(st, bucket, key, up.content_type, &up.meta, objdir, tmp_path, total, etag, info_out,
                               err)) == 0)
        drop_upload(st, bucket, d, &trash, NULL);
    pthread_mutex_unlock(&st->mpu_lock);
    if (trash)
        remove_tree(trash);
out:
    if (tmp_path)
        unlink(tmp_path); /* gone when committed */
    for (size_t i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    free(sizes);
    EVP_MD_CTX_free(md5);
    rd_s3_upload_info_free(&up);
    free(trash);
    free(tmp_path);
    free(objdir);
    free(d);
    return rc;
}

static int cmp_upload(const void *a, const void *b)
{
    const rd_s3_upload_info *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->initiated != y->initiated)
        return x->initiated < y->initiated ? -1 : 1;
    return strcmp(x->upload_id, y->upload_id);
}

int rd_s3_store_mpu_list(rd_s3_store *st, const char *bucket, const char *prefix, const char *key_marker,
                         const char *upload_id_marker, size_t max, rd_s3_upload_info **out, size_t *n, int *truncated,
                         rd_emu_error *err)
{
    int rc = rd_s3_store_head_bucket(st, bucket, NULL, err);
    if (rc != 0)
        return rc;
    char *uploads = path_join(st->dir, bucket, "uploads");
    rd_s3_upload_info *v = NULL;
    size_t k = 0, cap = 0;
    pthread_mutex_lock(&st->mpu_lock);
    DIR *dir = uploads ? opendir(uploads) : NULL;
    struct dirent *de;
    while (dir && (de = readdir(dir)) != NULL) {
        if (!valid_upload_id(de->d_name))
            continue;
        char *ud = path_join(uploads, de->d_name, NULL);
        rd_s3_upload_info u;
        if (ud && read_upload(ud, de->d_name, &u) == 0) {
            int keep = !prefix || strncmp(u.key, prefix, strlen(prefix)) == 0;
            if (keep && key_marker && *key_marker) {
                int c = strcmp(u.key, key_marker);
                keep = c > 0 ||
                       (c == 0 && upload_id_marker && *upload_id_marker && strcmp(u.upload_id, upload_id_marker) > 0);
            }
            if (keep && k == cap) {
                cap = cap ? cap * 2 : 16;
                rd_s3_upload_info *nv = realloc(v, cap * sizeof *nv);
                if (!nv)
                    keep = 0;
                else
                    v = nv;
            }
            if (keep)
                v[k++] = u;
            else
                rd_s3_upload_info_free(&u);
        }
        free(ud);
    }
    if (dir)
        closedir(dir);
    pthread_mutex_unlock(&st->mpu_lock);
    free(uploads);
    if (k)
        qsort(v, k, sizeof *v, cmp_upload);
    *truncated = k > max;
    for (size_t i = max; i < k; i++)
        rd_s3_upload_info_free(&v[i]);
    *n = k > max ? max : k;
    *out = v;
    return 0;
}

/* At open: uploads' temp files, data no sidecar names, broken uploads and removals a crash interrupted. */
static void sweep_uploads(const char *dir, const char *bucket)
{
    char *uploads = path_join(dir, bucket, "uploads");
    DIR *d = uploads ? opendir(uploads) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        char *ud = path_join(uploads, n, NULL);
        rd_s3_upload_info u;
        if (!ud) {
            continue;
        } else if (!valid_upload_id(n) || read_upload(ud, n, &u) != 0) {
            remove_tree(ud);
        } else {
            rd_s3_upload_info_free(&u);
            int *nums = NULL;
            size_t k = 0;
            list_part_numbers(ud, &nums, &k);
            char **refs = calloc(k ? k : 1, sizeof *refs);
            size_t nr = 0;
            for (size_t i = 0; refs && i < k; i++) {
                rd_s3_part_info p;
                char *data = NULL;
                if (read_part(ud, nums[i], &p, &data) == 0) {
                    refs[nr++] = data;
                    free(p.checksum);
                }
            }
            DIR *pd = refs ? opendir(ud) : NULL;
            struct dirent *pe;
            while (pd && (pe = readdir(pd)) != NULL) {
                int keep = strncmp(pe->d_name, "d-", 2) != 0 && strncmp(pe->d_name, "tmp-", 4) != 0;
                for (size_t i = 0; !keep && i < nr; i++)
                    keep = refs[i] && strcmp(refs[i], pe->d_name) == 0;
                if (!keep)
                    unlinkat(dirfd(pd), pe->d_name, 0);
            }
            if (pd)
                closedir(pd);
            for (size_t i = 0; i < nr; i++)
                free(refs[i]);
            free(refs);
            free(nums);
        }
        free(ud);
    }
    if (d)
        closedir(d);
    free(uploads);
}
