/* The one monotonic clock every deadline and interval is measured on: it never jumps
 * when the wall clock is set.  Wall-clock time (time(2)) is for what a person reads
 * (log stamps, Date: headers, queue file times), never for timeouts. */
#ifndef POSTERN_CLOCK_H
#define POSTERN_CLOCK_H

/* Milliseconds since an arbitrary fixed point (boot). */
long long clock_ms(void);

/* Milliseconds left until deadline (a clock_ms() value), 0 when it has passed, and at
 * most INT_MAX: ready for poll(2).  A deadline < 0 means none: returns -1. */
int clock_left_ms(long long deadline);

/* The deadline timeout_ms from now, or -1 (none) when timeout_ms < 0. */
long long clock_deadline(long long timeout_ms);

#endif
