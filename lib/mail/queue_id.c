/* Queue ids: 9 hex digits of seconds, 5 of microseconds, 7 of pid, upper case
 * ("%09llX%05lX%07X").  Unique on the host because no process issues two ids in the
 * same microsecond and no two live processes share a pid; sortable by time because
 * the seconds and microseconds come first with fixed widths.  queue_id_valid()
 * checks names read from queue directories (untrusted). */
#include "queue.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static long long last_sec = -1;
static long last_usec = -1;

static void now_usec(long long *sec, long *usec)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    *sec = (long long)tv.tv_sec;
    *usec = (long)tv.tv_usec;
}

void queue_id_new(char id[QUEUE_ID_SIZE])
{
    long long sec;
    long usec;

    now_usec(&sec, &usec);
    /* Never the same microsecond twice in one process: wait for the clock to move.
     * When the clock was stepped back by more than a second, waiting could take too
     * long: then count on from the last id instead. */
    while (sec < last_sec || (sec == last_sec && usec <= last_usec)) {
        long long behind = (last_sec - sec) * 1000000LL + (last_usec - usec);
        if (behind > 1000000LL) {
            sec = last_sec;
            usec = last_usec + 1;
            if (usec >= 1000000) {
                sec++;
                usec = 0;
            }
            break;
        }
        now_usec(&sec, &usec);
    }
    last_sec = sec;
    last_usec = usec;
    snprintf(id, QUEUE_ID_SIZE, "%09llX%05lX%07X", sec & 0xFFFFFFFFFLL, usec,
             (unsigned)getpid() & 0xFFFFFFFu);
}

static bool is_uhex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static unsigned long long hex_value(const char *s, size_t n)
{
    unsigned long long v = 0;

    for (size_t i = 0; i < n; i++)
        v = v * 16 + (unsigned)(s[i] <= '9' ? s[i] - '0' : s[i] - 'A' + 10);
    return v;
}

bool queue_id_valid(const char *id)
{
    size_t i;

    if (id == NULL)
        return false;
    for (i = 0; i < QUEUE_ID_LEN; i++)
        if (!is_uhex(id[i]))
            return false;
    if (id[i] != '\0')
        return false;
    return hex_value(id + 9, 5) < 1000000;
}

time_t queue_id_time(const char *id)
{
    if (!queue_id_valid(id))
        return (time_t)-1;
    return (time_t)hex_value(id, 9);
}
