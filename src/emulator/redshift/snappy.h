/* snappy.h — a Snappy compressor (the raw format, no framing), for the Parquet pages UNLOAD writes: Redshift
 * compresses them with SNAPPY. Greedy LZ77 over 64 KiB blocks, matches of 4 bytes or more found through a hash
 * of the next 4 bytes, as the format's reference compressor does; the output is a valid stream for any
 * decompressor. Compression only (the emulator never reads Snappy). Pure functions on caller memory: thread
 * safe, nothing allocated. */
#ifndef RD_EMULATOR_SNAPPY_H
#define RD_EMULATOR_SNAPPY_H

#include <stddef.h>
#include <stdint.h>

/* The most bytes rd_emu_snappy_compress writes for n bytes of input. */
size_t rd_emu_snappy_max_compressed(size_t n);

/* Compresses in[0..n) into out, which holds at least rd_emu_snappy_max_compressed(n) bytes; returns the bytes
 * written. n must be below 2^32 (the format's length preamble). */
size_t rd_emu_snappy_compress(const uint8_t *in, size_t n, uint8_t *out);

#endif
