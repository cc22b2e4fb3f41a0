/* The per-client failure table of auth(8).  Client addresses come from the
 * requesting daemon (which read them from the kernel) and are only compared as
 * bounded strings. */
#include "auth_delay.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "server.h"

#define ADDR_MAX 64                 /* longest address text kept, bytes */

struct fail_slot {
    char addr[ADDR_MAX];
    time_t last;                    /* 0: free */
    unsigned count;
};

static struct fail_slot slots[AUTH_DELAY_SLOTS];

static struct fail_slot *slot_find(const char *client)
{
    for (size_t i = 0; i < AUTH_DELAY_SLOTS; i++)
        if (slots[i].last != 0 && strncmp(slots[i].addr, client, ADDR_MAX) == 0)
            return &slots[i];
    return NULL;
}

unsigned auth_delay_fail(const char *client, time_t now)
{
    struct fail_slot *s = slot_find(client), *oldest = &slots[0];
    unsigned earlier, delay;

    if (s == NULL) {
        /* a free slot, an expired one, or else the least recently used */
        for (size_t i = 0; i < AUTH_DELAY_SLOTS; i++) {
            if (slots[i].last == 0 || now - slots[i].last > AUTH_DELAY_WINDOW) {
                oldest = &slots[i];
                break;
            }
            if (slots[i].last < oldest->last)
                oldest = &slots[i];
        }
        s = oldest;
        memset(s, 0, sizeof(*s));
        strncpy(s->addr, client, ADDR_MAX - 1);
    } else if (now - s->last > AUTH_DELAY_WINDOW || now < s->last) {
        s->count = 0;
    }
    earlier = s->count;
    if (s->count < AUTH_DELAY_MAX)
        s->count++;
    s->last = now > 0 ? now : 1;
    delay = AUTH_DELAY_BASE + earlier;
    return delay > AUTH_DELAY_MAX ? AUTH_DELAY_MAX : delay;
}

void auth_delay_clear(const char *client)
{
    struct fail_slot *s = slot_find(client);

    if (s != NULL)
        memset(s, 0, sizeof(*s));
}

void auth_delay_sleep(unsigned seconds)
{
    struct timespec left = { .tv_sec = seconds, .tv_nsec = 0 };

    while (!server_stop && nanosleep(&left, &left) < 0 && errno == EINTR)
        ;
}
