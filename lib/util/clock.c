/* Monotonic time in milliseconds and the deadline arithmetic built on it (clock.h). */
#include "clock.h"

#include <limits.h>
#include <time.h>

long long clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int clock_left_ms(long long deadline)
{
    long long left;

    if (deadline < 0)
        return -1;
    left = deadline - clock_ms();
    if (left <= 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

long long clock_deadline(long long timeout_ms)
{
    long long now;

    if (timeout_ms < 0)
        return -1;
    now = clock_ms();
    return timeout_ms > LLONG_MAX - now ? LLONG_MAX : now + timeout_ms;
}
