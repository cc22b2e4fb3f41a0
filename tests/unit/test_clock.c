/* Unit tests for lib/util/clock.c: the monotonic clock and deadline arithmetic. */
#include <limits.h>
#include <time.h>

#include "clock.h"
#include "unit.h"

TEST(monotonic_and_in_milliseconds)
{
    struct timespec ts = { 0, 20 * 1000000 };
    long long a = clock_ms(), b;

    nanosleep(&ts, NULL);
    b = clock_ms();
    CHECK(b >= a + 20);
    CHECK(b < a + 5000);
}

TEST(deadlines)
{
    long long d;

    CHECK(clock_deadline(-1) == -1);
    CHECK(clock_left_ms(-1) == -1);
    d = clock_deadline(0);
    CHECK(d >= 0);
    CHECK(clock_left_ms(d) == 0);
    d = clock_deadline(60000);
    CHECK(clock_left_ms(d) > 59000 && clock_left_ms(d) <= 60000);
    CHECK(clock_left_ms(clock_ms() - 5) == 0);
    /* Huge timeouts neither overflow nor exceed what poll() takes. */
    d = clock_deadline(LLONG_MAX);
    CHECK(d == LLONG_MAX);
    CHECK(clock_left_ms(d) == INT_MAX);
}
