/* libFuzzer harness for smtpd's message content decoder (smtpd/data_decode.c).
 * Build and run: make fuzz (build/fuzz/fuzz_smtpd_data), make fuzz-smoke-fuzz_smtpd_data.
 * The first input byte picks the mode, the line limit and the piece size; the rest
 * is fed to the decoder in pieces.  Checked on every run: no CR ever comes out,
 * every line ends in '\n' and fits the limit, the bytes consumed never exceed the
 * input, and when DATA ends the consumed input ends in "\r\n.\r\n" (or is ".\r\n"). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../smtpd/data_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct check {
    size_t line_max;
};

static int check_line(void *arg, const char *line, size_t len)
{
    const struct check *c = arg;

    if (len == 0 || line[len - 1] != '\n' || len > c->line_max + 1)
        abort();
    if (memchr(line, '\r', len) != NULL || memchr(line, '\n', len - 1) != NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct data_decoder d;
    struct check c;
    size_t pos = 0, step;
    enum data_mode mode;
    const char *in;

    if (size < 1)
        return 0;
    mode = (data[0] & 1) ? DATA_MODE_BDAT : DATA_MODE_DOT;
    c.line_max = 3 + ((data[0] >> 1) & 15) * 8;
    step = 1 + (data[0] >> 5);
    in = (const char *)data + 1;
    size--;
    if (data_decode_init(&d, mode, c.line_max, check_line, &c) < 0)
        return 0;
    while (pos < size && !d.ended) {
        size_t piece = size - pos < step ? size - pos : step, used;
        if (data_decode(&d, in + pos, piece, &used) < 0 || used > piece)
            abort();
        pos += used;
        if (!d.ended && used != piece)
            abort();
    }
    if (d.ended) {
        if (mode != DATA_MODE_DOT)
            abort();
        if (!(pos == 3 && memcmp(in, ".\r\n", 3) == 0)
            && !(pos >= 5 && memcmp(in + pos - 5, "\r\n.\r\n", 5) == 0))
            abort();
    } else if (data_decode_finish(&d) < 0) {
        abort();
    }
    data_decode_free(&d);
    return 0;
}
