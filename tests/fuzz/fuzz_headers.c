/* libFuzzer harness for lib/mail/headers.c: arbitrary bytes as a message header
 * section.  Build and run: make fuzz (build/fuzz/fuzz_headers),
 * make fuzz-smoke-fuzz_headers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "headers.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    struct header_reader hr; struct header_field f; size_t n = 0;
    header_reader_init(&hr, buf, size);
    while (header_next(&hr, &f) == 1) {
        if (f.raw < buf || f.raw + f.raw_len > buf + size || f.name_len == 0) abort();
        if (f.value[f.value_len] != '\0') abort();
        n++;
    }
    if (hr.pos > size) abort();
    if (header_section_len(buf, size) != hr.pos) abort();
    header_reader_free(&hr);
    (void)header_count(buf, size, "delivered-to");
    free(buf);
    return 0;
}
