/* master: a service at its process limit with no child available.  Its clients
 * would otherwise wait silently in the listen backlog until they give up; after
 * BUSY_GRACE_MS master accepts them itself, writes one canned line and closes,
 * never blocking and never reading what they send.  The line is chosen by the
 * service's command, whatever its name or port in master.conf:
 *
 *   smtpd    "421 4.7.0 Service busy, try again later"
 *   pop3d    "-ERR [SYS/TEMP] Service busy"
 *   imapd    "* BYE Service busy"
 *
 * and none at all (accept and close) when the service speaks TLS from the first
 * byte (smtpd_tls_wrappermode, pop3d_tls_wrapper, imapd_tls_wrapper set with -o or
 * in postern.conf).  Other commands and unix services keep the backlog. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conf.h"
#include "log.h"
#include "master.h"

struct busy_rule {
    const char *command;
    const char *text;
    const char *wrapper_key;        /* a yes/no key: TLS from the first byte */
};

static const struct busy_rule busy_rules[] = {
    { "smtpd", "421 4.7.0 Service busy, try again later\r\n", "smtpd_tls_wrappermode" },
    { "pop3d", "-ERR [SYS/TEMP] Service busy\r\n", "pop3d_tls_wrapper" },
    { "imapd", "* BYE Service busy\r\n", "imapd_tls_wrapper" },
};

static bool yes(const char *v)
{
    return strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0
           || strcmp(v, "on") == 0;
}

/* The value of key for this service: its last -o, else postern.conf. */
static bool service_bool(const struct master_service *def, const struct conf *conf,
                         const char *key)
{
    size_t klen = strlen(key);
    const char *v = NULL;
    int k;

    for (size_t i = 0; i + 1 < def->nargs; i++)
        if (strcmp(def->args[i], "-o") == 0) {
            const char *kv = def->args[++i];
            if (strncmp(kv, key, klen) == 0 && kv[klen] == '=')
                v = kv + klen + 1;
        }
    if (v != NULL)
        return yes(v);
    k = conf_key_find(key);
    return k >= 0 && conf_bool(conf, (enum conf_key)k);
}

void svc_busy_setup(struct service *s, const struct master_service *def,
                    const struct conf *conf)
{
    s->busy = BUSY_NONE;
    s->busy_text = NULL;
    s->full_since = -1;
    s->busy_logged = -1;
    if (def->type != MASTER_INET)
        return;
    for (size_t i = 0; i < sizeof(busy_rules) / sizeof(busy_rules[0]); i++) {
        const struct busy_rule *r = &busy_rules[i];
        if (strcmp(def->command, r->command) != 0)
            continue;
        if (service_bool(def, conf, r->wrapper_key)) {
            s->busy = BUSY_CLOSE;
        } else {
            s->busy = BUSY_REPLY;
            s->busy_text = r->text;
        }
        return;
    }
}

bool svc_full(const struct service *s)
{
    return s->busy != BUSY_NONE && s->state == SVC_WAITING && s->navail == 0
           && s->nchild >= (size_t)s->limit && s->nfds > 0;
}

/* Without blocking: the line (a fresh socket's buffer takes it), then what the
 * client sent is dropped, so that close() does not reset the connection before the
 * client has read the line. */
static void busy_answer(const struct service *s, int fd)
{
    char sink[4096];

    if (s->busy == BUSY_REPLY)
        (void)send(fd, s->busy_text, strlen(s->busy_text), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)shutdown(fd, SHUT_WR);
    for (int i = 0; i < 4; i++)
        if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
            break;
    close(fd);
}

void svc_busy_accept(struct service *s, int listen_fd)
{
    long long now = clock_ms();

    for (int i = 0; i < BUSY_ACCEPT_MAX; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
                && errno != ECONNABORTED)
                log_warn("service %s: accept: %s", s->name, strerror(errno));
            break;
        }
        busy_answer(s, fd);
        s->busy_count++;
    }
    if (s->busy_count > 0
        && (s->busy_logged < 0 || now - s->busy_logged >= BUSY_LOG_INTERVAL_MS)) {
        log_warn("service %s: all %d processes busy: %lu connection%s answered "
                 "\"service busy\"%s (logged once a minute)", s->name, s->limit,
                 s->busy_count, s->busy_count == 1 ? "" : "s",
                 s->busy_logged < 0 ? "" : " since the last report");
        s->busy_logged = now;
        s->busy_count = 0;
    }
}
