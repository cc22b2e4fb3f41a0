/* master's status file, QUEUE/pid/master.status, for "postern status": one line per
 * service with its state, the number of failed processes and the last failure, in
 * the format master(8) documents.  Rewritten (temporary file and rename, so readers
 * see a whole file) only when what it says changes; removed on a clean stop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "master.h"
#include "proto.h"
#include "str.h"

static struct str last;

static const char *state_word(const struct service *s)
{
    switch (s->state) {
    case SVC_UNBOUND:
        return "unbound";
    case SVC_THROTTLED:
        return "throttled";
    case SVC_RETIRED:
        return "retired";
    case SVC_ARMED:
    case SVC_WAITING:
        break;
    }
    return "running";
}

void master_status_write(long long now)
{
    struct str text = STR_INIT;
    time_t wall = time(NULL);

    str_init(&text);
    /* one line: the error text is master's own, but may quote a file */
    char why[sizeof(master.reload_error)];
    snprintf(why, sizeof(why), "%s", master.reload_error[0] != '\0' ? master.reload_error : "-");
    for (char *p = why; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    str_printf(&text, "%s\npid %ld\nreloads %u\nreload_error %s\n",
               PROTO_MASTER_STATUS_VERSION, (long)master.pid, master.reloads, why);
    for (size_t i = 0; i < master.nsvc; i++) {
        const struct service *s = master.svc[i];
        long long until = 0;
        if (s->state == SVC_RETIRED)
            continue;
        if ((s->state == SVC_THROTTLED || s->state == SVC_UNBOUND) && s->deadline_ms > now)
            until = (long long)wall + (s->deadline_ms - now + 999) / 1000;
        str_printf(&text, "service %s %s %u %lld %s\n", s->name, state_word(s), s->failures,
                   until, s->last_failure[0] != '\0' ? s->last_failure : "-");
    }
    if (last.s != NULL && last.len == text.len && memcmp(last.s, text.s, text.len) == 0) {
        str_free(&text);
        return;
    }
    int fd = open(PROTO_MASTER_STATUS ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
                  | O_NOFOLLOW | O_NOCTTY, 0644);
    if (fd < 0) {
        log_warn("open %s.tmp: %s", PROTO_MASTER_STATUS, strerror(errno));
    } else {
        bool ok = write(fd, text.s, text.len) == (ssize_t)text.len;
        if (close(fd) < 0)
            ok = false;
        if (!ok || rename(PROTO_MASTER_STATUS ".tmp", PROTO_MASTER_STATUS) < 0) {
            log_warn("write %s: %s", PROTO_MASTER_STATUS, strerror(errno));
            unlink(PROTO_MASTER_STATUS ".tmp");
        }
    }
    str_free(&last);
    last = text;
}

void master_status_remove(void)
{
    unlink(PROTO_MASTER_STATUS);
}
