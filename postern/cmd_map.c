/* "postern map build FILE": compiles a text map into FILE.cdb. */
#include <stdio.h>
#include <string.h>

#include "map.h"
#include "postern.h"
#include "str.h"

int cmd_map(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[1], "build") != 0)
        cmd_usage("map");
    struct str err = STR_INIT;
    str_init(&err);
    for (int i = 2; i < argc; i++) {
        long n = map_build(argv[i], &err);
        if (n < 0)
            cmd_fail("%s", err.s);
        printf("%s.cdb: %ld entries\n", argv[i], n);
    }
    str_free(&err);
    return 0;
}
