/* aws_chunked.c — aws-chunked body decoding and chunk signature checks (see aws_chunked.h). A small state
 * machine: a line (chunk header or trailer) is gathered up to its LF within RD_EMU_CHUNK_LINE_MAX, data is
 * handed to the sink as it comes, and each signed chunk is verified when its last byte has arrived. */
#include "emulator/s3/aws_chunked.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "redduck/buf.h"
#include "core/parse.h"

typedef enum chunk_state {
    ST_HEADER,    /* a chunk header line */
    ST_DATA,      /* chunk data, chunk_left to go */
    ST_DATA_END,  /* the CRLF after a chunk's data */
    ST_TRAILER,   /* unsigned: trailer lines after the last chunk, up to an empty one */
    ST_FINAL_END, /* signed: the CRLF after the last chunk */
    ST_DONE,
    ST_FAILED
} chunk_state;

struct rd_emu_chunked {
    chunk_state st;
    int is_signed;
    rd_sigv4_params signer;  /* strings borrowed */
    char prev_sig[65];       /* the seed, then the last verified chunk's signature */
    char chunk_sig[65];      /* the signature the current chunk claims */
    EVP_MD_CTX *sha;         /* signed: SHA-256 of the current chunk's data */
    int64_t decoded_length;  /* -1: not declared */
    uint64_t declared;       /* sum of the chunk sizes read so far */
    uint64_t chunk_left;
    uint64_t last_size;      /* signed: the previous data chunk's size */
    int have_chunk;
    rd_buf line;
    char *trailer_value;
    rd_emu_chunked_sink sink;
    void *sink_ctx;
    rd_emu_error err;        /* why it failed (ST_FAILED) */
};

static const char framing_message[] =
    "The request body is not valid aws-chunked encoding or is shorter than x-amz-decoded-content-length";

static int fail(rd_emu_chunked *d, int http_status, const char *code, const char *message)
{
    d->st = ST_FAILED;
    return rd_emu_error_set(&d->err, http_status, code, "%s", message);
}

static int fail_framing(rd_emu_chunked *d)
{
    return fail(d, 400, "IncompleteBody", framing_message);
}

static int fail_internal(rd_emu_chunked *d)
{
    return fail(d, 500, "InternalError", "We encountered an internal error. Please try again.");
}

static int fail_signature(rd_emu_chunked *d)
{
    /* S3's words (as the request's own SignatureDoesNotMatch) */
    return fail(d, 403, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your AWS "
                "Secret Access Key and signing method.");
}

int rd_emu_chunked_new(const rd_sigv4_params *signer, const char *seed_signature, int64_t decoded_length,
                       rd_emu_chunked_sink sink, void *sink_ctx, rd_emu_chunked **out, rd_emu_error *err)
{
    rd_emu_chunked *d = calloc(1, sizeof *d);
    if (!d)
        return rd_emu_error_set(err, 500, "InternalError", "out of memory");
    d->st = ST_HEADER;
    rd_buf_init(&d->line);
    d->decoded_length = decoded_length;
    d->sink = sink;
    d->sink_ctx = sink_ctx;
    if (signer) {
        if (!seed_signature || strlen(seed_signature) != 64) {
            free(d);
            return rd_emu_error_set(err, 400, "InvalidRequest", "a signed aws-chunked body needs the request's signature");
        }
        d->is_signed = 1;
        d->signer = *signer;
        memcpy(d->prev_sig, seed_signature, 65);
        if (!(d->sha = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL)) {
            EVP_MD_CTX_free(d->sha);
            free(d);
            return rd_emu_error_set(err, 500, "InternalError", "out of memory");
        }
    }
    *out = d;
    return 0;
}

void rd_emu_chunked_free(rd_emu_chunked *d)
{
    if (!d)
        return;
    EVP_MD_CTX_free(d->sha);
    rd_buf_free(&d->line);
    free(d->trailer_value);
    free(d);
}

const char *rd_emu_chunked_trailer_value(const rd_emu_chunked *d)
{
    return d ? d->trailer_value : NULL;
}

/* The current chunk's data is complete (or it is the empty last chunk): its signature must be the next link. */
static int verify_chunk(rd_emu_chunked *d)
{
    unsigned char md[32];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    char hash[65], want[65];
    if (!EVP_DigestFinal_ex(d->sha, md, &n) || !EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL))
        return fail_internal(d);
    for (int i = 0; i < 32; i++) {
        hash[2 * i] = hex[md[i] >> 4];
        hash[2 * i + 1] = hex[md[i] & 15];
    }
    hash[64] = '\0';
    rd_error e; /* the signer's (src/aws) */
    if (rd_sigv4_chunk_signature(&d->signer, d->prev_sig, hash, want, &e) != RD_OK ||
        CRYPTO_memcmp(want, d->chunk_sig, 64) != 0)
        return fail_signature(d);
    memcpy(d->prev_sig, d->chunk_sig, 65);
    return 0;
}

/* A chunk header "<hex>[;ext]" (signed: exactly "<hex>;chunk-signature=<64 hex>"), CRLF removed. */
static int header_done(rd_emu_chunked *d, const char *l, size_t n)
{
    uint64_t size = 0;
    size_t i = 0;
    for (; i < n && rd_parse_hex_digit(l[i]) >= 0; i++) {
        size = size * 16 + (uint64_t)rd_parse_hex_digit(l[i]);
        if (size > RD_EMU_CHUNK_SIZE_MAX)
            return fail_framing(d);
    }
    if (i == 0 || (i < n && l[i] != ';'))
        return fail_framing(d);
    if (d->is_signed) {
        static const char ext[] = ";chunk-signature=";
        size_t el = sizeof ext - 1;
        if (n - i != el + 64 || memcmp(l + i, ext, el) != 0)
            return fail_framing(d);
        for (size_t k = i + el; k < n; k++)
            if (rd_parse_hex_digit(l[k]) < 0)
                return fail_framing(d);
        memcpy(d->chunk_sig, l + i + el, 64);
        d->chunk_sig[64] = '\0';
        if (size && d->have_chunk && d->last_size < RD_EMU_CHUNK_SIGNED_MIN)
            return fail(d, 403, "InvalidChunkSizeError",
                        "Only the last chunk is allowed to have a size less than 8192 bytes");
    }
    if (d->decoded_length >= 0 && d->declared + size > (uint64_t)d->decoded_length)
        return fail_framing(d); /* more data than x-amz-decoded-content-length */
    d->declared += size;
    if (size == 0) {
        if (d->is_signed) {
            d->st = ST_FINAL_END;
            return verify_chunk(d);
        }
        d->st = ST_TRAILER;
        return 0;
    }
    d->have_chunk = 1;
    d->last_size = size;
    d->chunk_left = size;
    d->st = ST_DATA;
    return 0;
}

/* A complete line (ending LF) in d->line. */
static int line_done(rd_emu_chunked *d)
{
    char *l = d->line.data;
    size_t n = d->line.len;
    int st = 0;
    if (n < 2 || l[n - 2] != '\r')
        return fail_framing(d);
    n -= 2;
    if (d->st == ST_HEADER) {
        st = header_done(d, l, n);
    } else if (n == 0) {
        d->st = ST_DONE;
    } else if (!d->trailer_value) { /* "name: value" */
        const char *colon = memchr(l, ':', n);
        if (colon) {
            const char *v = colon + 1;
            while (v < l + n && *v == ' ')
                v++;
            if (!(d->trailer_value = strndup(v, (size_t)(l + n - v))))
                return fail_internal(d);
        }
    }
    rd_buf_reset(&d->line);
    return st;
}

/* Two bytes that must be CRLF (after data, or after the signed last chunk). */
static int crlf_byte(rd_emu_chunked *d, char c)
{
    rd_buf_putc(&d->line, c);
    if (d->line.len < 2)
        return 0;
    int ok = memcmp(d->line.data, "\r\n", 2) == 0;
    rd_buf_reset(&d->line);
    if (!ok)
        return fail_framing(d);
    d->st = d->st == ST_DATA_END ? ST_HEADER : ST_DONE;
    return 0;
}

static int failed(const rd_emu_chunked *d, rd_emu_error *err)
{
    if (err)
        *err = d->err;
    return -1;
}

int rd_emu_chunked_feed(rd_emu_chunked *d, const void *data, size_t len, rd_emu_error *err)
{
    const char *p = data;
    while (len && d->st != ST_FAILED) {
        if (d->st == ST_DONE) {
            fail_framing(d); /* bytes after the end */
        } else if (d->st == ST_DATA) {
            size_t take = len < d->chunk_left ? len : (size_t)d->chunk_left;
            if (d->is_signed)
                EVP_DigestUpdate(d->sha, p, take);
            if (d->sink(d->sink_ctx, p, take, &d->err) != 0) {
                d->st = ST_FAILED;
                break;
            }
            p += take;
            len -= take;
            if ((d->chunk_left -= take) == 0) {
                d->st = ST_DATA_END;
                if (d->is_signed)
                    verify_chunk(d);
            }
        } else if (d->st == ST_DATA_END || d->st == ST_FINAL_END) {
            crlf_byte(d, *p++);
            len--;
        } else { /* ST_HEADER, ST_TRAILER: up to LF */
            const char *nl = memchr(p, '\n', len);
            size_t take = nl ? (size_t)(nl - p) + 1 : len;
            if (d->line.len + take > RD_EMU_CHUNK_LINE_MAX) {
                fail_framing(d);
                break;
            }
            if (rd_buf_append(&d->line, p, take) != RD_OK) {
                fail_internal(d);
                break;
            }
            p += take;
            len -= take;
            if (nl)
                line_done(d);
        }
    }
    return d->st == ST_FAILED ? failed(d, err) : 0;
}

int rd_emu_chunked_finish(rd_emu_chunked *d, rd_emu_error *err)
{
    if (d->st == ST_TRAILER && d->line.len) { /* unsigned: a last trailer line without its CRLF */
        if (d->line.len + 2 > RD_EMU_CHUNK_LINE_MAX)
            fail_framing(d);
        else if (rd_buf_puts(&d->line, "\r\n") == RD_OK)
            line_done(d);
        else
            fail_internal(d);
    }
    if (d->st == ST_FAILED)
        return failed(d, err);
    int complete = d->st == ST_DONE || (!d->is_signed && d->st == ST_TRAILER);
    if (!complete || (d->decoded_length >= 0 && d->declared != (uint64_t)d->decoded_length)) {
        fail_framing(d);
        return failed(d, err);
    }
    return 0;
}
