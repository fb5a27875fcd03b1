/* token.c — API tokens: generation from the OpenSSL CSPRNG and SHA-256 hashing (token.h). */
#include "server/token.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[in[i] >> 4];
        out[2 * i + 1] = hexdigits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

rd_status rd_token_new(char out[RD_TOKEN_LEN + 1], rd_error *err)
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return rd_error_set(err, RD_E_INTERNAL, "the random number generator failed; no token was made");
    memcpy(out, RD_TOKEN_PREFIX, 4);
    to_hex(raw, sizeof raw, out + 4);
    OPENSSL_cleanse(raw, sizeof raw);
    return RD_OK;
}

int rd_token_well_formed(const char *s)
{
    if (!s || strncmp(s, RD_TOKEN_PREFIX, 4) != 0 || strlen(s) != RD_TOKEN_LEN)
        return 0;
    for (const char *p = s + 4; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

void rd_token_hash(const char *token, char out[RD_TOKEN_HASH_LEN + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL);
    to_hex(md, sizeof md, out);
    OPENSSL_cleanse(md, sizeof md);
}

void rd_token_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}
