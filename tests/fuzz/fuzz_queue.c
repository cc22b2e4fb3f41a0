/* libFuzzer harness: queue_file_open() and queue_file_content() on arbitrary bytes.
 * Build and run: make fuzz (build/fuzz/fuzz_queue), make fuzz-smoke-fuzz_queue. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_fn(void *arg, const char *p, size_t len)
{
    size_t *total = arg;
    (void)p;
    *total += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    struct queue_file qf;
    struct str err = STR_INIT;
    int fd;

    if (path[0] == '\0')
        snprintf(path, sizeof(path), "/tmp/fuzz_queue.%ld", (long)getpid());
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0)
        abort();
    if (write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
    if (queue_file_open(path, O_RDWR, &qf, &err) == 0) {
        size_t total = 0;
        if (queue_file_content(&qf, count_fn, &total) != 0 || total != qf.content_size)
            abort();
        for (size_t i = 0; i < qf.nrcpt; i++)
            if (queue_mark_done(&qf, i) != 0 || !qf.rcpt[i].done)
                abort();
        queue_file_close(&qf);
    } else if (errno != EINVAL) {
        abort();
    }
    str_free(&err);
    return 0;
}
