/* aws_chunked.h — the decoder of S3's aws-chunked upload bodies, fed in pieces of any size (down to one byte):
 * "<hex>[;ext]\r\n<data>\r\n" ... "0[;ext]\r\n" then trailers (unsigned) or "\r\n" (signed). Signed bodies
 * (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD) carry ";chunk-signature=<64 hex>" on every chunk,
 * each checked against the chain seeded by the request's signature (rd_sigv4_chunk_signature).
 * Owns framing, its bounds and chunk signatures. Does not own the store, checksums or HTTP replies. */
#ifndef RD_EMULATOR_AWS_CHUNKED_H
#define RD_EMULATOR_AWS_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "emulator/emu_error.h"
#include "redduck/sigv4.h"

#define RD_EMU_CHUNK_LINE_MAX 4096                  /* a chunk header or trailer line, CRLF included */
#define RD_EMU_CHUNK_SIZE_MAX ((uint64_t)16 << 20)  /* one chunk's data */
#define RD_EMU_CHUNK_SIGNED_MIN 8192                /* S3: every signed chunk but the last holds at least this */

typedef struct rd_emu_chunked rd_emu_chunked;

/* Receives the decoded data as it comes (unverified until the chunk's signature is checked: a consumer
 * publishes nothing before rd_emu_chunked_finish succeeds). 0, or -1 with err filled: that stops the decoder
 * and its err is returned. */
typedef int (*rd_emu_chunked_sink)(void *ctx, const void *data, size_t len, rd_emu_error *err);

/* signer NULL: unsigned framing (extensions ignored, trailers kept). Otherwise signed framing, verified with
 * signer's secret, region, service and time from the seed signature on; signer's strings are borrowed and must
 * outlive the decoder, seed_signature is copied. decoded_length: x-amz-decoded-content-length, or -1 when the
 * request has none. 0, or -1 with err: 400 InvalidRequest (signed without a seed signature), 500 InternalError
 * (out of memory). */
int rd_emu_chunked_new(const rd_sigv4_params *signer, const char *seed_signature, int64_t decoded_length,
                       rd_emu_chunked_sink sink, void *sink_ctx, rd_emu_chunked **out, rd_emu_error *err);
void rd_emu_chunked_free(rd_emu_chunked *d);

/* Decodes the next piece of the body: 0, or -1 with err (may be NULL). Once it failed, every later call fails
 * the same way. Failures are S3's replies: 400 IncompleteBody (bad framing, a bound exceeded, data past the declared
 * length), 403 SignatureDoesNotMatch (a chunk whose signature is not the one computed), 403
 * InvalidChunkSizeError (a signed chunk under 8 KiB that is not the last), 500 InternalError (out of memory),
 * or the sink's own error. */
int rd_emu_chunked_feed(rd_emu_chunked *d, const void *data, size_t len, rd_emu_error *err);

/* The body has ended: 0 when it was complete (and decoded_length, when given, matched), else as feed. */
int rd_emu_chunked_finish(rd_emu_chunked *d, rd_emu_error *err);

/* Unsigned bodies: the first trailer ("name: value"), borrowed, or NULL. */
const char *rd_emu_chunked_trailer_value(const rd_emu_chunked *d);

#endif
