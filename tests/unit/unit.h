/* Minimal unit-test harness for lib/: each tests/unit/test_*.c is one program.
 * TEST() registers a function; CHECK() records a failure and goes on; the program
 * prints "N passed, N failed" and exits non-zero when anything failed. */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

typedef void (*unit_fn)(void);
void unit_register(const char *name, unit_fn fn);
extern int unit_failures_in_test;

#define TEST(name)                                                          \
    static void test_##name(void);                                          \
    __attribute__((constructor)) static void register_##name(void)         \
    { unit_register(#name, test_##name); }                                  \
    static void test_##name(void)

#define CHECK(expr)                                                         \
    do {                                                                    \
        if (!(expr)) {                                                      \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__,        \
                    __LINE__, #expr);                                       \
            unit_failures_in_test++;                                        \
        }                                                                   \
    } while (0)

#define CHECK_STR(got, want)                                                \
    do {                                                                    \
        const char *g_ = (got), *w_ = (want);                               \
        if (g_ == NULL || w_ == NULL ? g_ != w_ : strcmp(g_, w_) != 0) {    \
            fprintf(stderr, "  %s:%d: got \"%s\", want \"%s\"\n", __FILE__, \
                    __LINE__, g_ ? g_ : "(null)", w_ ? w_ : "(null)");      \
            unit_failures_in_test++;                                        \
        }                                                                   \
    } while (0)

/* A fresh empty directory for the test's files; removed at exit. */
const char *unit_tmpdir(void);

#endif
