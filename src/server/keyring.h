/* keyring.h — the server's encryption keys and the one way values are sealed with them: AES-256-GCM, a
 * random 96-bit nonce per value, and associated data binding a ciphertext to where it belongs. Owns the
 * keyring file (created 0600, refused when group or others may read it) and the keys in memory (wiped on
 * free). Does not own where blobs are stored (store.h).
 *
 * The file: text, one key a line, "<id> <base64 of 32 random bytes>", ids positive and unique; lines that
 * are empty or start with '#' are ignored. The active key (used to encrypt) is the one with the highest id;
 * older keys stay so that values sealed with them still open. Errors name the file and the line, never
 * what the line holds.
 *
 * A blob is self-describing: version byte (1) | key id (4 bytes, big-endian) | nonce (12) | ciphertext |
 * tag (16). The version and key id are authenticated along with the caller's associated data, so flipping
 * any byte of a blob, or opening it with other associated data, fails with a clear error, never garbage.
 *
 * Threads: rd_keyring_encrypt/decrypt and the getters may run on many threads at once; rd_keyring_add_key
 * may run beside them (a lock inside). */
#ifndef RD_SERVER_KEYRING_H
#define RD_SERVER_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "redduck/buf.h"
#include "redduck/error.h"

#define RD_KEYRING_KEY_LEN 32
#define RD_KEYRING_NONCE_LEN 12
#define RD_KEYRING_TAG_LEN 16
#define RD_KEYRING_BLOB_VERSION 1
#define RD_KEYRING_HEADER_LEN (1 + 4 + RD_KEYRING_NONCE_LEN)
/* Bytes a blob adds to its plaintext. */
#define RD_KEYRING_OVERHEAD (RD_KEYRING_HEADER_LEN + RD_KEYRING_TAG_LEN)

typedef struct rd_keyring rd_keyring;

/* Flags of rd_keyring_open. */
#define RD_KEYRING_CREATE 1 /* create the file with one new key when it does not exist */

/* Opens the keyring file at path (copied). With RD_KEYRING_CREATE and no file, creates it (O_EXCL, mode
 * 0600, fsync'd) holding key 1 and sets *created to 1 (created may be NULL). Errors: RD_E_CONFIG when the
 * file allows group/other access (the message says `chmod 600 FILE`), is not a regular file, or a line is
 * malformed (named by number); RD_E_NOT_FOUND when it does not exist and RD_KEYRING_CREATE is not given;
 * RD_E_IO for other file errors. *out is written only on success; free it with rd_keyring_free. */
rd_status rd_keyring_open(const char *path, int flags, rd_keyring **out, int *created, rd_error *err);

/* Wipes the keys and frees. NULL is a no-op. */
void rd_keyring_free(rd_keyring *kr);

/* The file this keyring was read from. */
const char *rd_keyring_path(const rd_keyring *kr);
/* The id of the active (newest) key. */
uint32_t rd_keyring_active_id(const rd_keyring *kr);
/* How many keys the keyring holds. */
size_t rd_keyring_count(const rd_keyring *kr);
/* 1 when the keyring holds key id. */
int rd_keyring_has(const rd_keyring *kr, uint32_t id);

/* Adds a new random key (id = active + 1), which becomes the active one, and rewrites the file
 * atomically (a 0600 temporary file beside it, fsync, rename, fsync of the directory). On failure the file
 * and the keyring in memory are as before. *new_id (may be NULL) is written on success. */
rd_status rd_keyring_add_key(rd_keyring *kr, uint32_t *new_id, rd_error *err);

/* Seals len bytes of plaintext with the active key, binding aad (may be NULL when aad_len is 0). *blob
 * (malloc'd, rd_keyring_blob_len(len) bytes; free() it) and *key_id (may be NULL) are written on success.
 * RD_E_INTERNAL when the random source or the cipher fails. */
rd_status rd_keyring_encrypt(rd_keyring *kr, const void *plaintext, size_t len, const void *aad, size_t aad_len,
                             unsigned char **blob, size_t *blob_len, uint32_t *key_id, rd_error *err);

/* Opens a blob sealed with the same aad. *plaintext is malloc'd with a NUL after its *len bytes; release it
 * with rd_keyring_wipe_free. RD_E_CONFIG, with nothing written, when the blob is not in a known format,
 * when the keyring does not hold its key ("is --keyring the file this data dir was created with?"), or when
 * it fails its integrity check (tampered, or sealed for other associated data). */
rd_status rd_keyring_decrypt(rd_keyring *kr, const unsigned char *blob, size_t blob_len, const void *aad,
                             size_t aad_len, char **plaintext, size_t *len, rd_error *err);

/* The key id a blob names, without opening it. RD_E_CONFIG when the blob is not in a known format. */
rd_status rd_keyring_blob_key_id(const unsigned char *blob, size_t blob_len, uint32_t *key_id, rd_error *err);

/* The size of the blob of a plaintext of len bytes. */
size_t rd_keyring_blob_len(size_t len);

/* The associated data of a variable: a tag and each of project, environment and name with a 4-byte
 * big-endian length before it, so no two triples give the same bytes. Appended to out (reset first);
 * RD_E_INTERNAL on out of memory. */
rd_status rd_keyring_variable_aad(rd_buf *out, const char *project, const char *environment, const char *name);

/* OPENSSL_cleanse(p, n), then free(p). NULL is a no-op. */
void rd_keyring_wipe_free(void *p, size_t n);

#endif
