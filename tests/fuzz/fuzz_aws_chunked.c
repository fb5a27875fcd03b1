/* fuzz_aws_chunked.c — libFuzzer target: arbitrary bytes as an aws-chunked body, signed and unsigned, fed to the
 * decoder in pieces whose sizes the input also chooses. Byte 0 picks the mode, byte 1 seeds the piece sizes;
 * whatever the framing, the decoder must end cleanly and never hand more data to its sink than was declared. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "emulator/s3/aws_chunked.h"

typedef struct sink_state {
    uint64_t got;
} sink_state;

static int sink(void *ctx, const void *data, size_t len, rd_emu_error *err)
{
    (void)data;
    (void)err;
    ((sink_state *)ctx)->got += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* called by libFuzzer */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int is_signed = data[0] & 1;
    int64_t declared = (data[0] & 2) ? -1 : (int64_t)(data[0] >> 2) * 1024;
    uint32_t seed = data[1];
    data += 2;
    size -= 2;
    rd_sigv4_params p = { "s3", "us-east-1", 1369353600, "AKIAIOSFODNN7EXAMPLE",
                          "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL, 1, 0, 0, 0 };
    sink_state st = { 0 };
    rd_emu_chunked *d = NULL;
    rd_emu_error err;
    if (rd_emu_chunked_new(is_signed ? &p : NULL, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
                           declared, sink, &st, &d, &err) != 0)
        abort();
    size_t off = 0;
    while (off < size) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 97;
        if (n > size - off)
            n = size - off;
        if (rd_emu_chunked_feed(d, data + off, n, &err) != 0)
            break;
        off += n;
    }
    int s = rd_emu_chunked_finish(d, &err);
    if (declared >= 0 && st.got > (uint64_t)declared)
        abort();
    if (s == 0 && declared >= 0 && st.got != (uint64_t)declared)
        abort();
    (void)rd_emu_chunked_trailer_value(d);
    rd_emu_chunked_free(d);
    return 0;
}
