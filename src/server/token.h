/* token.h — the server's API tokens: 256 random bits with a recognisable prefix ("rdk_" + 64 lowercase hex
 * digits), and the SHA-256 the store keeps instead of the token. Owns no state; thread-safe. The caller
 * wipes a token it no longer needs (rd_token_wipe). */
#ifndef RD_SERVER_TOKEN_H
#define RD_SERVER_TOKEN_H

#include <stddef.h>

#include "redduck/error.h"

#define RD_TOKEN_PREFIX "rdk_"
#define RD_TOKEN_LEN (4 + 64)      /* without the NUL */
#define RD_TOKEN_HASH_LEN 64       /* hex SHA-256, without the NUL */

/* Writes a new token into out (RD_TOKEN_LEN + 1 bytes). RD_E_INTERNAL when the random source fails. */
rd_status rd_token_new(char out[RD_TOKEN_LEN + 1], rd_error *err);

/* 1 when s has the token's shape (prefix, length, lowercase hex), else 0. Does not say whether it exists. */
int rd_token_well_formed(const char *s);

/* The hex SHA-256 of token (any string: a malformed one still hashes, so lookups take the same path). */
void rd_token_hash(const char *token, char out[RD_TOKEN_HASH_LEN + 1]);

/* Wipes n bytes of a token or hash (OPENSSL_cleanse). */
void rd_token_wipe(void *p, size_t n);

#endif
