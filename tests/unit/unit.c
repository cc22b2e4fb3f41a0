/* Runner for the unit-test harness declared in unit.h. */
#include "unit.h"

#include <stdlib.h>
#include <unistd.h>

#define UNIT_MAX_TESTS 512

static struct { const char *name; unit_fn fn; } tests[UNIT_MAX_TESTS];
static int ntests;
int unit_failures_in_test;
static char tmpdir[256];

void unit_register(const char *name, unit_fn fn)
{
    if (ntests == UNIT_MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

const char *unit_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof(tmpdir), "%s/postern-unit.XXXXXX", base ? base : "/tmp");
        if (mkdtemp(tmpdir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    const char *only = argc > 1 ? argv[1] : NULL;

    for (int i = 0; i < ntests; i++) {
        if (only && strcmp(only, tests[i].name) != 0)
            continue;
        unit_failures_in_test = 0;
        tests[i].fn();
        if (unit_failures_in_test == 0) {
            passed++;
        } else {
            fprintf(stderr, "FAIL %s\n", tests[i].name);
            failed++;
        }
    }
    printf("%s: %d passed, %d failed\n", argv[0], passed, failed);
    return failed ? 1 : 0;
}
