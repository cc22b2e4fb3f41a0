/* Fixtures of the store's unit tests: a new Maildir folder below the test's
 * temporary directory, and a file written into one. */
#ifndef TESTS_UNIT_STORE_FIXTURE_H
#define TESTS_UNIT_STORE_FIXTURE_H

#include <stdio.h>

#include "maildir.h"
#include "str.h"
#include "unit.h"

/* A message as the tests that need no particular one write it. */
#define FIXTURE_MSG "Subject: x\n\nx\n"

/* dir (len bytes) becomes the path of a new folder called name. */
static inline void folder(char *dir, size_t len, const char *name)
{
    struct str err = STR_INIT;

    snprintf(dir, len, "%s/%s", unit_tmpdir(), name);
    if (maildir_create(dir, 0700, &err) < 0)
        fprintf(stderr, "maildir_create: %s\n", err.s);
    str_free(&err);
}

/* Writes content to dir/rel ("new/NAME", "cur/NAME:2,S"...). */
static inline void put(const char *dir, const char *rel, const char *content)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    f = fopen(path, "w");
    if (f == NULL)
        return;
    fputs(content, f);
    fclose(f);
}

#endif
