/* libFuzzer harness: addr_parse_path() on arbitrary bytes, with every flag
 * combination; an accepted address must survive addr_quote() and a second parse, and
 * its written form must fit the path limit.
 * Build and run: make fuzz (build/fuzz/fuzz_addr), make fuzz-smoke-fuzz_addr. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct str in = STR_INIT, a = STR_INIT, q = STR_INIT, b = STR_INIT;

    str_set(&in, data, size);       /* a NUL inside ends the string, as in a C caller */
    for (int flags = 0; flags < 8; flags++) {
        const char *rest = NULL, *why = NULL;
        if (addr_parse_path(in.s, flags, &a, &rest, &why) != 0) {
            if (why == NULL)
                abort();
            continue;
        }
        if (rest == NULL || rest < in.s || rest > in.s + strlen(in.s))
            abort();
        if (a.len == 0 || strcmp(a.s, "postmaster") == 0)
            continue;
        str_clear(&q);
        str_appendc(&q, '<');
        addr_quote(a.s, &q);
        str_appendc(&q, '>');
        if (q.len > ADDR_PATH_MAX)
            abort();
        if (addr_parse_path(q.s, flags, &b, &rest, &why) != 0 || strcmp(a.s, b.s) != 0)
            abort();
    }
    str_free(&in);
    str_free(&a);
    str_free(&q);
    str_free(&b);
    return 0;
}
