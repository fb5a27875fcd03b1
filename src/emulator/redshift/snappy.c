/* snappy.c — see snappy.h. The stream: the uncompressed length as a varint, then elements whose tag's low two
 * bits say literal (00: a length, then the bytes) or copy (01: 1-byte offset, 4..11 bytes; 10: 2-byte
 * offset, 1..64 bytes) of earlier output. */
#include "emulator/redshift/snappy.h"

#include <string.h>

#define RD_SNAPPY_BLOCK 65536u
#define RD_SNAPPY_HASH_BITS 14

size_t rd_emu_snappy_max_compressed(size_t n)
{
    return 32 + n + n / 6;
}

static uint32_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t hash32(uint32_t v)
{
    return (v * 0x1e35a7bdu) >> (32 - RD_SNAPPY_HASH_BITS);
}

static uint8_t *put_literal(uint8_t *op, const uint8_t *lit, size_t len)
{
    size_t n = len - 1;
    if (n < 60) {
        *op++ = (uint8_t)(n << 2);
    } else {
        int bytes = n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x1000000 ? 3 : 4;
        *op++ = (uint8_t)((59 + bytes) << 2);
        for (int i = 0; i < bytes; i++)
            *op++ = (uint8_t)(n >> (8 * i));
    }
    memcpy(op, lit, len);
    return op + len;
}

/* One copy element of 4..64 bytes (1..64 with a 2-byte offset; offset < 65536). */
static uint8_t *put_copy1(uint8_t *op, size_t offset, size_t len)
{
    if (len >= 4 && len < 12 && offset < 2048) {
        *op++ = (uint8_t)(1 | ((len - 4) << 2) | ((offset >> 8) << 5));
        *op++ = (uint8_t)(offset & 0xFF);
    } else {
        *op++ = (uint8_t)(2 | ((len - 1) << 2));
        *op++ = (uint8_t)(offset & 0xFF);
        *op++ = (uint8_t)(offset >> 8);
    }
    return op;
}

static uint8_t *put_copy(uint8_t *op, size_t offset, size_t len)
{
    while (len >= 68) {
        op = put_copy1(op, offset, 64);
        len -= 64;
    }
    if (len > 64) { /* 65..67: leave at least 4 for the last element */
        op = put_copy1(op, offset, 60);
        len -= 60;
    }
    return put_copy1(op, offset, len);
}

/* One block of at most RD_SNAPPY_BLOCK bytes; matches stay inside it, so every offset is below 65536. */
static uint8_t *compress_block(const uint8_t *in, size_t n, uint8_t *op, uint16_t *table)
{
    const uint8_t *lit = in;
    if (n >= 15) {
        memset(table, 0, sizeof(uint16_t) << RD_SNAPPY_HASH_BITS);
        const uint8_t *ip = in + 1;
        const uint8_t *limit = in + n - 4; /* the last position a 4-byte load may start at */
        uint32_t skip = 32;                /* speeds past input that does not compress */
        while (ip <= limit) {
            uint32_t cur = load32(ip);
            uint32_t h = hash32(cur);
            const uint8_t *cand = in + table[h];
            table[h] = (uint16_t)(ip - in);
            if (cand >= ip || load32(cand) != cur) {
                ip += skip++ >> 5;
                continue;
            }
            skip = 32;
            if (ip > lit)
                op = put_literal(op, lit, (size_t)(ip - lit));
            const uint8_t *end = in + n;
            size_t len = 4;
            while (ip + len + 8 <= end) { /* eight bytes at a time: the first that differs ends the match */
                uint64_t x = load64(ip + len) ^ load64(cand + len);
                if (x) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
                    len += (size_t)__builtin_clzll(x) >> 3;
#else
                    len += (size_t)__builtin_ctzll(x) >> 3;
#endif
                    goto matched;
                }
                len += 8;
            }
            while (ip + len < end && cand[len] == ip[len])
                len++;
        matched:
            op = put_copy(op, (size_t)(ip - cand), len);
            ip += len;
            lit = ip;
            if (ip <= limit) /* the position before the next one joins the table too */
                table[hash32(load32(ip - 1))] = (uint16_t)(ip - 1 - in);
        }
    }
    if (lit < in + n)
        op = put_literal(op, lit, (size_t)(in + n - lit));
    return op;
}

size_t rd_emu_snappy_compress(const uint8_t *in, size_t n, uint8_t *out)
{
    uint8_t *op = out;
    uint64_t v = n;
    while (v >= 0x80) {
        *op++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *op++ = (uint8_t)v;
    uint16_t table[1u << RD_SNAPPY_HASH_BITS];
    for (size_t off = 0; off < n; off += RD_SNAPPY_BLOCK) {
        size_t len = n - off < RD_SNAPPY_BLOCK ? n - off : RD_SNAPPY_BLOCK;
        op = compress_block(in + off, len, op, table);
    }
    return (size_t)(op - out);
}
