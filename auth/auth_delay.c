/* The per-client failure table of auth(8).  Client addresses come from the
 * connection the caller passed (getpeername) and are only compared as bounded
 * strings. */
#include "auth_delay.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

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

long long auth_delay_failed(const char *client, const char *account)
{
    time_t now = time(NULL);
    struct fail_slot *s = slot_find(client), *oldest = &slots[0];
    unsigned earlier;
    long long delay;

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
    (void)account;
    if (s->count < AUTH_DELAY_MAX_MS / 1000)
        s->count++;
    s->last = now > 0 ? now : 1;
    delay = AUTH_DELAY_BASE_MS + 1000LL * earlier;
    return delay > AUTH_DELAY_MAX_MS ? AUTH_DELAY_MAX_MS : delay;
}

long long auth_delay_ok(const char *client, const char *account)
{
    struct fail_slot *s = slot_find(client);

    (void)account;
    if (s != NULL)
        memset(s, 0, sizeof(*s));
    return 0;
}
