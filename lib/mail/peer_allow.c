/* SO_PEERCRED checks of the login sockets (see peer_allow.h).  The allowed users come
 * from master.conf and postern.conf, which root owns; the peer's uid from the kernel. */
#include "peer_allow.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "master_conf.h"
#include "str.h"

static void allow_add(struct peer_allow *pa, uid_t uid)
{
    for (size_t i = 0; i < pa->n; i++)
        if (pa->uid[i] == uid)
            return;
    if (pa->n < PEER_ALLOW_MAX)
        pa->uid[pa->n++] = uid;
}

int peer_allow_load(const struct conf *c, bool (*calls)(const struct master_service *svc),
                    struct peer_allow *pa, struct str *err)
{
    struct master_conf mc;
    struct str path = STR_INIT;
    int rc = 0;

    memset(pa, 0, sizeof(*pa));
    if (geteuid() != 0) {
        /* an instance of an ordinary user: every daemon runs as that user */
        allow_add(pa, geteuid());
        return 0;
    }
    allow_add(pa, 0);
    str_printf(&path, "%s/master.conf", conf_str(c, CONF_config_directory));
    memset(&mc, 0, sizeof(mc));
    if (master_conf_load(path.s, &mc, err) < 0) {
        str_free(&path);
        return -1;
    }
    for (size_t i = 0; i < mc.nsvc && rc == 0; i++) {
        const struct master_service *svc = &mc.svc[i];
        const char *user = svc->user != NULL ? svc->user : conf_str(c, CONF_mail_owner);
        struct passwd *pw;

        if (!calls(svc))
            continue;
        errno = 0;
        pw = getpwnam(user);
        if (pw == NULL) {
            str_clear(err);
            str_printf(err, "%s:%u: service %s: unknown user \"%s\"", path.s, svc->line,
                       svc->name, user);
            rc = -1;
        } else if (pa->n == PEER_ALLOW_MAX) {
            str_clear(err);
            str_printf(err, "%s: more than %d users call one login socket", path.s,
                       PEER_ALLOW_MAX);
            rc = -1;
        } else {
            allow_add(pa, pw->pw_uid);
        }
    }
    master_conf_free(&mc);
    str_free(&path);
    return rc;
}

bool peer_allow_check(const struct peer_allow *pa, int fd, const char *what)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
        log_warn("%s: connection refused: peer credentials unknown: %s", what,
                 strerror(errno));
        return false;
    }
    for (size_t i = 0; i < pa->n; i++)
        if (pa->uid[i] == cred.uid)
            return true;
    log_warn("%s: connection from uid %lu (pid %ld) refused: not a caller of this socket",
             what, (unsigned long)cred.uid, (long)cred.pid);
    return false;
}
