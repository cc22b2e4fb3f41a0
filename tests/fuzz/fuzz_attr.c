/* libFuzzer harness for attr_read(): arbitrary bytes arrive through a pipe and are
 * read frame after frame until EOF or an error.
 * Build and run: make fuzz (build/fuzz/fuzz_attr), make fuzz-smoke-fuzz_attr. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "attr.h"
#include "stream.h"

#define FUZZ_INPUT_MAX 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct stream *st;
    int p[2];

    if (size > FUZZ_INPUT_MAX || pipe2(p, O_CLOEXEC) < 0)
        return 0;
    /* The whole input must fit in the pipe so one thread can write then read. */
    (void)fcntl(p[1], F_SETPIPE_SZ, FUZZ_INPUT_MAX);
    for (size_t off = 0; off < size;) {
        ssize_t n = write(p[1], data + off, size - off);
        if (n <= 0) {
            close(p[0]);
            close(p[1]);
            return 0;
        }
        off += (size_t)n;
    }
    close(p[1]);
    st = stream_fdopen(p[0]);
    stream_set_timeout(st, 1000);
    /* A small limit exercises the size checks; frames stay small anyway. */
    while (attr_read(st, &al, size % 2 ? 4096 : ATTR_FRAME_MAX) == 1) {
        long long v;
        (void)attr_get(&al, "req");
        (void)attr_get_int(&al, "size", &v);
    }
    attr_free(&al);
    stream_close(st);
    return 0;
}
