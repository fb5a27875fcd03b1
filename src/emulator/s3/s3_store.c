/* s3_store.c — the emulator's object store on disk (see s3_store.h).
 * Layout under <dir>: one directory per bucket, <bucket>/bucket.json (region, creation time) and
 * <bucket>/objects/ holding, per key, a sidecar "<sha256(key) hex>.json" (key in hex, size, etag, mtime,
 * content type, data file name) and a data file "d-<random>". A put writes "tmp-<random>", renames it to a
 * fresh data file, then renames a new sidecar over the old one (the commit point) and unlinks the old data
 * file; leftovers of a crash are swept at open. Nothing is fsynced: the store survives the emulator's restarts
 * and crashes (the renames are atomic), not the machine's power loss, which a local test ground does not need
 * and which would make every put (and every UNLOAD file) wait on the disk. An in-memory index per bucket (sorted by key bytes)
 * serves listing and lookups; one rwlock guards the whole index. Multipart uploads are s3_store_mpu.c's
 * (shared pieces: s3_store_internal.h). Does not own the S3 REST API (s3_api.c). */
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
#include "emulator/s3/s3_store_internal.h"
#include "redduck/buf.h"

#define KEY_MAX_BYTES RD_S3ST_KEY_MAX_BYTES
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

const char *rd_s3st_dir(const rd_s3_store *st)
{
    return st->dir;
}

pthread_mutex_t *rd_s3st_mpu_lock(rd_s3_store *st)
{
    return &st->mpu_lock;
}

/* ---- small helpers ---------------------------------------------------------------------------------- */

void rd_s3st_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int rd_s3st_hex_val(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes hex into a malloc'd NUL-terminated string; NULL when malformed. */
char *rd_s3st_hex_decode(const char *s)
{
    size_t n = strlen(s);
    if (n % 2)
        return NULL;
    char *out = malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = rd_s3st_hex_val(s[2 * i]), lo = rd_s3st_hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[i] = (char)(hi << 4 | lo);
    }
    out[n / 2] = '\0';
    return out;
}

int rd_s3st_random_name(const char *prefix, char out[40])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1)
        return -1;
    size_t pl = strlen(prefix);
    memcpy(out, prefix, pl);
    rd_s3st_hex_encode(r, sizeof r, out + pl);
    return 0;
}

static void key_file_name(const char *key, char out[70])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL);
    rd_s3st_hex_encode(md, 32, out);
    memcpy(out + 64, ".json", 6);
}

char *rd_s3st_path_join(const char *a, const char *b, const char *c)
{
    rd_buf p = RD_BUF_INIT;
    rd_buf_printf(&p, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return rd_buf_detach(&p);
}

char *rd_s3st_objects_dir(const rd_s3_store *st, const char *bucket)
{
    return rd_s3st_path_join(st->dir, bucket, "objects");
}

/* Writes data to path (created exclusively, 0600). */
int rd_s3st_write_file(const char *path, const void *data, size_t len, rd_emu_error *err)
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
    if (close(fd) != 0) {
        unlink(path);
        return internal(err, "cannot flush %s: %s", path, strerror(errno));
    }
    return 0;
}

/* The JSON document in the small file a/b[/c] (a sidecar, bucket.json); NULL when missing or not JSON. */
json_t *rd_s3st_read_json_file(const char *a, const char *b, const char *c)
{
    char *path = rd_s3st_path_join(a, b, c);
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

int rd_s3st_check_key(const char *key, rd_emu_error *err)
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

int rd_s3st_dup_opt(char **dst, const char *src)
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
    bad |= rd_s3st_dup_opt(&dst->checksum_algo, src->checksum_algo) | rd_s3st_dup_opt(&dst->checksum, src->checksum) |
           rd_s3st_dup_opt(&dst->checksum_type, src->checksum_type);
    if (bad) {
        rd_s3_meta_free(dst);
        return -1;
    }
    return 0;
}

/* The metadata's fields into a sidecar document j. -1 when out of memory or not UTF-8. */
int rd_s3st_meta_to_json(const rd_s3_meta *m, json_t *j)
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

void rd_s3st_meta_from_json(json_t *j, rd_s3_meta *m)
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
    rd_s3st_dup_opt(&m->checksum_algo, json_string_value(json_object_get(j, "checksum_algo")));
    rd_s3st_dup_opt(&m->checksum, json_string_value(json_object_get(j, "checksum")));
    rd_s3st_dup_opt(&m->checksum_type, json_string_value(json_object_get(j, "checksum_type")));
}

/* ---- open / close ----------------------------------------------------------------------------------- */

static s3_entry *load_sidecar(int dfd, const char *objdir, const char *name)
{
    json_t *j = rd_s3st_read_json_file(objdir, name, NULL);
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
        !json_is_integer(mtime) || !(e->key = rd_s3st_hex_decode(kh)))
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
    rd_s3st_meta_from_json(j, &e->meta);
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

/* Loads <dir>/<name>: bucket.json, every sidecar; sweeps temp files, orphan data and broken sidecars. */
static s3_bucket *load_bucket(const char *dir, const char *name)
{
    json_t *j = rd_s3st_read_json_file(dir, name, "bucket.json");
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

    char *objdir = rd_s3st_path_join(dir, name, "objects");
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
    rd_s3st_sweep_uploads(dir, name);
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

void rd_s3st_remove_tree(const char *path)
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
            char *p = rd_s3st_path_join(dir, n, NULL);
            rd_s3st_remove_tree(p);
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
    if (rd_s3st_random_name(".tmp-", tmpname) != 0) {
        rc = internal(err, "no randomness available");
        goto out;
    }
    tmpdir = rd_s3st_path_join(st->dir, tmpname, NULL);
    sub = rd_s3st_path_join(st->dir, tmpname, "objects");
    meta = rd_s3st_path_join(st->dir, tmpname, "bucket.json");
    final = rd_s3st_path_join(st->dir, bucket, NULL);
    if (mkdir(tmpdir, 0700) != 0 || mkdir(sub, 0700) != 0) {
        rc = internal(err, "cannot create %s: %s", tmpdir, strerror(errno));
        goto fail;
    }
    time_t now = time(NULL);
    json_t *j = json_pack("{s:s, s:I}", "region", region, "created", (json_int_t)now);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    rc = text ? rd_s3st_write_file(meta, text, strlen(text), err) : internal(err, "out of memory");
    free(text);
    if (rc != 0)
        goto fail;
    if (rename(tmpdir, final) != 0) {
        rc = internal(err, "cannot create bucket directory %s: %s", final, strerror(errno));
        goto fail;
    }
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
    rd_s3st_remove_tree(tmpdir);
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
    if (rd_s3st_random_name(".trash-", trash) != 0)
        return internal(err, "no randomness available");
    char *from = rd_s3st_path_join(st->dir, bucket, NULL), *to = rd_s3st_path_join(st->dir, trash, NULL);
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
        rd_s3st_remove_tree(to);
    }
    free(from);
    free(to);
    return rc;
}

/* ---- writes ----------------------------------------------------------------------------------------- */

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
    int rc = rd_s3st_check_key(key, err);
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
    w->objdir = rd_s3st_objects_dir(st, bucket);
    w->md5 = EVP_MD_CTX_new();
    char tmpname[40];
    if (!w->bucket || !w->key || !w->objdir || !w->md5 || rd_s3st_random_name("tmp-", tmpname) != 0 ||
        EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1) {
        rd_s3_put_abort(w);
        return internal(err, "out of memory");
    }
    w->tmp_path = rd_s3st_path_join(w->objdir, tmpname, NULL);
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
int rd_s3st_commit_file(rd_s3_store *st, const char *bucket, const char *key, const char *content_type,
                        const rd_s3_meta *meta, const char *objdir, const char *tmp_path, uint64_t size,
                        const char *etag, rd_s3_object_info *info_out, rd_emu_error *err)
{
    int rc = 0;
    char data_name[40], meta_tmp_name[40], meta_name[70];
    char *data_path = NULL, *meta_tmp = NULL, *meta_path = NULL, *text = NULL, *old_data = NULL;
    if (rd_s3st_random_name("d-", data_name) != 0 || rd_s3st_random_name("tmp-", meta_tmp_name) != 0)
        return internal(err, "no randomness available");
    key_file_name(key, meta_name);
    data_path = rd_s3st_path_join(objdir, data_name, NULL);
    meta_tmp = rd_s3st_path_join(objdir, meta_tmp_name, NULL);
    meta_path = rd_s3st_path_join(objdir, meta_name, NULL);
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
    rd_s3st_hex_encode((const unsigned char *)key, strlen(key), kh);
    json_t *j = json_pack("{s:s, s:I, s:s, s:I, s:s}", "key_hex", kh, "size", (json_int_t)size, "etag", etag,
                          "mtime", (json_int_t)e->mtime, "data", data_name);
    if (j && content_type)
        json_object_set_new(j, "content_type", json_string(content_type));
    if (j && rd_s3st_meta_to_json(meta, j) != 0) {
        json_decref(j);
        j = NULL;
    }
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        rc = internal(err, "out of memory (or content type is not UTF-8)");
        goto fail_data;
    }
    if ((rc = rd_s3st_write_file(meta_tmp, text, strlen(text), err)) != 0)
        goto fail_data;

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
    if (old_data) {
        char *p = rd_s3st_path_join(objdir, old_data, NULL);
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
    rd_s3st_hex_encode(md, 16, etag + 1);
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
    if (close(w->fd) != 0) {
        w->fd = -1;
        rc = internal(err, "cannot flush %s: %s", w->tmp_path, strerror(errno));
        rd_s3_put_abort(w);
        return rc;
    }
    w->fd = -1;
    char etag[35];
    md5_etag(md, etag);
    if (w->upload_dir)
        rc = rd_s3st_commit_part(w, etag, info_out, err);
    else
        rc = rd_s3st_commit_file(w->st, w->bucket, w->key, w->content_type, &w->meta, w->objdir, w->tmp_path, w->size,
                                 etag, info_out, err);
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
    int rc = rd_s3st_check_key(key, err);
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
    int read_ok = n == 0;
    close(fd);
    unsigned char md[16];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(md5, md, &mdlen);
    EVP_MD_CTX_free(md5);
    if (!read_ok)
        return internal(err, "cannot read %s: %s", path, strerror(errno));

    char tmpname[40];
    if (rd_s3st_random_name("tmp-", tmpname) != 0)
        return internal(err, "no randomness available");
    char *objdir = rd_s3st_objects_dir(st, bucket);
    char *tmp_path = rd_s3st_path_join(objdir, tmpname, NULL);
    if (rename(path, tmp_path) == 0) {
        char etag[35];
        md5_etag(md, etag);
        rc = rd_s3st_commit_file(st, bucket, key, content_type, NULL, objdir, tmp_path, size, etag, info_out, err);
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
    char *objdir = rd_s3st_objects_dir(st, bucket);
    int f = -1, e_errno = 0;
    pthread_rwlock_rdlock(&st->lock);
    s3_bucket *b = find_bucket(st, bucket, NULL);
    s3_entry *e = b && key ? find_entry(b, key) : NULL;
    if (e) {
        /* opened under the lock: a concurrent put unlinks the old data only after replacing the entry */
        char *p = rd_s3st_path_join(objdir, e->data, NULL);
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
    int rc = rd_s3st_check_key(key, err);
    if (rc != 0)
        return rc;
    char meta_name[70];
    key_file_name(key, meta_name);
    char *objdir = rd_s3st_objects_dir(st, bucket);
    char *meta_path = rd_s3st_path_join(objdir, meta_name, NULL);
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
                data_path = rd_s3st_path_join(objdir, b->v[pos]->data, NULL);
                entry_free(b->v[pos]);
                memmove(b->v + pos, b->v + pos + 1, (b->n - pos - 1) * sizeof *b->v);
                b->n--;
            }
        }
    }
    pthread_rwlock_unlock(&st->lock);
    if (data_path) {
        unlink(data_path);
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
