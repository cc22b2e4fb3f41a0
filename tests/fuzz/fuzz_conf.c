/* libFuzzer harness for the postern.conf parser: each input becomes postern.conf in
 * a private temporary directory and goes through conf_load(); when it loads, every
 * key is read back through the getter of its type.
 * Build and run: make fuzz (build/fuzz/fuzz_conf), make fuzz-smoke-fuzz_conf. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "str.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char path[96];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/fuzz_conf.XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
        snprintf(path, sizeof(path), "%s/postern.conf", dir);
    }
    FILE *f = fopen(path, "w");
    if (f == NULL)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);

    struct str err = STR_INIT;
    str_init(&err);
    struct conf *c = conf_load(dir, &err);
    if (c == NULL) {
        /* An error always says where. */
        if (err.len == 0)
            abort();
    } else {
        for (size_t i = 0; i < conf_ndefaults; i++) {
            enum conf_key k = (enum conf_key)i;
            switch (conf_defaults[i].type) {
            case CONF_COUNT: (void)conf_count(c, k); break;
            case CONF_BOOL: (void)conf_bool(c, k); break;
            case CONF_TIME: (void)conf_time_ms(c, k); break;
            case CONF_SIZE: (void)conf_size(c, k); break;
            case CONF_LIST: case CONF_DOMAINS: case CONF_CIDRS: case CONF_ADDRS:
            case CONF_ADDRPORTS:
                strv_free(conf_list(c, k));
                break;
            default: (void)conf_str(c, k); break;
            }
            (void)conf_raw(c, k);
        }
        conf_free(c);
    }
    str_free(&err);
    return 0;
}
