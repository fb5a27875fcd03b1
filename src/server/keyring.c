/* keyring.c — the keyring file (read, created 0600, rewritten atomically when a key is added) and
 * AES-256-GCM sealing of values with it (keyring.h). */
#include "server/keyring.h"

#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define KEYFILE_MAX (1024 * 1024)
#define KEY_B64_LEN 44 /* base64 of 32 bytes, one '=' of padding */
#define KEYFILE_HEADER "# redduck keyring: one key a line (\"<id> <base64 of 32 bytes>\"); keep it private (chmod 600)\n"

typedef struct rd_key {
    uint32_t id;
    unsigned char bytes[RD_KEYRING_KEY_LEN];
} rd_key;

struct rd_keyring {
    char *path;
    pthread_rwlock_t lock;
    rd_key *keys;
    size_t n;
    uint32_t active;
};

static void keys_wipe_free(rd_key *keys, size_t n)
{
    if (keys)
        rd_keyring_wipe_free(keys, n * sizeof *keys);
}

void rd_keyring_wipe_free(void *p, size_t n)
{
    if (!p)
        return;
    OPENSSL_cleanse(p, n);
    free(p);
}

/* ---- the file ---------------------------------------------------------------------------------------- */

/* Parses the text of the file into *keys / *n. Errors name the line, never its content. */
static rd_status parse_keyfile(const char *path, const char *text, size_t len, rd_key **keys_out, size_t *n_out,
                               rd_error *err)
{
    rd_key *keys = NULL;
    size_t n = 0, cap = 0;
    rd_status st = RD_OK;
    size_t lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end && st == RD_OK) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        lineno++;
        size_t ll = (size_t)(line_end - p);
        if (ll > 0 && p[ll - 1] == '\r')
            ll--;
        if (ll == 0 || p[0] == '#') {
            p = eol ? eol + 1 : end;
            continue;
        }
        /* "<id> <base64>" */
        size_t i = 0;
        uint64_t id = 0;
        while (i < ll && p[i] >= '0' && p[i] <= '9' && id <= UINT32_MAX)
            id = id * 10 + (uint64_t)(p[i++] - '0');
        int ok = i > 0 && i <= 10 && id >= 1 && id <= UINT32_MAX && p[0] != '0' && i < ll && p[i] == ' ';
        const char *b64 = p + i + 1;
        if (ok && ll - i - 1 != KEY_B64_LEN)
            ok = 0;
        unsigned char raw[KEY_B64_LEN]; /* 33 decoded bytes fit */
        if (ok) {
            for (size_t k = 0; k < KEY_B64_LEN - 1 && ok; k++) {
                char c = b64[k];
                ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                     c == '/';
            }
            ok = ok && b64[KEY_B64_LEN - 1] == '=';
            ok = ok && EVP_DecodeBlock(raw, (const unsigned char *)b64, KEY_B64_LEN) == 33;
        }
        for (size_t k = 0; ok && k < n; k++)
            if (keys[k].id == (uint32_t)id)
                ok = 0;
        if (!ok) {
            OPENSSL_cleanse(raw, sizeof raw);
            st = rd_error_set(err, RD_E_CONFIG,
                              "keyring %s line %zu is not \"<id> <base64 of 32 bytes>\" with a new positive id: "
                              "restore the file from its backup",
                              path, lineno);
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            rd_key *nk = calloc(ncap, sizeof *nk);
            if (!nk) {
                OPENSSL_cleanse(raw, sizeof raw);
                st = rd_error_set(err, RD_E_INTERNAL, "out of memory reading keyring %s", path);
                break;
            }
            if (n)
                memcpy(nk, keys, n * sizeof *keys);
            keys_wipe_free(keys, cap);
            keys = nk;
            cap = ncap;
        }
        keys[n].id = (uint32_t)id;
        memcpy(keys[n].bytes, raw, RD_KEYRING_KEY_LEN);
        OPENSSL_cleanse(raw, sizeof raw);
        n++;
        p = eol ? eol + 1 : end;
    }
    if (st == RD_OK && n == 0)
        st = rd_error_set(err, RD_E_CONFIG, "keyring %s holds no key: restore the file from its backup", path);
    if (st != RD_OK) {
        keys_wipe_free(keys, cap);
        return st;
    }
    *keys_out = keys;
    *n_out = n;
    return RD_OK;
}

/* Reads and parses the file; checks that it is a regular file only its owner may read. */
static rd_status read_keyfile(const char *path, rd_key **keys, size_t *n, rd_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return rd_error_set(err, RD_E_NOT_FOUND, "keyring %s does not exist: pass the keyring this data dir "
                                                     "was created with", path);
        return rd_error_set(err, RD_E_IO, "cannot open keyring %s: %s", path, strerror(errno));
    }
    struct stat sb;
    rd_status st = RD_OK;
    if (fstat(fd, &sb) != 0)
        st = rd_error_set(err, RD_E_IO, "cannot stat keyring %s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = rd_error_set(err, RD_E_CONFIG, "keyring %s is not a regular file", path);
    else if (sb.st_mode & 077)
        st = rd_error_set(err, RD_E_CONFIG,
                          "keyring %s may be read by others (mode %04o): run `chmod 600 %s` and check who read it",
                          path, (unsigned)(sb.st_mode & 07777), path);
    else if (sb.st_size > KEYFILE_MAX)
        st = rd_error_set(err, RD_E_CONFIG, "keyring %s is larger than %d bytes: it is not a redduck keyring",
                          path, KEYFILE_MAX);
    if (st != RD_OK) {
        close(fd);
        return st;
    }
    size_t cap = (size_t)sb.st_size + 1, len = 0;
    char *text = malloc(cap);
    if (!text) {
        close(fd);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory reading keyring %s", path);
    }
    for (;;) {
        if (len == cap) { /* grew since fstat */
            st = rd_error_set(err, RD_E_IO, "keyring %s changed while it was read: try again", path);
            break;
        }
        ssize_t r = read(fd, text + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = rd_error_set(err, RD_E_IO, "cannot read keyring %s: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (st == RD_OK)
        st = parse_keyfile(path, text, len, keys, n, err);
    rd_keyring_wipe_free(text, cap);
    return st;
}

static rd_status write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return RD_E_IO;
        data += w;
        len -= (size_t)w;
    }
    return RD_OK;
}

/* Writes the keys' text into fd and fsyncs it. errno is set on failure. */
static rd_status write_keys_fd(int fd, const rd_key *keys, size_t n)
{
    rd_buf b = RD_BUF_INIT;
    rd_buf_puts(&b, KEYFILE_HEADER);
    for (size_t i = 0; i < n; i++) {
        unsigned char b64[KEY_B64_LEN + 1];
        EVP_EncodeBlock(b64, keys[i].bytes, RD_KEYRING_KEY_LEN);
        rd_buf_printf(&b, "%u ", (unsigned)keys[i].id);
        rd_buf_append(&b, b64, KEY_B64_LEN);
        rd_buf_putc(&b, '\n');
        OPENSSL_cleanse(b64, sizeof b64);
    }
    rd_status st = RD_E_INTERNAL;
    if (rd_buf_failed(&b))
        errno = ENOMEM;
    else if (write_all(fd, b.data, b.len) == RD_OK && fsync(fd) == 0)
        st = RD_OK;
    else
        st = RD_E_IO;
    int saved = errno;
    rd_buf_free_secure(&b);
    errno = saved;
    return st;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Creates the file with key 1. EEXIST (st RD_E_IO, errno EEXIST) when someone else created it first. */
static rd_status create_keyfile(const char *path, rd_key **keys_out, size_t *n_out, int *exists, rd_error *err)
{
    *exists = 0;
    rd_key *keys = calloc(1, sizeof *keys);
    if (!keys)
        return rd_error_set(err, RD_E_INTERNAL, "out of memory creating keyring %s", path);
    keys[0].id = 1;
    if (RAND_bytes(keys[0].bytes, RD_KEYRING_KEY_LEN) != 1) {
        keys_wipe_free(keys, 1);
        return rd_error_set(err, RD_E_INTERNAL, "the random number generator failed; keyring %s was not created",
                            path);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        keys_wipe_free(keys, 1);
        if (e == EEXIST) {
            *exists = 1;
            return RD_E_IO;
        }
        return rd_error_set(err, RD_E_IO, "cannot create keyring %s: %s", path, strerror(e));
    }
    rd_status st = write_keys_fd(fd, keys, 1);
    int e = errno;
    if (close(fd) != 0 && st == RD_OK) {
        st = RD_E_IO;
        e = errno;
    }
    if (st != RD_OK) {
        unlink(path);
        keys_wipe_free(keys, 1);
        return rd_error_set(err, RD_E_IO, "cannot write keyring %s: %s", path, strerror(e));
    }
    char *dir = rd_path_dirname(path);
    if (dir) {
        fsync_dir(dir);
        free(dir);
    }
    *keys_out = keys;
    *n_out = 1;
    return RD_OK;
}

static uint32_t max_id(const rd_key *keys, size_t n)
{
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (keys[i].id > m)
            m = keys[i].id;
    return m;
}

rd_status rd_keyring_open(const char *path, int flags, rd_keyring **out, int *created, rd_error *err)
{
    if (!path || !*path)
        return rd_error_set(err, RD_E_USAGE, "no keyring file given");
    rd_key *keys = NULL;
    size_t n = 0;
    int made = 0;
    rd_status st = read_keyfile(path, &keys, &n, err);
    if (st == RD_E_NOT_FOUND && (flags & RD_KEYRING_CREATE)) {
        int exists = 0;
        st = create_keyfile(path, &keys, &n, &exists, err);
        if (st == RD_OK)
            made = 1;
        else if (exists) /* another process created it first: read theirs */
            st = read_keyfile(path, &keys, &n, err);
    }
    if (st != RD_OK)
        return st;
    rd_keyring *kr = calloc(1, sizeof *kr);
    if (!kr || !(kr->path = strdup(path))) {
        free(kr);
        keys_wipe_free(keys, n);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory opening keyring %s", path);
    }
    pthread_rwlock_init(&kr->lock, NULL);
    kr->keys = keys;
    kr->n = n;
    kr->active = max_id(keys, n);
    *out = kr;
    if (created)
        *created = made;
    return RD_OK;
}

void rd_keyring_free(rd_keyring *kr)
{
    if (!kr)
        return;
    keys_wipe_free(kr->keys, kr->n);
    pthread_rwlock_destroy(&kr->lock);
    free(kr->path);
    free(kr);
}

const char *rd_keyring_path(const rd_keyring *kr)
{
    return kr->path;
}

uint32_t rd_keyring_active_id(const rd_keyring *kr)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kr->lock);
    uint32_t id = kr->active;
    pthread_rwlock_unlock((pthread_rwlock_t *)&kr->lock);
    return id;
}

size_t rd_keyring_count(const rd_keyring *kr)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kr->lock);
    size_t n = kr->n;
    pthread_rwlock_unlock((pthread_rwlock_t *)&kr->lock);
    return n;
}

/* The key of that id, or NULL; the caller holds the lock. */
static const rd_key *find_key(const rd_keyring *kr, uint32_t id)
{
    for (size_t i = 0; i < kr->n; i++)
        if (kr->keys[i].id == id)
            return &kr->keys[i];
    return NULL;
}

int rd_keyring_has(const rd_keyring *kr, uint32_t id)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&kr->lock);
    int has = find_key(kr, id) != NULL;
    pthread_rwlock_unlock((pthread_rwlock_t *)&kr->lock);
    return has;
}

/* 1 when both lists hold the same ids with the same bytes. */
static int same_keys(const rd_key *a, size_t na, const rd_key *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        int found = 0;
        for (size_t j = 0; j < nb && !found; j++)
            found = a[i].id == b[j].id && CRYPTO_memcmp(a[i].bytes, b[j].bytes, RD_KEYRING_KEY_LEN) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

rd_status rd_keyring_add_key(rd_keyring *kr, uint32_t *new_id, rd_error *err)
{
    rd_status st = RD_OK;
    char *dir = rd_path_dirname(kr->path);
    size_t tlen = strlen(kr->path) + 8;
    char *tmp = malloc(tlen);
    if (!dir || !tmp) {
        free(dir);
        free(tmp);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory adding a key to %s", kr->path);
    }
    snprintf(tmp, tlen, "%s.XXXXXX", kr->path);
    /* Another process adding a key at the same time must not drop ours or theirs: the directory's lock
     * serialises writers, and the file must still be what this keyring read. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || flock(dfd, LOCK_EX) != 0) {
        st = rd_error_set(err, RD_E_IO, "cannot lock the directory of keyring %s: %s", kr->path, strerror(errno));
        goto out;
    }
    pthread_rwlock_wrlock(&kr->lock);
    rd_key *disk = NULL;
    size_t ndisk = 0;
    st = read_keyfile(kr->path, &disk, &ndisk, err);
    if (st == RD_OK && !same_keys(disk, ndisk, kr->keys, kr->n))
        st = rd_error_set(err, RD_E_CONFIG,
                          "keyring %s was changed by another process since it was read: run the command again",
                          kr->path);
    keys_wipe_free(disk, ndisk);
    rd_key *keys = NULL;
    if (st == RD_OK && kr->active == UINT32_MAX)
        st = rd_error_set(err, RD_E_CONFIG, "keyring %s has no key id left", kr->path);
    if (st == RD_OK && !(keys = calloc(kr->n + 1, sizeof *keys)))
        st = rd_error_set(err, RD_E_INTERNAL, "out of memory adding a key to %s", kr->path);
    if (st == RD_OK) {
        memcpy(keys, kr->keys, kr->n * sizeof *keys);
        keys[kr->n].id = kr->active + 1;
        if (RAND_bytes(keys[kr->n].bytes, RD_KEYRING_KEY_LEN) != 1)
            st = rd_error_set(err, RD_E_INTERNAL, "the random number generator failed; no key was added");
    }
    int fd = -1;
    if (st == RD_OK && (fd = mkstemp(tmp)) < 0)
        st = rd_error_set(err, RD_E_IO, "cannot create a temporary file beside keyring %s: %s", kr->path,
                          strerror(errno));
    if (st == RD_OK) {
        rd_status w = fchmod(fd, 0600) == 0 ? write_keys_fd(fd, keys, kr->n + 1) : RD_E_IO;
        int e = errno;
        if (close(fd) != 0 && w == RD_OK) {
            w = RD_E_IO;
            e = errno;
        }
        if (w == RD_OK && rename(tmp, kr->path) != 0) {
            w = RD_E_IO;
            e = errno;
        }
        if (w != RD_OK) {
            unlink(tmp);
            st = rd_error_set(err, RD_E_IO, "cannot rewrite keyring %s: %s (the file is unchanged)", kr->path,
                              strerror(e));
        } else {
            fsync_dir(dir);
        }
    }
    if (st == RD_OK) {
        keys_wipe_free(kr->keys, kr->n);
        kr->keys = keys;
        kr->n++;
        kr->active++;
        if (new_id)
            *new_id = kr->active;
    } else if (keys) {
        keys_wipe_free(keys, kr->n + 1);
    }
    pthread_rwlock_unlock(&kr->lock);
out:
    if (dfd >= 0)
        close(dfd); /* releases the lock */
    free(dir);
    free(tmp);
    return st;
}

/* ---- sealing ----------------------------------------------------------------------------------------- */

size_t rd_keyring_blob_len(size_t len)
{
    return len + RD_KEYRING_OVERHEAD;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

rd_status rd_keyring_encrypt(rd_keyring *kr, const void *plaintext, size_t len, const void *aad, size_t aad_len,
                             unsigned char **blob_out, size_t *blob_len, uint32_t *key_id, rd_error *err)
{
    if (len > (size_t)INT_MAX - RD_KEYRING_OVERHEAD || aad_len > (size_t)INT_MAX)
        return rd_error_set(err, RD_E_USAGE, "a value of %zu bytes is too large to encrypt", len);
    size_t total = rd_keyring_blob_len(len);
    unsigned char *blob = malloc(total);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!blob || !c) {
        free(blob);
        EVP_CIPHER_CTX_free(c);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory encrypting a value");
    }
    unsigned char *nonce = blob + 5, *ct = blob + RD_KEYRING_HEADER_LEN, *tag = ct + len;
    pthread_rwlock_rdlock(&kr->lock);
    const rd_key *k = find_key(kr, kr->active);
    uint32_t id = kr->active;
    blob[0] = RD_KEYRING_BLOB_VERSION;
    put_be32(blob + 1, id);
    int ok = RAND_bytes(nonce, RD_KEYRING_NONCE_LEN) == 1;
    int outl = 0, finl = 0;
    ok = ok && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, RD_KEYRING_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_EncryptInit_ex(c, NULL, NULL, k->bytes, nonce) == 1;
    pthread_rwlock_unlock(&kr->lock); /* the context holds its own copy of the key schedule */
    ok = ok && EVP_EncryptUpdate(c, NULL, &outl, blob, 5) == 1; /* version and key id */
    ok = ok && (aad_len == 0 || EVP_EncryptUpdate(c, NULL, &outl, aad, (int)aad_len) == 1);
    ok = ok && (len == 0 || EVP_EncryptUpdate(c, ct, &outl, plaintext, (int)len) == 1);
    ok = ok && EVP_EncryptFinal_ex(c, ct + (len ? outl : 0), &finl) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, RD_KEYRING_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        rd_keyring_wipe_free(blob, total);
        return rd_error_set(err, RD_E_INTERNAL, "encryption failed (OpenSSL AES-256-GCM); the value was not stored");
    }
    *blob_out = blob;
    *blob_len = total;
    if (key_id)
        *key_id = id;
    return RD_OK;
}

rd_status rd_keyring_blob_key_id(const unsigned char *blob, size_t blob_len, uint32_t *key_id, rd_error *err)
{
    if (!blob || blob_len < RD_KEYRING_OVERHEAD)
        return rd_error_set(err, RD_E_CONFIG, "a stored value is truncated (%zu bytes): it is not a redduck "
                                              "encrypted value", blob_len);
    if (blob[0] != RD_KEYRING_BLOB_VERSION)
        return rd_error_set(err, RD_E_CONFIG,
                            "a stored value has format version %u, which this redduck does not read (damaged, or "
                            "written by a newer redduck)",
                            (unsigned)blob[0]);
    *key_id = get_be32(blob + 1);
    return RD_OK;
}

rd_status rd_keyring_decrypt(rd_keyring *kr, const unsigned char *blob, size_t blob_len, const void *aad,
                             size_t aad_len, char **plaintext, size_t *len_out, rd_error *err)
{
    uint32_t id = 0;
    rd_status st = rd_keyring_blob_key_id(blob, blob_len, &id, err);
    if (st != RD_OK)
        return st;
    if (aad_len > (size_t)INT_MAX || blob_len > (size_t)INT_MAX)
        return rd_error_set(err, RD_E_USAGE, "a stored value of %zu bytes is too large to decrypt", blob_len);
    size_t len = blob_len - RD_KEYRING_OVERHEAD;
    const unsigned char *nonce = blob + 5, *ct = blob + RD_KEYRING_HEADER_LEN, *tag = ct + len;
    char *pt = malloc(len + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!pt || !c) {
        free(pt);
        EVP_CIPHER_CTX_free(c);
        return rd_error_set(err, RD_E_INTERNAL, "out of memory decrypting a value");
    }
    pthread_rwlock_rdlock(&kr->lock);
    const rd_key *k = find_key(kr, id);
    int ok = k != NULL, outl = 0, finl = 0;
    ok = ok && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, RD_KEYRING_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_DecryptInit_ex(c, NULL, NULL, k->bytes, nonce) == 1;
    pthread_rwlock_unlock(&kr->lock);
    if (!k) {
        EVP_CIPHER_CTX_free(c);
        free(pt);
        return rd_error_set(err, RD_E_CONFIG,
                            "the keyring does not hold key %u: is --keyring the file this data dir was created "
                            "with?",
                            (unsigned)id);
    }
    ok = ok && EVP_DecryptUpdate(c, NULL, &outl, blob, 5) == 1;
    ok = ok && (aad_len == 0 || EVP_DecryptUpdate(c, NULL, &outl, aad, (int)aad_len) == 1);
    ok = ok && (len == 0 || EVP_DecryptUpdate(c, (unsigned char *)pt, &outl, ct, (int)len) == 1);
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, RD_KEYRING_TAG_LEN, (void *)tag) == 1;
    int tag_ok = ok && EVP_DecryptFinal_ex(c, (unsigned char *)pt + (len ? outl : 0), &finl) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!tag_ok) {
        rd_keyring_wipe_free(pt, len + 1);
        if (!ok)
            return rd_error_set(err, RD_E_INTERNAL, "decryption failed (OpenSSL AES-256-GCM)");
        return rd_error_set(err, RD_E_CONFIG,
                            "a stored value failed its integrity check (tampered, or encrypted for another "
                            "project/environment/name)");
    }
    pt[len] = '\0';
    *plaintext = pt;
    *len_out = len;
    return RD_OK;
}

static void put_field(rd_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    unsigned char be[4];
    put_be32(be, (uint32_t)n);
    rd_buf_append(b, be, 4);
    rd_buf_append(b, s ? s : "", n);
}

rd_status rd_keyring_variable_aad(rd_buf *out, const char *project, const char *environment, const char *name)
{
    rd_buf_reset(out);
    rd_buf_append(out, "redduck-variable-1", 18);
    put_field(out, project);
    put_field(out, environment);
    put_field(out, name);
    return rd_buf_failed(out) ? RD_E_INTERNAL : RD_OK;
}
